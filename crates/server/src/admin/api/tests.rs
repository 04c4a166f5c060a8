//! The route table against the OpenAPI document and the router: every endpoint is documented
//! and routed, nothing else is documented, and the gate answers before any handler.

use super::*;
use axum::body::Body;
use axum::http::Request as HttpRequest;
use std::collections::BTreeSet;
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), "", &[]);
    let shared = crate::test_support::shared_for(&conf).await;
    let router = crate::admin::router(shared, false).unwrap();
    (dir, router)
}

/// A concrete path for a templated one (`{mac}` → a value).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                "02:00:00:00:00:01"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_document_lists_exactly_the_routes() {
    let eps = all();
    let doc = openapi(&eps);
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = eps
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect();
    assert_eq!(documented, routed);
    assert_eq!(routed.len(), eps.len(), "an endpoint is declared twice");
    for e in &eps {
        assert!(
            !e.summary.is_empty() && !e.tag.is_empty(),
            "{e:?} lacks a summary or tag"
        );
        assert!(e.route.is_some(), "{e:?} has no handler");
        // Every {param} of the path is declared, and only those.
        let in_path: BTreeSet<&str> = e
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = e
            .params
            .iter()
            .filter(|p| p.location == "path")
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(in_path, declared, "{e:?}");
    }
    // Every $ref resolves to a component.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}

#[tokio::test]
async fn every_route_is_served_and_gated() {
    let (_dir, router) = app().await;
    for e in all() {
        let req = HttpRequest::builder()
            .method(e.method.clone())
            .uri(format!("/api/v1{}", concrete(e.path)))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        if e.access == Access::Public {
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{e:?}: {status}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{e:?} without credentials"
            );
            assert!(resp.headers().contains_key("www-authenticate"));
        }
    }
    // Unknown endpoints get the error shape.
    let req = HttpRequest::builder()
        .uri("/api/v1/no-such-thing")
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], 404);
}

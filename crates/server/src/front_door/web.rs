//! This server's own web listener: plain HTTP on `management_ip:[ports] web` (default 8080),
//! what haproxy forwards the portal and admin to. For now it answers `/health`:
//!
//! - `GET /health` → 200 with `{hostname, read_only, ready, vips}` while the daemon is up;
//! - `GET /health?writable` → the same body, 503 while the database is read-only (haproxy's
//!   write backend checks this, so a degraded member takes no writes).
//!
//! The captive portal (`crate::portal::cluster_router`) and the administration interface
//! (`crate::admin::router`: `/api/v1`, `/admin`) are mounted on it.

use crate::Shared;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) async fn serve(
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/health", get(health))
        .with_state(shared.clone());
    let shared_for_admin = shared.clone();
    // The captive portal on this listener (haproxy forwards the registration VIPs to it).
    let app = match crate::portal::cluster_router(shared) {
        Ok(portal) => app.merge(portal),
        Err(e) => {
            tracing::error!(error = %e, "captive portal not mounted on the web listener");
            app
        }
    };
    // The administration API and pages (haproxy's admin frontend on the management VIP).
    let app = match crate::admin::router(shared_for_admin, true) {
        Ok(admin) => app.merge(admin),
        Err(e) => {
            tracing::error!(error = %e, "the administration interface is not mounted on the web listener");
            app
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the web listener on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let task = crate::web::serve("web", listener, None, app, Default::default(), shutdown);
    Ok((bound, task))
}

/// Whether the query asks for writability (`?writable`, `?writable=1`, `?x&writable`).
fn wants_writable(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "writable" || p.starts_with("writable="))
    })
}

async fn health(State(shared): State<Arc<Shared>>, uri: Uri) -> impl IntoResponse {
    let read_only = shared.db.is_read_only();
    let fd = shared.front_door.status();
    let body = serde_json::json!({
        "hostname": shared.config().identity,
        "read_only": read_only,
        "ready": fd.ready,
        "vips": fd.held.iter().map(|h| h.vip.to_string()).collect::<Vec<_>>(),
    });
    let status = if wants_writable(uri.query()) && read_only {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::wants_writable;

    #[test]
    fn writable_query_forms() {
        assert!(wants_writable(Some("writable")));
        assert!(wants_writable(Some("writable=1")));
        assert!(wants_writable(Some("a=b&writable")));
        assert!(!wants_writable(None));
        assert!(!wants_writable(Some("")));
        assert!(!wants_writable(Some("notwritable")));
    }
}

//! The REST API's route table, from which both the router and the OpenAPI 3.1 document are
//! built, so that a route without a schema or a schema without a route cannot exist.
//!
//! ```text
//!  Endpoint { method, path, summary, tag, access, writes, params, body: T, returns: U, handler }
//!        │                                   │
//!        ├─► router(): axum route + gate ────┴─► authenticate ─► role permits access? (403)
//!        │                                        ─► data write while read-only? (503)
//!        └─► openapi(): paths + components/schemas (schemars, JSON Schema 2020-12)
//! ```
//!
//! Each resource module exposes `pub fn endpoints() -> Vec<Endpoint>`; [`all`] gathers them.
//! Handlers are thin: they decode, call the resource's service function (which the web pages
//! call too, so there is one implementation of validation, writes and audit), and encode.

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use ironfence_admin::Access;
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// The clustering guide: while the database is read-only every section of the admin is
/// read-only, except the configuration.
pub const READ_ONLY_MESSAGE: &str = "this server's database is read-only (it is not part of the cluster's primary component): devices, users and registrations cannot be changed here until it rejoins; configuration changes are still accepted";

/// What an endpoint changes: decides whether it is refused while the database is read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Reads only.
    Nothing,
    /// Devices, users, registrations, admin audit: the database. Refused (503) read-only.
    Data,
    /// Configuration files: allowed read-only (the guide), pushed to the cluster.
    Config,
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A path or query parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: &'static str,
    pub required: bool,
    pub description: String,
    pub schema: Value,
}

/// One API operation.
pub struct Endpoint {
    pub method: Method,
    /// Relative to `/api/v1`, with `{name}` path parameters (axum and OpenAPI agree).
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub access: Access,
    pub writes: Writes,
    params: Vec<Param>,
    query: Option<SchemaFn>,
    body: Option<SchemaFn>,
    ok_status: StatusCode,
    returns: Option<SchemaFn>,
    route: Option<MethodRouter<AppState>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

impl Endpoint {
    fn new(method: Method, path: &'static str, summary: &'static str) -> Endpoint {
        Endpoint {
            method,
            path,
            summary,
            tag: "",
            access: Access::Read,
            writes: Writes::Nothing,
            params: Vec::new(),
            query: None,
            body: None,
            ok_status: StatusCode::OK,
            returns: None,
            route: None,
        }
    }
    pub fn get(path: &'static str, summary: &'static str) -> Endpoint {
        Endpoint::new(Method::GET, path, summary)
    }
    pub fn post(path: &'static str, summary: &'static str) -> Endpoint {
        Endpoint::new(Method::POST, path, summary)
    }
    pub fn put(path: &'static str, summary: &'static str) -> Endpoint {
        Endpoint::new(Method::PUT, path, summary)
    }
    pub fn patch(path: &'static str, summary: &'static str) -> Endpoint {
        Endpoint::new(Method::PATCH, path, summary)
    }
    pub fn delete(path: &'static str, summary: &'static str) -> Endpoint {
        Endpoint::new(Method::DELETE, path, summary)
    }
    pub fn tag(mut self, tag: &'static str) -> Endpoint {
        self.tag = tag;
        self
    }
    /// Who may call it (default: any authenticated admin).
    pub fn access(mut self, access: Access) -> Endpoint {
        self.access = access;
        self
    }
    /// What it changes (default: nothing).
    pub fn writes(mut self, writes: Writes) -> Endpoint {
        self.writes = writes;
        self
    }
    /// A `{name}` segment of the path.
    pub fn path_param(mut self, name: &str, description: &str) -> Endpoint {
        self.params.push(Param {
            name: name.into(),
            location: "path",
            required: true,
            description: description.into(),
            schema: json!({"type": "string"}),
        });
        self
    }
    /// Query parameters: the properties of `Q` (a flat struct deserialized with axum's
    /// `Query`).
    pub fn query<Q: JsonSchema>(mut self) -> Endpoint {
        self.query = Some(schema_of::<Q>);
        self
    }
    /// The JSON request body.
    pub fn body<B: JsonSchema>(mut self) -> Endpoint {
        self.body = Some(schema_of::<B>);
        self
    }
    /// The JSON answer, 200.
    pub fn returns<R: JsonSchema>(self) -> Endpoint {
        self.returns_with::<R>(StatusCode::OK)
    }
    /// The JSON answer with another success status (201 Created).
    pub fn returns_with<R: JsonSchema>(mut self, status: StatusCode) -> Endpoint {
        self.ok_status = status;
        self.returns = Some(schema_of::<R>);
        self
    }
    /// No body in the answer (204).
    pub fn no_content(mut self) -> Endpoint {
        self.ok_status = StatusCode::NO_CONTENT;
        self.returns = None;
        self
    }
    /// The axum handler.
    pub fn to<H, T>(mut self, handler: H) -> Endpoint
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(self.method.clone()).expect("a standard method");
        self.route = Some(axum::routing::on(filter, handler));
        self
    }
}

/// Every endpoint of the API.
pub fn all() -> Vec<Endpoint> {
    let mut v = vec![
        Endpoint::get("/openapi.json", "This document")
            .tag("meta")
            .access(Access::Public)
            .returns::<Value>()
            .to(openapi_json),
    ];
    v.extend(super::auth::endpoints());
    v.extend(super::resources());
    v
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi(&all()))
}

/// The `/api/v1` router: every endpoint behind its gate.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for ep in all() {
        let access = ep.access;
        let writes = ep.writes;
        let route = ep
            .route
            .unwrap_or_else(|| panic!("endpoint {} {} has no handler", ep.method, ep.path));
        // Extension is the outer layer: it hands the endpoint's rule to the gate.
        let gated = route
            .route_layer(middleware::from_fn_with_state(state.clone(), gate))
            .route_layer(axum::Extension(Rule { access, writes }));
        router = router.route(ep.path, gated);
    }
    router
        .fallback(|| async {
            ApiError::not_found("no such API endpoint (see /api/v1/openapi.json)")
        })
        .layer(axum::extract::DefaultBodyLimit::max(super::json::MAX_BODY))
        .with_state(state)
}

/// What the gate checks for one endpoint.
#[derive(Debug, Clone, Copy)]
struct Rule {
    access: Access,
    writes: Writes,
}

/// Authentication, role and read-only checks, once for every endpoint.
async fn gate(
    State(state): State<AppState>,
    axum::Extension(Rule { access, writes }): axum::Extension<Rule>,
    mut req: Request,
    next: Next,
) -> Response {
    let mut refreshed = None;
    if access != Access::Public {
        let peer = req.extensions().get::<crate::web::Peer>().copied();
        let session = match super::auth::session(&state, req.headers(), peer).await {
            Ok(s) => s,
            Err(e) => return e.into_response(),
        };
        refreshed = Some(session.refreshed_token);
        let who: Principal = session.principal;
        if !who.role.permits(access) {
            return ApiError::forbidden(format!(
                "the {} role may not do this (it needs {})",
                who.role,
                match access {
                    Access::Devices => "administrator or operator",
                    _ => "administrator",
                }
            ))
            .into_response();
        }
        req.extensions_mut().insert(who);
    }
    if writes == Writes::Data && state.shared.db.is_read_only() {
        return ApiError::unavailable(READ_ONLY_MESSAGE).into_response();
    }
    let mut resp = next.run(req).await;
    // Activity keeps the session alive: every authenticated answer carries a token with
    // last_seen = now (the client replaces the one it holds).
    if let Some(t) = refreshed
        && let Ok(v) = axum::http::HeaderValue::from_str(&t)
    {
        resp.headers_mut().insert(super::auth::TOKEN_HEADER, v);
    }
    resp
}

/// The OpenAPI 3.1 document of `endpoints`.
pub fn openapi(endpoints: &[Endpoint]) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut g = settings.into_generator();
    let error = g.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for ep in endpoints {
        let mut op = Map::new();
        op.insert(
            "operationId".into(),
            json!(operation_id(&ep.method, ep.path)),
        );
        op.insert("summary".into(), json!(ep.summary));
        if !ep.tag.is_empty() {
            op.insert("tags".into(), json!([ep.tag]));
        }
        let mut params: Vec<Value> = ep.params.iter().map(param_json).collect();
        if let Some(q) = ep.query {
            params.extend(query_params(q(&mut g), &mut g));
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(b) = ep.body {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": b(&mut g)}}}),
            );
        }
        let mut responses = Map::new();
        let ok = match ep.returns {
            Some(r) => {
                json!({"description": "success", "content": {"application/json": {"schema": r(&mut g)}}})
            }
            None => json!({"description": "success"}),
        };
        responses.insert(ep.ok_status.as_u16().to_string(), ok);
        let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": error.clone()}}});
        if ep.access != Access::Public {
            op.insert("security".into(), json!([{"bearer": []}]));
            responses.insert(
                "401".into(),
                err("not authenticated, or the session expired"),
            );
            responses.insert("403".into(), err("the admin's role may not do this"));
        } else {
            op.insert("security".into(), json!([]));
        }
        if ep.body.is_some() || ep.query.is_some() {
            responses.insert("400".into(), err("malformed request"));
            responses.insert("422".into(), err("invalid field (named in errors)"));
        }
        if ep.params.iter().any(|p| p.location == "path") {
            responses.insert("404".into(), err("no such object"));
        }
        if ep.writes != Writes::Nothing {
            responses.insert("409".into(), err("conflicts with the current state"));
        }
        responses.insert(
            "503".into(),
            err("the database is read-only or unreachable"),
        );
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(ep.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry
            .as_object_mut()
            .expect("path item")
            .insert(ep.method.as_str().to_ascii_lowercase(), Value::Object(op));
    }
    let schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ironfence administration API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Devices, users, switches, roles, sources, configuration and cluster status. \
                Log in with POST /login for a bearer token. Errors share one shape (Error)."
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.extend(
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn param_json(p: &Param) -> Value {
    json!({"name": p.name, "in": p.location, "required": p.required,
           "description": p.description, "schema": p.schema})
}

/// A query struct's properties as query parameters (its schema is resolved through `$ref`).
fn query_params(schema: Schema, g: &mut SchemaGenerator) -> Vec<Value> {
    let mut obj = schema.as_value().clone();
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default().to_string();
        if let Some(def) = g.definitions().get(&name) {
            obj = def.clone();
        }
        g.definitions_mut().remove(&name);
    }
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    obj.get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| {
                    let mut s = s.clone();
                    let description = s
                        .as_object_mut()
                        .and_then(|o| o.remove("description"))
                        .unwrap_or(json!(""));
                    json!({"name": name, "in": "query", "required": required.contains(&name.as_str()),
                           "description": description, "schema": s})
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

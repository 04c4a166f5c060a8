//! The web admin interface (`/admin`): server-rendered pages on the same service functions as
//! the REST API.
//!
//! ```text
//!  browser ─► /admin/… ─► headers layer (CSP, nosniff, no-store; error pages rendered)
//!               ├─ /admin/static/…   CSS + a small JS file (progressive enhancement only)
//!               └─ page table: Page{method, path, access, writes, handler}
//!                    ─► gate: cookie `ironfence_admin` ─► auth::authenticate (none: 303 login)
//!                          ─► role permits access? (403 page)
//!                          ─► POST: form ≤ 64 KiB, CSRF token bound to the session (403 page)
//!                          ─► data write while read-only? (503 page, the API's rule)
//!                          ─► handler(State<AppState>, PageUser, Form<T>) ─► service function
//!                          ─► render(state, &who, "x.html", ctx): layout (nav, banner, flash)
//! ```
//!
//! Each page module exposes `pub fn pages() -> Vec<Page>` and `pub const TEMPLATES`; they are
//! gathered in [`all_pages`] and [`TEMPLATE_SETS`] (one line each). UI-FRAMEWORK.md at the
//! repository root is the short guide for page authors.

pub mod admins;
pub mod audit;
pub mod cluster;
pub mod dashboard;
pub mod devices;
pub mod login;
pub mod roles;
pub mod sources;
pub mod switches;
pub mod users;

use super::api::{READ_ONLY_MESSAGE, Writes};
use super::auth::Principal;
use super::error::{ApiError, FieldError};
use super::{AdminState, AppState};
use crate::web::{self, Peer, templates::Templates};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac as _};
use ironfence_admin::Access;
use ironfence_portal::csrf;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The admin session cookie (the token `auth::login` issues; `auth::authenticate` reads it).
pub const COOKIE: &str = super::auth::COOKIE_NAME;
/// Before login: a random id the login form's CSRF token is bound to (login CSRF).
pub const PRE_COOKIE: &str = "ironfence_admin_pre";
/// A one-shot message shown by the next page (POST → redirect → GET).
pub const FLASH_COOKIE: &str = "ironfence_flash";
/// Where the pages live.
pub const BASE: &str = "/admin";

/// Largest form a page accepts.
pub const MAX_FORM: usize = 64 * 1024;
/// Most fields in one form (a switch has many keys).
pub const MAX_FORM_FIELDS: usize = 256;
/// A form's CSRF token lives this long (an admin may leave a form open a while).
const CSRF_TTL_SECS: i64 = 4 * 3600;

/// The Content-Security-Policy of every /admin answer: nothing inline, nothing foreign.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The navigation, in order. An entry is shown when a page is registered at its path and the
/// admin's role may open it.
pub const NAV: &[(&str, &str)] = &[
    ("Dashboard", "/admin"),
    ("Devices", "/admin/devices"),
    ("Users", "/admin/users"),
    ("Switches", "/admin/switches"),
    ("Roles", "/admin/roles"),
    ("Sources", "/admin/sources"),
    ("Admins", "/admin/admins"),
    ("Audit log", "/admin/audit"),
    ("Cluster", "/admin/cluster"),
];

/// The framework's own templates (layout, error page).
const FRAME_TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// Every page module's templates: add one line per module.
pub const TEMPLATE_SETS: &[&[(&str, &str)]] = &[
    FRAME_TEMPLATES,
    login::TEMPLATES,
    dashboard::TEMPLATES,
    switches::TEMPLATES,
    roles::TEMPLATES,
    cluster::TEMPLATES,
    sources::TEMPLATES,
    admins::TEMPLATES,
    audit::TEMPLATES,
    devices::TEMPLATES,
    users::TEMPLATES,
];

/// Every page: add one line per module.
pub fn all_pages() -> Vec<Page> {
    let mut v = login::pages();
    v.extend(dashboard::pages());
    v.extend(switches::pages());
    v.extend(roles::pages());
    v.extend(sources::pages());
    v.extend(cluster::pages());
    v.extend(admins::pages());
    v.extend(audit::pages());
    v.extend(devices::pages());
    v.extend(users::pages());
    v
}

const CSS: &str = include_str!("static/admin.css");
const JS: &str = include_str!("static/admin.js");

fn all_templates() -> &'static [(&'static str, &'static str)] {
    static ALL: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    ALL.get_or_init(|| {
        TEMPLATE_SETS
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    })
}

/// One page route.
pub struct Page {
    pub method: Method,
    /// Under `/admin` (`/devices/{mac}`); `/` is the dashboard.
    pub path: &'static str,
    pub access: Access,
    pub writes: Writes,
    route: Option<MethodRouter<AppState>>,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}{}", self.method, BASE, self.path)
    }
}

impl Page {
    fn new(method: Method, path: &'static str) -> Page {
        Page {
            method,
            path,
            access: Access::Read,
            writes: Writes::Nothing,
            route: None,
        }
    }
    /// A page any authenticated admin may open (change with [`Page::access`]).
    pub fn get(path: &'static str) -> Page {
        Page::new(Method::GET, path)
    }
    /// A form target: CSRF-checked by the gate. Say what it writes with [`Page::writes`].
    pub fn post(path: &'static str) -> Page {
        Page::new(Method::POST, path)
    }
    pub fn access(mut self, access: Access) -> Page {
        self.access = access;
        self
    }
    /// `Writes::Data` is refused (503 page) while the database is read-only;
    /// `Writes::Config` is allowed (the clustering guide).
    pub fn writes(mut self, writes: Writes) -> Page {
        self.writes = writes;
        self
    }
    pub fn to<H, T>(mut self, handler: H) -> Page
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(self.method.clone()).expect("a standard method");
        self.route = Some(axum::routing::on(filter, handler));
        self
    }
}

/// The pages' shared state: templates and the rate samples.
pub struct Ui {
    templates: Templates,
    /// GET paths that have a page (the nav shows only those) and their access.
    routes: Vec<(&'static str, Access)>,
    pub(crate) rates: dashboard::Rates,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui").finish_non_exhaustive()
    }
}

/// The key the pages sign CSRF tokens and flash cookies with: derived from the admin token
/// key (`auth::Auth::csrf_key`), which is in the synchronized configuration, so that any
/// member verifies what another issued (haproxy round-robins).
pub(crate) fn page_key(state: &AdminState) -> Result<Vec<u8>, ApiError> {
    state.auth.csrf_key().map(|k| k.to_vec())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the gate checks for one page.
#[derive(Debug, Clone, Copy)]
struct Rule {
    access: Access,
    writes: Writes,
}

/// The `/admin` router (nested at [`BASE`] by `admin::router`; the `/` page is `/admin`).
pub fn router(state: AppState) -> Router {
    build(state, all_pages())
}

/// The router of `pages` (tests build one with pages of their own).
fn build(state: AppState, pages: Vec<Page>) -> Router {
    let routes = pages
        .iter()
        .filter(|p| p.method == Method::GET)
        .map(|p| (p.path, p.access))
        .collect();
    let ui = Arc::new(Ui {
        templates: Templates::new(
            all_templates(),
            &state.shared.config().conf_dir.join("admin/templates"),
        ),
        routes,
        rates: dashboard::Rates::new(),
    });
    dashboard::start_sampler(&state, &ui);
    let mut router: Router<AppState> = Router::new();
    for p in pages {
        let rule = Rule {
            access: p.access,
            writes: p.writes,
        };
        let route = p
            .route
            .unwrap_or_else(|| panic!("page {} {} has no handler", p.method, p.path));
        let gated = route
            .route_layer(middleware::from_fn_with_state(state.clone(), gate))
            .route_layer(axum::Extension(rule));
        router = router.route(p.path, gated);
    }
    router
        .route("/static/admin.css", axum::routing::get(css))
        .route("/static/admin.js", axum::routing::get(js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), finish))
        .layer(axum::Extension(ui))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .with_state(state)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `/admin/` → `/admin` (mounted beside the nest by `admin::router`).
pub async fn to_dashboard() -> Response {
    let mut r = see_other(BASE);
    security_headers(&mut r);
    r
}

/// `/admin/` is the dashboard too (axum's nest matches `/admin` only for the `/` page).
async fn not_found(uri: axum::http::Uri) -> Response {
    // Inside the nest, `/admin/` arrives as `/`.
    if uri.path() == "/" || uri.path() == "/admin/" {
        return see_other(BASE);
    }
    PageError::new(StatusCode::NOT_FOUND, "No such page.").into_response()
}

// ---------------------------------------------------------------------------------------------
// Who is asking.

/// The admin a page is rendered for (set by the gate; take it as a handler argument).
#[derive(Clone)]
pub struct PageUser {
    pub principal: Principal,
    /// The CSRF token for this session: put it in every form (`{{ csrf }}` in templates).
    pub csrf: String,
    /// The path (and query) of this request, for the nav and redirects.
    pub path: String,
    flash: Option<Flash>,
    /// Cookies are `Secure` (HTTPS, or haproxy's TLS from a trusted proxy).
    pub secure: bool,
    /// Signs this admin's CSRF tokens and flash cookies ([`page_key`]).
    key: Vec<u8>,
    ui: Arc<Ui>,
}

impl std::fmt::Debug for PageUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageUser")
            .field("principal", &self.principal)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageUser {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<PageUser, PageError> {
        parts.extensions.get::<PageUser>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri, "admin page: PageUser taken on a public page");
            PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })
    }
}

/// Whether the browser reached us over HTTPS: directly, or through haproxy's TLS
/// (`X-Forwarded-Proto`, believed only from a trusted proxy on the cluster's listener).
pub fn is_https(state: &AdminState, peer: Option<&Peer>, headers: &HeaderMap) -> bool {
    let Some(peer) = peer else { return false };
    if peer.tls {
        return true;
    }
    state.trust_forwarded
        && web::client::is_trusted_proxy(&state.shared, peer.addr.ip().to_canonical())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the pages: `HttpOnly`, `SameSite=Strict`, `Path=/admin`,
/// `Secure` over HTTPS. `max_age` `Some(0)` deletes it; `None` makes a browser-session cookie.
pub fn cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path={BASE}; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The value of cookie `name` in `headers`.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

// ---------------------------------------------------------------------------------------------
// Flash messages.

/// A one-shot message for the next page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flash {
    /// `ok` or `error` (the CSS class).
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Flash {
        Flash {
            kind: "ok",
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Flash {
        Flash {
            kind: "error",
            message: message.into(),
        }
    }
}

fn flash_tag(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(b"flash v1\0");
    mac.update(payload);
    mac.finalize().into_bytes()[..16].to_vec()
}

/// `base64url(kind ‖ 0 ‖ message).base64url(tag)`: signed so that only this cluster's pages
/// can make a page show a message.
fn encode_flash(key: &[u8], f: &Flash) -> String {
    let msg: String = f.message.chars().take(600).collect();
    let payload = format!("{}\0{}", f.kind, msg);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(flash_tag(key, payload.as_bytes()))
    )
}

fn decode_flash(key: &[u8], v: &str) -> Option<Flash> {
    let (p, t) = v.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(t).ok()?;
    use subtle::ConstantTimeEq;
    if !bool::from(flash_tag(key, &payload).ct_eq(&tag)) {
        return None;
    }
    let s = String::from_utf8(payload).ok()?;
    let (kind, message) = s.split_once('\0')?;
    let kind = match kind {
        "ok" => "ok",
        "error" => "error",
        _ => return None,
    };
    Some(Flash {
        kind,
        message: message.to_string(),
    })
}

/// 303 to `location` (under /admin), with `flash` shown there: the answer to a form post.
pub fn redirect(who: &PageUser, location: &str, flash: Option<Flash>) -> Response {
    let mut resp = see_other(location);
    if let Some(f) = flash {
        set_cookie(
            &mut resp,
            &cookie(
                FLASH_COOKIE,
                &encode_flash(&who.key, &f),
                who.secure,
                Some(60),
            ),
        );
    }
    resp
}

fn see_other(location: &str) -> Response {
    let loc = if location.starts_with(BASE) {
        location.to_string()
    } else {
        BASE.to_string()
    };
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(&loc).unwrap_or(HeaderValue::from_static(BASE)),
        )],
    )
        .into_response()
}

/// A local path to return to after login: under /admin, no scheme or host, no `//` or `\`
/// tricks (an open redirect would send the admin elsewhere after logging in).
pub fn safe_next(next: &str) -> Option<String> {
    let ok = next.starts_with("/admin")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.starts_with("/admin/login")
        && !next.starts_with("/admin/logout")
        && next.len() <= 1024
        && next.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| next.to_string())
}

// ---------------------------------------------------------------------------------------------
// Forms.

/// The decoded fields of a POST (CSRF already checked by the gate).
#[derive(Debug, Clone, Default)]
pub struct FormData(pub HashMap<String, String>);

impl FormData {
    /// The field's value, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }
    /// A checkbox: present (any value but "no"/"off"/"0") means checked.
    pub fn checked(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|v| !matches!(v.as_str(), "no" | "off" | "0"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FormData {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<FormData, PageError> {
        parts
            .extensions
            .get::<FormData>()
            .cloned()
            .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, "This page expects a form."))
    }
}

/// A form decoded into `T` (every field a string: use `String` / `Option<String>` fields and
/// parse numbers in the handler; the `csrf` field is removed). A field that does not fit →
/// 422 page naming it.
#[derive(Debug, Clone)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Form<T> {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Form<T>, PageError> {
        let data = FormData::from_request_parts(parts, s).await?;
        decode_form(&data).map(Form).map_err(PageError::from)
    }
}

/// `data` as `T`, with the API's error rules (422 naming the field).
pub fn decode_form<T: DeserializeOwned>(data: &FormData) -> Result<T, ApiError> {
    let obj: serde_json::Map<String, serde_json::Value> = data
        .0
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf")
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let bytes = serde_json::to_vec(&obj).map_err(|e| ApiError::internal("form", e))?;
    super::json::parse(&bytes)
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// An error answered as an HTML page (with the layout when the admin is known).
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<FieldError>,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError {
            status: e.status,
            message: e.message,
            errors: e.errors,
        }
    }
}

/// Carried by an error answer until the outer layers render it (they hold the templates).
#[derive(Debug, Clone)]
struct ErrorMarker(PageError);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(ErrorMarker(self));
        r
    }
}

fn title_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request",
        401 => "Log in",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflict",
        422 => "Invalid input",
        429 => "Too many attempts",
        503 => "Unavailable",
        _ => "Error",
    }
}

fn error_page(state: &AdminState, ui: &Arc<Ui>, who: Option<&PageUser>, e: PageError) -> Response {
    let ctx = minijinja::context! {
        title => title_for(e.status),
        status => e.status.as_u16(),
        message => e.message,
        errors => e.errors,
    };
    let html = match who {
        Some(w) => render_html(state, w, "error.html", ctx),
        None => ui
            .templates
            .render("error.html", public_context(state, ctx)),
    };
    let mut r = (e.status, html_headers(), html).into_response();
    if e.status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Rendering.

fn html_headers() -> [(header::HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "text/html; charset=utf-8")]
}

/// The layout for a page without an admin (login, errors before login).
fn public_context(state: &AdminState, ctx: minijinja::Value) -> minijinja::Value {
    let cfg = state.shared.config();
    minijinja::context! {
        layout => minijinja::context! {
            server => cfg.identity.clone(),
            read_only => state.shared.db.is_read_only(),
            read_only_message => READ_ONLY_MESSAGE,
            nav => Vec::<minijinja::Value>::new(),
        },
        ..ctx
    }
}

fn nav(ui: &Ui, who: &PageUser) -> Vec<minijinja::Value> {
    let here = who.path.split('?').next().unwrap_or("");
    NAV.iter()
        .filter(|(_, href)| {
            let rel = match href.strip_prefix(BASE).unwrap_or(href) {
                "" => "/",
                r => r,
            };
            ui.routes
                .iter()
                .any(|(p, a)| *p == rel && who.principal.role.permits(*a))
        })
        .map(|(label, href)| {
            let active = if *href == BASE {
                here == "/admin/" || here == BASE
            } else {
                here == *href || here.starts_with(&format!("{href}/"))
            };
            minijinja::context! { label => *label, href => *href, active => active }
        })
        .collect()
}

fn render_html(state: &AdminState, who: &PageUser, name: &str, ctx: minijinja::Value) -> String {
    let cfg = state.shared.config();
    let layout = minijinja::context! {
        server => cfg.identity.clone(),
        account => who.principal.account.clone(),
        role => who.principal.role.as_str(),
        read_only => state.shared.db.is_read_only(),
        read_only_message => READ_ONLY_MESSAGE,
        nav => nav(&who.ui, who),
        flash => who.flash.clone(),
    };
    let ctx = minijinja::context! { layout => layout, csrf => who.csrf.clone(), ..ctx };
    who.ui.templates.render(name, ctx)
}

/// Renders template `name` (which extends `base.html`) for `who` with `ctx`, adding the layout
/// context: `layout.{server, account, role, read_only, read_only_message, nav, flash}` and
/// `csrf` (the token for this admin's forms).
pub fn render(state: &AdminState, who: &PageUser, name: &str, ctx: minijinja::Value) -> Response {
    render_status(state, who, StatusCode::OK, name, ctx)
}

/// [`render`] with another status (a form shown again with its errors: 422).
pub fn render_status(
    state: &AdminState,
    who: &PageUser,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Response {
    let html = render_html(state, who, name, ctx);
    let mut r = (status, html_headers(), html).into_response();
    if who.flash.is_some() {
        // Shown once: cleared by this answer.
        set_cookie(&mut r, &cookie(FLASH_COOKIE, "", who.secure, Some(0)));
    }
    r
}

/// The messages of a 422 by field name, for showing each beside its input
/// (`errors.radiusSecret` in a template).
pub fn field_errors(e: &ApiError) -> HashMap<String, String> {
    e.errors
        .iter()
        .map(|f| (f.field.clone(), f.message.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The gate and the outer layer.

/// The browser's path and query: inside the nest at [`BASE`] axum strips the prefix.
fn full_path(uri: &axum::http::Uri) -> String {
    let p = uri.path();
    let mut out = if p.starts_with(BASE) {
        p.to_string()
    } else if p == "/" || p.is_empty() {
        BASE.to_string()
    } else {
        format!("{BASE}{p}")
    };
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Authentication, role, CSRF and read-only checks, once for every page.
async fn gate(
    State(state): State<AppState>,
    axum::Extension(Rule { access, writes }): axum::Extension<Rule>,
    axum::Extension(ui): axum::Extension<Arc<Ui>>,
    req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let peer = parts.extensions.get::<Peer>().copied();
    let secure = is_https(&state, peer.as_ref(), &parts.headers);
    let path = full_path(&parts.uri);
    let session = match super::auth::session(&state, &parts.headers, peer).await {
        Ok(s) => s,
        // 503: no token key yet (no account was ever created): the login page says so.
        Err(e)
            if e.status == StatusCode::UNAUTHORIZED
                || e.status == StatusCode::SERVICE_UNAVAILABLE =>
        {
            // The page to come back to: a GET's own path; after a POST, the page it was on.
            let back = if parts.method == Method::GET {
                Some(path.clone())
            } else {
                parts
                    .headers
                    .get(header::REFERER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|r| r.find("/admin").map(|i| r[i..].to_string()))
            };
            let to = match back.as_deref().and_then(safe_next) {
                Some(n) => format!("{BASE}/login?next={}", web::form::encode(&n)),
                None => format!("{BASE}/login"),
            };
            let mut r = see_other(&to);
            if cookie_value(&parts.headers, COOKIE).is_some() {
                // Expired or revoked: drop it, so the login page starts clean.
                set_cookie(&mut r, &cookie(COOKIE, "", secure, Some(0)));
            }
            return r;
        }
        Err(e) => return error_page(&state, &ui, None, e.into()),
    };
    let key = match page_key(&state) {
        Ok(k) => k,
        Err(e) => return error_page(&state, &ui, None, e.into()),
    };
    let principal = session.principal;
    let flash = cookie_value(&parts.headers, FLASH_COOKIE).and_then(|v| decode_flash(&key, &v));
    let who = PageUser {
        csrf: csrf::issue(&key, &principal.session, now_unix(), CSRF_TTL_SECS),
        principal,
        path,
        flash,
        secure,
        key,
        ui: ui.clone(),
    };
    if !who.principal.role.permits(access) {
        let need = match access {
            Access::Devices => "administrator or operator",
            _ => "administrator",
        };
        let e = PageError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Your role ({}) may not do this: it needs {need}.",
                who.principal.role
            ),
        );
        return error_page(&state, &ui, Some(&who), e);
    }
    let body = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(b) => b,
            Err(_) => {
                let e = PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The form is too large (at most {MAX_FORM} bytes)."),
                );
                return error_page(&state, &ui, Some(&who), e);
            }
        };
        let fields = match web::form::parse_with_limit(&bytes, MAX_FORM_FIELDS) {
            Ok(f) => f,
            Err(_) => {
                let e = PageError::new(StatusCode::BAD_REQUEST, "The form could not be read.");
                return error_page(&state, &ui, Some(&who), e);
            }
        };
        let token = fields.get("csrf").map(String::as_str).unwrap_or("");
        if csrf::verify(&who.key, &who.principal.session, token, now_unix()).is_err() {
            tracing::info!(account = %who.principal.account, path = %who.path, "admin page: form refused (CSRF token missing, expired or not this session's)");
            let e = PageError::new(
                StatusCode::FORBIDDEN,
                "This form expired or was not sent from this session. Go back, reload the page and try again.",
            );
            return error_page(&state, &ui, Some(&who), e);
        }
        parts.extensions.insert(FormData(fields));
        Body::from(bytes)
    } else {
        body
    };
    if writes == Writes::Data && state.shared.db.is_read_only() {
        let e = PageError::new(StatusCode::SERVICE_UNAVAILABLE, READ_ONLY_MESSAGE);
        return error_page(&state, &ui, Some(&who), e);
    }
    parts.extensions.insert(who.clone());
    let resp = next.run(Request::from_parts(parts, body)).await;
    let mut resp = match resp.extensions().get::<ErrorMarker>().cloned() {
        Some(ErrorMarker(e)) => error_page(&state, &ui, Some(&who), e),
        None => resp,
    };
    // Activity keeps the session alive: the cookie gets the refreshed token (last_seen =
    // now), unless the handler set it itself (logout clears it).
    let sets_session = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(format!("{COOKIE}=").as_bytes()));
    if !sets_session {
        set_cookie(
            &mut resp,
            &cookie(COOKIE, &session.refreshed_token, who.secure, None),
        );
    }
    resp
}

/// Every /admin answer: error pages not yet rendered are, and the security headers are set.
async fn finish(
    State(state): State<AppState>,
    axum::Extension(ui): axum::Extension<Arc<Ui>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    if let Some(ErrorMarker(e)) = resp.extensions().get::<ErrorMarker>().cloned() {
        resp = error_page(&state, &ui, None, e);
    }
    security_headers(&mut resp);
    resp
}

/// CSP, nosniff, same-origin referrers, no framing; pages are not cached (`no-store`).
fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests;

//! The captive portal: the pages an unregistered device is sent to, the OS probes, the
//! RFC 8908 API, and registration.
//!
//! ```text
//!  device ──HTTP(S)──► web::serve (limits, Peer) ──► degraded? ─► 503 (guide's message, no write)
//!     GET  /captive-portal            landing: the profile's sources (registered: "reconnect")
//!     POST /captive-portal/login/{s}  rate limit ─► CSRF ─► ip4log: IP → MAC ─► source ─► rules
//!     POST /captive-portal/guest/{s}      ─► register_node(role, unregdate) + person + log
//!                                          ─► after_registration (CoA) ─► "reconnect" page
//!     GET  /captive-portal/api        application/captive+json {captive, user-portal-url}
//!     probes (Apple, Android, Windows, Firefox): registered ─► their success answer
//!     anything else                   302 ─► the portal (destination kept, sanitized)
//! ```
//!
//! The device is known by its address: the client IP (or, only on the cluster's web listener
//! and only from a member or loopback, the last `X-Forwarded-For` hop haproxy adds) is looked
//! up in ip4log, which DHCP fills with every lease. Listeners: a single server binds every
//! registration/isolation address (`Config::served_interfaces`) on `[ports] portal_http`
//! (80) and, with `conf/ssl/server.pem`, `portal_https` (443); in a cluster the portal is
//! mounted on each server's web listener, behind haproxy on the VIPs.

pub mod sources;

use crate::Shared;
use crate::web::{self, Peer, session, templates::Templates};
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ironfence_config::authentication::SourceKind;
use ironfence_core::{Mac, NodeStatus};
use ironfence_portal::ratelimit::{Limiter, Rate};
use ironfence_portal::{csrf, probes, redirect, rules};
use ironfence_store::Person;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The clustering guide: "The captive portal will be disabled and display a message stating
/// the system is currently experiencing an issue."
pub const DEGRADED_MESSAGE: &str =
    "The system is currently experiencing an issue. Please try again in a few minutes.";

/// Form posts per source IP: a burst of 10, then one every 5 s.
pub const LOGIN_RATE: Rate = Rate {
    capacity: 10.0,
    per_second: 0.2,
};
const CSRF_TTL_SECS: i64 = 3600;
const MAX_BODY: usize = 16 * 1024;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("landing.html", include_str!("templates/landing.html")),
    ("registered.html", include_str!("templates/registered.html")),
    ("error.html", include_str!("templates/error.html")),
    ("aup.txt", include_str!("templates/aup.txt")),
];

/// The portal's state, shared by all its listeners.
pub struct Portal {
    shared: Arc<Shared>,
    csrf_key: Vec<u8>,
    limiter: Mutex<Limiter<IpAddr>>,
    origin: Instant,
    templates: Templates,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").finish_non_exhaustive()
    }
}

/// One listener's view: the URL devices are sent to, and whether X-Forwarded-For is believed.
#[derive(Debug, Clone)]
pub struct Site {
    pub base_url: String,
    pub trust_forwarded: bool,
}

/// Called once a device is registered: a CoA/Disconnect to the switch holding its session
/// ([`crate::coa::reevaluate_access`]) makes the switch re-authenticate it into its role.
pub fn after_registration(shared: &Arc<Shared>, mac: Mac) {
    // Off the request: the CoA waits for every server's node cache to see the registration,
    // then retransmits per RFC 5080; the device is shown its page at once.
    let shared = shared.clone();
    tokio::spawn(async move {
        match crate::coa::reevaluate_access(&shared, mac).await {
            Ok(r) if r.acked() => {
                tracing::info!(%mac, request_id = %r.request_id, "registration: the switch re-authenticates the device")
            }
            Ok(r) => {
                tracing::warn!(%mac, request_id = %r.request_id, outcome = %r.to_string().replace('\n', "; "), "registration: the switch refused the CoA/Disconnect; the device moves at its next authentication")
            }
            Err(e) => {
                tracing::warn!(%mac, error = %e, "registration: no CoA/Disconnect sent; the device moves at its next authentication")
            }
        }
    });
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Portal {
    pub fn new(shared: Arc<Shared>) -> anyhow::Result<Arc<Portal>> {
        let cfg = shared.config();
        // Any member verifies a token another issued: in a cluster the key is derived from the
        // shared web services password; a single server draws one at start.
        let csrf_key = if cfg.is_cluster() && !cfg.pf.webservices.pass.is_empty() {
            use hmac::{KeyInit, Mac as _};
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(
                cfg.pf.webservices.pass.expose().as_bytes(),
            )
            .expect("HMAC accepts keys of any length");
            mac.update(b"ironfence portal csrf v1");
            mac.finalize().into_bytes().to_vec()
        } else {
            let mut k = vec![0u8; 32];
            getrandom::fill(&mut k)
                .map_err(|e| anyhow::anyhow!("no randomness for the CSRF key: {e}"))?;
            k
        };
        Ok(Arc::new(Portal {
            templates: Templates::new(TEMPLATES, &cfg.conf_dir.join("portal/templates")),
            shared,
            csrf_key,
            limiter: Mutex::new(Limiter::new(LOGIN_RATE, 65_536)),
            origin: Instant::now(),
        }))
    }

    fn render(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        let html = self.templates.render(name, ctx);
        (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            html,
        )
            .into_response()
    }

    fn error_page(&self, status: StatusCode, title: &str, message: &str, retry: bool) -> Response {
        self.portal_counter(match status {
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "error",
        });
        self.render(
            status,
            "error.html",
            minijinja::context! { title, message, retry },
        )
    }

    fn portal_counter(&self, what: &'static str) {
        self.shared
            .metrics
            .portal
            .get_or_create(&[("result", what)])
            .inc();
    }

    /// The address the request is from (see the module docs for X-Forwarded-For).
    fn client_ip(&self, peer: &Peer, headers: &HeaderMap, site: &Site) -> IpAddr {
        web::client::client_ip(&self.shared, peer.addr.ip(), headers, site.trust_forwarded)
    }

    async fn device(&self, ip: IpAddr) -> Result<Option<Mac>, Response> {
        let IpAddr::V4(v4) = ip else { return Ok(None) };
        self.shared
            .store
            .mac_for_ip(v4, now_unix())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "portal: ip4log lookup failed");
                self.error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again later",
                    DEGRADED_MESSAGE,
                    true,
                )
            })
    }

    async fn registered(&self, mac: Mac) -> Option<ironfence_core::Node> {
        let node = self.shared.store.get_node(mac).await.ok()??;
        let now = now_unix();
        (node.status == NodeStatus::Registered && node.unregdate.is_none_or(|t| t > now))
            .then_some(node)
    }

    fn rate_ok(&self, ip: IpAddr) -> bool {
        let now = self.origin.elapsed();
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&ip, now)
    }
}

/// The portal's routes for one listener.
pub fn router(portal: Arc<Portal>, site: Site) -> Router {
    Router::new()
        .route("/captive-portal", get(landing))
        .route("/captive-portal/", get(landing))
        .route("/captive-portal/login/{source}", post(login))
        .route("/captive-portal/guest/{source}", post(guest))
        .route("/captive-portal/api", get(api))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(portal.clone(), degraded))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(Extension(site))
        .with_state(portal)
}

/// Read-only database: every portal page answers 503 with the guide's message, and nothing
/// runs that could write.
async fn degraded(State(p): State<Arc<Portal>>, req: Request, next: Next) -> Response {
    if p.shared.db.is_read_only() {
        let mut r = p.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            DEGRADED_MESSAGE,
            false,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    next.run(req).await
}

fn with_session(mut resp: Response, new_session: Option<&str>, secure: bool) -> Response {
    if let Some(id) = new_session
        && let Ok(v) = HeaderValue::from_str(&session::set_cookie(id, secure))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn source_views(p: &Portal) -> Vec<minijinja::Value> {
    let cfg = p.shared.config();
    cfg.authentication
        .offered()
        .map(|s| {
            minijinja::context! {
                id => s.id.clone(),
                description => s.description.clone(),
                kind => match s.kind { SourceKind::Null => "guest", _ => "login" },
            }
        })
        .collect()
}

fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

fn registered_page(
    p: &Portal,
    node: &ironfence_core::Node,
    destination: Option<String>,
) -> Response {
    p.render(
        StatusCode::OK,
        "registered.html",
        minijinja::context! {
            role => node.role.clone(),
            until => node.unregdate.map(format_utc),
            destination => destination,
        },
    )
}

/// Renders the landing page (optionally with an error) with a fresh CSRF token.
fn landing_page(
    p: &Portal,
    status: StatusCode,
    session_id: &str,
    destination: Option<String>,
    error: Option<&str>,
) -> Response {
    let cfg = p.shared.config();
    let token = csrf::issue(&p.csrf_key, session_id, now_unix(), CSRF_TTL_SECS);
    let aup = p.templates.render("aup.txt", minijinja::context! {});
    p.render(
        status,
        "landing.html",
        minijinja::context! {
            description => cfg.authentication.profile_description.clone().unwrap_or_else(|| "Register your device".into()),
            sources => source_views(p),
            csrf => token,
            destination => destination.unwrap_or_default(),
            error => error,
            aup => aup,
        },
    )
}

async fn landing(
    State(p): State<Arc<Portal>>,
    Extension(site): Extension<Site>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let destination =
        web::form::query_param(uri.query(), "destination_url").and_then(|d| redirect::sanitize(&d));
    let ip = p.client_ip(&peer, &headers, &site);
    let mac = match p.device(ip).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Some(mac) = mac
        && let Some(node) = p.registered(mac).await
    {
        return registered_page(&p, &node, destination);
    }
    let (sid, fresh) = match session::from_headers(&headers) {
        Some(s) => (s, None),
        None => match session::new_id() {
            Ok(s) => (s.clone(), Some(s)),
            Err(e) => {
                tracing::error!(error = %e, "portal: session id");
                return p.error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again later",
                    DEGRADED_MESSAGE,
                    true,
                );
            }
        },
    };
    with_session(
        landing_page(&p, StatusCode::OK, &sid, destination, None),
        fresh.as_deref(),
        peer.tls,
    )
}

async fn login(
    State(p): State<Arc<Portal>>,
    Extension(site): Extension<Site>,
    Extension(peer): Extension<Peer>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(p, site, peer, source, headers, body, false).await
}

async fn guest(
    State(p): State<Arc<Portal>>,
    Extension(site): Extension<Site>,
    Extension(peer): Extension<Peer>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(p, site, peer, source, headers, body, true).await
}

/// The uniform login error: the same for an unknown user, a wrong password and an expired
/// account.
pub const INVALID_CREDENTIALS: &str = "Invalid username or password.";

async fn submit(
    p: Arc<Portal>,
    site: Site,
    peer: Peer,
    source_id: String,
    headers: HeaderMap,
    body: Bytes,
    guest: bool,
) -> Response {
    let ip = p.client_ip(&peer, &headers, &site);
    if !p.rate_ok(ip) {
        let mut r = p.error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many attempts from your device. Please wait a minute and try again.",
            true,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let form = match web::form::parse(&body) {
        Ok(f) => f,
        Err(_) => {
            return p.error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form could not be read.",
                true,
            );
        }
    };
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let Some(sid) = session::from_headers(&headers) else {
        return p.error_page(
            StatusCode::FORBIDDEN,
            "Session expired",
            "Your session expired or cookies are disabled. Please start again.",
            true,
        );
    };
    if csrf::verify(&p.csrf_key, &sid, &field("csrf"), now_unix()).is_err() {
        return p.error_page(
            StatusCode::FORBIDDEN,
            "Session expired",
            "This form expired. Please start again.",
            true,
        );
    }
    let destination = redirect::sanitize(&field("destination_url"));
    let cfg = p.shared.config();
    let Some(src) = cfg.authentication.offered().find(|s| s.id == source_id) else {
        return p.error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This registration method is not offered.",
            true,
        );
    };
    if guest != matches!(src.kind, SourceKind::Null) {
        return p.error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This registration method is not offered.",
            true,
        );
    }
    let mac = match p.device(ip).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return p.error_page(StatusCode::FORBIDDEN, "Device not recognised", "Your device could not be identified on this network. Disconnect, reconnect and try again.", true);
        }
        Err(r) => return r,
    };
    let creds = sources::Credentials {
        username: field("username").trim().to_string(),
        password: field("password"),
        aup_accepted: matches!(field("aup").as_str(), "yes" | "on" | "1"),
        name: field("name"),
        email: field("email"),
    };
    let now = now_unix();
    let who = match sources::for_conf(src, &p.shared.store)
        .authenticate(&creds, now)
        .await
    {
        Ok(w) => w,
        Err(sources::AuthError::InvalidCredentials) => {
            p.portal_counter("invalid_credentials");
            tracing::info!(%mac, source = %src.id, "portal: login refused");
            return landing_page(
                &p,
                StatusCode::UNAUTHORIZED,
                &sid,
                destination,
                Some(INVALID_CREDENTIALS),
            );
        }
        Err(sources::AuthError::Incomplete(msg)) => {
            return landing_page(&p, StatusCode::BAD_REQUEST, &sid, destination, Some(msg));
        }
        Err(sources::AuthError::Unavailable(e)) => {
            tracing::warn!(source = %src.id, error = %e, "portal: source unavailable");
            return p.error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "The login service is not available right now. Please try again in a few minutes.",
                true,
            );
        }
    };
    let grant = match rules::decide(src, &who.attributes, now) {
        Ok(g) => g,
        Err(refusal) => {
            p.portal_counter("no_rule");
            tracing::info!(%mac, pid = %who.pid, "portal: {refusal}");
            return p.error_page(StatusCode::FORBIDDEN, "Access refused", "Your account is not allowed to register a device on this network. Please contact the help desk.", true);
        }
    };
    if who.email.is_some() || who.name.is_some() {
        let person = Person {
            pid: who.pid.clone(),
            firstname: who.name.clone(),
            lastname: None,
            email: who.email.clone(),
            notes: Some(format!(
                "registered through the captive portal ({})",
                src.id
            )),
        };
        if let Err(e) = p.shared.store.upsert_person(&person).await {
            return store_failed(&p, e);
        }
    }
    let node = match p
        .shared
        .store
        .register_node(mac, &who.pid, &grant.role, Some(grant.unregdate), now)
        .await
    {
        Ok(n) => n,
        Err(e) => return store_failed(&p, e),
    };
    p.portal_counter("registered");
    tracing::info!(
        target: "ironfence::portal::registration",
        %mac, pid = %who.pid, source = %src.id, rule = %grant.rule, role = %grant.role,
        unregdate = grant.unregdate, client = %ip,
        "device registered through the captive portal"
    );
    after_registration(&p.shared, mac);
    registered_page(&p, &node, destination)
}

fn store_failed(p: &Portal, e: ironfence_store::StoreError) -> Response {
    if p.shared.db.write_failed(&p.shared, &e) {
        p.shared.db.skipped(&p.shared, "portal_registration");
    }
    tracing::warn!(error = %e, "portal: registration not stored");
    p.error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        DEGRADED_MESSAGE,
        true,
    )
}

/// RFC 8908 §5: the captive-portal API.
async fn api(
    State(p): State<Arc<Portal>>,
    Extension(site): Extension<Site>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let ip = p.client_ip(&peer, &headers, &site);
    let mac = match p.device(ip).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let node = match mac {
        Some(m) => p.registered(m).await,
        None => None,
    };
    let mut body = serde_json::json!({
        "captive": node.is_none(),
        "user-portal-url": format!("{}/captive-portal", site.base_url),
    });
    if let Some(t) = node.and_then(|n| n.unregdate) {
        body["seconds-remaining"] = serde_json::json!((t - now_unix()).max(0));
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/captive+json"),
            (header::CACHE_CONTROL, "private"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Probes get their success answer once registered; everything else goes to the portal.
async fn fallback(
    State(p): State<Arc<Portal>>,
    Extension(site): Extension<Site>,
    Extension(peer): Extension<Peer>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if let Some(probe) = probes::classify(&host, uri.path()) {
        let ip = p.client_ip(&peer, &headers, &site);
        let mac = match p.device(ip).await {
            Ok(m) => m,
            Err(r) => return r,
        };
        let registered = match mac {
            Some(m) => p.registered(m).await.is_some(),
            None => false,
        };
        if registered {
            let ok = probe.success();
            return (
                StatusCode::from_u16(ok.status).unwrap_or(StatusCode::OK),
                [
                    (header::CONTENT_TYPE, ok.content_type),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                ok.body,
            )
                .into_response();
        }
        return found(&format!("{}/captive-portal", site.base_url));
    }
    let portal = format!("{}/captive-portal", site.base_url);
    // Keep where the device was going (GET only): shown as a link once registered.
    let own_host = site
        .base_url
        .split("://")
        .nth(1)
        .is_some_and(|h| h.eq_ignore_ascii_case(&host));
    let target = if method == Method::GET && !host.is_empty() && !own_host {
        let dest = format!(
            "http://{host}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        match redirect::sanitize(&dest) {
            Some(d) => format!("{portal}?destination_url={}", web::form::encode(&d)),
            None => portal,
        }
    } else {
        portal
    };
    found(&target)
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, v),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

fn base_url(tls: bool, ip: Ipv4Addr, port: u16) -> String {
    let (scheme, default) = if tls { ("https", 443) } else { ("http", 80) };
    if port == default {
        format!("{scheme}://{ip}")
    } else {
        format!("{scheme}://{ip}:{port}")
    }
}

/// What `start` bound.
#[derive(Debug)]
pub struct Started {
    pub addrs: Vec<SocketAddr>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Single server: binds the portal on every served interface address (HTTP, and HTTPS when
/// `conf/ssl/server.pem` exists). A cluster mounts [`router`] on the web listener instead.
pub async fn start(
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let cfg = shared.config();
    let mut started = Started {
        addrs: Vec::new(),
        tasks: Vec::new(),
    };
    let served = cfg.served_interfaces();
    if served.is_empty() {
        return Ok(started);
    }
    let portal = Portal::new(shared.clone())?;
    let tls = web::tls::server_config(&cfg.conf_dir)?;
    let (http_port, https_port) = (cfg.pf.ports.portal_http, cfg.pf.ports.portal_https);
    for ifc in &served {
        // HTTPS is where devices are sent when offered (the DHCP option 114 URL too).
        let base = match &tls {
            Some(_) => base_url(true, ifc.service_ip(), https_port),
            None => base_url(false, ifc.service_ip(), http_port),
        };
        let site = Site {
            base_url: base,
            trust_forwarded: false,
        };
        for ip in ifc.listen_ips() {
            let mut binds = vec![(http_port, None)];
            if let Some(t) = &tls {
                binds.push((https_port, Some(t.clone())));
            }
            for (port, tls) in binds {
                let addr = SocketAddr::new(IpAddr::V4(ip), port);
                let listener = bind(addr).map_err(|e| {
                    anyhow::anyhow!("binding the captive portal on {addr} ({}): {e}", ifc.name)
                })?;
                started.addrs.push(listener.local_addr()?);
                started.tasks.push(web::serve(
                    "captive portal",
                    listener,
                    tls,
                    router(portal.clone(), site.clone()),
                    web::Limits::default(),
                    shutdown.clone(),
                ));
            }
        }
    }
    tracing::info!(addrs = ?started.addrs, "captive portal listening");
    Ok(started)
}

/// Binds with `IP_FREEBIND` so a VIP this server does not hold yet can be bound.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    let _ = sock.set_freebind_v4(true);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    tokio::net::TcpListener::from_std(sock.into())
}

/// The portal routes for the cluster's web listener (behind haproxy: X-Forwarded-For from a
/// member or loopback is believed).
pub fn cluster_router(shared: Arc<Shared>) -> anyhow::Result<Router> {
    let cfg = shared.config();
    let tls = cfg.conf_dir.join("ssl/server.pem").exists();
    let base = cfg
        .served_interfaces()
        .first()
        .map(|i| base_url(tls, i.service_ip(), if tls { 443 } else { 80 }))
        .unwrap_or_default();
    let portal = Portal::new(shared)?;
    Ok(router(
        portal,
        Site {
            base_url: base,
            trust_forwarded: true,
        },
    ))
}

#[cfg(test)]
mod tests;

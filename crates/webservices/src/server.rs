//! The HTTPS server: source check ([`crate::access`]) → TLS (tokio-rustls) → HTTP/1.1 (hyper)
//! → login throttle → Basic auth → axum router.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ironfence_cluster::types::DbState;
use ironfence_cluster::{ConfigVersion, PushReport, ServerStatus};
use rustls::ServerConfig;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::access::{
    AllowedPeers, ApiCounters, FailureOutcome, LogLimiter, LoginThrottle, MAX_PER_SOURCE,
    SourceSlot, SourceSlots,
};
use crate::paths;
use crate::pki::ServerCert;
use crate::{MAX_BUNDLE_BYTES, MAX_REQUEST_BYTES, TLS_VERSIONS, crypto_provider};

/// Pre-authentication time a connection may hold a slot: short, members answer in
/// milliseconds.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Reading a pushed bundle (up to 64 MiB) must finish within this delay.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_CONNECTIONS: usize = 256;
/// After shutdown, in-flight requests get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// At most this many authentication failures (and, separately, refused connections) are
/// logged per minute.
const AUTH_LOG_BURST: u32 = 5;
const AUTH_LOG_WINDOW: Duration = Duration::from_secs(60);

/// What a server of the cluster exposes to its peers. Errors are messages for the operator;
/// they are returned to the caller as `{"error": "..."}`.
pub trait ClusterNode: Send + Sync + 'static {
    fn status(&self) -> impl Future<Output = Result<ServerStatus, String>> + Send;
    fn config_version(&self) -> impl Future<Output = Result<ConfigVersion, String>> + Send;
    /// The encoded configuration bundle (opaque here).
    fn bundle(&self) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
    /// `Some` only if `path` (relative, validated) is a file of the bundle.
    fn bundle_file(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send;
    /// Applies a bundle pushed by server `from`; `Err` = refused (answered as 422).
    fn apply_bundle(
        &self,
        bundle: Vec<u8>,
        from: String,
    ) -> impl Future<Output = Result<ConfigVersion, String>> + Send;
    /// Pushes this server's bundle to its peers.
    fn push_to_peers(&self) -> impl Future<Output = Result<PushReport, String>> + Send;
    /// This server's database state (Galera): what the peers' `ironfence db start` decides
    /// on. The default answers that this server does not report it.
    fn db_state(&self) -> impl Future<Output = Result<DbState, String>> + Send {
        async { Err("this server does not report its database state".to_string()) }
    }
    /// This server's own RADIUS audit records matching `query` (its local log; oldest
    /// first). The default answers that this server keeps none.
    fn audit(
        &self,
        query: ironfence_audit::Query,
    ) -> impl Future<Output = Result<Vec<ironfence_audit::AuditRecord>, String>> + Send {
        let _ = query;
        async { Err("this server does not keep an audit log".to_string()) }
    }
}

/// Most records `GET /api/v1/cluster/audit` returns (the newest ones), whatever `limit` asks.
pub const MAX_AUDIT_LIMIT: usize = 10_000;

/// The answer of `GET /api/v1/cluster/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditAnswer {
    /// Oldest first.
    pub records: Vec<ironfence_audit::AuditRecord>,
}

/// The query string of `GET /api/v1/cluster/audit` for `q`: `mac` as 12 hex digits, times in
/// microseconds since the epoch, `limit` (capped to [`MAX_AUDIT_LIMIT`]).
pub fn audit_query_string(q: &ironfence_audit::Query) -> String {
    let mut parts = Vec::new();
    if let Some(mac) = q.mac {
        let hex: String = mac.0.iter().map(|b| format!("{b:02x}")).collect();
        parts.push(format!("mac={hex}"));
    }
    if let Some(t) = q.since_us {
        parts.push(format!("since={t}"));
    }
    if let Some(t) = q.until_us {
        parts.push(format!("until={t}"));
    }
    let limit = q.limit.unwrap_or(MAX_AUDIT_LIMIT).min(MAX_AUDIT_LIMIT);
    parts.push(format!("limit={limit}"));
    parts.join("&")
}

/// Parses the query string of `GET /api/v1/cluster/audit` (see [`audit_query_string`]).
/// Unknown keys, repeated keys and malformed values are refused with the reason.
pub fn parse_audit_query(raw: Option<&str>) -> Result<ironfence_audit::Query, String> {
    let mut q = ironfence_audit::Query {
        limit: Some(MAX_AUDIT_LIMIT),
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !seen.insert(key) {
            return Err(format!("{key} given twice"));
        }
        let time = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| format!("{key}={v:?} is not a time in microseconds since the epoch"))
        };
        match key {
            "mac" => {
                q.mac = Some(
                    ironfence_core::Mac::parse(value)
                        .map_err(|_| format!("mac={value:?} is not a MAC address"))?,
                );
            }
            "since" => q.since_us = Some(time(value)?),
            "until" => q.until_us = Some(time(value)?),
            "limit" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| format!("limit={value:?} is not a number"))?;
                q.limit = Some(n.min(MAX_AUDIT_LIMIT));
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(format!(
                    "unknown parameter {shown:?} (mac, since, until, limit)"
                ));
            }
        }
    }
    Ok(q)
}

/// Webservices user and password (pf.conf `[webservices] user/pass`).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &"[redacted]")
            .finish()
    }
}

/// Serves the node-to-node API on `addr` until `shutdown` completes. Returns the bound address
/// (useful with port 0) and the task, which ends once in-flight requests are done (at most 30 s
/// after shutdown).
///
/// Only sources in `allowed` (plus this server itself) get past `accept`: everyone else is
/// closed before the TLS handshake. Keep `allowed` in step with cluster.conf
/// ([`AllowedPeers::set`]).
pub async fn serve<N: ClusterNode>(
    addr: SocketAddr,
    cert: ServerCert,
    credentials: Credentials,
    allowed: AllowedPeers,
    node: Arc<N>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("webservices certificate unusable: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen for webservices on {addr}: {e}"),
        )
    })?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        router: router(node),
        auth: Auth::new(&credentials),
        allowed,
        sources: Arc::new(SourceSlots::default()),
        refused_log: Mutex::new(LogLimiter::new(AUTH_LOG_BURST, AUTH_LOG_WINDOW)),
    });
    tracing::info!(
        addr = %local,
        members = ?shared.allowed.addresses(),
        "webservices listening (HTTPS, Basic auth; members' addresses only)"
    );
    let task = tokio::spawn(accept_loop(listener, acceptor, shared, shutdown));
    Ok((local, task))
}

struct Shared {
    router: Router,
    auth: Auth,
    allowed: AllowedPeers,
    sources: Arc<SourceSlots>,
    refused_log: Mutex<LogLimiter>,
}

impl Shared {
    /// The source checks made right after `accept`, before any TLS byte: `Some` lets the
    /// connection go on with its per-source slot.
    fn admit(&self, tcp: &TcpStream, peer: SocketAddr) -> Option<SourceSlot> {
        let ip = peer.ip().to_canonical();
        let local = tcp.local_addr().ok().map(|a| a.ip());
        if !self.allowed.admits(ip, local) {
            ApiCounters::hit(&self.allowed.counters().refused_not_member);
            self.log_refused(
                peer,
                "not a cluster member (no server or virtual IP of cluster.conf has this address)",
            );
            return None;
        }
        let slot = self.sources.try_take(ip, MAX_PER_SOURCE);
        if slot.is_none() {
            ApiCounters::hit(&self.allowed.counters().refused_source_limit);
            self.log_refused(peer, "too many concurrent connections from this address");
        }
        slot
    }

    fn log_refused(&self, peer: SocketAddr, why: &'static str) {
        let (log, suppressed) = lock(&self.refused_log).hit(Instant::now());
        if suppressed > 0 {
            tracing::warn!(
                suppressed,
                "webservices: {suppressed} more refused connections were not logged"
            );
        }
        if log {
            tracing::warn!(%peer, reason = why, "webservices: connection closed before TLS");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Dropping `tcp` closes it: the refused source never sees a ServerHello.
                    let Some(source) = shared.admit(&tcp, peer) else { continue };
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        ApiCounters::hit(&shared.allowed.counters().refused_no_slot);
                        tracing::warn!(%peer, "webservices: too many connections, closing");
                        continue;
                    };
                    conns.spawn(connection(
                        tcp, peer, acceptor.clone(), shared.clone(), stop_rx.clone(),
                        (permit, source),
                    ));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "webservices: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("webservices: aborting requests still running after shutdown grace");
        conns.abort_all();
    }
    tracing::info!("webservices stopped");
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _slots: (OwnedSemaphorePermit, SourceSlot),
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "webservices: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "webservices: TLS handshake timed out");
            return;
        }
    };
    let inner = TowerToHyperService::new(shared.router.clone());
    let service = service_fn(move |req| {
        let inner = inner.clone();
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(req, peer, &shared, inner).await) }
    });
    let mut builder = http1::Builder::new();
    // One request per connection (the client never reuses one): no idle keep-alive holding
    // a slot.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "webservices: connection error");
            }
        }
        () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Per-request front door: authentication and body limits, then the router.
async fn handle(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
    inner: TowerToHyperService<Router>,
) -> Response {
    let ip = peer.ip().to_canonical();
    if let Some(remaining) = shared.auth.blocked(ip) {
        ApiCounters::hit(&shared.allowed.counters().refused_blocked);
        shared.auth.log_blocked(peer, remaining);
        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins from {ip}: refused for {secs} s more; check the \
                 webservices user/password ([webservices] user/pass in pf.conf) and retry then"
            ),
        );
        if let Ok(v) = HeaderValue::try_from(secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    if let Err(why) = shared.auth.check(req.headers()) {
        if matches!(why, AuthFailure::Wrong) {
            ApiCounters::hit(&shared.allowed.counters().auth_failures);
        }
        shared.auth.log_failure(peer, why);
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "authentication required: wrong or missing webservices user/password",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ironfence\""),
        );
        return resp;
    }
    shared.auth.success(ip);
    let limit = if req.method() == Method::POST && req.uri().path() == paths::BUNDLE {
        MAX_BUNDLE_BYTES
    } else {
        MAX_REQUEST_BYTES
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let mut req = req.map(|body| Body::new(Limited::new(body, limit)));
    req.extensions_mut().insert(Peer(peer));
    match inner.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {} MiB", limit >> 20),
    )
}

#[derive(Clone, Copy)]
struct Peer(SocketAddr);

fn router<N: ClusterNode>(node: Arc<N>) -> Router {
    Router::new()
        .route(paths::STATUS, get(status::<N>))
        .route(paths::VERSION, get(version::<N>))
        .route(paths::BUNDLE, get(get_bundle::<N>).post(post_bundle::<N>))
        .route("/api/v1/cluster/files/{*path}", get(get_file::<N>))
        .route(paths::PUSH, post(push::<N>))
        .route(paths::DB, get(db_state::<N>))
        .route(paths::AUDIT, get(audit::<N>))
        .fallback(|uri: Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {}", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {}", uri.path()),
            )
        })
        .with_state(node)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

fn error(status: StatusCode, message: impl AsRef<str>) -> Response {
    json(
        status,
        &ErrorBody {
            error: message.as_ref(),
        },
    )
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                "{{\"error\":\"cannot encode the answer: {}\"}}",
                e.to_string().escape_default()
            ),
        )
            .into_response(),
    }
}

fn node_result<T: Serialize>(what: &str, result: Result<T, String>) -> Response {
    match result {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}")),
    }
}

fn octets(bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response()
}

async fn status<N: ClusterNode>(State(node): State<Arc<N>>) -> Response {
    node_result("cannot read the server status", node.status().await)
}

async fn db_state<N: ClusterNode>(State(node): State<Arc<N>>) -> Response {
    node_result("cannot read the database state", node.db_state().await)
}

async fn audit<N: ClusterNode>(State(node): State<Arc<N>>, uri: Uri) -> Response {
    let query = match parse_audit_query(uri.query()) {
        Ok(q) => q,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid audit query: {why}"),
            );
        }
    };
    node_result(
        "cannot read the audit log",
        node.audit(query)
            .await
            .map(|records| AuditAnswer { records }),
    )
}

async fn version<N: ClusterNode>(State(node): State<Arc<N>>) -> Response {
    node_result(
        "cannot read the configuration version",
        node.config_version().await,
    )
}

async fn get_bundle<N: ClusterNode>(State(node): State<Arc<N>>) -> Response {
    match node.bundle().await {
        Ok(bytes) => octets(bytes),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot build the configuration bundle: {e}"),
        ),
    }
}

async fn get_file<N: ClusterNode>(State(node): State<Arc<N>>, uri: Uri) -> Response {
    let raw = uri.path().strip_prefix(paths::FILES_PREFIX).unwrap_or("");
    let path = match bundle_file_path(raw) {
        Ok(p) => p,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid bundle file path: {why}"),
            );
        }
    };
    match node.bundle_file(&path).await {
        Ok(Some(bytes)) => octets(bytes),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("{path} is not a file of the configuration bundle"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {path}: {e}"),
        ),
    }
}

/// Decodes and validates the path of `GET /files/{path}` (raw, percent-encoded). Only plain
/// relative paths made of normal segments pass; everything else is refused before the node is
/// asked.
pub(crate) fn bundle_file_path(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("empty path");
    }
    if raw.len() > 4096 {
        return Err("path too long");
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or("malformed percent-encoding")?;
            let hi = (hex[0] as char)
                .to_digit(16)
                .ok_or("malformed percent-encoding")?;
            let lo = (hex[1] as char)
                .to_digit(16)
                .ok_or("malformed percent-encoding")?;
            decoded.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(decoded).map_err(|_| "not UTF-8")?;
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.contains('%') {
        return Err("percent sign in path (double encoding?)");
    }
    if path.contains('\\') {
        return Err("backslash in path");
    }
    if path.chars().any(char::is_control) {
        return Err("control character in path");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err("empty path segment"),
            "." | ".." => return Err("'.' or '..' segment"),
            _ => {}
        }
    }
    Ok(path)
}

async fn post_bundle<N: ClusterNode>(
    State(node): State<Arc<N>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let from = match headers.get(paths::FROM_HEADER).map(HeaderValue::to_str) {
        Some(Ok(v)) if !v.trim().is_empty() && v.len() <= 255 => v.trim().to_string(),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid X-Ironfence-From header (expected the sender's hostname)",
            );
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "missing X-Ironfence-From header (the sender's hostname)",
            );
        }
    };
    let media_type = |ct: &HeaderValue| {
        let ct = ct.to_str().unwrap_or_default();
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && media_type(ct) != "application/octet-stream"
    {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a bundle is sent as application/octet-stream",
        );
    }
    let bytes = match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BUNDLE_BYTES),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if is_length_limit(&e) => return too_large(MAX_BUNDLE_BYTES),
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the bundle: {e}"),
            );
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the bundle was not received within {BODY_READ_TIMEOUT:?}"),
            );
        }
    };
    if bytes.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty bundle");
    }
    let size = bytes.len();
    // Moved, not copied: the bundle is held once in memory while it is applied.
    match node.apply_bundle(Vec::from(bytes), from.clone()).await {
        Ok(v) => {
            tracing::info!(%peer, from = %from, size, version = %v.short(), "bundle applied");
            json(StatusCode::OK, &v)
        }
        Err(reason) => {
            tracing::warn!(%peer, from = %from, size, %reason, "bundle refused");
            error(StatusCode::UNPROCESSABLE_ENTITY, reason)
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

async fn push<N: ClusterNode>(
    State(node): State<Arc<N>>,
    Extension(Peer(peer)): Extension<Peer>,
) -> Response {
    tracing::info!(%peer, "push to peers requested");
    node_result("cannot push to peers", node.push_to_peers().await)
}

/// Basic auth check with constant-time comparison, per-source backoff after failures and
/// rate-limited failure logs.
struct Auth {
    user: [u8; 32],
    pass: [u8; 32],
    throttle: Mutex<LoginThrottle>,
    log: Mutex<LogLimiter>,
}

#[derive(Debug, Clone, Copy)]
enum AuthFailure {
    Missing,
    Malformed,
    Wrong,
}

impl AuthFailure {
    fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "no Authorization header",
            AuthFailure::Malformed => "malformed Basic credentials",
            AuthFailure::Wrong => "wrong user or password",
        }
    }
}

/// Decodes an `Authorization` header value of the Basic scheme (RFC 7617) into `(user,
/// password)`: scheme case-insensitive, base64 (standard alphabet, padded), split at the first
/// colon. `None` for anything else. Public for the fuzz target; it reads untrusted bytes.
pub fn parse_basic_credentials(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use base64::Engine;
    // Header values are visible ASCII; a credential longer than this is no credential.
    if value.len() > 8192 || !value.is_ascii() {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let mut decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let pass = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, pass))
}

impl Auth {
    fn new(c: &Credentials) -> Auth {
        Auth {
            user: Sha256::digest(c.user.as_bytes()).into(),
            pass: Sha256::digest(c.pass.as_bytes()).into(),
            throttle: Mutex::new(LoginThrottle::default()),
            log: Mutex::new(LogLimiter::new(AUTH_LOG_BURST, AUTH_LOG_WINDOW)),
        }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), AuthFailure> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthFailure::Missing)?;
        let (user, pass) =
            parse_basic_credentials(value.as_bytes()).ok_or(AuthFailure::Malformed)?;
        // Compare digests: constant time and independent of the lengths.
        let user: [u8; 32] = Sha256::digest(&user).into();
        let pass: [u8; 32] = Sha256::digest(&pass).into();
        let ok = user.ct_eq(&self.user) & pass.ct_eq(&self.pass);
        if bool::from(ok) {
            Ok(())
        } else {
            Err(AuthFailure::Wrong)
        }
    }

    fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        lock(&self.throttle).blocked(ip, Instant::now())
    }

    fn success(&self, ip: IpAddr) {
        lock(&self.throttle).success(ip);
    }

    /// Logs the failure (rate-limited) and, for a wrong user/password, counts it against the
    /// source: a missing or malformed header guesses nothing.
    fn log_failure(&self, peer: SocketAddr, why: AuthFailure) {
        let outcome = match why {
            AuthFailure::Wrong => {
                Some(lock(&self.throttle).failure(peer.ip().to_canonical(), Instant::now()))
            }
            AuthFailure::Missing | AuthFailure::Malformed => None,
        };
        if let Some(FailureOutcome {
            count,
            blocked_for: Some(d),
        }) = outcome
        {
            // Never suppressed: the operator must see why a member is refused.
            tracing::warn!(
                %peer,
                failures = count,
                blocked_secs = d.as_secs(),
                "webservices: {peer} refused for {}s after {count} failed logins",
                d.as_secs()
            );
            return;
        }
        if self.may_log() {
            tracing::warn!(
                %peer,
                reason = why.as_str(),
                failures = outcome.map(|o| o.count),
                "webservices: authentication failed (HTTP 401)"
            );
        }
    }

    /// Rate limit of the authentication log: `false` when this line is to be suppressed (the
    /// number suppressed is logged once the limit lets a line through again).
    fn may_log(&self) -> bool {
        let (log, suppressed) = lock(&self.log).hit(Instant::now());
        if suppressed > 0 {
            tracing::warn!(
                suppressed,
                "webservices: {suppressed} more authentication failures were not logged"
            );
        }
        log
    }

    fn log_blocked(&self, peer: SocketAddr, remaining: Duration) {
        if self.may_log() {
            tracing::warn!(
                %peer,
                remaining_secs = remaining.as_secs(),
                "webservices: request refused (HTTP 429): source blocked after failed logins"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths() {
        assert_eq!(bundle_file_path("conf/pf.conf").unwrap(), "conf/pf.conf");
        assert_eq!(
            bundle_file_path("conf/my%20file.conf").unwrap(),
            "conf/my file.conf"
        );
        for bad in [
            "",
            "../etc/passwd",
            "conf/../../etc/passwd",
            "conf/./pf.conf",
            "%2e%2e/etc/passwd",
            "conf%2f..%2f..%2fetc%2fpasswd",
            "%2Fetc%2Fpasswd",
            "/etc/passwd",
            "conf//pf.conf",
            "conf/",
            "%252e%252e/x",
            "conf\\..\\x",
            "conf%5c..%5cx",
            "conf/%00",
            "conf/%zz",
            "conf/%2",
            "conf/%ff",
        ] {
            assert!(bundle_file_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn failure_logs_are_rate_limited() {
        let auth = Auth::new(&Credentials {
            user: "u".into(),
            pass: "p".into(),
        });
        let peer: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        // Malformed headers are logged but not counted against the source.
        for _ in 0..8 {
            auth.log_failure(peer, AuthFailure::Malformed);
        }
        let w = auth.log.lock().unwrap();
        assert_eq!((w.logged, w.suppressed), (AUTH_LOG_BURST, 3));
        drop(w);
        assert_eq!(auth.blocked(peer.ip()), None);
    }

    #[test]
    fn basic_auth_parsing() {
        let auth = Auth::new(&Credentials {
            user: "ws".into(),
            pass: "p:w".into(),
        });
        let mut h = HeaderMap::new();
        assert!(matches!(auth.check(&h), Err(AuthFailure::Missing)));
        h.insert(header::AUTHORIZATION, "Basic d3M6cDp3".parse().unwrap()); // ws:p:w
        assert!(auth.check(&h).is_ok());
        h.insert(header::AUTHORIZATION, "basic   d3M6cDp3 ".parse().unwrap());
        assert!(auth.check(&h).is_ok());
        h.insert(header::AUTHORIZATION, "Basic d3M6cA==".parse().unwrap()); // ws:p
        assert!(matches!(auth.check(&h), Err(AuthFailure::Wrong)));
        h.insert(header::AUTHORIZATION, "Bearer d3M6cDp3".parse().unwrap());
        assert!(matches!(auth.check(&h), Err(AuthFailure::Malformed)));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(matches!(auth.check(&h), Err(AuthFailure::Malformed)));
        h.insert(header::AUTHORIZATION, "Basic d3M=".parse().unwrap()); // "ws", no colon
        assert!(matches!(auth.check(&h), Err(AuthFailure::Malformed)));
    }
}

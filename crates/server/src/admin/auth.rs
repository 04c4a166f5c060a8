//! Who is calling: bearer tokens (API) and the session cookie (pages), login and logout.
//!
//! ```text
//!  POST /login {username, password, totp?}
//!     ─► backoff (account, source) ── locked ─► 429 Retry-After (same answer for unknown names)
//!     ─► admin.conf account? enabled? ─ no ─► dummy_verify (same cost) ─► 401
//!     ─► argon2 verify (blocking pool) ─► TOTP (±1 step, never twice) ─► token ─► audit "login"
//!  any request ─► Authorization: Bearer <t> | Cookie: ironfence_admin=<t>
//!     ─► signature, idle 15 min, lifetime 12 h ─► revoked? ─► role from admin.conf NOW
//!     ─► Principal (+ refreshed token: X-Ironfence-Token)
//! ```
//!
//! Tokens are stateless ([`ironfence_admin::token`]): any server of the cluster verifies them
//! with the shared key `conf/ssl/admin-token.key` (synchronized with conf/ssl). Logout
//! revokes the session in the database (`admin_session_revoked`); each server reloads the
//! revoked set at most every [`REVOCATION_REFRESH_SECS`] seconds, so a token logged out on
//! one server is refused by the others within that bound. While the database is read-only
//! the revocation is kept in this server's memory (refused here at once) and written when the
//! database takes writes again.

use super::AdminState;
use super::AppState;
use super::api::Endpoint;
use super::audit_log::{self, Change};
use super::error::ApiError;
use super::json::Body;
use crate::web::Peer;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ironfence_admin::token::{self, Claims, IDLE_TIMEOUT_SECS, MAX_LIFETIME_SECS, TokenKey};
use ironfence_admin::totp::ReplayGuard;
use ironfence_admin::{Access, Backoff, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The pages' session cookie (helper D's framework sets it from [`LoginOutput::token`]).
pub const COOKIE_NAME: &str = "ironfence_admin";
/// The response header carrying the refreshed token on every authenticated API answer.
pub const TOKEN_HEADER: &str = "x-ironfence-token";
/// The signing key, relative to the configuration directory.
pub const KEY_FILE: &str = "ssl/admin-token.key";
/// How stale this server's copy of the revoked sessions may be.
pub const REVOCATION_REFRESH_SECS: i64 = 2;

/// An authenticated admin, inserted as a request extension by the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    pub role: Role,
    /// The session the token or cookie belongs to (names it in the admin audit log).
    pub session: String,
    /// Where the request came from (behind haproxy: the forwarded client).
    pub client: IpAddr,
}

/// An authenticated request: who, and the token to hand back (last_seen = now).
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub claims: Claims,
    pub refreshed_token: String,
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Debug, Default)]
struct Revoked {
    /// Revoked here (written to the database or not yet): refused at once on this server.
    local: HashMap<String, i64>,
    /// Not yet written to the database (it was read-only).
    pending: Vec<(String, i64)>,
    /// The database's set, as of `synced_at`.
    db: HashMap<String, i64>,
    synced_at: Option<i64>,
}

/// Authentication state of one server: the signing key, backoff counters, TOTP replay
/// guard, revoked sessions. Reachable as `AdminState::auth`.
pub struct Auth {
    key_path: PathBuf,
    key: Mutex<Option<(TokenKey, std::time::SystemTime)>>,
    clock: Clock,
    backoff: Mutex<Backoff>,
    totp_used: Mutex<ReplayGuard>,
    revoked: Mutex<Revoked>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Auth {
    /// For the configuration directory `conf_dir`, with the system clock.
    pub fn new(conf_dir: &Path) -> Auth {
        Auth::with_clock(conf_dir, Arc::new(system_now))
    }

    /// With an injected clock (UNIX seconds): tests of expiry and backoff.
    pub fn with_clock(conf_dir: &Path, clock: Clock) -> Auth {
        Auth {
            key_path: conf_dir.join(KEY_FILE),
            key: Mutex::new(None),
            clock,
            backoff: Mutex::new(Backoff::default()),
            totp_used: Mutex::new(ReplayGuard::new(10_000)),
            revoked: Mutex::new(Revoked::default()),
        }
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The signing key, re-read when the file changes (a cluster push replaces it).
    pub fn key(&self) -> Result<TokenKey, ApiError> {
        let meta = std::fs::metadata(&self.key_path).map_err(|_| {
            ApiError::unavailable(format!(
                "the admin token key {} is missing: create it with `ironfence admin add` (then `ironfence cluster sync` in a cluster)",
                self.key_path.display()
            ))
        })?;
        let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let mut guard = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, t)) = guard.as_ref()
            && *t == mtime
        {
            return Ok(k.clone());
        }
        let k = read_key(&self.key_path)
            .map_err(|e| ApiError::internal("reading the admin token key", e))?;
        *guard = Some((k.clone(), mtime));
        Ok(k)
    }

    /// The key pages use for CSRF tokens (derived: never valid as an API token).
    pub fn csrf_key(&self) -> Result<[u8; 32], ApiError> {
        Ok(self.key()?.derive("admin pages csrf"))
    }

    async fn is_revoked(&self, state: &AdminState, session: &str, now: i64) -> bool {
        let pending = {
            let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            let refresh = r
                .synced_at
                .is_none_or(|t| now - t >= REVOCATION_REFRESH_SECS || now < t);
            if refresh {
                r.synced_at = Some(now); // one refresher at a time
                Some(std::mem::take(&mut r.pending))
            } else {
                None
            }
        };
        if let Some(pending) = pending {
            // Revocations made while the database was read-only are written first.
            let store = &state.shared.store;
            let mut unwritten = Vec::new();
            for (s, until) in pending {
                if state.shared.db.is_read_only()
                    || store.revoke_admin_session(&s, until, now).await.is_err()
                {
                    unwritten.push((s, until));
                }
            }
            let fetched = store.revoked_admin_sessions(now).await;
            let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            r.pending.extend(unwritten);
            match fetched {
                Ok(list) => r.db = list.into_iter().collect(),
                Err(e) => {
                    tracing::debug!(error = %e, "admin: revoked sessions not refreshed; keeping the last known set")
                }
            }
            r.local.retain(|_, t| *t >= now);
        }
        let r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        r.local.get(session).is_some_and(|&t| t >= now)
            || r.db.get(session).is_some_and(|&t| t >= now)
    }

    async fn revoke(&self, state: &AdminState, session: &str, until: i64, now: i64) {
        {
            let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            r.local.insert(session.to_string(), until);
        }
        let written = !state.shared.db.is_read_only()
            && match state
                .shared
                .store
                .revoke_admin_session(session, until, now)
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    state.shared.db.write_failed(&state.shared, &e);
                    false
                }
            };
        if !written {
            tracing::info!(
                "admin logout while the database is read-only: the session is refused on this server now, on the others once the database takes writes"
            );
            let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            r.pending.push((session.to_string(), until));
        }
    }
}

fn read_key(path: &Path) -> anyhow::Result<TokenKey> {
    let text = std::fs::read_to_string(path)?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow::anyhow!("{}: not base64: {e}", path.display()))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: not 32 bytes", path.display()))?;
    Ok(TokenKey::new(arr))
}

/// Creates `conf_dir/ssl/admin-token.key` (32 random bytes, base64, mode 0600) if absent.
/// Returns whether it was created.
pub fn ensure_key(conf_dir: &Path) -> anyhow::Result<bool> {
    let path = conf_dir.join(KEY_FILE);
    if path.exists() {
        read_key(&path)?;
        return Ok(false);
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness for the key: {e}"))?;
    let text = format!("{}\n", STANDARD.encode(b));
    ironfence_core::fsutil::write_atomic_with(
        &path,
        text.as_bytes(),
        ironfence_core::fsutil::WriteOptions {
            mode: 0o600,
            create_dirs: Some(0o750),
            owner: None,
        },
    )?;
    Ok(true)
}

/// The token a request carries: `Authorization: Bearer …`, else the pages' cookie.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, t)) = v.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
}

/// The client address of a request (loopback in router tests, which have no peer).
pub fn client_of(state: &AdminState, headers: &HeaderMap, peer: Option<Peer>) -> IpAddr {
    let ip = peer
        .map(|p| p.addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    crate::web::client::client_ip(&state.shared, ip, headers, state.trust_forwarded)
}

/// The caller of a request with `headers`, received from `peer` (absent in router tests), or
/// 401.
pub async fn authenticate(
    state: &AdminState,
    headers: &HeaderMap,
    peer: Option<Peer>,
) -> Result<Principal, ApiError> {
    session(state, headers, peer).await.map(|s| s.principal)
}

/// [`authenticate`], with the claims and the refreshed token (the gate sends it back; the
/// pages refresh their cookie with it).
pub async fn session(
    state: &AdminState,
    headers: &HeaderMap,
    peer: Option<Peer>,
) -> Result<Session, ApiError> {
    let Some(token) = token_from(headers) else {
        return Err(ApiError::unauthorized(
            "log in first: POST /api/v1/login, then send Authorization: Bearer <token>",
        ));
    };
    // Without a key no token can be genuine: not logged in (login itself answers 503).
    let key = state
        .auth
        .key()
        .map_err(|e| ApiError::unauthorized(e.message))?;
    let now = state.auth.now();
    let claims = token::verify(&key, &token, now)
        .map_err(|e| ApiError::unauthorized(format!("{e}: log in again (POST /api/v1/login)")))?;
    let session_id = claims.session_id();
    if state.auth.is_revoked(state, &session_id, now).await {
        return Err(ApiError::unauthorized(
            "this session was logged out: log in again",
        ));
    }
    // The role is read from admin.conf now: a demoted or disabled account loses access at once.
    let cfg = state.shared.config();
    let account = cfg
        .admins
        .get(&claims.account)
        .filter(|a| !a.disabled && !a.password.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this admin account no longer exists or is disabled: log in with another account",
            )
        })?;
    let refreshed = claims.refreshed(now);
    Ok(Session {
        principal: Principal {
            account: account.name.clone(),
            role: account.role,
            session: session_id,
            client: client_of(state, headers, peer),
        },
        refreshed_token: token::issue(&key, &refreshed),
        claims: refreshed,
    })
}

/// `POST /login` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
    /// The 6-digit TOTP code, for accounts with the second factor.
    #[serde(default)]
    pub totp: Option<String>,
}

/// `POST /login` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoginOutput {
    /// Send as `Authorization: Bearer <token>`; every answer carries a refreshed one in
    /// `X-Ironfence-Token`.
    pub token: String,
    #[schemars(with = "RoleSchema")]
    pub role: Role,
    /// The session ends after this many seconds without a request.
    pub idle_timeout_s: i64,
    /// The session ends at this time (UNIX seconds) whatever the activity.
    pub expires_at: i64,
}

fn principal_for_login(username: &str, client: IpAddr, session: String) -> Principal {
    Principal {
        account: username.chars().take(64).collect(),
        // Not used for anything but naming the entry; the account may not exist.
        role: Role::ReadOnly,
        session,
        client,
    }
}

async fn login_failed(state: &AdminState, input: &LoginInput, client: IpAddr, why: &str) {
    let now = state.auth.now();
    state
        .auth
        .backoff
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failure(&input.username, client, now);
    let who = principal_for_login(&input.username, client, String::new());
    let change = Change::new("login.failure", format!("admin {}", who.account));
    let entry = ironfence_store::admin::AdminAuditEntry {
        id: 0,
        at: now,
        server: state.shared.config().identity.clone(),
        account: who.account.clone(),
        client: client.to_string(),
        session: String::new(),
        action: change.action,
        target: change.target,
        changes: "[]".into(),
        result: why.to_string(),
    };
    if let Err(e) = audit_log::store_entry(state, entry, false).await {
        tracing::warn!(error = %e, "admin audit: a failed login could not be recorded");
    }
}

/// Logs in: checks the backoff, the password (argon2id) and the TOTP code, and issues a
/// token. Wrong name and wrong password are one answer (no enumeration).
pub async fn login(
    state: &AdminState,
    input: LoginInput,
    client: IpAddr,
) -> Result<LoginOutput, ApiError> {
    let now = state.auth.now();
    if input.username.is_empty() || input.username.len() > 255 {
        return Err(ApiError::invalid("username", "1 to 255 characters"));
    }
    if input.password.len() > 1024 {
        return Err(ApiError::invalid("password", "at most 1024 characters"));
    }
    let check = state
        .auth
        .backoff
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(&input.username, client, now);
    if let Err(locked) = check {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins for this account or from this address: try again in {} seconds",
                locked.retry_after
            ),
        );
        e.headers
            .push(("retry-after", locked.retry_after.max(1).to_string()));
        return Err(e);
    }
    let cfg = state.shared.config();
    let account = cfg
        .admins
        .get(&input.username)
        .filter(|a| !a.disabled && !a.password.is_empty())
        .cloned();
    let password = input.password.clone();
    let hash = account.as_ref().map(|a| a.password.expose().to_string());
    // argon2 costs tens of milliseconds of CPU: off the async workers. An unknown or disabled
    // account costs the same (dummy_verify), so the time does not tell which names exist.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => ironfence_portal::password::verify(&h, &password),
        None => {
            ironfence_portal::password::dummy_verify(&password);
            false
        }
    })
    .await
    .map_err(|e| ApiError::internal("verifying the password", e))?;
    let Some(account) = account.filter(|_| ok) else {
        login_failed(
            state,
            &input,
            client,
            "refused: wrong user name or password",
        )
        .await;
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    if let Some(secret) = &account.totp {
        let code = input.totp.as_deref().map(str::trim).unwrap_or("");
        if code.is_empty() {
            // Counted as a failure: otherwise this answer would be a free password oracle.
            login_failed(state, &input, client, "refused: TOTP code missing").await;
            let mut e = ApiError::unauthorized(
                "TOTP code required: send the 6-digit code of your authenticator app in totp",
            );
            e.errors.push(super::error::FieldError {
                field: "totp".into(),
                message: "TOTP code required".into(),
            });
            return Err(e);
        }
        let step = ironfence_admin::totp::matching_step(&secret.0, code, now);
        let fresh = step.is_some_and(|s| {
            state
                .auth
                .totp_used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .use_step(&account.name, s, now)
        });
        if !fresh {
            let why = if step.is_some() {
                "this TOTP code was already used: wait for the next one"
            } else {
                "wrong or expired TOTP code"
            };
            login_failed(state, &input, client, &format!("refused: {why}")).await;
            let mut e = ApiError::unauthorized(why);
            e.errors.push(super::error::FieldError {
                field: "totp".into(),
                message: why.into(),
            });
            return Err(e);
        }
    }
    state
        .auth
        .backoff
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .success(&account.name, client);
    let key = state.auth.key()?;
    let mut sid = [0u8; 16];
    getrandom::fill(&mut sid).map_err(|e| ApiError::internal("no randomness for a session", e))?;
    let claims = Claims::new(sid, account.name.clone(), now);
    let token = token::issue(&key, &claims);
    let who = Principal {
        account: account.name.clone(),
        role: account.role,
        session: claims.session_id(),
        client,
    };
    // A login changes nothing: its entry is spooled while the database is read-only (an
    // admin may log in on a partitioned server) but a failure to record it is not fatal.
    if let Err(e) = audit_log::record(
        state,
        &who,
        Change::new("login", format!("admin {}", account.name)),
    )
    .await
    {
        tracing::warn!(error = %e, "admin audit: a login could not be recorded");
    }
    Ok(LoginOutput {
        token,
        role: account.role,
        idle_timeout_s: IDLE_TIMEOUT_SECS,
        expires_at: claims.expires_at(),
    })
}

/// Logs the caller's session out on every server (see the module docs for the bound).
pub async fn logout(state: &AdminState, who: &Principal) -> Result<(), ApiError> {
    let now = state.auth.now();
    state
        .auth
        .revoke(state, &who.session, now + MAX_LIFETIME_SECS, now)
        .await;
    if let Err(e) = audit_log::record(
        state,
        who,
        Change::new("logout", format!("admin {}", who.account)),
    )
    .await
    {
        tracing::warn!(error = %e, "admin audit: a logout could not be recorded");
    }
    Ok(())
}

/// The OpenAPI schema of [`Role`] (the crate `ironfence_admin` has no schemars).
#[derive(Debug, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum RoleSchema {
    Administrator,
    Operator,
    ReadOnly,
}

/// `GET /me`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Me {
    pub account: String,
    #[schemars(with = "RoleSchema")]
    pub role: Role,
    pub session: String,
    pub client: String,
    /// Whether the account has the TOTP second factor.
    pub totp: bool,
    pub idle_timeout_s: i64,
}

pub fn me(state: &AdminState, who: &Principal) -> Me {
    let cfg = state.shared.config();
    Me {
        account: who.account.clone(),
        role: who.role,
        session: who.session.clone(),
        client: who.client.to_string(),
        totp: cfg
            .admins
            .get(&who.account)
            .is_some_and(|a| a.totp.is_some()),
        idle_timeout_s: IDLE_TIMEOUT_SECS,
    }
}

async fn login_handler(
    State(state): State<AppState>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    Body(input): Body<LoginInput>,
) -> Result<axum::Json<LoginOutput>, ApiError> {
    let client = client_of(&state, &headers, peer.map(|p| p.0));
    login(&state, input, client).await.map(axum::Json)
}

async fn logout_handler(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
) -> Result<StatusCode, ApiError> {
    logout(&state, &who).await.map(|()| StatusCode::NO_CONTENT)
}

async fn me_handler(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
) -> axum::Json<Me> {
    axum::Json(me(&state, &who))
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post("/login", "Log in: a bearer token for the API")
            .tag("auth")
            .access(Access::Public)
            .body::<LoginInput>()
            .returns::<LoginOutput>()
            .to(login_handler),
        Endpoint::post("/logout", "Log out: the token is refused on every server")
            .tag("auth")
            .access(Access::Read)
            .no_content()
            .to(logout_handler),
        Endpoint::get("/me", "The logged-in admin")
            .tag("auth")
            .access(Access::Read)
            .returns::<Me>()
            .to(me_handler),
    ]
}

#[cfg(test)]
mod tests;

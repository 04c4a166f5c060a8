//! Administration: the REST API (`/api/v1`) and the web pages (`/admin`) built on it.
//!
//! ```text
//!  admin's browser / script ──HTTPS──► haproxy (management VIP :1443, cluster) ─► web listener
//!                           └─────────► admin listener (:1443, single server) ─┘
//!      /api/v1/…   api::router: route table ─► gate (token, role, read-only) ─► handler
//!      /admin/…    ui::router:  session cookie + CSRF ─► the same service functions
//!                                   │
//!        resources: nodes · users · switches · roles · sources · configuration · cluster
//!           reads  ─► store / config / audit files / cluster peers
//!           writes ─► validation ─► store (data) or config_write (files, push) ─► admin audit
//! ```
//!
//! One implementation of every write: each resource has service functions taking the caller
//! (`auth::Principal`) and typed input; the API handlers and the pages both call them. While
//! the database is read-only (degraded), data writes are refused in one place (`api::gate`
//! for the API, the same `Writes` rule for pages) and configuration writes still work, as the
//! clustering guide says.

pub mod admins;
pub mod api;
pub mod audit_log;
pub mod auth;
pub mod cluster_status;
pub mod config_write;
pub mod error;
pub mod json;
pub mod listener;
pub mod nodes;
pub mod radius_log;
pub mod roles;
pub mod settings;
pub mod sources;
pub mod switches;
pub mod ui;
pub mod users;

use crate::Shared;
use axum::Router;
use std::sync::Arc;

pub use api::{Endpoint, Writes};
pub use auth::Principal;
pub use error::ApiError;

/// What every admin request can reach.
pub struct AdminState {
    pub shared: Arc<Shared>,
    /// Whether `X-Forwarded-For` is believed (from a member or loopback only): true on the
    /// cluster's web listener, behind haproxy.
    pub trust_forwarded: bool,
    /// Signing key, login backoff, TOTP replay guard, revoked sessions (this server's).
    pub auth: auth::Auth,
}

impl AdminState {
    /// The state for `shared` with the system clock.
    pub fn new(shared: Arc<Shared>, trust_forwarded: bool) -> AdminState {
        let auth = auth::Auth::new(&shared.config().conf_dir);
        AdminState {
            shared,
            trust_forwarded,
            auth,
        }
    }
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("trust_forwarded", &self.trust_forwarded)
            .finish_non_exhaustive()
    }
}

pub type AppState = Arc<AdminState>;

/// The endpoints of every resource (the API's route table is [`api::all`]).
pub fn resources() -> Vec<Endpoint> {
    let mut v = Vec::new();
    v.extend(admins::endpoints());
    v.extend(audit_log::endpoints());
    v.extend(nodes::endpoints());
    v.extend(users::endpoints());
    v.extend(radius_log::endpoints());
    v.extend(cluster_status::endpoints());
    v.extend(switches::endpoints());
    v.extend(roles::endpoints());
    v.extend(sources::endpoints());
    v.extend(settings::endpoints());
    v
}

/// `/api/v1` and `/admin`, ready to be served or merged into the cluster's web listener.
pub fn router(shared: Arc<Shared>, trust_forwarded: bool) -> anyhow::Result<Router> {
    router_for(Arc::new(AdminState::new(shared, trust_forwarded)))
}

/// [`router`] over a prepared state (tests inject a clock through `AdminState::auth`).
pub fn router_for(state: AppState) -> anyhow::Result<Router> {
    Ok(Router::new()
        .nest("/admin", ui::router(state.clone()))
        .route("/admin/", axum::routing::get(ui::to_dashboard))
        .nest("/api/v1", api::router(state)))
}

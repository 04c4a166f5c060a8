//! Login and logout.
//!
//! The login form's CSRF token is bound to a random pre-login cookie ([`super::PRE_COOKIE`]):
//! without it, another site could log the admin's browser into an account of its choosing
//! (login CSRF).

use super::{PRE_COOKIE, Page, Ui, cookie, cookie_value, is_https, now_unix, set_cookie};
use crate::admin::AppState;
use crate::web::{Peer, session};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ironfence_admin::Access;
use ironfence_portal::csrf;
use std::sync::Arc;

pub const TEMPLATES: &[(&str, &str)] = &[("login.html", include_str!("templates/login.html"))];

pub fn pages() -> Vec<Page> {
    vec![Page::get("/login").access(Access::Public).to(login_form)]
}

const LOGIN_CSRF_TTL: i64 = 3600;

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// What the login form shows.
#[derive(Debug, Default)]
pub(super) struct FormView {
    pub username: String,
    /// The account has a second factor: show the code field.
    pub totp: bool,
    pub error: Option<String>,
    pub next: Option<String>,
}

/// The login page with a CSRF token bound to the pre-login cookie (set when absent).
pub(super) fn login_page(
    state: &AppState,
    ui: &Arc<Ui>,
    headers: &HeaderMap,
    peer: Option<&Peer>,
    status: StatusCode,
    view: FormView,
) -> Response {
    let secure = is_https(state, peer, headers);
    let existing = cookie_value(headers, PRE_COOKIE).filter(|v| v.len() == 22);
    let (pre, fresh) = match existing {
        Some(p) => (p, false),
        None => match session::new_id() {
            Ok(p) => (p, true),
            Err(e) => {
                tracing::error!(error = %e, "admin login: no session id");
                return super::PageError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This server cannot make a session right now.",
                )
                .into_response();
            }
        },
    };
    let token = csrf::issue(&ui.key, &pre, now_unix(), LOGIN_CSRF_TTL);
    let ctx = minijinja::context! {
        csrf => token,
        username => view.username,
        totp => view.totp,
        error => view.error,
        next => view.next.unwrap_or_default(),
    };
    let html = ui
        .templates
        .render("login.html", super::public_context(state, ctx));
    let mut r = (status, super::html_headers(), html).into_response();
    if fresh {
        set_cookie(&mut r, &cookie(PRE_COOKIE, &pre, secure, None));
    }
    r
}

async fn login_form(
    State(state): State<AppState>,
    axum::Extension(ui): axum::Extension<Arc<Ui>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = q.next.as_deref().and_then(super::safe_next);
    login_page(
        &state,
        &ui,
        &headers,
        peer.as_ref().map(|p| &p.0),
        StatusCode::OK,
        FormView {
            next,
            ..FormView::default()
        },
    )
}

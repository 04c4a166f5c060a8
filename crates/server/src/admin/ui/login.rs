//! Login (with the TOTP second factor) and logout, on `auth::login` / `auth::logout` — the
//! same service functions as `POST /api/v1/login` and `/logout`.
//!
//! The login form's CSRF token is bound to a random pre-login cookie ([`super::PRE_COOKIE`]):
//! without it, another site could log the admin's browser into an account of its choosing
//! (login CSRF). The TOTP field appears once the account is known to need it (the password
//! was right and no code was sent); the admin then types the password again with the code —
//! the password is never written back into the page.

use super::{
    BASE, COOKIE, FLASH_COOKIE, Flash, MAX_FORM, PRE_COOKIE, Page, PageError, PageUser, Ui, cookie,
    cookie_value, decode_flash, is_https, now_unix, page_key, redirect, set_cookie,
};
use crate::admin::AppState;
use crate::admin::auth::{self, LoginInput};
use crate::web::{self, Peer, session};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ironfence_admin::Access;
use ironfence_portal::csrf;
use std::sync::Arc;

pub const TEMPLATES: &[(&str, &str)] = &[("login.html", include_str!("templates/login.html"))];

pub fn pages() -> Vec<Page> {
    vec![
        Page::get("/login").access(Access::Public).to(login_form),
        Page::post("/login").access(Access::Public).to(login_submit),
        // Any admin may log out; it works read-only too (the revocation is kept in memory
        // and written when the database is back: auth's business).
        Page::post("/logout").to(logout),
    ]
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
    /// Not an error: what to do next (the code is needed).
    pub notice: Option<String>,
    pub next: Option<String>,
}

/// The login page with a CSRF token bound to the pre-login cookie (set when absent).
fn login_page(
    state: &AppState,
    ui: &Arc<Ui>,
    headers: &HeaderMap,
    peer: Option<&Peer>,
    status: StatusCode,
    mut view: FormView,
) -> Response {
    let secure = is_https(state, peer, headers);
    let existing = cookie_value(headers, PRE_COOKIE).filter(|v| v.len() == 22);
    let (pre, fresh) = match existing {
        Some(p) => (p, false),
        None => match session::new_id() {
            Ok(p) => (p, true),
            Err(e) => {
                tracing::error!(error = %e, "admin login: no session id");
                return PageError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This server cannot make a session right now.",
                )
                .into_response();
            }
        },
    };
    let (token, flash) = match page_key(state) {
        Ok(key) => (
            csrf::issue(&key, &pre, now_unix(), LOGIN_CSRF_TTL),
            cookie_value(headers, FLASH_COOKIE).and_then(|v| decode_flash(&key, &v)),
        ),
        Err(e) => {
            // No token key yet: no admin account was ever created.
            view.error.get_or_insert(e.message);
            (String::new(), None)
        }
    };
    let ctx = minijinja::context! {
        csrf => token,
        username => view.username,
        totp => view.totp,
        error => view.error,
        notice => view.notice,
        next => view.next.unwrap_or_default(),
        flash => flash.clone(),
    };
    let html = ui
        .templates
        .render("login.html", super::public_context(state, ctx));
    let mut r = (status, super::html_headers(), html).into_response();
    if fresh {
        set_cookie(&mut r, &cookie(PRE_COOKIE, &pre, secure, None));
    }
    if flash.is_some() {
        set_cookie(&mut r, &cookie(FLASH_COOKIE, "", secure, Some(0)));
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

async fn login_submit(
    State(state): State<AppState>,
    axum::Extension(ui): axum::Extension<Arc<Ui>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|p| p.0);
    let page = |status, view| login_page(&state, &ui, &headers, peer.as_ref(), status, view);
    if body.len() > MAX_FORM {
        return PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
            .into_response();
    }
    let Ok(form) = web::form::parse(&body) else {
        return PageError::new(StatusCode::BAD_REQUEST, "The form could not be read.")
            .into_response();
    };
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let next = super::safe_next(&field("next"));
    let username = field("username").trim().to_string();
    let view = |error: Option<String>, totp: bool| FormView {
        username: username.clone(),
        totp,
        error,
        notice: None,
        next: next.clone(),
    };
    // Login CSRF: the token must be the one issued with this browser's pre-login cookie.
    let csrf_ok = match (cookie_value(&headers, PRE_COOKIE), page_key(&state)) {
        (Some(pre), Ok(key)) => csrf::verify(&key, &pre, &field("csrf"), now_unix()).is_ok(),
        _ => false,
    };
    if !csrf_ok {
        tracing::info!(
            "admin login: form refused (CSRF token missing, expired or not this browser's)"
        );
        return page(
            StatusCode::FORBIDDEN,
            view(
                Some(
                    "This form expired or did not come from this browser. Please log in again."
                        .into(),
                ),
                false,
            ),
        );
    }
    let totp = Some(field("totp").trim().to_string()).filter(|c| !c.is_empty());
    let input = LoginInput {
        username: username.clone(),
        password: field("password"),
        totp,
    };
    let client = auth::client_of(&state, &headers, peer);
    match auth::login(&state, input, client).await {
        Ok(out) => {
            let secure = is_https(&state, peer.as_ref(), &headers);
            let to = next.unwrap_or_else(|| BASE.to_string());
            let mut r = super::see_other(&to);
            set_cookie(&mut r, &cookie(COOKIE, &out.token, secure, None));
            // A new session id after login (session fixation): the pre-login id is spent.
            set_cookie(&mut r, &cookie(PRE_COOKIE, "", secure, Some(0)));
            r
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let totp_field = e.errors.iter().any(|f| f.field == "totp");
            if totp_field && e.message.starts_with("TOTP code required") {
                let mut v = view(None, true);
                v.notice = Some(
                    "This account has a second factor: enter your password again with the 6-digit code from your authenticator app."
                        .into(),
                );
                return page(StatusCode::UNAUTHORIZED, v);
            }
            let message = if totp_field {
                format!(
                    "{}. Enter your password and a new code.",
                    capitalize(&e.message)
                )
            } else {
                "Wrong user name or password.".to_string()
            };
            page(StatusCode::UNAUTHORIZED, view(Some(message), totp_field))
        }
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            let mut r = page(
                StatusCode::TOO_MANY_REQUESTS,
                view(Some(capitalize(&e.message)), false),
            );
            for (name, value) in &e.headers {
                if let Ok(v) = HeaderValue::from_str(value) {
                    r.headers_mut().insert(*name, v);
                }
            }
            r
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            page(e.status, view(Some(capitalize(&e.message)), false))
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

async fn logout(State(state): State<AppState>, who: PageUser) -> Result<Response, PageError> {
    auth::logout(&state, &who.principal).await?;
    let mut r = redirect(
        &who,
        &format!("{BASE}/login"),
        Some(Flash::ok("You are logged out.")),
    );
    set_cookie(&mut r, &cookie(COOKIE, "", who.secure, Some(0)));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

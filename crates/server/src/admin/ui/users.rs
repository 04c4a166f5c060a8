//! User pages (`/admin/users…`): the search and one user's page with their devices. Read
//! pages on `admin::users` (the API's code); changes go through the API for now.

use super::devices::{DeviceRow, when};
use super::{Page, PageError, PageUser, field_errors, render_status};
use crate::admin::nodes::NodeQuery;
use crate::admin::users::{self, UserJson, UserQuery};
use crate::admin::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use std::collections::HashMap;

pub const TEMPLATES: &[(&str, &str)] = &[
    ("users.html", include_str!("templates/users.html")),
    ("user.html", include_str!("templates/user.html")),
];

pub fn pages() -> Vec<Page> {
    vec![
        Page::get("/users").to(list),
        Page::get("/users/{pid}").to(show),
    ]
}

const PAGE: u32 = 50;

#[derive(Serialize)]
struct UserRow {
    #[serde(flatten)]
    user: UserJson,
    href: String,
    created: String,
    login: String,
}

fn row(u: UserJson) -> UserRow {
    let login = match &u.local_login {
        None => String::new(),
        Some(l) => match l.expiration {
            Some(t) => format!("password, expires {}", when(Some(t))),
            None => "password".into(),
        },
    };
    UserRow {
        href: format!(
            "/admin/users/{}",
            form_urlencoded::byte_serialize(u.pid.as_bytes()).collect::<String>()
        ),
        created: when(u.created_at),
        login,
        user: u,
    }
}

fn offset_of(raw: &HashMap<String, String>) -> Result<Option<u64>, ApiError> {
    match raw
        .get("offset")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => Ok(None),
        Some(o) => o
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid("offset", "a number of rows")),
    }
}

async fn list(
    State(state): State<AppState>,
    who: PageUser,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let q = raw
        .get("q")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let result = match offset_of(&raw) {
        Ok(offset) => {
            users::search(
                &state,
                UserQuery {
                    q: q.clone(),
                    limit: Some(PAGE),
                    offset,
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let link = |offset: u64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(q) = &q {
            s.append_pair("q", q);
        }
        s.append_pair("offset", &offset.to_string());
        format!("/admin/users?{}", s.finish())
    };
    let (status, ctx) = match result {
        Ok(p) => {
            let prev = (p.offset > 0).then(|| link(p.offset.saturating_sub(PAGE as u64)));
            let next =
                (p.offset + (p.users.len() as u64) < p.total).then(|| link(p.offset + PAGE as u64));
            let first = if p.users.is_empty() { 0 } else { p.offset + 1 };
            let last = p.offset + p.users.len() as u64;
            let rows: Vec<UserRow> = p.users.into_iter().map(row).collect();
            (
                StatusCode::OK,
                minijinja::context! { rows, total => p.total, first, last, prev, next, q,
                errors => HashMap::<String, String>::new() },
            )
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => (
            StatusCode::UNPROCESSABLE_ENTITY,
            minijinja::context! { rows => Vec::<UserRow>::new(), total => 0, q,
            errors => field_errors(&e), message => e.message.clone() },
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(render_status(&state, &who, status, "users.html", ctx))
}

async fn show(
    State(state): State<AppState>,
    who: PageUser,
    Path(pid): Path<String>,
) -> Result<Response, PageError> {
    let user = row(users::show(&state, &pid).await?);
    let devices = users::devices(
        &state,
        &pid,
        NodeQuery {
            limit: Some(1000),
            ..NodeQuery::default()
        },
    )
    .await?;
    let total = devices.total;
    let rows: Vec<DeviceRow> = devices.nodes.into_iter().map(DeviceRow::from).collect();
    Ok(render_status(
        &state,
        &who,
        StatusCode::OK,
        "user.html",
        minijinja::context! { u => user, rows, total },
    ))
}

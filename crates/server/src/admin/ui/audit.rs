//! The admin audit log page (`/admin/audit`): who changed what, where and from which client,
//! with each field's value before → after (secrets as `(changed)`, redacted when recorded).
//! Reads through `admin::audit_log::search`, the API's `GET /admin-audit`.

use super::dashboard::format_utc;
use super::{Page, PageError, PageUser, render_status};
use crate::admin::audit_log::{self, AuditEntry, AuditQuery};
use crate::admin::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const TEMPLATES: &[(&str, &str)] = &[("audit.html", include_str!("templates/audit.html"))];

/// Entries per page.
const PER_PAGE: u32 = 50;

pub fn pages() -> Vec<Page> {
    // Access::Read (the default): as `GET /admin-audit`.
    vec![Page::get("/audit").to(list)]
}

/// The filters as the form sends them (empty = any).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    account: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    offset: String,
}

#[derive(Serialize)]
struct Row {
    e: AuditEntry,
    at_text: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The query string of the filters (for the next/previous links).
fn query(f: &Filters, offset: u32) -> String {
    let mut q = Vec::new();
    for (k, v) in [
        ("account", &f.account),
        ("target", &f.target),
        ("action", &f.action),
    ] {
        if let Some(v) = some(v) {
            q.push(format!("{k}={}", crate::web::form::encode(&v)));
        }
    }
    if offset > 0 {
        q.push(format!("offset={offset}"));
    }
    if q.is_empty() {
        "/admin/audit".to_string()
    } else {
        format!("/admin/audit?{}", q.join("&"))
    }
}

async fn list(
    State(state): State<AppState>,
    who: PageUser,
    q: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(f) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let (offset, mut errors) = match some(&f.offset).map(|o| o.parse::<u32>()) {
        None => (0, HashMap::new()),
        Some(Ok(o)) => (o, HashMap::new()),
        Some(Err(_)) => (
            0,
            HashMap::from([("offset".to_string(), "a number".to_string())]),
        ),
    };
    let input = AuditQuery {
        account: some(&f.account),
        target: some(&f.target),
        action: some(&f.action),
        // One more than shown: whether there is a next page.
        limit: Some(PER_PAGE + 1),
        offset: Some(offset),
        ..AuditQuery::default()
    };
    let (rows, status, message) = match audit_log::search(&state, &who.principal, input).await {
        Ok(p) => (p.entries, StatusCode::OK, None),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            errors.extend(super::field_errors(&e));
            (Vec::new(), e.status, Some(e.message))
        }
        Err(e) => return Err(e.into()),
    };
    let status = if errors.is_empty() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let more = rows.len() > PER_PAGE as usize;
    let rows: Vec<Row> = rows
        .into_iter()
        .take(PER_PAGE as usize)
        .map(|e| Row {
            at_text: format_utc(e.at),
            e,
        })
        .collect();
    let next = more.then(|| query(&f, offset + PER_PAGE));
    let prev = (offset > 0).then(|| query(&f, offset.saturating_sub(PER_PAGE)));
    Ok(render_status(
        &state,
        &who,
        status,
        "audit.html",
        minijinja::context! {
            rows,
            filters => minijinja::context! { account => f.account.trim(), target => f.target.trim(), action => f.action.trim() },
            next,
            prev,
            message,
            errors,
        },
    ))
}

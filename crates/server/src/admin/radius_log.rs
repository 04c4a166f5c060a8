//! `GET /radius-audit`: the RADIUS audit log of every server (each keeps its own files, see
//! docs/audit.md), searched by device, switch, time range and outcome, newest last.
//!
//! Paging goes back in time: a page holds the newest `limit` matching records before
//! `until`; the next page is asked with `until` = the oldest record's time (`next_until` in
//! the answer). The audit files are indexed by MAC and time; the switch and outcome filters
//! are applied to the newest 10 000 records of the time range (the node-to-node API's cap
//! per server), which the answer says with `truncated`.

use super::api::Endpoint;
use super::error::ApiError;
use super::json::Params;
use super::nodes::{DecisionJson, MissingServer, gather, seconds_to_us};
use super::{AdminState, AppState};
use axum::extract::State;
use axum::response::IntoResponse;
use ironfence_admin::Access;
use ironfence_core::Mac;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Records read per server at most when a switch or outcome filter is given.
const SCAN_LIMIT: usize = ironfence_webservices::MAX_AUDIT_LIMIT;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The device (any MAC spelling).
    pub mac: Option<String>,
    /// The switch: its switches.conf section or its NAS IP address.
    pub switch: Option<String>,
    /// `accept`, `reject`, `accounting-response`, …
    pub outcome: Option<String>,
    /// At or after (UNIX seconds).
    pub since: Option<i64>,
    /// Before (UNIX seconds); the next page's cursor.
    pub until: Option<i64>,
    /// The newest N (default 100, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditPage {
    /// Oldest first.
    pub records: Vec<DecisionJson>,
    /// `until` for the next (older) page; absent when this page is the last.
    pub next_until: Option<i64>,
    /// The switch/outcome filter looked at only the newest records of the range: narrow the
    /// time range to see older ones.
    pub truncated: bool,
    /// Servers whose records are missing (did not answer).
    pub missing: Vec<MissingServer>,
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/radius-audit",
            "Search the RADIUS audit log (every server)",
        )
        .tag("radius-audit")
        .access(Access::Read)
        .query::<AuditQuery>()
        .returns::<AuditPage>()
        .to(search_h),
    ]
}

/// `GET /radius-audit`.
pub async fn search(state: &AdminState, q: AuditQuery) -> Result<AuditPage, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    let mac = q
        .mac
        .as_deref()
        .map(|m| Mac::parse(m).map_err(|e| ApiError::invalid("mac", e.to_string())))
        .transpose()?;
    let filtered = q.switch.is_some() || q.outcome.is_some();
    let query = ironfence_audit::Query {
        mac,
        since_us: seconds_to_us("since", q.since)?,
        until_us: seconds_to_us("until", q.until)?,
        limit: Some(if filtered { SCAN_LIMIT } else { limit as usize }),
    };
    let list = gather(state, query).await?;
    let read = list.decisions.len();
    let mut records: Vec<DecisionJson> = list
        .decisions
        .into_iter()
        .filter(|d| {
            q.switch
                .as_deref()
                .is_none_or(|s| d.switch.as_deref() == Some(s) || d.nas_ip == s)
                && q.outcome.as_deref().is_none_or(|o| d.outcome == o)
        })
        .collect();
    if records.len() > limit as usize {
        records.drain(..records.len() - limit as usize);
    }
    let full = records.len() == limit as usize;
    let next_until = if full {
        records.first().and_then(|r| {
            humantime::parse_rfc3339(&r.time)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                // A cursor in seconds, rounded up: a record of that second may show on both
                // pages, none is skipped.
                .map(|d| d.as_secs() as i64 + i64::from(d.subsec_nanos() > 0))
        })
    } else {
        None
    };
    Ok(AuditPage {
        records,
        next_until,
        truncated: filtered && read >= SCAN_LIMIT,
        missing: list.missing,
    })
}

async fn search_h(
    State(s): State<AppState>,
    Params(q): Params<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(search(&s, q).await?))
}

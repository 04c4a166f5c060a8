//! The admin audit log: who changed what, when, from where, field by field (PacketFence
//! #6345), and every login.
//!
//! ```text
//!  service function ─ record(state, who, Change{action, target, fields}) ─► redact secrets
//!     ─► database writable? ─ yes ─► admin_audit (idempotency key)
//!                           └ no ──► local spool (fsync'd) ─► replayed in order when writable
//! ```
//!
//! Configuration changes are accepted while the database is read-only (the clustering
//! guide), so their entries go to this server's spool then, and `record` returns only once
//! the entry is durable there: an acknowledged change always has its entry. Secret fields
//! (passwords, RADIUS secrets, keys, TOTP secrets …) are recorded as `(set)` / `(changed)`,
//! never in clear. Failed logins are recorded when the database is writable; while it is
//! read-only they are only logged (a password-guessing flood must not fill the spool the
//! accounting records need).

use super::api::Endpoint;
use super::auth::Principal;
use super::error::ApiError;
use super::{AdminState, AppState};
use crate::spool::record::Record;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use ironfence_admin::Access;
use ironfence_store::admin::{AdminAuditEntry, AdminAuditFilter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One change: `action` (e.g. `switch.update`, `admin.create`, `login`), its `target` (what
/// was changed, e.g. `switch 10.0.0.1`), and the fields with their values before and after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    pub action: String,
    pub target: String,
    pub fields: Vec<FieldChange>,
}

impl Change {
    pub fn new(action: impl Into<String>, target: impl Into<String>) -> Change {
        Change {
            action: action.into(),
            target: target.into(),
            fields: Vec::new(),
        }
    }

    pub fn field(
        mut self,
        field: impl Into<String>,
        before: Option<String>,
        after: Option<String>,
    ) -> Change {
        self.fields.push(FieldChange {
            field: field.into(),
            before,
            after,
        });
        self
    }
}

/// One field of a change (`None`: absent before / removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Longest value recorded for a field (longer ones are cut, marked with `…`).
const MAX_VALUE: usize = 1024;
/// Largest `changes` document (it must fit a spool record).
const MAX_CHANGES: usize = 12 * 1024;

/// Whether a field holds a secret. The field name is split into words (`radiusSecret` →
/// radius, secret; `galera_replication_password` → …, password) so that `passthrough` or
/// `monkey` are not mistaken for `pass` or `key`.
pub fn is_secret_field(field: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "secret",
        "totp",
        "key",
        "token",
        "psk",
        "passphrase",
    ];
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in field.chars() {
        if !c.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut cur));
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    words.push(cur);
    words.iter().any(|w| WORDS.contains(&w.as_str()))
}

fn cut(v: String) -> String {
    if v.len() <= MAX_VALUE {
        return v;
    }
    let mut end = MAX_VALUE;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &v[..end])
}

/// The fields as stored: secrets redacted, values bounded.
pub fn redact(fields: Vec<FieldChange>) -> Vec<FieldChange> {
    fields
        .into_iter()
        .map(|f| {
            if is_secret_field(&f.field) {
                FieldChange {
                    before: f.before.map(|_| "(set)".to_string()),
                    after: f.after.map(|_| "(changed)".to_string()),
                    field: f.field,
                }
            } else {
                FieldChange {
                    before: f.before.map(cut),
                    after: f.after.map(cut),
                    field: f.field,
                }
            }
        })
        .collect()
}

fn changes_json(fields: Vec<FieldChange>) -> String {
    let fields = redact(fields);
    let json = serde_json::to_string(&fields).unwrap_or_else(|_| "[]".into());
    if json.len() <= MAX_CHANGES {
        return json;
    }
    // Too much to keep: the fields that changed, without their values.
    let names: Vec<FieldChange> = fields
        .into_iter()
        .map(|f| FieldChange {
            field: f.field,
            before: Some("(too long to record)".into()),
            after: Some("(too long to record)".into()),
        })
        .take(100)
        .collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

fn nonce() -> [u8; 16] {
    let mut b = [0u8; 16];
    // A failure leaves zeros: the entry is still recorded (its key then depends on content).
    let _ = getrandom::fill(&mut b);
    b
}

/// Records `change` by `who`, successful.
pub async fn record(state: &AdminState, who: &Principal, change: Change) -> Result<(), ApiError> {
    record_result(state, who, change, "ok").await
}

/// Records `change` by `who` with `result` (`ok`, or why it failed).
pub async fn record_result(
    state: &AdminState,
    who: &Principal,
    change: Change,
    result: &str,
) -> Result<(), ApiError> {
    let entry = AdminAuditEntry {
        id: 0,
        at: state.auth.now(),
        server: state.shared.config().identity.clone(),
        account: who.account.clone(),
        client: who.client.to_string(),
        session: who.session.clone(),
        action: change.action,
        target: change.target,
        changes: changes_json(change.fields),
        result: result.chars().take(255).collect(),
    };
    store_entry(state, entry, true).await
}

/// Writes `entry` to the database, or (when `spool_if_read_only`) to the spool while the
/// database cannot take it.
pub(crate) async fn store_entry(
    state: &AdminState,
    entry: AdminAuditEntry,
    spool_if_read_only: bool,
) -> Result<(), ApiError> {
    let shared = &state.shared;
    let record = Record::AdminAudit {
        nonce: nonce(),
        entry,
    };
    let e = crate::spool::record::Entry::new(record);
    if !shared.db.is_read_only() {
        let Record::AdminAudit { entry, .. } = &e.record else {
            unreachable!("built above")
        };
        match shared.store.insert_admin_audit(entry, &e.key).await {
            Ok(_) => return Ok(()),
            Err(err) if err.is_retryable() => {
                shared.db.write_failed(shared, &err);
                tracing::info!(error = %err, "admin audit: the database refused the entry; it goes to the local spool");
            }
            Err(err) => return Err(ApiError::internal("recording the admin audit entry", err)),
        }
    }
    if !spool_if_read_only {
        if let Record::AdminAudit { entry, .. } = &e.record {
            tracing::warn!(target: "ironfence::admin_audit", account = %entry.account, client = %entry.client,
                action = %entry.action, result = %entry.result, "admin audit entry not stored (database read-only)");
        }
        return Ok(());
    }
    shared.spool.append(e.record).await.map_err(|err| {
        ApiError::unavailable(format!(
            "the change was made but its audit entry could not be saved ({err}): check this server's disk and the database"
        ))
    })
}

/// `GET /admin-audit` query.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this admin account.
    pub account: Option<String>,
    /// Only this target (exact, e.g. `switch 10.0.0.1`, `admin bob`).
    pub target: Option<String>,
    /// Only this action (e.g. `login`, `login.failure`, `admin.update`).
    pub action: Option<String>,
    /// From this time (UNIX seconds), inclusive.
    pub since: Option<i64>,
    /// Up to this time (UNIX seconds), inclusive.
    pub until: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many (paging).
    pub offset: Option<u32>,
}

/// One entry of the admin audit log.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// UNIX seconds.
    pub at: i64,
    /// The server that took the request.
    pub server: String,
    pub account: String,
    pub client: String,
    pub session: String,
    pub action: String,
    pub target: String,
    pub changes: Vec<FieldChange>,
    /// `ok`, or why the request failed.
    pub result: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub limit: u32,
    pub offset: u32,
}

/// Searches the admin audit log, newest first.
pub async fn search(
    state: &AdminState,
    _who: &Principal,
    q: AuditQuery,
) -> Result<AuditPage, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    if let (Some(a), Some(b)) = (q.since, q.until)
        && a > b
    {
        return Err(ApiError::invalid("until", "must not be before since"));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = AdminAuditFilter {
        account: q.account,
        target: q.target,
        action: q.action,
        since: q.since,
        until: q.until,
        limit,
        offset,
    };
    let rows = state
        .shared
        .store
        .search_admin_audit(&filter)
        .await
        .map_err(|e| ApiError::store("searching the admin audit log", e))?;
    Ok(AuditPage {
        entries: rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: r.at,
                server: r.server,
                account: r.account,
                client: r.client,
                session: r.session,
                action: r.action,
                target: r.target,
                changes: serde_json::from_str(&r.changes).unwrap_or_default(),
                result: r.result,
            })
            .collect(),
        limit,
        offset,
    })
}

async fn search_handler(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    search(&state, &who, q).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/admin-audit", "Search the admin audit log (newest first)")
            .tag("admin-audit")
            .access(Access::Read)
            .query::<AuditQuery>()
            .returns::<AuditPage>()
            .to(search_handler),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_recognised() {
        for f in [
            "password",
            "radiusSecret",
            "galera_replication_password",
            "pass",
            "haproxy_stats_pass",
            "totp",
            "key",
            "wpaPreSharedKey",
            "api_token",
        ] {
            assert!(is_secret_field(f), "{f}");
        }
        for f in [
            "passthrough",
            "role",
            "description",
            "monkey",
            "defaultVlan",
            "keyboard",
        ] {
            assert!(!is_secret_field(f), "{f}");
        }
    }

    #[test]
    fn secrets_are_never_recorded_in_clear() {
        let json = changes_json(vec![
            FieldChange {
                field: "radiusSecret".into(),
                before: Some("old-secret-value".into()),
                after: Some("new-secret-value".into()),
            },
            FieldChange {
                field: "password".into(),
                before: None,
                after: Some("$argon2id$v=19$...".into()),
            },
            FieldChange {
                field: "role".into(),
                before: Some("operator".into()),
                after: Some("administrator".into()),
            },
        ]);
        assert!(
            !json.contains("secret-value") && !json.contains("argon2"),
            "{json}"
        );
        let back: Vec<FieldChange> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].before.as_deref(), Some("(set)"));
        assert_eq!(back[0].after.as_deref(), Some("(changed)"));
        assert_eq!(back[1].before, None);
        assert_eq!(back[2].after.as_deref(), Some("administrator"));
        // Huge values are bounded so the entry fits a spool record.
        let big = changes_json(
            (0..100)
                .map(|i| FieldChange {
                    field: format!("f{i}"),
                    before: Some("x".repeat(5000)),
                    after: None,
                })
                .collect(),
        );
        assert!(big.len() <= MAX_CHANGES, "{}", big.len());
    }

    #[test]
    fn spool_record_round_trip() {
        use crate::spool::record::{Entry, decode_frame, encode_frame};
        let rec = Record::AdminAudit {
            nonce: [7; 16],
            entry: AdminAuditEntry {
                id: 0,
                at: 1_700_000_000,
                server: "pf1".into(),
                account: "alice".into(),
                client: "192.0.2.1".into(),
                session: "abc".into(),
                action: "switch.update".into(),
                target: "switch 10.0.0.1".into(),
                changes: changes_json(vec![FieldChange {
                    field: "description".into(),
                    before: Some("é".repeat(600)),
                    after: Some("core".into()),
                }]),
                result: "ok".into(),
            },
        };
        let e = Entry::new(rec);
        let frame = encode_frame(&e);
        let (back, n) = decode_frame(&frame).unwrap().unwrap();
        assert_eq!(n, frame.len());
        assert_eq!(back, e);
        let other = Entry::new(Record::AdminAudit {
            nonce: [8; 16],
            entry: match &e.record {
                Record::AdminAudit { entry, .. } => entry.clone(),
                _ => unreachable!(),
            },
        });
        assert_ne!(other.key, e.key, "the nonce keeps identical entries apart");
    }
}

//! The administration interface's tables (migration v8): the admin audit log (who changed
//! what, when, from where, field by field) and the revoked admin sessions (logout of a
//! stateless token).

use crate::{Store, StoreError};
use ironfence_core::UnixTime;

/// One admin audit entry. `changes` is a JSON array of `{field, before, after}` with secrets
/// already redacted by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAuditEntry {
    /// Assigned by the database (0 for an entry not stored yet).
    pub id: i64,
    pub at: UnixTime,
    /// The server that took the request.
    pub server: String,
    pub account: String,
    pub client: String,
    pub session: String,
    pub action: String,
    pub target: String,
    pub changes: String,
    /// `ok`, or why the request failed (`refused: …`).
    pub result: String,
}

/// A search of the admin audit log; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminAuditFilter {
    pub account: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    pub limit: u32,
    pub offset: u32,
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.backend {
            crate::Backend::Sqlite(s) => s.$method($($arg),*),
            crate::Backend::MySql(m) => m.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Inserts `entry` unless an entry with idempotency key `key` exists (a replayed spool
    /// record): `Ok(false)` then.
    pub async fn insert_admin_audit(
        &self,
        entry: &AdminAuditEntry,
        key: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let key = hex(key);
        dispatch!(self.insert_admin_audit(entry, &key))
    }

    pub async fn search_admin_audit(
        &self,
        filter: &AdminAuditFilter,
    ) -> Result<Vec<AdminAuditEntry>, StoreError> {
        dispatch!(self.search_admin_audit(filter))
    }

    /// Records that `session` is logged out until `expires_at` (when its token would have
    /// expired anyway); forgets revocations already past.
    pub async fn revoke_admin_session(
        &self,
        session: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        dispatch!(self.revoke_admin_session(session, expires_at, now))
    }

    /// Sessions revoked and not yet expired at `now`, with their expiry.
    pub async fn revoked_admin_sessions(
        &self,
        now: UnixTime,
    ) -> Result<Vec<(String, UnixTime)>, StoreError> {
        dispatch!(self.revoked_admin_sessions(now))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

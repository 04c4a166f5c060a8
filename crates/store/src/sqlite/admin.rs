//! The admin audit log and revoked admin sessions on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::admin::{AdminAuditEntry, AdminAuditFilter};
use ironfence_core::UnixTime;
use rusqlite::params;

impl SqliteStore {
    pub(crate) fn insert_admin_audit(
        &self,
        e: &AdminAuditEntry,
        key: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.writer();
        let n = conn
            .prepare_cached(
                "INSERT INTO admin_audit (at, server, account, client, session, action, target,
                    changes, result, idem_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (idem_key) DO NOTHING",
            )?
            .execute(params![
                e.at, e.server, e.account, e.client, e.session, e.action, e.target, e.changes,
                e.result, key
            ])?;
        Ok(n == 1)
    }

    pub(crate) fn search_admin_audit(
        &self,
        f: &AdminAuditFilter,
    ) -> Result<Vec<AdminAuditEntry>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT id, at, server, account, client, session, action, target, changes, result
             FROM admin_audit
             WHERE (?1 IS NULL OR account = ?1) AND (?2 IS NULL OR target = ?2)
               AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR at >= ?4)
               AND (?5 IS NULL OR at <= ?5)
             ORDER BY at DESC, id DESC LIMIT ?6 OFFSET ?7",
        )?;
        let rows = st.query_map(
            params![
                f.account, f.target, f.action, f.since, f.until, f.limit, f.offset
            ],
            |r| {
                Ok(AdminAuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    server: r.get(2)?,
                    account: r.get(3)?,
                    client: r.get(4)?,
                    session: r.get(5)?,
                    action: r.get(6)?,
                    target: r.get(7)?,
                    changes: r.get(8)?,
                    result: r.get(9)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn revoke_admin_session(
        &self,
        session: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        tx.prepare_cached("DELETE FROM admin_session_revoked WHERE expires_at < ?1")?
            .execute([now])?;
        tx.prepare_cached(
            "INSERT INTO admin_session_revoked (session, expires_at) VALUES (?1, ?2)
             ON CONFLICT (session) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)",
        )?
        .execute(params![session, expires_at])?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn revoked_admin_sessions(
        &self,
        now: UnixTime,
    ) -> Result<Vec<(String, UnixTime)>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT session, expires_at FROM admin_session_revoked WHERE expires_at >= ?1",
        )?;
        let rows = st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

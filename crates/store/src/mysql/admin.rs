//! The admin audit log and revoked admin sessions on MariaDB.

use super::{MySqlStore, retry_write};
use crate::StoreError;
use crate::admin::{AdminAuditEntry, AdminAuditFilter};
use ironfence_core::UnixTime;
use sqlx::Row;

impl MySqlStore {
    pub(crate) async fn insert_admin_audit(
        &self,
        e: &AdminAuditEntry,
        key: &str,
    ) -> Result<bool, StoreError> {
        retry_write("insert_admin_audit", || async {
            let r = sqlx::query(
                "INSERT IGNORE INTO admin_audit (at, server, account, client, session, action,
                    target, changes, result, idem_key)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.at)
            .bind(e.server.as_str())
            .bind(e.account.as_str())
            .bind(e.client.as_str())
            .bind(e.session.as_str())
            .bind(e.action.as_str())
            .bind(e.target.as_str())
            .bind(e.changes.as_str())
            .bind(e.result.as_str())
            .bind(key)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
        .await
    }

    pub(crate) async fn search_admin_audit(
        &self,
        f: &AdminAuditFilter,
    ) -> Result<Vec<AdminAuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, server, account, client, session, action, target, changes, result
             FROM admin_audit
             WHERE (? IS NULL OR account = ?) AND (? IS NULL OR target = ?)
               AND (? IS NULL OR action = ?) AND (? IS NULL OR at >= ?)
               AND (? IS NULL OR at <= ?)
             ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
        )
        .bind(f.account.as_deref())
        .bind(f.account.as_deref())
        .bind(f.target.as_deref())
        .bind(f.target.as_deref())
        .bind(f.action.as_deref())
        .bind(f.action.as_deref())
        .bind(f.since)
        .bind(f.since)
        .bind(f.until)
        .bind(f.until)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<AdminAuditEntry, StoreError> {
                let id: u64 = r.try_get(0)?;
                Ok(AdminAuditEntry {
                    id: id as i64,
                    at: r.try_get(1)?,
                    server: r.try_get(2)?,
                    account: r.try_get(3)?,
                    client: r.try_get(4)?,
                    session: r.try_get(5)?,
                    action: r.try_get(6)?,
                    target: r.try_get(7)?,
                    changes: r.try_get(8)?,
                    result: r.try_get(9)?,
                })
            })
            .collect()
    }

    pub(crate) async fn revoke_admin_session(
        &self,
        session: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        retry_write("revoke_admin_session", || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM admin_session_revoked WHERE expires_at < ?")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO admin_session_revoked (session, expires_at) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))",
            )
            .bind(session)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn revoked_admin_sessions(
        &self,
        now: UnixTime,
    ) -> Result<Vec<(String, UnixTime)>, StoreError> {
        let rows = sqlx::query(
            "SELECT session, expires_at FROM admin_session_revoked WHERE expires_at >= ?",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

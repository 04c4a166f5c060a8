//! The captive portal's tables on MariaDB: local users (`password`) and the IP → MAC lookup.

use super::{MySqlStore, mac_col, retry_write};
use crate::StoreError;
use crate::portal::{LocalUser, nt_hash_hex, nt_hash_parse};
use ironfence_core::{Mac, UnixTime};
use sqlx::Row;
use std::net::Ipv4Addr;

impl MySqlStore {
    pub(crate) async fn upsert_local_user(
        &self,
        u: &LocalUser,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        retry_write("upsert_local_user", || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO person (pid, created_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE pid = pid",
            )
            .bind(u.pid.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO password (pid, password, valid_from, expiration, created_at, nt_hash)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE password = VALUES(password),
                    valid_from = VALUES(valid_from), expiration = VALUES(expiration),
                    nt_hash = VALUES(nt_hash)",
            )
            .bind(u.pid.as_str())
            .bind(u.password.as_str())
            .bind(u.valid_from)
            .bind(u.expiration)
            .bind(now)
            .bind(nt_hash_hex(&u.nt_hash))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn get_local_user(&self, pid: &str) -> Result<Option<LocalUser>, StoreError> {
        let row = sqlx::query(
            "SELECT pid, password, valid_from, expiration, nt_hash FROM password WHERE pid = ?",
        )
        .bind(pid)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<LocalUser, StoreError> {
            Ok(LocalUser {
                pid: r.try_get(0)?,
                password: r.try_get(1)?,
                valid_from: r.try_get(2)?,
                expiration: r.try_get(3)?,
                nt_hash: nt_hash_parse(r.try_get(4)?),
            })
        })
        .transpose()
    }

    pub(crate) async fn mac_for_ip(
        &self,
        ip: Ipv4Addr,
        now: UnixTime,
    ) -> Result<Option<Mac>, StoreError> {
        let row = sqlx::query(
            "SELECT ip, mac FROM ip4log WHERE ip = ? AND (end_time IS NULL OR end_time > ?)",
        )
        .bind(ip.to_string())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| mac_col(&r, 1)).transpose()
    }
}

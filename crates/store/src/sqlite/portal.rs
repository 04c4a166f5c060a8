//! The captive portal's tables on SQLite: local users (`password`) and the IP → MAC lookup.

use super::{SqliteStore, mac_at};
use crate::StoreError;
use crate::portal::{LocalUser, nt_hash_hex, nt_hash_parse};
use ironfence_core::{Mac, UnixTime};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use std::net::Ipv4Addr;

impl SqliteStore {
    pub(crate) fn upsert_local_user(&self, u: &LocalUser, now: UnixTime) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO person (pid, created_at) VALUES (?1, ?2) ON CONFLICT (pid) DO NOTHING",
        )?
        .execute(params![u.pid, now])?;
        tx.prepare_cached(
            "INSERT INTO password (pid, password, valid_from, expiration, created_at, nt_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (pid) DO UPDATE SET password = excluded.password,
                valid_from = excluded.valid_from, expiration = excluded.expiration,
                nt_hash = excluded.nt_hash",
        )?
        .execute(params![
            u.pid,
            u.password,
            u.valid_from,
            u.expiration,
            now,
            nt_hash_hex(&u.nt_hash)
        ])?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn get_local_user(&self, pid: &str) -> Result<Option<LocalUser>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT pid, password, valid_from, expiration, nt_hash FROM password WHERE pid = ?1",
        )?;
        Ok(st
            .query_row([pid], |r| {
                Ok(LocalUser {
                    pid: r.get(0)?,
                    password: r.get(1)?,
                    valid_from: r.get(2)?,
                    expiration: r.get(3)?,
                    nt_hash: nt_hash_parse(r.get(4)?),
                })
            })
            .optional()?)
    }

    pub(crate) fn mac_for_ip(
        &self,
        ip: Ipv4Addr,
        now: UnixTime,
    ) -> Result<Option<Mac>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT ip, mac FROM ip4log WHERE ip = ?1 AND (end_time IS NULL OR end_time > ?2)",
        )?;
        Ok(st
            .query_row(params![ip.to_string(), now], |r| mac_at(r, 1))
            .optional()?)
    }
}

//! SQLite side of [`crate::dhcp`]: claims run on the single writer connection in an
//! `IMMEDIATE` transaction, so they are serialised and never conflict.

use super::SqliteStore;
use crate::dhcp::{Claim, ClaimOutcome, Decision, DhcpLease, DhcpLeaseState, claimed_row, decide};
use crate::dhcp::{parse_ip, parse_mac};
use crate::{StoreError, mac_text};
use ironfence_core::{Mac, UnixTime};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::net::Ipv4Addr;

const COLS: &str = "network, ip, mac, state, expires_at, updated_at, hostname";

type RawLease = (
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawLease> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn lease(
    (network, ip, mac, state, expires_at, updated_at, hostname): RawLease,
) -> Result<DhcpLease, StoreError> {
    Ok(DhcpLease {
        network,
        ip: parse_ip(&ip)?,
        mac: parse_mac(mac)?,
        state: DhcpLeaseState::parse(&state)?,
        expires_at,
        updated_at,
        hostname,
    })
}

fn row_at(conn: &Connection, network: &str, ip: Ipv4Addr) -> Result<Option<DhcpLease>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM dhcp_lease WHERE network = ?1 AND ip = ?2"
    ))?
    .query_row(params![network, ip.to_string()], raw)
    .optional()?
    .map(lease)
    .transpose()
}

fn mine_on(conn: &Connection, network: &str, mac: Mac) -> Result<Option<DhcpLease>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM dhcp_lease WHERE network = ?1 AND mac = ?2"
    ))?
    .query_row(params![network, mac_text(mac)], raw)
    .optional()?
    .map(lease)
    .transpose()
}

impl SqliteStore {
    pub(crate) fn dhcp_claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing = row_at(&tx, c.network, c.ip)?;
        let mine = mine_on(&tx, c.network, c.mac)?;
        match decide(existing.as_ref(), mine.as_ref(), c) {
            Decision::Taken => return Ok(ClaimOutcome::Taken),
            Decision::Keep(row) => return Ok(ClaimOutcome::Claimed(row)),
            Decision::Write => {}
        }
        let mac = mac_text(c.mac);
        let ip = c.ip.to_string();
        // The client moves: its other address on this network is no longer its.
        if let Some(m) = mine.filter(|m| m.ip != c.ip) {
            tx.prepare_cached("DELETE FROM dhcp_lease WHERE network = ?1 AND ip = ?2")?
                .execute(params![c.network, m.ip.to_string()])?;
        }
        let row = claimed_row(c);
        tx.prepare_cached(
            "INSERT INTO dhcp_lease (network, ip, mac, state, expires_at, updated_at, hostname)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (network, ip) DO UPDATE SET
                mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
                updated_at = excluded.updated_at, hostname = excluded.hostname",
        )?
        .execute(params![
            c.network,
            ip,
            mac,
            row.state.as_str(),
            row.expires_at,
            row.updated_at,
            row.hostname
        ])?;
        if c.state == DhcpLeaseState::Bound {
            // Same rules as accounting's Framed-IP-Address (accounting.rs).
            tx.prepare_cached(
                "UPDATE ip4log SET end_time = ?3 WHERE mac = ?1 AND ip <> ?2 AND end_time IS NULL",
            )?
            .execute(params![mac, ip, c.now])?;
            tx.prepare_cached(
                "INSERT INTO ip4log (ip, mac, start_time, end_time) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT (ip) DO UPDATE SET
                    start_time = CASE WHEN ip4log.mac = excluded.mac AND ip4log.end_time IS NULL
                                      THEN ip4log.start_time ELSE excluded.start_time END,
                    mac = excluded.mac,
                    end_time = NULL",
            )?
            .execute(params![ip, mac, c.now])?;
        }
        tx.commit()?;
        Ok(ClaimOutcome::Claimed(row))
    }

    pub(crate) fn dhcp_lease_by_mac(
        &self,
        network: &str,
        mac: Mac,
        _causal: bool,
    ) -> Result<Option<DhcpLease>, StoreError> {
        mine_on(&self.reader(), network, mac)
    }

    pub(crate) fn dhcp_release(
        &self,
        network: &str,
        mac: Mac,
        ip: Ipv4Addr,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx
            .prepare_cached(
                "UPDATE dhcp_lease SET state = 'released', expires_at = ?4, updated_at = ?4
                 WHERE network = ?1 AND ip = ?2 AND mac = ?3",
            )?
            .execute(params![network, ip.to_string(), mac_text(mac), now])?;
        tx.prepare_cached(
            "UPDATE ip4log SET end_time = ?3 WHERE ip = ?1 AND mac = ?2 AND end_time IS NULL",
        )?
        .execute(params![ip.to_string(), mac_text(mac), now])?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub(crate) fn dhcp_decline(
        &self,
        network: &str,
        mac: Mac,
        ip: Ipv4Addr,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ip_s = ip.to_string();
        let mut n = tx
            .prepare_cached(
                "UPDATE dhcp_lease SET mac = NULL, state = 'declined', expires_at = ?4,
                    updated_at = ?5, hostname = NULL
                 WHERE network = ?1 AND ip = ?2 AND mac = ?3",
            )?
            .execute(params![network, ip_s, mac_text(mac), until, now])?;
        if n == 0 {
            n = tx
                .prepare_cached(
                    "INSERT INTO dhcp_lease (network, ip, mac, state, expires_at, updated_at)
                     VALUES (?1, ?2, NULL, 'declined', ?3, ?4) ON CONFLICT DO NOTHING",
                )?
                .execute(params![network, ip_s, until, now])?;
        }
        tx.prepare_cached(
            "UPDATE ip4log SET end_time = ?3 WHERE ip = ?1 AND mac = ?2 AND end_time IS NULL",
        )?
        .execute(params![ip_s, mac_text(mac), now])?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub(crate) fn dhcp_leases(&self, network: &str) -> Result<Vec<DhcpLease>, StoreError> {
        let conn = self.reader();
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM dhcp_lease WHERE network = ?1 ORDER BY ip"
            ))?
            .query_map(params![network], raw)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(lease).collect()
    }
}

//! MariaDB / Galera side of [`crate::dhcp`]. A claim is one transaction: the address's row
//! read `FOR UPDATE` (serialises claims of one address on one node), the decision, a write
//! conditional on that read (INSERT if there was no row, UPDATE of exactly the row read),
//! commit. A duplicate key (1062: a concurrent claim on this node inserted first) or
//! a write conflict (1213: InnoDB deadlock, or Galera certification against a claim committed
//! on another node) is [`ClaimOutcome::Conflict`], not retried here: the caller re-reads and
//! moves to its next candidate (retrying the same row would mostly lose again).

use super::{MySqlStore, UNKNOWN_SYSTEM_VARIABLE};
use crate::dhcp::{Claim, ClaimOutcome, Decision, DhcpLease, DhcpLeaseState, claimed_row, decide};
use crate::dhcp::{parse_ip, parse_mac};
use crate::{StoreError, mac_text};
use ironfence_core::{Mac, UnixTime};
use sqlx::mysql::MySqlConnection;
use std::net::Ipv4Addr;

/// The columns of [`RawLease`] (a macro: sqlx takes only static SQL, built with `concat!`).
macro_rules! cols {
    () => {
        "network, ip, mac, state, expires_at, updated_at, hostname"
    };
}
/// ER_DUP_ENTRY.
const DUP_ENTRY: u16 = 1062;
/// ER_LOCK_DEADLOCK (also Galera's certification failure).
const DEADLOCK: u16 = 1213;

type RawLease = (
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<String>,
);

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

enum ClaimError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for ClaimError {
    fn from(e: sqlx::Error) -> ClaimError {
        ClaimError::Sql(e)
    }
}

fn conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|m| matches!(m.number(), DUP_ENTRY | DEADLOCK)))
}

/// Runs `SET SESSION wsrep_sync_wait = v`; `Ok(false)` on a server without wsrep.
async fn sync_wait(conn: &mut MySqlConnection, v: u8) -> Result<bool, StoreError> {
    match sqlx::query(if v == 0 {
        "SET SESSION wsrep_sync_wait = 0"
    } else {
        "SET SESSION wsrep_sync_wait = 1"
    })
    .execute(&mut *conn)
    .await
    {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(db))
            if db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| e.number() == UNKNOWN_SYSTEM_VARIABLE) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

impl MySqlStore {
    async fn dhcp_claim_once(&self, c: &Claim<'_>) -> Result<ClaimOutcome, ClaimError> {
        let mut tx = self.pool.begin().await?;
        let raw: Option<RawLease> = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM dhcp_lease WHERE network = ? AND ip = ? FOR UPDATE"
        ))
        .bind(c.network)
        .bind(c.ip.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let existing = raw.map(lease).transpose().map_err(ClaimError::Store)?;
        let raw: Option<RawLease> = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM dhcp_lease WHERE network = ? AND mac = ? FOR UPDATE"
        ))
        .bind(c.network)
        .bind(mac_text(c.mac))
        .fetch_optional(&mut *tx)
        .await?;
        let mine = raw.map(lease).transpose().map_err(ClaimError::Store)?;
        match decide(existing.as_ref(), mine.as_ref(), c) {
            Decision::Taken => return Ok(ClaimOutcome::Taken),
            Decision::Keep(row) => return Ok(ClaimOutcome::Claimed(row)),
            Decision::Write => {}
        }
        let (mac, ip) = (mac_text(c.mac), c.ip.to_string());
        // The client moves: exactly the row read, or a Conflict if it changed meanwhile.
        if let Some(m) = mine.as_ref().filter(|m| m.ip != c.ip) {
            let matched = sqlx::query(
                "DELETE FROM dhcp_lease WHERE network = ? AND ip = ? AND mac <=> ? AND state = ?
                    AND expires_at = ? AND updated_at = ?",
            )
            .bind(c.network)
            .bind(m.ip.to_string())
            .bind(&mac)
            .bind(m.state.as_str())
            .bind(m.expires_at)
            .bind(m.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if matched != 1 {
                return Ok(ClaimOutcome::Conflict);
            }
        }
        // The write is conditional on the row read above: on Galera a replicated claim can be
        // applied between that read and this write (appliers ignore our gap lock), so an
        // upsert would silently overwrite another client's fresh row. A plain INSERT fails
        // with a duplicate key instead, and the UPDATE matches nothing: both are a Conflict.
        let row = claimed_row(c);
        match &existing {
            None => {
                sqlx::query(
                    "INSERT INTO dhcp_lease (network, ip, mac, state, expires_at, updated_at, hostname)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(c.network)
                .bind(&ip)
                .bind(&mac)
                .bind(row.state.as_str())
                .bind(row.expires_at)
                .bind(row.updated_at)
                .bind(row.hostname.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            Some(old) => {
                // Rows matched, not changed (the client sets CLIENT_FOUND_ROWS).
                let matched = sqlx::query(
                    "UPDATE dhcp_lease SET mac = ?, state = ?, expires_at = ?, updated_at = ?,
                        hostname = ?
                     WHERE network = ? AND ip = ? AND mac <=> ? AND state = ? AND expires_at = ?
                        AND updated_at = ?",
                )
                .bind(&mac)
                .bind(row.state.as_str())
                .bind(row.expires_at)
                .bind(row.updated_at)
                .bind(row.hostname.as_deref())
                .bind(c.network)
                .bind(&ip)
                .bind(old.mac.map(mac_text))
                .bind(old.state.as_str())
                .bind(old.expires_at)
                .bind(old.updated_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if matched != 1 {
                    return Ok(ClaimOutcome::Conflict); // rolled back on drop
                }
            }
        }
        if c.state == DhcpLeaseState::Bound {
            // Same rules as accounting's Framed-IP-Address (accounting.rs; start_time is
            // computed before mac is overwritten: assignments run left to right).
            sqlx::query(
                "UPDATE ip4log SET end_time = ? WHERE mac = ? AND ip <> ? AND end_time IS NULL",
            )
            .bind(c.now)
            .bind(&mac)
            .bind(&ip)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO ip4log (ip, mac, start_time, end_time) VALUES (?, ?, ?, NULL)
                 ON DUPLICATE KEY UPDATE
                    start_time = IF(mac = VALUES(mac) AND end_time IS NULL,
                                    start_time, VALUES(start_time)),
                    mac = VALUES(mac),
                    end_time = NULL",
            )
            .bind(&ip)
            .bind(&mac)
            .bind(c.now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ClaimOutcome::Claimed(row))
    }

    pub(crate) async fn dhcp_claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        match self.dhcp_claim_once(c).await {
            Ok(o) => Ok(o),
            Err(ClaimError::Sql(e)) if conflict(&e) => {
                tracing::debug!(ip = %c.ip, mac = %c.mac, error = %e, "DHCP claim lost to a concurrent one");
                Ok(ClaimOutcome::Conflict)
            }
            Err(ClaimError::Sql(e)) => Err(e.into()),
            Err(ClaimError::Store(e)) => Err(e),
        }
    }

    pub(crate) async fn dhcp_lease_by_mac(
        &self,
        network: &str,
        mac: Mac,
        causal: bool,
    ) -> Result<Option<DhcpLease>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let waited = causal && sync_wait(&mut conn, 1).await?;
        let raw: Result<Option<RawLease>, sqlx::Error> = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM dhcp_lease WHERE network = ? AND mac = ?"
        ))
        .bind(network)
        .bind(mac_text(mac))
        .fetch_optional(&mut *conn)
        .await;
        if waited && let Err(e) = sync_wait(&mut conn, 0).await {
            // Never hand a causal-read connection back to the pool.
            use sqlx::Connection;
            let _ = conn.detach().close().await;
            return Err(e);
        }
        raw?.map(lease).transpose()
    }

    pub(crate) async fn dhcp_release(
        &self,
        network: &str,
        mac: Mac,
        ip: Ipv4Addr,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        super::retry_write("dhcp_release", || async {
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query(
                "UPDATE dhcp_lease SET state = 'released', expires_at = ?, updated_at = ?
                 WHERE network = ? AND ip = ? AND mac = ?",
            )
            .bind(now)
            .bind(now)
            .bind(network)
            .bind(ip.to_string())
            .bind(mac_text(mac))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "UPDATE ip4log SET end_time = ? WHERE ip = ? AND mac = ? AND end_time IS NULL",
            )
            .bind(now)
            .bind(ip.to_string())
            .bind(mac_text(mac))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn dhcp_decline(
        &self,
        network: &str,
        mac: Mac,
        ip: Ipv4Addr,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        super::retry_write("dhcp_decline", || async {
            let mut tx = self.pool.begin().await?;
            let mut n = sqlx::query(
                "UPDATE dhcp_lease SET mac = NULL, state = 'declined', expires_at = ?,
                    updated_at = ?, hostname = NULL
                 WHERE network = ? AND ip = ? AND mac = ?",
            )
            .bind(until)
            .bind(now)
            .bind(network)
            .bind(ip.to_string())
            .bind(mac_text(mac))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                n = sqlx::query(
                    "INSERT IGNORE INTO dhcp_lease (network, ip, mac, state, expires_at, updated_at)
                     VALUES (?, ?, NULL, 'declined', ?, ?)",
                )
                .bind(network)
                .bind(ip.to_string())
                .bind(until)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            sqlx::query(
                "UPDATE ip4log SET end_time = ? WHERE ip = ? AND mac = ? AND end_time IS NULL",
            )
            .bind(now)
            .bind(ip.to_string())
            .bind(mac_text(mac))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn dhcp_leases(&self, network: &str) -> Result<Vec<DhcpLease>, StoreError> {
        let rows: Vec<RawLease> = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM dhcp_lease WHERE network = ? ORDER BY INET_ATON(ip)"
        ))
        .bind(network)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(lease).collect()
    }
}

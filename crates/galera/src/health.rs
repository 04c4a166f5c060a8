//! The local Galera node's health and the read-only state machine.
//!
//! Health is decided from `SHOW GLOBAL STATUS LIKE 'wsrep%'` only: `wsrep_cluster_status =
//! Primary` **and** `wsrep_local_state_comment = Synced` **and** `wsrep_ready = ON`. Never from a
//! TCP connect or `SELECT 1`: an isolated node keeps its port open and answers `SELECT 1`
//! (lab §4), while every table access fails with `ERROR 1047 (08S01) WSREP has not yet
//! prepared node for application use`.
//!
//! [`QuorumMonitor`] turns what the supervisor and the application observe into mode changes
//! (the guide's "Quorum behavior": out of the quorum, the server goes read-only and keeps
//! serving what it can; back in a quorum, it goes read-write automatically):
//!
//! ```text
//!              writable poll (Primary + Synced or Donor/Desynced + ready;
//!                             MariaDB without Galera: read_only=OFF)
//!   ReadOnly ───────────────────────────────────────────► ReadWrite
//!      ▲  ◄──────────────────────────────────────────────────  │
//!      │   poll: non-Primary / Joining / not ready / read_only=ON
//!      │   poll failed (database down)                          │
//!      │   write rejected: 1047 / 1180 (WSREP), 1290 / 1792 / 1836 (read-only)
//!      └── (starts here: read-only until the first writable poll)
//!   1213 deadlock (certification conflict): not a quorum signal, retry the transaction
//! ```
//!
//! The monitor follows the database through restarts: the same machine takes Galera polls,
//! polls of MariaDB without Galera (only its `read_only` flag matters: there is no quorum to
//! lose) and failed polls, in any order, so a server whose first poll found its database down
//! (every reboot: `serve` and `db start` start together) or not yet running Galera starts
//! quorum monitoring as soon as Galera answers. [`poll_interval`] says when to poll next.
//!
//! A donor (`Donor/Desynced`) stays writable: with mariabackup SST the donor keeps committing
//! (Galera only lifts flow control for it) — going read-only there would stop the donor's
//! RADIUS writes for the whole copy, the defect the mariabackup method removes. `db status` still
//! calls only `Synced` healthy ([`WsrepStatus::is_healthy`]).
//!
//! Time is an input: events carry their [`Instant`]; an event older than the last mode change
//! is stale (observed before it) and ignored, so a slow poll cannot undo a newer failure and a
//! late error report cannot undo a newer healthy poll.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The wsrep status variables the decisions use (the guide's "Checking the MariaDB sync").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsrepStatus {
    /// `wsrep_cluster_status`: `Primary`, `non-Primary` or `Disconnected`.
    pub cluster_status: String,
    /// `wsrep_local_state_comment`: `Synced`, `Donor/Desynced`, `Joining`, `Joined`,
    /// `Initialized`, …
    pub local_state_comment: String,
    /// `wsrep_ready = ON`: the node accepts queries.
    pub ready: bool,
    /// `wsrep_connected = ON`: the provider is connected to a group (possibly non-Primary).
    pub connected: bool,
    /// `wsrep_cluster_size`.
    pub cluster_size: Option<u32>,
    /// `wsrep_incoming_addresses`, split on commas (`10.99.0.11:3306`, …).
    pub incoming_addresses: Vec<String>,
    /// `wsrep_last_committed`: the seqno a peer reports in the start election.
    pub last_committed: Option<i64>,
    /// `wsrep_cluster_state_uuid`.
    pub cluster_state_uuid: Option<String>,
    /// `wsrep_local_cert_failures`: certification conflicts (the 1213 deadlocks of
    /// multi-master writes).
    pub local_cert_failures: Option<u64>,
}

impl WsrepStatus {
    /// From the rows of `SHOW GLOBAL STATUS LIKE 'wsrep%'` (`Variable_name`, `Value`). Names
    /// compare case-insensitively; unknown rows are ignored; unparsable numbers are `None`;
    /// a missing `wsrep_ready` / `wsrep_connected` is `false` (e.g. no wsrep provider loaded).
    pub fn from_status_rows(rows: &[(String, String)]) -> WsrepStatus {
        let mut s = WsrepStatus::default();
        for (name, value) in rows {
            let value = value.trim();
            let on = value.eq_ignore_ascii_case("ON");
            match name.trim().to_ascii_lowercase().as_str() {
                "wsrep_cluster_status" => s.cluster_status = value.to_string(),
                "wsrep_local_state_comment" => s.local_state_comment = value.to_string(),
                "wsrep_ready" => s.ready = on,
                "wsrep_connected" => s.connected = on,
                "wsrep_cluster_size" => s.cluster_size = value.parse().ok(),
                "wsrep_incoming_addresses" => {
                    s.incoming_addresses = value
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "wsrep_last_committed" => s.last_committed = value.parse().ok(),
                "wsrep_cluster_state_uuid" => {
                    s.cluster_state_uuid = Some(value.to_string()).filter(|v| !v.is_empty());
                }
                "wsrep_local_cert_failures" => s.local_cert_failures = value.parse().ok(),
                _ => {}
            }
        }
        s
    }

    /// `Primary` + `Synced` + `wsrep_ready = ON`.
    pub fn is_healthy(&self) -> bool {
        self.unhealthy_reason().is_none()
    }

    /// Why the node is not healthy (`None` when it is), for logs and mode changes.
    pub fn unhealthy_reason(&self) -> Option<String> {
        self.reasons(false)
    }

    /// Whether this node accepts writes: `Primary`, `wsrep_ready = ON` and either `Synced` or
    /// a donor (`Donor/Desynced`: a mariabackup donor keeps committing). `None` when it does,
    /// otherwise why not. Joining / Joined nodes do not (their data is not complete yet).
    pub fn not_writable_reason(&self) -> Option<String> {
        self.reasons(true)
    }

    fn reasons(&self, donor_ok: bool) -> Option<String> {
        let mut why = Vec::new();
        if !self.cluster_status.eq_ignore_ascii_case("Primary") {
            why.push(format!(
                "wsrep_cluster_status is {} (not in a quorum)",
                shown(&self.cluster_status)
            ));
        }
        let state = &self.local_state_comment;
        let donor = donor_ok && state.eq_ignore_ascii_case(DONOR_DESYNCED);
        if !state.eq_ignore_ascii_case("Synced") && !donor {
            why.push(format!(
                "wsrep_local_state_comment is {} (not Synced)",
                shown(state)
            ));
        }
        if !self.ready {
            why.push("wsrep_ready is OFF".to_string());
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// The members whose address is not in `wsrep_incoming_addresses` (the guide: a healthy
    /// cluster lists every node there).
    pub fn missing_members(&self, members: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
        let listed: Vec<Ipv4Addr> = self
            .incoming_addresses
            .iter()
            .filter_map(|a| {
                a.rsplit_once(':')
                    .map_or(a.as_str(), |(h, _)| h)
                    .parse()
                    .ok()
            })
            .collect();
        members
            .iter()
            .copied()
            .filter(|m| !listed.contains(m))
            .collect()
    }
}

/// `wsrep_local_state_comment` of a donor (also of a node desynced by `wsrep_desync=ON`).
pub const DONOR_DESYNCED: &str = "Donor/Desynced";

fn shown(v: &str) -> &str {
    if v.is_empty() { "missing" } else { v }
}

/// A failed write, by MySQL error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WriteErrorKind {
    /// 1047 `WSREP has not yet prepared node for application use` (or 1180 `… Not connected to
    /// Primary Component`): this node is out of the quorum.
    WsrepNotReady,
    /// 1290 (`--read-only`) / 1792 (read-only transaction) / 1836 (read-only mode): the server
    /// refuses writes.
    ReadOnly,
    /// 1213 `Deadlock found`: a certification conflict between two writers. Not a quorum
    /// signal: retry the transaction.
    Deadlock,
}

impl WriteErrorKind {
    /// The kind of a MySQL error (`code`, message), `None` for errors that say nothing about
    /// the quorum. 1180 (`Got error during COMMIT`) counts only when the message names the
    /// primary component (the lab saw `provider status: Not connected to Primary Component`).
    pub fn from_mysql_error(code: u16, message: &str) -> Option<WriteErrorKind> {
        match code {
            1047 => Some(WriteErrorKind::WsrepNotReady),
            1180 if message.contains("Primary Component") => Some(WriteErrorKind::WsrepNotReady),
            1290 | 1792 | 1836 => Some(WriteErrorKind::ReadOnly),
            1213 => Some(WriteErrorKind::Deadlock),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            WriteErrorKind::WsrepNotReady => {
                "a write was rejected with 1047 (WSREP has not yet prepared node for application use): this node is out of the quorum"
            }
            WriteErrorKind::ReadOnly => {
                "a write was rejected with 1290/1792/1836: the database is read-only"
            }
            WriteErrorKind::Deadlock => {
                "a write hit 1213 (deadlock: certification conflict): retry it"
            }
        }
    }
}

/// What the supervisor (polls) and the application (failed writes) observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbEvent {
    /// `SHOW GLOBAL STATUS LIKE 'wsrep%'` answered.
    StatusPolled { status: WsrepStatus, at: Instant },
    /// MariaDB answered with Galera off (`wsrep_on = OFF`, or a build without wsrep): no
    /// quorum, only its `read_only` flag decides.
    PlainPolled { read_only: bool, at: Instant },
    /// The poll failed (database down, socket refused, timeout).
    PollFailed { error: String, at: Instant },
    /// A write failed with a quorum-related error.
    WriteRejected { error: WriteErrorKind, at: Instant },
}

impl DbEvent {
    pub fn at(&self) -> Instant {
        match self {
            DbEvent::StatusPolled { at, .. }
            | DbEvent::PlainPolled { at, .. }
            | DbEvent::PollFailed { at, .. }
            | DbEvent::WriteRejected { at, .. } => *at,
        }
    }
}

/// Whether this server may write to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbMode {
    ReadWrite,
    /// Reads only (stale reads are served: `wsrep_dirty_reads=ON`); writes are skipped.
    ReadOnly {
        since: Instant,
        reason: String,
    },
}

impl fmt::Display for DbMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbMode::ReadWrite => f.write_str("read-write"),
            DbMode::ReadOnly { reason, .. } => write!(f, "read-only ({reason})"),
        }
    }
}

/// A transition, to log and act on (switch the application's write path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChange {
    pub from: DbMode,
    pub to: DbMode,
    pub reason: String,
}

impl fmt::Display for ModeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: &DbMode| match m {
            DbMode::ReadWrite => "read-write",
            DbMode::ReadOnly { .. } => "read-only",
        };
        write!(
            f,
            "database {} -> {}: {}",
            name(&self.from),
            name(&self.to),
            self.reason
        )
    }
}

/// The read-only state machine (see the module documentation).
#[derive(Debug, Clone)]
pub struct QuorumMonitor {
    mode: DbMode,
    changed_at: Instant,
    last_status: Option<WsrepStatus>,
}

impl QuorumMonitor {
    /// Read-only until the first writable poll.
    pub fn new(at: Instant) -> QuorumMonitor {
        QuorumMonitor {
            mode: DbMode::ReadOnly {
                since: at,
                reason: "the database has not been checked yet".to_string(),
            },
            changed_at: at,
            last_status: None,
        }
    }

    pub fn mode(&self) -> &DbMode {
        &self.mode
    }

    pub fn is_read_only(&self) -> bool {
        matches!(self.mode, DbMode::ReadOnly { .. })
    }

    /// The last polled status (for `ironfence db status` and the peers' election answers).
    pub fn last_status(&self) -> Option<&WsrepStatus> {
        self.last_status.as_ref()
    }

    /// Applies one event; returns the mode change it causes, if any.
    pub fn handle(&mut self, ev: DbEvent) -> Option<ModeChange> {
        let at = ev.at();
        if at < self.changed_at {
            return None;
        }
        let fail_reason = match ev {
            DbEvent::StatusPolled { status, .. } => {
                let why = status.not_writable_reason();
                let size = status.cluster_size;
                let state = status.local_state_comment.clone();
                self.last_status = Some(status);
                match why {
                    None => {
                        let size = size.map_or_else(String::new, |n| format!(", cluster size {n}"));
                        return self.switch(
                            DbMode::ReadWrite,
                            at,
                            format!("wsrep status Primary, {state}, ready{size}"),
                        );
                    }
                    Some(why) => format!("wsrep status: {why}"),
                }
            }
            DbEvent::PlainPolled { read_only, .. } => {
                self.last_status = None;
                if !read_only {
                    return self.switch(
                        DbMode::ReadWrite,
                        at,
                        "MariaDB without Galera, read_only=OFF".to_string(),
                    );
                }
                "MariaDB without Galera has read_only=ON".to_string()
            }
            DbEvent::PollFailed { error, .. } => {
                format!("the database did not answer the status poll: {error}")
            }
            DbEvent::WriteRejected {
                error: WriteErrorKind::Deadlock,
                ..
            } => return None,
            DbEvent::WriteRejected { error, .. } => error.describe().to_string(),
        };
        self.switch(
            DbMode::ReadOnly {
                since: at,
                reason: fail_reason.clone(),
            },
            at,
            fail_reason,
        )
    }

    fn switch(&mut self, to: DbMode, at: Instant, reason: String) -> Option<ModeChange> {
        let same = matches!(
            (&self.mode, &to),
            (DbMode::ReadWrite, DbMode::ReadWrite)
                | (DbMode::ReadOnly { .. }, DbMode::ReadOnly { .. })
        );
        if same {
            return None;
        }
        let from = std::mem::replace(&mut self.mode, to.clone());
        self.changed_at = at;
        Some(ModeChange { from, to, reason })
    }
}

/// What the last poll of the local database found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolledDb {
    /// A Galera node (`wsrep_on = ON`).
    Galera,
    /// MariaDB with Galera off.
    Plain,
    /// The poll failed (down, restarting, refusing connections).
    Unreachable,
}

/// While read-write on Galera: a partition is seen within a second even with no write.
pub const POLL_GALERA: Duration = Duration::from_secs(1);
/// While read-only on Galera: the way back to read-write is only seen by a poll.
pub const POLL_GALERA_READ_ONLY: Duration = Duration::from_millis(250);
/// MariaDB without Galera: nothing but its `read_only` flag can change (or Galera appearing
/// after a restart with another my.cnf); refused writes flip to read-only at once anyway.
pub const POLL_PLAIN: Duration = Duration::from_secs(5);
/// Database down: a restart (when Galera may appear) is seen within a second; a refused
/// connection costs nothing.
pub const POLL_UNREACHABLE: Duration = Duration::from_secs(1);

/// When to poll next, after a poll that found `found` with the monitor `read_only`.
pub fn poll_interval(found: PolledDb, read_only: bool) -> Duration {
    match (found, read_only) {
        (PolledDb::Galera, false) => POLL_GALERA,
        (PolledDb::Galera, true) => POLL_GALERA_READ_ONLY,
        (PolledDb::Plain, _) => POLL_PLAIN,
        (PolledDb::Unreachable, _) => POLL_UNREACHABLE,
    }
}

#[cfg(test)]
mod tests;

//! Quorum-aware read-only (degraded) mode.
//!
//! On a Galera node, a monitor polls `SHOW GLOBAL STATUS LIKE 'wsrep%'` every second and any
//! write refused with "WSREP not ready" / read-only errors flips the server to read-only at
//! once (`ironfence_galera::QuorumMonitor` decides; this module only feeds it and exposes the
//! result). It returns to read-write by itself on the first writable poll (Primary + Synced or
//! donor + ready). On MariaDB without Galera it polls `@@global.read_only` every 5 s, and a
//! write refused as read-only flips at once there too. The monitor follows the database
//! through restarts: down, plain MariaDB and Galera are all just what the last poll found.
//!
//! In read-only mode the RADIUS path keeps answering from what the database holds (Galera's
//! dirty reads) and writes nothing to the database: accounting records and the node rows of
//! devices seen for the first time go to the local spool ([`crate::spool`]) and are replayed
//! when writes work again; audit records are counted as skipped
//! (`ironfence_db_writes_skipped_total{op}`), never retried or logged one by one.

use crate::Shared;
use ironfence_galera::{
    DbEvent, PolledDb, QuorumMonitor, WriteErrorKind, WsrepStatus, poll_interval,
};
use ironfence_store::StoreError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::watch;

#[derive(Debug, Default)]
pub struct DbHealth {
    read_only: AtomicBool,
    /// `None` until the first poll of a MariaDB database (and for SQLite, never monitored).
    monitor: Mutex<Option<QuorumMonitor>>,
    last_state: Mutex<String>,
    /// Woken when the monitor goes back to read-write (the spool replay waits on it).
    writable: tokio::sync::Notify,
    /// What the last poll found (a change is logged once, not at every poll).
    last_found: Mutex<Option<PolledDb>>,
}

impl DbHealth {
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    /// Tests of what depends on the mode (the portal's 503) without a Galera partition.
    #[cfg(test)]
    pub(crate) fn set_read_only_for_test(&self, ro: bool) {
        self.read_only.store(ro, Ordering::Relaxed);
    }

    /// Completes when the database next returns to read-write.
    pub async fn writable_again(&self) {
        self.writable.notified().await
    }

    /// Free-text database state for `cluster status` and the node-to-node API.
    pub fn state(&self) -> String {
        self.last_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn feed(&self, shared: &Shared, ev: DbEvent) {
        let mut guard = self.monitor.lock().unwrap_or_else(|e| e.into_inner());
        let Some(monitor) = guard.as_mut() else {
            return;
        };
        let change = monitor.handle(ev);
        // Always mirror the monitor (it starts read-only until a first healthy poll).
        let ro = monitor.is_read_only();
        self.read_only.store(ro, Ordering::Relaxed);
        shared.metrics.db_read_only.set(i64::from(ro));
        if let Some(change) = change {
            if ro {
                tracing::warn!(%change, "database read-only: RADIUS keeps answering from stored roles; accounting and new nodes go to the local spool");
            } else {
                tracing::info!(%change, "database read-write again");
                self.writable.notify_waiters();
            }
        }
    }

    /// A write failed: if the error says the node lost the quorum (or is read-only), switch to
    /// read-only now and report `true` so the caller counts the write as skipped.
    pub fn write_failed(&self, shared: &Shared, error: &StoreError) -> bool {
        let kind = match error {
            StoreError::ReadOnly { code, message } => {
                WriteErrorKind::from_mysql_error(*code, message)
            }
            _ => None,
        };
        match kind {
            Some(k @ (WriteErrorKind::WsrepNotReady | WriteErrorKind::ReadOnly)) => {
                self.feed(
                    shared,
                    DbEvent::WriteRejected {
                        error: k,
                        at: Instant::now(),
                    },
                );
                true
            }
            _ => false,
        }
    }

    /// Counts a write not done because of read-only mode.
    pub fn skipped(&self, shared: &Shared, op: &'static str) {
        shared
            .metrics
            .db_writes_skipped
            .get_or_create(&[("op", op)])
            .inc();
    }
}

/// The monitor task. It follows the database for as long as the daemon runs: a poll that finds
/// the database down, restarting or without Galera is not the end (every reboot starts `serve`
/// and `db start` together, so the first polls find nothing); quorum monitoring starts as soon
/// as a poll finds Galera. Only SQLite, which cannot turn into anything else without a
/// restart of `serve`, stops it.
pub async fn run_monitor(shared: std::sync::Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let health = &shared.db;
    loop {
        let now = Instant::now();
        let (found, state, event) = match shared.store.wsrep_status().await {
            Ok(None) => return, // SQLite: nothing to monitor
            Ok(Some(rows)) if rows.is_empty() => match shared.store.read_only().await {
                Ok(ro) => {
                    let read_only = ro.unwrap_or(false);
                    let state = if read_only {
                        "MariaDB (no Galera) read_only=ON"
                    } else {
                        "MariaDB (no Galera)"
                    };
                    (
                        PolledDb::Plain,
                        state.to_string(),
                        DbEvent::PlainPolled { read_only, at: now },
                    )
                }
                Err(e) => unreachable_poll(&e, now),
            },
            Ok(Some(rows)) => {
                let status = WsrepStatus::from_status_rows(&rows);
                let state = format!(
                    "{}/{} size {} ready {}",
                    status.cluster_status,
                    status.local_state_comment,
                    status
                        .cluster_size
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into()),
                    if status.ready { "ON" } else { "OFF" }
                );
                (
                    PolledDb::Galera,
                    state,
                    DbEvent::StatusPolled { status, at: now },
                )
            }
            Err(e) => unreachable_poll(&e, now),
        };
        let previous = {
            let mut last = health.last_found.lock().unwrap_or_else(|e| e.into_inner());
            last.replace(found)
        };
        if previous != Some(found) {
            match found {
                PolledDb::Galera => {
                    tracing::info!("the database is a Galera node: quorum monitoring")
                }
                PolledDb::Plain => tracing::info!(
                    "the database is not a Galera node: no quorum monitoring (its read_only flag is polled every {:?}; monitoring starts if Galera appears)",
                    ironfence_galera::health::POLL_PLAIN
                ),
                PolledDb::Unreachable => tracing::info!(
                    "the database does not answer: read-only until it does ({state})"
                ),
            }
        }
        *health.last_state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        health
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| QuorumMonitor::new(now));
        health.feed(&shared, event);
        let interval = poll_interval(found, health.is_read_only());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

fn unreachable_poll(e: &StoreError, at: Instant) -> (PolledDb, String, DbEvent) {
    (
        PolledDb::Unreachable,
        format!("unreachable: {e}"),
        DbEvent::PollFailed {
            error: e.to_string(),
            at,
        },
    )
}

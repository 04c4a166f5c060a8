//! Quorum-aware read-only (degraded) mode.
//!
//! On a Galera node, a monitor polls `SHOW GLOBAL STATUS LIKE 'wsrep%'` every second and any
//! write refused with "WSREP not ready" / read-only errors flips the server to read-only at
//! once (`ironfence_galera::QuorumMonitor` decides; this module only feeds it and exposes the
//! result). It returns to read-write by itself on the first healthy poll (Primary + Synced +
//! ready).
//!
//! In read-only mode the RADIUS path keeps answering from what the database holds (Galera's
//! dirty reads) and writes nothing to the database: accounting records and the node rows of
//! devices seen for the first time go to the local spool ([`crate::spool`]) and are replayed
//! when writes work again; audit records are counted as skipped
//! (`ironfence_db_writes_skipped_total{op}`), never retried or logged one by one.

use crate::Shared;
use ironfence_galera::{DbEvent, QuorumMonitor, WriteErrorKind, WsrepStatus};
use ironfence_store::StoreError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the local database is polled while read-write.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// While read-only, poll faster: the way back to read-write is only seen by a poll.
pub const POLL_INTERVAL_READ_ONLY: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct DbHealth {
    read_only: AtomicBool,
    /// `None` until the first poll shows a Galera node (and for SQLite / plain MariaDB).
    monitor: Mutex<Option<QuorumMonitor>>,
    last_state: Mutex<String>,
    /// Woken when the monitor goes back to read-write (the spool replay waits on it).
    writable: tokio::sync::Notify,
}

impl DbHealth {
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
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
                tracing::warn!(%change, "database read-only: RADIUS keeps answering from stored roles, nothing is persisted");
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

/// The monitor task. Stops by itself if the database is not a Galera node.
pub async fn run_monitor(shared: std::sync::Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let health = &shared.db;
    loop {
        let now = Instant::now();
        match shared.store.wsrep_status().await {
            Ok(None) => return, // SQLite: nothing to monitor
            Ok(Some(rows)) if rows.is_empty() => {
                *health.last_state.lock().unwrap_or_else(|e| e.into_inner()) =
                    "MariaDB (no Galera)".into();
                tracing::info!("the database is not a Galera node: no quorum monitoring");
                return;
            }
            Ok(Some(rows)) => {
                let status = WsrepStatus::from_status_rows(&rows);
                *health.last_state.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                    "{}/{} size {} ready {}",
                    status.cluster_status,
                    status.local_state_comment,
                    status
                        .cluster_size
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into()),
                    if status.ready { "ON" } else { "OFF" }
                );
                health
                    .monitor
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| QuorumMonitor::new(now));
                health.feed(&shared, DbEvent::StatusPolled { status, at: now });
            }
            Err(e) => {
                *health.last_state.lock().unwrap_or_else(|e| e.into_inner()) =
                    format!("unreachable: {e}");
                health.feed(
                    &shared,
                    DbEvent::PollFailed {
                        error: e.to_string(),
                        at: now,
                    },
                );
            }
        }
        let interval = if health.is_read_only() {
            POLL_INTERVAL_READ_ONLY
        } else {
            POLL_INTERVAL
        };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

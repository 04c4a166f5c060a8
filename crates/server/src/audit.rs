//! The RADIUS audit log, written off the hot path: requests push records into a bounded
//! queue; one writer drains it in batches (one transaction each). When the queue is full the
//! record is dropped and counted; the request itself is never slowed down by auditing.

use crate::Shared;
use ironfence_store::AuditRecord;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Records written per transaction at most.
const BATCH: usize = 8192;
/// How long the writer waits for a batch to fill before committing what it has.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug)]
pub(crate) struct AuditQueue {
    tx: Mutex<Option<mpsc::Sender<AuditRecord>>>,
}

impl AuditQueue {
    pub(crate) fn new(capacity: usize) -> (AuditQueue, mpsc::Receiver<AuditRecord>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            AuditQueue {
                tx: Mutex::new(Some(tx)),
            },
            rx,
        )
    }

    /// Queues a record; never waits. Returns false if it had to be dropped.
    pub(crate) fn push(&self, record: AuditRecord) -> bool {
        let guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(tx) => tx.try_send(record).is_ok(),
            None => false,
        }
    }

    /// Closes the queue so that the writer drains what is left and stops.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

pub(crate) async fn writer(shared: Arc<Shared>, mut rx: mpsc::Receiver<AuditRecord>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return; // closed and drained
        }
        // Let the batch fill for a moment: one transaction per FLUSH_INTERVAL instead of one per
        // handful of records. Under load a commit costs far more than a row, so this is what
        // keeps auditing cheap; when idle a record waits at most FLUSH_INTERVAL.
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let n = batch.len() as u64;
        // SQLite runs the batch synchronously: do it on a blocking thread so the RADIUS
        // listeners sharing this runtime never wait behind a commit.
        let store = shared.store.clone();
        let handle = tokio::runtime::Handle::current();
        let (result, returned) = tokio::task::spawn_blocking(move || {
            let r = handle.block_on(store.insert_audit_batch(&batch));
            (r, batch)
        })
        .await
        .unwrap_or_else(|e| {
            (
                Err(ironfence_store::StoreError::other(format!(
                    "audit writer: {e}"
                ))),
                Vec::new(),
            )
        });
        batch = returned;
        match result {
            Ok(()) => {
                shared
                    .metrics
                    .audit
                    .get_or_create(&[("outcome", "written")])
                    .inc_by(n);
            }
            Err(e) if shared.db.write_failed(&shared, &e) => {
                shared
                    .metrics
                    .db_writes_skipped
                    .get_or_create(&[("op", "audit")])
                    .inc_by(n);
            }
            Err(e) => {
                shared
                    .metrics
                    .audit
                    .get_or_create(&[("outcome", "failed")])
                    .inc_by(n);
                tracing::warn!(error = %e, records = n, "audit log batch not written");
            }
        }
    }
}

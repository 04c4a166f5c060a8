//! The RADIUS audit log, written off the hot path: requests push records into a bounded
//! queue; one writer drains it in batches (one transaction each). When the queue is full the
//! record is dropped and counted; the request itself is never slowed down by auditing.

use crate::Shared;
use ironfence_store::AuditRecord;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Records written per transaction at most.
const BATCH: usize = 1024;

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
        let n = batch.len() as u64;
        match shared.store.insert_audit_batch(&batch).await {
            Ok(()) => {
                shared
                    .metrics
                    .audit
                    .get_or_create(&[("outcome", "written")])
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

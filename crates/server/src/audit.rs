//! The RADIUS audit log, as `[radius] audit_log` selects:
//!
//! * `file` (default): [`ironfence_audit::Sink`] — each server's own append-only segment
//!   files under `<state_dir>/audit/`, written by one std thread. [`push`] moves the record
//!   into a bounded channel; when the writer is behind the request waits for room (counted in
//!   `ironfence_audit_log_blocked_seconds_total`), it never drops a record. The files are
//!   written whether or not the database takes writes (a read-only Galera member keeps its
//!   audit trail). See the `ironfence-audit` crate and docs/audit.md for why.
//! * `database`: PacketFence's way, one `radius_audit_log` row per request, batched by a tokio
//!   task into the store. On Galera each batch is replicated and certified cluster-wide; kept
//!   so the benchmark can measure it. When its queue is full a record is dropped and counted
//!   (`ironfence_audit_records{outcome="dropped"}`), and nothing is written in read-only mode.
//! * `disabled`: nothing.
//!
//! The mode is chosen at start; changing it needs a restart (a reload says so). A reload to
//! `disabled` stops new records at once.

use crate::Shared;
use ironfence_audit::{AuditRecord, Sink};
use ironfence_config::AuditLogMode;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Records written per transaction at most (database mode).
const BATCH: usize = 8192;
/// How long the database writer waits for a batch to fill before committing what it has.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);
/// Records queued at most before new ones are dropped (database mode).
const DB_QUEUE: usize = 32_768;

#[derive(Debug)]
enum Target {
    File(Sink),
    Database(Mutex<Option<mpsc::Sender<ironfence_store::AuditRecord>>>),
    Disabled,
}

/// The audit log of the running daemon.
#[derive(Debug)]
pub(crate) struct Audit {
    target: Target,
}

/// What [`Audit::start`] leaves for the daemon to run.
pub(crate) type DbReceiver = mpsc::Receiver<ironfence_store::AuditRecord>;

impl Audit {
    /// Opens the log the configuration selects. `file`: recovers the directory (torn tail cut,
    /// indexes written) and starts the writer thread.
    pub(crate) fn start(
        settings: &crate::settings::AuditSettings,
        metrics: &crate::metrics::Metrics,
    ) -> anyhow::Result<(Audit, Option<DbReceiver>)> {
        let (target, rx) = match settings.mode {
            AuditLogMode::File => {
                // `ironfence_audit_records_total{outcome="written"}` counts in every mode.
                let written = metrics.audit.clone();
                let (sink, recovery) = Sink::start_observed(
                    &settings.dir,
                    settings.limits,
                    ironfence_audit::sink::DEFAULT_CAPACITY,
                    Box::new(move |n| {
                        written.get_or_create(&[("outcome", "written")]).inc_by(n);
                    }),
                )
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot open the audit log in {}: {e}",
                        settings.dir.display()
                    )
                })?;
                if recovery != ironfence_audit::Recovery::default() {
                    tracing::warn!(
                        dir = %settings.dir.display(),
                        indexed = recovery.indexed,
                        truncated_bytes = recovery.truncated_bytes,
                        set_aside = ?recovery.set_aside,
                        "audit log recovered after an unclean stop (torn tail cut, indexes rebuilt)"
                    );
                }
                (Target::File(sink), None)
            }
            AuditLogMode::Database => {
                let (tx, rx) = mpsc::channel(DB_QUEUE);
                (Target::Database(Mutex::new(Some(tx))), Some(rx))
            }
            AuditLogMode::Disabled => (Target::Disabled, None),
        };
        Ok((Audit { target }, rx))
    }

    /// The file writer's counters (file mode).
    pub(crate) fn file_stats(&self) -> Option<Arc<ironfence_audit::Stats>> {
        match &self.target {
            Target::File(sink) => Some(sink.stats().clone()),
            _ => None,
        }
    }

    /// Writes out what is queued and stops the writer (file mode: fsync, open segment indexed).
    pub(crate) fn close(&self) {
        match &self.target {
            Target::File(sink) => sink.close(),
            Target::Database(tx) => {
                tx.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
            Target::Disabled => {}
        }
    }
}

/// The request path's entry point: hands `record` to the audit log. File mode: never drops
/// (waits for room if the writer is behind); false only once the log is closed. Database mode:
/// false when the record was dropped (queue full, or read-only database).
pub(crate) fn push(shared: &Shared, record: AuditRecord) -> bool {
    let ok = match &shared.audit.target {
        Target::File(sink) => sink.push(record),
        Target::Database(tx) => {
            if shared.db.is_read_only() {
                shared.db.skipped(shared, "audit");
                return false;
            }
            let guard = tx.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_ref() {
                Some(tx) => tx.try_send(to_row(record)).is_ok(),
                None => false,
            }
        }
        Target::Disabled => return false,
    };
    if !ok {
        shared
            .metrics
            .audit
            .get_or_create(&[("outcome", "dropped")])
            .inc();
    }
    ok
}

/// The database row of a record (seconds: the table's `created_at` has no fraction).
fn to_row(r: AuditRecord) -> ironfence_store::AuditRecord {
    ironfence_store::AuditRecord {
        created_at: r.time_us.div_euclid(1_000_000),
        mac: r.mac,
        user_name: r.user_name,
        nas_ip: r.nas_ip,
        nas_port: r.nas_port,
        request_type: r.request_type.as_str().to_string(),
        outcome: r.outcome,
        reason: r.reason,
        vlan: r.vlan,
        role: r.role,
        switch_id: r.switch_id,
        calling_station_id: r.calling_station_id,
        called_station_id: r.called_station_id,
    }
}

/// Runs `query` over this server's file log (the node-to-node API's audit endpoint).
pub(crate) async fn query_local(
    shared: &Shared,
    query: ironfence_audit::Query,
) -> Result<Vec<AuditRecord>, String> {
    let dir = crate::settings::audit(&shared.config()).dir;
    tokio::task::spawn_blocking(move || ironfence_audit::query(&dir, &query))
        .await
        .map_err(|e| format!("audit query: {e}"))?
        .map(|f| f.records)
        .map_err(|e| format!("cannot read the audit log: {e}"))
}

/// The database writer (database mode): batches of rows, one transaction each.
pub(crate) async fn db_writer(shared: Arc<Shared>, mut rx: DbReceiver) {
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

/// The audit records of `query` gathered from every server (see [`query_cluster`]).
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// `(server, record)`, oldest first, at most `query.limit`.
    pub records: Vec<(String, AuditRecord)>,
    /// Servers that did not answer, with the reason: the list is incomplete.
    pub missing: Vec<(String, String)>,
    /// Whether the configuration is a cluster's (records then name their server).
    pub in_cluster: bool,
}

/// Runs `query` over this server's log and, on a cluster member, over every member's (all
/// asked at once through the node-to-node API, each given `peer_timeout`), merged by time.
/// Every server keeps its own log; this is how `ironfence audit MAC` and the admin API see
/// all of them.
pub async fn query_cluster(
    config: &ironfence_config::Config,
    query: ironfence_audit::Query,
    peer_timeout: std::time::Duration,
) -> Gathered {
    use crate::cluster;
    let dir = crate::settings::audit_dir(config);
    let local = |dir: std::path::PathBuf, q: ironfence_audit::Query| async move {
        tokio::task::spawn_blocking(move || ironfence_audit::query(&dir, &q))
            .await
            .map_err(|e| e.to_string())?
            .map(|f| f.records)
            .map_err(|e| format!("cannot read the local audit log: {e}"))
    };
    let mut answers: Vec<(String, Vec<AuditRecord>)> = Vec::new();
    let mut missing: Vec<(String, String)> = Vec::new();
    match config.cluster.as_ref().filter(|_| config.is_cluster()) {
        None => match local(dir, query.clone()).await {
            Ok(r) => answers.push((config.identity.clone(), r)),
            Err(e) => missing.push((config.identity.clone(), e)),
        },
        Some(cl) => {
            let trust = cluster::cluster_trust(config);
            let asked: Vec<_> = cl
                .servers
                .iter()
                .map(|server| {
                    let name = server.name.clone();
                    let q = query.clone();
                    if server.name == config.identity {
                        return (name, tokio::spawn(local(dir.clone(), q)));
                    }
                    let client = match &trust {
                        Ok(t) => {
                            cluster::client_with_timeout(config, server, t.clone(), peer_timeout)
                        }
                        Err(e) => Err(e.clone()),
                    };
                    (
                        name,
                        tokio::spawn(
                            async move { client?.audit(&q).await.map_err(|e| e.to_string()) },
                        ),
                    )
                })
                .collect();
            for (name, task) in asked {
                match task.await {
                    Ok(Ok(records)) => answers.push((name, records)),
                    Ok(Err(e)) => missing.push((name, e)),
                    Err(e) => missing.push((name, format!("query failed: {e}"))),
                }
            }
        }
    }
    let mut merged: Vec<(String, AuditRecord)> = answers
        .into_iter()
        .flat_map(|(name, records)| records.into_iter().map(move |r| (name.clone(), r)))
        .collect();
    merged.sort_by(|a, b| {
        (a.1.time_us, a.1.request_id, &a.0).cmp(&(b.1.time_us, b.1.request_id, &b.0))
    });
    if let Some(limit) = query.limit
        && merged.len() > limit
    {
        merged.drain(..merged.len() - limit);
    }
    Gathered {
        records: merged,
        missing,
        in_cluster: config.is_cluster(),
    }
}

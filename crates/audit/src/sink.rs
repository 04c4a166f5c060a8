//! The request path's side: a bounded channel into one writer thread (a std thread, not a
//! tokio task: it does blocking file IO and must never compete with the runtime's workers).
//!
//! [`Sink::push`] moves the record into the channel (`try_send`, no allocation, no syscall).
//! When the channel is full the writer has fallen behind: the caller then **waits** for a
//! slot instead of dropping the record, and the time waited is counted
//! ([`Stats::blocked_ns`]). The writer drains whatever is queued into one `write(2)`, fsyncs at
//! most every second and rotates/applies retention every [`MAINTAIN_EVERY`].

use crate::log::{AuditLog, Limits, Recovery};
use crate::record::{AuditRecord, now_us};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records queued between the request path and the writer. About 300 bytes a slot: 5 MB, a
/// third of a second at 50k requests/s — the writer keeps up with millions per second, this
/// only absorbs a slow disk for a moment.
pub const DEFAULT_CAPACITY: usize = 16_384;
/// Records per write at most.
const BATCH: usize = 4096;
/// fsync period: a host crash (power cut, kernel panic) loses at most this much of the log; a
/// crash of the process alone loses only what was still in the channel.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How long the writer lets records gather after the first one wakes it. At 100k requests/s
/// that is 500 records, far below [`DEFAULT_CAPACITY`]; a record reaches the file at most this
/// much later.
const LINGER: Duration = Duration::from_millis(5);
/// How often time-based rotation and retention are checked.
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(10);

/// Counters of the writer, read by the daemon's metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub records_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Records that could not be written (IO error, e.g. a full disk).
    pub records_failed: AtomicU64,
    /// Segments in the directory now (the open one included).
    pub segments: AtomicU64,
    /// Bytes of all segments and indexes now.
    pub disk_bytes: AtomicU64,
    pub segments_created: AtomicU64,
    pub segments_deleted: AtomicU64,
    /// Total time request paths waited for room in the channel.
    pub blocked_ns: AtomicU64,
    /// Pushes that had to wait.
    pub blocked_pushes: AtomicU64,
}

// Records are what the channel carries: boxing them would add an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(AuditRecord),
    Flush(SyncSender<()>),
    Close,
}

/// The audit log's writer thread and the channel into it.
#[derive(Debug)]
pub struct Sink {
    tx: SyncSender<Msg>,
    stats: Arc<Stats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Record(_) => "Record",
            Msg::Flush(_) => "Flush",
            Msg::Close => "Close",
        })
    }
}

impl Sink {
    /// Opens the log in `dir` (recovering it, see [`AuditLog::open`]) and starts the writer.
    pub fn start(dir: &Path, limits: Limits, capacity: usize) -> std::io::Result<(Sink, Recovery)> {
        Sink::start_observed(dir, limits, capacity, Box::new(|_| {}))
    }

    /// [`Sink::start`], calling `on_written(n)` on the writer thread after each batch of `n`
    /// records is handed to the kernel (the daemon counts them in its own metrics).
    pub fn start_observed(
        dir: &Path,
        limits: Limits,
        capacity: usize,
        on_written: Box<dyn Fn(u64) + Send>,
    ) -> std::io::Result<(Sink, Recovery)> {
        let (log, recovery) = AuditLog::open(dir, limits, now_us())?;
        let stats = Arc::new(Stats::default());
        stats.segments.store(log.segments() as u64, Relaxed);
        stats.disk_bytes.store(log.total_bytes(), Relaxed);
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(log, rx, &thread_stats, &*on_written))?;
        Ok((
            Sink {
                tx,
                stats,
                thread: Mutex::new(Some(thread)),
            },
            recovery,
        ))
    }

    /// Hands a record to the writer. Waits (counted in [`Stats::blocked_ns`]) while the
    /// channel is full; returns false only once the sink is closed.
    pub fn push(&self, record: AuditRecord) -> bool {
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => true,
            Err(TrySendError::Full(msg)) => {
                let started = Instant::now();
                let ok = self.tx.send(msg).is_ok();
                self.stats.blocked_ns.fetch_add(
                    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
                    Relaxed,
                );
                self.stats.blocked_pushes.fetch_add(1, Relaxed);
                ok
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits until every record pushed before this call is handed to the kernel.
    pub fn flush(&self) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg::Flush(tx)).is_ok() && rx.recv().is_ok()
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Writes what is queued, fsyncs, indexes the open segment and stops the writer.
    pub fn close(&self) {
        let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let _ = self.tx.send(Msg::Close);
        let _ = thread.join();
    }
}

fn run(mut log: AuditLog, rx: mpsc::Receiver<Msg>, stats: &Stats, on_written: &dyn Fn(u64)) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(BATCH);
    let mut acks: Vec<SyncSender<()>> = Vec::new();
    let mut last_sync = Instant::now();
    let mut last_maintain = Instant::now();
    let mut closing = false;
    let mut last_error_log: Option<Instant> = None;
    while !closing {
        let wait = SYNC_EVERY
            .saturating_sub(last_sync.elapsed())
            .max(Duration::from_millis(10));
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Msg::Close),
        };
        if matches!(first, Some(Msg::Record(_))) {
            // Let a batch gather before draining: the writer then blocks on the channel (and a
            // push has to wake it, a futex call on the request path) once per LINGER instead
            // of once per request.
            std::thread::sleep(LINGER);
        }
        let mut next = first;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(r) => batch.push(r),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Close => closing = true,
            }
            if closing || batch.len() >= BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        let now = now_us();
        if !batch.is_empty() {
            let before = log.segments();
            match log.append(&batch, now) {
                Ok(a) => {
                    stats.records_written.fetch_add(a.records, Relaxed);
                    on_written(a.records);
                    stats.bytes_written.fetch_add(a.bytes, Relaxed);
                    stats
                        .segments_created
                        .fetch_add(log.segments().saturating_sub(before) as u64, Relaxed);
                }
                Err(e) => {
                    stats.records_failed.fetch_add(batch.len() as u64, Relaxed);
                    if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::error!(dir = %log.dir().display(), error = %e, records = batch.len(), "audit log: records not written");
                        last_error_log = Some(Instant::now());
                    }
                }
            }
            batch.clear();
        }
        if last_sync.elapsed() >= SYNC_EVERY || closing {
            if let Err(e) = log.sync() {
                tracing::error!(dir = %log.dir().display(), error = %e, "audit log: fsync failed");
            }
            last_sync = Instant::now();
        }
        if last_maintain.elapsed() >= MAINTAIN_EVERY && !closing {
            let before = log.segments();
            match log.maintain(now) {
                Ok(deleted) => {
                    stats
                        .segments_deleted
                        .fetch_add(deleted.len() as u64, Relaxed);
                    let created = (log.segments() + deleted.len()).saturating_sub(before);
                    stats.segments_created.fetch_add(created as u64, Relaxed);
                }
                Err(e) => {
                    tracing::error!(dir = %log.dir().display(), error = %e, "audit log: rotation/retention failed")
                }
            }
            last_maintain = Instant::now();
        }
        stats.segments.store(log.segments() as u64, Relaxed);
        stats.disk_bytes.store(log.total_bytes(), Relaxed);
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
    if let Err(e) = log.close() {
        tracing::error!(error = %e, "audit log: closing the open segment failed");
    }
}

/// Request ids of this server: increasing, and unique across restarts as long as the server
/// takes fewer than a million requests per second on average since the epoch (they start at
/// the current time in microseconds).
#[derive(Debug)]
pub struct RequestIds(AtomicU64);

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds(AtomicU64::new(u64::try_from(now_us()).unwrap_or(1)))
    }
}

impl RequestIds {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Relaxed)
    }
}

//! The local accounting spool: writes the RADIUS path acknowledges while the database cannot
//! take them, made durable on this server's disk and replayed into the database later.
//!
//! RFC 2866 §2 / §4.1: an Accounting-Response means the record is stored. When the database
//! refuses writes (read-only, out of the Galera quorum) or cannot be reached, a record is
//! appended here instead and the switch is answered only once the fsync covering it returned —
//! so nothing a switch reported is lost across a partition, and no record is answered and then
//! dropped. When the spool cannot take it (full, disk error), the request is not answered: the
//! NAS retransmits or fails over.
//!
//! ```text
//!  request ─ append(record) ─► channel ─► writer thread: one write + one fdatasync for every
//!     ▲                                    record queued meanwhile (group commit)
//!     └──── durable ack ◄──────────────────┘
//!  replay task ─ replay(store) ─► reads frames in file order ─► waves of independent records
//!                                 (record::waves) ─► store, idempotency key per record
//!                                 ─► at the end: truncate, if nothing was appended
//! ```
//!
//! Order: while the spool holds records, new records queue behind them even when the database
//! is writable again ([`Spool::append_if_pending`]), so the store sees each session's
//! Start/Interim/Stop in the order they arrived. The replay applies records of different
//! devices concurrently, a few at a time, but each device's (and each IP address's) records
//! in spool order ([`record::waves`]). The decision is taken by the writer thread,
//! the only one that also truncates, so no record can slip past an unreplayed one.
//!
//! Idempotency: each record carries a key (see [`record::idempotency_key`]); the store records
//! it in the same transaction as the record's effects and ignores a key it already has, so a
//! crash in the middle of a replay (the whole spool is replayed again at the next start) applies
//! nothing twice.
//!
//! The file lives in the state directory, mode 0600, opened without following symbolic links.
//! Its frames carry a length and a CRC: at start-up a torn tail left by a crash is detected and
//! truncated (see [`record`]).

pub mod record;

use crate::Shared;
use crate::metrics::SpoolMetrics;
use ironfence_core::UnixTime;
use ironfence_store::{Store, StoreError};
use record::{Entry, FrameError, Record};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::{Notify, oneshot, watch};

/// File name inside the state directory.
pub const FILE_NAME: &str = "accounting.spool";
/// Records appended with one write + fsync at most.
const GROUP_MAX: usize = 4096;
/// Records read from the file per replay step.
const REPLAY_BATCH: usize = 512;
/// Records applied concurrently at most (the MariaDB pool has 16 connections, shared with the
/// RADIUS path).
const WAVE_MAX: usize = 8;
/// How long the idempotency keys of replayed records are kept in the database. A replay that
/// crashed is resumed at the next start; only a server down for longer could re-apply.
pub const KEY_RETENTION_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the accounting spool is full ({used} of {max} bytes)")]
    Full { used: u64, max: u64 },
    #[error("accounting spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("accounting spool {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the accounting spool writer has stopped")]
    Closed,
}

enum Cmd {
    Append {
        frame: Vec<u8>,
        /// Only if the spool already holds records (else answer `Appended::NotPending`).
        if_pending: bool,
        done: oneshot::Sender<Result<Appended, SpoolError>>,
    },
    /// Truncate to zero if the durable length is still `len` (nothing appended since the
    /// replay read up to there).
    TruncateIfLen {
        len: u64,
        done: oneshot::Sender<Result<bool, SpoolError>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    Durable,
    NotPending,
}

#[derive(Debug)]
struct State {
    path: PathBuf,
    max_bytes: u64,
    /// Bytes written and fsync'd; the replay reads below this only.
    durable_len: AtomicU64,
    /// The spool holds records (durable_len > 0).
    pending: AtomicBool,
    /// Woken after every durable append.
    appended: Notify,
    metrics: SpoolMetrics,
}

/// Handle to the spool. One per state directory; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Spool {
    state: Arc<State>,
    /// `None` only while dropping.
    tx: Option<mpsc::Sender<Cmd>>,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: Arc<File>,
    /// Replay position; one replay at a time.
    cursor: tokio::sync::Mutex<Cursor>,
}

#[derive(Debug, Default)]
struct Cursor {
    /// Offset of the next record to apply.
    offset: u64,
    /// Times the record at `offset` was refused with a permanent error.
    refusals: u32,
}

/// Attempts (spread over replay calls) before a record the database refuses for good is
/// discarded: an error classified as permanent by mistake must not lose a record at once.
const PERMANENT_REFUSALS: u32 = 3;

/// What one [`Spool::replay`] call did.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub applied: u64,
    pub duplicates: u64,
    pub discarded: u64,
    /// The spool was emptied (truncated) at the end.
    pub drained: bool,
    /// The store refused a record (read-only, unreachable…): replay stopped before it, and
    /// resumes from it next time.
    pub blocked: Option<StoreError>,
}

impl Spool {
    /// Opens (creating it, mode 0600, and its directory) the spool at `path`, truncates a torn
    /// tail and starts the writer thread.
    pub fn open(path: &Path, max_bytes: u64, metrics: SpoolMetrics) -> Result<Spool, SpoolError> {
        let io_err = |source| SpoolError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(io_err)?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err)?;
        // One daemon per spool: a second one would take the first's record being written for
        // a torn tail and cut it, and replay the same records concurrently.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Corrupt {
                    path: path.to_path_buf(),
                    reason: "in use by another process (is another `ironfence serve` running on this state directory?)".into(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(SpoolError::Corrupt {
                path: path.to_path_buf(),
                reason: "not a regular file".into(),
            });
        }
        if meta.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io_err)?;
        }
        let (_, valid_len, tail) = read_entries(&file, 0, meta.len(), usize::MAX, path)?;
        if valid_len < meta.len() {
            tracing::warn!(
                spool = %path.display(),
                kept = valid_len,
                discarded = meta.len() - valid_len,
                reason = %tail.map(|e| e.to_string()).unwrap_or_else(|| "incomplete last record (torn write)".into()),
                "accounting spool: truncating a damaged tail left by a crash"
            );
            file.set_len(valid_len).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        if !existed && let Some(dir) = path.parent() {
            ironfence_core::fsutil::sync_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            });
        }
        metrics.bytes.set(valid_len as i64);
        let state = Arc::new(State {
            path: path.to_path_buf(),
            max_bytes,
            durable_len: AtomicU64::new(valid_len),
            pending: AtomicBool::new(valid_len > 0),
            appended: Notify::new(),
            metrics,
        });
        let reader = Arc::new(file.try_clone().map_err(io_err)?);
        let (tx, rx) = mpsc::channel();
        let writer_state = state.clone();
        let writer_thread = std::thread::Builder::new()
            .name("ironfence-spool".into())
            .spawn(move || writer(file, valid_len, writer_state, rx))
            .map_err(io_err)?;
        if valid_len > 0 {
            tracing::info!(spool = %path.display(), bytes = valid_len, "accounting spool holds records to replay");
        }
        Ok(Spool {
            state,
            tx: Some(tx),
            writer: Some(writer_thread),
            reader,
            cursor: tokio::sync::Mutex::new(Cursor::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.state.path
    }

    fn sender(&self) -> Result<&mpsc::Sender<Cmd>, SpoolError> {
        self.tx.as_ref().ok_or(SpoolError::Closed)
    }

    /// The spool holds records not yet replayed.
    pub fn is_pending(&self) -> bool {
        self.state.pending.load(Ordering::Acquire)
    }

    /// Bytes in the spool (durable).
    pub fn len(&self) -> u64 {
        self.state.durable_len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `record`; returns once it is on disk (fsync'd).
    pub async fn append(&self, record: Record) -> Result<(), SpoolError> {
        self.send_append(record, false).await.map(|_| ())
    }

    /// Appends `record` only if the spool already holds records (it must queue behind them);
    /// `Ok(false)` when the spool is empty and the caller should write to the store directly.
    pub async fn append_if_pending(&self, record: Record) -> Result<bool, SpoolError> {
        Ok(self.send_append(record, true).await? == Appended::Durable)
    }

    async fn send_append(&self, record: Record, if_pending: bool) -> Result<Appended, SpoolError> {
        let frame = record::encode_frame(&Entry::new(record));
        let (done, rx) = oneshot::channel();
        self.sender()?
            .send(Cmd::Append {
                frame,
                if_pending,
                done,
            })
            .map_err(|_| SpoolError::Closed)?;
        rx.await.map_err(|_| SpoolError::Closed)?
    }

    /// Waits until a record was appended since the last call (or was already pending).
    pub async fn appended(&self) {
        self.state.appended.notified().await
    }

    async fn truncate_if_len(&self, len: u64) -> Result<bool, SpoolError> {
        let (done, rx) = oneshot::channel();
        self.sender()?
            .send(Cmd::TruncateIfLen { len, done })
            .map_err(|_| SpoolError::Closed)?;
        rx.await.map_err(|_| SpoolError::Closed)?
    }

    /// Applies one batch of spooled records to `store` in order, from where the last call
    /// stopped (from the start after a restart: the idempotency keys skip what was applied
    /// before a crash). Stops before the first record the store cannot take now (`blocked`).
    /// A record the store rejects for good (a data error) is retried a few times, then logged
    /// with its content and discarded, so it cannot block the spool for ever. When everything
    /// durable is applied and nothing new was appended, the spool is truncated (`drained`);
    /// otherwise call again.
    pub async fn replay(
        &self,
        store: &Store,
        now: impl Fn() -> UnixTime,
    ) -> Result<ReplayReport, SpoolError> {
        let mut cursor = self.cursor.lock().await;
        let mut report = ReplayReport::default();
        loop {
            let end = self.len();
            if cursor.offset > end {
                *cursor = Cursor::default(); // cannot happen (only this function truncates)
            }
            if cursor.offset == end {
                if end == 0 || self.truncate_if_len(end).await? {
                    *cursor = Cursor::default();
                    report.drained = true;
                    return Ok(report);
                }
                continue; // appended meanwhile: keep going
            }
            let reader = self.reader.clone();
            let (from, path) = (cursor.offset, self.state.path.clone());
            let (entries, valid, tail) = tokio::task::spawn_blocking(move || {
                read_entries(&reader, from, end, REPLAY_BATCH, &path)
            })
            .await
            .map_err(|e| SpoolError::Corrupt {
                path: self.state.path.clone(),
                reason: format!("reader task failed: {e}"),
            })??;
            if entries.is_empty() {
                // Below the durable length everything was written and fsync'd by us.
                return Err(SpoolError::Corrupt {
                    path: self.state.path.clone(),
                    reason: format!(
                        "unreadable record at offset {valid}: {}",
                        tail.map(|e| e.to_string())
                            .unwrap_or_else(|| "incomplete".into())
                    ),
                });
            }
            let records: Vec<&Record> = entries.iter().map(|(e, _)| &e.record).collect();
            for wave in record::waves(&records, WAVE_MAX) {
                // The records of a wave are independent (see `waves`): applied concurrently.
                let at = now();
                let tasks: Vec<_> = entries[wave.clone()]
                    .iter()
                    .map(|(entry, _)| {
                        let (store, entry) = (store.clone(), entry.clone());
                        tokio::spawn(async move { apply(&store, &entry, at).await })
                    })
                    .collect();
                let mut results = Vec::with_capacity(tasks.len());
                for t in tasks {
                    results.push(t.await.unwrap_or_else(|e| {
                        Err(StoreError::Unavailable {
                            message: format!("replay task failed: {e}"),
                        })
                    }));
                }
                // The cursor moves over the prefix that was applied; records of the wave after
                // a refused one are applied again next time (their keys make that a no-op).
                for ((entry, next), result) in entries[wave].iter().zip(results) {
                    match result {
                        Ok(true) => {
                            report.applied += 1;
                            self.state.metrics.replayed("applied");
                        }
                        Ok(false) => {
                            report.duplicates += 1;
                            self.state.metrics.replayed("duplicate");
                        }
                        Err(e) if e.is_retryable() => {
                            report.blocked = Some(e);
                            return Ok(report);
                        }
                        Err(e) if cursor.refusals + 1 < PERMANENT_REFUSALS => {
                            cursor.refusals += 1;
                            tracing::warn!(record = ?entry.record, error = %e, attempt = cursor.refusals, "spooled record refused by the database; will retry before giving up on it");
                            report.blocked = Some(e);
                            return Ok(report);
                        }
                        Err(e) => {
                            tracing::error!(record = ?entry.record, error = %e, "spooled record refused by the database for good: discarded (enter it by hand if it matters)");
                            report.discarded += 1;
                            self.state.metrics.replayed("discarded");
                        }
                    }
                    *cursor = Cursor {
                        offset: *next,
                        refusals: 0,
                    };
                }
            }
            if cursor.offset < self.len() {
                // One batch per call: the caller gets to notice a shutdown between batches.
                return Ok(report);
            }
        }
    }
}

impl Drop for Spool {
    /// Stops the writer (it finishes the group in hand) and waits for it, so that the file and
    /// its lock are released when this returns.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

async fn apply(store: &Store, entry: &Entry, now: UnixTime) -> Result<bool, StoreError> {
    match &entry.record {
        Record::Accounting(ev) => {
            store
                .record_accounting_idempotent(ev, &entry.key, now)
                .await
        }
        // The insert is idempotent by itself (the MAC is the primary key).
        Record::NodeSeen { mac, at } => store.create_node_if_absent(*mac, *at).await.map(|_| true),
        // An admin audit entry written while the database was read-only (admin::audit_log).
        Record::AdminAudit { entry: e, .. } => store.insert_admin_audit(e, &entry.key).await,
    }
}

/// What [`read_entries`] found: the entries (with the offset after each), the offset where
/// reading stopped, and why it stopped early (a bad frame), if it did.
type Read = (Vec<(Entry, u64)>, u64, Option<FrameError>);

/// Reads up to `max` entries between `from` and `to`.
fn read_entries(
    file: &File,
    from: u64,
    to: u64,
    max: usize,
    path: &Path,
) -> Result<Read, SpoolError> {
    const CHUNK: usize = 1 << 20;
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = from; // file offset of buf[0]
    let mut read_to = from;
    let mut at = 0usize; // position in buf
    loop {
        if out.len() >= max {
            return Ok((out, buf_start + at as u64, None));
        }
        match record::decode_frame(&buf[at..]) {
            Ok(Some((entry, n))) => {
                at += n;
                out.push((entry, buf_start + at as u64));
                continue;
            }
            Err(e) => return Ok((out, buf_start + at as u64, Some(e))),
            Ok(None) => {}
        }
        if read_to >= to {
            return Ok((out, buf_start + at as u64, None));
        }
        // Need more: drop what was consumed, read the next chunk.
        buf.drain(..at);
        buf_start += at as u64;
        at = 0;
        let n = CHUNK.min((to - read_to) as usize);
        let old = buf.len();
        buf.resize(old + n, 0);
        file.read_exact_at(&mut buf[old..], read_to)
            .map_err(|source| SpoolError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        read_to += n as u64;
    }
}

/// The writer thread: batches every append queued while the previous fsync ran into one write
/// and one fsync (group commit); answers each append only after the fsync that covers it.
fn writer(file: File, mut len: u64, state: Arc<State>, rx: mpsc::Receiver<Cmd>) {
    let mut broken = false;
    let mut full_warned = false;
    while let Ok(first) = rx.recv() {
        let mut cmds = vec![first];
        while cmds.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        let mut group = Group::default();
        for cmd in cmds {
            match cmd {
                Cmd::Append {
                    frame,
                    if_pending,
                    done,
                } => {
                    let used = len + group.buf.len() as u64;
                    if if_pending && used == 0 {
                        let _ = done.send(Ok(Appended::NotPending));
                    } else if broken {
                        state.metrics.refused("io_error");
                        let _ = done.send(Err(SpoolError::Io {
                            path: state.path.clone(),
                            source: io::Error::other("an earlier write failed and could not be undone; restart the daemon"),
                        }));
                    } else if used + frame.len() as u64 > state.max_bytes {
                        state.metrics.refused("full");
                        if !full_warned {
                            // Once per episode, not per request: the metric counts them.
                            tracing::warn!(spool = %state.path.display(), max = state.max_bytes, "accounting spool full: new Accounting-Requests are not answered until the database takes writes again (ironfence_spool_refused_total)");
                            full_warned = true;
                        }
                        let _ = done.send(Err(SpoolError::Full {
                            used,
                            max: state.max_bytes,
                        }));
                    } else {
                        group.buf.extend_from_slice(&frame);
                        group.waiters.push(done);
                    }
                }
                Cmd::TruncateIfLen {
                    len: expected,
                    done,
                } => {
                    group.flush(&file, &mut len, &state, &mut broken);
                    let r = if len == expected && !broken {
                        truncate(&file, &state).map(|()| {
                            len = 0;
                            full_warned = false;
                            true
                        })
                    } else {
                        Ok(false)
                    };
                    let _ = done.send(r);
                }
            }
        }
        group.flush(&file, &mut len, &state, &mut broken);
    }
}

#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    waiters: Vec<oneshot::Sender<Result<Appended, SpoolError>>>,
}

impl Group {
    fn flush(&mut self, file: &File, len: &mut u64, state: &State, broken: &mut bool) {
        if self.buf.is_empty() {
            return;
        }
        let result = file
            .write_all_at(&self.buf, *len)
            .and_then(|()| file.sync_data());
        match result {
            Ok(()) => {
                *len += self.buf.len() as u64;
                state.durable_len.store(*len, Ordering::Release);
                state.pending.store(true, Ordering::Release);
                state.metrics.bytes.set(*len as i64);
                for w in self.waiters.drain(..) {
                    let _ = w.send(Ok(Appended::Durable));
                }
                state.appended.notify_one();
            }
            Err(e) => {
                tracing::error!(spool = %state.path.display(), error = %e, records = self.waiters.len(), "accounting spool write failed: those requests are not answered");
                // Cut what may have been half-written, so the next group does not follow garbage.
                if file.set_len(*len).and_then(|()| file.sync_data()).is_err() {
                    *broken = true;
                }
                for w in self.waiters.drain(..) {
                    state.metrics.refused("io_error");
                    let _ = w.send(Err(SpoolError::Io {
                        path: state.path.clone(),
                        source: io::Error::new(e.kind(), e.to_string()),
                    }));
                }
            }
        }
        self.buf.clear();
    }
}

fn truncate(file: &File, state: &State) -> Result<(), SpoolError> {
    file.set_len(0)
        .and_then(|()| file.sync_data())
        .map_err(|source| SpoolError::Io {
            path: state.path.clone(),
            source,
        })?;
    state.durable_len.store(0, Ordering::Release);
    state.pending.store(false, Ordering::Release);
    state.metrics.bytes.set(0);
    Ok(())
}

/// The replay task: runs whenever the spool holds records and the database is not known to be
/// read-only; retries a refused replay with a growing pause (the read-only monitor's return to
/// read-write wakes it at once).
pub(crate) async fn run_replay(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    const MIN_PAUSE: Duration = Duration::from_millis(250);
    const MAX_PAUSE: Duration = Duration::from_secs(5);
    let spool = &shared.spool;
    let mut pause = MIN_PAUSE;
    // A cluster member may start before its database: the schema (the idempotency keys' table
    // among it) must be up to date before anything is replayed, or a record would fail for
    // good on a missing table. Idempotent, and serialised with the start-up migration.
    let mut schema_ready = false;
    let mut totals = (0u64, 0u64, 0u64);
    loop {
        let wait: Option<Duration> = if !spool.is_pending() {
            None // until something is appended
        } else if shared.db.is_read_only() {
            Some(MAX_PAUSE)
        } else if !schema_ready && let Err(e) = shared.store.migrate().await {
            tracing::debug!(error = %e, "accounting spool replay waits for the schema migration");
            Some(MAX_PAUSE)
        } else {
            schema_ready = true;
            match spool.replay(&shared.store, crate::radius::unix_now).await {
                Ok(r) => {
                    // One line per replay run (until drained or blocked), not per batch.
                    totals.0 += r.applied;
                    totals.1 += r.duplicates;
                    totals.2 += r.discarded;
                    if (r.drained || r.blocked.is_some()) && totals != (0, 0, 0) {
                        tracing::info!(
                            applied = totals.0,
                            duplicates = totals.1,
                            discarded = totals.2,
                            drained = r.drained,
                            "accounting spool replayed"
                        );
                        totals = (0, 0, 0);
                    }
                    match r.blocked {
                        Some(e) => {
                            shared.db.write_failed(&shared, &e);
                            tracing::debug!(error = %e, ?pause, "accounting spool replay waits: the database does not take writes yet");
                            let p = pause;
                            pause = (pause * 2).min(MAX_PAUSE);
                            Some(p)
                        }
                        None => {
                            pause = MIN_PAUSE;
                            if r.drained && r.applied > 0 {
                                let before = crate::radius::unix_now() - KEY_RETENTION_SECS;
                                if let Err(e) = shared.store.prune_spool_keys(before).await {
                                    tracing::debug!(error = %e, "pruning old spool keys failed; next time");
                                }
                            }
                            if spool.is_pending() {
                                Some(Duration::ZERO)
                            } else {
                                None
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "accounting spool replay failed");
                    Some(MAX_PAUSE)
                }
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = spool.appended(), if wait.is_none() => {}
            _ = shared.db.writable_again(), if wait.is_some() => {}
            _ = tokio::time::sleep(wait.unwrap_or(MAX_PAUSE)), if wait.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests;

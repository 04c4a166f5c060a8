//! The writer's side of the log: one open segment appended to, rotation, crash recovery and
//! retention. Used by one thread only ([`crate::sink`]); readers ([`crate::query`]) only ever
//! read the files, so they work while the daemon runs.

use crate::index::{self, Builder};
use crate::record::{self, AuditRecord};
use crate::segment::{self, ScanEnd};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of the log's files (MACs and user names: private to the daemon's user).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;
const US_PER_S: i64 = 1_000_000;

/// Rotation and retention (pf.conf `[radius] audit_log_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The open segment is closed once it holds this many bytes.
    pub segment_size: u64,
    /// ... or once it is this old (and holds a record), in microseconds.
    pub segment_age_us: i64,
    /// Closed segments whose newest record is older than this are deleted (microseconds).
    pub max_age_us: i64,
    /// The oldest closed segments are deleted while all segments together exceed this.
    pub max_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            segment_size: 64 << 20,
            segment_age_us: 3600 * US_PER_S,
            max_age_us: 30 * 86_400 * US_PER_S,
            max_size: 4 << 30,
        }
    }
}

/// Largest segment size: offsets in the index are 32-bit.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;

/// A closed segment, as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    pub seq: u64,
    /// Segment and index bytes.
    pub bytes: u64,
    /// Newest record (`None`: empty segment).
    pub max_time_us: Option<i64>,
}

/// Which closed segments (oldest first in `closed`) to delete: those whose newest record is
/// older than `max_age`, then the oldest while everything (the open segment included) is
/// larger than `max_size`. The open segment is never deleted. Pure.
pub fn retention_plan(
    closed: &[Closed],
    open_bytes: u64,
    now_us: i64,
    limits: &Limits,
) -> Vec<u64> {
    let cutoff = now_us.saturating_sub(limits.max_age_us);
    let mut total: u64 = open_bytes + closed.iter().map(|c| c.bytes).sum::<u64>();
    let mut delete = Vec::new();
    for c in closed {
        let too_old = c.max_time_us.is_none_or(|t| t < cutoff);
        if too_old || total > limits.max_size {
            delete.push(c.seq);
            total -= c.bytes;
        }
    }
    delete
}

/// Whether the open segment must be closed now. Pure.
pub fn should_rotate(
    len: u64,
    records: u64,
    opened_at_us: i64,
    now_us: i64,
    limits: &Limits,
) -> bool {
    len >= limits.segment_size
        || (records > 0 && now_us.saturating_sub(opened_at_us) >= limits.segment_age_us)
}

/// What opening the log found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments that had no index (the daemon stopped without closing them) and got one.
    pub indexed: u64,
    /// Bytes cut from torn or corrupt tails.
    pub truncated_bytes: u64,
    /// Files set aside as `<name>.corrupt` (not a segment at all).
    pub set_aside: Vec<PathBuf>,
}

/// What one append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    pub records: u64,
    pub bytes: u64,
}

/// The log directory, opened for writing by one writer.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    limits: Limits,
    file: File,
    seq: u64,
    len: u64,
    opened_at_us: i64,
    builder: Builder,
    closed: Vec<Closed>,
    unsynced: bool,
    buf: Vec<u8>,
}

impl AuditLog {
    /// Opens (creating) the log in `dir`: every segment left open by a crash or a kill has its
    /// torn tail cut and gets its index, then a new segment is started.
    pub fn open(dir: &Path, limits: Limits, now_us: i64) -> io::Result<(AuditLog, Recovery)> {
        ironfence_core::fsutil::tighten_dir_mode(dir, DIR_MODE)?;
        let mut recovery = Recovery::default();
        let mut closed = Vec::new();
        let mut last = 0;
        for (seq, has_index) in segment::list(dir)? {
            last = seq;
            match close_existing(dir, seq, has_index, &mut recovery)? {
                Some(c) => closed.push(c),
                None => continue,
            }
        }
        let seq = last + 1;
        let file = create_segment(dir, seq)?;
        Ok((
            AuditLog {
                dir: dir.to_path_buf(),
                limits,
                file,
                seq,
                len: segment::HEADER_LEN,
                opened_at_us: now_us,
                builder: Builder::default(),
                closed,
                unsynced: false,
                buf: Vec::with_capacity(1 << 20),
            },
            recovery,
        ))
    }

    /// Appends `records` to the open segment with one write (handed to the kernel before it
    /// returns; not fsynced, see [`AuditLog::sync`]). Rotates first when the segment is full.
    pub fn append(&mut self, records: &[AuditRecord], now_us: i64) -> io::Result<Appended> {
        if should_rotate(
            self.len,
            self.builder.records(),
            self.opened_at_us,
            now_us,
            &self.limits,
        ) {
            self.rotate(now_us)?;
        }
        self.buf.clear();
        for r in records {
            let at = self.len + self.buf.len() as u64;
            r.encode_into(&mut self.buf);
            self.builder.add(at, r.time_us, r.mac);
        }
        self.file.write_all(&self.buf)?;
        let bytes = self.buf.len() as u64;
        self.len += bytes;
        self.unsynced |= bytes > 0;
        if self.buf.capacity() > 4 << 20 {
            self.buf = Vec::with_capacity(1 << 20);
        }
        Ok(Appended {
            records: records.len() as u64,
            bytes,
        })
    }

    /// fsyncs what was appended since the last call (the writer calls it at most every second).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Rotation and retention that are due at `now_us`. Returns the deleted segments.
    pub fn maintain(&mut self, now_us: i64) -> io::Result<Vec<u64>> {
        if should_rotate(
            self.len,
            self.builder.records(),
            self.opened_at_us,
            now_us,
            &self.limits,
        ) {
            self.rotate(now_us)?;
        }
        self.apply_retention(now_us)
    }

    /// Deletes the closed segments [`retention_plan`] selects.
    pub fn apply_retention(&mut self, now_us: i64) -> io::Result<Vec<u64>> {
        let plan = retention_plan(&self.closed, self.len, now_us, &self.limits);
        for seq in &plan {
            for path in [
                segment::segment_path(&self.dir, *seq),
                segment::index_path(&self.dir, *seq),
            ] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !plan.is_empty() {
            self.closed.retain(|c| !plan.contains(&c.seq));
            ironfence_core::fsutil::sync_dir(&self.dir);
        }
        Ok(plan)
    }

    /// Closes the open segment (fsync, index written) and starts the next one.
    pub fn rotate(&mut self, now_us: i64) -> io::Result<()> {
        let closed = self.close_current()?;
        self.closed.push(closed);
        self.seq += 1;
        self.file = create_segment(&self.dir, self.seq)?;
        self.len = segment::HEADER_LEN;
        self.opened_at_us = now_us;
        Ok(())
    }

    /// Flushes and closes: the open segment gets its index. Called at shutdown.
    pub fn close(mut self) -> io::Result<()> {
        self.close_current().map(|_| ())
    }

    fn close_current(&mut self) -> io::Result<Closed> {
        self.file.sync_data()?;
        self.unsynced = false;
        let builder = std::mem::take(&mut self.builder);
        let max_time_us = builder.max_time_us();
        let idx = builder.encode(self.len);
        let idx_len = idx.len() as u64;
        ironfence_core::fsutil::write_atomic(
            &segment::index_path(&self.dir, self.seq),
            &idx,
            FILE_MODE,
        )?;
        Ok(Closed {
            seq: self.seq,
            bytes: self.len + idx_len,
            max_time_us,
        })
    }

    /// Segments in the directory (closed ones and the open one).
    pub fn segments(&self) -> usize {
        self.closed.len() + 1
    }

    /// Bytes of every segment and index.
    pub fn total_bytes(&self) -> u64 {
        self.len + self.closed.iter().map(|c| c.bytes).sum::<u64>()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let path = segment::segment_path(dir, seq);
    let mut f = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&path)?;
    f.write_all(segment::MAGIC)?;
    f.sync_data()?;
    ironfence_core::fsutil::sync_dir(dir);
    Ok(f)
}

/// Brings an existing segment to the closed state: valid index, no torn tail. `None` when the
/// file is not a segment (set aside).
fn close_existing(
    dir: &Path,
    seq: u64,
    has_index: bool,
    recovery: &mut Recovery,
) -> io::Result<Option<Closed>> {
    let seg_path = segment::segment_path(dir, seq);
    let idx_path = segment::index_path(dir, seq);
    let seg_len = std::fs::metadata(&seg_path)?.len();
    if has_index
        && let Some(idx) = index::Index::open(File::open(&idx_path)?)?
        && idx.summary.segment_len == seg_len
    {
        let idx_len = std::fs::metadata(&idx_path)?.len();
        return Ok(Some(Closed {
            seq,
            bytes: seg_len + idx_len,
            max_time_us: (idx.summary.records > 0).then_some(idx.summary.max_time_us),
        }));
    }
    let bytes = std::fs::read(&seg_path)?;
    let mut builder = Builder::default();
    let end = segment::scan(&bytes, |at, payload| {
        builder.add(
            at,
            record::payload_time(payload).unwrap_or_default(),
            record::payload_mac(payload),
        );
    });
    let valid = match end {
        ScanEnd::BadHeader
            if bytes.len() >= segment::MAGIC.len() || !segment::MAGIC.starts_with(&bytes) =>
        {
            let aside = dir.join(format!("{seq:020}.seg.corrupt"));
            std::fs::rename(&seg_path, &aside)?;
            let _ = std::fs::remove_file(&idx_path);
            tracing::warn!(file = %aside.display(), "audit log: not a segment file, set aside");
            recovery.set_aside.push(aside);
            return Ok(None);
        }
        ScanEnd::BadHeader => {
            // Created, crashed before its header was written: nothing in it.
            std::fs::remove_file(&seg_path)?;
            let _ = std::fs::remove_file(&idx_path);
            recovery.truncated_bytes += seg_len;
            return Ok(None);
        }
        ScanEnd::Clean => seg_len,
        ScanEnd::Torn { at } => at,
        ScanEnd::Corrupt { at, why } => {
            tracing::warn!(file = %seg_path.display(), offset = at, reason = why, "audit log: corrupt record, the segment is cut there");
            at
        }
    };
    if valid < seg_len {
        let f = OpenOptions::new().write(true).open(&seg_path)?;
        f.set_len(valid)?;
        f.sync_all()?;
        recovery.truncated_bytes += seg_len - valid;
    }
    let max_time_us = builder.max_time_us();
    let idx = builder.encode(valid);
    ironfence_core::fsutil::write_atomic(&idx_path, &idx, FILE_MODE)?;
    recovery.indexed += 1;
    Ok(Some(Closed {
        seq,
        bytes: valid + idx.len() as u64,
        max_time_us,
    }))
}

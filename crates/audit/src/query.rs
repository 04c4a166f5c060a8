//! Reading the log: by MAC and time range, newest records first, from the files alone (no
//! help from the writer, so it works while the daemon runs and after it stopped).

use crate::index::Index;
use crate::record::{self, AuditRecord, DecodeError};
use crate::segment;
use ironfence_core::Mac;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Which records to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Only this device's records (`None`: every record in the time range).
    #[serde(with = "crate::record::mac_text", default)]
    pub mac: Option<Mac>,
    /// Records at or after this time (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Records before this time.
    pub until_us: Option<i64>,
    /// The newest `limit` matching records (`None`: all).
    pub limit: Option<usize>,
}

impl Query {
    pub fn matches_time(&self, t: i64) -> bool {
        self.since_us.is_none_or(|s| t >= s) && self.until_us.is_none_or(|u| t < u)
    }

    /// Whether records in `[min, max]` can match.
    fn overlaps(&self, min: i64, max: i64) -> bool {
        min <= max
            && self.since_us.is_none_or(|s| max >= s)
            && self.until_us.is_none_or(|u| min < u)
    }

    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.mac.is_none_or(|m| r.mac == Some(m)) && self.matches_time(r.time_us)
    }
}

/// What a query found, and how much it read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Oldest first.
    pub records: Vec<AuditRecord>,
    /// Segments looked up through their index.
    pub indexed: usize,
    /// Segments read in full (the open one, or one whose index is missing or damaged).
    pub scanned: usize,
    /// Segments skipped by their time range.
    pub skipped: usize,
}

/// Orders records by time (then request id) and keeps the newest `limit`.
pub fn newest(mut records: Vec<AuditRecord>, limit: Option<usize>) -> Vec<AuditRecord> {
    records.sort_by_key(|r| (r.time_us, r.request_id));
    if let Some(n) = limit
        && records.len() > n
    {
        records.drain(..records.len() - n);
    }
    records
}

/// Merges the answers of several servers by time and keeps the newest `limit`. Pure.
pub fn merge(
    answers: impl IntoIterator<Item = Vec<AuditRecord>>,
    limit: Option<usize>,
) -> Vec<AuditRecord> {
    newest(answers.into_iter().flatten().collect(), limit)
}

/// Runs `q` over the log in `dir` (a missing directory is an empty log).
pub fn query(dir: &Path, q: &Query) -> io::Result<Found> {
    let mut found = Found::default();
    let mut records: Vec<AuditRecord> = Vec::new();
    let segments = segment::list(dir)?;
    for (seq, has_index) in segments.into_iter().rev() {
        // Once `limit` records are in hand, a segment entirely older than the oldest of them
        // cannot contribute.
        let floor = match q.limit {
            Some(n) if records.len() >= n => {
                records = newest(records, Some(n));
                records.first().map(|r| r.time_us)
            }
            _ => None,
        };
        match read_segment(dir, seq, has_index, q, floor, &mut records, &mut found) {
            Ok(()) => {}
            // Deleted by retention while we were reading: it held only old records.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    found.records = newest(records, q.limit);
    Ok(found)
}

fn read_segment(
    dir: &Path,
    seq: u64,
    has_index: bool,
    q: &Query,
    floor: Option<i64>,
    out: &mut Vec<AuditRecord>,
    found: &mut Found,
) -> io::Result<()> {
    let seg = File::open(segment::segment_path(dir, seq))?;
    let seg_len = seg.metadata()?.len();
    let index = if has_index {
        match File::open(segment::index_path(dir, seq)) {
            Ok(f) => Index::open(f)?.filter(|i| i.summary.segment_len <= seg_len),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let Some(index) = index else {
        found.scanned += 1;
        let bytes = std::fs::read(segment::segment_path(dir, seq))?;
        let _ = segment::scan(&bytes, |_, payload| keep(payload, q, out));
        return Ok(());
    };
    let s = index.summary;
    if !q.overlaps(s.min_time_us, s.max_time_us) || floor.is_some_and(|f| s.max_time_us < f) {
        found.skipped += 1;
        return Ok(());
    }
    found.indexed += 1;
    match q.mac {
        Some(mac) => {
            for off in index.lookup(mac)? {
                if off >= s.segment_len {
                    continue;
                }
                if let Some(payload) = read_frame_at(&seg, off, s.segment_len)? {
                    keep(&payload, q, out);
                }
            }
        }
        None => {
            let mut bytes = vec![0u8; s.segment_len as usize];
            seg.read_exact_at(&mut bytes, 0)?;
            let _ = segment::scan(&bytes, |_, payload| keep(payload, q, out));
        }
    }
    Ok(())
}

/// Decodes `payload` into `out` if it matches (MAC and time checked before decoding).
fn keep(payload: &[u8], q: &Query, out: &mut Vec<AuditRecord>) {
    if q.mac
        .is_some_and(|m| record::payload_mac(payload) != Some(m))
    {
        return;
    }
    if !record::payload_time(payload).is_some_and(|t| q.matches_time(t)) {
        return;
    }
    if let Ok(r) = record::decode_payload(payload) {
        out.push(r);
    }
}

/// The checked payload of the frame at `off`, `None` if it is not a valid record.
fn read_frame_at(f: &File, off: u64, end: u64) -> io::Result<Option<Vec<u8>>> {
    let mut n = 512u64.min(end - off) as usize;
    loop {
        let mut buf = vec![0u8; n];
        f.read_exact_at(&mut buf, off)?;
        match record::frame(&buf) {
            Ok(p) => return Ok(Some(p.to_vec())),
            Err(DecodeError::Incomplete { need, .. }) if (need as u64) <= end - off && need > n => {
                n = need
            }
            Err(_) => return Ok(None),
        }
    }
}

//! Segment files: `<dir>/<seq>.seg`, a header then frames back to back; `<seq>.idx` beside a
//! closed segment (see [`crate::index`]). `seq` is a 20-digit decimal number that only grows,
//! so names sort in writing order.

use crate::record::{self, DecodeError, FRAME_HEADER};
use std::io;
use std::path::{Path, PathBuf};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"IFAUDIT\x01";
/// Where records start.
pub const HEADER_LEN: u64 = MAGIC.len() as u64;

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

pub fn index_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.idx"))
}

/// The sequence number of a segment or index file name.
pub fn parse_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.len() != 20
        || !stem.bytes().all(|b| b.is_ascii_digit())
        || !matches!(ext, "seg" | "idx")
    {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Segments present in `dir`, in writing order, with whether each has an index.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, bool)>> {
    let mut segs = std::collections::BTreeMap::<u64, (bool, bool)>::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some((seq, ext)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        let e = segs.entry(seq).or_default();
        if ext == "seg" {
            e.0 = true;
        } else {
            e.1 = true;
        }
    }
    Ok(segs
        .into_iter()
        .filter(|(_, (seg, _))| *seg)
        .map(|(seq, (_, idx))| (seq, idx))
        .collect())
}

/// How a scan of segment bytes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte was a complete, valid record.
    Clean,
    /// The bytes end inside a record (torn write, or a record being written right now).
    Torn { at: u64 },
    /// A complete frame is not a valid record: nothing after it is trusted.
    Corrupt { at: u64, why: &'static str },
    /// The segment header is missing or wrong.
    BadHeader,
}

impl ScanEnd {
    /// Length of the valid prefix (header included) given the segment length.
    pub fn valid_len(&self, len: u64) -> u64 {
        match self {
            ScanEnd::Clean => len,
            ScanEnd::Torn { at } | ScanEnd::Corrupt { at, .. } => *at,
            ScanEnd::BadHeader => 0,
        }
    }
}

/// Walks the frames of a whole segment (`bytes` starts with the header), calling `each` with
/// the offset and checked payload of every valid record, up to the first invalid one.
pub fn scan(bytes: &[u8], mut each: impl FnMut(u64, &[u8])) -> ScanEnd {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return ScanEnd::BadHeader;
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        match record::frame(&bytes[at..]) {
            Ok(payload) => {
                each(at as u64, payload);
                at += FRAME_HEADER + payload.len();
            }
            Err(DecodeError::Incomplete { .. }) => return ScanEnd::Torn { at: at as u64 },
            Err(DecodeError::Corrupt(why)) => {
                return ScanEnd::Corrupt { at: at as u64, why };
            }
        }
    }
    ScanEnd::Clean
}

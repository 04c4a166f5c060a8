//! The per-segment index, written once when a segment closes:
//!
//! ```text
//! header  = magic "IFAUDIX1"  segment_len:u64  records:u64  min_time_us:i64  max_time_us:i64
//!           macs:u32  header_crc:u32 (CRC-32C of the 44 bytes before it)
//! macs    = macs × (mac:[u8;6] first:u32 count:u32)      sorted by MAC
//! offsets = Σcount × offset:u32                           by MAC, then by offset
//! trailer = crc:u32 (CRC-32C of macs and offsets)
//! ```
//!
//! A MAC lookup reads the header, binary-searches the MAC table with positioned reads
//! (≈17 reads for 100k devices) and reads that MAC's offsets: a query touches a few pages of
//! each segment instead of every byte. The min/max time lets a time-range query skip whole
//! segments. The index is only a hint: every record it points to is read with its own
//! checksum and must carry the MAC asked for, so a damaged index can make a query miss
//! records (it then falls back to scanning when the header is bad), never return wrong ones.

use crate::crc::crc32c;
use ironfence_core::Mac;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const MAGIC: &[u8; 8] = b"IFAUDIX1";
pub const HEADER_LEN: usize = 48;
const ENTRY_LEN: usize = 14;

/// What the index knows of its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Bytes of the segment the index covers (all of it once closed).
    pub segment_len: u64,
    pub records: u64,
    /// Time range of the records (`i64::MAX, i64::MIN` when empty).
    pub min_time_us: i64,
    pub max_time_us: i64,
    pub macs: u32,
}

/// Index of a segment being written, kept in memory until it closes.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    entries: Vec<(Mac, u32)>,
    records: u64,
    min_time_us: Option<i64>,
    max_time_us: Option<i64>,
}

impl Builder {
    pub fn add(&mut self, offset: u64, time_us: i64, mac: Option<Mac>) {
        self.records += 1;
        self.min_time_us = Some(self.min_time_us.map_or(time_us, |t| t.min(time_us)));
        self.max_time_us = Some(self.max_time_us.map_or(time_us, |t| t.max(time_us)));
        if let Some(mac) = mac {
            // Segments are at most 1 GiB (checked by the settings), offsets fit.
            self.entries
                .push((mac, u32::try_from(offset).unwrap_or(u32::MAX)));
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn max_time_us(&self) -> Option<i64> {
        self.max_time_us
    }

    /// The index file's bytes for a segment of `segment_len` bytes.
    pub fn encode(mut self, segment_len: u64) -> Vec<u8> {
        self.entries.sort_unstable();
        let mut table: Vec<(Mac, u32, u32)> = Vec::new();
        for (i, (mac, _)) in self.entries.iter().enumerate() {
            match table.last_mut() {
                Some(last) if last.0 == *mac => last.2 += 1,
                _ => table.push((*mac, i as u32, 1)),
            }
        }
        let mut out =
            Vec::with_capacity(HEADER_LEN + table.len() * ENTRY_LEN + self.entries.len() * 4 + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&segment_len.to_le_bytes());
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&self.min_time_us.unwrap_or(i64::MAX).to_le_bytes());
        out.extend_from_slice(&self.max_time_us.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&(table.len() as u32).to_le_bytes());
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let body = out.len();
        for (mac, first, count) in &table {
            out.extend_from_slice(&mac.0);
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        for (_, off) in &self.entries {
            out.extend_from_slice(&off.to_le_bytes());
        }
        let crc = crc32c(&out[body..]);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Offsets of `mac`'s records, in order (the open segment's in-memory index).
    pub fn lookup(&self, mac: Mac) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .entries
            .iter()
            .filter(|(m, _)| *m == mac)
            .map(|(_, o)| u64::from(*o))
            .collect();
        v.sort_unstable();
        v
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Parses an index header.
pub fn parse_header(h: &[u8]) -> Option<Summary> {
    if h.len() < HEADER_LEN || &h[..8] != MAGIC || crc32c(&h[..44]) != le_u32(&h[44..48]) {
        return None;
    }
    Some(Summary {
        segment_len: le_u64(&h[8..]),
        records: le_u64(&h[16..]),
        min_time_us: le_u64(&h[24..]) as i64,
        max_time_us: le_u64(&h[32..]) as i64,
        macs: le_u32(&h[40..]),
    })
}

/// An open index file.
#[derive(Debug)]
pub struct Index {
    file: File,
    pub summary: Summary,
    len: u64,
}

impl Index {
    /// `None` when the file's header is not a valid index (the caller scans the segment).
    pub fn open(file: File) -> io::Result<Option<Index>> {
        let len = file.metadata()?.len();
        let mut h = [0u8; HEADER_LEN];
        if len < HEADER_LEN as u64 {
            return Ok(None);
        }
        file.read_exact_at(&mut h, 0)?;
        let Some(summary) = parse_header(&h) else {
            return Ok(None);
        };
        if (HEADER_LEN as u64) + u64::from(summary.macs) * ENTRY_LEN as u64 > len {
            return Ok(None);
        }
        Ok(Some(Index { file, summary, len }))
    }

    /// Offsets of `mac`'s records in the segment, in order.
    pub fn lookup(&self, mac: Mac) -> io::Result<Vec<u64>> {
        let (mut lo, mut hi) = (0u64, u64::from(self.summary.macs));
        let mut e = [0u8; ENTRY_LEN];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            self.file
                .read_exact_at(&mut e, HEADER_LEN as u64 + mid * ENTRY_LEN as u64)?;
            match e[..6].cmp(&mac.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let (first, count) = (u64::from(le_u32(&e[6..])), u64::from(le_u32(&e[10..])));
                    let start = HEADER_LEN as u64
                        + u64::from(self.summary.macs) * ENTRY_LEN as u64
                        + first * 4;
                    if count > self.summary.records || start + count * 4 > self.len {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "index entry out of range",
                        ));
                    }
                    let mut buf = vec![0u8; (count * 4) as usize];
                    self.file.read_exact_at(&mut buf, start)?;
                    return Ok(buf.chunks_exact(4).map(|c| u64::from(le_u32(c))).collect());
                }
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::mac;

    #[test]
    fn lookup_finds_every_offset_of_a_mac_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Builder::default();
        let mut want = std::collections::BTreeMap::<Mac, Vec<u64>>::new();
        for i in 0..1000u64 {
            let m = (i % 7 != 0).then(|| mac((i * 37 % 101) as u8));
            b.add(8 + i * 100, 1000 + i as i64, m);
            if let Some(m) = m {
                want.entry(m).or_default().push(8 + i * 100);
            }
        }
        assert_eq!(b.lookup(mac(37)), want[&mac(37)]);
        let path = dir.path().join("x.idx");
        std::fs::write(&path, b.encode(123_456)).unwrap();
        let idx = Index::open(File::open(&path).unwrap()).unwrap().unwrap();
        assert_eq!(
            idx.summary,
            Summary {
                segment_len: 123_456,
                records: 1000,
                min_time_us: 1000,
                max_time_us: 1999,
                macs: want.len() as u32
            }
        );
        for (m, offs) in &want {
            assert_eq!(&idx.lookup(*m).unwrap(), offs, "{m}");
        }
        assert!(idx.lookup(mac(200)).unwrap().is_empty());
        assert!(idx.lookup(Mac([0; 6])).unwrap().is_empty());
        assert!(idx.lookup(Mac([0xff; 6])).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_header_is_not_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Builder::default();
        b.add(8, 1, Some(mac(1)));
        let mut bytes = b.encode(100);
        bytes[20] ^= 1;
        let path = dir.path().join("x.idx");
        std::fs::write(&path, &bytes).unwrap();
        assert!(Index::open(File::open(&path).unwrap()).unwrap().is_none());
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(Index::open(File::open(&path).unwrap()).unwrap().is_none());
    }

    #[test]
    fn an_empty_segment_has_an_empty_index() {
        let s = parse_header(&Builder::default().encode(8)).unwrap();
        assert_eq!((s.records, s.macs, s.segment_len), (0, 0, 8));
        assert!(s.min_time_us > s.max_time_us);
    }
}

//! The RADIUS audit log: one record per request (who, where, what was decided), kept by each
//! server in its own append-only files, queryable by MAC and time range.
//!
//! ```text
//!  request path ──push()──► bounded channel ──► writer thread ──write(2)──► <state>/audit/
//!   (moves the record,        (backpressure:      (batches; fsync ≤ 1/s;      00000000000000000001.seg
//!    ~100 ns, never drops)     waits, counted)     rotation, retention)      00000000000000000001.idx
//!                                                                            00000000000000000002.seg  ← open
//!  ironfence audit <mac> ──► query(): per segment, newest first: skip by the index's time
//!                            range, look the MAC up in the index, read only its records;
//!                            the open segment (no index yet) is scanned.
//! ```
//!
//! # Why local files and not PacketFence's replicated table
//!
//! PacketFence inserts one `radius_audit_log` row per request into MariaDB; on Galera every
//! such insert is a write-set certified by every member before the commit returns, so the
//! audit log costs a cluster-wide certification round per RADIUS request, competes with the
//! writes that matter (node registration, accounting), and caps the request rate of the whole
//! cluster at what Galera can certify. The row is also the most expensive thing ironfence did
//! per request (issue 8: 384,540 records dropped at c = 256 because the database writer could
//! not keep up). An audit record is only ever read by a person looking at one device, rarely,
//! so it does not need to be replicated, only findable: each server appends its own records
//! to local files, and a query asks every member (node-to-node API) and merges by time. The
//! database writer stays available (`[radius] audit_log = database`) to measure what the
//! replicated row costs.
//!
//! # Files and durability
//!
//! * Segments ([`segment`]): a magic header, then length-prefixed, CRC-32C-checksummed
//!   records ([`record`]). A segment is closed when it reaches `audit_log_segment_size` or
//!   `audit_log_segment_age`, and at shutdown; it then gets its index ([`index`]): MAC →
//!   record offsets and the min/max time, so a MAC query reads a few pages per segment.
//! * Every batch is handed to the kernel with one `write(2)` as soon as the writer takes it
//!   from the channel; `fdatasync` runs at most once a second. A **host** crash can lose up to
//!   the last second of records; a **process** crash loses nothing that was written, only the
//!   records still in the channel (milliseconds' worth).
//! * After a crash the open segment ends in a torn record: on the next start its tail is
//!   detected (incomplete frame or checksum mismatch) and cut, the segment gets its index, and
//!   a new segment is started ([`log::AuditLog::open`]). A reader of a segment being written
//!   stops at the first incomplete record: it never misreads a partial one.
//! * Retention ([`log::retention_plan`]): closed segments whose newest record is older than
//!   `audit_log_max_age` are deleted, then the oldest while the whole log is larger than
//!   `audit_log_max_size`. Whole segments only: records live up to one segment longer than
//!   the limits say.
//!
//! # Never dropping
//!
//! [`sink::Sink::push`] never drops: when the writer is behind, the request waits for a slot
//! (the time is counted). The writer appends millions of records per second, so this only
//! happens when the disk stalls; the alternative — dropping the record — is what issue 8
//! measured and refused.
#![forbid(unsafe_code)]

pub mod crc;
pub mod index;
pub mod log;
pub mod query;
pub mod record;
pub mod segment;
pub mod sink;

pub use log::{AuditLog, Limits, Recovery};
pub use query::{Found, Query, merge, query};
pub use record::{AuditRecord, DecodeError, RequestType, now_us};
pub use sink::{RequestIds, Sink, Stats};

/// Name of the log's directory under the state directory.
pub const DIR_NAME: &str = "audit";

#[cfg(test)]
mod tests;

//! The spool's on-disk format, pure: records, their idempotency keys, and the frames that make a
//! torn or corrupted tail detectable.
//!
//! ```text
//! file   := frame*
//! frame  := len: u32 LE | crc: u32 LE | payload[len]        crc = CRC-32C(len ‖ payload)
//! payload:= version 1 | key[32] | type | body
//!   type 1  accounting: kind u8 | opt mac[6] | str switch_id | str switch_ip | opt str port,
//!           vlan, role, ssid, session_id, username, connection_type | opt ipv4 | now i64
//!   type 2  node seen:  mac[6] | at i64
//!   type 3  admin audit: nonce[16] | at i64 | str server, account, client, session, action,
//!           target | lstr changes | str result          (lstr := len u32 LE | UTF-8)
//! str    := len u16 LE | UTF-8     opt x := 0 | 1 x
//! ```
//!
//! A crash can leave the last group write half on disk. Reading stops at the first frame that
//! is incomplete, too long, or whose CRC does not match; everything from there on is discarded
//! (truncated), never replayed as garbage.

use ironfence_core::{Mac, UnixTime};
use ironfence_store::{AccountingEvent, AccountingKind};
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;

/// Frame header: length + CRC.
pub const HEADER: usize = 8;
/// Largest payload accepted. A record is a few hundred octets (RADIUS strings are ≤ 253
/// octets); a larger length field is garbage.
pub const MAX_PAYLOAD: usize = 16 * 1024;
const VERSION: u8 = 1;
const TYPE_ACCOUNTING: u8 = 1;
const TYPE_NODE_SEEN: u8 = 2;
const TYPE_ADMIN_AUDIT: u8 = 3;

/// A write the RADIUS path acknowledged while the database could not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one short-lived value per request; boxing buys nothing
pub enum Record {
    /// An Accounting-Request, answered once spooled.
    Accounting(AccountingEvent),
    /// First sighting of a device by MAB: its node row (unregistered, detected at `at`).
    NodeSeen { mac: Mac, at: UnixTime },
    /// An admin audit entry of a change made while the database was read-only (a
    /// configuration change is accepted then; its audit entry must not be lost). The random
    /// `nonce` keeps two identical entries of the same second distinct.
    AdminAudit {
        nonce: [u8; 16],
        entry: ironfence_store::admin::AdminAuditEntry,
    },
}

/// A record with the key that makes its replay idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: [u8; 32],
    pub record: Record,
}

impl Entry {
    pub fn new(record: Record) -> Entry {
        Entry {
            key: idempotency_key(&record),
            record,
        }
    }
}

/// SHA-256 of the record's canonical encoding: the NAS, Acct-Session-Id, status type, MAC,
/// the time the request was received and everything else recorded. Two identical requests in
/// the same second (a retransmit of a lost answer) share a key, so the database applies them
/// once; distinct updates always differ.
pub fn idempotency_key(record: &Record) -> [u8; 32] {
    let mut body = Vec::with_capacity(128);
    encode_body(record, &mut body);
    let mut h = Sha256::new();
    h.update(b"ironfence-spool-v1\0");
    h.update(&body);
    h.finalize().into()
}

/// The frame of one entry, ready to append.
pub fn encode_frame(entry: &Entry) -> Vec<u8> {
    let mut payload = Vec::with_capacity(160);
    payload.push(VERSION);
    payload.extend_from_slice(&entry.key);
    encode_body(&entry.record, &mut payload);
    // Records are built from RADIUS attributes (≤ 253 octets each): far below MAX_PAYLOAD.
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let len = (payload.len() as u32).to_le_bytes();
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&len);
    frame.extend_from_slice(&crc32c_parts(&[&len, &payload]).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Why reading stopped before the end of the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {0} is larger than any record")]
    TooLong(usize),
    #[error("CRC mismatch")]
    Crc,
    #[error("undecodable record: {0}")]
    Undecodable(&'static str),
}

/// Decodes the frame at the start of `buf`: `Ok(None)` if `buf` holds only part of it (at the
/// end of the file: a torn write), else the entry and the frame's length.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Entry, usize)>, FrameError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len_bytes: [u8; 4] = buf[0..4].try_into().expect("4 octets");
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong(len));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 octets"));
    let payload = &buf[HEADER..HEADER + len];
    if crc32c_parts(&[&len_bytes, payload]) != crc {
        return Err(FrameError::Crc);
    }
    let entry = decode_payload(payload).map_err(FrameError::Undecodable)?;
    Ok(Some((entry, HEADER + len)))
}

/// The result of reading a whole spool image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Entries with the offset just past each.
    pub entries: Vec<(Entry, u64)>,
    /// Length of the valid prefix: the file is truncated to it.
    pub valid_len: u64,
    /// Why the rest (if any) was rejected.
    pub tail: Option<FrameError>,
}

/// Reads every valid frame of `buf` from the start, stopping at the first bad or torn one.
pub fn scan(buf: &[u8]) -> Scan {
    let mut entries = Vec::new();
    let mut at = 0usize;
    let mut tail = None;
    while at < buf.len() {
        match decode_frame(&buf[at..]) {
            Ok(Some((entry, n))) => {
                at += n;
                entries.push((entry, at as u64));
            }
            Ok(None) => break,
            Err(e) => {
                tail = Some(e);
                break;
            }
        }
    }
    Scan {
        entries,
        valid_len: at as u64,
        tail,
    }
}

/// Replay planning: splits a batch of records (in spool order) into consecutive waves whose
/// records can be applied concurrently without changing the outcome. What one record does is
/// confined to its MAC's rows (node, location log, its own IPs) and to the address it reports
/// (an IPv4 taken over from another MAC); so no two records of a wave share a MAC or a
/// Framed-IP-Address, and a record without a MAC (Accounting-On/Off, a Stop identified by NAS
/// and session only: they touch every row of a NAS) is a wave by itself. Waves are applied
/// one after the other, so every MAC's and every address's records keep their order.
pub fn waves(records: &[&Record], max: usize) -> Vec<std::ops::Range<usize>> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut macs: Vec<Mac> = Vec::new();
    let mut ips: Vec<Ipv4Addr> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let (mac, ip) = match r {
            Record::Accounting(ev) => (ev.mac, ev.framed_ip),
            Record::NodeSeen { mac, .. } => (Some(*mac), None),
            // Touches no device row: a wave by itself keeps the log in order.
            Record::AdminAudit { .. } => (None, None),
        };
        match mac {
            None => {
                if start < i {
                    out.push(start..i);
                }
                out.push(i..i + 1);
                start = i + 1;
                macs.clear();
                ips.clear();
            }
            Some(m) => {
                let conflict =
                    macs.contains(&m) || ip.is_some_and(|ip| ips.contains(&ip)) || i - start >= max;
                if conflict && start < i {
                    out.push(start..i);
                    start = i;
                    macs.clear();
                    ips.clear();
                }
                macs.push(m);
                ips.extend(ip);
            }
        }
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

fn encode_body(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Accounting(ev) => {
            out.push(TYPE_ACCOUNTING);
            out.push(kind_code(ev.kind));
            match ev.mac {
                Some(m) => {
                    out.push(1);
                    out.extend_from_slice(&m.0);
                }
                None => out.push(0),
            }
            put_str(out, &ev.switch_id);
            put_str(out, &ev.switch_ip);
            for s in [
                &ev.port,
                &ev.vlan,
                &ev.role,
                &ev.ssid,
                &ev.session_id,
                &ev.username,
                &ev.connection_type,
            ] {
                match s {
                    Some(s) => {
                        out.push(1);
                        put_str(out, s);
                    }
                    None => out.push(0),
                }
            }
            match ev.framed_ip {
                Some(ip) => {
                    out.push(1);
                    out.extend_from_slice(&ip.octets());
                }
                None => out.push(0),
            }
            out.extend_from_slice(&ev.now.to_le_bytes());
        }
        Record::NodeSeen { mac, at } => {
            out.push(TYPE_NODE_SEEN);
            out.extend_from_slice(&mac.0);
            out.extend_from_slice(&at.to_le_bytes());
        }
        Record::AdminAudit { nonce, entry } => {
            out.push(TYPE_ADMIN_AUDIT);
            out.extend_from_slice(nonce);
            out.extend_from_slice(&entry.at.to_le_bytes());
            for s in [
                &entry.server,
                &entry.account,
                &entry.client,
                &entry.session,
                &entry.action,
                &entry.target,
            ] {
                put_str(out, s);
            }
            // The caller bounds `changes` (admin::audit_log) far below MAX_PAYLOAD.
            out.extend_from_slice(&(entry.changes.len() as u32).to_le_bytes());
            out.extend_from_slice(entry.changes.as_bytes());
            put_str(out, &entry.result);
        }
    }
}

/// Strings come from RADIUS attributes (≤ 253 octets); longer ones are cut at a character
/// boundary below the u16 limit rather than mis-framed.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn kind_code(k: AccountingKind) -> u8 {
    match k {
        AccountingKind::Start => 1,
        AccountingKind::InterimUpdate => 2,
        AccountingKind::Stop => 3,
        AccountingKind::AccountingOn => 4,
        AccountingKind::AccountingOff => 5,
    }
}

fn kind_of(code: u8) -> Option<AccountingKind> {
    Some(match code {
        1 => AccountingKind::Start,
        2 => AccountingKind::InterimUpdate,
        3 => AccountingKind::Stop,
        4 => AccountingKind::AccountingOn,
        5 => AccountingKind::AccountingOff,
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.buf.len() < n {
            return Err("truncated record");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn flag(&mut self) -> Result<bool, &'static str> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("bad option flag"),
        }
    }
    fn mac(&mut self) -> Result<Mac, &'static str> {
        Ok(Mac(self.take(6)?.try_into().expect("6 octets")))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 octets"),
        ))
    }
    fn str(&mut self) -> Result<String, &'static str> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 octets")) as usize;
        std::str::from_utf8(self.take(len)?)
            .map(str::to_string)
            .map_err(|_| "string is not UTF-8")
    }
    fn opt_str(&mut self) -> Result<Option<String>, &'static str> {
        if self.flag()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }
}

fn decode_payload(payload: &[u8]) -> Result<Entry, &'static str> {
    let mut r = Reader { buf: payload };
    if r.u8()? != VERSION {
        return Err("unknown record version");
    }
    let key: [u8; 32] = r.take(32)?.try_into().expect("32 octets");
    let record = match r.u8()? {
        TYPE_ACCOUNTING => {
            let kind = kind_of(r.u8()?).ok_or("unknown accounting kind")?;
            let mac = if r.flag()? { Some(r.mac()?) } else { None };
            let switch_id = r.str()?;
            let switch_ip = r.str()?;
            let port = r.opt_str()?;
            let vlan = r.opt_str()?;
            let role = r.opt_str()?;
            let ssid = r.opt_str()?;
            let session_id = r.opt_str()?;
            let username = r.opt_str()?;
            let connection_type = r.opt_str()?;
            let framed_ip = if r.flag()? {
                let o: [u8; 4] = r.take(4)?.try_into().expect("4 octets");
                Some(Ipv4Addr::from(o))
            } else {
                None
            };
            let now = r.i64()?;
            Record::Accounting(AccountingEvent {
                kind,
                mac,
                switch_id,
                switch_ip,
                port,
                vlan,
                role,
                ssid,
                session_id,
                username,
                connection_type,
                framed_ip,
                now,
            })
        }
        TYPE_NODE_SEEN => {
            let mac = r.mac()?;
            let at = r.i64()?;
            Record::NodeSeen { mac, at }
        }
        TYPE_ADMIN_AUDIT => {
            let nonce: [u8; 16] = r.take(16)?.try_into().expect("16 octets");
            let at = r.i64()?;
            let (server, account, client) = (r.str()?, r.str()?, r.str()?);
            let (session, action, target) = (r.str()?, r.str()?, r.str()?);
            let len = u32::from_le_bytes(r.take(4)?.try_into().expect("4 octets")) as usize;
            let changes = std::str::from_utf8(r.take(len)?)
                .map_err(|_| "string is not UTF-8")?
                .to_string();
            let result = r.str()?;
            Record::AdminAudit {
                nonce,
                entry: ironfence_store::admin::AdminAuditEntry {
                    id: 0,
                    at,
                    server,
                    account,
                    client,
                    session,
                    action,
                    target,
                    changes,
                    result,
                },
            }
        }
        _ => return Err("unknown record type"),
    };
    if !r.buf.is_empty() {
        return Err("trailing octets in record");
    }
    Ok(Entry { key, record })
}

/// CRC-32C (Castagnoli, reflected, as in iSCSI / ext4) over several slices.
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for p in parts {
        for &b in *p {
            crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(session: &str, now: i64) -> Record {
        Record::Accounting(AccountingEvent {
            mac: Some(Mac([2, 0, 0, 0, 0, 1])),
            port: Some("7".into()),
            session_id: Some(session.into()),
            username: Some("02:00:00:00:00:01".into()),
            framed_ip: Some(Ipv4Addr::new(10, 0, 0, 5)),
            ssid: Some("corp-wifi-é".into()),
            ..AccountingEvent::new(AccountingKind::Start, "sw1", "192.0.2.1", now)
        })
    }

    fn image(records: &[Record]) -> Vec<u8> {
        records
            .iter()
            .flat_map(|r| encode_frame(&Entry::new(r.clone())))
            .collect()
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c_parts(&[b"123456789"]), 0xE306_9283);
        assert_eq!(crc32c_parts(&[b"1234", b"56789"]), 0xE306_9283);
    }

    #[test]
    fn frames_round_trip_in_order() {
        let records = vec![
            start("s1", 1_700_000_000),
            Record::NodeSeen {
                mac: Mac([2, 0, 0, 0, 0, 9]),
                at: 1_700_000_001,
            },
            Record::Accounting(AccountingEvent::new(
                AccountingKind::AccountingOn,
                "sw1",
                "192.0.2.1",
                -5,
            )),
        ];
        let buf = image(&records);
        let s = scan(&buf);
        assert_eq!(s.tail, None);
        assert_eq!(s.valid_len, buf.len() as u64);
        let got: Vec<Record> = s.entries.iter().map(|(e, _)| e.record.clone()).collect();
        assert_eq!(got, records);
        assert_eq!(
            s.entries.last().map(|(_, end)| *end),
            Some(buf.len() as u64)
        );
        for (e, _) in &s.entries {
            assert_eq!(e.key, idempotency_key(&e.record));
        }
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_frame() {
        let buf = image(&[start("s1", 1), start("s2", 2), start("s3", 3)]);
        let whole_two = scan(&buf).entries[1].1 as usize;
        // Every possible cut inside the third frame keeps exactly the first two.
        for cut in whole_two..buf.len() {
            let s = scan(&buf[..cut]);
            assert_eq!(s.entries.len(), 2, "cut at {cut}");
            assert_eq!(s.valid_len as usize, whole_two, "cut at {cut}");
            assert_eq!(s.tail, None);
        }
    }

    #[test]
    fn a_flipped_bit_or_garbage_length_stops_the_scan() {
        let buf = image(&[start("s1", 1), start("s2", 2)]);
        let first_end = scan(&buf).entries[0].1 as usize;
        for i in first_end..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            let s = scan(&bad);
            assert_eq!(s.entries.len(), 1, "flip at {i}");
            assert_eq!(s.valid_len as usize, first_end, "flip at {i}");
            // A flip in the length field reads as torn (too short) or too long; anything
            // else is a CRC mismatch. Never a second, wrong record.
        }
        let mut garbage = buf[..first_end].to_vec();
        garbage.extend_from_slice(&[0xff; 12]);
        let s = scan(&garbage);
        assert_eq!(s.entries.len(), 1);
        assert!(
            matches!(s.tail, Some(FrameError::TooLong(_))),
            "{:?}",
            s.tail
        );
        // Zeroed space (a file extended but never written) is not a record either.
        let mut zeros = buf[..first_end].to_vec();
        zeros.extend_from_slice(&[0; 64]);
        let s = scan(&zeros);
        assert_eq!((s.entries.len(), s.valid_len as usize), (1, first_end));
        assert_eq!(s.tail, Some(FrameError::Crc));
    }

    #[test]
    fn keys_identify_the_record_content() {
        let a = idempotency_key(&start("s1", 10));
        assert_eq!(a, idempotency_key(&start("s1", 10)), "a retransmit");
        assert_ne!(a, idempotency_key(&start("s1", 11)), "later update");
        assert_ne!(a, idempotency_key(&start("s2", 10)), "other session");
        let Record::Accounting(ev) = start("s1", 10) else {
            unreachable!()
        };
        let stop = Record::Accounting(AccountingEvent {
            kind: AccountingKind::Stop,
            ..ev.clone()
        });
        assert_ne!(a, idempotency_key(&stop), "status type");
        let other_nas = Record::Accounting(AccountingEvent {
            switch_ip: "192.0.2.2".into(),
            ..ev
        });
        assert_ne!(a, idempotency_key(&other_nas), "other NAS");
    }

    fn acct(kind: AccountingKind, mac: Option<u8>, ip: Option<u8>) -> Record {
        Record::Accounting(AccountingEvent {
            mac: mac.map(|m| Mac([2, 0, 0, 0, 0, m])),
            framed_ip: ip.map(|i| Ipv4Addr::new(10, 0, 0, i)),
            ..AccountingEvent::new(kind, "sw1", "192.0.2.1", 1)
        })
    }

    fn plan(records: &[Record], max: usize) -> Vec<std::ops::Range<usize>> {
        waves(&records.iter().collect::<Vec<_>>(), max)
    }

    #[test]
    fn waves_keep_each_device_and_address_in_order() {
        use AccountingKind::*;
        let r = [
            acct(Start, Some(1), None),    // 0
            acct(Start, Some(2), Some(7)), // 1
            acct(Stop, Some(3), None),     // 2
            acct(Stop, Some(6), None),     // 3
            acct(Start, Some(4), Some(7)), // 4: address 7 taken over → new wave
            Record::NodeSeen {
                mac: Mac([2, 0, 0, 0, 0, 5]),
                at: 1,
            }, // 5
            acct(AccountingOn, None, None), // 6: NAS-wide → alone
            acct(Start, Some(1), None),    // 7
            acct(Stop, None, None),        // 8: by NAS + session → alone
        ];
        assert_eq!(plan(&r, 16), vec![0..4, 4..6, 6..7, 7..8, 8..9]);
        // The same device twice: its second record waits for the first.
        let twice = [acct(Start, Some(1), None), acct(Stop, Some(1), None)];
        assert_eq!(plan(&twice, 16), vec![0..1, 1..2]);
        // The waves cover the batch, in order, without gaps.
        let flat: Vec<usize> = plan(&r, 16).into_iter().flatten().collect();
        assert_eq!(flat, (0..r.len()).collect::<Vec<_>>());
        // Bounded concurrency.
        let many: Vec<Record> = (0..10).map(|i| acct(Start, Some(i), None)).collect();
        assert_eq!(plan(&many, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(plan(&[], 4), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(plan(&[acct(AccountingOff, None, None)], 4), vec![0..1]);
    }

    #[test]
    fn undecodable_payloads_are_rejected_not_guessed() {
        let entry = Entry::new(start("s1", 1));
        let mut frame = encode_frame(&entry);
        // Wrong version, re-CRC'd so that only the content is wrong.
        frame[HEADER] = 9;
        let len = frame[0..4].to_vec();
        let crc = crc32c_parts(&[&len, &frame[HEADER..]]);
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_frame(&frame),
            Err(FrameError::Undecodable("unknown record version"))
        );
    }
}

//! The record and its binary encoding.
//!
//! ```text
//! frame   = len:u32le  crc:u32le  payload[len]          crc = CRC-32C(payload)
//! payload = version:u8 (=1)  time_us:i64le  request_id:u64le  flags:u8 (bit 0: MAC present)
//!           mac:[u8;6] (zeros when absent)  request_type:u8 (0 auth, 1 acct, 2 status)
//!           nas_ip:str  outcome:str  reason:str
//!           user_name:opt  nas_port:opt  vlan:opt  role:opt  switch_id:opt
//!           calling_station_id:opt  called_station_id:opt
//! str     = len:u16le bytes[len] (UTF-8, len ≤ MAX_FIELD)      opt = str, or 0xFFFF for None
//! ```
//!
//! The MAC and the time sit at fixed offsets of the payload so that a scan can skip records of
//! other devices without decoding them. The decoder checks every length against what is left
//! and against [`MAX_PAYLOAD`], the checksum, the version, UTF-8 and that nothing trails the
//! last field: on hostile bytes it returns an error, it never panics and never allocates more
//! than the frame it was given.

use ironfence_core::Mac;
use serde::{Deserialize, Serialize};

/// Bytes of a frame header (length and checksum).
pub const FRAME_HEADER: usize = 8;
/// Longest text field kept; longer values are cut at a character boundary. RADIUS attributes
/// carry at most 253 octets, so nothing real is ever cut.
pub const MAX_FIELD: usize = 1024;
/// Largest payload the decoder accepts (ten fields of [`MAX_FIELD`] and the fixed part fit).
pub const MAX_PAYLOAD: usize = 16 * 1024;
const VERSION: u8 = 1;
const NONE: u16 = 0xFFFF;
/// Offsets inside the payload.
pub(crate) const TIME_AT: usize = 1;
pub(crate) const FLAGS_AT: usize = 17;
pub(crate) const MAC_AT: usize = 18;
const FIXED: usize = 25;

/// What kind of RADIUS request a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestType {
    Auth,
    Acct,
    Status,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Auth => "auth",
            RequestType::Acct => "acct",
            RequestType::Status => "status",
        }
    }
    fn code(self) -> u8 {
        match self {
            RequestType::Auth => 0,
            RequestType::Acct => 1,
            RequestType::Status => 2,
        }
    }
    fn from_code(c: u8) -> Option<RequestType> {
        match c {
            0 => Some(RequestType::Auth),
            1 => Some(RequestType::Acct),
            2 => Some(RequestType::Status),
            _ => None,
        }
    }
}

/// One RADIUS request and what was decided. The fields of the database's `radius_audit_log`
/// row, plus a request id and a time with microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Microseconds since the UNIX epoch (UTC).
    pub time_us: i64,
    /// This server's id of the request (unique per server, increasing).
    pub request_id: u64,
    #[serde(with = "mac_text")]
    pub mac: Option<Mac>,
    pub user_name: Option<String>,
    pub nas_ip: String,
    pub nas_port: Option<String>,
    pub request_type: RequestType,
    /// `accept`, `reject`, `accounting-response`, …
    pub outcome: String,
    pub reason: String,
    pub vlan: Option<String>,
    pub role: Option<String>,
    pub switch_id: Option<String>,
    pub calling_station_id: Option<String>,
    pub called_station_id: Option<String>,
}

pub(crate) mod mac_text {
    use ironfence_core::Mac;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mac: &Option<Mac>, s: S) -> Result<S::Ok, S::Error> {
        match mac {
            Some(m) => s.collect_str(m),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mac>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(t) => Mac::parse(&t).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a frame: a torn write (or a record still being written).
    #[error("incomplete record ({have} of {need} bytes)")]
    Incomplete { have: usize, need: usize },
    /// The frame is complete but not a valid record.
    #[error("corrupt record: {0}")]
    Corrupt(&'static str),
}

impl AuditRecord {
    /// Appends this record's frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; FRAME_HEADER]);
        out.push(VERSION);
        out.extend_from_slice(&self.time_us.to_le_bytes());
        out.extend_from_slice(&self.request_id.to_le_bytes());
        out.push(u8::from(self.mac.is_some()));
        out.extend_from_slice(&self.mac.map(|m| m.0).unwrap_or([0; 6]));
        out.push(self.request_type.code());
        put_str(out, Some(&self.nas_ip));
        put_str(out, Some(&self.outcome));
        put_str(out, Some(&self.reason));
        for f in [
            &self.user_name,
            &self.nas_port,
            &self.vlan,
            &self.role,
            &self.switch_id,
            &self.calling_station_id,
            &self.called_station_id,
        ] {
            put_str(out, f.as_deref());
        }
        let payload_len = out.len() - start - FRAME_HEADER;
        let crc = crate::crc::crc32c(&out[start + FRAME_HEADER..]);
        out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// This record's frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(160);
        self.encode_into(&mut v);
        v
    }

    /// Decodes the frame at the start of `buf`; returns the record and the frame's length.
    pub fn decode(buf: &[u8]) -> Result<(AuditRecord, usize), DecodeError> {
        let payload = frame(buf)?;
        Ok((decode_payload(payload)?, FRAME_HEADER + payload.len()))
    }
}

/// The checked payload of the frame at the start of `buf` (length and checksum verified).
pub(crate) fn frame(buf: &[u8]) -> Result<&[u8], DecodeError> {
    if buf.len() < FRAME_HEADER {
        return Err(DecodeError::Incomplete {
            have: buf.len(),
            need: FRAME_HEADER,
        });
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(FIXED..=MAX_PAYLOAD).contains(&len) {
        return Err(DecodeError::Corrupt("length out of range"));
    }
    let need = FRAME_HEADER + len;
    if buf.len() < need {
        return Err(DecodeError::Incomplete {
            have: buf.len(),
            need,
        });
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let payload = &buf[FRAME_HEADER..need];
    if crate::crc::crc32c(payload) != crc {
        return Err(DecodeError::Corrupt("checksum mismatch"));
    }
    if payload[0] != VERSION {
        return Err(DecodeError::Corrupt("unknown record version"));
    }
    Ok(payload)
}

/// The MAC of a checked payload (no full decode).
pub(crate) fn payload_mac(payload: &[u8]) -> Option<Mac> {
    let flags = *payload.get(FLAGS_AT)?;
    let bytes: [u8; 6] = payload.get(MAC_AT..MAC_AT + 6)?.try_into().ok()?;
    (flags & 1 == 1).then_some(Mac(bytes))
}

/// The time of a checked payload (no full decode).
pub(crate) fn payload_time(payload: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = payload.get(TIME_AT..TIME_AT + 8)?.try_into().ok()?;
    Some(i64::from_le_bytes(bytes))
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.extend_from_slice(&NONE.to_le_bytes()),
        Some(s) => {
            let s = truncate(s, MAX_FIELD);
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(DecodeError::Corrupt("field runs past the record"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn opt(&mut self) -> Result<Option<String>, DecodeError> {
        let b = self.take(2)?;
        let len = u16::from_le_bytes([b[0], b[1]]);
        if len == NONE {
            return Ok(None);
        }
        if usize::from(len) > MAX_FIELD {
            return Err(DecodeError::Corrupt("text field too long"));
        }
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_string()))
            .map_err(|_| DecodeError::Corrupt("text field is not UTF-8"))
    }
    fn text(&mut self) -> Result<String, DecodeError> {
        self.opt()?
            .ok_or(DecodeError::Corrupt("required text field missing"))
    }
}

pub(crate) fn decode_payload(payload: &[u8]) -> Result<AuditRecord, DecodeError> {
    let mut r = Reader {
        buf: payload,
        at: 1,
    };
    let time_us = r.u64()? as i64;
    let request_id = r.u64()?;
    let flags = r.u8()?;
    if flags & !1 != 0 {
        return Err(DecodeError::Corrupt("unknown flags"));
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(r.take(6)?);
    let mac = if flags & 1 == 1 {
        Some(Mac(mac))
    } else if mac != [0; 6] {
        return Err(DecodeError::Corrupt("MAC bytes without the MAC flag"));
    } else {
        None
    };
    let request_type =
        RequestType::from_code(r.u8()?).ok_or(DecodeError::Corrupt("unknown request type"))?;
    let nas_ip = r.text()?;
    let outcome = r.text()?;
    let reason = r.text()?;
    let record = AuditRecord {
        time_us,
        request_id,
        mac,
        user_name: r.opt()?,
        nas_ip,
        nas_port: r.opt()?,
        request_type,
        outcome,
        reason,
        vlan: r.opt()?,
        role: r.opt()?,
        switch_id: r.opt()?,
        calling_station_id: r.opt()?,
        called_station_id: r.opt()?,
    };
    if r.at != payload.len() {
        return Err(DecodeError::Corrupt("bytes after the last field"));
    }
    Ok(record)
}

/// The current time in microseconds since the UNIX epoch.
pub fn now_us() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(time_us: i64, request_id: u64, mac: Option<Mac>) -> AuditRecord {
        AuditRecord {
            time_us,
            request_id,
            mac,
            user_name: mac.map(|m| m.to_string()),
            nas_ip: "192.0.2.10".into(),
            nas_port: Some("Gi1/0/7".into()),
            request_type: RequestType::Auth,
            outcome: "accept".into(),
            reason: "registered".into(),
            vlan: Some("10".into()),
            role: Some("default".into()),
            switch_id: Some("192.0.2.10".into()),
            calling_station_id: mac.map(|m| m.to_string()),
            called_station_id: None,
        }
    }

    pub(crate) fn mac(n: u8) -> Mac {
        Mac([0x02, 0, 0, 0, 0, n])
    }

    #[test]
    fn round_trip() {
        let cases = [
            sample(1_700_000_000_123_456, 1, Some(mac(1))),
            sample(0, 0, None),
            sample(-5, u64::MAX, Some(Mac([0xff; 6]))),
            AuditRecord {
                request_type: RequestType::Acct,
                user_name: Some("é".repeat(600)), // cut at a character boundary
                vlan: Some(String::new()),
                ..sample(7, 7, None)
            },
            AuditRecord {
                request_type: RequestType::Status,
                ..sample(8, 8, Some(mac(9)))
            },
        ];
        for r in cases {
            let bytes = r.encode();
            let (back, used) = AuditRecord::decode(&bytes).unwrap();
            assert_eq!(used, bytes.len());
            let mut want = r.clone();
            if let Some(u) = &mut want.user_name {
                *u = truncate(u, MAX_FIELD).to_string();
            }
            assert_eq!(back, want);
            assert!(back.user_name.as_ref().is_none_or(|u| u.len() <= MAX_FIELD));
            let payload = frame(&bytes).unwrap();
            assert_eq!(payload_mac(payload), r.mac);
            assert_eq!(payload_time(payload), Some(r.time_us));
        }
    }

    #[test]
    fn every_prefix_is_incomplete_and_every_flip_is_detected() {
        let bytes = sample(42, 9, Some(mac(3))).encode();
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    AuditRecord::decode(&bytes[..cut]),
                    Err(DecodeError::Incomplete { .. })
                ),
                "prefix {cut}"
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(AuditRecord::decode(&b).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], "length out of range"),
            (&[0, 0, 0, 0, 0, 0, 0, 0], "length out of range"),
        ];
        for (bytes, why) in cases {
            assert_eq!(AuditRecord::decode(bytes), Err(DecodeError::Corrupt(why)));
        }
        // A valid checksum over a payload whose field lengths lie.
        let mut payload = vec![VERSION];
        payload.extend_from_slice(&[0; 24]);
        payload.extend_from_slice(&[0x00, 0xfe]); // nas_ip claims 65024 bytes
        let mut f = (payload.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crate::crc::crc32c(&payload).to_le_bytes());
        f.extend_from_slice(&payload);
        assert!(matches!(
            AuditRecord::decode(&f),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn json_spells_the_mac_and_type() {
        let r = sample(1, 2, Some(mac(0xab)));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["mac"], "02:00:00:00:00:ab");
        assert_eq!(v["request_type"], "auth");
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    /// The format is what the module documentation says: a frame written by another encoder
    /// (the fuzz seed, written from the documentation) decodes.
    #[test]
    fn golden_frame() {
        let bytes = include_bytes!("../../../fuzz/seeds/audit_record/accept");
        let (r, used) = AuditRecord::decode(bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            r,
            AuditRecord {
                time_us: 1_764_633_600_123_456,
                request_id: 42,
                vlan: Some("100".into()),
                nas_port: Some("12".into()),
                ..sample(0, 0, Some(mac(1)))
            }
        );
        assert_eq!(r.encode(), bytes);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = AuditRecord::decode(&bytes);
        }
    }
}

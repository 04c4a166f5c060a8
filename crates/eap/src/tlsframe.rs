//! EAP-TLS / PEAP / EAP-TTLS framing (RFC 5216 §3.1, RFC 5281 §9.1, PEAPv0): after the
//! Type octet come Flags (L=0x80 length included, M=0x40 more fragments, S=0x20 start; PEAP
//! and TTLS put their version in the low 3 bits: PEAPv0 and TTLSv0 are 0), then the 4-octet
//! TLS Message Length when L is set, then TLS data.
//!
//! Each fragment is acknowledged by an empty message of the same type (RFC 5216 §2.1.5).

use crate::packet::{Code, EapType, encode};

pub const FLAG_L: u8 = 0x80;
pub const FLAG_M: u8 = 0x40;
pub const FLAG_S: u8 = 0x20;
pub const VERSION_MASK: u8 = 0x07;

/// EAP header (4) + Type (1) + Flags (1) + TLS Message Length (4).
pub const EAP_TLS_OVERHEAD: usize = 10;
/// EAPOL header between the switch and the supplicant (IEEE 802.1X §11.3).
pub const EAPOL_OVERHEAD: usize = 4;
/// Smallest fragment we agree to cut (a tiny Framed-MTU must not mean thousands of rounds).
pub const MIN_FRAGMENT: usize = 128;

/// Why a TLS-method message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no Flags octet")]
    NoFlags,
    #[error("L flag without a 4-octet TLS Message Length")]
    NoLength,
    #[error("TLS message larger than allowed")]
    TooLarge,
    #[error("TLS Message Length disagrees with the fragments")]
    LengthMismatch,
}

impl FrameError {
    pub fn label(self) -> &'static str {
        match self {
            FrameError::NoFlags => "tls_no_flags",
            FrameError::NoLength => "tls_no_length",
            FrameError::TooLarge => "tls_message_too_large",
            FrameError::LengthMismatch => "tls_length_mismatch",
        }
    }
}

/// One decoded TLS-method message (what follows the EAP Type octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsFrame<'a> {
    pub flags: u8,
    /// TLS Message Length (L flag).
    pub length: Option<u32>,
    pub data: &'a [u8],
}

impl<'a> TlsFrame<'a> {
    pub fn decode(data: &'a [u8]) -> Result<TlsFrame<'a>, FrameError> {
        let (&flags, rest) = data.split_first().ok_or(FrameError::NoFlags)?;
        if flags & FLAG_L != 0 {
            if rest.len() < 4 {
                return Err(FrameError::NoLength);
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            Ok(TlsFrame {
                flags,
                length: Some(len),
                data: &rest[4..],
            })
        } else {
            Ok(TlsFrame {
                flags,
                length: None,
                data: rest,
            })
        }
    }

    pub fn more(&self) -> bool {
        self.flags & FLAG_M != 0
    }

    /// An acknowledgement (or an empty final response): no data, no M.
    pub fn is_empty_ack(&self) -> bool {
        self.data.is_empty() && !self.more()
    }
}

/// Encodes a TLS-method EAP Request (`flags` includes the version bits).
pub fn encode_request(
    id: u8,
    typ: EapType,
    flags: u8,
    length: Option<u32>,
    data: &[u8],
) -> Vec<u8> {
    encode_frame(Code::Request, id, typ, flags, length, data)
}

/// Encodes a TLS-method EAP packet of any code (the peer side uses Response).
pub fn encode_frame(
    code: Code,
    id: u8,
    typ: EapType,
    flags: u8,
    length: Option<u32>,
    data: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(5 + data.len());
    match length {
        Some(l) => {
            body.push(flags | FLAG_L);
            body.extend_from_slice(&l.to_be_bytes());
        }
        None => body.push(flags & !FLAG_L),
    }
    body.extend_from_slice(data);
    encode(code, id, typ, &body)
}

/// TLS octets per EAP packet: the configured `fragment_size`, lowered by Framed-MTU
/// (RFC 3579 §2.4): the whole EAPOL frame must fit, so
/// `Framed-MTU − 4 (EAPOL header) − 10 (EAP header 4, Type 1, Flags 1, TLS Length 4)`,
/// never below [`MIN_FRAGMENT`].
pub fn fragment_size(configured: usize, framed_mtu: Option<u32>) -> usize {
    let mut size = configured;
    if let Some(mtu) = framed_mtu {
        let fit = (mtu as usize).saturating_sub(EAPOL_OVERHEAD + EAP_TLS_OVERHEAD);
        size = size.min(fit);
    }
    size.max(MIN_FRAGMENT)
}

/// Reassembles one TLS message from the peer's fragments, bounded.
#[derive(Debug, Default)]
pub struct Reassembler {
    buf: Vec<u8>,
    expected: Option<usize>,
    active: bool,
}

/// What a fragment produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// More fragments follow: acknowledge with an empty Request.
    NeedMore,
    /// The whole TLS message.
    Complete(Vec<u8>),
}

impl Reassembler {
    /// Adds one fragment; `max` is [`crate::Limits::max_tls_message`].
    pub fn push(&mut self, frame: &TlsFrame<'_>, max: usize) -> Result<Reassembled, FrameError> {
        if let Some(l) = frame.length {
            let l = l as usize;
            if l > max {
                self.reset();
                return Err(FrameError::TooLarge);
            }
            match self.expected {
                // Later fragments may repeat L (wpa_supplicant can); it must not change.
                Some(e) if self.active && e != l => {
                    self.reset();
                    return Err(FrameError::LengthMismatch);
                }
                _ if !self.active => self.expected = Some(l),
                _ => {}
            }
        }
        let limit = self.expected.unwrap_or(max);
        if self.buf.len() + frame.data.len() > limit {
            let e = if self.expected.is_some() {
                FrameError::LengthMismatch
            } else {
                FrameError::TooLarge
            };
            self.reset();
            return Err(e);
        }
        self.active = true;
        self.buf.extend_from_slice(frame.data);
        if frame.more() {
            return Ok(Reassembled::NeedMore);
        }
        if let Some(e) = self.expected
            && e != self.buf.len()
        {
            self.reset();
            return Err(FrameError::LengthMismatch);
        }
        let out = std::mem::take(&mut self.buf);
        self.reset();
        Ok(Reassembled::Complete(out))
    }

    /// A message is partly received.
    pub fn in_progress(&self) -> bool {
        self.active
    }

    pub fn reset(&mut self) {
        self.buf = Vec::new();
        self.expected = None;
        self.active = false;
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Cuts one outgoing TLS flight into fragments.
#[derive(Debug)]
pub struct Fragmenter {
    data: Vec<u8>,
    pos: usize,
    size: usize,
}

impl Fragmenter {
    pub fn new(data: Vec<u8>, size: usize) -> Fragmenter {
        Fragmenter {
            data,
            pos: 0,
            size: size.max(1),
        }
    }

    /// The next fragment: (flags M/L, TLS Message Length, data). The first fragment of a
    /// fragmented message carries L (RFC 5216 §2.1.5); an unfragmented one carries L too,
    /// as hostapd and FreeRADIUS do.
    pub fn next_fragment(&mut self) -> (u8, Option<u32>, &[u8]) {
        let first = self.pos == 0;
        let end = (self.pos + self.size).min(self.data.len());
        let chunk = &self.data[self.pos..end];
        self.pos = end;
        let more = self.pos < self.data.len();
        let flags = if more { FLAG_M } else { 0 };
        let length = first.then_some(self.data.len() as u32);
        (flags, length, chunk)
    }

    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_and_lengths_are_checked() {
        let msg: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut f = Fragmenter::new(msg.clone(), 300);
        let mut r = Reassembler::default();
        let mut n = 0;
        let out = loop {
            let (flags, length, chunk) = f.next_fragment();
            n += 1;
            let frame = TlsFrame {
                flags,
                length,
                data: chunk,
            };
            match r.push(&frame, 4096).unwrap() {
                Reassembled::NeedMore => assert!(!f.done()),
                Reassembled::Complete(v) => break v,
            }
        };
        assert_eq!((out, n), (msg, 4));
        // L says 10, 11 octets arrive.
        let bad = TlsFrame {
            flags: FLAG_L,
            length: Some(10),
            data: &[0; 11],
        };
        assert_eq!(r.push(&bad, 4096), Err(FrameError::LengthMismatch));
        // L larger than the limit refused before any octet is stored.
        let big = TlsFrame {
            flags: FLAG_L | FLAG_M,
            length: Some(1 << 30),
            data: &[0; 10],
        };
        assert_eq!(r.push(&big, 65536), Err(FrameError::TooLarge));
        // No L: bounded by the limit anyway.
        let chunk = [0u8; 100];
        let frag = TlsFrame {
            flags: FLAG_M,
            length: None,
            data: &chunk,
        };
        assert_eq!(r.push(&frag, 150), Ok(Reassembled::NeedMore));
        assert_eq!(r.push(&frag, 150), Err(FrameError::TooLarge));
        assert_eq!(TlsFrame::decode(&[FLAG_L, 0, 0]), Err(FrameError::NoLength));
        assert_eq!(TlsFrame::decode(&[]), Err(FrameError::NoFlags));
    }

    #[test]
    fn framed_mtu_lowers_the_fragment_size() {
        assert_eq!(fragment_size(1000, None), 1000);
        assert_eq!(fragment_size(1000, Some(400)), 386);
        assert_eq!(fragment_size(1000, Some(20)), MIN_FRAGMENT);
    }
}

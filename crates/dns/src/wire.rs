//! The DNS message format (RFC 1035 §4), as much as a captive responder and a forwarder need.
//!
//! A [`Query`] is decoded once: header, the question (at most one: RFC 9619), the answer and
//! authority sections skipped with bounds, the additional section searched for the EDNS(0) OPT
//! record. Replies are built by [`ReplyBuilder`], whose names point back at the question.

use std::fmt;
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 12;
/// RFC 1035 §2.3.4: a label is at most 63 octets, a name at most 255 (wire form).
pub const MAX_LABEL_LEN: usize = 63;
pub const MAX_NAME_LEN: usize = 255;
/// Compression pointers followed per name. Each pointer must also land before the labels it
/// continues began, which alone rules out loops; this bound keeps the work per name small.
pub const MAX_POINTERS: usize = 16;
/// The UDP payload a client may assume without EDNS (RFC 1035 §4.2.1).
pub const CLASSIC_UDP_PAYLOAD: usize = 512;
/// What we advertise and the largest UDP answer we send (the DNS flag day 2020 value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

pub const TYPE_A: u16 = 1;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

pub const OPCODE_QUERY: u8 = 0;
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
/// RFC 6891 §6.1.3: extended RCODE 16, carried as 1 in the OPT's upper bits.
pub const RCODE_BADVERS: u16 = 16;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const FLAG_CD: u16 = 0x0010;

/// Why bytes are not a message we can use. Each is a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ends inside the header, a name or a record.
    Truncated,
    /// A name longer than 255 octets.
    NameTooLong,
    /// A length octet of 64-191: label types 0b01/0b10 (RFC 6891 §5 retired them), which is
    /// also how a label longer than 63 octets shows on the wire.
    BadLabelType,
    /// A compression pointer that does not point backwards, or too many of them.
    BadPointer,
    /// More than one question (RFC 9619: QDCOUNT is 0 or 1).
    TooManyQuestions,
    /// More than one OPT record, or an OPT not owned by the root (RFC 6891 §6.1.1).
    BadOpt,
}

impl DecodeError {
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::NameTooLong => "name_too_long",
            DecodeError::BadLabelType => "bad_label_type",
            DecodeError::BadPointer => "bad_pointer",
            DecodeError::TooManyQuestions => "too_many_questions",
            DecodeError::BadOpt => "bad_opt",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for DecodeError {}

fn u16_at(b: &[u8], at: usize) -> Result<u16, DecodeError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(DecodeError::Truncated),
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, DecodeError> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(DecodeError::Truncated),
    }
}

/// The 12-octet header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn decode(b: &[u8]) -> Result<Header, DecodeError> {
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(Header {
            id: u16_at(b, 0)?,
            flags: u16_at(b, 2)?,
            qdcount: u16_at(b, 4)?,
            ancount: u16_at(b, 6)?,
            nscount: u16_at(b, 8)?,
            arcount: u16_at(b, 10)?,
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }
    pub fn recursion_desired(&self) -> bool {
        self.flags & FLAG_RD != 0
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
}

/// A domain name in uncompressed wire form (length-prefixed labels, ending with the root),
/// with the case the sender used (echoed as received; compared case-insensitively).
#[derive(Clone, PartialEq, Eq)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// Parses a dotted name (`portal.example.org`, trailing dot optional). `None` for empty
    /// labels, labels over 63 octets or names over 255.
    pub fn from_dotted(s: &str) -> Option<Name> {
        let s = s.strip_suffix('.').unwrap_or(s);
        let mut wire = Vec::with_capacity(s.len() + 2);
        if !s.is_empty() {
            for label in s.split('.') {
                if label.is_empty() || label.len() > MAX_LABEL_LEN {
                    return None;
                }
                wire.push(label.len() as u8);
                wire.extend_from_slice(label.as_bytes());
            }
        }
        wire.push(0);
        (wire.len() <= MAX_NAME_LEN).then_some(Name { wire })
    }

    /// Decodes the name at `start` of `msg`, following compression pointers. Returns the name
    /// and the offset just after it at its own position (after the first pointer if any).
    pub fn decode(msg: &[u8], start: usize) -> Result<(Name, usize), DecodeError> {
        let mut wire = Vec::with_capacity(32);
        let mut pos = start;
        let mut end = None;
        let mut pointers = 0;
        // Where the labels being read began: each jump must land before it, so these starts
        // strictly decrease and the walk always ends (a pointer back into the same name, the
        // classic loop, is refused).
        let mut run_start = start;
        loop {
            let len = *msg.get(pos).ok_or(DecodeError::Truncated)?;
            match len & 0xc0 {
                0x00 => {
                    let len = len as usize;
                    if wire.len() + 1 + len > MAX_NAME_LEN {
                        return Err(DecodeError::NameTooLong);
                    }
                    if len == 0 {
                        wire.push(0);
                        return Ok((Name { wire }, end.unwrap_or(pos + 1)));
                    }
                    let label = msg
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(DecodeError::Truncated)?;
                    wire.push(len as u8);
                    wire.extend_from_slice(label);
                    pos += 1 + len;
                }
                0xc0 => {
                    let target = (u16_at(msg, pos)? & 0x3fff) as usize;
                    pointers += 1;
                    if target >= run_start || pointers > MAX_POINTERS {
                        return Err(DecodeError::BadPointer);
                    }
                    end.get_or_insert(pos + 2);
                    pos = target;
                    run_start = target;
                }
                // 0x40, 0x80: the extended label types of RFC 2671/6891 §5 (none in use).
                _ => return Err(DecodeError::BadLabelType),
            }
        }
    }

    /// The wire form (uncompressed).
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, from the leftmost.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let len = *self.wire.get(pos)? as usize;
            if len == 0 {
                return None;
            }
            let l = self.wire.get(pos + 1..pos + 1 + len)?;
            pos += 1 + len;
            Some(l)
        })
    }

    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// The same name, ASCII case ignored (RFC 4343).
    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }

    /// Whether `self` is `suffix` or a name below it (label-wise, case-insensitive): a label
    /// that contains a dot can never match two labels.
    pub fn is_at_or_below(&self, suffix: &Name) -> bool {
        let mine: Vec<&[u8]> = self.labels().collect();
        let theirs: Vec<&[u8]> = suffix.labels().collect();
        theirs.len() <= mine.len()
            && mine[mine.len() - theirs.len()..]
                .iter()
                .zip(&theirs)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

/// Presentation form (RFC 1035 §5.1 escapes for dots, backslashes and non-printable octets).
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for label in self.labels() {
            any = true;
            for &c in label {
                match c {
                    b'.' | b'\\' => write!(f, "\\{}", c as char)?,
                    0x21..=0x7e => write!(f, "{}", c as char)?,
                    _ => write!(f, "\\{c:03}")?,
                }
            }
            f.write_str(".")?;
        }
        if !any {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// One question (RFC 1035 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    /// The same question, name case ignored.
    pub fn matches(&self, other: &Question) -> bool {
        self.qtype == other.qtype
            && self.qclass == other.qclass
            && self.name.eq_ignore_case(&other.name)
    }

    fn decode(msg: &[u8], at: usize) -> Result<(Question, usize), DecodeError> {
        let (name, at) = Name::decode(msg, at)?;
        let qtype = u16_at(msg, at)?;
        let qclass = u16_at(msg, at + 2)?;
        Ok((
            Question {
                name,
                qtype,
                qclass,
            },
            at + 4,
        ))
    }
}

/// What a client's OPT record says (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The requestor's UDP payload size (values below 512 are treated as 512).
    pub udp_payload: u16,
    pub version: u8,
    /// DNSSEC OK. We never sign, so our own answers clear it.
    pub dnssec_ok: bool,
}

/// A decoded message: header, its question, its EDNS(0) options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub header: Header,
    pub question: Option<Question>,
    pub edns: Option<Edns>,
}

impl Query {
    /// Decodes a message (query or response). Never panics; every length is checked.
    pub fn decode(msg: &[u8]) -> Result<Query, DecodeError> {
        let header = Header::decode(msg)?;
        if header.qdcount > 1 {
            return Err(DecodeError::TooManyQuestions);
        }
        let mut at = HEADER_LEN;
        let mut question = None;
        if header.qdcount == 1 {
            let (q, next) = Question::decode(msg, at)?;
            question = Some(q);
            at = next;
        }
        // Each record is at least 11 octets, so a forged count ends at the message's end.
        for _ in 0..u32::from(header.ancount) + u32::from(header.nscount) {
            at = skip_record(msg, at)?.end;
        }
        let mut edns = None;
        for _ in 0..header.arcount {
            let r = skip_record(msg, at)?;
            if r.rtype == TYPE_OPT {
                if edns.is_some() || !r.owner_is_root {
                    return Err(DecodeError::BadOpt);
                }
                // CLASS = payload size; TTL = extended RCODE, version, DO bit, Z.
                let payload = u16_at(msg, r.fixed + 2)?;
                let ttl = u32_at(msg, r.fixed + 4)?;
                edns = Some(Edns {
                    udp_payload: payload,
                    version: (ttl >> 16) as u8,
                    dnssec_ok: ttl & 0x8000 != 0,
                });
            }
            at = r.end;
        }
        Ok(Query {
            header,
            question,
            edns,
        })
    }

    /// The largest UDP answer this client takes: 512 without EDNS, else its payload size
    /// capped by ours.
    pub fn udp_limit(&self) -> usize {
        match self.edns {
            None => CLASSIC_UDP_PAYLOAD,
            Some(e) => {
                (e.udp_payload as usize).clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD as usize)
            }
        }
    }
}

struct Record {
    rtype: u16,
    /// Offset of TYPE (after the owner name).
    fixed: usize,
    /// Offset after RDATA.
    end: usize,
    owner_is_root: bool,
}

/// Skips one resource record, checking that its RDATA fits in the message.
fn skip_record(msg: &[u8], at: usize) -> Result<Record, DecodeError> {
    let (name, fixed) = Name::decode(msg, at)?;
    let rtype = u16_at(msg, fixed)?;
    let rdlen = u16_at(msg, fixed + 8)? as usize;
    let end = fixed + 10 + rdlen;
    if end > msg.len() {
        return Err(DecodeError::Truncated);
    }
    Ok(Record {
        rtype,
        fixed,
        end,
        owner_is_root: name.as_wire() == [0],
    })
}

/// Replaces a message's id (the forwarder's upstream id, then the client's id back).
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut out = msg.to_vec();
    if out.len() >= 2 {
        out[..2].copy_from_slice(&id.to_be_bytes());
    }
    out
}

/// `msg` cut to its header and question with TC set, when it is longer than `limit` (RFC 2181
/// §9: the client retries over TCP). An OPT is added back for an EDNS client.
pub fn truncate_to(msg: &[u8], limit: usize, edns: bool) -> Vec<u8> {
    if msg.len() <= limit {
        return msg.to_vec();
    }
    let Ok(q) = Query::decode(msg) else {
        // Only called with answers that decoded; keep the header alone then.
        let mut h = msg[..HEADER_LEN.min(msg.len())].to_vec();
        if h.len() == HEADER_LEN {
            h[2] |= (FLAG_TC >> 8) as u8;
            h[4..].fill(0);
        }
        return h;
    };
    let h = q.header;
    let mut b = ReplyBuilder::start(h.id, h.flags | FLAG_TC, q.question.as_ref());
    if edns {
        b.opt(0, false);
    }
    b.finish()
}

/// Builds a reply: header, the question echoed, then records whose owner is the question's
/// name (a pointer to offset 12). Counts are patched in by [`ReplyBuilder::finish`].
#[derive(Debug)]
pub struct ReplyBuilder {
    buf: Vec<u8>,
    has_question: bool,
    counts: [u16; 3],
}

impl ReplyBuilder {
    /// A reply with exactly `flags` (QR and the rest as the caller set them).
    pub fn start(id: u16, flags: u16, question: Option<&Question>) -> ReplyBuilder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
        if let Some(q) = question {
            buf.extend_from_slice(q.name.as_wire());
            buf.extend_from_slice(&q.qtype.to_be_bytes());
            buf.extend_from_slice(&q.qclass.to_be_bytes());
        }
        ReplyBuilder {
            buf,
            has_question: question.is_some(),
            counts: [0; 3],
        }
    }

    /// Our own answer to `query`: QR, AA, RA; opcode, RD and CD copied (RFC 1035 §4.1.1).
    pub fn answering(query: &Query, rcode: u8) -> ReplyBuilder {
        Self::answering_with(query, rcode, true)
    }

    /// As [`ReplyBuilder::answering`], AA set only when `authoritative` (not for SERVFAIL).
    pub fn answering_with(query: &Query, rcode: u8, authoritative: bool) -> ReplyBuilder {
        let h = query.header;
        let aa = if authoritative { FLAG_AA } else { 0 };
        let flags = FLAG_QR
            | aa
            | FLAG_RA
            | (h.flags & (0x7800 | FLAG_RD | FLAG_CD))
            | u16::from(rcode & 0x0f);
        ReplyBuilder::start(h.id, flags, query.question.as_ref())
    }

    fn owner(&mut self) {
        if self.has_question {
            self.buf.extend_from_slice(&[0xc0, 0x0c]);
        } else {
            self.buf.push(0);
        }
    }

    /// An A record for the question's name (answer section).
    pub fn answer_a(&mut self, addr: Ipv4Addr, ttl: u32) -> &mut Self {
        self.owner();
        self.fixed(TYPE_A, CLASS_IN, ttl, 4);
        self.buf.extend_from_slice(&addr.octets());
        self.counts[0] += 1;
        self
    }

    /// A SOA for the question's name (authority section) whose TTL and MINIMUM are `ttl`, so
    /// a negative answer is cached no longer (RFC 2308 §5).
    pub fn authority_soa(&mut self, ttl: u32) -> &mut Self {
        const RNAME: &[u8] = b"\x0ahostmaster\xc0\x0c";
        self.owner();
        self.fixed(TYPE_SOA, CLASS_IN, ttl, (2 + RNAME.len() + 20) as u16);
        self.buf.extend_from_slice(&[0xc0, 0x0c]);
        self.buf.extend_from_slice(RNAME);
        for v in [1u32, 3600, 600, 86400, ttl] {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self.counts[1] += 1;
        self
    }

    /// Our OPT record (additional section): payload size, extended RCODE bits, version 0.
    pub fn opt(&mut self, extended_rcode: u16, dnssec_ok: bool) -> &mut Self {
        self.buf.push(0);
        let ttl = (u32::from(extended_rcode >> 4) << 24) | if dnssec_ok { 0x8000 } else { 0 };
        self.fixed(TYPE_OPT, MAX_UDP_PAYLOAD, ttl, 0);
        self.counts[2] += 1;
        self
    }

    fn fixed(&mut self, rtype: u16, class: u16, ttl: u32, rdlen: u16) {
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&rdlen.to_be_bytes());
    }

    pub fn finish(&mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        std::mem::take(&mut self.buf)
    }
}

/// A query for `name`/`qtype` (RD set, optional OPT): what tests, the bench and the fuzz seeds
/// send.
pub fn build_query(id: u16, name: &Name, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let q = Question {
        name: name.clone(),
        qtype,
        qclass: CLASS_IN,
    };
    let mut b = ReplyBuilder::start(id, FLAG_RD, Some(&q));
    if let Some(size) = edns {
        b.buf.push(0);
        b.fixed(TYPE_OPT, size, 0, 0);
        b.counts[2] += 1;
    }
    b.finish()
}

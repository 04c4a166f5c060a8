//! DHCPv4 wire format (RFC 2131 §2, RFC 2132): decode and encode.
//!
//! Decoding is total: any byte string gives a [`Message`] or a [`DecodeError`], never a
//! panic; memory is bounded by the input (at most [`MAX_DATAGRAM`] octets are looked at, and
//! option values are copies of slices of it). Options repeated in one message are
//! concatenated (RFC 3396) — bounded by the same input. Only the options field after the magic
//! cookie is parsed: option overload (52) is deliberately ignored, so `sname`/`file` are never
//! read for options (they are not copied into replies either).

use std::net::Ipv4Addr;

/// Larger datagrams are refused: a DHCP message fits an Ethernet frame (RFC 2131 §2: 576
/// octets must be accepted; clients may announce up to 1500 with option 57).
pub const MAX_DATAGRAM: usize = 1500;
/// Fixed header (236) + magic cookie (4).
pub const HEADER_LEN: usize = 240;
/// RFC 2131 §3: magic cookie 99.130.83.99.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// RFC 1542 §2.1: relay agents and some clients drop BOOTP messages shorter than 300 octets.
pub const MIN_REPLY_LEN: usize = 300;

pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
/// `flags` broadcast bit (RFC 2131 §2, figure 2).
pub const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes (RFC 2132 unless noted).
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    /// RFC 3046 relay agent information (echoed back unchanged, §2.2).
    pub const RELAY_AGENT: u8 = 82;
    /// RFC 8910 captive-portal API URI.
    pub const CAPTIVE_PORTAL: u8 = 114;
    pub const END: u8 = 255;
}

/// DHCP message type (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
}

impl MessageType {
    pub fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }

    /// Lower-case name, used as a metrics label.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Discover => "discover",
            MessageType::Offer => "offer",
            MessageType::Request => "request",
            MessageType::Decline => "decline",
            MessageType::Ack => "ack",
            MessageType::Nak => "nak",
            MessageType::Release => "release",
            MessageType::Inform => "inform",
        }
    }
}

/// Why a datagram is not a DHCP message we can use (each is a drop reason in the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than the fixed header and magic cookie ({0} octets)")]
    TooShort(usize),
    #[error("longer than {MAX_DATAGRAM} octets ({0})")]
    TooLong(usize),
    #[error("no DHCP magic cookie (plain BOOTP is not served)")]
    NoMagicCookie,
    #[error("hardware type {htype} / length {hlen} is not Ethernet")]
    NotEthernet { htype: u8, hlen: u8 },
    #[error("option {code} runs past the end of the message")]
    TruncatedOption { code: u8 },
    #[error("option {code} has length {len}, which is invalid for it")]
    BadOptionLength { code: u8, len: usize },
    #[error("no message type (option 53) or an unknown one")]
    NoMessageType,
}

impl DecodeError {
    /// A short label for the metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) => "too_short",
            DecodeError::TooLong(_) => "too_long",
            DecodeError::NoMagicCookie => "no_magic_cookie",
            DecodeError::NotEthernet { .. } => "not_ethernet",
            DecodeError::TruncatedOption { .. } => "truncated_option",
            DecodeError::BadOptionLength { .. } => "bad_option_length",
            DecodeError::NoMessageType => "no_message_type",
        }
    }
}

/// The options ironfence understands. Anything else is skipped on decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub message_type: Option<MessageType>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns_servers: Vec<Ipv4Addr>,
    pub hostname: Option<Vec<u8>>,
    pub domain_name: Option<Vec<u8>>,
    pub requested_ip: Option<Ipv4Addr>,
    pub lease_time: Option<u32>,
    pub server_id: Option<Ipv4Addr>,
    pub parameter_request_list: Vec<u8>,
    /// Option 56: a NAK's reason (text).
    pub message: Option<Vec<u8>>,
    pub max_message_size: Option<u16>,
    pub renewal_time: Option<u32>,
    pub rebinding_time: Option<u32>,
    pub vendor_class: Option<Vec<u8>>,
    pub client_id: Option<Vec<u8>>,
    /// Option 82 as received (sub-options not interpreted), echoed in replies.
    pub relay_agent: Option<Vec<u8>>,
    /// Option 114 (RFC 8910), a URI.
    pub captive_portal: Option<Vec<u8>>,
}

/// One DHCP message (RFC 2131 figure 1). `sname` and `file` are neither kept nor sent
/// (zeros on encode): the registration networks boot nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// Client hardware address; only the first `hlen` (6, Ethernet) octets are meaningful.
    pub chaddr: [u8; 16],
    pub options: Options,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn ip_of(v: &[u8], code: u8) -> Result<Ipv4Addr, DecodeError> {
    match v {
        [a, b, c, d] => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => Err(DecodeError::BadOptionLength { code, len: v.len() }),
    }
}

fn ips_of(v: &[u8], code: u8) -> Result<Vec<Ipv4Addr>, DecodeError> {
    if v.is_empty() || !v.len().is_multiple_of(4) {
        return Err(DecodeError::BadOptionLength { code, len: v.len() });
    }
    Ok(v.chunks_exact(4).map(|c| ip_at(c, 0)).collect())
}

fn u32_of(v: &[u8], code: u8) -> Result<u32, DecodeError> {
    match v {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::BadOptionLength { code, len: v.len() }),
    }
}

/// Text and opaque options: an empty value (a client bug, harmless) is treated as absent.
fn non_empty(v: &[u8]) -> Option<Vec<u8>> {
    (!v.is_empty()).then(|| v.to_vec())
}

impl Message {
    /// The client's Ethernet address (`chaddr`'s first six octets).
    pub fn mac(&self) -> ironfence_core::Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.chaddr[..6]);
        ironfence_core::Mac(m)
    }

    pub fn message_type(&self) -> Option<MessageType> {
        self.options.message_type
    }

    pub fn broadcast_flag(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }

    /// Decodes one datagram. Requests and replies both decode (the load generator reads
    /// replies with the same code); the server drops what is not a BOOTREQUEST itself.
    pub fn decode(b: &[u8]) -> Result<Message, DecodeError> {
        if b.len() > MAX_DATAGRAM {
            return Err(DecodeError::TooLong(b.len()));
        }
        if b.len() < HEADER_LEN {
            return Err(DecodeError::TooShort(b.len()));
        }
        if b[236..240] != MAGIC_COOKIE {
            return Err(DecodeError::NoMagicCookie);
        }
        let (htype, hlen) = (b[1], b[2]);
        if htype != 1 || hlen != 6 {
            return Err(DecodeError::NotEthernet { htype, hlen });
        }
        // Gather each option's value (RFC 3396: repeated options concatenate). Values are
        // collected per code in a fixed table: bounded by the input length.
        let mut values: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut i = HEADER_LEN;
        while i < b.len() {
            let code = b[i];
            if code == opt::PAD {
                i += 1;
                continue;
            }
            if code == opt::END {
                break;
            }
            let Some(&len) = b.get(i + 1) else {
                return Err(DecodeError::TruncatedOption { code });
            };
            let (start, end) = (i + 2, i + 2 + usize::from(len));
            let Some(v) = b.get(start..end) else {
                return Err(DecodeError::TruncatedOption { code });
            };
            match values.iter_mut().find(|(c, _)| *c == code) {
                Some((_, acc)) => acc.extend_from_slice(v),
                None => values.push((code, v.to_vec())),
            }
            i = end;
        }
        let mut o = Options::default();
        for (code, v) in &values {
            let (code, v) = (*code, v.as_slice());
            match code {
                opt::MESSAGE_TYPE => {
                    if v.len() != 1 {
                        return Err(DecodeError::BadOptionLength { code, len: v.len() });
                    }
                    o.message_type = MessageType::from_u8(v[0]);
                }
                opt::SUBNET_MASK => o.subnet_mask = Some(ip_of(v, code)?),
                opt::ROUTER => o.routers = ips_of(v, code)?,
                opt::DNS => o.dns_servers = ips_of(v, code)?,
                opt::HOSTNAME => o.hostname = non_empty(v),
                opt::DOMAIN_NAME => o.domain_name = non_empty(v),
                opt::REQUESTED_IP => o.requested_ip = Some(ip_of(v, code)?),
                opt::LEASE_TIME => o.lease_time = Some(u32_of(v, code)?),
                opt::SERVER_ID => o.server_id = Some(ip_of(v, code)?),
                opt::PARAMETER_REQUEST_LIST => o.parameter_request_list = v.to_vec(),
                opt::MESSAGE => o.message = non_empty(v),
                opt::MAX_MESSAGE_SIZE => match v {
                    [a, b] => o.max_message_size = Some(u16::from_be_bytes([*a, *b])),
                    _ => return Err(DecodeError::BadOptionLength { code, len: v.len() }),
                },
                opt::RENEWAL_TIME => o.renewal_time = Some(u32_of(v, code)?),
                opt::REBINDING_TIME => o.rebinding_time = Some(u32_of(v, code)?),
                opt::VENDOR_CLASS => o.vendor_class = non_empty(v),
                // RFC 2132 §9.14: type octet + at least one octet of identifier.
                opt::CLIENT_ID if v.len() < 2 => {
                    return Err(DecodeError::BadOptionLength { code, len: v.len() });
                }
                opt::CLIENT_ID => o.client_id = Some(v.to_vec()),
                opt::RELAY_AGENT => o.relay_agent = non_empty(v),
                opt::CAPTIVE_PORTAL => o.captive_portal = non_empty(v),
                // opt::OVERLOAD and everything else: ignored (see the module docs).
                _ => {}
            }
        }
        if o.message_type.is_none() {
            return Err(DecodeError::NoMessageType);
        }
        let mut chaddr = [0; 16];
        chaddr.copy_from_slice(&b[28..44]);
        Ok(Message {
            op: b[0],
            htype,
            hlen,
            hops: b[3],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip_at(b, 12),
            yiaddr: ip_at(b, 16),
            siaddr: ip_at(b, 20),
            giaddr: ip_at(b, 24),
            chaddr,
            options: o,
        })
    }

    /// Encodes the message: header, cookie, options (message type first, RFC 2131 §3 asks
    /// nothing about order but some clients look at the first option), END, padded to
    /// [`MIN_REPLY_LEN`]. Option values longer than 255 octets are split (RFC 3396).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(576);
        b.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        b.extend_from_slice(&self.xid.to_be_bytes());
        b.extend_from_slice(&self.secs.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        for ip in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            b.extend_from_slice(&ip.octets());
        }
        b.extend_from_slice(&self.chaddr);
        b.resize(236, 0); // sname (64) + file (128)
        b.extend_from_slice(&MAGIC_COOKIE);
        let o = &self.options;
        let mut put = |code: u8, v: &[u8]| {
            if v.is_empty() {
                return;
            }
            for chunk in v.chunks(255) {
                b.push(code);
                b.push(chunk.len() as u8);
                b.extend_from_slice(chunk);
            }
        };
        if let Some(t) = o.message_type {
            put(opt::MESSAGE_TYPE, &[t.as_u8()]);
        }
        if let Some(ip) = o.server_id {
            put(opt::SERVER_ID, &ip.octets());
        }
        for (code, v) in [
            (opt::LEASE_TIME, o.lease_time),
            (opt::RENEWAL_TIME, o.renewal_time),
            (opt::REBINDING_TIME, o.rebinding_time),
        ] {
            if let Some(v) = v {
                put(code, &v.to_be_bytes());
            }
        }
        if let Some(ip) = o.subnet_mask {
            put(opt::SUBNET_MASK, &ip.octets());
        }
        let flat = |ips: &[Ipv4Addr]| ips.iter().flat_map(|i| i.octets()).collect::<Vec<u8>>();
        put(opt::ROUTER, &flat(&o.routers));
        put(opt::DNS, &flat(&o.dns_servers));
        if let Some(ip) = o.requested_ip {
            put(opt::REQUESTED_IP, &ip.octets());
        }
        if let Some(m) = o.max_message_size {
            put(opt::MAX_MESSAGE_SIZE, &m.to_be_bytes());
        }
        put(opt::PARAMETER_REQUEST_LIST, &o.parameter_request_list);
        for (code, v) in [
            (opt::HOSTNAME, &o.hostname),
            (opt::DOMAIN_NAME, &o.domain_name),
            (opt::MESSAGE, &o.message),
            (opt::VENDOR_CLASS, &o.vendor_class),
            (opt::CLIENT_ID, &o.client_id),
            (opt::CAPTIVE_PORTAL, &o.captive_portal),
            // RFC 3046 §2.2: the relay agent option is the last one before END.
            (opt::RELAY_AGENT, &o.relay_agent),
        ] {
            if let Some(v) = v {
                put(code, v);
            }
        }
        b.push(opt::END);
        if b.len() < MIN_REPLY_LEN {
            b.resize(MIN_REPLY_LEN, opt::PAD);
        }
        b
    }
}

#[cfg(test)]
mod tests;

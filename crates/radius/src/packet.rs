//! Zero-copy, validated packet view (RFC 2865 §3, §5).

use std::fmt;
use std::net::Ipv4Addr;

use crate::dict::{self, MESSAGE_AUTHENTICATOR, VALUE_LEN_BOUNDS, VENDOR_SPECIFIC};
use crate::{Code, DecodeError, HEADER_LEN, MAX_PACKET_LEN};

/// Validated zero-copy view of one packet.
///
/// Construction through [`Packet::decode`] guarantees: 20 ≤ length ≤ 4096, every attribute is
/// well formed, dictionary attributes of fixed size have that size, and there is at most one
/// Message-Authenticator of 16 octets. The view covers exactly `Length` octets.
///
/// `Debug` prints the header only (code, identifier, length), never attribute values.
#[derive(Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    authenticator: &'a [u8; 16],
    /// Offset of the Message-Authenticator *value* inside `bytes`.
    ma_offset: Option<u16>,
    /// Attributes whose value length their type does not allow (RFC 6929 §2.8 "invalid
    /// attributes"): kept on the wire view, ignored by the typed accessors.
    invalid: u16,
}

/// Two views are equal when their packet bytes are equal.
impl PartialEq for Packet<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Packet<'_> {}

impl fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("code", &self.code())
            .field("identifier", &self.identifier())
            .field("length", &self.bytes.len())
            .field("message_authenticator", &self.ma_offset.is_some())
            .finish()
    }
}

/// A decoded packet that owns its bytes: what crosses a task boundary after
/// [`Packet::decode`] validated it once. [`OwnedPacket::view`] gives the [`Packet`] back without
/// validating again.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    bytes: Box<[u8]>,
    ma_offset: Option<u16>,
    invalid: u16,
}

impl OwnedPacket {
    /// The validated view of the owned bytes.
    pub fn view(&self) -> Packet<'_> {
        let authenticator = self.bytes[4..]
            .first_chunk::<16>()
            .expect("validated: at least 20 octets");
        Packet {
            bytes: &self.bytes,
            authenticator,
            ma_offset: self.ma_offset,
            invalid: self.invalid,
        }
    }
}

impl fmt::Debug for OwnedPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl<'a> Packet<'a> {
    /// Validates `buf` as one RADIUS packet. Does not allocate; never panics.
    ///
    /// RFC 2865 §3: the Length field must be 20..=4096 and not exceed the datagram; octets
    /// past Length are padding and ignored. Every attribute must have a length ≥ 2 that stays
    /// inside the packet (§5). Message-Authenticator must be 16 octets (RFC 3579 §3.2) and
    /// appear at most once.
    ///
    /// An attribute whose value length its dictionary type does not allow (a 5-octet
    /// NAS-IP-Address, a 3-octet NAS-Port) is an *invalid attribute* (RFC 6929 §2.8): the packet
    /// is kept, the attribute is ignored by [`Packet::get`] and the typed accessors, and
    /// counted ([`Packet::invalid_attributes`]). Only attributes the packet's integrity or
    /// authentication rests on ([`STRICT_LENGTH`]: Message-Authenticator, User-Password,
    /// CHAP-Password, EAP-Message) make the whole packet malformed.
    pub fn decode(buf: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { len: buf.len() });
        }
        let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
            return Err(DecodeError::BadLength { length });
        }
        if length > buf.len() {
            return Err(DecodeError::Truncated {
                length,
                available: buf.len(),
            });
        }
        let bytes = &buf[..length];
        let Some(authenticator) = bytes[4..].first_chunk::<16>() else {
            return Err(DecodeError::TooShort { len: buf.len() });
        };
        let mut ma_offset = None;
        let mut invalid: u16 = 0;
        let mut pos = HEADER_LEN;
        while pos < length {
            let typ = bytes[pos];
            let Some(&alen) = bytes.get(pos + 1) else {
                return Err(DecodeError::MalformedAttribute { offset: pos, typ });
            };
            let alen = usize::from(alen);
            if alen < 2 || alen > length - pos {
                return Err(DecodeError::MalformedAttribute { offset: pos, typ });
            }
            let vlen = alen - 2;
            if !value_len_allowed(typ, vlen) {
                if STRICT_LENGTH.contains(&typ) {
                    return Err(DecodeError::BadAttributeLength { typ, len: vlen });
                }
                invalid = invalid.saturating_add(1);
            }
            if typ == MESSAGE_AUTHENTICATOR {
                if ma_offset.is_some() {
                    return Err(DecodeError::DuplicateMessageAuthenticator);
                }
                // pos + 2 < 4096, fits in u16.
                ma_offset = Some((pos + 2) as u16);
            }
            pos += alen;
        }
        Ok(Packet {
            bytes,
            authenticator,
            ma_offset,
            invalid,
        })
    }

    /// Copies the packet's `Length` octets into an [`OwnedPacket`] (no second validation).
    pub fn to_owned_packet(&self) -> OwnedPacket {
        OwnedPacket {
            bytes: self.bytes.into(),
            ma_offset: self.ma_offset,
            invalid: self.invalid,
        }
    }

    /// Attributes of a length their type does not allow (RFC 6929 §2.8), in wire order: the
    /// packet was accepted, these are ignored by [`Packet::get`] and the typed accessors.
    pub fn invalid_attributes(&self) -> impl Iterator<Item = RawAttribute<'a>> + use<'a> {
        let any = self.invalid > 0;
        self.attributes()
            .filter(move |a| any && !value_len_allowed(a.typ, a.value.len()))
    }

    /// Code.
    pub fn code(&self) -> Code {
        Code::from_u8(self.bytes[0])
    }

    /// Identifier.
    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    /// The Authenticator field (Request or Response Authenticator).
    pub fn authenticator(&self) -> &'a [u8; 16] {
        self.authenticator
    }

    /// The packet, exactly `Length` octets (trailing padding of the datagram excluded).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Iterator over attributes in wire order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: &self.bytes[HEADER_LEN..],
        }
    }

    /// Value of the first valid attribute of this type (invalid attributes, RFC 6929 §2.8,
    /// are skipped).
    pub fn get(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes()
            .find(|a| a.typ == typ && value_len_allowed(typ, a.value.len()))
            .map(|a| a.value)
    }

    /// Values of every attribute of this type, in order (e.g. EAP-Message, Proxy-State, Class).
    pub fn get_all(&self, typ: u8) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.attributes()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value)
    }

    /// First attribute of this type as text, if valid UTF-8.
    pub fn get_str(&self, typ: u8) -> Option<&'a str> {
        self.get(typ).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// First attribute of this type as a big-endian u32, if it is 4 octets.
    /// For RFC 2868 tagged integers this includes the tag in the high octet; see
    /// [`Packet::get_tagged_u32`].
    pub fn get_u32(&self, typ: u8) -> Option<u32> {
        self.get(typ)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes)
    }

    /// First attribute of this type as an IPv4 address, if it is 4 octets.
    pub fn get_ipv4(&self, typ: u8) -> Option<Ipv4Addr> {
        self.get(typ)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(Ipv4Addr::from)
    }

    /// First RFC 2868 tagged integer (Tunnel-Type, Tunnel-Medium-Type, …) as (tag, 24-bit value).
    pub fn get_tagged_u32(&self, typ: u8) -> Option<(u8, u32)> {
        self.get_u32(typ)
            .map(|v| ((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// First RFC 2868 tagged string (Tunnel-Private-Group-Id, …) as (tag, text). A first octet
    /// in 0x00..=0x1F is the tag (RFC 2868 §3.6); otherwise the tag is 0 and the whole value is
    /// the string.
    pub fn get_tagged_str(&self, typ: u8) -> Option<(u8, &'a str)> {
        let (tag, v) = split_tagged_string(self.get(typ)?);
        std::str::from_utf8(v).ok().map(|s| (tag, s))
    }

    /// Sub-attributes `(vendor_type, value)` of every Vendor-Specific attribute of this vendor
    /// that uses the RFC 2865 §5.26 suggested format. A VSA whose content does not parse as
    /// that format is skipped from the first bad sub-attribute on (the packet itself stays
    /// valid: the RFC does not mandate the format).
    pub fn vendor_attributes(&self, vendor_id: u32) -> VendorAttributes<'a> {
        VendorAttributes {
            attrs: self.attributes(),
            vendor: Some(vendor_id),
            current_vendor: 0,
            current: SubAttributes { rest: &[] },
        }
    }

    /// Every vendor sub-attribute as `(vendor_id, vendor_type, value)`.
    pub fn all_vendor_attributes(&self) -> impl Iterator<Item = (u32, u8, &'a [u8])> + use<'a> {
        let mut it = VendorAttributes {
            attrs: self.attributes(),
            vendor: None,
            current_vendor: 0,
            current: SubAttributes { rest: &[] },
        };
        std::iter::from_fn(move || {
            let (t, v) = it.next()?;
            Some((it.current_vendor, t, v))
        })
    }

    /// Whether a Message-Authenticator is present (its validity is checked by
    /// [`crate::verify_request`] / [`crate::verify_response`]).
    pub fn has_message_authenticator(&self) -> bool {
        self.ma_offset.is_some()
    }

    /// Offset of the Message-Authenticator value inside [`Packet::as_bytes`].
    pub(crate) fn ma_offset(&self) -> Option<usize> {
        self.ma_offset.map(usize::from)
    }
}

/// Attribute types whose wrong length makes the whole packet malformed instead of one invalid
/// attribute: the packet's authentication or its EAP conversation depends on them.
pub const STRICT_LENGTH: [u8; 4] = [
    crate::dict::MESSAGE_AUTHENTICATOR,
    crate::dict::USER_PASSWORD,
    crate::dict::CHAP_PASSWORD,
    crate::dict::EAP_MESSAGE,
];

fn value_len_allowed(typ: u8, len: usize) -> bool {
    let (min, max) = VALUE_LEN_BOUNDS[usize::from(typ)];
    (usize::from(min)..=usize::from(max)).contains(&len)
}

/// RFC 2868 §3.6: a leading octet 0x00..=0x1F is a tag; anything else starts the string.
pub(crate) fn split_tagged_string(v: &[u8]) -> (u8, &[u8]) {
    match v.split_first() {
        Some((&t, rest)) if t <= 0x1f => (t, rest),
        _ => (0, v),
    }
}

/// One attribute as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawAttribute<'a> {
    /// Type octet.
    pub typ: u8,
    /// Value (without the type and length octets).
    pub value: &'a [u8],
}

impl RawAttribute<'_> {
    /// Dictionary definition, if known.
    pub fn def(&self) -> Option<&'static dict::AttrDef> {
        dict::by_type(self.typ)
    }
}

/// Iterator over the attributes of a [`Packet`] (or any attribute area). Stops at the first
/// malformed attribute, which cannot happen for a decoded packet.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    /// Iterates over a raw attribute area (e.g. a builder's attributes).
    pub fn new(area: &'a [u8]) -> Self {
        Attributes { rest: area }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        let (typ, len) = match self.rest {
            [t, l, ..] if usize::from(*l) >= 2 && usize::from(*l) <= self.rest.len() => {
                (*t, usize::from(*l))
            }
            _ => {
                self.rest = &[];
                return None;
            }
        };
        let (attr, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(RawAttribute {
            typ,
            value: &attr[2..],
        })
    }
}

/// `(vendor_id, sub-attributes)` of a Vendor-Specific value, if it has a vendor id.
pub(crate) fn vsa_parts(value: &[u8]) -> Option<(u32, SubAttributes<'_>)> {
    let (id, rest) = value.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*id), SubAttributes { rest }))
}

/// Sub-attributes of one VSA in the RFC 2865 §5.26 suggested format.
#[derive(Debug, Clone)]
pub(crate) struct SubAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubAttributes<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        match self.rest {
            [t, l, ..] if usize::from(*l) >= 2 && usize::from(*l) <= self.rest.len() => {
                let (sub, rest) = self.rest.split_at(usize::from(*l));
                self.rest = rest;
                Some((*t, &sub[2..]))
            }
            _ => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Iterator returned by [`Packet::vendor_attributes`].
#[derive(Debug, Clone)]
pub struct VendorAttributes<'a> {
    attrs: Attributes<'a>,
    vendor: Option<u32>,
    current_vendor: u32,
    current: SubAttributes<'a>,
}

impl<'a> Iterator for VendorAttributes<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        loop {
            if let Some(x) = self.current.next() {
                return Some(x);
            }
            let a = self.attrs.next()?;
            if a.typ != VENDOR_SPECIFIC {
                continue;
            }
            if let Some((id, subs)) = vsa_parts(a.value)
                && self.vendor.is_none_or(|v| v == id)
            {
                self.current_vendor = id;
                self.current = subs;
            }
        }
    }
}

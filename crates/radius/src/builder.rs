//! Building and signing packets.

use std::net::Ipv4Addr;

use crate::auth::{
    MAX_SALTED_LEN, MAX_USER_PASSWORD_LEN, ZERO16, hide_in_place,
    message_authenticator as compute_ma, packet_digest, salt_encrypt,
};
use crate::dict::{
    EAP_MESSAGE, MESSAGE_AUTHENTICATOR, PROXY_STATE, USER_PASSWORD, VENDOR_SPECIFIC,
};
use crate::packet::Attributes;
use crate::{Code, EncodeError, HEADER_LEN, MAX_ATTRIBUTE_VALUE_LEN, MAX_PACKET_LEN, Packet};

/// Octets a Message-Authenticator attribute takes (type, length, 16-octet value).
const MA_ATTR_LEN: usize = 18;

/// Maximum size of the attribute area of a builder: 4096 − 20 (header) − 18 (room always kept
/// for the Message-Authenticator the encoder may insert).
pub const MAX_ATTRIBUTES_LEN: usize = MAX_PACKET_LEN - HEADER_LEN - MA_ATTR_LEN;

/// Builds a packet: attributes are appended in order, then one of the `encode_*` methods adds
/// the header, the Message-Authenticator (always as the **first** attribute) and the
/// authenticator.
///
/// Message-Authenticator cannot be added by hand ([`EncodeError::ReservedAttribute`]); the
/// encoders insert it. 18 octets are kept free for it, so the attributes may total at most
/// [`MAX_ATTRIBUTES_LEN`] octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketBuilder {
    code: Code,
    identifier: u8,
    attrs: Vec<u8>,
    has_eap: bool,
}

impl PacketBuilder {
    /// New, empty packet.
    pub fn new(code: Code, identifier: u8) -> Self {
        PacketBuilder {
            code,
            identifier,
            attrs: Vec::new(),
            has_eap: false,
        }
    }

    /// Empties the builder for reuse, keeping its allocation.
    pub fn reset(&mut self, code: Code, identifier: u8) {
        self.code = code;
        self.identifier = identifier;
        self.attrs.clear();
        self.has_eap = false;
    }

    /// Code of the packet being built.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Identifier (ignored by [`PacketBuilder::encode_response`], which uses the request's).
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// The attributes added so far, as wire bytes.
    pub fn attribute_bytes(&self) -> &[u8] {
        &self.attrs
    }

    /// The attributes added so far.
    pub fn attributes(&self) -> Attributes<'_> {
        Attributes::new(&self.attrs)
    }

    /// Appends attribute bytes taken from another builder (already validated by it).
    pub(crate) fn extend_raw(&mut self, attrs: &[u8]) {
        debug_assert!(self.attrs.len() + attrs.len() <= MAX_ATTRIBUTES_LEN);
        self.has_eap |= Attributes::new(attrs).any(|a| a.typ == EAP_MESSAGE);
        self.attrs.extend_from_slice(attrs);
    }

    fn reserve_room(&self, value_len: usize) -> Result<(), EncodeError> {
        if value_len > MAX_ATTRIBUTE_VALUE_LEN {
            return Err(EncodeError::ValueTooLong { len: value_len });
        }
        if self.attrs.len() + 2 + value_len > MAX_ATTRIBUTES_LEN {
            return Err(EncodeError::PacketTooLong);
        }
        Ok(())
    }

    fn push_header(&mut self, typ: u8, value_len: usize) -> Result<(), EncodeError> {
        if typ == MESSAGE_AUTHENTICATOR {
            return Err(EncodeError::ReservedAttribute(typ));
        }
        self.reserve_room(value_len)?;
        self.has_eap |= typ == EAP_MESSAGE;
        // value_len <= 253 checked above.
        self.attrs.extend_from_slice(&[typ, (value_len + 2) as u8]);
        Ok(())
    }

    /// Appends an attribute. The value is at most 253 octets (RFC 2865 §5).
    pub fn add(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        self.push_header(typ, value.len())?;
        self.attrs.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a text attribute.
    pub fn add_str(&mut self, typ: u8, value: &str) -> Result<&mut Self, EncodeError> {
        self.add(typ, value.as_bytes())
    }

    /// Appends a 32-bit integer (big endian).
    pub fn add_u32(&mut self, typ: u8, value: u32) -> Result<&mut Self, EncodeError> {
        self.add(typ, &value.to_be_bytes())
    }

    /// Appends an IPv4 address.
    pub fn add_ipv4(&mut self, typ: u8, value: Ipv4Addr) -> Result<&mut Self, EncodeError> {
        self.add(typ, &value.octets())
    }

    /// Appends an RFC 2868 tagged integer (Tunnel-Type, Tunnel-Medium-Type, Tunnel-Preference):
    /// the tag replaces the high octet (RFC 2868 §3.1, §3.2), so the value has 24 bits.
    /// Tag 0 means "no tag" and is sent as 0x00 (RFC 2868 §3.1: the Tag field MUST be zero if
    /// unused): `Tunnel-Type = VLAN` → `40 06 00 00 00 0d`.
    pub fn add_tagged_u32(
        &mut self,
        typ: u8,
        tag: u8,
        value: u32,
    ) -> Result<&mut Self, EncodeError> {
        check_tag(tag)?;
        if value > 0x00ff_ffff {
            return Err(EncodeError::ValueOutOfRange(value));
        }
        self.add_u32(typ, (u32::from(tag) << 24) | value)
    }

    /// Appends an RFC 2868 tagged string (Tunnel-Private-Group-Id, Tunnel-Assignment-Id, …).
    ///
    /// A tag 0x01..=0x1F is written as the first octet. For tag 0, RFC 2868 §3.6 lets the tag
    /// octet be omitted only when the receiver cannot mistake the first octet of the string
    /// for a tag, i.e. when that octet is > 0x1F. So tag 0 is omitted for such strings — this
    /// is byte-for-byte what FreeRADIUS emits for `Tunnel-Private-Group-Id = "100"`
    /// (`51 05 31 30 30`, FreeRADIUS never writes a tag octet for tag 0) and what every switch
    /// expects — and written as an explicit 0x00 octet when the string is empty or starts
    /// with 0x00..=0x1F (where FreeRADIUS would emit an ambiguous value).
    pub fn add_tagged_str(
        &mut self,
        typ: u8,
        tag: u8,
        value: &str,
    ) -> Result<&mut Self, EncodeError> {
        check_tag(tag)?;
        let bytes = value.as_bytes();
        let need_tag = tag != 0 || bytes.first().is_none_or(|&b| b <= 0x1f);
        if need_tag {
            self.push_header(typ, bytes.len() + 1)?;
            self.attrs.push(tag);
            self.attrs.extend_from_slice(bytes);
            Ok(self)
        } else {
            self.add(typ, bytes)
        }
    }

    /// Appends a Vendor-Specific attribute with one sub-attribute in the RFC 2865 §5.26
    /// suggested format: `26 len vendor-id(4) vendor-type vendor-length value`. The value is at
    /// most 247 octets.
    pub fn add_vendor(
        &mut self,
        vendor_id: u32,
        vendor_type: u8,
        value: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        if value.len() > MAX_ATTRIBUTE_VALUE_LEN - 6 {
            return Err(EncodeError::ValueTooLong { len: value.len() });
        }
        self.push_header(VENDOR_SPECIFIC, value.len() + 6)?;
        self.attrs.extend_from_slice(&vendor_id.to_be_bytes());
        self.attrs
            .extend_from_slice(&[vendor_type, (value.len() + 2) as u8]);
        self.attrs.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a User-Password hidden as RFC 2865 §5.2 says (NUL padding to a multiple of 16,
    /// then the MD5 chain keyed with the secret and the Request Authenticator). The password
    /// is at most 128 octets. `request_authenticator` must be the one later passed to
    /// [`PacketBuilder::encode_request`].
    pub fn add_user_password(
        &mut self,
        password: &[u8],
        secret: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<&mut Self, EncodeError> {
        if password.len() > MAX_USER_PASSWORD_LEN {
            return Err(EncodeError::PasswordTooLong {
                len: password.len(),
            });
        }
        let mut buf = [0u8; MAX_USER_PASSWORD_LEN];
        // At least one block, even for an empty password (RFC 2865 §5.2: Length ≥ 18).
        let len = password.len().div_ceil(16).max(1) * 16;
        buf[..password.len()].copy_from_slice(password);
        hide_in_place(&mut buf[..len], secret, &[request_authenticator]);
        self.add(USER_PASSWORD, &buf[..len])
    }

    /// Appends a Tunnel-Password (RFC 2868 §3.5): `tag ‖ salt ‖ encrypted(len ‖ password ‖ pad)`.
    /// `request_authenticator` is the Access-Request's when this goes into an Access-Accept.
    /// The caller supplies a salt unique per attribute (RFC 2868 §3.5); its high bit is forced
    /// on as the RFC requires. The password is at most 239 octets.
    pub fn add_tunnel_password(
        &mut self,
        tag: u8,
        password: &[u8],
        secret: &[u8],
        request_authenticator: &[u8; 16],
        salt: [u8; 2],
    ) -> Result<&mut Self, EncodeError> {
        check_tag(tag)?;
        if password.len() > MAX_SALTED_LEN {
            return Err(EncodeError::PasswordTooLong {
                len: password.len(),
            });
        }
        let mut buf = [0u8; MAX_ATTRIBUTE_VALUE_LEN];
        buf[0] = tag;
        let salt = [salt[0] | 0x80, salt[1]];
        let n = salt_encrypt(&mut buf[1..], password, secret, request_authenticator, salt);
        self.add(crate::dict::TUNNEL_PASSWORD, &buf[..1 + n])
    }

    /// Appends an MS-MPPE-Send-Key (16) or MS-MPPE-Recv-Key (17) (RFC 2548 §2.4.2/2.4.3) as a
    /// Microsoft Vendor-Specific attribute: `salt ‖ encrypted(len ‖ key ‖ pad)`. Salt as for
    /// [`PacketBuilder::add_tunnel_password`] (unique per attribute, high bit forced on).
    pub fn add_mppe_key(
        &mut self,
        vendor_type: u8,
        key: &[u8],
        secret: &[u8],
        request_authenticator: &[u8; 16],
        salt: [u8; 2],
    ) -> Result<&mut Self, EncodeError> {
        // 253 − 6 (VSA headers) − 2 (salt) = 245 → 240 octets of ciphertext → 239 key octets.
        if key.len() > MAX_SALTED_LEN {
            return Err(EncodeError::PasswordTooLong { len: key.len() });
        }
        let mut buf = [0u8; MAX_ATTRIBUTE_VALUE_LEN];
        let salt = [salt[0] | 0x80, salt[1]];
        let n = salt_encrypt(&mut buf, key, secret, request_authenticator, salt);
        self.add_vendor(crate::dict::vendor::MICROSOFT, vendor_type, &buf[..n])
    }

    /// Copies every Proxy-State of `request`, in order. RFC 2865 §5.33: a server MUST copy them
    /// unmodified into its reply. The encoders do **not** do this implicitly.
    pub fn copy_proxy_state(&mut self, request: &Packet<'_>) -> Result<&mut Self, EncodeError> {
        for v in request.get_all(PROXY_STATE) {
            self.add(PROXY_STATE, v)?;
        }
        Ok(self)
    }

    /// Writes header, optional Message-Authenticator placeholder and attributes into `out`
    /// (cleared first). Returns the offset of the MA value if one was written.
    fn write(
        &self,
        identifier: u8,
        authenticator: &[u8; 16],
        with_ma: bool,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        let len = HEADER_LEN + if with_ma { MA_ATTR_LEN } else { 0 } + self.attrs.len();
        debug_assert!(len <= MAX_PACKET_LEN);
        out.clear();
        out.reserve(len);
        out.push(self.code.as_u8());
        out.push(identifier);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(authenticator);
        let ma = if with_ma {
            out.extend_from_slice(&[MESSAGE_AUTHENTICATOR, MA_ATTR_LEN as u8]);
            out.extend_from_slice(&ZERO16);
            Some(HEADER_LEN + 2)
        } else {
            None
        };
        out.extend_from_slice(&self.attrs);
        ma
    }

    /// Whether an MA is mandatory whatever the caller asks: Status-Server (RFC 5997 §3) and
    /// any packet carrying EAP-Message (RFC 3579 §3.3).
    fn ma_mandatory(&self) -> bool {
        self.code == Code::StatusServer || self.has_eap
    }

    /// Encodes an Access-Request / Status-Server (client side, e.g. the load generator). The
    /// caller supplies the random Request Authenticator (RFC 2865 §3: unpredictable and unique).
    /// If `message_authenticator` is true — or the packet is a Status-Server or carries
    /// EAP-Message, where it is mandatory — Message-Authenticator is the **first** attribute
    /// (BlastRADIUS).
    pub fn encode_request(
        &self,
        request_authenticator: [u8; 16],
        secret: &[u8],
        message_authenticator: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_request_into(
            request_authenticator,
            secret,
            message_authenticator,
            &mut out,
        );
        out
    }

    /// [`PacketBuilder::encode_request`] into a reused buffer.
    pub fn encode_request_into(
        &self,
        request_authenticator: [u8; 16],
        secret: &[u8],
        message_authenticator: bool,
        out: &mut Vec<u8>,
    ) {
        let with_ma = message_authenticator || self.ma_mandatory();
        if let Some(off) = self.write(self.identifier, &request_authenticator, with_ma, out) {
            let mac = compute_ma(out, &request_authenticator, off, secret);
            out[off..off + 16].copy_from_slice(&mac);
        }
    }

    /// Encodes an Accounting-Request / CoA-Request / Disconnect-Request: computes the Request
    /// Authenticator `MD5(Code‖ID‖Length‖16×0‖Attributes‖Secret)` (RFC 2866 §3, RFC 5176 §2.3).
    /// With `message_authenticator` (or EAP-Message present) MA is the first attribute,
    /// computed over the packet with a zeroed Authenticator field, before the Request
    /// Authenticator (see [`crate::auth`]).
    pub fn encode_accounting_request(&self, secret: &[u8], message_authenticator: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_accounting_request_into(secret, message_authenticator, &mut out);
        out
    }

    /// [`PacketBuilder::encode_accounting_request`] into a reused buffer.
    pub fn encode_accounting_request_into(
        &self,
        secret: &[u8],
        message_authenticator: bool,
        out: &mut Vec<u8>,
    ) {
        let with_ma = message_authenticator || self.ma_mandatory();
        if let Some(off) = self.write(self.identifier, &ZERO16, with_ma, out) {
            let mac = compute_ma(out, &ZERO16, off, secret);
            out[off..off + 16].copy_from_slice(&mac);
        }
        let auth = packet_digest(out, &ZERO16, secret);
        out[4..HEADER_LEN].copy_from_slice(&auth);
    }

    /// Encodes a reply to `request` (identifier taken from the request).
    ///
    /// Response Authenticator = `MD5(Code‖ID‖Length‖RequestAuth‖Attributes‖Secret)`
    /// (RFC 2865 §3). Message-Authenticator is included as the **first** attribute:
    /// * always for Access-Accept/Reject/Challenge (BlastRADIUS, CVE-2024-3596);
    /// * always when answering a Status-Server (RFC 5997 §3);
    /// * when the reply carries EAP-Message (RFC 3579 §3.3);
    /// * for other replies (Accounting-Response, CoA/Disconnect-ACK/NAK) when the request
    ///   carried one.
    ///
    /// It is computed over the reply with the *request* authenticator in the Authenticator
    /// field, before the Response Authenticator (RFC 3579 §3.2).
    ///
    /// Proxy-State is not copied implicitly: call [`PacketBuilder::copy_proxy_state`].
    pub fn encode_response(&self, request: &Packet<'_>, secret: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_response_into(request, secret, &mut out);
        out
    }

    /// [`PacketBuilder::encode_response`] into a reused buffer (cleared first). Does not
    /// allocate once `out` has capacity for the reply.
    pub fn encode_response_into(&self, request: &Packet<'_>, secret: &[u8], out: &mut Vec<u8>) {
        // Access replies always carry one (BlastRADIUS), Status-Server answers too (RFC 5997
        // §3). An Accounting-Response to an Accounting-Request never does, even when the request
        // had one: RFC 3579 defines no computation for it, and deployed clients (FreeRADIUS
        // 3.2's radclient among them) reject the one an Access reply would get. It carries no
        // authorization, and its Response Authenticator already authenticates it.
        let with_ma = self.code.is_access_reply()
            || request.code() == Code::StatusServer
            || self.has_eap
            || (request.has_message_authenticator() && self.code != Code::AccountingResponse);
        self.encode_reply_raw(
            request.identifier(),
            request.authenticator(),
            secret,
            with_ma,
            out,
        );
    }

    /// Low-level reply encoder with explicit identifier, request authenticator and MA choice.
    ///
    /// `message_authenticator = false` for an Access-Accept/Reject/Challenge re-opens
    /// BlastRADIUS (CVE-2024-3596); this exists to reproduce the RFC 2865/5997 example packets
    /// (which predate that) and for tests. Servers use [`PacketBuilder::encode_response_into`].
    pub fn encode_reply_raw(
        &self,
        request_identifier: u8,
        request_authenticator: &[u8; 16],
        secret: &[u8],
        message_authenticator: bool,
        out: &mut Vec<u8>,
    ) {
        if let Some(off) = self.write(
            request_identifier,
            request_authenticator,
            message_authenticator,
            out,
        ) {
            let mac = compute_ma(out, request_authenticator, off, secret);
            out[off..off + 16].copy_from_slice(&mac);
        }
        let auth = packet_digest(out, request_authenticator, secret);
        out[4..HEADER_LEN].copy_from_slice(&auth);
    }
}

fn check_tag(tag: u8) -> Result<(), EncodeError> {
    if tag > 0x1f {
        Err(EncodeError::InvalidTag(tag))
    } else {
        Ok(())
    }
}

//! The cluster hop: how a front server forwards a switch's request to another member's
//! backend port and relays the answer back.
//!
//! # The Ironfence-Hop attribute (type 224)
//! RFC 3575 §2.1 reserves attribute types 192–223 for experimental use and **224–240 as
//! "Implementation Specific"**: not for interoperability, only between parts of one
//! implementation. ironfence uses 224 between its own members only; a front server strips any
//! 224 a switch sends before forwarding, and a backend port accepts only members (by source
//! address) that sign with the hop secret.
//!
//! ```text
//!  value: version(1) = 1 ‖ flags(1) ‖ request id (8, big endian) ‖ family(1) ‖ address (0/4/16)
//!         family: 0 none, 4 IPv4, 6 IPv6 (the switch the front server received the request from)
//!         flags:  0x01 maintenance (draining), 0x02 read-only database   (Status-Server answers)
//! ```
//!
//! # Re-signing
//! Forwarding ([`forward_request`]) builds a new request with the hop's identifier, a fresh
//! Request Authenticator (Access-Request) or the computed one (Accounting-Request), and the
//! switch's attributes in their order (Proxy-State included, RFC 2865 §5.33) except:
//! * User-Password is unhidden with the switch's secret and hidden again with the hop secret
//!   and the new authenticator (RFC 2865 §5.2);
//! * CHAP-Password without CHAP-Challenge used the Request Authenticator as its challenge
//!   (RFC 2865 §2.2): the old authenticator is added as CHAP-Challenge;
//! * Message-Authenticator is always written (first) and computed with the hop secret;
//! * any Ironfence-Hop from the switch is dropped; ours is appended.
//!
//! Relaying ([`verify_backend_reply`], [`relay_reply`]): the backend's answer is verified
//! with the hop secret (Response Authenticator, and Message-Authenticator required on access
//! replies), then rebuilt for the switch: same code, same attributes in order (minus MA and
//! Ironfence-Hop), Tunnel-Password and MS-MPPE-Send/Recv-Key decrypted with the hop secret and
//! the hop request's authenticator and encrypted again with the switch's (salts kept: they are
//! unique per attribute, and the key stream changes with the secret). The caller encodes the
//! returned builder as a reply to the switch's request (its identifier, MA first, the switch's
//! secret).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::auth::{salt_decrypt, salt_encrypt};
use crate::dict::{
    CHAP_CHALLENGE, CHAP_PASSWORD, MESSAGE_AUTHENTICATOR, TUNNEL_PASSWORD, USER_PASSWORD,
    VENDOR_SPECIFIC, vendor,
};
use crate::packet::vsa_parts;
use crate::{
    Code, DecodeError, EncodeError, MAX_ATTRIBUTE_VALUE_LEN, Packet, PacketBuilder, ResponseError,
    decrypt_tunnel_password, unhide_user_password, verify_response,
};

/// Ironfence-Hop: RFC 3575's implementation-specific range (see the module docs).
pub const IRONFENCE_HOP: u8 = 224;
const VERSION: u8 = 1;
/// MS-MPPE-Send-Key, MS-MPPE-Recv-Key (RFC 2548 §2.4.2, §2.4.3).
const MPPE_KEYS: [u8; 2] = [16, 17];

/// Flags carried by the hop attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HopFlags(pub u8);

impl HopFlags {
    /// The member is in maintenance: no new conversations.
    pub const MAINTENANCE: u8 = 0x01;
    /// The member's database is read-only.
    pub const READ_ONLY: u8 = 0x02;

    /// Flags from the two facts.
    pub fn new(maintenance: bool, read_only: bool) -> HopFlags {
        HopFlags(
            if maintenance { Self::MAINTENANCE } else { 0 }
                | if read_only { Self::READ_ONLY } else { 0 },
        )
    }

    /// Maintenance (drain).
    pub fn maintenance(self) -> bool {
        self.0 & Self::MAINTENANCE != 0
    }

    /// Read-only database.
    pub fn read_only(self) -> bool {
        self.0 & Self::READ_ONLY != 0
    }
}

/// The hop attribute's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Flags.
    pub flags: HopFlags,
    /// The front server's request id (the audit record on the backend carries it).
    pub request_id: u64,
    /// The switch the request came from.
    pub client: Option<IpAddr>,
}

/// Why a hop could not be built or relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopError {
    /// The hop attribute is absent.
    #[error("no Ironfence-Hop attribute")]
    Missing,
    /// The hop attribute is malformed.
    #[error("malformed Ironfence-Hop attribute")]
    Malformed,
    /// A hidden value (User-Password, Tunnel-Password, MPPE key) could not be decrypted.
    #[error("hidden attribute: {0}")]
    Decode(#[from] DecodeError),
    /// The rebuilt packet does not fit.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The backend's reply is not authentic.
    #[error("backend reply: {0}")]
    Response(#[from] ResponseError),
    /// The backend's access reply has no Message-Authenticator.
    #[error("backend reply without Message-Authenticator")]
    MissingMessageAuthenticator,
    /// Not a code the hop forwards.
    #[error("code {0:?} is not forwarded")]
    UnexpectedCode(Code),
}

impl HopError {
    /// Counter label.
    pub fn label(&self) -> &'static str {
        match self {
            HopError::Missing => "hop_missing",
            HopError::Malformed => "hop_malformed",
            HopError::Decode(_) => "hop_hidden_value",
            HopError::Encode(_) => "hop_too_long",
            HopError::Response(_) => "bad_backend_reply",
            HopError::MissingMessageAuthenticator => "bad_backend_reply",
            HopError::UnexpectedCode(_) => "hop_unexpected_code",
        }
    }
}

impl Hop {
    /// The attribute value.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(27);
        v.push(VERSION);
        v.push(self.flags.0);
        v.extend_from_slice(&self.request_id.to_be_bytes());
        match self.client {
            None => v.push(0),
            Some(IpAddr::V4(a)) => {
                v.push(4);
                v.extend_from_slice(&a.octets());
            }
            Some(IpAddr::V6(a)) => {
                v.push(6);
                v.extend_from_slice(&a.octets());
            }
        }
        v
    }

    /// Parses an attribute value. Never panics.
    pub fn decode(value: &[u8]) -> Result<Hop, HopError> {
        let [VERSION, flags, rest @ ..] = value else {
            return Err(HopError::Malformed);
        };
        let Some((id, rest)) = rest.split_first_chunk::<8>() else {
            return Err(HopError::Malformed);
        };
        let client = match rest {
            [0] => None,
            [4, a @ ..] => Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(a).map_err(|_| HopError::Malformed)?,
            ))),
            [6, a @ ..] => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(a).map_err(|_| HopError::Malformed)?,
            ))),
            _ => return Err(HopError::Malformed),
        };
        Ok(Hop {
            flags: HopFlags(*flags),
            request_id: u64::from_be_bytes(*id),
            client,
        })
    }

    /// The hop attribute of `packet` (exactly one is allowed).
    pub fn find(packet: &Packet<'_>) -> Result<Hop, HopError> {
        let mut all = packet.get_all(IRONFENCE_HOP);
        let first = all.next().ok_or(HopError::Missing)?;
        if all.next().is_some() {
            return Err(HopError::Malformed);
        }
        Hop::decode(first)
    }
}

/// The switch's `request` re-signed for the hop (see the module docs). `authenticator` is a
/// fresh random Request Authenticator (used for Access-Requests only; an Accounting-Request's
/// is computed).
pub fn forward_request(
    request: &Packet<'_>,
    switch_secret: &[u8],
    hop_secret: &[u8],
    identifier: u8,
    authenticator: [u8; 16],
    hop: &Hop,
) -> Result<Vec<u8>, HopError> {
    let code = request.code();
    if !matches!(code, Code::AccessRequest | Code::AccountingRequest) {
        return Err(HopError::UnexpectedCode(code));
    }
    let mut b = PacketBuilder::new(code, identifier);
    let chap_without_challenge =
        request.get(CHAP_PASSWORD).is_some() && request.get(CHAP_CHALLENGE).is_none();
    for a in request.attributes() {
        match a.typ {
            MESSAGE_AUTHENTICATOR | IRONFENCE_HOP => {}
            USER_PASSWORD if code == Code::AccessRequest => {
                let plain = unhide_user_password(a.value, switch_secret, request.authenticator())?;
                b.add_user_password(&plain, hop_secret, &authenticator)?;
            }
            t => {
                b.add(t, a.value)?;
            }
        }
    }
    if chap_without_challenge && code == Code::AccessRequest {
        b.add(CHAP_CHALLENGE, request.authenticator())?;
    }
    b.add(IRONFENCE_HOP, &hop.encode())?;
    Ok(match code {
        Code::AccessRequest => b.encode_request(authenticator, hop_secret, true),
        _ => b.encode_accounting_request(hop_secret, true),
    })
}

/// A Status-Server probe for the hop (RFC 5997: Message-Authenticator included).
pub fn status_server(identifier: u8, authenticator: [u8; 16], hop_secret: &[u8]) -> Vec<u8> {
    PacketBuilder::new(Code::StatusServer, identifier).encode_request(
        authenticator,
        hop_secret,
        true,
    )
}

/// Verifies a backend's reply to the hop request sent with `identifier` / `authenticator`:
/// Response Authenticator and Message-Authenticator with the hop secret, Message-Authenticator
/// required on access replies and Status-Server answers (the hop is ours: no legacy
/// exceptions).
pub fn verify_backend_reply<'a>(
    reply: &'a [u8],
    identifier: u8,
    authenticator: &[u8; 16],
    hop_secret: &[u8],
) -> Result<Packet<'a>, HopError> {
    let p = verify_response(reply, identifier, authenticator, hop_secret)?;
    if p.code().is_access_reply() && !p.has_message_authenticator() {
        return Err(HopError::MissingMessageAuthenticator);
    }
    Ok(p)
}

/// The backend's verified `reply` (to the hop request signed with `hop_authenticator`)
/// rebuilt for the switch's `switch_request`: encode it with
/// [`PacketBuilder::encode_response`] and the switch's secret.
pub fn relay_reply(
    reply: &Packet<'_>,
    hop_secret: &[u8],
    hop_authenticator: &[u8; 16],
    switch_request: &Packet<'_>,
    switch_secret: &[u8],
) -> Result<PacketBuilder, HopError> {
    let switch_auth = switch_request.authenticator();
    let mut b = PacketBuilder::new(reply.code(), switch_request.identifier());
    for a in reply.attributes() {
        match a.typ {
            MESSAGE_AUTHENTICATOR | IRONFENCE_HOP => {}
            TUNNEL_PASSWORD => {
                let (tag, password) =
                    decrypt_tunnel_password(a.value, hop_secret, hop_authenticator)?;
                let salt = [a.value[1], a.value[2]]; // present: decryption checked the length
                b.add_tunnel_password(tag, &password, switch_secret, switch_auth, salt)?;
            }
            VENDOR_SPECIFIC => {
                let value = rehide_vsa(
                    a.value,
                    hop_secret,
                    hop_authenticator,
                    switch_secret,
                    switch_auth,
                )?;
                b.add(VENDOR_SPECIFIC, &value)?;
            }
            t => {
                b.add(t, a.value)?;
            }
        }
    }
    Ok(b)
}

/// A Microsoft VSA with its MPPE keys re-encrypted; any other VSA unchanged.
fn rehide_vsa(
    value: &[u8],
    from_secret: &[u8],
    from_auth: &[u8; 16],
    to_secret: &[u8],
    to_auth: &[u8; 16],
) -> Result<Vec<u8>, HopError> {
    let Some((vendor_id, subs)) = vsa_parts(value) else {
        return Ok(value.to_vec());
    };
    if vendor_id != vendor::MICROSOFT {
        return Ok(value.to_vec());
    }
    let mut out = Vec::with_capacity(value.len());
    out.extend_from_slice(&vendor_id.to_be_bytes());
    let mut covered = 4;
    for (t, v) in subs {
        covered += 2 + v.len();
        if MPPE_KEYS.contains(&t) {
            let key = salt_decrypt(v, from_secret, from_auth)?;
            let salt = [v[0], v[1]]; // present: decryption checked the length
            let mut buf = [0u8; MAX_ATTRIBUTE_VALUE_LEN];
            let n = salt_encrypt(&mut buf, &key, to_secret, to_auth, salt);
            out.extend_from_slice(&[t, (n + 2) as u8]);
            out.extend_from_slice(&buf[..n]);
        } else {
            out.extend_from_slice(&[t, (v.len() + 2) as u8]);
            out.extend_from_slice(v);
        }
    }
    // Bytes that do not parse as sub-attributes are kept as they are.
    out.extend_from_slice(&value[covered.min(value.len())..]);
    Ok(out)
}

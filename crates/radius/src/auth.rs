//! Authenticators, Message-Authenticator and hidden attribute values.
//!
//! # Which bytes are hashed (and in which order)
//!
//! | packet | Authenticator field | Message-Authenticator (HMAC-MD5, MA value zeroed) |
//! |---|---|---|
//! | Access-Request, Status-Server | random, chosen by the client | over the packet as sent (RFC 3579 §3.2, RFC 5997 §3) |
//! | Accounting-Request, CoA-Request, Disconnect-Request | `MD5(Code‖ID‖Length‖16×0‖Attributes‖Secret)` (RFC 2866 §3, RFC 5176 §2.3) | over the packet with the Authenticator field set to **16 zero octets**; computed first, then the Request Authenticator is computed over the packet containing the final MA |
//! | any reply | `MD5(Code‖ID‖Length‖RequestAuth‖Attributes‖Secret)` (RFC 2865 §3) | over the reply with the **Request** Authenticator in the Authenticator field; computed before the Response Authenticator (RFC 3579 §3.2) |
//!
//! For Accounting/CoA/Disconnect requests the RFCs only say that Message-Authenticator is
//! HMAC-MD5 as in RFC 3579 and that the Request Authenticator is computed over 16 zero octets
//! (RFC 2866 §3, RFC 5176 §2.3). The interoperable construction, implemented by FreeRADIUS
//! (`rad_sign` / `rad_verify`) and hostapd (`radius_msg_verify_das_req`), is the one above:
//! MA over the packet with the Authenticator field zeroed, then the Request Authenticator over
//! the packet containing that MA. There is no RFC test vector for it; the tests check the two
//! directions of this crate against each other and the order of computation.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::{Code, DecodeError, HEADER_LEN, Packet, ResponseError};

type HmacMd5 = Hmac<Md5>;

pub(crate) const ZERO16: [u8; 16] = [0; 16];

/// HMAC-MD5 of `packet` with the Authenticator field replaced by `auth` and the 16 octets at
/// `ma_value` replaced by zeros. Does not allocate or copy the packet.
pub(crate) fn message_authenticator(
    packet: &[u8],
    auth: &[u8; 16],
    ma_value: usize,
    secret: &[u8],
) -> [u8; 16] {
    let mut mac = HmacMd5::new_from_slice(secret).expect("HMAC-MD5 accepts keys of any length");
    mac.update(&packet[..4]);
    mac.update(auth);
    mac.update(&packet[HEADER_LEN..ma_value]);
    mac.update(&ZERO16);
    mac.update(&packet[ma_value + 16..]);
    mac.finalize().into_bytes().into()
}

/// `MD5(Code‖ID‖Length‖auth‖Attributes‖Secret)`.
pub(crate) fn packet_digest(packet: &[u8], auth: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(&packet[..4]);
    h.update(auth);
    h.update(&packet[HEADER_LEN..]);
    h.update(secret);
    h.finalize().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Result of [`verify_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCheck {
    /// A Message-Authenticator was present (and valid). Whether it is *required* is the
    /// server's policy (BlastRADIUS `require_message_authenticator`, RFC 5997 for
    /// Status-Server, RFC 3579 §3.3 when EAP-Message is present).
    pub message_authenticator: bool,
}

/// Server side: authenticates an incoming request with the client's shared secret.
///
/// * Access-Request / Status-Server: the Request Authenticator is random and cannot be checked;
///   the Message-Authenticator is verified if present (RFC 3579 §3.2: invalid → discard).
/// * Accounting-Request (RFC 2866 §3), CoA-Request and Disconnect-Request (RFC 5176 §2.3): the
///   Request Authenticator is verified; the Message-Authenticator too if present (computed with
///   a zeroed Authenticator field, see the module docs).
/// * Anything else: [`AuthError::UnexpectedCode`](crate::AuthError::UnexpectedCode).
///
/// All comparisons are constant time. Does not allocate.
pub fn verify_request(
    packet: &Packet<'_>,
    secret: &[u8],
) -> Result<RequestCheck, crate::AuthError> {
    use crate::AuthError;
    let bytes = packet.as_bytes();
    let ma = packet.ma_offset();
    match packet.code() {
        Code::AccessRequest | Code::StatusServer => {
            if let Some(off) = ma {
                let expected = message_authenticator(bytes, packet.authenticator(), off, secret);
                if !ct_eq(&expected, &bytes[off..off + 16]) {
                    return Err(AuthError::BadMessageAuthenticator);
                }
            }
        }
        Code::AccountingRequest | Code::CoaRequest | Code::DisconnectRequest => {
            let expected = packet_digest(bytes, &ZERO16, secret);
            if !ct_eq(&expected, packet.authenticator()) {
                return Err(AuthError::BadRequestAuthenticator);
            }
            if let Some(off) = ma {
                let expected = message_authenticator(bytes, &ZERO16, off, secret);
                if !ct_eq(&expected, &bytes[off..off + 16]) {
                    return Err(AuthError::BadMessageAuthenticator);
                }
            }
        }
        other => return Err(AuthError::UnexpectedCode(other)),
    }
    Ok(RequestCheck {
        message_authenticator: ma.is_some(),
    })
}

/// Client side: decodes `reply` and checks it answers the request we sent: identifier, Response
/// Authenticator (RFC 2865 §3) and Message-Authenticator if present (RFC 3579 §3.2). Whether a
/// missing Message-Authenticator is acceptable is the caller's decision
/// ([`Packet::has_message_authenticator`]). Request codes are refused.
pub fn verify_response<'a>(
    reply: &'a [u8],
    request_identifier: u8,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Packet<'a>, ResponseError> {
    let p = Packet::decode(reply)?;
    let code = p.code();
    if code.is_request() {
        return Err(ResponseError::UnexpectedCode(code));
    }
    if p.identifier() != request_identifier {
        return Err(ResponseError::IdentifierMismatch {
            expected: request_identifier,
            got: p.identifier(),
        });
    }
    let bytes = p.as_bytes();
    let expected = packet_digest(bytes, request_authenticator, secret);
    if !ct_eq(&expected, p.authenticator()) {
        return Err(ResponseError::BadResponseAuthenticator);
    }
    if let Some(off) = p.ma_offset() {
        let expected = message_authenticator(bytes, request_authenticator, off, secret);
        if !ct_eq(&expected, &bytes[off..off + 16]) {
            return Err(ResponseError::BadMessageAuthenticator);
        }
    }
    Ok(p)
}

/// Maximum User-Password plaintext (RFC 2865 §5.2).
pub const MAX_USER_PASSWORD_LEN: usize = 128;
/// Maximum Tunnel-Password / MPPE key plaintext: 1 length octet + data, padded to 16, must fit
/// in 253 − 3 (tag + salt) octets → 240 − 1.
pub const MAX_SALTED_LEN: usize = 239;

/// RFC 2865 §5.2 hiding, in place: `buf` holds the NUL-padded plaintext (a multiple of 16).
/// c(1) = p(1) ⊕ MD5(S‖RA), c(i) = p(i) ⊕ MD5(S‖c(i−1)).
pub(crate) fn hide_in_place(buf: &mut [u8], secret: &[u8], first: &[&[u8]]) {
    let mut prev_start: Option<usize> = None;
    for start in (0..buf.len()).step_by(16) {
        let mut h = Md5::new();
        h.update(secret);
        match prev_start {
            None => first.iter().for_each(|p| h.update(p)),
            Some(p) => h.update(&buf[p..p + 16]),
        }
        let b: [u8; 16] = h.finalize().into();
        for (x, k) in buf[start..start + 16].iter_mut().zip(b) {
            *x ^= k;
        }
        prev_start = Some(start);
    }
}

/// Inverse of [`hide_in_place`]: b(i) uses the *ciphertext* block i−1.
pub(crate) fn unhide(cipher: &[u8], secret: &[u8], first: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cipher.len());
    let mut prev: Option<&[u8]> = None;
    for block in cipher.chunks_exact(16) {
        let mut h = Md5::new();
        h.update(secret);
        match prev {
            None => first.iter().for_each(|p| h.update(p)),
            Some(p) => h.update(p),
        }
        let b: [u8; 16] = h.finalize().into();
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        prev = Some(block);
    }
    out
}

/// Recovers a User-Password (RFC 2865 §5.2) and strips the NUL padding.
///
/// The hidden value must be a multiple of 16 octets, 16..=128. A wrong secret is not
/// detectable here; it yields garbage.
pub fn unhide_user_password(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, DecodeError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_USER_PASSWORD_LEN
    {
        return Err(DecodeError::BadHiddenValue);
    }
    let mut p = unhide(hidden, secret, &[request_authenticator]);
    while p.last() == Some(&0) {
        p.pop();
    }
    Ok(p)
}

/// Builds a salt-encrypted value (RFC 2868 §3.5 / RFC 2548 §2.4.2): `salt ‖ encrypt(len ‖ data ‖ pad)`
/// into `out` (which must be large enough), returning the number of octets written.
pub(crate) fn salt_encrypt(
    out: &mut [u8],
    data: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
    salt: [u8; 2],
) -> usize {
    let plain_len = (1 + data.len()).div_ceil(16) * 16;
    out[..2].copy_from_slice(&salt);
    let body = &mut out[2..2 + plain_len];
    body.fill(0);
    body[0] = data.len() as u8;
    body[1..1 + data.len()].copy_from_slice(data);
    hide_in_place(body, secret, &[request_authenticator, &salt]);
    2 + plain_len
}

/// Inverse of [`salt_encrypt`] on `salt ‖ ciphertext`.
pub(crate) fn salt_decrypt(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, DecodeError> {
    let Some((salt, cipher)) = value.split_first_chunk::<2>() else {
        return Err(DecodeError::BadHiddenValue);
    };
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
        return Err(DecodeError::BadHiddenValue);
    }
    let mut p = unhide(cipher, secret, &[request_authenticator, salt]);
    let n = usize::from(p[0]);
    if n > p.len() - 1 {
        return Err(DecodeError::BadHiddenValue);
    }
    p.copy_within(1..1 + n, 0);
    p.truncate(n);
    Ok(p)
}

/// Decrypts a Tunnel-Password value (RFC 2868 §3.5): `tag ‖ salt ‖ ciphertext`.
/// Returns the tag and the password. `request_authenticator` is the Access-Request's (for a
/// password in an Access-Accept).
pub fn decrypt_tunnel_password(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<(u8, Vec<u8>), DecodeError> {
    let Some((&tag, rest)) = value.split_first() else {
        return Err(DecodeError::BadHiddenValue);
    };
    Ok((tag, salt_decrypt(rest, secret, request_authenticator)?))
}

/// Decrypts an MS-MPPE-Send-Key / MS-MPPE-Recv-Key sub-attribute value (RFC 2548 §2.4.2/2.4.3):
/// `salt ‖ ciphertext`.
pub fn decrypt_mppe_key(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, DecodeError> {
    salt_decrypt(value, secret, request_authenticator)
}

//! MS-CHAPv2 (RFC 2759), its MPPE keys (RFC 3079 §3) and EAP-MSCHAPv2
//! (draft-kamath-pppext-eap-mschapv2-02), server and client side.
//!
//! ```text
//!  server                                   peer
//!  Challenge  (OpCode 1, Value-Size 16) ──►
//!                                       ◄── Response (OpCode 2, Value-Size 49: Peer-Challenge,
//!                                            8 reserved, NT-Response, Flags; Name)
//!  Success request "S=<40 hex> M=…" (3) ──►   (or Failure request "E=691 R=0 C=… V=3 M=…" (4))
//!                                       ◄── Success response: the OpCode octet alone (3) / (4)
//! ```
//!
//! Everything here is pure (bytes in, bytes out); the server side ([`MsChapV2Server`]) never
//! sees a password, only the NT hash the shell looks up. NT-Response comparisons are
//! constant-time. The client-side primitives ([`generate_nt_response`],
//! [`check_authenticator_response`], [`encode_response`]) serve the tests and the load
//! generator.

use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
use md4::{Digest, Md4};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// EAP-MSCHAPv2 OpCodes (draft-kamath §2).
pub const OP_CHALLENGE: u8 = 1;
pub const OP_RESPONSE: u8 = 2;
pub const OP_SUCCESS: u8 = 3;
pub const OP_FAILURE: u8 = 4;
pub const OP_CHANGE_PASSWORD: u8 = 7;

/// NtPasswordHash (RFC 2759 §8.3): MD4 of the password in UTF-16LE.
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut h = Md4::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_le_bytes());
    }
    h.finalize().into()
}

/// HashNtPasswordHash (RFC 2759 §8.4): MD4 of the NT hash.
pub fn hash_nt_password_hash(nt_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(nt_hash).into()
}

/// The user name as MS-CHAPv2 hashes it: a `DOMAIN\` prefix is not part of it (RFC 2759 §4
/// sends the name "without any domain"; Windows peers send `DOMAIN\user` anyway — the part
/// after the first backslash is what both sides hash).
pub fn strip_domain(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b'\\') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// ChallengeHash (RFC 2759 §8.2): SHA1(PeerChallenge ‖ AuthenticatorChallenge ‖ UserName),
/// first 8 octets. `user` is used as given (strip the domain first: [`strip_domain`]).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 8] {
    let mut h = Sha1::new();
    h.update(peer_challenge);
    h.update(auth_challenge);
    h.update(user);
    let d: [u8; 20] = h.finalize().into();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// DesEncrypt (RFC 2759 §8.6) with a 7-octet key: the 56 key bits spread over 8 octets, the
/// low (parity) bit of each left 0 — DES ignores it.
fn des_encrypt(clear: &[u8; 8], key7: &[u8]) -> [u8; 8] {
    let k = key7;
    let key = [
        k[0],
        (k[0] << 7) | (k[1] >> 1),
        (k[1] << 6) | (k[2] >> 2),
        (k[2] << 5) | (k[3] >> 3),
        (k[3] << 4) | (k[4] >> 4),
        (k[4] << 3) | (k[5] >> 5),
        (k[5] << 2) | (k[6] >> 6),
        k[6] << 1,
    ];
    let cipher = Des::new(&Array::from(key));
    let mut block = Array::from(*clear);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// ChallengeResponse (RFC 2759 §8.5): the 8-octet challenge DES-encrypted under the three
/// 7-octet thirds of the zero-padded NT hash.
pub fn challenge_response(challenge: &[u8; 8], nt_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(nt_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        out[i * 8..i * 8 + 8].copy_from_slice(&des_encrypt(challenge, &z[i * 7..i * 7 + 7]));
    }
    out
}

/// GenerateNTResponse (RFC 2759 §8.1), from the NT hash (the peer computes it with
/// [`nt_password_hash`]). `user` without domain.
pub fn generate_nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    nt_hash: &[u8; 16],
) -> [u8; 24] {
    challenge_response(
        &challenge_hash(peer_challenge, auth_challenge, user),
        nt_hash,
    )
}

/// The server's check of an NT-Response: recomputes it and compares in constant time.
pub fn verify_nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    nt_hash: &[u8; 16],
    nt_response: &[u8; 24],
) -> bool {
    let expected = generate_nt_response(auth_challenge, peer_challenge, user, nt_hash);
    expected.ct_eq(nt_response).into()
}

const AUTH_MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
const AUTH_MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// GenerateAuthenticatorResponse (RFC 2759 §8.7), the 20 octets (see
/// [`authenticator_response_string`] for the "S=…" form).
pub fn generate_authenticator_response(
    nt_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 20] {
    let hh = hash_nt_password_hash(nt_hash);
    let mut h = Sha1::new();
    h.update(hh);
    h.update(nt_response);
    h.update(AUTH_MAGIC1);
    let digest: [u8; 20] = h.finalize().into();
    let challenge = challenge_hash(peer_challenge, auth_challenge, user);
    let mut h = Sha1::new();
    h.update(digest);
    h.update(challenge);
    h.update(AUTH_MAGIC2);
    h.finalize().into()
}

/// "S=" followed by 40 uppercase hex digits (RFC 2759 §8.7).
pub fn authenticator_response_string(auth: &[u8; 20]) -> String {
    let mut s = String::with_capacity(42);
    s.push_str("S=");
    s.push_str(&hex_upper(auth));
    s
}

/// The peer's check of the server's Success message (RFC 2759 §8.8): `message` is the
/// Success request's Message field ("S=<40 hex>" optionally followed by " M=…"). Hex digits
/// in either case; constant-time comparison.
pub fn check_authenticator_response(
    nt_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
    message: &[u8],
) -> bool {
    let Some(received) = parse_authenticator_response(message) else {
        return false;
    };
    let expected =
        generate_authenticator_response(nt_hash, nt_response, peer_challenge, auth_challenge, user);
    expected.ct_eq(&received).into()
}

/// The 20 octets of "S=<40 hex>" at the start of a Success message.
pub fn parse_authenticator_response(message: &[u8]) -> Option<[u8; 20]> {
    let hex = message.strip_prefix(b"S=")?;
    if hex.len() < 40 || (hex.len() > 40 && hex[40] != b' ') {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in hex[..40].chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

// RFC 3079 §3.4 constants.
const MPPE_MAGIC1: &[u8; 27] = b"This is the MPPE Master Key";
const MPPE_MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
const MPPE_MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0; 40];
const SHS_PAD2: [u8; 40] = [0xf2; 40];

/// GetMasterKey (RFC 3079 §3.4): SHA1(PasswordHashHash ‖ NT-Response ‖ Magic1), 16 octets.
pub fn master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(password_hash_hash);
    h.update(nt_response);
    h.update(MPPE_MAGIC1);
    let d: [u8; 20] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// GetAsymmetricStartKey (RFC 3079 §3.4) for 128-bit keys: the server's send key is the
/// client's receive key (Magic3), the server's receive key the client's send key (Magic2).
pub fn asymmetric_start_key(master_key: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let magic = if is_send == is_server {
        MPPE_MAGIC3
    } else {
        MPPE_MAGIC2
    };
    let mut h = Sha1::new();
    h.update(master_key);
    h.update(SHS_PAD1);
    h.update(magic);
    h.update(SHS_PAD2);
    let d: [u8; 20] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The MPPE keys of one successful MS-CHAPv2 exchange (RFC 3079 §3). Debug never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    pub master_key: [u8; 16],
}

impl MppeKeys {
    /// From the user's NT hash and the NT-Response (both sides can compute it).
    pub fn derive(nt_hash: &[u8; 16], nt_response: &[u8; 24]) -> MppeKeys {
        MppeKeys {
            master_key: master_key(&hash_nt_password_hash(nt_hash), nt_response),
        }
    }

    /// The server's MPPE send key (= the peer's receive key).
    pub fn server_send(&self) -> [u8; 16] {
        asymmetric_start_key(&self.master_key, true, true)
    }

    /// The server's MPPE receive key (= the peer's send key).
    pub fn server_recv(&self) -> [u8; 16] {
        asymmetric_start_key(&self.master_key, false, true)
    }

    /// The 32-octet key EAP-MSCHAPv2 exports, used as PEAP's ISK for crypto-binding: the
    /// server's receive key then its send key (the peer computes the same octets as its send
    /// key then its receive key) — the order hostapd and Windows use.
    pub fn isk(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.server_recv());
        out[16..].copy_from_slice(&self.server_send());
        out
    }
}

impl std::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MppeKeys(<redacted>)")
    }
}

/// A decoded EAP-MSCHAPv2 message (the Type-Data after the EAP Type octet 26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// OpCode 1 (server → peer).
    Challenge {
        ms_id: u8,
        challenge: [u8; 16],
        name: &'a [u8],
    },
    /// OpCode 2 (peer → server).
    Response {
        ms_id: u8,
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
        flags: u8,
        name: &'a [u8],
    },
    /// OpCode 3 with a header: the server's Success request ("S=… M=…").
    SuccessRequest { ms_id: u8, message: &'a [u8] },
    /// OpCode 3 alone: the peer's acknowledgement of the Success request.
    SuccessResponse,
    /// OpCode 4 with a header: the server's Failure request ("E=… R=… C=… V=… M=…").
    FailureRequest { ms_id: u8, message: &'a [u8] },
    /// OpCode 4 alone: the peer's acknowledgement of the Failure request.
    FailureResponse,
}

/// Why an EAP-MSCHAPv2 message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("EAP-MSCHAPv2 message empty")]
    Empty,
    #[error("EAP-MSCHAPv2 message shorter than its header")]
    TooShort,
    #[error("EAP-MSCHAPv2 MS-Length disagrees with the message")]
    BadLength,
    #[error("EAP-MSCHAPv2 Value-Size wrong for the OpCode")]
    BadValueSize,
    #[error("EAP-MSCHAPv2 OpCode not supported")]
    UnsupportedOpCode,
}

impl PacketError {
    /// Metric / audit label.
    pub fn label(self) -> &'static str {
        match self {
            PacketError::Empty => "mschapv2_empty",
            PacketError::TooShort => "mschapv2_too_short",
            PacketError::BadLength => "mschapv2_bad_length",
            PacketError::BadValueSize => "mschapv2_bad_value_size",
            PacketError::UnsupportedOpCode => "mschapv2_unsupported_opcode",
        }
    }
}

impl<'a> Packet<'a> {
    /// Decodes the Type-Data of an EAP-MSCHAPv2 packet. Never panics; MS-Length must equal the
    /// octets given (it counts from the OpCode to the end, draft-kamath §2).
    pub fn decode(data: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let (&op, _) = data.split_first().ok_or(PacketError::Empty)?;
        if data.len() == 1 {
            return match op {
                OP_SUCCESS => Ok(Packet::SuccessResponse),
                OP_FAILURE => Ok(Packet::FailureResponse),
                OP_CHALLENGE | OP_RESPONSE => Err(PacketError::TooShort),
                _ => Err(PacketError::UnsupportedOpCode),
            };
        }
        if data.len() < 4 {
            return Err(PacketError::TooShort);
        }
        let ms_id = data[1];
        let ms_len = u16::from_be_bytes([data[2], data[3]]) as usize;
        if ms_len != data.len() {
            return Err(PacketError::BadLength);
        }
        let body = &data[4..];
        match op {
            OP_CHALLENGE => {
                let (&size, rest) = body.split_first().ok_or(PacketError::TooShort)?;
                if size != 16 {
                    return Err(PacketError::BadValueSize);
                }
                if rest.len() < 16 {
                    return Err(PacketError::TooShort);
                }
                let mut challenge = [0u8; 16];
                challenge.copy_from_slice(&rest[..16]);
                Ok(Packet::Challenge {
                    ms_id,
                    challenge,
                    name: &rest[16..],
                })
            }
            OP_RESPONSE => {
                let (&size, rest) = body.split_first().ok_or(PacketError::TooShort)?;
                if size != 49 {
                    return Err(PacketError::BadValueSize);
                }
                if rest.len() < 49 {
                    return Err(PacketError::TooShort);
                }
                let mut peer_challenge = [0u8; 16];
                peer_challenge.copy_from_slice(&rest[..16]);
                let mut nt_response = [0u8; 24];
                nt_response.copy_from_slice(&rest[24..48]);
                Ok(Packet::Response {
                    ms_id,
                    peer_challenge,
                    nt_response,
                    flags: rest[48],
                    name: &rest[49..],
                })
            }
            OP_SUCCESS => Ok(Packet::SuccessRequest {
                ms_id,
                message: body,
            }),
            OP_FAILURE => Ok(Packet::FailureRequest {
                ms_id,
                message: body,
            }),
            _ => Err(PacketError::UnsupportedOpCode),
        }
    }
}

fn with_header(op: u8, ms_id: u8, body_len: usize) -> Vec<u8> {
    let len = 4 + body_len;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[op, ms_id]);
    out.extend_from_slice(&(len.min(u16::MAX as usize) as u16).to_be_bytes());
    out
}

/// Challenge request Type-Data (server). `name`: the server name (bounded to 255 octets).
pub fn encode_challenge(ms_id: u8, challenge: &[u8; 16], name: &[u8]) -> Vec<u8> {
    let name = &name[..name.len().min(255)];
    let mut out = with_header(OP_CHALLENGE, ms_id, 17 + name.len());
    out.push(16);
    out.extend_from_slice(challenge);
    out.extend_from_slice(name);
    out
}

/// Response Type-Data (peer): Value-Size 49 = Peer-Challenge ‖ 8 reserved zeros ‖ NT-Response
/// ‖ Flags (0); then the user name (bounded to 255 octets).
pub fn encode_response(
    ms_id: u8,
    peer_challenge: &[u8; 16],
    nt_response: &[u8; 24],
    name: &[u8],
) -> Vec<u8> {
    let name = &name[..name.len().min(255)];
    let mut out = with_header(OP_RESPONSE, ms_id, 50 + name.len());
    out.push(49);
    out.extend_from_slice(peer_challenge);
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(nt_response);
    out.push(0);
    out.extend_from_slice(name);
    out
}

/// Success request Type-Data (server): "S=<40 hex> M=<message>" (draft-kamath §2.3).
pub fn encode_success_request(ms_id: u8, auth: &[u8; 20], message: &str) -> Vec<u8> {
    let text = format!("{} M={}", authenticator_response_string(auth), message);
    let mut out = with_header(OP_SUCCESS, ms_id, text.len());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Failure request Type-Data (server), RFC 2759 §6: "E=691 R=0 C=<32 hex> V=3 M=<message>"
/// (691: authentication failure; R=0: no retry is offered, so C= only restates the challenge).
pub fn encode_failure_request(ms_id: u8, auth_challenge: &[u8; 16], message: &str) -> Vec<u8> {
    let text = format!(
        "E=691 R=0 C={} V=3 M={}",
        hex_upper(auth_challenge),
        message
    );
    let mut out = with_header(OP_FAILURE, ms_id, text.len());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Success response Type-Data (peer): the OpCode alone.
pub fn encode_success_response() -> Vec<u8> {
    vec![OP_SUCCESS]
}

/// Failure response Type-Data (peer): the OpCode alone.
pub fn encode_failure_response() -> Vec<u8> {
    vec![OP_FAILURE]
}

/// What the server side wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// EAP-MSCHAPv2 Type-Data to send (wrap in an EAP Request of type 26).
    Send(Vec<u8>),
    /// Look up the NT hash of `user` (the Name of the Response, as sent), then
    /// [`MsChapV2Server::on_nt_hash`].
    NeedNtHash { user: String },
    /// The peer acknowledged the Success request: authenticated ([`MsChapV2Server::keys`]).
    Success { user: String },
    /// The exchange ended in failure (after the peer acknowledged the Failure request, or the
    /// peer refused our Success request).
    Failure {
        reason: &'static str,
        user: Option<String>,
    },
    /// Malformed or out of order; the state did not change.
    Invalid(&'static str),
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    AwaitResponse,
    AwaitNtHash {
        user: String,
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
        name: Vec<u8>,
    },
    AwaitSuccessAck {
        user: String,
    },
    AwaitFailureAck {
        user: String,
        reason: &'static str,
    },
    Done,
}

/// The server side of one EAP-MSCHAPv2 exchange (no retries: a wrong password fails).
///
/// ```text
///  challenge() ─► on_response() ─► NeedNtHash ─► on_nt_hash() ─► Send(Success req) ─►
///  on_response(3) ─► Success        │ wrong/unknown: Send(Failure req) ─► on_response(4) ─► Failure
/// ```
#[derive(Debug, Clone)]
pub struct MsChapV2Server {
    server_name: Vec<u8>,
    auth_challenge: [u8; 16],
    ms_id: u8,
    state: State,
    keys: Option<MppeKeys>,
}

impl MsChapV2Server {
    /// `auth_challenge`: 16 random octets from the caller (no RNG here); `ms_id`: the
    /// MS-CHAPv2-ID of this exchange (any value; the peer echoes it).
    pub fn new(server_name: &str, auth_challenge: [u8; 16], ms_id: u8) -> MsChapV2Server {
        MsChapV2Server {
            server_name: server_name.as_bytes().to_vec(),
            auth_challenge,
            ms_id,
            state: State::Idle,
            keys: None,
        }
    }

    /// The Challenge request's Type-Data; the server now waits for the Response.
    pub fn challenge(&mut self) -> Vec<u8> {
        self.state = State::AwaitResponse;
        encode_challenge(self.ms_id, &self.auth_challenge, &self.server_name)
    }

    /// The authenticator challenge this exchange uses.
    pub fn auth_challenge(&self) -> &[u8; 16] {
        &self.auth_challenge
    }

    /// The MPPE keys, once the NT-Response has been verified.
    pub fn keys(&self) -> Option<&MppeKeys> {
        self.keys.as_ref()
    }

    /// A peer message (EAP-MSCHAPv2 Type-Data).
    pub fn on_response(&mut self, data: &[u8]) -> ServerStep {
        let packet = match Packet::decode(data) {
            Ok(p) => p,
            Err(e) => return ServerStep::Invalid(e.label()),
        };
        match (&self.state, packet) {
            (
                State::AwaitResponse,
                Packet::Response {
                    ms_id,
                    peer_challenge,
                    nt_response,
                    name,
                    ..
                },
            ) => {
                if ms_id != self.ms_id {
                    return ServerStep::Invalid("mschapv2_wrong_id");
                }
                let Ok(user) = std::str::from_utf8(name) else {
                    return ServerStep::Invalid("mschapv2_name_not_utf8");
                };
                let user = user.to_string();
                self.state = State::AwaitNtHash {
                    user: user.clone(),
                    peer_challenge,
                    nt_response,
                    name: name.to_vec(),
                };
                ServerStep::NeedNtHash { user }
            }
            (State::AwaitSuccessAck { user }, Packet::SuccessResponse)
            | (State::AwaitSuccessAck { user }, Packet::SuccessRequest { .. }) => {
                let user = user.clone();
                self.state = State::Done;
                ServerStep::Success { user }
            }
            (State::AwaitSuccessAck { user }, _) => {
                // The peer did not accept our Authenticator Response (RFC 2759 §8.8): it may
                // be talking to an impostor. Fail.
                let user = Some(user.clone());
                self.state = State::Done;
                self.keys = None;
                ServerStep::Failure {
                    reason: "mschapv2_peer_refused_server",
                    user,
                }
            }
            (State::AwaitFailureAck { user, reason }, _) => {
                let (user, reason) = (Some(user.clone()), *reason);
                self.state = State::Done;
                ServerStep::Failure { reason, user }
            }
            _ => ServerStep::Invalid("mschapv2_unexpected_message"),
        }
    }

    /// The shell's answer to [`ServerStep::NeedNtHash`]: the user's NT hash, or `None`
    /// (unknown user, no hash) — which fails exactly like a wrong password.
    pub fn on_nt_hash(&mut self, nt_hash: Option<[u8; 16]>) -> ServerStep {
        let State::AwaitNtHash {
            user,
            peer_challenge,
            nt_response,
            name,
        } = &self.state
        else {
            return ServerStep::Invalid("mschapv2_unexpected_verdict");
        };
        let hashed_name = strip_domain(name);
        let ok = match &nt_hash {
            Some(h) => verify_nt_response(
                &self.auth_challenge,
                peer_challenge,
                hashed_name,
                h,
                nt_response,
            ),
            None => false,
        };
        let user = user.clone();
        match nt_hash {
            Some(h) if ok => {
                let auth = generate_authenticator_response(
                    &h,
                    nt_response,
                    peer_challenge,
                    &self.auth_challenge,
                    hashed_name,
                );
                self.keys = Some(MppeKeys::derive(&h, nt_response));
                self.state = State::AwaitSuccessAck { user };
                ServerStep::Send(encode_success_request(self.ms_id, &auth, "OK"))
            }
            other => {
                let reason = if other.is_none() {
                    "mschapv2_unknown_user"
                } else {
                    "mschapv2_wrong_password"
                };
                self.state = State::AwaitFailureAck { user, reason };
                ServerStep::Send(encode_failure_request(
                    self.ms_id,
                    &self.auth_challenge,
                    "Authentication failed",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // RFC 2759 §9.2 sample data (also RFC 3079 §3.5.3).
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";
    const AUTH_CHALLENGE: [u8; 16] = hex!("5B5D7C7D7B3F2F3E3C2C602132262628");
    const PEER_CHALLENGE: [u8; 16] = hex!("21402324255E262A28295F2B3A337C7E");
    const CHALLENGE: [u8; 8] = hex!("D02E4386BCE91226");
    const NT_HASH: [u8; 16] = hex!("44EBBA8D5312B8D611474411F56989AE");
    const NT_RESPONSE: [u8; 24] = hex!("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
    const HASH_HASH: [u8; 16] = hex!("41C00C584BD2D91C4017A2A12FA59F3F");
    const AUTH_RESPONSE: &str = "S=407A5589115FD0D6209F510FE9C04566932CDA56";

    #[test]
    fn rfc2759_9_2_password_hash() {
        assert_eq!(nt_password_hash(PASSWORD), NT_HASH);
    }

    #[test]
    fn rfc2759_9_2_challenge_hash() {
        assert_eq!(
            challenge_hash(&PEER_CHALLENGE, &AUTH_CHALLENGE, USER),
            CHALLENGE
        );
    }

    #[test]
    fn rfc2759_9_2_nt_response() {
        assert_eq!(challenge_response(&CHALLENGE, &NT_HASH), NT_RESPONSE);
        assert_eq!(
            generate_nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, USER, &NT_HASH),
            NT_RESPONSE
        );
        assert!(verify_nt_response(
            &AUTH_CHALLENGE,
            &PEER_CHALLENGE,
            USER,
            &NT_HASH,
            &NT_RESPONSE
        ));
        let mut bad = NT_RESPONSE;
        bad[23] ^= 1;
        assert!(!verify_nt_response(
            &AUTH_CHALLENGE,
            &PEER_CHALLENGE,
            USER,
            &NT_HASH,
            &bad
        ));
    }

    #[test]
    fn rfc2759_9_2_password_hash_hash_and_authenticator_response() {
        assert_eq!(hash_nt_password_hash(&NT_HASH), HASH_HASH);
        let auth = generate_authenticator_response(
            &NT_HASH,
            &NT_RESPONSE,
            &PEER_CHALLENGE,
            &AUTH_CHALLENGE,
            USER,
        );
        assert_eq!(authenticator_response_string(&auth), AUTH_RESPONSE);
        assert!(check_authenticator_response(
            &NT_HASH,
            &NT_RESPONSE,
            &PEER_CHALLENGE,
            &AUTH_CHALLENGE,
            USER,
            b"S=407a5589115fd0d6209f510fe9c04566932cda56 M=welcome",
        ));
        assert!(!check_authenticator_response(
            &NT_HASH,
            &NT_RESPONSE,
            &PEER_CHALLENGE,
            &AUTH_CHALLENGE,
            USER,
            b"S=407A5589115FD0D6209F510FE9C04566932CDA57",
        ));
        assert!(parse_authenticator_response(b"S=407A").is_none());
        assert!(
            parse_authenticator_response(b"S=407A5589115FD0D6209F510FE9C04566932CDA56X").is_none()
        );
    }

    #[test]
    fn rfc3079_3_5_3_master_and_start_keys() {
        assert_eq!(
            master_key(&HASH_HASH, &NT_RESPONSE),
            hex!("FDECE3717A8C838CB388E527AE3CDD31")
        );
        let keys = MppeKeys::derive(&NT_HASH, &NT_RESPONSE);
        // RFC 3079 §3.5.3 "SendStartKey128": the server's send key (Magic3), which is the
        // client's receive key.
        assert_eq!(keys.server_send(), hex!("8B7CDC149B993A1BA118CB153F56DCCB"));
        assert_eq!(
            asymmetric_start_key(&keys.master_key, false, false),
            keys.server_send()
        );
        assert_eq!(
            asymmetric_start_key(&keys.master_key, true, false),
            keys.server_recv()
        );
        assert_ne!(keys.server_send(), keys.server_recv());
        let isk = keys.isk();
        assert_eq!(&isk[..16], &keys.server_recv());
        assert_eq!(&isk[16..], &keys.server_send());
    }

    #[test]
    fn domain_is_not_hashed() {
        assert_eq!(strip_domain(b"ACME\\User"), b"User");
        assert_eq!(strip_domain(b"User"), b"User");
        assert_eq!(strip_domain(b"A\\B\\C"), b"B\\C");
    }

    #[test]
    fn packets_round_trip() {
        let c = encode_challenge(5, &AUTH_CHALLENGE, b"ironfence");
        assert_eq!(
            Packet::decode(&c),
            Ok(Packet::Challenge {
                ms_id: 5,
                challenge: AUTH_CHALLENGE,
                name: b"ironfence"
            })
        );
        let r = encode_response(5, &PEER_CHALLENGE, &NT_RESPONSE, USER);
        assert_eq!(r.len(), 4 + 1 + 49 + 4);
        assert_eq!(
            Packet::decode(&r),
            Ok(Packet::Response {
                ms_id: 5,
                peer_challenge: PEER_CHALLENGE,
                nt_response: NT_RESPONSE,
                flags: 0,
                name: USER
            })
        );
        let auth = parse_authenticator_response(AUTH_RESPONSE.as_bytes()).unwrap();
        let s = encode_success_request(5, &auth, "OK");
        assert_eq!(
            Packet::decode(&s),
            Ok(Packet::SuccessRequest {
                ms_id: 5,
                message: format!("{AUTH_RESPONSE} M=OK").as_bytes()
            })
        );
        let f = encode_failure_request(5, &AUTH_CHALLENGE, "no");
        let Ok(Packet::FailureRequest { message, .. }) = Packet::decode(&f) else {
            panic!("failure request did not decode");
        };
        assert_eq!(
            message,
            b"E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3 M=no"
        );
        assert_eq!(
            Packet::decode(&encode_success_response()),
            Ok(Packet::SuccessResponse)
        );
        assert_eq!(
            Packet::decode(&encode_failure_response()),
            Ok(Packet::FailureResponse)
        );
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(Packet::decode(&[]), Err(PacketError::Empty));
        assert_eq!(Packet::decode(&[2]), Err(PacketError::TooShort));
        assert_eq!(Packet::decode(&[9]), Err(PacketError::UnsupportedOpCode));
        assert_eq!(Packet::decode(&[2, 1, 0]), Err(PacketError::TooShort));
        let mut r = encode_response(1, &PEER_CHALLENGE, &NT_RESPONSE, USER);
        r.push(0);
        assert_eq!(Packet::decode(&r), Err(PacketError::BadLength));
        let mut r = encode_response(1, &PEER_CHALLENGE, &NT_RESPONSE, b"");
        r[4] = 48;
        assert_eq!(Packet::decode(&r), Err(PacketError::BadValueSize));
        assert_eq!(
            Packet::decode(&[2, 1, 0, 6, 49, 0]),
            Err(PacketError::TooShort)
        );
        assert_eq!(
            Packet::decode(&[OP_CHANGE_PASSWORD, 1, 0, 4]),
            Err(PacketError::UnsupportedOpCode)
        );
    }

    /// A peer written from the client-side primitives drives the server.
    fn run(
        server_hash: Option<[u8; 16]>,
        peer_password: &str,
        name: &str,
    ) -> (ServerStep, MsChapV2Server) {
        let mut s = MsChapV2Server::new("ironfence", AUTH_CHALLENGE, 42);
        let c = s.challenge();
        let Packet::Challenge {
            ms_id, challenge, ..
        } = Packet::decode(&c).unwrap()
        else {
            panic!("not a challenge");
        };
        let peer_hash = nt_password_hash(peer_password);
        let hashed = strip_domain(name.as_bytes());
        let nt = generate_nt_response(&challenge, &PEER_CHALLENGE, hashed, &peer_hash);
        let resp = encode_response(ms_id, &PEER_CHALLENGE, &nt, name.as_bytes());
        assert_eq!(
            s.on_response(&resp),
            ServerStep::NeedNtHash {
                user: name.to_string()
            }
        );
        let ServerStep::Send(next) = s.on_nt_hash(server_hash) else {
            panic!("no request after the verdict");
        };
        let ack = match Packet::decode(&next).unwrap() {
            Packet::SuccessRequest { message, .. } => {
                assert!(check_authenticator_response(
                    &peer_hash,
                    &nt,
                    &PEER_CHALLENGE,
                    &challenge,
                    hashed,
                    message
                ));
                encode_success_response()
            }
            Packet::FailureRequest { .. } => encode_failure_response(),
            other => panic!("unexpected {other:?}"),
        };
        (s.on_response(&ack), s)
    }

    #[test]
    fn server_exchange_succeeds_with_the_right_hash() {
        let (step, s) = run(Some(NT_HASH), PASSWORD, "ACME\\User");
        assert_eq!(
            step,
            ServerStep::Success {
                user: "ACME\\User".into()
            }
        );
        // The MPPE keys are RFC 3079's for the same inputs.
        let expected = MppeKeys::derive(
            &NT_HASH,
            &generate_nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, USER, &NT_HASH),
        );
        assert_eq!(s.keys(), Some(&expected));
    }

    #[test]
    fn server_exchange_fails_on_wrong_password_and_unknown_user() {
        let (step, s) = run(Some(NT_HASH), "wrong", "User");
        assert_eq!(
            step,
            ServerStep::Failure {
                reason: "mschapv2_wrong_password",
                user: Some("User".into())
            }
        );
        assert!(s.keys().is_none());
        let (step, _) = run(None, PASSWORD, "User");
        assert_eq!(
            step,
            ServerStep::Failure {
                reason: "mschapv2_unknown_user",
                user: Some("User".into())
            }
        );
    }

    #[test]
    fn server_refuses_out_of_order_and_wrong_id() {
        let mut s = MsChapV2Server::new("ironfence", AUTH_CHALLENGE, 42);
        assert_eq!(
            s.on_nt_hash(Some(NT_HASH)),
            ServerStep::Invalid("mschapv2_unexpected_verdict")
        );
        assert_eq!(
            s.on_response(&encode_success_response()),
            ServerStep::Invalid("mschapv2_unexpected_message")
        );
        s.challenge();
        let resp = encode_response(41, &PEER_CHALLENGE, &NT_RESPONSE, USER);
        assert_eq!(
            s.on_response(&resp),
            ServerStep::Invalid("mschapv2_wrong_id")
        );
        // A peer that does not acknowledge the Success request fails the exchange.
        let resp = encode_response(42, &PEER_CHALLENGE, &NT_RESPONSE, USER);
        assert!(matches!(
            s.on_response(&resp),
            ServerStep::NeedNtHash { .. }
        ));
        assert!(matches!(s.on_nt_hash(Some(NT_HASH)), ServerStep::Send(_)));
        assert_eq!(
            s.on_response(&encode_failure_response()),
            ServerStep::Failure {
                reason: "mschapv2_peer_refused_server",
                user: Some("User".into())
            }
        );
        assert!(s.keys().is_none());
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Packet::decode(&data);
        }

        #[test]
        fn server_never_panics(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..6)) {
            let mut s = MsChapV2Server::new("x", AUTH_CHALLENGE, 1);
            s.challenge();
            for m in &msgs {
                if let ServerStep::NeedNtHash { .. } = s.on_response(m) {
                    let _ = s.on_nt_hash(Some(NT_HASH));
                }
            }
        }

        #[test]
        fn response_round_trips(id in any::<u8>(), pc in any::<[u8; 16]>(), nt in any::<[u8; 24]>(), name in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = encode_response(id, &pc, &nt, &name);
            prop_assert_eq!(Packet::decode(&r), Ok(Packet::Response { ms_id: id, peer_challenge: pc, nt_response: nt, flags: 0, name: &name }));
        }
    }
}

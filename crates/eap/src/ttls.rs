//! EAP-TTLSv0 inner phase (RFC 5281): Diameter AVPs inside the TLS tunnel, with PAP
//! (§11.2.5) or MS-CHAPv2 (§11.2.4, RFC 2548 attributes) as the inner method. Plaintext in,
//! plaintext out; the conversation owns the tunnel and calls [`TtlsInner`].
//!
//! ```text
//!  peer ──► User-Name ‖ User-Password                       ─► NeedPassword ─► Success | Failure
//!  peer ──► User-Name ‖ MS-CHAP-Challenge ‖ MS-CHAP2-Response ─► NeedNtHash
//!  peer ◄── MS-CHAP2-Success (ident ‖ "S=<40 hex>")        (right NT-Response; else Failure)
//!  peer ──► (empty)                                          ─► Success
//! ```
//! The client speaks first: [`TtlsInner::start`] answers `Send(vec![])` (nothing to send: the
//! conversation acknowledges and waits). An EAP-TTLS Response carrying no TLS application data
//! is delivered as `on_data(&[])` — that is how the peer acknowledges MS-CHAP2-Success.

use crate::inner::{InnerStep, InnerVerdict};
use crate::mschapv2;

/// AVP flags (RFC 5281 §10.1).
pub const FLAG_VENDOR: u8 = 0x80;
pub const FLAG_MANDATORY: u8 = 0x40;
/// At most this many AVPs in one tunnelled message (bounded parsing).
pub const MAX_AVPS: usize = 32;
/// Longest PAP password accepted (after the NUL padding is stripped).
pub const MAX_PASSWORD: usize = 256;

/// RADIUS attribute numbers used as AVP codes (RFC 5281 §10.2: vendor 0 = RADIUS).
pub const AVP_USER_NAME: u32 = 1;
pub const AVP_USER_PASSWORD: u32 = 2;
pub const AVP_CHAP_PASSWORD: u32 = 3;
pub const AVP_EAP_MESSAGE: u32 = 79;
/// Microsoft's vendor id and the RFC 2548 attributes.
pub const VENDOR_MICROSOFT: u32 = 311;
pub const MS_CHAP_RESPONSE: u32 = 1;
pub const MS_CHAP_ERROR: u32 = 2;
pub const MS_CHAP_CHALLENGE: u32 = 11;
pub const MS_CHAP2_RESPONSE: u32 = 25;
pub const MS_CHAP2_SUCCESS: u32 = 26;

/// One Diameter AVP (RFC 5281 §10.1 / RFC 6733 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avp<'a> {
    pub code: u32,
    /// Present when the V flag is set.
    pub vendor: Option<u32>,
    pub mandatory: bool,
    pub data: &'a [u8],
}

/// Why a tunnelled AVP sequence was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AvpError {
    #[error("AVP header truncated")]
    Truncated,
    #[error("AVP Length shorter than its header or beyond the data")]
    BadLength,
    #[error("too many AVPs")]
    TooMany,
}

impl AvpError {
    /// Metric / audit label.
    pub fn label(self) -> &'static str {
        match self {
            AvpError::Truncated => "ttls_avp_truncated",
            AvpError::BadLength => "ttls_avp_bad_length",
            AvpError::TooMany => "ttls_too_many_avps",
        }
    }
}

/// Decodes a sequence of AVPs: Code (4), Flags (1), Length (3, header included, padding
/// excluded), Vendor-ID (4, with V), Data, padding to a multiple of 4 (a last AVP without its
/// padding is accepted). Never panics; bounded by [`MAX_AVPS`].
pub fn decode_avps(mut data: &[u8]) -> Result<Vec<Avp<'_>>, AvpError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if out.len() == MAX_AVPS {
            return Err(AvpError::TooMany);
        }
        if data.len() < 8 {
            return Err(AvpError::Truncated);
        }
        let code = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let flags = data[4];
        let len = u32::from_be_bytes([0, data[5], data[6], data[7]]) as usize;
        let header = if flags & FLAG_VENDOR != 0 { 12 } else { 8 };
        if len < header || len > data.len() {
            return Err(AvpError::BadLength);
        }
        let vendor =
            (header == 12).then(|| u32::from_be_bytes([data[8], data[9], data[10], data[11]]));
        out.push(Avp {
            code,
            vendor,
            mandatory: flags & FLAG_MANDATORY != 0,
            data: &data[header..len],
        });
        let padded = len.next_multiple_of(4).min(data.len());
        data = &data[padded..];
    }
    Ok(out)
}

/// Appends one AVP (padded to 4 octets). `data` longer than the 24-bit Length allows is
/// truncated — nothing here builds such an AVP.
pub fn encode_avp(out: &mut Vec<u8>, code: u32, vendor: Option<u32>, mandatory: bool, data: &[u8]) {
    let header = if vendor.is_some() { 12 } else { 8 };
    let data = &data[..data.len().min(0xff_ffff - header)];
    let len = header + data.len();
    let mut flags = 0;
    if vendor.is_some() {
        flags |= FLAG_VENDOR;
    }
    if mandatory {
        flags |= FLAG_MANDATORY;
    }
    out.extend_from_slice(&code.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    if let Some(v) = vendor {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(data);
    out.resize(out.len() + (len.next_multiple_of(4) - len), 0);
}

/// The PAP password as sent: RFC 5281 §11.2.5 pads it with NULs to a multiple of 16 octets;
/// the padding is not part of it.
pub fn strip_password_padding(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &p[..end]
}

#[derive(Debug)]
enum State {
    New,
    AwaitCredentials,
    AwaitPassword {
        user: String,
    },
    AwaitNtHash {
        user: String,
        ident: u8,
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
    },
    AwaitAck {
        user: String,
    },
    Done,
}

/// The EAP-TTLSv0 inner phase, server side (inner PAP or MS-CHAPv2).
#[derive(Debug)]
pub struct TtlsInner {
    challenge: [u8; 17],
    state: State,
}

impl TtlsInner {
    /// `ttls_challenge`: 17 octets of keying material from the tunnel (RFC 5281 §11.1: TLS PRF
    /// with label "ttls challenge" — TLS 1.2: `export_keying_material(17, b"ttls challenge",
    /// None)`); the first 16 are the MS-CHAP challenge, the 17th the ident the peer must use
    /// (§11.2.4). PAP does not use them.
    pub fn new(ttls_challenge: [u8; 17]) -> TtlsInner {
        TtlsInner {
            challenge: ttls_challenge,
            state: State::New,
        }
    }

    /// Whether the next peer message is the (empty) acknowledgement of MS-CHAP2-Success; an
    /// empty message at any other point is a TLS-level ACK the conversation answers itself.
    pub fn awaits_ack(&self) -> bool {
        matches!(self.state, State::AwaitAck { .. })
    }

    /// The client speaks first: nothing to send.
    pub fn start(&mut self) -> InnerStep {
        if !matches!(self.state, State::New) {
            return InnerStep::Invalid("ttls_already_started");
        }
        self.state = State::AwaitCredentials;
        InnerStep::Send(Vec::new())
    }

    fn fail(&mut self, reason: &'static str, user: Option<String>) -> InnerStep {
        self.state = State::Done;
        InnerStep::Failure { reason, user }
    }

    /// A tunnelled plaintext message from the peer (a sequence of AVPs; empty is an
    /// acknowledgement).
    pub fn on_data(&mut self, plain: &[u8]) -> InnerStep {
        match &self.state {
            State::AwaitCredentials => self.credentials(plain),
            State::AwaitAck { user } => {
                let user = user.clone();
                // RFC 5281 §11.2.4: the peer that accepts MS-CHAP2-Success answers with no
                // AVPs; anything else means it did not (hostapd: failure).
                if plain.is_empty() {
                    self.state = State::Done;
                    InnerStep::Success {
                        user,
                        method: "mschapv2",
                        msk: None,
                    }
                } else {
                    self.fail("ttls_mschapv2_not_acknowledged", Some(user))
                }
            }
            _ => InnerStep::Invalid("ttls_unexpected_message"),
        }
    }

    fn credentials(&mut self, plain: &[u8]) -> InnerStep {
        let avps = match decode_avps(plain) {
            Ok(a) => a,
            Err(e) => return InnerStep::Invalid(e.label()),
        };
        if avps.is_empty() {
            return InnerStep::Invalid("ttls_no_avps");
        }
        let (mut user, mut password, mut challenge, mut response, mut eap) =
            (None, None, None, None, false);
        for a in &avps {
            match (a.vendor, a.code) {
                (None | Some(0), AVP_USER_NAME) => user = Some(a.data),
                (None | Some(0), AVP_USER_PASSWORD) => password = Some(a.data),
                (None | Some(0), AVP_EAP_MESSAGE) => eap = true,
                (Some(VENDOR_MICROSOFT), MS_CHAP_CHALLENGE) => challenge = Some(a.data),
                (Some(VENDOR_MICROSOFT), MS_CHAP2_RESPONSE) => response = Some(a.data),
                // §10.1: an unsupported AVP with M set fails the negotiation.
                _ if a.mandatory => return self.fail("ttls_unknown_mandatory_avp", None),
                _ => {}
            }
        }
        if eap {
            return self.fail("ttls_inner_eap_unsupported", None);
        }
        let Some(user) = user else {
            return self.fail("ttls_no_user_name", None);
        };
        let Ok(user) = std::str::from_utf8(user) else {
            return InnerStep::Invalid("ttls_user_name_not_utf8");
        };
        if user.is_empty() || user.len() > 253 {
            return InnerStep::Invalid("ttls_bad_user_name");
        }
        let user = user.to_string();
        if let Some(p) = password {
            let p = strip_password_padding(p);
            if p.len() > MAX_PASSWORD {
                return self.fail("pap_password_too_long", Some(user));
            }
            let Ok(p) = std::str::from_utf8(p) else {
                return self.fail("pap_password_not_utf8", Some(user));
            };
            let password = p.to_string();
            self.state = State::AwaitPassword { user: user.clone() };
            return InnerStep::NeedPassword { user, password };
        }
        match (challenge, response) {
            (Some(c), Some(r)) => {
                // §11.2.4: challenge and ident are the ones derived from the TLS keys; the
                // server MUST check them (no replay of a challenge from another tunnel).
                if c != &self.challenge[..16] {
                    return self.fail("ttls_mschapv2_challenge_mismatch", Some(user));
                }
                if r.len() != 50 {
                    return InnerStep::Invalid("ttls_mschapv2_bad_response");
                }
                if r[0] != self.challenge[16] {
                    return self.fail("ttls_mschapv2_ident_mismatch", Some(user));
                }
                let mut peer_challenge = [0u8; 16];
                peer_challenge.copy_from_slice(&r[2..18]);
                let mut nt_response = [0u8; 24];
                nt_response.copy_from_slice(&r[26..50]);
                self.state = State::AwaitNtHash {
                    user: user.clone(),
                    ident: r[0],
                    peer_challenge,
                    nt_response,
                };
                InnerStep::NeedNtHash { user }
            }
            _ => self.fail("ttls_no_inner_method", Some(user)),
        }
    }

    /// The shell's answer to `NeedPassword` / `NeedNtHash`.
    pub fn on_verdict(&mut self, v: InnerVerdict) -> InnerStep {
        match (&self.state, v) {
            (State::AwaitPassword { user }, InnerVerdict::Password(ok)) => {
                let user = user.clone();
                if ok {
                    self.state = State::Done;
                    InnerStep::Success {
                        user,
                        method: "pap",
                        msk: None,
                    }
                } else {
                    self.fail("pap_wrong_password", Some(user))
                }
            }
            (
                State::AwaitNtHash {
                    user,
                    ident,
                    peer_challenge,
                    nt_response,
                },
                InnerVerdict::NtHash(hash),
            ) => {
                let user = user.clone();
                let Some(hash) = hash else {
                    return self.fail("mschapv2_unknown_user", Some(user));
                };
                let mut auth_challenge = [0u8; 16];
                auth_challenge.copy_from_slice(&self.challenge[..16]);
                let name = mschapv2::strip_domain(user.as_bytes());
                if !mschapv2::verify_nt_response(
                    &auth_challenge,
                    peer_challenge,
                    name,
                    &hash,
                    nt_response,
                ) {
                    return self.fail("mschapv2_wrong_password", Some(user));
                }
                let auth = mschapv2::generate_authenticator_response(
                    &hash,
                    nt_response,
                    peer_challenge,
                    &auth_challenge,
                    name,
                );
                let mut value = vec![*ident];
                value.extend_from_slice(mschapv2::authenticator_response_string(&auth).as_bytes());
                let mut out = Vec::with_capacity(56);
                encode_avp(
                    &mut out,
                    MS_CHAP2_SUCCESS,
                    Some(VENDOR_MICROSOFT),
                    true,
                    &value,
                );
                self.state = State::AwaitAck { user };
                InnerStep::Send(out)
            }
            (State::AwaitPassword { .. } | State::AwaitNtHash { .. }, _) => {
                InnerStep::Invalid("ttls_wrong_verdict_kind")
            }
            _ => InnerStep::Invalid("ttls_unexpected_verdict"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TTLS_CHALLENGE: [u8; 17] = *b"0123456789abcdef\x2a";
    const PEER_CHALLENGE: [u8; 16] = *b"peer-challenge16";

    fn pap(user: &str, password: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_avp(&mut out, AVP_USER_NAME, None, true, user.as_bytes());
        let mut padded = password.to_vec();
        padded.resize(password.len().next_multiple_of(16).max(16), 0);
        encode_avp(&mut out, AVP_USER_PASSWORD, None, true, &padded);
        out
    }

    /// The client side of TTLS/MSCHAPv2 (RFC 5281 §11.2.4) from the mschapv2 primitives.
    fn mschap(user: &str, password: &str, challenge: &[u8; 17]) -> (Vec<u8>, [u8; 24]) {
        let mut auth = [0u8; 16];
        auth.copy_from_slice(&challenge[..16]);
        let hash = mschapv2::nt_password_hash(password);
        let nt = mschapv2::generate_nt_response(
            &auth,
            &PEER_CHALLENGE,
            mschapv2::strip_domain(user.as_bytes()),
            &hash,
        );
        let mut resp = vec![challenge[16], 0];
        resp.extend_from_slice(&PEER_CHALLENGE);
        resp.extend_from_slice(&[0; 8]);
        resp.extend_from_slice(&nt);
        let mut out = Vec::new();
        encode_avp(&mut out, AVP_USER_NAME, None, true, user.as_bytes());
        encode_avp(
            &mut out,
            MS_CHAP_CHALLENGE,
            Some(VENDOR_MICROSOFT),
            true,
            &challenge[..16],
        );
        encode_avp(
            &mut out,
            MS_CHAP2_RESPONSE,
            Some(VENDOR_MICROSOFT),
            true,
            &resp,
        );
        (out, nt)
    }

    fn started() -> TtlsInner {
        let mut t = TtlsInner::new(TTLS_CHALLENGE);
        assert_eq!(t.start(), InnerStep::Send(vec![]));
        t
    }

    #[test]
    fn pap_strips_padding_and_asks_the_shell() {
        let mut t = started();
        assert_eq!(
            t.on_data(&pap("alice", b"secret")),
            InnerStep::NeedPassword {
                user: "alice".into(),
                password: "secret".into()
            }
        );
        assert_eq!(
            t.on_verdict(InnerVerdict::Password(true)),
            InnerStep::Success {
                user: "alice".into(),
                method: "pap",
                msk: None
            }
        );
        let mut t = started();
        assert!(matches!(
            t.on_data(&pap("alice", b"wrong")),
            InnerStep::NeedPassword { .. }
        ));
        assert_eq!(
            t.on_verdict(InnerVerdict::Password(false)),
            InnerStep::Failure {
                reason: "pap_wrong_password",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn mschapv2_full_exchange() {
        let mut t = started();
        let (msg, nt) = mschap("ACME\\alice", "secret", &TTLS_CHALLENGE);
        assert_eq!(
            t.on_data(&msg),
            InnerStep::NeedNtHash {
                user: "ACME\\alice".into()
            }
        );
        let hash = mschapv2::nt_password_hash("secret");
        let InnerStep::Send(success) = t.on_verdict(InnerVerdict::NtHash(Some(hash))) else {
            panic!("no MS-CHAP2-Success");
        };
        let avps = decode_avps(&success).unwrap();
        assert_eq!(avps.len(), 1);
        let a = avps[0];
        assert_eq!(
            (a.code, a.vendor, a.mandatory),
            (MS_CHAP2_SUCCESS, Some(VENDOR_MICROSOFT), true)
        );
        assert_eq!(a.data[0], TTLS_CHALLENGE[16]);
        let mut auth = [0u8; 16];
        auth.copy_from_slice(&TTLS_CHALLENGE[..16]);
        assert!(mschapv2::check_authenticator_response(
            &hash,
            &nt,
            &PEER_CHALLENGE,
            &auth,
            b"alice",
            &a.data[1..]
        ));
        assert_eq!(
            t.on_data(&[]),
            InnerStep::Success {
                user: "ACME\\alice".into(),
                method: "mschapv2",
                msk: None
            }
        );
        assert_eq!(
            t.on_data(&[]),
            InnerStep::Invalid("ttls_unexpected_message")
        );
    }

    #[test]
    fn mschapv2_wrong_password_unknown_user_and_no_ack() {
        let hash = mschapv2::nt_password_hash("secret");
        let mut t = started();
        let (msg, _) = mschap("alice", "wrong", &TTLS_CHALLENGE);
        assert!(matches!(t.on_data(&msg), InnerStep::NeedNtHash { .. }));
        assert_eq!(
            t.on_verdict(InnerVerdict::NtHash(Some(hash))),
            InnerStep::Failure {
                reason: "mschapv2_wrong_password",
                user: Some("alice".into())
            }
        );
        let mut t = started();
        let (msg, _) = mschap("bob", "secret", &TTLS_CHALLENGE);
        assert!(matches!(t.on_data(&msg), InnerStep::NeedNtHash { .. }));
        assert_eq!(
            t.on_verdict(InnerVerdict::NtHash(None)),
            InnerStep::Failure {
                reason: "mschapv2_unknown_user",
                user: Some("bob".into())
            }
        );
        let mut t = started();
        let (msg, _) = mschap("alice", "secret", &TTLS_CHALLENGE);
        t.on_data(&msg);
        assert!(matches!(
            t.on_verdict(InnerVerdict::NtHash(Some(hash))),
            InnerStep::Send(_)
        ));
        let mut junk = Vec::new();
        encode_avp(
            &mut junk,
            MS_CHAP_ERROR,
            Some(VENDOR_MICROSOFT),
            false,
            b"x",
        );
        assert_eq!(
            t.on_data(&junk),
            InnerStep::Failure {
                reason: "ttls_mschapv2_not_acknowledged",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn mschapv2_challenge_or_ident_not_from_this_tunnel_fails() {
        // A response computed for another tunnel's challenge (replay) fails before any lookup.
        let mut other = TTLS_CHALLENGE;
        other[0] ^= 1;
        let mut t = started();
        let (msg, _) = mschap("alice", "secret", &other);
        assert_eq!(
            t.on_data(&msg),
            InnerStep::Failure {
                reason: "ttls_mschapv2_challenge_mismatch",
                user: Some("alice".into())
            }
        );
        let mut other = TTLS_CHALLENGE;
        other[16] ^= 1;
        // Same challenge octets, another ident.
        let (msg, _) = mschap("alice", "secret", &other);
        let mut t = started();
        assert_eq!(
            t.on_data(&msg),
            InnerStep::Failure {
                reason: "ttls_mschapv2_ident_mismatch",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn unknown_mandatory_avp_fails_unknown_optional_is_ignored() {
        let mut msg = pap("alice", b"secret");
        encode_avp(&mut msg, 9999, Some(12345), false, b"ignored");
        let mut t = started();
        assert!(matches!(t.on_data(&msg), InnerStep::NeedPassword { .. }));
        encode_avp(&mut msg, 9999, Some(12345), true, b"must understand");
        let mut t = started();
        assert_eq!(
            t.on_data(&msg),
            InnerStep::Failure {
                reason: "ttls_unknown_mandatory_avp",
                user: None
            }
        );
    }

    #[test]
    fn other_inner_methods_and_missing_name_fail() {
        let mut msg = Vec::new();
        encode_avp(&mut msg, AVP_USER_NAME, None, true, b"alice");
        encode_avp(&mut msg, AVP_EAP_MESSAGE, None, true, &[2, 1, 0, 5, 1]);
        assert_eq!(
            started().on_data(&msg),
            InnerStep::Failure {
                reason: "ttls_inner_eap_unsupported",
                user: None
            }
        );
        let mut msg = Vec::new();
        encode_avp(&mut msg, AVP_USER_NAME, None, true, b"alice");
        assert_eq!(
            started().on_data(&msg),
            InnerStep::Failure {
                reason: "ttls_no_inner_method",
                user: Some("alice".into())
            }
        );
        let mut msg = Vec::new();
        encode_avp(&mut msg, AVP_USER_PASSWORD, None, true, b"secret");
        assert_eq!(
            started().on_data(&msg),
            InnerStep::Failure {
                reason: "ttls_no_user_name",
                user: None
            }
        );
    }

    #[test]
    fn malformed_and_out_of_order_are_invalid() {
        let mut t = TtlsInner::new(TTLS_CHALLENGE);
        assert_eq!(
            t.on_data(&pap("a", b"b")),
            InnerStep::Invalid("ttls_unexpected_message")
        );
        assert_eq!(
            t.on_verdict(InnerVerdict::Password(true)),
            InnerStep::Invalid("ttls_unexpected_verdict")
        );
        t.start();
        assert_eq!(t.start(), InnerStep::Invalid("ttls_already_started"));
        assert_eq!(t.on_data(&[]), InnerStep::Invalid("ttls_no_avps"));
        assert_eq!(
            t.on_data(&[0, 0, 0, 1, 0x40]),
            InnerStep::Invalid("ttls_avp_truncated")
        );
        assert_eq!(
            t.on_data(&[0, 0, 0, 1, 0x40, 0, 0, 7]),
            InnerStep::Invalid("ttls_avp_bad_length")
        );
        assert_eq!(
            t.on_data(&[0, 0, 0, 1, 0xc0, 0, 0, 8, 0, 0, 0, 0]),
            InnerStep::Invalid("ttls_avp_bad_length")
        );
        assert!(matches!(
            t.on_data(&pap("alice", b"pw")),
            InnerStep::NeedPassword { .. }
        ));
        assert_eq!(
            t.on_verdict(InnerVerdict::NtHash(None)),
            InnerStep::Invalid("ttls_wrong_verdict_kind")
        );
    }

    #[test]
    fn avp_codec_padding_and_bounds() {
        let mut out = Vec::new();
        encode_avp(&mut out, 1, None, true, b"abcde");
        assert_eq!(
            out,
            [
                0, 0, 0, 1, 0x40, 0, 0, 13, b'a', b'b', b'c', b'd', b'e', 0, 0, 0
            ]
        );
        encode_avp(&mut out, 26, Some(311), true, b"x");
        let avps = decode_avps(&out).unwrap();
        assert_eq!(
            avps,
            vec![
                Avp {
                    code: 1,
                    vendor: None,
                    mandatory: true,
                    data: b"abcde"
                },
                Avp {
                    code: 26,
                    vendor: Some(311),
                    mandatory: true,
                    data: b"x"
                }
            ]
        );
        // The last AVP's padding may be missing.
        assert_eq!(decode_avps(&out[..out.len() - 3]).unwrap().len(), 2);
        let many: Vec<u8> = std::iter::repeat_n([0u8, 0, 0, 1, 0, 0, 0, 8], MAX_AVPS + 1)
            .flatten()
            .collect();
        assert_eq!(decode_avps(&many), Err(AvpError::TooMany));
        assert_eq!(strip_password_padding(b"pw\0\0\0"), b"pw");
        assert_eq!(strip_password_padding(b"\0\0"), b"");
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_avps(&data);
        }

        #[test]
        fn avps_round_trip(avps in proptest::collection::vec((any::<u32>(), proptest::option::of(any::<u32>()), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..8)) {
            let mut out = Vec::new();
            for (code, vendor, m, data) in &avps {
                encode_avp(&mut out, *code, *vendor, *m, data);
            }
            prop_assert_eq!(out.len() % 4, 0);
            let decoded = decode_avps(&out).unwrap();
            prop_assert_eq!(decoded.len(), avps.len());
            for (d, (code, vendor, m, data)) in decoded.iter().zip(&avps) {
                prop_assert_eq!((d.code, d.vendor, d.mandatory, d.data), (*code, *vendor, *m, &data[..]));
            }
        }

        #[test]
        fn state_machine_never_panics(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..90), 0..6)) {
            let mut t = started();
            for m in &msgs {
                match t.on_data(m) {
                    InnerStep::NeedNtHash { .. } => { let _ = t.on_verdict(InnerVerdict::NtHash(Some([0; 16]))); }
                    InnerStep::NeedPassword { .. } => { let _ = t.on_verdict(InnerVerdict::Password(true)); }
                    _ => {}
                }
            }
        }
    }
}

//! PEAPv0 inner phase ([MS-PEAP], draft-kamath-pppext-peapv0, draft-josefsson-pppext-eap-tls-eap-10):
//! what travels inside the TLS tunnel once the handshake is done. Plaintext in, plaintext out;
//! the conversation (crate::conversation) owns the tunnel and calls [`PeapInner`].
//!
//! ```text
//!  tunnel plaintext                         PeapInner
//!  ◄── [1]                    Request/Identity (header-less: the 4-octet EAP header is
//!  ──► [1] "alice"            Response/Identity     stripped in PEAPv0, [MS-PEAP] §3.1.5.6)
//!  ◄── [26] Challenge         EAP-MSCHAPv2 (crate::mschapv2)
//!  ──► [26] Response          ─► InnerStep::NeedNtHash ─► on_verdict
//!  ◄── [26] Success "S=…"
//!  ──► [26] [3]
//!  ◄── 01 id len 33 | Result TLV(success) [| Crypto-Binding TLV]   (type 33 keeps its header)
//!  ──► 02 id len 33 | Result TLV(success) [| Crypto-Binding TLV]   ─► InnerStep::Success
//! ```
//! Inner failure (wrong password, unknown user): the MSCHAPv2 Failure request, the peer's
//! acknowledgement, then Result TLV(failure), the peer's Result TLV, → `InnerStep::Failure`.
//!
//! Header reconstruction: a tunnelled Response without header is given the identifier of the
//! request it answers (the peer cannot get it wrong: it never sent one). Extensions (type 33)
//! Responses carry the full header and must echo the request's identifier.
//!
//! Crypto-binding ([MS-PEAP] §3.2.5.2, TLV type 12): when a [`PeapBinding`] is given, the
//! success Extensions request carries a Crypto-Binding TLV whose Compound MAC is keyed with
//! the CMK from `IPMK‖CMK = PRF+(TK, "Inner Methods Compound Keys" ‖ ISK, 60)`, TK = the first
//! 40 octets of the tunnel's key material, ISK = the MSCHAPv2 MPPE keys
//! ([`crate::mschapv2::MppeKeys::isk`]). If the peer answers with a valid binding, the MSK is
//! `PRF+(IPMK, "Session Key Generating Function" ‖ 0x00, 128)` (first 64: MSK, next 64: EMSK)
//! and comes back in `InnerStep::Success::msk`; else the conversation's TLS-exported MSK
//! applies (`msk: None`).

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::inner::{InnerStep, InnerVerdict};
use crate::keys::Msk;
use crate::mschapv2::{self, MsChapV2Server, ServerStep};
use crate::packet::{self, Code, EapPacket, EapType};

/// Extensions TLV types ([MS-PEAP] §2.2.8, draft-josefsson §4.2).
pub const TLV_RESULT: u16 = 3;
pub const TLV_CRYPTO_BINDING: u16 = 12;
/// Result TLV status values.
pub const RESULT_SUCCESS: u16 = 1;
pub const RESULT_FAILURE: u16 = 2;
/// At most this many TLVs in one Extensions message (bounded parsing).
pub const MAX_TLVS: usize = 16;

/// How much the server insists on crypto-binding (wpa_supplicant's `crypto_binding` phase1
/// values 1 and 2 from the peer's side; 0 is "no binding": pass `None` to [`PeapInner::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingPolicy {
    /// Sent; a peer that does not answer with one still succeeds (with the TLS MSK).
    Optional,
    /// Sent; a peer that does not answer with a valid one fails.
    Required,
}

/// What crypto-binding needs from the tunnel.
///
/// `tk`: the first 40 octets of the key material the conversation exports for PEAP's MSK —
/// TLS 1.2: `export_keying_material(_, "client EAP encryption", None)` ([MS-PEAP] §3.1.5.5.2.1
/// "TK"); TLS 1.3: `export_keying_material(_, "EXPORTER_EAP_TLS_Key_Material", Some(&[25]))`
/// (RFC 9427 §3.1, as hostapd does). `nonce`: 32 random octets from the caller.
#[derive(Clone)]
pub struct PeapBinding {
    pub policy: BindingPolicy,
    pub tk: [u8; 40],
    pub nonce: [u8; 32],
}

impl std::fmt::Debug for PeapBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeapBinding")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A tunnelled inner EAP Response after header reconstruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerPacket<'a> {
    pub identifier: u8,
    pub typ: EapType,
    pub data: &'a [u8],
    /// It came with its own EAP header (Extensions).
    pub had_header: bool,
}

/// Decodes one tunnelled inner Response (PEAPv0): a full EAP Response of type 33
/// (Extensions), which must carry `expected_id`, or a header-less packet (Type octet first)
/// given `expected_id`. Never panics.
pub fn decode_tunnelled(plain: &[u8], expected_id: u8) -> Result<InnerPacket<'_>, &'static str> {
    if plain.len() >= 5
        && plain[0] == Code::Response.as_u8()
        && plain[4] == EapType::Extensions.as_u8()
        && u16::from_be_bytes([plain[2], plain[3]]) as usize == plain.len()
    {
        let p = EapPacket::decode(plain).map_err(|e| e.label())?;
        if p.identifier != expected_id {
            return Err("peap_wrong_inner_id");
        }
        return Ok(InnerPacket {
            identifier: p.identifier,
            typ: EapType::Extensions,
            data: p.data,
            had_header: true,
        });
    }
    let (&typ, data) = plain.split_first().ok_or("peap_empty_inner")?;
    if plain.len() + 4 > u16::MAX as usize {
        return Err("peap_inner_too_long");
    }
    let typ = EapType::from_u8(typ);
    if typ == EapType::Extensions {
        return Err("peap_extensions_without_header");
    }
    Ok(InnerPacket {
        identifier: expected_id,
        typ,
        data,
        had_header: false,
    })
}

/// The full EAP packet a header-less tunnelled Response stands for (RFC 3748 §4 header with
/// `id` prepended), e.g. for logging or a generic decoder. `None` if it would exceed 65535.
pub fn reconstruct(plain: &[u8], id: u8) -> Option<Vec<u8>> {
    let len = plain.len().checked_add(4)?;
    let len16 = u16::try_from(len).ok()?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[Code::Response.as_u8(), id]);
    out.extend_from_slice(&len16.to_be_bytes());
    out.extend_from_slice(plain);
    Some(out)
}

/// One Extensions TLV: M bit, 14-bit type, value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub mandatory: bool,
    pub typ: u16,
    pub value: &'a [u8],
}

/// Parses the TLVs of an Extensions message (draft-josefsson §4.2: M 0x8000, R 0x4000, type
/// 14 bits, 16-bit length of the value). Truncated TLVs, trailing octets or more than
/// [`MAX_TLVS`] are refused.
pub fn parse_tlvs(mut data: &[u8]) -> Result<Vec<Tlv<'_>>, &'static str> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if out.len() == MAX_TLVS {
            return Err("peap_too_many_tlvs");
        }
        if data.len() < 4 {
            return Err("peap_tlv_truncated");
        }
        let mandatory = data[0] & 0x80 != 0;
        let typ = u16::from_be_bytes([data[0] & 0x3f, data[1]]);
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        let rest = &data[4..];
        if len > rest.len() {
            return Err("peap_tlv_truncated");
        }
        out.push(Tlv {
            mandatory,
            typ,
            value: &rest[..len],
        });
        data = &rest[len..];
    }
    Ok(out)
}

/// A Result TLV (M bit set, as Windows and hostapd send it).
pub fn result_tlv(success: bool) -> [u8; 6] {
    let status = if success {
        RESULT_SUCCESS
    } else {
        RESULT_FAILURE
    };
    let s = status.to_be_bytes();
    [0x80, TLV_RESULT as u8, 0, 2, s[0], s[1]]
}

/// PRF+ of PEAPv0 ([MS-PEAP] §3.1.5.5.2.2): T1 = HMAC-SHA1(K, S ‖ 0x01 ‖ 0x00 ‖ 0x00),
/// Tn = HMAC-SHA1(K, Tn-1 ‖ S ‖ n ‖ 0x00 ‖ 0x00), S = label ‖ seed; `out` is filled.
pub fn prf_plus(key: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let mut prev: Vec<u8> = Vec::new();
    let mut counter: u8 = 0;
    for chunk in out.chunks_mut(20) {
        counter = counter.wrapping_add(1);
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(&prev);
        mac.update(label);
        mac.update(seed);
        mac.update(&[counter, 0, 0]);
        let t = mac.finalize().into_bytes();
        chunk.copy_from_slice(&t[..chunk.len()]);
        prev = t.to_vec();
    }
}

/// IPMK (40 octets) and CMK (20 octets) from TK and ISK ([MS-PEAP] §3.1.5.5.2.1).
pub fn compound_keys(tk: &[u8; 40], isk: &[u8; 32]) -> ([u8; 40], [u8; 20]) {
    let mut imck = [0u8; 60];
    prf_plus(tk, b"Inner Methods Compound Keys", isk, &mut imck);
    let mut ipmk = [0u8; 40];
    let mut cmk = [0u8; 20];
    ipmk.copy_from_slice(&imck[..40]);
    cmk.copy_from_slice(&imck[40..]);
    (ipmk, cmk)
}

/// Compound MAC ([MS-PEAP] §3.1.5.5.2.3): HMAC-SHA1(CMK, Crypto-Binding TLV with the MAC field
/// zeroed ‖ EAP type 25). `tlv`: the 60-octet TLV (header included).
pub fn compound_mac(cmk: &[u8; 20], tlv: &[u8; 60]) -> [u8; 20] {
    let mut buf = *tlv;
    buf[40..60].fill(0);
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(cmk).expect("HMAC takes any key");
    mac.update(&buf);
    mac.update(&[EapType::Peap.as_u8()]);
    mac.finalize().into_bytes().into()
}

/// A Crypto-Binding TLV (60 octets): type 12 (no M bit in PEAPv0), length 56, reserved 0,
/// version 0, received version 0, `subtype` (0 request, 1 response), nonce, Compound MAC.
pub fn binding_tlv(cmk: &[u8; 20], nonce: &[u8; 32], subtype: u8) -> [u8; 60] {
    let mut tlv = [0u8; 60];
    tlv[..4].copy_from_slice(&[0, TLV_CRYPTO_BINDING as u8, 0, 56]);
    tlv[4..8].copy_from_slice(&[0, 0, 0, subtype]);
    tlv[8..40].copy_from_slice(nonce);
    let mac = compound_mac(cmk, &tlv);
    tlv[40..].copy_from_slice(&mac);
    tlv
}

/// Checks a peer's Crypto-Binding TLV value (the 56 octets after its header): version 0,
/// subtype 1 (response), Compound MAC under `cmk` (constant-time).
pub fn verify_binding_response(cmk: &[u8; 20], value: &[u8]) -> bool {
    if value.len() != 56 || value[1] != 0 || value[3] != 1 {
        return false;
    }
    let mut tlv = [0u8; 60];
    tlv[..4].copy_from_slice(&[0, TLV_CRYPTO_BINDING as u8, 0, 56]);
    tlv[4..].copy_from_slice(value);
    let expected = compound_mac(cmk, &tlv);
    expected.ct_eq(&tlv[40..]).into()
}

/// The MSK and EMSK when crypto-binding was used: CSK = PRF+(IPMK, "Session Key Generating
/// Function" ‖ 0x00, 128) (the NUL counts here, not in the IPMK label — what Windows and
/// hostapd do). PEAP defines no EMSK; the second 64 octets of CSK fill it.
pub fn binding_msk(ipmk: &[u8; 40]) -> Msk {
    let mut csk = [0u8; 128];
    prf_plus(ipmk, b"Session Key Generating Function", &[0], &mut csk);
    let mut msk = [0u8; 64];
    let mut emsk = [0u8; 64];
    msk.copy_from_slice(&csk[..64]);
    emsk.copy_from_slice(&csk[64..]);
    Msk { msk, emsk }
}

#[derive(Debug)]
enum State {
    New,
    AwaitIdentity,
    AwaitMsChap,
    AwaitNtHash,
    AwaitResult {
        success: bool,
        reason: &'static str,
        cmk: Option<([u8; 40], [u8; 20])>,
    },
    Done,
}

/// The PEAPv0 inner phase, server side (inner method: EAP-MSCHAPv2).
#[derive(Debug)]
pub struct PeapInner {
    server_name: String,
    auth_challenge: [u8; 16],
    binding: Option<PeapBinding>,
    /// Identifier of the last inner request sent.
    id: u8,
    state: State,
    identity: Option<String>,
    mschap: Option<MsChapV2Server>,
}

impl PeapInner {
    /// `server_name`: sent in the MSCHAPv2 Challenge; `auth_challenge`: 16 random octets (the
    /// MSCHAPv2 authenticator challenge); `binding`: `None` = no crypto-binding, else what it
    /// needs (see [`PeapBinding`]).
    pub fn new(
        server_name: &str,
        auth_challenge: [u8; 16],
        binding: Option<PeapBinding>,
    ) -> PeapInner {
        PeapInner {
            server_name: server_name.to_string(),
            auth_challenge,
            binding,
            id: 0,
            state: State::New,
            identity: None,
            mschap: None,
        }
    }

    /// The inner identity, once the peer sent it.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    fn next_id(&mut self) -> u8 {
        self.id = self.id.wrapping_add(1);
        self.id
    }

    /// First inner request: EAP-Request/Identity (header-less: the Type octet alone).
    pub fn start(&mut self) -> InnerStep {
        if !matches!(self.state, State::New) {
            return InnerStep::Invalid("peap_already_started");
        }
        self.next_id();
        self.state = State::AwaitIdentity;
        InnerStep::Send(vec![EapType::Identity.as_u8()])
    }

    fn send_mschap(&mut self, data: Vec<u8>) -> InnerStep {
        self.next_id();
        self.state = State::AwaitMsChap;
        let mut out = Vec::with_capacity(1 + data.len());
        out.push(EapType::MsChapV2.as_u8());
        out.extend_from_slice(&data);
        InnerStep::Send(out)
    }

    /// Sends the Extensions request with a Result TLV (and, on success with binding, the
    /// Crypto-Binding TLV) and waits for the peer's.
    fn send_result(&mut self, success: bool, reason: &'static str) -> InnerStep {
        let id = self.next_id();
        let mut tlvs = result_tlv(success).to_vec();
        let mut cmk = None;
        if success && let Some(b) = &self.binding {
            let isk = self
                .mschap
                .as_ref()
                .and_then(|m| m.keys())
                .map(|k| k.isk())
                .unwrap_or([0u8; 32]);
            let (ipmk, c) = compound_keys(&b.tk, &isk);
            tlvs.extend_from_slice(&binding_tlv(&c, &b.nonce, 0));
            cmk = Some((ipmk, c));
        }
        self.state = State::AwaitResult {
            success,
            reason,
            cmk,
        };
        InnerStep::Send(packet::encode(
            Code::Request,
            id,
            EapType::Extensions,
            &tlvs,
        ))
    }

    fn fail(&mut self, reason: &'static str) -> InnerStep {
        self.state = State::Done;
        InnerStep::Failure {
            reason,
            user: self.identity.clone(),
        }
    }

    /// A tunnelled plaintext message from the peer.
    pub fn on_data(&mut self, plain: &[u8]) -> InnerStep {
        let p = match decode_tunnelled(plain, self.id) {
            Ok(p) => p,
            Err(e) => return InnerStep::Invalid(e),
        };
        match self.state {
            State::AwaitIdentity => {
                if p.typ != EapType::Identity {
                    return InnerStep::Invalid("peap_expected_identity");
                }
                let Ok(identity) = std::str::from_utf8(p.data) else {
                    return InnerStep::Invalid("peap_identity_not_utf8");
                };
                if identity.is_empty() || identity.len() > 253 {
                    return InnerStep::Invalid("peap_bad_identity");
                }
                self.identity = Some(identity.to_string());
                let id = self.id.wrapping_add(1);
                let mut m = MsChapV2Server::new(&self.server_name, self.auth_challenge, id);
                let c = m.challenge();
                self.mschap = Some(m);
                self.send_mschap(c)
            }
            State::AwaitMsChap => match p.typ {
                EapType::Nak => self.send_result(false, "peap_inner_method_refused"),
                EapType::MsChapV2 => {
                    let Some(m) = self.mschap.as_mut() else {
                        return InnerStep::Invalid("peap_no_inner_method");
                    };
                    match m.on_response(p.data) {
                        ServerStep::NeedNtHash { user } => {
                            let identity = self.identity.clone().unwrap_or_default();
                            // hostapd and Windows refuse a Name other than the identity.
                            if mschapv2::strip_domain(user.as_bytes())
                                != mschapv2::strip_domain(identity.as_bytes())
                            {
                                return self.send_result(false, "mschapv2_name_mismatch");
                            }
                            self.state = State::AwaitNtHash;
                            InnerStep::NeedNtHash { user: identity }
                        }
                        ServerStep::Success { .. } => self.send_result(true, "peap_success"),
                        ServerStep::Failure { reason, .. } => self.send_result(false, reason),
                        ServerStep::Send(d) => self.send_mschap(d),
                        ServerStep::Invalid(r) => InnerStep::Invalid(r),
                    }
                }
                _ => InnerStep::Invalid("peap_unexpected_inner_type"),
            },
            State::AwaitResult {
                success,
                reason,
                cmk,
            } => {
                if !p.had_header || p.typ != EapType::Extensions {
                    return InnerStep::Invalid("peap_expected_extensions");
                }
                let tlvs = match parse_tlvs(p.data) {
                    Ok(t) => t,
                    Err(e) => return self.fail(e),
                };
                let mut result = None;
                let mut peer_binding = None;
                for t in &tlvs {
                    match t.typ {
                        TLV_RESULT => result = Some(t.value),
                        TLV_CRYPTO_BINDING => peer_binding = Some(t.value),
                        _ if t.mandatory => return self.fail("peap_unknown_mandatory_tlv"),
                        _ => {}
                    }
                }
                let Some(result) = result else {
                    return self.fail("peap_no_result_tlv");
                };
                if !success {
                    return self.fail(reason);
                }
                if result != RESULT_SUCCESS.to_be_bytes() {
                    return self.fail("peap_peer_result_failure");
                }
                let mut msk = None;
                if let (Some((ipmk, c)), Some(b)) = (cmk, &self.binding) {
                    match peer_binding {
                        Some(v) if verify_binding_response(&c, v) => msk = Some(binding_msk(&ipmk)),
                        Some(_) => return self.fail("peap_crypto_binding_invalid"),
                        None if b.policy == BindingPolicy::Required => {
                            return self.fail("peap_crypto_binding_missing");
                        }
                        None => {}
                    }
                }
                self.state = State::Done;
                InnerStep::Success {
                    user: self.identity.clone().unwrap_or_default(),
                    method: "mschapv2",
                    msk,
                }
            }
            State::New | State::AwaitNtHash | State::Done => {
                InnerStep::Invalid("peap_unexpected_message")
            }
        }
    }

    /// The shell's answer to `InnerStep::NeedNtHash`.
    pub fn on_verdict(&mut self, v: InnerVerdict) -> InnerStep {
        if !matches!(self.state, State::AwaitNtHash) {
            return InnerStep::Invalid("peap_unexpected_verdict");
        }
        let InnerVerdict::NtHash(hash) = v else {
            return InnerStep::Invalid("peap_wrong_verdict_kind");
        };
        let Some(m) = self.mschap.as_mut() else {
            return InnerStep::Invalid("peap_no_inner_method");
        };
        match m.on_nt_hash(hash) {
            ServerStep::Send(d) => self.send_mschap(d),
            ServerStep::Invalid(r) => InnerStep::Invalid(r),
            other => {
                // on_nt_hash only answers Send or Invalid; anything else is a bug: fail safe.
                let _ = other;
                self.send_result(false, "peap_internal")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mschapv2::{Packet, asymmetric_start_key};
    use proptest::prelude::*;

    const AUTH: [u8; 16] = *b"authchallenge-16";
    const PEER_CHALLENGE: [u8; 16] = *b"peer-challenge16";
    const TK: [u8; 40] = [7u8; 40];
    const NONCE: [u8; 32] = [9u8; 32];

    /// What the test peer does with the Crypto-Binding TLV.
    #[derive(Clone, Copy, PartialEq)]
    enum PeerBinding {
        Answer,
        Omit,
        Tamper,
    }

    /// A PEAPv0 peer (wpa_supplicant's behaviour) written from the client-side primitives;
    /// it knows the TK because both ends export it from the same TLS session.
    struct Peer {
        identity: String,
        password: String,
        binding: PeerBinding,
        nt: Option<([u8; 16], [u8; 24], [u8; 16])>,
        /// The MSK the peer derived from crypto-binding.
        msk: Option<Msk>,
    }

    impl Peer {
        fn new(identity: &str, password: &str) -> Peer {
            Peer {
                identity: identity.into(),
                password: password.into(),
                binding: PeerBinding::Answer,
                nt: None,
                msk: None,
            }
        }

        fn respond(&mut self, req: &[u8]) -> Vec<u8> {
            if req.first() == Some(&1) && req.len() >= 5 && req[4] == 33 {
                let p = EapPacket::decode(req).unwrap();
                let tlvs = parse_tlvs(p.data).unwrap();
                let mut out = Vec::new();
                for t in &tlvs {
                    match t.typ {
                        TLV_RESULT => out.extend_from_slice(&result_tlv(
                            t.value == RESULT_SUCCESS.to_be_bytes() && self.nt.is_some(),
                        )),
                        TLV_CRYPTO_BINDING if self.binding != PeerBinding::Omit => {
                            let (hash, ntr, _) = self.nt.unwrap();
                            let m = mschapv2::MppeKeys::derive(&hash, &ntr).master_key;
                            // The peer's ISK: its send key then its receive key.
                            let mut isk = [0u8; 32];
                            isk[..16].copy_from_slice(&asymmetric_start_key(&m, true, false));
                            isk[16..].copy_from_slice(&asymmetric_start_key(&m, false, false));
                            let (ipmk, cmk) = compound_keys(&TK, &isk);
                            let mut req_tlv = [0u8; 60];
                            req_tlv[..4].copy_from_slice(&[0, 12, 0, 56]);
                            req_tlv[4..].copy_from_slice(t.value);
                            assert_eq!(compound_mac(&cmk, &req_tlv), req_tlv[40..], "server MAC");
                            let mut nonce = [0u8; 32];
                            nonce.copy_from_slice(&t.value[4..36]);
                            let mut resp = binding_tlv(&cmk, &nonce, 1);
                            if self.binding == PeerBinding::Tamper {
                                resp[59] ^= 1;
                            }
                            out.extend_from_slice(&resp);
                            self.msk = Some(binding_msk(&ipmk));
                        }
                        _ => {}
                    }
                }
                return packet::encode(Code::Response, p.identifier, EapType::Extensions, &out);
            }
            match req.first() {
                Some(1) => {
                    let mut out = vec![1];
                    out.extend_from_slice(self.identity.as_bytes());
                    out
                }
                Some(26) => {
                    let mut out = vec![26];
                    match Packet::decode(&req[1..]).unwrap() {
                        Packet::Challenge {
                            ms_id, challenge, ..
                        } => {
                            let hash = mschapv2::nt_password_hash(&self.password);
                            let user = mschapv2::strip_domain(self.identity.as_bytes());
                            let ntr = mschapv2::generate_nt_response(
                                &challenge,
                                &PEER_CHALLENGE,
                                user,
                                &hash,
                            );
                            self.nt = Some((hash, ntr, challenge));
                            out.extend(mschapv2::encode_response(
                                ms_id,
                                &PEER_CHALLENGE,
                                &ntr,
                                self.identity.as_bytes(),
                            ));
                        }
                        Packet::SuccessRequest { message, .. } => {
                            let (hash, ntr, challenge) = self.nt.unwrap();
                            let user = mschapv2::strip_domain(self.identity.as_bytes());
                            assert!(mschapv2::check_authenticator_response(
                                &hash,
                                &ntr,
                                &PEER_CHALLENGE,
                                &challenge,
                                user,
                                message
                            ));
                            out.extend(mschapv2::encode_success_response());
                        }
                        Packet::FailureRequest { .. } => {
                            self.nt = None;
                            out.extend(mschapv2::encode_failure_response());
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                    out
                }
                other => panic!("unexpected inner request {other:?}"),
            }
        }
    }

    /// Runs a whole inner phase; the "store" knows `users` (name → password).
    fn run(
        server: &mut PeapInner,
        peer: &mut Peer,
        users: &[(&str, &str)],
    ) -> (InnerStep, Vec<Option<String>>) {
        let mut asked = Vec::new();
        let mut step = server.start();
        for _ in 0..20 {
            match step {
                InnerStep::Send(req) => {
                    let resp = peer.respond(&req);
                    step = server.on_data(&resp);
                }
                InnerStep::NeedNtHash { user } => {
                    let hash = users
                        .iter()
                        .find(|(u, _)| *u == user)
                        .map(|(_, p)| mschapv2::nt_password_hash(p));
                    asked.push(Some(user));
                    step = server.on_verdict(InnerVerdict::NtHash(hash));
                }
                other => return (other, asked),
            }
        }
        panic!("exchange did not end");
    }

    fn binding(policy: BindingPolicy) -> Option<PeapBinding> {
        Some(PeapBinding {
            policy,
            tk: TK,
            nonce: NONCE,
        })
    }

    #[test]
    fn peap_mschapv2_without_binding_succeeds() {
        let mut s = PeapInner::new("ironfence", AUTH, None);
        let mut p = Peer::new("alice", "secret");
        let (step, asked) = run(&mut s, &mut p, &[("alice", "secret")]);
        assert_eq!(
            step,
            InnerStep::Success {
                user: "alice".into(),
                method: "mschapv2",
                msk: None
            }
        );
        assert_eq!(asked, vec![Some("alice".to_string())]);
        assert_eq!(s.identity(), Some("alice"));
    }

    #[test]
    fn peap_with_crypto_binding_derives_the_peers_msk() {
        let mut s = PeapInner::new("ironfence", AUTH, binding(BindingPolicy::Required));
        let mut p = Peer::new("ACME\\alice", "secret");
        let (step, _) = run(&mut s, &mut p, &[("ACME\\alice", "secret")]);
        let InnerStep::Success {
            user,
            msk: Some(msk),
            ..
        } = step
        else {
            panic!("no success with binding: {step:?}");
        };
        assert_eq!(user, "ACME\\alice");
        assert_eq!(Some(msk), p.msk);
    }

    #[test]
    fn binding_optional_tolerates_a_peer_without_it_required_does_not() {
        let mut s = PeapInner::new("ironfence", AUTH, binding(BindingPolicy::Optional));
        let mut p = Peer::new("alice", "secret");
        p.binding = PeerBinding::Omit;
        let (step, _) = run(&mut s, &mut p, &[("alice", "secret")]);
        assert!(
            matches!(step, InnerStep::Success { msk: None, .. }),
            "{step:?}"
        );

        let mut s = PeapInner::new("ironfence", AUTH, binding(BindingPolicy::Required));
        let mut p = Peer::new("alice", "secret");
        p.binding = PeerBinding::Omit;
        let (step, _) = run(&mut s, &mut p, &[("alice", "secret")]);
        assert_eq!(
            step,
            InnerStep::Failure {
                reason: "peap_crypto_binding_missing",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn tampered_compound_mac_fails() {
        let mut s = PeapInner::new("ironfence", AUTH, binding(BindingPolicy::Optional));
        let mut p = Peer::new("alice", "secret");
        p.binding = PeerBinding::Tamper;
        let (step, _) = run(&mut s, &mut p, &[("alice", "secret")]);
        assert_eq!(
            step,
            InnerStep::Failure {
                reason: "peap_crypto_binding_invalid",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_after_the_result_tlv() {
        let mut s = PeapInner::new("ironfence", AUTH, None);
        let mut p = Peer::new("alice", "wrong");
        let (step, _) = run(&mut s, &mut p, &[("alice", "secret")]);
        assert_eq!(
            step,
            InnerStep::Failure {
                reason: "mschapv2_wrong_password",
                user: Some("alice".into())
            }
        );
        let mut s = PeapInner::new("ironfence", AUTH, binding(BindingPolicy::Optional));
        let mut p = Peer::new("bob", "secret");
        let (step, asked) = run(&mut s, &mut p, &[("alice", "secret")]);
        assert_eq!(
            step,
            InnerStep::Failure {
                reason: "mschapv2_unknown_user",
                user: Some("bob".into())
            }
        );
        assert_eq!(asked, vec![Some("bob".to_string())]);
    }

    #[test]
    fn mschap_name_other_than_the_identity_fails() {
        let mut s = PeapInner::new("ironfence", AUTH, None);
        assert_eq!(s.start(), InnerStep::Send(vec![1]));
        let InnerStep::Send(c) = s.on_data(b"\x01alice") else {
            panic!("no challenge");
        };
        let Ok(Packet::Challenge { ms_id, .. }) = Packet::decode(&c[1..]) else {
            panic!("not a challenge");
        };
        let mut resp = vec![26];
        resp.extend(mschapv2::encode_response(
            ms_id,
            &PEER_CHALLENGE,
            &[0; 24],
            b"mallory",
        ));
        let InnerStep::Send(result) = s.on_data(&resp) else {
            panic!("no result TLV");
        };
        let p = EapPacket::decode(&result).unwrap();
        assert_eq!(p.typ, Some(EapType::Extensions));
        assert_eq!(p.data, result_tlv(false));
        let ack = packet::encode(
            Code::Response,
            p.identifier,
            EapType::Extensions,
            &result_tlv(false),
        );
        assert_eq!(
            s.on_data(&ack),
            InnerStep::Failure {
                reason: "mschapv2_name_mismatch",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn nak_of_mschapv2_fails() {
        let mut s = PeapInner::new("ironfence", AUTH, None);
        s.start();
        assert!(matches!(s.on_data(b"\x01alice"), InnerStep::Send(_)));
        let InnerStep::Send(result) = s.on_data(&[3, 6]) else {
            panic!("no result TLV");
        };
        let p = EapPacket::decode(&result).unwrap();
        assert_eq!(p.data, result_tlv(false));
        let ack = packet::encode(
            Code::Response,
            p.identifier,
            EapType::Extensions,
            &result_tlv(false),
        );
        assert!(matches!(
            s.on_data(&ack),
            InnerStep::Failure {
                reason: "peap_inner_method_refused",
                ..
            }
        ));
    }

    #[test]
    fn out_of_order_and_malformed_are_invalid() {
        let mut s = PeapInner::new("ironfence", AUTH, None);
        assert_eq!(
            s.on_data(b"\x01alice"),
            InnerStep::Invalid("peap_unexpected_message")
        );
        assert_eq!(
            s.on_verdict(InnerVerdict::NtHash(None)),
            InnerStep::Invalid("peap_unexpected_verdict")
        );
        s.start();
        assert_eq!(s.start(), InnerStep::Invalid("peap_already_started"));
        assert_eq!(s.on_data(&[]), InnerStep::Invalid("peap_empty_inner"));
        assert_eq!(
            s.on_data(&[26, 1]),
            InnerStep::Invalid("peap_expected_identity")
        );
        assert_eq!(
            s.on_data(&[1, 0xff]),
            InnerStep::Invalid("peap_identity_not_utf8")
        );
        assert_eq!(
            s.on_data(&[33]),
            InnerStep::Invalid("peap_extensions_without_header")
        );
        // Still usable afterwards.
        assert!(matches!(s.on_data(b"\x01alice"), InnerStep::Send(_)));
        assert_eq!(
            s.on_data(&[26, 2, 1]),
            InnerStep::Invalid("mschapv2_too_short")
        );
    }

    #[test]
    fn extensions_response_with_the_wrong_id_or_unknown_mandatory_tlv() {
        let mut s = PeapInner::new("ironfence", AUTH, None);
        let mut p = Peer::new("alice", "secret");
        let mut step = s.start();
        // Drive to the Result TLV request.
        let result = loop {
            match step {
                InnerStep::Send(req) if req[0] == 1 && req.len() >= 5 && req[4] == 33 => break req,
                InnerStep::Send(req) => step = s.on_data(&p.respond(&req)),
                InnerStep::NeedNtHash { .. } => {
                    step = s.on_verdict(InnerVerdict::NtHash(Some(mschapv2::nt_password_hash(
                        "secret",
                    ))))
                }
                other => panic!("{other:?}"),
            }
        };
        let id = result[1];
        let wrong = packet::encode(
            Code::Response,
            id.wrapping_add(1),
            EapType::Extensions,
            &result_tlv(true),
        );
        assert_eq!(s.on_data(&wrong), InnerStep::Invalid("peap_wrong_inner_id"));
        let mut tlvs = result_tlv(true).to_vec();
        tlvs.extend_from_slice(&[0x80, 0x55, 0, 0]);
        let unknown = packet::encode(Code::Response, id, EapType::Extensions, &tlvs);
        assert_eq!(
            s.on_data(&unknown),
            InnerStep::Failure {
                reason: "peap_unknown_mandatory_tlv",
                user: Some("alice".into())
            }
        );
    }

    #[test]
    fn tlv_parser_bounds() {
        assert_eq!(parse_tlvs(&[]), Ok(vec![]));
        assert_eq!(
            parse_tlvs(&result_tlv(true)),
            Ok(vec![Tlv {
                mandatory: true,
                typ: 3,
                value: &[0, 1]
            }])
        );
        assert_eq!(parse_tlvs(&[0, 3, 0]), Err("peap_tlv_truncated"));
        assert_eq!(parse_tlvs(&[0, 3, 0, 3, 0, 1]), Err("peap_tlv_truncated"));
        let many: Vec<u8> = std::iter::repeat_n([0u8, 9, 0, 0], MAX_TLVS + 1)
            .flatten()
            .collect();
        assert_eq!(parse_tlvs(&many), Err("peap_too_many_tlvs"));
    }

    #[test]
    fn prf_plus_matches_its_definition() {
        // T1 = HMAC-SHA1(K, S ‖ 1 ‖ 0 ‖ 0), T2 = HMAC-SHA1(K, T1 ‖ S ‖ 2 ‖ 0 ‖ 0), computed
        // by hand with the HMAC primitive.
        let k = b"key";
        let mut out = [0u8; 30];
        prf_plus(k, b"label", b"seed", &mut out);
        let h = |parts: &[&[u8]]| {
            let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(k).unwrap();
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes()
        };
        let t1 = h(&[b"labelseed", &[1, 0, 0]]);
        let t2 = h(&[&t1, b"labelseed", &[2, 0, 0]]);
        assert_eq!(&out[..20], &t1[..]);
        assert_eq!(&out[20..], &t2[..10]);
        // HMAC-SHA1 itself: RFC 2202 test case 2.
        let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            m.finalize().into_bytes()[..],
            hex_literal::hex!("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
    }

    #[test]
    fn reconstruct_prepends_the_response_header() {
        let r = reconstruct(b"\x01alice", 7).unwrap();
        let p = EapPacket::decode(&r).unwrap();
        assert_eq!(
            (p.code, p.identifier, p.typ, p.data),
            (Code::Response, 7, Some(EapType::Identity), &b"alice"[..])
        );
        assert!(reconstruct(&vec![0u8; 65532], 1).is_none());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), id in any::<u8>()) {
            let _ = decode_tunnelled(&data, id);
            let _ = parse_tlvs(&data);
            let _ = verify_binding_response(&[0; 20], &data);
        }

        #[test]
        fn state_machine_never_panics(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..90), 0..8), verdicts in proptest::collection::vec(any::<bool>(), 8)) {
            let mut s = PeapInner::new("x", AUTH, binding(BindingPolicy::Optional));
            s.start();
            for (m, v) in msgs.iter().zip(verdicts) {
                if let InnerStep::NeedNtHash { .. } = s.on_data(m) {
                    let _ = s.on_verdict(InnerVerdict::NtHash(v.then_some([1; 16])));
                }
            }
        }
    }
}

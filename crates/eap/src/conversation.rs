//! The conversation table and the EAP server state machine (RFC 3748 §2, RFC 3579 §2.1).
//!
//! A conversation is found by the RADIUS State attribute this server issued (16 random
//! octets). It lives until success, failure, `Limits::timeout` since its last round, or
//! `Limits::max_rounds`. New conversations are bounded per client (switch) and globally;
//! every refusal is a [`Step::Discard`] with a reason the shell counts.
//!
//! `Conversations` is `Sync`: the table lock is held only to find or insert an entry; each
//! conversation has its own lock, so TLS work on different conversations runs in parallel.

use crate::inner::{InnerStep, InnerVerdict};
use crate::keys::{Msk, TLS13_LABEL, tls12_label};
use crate::packet::{Code, EapPacket, EapType, encode, encode_result};
use crate::peap::{BindingPolicy, PeapBinding, PeapInner};
use crate::tls::TlsEngine;
use crate::tlsframe::{
    FLAG_S, Fragmenter, Reassembled, Reassembler, TlsFrame, encode_request, fragment_size,
};
use crate::ttls::TtlsInner;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Bounds on what hostile or broken peers can make the server hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A conversation with no round for this long is gone (PacketFence: `timer_expire 60`).
    pub timeout: Duration,
    /// Rounds (Access-Requests) per conversation.
    pub max_rounds: u32,
    /// Open conversations, all clients together.
    pub max_conversations: usize,
    /// Open conversations started by one client (switch / NAS).
    pub max_per_client: usize,
    /// Largest reassembled TLS message (L/M/S fragments), octets.
    pub max_tls_message: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(60),
            max_rounds: 50,
            max_conversations: 16_384,
            max_per_client: 4_096,
            max_tls_message: 64 * 1024,
        }
    }
}

/// What the server offers, built by the shell from `eap.conf` and `conf/ssl`.
#[derive(Debug, Clone)]
pub struct ConversationsConfig {
    /// EAP-TLS: client certificate required and verified (CAs, CRLs) by this config.
    pub tls_client_auth: Arc<rustls::ServerConfig>,
    /// PEAP and TTLS: no client certificate.
    pub tls_tunnel: Arc<rustls::ServerConfig>,
    /// Methods offered, the first is proposed after Identity; a NAK picks among the rest.
    pub methods: Vec<EapType>,
    /// TLS-method fragment payload (octets of TLS data per EAP packet); Framed-MTU lowers it.
    pub fragment_size: usize,
    /// Server name sent in MSCHAPv2 challenges and Authenticator Responses.
    pub server_name: String,
    pub limits: Limits,
}

/// One Access-Request's EAP part.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Monotonic time from the shell (no clock here).
    pub now: Instant,
    /// The switch that sent it (per-client limit).
    pub client: IpAddr,
    /// The RADIUS State attribute, if any.
    pub state: Option<&'a [u8]>,
    /// The EAP-Message attributes, joined.
    pub eap: &'a [u8],
    /// Framed-MTU (RFC 3579 §2.4): fragments are sized to fit.
    pub framed_mtu: Option<u32>,
    /// This switch sends MAB as EAP-MD5 with the MAC as identity and password (Juniper
    /// `mac-radius`, Dell): such a conversation ends in `Outcome::method == Md5Challenge`.
    pub md5_mab: bool,
}

/// The EAP method that authenticated (outer) and the inner one (PEAP/TTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub outer: EapType,
    /// PEAP/TTLS: `mschapv2`, `pap`.
    pub inner: Option<&'static str>,
    /// `TLSv1_2`, `TLSv1_3` for TLS methods.
    pub tls_version: Option<&'static str>,
    /// The TLS session was resumed (ticket).
    pub resumed: bool,
}

/// Who authenticated, for the shell's policy and audit.
#[derive(Debug, Clone)]
pub struct Outcome<F> {
    pub method: Method,
    /// EAP-Response/Identity (outer; may be anonymous for PEAP/TTLS).
    pub identity: String,
    /// The inner identity (PEAP/TTLS), else `None`.
    pub inner_identity: Option<String>,
    /// EAP-TLS: the client's certificate chain (DER, end-entity first).
    pub peer_certificates: Vec<Vec<u8>>,
    /// What the shell returned with its verdict (source attributes, owner), carried back.
    pub facts: Option<F>,
}

/// Identifies a pending [`Step::Verify`] for [`Conversations::resume`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifyId(pub [u8; 16]);

/// A credential check only the shell can make (store, directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Inner MSCHAPv2: the NT hash of `user`'s password.
    NtHash { user: String },
    /// TTLS/PAP: whether `password` is `user`'s.
    Password { user: String, password: String },
}

/// The shell's answer to a [`Verify`].
#[derive(Debug, Clone)]
pub enum Verdict<F> {
    /// The NT hash (unknown user / no hash: `None` → the method fails as a wrong password).
    NtHash(Option<[u8; 16]>, Option<F>),
    /// Password checked: accepted (with facts), or refused.
    Password(bool, Option<F>),
    /// The source could not be asked: no answer at all (the NAS retransmits; the guide's
    /// "external sources must answer or the login fails").
    Unavailable,
}

/// What to send.
#[derive(Debug)]
pub enum Step<F> {
    /// Access-Challenge with this EAP-Message and State.
    Challenge { eap: Vec<u8>, state: Vec<u8> },
    /// Ask the shell, then call [`Conversations::resume`].
    Verify { id: VerifyId, what: Verify },
    /// Authenticated: EAP-Success (the shell may still refuse by policy and send Failure).
    Success {
        eap: Vec<u8>,
        keys: Option<Msk>,
        outcome: Box<Outcome<F>>,
    },
    /// Access-Reject with EAP-Failure; `reason` is for the audit log.
    Failure {
        eap: Vec<u8>,
        reason: &'static str,
        outcome: Option<Box<Outcome<F>>>,
    },
    /// Dropped silently (RFC 3579 §2.6.x), counted under `reason`.
    Discard { reason: &'static str },
}

type Key = [u8; 16];

/// Largest tunnelled plaintext taken from the TLS session in one round (an inner message is
/// a few hundred octets; this only bounds what a hostile peer can make us buffer).
const MAX_INNER_PLAINTEXT: usize = 16 * 1024;

struct Entry<F> {
    conv: Arc<Mutex<Conv<F>>>,
    client: IpAddr,
    last_seen: Instant,
    rounds: u32,
}

struct Table<F> {
    map: HashMap<Key, Entry<F>>,
    per_client: HashMap<IpAddr, usize>,
}

impl<F> Table<F> {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key)
            && let Some(n) = self.per_client.get_mut(&e.client)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&e.client);
            }
        }
    }

    fn expire(&mut self, now: Instant, timeout: Duration) -> usize {
        let old: Vec<Key> = self
            .map
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_seen) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for k in &old {
            self.remove(k);
        }
        // After a flood the table gives its memory back instead of keeping its peak size.
        if self.map.len() < self.map.capacity() / 4
            || (self.map.is_empty() && self.map.capacity() > 0)
        {
            self.map.shrink_to(self.map.len() * 2);
            self.per_client.shrink_to(self.per_client.len() * 2);
        }
        old.len()
    }
}

/// The inner phase of a tunnelled method.
enum Inner {
    Peap(Box<PeapInner>),
    Ttls(TtlsInner),
}

/// A TLS method in progress.
struct TlsState {
    method: EapType,
    engine: TlsEngine,
    reasm: Reassembler,
    out: Option<Fragmenter>,
    stage: TlsStage,
    inner: Option<Inner>,
    /// TLS output produced but not sent yet (session tickets written when the handshake
    /// completed while the inner method waits for a credential check): leads the next flight.
    unsent: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsStage {
    Handshake,
    /// EAP-TLS: our last flight (Finished, tickets, RFC 9190 §2.5 commitment) awaits the
    /// peer's ACK.
    AwaitFinalAck,
    /// PEAP / TTLS: the tunnel is up; `started`: the inner method has begun.
    Tunnel {
        started: bool,
    },
    /// An alert was sent; the peer's answer gets EAP-Failure (RFC 5216 §2.1.3).
    Failing(&'static str),
}

enum Phase {
    /// EAP-Start (RFC 3579 §2.1) answered with Request/Identity.
    AwaitIdentity,
    /// A method's first Request was sent; a NAK may still change it (RFC 3748 §5.3.1).
    Proposed {
        method: EapType,
        naked: bool,
    },
    /// MAB over EAP-MD5: the challenge sent.
    Md5 {
        challenge: [u8; 16],
    },
    Tls(Box<TlsState>),
}

/// A credential check handed to the shell, waiting for [`Conversations::resume`].
struct Pending {
    what: Verify,
    /// `false` after [`Verdict::Unavailable`]: the NAS's retransmission asks again.
    asked: bool,
}

struct Conv<F> {
    config: Arc<ConversationsConfig>,
    state: Key,
    identity: String,
    framed_mtu: Option<u32>,
    md5_mab: bool,
    /// Identifier of the outstanding Request.
    req_id: u8,
    /// Identifier of the Response last answered and what we answered (resent on duplicate).
    answered: Option<u8>,
    last_eap: Vec<u8>,
    phase: Phase,
    pending: Option<Pending>,
    inner_method: Option<&'static str>,
    inner_identity: Option<String>,
    facts: Option<F>,
}

/// The open conversations of one server.
pub struct Conversations<F> {
    config: RwLock<Arc<ConversationsConfig>>,
    table: Mutex<Table<F>>,
}

impl<F> std::fmt::Debug for Conversations<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations")
            .field("open", &self.table.lock().map(|t| t.map.len()).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

fn tls_method(t: EapType) -> bool {
    matches!(t, EapType::Tls | EapType::Peap | EapType::Ttls)
}

fn start_request(id: u8, method: EapType) -> Vec<u8> {
    // S flag, version 0 (PEAPv0 / TTLSv0), no data (RFC 5216 §2.1.1).
    encode_request(id, method, FLAG_S, None, &[])
}

fn random<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).ok()?;
    Some(b)
}

/// A switch doing MAB over EAP-MD5 sends the MAC as identity (`001122334455`,
/// `00:11:22:33:44:55`, `00-11-…`, `0011.2233.4455`); a supplicant on the same port does not.
fn looks_like_mac(identity: &str) -> bool {
    let hex: Vec<char> = identity
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    hex.len() == 12 && hex.iter().all(|c| c.is_ascii_hexdigit()) && identity.len() <= 17
}

fn discard<F>(reason: &'static str) -> Step<F> {
    Step::Discard { reason }
}

impl<F: Send + 'static> Conversations<F> {
    pub fn new(config: Arc<ConversationsConfig>) -> Conversations<F> {
        Conversations {
            config: RwLock::new(config),
            table: Mutex::new(Table {
                map: HashMap::new(),
                per_client: HashMap::new(),
            }),
        }
    }

    /// New configuration (reload): open conversations finish with the one they began with.
    pub fn set_config(&self, config: Arc<ConversationsConfig>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn config(&self) -> Arc<ConversationsConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<F>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One Access-Request's EAP-Message.
    pub fn handle(&self, input: Input<'_>) -> Step<F> {
        if input.eap.is_empty() {
            // EAP-Start: an EAP-Message with no data (RFC 3579 §2.1).
            if input.state.is_some() {
                return discard("eap_malformed");
            }
            return self.open(input, None);
        }
        let Ok(p) = EapPacket::decode(input.eap) else {
            return discard("eap_malformed");
        };
        if p.code != Code::Response {
            return discard("eap_not_response");
        }
        let Some(state) = input.state else {
            if p.typ != Some(EapType::Identity) {
                return discard("eap_no_state");
            }
            return self.open(input, Some(&p));
        };
        let Ok(key) = <Key>::try_from(state) else {
            return discard("eap_unknown_state");
        };
        let Some(conv) = self.touch(&key, input.now) else {
            return discard("eap_unknown_state");
        };
        let conv = match conv {
            Ok(c) => c,
            Err(reason) => return discard(reason),
        };
        let mut c = conv.lock().unwrap_or_else(|p| p.into_inner());
        let req_id = c.req_id;
        if let Some(pending) = &mut c.pending {
            // The shell is checking a credential for this round. A retransmission after the
            // source was unavailable asks again; otherwise it is the NAS being impatient.
            if p.identifier == req_id && !pending.asked {
                pending.asked = true;
                return Step::Verify {
                    id: VerifyId(key),
                    what: pending.what.clone(),
                };
            }
            return discard("eap_verify_in_progress");
        }
        if c.answered == Some(p.identifier) && !c.last_eap.is_empty() {
            // A retransmitted round (the NAS lost our Challenge): same answer, no change.
            return Step::Challenge {
                eap: c.last_eap.clone(),
                state: key.to_vec(),
            };
        }
        if p.identifier != c.req_id {
            return discard("eap_wrong_identifier");
        }
        c.framed_mtu = input.framed_mtu.or(c.framed_mtu);
        let (step, done) = c.round(&p);
        self.after_round(&key, &mut c, p.identifier, step, done)
    }

    /// Finds a conversation, applying expiry and the round limit. `None`: unknown.
    fn touch(&self, key: &Key, now: Instant) -> Option<Result<Arc<Mutex<Conv<F>>>, &'static str>> {
        let limits = self.config().limits.clone();
        let mut t = self.lock();
        let e = t.map.get_mut(key)?;
        if now.saturating_duration_since(e.last_seen) > limits.timeout {
            t.remove(key);
            return Some(Err("eap_expired"));
        }
        e.rounds += 1;
        if e.rounds > limits.max_rounds {
            t.remove(key);
            return Some(Err("eap_too_many_rounds"));
        }
        e.last_seen = now;
        Some(Ok(e.conv.clone()))
    }

    /// Remembers the answer (for retransmissions) and closes finished conversations.
    fn after_round(
        &self,
        key: &Key,
        c: &mut Conv<F>,
        answered: u8,
        step: Step<F>,
        done: bool,
    ) -> Step<F> {
        if let Step::Challenge { eap, .. } = &step {
            c.answered = Some(answered);
            c.last_eap = eap.clone();
        }
        if done {
            self.lock().remove(key);
        }
        step
    }

    /// EAP-Start or a Response/Identity without State opens a conversation (bounded, RFC
    /// 3579 §2.6).
    fn open(&self, input: Input<'_>, p: Option<&EapPacket<'_>>) -> Step<F> {
        let config = self.config();
        let Some(state) = random::<16>() else {
            return discard("eap_no_randomness");
        };
        let mut conv = Conv {
            config: config.clone(),
            state,
            identity: String::new(),
            framed_mtu: input.framed_mtu,
            md5_mab: input.md5_mab,
            req_id: 0,
            answered: None,
            last_eap: Vec::new(),
            phase: Phase::AwaitIdentity,
            pending: None,
            inner_method: None,
            inner_identity: None,
            facts: None,
        };
        let (step, done) = match p {
            None => conv.challenge(encode(Code::Request, 0, EapType::Identity, &[])),
            Some(p) => conv.round(p),
        };
        let Step::Challenge { eap, .. } = &step else {
            // No method to propose: answered without opening anything.
            return step;
        };
        debug_assert!(!done);
        if let Some(p) = p {
            conv.answered = Some(p.identifier);
        }
        conv.last_eap = eap.clone();
        let limits = &config.limits;
        let mut t = self.lock();
        if t.map.len() >= limits.max_conversations {
            t.expire(input.now, limits.timeout);
            if t.map.len() >= limits.max_conversations {
                return discard("eap_too_many_conversations");
            }
        }
        if t.per_client.get(&input.client).copied().unwrap_or(0) >= limits.max_per_client {
            return discard("eap_too_many_for_client");
        }
        t.map.insert(
            state,
            Entry {
                conv: Arc::new(Mutex::new(conv)),
                client: input.client,
                last_seen: input.now,
                rounds: 1,
            },
        );
        *t.per_client.entry(input.client).or_insert(0) += 1;
        step
    }

    /// The shell's answer to a `Step::Verify`.
    pub fn resume(&self, now: Instant, id: VerifyId, verdict: Verdict<F>) -> Step<F> {
        let key = id.0;
        let conv = match self.touch(&key, now) {
            None => return discard("eap_unknown_verify"),
            Some(Err(reason)) => return discard(reason),
            Some(Ok(c)) => c,
        };
        // `touch` counted a round; a verdict is not one.
        if let Some(e) = self.lock().map.get_mut(&key) {
            e.rounds = e.rounds.saturating_sub(1);
        }
        let mut c = conv.lock().unwrap_or_else(|p| p.into_inner());
        if c.pending.is_none() {
            return discard("eap_unknown_verify");
        }
        let verdict = match verdict {
            Verdict::Unavailable => {
                if let Some(p) = &mut c.pending {
                    p.asked = false;
                }
                return discard("eap_source_unavailable");
            }
            Verdict::NtHash(h, facts) => {
                c.facts = facts;
                InnerVerdict::NtHash(h)
            }
            Verdict::Password(ok, facts) => {
                c.facts = facts;
                InnerVerdict::Password(ok)
            }
        };
        c.pending = None;
        let response_id = c.req_id;
        let next = response_id.wrapping_add(1);
        let step = match &mut c.phase {
            Phase::Tls(s) => match &mut s.inner {
                Some(Inner::Peap(i)) => i.on_verdict(verdict),
                Some(Inner::Ttls(i)) => i.on_verdict(verdict),
                None => InnerStep::Invalid("eap_internal"),
            },
            _ => InnerStep::Invalid("eap_internal"),
        };
        let (step, done) = c.inner_step(response_id, next, step);
        self.after_round(&key, &mut c, response_id, step, done)
    }

    /// Drops conversations idle longer than the timeout; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let timeout = self.config().limits.timeout;
        self.lock().expire(now, timeout)
    }

    /// Open conversations.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// State memory of the open conversations, octets: our structures and buffers plus the
    /// inline size of each rustls connection (rustls' own heap buffers are not visible and
    /// not counted; between rounds they hold at most one flight).
    pub fn state_bytes(&self) -> usize {
        let t = self.lock();
        let mut total = t.map.capacity() * (size_of::<Key>() + size_of::<Entry<F>>());
        for e in t.map.values() {
            total += size_of::<Conv<F>>();
            if let Ok(c) = e.conv.try_lock() {
                total += c.identity.capacity() + c.last_eap.capacity();
                if let Phase::Tls(s) = &c.phase {
                    total += size_of::<TlsState>()
                        + s.reasm.capacity()
                        + s.unsent.capacity()
                        + s.out.as_ref().map_or(0, |o| o.capacity())
                        + match &s.inner {
                            Some(Inner::Peap(_)) => size_of::<PeapInner>(),
                            _ => 0,
                        };
                }
            }
        }
        total
    }
}

impl<F> Conv<F> {
    fn outcome(&mut self) -> Outcome<F> {
        let (outer, tls_version, resumed, certs) = match &self.phase {
            Phase::Proposed { method, .. } => (*method, None, false, Vec::new()),
            Phase::AwaitIdentity => (EapType::Identity, None, false, Vec::new()),
            Phase::Md5 { .. } => (EapType::Md5Challenge, None, false, Vec::new()),
            Phase::Tls(s) => (
                s.method,
                s.engine.version_label(),
                s.engine.resumed(),
                s.engine.peer_certificates(),
            ),
        };
        Outcome {
            method: Method {
                outer,
                inner: self.inner_method,
                tls_version,
                resumed,
            },
            identity: self.identity.clone(),
            inner_identity: self.inner_identity.clone(),
            peer_certificates: certs,
            facts: self.facts.take(),
        }
    }

    fn failure(&mut self, id: u8, reason: &'static str) -> (Step<F>, bool) {
        let outcome = Some(Box::new(self.outcome()));
        (
            Step::Failure {
                eap: encode_result(false, id),
                reason,
                outcome,
            },
            true,
        )
    }

    fn challenge(&mut self, eap: Vec<u8>) -> (Step<F>, bool) {
        self.req_id = EapPacket::decode(&eap).map_or(self.req_id, |p| p.identifier);
        (
            Step::Challenge {
                eap,
                state: self.state.to_vec(),
            },
            false,
        )
    }

    /// After Identity: MD5 for a MAB-over-EAP switch sending a MAC, else the first TLS
    /// method configured.
    fn propose(&mut self, id: u8) -> (Step<F>, bool) {
        let next = id.wrapping_add(1);
        if self.md5_mab_allowed() {
            return self.md5_challenge(id);
        }
        let Some(&method) = self.config.methods.iter().find(|m| tls_method(**m)) else {
            return self.failure(id, "no_common_method");
        };
        self.phase = Phase::Proposed {
            method,
            naked: false,
        };
        self.challenge(start_request(next, method))
    }

    /// MAB over EAP-MD5: only on a switch configured for it, only for a MAC identity.
    fn md5_mab_allowed(&self) -> bool {
        self.md5_mab && looks_like_mac(&self.identity)
    }

    fn md5_challenge(&mut self, id: u8) -> (Step<F>, bool) {
        let Some(challenge) = random::<16>() else {
            return self.failure(id, "eap_no_randomness");
        };
        self.phase = Phase::Md5 { challenge };
        self.challenge(crate::md5::challenge_request(
            id.wrapping_add(1),
            &challenge,
        ))
    }

    /// RFC 3748 §5.3.1: the peer lists the types it wants, in order.
    fn nak(&mut self, p: &EapPacket<'_>) -> (Step<F>, bool) {
        let pick = p
            .data
            .iter()
            .map(|&t| EapType::from_u8(t))
            .find(|t| tls_method(*t) && self.config.methods.contains(t));
        match pick {
            Some(m) => {
                self.phase = Phase::Proposed {
                    method: m,
                    naked: true,
                };
                self.challenge(start_request(p.identifier.wrapping_add(1), m))
            }
            None => self.failure(p.identifier, "no_common_method"),
        }
    }

    /// One Response with the expected identifier; `true`: the conversation is over.
    fn round(&mut self, p: &EapPacket<'_>) -> (Step<F>, bool) {
        let id = p.identifier;
        match self.phase {
            Phase::AwaitIdentity => {
                if p.typ != Some(EapType::Identity) {
                    return self.failure(id, "eap_expected_identity");
                }
                let data = &p.data[..p.data.len().min(253)];
                self.identity = String::from_utf8_lossy(data).into_owned();
                return self.propose(id);
            }
            Phase::Md5 { challenge } => {
                return match p.typ {
                    Some(EapType::Md5Challenge) => {
                        let password = self.identity.clone();
                        if crate::md5::verify(id, &challenge, password.as_bytes(), p.data) {
                            self.success(id)
                        } else {
                            self.failure(id, "md5_wrong_password")
                        }
                    }
                    Some(EapType::Nak) => self.nak(p),
                    _ => self.failure(id, "eap_unexpected_type"),
                };
            }
            Phase::Proposed { method, naked } => match p.typ {
                Some(EapType::Nak) if !naked => return self.nak(p),
                Some(t) if t == method => {
                    let config = match method {
                        EapType::Tls => self.config.tls_client_auth.clone(),
                        _ => self.config.tls_tunnel.clone(),
                    };
                    let Ok(engine) = TlsEngine::new(config) else {
                        return self.failure(id, "tls_config");
                    };
                    self.phase = Phase::Tls(Box::new(TlsState {
                        method,
                        engine,
                        reasm: Reassembler::default(),
                        out: None,
                        stage: TlsStage::Handshake,
                        inner: None,
                        unsent: Vec::new(),
                    }));
                }
                _ => return self.failure(id, "eap_unexpected_type"),
            },
            Phase::Tls(_) => {}
        }
        self.tls_round(p)
    }

    fn tls_round(&mut self, p: &EapPacket<'_>) -> (Step<F>, bool) {
        let id = p.identifier;
        let next = id.wrapping_add(1);
        let frag = fragment_size(self.config.fragment_size, self.framed_mtu);
        let max = self.config.limits.max_tls_message;
        let Phase::Tls(s) = &mut self.phase else {
            return self.failure(id, "eap_internal");
        };
        if p.typ != Some(s.method) {
            return self.failure(id, "eap_unexpected_type");
        }
        let method = s.method;
        let frame = match TlsFrame::decode(p.data) {
            Ok(f) => f,
            Err(e) => return self.failure(id, e.label()),
        };
        // Our flight is being fragmented: each fragment is ACKed by an empty Response.
        if let Some(out) = &mut s.out {
            if !frame.is_empty_ack() {
                return self.failure(id, "tls_fragment_protocol");
            }
            let (flags, length, chunk) = out.next_fragment();
            let eap = encode_request(next, method, flags, length, chunk);
            if out.done() {
                s.out = None;
            }
            return self.challenge(eap);
        }
        let msg = match s.reasm.push(&frame, max) {
            Err(e) => return self.failure(id, e.label()),
            Ok(Reassembled::NeedMore) => {
                return self.challenge(encode_request(next, method, 0, None, &[]));
            }
            Ok(Reassembled::Complete(m)) => m,
        };
        match s.stage {
            TlsStage::Failing(reason) => self.failure(id, reason),
            TlsStage::AwaitFinalAck => {
                if !msg.is_empty()
                    && let Err(f) = s.engine.feed(&msg)
                {
                    return self.failure(id, f.reason);
                }
                self.success(id)
            }
            TlsStage::Tunnel { .. } => {
                if !msg.is_empty()
                    && let Err(f) = s.engine.feed(&msg)
                {
                    return self.failure(id, f.reason);
                }
                self.tunnel(id)
            }
            TlsStage::Handshake => {
                if msg.is_empty() {
                    return self.failure(id, "tls_handshake_failed");
                }
                if let Err(f) = s.engine.feed(&msg) {
                    if f.alert.is_empty() {
                        return self.failure(id, f.reason);
                    }
                    s.stage = TlsStage::Failing(f.reason);
                    return self.flight(next, f.alert, frag);
                }
                if s.engine.is_handshaking() {
                    let out = s.engine.take_output();
                    return self.flight(next, out, frag);
                }
                if method == EapType::Tls {
                    if s.engine.is_tls13() {
                        // RFC 9190 §2.5: one octet 0x00 of application data: no more
                        // handshake messages follow.
                        s.engine.write_plaintext(&[0]);
                    }
                    let out = s.engine.take_output();
                    if out.is_empty() {
                        return self.success(id);
                    }
                    s.stage = TlsStage::AwaitFinalAck;
                    return self.flight(next, out, frag);
                }
                // PEAP / TTLS: the tunnel is up.
                let inner = match self.new_inner(method) {
                    Ok(i) => i,
                    Err(reason) => return self.failure(id, reason),
                };
                let Phase::Tls(s) = &mut self.phase else {
                    return self.failure(id, "eap_internal");
                };
                s.inner = Some(inner);
                s.stage = TlsStage::Tunnel { started: false };
                let out = s.engine.take_output();
                if out.is_empty() || s.engine.has_plaintext() {
                    // Nothing of ours to deliver first (resumed TLS 1.2), or the peer already
                    // spoke inside the tunnel (TTLS): the inner method runs now.
                    s.unsent = out;
                    return self.tunnel(id);
                }
                // Our Finished / tickets first; the peer's answer starts the inner method.
                self.flight(next, out, frag)
            }
        }
    }

    fn new_inner(&mut self, method: EapType) -> Result<Inner, &'static str> {
        let Phase::Tls(s) = &self.phase else {
            return Err("eap_internal");
        };
        match method {
            EapType::Peap => {
                let km = if s.engine.is_tls13() {
                    s.engine.export(TLS13_LABEL, Some(&[method.as_u8()]), 128)
                } else {
                    s.engine.export(tls12_label(method), None, 128)
                };
                let km = km.ok_or("tls_export_failed")?;
                let mut tk = [0u8; 40];
                tk.copy_from_slice(&km[..40]);
                let nonce = random::<32>().ok_or("eap_no_randomness")?;
                let auth_challenge = random::<16>().ok_or("eap_no_randomness")?;
                let binding = PeapBinding {
                    policy: BindingPolicy::Optional,
                    tk,
                    nonce,
                };
                Ok(Inner::Peap(Box::new(PeapInner::new(
                    &self.config.server_name,
                    auth_challenge,
                    Some(binding),
                ))))
            }
            EapType::Ttls => {
                let c = s.engine.ttls_challenge().ok_or("tls_export_failed")?;
                Ok(Inner::Ttls(TtlsInner::new(c)))
            }
            _ => Err("eap_internal"),
        }
    }

    /// A round inside the tunnel: the peer's plaintext (if any) to the inner method.
    fn tunnel(&mut self, id: u8) -> (Step<F>, bool) {
        let Phase::Tls(s) = &mut self.phase else {
            return self.failure(id, "eap_internal");
        };
        let plain = s.engine.take_plaintext(MAX_INNER_PLAINTEXT);
        let TlsStage::Tunnel { started } = s.stage else {
            return self.failure(id, "eap_internal");
        };
        s.stage = TlsStage::Tunnel { started: true };
        let step = match (&mut s.inner, started) {
            (Some(Inner::Peap(i)), false) if plain.is_empty() => i.start(),
            (Some(Inner::Peap(_)), false) => InnerStep::Invalid("peap_peer_spoke_first"),
            (Some(Inner::Ttls(i)), false) => match i.start() {
                InnerStep::Send(d) if d.is_empty() && !plain.is_empty() => i.on_data(&plain),
                other => other,
            },
            (Some(Inner::Peap(i)), true) => {
                if plain.is_empty() {
                    InnerStep::Invalid("peap_empty_response")
                } else {
                    i.on_data(&plain)
                }
            }
            (Some(Inner::Ttls(i)), true) => {
                if plain.is_empty() && !i.awaits_ack() {
                    // A TLS-level ACK (of tickets): the peer's credentials come next.
                    InnerStep::Send(Vec::new())
                } else {
                    i.on_data(&plain)
                }
            }
            (None, _) => InnerStep::Invalid("eap_internal"),
        };
        self.inner_step(id, id.wrapping_add(1), step)
    }

    /// Acts on what the inner method wants: `id` is the Response being answered.
    fn inner_step(&mut self, id: u8, next: u8, step: InnerStep) -> (Step<F>, bool) {
        let frag = fragment_size(self.config.fragment_size, self.framed_mtu);
        match step {
            InnerStep::Send(data) => {
                let Phase::Tls(s) = &mut self.phase else {
                    return self.failure(id, "eap_internal");
                };
                if !data.is_empty() {
                    s.engine.write_plaintext(&data);
                }
                let mut out = std::mem::take(&mut s.unsent);
                out.extend(s.engine.take_output());
                if out.is_empty() {
                    let method = s.method;
                    return self.challenge(encode_request(next, method, 0, None, &[]));
                }
                self.flight(next, out, frag)
            }
            InnerStep::NeedNtHash { user } => self.verify(Verify::NtHash { user }),
            InnerStep::NeedPassword { user, password } => {
                self.verify(Verify::Password { user, password })
            }
            InnerStep::Success { user, method, msk } => {
                self.inner_method = Some(method);
                self.inner_identity = Some(user);
                // PEAP with crypto-binding: the compound MSK; else the tunnel's.
                self.success_with(id, msk)
            }
            InnerStep::Failure { reason, user } => {
                self.inner_method = self.inner_method.or(Some(self.inner_label()));
                self.inner_identity = user;
                self.failure(id, reason)
            }
            InnerStep::Invalid(reason) => self.failure(id, reason),
        }
    }

    fn inner_label(&self) -> &'static str {
        match &self.phase {
            Phase::Tls(s) => match &s.inner {
                Some(Inner::Peap(_)) => "mschapv2",
                _ => "ttls",
            },
            _ => "none",
        }
    }

    fn verify(&mut self, what: Verify) -> (Step<F>, bool) {
        let (Verify::NtHash { user } | Verify::Password { user, .. }) = &what;
        self.inner_identity = Some(user.clone());
        self.pending = Some(Pending {
            what: what.clone(),
            asked: true,
        });
        (
            Step::Verify {
                id: VerifyId(self.state),
                what,
            },
            false,
        )
    }

    /// Sends a TLS flight, first fragment now, the rest on each ACK.
    fn flight(&mut self, id: u8, data: Vec<u8>, frag: usize) -> (Step<F>, bool) {
        let Phase::Tls(s) = &mut self.phase else {
            return self.failure(id, "eap_internal");
        };
        let method = s.method;
        let mut f = Fragmenter::new(data, frag);
        let (flags, length, chunk) = f.next_fragment();
        let eap = encode_request(id, method, flags, length, chunk);
        s.out = (!f.done()).then_some(f);
        self.challenge(eap)
    }

    fn success(&mut self, id: u8) -> (Step<F>, bool) {
        self.success_with(id, None)
    }

    /// EAP-Success with `msk`, or the TLS session's keys when none is given.
    fn success_with(&mut self, id: u8, msk: Option<Msk>) -> (Step<F>, bool) {
        let keys = msk.or_else(|| match &self.phase {
            Phase::Tls(s) => s.engine.msk(s.method),
            _ => None,
        });
        let outcome = Box::new(self.outcome());
        (
            Step::Success {
                // RFC 3748 §4.2: the Identifier of the Response it answers.
                eap: encode_result(true, id),
                keys,
                outcome,
            },
            true,
        )
    }
}

//! The conversation table and the EAP server state machine (RFC 3748 §2, RFC 3579 §2.1).
//!
//! SKELETON (lead, issue 12): the types are the contract between the core helper, the
//! inner-method helper and the server shell. Bodies are filled in by the core helper.
//!
//! A conversation is found by the RADIUS State attribute this server issued (16 random
//! octets). It lives until success, failure, `Limits::timeout` since its last round, or
//! `Limits::max_rounds`. New conversations are bounded per client (switch) and globally;
//! every refusal is a [`Step::Discard`] with a reason the shell counts.
//!
//! `Conversations` is `Sync`: the table lock is held only to find or insert an entry; each
//! conversation has its own lock, so TLS work on different conversations runs in parallel.

use crate::keys::Msk;
use crate::packet::{Code, EapPacket, EapType, encode_result};
use crate::tls::TlsEngine;
use crate::tlsframe::{
    FLAG_S, Fragmenter, Reassembled, Reassembler, TlsFrame, encode_request, fragment_size,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
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
            max_conversations: 65_536,
            max_per_client: 16_384,
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
        old.len()
    }
}

/// A TLS method in progress.
struct TlsState {
    method: EapType,
    engine: TlsEngine,
    reasm: Reassembler,
    out: Option<Fragmenter>,
    stage: TlsStage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsStage {
    Handshake,
    /// Our last flight (Finished, tickets, RFC 9190 §2.5 commitment) awaits the peer's ACK.
    AwaitFinalAck,
    /// An alert was sent; the peer's answer gets EAP-Failure (RFC 5216 §2.1.3).
    Failing(&'static str),
}

enum Phase {
    /// A method's first Request was sent; a NAK may still change it (RFC 3748 §5.3.1).
    Proposed {
        method: EapType,
        naked: bool,
    },
    Tls(Box<TlsState>),
}

struct Conv<F> {
    config: Arc<ConversationsConfig>,
    state: Key,
    identity: String,
    framed_mtu: Option<u32>,
    /// Identifier of the outstanding Request.
    req_id: u8,
    /// Identifier of the Response last answered and what we answered (resent on duplicate).
    answered: Option<u8>,
    last_eap: Vec<u8>,
    phase: Phase,
    facts: Option<F>,
}

/// The open conversations of one server.
pub struct Conversations<F> {
    config: Arc<ConversationsConfig>,
    table: Mutex<Table<F>>,
}

impl<F> std::fmt::Debug for Conversations<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations")
            .field("open", &self.table.lock().map(|t| t.map.len()).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

/// Supported here (PEAP and TTLS need the inner phase: see the crate report).
fn tls_method(t: EapType) -> bool {
    matches!(t, EapType::Tls | EapType::Peap | EapType::Ttls)
}

fn start_request(id: u8, method: EapType) -> Vec<u8> {
    // S flag, version 0 (PEAPv0 / TTLSv0), no data (RFC 5216 §2.1.1).
    encode_request(id, method, FLAG_S, None, &[])
}

impl<F: Send + 'static> Conversations<F> {
    pub fn new(config: Arc<ConversationsConfig>) -> Conversations<F> {
        Conversations {
            config,
            table: Mutex::new(Table {
                map: HashMap::new(),
                per_client: HashMap::new(),
            }),
        }
    }

    /// New configuration (reload): open conversations finish with the one they began with.
    pub fn set_config(&mut self, config: Arc<ConversationsConfig>) {
        self.config = config;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<F>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One Access-Request's EAP-Message.
    pub fn handle(&self, input: Input<'_>) -> Step<F> {
        let Ok(p) = EapPacket::decode(input.eap) else {
            return Step::Discard {
                reason: "eap_malformed",
            };
        };
        if p.code != Code::Response {
            return Step::Discard {
                reason: "eap_not_response",
            };
        }
        let Some(state) = input.state else {
            return self.start(input, &p);
        };
        let Ok(key) = <Key>::try_from(state) else {
            return Step::Discard {
                reason: "eap_unknown_state",
            };
        };
        let limits = &self.config.limits;
        let conv = {
            let mut t = self.lock();
            let Some(e) = t.map.get_mut(&key) else {
                return Step::Discard {
                    reason: "eap_unknown_state",
                };
            };
            if input.now.saturating_duration_since(e.last_seen) > e.conv_timeout(limits) {
                t.remove(&key);
                return Step::Discard {
                    reason: "eap_expired",
                };
            }
            e.rounds += 1;
            if e.rounds > limits.max_rounds {
                t.remove(&key);
                return Step::Discard {
                    reason: "eap_too_many_rounds",
                };
            }
            e.last_seen = input.now;
            e.conv.clone()
        };
        let mut c = conv.lock().unwrap_or_else(|p| p.into_inner());
        if c.answered == Some(p.identifier) && !c.last_eap.is_empty() {
            // A retransmitted round (the NAS lost our Challenge): same answer, no change.
            return Step::Challenge {
                eap: c.last_eap.clone(),
                state: key.to_vec(),
            };
        }
        if p.identifier != c.req_id {
            return Step::Discard {
                reason: "eap_wrong_identifier",
            };
        }
        c.framed_mtu = input.framed_mtu.or(c.framed_mtu);
        let (step, done) = c.round(&p);
        if let Step::Challenge { eap, .. } = &step {
            c.answered = Some(p.identifier);
            c.last_eap = eap.clone();
        }
        drop(c);
        if done {
            self.lock().remove(&key);
        }
        step
    }

    /// A Response/Identity without State opens a conversation (bounded, RFC 3579 §2.6).
    fn start(&self, input: Input<'_>, p: &EapPacket<'_>) -> Step<F> {
        if p.typ != Some(EapType::Identity) {
            return Step::Discard {
                reason: "eap_no_state",
            };
        }
        let config = self.config.clone();
        let identity = String::from_utf8_lossy(&p.data[..p.data.len().min(253)]).into_owned();
        let Some(&method) = config.methods.iter().find(|m| tls_method(**m)) else {
            return Step::Failure {
                eap: encode_result(false, p.identifier),
                reason: "no_common_method",
                outcome: None,
            };
        };
        let mut state = [0u8; 16];
        if getrandom::fill(&mut state).is_err() {
            return Step::Discard {
                reason: "eap_no_randomness",
            };
        }
        let req_id = p.identifier.wrapping_add(1);
        let eap = start_request(req_id, method);
        let limits = &config.limits;
        let mut t = self.lock();
        if t.map.len() >= limits.max_conversations {
            t.expire(input.now, limits.timeout);
            if t.map.len() >= limits.max_conversations {
                return Step::Discard {
                    reason: "eap_too_many_conversations",
                };
            }
        }
        if t.per_client.get(&input.client).copied().unwrap_or(0) >= limits.max_per_client {
            return Step::Discard {
                reason: "eap_too_many_for_client",
            };
        }
        let conv = Conv {
            config: config.clone(),
            state,
            identity,
            framed_mtu: input.framed_mtu,
            req_id,
            answered: Some(p.identifier),
            last_eap: eap.clone(),
            phase: Phase::Proposed {
                method,
                naked: false,
            },
            facts: None,
        };
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
        Step::Challenge {
            eap,
            state: state.to_vec(),
        }
    }

    /// The shell's answer to a `Step::Verify`. (The inner methods are not wired yet: no
    /// conversation asks for one, so every id is unknown.)
    pub fn resume(&self, now: Instant, id: VerifyId, verdict: Verdict<F>) -> Step<F> {
        let _ = (now, id, verdict);
        Step::Discard {
            reason: "eap_unknown_verify",
        }
    }

    /// Drops conversations idle longer than the timeout; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let timeout = self.config.limits.timeout;
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
                        + s.out.as_ref().map_or(0, |o| o.capacity());
                }
            }
        }
        total
    }
}

impl<F> Entry<F> {
    fn conv_timeout(&self, limits: &Limits) -> Duration {
        limits.timeout
    }
}

impl<F> Conv<F> {
    fn outcome(&mut self) -> Outcome<F> {
        let (outer, tls_version, resumed, certs) = match &self.phase {
            Phase::Proposed { method, .. } => (*method, None, false, Vec::new()),
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
                inner: None,
                tls_version,
                resumed,
            },
            identity: self.identity.clone(),
            inner_identity: None,
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

    /// One Response with the expected identifier; `true`: the conversation is over.
    fn round(&mut self, p: &EapPacket<'_>) -> (Step<F>, bool) {
        let id = p.identifier;
        let next = id.wrapping_add(1);
        if let Phase::Proposed { method, naked } = self.phase {
            match p.typ {
                Some(EapType::Nak) if !naked => {
                    // RFC 3748 §5.3.1: the peer lists the types it wants, in order.
                    let pick = p
                        .data
                        .iter()
                        .map(|&t| EapType::from_u8(t))
                        .find(|t| tls_method(*t) && self.config.methods.contains(t));
                    return match pick {
                        Some(m) => {
                            self.phase = Phase::Proposed {
                                method: m,
                                naked: true,
                            };
                            self.challenge(start_request(next, m))
                        }
                        None => self.failure(id, "no_common_method"),
                    };
                }
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
                    }));
                }
                _ => return self.failure(id, "eap_unexpected_type"),
            }
        }
        let Phase::Tls(s) = &mut self.phase else {
            return self.failure(id, "eap_unexpected_type");
        };
        if p.typ != Some(s.method) {
            return self.failure(id, "eap_unexpected_type");
        }
        let method = s.method;
        let frag = fragment_size(self.config.fragment_size, self.framed_mtu);
        let max = self.config.limits.max_tls_message;
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
                if method != EapType::Tls {
                    return self.failure(id, "eap_inner_not_built");
                }
                if s.engine.is_tls13() {
                    // RFC 9190 §2.5: one octet 0x00 of application data: no more handshake.
                    s.engine.write_plaintext(&[0]);
                }
                let out = s.engine.take_output();
                if out.is_empty() {
                    return self.success(id);
                }
                s.stage = TlsStage::AwaitFinalAck;
                self.flight(next, out, frag)
            }
        }
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
        let keys = match &self.phase {
            Phase::Tls(s) => s.engine.msk(s.method),
            Phase::Proposed { .. } => None,
        };
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

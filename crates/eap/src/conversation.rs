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
use crate::packet::EapType;
use std::net::IpAddr;
use std::sync::Arc;
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

/// The open conversations of one server.
#[derive(Debug)]
pub struct Conversations<F> {
    config: Arc<ConversationsConfig>,
    _facts: std::marker::PhantomData<fn() -> F>,
}

impl<F: Send + 'static> Conversations<F> {
    pub fn new(config: Arc<ConversationsConfig>) -> Conversations<F> {
        Conversations {
            config,
            _facts: std::marker::PhantomData,
        }
    }

    /// New configuration (reload): open conversations finish with the one they began with.
    pub fn set_config(&mut self, config: Arc<ConversationsConfig>) {
        self.config = config;
    }

    /// One Access-Request's EAP-Message.
    pub fn handle(&self, input: Input<'_>) -> Step<F> {
        let _ = (&self.config, input);
        Step::Discard {
            reason: "eap_not_built",
        }
    }

    /// The shell's answer to a `Step::Verify`.
    pub fn resume(&self, now: Instant, id: VerifyId, verdict: Verdict<F>) -> Step<F> {
        let _ = (now, id, verdict);
        Step::Discard {
            reason: "eap_not_built",
        }
    }

    /// Drops conversations idle longer than the timeout; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let _ = now;
        0
    }

    /// Open conversations.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

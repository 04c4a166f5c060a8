//! The server side of one RADIUS port, without IO: datagram in, [`Action`] out.
//!
//! ```text
//!  (now, source, destination, datagram)
//!        │
//!        ▼  Endpoint::handle
//!  client lookup ─► decode (once) ─► code allowed on this port? ─► verify (secret)
//!        ─► BlastRADIUS rules ─► reply cache (RFC 5080) ─► Status-Server answered here
//!        │
//!        ├─► Action::Drop(reason)           silently discarded (RFC 2865 §3), counted by the caller
//!        ├─► Action::Reply(bytes, why)      a replay from the cache, or the Status-Server answer
//!        └─► Action::Request(request)       authentic, new: for a handler (MAB, accounting, EAP,
//!                                           proxy…); the caller then calls `complete` or `abandon`
//! ```
//!
//! The endpoint owns the per-port state every request shares: the reply cache, the set of
//! clients that have shown they send Message-Authenticator (the `auto` BlastRADIUS mode), and
//! the request-id counter. It never reads a clock (`now` is an argument), never touches a
//! socket and never blocks, so every decision above is unit-tested with plain values (see the
//! tests at the bottom). The caller (the IO loop) keeps it behind a lock held only for
//! [`Endpoint::handle`] / [`Endpoint::complete`], never while a handler runs.
//!
//! quinn's `Endpoint` (datagrams in, transmits and events out) is the model.

use crate::{AuthError, CacheKey, CacheLookup, Code, DecodeError, OwnedPacket, Packet, ReplyCache};
use crate::{PacketBuilder, dict, verify_request};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Which service a port offers: it decides the request codes it accepts and the code of its
/// Status-Server answer (RFC 5997 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Authentication (1812): Access-Request, Status-Server.
    Auth,
    /// Accounting (1813): Accounting-Request, Status-Server.
    Acct,
}

impl Service {
    /// `auth` / `acct`, for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Acct => "acct",
        }
    }

    fn accepts(self, code: Code) -> bool {
        matches!(
            (self, code),
            (Service::Auth, Code::AccessRequest | Code::StatusServer)
                | (Service::Acct, Code::AccountingRequest | Code::StatusServer)
        )
    }

    /// RFC 5997 §3: Status-Server is answered with the code of the port's own service.
    fn status_reply(self) -> Code {
        match self {
            Service::Auth => Code::AccessAccept,
            Service::Acct => Code::AccountingResponse,
        }
    }
}

/// BlastRADIUS (CVE-2024-3596) requirement for a client's Access-Requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequireMessageAuthenticator {
    /// Every Access-Request must carry a valid Message-Authenticator.
    Yes,
    /// Not required (still verified when present).
    No,
    /// Required from a client once it has sent one (FreeRADIUS's `auto`).
    Auto,
}

/// What the endpoint needs to know about a client: its shared secret and the rules it is held
/// to.
#[derive(Clone, Copy)]
pub struct ClientPolicy<'s> {
    /// Shared secret (RFC 2865 §3).
    pub secret: &'s [u8],
    /// BlastRADIUS rule for its Access-Requests.
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// Drop Access-Requests carrying Proxy-State but no Message-Authenticator (the BlastRADIUS
    /// attack's vehicle) when Message-Authenticator is not otherwise required.
    pub limit_proxy_state: bool,
}

impl fmt::Debug for ClientPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPolicy")
            .field("secret", &"<redacted>")
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field("limit_proxy_state", &self.limit_proxy_state)
            .finish()
    }
}

/// The clients (NAS) an endpoint answers, chosen by source address (RFC 2865 §3). The server
/// implements it over its configuration (`switches.conf`); `Client` is whatever the handlers
/// need about the switch afterwards.
pub trait ClientTable {
    /// The client handed to the handler with the request.
    type Client;
    /// The client sending from `ip`, if any.
    fn lookup(&self, ip: IpAddr) -> Option<Self::Client>;
    /// Its secret and rules.
    fn policy<'c>(&self, client: &'c Self::Client) -> ClientPolicy<'c>;
    /// An attribute appended to Status-Server answers (the load balancer's backend port
    /// reports its drain state in an Ironfence-Hop attribute). None by default.
    fn status_attribute(&self) -> Option<(u8, Vec<u8>)> {
        None
    }
}

/// Sizes of the endpoint's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// How long a reply is kept for retransmits (RFC 5080 §2.2.2).
    pub reply_cache_ttl: Duration,
    /// Most requests remembered by the reply cache (0 disables it).
    pub reply_cache_entries: usize,
    /// Most clients remembered as Message-Authenticator senders (`auto` mode).
    pub max_learned_clients: usize,
}

/// A request's identity for logs, the audit log and everything it causes later (proxying,
/// CoA). Unique per endpoint; the seed passed to [`Endpoint::new`] makes it unique across
/// restarts and servers in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a datagram was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// No client is configured for the source address.
    UnknownClient,
    /// Not a well-formed RADIUS packet.
    Malformed(DecodeError),
    /// A code this port does not serve (e.g. an Accounting-Request on the auth port).
    UnexpectedCode(Code),
    /// Failed verification with the client's secret.
    Unauthentic(AuthError),
    /// Message-Authenticator required (RFC 5997 Status-Server, RFC 3579 EAP, BlastRADIUS
    /// policy) but absent.
    MissingMessageAuthenticator,
    /// Proxy-State without Message-Authenticator while `limit_proxy_state` is on.
    ProxyStateWithoutMessageAuthenticator,
    /// A retransmit of a request still being processed.
    DuplicateInProgress,
    /// The reply would not fit (too many Proxy-State attributes to copy back).
    ReplyTooLong,
}

impl DropReason {
    /// The label of the drop counter (stable: dashboards use them).
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::UnknownClient => "unknown_client",
            DropReason::Malformed(e) => e.reason(),
            DropReason::UnexpectedCode(_) => "unexpected_code",
            DropReason::Unauthentic(e) => e.reason(),
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::ProxyStateWithoutMessageAuthenticator => {
                "proxy_state_without_message_authenticator"
            }
            DropReason::DuplicateInProgress => "duplicate_in_progress",
            DropReason::ReplyTooLong => "reply_too_long",
        }
    }
}

/// Why the endpoint answered by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replied {
    /// A retransmit of a request already answered: the same reply again (RFC 5080 §2.2.2).
    Replayed,
    /// Status-Server (RFC 5997).
    StatusServer,
}

/// An authentic request the endpoint has not answered before, for a handler.
#[derive(Debug)]
pub struct Request<C> {
    /// Its id (logs, audit, proxying, CoA).
    pub id: RequestId,
    /// The client, as the [`ClientTable`] returned it.
    pub client: C,
    /// Source address and port: where the answer goes.
    pub source: SocketAddr,
    /// The local address it was sent to, when known (the answer leaves from it).
    pub destination: Option<IpAddr>,
    /// The decoded packet.
    pub packet: OwnedPacket,
    /// A valid Message-Authenticator was present.
    pub message_authenticator: bool,
    key: CacheKey,
}

impl<C> Request<C> {
    /// The packet, decoded.
    pub fn packet(&self) -> Packet<'_> {
        self.packet.view()
    }

    /// The request's code.
    pub fn code(&self) -> Code {
        self.packet().code()
    }

    /// What [`Endpoint::complete`] / [`Endpoint::abandon`] take back.
    pub fn key(&self) -> CacheKey {
        self.key
    }

    /// The same request with another client and id (the load balancer's backend port: the
    /// client that signed it is a cluster member, the switch and the request id are the ones
    /// its Ironfence-Hop attribute names).
    pub fn with_client<D>(self, client: D, id: RequestId) -> Request<D> {
        Request {
            id,
            client,
            source: self.source,
            destination: self.destination,
            packet: self.packet,
            message_authenticator: self.message_authenticator,
            key: self.key,
        }
    }
}

/// What to do with one datagram.
#[derive(Debug)]
pub enum Action<C> {
    /// Discard silently, counted under the reason.
    Drop(DropReason),
    /// Send these bytes back to the source.
    Reply(Vec<u8>, Replied),
    /// Hand to a handler, then [`Endpoint::complete`] (or [`Endpoint::abandon`]).
    Request(Request<C>),
}

/// Things worth a log line, drained with [`Endpoint::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A client in `auto` mode sent a Message-Authenticator: it is now required from it.
    LearnedMessageAuthenticator(IpAddr),
}

/// One RADIUS port's request state (see the module docs).
#[derive(Debug)]
pub struct Endpoint {
    service: Service,
    cache: ReplyCache,
    learned: HashSet<IpAddr>,
    max_learned: usize,
    next_id: u64,
    events: VecDeque<EndpointEvent>,
}

impl Endpoint {
    /// An endpoint for `service`. `id_seed` starts the request ids (pass something random so
    /// that ids differ across restarts and servers).
    pub fn new(service: Service, config: EndpointConfig, id_seed: u64) -> Endpoint {
        Endpoint {
            service,
            cache: ReplyCache::new(config.reply_cache_ttl, config.reply_cache_entries),
            learned: HashSet::new(),
            max_learned: config.max_learned_clients,
            next_id: id_seed,
            events: VecDeque::new(),
        }
    }

    /// The service this endpoint offers.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Decides what to do with a datagram that arrived from `source` on `destination` at
    /// `now`.
    pub fn handle<T: ClientTable>(
        &mut self,
        clients: &T,
        now: Instant,
        source: SocketAddr,
        destination: Option<IpAddr>,
        datagram: &[u8],
    ) -> Action<T::Client> {
        let client_ip = source.ip().to_canonical();
        // RFC 2865 §3: the secret is chosen by source IP; unknown clients are silently dropped.
        let Some(client) = clients.lookup(client_ip) else {
            return Action::Drop(DropReason::UnknownClient);
        };
        let policy = clients.policy(&client);
        let packet = match Packet::decode(datagram) {
            Ok(p) => p,
            Err(e) => return Action::Drop(DropReason::Malformed(e)),
        };
        let code = packet.code();
        if !self.service.accepts(code) {
            return Action::Drop(DropReason::UnexpectedCode(code));
        }
        let check = match verify_request(&packet, policy.secret) {
            Ok(c) => c,
            Err(e) => return Action::Drop(DropReason::Unauthentic(e)),
        };
        if let Some(reason) = self.message_authenticator_rule(
            &policy,
            &packet,
            check.message_authenticator,
            client_ip,
        ) {
            return Action::Drop(reason);
        }
        let key = CacheKey {
            client: source,
            identifier: packet.identifier(),
            authenticator: *packet.authenticator(),
        };
        match self.cache.begin(key, now) {
            CacheLookup::Replay(reply) => return Action::Reply(reply.to_vec(), Replied::Replayed),
            CacheLookup::InProgress => return Action::Drop(DropReason::DuplicateInProgress),
            CacheLookup::New => {}
        }
        if code == Code::StatusServer {
            let mut b = PacketBuilder::new(self.service.status_reply(), packet.identifier());
            let extra = clients.status_attribute();
            let extra_ok = extra.as_ref().is_none_or(|(t, v)| b.add(*t, v).is_ok());
            if !extra_ok || b.copy_proxy_state(&packet).is_err() {
                self.cache.abandon(&key);
                return Action::Drop(DropReason::ReplyTooLong);
            }
            let reply = b.encode_response(&packet, policy.secret);
            self.cache.complete(key, &reply, now);
            return Action::Reply(reply, Replied::StatusServer);
        }
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        Action::Request(Request {
            id,
            client,
            source,
            destination,
            packet: packet.to_owned_packet(),
            message_authenticator: check.message_authenticator,
            key,
        })
    }

    /// The handler answered `key` with `reply` (sent now): replayed to retransmits for the
    /// cache's ttl. Call it before sending, so that a retransmit racing the reply finds it.
    pub fn complete(&mut self, key: CacheKey, reply: &[u8], now: Instant) {
        self.cache.complete(key, reply, now);
    }

    /// The handler gave no answer (e.g. a store failure): a retransmit is processed anew.
    pub fn abandon(&mut self, key: &CacheKey) {
        self.cache.abandon(key);
    }

    /// The next event worth logging, if any.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// Requests remembered by the reply cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// BlastRADIUS (CVE-2024-3596) and the RFCs' Message-Authenticator rules.
    fn message_authenticator_rule(
        &mut self,
        policy: &ClientPolicy<'_>,
        packet: &Packet<'_>,
        has_ma: bool,
        client_ip: IpAddr,
    ) -> Option<DropReason> {
        let auto = policy.require_message_authenticator == RequireMessageAuthenticator::Auto;
        if has_ma {
            if auto && self.learned.len() < self.max_learned && self.learned.insert(client_ip) {
                self.events
                    .push_back(EndpointEvent::LearnedMessageAuthenticator(client_ip));
            }
            return None;
        }
        let code = packet.code();
        // RFC 5997 §3 (Status-Server) and RFC 3579 §3.2 (EAP) always require it.
        if code == Code::StatusServer || packet.get(dict::EAP_MESSAGE).is_some() {
            return Some(DropReason::MissingMessageAuthenticator);
        }
        if code != Code::AccessRequest {
            return None; // accounting is protected by its Request Authenticator
        }
        let required = match policy.require_message_authenticator {
            RequireMessageAuthenticator::Yes => true,
            RequireMessageAuthenticator::No => false,
            RequireMessageAuthenticator::Auto => self.learned.contains(&client_ip),
        };
        if required {
            return Some(DropReason::MissingMessageAuthenticator);
        }
        if policy.limit_proxy_state && packet.get(dict::PROXY_STATE).is_some() {
            return Some(DropReason::ProxyStateWithoutMessageAuthenticator);
        }
        None
    }
}

#[cfg(test)]
mod tests;

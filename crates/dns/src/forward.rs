//! The forwarding table for pass-through names: which client is waiting for which upstream
//! answer. Pure: the shell sends what [`Forwarder::forward`] returns, feeds every datagram
//! from the resolvers to [`Forwarder::answer`], and calls [`Forwarder::expire`] with the
//! current time.
//!
//! Spoofing (RFC 5452): each forwarded query gets a fresh upstream id chosen by the caller
//! from a random source (and the shell's socket has a kernel-chosen port); an answer is taken
//! only from the resolver that was asked, with that id, and for the same question. Anything
//! else is dropped and the query stays pending, so a forged answer cannot displace the real
//! one. The table is bounded; when full, the client gets SERVFAIL at once.

use crate::responder::servfail;
use crate::wire::{self, Header, Query};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a resolver has to answer before the client gets SERVFAIL.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Queries waiting at once.
pub const DEFAULT_CAPACITY: usize = 4096;

#[derive(Debug)]
struct Pending<C> {
    client: C,
    query: Query,
    upstream: SocketAddr,
    deadline: Instant,
    /// The largest answer the client takes over its transport.
    limit: usize,
}

/// Waiting pass-through queries, by upstream id. `C` names the client (address, socket).
#[derive(Debug)]
pub struct Forwarder<C> {
    timeout: Duration,
    capacity: usize,
    pending: HashMap<u16, Pending<C>>,
    deadlines: BTreeSet<(Instant, u16)>,
}

/// A pass-through query to forward.
#[derive(Debug)]
pub struct Outgoing<'a, C> {
    pub client: C,
    /// The client's message, as received.
    pub datagram: &'a [u8],
    /// `datagram` decoded.
    pub query: &'a Query,
    /// The largest answer the client takes ([`Query::udp_limit`] over UDP).
    pub limit: usize,
    /// The resolver to ask.
    pub upstream: SocketAddr,
}

/// The table has no room: answer the client SERVFAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// What to do with a datagram from a resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome<C> {
    /// Send `bytes` (the answer with the client's id) to `client`.
    Relay { client: C, bytes: Vec<u8> },
    /// Not an answer we wait for (the label says why); pending queries are unchanged.
    Drop(&'static str),
}

/// A query whose resolver did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired<C> {
    pub client: C,
    /// SERVFAIL with the client's id and question.
    pub reply: Vec<u8>,
}

impl<C> Forwarder<C> {
    /// `capacity` is capped at 65 535 (one slot per upstream id, so a free id always exists).
    pub fn new(timeout: Duration, capacity: usize) -> Forwarder<C> {
        Forwarder {
            timeout,
            capacity: capacity.clamp(1, u16::MAX as usize),
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// How long a resolver has to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Applies to queries forwarded from now on (deadlines are kept in order whatever the
    /// timeout they were set with).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records the query and returns the bytes to send to its upstream: the same message
    /// under an upstream id, `random_id` or the next free one.
    pub fn forward(
        &mut self,
        now: Instant,
        q: Outgoing<'_, C>,
        random_id: u16,
    ) -> Result<Vec<u8>, Full> {
        if self.pending.len() >= self.capacity {
            return Err(Full);
        }
        let mut id = random_id;
        while self.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        let deadline = now + self.timeout;
        self.pending.insert(
            id,
            Pending {
                client: q.client,
                query: q.query.clone(),
                upstream: q.upstream,
                deadline,
                limit: q.limit,
            },
        );
        self.deadlines.insert((deadline, id));
        Ok(wire::with_id(q.datagram, id))
    }

    /// A datagram received from `from` on the upstream socket.
    pub fn answer(&mut self, from: SocketAddr, datagram: &[u8]) -> AnswerOutcome<C> {
        let Ok(header) = Header::decode(datagram) else {
            return AnswerOutcome::Drop("malformed");
        };
        if !header.is_response() {
            return AnswerOutcome::Drop("not_a_response");
        }
        let Some(p) = self.pending.get(&header.id) else {
            return AnswerOutcome::Drop("unknown_id");
        };
        if p.upstream != from {
            return AnswerOutcome::Drop("wrong_source");
        }
        let Ok(answer) = Query::decode(datagram) else {
            return AnswerOutcome::Drop("malformed");
        };
        let same = match (&answer.question, &p.query.question) {
            (Some(a), Some(q)) => a.matches(q),
            _ => false,
        };
        if !same {
            return AnswerOutcome::Drop("question_mismatch");
        }
        let p = self.pending.remove(&header.id).expect("looked up above");
        self.deadlines.remove(&(p.deadline, header.id));
        let relayed = wire::with_id(datagram, p.query.header.id);
        let bytes = wire::truncate_to(&relayed, p.limit, p.query.edns.is_some());
        AnswerOutcome::Relay {
            client: p.client,
            bytes,
        }
    }

    /// Removes every query whose deadline is at or before `now`; each client gets SERVFAIL.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<C>> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.pending.remove(&id) {
                out.push(Expired {
                    reply: servfail(&p.query),
                    client: p.client,
                });
            }
        }
        out
    }

    /// When [`Forwarder::expire`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }
}

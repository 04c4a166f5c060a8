//! The captive responder's rules, as a pure function of the datagram and the portal address.
//!
//! | query                                    | answer                                        |
//! |------------------------------------------|-----------------------------------------------|
//! | not decodable (see [`DecodeError`])      | none: dropped and counted                     |
//! | a response (QR set)                      | none: dropped (no reflection loops)           |
//! | opcode other than QUERY                  | NOTIMP                                        |
//! | EDNS version above 0                     | BADVERS (RFC 6891 §6.1.3)                     |
//! | no question                              | FORMERR                                       |
//! | class other than IN, AXFR/IXFR           | REFUSED                                       |
//! | name in a pass-through domain            | forwarded to a real resolver ([`crate::forward`]) |
//! | A (or ANY)                               | A = the portal address, TTL `ttl` (15 s)      |
//! | AAAA and every other type                | NOERROR, no answer, SOA in authority (NODATA) |
//!
//! Answering AAAA with NODATA (not NXDOMAIN, which would deny the A record too: RFC 8020)
//! makes dual-stack devices use the IPv4 portal; the SOA's TTL and MINIMUM are `ttl`, so the
//! negative answer is not cached longer than the positive one.

use crate::wire::{
    self, CLASS_IN, DecodeError, Header, Name, OPCODE_QUERY, Query, RCODE_BADVERS, RCODE_FORMERR,
    RCODE_NOERROR, RCODE_NOTIMP, RCODE_REFUSED, ReplyBuilder, TYPE_A, TYPE_ANY,
};
use std::net::Ipv4Addr;

/// PacketFence's `pf.conf` default for DNS answers on the registration network.
pub const DEFAULT_TTL: u32 = 15;

const TYPE_IXFR: u16 = 251;
const TYPE_AXFR: u16 = 252;

/// Pass-through domains (`[fencing] passthroughs`): `example.com` matches that name only,
/// `*.example.org` matches `example.org` and every name below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passthrough {
    exact: Vec<Name>,
    below: Vec<Name>,
}

impl Passthrough {
    /// Parses the entries (already split on commas). The error names the bad entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Passthrough, String> {
        let mut p = Passthrough::default();
        for e in entries {
            let e = e.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            let (list, name) = match e.strip_prefix("*.") {
                Some(rest) => (&mut p.below, rest),
                None => (&mut p.exact, e),
            };
            match Name::from_dotted(name) {
                Some(n) if n.label_count() > 0 && !name.contains('*') => list.push(n),
                _ => {
                    return Err(format!(
                        "{e:?} is not a domain name or *.domain (labels of 1-63 characters, 255 in all)"
                    ));
                }
            }
        }
        Ok(p)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.below.is_empty()
    }

    pub fn matches(&self, name: &Name) -> bool {
        self.exact.iter().any(|e| e.eq_ignore_case(name))
            || self.below.iter().any(|s| name.is_at_or_below(s))
    }
}

/// What to do with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes back to the client.
    Reply { bytes: Vec<u8>, kind: ReplyKind },
    /// A pass-through name: hand it to the [`crate::Forwarder`].
    Forward(Query),
    /// No answer.
    Drop(DropReason),
}

/// Our own answers, by kind (a metrics label each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Portal,
    NoData,
    NotImp,
    BadVers,
    FormErr,
    Refused,
}

impl ReplyKind {
    pub fn label(self) -> &'static str {
        match self {
            ReplyKind::Portal => "portal",
            ReplyKind::NoData => "nodata",
            ReplyKind::NotImp => "notimp",
            ReplyKind::BadVers => "badvers",
            ReplyKind::FormErr => "formerr",
            ReplyKind::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed(DecodeError),
    /// A response sent to the server port.
    Response,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed(e) => e.reason(),
            DropReason::Response => "response",
        }
    }
}

/// The rules, with their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// TTL of the portal answer and of the negative answers.
    pub ttl: u32,
    /// `None` when `[fencing] passthrough = disabled`.
    pub passthrough: Option<Passthrough>,
}

impl Default for Responder {
    fn default() -> Self {
        Responder {
            ttl: DEFAULT_TTL,
            passthrough: None,
        }
    }
}

impl Responder {
    /// Decides the answer to `datagram`, received on a network whose portal is `portal`.
    pub fn handle(&self, datagram: &[u8], portal: Ipv4Addr) -> Action {
        let header = match Header::decode(datagram) {
            Ok(h) => h,
            Err(e) => return Action::Drop(DropReason::Malformed(e)),
        };
        if header.is_response() {
            return Action::Drop(DropReason::Response);
        }
        let query = match Query::decode(datagram) {
            Ok(q) => q,
            Err(e) => return Action::Drop(DropReason::Malformed(e)),
        };
        if header.opcode() != OPCODE_QUERY {
            return reply(&query, RCODE_NOTIMP, ReplyKind::NotImp, |_| {});
        }
        if query.edns.is_some_and(|e| e.version > 0) {
            let mut b = ReplyBuilder::answering(&query, (RCODE_BADVERS & 0x0f) as u8);
            b.opt(RCODE_BADVERS, false);
            return Action::Reply {
                bytes: b.finish(),
                kind: ReplyKind::BadVers,
            };
        }
        let Some(q) = &query.question else {
            return reply(&query, RCODE_FORMERR, ReplyKind::FormErr, |_| {});
        };
        if q.qclass != CLASS_IN || q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR {
            return reply(&query, RCODE_REFUSED, ReplyKind::Refused, |_| {});
        }
        if self
            .passthrough
            .as_ref()
            .is_some_and(|p| p.matches(&q.name))
        {
            return Action::Forward(query);
        }
        let ttl = self.ttl;
        if q.qtype == TYPE_A || q.qtype == TYPE_ANY {
            reply(&query, RCODE_NOERROR, ReplyKind::Portal, |b| {
                b.answer_a(portal, ttl);
            })
        } else {
            reply(&query, RCODE_NOERROR, ReplyKind::NoData, |b| {
                b.authority_soa(ttl);
            })
        }
    }
}

fn reply(
    query: &Query,
    rcode: u8,
    kind: ReplyKind,
    body: impl FnOnce(&mut ReplyBuilder),
) -> Action {
    let mut b = ReplyBuilder::answering(query, rcode);
    body(&mut b);
    if query.edns.is_some() {
        b.opt(0, false);
    }
    Action::Reply {
        bytes: b.finish(),
        kind,
    }
}

/// SERVFAIL for `query` (a pass-through name whose resolver did not answer, or no room left
/// in the forwarding table).
pub fn servfail(query: &Query) -> Vec<u8> {
    let mut b = ReplyBuilder::answering_with(query, wire::RCODE_SERVFAIL, false);
    if query.edns.is_some() {
        b.opt(0, false);
    }
    b.finish()
}

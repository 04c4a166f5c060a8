//! DNS for the registration and isolation networks, without IO and without a clock.
//!
//! ```text
//!  datagram ─► Responder::handle(bytes, portal) ─┬─ Reply(bytes)     every name → A portal, TTL 15 s
//!                    (wire::Query::decode once)  │                   AAAA/other types → NODATA + SOA
//!                                                │                   non-QUERY opcode → NOTIMP
//!                                                ├─ Forward(query)   pass-through domain
//!                                                │      └─► Forwarder::forward(now, client, …) ─► upstream
//!                                                │          Forwarder::answer(now, from, bytes) ─► client
//!                                                │          Forwarder::expire(now) ─► SERVFAIL to client
//!                                                └─ Drop(reason)     malformed, a response, …: no answer
//! ```
//!
//! * [`wire`]: the message codec a captive responder and a forwarder need: header, question
//!   (RFC 1035 §4.1; labels ≤ 63 octets, names ≤ 255, compression pointers followed only
//!   backwards and at most [`wire::MAX_POINTERS`] times, so a pointer loop cannot exist), the
//!   other sections skipped with bounds, EDNS(0) OPT understood (RFC 6891: payload size,
//!   version, one OPT at most), replies built with compression to the question.
//! * [`responder`]: the pure rules (PacketFence's pfdns on the registration network): which
//!   names pass through (`[fencing] passthroughs`, exact and `*.` wildcard, label-wise and
//!   case-insensitive) and what everything else gets.
//! * [`forward`]: the forwarding table for pass-through names: a fresh upstream id per query,
//!   answers accepted only from the resolver asked, with that id and the same question,
//!   relayed with the client's id (truncated with TC when too big for the client), time-outs
//!   answered SERVFAIL; time is an argument.
//!
//! Decoding never panics and never trusts a length: every read is bounds-checked.

pub mod forward;
pub mod responder;
pub mod wire;

pub use forward::{AnswerOutcome, Expired, Forwarder, Full, Outgoing};
pub use responder::{Action, DropReason, Passthrough, ReplyKind, Responder};
pub use wire::{DecodeError, Edns, Header, Name, Query, Question};

#[cfg(test)]
mod tests;

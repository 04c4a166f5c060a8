//! DHCPv4 for the registration and isolation networks, without IO.
//!
//! ```text
//!   datagram ──► codec::Message::decode ──► engine::Engine::plan(now, msg, current lease)
//!   (server)      never panics, bounded        │ Plan: Ignore · Reply(NAK/INFORM) ·
//!                                              │       Offer{candidates} · Ack{ip} · Release · Decline
//!                                              ▼
//!                       server executes the store part (claim one candidate row per
//!                       transaction, next candidate on a conflict) ──► engine::Engine::offer/ack/nak
//!                                                                   ──► Message::encode ──► socket
//! ```
//!
//! - [`codec`]: the fixed BOOTP header, the magic cookie and the options ironfence reads or
//!   writes (RFC 2132: 1, 3, 6, 12, 15, 50, 51, 53, 54, 55, 57, 58, 59, 60, 61, 82; RFC 8910:
//!   114). Unknown options are skipped; option overload (52) is ignored (sname/file are never
//!   parsed for options), which only loses options a client should not need to send us.
//! - [`candidates`]: where a client's address search starts (a hash of the network and the
//!   MAC, so every server tries the same address first for the same client) and how it probes
//!   (a stride coprime with the pool size, visiting each address once). No shared counter, so
//!   no hot row in a replicated database.
//! - [`engine`]: RFC 2131 §4.3 decisions with `now` as an input and the client's current lease
//!   (read from the shared database) as data. The server identifier is the network's service
//!   address (the VIP in a cluster), so any member can answer any client identically.
#![forbid(unsafe_code)]

pub mod candidates;
pub mod codec;
pub mod engine;

pub use candidates::Candidates;
pub use codec::{DecodeError, Message, MessageType, Options};
pub use engine::{Engine, Ignored, Lease, LeaseState, NetworkSettings, Plan, RequestKind};

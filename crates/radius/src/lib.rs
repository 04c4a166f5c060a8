//! Sans-IO RADIUS codec: packets, attributes, authenticators, Message-Authenticator, password
//! hiding, reply cache.
//!
//! ```text
//!  switch / AP / VPN (NAS)
//!        │  UDP 1812/1813 (3799 for CoA, sent by us)
//!        ▼
//!  ironfence-server ── sockets, client table (secret by source IP), clock, randomness
//!        │  &[u8], secret, now
//!        ▼
//!  ironfence-radius (this crate)
//!        │  Packet::decode → verify_request → ReplyCache::begin
//!        │  dict / describe for logs
//!        ▼
//!  ironfence-policy ── decides Accept / Reject / VLAN …
//!        │  PacketBuilder::{add_*, copy_proxy_state}
//!        ▼
//!  ironfence-radius: encode_response_into → ReplyCache::complete → server sends bytes
//! ```
//!
//! The crate performs no I/O and owns no clock or random source: callers pass Request
//! Authenticators, salts and `now`. Decoding borrows the datagram and does not allocate;
//! encoding a reply into a reused buffer does not allocate either.
//!
//! Security properties this crate provides (see RFC 2865, 2866, 3579, 5080, 5176, 5997 and
//! BlastRADIUS / CVE-2024-3596):
//! * strict length checks (20..=4096, attribute lengths, fixed-size attributes, a single
//!   Message-Authenticator) — malformed packets are rejected, never panicked on;
//! * constant-time verification of Message-Authenticator and Request/Response Authenticators;
//! * Message-Authenticator is written as the **first** attribute of every
//!   Access-Accept/Reject/Challenge and Status-Server answer;
//! * [`dict::describe`] never renders passwords or keys.
//!
//! Policy (requiring Message-Authenticator, `limit_proxy_state`, unknown-code handling) is
//! left to the server: this crate reports facts.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod builder;
mod cache;
mod code;
pub mod dict;
pub mod dynauth;
pub mod endpoint;
mod error;
pub mod hop;
mod packet;

pub use auth::{
    RequestCheck, decrypt_mppe_key, decrypt_tunnel_password, unhide_user_password, verify_request,
    verify_response,
};
pub use builder::{MAX_ATTRIBUTES_LEN, PacketBuilder};
pub use cache::{CacheKey, CacheLookup, ReplyCache};
pub use code::Code;
pub use endpoint::{
    Action, ClientPolicy, ClientTable, DropReason, Endpoint, EndpointConfig, EndpointEvent,
    Replied, Request, RequestId, RequireMessageAuthenticator, Service,
};
pub use error::{AuthError, DecodeError, EncodeError, ResponseError};
pub use packet::{Attributes, OwnedPacket, Packet, RawAttribute, VendorAttributes};

/// Size of the RADIUS header (Code, Identifier, Length, Authenticator).
pub const HEADER_LEN: usize = 20;
/// Maximum packet size (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Maximum attribute value size (255 − type − length).
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 253;

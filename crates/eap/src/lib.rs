//! The EAP server, without sockets and without a clock (RFC 3748, RFC 3579).
//!
//! ```text
//!  RADIUS Access-Request ──► server::radius::eap (IO shell: joins EAP-Message, looks users up,
//!                              │                   decides the role, builds the RADIUS reply)
//!                              ▼
//!                      Conversations::handle(now, Input) ──► Step
//!                        │ State → Conversation (expiry, round limit, duplicate round)
//!                        ▼
//!                      method: identity → NAK negotiation → md5 | tls | peap | ttls
//!                        │ tls, peap, ttls: rustls ServerConnection fed in memory
//!                        │                  (tlsframe: L/M/S fragmentation, reassembly)
//!                        │ peap, ttls inner: mschapv2 · pap (a Step::Verify for the shell)
//!                        ▼
//!                      Step::{Challenge, Verify, Success{keys}, Failure, Discard}
//! ```
//!
//! Module ownership while issue 12 is built: `packet`, `message`, `tlsframe`, `tls`,
//! `tickets`, `conversation`, `keys` — the core; `mschapv2`, `peap`, `ttls`, `md5` — the
//! inner methods' codecs and crypto (pure functions with RFC test vectors).

pub mod conversation;
pub mod inner;
pub mod keys;
pub mod md5;
pub mod message;
pub mod mschapv2;
pub mod packet;
pub mod peap;
pub mod tickets;
pub mod tls;
pub mod tlsframe;
pub mod ttls;

pub use conversation::{
    Conversations, ConversationsConfig, Input, Limits, Method, Outcome, Step, Verdict, Verify,
    VerifyId,
};
pub use keys::Msk;
pub use packet::{Code, DecodeError, EapPacket, EapType};

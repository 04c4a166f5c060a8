//! The administration interface's decisions, without IO and with time as an input: which
//! role may do what ([`role`]), stateless API tokens ([`token`]), the TOTP second factor
//! ([`totp`]) and login backoff ([`backoff`]). The REST API and the web pages in
//! `ironfence-server::admin` are the shell around them.
//!
//! ```text
//!  POST /login ─► backoff::check(account, source) ─► password (argon2id) ─► totp::verify
//!        │                                                       └─► ReplayGuard (per server)
//!        └─► token::issue(key, Claims{session, account, issued_at, last_seen})
//!  any request ─► token::verify(key, token, now) ─► idle 15 min / lifetime 12 h ─► refresh
//! ```
#![forbid(unsafe_code)]

pub mod backoff;
pub mod role;
pub mod token;
pub mod totp;

pub use backoff::{Backoff, BackoffPolicy, Locked};
pub use role::{Access, Role};
pub use token::{Claims, TokenError, TokenKey};

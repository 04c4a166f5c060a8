//! The administration interface's decisions, without IO and with time as an input: which
//! role may do what ([`role`]), and (filled in by the authentication work) API tokens, TOTP
//! and login backoff. The REST API and the web pages in `ironfence-server::admin` are the
//! shell around them.
#![forbid(unsafe_code)]

pub mod role;

pub use role::{Access, Role};

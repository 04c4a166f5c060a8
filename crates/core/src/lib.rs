//! Domain types shared by every ironfence crate.
//!
//! ```text
//!   radius (wire)      config (INI)
//!          \             /
//!   policy (decisions) ── core (this crate: Mac, Node, NodeStatus)
//!          /             \
//!   server (IO)         store (SQLite / MariaDB)
//! ```
//!
//! Nothing here reads a clock: times are UNIX seconds passed in by the caller. The one IO
//! exception is [`fsutil`], the shared atomic file write.
#![forbid(unsafe_code)]

pub mod fsutil;
mod mac;
mod node;

pub use mac::{Mac, MacParseError};
pub use node::{Node, NodeStatus, NodeView, PolicyView, UnixTime};

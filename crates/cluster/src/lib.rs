//! Cluster logic without IO.
//!
//! ```text
//!   daemon / CLI ──► bundle (collect, hash, encode, decode, apply atomically)
//!                ──► resolve (pure: which version wins, who pushes)
//!                ──► types (ConfigVersion, ServerStatus, PushReport: JSON DTOs)
//!   webservices  ──► moves bundles and DTOs between servers over HTTPS
//! ```
#![forbid(unsafe_code)]

pub mod types;

pub use types::{ConfigVersion, PeerFailure, PushReport, ServerStatus, UnixTime};

//! The RADIUS load balancer's decisions, without IO and without a clock (time is an argument).
//!
//! ```text
//!  request ─► rendezvous::key(Calling-Station-Id, User-Name)
//!               │ rendezvous::rank(members, key)      same order on every server
//!               ▼
//!             select::candidates(ranking, views, has_state)
//!               │  health (alive/zombie/dead/reviving), drain (maintenance)
//!               ▼
//!             first candidate: this server → in-process; else proxied
//!               │  pending::Pending (4 sockets × 256 identifiers per backend)
//!               ▼
//!             answered / timed out ─► health::Health ─► next candidate on timeout
//! ```
//!
//! The IO (sockets, timers, Status-Server probes) is `ironfence-server::radius::balancer`;
//! the design and its timings are in docs/radius-load-balancer.md.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod health;
pub mod pending;
pub mod rendezvous;
pub mod select;

pub use health::{Health, HealthConfig, HealthState, ProbeDue};
pub use pending::{Pending, Slot};
pub use rendezvous::{key, rank, score};
pub use select::{BackendView, candidates};

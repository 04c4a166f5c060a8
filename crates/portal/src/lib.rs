//! The captive portal's decisions, without IO and with time as an input.
//!
//! ```text
//!  request ─► probes::classify (OS captive-portal probe?)   ─► redirect / success answer
//!          ─► ratelimit::Limiter::check (per source IP)    ─► 429
//!          ─► csrf::verify (form token bound to session)   ─► 403
//!          ─► source (server: local / guest / LDAP) ─ attributes ─► rules::decide ─► Grant
//!          ─► redirect::sanitize (where to send the user)  ─► never an open redirect
//! ```
//!
//! Everything here is deterministic: `now` is a parameter (UNIX seconds or a monotonic
//! [`std::time::Duration`] since an origin the caller chooses); randomness comes in as bytes.
//! The HTTP shell is `ironfence_server::web` (reusable by the admin UI) and
//! `ironfence_server::portal`.
#![forbid(unsafe_code)]

pub mod csrf;
pub mod password;
pub mod probes;
pub mod ratelimit;
pub mod redirect;
pub mod rules;

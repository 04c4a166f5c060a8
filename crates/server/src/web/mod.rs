//! The web stack the captive portal (and later the admin UI) is built on: one HTTP/1.1
//! server loop (plain or TLS) with limits, the session cookie, form decoding, and runtime
//! templates an operator can override.
//!
//! ```text
//!  TcpListener ─accept─► [TLS handshake ≤ 10 s] ─► hyper http1 (headers ≤ 16 KiB, read ≤ 10 s)
//!      ─► Peer{addr, local, tls} inserted ─► Router (axum) ─► request ≤ 30 s, body ≤ 16 KiB
//! ```
//!
//! What is security-relevant is here, once: [`session`] (random id, `HttpOnly`,
//! `SameSite=Lax`, `Secure` over HTTPS; CSRF tokens are bound to it with
//! `ironfence_portal::csrf`), [`form`] (bounded urlencoded decoding, malformed → 400),
//! [`templates`] (minijinja with HTML auto-escaping; defaults embedded in the binary,
//! overridden file by file from `conf/portal/templates/`). The per-IP rate limiter is
//! `ironfence_portal::ratelimit`, kept by each application's state.

pub mod client;
pub mod form;
pub mod serve;
pub mod session;
pub mod templates;
pub mod tls;

pub use serve::{Limits, Peer, serve};

//! RADIUS MAB load generator used by the benchmark: Message-Authenticator on every request,
//! replies verified.
//!
//! * [`client`]: closed-loop generator (`ironfence-loadgen --server … --concurrency …`);
//! * [`responder`]: `ironfence-loadgen null-responder`, the generator's own ceiling;
//! * [`eap`]: `ironfence-loadgen eap`, EAP-TLS / PEAP-MSCHAPv2 logins (rustls client);
//! * [`dhcp`]: `ironfence-loadgen dhcp`, simulated DHCP clients (duplicate check, DORA/s);
//! * [`devices`]: the MAC → role → VLAN formula shared by seeding and verification;
//! * [`hist`]: log-linear latency histogram;
//! * [`procstat`]: server CPU time and RSS from `/proc`;
//! * [`net`]: `recvmmsg`/`sendmmsg` batches (through nix: this crate has no unsafe code).

#![forbid(unsafe_code)]

pub mod client;
pub mod devices;
pub mod dhcp;
pub mod eap;
pub mod hist;
pub mod net;
pub mod procstat;
pub mod responder;

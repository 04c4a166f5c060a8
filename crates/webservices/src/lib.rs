//! Node-to-node API of ironfence ("webservices", port 9090 like PacketFence's): HTTPS with a
//! cluster CA, HTTP Basic auth, a server ([`serve`]) and a client ([`Client`]).
//!
//! ```text
//!   server A (management IP 10.0.0.1)                       server B (10.0.0.2)
//!  ┌───────────────────────────────┐                       ┌───────────────────────────────┐
//!  │ conf/ssl/cluster-ca.{crt,key} │◄── synced in the ───► │ conf/ssl/cluster-ca.{crt,key} │
//!  │        (config bundle)        │    config bundle      │        (config bundle)        │
//!  │              │ issues (2 y)   │                       │              │ issues         │
//!  │              ▼                │                       │              ▼                │
//!  │ <state>/tls/webservices.crt   │                       │ <state>/tls/webservices.crt   │
//!  │   SAN IP:10.0.0.1, DNS:pf-a   │                       │   SAN IP:10.0.0.2, DNS:pf-b   │
//!  │ Client ─────────────────────────── TLS 1.2/1.3 ──────────► serve() 10.0.0.2:9090      │
//!  │  trust anchor = cluster CA    │  chain [leaf, CA]     │  Basic auth ([webservices])   │
//!  │  server name  = IP 10.0.0.2   │ ◄──────────────────── │  GET  /api/v1/cluster/status  │
//!  └───────────────────────────────┘                       │  GET  /api/v1/cluster/version │
//!                                                          │  GET  /api/v1/cluster/bundle  │
//!   joining server C (no cluster CA yet)                   │  GET  /api/v1/cluster/files/* │
//!   cluster sync --from=10.0.0.2 --ca-fingerprint SHA256:… │  POST /api/v1/cluster/bundle  │
//!   Trust::PinnedCaFingerprint: CA at the end of the chain │  POST /api/v1/cluster/push    │
//!   must hash to the fingerprint AND sign the leaf ──────► │  GET  /api/v1/cluster/db      │
//!                                                          └───────────────────────────────┘
//! ```
//!
//! # Trust model
//!
//! PacketFence talks to its peers with TLS verification turned off (`SSL_VERIFYHOST/PEER=0`);
//! ironfence never does.
//!
//! * **Cluster CA** ([`ClusterCa`]): ECDSA P-256, valid 10 years, stored in the configuration
//!   bundle at `conf/ssl/cluster-ca.crt` and `conf/ssl/cluster-ca.key` (mode 0600), so it is
//!   synced to every member with the rest of the configuration (like PacketFence's shared
//!   `server.pem`). Its SHA-256 fingerprint ([`ClusterCa::fingerprint`], `SHA256:<hex>`) is what
//!   operators compare out of band.
//! * **Server certificate** ([`ensure_server_cert`]): each server's own, *not* synced, under
//!   `<state_dir>/tls/webservices.crt|.key`, issued by the cluster CA for 2 years with the
//!   management IP as IP SAN and the hostname as DNS SAN. It is reissued automatically when
//!   missing or unreadable, when it expires within 30 days, when it was issued by another CA
//!   than the current one, or when the IP/hostname changed. The server presents `[leaf, CA]`.
//! * **Clients** ([`Trust::ClusterCa`]) verify peers with rustls' WebPKI verifier, the cluster CA
//!   as the *only* trust anchor and the peer's management IP as server name
//!   (`ServerName::IpAddress`). There is no skip-verification mode.
//! * **Joining** (a server without the cluster CA, `cluster sync --from=IP`): the operator passes
//!   `--ca-fingerprint SHA256:<hex>` as printed by `ironfence cluster status` on a member
//!   ([`Trust::PinnedCaFingerprint`]). The peer is accepted only if the CA certificate at the end
//!   of the chain it presents has exactly that fingerprint *and* the leaf verifies against that
//!   CA (rustls' WebPKI verifier with that CA as root, for the peer's IP). Without a fingerprint
//!   ([`Trust::Unknown`]) the connection always fails with [`ClientError::Untrusted`], whose
//!   message shows the presented fingerprint and the exact option to re-run with — SSH-like,
//!   never silent trust-on-first-use.
//! * **Who may connect** ([`AllowedPeers`]): only the members' addresses from cluster.conf
//!   (their `management_ip` and interface addresses, the cluster's virtual IPs) and this
//!   server itself; every other source is closed right after `accept`, before the TLS
//!   handshake, and holds no slot. At most 8 concurrent connections per source (256 in all),
//!   so one member cannot starve the others. Clients bind their socket to their own
//!   management IP ([`Client::with_source`]) so that peers see the listed address.
//! * **Authentication**: HTTP Basic with pf.conf's `[webservices] user/pass` on every endpoint,
//!   compared in constant time; failures answer 401 with `WWW-Authenticate` and are logged
//!   (peer address, never the password), rate-limited. After 5 wrong passwords a source is
//!   refused (429 with `Retry-After`, whatever it sends) for 10 s, doubling with each further
//!   failure up to 15 min; every block is logged.
//!
//! # Limits
//!
//! Request bodies: 64 MiB for `POST /api/v1/cluster/bundle` ([`MAX_BUNDLE_BYTES`]), 1 MiB for
//! everything else ([`MAX_REQUEST_BYTES`]); TLS handshake 5 s, request headers 10 s, one request
//! per connection (no idle keep-alive). File
//! paths under `/files/` are validated (no `..`, no absolute path, no percent-encoded tricks)
//! before the node is asked, and the node answers only for files of the bundle.
#![forbid(unsafe_code)]

mod access;
mod client;
mod pki;
mod server;
mod trust;

pub use access::{AllowedPeers, ApiCounters};
pub use client::{Client, ClientError};
pub use pki::{CertError, ClusterCa, ServerCert, ca_fingerprint, ensure_server_cert};
pub use server::{
    AuditAnswer, ClusterNode, Credentials, MAX_AUDIT_LIMIT, audit_query_string, parse_audit_query,
    parse_basic_credentials, serve,
};
pub use trust::Trust;

/// Largest accepted `POST /api/v1/cluster/bundle` body.
pub const MAX_BUNDLE_BYTES: usize = 64 << 20;
/// Largest accepted body for every other request.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// PacketFence's webservices port, kept for ironfence.
pub const DEFAULT_PORT: u16 = 9090;

/// Paths of the API (shared by server and client).
pub(crate) mod paths {
    pub const STATUS: &str = "/api/v1/cluster/status";
    pub const VERSION: &str = "/api/v1/cluster/version";
    pub const BUNDLE: &str = "/api/v1/cluster/bundle";
    pub const FILES_PREFIX: &str = "/api/v1/cluster/files/";
    pub const PUSH: &str = "/api/v1/cluster/push";
    pub const DB: &str = "/api/v1/cluster/db";
    pub const AUDIT: &str = "/api/v1/cluster/audit";
    /// Header naming the server a pushed bundle comes from.
    pub const FROM_HEADER: &str = "x-ironfence-from";
}

/// The TLS versions both sides accept.
pub(crate) static TLS_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

pub(crate) fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

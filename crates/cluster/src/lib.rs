//! Cluster logic of ironfence without network IO: what the servers of an active/active cluster
//! synchronize, how a configuration version is identified, and which version wins a conflict.
//!
//! ```text
//!  daemon / CLI ──► bundle   collect conf/*.conf, conf/ssl/**, cluster-files.txt extras;
//!                            hash (= ConfigVersion.hash); encode/decode IFBUNDLE (untrusted
//!                            input: strict); receiver policy; apply under a lock with a commit
//!                            journal (stage, validate, rename, rollback; recover after a crash)
//!               ──► version  <state_dir>/config-version.json: this server's version, local
//!                            changes detected by hash
//!               ──► resolve  pure: Observation ─► Decision (guide's rules) ─► ConflictTracker
//!                            ("seen twice") ─► Action; management_server()
//!               ──► types    ConfigVersion, ServerStatus, PushReport: JSON DTOs
//!  webservices  ──► moves bundles and DTOs between servers over HTTPS
//! ```
//!
//! `resolve` follows the openraft style: observations in, decisions out; the daemon does the
//! HTTP calls and the pushes. `bundle` and `version` touch only the files they are given.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod resolve;
pub mod types;
pub mod version;

pub use bundle::{
    ApplyReport, Bundle, BundleError, BundleFile, ReceivePolicy, StagedConfig, apply, collect,
    decode, decode_owned, local_version, recover,
};
pub use resolve::{
    Action, ConflictTracker, Decision, ManagementCandidate, Observation, Rule, ServerObservation,
    decide, management_server,
};
pub use types::{ConfigVersion, PeerFailure, PushReport, ServerStatus, UnixTime};
pub use version::{LocalChange, VersionStore, VersionStoreError};

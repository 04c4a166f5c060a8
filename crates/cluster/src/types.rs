//! Types shared by the cluster logic, the node-to-node API and the daemon (wire DTOs are JSON).

use serde::{Deserialize, Serialize};

/// Seconds since the UNIX epoch.
pub type UnixTime = i64;

/// A configuration version: the content hash of the config bundle, plus when and where the
/// change that produced it was made. Two servers run the same configuration iff their hashes
/// are equal; `changed_at` only orders versions ("most recent").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// Lower-case hex SHA-256 over the bundle's files (see `bundle`).
    pub hash: String,
    pub changed_at: UnixTime,
    /// Hostname of the server where the change was made.
    pub changed_by: String,
}

impl ConfigVersion {
    /// First 12 hex digits, for tables and logs.
    pub fn short(&self) -> &str {
        &self.hash[..self.hash.len().min(12)]
    }
}

/// A server's answer to `GET /api/v1/cluster/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub hostname: String,
    /// ironfence software version.
    pub software_version: String,
    pub config_version: ConfigVersion,
    pub maintenance: bool,
    /// Peers this server has disabled (`cluster node NAME disable`).
    pub disabled_peers: Vec<String>,
    /// Database state as this server sees it (e.g. `sqlite`, `Primary/Synced`); free text.
    pub db_state: String,
    /// True when the server runs in read-only (degraded) mode.
    pub read_only: bool,
}

/// Result of pushing a bundle to peers: who got it and who did not (by name, with why).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReport {
    pub version: Option<ConfigVersion>,
    pub updated: Vec<String>,
    pub failed: Vec<PeerFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFailure {
    pub server: String,
    pub error: String,
}

impl PushReport {
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

//! Types shared by the cluster logic, the node-to-node API and the daemon (wire DTOs are JSON).

use serde::{Deserialize, Serialize};

/// Seconds since the UNIX epoch.
pub type UnixTime = i64;

/// How far in the future (seconds, against the local clock) a version's `changed_at` may be.
/// A version dated further ahead would win "most recent" until that time comes: a receiver
/// refuses it and the conflict check never chooses it.
pub const MAX_CLOCK_SKEW: i64 = 300;

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
    /// First 12 hex digits, for tables and logs. The hash may come from a peer's JSON: cut at
    /// a character boundary, never panic on non-hex text.
    pub fn short(&self) -> &str {
        let end = self
            .hash
            .char_indices()
            .nth(12)
            .map_or(self.hash.len(), |(i, _)| i);
        &self.hash[..end]
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
    /// The virtual IPs this server holds (keepalived MASTER), as `interface ip`. Fields below
    /// default when absent, so that servers of an older version still parse.
    #[serde(default)]
    pub vips_held: Vec<String>,
    /// This server holds `[CLUSTER] management_ip`: it is the management server.
    #[serde(default)]
    pub holds_management_vip: bool,
    /// Readiness to hold VIPs (`None`: this server manages no VIP, or an older version).
    #[serde(default)]
    pub ready: Option<bool>,
    /// What keeps it unready (RADIUS, database, configuration).
    #[serde(default)]
    pub unready_reasons: Vec<String>,
    /// keepalived / haproxy errors (failing to start, exiting).
    #[serde(default)]
    pub front_door_errors: Vec<String>,
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

/// A server's database as it reports it to its peers (`GET /api/v1/cluster/db`): what the
/// Galera start decision of the other servers needs (`ironfence db start`), and what
/// `ironfence db status --all` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbState {
    /// Its mariadbd answers on its local socket.
    pub running: bool,
    /// `wsrep_cluster_status = Primary`: it is in a quorum and can be joined.
    pub primary: bool,
    /// `wsrep_local_state_comment = Synced`.
    pub synced: bool,
    /// `wsrep_ready = ON`.
    pub ready: bool,
    /// `wsrep_cluster_size` (running only).
    pub cluster_size: Option<u32>,
    /// Its last committed seqno: `wsrep_last_committed` when running; otherwise
    /// `grastate.dat`'s seqno, or the position `mariadbd --wsrep-recover` found after an
    /// unclean stop. `None`: no position to offer (empty datadir, unrecovered crash).
    pub last_committed: Option<i64>,
    /// `grastate.dat` has `safe_to_bootstrap: 1`.
    pub safe_to_bootstrap: bool,
    /// The server is in maintenance: its database takes no part in the cluster.
    pub maintenance: bool,
    /// `wsrep_local_state_comment` as reported (empty when not running).
    #[serde(default)]
    pub local_state: String,
    /// `wsrep_cluster_status` as reported (empty when not running).
    #[serde(default)]
    pub cluster_status: String,
    /// `wsrep_incoming_addresses` (running only).
    #[serde(default)]
    pub incoming_addresses: Vec<String>,
    /// The Galera state UUID of its data's history (`wsrep_cluster_state_uuid` when running,
    /// else `grastate.dat`'s uuid). `None`: no history (empty datadir, zero UUID) or a server
    /// from before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_uuid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_never_splits_a_character() {
        let v = |hash: &str| ConfigVersion {
            hash: hash.into(),
            changed_at: 0,
            changed_by: "pf1".into(),
        };
        assert_eq!(v(&"ab".repeat(32)).short(), "abababababab");
        assert_eq!(v("abc").short(), "abc");
        // From a peer's JSON: 13 bytes, the 12th inside "é".
        assert_eq!(v("aaaaaaaaaaaé").short(), "aaaaaaaaaaaé");
        assert_eq!(v(&"é".repeat(20)).short(), "é".repeat(12));
    }
}

//! Per-server cluster state that is deliberately NOT part of the synced configuration:
//! whether this server is in maintenance, and which peers this server has disabled.
//! (PacketFence keeps the same facts in local run files; syncing them would let one server's
//! "disable pf3" silently apply everywhere.)
//!
//! Stored as JSON in `<state_dir>/cluster-local.json`, replaced atomically.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FILE: &str = "cluster-local.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalClusterState {
    /// In maintenance this server does not join the cluster's database and peers exclude it.
    #[serde(default)]
    pub maintenance: bool,
    /// Peers this server no longer treats as members (sync, conflict checks, later VIPs/DB).
    #[serde(default)]
    pub disabled_peers: BTreeSet<String>,
}

impl LocalClusterState {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE)
    }

    /// Reads the state; a missing file is the default (not in maintenance, nobody disabled).
    pub fn load(state_dir: &Path) -> std::io::Result<LocalClusterState> {
        match std::fs::read(Self::path(state_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", Self::path(state_dir).display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        ironfence_core::fsutil::write_atomic(&Self::path(state_dir), &json, 0o600)
    }

    pub fn is_disabled(&self, peer: &str) -> bool {
        self.disabled_peers.contains(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            LocalClusterState::load(dir.path()).unwrap(),
            LocalClusterState::default()
        );
        let mut s = LocalClusterState {
            maintenance: true,
            ..Default::default()
        };
        s.disabled_peers.insert("pf3.example.com".into());
        s.save(dir.path()).unwrap();
        let back = LocalClusterState::load(dir.path()).unwrap();
        assert_eq!(back, s);
        assert!(back.is_disabled("pf3.example.com"));
    }
}

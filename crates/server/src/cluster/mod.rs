//! This server as a member of an active/active cluster: the configuration bundle it serves
//! and applies, its node-to-node API (`webservices`), and the periodic configuration conflict
//! check it runs when it is the management server.
//!
//! ```text
//!   CLI (cluster sync/status/…) ──┐                    ┌── peers' webservices (HTTPS, Basic auth,
//!                                 ├─► Member (this) ───┤    cluster CA)
//!   daemon: ClusterService ───────┘                    └── ironfence-cluster: bundle, version, resolve
//! ```
//!
//! The functions here are shared by the daemon and the CLI, so that `ironfence cluster sync`
//! works with or without a running daemon.

pub mod local_state;
mod service;
pub mod status;
pub mod supervisor;

pub use local_state::LocalClusterState;
pub(crate) use service::{APPLY_QUEUE, local_status};
pub use service::{ClusterService, run_conflict_checks};

use ironfence_cluster::{
    Bundle, ConfigVersion, LocalChange, PeerFailure, PushReport, ReceivePolicy, StagedConfig,
};
use ironfence_config::{ClusterServer, Config};
use ironfence_webservices::{Client, ClusterCa, Credentials, Trust};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Timeout of one node-to-node call.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds since the UNIX epoch, read at the edge.
pub fn unix_now() -> i64 {
    crate::radius::unix_now()
}

/// Where this member's files live.
#[derive(Debug, Clone)]
pub struct Member {
    pub identity: String,
    pub conf_dir: PathBuf,
    pub install_root: PathBuf,
    pub state_dir: PathBuf,
}

impl Member {
    pub fn of(config: &Config) -> Member {
        Member {
            identity: config.identity.clone(),
            conf_dir: config.conf_dir.clone(),
            install_root: ironfence_config::installation_root(&config.conf_dir),
            state_dir: config.pf.general.state_dir.clone(),
        }
    }

    /// Collects this server's bundle from disk.
    pub fn bundle(&self, config: &Config) -> Result<Bundle, String> {
        ironfence_cluster::collect(&self.conf_dir, &self.install_root, &config.cluster_files)
            .map_err(|e| e.to_string())
    }

    /// This server's configuration version, read under the shared apply lock. A bundle whose
    /// hash differs from the recorded version is a local change (manual edit): it gets a new
    /// version stamped now, by us — never while an apply is pending. Blocking (file IO, and it
    /// waits for an apply in progress): async callers use [`Member::version_blocking`].
    pub fn version(&self, config: &Config) -> Result<(ConfigVersion, LocalChange, Bundle), String> {
        ironfence_cluster::local_version(
            &self.conf_dir,
            &self.install_root,
            &config.cluster_files,
            &self.state_dir,
            &self.identity,
            unix_now(),
        )
        .map_err(|e| e.to_string())
    }

    /// [`Member::version`] off the runtime threads.
    pub async fn version_blocking(
        config: Arc<Config>,
    ) -> Result<(ConfigVersion, LocalChange, Bundle), String> {
        tokio::task::spawn_blocking(move || Member::of(&config).version(&config))
            .await
            .map_err(|e| format!("computing the configuration version: {e}"))?
    }

    /// What this server accepts from a peer's bundle: its own rules (see
    /// `ironfence_cluster::ReceivePolicy`).
    pub fn receive_policy(&self, config: &Config) -> ReceivePolicy {
        ReceivePolicy::new(&self.install_root, &self.state_dir, &config.cluster_files)
    }

    /// Applies a bundle received from a peer: decoded and verified (its file contents stay
    /// slices of `bytes`), checked against this server's receive policy, validated as a whole
    /// configuration (for this server's identity) in a staging copy, then written atomically
    /// under the apply lock with its version. Blocking: run it off the runtime threads.
    /// Returns the version now in force and the changed files.
    pub fn apply(
        &self,
        config: &Config,
        bytes: Vec<u8>,
        from: &str,
    ) -> Result<(ConfigVersion, Vec<String>), String> {
        let (version, bundle) = ironfence_cluster::decode_owned(bytes)
            .map_err(|e| format!("bundle from {from} refused: {e}"))?;
        let identity = self.identity.clone();
        let report = ironfence_cluster::apply(
            &self.receive_policy(config),
            bundle,
            &version,
            unix_now(),
            |staging_conf| {
                Config::load_as(staging_conf, Some(&identity))
                    .map(|c| StagedConfig {
                        state_dir: c.pf.general.state_dir,
                    })
                    .map_err(|d| format!("the configuration would not load on {identity}:\n{d}"))
            },
        )
        .map_err(|e| format!("bundle from {from} not applied: {e}"))?;
        if !report.normalized_modes.is_empty() {
            tracing::warn!(
                from, files = ?report.normalized_modes,
                "file modes offered by the peer were normalised (no execute bits, no group/other write)"
            );
        }
        let mut changed = report.added.clone();
        changed.extend(report.modified.iter().cloned());
        changed.extend(report.deleted.iter().map(|d| format!("{d} (deleted)")));
        let version = report.version;
        tracing::info!(
            from, version = version.short(), changed_by = %version.changed_by,
            files = ?changed, "configuration bundle applied"
        );
        Ok((version, changed))
    }
}

/// Webservices credentials from pf.conf.
pub fn credentials(config: &Config) -> Credentials {
    Credentials {
        user: config.pf.webservices.user.clone(),
        pass: config.pf.webservices.pass.expose().to_string(),
    }
}

/// Trust for talking to peers in normal operation: the cluster CA of our configuration.
pub fn cluster_trust(config: &Config) -> Result<Trust, String> {
    match ClusterCa::load(&config.conf_dir).map_err(|e| e.to_string())? {
        Some(ca) => Ok(Trust::ClusterCa(ca.cert_der().clone())),
        None => Err(format!(
            "no cluster CA in {}/ssl: start `ironfence serve` once on the first server (it creates one), \
             or join with `ironfence cluster sync --from=IP --ca-fingerprint SHA256:…`",
            config.conf_dir.display()
        )),
    }
}

/// A client for `server`'s node-to-node API.
pub fn client_for(config: &Config, server: &ClusterServer, trust: Trust) -> Result<Client, String> {
    client_with_timeout(config, server, trust, PEER_TIMEOUT)
}

/// [`client_for`] with another per-call timeout (status displays use a short one).
pub fn client_with_timeout(
    config: &Config,
    server: &ClusterServer,
    trust: Trust,
    timeout: Duration,
) -> Result<Client, String> {
    let ip = server
        .management_ip
        .ok_or_else(|| format!("{} has no management_ip in cluster.conf", server.name))?;
    Client::new(
        ip.into(),
        config.pf.webservices.port,
        trust,
        credentials(config),
        timeout,
    )
    .map(|c| from_management_ip(c, config))
    .map_err(|e| e.to_string())
}

/// Peers admit only the addresses of cluster.conf: `client` connects from this server's
/// management IP (not whatever source address the kernel would pick).
pub fn from_management_ip(client: Client, config: &Config) -> Client {
    match config.this_server().and_then(|s| s.management_ip) {
        Some(ip) => client.with_source(ip.into()),
        None => client,
    }
}

/// Pushes this server's bundle to `targets` (names), or to every enabled peer when `None`.
/// Never stops at the first failure: the report names each peer that could not be updated.
pub async fn push_to_peers(
    config: &Config,
    targets: Option<&[String]>,
) -> Result<PushReport, String> {
    let member = Member::of(config);
    let local = LocalClusterState::load(&member.state_dir).map_err(|e| e.to_string())?;
    let (version, _, bundle) = Member::version_blocking(Arc::new(config.clone())).await?;
    let encoded = bundle.encode(&version);
    let trust = cluster_trust(config)?;
    let mut report = PushReport {
        version: Some(version.clone()),
        ..PushReport::default()
    };
    for peer in config.peers() {
        let wanted = match targets {
            Some(t) => t.iter().any(|n| n == &peer.name),
            None => !local.is_disabled(&peer.name),
        };
        if !wanted {
            continue;
        }
        let result = match client_for(config, peer, trust.clone()) {
            Ok(client) => client
                .push_bundle(encoded.clone(), &member.identity)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(v) if v.hash == version.hash => report.updated.push(peer.name.clone()),
            Ok(v) => report.failed.push(PeerFailure {
                server: peer.name.clone(),
                error: format!("peer reports version {} after the push", v.short()),
            }),
            Err(error) => report.failed.push(PeerFailure {
                server: peer.name.clone(),
                error,
            }),
        }
    }
    if report.failed.is_empty() {
        tracing::info!(version = version.short(), peers = ?report.updated, "configuration pushed");
    } else {
        tracing::warn!(version = version.short(), updated = ?report.updated, failed = ?report.failed, "configuration push incomplete");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_cluster::{BundleFile, VersionStore};
    use std::fs;
    use std::path::Path;

    /// An installation root with the shipped example configuration (state_dir = state).
    fn installation() -> (tempfile::TempDir, Config, Member) {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("conf");
        fs::create_dir_all(&conf).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf");
        for e in fs::read_dir(shipped).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), conf.join(e.file_name())).unwrap();
        }
        let config = Config::load(&conf).unwrap();
        let member = Member::of(&config);
        (d, config, member)
    }

    fn encoded(files: Vec<BundleFile>) -> (ConfigVersion, Vec<u8>) {
        let b = Bundle::from_files(files).unwrap();
        let v = ConfigVersion {
            hash: b.hash(),
            changed_at: unix_now(),
            changed_by: "pf2".into(),
        };
        let bytes = b.encode(&v);
        (v, bytes)
    }

    #[test]
    fn a_pushed_bundle_is_held_to_this_servers_rules() {
        let (d, config, member) = installation();
        let local = member.bundle(&config).unwrap();
        assert_eq!(member.state_dir, member.install_root.join("state"));
        for (path, mode) in [("cron.d/x", 0o755), ("state/ironfence.db", 0o600)] {
            let mut files = local.files().to_vec();
            files.push(BundleFile {
                path: path.into(),
                mode,
                content: b"evil".to_vec().into(),
            });
            let (_, bytes) = encoded(files);
            let e = member.apply(&config, bytes, "pf2").unwrap_err();
            assert!(e.contains(path) && e.contains("does not accept"), "{e}");
            assert!(!d.path().join(path).exists(), "{path} was written");
            assert!(VersionStore::load(&member.state_dir).unwrap().is_none());
        }
        // An ordinary change is applied and its version recorded in this server's state dir.
        let mut files: Vec<BundleFile> = local.files().to_vec();
        for f in &mut files {
            if f.path == "conf/switches.conf" {
                let mut c = f.content.to_vec();
                c.extend_from_slice(b"\n# changed on pf2\n");
                f.content = c.into();
            }
        }
        let (v, bytes) = encoded(files);
        let (applied, changed) = member.apply(&config, bytes, "pf2").unwrap();
        assert_eq!(applied, v);
        assert_eq!(changed, ["conf/switches.conf"]);
        assert_eq!(
            VersionStore::load(&member.state_dir).unwrap(),
            Some(v.clone())
        );
        // And this server now reports exactly that version (no local change).
        let (now, change, _) = member.version(&config).unwrap();
        assert_eq!((now, change), (v, LocalChange::Unchanged));
    }
}

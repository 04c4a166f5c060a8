//! The daemon side of cluster membership: the node-to-node API handlers and the periodic
//! configuration conflict check.
//!
//! File work (collecting the bundle, applying a pushed one: up to 64 MiB of writes and fsyncs)
//! runs on the blocking pool, never on a runtime worker; pushed bundles are applied one at a
//! time (an async queue in front, the apply lock behind it).

use super::{LocalClusterState, Member, client_for, cluster_trust, push_to_peers};
use crate::Shared;
use ironfence_cluster::{
    Action, ConfigVersion, ConflictTracker, LocalChange, ManagementCandidate, Observation,
    PushReport, ServerObservation, ServerStatus, management_server,
};
use ironfence_webservices::ClusterNode;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Pushed bundles wait here for their turn (asynchronously, holding no blocking thread); the
/// admin API's configuration writes take their turn here too (`admin::config_write`).
pub(crate) static APPLY_QUEUE: Mutex<()> = Mutex::const_new(());

/// Implements the node-to-node API on top of the running daemon.
#[derive(Debug)]
pub struct ClusterService {
    pub(crate) shared: Arc<Shared>,
}

impl ClusterService {
    fn member(&self) -> (Arc<ironfence_config::Config>, Member) {
        let config = self.shared.config();
        let member = Member::of(&config);
        (config, member)
    }
}

/// This server's status as its peers see it.
pub(crate) async fn local_status(shared: &Shared) -> Result<ServerStatus, String> {
    let config = shared.config();
    let member = Member::of(&config);
    let version = running_version(shared, &config, &member).await?;
    let local = LocalClusterState::load(&member.state_dir).map_err(|e| e.to_string())?;
    let fd = shared.front_door.status();
    Ok(ServerStatus {
        hostname: member.identity,
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        config_version: version,
        maintenance: local.maintenance,
        disabled_peers: local.disabled_peers.into_iter().collect(),
        db_state: match shared.db.state() {
            s if s.is_empty() => shared.store.backend_name().to_string(),
            s => s,
        },
        read_only: shared.db.is_read_only(),
        vips_held: fd
            .held
            .iter()
            .map(|h| format!("{} {}", h.interface, h.vip))
            .collect(),
        holds_management_vip: fd.management_vip_held,
        ready: fd.managed.then_some(fd.ready).flatten(),
        unready_reasons: fd.unready_reasons,
        front_door_errors: fd.errors,
    })
}

/// The version this server runs: the one of the files its configuration in force was loaded
/// from. Files edited since (not reloaded yet) are reported in the log, not as the version:
/// peers and `cluster status` must see what this server actually serves.
async fn running_version(
    shared: &Shared,
    config: &Arc<ironfence_config::Config>,
    member: &Member,
) -> Result<ConfigVersion, String> {
    let (on_disk, change, _) = Member::version_blocking(config.clone()).await?;
    warn_local_change(member, &change);
    match shared.running_version() {
        Some(running) => {
            if running.hash != on_disk.hash {
                tracing::warn!(
                    running = running.short(),
                    on_disk = on_disk.short(),
                    "the configuration files differ from the configuration in force: run \
                     `ironfence configreload` (or publish with `ironfence cluster sync --as-master`)"
                );
            }
            Ok(running)
        }
        None => Ok(on_disk),
    }
}

/// A manual edit is never reverted silently: say so, and how to publish it.
pub(crate) fn warn_local_change(member: &Member, change: &LocalChange) {
    if let LocalChange::Detected { previous } = change {
        tracing::warn!(
            server = %member.identity,
            previous = previous.as_ref().map(|v| v.short().to_string()).unwrap_or_else(|| "none".into()),
            "the configuration of this server was changed locally and now differs from the cluster; \
             publish it with `ironfence cluster sync --as-master` on this server, or the conflict \
             resolution may replace it with the cluster's version"
        );
    }
}

impl ClusterNode for ClusterService {
    async fn status(&self) -> Result<ServerStatus, String> {
        local_status(&self.shared).await
    }

    async fn config_version(&self) -> Result<ConfigVersion, String> {
        let (config, member) = self.member();
        running_version(&self.shared, &config, &member).await
    }

    async fn bundle(&self) -> Result<Vec<u8>, String> {
        let (config, _) = self.member();
        let (version, _, bundle) = Member::version_blocking(config).await?;
        Ok(bundle.encode(&version))
    }

    async fn bundle_file(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let (config, member) = self.member();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let bundle = member.bundle(&config)?;
            Ok(bundle.get(&path).map(|f| f.content.to_vec()))
        })
        .await
        .map_err(|e| format!("reading the bundle: {e}"))?
    }

    async fn apply_bundle(&self, bundle: Vec<u8>, from: String) -> Result<ConfigVersion, String> {
        // One at a time: later pushes wait here without holding a blocking thread.
        let _turn = APPLY_QUEUE.lock().await;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let config = shared.config();
            let member = Member::of(&config);
            let (version, _) = member.apply(&config, bundle, &from)?;
            // The files are in place; the running configuration follows.
            shared
                .reload()
                .map_err(|d| format!("applied but not reloaded: {d}"))?;
            Ok(version)
        })
        .await
        .map_err(|e| format!("applying the bundle: {e}"))?
    }

    async fn push_to_peers(&self) -> Result<PushReport, String> {
        let config = self.shared.config();
        push_to_peers(&config, None).await
    }

    /// The local Galera node, from its socket and datadir: answered even while the database
    /// is down (the peers' start decision needs the saved position).
    async fn db_state(&self) -> Result<ironfence_cluster::types::DbState, String> {
        let config = self.shared.config();
        crate::galera::local_db_state(&config).await
    }

    /// This server's own audit records (its local file log), read from the files.
    async fn audit(
        &self,
        query: ironfence_audit::Query,
    ) -> Result<Vec<ironfence_audit::AuditRecord>, String> {
        crate::audit::query_local(&self.shared, query).await
    }
}

/// Every `[maintenance] cluster_check_interval`, the management server compares the
/// configuration versions of the members and resolves a conflict seen on two consecutive
/// checks (see `ironfence_cluster::resolve`).
pub async fn run_conflict_checks(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tracker = ConflictTracker::new();
    loop {
        let interval = shared.config().pf.maintenance.cluster_check_interval;
        let Some(interval) = interval.filter(|d| !d.is_zero()) else {
            // Disabled (0): look again later in case a reload enables it.
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
                _ = shutdown.wait_for(|s| *s) => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if let Err(e) = check_once(&shared, &mut tracker).await {
            tracing::warn!(error = %e, "configuration conflict check failed");
        }
    }
}

async fn check_once(shared: &Arc<Shared>, tracker: &mut ConflictTracker) -> Result<(), String> {
    let config = shared.config();
    let Some(cluster) = &config.cluster else {
        return Ok(());
    };
    let member = Member::of(&config);
    let local = LocalClusterState::load(&member.state_dir).map_err(|e| e.to_string())?;
    if local.maintenance {
        return Ok(()); // a server in maintenance takes no cluster decision
    }
    let trust = cluster_trust(&config)?;
    let mut observed = Vec::new();
    let mut candidates = Vec::new();
    for server in &cluster.servers {
        if server.name == member.identity {
            let version = running_version(shared, &config, &member).await?;
            candidates.push(ManagementCandidate {
                name: server.name.clone(),
                available: true,
                holds_management_vip: shared.front_door.status().management_vip_held,
            });
            observed.push(ServerObservation {
                name: server.name.clone(),
                alive: true,
                version: Some(version),
            });
            continue;
        }
        if local.is_disabled(&server.name) {
            continue;
        }
        let status = match client_for(&config, server, trust.clone()) {
            Ok(client) => client.status().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match status {
            Ok(st) if st.maintenance => {
                candidates.push(ManagementCandidate {
                    name: server.name.clone(),
                    available: false,
                    holds_management_vip: st.holds_management_vip,
                });
            }
            Ok(st) => {
                candidates.push(ManagementCandidate {
                    name: server.name.clone(),
                    available: true,
                    holds_management_vip: st.holds_management_vip,
                });
                observed.push(ServerObservation {
                    name: server.name.clone(),
                    alive: true,
                    version: Some(st.config_version),
                });
            }
            Err(error) => {
                tracing::debug!(peer = %server.name, %error, "peer did not answer the conflict check");
                candidates.push(ManagementCandidate {
                    name: server.name.clone(),
                    available: false,
                    holds_management_vip: false,
                });
                observed.push(ServerObservation {
                    name: server.name.clone(),
                    alive: false,
                    version: None,
                });
            }
        }
    }
    if management_server(&candidates) != Some(member.identity.as_str()) {
        return Ok(()); // only the management server resolves conflicts
    }
    let observation = Observation {
        servers: observed,
        now: super::unix_now(),
    };
    for (name, v) in observation.future_dated() {
        tracing::warn!(
            server = name,
            version = v.short(),
            changed_at = v.changed_at,
            now = observation.now,
            max_skew_s = ironfence_cluster::types::MAX_CLOCK_SKEW,
            "configuration version dated in the future (wrong clock or forged): it is never \
             chosen by the conflict resolution; fix that server's clock"
        );
    }
    let inputs: Vec<String> = observation
        .servers
        .iter()
        .map(|s| match &s.version {
            Some(v) => format!("{}={}@{}", s.name, v.short(), v.changed_at),
            None => format!("{}=dead", s.name),
        })
        .collect();
    match tracker.observe(&observation) {
        Action::Nothing => {}
        Action::NoDecision { reason } => {
            tracing::warn!(?inputs, %reason, "configuration conflict: no decision");
        }
        Action::Wait { reason } => {
            tracing::info!(?inputs, %reason, "configuration conflict seen; confirming at the next check");
        }
        Action::Push {
            version,
            pusher,
            targets,
            rule,
        } => {
            tracing::warn!(?inputs, ?rule, version = version.short(), %pusher, ?targets, "resolving configuration conflict");
            let report = if pusher == member.identity {
                push_to_peers(&config, Some(&targets)).await?
            } else {
                let server = cluster
                    .server(&pusher)
                    .ok_or_else(|| format!("pusher {pusher} is not in cluster.conf"))?;
                client_for(&config, server, trust)?
                    .ask_push()
                    .await
                    .map_err(|e| format!("asking {pusher} to push: {e}"))?
            };
            if !report.failed.is_empty() {
                tracing::warn!(failed = ?report.failed, "conflict resolution could not update every server");
            }
        }
    }
    Ok(())
}

//! What `ironfence cluster status` shows, gathered once for the CLI and the admin API
//! (`admin::cluster_status`): every member asked at once with a short timeout, this server's
//! own answer from the running daemon (API) or from its files (CLI without a daemon), and the
//! management server chosen by the same rule as the conflict check.

use super::{LocalClusterState, Member, client_with_timeout, cluster_trust};
use ironfence_cluster::{ManagementCandidate, ServerStatus, management_server};
use ironfence_config::Config;
use std::net::Ipv4Addr;
use std::time::Duration;

/// How long a status display waits for each server (all are asked at once).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// One member as this server sees it.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub name: String,
    pub management_ip: Option<Ipv4Addr>,
    /// Disabled on this server (`ironfence cluster node NAME disable`).
    pub disabled_here: bool,
    /// Its answer, or why it did not answer.
    pub status: Result<ServerStatus, String>,
}

/// Every member of cluster.conf, in its order.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub members: Vec<MemberRow>,
    /// The holder of the management VIP; when nobody reports it, the first enabled, reachable
    /// server not in maintenance, in cluster.conf order.
    pub management_server: Option<String>,
    /// This server's state file (maintenance, disabled peers).
    pub local: LocalClusterState,
}

/// Asks every member of `config`'s cluster for its status. `this_server`: this server's own
/// status when the caller is the daemon (no need to ask itself over HTTPS); `None` asks it like
/// the others and, when its daemon does not answer, reads its version from the files.
pub async fn gather(
    config: &Config,
    this_server: Option<ServerStatus>,
    timeout: Duration,
) -> Result<Gathered, String> {
    let Some(cluster) = config.cluster.as_ref() else {
        return Err("this server is not a member of a cluster (cluster.conf defines none)".into());
    };
    let local = LocalClusterState::load(&config.pf.general.state_dir).map_err(|e| e.to_string())?;
    let trust = cluster_trust(config)?;
    // Every server is asked at once: one unreachable peer must not make the operator wait,
    // let alone one wait per peer.
    let asked: Vec<_> = cluster
        .servers
        .iter()
        .map(|server| {
            let mine = server.name == config.identity;
            let known = if mine { this_server.clone() } else { None };
            let client = client_with_timeout(config, server, trust.clone(), timeout);
            tokio::spawn(async move {
                if let Some(st) = known {
                    return Ok(st);
                }
                match client {
                    Ok(c) => c.status().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                }
            })
        })
        .collect();
    let mut members = Vec::new();
    for (server, answer) in cluster.servers.iter().zip(asked) {
        let via_api = answer
            .await
            .unwrap_or_else(|e| Err(format!("status request failed: {e}")));
        let status = if server.name == config.identity && via_api.is_err() {
            let config = std::sync::Arc::new(config.clone());
            Member::version_blocking(config.clone())
                .await
                .map(|(v, _, _)| ServerStatus {
                    hostname: config.identity.clone(),
                    software_version: env!("CARGO_PKG_VERSION").to_string(),
                    config_version: v,
                    maintenance: local.maintenance,
                    disabled_peers: local.disabled_peers.iter().cloned().collect(),
                    db_state: String::new(),
                    read_only: false,
                    vips_held: Vec::new(),
                    holds_management_vip: false,
                    ready: None,
                    unready_reasons: Vec::new(),
                    front_door_errors: vec!["the daemon does not answer: it holds no VIP".into()],
                })
        } else {
            via_api
        };
        members.push(MemberRow {
            name: server.name.clone(),
            management_ip: server.management_ip,
            disabled_here: local.is_disabled(&server.name),
            status,
        });
    }
    let candidates: Vec<ManagementCandidate> = members
        .iter()
        .map(|m| ManagementCandidate {
            name: m.name.clone(),
            available: !m.disabled_here && m.status.as_ref().is_ok_and(|s| !s.maintenance),
            holds_management_vip: m.status.as_ref().is_ok_and(|s| s.holds_management_vip),
        })
        .collect();
    let management_server = management_server(&candidates).map(str::to_string);
    Ok(Gathered {
        members,
        management_server,
        local,
    })
}

//! This server's database state as its peers see it ([`DbState`], `GET /api/v1/cluster/db`),
//! and the peers' states as the start decision needs them ([`PeerDbState`]).

use std::collections::BTreeSet;
use std::time::Duration;

use ironfence_cluster::types::DbState;
use ironfence_config::{ClusterServer, Config};
use ironfence_galera::{GaleraLayout, GraState, PeerDbState, WsrepStatus};
use ironfence_webservices::{Client, Trust};

use super::{files, process, query};
use crate::cluster::{LocalClusterState, cluster_trust, credentials};

/// Bound of one peer's answer during the start decision (retried every 2 s anyway).
pub const PEER_DB_TIMEOUT: Duration = Duration::from_secs(3);

/// The state from what was read: the live status when mariadbd answered; otherwise
/// grastate.dat and, after an unclean stop, the recovered position when it belongs to the
/// same cluster state (uuid).
pub fn db_state_from(
    status: Option<&WsrepStatus>,
    grastate: Option<&GraState>,
    recovered: Option<&(String, i64)>,
    maintenance: bool,
) -> DbState {
    let safe_to_bootstrap = grastate.is_some_and(|g| g.safe_to_bootstrap);
    // The history the position counts in (the election compares it, `db status --all` too).
    let history = |u: &str| {
        let u = u.trim().to_ascii_lowercase();
        (!u.is_empty() && u != ironfence_galera::grastate::ZERO_UUID).then_some(u)
    };
    let saved_uuid = grastate.and_then(|g| history(&g.uuid));
    match status {
        Some(s) => DbState {
            running: true,
            primary: s.cluster_status.eq_ignore_ascii_case("Primary"),
            synced: s.local_state_comment.eq_ignore_ascii_case("Synced"),
            ready: s.ready,
            cluster_size: s.cluster_size,
            last_committed: s.last_committed.filter(|n| *n >= 0),
            safe_to_bootstrap,
            maintenance,
            local_state: s.local_state_comment.clone(),
            cluster_status: s.cluster_status.clone(),
            incoming_addresses: s.incoming_addresses.clone(),
            state_uuid: s
                .cluster_state_uuid
                .as_deref()
                .and_then(history)
                .or(saved_uuid),
        },
        None => {
            let last_committed = grastate.and_then(|g| {
                if g.has_zero_uuid() {
                    None
                } else if g.seqno >= 0 {
                    Some(g.seqno)
                } else {
                    recovered
                        .filter(|(uuid, seqno)| uuid.eq_ignore_ascii_case(&g.uuid) && *seqno >= 0)
                        .map(|(_, seqno)| *seqno)
                }
            });
            DbState {
                running: false,
                last_committed,
                safe_to_bootstrap,
                maintenance,
                state_uuid: saved_uuid,
                ..DbState::default()
            }
        }
    }
}

/// A peer's answer as the start decision takes it: a peer in maintenance takes no part in the
/// database, so it counts as not answered; only a running *Primary* database can be joined.
pub fn peer_from(name: &str, index: usize, answer: Option<&DbState>) -> PeerDbState {
    match answer {
        Some(s) if !s.maintenance => PeerDbState {
            name: name.to_string(),
            answered: true,
            primary: s.running && s.primary,
            last_committed: s.last_committed,
            index,
            cluster_size: s.cluster_size,
            state_uuid: s.state_uuid.clone(),
        },
        _ => PeerDbState {
            name: name.to_string(),
            answered: false,
            primary: false,
            last_committed: None,
            index,
            cluster_size: None,
            state_uuid: None,
        },
    }
}

/// This server's database state, read from its mariadbd (socket) and its datadir.
pub async fn local_db_state(config: &Config) -> Result<DbState, String> {
    let layout = GaleraLayout::from_config(config);
    let local = LocalClusterState::load(&config.pf.general.state_dir).map_err(|e| e.to_string())?;
    let client = process::Programs::find_client()?;
    let status = query::wsrep_status(&client, &layout.socket).await.ok();
    let grastate = files::read_grastate(&layout)?;
    let recovered = files::read_recovered(&layout);
    Ok(db_state_from(
        status.as_ref(),
        grastate.as_ref(),
        recovered.as_ref(),
        local.maintenance,
    ))
}

/// One peer's answer (`Err`: why it did not answer).
#[derive(Debug, Clone)]
pub struct PeerAnswer {
    pub name: String,
    pub index: usize,
    pub answer: Result<DbState, String>,
}

/// Asks every peer this server has not disabled for its database state, concurrently, each
/// within `timeout`. Peers are in cluster.conf order.
pub async fn ask_peers(config: &Config, timeout: Duration) -> Result<Vec<PeerAnswer>, String> {
    let local = LocalClusterState::load(&config.pf.general.state_dir).map_err(|e| e.to_string())?;
    let peers: Vec<&ClusterServer> = config
        .peers()
        .filter(|p| !local.is_disabled(&p.name))
        .collect();
    if peers.is_empty() {
        return Ok(Vec::new());
    }
    let trust = cluster_trust(config);
    let mut tasks = Vec::new();
    for peer in peers {
        let client = match &trust {
            Ok(t) => client(config, peer, t.clone(), timeout),
            Err(e) => Err(e.clone()),
        };
        let (name, index) = (peer.name.clone(), peer.index);
        tasks.push(tokio::spawn(async move {
            let answer = match client {
                Ok(c) => c.db_state().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            PeerAnswer {
                name,
                index,
                answer,
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.map_err(|e| format!("asking a peer failed: {e}"))?);
    }
    Ok(out)
}

fn client(
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
    .map(|c| crate::cluster::from_management_ip(c, config))
    .map_err(|e| e.to_string())
}

/// The peers that reported maintenance (left out of `wsrep_cluster_address`).
pub fn in_maintenance(answers: &[PeerAnswer]) -> BTreeSet<String> {
    answers
        .iter()
        .filter(|a| a.answer.as_ref().is_ok_and(|s| s.maintenance))
        .map(|a| a.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b";

    fn gra(seqno: i64, safe: bool) -> GraState {
        GraState {
            uuid: UUID.into(),
            seqno,
            safe_to_bootstrap: safe,
        }
    }

    #[test]
    fn running_node_reports_its_live_status() {
        let status = WsrepStatus::from_status_rows(&[
            ("wsrep_cluster_status".into(), "Primary".into()),
            ("wsrep_local_state_comment".into(), "Synced".into()),
            ("wsrep_ready".into(), "ON".into()),
            ("wsrep_cluster_size".into(), "3".into()),
            ("wsrep_last_committed".into(), "74".into()),
            (
                "wsrep_incoming_addresses".into(),
                "10.0.0.1:3306,10.0.0.2:3306".into(),
            ),
        ]);
        let s = db_state_from(Some(&status), Some(&gra(-1, false)), None, false);
        assert!(s.running && s.primary && s.synced && s.ready);
        assert_eq!(s.cluster_size, Some(3));
        assert_eq!(s.last_committed, Some(74));
        assert_eq!(s.incoming_addresses.len(), 2);
        assert!(!s.safe_to_bootstrap);
        // No live uuid reported: grastate.dat's.
        assert_eq!(s.state_uuid.as_deref(), Some(UUID));
        let live = WsrepStatus::from_status_rows(&[
            ("wsrep_cluster_status".into(), "Primary".into()),
            (
                "wsrep_cluster_state_uuid".into(),
                "AAAAAAAA-E95E-11F1-8BB1-32AC4A781A5B".into(),
            ),
        ]);
        let s = db_state_from(Some(&live), Some(&gra(-1, false)), None, false);
        assert_eq!(
            s.state_uuid.as_deref(),
            Some("aaaaaaaa-e95e-11f1-8bb1-32ac4a781a5b"),
            "the live uuid wins, lower case"
        );
        // Non-primary (partitioned) node.
        let np = WsrepStatus::from_status_rows(&[
            ("wsrep_cluster_status".into(), "non-Primary".into()),
            ("wsrep_local_state_comment".into(), "Initialized".into()),
            ("wsrep_ready".into(), "OFF".into()),
        ]);
        let s = db_state_from(Some(&np), None, None, false);
        assert!(s.running && !s.primary && !s.synced && !s.ready);
    }

    #[test]
    fn stopped_node_reports_its_saved_position() {
        let clean = db_state_from(None, Some(&gra(73, true)), None, false);
        assert!(!clean.running && clean.safe_to_bootstrap);
        assert_eq!(clean.last_committed, Some(73));
        assert_eq!(clean.state_uuid.as_deref(), Some(UUID));
        let zero = GraState {
            uuid: ironfence_galera::grastate::ZERO_UUID.into(),
            ..gra(5, false)
        };
        assert_eq!(
            db_state_from(None, Some(&zero), None, false).state_uuid,
            None
        );
        // Unclean stop: only a recovered position of the same cluster state counts.
        let crashed = gra(-1, false);
        assert_eq!(
            db_state_from(None, Some(&crashed), None, false).last_committed,
            None
        );
        let rec = (UUID.to_string(), 71);
        assert_eq!(
            db_state_from(None, Some(&crashed), Some(&rec), false).last_committed,
            Some(71)
        );
        let other = ("00000000-0000-0000-0000-000000000001".to_string(), 99);
        assert_eq!(
            db_state_from(None, Some(&crashed), Some(&other), false).last_committed,
            None
        );
        // Empty datadir.
        let empty = db_state_from(None, None, None, true);
        assert_eq!(empty.last_committed, None);
        assert!(empty.maintenance);
    }

    #[test]
    fn peer_mapping() {
        let up = DbState {
            running: true,
            primary: true,
            last_committed: Some(5),
            ..DbState::default()
        };
        let up = DbState {
            cluster_size: Some(2),
            state_uuid: Some(UUID.into()),
            ..up
        };
        let p = peer_from("pf2", 1, Some(&up));
        assert!(p.answered && p.primary);
        assert_eq!(p.last_committed, Some(5));
        assert_eq!(p.cluster_size, Some(2));
        assert_eq!(p.state_uuid.as_deref(), Some(UUID));
        let maint = DbState {
            maintenance: true,
            ..up.clone()
        };
        assert!(!peer_from("pf2", 1, Some(&maint)).answered);
        assert!(!peer_from("pf2", 1, None).answered);
        // A stale "primary" flag of a stopped node never makes it joinable.
        let stopped = DbState {
            running: false,
            primary: true,
            ..DbState::default()
        };
        assert!(!peer_from("pf2", 1, Some(&stopped)).primary);
    }
}

//! Runs the node-to-node API for as long as the daemon runs, and restarts it when a reload
//! changes what it serves with (the cluster CA after a join, the management IP, credentials).
//! The list of addresses it admits (cluster.conf's members) follows every reload without a
//! restart: a server added to cluster.conf can join at once, a removed one is refused.

use super::{ClusterService, credentials};
use crate::Shared;
use ironfence_webservices::{ClusterCa, ServerCert, ensure_server_cert};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::{oneshot, watch};

/// Creates the cluster CA on the first server that runs without one. Every other server gets
/// it with the configuration (`cluster sync --from`), after checking its fingerprint.
pub fn ensure_cluster_ca(config: &ironfence_config::Config) -> Result<ClusterCa, String> {
    if let Some(ca) = ClusterCa::load(&config.conf_dir).map_err(|e| e.to_string())? {
        return Ok(ca);
    }
    let ca = ClusterCa::generate("ironfence cluster CA").map_err(|e| e.to_string())?;
    ca.save(&config.conf_dir).map_err(|e| e.to_string())?;
    let ip = config
        .this_server()
        .and_then(|s| s.management_ip)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "<this server's management IP>".into());
    tracing::warn!(
        fingerprint = %ca.fingerprint(),
        "created the cluster CA in {}/ssl; join the other servers (listed in cluster.conf) with \
         `ironfence cluster sync --from={ip} --api-user=… --ca-fingerprint={}` (it asks for \
         the webservices password)",
        config.conf_dir.display(),
        ca.fingerprint()
    );
    Ok(ca)
}

fn prepare(
    shared: &Shared,
) -> Result<(SocketAddr, ServerCert, ironfence_webservices::Credentials), String> {
    let config = shared.config();
    let addr = config
        .webservices_listen()
        .ok_or("this server has no management_ip in cluster.conf")?;
    let ca = ensure_cluster_ca(&config)?;
    let cert = ensure_server_cert(
        &ca,
        &config.pf.general.state_dir,
        addr.ip(),
        &config.identity,
        SystemTime::now(),
    )
    .map_err(|e| e.to_string())?;
    Ok((addr, cert, credentials(&config)))
}

/// The addresses the API admits: every member's addresses and the virtual IPs in cluster.conf
/// (this server's own address is always admitted by the API itself).
pub fn allowed_addresses(config: &ironfence_config::Config) -> Vec<IpAddr> {
    config
        .cluster
        .as_ref()
        .map(|c| c.member_addresses().into_iter().map(IpAddr::V4).collect())
        .unwrap_or_default()
}

/// The supervisor task. `reloads` ticks after every configuration reload.
pub async fn supervise(
    shared: Arc<Shared>,
    mut reloads: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = Arc::new(ClusterService {
        shared: shared.clone(),
    });
    let mut current: Option<(SocketAddr, Vec<u8>, String, String)> = None;
    let mut running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)> = None;
    let allowed = shared.api_access.clone();
    loop {
        let members = allowed_addresses(&shared.config());
        if allowed.addresses() != members {
            tracing::info!(?members, "node-to-node API admits these member addresses");
            allowed.set(members);
        }
        match prepare(&shared) {
            Ok((addr, cert, creds)) => {
                let fingerprint = (
                    addr,
                    cert.chain[0].to_vec(),
                    creds.user.clone(),
                    creds.pass.clone(),
                );
                if current.as_ref() != Some(&fingerprint) {
                    if let Some((stop, task)) = running.take() {
                        let _ = stop.send(());
                        let _ = task.await;
                    }
                    let (stop_tx, stop_rx) = oneshot::channel::<()>();
                    match ironfence_webservices::serve(
                        addr,
                        cert,
                        creds,
                        allowed.clone(),
                        service.clone(),
                        async move {
                            let _ = stop_rx.await;
                        },
                    )
                    .await
                    {
                        Ok((bound, task)) => {
                            tracing::info!(listen = %bound, "node-to-node API (webservices) ready");
                            running = Some((stop_tx, task));
                            current = Some(fingerprint);
                        }
                        Err(e) => {
                            tracing::error!(%addr, error = %e, "cannot start the node-to-node API");
                            current = None;
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "node-to-node API not started"),
        }
        tokio::select! {
            r = reloads.changed() => if r.is_err() { break },
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    if let Some((stop, task)) = running.take() {
        let _ = stop.send(());
        let _ = task.await;
    }
}

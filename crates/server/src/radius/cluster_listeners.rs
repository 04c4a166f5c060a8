//! The cluster's RADIUS listeners, beside this server's own address: the load balancer's
//! backend ports (members forward to them) and the VIP listeners (the balancer), with the
//! proxy they share. See docs/radius-load-balancer.md.

use super::balancer::{self, LocalFacts, Proxy};
use super::handler::Handler;
use super::{Kind, Listener, accounting, mab};
use crate::Shared;
use crate::settings::RadiusSettings;
use ironfence_config::{Config, InterfaceType};
use ironfence_radius::Service;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn local_handler(service: Service) -> Box<dyn Handler> {
    match service {
        Service::Auth => Box::new(mab::Mab),
        Service::Acct => Box::new(accounting::Accounting),
    }
}

/// The cluster's listeners and the proxy their balancers share.
pub(super) type ClusterListeners = (Vec<Arc<Listener>>, Arc<Proxy>);

/// The backend ports and the VIP listeners, or `None` on a single server. A port that cannot
/// be bound is an error in the log; the daemon keeps serving on its own address.
pub(super) fn bind(cfg: &Config, r: &RadiusSettings) -> anyhow::Result<Option<ClusterListeners>> {
    let local = Arc::new(LocalFacts::default());
    local.refresh(&cfg.pf.general.state_dir);
    let Some(proxy) = Proxy::bind(cfg, local.clone())? else {
        return Ok(None);
    };
    let proxy = Arc::new(proxy);
    let hop_secret: Arc<[u8]> = proxy.hop_secret().into();
    let mut listeners = Vec::new();
    let backend_ports = [
        (cfg.pf.radius.backend_auth_port, Service::Auth),
        (cfg.pf.radius.backend_acct_port, Service::Acct),
    ];
    for (port, service) in backend_ports {
        let kind = Kind::Backend {
            hop_secret: hop_secret.clone(),
            local: local.clone(),
        };
        match Listener::bind(
            r,
            r.listen,
            port,
            service,
            local_handler(service),
            kind,
            false,
        ) {
            Ok(l) => listeners.push(l),
            Err(e) => tracing::error!(
                error = %e,
                "load balancer backend port not bound: other members cannot forward to this server"
            ),
        }
    }
    for vip in radius_vips(cfg) {
        for (port, service) in [(r.auth_port, Service::Auth), (r.acct_port, Service::Acct)] {
            let handler = Box::new(balancer::Balancer {
                proxy: proxy.clone(),
                local: local_handler(service),
            });
            match Listener::bind(r, vip, port, service, handler, Kind::Switches, true) {
                Ok(l) => listeners.push(l),
                Err(e) => tracing::error!(error = %e, %vip, "RADIUS VIP not bound"),
            }
        }
    }
    Ok(Some((listeners, proxy)))
}

/// The proxy's receive and probe tasks, and the refresh of this server's own facts.
pub(super) fn spawn(
    proxy: &Arc<Proxy>,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
    cfg: &Config,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = proxy.spawn(shared.clone(), shutdown.clone());
    tasks.push(tokio::spawn(refresh_local_facts(
        proxy.local.clone(),
        cfg.pf.general.state_dir.clone(),
        shutdown.clone(),
    )));
    tasks
}

/// The addresses the load balancer listens on: `[CLUSTER] management_ip` and every
/// `[CLUSTER interface X] ip` whose type includes `radius` or `management`.
fn radius_vips(cfg: &Config) -> Vec<Ipv4Addr> {
    let Some(c) = &cfg.cluster else {
        return Vec::new();
    };
    let mut vips: Vec<Ipv4Addr> = c.management_ip.into_iter().collect();
    for i in &c.virtual_interfaces {
        if let Some(ip) = i.ip
            && (i.types.contains(&InterfaceType::Radius)
                || i.types.contains(&InterfaceType::Management))
            && !vips.contains(&ip)
        {
            vips.push(ip);
        }
    }
    let own = cfg.this_server().and_then(|s| s.management_ip);
    vips.retain(|v| Some(*v) != own);
    vips
}

/// Re-reads maintenance / disabled peers every second (changed by `ironfence cluster
/// maintenance` / `cluster node … disable` while the daemon runs).
async fn refresh_local_facts(
    local: Arc<LocalFacts>,
    state_dir: std::path::PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let (l, d) = (local.clone(), state_dir.clone());
        let _ = tokio::task::spawn_blocking(move || l.refresh(&d)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port(ip: Ipv4Addr) -> u16 {
        std::net::UdpSocket::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn a_vip_that_cannot_be_bound_leaves_the_other_listeners_serving() {
        let me = Ipv4Addr::new(127, 0, 63, 1);
        let vip = Ipv4Addr::new(127, 0, 63, 100);
        let (auth, acct) = (free_port(vip), free_port(vip));
        let (b_auth, b_acct) = (free_port(me), free_port(me));
        // Something else holds VIP:auth (without SO_REUSEADDR, so our bind must fail).
        let _squatter = std::net::UdpSocket::bind((vip, auth)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(
            conf.join("cluster.conf"),
            format!("[CLUSTER]\nmanagement_ip = {vip}\n[pf1]\nmanagement_ip = {me}\n[pf2]\nmanagement_ip = 127.0.63.2\n"),
        )
        .unwrap();
        std::fs::write(
            conf.join("pf.conf"),
            format!(
                "[general]\nstate_dir = state\n[database]\ntype = mysql\nhost = 127.0.0.1\npass = Xk3nP9vQ2mLr7TzW4yBs8D\n\
                 [radius]\nauth_port = {auth}\nacct_port = {acct}\nbackend_auth_port = {b_auth}\nbackend_acct_port = {b_acct}\n\
                 [webservices]\nuser = u\npass = Zq8vRr2NwX4kTb7mYp3sLd9c\n\
                 [active_active]\ngalera_replication_username = sst\ngalera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC\npassword = Vr9Lq2Xz\n"
            ),
        )
        .unwrap();
        std::fs::write(
            conf.join("switches.conf"),
            "[10.0.0.1]\nradiusSecret = Zq8vRr2NwX4kTb7mYp3sLd9c-switch\n",
        )
        .unwrap();
        let cfg = Config::load_as(&conf, Some("pf1")).unwrap_or_else(|d| panic!("{d}"));
        let r = crate::settings::radius(&cfg);
        let (listeners, _proxy) = bind(&cfg, &r).unwrap().expect("a cluster member");
        let mut bound: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        bound.sort();
        let mut want = vec![
            format!("{me}:{b_auth}"),
            format!("{me}:{b_acct}"),
            format!("{vip}:{acct}"),
        ];
        want.sort();
        assert_eq!(bound, want);
    }
}

//! The readiness input "RADIUS answers" of the VIP gating: a Status-Server (RFC 5997) sent by
//! this server to its own load-balancer backend port every 250 ms, signed with the hop secret
//! as the other members' probes are, and verified. It proves what a VIP holder needs: a
//! receive loop that reads, an endpoint that verifies and answers, and a socket that sends —
//! not only that a task exists.

use ironfence_config::Config;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;

const INTERVAL: Duration = Duration::from_millis(250);
/// An answer from this very server is immediate; a loop that does not answer within this is
/// stuck or overloaded.
const TIMEOUT: Duration = Duration::from_millis(300);

/// Where the probe goes and with which secret; `None` off a cluster (no backend port).
pub(crate) fn target(cfg: &Config) -> Option<(SocketAddr, Vec<u8>)> {
    let me = cfg.this_server()?.management_ip?;
    let secret = cfg.radius_hop_secret()?;
    Some((
        SocketAddr::new(IpAddr::V4(me), cfg.pf.radius.backend_auth_port),
        secret.into_bytes(),
    ))
}

/// Probes until shutdown, keeping `answered` up to date (false until the first answer).
pub(crate) async fn run(
    to: SocketAddr,
    secret: Vec<u8>,
    answered: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    // From the management address: the backend port admits members' addresses only.
    let socket = match UdpSocket::bind(SocketAddr::new(to.ip(), 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "RADIUS self-probe socket not bound: this server stays unready for the VIPs");
            return;
        }
    };
    let mut identifier = 0u8;
    let mut was = None;
    loop {
        identifier = identifier.wrapping_add(1);
        let ok = probe_once(&socket, to, &secret, identifier).await;
        answered.store(ok, Ordering::Relaxed);
        if was != Some(ok) {
            if ok {
                tracing::info!(%to, "RADIUS self-probe answered");
            } else {
                tracing::warn!(%to, "RADIUS self-probe not answered: this server lowers its VIP priority");
            }
            was = Some(ok);
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    answered.store(false, Ordering::Relaxed);
}

async fn probe_once(socket: &UdpSocket, to: SocketAddr, secret: &[u8], identifier: u8) -> bool {
    let mut authenticator = [0u8; 16];
    if getrandom::fill(&mut authenticator).is_err() {
        return false;
    }
    let request = ironfence_radius::hop::status_server(identifier, authenticator, secret);
    if socket.send_to(&request, to).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let Ok(Ok((n, from))) = got else {
            return false;
        };
        // Late answers to earlier probes (other identifiers) are skipped.
        if from == to
            && ironfence_radius::hop::verify_backend_reply(
                &buf[..n],
                identifier,
                &authenticator,
                secret,
            )
            .is_ok()
        {
            return true;
        }
    }
}

//! Who a request is from, behind haproxy: the direct peer, or — only when the peer is a
//! cluster member or loopback (haproxy runs on every member) and the listener is the
//! cluster's web listener — the last `X-Forwarded-For` hop haproxy appended.

use crate::Shared;
use axum::http::HeaderMap;
use std::net::IpAddr;

/// The client address of a request that reached `peer` with `headers`.
pub fn client_ip(
    shared: &Shared,
    peer_ip: IpAddr,
    headers: &HeaderMap,
    trust_forwarded: bool,
) -> IpAddr {
    let direct = peer_ip.to_canonical();
    if !trust_forwarded || !is_trusted_proxy(shared, direct) {
        return direct;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .unwrap_or(direct)
}

/// Loopback or a member's management address.
pub fn is_trusted_proxy(shared: &Shared, ip: IpAddr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    let cfg = shared.config();
    cfg.cluster.as_ref().is_some_and(|c| {
        c.servers
            .iter()
            .any(|s| s.management_ip.map(IpAddr::V4) == Some(ip))
    })
}

//! The registration/isolation networks' DHCP server: the IO around `ironfence-dhcp`.
//!
//! ```text
//!  eth1.2 ──UDP 0.0.0.0:67 (SO_BINDTODEVICE, SO_BROADCAST)──► decode (bad: dropped, counted)
//!                 │ one task per datagram (bounded)
//!                 ▼
//!   store.dhcp_lease_by_mac ──► Engine::plan(now, msg, lease, writable)
//!                 │ Offer/Ack: claim one candidate row per transaction (next candidate on
//!                 │            Taken; re-read the client's lease on Conflict) — allocate()
//!                 ▼
//!   reply ──► 255.255.255.255:68 · ciaddr:68 · giaddr:67   (engine::destination)
//! ```
//!
//! One listener per served network whose networks.conf section has `dhcpd = enabled`. Every
//! cluster member runs the same listeners and answers as the network's service address (the
//! VIP): the shared database decides which address a client gets, so members that both answer
//! a broadcast answer the same thing. **Read-only** (the database is out of the quorum):
//! devices with a lease keep being answered from what the database holds (no write), new
//! allocations are refused with one log line per device per minute (docs/dhcp.md explains why
//! this differs from the clustering guide, which stops DHCP).
//!
//! Changes to networks.conf take effect at the next restart of `serve`.

use crate::Shared;
use ironfence_config::ServedNetwork;
use ironfence_core::{Mac, UnixTime};
use ironfence_dhcp::engine::{Destination, destination};
use ironfence_dhcp::{Candidates, Engine, Lease, LeaseState, Message, NetworkSettings, Plan};
use ironfence_store::{Claim, ClaimOutcome, DhcpLease, DhcpLeaseState, StoreError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

/// Port the listeners bind (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// Offers hold their address this long (the client's REQUEST normally follows in < 1 s).
pub const OFFER_HOLD: u32 = 30;
/// A declined address stays out of the pool this long (PacketFence's pfdhcp: 10 min).
pub const DECLINE_HOLD: u32 = 600;
/// Candidates tried per allocation before giving up (each one transaction).
pub const MAX_ATTEMPTS: usize = 64;
/// Datagrams being handled at once per listener (beyond that, new ones wait in the socket).
const MAX_IN_FLIGHT: usize = 256;
/// One "refused" log line per device per this long.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

type Labels1 = [(&'static str, &'static str); 1];

/// The DHCP server's metrics (`ironfence_dhcp_*`).
#[derive(Debug, Default)]
pub struct DhcpMetrics {
    /// Messages received and decoded, by DHCP message type.
    pub received: Family<Labels1, Counter>,
    /// Datagrams not answered, by reason (decode errors, engine's ignore reasons,
    /// pool_exhausted, store_error).
    pub dropped: Family<Labels1, Counter>,
    /// Replies sent, by type (offer, ack, nak).
    pub replies: Family<Labels1, Counter>,
    /// Extra candidates tried during allocations, by why the previous one failed (taken,
    /// conflict).
    pub allocation_retries: Family<Labels1, Counter>,
    /// New allocations refused because the database is read-only.
    pub refused_read_only: Counter,
    /// Answers given from an existing lease while the database is read-only.
    pub read_only_answers: Counter,
}

impl DhcpMetrics {
    /// Registers the metrics in `registry` (called by `Metrics::new`).
    pub fn register(registry: &mut Registry) -> DhcpMetrics {
        let m = DhcpMetrics::default();
        registry.register(
            "dhcp_received",
            "DHCP messages received, by type",
            m.received.clone(),
        );
        registry.register(
            "dhcp_dropped",
            "DHCP datagrams not answered, by reason (malformed ones by decode error)",
            m.dropped.clone(),
        );
        registry.register(
            "dhcp_replies",
            "DHCP replies sent, by type",
            m.replies.clone(),
        );
        registry.register(
            "dhcp_allocation_retries",
            "DHCP allocation candidates retried, by reason (taken, conflict)",
            m.allocation_retries.clone(),
        );
        registry.register(
            "dhcp_refused_read_only",
            "New DHCP allocations refused while the database is read-only",
            m.refused_read_only.clone(),
        );
        registry.register(
            "dhcp_read_only_answers",
            "DHCP answers given from an existing lease while the database is read-only",
            m.read_only_answers.clone(),
        );
        m
    }

    fn drop_reason(&self, reason: &'static str) {
        self.dropped.get_or_create(&[("reason", reason)]).inc();
    }
}

/// The engine settings of one served network.
pub fn settings(net: &ServedNetwork, conf_dir: &std::path::Path) -> NetworkSettings {
    let (pool_first, pool_last) = net.conf.pool();
    NetworkSettings {
        network: net.conf.name.clone(),
        network_addr: net.conf.network,
        netmask: net.conf.netmask,
        pool_first,
        pool_last,
        reserved: net.reserved.clone(),
        server_id: net.interface.service_ip(),
        routers: vec![net.gateway],
        dns_servers: net.dns.clone(),
        domain_name: net.conf.domain_name.clone(),
        default_lease: net.conf.default_lease,
        max_lease: net.conf.max_lease,
        offer_hold: OFFER_HOLD,
        decline_hold: DECLINE_HOLD,
        // Long enough for a server out of the quorum to keep its known devices through a
        // short partition, short enough not to exhaust a registration pool.
        reuse_grace: net.conf.max_lease.saturating_mul(10).max(300),
        captive_portal: Some(net.captive_portal_api(conf_dir)),
    }
}

fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn to_engine(l: &DhcpLease) -> Lease {
    Lease {
        ip: l.ip,
        mac: l.mac,
        state: match l.state {
            DhcpLeaseState::Offered => LeaseState::Offered,
            DhcpLeaseState::Bound => LeaseState::Bound,
            DhcpLeaseState::Released => LeaseState::Released,
            DhcpLeaseState::Declined => LeaseState::Declined,
        },
        expires_at: l.expires_at,
    }
}

/// Binds the listener of one interface: 0.0.0.0:`port` restricted to the device (several
/// interfaces, several listeners on one port), broadcasts allowed.
pub fn bind(interface: &str, port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.bind_device(Some(interface.as_bytes()))?;
    sock.set_broadcast(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(sock.into())
}

/// One listener's state.
#[derive(Debug)]
pub struct Listener {
    pub engine: Engine,
    pub interface: String,
    sock: UdpSocket,
    refusals: Mutex<HashMap<Mac, Instant>>,
}

/// Starts a listener on every served network with `dhcpd = enabled`. A listener that cannot
/// bind is logged and skipped: RADIUS keeps running.
pub fn spawn(
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = shared.config();
    let mut tasks = Vec::new();
    for net in cfg.served_networks().into_iter().filter(|n| n.conf.dhcpd) {
        let engine = Engine::new(settings(&net, &cfg.conf_dir));
        match bind(&net.interface.name, SERVER_PORT) {
            Ok(sock) => {
                tracing::info!(
                    interface = %net.interface.name,
                    network = %net.conf.name,
                    server_id = %engine.net.server_id,
                    pool = %format!("{}-{}", engine.net.pool_first, engine.net.pool_last),
                    "DHCP listening"
                );
                let l = Arc::new(Listener {
                    engine,
                    interface: net.interface.name.clone(),
                    sock,
                    refusals: Mutex::new(HashMap::new()),
                });
                tasks.push(tokio::spawn(run(shared.clone(), l, shutdown.clone())));
            }
            Err(e) => tracing::error!(
                interface = %net.interface.name, error = %e,
                "cannot listen for DHCP on this interface: devices on {} get no address from this server",
                net.conf.name
            ),
        }
    }
    tasks
}

async fn run(shared: Arc<Shared>, l: Arc<Listener>, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; 2048];
    loop {
        let received = tokio::select! {
            _ = shutdown.changed() => return,
            r = l.sock.recv_from(&mut buf) => r,
        };
        let (n, _src) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(interface = %l.interface, error = %e, "DHCP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let msg = match Message::decode(&buf[..n]) {
            Ok(m) => m,
            Err(e) => {
                shared.metrics.dhcp.drop_reason(e.reason());
                tracing::debug!(interface = %l.interface, error = %e, "malformed DHCP datagram dropped");
                continue;
            }
        };
        if let Some(t) = msg.message_type() {
            shared
                .metrics
                .dhcp
                .received
                .get_or_create(&[("type", t.name())])
                .inc();
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (shared, l) = (shared.clone(), l.clone());
        tokio::spawn(async move {
            handle(&shared, &l, &msg).await;
            drop(permit);
        });
    }
}

/// Handles one decoded message: read, plan, write, answer.
pub async fn handle(shared: &Shared, l: &Listener, msg: &Message) {
    let m = &shared.metrics.dhcp;
    let net = &l.engine.net;
    let now = unix_now();
    let mac = msg.mac();
    let current = match shared
        .store
        .dhcp_lease_by_mac(&net.network, mac, false)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            m.drop_reason("store_error");
            tracing::warn!(%mac, error = %e, "DHCP: cannot read the lease; no answer (the client retries)");
            return;
        }
    };
    let writable = !shared.db.is_read_only();
    let plan = l
        .engine
        .plan(now, msg, current.as_ref().map(to_engine).as_ref(), writable);
    let reply = match plan {
        Plan::Ignore(why) => {
            m.drop_reason(why.reason());
            return;
        }
        Plan::Reply(r) => {
            tracing::debug!(%mac, xid = msg.xid, current = ?current, reply = ?r.message_type(), ip = %r.yiaddr, "DHCP reply");
            if !writable {
                m.read_only_answers.inc();
            }
            *r
        }
        Plan::Refused => {
            refused(shared, l, mac);
            return;
        }
        Plan::Offer {
            prefer,
            hold_until,
            lease,
        } => {
            let hostname = hostname(msg);
            let candidates = prefer.into_iter().chain(
                Candidates::new(&net.network, mac, net.pool_first, net.pool_last)
                    .filter(|ip| net.in_pool(*ip) && Some(*ip) != prefer),
            );
            let claim = |ip| Claim {
                network: &net.network,
                ip,
                mac,
                state: DhcpLeaseState::Offered,
                expires_at: hold_until,
                now,
                bound_grace: net.grace_for(LeaseState::Bound),
                hostname: hostname.as_deref(),
            };
            match allocate(shared, &net.network, mac, candidates, claim).await {
                Ok(Some(ip)) => {
                    tracing::debug!(%mac, %ip, xid = msg.xid, "DHCP offer");
                    l.engine.offer(msg, ip, lease)
                }
                Ok(None) => {
                    m.drop_reason("pool_exhausted");
                    tracing::warn!(%mac, network = %net.network, "DHCP: no free address found for the device (pool exhausted?)");
                    return;
                }
                Err(e) => return write_failed(shared, l, mac, &e),
            }
        }
        Plan::Ack {
            ip,
            expires_at,
            lease,
        } => {
            let hostname = hostname(msg);
            let c = Claim {
                network: &net.network,
                ip,
                mac,
                state: DhcpLeaseState::Bound,
                expires_at,
                now,
                bound_grace: net.grace_for(LeaseState::Bound),
                hostname: hostname.as_deref(),
            };
            match shared.store.dhcp_claim(&c).await {
                Ok(ClaimOutcome::Claimed(_)) => {
                    tracing::debug!(%mac, %ip, xid = msg.xid, "DHCP ack");
                    l.engine.ack(msg, ip, lease)
                }
                Ok(ClaimOutcome::Taken) => {
                    tracing::debug!(%mac, %ip, xid = msg.xid, "DHCP nak taken");
                    l.engine.nak(msg, "address in use by another device")
                }
                Ok(ClaimOutcome::Conflict) => {
                    // Another member answered the same REQUEST first: the same answer if the
                    // row it wrote is this client's.
                    m.allocation_retries
                        .get_or_create(&[("reason", "conflict")])
                        .inc();
                    match shared
                        .store
                        .dhcp_lease_by_mac(&net.network, mac, true)
                        .await
                    {
                        Ok(Some(row)) if row.ip == ip && row.state == DhcpLeaseState::Bound => {
                            tracing::debug!(%mac, %ip, xid = msg.xid, "DHCP ack after conflict");
                            l.engine.ack(msg, ip, lease)
                        }
                        Ok(r) => {
                            tracing::debug!(%mac, %ip, xid = msg.xid, row = ?r, "DHCP nak after conflict");
                            l.engine.nak(msg, "address in use by another device")
                        }
                        Err(e) => return write_failed(shared, l, mac, &e),
                    }
                }
                Err(e) => return write_failed(shared, l, mac, &e),
            }
        }
        Plan::Release { ip } => {
            if let Err(e) = shared.store.dhcp_release(&net.network, mac, ip, now).await {
                write_failed(shared, l, mac, &e);
            }
            return;
        }
        Plan::Decline { ip, until } => {
            tracing::warn!(%mac, %ip, "DHCP: the device declined the address (in use by an unknown host?); kept out of the pool");
            if let Err(e) = shared
                .store
                .dhcp_decline(&net.network, mac, ip, until, now)
                .await
            {
                write_failed(shared, l, mac, &e);
            }
            return;
        }
    };
    send(shared, l, msg, &reply).await;
}

fn hostname(msg: &Message) -> Option<String> {
    msg.options
        .hostname
        .as_ref()
        .map(|h| String::from_utf8_lossy(h).into_owned())
}

/// Tries `candidates` in order, one claim (one transaction) each, at most [`MAX_ATTEMPTS`]:
/// the address the client now holds, or `None`.
async fn allocate<'a>(
    shared: &Shared,
    network: &str,
    mac: Mac,
    candidates: impl Iterator<Item = Ipv4Addr>,
    claim: impl Fn(Ipv4Addr) -> Claim<'a>,
) -> Result<Option<Ipv4Addr>, StoreError> {
    let m = &shared.metrics.dhcp;
    for ip in candidates.take(MAX_ATTEMPTS) {
        match shared.store.dhcp_claim(&claim(ip)).await? {
            ClaimOutcome::Claimed(row) => return Ok(Some(row.ip)),
            ClaimOutcome::Taken => {
                tracing::debug!(%mac, %ip, "DHCP candidate taken");
                m.allocation_retries
                    .get_or_create(&[("reason", "taken")])
                    .inc();
            }
            ClaimOutcome::Conflict => {
                m.allocation_retries
                    .get_or_create(&[("reason", "conflict")])
                    .inc();
                // The winner may have been another member answering this very client.
                let row = shared.store.dhcp_lease_by_mac(network, mac, true).await?;
                tracing::debug!(%mac, %ip, ?row, "DHCP candidate conflict");
                if let Some(row) = row
                    && row.mac == Some(mac)
                {
                    return Ok(Some(row.ip));
                }
            }
        }
    }
    Ok(None)
}

/// A write failed: read-only (count a refusal, flip the monitor) or another store error.
fn write_failed(shared: &Shared, l: &Listener, mac: Mac, e: &StoreError) {
    if matches!(e, StoreError::ReadOnly { .. }) {
        shared.db.write_failed(shared, e);
        refused(shared, l, mac);
    } else {
        shared.metrics.dhcp.drop_reason("store_error");
        tracing::warn!(%mac, error = %e, "DHCP: the lease could not be written; no answer (the client retries)");
    }
}

/// Counts a refused allocation and logs it once per device per [`REFUSAL_LOG_EVERY`].
fn refused(shared: &Shared, l: &Listener, mac: Mac) {
    shared.metrics.dhcp.refused_read_only.inc();
    let now = Instant::now();
    let mut seen = l.refusals.lock().unwrap_or_else(|e| e.into_inner());
    if seen.len() > 10_000 {
        seen.retain(|_, t| now.duration_since(*t) < REFUSAL_LOG_EVERY);
    }
    let due = seen
        .get(&mac)
        .is_none_or(|t| now.duration_since(*t) >= REFUSAL_LOG_EVERY);
    if due {
        seen.insert(mac, now);
        tracing::warn!(
            %mac, interface = %l.interface,
            "DHCP: database read-only (out of the cluster quorum): no new address for this device; devices with a lease keep being answered"
        );
    }
}

async fn send(shared: &Shared, l: &Listener, req: &Message, reply: &Message) {
    let to = match destination(req, reply) {
        Destination::Relay(a) | Destination::Unicast(a) => a,
        Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, 68),
    };
    let bytes = reply.encode();
    match l.sock.send_to(&bytes, to).await {
        Ok(_) => {
            if let Some(t) = reply.message_type() {
                shared
                    .metrics
                    .dhcp
                    .replies
                    .get_or_create(&[("type", t.name())])
                    .inc();
            }
        }
        Err(e) => {
            shared.metrics.dhcp.drop_reason("send_failed");
            tracing::warn!(interface = %l.interface, %to, error = %e, "DHCP reply not sent");
        }
    }
}

//! The RADIUS load balancer's IO: the handler behind the VIP listeners, and the proxy to the
//! other members' backend ports. The decisions are `ironfence-lb`'s (pure); the hop's
//! re-signing is `ironfence-radius::hop`'s. See docs/radius-load-balancer.md.
//!
//! ```text
//!  VIP:1812 ─► Endpoint (switches.conf) ─► Balancer::handle
//!                 rank members (rendezvous on Calling-Station-Id + User-Name)
//!                 minus disabled peers, maintenance (learned by probe), dead
//!                 ├─ first is this server ─► Mab / Accounting in-process (no hop)
//!                 └─ a peer ─► hop::forward_request ─► one of 4 sockets ─► peer:18120/18130
//!                        ◄── receive task: verify (hop secret) ─► relay_reply ─► switch
//!                        timeout (response_window) ─► next candidate; none ─► no answer
//!  per peer: health task (50 ms tick) ─► Health::poll ─► Status-Server probe ─► flags
//! ```

use super::handler::{Ctx, Handled, Handler, HandlerFuture};
use crate::Shared;
use crate::cluster::LocalClusterState;
use crate::metrics::{LbMetrics, Metrics};
use crate::udp::{PktInfoSocket, RecvBatch};
use ironfence_config::Config;
use ironfence_lb::{BackendView, Health, HealthConfig, HealthState, Pending, Slot};
use ironfence_radius::hop::{self, Hop, HopFlags};
use ironfence_radius::{Code, Packet, dict};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge, histogram::Histogram};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Source sockets per peer (256 identifiers each).
pub(crate) const SOCKETS_PER_BACKEND: usize = 4;
const TICK: Duration = Duration::from_millis(50);

/// What a pending slot waits for.
#[derive(Debug)]
enum Waiter {
    Request {
        authenticator: [u8; 16],
        sent: Instant,
        reply: oneshot::Sender<Vec<u8>>,
    },
    Probe {
        authenticator: [u8; 16],
    },
}

impl Waiter {
    fn authenticator(&self) -> &[u8; 16] {
        match self {
            Waiter::Request { authenticator, .. } | Waiter::Probe { authenticator } => {
                authenticator
            }
        }
    }
}

/// One peer's backend ports, seen from this server.
#[derive(Debug)]
pub(crate) struct Remote {
    name: String,
    auth: SocketAddrV4,
    acct: SocketAddrV4,
    /// Receive with `recvmmsg`: under load one call takes many replies.
    sockets: Vec<Arc<PktInfoSocket>>,
    pending: Mutex<Pending<Waiter>>,
    health: Mutex<Health>,
    /// Learned from its Status-Server answers.
    draining: AtomicBool,
    /// Its metric handles, looked up once (a label lookup allocates).
    counters: OnceLock<Counters>,
}

/// One backend's metric handles.
#[derive(Debug, Clone)]
struct Counters {
    answered: Counter,
    timeout: Counter,
    unsent: Counter,
    local: Counter,
    timeouts: Counter,
    latency: Histogram,
    bad_reply: Counter,
    state: Gauge,
}

impl Counters {
    fn new(m: &Metrics, name: &str) -> Counters {
        let outcome = |o: &str| {
            m.lb.requests
                .get_or_create(&vec![
                    ("backend", name.to_string()),
                    ("outcome", o.to_string()),
                ])
                .clone()
        };
        let b = LbMetrics::backend(name);
        Counters {
            answered: outcome("answered"),
            timeout: outcome("timeout"),
            unsent: outcome("unsent"),
            local: outcome("local"),
            timeouts: m.lb.timeouts.get_or_create(&b).clone(),
            latency: m.lb.latency.get_or_create(&b).clone(),
            bad_reply: m.lb.bad_backend_reply.get_or_create(&b).clone(),
            state: m.lb.state.get_or_create(&b).clone(),
        }
    }
}

impl Remote {
    fn counters(&self, m: &Metrics) -> &Counters {
        self.counters.get_or_init(|| Counters::new(m, &self.name))
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending<Waiter>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn view(&self) -> BackendView {
        BackendView {
            health: self.lock_health().state(),
            draining: self.draining.load(Ordering::Relaxed),
        }
    }
}

/// This server's own facts the balancer and the backend port use: maintenance and the peers
/// it disabled (`cluster-local.json`, re-read every second: not on the request path).
#[derive(Debug, Default)]
pub(crate) struct LocalFacts {
    pub maintenance: AtomicBool,
    pub disabled: RwLock<BTreeSet<String>>,
}

impl LocalFacts {
    pub(crate) fn refresh(&self, state_dir: &std::path::Path) {
        match LocalClusterState::load(state_dir) {
            Ok(s) => {
                self.maintenance.store(s.maintenance, Ordering::Relaxed);
                *self.disabled.write().unwrap_or_else(|e| e.into_inner()) = s.disabled_peers;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the cluster's local state"),
        }
    }
}

/// The proxy to every peer (built once at start from cluster.conf; a membership change
/// needs a restart).
#[derive(Debug)]
pub(crate) struct Proxy {
    me: String,
    hop_secret: Vec<u8>,
    remotes: Vec<Arc<Remote>>,
    pub(crate) local: Arc<LocalFacts>,
    health: HealthConfig,
    local_counter: OnceLock<Counter>,
}

impl Proxy {
    /// Sockets for every peer with a management IP, bound to this server's management IP
    /// (the peers' backend ports accept members' addresses only).
    pub(crate) fn bind(cfg: &Config, local: Arc<LocalFacts>) -> anyhow::Result<Option<Proxy>> {
        let (Some(me), Some(hop_secret)) = (cfg.this_server(), cfg.radius_hop_secret()) else {
            return Ok(None);
        };
        let my_ip = me.management_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let r = &cfg.pf.radius;
        let now = Instant::now();
        let mut remotes = Vec::new();
        for peer in cfg.peers() {
            let Some(ip) = peer.management_ip else {
                continue;
            };
            let mut sockets = Vec::new();
            for _ in 0..SOCKETS_PER_BACKEND {
                let s = PktInfoSocket::bind(SocketAddrV4::new(my_ip, 0), r.recv_buffer)
                    .map_err(|e| anyhow::anyhow!("binding a proxy socket on {my_ip}: {e}"))?;
                sockets.push(Arc::new(s));
            }
            remotes.push(Arc::new(Remote {
                name: peer.name.clone(),
                auth: SocketAddrV4::new(ip, r.backend_auth_port),
                acct: SocketAddrV4::new(ip, r.backend_acct_port),
                sockets,
                pending: Mutex::new(Pending::new(SOCKETS_PER_BACKEND)),
                health: Mutex::new(Health::new(HealthConfig::default(), now)),
                draining: AtomicBool::new(false),
                counters: OnceLock::new(),
            }));
        }
        Ok(Some(Proxy {
            me: me.name.clone(),
            hop_secret: hop_secret.into_bytes(),
            remotes,
            local,
            health: HealthConfig::default(),
            local_counter: OnceLock::new(),
        }))
    }

    pub(crate) fn hop_secret(&self) -> &[u8] {
        &self.hop_secret
    }

    /// A receive task per socket and a health task per peer.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        shared: Arc<Shared>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for remote in &self.remotes {
            for (i, socket) in remote.sockets.iter().enumerate() {
                tasks.push(tokio::spawn(receive(
                    shared.clone(),
                    self.clone(),
                    remote.clone(),
                    i,
                    socket.clone(),
                    shutdown.clone(),
                )));
            }
            tasks.push(tokio::spawn(probe(
                shared.clone(),
                self.clone(),
                remote.clone(),
                shutdown.clone(),
            )));
        }
        tasks
    }

    /// Sends `ctx`'s request to `remote` and waits up to the response window: the reply
    /// rebuilt for the switch, or `None` (timeout, or it could not be sent).
    async fn forward(
        &self,
        metrics: &Metrics,
        remote: &Remote,
        request: &Outbound<'_>,
    ) -> Option<ironfence_radius::PacketBuilder> {
        let authenticator = random16();
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let window = self.health.response_window;
        let slot = remote.lock_pending().insert(
            Waiter::Request {
                authenticator,
                sent: now,
                reply: tx,
            },
            now + window,
        );
        let c = remote.counters(metrics);
        let Some(slot) = slot else {
            c.unsent.inc();
            return None; // 1024 requests outstanding to it: try the next one
        };
        let h = Hop {
            flags: HopFlags::default(),
            request_id: request.request_id,
            client: Some(request.client),
        };
        let bytes = match hop::forward_request(
            request.packet,
            request.switch_secret,
            &self.hop_secret,
            slot.identifier,
            authenticator,
            &h,
        ) {
            Ok(b) => b,
            Err(e) => {
                remote.lock_pending().remove(slot);
                metrics.drop_reason(e.label());
                tracing::warn!(error = %e, "request cannot be forwarded");
                return None;
            }
        };
        // An Accounting-Request's authenticator is computed over the packet: the reply is
        // checked against the one actually sent.
        let mut authenticator = authenticator;
        authenticator.copy_from_slice(&bytes[4..20]);
        if let Some(Waiter::Request {
            authenticator: a, ..
        }) = remote.lock_pending().get_mut(slot)
        {
            *a = authenticator;
        }
        let to = match request.packet.code() {
            Code::AccountingRequest => remote.acct,
            _ => remote.auth,
        };
        if let Err(e) = remote.sockets[slot.socket].send(&bytes, to, None).await {
            remote.lock_pending().remove(slot);
            c.unsent.inc();
            tracing::warn!(error = %e, backend = %remote.name, "cannot send to backend");
            return None;
        }
        match tokio::time::timeout(window, rx).await {
            Ok(Ok(reply)) => {
                // Verified by the receive task; decoding again cannot fail.
                let p = Packet::decode(&reply).ok()?;
                match hop::relay_reply(
                    &p,
                    &self.hop_secret,
                    &authenticator,
                    request.packet,
                    request.switch_secret,
                ) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        c.bad_reply.inc();
                        tracing::warn!(error = %e, backend = %remote.name, "backend reply cannot be relayed");
                        None
                    }
                }
            }
            _ => {
                // The slot may have been expired by the health task's sweep and handed to
                // another request since: free it only if it is still this one's.
                let mut pending = remote.lock_pending();
                if pending
                    .get(slot)
                    .is_some_and(|w| w.authenticator() == &authenticator)
                {
                    pending.remove(slot);
                }
                drop(pending);
                remote.lock_health().request_timed_out(Instant::now());
                c.timeout.inc();
                c.timeouts.inc();
                None
            }
        }
    }
}

/// What the proxy needs of a switch's request.
struct Outbound<'a> {
    packet: &'a Packet<'a>,
    switch_secret: &'a [u8],
    request_id: u64,
    client: IpAddr,
}

/// The handler of the VIP listeners.
#[derive(Debug)]
pub(crate) struct Balancer {
    pub(crate) proxy: Arc<Proxy>,
    pub(crate) local: Box<dyn Handler>,
}

impl Handler for Balancer {
    fn handle<'a>(&'a self, ctx: &'a Ctx<'a>) -> HandlerFuture<'a> {
        Box::pin(self.balance(ctx))
    }
}

enum Target<'p> {
    Local,
    Remote(&'p Arc<Remote>),
}

impl Balancer {
    async fn balance(&self, ctx: &Ctx<'_>) -> Handled {
        let shared = ctx.shared;
        let proxy = &self.proxy;
        // Enabled members in cluster.conf order: this server and the peers it has a socket for.
        let mut names: Vec<&str> = Vec::new();
        let mut targets: Vec<Target<'_>> = Vec::new();
        let mut views: Vec<BackendView> = Vec::new();
        {
            let disabled = proxy
                .local
                .disabled
                .read()
                .unwrap_or_else(|e| e.into_inner());
            for s in ctx.config.cluster.iter().flat_map(|c| c.servers.iter()) {
                if disabled.contains(&s.name) {
                    continue;
                }
                if s.name == proxy.me {
                    names.push(&s.name);
                    targets.push(Target::Local);
                    views.push(BackendView {
                        health: HealthState::Alive,
                        draining: proxy.local.maintenance.load(Ordering::Relaxed),
                    });
                } else if let Some(r) = proxy.remotes.iter().find(|r| r.name == s.name) {
                    names.push(&s.name);
                    targets.push(Target::Remote(r));
                    views.push(r.view());
                }
            }
        }
        let packet = &ctx.packet;
        let key = ironfence_lb::key(
            packet.get(dict::CALLING_STATION_ID),
            packet.get(dict::USER_NAME),
        );
        let ranking = ironfence_lb::rank(&names, &key);
        let continuing = packet.get(dict::STATE).is_some();
        for i in ironfence_lb::candidates(&ranking, &views, continuing) {
            match &targets[i] {
                Target::Local => {
                    proxy
                        .local_counter
                        .get_or_init(|| Counters::new(&shared.metrics, &proxy.me).local)
                        .inc();
                    return self.local.handle(ctx).await;
                }
                Target::Remote(remote) => {
                    let out = Outbound {
                        packet: &ctx.packet,
                        switch_secret: &ctx.switch.secret,
                        request_id: ctx.request.id.0,
                        client: ctx.request.source.ip().to_canonical(),
                    };
                    if let Some(reply) = proxy.forward(&shared.metrics, remote, &out).await {
                        return Handled {
                            reply: Some(reply),
                            writes: Vec::new(),
                            // The backend audits it, under this request's id.
                            audit: None,
                        };
                    }
                }
            }
        }
        shared.metrics.lb.unanswered.inc();
        tracing::warn!(request_id = %ctx.request.id, "no backend answered; request unanswered");
        Handled::unanswered()
    }
}

/// One socket's receive loop: replies are verified with the hop secret against the pending
/// request they name; anything else is counted and dropped.
async fn receive(
    shared: Arc<Shared>,
    proxy: Arc<Proxy>,
    remote: Arc<Remote>,
    index: usize,
    socket: Arc<PktInfoSocket>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut batch = RecvBatch::default();
    loop {
        let got = tokio::select! {
            r = socket.recv_batch(&mut batch) => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        if let Err(e) = got {
            tracing::debug!(error = %e, "proxy receive failed");
            continue;
        }
        for (bytes, received) in batch.iter() {
            on_datagram(
                &shared.metrics,
                &proxy,
                &remote,
                index,
                received.source,
                bytes,
            );
        }
    }
}

/// One datagram received on proxy socket `index` of `remote`.
fn on_datagram(
    metrics: &Metrics,
    proxy: &Proxy,
    remote: &Remote,
    index: usize,
    from: SocketAddrV4,
    bytes: &[u8],
) {
    let c = remote.counters(metrics);
    if (from != remote.auth && from != remote.acct) || bytes.len() < ironfence_radius::HEADER_LEN {
        c.bad_reply.inc();
        return;
    }
    let slot = Slot {
        socket: index,
        identifier: bytes[1],
    };
    let now = Instant::now();
    let mut pending = remote.lock_pending();
    let Some(waiter) = pending.get(slot) else {
        drop(pending);
        metrics.drop_reason("late_backend_reply");
        return;
    };
    let verified = hop::verify_backend_reply(
        bytes,
        slot.identifier,
        waiter.authenticator(),
        &proxy.hop_secret,
    );
    let flags = match &verified {
        Ok(p) => Hop::find(p).ok().map(|h| h.flags),
        Err(_) => None,
    };
    if let Err(e) = verified {
        // Not relayed; the request stays pending (a forgery must not cancel it).
        drop(pending);
        c.bad_reply.inc();
        tracing::warn!(error = %e, backend = %remote.name, "backend reply refused");
        return;
    }
    let waiter = pending.remove(slot).expect("looked up above");
    drop(pending);
    match waiter {
        Waiter::Request { sent, reply, .. } => {
            remote.lock_health().request_answered(now);
            c.answered.inc();
            c.latency.observe(now.duration_since(sent).as_secs_f64());
            let _ = reply.send(bytes.to_vec());
        }
        Waiter::Probe { .. } => {
            remote.lock_health().probe_answered(now);
            let draining = flags.is_some_and(|f| f.maintenance());
            if remote.draining.swap(draining, Ordering::Relaxed) != draining {
                tracing::info!(backend = %remote.name, draining, "backend maintenance changed");
            }
        }
    }
}

/// One peer's health: the state machine polled every tick, Status-Server probes sent when it
/// says so.
async fn probe(
    shared: Arc<Shared>,
    proxy: Arc<Proxy>,
    remote: Arc<Remote>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let counters = remote.counters(&shared.metrics).clone();
    let mut last = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let now = Instant::now();
        let (due, state) = {
            let mut h = remote.lock_health();
            let due = h.poll(now);
            (due, h.state())
        };
        counters.state.set(state.gauge());
        if last != Some(state.label()) {
            if last.is_some() {
                tracing::warn!(backend = %remote.name, state = state.label(), "backend health changed");
            }
            last = Some(state.label());
        }
        // Entries nobody waits for any more (lost probes).
        let _ = remote.lock_pending().expire(now);
        let Some(due) = due else {
            continue;
        };
        let authenticator = random16();
        let slot = remote
            .lock_pending()
            .insert(Waiter::Probe { authenticator }, due.deadline);
        let Some(slot) = slot else {
            continue; // every identifier in use: the backend is busy, not dead
        };
        let bytes = hop::status_server(slot.identifier, authenticator, &proxy.hop_secret);
        if let Err(e) = remote.sockets[slot.socket]
            .send(&bytes, remote.auth, None)
            .await
        {
            tracing::debug!(error = %e, backend = %remote.name, "probe not sent");
        }
    }
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Never expected on Linux; a counter-derived value still differs per request.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_radius::{PacketBuilder, verify_response};

    const HOP: &[u8] = b"0123456789abcdef0123456789abcdef";
    const SWITCH: &[u8] = b"switch-secret-for-the-test";

    /// A proxy whose one peer's backend ports are `backend`, with one source socket.
    fn proxy_to(backend: SocketAddrV4) -> (Arc<Proxy>, Arc<Remote>) {
        let s = PktInfoSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), 0).unwrap();
        let remote = Arc::new(Remote {
            name: "pf2".into(),
            auth: backend,
            acct: backend,
            sockets: vec![Arc::new(s)],
            pending: Mutex::new(Pending::new(1)),
            health: Mutex::new(Health::new(HealthConfig::default(), Instant::now())),
            draining: AtomicBool::new(false),
            counters: OnceLock::new(),
        });
        let proxy = Arc::new(Proxy {
            me: "pf1".into(),
            hop_secret: HOP.to_vec(),
            remotes: vec![remote.clone()],
            local: Arc::default(),
            health: HealthConfig::default(),
            local_counter: OnceLock::new(),
        });
        (proxy, remote)
    }

    /// A backend that answers every hop request with a reply signed with the wrong secret,
    /// then, when `honest`, with the right one.
    async fn backend(socket: tokio::net::UdpSocket, honest: bool) {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let req = Packet::decode(&buf[..n]).unwrap();
            let mut b = PacketBuilder::new(Code::AccessAccept, req.identifier());
            b.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, "100")
                .unwrap();
            b.copy_proxy_state(&req).unwrap();
            let forged = b.encode_response(&req, b"not-the-hop-secret");
            socket.send_to(&forged, from).await.unwrap();
            if honest {
                socket
                    .send_to(&b.encode_response(&req, HOP), from)
                    .await
                    .unwrap();
            }
        }
    }

    fn switch_request() -> Vec<u8> {
        let mut b = PacketBuilder::new(Code::AccessRequest, 42);
        b.add_str(dict::USER_NAME, "aabbccddeeff").unwrap();
        b.add_str(dict::CALLING_STATION_ID, "aa:bb:cc:dd:ee:ff")
            .unwrap();
        b.encode_request([1; 16], SWITCH, true)
    }

    async fn forward_once(honest: bool) -> (Option<Vec<u8>>, Arc<Metrics>, HealthState) {
        let backend_socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let std::net::SocketAddr::V4(addr) = backend_socket.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let (proxy, remote) = proxy_to(addr);
        tokio::spawn(backend(backend_socket, honest));
        let metrics = Arc::new(Metrics::new());
        let (m, p, r) = (metrics.clone(), proxy.clone(), remote.clone());
        tokio::spawn(async move {
            let mut batch = RecvBatch::default();
            while r.sockets[0].recv_batch(&mut batch).await.is_ok() {
                for (bytes, received) in batch.iter() {
                    on_datagram(&m, &p, &r, 0, received.source, bytes);
                }
            }
        });
        let sw_bytes = switch_request();
        let sw = Packet::decode(&sw_bytes).unwrap();
        let out = Outbound {
            packet: &sw,
            switch_secret: SWITCH,
            request_id: 7,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let reply = proxy
            .forward(&metrics, &remote, &out)
            .await
            .map(|b| b.encode_response(&sw, SWITCH));
        let state = remote.lock_health().state();
        (reply, metrics, state)
    }

    fn bad_replies(m: &Metrics) -> u64 {
        m.lb.bad_backend_reply
            .get_or_create(&LbMetrics::backend("pf2"))
            .get()
    }

    #[tokio::test]
    async fn a_backend_reply_with_a_wrong_authenticator_is_counted_and_not_relayed() {
        let (reply, metrics, state) = forward_once(false).await;
        assert_eq!(reply, None, "the forged reply must not reach the switch");
        assert_eq!(bad_replies(&metrics), 1);
        // No authentic answer within the window: a timeout, the backend is a zombie.
        assert_eq!(state.label(), "zombie");
    }

    #[tokio::test]
    async fn a_forged_reply_does_not_cancel_the_request_the_authentic_one_is_relayed() {
        let (reply, metrics, state) = forward_once(true).await;
        let reply = reply.expect("the authentic reply is relayed");
        let sw_bytes = switch_request();
        let sw = Packet::decode(&sw_bytes).unwrap();
        let p = verify_response(&reply, 42, sw.authenticator(), SWITCH).unwrap();
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(
            p.get_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID),
            Some((0, "100"))
        );
        assert_eq!(bad_replies(&metrics), 1);
        assert_eq!(state, HealthState::Alive);
    }
}

//! The RADIUS service: one IO loop per socket around a sans-IO [`Endpoint`], and the handlers
//! requests are routed to.
//!
//! ```text
//!  socket ─recvmmsg─► Endpoint::handle (ironfence-radius: client, decode, verify, BlastRADIUS,
//!    ▲                 │                 reply cache, Status-Server, request id)
//!    │                 ├─ Drop(reason) ───────────────► counted
//!    │                 ├─ Reply(bytes) ───────────────► sent (replay / Status-Server)
//!    │                 └─ Request ─► route ─► Handler (mab · accounting · balancer · later EAP, CoA)
//!    │                                          │  Handled { reply, writes, audit }
//!    │                                          ▼
//!    │                                   persist (degraded mode, one place): store or spool;
//!    │                                   a write that must precede the answer and cannot be
//!    │                                   made means no answer
//!    │                                          ▼
//!    └──────sendmmsg◄── encode + Endpoint::complete ◄── audit record (request id)
//! ```
//!
//! **One loop for every store.** Each request's future is polled once, right on the loop:
//! with the embedded store, or a read answered from memory, it completes there (no task
//! hand-off, replies leave in the same `sendmmsg` batch). A future that has to wait — a
//! MariaDB round trip — is moved to its own task, bounded by `max_in_flight`. Whether a store
//! blocks or suspends is the store's business, not this loop's.
//!
//! In a cluster (`cluster_listeners`) the same loop also serves the RADIUS VIPs, whose handler
//! is the load balancer (`balancer`: in-process, or forwarded to a member), and the backend
//! ports, whose clients are the members and whose requests name their switch in an
//! Ironfence-Hop attribute (`backend`).
//!
//! Every datagram ends in exactly one of: a reply, a reply replayed from the cache, or a silent
//! drop counted under a reason (RFC 2865 §3: invalid packets are silently discarded).

mod accounting;
mod backend;
mod balancer;
mod cluster_listeners;
mod eap;
mod handler;
mod mab;
mod persist;
pub(crate) mod self_probe;

use crate::Shared;
use crate::settings;
use crate::udp::{PktInfoSocket, RecvBatch};
use handler::{Ctx, Handled, Handler};
use ironfence_config::{Config, RequireMessageAuthenticator as SwitchMaRule, SwitchSettings};
use ironfence_radius::{
    Action, ClientPolicy, ClientTable, Code, DropReason, Endpoint, EndpointConfig, EndpointEvent,
    Replied, Request, RequireMessageAuthenticator, Service,
};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

pub(crate) use handler::unix_now;

/// A switch found in the configuration a request arrived under: the request keeps that
/// configuration (one consistent version for the whole request, even across a reload) and
/// the switch's position in it.
#[derive(Debug, Clone)]
pub(crate) struct SwitchRef {
    config: Arc<Config>,
    index: usize,
}

impl SwitchRef {
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn settings(&self) -> &SwitchSettings {
        self.config
            .switches
            .at(self.index)
            .expect("index from lookup_index of the same configuration")
    }
}

/// `switches.conf` as the endpoint's client table.
struct Switches {
    config: Arc<Config>,
    limit_proxy_state: bool,
}

impl ClientTable for Switches {
    type Client = SwitchRef;

    fn lookup(&self, ip: IpAddr) -> Option<SwitchRef> {
        let index = self.config.switches.lookup_index(ip)?;
        Some(SwitchRef {
            config: self.config.clone(),
            index,
        })
    }

    fn policy<'c>(&self, client: &'c SwitchRef) -> ClientPolicy<'c> {
        let s = client.settings();
        ClientPolicy {
            secret: &s.secret,
            require_message_authenticator: match s.require_message_authenticator {
                SwitchMaRule::Yes => RequireMessageAuthenticator::Yes,
                SwitchMaRule::No => RequireMessageAuthenticator::No,
                SwitchMaRule::Auto => RequireMessageAuthenticator::Auto,
            },
            limit_proxy_state: self.limit_proxy_state,
        }
    }
}

/// Who a listener's clients are.
#[derive(Debug)]
enum Kind {
    /// Switches (switches.conf): this server's own address and the VIPs.
    Switches,
    /// Cluster members forwarding requests (the load balancer's backend port).
    Backend {
        hop_secret: Arc<[u8]>,
        local: Arc<balancer::LocalFacts>,
    },
}

#[derive(Debug)]
pub(crate) struct Listener {
    socket: PktInfoSocket,
    endpoint: Mutex<Endpoint>,
    handler: Box<dyn Handler>,
    kind: Kind,
}

impl Listener {
    /// A socket on `ip:port` (IP_FREEBIND: an address this host may not hold yet) with its
    /// endpoint and handler.
    fn bind(
        r: &settings::RadiusSettings,
        ip: Ipv4Addr,
        port: u16,
        service: Service,
        handler: Box<dyn Handler>,
        kind: Kind,
        freebind: bool,
    ) -> anyhow::Result<Arc<Listener>> {
        let endpoint_config = EndpointConfig {
            reply_cache_ttl: r.reply_cache_ttl,
            reply_cache_entries: r.reply_cache_entries,
            max_learned_clients: 1 << 16,
        };
        let addr = SocketAddrV4::new(ip, port);
        let socket = PktInfoSocket::bind_with(addr, r.recv_buffer, freebind).map_err(|e| {
            anyhow::anyhow!("binding RADIUS {} socket on {addr}: {e}", service.label())
        })?;
        Ok(Arc::new(Listener {
            socket,
            endpoint: Mutex::new(Endpoint::new(service, endpoint_config, request_id_seed())),
            handler,
            kind,
        }))
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn service(&self) -> Service {
        self.endpoint().service()
    }

    fn endpoint(&self) -> std::sync::MutexGuard<'_, Endpoint> {
        self.endpoint.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
pub(crate) struct Listeners {
    pub(crate) auth: Arc<Listener>,
    pub(crate) acct: Arc<Listener>,
    /// In a cluster: the VIP listeners (load balancer) and the backend port.
    pub(crate) cluster: Vec<Arc<Listener>>,
    proxy: Option<Arc<balancer::Proxy>>,
}

impl Listeners {
    pub(crate) fn bind(cfg: &Config) -> anyhow::Result<Listeners> {
        let r = settings::radius(cfg);
        let make = |port_no: u16, service: Service, handler: Box<dyn Handler>| {
            Listener::bind(
                &r,
                r.listen,
                port_no,
                service,
                handler,
                Kind::Switches,
                false,
            )
        };
        let mut listeners = Listeners {
            auth: make(r.auth_port, Service::Auth, Box::new(mab::Mab))?,
            acct: make(r.acct_port, Service::Acct, Box::new(accounting::Accounting))?,
            cluster: Vec::new(),
            proxy: None,
        };
        // In a cluster: the backend ports and the VIPs (the load balancer).
        if let Some((cluster, proxy)) = cluster_listeners::bind(cfg, &r)? {
            listeners.cluster = cluster;
            listeners.proxy = Some(proxy);
        }
        Ok(listeners)
    }

    pub(crate) fn spawn(
        self,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
        cfg: &Config,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let max_in_flight = settings::radius(cfg).max_in_flight;
        let mut tasks = Vec::new();
        if let Some(proxy) = &self.proxy {
            tasks.extend(cluster_listeners::spawn(proxy, &shared, &shutdown, cfg));
        }
        for l in [self.auth, self.acct].into_iter().chain(self.cluster) {
            let limit = Arc::new(Semaphore::new(max_in_flight));
            // Several tasks read the same socket, so one busy switch (one UDP flow, which
            // SO_REUSEPORT would pin to one socket) still gets every core.
            let readers = readers();
            let drained = Arc::new(tokio::sync::Barrier::new(readers));
            for _ in 0..readers {
                tasks.push(tokio::spawn(run(
                    shared.clone(),
                    l.clone(),
                    limit.clone(),
                    max_in_flight,
                    drained.clone(),
                    shutdown.clone(),
                )));
            }
        }
        tasks
    }
}

/// Reader tasks per socket: one per core, at most 4.
fn readers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Request ids start at a random point: unique in practice across restarts and servers, so an
/// id found in a log names one request of one server.
fn request_id_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return unix_now() as u64;
    }
    // Keep 2^32 ids of headroom before the counter wraps.
    u64::from_le_bytes(b) & !0xffff_ffff
}

/// A reply ready to leave: bytes, destination, source address, and when its request arrived.
type Outgoing = (
    Vec<u8>,
    SocketAddrV4,
    Option<Ipv4Addr>,
    tokio::time::Instant,
);

async fn run(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    limit: Arc<Semaphore>,
    max_in_flight: usize,
    drained: Arc<tokio::sync::Barrier>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = listener.service();
    let mut batch = RecvBatch::default();
    let mut replies: Vec<Outgoing> = Vec::with_capacity(crate::udp::BATCH);
    loop {
        let got = tokio::select! {
            r = listener.socket.recv_batch(&mut batch) => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        if let Err(e) = got {
            tracing::warn!(error = %e, port = service.label(), "RADIUS receive failed");
            continue;
        }
        replies.clear();
        let config = shared.config();
        let clients = Switches {
            limit_proxy_state: settings::radius(&config).limit_proxy_state,
            config,
        };
        for (datagram, received) in batch.iter() {
            if received.len == 0 {
                shared.metrics.drop_reason("too_long");
                continue;
            }
            let started = tokio::time::Instant::now();
            let source = SocketAddr::V4(received.source);
            let destination = received.local.map(IpAddr::V4);
            let action = {
                let mut endpoint = listener.endpoint();
                let now = started.into_std();
                let action = match &listener.kind {
                    Kind::Switches => endpoint.handle(&clients, now, source, destination, datagram),
                    Kind::Backend { hop_secret, local } => {
                        let members = backend::Members {
                            config: &clients.config,
                            hop_secret,
                            local,
                            read_only: shared.db.is_read_only(),
                        };
                        let a = endpoint.handle(&members, now, source, destination, datagram);
                        match backend::to_switch(a, &clients.config) {
                            Ok(a) => a,
                            Err((key, reason)) => {
                                endpoint.abandon(&key);
                                shared.metrics.drop_reason(reason);
                                continue;
                            }
                        }
                    }
                };
                while let Some(event) = endpoint.poll_event() {
                    log_event(event);
                }
                action
            };
            // Authentic requests count as received, retransmits included.
            let code = Code::from_u8(datagram[0]);
            match action {
                Action::Drop(reason) => {
                    if reason == DropReason::DuplicateInProgress {
                        count_request(&shared, service, code);
                    }
                    dropped(&shared, reason);
                }
                Action::Reply(reply, why) => {
                    count_request(&shared, service, code);
                    if why == Replied::Replayed {
                        shared
                            .metrics
                            .duplicates
                            .get_or_create(&[("outcome", "replayed")])
                            .inc();
                    }
                    replies.push((reply, received.source, received.local, started));
                }
                Action::Request(request) => {
                    count_request(&shared, service, request.code());
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        // Shed load visibly: the switch retransmits, and the operator sees why.
                        listener.endpoint().abandon(&request.key());
                        shared.metrics.drop_reason("overloaded");
                        continue;
                    };
                    let mut work: Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send>> =
                        Box::pin(process(shared.clone(), listener.clone(), request));
                    // Poll once here: most requests complete without waiting (see module docs).
                    let mut cx = Context::from_waker(Waker::noop());
                    match work.as_mut().poll(&mut cx) {
                        Poll::Ready(reply) => {
                            drop(permit);
                            if let Some(reply) = reply {
                                replies.push((reply, received.source, received.local, started));
                            }
                        }
                        Poll::Pending => {
                            // Its wakers are registered again by the task's first poll.
                            let shared = shared.clone();
                            let listener = listener.clone();
                            tokio::spawn(async move {
                                shared.metrics.in_flight.inc();
                                if let Some(reply) = work.await {
                                    send(&shared, &listener, &reply, received, started).await;
                                }
                                shared.metrics.in_flight.dec();
                                drop(permit);
                            });
                        }
                    }
                }
            }
        }
        let out: Vec<(&[u8], SocketAddrV4, Option<Ipv4Addr>)> = replies
            .iter()
            .map(|(r, to, from, _)| (r.as_slice(), *to, *from))
            .collect();
        let failed = listener.socket.send_batch(&out);
        for _ in 0..failed {
            shared.metrics.drop_reason("send_failed");
        }
        for (reply, _, _, started) in &replies {
            sent(&shared, reply, *started);
        }
    }
    // The last reader out lets requests in flight finish, so that every stored accounting
    // record is answered.
    if drained.wait().await.is_leader() {
        let done = tokio::time::timeout(
            Duration::from_secs(5),
            limit.acquire_many(max_in_flight as u32),
        )
        .await;
        if done.is_err() {
            tracing::warn!(
                port = service.label(),
                "requests still in flight at shutdown"
            );
        }
    }
}

fn log_event(event: EndpointEvent) {
    match event {
        EndpointEvent::LearnedMessageAuthenticator(client) => tracing::info!(
            %client,
            "client sent Message-Authenticator: now required from it (auto mode)"
        ),
    }
}

fn dropped(shared: &Shared, reason: DropReason) {
    if reason == DropReason::DuplicateInProgress {
        shared
            .metrics
            .duplicates
            .get_or_create(&[("outcome", "in_progress")])
            .inc();
    }
    shared.metrics.drop_reason(reason.label());
}

fn count_request(shared: &Shared, service: Service, code: Code) {
    shared
        .metrics
        .requests
        .get_or_create(&[("port", service.label()), ("code", code_label(code))])
        .inc();
}

/// Runs the request's handler, persists what it asks for, audits it and completes it in the
/// endpoint. Returns the reply to send (already in the reply cache), or `None` when the
/// request goes unanswered (the NAS retransmits).
async fn process(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    request: Request<SwitchRef>,
) -> Option<Vec<u8>> {
    let switch = request.client.settings();
    let span = tracing::debug_span!(
        "radius",
        request_id = %request.id,
        client = %request.source,
        id = request.packet().identifier(),
        code = code_label(request.code()),
        switch = %switch.id,
    );
    let reply = async {
        let switch_ip = match &listener.kind {
            Kind::Backend { .. } => ironfence_radius::hop::Hop::find(&request.packet())
                .ok()
                .and_then(|h| h.client)
                .unwrap_or(request.source.ip()),
            Kind::Switches => request.source.ip(),
        };
        // The backend port answers the front server, with the hop secret.
        let reply_secret: &[u8] = match &listener.kind {
            Kind::Backend { hop_secret, .. } => hop_secret,
            Kind::Switches => &switch.secret,
        };
        let ctx = Ctx {
            reply_secret,
            shared: &shared,
            config: request.client.config(),
            switch,
            switch_ip,
            request: &request,
            packet: request.packet(),
            now: unix_now(),
            read_only: shared.db.is_read_only(),
        };
        let handled: Handled = listener.handler.handle(&ctx).await;
        // Boxed, and only when there is something to write: the store's futures are large and
        // most requests write nothing.
        let persisted = if handled.writes.is_empty() {
            Ok(())
        } else {
            Box::pin(persist::apply(&ctx, handled.writes)).await
        };
        let reply = match (persisted, handled.reply) {
            (Ok(()), Some(builder)) => Some(builder.encode_response(&ctx.packet, reply_secret)),
            (Ok(()), None) => None,
            (Err(()), _) => None,
        };
        if let Some(facts) = handled.audit {
            handler::audit(&ctx, facts, reply.is_some());
        }
        reply
    }
    .instrument(span)
    .await;
    let mut endpoint = listener.endpoint();
    match &reply {
        // Cached before it is sent: a retransmit racing the reply must find it, not "in progress".
        Some(reply) => {
            endpoint.complete(request.key(), reply, tokio::time::Instant::now().into_std())
        }
        None => endpoint.abandon(&request.key()),
    }
    reply
}

async fn send(
    shared: &Shared,
    listener: &Listener,
    reply: &[u8],
    received: crate::udp::Received,
    started: tokio::time::Instant,
) {
    match listener
        .socket
        .send(reply, received.source, received.local)
        .await
    {
        Ok(()) => sent(shared, reply, started),
        Err(e) => {
            shared.metrics.drop_reason("send_failed");
            tracing::warn!(error = %e, to = %received.source, "RADIUS reply not sent");
        }
    }
}

/// Counts a reply handed to the kernel and its processing time.
fn sent(shared: &Shared, reply: &[u8], started: tokio::time::Instant) {
    let kind = match reply.first().copied().map(Code::from_u8) {
        Some(Code::AccessAccept) => "access_accept",
        Some(Code::AccessReject) => "access_reject",
        Some(Code::AccountingResponse) => "accounting_response",
        Some(Code::AccessChallenge) => "access_challenge",
        _ => "other",
    };
    shared.metrics.reply(kind);
    shared
        .metrics
        .latency
        .observe(started.elapsed().as_secs_f64());
}

fn code_label(code: Code) -> &'static str {
    match code {
        Code::AccessRequest => "access_request",
        Code::AccountingRequest => "accounting_request",
        Code::StatusServer => "status_server",
        _ => "other",
    }
}

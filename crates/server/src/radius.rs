//! RADIUS listeners: the per-datagram prelude (who is this, is it authentic, have we answered
//! it already) and the handlers for Access-Request (MAB), Accounting-Request and
//! Status-Server.
//!
//! Every datagram ends in exactly one of: a reply, a reply replayed from the cache, or a silent
//! drop counted under a reason (RFC 2865 §3: invalid packets are silently discarded).

use crate::Shared;
use crate::settings;
use crate::spool::record::Record;
use crate::udp::{PktInfoSocket, Received};
use ironfence_config::{Config, RequireMessageAuthenticator, SwitchSettings};
use ironfence_core::{Mac, Node, NodeView, UnixTime};
use ironfence_policy::Decision;
use ironfence_radius::{CacheKey, CacheLookup, Code, Packet, PacketBuilder, ReplyCache, dict};
use ironfence_store::{AccountingEvent, AccountingKind, StoreError};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

/// RFC 2865 §3: the maximum RADIUS packet; one more octet detects oversize datagrams.
const MAX_DATAGRAM: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    Auth,
    Acct,
}

impl Port {
    fn label(self) -> &'static str {
        match self {
            Port::Auth => "auth",
            Port::Acct => "acct",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Listener {
    socket: PktInfoSocket,
    port: Port,
    cache: Mutex<ReplyCache>,
}

impl Listener {
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

#[derive(Debug)]
pub(crate) struct Listeners {
    pub(crate) auth: Arc<Listener>,
    pub(crate) acct: Arc<Listener>,
}

impl Listeners {
    pub(crate) fn bind(cfg: &Config) -> anyhow::Result<Listeners> {
        let r = settings::radius(cfg);
        let make = |port_no: u16, port: Port| -> anyhow::Result<Arc<Listener>> {
            let addr = SocketAddrV4::new(r.listen, port_no);
            let socket = PktInfoSocket::bind(addr, r.recv_buffer).map_err(|e| {
                anyhow::anyhow!("binding RADIUS {} socket on {addr}: {e}", port.label())
            })?;
            Ok(Arc::new(Listener {
                socket,
                port,
                cache: Mutex::new(ReplyCache::new(r.reply_cache_ttl, r.reply_cache_entries)),
            }))
        };
        Ok(Listeners {
            auth: make(r.auth_port, Port::Auth)?,
            acct: make(r.acct_port, Port::Acct)?,
        })
    }

    pub(crate) fn spawn(
        self,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
        cfg: &Config,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let max_in_flight = settings::radius(cfg).max_in_flight;
        let mut tasks = Vec::new();
        for l in [self.auth, self.acct] {
            if shared.store.backend_name() == "sqlite" {
                // Several tasks read the same socket, so one busy switch (one UDP flow, which
                // SO_REUSEPORT would pin to one socket) still gets every core.
                for _ in 0..inline_readers() {
                    tasks.push(tokio::spawn(run_inline(
                        shared.clone(),
                        l.clone(),
                        shutdown.clone(),
                    )));
                }
            } else {
                let limit = Arc::new(Semaphore::new(max_in_flight));
                tasks.push(tokio::spawn(run_concurrent(
                    shared.clone(),
                    l,
                    limit,
                    max_in_flight,
                    shutdown.clone(),
                )));
            }
        }
        tasks
    }
}

/// Listener tasks per socket on the embedded store: one per core, at most 4.
fn inline_readers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

// The embedded store answers in microseconds without blocking on IO, so requests are
// processed right on the listener tasks, a batch at a time: handing each to another task would
// cost more (a wake-up of another worker thread per request) than the work itself. A network
// store (MariaDB) suspends on every query, so those requests run concurrently (`run_concurrent`).
async fn run_inline(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = crate::udp::RecvBatch::default();
    let mut replies: Vec<(Vec<u8>, Received, tokio::time::Instant)> =
        Vec::with_capacity(crate::udp::BATCH);
    loop {
        let got = tokio::select! {
            r = listener.socket.recv_batch(&mut batch) => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        if let Err(e) = got {
            tracing::warn!(error = %e, port = listener.port.label(), "RADIUS receive failed");
            continue;
        }
        replies.clear();
        for (datagram, received) in batch.iter() {
            if received.len == 0 {
                shared.metrics.drop_reason("too_long");
                continue;
            }
            let started = tokio::time::Instant::now();
            match prelude(&shared, &listener, datagram, received, started) {
                Prelude::Drop(reason) => shared.metrics.drop_reason(reason),
                Prelude::Send(reply) => replies.push((reply, received, started)),
                Prelude::Process(job) => {
                    if let Some(reply) = process(&shared, &listener, datagram, received, job).await
                    {
                        replies.push((reply, received, started));
                    }
                }
            }
        }
        let out: Vec<(&[u8], SocketAddrV4, Option<std::net::Ipv4Addr>)> = replies
            .iter()
            .map(|(r, rx, _)| (r.as_slice(), rx.source, rx.local))
            .collect();
        let failed = listener.socket.send_batch(&out);
        for _ in 0..failed {
            shared.metrics.drop_reason("send_failed");
        }
        for (reply, _, started) in &replies {
            sent(&shared, reply, *started);
        }
    }
}

async fn run_concurrent(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    limit: Arc<Semaphore>,
    max_in_flight: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            r = listener.socket.recv(&mut buf) => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let received = match received {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                shared.metrics.drop_reason("too_long");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, port = listener.port.label(), "RADIUS receive failed");
                continue;
            }
        };
        let started = tokio::time::Instant::now();
        match prelude(&shared, &listener, &buf[..received.len], received, started) {
            Prelude::Drop(reason) => shared.metrics.drop_reason(reason),
            Prelude::Send(reply) => send(&shared, &listener, &reply, received, started).await,
            Prelude::Process(job) => match limit.clone().try_acquire_owned() {
                Ok(permit) => {
                    let shared = shared.clone();
                    let listener = listener.clone();
                    let datagram = buf[..received.len].to_vec();
                    tokio::spawn(async move {
                        shared.metrics.in_flight.inc();
                        if let Some(reply) =
                            process(&shared, &listener, &datagram, received, job).await
                        {
                            send(&shared, &listener, &reply, received, started).await;
                        }
                        shared.metrics.in_flight.dec();
                        drop(permit);
                    });
                }
                Err(_) => {
                    // Shed load visibly: the switch retransmits, and the operator sees why.
                    listener
                        .cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .abandon(&job.key);
                    shared.metrics.drop_reason("overloaded");
                }
            },
        }
    }
    // Let requests in flight finish so that every stored accounting record is answered.
    let drained = tokio::time::timeout(
        Duration::from_secs(5),
        limit.acquire_many(max_in_flight as u32),
    )
    .await;
    if drained.is_err() {
        tracing::warn!(
            port = listener.port.label(),
            "requests still in flight at shutdown"
        );
    }
}

/// What the prelude decided for one datagram.
enum Prelude {
    Drop(&'static str),
    Send(Vec<u8>),
    Process(Job),
}

/// An authentic request, not seen before, to process asynchronously.
struct Job {
    key: CacheKey,
    code: Code,
    /// The configuration the prelude used: the whole request sees one consistent version,
    /// even if a reload happens meanwhile.
    config: Arc<Config>,
}

fn prelude(
    shared: &Shared,
    listener: &Listener,
    datagram: &[u8],
    received: Received,
    now: tokio::time::Instant,
) -> Prelude {
    let config = shared.config();
    let client_ip = IpAddr::V4(*received.source.ip());
    // RFC 2865 §3: the secret is chosen by source IP; unknown clients are silently dropped.
    let Some(switch) = config.switches.lookup(client_ip) else {
        return Prelude::Drop("unknown_client");
    };
    let packet = match Packet::decode(datagram) {
        Ok(p) => p,
        Err(e) => return Prelude::Drop(e.reason()),
    };
    let code = packet.code();
    let allowed = matches!(
        (listener.port, code),
        (Port::Auth, Code::AccessRequest | Code::StatusServer)
            | (Port::Acct, Code::AccountingRequest | Code::StatusServer)
    );
    if !allowed {
        return Prelude::Drop("unexpected_code");
    }
    let check = match ironfence_radius::verify_request(&packet, &switch.secret) {
        Ok(c) => c,
        Err(e) => return Prelude::Drop(e.reason()),
    };
    if let Some(reason) = message_authenticator_policy(
        shared,
        &config,
        switch,
        &packet,
        check.message_authenticator,
        client_ip,
    ) {
        return Prelude::Drop(reason);
    }
    shared
        .metrics
        .requests
        .get_or_create(&[("port", listener.port.label()), ("code", code_label(code))])
        .inc();
    let key = CacheKey {
        client: SocketAddr::V4(received.source),
        identifier: packet.identifier(),
        authenticator: *packet.authenticator(),
    };
    let mut cache = listener.cache.lock().unwrap_or_else(|e| e.into_inner());
    match cache.begin(key, now.into_std()) {
        CacheLookup::Replay(reply) => {
            shared
                .metrics
                .duplicates
                .get_or_create(&[("outcome", "replayed")])
                .inc();
            return Prelude::Send(reply.to_vec());
        }
        CacheLookup::InProgress => {
            shared
                .metrics
                .duplicates
                .get_or_create(&[("outcome", "in_progress")])
                .inc();
            return Prelude::Drop("duplicate_in_progress");
        }
        CacheLookup::New => {}
    }
    if code == Code::StatusServer {
        // RFC 5997 §3: answered on the port it arrived on, with the code of that port's service.
        let reply_code = match listener.port {
            Port::Auth => Code::AccessAccept,
            Port::Acct => Code::AccountingResponse,
        };
        let Ok(builder) = reply_builder(reply_code, &packet) else {
            cache.abandon(&key);
            return Prelude::Drop("reply_too_long");
        };
        let reply = builder.encode_response(&packet, &switch.secret);
        cache.complete(key, reply.clone(), now.into_std());
        return Prelude::Send(reply);
    }
    drop(cache);
    Prelude::Process(Job { key, code, config })
}

/// BlastRADIUS (CVE-2024-3596) rules. Returns a drop reason if the request must be discarded.
fn message_authenticator_policy(
    shared: &Shared,
    config: &Config,
    switch: &SwitchSettings,
    packet: &Packet<'_>,
    has_ma: bool,
    client_ip: IpAddr,
) -> Option<&'static str> {
    if has_ma {
        if switch.require_message_authenticator == RequireMessageAuthenticator::Auto
            && !shared
                .ma_seen
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&client_ip)
        {
            tracing::info!(client = %client_ip, switch = %switch.id, "client sent Message-Authenticator: now required from it (auto mode)");
            shared
                .ma_seen
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(client_ip);
        }
        return None;
    }
    let code = packet.code();
    // RFC 5997 §3 (Status-Server) and RFC 3579 §3.2 (EAP) always require it.
    if code == Code::StatusServer || packet.get(dict::EAP_MESSAGE).is_some() {
        return Some("missing_message_authenticator");
    }
    if code != Code::AccessRequest {
        return None; // accounting is protected by its Request Authenticator
    }
    let required = match switch.require_message_authenticator {
        RequireMessageAuthenticator::Yes => true,
        RequireMessageAuthenticator::No => false,
        RequireMessageAuthenticator::Auto => shared
            .ma_seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&client_ip),
    };
    if required {
        return Some("missing_message_authenticator");
    }
    if settings::radius(config).limit_proxy_state && packet.get(dict::PROXY_STATE).is_some() {
        return Some("proxy_state_without_message_authenticator");
    }
    None
}

/// Processes an authentic new request; returns the reply (already in the reply cache), or
/// `None` when the request is dropped (store failure: the NAS will retransmit).
async fn process(
    shared: &Arc<Shared>,
    listener: &Listener,
    datagram: &[u8],
    received: Received,
    job: Job,
) -> Option<Vec<u8>> {
    let Ok(packet) = Packet::decode(datagram) else {
        return None; // decoded fine in the prelude; cannot happen
    };
    let Some(switch) = job
        .config
        .switches
        .lookup(IpAddr::V4(*received.source.ip()))
    else {
        return None; // found in the prelude, same configuration; cannot happen
    };
    let audit_log = settings::radius(&job.config).audit_log;
    let span = tracing::debug_span!(
        "radius",
        client = %received.source,
        id = packet.identifier(),
        code = code_label(job.code),
        switch = %switch.id,
    );
    let reply = async {
        let now = unix_now();
        match job.code {
            Code::AccessRequest => access_request(shared, switch, audit_log, &packet, now).await,
            Code::AccountingRequest => {
                accounting_request(shared, switch, &packet, received, now).await
            }
            _ => None,
        }
    }
    .instrument(span)
    .await;
    let mut cache = listener.cache.lock().unwrap_or_else(|e| e.into_inner());
    match &reply {
        // Cached before it is sent: a retransmit racing the reply must find it, not "in progress".
        Some(reply) => cache.complete(
            job.key,
            reply.clone(),
            tokio::time::Instant::now().into_std(),
        ),
        None => cache.abandon(&job.key),
    }
    reply
}

async fn send(
    shared: &Shared,
    listener: &Listener,
    reply: &[u8],
    received: Received,
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

/// Access-Request. Today: MAC authentication bypass (MAB). 802.1X (EAP) is refused with a
/// Reject until the EAP methods land.
async fn access_request(
    shared: &Shared,
    switch: &SwitchSettings,
    audit_log: bool,
    packet: &Packet<'_>,
    now: UnixTime,
) -> Option<Vec<u8>> {
    let user_name = packet.get_str(dict::USER_NAME);
    let calling = packet.get_str(dict::CALLING_STATION_ID);
    let mac = match mab_mac(packet, user_name, calling) {
        Some(mac) => mac,
        None => {
            let reason = if packet.get(dict::EAP_MESSAGE).is_some() {
                "eap_not_supported"
            } else {
                "not_mab"
            };
            tracing::info!(
                user = user_name.unwrap_or(""),
                reason,
                "Access-Reject: not a MAC authentication request"
            );
            shared
                .metrics
                .decisions
                .get_or_create(&[("reason", reason)])
                .inc();
            audit(
                audit_log, shared, switch, packet, None, "reject", reason, None, None, now,
            );
            return reject(packet, switch).ok();
        }
    };
    let view = match shared.store.node_view(mac).await {
        Ok(Some(view)) => view,
        // Read-only (out of quorum): answer as for a new device; its node row is spooled.
        Ok(None) if shared.db.is_read_only() => {
            spool_new_node(shared, mac, now).await;
            NodeView {
                node: Node::new_unregistered(mac, now),
                open_security_events: 0,
            }
        }
        Ok(None) => match shared.store.create_node_if_absent(mac, now).await {
            Ok(node) => {
                shared.metrics.nodes_created.inc();
                tracing::info!(%mac, switch = %switch.id, "new node, unregistered");
                NodeView {
                    node,
                    open_security_events: 0,
                }
            }
            Err(e) if spoolable(shared, &e) => {
                spool_new_node(shared, mac, now).await;
                NodeView {
                    node: Node::new_unregistered(mac, now),
                    open_security_events: 0,
                }
            }
            Err(e) => {
                shared.metrics.store_error("create_node");
                tracing::error!(%mac, error = %e, "cannot create node; request dropped");
                return None;
            }
        },
        Err(e) => {
            shared.metrics.store_error("node_view");
            tracing::error!(%mac, error = %e, "cannot read node; request dropped");
            return None;
        }
    };
    let decision = ironfence_policy::decide(&view, switch, now);
    let reason = decision.reason().label();
    shared
        .metrics
        .decisions
        .get_or_create(&[("reason", reason)])
        .inc();
    let reply = match &decision {
        Decision::Accept { vlan, role, .. } => {
            tracing::debug!(%mac, vlan = vlan.as_deref().unwrap_or("-"), role, reason, "Access-Accept");
            audit(
                audit_log,
                shared,
                switch,
                packet,
                Some(mac),
                "accept",
                reason,
                vlan.clone(),
                Some(role.clone()),
                now,
            );
            accept(packet, switch, vlan.as_deref())
        }
        Decision::Reject { reason: why } => {
            tracing::info!(%mac, reason = %why, "Access-Reject");
            audit(
                audit_log,
                shared,
                switch,
                packet,
                Some(mac),
                "reject",
                reason,
                None,
                None,
                now,
            );
            reject(packet, switch)
        }
    };
    match reply {
        Ok(r) => Some(r),
        Err(e) => {
            shared.metrics.drop_reason("reply_too_long");
            tracing::error!(%mac, error = %e, "cannot encode reply (VLAN value or Proxy-State too long?)");
            None
        }
    }
}

/// The device's MAC if this is a MAB request: Service-Type = Call-Check, or a User-Name that
/// is the Calling-Station-Id (or a bare MAC when the switch sends no Calling-Station-Id).
fn mab_mac(packet: &Packet<'_>, user_name: Option<&str>, calling: Option<&str>) -> Option<Mac> {
    if packet.get(dict::EAP_MESSAGE).is_some() {
        return None;
    }
    let calling_mac = calling.and_then(|c| Mac::parse(c).ok());
    let user_mac = user_name.and_then(|u| Mac::parse(u).ok());
    let call_check = packet.get_u32(dict::SERVICE_TYPE) == Some(dict::service_type::CALL_CHECK);
    match (call_check, calling_mac, user_mac) {
        (true, Some(m), _) => Some(m),
        (true, None, Some(u)) => Some(u),
        (false, Some(c), Some(u)) if c == u => Some(c),
        (false, None, Some(u)) => Some(u),
        _ => None,
    }
}

fn accept(
    packet: &Packet<'_>,
    switch: &SwitchSettings,
    vlan: Option<&str>,
) -> Result<Vec<u8>, ironfence_radius::EncodeError> {
    let mut b = reply_builder(Code::AccessAccept, packet)?;
    if let Some(vlan) = vlan {
        // RFC 3580 §3.31 / RFC 2868: VLAN assignment, tag 0.
        b.add_tagged_u32(dict::TUNNEL_TYPE, 0, dict::tunnel_type::VLAN)?;
        b.add_tagged_u32(
            dict::TUNNEL_MEDIUM_TYPE,
            0,
            dict::tunnel_medium_type::IEEE_802,
        )?;
        b.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, vlan)?;
    }
    Ok(b.encode_response(packet, &switch.secret))
}

fn reject(
    packet: &Packet<'_>,
    switch: &SwitchSettings,
) -> Result<Vec<u8>, ironfence_radius::EncodeError> {
    Ok(reply_builder(Code::AccessReject, packet)?.encode_response(packet, &switch.secret))
}

/// A reply of `code` to `request` that carries the request's Proxy-State attributes back, in
/// order (RFC 2865 §5.33): a proxy between the switch and us relies on them.
fn reply_builder(
    code: Code,
    request: &Packet<'_>,
) -> Result<PacketBuilder, ironfence_radius::EncodeError> {
    let mut b = PacketBuilder::new(code, request.identifier());
    b.copy_proxy_state(request)?;
    Ok(b)
}

#[allow(clippy::too_many_arguments)]
fn audit(
    enabled: bool,
    shared: &Shared,
    switch: &SwitchSettings,
    packet: &Packet<'_>,
    mac: Option<Mac>,
    outcome: &str,
    reason: &str,
    vlan: Option<String>,
    role: Option<String>,
    now: UnixTime,
) {
    if !enabled {
        return;
    }
    // The record takes its own time, with microseconds; `now` (seconds) is the request's.
    let _ = now;
    let text = |t| packet.get_str(t).map(str::to_string);
    let record = ironfence_audit::AuditRecord {
        time_us: ironfence_audit::now_us(),
        request_id: shared.audit.next_request_id(),
        mac,
        user_name: text(dict::USER_NAME),
        nas_ip: packet
            .get_ipv4(dict::NAS_IP_ADDRESS)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| switch.id.clone()),
        nas_port: nas_port(packet),
        request_type: ironfence_audit::RequestType::Auth,
        outcome: outcome.to_string(),
        reason: reason.to_string(),
        vlan,
        role,
        switch_id: Some(switch.id.clone()),
        calling_station_id: text(dict::CALLING_STATION_ID),
        called_station_id: text(dict::CALLED_STATION_ID),
    };
    // Counted as dropped by the audit module when it is not taken.
    crate::audit::push(shared, record);
}

fn nas_port(packet: &Packet<'_>) -> Option<String> {
    packet
        .get_str(dict::NAS_PORT_ID)
        .map(str::to_string)
        .or_else(|| packet.get_u32(dict::NAS_PORT).map(|p| p.to_string()))
}

/// Accounting-Request: stored first, answered after (RFC 2866 §4.1: a response only once the
/// record is safely recorded) — in the database, or in the local spool while the database
/// cannot take writes. When neither can, no answer, so the NAS retransmits.
async fn accounting_request(
    shared: &Shared,
    switch: &SwitchSettings,
    packet: &Packet<'_>,
    received: Received,
    now: UnixTime,
) -> Option<Vec<u8>> {
    let status = packet.get_u32(dict::ACCT_STATUS_TYPE);
    let kind = match status {
        Some(dict::acct_status_type::START) => Some(AccountingKind::Start),
        Some(dict::acct_status_type::STOP) => Some(AccountingKind::Stop),
        Some(dict::acct_status_type::INTERIM_UPDATE) => Some(AccountingKind::InterimUpdate),
        Some(dict::acct_status_type::ACCOUNTING_ON) => Some(AccountingKind::AccountingOn),
        Some(dict::acct_status_type::ACCOUNTING_OFF) => Some(AccountingKind::AccountingOff),
        _ => None, // tunnel accounting & co: acknowledged, nothing to record
    };
    if let Some(kind) = kind {
        let mac = packet
            .get_str(dict::CALLING_STATION_ID)
            .and_then(|c| Mac::parse(c).ok())
            .or_else(|| {
                packet
                    .get_str(dict::USER_NAME)
                    .and_then(|u| Mac::parse(u).ok())
            });
        let per_device = !matches!(
            kind,
            AccountingKind::AccountingOn | AccountingKind::AccountingOff
        );
        if per_device && mac.is_none() {
            shared.metrics.drop_reason("accounting_without_mac");
            tracing::info!(
                "accounting record without a usable Calling-Station-Id: acknowledged, not stored"
            );
        } else {
            let vlan = packet
                .get(dict::TUNNEL_PRIVATE_GROUP_ID)
                .map(strip_tag)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string);
            let event = AccountingEvent {
                kind,
                mac,
                switch_id: switch.id.clone(),
                switch_ip: received.source.ip().to_string(),
                port: nas_port(packet),
                vlan,
                role: None,
                ssid: ssid(packet),
                session_id: packet.get_str(dict::ACCT_SESSION_ID).map(str::to_string),
                username: packet.get_str(dict::USER_NAME).map(str::to_string),
                connection_type: packet.get_u32(dict::NAS_PORT_TYPE).map(connection_type),
                framed_ip: packet.get_ipv4(dict::FRAMED_IP_ADDRESS),
                now,
            };
            // (The store creates the node of a device first seen through accounting.)
            store_accounting(shared, event).await?;
        }
    }
    match reply_builder(Code::AccountingResponse, packet) {
        Ok(b) => Some(b.encode_response(packet, &switch.secret)),
        Err(e) => {
            shared.metrics.drop_reason("reply_too_long");
            tracing::error!(error = %e, "cannot encode Accounting-Response");
            None
        }
    }
}

/// Stores an accounting record in the database, or durably in the local spool when the
/// database cannot take it. `None`: neither worked, so the request must not be answered
/// (RFC 2866 §4.1: the NAS retransmits or fails over to another server).
async fn store_accounting(shared: &Shared, event: AccountingEvent) -> Option<()> {
    if shared.db.is_read_only() {
        // Known out of quorum: no point trying the database.
        return spool_accounting(shared, event).await;
    }
    if shared.spool.is_pending() {
        // Earlier records still wait in the spool: this one queues behind them, so that each
        // session's Start / Interim / Stop reach the database in the order they came.
        match shared
            .spool
            .append_if_pending(Record::Accounting(event.clone()))
            .await
        {
            Ok(true) => {
                shared.metrics.spool.spooled("accounting");
                return Some(());
            }
            Ok(false) => {} // replayed and emptied meanwhile: write directly
            Err(e) => {
                tracing::debug!(error = %e, "accounting not spooled; not answered so the NAS retransmits");
                return None;
            }
        }
    }
    match shared.store.record_accounting(&event).await {
        Ok(()) => Some(()),
        Err(e) if spoolable(shared, &e) => spool_accounting(shared, event).await,
        Err(e) => {
            shared.metrics.store_error("accounting");
            tracing::error!(error = %e, "accounting not stored; not answered so the NAS retransmits");
            None
        }
    }
}

async fn spool_accounting(shared: &Shared, event: AccountingEvent) -> Option<()> {
    match shared.spool.append(Record::Accounting(event)).await {
        Ok(()) => {
            shared.metrics.spool.spooled("accounting");
            Some(())
        }
        Err(e) => {
            // Counted (ironfence_spool_refused_total) and logged once by the spool when full.
            tracing::debug!(error = %e, "the database cannot take accounting and the spool could not either: not answered, so the NAS retransmits or fails over");
            None
        }
    }
}

/// A device first seen while the database cannot take its node row: the row is spooled (it is
/// what `node list` and the portal rely on). The Access-Accept does not depend on it, so when
/// the spool cannot take it either the request is still answered and the row counted as
/// skipped: it is created at the device's next authentication or by its accounting Start.
async fn spool_new_node(shared: &Shared, mac: Mac, now: UnixTime) {
    match shared.spool.append(Record::NodeSeen { mac, at: now }).await {
        Ok(()) => shared.metrics.spool.spooled("create_node"),
        Err(e) => {
            shared.db.skipped(shared, "create_node");
            tracing::debug!(%mac, error = %e, "node row of a new device neither stored nor spooled");
        }
    }
}

/// The database did not take a write but may later (read-only, out of quorum, unreachable):
/// spool it. A read-only error also switches a Galera node to read-only mode at once.
fn spoolable(shared: &Shared, e: &StoreError) -> bool {
    shared.db.write_failed(shared, e)
        || matches!(
            e,
            StoreError::ReadOnly { .. } | StoreError::Unavailable { .. }
        )
}

/// RFC 2868 §3.6: a string Tunnel-* value may start with a tag octet (0x01..=0x1F).
fn strip_tag(v: &[u8]) -> &[u8] {
    match v.first() {
        Some(0..=0x1f) => &v[1..],
        _ => v,
    }
}

/// Vendor attributes that carry the SSID, as data: `(vendor, type)`, tried in order before the
/// Called-Station-Id (PacketFence reads the same ones).
const SSID_VENDOR_ATTRIBUTES: &[(u32, u8)] = &[(dict::vendor::ARUBA, dict::aruba::ESSID_NAME)];

/// The SSID of a wireless session: a vendor attribute of [`SSID_VENDOR_ATTRIBUTES`], else the
/// Called-Station-Id.
fn ssid(packet: &Packet<'_>) -> Option<String> {
    let from_vsa = SSID_VENDOR_ATTRIBUTES.iter().find_map(|&(vendor, typ)| {
        packet
            .vendor_attributes(vendor)
            .find(|(t, _)| *t == typ)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    from_vsa.or_else(|| packet.get_str(dict::CALLED_STATION_ID).and_then(ssid_of))
}

/// Wireless controllers send `Called-Station-Id = "<AP MAC>:<SSID>"` (RFC 3580 §3.20), the MAC
/// in any spelling [`Mac::parse`] accepts, colon-separated ones included
/// (`aa:bb:cc:dd:ee:ff:corp-wifi`); the SSID may itself contain colons.
fn ssid_of(called: &str) -> Option<String> {
    let ssid = called
        .match_indices(':')
        .find(|&(i, _)| Mac::parse(&called[..i]).is_ok())
        .map(|(i, _)| &called[i + 1..])?;
    (!ssid.is_empty()).then(|| ssid.to_string())
}

fn connection_type(nas_port_type: u32) -> String {
    match nas_port_type {
        dict::nas_port_type::ETHERNET => "Ethernet".to_string(),
        dict::nas_port_type::WIRELESS_802_11 => "Wireless-802.11".to_string(),
        dict::nas_port_type::VIRTUAL => "Virtual".to_string(),
        other => format!("NAS-Port-Type-{other}"),
    }
}

fn code_label(code: Code) -> &'static str {
    match code {
        Code::AccessRequest => "access_request",
        Code::AccountingRequest => "accounting_request",
        Code::StatusServer => "status_server",
        _ => "other",
    }
}

pub(crate) fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssid_from_called_station_id() {
        assert_eq!(
            ssid_of("AA-BB-CC-DD-EE-FF:corp-wifi").as_deref(),
            Some("corp-wifi")
        );
        assert_eq!(
            ssid_of("aa:bb:cc:dd:ee:ff:corp-wifi").as_deref(),
            Some("corp-wifi")
        );
        assert_eq!(
            ssid_of("aabbccddeeff:guest:5GHz").as_deref(),
            Some("guest:5GHz")
        );
        assert_eq!(ssid_of("aabb.ccdd.eeff:lab").as_deref(), Some("lab"));
        assert_eq!(ssid_of("aa:bb:cc:dd:ee:ff"), None);
        assert_eq!(ssid_of("AA-BB-CC-DD-EE-FF:"), None);
        assert_eq!(ssid_of("aa:bb:cc:dd:ee:ff:"), None);
        assert_eq!(ssid_of("not-a-mac:ssid"), None);
    }

    #[test]
    fn tunnel_tag_is_stripped() {
        assert_eq!(strip_tag(b"\x00100"), b"100");
        assert_eq!(strip_tag(b"100"), b"100");
    }
}

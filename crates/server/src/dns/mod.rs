//! The registration-network DNS responder's IO (issue 10; docs/dns.md).
//!
//! ```text
//!  device ─UDP/TCP 53─► listener (each served interface × listen_ips(): own address, VIP)
//!                          │ ironfence_dns::Responder::handle(bytes, interface.service_ip())
//!                          ├─ Reply ───────────────────────────────► device
//!                          ├─ Forward ─► Forwarder (one table) ─► upstream socket ─► resolver
//!                          │               answer ◄── upstream receive task ◄──────┘
//!                          │               └─ relay with the device's id ─► device
//!                          │             expire task (every 100 ms): SERVFAIL on time-out
//!                          └─ Drop ─► counted under its reason
//! ```
//!
//! Decisions are `ironfence-dns`'s; this module moves bytes and reads the clock. DNS needs no
//! database, so it answers the same while the database is read-only or unreachable. The VIP
//! is bound with IP_FREEBIND, so the listener serves from the moment keepalived moves the
//! address here. The responder's rules are rebuilt on every configuration reload; the
//! listeners themselves (port, addresses) change at restart.

mod tcp;

use crate::Shared;
use crate::metrics::Metrics;
use crate::udp::{PktInfoSocket, RecvBatch};
use ironfence_config::{Config, DnsConf, ServedInterface};
use ironfence_dns::{
    Action, AnswerOutcome, Forwarder, Outgoing, Passthrough, Query, ReplyKind, Responder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

type Labels1 = [(&'static str, &'static str); 1];

/// `ironfence_dns_*` in `/metrics`.
#[derive(Debug, Default)]
pub struct DnsMetrics {
    /// Datagrams / TCP messages received, by transport.
    pub queries: Family<Labels1, Counter>,
    /// Our own answers, by kind (portal, nodata, notimp, refused, formerr, badvers, servfail).
    pub answered: Family<Labels1, Counter>,
    /// Pass-through queries sent to a resolver.
    pub forwarded: Counter,
    /// Resolver answers relayed to the device.
    pub relayed: Counter,
    /// Pass-through queries whose resolver did not answer in time (the device got SERVFAIL).
    pub upstream_timeouts: Counter,
    /// Queries dropped without an answer, by reason (malformed: truncated, bad_pointer, …).
    pub dropped: Family<Labels1, Counter>,
    /// Datagrams on the upstream socket that answer nothing we asked, by reason.
    pub upstream_dropped: Family<Labels1, Counter>,
}

impl DnsMetrics {
    fn register(self: &Arc<Self>, m: &Metrics) {
        m.register_metric(
            "dns_queries",
            "DNS queries received on the registration networks, by transport",
            self.queries.clone(),
        );
        m.register_metric(
            "dns_answered",
            "DNS answers given by the responder itself, by kind",
            self.answered.clone(),
        );
        m.register_metric(
            "dns_forwarded",
            "pass-through DNS queries forwarded to a resolver",
            self.forwarded.clone(),
        );
        m.register_metric(
            "dns_relayed",
            "resolver answers relayed to devices",
            self.relayed.clone(),
        );
        m.register_metric(
            "dns_upstream_timeouts",
            "pass-through DNS queries not answered by the resolver in time (SERVFAIL sent)",
            self.upstream_timeouts.clone(),
        );
        m.register_metric(
            "dns_dropped",
            "DNS queries dropped without an answer, by reason",
            self.dropped.clone(),
        );
        m.register_metric(
            "dns_upstream_dropped",
            "datagrams from resolvers that answer no pending query, by reason",
            self.upstream_dropped.clone(),
        );
    }

    fn answer(&self, kind: &'static str) {
        self.answered.get_or_create(&[("kind", kind)]).inc();
    }

    fn drop_reason(&self, reason: &'static str) {
        self.dropped.get_or_create(&[("reason", reason)]).inc();
    }
}

/// One listening address: devices on `interface` reach it and are told `portal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub interface: String,
    pub addr: SocketAddrV4,
    pub portal: Ipv4Addr,
    /// The VIP: bound before keepalived puts it here.
    pub freebind: bool,
}

/// Where the responder listens: every served interface's `listen_ips()` on `[dns] port`.
pub fn plan(cfg: &Config) -> Vec<Bind> {
    plan_for(&cfg.served_interfaces(), cfg.pf.dns.port)
}

fn plan_for(served: &[ServedInterface], port: u16) -> Vec<Bind> {
    let mut out = Vec::new();
    for i in served {
        for ip in i.listen_ips() {
            out.push(Bind {
                interface: i.name.clone(),
                addr: SocketAddrV4::new(ip, port),
                portal: i.service_ip(),
                freebind: Some(ip) == i.vip,
            });
        }
    }
    out
}

/// What a reload cannot change in the running listeners.
pub(crate) fn restart_needed(old: &Config, new: &Config) -> Option<String> {
    (plan(old) != plan(new) || old.pf.dns.tcp != new.pf.dns.tcp).then(|| {
        "the DNS listeners changed (pf.conf [dns] port/tcp, or the served interfaces): restart \
         `ironfence serve` to apply"
            .to_string()
    })
}

/// The rules from the configuration. A bad pass-through entry cannot reach here (the
/// configuration refuses it), but is logged rather than trusted if it does.
pub fn responder(c: &DnsConf) -> Responder {
    let passthrough = c.passthrough.then(|| {
        Passthrough::parse(&c.passthroughs).unwrap_or_else(|e| {
            tracing::error!(error = %e, "pass-through domains ignored");
            Passthrough::default()
        })
    });
    Responder {
        ttl: c.ttl,
        passthrough,
    }
}

/// The resolvers pass-through names go to: `[fencing] passthrough_resolvers`, else the IPv4
/// `nameserver` lines of /etc/resolv.conf.
pub fn resolvers(c: &DnsConf) -> Vec<SocketAddr> {
    if !c.resolvers.is_empty() {
        return c.resolvers.clone();
    }
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    resolv_conf_nameservers(&text)
}

fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next()?.parse::<Ipv4Addr>().ok())
                .flatten()
        })
        .map(|ip| SocketAddr::from((ip, 53)))
        .collect()
}

/// Who is waiting for a relayed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Client {
    listener: usize,
    addr: SocketAddrV4,
    local: Option<Ipv4Addr>,
}

struct Rules {
    responder: Arc<Responder>,
    resolvers: Arc<Vec<SocketAddr>>,
}

pub(crate) struct Dns {
    metrics: Arc<DnsMetrics>,
    rules: RwLock<Rules>,
    next_resolver: AtomicUsize,
    forwarder: Mutex<Forwarder<Client>>,
    upstream: UdpSocket,
    listeners: Vec<(Arc<PktInfoSocket>, Ipv4Addr)>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // The kernel's generator does not fail on Linux; a fixed id only weakens spoofing
    // resistance, it does not break forwarding.
    let _ = getrandom::fill(&mut b);
    u16::from_be_bytes(b)
}

/// Binds the listeners of every served interface and starts their tasks. A listener that
/// cannot be bound is an error in the log; the others serve. Nothing to do without served
/// interfaces.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = shared.config();
    let plan = plan(&cfg);
    if plan.is_empty() {
        return Vec::new();
    }
    let metrics = Arc::new(DnsMetrics::default());
    metrics.register(&shared.metrics);
    let mut listeners = Vec::new();
    let mut tcp_binds = Vec::new();
    for b in &plan {
        match PktInfoSocket::bind_with(b.addr, 0, b.freebind) {
            Ok(s) => {
                listeners.push((Arc::new(s), b.portal));
                tcp_binds.push(b.clone());
            }
            Err(e) => tracing::error!(
                error = %e, addr = %b.addr, interface = %b.interface,
                "DNS listener not bound: devices on this network get no DNS answers from this server"
            ),
        }
    }
    let upstream = match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "DNS upstream socket not bound: no DNS service");
            return Vec::new();
        }
    };
    let dns = Arc::new(Dns {
        metrics,
        rules: RwLock::new(Rules {
            responder: Arc::new(responder(&cfg.pf.dns)),
            resolvers: Arc::new(resolvers(&cfg.pf.dns)),
        }),
        next_resolver: AtomicUsize::new(0),
        forwarder: Mutex::new(Forwarder::new(
            cfg.pf.dns.upstream_timeout,
            ironfence_dns::forward::DEFAULT_CAPACITY,
        )),
        upstream,
        listeners,
    });
    dns.warn_without_resolvers();
    let mut tasks = Vec::new();
    for i in 0..dns.listeners.len() {
        tasks.push(tokio::spawn(dns.clone().serve_udp(i, shutdown.clone())));
    }
    tasks.push(tokio::spawn(dns.clone().receive_upstream(shutdown.clone())));
    tasks.push(tokio::spawn(dns.clone().expire(shutdown.clone())));
    tasks.push(tokio::spawn(
        dns.clone().follow_reloads(shared.clone(), shutdown.clone()),
    ));
    if cfg.pf.dns.tcp {
        tasks.extend(tcp::start(&dns, &tcp_binds, shutdown));
    }
    tracing::info!(
        listeners = ?tcp_binds.iter().map(|b| b.addr.to_string()).collect::<Vec<_>>(),
        tcp = cfg.pf.dns.tcp,
        "DNS responder ready on the registration networks"
    );
    tasks
}

impl Dns {
    fn rules(&self) -> (Arc<Responder>, Arc<Vec<SocketAddr>>) {
        let r = self.rules.read().unwrap_or_else(|e| e.into_inner());
        (r.responder.clone(), r.resolvers.clone())
    }

    fn warn_without_resolvers(&self) {
        let (responder, resolvers) = self.rules();
        if responder
            .passthrough
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            && resolvers.is_empty()
        {
            tracing::error!(
                "pass-through domains are configured but there is no resolver (set [fencing] \
                 passthrough_resolvers or a nameserver in /etc/resolv.conf): they get SERVFAIL"
            );
        }
    }

    fn pick_resolver(&self, resolvers: &[SocketAddr]) -> Option<SocketAddr> {
        if resolvers.is_empty() {
            return None;
        }
        let n = self.next_resolver.fetch_add(1, Ordering::Relaxed);
        Some(resolvers[n % resolvers.len()])
    }

    /// One listener: batches of up to 32 datagrams per `recvmmsg`, their answers in one
    /// `sendmmsg`, pass-through queries handed to the forwarder.
    async fn serve_udp(self: Arc<Self>, i: usize, mut shutdown: watch::Receiver<bool>) {
        let (sock, portal) = (self.listeners[i].0.clone(), self.listeners[i].1);
        let mut batch = RecvBatch::default();
        // The hot counters, looked up once (a family lookup takes a lock and hashes).
        let queries = self
            .metrics
            .queries
            .get_or_create(&[("transport", "udp")])
            .clone();
        let mut answered: Vec<(ReplyKind, Counter)> = Vec::new();
        let mut replies: Vec<(Vec<u8>, SocketAddrV4, Option<Ipv4Addr>)> = Vec::new();
        loop {
            let r = tokio::select! {
                r = sock.recv_batch(&mut batch) => r,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            match r {
                Ok(n) => {
                    queries.inc_by(n as u64);
                }
                Err(_) => {
                    self.metrics.drop_reason("receive_error");
                    continue;
                }
            }
            let (responder, resolvers) = self.rules();
            replies.clear();
            let mut forwards = Vec::new();
            // A datagram longer than the buffer shows as empty: dropped as truncated.
            for (datagram, got) in batch.iter() {
                match responder.handle(datagram, portal) {
                    Action::Reply { bytes, kind } => {
                        match answered.iter().find(|(k, _)| *k == kind) {
                            Some((_, c)) => {
                                c.inc();
                            }
                            None => {
                                let c = self
                                    .metrics
                                    .answered
                                    .get_or_create(&[("kind", kind.label())])
                                    .clone();
                                c.inc();
                                answered.push((kind, c));
                            }
                        };
                        replies.push((bytes, got.source, got.local));
                    }
                    Action::Drop(reason) => self.metrics.drop_reason(reason.label()),
                    Action::Forward(query) => forwards.push((query, datagram.to_vec(), got)),
                }
            }
            if !replies.is_empty() {
                let out: Vec<(&[u8], SocketAddrV4, Option<Ipv4Addr>)> = replies
                    .iter()
                    .map(|(b, to, from)| (b.as_slice(), *to, *from))
                    .collect();
                for _ in 0..sock.send_batch(&out) {
                    self.metrics.drop_reason("send_failed");
                }
            }
            for (query, datagram, got) in forwards {
                let client = Client {
                    listener: i,
                    addr: got.source,
                    local: got.local,
                };
                self.forward_udp(client, &datagram, &query, &resolvers)
                    .await;
            }
        }
    }

    async fn forward_udp(
        &self,
        client: Client,
        datagram: &[u8],
        query: &Query,
        resolvers: &[SocketAddr],
    ) {
        let to_client = |bytes: Vec<u8>| {
            let sock = self.listeners[client.listener].0.clone();
            let (addr, local) = (client.addr, client.local);
            async move {
                let _ = sock.send(&bytes, addr, local).await;
            }
        };
        let Some(upstream) = self.pick_resolver(resolvers) else {
            self.metrics.answer("servfail");
            to_client(ironfence_dns::responder::servfail(query)).await;
            return;
        };
        let out = Outgoing {
            client: client.clone(),
            datagram,
            query,
            limit: query.udp_limit(),
            upstream,
        };
        let sent = self
            .forwarder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forward(Instant::now(), out, random_id());
        match sent {
            Ok(bytes) => {
                self.metrics.forwarded.inc();
                if let Err(e) = self.upstream.send_to(&bytes, upstream).await {
                    // The table entry times out and the device gets SERVFAIL.
                    tracing::debug!(error = %e, %upstream, "pass-through query not sent");
                }
            }
            Err(ironfence_dns::Full) => {
                self.metrics.answer("servfail");
                self.metrics.drop_reason("forward_table_full");
                to_client(ironfence_dns::responder::servfail(query)).await;
            }
        }
    }

    async fn receive_upstream(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let r = tokio::select! {
                r = self.upstream.recv_from(&mut buf) => r,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let Ok((len, from)) = r else {
                continue;
            };
            let outcome = self
                .forwarder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .answer(from, &buf[..len]);
            match outcome {
                AnswerOutcome::Relay { client, bytes } => {
                    self.metrics.relayed.inc();
                    let sock = &self.listeners[client.listener].0;
                    let _ = sock.send(&bytes, client.addr, client.local).await;
                }
                AnswerOutcome::Drop(reason) => {
                    self.metrics
                        .upstream_dropped
                        .get_or_create(&[("reason", reason)])
                        .inc();
                }
            }
        }
    }

    async fn expire(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            let expired = self
                .forwarder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .expire(Instant::now());
            for e in expired {
                self.metrics.upstream_timeouts.inc();
                self.metrics.answer("servfail");
                let sock = &self.listeners[e.client.listener].0;
                let _ = sock.send(&e.reply, e.client.addr, e.client.local).await;
            }
        }
    }

    async fn follow_reloads(
        self: Arc<Self>,
        shared: Arc<Shared>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut reloads = shared.reloads.subscribe();
        loop {
            tokio::select! {
                r = reloads.changed() => if r.is_err() { break },
                _ = shutdown.wait_for(|s| *s) => break,
            }
            let cfg = shared.config();
            let rules = Rules {
                responder: Arc::new(responder(&cfg.pf.dns)),
                resolvers: Arc::new(resolvers(&cfg.pf.dns)),
            };
            *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
            self.forwarder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_timeout(cfg.pf.dns.upstream_timeout);
            self.warn_without_resolvers();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn every_served_address_is_bound_and_the_vip_with_freebind() {
        let served = [
            ServedInterface {
                name: "eth1.2".into(),
                ip: v4("192.168.2.6"),
                network: "192.168.2.0/24".parse().unwrap(),
                vip: Some(v4("192.168.2.10")),
            },
            ServedInterface {
                name: "eth1.3".into(),
                ip: v4("192.168.3.6"),
                network: "192.168.3.0/24".parse().unwrap(),
                vip: None,
            },
        ];
        let got: Vec<_> = plan_for(&served, 53)
            .into_iter()
            .map(|b| (b.interface, b.addr.to_string(), b.portal, b.freebind))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "eth1.2".into(),
                    "192.168.2.6:53".into(),
                    v4("192.168.2.10"),
                    false
                ),
                (
                    "eth1.2".into(),
                    "192.168.2.10:53".into(),
                    v4("192.168.2.10"),
                    true
                ),
                (
                    "eth1.3".into(),
                    "192.168.3.6:53".into(),
                    v4("192.168.3.6"),
                    false
                ),
            ]
        );
    }

    fn load(pf: &str) -> (tempfile::TempDir, Config) {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(conf.join("pf.conf"), pf).unwrap();
        let c = Config::load(&conf).unwrap_or_else(|e| panic!("{e}"));
        (d, c)
    }

    #[test]
    fn a_reload_applies_the_rules_and_says_when_the_listeners_need_a_restart() {
        let base = "[interface eth1.2]\nip = 192.168.2.5\nmask = 255.255.255.0\ntype = internal\n\
                    enforcement = vlan\n";
        let (_a, old) = load(&format!("{base}[fencing]\npassthroughs = a.example\n"));
        let (_b, rules) = load(&format!(
            "{base}[fencing]\npassthroughs = b.example\n[dns]\nttl = 5\n"
        ));
        let (_c, port) = load(&format!("{base}[dns]\nport = 5353\n"));
        assert_eq!(restart_needed(&old, &rules), None);
        assert!(restart_needed(&old, &port).is_some());
        let r = responder(&rules.pf.dns);
        assert_eq!(r.ttl, 5);
        assert!(
            r.passthrough
                .unwrap()
                .matches(&ironfence_dns::Name::from_dotted("b.example").unwrap())
        );
        assert_eq!(plan(&port)[0].addr.to_string(), "192.168.2.5:5353");
    }

    #[test]
    fn resolv_conf_gives_its_ipv4_nameservers() {
        let text = "# generated\nsearch example.org\nnameserver 192.0.2.53\nnameserver ::1\n\
                    nameserver 198.51.100.1 # second\noptions ndots:2\n";
        assert_eq!(
            resolv_conf_nameservers(text),
            [
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "198.51.100.1:53".parse().unwrap()
            ]
        );
    }
}

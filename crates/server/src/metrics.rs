//! Prometheus metrics. Every way a request can end is counted under a label, so that an
//! operator can tell "the switch uses the wrong secret" from "we are overloaded" at a glance.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// All of the daemon's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Requests received and accepted for processing, by port (auth/acct) and RADIUS code.
    pub requests: Family<Labels2, Counter>,
    /// Replies sent, by kind (access_accept, access_reject, accounting_response, status).
    pub replies: Family<Labels1, Counter>,
    /// Authorization decisions by reason (registered, unregistered, isolated, ...).
    pub decisions: Family<Labels1, Counter>,
    /// Datagrams dropped without a reply, by reason (unknown_client, bad_message_authenticator, ...).
    pub dropped: Family<Labels1, Counter>,
    /// Retransmits: `replayed` from the reply cache or ignored while `in_progress`.
    pub duplicates: Family<Labels1, Counter>,
    /// Server-side processing time of a request, from receipt to reply handed to the kernel.
    pub latency: Histogram,
    /// Requests being processed right now.
    pub in_flight: Gauge,
    /// Audit log records: written, dropped (queue full), failed (store error).
    pub audit: Family<Labels1, Counter>,
    /// Nodes created on first sighting.
    pub nodes_created: Counter,
    /// Store errors by operation.
    pub store_errors: Family<Labels1, Counter>,
    /// Configuration reloads by result (ok, error).
    pub config_reloads: Family<Labels1, Counter>,
    /// 1 while the database is read-only (Galera node out of the quorum).
    pub db_read_only: Gauge,
    /// Writes not done because the database is read-only, by operation.
    pub db_writes_skipped: Family<Labels1, Counter>,
    /// Captive portal form posts and refusals, by result (registered, invalid_credentials,
    /// no_rule, rate_limited, forbidden, bad_request, unavailable).
    pub portal: Family<Labels1, Counter>,
    /// The local accounting spool.
    pub spool: SpoolMetrics,
    /// 1 for each VIP this server holds (keepalived MASTER), 0 for the others it competes for.
    pub vip_held: Family<[(&'static str, String); 2], Gauge>,
    /// keepalived notify FIFO lines not understood (dropped).
    pub keepalived_notify_unparsed: Counter,
    /// The RADIUS load balancer (cluster VIPs): per backend.
    pub lb: LbMetrics,
    /// CoA / Disconnect (RFC 5176) and the location recorded at Access-Accept.
    pub coa: crate::coa::CoaMetrics,
    /// The registration networks' DHCP server (`ironfence_dhcp_*`).
    pub dhcp: crate::dhcp::DhcpMetrics,
    /// 802.1X answers by kind (challenge, success, failure).
    pub eap: Family<Labels1, Counter>,
    /// Open EAP conversations (state held between rounds).
    pub eap_conversations: Gauge,
    pub eap_state_bytes: Gauge,
}

/// Labels naming one backend (a cluster member).
pub type BackendLabels = Vec<(&'static str, String)>;
type HistogramFn = fn() -> Histogram;

/// The load balancer's metrics, per backend (cluster member name).
#[derive(Debug)]
pub struct LbMetrics {
    /// Requests proxied (or handled locally), by backend and outcome (`answered`, `timeout`,
    /// `local`, `unsent`).
    pub requests: Family<BackendLabels, Counter>,
    /// Round trip of answered proxied requests.
    pub latency: Family<BackendLabels, Histogram, HistogramFn>,
    /// Proxied requests not answered within the response window.
    pub timeouts: Family<BackendLabels, Counter>,
    /// Health: 0 alive, 1 zombie, 2 dead, 3 reviving.
    pub state: Family<BackendLabels, Gauge>,
    /// Backend replies refused (wrong authenticator / Message-Authenticator, unknown id).
    pub bad_backend_reply: Family<BackendLabels, Counter>,
    /// Requests the balancer could not place anywhere (no candidate answered).
    pub unanswered: Counter,
}

impl LbMetrics {
    pub fn backend(name: &str) -> BackendLabels {
        vec![("backend", name.to_string())]
    }

    pub fn request(&self, name: &str, outcome: &str) {
        self.requests
            .get_or_create(&vec![
                ("backend", name.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }
}

fn lb_latency() -> Histogram {
    // 25 µs .. ~0.8 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_025, 2.0, 16,
    ))
}

/// Metrics of the local accounting spool (`crate::spool`).
#[derive(Debug, Clone, Default)]
pub struct SpoolMetrics {
    /// Records made durable in the spool (and then answered), by operation.
    pub spooled: Family<Labels1, Counter>,
    /// Spooled records replayed into the database: applied, duplicate (already applied before
    /// a crash), discarded (refused by the database for good).
    pub replayed_total: Family<Labels1, Counter>,
    /// Size of the spool file.
    pub bytes: Gauge,
    /// Records the spool could not take (full, io_error): their requests were not answered.
    pub refused_total: Family<Labels1, Counter>,
}

impl SpoolMetrics {
    pub fn spooled(&self, op: &'static str) {
        self.spooled.get_or_create(&[("op", op)]).inc();
    }
    pub fn replayed(&self, outcome: &'static str) {
        self.replayed_total
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }
    pub fn refused(&self, reason: &'static str) {
        self.refused_total
            .get_or_create(&[("reason", reason)])
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ironfence");
        let requests = Family::<Labels2, Counter>::default();
        let replies = Family::<Labels1, Counter>::default();
        let decisions = Family::<Labels1, Counter>::default();
        let dropped = Family::<Labels1, Counter>::default();
        let duplicates = Family::<Labels1, Counter>::default();
        // 25 µs .. ~0.8 s
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.000_025, 2.0, 16,
        ));
        let in_flight = Gauge::default();
        let audit = Family::<Labels1, Counter>::default();
        let nodes_created = Counter::default();
        let store_errors = Family::<Labels1, Counter>::default();
        let config_reloads = Family::<Labels1, Counter>::default();
        let db_read_only = Gauge::default();
        let db_writes_skipped = Family::<Labels1, Counter>::default();
        // Captive portal.
        let portal = Family::<Labels1, Counter>::default();
        let eap = Family::<Labels1, Counter>::default();
        registry.register(
            "eap_answers",
            "802.1X (EAP) answers sent, by kind: challenge, success, failure",
            eap.clone(),
        );
        let eap_conversations = Gauge::default();
        registry.register(
            "eap_conversations",
            "Open EAP conversations (state held between rounds)",
            eap_conversations.clone(),
        );
        let eap_state_bytes = Gauge::default();
        registry.register(
            "eap_state_bytes",
            "Memory held by the open EAP conversations, octets (engine state and buffers; rustls' internal buffers not included)",
            eap_state_bytes.clone(),
        );
        registry.register(
            "portal_requests",
            "Captive portal form posts and refusals, by result",
            portal.clone(),
        );
        registry.register(
            "radius_requests",
            "RADIUS requests received, by port and code",
            requests.clone(),
        );
        registry.register(
            "radius_replies",
            "RADIUS replies sent, by kind",
            replies.clone(),
        );
        registry.register(
            "radius_decisions",
            "Authorization decisions, by reason",
            decisions.clone(),
        );
        registry.register(
            "radius_dropped",
            "RADIUS datagrams dropped without reply, by reason",
            dropped.clone(),
        );
        registry.register(
            "radius_duplicates",
            "Retransmitted requests, by outcome",
            duplicates.clone(),
        );
        registry.register(
            "radius_request_duration_seconds",
            "Server-side RADIUS request processing time",
            latency.clone(),
        );
        registry.register(
            "radius_in_flight",
            "RADIUS requests being processed",
            in_flight.clone(),
        );
        registry.register(
            "audit_records",
            "RADIUS audit log records, by outcome",
            audit.clone(),
        );
        registry.register(
            "nodes_created",
            "Nodes created on first sighting",
            nodes_created.clone(),
        );
        registry.register(
            "store_errors",
            "Store errors, by operation",
            store_errors.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by result",
            config_reloads.clone(),
        );
        registry.register(
            "db_read_only",
            "1 while the database is read-only (out of the Galera quorum)",
            db_read_only.clone(),
        );
        registry.register(
            "db_writes_skipped",
            "Writes skipped in read-only mode, by operation",
            db_writes_skipped.clone(),
        );
        let vip_held = Family::<[(&'static str, String); 2], Gauge>::default();
        registry.register(
            "vip_held",
            "1 while this server holds the virtual IP (keepalived MASTER), by interface and VIP",
            vip_held.clone(),
        );
        let keepalived_notify_unparsed = Counter::default();
        registry.register(
            "keepalived_notify_unparsed",
            "keepalived notify FIFO lines not understood (dropped)",
            keepalived_notify_unparsed.clone(),
        );
        let spool = SpoolMetrics::default();
        registry.register(
            "spool_records",
            "Records written to the local accounting spool (answered once durable), by operation",
            spool.spooled.clone(),
        );
        registry.register(
            "spool_replayed",
            "Spooled records replayed into the database, by outcome",
            spool.replayed_total.clone(),
        );
        registry.register(
            "spool_bytes",
            "Size of the local accounting spool",
            spool.bytes.clone(),
        );
        registry.register(
            "spool_refused",
            "Records the spool could not take (request not answered), by reason",
            spool.refused_total.clone(),
        );
        let lb = LbMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(lb_latency as HistogramFn),
            timeouts: Family::default(),
            state: Family::default(),
            bad_backend_reply: Family::default(),
            unanswered: Counter::default(),
        };
        registry.register(
            "lb_backend_requests",
            "Load balancer: requests by backend and outcome (answered, timeout, local, unsent)",
            lb.requests.clone(),
        );
        registry.register(
            "lb_backend_latency_seconds",
            "Load balancer: round trip of answered proxied requests, by backend",
            lb.latency.clone(),
        );
        registry.register(
            "lb_backend_timeouts",
            "Load balancer: proxied requests not answered within the response window",
            lb.timeouts.clone(),
        );
        registry.register(
            "lb_backend_state",
            "Load balancer: backend health (0 alive, 1 zombie, 2 dead, 3 reviving)",
            lb.state.clone(),
        );
        registry.register(
            "lb_bad_backend_reply",
            "Load balancer: backend replies refused (wrong authenticator), by backend",
            lb.bad_backend_reply.clone(),
        );
        registry.register(
            "lb_unanswered",
            "Load balancer: requests no backend answered (the switch retransmits)",
            lb.unanswered.clone(),
        );
        let coa = crate::coa::CoaMetrics::register(&mut registry);
        let dhcp = crate::dhcp::DhcpMetrics::register(&mut registry);
        Metrics {
            coa,
            dhcp,
            eap,
            eap_conversations,
            eap_state_bytes,
            portal,
            vip_held,
            keepalived_notify_unparsed,
            lb,
            spool,
            registry: Mutex::new(registry),
            requests,
            replies,
            decisions,
            dropped,
            duplicates,
            latency,
            in_flight,
            audit,
            nodes_created,
            store_errors,
            config_reloads,
            db_read_only,
            db_writes_skipped,
        }
    }

    pub fn drop_reason(&self, reason: &'static str) {
        self.dropped.get_or_create(&[("reason", reason)]).inc();
    }

    pub fn reply(&self, kind: &'static str) {
        self.replies.get_or_create(&[("kind", kind)]).inc();
    }

    pub fn eap_round(&self, kind: &'static str) {
        self.eap.get_or_create(&[("kind", kind)]).inc();
    }

    pub fn store_error(&self, op: &'static str) {
        self.store_errors.get_or_create(&[("op", op)]).inc();
    }

    /// Value of a labelled counter (for tests and `ironfence` status output).
    pub fn dropped_count(&self, reason: &'static str) -> u64 {
        self.dropped.get_or_create(&[("reason", reason)]).get()
    }

    /// OpenMetrics text exposition.
    /// Exports the node-to-node API's refusal counters (kept by `ironfence-webservices`) at
    /// every scrape: `ironfence_webservices_refused_total{reason}` and
    /// `ironfence_webservices_auth_failures_total`.
    pub fn export_api_access(&self, access: ironfence_webservices::AllowedPeers) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.register_collector(Box::new(ApiAccessCollector(access)));
    }

    /// Exports the file audit log's writer counters at every scrape
    /// (`ironfence_audit_log_*`).
    pub fn export_audit(&self, stats: std::sync::Arc<ironfence_audit::Stats>) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.register_collector(Box::new(AuditCollector(stats)));
    }

    /// Adds a collector read at every scrape (e.g. the node cache's counters, kept by the
    /// store crate: see `crate::node_cache`).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.register_collector(collector);
    }

    /// Registers a metric owned by a subsystem that starts later (the DNS responder's
    /// `ironfence_dns_*`).
    pub fn register_metric(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.register(name, help, metric);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// Reads [`ironfence_webservices::ApiCounters`] at scrape time.
#[derive(Debug)]
struct ApiAccessCollector(ironfence_webservices::AllowedPeers);

impl prometheus_client::collector::Collector for ApiAccessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        let counters = self.0.counters();
        let refused = counters.refused();
        let mut family = encoder.encode_descriptor(
            "webservices_refused",
            "Node-to-node API connections or requests refused before authentication, by reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (reason, n) in refused {
            let labels = [("reason", reason)];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        let failures = ConstCounter::new(counters.auth_failures());
        let metric = encoder.encode_descriptor(
            "webservices_auth_failures",
            "Node-to-node API requests with a wrong user or password",
            None,
            failures.metric_type(),
        )?;
        failures.encode(metric)
    }
}

/// Reads [`ironfence_audit::Stats`] at scrape time.
#[derive(Debug)]
struct AuditCollector(std::sync::Arc<ironfence_audit::Stats>);

impl prometheus_client::collector::Collector for AuditCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.0;
        let counters: [(&str, &str, u64); 6] = [
            (
                "audit_log_records_written",
                "Audit records handed to the kernel (file log)",
                s.records_written.load(Relaxed),
            ),
            (
                "audit_log_bytes_written",
                "Bytes appended to the audit log segments",
                s.bytes_written.load(Relaxed),
            ),
            (
                "audit_log_records_failed",
                "Audit records that could not be written (IO error, e.g. disk full)",
                s.records_failed.load(Relaxed),
            ),
            (
                "audit_log_segments_created",
                "Audit log segments started by rotation",
                s.segments_created.load(Relaxed),
            ),
            (
                "audit_log_segments_deleted",
                "Audit log segments deleted by retention",
                s.segments_deleted.load(Relaxed),
            ),
            (
                "audit_log_blocked_pushes",
                "Requests that waited for room in the audit channel (the writer was behind)",
                s.blocked_pushes.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(metric)?;
        }
        let blocked = ConstCounter::new(s.blocked_ns.load(Relaxed) as f64 / 1e9);
        let metric = encoder.encode_descriptor(
            "audit_log_blocked_seconds",
            "Time requests spent waiting for room in the audit channel",
            None,
            blocked.metric_type(),
        )?;
        blocked.encode(metric)?;
        let gauges: [(&str, &str, u64); 2] = [
            (
                "audit_log_segments",
                "Audit log segments on disk (the open one included)",
                s.segments.load(Relaxed),
            ),
            (
                "audit_log_disk_bytes",
                "Bytes of the audit log on disk (segments and indexes)",
                s.disk_bytes.load(Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(metric)?;
        }
        Ok(())
    }
}

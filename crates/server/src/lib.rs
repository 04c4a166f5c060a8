//! The ironfence daemon's IO layer.
//!
//! ```text
//!   switch ──UDP 1812/1813──► udp (recvmmsg, IP_PKTINFO) ──► radius: Endpoint (sans-IO:
//!                              client lookup, decode once, verify, BlastRADIUS, reply cache)
//!                                                              │ Request (request id)
//!                                                              ▼
//!                     handler: mab ──► store.node_view ──► policy::decide ─┐
//!                              accounting ──► AccountingEvent ─────────────┤ Handled
//!                                                                          ▼
//!                     persist: store, or spool (fsync) while read-only ──► reply ─► sendmmsg
//!                                   spool replay ──► store (in order, idempotency key per record)
//!                                   audit records ──► bounded channel ──► writer thread ──► <state>/audit/
//!                                                     (or `audit_log = database`: queue ──► store)
//!   operator ── unix socket (control) ──► reload config     Prometheus ──► http /metrics
//! ```
//!
//! Protocol rules live in `ironfence-radius` (sans-IO) and decisions in `ironfence-policy`
//! (pure); this crate only moves bytes, reads the clock and talks to the store.

pub mod admin;
mod audit;
pub mod cluster;
// RFC 5176 CoA / Disconnect (issue 10).
pub mod coa;
mod control;
pub mod db_health;
pub mod dhcp;
mod dns;
mod eap_service;
pub(crate) mod eap_tls;
pub mod front_door;
pub mod galera;
mod http;
pub mod metrics;
pub mod node_cache;
pub mod portal;
mod radius;
mod settings;
pub mod spool;
#[cfg(test)]
pub(crate) mod test_support;
pub mod udp;
pub mod web;

pub use audit::{Gathered, query_cluster};
pub use coa::reevaluate_access;
pub use control::{ControlClient, ControlError};
pub use eap_tls::eap_certificate_checkup;
pub use settings::{audit_dir, control_socket_path, store_config};

use anyhow::Context;
use ironfence_config::Config;
use ironfence_store::Store;
use metrics::Metrics;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// State shared by every task of the daemon.
#[derive(Debug)]
pub struct Shared {
    conf_dir: PathBuf,
    config: RwLock<Arc<Config>>,
    pub store: Store,
    /// What the RADIUS path reads about a device, cached and kept current across the cluster
    /// (see `ironfence_store::node_cache`).
    pub nodes: Arc<ironfence_store::node_cache::CachedNodes>,
    pub metrics: Metrics,
    audit: audit::Audit,
    /// Read-only (degraded) mode of the database.
    pub db: db_health::DbHealth,
    /// Writes acknowledged while the database could not take them, until replayed.
    pub spool: spool::Spool,
    /// Ticks after every successful reload (the webservices supervisor listens).
    reloads: watch::Sender<u64>,
    /// In a cluster: the configuration version of the files the configuration in force was
    /// loaded from (what this server actually runs, reported to peers and `cluster status`;
    /// the files on disk may be newer until the next reload).
    running_version: RwLock<Option<ironfence_cluster::ConfigVersion>>,
    /// Member addresses the node-to-node API admits, and its refusal counters (exported in
    /// `/metrics`); the cluster supervisor keeps the list in step with cluster.conf.
    pub(crate) api_access: ironfence_webservices::AllowedPeers,
    /// keepalived and haproxy: which VIPs this server holds, readiness, their errors.
    pub front_door: front_door::FrontDoor,
    /// Bounds the location writes made at Access-Accept (`coa::location`).
    pub(crate) locations: coa::location::Recorder,
    /// 802.1X: the EAP conversation table and its configuration.
    pub(crate) eap: eap_service::EapService,
}

impl Shared {
    /// The configuration in force. Cheap: one read lock and an `Arc` clone.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The configuration version this server runs (cluster members; `None` on a single
    /// server or when it could not be computed at the last load).
    pub fn running_version(&self) -> Option<ironfence_cluster::ConfigVersion> {
        self.running_version
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the conf directory. On any error the running configuration stays in force and
    /// the diagnostics are returned (file:line and reason for each).
    pub fn reload(&self) -> Result<Vec<String>, String> {
        // Never load a configuration while a peer's bundle is being applied (a mix of old and
        // new files): readers share the apply lock.
        let _apply = ironfence_cluster::bundle::ApplyLock::shared(&self.conf_dir)
            .map_err(|e| format!("cannot take the configuration apply lock: {e}"))?;
        match Config::load(&self.conf_dir) {
            Ok(new) => {
                // First, as it may create conf/ssl files (a self-signed PKI, the ticket key):
                // the versions computed below cover them.
                self.eap.configure(&new);
                let old = self.config();
                let mut notes = settings::restart_needed(&old, &new);
                if new.is_cluster() {
                    let member = cluster::Member::of(&new);
                    match member.version(&new) {
                        Ok((version, ironfence_cluster::LocalChange::Detected { .. }, _)) => notes.push(format!(
                            "this server's configuration was changed locally (new version {}) and now differs \
                             from the cluster: publish it with `ironfence cluster sync --as-master` before the \
                             conflict resolution replaces it with the cluster's version",
                            version.short()
                        )),
                        Ok(_) => {}
                        Err(e) => notes.push(format!("cannot compute the configuration version: {e}")),
                    }
                }
                for n in &notes {
                    tracing::warn!("{n}");
                }
                let version = running_version_of(&new);
                *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
                *self
                    .running_version
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = version;
                self.reloads.send_modify(|n| *n += 1);
                self.metrics
                    .config_reloads
                    .get_or_create(&[("result", "ok")])
                    .inc();
                tracing::info!(conf_dir = %self.conf_dir.display(), "configuration reloaded");
                Ok(notes)
            }
            Err(diags) => {
                self.metrics
                    .config_reloads
                    .get_or_create(&[("result", "error")])
                    .inc();
                let text = diags.to_string();
                tracing::error!(conf_dir = %self.conf_dir.display(), "configuration refused, the running configuration stays in force:\n{text}");
                Err(text)
            }
        }
    }
}

/// A running daemon. Dropping it does not stop it; call [`Daemon::shutdown`].
#[derive(Debug)]
pub struct Daemon {
    pub shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    audit_task: Option<tokio::task::JoinHandle<()>>,
    pub auth_addr: std::net::SocketAddr,
    pub acct_addr: std::net::SocketAddr,
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The captive portal's listeners (single server; empty in a cluster or without a
    /// registration network).
    pub portal_addrs: Vec<std::net::SocketAddr>,
    /// The admin interface's HTTPS listener (single server with an admin account).
    pub admin_addr: Option<std::net::SocketAddr>,
}

impl Daemon {
    /// Loads the configuration, opens the store (running migrations) and starts every listener.
    pub async fn start(conf_dir: &Path) -> anyhow::Result<Daemon> {
        let (config, warnings) = Config::load_with_warnings(conf_dir)
            .map_err(|d| anyhow::anyhow!("configuration refused:\n{d}"))?;
        for w in warnings.iter() {
            tracing::warn!("{w}");
        }
        settings::prepare_state_dir(&config).with_context(|| {
            format!(
                "preparing the state directory {}",
                config.pf.general.state_dir.display()
            )
        })?;
        let store_cfg = settings::store_config(&config);
        // A cluster member starts even while its database is down (it must answer its peers'
        // questions during an outage, and RADIUS resumes as soon as the database is back); a
        // single server refuses to start without its database, with the reason.
        let deferred =
            config.is_cluster() && matches!(store_cfg, ironfence_store::StoreConfig::MySql { .. });
        let store = if deferred {
            Store::open_lazy(&store_cfg)
        } else {
            Store::open(&store_cfg).await
        }
        .with_context(|| format!("opening the {} store", settings::describe_store(&store_cfg)))?;
        let metrics = Metrics::new();
        let api_access = ironfence_webservices::AllowedPeers::default();
        if config.is_cluster() {
            metrics.export_api_access(api_access.clone());
        }
        let spool_path = settings::spool_path(&config);
        let spool = spool::Spool::open(
            &spool_path,
            settings::radius(&config).spool_max_bytes,
            metrics.spool.clone(),
        )
        .context("opening the accounting spool")?;
        let (audit, audit_rx) = audit::Audit::start(&settings::audit(&config), &metrics)?;
        if let Some(stats) = audit.file_stats() {
            metrics.export_audit(stats);
        }
        if config.is_cluster() {
            // The first server creates the cluster CA (part of the synchronized files) before
            // its version is taken, so the version it reports covers what it serves with.
            if let Err(e) = cluster::supervisor::ensure_cluster_ca(&config) {
                tracing::warn!(error = %e, "cannot create the cluster CA yet");
            }
        }
        // Before the version is taken: it may create conf/ssl files the version covers.
        let eap = eap_service::EapService::default();
        eap.configure(&config);
        let running_version = running_version_of(&config);
        let nodes = node_cache::new(store.clone(), &node_cache::settings_from(&config));
        node_cache::export_metrics(&metrics, nodes.clone());
        let shared = Arc::new(Shared {
            nodes,
            conf_dir: conf_dir.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
            store,
            metrics,
            audit,
            reloads: watch::channel(0).0,
            db: db_health::DbHealth::default(),
            running_version: RwLock::new(running_version),
            api_access,
            spool,
            front_door: front_door::FrontDoor::default(),
            locations: coa::location::Recorder::default(),
            eap,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        if deferred {
            tokio::spawn(migrate_when_reachable(
                shared.store.clone(),
                settings::describe_store(&store_cfg),
            ));
        }
        let audit_task = audit_rx.map(|rx| tokio::spawn(audit::db_writer(shared.clone(), rx)));

        let cfg = shared.config();
        let listeners = radius::Listeners::bind(&cfg)?;
        let auth_addr = listeners.auth.local_addr()?;
        let acct_addr = listeners.acct.local_addr()?;
        let mut tasks = listeners.spawn(shared.clone(), shutdown_rx.clone(), &cfg);
        // "RADIUS answers" for the VIP readiness: every receive task runs and, in a cluster,
        // this server answers its own Status-Server on the load balancer's backend port.
        let handles: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let probe = match radius::self_probe::target(&cfg) {
            Some((to, secret)) => {
                let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
                tasks.push(tokio::spawn(radius::self_probe::run(
                    to,
                    secret,
                    answered.clone(),
                    shutdown_rx.clone(),
                )));
                front_door::RadiusProbe::TasksAndAnswered(handles, answered)
            }
            None => front_door::RadiusProbe::Tasks(handles),
        };
        shared.front_door.set_radius_probe(probe);

        // The registration networks' DNS responder (issue 10): needs no database.
        tasks.extend(dns::start(&shared, &shutdown_rx).await);

        let metrics_addr = match settings::metrics_listen(&cfg) {
            Some(addr) => {
                let (addr, task) = http::serve(shared.clone(), addr, shutdown_rx.clone()).await?;
                tasks.push(task);
                Some(addr)
            }
            None => None,
        };
        tasks.push(tokio::spawn(eap_service::run_expiry(
            shared.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(spool::run_replay(
            shared.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(node_cache::run_poller(
            shared.nodes.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(db_health::run_monitor(
            shared.clone(),
            shutdown_rx.clone(),
        )));
        // DHCP on the registration/isolation networks (networks.conf, dhcpd = enabled).
        tasks.extend(dhcp::spawn(&shared, &shutdown_rx));
        if cfg.is_cluster() {
            tasks.push(tokio::spawn(cluster::supervisor::supervise(
                shared.clone(),
                shared.reloads.subscribe(),
                shutdown_rx.clone(),
            )));
            tasks.push(tokio::spawn(cluster::run_conflict_checks(
                shared.clone(),
                shutdown_rx.clone(),
            )));
            // This server's web listener (haproxy's backend): a failure to bind is logged, the
            // daemon keeps serving RADIUS and the API.
            if let Some(ip) = cfg.this_server().and_then(|s| s.management_ip) {
                let addr = std::net::SocketAddr::from((ip, cfg.pf.ports.web));
                match front_door::web::serve(shared.clone(), addr, shutdown_rx.clone()).await {
                    Ok((_, task)) => tasks.push(task),
                    Err(e) => {
                        tracing::error!(error = %e, "the web listener (/health) is not available")
                    }
                }
            }
            if front_door::wanted(&cfg) {
                tasks.push(tokio::spawn(front_door::run(
                    shared.clone(),
                    shared.reloads.subscribe(),
                    shutdown_rx.clone(),
                )));
            }
        }
        // Captive portal: a single server binds its registration networks itself; a cluster
        // serves it on the web listener above, behind haproxy.
        let mut portal_addrs = Vec::new();
        if !cfg.is_cluster() {
            let started = portal::start(shared.clone(), shutdown_rx.clone()).await?;
            portal_addrs = started.addrs;
            tasks.extend(started.tasks);
        }
        // The admin interface: a single server binds [admin] listen:[ports] admin itself (HTTPS);
        // a cluster serves it on the web listener above. A failure is logged, not fatal.
        let mut admin_addr = None;
        if !cfg.is_cluster() {
            match admin::listener::start(shared.clone(), shutdown_rx.clone()).await {
                Ok(Some((addr, task))) => {
                    admin_addr = Some(addr);
                    tasks.push(task);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "the admin interface is not available"),
            }
        }
        let control_path = settings::control_socket_path(&cfg);
        tasks.push(control::serve(
            shared.clone(),
            &control_path,
            shutdown_rx.clone(),
        )?);
        tracing::info!(
            auth = %auth_addr, acct = %acct_addr,
            metrics = ?metrics_addr,
            control = %control_path.display(),
            store = shared.store.backend_name(),
            identity = %cfg.identity,
            cluster = cfg.is_cluster(),
            switches = cfg.switches.switches().len(),
            "ironfence ready"
        );
        Ok(Daemon {
            shared,
            shutdown_tx,
            tasks,
            audit_task,
            auth_addr,
            acct_addr,
            metrics_addr,
            portal_addrs,
            admin_addr,
        })
    }

    /// Graceful shutdown: stop receiving, let requests in flight finish (up to a few seconds),
    /// flush the audit queue, close the store.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        // Joins the file writer thread (it fsyncs and indexes the open segment): off the
        // runtime's workers.
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.audit.close()).await;
        if let Some(task) = self.audit_task {
            let _ = task.await;
        }
        self.shared.store.close().await;
        tracing::info!("stopped");
    }
}

/// The version of the configuration files `config` was just loaded from (cluster members).
fn running_version_of(config: &Config) -> Option<ironfence_cluster::ConfigVersion> {
    if !config.is_cluster() {
        return None;
    }
    match cluster::Member::of(config).version(config) {
        Ok((version, _, _)) => Some(version),
        Err(e) => {
            tracing::warn!(error = %e, "cannot compute the configuration version in force");
            None
        }
    }
}

/// Applies the schema migrations as soon as the database answers (cluster members start
/// before their database); says once, then every minute, that it is still waiting.
async fn migrate_when_reachable(store: Store, what: String) {
    let started = std::time::Instant::now();
    let mut last_log: Option<std::time::Instant> = None;
    loop {
        match store.migrate().await {
            Ok(()) => {
                tracing::info!(store = %what, after_s = started.elapsed().as_secs(), "database reachable, schema up to date");
                return;
            }
            Err(e) => {
                if last_log.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
                    tracing::warn!(store = %what, error = %e, "database not reachable yet: RADIUS requests that need it are dropped until it is");
                    last_log = Some(std::time::Instant::now());
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}

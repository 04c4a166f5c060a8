//! The one place where the daemon reads typed configuration values, so that the rest of the
//! crate works with plain runtime settings.

use ironfence_config::{Config, DatabaseConf};
use ironfence_store::StoreConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// RADIUS listener settings (`pf.conf [radius]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RadiusSettings {
    pub listen: Ipv4Addr,
    pub auth_port: u16,
    pub acct_port: u16,
    pub recv_buffer: usize,
    pub reply_cache_ttl: Duration,
    pub reply_cache_entries: usize,
    pub max_in_flight: usize,
    pub audit_log: bool,
    pub limit_proxy_state: bool,
    pub spool_max_bytes: u64,
}

pub(crate) fn radius(cfg: &Config) -> RadiusSettings {
    let r = &cfg.pf.radius;
    RadiusSettings {
        listen: match cfg.radius_listen() {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        },
        auth_port: r.auth_port,
        acct_port: r.acct_port,
        recv_buffer: r.recv_buffer,
        reply_cache_ttl: r.reply_cache_ttl,
        // Bounded memory (~130 octets per entry, ~34 MB): the full ttl holds up to ~50k
        // requests/s; beyond that the oldest replies go first, which still covers switches'
        // usual retransmission timers (2-3 s) up to ~100k requests/s.
        reply_cache_entries: 1 << 18,
        max_in_flight: r.max_in_flight.max(1),
        audit_log: r.audit_log != ironfence_config::AuditLogMode::Disabled,
        limit_proxy_state: r.limit_proxy_state,
        spool_max_bytes: r.accounting_spool_max_size as u64,
    }
}

/// The audit log (`pf.conf [radius] audit_log*`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditSettings {
    pub mode: ironfence_config::AuditLogMode,
    pub dir: PathBuf,
    pub limits: ironfence_audit::Limits,
}

pub(crate) fn audit(cfg: &Config) -> AuditSettings {
    let r = &cfg.pf.radius;
    let us = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    AuditSettings {
        mode: r.audit_log,
        dir: audit_dir(cfg),
        limits: ironfence_audit::Limits {
            segment_size: r
                .audit_log_segment_size
                .min(ironfence_audit::log::MAX_SEGMENT_SIZE),
            segment_age_us: us(r.audit_log_segment_age),
            max_age_us: us(r.audit_log_max_age),
            max_size: r.audit_log_max_size,
        },
    }
}

/// This server's audit log: `<state_dir>/audit/` (read directly by `ironfence audit`).
pub fn audit_dir(cfg: &Config) -> PathBuf {
    cfg.pf.general.state_dir.join(ironfence_audit::DIR_NAME)
}

/// Which store the configuration selects (`pf.conf [database]`).
pub fn store_config(cfg: &Config) -> StoreConfig {
    match &cfg.pf.database {
        DatabaseConf::Sqlite { path } => StoreConfig::Sqlite { path: path.clone() },
        DatabaseConf::Mysql(m) => StoreConfig::MySql {
            host: m.host.clone(),
            port: m.port,
            user: m.user.clone(),
            password: m.pass.expose().to_string(),
            database: m.db.clone(),
        },
    }
}

pub(crate) fn describe_store(s: &StoreConfig) -> String {
    match s {
        StoreConfig::Sqlite { path } => format!("SQLite database {}", path.display()),
        StoreConfig::MySql {
            host,
            port,
            database,
            ..
        } => format!("MariaDB database {database} on {host}:{port}"),
    }
}

pub(crate) fn metrics_listen(cfg: &Config) -> Option<SocketAddr> {
    cfg.metrics_listen()
}

/// The local accounting spool: `<state_dir>/accounting.spool`.
pub(crate) fn spool_path(cfg: &Config) -> PathBuf {
    cfg.pf.general.state_dir.join(crate::spool::FILE_NAME)
}

/// The daemon's control socket: `<state_dir>/control/ironfence.sock` (the directory is 0700).
pub fn control_socket_path(cfg: &Config) -> PathBuf {
    cfg.pf
        .general
        .state_dir
        .join("control")
        .join("ironfence.sock")
}

/// Creates the state directory (0750), or tightens it to 0750 at most: it holds the node
/// database, keys and the control socket. On a cluster member with a `mysql` account
/// (Galera), root's state directory gets group `mysql` and group search (g+x) so mariadbd can
/// reach `<state_dir>/mysql`; every file inside stays private to root. Called by `serve` and by
/// the Galera commands before they create anything under it.
pub fn prepare_state_dir(cfg: &Config) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = &cfg.pf.general.state_dir;
    let mode = ironfence_core::fsutil::tighten_dir_mode(dir, 0o750)?;
    if cfg.is_cluster()
        && running_as_root()
        && let Ok(mysql) = crate::galera::files::mysql_account()
    {
        std::os::unix::fs::chown(dir, None, Some(mysql.gid))?;
        if mode & 0o010 == 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o010))?;
        }
    }
    Ok(())
}

/// Whether this process runs as root (the owner of files it creates is then root).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Settings that a reload cannot change in a running daemon: reported so the operator knows.
pub(crate) fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    let (o, n) = (radius(old), radius(new));
    if (
        o.listen,
        o.auth_port,
        o.acct_port,
        o.recv_buffer,
        o.max_in_flight,
        o.spool_max_bytes,
    ) != (
        n.listen,
        n.auth_port,
        n.acct_port,
        n.recv_buffer,
        n.max_in_flight,
        n.spool_max_bytes,
    ) {
        notes.push(
            "pf.conf [radius] listen/ports/buffers/accounting_spool_max_size changed: restart `ironfence serve` to apply"
                .to_string(),
        );
    }
    if audit(old) != audit(new) {
        notes.push(
            "pf.conf [radius] audit_log (mode, retention or rotation) changed: restart `ironfence serve` to apply (a change to disabled applies at once)"
                .to_string(),
        );
    }
    // The DHCP listeners are built at start (server::dhcp).
    if old.served_networks() != new.served_networks() {
        notes.push(
            "networks.conf (or a registration interface) changed: restart `ironfence serve` to apply it to DHCP"
                .to_string(),
        );
    }
    if old.pf.database != new.pf.database {
        notes.push("pf.conf [database] changed: restart `ironfence serve` to apply".to_string());
    }
    if metrics_listen(old) != metrics_listen(new) {
        notes.push(
            "pf.conf [metrics] listen changed: restart `ironfence serve` to apply".to_string(),
        );
    }
    notes.extend(crate::dns::restart_needed(old, new));
    notes
}

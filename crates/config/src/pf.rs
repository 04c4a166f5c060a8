//! `pf.conf`: server-wide settings (general, database, RADIUS, metrics, cluster plumbing,
//! interfaces).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::FileDiags;
use crate::ini::{Document, Entry, Section};
use crate::value::{parse_bool, parse_duration, parse_size, secret_weakness, suggestion};

mod dns;
pub use dns::DnsConf;

/// A password or shared secret: compared and used, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// Everything in pf.conf that ironfence uses. `Default` is the built-in defaults
/// (PacketFence's `pf.conf.defaults` equivalent); pf.conf overrides them key by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PfConf {
    pub general: GeneralConf,
    pub database: DatabaseConf,
    pub radius: RadiusConf,
    pub metrics: MetricsConf,
    pub webservices: WebservicesConf,
    pub active_active: ActiveActiveConf,
    pub maintenance: MaintenanceConf,
    pub ports: PortsConf,
    /// `[admin]`: the single server's admin listener (crates/config/src/admin.rs).
    pub admin: crate::admin::AdminListenConf,
    /// `[interface <name>]` sections in file order.
    pub interfaces: Vec<InterfaceConf>,
    /// The registration-network DNS responder: `[fencing]` pass-through and `[dns]` keys.
    pub dns: DnsConf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralConf {
    /// Overrides the OS hostname as the server's identity (its `[<hostname>]` section in
    /// cluster.conf); `IRONFENCE_HOSTNAME` overrides this key in turn (see
    /// [`crate::resolve_identity`]). pf.conf is shared by every cluster member, so in a cluster
    /// this names them all alike: checkup warns.
    pub hostname: Option<String>,
    pub domain: Option<String>,
    /// Where ironfence keeps its state (SQLite database, runtime files). Resolved: a relative
    /// `state_dir` in pf.conf is relative to the *parent* of the configuration directory (the
    /// install root, like PacketFence's `/usr/local/pf`), so `conf/` + `state_dir = state`
    /// gives `state/` next to `conf/`.
    pub state_dir: PathBuf,
}

impl Default for GeneralConf {
    fn default() -> Self {
        GeneralConf {
            hostname: None,
            domain: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        }
    }
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/ironfence";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConf {
    /// `type = sqlite`: a single-server database file.
    Sqlite {
        /// Resolved: a relative `path` is relative to `state_dir`; default
        /// `<state_dir>/ironfence.db`.
        path: PathBuf,
    },
    /// `type = mysql`: MariaDB/MySQL (PacketFence's schema host).
    Mysql(MysqlConf),
}

impl Default for DatabaseConf {
    fn default() -> Self {
        DatabaseConf::Sqlite {
            path: Path::new(DEFAULT_STATE_DIR).join("ironfence.db"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlConf {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: Secret,
    pub db: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusConf {
    /// Address the RADIUS sockets bind to.
    pub listen: IpAddr,
    pub auth_port: u16,
    pub acct_port: u16,
    /// In a cluster: the ports of this server's load-balancer backend listener (on its
    /// management_ip), where other members forward the requests they received on a VIP.
    pub backend_auth_port: u16,
    pub backend_acct_port: u16,
    /// Socket receive buffer (SO_RCVBUF) in bytes.
    pub recv_buffer: usize,
    /// How long a reply is kept to answer retransmissions identically.
    pub reply_cache_ttl: Duration,
    /// Requests processed concurrently before new ones are dropped (counted).
    pub max_in_flight: usize,
    /// Where the RADIUS audit log goes (`audit_log = file | database | disabled`).
    pub audit_log: AuditLogMode,
    /// Closed audit segments whose newest record is older than this are deleted.
    pub audit_log_max_age: Duration,
    /// The oldest audit segments are deleted while the log is larger than this (bytes).
    pub audit_log_max_size: u64,
    /// An audit segment is closed (and indexed) at this size (bytes) ...
    pub audit_log_segment_size: u64,
    /// ... or at this age.
    pub audit_log_segment_age: Duration,
    /// Limit Proxy-State attributes (BlastRADIUS mitigation).
    pub limit_proxy_state: bool,
    /// Largest size of the local accounting spool (`<state_dir>/accounting.spool`), in bytes.
    pub accounting_spool_max_size: usize,
    /// Entries (known and unknown MACs) of the per-server node read cache.
    pub node_cache_entries: usize,
    /// The node cache is used only while its last poll of the change log started less than
    /// this ago; a change made on any server is seen by all of them within this bound (and the
    /// CoA sender waits this long). 200 ms to 1 s.
    pub node_cache_max_staleness: Duration,
}

impl Default for RadiusConf {
    fn default() -> Self {
        RadiusConf {
            listen: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            auth_port: 1812,
            acct_port: 1813,
            backend_auth_port: 18120,
            backend_acct_port: 18130,
            recv_buffer: 8 << 20,
            reply_cache_ttl: Duration::from_secs(5),
            max_in_flight: 4096,
            audit_log: AuditLogMode::File,
            audit_log_max_age: Duration::from_secs(30 * 86_400),
            audit_log_max_size: 4 << 30,
            audit_log_segment_size: 64 << 20,
            audit_log_segment_age: Duration::from_secs(3600),
            limit_proxy_state: true,
            accounting_spool_max_size: 256 << 20,
            node_cache_entries: 262_144,
            node_cache_max_staleness: Duration::from_millis(500),
        }
    }
}

/// Where the RADIUS audit log is written (`[radius] audit_log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLogMode {
    /// Each server's own append-only files under `<state_dir>/audit/` (the default;
    /// `enabled` is accepted as a synonym so that older configurations keep working).
    File,
    /// One row per request in the database's `radius_audit_log` table (PacketFence's way:
    /// replicated by Galera; kept to measure what that costs).
    Database,
    Disabled,
}

impl AuditLogMode {
    /// `file`/`enabled` (and the other true booleans), `database`, `disabled` (and the other
    /// false booleans).
    pub fn parse(s: &str) -> Option<AuditLogMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "file" => Some(AuditLogMode::File),
            "database" | "db" => Some(AuditLogMode::Database),
            other => parse_bool(other).map(|on| {
                if on {
                    AuditLogMode::File
                } else {
                    AuditLogMode::Disabled
                }
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConf {
    /// Prometheus endpoint; `None` (an empty `listen =`) disables it.
    pub listen: Option<SocketAddr>,
}

pub const DEFAULT_METRICS_PORT: u16 = 9101;

impl Default for MetricsConf {
    fn default() -> Self {
        MetricsConf {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))),
        }
    }
}

/// Credentials of the cluster web services (configuration sync between members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebservicesConf {
    pub user: String,
    pub pass: Secret,
    pub port: u16,
}

impl Default for WebservicesConf {
    fn default() -> Self {
        WebservicesConf {
            user: String::new(),
            pass: Secret::default(),
            port: 9090,
        }
    }
}

/// `[active_active]`: clustering secrets and VRRP settings (PacketFence's key names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveActiveConf {
    /// MariaDB Galera state-transfer (SST) account. Required in a cluster.
    pub galera_replication_username: Option<String>,
    /// Password of the Galera replication account. Required (non-empty) in a cluster.
    pub galera_replication_password: Option<Secret>,
    /// `password`: keepalived's VRRP shared key (PacketFence's "Shared KEY" in
    /// Configuration/Clustering; PacketFence's default is `1234`). keepalived's `PASS`
    /// authentication sends it in clear text and uses only its first 8 characters: it keeps
    /// foreign VRRP speakers out of the VIP election, it is not a cryptographic protection.
    pub password: Option<Secret>,
    /// `virtual_router_id`: the VRRP router id (1-255) of the cluster's VIPs. Default 50, as in
    /// PacketFence. Must differ from any other VRRP group on the same layer-2 networks.
    pub virtual_router_id: u8,
    /// HAProxy statistics dashboard account (PacketFence hard-codes `admin:packetfence` in
    /// haproxy.conf; ironfence reads it from here). The dashboard is meant to be enabled only
    /// when both are set.
    pub haproxy_stats_user: Option<String>,
    pub haproxy_stats_pass: Option<Secret>,
    /// `vrrp_version`: 3 (the default: centisecond adverts, no authentication in keepalived
    /// 2.2.7, adverts accepted only from the configured unicast peers) or 2 (`auth_type PASS`
    /// with `password`, whole-second adverts).
    pub vrrp_version: VrrpVersion,
    /// `vrrp_advert_interval`: keepalived `advert_int`, in centiseconds. Default 20 (0.2 s) with
    /// VRRPv3, 100 (1 s) with VRRPv2 (whole seconds only).
    pub vrrp_advert_centis: Option<u32>,
}

/// The VRRP protocol version keepalived speaks (`[active_active] vrrp_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VrrpVersion {
    V2,
    #[default]
    V3,
}

impl VrrpVersion {
    /// The advert interval used when `vrrp_advert_interval` is not set, in centiseconds.
    pub fn default_advert_centis(self) -> u32 {
        match self {
            VrrpVersion::V2 => 100,
            VrrpVersion::V3 => 20,
        }
    }
}

/// `[ports]`: the TCP ports of this server's own web listener and of the cluster's admin
/// front door (haproxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortsConf {
    /// `web`: the plain-HTTP listener on each server's management_ip (`/health`, later the
    /// portal and admin pages); haproxy forwards to it. Default 8080.
    pub web: u16,
    /// `admin`: the admin interface haproxy serves on the management VIP. Default 1443.
    pub admin: u16,
    /// `portal_http` / `portal_https`: the captive portal's ports on the registration networks
    /// of a single server (default 80 / 443; tests use others).
    pub portal_http: u16,
    pub portal_https: u16,
}

impl Default for PortsConf {
    fn default() -> Self {
        PortsConf {
            web: 8080,
            admin: 1443,
            portal_http: 80,
            portal_https: 443,
        }
    }
}

/// PacketFence's default `active_active.virtual_router_id`.
pub const DEFAULT_VIRTUAL_ROUTER_ID: u8 = 50;

impl Default for ActiveActiveConf {
    fn default() -> Self {
        ActiveActiveConf {
            galera_replication_username: None,
            galera_replication_password: None,
            password: None,
            virtual_router_id: DEFAULT_VIRTUAL_ROUTER_ID,
            haproxy_stats_user: None,
            haproxy_stats_pass: None,
            vrrp_version: VrrpVersion::default(),
            vrrp_advert_centis: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceConf {
    /// How often cluster configuration versions are compared; `None` (`0`) disables the check.
    pub cluster_check_interval: Option<Duration>,
}

impl Default for MaintenanceConf {
    fn default() -> Self {
        MaintenanceConf {
            cluster_check_interval: Some(Duration::from_secs(60)),
        }
    }
}

/// A network interface type (pf.conf `type=`, comma-separated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceType {
    Management,
    HighAvailability,
    Internal,
    Portal,
    Radius,
    DhcpListener,
    Monitor,
    Dhcp,
    Dns,
    Other,
}

impl InterfaceType {
    /// The pf.conf spelling (`management`, `high-availability`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceType::Management => "management",
            InterfaceType::HighAvailability => "high-availability",
            InterfaceType::Internal => "internal",
            InterfaceType::Portal => "portal",
            InterfaceType::Radius => "radius",
            InterfaceType::DhcpListener => "dhcp-listener",
            InterfaceType::Monitor => "monitor",
            InterfaceType::Dhcp => "dhcp",
            InterfaceType::Dns => "dns",
            InterfaceType::Other => "other",
        }
    }

    fn parse(s: &str) -> Option<InterfaceType> {
        Some(match s {
            "management" | "managed" => InterfaceType::Management,
            "high-availability" => InterfaceType::HighAvailability,
            "internal" => InterfaceType::Internal,
            "portal" => InterfaceType::Portal,
            "radius" => InterfaceType::Radius,
            "dhcp-listener" | "dhcplistener" => InterfaceType::DhcpListener,
            "monitor" => InterfaceType::Monitor,
            "dhcp" => InterfaceType::Dhcp,
            "dns" => InterfaceType::Dns,
            "other" => InterfaceType::Other,
            _ => return None,
        })
    }
}

const INTERFACE_TYPES: &[&str] = &[
    "management",
    "high-availability",
    "internal",
    "portal",
    "radius",
    "dhcp-listener",
    "monitor",
    "dhcp",
    "dns",
    "other",
];

/// `[interface <name>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConf {
    /// Interface name, e.g. `eth0`, `eth1.2`.
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub mask: Option<Ipv4Addr>,
    pub types: Vec<InterfaceType>,
    /// `vlan`, `inline`, `inlinel2`, `inlinel3`.
    pub enforcement: Option<String>,
}

impl InterfaceConf {
    /// An interface with only its name set.
    pub fn named(name: impl Into<String>) -> InterfaceConf {
        InterfaceConf {
            name: name.into(),
            ip: None,
            mask: None,
            types: Vec::new(),
            enforcement: None,
        }
    }

    /// Whether `type=` contains `management`.
    pub fn is_management(&self) -> bool {
        self.types.contains(&InterfaceType::Management)
    }

    /// `type=` as written in pf.conf: `management,high-availability`.
    pub fn types_string(&self) -> String {
        let types: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
        types.join(",")
    }

    /// Overlays `other` key by key: every key `other` sets (ip, mask, type, enforcement)
    /// replaces this one's; keys it leaves out are kept. This is how a cluster.conf
    /// `[<host> interface X]` section applies to pf.conf's `[interface X]`.
    pub fn overlay(&mut self, other: &InterfaceConf) {
        if other.ip.is_some() {
            self.ip = other.ip;
        }
        if other.mask.is_some() {
            self.mask = other.mask;
        }
        if !other.types.is_empty() {
            self.types.clone_from(&other.types);
        }
        if other.enforcement.is_some() {
            self.enforcement.clone_from(&other.enforcement);
        }
    }
}

/// `base` (pf.conf's interfaces) overlaid by `over` (cluster.conf's for one host or for
/// CLUSTER): interfaces of both, in `base` order then the ones only `over` defines, each
/// overlaid key by key ([`InterfaceConf::overlay`]).
pub(crate) fn overlay_interfaces(
    base: &[InterfaceConf],
    over: &[InterfaceConf],
) -> Vec<InterfaceConf> {
    let mut out = base.to_vec();
    for o in over {
        match out.iter_mut().find(|i| i.name == o.name) {
            Some(i) => i.overlay(o),
            None => out.push(o.clone()),
        }
    }
    out
}

const GENERAL_KEYS: &[&str] = &["hostname", "domain", "state_dir"];
const DATABASE_KEYS: &[&str] = &["type", "path", "host", "port", "user", "pass", "db"];
const RADIUS_KEYS: &[&str] = &[
    "listen",
    "auth_port",
    "backend_auth_port",
    "backend_acct_port",
    "acct_port",
    "recv_buffer",
    "reply_cache_ttl",
    "max_in_flight",
    "audit_log",
    "audit_log_max_age",
    "audit_log_max_size",
    "audit_log_segment_size",
    "audit_log_segment_age",
    "limit_proxy_state",
    "accounting_spool_max_size",
    "node_cache_entries",
    "node_cache_max_staleness",
];
const METRICS_KEYS: &[&str] = &["listen"];
const WEBSERVICES_KEYS: &[&str] = &["user", "pass", "port"];
const ACTIVE_ACTIVE_KEYS: &[&str] = &[
    "galera_replication_username",
    "galera_replication_password",
    "password",
    "virtual_router_id",
    "haproxy_stats_user",
    "haproxy_stats_pass",
    "vrrp_version",
    "vrrp_advert_interval",
];
const PORTS_KEYS: &[&str] = &["web", "admin", "portal_http", "portal_https"];
const ADMIN_KEYS: &[&str] = &["listen"];
const MAINTENANCE_KEYS: &[&str] = &["cluster_check_interval"];
const INTERFACE_KEYS: &[&str] = &["ip", "mask", "type", "enforcement"];
/// PacketFence interface keys accepted without a warning (not used yet).
const INTERFACE_PF_KEYS: &[&str] = &[
    "ipv6_address",
    "ipv6_prefix",
    "vip",
    "nat_enabled",
    "split_network",
    "reg_network",
    "dhcpd_enabled",
    "coa",
    "additional_listening_daemons",
];
const SECTIONS: &[&str] = &[
    "general",
    "database",
    "radius",
    "metrics",
    "webservices",
    "active_active",
    "maintenance",
    "ports",
    "admin",
    "fencing",
    "dns",
];
/// PacketFence pf.conf sections ironfence does not use (a copied pf.conf gets a softer warning).
const PF_ONLY_SECTIONS: &[&str] = &[
    "alerting",
    "advanced",
    "captive_portal",
    "database_advanced",
    "dns_configuration",
    "expire",
    "fingerbank_device_change",
    "guests_admin_registration",
    "inline",
    "monitoring",
    "network",
    "node_import",
    "parking",
    "pfdhcp",
    "provisioning",
    "radius_configuration",
    "registration",
    "services",
    "snmp_traps",
    "trapping",
];

/// Well-known example passwords: the clustering guide's Galera password and web services
/// credentials (`packet`/`fence`), PacketFence's keepalived key (`1234`) and HAProxy statistics
/// account (`admin:packetfence`), and the usual suspects. `secret_weakness` adds `changeme`,
/// `packetfence`, `secret`, ….
const DEFAULT_PASSWORDS: &[&str] = &[
    "aMuchMoreSecurePassword",
    "password",
    "admin",
    "pf",
    "packet",
    "fence",
    "1234",
    "12345678",
];

/// Well-known default user names (the guide's `packet`, and `admin`).
const DEFAULT_USERS: &[&str] = &["packet", "admin", "root"];

impl PfConf {
    /// Builds pf.conf from its document (`None`: the file is absent → defaults). `root` is the
    /// directory relative `state_dir` values are resolved against. `cluster` says whether
    /// cluster.conf defines a cluster: the cluster secrets are then required (errors when empty)
    /// instead of merely checked.
    pub(crate) fn from_document(
        doc: Option<&Document>,
        root: &Path,
        cluster: bool,
        d: &mut FileDiags<'_>,
    ) -> PfConf {
        let mut pf = PfConf {
            general: GeneralConf {
                state_dir: root.join(DEFAULT_STATE_DIR),
                ..GeneralConf::default()
            },
            ..PfConf::default()
        };
        let empty;
        let doc = match doc {
            Some(doc) => doc,
            None if cluster => {
                // No pf.conf in a cluster: still require the cluster secrets.
                empty = Document::new(d.file);
                &empty
            }
            None => {
                pf.database = DatabaseConf::Sqlite {
                    path: pf.general.state_dir.join("ironfence.db"),
                };
                return pf;
            }
        };
        for (name, line) in doc.sections() {
            if SECTIONS.contains(&name) {
                continue;
            }
            if let Some(ifname) = name.strip_prefix("interface ") {
                let s = doc.section(name).expect("listed section");
                let ifc = interface(ifname.trim(), s, d);
                if ifc.ip.is_none() || ifc.mask.is_none() {
                    d.error(
                        Some(s.line()),
                        Some(name),
                        format!("incomplete network information for interface {}: set both ip= and mask=", ifc.name),
                    );
                }
                pf.interfaces.push(ifc);
            } else if PF_ONLY_SECTIONS.contains(&name) {
                d.warning(Some(line), Some(name), format!("[{name}] is a PacketFence section ironfence does not use: it is ignored (remove it to silence this warning)"));
            } else {
                d.warning(
                    Some(line),
                    Some(name),
                    format!(
                        "unknown section [{name}]{}: it is ignored; rename or remove it",
                        suggestion(name, SECTIONS.iter().copied())
                    ),
                );
            }
        }
        check_interfaces(&pf.interfaces, doc, d);

        let mut r = Reader::new(doc, "general", GENERAL_KEYS, d);
        pf.general.hostname = r.hostname("hostname");
        pf.general.domain = r.hostname("domain");
        if let Some(dir) = r.nonempty("state_dir") {
            pf.general.state_dir = root.join(dir);
        }

        let mut r = Reader::new(doc, "database", DATABASE_KEYS, d);
        let kind = r.nonempty("type");
        let path = r.nonempty("path").map(|p| pf.general.state_dir.join(p));
        let host = r.nonempty("host");
        let port = r.parsed("port", "a TCP port (1-65535)", parse_port);
        let user = r.nonempty("user");
        let pass = r.str("pass");
        let db = r.nonempty("db");
        pf.database = match kind.as_deref() {
            None | Some("sqlite") => DatabaseConf::Sqlite {
                path: path.unwrap_or_else(|| pf.general.state_dir.join("ironfence.db")),
            },
            Some("mysql") => {
                let pass = Secret::new(pass.unwrap_or_default());
                if pass.is_empty() {
                    r.warn_at(
                        "pass",
                        "the MySQL password is empty: set pass= to the database user's password",
                    );
                }
                DatabaseConf::Mysql(MysqlConf {
                    host: host.unwrap_or_else(|| "localhost".to_string()),
                    port: port.unwrap_or(3306),
                    user: user.unwrap_or_else(|| "pf".to_string()),
                    pass,
                    db: db.unwrap_or_else(|| "pf".to_string()),
                })
            }
            Some(other) => {
                r.error_at("type", format!("database type {other:?} is not supported: write type = sqlite (single server) or type = mysql"));
                DatabaseConf::default()
            }
        };

        let mut r = Reader::new(doc, "radius", RADIUS_KEYS, d);
        let rc = &mut pf.radius;
        if let Some(ip) = r.parsed(
            "listen",
            "an IP address to bind (e.g. 0.0.0.0 or 127.0.0.1; ports are auth_port/acct_port)",
            |s| s.parse::<IpAddr>().ok(),
        ) {
            rc.listen = ip;
            // In a cluster the sockets bind this server's cluster.conf management_ip
            // (Config::radius_listen): pf.conf is shared by every member, so one address here
            // could not be right for all of them, and it is not used.
            if cluster {
                r.warn_at("listen", format!("listen = {ip} is ignored because cluster.conf defines a cluster: RADIUS binds each server's own management_ip (cluster.conf [<hostname>] management_ip), ports auth_port/acct_port; remove listen= from [radius] (pf.conf is shared by every server), and point switches at the servers' management_ip"));
            }
        }
        rc.auth_port = r
            .parsed("auth_port", "a UDP port (1-65535)", parse_port)
            .unwrap_or(rc.auth_port);
        rc.acct_port = r
            .parsed("acct_port", "a UDP port (1-65535)", parse_port)
            .unwrap_or(rc.acct_port);
        rc.backend_auth_port = r
            .parsed("backend_auth_port", "a UDP port (1-65535)", parse_port)
            .unwrap_or(rc.backend_auth_port);
        rc.backend_acct_port = r
            .parsed("backend_acct_port", "a UDP port (1-65535)", parse_port)
            .unwrap_or(rc.backend_acct_port);
        rc.recv_buffer = r
            .parsed(
                "recv_buffer",
                "a size in bytes (e.g. 8388608 or 8M)",
                parse_size,
            )
            .unwrap_or(rc.recv_buffer);
        rc.reply_cache_ttl = r
            .parsed(
                "reply_cache_ttl",
                "a duration (e.g. 5s, 30, 1m)",
                parse_duration,
            )
            .unwrap_or(rc.reply_cache_ttl);
        rc.max_in_flight = r
            .parsed("max_in_flight", "a positive number of requests", |s| {
                s.parse::<usize>().ok().filter(|n| *n > 0)
            })
            .unwrap_or(rc.max_in_flight);
        rc.audit_log = r
            .parsed(
                "audit_log",
                "file (the default; enabled is the same), database or disabled",
                AuditLogMode::parse,
            )
            .unwrap_or(rc.audit_log);
        rc.audit_log_max_age = r
            .parsed(
                "audit_log_max_age",
                "a duration of at least a minute (e.g. 30D, 1W, 12h)",
                |s| parse_duration(s).filter(|d| d.as_secs() >= 60),
            )
            .unwrap_or(rc.audit_log_max_age);
        rc.audit_log_max_size = r
            .parsed(
                "audit_log_max_size",
                "a size of at least 1M (e.g. 4G, 500M)",
                |s| parse_size(s).filter(|n| *n >= 1 << 20),
            )
            .map(|n| n as u64)
            .unwrap_or(rc.audit_log_max_size);
        rc.audit_log_segment_size = r
            .parsed(
                "audit_log_segment_size",
                "a size between 64k and 1G (e.g. 64M)",
                |s| parse_size(s).filter(|n| (64 << 10..=1 << 30).contains(n)),
            )
            .map(|n| n as u64)
            .unwrap_or(rc.audit_log_segment_size);
        rc.audit_log_segment_age = r
            .parsed(
                "audit_log_segment_age",
                "a duration of at least a minute (e.g. 1h, 10m)",
                |s| parse_duration(s).filter(|d| d.as_secs() >= 60),
            )
            .unwrap_or(rc.audit_log_segment_age);
        rc.limit_proxy_state = r
            .parsed("limit_proxy_state", "yes or no", parse_bool)
            .unwrap_or(rc.limit_proxy_state);
        rc.accounting_spool_max_size = r
            .parsed(
                "accounting_spool_max_size",
                "a size in bytes (e.g. 268435456 or 256M)",
                parse_size,
            )
            .unwrap_or(rc.accounting_spool_max_size);
        rc.node_cache_entries = r
            .parsed("node_cache_entries", "a positive number of entries", |s| {
                s.parse::<usize>().ok().filter(|n| *n > 0)
            })
            .unwrap_or(rc.node_cache_entries);
        rc.node_cache_max_staleness = r
            .parsed(
                "node_cache_max_staleness",
                "a duration from 200ms to 1s (e.g. 500ms)",
                |s| {
                    let s = s.trim();
                    let d = match s.strip_suffix("ms") {
                        Some(ms) => Duration::from_millis(ms.trim().parse().ok()?),
                        None => parse_duration(s)?,
                    };
                    (Duration::from_millis(200)..=Duration::from_secs(1))
                        .contains(&d)
                        .then_some(d)
                },
            )
            .unwrap_or(rc.node_cache_max_staleness);
        if rc.auth_port == rc.acct_port {
            r.error_at("acct_port", format!("auth_port and acct_port are both {}: give accounting its own port (usually 1813)", rc.auth_port));
        }

        let mut r = Reader::new(doc, "metrics", METRICS_KEYS, d);
        if let Some(entry) = r.entry("listen") {
            pf.metrics.listen = if entry.value.is_empty() {
                None
            } else {
                r.parsed(
                    "listen",
                    "an address:port (e.g. 127.0.0.1:9101), or empty to disable metrics",
                    parse_listen,
                )
            };
        }

        let mut r = Reader::new(doc, "webservices", WEBSERVICES_KEYS, d);
        let ws = &mut pf.webservices;
        ws.user = r.str("user").unwrap_or_default();
        ws.pass = Secret::new(r.str("pass").unwrap_or_default());
        ws.port = r
            .parsed("port", "a TCP port (1-65535)", parse_port)
            .unwrap_or(ws.port);
        if cluster && ws.user.is_empty() {
            r.error_at("user", format!("the web services user is empty but cluster.conf defines a cluster: members call each other's API (port {}) with [webservices] user/pass; set user= and pass= (the same on every server)", ws.port));
        } else if is_default_user(&ws.user) {
            r.warn_at(
                "user",
                format!("the web services user {:?} is a well-known default (the clustering guide uses packet/fence): choose another user name and a random password", ws.user),
            );
        }
        if r.present() || cluster {
            let advice = "cluster configuration sync (port 9090) is protected only by this password: set pass= to a random string of at least 22 characters";
            if ws.pass.is_empty() {
                if cluster {
                    r.error_at("pass", format!("the web services password is empty but cluster.conf defines a cluster: the node-to-node API needs it; {advice}"));
                } else {
                    r.warn_section(format!("the web services password is empty; {advice}"));
                }
            } else if is_default_password(ws.pass.expose()) {
                let msg = format!("the web services password is a well-known default; {advice}");
                if cluster {
                    r.error_at("pass", format!("{msg}{CLUSTER_PASS_REMEDY}"));
                } else {
                    r.warn_at("pass", msg);
                }
            } else if cluster && ws.pass.expose().chars().count() < MIN_CLUSTER_WS_PASS {
                r.error_at(
                    "pass",
                    format!(
                        "the web services password has only {} characters but cluster.conf defines a cluster, where it guards every member's configuration (at least {MIN_CLUSTER_WS_PASS} required); {advice}{CLUSTER_PASS_REMEDY}",
                        ws.pass.expose().chars().count()
                    ),
                );
            }
        }

        let mut r = Reader::new(doc, "active_active", ACTIVE_ACTIVE_KEYS, d);
        let aa = &mut pf.active_active;
        aa.galera_replication_username = r.nonempty("galera_replication_username");
        aa.galera_replication_password = r.str("galera_replication_password").map(Secret::new);
        aa.password = r.str("password").map(Secret::new);
        aa.virtual_router_id = r
            .parsed("virtual_router_id", "a VRRP router id (1-255)", |s| {
                s.parse::<u8>().ok().filter(|v| *v > 0)
            })
            .unwrap_or(aa.virtual_router_id);
        aa.haproxy_stats_user = r.nonempty("haproxy_stats_user");
        aa.haproxy_stats_pass = r.str("haproxy_stats_pass").map(Secret::new);
        let galera_pass = aa.galera_replication_password.as_ref();
        if cluster && aa.galera_replication_username.is_none() {
            r.error_at("galera_replication_username", "galera_replication_username is not set but cluster.conf defines a cluster: MariaDB Galera state transfers authenticate with this account; create the replication user (clustering guide, step 1) and set galera_replication_username= and galera_replication_password=");
        }
        if cluster && galera_pass.is_none_or(Secret::is_empty) {
            r.error_at("galera_replication_password", "the Galera replication password is empty but cluster.conf defines a cluster: MariaDB Galera state transfers authenticate with it; create the replication user with a random password and put it in galera_replication_password=");
        } else if let Some(p) = galera_pass
            && (p.is_empty() || is_default_password(p.expose()))
        {
            r.warn_at("galera_replication_password", "the Galera replication password is empty or the guide's example: create the MariaDB replication user with a random password and put it here");
        }
        aa.vrrp_version = r
            .parsed("vrrp_version", "3 or 2", |s| match s.trim() {
                "3" => Some(VrrpVersion::V3),
                "2" => Some(VrrpVersion::V2),
                _ => None,
            })
            .unwrap_or_default();
        let version = aa.vrrp_version;
        aa.vrrp_advert_centis = r.parsed(
            "vrrp_advert_interval",
            match version {
                VrrpVersion::V3 => {
                    "an advert interval from 0.01 to 40.95 seconds (e.g. 0.2 or 200ms)"
                }
                VrrpVersion::V2 => {
                    "a whole number of seconds from 1 to 255 with vrrp_version = 2 (e.g. 1)"
                }
            },
            |s| parse_advert_centis(s, version),
        );
        let vrrp_advice = "set password= to a random string of at least 8 characters (keepalived sends it in clear text and uses only its first 8 characters: it keeps foreign VRRP speakers from taking the virtual IPs), the same on every server";
        let weak = |p: &Secret| {
            p.is_empty() || is_default_password(p.expose()) || p.expose().chars().count() < 8
        };
        match &aa.password {
            Some(p) if weak(p) && cluster => {
                r.error_at("password", format!("the keepalived shared key (password) is empty, a well-known default or shorter than 8 characters but cluster.conf defines a cluster; {vrrp_advice}"));
            }
            Some(p) if weak(p) => {
                r.warn_at("password", format!("the keepalived shared key (password) is empty, a well-known default or shorter than 8 characters; {vrrp_advice}"));
            }
            None if cluster => {
                r.error_at("password", format!("the keepalived shared key (password) is not set but cluster.conf defines a cluster: nothing would authenticate VRRPv2 advertisements of the virtual IPs; {vrrp_advice}"));
            }
            _ => {}
        }
        if (aa.haproxy_stats_user.is_some() || aa.haproxy_stats_pass.is_some())
            && aa
                .haproxy_stats_pass
                .as_ref()
                .is_none_or(|p| p.is_empty() || is_default_password(p.expose()))
        {
            r.warn_at("haproxy_stats_pass", "the HAProxy statistics password is empty or a well-known default (the guide's admin/packetfence): set haproxy_stats_pass= to a random password, or remove haproxy_stats_user to disable the dashboard");
        }
        if aa
            .haproxy_stats_user
            .as_deref()
            .is_some_and(is_default_user)
        {
            r.warn_at("haproxy_stats_user", "the HAProxy statistics user is a well-known default (the guide's admin/packetfence): choose another user name");
        }
        if aa.haproxy_stats_user.is_none()
            && aa
                .haproxy_stats_pass
                .as_ref()
                .is_some_and(|p| !p.is_empty())
        {
            r.warn_at("haproxy_stats_pass", "haproxy_stats_pass is set but haproxy_stats_user is empty: the statistics dashboard stays disabled until both are set");
        }

        let mut r = Reader::new(doc, "ports", PORTS_KEYS, d);
        pf.ports.web = r
            .parsed("web", "a TCP port (1-65535)", parse_port)
            .unwrap_or(pf.ports.web);
        pf.ports.admin = r
            .parsed("admin", "a TCP port (1-65535)", parse_port)
            .unwrap_or(pf.ports.admin);
        pf.ports.portal_http = r
            .parsed("portal_http", "a TCP port (1-65535)", parse_port)
            .unwrap_or(pf.ports.portal_http);
        pf.ports.portal_https = r
            .parsed("portal_https", "a TCP port (1-65535)", parse_port)
            .unwrap_or(pf.ports.portal_https);

        let mut r = Reader::new(doc, "admin", ADMIN_KEYS, d);
        pf.admin.listen = r
            .parsed(
                "listen",
                "an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every address)",
                |s| s.parse::<IpAddr>().ok(),
            )
            .unwrap_or(pf.admin.listen);

        let mut r = Reader::new(doc, "maintenance", MAINTENANCE_KEYS, d);
        if let Some(i) = r.parsed(
            "cluster_check_interval",
            "a duration (e.g. 1m, 30s; 0 disables the check)",
            parse_duration,
        ) {
            pf.maintenance.cluster_check_interval = (!i.is_zero()).then_some(i);
        }

        pf.dns = dns::read(doc, d);
        pf
    }
}

/// The shortest `[webservices] pass` a cluster accepts (a checkup error below).
pub const MIN_CLUSTER_WS_PASS: usize = 16;
/// How to change the password of a running cluster: pushing a new pf.conf would be refused
/// by peers that still expect the old password.
const CLUSTER_PASS_REMEDY: &str = " (e.g. `openssl rand -base64 18`), the same on every server: edit pf.conf on each of them, then `ironfence configreload` on each";

fn is_default_user(u: &str) -> bool {
    DEFAULT_USERS.iter().any(|d| d.eq_ignore_ascii_case(u))
}

pub(crate) fn is_default_password(p: &str) -> bool {
    DEFAULT_PASSWORDS.iter().any(|d| d.eq_ignore_ascii_case(p))
        || secret_weakness(p).is_some_and(|w| w.contains("well-known"))
}

/// keepalived `advert_int` in centiseconds: VRRPv3 carries centiseconds (1..=4095), VRRPv2
/// whole seconds (1..=255). `0.2`, `200ms`, `1s` are accepted.
pub(crate) fn parse_advert_centis(s: &str, version: VrrpVersion) -> Option<u32> {
    let s = s.trim();
    let centis = if let Some(ms) = s.strip_suffix("ms") {
        let ms: u32 = ms.trim().parse().ok()?;
        ms.is_multiple_of(10).then_some(ms / 10)?
    } else {
        let secs = s.strip_suffix('s').unwrap_or(s).trim();
        let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
        if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
            return None;
        }
        let whole: u32 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let frac: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<2}").parse().ok()?
        };
        whole.checked_mul(100)?.checked_add(frac)?
    };
    match version {
        VrrpVersion::V3 => (1..=4095).contains(&centis).then_some(centis),
        VrrpVersion::V2 => {
            (centis % 100 == 0 && (100..=25_500).contains(&centis)).then_some(centis)
        }
    }
}

fn parse_port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p > 0)
}

fn parse_listen(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, DEFAULT_METRICS_PORT))
    })
}

pub(crate) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Reads the keys of an interface section (`[interface X]` in pf.conf, `[CLUSTER interface X]`
/// and `[<host> interface X]` in cluster.conf). Keys left out stay `None` / empty so that
/// cluster.conf sections can overlay pf.conf ones key by key.
pub(crate) fn interface(name: &str, s: Section<'_>, d: &mut FileDiags<'_>) -> InterfaceConf {
    let sec = Some(s.name());
    let mut ifc = InterfaceConf::named(name);
    for (key, e) in s.entries() {
        let at = Some(e.line);
        let v = e.value.as_str();
        match key {
            "ip" if !v.is_empty() => match v.parse::<Ipv4Addr>() {
                Ok(ip) => ifc.ip = Some(ip),
                Err(_) => d.error(at, sec, format!("ip {v:?} is not an IPv4 address: write e.g. ip=192.168.1.5 (IPv6 goes in ipv6_address)")),
            },
            "mask" if !v.is_empty() => match v.parse::<Ipv4Addr>() {
                Ok(m) if ipnet::ipv4_mask_to_prefix(m).is_ok() => ifc.mask = Some(m),
                _ => d.error(at, sec, format!("mask {v:?} is not a netmask: write e.g. mask=255.255.255.0")),
            },
            "type" => {
                for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    match InterfaceType::parse(t) {
                        Some(it) => {
                            if t == "managed" {
                                d.warning(at, sec, "interface type \"managed\" is deprecated: write management");
                            }
                            if !ifc.types.contains(&it) {
                                ifc.types.push(it);
                            }
                        }
                        None => d.error(
                            at,
                            sec,
                            format!(
                                "invalid network type {t:?} for interface {name}{}: use a comma list of {}",
                                suggestion(t, INTERFACE_TYPES.iter().copied()),
                                INTERFACE_TYPES.join(", ")
                            ),
                        ),
                    }
                }
            }
            "enforcement" if !v.is_empty() => {
                if !["vlan", "inline", "inlinel2", "inlinel3"].contains(&v) {
                    d.warning(at, sec, format!("enforcement {v:?} is not one of vlan, inline, inlinel2, inlinel3: fix the value"));
                }
                ifc.enforcement = Some(v.to_string());
            }
            "ip" | "mask" | "enforcement" => {}
            k if INTERFACE_PF_KEYS.contains(&k) => {}
            k => d.warning(at, sec, format!("unknown key {k}{}: remove it (interface keys: ip, mask, type, enforcement)", suggestion(k, INTERFACE_KEYS.iter().copied()))),
        }
    }
    ifc
}

fn check_interfaces(ifs: &[InterfaceConf], doc: &Document, d: &mut FileDiags<'_>) {
    if ifs.is_empty() {
        return;
    }
    let mgmt: Vec<&InterfaceConf> = ifs
        .iter()
        .filter(|i| i.types.contains(&InterfaceType::Management))
        .collect();
    match mgmt.len() {
        0 => d.warning(None, None, "no [interface ...] has type=management: mark exactly one interface as management (and high-availability for clustering)"),
        1 => {}
        _ => {
            let names: Vec<&str> = mgmt.iter().map(|i| i.name.as_str()).collect();
            let second = format!("interface {}", names[1]);
            let line = doc.section(&second).map(|s| s.line());
            d.error(line, Some(&second), format!("more than one management interface ({}): please define exactly one management interface", names.join(", ")));
        }
    }
}

/// The pf.conf sections ironfence reads, in the order the admin tools show them.
pub fn pf_sections() -> &'static [&'static str] {
    SECTIONS
}

/// The keys ironfence reads in pf.conf `[section]` (`interface X` sections included);
/// `None` for a section it does not read. Admin tools refuse other keys (checkup warns).
pub fn pf_section_keys(section: &str) -> Option<Vec<&'static str>> {
    let keys: &[&str] = match section {
        "general" => GENERAL_KEYS,
        "database" => DATABASE_KEYS,
        "radius" => RADIUS_KEYS,
        "metrics" => METRICS_KEYS,
        "webservices" => WEBSERVICES_KEYS,
        "active_active" => ACTIVE_ACTIVE_KEYS,
        "ports" => PORTS_KEYS,
        "maintenance" => MAINTENANCE_KEYS,
        "admin" => ADMIN_KEYS,
        "fencing" => dns::FENCING_KEYS,
        "dns" => dns::DNS_KEYS,
        s if s.starts_with("interface ") => {
            return Some(
                INTERFACE_KEYS
                    .iter()
                    .chain(INTERFACE_PF_KEYS)
                    .copied()
                    .collect(),
            );
        }
        _ => return None,
    };
    Some(keys.to_vec())
}

/// Reads the keys of one pf.conf section, reporting bad values and unknown keys.
struct Reader<'d, 'f, 'o> {
    section: Option<Section<'d>>,
    name: &'static str,
    d: &'f mut FileDiags<'o>,
}

impl<'d, 'f, 'o> Reader<'d, 'f, 'o> {
    fn new(
        doc: &'d Document,
        name: &'static str,
        known: &[&str],
        d: &'f mut FileDiags<'o>,
    ) -> Self {
        let section = doc.section(name);
        if let Some(s) = section {
            for (key, e) in s.entries() {
                if !known.contains(&key) {
                    d.warning(
                        Some(e.line),
                        Some(name),
                        format!(
                            "unknown key {key}{}: it is ignored; remove it (known keys: {})",
                            suggestion(key, known.iter().copied()),
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        Reader { section, name, d }
    }

    fn present(&self) -> bool {
        self.section.is_some()
    }

    fn entry(&self, key: &str) -> Option<&'d Entry> {
        self.section?.get(key)
    }

    fn str(&self, key: &str) -> Option<String> {
        self.entry(key).map(|e| e.value.clone())
    }

    /// The value, treating an empty value as "not set" (use the default).
    fn nonempty(&self, key: &str) -> Option<String> {
        self.str(key).filter(|v| !v.is_empty())
    }

    fn parsed<T>(
        &mut self,
        key: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let e = self.entry(key).filter(|e| !e.value.is_empty())?;
        let parsed = parse(&e.value);
        if parsed.is_none() {
            self.d.error(
                Some(e.line),
                Some(self.name),
                format!("{key} {:?} is not {expected}: fix the value", e.value),
            );
        }
        parsed
    }

    fn hostname(&mut self, key: &str) -> Option<String> {
        self.parsed(key, "a host name (letters, digits, '-', '.')", |s| {
            is_hostname(s).then(|| s.to_string())
        })
    }

    fn error_at(&mut self, key: &str, msg: impl Into<String>) {
        let line = self
            .entry(key)
            .map(|e| e.line)
            .or(self.section.map(|s| s.line()));
        self.d.error(line, Some(self.name), msg);
    }

    fn warn_at(&mut self, key: &str, msg: impl Into<String>) {
        let line = self
            .entry(key)
            .map(|e| e.line)
            .or(self.section.map(|s| s.line()));
        self.d.warning(line, Some(self.name), msg);
    }

    fn warn_section(&mut self, msg: impl Into<String>) {
        let line = self.section.map(|s| s.line());
        self.d.warning(line, Some(self.name), msg);
    }
}

//! PacketFence-style INI configuration: a comment-preserving document model, typed pf.conf /
//! switches.conf / roles.conf / cluster.conf, validation with file:line.
//!
//! ```text
//!  conf/pf.conf ──────────┐
//!  conf/switches.conf ────┤
//!  conf/roles.conf ───────┼─> ini::Document ──> Config::load / checkup ──> Config (typed)
//!  conf/cluster.conf ─────┤   lossless: every     every finding as          │
//!  conf/networks.conf ────┘   line kept, edits    Diagnostics:              ├─> server: sockets, metrics
//!  conf/cluster-files.txt     in place, atomic    file:line [section]       ├─> policy: SwitchesConf::lookup
//!    (plain list of paths)    save                                          ├─> store: database
//!                              ▲                                            └─> cluster: members, VIPs
//!                              └── admin tools / cluster sync edit and save the same files
//! ```
//!
//! Two layers:
//! - [`ini`]: a lossless model of PacketFence's INI dialect (`Config::IniFiles`): parse, look up,
//!   edit, save atomically, byte-identical round trip.
//! - Typed configuration: [`Config::load`] (fails on any error) and [`checkup`] (every error and
//!   warning, like `pfcmd checkup`). Missing files mean built-in defaults (the equivalent of
//!   PacketFence's `*.conf.defaults`); the admin's file overrides them key by key.
//!
//! Path resolution: relative paths in pf.conf (`state_dir`) are relative to the *parent* of the
//! configuration directory (the install root, [`installation_root`], like PacketFence's
//! `/usr/local/pf` for `/usr/local/pf/conf`); a relative sqlite `path` is relative to
//! `state_dir`; cluster-files.txt entries are relative to the install root.
//!
//! # Clustering
//!
//! A cluster.conf with at least one section makes this server a member of an active/active
//! cluster ([`ClusterConf`]); a missing or fully commented-out cluster.conf means a single
//! server, with exactly the behaviour of a configuration without it.
//!
//! **Identity.** A server finds its own `[<hostname>]` section with [`Config::identity`],
//! resolved in this order ([`resolve_identity`]):
//! 1. the identity passed to [`Config::load_as`] / [`checkup_as`] (tests, tools);
//! 2. the `IRONFENCE_HOSTNAME` environment variable (lets several servers share one machine in
//!    tests; also what an operator can set in a systemd unit: `Environment=IRONFENCE_HOSTNAME=pf2`);
//! 3. pf.conf `[general] hostname` (careful: pf.conf is synchronized to every member, so in a
//!    cluster this names them all the same; checkup warns);
//! 4. the OS hostname (`gethostname`), like PacketFence's `hostname()`.
//!
//! In a cluster, an identity without a section is a fatal error (not a panic):
//! `cluster.conf: this server "X" has no [X] section; servers defined: a, b, c (…)`.
//!
//! **Addresses** the daemon binds: [`Config::radius_listen`], [`Config::webservices_listen`],
//! [`Config::metrics_listen`], [`Config::interfaces`] — per-server in a cluster, today's
//! pf.conf values on a single server.
//!
//! **Checks** (`checkup`, [`cluster`] module docs): membership, management_ip, interfaces
//! (same set, ip, type on every server; one management interface), duplicate addresses, the
//! database (Galera through the local node, never SQLite nor one member's address), the number
//! of servers (3 or more, odd), and the cluster secrets (`[webservices]`, `[active_active]`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod authentication;
pub mod cluster;
mod cluster_files;
mod diag;
pub mod dynauth;
pub mod eap;
pub mod host;
pub mod ini;
pub mod networks;
mod pf;
mod roles;
mod served;
mod switches;
pub mod value;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use cluster::{
    ClusterConf, ClusterServer, HOSTNAME_ENV, IdentitySource, os_hostname, resolve_identity,
};
pub use cluster_files::{CLUSTER_FILES, installation_root};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use eap::{EAP_CONF, EapConf, EapMethod, TlsVersion};
pub use ini::{ConfigError, Document, EditError, Entry, Section};
pub use networks::{NETWORKS_CONF, NetworkConf, NetworkType, NetworksConf, ServedNetwork};
pub use pf::DnsConf;
pub use pf::{
    ActiveActiveConf, AuditLogMode, DEFAULT_METRICS_PORT, DEFAULT_STATE_DIR,
    DEFAULT_VIRTUAL_ROUTER_ID, DatabaseConf, GeneralConf, InterfaceConf, InterfaceType,
    MaintenanceConf, MetricsConf, MysqlConf, PfConf, PortsConf, RadiusConf, Secret, VrrpVersion,
    WebservicesConf,
};
pub use pf::{pf_section_keys, pf_sections};
pub use roles::{BUILTIN_ROLES, Role, RolesConf, check_key as check_role_key};
pub use served::ServedInterface;
pub use switches::{
    PF_SWITCH_KEYS, RequireMessageAuthenticator, SwitchIdError, SwitchSettings, SwitchesConf,
    check_key as check_switch_key,
};

use diag::FileDiags;

/// File names inside the configuration directory.
pub const PF_CONF: &str = "pf.conf";
pub const SWITCHES_CONF: &str = "switches.conf";
pub const ROLES_CONF: &str = "roles.conf";
pub const CLUSTER_CONF: &str = "cluster.conf";

/// The whole typed configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub conf_dir: PathBuf,
    pub pf: PfConf,
    pub switches: SwitchesConf,
    pub roles: RolesConf,
    /// cluster.conf; `None` for a single server (file missing or without any section).
    pub cluster: Option<ClusterConf>,
    /// This server's name: its `[<identity>]` section in cluster.conf. Resolved by
    /// [`resolve_identity`] (explicit, then `IRONFENCE_HOSTNAME`, then pf.conf
    /// `[general] hostname`, then the OS hostname); empty only if all of them failed.
    pub identity: String,
    /// Where [`Config::identity`] came from (for logs).
    pub identity_source: IdentitySource,
    /// Extra files to synchronize across the cluster (conf/cluster-files.txt): absolute,
    /// normalised, all under [`installation_root`], in file order.
    pub cluster_files: Vec<PathBuf>,
    /// authentication.conf + profiles.conf: the captive portal's sources and its profile.
    pub authentication: authentication::AuthenticationConf,
    /// networks.conf: the registration/isolation networks' DHCP and DNS settings (see
    /// [`Config::served_networks`]).
    pub networks: NetworksConf,
    /// admin.conf: the administration interface's accounts.
    pub admins: admin::AdminsConf,
    /// eap.conf: the 802.1X (EAP) server's settings (defaults without the file).
    pub eap: EapConf,
}

impl Config {
    /// Loads and validates `conf_dir`. Fails with every finding if any of them is an error;
    /// warnings alone do not prevent loading (use [`Config::load_with_warnings`] to log them).
    /// The server's identity follows the `IRONFENCE_HOSTNAME` / pf.conf / OS rule.
    pub fn load(conf_dir: &Path) -> Result<Config, Diagnostics> {
        Config::load_with_warnings(conf_dir).map(|(config, _)| config)
    }

    /// Like [`Config::load`], also returning the warnings of a successful load.
    pub fn load_with_warnings(conf_dir: &Path) -> Result<(Config, Diagnostics), Diagnostics> {
        Config::load_with_warnings_as(conf_dir, None)
    }

    /// Like [`Config::load`] with an explicit identity (`None`: the `IRONFENCE_HOSTNAME` /
    /// pf.conf / OS rule). This is how tests run several cluster members from one directory.
    pub fn load_as(conf_dir: &Path, identity: Option<&str>) -> Result<Config, Diagnostics> {
        Config::load_with_warnings_as(conf_dir, identity).map(|(config, _)| config)
    }

    /// Like [`Config::load_as`], also returning the warnings of a successful load.
    pub fn load_with_warnings_as(
        conf_dir: &Path,
        identity: Option<&str>,
    ) -> Result<(Config, Diagnostics), Diagnostics> {
        let (config, diags) = build(conf_dir, identity);
        if diags.has_errors() {
            Err(diags)
        } else {
            Ok((config, diags))
        }
    }

    /// Whether cluster.conf defines a cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// This server's cluster.conf entry (`None` on a single server).
    pub fn this_server(&self) -> Option<&ClusterServer> {
        self.cluster.as_ref()?.server(&self.identity)
    }

    /// The other members, in cluster.conf order (empty on a single server).
    pub fn peers(&self) -> impl Iterator<Item = &ClusterServer> {
        let me = self.this_server().map(|s| s.index);
        self.cluster
            .iter()
            .flat_map(|c| c.servers.iter())
            .filter(move |s| Some(s.index) != me)
    }

    /// This server's interfaces: pf.conf's `[interface X]` sections, each overlaid key by key by
    /// cluster.conf's `[<identity> interface X]` (ip, mask, type, enforcement it sets replace
    /// pf.conf's), followed by interfaces only cluster.conf defines for this host. On a single
    /// server: pf.conf's interfaces.
    pub fn interfaces(&self) -> Vec<InterfaceConf> {
        match self.this_server() {
            Some(s) => pf::overlay_interfaces(&self.pf.interfaces, &s.interfaces),
            None => self.pf.interfaces.clone(),
        }
    }

    /// The address the RADIUS sockets bind to: pf.conf `[radius] listen` on a single server;
    /// this server's `management_ip` in a cluster (so several members can share one machine on
    /// 127.0.0.x in tests; requests to the VIPs are handled through IP_PKTINFO by the server).
    pub fn radius_listen(&self) -> IpAddr {
        match self.this_server().and_then(|s| s.management_ip) {
            Some(ip) => IpAddr::V4(ip),
            None => self.pf.radius.listen,
        }
    }

    /// The secret of the load balancer's hop between members (the front server that received
    /// a switch's request on a VIP and the member that handles it): derived, not configured,
    /// as the first 16 octets of HMAC-SHA256(key = `[webservices] pass`, "ironfence radius hop
    /// v1") in hex (32 characters). The web services password is required (≥ 16 characters)
    /// and identical on every member of a cluster, so every member derives the same secret;
    /// **changing the web services password changes it** (members that do not run the same
    /// password at the same time cannot forward to each other). `None` on a single server or
    /// without a password.
    pub fn radius_hop_secret(&self) -> Option<String> {
        use hmac::{KeyInit, Mac};
        if !self.is_cluster() || self.pf.webservices.pass.is_empty() {
            return None;
        }
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(
            self.pf.webservices.pass.expose().as_bytes(),
        )
        .expect("HMAC accepts keys of any length");
        mac.update(b"ironfence radius hop v1");
        let digest = mac.finalize().into_bytes();
        Some(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The node-to-node API (web services) address: `management_ip:[webservices] port`
    /// (default 9090) in a cluster; `None` on a single server (no peer to talk to).
    pub fn webservices_listen(&self) -> Option<SocketAddr> {
        let ip = self.this_server()?.management_ip?;
        Some(SocketAddr::new(IpAddr::V4(ip), self.pf.webservices.port))
    }

    /// The Prometheus endpoint: pf.conf `[metrics] listen` (`None`: disabled). In a cluster, a
    /// loopback listen address (the default 127.0.0.1:9101) becomes the same port on this
    /// server's `management_ip`, so each member (several of them on one test machine) has its
    /// own endpoint and the cluster can be scraped from the management network: restrict that
    /// port to your monitoring hosts. A non-loopback listen address is used as is.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        let listen = self.pf.metrics.listen?;
        match self.this_server().and_then(|s| s.management_ip) {
            Some(ip) if listen.ip().is_loopback() => {
                Some(SocketAddr::new(IpAddr::V4(ip), listen.port()))
            }
            _ => Some(listen),
        }
    }
}

/// Checks `conf_dir` the way `pfcmd checkup` does: every error and warning of every file (syntax,
/// values, references between files, weak secrets, cluster consistency), never stopping at the
/// first. The server's identity follows the `IRONFENCE_HOSTNAME` / pf.conf / OS rule.
pub fn checkup(conf_dir: &Path) -> Diagnostics {
    checkup_as(conf_dir, None)
}

/// [`checkup`] as the server `identity` (`None`: the `IRONFENCE_HOSTNAME` / pf.conf / OS rule).
pub fn checkup_as(conf_dir: &Path, identity: Option<&str>) -> Diagnostics {
    checkup_on_host(conf_dir, identity, &host::HostFacts::gather())
}

/// [`checkup_as`] with the facts about this machine given (tests: a host that is ready for
/// virtual IPs, or one that is not).
pub fn checkup_on_host(
    conf_dir: &Path,
    identity: Option<&str>,
    facts: &host::HostFacts,
) -> Diagnostics {
    let (config, mut diags) = build(conf_dir, identity);
    host::check(&config, facts, &mut diags);
    diags
}

/// pf.conf (database, webservices and VRRP passwords) and switches.conf (RADIUS secrets) must
/// not be readable by every local user.
fn warn_world_readable_secrets(conf_dir: &Path, diags: &mut Diagnostics) {
    use std::os::unix::fs::PermissionsExt;
    for name in [PF_CONF, SWITCHES_CONF] {
        let path = conf_dir.join(name);
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o004 != 0
        {
            diags.push(
                Severity::Warning,
                &path,
                None,
                None,
                format!(
                    "readable by every user on this machine (mode {:o}) although it holds secrets: \
                     run `chmod 640 {}` (or 600)",
                    meta.permissions().mode() & 0o7777,
                    path.display()
                ),
            );
        }
    }
}

fn build(conf_dir: &Path, identity: Option<&str>) -> (Config, Diagnostics) {
    let mut diags = Diagnostics::default();
    if !conf_dir.is_dir() {
        diags.push(
            Severity::Error,
            conf_dir,
            None,
            None,
            "configuration directory not found: pass the directory that holds pf.conf, switches.conf and roles.conf",
        );
    }
    let roles_doc = read_optional(conf_dir, ROLES_CONF, &mut diags);
    let pf_doc = read_optional(conf_dir, PF_CONF, &mut diags);
    let switches_doc = read_optional(conf_dir, SWITCHES_CONF, &mut diags);
    let cluster_doc = read_optional(conf_dir, CLUSTER_CONF, &mut diags);
    let networks_doc = read_optional(conf_dir, NETWORKS_CONF, &mut diags);
    let cluster_mode = cluster_doc
        .as_ref()
        .is_some_and(|d| d.sections().next().is_some());
    warn_world_readable_secrets(conf_dir, &mut diags);

    let roles = RolesConf::from_document(
        roles_doc.as_ref(),
        &mut FileDiags {
            file: &conf_dir.join(ROLES_CONF),
            out: &mut diags,
        },
    );
    let pf_file = conf_dir.join(PF_CONF);
    let pf = PfConf::from_document(
        pf_doc.as_ref(),
        &installation_root(conf_dir),
        cluster_mode,
        &mut FileDiags {
            file: &pf_file,
            out: &mut diags,
        },
    );
    let switches = SwitchesConf::from_document(
        switches_doc.as_ref(),
        &roles,
        &mut FileDiags {
            file: &conf_dir.join(SWITCHES_CONF),
            out: &mut diags,
        },
    );
    let env = std::env::var(HOSTNAME_ENV).ok();
    let (identity, identity_source) = resolve_identity(
        identity,
        env.as_deref(),
        pf.general.hostname.as_deref(),
        os_hostname,
    );
    let cluster_file = conf_dir.join(CLUSTER_CONF);
    let cluster = ClusterConf::from_document(
        cluster_doc.as_ref(),
        &mut FileDiags {
            file: &cluster_file,
            out: &mut diags,
        },
    );
    if let (Some(c), Some(doc)) = (&cluster, &cluster_doc) {
        cluster::check(
            &cluster::CheckInput {
                cluster: c,
                doc,
                cluster_file: &cluster_file,
                identity: &identity,
                identity_source,
                pf: &pf,
                pf_doc: pf_doc.as_ref(),
                pf_file: &pf_file,
            },
            &mut diags,
        );
    }
    let cluster_files = cluster_files::read(conf_dir, &mut diags);
    // Captive portal: authentication.conf and profiles.conf.
    let auth_doc = read_optional(conf_dir, authentication::AUTHENTICATION_CONF, &mut diags);
    let profiles_doc = read_optional(conf_dir, authentication::PROFILES_CONF, &mut diags);
    let mut auth_diags = Diagnostics::default();
    let authentication = authentication::AuthenticationConf::from_documents(
        auth_doc.as_ref(),
        profiles_doc.as_ref(),
        &roles,
        &mut FileDiags {
            file: &conf_dir.join(authentication::AUTHENTICATION_CONF),
            out: &mut diags,
        },
        &mut FileDiags {
            file: &conf_dir.join(authentication::PROFILES_CONF),
            out: &mut auth_diags,
        },
    );
    diags.0.extend(auth_diags.0);
    let networks_file = conf_dir.join(NETWORKS_CONF);
    let networks = NetworksConf::from_document(
        networks_doc.as_ref(),
        &mut FileDiags {
            file: &networks_file,
            out: &mut diags,
        },
    );
    // admin.conf: the admin accounts (synchronized with the rest of conf/).
    let admin_doc = read_optional(conf_dir, admin::ADMIN_CONF, &mut diags);
    let admins = admin::AdminsConf::from_document(
        admin_doc.as_ref(),
        &mut FileDiags {
            file: &conf_dir.join(admin::ADMIN_CONF),
            out: &mut diags,
        },
    );
    admin::warn_not_private(conf_dir, &mut diags);
    // eap.conf: the 802.1X server; its source references are checked against
    // authentication.conf.
    let eap_doc = read_optional(conf_dir, EAP_CONF, &mut diags);
    let eap_file = conf_dir.join(EAP_CONF);
    let mut eap_diags = FileDiags {
        file: &eap_file,
        out: &mut diags,
    };
    let eap = EapConf::from_document(eap_doc.as_ref(), conf_dir, &identity, &mut eap_diags);
    eap.check_sources(&authentication, &mut eap_diags);
    let config = Config {
        conf_dir: conf_dir.to_path_buf(),
        pf,
        switches,
        roles,
        cluster,
        identity,
        identity_source,
        cluster_files,
        authentication,
        networks,
        admins,
        eap,
    };
    networks::check(
        &config,
        networks_doc.is_some(),
        &mut FileDiags {
            file: &networks_file,
            out: &mut diags,
        },
    );
    (config, diags)
}

/// Reads `conf_dir/name` if it exists, reporting syntax errors (all of them) as diagnostics.
/// The returned document skips the offending lines.
fn read_optional(conf_dir: &Path, name: &str, diags: &mut Diagnostics) -> Option<Document> {
    let path = conf_dir.join(name);
    if !path.exists() {
        return None;
    }
    let text = match ini::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            diags.syntax(e, None);
            return None;
        }
    };
    let (doc, errors) = Document::parse_lenient(&path, &text);
    for e in errors {
        let section = doc.section_at_line(e.line).map(str::to_string);
        diags.syntax(e, section.as_deref());
    }
    Some(doc)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod test_support {
    /// Files written by tests get the umask's 0644; secrets files must not be world-readable,
    /// so tests that count diagnostics make them 0640 as an administrator would.
    pub(crate) fn make_private(conf_dir: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(conf_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            }
        }
    }
}

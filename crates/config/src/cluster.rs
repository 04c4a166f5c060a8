//! `cluster.conf`: the members of an active/active cluster and their addresses, in PacketFence's
//! format (clustering guide, "Configure cluster.conf"), and the cluster part of `checkup`.
//!
//! ```text
//! [CLUSTER]                          management_ip = the management VIP
//! [CLUSTER interface eth0]           ip = that interface's VIP, type = as in pf.conf
//! [pf1.example.com]                  management_ip = pf1's own management address
//! [pf1.example.com interface eth0]   ip/mask/type/enforcement: pf1's own address on eth0
//! [pf2.example.com] …                (one [<hostname>] per server, and its interfaces)
//! ```
//!
//! - **Order matters**: the order of the `[<hostname>]` sections is the server index (0, 1, …).
//!   The first server is the management server candidate (PacketFence: keepalived priority
//!   `100 - index`, so it normally holds the management VIP; Galera `server-id` = index + 1).
//! - **Identity**: a server finds its own sections by its hostname (see
//!   [`crate::Config::identity`]); a host missing from the file cannot run in the cluster.
//! - **Overlay**: a `[<host> interface X]` section overlays pf.conf's `[interface X]` key by key
//!   for that host ([`crate::Config::interfaces`]), as PacketFence's `config::Pf` does; pf.conf
//!   is shared (synchronized) by every member, cluster.conf carries what differs per host.
//! - **Cluster or not**: a missing cluster.conf, or one with no section (everything commented
//!   out, as shipped), means a single server.
//!
//! Not supported (reported as warnings): PacketFence's layer-3 multi-zone sections
//! (`[general] multi_zone`, `[DC1 CLUSTER]`, `[DC1 pf1 interface X]`, `[CLUSTER network X]`) and
//! its master/slave keys (`masterslavemode`, `masterdb`, `db_write`, `db_read`).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use crate::diag::{Diagnostics, FileDiags, Severity};
use crate::ini::{Document, Section};
use crate::pf::{DatabaseConf, InterfaceConf, PfConf, interface, is_hostname, overlay_interfaces};
use crate::value::suggestion;

/// The environment variable that sets a server's identity (its cluster.conf section name),
/// overriding pf.conf `[general] hostname` and the OS hostname.
pub const HOSTNAME_ENV: &str = "IRONFENCE_HOSTNAME";

/// The typed cluster.conf. Only built when the file defines at least one section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterConf {
    /// `[CLUSTER] management_ip`: the management virtual IP (held by one server at a time).
    pub management_ip: Option<Ipv4Addr>,
    /// `[CLUSTER interface X]` sections in file order: the virtual IP of each interface.
    pub virtual_interfaces: Vec<InterfaceConf>,
    /// `[<hostname>]` sections in file order; `servers[i].index == i`.
    pub servers: Vec<ClusterServer>,
}

/// One member: `[<name>]` and its `[<name> interface X]` sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterServer {
    /// The section name: the server's hostname.
    pub name: String,
    /// Position in cluster.conf (0 = first = management server candidate).
    pub index: usize,
    /// The server's own address on the management network (peers reach its API and database
    /// there).
    pub management_ip: Option<Ipv4Addr>,
    /// `[<name> interface X]` sections in file order, keys as written (not overlaid on pf.conf:
    /// see [`crate::Config::interfaces`]).
    pub interfaces: Vec<InterfaceConf>,
}

impl ClusterServer {
    pub fn interface(&self, name: &str) -> Option<&InterfaceConf> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

impl ClusterConf {
    /// The server whose section is `[name]` (host names compare case-insensitively, as DNS
    /// names do).
    pub fn server(&self, name: &str) -> Option<&ClusterServer> {
        self.servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Server names in cluster.conf order.
    pub fn server_names(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.name.as_str())
    }

    /// The first server of the file: the management server candidate (glossary of the
    /// clustering guide: "the first server of a PacketFence cluster as defined in cluster.conf").
    pub fn management_server(&self) -> Option<&ClusterServer> {
        self.servers.first()
    }

    /// `[CLUSTER interface name]`.
    pub fn virtual_interface(&self, name: &str) -> Option<&InterfaceConf> {
        self.virtual_interfaces.iter().find(|i| i.name == name)
    }

    /// Every address of the cluster's members: each server's `management_ip` and interface
    /// `ip`s, and the virtual IPs of `[CLUSTER]` (always held by a member). The node-to-node
    /// API admits connections from these addresses only.
    pub fn member_addresses(&self) -> BTreeSet<Ipv4Addr> {
        let servers = self.servers.iter().flat_map(|s| {
            s.management_ip
                .into_iter()
                .chain(s.interfaces.iter().filter_map(|i| i.ip))
        });
        let virtuals = self
            .management_ip
            .into_iter()
            .chain(self.virtual_interfaces.iter().filter_map(|i| i.ip));
        servers.chain(virtuals).collect()
    }

    /// The number of servers that makes a majority: `n / 2 + 1`.
    pub fn quorum(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    /// Builds the typed cluster.conf; `None` when the file is absent or has no section.
    /// Reports malformed sections, bad values and unknown keys.
    pub(crate) fn from_document(
        doc: Option<&Document>,
        d: &mut FileDiags<'_>,
    ) -> Option<ClusterConf> {
        let doc = doc?;
        doc.sections().next()?;
        let mut c = ClusterConf::default();
        // Host interface sections, attached to their server once every server is known.
        let mut host_ifs: Vec<(&str, InterfaceConf, usize)> = Vec::new();
        for (name, line) in doc.sections() {
            let s = doc.section(name).expect("listed section");
            let words: Vec<&str> = name.split_whitespace().collect();
            match words.as_slice() {
                ["CLUSTER"] => {
                    c.management_ip = management_ip(s, CLUSTER_KEYS, d);
                }
                ["CLUSTER", "interface", ifname] => {
                    c.virtual_interfaces.push(interface(ifname, s, d));
                }
                ["general"] => d.warning(
                    Some(line),
                    Some(name),
                    "[general] (PacketFence's multi-zone / layer-3 clusters) is not supported: it is ignored; remove it",
                ),
                [host] if is_hostname(host) => {
                    let management_ip = management_ip(s, SERVER_KEYS, d);
                    c.servers.push(ClusterServer {
                        name: host.to_string(),
                        index: c.servers.len(),
                        management_ip,
                        interfaces: Vec::new(),
                    });
                }
                [host, "interface", ifname] if is_hostname(host) => {
                    host_ifs.push((host, interface(ifname, s, d), line));
                }
                [host] | [host, "interface", _] => d.error(
                    Some(line),
                    Some(name),
                    format!("{host:?} is not a host name: a server section is named after the server's hostname (letters, digits, '-', '.'), e.g. [pf1.example.com]"),
                ),
                _ => d.warning(
                    Some(line),
                    Some(name),
                    "section not understood: cluster.conf has [CLUSTER], [CLUSTER interface <if>], [<hostname>] and [<hostname> interface <if>] sections (PacketFence's multi-zone sections such as [DC1 CLUSTER] or [CLUSTER network X] are not supported): it is ignored; rename or remove it",
                ),
            }
        }
        for (host, ifc, line) in host_ifs {
            match c
                .servers
                .iter_mut()
                .find(|s| s.name.eq_ignore_ascii_case(host))
            {
                Some(server) => server.interfaces.push(ifc),
                None => {
                    let section = format!("{host} interface {}", ifc.name);
                    d.error(
                        Some(line),
                        Some(&section),
                        format!(
                            "[{section}] belongs to no server: there is no [{host}] section{}; add [{host}] with management_ip= (servers are ordered by their [<hostname>] sections) or fix the host name",
                            suggestion(host, c.servers.iter().map(|s| s.name.as_str()))
                        ),
                    );
                }
            }
        }
        Some(c)
    }
}

const CLUSTER_KEYS: &[&str] = &["management_ip"];
const SERVER_KEYS: &[&str] = &["management_ip"];
/// PacketFence `[CLUSTER]` keys ironfence does not support (layer-3 master/slave zones).
const CLUSTER_PF_KEYS: &[&str] = &["masterslavemode", "masterdb", "db_write", "db_read"];

/// Reads `management_ip` (reporting a bad value) and warns about unknown keys.
fn management_ip(s: Section<'_>, known: &[&str], d: &mut FileDiags<'_>) -> Option<Ipv4Addr> {
    let sec = Some(s.name());
    let mut ip = None;
    for (key, e) in s.entries() {
        let v = e.value.as_str();
        match key {
            "management_ip" if v.is_empty() => {}
            "management_ip" => match v.parse::<Ipv4Addr>() {
                Ok(a) => ip = Some(a),
                Err(_) => d.error(
                    Some(e.line),
                    sec,
                    format!("management_ip {v:?} is not a valid IPv4 address: write e.g. management_ip=192.168.1.5"),
                ),
            },
            k @ ("password" | "virtual_router_id" | "galera_replication_username"
            | "galera_replication_password") => d.warning(
                Some(e.line),
                sec,
                format!("{k} belongs in pf.conf [active_active] (shared by every server), not in cluster.conf: it is ignored here; move it"),
            ),
            k if s.name() == "CLUSTER" && CLUSTER_PF_KEYS.contains(&k) => d.warning(
                Some(e.line),
                sec,
                format!("{k} (PacketFence's layer-3 master/slave zones) is not supported: it is ignored; remove it"),
            ),
            k => d.warning(
                Some(e.line),
                sec,
                format!(
                    "unknown key {k}{}: it is ignored; remove it (a [{}] section has only management_ip; interfaces go in [{} interface <name>])",
                    suggestion(k, known.iter().copied()),
                    s.name(),
                    s.name()
                ),
            ),
        }
    }
    ip
}

/// Where a server's identity came from (see [`resolve_identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// Passed by the caller ([`crate::Config::load_as`]).
    Explicit,
    /// The `IRONFENCE_HOSTNAME` environment variable.
    Env,
    /// pf.conf `[general] hostname`.
    PfConf,
    /// The OS hostname (`gethostname`).
    Os,
    /// Nothing worked (the identity is empty).
    Unknown,
}

impl IdentitySource {
    pub fn describe(self) -> &'static str {
        match self {
            IdentitySource::Explicit => "given explicitly",
            IdentitySource::Env => "from IRONFENCE_HOSTNAME",
            IdentitySource::PfConf => "from pf.conf [general] hostname",
            IdentitySource::Os => "the OS hostname",
            IdentitySource::Unknown => "unknown",
        }
    }
}

/// Resolves this server's identity: the first non-empty of `explicit` (the caller's choice),
/// `env` (`IRONFENCE_HOSTNAME`), `pf_hostname` (pf.conf `[general] hostname`), `os()` (the OS
/// hostname). Values are trimmed. Pure, so it can be tested without touching the environment.
pub fn resolve_identity(
    explicit: Option<&str>,
    env: Option<&str>,
    pf_hostname: Option<&str>,
    os: impl FnOnce() -> Option<String>,
) -> (String, IdentitySource) {
    let pick = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(v) = pick(explicit) {
        return (v, IdentitySource::Explicit);
    }
    if let Some(v) = pick(env) {
        return (v, IdentitySource::Env);
    }
    if let Some(v) = pick(pf_hostname) {
        return (v, IdentitySource::PfConf);
    }
    match pick(os().as_deref()) {
        Some(v) => (v, IdentitySource::Os),
        None => (String::new(), IdentitySource::Unknown),
    }
}

/// The OS hostname (`gethostname(2)`), if it can be read and is UTF-8.
pub fn os_hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

/// Everything the cluster checks need.
pub(crate) struct CheckInput<'a> {
    pub cluster: &'a ClusterConf,
    pub doc: &'a Document,
    pub cluster_file: &'a Path,
    pub identity: &'a str,
    pub identity_source: IdentitySource,
    pub pf: &'a PfConf,
    pub pf_doc: Option<&'a Document>,
    pub pf_file: &'a Path,
}

/// The cluster part of `checkup` (PacketFence's `pf::pfcmd::checkup::cluster` and more). Every
/// message names the file, the section and what to do.
pub(crate) fn check(i: &CheckInput<'_>, out: &mut Diagnostics) {
    let c = i.cluster;
    let doc = i.doc;
    let file = i.cluster_file;
    let line_of = |section: &str| doc.section(section).map(|s| s.line());
    let key_line = |section: &str, key: &str| {
        doc.get(section, key)
            .map(|e| e.line)
            .or_else(|| line_of(section))
    };
    let err = |out: &mut Diagnostics, line, section: Option<&str>, msg: String| {
        out.push(Severity::Error, file, line, section, msg);
    };
    let warn = |out: &mut Diagnostics, line, section: Option<&str>, msg: String| {
        out.push(Severity::Warning, file, line, section, msg);
    };
    let names: Vec<&str> = c.server_names().collect();

    // This server must be a member.
    if c.server(i.identity).is_none() {
        let defined = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        let msg = if i.identity.is_empty() {
            format!(
                "this server's hostname could not be determined; servers defined: {defined} (set IRONFENCE_HOSTNAME or [general] hostname)"
            )
        } else {
            format!(
                "this server {:?} has no [{}] section; servers defined: {defined} (set IRONFENCE_HOSTNAME or [general] hostname if the OS hostname differs){}",
                i.identity,
                i.identity,
                suggestion(i.identity, names.iter().copied())
            )
        };
        err(out, None, None, msg);
    }

    // Quorum: Galera needs a majority of the configured servers.
    let n = c.servers.len();
    if n < 2 {
        let first = c.servers.first().map(|s| s.name.as_str());
        let msg = format!(
            "cluster.conf defines {n} server{}: a cluster needs at least 3 servers (an odd number; Galera needs a majority); add the other servers' [<hostname>] sections, or comment out all of cluster.conf to run a single server",
            if n == 1 { "" } else { "s" }
        );
        err(out, first.and_then(line_of), first, msg);
    } else if n == 2 {
        let last = c.servers[1].name.as_str();
        let msg = "Galera needs a majority: with 2 servers, losing either stops writes on both; use 3 or more, an odd number";
        warn(out, line_of(last), Some(last), msg.to_string());
    } else if n.is_multiple_of(2) {
        let last = c.servers[n - 1].name.as_str();
        let msg = format!(
            "{n} servers is an even number: a 50/50 network split leaves no side with a majority (quorum) and both stop writing; use an odd number ({} or {})",
            n - 1,
            n + 1
        );
        warn(out, line_of(last), Some(last), msg);
    }

    // management_ip everywhere (a bad value was already reported by the parser).
    let mgmt_missing = |section: &str, ip: Option<Ipv4Addr>| {
        ip.is_none()
            && doc
                .get(section, "management_ip")
                .is_none_or(|e| e.value.is_empty())
    };
    if doc.section("CLUSTER").is_none() {
        let msg = "there is no [CLUSTER] section: add [CLUSTER] with management_ip= the management virtual IP shared by the servers";
        err(out, None, None, msg.to_string());
    } else if mgmt_missing("CLUSTER", c.management_ip) {
        let msg = "management_ip is not defined for CLUSTER: set management_ip= to the management virtual IP shared by the servers";
        err(out, line_of("CLUSTER"), Some("CLUSTER"), msg.to_string());
    }
    for s in &c.servers {
        if mgmt_missing(&s.name, s.management_ip) {
            err(
                out,
                line_of(&s.name),
                Some(&s.name),
                format!(
                    "management_ip is not defined for {}: set management_ip= to this server's own address on the management interface",
                    s.name
                ),
            );
        }
    }

    // Interfaces: the same set for CLUSTER and every server, an ip for each, the same types.
    let pf_ifs = &i.pf.interfaces;
    let cluster_eff = overlay_interfaces(pf_ifs, &c.virtual_interfaces);
    for v in &c.virtual_interfaces {
        let section = format!("CLUSTER interface {}", v.name);
        if v.ip.is_none() && doc.get(&section, "ip").is_none_or(|e| e.value.is_empty()) {
            err(
                out,
                line_of(&section),
                Some(&section),
                format!(
                    "no ip= for [{section}]: set the virtual IP the servers share on {}",
                    v.name
                ),
            );
        }
    }
    for p in pf_ifs {
        if c.virtual_interface(&p.name).is_none() {
            let section = format!("interface {}", p.name);
            let line = i.pf_doc.and_then(|d| d.section(&section)).map(|s| s.line());
            let msg = format!(
                "[{section}] is not in cluster.conf: every server would take this section's ip; add [CLUSTER interface {0}] (the virtual IP) and [<hostname> interface {0}] (each server's ip) to cluster.conf, or remove [{section}]",
                p.name
            );
            out.push(Severity::Error, i.pf_file, line, Some(&section), msg);
        }
    }
    let any_interfaces =
        !cluster_eff.is_empty() || c.servers.iter().any(|s| !s.interfaces.is_empty());
    if !any_interfaces {
        let msg = "no interface is defined (neither [CLUSTER interface X] nor pf.conf [interface X]): servers are reached on their management_ip only and no virtual IP can be managed; define the interfaces as in the clustering guide";
        warn(out, line_of("CLUSTER"), Some("CLUSTER"), msg.to_string());
    }
    for s in &c.servers {
        for v in &c.virtual_interfaces {
            if s.interface(&v.name).is_none() {
                err(
                    out,
                    line_of(&s.name),
                    Some(&s.name),
                    format!(
                        "[{0} interface {1}] is missing: [CLUSTER interface {1}] defines a virtual IP on {1}, so every server needs its own address there; add [{0} interface {1}] with ip= (and type={2} as in CLUSTER)",
                        s.name,
                        v.name,
                        cluster_eff
                            .iter()
                            .find(|e| e.name == v.name)
                            .map(InterfaceConf::types_string)
                            .unwrap_or_default()
                    ),
                );
            }
        }
        let eff = overlay_interfaces(pf_ifs, &s.interfaces);
        for si in &s.interfaces {
            let section = format!("{} interface {}", s.name, si.name);
            let Some(cv) = cluster_eff
                .iter()
                .find(|e| e.name == si.name)
                .filter(|_| c.virtual_interface(&si.name).is_some())
            else {
                err(
                    out,
                    line_of(&section),
                    Some(&section),
                    format!(
                        "[{section}] has no [CLUSTER interface {0}]: add the virtual IP of {0} as [CLUSTER interface {0}] (ip=, type=) or remove this section",
                        si.name
                    ),
                );
                continue;
            };
            if si.ip.is_none() && doc.get(&section, "ip").is_none_or(|e| e.value.is_empty()) {
                err(
                    out,
                    line_of(&section),
                    Some(&section),
                    format!(
                        "no ip= for [{section}]: set {}'s own address on {}",
                        s.name, si.name
                    ),
                );
            }
            let se = eff.iter().find(|e| e.name == si.name).expect("overlaid");
            let set = |x: &InterfaceConf| {
                x.types
                    .iter()
                    .copied()
                    .map(|t| t.as_str())
                    .collect::<BTreeSet<_>>()
            };
            if set(se) != set(cv) {
                err(
                    out,
                    key_line(&section, "type"),
                    Some(&section),
                    format!(
                        "type={} differs from [CLUSTER interface {}] type={}: an interface has the same role on every server; write type={}",
                        se.types_string(),
                        si.name,
                        cv.types_string(),
                        cv.types_string()
                    ),
                );
            }
        }
        // Exactly one management interface, and management_ip on it.
        if !s.interfaces.is_empty() {
            management_interface(
                out,
                file,
                &s.name,
                &eff,
                s.management_ip,
                line_of(&s.name),
                key_line(&s.name, "management_ip"),
            );
        }
    }
    if !cluster_eff.is_empty() {
        management_interface(
            out,
            file,
            "CLUSTER",
            &cluster_eff,
            c.management_ip,
            line_of("CLUSTER"),
            key_line("CLUSTER", "management_ip"),
        );
    }

    // Every address belongs to one server (or to CLUSTER, for the VIPs).
    let mut seen: HashMap<Ipv4Addr, (usize, bool, String)> = HashMap::new();
    let mut owners: Vec<(usize, &str, Option<Ipv4Addr>, &[InterfaceConf])> = vec![(
        usize::MAX,
        "CLUSTER",
        c.management_ip,
        &c.virtual_interfaces,
    )];
    owners.extend(c.servers.iter().map(|s| {
        (
            s.index,
            s.name.as_str(),
            s.management_ip,
            s.interfaces.as_slice(),
        )
    }));
    for (owner, name, mgmt, ifs) in owners {
        let mut addrs: Vec<(Ipv4Addr, bool, String)> = Vec::new();
        addrs.extend(mgmt.map(|ip| (ip, true, name.to_string())));
        addrs.extend(ifs.iter().filter_map(|f| {
            f.ip.map(|ip| (ip, false, format!("{name} interface {}", f.name)))
        }));
        for (ip, is_mgmt, section) in addrs {
            match seen.get(&ip) {
                // A server's (or CLUSTER's) management_ip is the ip of its management interface.
                Some((o, m, _)) if *o == owner && (*m || is_mgmt) => {}
                Some((_, _, first)) => {
                    let line = if is_mgmt {
                        key_line(&section, "management_ip")
                    } else {
                        key_line(&section, "ip")
                    };
                    err(
                        out,
                        line,
                        Some(&section),
                        format!(
                            "{ip} is also the address of [{first}]: every server and every virtual IP needs its own address; fix one of them"
                        ),
                    );
                }
                None => {
                    seen.insert(ip, (owner, is_mgmt, section));
                }
            }
        }
    }

    // One VRRP router id per [CLUSTER interface X]: base + k must stay a VRRP id.
    let base = usize::from(i.pf.active_active.virtual_router_id);
    let instances = c.virtual_interfaces.len();
    if instances > 0 && base + instances - 1 > 255 {
        let line = i
            .pf_doc
            .and_then(|d| d.get("active_active", "virtual_router_id"))
            .map(|e| e.line);
        let msg = format!(
            "virtual_router_id = {base} is the first of {instances} VRRP router ids (one per [CLUSTER interface X]: {base}..={}), beyond 255: set virtual_router_id to at most {}",
            base + instances - 1,
            256 - instances
        );
        out.push(Severity::Error, i.pf_file, line, Some("active_active"), msg);
    }

    check_database(i, out);

    if i.identity_source == IdentitySource::PfConf && c.server(i.identity).is_some() {
        let line = i
            .pf_doc
            .and_then(|d| d.get("general", "hostname"))
            .map(|e| e.line);
        let msg = format!(
            "hostname = {} names this server in cluster.conf, but pf.conf is synchronized to every server, which would then all claim to be {}: remove hostname= and rely on the OS hostname, or set IRONFENCE_HOSTNAME per server",
            i.identity, i.identity
        );
        out.push(Severity::Warning, i.pf_file, line, Some("general"), msg);
    }
}

/// Exactly one management interface in `ifs`, and `management_ip` equal to its ip.
fn management_interface(
    out: &mut Diagnostics,
    file: &Path,
    owner: &str,
    ifs: &[InterfaceConf],
    management_ip: Option<Ipv4Addr>,
    section_line: Option<usize>,
    mgmt_line: Option<usize>,
) {
    let mgmt: Vec<&InterfaceConf> = ifs.iter().filter(|f| f.is_management()).collect();
    match mgmt.as_slice() {
        [] => {
            let msg = format!(
                "no management interface for {owner}: please define exactly one management interface (type=management,high-availability on the interface that carries management_ip)"
            );
            out.push(Severity::Error, file, section_line, Some(owner), msg);
        }
        [m] => {
            if let (Some(ip), Some(mip)) = (management_ip, m.ip)
                && ip != mip
            {
                let msg = format!(
                    "management_ip {ip} is not the ip of {owner}'s management interface {} ({mip}): peers reach the API and the database on management_ip; make them equal",
                    m.name
                );
                out.push(Severity::Warning, file, mgmt_line, Some(owner), msg);
            }
        }
        _ => {
            let names: Vec<&str> = mgmt.iter().map(|m| m.name.as_str()).collect();
            let msg = format!(
                "more than one management interface for {owner} ({}): please define exactly one management interface",
                names.join(", ")
            );
            out.push(Severity::Error, file, section_line, Some(owner), msg);
        }
    }
}

/// The database of a cluster.
///
/// The rule "the database host must not be a single node's address in a cluster, where that
/// breaks replication" is interpreted as follows. ironfence's cluster database is MariaDB
/// Galera with one node on every server; each server must use **its own local node**
/// (`host = 127.0.0.1`), which is what keeps every server able to read and write while it is
/// in the quorum, and what makes losing one server lose only that server:
/// - `type = sqlite` (or no `[database]`): **error**: SQLite is a local file, nothing is
///   replicated, every server would have its own diverging database;
/// - `host` = one member's address (management_ip, an interface ip, or its hostname): **error**:
///   every server would use that member's database; losing it loses the database for all, and
///   the other Galera nodes are bypassed (they replicate but serve nobody);
/// - `host` = a CLUSTER virtual IP: **warning**: it works (the VIP follows a live server) but
///   every VIP failover cuts every server's database connections and all writes go through one
///   node instead of the local one;
/// - anything else (a loopback address or `localhost`, even when members have 127.0.0.x
///   addresses as in single-machine tests; an external database cluster): accepted.
///
/// (PacketFence ≥ 12 instead forbids 127.0.0.1 because its services run in containers and
/// reach the local node through ProxySQL on 100.64.0.1; ironfence runs on the host.)
fn check_database(i: &CheckInput<'_>, out: &mut Diagnostics) {
    let c = i.cluster;
    let line = |key: &str| {
        i.pf_doc.and_then(|d| {
            d.get("database", key)
                .map(|e| e.line)
                .or_else(|| d.section("database").map(|s| s.line()))
        })
    };
    const LOCAL: &str = "use 127.0.0.1 (the local Galera node)";
    match &i.pf.database {
        DatabaseConf::Sqlite { .. } => {
            let how = if i.pf_doc.and_then(|d| d.get("database", "type")).is_some() {
                "type = sqlite"
            } else {
                "SQLite is the default when [database] type is not set"
            };
            let msg = format!(
                "the database is SQLite ({how}) but cluster.conf defines a cluster: SQLite is local to one server; a cluster needs `type = mysql` on MariaDB Galera, with host = 127.0.0.1 so each server uses its local Galera node"
            );
            out.push(
                Severity::Error,
                i.pf_file,
                line("type"),
                Some("database"),
                msg,
            );
        }
        DatabaseConf::Mysql(m) => {
            let host = m.host.trim();
            let ip = host.parse::<IpAddr>().ok().and_then(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            });
            // The local node, whatever the members' addresses (test clusters on 127.0.0.x).
            let local = host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            let member = c.servers.iter().filter(|_| !local).find(|s| {
                s.name.eq_ignore_ascii_case(host)
                    || ip.is_some_and(|ip| {
                        s.management_ip == Some(ip) || s.interfaces.iter().any(|f| f.ip == Some(ip))
                    })
            });
            let vip = !local
                && ip.is_some_and(|ip| {
                    c.management_ip == Some(ip)
                        || c.virtual_interfaces.iter().any(|f| f.ip == Some(ip))
                });
            if let Some(s) = member {
                let msg = format!(
                    "host = {host} is {0}'s address: every server would use {0}'s database: losing {0} loses the database for all; {LOCAL}",
                    s.name
                );
                out.push(
                    Severity::Error,
                    i.pf_file,
                    line("host"),
                    Some("database"),
                    msg,
                );
            } else if vip {
                let msg = format!(
                    "host = {host} is a virtual IP of the cluster: it works, but every failover of the VIP interrupts the database connections of all servers and bypasses their local node; {LOCAL}"
                );
                out.push(
                    Severity::Warning,
                    i.pf_file,
                    line("host"),
                    Some("database"),
                    msg,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;

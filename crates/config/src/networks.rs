//! `networks.conf`: the registration and isolation networks' DHCP (and DNS) settings, in
//! PacketFence's shape.
//!
//! ```text
//!  [192.168.2.0]                 ◄── section = the network's address
//!  type = vlan-registration      ◄── vlan-registration | vlan-isolation (others: ignored)
//!  netmask = 255.255.255.0
//!  gateway = 192.168.2.1         ◄── default: the served interface's service_ip() (VIP)
//!  dns = 192.168.2.1             ◄── default: the same
//!  dhcp_start = 192.168.2.10     ◄── default: network + 10
//!  dhcp_end = 192.168.2.250      ◄── default: broadcast − 1
//!  dhcp_default_lease_time = 30  ◄── seconds (default 30, PacketFence's for these networks)
//!  dhcp_max_lease_time = 30
//!  domain-name = reg.example.org
//!  dhcpd = enabled               ◄── enabled | disabled
//!  named = enabled               ◄── the DNS responder on this network
//! ```
//!
//! Each network is matched to one of this server's [`ServedInterface`]s by containment (the
//! interface's address is inside the network); [`Config::served_networks`] gives the result
//! with the defaults resolved. The file is in `conf/`, so the cluster synchronizes it with the
//! rest of the configuration (every member serves the same networks, each on its own
//! interfaces and all with the same VIP as router and DNS).

use crate::diag::FileDiags;
use crate::ini::Document;
use crate::value::suggestion;
use crate::{Config, ServedInterface};
use std::net::Ipv4Addr;

/// File name inside the configuration directory.
pub const NETWORKS_CONF: &str = "networks.conf";

/// Lease time of PacketFence's registration/isolation networks when not configured (seconds).
pub const DEFAULT_LEASE_TIME: u32 = 30;

const KEYS: &[&str] = &[
    "type",
    "netmask",
    "gateway",
    "dns",
    "dhcp_start",
    "dhcp_end",
    "dhcp_default_lease_time",
    "dhcp_max_lease_time",
    "domain-name",
    "dhcpd",
    "named",
];

/// PacketFence networks.conf keys ironfence does not use (warned, ignored).
const PF_ONLY_KEYS: &[&str] = &[
    "fake_mac_enabled",
    "nat_enabled",
    "split_network",
    "reg_network",
    "next_hop",
    "pool_backend",
    "dhcp_reply_ip",
    "ip_reserved",
    "ip_assigned",
    "portal_fqdn",
    "netflow_accounting_enabled",
    "coa",
    "algorithm",
    "nat_dns",
];

/// The kind of network (`type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkType {
    Registration,
    Isolation,
    /// Another PacketFence type (inline, dns-enforcement, …): accepted, not served.
    Other(String),
}

impl NetworkType {
    fn parse(s: &str) -> NetworkType {
        match s.trim().to_ascii_lowercase().as_str() {
            "vlan-registration" => NetworkType::Registration,
            "vlan-isolation" => NetworkType::Isolation,
            other => NetworkType::Other(other.to_string()),
        }
    }

    /// Registration and isolation networks are the ones ironfence serves.
    pub fn is_served(&self) -> bool {
        matches!(self, NetworkType::Registration | NetworkType::Isolation)
    }
}

/// One `[network]` section as written (defaults that depend on the interface are resolved by
/// [`Config::served_networks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConf {
    /// The section name (the network's address, as written).
    pub name: String,
    /// Line of the section header (for diagnostics).
    pub line: usize,
    pub network: Ipv4Addr,
    pub kind: NetworkType,
    pub netmask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    /// Empty: the served interface's service address.
    pub dns: Vec<Ipv4Addr>,
    pub dhcp_start: Option<Ipv4Addr>,
    pub dhcp_end: Option<Ipv4Addr>,
    pub default_lease: u32,
    pub max_lease: u32,
    pub domain_name: Option<String>,
    pub dhcpd: bool,
    pub named: bool,
}

impl NetworkConf {
    pub fn prefix(&self) -> u8 {
        u32::from(self.netmask).leading_ones() as u8
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = u32::from(self.netmask);
        u32::from(ip) & m == u32::from(self.network) & m
    }

    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.netmask))
    }

    /// The pool (first, last): `dhcp_start`/`dhcp_end`, by default network + 10 (network + 1
    /// for networks of fewer than 32 addresses) to broadcast − 1.
    pub fn pool(&self) -> (Ipv4Addr, Ipv4Addr) {
        let net = u32::from(self.network);
        let size = !u32::from(self.netmask);
        let skip = if size >= 32 { 10 } else { 1 };
        let first = self
            .dhcp_start
            .unwrap_or(Ipv4Addr::from(net.saturating_add(skip)));
        let last = self.dhcp_end.unwrap_or(Ipv4Addr::from(
            u32::from(self.broadcast()).saturating_sub(1),
        ));
        (first, last)
    }
}

/// Every section of networks.conf, in file order (missing file: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworksConf {
    pub networks: Vec<NetworkConf>,
}

fn parse_ip(v: &str) -> Option<Ipv4Addr> {
    v.trim().parse().ok()
}

fn parse_state(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "enabled" | "yes" | "true" | "1" => Some(true),
        "disabled" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

impl NetworksConf {
    pub(crate) fn from_document(doc: Option<&Document>, d: &mut FileDiags<'_>) -> NetworksConf {
        let mut conf = NetworksConf::default();
        let Some(doc) = doc else { return conf };
        for (name, line) in doc.sections() {
            let section = doc.section(name).expect("listed section");
            let sec = Some(name);
            let Some(network) = parse_ip(name) else {
                d.error(
                    Some(line),
                    sec,
                    format!("section [{name}] is not an IPv4 network address: name each network by its address, e.g. [192.168.2.0]"),
                );
                continue;
            };
            let mut n = NetworkConf {
                name: name.to_string(),
                line,
                network,
                kind: NetworkType::Other(String::new()),
                netmask: Ipv4Addr::UNSPECIFIED,
                gateway: None,
                dns: Vec::new(),
                dhcp_start: None,
                dhcp_end: None,
                default_lease: DEFAULT_LEASE_TIME,
                max_lease: DEFAULT_LEASE_TIME,
                domain_name: None,
                dhcpd: true,
                named: true,
            };
            let (mut has_type, mut has_mask, mut max_set) = (false, false, false);
            for (key, entry) in section.entries() {
                let at = Some(entry.line);
                let v = entry.value.trim();
                let bad_ip = |d: &mut FileDiags<'_>, what: &str| {
                    d.error(
                        at,
                        sec,
                        format!("{key} {v:?} is not an IPv4 address: write the {what}"),
                    )
                };
                match key {
                    "type" => {
                        has_type = true;
                        n.kind = NetworkType::parse(v);
                    }
                    "netmask" => match parse_ip(v) {
                        Some(m) if u32::from(m).leading_ones() + u32::from(m).trailing_zeros() == 32 => {
                            has_mask = true;
                            n.netmask = m;
                        }
                        _ => d.error(
                            at,
                            sec,
                            format!("netmask {v:?} is not a network mask: write it dotted, e.g. 255.255.255.0"),
                        ),
                    },
                    "gateway" if v.is_empty() => {}
                    "gateway" => match parse_ip(v) {
                        Some(ip) => n.gateway = Some(ip),
                        None => bad_ip(d, "router address devices are given (default: the interface's VIP or address)"),
                    },
                    "dns" => {
                        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                            match parse_ip(part) {
                                Some(ip) => n.dns.push(ip),
                                None => d.error(
                                    at,
                                    sec,
                                    format!("dns {part:?} is not an IPv4 address: write a comma list of DNS server addresses"),
                                ),
                            }
                        }
                    }
                    "dhcp_start" | "dhcp_end" if v.is_empty() => {}
                    "dhcp_start" | "dhcp_end" => match parse_ip(v) {
                        Some(ip) if key == "dhcp_start" => n.dhcp_start = Some(ip),
                        Some(ip) => n.dhcp_end = Some(ip),
                        None => bad_ip(d, "first/last address of the DHCP pool"),
                    },
                    "dhcp_default_lease_time" | "dhcp_max_lease_time" => {
                        match v.parse::<u32>() {
                            Ok(t) if t > 0 => {
                                if key == "dhcp_default_lease_time" {
                                    n.default_lease = t;
                                } else {
                                    n.max_lease = t;
                                    max_set = true;
                                }
                            }
                            _ => d.error(
                                at,
                                sec,
                                format!("{key} {v:?} is not a number of seconds above 0: fix the value"),
                            ),
                        }
                    }
                    "domain-name" => {
                        n.domain_name = Some(v.to_string()).filter(|s| !s.is_empty())
                    }
                    "dhcpd" | "named" => match parse_state(v) {
                        Some(on) if key == "dhcpd" => n.dhcpd = on,
                        Some(on) => n.named = on,
                        None => d.error(
                            at,
                            sec,
                            format!("{key} {v:?} is not enabled or disabled: fix the value"),
                        ),
                    },
                    k if PF_ONLY_KEYS.contains(&k) => d.warning(
                        at,
                        sec,
                        format!("{k} is a PacketFence key ironfence does not use: it is ignored (remove it to silence this warning)"),
                    ),
                    k => d.warning(
                        at,
                        sec,
                        format!(
                            "unknown key {k}{}: remove it (networks.conf keys: {})",
                            suggestion(k, KEYS.iter().copied()),
                            KEYS.join(", ")
                        ),
                    ),
                }
            }
            if !has_type {
                d.error(
                    Some(line),
                    sec,
                    "no type: set type = vlan-registration or vlan-isolation",
                );
                continue;
            }
            if let NetworkType::Other(t) = &n.kind
                && !matches!(
                    t.as_str(),
                    "inline" | "inlinel2" | "inlinel3" | "dns-enforcement" | "other" | "vlan"
                )
            {
                d.warning(
                    Some(line),
                    sec,
                    format!("type {t:?} is not vlan-registration or vlan-isolation: this network is ignored"),
                );
            }
            if !has_mask {
                if !n.kind.is_served() {
                    continue;
                }
                d.error(
                    Some(line),
                    sec,
                    "no netmask: set netmask, e.g. 255.255.255.0",
                );
                continue;
            }
            if !max_set {
                n.max_lease = n.max_lease.max(n.default_lease);
            }
            if n.max_lease < n.default_lease {
                d.warning(
                    Some(line),
                    sec,
                    format!(
                        "dhcp_max_lease_time {} is below dhcp_default_lease_time {}: devices get at most {} s",
                        n.max_lease, n.default_lease, n.max_lease
                    ),
                );
            }
            if u32::from(network) & !u32::from(n.netmask) != 0 {
                d.error(
                    Some(line),
                    sec,
                    format!(
                        "[{name}] is not a network address for netmask {}: name the section [{}]",
                        n.netmask,
                        Ipv4Addr::from(u32::from(network) & u32::from(n.netmask))
                    ),
                );
                continue;
            }
            if n.kind.is_served() {
                check_addresses(&n, doc, d);
            }
            if conf.networks.iter().any(|o| o.network == n.network) {
                d.error(
                    Some(line),
                    sec,
                    format!("[{name}] is defined twice: keep one"),
                );
                continue;
            }
            conf.networks.push(n);
        }
        conf
    }

    /// The served (registration/isolation) network that contains `ip`.
    pub fn containing(&self, ip: Ipv4Addr) -> Option<&NetworkConf> {
        self.networks
            .iter()
            .filter(|n| n.kind.is_served())
            .find(|n| n.contains(ip))
    }
}

fn check_addresses(n: &NetworkConf, doc: &Document, d: &mut FileDiags<'_>) {
    let sec = Some(n.name.as_str());
    let line_of = |key: &str| doc.get(&n.name, key).map(|e| e.line).or(Some(n.line));
    let (first, last) = n.pool();
    for (key, ip) in [("dhcp_start", first), ("dhcp_end", last)] {
        if !n.contains(ip) || ip == n.network || ip == n.broadcast() {
            d.error(
                line_of(key),
                sec,
                format!(
                    "{key} {ip} is not a host address of {}/{}: fix the DHCP pool",
                    n.network,
                    n.prefix()
                ),
            );
        }
    }
    if first > last {
        d.error(
            line_of("dhcp_start"),
            sec,
            format!("dhcp_start {first} is after dhcp_end {last}: swap them"),
        );
    }
    if let Some(g) = n.gateway
        && !n.contains(g)
    {
        d.error(
            line_of("gateway"),
            sec,
            format!(
                "gateway {g} is not on {}/{}: devices could not reach it",
                n.network,
                n.prefix()
            ),
        );
    }
}

/// One network this server serves: its networks.conf section, the interface it is on, and the
/// values devices are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedNetwork {
    pub conf: NetworkConf,
    pub interface: ServedInterface,
    /// Router given to devices (`gateway`, default the interface's service address).
    pub gateway: Ipv4Addr,
    /// DNS servers given to devices (`dns`, default the interface's service address).
    pub dns: Vec<Ipv4Addr>,
    /// Addresses never handed out even when inside the pool: every server's own address on
    /// this interface, the VIP, the router and the DNS servers.
    pub reserved: Vec<Ipv4Addr>,
}

impl ServedNetwork {
    /// RFC 8910 option 114: the portal's captive-portal API on the service address, HTTPS when
    /// the portal has a certificate (`conf/ssl/server.pem`), else HTTP.
    pub fn captive_portal_api(&self, conf_dir: &std::path::Path) -> String {
        let scheme = if conf_dir.join("ssl").join("server.pem").exists() {
            "https"
        } else {
            "http"
        };
        format!(
            "{scheme}://{}/captive-portal/api",
            self.interface.service_ip()
        )
    }
}

impl Config {
    /// This server's registration/isolation networks that networks.conf describes, with the
    /// defaults resolved, in interface order. A served interface without a section, or a
    /// section without an interface, is not in the list (checkup warns about both).
    pub fn served_networks(&self) -> Vec<ServedNetwork> {
        self.served_interfaces()
            .into_iter()
            .filter_map(|i| {
                let conf = self.networks.containing(i.ip)?.clone();
                let gateway = conf.gateway.unwrap_or(i.service_ip());
                let dns = if conf.dns.is_empty() {
                    vec![i.service_ip()]
                } else {
                    conf.dns.clone()
                };
                let mut reserved = vec![i.ip, i.service_ip(), gateway];
                reserved.extend(dns.iter().copied());
                // The other members' addresses on the same interface (cluster.conf).
                if let Some(c) = &self.cluster {
                    for s in &c.servers {
                        if let Some(ip) = s.interface(&i.name).and_then(|x| x.ip) {
                            reserved.push(ip);
                        }
                    }
                }
                reserved.sort();
                reserved.dedup();
                Some(ServedNetwork {
                    conf,
                    interface: i,
                    gateway,
                    dns,
                    reserved,
                })
            })
            .collect()
    }
}

/// Checkup findings that need the whole configuration: each served network matched to an
/// interface of this server, and (when networks.conf exists: without it, serving DHCP and DNS
/// is simply not configured) each served interface described.
pub(crate) fn check(config: &Config, file_exists: bool, d: &mut FileDiags<'_>) {
    let served = config.served_interfaces();
    for n in config
        .networks
        .networks
        .iter()
        .filter(|n| n.kind.is_served())
    {
        let sec = Some(n.name.as_str());
        match served.iter().find(|i| n.contains(i.ip)) {
            None => d.warning(
                Some(n.line),
                sec,
                format!(
                    "no registration/isolation interface of this server is on {}/{} (pf.conf [interface X] type=internal, enforcement=vlan): it is not served here",
                    n.network,
                    n.prefix()
                ),
            ),
            Some(i) => {
                let (first, last) = n.pool();
                if (first..=last).contains(&i.service_ip()) || (first..=last).contains(&i.ip) {
                    d.warning(
                        Some(n.line),
                        sec,
                        format!(
                            "the DHCP pool {first}-{last} contains this server's address or the VIP on {}: those addresses are skipped; set dhcp_start/dhcp_end around them",
                            i.name
                        ),
                    );
                }
            }
        }
    }
    for i in served.iter().filter(|_| file_exists) {
        if config.networks.containing(i.ip).is_none() {
            d.warning(
                None,
                None,
                format!(
                    "interface {} ({}) is a registration/isolation interface without a section in networks.conf: no DHCP or DNS is served on it; add [{}] with type = vlan-registration",
                    i.name,
                    i.network,
                    i.network.network()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use std::path::Path;

    fn parse(text: &str) -> (NetworksConf, Diagnostics) {
        let doc = Document::parse("networks.conf", text).unwrap();
        let mut diags = Diagnostics::default();
        let conf = NetworksConf::from_document(
            Some(&doc),
            &mut FileDiags {
                file: Path::new("networks.conf"),
                out: &mut diags,
            },
        );
        (conf, diags)
    }

    #[test]
    fn packetfence_registration_network() {
        let (c, d) = parse(
            "[192.168.2.0]\ntype=vlan-registration\nnetmask=255.255.255.0\ngateway=192.168.2.1\n\
             dns=192.168.2.1\ndhcp_start=192.168.2.10\ndhcp_end=192.168.2.246\n\
             dhcp_default_lease_time=30\ndhcp_max_lease_time=30\ndomain-name=registration.example.org\n\
             dhcpd=enabled\nnamed=enabled\nfake_mac_enabled=disabled\n",
        );
        assert_eq!(d.errors().count(), 0, "{d}");
        // The PacketFence-only key is warned, with its line.
        let w: Vec<_> = d.warnings().collect();
        assert_eq!(w.len(), 1, "{d}");
        assert_eq!(w[0].line, Some(13));
        assert!(w[0].message.contains("fake_mac_enabled"));
        let n = &c.networks[0];
        assert_eq!(n.kind, NetworkType::Registration);
        assert_eq!(
            n.pool(),
            (
                "192.168.2.10".parse().unwrap(),
                "192.168.2.246".parse().unwrap()
            )
        );
        assert_eq!(n.domain_name.as_deref(), Some("registration.example.org"));
        assert!(n.dhcpd && n.named);
    }

    #[test]
    fn defaults() {
        let (c, d) = parse("[10.1.0.0]\ntype=vlan-isolation\nnetmask=255.255.254.0\n");
        assert!(d.is_empty(), "{d}");
        let n = &c.networks[0];
        assert_eq!(
            n.pool(),
            ("10.1.0.10".parse().unwrap(), "10.1.1.254".parse().unwrap())
        );
        assert_eq!((n.default_lease, n.max_lease), (30, 30));
        assert_eq!(n.gateway, None);
        assert!(n.dns.is_empty());
    }

    #[test]
    fn errors_have_file_line_and_reason() {
        let (c, d) = parse(
            "[192.168.2.0]\ntype=vlan-registration\nnetmask=255.255.255.0\ndhcp_start=192.168.3.10\n\
             dhcpd=maybe\ndhcp_default_lease_time=soon\ngatway=192.168.2.1\n\
             [192.168.5.1]\ntype=vlan-registration\nnetmask=255.255.255.0\n\
             [not-an-ip]\ntype=vlan-registration\n\
             [10.0.0.0]\nnetmask=255.0.0.0\n\
             [10.9.0.0]\ntype=vlan-isolation\n",
        );
        let text = d.to_string();
        for want in [
            "networks.conf:4 [192.168.2.0]: dhcp_start 192.168.3.10 is not a host address",
            "networks.conf:5 [192.168.2.0]: dhcpd \"maybe\" is not enabled or disabled",
            "networks.conf:6 [192.168.2.0]: dhcp_default_lease_time \"soon\"",
            "WARNING networks.conf:7 [192.168.2.0]: unknown key gatway (did you mean gateway?)",
            "networks.conf:8 [192.168.5.1]: [192.168.5.1] is not a network address for netmask 255.255.255.0: name the section [192.168.5.0]",
            "networks.conf:11 [not-an-ip]: section [not-an-ip] is not an IPv4 network address",
            "networks.conf:13 [10.0.0.0]: no type",
            "networks.conf:15 [10.9.0.0]: no netmask",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(
            c.networks.len(),
            1,
            "only the first section is kept (with its errors)"
        );
    }

    #[test]
    fn other_types_are_accepted_and_not_served() {
        let (c, d) = parse(
            "[10.2.0.0]\ntype=inlinel2\nnetmask=255.255.255.0\n[10.3.0.0]\ntype=weird\nnetmask=255.255.255.0\n",
        );
        assert_eq!(d.errors().count(), 0, "{d}");
        assert_eq!(
            d.warnings().count(),
            1,
            "only the unknown type is warned: {d}"
        );
        assert_eq!(c.networks.len(), 2);
        assert!(c.containing("10.2.0.5".parse().unwrap()).is_none());
    }

    fn load_dir(
        files: &[(&str, &str)],
    ) -> (
        tempfile::TempDir,
        Result<(Config, Diagnostics), Diagnostics>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        for (name, text) in files {
            std::fs::write(conf.join(name), text).unwrap();
        }
        crate::test_support::make_private(&conf);
        let r = Config::load_with_warnings(&conf);
        (dir, r)
    }

    const PF: &str = "[general]\nstate_dir = state\n[database]\ntype = sqlite\n\
        [interface eth0]\nip = 10.0.0.5\nmask = 255.255.255.0\ntype = management\n\
        [interface eth1.2]\nip = 192.168.2.5\nmask = 255.255.255.0\ntype = internal\nenforcement = vlan\n\
        [interface eth1.3]\nip = 192.168.3.5\nmask = 255.255.255.0\ntype = internal\nenforcement = vlan\n";

    #[test]
    fn served_networks_match_interfaces_and_default_to_the_service_address() {
        let (_d, r) = load_dir(&[
            ("pf.conf", PF),
            (
                NETWORKS_CONF,
                "[192.168.2.0]\ntype = vlan-registration\nnetmask = 255.255.255.0\n\
                 [192.168.9.0]\ntype = vlan-isolation\nnetmask = 255.255.255.0\n",
            ),
        ]);
        let (config, warnings) = r.unwrap_or_else(|d| panic!("{d}"));
        let served = config.served_networks();
        assert_eq!(served.len(), 1);
        let n = &served[0];
        assert_eq!(n.interface.name, "eth1.2");
        let own: Ipv4Addr = "192.168.2.5".parse().unwrap();
        assert_eq!((n.gateway, n.dns.clone()), (own, vec![own]));
        assert_eq!(n.reserved, vec![own]);
        assert_eq!(
            n.captive_portal_api(&config.conf_dir),
            "http://192.168.2.5/captive-portal/api"
        );
        let text = warnings.to_string();
        assert!(
            text.contains("networks.conf:4 [192.168.9.0]: no registration/isolation interface of this server is on 192.168.9.0/24"),
            "{text}"
        );
        assert!(
            text.contains("interface eth1.3 (192.168.3.5/24) is a registration/isolation interface without a section in networks.conf"),
            "{text}"
        );
    }

    #[test]
    fn a_bad_networks_conf_refuses_the_configuration() {
        let (_d, r) = load_dir(&[
            ("pf.conf", PF),
            (
                NETWORKS_CONF,
                "[192.168.2.0]\ntype = vlan-registration\nnetmask = 255.255.255.0\ndhcp_end = 192.168.2.255\n",
            ),
        ]);
        let d = r.unwrap_err().to_string();
        assert!(
            d.contains("networks.conf:4 [192.168.2.0]: dhcp_end 192.168.2.255 is not a host address of 192.168.2.0/24"),
            "{d}"
        );
    }

    /// The shipped conf/networks.conf, uncommented as its header says (with the pf.conf
    /// interface it names), is a served registration network without a warning.
    #[test]
    fn shipped_example_uncommented_is_served() {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/networks.conf"),
        )
        .unwrap();
        let (header, sections) = shipped.split_once("# and uncomment:\n").unwrap();
        let interface: String = header
            .lines()
            .skip_while(|l| !l.contains("add to pf.conf:"))
            .skip(1)
            .map(|l| format!("{}\n", l.trim_start_matches('#').trim()))
            .collect();
        let networks: String = sections
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix('#').unwrap_or(l)))
            .collect();
        let pf = format!("[general]\nstate_dir = state\n{interface}");
        let (_d, r) = load_dir(&[("pf.conf", &pf), (NETWORKS_CONF, &networks)]);
        let (config, warnings) = r.unwrap_or_else(|d| panic!("{d}"));
        let served = config.served_networks();
        assert_eq!(served.len(), 1, "{warnings}");
        assert_eq!(served[0].conf.name, "192.168.2.0");
        let about_networks: Vec<_> = warnings
            .iter()
            .filter(|w| w.file.ends_with(NETWORKS_CONF) && !w.message.contains("192.168.3.0"))
            .collect();
        assert!(about_networks.is_empty(), "{warnings}");
    }
}

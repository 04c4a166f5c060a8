//! `switches.conf`: the RADIUS clients (switches, WLAN controllers) and their VLANs.
//!
//! Sections: `[default]`, `[group <name>]`, and one section per switch named by IP address
//! (`[192.168.1.10]`) or CIDR (`[127.0.0.0/8]`). Each setting resolves switch → its group
//! (`group=<name>`) → `[default]` → built-in default. An empty value (`guestVlan=`) means "not
//! set here" and inherits.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::diag::FileDiags;
use crate::ini::{Document, Entry, Section};
use crate::roles::RolesConf;
use crate::value::{SECRET_ADVICE, parse_bool, secret_weakness, suggestion, vlan_problem};

/// Whether Access-Requests from a switch must carry a Message-Authenticator (BlastRADIUS,
/// CVE-2024-3596).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequireMessageAuthenticator {
    /// Always required: requests without one are dropped.
    #[default]
    Yes,
    /// Never required (legacy switches; vulnerable to BlastRADIUS).
    No,
    /// Required once the switch has been seen sending one (FreeRADIUS's `auto`).
    Auto,
}

/// The resolved settings of one switch (after switch → group → default inheritance).
#[derive(Clone, PartialEq, Eq)]
pub struct SwitchSettings {
    /// Section name, e.g. `192.168.1.10` or `127.0.0.0/8`.
    pub id: String,
    pub secret: Vec<u8>,
    pub registration_vlan: Option<String>,
    pub isolation_vlan: Option<String>,
    /// Role name → VLAN, from `<role>Vlan` keys after inheritance.
    pub role_vlans: BTreeMap<String, String>,
    pub require_message_authenticator: RequireMessageAuthenticator,
    pub vlan_map: bool,
    /// The switch sends MAB as EAP-MD5 with the MAC as identity and password (Juniper EX
    /// `mac-radius`, Dell): such a conversation ends in the MAB decision.
    pub eap_md5_mab: bool,
    pub description: Option<String>,
    pub switch_type: Option<String>,
    /// RFC 5176 CoA / Disconnect (see [`crate::dynauth`]).
    pub dynauth: crate::dynauth::DynAuthSettings,
}

impl fmt::Debug for SwitchSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchSettings")
            .field("id", &self.id)
            .field(
                "secret",
                &format_args!("<{} bytes redacted>", self.secret.len()),
            )
            .field("registration_vlan", &self.registration_vlan)
            .field("isolation_vlan", &self.isolation_vlan)
            .field("role_vlans", &self.role_vlans)
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field("vlan_map", &self.vlan_map)
            .field("eap_md5_mab", &self.eap_md5_mab)
            .field("description", &self.description)
            .field("switch_type", &self.switch_type)
            .field("dynauth", &self.dynauth)
            .finish()
    }
}

/// A switch id that is neither an IP address nor a CIDR, or that is defined twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchIdError {
    #[error("switch id {0:?} is neither an IP address nor a CIDR")]
    Invalid(String),
    #[error("switch id {0:?} covers the same addresses as {1:?}")]
    Duplicate(String, String),
}

/// All switches, indexed for per-packet look-up by source address.
#[derive(Debug, Clone, Default)]
pub struct SwitchesConf {
    switches: Vec<SwitchSettings>,
    exact: HashMap<IpAddr, usize>,
    /// (prefix length, network bits → switch index), longest prefix first.
    v4: Vec<(u8, HashMap<u32, usize>)>,
    v6: Vec<(u8, HashMap<u128, usize>)>,
}

enum SwitchId {
    Host(IpAddr),
    Net(IpNet),
}

fn parse_id(id: &str) -> Option<SwitchId> {
    if let Ok(ip) = id.parse::<IpAddr>() {
        return Some(SwitchId::Host(ip.to_canonical()));
    }
    let net = id.parse::<IpNet>().ok()?;
    let net = match net {
        // ::ffff:10.0.0.0/104 is 10.0.0.0/8 as seen by a dual-stack socket.
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), n.prefix_len() - 96).ok()?,
            None => net,
        },
        _ => net,
    };
    Some(SwitchId::Net(net.trunc()))
}

impl SwitchesConf {
    /// Indexes resolved switches (ids must be IPs or CIDRs, each address range at most once).
    pub fn new(switches: Vec<SwitchSettings>) -> Result<SwitchesConf, SwitchIdError> {
        let mut conf = SwitchesConf::default();
        let mut seen_net: HashMap<IpNet, usize> = HashMap::new();
        for (i, s) in switches.iter().enumerate() {
            match parse_id(&s.id).ok_or_else(|| SwitchIdError::Invalid(s.id.clone()))? {
                SwitchId::Host(ip) => {
                    if let Some(prev) = conf.exact.insert(ip, i) {
                        return Err(SwitchIdError::Duplicate(
                            s.id.clone(),
                            switches[prev].id.clone(),
                        ));
                    }
                }
                SwitchId::Net(net) => {
                    if let Some(prev) = seen_net.insert(net, i) {
                        return Err(SwitchIdError::Duplicate(
                            s.id.clone(),
                            switches[prev].id.clone(),
                        ));
                    }
                    match net {
                        IpNet::V4(n) => {
                            insert(&mut conf.v4, n.prefix_len(), u32::from(n.network()), i)
                        }
                        IpNet::V6(n) => {
                            insert(&mut conf.v6, n.prefix_len(), u128::from(n.network()), i)
                        }
                    }
                }
            }
        }
        conf.switches = switches;
        Ok(conf)
    }

    /// The switch a RADIUS packet from `ip` belongs to: the `[ip]` section if there is one, else
    /// the most specific (longest prefix) CIDR section containing `ip`. IPv4-mapped IPv6
    /// addresses are treated as IPv4. `[default]` and groups never match.
    pub fn lookup(&self, ip: IpAddr) -> Option<&SwitchSettings> {
        self.lookup_index(ip).map(|i| &self.switches[i])
    }

    /// Like [`SwitchesConf::lookup`], as a position for [`SwitchesConf::at`]: what a request
    /// keeps (with its `Arc<Config>`) to reach its switch again without a second lookup.
    pub fn lookup_index(&self, ip: IpAddr) -> Option<usize> {
        let ip = ip.to_canonical();
        if let Some(&i) = self.exact.get(&ip) {
            return Some(i);
        }
        match ip {
            IpAddr::V4(a) => longest(&self.v4, u32::from(a), mask32),
            IpAddr::V6(a) => longest(&self.v6, u128::from(a), mask128),
        }
    }

    /// The switch at a position [`SwitchesConf::lookup_index`] returned.
    pub fn at(&self, index: usize) -> Option<&SwitchSettings> {
        self.switches.get(index)
    }

    /// All switches in file order.
    pub fn switches(&self) -> &[SwitchSettings] {
        &self.switches
    }

    /// The switch with this section name.
    pub fn get(&self, id: &str) -> Option<&SwitchSettings> {
        self.switches.iter().find(|s| s.id == id)
    }

    pub(crate) fn from_document(
        doc: Option<&Document>,
        roles: &RolesConf,
        d: &mut FileDiags<'_>,
    ) -> SwitchesConf {
        let resolved = match doc {
            Some(doc) => resolve_all(doc, roles, d),
            None => Vec::new(),
        };
        if resolved.is_empty() {
            d.warning(None, None, "no switch is defined: every RADIUS request will be ignored; add a section named by the switch's IP address (e.g. [192.168.1.10]) with its radiusSecret");
        }
        SwitchesConf::new(resolved).expect("ids were validated and de-duplicated while resolving")
    }
}

fn insert<K: std::hash::Hash + Eq>(
    table: &mut Vec<(u8, HashMap<K, usize>)>,
    len: u8,
    key: K,
    i: usize,
) {
    let pos = match table.binary_search_by(|(l, _)| len.cmp(l)) {
        Ok(pos) => pos,
        Err(pos) => {
            table.insert(pos, (len, HashMap::new()));
            pos
        }
    };
    table[pos].1.insert(key, i);
}

fn longest<K: std::hash::Hash + Eq + std::ops::BitAnd<Output = K> + Copy>(
    table: &[(u8, HashMap<K, usize>)],
    addr: K,
    mask: impl Fn(u8) -> K,
) -> Option<usize> {
    table
        .iter()
        .find_map(|(len, map)| map.get(&(addr & mask(*len))).copied())
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Keys ironfence uses.
const KEYS: &[&str] = &[
    "radiusSecret",
    "secret",
    "registrationVlan",
    "isolationVlan",
    "require_message_authenticator",
    "description",
    "type",
    "VlanMap",
    "group",
    "eap_md5_mab",
];

/// PacketFence switch keys accepted silently (kept for compatibility, not used yet).
pub const PF_SWITCH_KEYS: &[&str] = &[
    "mode",
    "deauthMethod",
    "deauthOnPrevious",
    "macDetectionVlan",
    "inlineVlan",
    "normalVlan",
    "vlans",
    "RoleMap",
    "AccessListMap",
    "UrlMap",
    "VpnMap",
    "InterfaceMap",
    "NetworkMap",
    "VoIPEnabled",
    "VoIPLLDPDetect",
    "VoIPCDPDetect",
    "VoIPDHCPDetect",
    "uplink",
    "uplink_dynamic",
    "controllerPort",
    "useCoA",
    "cliAccess",
    "cliTransport",
    "cliUser",
    "cliPwd",
    "cliEnablePwd",
    "wsTransport",
    "wsUser",
    "wsPwd",
    "SNMPVersion",
    "SNMPVersionTrap",
    "SNMPCommunityRead",
    "SNMPCommunityWrite",
    "SNMPCommunityTrap",
    "SNMPEngineID",
    "SNMPUserNameRead",
    "SNMPAuthProtocolRead",
    "SNMPAuthPasswordRead",
    "SNMPPrivProtocolRead",
    "SNMPPrivPasswordRead",
    "SNMPUserNameWrite",
    "SNMPAuthProtocolWrite",
    "SNMPAuthPasswordWrite",
    "SNMPPrivProtocolWrite",
    "SNMPPrivPasswordWrite",
    "SNMPUserNameTrap",
    "SNMPAuthProtocolTrap",
    "SNMPAuthPasswordTrap",
    "SNMPPrivProtocolTrap",
    "SNMPPrivPasswordTrap",
    "SNMPUseConnector",
    "macSearchesMaxNb",
    "macSearchesSleepInterval",
    "radiusDeauthUseConnector",
    "ExternalPortalEnforcement",
    "PostMfaValidation",
    "TenantId",
    "inlineTrigger",
    "always_trigger",
    "UsePushACLs",
    "UseDownloadableACLs",
    "DownloadableACLsLimit",
    "ACLsLimit",
    "ACLsType",
    "portalURL",
];

/// `<role><suffix>` keys PacketFence defines per role (e.g. `guestRole`, `guestUrl`).
const PF_ROLE_SUFFIXES: &[&str] = &["Role", "Url", "AccessList", "Vpn", "Interface", "Network"];
/// Pseudo-roles PacketFence uses with the per-role suffixes.
const PSEUDO_ROLES: &[&str] = &["registration", "isolation", "macDetection", "inline"];

#[derive(Clone, Copy)]
enum Kind<'a> {
    Default,
    Group(&'a str),
    Switch,
}

/// A validated section: which keys it sets (non-empty values only).
struct Layer<'a> {
    name: &'a str,
    kind: Kind<'a>,
    section: Section<'a>,
}

impl<'a> Layer<'a> {
    fn get(&self, key: &str) -> Option<&'a Entry> {
        self.section.get(key).filter(|e| !e.value.is_empty())
    }

    fn secret(&self) -> Option<&'a Entry> {
        self.get("radiusSecret").or_else(|| self.get("secret"))
    }
}

fn resolve_all(doc: &Document, roles: &RolesConf, d: &mut FileDiags<'_>) -> Vec<SwitchSettings> {
    let mut default = None;
    let mut groups: HashMap<&str, Layer<'_>> = HashMap::new();
    let mut switches: Vec<Layer<'_>> = Vec::new();
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, line) in doc.sections() {
        let section = doc.section(name).expect("listed section");
        let kind = if name == "default" {
            Kind::Default
        } else if let Some(g) = name.strip_prefix("group ") {
            Kind::Group(g.trim())
        } else if let Some(id) = parse_id(name) {
            let canon = match id {
                SwitchId::Host(ip) => ip.to_string(),
                SwitchId::Net(net) => {
                    if net.to_string() != name {
                        d.warning(Some(line), Some(name), format!("{name} has host bits set: it covers {net}; rename the section to [{net}]"));
                    }
                    format!("net {net}")
                }
            };
            if let Some(prev) = seen.insert(canon, name) {
                d.error(Some(line), Some(name), format!("[{name}] covers the same addresses as [{prev}] (line {}): merge the two sections", doc.section(prev).map_or(0, |s| s.line())));
                continue;
            }
            Kind::Switch
        } else {
            d.error(
                Some(line),
                Some(name),
                format!("section [{name}] is not a switch IP address (e.g. [192.168.1.10]), a CIDR (e.g. [192.168.1.0/24]), [default] or [group <name>]: rename it"),
            );
            continue;
        };
        let layer = Layer {
            name,
            kind,
            section,
        };
        check_keys(&layer, roles, d);
        match kind {
            Kind::Default => default = Some(layer),
            Kind::Group(g) => {
                groups.insert(g, layer);
            }
            Kind::Switch => switches.push(layer),
        }
    }

    // Report weak secrets and disabled Message-Authenticator once, where they are written.
    for layer in default.iter().chain(groups.values()).chain(switches.iter()) {
        if let Some(e) = layer.secret()
            && let Some(why) = secret_weakness(&e.value)
        {
            d.warning(
                Some(e.line),
                Some(layer.name),
                format!("the RADIUS secret {why}: {SECRET_ADVICE}"),
            );
        }
        let rma = layer.get("require_message_authenticator");
        if let Some(e) =
            rma.filter(|e| parse_rma(&e.value) == Some(RequireMessageAuthenticator::No))
        {
            d.warning(Some(e.line), Some(layer.name), "require_message_authenticator = no leaves these switches open to BlastRADIUS (CVE-2024-3596): set yes (or auto for switches that cannot be upgraded yet)");
        }
    }

    let mut out = Vec::with_capacity(switches.len());
    for sw in &switches {
        let group = match sw.get("group") {
            None => None,
            Some(e) => match groups.get(e.value.as_str()) {
                Some(g) => Some(g),
                None => {
                    d.error(
                        Some(e.line),
                        Some(sw.name),
                        format!(
                            "group {:?} is not defined{}: add a [group {}] section or fix the name",
                            e.value,
                            suggestion(&e.value, groups.keys().copied()),
                            e.value
                        ),
                    );
                    None
                }
            },
        };
        let layers: Vec<&Layer<'_>> = [Some(sw), group, default.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        let find = |key: &str| {
            layers
                .iter()
                .find_map(|l| l.get(key))
                .map(|e| e.value.clone())
        };
        let secret = layers.iter().find_map(|l| l.secret());
        if secret.is_none() {
            d.error(
                Some(sw.section.line()),
                Some(sw.name),
                "this switch has no RADIUS secret (not in its section, its group or [default]): add radiusSecret=<a random secret of at least 22 characters>, the same as configured on the switch",
            );
        }
        let registration_vlan = find("registrationVlan");
        if registration_vlan.is_none() {
            d.warning(Some(sw.section.line()), Some(sw.name), "no registrationVlan for this switch (nor in its group or [default]): unregistered devices will be rejected; add registrationVlan=<VLAN>");
        }
        let mut role_vlans = BTreeMap::new();
        for layer in layers.iter().rev() {
            for (key, e) in layer.section.entries() {
                if let Some(role) = role_of_vlan_key(key)
                    && !e.value.is_empty()
                    && roles.contains(role)
                {
                    role_vlans.insert(role.to_string(), e.value.clone());
                }
            }
        }
        out.push(SwitchSettings {
            id: sw.name.to_string(),
            secret: secret
                .map(|e| e.value.clone().into_bytes())
                .unwrap_or_default(),
            registration_vlan,
            isolation_vlan: find("isolationVlan"),
            role_vlans,
            require_message_authenticator: find("require_message_authenticator")
                .and_then(|v| parse_rma(&v))
                .unwrap_or_default(),
            vlan_map: find("VlanMap").and_then(|v| parse_bool(&v)).unwrap_or(true),
            eap_md5_mab: find("eap_md5_mab")
                .and_then(|v| parse_bool(&v))
                .unwrap_or(false),
            description: find("description"),
            dynauth: crate::dynauth::resolve(find, find("type").as_deref()),
            switch_type: find("type"),
        });
    }
    out
}

/// Whether `key` means something in a switches.conf section (a key ironfence uses, a
/// PacketFence key it accepts, or a per-role key of a role in `roles`); otherwise the reason
/// with a suggestion. checkup only warns about unknown keys (a hand-edited file keeps working);
/// admin tools refuse them so that a typo is not saved silently.
pub fn check_key(key: &str, roles: &RolesConf) -> Result<(), String> {
    if KEYS.contains(&key)
        || PF_SWITCH_KEYS.contains(&key)
        || crate::dynauth::KEYS.contains(&key)
        || key == "registrationVlan"
        || key == "isolationVlan"
    {
        return Ok(());
    }
    if let Some(role) = role_of_vlan_key(key) {
        return if roles.contains(role) {
            Ok(())
        } else {
            Err(format!(
                "{key} maps role {role:?}, which is not in roles.conf{}: create the role first",
                suggestion(role, roles.names()).replace('?', "Vlan?")
            ))
        };
    }
    if PF_ROLE_SUFFIXES.iter().any(|suffix| {
        key.strip_suffix(suffix)
            .is_some_and(|r| roles.contains(r) || PSEUDO_ROLES.contains(&r))
    }) {
        return Ok(());
    }
    let vlan_keys: Vec<String> = roles.names().map(|r| format!("{r}Vlan")).collect();
    let candidates = KEYS
        .iter()
        .copied()
        .chain(crate::dynauth::KEYS.iter().copied())
        .chain(PF_SWITCH_KEYS.iter().copied())
        .chain(vlan_keys.iter().map(String::as_str));
    Err(format!(
        "unknown switches.conf key {key}{}",
        suggestion(key, candidates)
    ))
}

fn parse_rma(v: &str) -> Option<RequireMessageAuthenticator> {
    if v.eq_ignore_ascii_case("auto") {
        return Some(RequireMessageAuthenticator::Auto);
    }
    parse_bool(v).map(|b| {
        if b {
            RequireMessageAuthenticator::Yes
        } else {
            RequireMessageAuthenticator::No
        }
    })
}

/// `guestVlan` → `guest` (not for the special VLAN keys).
fn role_of_vlan_key(key: &str) -> Option<&str> {
    let role = key.strip_suffix("Vlan")?;
    let special = [
        "registration",
        "isolation",
        "macDetection",
        "inline",
        "normal",
        "",
    ];
    (!special.contains(&role)).then_some(role)
}

fn check_keys(layer: &Layer<'_>, roles: &RolesConf, d: &mut FileDiags<'_>) {
    let sec = Some(layer.name);
    for (key, e) in layer.section.entries() {
        let at = Some(e.line);
        let v = e.value.as_str();
        let vlan_key =
            key == "registrationVlan" || key == "isolationVlan" || role_of_vlan_key(key).is_some();
        if vlan_key
            && !v.is_empty()
            && let Some(problem) = vlan_problem(v)
        {
            d.error(at, sec, format!("{key} {v:?} {problem}: fix the value"));
        }
        if let Some(role) = role_of_vlan_key(key) {
            if !roles.contains(role) {
                d.warning(
                    at,
                    sec,
                    format!(
                        "{key} maps role {role:?}, which is not in roles.conf{}: add a [{role}] section to roles.conf or remove the key",
                        suggestion(role, roles.names()).replace('?', "Vlan?")
                    ),
                );
            }
            continue;
        }
        match key {
            "require_message_authenticator" if !v.is_empty() && parse_rma(v).is_none() => {
                d.error(
                    at,
                    sec,
                    format!(
                        "require_message_authenticator {v:?} is not yes, no or auto: fix the value"
                    ),
                );
            }
            "VlanMap" if !v.is_empty() && parse_bool(v).is_none() => {
                d.error(
                    at,
                    sec,
                    format!("VlanMap {v:?} is not Y or N: fix the value"),
                );
            }
            "eap_md5_mab" if !v.is_empty() && parse_bool(v).is_none() => {
                d.error(
                    at,
                    sec,
                    format!("eap_md5_mab {v:?} is not yes or no: fix the value"),
                );
            }
            "group" if !matches!(layer.kind, Kind::Switch) => {
                d.warning(
                    at,
                    sec,
                    "group= only has an effect in a switch section: remove it",
                );
            }
            "radiusSecret" if layer.section.get("secret").is_some() => {
                d.warning(
                    at,
                    sec,
                    "both radiusSecret and secret are set: radiusSecret is used; remove secret",
                );
            }
            k if crate::dynauth::KEYS.contains(&k) => {
                if !v.is_empty()
                    && let Some(problem) = crate::dynauth::problem(k, v)
                {
                    d.error(at, sec, problem);
                }
            }
            k if KEYS.contains(&k) || PF_SWITCH_KEYS.contains(&k) => {}
            k if PF_ROLE_SUFFIXES.iter().any(|suffix| {
                k.strip_suffix(suffix)
                    .is_some_and(|r| roles.contains(r) || PSEUDO_ROLES.contains(&r))
            }) => {}
            k => {
                let vlan_keys: Vec<String> = roles.names().map(|r| format!("{r}Vlan")).collect();
                let candidates = KEYS
                    .iter()
                    .copied()
                    .chain(crate::dynauth::KEYS.iter().copied())
                    .chain(PF_SWITCH_KEYS.iter().copied())
                    .chain(vlan_keys.iter().map(String::as_str));
                d.warning(
                    at,
                    sec,
                    format!(
                        "unknown key {k}{}: it is ignored; fix or remove it",
                        suggestion(k, candidates)
                    ),
                );
            }
        }
    }
}

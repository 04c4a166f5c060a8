//! Per-switch Dynamic Authorization (RFC 5176 CoA / Disconnect) settings in `switches.conf`,
//! inherited switch → group → `[default]` like every other key:
//!
//! | key | values | default |
//! |---|---|---|
//! | `radiusDisconnect` | `disconnect`, `coa`, `coaOrDisconnect` (CoA, on NAK or timeout a Disconnect) | per `type` (table below), else `disconnect` |
//! | `coaPort` / `disconnectPort` | UDP port | 3799 (RFC 5176 §2.3) |
//! | `controllerIp` | where requests go (a WLAN controller for its APs) | the address the switch's RADIUS traffic comes from |
//! | `coaAttributes` / `disconnectAttributes` | `Name=value, Name=value` (dictionary names) or `none` | per `type` (table below), else none |
//! | `coaRequireMessageAuthenticator` | yes/no: refuse ACK/NAKs without one | `no` (Cisco IOS and most switches omit it; the Response Authenticator still authenticates the reply) |
//! | `coaSource` | `management` (this server's management address), `vip` (the cluster's management VIP), or an IP | `management` |
//!
//! Vendor behaviour is data ([`TYPE_DEFAULTS`]), not code: a switch `type` starting with a
//! prefix of the table gets that row's defaults.

use std::net::IpAddr;

use ironfence_radius::dynauth::{AttributeSpec, DynAuthKind};

use crate::value::parse_bool;

/// `radiusDisconnect`: which requests to send, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RadiusDisconnect {
    /// Disconnect-Request only.
    #[default]
    Disconnect,
    /// CoA-Request only.
    Coa,
    /// CoA-Request; on a NAK or no answer, Disconnect-Request.
    CoaOrDisconnect,
}

impl RadiusDisconnect {
    /// The fallback chain.
    pub fn chain(self) -> &'static [DynAuthKind] {
        match self {
            RadiusDisconnect::Disconnect => &[DynAuthKind::Disconnect],
            RadiusDisconnect::Coa => &[DynAuthKind::Coa],
            RadiusDisconnect::CoaOrDisconnect => &[DynAuthKind::Coa, DynAuthKind::Disconnect],
        }
    }

    fn parse(v: &str) -> Option<RadiusDisconnect> {
        [
            ("disconnect", RadiusDisconnect::Disconnect),
            ("coa", RadiusDisconnect::Coa),
            ("coaOrDisconnect", RadiusDisconnect::CoaOrDisconnect),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v))
        .map(|(_, r)| r)
    }
}

/// Which local address CoA requests leave from (the switch accepts them only from addresses
/// it knows as a dynamic-authorization client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CoaSource {
    /// This server's management address (cluster.conf); on a single server, the address the
    /// kernel picks for the route to the switch.
    #[default]
    Management,
    /// The cluster's management VIP: one address for the switch whichever server sends
    /// (it must be held by this server for the kernel to send from it).
    ManagementVip,
    /// This address.
    Ip(IpAddr),
}

/// One row of per-type defaults.
#[derive(Debug, Clone, Copy)]
pub struct TypeDefaults {
    /// `type` prefix (`Cisco::` matches `Cisco::Catalyst_2960`).
    pub type_prefix: &'static str,
    pub radius_disconnect: RadiusDisconnect,
    pub coa_attributes: &'static [(&'static str, &'static str)],
    pub disconnect_attributes: &'static [(&'static str, &'static str)],
}

/// Per switch `type` defaults (PacketFence's modules, as data). Cisco IOS re-authenticates a
/// MAB session on `subscriber:command=reauthenticate`; `bounce-host-port` (set it in
/// `coaAttributes`) flaps the port instead, for devices that must renew their DHCP lease.
pub const TYPE_DEFAULTS: &[TypeDefaults] = &[TypeDefaults {
    type_prefix: "Cisco::",
    radius_disconnect: RadiusDisconnect::CoaOrDisconnect,
    coa_attributes: &[("Cisco-AVPair", "subscriber:command=reauthenticate")],
    disconnect_attributes: &[],
}];

/// The generic row (no `type`, or one not in [`TYPE_DEFAULTS`]).
pub const GENERIC: TypeDefaults = TypeDefaults {
    type_prefix: "",
    radius_disconnect: RadiusDisconnect::Disconnect,
    coa_attributes: &[],
    disconnect_attributes: &[],
};

/// RFC 5176 §2.3.
pub const DEFAULT_DYNAUTH_PORT: u16 = 3799;

/// The resolved Dynamic Authorization settings of one switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynAuthSettings {
    pub radius_disconnect: RadiusDisconnect,
    pub coa_port: u16,
    pub disconnect_port: u16,
    /// `None`: send to the address the switch's RADIUS requests come from.
    pub controller_ip: Option<IpAddr>,
    pub coa_attributes: Vec<AttributeSpec>,
    pub disconnect_attributes: Vec<AttributeSpec>,
    pub require_message_authenticator: bool,
    pub source: CoaSource,
}

impl Default for DynAuthSettings {
    fn default() -> Self {
        resolve(|_| None, None)
    }
}

impl DynAuthSettings {
    /// Port for `kind`.
    pub fn port(&self, kind: DynAuthKind) -> u16 {
        match kind {
            DynAuthKind::Coa => self.coa_port,
            DynAuthKind::Disconnect => self.disconnect_port,
        }
    }

    /// Extra attributes for `kind`.
    pub fn attributes(&self, kind: DynAuthKind) -> &[AttributeSpec] {
        match kind {
            DynAuthKind::Coa => &self.coa_attributes,
            DynAuthKind::Disconnect => &self.disconnect_attributes,
        }
    }
}

/// The keys of this module (known to switches.conf's key check).
pub(crate) const KEYS: &[&str] = &[
    "radiusDisconnect",
    "coaPort",
    "disconnectPort",
    "controllerIp",
    "coaAttributes",
    "disconnectAttributes",
    "coaRequireMessageAuthenticator",
    "coaSource",
];

fn type_defaults(switch_type: Option<&str>) -> &'static TypeDefaults {
    switch_type
        .and_then(|t| TYPE_DEFAULTS.iter().find(|d| t.starts_with(d.type_prefix)))
        .unwrap_or(&GENERIC)
}

fn specs(list: &[(&str, &str)]) -> Vec<AttributeSpec> {
    list.iter()
        .filter_map(|(n, v)| AttributeSpec::parse(n, v).ok())
        .collect()
}

/// `Name=value, Name=value` or `none`.
fn parse_attributes(v: &str) -> Result<Vec<AttributeSpec>, String> {
    if v.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (n, val) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not Name=value"))?;
            AttributeSpec::parse(n.trim(), val.trim()).map_err(|e| e.to_string())
        })
        .collect()
}

fn parse_port(v: &str) -> Option<u16> {
    v.parse::<u16>().ok().filter(|p| *p != 0)
}

fn parse_source(v: &str) -> Option<CoaSource> {
    if v.eq_ignore_ascii_case("management") {
        Some(CoaSource::Management)
    } else if v.eq_ignore_ascii_case("vip") {
        Some(CoaSource::ManagementVip)
    } else {
        v.parse().ok().map(CoaSource::Ip)
    }
}

/// Why `value` is not valid for `key` (one of [`KEYS`]); `None` when it is.
pub(crate) fn problem(key: &str, value: &str) -> Option<String> {
    let v = value.trim();
    match key {
        "radiusDisconnect" if RadiusDisconnect::parse(v).is_none() => Some(format!(
            "radiusDisconnect {v:?} is not disconnect, coa or coaOrDisconnect: fix the value"
        )),
        "coaPort" | "disconnectPort" if parse_port(v).is_none() => Some(format!(
            "{key} {v:?} is not a UDP port (1-65535): fix the value"
        )),
        "controllerIp" if v.parse::<IpAddr>().is_err() => Some(format!(
            "controllerIp {v:?} is not an IP address: fix the value (or remove it to send to the switch's own address)"
        )),
        "coaAttributes" | "disconnectAttributes" => parse_attributes(v)
            .err()
            .map(|e| format!("{key}: {e}: write Name=value pairs separated by commas (dictionary names such as Cisco-AVPair), or none")),
        "coaRequireMessageAuthenticator" if parse_bool(v).is_none() => Some(format!(
            "coaRequireMessageAuthenticator {v:?} is not yes or no: fix the value"
        )),
        "coaSource" if parse_source(v).is_none() => Some(format!(
            "coaSource {v:?} is not management, vip or an IP address: fix the value"
        )),
        _ => None,
    }
}

/// Resolves the settings from the inherited `find` (switch → group → default; invalid values
/// were reported by [`problem`] and fall back to the default).
pub(crate) fn resolve(
    find: impl Fn(&str) -> Option<String>,
    switch_type: Option<&str>,
) -> DynAuthSettings {
    let defaults = type_defaults(switch_type);
    let attrs = |key: &str, dflt: &[(&str, &str)]| {
        find(key)
            .and_then(|v| parse_attributes(&v).ok())
            .unwrap_or_else(|| specs(dflt))
    };
    DynAuthSettings {
        radius_disconnect: find("radiusDisconnect")
            .and_then(|v| RadiusDisconnect::parse(v.trim()))
            .unwrap_or(defaults.radius_disconnect),
        coa_port: find("coaPort")
            .and_then(|v| parse_port(v.trim()))
            .unwrap_or(DEFAULT_DYNAUTH_PORT),
        disconnect_port: find("disconnectPort")
            .and_then(|v| parse_port(v.trim()))
            .unwrap_or(DEFAULT_DYNAUTH_PORT),
        controller_ip: find("controllerIp").and_then(|v| v.trim().parse().ok()),
        coa_attributes: attrs("coaAttributes", defaults.coa_attributes),
        disconnect_attributes: attrs("disconnectAttributes", defaults.disconnect_attributes),
        require_message_authenticator: find("coaRequireMessageAuthenticator")
            .and_then(|v| parse_bool(v.trim()))
            .unwrap_or(false),
        source: find("coaSource")
            .and_then(|v| parse_source(v.trim()))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)], t: Option<&str>) -> DynAuthSettings {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(|k| m.get(k).cloned(), t)
    }

    fn avpair(v: &str) -> AttributeSpec {
        AttributeSpec::parse("Cisco-AVPair", v).unwrap()
    }

    #[test]
    fn defaults_per_type_table() {
        let generic = with(&[], None);
        assert_eq!(generic.radius_disconnect, RadiusDisconnect::Disconnect);
        assert_eq!((generic.coa_port, generic.disconnect_port), (3799, 3799));
        assert!(generic.coa_attributes.is_empty());
        assert_eq!(generic.controller_ip, None);
        assert!(!generic.require_message_authenticator);
        assert_eq!(generic.source, CoaSource::Management);
        assert_eq!(with(&[], Some("Generic")), generic);

        let cisco = with(&[], Some("Cisco::Catalyst_2960"));
        assert_eq!(cisco.radius_disconnect, RadiusDisconnect::CoaOrDisconnect);
        assert_eq!(
            cisco.coa_attributes,
            vec![avpair("subscriber:command=reauthenticate")]
        );
        assert!(cisco.disconnect_attributes.is_empty());
    }

    #[test]
    fn keys_override_the_type_defaults() {
        let s = with(
            &[
                ("radiusDisconnect", "coa"),
                ("coaPort", "1700"),
                ("disconnectPort", "3800"),
                ("controllerIp", "10.0.0.5"),
                (
                    "coaAttributes",
                    "Cisco-AVPair=subscriber:command=bounce-host-port",
                ),
                ("disconnectAttributes", "Service-Type=Authorize-Only"),
                ("coaRequireMessageAuthenticator", "yes"),
                ("coaSource", "vip"),
            ],
            Some("Cisco::Catalyst_2960"),
        );
        assert_eq!(s.radius_disconnect, RadiusDisconnect::Coa);
        assert_eq!(s.port(DynAuthKind::Coa), 1700);
        assert_eq!(s.port(DynAuthKind::Disconnect), 3800);
        assert_eq!(s.controller_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(
            s.attributes(DynAuthKind::Coa),
            &[avpair("subscriber:command=bounce-host-port")]
        );
        assert_eq!(s.disconnect_attributes.len(), 1);
        assert!(s.require_message_authenticator);
        assert_eq!(s.source, CoaSource::ManagementVip);
        // `none` removes a type default.
        let none = with(&[("coaAttributes", "none")], Some("Cisco::Catalyst_2960"));
        assert!(none.coa_attributes.is_empty());
        assert_eq!(
            with(&[("coaSource", "192.0.2.9")], None).source,
            CoaSource::Ip("192.0.2.9".parse().unwrap())
        );
    }

    #[test]
    fn chains() {
        use DynAuthKind::*;
        assert_eq!(RadiusDisconnect::Disconnect.chain(), &[Disconnect]);
        assert_eq!(RadiusDisconnect::Coa.chain(), &[Coa]);
        assert_eq!(
            RadiusDisconnect::CoaOrDisconnect.chain(),
            &[Coa, Disconnect]
        );
        assert_eq!(
            RadiusDisconnect::parse("COAORDISCONNECT"),
            Some(RadiusDisconnect::CoaOrDisconnect)
        );
    }

    #[test]
    fn problems_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("radiusDisconnect", "coaOrDisconnect", None),
            ("radiusDisconnect", "bounce", Some("is not disconnect, coa")),
            ("coaPort", "3799", None),
            ("coaPort", "0", Some("not a UDP port")),
            ("disconnectPort", "70000", Some("not a UDP port")),
            ("controllerIp", "10.0.0.1", None),
            ("controllerIp", "wlc.example", Some("not an IP address")),
            (
                "coaAttributes",
                "Cisco-AVPair=subscriber:command=reauthenticate",
                None,
            ),
            ("coaAttributes", "none", None),
            ("coaAttributes", "Cisco-AVPair", Some("is not Name=value")),
            ("coaAttributes", "Nope=1", Some("unknown attribute")),
            (
                "disconnectAttributes",
                "User-Password=x",
                Some("cannot be set"),
            ),
            (
                "coaRequireMessageAuthenticator",
                "maybe",
                Some("not yes or no"),
            ),
            ("coaSource", "vip", None),
            ("coaSource", "elsewhere", Some("not management, vip")),
        ];
        for (k, v, want) in cases {
            let got = problem(k, v);
            match want {
                None => assert_eq!(got, None, "{k}={v}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{k}={v}: {got:?}"
                ),
            }
        }
    }
}

//! The registration-network DNS responder's settings (docs/dns.md):
//!
//! - `[fencing]` (PacketFence's keys): `passthrough = enabled|disabled`, `passthroughs =
//!   example.com,*.example.org` (exact names and `*.` wildcards: the domain and every name
//!   below it), and ironfence's `passthrough_resolvers` (IPv4 addresses, `ip` or `ip:port`;
//!   empty: the `nameserver` lines of /etc/resolv.conf).
//! - `[dns]` (ironfence's): `port` (53), `ttl` (15s, PacketFence's value), `upstream_timeout`
//!   (3s), `tcp` (enabled).

use super::Reader;
use crate::diag::FileDiags;
use crate::ini::Document;
use crate::value::{parse_bool, parse_duration};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConf {
    /// `[fencing] passthrough`: forward the pass-through domains to a real resolver.
    pub passthrough: bool,
    /// `[fencing] passthroughs`, one entry per domain (`example.com`, `*.example.org`).
    pub passthroughs: Vec<String>,
    /// `[fencing] passthrough_resolvers`; empty: /etc/resolv.conf's name servers.
    pub resolvers: Vec<SocketAddr>,
    /// `[dns] port`: UDP (and TCP) port of the listeners.
    pub port: u16,
    /// `[dns] ttl`: TTL of the portal answer and of negative answers, in seconds.
    pub ttl: u32,
    /// `[dns] upstream_timeout`: how long a resolver has to answer a pass-through query.
    pub upstream_timeout: Duration,
    /// `[dns] tcp`: also answer over TCP (RFC 7766).
    pub tcp: bool,
}

impl Default for DnsConf {
    fn default() -> Self {
        DnsConf {
            passthrough: true,
            passthroughs: Vec::new(),
            resolvers: Vec::new(),
            port: 53,
            ttl: 15,
            upstream_timeout: Duration::from_secs(3),
            tcp: true,
        }
    }
}

pub(super) const DNS_KEYS: &[&str] = &["port", "ttl", "upstream_timeout", "tcp"];
/// `[fencing]` keys ironfence reads, then PacketFence's that it accepts without using them.
pub(super) const FENCING_KEYS: &[&str] = &[
    "passthrough",
    "passthroughs",
    "passthrough_resolvers",
    "isolation_passthrough",
    "isolation_passthroughs",
    "proxy_passthroughs",
    "interception_proxy",
    "interception_proxy_port",
    "range",
    "registration",
    "wait_for_redirect",
    "whitelist",
];

/// A pass-through entry: `name` or `*.name`, labels of 1-63 characters, 253 in all.
fn valid_passthrough(e: &str) -> bool {
    let name = e.strip_prefix("*.").unwrap_or(e);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|c| c.is_ascii_graphic() && c != b'*' && c != b',')
        })
}

fn parse_resolver(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Some(SocketAddr::V4(SocketAddrV4::new(ip, 53)));
    }
    s.parse::<SocketAddrV4>()
        .ok()
        .filter(|a| a.port() != 0)
        .map(SocketAddr::V4)
}

pub(super) fn read(doc: &Document, d: &mut FileDiags<'_>) -> DnsConf {
    let mut c = DnsConf::default();
    let mut r = Reader::new(doc, "fencing", FENCING_KEYS, d);
    if let Some(on) = r.parsed("passthrough", "enabled or disabled", parse_bool) {
        c.passthrough = on;
    }
    if let Some(list) = r.str("passthroughs") {
        for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if valid_passthrough(e) {
                c.passthroughs.push(e.to_string());
            } else {
                r.error_at(
                    "passthroughs",
                    format!("{e:?} is not a domain name or *.domain: fix the entry"),
                );
            }
        }
    }
    if let Some(list) = r.str("passthrough_resolvers") {
        for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match parse_resolver(e) {
                Some(a) => c.resolvers.push(a),
                None => r.error_at(
                    "passthrough_resolvers",
                    format!("{e:?} is not an IPv4 address (or address:port) of a resolver"),
                ),
            }
        }
    }
    for unused in ["isolation_passthrough", "isolation_passthroughs"] {
        if r.str(unused).is_some() {
            r.warn_at(unused, format!("{unused} is not used yet: the isolation network's DNS forwards the passthroughs= domains like the registration network's"));
        }
    }
    let mut r = Reader::new(doc, "dns", DNS_KEYS, d);
    if let Some(p) = r.parsed("port", "a UDP port (1-65535)", super::parse_port) {
        c.port = p;
    }
    if let Some(t) = r.parsed("ttl", "a duration of at most a day (e.g. 15s)", |s| {
        parse_duration(s).filter(|t| t.as_secs() <= 86_400)
    }) {
        c.ttl = t.as_secs() as u32;
    }
    if let Some(t) = r.parsed("upstream_timeout", "a duration from 1s to 30s", |s| {
        parse_duration(s).filter(|t| (1..=30).contains(&t.as_secs()))
    }) {
        c.upstream_timeout = t;
    }
    if let Some(on) = r.parsed("tcp", "enabled or disabled", parse_bool) {
        c.tcp = on;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;

    fn load(text: &str) -> (DnsConf, Diagnostics) {
        let doc = Document::parse("pf.conf", text).unwrap();
        let mut diags = Diagnostics::default();
        let c = read(
            &doc,
            &mut FileDiags {
                file: std::path::Path::new("pf.conf"),
                out: &mut diags,
            },
        );
        (c, diags)
    }

    #[test]
    fn defaults_are_packetfences() {
        let (c, diags) = load("");
        assert_eq!(c, DnsConf::default());
        assert_eq!((c.port, c.ttl, c.passthrough), (53, 15, true));
        assert!(diags.is_empty());
    }

    #[test]
    fn keys_are_read_and_bad_values_named() {
        let (c, diags) = load(
            "[fencing]\npassthrough = enabled\npassthroughs = example.com, *.example.org\n\
             passthrough_resolvers = 192.0.2.53, 192.0.2.54:5353\n\
             [dns]\nport = 5353\nttl = 30s\nupstream_timeout = 2s\ntcp = disabled\n",
        );
        assert!(diags.is_empty(), "{diags}");
        assert_eq!(c.passthroughs, ["example.com", "*.example.org"]);
        assert_eq!(
            c.resolvers,
            [
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "192.0.2.54:5353".parse().unwrap()
            ]
        );
        assert_eq!((c.port, c.ttl, c.tcp), (5353, 30, false));
        assert_eq!(c.upstream_timeout, Duration::from_secs(2));

        let (_, diags) = load(
            "[fencing]\npassthroughs = a..b, *, ok.example\npassthrough_resolvers = resolver.example\n\
             [dns]\nttl = 2d\nupstream_timeout = 0\n",
        );
        let text = diags.to_string();
        for want in [
            "\"a..b\"",
            "\"*\"",
            "resolver.example",
            "ttl",
            "upstream_timeout",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(!text.contains("ok.example"), "{text}");
    }
}

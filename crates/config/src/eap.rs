//! `eap.conf`: the 802.1X (EAP) server's settings, PacketFence's `eap.conf` ideas in our INI
//! dialect. One section `[eap]` (per-connection profiles are not done yet). A missing file means
//! every default; an unknown key is an error naming file:line.

use crate::diag::FileDiags;
use crate::ini::Document;
use crate::value::{parse_bool, parse_duration, suggestion};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const EAP_CONF: &str = "eap.conf";
/// The only section of eap.conf.
pub const EAP_SECTION: &str = "eap";

/// The EAP methods `methods` can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EapMethod {
    Tls,
    Peap,
    Ttls,
}

impl EapMethod {
    pub fn name(self) -> &'static str {
        match self {
            EapMethod::Tls => "tls",
            EapMethod::Peap => "peap",
            EapMethod::Ttls => "ttls",
        }
    }

    pub fn parse(s: &str) -> Option<EapMethod> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" => Some(EapMethod::Tls),
            "peap" => Some(EapMethod::Peap),
            "ttls" => Some(EapMethod::Ttls),
            _ => None,
        }
    }
}

/// A TLS protocol version `tls_min_version` / `tls_max_version` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// The cipher suite names `cipher_suites` accepts: rustls' names of the suites its ring
/// provider implements (the server checks at start that each one is still there).
pub const CIPHER_SUITES: &[&str] = &[
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// The longest ticket lifetime rustls (and RFC 8446 §4.6.1) allows for TLS 1.3: 7 days.
pub const MAX_TICKET_LIFETIME: Duration = Duration::from_secs(7 * 86_400);

/// Where the server's ticket keys are kept (relative to the configuration directory).
pub const TICKET_KEY_FILE: &str = "ssl/eap-ticket.key";

/// eap.conf `[eap]`, typed. Paths are resolved against the configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapConf {
    /// `enabled`: answer EAP at all (disabled: Access-Requests with EAP-Message are rejected).
    pub enabled: bool,
    /// `methods`: offered in this order; the first is proposed after Identity.
    pub methods: Vec<EapMethod>,
    pub tls_min_version: TlsVersion,
    pub tls_max_version: TlsVersion,
    /// `cipher_suites`: rustls suite names ([`CIPHER_SUITES`]); empty = rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// TLS payload octets per EAP packet (256..=4000).
    pub fragment_size: usize,
    /// A conversation with no round for this long is forgotten.
    pub timeout: Duration,
    pub max_rounds: u32,
    pub max_conversations: usize,
    pub max_conversations_per_switch: usize,
    /// Server certificate chain (PEM, end-entity first).
    pub certificate: PathBuf,
    /// Server private key (PEM).
    pub private_key: PathBuf,
    /// CAs that EAP-TLS client certificates must chain to (PEM).
    pub ca: PathBuf,
    /// Certificate revocation lists (PEM or DER), optional.
    pub crl: Option<PathBuf>,
    /// TLS session resumption (tickets) on.
    pub resumption: bool,
    pub ticket_lifetime: Duration,
    /// The name sent in MSCHAPv2 challenges (default: this server's identity / hostname).
    pub server_name: String,
    /// authentication.conf source ids asked for PEAP/TTLS inner logins, in order.
    pub password_sources: Vec<String>,
    /// An EAPTLS source whose rules map certificate attributes to a role.
    pub certificate_source: Option<String>,
    /// A successful 802.1X login registers the node with the role (PacketFence behaviour).
    pub register_on_success: bool,
    /// Whether `password_sources` was written in eap.conf (a default `local` that does not
    /// exist is not an error).
    pub password_sources_explicit: bool,
    /// Line of each key in eap.conf, for later checks (source references).
    pub(crate) lines: Vec<(String, usize)>,
}

const KEYS: &[&str] = &[
    "enabled",
    "methods",
    "tls_min_version",
    "tls_max_version",
    "cipher_suites",
    "fragment_size",
    "timeout",
    "max_rounds",
    "max_conversations",
    "max_conversations_per_switch",
    "certificate",
    "private_key",
    "ca",
    "crl",
    "resumption",
    "ticket_lifetime",
    "server_name",
    "password_sources",
    "certificate_source",
    "register_on_success",
];

/// Whether `key` means something in eap.conf `[eap]`; otherwise why.
pub fn check_key(key: &str) -> Result<(), String> {
    if KEYS.contains(&key) {
        Ok(())
    } else {
        Err(format!(
            "unknown eap.conf key {key}{} (known: {})",
            suggestion(key, KEYS.iter().copied()),
            KEYS.join(", ")
        ))
    }
}

impl EapConf {
    /// Every default, paths under `conf_dir`.
    pub fn defaults(conf_dir: &Path, server_name: &str) -> EapConf {
        EapConf {
            enabled: true,
            methods: vec![EapMethod::Peap, EapMethod::Tls, EapMethod::Ttls],
            tls_min_version: TlsVersion::Tls12,
            tls_max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            fragment_size: 1024,
            timeout: Duration::from_secs(60),
            max_rounds: 50,
            max_conversations: 16_384,
            max_conversations_per_switch: 4_096,
            certificate: conf_dir.join("ssl/server.crt"),
            private_key: conf_dir.join("ssl/server.key"),
            ca: conf_dir.join("ssl/ca.pem"),
            crl: None,
            resumption: true,
            ticket_lifetime: Duration::from_secs(8 * 3600),
            server_name: server_name.to_string(),
            password_sources: vec!["local".to_string()],
            certificate_source: None,
            register_on_success: true,
            password_sources_explicit: false,
            lines: Vec::new(),
        }
    }

    /// The line of `key` in eap.conf, if it was written there.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l)
    }

    pub(crate) fn from_document(
        doc: Option<&Document>,
        conf_dir: &Path,
        server_name: &str,
        d: &mut FileDiags<'_>,
    ) -> EapConf {
        let mut conf = EapConf::defaults(conf_dir, server_name);
        let Some(doc) = doc else { return conf };
        for (name, line) in doc.sections() {
            if name != EAP_SECTION {
                d.error(
                    Some(line),
                    Some(name),
                    format!(
                        "unknown section [{name}]: eap.conf has one section, [eap] (per-connection profiles are not supported yet)"
                    ),
                );
            }
        }
        let Some(section) = doc.section(EAP_SECTION) else {
            return conf;
        };
        let sec = Some(EAP_SECTION);
        for (key, entry) in section.entries() {
            let at = Some(entry.line);
            let v = entry.value.trim();
            conf.lines.push((key.to_string(), entry.line));
            let boolean = |slot: &mut bool, d: &mut FileDiags<'_>| match parse_bool(v) {
                Some(b) => *slot = b,
                None => d.error(at, sec, format!("{key} {v:?} is not enabled or disabled")),
            };
            match key {
                "enabled" => boolean(&mut conf.enabled, d),
                "resumption" => boolean(&mut conf.resumption, d),
                "register_on_success" => boolean(&mut conf.register_on_success, d),
                "methods" => {
                    let mut methods = Vec::new();
                    for m in list(v) {
                        match EapMethod::parse(m) {
                            Some(m) if methods.contains(&m) => {
                                d.error(at, sec, format!("methods lists {} twice", m.name()))
                            }
                            Some(m) => methods.push(m),
                            // EAP-MD5 is never a login method (no keys, no mutual
                            // authentication): only switches sending MAB in it use it.
                            None if m.eq_ignore_ascii_case("md5") => d.error(
                                at,
                                sec,
                                "md5 is not a login method: MAB sent as EAP-MD5 (Juniper mac-radius, Dell) \
                                 is answered per switch, with eap_md5_mab = yes in switches.conf",
                            ),
                            None => d.error(
                                at,
                                sec,
                                format!("method {m:?} is not tls, peap or ttls"),
                            ),
                        }
                    }
                    if methods.is_empty() {
                        d.error(
                            at,
                            sec,
                            "methods is empty: list at least one of tls, peap, ttls (or set enabled=disabled)",
                        );
                    } else {
                        conf.methods = methods;
                    }
                }
                "tls_min_version" | "tls_max_version" => {
                    let version = match v {
                        "1.2" => TlsVersion::Tls12,
                        "1.3" => TlsVersion::Tls13,
                        _ => {
                            d.error(
                                at,
                                sec,
                                format!("{key} {v:?} is not 1.2 or 1.3 (older TLS versions are not supported)"),
                            );
                            continue;
                        }
                    };
                    if key == "tls_min_version" {
                        conf.tls_min_version = version;
                    } else {
                        conf.tls_max_version = version;
                    }
                }
                "cipher_suites" => {
                    let mut suites = Vec::new();
                    for s in list(v) {
                        let upper = s.to_ascii_uppercase();
                        if CIPHER_SUITES.contains(&upper.as_str()) {
                            suites.push(upper);
                        } else {
                            d.error(
                                at,
                                sec,
                                format!(
                                    "cipher suite {s:?} is not one rustls offers{} (known: {})",
                                    suggestion(&upper, CIPHER_SUITES.iter().copied()),
                                    CIPHER_SUITES.join(", ")
                                ),
                            );
                        }
                    }
                    conf.cipher_suites = suites;
                }
                "fragment_size" => match v.parse::<usize>() {
                    Ok(n @ 256..=4000) => conf.fragment_size = n,
                    _ => d.error(
                        at,
                        sec,
                        format!("fragment_size {v:?} is not a number of octets in 256..=4000"),
                    ),
                },
                "timeout" | "ticket_lifetime" => match parse_duration(v) {
                    Some(t) if !t.is_zero() => {
                        if key == "timeout" {
                            conf.timeout = t;
                        } else if t > MAX_TICKET_LIFETIME {
                            d.error(
                                at,
                                sec,
                                format!("ticket_lifetime {v:?} is longer than 7 days, the most TLS 1.3 allows (RFC 8446 §4.6.1)"),
                            );
                        } else {
                            conf.ticket_lifetime = t;
                        }
                    }
                    _ => d.error(
                        at,
                        sec,
                        format!("{key} {v:?} is not a duration (60s, 5m, 8h, 1D)"),
                    ),
                },
                "max_rounds" => match v.parse::<u32>() {
                    Ok(n) if n > 0 => conf.max_rounds = n,
                    _ => d.error(at, sec, format!("{key} {v:?} is not a positive number")),
                },
                "max_conversations" | "max_conversations_per_switch" => match v.parse::<usize>() {
                    Ok(n) if n > 0 => {
                        if key == "max_conversations" {
                            conf.max_conversations = n;
                        } else {
                            conf.max_conversations_per_switch = n;
                        }
                    }
                    _ => d.error(at, sec, format!("{key} {v:?} is not a positive number")),
                },
                "certificate" | "private_key" | "ca" | "crl" => {
                    if v.is_empty() {
                        if key == "crl" {
                            conf.crl = None;
                        } else {
                            d.error(at, sec, format!("{key} is empty: give a file path"));
                        }
                        continue;
                    }
                    let path = conf_dir.join(v);
                    match key {
                        "certificate" => conf.certificate = path,
                        "private_key" => conf.private_key = path,
                        "ca" => conf.ca = path,
                        _ => conf.crl = Some(path),
                    }
                }
                "server_name" => {
                    if v.is_empty() {
                        d.error(at, sec, "server_name is empty");
                    } else {
                        conf.server_name = v.to_string();
                    }
                }
                "password_sources" => {
                    conf.password_sources = list(v).map(str::to_string).collect();
                    conf.password_sources_explicit = true;
                }
                "certificate_source" => {
                    conf.certificate_source = Some(v.to_string()).filter(|s| !s.is_empty());
                }
                k => d.error(
                    at,
                    sec,
                    format!(
                        "unknown key {k}{}: remove it (known keys: {})",
                        suggestion(k, KEYS.iter().copied()),
                        KEYS.join(", ")
                    ),
                ),
            }
        }
        if conf.tls_min_version > conf.tls_max_version {
            d.error(
                conf.line_of("tls_min_version")
                    .or(conf.line_of("tls_max_version")),
                sec,
                format!(
                    "tls_min_version {} is above tls_max_version {}",
                    conf.tls_min_version.name(),
                    conf.tls_max_version.name()
                ),
            );
        }
        conf
    }

    /// Cross-file checks: `password_sources` and `certificate_source` name sources of the
    /// right type in authentication.conf.
    pub(crate) fn check_sources(
        &self,
        auth: &crate::authentication::AuthenticationConf,
        d: &mut FileDiags<'_>,
    ) {
        use crate::authentication::SourceKind;
        let sec = Some(EAP_SECTION);
        if self.password_sources_explicit {
            let at = self.line_of("password_sources");
            for id in &self.password_sources {
                match auth.source(id).map(|s| &s.kind) {
                    Some(SourceKind::Sql | SourceKind::Ldap(_)) => {}
                    Some(k) => d.error(
                        at,
                        sec,
                        format!(
                            "password source {id:?} is a {} source: PEAP/TTLS logins need SQL, LDAP or AD",
                            k.type_name()
                        ),
                    ),
                    None => d.error(
                        at,
                        sec,
                        format!(
                            "password source {id:?} is not defined in authentication.conf{}",
                            suggestion(id, auth.sources.iter().map(|s| s.id.as_str()))
                        ),
                    ),
                }
            }
        }
        if let Some(id) = &self.certificate_source {
            let at = self.line_of("certificate_source");
            match auth.source(id).map(|s| &s.kind) {
                Some(SourceKind::Eaptls) => {}
                Some(k) => d.error(
                    at,
                    sec,
                    format!(
                        "certificate_source {id:?} is a {} source: it must be type=EAPTLS",
                        k.type_name()
                    ),
                ),
                None => d.error(
                    at,
                    sec,
                    format!(
                        "certificate_source {id:?} is not defined in authentication.conf{}",
                        suggestion(id, auth.sources.iter().map(|s| s.id.as_str()))
                    ),
                ),
            }
        }
    }
}

/// A comma- or space-separated list.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Severity, checkup_as};

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        crate::test_support::make_private(dir.path());
        dir
    }

    fn eap_findings(d: &crate::Diagnostics) -> Vec<String> {
        d.iter()
            .filter(|x| x.file.ends_with(EAP_CONF))
            .map(|x| x.to_string())
            .collect()
    }

    #[test]
    fn absent_file_means_defaults() {
        let d = dir(&[]);
        let (cfg, diags) = crate::build(d.path(), Some("pf1"));
        assert!(eap_findings(&diags).is_empty(), "{diags}");
        assert_eq!(cfg.eap, EapConf::defaults(d.path(), "pf1"));
        assert_eq!(
            cfg.eap.methods,
            vec![EapMethod::Peap, EapMethod::Tls, EapMethod::Ttls]
        );
        assert_eq!(cfg.eap.certificate, d.path().join("ssl/server.crt"));
        assert_eq!(cfg.eap.ticket_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(cfg.eap.server_name, "pf1");
    }

    #[test]
    fn every_key_parses() {
        let d = dir(&[(
            EAP_CONF,
            "[eap]\nenabled=disabled\nmethods=tls, ttls\ntls_min_version=1.3\n\
             tls_max_version=1.3\ncipher_suites=TLS13_AES_128_GCM_SHA256\nfragment_size=1400\n\
             timeout=2m\nmax_rounds=20\nmax_conversations=100\nmax_conversations_per_switch=10\n\
             certificate=ssl/eap.crt\nprivate_key=ssl/eap.key\nca=ssl/clients-ca.pem\n\
             crl=ssl/ca.crl\nresumption=disabled\nticket_lifetime=1D\nserver_name=nac\n\
             register_on_success=disabled\n",
        )]);
        let (cfg, diags) = crate::build(d.path(), Some("pf1"));
        assert!(eap_findings(&diags).is_empty(), "{diags}");
        let e = &cfg.eap;
        assert!(!e.enabled && !e.resumption && !e.register_on_success);
        assert_eq!(e.methods, vec![EapMethod::Tls, EapMethod::Ttls]);
        assert_eq!(e.tls_min_version, TlsVersion::Tls13);
        assert_eq!(
            e.cipher_suites,
            vec!["TLS13_AES_128_GCM_SHA256".to_string()]
        );
        assert_eq!(e.fragment_size, 1400);
        assert_eq!(e.timeout, Duration::from_secs(120));
        assert_eq!(
            (
                e.max_rounds,
                e.max_conversations,
                e.max_conversations_per_switch
            ),
            (20, 100, 10)
        );
        assert_eq!(e.ca, d.path().join("ssl/clients-ca.pem"));
        assert_eq!(e.crl, Some(d.path().join("ssl/ca.crl")));
        assert_eq!(e.ticket_lifetime, Duration::from_secs(86_400));
        assert_eq!(e.server_name, "nac");
    }

    #[test]
    fn errors_name_file_and_line() {
        let d = dir(&[(
            EAP_CONF,
            "[eap]\nmethods=tls, leap, md5\ncipher_suites=TLS_RSA_WITH_RC4_128_MD5\n\
             fragment_size=100\nticket_lifetime=8D\nsurprise=1\ntls_min_version=1.1\n\
             password_sources=nowhere\n[profile x]\n",
        )]);
        let diags = checkup_as(d.path(), Some("pf1"));
        let found = eap_findings(&diags);
        let expect = [
            ":2 [eap]: method \"leap\" is not tls, peap or ttls",
            ":2 [eap]: md5 is not a login method: MAB sent as EAP-MD5 (Juniper mac-radius, Dell) is answered per switch, with eap_md5_mab = yes in switches.conf",
            ":3 [eap]: cipher suite \"TLS_RSA_WITH_RC4_128_MD5\" is not one rustls offers",
            ":4 [eap]: fragment_size \"100\" is not a number of octets in 256..=4000",
            ":5 [eap]: ticket_lifetime \"8D\" is longer than 7 days",
            ":6 [eap]: unknown key surprise",
            ":7 [eap]: tls_min_version \"1.1\" is not 1.2 or 1.3",
            ":8 [eap]: password source \"nowhere\" is not defined in authentication.conf",
            ":9 [profile x]: unknown section [profile x]",
        ];
        for e in expect {
            assert!(
                found.iter().any(|f| f.contains(e)),
                "missing {e:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        assert!(
            diags
                .iter()
                .filter(|x| x.file.ends_with(EAP_CONF))
                .all(|x| x.severity == Severity::Error)
        );
        assert!(crate::Config::load_as(d.path(), Some("pf1")).is_err());
    }

    #[test]
    fn source_references_are_checked() {
        let auth = "[local]\ntype=SQL\n[local rule all]\nclass=authentication\n\
                    action0=set_role=default\naction1=set_access_duration=1D\n\
                    [certs]\ntype=EAPTLS\n[certs rule staff]\nclass=authentication\n\
                    condition0=ou,equals,Staff\naction0=set_role=default\n\
                    action1=set_access_duration=1D\n[guests]\ntype=Null\n\
                    [guests rule all]\nclass=authentication\naction0=set_role=guest\n\
                    action1=set_access_duration=1D\n";
        let good = dir(&[
            ("authentication.conf", auth),
            (
                EAP_CONF,
                "[eap]\npassword_sources=local\ncertificate_source=certs\n",
            ),
        ]);
        let cfg = crate::Config::load_as(good.path(), Some("pf1")).unwrap();
        assert_eq!(cfg.eap.certificate_source.as_deref(), Some("certs"));
        let certs = cfg.authentication.source("certs").unwrap();
        assert_eq!(certs.kind.type_name(), "EAPTLS");
        assert_eq!(certs.rules[0].conditions[0].attribute, "ou");
        // An EAPTLS source is not offered on the portal.
        assert!(
            !cfg.authentication
                .profile_sources
                .contains(&"certs".to_string())
        );

        let bad = dir(&[
            ("authentication.conf", auth),
            (
                EAP_CONF,
                "[eap]\npassword_sources=guests\ncertificate_source=local\n",
            ),
        ]);
        let found = eap_findings(&checkup_as(bad.path(), Some("pf1")));
        assert!(
            found
                .iter()
                .any(|f| f.contains(":2 [eap]: password source \"guests\" is a Null source")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|f| f.contains(
                ":3 [eap]: certificate_source \"local\" is a SQL source: it must be type=EAPTLS"
            )),
            "{found:#?}"
        );
    }

    #[test]
    fn eaptls_rules_read_certificate_attributes_only() {
        let d = dir(&[(
            "authentication.conf",
            "[certs]\ntype=EAPTLS\n[certs rule x]\nclass=authentication\n\
             condition0=username,equals,bob\naction0=set_role=default\n\
             action1=set_access_duration=1D\n",
        )]);
        let diags = checkup_as(d.path(), Some("pf1"));
        assert!(diags.errors().any(|e| e.to_string().contains(
            ":3 [certs rule x]: EAPTLS rule condition reads \"username\", not a certificate attribute"
        )), "{diags}");
    }

    #[test]
    fn min_above_max_is_an_error() {
        let d = dir(&[(
            EAP_CONF,
            "[eap]\ntls_min_version=1.3\ntls_max_version=1.2\n",
        )]);
        let found = eap_findings(&checkup_as(d.path(), Some("pf1")));
        assert!(
            found
                .iter()
                .any(|f| f.contains(":2 [eap]: tls_min_version 1.3 is above tls_max_version 1.2")),
            "{found:#?}"
        );
    }

    #[test]
    fn check_key_names_the_known_keys() {
        assert!(check_key("fragment_size").is_ok());
        let e = check_key("fragment_sise").unwrap_err();
        assert!(e.contains("did you mean fragment_size?"), "{e}");
    }
}

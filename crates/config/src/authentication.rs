//! `authentication.conf` (the captive portal's authentication sources, PacketFence's shape) and
//! `profiles.conf` (which sources the portal's one profile, `[default]`, offers).
//!
//! ```text
//! [local]                       type=SQL      local users (store table `password`)
//! [guest]                       type=Null     acceptance of the usage policy
//! [ldap1]                       type=LDAP|AD  host port encryption basedn binddn password
//!                                             usernameattribute scope searchattributes
//! [ldap1 rule staff]            class=authentication  match=all|any
//!                               condition0=memberOf,contains,cn=staff
//!                               action0=set_role=staff  action1=set_access_duration=1D
//! ```
//!
//! Rules are kept in file order; the first one whose conditions hold decides the role and
//! the access duration (`crates/portal` evaluates them). A source without any rule refuses
//! everyone (checkup warns). A missing file means no source: the portal offers nothing.

use crate::diag::FileDiags;
use crate::ini::Document;
use crate::roles::RolesConf;
use crate::value::{parse_duration, suggestion};
use std::fmt;
use std::time::Duration;

pub const AUTHENTICATION_CONF: &str = "authentication.conf";
pub const PROFILES_CONF: &str = "profiles.conf";

/// The sources and the portal profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthenticationConf {
    /// In file order.
    pub sources: Vec<SourceConf>,
    /// Ids of the sources the landing page offers, in the order shown (profiles.conf
    /// `[default] sources`; every source, in file order, without it).
    pub profile_sources: Vec<String>,
    /// The profile's description (page heading).
    pub profile_description: Option<String>,
}

impl AuthenticationConf {
    pub fn source(&self, id: &str) -> Option<&SourceConf> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The sources the landing page offers, in order.
    pub fn offered(&self) -> impl Iterator<Item = &SourceConf> {
        self.profile_sources.iter().filter_map(|id| self.source(id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConf {
    pub id: String,
    pub description: String,
    pub kind: SourceKind,
    /// `[<id> rule <name>]` sections with `class=authentication`, in file order.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// `type=SQL`: local users.
    Sql,
    /// `type=Null`: guest access by accepting the usage policy.
    Null,
    /// `type=LDAP` or `type=AD`.
    Ldap(LdapConf),
    /// `type=EAPTLS`: 802.1X EAP-TLS; its rules' conditions read the client certificate's
    /// attributes ([`CERTIFICATE_ATTRIBUTES`]). Never offered on the portal.
    Eaptls,
}

/// The attributes an EAPTLS source's rule conditions can read from the client certificate:
/// `cn` (subject commonName), `subject` (the whole subject DN, RFC 4514 string), `issuer` (the
/// issuer DN), `email` (subject emailAddress or rfc822Name SAN), `upn` (Microsoft UPN otherName
/// SAN), `serial` (hex, lower case), `san_dns` (a dNSName SAN), `ou` (subject
/// organizationalUnitName).
pub const CERTIFICATE_ATTRIBUTES: &[&str] = &[
    "cn", "subject", "issuer", "email", "upn", "serial", "san_dns", "ou",
];

impl SourceKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::Sql => "SQL",
            SourceKind::Null => "Null",
            SourceKind::Ldap(l) if l.active_directory => "AD",
            SourceKind::Ldap(_) => "LDAP",
            SourceKind::Eaptls => "EAPTLS",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct LdapConf {
    pub active_directory: bool,
    pub host: String,
    pub port: u16,
    pub encryption: LdapEncryption,
    pub basedn: String,
    pub binddn: String,
    pub password: String,
    pub usernameattribute: String,
    pub scope: LdapScope,
    /// Attributes fetched for the rules (the user attribute is always fetched).
    pub searchattributes: Vec<String>,
    pub connection_timeout: Duration,
}

impl fmt::Debug for LdapConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConf")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("encryption", &self.encryption)
            .field("basedn", &self.basedn)
            .field("binddn", &self.binddn)
            .field("password", &"<redacted>")
            .field("usernameattribute", &self.usernameattribute)
            .field("scope", &self.scope)
            .field("searchattributes", &self.searchattributes)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapEncryption {
    None,
    Starttls,
    Ssl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapScope {
    Base,
    One,
    Sub,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    pub match_all: bool,
    pub conditions: Vec<Condition>,
    pub role: String,
    pub access: Access,
    /// Line of the `[<source> rule <name>]` header.
    pub line: usize,
}

/// How long the registration lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `set_access_duration`: from the registration on.
    Duration(Duration),
    /// `set_unreg_date`: a fixed date (UNIX seconds, midnight UTC of the date given).
    UnregDate(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub attribute: String,
    pub operator: Operator,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    Starts,
    Ends,
    /// Regular expression (`match` or PacketFence's `matches`).
    Match,
}

const SOURCE_KEYS: &[&str] = &[
    "type",
    "description",
    "host",
    "port",
    "encryption",
    "basedn",
    "binddn",
    "password",
    "usernameattribute",
    "scope",
    "searchattributes",
    "connection_timeout",
];
/// PacketFence source keys accepted and not used.
const PF_ONLY_SOURCE_KEYS: &[&str] = &[
    "realms",
    "set_access_durations",
    "hash_passwords",
    "read_timeout",
    "write_timeout",
    "cache_match",
    "email_attribute",
    "monitor",
    "shuffle",
    "dead_duration",
    "create_local_account",
    "local_account_logins",
    "unreg_on_acct_stop",
    "append_to_searchattributes",
    "client_cert_file",
    "client_key_file",
    "verify",
    "ca_file",
];
const RULE_KEYS: &[&str] = &["class", "description", "match", "status"];

/// Whether `key` means something in a source section of authentication.conf; otherwise why
/// (with a suggestion). checkup only warns; admin tools refuse unknown keys.
pub fn check_source_key(key: &str) -> Result<(), String> {
    if SOURCE_KEYS.contains(&key) || PF_ONLY_SOURCE_KEYS.contains(&key) {
        Ok(())
    } else {
        Err(format!(
            "unknown source key {key}{} (known: {})",
            suggestion(key, SOURCE_KEYS.iter().copied()),
            SOURCE_KEYS.join(", ")
        ))
    }
}

/// Whether `key` means something in a `[<source> rule <name>]` section.
pub fn check_rule_key(key: &str) -> Result<(), String> {
    let numbered = |p: &str| {
        key.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.parse::<u32>().is_ok())
    };
    if RULE_KEYS.contains(&key) || numbered("condition") || numbered("action") {
        Ok(())
    } else {
        Err(format!(
            "unknown rule key {key}: use conditionN, actionN, match, class, description"
        ))
    }
}

/// Parses `[Y-M-D]` into midnight UTC (UNIX seconds).
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.trim().split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

impl AuthenticationConf {
    pub(crate) fn from_documents(
        auth: Option<&Document>,
        profiles: Option<&Document>,
        roles: &RolesConf,
        d: &mut FileDiags<'_>,
        pd: &mut FileDiags<'_>,
    ) -> AuthenticationConf {
        let mut conf = AuthenticationConf::default();
        if let Some(doc) = auth {
            // Sources first, then their rules (a rule may precede its source in the file).
            for (name, line) in doc.sections() {
                if !name.contains(' ') {
                    let section = doc.section(name).expect("listed section");
                    if let Some(s) = parse_source(name, line, section, d) {
                        conf.sources.push(s);
                    }
                }
            }
            for (name, line) in doc.sections() {
                let Some((source, rule)) = name.split_once(" rule ") else {
                    if name.contains(' ') {
                        d.error(
                            Some(line),
                            Some(name),
                            "section name with spaces is neither a source id nor \
                             \"<source> rule <name>\": rename it",
                        );
                    }
                    continue;
                };
                let section = doc.section(name).expect("listed section");
                let Some(src) = conf.sources.iter_mut().find(|s| s.id == source.trim()) else {
                    d.error(
                        Some(line),
                        Some(name),
                        format!(
                            "rule of an unknown source {:?}: define [{}] first",
                            source.trim(),
                            source.trim()
                        ),
                    );
                    continue;
                };
                if let Some(r) = parse_rule(rule.trim(), line, name, section, roles, d) {
                    if src.kind == SourceKind::Eaptls {
                        for c in &r.conditions {
                            if !CERTIFICATE_ATTRIBUTES.contains(&c.attribute.as_str()) {
                                d.error(
                                    Some(line),
                                    Some(name),
                                    format!(
                                        "EAPTLS rule condition reads {:?}, not a certificate attribute{} (known: {})",
                                        c.attribute,
                                        suggestion(&c.attribute, CERTIFICATE_ATTRIBUTES.iter().copied()),
                                        CERTIFICATE_ATTRIBUTES.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    src.rules.push(r);
                }
            }
            for s in &conf.sources {
                if s.rules.is_empty() {
                    d.warning(
                        None,
                        Some(&s.id),
                        format!(
                            "source {} has no authentication rule: nobody can register through it; \
                             add [{} rule <name>] with class=authentication and action0=set_role=…",
                            s.id, s.id
                        ),
                    );
                }
            }
        }
        conf.profile_sources = conf
            .sources
            .iter()
            .filter(|s| s.kind != SourceKind::Eaptls)
            .map(|s| s.id.clone())
            .collect();
        if let Some(doc) = profiles {
            for (name, line) in doc.sections() {
                let section = doc.section(name).expect("listed section");
                if name != "default" {
                    pd.warning(
                        Some(line),
                        Some(name),
                        "only the [default] portal profile is used: its settings apply to every device",
                    );
                    continue;
                }
                for (key, entry) in section.entries() {
                    match key {
                        "sources" => {
                            let ids: Vec<String> = entry
                                .value
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect();
                            for id in &ids {
                                if conf.source(id).is_none() {
                                    pd.error(
                                        Some(entry.line),
                                        Some(name),
                                        format!(
                                            "source {id:?} is not defined in authentication.conf{}",
                                            suggestion(
                                                id,
                                                conf.sources.iter().map(|s| s.id.as_str())
                                            )
                                        ),
                                    );
                                }
                            }
                            conf.profile_sources = ids;
                        }
                        "description" => conf.profile_description = Some(entry.value.clone()),
                        _ => {}
                    }
                }
            }
        }
        conf
    }
}

fn parse_source(
    id: &str,
    line: usize,
    section: crate::ini::Section<'_>,
    d: &mut FileDiags<'_>,
) -> Option<SourceConf> {
    let sec = Some(id);
    let get = |k: &str| section.get(k).map(|e| e.value.trim().to_string());
    let at = |k: &str| section.get(k).map(|e| e.line).or(Some(line));
    for (key, entry) in section.entries() {
        if !SOURCE_KEYS.contains(&key) && !PF_ONLY_SOURCE_KEYS.contains(&key) {
            d.warning(
                Some(entry.line),
                sec,
                format!(
                    "unknown key {key}{}: remove it",
                    suggestion(key, SOURCE_KEYS.iter().copied())
                ),
            );
        }
    }
    let description = get("description").unwrap_or_else(|| id.to_string());
    let kind = match get("type").as_deref() {
        Some("SQL") => SourceKind::Sql,
        Some("Null") => SourceKind::Null,
        Some("EAPTLS") => SourceKind::Eaptls,
        Some(t @ ("LDAP" | "AD")) => {
            let mut ok = true;
            let mut need = |k: &str| match get(k) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    d.error(Some(line), sec, format!("{t} source needs {k}"));
                    ok = false;
                    String::new()
                }
            };
            let host = need("host");
            let basedn = need("basedn");
            let encryption = match get("encryption").as_deref() {
                None | Some("none") | Some("") => LdapEncryption::None,
                Some("starttls") => LdapEncryption::Starttls,
                Some("ssl") => LdapEncryption::Ssl,
                Some(v) => {
                    d.error(
                        at("encryption"),
                        sec,
                        format!("encryption {v:?} is not none, starttls or ssl"),
                    );
                    ok = false;
                    LdapEncryption::None
                }
            };
            if encryption != LdapEncryption::None {
                // The portal's LDAP client has no TLS yet: say so at checkup, not at login.
                d.warning(
                    at("encryption"),
                    sec,
                    "encryption=starttls/ssl is not supported by this ironfence build: logins \
                     through this source fail until it is set to none (use a trusted network)",
                );
            }
            let default_port = if encryption == LdapEncryption::Ssl {
                636
            } else {
                389
            };
            let port = match get("port") {
                None => default_port,
                Some(p) => match p.parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => {
                        d.error(
                            at("port"),
                            sec,
                            format!("port {p:?} is not a TCP port (1-65535)"),
                        );
                        ok = false;
                        default_port
                    }
                },
            };
            let scope = match get("scope").as_deref() {
                None | Some("sub") | Some("") => LdapScope::Sub,
                Some("one") => LdapScope::One,
                Some("base") => LdapScope::Base,
                Some(v) => {
                    d.error(
                        at("scope"),
                        sec,
                        format!("scope {v:?} is not base, one or sub"),
                    );
                    ok = false;
                    LdapScope::Sub
                }
            };
            let connection_timeout = match get("connection_timeout") {
                None => Duration::from_secs(5),
                Some(v) => parse_duration(&v).unwrap_or_else(|| {
                    d.error(
                        at("connection_timeout"),
                        sec,
                        format!("connection_timeout {v:?} is not a duration"),
                    );
                    ok = false;
                    Duration::from_secs(5)
                }),
            };
            let usernameattribute = get("usernameattribute")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| {
                    if t == "AD" {
                        "sAMAccountName".into()
                    } else {
                        "uid".into()
                    }
                });
            let searchattributes = get("searchattributes")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if !ok {
                return None;
            }
            SourceKind::Ldap(LdapConf {
                active_directory: t == "AD",
                host,
                port,
                encryption,
                basedn,
                binddn: get("binddn").unwrap_or_default(),
                password: get("password").unwrap_or_default(),
                usernameattribute,
                scope,
                searchattributes,
                connection_timeout,
            })
        }
        Some(t) => {
            d.error(
                at("type"),
                sec,
                format!("source type {t:?} is not supported: use SQL, Null, LDAP, AD or EAPTLS"),
            );
            return None;
        }
        None => {
            d.error(
                Some(line),
                sec,
                "source without type: add type=SQL, Null, LDAP, AD or EAPTLS",
            );
            return None;
        }
    };
    Some(SourceConf {
        id: id.to_string(),
        description,
        kind,
        rules: Vec::new(),
    })
}

fn parse_rule(
    name: &str,
    line: usize,
    sec_name: &str,
    section: crate::ini::Section<'_>,
    roles: &RolesConf,
    d: &mut FileDiags<'_>,
) -> Option<Rule> {
    let sec = Some(sec_name);
    let class = section.get("class").map(|e| e.value.trim());
    if class.is_some_and(|c| c != "authentication") {
        // administration rules concern the admin UI; not used by the portal.
        return None;
    }
    if section
        .get("status")
        .is_some_and(|e| e.value.trim() == "disabled")
    {
        return None;
    }
    let mut ok = true;
    let match_all = match section.get("match") {
        None => true,
        Some(e) => match e.value.trim() {
            "all" => true,
            "any" => false,
            v => {
                d.error(Some(e.line), sec, format!("match {v:?} is not all or any"));
                ok = false;
                true
            }
        },
    };
    let mut conditions = Vec::new();
    let mut role = None;
    let mut access = None;
    let mut keyed: Vec<(u32, &str, &crate::ini::Entry)> = Vec::new();
    for (key, entry) in section.entries() {
        let at = Some(entry.line);
        if let Some(n) = key
            .strip_prefix("condition")
            .and_then(|n| n.parse::<u32>().ok())
        {
            keyed.push((n, "c", entry));
        } else if let Some(n) = key
            .strip_prefix("action")
            .and_then(|n| n.parse::<u32>().ok())
        {
            keyed.push((n, "a", entry));
        } else if !RULE_KEYS.contains(&key) {
            d.warning(
                at,
                sec,
                format!(
                    "unknown key {key}: remove it (conditionN, actionN, match, class, description)"
                ),
            );
        }
    }
    keyed.sort_by_key(|(n, kind, _)| (*kind, *n));
    for (_, kind, entry) in keyed {
        let at = Some(entry.line);
        let v = entry.value.trim();
        if kind == "c" {
            let mut parts = v.splitn(3, ',');
            let (Some(attr), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                d.error(
                    at,
                    sec,
                    format!("condition {v:?} is not attribute,operator,value"),
                );
                ok = false;
                continue;
            };
            let operator = match op.trim() {
                "equals" => Operator::Equals,
                "not_equals" => Operator::NotEquals,
                "contains" => Operator::Contains,
                "starts" => Operator::Starts,
                "ends" => Operator::Ends,
                "match" | "matches" => {
                    if let Err(e) = regex_check(value) {
                        d.error(at, sec, format!("condition regex {value:?}: {e}"));
                        ok = false;
                    }
                    Operator::Match
                }
                o => {
                    d.error(at, sec, format!("operator {o:?} is not equals, not_equals, contains, starts, ends or match"));
                    ok = false;
                    continue;
                }
            };
            conditions.push(Condition {
                attribute: attr.trim().to_string(),
                operator,
                value: value.to_string(),
            });
        } else {
            let (what, arg) = v
                .split_once('=')
                .map(|(a, b)| (a.trim(), b.trim()))
                .unwrap_or((v, ""));
            match what {
                "set_role" => {
                    if !roles.contains(arg) {
                        d.error(
                            at,
                            sec,
                            format!(
                                "role {arg:?} is not defined in roles.conf{}",
                                suggestion(arg, roles.names())
                            ),
                        );
                        ok = false;
                    }
                    role = Some(arg.to_string());
                }
                "set_access_duration" => match parse_duration(arg) {
                    Some(dur) if !dur.is_zero() => access = Some(Access::Duration(dur)),
                    _ => {
                        d.error(at, sec, format!("set_access_duration {arg:?} is not a duration (30m, 12h, 1D, 1W, 1M, 1Y)"));
                        ok = false;
                    }
                },
                "set_unreg_date" => match parse_date(arg) {
                    Some(t) => access = Some(Access::UnregDate(t)),
                    None => {
                        d.error(
                            at,
                            sec,
                            format!("set_unreg_date {arg:?} is not a date YYYY-MM-DD"),
                        );
                        ok = false;
                    }
                },
                other => {
                    d.error(at, sec, format!("action {other:?} is not set_role, set_access_duration or set_unreg_date"));
                    ok = false;
                }
            }
        }
    }
    let Some(role) = role else {
        d.error(
            Some(line),
            sec,
            "rule without set_role: add action0=set_role=<role>",
        );
        return None;
    };
    let Some(access) = access else {
        d.error(Some(line), sec, "rule without access duration: add set_access_duration=1D (or set_unreg_date=YYYY-MM-DD)");
        return None;
    };
    ok.then(|| Rule {
        name: name.to_string(),
        description: section.get("description").map(|e| e.value.clone()),
        match_all,
        conditions,
        role,
        access,
        line,
    })
}

/// Compiles a rule's regular expression the way the portal does (regex-lite syntax).
fn regex_check(re: &str) -> Result<(), String> {
    regex_lite::Regex::new(re)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::{Config, Diagnostics, checkup};
    use std::time::Duration;

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("conf").join(name), text).unwrap();
        }
        crate::test_support::make_private(&dir.path().join("conf"));
        dir
    }

    fn errors(files: &[(&str, &str)]) -> Diagnostics {
        let d = dir(files);
        let diags = checkup(&d.path().join("conf"));
        Diagnostics(
            diags
                .0
                .into_iter()
                .filter(|d| {
                    d.file.ends_with("authentication.conf") || d.file.ends_with("profiles.conf")
                })
                .collect(),
        )
    }

    const GOOD: &str = "\
[local]
type=SQL
description=Staff and contractors

[guest]
type=Null

[ldap1]
type=LDAP
host=127.0.73.1
port=3389
basedn=dc=example,dc=org
binddn=cn=admin,dc=example,dc=org
password=secret
usernameattribute=uid
searchattributes=memberOf, mail

[ldap1 rule staff]
class=authentication
match=any
condition0=memberOf,contains,cn=staff
condition1=mail,match,^boss@
action0=set_role=default
action1=set_access_duration=1D

[ldap1 rule everyone]
class=authentication
action0=set_role=guest
action1=set_unreg_date=2030-01-01

[local rule all]
action0=set_role=default
action1=set_access_duration=12h

[guest rule aup]
action0=set_role=guest
action1=set_access_duration=2h
";

    #[test]
    fn parses_sources_rules_and_profile() {
        let d = dir(&[
            ("authentication.conf", GOOD),
            (
                "profiles.conf",
                "[default]\nsources=guest,local,ldap1\ndescription=Welcome\n",
            ),
        ]);
        let c = Config::load(&d.path().join("conf")).unwrap_or_else(|e| panic!("{e}"));
        let a = &c.authentication;
        assert_eq!(
            a.sources.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["local", "guest", "ldap1"]
        );
        assert_eq!(
            a.offered().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["guest", "local", "ldap1"]
        );
        assert_eq!(a.profile_description.as_deref(), Some("Welcome"));
        let ldap = a.source("ldap1").unwrap();
        let super::SourceKind::Ldap(l) = &ldap.kind else {
            panic!("{ldap:?}")
        };
        assert_eq!(
            (l.host.as_str(), l.port, l.encryption),
            ("127.0.73.1", 3389, super::LdapEncryption::None)
        );
        assert_eq!(l.searchattributes, ["memberOf", "mail"]);
        assert!(
            !format!("{l:?}").contains("secret"),
            "password redacted in Debug"
        );
        assert_eq!(ldap.rules.len(), 2);
        assert_eq!(ldap.rules[0].name, "staff");
        assert!(!ldap.rules[0].match_all);
        assert_eq!(ldap.rules[0].conditions.len(), 2);
        assert_eq!(
            ldap.rules[0].access,
            super::Access::Duration(Duration::from_secs(86_400))
        );
        assert_eq!(
            ldap.rules[1].access,
            super::Access::UnregDate(1_893_456_000)
        );
        assert_eq!(
            a.source("local").unwrap().rules[0].access,
            super::Access::Duration(Duration::from_secs(43_200))
        );
    }

    #[test]
    fn without_profiles_conf_every_source_is_offered() {
        let d = dir(&[("authentication.conf", GOOD)]);
        let c = Config::load(&d.path().join("conf")).unwrap();
        assert_eq!(
            c.authentication.profile_sources,
            ["local", "guest", "ldap1"]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "\
[local]
type=SQL

[web]
type=Facebook

[ldap1]
type=LDAP
host=h
basedn=dc=x
encryption=tls

[local rule r]
condition0=uid,resembles,x
action0=set_role=nosuchrole
action1=set_access_duration=forever

[local rule r2]
condition0=uid,match,(unclosed
action0=set_role=guest
action1=set_access_duration=1h

[local rule r3]
action0=set_role=guest

[nosource rule x]
action0=set_role=guest
";
        let diags = errors(&[
            ("authentication.conf", text),
            ("profiles.conf", "[default]\nsources=local,gest\n"),
        ]);
        let has = |line: usize, needle: &str| {
            assert!(
                diags
                    .iter()
                    .any(|d| d.line == Some(line) && d.message.contains(needle)),
                "no diagnostic at line {line} containing {needle:?} in:\n{diags}"
            );
        };
        has(5, "source type \"Facebook\" is not supported");
        has(11, "encryption \"tls\" is not none, starttls or ssl");
        has(14, "operator \"resembles\"");
        has(15, "role \"nosuchrole\" is not defined");
        has(16, "set_access_duration \"forever\"");
        has(19, "condition regex");
        has(23, "rule without access duration");
        has(26, "rule of an unknown source \"nosource\"");
        has(2, "source \"gest\" is not defined");
        let shown = diags.to_string();
        assert!(shown.contains("authentication.conf:5 [web]"), "{shown}");
        assert!(shown.contains("profiles.conf:2 [default]"), "{shown}");
    }

    #[test]
    fn ldap_tls_is_flagged_at_checkup() {
        let text = "[ldap1]\ntype=LDAP\nhost=h\nbasedn=dc=x\nencryption=ssl\n\n\
                    [ldap1 rule r]\naction0=set_role=guest\naction1=set_access_duration=1h\n";
        let diags = errors(&[("authentication.conf", text)]);
        assert!(!diags.has_errors(), "{diags}");
        assert!(
            diags.warnings().any(|w| w.line == Some(5)
                && w.message.contains("not supported by this ironfence build")),
            "{diags}"
        );
    }

    #[test]
    fn source_without_rules_warns() {
        let diags = errors(&[("authentication.conf", "[guest]\ntype=Null\n")]);
        assert!(!diags.has_errors(), "{diags}");
        assert!(
            diags.warnings().any(|w| w
                .message
                .contains("source guest has no authentication rule")),
            "{diags}"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(super::parse_date("1970-01-01"), Some(0));
        assert_eq!(super::parse_date("2030-01-01"), Some(1_893_456_000));
        assert_eq!(super::parse_date("2024-02-29"), Some(1_709_164_800));
        assert_eq!(super::parse_date("2024-13-01"), None);
        assert_eq!(super::parse_date("yesterday"), None);
    }
}

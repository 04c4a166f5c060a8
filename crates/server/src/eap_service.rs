//! The 802.1X service of one server: its EAP conversation table (shared by every RADIUS
//! listener of the server: its own address, the VIPs' local backend, the backend port), built
//! from `eap.conf` and `conf/ssl`, and the credential checks the EAP server asks for.
//!
//! Configuration changes (reload) apply to new conversations; open ones finish with the
//! configuration they began with. A configuration whose certificates cannot be loaded is
//! refused with the reason and the running one stays in force.

use crate::Shared;
use crate::portal::sources::{self, AuthError, Credentials};
use ironfence_config::Config;
use ironfence_config::authentication::SourceKind;
use ironfence_config::eap::EapMethod;
use ironfence_core::UnixTime;
use ironfence_eap::{Conversations, ConversationsConfig, EapType, Outcome, Verdict};
use ironfence_portal::rules::{self, Attributes};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What a credential check established, carried by the conversation to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// The authentication source (authentication.conf id) that accepted the login.
    pub source: String,
    /// The owner recorded on the node (`pid`).
    pub pid: String,
    /// The source's attributes, for its rules.
    pub attributes: Attributes,
}

/// The registration a login earns: the first matching rule of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginGrant {
    pub source: String,
    pub rule: String,
    pub pid: String,
    pub role: String,
    pub unregdate: UnixTime,
}

/// The conversation table, absent while 802.1X is disabled or was never configurable.
#[derive(Debug, Default)]
pub(crate) struct EapService {
    table: RwLock<Option<Arc<Conversations<Facts>>>>,
}

impl EapService {
    pub(crate) fn conversations(&self) -> Option<Arc<Conversations<Facts>>> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// At start and after every reload. A configuration that cannot be built leaves the running
    /// one in force (logged with the reason).
    pub(crate) fn configure(&self, config: &Config) {
        match build(config) {
            Ok(None) => {
                *self.table.write().unwrap_or_else(|e| e.into_inner()) = None;
                tracing::info!("802.1X (EAP) disabled in eap.conf");
            }
            Ok(Some(built)) => {
                let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
                match table.as_ref() {
                    Some(t) => t.set_config(Arc::new(built)),
                    None => *table = Some(Arc::new(Conversations::new(Arc::new(built)))),
                }
            }
            Err(e) => {
                let kept = if self.conversations().is_some() {
                    "the running 802.1X configuration stays in force"
                } else {
                    "802.1X is unavailable (EAP requests are rejected)"
                };
                tracing::error!(
                    error = format!("{e:#}"),
                    "802.1X configuration refused; {kept}"
                );
            }
        }
    }
}

fn build(config: &Config) -> anyhow::Result<Option<ConversationsConfig>> {
    let eap = &config.eap;
    if !eap.enabled {
        return Ok(None);
    }
    crate::eap_tls::ensure_self_signed(eap)?;
    let ticketer = if eap.resumption {
        Some(ticketer(config)?)
    } else {
        None
    };
    let (tls_client_auth, tls_tunnel) = crate::eap_tls::build(eap, ticketer)?;
    Ok(Some(ConversationsConfig {
        tls_client_auth,
        tls_tunnel,
        methods: eap
            .methods
            .iter()
            .map(|m| match m {
                EapMethod::Tls => EapType::Tls,
                EapMethod::Peap => EapType::Peap,
                EapMethod::Ttls => EapType::Ttls,
            })
            .collect(),
        fragment_size: eap.fragment_size,
        server_name: eap.server_name.clone(),
        limits: ironfence_eap::Limits {
            timeout: eap.timeout,
            max_rounds: eap.max_rounds,
            max_conversations: eap.max_conversations,
            max_per_client: eap.max_conversations_per_switch,
            ..ironfence_eap::Limits::default()
        },
    }))
}

/// `conf/ssl/eap-ticket.key`: the key TLS session tickets are sealed with. It is part of the
/// synchronized configuration (conf/ssl), so a device that roams to another member resumes
/// there. Created by the first server that needs it (a joining server receives it with the
/// cluster's files).
pub(crate) const TICKET_KEY_FILE: &str = "ssl/eap-ticket.key";

fn ticketer(config: &Config) -> anyhow::Result<Arc<dyn rustls::server::ProducesTickets>> {
    use anyhow::Context;
    let path = config.conf_dir.join(TICKET_KEY_FILE);
    let contents = match std::fs::read(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let contents = ironfence_eap::tickets::generate_key_file_contents()
                .context("generating the EAP ticket key")?;
            ironfence_core::fsutil::write_atomic(&path, &contents, 0o600)
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "created the EAP session ticket key");
            contents
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let t = ironfence_eap::tickets::SharedTicketer::from_key_file_contents(
        &contents,
        config.eap.ticket_lifetime,
        Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        }),
    )
    .with_context(|| format!("{}: not a usable ticket key", path.display()))?;
    Ok(Arc::new(t))
}

/// Drops abandoned conversations and publishes how many are open.
pub(crate) async fn run_expiry(
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // Half the conversation timeout (1–5 s): an abandoned conversation is freed at most
        // 1.5 × timeout after its last round, and every open one is seen by the gauges.
        let every =
            (shared.config().eap.timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if let Some(t) = shared.eap.conversations() {
            let expired = t.expire(std::time::Instant::now());
            if expired > 0 {
                tracing::debug!(expired, "abandoned EAP conversations expired");
            }
            shared.metrics.eap_conversations.set(t.len() as i64);
            shared.metrics.eap_state_bytes.set(t.state_bytes() as i64);
        }
    }
}

/// `DOMAIN\user` and `user@realm` name `user` in the local user table.
fn local_name(user: &str) -> &str {
    let user = user.rsplit_once('\\').map_or(user, |(_, u)| u);
    user.split_once('@').map_or(user, |(u, _)| u)
}

/// Inner MSCHAPv2: the NT hash of the first password source that holds one (local users only:
/// a directory never reveals it).
pub(crate) async fn nt_hash(
    shared: &Shared,
    config: &Config,
    user: &str,
    now: UnixTime,
) -> Verdict<Facts> {
    let name = local_name(user);
    for id in &config.eap.password_sources {
        let Some(source) = config.authentication.source(id) else {
            continue;
        };
        if !matches!(source.kind, SourceKind::Sql) {
            continue;
        }
        match shared.store.get_local_user(name).await {
            Ok(Some(u)) if u.valid_at(now) && u.nt_hash.is_some() => {
                let mut attributes = Attributes::new();
                attributes.insert("username", name);
                return Verdict::NtHash(
                    u.nt_hash,
                    Some(Facts {
                        source: source.id.clone(),
                        pid: u.pid.clone(),
                        attributes,
                    }),
                );
            }
            Ok(_) => {}
            Err(e) => {
                shared.metrics.store_error("local_user");
                tracing::warn!(error = %e, "cannot read local user for 802.1X");
                return Verdict::Unavailable;
            }
        }
    }
    Verdict::NtHash(None, None)
}

/// TTLS/PAP: the password sources in order; the first that accepts decides. A source that
/// cannot be asked fails the login (the guide: external sources must answer).
pub(crate) async fn password(
    shared: &Shared,
    config: &Config,
    user: &str,
    password: String,
    now: UnixTime,
) -> Verdict<Facts> {
    let creds = Credentials {
        username: local_name(user).to_string(),
        password,
        ..Credentials::default()
    };
    for id in &config.eap.password_sources {
        let Some(conf) = config.authentication.source(id) else {
            continue;
        };
        if matches!(conf.kind, SourceKind::Null | SourceKind::Eaptls) {
            continue;
        }
        match sources::for_conf(conf, &shared.store)
            .authenticate(&creds, now)
            .await
        {
            Ok(who) => {
                return Verdict::Password(
                    true,
                    Some(Facts {
                        source: conf.id.clone(),
                        pid: who.pid,
                        attributes: who.attributes,
                    }),
                );
            }
            Err(AuthError::InvalidCredentials) | Err(AuthError::Incomplete(_)) => {}
            Err(AuthError::Unavailable(e)) => {
                tracing::warn!(source = %conf.id, error = %e, "802.1X password source unavailable");
                return Verdict::Unavailable;
            }
        }
    }
    Verdict::Password(false, None)
}

/// Whether a successful login registers the device (eap.conf `register_on_success`).
pub(crate) fn registers(config: &Config) -> bool {
    config.eap.register_on_success
}

/// The role a login earns. `Ok(None)`: no rule source for this method (the device's own
/// registration decides, as for MAB); `Err(reason)`: the source's rules refuse the login.
pub(crate) fn grant(
    config: &Config,
    outcome: &Outcome<Facts>,
    now: UnixTime,
) -> Result<Option<LoginGrant>, &'static str> {
    let decide = |source_id: &str, attrs: &Attributes, pid: &str| {
        let source = config
            .authentication
            .source(source_id)
            .ok_or("source_not_configured")?;
        let g = rules::decide(source, attrs, now).map_err(|_| "no_rule_matched")?;
        Ok(Some(LoginGrant {
            source: source.id.clone(),
            rule: g.rule,
            pid: pid.to_string(),
            role: g.role,
            unregdate: g.unregdate,
        }))
    };
    match outcome.method.outer {
        EapType::Md5Challenge => Ok(None),
        EapType::Tls => {
            let Some(source) = &config.eap.certificate_source else {
                return Ok(None);
            };
            let der = outcome.peer_certificates.first().ok_or("no_certificate")?;
            let attrs = certificate_attributes(der).ok_or("certificate_unparsable")?;
            let pid = attrs
                .get("cn")
                .first()
                .cloned()
                .unwrap_or_else(|| outcome.identity.clone());
            decide(source, &attrs, &pid)
        }
        _ => {
            let facts = outcome.facts.as_ref().ok_or("no_source")?;
            decide(&facts.source, &facts.attributes, &facts.pid)
        }
    }
}

/// The client certificate's attributes for an EAPTLS source's rules: `cn`, `subject`,
/// `issuer`, `email`, `upn`, `serial`, `san_dns`, `ou`.
pub(crate) fn certificate_attributes(der: &[u8]) -> Option<Attributes> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut a = Attributes::new();
    let subject = cert.subject();
    for cn in subject.iter_common_name() {
        if let Ok(v) = cn.as_str() {
            a.insert("cn", v);
        }
    }
    for ou in subject.iter_organizational_unit() {
        if let Ok(v) = ou.as_str() {
            a.insert("ou", v);
        }
    }
    for e in subject.iter_email() {
        if let Ok(v) = e.as_str() {
            a.insert("email", v);
        }
    }
    a.insert("subject", subject.to_string());
    a.insert("issuer", cert.issuer().to_string());
    a.insert("serial", cert.raw_serial_as_string());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => a.insert("san_dns", *d),
                GeneralName::RFC822Name(e) => a.insert("email", *e),
                GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                    if let Some(upn) = upn_value(value) {
                        a.insert("upn", upn);
                    }
                }
                _ => {}
            }
        }
    }
    Some(a)
}

/// Microsoft User Principal Name (szOID_NT_PRINCIPAL_NAME).
const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// The UTF8String inside the otherName's explicit [0] tag.
fn upn_value(value: &[u8]) -> Option<String> {
    use x509_parser::der_parser::der::parse_der;
    let (_, obj) = parse_der(value).ok()?;
    let inner = match obj.content {
        x509_parser::der_parser::ber::BerObjectContent::Unknown(any) => parse_der(any.data).ok()?.1,
        _ => obj,
    };
    inner.as_str().ok().map(str::to_string)
}

/// The certificate's first common name (audit detail).
pub(crate) fn certificate_cn(der: &[u8]) -> Option<String> {
    certificate_attributes(der)?.get("cn").first().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_and_domain_are_stripped_for_local_users() {
        assert_eq!(local_name("alice"), "alice");
        assert_eq!(local_name("CORP\\alice"), "alice");
        assert_eq!(local_name("alice@corp.example"), "alice");
    }

    #[test]
    fn certificate_attributes_for_rules() {
        let mut params =
            rcgen::CertificateParams::new(vec!["laptop-7.corp.example".into()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "laptop-7");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationalUnitName, "Engineering");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let a = certificate_attributes(cert.der()).expect("parses");
        assert_eq!(a.get("cn"), ["laptop-7".to_string()]);
        assert_eq!(a.get("ou"), ["Engineering".to_string()]);
        assert_eq!(a.get("san_dns"), ["laptop-7.corp.example".to_string()]);
        assert!(a.get("subject")[0].contains("CN=laptop-7"));
        assert!(!a.get("serial")[0].is_empty());
        assert_eq!(certificate_attributes(b"not a certificate"), None);
    }
}

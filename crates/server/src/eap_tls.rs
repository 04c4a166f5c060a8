//! The TLS side of 802.1X: rustls server configurations built from `eap.conf` and
//! `conf/ssl` (server certificate and key, the CAs EAP-TLS clients must chain to, CRLs), and
//! the self-signed PKI created on a fresh install so that the shipped configuration works,
//! and `ironfence checkup`'s look at those files ([`eap_certificate_checkup`]: key/certificate
//! match, validity dates, chain to the CA file, CRL freshness).
//!
//! Two configurations: EAP-TLS requires and verifies a client certificate; PEAP and TTLS do
//! not ask for one (the inner method authenticates the user). Both share the server
//! certificate, protocol versions, cipher suites and the session-ticket key (resumption on any
//! server of the cluster: `conf/ssl/eap-ticket.key` is synchronized with the configuration).

use anyhow::{Context, bail};
use ironfence_config::eap::{EapConf, TlsVersion};
use ironfence_config::{Config, Diagnostic, Diagnostics, Severity};
use ironfence_core::fsutil::{WriteOptions, write_atomic_with};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, WebPkiClientVerifier};
use std::path::Path;
use std::sync::Arc;
use x509_parser::certificate::X509Certificate;

/// TLS 1.2 sessions remembered per server for session-ID resumption (clients that do not use
/// tickets); tickets work across servers, session IDs only on the server that issued them.
const SESSION_CACHE: usize = 16_384;

/// The common name of the local CA [`ensure_self_signed`] creates, before ` (<server name>)`.
const LOCAL_CA_NAME: &str = "ironfence local EAP CA";

/// On a fresh install (no server certificate, key or CA at all) creates a local CA and a
/// server certificate it signs, so 802.1X works as shipped; an operator replaces them with
/// the organisation's PKI. Some but not all of the three present is refused: that is a
/// half-installed PKI, not a fresh one.
pub(crate) fn ensure_self_signed(eap: &EapConf) -> anyhow::Result<()> {
    let files = [&eap.certificate, &eap.private_key, &eap.ca];
    let present: Vec<_> = files.iter().filter(|p| p.exists()).collect();
    if present.len() == files.len() {
        return Ok(());
    }
    if !present.is_empty() {
        let missing: Vec<String> = files
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        bail!(
            "802.1X certificates incomplete: {} missing (eap.conf certificate, private_key, ca)",
            missing.join(", ")
        );
    }
    let (ca_pem, cert_pem, key_pem) = self_signed_pki(&eap.server_name)?;
    let opts = |mode| WriteOptions {
        mode,
        create_dirs: Some(0o700),
        owner: None,
    };
    write_atomic_with(&eap.ca, ca_pem.as_bytes(), opts(0o644))
        .with_context(|| format!("writing {}", eap.ca.display()))?;
    write_atomic_with(&eap.private_key, key_pem.as_bytes(), opts(0o600))
        .with_context(|| format!("writing {}", eap.private_key.display()))?;
    write_atomic_with(&eap.certificate, cert_pem.as_bytes(), opts(0o644))
        .with_context(|| format!("writing {}", eap.certificate.display()))?;
    tracing::warn!(
        certificate = %eap.certificate.display(),
        ca = %eap.ca.display(),
        "802.1X: no certificates, created a local CA and a server certificate for {} \
         (supplicants must trust this CA; install your own PKI for production)",
        eap.server_name
    );
    Ok(())
}

/// A local CA (10 years; its key is not kept: it signs only this server certificate) and a
/// server certificate for `name` (825 days, serverAuth). Returns (CA, certificate chain, key).
fn self_signed_pki(name: &str) -> anyhow::Result<(String, String, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let now = time_now();
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("{LOCAL_CA_NAME} ({name})"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now;
    ca.not_after = now + time::Duration::days(3650);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec![name.to_string()])?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = now;
    p.not_after = now + time::Duration::days(825);
    let cert = p.signed_by(&key, &ca)?;
    Ok((
        ca.pem(),
        format!("{}{}", cert.pem(), ca.pem()),
        key.serialize_pem(),
    ))
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Every certificate of a PEM file.
pub(crate) fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    pem_certificates(&read(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Every certificate of PEM text (at least one).
fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// CRLs of a file, PEM (any number) or one DER.
fn crls(path: &Path) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    crls_of(read(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// CRLs of a file's contents, PEM (any number) or one DER.
fn crls_of(data: Vec<u8>) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    if data.starts_with(b"-----") || data.iter().take(64).all(|b| b.is_ascii()) {
        let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&data)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        if crls.is_empty() {
            return Err("no PEM X509 CRL in it".into());
        }
        return Ok(crls);
    }
    Ok(vec![CertificateRevocationListDer::from(data)])
}

/// (EAP-TLS: client certificate required, PEAP/TTLS: none) from eap.conf.
pub(crate) fn build(
    eap: &EapConf,
    ticketer: Option<Arc<dyn ProducesTickets>>,
) -> anyhow::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>)> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !eap.cipher_suites.is_empty() {
        let wanted = &eap.cipher_suites;
        for name in wanted {
            if !provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()) == *name)
            {
                bail!("eap.conf cipher_suites: {name} is not a suite this build offers");
            }
        }
        provider
            .cipher_suites
            .retain(|s| wanted.contains(&format!("{:?}", s.suite())));
    }
    let provider = Arc::new(provider);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (eap.tls_min_version..=eap.tls_max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    if versions.is_empty() {
        bail!("eap.conf: tls_min_version is above tls_max_version");
    }
    let chain = certificates(&eap.certificate)?;
    let key_pem = read(&eap.private_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: no private key: {e}", eap.private_key.display()))?;

    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&eap.ca)? {
        roots
            .add(ca)
            .map_err(|e| anyhow::anyhow!("{}: not a usable CA: {e}", eap.ca.display()))?;
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(crl) = &eap.crl {
        // Only the client's own certificate is checked against the CRLs; an intermediate
        // without a CRL here is not a reason to refuse (the CA file decides trust).
        verifier = verifier
            .with_crls(crls(crl)?)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let verifier = verifier
        .build()
        .map_err(|e| anyhow::anyhow!("{}: {e}", eap.ca.display()))?;

    let server = |client_auth: bool| -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let b = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| anyhow::anyhow!("eap.conf TLS versions / cipher suites: {e}"))?;
        let b = if client_auth {
            b.with_client_cert_verifier(verifier.clone())
        } else {
            b.with_no_client_auth()
        };
        let mut cfg = b
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| {
                anyhow::anyhow!(
                    "{} with {}: {e}",
                    eap.certificate.display(),
                    eap.private_key.display()
                )
            })?;
        cfg.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        match &ticketer {
            Some(t) => {
                cfg.ticketer = t.clone();
                cfg.send_tls13_tickets = 1;
            }
            None => {
                cfg.send_tls13_tickets = 0;
                cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            }
        }
        Ok(Arc::new(cfg))
    };
    Ok((server(true)?, server(false)?))
}

/// Certificates this close to their end of validity are reported (issue 12: 30 days before).
const EXPIRY_WARNING_DAYS: i64 = 30;

/// `ironfence checkup` of the 802.1X certificates named by eap.conf, when 802.1X is enabled:
///
/// - `certificate`, `private_key` and `ca` all exist, or none of them (the server then creates
///   a local CA at its first start: nothing to say); some but not all is an error per
///   missing file, as at start;
/// - each file parses; the key is the one of the server certificate (the chain's first);
/// - no certificate of the chain file or of the CA file is expired or not yet valid (error),
///   none expires within 30 days (warning);
/// - the server certificate chains (issuer name and signature) through the chain file to a
///   certificate of the CA file (warning: a public CA the supplicants trust may still do);
/// - the CRL, if any, parses and its nextUpdate is not past (warning);
/// - the server certificate is not the one of the local CA ironfence created (warning);
/// - when none of that is an error, the TLS configurations build as the server builds them.
///
/// `now_unix` is the time the validity dates are compared with (seconds since the epoch).
pub fn eap_certificate_checkup(config: &Config, now_unix: i64, diags: &mut Diagnostics) {
    let eap = &config.eap;
    if !eap.enabled {
        return;
    }
    let mut f = Findings { diags, errors: 0 };
    if !check_certificates(eap, now_unix, &mut f) {
        return;
    }
    if f.errors == 0
        && let Err(e) = build(eap, None)
    {
        f.error(
            &config.conf_dir.join(ironfence_config::EAP_CONF),
            format!("the 802.1X TLS configuration is refused: {e:#}; 802.1X would be unavailable"),
        );
    }
}

/// Where checkup findings go, counting the errors.
struct Findings<'a> {
    diags: &'a mut Diagnostics,
    errors: usize,
}

impl Findings<'_> {
    fn error(&mut self, file: &Path, message: impl Into<String>) {
        self.errors += 1;
        self.push(Severity::Error, file, message.into());
    }

    fn warning(&mut self, file: &Path, message: impl Into<String>) {
        self.push(Severity::Warning, file, message.into());
    }

    fn push(&mut self, severity: Severity, file: &Path, message: String) {
        self.diags.0.push(Diagnostic {
            severity,
            file: file.to_path_buf(),
            line: None,
            section: None,
            message,
        });
    }
}

/// The checks of [`eap_certificate_checkup`] on the files; false when there was nothing to
/// check (none of the three files: a fresh install).
fn check_certificates(eap: &EapConf, now: i64, f: &mut Findings<'_>) -> bool {
    let files = [
        ("certificate", &eap.certificate),
        ("private_key", &eap.private_key),
        ("ca", &eap.ca),
    ];
    let missing: Vec<_> = files.iter().filter(|(_, p)| !p.exists()).collect();
    if missing.len() == files.len() {
        return false;
    }
    if !missing.is_empty() {
        for (key, path) in missing {
            f.error(
                path,
                format!(
                    "missing (eap.conf {key}): the 802.1X certificates are incomplete and \
                     802.1X is unavailable; put it back, or remove certificate, private_key \
                     and ca to have the server create a local CA"
                ),
            );
        }
        return true;
    }
    let chain_der = load_certificates(&eap.certificate, "certificate", f);
    let ca_der = load_certificates(&eap.ca, "ca", f);
    let chain = chain_der
        .as_deref()
        .and_then(|der| parse_certificates(&eap.certificate, der, f));
    let cas = ca_der
        .as_deref()
        .and_then(|der| parse_certificates(&eap.ca, der, f));
    if let (Some(der), Some(chain)) = (&chain_der, &chain) {
        check_key(eap, der, &chain[0], f);
    }
    if let Some(chain) = &chain {
        for (i, cert) in chain.iter().enumerate() {
            let what = if i == 0 {
                format!("the server certificate ({})", cert.subject())
            } else {
                format!("chain certificate {} ({})", i + 1, cert.subject())
            };
            check_validity(
                &eap.certificate,
                &what,
                cert,
                now,
                "renew it: supplicants refuse an expired server certificate",
                f,
            );
        }
        if let Some(cas) = &cas {
            check_chain(eap, chain, cas, f);
        }
        let issuer_cn = chain[0]
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok());
        if let Some(cn) = issuer_cn
            && cn.starts_with(LOCAL_CA_NAME)
        {
            f.warning(
                &eap.certificate,
                format!(
                    "802.1X uses the local CA ironfence created ({cn}): install your \
                     organisation's certificate (docs/eap.md)"
                ),
            );
        }
    }
    if let Some(cas) = &cas {
        for (i, cert) in cas.iter().enumerate() {
            let what = format!("CA certificate {} ({})", i + 1, cert.subject());
            check_validity(
                &eap.ca,
                &what,
                cert,
                now,
                "renew it, and give the new CA to the supplicants that trust this one",
                f,
            );
        }
    }
    if let Some(crl) = &eap.crl {
        check_crl(crl, now, f);
    }
    true
}

/// The certificates of a PEM file, or an error about it.
fn load_certificates(
    path: &Path,
    key: &str,
    f: &mut Findings<'_>,
) -> Option<Vec<CertificateDer<'static>>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            f.error(path, format!("cannot be read (eap.conf {key}): {e}"));
            return None;
        }
    };
    match pem_certificates(&data) {
        Ok(certs) => Some(certs),
        Err(e) => {
            f.error(
                path,
                format!(
                    "{e} (eap.conf {key} must name a PEM file of -----BEGIN CERTIFICATE----- \
                     blocks); 802.1X is unavailable"
                ),
            );
            None
        }
    }
}

/// Every certificate of `der` decoded, or an error naming the one that is not X.509.
fn parse_certificates<'a>(
    path: &Path,
    der: &'a [CertificateDer<'static>],
    f: &mut Findings<'_>,
) -> Option<Vec<X509Certificate<'a>>> {
    let mut certs = Vec::with_capacity(der.len());
    for (i, d) in der.iter().enumerate() {
        match x509_parser::parse_x509_certificate(d) {
            Ok((_, cert)) => certs.push(cert),
            Err(e) => {
                f.error(
                    path,
                    format!(
                        "certificate {} of the file is not a valid X.509 certificate: {e}; \
                         802.1X is unavailable",
                        i + 1
                    ),
                );
                return None;
            }
        }
    }
    Some(certs)
}

/// The server certificate is one rustls loads (X.509 v3); the private key parses, is of a
/// kind rustls signs with, and is the server certificate's.
fn check_key(
    eap: &EapConf,
    chain: &[CertificateDer<'static>],
    leaf: &X509Certificate<'_>,
    f: &mut Findings<'_>,
) {
    let version = leaf.version().0 + 1;
    if version != 3 {
        // webpki (hence rustls) parses only v3 end-entity certificates: the server cannot
        // load this one, whatever the key.
        f.error(
            &eap.certificate,
            format!(
                "the server certificate ({}) is an X.509 v{version} certificate: rustls uses \
                 only v3 ones, 802.1X is unavailable; re-issue it as v3 (with subjectAltName \
                 and extendedKeyUsage serverAuth, e.g. openssl x509 -req -extfile)",
                leaf.subject()
            ),
        );
    }
    let path = &eap.private_key;
    let pem = match std::fs::read(path) {
        Ok(p) => p,
        Err(e) => {
            f.error(path, format!("cannot be read (eap.conf private_key): {e}"));
            return;
        }
    };
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => k,
        Err(e) => {
            f.error(
                path,
                format!(
                    "no PEM private key in it ({e}): eap.conf private_key must name the \
                     server certificate's key (PKCS#8, PKCS#1 or SEC1 PEM); 802.1X is unavailable"
                ),
            );
            return;
        }
    };
    let signing_key = match rustls::crypto::ring::sign::any_supported_type(&key) {
        Ok(k) => k,
        Err(e) => {
            f.error(
                path,
                format!(
                    "not a private key rustls can sign with ({e}): use an RSA, ECDSA P-256/P-384 \
                     or Ed25519 key; 802.1X is unavailable"
                ),
            );
            return;
        }
    };
    if version != 3 {
        return;
    }
    match rustls::sign::CertifiedKey::new(chain.to_vec(), signing_key).keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => f.error(
            path,
            format!(
                "private key does not match the certificate {} ({}): 802.1X is unavailable; \
                 install the key of that certificate, or the certificate of this key",
                eap.certificate.display(),
                leaf.subject()
            ),
        ),
        Err(e) => f.error(
            &eap.certificate,
            format!(
                "the server certificate ({}) cannot be used by rustls ({e}): 802.1X is \
                 unavailable",
                leaf.subject()
            ),
        ),
    }
}

/// Expired or not yet valid: error; expires within [`EXPIRY_WARNING_DAYS`]: warning.
/// `advice` ends the message of both.
fn check_validity(
    path: &Path,
    what: &str,
    cert: &X509Certificate<'_>,
    now: i64,
    advice: &str,
    f: &mut Findings<'_>,
) {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if now < not_before {
        f.error(
            path,
            format!(
                "{what} is not valid before {}: supplicants refuse it until then (is this \
                 server's clock right?)",
                utc(not_before)
            ),
        );
    } else if now > not_after {
        f.error(
            path,
            format!("{what} expired on {}: {advice}", utc(not_after)),
        );
    } else if not_after - now <= EXPIRY_WARNING_DAYS * 86_400 {
        f.warning(
            path,
            format!(
                "{what} expires on {} ({} days left): {advice}",
                utc(not_after),
                (not_after - now) / 86_400
            ),
        );
    }
}

/// Whether `issuer` issued `child`: its subject is the child's issuer name and its key
/// verifies the child's signature.
fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw()
        && child.verify_signature(Some(issuer.public_key())).is_ok()
}

/// The server certificate leads, through the other certificates of its file, to one of the
/// CA file (issued by it, or the same certificate); otherwise a warning saying where the
/// path stops.
fn check_chain(
    eap: &EapConf,
    chain: &[X509Certificate<'_>],
    cas: &[X509Certificate<'_>],
    f: &mut Findings<'_>,
) {
    let mut used = vec![false; chain.len()];
    used[0] = true;
    let mut current = &chain[0];
    loop {
        if cas
            .iter()
            .any(|ca| ca.as_raw() == current.as_raw() || issued_by(current, ca))
        {
            return;
        }
        match (1..chain.len()).find(|&i| !used[i] && issued_by(current, &chain[i])) {
            Some(i) => {
                used[i] = true;
                current = &chain[i];
            }
            None => break,
        }
    }
    let issuer = current.issuer();
    let why = if issuer.as_raw() == current.subject().as_raw() {
        format!(
            "{} is self-signed and not in the CA file",
            current.subject()
        )
    } else if cas
        .iter()
        .chain(chain.iter())
        .any(|c| c.subject().as_raw() == issuer.as_raw())
    {
        format!(
            "{} names {issuer} as its issuer, but the signature does not verify with that \
             certificate's key",
            current.subject()
        )
    } else {
        format!(
            "{issuer}, the issuer of {}, is in neither the CA file nor {}",
            current.subject(),
            eap.certificate.display()
        )
    };
    f.warning(
        &eap.certificate,
        format!(
            "the server certificate does not chain to ca ({}): {why}; supplicants configured \
             with that CA will refuse it (a public CA they trust may still accept it)",
            eap.ca.display()
        ),
    );
}

/// The CRL file parses as the server reads it (PEM or DER) and is not past its nextUpdate.
fn check_crl(path: &Path, now: i64, f: &mut Findings<'_>) {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            f.error(
                path,
                format!("cannot be read (eap.conf crl): {e}; 802.1X is unavailable"),
            );
            return;
        }
    };
    let crls = match crls_of(data) {
        Ok(c) => c,
        Err(e) => {
            f.error(
                path,
                format!("{e} (eap.conf crl: PEM or DER CRLs); 802.1X is unavailable"),
            );
            return;
        }
    };
    for (i, der) in crls.iter().enumerate() {
        let crl = match x509_parser::parse_x509_crl(der) {
            Ok((_, crl)) => crl,
            Err(e) => {
                f.error(
                    path,
                    format!(
                        "CRL {} of the file is not a valid X.509 CRL: {e}; 802.1X is unavailable",
                        i + 1
                    ),
                );
                continue;
            }
        };
        if let Some(next) = crl.next_update()
            && next.timestamp() < now
        {
            // The client-certificate verifier is built without
            // `enforce_revocation_expiration`: rustls uses a stale CRL as it is.
            f.warning(
                path,
                format!(
                    "the CRL of {} is stale: its nextUpdate was {}. ironfence still uses it \
                     as it is (EAP-TLS logins are not refused for that), so a client \
                     certificate revoked since it was published still logs in: publish a \
                     fresh CRL",
                    crl.issuer(),
                    utc(next.timestamp())
                ),
            );
        }
    }
}

/// `2026-05-04 13:00 UTC`.
fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("{unix} (seconds since 1970)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
        ExtendedKeyUsagePurpose, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
    };
    use rustls::pki_types::ServerName;

    fn conf(dir: &Path) -> EapConf {
        EapConf::defaults(dir, "radius.ironfence.test")
    }

    /// A fresh install gets a working PKI; building twice keeps it; a partial one is refused.
    #[test]
    fn self_signed_pki_on_a_fresh_install_builds() {
        let dir = tempfile::tempdir().unwrap();
        let eap = conf(dir.path());
        ensure_self_signed(&eap).unwrap();
        let before = std::fs::read(&eap.certificate).unwrap();
        ensure_self_signed(&eap).unwrap();
        assert_eq!(before, std::fs::read(&eap.certificate).unwrap(), "kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&eap.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        build(&eap, None).unwrap();
        std::fs::remove_file(&eap.ca).unwrap();
        let e = ensure_self_signed(&eap).unwrap_err().to_string();
        assert!(e.contains("ca.pem") && e.contains("missing"), "{e}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_and_an_unknown_suite_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut eap = conf(dir.path());
        ensure_self_signed(&eap).unwrap();
        eap.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_MD5".into()];
        let e = build(&eap, None).unwrap_err().to_string();
        assert!(e.contains("TLS_RSA_WITH_RC4_128_MD5"), "{e}");
        eap.cipher_suites.clear();
        std::fs::write(
            &eap.private_key,
            KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let e = format!("{:#}", build(&eap, None).unwrap_err());
        assert!(e.contains("server.key"), "{e}");
    }

    /// A client certificate on the CRL fails the EAP-TLS handshake as revoked; the same
    /// client with a certificate not on it succeeds (a real rustls client, in memory).
    #[test]
    fn a_revoked_client_certificate_fails_the_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let mut eap = conf(dir.path());
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let leaf = |cn: &str, serial: u64, eku| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec![cn.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.serial_number = Some(SerialNumber::from(serial));
            p.extended_key_usages = vec![eku];
            (p.signed_by(&key, &ca).unwrap(), key)
        };
        let (server, server_key) = leaf(
            "radius.ironfence.test",
            1,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (good, good_key) = leaf("good", 2, ExtendedKeyUsagePurpose::ClientAuth);
        let (bad, bad_key) = leaf("bad", 3, ExtendedKeyUsagePurpose::ClientAuth);
        let now = time::OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(3u64),
                revocation_time: now - time::Duration::minutes(5),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&ca)
        .unwrap();
        std::fs::create_dir_all(dir.path().join("ssl")).unwrap();
        std::fs::write(&eap.certificate, server.pem()).unwrap();
        std::fs::write(&eap.private_key, server_key.serialize_pem()).unwrap();
        std::fs::write(&eap.ca, ca.pem()).unwrap();
        let crl_path = dir.path().join("ssl/crl.pem");
        std::fs::write(&crl_path, crl.pem().unwrap()).unwrap();
        eap.crl = Some(crl_path);
        let (client_auth, _) = build(&eap, None).unwrap();

        let handshake = |cert: &rcgen::Certificate, key: &KeyPair| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der().clone()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
                )
                .unwrap();
            let name = ServerName::try_from("radius.ironfence.test").unwrap();
            let mut c = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
            let mut s = rustls::ServerConnection::new(client_auth.clone()).unwrap();
            for _ in 0..10 {
                let mut buf = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut buf).unwrap();
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    s.read_tls(&mut rd).unwrap();
                }
                s.process_new_packets()?;
                let mut buf = Vec::new();
                while s.wants_write() {
                    s.write_tls(&mut buf).unwrap();
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    c.read_tls(&mut rd).unwrap();
                }
                let _ = c.process_new_packets();
                if !s.is_handshaking() {
                    return Ok(());
                }
            }
            panic!("handshake did not finish");
        };
        handshake(&good, &good_key).unwrap();
        let e = handshake(&bad, &bad_key).unwrap_err();
        assert_eq!(
            ironfence_eap::tls::failure_reason(&e),
            "certificate_revoked",
            "{e}"
        );
    }

    // ---- checkup of the 802.1X certificates ----

    type Ca = CertifiedIssuer<'static, KeyPair>;

    /// A second, seconds-rounded, as the certificates' dates are.
    fn test_now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
    }

    fn days(n: i64) -> time::Duration {
        time::Duration::days(n)
    }

    fn ca_params(cn: &str, now: time::OffsetDateTime) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        p.not_before = now - days(400);
        p.not_after = now + days(3650);
        p
    }

    fn root_ca(cn: &str, now: time::OffsetDateTime) -> Ca {
        CertifiedIssuer::self_signed(ca_params(cn, now), KeyPair::generate().unwrap()).unwrap()
    }

    /// The server certificate for radius.ironfence.test, valid from `not_before` to
    /// `not_after`, signed by `ca`, and its key.
    fn server_cert(
        ca: &Ca,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["radius.ironfence.test".to_string()]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "radius.ironfence.test");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = not_before;
        p.not_after = not_after;
        (p.signed_by(&key, ca).unwrap(), key)
    }

    /// conf/ssl/server.crt, server.key and ca.pem with these contents (and eap.conf, if given).
    fn write_pki(conf: &Path, chain: &str, key: &str, ca: &str, eap_conf: Option<&str>) {
        std::fs::create_dir_all(conf.join("ssl")).unwrap();
        std::fs::write(conf.join("ssl/server.crt"), chain).unwrap();
        std::fs::write(conf.join("ssl/server.key"), key).unwrap();
        std::fs::write(conf.join("ssl/ca.pem"), ca).unwrap();
        if let Some(text) = eap_conf {
            std::fs::write(conf.join("eap.conf"), text).unwrap();
        }
    }

    /// `eap_certificate_checkup` on the configuration in `conf` as it loads.
    fn checkup(conf: &Path, now: time::OffsetDateTime) -> Diagnostics {
        let config = ironfence_config::Config::load(conf).unwrap_or_else(|d| panic!("{d}"));
        let mut diags = Diagnostics::default();
        eap_certificate_checkup(&config, now.unix_timestamp(), &mut diags);
        diags
    }

    /// Exactly one finding, of this severity, about this file, saying `needle`.
    fn assert_only(diags: &Diagnostics, severity: Severity, file: &Path, needle: &str) {
        assert_eq!(diags.len(), 1, "{diags}");
        let d = &diags.0[0];
        assert_eq!(d.severity, severity, "{diags}");
        assert_eq!(d.file, file, "{diags}");
        assert!(d.message.contains(needle), "{needle:?} not in: {diags}");
    }

    fn crl_of(
        ca: &Ca,
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> rcgen::CertificateRevocationList {
        CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: vec![],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(ca)
        .unwrap()
    }

    /// A server certificate from an intermediate CA (both in server.crt) chaining to the root
    /// of ca.pem, its key, and a current CRL (PEM, then DER): nothing to say.
    #[test]
    fn checkup_of_a_good_pki_through_an_intermediate_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let root = root_ca("test root CA", now);
        let inter: Ca = CertifiedIssuer::signed_by(
            ca_params("test intermediate CA", now),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let (leaf, key) = server_cert(&inter, now - days(1), now + days(365));
        let crl = crl_of(&inter, now - days(1), now + days(7));
        write_pki(
            dir.path(),
            &format!("{}{}", leaf.pem(), inter.pem()),
            &key.serialize_pem(),
            &root.pem(),
            Some("[eap]\ncrl = ssl/ca.crl\n"),
        );
        std::fs::write(dir.path().join("ssl/ca.crl"), crl.pem().unwrap()).unwrap();
        let diags = checkup(dir.path(), now);
        assert!(diags.is_empty(), "{diags}");
        std::fs::write(dir.path().join("ssl/ca.crl"), crl.der()).unwrap();
        let diags = checkup(dir.path(), now);
        assert!(diags.is_empty(), "DER CRL: {diags}");
        // Without the intermediate in server.crt the path stops at it.
        std::fs::write(dir.path().join("ssl/server.crt"), leaf.pem()).unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Warning,
            &dir.path().join("ssl/server.crt"),
            "CN=test intermediate CA, the issuer of CN=radius.ironfence.test, is in neither",
        );
    }

    #[test]
    fn checkup_refuses_the_key_of_another_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let ca = root_ca("test CA", now);
        let (leaf, _key) = server_cert(&ca, now - days(1), now + days(365));
        let other = KeyPair::generate().unwrap();
        write_pki(
            dir.path(),
            &leaf.pem(),
            &other.serialize_pem(),
            &ca.pem(),
            None,
        );
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &dir.path().join("ssl/server.key"),
            "private key does not match the certificate",
        );
        // Not a key at all, and a certificate file without a certificate: errors too.
        std::fs::write(dir.path().join("ssl/server.key"), leaf.pem()).unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &dir.path().join("ssl/server.key"),
            "no PEM private key in it",
        );
        std::fs::write(dir.path().join("ssl/server.crt"), "not a certificate\n").unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &dir.path().join("ssl/server.crt"),
            "no PEM certificate in it",
        );
    }

    #[test]
    fn checkup_warns_of_a_server_certificate_expiring_in_10_days() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let ca = root_ca("test CA", now);
        let (leaf, key) = server_cert(
            &ca,
            now - days(355),
            now + days(10) + time::Duration::hours(1),
        );
        write_pki(
            dir.path(),
            &leaf.pem(),
            &key.serialize_pem(),
            &ca.pem(),
            None,
        );
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Warning,
            &dir.path().join("ssl/server.crt"),
            "(10 days left): renew it: supplicants refuse an expired server certificate",
        );
        assert!(!diags.has_errors());
        // 31 days ahead is not yet worth a word.
        let diags = checkup(dir.path(), now - days(21) - time::Duration::hours(2));
        assert!(diags.is_empty(), "{diags}");
    }

    #[test]
    fn checkup_refuses_expired_and_not_yet_valid_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let ca = root_ca("test CA", now);
        let (expired, key) = server_cert(&ca, now - days(400), now - days(1));
        write_pki(
            dir.path(),
            &expired.pem(),
            &key.serialize_pem(),
            &ca.pem(),
            None,
        );
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &dir.path().join("ssl/server.crt"),
            "the server certificate (CN=radius.ironfence.test) expired on",
        );
        let (future, key) = server_cert(&ca, now + days(1), now + days(400));
        write_pki(
            dir.path(),
            &future.pem(),
            &key.serialize_pem(),
            &ca.pem(),
            None,
        );
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &dir.path().join("ssl/server.crt"),
            "is not valid before",
        );
        // An expired certificate of the CA file is an error about that file.
        let mut old = ca_params("old CA", now);
        old.not_before = now - days(800);
        old.not_after = now - days(2);
        let old = Ca::self_signed(old, KeyPair::generate().unwrap()).unwrap();
        let (leaf, key) = server_cert(&ca, now - days(1), now + days(400));
        write_pki(
            dir.path(),
            &leaf.pem(),
            &key.serialize_pem(),
            &format!("{}{}", ca.pem(), old.pem()),
            None,
        );
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &dir.path().join("ssl/ca.pem"),
            "CA certificate 2 (CN=old CA) expired on",
        );
    }

    #[test]
    fn checkup_warns_when_the_server_certificate_does_not_chain_to_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let public = root_ca("some public CA", now);
        let clients = root_ca("client CA", now);
        let (leaf, key) = server_cert(&public, now - days(1), now + days(365));
        write_pki(
            dir.path(),
            &leaf.pem(),
            &key.serialize_pem(),
            &clients.pem(),
            None,
        );
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Warning,
            &dir.path().join("ssl/server.crt"),
            "the server certificate does not chain to ca",
        );
        let m = &diags.0[0].message;
        assert!(
            m.contains("CN=some public CA") && m.contains("ssl/ca.pem"),
            "{m}"
        );
        assert!(
            m.contains("supplicants configured with that CA will refuse it"),
            "{m}"
        );
        // A CA of the same name but another key: the name matches, the signature does not.
        let impostor = root_ca("some public CA", now);
        std::fs::write(dir.path().join("ssl/ca.pem"), impostor.pem()).unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Warning,
            &dir.path().join("ssl/server.crt"),
            "the signature does not verify",
        );
    }

    #[test]
    fn checkup_warns_of_a_stale_crl_and_refuses_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let ca = root_ca("test CA", now);
        let (leaf, key) = server_cert(&ca, now - days(1), now + days(365));
        write_pki(
            dir.path(),
            &leaf.pem(),
            &key.serialize_pem(),
            &ca.pem(),
            Some("[eap]\ncrl = ssl/ca.crl\n"),
        );
        let crl_path = dir.path().join("ssl/ca.crl");
        let stale = crl_of(&ca, now - days(8), now - time::Duration::hours(1));
        std::fs::write(&crl_path, stale.pem().unwrap()).unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Warning,
            &crl_path,
            "the CRL of CN=test CA is stale",
        );
        assert!(
            diags.0[0]
                .message
                .contains("EAP-TLS logins are not refused for that"),
            "{diags}"
        );
        std::fs::write(&crl_path, b"\x30\x82\x01\x00\xa0\xff").unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(
            &diags,
            Severity::Error,
            &crl_path,
            "CRL 1 of the file is not a valid X.509 CRL",
        );
        std::fs::remove_file(&crl_path).unwrap();
        let diags = checkup(dir.path(), now);
        assert_only(&diags, Severity::Error, &crl_path, "cannot be read");
    }

    /// None of the three files: silent (the server creates them); the local PKI it creates:
    /// one warning; some but not all: an error per missing file; 802.1X disabled: silent.
    #[test]
    fn checkup_of_the_local_pki_and_of_a_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let now = test_now();
        let diags = checkup(dir.path(), now);
        assert!(diags.is_empty(), "fresh install: {diags}");
        ensure_self_signed(&conf(dir.path())).unwrap();
        let diags = checkup(dir.path(), time::OffsetDateTime::now_utc());
        assert_only(
            &diags,
            Severity::Warning,
            &dir.path().join("ssl/server.crt"),
            "802.1X uses the local CA ironfence created (ironfence local EAP CA (",
        );
        std::fs::remove_file(dir.path().join("ssl/ca.pem")).unwrap();
        std::fs::remove_file(dir.path().join("ssl/server.key")).unwrap();
        let diags = checkup(dir.path(), now);
        assert_eq!(diags.errors().count(), 2, "{diags}");
        assert_eq!(diags.len(), 2, "{diags}");
        for (d, file, key) in [
            (&diags.0[0], "ssl/server.key", "private_key"),
            (&diags.0[1], "ssl/ca.pem", "ca"),
        ] {
            assert_eq!(d.file, dir.path().join(file), "{diags}");
            assert!(
                d.message.starts_with(&format!(
                    "missing (eap.conf {key}): the 802.1X certificates are incomplete"
                )),
                "{diags}"
            );
        }
        std::fs::write(dir.path().join("eap.conf"), "[eap]\nenabled = false\n").unwrap();
        let diags = checkup(dir.path(), now);
        assert!(diags.is_empty(), "802.1X disabled: {diags}");
    }
}

//! The TLS side of 802.1X: rustls server configurations built from `eap.conf` and
//! `conf/ssl` (server certificate and key, the CAs EAP-TLS clients must chain to, CRLs), and
//! the self-signed PKI created on a fresh install so that the shipped configuration works.
//!
//! Two configurations: EAP-TLS requires and verifies a client certificate; PEAP and TTLS do
//! not ask for one (the inner method authenticates the user). Both share the server
//! certificate, protocol versions, cipher suites and the session-ticket key (resumption on any
//! server of the cluster: `conf/ssl/eap-ticket.key` is synchronized with the configuration).

use anyhow::{Context, bail};
use ironfence_config::eap::{EapConf, TlsVersion};
use ironfence_core::fsutil::{WriteOptions, write_atomic_with};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, WebPkiClientVerifier};
use std::path::Path;
use std::sync::Arc;

/// TLS 1.2 sessions remembered per server for session-ID resumption (clients that do not use
/// tickets); tickets work across servers, session IDs only on the server that issued them.
const SESSION_CACHE: usize = 16_384;

/// On a fresh install (no server certificate, key or CA at all) creates a local CA and a
/// server certificate it signs, so 802.1X works as shipped; an operator replaces them with
/// the organisation's PKI. Some but not all of the three present is refused: that is a
/// half-installed PKI, not a fresh one.
pub(crate) fn ensure_self_signed(conf_dir: &Path, eap: &EapConf) -> anyhow::Result<()> {
    let _ = conf_dir;
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
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("ironfence local EAP CA ({name})"),
    );
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
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// CRLs of a file, PEM (any number) or one DER.
fn crls(path: &Path) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    let data = read(path)?;
    if data.starts_with(b"-----") || data.iter().take(64).all(|b| b.is_ascii()) {
        let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&data)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if crls.is_empty() {
            bail!("{}: no PEM X509 CRL in it", path.display());
        }
        return Ok(crls);
    }
    Ok(vec![CertificateRevocationListDer::from(data)])
}

/// (EAP-TLS: client certificate required, PEAP/TTLS: none) from eap.conf.
pub(crate) fn build(
    conf_dir: &Path,
    eap: &EapConf,
    ticketer: Option<Arc<dyn ProducesTickets>>,
) -> anyhow::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>)> {
    let _ = conf_dir;
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
        ensure_self_signed(dir.path(), &eap).unwrap();
        let before = std::fs::read(&eap.certificate).unwrap();
        ensure_self_signed(dir.path(), &eap).unwrap();
        assert_eq!(before, std::fs::read(&eap.certificate).unwrap(), "kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&eap.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        build(dir.path(), &eap, None).unwrap();
        std::fs::remove_file(&eap.ca).unwrap();
        let e = ensure_self_signed(dir.path(), &eap)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.pem") && e.contains("missing"), "{e}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_and_an_unknown_suite_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut eap = conf(dir.path());
        ensure_self_signed(dir.path(), &eap).unwrap();
        eap.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_MD5".into()];
        let e = build(dir.path(), &eap, None).unwrap_err().to_string();
        assert!(e.contains("TLS_RSA_WITH_RC4_128_MD5"), "{e}");
        eap.cipher_suites.clear();
        std::fs::write(
            &eap.private_key,
            KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let e = format!("{:#}", build(dir.path(), &eap, None).unwrap_err());
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
        let (client_auth, _) = build(dir.path(), &eap, None).unwrap();

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
}

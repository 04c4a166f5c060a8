//! Cluster CA (in the config bundle) and per-server certificates (in the state directory).

use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::crypto_provider;

const CA_VALIDITY: Duration = Duration::from_secs(3650 * 86_400);
const SERVER_VALIDITY: Duration = Duration::from_secs(730 * 86_400);
/// Reissue a server certificate expiring within this delay.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// Certificates start this much in the past: members' clocks may differ a little.
const BACKDATE: Duration = Duration::from_secs(86_400);

const CA_CERT_FILE: &str = "ssl/cluster-ca.crt";
const CA_KEY_FILE: &str = "ssl/cluster-ca.key";
const SERVER_CERT_FILE: &str = "tls/webservices.crt";
const SERVER_KEY_FILE: &str = "tls/webservices.key";

/// Errors of the certificate helpers; messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot issue certificate: {0}")]
    Issue(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> CertError {
    CertError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// `SHA256:<lower-case hex>` of a DER certificate: the fingerprint operators compare.
pub fn ca_fingerprint(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("SHA256:");
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses `SHA256:<hex>` (prefix optional and case-insensitive, `:` separators allowed).
pub(crate) fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let hex = match s.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &s[7..],
        _ => s,
    };
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The cluster CA: certificate and private key, from `conf/ssl/cluster-ca.{crt,key}`.
pub struct ClusterCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    /// Issuer parameters (subject DN, key identifier method, key usages) matching `cert_der`.
    params: CertificateParams,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa")
            .field("fingerprint", &self.fingerprint())
            .field("key", &"[redacted]")
            .finish()
    }
}

fn ca_params(common_name: &str, now: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + CA_VALIDITY).into();
    params
}

impl ClusterCa {
    /// A new CA (ECDSA P-256, 10 years) named `common_name`, e.g. `ironfence cluster CA`.
    pub fn generate(common_name: &str) -> Result<ClusterCa, CertError> {
        Self::generate_at(common_name, SystemTime::now())
    }

    /// [`ClusterCa::generate`] with an explicit clock (tests).
    pub fn generate_at(common_name: &str, now: SystemTime) -> Result<ClusterCa, CertError> {
        if common_name.is_empty() {
            return Err(CertError::Issue("empty CA common name".into()));
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CertError::Issue(format!("cannot generate the CA key: {e}")))?;
        let params = ca_params(common_name, now);
        let cert = params
            .self_signed(&key)
            .map_err(|e| CertError::Issue(format!("cannot self-sign the CA: {e}")))?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key,
            params,
        })
    }

    /// Loads `<conf_dir>/ssl/cluster-ca.{crt,key}`; `Ok(None)` when neither file exists (the
    /// cluster has no CA yet, or this server has not joined). Refuses a key readable by group
    /// or others, a key that does not belong to the certificate, and a non-CA certificate.
    pub fn load(conf_dir: &Path) -> Result<Option<ClusterCa>, CertError> {
        let cert_path = conf_dir.join(CA_CERT_FILE);
        let key_path = conf_dir.join(CA_KEY_FILE);
        let cert_pem = match fs::read_to_string(&cert_path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&cert_path)(e)),
        };
        let key_meta = match fs::metadata(&key_path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&key_path)(e)),
        };
        let (cert_pem, key_meta) = match (cert_pem, key_meta) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(invalid(
                    &key_path,
                    "missing while the cluster CA certificate exists; restore it from another \
                     member (it is part of the configuration bundle)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    &cert_path,
                    "missing while the cluster CA key exists; restore it from another member",
                ));
            }
            (Some(c), Some(m)) => (c, m),
        };
        let mode = key_meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(invalid(
                &key_path,
                format!(
                    "private key is accessible by group/others (mode {mode:04o}); run \
                     `chmod 600 {}`",
                    key_path.display()
                ),
            ));
        }
        let key_pem = fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| invalid(&cert_path, format!("not a PEM certificate: {e}")))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| invalid(&key_path, format!("not a PEM private key: {e}")))?;
        let dn = der::subject_dn(&cert_der)
            .map_err(|e| invalid(&cert_path, format!("cannot read the CA subject: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ClusterCa {
            cert_pem,
            cert_der,
            key,
            params,
        };
        // Self-check: a certificate issued with this key and subject must verify against the
        // certificate (proves the key matches and the issuer name is reproduced exactly).
        let probe_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let now = SystemTime::now();
        let (leaf, _) = ca.issue(probe_ip, "ironfence-self-check", now)?;
        verify_leaf(
            &ca.cert_der,
            &leaf,
            &ServerName::IpAddress(probe_ip.into()),
            now,
        )
        .map_err(|e| {
            invalid(
                &cert_path,
                format!(
                    "cluster-ca.key does not belong to this certificate, or it is not a CA \
                         certificate ({e})"
                ),
            )
        })?;
        Ok(Some(ca))
    }

    /// Writes `<conf_dir>/ssl/cluster-ca.crt` (0644) and `cluster-ca.key` (0600) atomically.
    pub fn save(&self, conf_dir: &Path) -> Result<(), CertError> {
        let key_pem = self.key.serialize_pem();
        write_atomic(&conf_dir.join(CA_KEY_FILE), key_pem.as_bytes(), 0o600)?;
        write_atomic(
            &conf_dir.join(CA_CERT_FILE),
            self.cert_pem.as_bytes(),
            0o644,
        )
    }

    /// `SHA256:<hex>` of the CA certificate (DER).
    pub fn fingerprint(&self) -> String {
        ca_fingerprint(&self.cert_der)
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER (the trust anchor: `Trust::ClusterCa(ca.cert_der().clone())`).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a server certificate: IP SAN `ip`, DNS SAN `hostname` (when it is a valid DNS
    /// name), 2 years from `now` (backdated a day for clock differences).
    fn issue(
        &self,
        ip: IpAddr,
        hostname: &str,
        now: SystemTime,
    ) -> Result<(CertificateDer<'static>, KeyPair), CertError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CertError::Issue(format!("cannot generate a key: {e}")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            DnValue::Utf8String(common_name(ip, hostname)),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::IpAddress(ip)];
        if let Some(dns) = dns_name(hostname) {
            let ia5 = dns
                .try_into()
                .map_err(|e| CertError::Issue(format!("hostname {hostname:?}: {e}")))?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + SERVER_VALIDITY).into();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| CertError::Issue(format!("cannot sign the server certificate: {e}")))?;
        Ok((cert.der().clone(), key))
    }
}

/// Subject CN of a server certificate: the hostname (the IP when there is none).
fn common_name(ip: IpAddr, hostname: &str) -> String {
    if hostname.is_empty() {
        ip.to_string()
    } else {
        hostname.to_string()
    }
}

/// `hostname` if rustls accepts it as a DNS name (then it goes into the DNS SAN).
fn dns_name(hostname: &str) -> Option<String> {
    if hostname.is_empty() || hostname.parse::<IpAddr>().is_ok() {
        return None;
    }
    rustls::pki_types::DnsName::try_from(hostname.to_string())
        .ok()
        .map(|_| hostname.to_string())
}

/// This server's certificate for the webservices: chain `[leaf, cluster CA]` and key.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// True when [`ensure_server_cert`] (re)issued it during this call.
    pub reissued: bool,
}

impl Clone for ServerCert {
    fn clone(&self) -> Self {
        ServerCert {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            reissued: self.reissued,
        }
    }
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("chain_len", &self.chain.len())
            .field(
                "leaf_sha256",
                &self.chain.first().map(|c| ca_fingerprint(c)),
            )
            .field("key", &"[redacted]")
            .field("reissued", &self.reissued)
            .finish()
    }
}

fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// Verifies `leaf` against `ca` as the only trust anchor, for `name`, at `now`, with rustls'
/// WebPKI verifier (the same check clients make).
pub(crate) fn verify_leaf(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: SystemTime,
) -> Result<(), rustls::Error> {
    let verifier = webpki_verifier(ca)?;
    verifier
        .verify_server_cert(leaf, &[], name, &[], unix_time(now))
        .map(|_| ())
}

pub(crate) fn webpki_verifier(
    ca: &CertificateDer<'_>,
) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned())?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
        .build()
        .map_err(|e| rustls::Error::General(format!("cluster CA unusable as trust anchor: {e}")))
}

/// Why the stored certificate must be replaced, or `None` if it is fine.
fn reissue_reason(
    ca: &ClusterCa,
    leaf: &CertificateDer<'_>,
    key: &PrivateKeyDer<'_>,
    ip: IpAddr,
    hostname: &str,
    now: SystemTime,
) -> Option<String> {
    let provider = crypto_provider();
    match provider.key_provider.load_private_key(key.clone_key()) {
        Ok(signing) => {
            let ck = rustls::sign::CertifiedKey::new(vec![leaf.clone().into_owned()], signing);
            if let Err(e) = ck.keys_match() {
                return Some(format!("the key does not match the certificate ({e})"));
            }
        }
        Err(e) => return Some(format!("unusable private key ({e})")),
    }
    // The subject CN records the hostname it was issued for, DNS name or not.
    let expected_cn = DnValue::Utf8String(common_name(ip, hostname));
    match der::subject_dn(leaf) {
        Ok(dn) if dn.get(&DnType::CommonName) == Some(&expected_cn) => {}
        Ok(_) => return Some(format!("it was not issued for the hostname {hostname}")),
        Err(e) => return Some(format!("unreadable certificate ({e})")),
    }
    let by_ip = ServerName::IpAddress(ip.into());
    match verify_leaf(&ca.cert_der, leaf, &by_ip, now) {
        Ok(()) => {}
        Err(rustls::Error::InvalidCertificate(e)) => {
            use rustls::CertificateError as C;
            return Some(match e {
                C::UnknownIssuer | C::BadSignature => {
                    "it was issued by another CA than the current cluster CA".to_string()
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("it is not valid for the management IP {ip}")
                }
                C::Expired | C::ExpiredContext { .. } => "it has expired".to_string(),
                other => format!("it does not verify against the cluster CA ({other})"),
            });
        }
        Err(e) => return Some(format!("it does not verify against the cluster CA ({e})")),
    }
    if let Some(dns) = dns_name(hostname) {
        let by_name = ServerName::try_from(dns).ok()?;
        if verify_leaf(&ca.cert_der, leaf, &by_name, now).is_err() {
            return Some(format!("it is not valid for the hostname {hostname}"));
        }
    }
    if verify_leaf(&ca.cert_der, leaf, &by_ip, now + RENEW_BEFORE).is_err() {
        return Some("it expires within 30 days".to_string());
    }
    None
}

/// Loads `<state_dir>/tls/webservices.{crt,key}`, reissuing them with `ca` when missing or
/// unreadable, expiring within 30 days (relative to `now`), issued by another CA, or not valid
/// for `ip`/`hostname` any more. Returns the chain `[leaf, CA]` to present.
pub fn ensure_server_cert(
    ca: &ClusterCa,
    state_dir: &Path,
    ip: IpAddr,
    hostname: &str,
    now: SystemTime,
) -> Result<ServerCert, CertError> {
    let cert_path = state_dir.join(SERVER_CERT_FILE);
    let key_path = state_dir.join(SERVER_KEY_FILE);
    let existing = match (
        CertificateDer::from_pem_file(&cert_path),
        PrivateKeyDer::from_pem_file(&key_path),
    ) {
        (Ok(cert), Ok(key)) => Some((cert, key)),
        (c, k) => {
            let why = pem_problem(c.err(), &cert_path)
                .or_else(|| pem_problem(k.err(), &key_path))
                .unwrap_or_default();
            tracing::info!("webservices certificate: {why}; issuing a new one from the cluster CA");
            None
        }
    };
    if let Some((leaf, key)) = existing {
        match reissue_reason(ca, &leaf, &key, ip, hostname, now) {
            None => {
                return Ok(ServerCert {
                    chain: vec![leaf, ca.cert_der.clone()],
                    key,
                    reissued: false,
                });
            }
            Some(why) => tracing::info!(
                path = %cert_path.display(),
                "reissuing the webservices certificate: {why}"
            ),
        }
    }
    let (leaf, key) = ca.issue(ip, hostname, now)?;
    // Never hand out a certificate our own clients would refuse (e.g. expired cluster CA).
    verify_leaf(&ca.cert_der, &leaf, &ServerName::IpAddress(ip.into()), now).map_err(|e| {
        CertError::Issue(format!(
            "the new certificate does not verify against the cluster CA ({e}); is the cluster \
             CA expired?"
        ))
    })?;
    let leaf_pem = pem_encode("CERTIFICATE", &leaf);
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, leaf_pem.as_bytes(), 0o644)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| CertError::Issue(format!("cannot encode the new key: {e}")))?;
    Ok(ServerCert {
        chain: vec![leaf, ca.cert_der.clone()],
        key: key_der,
        reissued: true,
    })
}

fn pem_problem(e: Option<rustls::pki_types::pem::Error>, path: &Path) -> Option<String> {
    Some(match e? {
        rustls::pki_types::pem::Error::Io(e) if e.kind() == io::ErrorKind::NotFound => {
            format!("{} is missing", path.display())
        }
        e => format!("{} is unreadable ({e})", path.display()),
    })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `path` via a temporary file in the same directory + fsync + rename; the directory is
/// created (0700 for new directories) if needed.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    ironfence_core::fsutil::write_atomic(path, data, mode).map_err(io_err(path))
}

/// Just enough DER to read back the subject of a certificate we issued, so that certificates
/// issued after a reload carry the exact issuer name. `ClusterCa::load` checks the result by
/// issuing and verifying a probe certificate, so a mistake here cannot weaken anything.
mod der {
    use rcgen::{DistinguishedName, DnType, DnValue};

    fn next(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
        let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
        let (&len0, mut rest) = rest.split_first().ok_or("truncated DER")?;
        let len = if len0 < 0x80 {
            usize::from(len0)
        } else {
            let n = usize::from(len0 & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("unsupported DER length".into());
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err("truncated DER".into());
        }
        Ok((tag, &rest[..len], &rest[len..]))
    }

    fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
        let (t, content, rest) = next(input)?;
        if t != tag {
            return Err(format!("{what}: expected tag {tag:#04x}, found {t:#04x}"));
        }
        Ok((content, rest))
    }

    fn oid_arcs(bytes: &[u8]) -> Result<Vec<u64>, String> {
        let mut arcs = Vec::new();
        let mut acc: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            acc = acc.checked_mul(128).ok_or("OID arc too large")? | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first);
                    arcs.push(acc - first * 40);
                } else {
                    arcs.push(acc);
                }
                acc = 0;
            } else if i == bytes.len() - 1 {
                return Err("truncated OID".into());
            }
        }
        Ok(arcs)
    }

    /// Subject DN of an X.509 certificate (UTF8String / PrintableString single-valued RDNs).
    pub(super) fn subject_dn(cert: &[u8]) -> Result<DistinguishedName, String> {
        let (cert, _) = expect(cert, 0x30, "Certificate")?;
        let (tbs, _) = expect(cert, 0x30, "TBSCertificate")?;
        let mut rest = tbs;
        let (tag, _, after) = next(rest)?;
        if tag == 0xa0 {
            rest = after; // explicit version
        }
        let (_, rest) = expect(rest, 0x02, "serialNumber")?;
        let (_, rest) = expect(rest, 0x30, "signature")?;
        let (_, rest) = expect(rest, 0x30, "issuer")?;
        let (_, rest) = expect(rest, 0x30, "validity")?;
        let (mut subject, _) = expect(rest, 0x30, "subject")?;
        let mut dn = DistinguishedName::new();
        while !subject.is_empty() {
            let (set, more) = expect(subject, 0x31, "RelativeDistinguishedName")?;
            subject = more;
            let (atv, set_rest) = expect(set, 0x30, "AttributeTypeAndValue")?;
            if !set_rest.is_empty() {
                return Err("multi-valued RDN not supported".into());
            }
            let (oid, atv) = expect(atv, 0x06, "attribute type")?;
            let (vtag, value, _) = next(atv)?;
            let text = std::str::from_utf8(value)
                .map_err(|_| "attribute value is not UTF-8".to_string())?
                .to_string();
            let value = match vtag {
                0x0c => DnValue::Utf8String(text),
                0x13 => DnValue::PrintableString(
                    text.try_into()
                        .map_err(|e| format!("bad PrintableString: {e}"))?,
                ),
                t => return Err(format!("unsupported attribute string type {t:#04x}")),
            };
            dn.push(DnType::from_oid(&oid_arcs(oid)?), value);
        }
        Ok(dn)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use rcgen::{CertificateParams, KeyPair};

        #[test]
        fn reads_back_the_subject_rcgen_wrote() {
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "ironfence cluster CA – é");
            dn.push(DnType::OrganizationName, "Example");
            params.distinguished_name = dn.clone();
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            assert_eq!(subject_dn(cert.der()).unwrap(), dn);
        }

        #[test]
        fn rejects_garbage() {
            assert!(subject_dn(b"").is_err());
            assert!(subject_dn(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
            assert!(subject_dn(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        }

        #[test]
        fn oid_decoding() {
            assert_eq!(oid_arcs(&[0x55, 0x04, 0x03]).unwrap(), vec![2, 5, 4, 3]);
            assert_eq!(
                oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]).unwrap(),
                vec![1, 2, 840, 113549]
            );
            assert!(oid_arcs(&[0x2a, 0x86]).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parsing_accepts_common_spellings() {
        let ca = ClusterCa::generate("t").unwrap();
        let fp = ca.fingerprint();
        assert!(fp.starts_with("SHA256:") && fp.len() == 71, "{fp}");
        let raw = sha256(ca.cert_der());
        assert_eq!(parse_fingerprint(&fp), Some(raw));
        assert_eq!(parse_fingerprint(&fp.to_uppercase()), Some(raw));
        assert_eq!(parse_fingerprint(&fp[7..]), Some(raw));
        let colons: Vec<String> = raw.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_fingerprint(&colons.join(":")), Some(raw));
        assert_eq!(parse_fingerprint("SHA256:abcd"), None);
        assert_eq!(parse_fingerprint(&format!("{}zz", &fp[..69])), None);
    }

    #[test]
    fn pem_encoding_round_trips() {
        let ca = ClusterCa::generate("t").unwrap();
        let pem = pem_encode("CERTIFICATE", ca.cert_der());
        assert_eq!(
            &CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
            ca.cert_der()
        );
    }
}

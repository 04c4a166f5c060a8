//! How a [`Client`](crate::Client) decides to trust a peer.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use subtle::ConstantTimeEq;

use crate::pki::{ca_fingerprint, parse_fingerprint, sha256, webpki_verifier};
use crate::{TLS_VERSIONS, crypto_provider};

/// What a client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Normal operation: the cluster CA certificate (DER) is the only trust anchor.
    ClusterCa(CertificateDer<'static>),
    /// Joining (`--ca-fingerprint SHA256:<hex>`): accept the peer only if the CA at the end of
    /// the chain it presents has this fingerprint and issued its certificate.
    PinnedCaFingerprint(String),
    /// Joining without a fingerprint: every connection fails with
    /// [`ClientError::Untrusted`](crate::ClientError::Untrusted), showing the presented one.
    Unknown,
}

/// Carried inside the rustls error when the peer's CA is not (yet) trusted.
#[derive(Debug)]
pub(crate) struct UntrustedCa {
    pub presented: String,
    pub pinned: Option<String>,
}

impl std::fmt::Display for UntrustedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer presented cluster CA {}", self.presented)
    }
}

impl std::error::Error for UntrustedCa {}

/// Builds the rustls client configuration for `trust`. Errors are worded for the operator.
pub(crate) fn client_config(trust: &Trust) -> Result<ClientConfig, String> {
    let provider = crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(TLS_VERSIONS)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let mut config = match trust {
        Trust::ClusterCa(ca) => {
            let verifier = webpki_verifier(ca)
                .map_err(|e| format!("the cluster CA certificate is unusable: {e}"))?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
        Trust::PinnedCaFingerprint(fp) => {
            let pinned = parse_fingerprint(fp).ok_or_else(|| {
                format!(
                    "invalid --ca-fingerprint {fp:?}: expected SHA256: followed by 64 hex digits, \
                     as printed by `ironfence cluster status` on a member"
                )
            })?;
            // Not a verification bypass: the verifier below runs the WebPKI verifier with the
            // pinned CA as the only root, after checking the pin.
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(JoinVerifier {
                    pinned: Some(pinned),
                    provider,
                }))
                .with_no_client_auth()
        }
        Trust::Unknown => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(JoinVerifier {
                pinned: None,
                provider,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifier used while joining: the trust anchor is the CA the peer presents at the end of its
/// chain, accepted only if its SHA-256 equals the pinned fingerprint. Chain and name checks are
/// delegated to rustls' [`WebPkiServerVerifier`] built with that CA as the only root.
#[derive(Debug)]
struct JoinVerifier {
    /// `None`: nothing is trusted, report the presented fingerprint.
    pinned: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

fn untrusted(presented: &CertificateDer<'_>, pinned: Option<[u8; 32]>) -> rustls::Error {
    let pinned = pinned.map(|p| {
        let mut s = String::from("SHA256:");
        for b in p {
            s.push_str(&format!("{b:02x}"));
        }
        s
    });
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(UntrustedCa {
        presented: ca_fingerprint(presented),
        pinned,
    }))))
}

impl ServerCertVerifier for JoinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // An ironfence server presents [leaf, cluster CA]; anything shorter has no CA to pin.
        let Some(ca) = intermediates.last() else {
            return Err(rustls::Error::General(
                "the peer presented no CA certificate after its own (an ironfence server sends \
                 [server certificate, cluster CA])"
                    .into(),
            ));
        };
        let verifier: Arc<WebPkiServerVerifier> = webpki_verifier(ca)?;
        match self.pinned {
            Some(pinned) if bool::from(sha256(ca).ct_eq(&pinned)) => verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            Some(pinned) => Err(untrusted(ca, Some(pinned))),
            None => {
                // Only report a fingerprint for a chain that holds together, so what the
                // operator compares is the CA that really issued the peer's certificate.
                verifier.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                )?;
                Err(untrusted(ca, None))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

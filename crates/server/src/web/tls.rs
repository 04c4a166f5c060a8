//! The portal's certificate: `conf/ssl/server.pem` (certificate chain and private key in one
//! PEM file, as PacketFence's), or `server.crt` + `server.key` beside it.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// `Ok(None)` when `conf/ssl/server.pem` does not exist (HTTPS not offered).
pub fn server_config(conf_dir: &Path) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let pem_path = conf_dir.join("ssl/server.pem");
    if !pem_path.exists() {
        return Ok(None);
    }
    let pem = std::fs::read(&pem_path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", pem_path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", pem_path.display()))?;
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => k,
        Err(_) => {
            let key_path = conf_dir.join("ssl/server.key");
            let k = std::fs::read(&key_path).map_err(|e| {
                anyhow::anyhow!(
                    "{} has no private key and {}: {e}",
                    pem_path.display(),
                    key_path.display()
                )
            })?;
            PrivateKeyDer::from_pem_slice(&k)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?
        }
    };
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate", pem_path.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", pem_path.display()))?;
    Ok(Some(Arc::new(cfg)))
}

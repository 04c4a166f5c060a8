//! The single server's admin listener: `[ports] admin` (1443) on pf.conf `[admin] listen`
//! (default 127.0.0.1), always HTTPS so the session cookie is always `Secure`.
//!
//! ```text
//!  admin ──HTTPS──► [admin] listen : [ports] admin ─► web::serve (limits) ─► admin::router
//!                   certificate: conf/ssl/server.pem, else <state_dir>/admin-tls/ (self-signed,
//!                   generated once)
//! ```
//!
//! In a cluster nothing is bound here: the admin router is mounted on each server's web
//! listener, behind haproxy on the management VIP. Started only when admin.conf has an account
//! (nothing to log into otherwise); a bind failure is logged and the daemon keeps serving
//! RADIUS. The token signing key `conf/ssl/admin-token.key` is created here when absent (a
//! single server has no peer to share it with).

use crate::Shared;
use crate::web;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// Where the self-signed certificate is kept (state directory, not synchronized).
pub fn self_signed_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("admin-tls")
}

/// The TLS configuration: conf/ssl/server.pem when present, else a self-signed certificate
/// made once for this server (for `listen` and `localhost`) and reused at every start.
pub fn tls_config(
    conf_dir: &Path,
    state_dir: &Path,
    listen: std::net::IpAddr,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    if let Some(cfg) = web::tls::server_config(conf_dir)? {
        return Ok(cfg);
    }
    let dir = self_signed_dir(state_dir);
    let pem = dir.join("ssl/server.pem");
    if !pem.exists() {
        let mut names = vec!["localhost".to_string()];
        if !listen.is_unspecified() {
            names.push(listen.to_string());
        }
        let ck = rcgen::generate_simple_self_signed(names)
            .map_err(|e| anyhow::anyhow!("generating the admin certificate: {e}"))?;
        let text = format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem());
        ironfence_core::fsutil::write_atomic_with(
            &pem,
            text.as_bytes(),
            ironfence_core::fsutil::WriteOptions {
                mode: 0o600,
                create_dirs: Some(0o700),
                owner: None,
            },
        )?;
        tracing::warn!(path = %pem.display(), "admin interface: no conf/ssl/server.pem, generated a self-signed certificate (browsers will warn; install a real one as conf/ssl/server.pem)");
    }
    web::tls::server_config(&dir)?.ok_or_else(|| anyhow::anyhow!("{} vanished", pem.display()))
}

/// Binds and serves the admin interface on a single server. `Ok(None)`: not wanted (cluster,
/// or no admin account).
pub async fn start(
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>> {
    let cfg = shared.config();
    if cfg.is_cluster() || cfg.admins.accounts.is_empty() {
        return Ok(None);
    }
    if super::auth::ensure_key(&cfg.conf_dir)? {
        tracing::info!("admin interface: created the token signing key conf/ssl/admin-token.key");
    }
    let listen = cfg.pf.admin.listen;
    let tls = tls_config(&cfg.conf_dir, &cfg.pf.general.state_dir, listen)?;
    let addr = SocketAddr::new(listen, cfg.pf.ports.admin);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the admin interface on {addr}: {e} (set [admin] listen / [ports] admin in pf.conf)"))?;
    let local = listener.local_addr()?;
    let app = super::router(shared.clone(), false)?;
    let task = web::serve(
        "admin interface",
        listener,
        Some(tls),
        app,
        web::Limits::default(),
        shutdown,
    );
    tracing::info!(addr = %local, "admin interface listening (HTTPS)");
    Ok(Some((local, task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real HTTPS listener on this helper's loopback range: login over TLS with the
    /// self-signed certificate, which is kept across restarts.
    #[tokio::test]
    async fn serves_the_api_over_tls_with_a_self_signed_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let h = ironfence_portal::password::hash("a long enough passphrase").unwrap();
        let conf = crate::test_support::conf_dir(
            dir.path(),
            "[admin]\nlisten = 127.0.81.7\n[ports]\nadmin = 18443\n",
            &[(
                "admin.conf",
                &format!("[account alice]\nrole=administrator\npassword={h}\n"),
            )],
        );
        let shared = crate::test_support::shared_for(&conf).await;
        let (tx, rx) = watch::channel(false);
        let (addr, task) = start(shared.clone(), rx).await.unwrap().expect("started");
        assert_eq!(addr.ip().to_string(), "127.0.81.7");
        assert!(conf.join("ssl/admin-token.key").exists());
        let state_dir = shared.config().pf.general.state_dir.clone();
        let pem = self_signed_dir(&state_dir).join("ssl/server.pem");
        let first = std::fs::read(&pem).unwrap();

        // A TLS client trusting exactly that certificate.
        use rustls::pki_types::pem::PemObject;
        let cert = rustls::pki_types::CertificateDer::pem_slice_iter(&first)
            .next()
            .unwrap()
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.81.7").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = r#"{"username":"alice","password":"a long enough passphrase"}"#;
        tls.write_all(
            format!(
                "POST /api/v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("\"token\""), "{out}");
        tx.send(true).unwrap();
        task.await.unwrap();

        // The certificate is reused at the next start.
        let (tx, rx) = watch::channel(false);
        let (_, task) = start(shared, rx).await.unwrap().unwrap();
        assert_eq!(std::fs::read(&pem).unwrap(), first);
        tx.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn not_started_without_an_account() {
        let dir = tempfile::tempdir().unwrap();
        let conf = crate::test_support::conf_dir(dir.path(), "", &[]);
        let shared = crate::test_support::shared_for(&conf).await;
        let (_tx, rx) = watch::channel(false);
        assert!(start(shared, rx).await.unwrap().is_none());
    }
}

//! Shared test helpers: an in-memory `ClusterNode`, server start-up, raw HTTPS requests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ironfence_cluster::{ConfigVersion, PeerFailure, PushReport, ServerStatus};
use ironfence_webservices::{
    AllowedPeers, Client, ClusterCa, ClusterNode, Credentials, ServerCert, Trust,
    ensure_server_cert, serve,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub fn version() -> ConfigVersion {
    ConfigVersion {
        hash: "ab".repeat(32),
        changed_at: 1_700_000_000,
        changed_by: "pf1".into(),
    }
}

#[derive(Default)]
pub struct TestNode {
    pub files: HashMap<String, Vec<u8>>,
    pub bundle: Vec<u8>,
    pub file_calls: AtomicUsize,
    pub applied: Mutex<Vec<(Vec<u8>, String)>>,
    /// What `audit` answers from (filtered by the query), and the queries it received.
    pub audit_records: Vec<ironfence_audit::AuditRecord>,
    pub audit_queries: Mutex<Vec<ironfence_audit::Query>>,
}

impl TestNode {
    pub fn new() -> Arc<TestNode> {
        let mut files = HashMap::new();
        files.insert(
            "conf/pf.conf".to_string(),
            b"[general]\nhostname=pf1\n".to_vec(),
        );
        files.insert("conf/my file.conf".to_string(), b"spaces".to_vec());
        Arc::new(TestNode {
            files,
            bundle: b"IFBUNDLE\x00opaque bytes".to_vec(),
            ..TestNode::default()
        })
    }

    pub fn file_calls(&self) -> usize {
        self.file_calls.load(Ordering::SeqCst)
    }
}

impl ClusterNode for TestNode {
    async fn status(&self) -> Result<ServerStatus, String> {
        Ok(ServerStatus {
            hostname: "pf1".into(),
            software_version: "0.1.0".into(),
            config_version: version(),
            maintenance: false,
            disabled_peers: vec!["pf3".into()],
            db_state: "sqlite".into(),
            read_only: false,
            vips_held: Vec::new(),
            holds_management_vip: false,
            ready: None,
            unready_reasons: Vec::new(),
            front_door_errors: Vec::new(),
        })
    }

    async fn config_version(&self) -> Result<ConfigVersion, String> {
        Ok(version())
    }

    async fn bundle(&self) -> Result<Vec<u8>, String> {
        Ok(self.bundle.clone())
    }

    async fn bundle_file(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.file_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.files.get(path).cloned())
    }

    async fn apply_bundle(&self, bundle: Vec<u8>, from: String) -> Result<ConfigVersion, String> {
        if bundle.starts_with(b"BAD") {
            return Err("bundle hash mismatch: conf/pf.conf was modified in transit".into());
        }
        self.applied.lock().unwrap().push((bundle, from.clone()));
        Ok(ConfigVersion {
            changed_by: from,
            ..version()
        })
    }

    async fn audit(
        &self,
        query: ironfence_audit::Query,
    ) -> Result<Vec<ironfence_audit::AuditRecord>, String> {
        self.audit_queries.lock().unwrap().push(query.clone());
        let matching = self
            .audit_records
            .iter()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        Ok(ironfence_audit::query::newest(matching, query.limit))
    }

    async fn push_to_peers(&self) -> Result<PushReport, String> {
        Ok(PushReport {
            version: Some(version()),
            updated: vec!["pf2".into()],
            failed: vec![PeerFailure {
                server: "pf3".into(),
                error: "cannot reach 10.0.0.3:9090".into(),
            }],
        })
    }
}

pub fn creds() -> Credentials {
    Credentials {
        user: "webservices".into(),
        pass: "s3cret".into(),
    }
}

pub fn wrong_creds() -> Credentials {
    Credentials {
        user: "webservices".into(),
        pass: "guess".into(),
    }
}

/// A server certificate for `ip` issued by `ca` in a fresh state directory.
pub fn cert_for(ca: &ClusterCa, ip: IpAddr) -> ServerCert {
    let state = tempfile::tempdir().unwrap();
    ensure_server_cert(ca, state.path(), ip, "pf1.example.com", SystemTime::now()).unwrap()
}

pub struct Running {
    pub addr: SocketAddr,
    pub node: Arc<TestNode>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("server did not stop")
            .unwrap();
    }
}

pub async fn start(cert: ServerCert) -> Running {
    start_with(cert, TestNode::new()).await
}

pub async fn start_with(cert: ServerCert, node: Arc<TestNode>) -> Running {
    start_on(cert, LOCALHOST, AllowedPeers::default(), node).await
}

/// A server on `ip` (port 0) that admits the `allowed` members.
pub async fn start_on(
    cert: ServerCert,
    ip: IpAddr,
    allowed: AllowedPeers,
    node: Arc<TestNode>,
) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, task) = serve(
        SocketAddr::new(ip, 0),
        cert,
        creds(),
        allowed,
        node.clone(),
        async move {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();
    Running {
        addr,
        node,
        stop: Some(tx),
        task: Some(task),
    }
}

pub fn client(addr: SocketAddr, trust: Trust, credentials: Credentials) -> Client {
    Client::new(
        addr.ip(),
        addr.port(),
        trust,
        credentials,
        Duration::from_secs(10),
    )
    .unwrap()
}

pub fn basic(c: &Credentials) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.pass))
}

/// Sends `head` (request line + headers, without the final blank line) and `body` over TLS
/// verified with `ca`, returns (status, raw answer).
pub async fn raw(addr: SocketAddr, ca: &CertificateDer<'static>, head: &str) -> (u16, String) {
    raw_from(LOCALHOST, addr, ca, head).await
}

/// [`raw`] from the local address `source`.
pub async fn raw_from(
    source: IpAddr,
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    head: &str,
) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .unwrap();
    let request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer"),
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

pub fn conf_dir(root: &Path) -> std::path::PathBuf {
    root.join("conf")
}

//! The client: one HTTPS connection per call (tokio-rustls + hyper's HTTP/1.1 client conn).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ironfence_cluster::types::DbState;
use ironfence_cluster::{ConfigVersion, PushReport, ServerStatus};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, OtherError};
use serde::de::DeserializeOwned;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::paths;
use crate::server::Credentials;
use crate::trust::{Trust, UntrustedCa, client_config};
use crate::{MAX_BUNDLE_BYTES, MAX_REQUEST_BYTES};

/// Largest answer accepted (a bundle plus slack).
const MAX_RESPONSE_BYTES: usize = MAX_BUNDLE_BYTES + MAX_REQUEST_BYTES;

/// Why a call to a peer failed. The messages are meant for the operator as they are.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach {peer}: {} — is ironfence running there and listening on its management IP?",
        io_reason(.source)
    )]
    Unreachable {
        peer: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(
        "{peer} did not answer within {}s — is it overloaded, or is a firewall dropping port {}?",
        after.as_secs_f32(), peer.port()
    )]
    Timeout { peer: SocketAddr, after: Duration },
    #[error("TLS with {peer} failed: {reason}")]
    Tls { peer: SocketAddr, reason: String },
    #[error("{}", untrusted_message(.peer, .presented_fingerprint, .pinned.as_deref()))]
    Untrusted {
        peer: SocketAddr,
        /// `SHA256:<hex>` of the CA certificate the peer presented.
        presented_fingerprint: String,
        /// The fingerprint given with `--ca-fingerprint`, when there was one (it differs).
        pinned: Option<String>,
    },
    #[error(
        "{peer} answered 401: wrong webservices user or password (pf.conf [webservices] user/pass \
         on the peer)"
    )]
    Unauthorized { peer: SocketAddr },
    #[error("{peer} refused the request (HTTP {status}): {message}")]
    Refused {
        peer: SocketAddr,
        status: u16,
        message: String,
    },
    #[error("unexpected answer from {peer}: {message}")]
    Protocol { peer: SocketAddr, message: String },
    /// The client could not be set up (bad fingerprint, unusable CA, bad argument).
    #[error("{message}")]
    Config { message: String },
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        io::ErrorKind::TimedOut => "connection timed out".into(),
        _ => e.to_string(),
    }
}

fn untrusted_message(peer: &SocketAddr, presented: &str, pinned: Option<&str>) -> String {
    match pinned {
        None => format!(
            "{peer} presented cluster CA {presented}, which this server does not trust yet. \
             Compare it with the fingerprint printed by `ironfence cluster status` on a member of \
             the cluster (over a channel you trust, not from this message alone); if they are \
             identical, re-run with --ca-fingerprint {presented}"
        ),
        Some(pinned) => format!(
            "{peer} presented cluster CA {presented}, which does NOT match --ca-fingerprint \
             {pinned}: refusing to talk to it. Check the fingerprint with `ironfence cluster \
             status` on a member; a mismatch means a wrong address, another cluster, or someone \
             intercepting the connection"
        ),
    }
}

/// A client of one peer's webservices.
#[derive(Clone)]
pub struct Client {
    peer: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    authorization: HeaderValue,
    host: HeaderValue,
    timeout: Duration,
    source: Option<IpAddr>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("timeout", &self.timeout)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `peer_ip:port`, verified as described by `trust` with `peer_ip` as the TLS
    /// server name. `timeout` bounds each call (connect, TLS, request and answer together).
    pub fn new(
        peer_ip: IpAddr,
        port: u16,
        trust: Trust,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        use base64::Engine;
        let config = client_config(&trust).map_err(|message| ClientError::Config { message })?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.user, credentials.pass));
        let mut authorization =
            HeaderValue::try_from(format!("Basic {token}")).map_err(|_| ClientError::Config {
                message: "webservices credentials cannot be sent in a header".into(),
            })?;
        authorization.set_sensitive(true);
        let peer = SocketAddr::new(peer_ip, port);
        let host = HeaderValue::try_from(peer.to_string()).map_err(|_| ClientError::Config {
            message: format!("{peer} cannot be used as a Host header"),
        })?;
        Ok(Client {
            peer,
            server_name: ServerName::IpAddress(peer_ip.into()),
            connector: TlsConnector::from(Arc::new(config)),
            authorization,
            host,
            timeout,
            source: None,
        })
    }

    /// Connects from `ip` (this server's management IP): peers admit only the addresses of
    /// cluster.conf, and on a multi-homed host (or several test servers on loopback) the
    /// kernel's choice of source address may be another one. When `ip` is not an address of
    /// this host, the kernel's choice is used.
    pub fn with_source(mut self, ip: IpAddr) -> Client {
        self.source = Some(ip);
        self
    }

    /// The peer this client talks to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// `GET /api/v1/cluster/status`.
    pub async fn status(&self) -> Result<ServerStatus, ClientError> {
        self.get_json(paths::STATUS).await
    }

    /// `GET /api/v1/cluster/version`.
    pub async fn config_version(&self) -> Result<ConfigVersion, ClientError> {
        self.get_json(paths::VERSION).await
    }

    /// `GET /api/v1/cluster/db`: the peer's database (Galera) state.
    pub async fn db_state(&self) -> Result<DbState, ClientError> {
        self.get_json(paths::DB).await
    }

    /// `GET /api/v1/cluster/audit`: the peer's own audit records matching `query` (at most
    /// [`crate::MAX_AUDIT_LIMIT`], the newest; oldest first).
    pub async fn audit(
        &self,
        query: &ironfence_audit::Query,
    ) -> Result<Vec<ironfence_audit::AuditRecord>, ClientError> {
        let path = format!("{}?{}", paths::AUDIT, crate::audit_query_string(query));
        let answer: crate::AuditAnswer = self.get_json(&path).await?;
        Ok(answer.records)
    }

    /// `GET /api/v1/cluster/bundle`: the peer's encoded bundle.
    pub async fn bundle(&self) -> Result<Vec<u8>, ClientError> {
        let (status, body) = self
            .call(Method::GET, paths::BUNDLE.to_string(), None)
            .await?;
        self.expect_ok(status, &body)?;
        Ok(body.to_vec())
    }

    /// `GET /api/v1/cluster/files/{path}`: `None` when `path` is not a file of the peer's
    /// bundle.
    pub async fn bundle_file(&self, path: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let uri = format!("{}{}", paths::FILES_PREFIX, percent_encode_path(path));
        let (status, body) = self.call(Method::GET, uri, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.expect_ok(status, &body)?;
        Ok(Some(body.to_vec()))
    }

    /// `POST /api/v1/cluster/bundle`: the peer applies `bundle` (sent by server `from`) and
    /// answers its new version; a refusal is `Refused { status: 422, .. }` with the reason.
    pub async fn push_bundle(
        &self,
        bundle: Vec<u8>,
        from: &str,
    ) -> Result<ConfigVersion, ClientError> {
        if bundle.len() > MAX_BUNDLE_BYTES {
            return Err(ClientError::Config {
                message: format!(
                    "the bundle is {} bytes, above the {} MiB accepted by the node-to-node API",
                    bundle.len(),
                    MAX_BUNDLE_BYTES >> 20
                ),
            });
        }
        let from = HeaderValue::try_from(from).map_err(|_| ClientError::Config {
            message: format!("{from:?} cannot be sent as X-Ironfence-From"),
        })?;
        let (status, body) = self
            .call(
                Method::POST,
                paths::BUNDLE.to_string(),
                Some((bundle, from)),
            )
            .await?;
        self.expect_ok(status, &body)?;
        self.decode(&body)
    }

    /// `POST /api/v1/cluster/push`: asks the peer to push its bundle to its own peers.
    pub async fn ask_push(&self) -> Result<PushReport, ClientError> {
        let (status, body) = self
            .call(Method::POST, paths::PUSH.to_string(), None)
            .await?;
        self.expect_ok(status, &body)?;
        self.decode(&body)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (status, body) = self.call(Method::GET, path.to_string(), None).await?;
        self.expect_ok(status, &body)?;
        self.decode(&body)
    }

    fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Protocol {
            peer: self.peer,
            message: format!(
                "invalid JSON answer ({e}) — is the peer running the same ironfence version?"
            ),
        })
    }

    fn expect_ok(&self, status: StatusCode, body: &[u8]) -> Result<(), ClientError> {
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized { peer: self.peer });
        }
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: String,
        }
        let message = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => e.error,
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.chars().take(300).collect();
                if text.trim().is_empty() {
                    status
                        .canonical_reason()
                        .unwrap_or("no explanation")
                        .to_string()
                } else {
                    text
                }
            }
        };
        Err(ClientError::Refused {
            peer: self.peer,
            status: status.as_u16(),
            message,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        upload: Option<(Vec<u8>, HeaderValue)>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        match tokio::time::timeout(self.timeout, self.exchange(method, path, upload)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                peer: self.peer,
                after: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: String,
        upload: Option<(Vec<u8>, HeaderValue)>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let peer = self.peer;
        let protocol = |message: String| ClientError::Protocol { peer, message };
        let tcp = self
            .connect()
            .await
            .map_err(|source| ClientError::Unreachable { peer, source })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| classify_tls_error(peer, e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| protocol(format!("HTTP handshake failed: {e}")))?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "webservices client connection ended with an error");
            }
        }));
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(
                header::USER_AGENT,
                concat!("ironfence/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "application/json, application/octet-stream");
        let body = match upload {
            Some((bytes, from)) => {
                builder = builder
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(paths::FROM_HEADER, from);
                bytes
            }
            None => Vec::new(),
        };
        let req = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| protocol(format!("cannot build the request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            protocol(format!(
                "the connection failed during the request ({e}) — did the peer close it?"
            ))
        })?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| protocol(format!("cannot read the answer: {e}")))?
            .to_bytes();
        drop(driver);
        Ok((status, body))
    }
}

impl Client {
    async fn connect(&self) -> io::Result<TcpStream> {
        let Some(source) = self.source.filter(|s| s.is_ipv4() == self.peer.is_ipv4()) else {
            return TcpStream::connect(self.peer).await;
        };
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        match socket.bind(SocketAddr::new(source, 0)) {
            Ok(()) => socket.connect(self.peer).await,
            // Not (or no longer) an address of this host: let the kernel choose.
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                TcpStream::connect(self.peer).await
            }
            Err(e) => Err(e),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a failed TLS handshake into an operator-level error.
fn classify_tls_error(peer: SocketAddr, e: io::Error) -> ClientError {
    if let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let reason = match err {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(other))) => {
                if let Some(u) = other.downcast_ref::<UntrustedCa>() {
                    return ClientError::Untrusted {
                        peer,
                        presented_fingerprint: u.presented.clone(),
                        pinned: u.pinned.clone(),
                    };
                }
                format!("invalid certificate: {other}")
            }
            rustls::Error::InvalidCertificate(ce) => describe_certificate_error(peer, ce),
            rustls::Error::AlertReceived(alert) => format!(
                "the peer aborted the handshake ({alert:?}) — is it an ironfence server of a \
                 compatible version?"
            ),
            other => other.to_string(),
        };
        return ClientError::Tls { peer, reason };
    }
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            "the peer closed the connection during the TLS handshake — is this server's \
             address listed in the peer's cluster.conf (it closes connections from other \
             addresses before TLS; joining servers must be added there first), and is this port \
             really ironfence's webservices (HTTPS)?"
                .to_string()
        }
        _ => e.to_string(),
    };
    ClientError::Tls { peer, reason }
}

fn describe_certificate_error(peer: SocketAddr, e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => "its certificate is not issued by this cluster's CA \
             (conf/ssl/cluster-ca.crt) — is it a member of another cluster, or was the cluster \
             CA replaced without syncing?"
            .to_string(),
        CertificateError::BadSignature => "its certificate's signature does not verify against \
             the cluster CA (forged or tampered certificate)"
            .to_string(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "its certificate is not valid for {} — it was issued for another management IP; \
                 restarting ironfence there reissues it",
                peer.ip()
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "its certificate has expired — check both servers' clocks; ironfence reissues it \
             when it starts"
                .to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "its certificate is not valid yet — the two servers' clocks differ (check NTP)"
                .to_string()
        }
        other => format!("invalid certificate: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_encoding() {
        assert_eq!(percent_encode_path("conf/pf.conf"), "conf/pf.conf");
        assert_eq!(percent_encode_path("conf/a b%"), "conf/a%20b%25");
        assert_eq!(
            crate::server::bundle_file_path(&percent_encode_path("conf/a b")).unwrap(),
            "conf/a b"
        );
    }

    #[test]
    fn unreachable_message_is_worded_for_the_operator() {
        let e = ClientError::Unreachable {
            peer: "192.168.1.5:9090".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach 192.168.1.5:9090: connection refused — is ironfence running there and \
             listening on its management IP?"
        );
    }
}

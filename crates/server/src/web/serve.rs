//! One HTTP/1.1 accept loop for plain and TLS listeners, with the limits that keep a slow or
//! hostile client from holding the server: TLS handshake and header read timeouts, a header
//! size cap, a whole-request timeout and at most `max_connections` connections at once.

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// Who is on the other end of a request: inserted as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// hyper's read buffer, which bounds the request line and headers (minimum 8 KiB).
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` (TLS when `tls` is given) until `shutdown` turns true.
pub fn serve(
    what: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let local = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "{what}: listener has no address");
                return;
            }
        };
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            };
            let (tcp, addr) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::debug!(%addr, "{what}: too many connections, closing");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let app = app.clone();
            let acceptor = acceptor.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match acceptor {
                    None => {
                        let peer = Peer {
                            addr,
                            local,
                            tls: false,
                        };
                        connection(tcp, peer, app, limits, stop).await
                    }
                    Some(acc) => {
                        match tokio::time::timeout(limits.handshake_timeout, acc.accept(tcp)).await
                        {
                            Ok(Ok(stream)) => {
                                let peer = Peer {
                                    addr,
                                    local,
                                    tls: true,
                                };
                                connection(stream, peer, app, limits, stop).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%addr, error = %e, "{what}: TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%addr, "{what}: TLS handshake timed out"),
                        }
                    }
                }
            });
        }
    })
}

async fn connection<S>(
    io: S,
    peer: Peer,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let inner = TowerToHyperService::new(app);
    let service = service_fn(move |mut req: Request<Incoming>| {
        let inner = inner.clone();
        req.extensions_mut().insert(peer);
        async move {
            let resp = match tokio::time::timeout(
                limits.request_timeout,
                hyper::service::Service::call(&inner, req),
            )
            .await
            {
                Ok(Ok(r)) => r.into_response(),
                Ok(Err(never)) => match never {},
                Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timeout\n").into_response(),
            };
            Ok::<Response, Infallible>(resp)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(peer = %peer.addr, error = %e, "web: connection error");
            }
        }
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

//! DNS over TCP (RFC 7766): two-octet length, then the message; several queries per
//! connection, answered in order. A device retries here when a relayed answer came back
//! truncated (TC). Pass-through queries go to the resolver over TCP as well (one connection
//! each), checked by the same forwarding rules as over UDP (id, source, question).
//!
//! Bounds: [`MAX_CONNECTIONS`] at once per listener (more wait in the kernel's backlog), an
//! idle connection is closed after [`IDLE`], a malformed message closes its connection.

use super::{Bind, Dns};
use ironfence_dns::{Action, AnswerOutcome, Forwarder, Outgoing, Query};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

pub const MAX_CONNECTIONS: usize = 128;
pub const IDLE: Duration = Duration::from_secs(10);

fn listen(b: &Bind) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if b.freebind {
        s.set_freebind_v4(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(b.addr).into())?;
    s.listen(128)?;
    TcpListener::from_std(s.into())
}

pub(super) fn start(
    dns: &Arc<Dns>,
    binds: &[Bind],
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for b in binds {
        match listen(b) {
            Ok(l) => tasks.push(tokio::spawn(accept(
                dns.clone(),
                l,
                b.portal,
                shutdown.clone(),
            ))),
            Err(e) => tracing::error!(error = %e, addr = %b.addr, "DNS TCP listener not bound"),
        }
    }
    tasks
}

async fn accept(
    dns: Arc<Dns>,
    listener: TcpListener,
    portal: Ipv4Addr,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let dns = dns.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            connection(&dns, stream, portal, shutdown).await;
            drop(permit);
        });
    }
}

async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.ok()?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg).await.ok()?;
    Some(msg)
}

async fn write_frame(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(msg);
    stream.write_all(&out).await
}

async fn connection(
    dns: &Dns,
    mut stream: TcpStream,
    portal: Ipv4Addr,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            r = tokio::time::timeout(IDLE, read_frame(&mut stream)) => match r {
                Ok(Some(m)) => m,
                _ => return,
            },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        dns.metrics
            .queries
            .get_or_create(&[("transport", "tcp")])
            .inc();
        let (responder, resolvers) = dns.rules();
        let reply = match responder.handle(&msg, portal) {
            Action::Reply { bytes, kind } => {
                dns.metrics.answer(kind.label());
                bytes
            }
            Action::Drop(reason) => {
                dns.metrics.drop_reason(reason.label());
                return;
            }
            Action::Forward(query) => forward(dns, &msg, &query, &resolvers).await,
        };
        if write_frame(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

/// One pass-through query over TCP to a resolver; SERVFAIL when it fails or times out.
async fn forward(dns: &Dns, msg: &[u8], query: &Query, resolvers: &[SocketAddr]) -> Vec<u8> {
    let servfail = || {
        dns.metrics.answer("servfail");
        ironfence_dns::responder::servfail(query)
    };
    let Some(upstream) = dns.pick_resolver(resolvers) else {
        return servfail();
    };
    let timeout = dns
        .forwarder
        .lock()
        .map(|f| f.timeout())
        .unwrap_or(ironfence_dns::forward::DEFAULT_TIMEOUT);
    let mut table: Forwarder<()> = Forwarder::new(timeout, 1);
    let out = Outgoing {
        client: (),
        datagram: msg,
        query,
        limit: u16::MAX as usize,
        upstream,
    };
    let Ok(sent) = table.forward(Instant::now(), out, super::random_id()) else {
        return servfail();
    };
    dns.metrics.forwarded.inc();
    let exchange = async {
        let mut s = TcpStream::connect(upstream).await.ok()?;
        write_frame(&mut s, &sent).await.ok()?;
        read_frame(&mut s).await
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Some(answer)) => match table.answer(upstream, &answer) {
            AnswerOutcome::Relay { bytes, .. } => {
                dns.metrics.relayed.inc();
                bytes
            }
            AnswerOutcome::Drop(reason) => {
                dns.metrics
                    .upstream_dropped
                    .get_or_create(&[("reason", reason)])
                    .inc();
                servfail()
            }
        },
        Ok(None) => servfail(),
        Err(_) => {
            dns.metrics.upstream_timeouts.inc();
            servfail()
        }
    }
}

//! UDP sockets for RADIUS: large receive buffers and `IP_PKTINFO`, so that every reply leaves
//! from the address the request was sent to. Behind a cluster's virtual IP a reply from the
//! host's own address would be dropped by the switch (wrong source), so this is not optional.

use nix::sys::socket::{
    self, ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// One received datagram: who sent it and which of our addresses it was sent to.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub source: SocketAddrV4,
    /// The destination address of the request (from `IP_PKTINFO`); the reply's source.
    pub local: Option<Ipv4Addr>,
}

/// A non-blocking IPv4 UDP socket registered with tokio.
#[derive(Debug)]
pub struct PktInfoSocket {
    sock: UdpSocket,
}

impl PktInfoSocket {
    /// Binds `addr` with `SO_RCVBUF` of `recv_buffer` bytes (as root, `SO_RCVBUFFORCE` lifts the
    /// `net.core.rmem_max` cap) and `IP_PKTINFO` enabled.
    pub fn bind(addr: SocketAddrV4, recv_buffer: usize) -> io::Result<PktInfoSocket> {
        Self::bind_with(addr, recv_buffer, false)
    }

    /// With `freebind` (IP_FREEBIND), an address this host does not hold (yet) can be bound:
    /// a virtual IP keepalived moves here later is served from the moment it arrives.
    pub fn bind_with(
        addr: SocketAddrV4,
        recv_buffer: usize,
        freebind: bool,
    ) -> io::Result<PktInfoSocket> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        sock.set_reuse_address(true)?;
        if freebind {
            sock.set_freebind_v4(true)?;
        }
        if recv_buffer > 0 {
            set_recv_buffer(&sock, recv_buffer);
        }
        sock.set_nonblocking(true)?;
        sock.bind(&SocketAddr::V4(addr).into())?;
        socket::setsockopt(&sock, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
        Ok(PktInfoSocket {
            sock: UdpSocket::from_std(sock.into())?,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Effective kernel receive buffer (the kernel doubles the requested value).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        socket::getsockopt(&self.sock, sockopt::RcvBuf).map_err(io::Error::from)
    }

    /// Receives one datagram into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || recv_pktinfo(fd, buf))
            .await
    }

    /// Sends `data` to `dest`, from `local` when known.
    pub async fn send(
        &self,
        data: &[u8],
        dest: SocketAddrV4,
        local: Option<Ipv4Addr>,
    ) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::WRITABLE, || send_pktinfo(fd, data, dest, local))
            .await
    }
}

fn set_recv_buffer(sock: &Socket, bytes: usize) {
    // RcvBufForce needs CAP_NET_ADMIN; fall back to the capped variant silently.
    let forced = socket::setsockopt(sock, sockopt::RcvBufForce, &bytes).is_ok();
    if !forced {
        let _ = sock.set_recv_buffer_size(bytes);
    }
    tracing::debug!(bytes, forced, "socket receive buffer set");
}

fn recv_pktinfo(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(nix::libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let mut local = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
            local = Some(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)));
        }
    }
    let source = msg
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .ok_or_else(|| io::Error::other("datagram without source address"))?;
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "datagram truncated",
        ));
    }
    Ok(Received {
        len: msg.bytes,
        source,
        local,
    })
}

fn send_pktinfo(
    fd: RawFd,
    data: &[u8],
    dest: SocketAddrV4,
    local: Option<Ipv4Addr>,
) -> io::Result<()> {
    let iov = [IoSlice::new(data)];
    let to = SockaddrIn::from(dest);
    let sent = match local {
        Some(ip) if !ip.is_unspecified() => {
            let info = nix::libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: nix::libc::in_addr {
                    s_addr: u32::from(ip).to_be(),
                },
                ipi_addr: nix::libc::in_addr { s_addr: 0 },
            };
            socket::sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&to),
            )
        }
        _ => socket::sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&to)),
    }
    .map_err(io::Error::from)?;
    if sent != data.len() {
        return Err(io::Error::other("short UDP send"));
    }
    Ok(())
}

/// Datagrams per `recvmmsg` / `sendmmsg` call.
pub const BATCH: usize = 32;
const DGRAM: usize = 4096;

/// Reusable buffers for receiving up to [`BATCH`] datagrams with one `recvmmsg`, each with its
/// `IP_PKTINFO`. Under load this divides the per-request syscall cost by the batch size.
pub struct RecvBatch {
    bufs: Vec<[u8; DGRAM]>,
    got: Vec<Received>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("len", &self.got.len())
            .finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![[0u8; DGRAM]; BATCH],
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// Datagrams of the last receive: (bytes, where from / to). Truncated ones have `len` 0.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Received)> {
        self.got
            .iter()
            .zip(&self.bufs)
            .map(|(r, b)| (&b[..r.len.min(DGRAM)], *r))
    }

    fn fill(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got.clear();
        // The kernel headers hold raw pointers (not `Send`), so they live only for this call:
        // one small allocation per batch, not per datagram.
        let mut hdrs: MultiHeaders<SockaddrIn> =
            MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(nix::libc::in_pktinfo)));
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let results =
            socket::recvmmsg(fd, &mut hdrs, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
                .map_err(io::Error::from)?;
        for msg in results {
            let Some(addr) = msg.address else { continue };
            let mut local = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                        local = Some(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)));
                    }
                }
            }
            let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
            self.got.push(Received {
                len: if truncated { 0 } else { msg.bytes },
                source: SocketAddrV4::new(addr.ip(), addr.port()),
                local,
            });
        }
        if self.got.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(self.got.len())
    }
}

impl PktInfoSocket {
    /// Waits for datagrams and receives up to [`BATCH`] of them with one `recvmmsg`.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || batch.fill(fd))
            .await
    }

    /// Sends every reply, one `sendmmsg` per run of replies sharing a source address (behind
    /// a VIP, replies of one batch may leave from different addresses). Returns the number of
    /// replies the kernel refused.
    pub fn send_batch(&self, replies: &[(&[u8], SocketAddrV4, Option<Ipv4Addr>)]) -> usize {
        let fd = self.sock.as_raw_fd();
        let mut failed = 0;
        let mut start = 0;
        while start < replies.len() {
            let local = replies[start].2;
            let mut end = start + 1;
            while end < replies.len() && end - start < BATCH && replies[end].2 == local {
                end += 1;
            }
            let slices: Vec<[IoSlice<'_>; 1]> = replies[start..end]
                .iter()
                .map(|r| [IoSlice::new(r.0)])
                .collect();
            let addrs: Vec<Option<SockaddrIn>> = replies[start..end]
                .iter()
                .map(|r| Some(SockaddrIn::from(r.1)))
                .collect();
            let info = local
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| nix::libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: nix::libc::in_addr {
                        s_addr: u32::from(ip).to_be(),
                    },
                    ipi_addr: nix::libc::in_addr { s_addr: 0 },
                });
            let cmsgs: Vec<ControlMessage<'_>> =
                info.iter().map(ControlMessage::Ipv4PacketInfo).collect();
            // Headers sized for the control message only when there is one: an empty control
            // buffer would be rejected by the kernel (EINVAL).
            let mut hdrs: MultiHeaders<SockaddrIn> = MultiHeaders::preallocate(
                BATCH,
                info.map(|_| nix::cmsg_space!(nix::libc::in_pktinfo)),
            );
            match socket::sendmmsg(
                fd,
                &mut hdrs,
                slices.iter(),
                &addrs,
                &cmsgs,
                MsgFlags::MSG_DONTWAIT,
            ) {
                // sendmmsg stops at the first datagram it cannot send: skip that one.
                Ok(res) => match res.count() {
                    0 => {
                        failed += 1;
                        start += 1;
                    }
                    n => start += n,
                },
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    failed += 1;
                    start += 1;
                }
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reply_leaves_from_the_address_the_request_was_sent_to() {
        // 127.0.0.2 is a loopback address the socket is not bound to specifically.
        let server =
            PktInfoSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), 1 << 20).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"ping", ("127.0.0.2", port)).unwrap();
        let mut buf = [0u8; 64];
        let got = server.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..got.len], b"ping");
        assert_eq!(got.local, Some(Ipv4Addr::new(127, 0, 0, 2)));
        server.send(b"pong", got.source, got.local).await.unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert_eq!(from, SocketAddr::from(([127, 0, 0, 2], port)));
        assert!(server.recv_buffer_size().unwrap() >= 1 << 20);
    }

    #[tokio::test]
    async fn batched_receive_and_reply_keep_the_destination_address() {
        let server =
            PktInfoSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), 1 << 20).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..3u8 {
            client.send_to(&[i; 5], ("127.0.0.3", port)).unwrap();
        }
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        while got.len() < 3 {
            server.recv_batch(&mut batch).await.unwrap();
            got.extend(batch.iter().map(|(d, r)| (d.to_vec(), r)));
        }
        assert!(
            got.iter()
                .all(|(_, r)| r.local == Some(Ipv4Addr::new(127, 0, 0, 3)))
        );
        let replies: Vec<(&[u8], SocketAddrV4, Option<Ipv4Addr>)> = got
            .iter()
            .map(|(d, r)| (d.as_slice(), r.source, r.local))
            .collect();
        assert_eq!(server.send_batch(&replies), 0);
        let mut buf = [0u8; 16];
        for i in 0..3u8 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 5]);
            assert_eq!(from, SocketAddr::from(([127, 0, 0, 3], port)));
        }
    }
}

//! UDP sockets for RADIUS: large receive buffers and `IP_PKTINFO`, so that every reply leaves
//! from the address the request was sent to. Behind a cluster's virtual IP a reply from the
//! host's own address would be dropped by the switch (wrong source), so this is not optional.

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, sockopt};
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
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        sock.set_reuse_address(true)?;
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
}

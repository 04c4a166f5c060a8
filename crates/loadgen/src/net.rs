//! Batched UDP I/O: `recvmmsg` / `sendmmsg` through nix (one syscall for up to [`BATCH`]
//! datagrams), `poll`, socket options and CPU pinning.

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrIn, SockaddrLike,
    sockopt,
};
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};

/// Datagrams per `recvmmsg` / `sendmmsg` call.
pub const BATCH: usize = 64;
/// Receive buffer per datagram: the largest RADIUS packet.
pub const DGRAM: usize = ironfence_radius::MAX_PACKET_LEN;

/// Creates an IPv4 UDP socket with `SO_RCVBUF`/`SO_SNDBUF` of `buf_bytes` (forced past
/// `net.core.rmem_max` when running as root, else capped by it).
pub fn udp_socket(buf_bytes: usize) -> anyhow::Result<UdpSocket> {
    let fd: OwnedFd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket()")?;
    if socket::setsockopt(&fd, sockopt::RcvBufForce, &buf_bytes).is_err() {
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &buf_bytes);
    }
    if socket::setsockopt(&fd, sockopt::SndBufForce, &buf_bytes).is_err() {
        let _ = socket::setsockopt(&fd, sockopt::SndBuf, &buf_bytes);
    }
    Ok(UdpSocket::from(fd))
}

/// A socket bound to `addr` (port 0: an ephemeral port).
pub fn bound_socket(addr: SocketAddrV4, buf_bytes: usize) -> anyhow::Result<UdpSocket> {
    let s = udp_socket(buf_bytes)?;
    socket::bind(s.as_raw_fd(), &SockaddrIn::from(addr))
        .with_context(|| format!("bind({addr})"))?;
    Ok(s)
}

/// A client socket bound to an ephemeral port and connected to `server`, so the
/// kernel drops datagrams from anyone else and sends need no address.
pub fn connected_socket(server: SocketAddrV4, buf_bytes: usize) -> anyhow::Result<UdpSocket> {
    let s = bound_socket(
        SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
        buf_bytes,
    )?;
    s.connect(server)
        .with_context(|| format!("connect({server})"))?;
    Ok(s)
}

/// Receive side of a batch: [`BATCH`] buffers and the kernel headers pointing at them.
#[derive(Debug)]
pub struct RecvBatch<S> {
    hdrs: MultiHeaders<S>,
    bufs: Vec<[u8; DGRAM]>,
    lens: [usize; BATCH],
    addrs: [Option<S>; BATCH],
    truncated: [bool; BATCH],
}

impl<S: SockaddrLike + Copy> RecvBatch<S> {
    /// Preallocates the buffers (~256 KiB).
    pub fn new() -> Self {
        RecvBatch {
            hdrs: MultiHeaders::preallocate(BATCH, None),
            bufs: vec![[0u8; DGRAM]; BATCH],
            lens: [0; BATCH],
            addrs: [None; BATCH],
            truncated: [false; BATCH],
        }
    }

    /// One `recvmmsg`: returns how many datagrams arrived (0 when none is waiting and `flags`
    /// has `MSG_DONTWAIT`). `ECONNREFUSED` (an ICMP port unreachable reported on a connected
    /// socket) is returned as an error for the caller to count.
    pub fn recv(&mut self, fd: &impl AsRawFd, flags: MsgFlags) -> nix::Result<usize> {
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let res =
            match socket::recvmmsg(fd.as_raw_fd(), &mut self.hdrs, iovs.iter_mut(), flags, None) {
                Ok(r) => r,
                Err(Errno::EAGAIN) => return Ok(0),
                Err(e) => return Err(e),
            };
        let mut n = 0;
        for (k, msg) in res.enumerate() {
            self.lens[k] = msg.bytes;
            self.addrs[k] = msg.address;
            self.truncated[k] = msg.flags.contains(MsgFlags::MSG_TRUNC);
            n = k + 1;
        }
        Ok(n)
    }

    /// Datagram `k` of the last [`RecvBatch::recv`]: bytes, sender, whether it was truncated.
    pub fn get(&self, k: usize) -> (&[u8], Option<S>, bool) {
        (
            &self.bufs[k][..self.lens[k].min(DGRAM)],
            self.addrs[k],
            self.truncated[k],
        )
    }
}

impl<S: SockaddrLike + Copy> Default for RecvBatch<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Send side of a batch: the kernel headers (the data stays where the caller keeps it).
#[derive(Debug)]
pub struct SendBatch<S> {
    hdrs: MultiHeaders<S>,
}

impl<S: SockaddrLike + Copy> Default for SendBatch<S> {
    fn default() -> Self {
        SendBatch {
            hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl<S: SockaddrLike + Copy> SendBatch<S> {
    /// Sends every datagram of `packets` (to `addrs[k]`, or to the connected peer when `None`)
    /// with as few `sendmmsg` calls as possible. A datagram the kernel refuses (e.g.
    /// `ECONNREFUSED` after an ICMP error, `ENOBUFS`) is skipped. Returns the number of
    /// datagrams not sent.
    pub fn send(&mut self, fd: &impl AsRawFd, packets: &[&[u8]], addrs: &[Option<S>]) -> usize {
        debug_assert_eq!(packets.len(), addrs.len());
        let mut failed = 0;
        let mut start = 0;
        while start < packets.len() {
            let end = (start + BATCH).min(packets.len());
            let slices: Vec<[IoSlice<'_>; 1]> = packets[start..end]
                .iter()
                .map(|p| [IoSlice::new(p)])
                .collect();
            match socket::sendmmsg(
                fd.as_raw_fd(),
                &mut self.hdrs,
                slices.iter(),
                &addrs[start..end],
                [],
                MsgFlags::empty(),
            ) {
                Ok(res) => {
                    let sent = res.count();
                    // sendmmsg stops at the first datagram that fails; skip that one.
                    if sent == 0 {
                        failed += 1;
                        start += 1;
                    } else {
                        start += sent;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => {
                    failed += 1;
                    start += 1;
                }
            }
        }
        failed
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("sched_setaffinity(CPU {cpu})"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_round_trip_over_loopback() {
        let server =
            bound_socket(SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0), 1 << 20).unwrap();
        let addr = match server.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let client = connected_socket(addr, 1 << 20).unwrap();
        let msgs: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 20 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut sb = SendBatch::<()>::default();
        assert_eq!(sb.send(&client, &refs, &vec![None; refs.len()]), 0);
        let mut rb = RecvBatch::<SockaddrIn>::new();
        let mut got = Vec::new();
        while got.len() < 100 {
            let n = rb.recv(&server, MsgFlags::MSG_WAITFORONE).unwrap();
            for k in 0..n {
                let (d, from, trunc) = rb.get(k);
                assert!(!trunc);
                assert_eq!(
                    from.map(|a| a.port()),
                    Some(client.local_addr().unwrap().port())
                );
                got.push(d.to_vec());
            }
        }
        assert_eq!(got, msgs);
        // Nothing more waiting: MSG_DONTWAIT returns 0, not an error.
        assert_eq!(rb.recv(&server, MsgFlags::MSG_DONTWAIT).unwrap(), 0);
    }
}

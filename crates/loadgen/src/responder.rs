//! `null-responder`: the cheapest correct RADIUS server, used to measure the load
//! generator's own ceiling. It decodes each Access-Request, requires and verifies its
//! Message-Authenticator, and answers with a signed Access-Accept carrying a fixed VLAN
//! (Tunnel-Type, Tunnel-Medium-Type, Tunnel-Private-Group-Id), in batches of
//! `recvmmsg`/`sendmmsg`. No policy, no database, no logging, no duplicate detection.

use crate::net::{self, RecvBatch, SendBatch};
use ironfence_radius::{Code, Packet, PacketBuilder, dict, verify_request};
use nix::sys::socket::{MsgFlags, SockaddrIn};
use std::net::SocketAddrV4;

/// Responder settings.
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    /// Address to listen on.
    pub listen: SocketAddrV4,
    /// Shared secret.
    pub secret: Vec<u8>,
    /// VLAN in every Access-Accept.
    pub vlan: u16,
    /// CPU to pin to.
    pub cpu: Option<usize>,
}

/// Serves forever (until killed). `ready` is called with the bound address.
pub fn serve(cfg: &ResponderConfig, ready: impl FnOnce(SocketAddrV4)) -> anyhow::Result<()> {
    if let Some(cpu) = cfg.cpu {
        net::pin_current_thread(cpu)?;
    }
    let sock = net::bound_socket(cfg.listen, 8 << 20)?;
    let local = match sock.local_addr()? {
        std::net::SocketAddr::V4(a) => a,
        other => anyhow::bail!("unexpected local address {other}"),
    };
    ready(local);
    let mut recv = RecvBatch::<SockaddrIn>::new();
    let mut send = SendBatch::<SockaddrIn>::default();
    let mut builder = PacketBuilder::new(Code::AccessAccept, 0);
    let vlan = cfg.vlan.to_string();
    let mut replies: Vec<Vec<u8>> = (0..net::BATCH).map(|_| Vec::with_capacity(128)).collect();
    let mut dests: Vec<Option<SockaddrIn>> = Vec::with_capacity(net::BATCH);
    loop {
        // Block until at least one datagram, then take whatever else is queued.
        let n = match recv.recv(&sock, MsgFlags::MSG_WAITFORONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        dests.clear();
        let mut used = 0;
        for k in 0..n {
            let (data, from, truncated) = recv.get(k);
            let answered = (|| {
                if truncated {
                    return None;
                }
                let req = Packet::decode(data).ok()?;
                if req.code() != Code::AccessRequest || !req.has_message_authenticator() {
                    return None;
                }
                verify_request(&req, &cfg.secret).ok()?;
                builder.reset(Code::AccessAccept, req.identifier());
                builder
                    .add_tagged_u32(dict::TUNNEL_TYPE, 0, dict::tunnel_type::VLAN)
                    .ok()?;
                builder
                    .add_tagged_u32(
                        dict::TUNNEL_MEDIUM_TYPE,
                        0,
                        dict::tunnel_medium_type::IEEE_802,
                    )
                    .ok()?;
                builder
                    .add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, &vlan)
                    .ok()?;
                builder.encode_response_into(&req, &cfg.secret, &mut replies[used]);
                Some(())
            })();
            // Anything else is dropped, as a server would.
            if let (Some(()), Some(from)) = (answered, from) {
                dests.push(Some(from));
                used += 1;
            }
        }
        if used > 0 {
            let pkts: Vec<&[u8]> = replies[..used].iter().map(Vec::as_slice).collect();
            send.send(&sock, &pkts, &dests);
        }
    }
}

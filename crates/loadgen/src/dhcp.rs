//! `ironfence-loadgen dhcp`: simulated DHCP clients (DISCOVER → OFFER → REQUEST → ACK) on one
//! interface, with a window of clients in flight, for the duplicate-address test and the
//! DORA/s benchmark.
//!
//! Each client i has the MAC `02:dc:<i as 4 octets>`; every OFFER and ACK received is kept,
//! including the second answer of a second server, and the run checks that no address was
//! acknowledged to two clients and that every client was acknowledged one address only.
//! Replies are read from 0.0.0.0:68 on the interface (the server broadcasts them).

use ironfence_dhcp::codec::{BOOTREQUEST, FLAG_BROADCAST, MAGIC_COOKIE};
use ironfence_dhcp::{Message, MessageType, Options};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    /// Interface to send and receive on (SO_BINDTODEVICE).
    pub interface: String,
    pub clients: u32,
    /// Clients in flight at once.
    pub concurrency: usize,
    /// First client index (several runs with distinct MACs).
    pub first: u32,
    /// Retransmission timeout and tries per step.
    pub timeout: Duration,
    pub tries: u32,
    /// Malformed datagrams to send first (each a different way of being wrong).
    pub malformed: u32,
    /// Destination port of requests (67) and port replies are read on (68).
    pub server_port: u16,
    pub client_port: u16,
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct DhcpReport {
    pub clients: u32,
    pub bound: u32,
    pub failed: u32,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub retransmits: u64,
    pub malformed_sent: u32,
    /// Addresses acknowledged to more than one client.
    pub duplicate_addresses: u32,
    /// Clients acknowledged more than one address.
    pub inconsistent_clients: u32,
    pub elapsed: Duration,
    /// (MAC, address) of every bound client.
    pub leases: Vec<(String, Ipv4Addr)>,
    /// Every (address, MAC) acknowledged, for diagnosing a duplicate.
    pub acked: Vec<(Ipv4Addr, String)>,
}

impl DhcpReport {
    pub fn dora_per_s(&self) -> f64 {
        f64::from(self.bound) / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One `key=value` line.
    pub fn line(&self) -> String {
        format!(
            "dhcp clients={} bound={} failed={} offers={} acks={} naks={} retransmits={} malformed_sent={} \
             duplicate_addresses={} inconsistent_clients={} elapsed_s={:.3} dora_per_s={:.1}",
            self.clients,
            self.bound,
            self.failed,
            self.offers,
            self.acks,
            self.naks,
            self.retransmits,
            self.malformed_sent,
            self.duplicate_addresses,
            self.inconsistent_clients,
            self.elapsed.as_secs_f64(),
            self.dora_per_s()
        )
    }
}

fn mac_of(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0xdc, b[0], b[1], b[2], b[3]]
}

fn mac_text(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn request(mac: [u8; 6], xid: u32, t: MessageType, options: Options) -> Message {
    let mut chaddr = [0; 16];
    chaddr[..6].copy_from_slice(&mac);
    Message {
        op: BOOTREQUEST,
        htype: 1,
        hlen: 6,
        hops: 0,
        xid,
        secs: 0,
        flags: FLAG_BROADCAST,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        chaddr,
        options: Options {
            message_type: Some(t),
            parameter_request_list: vec![1, 3, 6, 15, 51, 54, 114],
            ..options
        },
    }
}

/// Datagrams a server must drop (and count): too short, no cookie, not Ethernet, truncated
/// option, bad option length, no message type.
pub fn malformed(k: u32) -> Vec<u8> {
    let good = request(
        mac_of(0xffff_0000 | k),
        k,
        MessageType::Discover,
        Options::default(),
    )
    .encode();
    let mut b = good.clone();
    match k % 6 {
        0 => b.truncate(100),
        1 => b[236..240].copy_from_slice(&[1, 2, 3, 4]),
        2 => b[1] = 6,
        3 => {
            b.truncate(240);
            b.extend_from_slice(&[53, 1, 1, 61, 200, 1]);
        }
        4 => {
            b.truncate(240);
            b.extend_from_slice(&[53, 1, 1, 50, 2, 10, 0, 255]);
        }
        _ => {
            b.truncate(240);
            b.push(255);
        }
    }
    debug_assert_eq!(&good[236..240], &MAGIC_COOKIE);
    b
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Discover,
    Request { ip: Ipv4Addr, server: Ipv4Addr },
}

#[derive(Debug)]
struct Client {
    mac: [u8; 6],
    xid: u32,
    step: Step,
    sent_at: Instant,
    tries: u32,
}

fn bind(cfg: &DhcpConfig) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.bind_device(Some(cfg.interface.as_bytes()))?;
    sock.set_broadcast(true)?;
    sock.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.client_port)).into())?;
    let sock: UdpSocket = sock.into();
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    Ok(sock)
}

/// Runs the clients to completion (every one bound or out of tries).
pub fn run(cfg: &DhcpConfig) -> anyhow::Result<DhcpReport> {
    let sock = bind(cfg)?;
    let to = SocketAddr::from((Ipv4Addr::BROADCAST, cfg.server_port));
    let mut report = DhcpReport {
        clients: cfg.clients,
        ..DhcpReport::default()
    };
    for k in 0..cfg.malformed {
        sock.send_to(&malformed(k), to)?;
        report.malformed_sent += 1;
    }
    let start = Instant::now();
    let mut next = 0u32;
    let mut active: HashMap<u32, Client> = HashMap::new(); // by xid
    let mut acked_to: HashMap<Ipv4Addr, HashSet<[u8; 6]>> = HashMap::new();
    let mut acked_of: HashMap<[u8; 6], HashSet<Ipv4Addr>> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let send = |c: &Client| -> std::io::Result<()> {
        let m = match c.step {
            Step::Discover => request(c.mac, c.xid, MessageType::Discover, Options::default()),
            Step::Request { ip, server } => request(
                c.mac,
                c.xid,
                MessageType::Request,
                Options {
                    requested_ip: Some(ip),
                    server_id: Some(server),
                    ..Options::default()
                },
            ),
        };
        sock.send_to(&m.encode(), to).map(|_| ())
    };
    // A quiet period after the last client so that late second answers are counted.
    let mut quiet_until: Option<Instant> = None;
    loop {
        while active.len() < cfg.concurrency && next < cfg.clients {
            let i = cfg.first + next;
            next += 1;
            let c = Client {
                mac: mac_of(i),
                xid: i ^ 0x5a5a_0000,
                step: Step::Discover,
                sent_at: Instant::now(),
                tries: 1,
            };
            send(&c)?;
            active.insert(c.xid, c);
        }
        if active.is_empty() && next >= cfg.clients {
            let q = *quiet_until.get_or_insert_with(|| Instant::now() + Duration::from_millis(300));
            if Instant::now() >= q {
                break;
            }
        }
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let Ok(m) = Message::decode(&buf[..n]) else {
                    continue;
                };
                if m.op != 2 {
                    continue;
                }
                let mac: [u8; 6] = m.chaddr[..6].try_into().expect("6 octets");
                match m.message_type() {
                    Some(MessageType::Offer) => {
                        report.offers += 1;
                        if let Some(c) = active.get_mut(&m.xid)
                            && c.mac == mac
                            && matches!(c.step, Step::Discover)
                            && let Some(server) = m.options.server_id
                        {
                            c.step = Step::Request {
                                ip: m.yiaddr,
                                server,
                            };
                            c.sent_at = Instant::now();
                            c.tries = 1;
                            send(c)?;
                        }
                    }
                    Some(MessageType::Ack) => {
                        report.acks += 1;
                        acked_to.entry(m.yiaddr).or_default().insert(mac);
                        acked_of.entry(mac).or_default().insert(m.yiaddr);
                        if let Some(c) = active.get(&m.xid)
                            && c.mac == mac
                            && matches!(c.step, Step::Request { .. })
                        {
                            active.remove(&m.xid);
                            report.bound += 1;
                        }
                    }
                    Some(MessageType::Nak) => {
                        report.naks += 1;
                        if let Some(c) = active.get_mut(&m.xid)
                            && c.mac == mac
                        {
                            c.step = Step::Discover;
                            c.sent_at = Instant::now();
                            send(c)?;
                        }
                    }
                    _ => {}
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        let mut gave_up = Vec::new();
        for (xid, c) in active.iter_mut() {
            if now.duration_since(c.sent_at) >= cfg.timeout {
                if c.tries >= cfg.tries {
                    gave_up.push(*xid);
                    continue;
                }
                c.tries += 1;
                c.sent_at = now;
                report.retransmits += 1;
                send(c)?;
            }
        }
        for xid in gave_up {
            active.remove(&xid);
            report.failed += 1;
        }
    }
    report.elapsed = start.elapsed();
    report.duplicate_addresses = acked_to.values().filter(|m| m.len() > 1).count() as u32;
    report.inconsistent_clients = acked_of.values().filter(|a| a.len() > 1).count() as u32;
    let mut leases: Vec<_> = acked_of
        .iter()
        .filter(|(_, a)| a.len() == 1)
        .map(|(m, a)| (mac_text(m), *a.iter().next().expect("one")))
        .collect();
    leases.sort();
    report.leases = leases;
    let mut acked: Vec<_> = acked_to
        .iter()
        .flat_map(|(ip, macs)| macs.iter().map(move |m| (*ip, mac_text(m))))
        .collect();
    acked.sort();
    report.acked = acked;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_datagrams_are_refused_by_the_decoder() {
        for k in 0..6 {
            assert!(Message::decode(&malformed(k)).is_err(), "case {k}");
        }
    }
}

//! The lease engine: RFC 2131 §4.3 server decisions, pure, with `now` and the client's
//! current lease (its row in the shared database, read by the server) as inputs.
//!
//! ```text
//!  Message + now + current lease + writable? ──► Engine::plan ──► Plan
//!     Offer  { prefer, hold_until }   server claims prefer, then Candidates, one row each
//!     Ack    { ip, expires_at }       server claims ip as bound (NAK when someone else has it)
//!     Release / Decline               server updates the client's row
//!     Reply(message)                  NAK, INFORM's ACK, or a read-only answer: send as is
//!     Refused                         read-only and the client has no usable lease
//!     Ignore(reason)                  counted, never answered
//! ```
//!
//! **One answer from every server.** The server identifier is the network's service address
//! (the VIP in a cluster), the candidates are a function of the client, and the state is the
//! shared database, so two members that receive the same broadcast compute the same plan; the
//! database's keys decide which claim wins and the other member answers with the winner's row.
//!
//! **Reserved after expiry.** A bound lease that ended stays reserved for its holder for
//! [`NetworkSettings::reuse_grace`] (another client gets it only after that); an offer is held
//! for [`NetworkSettings::offer_hold`]. That reservation is also what makes the read-only
//! answers safe: a server that cannot write (out of the Galera quorum) renews a known device
//! only up to the end of that reservation, which every other server respects.

use crate::codec::{BOOTREPLY, BOOTREQUEST, FLAG_BROADCAST, Message, MessageType, Options, opt};
use ironfence_core::{Mac, UnixTime};
use std::net::{Ipv4Addr, SocketAddrV4};

/// One network's DHCP settings (from networks.conf and the served interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// The network's address as written in networks.conf (`192.168.2.0`): the lease rows' key.
    pub network: String,
    pub network_addr: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub pool_first: Ipv4Addr,
    pub pool_last: Ipv4Addr,
    /// Addresses of the pool never handed out (the servers' own addresses, the VIP, the
    /// router, the DNS servers).
    pub reserved: Vec<Ipv4Addr>,
    /// Server identifier (option 54): the network's service address (VIP in a cluster).
    pub server_id: Ipv4Addr,
    pub routers: Vec<Ipv4Addr>,
    pub dns_servers: Vec<Ipv4Addr>,
    pub domain_name: Option<String>,
    /// Seconds (`dhcp_default_lease_time`).
    pub default_lease: u32,
    /// Seconds (`dhcp_max_lease_time`): a client asking for more gets this.
    pub max_lease: u32,
    /// How long an offer reserves its address for the client (seconds).
    pub offer_hold: u32,
    /// How long a declined address is kept out of the pool (seconds).
    pub decline_hold: u32,
    /// How long a bound lease that ended stays reserved for its holder (seconds).
    pub reuse_grace: u32,
    /// RFC 8910 option 114 (sent to clients that ask for it in option 55).
    pub captive_portal: Option<String>,
}

impl NetworkSettings {
    pub fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        let m = u32::from(self.netmask);
        u32::from(ip) & m == u32::from(self.network_addr) & m
    }

    /// Inside `[pool_first, pool_last]` and not reserved.
    pub fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.pool_first..=self.pool_last).contains(&ip) && !self.reserved.contains(&ip)
    }

    /// Seconds a row in `state` stays reserved for its holder after `expires_at` (the store
    /// gives it to another client only after `expires_at + grace`; see the module docs).
    pub fn grace_for(&self, state: LeaseState) -> i64 {
        match state {
            LeaseState::Bound => i64::from(self.reuse_grace),
            _ => 0,
        }
    }
}

/// State of a lease row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Offered, not yet requested: held until `expires_at`.
    Offered,
    /// Acknowledged: the client uses it until `expires_at` (+ the reuse grace).
    Bound,
    /// Released by the client: free for others, kept for the same client.
    Released,
    /// Declined (in use by someone not known to us): out of the pool until `expires_at`.
    Declined,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Offered => "offered",
            LeaseState::Bound => "bound",
            LeaseState::Released => "released",
            LeaseState::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<LeaseState> {
        Some(match s {
            "offered" => LeaseState::Offered,
            "bound" => LeaseState::Bound,
            "released" => LeaseState::Released,
            "declined" => LeaseState::Declined,
            _ => return None,
        })
    }
}

/// A client's lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// `None` for a declined address (held by no client).
    pub mac: Option<Mac>,
    pub state: LeaseState,
    pub expires_at: UnixTime,
}

/// Which RFC 2131 §4.3.2 case a DHCPREQUEST is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Selecting,
    InitReboot,
    /// RENEWING (unicast) or REBINDING (broadcast): same rules here.
    Renewing,
}

/// Why a message gets no answer (each a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// op is not BOOTREQUEST.
    NotRequest,
    /// A server-to-client type (OFFER, ACK, NAK) received by the server.
    UnexpectedType,
    /// SELECTING / DECLINE / RELEASE for another server.
    OtherServer,
    /// Relayed from a network other than this one.
    OtherNetwork,
    /// A REQUEST or DECLINE without the address it is about.
    MissingAddress,
    /// INIT-REBOOT of a client we have no record of (RFC 2131 §4.3.2: remain silent).
    NoRecord,
    /// RELEASE / DECLINE while the database is read-only (nothing to answer anyway).
    ReadOnly,
}

impl Ignored {
    pub fn reason(self) -> &'static str {
        match self {
            Ignored::NotRequest => "not_request",
            Ignored::UnexpectedType => "unexpected_type",
            Ignored::OtherServer => "other_server",
            Ignored::OtherNetwork => "other_network",
            Ignored::MissingAddress => "missing_address",
            Ignored::NoRecord => "no_record",
            Ignored::ReadOnly => "read_only",
        }
    }
}

/// What the server must do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Ignore(Ignored),
    /// Send this reply as is (NAK, INFORM's ACK, read-only answers from the current lease).
    Reply(Box<Message>),
    /// Claim an address as `Offered` until `hold_until` — `prefer` first (the client's current
    /// or requested address), then the client's [`crate::Candidates`] — and offer it for
    /// `lease` seconds ([`Engine::offer`]).
    Offer {
        prefer: Option<Ipv4Addr>,
        hold_until: UnixTime,
        lease: u32,
    },
    /// Claim `ip` as `Bound` until `expires_at` and answer [`Engine::ack`]; if another client
    /// holds it, answer [`Engine::nak`].
    Ack {
        ip: Ipv4Addr,
        expires_at: UnixTime,
        lease: u32,
    },
    /// Mark the client's lease of `ip` released.
    Release {
        ip: Ipv4Addr,
    },
    /// Take `ip` out of the pool until `until` (if it is the client's).
    Decline {
        ip: Ipv4Addr,
        until: UnixTime,
    },
    /// Read-only and the client has no usable lease: no new allocation (the server logs it).
    Refused,
}

/// The engine of one network.
#[derive(Debug, Clone)]
pub struct Engine {
    pub net: NetworkSettings,
}

impl Engine {
    pub fn new(net: NetworkSettings) -> Engine {
        Engine { net }
    }

    /// The lease time granted: the client's wish (option 51) capped at the maximum, else the
    /// default (RFC 2131 §4.3.1).
    fn lease_for(&self, req: &Message) -> u32 {
        let max = self.net.max_lease.max(1);
        req.options
            .lease_time
            .map_or(self.net.default_lease, |t| t.clamp(1, max))
            .min(max)
    }

    /// The client's own row, if `current` is one (the store reads by MAC; a row without a MAC
    /// is never a client's).
    fn own<'a>(&self, req: &Message, current: Option<&'a Lease>) -> Option<&'a Lease> {
        current.filter(|l| l.mac == Some(req.mac()) && self.net.in_subnet(l.ip))
    }

    /// Seconds a server that cannot write may still give the client on its current lease:
    /// until the end of the reservation other servers respect (0 = none).
    fn read_only_remaining(&self, lease: &Lease, now: UnixTime) -> u32 {
        let end = match lease.state {
            LeaseState::Bound => lease.expires_at + self.net.grace_for(LeaseState::Bound),
            LeaseState::Offered => lease.expires_at,
            LeaseState::Released | LeaseState::Declined => return 0,
        };
        u32::try_from((end - now).max(0)).unwrap_or(u32::MAX)
    }

    /// The decision for one message. `writable`: whether the database takes writes now.
    pub fn plan(
        &self,
        now: UnixTime,
        req: &Message,
        current: Option<&Lease>,
        writable: bool,
    ) -> Plan {
        if req.op != BOOTREQUEST {
            return Plan::Ignore(Ignored::NotRequest);
        }
        if !req.giaddr.is_unspecified() && !self.net.in_subnet(req.giaddr) {
            return Plan::Ignore(Ignored::OtherNetwork);
        }
        let own = self.own(req, current);
        let Some(kind) = req.message_type() else {
            return Plan::Ignore(Ignored::UnexpectedType);
        };
        let ours = |sid: Option<Ipv4Addr>| sid == Some(self.net.server_id);
        match kind {
            MessageType::Discover => {
                let lease = self.lease_for(req);
                if !writable {
                    return match own.map(|l| (l, self.read_only_remaining(l, now))) {
                        Some((l, rem)) if rem > 0 && self.net.in_pool(l.ip) => {
                            Plan::Reply(Box::new(self.offer(req, l.ip, lease.min(rem))))
                        }
                        _ => Plan::Refused,
                    };
                }
                let prefer = own
                    .map(|l| l.ip)
                    .or(req.options.requested_ip)
                    .filter(|ip| self.net.in_pool(*ip));
                Plan::Offer {
                    prefer,
                    hold_until: now + i64::from(self.net.offer_hold),
                    lease,
                }
            }
            MessageType::Request => self.plan_request(now, req, own, writable),
            MessageType::Decline => {
                if !ours(req.options.server_id) {
                    return Plan::Ignore(Ignored::OtherServer);
                }
                let Some(ip) = req.options.requested_ip else {
                    return Plan::Ignore(Ignored::MissingAddress);
                };
                if !writable {
                    return Plan::Ignore(Ignored::ReadOnly);
                }
                Plan::Decline {
                    ip,
                    until: now + i64::from(self.net.decline_hold),
                }
            }
            MessageType::Release => {
                // RFC 2131 §4.4.6: the server identifier is present in a RELEASE.
                if !ours(req.options.server_id) {
                    return Plan::Ignore(Ignored::OtherServer);
                }
                if req.ciaddr.is_unspecified() {
                    return Plan::Ignore(Ignored::MissingAddress);
                }
                if !writable {
                    return Plan::Ignore(Ignored::ReadOnly);
                }
                Plan::Release { ip: req.ciaddr }
            }
            MessageType::Inform => {
                if req.ciaddr.is_unspecified() {
                    return Plan::Ignore(Ignored::MissingAddress);
                }
                Plan::Reply(Box::new(self.inform_ack(req)))
            }
            MessageType::Offer | MessageType::Ack | MessageType::Nak => {
                Plan::Ignore(Ignored::UnexpectedType)
            }
        }
    }

    /// The REQUEST kind (RFC 2131 §4.3.2, table 4).
    pub fn request_kind(req: &Message) -> RequestKind {
        if req.options.server_id.is_some() {
            RequestKind::Selecting
        } else if req.ciaddr.is_unspecified() {
            RequestKind::InitReboot
        } else {
            RequestKind::Renewing
        }
    }

    fn plan_request(
        &self,
        now: UnixTime,
        req: &Message,
        own: Option<&Lease>,
        writable: bool,
    ) -> Plan {
        let lease = self.lease_for(req);
        let (ip, may_claim_unknown) = match Self::request_kind(req) {
            RequestKind::Selecting => {
                if req.options.server_id != Some(self.net.server_id) {
                    // The client chose another server; our offer lapses after its hold.
                    return Plan::Ignore(Ignored::OtherServer);
                }
                let Some(ip) = req.options.requested_ip else {
                    return Plan::Ignore(Ignored::MissingAddress);
                };
                // Our offer may not have reached this server's replica yet: claiming is safe
                // (the keys refuse an address another client holds).
                (ip, true)
            }
            RequestKind::InitReboot => {
                let Some(ip) = req.options.requested_ip else {
                    return Plan::Ignore(Ignored::MissingAddress);
                };
                if !self.net.in_subnet(ip) {
                    return Plan::Reply(Box::new(
                        self.nak(req, "requested address is not on this network"),
                    ));
                }
                if own.is_none() {
                    return Plan::Ignore(Ignored::NoRecord);
                }
                (ip, false)
            }
            RequestKind::Renewing => {
                let ip = req.ciaddr;
                if !self.net.in_subnet(ip) {
                    return Plan::Reply(Box::new(self.nak(req, "address is not on this network")));
                }
                // A renewal the database has no record of (a lost lease, PacketFence #1667):
                // the address is re-claimed for the client if nobody else holds it.
                (ip, true)
            }
        };
        if !self.net.in_pool(ip) {
            return Plan::Reply(Box::new(
                self.nak(req, "address is not in this network's pool"),
            ));
        }
        match own {
            Some(l) if l.ip != ip => {
                Plan::Reply(Box::new(self.nak(req, "not the address of your lease")))
            }
            Some(l) if !writable => match self.read_only_remaining(l, now) {
                0 => Plan::Refused,
                rem => Plan::Reply(Box::new(self.ack(req, ip, lease.min(rem)))),
            },
            None if !may_claim_unknown => Plan::Ignore(Ignored::NoRecord),
            None if !writable => Plan::Refused,
            _ => Plan::Ack {
                ip,
                expires_at: now + i64::from(lease),
                lease,
            },
        }
    }

    fn reply_base(&self, req: &Message, kind: MessageType) -> Message {
        Message {
            op: BOOTREPLY,
            htype: req.htype,
            hlen: req.hlen,
            hops: 0,
            xid: req.xid,
            secs: 0,
            flags: req.flags,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            options: Options {
                message_type: Some(kind),
                server_id: Some(self.net.server_id),
                relay_agent: req.options.relay_agent.clone(),
                ..Options::default()
            },
        }
    }

    /// The network's configuration options (mask, router, DNS, domain, option 114 if asked).
    fn configure(&self, req: &Message, o: &mut Options) {
        o.subnet_mask = Some(self.net.netmask);
        o.routers = self.net.routers.clone();
        o.dns_servers = self.net.dns_servers.clone();
        o.domain_name = self.net.domain_name.as_ref().map(|d| d.as_bytes().to_vec());
        // RFC 8910 §2: sent to clients that request it (sending it unasked upset some iOS
        // releases' portal detection, PacketFence #7478).
        if req
            .options
            .parameter_request_list
            .contains(&opt::CAPTIVE_PORTAL)
        {
            o.captive_portal = self
                .net
                .captive_portal
                .as_ref()
                .map(|u| u.as_bytes().to_vec());
        }
    }

    fn with_lease(&self, req: &Message, kind: MessageType, ip: Ipv4Addr, lease: u32) -> Message {
        let mut m = self.reply_base(req, kind);
        m.yiaddr = ip;
        if kind == MessageType::Ack {
            m.ciaddr = req.ciaddr;
        }
        m.options.lease_time = Some(lease);
        // RFC 2131 §4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
        m.options.renewal_time = Some(lease / 2);
        m.options.rebinding_time = Some((u64::from(lease) * 7 / 8) as u32);
        self.configure(req, &mut m.options);
        m
    }

    /// DHCPOFFER of `ip` for `lease` seconds.
    pub fn offer(&self, req: &Message, ip: Ipv4Addr, lease: u32) -> Message {
        self.with_lease(req, MessageType::Offer, ip, lease)
    }

    /// DHCPACK of `ip` for `lease` seconds.
    pub fn ack(&self, req: &Message, ip: Ipv4Addr, lease: u32) -> Message {
        self.with_lease(req, MessageType::Ack, ip, lease)
    }

    /// DHCPNAK with a reason (option 56). RFC 2131 §4.3.2: a NAK is broadcast when not relayed.
    pub fn nak(&self, req: &Message, why: &str) -> Message {
        let mut m = self.reply_base(req, MessageType::Nak);
        m.flags |= FLAG_BROADCAST;
        m.options.message = Some(why.as_bytes().to_vec());
        m
    }

    /// DHCPACK to a DHCPINFORM: configuration only, no address, no lease time (§4.3.5).
    pub fn inform_ack(&self, req: &Message) -> Message {
        let mut m = self.reply_base(req, MessageType::Ack);
        m.ciaddr = req.ciaddr;
        self.configure(req, &mut m.options);
        m
    }
}

/// Where a reply goes (RFC 2131 §4.1, "If the 'giaddr' field ..." paragraph).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent, server port 67.
    Relay(SocketAddrV4),
    /// Unicast to the client's address, client port 68.
    Unicast(SocketAddrV4),
    /// 255.255.255.255:68 on the interface.
    Broadcast,
}

/// The destination of `reply` to `req`. A client without an address that did not ask for a
/// broadcast would need a unicast to `yiaddr` with an ARP entry we cannot add from a UDP
/// socket: it gets a broadcast, which every client accepts.
pub fn destination(req: &Message, reply: &Message) -> Destination {
    if !req.giaddr.is_unspecified() {
        return Destination::Relay(SocketAddrV4::new(req.giaddr, 67));
    }
    if reply.message_type() == Some(MessageType::Nak) {
        return Destination::Broadcast;
    }
    if !req.ciaddr.is_unspecified() && !req.broadcast_flag() {
        return Destination::Unicast(SocketAddrV4::new(req.ciaddr, 68));
    }
    Destination::Broadcast
}

#[cfg(test)]
mod tests;

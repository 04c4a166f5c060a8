//! The networks this server serves itself: the registration and isolation networks of a VLAN
//! enforcement deployment (pf.conf `[interface X]` with `type` containing `internal` and
//! `enforcement = vlan`, the clustering guide's eth1.2 / eth1.3). DHCP, DNS and the captive
//! portal listen on each of them; in a cluster, on this server's own address and on the
//! interface's VIP (`[CLUSTER interface X] ip`), and the VIP is what devices are told to use
//! (router, DNS server, portal address), so losing a server loses nothing on those networks.

use crate::{Config, InterfaceType};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// One registration/isolation network as this server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedInterface {
    /// The interface name (`eth1.2`): listeners bind to this device.
    pub name: String,
    /// This server's own address on it (pf.conf or `[<host> interface X] ip`).
    pub ip: Ipv4Addr,
    /// The network (`ip`/`mask`).
    pub network: Ipv4Net,
    /// The cluster's VIP on it (`[CLUSTER interface X] ip`); `None` on a single server.
    pub vip: Option<Ipv4Addr>,
}

impl ServedInterface {
    /// The address devices are given for the router, the DNS server and the portal: the VIP
    /// in a cluster (it moves to a surviving server), else this server's address.
    pub fn service_ip(&self) -> Ipv4Addr {
        self.vip.unwrap_or(self.ip)
    }

    /// The addresses this server's listeners bind on this network: its own, then the VIP.
    pub fn listen_ips(&self) -> Vec<Ipv4Addr> {
        let mut v = vec![self.ip];
        if let Some(vip) = self.vip.filter(|v| *v != self.ip) {
            v.push(vip);
        }
        v
    }
}

impl Config {
    /// This server's registration/isolation networks, in interface order. Interfaces without
    /// an address or mask are skipped (checkup already reports them).
    pub fn served_interfaces(&self) -> Vec<ServedInterface> {
        self.interfaces()
            .into_iter()
            .filter(|i| {
                i.types.contains(&InterfaceType::Internal)
                    && i.enforcement.as_deref().is_none_or(|e| e == "vlan")
            })
            .filter_map(|i| {
                let (ip, mask) = (i.ip?, i.mask?);
                let prefix = u32::from(mask).leading_ones() as u8;
                let network = Ipv4Net::new(ip, prefix).ok()?;
                let vip = self
                    .cluster
                    .as_ref()
                    .and_then(|c| c.virtual_interface(&i.name))
                    .and_then(|v| v.ip);
                Some(ServedInterface {
                    name: i.name,
                    ip,
                    network,
                    vip,
                })
            })
            .collect()
    }
}

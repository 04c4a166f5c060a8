//! Which virtual IPs this server competes for, with whom and at what priority.
//!
//! - One VRRP instance per `[CLUSTER interface X]`, in file order (k = 0, 1, …): interface X,
//!   `virtual_router_id` = `[active_active] virtual_router_id` + k (distinct per interface, so
//!   two interfaces on one layer-2 segment never mix their adverts), the VIP of
//!   `[CLUSTER interface X] ip` with this server's mask on X.
//! - The management VIP (`[CLUSTER] management_ip`) belongs to the instance of the management
//!   interface (added there when it is not that interface's `ip` already).
//! - Priority = 200 − step × cluster.conf index ([`priority`]; step 10 up to 10 servers, 1
//!   beyond, up to 99): the first server (the management server) is the preferred holder, and
//!   takes the VIPs back when it is ready again (preemption). The step of 10 matters: backups
//!   that saw the master go wait 3 adverts plus a skew of (256 − priority)/256 adverts, so
//!   priorities 10 apart make the next server claim the VIP ~8 ms (at 0.2 s adverts) before
//!   the one after it, whose timer its advert then resets; 1 apart (0.8 ms) let both claim it.
//! - Unicast to the other *enabled* members' addresses on X (members this server disabled are
//!   left out); `unicast_src_ip` = this server's address on X.
//! - A server in maintenance runs no keepalived at all: [`plan`] returns an empty plan.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ironfence_config::{Config, InterfaceConf, InterfaceType};

/// Priority of the first server.
pub const BASE_PRIORITY: u8 = 200;
/// The most servers priorities can keep apart (ready ones above 100, unready ones below).
pub const MAX_SERVERS: usize = 99;

/// The VRRP priority of the server at `index` in a cluster of `servers`: `200 − step·index`,
/// step 10 for up to 10 servers, else 1. Ready priorities stay above 100, so that the
/// readiness weight of −100 ([`crate::keepalived::UNREADY_WEIGHT`]) puts every unready server
/// below every ready one while keeping their order.
pub fn priority(index: usize, servers: usize) -> u8 {
    let step = if servers <= 10 { 10 } else { 1 };
    let index = index.min(MAX_SERVERS - 1);
    BASE_PRIORITY.saturating_sub((step * index).min(98) as u8)
}

/// What the plan needs beyond the synchronized configuration: this server's local cluster
/// state and where its runtime files live.
#[derive(Debug, Clone, Copy)]
pub struct Local<'a> {
    /// Peers this server has disabled (`cluster node NAME disable`).
    pub disabled_peers: &'a BTreeSet<String>,
    /// This server is in maintenance: it holds no VIP.
    pub maintenance: bool,
    /// `<state_dir>/run`.
    pub run_dir: &'a Path,
}

/// The runtime files of keepalived and haproxy under `<state_dir>/run/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn new(dir: &Path) -> RunFiles {
        RunFiles {
            dir: dir.to_path_buf(),
        }
    }
    pub fn keepalived_conf(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }
    pub fn keepalived_pid(&self) -> PathBuf {
        self.dir.join("keepalived.pid")
    }
    pub fn vrrp_pid(&self) -> PathBuf {
        self.dir.join("keepalived-vrrp.pid")
    }
    /// keepalived writes `INSTANCE "name" STATE prio` lines here.
    pub fn notify_fifo(&self) -> PathBuf {
        self.dir.join("keepalived.fifo")
    }
    /// The readiness track file (0 ready, 1 not ready).
    pub fn track_file(&self) -> PathBuf {
        self.dir.join("ready.track")
    }
    pub fn haproxy_cfg(&self) -> PathBuf {
        self.dir.join("haproxy.cfg")
    }
    pub fn haproxy_pid(&self) -> PathBuf {
        self.dir.join("haproxy.pid")
    }
}

/// A virtual IP with its prefix length, placed on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vip {
    pub ip: Ipv4Addr,
    pub prefix: u8,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// One VRRP instance: one `[CLUSTER interface X]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// keepalived's instance name (`ironfence_<interface>`), as the notify FIFO reports it.
    pub name: String,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    /// This server's own address on the interface.
    pub src_ip: Ipv4Addr,
    /// The other enabled members' addresses on the interface, in cluster.conf order.
    pub peers: Vec<Ipv4Addr>,
    /// The interface's VIP first, then the management VIP if it is a different address.
    pub vips: Vec<Vip>,
    /// `type=` of `[CLUSTER interface X]` (overlaid on pf.conf's): portal/internal VIPs get
    /// the portal in haproxy.
    pub types: Vec<InterfaceType>,
}

impl Instance {
    pub fn has_type(&self, t: InterfaceType) -> bool {
        self.types.contains(&t)
    }
}

/// Everything this server's keepalived competes for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VipPlan {
    /// This server's name and cluster.conf index.
    pub me: String,
    pub index: usize,
    pub instances: Vec<Instance>,
    /// `[CLUSTER] management_ip`.
    pub management_vip: Option<Ipv4Addr>,
}

impl VipPlan {
    /// Whether keepalived has anything to do (false in maintenance or without
    /// `[CLUSTER interface X]`).
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The instance that carries the management VIP.
    pub fn management_instance(&self) -> Option<&Instance> {
        let vip = self.management_vip?;
        self.instances
            .iter()
            .find(|i| i.vips.iter().any(|v| v.ip == vip))
    }
}

/// Why no plan can be made (the configuration is incomplete for VIPs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    NotACluster,
    NotAMember(String),
    NoAddress { server: String, interface: String },
    NoVip { interface: String },
    NoMask { interface: String },
    RouterIdOverflow { base: u8, instances: usize },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NotACluster => f.write_str("cluster.conf defines no cluster"),
            PlanError::NotAMember(me) => write!(f, "this server {me:?} is not in cluster.conf"),
            PlanError::NoAddress { server, interface } => write!(
                f,
                "{server} has no address on {interface}: set ip= in [{server} interface {interface}]"
            ),
            PlanError::NoVip { interface } => {
                write!(f, "[CLUSTER interface {interface}] has no ip=")
            }
            PlanError::NoMask { interface } => write!(
                f,
                "no mask for {interface}: set mask= in this server's [<hostname> interface {interface}]"
            ),
            PlanError::RouterIdOverflow { base, instances } => write!(
                f,
                "virtual_router_id {base} + {instances} interfaces goes beyond 255"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

fn effective(config: &Config, server: &ironfence_config::ClusterServer) -> Vec<InterfaceConf> {
    let mut out = config.pf.interfaces.clone();
    for o in &server.interfaces {
        match out.iter_mut().find(|i| i.name == o.name) {
            Some(i) => i.overlay(o),
            None => out.push(o.clone()),
        }
    }
    out
}

/// The VIP plan of this server (see the module docs). Pure.
pub fn plan(config: &Config, local: &Local<'_>) -> Result<VipPlan, PlanError> {
    let cluster = config.cluster.as_ref().ok_or(PlanError::NotACluster)?;
    let me = config
        .this_server()
        .ok_or_else(|| PlanError::NotAMember(config.identity.clone()))?;
    let mut plan = VipPlan {
        me: me.name.clone(),
        index: me.index,
        instances: Vec::new(),
        management_vip: cluster.management_ip,
    };
    if local.maintenance {
        return Ok(plan);
    }
    let base = config.pf.active_active.virtual_router_id;
    let count = cluster.virtual_interfaces.len();
    if count > 0 && usize::from(base) + count - 1 > 255 {
        return Err(PlanError::RouterIdOverflow {
            base,
            instances: count,
        });
    }
    let mine = effective(config, me);
    let cluster_ifs = {
        let mut out = config.pf.interfaces.clone();
        for o in &cluster.virtual_interfaces {
            match out.iter_mut().find(|i| i.name == o.name) {
                Some(i) => i.overlay(o),
                None => out.push(o.clone()),
            }
        }
        out
    };
    let mut management_placed = false;
    for (k, vi) in cluster.virtual_interfaces.iter().enumerate() {
        let name = vi.name.clone();
        let ifc = mine.iter().find(|i| i.name == name);
        let src_ip = ifc.and_then(|i| i.ip).ok_or_else(|| PlanError::NoAddress {
            server: me.name.clone(),
            interface: name.clone(),
        })?;
        let vip_ip = vi.ip.ok_or_else(|| PlanError::NoVip {
            interface: name.clone(),
        })?;
        let mask = ifc
            .and_then(|i| i.mask)
            .or(vi.mask)
            .ok_or_else(|| PlanError::NoMask {
                interface: name.clone(),
            })?;
        let prefix = u32::from(mask).leading_ones() as u8;
        let types = cluster_ifs
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.types.clone())
            .unwrap_or_default();
        let mut peers = Vec::new();
        for s in &cluster.servers {
            if s.index == me.index || local.disabled_peers.contains(&s.name) {
                continue;
            }
            let ip = effective(config, s)
                .iter()
                .find(|i| i.name == name)
                .and_then(|i| i.ip)
                .ok_or_else(|| PlanError::NoAddress {
                    server: s.name.clone(),
                    interface: name.clone(),
                })?;
            peers.push(ip);
        }
        let mut vips = vec![Vip { ip: vip_ip, prefix }];
        if let Some(m) = cluster.management_ip {
            if m == vip_ip {
                management_placed = true;
            } else if !management_placed && types.contains(&InterfaceType::Management) {
                vips.push(Vip { ip: m, prefix });
                management_placed = true;
            }
        }
        plan.instances.push(Instance {
            name: format!("ironfence_{name}"),
            interface: name,
            virtual_router_id: base + k as u8,
            priority: priority(me.index, cluster.servers.len()),
            src_ip,
            peers,
            vips,
            types,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::priority;

    #[test]
    fn ready_priorities_stay_above_every_unready_one_in_order() {
        for n in 1..=99 {
            let ready: Vec<i32> = (0..n).map(|i| i32::from(priority(i, n))).collect();
            assert!(ready.windows(2).all(|w| w[0] > w[1]), "{n}: {ready:?}");
            let unready: Vec<i32> = ready
                .iter()
                .map(|p| p + crate::keepalived::UNREADY_WEIGHT)
                .collect();
            assert!(unready[0] < *ready.last().unwrap(), "{n}");
            assert!(*unready.last().unwrap() >= 1 && ready[0] <= 254, "{n}");
        }
        assert_eq!(
            (priority(0, 3), priority(1, 3), priority(2, 3)),
            (200, 190, 180)
        );
        assert_eq!((priority(0, 11), priority(10, 11)), (200, 190));
    }
}

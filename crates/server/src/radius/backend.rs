//! The load balancer's backend port (cluster members only): where the member that received a
//! switch's request on a VIP forwards it.
//!
//! * Clients are the cluster members' management IPs (never switches.conf), all with the hop
//!   secret (`Config::radius_hop_secret`), Message-Authenticator required.
//! * The request must carry one Ironfence-Hop attribute naming a switch of switches.conf;
//!   otherwise it is dropped and counted (`hop_missing`, `hop_malformed`,
//!   `hop_unknown_switch`).
//! * It is then handled by the same Mab / Accounting handlers with *that switch's* settings
//!   (VLAN mapping per switch), audited under the front server's request id, and the answer is
//!   signed with the hop secret (the front server re-signs it for the switch).
//! * Status-Server is answered by the endpoint with an Ironfence-Hop attribute whose flags say
//!   whether this server is in maintenance (draining) or read-only, so the front servers learn
//!   it from their probes.

use super::SwitchRef;
use super::balancer::LocalFacts;
use ironfence_config::Config;
use ironfence_radius::hop::{Hop, HopFlags, IRONFENCE_HOP};
use ironfence_radius::{
    Action, CacheKey, ClientPolicy, ClientTable, RequestId, RequireMessageAuthenticator,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A cluster member (the sender of a hop request), with the hop secret it signs with.
#[derive(Clone)]
pub(crate) struct MemberRef(Arc<[u8]>);

impl std::fmt::Debug for MemberRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberRef(<hop secret>)")
    }
}

/// The members as the backend endpoint's client table.
pub(crate) struct Members<'a> {
    pub config: &'a Arc<Config>,
    pub hop_secret: &'a Arc<[u8]>,
    pub local: &'a LocalFacts,
    pub read_only: bool,
}

impl ClientTable for Members<'_> {
    type Client = MemberRef;

    fn lookup(&self, ip: IpAddr) -> Option<MemberRef> {
        let IpAddr::V4(v4) = ip else {
            return None;
        };
        let cluster = self.config.cluster.as_ref()?;
        cluster
            .servers
            .iter()
            .any(|s| s.management_ip == Some(v4))
            .then(|| MemberRef(self.hop_secret.clone()))
    }

    fn policy<'c>(&self, client: &'c MemberRef) -> ClientPolicy<'c> {
        ClientPolicy {
            secret: &client.0,
            require_message_authenticator: RequireMessageAuthenticator::Yes,
            limit_proxy_state: false,
        }
    }

    fn status_attribute(&self) -> Option<(u8, Vec<u8>)> {
        let h = Hop {
            flags: HopFlags::new(
                self.local.maintenance.load(Ordering::Relaxed),
                self.read_only,
            ),
            request_id: 0,
            client: None,
        };
        Some((IRONFENCE_HOP, h.encode()))
    }
}

/// Maps an authentic hop request to the switch it names, or the reason to drop it.
pub(crate) fn to_switch(
    action: Action<MemberRef>,
    config: &Arc<Config>,
) -> Result<Action<SwitchRef>, (CacheKey, &'static str)> {
    match action {
        Action::Drop(r) => Ok(Action::Drop(r)),
        Action::Reply(b, why) => Ok(Action::Reply(b, why)),
        Action::Request(req) => {
            let hop = match Hop::find(&req.packet()) {
                Ok(h) => h,
                Err(e) => return Err((req.key(), e.label())),
            };
            let Some(index) = hop.client.and_then(|ip| config.switches.lookup_index(ip)) else {
                return Err((req.key(), "hop_unknown_switch"));
            };
            let switch = SwitchRef {
                config: config.clone(),
                index,
            };
            Ok(Action::Request(
                req.with_client(switch, RequestId(hop.request_id)),
            ))
        }
    }
}

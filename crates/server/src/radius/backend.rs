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

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_radius::hop::{HopFlags, forward_request};
    use ironfence_radius::{
        Code, DropReason, Endpoint, EndpointConfig, Packet, PacketBuilder, Replied, Service, dict,
    };
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    const SWITCH_SECRET: &str = "Zq8vRr2NwX4kTb7mYp3sLd9c-switch";

    fn config() -> (tempfile::TempDir, Arc<Config>) {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        let files = [
            (
                "cluster.conf",
                "[CLUSTER]\nmanagement_ip = 127.0.0.100\n[pf1]\nmanagement_ip = 127.0.0.1\n[pf2]\nmanagement_ip = 127.0.0.2\n".to_string(),
            ),
            (
                "pf.conf",
                "[database]\ntype = mysql\nhost = 127.0.0.1\npass = Xk3nP9vQ2mLr7TzW4yBs8D\n[webservices]\nuser = u\npass = Zq8vRr2NwX4kTb7mYp3sLd9c\n[active_active]\ngalera_replication_username = sst\ngalera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC\npassword = Vr9Lq2Xz\n".to_string(),
            ),
            (
                "switches.conf",
                format!("[10.0.0.1]\nradiusSecret = {SWITCH_SECRET}\nregistrationVlan = 2\n"),
            ),
        ];
        for (name, text) in files {
            std::fs::write(conf.join(name), text).unwrap();
        }
        let c = Config::load_as(&conf, Some("pf1")).unwrap_or_else(|d| panic!("{d}"));
        (dir, Arc::new(c))
    }

    fn endpoint() -> Endpoint {
        let cfg = EndpointConfig {
            reply_cache_ttl: Duration::from_secs(5),
            reply_cache_entries: 64,
            max_learned_clients: 64,
        };
        Endpoint::new(Service::Auth, cfg, 1)
    }

    fn request(client: Option<Ipv4Addr>, with_hop: bool, secret: &[u8], id: u8) -> Vec<u8> {
        let mut b = PacketBuilder::new(Code::AccessRequest, id);
        b.add_str(dict::USER_NAME, "aabbccddeeff").unwrap();
        let sw = b.encode_request([id; 16], SWITCH_SECRET.as_bytes(), true);
        let p = Packet::decode(&sw).unwrap();
        if !with_hop {
            return b.encode_request([id; 16], secret, true);
        }
        let h = Hop {
            flags: HopFlags::default(),
            request_id: 0xfeed,
            client: client.map(IpAddr::V4),
        };
        forward_request(&p, SWITCH_SECRET.as_bytes(), secret, id, [id; 16], &h).unwrap()
    }

    #[test]
    fn hop_requests_are_accepted_from_members_naming_a_known_switch_only() {
        let (_dir, config) = config();
        let hop = Arc::<[u8]>::from(config.radius_hop_secret().unwrap().into_bytes());
        let local = LocalFacts::default();
        let members = Members {
            config: &config,
            hop_secret: &hop,
            local: &local,
            read_only: false,
        };
        let mut ep = endpoint();
        let now = Instant::now();
        let from = |ip: [u8; 4]| SocketAddr::from((ip, 40000));
        let switch = Some(Ipv4Addr::new(10, 0, 0, 1));
        let mut handle =
            |src, bytes: &[u8]| to_switch(ep.handle(&members, now, src, None, bytes), &config);

        // A member, the hop secret, a switch of switches.conf: the request, as that switch's,
        // under the front server's request id.
        match handle(from([127, 0, 0, 2]), &request(switch, true, &hop, 1)) {
            Ok(Action::Request(r)) => {
                assert_eq!(r.client.settings().id, "10.0.0.1");
                assert_eq!(r.id, RequestId(0xfeed));
            }
            other => panic!("{other:?}"),
        }
        // Not a member (a switch sending to the backend port): dropped.
        assert!(matches!(
            handle(from([10, 0, 0, 1]), &request(switch, true, &hop, 2)),
            Ok(Action::Drop(DropReason::UnknownClient))
        ));
        // A member, but not signed with the hop secret.
        assert!(matches!(
            handle(from([127, 0, 0, 2]), &request(switch, true, b"wrong", 3)),
            Ok(Action::Drop(DropReason::Unauthentic(_)))
        ));
        // No hop attribute, a hop naming no switch, a hop naming an unknown switch.
        let reason = |r: Result<Action<SwitchRef>, (CacheKey, &'static str)>| r.err().map(|e| e.1);
        assert_eq!(
            reason(handle(
                from([127, 0, 0, 2]),
                &request(switch, false, &hop, 4)
            )),
            Some("hop_missing")
        );
        assert_eq!(
            reason(handle(from([127, 0, 0, 2]), &request(None, true, &hop, 5))),
            Some("hop_unknown_switch")
        );
        assert_eq!(
            reason(handle(
                from([127, 0, 0, 2]),
                &request(Some(Ipv4Addr::new(10, 9, 9, 9)), true, &hop, 6)
            )),
            Some("hop_unknown_switch")
        );
    }

    #[test]
    fn status_server_answers_carry_the_maintenance_flag() {
        let (_dir, config) = config();
        let hop = Arc::<[u8]>::from(config.radius_hop_secret().unwrap().into_bytes());
        let local = LocalFacts::default();
        let mut ep = endpoint();
        for (i, maintenance) in [false, true].into_iter().enumerate() {
            local.maintenance.store(maintenance, Ordering::Relaxed);
            let members = Members {
                config: &config,
                hop_secret: &hop,
                local: &local,
                read_only: true,
            };
            let auth = [i as u8 + 1; 16];
            let probe = ironfence_radius::hop::status_server(i as u8, auth, &hop);
            let src = SocketAddr::from(([127, 0, 0, 2], 40000));
            let Action::Reply(bytes, Replied::StatusServer) =
                ep.handle(&members, Instant::now(), src, None, &probe)
            else {
                panic!("Status-Server not answered");
            };
            let p =
                ironfence_radius::hop::verify_backend_reply(&bytes, i as u8, &auth, &hop).unwrap();
            let flags = Hop::find(&p).unwrap().flags;
            assert_eq!(flags.maintenance(), maintenance);
            assert!(flags.read_only());
        }
    }
}

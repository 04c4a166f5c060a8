//! `ironfence_dhcp::Message::decode` reads every datagram that reaches UDP port 67 on a
//! registration network: never panics; whatever it accepts re-encodes to bytes that decode to
//! the same message; the lease engine plans any decoded message (with and without a current
//! lease, writable or read-only) without panicking, and its replies encode and decode.
#![no_main]

use ironfence_dhcp::{Engine, Lease, LeaseState, Message, NetworkSettings, Plan};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fn engine() -> Engine {
    Engine::new(NetworkSettings {
        network: "192.168.2.0".into(),
        network_addr: Ipv4Addr::new(192, 168, 2, 0),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        pool_first: Ipv4Addr::new(192, 168, 2, 10),
        pool_last: Ipv4Addr::new(192, 168, 2, 250),
        reserved: vec![Ipv4Addr::new(192, 168, 2, 1)],
        server_id: Ipv4Addr::new(192, 168, 2, 1),
        routers: vec![Ipv4Addr::new(192, 168, 2, 1)],
        dns_servers: vec![Ipv4Addr::new(192, 168, 2, 1)],
        domain_name: Some("registration.example.org".into()),
        default_lease: 30,
        max_lease: 60,
        offer_hold: 30,
        decline_hold: 600,
        reuse_grace: 300,
        captive_portal: Some("https://192.168.2.1/captive-portal/api".into()),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::decode(data) else {
        return;
    };
    let again = Message::decode(&m.encode()).expect("re-encoded message must decode");
    assert_eq!(again, m);
    let e = engine();
    let lease = Lease {
        ip: Ipv4Addr::new(192, 168, 2, 50),
        mac: Some(m.mac()),
        state: LeaseState::Bound,
        expires_at: 1_700_000_000,
    };
    for current in [None, Some(&lease)] {
        for writable in [true, false] {
            let plan = e.plan(1_700_000_100, &m, current, writable);
            let reply = match plan {
                Plan::Reply(r) => Some(*r),
                Plan::Offer { lease: t, .. } => Some(e.offer(&m, lease.ip, t)),
                Plan::Ack { ip, lease: t, .. } => Some(e.ack(&m, ip, t)),
                _ => None,
            };
            if let Some(r) = reply {
                let bytes = r.encode();
                assert_eq!(Message::decode(&bytes).expect("own reply decodes"), r);
                let _ = ironfence_dhcp::engine::destination(&m, &r);
            }
        }
    }
});

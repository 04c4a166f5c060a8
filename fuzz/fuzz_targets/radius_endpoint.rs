//! Feed arbitrary datagrams to a RADIUS endpoint, as an attacker on the network could, from a
//! configured client. Never panics; a datagram is answered by the endpoint only when it decodes
//! and is authentic, and whatever it hands to a handler decodes to the same bytes.
#![no_main]

use ironfence_radius::{
    Action, ClientPolicy, ClientTable, Endpoint, EndpointConfig, Packet,
    RequireMessageAuthenticator, Service,
};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// TEST FIXTURE secret.
const SECRET: &[u8] = b"fuzz-test-fixture-secret";

struct One;

impl ClientTable for One {
    type Client = ();
    fn lookup(&self, ip: IpAddr) -> Option<()> {
        ip.is_loopback().then_some(())
    }
    fn policy<'c>(&self, _: &'c ()) -> ClientPolicy<'c> {
        ClientPolicy {
            secret: SECRET,
            require_message_authenticator: RequireMessageAuthenticator::Auto,
            limit_proxy_state: true,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datagram)) = data.split_first() else {
        return;
    };
    let service = if selector & 1 == 0 { Service::Auth } else { Service::Acct };
    let mut e = Endpoint::new(
        service,
        EndpointConfig {
            reply_cache_ttl: Duration::from_secs(5),
            reply_cache_entries: 64,
            max_learned_clients: 4,
        },
        0,
    );
    let from = SocketAddr::from(([127, 0, 0, 1], 1645));
    let now = Instant::now();
    // Twice: the second copy exercises the reply cache.
    for _ in 0..2 {
        match e.handle(&One, now, from, None, datagram) {
            Action::Drop(reason) => {
                let _ = reason.label();
            }
            Action::Reply(reply, _) => {
                assert!(Packet::decode(datagram).is_ok());
                assert!(Packet::decode(&reply).is_ok());
            }
            Action::Request(r) => {
                let decoded = Packet::decode(datagram).expect("handed over, so it decodes");
                assert_eq!(r.packet().as_bytes(), decoded.as_bytes());
                if selector & 2 == 0 {
                    e.abandon(&r.key());
                } else {
                    e.complete(r.key(), r.packet().as_bytes(), now);
                }
            }
        }
    }
});

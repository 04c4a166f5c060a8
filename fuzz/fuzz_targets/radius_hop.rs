//! The cluster hop on arbitrary bytes: the hop attribute decoder, forwarding (as a front
//! server would on a switch's request) and relaying (as it would on a backend's reply) must
//! never panic; what is forwarded verifies with the hop secret and carries the hop.
#![no_main]

use ironfence_radius::hop::{Hop, HopFlags, forward_request, relay_reply, verify_backend_reply};
use ironfence_radius::{Packet, verify_request};
use libfuzzer_sys::fuzz_target;

const SWITCH: &[u8] = b"fuzz-switch";
const HOP: &[u8] = b"fuzz-hop-secret-0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let _ = Hop::decode(data);
    let hop = Hop {
        flags: HopFlags(1),
        request_id: 7,
        client: None,
    };
    if let Ok(p) = Packet::decode(data) {
        let _ = Hop::find(&p);
        if let Ok(bytes) = forward_request(&p, SWITCH, HOP, 1, [3; 16], &hop) {
            let q = Packet::decode(&bytes).expect("forwarded packet decodes");
            verify_request(&q, HOP).expect("forwarded packet verifies");
            assert_eq!(Hop::find(&q), Ok(hop));
        }
        // Relaying an unverified packet must not panic either (the server verifies first).
        if let Ok(b) = relay_reply(&p, HOP, &[3; 16], &p, SWITCH) {
            let _ = b.encode_response(&p, SWITCH);
        }
    }
    let _ = verify_backend_reply(data, data.get(1).copied().unwrap_or(0), &[3; 16], HOP);
});

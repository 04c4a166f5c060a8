//! Arbitrary bytes as a query to the responder and as a resolver's answer to the forwarding
//! table: no panic; our own replies always decode and fit 512 octets; a relayed answer keeps
//! the client's id and fits the client's limit.
#![no_main]

use ironfence_dns::wire::{self, Header, Name, Query};
use ironfence_dns::{Action, AnswerOutcome, Forwarder, Outgoing, Passthrough, Responder};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let r = Responder {
        ttl: 15,
        passthrough: Some(Passthrough::parse(&["*.example.org", "example.com"]).unwrap()),
    };
    let portal = Ipv4Addr::new(192, 168, 2, 1);
    match r.handle(data, portal) {
        Action::Reply { bytes, .. } => {
            let q = Query::decode(&bytes).expect("our replies decode");
            assert!(q.header.is_response());
            assert!(bytes.len() <= 512);
            assert_eq!(q.header.id, Header::decode(data).unwrap().id);
        }
        Action::Forward(q) => assert!(q.question.is_some()),
        Action::Drop(_) => {}
    }
    let _ = Query::decode(data).map(|q| q.question.map(|q| q.name.to_string()));
    for at in 0..data.len().min(64) {
        let _ = Name::decode(data, at);
    }

    // The same bytes as an answer to a pending query (whose upstream id is the data's id).
    let upstream: SocketAddr = "192.0.2.53:53".parse().unwrap();
    let query_bytes = wire::build_query(
        0x1234,
        &Name::from_dotted("www.example.org").unwrap(),
        wire::TYPE_A,
        None,
    );
    let query = Query::decode(&query_bytes).unwrap();
    let id = Header::decode(data).map(|h| h.id).unwrap_or(0);
    let mut f: Forwarder<()> = Forwarder::new(Duration::from_secs(1), 4);
    let out = Outgoing {
        client: (),
        datagram: &query_bytes,
        query: &query,
        limit: query.udp_limit(),
        upstream,
    };
    f.forward(Instant::now(), out, id).unwrap();
    if let AnswerOutcome::Relay { bytes, .. } = f.answer(upstream, data) {
        assert_eq!(Header::decode(&bytes).unwrap().id, 0x1234);
        assert!(bytes.len() <= 512);
    }
});

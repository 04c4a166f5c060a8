//! Decode arbitrary bytes; on success iterate attributes, verify with a fixed secret, render
//! with `describe`, re-encode the attributes through `PacketBuilder` and check they decode to
//! the same list.
#![no_main]

use ironfence_radius::dict::{self, describe};
use ironfence_radius::{Code, Packet, PacketBuilder, verify_request, verify_response};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    // The client-side path must not panic either.
    let _ = verify_response(data, 0, &[0; 16], SECRET);

    let Ok(p) = Packet::decode(data) else {
        return;
    };
    assert!(p.as_bytes().len() >= 20 && p.as_bytes().len() <= 4096);
    let mut total = 0;
    for a in p.attributes() {
        total += a.value.len() + 2;
    }
    assert_eq!(total, p.as_bytes().len() - 20, "attributes must cover the packet");
    let _ = verify_request(&p, SECRET);
    let _ = describe(&p).to_string();
    let _ = format!("{:#}", describe(&p));
    let _ = p.all_vendor_attributes().count();
    let _ = p.get_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID);

    // Re-encode everything but the Message-Authenticator (the encoder owns it).
    let original: Vec<(u8, &[u8])> = p
        .attributes()
        .filter(|a| a.typ != dict::MESSAGE_AUTHENTICATOR)
        .map(|a| (a.typ, a.value))
        .collect();
    let mut b = PacketBuilder::new(p.code(), p.identifier());
    for (t, v) in &original {
        if b.add(*t, v).is_err() {
            // Only possible when the packet used the 18 octets reserved for an MA.
            assert!(p.as_bytes().len() > 4096 - 18);
            return;
        }
    }
    let bytes = match p.code() {
        Code::AccountingRequest | Code::CoaRequest | Code::DisconnectRequest => {
            b.encode_accounting_request(SECRET, p.has_message_authenticator())
        }
        _ => b.encode_request(*p.authenticator(), SECRET, p.has_message_authenticator()),
    };
    let q = Packet::decode(&bytes).expect("re-encoded packet must decode");
    let again: Vec<(u8, &[u8])> = q
        .attributes()
        .filter(|a| a.typ != dict::MESSAGE_AUTHENTICATOR)
        .map(|a| (a.typ, a.value))
        .collect();
    assert_eq!(original, again);
    assert_eq!(q.code(), p.code());
    assert_eq!(q.identifier(), p.identifier());
    // What we sign, we verify (request codes only).
    if q.code().is_request() {
        verify_request(&q, SECRET).expect("own signature must verify");
    }
});

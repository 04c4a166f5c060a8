//! EAP packet decoder (RFC 3748 §4), EAP-Message attribute split/join (RFC 3579 §3.1) and the
//! TLS-method frame decoder: no panic, and what decodes re-encodes to the same packet.
#![no_main]

use ironfence_eap::packet::encode;
use ironfence_eap::tlsframe::TlsFrame;
use ironfence_eap::{Code, EapPacket, message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = EapPacket::decode(data) {
        if let (Code::Request | Code::Response, Some(typ)) = (p.code, p.typ) {
            let again = encode(p.code, p.identifier, typ, p.data);
            let q = EapPacket::decode(&again).expect("a re-encoded packet decodes");
            assert_eq!((q.code, q.identifier, q.typ, q.data), (p.code, p.identifier, p.typ, p.data));
        }
        let _ = TlsFrame::decode(p.data);
    }
    let _ = TlsFrame::decode(data);
    // EAP-Message attributes: a packet split into ≤253-octet attributes joins back.
    if let Ok(joined) = message::join(message::split(data)) {
        assert_eq!(joined, data);
    }
    // Arbitrary attribute boundaries (first octet of each chunk is its length).
    let mut attrs = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        attrs.push(&tail[..n]);
        rest = &tail[n..];
    }
    let _ = message::join(attrs);
});

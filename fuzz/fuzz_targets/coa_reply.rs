//! CoA/Disconnect replies on arbitrary bytes: `verify_reply` must never panic, and whatever it
//! accepts answers our request (code of the right kind, our identifier).
#![no_main]

use ironfence_radius::dynauth::{DynAuthKind, DynAuthRequest, Reply, verify_reply};
use ironfence_radius::{Code, Packet, PacketBuilder, dict};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-coa-secret";

fuzz_target!(|data: &[u8]| {
    let mut attrs = PacketBuilder::new(Code::CoaRequest, 0);
    attrs
        .add_str(dict::CALLING_STATION_ID, "02:00:00:00:00:01")
        .expect("fits");
    for kind in [DynAuthKind::Coa, DynAuthKind::Disconnect] {
        let req = DynAuthRequest::encode(kind, data.get(1).copied().unwrap_or(0), &attrs, SECRET);
        for require_ma in [false, true] {
            if let Ok(reply) = verify_reply(&req, data, SECRET, require_ma) {
                let p = Packet::decode(data).expect("accepted replies decode");
                assert_eq!(p.identifier(), req.identifier);
                let ack = matches!(reply, Reply::Ack);
                let want = match (kind, ack) {
                    (DynAuthKind::Coa, true) => Code::CoaAck,
                    (DynAuthKind::Coa, false) => Code::CoaNak,
                    (DynAuthKind::Disconnect, true) => Code::DisconnectAck,
                    (DynAuthKind::Disconnect, false) => Code::DisconnectNak,
                };
                assert_eq!(p.code(), want);
            }
        }
    }
});

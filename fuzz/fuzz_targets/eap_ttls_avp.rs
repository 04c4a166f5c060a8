//! EAP-TTLS Diameter AVP decoder (round trip of what decodes) and the TtlsInner state machine.
#![no_main]

use ironfence_eap::inner::{InnerStep, InnerVerdict};
use ironfence_eap::ttls::{TtlsInner, decode_avps, encode_avp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(avps) = decode_avps(data) {
        let mut out = Vec::new();
        for a in &avps {
            encode_avp(&mut out, a.code, a.vendor, a.mandatory, a.data);
        }
        let again = decode_avps(&out).expect("re-encoded AVPs decode");
        assert_eq!(again, avps);
    }
    let mut t = TtlsInner::new([9; 17]);
    t.start();
    match t.on_data(data) {
        InnerStep::NeedNtHash { .. } => {
            let _ = t.on_verdict(InnerVerdict::NtHash(Some([1; 16])));
            let _ = t.on_data(&[]);
        }
        InnerStep::NeedPassword { .. } => {
            let _ = t.on_verdict(InnerVerdict::Password(true));
        }
        _ => {}
    }
});

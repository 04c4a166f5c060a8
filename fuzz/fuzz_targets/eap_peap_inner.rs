//! PEAPv0 inner phase: header reconstruction, the Extensions TLV parser, and the whole
//! PeapInner state machine (with crypto-binding) fed arbitrary tunnelled messages.
#![no_main]

use ironfence_eap::inner::{InnerStep, InnerVerdict};
use ironfence_eap::peap::{
    BindingPolicy, PeapBinding, PeapInner, decode_tunnelled, parse_tlvs, reconstruct,
    verify_binding_response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = data.first().copied().unwrap_or(0);
    let _ = decode_tunnelled(data, id);
    let _ = reconstruct(data, id);
    if let Ok(tlvs) = parse_tlvs(data) {
        assert!(tlvs.len() <= ironfence_eap::peap::MAX_TLVS);
        for t in tlvs {
            let _ = verify_binding_response(&[3; 20], t.value);
        }
    }
    let mut s = PeapInner::new(
        "fuzz",
        [5; 16],
        Some(PeapBinding {
            policy: BindingPolicy::Optional,
            tk: [1; 40],
            nonce: [2; 32],
        }),
    );
    s.start();
    for chunk in data.split(|&b| b == 0xfe).take(8) {
        if let InnerStep::NeedNtHash { .. } = s.on_data(chunk) {
            let _ = s.on_verdict(InnerVerdict::NtHash(Some([1; 16])));
        }
    }
});

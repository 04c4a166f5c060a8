//! EAP-MSCHAPv2 Type-Data decoder and the server state machine: arbitrary bytes never panic;
//! a decoded Response re-encodes to the same bytes.
#![no_main]

use ironfence_eap::mschapv2::{MsChapV2Server, Packet, ServerStep, encode_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Packet::Response {
        ms_id,
        peer_challenge,
        nt_response,
        flags: 0,
        name,
    }) = Packet::decode(data)
    {
        // Reserved octets are not kept and names are capped at 255 octets: only such
        // responses re-encode identically.
        if data[21..29] == [0; 8] && name.len() <= 255 {
            assert_eq!(
                encode_response(ms_id, &peer_challenge, &nt_response, name),
                data
            );
        }
    }
    let mut s = MsChapV2Server::new("fuzz", [7; 16], data.first().copied().unwrap_or(0));
    s.challenge();
    for chunk in data.split(|&b| b == 0xff).take(8) {
        if let ServerStep::NeedNtHash { .. } = s.on_response(chunk) {
            let _ = s.on_nt_hash(Some([1; 16]));
        }
    }
});

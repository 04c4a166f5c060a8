//! The TLS-method fragment reassembler (L/M flags, TLS Message Length) fed hostile
//! fragments: bounded memory, no panic; and the fragmenter's output always reassembles.
#![no_main]

use ironfence_eap::tlsframe::{Fragmenter, Reassembled, Reassembler, TlsFrame, encode_frame};
use ironfence_eap::{Code, EapPacket, EapType};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // Hostile: chunks of the input (each led by its length octet) as TLS-method messages.
    let mut r = Reassembler::default();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        if let Ok(frame) = TlsFrame::decode(&tail[..n]) {
            match r.push(&frame, MAX) {
                Ok(Reassembled::Complete(m)) => assert!(m.len() <= MAX),
                Ok(Reassembled::NeedMore) => assert!(r.in_progress()),
                Err(_) => assert!(!r.in_progress()),
            }
            assert!(r.capacity() <= 2 * MAX, "held {}", r.capacity());
        }
        rest = &tail[n..];
    }
    // Honest: our own fragments of the input, any size, reassemble to it.
    let size = data.first().map_or(1, |&b| b as usize + 1);
    let mut f = Fragmenter::new(data.to_vec(), size);
    let mut r = Reassembler::default();
    loop {
        let (flags, length, chunk) = f.next_fragment();
        let wire = encode_frame(Code::Response, 1, EapType::Tls, flags, length, chunk);
        let p = EapPacket::decode(&wire).expect("our packet decodes");
        let frame = TlsFrame::decode(p.data).expect("our frame decodes");
        match r.push(&frame, usize::MAX) {
            Ok(Reassembled::Complete(m)) => {
                assert_eq!(m, data);
                break;
            }
            Ok(Reassembled::NeedMore) => assert!(!f.done()),
            Err(e) => panic!("our own fragments refused: {e}"),
        }
    }
});

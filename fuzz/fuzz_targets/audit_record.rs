//! The audit log decoder reads files from disk that a crash may have torn or a disk may have
//! damaged: `AuditRecord::decode` and the segment scanner never panic, and whatever decodes
//! re-encodes to bytes that decode to the same record.
#![no_main]

use ironfence_audit::AuditRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((record, used)) = AuditRecord::decode(data) {
        assert!(used <= data.len());
        let again = record.encode();
        assert_eq!(again.as_slice(), &data[..used], "canonical encoding");
        assert_eq!(AuditRecord::decode(&again), Ok((record, again.len())));
    }
    // As a segment: the scan stops at the first invalid frame and never reads past the end.
    let mut seg = ironfence_audit::segment::MAGIC.to_vec();
    seg.extend_from_slice(data);
    let mut last = 0u64;
    let end = ironfence_audit::segment::scan(&seg, |at, payload| {
        assert!(at >= last && (at as usize) + 8 + payload.len() <= seg.len());
        last = at;
    });
    assert!(end.valid_len(seg.len() as u64) <= seg.len() as u64);
});

//! Decode arbitrary bytes as `grastate.dat` and as `mariadbd --wsrep-recover` output (files a
//! crash may leave half-written). Never panics; on success the state is well-formed, prints
//! back to a file that parses to the same state, and `mark_safe_to_bootstrap` keeps the uuid
//! and seqno while setting the flag.
#![no_main]

use ironfence_galera::grastate::{self, GraState};
use libfuzzer_sys::fuzz_target;

fn check_state(g: &GraState) {
    assert_eq!(g.uuid.len(), 36, "{g:?}");
    assert!(g.seqno >= -1, "{g:?}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let marked = grastate::mark_safe_to_bootstrap(&text);
    if let Ok(g) = grastate::parse(&text) {
        check_state(&g);
        assert_eq!(grastate::parse(&g.to_string()).as_ref(), Ok(&g));
        let m = grastate::parse(&marked).expect("a marked valid grastate.dat parses");
        assert_eq!(
            m,
            GraState {
                safe_to_bootstrap: true,
                ..g
            }
        );
    }

    if let Some((uuid, seqno)) = grastate::parse_wsrep_recover(&text) {
        assert_eq!(uuid.len(), 36);
        assert!(seqno >= -1);
    }
});

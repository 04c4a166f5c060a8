//! `Mac::parse` reads MAC addresses from RADIUS attributes (Calling-Station-Id, User-Name),
//! CSV imports and the CLI: never panics, and whatever it accepts renders to the canonical
//! form, which parses back to the same address.
#![no_main]

use ironfence_core::Mac;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mac) = Mac::parse(text) {
        let canonical = mac.to_string();
        assert_eq!(canonical.len(), 17, "{canonical}");
        assert_eq!(Mac::parse(&canonical), Ok(mac), "{canonical}");
    }
});

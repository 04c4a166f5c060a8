//! Decode arbitrary bytes as the `Authorization` header of a node-to-node API request (sent
//! by anyone a member admits, before authentication). Never panics; what decodes re-encodes
//! to a header that decodes to the same user and password, and the user never holds a colon
//! (RFC 7617 splits at the first one).
#![no_main]

use base64::Engine;
use ironfence_webservices::parse_basic_credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((user, pass)) = parse_basic_credentials(data) {
        assert!(!user.contains(&b':'), "{user:?}");
        let mut plain = user.clone();
        plain.push(b':');
        plain.extend_from_slice(&pass);
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&plain)
        );
        let again = parse_basic_credentials(header.as_bytes());
        // Re-encoding can only fail on the length cap, which the original also passed.
        if header.len() <= 8192 {
            assert_eq!(again, Some((user, pass)));
        }
    }
});

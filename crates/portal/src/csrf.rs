//! CSRF tokens: `base64url(expiry ‖ HMAC-SHA256(key, "csrf v1" ‖ session ‖ expiry)[..16])`.
//!
//! Bound to the session cookie's id (a token stolen for another session is useless), expiring
//! (`expiry` is UNIX seconds, signed), stateless (any server of a cluster verifies it with
//! the shared key), compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const TAG_LEN: usize = 16;

fn tag(key: &[u8], session: &str, expiry: i64) -> [u8; TAG_LEN] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(b"csrf v1\0");
    mac.update(&(session.len() as u64).to_be_bytes());
    mac.update(session.as_bytes());
    mac.update(&expiry.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full[..TAG_LEN]);
    out
}

/// A token for `session`, valid until `now + ttl_secs`.
pub fn issue(key: &[u8], session: &str, now: i64, ttl_secs: i64) -> String {
    let expiry = now.saturating_add(ttl_secs);
    let mut raw = Vec::with_capacity(8 + TAG_LEN);
    raw.extend_from_slice(&expiry.to_be_bytes());
    raw.extend_from_slice(&tag(key, session, expiry));
    URL_SAFE_NO_PAD.encode(raw)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfError {
    Malformed,
    Expired,
    Invalid,
}

/// Checks `token` for `session` at `now`.
pub fn verify(key: &[u8], session: &str, token: &str, now: i64) -> Result<(), CsrfError> {
    if token.len() > 64 {
        return Err(CsrfError::Malformed);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| CsrfError::Malformed)?;
    if raw.len() != 8 + TAG_LEN {
        return Err(CsrfError::Malformed);
    }
    let expiry = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    let good: bool = tag(key, session, expiry).ct_eq(&raw[8..]).into();
    if !good {
        return Err(CsrfError::Invalid);
    }
    if now > expiry {
        return Err(CsrfError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_binding_and_expiry() {
        let t = issue(KEY, "session-a", 1_000, 600);
        assert_eq!(verify(KEY, "session-a", &t, 1_000), Ok(()));
        assert_eq!(verify(KEY, "session-a", &t, 1_600), Ok(()));
        assert_eq!(verify(KEY, "session-a", &t, 1_601), Err(CsrfError::Expired));
        assert_eq!(verify(KEY, "session-b", &t, 1_000), Err(CsrfError::Invalid));
        assert_eq!(
            verify(b"another key", "session-a", &t, 1_000),
            Err(CsrfError::Invalid)
        );
    }

    #[test]
    fn tampered_expiry_is_invalid() {
        let t = issue(KEY, "s", 1_000, 600);
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[7] ^= 0x40; // push the expiry forward
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(verify(KEY, "s", &forged, 1_000), Err(CsrfError::Invalid));
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "!!!!", "AAAA", &"A".repeat(200)] {
            assert_eq!(
                verify(KEY, "s", bad, 0),
                Err(CsrfError::Malformed),
                "{bad:?}"
            );
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary tokens never panic and never verify.
        #[test]
        fn random_tokens_never_verify(t in "[A-Za-z0-9_-]{0,40}|\\PC{0,40}") {
            prop_assert!(verify(b"k", "session", &t, 0).is_err());
        }
    }
}

//! The TOTP second factor: RFC 6238 with the parameters every authenticator app uses
//! (HMAC-SHA1, 30-second steps, 6 digits), RFC 4226 §5.3 dynamic truncation, base32 secrets
//! (RFC 4648 §6) and the `otpauth://` URI that apps scan as a QR code.
//!
//! A code is accepted one step early or late (RFC 6238 §5.2's recommended network delay
//! allowance), and never twice: [`ReplayGuard`] remembers, per account, the last step that
//! was used, and refuses it and anything older (§5.2: "the verifier MUST NOT accept the
//! second attempt of the same OTP after the successful validation has been issued").

use hmac::{KeyInit, Mac};
use std::collections::HashMap;

/// RFC 6238 §4.1 X.
pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const WINDOW: i64 = 1;
/// Shortest secret accepted (RFC 4226 §4 R6: at least 128 bits; 160 recommended).
pub const MIN_SECRET_BYTES: usize = 16;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            let idx = (n >> (35 - 5 * i)) & 31;
            out.push(ALPHABET[idx as usize] as char);
        }
    }
    out
}

/// Decodes base32 as authenticator apps and PacketFence-style configs write it: case
/// insensitive, spaces and `=` padding ignored. `None` for any other character or a length
/// no encoder produces.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut count = 0usize;
    for c in s.chars() {
        if c == ' ' || c == '=' {
            continue;
        }
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        count += 1;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
    if matches!(count % 8, 1 | 3 | 6) {
        return None;
    }
    Some(out)
}

/// RFC 4226 HOTP value of `counter` with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC accepts any key");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    // §5.3 dynamic truncation.
    let offset = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The RFC 6238 time step of `unix_time`.
pub fn step_of(unix_time: i64) -> i64 {
    unix_time.div_euclid(STEP_SECS)
}

/// The 6-digit code at `unix_time`, zero-padded.
pub fn code_at(secret: &[u8], unix_time: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step_of(unix_time).max(0) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// The step whose code `code` is (current step ± [`WINDOW`]), if any. The comparison of each
/// candidate is constant-time.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    use subtle::ConstantTimeEq;
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    let mut found = None;
    for step in now_step - WINDOW..=now_step + WINDOW {
        if step < 0 {
            continue;
        }
        let want = format!(
            "{:0width$}",
            hotp(secret, step as u64, DIGITS),
            width = DIGITS as usize
        );
        if bool::from(want.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://totp/…` URI (Google Authenticator key URI format) for `account` at `issuer`.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let label = format!("{}:{}", pct(issuer), pct(account));
    format!(
        "otpauth://totp/{label}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        pct(issuer)
    )
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Per-account last used step (this server's memory). Bounded: beyond `cap` accounts the one
/// used longest ago is forgotten (its step is in the past anyway after a minute).
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    used: HashMap<String, i64>,
    cap: usize,
}

impl ReplayGuard {
    pub fn new(cap: usize) -> ReplayGuard {
        ReplayGuard {
            used: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// Accepts `step` for `account` once: `false` if this step (or a later one) was already
    /// used. On `true` the step is remembered.
    pub fn use_step(&mut self, account: &str, step: i64, now: i64) -> bool {
        if self.used.get(account).is_some_and(|&last| step <= last) {
            return false;
        }
        if !self.used.contains_key(account) && self.used.len() >= self.cap {
            // Steps older than the window can never be presented again: drop those first.
            let oldest_useful = step_of(now) - WINDOW;
            self.used.retain(|_, s| *s >= oldest_useful);
            if self.used.len() >= self.cap
                && let Some(k) = self
                    .used
                    .iter()
                    .min_by_key(|(_, s)| **s)
                    .map(|(k, _)| k.clone())
            {
                self.used.remove(&k);
            }
        }
        self.used.insert(account.to_string(), step);
        true
    }

    pub fn len(&self) -> usize {
        self.used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1 rows (8 digits, seed "12345678901234567890").
    #[test]
    fn rfc6238_appendix_b() {
        let seed = b"12345678901234567890";
        for (t, want) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(seed, step_of(t) as u64, 8), want, "T={t}");
        }
        // The 6-digit code is the same value's last six digits.
        assert_eq!(code_at(seed, 59), "287082");
        assert_eq!(code_at(seed, 1111111109), "081804");
    }

    /// RFC 4226 appendix D.
    #[test]
    fn rfc4226_appendix_d() {
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", c as u64, 6), *w);
        }
    }

    #[test]
    fn base32_rfc4648_vectors_and_round_trip() {
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(raw.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), raw.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW1"), None, "1 is not base32");
        assert_eq!(base32_decode("M"), None, "impossible length");
        let secret = [0xA5u8; 20];
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
    }

    #[test]
    fn window_and_replay() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_015;
        let step = step_of(now);
        let code = code_at(secret, now);
        assert_eq!(matching_step(secret, &code, now), Some(step));
        assert_eq!(
            matching_step(secret, &code_at(secret, now - 30), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, now + 30), now),
            Some(step + 1)
        );
        assert_eq!(matching_step(secret, &code_at(secret, now - 60), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);

        let mut g = ReplayGuard::new(2);
        assert!(g.use_step("alice", step, now));
        assert!(!g.use_step("alice", step, now), "same code twice");
        assert!(!g.use_step("alice", step - 1, now), "an older code after");
        assert!(g.use_step("alice", step + 1, now + 30));
        assert!(g.use_step("bob", step, now), "per account");
        assert!(g.use_step("carol", step, now));
        assert!(g.len() <= 2, "bounded");
    }

    #[test]
    fn otpauth_uri_shape() {
        let u = otpauth_uri("ironfence pf1", "alice@x", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            u,
            "otpauth://totp/ironfence%20pf1:alice%40x?secret=JBSWY3DPEHPK3PXP&issuer=ironfence%20pf1&algorithm=SHA1&digits=6&period=30"
        );
    }
}

//! Admin API tokens: stateless, so that every server of the cluster accepts a token another
//! one issued (haproxy round-robins the admin's requests), with PacketFence's limits: the
//! session ends after 15 minutes without a request (idle) and 12 hours after login
//! (absolute), whatever the activity.
//!
//! ```text
//! token   := base64url(payload) "." base64url(HMAC-SHA256(key, "ironfence admin token v1\0" ‖ payload))
//! payload := version 1 | session[16] | issued_at i64 BE | last_seen i64 BE | account (UTF-8)
//! ```
//!
//! The role is deliberately not in the token: it is read from admin.conf at every request,
//! so a demoted or disabled account loses its access at once. Revocation (logout) is a list
//! of session ids kept by the shell; a token carries no other state.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use std::fmt;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// PacketFence's admin session idle timeout.
pub const IDLE_TIMEOUT_SECS: i64 = 15 * 60;
/// PacketFence's absolute admin session lifetime.
pub const MAX_LIFETIME_SECS: i64 = 12 * 3600;
/// How far in the future a timestamp may be (clock skew between the servers of a cluster).
pub const CLOCK_SKEW_SECS: i64 = 60;
/// Longest token accepted before any decoding (a real one is ~120 characters).
pub const MAX_TOKEN_LEN: usize = 1024;
/// Longest account name (admin.conf section names are short; this bounds the payload).
pub const MAX_ACCOUNT_LEN: usize = 255;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"ironfence admin token v1\0";
const FIXED: usize = 1 + 16 + 8 + 8;
const TAG_LEN: usize = 32;

/// The 32-byte signing key shared by the cluster (`conf/ssl/admin-token.key`).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub fn new(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    /// A key for another purpose (e.g. the pages' CSRF tokens), so that one key file serves
    /// both without a token of one kind ever verifying as the other.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(b"ironfence admin key derivation\0");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn tag(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Random, 128 bits: names the session in the audit log and in revocations.
    pub session: [u8; 16],
    pub account: String,
    /// UNIX seconds of the login.
    pub issued_at: i64,
    /// UNIX seconds of the last authenticated request.
    pub last_seen: i64,
}

impl Claims {
    /// A new session at `now`.
    pub fn new(session: [u8; 16], account: impl Into<String>, now: i64) -> Claims {
        Claims {
            session,
            account: account.into(),
            issued_at: now,
            last_seen: now,
        }
    }

    /// The session id as text (base64url, 22 characters).
    pub fn session_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.session)
    }

    /// The same session, seen at `now` (never moves `last_seen` backwards).
    pub fn refreshed(&self, now: i64) -> Claims {
        Claims {
            last_seen: self.last_seen.max(now),
            ..self.clone()
        }
    }

    /// When the session ends at the latest (the absolute lifetime), UNIX seconds.
    pub fn expires_at(&self) -> i64 {
        self.issued_at.saturating_add(MAX_LIFETIME_SECS)
    }
}

/// Why a token is refused. Every variant is a 401 to the caller; the variants exist for the
/// message and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this format (wrong shape, encoding, version, length).
    Malformed,
    /// The signature does not match: forged, altered, or signed with another key.
    BadSignature,
    /// More than [`IDLE_TIMEOUT_SECS`] since the last request.
    Idle,
    /// More than [`MAX_LIFETIME_SECS`] since the login.
    Expired,
    /// Timestamps in the future beyond the clock skew, or inconsistent.
    NotYetValid,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "the token is malformed",
            TokenError::BadSignature => "the token's signature does not match",
            TokenError::Idle => "the session ended after 15 minutes without activity",
            TokenError::Expired => "the session reached its 12-hour limit",
            TokenError::NotYetValid => "the token's time is in the future",
        })
    }
}

impl std::error::Error for TokenError {}

/// The token for `claims`.
pub fn issue(key: &TokenKey, claims: &Claims) -> String {
    let account = truncate(&claims.account, MAX_ACCOUNT_LEN);
    let mut payload = Vec::with_capacity(FIXED + account.len());
    payload.push(VERSION);
    payload.extend_from_slice(&claims.session);
    payload.extend_from_slice(&claims.issued_at.to_be_bytes());
    payload.extend_from_slice(&claims.last_seen.to_be_bytes());
    payload.extend_from_slice(account.as_bytes());
    let tag = key.tag(&payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The claims of `token` if it is genuine and its session is alive at `now`. The signature
/// is checked (in constant time) before any field is believed.
pub fn verify(key: &TokenKey, token: &str, now: i64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (p64, t64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p64)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(t64)
        .map_err(|_| TokenError::Malformed)?;
    if tag.len() != TAG_LEN || payload.len() < FIXED || payload.len() > FIXED + MAX_ACCOUNT_LEN {
        return Err(TokenError::Malformed);
    }
    key.tag(&payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if payload[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let session: [u8; 16] = payload[1..17].try_into().expect("16 bytes");
    let issued_at = i64::from_be_bytes(payload[17..25].try_into().expect("8 bytes"));
    let last_seen = i64::from_be_bytes(payload[25..33].try_into().expect("8 bytes"));
    let account = std::str::from_utf8(&payload[FIXED..])
        .map_err(|_| TokenError::Malformed)?
        .to_string();
    if account.is_empty() {
        return Err(TokenError::Malformed);
    }
    if last_seen < issued_at || last_seen > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(TokenError::NotYetValid);
    }
    if now.saturating_sub(issued_at) > MAX_LIFETIME_SECS {
        return Err(TokenError::Expired);
    }
    if now.saturating_sub(last_seen) > IDLE_TIMEOUT_SECS {
        return Err(TokenError::Idle);
    }
    Ok(Claims {
        session,
        account,
        issued_at,
        last_seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_700_000_000;

    fn key(b: u8) -> TokenKey {
        TokenKey::new([b; 32])
    }

    fn claims() -> Claims {
        Claims::new([9; 16], "alice", T0)
    }

    #[test]
    fn the_expiry_table() {
        let k = key(1);
        let fresh = issue(&k, &claims());
        let seen_later = issue(&k, &claims().refreshed(T0 + 3600));
        let mut tampered = fresh.clone().into_bytes();
        // Flip one character of the payload (the account's last letter).
        let i = fresh.find('.').unwrap() - 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let short = format!("AAAA{}", &fresh[fresh.find('.').unwrap()..]);
        let future = issue(&k, &Claims::new([9; 16], "alice", T0 + 3600));
        type Row<'a> = (&'a str, &'a str, TokenKey, i64, Result<(), TokenError>);
        let rows: &[Row] = &[
            ("fresh", &fresh, key(1), T0, Ok(())),
            ("14 min idle", &fresh, key(1), T0 + 14 * 60, Ok(())),
            ("exactly 15 min idle", &fresh, key(1), T0 + 15 * 60, Ok(())),
            (
                "15 min 1 s idle",
                &fresh,
                key(1),
                T0 + 15 * 60 + 1,
                Err(TokenError::Idle),
            ),
            ("active, 11 h", &seen_later, key(1), T0 + 3600 + 60, Ok(())),
            (
                "active but past 12 h",
                &issue(&k, &claims().refreshed(T0 + 12 * 3600)),
                key(1),
                T0 + 12 * 3600 + 1,
                Err(TokenError::Expired),
            ),
            (
                "tampered",
                &tampered,
                key(1),
                T0,
                Err(TokenError::BadSignature),
            ),
            (
                "wrong key",
                &fresh,
                key(2),
                T0,
                Err(TokenError::BadSignature),
            ),
            (
                "truncated tag",
                &fresh[..fresh.len() - 3],
                key(1),
                T0,
                Err(TokenError::Malformed),
            ),
            (
                "truncated payload",
                &fresh[4..],
                key(1),
                T0,
                Err(TokenError::BadSignature),
            ),
            (
                "payload too short",
                &short,
                key(1),
                T0,
                Err(TokenError::Malformed),
            ),
            ("no dot", "abc", key(1), T0, Err(TokenError::Malformed)),
            ("empty", "", key(1), T0, Err(TokenError::Malformed)),
            (
                "issued in the future",
                &future,
                key(1),
                T0,
                Err(TokenError::NotYetValid),
            ),
            ("within clock skew", &future, key(1), T0 + 3600 - 30, Ok(())),
        ];
        for (what, token, k, now, want) in rows {
            let got = verify(k, token, *now).map(|c| {
                assert_eq!(c.account, "alice", "{what}");
                assert_eq!(c.session, [9; 16], "{what}");
            });
            assert_eq!(&got, want, "{what}");
        }
    }

    #[test]
    fn refresh_round_trip_and_session_id() {
        let k = key(3);
        let c = claims();
        let t = issue(&k, &c.refreshed(T0 + 100));
        let back = verify(&k, &t, T0 + 100).unwrap();
        assert_eq!(back.last_seen, T0 + 100);
        assert_eq!(back.issued_at, T0);
        assert_eq!(back.expires_at(), T0 + MAX_LIFETIME_SECS);
        assert_eq!(c.refreshed(T0 - 5).last_seen, T0, "never backwards");
        assert_eq!(c.session_id().len(), 22);
        assert_ne!(k.derive("csrf"), k.derive("other"));
        assert_eq!(format!("{k:?}"), "TokenKey(<redacted>)");
    }

    proptest! {
        #[test]
        fn verify_never_panics(s in ".{0,1200}", now in any::<i64>()) {
            let _ = verify(&key(1), &s, now);
        }

        #[test]
        fn verify_never_panics_on_decodable_garbage(
            p in proptest::collection::vec(any::<u8>(), 0..400),
            t in proptest::collection::vec(any::<u8>(), 0..40),
            now in any::<i64>(),
        ) {
            let token = format!("{}.{}", URL_SAFE_NO_PAD.encode(&p), URL_SAFE_NO_PAD.encode(&t));
            prop_assert!(verify(&key(1), &token, now).is_err());
        }

        #[test]
        fn issued_tokens_verify(account in "[a-z0-9._-]{1,40}", session in any::<[u8; 16]>(),
                                t in 0i64..4_000_000_000, idle in 0i64..=IDLE_TIMEOUT_SECS) {
            let c = Claims::new(session, account, t);
            let back = verify(&key(7), &issue(&key(7), &c), t + idle).unwrap();
            prop_assert_eq!(back, c);
        }
    }
}

//! TLS session tickets sealed with a key every cluster member shares, so a device that roams
//! to another server resumes its session there (RFC 5077 / RFC 8446 §4.6.1 stateless tickets).
//!
//! The key file (`conf/ssl/eap-ticket.key`, synchronized with the rest of `conf/ssl`) holds a
//! master secret: a first line `ironfence-eap-ticket-key v1` and a second line of at least 64
//! hex digits (32 random octets). Tickets are not sealed with it directly: time is cut into
//! periods of one ticket lifetime, and each period's key is HKDF-SHA256(master, period
//! number). A ticket is sealed with the current period's key and opened with the current or
//! the previous one, so a ticket is useless after at most two lifetimes on every member alike,
//! without the members talking to each other (rustls asks for "key rolling, not a lifetime in
//! the ticket"). The members' clocks must agree within a period (NTP).
//!
//! Seal: ChaCha20-Poly1305, ticket = `b'I'` ‖ period (u64 BE) ‖ nonce (12) ‖ ciphertext ‖ tag;
//! the first 9 octets are the additional data. Replacing the file (and synchronizing it) revokes
//! every ticket.
//!
//! The clock is the shell's (`now` returns UNIX seconds): this module reads none.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

const HEADER: &str = "ironfence-eap-ticket-key v1";
const TAG: u8 = b'I';
const PREFIX_LEN: usize = 1 + 8;
const NONCE_LEN: usize = 12;
/// Tickets larger than this are refused before any work (rustls' own are a few hundred octets;
/// one with a client certificate chain a few kilobytes).
const MAX_TICKET: usize = 16 * 1024;

/// Why the key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("first line must be `{HEADER}`")]
    Header,
    #[error("second line must be at least 64 hex digits (32 random octets)")]
    Secret,
    #[error("ticket lifetime must be between 1 second and 7 days")]
    Lifetime,
    #[error("no random numbers: {0}")]
    Random(String),
}

/// A new key file's contents (32 random octets).
pub fn generate_key_file_contents() -> Result<Vec<u8>, KeyFileError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyFileError::Random(e.to_string()))?;
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{HEADER}\n{hex}\n").into_bytes())
}

fn parse_key_file(contents: &[u8]) -> Result<Vec<u8>, KeyFileError> {
    let text = std::str::from_utf8(contents).map_err(|_| KeyFileError::Header)?;
    let mut lines = text.lines().map(str::trim);
    if lines.next() != Some(HEADER) {
        return Err(KeyFileError::Header);
    }
    let hex = lines.next().ok_or(KeyFileError::Secret)?;
    if hex.len() < 64 || hex.len() % 2 != 0 {
        return Err(KeyFileError::Secret);
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| KeyFileError::Secret))
        .collect()
}

/// The shell's clock: UNIX seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A `rustls::server::ProducesTickets` whose keys derive from the shared key file.
pub struct SharedTicketer {
    master: hkdf::Prk,
    lifetime: u64,
    now: Clock,
}

impl fmt::Debug for SharedTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTicketer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl SharedTicketer {
    /// From the key file's contents; tickets live `lifetime` (at most 7 days, RFC 8446 §4.6.1).
    pub fn from_key_file_contents(
        contents: &[u8],
        lifetime: Duration,
        now: Clock,
    ) -> Result<SharedTicketer, KeyFileError> {
        let secret = parse_key_file(contents)?;
        let lifetime = lifetime.as_secs();
        if lifetime == 0 || lifetime > 7 * 24 * 3600 {
            return Err(KeyFileError::Lifetime);
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"ironfence eap session tickets");
        Ok(SharedTicketer {
            master: salt.extract(&secret),
            lifetime,
            now,
        })
    }

    fn period_now(&self) -> u64 {
        (self.now)() / self.lifetime
    }

    fn key(&self, period: u64) -> Option<LessSafeKey> {
        let info = period.to_be_bytes();
        let info = [&info[..]];
        let okm = self.master.expand(&info, &CHACHA20_POLY1305).ok()?;
        let mut key = [0u8; 32];
        okm.fill(&mut key).ok()?;
        Some(LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &key).ok()?,
        ))
    }

    fn seal(&self, period: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let key = self.key(period)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(PREFIX_LEN + NONCE_LEN + plain.len() + 16);
        out.push(TAG);
        out.extend_from_slice(&period.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..PREFIX_LEN]),
            &mut body,
        )
        .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn open(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() > MAX_TICKET || ticket.len() < PREFIX_LEN + NONCE_LEN + 16 {
            return None;
        }
        if ticket[0] != TAG {
            return None;
        }
        let period = u64::from_be_bytes(ticket[1..PREFIX_LEN].try_into().ok()?);
        let current = self.period_now();
        // The current period, or the one before: older tickets (and ones from the future)
        // are refused without trying a key.
        if period != current && period.checked_add(1) != Some(current) {
            return None;
        }
        let key = self.key(period)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&ticket[PREFIX_LEN..PREFIX_LEN + NONCE_LEN]).ok()?;
        let mut body = ticket[PREFIX_LEN + NONCE_LEN..].to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(&ticket[..PREFIX_LEN]), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

impl rustls::server::ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(self.period_now(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn clock(at: &Arc<AtomicU64>) -> Clock {
        let at = at.clone();
        Arc::new(move || at.load(Ordering::Relaxed))
    }

    fn ticketer(file: &[u8], at: &Arc<AtomicU64>) -> SharedTicketer {
        SharedTicketer::from_key_file_contents(file, Duration::from_secs(3600), clock(at)).unwrap()
    }

    #[test]
    fn a_ticket_from_one_member_opens_on_another_with_the_same_file() {
        let file = generate_key_file_contents().unwrap();
        let at = Arc::new(AtomicU64::new(1_800_000_000));
        let (a, b) = (ticketer(&file, &at), ticketer(&file, &at));
        let t = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&t).as_deref(), Some(&b"session state"[..]));
        // Another key file: refused.
        let other = ticketer(&generate_key_file_contents().unwrap(), &at);
        assert_eq!(other.decrypt(&t), None);
    }

    #[test]
    fn tickets_expire_with_their_period_key() {
        let file = generate_key_file_contents().unwrap();
        let at = Arc::new(AtomicU64::new(1_800_000_000));
        let t = ticketer(&file, &at);
        let ticket = t.encrypt(b"x").unwrap();
        at.fetch_add(3600, Ordering::Relaxed);
        assert!(t.decrypt(&ticket).is_some(), "previous period still opens");
        at.fetch_add(3600, Ordering::Relaxed);
        assert_eq!(t.decrypt(&ticket), None, "two periods later: refused");
    }

    #[test]
    fn tampered_or_garbage_tickets_are_refused() {
        let file = generate_key_file_contents().unwrap();
        let at = Arc::new(AtomicU64::new(1_800_000_000));
        let t = ticketer(&file, &at);
        let mut ticket = t.encrypt(b"state").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert_eq!(t.decrypt(&ticket), None);
        for garbage in [&b""[..], b"I", &[b'I'; 40], &vec![0u8; MAX_TICKET + 1]] {
            assert_eq!(t.decrypt(garbage), None);
        }
    }

    #[test]
    fn key_file_format_is_checked() {
        let at = Arc::new(AtomicU64::new(0));
        let bad = |f: &str| {
            SharedTicketer::from_key_file_contents(
                f.as_bytes(),
                Duration::from_secs(60),
                clock(&at),
            )
            .unwrap_err()
        };
        assert_eq!(bad("nope\n"), KeyFileError::Header);
        assert_eq!(bad(&format!("{HEADER}\nabcd\n")), KeyFileError::Secret);
        assert_eq!(
            bad(&format!("{HEADER}\n{}\n", "zz".repeat(32))),
            KeyFileError::Secret
        );
        let ok = generate_key_file_contents().unwrap();
        assert_eq!(
            SharedTicketer::from_key_file_contents(
                &ok,
                Duration::from_secs(8 * 24 * 3600),
                clock(&at)
            )
            .unwrap_err(),
            KeyFileError::Lifetime
        );
    }
}

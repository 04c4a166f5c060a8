//! Local users' password hashes: new ones are argon2id (PHC string); PacketFence's bcrypt
//! hashes (`$2a$`, `$2b$`, `$2y$`) are verified so users imported from a PacketFence
//! `password` table log in unchanged.
//!
//! [`dummy_verify`] costs what a real verification costs; the portal calls it for an unknown
//! user so that the answer time does not tell which users exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("no randomness for the salt: {0}")]
    Random(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// A new argon2id hash of `password` with a random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

/// Whether `password` matches `stored` (argon2 PHC or bcrypt); any other or malformed stored
/// value never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    if stored.starts_with("$argon2") {
        return PasswordHash::new(stored)
            .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
    }
    false
}

/// Whether `stored` is a hash this module verifies (import checks).
pub fn is_supported(stored: &str) -> bool {
    [
        "$2a$",
        "$2b$",
        "$2y$",
        "$argon2id$",
        "$argon2i$",
        "$argon2d$",
    ]
    .iter()
    .any(|p| stored.starts_with(p))
        && (PasswordHash::new(stored).is_ok() || stored.starts_with("$2"))
}

/// A verification against a fixed hash, discarded: the cost of [`verify`] for a user that
/// does not exist.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let h = DUMMY.get_or_init(|| hash("ironfence dummy password").unwrap_or_default());
    let _ = verify(h, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "correct horsf"));
        assert_ne!(h, hash("correct horse").unwrap(), "salted");
        assert!(is_supported(&h));
    }

    #[test]
    fn packetfence_bcrypt_hashes_verify() {
        // PacketFence writes $2a$ (Crypt::Eksblowfish); htpasswd -B writes $2y$.
        let b = bcrypt::hash_with_salt("s3cret", 4, [7u8; 16]).unwrap();
        for variant in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let h = b.format_for_version(variant);
            assert!(verify(&h, "s3cret"), "{h}");
            assert!(!verify(&h, "s3cres"), "{h}");
            assert!(is_supported(&h));
        }
    }

    #[test]
    fn other_formats_never_match() {
        for stored in [
            "",
            "password",
            "{SSHA}abc",
            "$1$abc$def",
            "$argon2id$garbage",
            "$2b$99$x",
        ] {
            assert!(!verify(stored, ""), "{stored}");
            assert!(!verify(stored, "password"), "{stored}");
        }
    }
}

//! MS-CHAPv2 (RFC 2759) and EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2), server side.
//! (issue 12: the inner-method helper completes this module.)

use md4::{Digest, Md4};

/// NtPasswordHash (RFC 2759 §8.3): MD4 of the password in UTF-16LE.
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut h = Md4::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_le_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2759_9_2_password_hash() {
        // RFC 2759 §9.2: Password "clientPass".
        assert_eq!(
            nt_password_hash("clientPass"),
            hex_literal::hex!("44EBBA8D5312B8D611474411F56989AE")
        );
    }
}

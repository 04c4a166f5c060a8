//! EAP-MD5-Challenge (RFC 3748 §5.4, the CHAP computation of RFC 1994 §4.1).
//!
//! Only used for MAB over EAP-MD5 (Juniper EX `mac-radius`, Dell): the switch sends the MAC as
//! identity and as password. RFC 3748 §5.4 calls MD5-Challenge unfit for anything else (no
//! mutual authentication, no keys), which is why the conversation offers it only to switches
//! configured for it.
//!
//! ```text
//!  Request:  Code=1 Id Length Type=4 | Value-Size=16 | Challenge(16)
//!  Response: Code=2 Id Length Type=4 | Value-Size=16 | MD5(Id ‖ secret ‖ Challenge) | Name
//! ```

use ::md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::packet::{Code, EapType, encode};

/// EAP-Request/MD5-Challenge (full EAP packet) with identifier `id` and a 16-octet challenge
/// the caller drew at random (no RNG here). No Name: RFC 3748 §5.4 makes it optional.
pub fn challenge_request(id: u8, challenge: &[u8; 16]) -> Vec<u8> {
    let mut data = Vec::with_capacity(17);
    data.push(16);
    data.extend_from_slice(challenge);
    encode(Code::Request, id, EapType::Md5Challenge, &data)
}

/// The expected Value for a response (RFC 1994 §4.1: MD5 over Identifier ‖ secret ‖
/// Challenge).
pub fn response_value(id: u8, challenge: &[u8; 16], password: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(password);
    h.update(challenge);
    h.finalize().into()
}

/// The Type-Data of an EAP-Response/MD5-Challenge (the client side; tests and the load
/// generator): Value-Size 16, the value, then `name`.
pub fn response_data(id: u8, challenge: &[u8; 16], password: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + name.len());
    out.push(16);
    out.extend_from_slice(&response_value(id, challenge, password));
    out.extend_from_slice(name);
    out
}

/// Checks an EAP-Response/MD5-Challenge. `response_data` is what follows the Type octet:
/// Value-Size, Value, Name. A Value-Size other than 16 (MD5's output) or a truncated value is
/// refused. The comparison is constant-time.
pub fn verify(id: u8, challenge: &[u8; 16], password: &[u8], response_data: &[u8]) -> bool {
    let Some((&size, rest)) = response_data.split_first() else {
        return false;
    };
    if size != 16 || rest.len() < 16 {
        return false;
    }
    let expected = response_value(id, challenge, password);
    expected.ct_eq(&rest[..16]).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::EapPacket;
    use proptest::prelude::*;

    const CHALLENGE: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn request_is_a_well_formed_md5_challenge() {
        let req = challenge_request(7, &CHALLENGE);
        let p = EapPacket::decode(&req).unwrap();
        assert_eq!(p.code, Code::Request);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.typ, Some(EapType::Md5Challenge));
        assert_eq!(p.data[0], 16);
        assert_eq!(&p.data[1..], &CHALLENGE);
    }

    #[test]
    fn rfc1994_value_matches_an_independent_md5() {
        // MD5(0x07 ‖ "secret" ‖ challenge), computed once over the concatenation.
        let mut all = vec![7u8];
        all.extend_from_slice(b"secret");
        all.extend_from_slice(&CHALLENGE);
        let whole: [u8; 16] = Md5::digest(&all).into();
        assert_eq!(response_value(7, &CHALLENGE, b"secret"), whole);
        // And a known MD5 vector to pin the primitive (RFC 1321 §A.5: MD5("abc")).
        let abc: [u8; 16] = Md5::digest(b"abc").into();
        assert_eq!(abc, hex_literal::hex!("900150983cd24fb0d6963f7d28e17f72"));
    }

    #[test]
    fn mab_response_verifies_and_wrong_password_or_id_does_not() {
        let mac = b"00:11:22:33:44:55";
        let data = response_data(9, &CHALLENGE, mac, mac);
        assert!(verify(9, &CHALLENGE, mac, &data));
        assert!(!verify(9, &CHALLENGE, b"00:11:22:33:44:56", &data));
        assert!(!verify(10, &CHALLENGE, mac, &data));
        let mut other = CHALLENGE;
        other[0] ^= 1;
        assert!(!verify(9, &other, mac, &data));
    }

    #[test]
    fn malformed_responses_are_refused() {
        let good = response_data(1, &CHALLENGE, b"pw", b"");
        assert!(verify(1, &CHALLENGE, b"pw", &good));
        assert!(!verify(1, &CHALLENGE, b"pw", &[]));
        assert!(!verify(1, &CHALLENGE, b"pw", &good[..16]));
        let mut wrong_size = good.clone();
        wrong_size[0] = 15;
        assert!(!verify(1, &CHALLENGE, b"pw", &wrong_size));
    }

    proptest! {
        #[test]
        fn verify_never_panics(id in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = verify(id, &CHALLENGE, b"pw", &data);
        }
    }
}

//! Property tests: encode/decode round trips, signatures with random secrets, hiding round
//! trips, and decode never panicking.

use ironfence_radius::dict::{self, describe};
use ironfence_radius::{
    Code, MAX_ATTRIBUTES_LEN, Packet, PacketBuilder, decrypt_mppe_key, decrypt_tunnel_password,
    unhide_user_password, verify_request, verify_response,
};
use proptest::prelude::*;

/// An attribute the decoder accepts with this value: free-form types get any value, fixed-size
/// dictionary types get a value of the right size. Message-Authenticator is excluded (the
/// encoder owns it).
fn attribute() -> impl Strategy<Value = (u8, Vec<u8>)> {
    prop_oneof![
        // Free-form: text/octets attributes and unknown types.
        (
            prop::sample::select(vec![
                1u8, 11, 18, 24, 25, 26, 30, 31, 32, 33, 44, 79, 87, 150, 241, 255
            ]),
            prop::collection::vec(any::<u8>(), 0..=253)
        ),
        // 4-octet dictionary attributes.
        (
            prop::sample::select(vec![4u8, 5, 6, 8, 27, 40, 55, 61, 64, 65, 85, 101]),
            prop::collection::vec(any::<u8>(), 4..=4)
        ),
        (Just(95u8), prop::collection::vec(any::<u8>(), 16..=16)),
    ]
}

fn attribute_list() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(attribute(), 0..24).prop_map(|mut v| {
        // Keep within the builder's limit.
        let mut total = 0;
        v.retain(|(_, val)| {
            total += 2 + val.len();
            total <= MAX_ATTRIBUTES_LEN
        });
        v
    })
}

fn build(code: Code, id: u8, attrs: &[(u8, Vec<u8>)]) -> PacketBuilder {
    let mut b = PacketBuilder::new(code, id);
    for (t, v) in attrs {
        b.add(*t, v).unwrap();
    }
    b
}

fn decoded_attrs(p: &Packet<'_>) -> Vec<(u8, Vec<u8>)> {
    p.attributes()
        .filter(|a| a.typ != dict::MESSAGE_AUTHENTICATOR)
        .map(|a| (a.typ, a.value.to_vec()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn request_round_trip(
        attrs in attribute_list(),
        id in any::<u8>(),
        ra in any::<[u8; 16]>(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        ma in any::<bool>(),
    ) {
        let b = build(Code::AccessRequest, id, &attrs);
        let bytes = b.encode_request(ra, &secret, ma);
        let p = Packet::decode(&bytes).unwrap();
        prop_assert_eq!(p.code(), Code::AccessRequest);
        prop_assert_eq!(p.identifier(), id);
        prop_assert_eq!(p.authenticator(), &ra);
        prop_assert_eq!(decoded_attrs(&p), attrs.clone());
        let has_eap = attrs.iter().any(|(t, _)| *t == dict::EAP_MESSAGE);
        prop_assert_eq!(p.has_message_authenticator(), ma || has_eap);
        if p.has_message_authenticator() {
            prop_assert_eq!(p.attributes().next().unwrap().typ, dict::MESSAGE_AUTHENTICATOR);
        }
        let check = verify_request(&p, &secret).unwrap();
        prop_assert_eq!(check.message_authenticator, ma || has_eap);
        let mut wrong = secret.clone();
        wrong[0] ^= 1;
        prop_assert_eq!(verify_request(&p, &wrong).is_ok(), !p.has_message_authenticator());
        // describe never panics and has one entry per attribute at least.
        let _ = describe(&p).to_string();
    }

    #[test]
    fn accounting_and_coa_round_trip(
        attrs in attribute_list(),
        id in any::<u8>(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        ma in any::<bool>(),
        which in 0..3usize,
    ) {
        let code = [Code::AccountingRequest, Code::CoaRequest, Code::DisconnectRequest][which];
        let bytes = build(code, id, &attrs).encode_accounting_request(&secret, ma);
        let p = Packet::decode(&bytes).unwrap();
        prop_assert_eq!(p.code(), code);
        prop_assert_eq!(decoded_attrs(&p), attrs.clone());
        prop_assert!(verify_request(&p, &secret).is_ok());
        let mut wrong = secret.clone();
        wrong.push(0);
        prop_assert!(verify_request(&p, &wrong).is_err());
    }

    #[test]
    fn reply_round_trip(
        attrs in attribute_list(),
        req_attrs in attribute_list(),
        id in any::<u8>(),
        ra in any::<[u8; 16]>(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        req_ma in any::<bool>(),
        code in prop::sample::select(vec![
            Code::AccessAccept, Code::AccessReject, Code::AccessChallenge,
            Code::AccountingResponse, Code::CoaAck, Code::DisconnectNak,
        ]),
    ) {
        let req_bytes = build(Code::AccessRequest, id, &req_attrs).encode_request(ra, &secret, req_ma);
        let req = Packet::decode(&req_bytes).unwrap();
        let mut out = Vec::new();
        build(code, id.wrapping_add(1), &attrs).encode_response_into(&req, &secret, &mut out);
        let p = verify_response(&out, id, &ra, &secret).unwrap();
        prop_assert_eq!(p.code(), code);
        prop_assert_eq!(p.identifier(), id);
        prop_assert_eq!(decoded_attrs(&p), attrs.clone());
        if code.is_access_reply() {
            prop_assert_eq!(p.attributes().next().unwrap().typ, dict::MESSAGE_AUTHENTICATOR);
        }
        let mut wrong = secret.clone();
        wrong[0] ^= 0x80;
        prop_assert!(verify_response(&out, id, &ra, &wrong).is_err());
        let mut other_ra = ra;
        other_ra[15] ^= 1;
        prop_assert!(verify_response(&out, id, &other_ra, &secret).is_err());
    }

    #[test]
    fn user_password_round_trip(
        password in prop::collection::vec(1u8..=255, 0..=128),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        ra in any::<[u8; 16]>(),
    ) {
        let mut b = PacketBuilder::new(Code::AccessRequest, 0);
        b.add_user_password(&password, &secret, &ra).unwrap();
        let hidden = b.attributes().next().unwrap().value.to_vec();
        prop_assert_eq!(hidden.len(), password.len().div_ceil(16).max(1) * 16);
        prop_assert_eq!(unhide_user_password(&hidden, &secret, &ra).unwrap(), password);
    }

    #[test]
    fn tunnel_password_and_mppe_round_trip(
        password in prop::collection::vec(any::<u8>(), 0..=239),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        ra in any::<[u8; 16]>(),
        salt in any::<[u8; 2]>(),
        tag in 0u8..=0x1f,
    ) {
        let mut b = PacketBuilder::new(Code::AccessAccept, 0);
        b.add_tunnel_password(tag, &password, &secret, &ra, salt).unwrap();
        b.add_mppe_key(dict::microsoft::MPPE_RECV_KEY, &password, &secret, &ra, salt).unwrap();
        let mut attrs = b.attributes();
        let tp = attrs.next().unwrap().value;
        prop_assert_eq!(tp[1] & 0x80, 0x80);
        prop_assert_eq!(decrypt_tunnel_password(tp, &secret, &ra).unwrap(), (tag, password.clone()));
        let vsa = attrs.next().unwrap().value;
        prop_assert_eq!(decrypt_mppe_key(&vsa[6..], &secret, &ra).unwrap(), password);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(p) = Packet::decode(&bytes) {
            for a in p.attributes() {
                prop_assert!(a.value.len() <= 253);
            }
            let _ = verify_request(&p, b"secret");
            let _ = describe(&p).to_string();
            let _ = p.vendor_attributes(9).count();
        }
        let _ = verify_response(&bytes, 0, &[0; 16], b"secret");
        let _ = unhide_user_password(&bytes, b"s", &[0; 16]);
        let _ = decrypt_tunnel_password(&bytes, b"s", &[0; 16]);
    }

    /// Structured fuzzing: a valid header with a random attribute area, so the attribute
    /// parser is reached far more often than with fully random bytes.
    #[test]
    fn decode_never_panics_structured(
        code in any::<u8>(),
        attrs in prop::collection::vec(any::<u8>(), 0..400),
        extra in 0usize..4,
        shrink in 0usize..4,
    ) {
        let len = (20 + attrs.len()).saturating_sub(shrink);
        let mut bytes = vec![code, 1, (len >> 8) as u8, len as u8];
        bytes.extend_from_slice(&[7; 16]);
        bytes.extend_from_slice(&attrs);
        bytes.resize(bytes.len() + extra, 0);
        if let Ok(p) = Packet::decode(&bytes) {
            prop_assert_eq!(p.as_bytes().len(), len);
            let total: usize = p.attributes().map(|a| a.value.len() + 2).sum();
            prop_assert_eq!(total, len - 20);
            let _ = describe(&p).to_string();
            let _ = verify_request(&p, b"secret");
        }
    }
}

//! The cluster hop: forwarding re-signs, relaying verifies and re-signs, on the RFC 2865 §7
//! example packets (secret "xyzzy5461" as the switch's).

use hex_literal::hex;
use ironfence_radius::hop::{
    Hop, HopError, HopFlags, IRONFENCE_HOP, forward_request, relay_reply, status_server,
    verify_backend_reply,
};
use ironfence_radius::{
    Code, Packet, PacketBuilder, ResponseError, decrypt_mppe_key, decrypt_tunnel_password, dict,
    unhide_user_password, verify_request, verify_response,
};
use std::net::{IpAddr, Ipv4Addr};

const SWITCH: &[u8] = b"xyzzy5461";
const HOP: &[u8] = b"0123456789abcdef0123456789abcdef";

// RFC 2865 §7.1 (User-Password "arctangent").
const TELNET_REQUEST: [u8; 56] = hex!(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
    "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
    "01 10 05 06 00 00 00 03"
);
// RFC 2865 §7.2 (CHAP, no CHAP-Challenge: the Request Authenticator is the challenge).
const CHAP_REQUEST: [u8; 71] = hex!(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e"
    "0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04"
    "06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
);

fn hop() -> Hop {
    Hop {
        flags: HopFlags::default(),
        request_id: 0x0123_4567_89ab_cdef,
        client: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 16))),
    }
}

#[test]
fn hop_attribute_round_trips_and_refuses_garbage() {
    for client in [
        None,
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        Some("2001:db8::1".parse().unwrap()),
    ] {
        let h = Hop {
            flags: HopFlags::new(true, false),
            request_id: 42,
            client,
        };
        assert_eq!(Hop::decode(&h.encode()), Ok(h));
    }
    let good = hop().encode();
    assert_eq!(good.len(), 15);
    for bad in [
        &[][..],
        &[1][..],
        &good[..14],
        &[&good[..], &[0][..]].concat()[..],
        &[&[2u8][..], &good[1..]].concat()[..], // unknown version
    ] {
        assert_eq!(Hop::decode(bad), Err(HopError::Malformed), "{bad:?}");
    }
    assert!(HopFlags::new(true, true).maintenance() && HopFlags::new(true, true).read_only());
}

#[test]
fn forwarded_access_request_rehides_the_password_and_keeps_the_attributes() {
    let sw = Packet::decode(&TELNET_REQUEST).unwrap();
    let auth = [7u8; 16];
    let bytes = forward_request(&sw, SWITCH, HOP, 99, auth, &hop()).unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.code(), Code::AccessRequest);
    assert_eq!(p.identifier(), 99);
    assert_eq!(p.authenticator(), &auth);
    // Signed with the hop secret, MA first; not with the switch's.
    assert!(verify_request(&p, HOP).unwrap().message_authenticator);
    assert!(verify_request(&p, SWITCH).is_err());
    assert_eq!(
        p.attributes().next().unwrap().typ,
        dict::MESSAGE_AUTHENTICATOR
    );
    let pw = unhide_user_password(p.get(dict::USER_PASSWORD).unwrap(), HOP, &auth).unwrap();
    assert_eq!(pw, b"arctangent");
    assert_eq!(p.get_str(dict::USER_NAME), Some("nemo"));
    assert_eq!(p.get_u32(dict::NAS_PORT), Some(3));
    assert_eq!(Hop::find(&p), Ok(hop()));
}

#[test]
fn chap_relying_on_the_authenticator_gets_it_as_chap_challenge() {
    let sw = Packet::decode(&CHAP_REQUEST).unwrap();
    let bytes = forward_request(&sw, SWITCH, HOP, 1, [9; 16], &hop()).unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.get(dict::CHAP_CHALLENGE), Some(&CHAP_REQUEST[4..20]));
    assert_eq!(p.get(dict::CHAP_PASSWORD), sw.get(dict::CHAP_PASSWORD));
    // A request with its own CHAP-Challenge keeps it and gets no second one.
    let mut b = PacketBuilder::new(Code::AccessRequest, 3);
    b.add(dict::CHAP_PASSWORD, &[1; 17]).unwrap();
    b.add(dict::CHAP_CHALLENGE, b"challenge-16-oct").unwrap();
    let own = b.encode_request([1; 16], SWITCH, true);
    let bytes = forward_request(
        &Packet::decode(&own).unwrap(),
        SWITCH,
        HOP,
        1,
        [9; 16],
        &hop(),
    )
    .unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(
        p.get_all(dict::CHAP_CHALLENGE).collect::<Vec<_>>(),
        vec![b"challenge-16-oct"]
    );
}

#[test]
fn proxy_state_order_is_kept_and_a_switch_hop_attribute_is_dropped() {
    let mut b = PacketBuilder::new(Code::AccessRequest, 5);
    b.add(dict::PROXY_STATE, b"first").unwrap();
    b.add_str(dict::USER_NAME, "aabbccddeeff").unwrap();
    b.add(
        IRONFENCE_HOP,
        &Hop {
            request_id: 666,
            ..hop()
        }
        .encode(),
    )
    .unwrap();
    b.add(dict::PROXY_STATE, b"second").unwrap();
    let sw_bytes = b.encode_request([3; 16], SWITCH, true);
    let sw = Packet::decode(&sw_bytes).unwrap();
    let p_bytes = forward_request(&sw, SWITCH, HOP, 1, [4; 16], &hop()).unwrap();
    let p = Packet::decode(&p_bytes).unwrap();
    let states: Vec<&[u8]> = p.get_all(dict::PROXY_STATE).collect();
    assert_eq!(states, vec![&b"first"[..], &b"second"[..]]);
    assert_eq!(
        Hop::find(&p).unwrap().request_id,
        hop().request_id,
        "the switch's forged hop is gone"
    );
}

#[test]
fn forwarded_accounting_request_verifies_with_the_hop_secret() {
    let mut b = PacketBuilder::new(Code::AccountingRequest, 8);
    b.add_u32(dict::ACCT_STATUS_TYPE, 1).unwrap();
    b.add_str(dict::CALLING_STATION_ID, "aa-bb-cc-dd-ee-ff")
        .unwrap();
    let sw_bytes = b.encode_accounting_request(SWITCH, false);
    let sw = Packet::decode(&sw_bytes).unwrap();
    let bytes = forward_request(&sw, SWITCH, HOP, 200, [0; 16], &hop()).unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert!(verify_request(&p, HOP).unwrap().message_authenticator);
    assert!(verify_request(&p, SWITCH).is_err());
    assert_eq!(p.get_u32(dict::ACCT_STATUS_TYPE), Some(1));
    assert_eq!(p.identifier(), 200);
}

/// The backend's answer (as its endpoint would sign it, with the hop secret) to `hop_req`.
fn backend_accept(hop_req: &Packet<'_>) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccessAccept, hop_req.identifier());
    b.add_tagged_u32(dict::TUNNEL_TYPE, 0, 13).unwrap();
    b.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, "100")
        .unwrap();
    b.add_tunnel_password(1, b"tunnel-secret", HOP, hop_req.authenticator(), [0x81, 2])
        .unwrap();
    b.add_mppe_key(16, &[0x5a; 32], HOP, hop_req.authenticator(), [0x82, 3])
        .unwrap();
    b.add_mppe_key(17, &[0xa5; 32], HOP, hop_req.authenticator(), [0x83, 4])
        .unwrap();
    b.copy_proxy_state(hop_req).unwrap();
    b.encode_response(hop_req, HOP)
}

#[test]
fn relayed_reply_is_verified_then_resigned_for_the_switch_with_keys_rehidden() {
    let mut b = PacketBuilder::new(Code::AccessRequest, 77);
    b.add_str(dict::USER_NAME, "aabbccddeeff").unwrap();
    b.add(dict::PROXY_STATE, b"ps").unwrap();
    let sw_bytes = b.encode_request([5; 16], SWITCH, true);
    let sw = Packet::decode(&sw_bytes).unwrap();
    let hop_auth = [6u8; 16];
    let hop_bytes = forward_request(&sw, SWITCH, HOP, 12, hop_auth, &hop()).unwrap();
    let hop_req = Packet::decode(&hop_bytes).unwrap();
    let reply_bytes = backend_accept(&hop_req);

    let reply = verify_backend_reply(&reply_bytes, 12, &hop_auth, HOP).unwrap();
    let out = relay_reply(&reply, HOP, &hop_auth, &sw, SWITCH)
        .unwrap()
        .encode_response(&sw, SWITCH);
    // What the switch checks: its identifier, its secret, MA first.
    let p = verify_response(&out, 77, sw.authenticator(), SWITCH).unwrap();
    assert_eq!(p.code(), Code::AccessAccept);
    assert_eq!(
        p.attributes().next().unwrap().typ,
        dict::MESSAGE_AUTHENTICATOR
    );
    assert_eq!(
        p.get_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID),
        Some((0, "100"))
    );
    assert_eq!(p.get(dict::PROXY_STATE), Some(&b"ps"[..]));
    let (tag, pw) = decrypt_tunnel_password(
        p.get(dict::TUNNEL_PASSWORD).unwrap(),
        SWITCH,
        sw.authenticator(),
    )
    .unwrap();
    assert_eq!((tag, pw.as_slice()), (1, &b"tunnel-secret"[..]));
    let keys: Vec<(u8, Vec<u8>)> = p
        .vendor_attributes(dict::vendor::MICROSOFT)
        .map(|(t, v)| (t, decrypt_mppe_key(v, SWITCH, sw.authenticator()).unwrap()))
        .collect();
    assert_eq!(keys, vec![(16, vec![0x5a; 32]), (17, vec![0xa5; 32])]);
}

#[test]
fn a_backend_reply_with_a_wrong_authenticator_is_refused() {
    let sw = Packet::decode(&TELNET_REQUEST).unwrap();
    let hop_auth = [6u8; 16];
    let hop_bytes = forward_request(&sw, SWITCH, HOP, 12, hop_auth, &hop()).unwrap();
    let hop_req = Packet::decode(&hop_bytes).unwrap();
    let mut reply = backend_accept(&hop_req);
    // Signed with another secret.
    let other = PacketBuilder::new(Code::AccessAccept, 12).encode_response(&hop_req, b"other");
    assert_eq!(
        verify_backend_reply(&other, 12, &hop_auth, HOP).unwrap_err(),
        HopError::Response(ResponseError::BadResponseAuthenticator)
    );
    // One bit flipped in an attribute.
    let last = reply.len() - 1;
    reply[last] ^= 1;
    assert!(verify_backend_reply(&reply, 12, &hop_auth, HOP).is_err());
    // Answering another identifier.
    let reply = backend_accept(&hop_req);
    assert!(verify_backend_reply(&reply, 13, &hop_auth, HOP).is_err());
    // An access reply without MA is refused even when its authenticator is right.
    let mut raw = Vec::new();
    PacketBuilder::new(Code::AccessAccept, 12)
        .encode_reply_raw(12, &hop_auth, HOP, false, &mut raw);
    assert_eq!(
        verify_backend_reply(&raw, 12, &hop_auth, HOP).unwrap_err(),
        HopError::MissingMessageAuthenticator
    );
}

#[test]
fn status_server_probe_and_its_flagged_answer() {
    let probe = status_server(4, [8; 16], HOP);
    let p = Packet::decode(&probe).unwrap();
    assert_eq!(p.code(), Code::StatusServer);
    assert!(verify_request(&p, HOP).unwrap().message_authenticator);
    let mut b = PacketBuilder::new(Code::AccessAccept, 4);
    let h = Hop {
        flags: HopFlags::new(true, false),
        request_id: 0,
        client: None,
    };
    b.add(IRONFENCE_HOP, &h.encode()).unwrap();
    let answer = b.encode_response(&p, HOP);
    let a = verify_backend_reply(&answer, 4, &[8; 16], HOP).unwrap();
    assert!(Hop::find(&a).unwrap().flags.maintenance());
}

#[test]
fn accounting_response_is_checked_against_the_computed_request_authenticator() {
    let mut b = PacketBuilder::new(Code::AccountingRequest, 9);
    b.add_u32(dict::ACCT_STATUS_TYPE, 1).unwrap();
    b.add(dict::PROXY_STATE, b"nas-proxy").unwrap();
    let sw_bytes = b.encode_accounting_request(SWITCH, false);
    let sw = Packet::decode(&sw_bytes).unwrap();
    // The authenticator passed in is not the one sent: an Accounting-Request's is computed.
    let bytes = forward_request(&sw, SWITCH, HOP, 30, [0xee; 16], &hop()).unwrap();
    let hop_req = Packet::decode(&bytes).unwrap();
    assert_ne!(hop_req.authenticator(), &[0xee; 16]);
    let mut r = PacketBuilder::new(Code::AccountingResponse, 30);
    r.copy_proxy_state(&hop_req).unwrap();
    let answer = r.encode_response(&hop_req, HOP);
    assert!(verify_backend_reply(&answer, 30, &[0xee; 16], HOP).is_err());
    let ok = verify_backend_reply(&answer, 30, hop_req.authenticator(), HOP).unwrap();
    let out = relay_reply(&ok, HOP, hop_req.authenticator(), &sw, SWITCH)
        .unwrap()
        .encode_response(&sw, SWITCH);
    let p = verify_response(&out, 9, sw.authenticator(), SWITCH).unwrap();
    assert_eq!(p.code(), Code::AccountingResponse);
    assert_eq!(p.get(dict::PROXY_STATE), Some(&b"nas-proxy"[..]));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn attrs() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        // Types a switch may send (no Message-Authenticator: the encoder owns it), including
        // a forged Ironfence-Hop and hidden values of any size.
        let typ = prop::sample::select(vec![1u8, 2, 3, 4, 24, 26, 31, 33, 60, 79, 224]);
        prop::collection::vec((typ, prop::collection::vec(any::<u8>(), 1..64)), 0..12)
    }

    proptest! {
        /// Whatever a switch sent, a forwarded request verifies with the hop secret, carries
        /// exactly our hop, keeps the Proxy-State values in order, and a password survives.
        #[test]
        fn forwarding_any_request_verifies_and_carries_one_hop(
            attrs in attrs(),
            password in prop::collection::vec(1u8..=255, 0..40),
            acct in any::<bool>(),
        ) {
            let code = if acct { Code::AccountingRequest } else { Code::AccessRequest };
            let mut b = PacketBuilder::new(code, 1);
            for (t, v) in &attrs {
                if *t == dict::USER_PASSWORD || (*t == dict::EAP_MESSAGE) {
                    continue;
                }
                b.add(*t, v).unwrap();
            }
            if !acct {
                b.add_user_password(&password, SWITCH, &[2; 16]).unwrap();
            }
            let bytes = if acct {
                b.encode_accounting_request(SWITCH, true)
            } else {
                b.encode_request([2; 16], SWITCH, true)
            };
            let Ok(sw) = Packet::decode(&bytes) else { return Ok(()) };
            let Ok(out) = forward_request(&sw, SWITCH, HOP, 9, [5; 16], &hop()) else {
                return Ok(()); // too long once re-signed: refused, not truncated
            };
            let p = Packet::decode(&out).unwrap();
            prop_assert!(verify_request(&p, HOP).unwrap().message_authenticator);
            prop_assert_eq!(Hop::find(&p), Ok(hop()));
            let before: Vec<&[u8]> = sw.get_all(dict::PROXY_STATE).collect();
            let after: Vec<&[u8]> = p.get_all(dict::PROXY_STATE).collect();
            prop_assert_eq!(before, after);
            if !acct {
                let pw = unhide_user_password(p.get(dict::USER_PASSWORD).unwrap(), HOP, &[5; 16]).unwrap();
                prop_assert_eq!(pw, password);
            }
        }
    }
}

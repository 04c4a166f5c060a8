//! Error paths of decode/verify, builder behaviour, tagged attributes, VSAs, hidden values.

use std::net::Ipv4Addr;

use hex_literal::hex;
use ironfence_radius::dict::{self, describe};
use ironfence_radius::{
    AuthError, Code, DecodeError, EncodeError, MAX_ATTRIBUTES_LEN, Packet, PacketBuilder,
    ResponseError, decrypt_mppe_key, decrypt_tunnel_password, unhide_user_password, verify_request,
    verify_response,
};

const SECRET: &[u8] = b"s3cr3t-long-enough-for-tests";
const RA: [u8; 16] = hex!("00112233445566778899aabbccddeeff");

fn header(code: u8, len: u16) -> Vec<u8> {
    let mut v = vec![code, 1];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&RA);
    v
}

fn with_attrs(code: u8, attrs: &[u8]) -> Vec<u8> {
    let mut v = header(code, (20 + attrs.len()) as u16);
    v.extend_from_slice(attrs);
    v
}

#[test]
fn decode_errors() {
    // Shorter than a header.
    let e = Packet::decode(&[1, 0, 0]).unwrap_err();
    assert_eq!(e, DecodeError::TooShort { len: 3 });
    assert_eq!(e.reason(), "bad_length");
    // Length field below 20 and above 4096.
    assert_eq!(
        Packet::decode(&header(1, 19)).unwrap_err(),
        DecodeError::BadLength { length: 19 }
    );
    let mut big = header(1, 4097);
    big.resize(5000, 0);
    let e = Packet::decode(&big).unwrap_err();
    assert_eq!(e, DecodeError::BadLength { length: 4097 });
    assert_eq!(e.reason(), "bad_length");
    // Length larger than the datagram.
    let e = Packet::decode(&header(1, 22)).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Truncated {
            length: 22,
            available: 20
        }
    );
    assert_eq!(e.reason(), "truncated");
    // Attribute running past the end.
    let e = Packet::decode(&with_attrs(1, &[1, 5, b'a', b'b'])).unwrap_err();
    assert_eq!(e, DecodeError::MalformedAttribute { offset: 20, typ: 1 });
    assert_eq!(e.reason(), "malformed_attribute");
    // Zero-length and length-1 attributes (would loop forever in a naive parser).
    for l in [0u8, 1] {
        let e = Packet::decode(&with_attrs(1, &[1, l, 1, 3, b'x'])).unwrap_err();
        assert_eq!(e, DecodeError::MalformedAttribute { offset: 20, typ: 1 });
    }
    // A lone type octet at the end.
    let e = Packet::decode(&with_attrs(1, &[1, 3, b'x', 31])).unwrap_err();
    assert_eq!(
        e,
        DecodeError::MalformedAttribute {
            offset: 23,
            typ: 31
        }
    );
    // Message-Authenticator of the wrong size: the packet is malformed.
    for vlen in [15usize, 0] {
        let typ = dict::MESSAGE_AUTHENTICATOR;
        let mut a = vec![typ, (vlen + 2) as u8];
        a.resize(vlen + 2, 0);
        let e = Packet::decode(&with_attrs(1, &a)).unwrap_err();
        assert_eq!(e, DecodeError::BadAttributeLength { typ, len: vlen });
        assert_eq!(e.reason(), "bad_attribute_length");
    }
    // Two Message-Authenticators.
    let mut a = vec![80, 18];
    a.extend_from_slice(&[0; 16]);
    a.extend_from_slice(&a.clone());
    let e = Packet::decode(&with_attrs(1, &a)).unwrap_err();
    assert_eq!(e, DecodeError::DuplicateMessageAuthenticator);
    assert_eq!(e.reason(), "duplicate_message_authenticator");
}

/// RFC 6929 §2.8: a standard attribute of the wrong length is an invalid attribute: the
/// packet stays, the attribute is ignored by the accessors and reported.
#[test]
fn wrong_length_standard_attributes_are_invalid_not_fatal() {
    for (typ, vlen) in [
        (dict::NAS_PORT, 3usize),
        (dict::NAS_PORT, 5),
        (dict::NAS_IP_ADDRESS, 2),
        (dict::NAS_IP_ADDRESS, 5),
        (dict::EVENT_TIMESTAMP, 8),
        (dict::TUNNEL_TYPE, 3),
        (dict::NAS_IPV6_ADDRESS, 4),
    ] {
        let mut a = vec![typ, (vlen + 2) as u8];
        a.resize(vlen + 2, 7);
        // A valid User-Name after it.
        a.extend_from_slice(&[dict::USER_NAME, 5, b'b', b'o', b'b']);
        let v = with_attrs(4, &a);
        let p = Packet::decode(&v).unwrap_or_else(|e| panic!("{typ}/{vlen}: {e}"));
        assert_eq!(p.get(typ), None, "{typ}");
        assert_eq!(p.get_u32(typ), None);
        assert_eq!(p.get_str(dict::USER_NAME), Some("bob"));
        let invalid: Vec<_> = p
            .invalid_attributes()
            .map(|a| (a.typ, a.value.len()))
            .collect();
        assert_eq!(invalid, [(typ, vlen)]);
        assert_eq!(p.attributes().count(), 2, "kept on the wire view");
    }
    // A second, valid instance after an invalid one is found.
    let v = with_attrs(
        4,
        &[dict::NAS_PORT, 5, 0, 0, 9, dict::NAS_PORT, 6, 0, 0, 0, 12],
    );
    let p = Packet::decode(&v).unwrap();
    assert_eq!(p.get_u32(dict::NAS_PORT), Some(12));
    // A valid packet reports none.
    let v = with_attrs(4, &[dict::NAS_PORT, 6, 0, 0, 0, 12]);
    assert_eq!(Packet::decode(&v).unwrap().invalid_attributes().count(), 0);
}

#[test]
fn decode_accepts_edge_cases() {
    // Exactly a header; octets past Length are ignored.
    let mut v = header(1, 20);
    v.extend_from_slice(&[0xff; 7]);
    let p = Packet::decode(&v).unwrap();
    assert_eq!(p.as_bytes().len(), 20);
    assert_eq!(p.attributes().count(), 0);
    // Empty (length 2) non-fixed attributes are valid; unknown types are kept.
    let v = with_attrs(1, &[1, 2, 200, 3, 9]);
    let p = Packet::decode(&v).unwrap();
    let attrs: Vec<_> = p.attributes().map(|a| (a.typ, a.value.to_vec())).collect();
    assert_eq!(attrs, vec![(1, vec![]), (200, vec![9])]);
    assert_eq!(p.get(1), Some(&[][..]));
    assert_eq!(p.get_u32(200), None);
    // Unknown codes decode; what to do with them is the server's decision.
    assert_eq!(
        Packet::decode(&header(99, 20)).unwrap().code(),
        Code::Other(99)
    );
    // Maximum size packet.
    let mut v = header(1, 4096);
    while v.len() < 4096 {
        let n = (4096 - v.len()).min(255);
        v.push(26);
        v.push(n as u8);
        v.resize(v.len() + n - 2, 0);
    }
    assert!(Packet::decode(&v).is_ok());
}

fn access_request_with_ma(secret: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccessRequest, 7);
    b.add_str(dict::USER_NAME, "aa:bb:cc:dd:ee:ff").unwrap();
    b.encode_request(RA, secret, true)
}

#[test]
fn verify_request_errors() {
    // Bad / wrong-secret Message-Authenticator on an Access-Request.
    let good = access_request_with_ma(SECRET);
    let p = Packet::decode(&good).unwrap();
    assert_eq!(
        verify_request(&p, SECRET).map(|c| c.message_authenticator),
        Ok(true)
    );
    let e = verify_request(&p, b"wrong").unwrap_err();
    assert_eq!(e, AuthError::BadMessageAuthenticator);
    assert_eq!(e.reason(), "bad_message_authenticator");
    let mut bad = good.clone();
    bad[25] ^= 1; // inside the MA value
    assert_eq!(
        verify_request(&Packet::decode(&bad).unwrap(), SECRET),
        Err(AuthError::BadMessageAuthenticator)
    );
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1; // attribute tampered with
    assert_eq!(
        verify_request(&Packet::decode(&bad).unwrap(), SECRET),
        Err(AuthError::BadMessageAuthenticator)
    );
    let mut bad = good.clone();
    bad[4] ^= 1; // Request Authenticator tampered with: covered by the MA
    assert_eq!(
        verify_request(&Packet::decode(&bad).unwrap(), SECRET),
        Err(AuthError::BadMessageAuthenticator)
    );

    // Accounting-Request authenticator.
    let mut b = PacketBuilder::new(Code::AccountingRequest, 3);
    b.add_u32(dict::ACCT_STATUS_TYPE, dict::acct_status_type::START)
        .unwrap();
    b.add_str(dict::ACCT_SESSION_ID, "0001").unwrap();
    let acct = b.encode_accounting_request(SECRET, false);
    let p = Packet::decode(&acct).unwrap();
    assert_eq!(
        verify_request(&p, SECRET).map(|c| c.message_authenticator),
        Ok(false)
    );
    let e = verify_request(&p, b"wrong").unwrap_err();
    assert_eq!(e, AuthError::BadRequestAuthenticator);
    assert_eq!(e.reason(), "bad_request_authenticator");
    let mut bad = acct.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        verify_request(&Packet::decode(&bad).unwrap(), SECRET),
        Err(AuthError::BadRequestAuthenticator)
    );

    // Accounting-Request with MA: the MA is checked too (authenticator kept valid).
    let acct_ma = b.encode_accounting_request(SECRET, true);
    assert_eq!(acct_ma[20..22], [80, 18]);
    let p = Packet::decode(&acct_ma).unwrap();
    assert_eq!(
        verify_request(&p, SECRET).map(|c| c.message_authenticator),
        Ok(true)
    );

    // Responses are not requests.
    let reply = PacketBuilder::new(Code::AccessAccept, 1)
        .encode_response(&Packet::decode(&good).unwrap(), SECRET);
    let e = verify_request(&Packet::decode(&reply).unwrap(), SECRET).unwrap_err();
    assert_eq!(e, AuthError::UnexpectedCode(Code::AccessAccept));
    assert_eq!(e.reason(), "unexpected_code");
}

/// The MA of an Accounting/CoA/Disconnect request is computed with the Authenticator field
/// zeroed, before the Request Authenticator; recompute it independently here.
#[test]
fn coa_and_disconnect_message_authenticator_construction() {
    use hmac::{Hmac, KeyInit, Mac};
    use md5::{Digest, Md5};
    for code in [
        Code::CoaRequest,
        Code::DisconnectRequest,
        Code::AccountingRequest,
    ] {
        let mut b = PacketBuilder::new(code, 42);
        b.add_str(dict::CALLING_STATION_ID, "AA-BB-CC-DD-EE-FF")
            .unwrap();
        b.add_ipv4(dict::NAS_IP_ADDRESS, Ipv4Addr::new(10, 0, 0, 1))
            .unwrap();
        let pkt = b.encode_accounting_request(SECRET, true);
        // MA over the packet with authenticator and MA zeroed.
        let mut z = pkt.clone();
        z[4..20].fill(0);
        z[22..38].fill(0);
        let mut mac = Hmac::<Md5>::new_from_slice(SECRET).unwrap();
        mac.update(&z);
        assert_eq!(mac.finalize().into_bytes()[..], pkt[22..38]);
        // Request Authenticator over the packet with the final MA and a zeroed authenticator.
        let mut z = pkt.clone();
        z[4..20].fill(0);
        let mut h = Md5::new();
        h.update(&z);
        h.update(SECRET);
        assert_eq!(h.finalize()[..], pkt[4..20]);
        let p = Packet::decode(&pkt).unwrap();
        assert!(verify_request(&p, SECRET).is_ok());
        // Tampering with the MA is detected even though it is covered by the authenticator
        // too: recompute a valid authenticator over the tampered packet.
        let mut t = pkt.clone();
        t[30] ^= 0x55;
        t[4..20].fill(0);
        let mut h = Md5::new();
        h.update(&t);
        h.update(SECRET);
        let auth = h.finalize();
        t[4..20].copy_from_slice(&auth);
        assert_eq!(
            verify_request(&Packet::decode(&t).unwrap(), SECRET),
            Err(AuthError::BadMessageAuthenticator)
        );

        // The ACK/NAK mirrors the MA of the request, and is checked by the client side.
        let ack = if code == Code::CoaRequest {
            Code::CoaAck
        } else {
            Code::DisconnectAck
        };
        let reply = PacketBuilder::new(ack, 0).encode_response(&p, SECRET);
        assert_eq!(reply[1], 42);
        assert_eq!(reply[20..22], [80, 18]);
        assert!(verify_response(&reply, 42, p.authenticator(), SECRET).is_ok());
    }
}

#[test]
fn verify_response_errors() {
    let req_bytes = access_request_with_ma(SECRET);
    let req = Packet::decode(&req_bytes).unwrap();
    let mut b = PacketBuilder::new(Code::AccessReject, 0);
    b.add_str(dict::REPLY_MESSAGE, "no").unwrap();
    let reply = b.encode_response(&req, SECRET);
    assert!(verify_response(&reply, 7, &RA, SECRET).is_ok());

    let e = verify_response(&reply, 8, &RA, SECRET).unwrap_err();
    assert_eq!(
        e,
        ResponseError::IdentifierMismatch {
            expected: 8,
            got: 7
        }
    );
    assert_eq!(e.reason(), "identifier_mismatch");
    let e = verify_response(&reply, 7, &RA, b"wrong").unwrap_err();
    assert_eq!(e, ResponseError::BadResponseAuthenticator);
    assert_eq!(e.reason(), "bad_response_authenticator");
    let mut other_ra = RA;
    other_ra[0] ^= 1;
    assert_eq!(
        verify_response(&reply, 7, &other_ra, SECRET),
        Err(ResponseError::BadResponseAuthenticator)
    );
    let e = verify_response(&reply[..10], 7, &RA, SECRET).unwrap_err();
    assert_eq!(e.reason(), "bad_length");
    let e = verify_response(&req_bytes, 7, &RA, SECRET).unwrap_err();
    assert_eq!(e, ResponseError::UnexpectedCode(Code::AccessRequest));

    // A reply whose MA is wrong but whose Response Authenticator was recomputed (a forger who
    // knows MD5 of the packet but not the HMAC — the BlastRADIUS setting).
    use md5::{Digest, Md5};
    let mut forged = reply.clone();
    forged[25] ^= 1;
    let mut h = Md5::new();
    h.update(&forged[..4]);
    h.update(RA);
    h.update(&forged[20..]);
    h.update(SECRET);
    let auth = h.finalize();
    forged[4..20].copy_from_slice(&auth);
    let e = verify_response(&forged, 7, &RA, SECRET).unwrap_err();
    assert_eq!(e, ResponseError::BadMessageAuthenticator);
    assert_eq!(e.reason(), "bad_message_authenticator");
}

#[test]
fn message_authenticator_is_first_in_access_replies() {
    // Request without MA: the Access-* replies still carry it, first.
    let mut b = PacketBuilder::new(Code::AccessRequest, 9);
    b.add_str(dict::USER_NAME, "bob").unwrap();
    let req_bytes = b.encode_request(RA, SECRET, false);
    let req = Packet::decode(&req_bytes).unwrap();
    assert!(!req.has_message_authenticator());
    for code in [
        Code::AccessAccept,
        Code::AccessReject,
        Code::AccessChallenge,
    ] {
        let mut r = PacketBuilder::new(code, 0);
        r.add_str(dict::REPLY_MESSAGE, "hi").unwrap();
        r.add_tagged_u32(dict::TUNNEL_TYPE, 0, 13).unwrap();
        let mut out = Vec::with_capacity(4096);
        r.encode_response_into(&req, SECRET, &mut out);
        let p = verify_response(&out, 9, &RA, SECRET).unwrap();
        assert_eq!(p.code(), code);
        let first = p.attributes().next().unwrap();
        assert_eq!(first.typ, dict::MESSAGE_AUTHENTICATOR);
        assert_eq!(first.value.len(), 16);
        assert_eq!(p.get_str(dict::REPLY_MESSAGE), Some("hi"));
    }
    // Accounting-Response to a request without MA: none added.
    let mut a = PacketBuilder::new(Code::AccountingRequest, 1);
    a.add_u32(dict::ACCT_STATUS_TYPE, 1).unwrap();
    let acct = a.encode_accounting_request(SECRET, false);
    let acct = Packet::decode(&acct).unwrap();
    let resp = PacketBuilder::new(Code::AccountingResponse, 0).encode_response(&acct, SECRET);
    assert_eq!(resp.len(), 20);
    assert!(verify_response(&resp, 1, acct.authenticator(), SECRET).is_ok());
}

#[test]
fn encode_response_into_reuses_buffer() {
    let req_bytes = access_request_with_ma(SECRET);
    let req = Packet::decode(&req_bytes).unwrap();
    let mut r = PacketBuilder::new(Code::AccessAccept, 0);
    r.add_tagged_u32(dict::TUNNEL_TYPE, 0, 13).unwrap();
    let mut out = Vec::with_capacity(4096);
    let ptr = out.as_ptr();
    for _ in 0..3 {
        r.encode_response_into(&req, SECRET, &mut out);
        assert_eq!(out.as_ptr(), ptr, "buffer was reallocated");
        assert_eq!(out.capacity(), 4096);
        assert!(verify_response(&out, 7, &RA, SECRET).is_ok());
    }
    assert_eq!(out, r.encode_response(&req, SECRET));
}

#[test]
fn tunnel_attributes_for_vlan_assignment() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 0);
    b.add_tagged_u32(dict::TUNNEL_TYPE, 0, dict::tunnel_type::VLAN)
        .unwrap();
    b.add_tagged_u32(
        dict::TUNNEL_MEDIUM_TYPE,
        0,
        dict::tunnel_medium_type::IEEE_802,
    )
    .unwrap();
    b.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, "100")
        .unwrap();
    // RFC 2868 §3.1/§3.2; §3.6 with tag 0 omitted exactly as FreeRADIUS does.
    assert_eq!(
        b.attribute_bytes(),
        hex!("40 06 00 00 00 0d  41 06 00 00 00 06  51 05 31 30 30")
    );
    // Tagged forms.
    let mut t = PacketBuilder::new(Code::AccessAccept, 0);
    t.add_tagged_u32(dict::TUNNEL_TYPE, 1, 13).unwrap();
    t.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 1, "100")
        .unwrap();
    // Tag 0 with a string whose first octet could be read as a tag: explicit 0x00.
    t.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, "\u{1}x")
        .unwrap();
    t.add_tagged_str(dict::TUNNEL_ASSIGNMENT_ID, 0, "").unwrap();
    assert_eq!(
        t.attribute_bytes(),
        hex!("40 06 01 00 00 0d  51 06 01 31 30 30  51 05 00 01 78  52 03 00")
    );
    assert_eq!(
        t.add_tagged_u32(dict::TUNNEL_TYPE, 0x20, 13).unwrap_err(),
        EncodeError::InvalidTag(0x20)
    );
    assert_eq!(
        t.add_tagged_str(81, 0x20, "x").unwrap_err().reason(),
        "invalid_tag"
    );
    assert_eq!(
        t.add_tagged_u32(64, 0, 0x0100_0000).unwrap_err(),
        EncodeError::ValueOutOfRange(0x0100_0000)
    );

    // Decode side.
    let req_bytes = access_request_with_ma(SECRET);
    let req = Packet::decode(&req_bytes).unwrap();
    let bytes = b.encode_response(&req, SECRET);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.get_tagged_u32(dict::TUNNEL_TYPE), Some((0, 13)));
    assert_eq!(p.get_u32(dict::TUNNEL_MEDIUM_TYPE), Some(6));
    assert_eq!(
        p.get_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID),
        Some((0, "100"))
    );
    let text = describe(&p).to_string();
    assert!(text.contains("Tunnel-Type = 0:VLAN"), "{text}");
    assert!(text.contains("Tunnel-Medium-Type = 0:IEEE-802"), "{text}");
    assert!(
        text.contains("Tunnel-Private-Group-Id = 0:\"100\""),
        "{text}"
    );
    let tb = t.encode_response(&req, SECRET);
    let tp = Packet::decode(&tb).unwrap();
    assert_eq!(tp.get_tagged_u32(dict::TUNNEL_TYPE), Some((1, 13)));
    assert_eq!(
        tp.get_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID),
        Some((1, "100"))
    );
    let all: Vec<_> = tp.get_all(dict::TUNNEL_PRIVATE_GROUP_ID).collect();
    assert_eq!(all, vec![&b"\x01100"[..], &b"\x00\x01x"[..]]);
}

#[test]
fn vendor_specific() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 0);
    b.add_vendor(
        dict::vendor::CISCO,
        dict::cisco::AVPAIR,
        b"subscriber:command=reauthenticate",
    )
    .unwrap();
    b.add_vendor(dict::vendor::ARUBA, dict::aruba::USER_ROLE, b"guest")
        .unwrap();
    b.add_vendor(dict::vendor::CISCO, dict::cisco::AVPAIR, b"a=b")
        .unwrap();
    // A VSA in a non-standard format and one too short for a vendor id: kept, not parsed.
    b.add(dict::VENDOR_SPECIFIC, &[0, 0, 0, 9, 1, 0]).unwrap();
    b.add(dict::VENDOR_SPECIFIC, &[1, 2]).unwrap();
    // 26, 6 + 2 + 33, vendor 9, type 1, length 2 + 33.
    assert_eq!(
        &b.attribute_bytes()[..8],
        &hex!("1a 29 00 00 00 09 01 23")[..]
    );
    let req_bytes = access_request_with_ma(SECRET);
    let req = Packet::decode(&req_bytes).unwrap();
    let bytes = b.encode_response(&req, SECRET);
    let p = Packet::decode(&bytes).unwrap();
    let cisco: Vec<_> = p.vendor_attributes(9).collect();
    assert_eq!(
        cisco,
        vec![
            (1, &b"subscriber:command=reauthenticate"[..]),
            (1, &b"a=b"[..])
        ]
    );
    assert_eq!(
        p.vendor_attributes(14823).collect::<Vec<_>>(),
        vec![(1, &b"guest"[..])]
    );
    assert_eq!(p.vendor_attributes(311).count(), 0);
    let all: Vec<_> = p.all_vendor_attributes().map(|(v, t, _)| (v, t)).collect();
    assert_eq!(all, vec![(9, 1), (14823, 1), (9, 1)]);
    let text = describe(&p).to_string();
    assert!(text.contains("Cisco-AVPair = \"a=b\""), "{text}");
    assert!(text.contains("Aruba-User-Role = \"guest\""), "{text}");
    assert!(text.contains("Vendor-Specific = 0x0102"), "{text}");
    assert_eq!(
        b.add_vendor(9, 1, &[0; 248]).unwrap_err(),
        EncodeError::ValueTooLong { len: 248 }
    );
}

#[test]
fn hidden_values_never_described() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 0);
    b.add_tunnel_password(1, b"tunnel-secret", SECRET, &RA, [0x12, 0x34])
        .unwrap();
    b.add_mppe_key(
        dict::microsoft::MPPE_SEND_KEY,
        &[0xAB; 32],
        SECRET,
        &RA,
        [0x01, 0x02],
    )
    .unwrap();
    b.add_mppe_key(
        dict::microsoft::MPPE_RECV_KEY,
        &[0xCD; 32],
        SECRET,
        &RA,
        [0x01, 0x03],
    )
    .unwrap();
    b.add_user_password(b"hunter2", SECRET, &RA).unwrap();
    b.add(dict::CHAP_PASSWORD, &[1; 17]).unwrap();
    let mut out = Vec::new();
    b.encode_reply_raw(0, &RA, SECRET, true, &mut out);
    let p = Packet::decode(&out).unwrap();
    let text = format!("{:#}", describe(&p));
    assert_eq!(text.matches("<hidden>").count(), 5, "{text}");
    for name in [
        "Tunnel-Password",
        "MS-MPPE-Send-Key",
        "MS-MPPE-Recv-Key",
        "User-Password",
        "CHAP-Password",
    ] {
        assert!(text.contains(&format!("{name} = <hidden>")), "{text}");
    }
    assert!(!text.contains("abab"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.starts_with("Access-Accept id=0 len="), "{text}");
    assert!(text.contains("\n  Message-Authenticator = 0x"), "{text}");
    // Debug of a packet prints the header only.
    let dbg = format!("{p:?}");
    assert!(
        dbg.contains("AccessAccept") && !dbg.contains("hunter2"),
        "{dbg}"
    );

    // And they decrypt.
    let tp = p.get(dict::TUNNEL_PASSWORD).unwrap();
    assert_eq!(tp[0], 1);
    assert_eq!(tp[1] & 0x80, 0x80, "salt high bit forced on");
    assert_eq!(
        decrypt_tunnel_password(tp, SECRET, &RA).unwrap(),
        (1, b"tunnel-secret".to_vec())
    );
    let keys: Vec<_> = p.vendor_attributes(dict::vendor::MICROSOFT).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].0, 16);
    assert_eq!(keys[0].1.len(), 2 + 48);
    assert_eq!(
        decrypt_mppe_key(keys[0].1, SECRET, &RA).unwrap(),
        vec![0xAB; 32]
    );
    assert_eq!(
        decrypt_mppe_key(keys[1].1, SECRET, &RA).unwrap(),
        vec![0xCD; 32]
    );
    let up = p.get(dict::USER_PASSWORD).unwrap();
    assert_eq!(up.len(), 16);
    assert_eq!(unhide_user_password(up, SECRET, &RA).unwrap(), b"hunter2");
}

#[test]
fn hidden_value_errors() {
    for bad in [&[][..], &[0; 15][..], &[0; 17][..], &[0; 144][..]] {
        let e = unhide_user_password(bad, SECRET, &RA).unwrap_err();
        assert_eq!(e, DecodeError::BadHiddenValue);
        assert_eq!(e.reason(), "bad_hidden_value");
    }
    for bad in [
        &[][..],
        &[1][..],
        &[1, 0x80, 1][..],
        &[1, 0x80, 1, 2][..],
        &[0; 3 + 17][..],
    ] {
        assert_eq!(
            decrypt_tunnel_password(bad, SECRET, &RA).unwrap_err(),
            DecodeError::BadHiddenValue
        );
    }
    // A decrypted length octet larger than the data (typically: wrong secret).
    let mut b = PacketBuilder::new(Code::AccessAccept, 0);
    b.add_tunnel_password(0, b"x", SECRET, &RA, [0, 1]).unwrap();
    let v = b.attributes().next().unwrap().value.to_vec();
    let mut wrong = 0;
    for s in 0..50u8 {
        if decrypt_tunnel_password(&v, &[s; 8], &RA).is_err() {
            wrong += 1;
        }
    }
    assert!(
        wrong > 40,
        "length check should reject most wrong secrets ({wrong}/50)"
    );

    let mut b = PacketBuilder::new(Code::AccessRequest, 0);
    assert_eq!(
        b.add_user_password(&[1; 129], SECRET, &RA).unwrap_err(),
        EncodeError::PasswordTooLong { len: 129 }
    );
    assert_eq!(
        b.add_tunnel_password(0, &[1; 240], SECRET, &RA, [0, 0])
            .unwrap_err()
            .reason(),
        "password_too_long"
    );
    b.add_tunnel_password(0, &[1; 239], SECRET, &RA, [0, 0])
        .unwrap();
    assert_eq!(b.attributes().next().unwrap().value.len(), 243);
    b.add_mppe_key(16, &[1; 239], SECRET, &RA, [0, 0]).unwrap();
    // Empty password still produces one 16-octet block (RFC 2865 §5.2).
    b.add_user_password(b"", SECRET, &RA).unwrap();
    let last = b.attributes().last().unwrap();
    assert_eq!(last.value.len(), 16);
    assert_eq!(unhide_user_password(last.value, SECRET, &RA).unwrap(), b"");
}

#[test]
fn builder_limits() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 0);
    assert_eq!(
        b.add(1, &[0; 254]).unwrap_err(),
        EncodeError::ValueTooLong { len: 254 }
    );
    assert_eq!(b.add(1, &[0; 254]).unwrap_err().reason(), "value_too_long");
    let e = b.add(dict::MESSAGE_AUTHENTICATOR, &[0; 16]).unwrap_err();
    assert_eq!(e, EncodeError::ReservedAttribute(80));
    assert_eq!(e.reason(), "reserved_attribute");
    b.add(1, &[0; 253]).unwrap();
    while b.attribute_bytes().len() + 255 <= MAX_ATTRIBUTES_LEN {
        b.add(26, &[0; 253]).unwrap();
    }
    let room = MAX_ATTRIBUTES_LEN - b.attribute_bytes().len();
    assert_eq!(
        b.add(26, &[0; 253]).unwrap_err(),
        EncodeError::PacketTooLong
    );
    b.add(26, &vec![0; room - 2]).unwrap();
    assert_eq!(b.attribute_bytes().len(), MAX_ATTRIBUTES_LEN);
    assert_eq!(b.add(26, &[]).unwrap_err().reason(), "packet_too_long");
    // Even with the MA the packet is exactly 4096 octets and valid.
    let req_bytes = access_request_with_ma(SECRET);
    let req = Packet::decode(&req_bytes).unwrap();
    let out = b.encode_response(&req, SECRET);
    assert_eq!(out.len(), 4096);
    assert!(verify_response(&out, 7, &RA, SECRET).is_ok());
    // Reset keeps working.
    b.reset(Code::AccessReject, 3);
    assert_eq!(b.attribute_bytes().len(), 0);
    assert_eq!(b.code(), Code::AccessReject);
    assert_eq!(b.identifier(), 3);
}

#[test]
fn proxy_state_and_eap_force_ma() {
    let mut b = PacketBuilder::new(Code::AccessRequest, 5);
    b.add_str(dict::USER_NAME, "u").unwrap();
    b.add(dict::PROXY_STATE, b"one").unwrap();
    b.add(dict::EAP_MESSAGE, &[2, 1, 0, 5, 1]).unwrap();
    b.add(dict::PROXY_STATE, b"two").unwrap();
    // EAP-Message makes MA mandatory (RFC 3579 §3.3) even if the caller passes false.
    let req_bytes = b.encode_request(RA, SECRET, false);
    let req = Packet::decode(&req_bytes).unwrap();
    assert!(req.has_message_authenticator());
    assert!(verify_request(&req, SECRET).is_ok());

    let mut r = PacketBuilder::new(Code::AccountingResponse, 0);
    r.copy_proxy_state(&req).unwrap();
    let out = r.encode_response(&req, SECRET);
    let p = verify_response(&out, 5, &RA, SECRET).unwrap();
    let ps: Vec<_> = p.get_all(dict::PROXY_STATE).collect();
    assert_eq!(ps, vec![&b"one"[..], &b"two"[..]]);
}

#[test]
fn describe_formats() {
    let mut b = PacketBuilder::new(Code::AccountingRequest, 2);
    b.add_u32(dict::ACCT_STATUS_TYPE, 3).unwrap();
    b.add_u32(dict::NAS_PORT_TYPE, 15).unwrap();
    b.add_u32(dict::SERVICE_TYPE, 10).unwrap();
    b.add_u32(dict::EVENT_TIMESTAMP, 1_700_000_000).unwrap();
    b.add_str(dict::CALLING_STATION_ID, "a\"b\n").unwrap();
    b.add(dict::USER_NAME, &[0xff, 0xfe]).unwrap();
    b.add(
        dict::NAS_IPV6_ADDRESS,
        &hex!("20010db8000000000000000000000001"),
    )
    .unwrap();
    b.add(dict::STATE, &[0x55; 40]).unwrap();
    b.add(250, &[1, 2]).unwrap();
    let bytes = b.encode_accounting_request(SECRET, false);
    let p = Packet::decode(&bytes).unwrap();
    let s = describe(&p).to_string();
    assert!(s.starts_with("Accounting-Request id=2 len="), "{s}");
    for want in [
        "Acct-Status-Type = Interim-Update",
        "NAS-Port-Type = Ethernet",
        "Service-Type = Call-Check",
        "Event-Timestamp = 1700000000",
        "Calling-Station-Id = \"a\\\"b\\n\"",
        "User-Name = 0xfffe",
        "NAS-IPv6-Address = 2001:db8::1",
        "… (40 octets)",
        "Attr-250 = 0x0102",
    ] {
        assert!(s.contains(want), "missing {want:?} in {s}");
    }
    assert!(s.ends_with(" }"), "{s}");
    let empty = PacketBuilder::new(Code::AccessReject, 0).encode_request(RA, SECRET, false);
    assert_eq!(
        describe(&Packet::decode(&empty).unwrap()).to_string(),
        "Access-Reject id=0 len=20 {}"
    );
}

#[test]
fn ipv4_helpers() {
    let mut b = PacketBuilder::new(Code::AccessRequest, 0);
    b.add_ipv4(dict::FRAMED_IP_ADDRESS, Ipv4Addr::new(200, 1, 2, 3))
        .unwrap();
    let bytes = b.encode_request(RA, SECRET, true);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(
        p.get_ipv4(dict::FRAMED_IP_ADDRESS),
        Some(Ipv4Addr::new(200, 1, 2, 3))
    );
    assert_eq!(p.get_ipv4(dict::NAS_IP_ADDRESS), None);
    // 0xc8 0x01 is not UTF-8.
    assert_eq!(p.get_str(dict::FRAMED_IP_ADDRESS), None);
}

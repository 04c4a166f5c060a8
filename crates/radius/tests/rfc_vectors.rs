//! Example packets from RFC 2865 §7 and RFC 5997 §6, secret "xyzzy5461".

use std::net::Ipv4Addr;

use hex_literal::hex;
use ironfence_radius::dict::{self, describe};
use ironfence_radius::{
    Code, Packet, PacketBuilder, RequestCheck, unhide_user_password, verify_request,
    verify_response,
};

const SECRET: &[u8] = b"xyzzy5461";

// RFC 2865 §7.1 "User Telnet to Specified Host".
const TELNET_REQUEST: [u8; 56] = hex!(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
    "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
    "01 10 05 06 00 00 00 03"
);
const TELNET_ACCEPT: [u8; 38] = hex!(
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf"
    "9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00"
    "0e 06 c0 a8 01 03"
);

// RFC 2865 §7.2 "Framed User Authenticating with CHAP".
const CHAP_REQUEST: [u8; 71] = hex!(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e"
    "0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04"
    "06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
);
const CHAP_ACCEPT: [u8; 56] = hex!(
    "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0"
    "3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01"
    "08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00"
    "00 01 0c 06 00 00 05 dc"
);

// RFC 5997 §6.1: Status-Server to the authentication port, and the answer.
const STATUS_AUTH: [u8; 38] = hex!(
    "0c da 00 26 8a 54 f4 68 6f b3 94 c5 28 66 e3 02"
    "18 5d 06 23 50 12 5a 66 5e 2e 1e 84 11 f3 e2 43"
    "82 20 97 c8 4f a3"
);
const STATUS_AUTH_ACCEPT: [u8; 20] =
    hex!("02 da 00 14 ef 0d 55 2a 4b f2 d6 93 ec 2b 6f e8 b5 41 1d 66");

// RFC 5997 §6.2: Status-Server to the accounting port.
const STATUS_ACCT: [u8; 38] = hex!(
    "0c b3 00 26 92 5f 6b 66 dd 5f ed 57 1f cb 1d b7"
    "ad 38 82 60 50 12 e8 d6 ea bd a9 10 87 5c d9 1f"
    "da de 26 36 78 58"
);
// The RFC prints this answer with Code 0x02, but an answer on the accounting port is an
// Accounting-Response (5): the authenticator below is MD5 over Code = 5, which is what the RFC's
// own authenticator bytes match. (With Code 2 the MD5 would be 8a11b1d0….)
const STATUS_ACCT_RESPONSE: [u8; 20] =
    hex!("05 b3 00 14 0f 6f 92 14 5f 10 7e 2f 50 4e 86 0a 48 60 66 9c");

#[test]
fn rfc2865_7_1_access_request() {
    let p = Packet::decode(&TELNET_REQUEST).unwrap();
    assert_eq!(p.code(), Code::AccessRequest);
    assert_eq!(p.identifier(), 0);
    assert_eq!(p.authenticator(), &TELNET_REQUEST[4..20]);
    assert_eq!(p.attributes().count(), 4);
    assert_eq!(p.get_str(dict::USER_NAME), Some("nemo"));
    assert_eq!(
        p.get_ipv4(dict::NAS_IP_ADDRESS),
        Some(Ipv4Addr::new(192, 168, 1, 16))
    );
    assert_eq!(p.get_u32(dict::NAS_PORT), Some(3));
    assert!(!p.has_message_authenticator());
    assert_eq!(
        verify_request(&p, SECRET),
        Ok(RequestCheck {
            message_authenticator: false
        })
    );
    let hidden = p.get(dict::USER_PASSWORD).unwrap();
    assert_eq!(
        unhide_user_password(hidden, SECRET, p.authenticator()).unwrap(),
        b"arctangent"
    );

    // Re-encode byte for byte, hiding the password again.
    let mut b = PacketBuilder::new(Code::AccessRequest, 0);
    b.add_str(dict::USER_NAME, "nemo").unwrap();
    b.add_user_password(b"arctangent", SECRET, p.authenticator())
        .unwrap();
    b.add_ipv4(dict::NAS_IP_ADDRESS, Ipv4Addr::new(192, 168, 1, 16))
        .unwrap();
    b.add_u32(dict::NAS_PORT, 3).unwrap();
    assert_eq!(
        b.encode_request(*p.authenticator(), SECRET, false),
        TELNET_REQUEST
    );

    let text = describe(&p).to_string();
    assert!(text.contains("User-Name = \"nemo\""), "{text}");
    assert!(text.contains("User-Password = <hidden>"), "{text}");
    assert!(text.contains("NAS-IP-Address = 192.168.1.16"), "{text}");
    assert!(!text.contains("0dbe"), "{text}");
}

#[test]
fn rfc2865_7_1_access_accept() {
    let req = Packet::decode(&TELNET_REQUEST).unwrap();
    let accept = verify_response(&TELNET_ACCEPT, 0, req.authenticator(), SECRET).unwrap();
    assert_eq!(accept.code(), Code::AccessAccept);
    assert_eq!(
        accept.get_u32(dict::SERVICE_TYPE),
        Some(dict::service_type::LOGIN)
    );
    assert_eq!(
        accept.get_u32(dict::LOGIN_SERVICE),
        Some(dict::login_service::TELNET)
    );
    assert_eq!(
        accept.get_ipv4(dict::LOGIN_IP_HOST),
        Some(Ipv4Addr::new(192, 168, 1, 3))
    );

    let mut b = PacketBuilder::new(Code::AccessAccept, 0);
    b.add_u32(dict::SERVICE_TYPE, 1).unwrap();
    b.add_u32(dict::LOGIN_SERVICE, 0).unwrap();
    b.add_ipv4(dict::LOGIN_IP_HOST, Ipv4Addr::new(192, 168, 1, 3))
        .unwrap();
    // Byte for byte only without Message-Authenticator: the RFC predates BlastRADIUS.
    let mut out = Vec::new();
    b.encode_reply_raw(0, req.authenticator(), SECRET, false, &mut out);
    assert_eq!(out, TELNET_ACCEPT);

    // The normal encoder adds Message-Authenticator first; the client side accepts it.
    let with_ma = b.encode_response(&req, SECRET);
    assert_eq!(with_ma.len(), TELNET_ACCEPT.len() + 18);
    assert_eq!(with_ma[20..22], [80, 18]);
    assert_eq!(with_ma[38..], TELNET_ACCEPT[20..]);
    let p = verify_response(&with_ma, 0, req.authenticator(), SECRET).unwrap();
    assert!(p.has_message_authenticator());
}

#[test]
fn rfc2865_7_2_chap() {
    let p = Packet::decode(&CHAP_REQUEST).unwrap();
    assert_eq!(p.identifier(), 1);
    assert_eq!(p.get_str(dict::USER_NAME), Some("flopsy"));
    let chap = p.get(dict::CHAP_PASSWORD).unwrap();
    assert_eq!((chap.len(), chap[0]), (17, 0x16));
    assert_eq!(p.get_u32(dict::NAS_PORT), Some(20));
    assert_eq!(
        p.get_u32(dict::SERVICE_TYPE),
        Some(dict::service_type::FRAMED)
    );
    assert_eq!(
        p.get_u32(dict::FRAMED_PROTOCOL),
        Some(dict::framed_protocol::PPP)
    );
    assert_eq!(
        verify_request(&p, SECRET).map(|c| c.message_authenticator),
        Ok(false)
    );
    let text = describe(&p).to_string();
    assert!(text.contains("CHAP-Password = <hidden>"), "{text}");
    assert!(text.contains("Service-Type = Framed-User"), "{text}");

    let mut b = PacketBuilder::new(Code::AccessRequest, 1);
    b.add_str(dict::USER_NAME, "flopsy").unwrap();
    b.add(dict::CHAP_PASSWORD, chap).unwrap();
    b.add_ipv4(dict::NAS_IP_ADDRESS, Ipv4Addr::new(192, 168, 1, 16))
        .unwrap();
    b.add_u32(dict::NAS_PORT, 20).unwrap();
    b.add_u32(dict::SERVICE_TYPE, 2).unwrap();
    b.add_u32(dict::FRAMED_PROTOCOL, 1).unwrap();
    assert_eq!(
        b.encode_request(*p.authenticator(), SECRET, false),
        CHAP_REQUEST
    );

    // The Accept: the RFC's text lists Framed-Routing = None, but its hex carries value 2,
    // and the RFC's Response Authenticator is computed over the hex; we reproduce the hex.
    let accept = verify_response(&CHAP_ACCEPT, 1, p.authenticator(), SECRET).unwrap();
    assert_eq!(
        accept.get_ipv4(dict::FRAMED_IP_ADDRESS),
        Some(Ipv4Addr::new(255, 255, 255, 254))
    );
    assert_eq!(accept.get_u32(dict::FRAMED_MTU), Some(1500));
    let mut r = PacketBuilder::new(Code::AccessAccept, 1);
    r.add_u32(dict::SERVICE_TYPE, 2).unwrap();
    r.add_u32(dict::FRAMED_PROTOCOL, 1).unwrap();
    r.add_ipv4(dict::FRAMED_IP_ADDRESS, Ipv4Addr::new(255, 255, 255, 254))
        .unwrap();
    r.add_u32(dict::FRAMED_ROUTING, 2).unwrap();
    r.add_u32(dict::FRAMED_COMPRESSION, 1).unwrap();
    r.add_u32(dict::FRAMED_MTU, 1500).unwrap();
    let mut out = Vec::new();
    r.encode_reply_raw(1, p.authenticator(), SECRET, false, &mut out);
    assert_eq!(out, CHAP_ACCEPT);
}

#[test]
fn rfc5997_status_server_auth_port() {
    let p = Packet::decode(&STATUS_AUTH).unwrap();
    assert_eq!(p.code(), Code::StatusServer);
    assert_eq!(p.identifier(), 0xda);
    assert!(p.has_message_authenticator());
    assert_eq!(
        verify_request(&p, SECRET),
        Ok(RequestCheck {
            message_authenticator: true
        })
    );
    assert!(verify_request(&p, b"xyzzy5462").is_err());

    // Re-encode the request byte for byte (MA first, computed over the random authenticator).
    let b = PacketBuilder::new(Code::StatusServer, 0xda);
    assert_eq!(
        b.encode_request(*p.authenticator(), SECRET, true),
        STATUS_AUTH
    );
    // Status-Server always carries MA (RFC 5997 §3), even if the caller forgets.
    assert_eq!(
        b.encode_request(*p.authenticator(), SECRET, false),
        STATUS_AUTH
    );

    // The RFC's answer has no Message-Authenticator; reproduce it with the raw encoder.
    let r = PacketBuilder::new(Code::AccessAccept, 0);
    let mut out = Vec::new();
    r.encode_reply_raw(0xda, p.authenticator(), SECRET, false, &mut out);
    assert_eq!(out, STATUS_AUTH_ACCEPT);
    assert!(verify_response(&STATUS_AUTH_ACCEPT, 0xda, p.authenticator(), SECRET).is_ok());

    // Our normal answer carries MA first and verifies.
    let ours = r.encode_response(&p, SECRET);
    assert_eq!(ours[1], 0xda);
    assert_eq!(ours[20..22], [80, 18]);
    let v = verify_response(&ours, 0xda, p.authenticator(), SECRET).unwrap();
    assert!(v.has_message_authenticator());
}

#[test]
fn rfc5997_status_server_acct_port() {
    let p = Packet::decode(&STATUS_ACCT).unwrap();
    assert_eq!(
        verify_request(&p, SECRET).map(|c| c.message_authenticator),
        Ok(true)
    );
    let r = PacketBuilder::new(Code::AccountingResponse, 0);
    let mut out = Vec::new();
    r.encode_reply_raw(0xb3, p.authenticator(), SECRET, false, &mut out);
    assert_eq!(out, STATUS_ACCT_RESPONSE);
    // A Status-Server answer always gets MA, also on the accounting port.
    let ours = r.encode_response(&p, SECRET);
    assert_eq!(ours[0], 5);
    assert_eq!(ours[20..22], [80, 18]);
    assert!(verify_response(&ours, 0xb3, p.authenticator(), SECRET).is_ok());
}

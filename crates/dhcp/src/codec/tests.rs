use super::*;
use proptest::prelude::*;

/// A DISCOVER as ISC dhclient 4.4 sends it (captured shape: broadcast flag clear, client id,
/// hostname, parameter request list), built by hand.
fn dhclient_discover() -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    b[8..10].copy_from_slice(&3u16.to_be_bytes());
    b[28..34].copy_from_slice(&[0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
    b[236..240].copy_from_slice(&MAGIC_COOKIE);
    b.extend_from_slice(&[53, 1, 1]);
    b.extend_from_slice(&[61, 7, 1, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
    b.extend_from_slice(&[12, 4, b'h', b'o', b's', b't']);
    b.extend_from_slice(&[55, 5, 1, 3, 6, 15, 114]);
    b.extend_from_slice(&[0, 0]); // pad
    b.push(255);
    b
}

#[test]
fn decodes_a_dhclient_discover() {
    let m = Message::decode(&dhclient_discover()).unwrap();
    assert_eq!(m.op, BOOTREQUEST);
    assert_eq!(m.xid, 0x1234_5678);
    assert_eq!(m.secs, 3);
    assert_eq!(m.mac().to_string(), "02:42:ac:11:00:02");
    assert_eq!(m.message_type(), Some(MessageType::Discover));
    assert_eq!(m.options.hostname.as_deref(), Some(&b"host"[..]));
    assert_eq!(m.options.parameter_request_list, vec![1, 3, 6, 15, 114]);
    assert_eq!(m.options.client_id.as_ref().map(Vec::len), Some(7));
    assert!(!m.broadcast_flag());
}

#[test]
fn refusals_name_their_reason() {
    let good = dhclient_discover();
    assert_eq!(
        Message::decode(&good[..239]),
        Err(DecodeError::TooShort(239))
    );
    assert_eq!(
        Message::decode(&vec![0; MAX_DATAGRAM + 1]),
        Err(DecodeError::TooLong(MAX_DATAGRAM + 1))
    );
    let mut no_cookie = good.clone();
    no_cookie[236] = 0;
    assert_eq!(Message::decode(&no_cookie), Err(DecodeError::NoMagicCookie));
    let mut token_ring = good.clone();
    token_ring[1] = 6;
    assert!(matches!(
        Message::decode(&token_ring),
        Err(DecodeError::NotEthernet { htype: 6, .. })
    ));
    // An option whose length runs past the end.
    let mut truncated = good[..240].to_vec();
    truncated.extend_from_slice(&[53, 1, 1, 50, 4, 10, 0]);
    assert_eq!(
        Message::decode(&truncated),
        Err(DecodeError::TruncatedOption { code: 50 })
    );
    // Requested IP with 3 octets.
    let mut bad_len = good[..240].to_vec();
    bad_len.extend_from_slice(&[53, 1, 3, 50, 3, 10, 0, 0, 255]);
    assert_eq!(
        Message::decode(&bad_len),
        Err(DecodeError::BadOptionLength { code: 50, len: 3 })
    );
    // No message type.
    let mut untyped = good[..240].to_vec();
    untyped.push(255);
    assert_eq!(Message::decode(&untyped), Err(DecodeError::NoMessageType));
    // An unknown message type is no type.
    let mut unknown = good[..240].to_vec();
    unknown.extend_from_slice(&[53, 1, 99, 255]);
    assert_eq!(Message::decode(&unknown), Err(DecodeError::NoMessageType));
}

#[test]
fn overload_is_ignored_and_sname_never_parsed() {
    let mut b = dhclient_discover();
    // Option 52 = 3 (file and sname hold options): we do not follow it.
    let end = b.len() - 1;
    b.splice(end..end, [52, 1, 3]);
    // sname holding a requested-IP option that must not be read.
    b[44..51].copy_from_slice(&[50, 4, 10, 0, 0, 9, 255]);
    let m = Message::decode(&b).unwrap();
    assert_eq!(m.options.requested_ip, None);
    assert_eq!(m.message_type(), Some(MessageType::Discover));
}

#[test]
fn repeated_options_concatenate_rfc3396() {
    let mut b = dhclient_discover()[..240].to_vec();
    b.extend_from_slice(&[53, 1, 1, 55, 2, 1, 3, 55, 1, 6, 255]);
    let m = Message::decode(&b).unwrap();
    assert_eq!(m.options.parameter_request_list, vec![1, 3, 6]);
}

#[test]
fn options_after_end_and_empty_texts_are_ignored() {
    let mut b = dhclient_discover()[..240].to_vec();
    b.extend_from_slice(&[53, 1, 1, 12, 0, 255, 50, 4, 1, 2, 3, 4]);
    let m = Message::decode(&b).unwrap();
    assert_eq!(m.options.hostname, None);
    assert_eq!(m.options.requested_ip, None);
}

#[test]
fn encode_round_trips_and_pads_to_300() {
    let m = Message::decode(&dhclient_discover()).unwrap();
    let mut reply = m.clone();
    reply.op = BOOTREPLY;
    reply.yiaddr = "192.168.2.50".parse().unwrap();
    reply.options.message_type = Some(MessageType::Offer);
    reply.options.server_id = Some("192.168.2.1".parse().unwrap());
    reply.options.lease_time = Some(30);
    reply.options.routers = vec!["192.168.2.1".parse().unwrap()];
    reply.options.dns_servers = vec!["192.168.2.1".parse().unwrap(); 2];
    reply.options.captive_portal = Some(b"https://192.168.2.1/captive-portal/api".to_vec());
    reply.options.relay_agent = Some(vec![1, 2, 0, 7]);
    let bytes = reply.encode();
    assert!(bytes.len() >= MIN_REPLY_LEN);
    assert_eq!(bytes[240], opt::MESSAGE_TYPE, "message type first");
    assert_eq!(Message::decode(&bytes).unwrap(), reply);
}

#[test]
fn long_values_are_split_and_rejoined() {
    let mut m = Message::decode(&dhclient_discover()).unwrap();
    m.options.captive_portal = Some(vec![b'x'; 600]);
    let bytes = m.encode();
    assert_eq!(
        Message::decode(&bytes).unwrap().options.captive_portal,
        Some(vec![b'x'; 600])
    );
}

fn arb_message() -> impl Strategy<Value = Message> {
    let ip = any::<u32>().prop_map(Ipv4Addr::from);
    let text = proptest::option::of(proptest::collection::vec(any::<u8>(), 1..300));
    (
        (
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (ip.clone(), ip.clone(), ip.clone(), ip.clone()),
        any::<[u8; 16]>(),
        (
            1u8..=8,
            proptest::option::of(ip.clone()),
            proptest::option::of(any::<u32>()),
        ),
        (
            text.clone(),
            text.clone(),
            proptest::collection::vec(any::<u8>(), 0..40),
        ),
        proptest::collection::vec(ip, 0..5),
    )
        .prop_map(
            |(
                (op, hops, xid, secs, flags),
                (ci, yi, si, gi),
                chaddr,
                (t, rip, lt),
                (host, cid, prl),
                routers,
            )| Message {
                op,
                htype: 1,
                hlen: 6,
                hops,
                xid,
                secs,
                flags,
                ciaddr: ci,
                yiaddr: yi,
                siaddr: si,
                giaddr: gi,
                chaddr,
                options: Options {
                    message_type: MessageType::from_u8(t),
                    requested_ip: rip,
                    lease_time: lt,
                    hostname: host,
                    client_id: cid.filter(|c| c.len() >= 2),
                    parameter_request_list: prl,
                    routers,
                    ..Options::default()
                },
            },
        )
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_after_a_valid_header(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut b = dhclient_discover()[..240].to_vec();
        b.extend_from_slice(&tail);
        if let Ok(m) = Message::decode(&b) {
            // Whatever decoded re-encodes to something that decodes to the same message.
            prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn encode_decode_round_trip(m in arb_message()) {
        let bytes = m.encode();
        prop_assert!(bytes.len() <= MAX_DATAGRAM);
        prop_assert_eq!(Message::decode(&bytes).unwrap(), m);
    }
}

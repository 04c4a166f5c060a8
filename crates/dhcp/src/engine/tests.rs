//! One case per RFC 2131 §4.3 rule the engine applies, plus the read-only rules.
use super::*;
use crate::codec::MessageType as T;

const NOW: UnixTime = 1_700_000_000;

fn net() -> NetworkSettings {
    NetworkSettings {
        network: "192.168.2.0".into(),
        network_addr: "192.168.2.0".parse().unwrap(),
        netmask: "255.255.255.0".parse().unwrap(),
        pool_first: "192.168.2.10".parse().unwrap(),
        pool_last: "192.168.2.250".parse().unwrap(),
        reserved: vec!["192.168.2.100".parse().unwrap()],
        server_id: "192.168.2.1".parse().unwrap(),
        routers: vec!["192.168.2.1".parse().unwrap()],
        dns_servers: vec!["192.168.2.1".parse().unwrap()],
        domain_name: Some("reg.example.org".into()),
        default_lease: 30,
        max_lease: 60,
        offer_hold: 30,
        decline_hold: 600,
        reuse_grace: 300,
        captive_portal: Some("http://192.168.2.1/captive-portal/api".into()),
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);

fn req(t: MessageType) -> Message {
    let mut chaddr = [0; 16];
    chaddr[..6].copy_from_slice(&MAC.0);
    Message {
        op: BOOTREQUEST,
        htype: 1,
        hlen: 6,
        hops: 0,
        xid: 42,
        secs: 0,
        flags: 0,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        chaddr,
        options: Options {
            message_type: Some(t),
            parameter_request_list: vec![1, 3, 6, 15, 114],
            ..Options::default()
        },
    }
}

fn lease(a: &str, state: LeaseState, expires_at: UnixTime) -> Lease {
    Lease {
        ip: ip(a),
        mac: Some(MAC),
        state,
        expires_at,
    }
}

fn e() -> Engine {
    Engine::new(net())
}

fn nak_of(p: Plan) -> String {
    match p {
        Plan::Reply(m) if m.message_type() == Some(T::Nak) => {
            assert!(m.broadcast_flag(), "NAKs are broadcast");
            String::from_utf8(m.options.message.unwrap()).unwrap()
        }
        other => panic!("expected a NAK, got {other:?}"),
    }
}

#[test]
fn discover_new_client_offers_from_candidates_with_hold() {
    assert_eq!(
        e().plan(NOW, &req(T::Discover), None, true),
        Plan::Offer {
            prefer: None,
            hold_until: NOW + 30,
            lease: 30
        }
    );
}

#[test]
fn discover_prefers_current_then_requested_address_in_pool() {
    let cur = lease("192.168.2.77", LeaseState::Bound, NOW + 10);
    let mut r = req(T::Discover);
    r.options.requested_ip = Some(ip("192.168.2.99"));
    let Plan::Offer { prefer, .. } = e().plan(NOW, &r, Some(&cur), true) else {
        panic!()
    };
    assert_eq!(prefer, Some(ip("192.168.2.77")));
    let Plan::Offer { prefer, .. } = e().plan(NOW, &r, None, true) else {
        panic!()
    };
    assert_eq!(prefer, Some(ip("192.168.2.99")));
    r.options.requested_ip = Some(ip("10.0.0.5"));
    let Plan::Offer { prefer, .. } = e().plan(NOW, &r, None, true) else {
        panic!()
    };
    assert_eq!(prefer, None, "an address outside the pool is not preferred");
    r.options.requested_ip = Some(ip("192.168.2.100"));
    let Plan::Offer { prefer, .. } = e().plan(NOW, &r, None, true) else {
        panic!()
    };
    assert_eq!(prefer, None, "nor a reserved one");
}

#[test]
fn lease_time_is_the_wish_capped_at_max() {
    let mut r = req(T::Discover);
    r.options.lease_time = Some(3600);
    let Plan::Offer { lease, .. } = e().plan(NOW, &r, None, true) else {
        panic!()
    };
    assert_eq!(lease, 60);
    r.options.lease_time = Some(10);
    let Plan::Offer { lease, .. } = e().plan(NOW, &r, None, true) else {
        panic!()
    };
    assert_eq!(lease, 10);
}

#[test]
fn offer_carries_service_address_options_and_114_only_when_asked() {
    let r = req(T::Discover);
    let o = e().offer(&r, ip("192.168.2.50"), 30);
    assert_eq!(o.op, BOOTREPLY);
    assert_eq!(o.message_type(), Some(T::Offer));
    assert_eq!(o.yiaddr, ip("192.168.2.50"));
    assert_eq!(o.xid, 42);
    assert_eq!(o.options.server_id, Some(ip("192.168.2.1")));
    assert_eq!(o.options.routers, vec![ip("192.168.2.1")]);
    assert_eq!(o.options.dns_servers, vec![ip("192.168.2.1")]);
    assert_eq!(o.options.subnet_mask, Some(ip("255.255.255.0")));
    assert_eq!(
        (
            o.options.lease_time,
            o.options.renewal_time,
            o.options.rebinding_time
        ),
        (Some(30), Some(15), Some(26))
    );
    assert_eq!(
        o.options.captive_portal.as_deref(),
        Some(&b"http://192.168.2.1/captive-portal/api"[..])
    );
    let mut unasked = r.clone();
    unasked.options.parameter_request_list = vec![1, 3, 6];
    assert_eq!(
        e().offer(&unasked, ip("192.168.2.50"), 30)
            .options
            .captive_portal,
        None
    );
}

#[test]
fn selecting_for_us_acks_the_offered_address() {
    let mut r = req(T::Request);
    r.options.server_id = Some(ip("192.168.2.1"));
    r.options.requested_ip = Some(ip("192.168.2.50"));
    let cur = lease("192.168.2.50", LeaseState::Offered, NOW + 20);
    let want = Plan::Ack {
        ip: ip("192.168.2.50"),
        expires_at: NOW + 30,
        lease: 30,
    };
    assert_eq!(e().plan(NOW, &r, Some(&cur), true), want);
    // Our offer not replicated here yet: claim it anyway (the keys arbitrate).
    assert_eq!(e().plan(NOW, &r, None, true), want);
    // Another address than the one we hold for the client: NAK.
    let other = lease("192.168.2.51", LeaseState::Offered, NOW + 20);
    assert_eq!(
        nak_of(e().plan(NOW, &r, Some(&other), true)),
        "not the address of your lease"
    );
}

#[test]
fn selecting_for_another_server_is_ignored() {
    let mut r = req(T::Request);
    r.options.server_id = Some(ip("192.168.2.254"));
    r.options.requested_ip = Some(ip("192.168.2.50"));
    assert_eq!(
        e().plan(NOW, &r, None, true),
        Plan::Ignore(Ignored::OtherServer)
    );
    r.options.server_id = Some(ip("192.168.2.1"));
    r.options.requested_ip = None;
    assert_eq!(
        e().plan(NOW, &r, None, true),
        Plan::Ignore(Ignored::MissingAddress)
    );
}

#[test]
fn init_reboot_rules() {
    let mut r = req(T::Request);
    r.options.requested_ip = Some(ip("10.9.9.9"));
    assert_eq!(
        nak_of(e().plan(NOW, &r, None, true)),
        "requested address is not on this network"
    );
    r.options.requested_ip = Some(ip("192.168.2.60"));
    // RFC 2131 §4.3.2: no record of the client → remain silent.
    assert_eq!(
        e().plan(NOW, &r, None, true),
        Plan::Ignore(Ignored::NoRecord)
    );
    let cur = lease("192.168.2.60", LeaseState::Bound, NOW - 5);
    assert!(matches!(
        e().plan(NOW, &r, Some(&cur), true),
        Plan::Ack { .. }
    ));
    let moved = lease("192.168.2.61", LeaseState::Bound, NOW + 5);
    assert_eq!(
        nak_of(e().plan(NOW, &r, Some(&moved), true)),
        "not the address of your lease"
    );
}

#[test]
fn renewing_extends_and_reclaims_lost_leases() {
    let mut r = req(T::Request);
    r.ciaddr = ip("192.168.2.70");
    let cur = lease("192.168.2.70", LeaseState::Bound, NOW + 5);
    let want = Plan::Ack {
        ip: ip("192.168.2.70"),
        expires_at: NOW + 30,
        lease: 30,
    };
    assert_eq!(e().plan(NOW, &r, Some(&cur), true), want);
    assert_eq!(e().plan(NOW, &r, None, true), want, "lost lease re-claimed");
    r.ciaddr = ip("10.1.1.1");
    assert_eq!(
        nak_of(e().plan(NOW, &r, None, true)),
        "address is not on this network"
    );
    r.ciaddr = ip("192.168.2.2");
    assert_eq!(
        nak_of(e().plan(NOW, &r, None, true)),
        "address is not in this network's pool"
    );
}

#[test]
fn ack_unicasts_renewals_and_broadcasts_when_asked() {
    let mut r = req(T::Request);
    r.ciaddr = ip("192.168.2.70");
    let a = e().ack(&r, ip("192.168.2.70"), 30);
    assert_eq!(a.ciaddr, ip("192.168.2.70"));
    assert_eq!(
        destination(&r, &a),
        Destination::Unicast(SocketAddrV4::new(ip("192.168.2.70"), 68))
    );
    r.flags = FLAG_BROADCAST;
    assert_eq!(destination(&r, &a), Destination::Broadcast);
    let d = req(T::Discover);
    assert_eq!(
        destination(&d, &e().offer(&d, ip("192.168.2.9"), 30)),
        Destination::Broadcast
    );
    let mut relayed = req(T::Discover);
    relayed.giaddr = ip("192.168.2.254");
    assert_eq!(
        destination(&relayed, &e().offer(&relayed, ip("192.168.2.9"), 30)),
        Destination::Relay(SocketAddrV4::new(ip("192.168.2.254"), 67))
    );
    let mut renewal = req(T::Request);
    renewal.ciaddr = ip("192.168.2.70");
    let nak = e().nak(&renewal, "x");
    assert_eq!(
        destination(&renewal, &nak),
        Destination::Broadcast,
        "NAKs are broadcast"
    );
}

#[test]
fn relayed_from_another_network_is_ignored() {
    let mut r = req(T::Discover);
    r.giaddr = ip("10.0.0.1");
    assert_eq!(
        e().plan(NOW, &r, None, true),
        Plan::Ignore(Ignored::OtherNetwork)
    );
}

#[test]
fn replies_and_server_types_are_ignored() {
    let mut r = req(T::Discover);
    r.op = BOOTREPLY;
    assert_eq!(
        e().plan(NOW, &r, None, true),
        Plan::Ignore(Ignored::NotRequest)
    );
    for t in [T::Offer, T::Ack, T::Nak] {
        assert_eq!(
            e().plan(NOW, &req(t), None, true),
            Plan::Ignore(Ignored::UnexpectedType)
        );
    }
}

#[test]
fn decline_release_inform() {
    let mut d = req(T::Decline);
    d.options.server_id = Some(ip("192.168.2.1"));
    d.options.requested_ip = Some(ip("192.168.2.50"));
    assert_eq!(
        e().plan(NOW, &d, None, true),
        Plan::Decline {
            ip: ip("192.168.2.50"),
            until: NOW + 600
        }
    );
    d.options.server_id = None;
    assert_eq!(
        e().plan(NOW, &d, None, true),
        Plan::Ignore(Ignored::OtherServer)
    );

    let mut rel = req(T::Release);
    rel.options.server_id = Some(ip("192.168.2.1"));
    rel.ciaddr = ip("192.168.2.50");
    assert_eq!(
        e().plan(NOW, &rel, None, true),
        Plan::Release {
            ip: ip("192.168.2.50")
        }
    );
    assert_eq!(
        e().plan(NOW, &rel, None, false),
        Plan::Ignore(Ignored::ReadOnly)
    );

    let mut inf = req(T::Inform);
    inf.ciaddr = ip("192.168.2.80");
    let Plan::Reply(a) = e().plan(NOW, &inf, None, true) else {
        panic!()
    };
    assert_eq!(a.message_type(), Some(T::Ack));
    assert_eq!(a.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        a.options.lease_time, None,
        "§4.3.5: no lease time in an INFORM's ACK"
    );
    assert_eq!(a.options.routers, vec![ip("192.168.2.1")]);
}

#[test]
fn read_only_serves_known_devices_and_refuses_new_ones() {
    // A new device: no allocation.
    assert_eq!(e().plan(NOW, &req(T::Discover), None, false), Plan::Refused);
    // A device whose lease ended 100 s ago: still reserved for 200 s (grace 300).
    let cur = lease("192.168.2.70", LeaseState::Bound, NOW - 100);
    let Plan::Reply(o) = e().plan(NOW, &req(T::Discover), Some(&cur), false) else {
        panic!()
    };
    assert_eq!(
        (o.message_type(), o.yiaddr),
        (Some(T::Offer), ip("192.168.2.70"))
    );
    assert_eq!(o.options.lease_time, Some(30));
    // Renewal near the end of the reservation: the lease is cut to what remains.
    let mut r = req(T::Request);
    r.ciaddr = ip("192.168.2.70");
    let late = lease("192.168.2.70", LeaseState::Bound, NOW - 290);
    let Plan::Reply(a) = e().plan(NOW, &r, Some(&late), false) else {
        panic!()
    };
    assert_eq!(
        (a.message_type(), a.options.lease_time),
        (Some(T::Ack), Some(10))
    );
    // Reservation over: refused.
    let gone = lease("192.168.2.70", LeaseState::Bound, NOW - 300);
    assert_eq!(e().plan(NOW, &r, Some(&gone), false), Plan::Refused);
    // A renewal without a record cannot be re-claimed without writing.
    assert_eq!(e().plan(NOW, &r, None, false), Plan::Refused);
    // A wrong address is still NAKed.
    let other = lease("192.168.2.71", LeaseState::Bound, NOW + 10);
    assert_eq!(
        nak_of(e().plan(NOW, &r, Some(&other), false)),
        "not the address of your lease"
    );
}

#[test]
fn another_clients_row_is_not_the_clients_lease() {
    let mut r = req(T::Request);
    r.options.requested_ip = Some(ip("192.168.2.60"));
    let mut theirs = lease("192.168.2.60", LeaseState::Bound, NOW + 10);
    theirs.mac = Some(Mac([2, 0, 0, 0, 0, 2]));
    assert_eq!(
        e().plan(NOW, &r, Some(&theirs), true),
        Plan::Ignore(Ignored::NoRecord)
    );
}

#[test]
fn relay_agent_option_is_echoed() {
    let mut r = req(T::Discover);
    r.options.relay_agent = Some(vec![1, 3, b'p', b'o', b'1']);
    assert_eq!(
        e().offer(&r, ip("192.168.2.9"), 30).options.relay_agent,
        Some(vec![1, 3, b'p', b'o', b'1'])
    );
}

//! The single-server core driven over the wire by the real FreeRADIUS clients.
//! Each test runs its own `ironfence serve` with its own conf dir, state dir and ports.

mod common;

use common::*;
use ironfence_radius::{Code, Packet, PacketBuilder, dict};
use std::net::UdpSocket;
use std::time::Duration;

fn mab(mac: &str) -> String {
    format!(
        "User-Name = \"{mac}\"\nUser-Password = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\n\
         Service-Type = Call-Check\nNAS-Port-Type = Ethernet\nNAS-Port = 12\nMessage-Authenticator = 0x00\n"
    )
}

fn node_show(d: &Daemon, mac: &str) -> String {
    let out = d.cli(&["node", "show", mac]);
    assert!(
        out.status.success(),
        "node show {mac}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

#[test]
fn unknown_device_lands_in_registration_vlan_and_is_created_unregistered() {
    let d = Daemon::start();
    let r = radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:00:01"));
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("2"));
    assert_eq!(r.attr("Tunnel-Type:0"), Some("VLAN"));
    assert_eq!(r.attr("Tunnel-Medium-Type:0"), Some("IEEE-802"));
    // BlastRADIUS: Message-Authenticator is the first attribute of the Accept.
    assert_eq!(
        r.attrs.first().map(|(n, _)| n.as_str()),
        Some("Message-Authenticator"),
        "{}",
        r.output
    );
    let show = node_show(&d, "02:00:00:00:00:01");
    assert!(show.contains("status:     unreg"), "{show}");
    assert_eq!(d.metric("ironfence_nodes_created_total"), 1.0);
}

#[test]
fn radtest_pap_mab_gets_an_answer() {
    let d = Daemon::start();
    let r = radtest_mab(d.auth_port, SECRET, "020000000002");
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("2"));
}

#[test]
fn every_mac_spelling_is_the_same_device() {
    let d = Daemon::start();
    for spelling in [
        "aa:bb:cc:dd:ee:01",
        "AA-BB-CC-DD-EE-01",
        "aabb.ccdd.ee01",
        "aabbccddee01",
        // Vendors' defaults: Huawei/H3C, HP/Aruba-OS-Switch and FortiSwitch, D-Link (twice).
        "aabb-ccdd-ee01",
        "aabbcc-ddee01",
        "AA.BB.CC.DD.EE.01",
        "AABBCC.DDEE01",
    ] {
        let r = radclient(d.auth_port, "auth", SECRET, &mab(spelling));
        assert_eq!(
            r.code.as_deref(),
            Some("Access-Accept"),
            "{spelling}: {}",
            r.output
        );
    }
    assert_eq!(d.metric("ironfence_nodes_created_total"), 1.0);
    let list = stdout(&d.cli(&["node", "list"]));
    assert!(
        list.contains("aa:bb:cc:dd:ee:01") && list.contains("1 node(s)"),
        "{list}"
    );
}

#[test]
fn registered_device_gets_its_role_vlan_per_switch_with_default_fallback() {
    let d = Daemon::start();
    let reg = |mac: &str, role: &str| {
        let o = d.cli(&["node", "register", mac, "--role", role, "--pid", "alice"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    reg("02:00:00:00:01:01", "guest");
    reg("02:00:00:00:01:02", "default");
    // guestVlan is overridden on the switch section; defaultVlan comes from [default].
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:01:01")).vlan(),
        Some("210")
    );
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:01:02")).vlan(),
        Some("100")
    );
    // Unregister: back to the registration VLAN.
    assert!(
        d.cli(&["node", "unregister", "02:00:00:00:01:01"])
            .status
            .success()
    );
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:01:01")).vlan(),
        Some("2")
    );
    // Unknown role is refused by the CLI with the list of roles.
    let o = d.cli(&[
        "node",
        "register",
        "02:00:00:00:01:03",
        "--role",
        "nosuchrole",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not defined in roles.conf"));
}

#[test]
fn isolated_device_gets_isolation_vlan() {
    let d = Daemon::start();
    let mac = "02:00:00:00:02:01";
    assert!(
        d.cli(&["node", "register", mac, "--role", "guest"])
            .status
            .success()
    );
    let o = d.cli(&["node", "isolate", mac, "--event-id", "1100010"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab(mac)).vlan(),
        Some("3")
    );
    assert!(d.cli(&["node", "release", mac]).status.success());
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab(mac)).vlan(),
        Some("210")
    );
}

fn acct(mac: &str, status: &str, port: u32, session: &str) -> String {
    format!(
        "Acct-Status-Type = {status}\nUser-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nNAS-IP-Address = 127.0.0.1\n\
         NAS-Port = {port}\nNAS-Port-Type = Wireless-802.11\nCalled-Station-Id = \"00-11-22-33-44-55:corp-wifi\"\n\
         Acct-Session-Id = \"{session}\"\nTunnel-Private-Group-Id:0 = \"100\"\nFramed-IP-Address = 192.0.2.10\n"
    )
}

/// Accounting from switches that spell the MAC their own way is stored for the device, never
/// answered and dropped.
#[test]
fn accounting_with_vendor_mac_spellings_is_stored() {
    let d = Daemon::start();
    for (i, spelling) in [
        "0200-0000-0401",
        "020000-000402",
        "02.00.00.00.04.03",
        "020000.000404",
    ]
    .iter()
    .enumerate()
    {
        let session = format!("v{i}");
        let r = radclient(
            d.acct_port,
            "acct",
            SECRET,
            &acct(spelling, "Start", 20 + i as u32, &session),
        );
        assert_eq!(
            r.code.as_deref(),
            Some("Accounting-Response"),
            "{spelling}: {}",
            r.output
        );
        let canonical = format!("02:00:00:00:04:0{}", i + 1);
        let show = node_show(&d, &canonical);
        assert!(
            show.contains(&format!(
                "port {} vlan 100 ssid corp-wifi session {session}",
                20 + i
            )),
            "{spelling}: {show}"
        );
    }
}

/// An Accounting-Request with a Message-Authenticator gets an Accounting-Response that
/// FreeRADIUS 3.2's radclient verifies (it carries no Message-Authenticator).
#[test]
fn accounting_response_to_a_request_with_message_authenticator_verifies() {
    let d = Daemon::start();
    let mac = "02:00:00:00:07:01";
    let req = format!(
        "{}Message-Authenticator = 0x00\n",
        acct(mac, "Start", 50, "m1")
    );
    let r = radclient(d.acct_port, "acct", SECRET, &req);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
    assert!(!r.output.contains("verification failed"), "{}", r.output);
    assert!(
        !r.attrs.iter().any(|(n, _)| n == "Message-Authenticator"),
        "{}",
        r.output
    );
    assert!(node_show(&d, mac).contains("session m1"));
}

/// RFC 6929 §2.8: a standard attribute of the wrong length (here a 5-octet NAS-IP-Address,
/// sent raw by radclient) is ignored, not a reason to drop the packet.
#[test]
fn a_wrong_length_attribute_does_not_drop_the_packet() {
    let d = Daemon::start();
    let mac = "02:00:00:00:05:01";
    let r = radclient(
        d.auth_port,
        "auth",
        SECRET,
        &format!("{}Attr-4 = 0x7f00000101\n", mab(mac)),
    );
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("2"));
    let start = acct(mac, "Start", 30, "w1")
        .replace("NAS-IP-Address = 127.0.0.1\n", "Attr-4 = 0x7f00000101\n");
    let r = radclient(d.acct_port, "acct", SECRET, &start);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
    let show = node_show(&d, mac);
    assert!(
        show.contains("port 30 vlan 100 ssid corp-wifi session w1"),
        "{show}"
    );
}

/// The SSID comes from Aruba-Essid-Name, or from a Called-Station-Id whose AP MAC is spelt
/// with colons (`aa:bb:cc:dd:ee:ff:SSID`).
#[test]
fn ssid_is_recorded_from_vendor_attributes_and_colon_spelt_called_station_ids() {
    let d = Daemon::start();
    let colon = acct("02:00:00:00:06:01", "Start", 40, "c1").replace(
        "Called-Station-Id = \"00-11-22-33-44-55:corp-wifi\"",
        "Called-Station-Id = \"00:11:22:33:44:55:colon-wifi\"",
    );
    let aruba = acct("02:00:00:00:06:02", "Start", 41, "c2").replace(
        "Called-Station-Id = \"00-11-22-33-44-55:corp-wifi\"",
        "Called-Station-Id = \"00:11:22:33:44:55\"\nAruba-Essid-Name = \"aruba-wifi\"",
    );
    for (mac, req, want) in [
        ("02:00:00:00:06:01", colon, "ssid colon-wifi session c1"),
        ("02:00:00:00:06:02", aruba, "ssid aruba-wifi session c2"),
    ] {
        let r = radclient(d.acct_port, "acct", SECRET, &req);
        assert_eq!(
            r.code.as_deref(),
            Some("Accounting-Response"),
            "{}",
            r.output
        );
        let show = node_show(&d, mac);
        assert!(show.contains(want), "{show}");
    }
}

#[test]
fn accounting_updates_the_location_log() {
    let d = Daemon::start();
    let mac = "02:00:00:00:03:01";
    let r = radclient(d.acct_port, "acct", SECRET, &acct(mac, "Start", 7, "s1"));
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
    let show = node_show(&d, mac);
    assert!(
        show.contains("port 7 vlan 100 ssid corp-wifi session s1"),
        "{show}"
    );
    assert!(show.contains(".. open"), "{show}");
    assert!(show.contains("ip 192.0.2.10"), "{show}");
    // Interim-Update at the same place keeps the entry.
    radclient(
        d.acct_port,
        "acct",
        SECRET,
        &acct(mac, "Interim-Update", 7, "s1"),
    );
    assert_eq!(node_show(&d, mac).matches("switch ").count(), 1);
    // Roaming to another port closes the old entry and opens a new one.
    radclient(
        d.acct_port,
        "acct",
        SECRET,
        &acct(mac, "Interim-Update", 8, "s2"),
    );
    let show = node_show(&d, mac);
    assert_eq!(show.matches("switch ").count(), 2, "{show}");
    assert_eq!(show.matches(".. open").count(), 1, "{show}");
    // Stop closes it.
    radclient(d.acct_port, "acct", SECRET, &acct(mac, "Stop", 8, "s2"));
    assert_eq!(node_show(&d, mac).matches(".. open").count(), 0);
    // Accounting-On from the NAS closes every open entry of that switch.
    radclient(d.acct_port, "acct", SECRET, &acct(mac, "Start", 9, "s3"));
    assert_eq!(node_show(&d, mac).matches(".. open").count(), 1);
    let r = radclient(
        d.acct_port,
        "acct",
        SECRET,
        "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\n",
    );
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
    assert_eq!(node_show(&d, mac).matches(".. open").count(), 0);
}

#[test]
fn status_server_is_answered_on_both_ports() {
    let d = Daemon::start();
    let r = radclient(
        d.auth_port,
        "status",
        SECRET,
        "Message-Authenticator = 0x00\n",
    );
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    let r = radclient(
        d.acct_port,
        "status",
        SECRET,
        "Message-Authenticator = 0x00\n",
    );
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
}

#[test]
fn wrong_secret_is_dropped_and_counted() {
    let d = Daemon::start();
    let r = radclient(
        d.auth_port,
        "auth",
        "not-the-secret",
        &mab("02:00:00:00:04:01"),
    );
    assert_eq!(r.code, None, "{}", r.output);
    assert_eq!(
        d.metric("ironfence_radius_dropped_total{reason=\"bad_message_authenticator\"}"),
        1.0
    );
    let r = radclient(
        d.acct_port,
        "acct",
        "not-the-secret",
        &acct("02:00:00:00:04:01", "Start", 1, "x"),
    );
    assert_eq!(r.code, None, "{}", r.output);
    assert_eq!(
        d.metric("ironfence_radius_dropped_total{reason=\"bad_request_authenticator\"}"),
        1.0
    );
    assert_eq!(d.metric("ironfence_nodes_created_total"), 0.0);
}

#[test]
fn missing_message_authenticator_is_dropped_when_required() {
    let d = Daemon::start();
    let no_ma = mab("02:00:00:00:05:01").replace("Message-Authenticator = 0x00\n", "");
    let r = radclient(d.auth_port, "auth", SECRET, &no_ma);
    assert_eq!(r.code, None, "{}", r.output);
    assert_eq!(
        d.metric("ironfence_radius_dropped_total{reason=\"missing_message_authenticator\"}"),
        1.0
    );
}

#[test]
fn auto_mode_requires_message_authenticator_once_seen_and_no_mode_does_not() {
    let d = DaemonBuilder::default()
        .switches(&format!(
            "[default]\nregistrationVlan=2\n\n[127.0.0.1]\nradiusSecret={SECRET}\nrequire_message_authenticator=auto\n"
        ))
        .start();
    let with = mab("02:00:00:00:06:01");
    let without = with.replace("Message-Authenticator = 0x00\n", "");
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &without)
            .code
            .as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &with)
            .code
            .as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(radclient(d.auth_port, "auth", SECRET, &without).code, None);
    drop(d);

    let d = DaemonBuilder::default()
        .switches(&format!(
            "[default]\nregistrationVlan=2\n\n[127.0.0.1]\nradiusSecret={SECRET}\nrequire_message_authenticator=no\n"
        ))
        .start();
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &without)
            .code
            .as_deref(),
        Some("Access-Accept")
    );
}

#[test]
fn unknown_client_is_dropped_and_counted() {
    let d = DaemonBuilder::default()
        .switches(&format!(
            "[default]\nregistrationVlan=2\n\n[192.0.2.1]\nradiusSecret={SECRET}\n"
        ))
        .start();
    let r = radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:07:01"));
    assert_eq!(r.code, None, "{}", r.output);
    assert_eq!(
        d.metric("ironfence_radius_dropped_total{reason=\"unknown_client\"}"),
        1.0
    );
}

#[test]
fn malformed_datagrams_are_dropped_and_counted() {
    let d = Daemon::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"\x01\x02\x00\x10short", ("127.0.0.1", d.auth_port))
        .unwrap();
    // Length says 30 but an attribute claims 40 octets.
    let mut bad = vec![1u8, 3, 0, 30];
    bad.extend_from_slice(&[0u8; 16]);
    bad.extend_from_slice(&[1, 40, b'x', b'y', 0, 0, 0, 0, 0, 0]);
    sock.send_to(&bad, ("127.0.0.1", d.auth_port)).unwrap();
    eventually("both malformed datagrams counted", || {
        let m = d.metrics_text();
        m.contains("ironfence_radius_dropped_total{reason=\"bad_length\"} 1")
            || m.contains("ironfence_radius_dropped_total{reason=\"too_short\"} 1")
    });
    eventually("malformed attribute counted", || {
        d.metrics_text()
            .contains("ironfence_radius_dropped_total{reason=\"malformed_attribute\"} 1")
    });
    // Still serving.
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:08:01"))
            .code
            .as_deref(),
        Some("Access-Accept")
    );
}

/// RFC 5080 §2.2.2: a retransmit (same source, id and authenticator) is answered from the reply
/// cache, byte for byte, without being processed (and written) a second time.
#[test]
fn retransmits_are_answered_from_cache_without_a_second_write() {
    let d = Daemon::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let send_twice = |datagram: &[u8], port: u16| -> (Vec<u8>, Vec<u8>) {
        let mut replies = Vec::new();
        for _ in 0..2 {
            sock.send_to(datagram, ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 4096];
            let (n, _) = sock.recv_from(&mut buf).expect("reply");
            replies.push(buf[..n].to_vec());
        }
        (replies.remove(0), replies.remove(0))
    };
    let mut b = PacketBuilder::new(Code::AccessRequest, 42);
    b.add_str(dict::USER_NAME, "020000000901").unwrap();
    b.add_str(dict::CALLING_STATION_ID, "02-00-00-00-09-01")
        .unwrap();
    b.add_u32(dict::SERVICE_TYPE, dict::service_type::CALL_CHECK)
        .unwrap();
    let auth = [7u8; 16];
    let req = b.encode_request(auth, SECRET.as_bytes(), true);
    let (first, second) = send_twice(&req, d.auth_port);
    assert_eq!(first, second, "retransmit must get the identical reply");
    let reply = ironfence_radius::verify_response(&first, 42, &auth, SECRET.as_bytes()).unwrap();
    assert_eq!(reply.code(), Code::AccessAccept);
    assert_eq!(
        d.metric("ironfence_radius_duplicates_total{outcome=\"replayed\"}"),
        1.0
    );
    assert_eq!(
        d.metric("ironfence_radius_decisions_total{reason=\"unregistered\"}"),
        1.0
    );
    eventually("one audit record", || {
        d.metric("ironfence_audit_records_total{outcome=\"written\"}") == 1.0
    });

    let mut a = PacketBuilder::new(Code::AccountingRequest, 43);
    a.add_u32(dict::ACCT_STATUS_TYPE, dict::acct_status_type::START)
        .unwrap();
    a.add_str(dict::CALLING_STATION_ID, "02-00-00-00-09-01")
        .unwrap();
    a.add_str(dict::ACCT_SESSION_ID, "retransmit-1").unwrap();
    a.add_u32(dict::NAS_PORT, 3).unwrap();
    let acct_req = a.encode_accounting_request(SECRET.as_bytes(), false);
    let (first, second) = send_twice(&acct_req, d.acct_port);
    assert_eq!(first, second);
    assert_eq!(
        Packet::decode(&first).unwrap().code(),
        Code::AccountingResponse
    );
    assert_eq!(
        d.metric("ironfence_radius_duplicates_total{outcome=\"replayed\"}"),
        2.0
    );
    assert_eq!(
        d.metric("ironfence_radius_requests_total{port=\"acct\",code=\"accounting_request\"}"),
        2.0,
        "both copies are counted as received"
    );
    let show = node_show(&d, "02:00:00:00:09:01");
    assert_eq!(show.matches("session retransmit-1").count(), 1, "{show}");
    // One audit record per request (the Access-Request and the Accounting-Request), none for
    // the replayed copies.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.metric("ironfence_audit_records_total{outcome=\"written\"}"),
        2.0
    );
}

#[test]
fn configreload_applies_good_config_and_keeps_running_config_on_error() {
    let d = Daemon::start();
    let switches = d.conf_dir().join("switches.conf");
    let original = std::fs::read_to_string(&switches).unwrap();
    // A broken file: the daemon refuses it, says where, keeps serving with the old config.
    std::fs::write(
        &switches,
        original.replace("registrationVlan=2", "registrationVlan=9999"),
    )
    .unwrap();
    let out = d.cli(&["configreload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("switches.conf:2"), "{err}");
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:0a:01")).vlan(),
        Some("2")
    );
    let out = d.cli(&["checkup"]);
    assert!(
        !out.status.success(),
        "checkup must fail on a broken config"
    );
    assert!(stdout(&out).contains("switches.conf:2"), "{}", stdout(&out));
    // A good change is applied without restart.
    std::fs::write(
        &switches,
        original.replace("registrationVlan=2", "registrationVlan=20"),
    )
    .unwrap();
    let out = d.cli(&["configreload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:0a:01")).vlan(),
        Some("20")
    );
    assert_eq!(
        d.metric("ironfence_config_reloads_total{result=\"ok\"}"),
        1.0
    );
}

#[test]
fn sigterm_stops_gracefully() {
    let mut d = Daemon::start();
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab("02:00:00:00:0b:01"))
            .code
            .as_deref(),
        Some("Access-Accept")
    );
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(d.log().contains("stopped"), "{}", d.log());
}

/// RFC 2865 §5.33: Proxy-State comes back unchanged, so a proxy in front of us keeps working.
#[test]
fn proxy_state_is_echoed_in_replies() {
    let d = Daemon::start();
    let req = format!(
        "{}Proxy-State = 0x70726f78792d31\n",
        mab("02:00:00:00:0c:01")
    );
    let r = radclient(d.auth_port, "auth", SECRET, &req);
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(
        r.attr("Proxy-State"),
        Some("0x70726f78792d31"),
        "{}",
        r.output
    );
}

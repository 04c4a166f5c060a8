//! Registration → CoA / Disconnect → the next authentication lands in the role's VLAN, with a
//! running daemon, the real FreeRADIUS clients (radclient, radtest) as the switch, and the NAS
//! stand-in (127.0.74.20-29:3799) verifying every request's signature.

mod common;

use common::*;
use ironfence_radius::{Code, dict};
use ironfence_testkit::nas::{Answer, NasConfig, NasStandIn};
use std::time::Duration;

fn mab(mac: &str) -> String {
    format!(
        "User-Name = \"{mac}\"\nUser-Password = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\n\
         Service-Type = Call-Check\nNAS-Port-Type = Ethernet\nNAS-Port = 12\nMessage-Authenticator = 0x00\n"
    )
}

fn switches(nas_ip: &str, mode: &str) -> String {
    format!(
        "[default]\nregistrationVlan=2\nisolationVlan=3\ndefaultVlan=100\n\n\
         [127.0.0.1]\nradiusSecret={SECRET}\nrequire_message_authenticator=yes\n\
         type=Cisco::Catalyst_2960\nradiusDisconnect={mode}\ncontrollerIp={nas_ip}\n"
    )
}

fn nas(ip: &str, config: NasConfig) -> NasStandIn {
    NasStandIn::start(format!("{ip}:3799").parse().unwrap(), config)
        .expect("bind the NAS stand-in on 3799")
}

fn register(d: &Daemon, mac: &str) {
    let out = d.cli(&["node", "register", mac, "--role", "default"]);
    assert!(
        out.status.success(),
        "node register: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn registration_then_coa_nak_then_disconnect_then_role_vlan() {
    let mac = "02:00:00:00:74:21";
    let nas = nas(
        "127.0.74.21",
        NasConfig {
            coa: Answer::Nak(Some(405)),
            ..NasConfig::new(SECRET.as_bytes())
        },
    );
    let d = DaemonBuilder::default()
        .switches(&switches("127.0.74.21", "coaOrDisconnect"))
        .start();

    // Unknown device: registration VLAN; then the switch's accounting Start.
    let r = radclient(d.auth_port, "auth", SECRET, &mab(mac));
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("2"));
    let acct = format!(
        "Acct-Status-Type = Start\nCalling-Station-Id = \"{mac}\"\nUser-Name = \"{mac}\"\n\
         NAS-Port = 12\nAcct-Session-Id = \"74-21\"\n"
    );
    let r = radclient(d.acct_port, "acct", SECRET, &acct);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );

    register(&d, mac);
    let out = d.cli(&["node", "reevaluate", mac]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("switch:     127.0.0.1 (sent to 127.0.74.21)"),
        "{text}"
    );
    assert!(
        text.contains("coa:        NAK, Error-Cause 405 (Unsupported-Service) (1 transmission)"),
        "{text}"
    );
    assert!(text.contains("disconnect: ACK (1 transmission)"), "{text}");

    // What the switch saw: a CoA and a Disconnect, both correctly signed.
    let got = nas.received();
    assert_eq!(got.len(), 2, "{got:?}");
    for r in &got {
        assert_eq!(r.verdict, Ok(()), "the NAS verified the signature");
        let p = r.packet().unwrap();
        assert_eq!(p.get_str(dict::CALLING_STATION_ID), Some(mac));
        assert_eq!(
            p.get_ipv4(dict::NAS_IP_ADDRESS),
            Some("127.0.0.1".parse().unwrap())
        );
    }
    assert_eq!(got[0].code(), Some(Code::CoaRequest));
    assert_eq!(
        got[0]
            .packet()
            .unwrap()
            .vendor_attributes(dict::vendor::CISCO)
            .next(),
        Some((
            dict::cisco::AVPAIR,
            &b"subscriber:command=reauthenticate"[..]
        )),
        "the Cisco type's coaAttributes default"
    );
    assert_eq!(got[1].code(), Some(Code::DisconnectRequest));

    // The switch re-authenticates the device: the role's VLAN.
    let r = radtest_mab(d.auth_port, SECRET, mac);
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("100"));

    assert_eq!(
        d.metric("ironfence_coa_replies_total{kind=\"coa\",result=\"nak\"}"),
        1.0
    );
    assert_eq!(
        d.metric("ironfence_coa_replies_total{kind=\"disconnect\",result=\"ack\"}"),
        1.0
    );
    assert_eq!(
        d.metric("ironfence_coa_reevaluations_total{outcome=\"ack\"}"),
        1.0
    );
    let log = d.log();
    assert!(
        log.contains("405 (Unsupported-Service)") && log.contains("NAK"),
        "{log}"
    );
}

#[test]
fn a_switch_without_accounting_is_found_from_the_access_accept() {
    let mac = "02:00:00:00:74:22";
    let nas = nas("127.0.74.22", NasConfig::new(SECRET.as_bytes()));
    let d = DaemonBuilder::default()
        .switches(&switches("127.0.74.22", "coa"))
        .start();
    let r = radtest_mab(d.auth_port, SECRET, mac);
    assert_eq!(r.vlan(), Some("2"), "{}", r.output);
    // The location is written in the background, after the reply.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while d.metric("ironfence_location_at_auth_total{result=\"recorded\"}") < 1.0 {
        assert!(std::time::Instant::now() < deadline, "{}", d.metrics_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same place again: nothing written.
    radtest_mab(d.auth_port, SECRET, mac);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while d.metric("ironfence_location_at_auth_total{result=\"unchanged\"}") < 1.0 {
        assert!(std::time::Instant::now() < deadline, "{}", d.metrics_text());
        std::thread::sleep(Duration::from_millis(20));
    }

    register(&d, mac);
    let out = d.cli(&["node", "reevaluate", mac]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("coa:        ACK"), "{}", stdout(&out));
    let got = nas.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].code(), Some(Code::CoaRequest));
    assert_eq!(got[0].verdict, Ok(()));
    let r = radtest_mab(d.auth_port, SECRET, mac);
    assert_eq!(r.vlan(), Some("100"), "{}", r.output);
}

#[test]
fn reevaluate_without_a_location_says_so() {
    let d = DaemonBuilder::default()
        .switches(&switches("127.0.74.23", "coa"))
        .start();
    register(&d, "02:00:00:00:74:23");
    let out = d.cli(&["node", "reevaluate", "02:00:00:00:74:23"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("has no open location"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        d.metric("ironfence_coa_reevaluations_total{outcome=\"no_location\"}"),
        1.0
    );
}

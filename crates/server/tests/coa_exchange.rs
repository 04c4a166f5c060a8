//! `coa::send_dynauth` against the NAS stand-in over real UDP sockets (127.0.74.10-29):
//! retransmission, the CoA → Disconnect fallback, NAK Error-Causes, and refusals on both
//! sides (the NAS refuses a wrongly signed request; we refuse a wrongly signed reply). Short
//! retransmission timers; nothing asserts a duration.

use ironfence_config::dynauth::{DynAuthSettings, RadiusDisconnect};
use ironfence_core::Mac;
use ironfence_radius::dynauth::{
    AttributeSpec, DynAuthKind, ErrorCause, RetryPolicy, Step, StepResult,
};
use ironfence_radius::{Code, dict};
use ironfence_server::coa::{Target, send_dynauth};
use ironfence_server::metrics::Metrics;
use ironfence_testkit::nas::{Answer, NasConfig, NasStandIn};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const SECRET: &[u8] = b"coa-exchange-test-fixture-secret";
const MAC: Mac = Mac([0x02, 0, 0, 0, 0x74, 0x01]);

fn fast() -> RetryPolicy {
    RetryPolicy {
        initial_timeout: Duration::from_millis(150),
        max_timeout: Duration::from_millis(600),
        max_transmissions: 3,
        max_duration: Duration::from_secs(3),
    }
}

fn nas(host: u8, config: NasConfig) -> NasStandIn {
    let addr: SocketAddr = format!("127.0.74.{host}:0").parse().unwrap();
    NasStandIn::start(addr, config).expect("bind the NAS stand-in")
}

fn target(nas: &NasStandIn, mode: RadiusDisconnect, secret: &[u8]) -> Target {
    let port = nas.addr().port();
    Target {
        mac: MAC,
        nas_ip: "127.0.74.99".parse().unwrap(),
        destination: nas.addr().ip(),
        source: Some(IpAddr::from([127, 0, 74, 1])),
        fallback_source: None,
        secret: secret.to_vec(),
        settings: DynAuthSettings {
            radius_disconnect: mode,
            coa_port: port,
            disconnect_port: port,
            coa_attributes: vec![
                AttributeSpec::parse("Cisco-AVPair", "subscriber:command=reauthenticate").unwrap(),
            ],
            ..DynAuthSettings::default()
        },
    }
}

fn metric(m: &Metrics, series: &str) -> f64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn coa_is_signed_and_acked() {
    let n = nas(10, NasConfig::new(SECRET));
    let m = Metrics::new();
    let outcome = send_dynauth(&target(&n, RadiusDisconnect::Coa, SECRET), fast(), &m.coa)
        .await
        .unwrap();
    assert_eq!(
        outcome.steps,
        vec![Step {
            kind: DynAuthKind::Coa,
            transmissions: 1,
            result: StepResult::Ack
        }]
    );
    let got = n.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].verdict, Ok(()), "the NAS verified the signature");
    assert_eq!(got[0].from.ip(), IpAddr::from([127, 0, 74, 1]), "coaSource");
    let p = got[0].packet().unwrap();
    assert_eq!(p.code(), Code::CoaRequest);
    assert_eq!(
        p.attributes().next().unwrap().typ,
        dict::MESSAGE_AUTHENTICATOR
    );
    assert_eq!(
        p.get_str(dict::CALLING_STATION_ID),
        Some("02:00:00:00:74:01")
    );
    assert_eq!(
        p.get_ipv4(dict::NAS_IP_ADDRESS),
        Some("127.0.74.99".parse().unwrap())
    );
    assert_eq!(
        p.vendor_attributes(dict::vendor::CISCO).next(),
        Some((
            dict::cisco::AVPAIR,
            &b"subscriber:command=reauthenticate"[..]
        ))
    );
    assert_eq!(
        metric(
            &m,
            "ironfence_coa_replies_total{kind=\"coa\",result=\"ack\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn lost_requests_are_retransmitted_identically() {
    let n = nas(
        11,
        NasConfig {
            drop_first: 2,
            ..NasConfig::new(SECRET)
        },
    );
    let m = Metrics::new();
    let outcome = send_dynauth(&target(&n, RadiusDisconnect::Coa, SECRET), fast(), &m.coa)
        .await
        .unwrap();
    assert_eq!(outcome.steps[0].transmissions, 3);
    assert!(outcome.acked());
    let got = n.received();
    assert_eq!(got.len(), 3);
    // RFC 5080 §2.2.1: same Identifier, same Request Authenticator, same bytes.
    assert!(got.iter().all(|r| r.bytes == got[0].bytes));
    assert_eq!(
        metric(
            &m,
            "ironfence_coa_requests_total{kind=\"coa\",transmission=\"retransmit\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn coa_or_disconnect_falls_back_after_a_nak_and_decodes_the_error_cause() {
    let n = nas(
        12,
        NasConfig {
            coa: Answer::Nak(Some(405)),
            ..NasConfig::new(SECRET)
        },
    );
    let m = Metrics::new();
    let outcome = send_dynauth(
        &target(&n, RadiusDisconnect::CoaOrDisconnect, SECRET),
        fast(),
        &m.coa,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.steps,
        vec![
            Step {
                kind: DynAuthKind::Coa,
                transmissions: 1,
                result: StepResult::Nak(Some(ErrorCause(405)))
            },
            Step {
                kind: DynAuthKind::Disconnect,
                transmissions: 1,
                result: StepResult::Ack
            },
        ]
    );
    let codes: Vec<_> = n.received().iter().map(|r| r.code()).collect();
    assert_eq!(
        codes,
        vec![Some(Code::CoaRequest), Some(Code::DisconnectRequest)]
    );
    // The Disconnect carries no Cisco AVPair (disconnectAttributes is empty).
    let got = n.received();
    assert_eq!(
        got[1]
            .packet()
            .unwrap()
            .vendor_attributes(dict::vendor::CISCO)
            .count(),
        0
    );
    assert_eq!(
        metric(
            &m,
            "ironfence_coa_nak_error_cause_total{error_cause=\"405\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn coa_or_disconnect_falls_back_after_a_timeout() {
    let n = nas(
        13,
        NasConfig {
            coa: Answer::Silent,
            ..NasConfig::new(SECRET)
        },
    );
    let m = Metrics::new();
    let outcome = send_dynauth(
        &target(&n, RadiusDisconnect::CoaOrDisconnect, SECRET),
        fast(),
        &m.coa,
    )
    .await
    .unwrap();
    assert_eq!(outcome.steps[0].result, StepResult::Timeout);
    assert_eq!(outcome.steps[0].transmissions, 3);
    assert_eq!(outcome.steps[1].result, StepResult::Ack);
    assert_eq!(
        metric(&m, "ironfence_coa_timeouts_total{kind=\"coa\"}"),
        1.0
    );
}

#[tokio::test]
async fn the_nas_refuses_a_request_signed_with_another_secret() {
    let n = nas(14, NasConfig::new(SECRET));
    let m = Metrics::new();
    let outcome = send_dynauth(
        &target(&n, RadiusDisconnect::Disconnect, b"not-the-switch-secret"),
        fast(),
        &m.coa,
    )
    .await
    .unwrap();
    assert!(!outcome.acked());
    let got = n.received();
    assert_eq!(got.len(), 3, "every transmission refused, none answered");
    assert!(got.iter().all(|r| r.verdict.is_err() && !r.answered));
}

#[tokio::test]
async fn a_reply_signed_with_another_secret_is_refused_and_counted() {
    let n = nas(
        15,
        NasConfig {
            reply_secret: b"forged-reply-secret".to_vec(),
            ..NasConfig::new(SECRET)
        },
    );
    let m = Metrics::new();
    let outcome = send_dynauth(&target(&n, RadiusDisconnect::Coa, SECRET), fast(), &m.coa)
        .await
        .unwrap();
    assert_eq!(outcome.steps[0].result, StepResult::Timeout);
    assert_eq!(
        metric(
            &m,
            "ironfence_coa_bad_replies_total{reason=\"bad_response_authenticator\"}"
        ),
        3.0
    );
}

#[tokio::test]
async fn replies_without_message_authenticator_per_switch_option() {
    let cfg = NasConfig {
        reply_message_authenticator: false,
        ..NasConfig::new(SECRET)
    };
    // Default (like real switches): accepted on its Response Authenticator.
    let n = nas(16, cfg.clone());
    let m = Metrics::new();
    let t = target(&n, RadiusDisconnect::Coa, SECRET);
    assert!(send_dynauth(&t, fast(), &m.coa).await.unwrap().acked());
    // coaRequireMessageAuthenticator = yes: refused.
    let mut strict = t.clone();
    strict.settings.require_message_authenticator = true;
    assert!(!send_dynauth(&strict, fast(), &m.coa).await.unwrap().acked());
    assert_eq!(
        metric(
            &m,
            "ironfence_coa_bad_replies_total{reason=\"missing_message_authenticator\"}"
        ),
        3.0
    );
}

#[tokio::test]
async fn a_source_address_this_server_does_not_hold_falls_back_to_its_own() {
    let n = nas(17, NasConfig::new(SECRET));
    let m = Metrics::new();
    let mut t = target(&n, RadiusDisconnect::Coa, SECRET);
    // A management VIP held by another member (not configured on any local interface).
    t.source = Some("192.0.2.74".parse().unwrap());
    t.fallback_source = Some(IpAddr::from([127, 0, 74, 2]));
    assert!(send_dynauth(&t, fast(), &m.coa).await.unwrap().acked());
    assert_eq!(n.received()[0].from.ip(), IpAddr::from([127, 0, 74, 2]));
}

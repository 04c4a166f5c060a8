use super::*;
use crate::{RequestCheck, verify_request};

const SECRET: &[u8] = b"coa-test-secret";
const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

fn attrs() -> PacketBuilder {
    let mut b = PacketBuilder::new(Code::CoaRequest, 0);
    b.add_str(dict::CALLING_STATION_ID, "02:00:00:00:00:01")
        .unwrap();
    b.add_ipv4(dict::NAS_IP_ADDRESS, "127.0.74.1".parse().unwrap())
        .unwrap();
    AttributeSpec::parse("Cisco-AVPair", "subscriber:command=reauthenticate")
        .unwrap()
        .add_to(&mut b)
        .unwrap();
    b
}

/// A NAS's answer to `req`: `code`, identifier and request authenticator as given, optional
/// Error-Cause, MA or not, signed with `secret`.
fn answer(
    req: &DynAuthRequest,
    code: Code,
    id: u8,
    auth: [u8; 16],
    cause: Option<u32>,
    ma: bool,
    secret: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::new(code, id);
    if let Some(c) = cause {
        b.add_u32(dict::ERROR_CAUSE, c).unwrap();
    }
    let _ = req;
    let mut out = Vec::new();
    b.encode_reply_raw(id, &auth, secret, ma, &mut out);
    out
}

#[test]
fn requests_are_signed_as_rfc_5176_says_with_message_authenticator_first() {
    for kind in [DynAuthKind::Coa, DynAuthKind::Disconnect] {
        let req = DynAuthRequest::encode(kind, 77, &attrs(), SECRET);
        let p = Packet::decode(&req.bytes).unwrap();
        assert_eq!(p.code(), kind.request_code());
        assert_eq!(p.identifier(), 77);
        assert_eq!(p.authenticator(), &req.authenticator);
        // Message-Authenticator is the first attribute.
        assert_eq!(
            p.attributes().next().unwrap().typ,
            dict::MESSAGE_AUTHENTICATOR
        );
        // The NAS side of this crate accepts it with the secret (Request Authenticator over
        // 16 zero octets, MA with a zeroed Authenticator field) …
        assert_eq!(
            verify_request(&p, SECRET),
            Ok(RequestCheck {
                message_authenticator: true
            })
        );
        // … and refuses it with another secret.
        assert!(verify_request(&p, b"other-secret").is_err());
        assert_eq!(
            p.get_str(dict::CALLING_STATION_ID),
            Some("02:00:00:00:00:01")
        );
        let avpair: Vec<_> = p.vendor_attributes(dict::vendor::CISCO).collect();
        assert_eq!(
            avpair,
            vec![(
                dict::cisco::AVPAIR,
                &b"subscriber:command=reauthenticate"[..]
            )]
        );
    }
}

#[test]
fn the_request_authenticator_is_md5_over_zeros_not_random() {
    // Same content, same secret → the same authenticator; another id → another one.
    let a = DynAuthRequest::encode(DynAuthKind::Coa, 1, &attrs(), SECRET);
    let b = DynAuthRequest::encode(DynAuthKind::Coa, 1, &attrs(), SECRET);
    let c = DynAuthRequest::encode(DynAuthKind::Coa, 2, &attrs(), SECRET);
    assert_eq!(a.authenticator, b.authenticator);
    assert_ne!(a.authenticator, c.authenticator);
}

#[test]
fn replies_are_verified_table() {
    let coa = DynAuthRequest::encode(DynAuthKind::Coa, 9, &attrs(), SECRET);
    let ra = coa.authenticator;
    let mut other_auth = ra;
    other_auth[0] ^= 1;
    type Case = (&'static str, Vec<u8>, bool, Result<Reply, &'static str>);
    let cases: Vec<Case> = vec![
        (
            "ACK with MA",
            answer(&coa, Code::CoaAck, 9, ra, None, true, SECRET),
            true,
            Ok(Reply::Ack),
        ),
        (
            "ACK without MA, not required",
            answer(&coa, Code::CoaAck, 9, ra, None, false, SECRET),
            false,
            Ok(Reply::Ack),
        ),
        (
            "ACK without MA, required",
            answer(&coa, Code::CoaAck, 9, ra, None, false, SECRET),
            true,
            Err("missing_message_authenticator"),
        ),
        (
            "NAK with Error-Cause 503",
            answer(&coa, Code::CoaNak, 9, ra, Some(503), true, SECRET),
            true,
            Ok(Reply::Nak {
                error_cause: Some(ErrorCause(503)),
            }),
        ),
        (
            "NAK without Error-Cause",
            answer(&coa, Code::CoaNak, 9, ra, None, false, SECRET),
            false,
            Ok(Reply::Nak { error_cause: None }),
        ),
        (
            "identifier-only match (PacketFence) is refused: other request authenticator",
            answer(&coa, Code::CoaAck, 9, other_auth, None, false, SECRET),
            false,
            Err("bad_response_authenticator"),
        ),
        (
            "wrong identifier",
            answer(&coa, Code::CoaAck, 10, ra, None, true, SECRET),
            false,
            Err("identifier_mismatch"),
        ),
        (
            "wrong secret",
            answer(&coa, Code::CoaAck, 9, ra, None, true, b"not-the-secret"),
            false,
            Err("bad_response_authenticator"),
        ),
        (
            "Disconnect-ACK to a CoA-Request",
            answer(&coa, Code::DisconnectAck, 9, ra, None, true, SECRET),
            false,
            Err("wrong_code"),
        ),
        (
            "Access-Accept",
            answer(&coa, Code::AccessAccept, 9, ra, None, true, SECRET),
            false,
            Err("wrong_code"),
        ),
        ("empty datagram", Vec::new(), false, Err("bad_length")),
        (
            "request echoed back",
            coa.bytes.clone(),
            false,
            Err("unexpected_code"),
        ),
    ];
    for (name, datagram, require_ma, want) in cases {
        let got = verify_reply(&coa, &datagram, SECRET, require_ma).map_err(|e| e.reason());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_tampered_message_authenticator_is_refused_even_with_a_good_response_authenticator() {
    let coa = DynAuthRequest::encode(DynAuthKind::Coa, 3, &attrs(), SECRET);
    // Build an ACK whose MA was computed with another secret, then fix up the Response
    // Authenticator with the right one: only the MA is wrong.
    let mut bad = answer(&coa, Code::CoaAck, 3, coa.authenticator, None, true, b"x");
    bad[4..20].copy_from_slice(&coa.authenticator);
    let digest = {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        h.update(&bad);
        h.update(SECRET);
        let d: [u8; 16] = h.finalize().into();
        d
    };
    bad[4..20].copy_from_slice(&digest);
    assert_eq!(
        verify_reply(&coa, &bad, SECRET, false).map_err(|e| e.reason()),
        Err("bad_message_authenticator")
    );
}

#[test]
fn error_causes_are_named() {
    assert_eq!(
        ErrorCause(503).to_string(),
        "503 (Session-Context-Not-Found)"
    );
    assert_eq!(ErrorCause(999).to_string(), "999");
    assert_eq!(ErrorCause(404).name(), Some("Invalid-Request"));
}

#[test]
fn attribute_specs_table() {
    let ok: &[(&str, &str, &[u8])] = &[
        (
            "Cisco-AVPair",
            "subscriber:command=bounce-host-port",
            b"\x1a\x2b\x00\x00\x00\x09\x01\x25subscriber:command=bounce-host-port",
        ),
        (
            "Service-Type",
            "Authorize-Only",
            b"\x06\x06\x00\x00\x00\x11",
        ),
        ("service-type", "17", b"\x06\x06\x00\x00\x00\x11"),
        ("NAS-IP-Address", "10.0.0.1", b"\x04\x06\x0a\x00\x00\x01"),
        ("Filter-Id", "guest", b"\x0b\x07guest"),
    ];
    for (name, value, wire) in ok {
        let mut b = PacketBuilder::new(Code::CoaRequest, 0);
        AttributeSpec::parse(name, value)
            .unwrap()
            .add_to(&mut b)
            .unwrap();
        assert_eq!(b.attribute_bytes(), *wire, "{name}={value}");
    }
    let bad: &[(&str, &str, &str)] = &[
        ("No-Such-Attribute", "1", "unknown attribute"),
        ("Service-Type", "Sometimes", "not a valid integer"),
        ("NAS-IP-Address", "10.0.0", "not a valid IPv4"),
        ("User-Password", "x", "cannot be set"),
        ("Message-Authenticator", "x", "cannot be set"),
        ("Vendor-Specific", "x", "cannot be set"),
    ];
    for (name, value, why) in bad {
        let e = AttributeSpec::parse(name, value).unwrap_err().to_string();
        assert!(e.contains(why), "{name}={value}: {e}");
    }
}

#[test]
fn timeouts_follow_rfc_5080_doubling_with_jitter_and_cap() {
    let p = RetryPolicy {
        initial_timeout: S(2),
        max_timeout: S(16),
        max_transmissions: 10,
        max_duration: S(1000),
    };
    // (jitter ‰, expected successive timeouts in ms)
    let cases: &[(i16, &[u64])] = &[
        (0, &[2000, 4000, 8000, 16000, 16000, 16000]),
        // +0.1: IRT·1.1, then 2·prev + 0.1·prev; over MRT → MRT·1.1.
        (100, &[2200, 4620, 9702, 17600, 17600]),
        // −0.1: IRT·0.9, then 1.9·prev.
        (-100, &[1800, 3420, 6498, 12347, 14400]),
    ];
    for (j, want) in cases {
        let j = Jitter::permille(*j);
        let mut prev = None;
        let got: Vec<u64> = want
            .iter()
            .map(|_| {
                let rt = p.timeout(prev, j);
                prev = Some(rt);
                rt.as_millis() as u64
            })
            .collect();
        assert_eq!(&got, want, "jitter {j:?}");
    }
}

#[test]
fn jitter_from_random_covers_the_range() {
    assert_eq!(Jitter::from_random(0), Jitter::permille(-100));
    assert_eq!(Jitter::from_random(u16::MAX), Jitter::permille(100));
    assert_eq!(Jitter::from_random(32768), Jitter::permille(0));
    assert_eq!(Jitter::permille(500), Jitter::permille(100));
}

/// One event fed to the engine at a time, and the command it must answer.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Start,
    Ack,
    Nak(Option<u32>),
    Timeout,
}

fn send(kind: DynAuthKind, retransmission: bool, until: Duration) -> Command {
    Command::Send {
        kind,
        retransmission,
        until,
    }
}

use DynAuthKind::{Coa, Disconnect};

fn run(chain: &[DynAuthKind], policy: RetryPolicy, script: &[(u64, Ev, Command)]) -> Outcome {
    let mut x = Exchange::new(chain, policy);
    for (i, (at_ms, ev, want)) in script.iter().enumerate() {
        let now = MS(*at_ms);
        let got = match ev {
            Ev::Start => x.start(now, Jitter::ZERO),
            Ev::Ack => x.on_reply(now, Reply::Ack, Jitter::ZERO),
            Ev::Nak(c) => x.on_reply(
                now,
                Reply::Nak {
                    error_cause: c.map(ErrorCause),
                },
                Jitter::ZERO,
            ),
            Ev::Timeout => x.on_timeout(now, Jitter::ZERO),
        };
        assert_eq!(got, *want, "step {i}: {ev:?} at {at_ms} ms");
    }
    x.outcome()
}

fn small() -> RetryPolicy {
    RetryPolicy {
        initial_timeout: S(1),
        max_timeout: S(4),
        max_transmissions: 3,
        max_duration: S(10),
    }
}

#[test]
fn engine_ack_at_first_try() {
    let o = run(
        &[Coa, Disconnect],
        small(),
        &[
            (0, Ev::Start, send(Coa, false, S(1))),
            (30, Ev::Ack, Command::Finished),
        ],
    );
    assert_eq!(
        o.steps,
        vec![Step {
            kind: Coa,
            transmissions: 1,
            result: StepResult::Ack
        }]
    );
    assert!(o.acked());
}

#[test]
fn engine_retransmits_with_doubling_then_acks() {
    let o = run(
        &[Coa],
        small(),
        &[
            (0, Ev::Start, send(Coa, false, S(1))),
            // An early timer fire is ignored: still waiting for the same deadline.
            (500, Ev::Timeout, send(Coa, true, S(1))),
            (1000, Ev::Timeout, send(Coa, true, S(3))),
            (3000, Ev::Timeout, send(Coa, true, S(7))),
            (3100, Ev::Ack, Command::Finished),
        ],
    );
    assert_eq!(o.last().unwrap().transmissions, 3);
    assert!(o.acked());
}

#[test]
fn engine_coa_or_disconnect_falls_back_on_nak() {
    let o = run(
        &[Coa, Disconnect],
        small(),
        &[
            (0, Ev::Start, send(Coa, false, S(1))),
            (20, Ev::Nak(Some(405)), send(Disconnect, false, MS(1020))),
            (40, Ev::Ack, Command::Finished),
        ],
    );
    assert_eq!(
        o.steps,
        vec![
            Step {
                kind: Coa,
                transmissions: 1,
                result: StepResult::Nak(Some(ErrorCause(405)))
            },
            Step {
                kind: Disconnect,
                transmissions: 1,
                result: StepResult::Ack
            },
        ]
    );
}

#[test]
fn engine_coa_or_disconnect_falls_back_on_timeout_after_max_transmissions() {
    let o = run(
        &[Coa, Disconnect],
        small(),
        &[
            (0, Ev::Start, send(Coa, false, S(1))),
            (1000, Ev::Timeout, send(Coa, true, S(3))),
            (3000, Ev::Timeout, send(Coa, true, S(7))),
            // MRC = 3 transmissions: the third timing out ends the CoA.
            (7000, Ev::Timeout, send(Disconnect, false, S(8))),
            (8000, Ev::Timeout, send(Disconnect, true, S(10))),
            (10000, Ev::Timeout, send(Disconnect, true, S(14))),
            (14000, Ev::Timeout, Command::Finished),
            // Anything after the end is ignored.
            (14001, Ev::Ack, Command::Finished),
        ],
    );
    assert_eq!(
        o.steps,
        vec![
            Step {
                kind: Coa,
                transmissions: 3,
                result: StepResult::Timeout
            },
            Step {
                kind: Disconnect,
                transmissions: 3,
                result: StepResult::Timeout
            },
        ]
    );
    assert!(!o.acked());
}

#[test]
fn engine_max_duration_bounds_each_step() {
    let p = RetryPolicy {
        initial_timeout: S(2),
        max_timeout: S(16),
        max_transmissions: 10,
        max_duration: S(5),
    };
    run(
        &[Coa],
        p,
        &[
            (0, Ev::Start, send(Coa, false, S(2))),
            // 2 s + 4 s would pass MRD: the wait is cut at 5 s.
            (2000, Ev::Timeout, send(Coa, true, S(5))),
            (5000, Ev::Timeout, Command::Finished),
        ],
    );
}

#[test]
fn engine_nak_on_the_last_kind_ends_with_the_nak() {
    let o = run(
        &[Disconnect],
        small(),
        &[
            (0, Ev::Start, send(Disconnect, false, S(1))),
            (10, Ev::Nak(Some(503)), Command::Finished),
        ],
    );
    assert_eq!(
        o.last().unwrap().result,
        StepResult::Nak(Some(ErrorCause(503)))
    );
}

#[test]
fn engine_ack_of_coa_does_not_send_the_disconnect() {
    // PacketFence #5124: coaOrDisconnect must try the CoA and stop on its ACK.
    let o = run(
        &[Coa, Disconnect],
        small(),
        &[
            (0, Ev::Start, send(Coa, false, S(1))),
            (1000, Ev::Timeout, send(Coa, true, S(3))),
            (1500, Ev::Ack, Command::Finished),
        ],
    );
    assert_eq!(o.steps.len(), 1);
    assert_eq!(o.steps[0].kind, Coa);
}

#[test]
fn an_empty_chain_sends_a_disconnect() {
    let mut x = Exchange::new(&[], small());
    assert_eq!(x.start(S(0), Jitter::ZERO), send(Disconnect, false, S(1)));
}

proptest::proptest! {
    #[test]
    fn verify_reply_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let coa = DynAuthRequest::encode(DynAuthKind::Coa, 1, &attrs(), SECRET);
        let _ = verify_reply(&coa, &data, SECRET, false);
    }

    #[test]
    fn the_engine_always_finishes(chain in proptest::collection::vec(proptest::bool::ANY, 0..3),
                                  jitters in proptest::collection::vec(-100i16..=100, 64)) {
        let chain: Vec<_> = chain.into_iter().map(|c| if c { Coa } else { Disconnect }).collect();
        let mut x = Exchange::new(&chain, small());
        let mut cmd = x.start(Duration::ZERO, Jitter::ZERO);
        let mut n = 0;
        while let Command::Send { until, .. } = cmd {
            cmd = x.on_timeout(until, Jitter::permille(jitters[n % 64]));
            n += 1;
            proptest::prop_assert!(n < 64);
        }
        proptest::prop_assert_eq!(x.outcome().steps.len(), chain.len().max(1));
    }
}

/// An independent implementation (Python's hashlib/hmac, written from RFC 5176 §2.3 and
/// RFC 3579 §3.2; also the fuzz seeds `fuzz/seeds/coa_reply/`) produces the same request
/// bytes, and its NAK verifies with the Error-Cause decoded.
#[test]
fn matches_an_independent_implementation() {
    let secret = b"fuzz-coa-secret";
    let mut a = PacketBuilder::new(Code::CoaRequest, 0);
    a.add_str(dict::CALLING_STATION_ID, "02:00:00:00:00:01")
        .unwrap();
    let req = DynAuthRequest::encode(DynAuthKind::Coa, 0x2a, &a, secret);
    let want = "2b2a0039b3fb8949e25e67554e9e78176bc9d97150120d61e204466b6a2868132bb6eadb68d41f1330323a30303a30303a30303a30303a3031";
    assert_eq!(hex(&req.bytes), want);
    let nak = unhex(
        "2d2a002c4551c4fc327808e50396046188d3754f5012e26c861cc5448e2a9565f6bb7cc707266506000001f7",
    );
    assert_eq!(
        verify_reply(&req, &nak, secret, true),
        Ok(Reply::Nak {
            error_cause: Some(ErrorCause(503))
        })
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

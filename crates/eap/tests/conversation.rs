//! The conversation engine driven as the RADIUS shell drives it, with a clock we move by
//! hand: method negotiation, the State / identifier rules, duplicates, expiry of abandoned
//! conversations, round and flood limits, MAB over EAP-MD5, and whole EAP-TLS logins with a
//! rustls client in memory (fragmented, TLS 1.2 and 1.3, resumed).

use ironfence_eap::packet::{encode, encode_result};
use ironfence_eap::tlsframe::{FLAG_L, FLAG_M, FLAG_S, TlsFrame};
use ironfence_eap::{
    Code, Conversations, ConversationsConfig, EapPacket, EapType, Input, Limits, Step,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Convs = Conversations<()>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA, a server certificate and a client certificate it signs.
struct Pki {
    ca: CertificateDer<'static>,
    server: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    client: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    };
    Pki {
        ca: ca.der().clone(),
        server: leaf("nac.example"),
        client: leaf("laptop-7.example"),
    }
}

fn config(
    pki: &Pki,
    methods: Vec<EapType>,
    fragment_size: usize,
    limits: Limits,
) -> ConversationsConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let server = |auth: bool| {
        let b = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .unwrap();
        let b = if auth {
            b.with_client_cert_verifier(verifier.clone())
        } else {
            b.with_no_client_auth()
        };
        Arc::new(
            b.with_single_cert(pki.server.0.clone(), pki.server.1.clone_key())
                .unwrap(),
        )
    };
    ConversationsConfig {
        tls_client_auth: server(true),
        tls_tunnel: server(false),
        methods,
        fragment_size,
        server_name: "nac".into(),
        limits,
    }
}

fn engine(methods: Vec<EapType>, limits: Limits) -> (Convs, Pki) {
    let pki = pki();
    let c = Conversations::new(Arc::new(config(&pki, methods, 1024, limits)));
    (c, pki)
}

const SWITCH: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn input<'a>(now: Instant, state: Option<&'a [u8]>, eap: &'a [u8]) -> Input<'a> {
    Input {
        now,
        client: SWITCH,
        state,
        eap,
        framed_mtu: None,
        md5_mab: false,
    }
}

fn identity(id: u8, name: &str) -> Vec<u8> {
    encode(Code::Response, id, EapType::Identity, name.as_bytes())
}

/// The Challenge's (EAP packet, State); panics with the step otherwise.
fn challenge(step: Step<()>) -> (Vec<u8>, Vec<u8>) {
    match step {
        Step::Challenge { eap, state } => (eap, state),
        other => panic!("expected a Challenge, got {other:?}"),
    }
}

fn discard_reason(step: Step<()>) -> &'static str {
    match step {
        Step::Discard { reason } => reason,
        other => panic!("expected a Discard, got {other:?}"),
    }
}

fn failure_reason(step: Step<()>) -> &'static str {
    match step {
        Step::Failure { eap, reason, .. } => {
            let p = EapPacket::decode(&eap).unwrap();
            assert_eq!(p.code, Code::Failure);
            reason
        }
        other => panic!("expected a Failure, got {other:?}"),
    }
}

/// (Code, identifier, type) of an EAP packet.
fn head(eap: &[u8]) -> (Code, u8, Option<EapType>) {
    let p = EapPacket::decode(eap).unwrap();
    (p.code, p.identifier, p.typ)
}

#[test]
fn eap_start_identity_and_nak_negotiate_the_method() {
    let (c, _pki) = engine(vec![EapType::Peap, EapType::Tls], Limits::default());
    let now = Instant::now();
    // EAP-Start (an empty EAP-Message) → Request/Identity.
    let (eap, state) = challenge(c.handle(input(now, None, &[])));
    assert_eq!(head(&eap), (Code::Request, 0, Some(EapType::Identity)));
    // Identity → the first method configured, S flag set.
    let (eap, state2) = challenge(c.handle(input(now, Some(&state), &identity(0, "alice"))));
    assert_eq!(state2, state, "one conversation, one State");
    assert_eq!(head(&eap), (Code::Request, 1, Some(EapType::Peap)));
    let p = EapPacket::decode(&eap).unwrap();
    assert_eq!(TlsFrame::decode(p.data).unwrap().flags & FLAG_S, FLAG_S);
    // NAK asking for MD5 then EAP-TLS: MD5 is not offered, TLS is.
    let nak = encode(Code::Response, 1, EapType::Nak, &[4, 13]);
    let (eap, _) = challenge(c.handle(input(now, Some(&state), &nak)));
    assert_eq!(head(&eap), (Code::Request, 2, Some(EapType::Tls)));
    assert_eq!(c.len(), 1);

    // A peer that only wants methods we do not offer: Failure, conversation closed.
    let (eap, state) = challenge(c.handle(input(now, None, &identity(7, "bob"))));
    let id = head(&eap).1;
    let nak = encode(Code::Response, id, EapType::Nak, &[4, 26]);
    assert_eq!(
        failure_reason(c.handle(input(now, Some(&state), &nak))),
        "no_common_method"
    );
    assert_eq!(c.len(), 1, "bob's conversation is gone, alice's stays");
}

#[test]
fn state_and_identifier_rules_and_duplicates() {
    let (c, _pki) = engine(vec![EapType::Tls], Limits::default());
    let now = Instant::now();
    let (eap, state) = challenge(c.handle(input(now, None, &identity(3, "carol"))));
    let id = head(&eap).1;
    assert_eq!(id, 4);
    // The NAS lost our Challenge and resends the Identity: the same answer, same State.
    let (again, s) = challenge(c.handle(input(now, Some(&state), &identity(3, "carol"))));
    assert_eq!((again, s), (eap.clone(), state.clone()));
    // A Response with an identifier we did not ask for.
    let stray = encode(Code::Response, 99, EapType::Tls, &[0]);
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&state), &stray))),
        "eap_wrong_identifier"
    );
    // Not a Response; no State on a non-Identity; a State we never gave; garbage.
    let req = encode(Code::Request, id, EapType::Tls, &[0]);
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&state), &req))),
        "eap_not_response"
    );
    let tls = encode(Code::Response, id, EapType::Tls, &[0]);
    assert_eq!(
        discard_reason(c.handle(input(now, None, &tls))),
        "eap_no_state"
    );
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&[7; 16]), &tls))),
        "eap_unknown_state"
    );
    assert_eq!(
        discard_reason(c.handle(input(now, Some(b"short"), &tls))),
        "eap_unknown_state"
    );
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&state), &[2, 1, 0, 200, 1]))),
        "eap_malformed"
    );
    // EAP-Start carries no State.
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&state), &[]))),
        "eap_malformed"
    );
    // EAP Success/Failure from a peer is not a Response either.
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&state), &encode_result(true, id)))),
        "eap_not_response"
    );
    assert_eq!(c.len(), 1, "nothing above opened or closed a conversation");
}

#[test]
fn an_abandoned_conversation_expires_and_frees_its_state() {
    let limits = Limits {
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let (c, _pki) = engine(vec![EapType::Peap], limits);
    let t0 = Instant::now();
    let (_, state) = challenge(c.handle(input(t0, None, &identity(1, "dave"))));
    let (_, kept) = challenge(c.handle(input(t0, None, &identity(1, "erin"))));
    assert_eq!(c.len(), 2);
    let held = c.state_bytes();
    assert!(held > 0);
    assert_eq!(
        c.expire(t0 + Duration::from_secs(59)),
        0,
        "not idle long enough"
    );
    // erin's conversation goes on (a round at t0+30s), dave's is abandoned.
    let p = identity(1, "erin");
    let _ = c.handle(input(t0 + Duration::from_secs(30), Some(&kept), &p));
    assert_eq!(c.expire(t0 + Duration::from_secs(61)), 1);
    assert_eq!(c.len(), 1);
    assert!(
        c.state_bytes() < held,
        "the expired conversation's memory is released"
    );
    let late = encode(Code::Response, 2, EapType::Peap, &[0]);
    assert_eq!(
        discard_reason(c.handle(input(t0 + Duration::from_secs(62), Some(&state), &late))),
        "eap_unknown_state"
    );
    // A round arriving after the timeout, before any sweep, ends it too.
    assert_eq!(
        discard_reason(c.handle(input(t0 + Duration::from_secs(95), Some(&kept), &p))),
        "eap_expired"
    );
    assert!(c.is_empty());
    assert_eq!(c.expire(t0 + Duration::from_secs(3600)), 0);
}

#[test]
fn the_round_limit_ends_a_conversation() {
    let limits = Limits {
        max_rounds: 4,
        ..Limits::default()
    };
    let (c, _pki) = engine(vec![EapType::Tls], limits);
    let now = Instant::now();
    let p = identity(1, "mallory");
    let (_, state) = challenge(c.handle(input(now, None, &p)));
    // The opening counts as round 1; retransmissions are rounds too.
    for _ in 0..3 {
        let _ = challenge(c.handle(input(now, Some(&state), &p)));
    }
    assert_eq!(
        discard_reason(c.handle(input(now, Some(&state), &p))),
        "eap_too_many_rounds"
    );
    assert!(c.is_empty());
}

#[test]
fn a_flood_of_new_conversations_is_bounded_per_switch_and_overall() {
    let limits = Limits {
        timeout: Duration::from_secs(60),
        max_conversations: 10,
        max_per_client: 4,
        ..Limits::default()
    };
    let (c, _pki) = engine(vec![EapType::Peap], limits);
    let t0 = Instant::now();
    let open = |client: u8, at: Instant| {
        c.handle(Input {
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, client)),
            ..input(at, None, &identity(1, "flood"))
        })
    };
    for _ in 0..4 {
        challenge(open(1, t0));
    }
    assert_eq!(discard_reason(open(1, t0)), "eap_too_many_for_client");
    for client in 2..=3 {
        for _ in 0..3 {
            challenge(open(client, t0));
        }
    }
    assert_eq!(c.len(), 10);
    assert_eq!(discard_reason(open(9, t0)), "eap_too_many_conversations");
    assert_eq!(c.len(), 10, "refused ones hold nothing");
    // Once the flood has gone idle, a full table makes room for a new peer by itself.
    challenge(open(9, t0 + Duration::from_secs(61)));
    assert_eq!(c.len(), 1);
}

#[test]
fn mab_over_eap_md5_on_a_switch_configured_for_it() {
    let (c, _pki) = engine(vec![EapType::Peap], Limits::default());
    let now = Instant::now();
    let mac = "0011223344aa";
    let md5 = |state: &[u8], eap: &[u8], password: &[u8]| {
        let p = EapPacket::decode(eap).unwrap();
        assert_eq!(p.typ, Some(EapType::Md5Challenge));
        let challenge: [u8; 16] = p.data[1..17].try_into().unwrap();
        let data = ironfence_eap::md5::response_data(p.identifier, &challenge, password, b"");
        let resp = encode(Code::Response, p.identifier, EapType::Md5Challenge, &data);
        c.handle(Input {
            md5_mab: true,
            ..input(now, Some(state), &resp)
        })
    };
    let open = |md5_mab: bool, name: &str| {
        challenge(c.handle(Input {
            md5_mab,
            ..input(now, None, &identity(5, name))
        }))
    };
    let (eap, state) = open(true, mac);
    match md5(&state, &eap, mac.as_bytes()) {
        Step::Success { keys, outcome, .. } => {
            assert!(keys.is_none(), "EAP-MD5 derives no keys");
            assert_eq!(outcome.method.outer, EapType::Md5Challenge);
            assert_eq!(outcome.identity, mac);
        }
        other => panic!("{other:?}"),
    }
    let (eap, state) = open(true, mac);
    assert_eq!(
        failure_reason(md5(&state, &eap, b"guess")),
        "md5_wrong_password"
    );
    // A user name on that switch, or a MAC on a switch not configured for it: TLS methods.
    let (eap, _) = open(true, "alice");
    assert_eq!(head(&eap).2, Some(EapType::Peap));
    let (eap, _) = open(false, mac);
    assert_eq!(head(&eap).2, Some(EapType::Peap));
    assert_eq!(
        c.len(),
        2,
        "the two open conversations, the finished ones closed"
    );
}

/// A supplicant's EAP-TLS side over a rustls client, answering each Request until the
/// conversation ends. `mtu`: Framed-MTU sent with every round.
fn eap_tls_login(
    c: &Convs,
    client: &mut rustls::ClientConnection,
    mtu: Option<u32>,
) -> (Step<()>, usize) {
    let now = Instant::now();
    let mut step = c.handle(input(now, None, &identity(0, "laptop-7")));
    let mut rounds = 1;
    let mut inbound = Vec::new();
    loop {
        let (eap, state) = match step {
            Step::Challenge { eap, state } => (eap, state),
            end => return (end, rounds),
        };
        let p = EapPacket::decode(&eap).unwrap();
        assert_eq!(p.typ, Some(EapType::Tls));
        let f = TlsFrame::decode(p.data).unwrap();
        if let Some(l) = f.length {
            assert!(f.flags & FLAG_L != 0 && l as usize >= f.data.len());
        }
        if let Some(mtu) = mtu {
            assert!(
                eap.len() + 4 <= mtu as usize,
                "{} octets for MTU {mtu}",
                eap.len()
            );
        }
        inbound.extend_from_slice(f.data);
        let reply = if f.flags & FLAG_M != 0 {
            Vec::new() // ACK the fragment
        } else {
            let mut rd = &inbound[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            inbound.clear();
            client.process_new_packets().unwrap();
            let mut out = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut out).unwrap();
            }
            out
        };
        let mut data = vec![0u8]; // flags: whole message, no length
        data.extend_from_slice(&reply);
        let resp = encode(Code::Response, p.identifier, EapType::Tls, &data);
        step = c.handle(Input {
            framed_mtu: mtu,
            ..input(now, Some(&state), &resp)
        });
        rounds += 1;
    }
}

fn client_config(
    pki: &Pki,
    v: &'static rustls::SupportedProtocolVersion,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[v])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(pki.client.0.clone(), pki.client.1.clone_key())
            .unwrap(),
    )
}

#[test]
fn eap_tls_logins_in_memory_fragmented_both_versions_and_resumed() {
    let (c, pki) = engine(vec![EapType::Tls], Limits::default());
    for (v, label) in [
        (&rustls::version::TLS12, "TLSv1_2"),
        (&rustls::version::TLS13, "TLSv1_3"),
    ] {
        let cfg = client_config(&pki, v);
        let name = ServerName::try_from("nac.example").unwrap();
        let mut full = rustls::ClientConnection::new(cfg.clone(), name.clone()).unwrap();
        // Framed-MTU 400: the server's certificate flight goes in several fragments.
        let (end, rounds) = eap_tls_login(&c, &mut full, Some(400));
        let Step::Success { keys, outcome, eap } = end else {
            panic!("{label}: {end:?}")
        };
        assert_eq!(head(&eap).0, Code::Success);
        assert!(rounds > 4, "{label}: fragmented ({rounds} rounds)");
        assert_eq!(outcome.method.tls_version, Some(label));
        assert!(!outcome.method.resumed);
        assert_eq!(outcome.peer_certificates.len(), 1);
        let keys = keys.expect("EAP-TLS keys");
        // The MSK is the one the supplicant derives (RFC 5216 §2.3, RFC 9190 §2.3).
        let (tls_label, context): (&[u8], Option<&[u8]>) = if label == "TLSv1_3" {
            (ironfence_eap::keys::TLS13_LABEL, Some(&[13]))
        } else {
            (ironfence_eap::keys::tls12_label(EapType::Tls), None)
        };
        let km = full
            .export_keying_material([0u8; 128], tls_label, context)
            .unwrap();
        let theirs = ironfence_eap::Msk::from_key_material(&km);
        assert_eq!(keys.mppe_recv(), theirs.mppe_recv(), "{label}");
        assert_eq!(keys.mppe_send(), theirs.mppe_send(), "{label}");
        assert!(
            c.is_empty(),
            "{label}: a finished conversation holds nothing"
        );

        // The same client again: the session resumes.
        let mut again = rustls::ClientConnection::new(cfg, name).unwrap();
        let (end, _) = eap_tls_login(&c, &mut again, None);
        let Step::Success { outcome, .. } = end else {
            panic!("{label} resumed: {end:?}")
        };
        assert!(outcome.method.resumed, "{label}: resumed");
    }
}

#[test]
fn an_untrusted_client_certificate_ends_in_failure_with_the_reason() {
    let (c, pki) = engine(vec![EapType::Tls], Limits::default());
    let stranger = pki_stranger_client(&pki);
    let mut client =
        rustls::ClientConnection::new(stranger, ServerName::try_from("nac.example").unwrap())
            .unwrap();
    let (end, _) = eap_tls_login_tolerant(&c, &mut client);
    let reason = failure_reason(end);
    assert!(reason.starts_with("certificate_"), "{reason}");
    assert!(c.is_empty());
}

/// A client trusting our CA but presenting a certificate from another one.
fn pki_stranger_client(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let other = self::pki();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(other.client.0, other.client.1)
            .unwrap(),
    )
}

/// As [`eap_tls_login`], for a client whose handshake the server refuses: TLS errors on the
/// client side (the alert) are expected and the EAP exchange goes on to its Failure.
fn eap_tls_login_tolerant(c: &Convs, client: &mut rustls::ClientConnection) -> (Step<()>, usize) {
    let now = Instant::now();
    let mut step = c.handle(input(now, None, &identity(0, "stranger")));
    let mut rounds = 1;
    loop {
        let (eap, state) = match step {
            Step::Challenge { eap, state } => (eap, state),
            end => return (end, rounds),
        };
        let p = EapPacket::decode(&eap).unwrap();
        let f = TlsFrame::decode(p.data).unwrap();
        let mut out = Vec::new();
        if f.flags & FLAG_M == 0 {
            let mut rd = f.data;
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            let _ = client.process_new_packets();
            while client.wants_write() {
                client.write_tls(&mut out).unwrap();
            }
        }
        let mut data = vec![0u8];
        data.extend_from_slice(&out);
        let resp = encode(Code::Response, p.identifier, EapType::Tls, &data);
        step = c.handle(input(now, Some(&state), &resp));
        rounds += 1;
        assert!(rounds < 30, "the exchange ends");
    }
}

#[test]
fn after_a_flood_expires_the_table_gives_its_memory_back() {
    let limits = Limits {
        timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (c, _pki) = engine(vec![EapType::Peap], limits);
    let t0 = Instant::now();
    for n in 0..2000u32 {
        let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        challenge(c.handle(Input {
            client,
            ..input(t0, None, &identity(1, "flood"))
        }));
    }
    let peak = c.state_bytes();
    assert!(peak > 2000 * 100, "{peak}");
    assert_eq!(c.expire(t0 + Duration::from_secs(2)), 2000);
    assert_eq!(
        c.state_bytes(),
        0,
        "nothing held once every conversation is gone"
    );
}

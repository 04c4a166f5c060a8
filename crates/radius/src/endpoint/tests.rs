//! The endpoint's decisions, table-driven: no sockets, no sleeping, time as a value.

use super::*;
use crate::verify_response;
use std::collections::HashMap;

const SECRET: &[u8] = b"endpoint-test-fixture-secret";
const SWITCH: &str = "192.0.2.10";
const STRANGER: &str = "192.0.2.99";

/// A client table as the server builds it: source IP → (name, policy).
struct Clients(HashMap<IpAddr, (&'static str, RequireMessageAuthenticator, bool)>);

impl ClientTable for Clients {
    type Client = &'static str;
    fn lookup(&self, ip: IpAddr) -> Option<&'static str> {
        self.0.get(&ip).map(|c| c.0)
    }
    fn policy<'c>(&self, client: &'c &'static str) -> ClientPolicy<'c> {
        let (_, require, limit) = self
            .0
            .values()
            .find(|c| c.0 == *client)
            .copied()
            .expect("known client");
        ClientPolicy {
            secret: SECRET,
            require_message_authenticator: require,
            limit_proxy_state: limit,
        }
    }
}

fn clients(require: RequireMessageAuthenticator, limit_proxy_state: bool) -> Clients {
    Clients(HashMap::from([(
        SWITCH.parse().unwrap(),
        ("sw1", require, limit_proxy_state),
    )]))
}

fn endpoint(service: Service) -> Endpoint {
    Endpoint::new(
        service,
        EndpointConfig {
            reply_cache_ttl: Duration::from_secs(5),
            reply_cache_entries: 1024,
            max_learned_clients: 16,
        },
        7,
    )
}

fn from(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

/// What a switch could send.
#[derive(Debug, Clone, Copy)]
enum Send {
    Mab { ma: bool },
    MabProxied { ma: bool },
    Eap { ma: bool },
    Accounting,
    AccountingWrongSecret,
    StatusServer,
    StatusServerNoMa,
    Garbage,
}

fn datagram(what: Send, authenticator: u8) -> Vec<u8> {
    let auth = [authenticator; 16];
    let mab = || {
        let mut b = PacketBuilder::new(Code::AccessRequest, authenticator);
        b.add_str(dict::USER_NAME, "020000000001").unwrap();
        b.add_str(dict::CALLING_STATION_ID, "02-00-00-00-00-01")
            .unwrap();
        b
    };
    match what {
        Send::Mab { ma } => mab().encode_request(auth, SECRET, ma),
        Send::MabProxied { ma } => {
            let mut b = mab();
            b.add(dict::PROXY_STATE, b"hop-1").unwrap();
            b.encode_request(auth, SECRET, ma)
        }
        Send::Eap { ma } => {
            let mut b = mab();
            b.add(dict::EAP_MESSAGE, &[2, 1, 0, 5, 1]).unwrap();
            let mut bytes = b.encode_request(auth, SECRET, true);
            if !ma {
                // The builder always adds it for EAP: forge a packet without one.
                bytes = without_message_authenticator(&bytes);
            }
            bytes
        }
        Send::Accounting => {
            let mut b = PacketBuilder::new(Code::AccountingRequest, authenticator);
            b.add_u32(dict::ACCT_STATUS_TYPE, 1).unwrap();
            b.encode_accounting_request(SECRET, false)
        }
        Send::AccountingWrongSecret => {
            let mut b = PacketBuilder::new(Code::AccountingRequest, authenticator);
            b.add_u32(dict::ACCT_STATUS_TYPE, 1).unwrap();
            b.encode_accounting_request(b"another-secret", false)
        }
        Send::StatusServer => {
            PacketBuilder::new(Code::StatusServer, authenticator).encode_request(auth, SECRET, true)
        }
        Send::StatusServerNoMa => without_message_authenticator(
            &PacketBuilder::new(Code::StatusServer, authenticator)
                .encode_request(auth, SECRET, true),
        ),
        Send::Garbage => vec![1, authenticator, 0, 10, 0, 0],
    }
}

/// Removes the (first-attribute) Message-Authenticator and fixes the Length field.
fn without_message_authenticator(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(bytes[20], dict::MESSAGE_AUTHENTICATOR);
    let mut out = bytes[..20].to_vec();
    out.extend_from_slice(&bytes[38..]);
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// The outcome of `handle`, reduced to a comparable value.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Drop(&'static str),
    Request,
    StatusServerAnswer,
    Replay,
}

fn seen(a: &Action<&'static str>) -> Seen {
    match a {
        Action::Drop(r) => Seen::Drop(r.label()),
        Action::Request(_) => Seen::Request,
        Action::Reply(_, Replied::StatusServer) => Seen::StatusServerAnswer,
        Action::Reply(_, Replied::Replayed) => Seen::Replay,
    }
}

use RequireMessageAuthenticator::{Auto, No, Yes};

#[test]
fn first_datagram_decisions() {
    // (service, client policy, limit_proxy_state, source, datagram, expected)
    let rows: &[(Service, RequireMessageAuthenticator, bool, &str, Send, Seen)] = &[
        (
            Service::Auth,
            No,
            false,
            STRANGER,
            Send::Mab { ma: true },
            Seen::Drop("unknown_client"),
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::Garbage,
            Seen::Drop("bad_length"),
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::Accounting,
            Seen::Drop("unexpected_code"),
        ),
        (
            Service::Acct,
            No,
            false,
            SWITCH,
            Send::Mab { ma: true },
            Seen::Drop("unexpected_code"),
        ),
        (
            Service::Acct,
            No,
            false,
            SWITCH,
            Send::AccountingWrongSecret,
            Seen::Drop("bad_request_authenticator"),
        ),
        (
            Service::Acct,
            Yes,
            false,
            SWITCH,
            Send::Accounting,
            Seen::Request,
        ),
        (
            Service::Auth,
            Yes,
            false,
            SWITCH,
            Send::Mab { ma: false },
            Seen::Drop("missing_message_authenticator"),
        ),
        (
            Service::Auth,
            Yes,
            false,
            SWITCH,
            Send::Mab { ma: true },
            Seen::Request,
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::Mab { ma: false },
            Seen::Request,
        ),
        (
            Service::Auth,
            Auto,
            false,
            SWITCH,
            Send::Mab { ma: false },
            Seen::Request,
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::Eap { ma: false },
            Seen::Drop("missing_message_authenticator"),
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::Eap { ma: true },
            Seen::Request,
        ),
        (
            Service::Auth,
            No,
            true,
            SWITCH,
            Send::MabProxied { ma: false },
            Seen::Drop("proxy_state_without_message_authenticator"),
        ),
        (
            Service::Auth,
            No,
            true,
            SWITCH,
            Send::MabProxied { ma: true },
            Seen::Request,
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::MabProxied { ma: false },
            Seen::Request,
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::StatusServer,
            Seen::StatusServerAnswer,
        ),
        (
            Service::Acct,
            No,
            false,
            SWITCH,
            Send::StatusServer,
            Seen::StatusServerAnswer,
        ),
        (
            Service::Auth,
            No,
            false,
            SWITCH,
            Send::StatusServerNoMa,
            Seen::Drop("missing_message_authenticator"),
        ),
    ];
    for (i, (service, require, limit, source, send, expected)) in rows.iter().enumerate() {
        let mut e = endpoint(*service);
        let a = e.handle(
            &clients(*require, *limit),
            Instant::now(),
            from(source),
            None,
            &datagram(*send, i as u8),
        );
        assert_eq!(&seen(&a), expected, "row {i}: {send:?} from {source}");
    }
}

#[test]
fn status_server_answer_has_the_port_services_code_and_verifies() {
    for (service, code) in [
        (Service::Auth, Code::AccessAccept),
        (Service::Acct, Code::AccountingResponse),
    ] {
        let mut e = endpoint(service);
        let request = datagram(Send::StatusServer, 9);
        let Action::Reply(reply, Replied::StatusServer) = e.handle(
            &clients(No, false),
            Instant::now(),
            from(SWITCH),
            None,
            &request,
        ) else {
            panic!("Status-Server not answered");
        };
        let p = verify_response(&reply, 9, &[9; 16], SECRET).expect("authentic answer");
        assert_eq!(p.code(), code);
        assert!(p.has_message_authenticator());
    }
}

#[test]
fn retransmits_are_replayed_dropped_or_processed_anew() {
    let table = clients(No, false);
    let t0 = Instant::now();
    let mut e = endpoint(Service::Auth);
    let first = datagram(Send::Mab { ma: true }, 1);
    let Action::Request(req) = e.handle(&table, t0, from(SWITCH), None, &first) else {
        panic!("first copy must be processed");
    };
    // In flight: the retransmit is dropped, never processed twice.
    assert_eq!(
        seen(&e.handle(&table, t0, from(SWITCH), None, &first)),
        Seen::Drop("duplicate_in_progress")
    );
    // Answered: the retransmit gets the very same bytes.
    e.complete(req.key(), b"the reply", t0);
    match e.handle(
        &table,
        t0 + Duration::from_secs(1),
        from(SWITCH),
        None,
        &first,
    ) {
        Action::Reply(bytes, Replied::Replayed) => assert_eq!(bytes, b"the reply"),
        other => panic!("expected a replay, got {other:?}"),
    }
    // After the cache ttl it is a new request again.
    assert_eq!(
        seen(&e.handle(
            &table,
            t0 + Duration::from_secs(20),
            from(SWITCH),
            None,
            &first
        )),
        Seen::Request
    );
    // Same identifier, new Request Authenticator: a different request, processed.
    let mut other = datagram(Send::Mab { ma: true }, 1);
    other = {
        let mut b = PacketBuilder::new(Code::AccessRequest, 1);
        b.add_str(dict::USER_NAME, "020000000001").unwrap();
        let bytes = b.encode_request([0xee; 16], SECRET, true);
        assert_ne!(bytes, other);
        bytes
    };
    assert_eq!(
        seen(&e.handle(&table, t0, from(SWITCH), None, &other)),
        Seen::Request
    );
    // Same bytes from another source port: another client conversation.
    let mut port2 = from(SWITCH);
    port2.set_port(40001);
    assert_eq!(
        seen(&e.handle(&table, t0, port2, None, &first)),
        Seen::Request
    );
}

#[test]
fn abandoned_request_is_processed_again() {
    let table = clients(No, false);
    let t0 = Instant::now();
    let mut e = endpoint(Service::Acct);
    let acct = datagram(Send::Accounting, 3);
    let Action::Request(req) = e.handle(&table, t0, from(SWITCH), None, &acct) else {
        panic!("processed");
    };
    e.abandon(&req.key());
    assert_eq!(
        seen(&e.handle(&table, t0, from(SWITCH), None, &acct)),
        Seen::Request
    );
}

#[test]
fn auto_mode_requires_message_authenticator_once_a_client_sent_one() {
    let table = clients(Auto, false);
    let t0 = Instant::now();
    let mut e = endpoint(Service::Auth);
    assert_eq!(
        seen(&e.handle(
            &table,
            t0,
            from(SWITCH),
            None,
            &datagram(Send::Mab { ma: false }, 1)
        )),
        Seen::Request
    );
    assert_eq!(e.poll_event(), None);
    assert_eq!(
        seen(&e.handle(
            &table,
            t0,
            from(SWITCH),
            None,
            &datagram(Send::Mab { ma: true }, 2)
        )),
        Seen::Request
    );
    assert_eq!(
        e.poll_event(),
        Some(EndpointEvent::LearnedMessageAuthenticator(
            SWITCH.parse().unwrap()
        ))
    );
    assert_eq!(e.poll_event(), None, "learned once");
    assert_eq!(
        seen(&e.handle(
            &table,
            t0,
            from(SWITCH),
            None,
            &datagram(Send::Mab { ma: false }, 3)
        )),
        Seen::Drop("missing_message_authenticator")
    );
}

#[test]
fn requests_carry_increasing_ids_and_the_decoded_packet() {
    let table = clients(No, false);
    let mut e = endpoint(Service::Auth);
    let mut ids = Vec::new();
    for k in 0..3u8 {
        let bytes = datagram(Send::Mab { ma: true }, 10 + k);
        let Action::Request(r) = e.handle(
            &table,
            Instant::now(),
            from(SWITCH),
            Some("192.0.2.1".parse().unwrap()),
            &bytes,
        ) else {
            panic!("processed");
        };
        assert_eq!(r.client, "sw1");
        assert_eq!(r.packet().as_bytes(), &bytes[..]);
        assert_eq!(r.packet().get_str(dict::USER_NAME), Some("020000000001"));
        assert!(r.message_authenticator);
        assert_eq!(r.destination, Some("192.0.2.1".parse().unwrap()));
        ids.push(r.id);
    }
    assert_eq!(ids, [RequestId(7), RequestId(8), RequestId(9)]);
    assert_eq!(RequestId(0xab).to_string(), "00000000000000ab");
}

#[test]
fn ipv4_mapped_sources_find_their_ipv4_client() {
    let table = clients(No, false);
    let mut e = endpoint(Service::Auth);
    let mapped: SocketAddr = "[::ffff:192.0.2.10]:1812".parse().unwrap();
    assert_eq!(
        seen(&e.handle(
            &table,
            Instant::now(),
            mapped,
            None,
            &datagram(Send::Mab { ma: true }, 1)
        )),
        Seen::Request
    );
}

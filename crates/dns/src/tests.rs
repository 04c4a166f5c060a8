//! Tables for the codec, the responder's rules and the forwarding table.

use crate::forward::{AnswerOutcome, Forwarder, Full, Outgoing};
use crate::responder::{Action, DropReason, Passthrough, ReplyKind, Responder};
use crate::wire::{self, DecodeError, Header, Name, Query, TYPE_A, TYPE_AAAA, build_query};
use proptest::prelude::*;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const PORTAL: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 1);

fn name(s: &str) -> Name {
    Name::from_dotted(s).unwrap()
}

fn query(s: &str, qtype: u16) -> Vec<u8> {
    build_query(0x1234, &name(s), qtype, None)
}

fn responder(passthroughs: &[&str]) -> Responder {
    Responder {
        ttl: 15,
        passthrough: Some(Passthrough::parse(passthroughs).unwrap()),
    }
}

fn reply(r: &Responder, datagram: &[u8]) -> (Vec<u8>, ReplyKind) {
    match r.handle(datagram, PORTAL) {
        Action::Reply { bytes, kind } => (bytes, kind),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The records of a reply: (section index 0/1/2, type, ttl, rdata).
fn records(msg: &[u8]) -> Vec<(usize, u16, u32, Vec<u8>)> {
    let h = Header::decode(msg).unwrap();
    let mut at = wire::HEADER_LEN;
    for _ in 0..h.qdcount {
        at = Name::decode(msg, at).unwrap().1 + 4;
    }
    let mut out = Vec::new();
    for (section, n) in [h.ancount, h.nscount, h.arcount].into_iter().enumerate() {
        for _ in 0..n {
            let (_, fixed) = Name::decode(msg, at).unwrap();
            let t = u16::from_be_bytes([msg[fixed], msg[fixed + 1]]);
            let ttl = u32::from_be_bytes(msg[fixed + 4..fixed + 8].try_into().unwrap());
            let len = u16::from_be_bytes([msg[fixed + 8], msg[fixed + 9]]) as usize;
            out.push((section, t, ttl, msg[fixed + 10..fixed + 10 + len].to_vec()));
            at = fixed + 10 + len;
        }
    }
    assert_eq!(at, msg.len(), "records cover the message");
    out
}

// ---- codec ----

/// A header with `qdcount` questions and the given counts, then `body`.
fn message(flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd];
    m.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        m.extend_from_slice(&c.to_be_bytes());
    }
    m.extend_from_slice(body);
    m
}

#[test]
fn malformed_messages_are_refused_with_their_reason() {
    let long_name: Vec<u8> = std::iter::repeat_n([1u8, b'a'], 128)
        .flatten()
        .chain([0, 0, 1, 0, 1])
        .collect();
    let mut label_64 = vec![64u8];
    label_64.extend([b'a'; 64]);
    label_64.extend([0, 0, 1, 0, 1]);
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        ("empty", vec![], DecodeError::Truncated),
        ("header cut", vec![0; 11], DecodeError::Truncated),
        (
            "question missing",
            message(0x0100, [1, 0, 0, 0], &[]),
            DecodeError::Truncated,
        ),
        (
            "label runs past the end",
            message(0x0100, [1, 0, 0, 0], &[5, b'a', b'b']),
            DecodeError::Truncated,
        ),
        (
            "type/class cut",
            message(0x0100, [1, 0, 0, 0], &[1, b'a', 0, 0]),
            DecodeError::Truncated,
        ),
        (
            "name of 257 octets",
            message(0x0100, [1, 0, 0, 0], &long_name),
            DecodeError::NameTooLong,
        ),
        (
            "label of 64 octets (0x40: a label type)",
            message(0x0100, [1, 0, 0, 0], &label_64),
            DecodeError::BadLabelType,
        ),
        (
            "label type 0b10",
            message(0x0100, [1, 0, 0, 0], &[0x80, 0, 0, 1, 0, 1]),
            DecodeError::BadLabelType,
        ),
        (
            "pointer to itself",
            message(0x0100, [1, 0, 0, 0], &[0xc0, 12, 0, 1, 0, 1]),
            DecodeError::BadPointer,
        ),
        (
            "pointer forwards",
            message(0x0100, [1, 0, 0, 0], &[0xc0, 14, 0, 0, 1, 0, 1]),
            DecodeError::BadPointer,
        ),
        (
            "label then pointer back to the same name (a loop)",
            message(0x0100, [1, 0, 0, 0], &[1, b'a', 0xc0, 12, 0, 1, 0, 1]),
            DecodeError::BadPointer,
        ),
        (
            "pointer past the end",
            message(0x0100, [1, 0, 0, 0], &[0xc0]),
            DecodeError::Truncated,
        ),
        (
            "17 pointers in a chain",
            pointer_chain(17),
            DecodeError::BadPointer,
        ),
        (
            "two questions",
            message(0x0100, [2, 0, 0, 0], &[0, 0, 1, 0, 1, 0, 0, 1, 0, 1]),
            DecodeError::TooManyQuestions,
        ),
        (
            "forged answer count",
            message(0x0100, [0, 0xffff, 0, 0], &[]),
            DecodeError::Truncated,
        ),
        (
            "rdata longer than the message",
            message(0x0100, [0, 1, 0, 0], &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1]),
            DecodeError::Truncated,
        ),
        (
            "two OPT records",
            message(
                0x0100,
                [0, 0, 0, 2],
                &[
                    0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
            DecodeError::BadOpt,
        ),
        (
            "OPT not owned by the root",
            message(
                0x0100,
                [0, 0, 0, 1],
                &[1, b'a', 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0],
            ),
            DecodeError::BadOpt,
        ),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(Query::decode(&bytes), Err(want), "{what}");
        // Counted and dropped by the responder, never answered.
        assert_eq!(
            responder(&[]).handle(&bytes, PORTAL),
            Action::Drop(DropReason::Malformed(want)),
            "{what}"
        );
    }
}

/// A message whose additional record's owner is reached through `k` pointers: the name
/// `x.` sits in an answer's RDATA, followed by `k - 1` pointers each to the one before.
fn pointer_chain(k: usize) -> Vec<u8> {
    let rdata_at = 12 + 11;
    let mut rdata = vec![1u8, b'x', 0];
    let mut prev = rdata_at as u16;
    for _ in 1..k {
        let here = (rdata_at + rdata.len()) as u16;
        rdata.extend_from_slice(&(0xc000 | prev).to_be_bytes());
        prev = here;
    }
    let mut body = vec![0u8, 0, 99, 0, 1, 0, 0, 0, 0];
    body.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    body.extend_from_slice(&rdata);
    body.extend_from_slice(&(0xc000 | prev).to_be_bytes());
    body.extend([0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    message(0x0100, [0, 1, 0, 1], &body)
}

#[test]
fn a_chain_of_sixteen_pointers_is_followed() {
    let msg = pointer_chain(16);
    let d = Query::decode(&msg).unwrap();
    assert_eq!(d.header.arcount, 1);
    let owner_at = msg.len() - 12;
    let (n, end) = Name::decode(&msg, owner_at).unwrap();
    assert_eq!(n.to_string(), "x.");
    assert_eq!(end, owner_at + 2, "the name ends after its first pointer");
}

#[test]
fn every_prefix_of_a_valid_query_is_refused_and_the_whole_decodes() {
    let q = build_query(7, &name("portal.example.org"), TYPE_A, Some(1232));
    for n in 0..q.len() {
        assert!(Query::decode(&q[..n]).is_err(), "prefix of {n} octets");
    }
    let d = Query::decode(&q).unwrap();
    assert_eq!(d.header.id, 7);
    assert!(d.header.recursion_desired());
    let question = d.question.unwrap();
    assert_eq!(question.name.to_string(), "portal.example.org.");
    assert_eq!(question.qtype, TYPE_A);
    assert_eq!(d.edns.unwrap().udp_payload, 1232);
}

#[test]
fn names_print_with_escapes_and_compare_label_wise() {
    // One label "a.example" (a dot inside) is not the two labels a + example.
    let one_label = Name::decode(
        &[9, b'a', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0],
        0,
    )
    .unwrap()
    .0;
    assert_eq!(one_label.to_string(), "a\\.example.");
    assert!(!one_label.eq_ignore_case(&name("a.example")));
    assert!(!one_label.is_at_or_below(&name("example")));
    assert!(name("WWW.Example.ORG").is_at_or_below(&name("example.org")));
    assert!(!name("notexample.org").is_at_or_below(&name("example.org")));
    assert_eq!(Name::root().to_string(), ".");
    assert!(Name::from_dotted(&"a".repeat(64)).is_none());
    assert!(Name::from_dotted("a..b").is_none());
    assert!(
        Name::from_dotted(&vec!["abc"; 64].join(".")).is_none(),
        "over 255 octets"
    );
}

// ---- responder rules ----

#[test]
fn every_name_gets_the_portal_address_with_the_ttl() {
    let r = responder(&[]);
    for (qname, qtype) in [("www.apple.com", TYPE_A), ("captive.example", 255)] {
        let q = query(qname, qtype);
        let (bytes, kind) = reply(&r, &q);
        assert_eq!(kind, ReplyKind::Portal);
        let d = Query::decode(&bytes).unwrap();
        assert_eq!(d.header.id, 0x1234);
        assert!(d.header.is_response());
        assert!(d.header.recursion_desired(), "RD copied");
        assert_eq!(d.header.rcode(), 0);
        assert_eq!(d.question.unwrap().name.to_string(), format!("{qname}."));
        assert_eq!(
            records(&bytes),
            vec![(0, TYPE_A, 15, PORTAL.octets().to_vec())]
        );
    }
}

#[test]
fn the_ttl_is_configurable() {
    let r = Responder {
        ttl: 5,
        passthrough: None,
    };
    let (bytes, _) = reply(&r, &query("a.example", TYPE_A));
    assert_eq!(records(&bytes)[0].2, 5);
}

#[test]
fn aaaa_and_other_types_get_nodata_with_a_short_soa() {
    let r = responder(&[]);
    for qtype in [
        TYPE_AAAA, 15, /* MX */
        16, /* TXT */
        65, /* HTTPS */
    ] {
        let (bytes, kind) = reply(&r, &query("www.example.com", qtype));
        assert_eq!(kind, ReplyKind::NoData, "type {qtype}");
        let h = Header::decode(&bytes).unwrap();
        assert_eq!((h.rcode(), h.ancount, h.nscount), (0, 0, 1), "type {qtype}");
        let recs = records(&bytes);
        assert_eq!(recs[0].1, wire::TYPE_SOA);
        assert_eq!(recs[0].2, 15, "SOA TTL");
        let minimum = u32::from_be_bytes(recs[0].3[recs[0].3.len() - 4..].try_into().unwrap());
        assert_eq!(minimum, 15, "SOA MINIMUM bounds negative caching");
    }
}

#[test]
fn other_opcodes_classes_and_shapes_get_their_rcode() {
    let r = responder(&[]);
    let mut status = query("a.example", TYPE_A);
    status[2] |= 2 << 3; // opcode 2 (STATUS)
    let mut notify = query("a.example", TYPE_A);
    notify[2] |= 4 << 3;
    let mut chaos = query("version.bind", 16);
    let n = chaos.len();
    chaos[n - 1] = 3; // class CH
    let no_question = message(0x0100, [0, 0, 0, 0], &[]);
    let axfr = query("example.com", 252);
    let cases = [
        ("STATUS", status, ReplyKind::NotImp, wire::RCODE_NOTIMP),
        ("NOTIFY", notify, ReplyKind::NotImp, wire::RCODE_NOTIMP),
        ("class CH", chaos, ReplyKind::Refused, wire::RCODE_REFUSED),
        ("AXFR", axfr, ReplyKind::Refused, wire::RCODE_REFUSED),
        (
            "no question",
            no_question,
            ReplyKind::FormErr,
            wire::RCODE_FORMERR,
        ),
    ];
    for (what, q, want, rcode) in cases {
        let (bytes, kind) = reply(&r, &q);
        assert_eq!(kind, want, "{what}");
        let h = Header::decode(&bytes).unwrap();
        assert_eq!(h.rcode(), rcode, "{what}");
        assert_eq!((h.ancount, h.nscount), (0, 0), "{what}");
        assert_eq!(
            h.opcode(),
            Header::decode(&q).unwrap().opcode(),
            "opcode echoed: {what}"
        );
    }
}

#[test]
fn a_response_sent_to_the_server_is_dropped() {
    let mut q = query("a.example", TYPE_A);
    q[2] |= 0x80;
    assert_eq!(
        responder(&[]).handle(&q, PORTAL),
        Action::Drop(DropReason::Response)
    );
}

#[test]
fn edns_is_answered_with_an_opt_and_unknown_versions_get_badvers() {
    let r = responder(&[]);
    let q = build_query(1, &name("a.example"), TYPE_A, Some(4096));
    let (bytes, _) = reply(&r, &q);
    let recs = records(&bytes);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].1, wire::TYPE_OPT);
    assert_eq!(
        Query::decode(&bytes).unwrap().edns.unwrap().udp_payload,
        1232
    );

    let mut v1 = q.clone();
    let n = v1.len();
    v1[n - 5] = 1; // OPT TTL: ext-rcode 0, version 1
    let (bytes, kind) = reply(&r, &v1);
    assert_eq!(kind, ReplyKind::BadVers);
    let d = Query::decode(&bytes).unwrap();
    assert_eq!(
        d.header.rcode(),
        0,
        "BADVERS = 16: low bits 0 in the header"
    );
    let opt_ttl = &bytes[bytes.len() - 6..bytes.len() - 2];
    assert_eq!(opt_ttl[0], 1, "upper bits of BADVERS in the OPT");
}

#[test]
fn replies_fit_the_classic_512_octets_even_for_the_longest_name() {
    let longest = vec!["a".repeat(63); 3].join(".") + "." + &"b".repeat(61);
    let r = responder(&[]);
    for qtype in [TYPE_A, TYPE_AAAA] {
        let q = build_query(1, &name(&longest), qtype, Some(4096));
        let (bytes, _) = reply(&r, &q);
        assert!(bytes.len() <= 512, "{} octets", bytes.len());
    }
}

#[test]
fn pass_through_domains_match_exactly_or_below_a_wildcard() {
    let r = responder(&["Allowed.example", "*.wild.example"]);
    let cases = [
        ("allowed.example", true),
        ("ALLOWED.EXAMPLE", true),
        ("www.allowed.example", false),
        ("wild.example", true),
        ("a.b.wild.example", true),
        ("notwild.example", false),
        ("example", false),
    ];
    for (qname, forwarded) in cases {
        for qtype in [TYPE_A, TYPE_AAAA] {
            let got = r.handle(&query(qname, qtype), PORTAL);
            assert_eq!(
                matches!(got, Action::Forward(_)),
                forwarded,
                "{qname} type {qtype}: {got:?}"
            );
        }
    }
    let disabled = Responder {
        ttl: 15,
        passthrough: None,
    };
    assert!(matches!(
        disabled.handle(&query("allowed.example", TYPE_A), PORTAL),
        Action::Reply {
            kind: ReplyKind::Portal,
            ..
        }
    ));
}

#[test]
fn bad_pass_through_entries_are_refused() {
    for bad in ["*", "*.", "a.*.b", "a..b", &"x".repeat(64)] {
        assert!(Passthrough::parse(&[bad]).is_err(), "{bad}");
    }
    assert!(
        Passthrough::parse(&["", " example.com "])
            .unwrap()
            .matches(&name("example.com"))
    );
}

// ---- forwarding table ----

const UPSTREAM: &str = "192.0.2.53:53";
const CLIENT: &str = "192.168.2.50:40000";

fn upstream() -> SocketAddr {
    UPSTREAM.parse().unwrap()
}

/// A resolver's answer to `sent` (as a forwarder sent it): same id and question, `n` A records.
fn upstream_answer(sent: &[u8], n: usize) -> Vec<u8> {
    let q = Query::decode(sent).unwrap();
    let mut b = wire::ReplyBuilder::answering(&q, 0);
    for i in 0..n {
        b.answer_a(Ipv4Addr::new(198, 51, 100, i as u8), 300);
    }
    b.finish()
}

fn forwarded(f: &mut Forwarder<SocketAddr>, now: Instant, q: &[u8], id: u16) -> Vec<u8> {
    let query = Query::decode(q).unwrap();
    let out = Outgoing {
        client: CLIENT.parse().unwrap(),
        datagram: q,
        query: &query,
        limit: query.udp_limit(),
        upstream: upstream(),
    };
    f.forward(now, out, id).unwrap()
}

#[test]
fn an_answer_is_relayed_with_the_clients_id() {
    let t0 = Instant::now();
    let mut f = Forwarder::new(Duration::from_secs(3), 16);
    let q = query("allowed.example", TYPE_A);
    let sent = forwarded(&mut f, t0, &q, 0x9999);
    assert_eq!(Header::decode(&sent).unwrap().id, 0x9999, "upstream id");
    assert_eq!(&sent[2..], &q[2..], "the rest of the query is unchanged");
    let answer = upstream_answer(&sent, 1);
    match f.answer(upstream(), &answer) {
        AnswerOutcome::Relay { client, bytes } => {
            assert_eq!(client, CLIENT.parse::<SocketAddr>().unwrap());
            assert_eq!(Header::decode(&bytes).unwrap().id, 0x1234);
            assert_eq!(&bytes[2..], &answer[2..]);
        }
        other => panic!("{other:?}"),
    }
    assert!(f.is_empty());
    assert_eq!(
        f.answer(upstream(), &answer),
        AnswerOutcome::Drop("unknown_id"),
        "only once"
    );
}

#[test]
fn forged_or_stray_answers_are_dropped_and_the_query_stays_pending() {
    let t0 = Instant::now();
    let mut f = Forwarder::new(Duration::from_secs(3), 16);
    let sent = forwarded(&mut f, t0, &query("allowed.example", TYPE_A), 0x4242);
    let good = upstream_answer(&sent, 1);
    let other_question = upstream_answer(&wire::with_id(&query("evil.example", TYPE_A), 0x4242), 1);
    let mut not_response = good.clone();
    not_response[2] &= 0x7f;
    let cases: Vec<(&str, SocketAddr, Vec<u8>, &str)> = vec![
        (
            "wrong source",
            "192.0.2.99:53".parse().unwrap(),
            good.clone(),
            "wrong_source",
        ),
        (
            "wrong port",
            "192.0.2.53:5353".parse().unwrap(),
            good.clone(),
            "wrong_source",
        ),
        (
            "wrong id",
            upstream(),
            wire::with_id(&good, 0x4243),
            "unknown_id",
        ),
        (
            "other question",
            upstream(),
            other_question,
            "question_mismatch",
        ),
        ("a query", upstream(), not_response, "not_a_response"),
        ("garbage", upstream(), vec![1, 2, 3], "malformed"),
        (
            "cut answer",
            upstream(),
            good[..good.len() - 3].to_vec(),
            "malformed",
        ),
    ];
    for (what, from, bytes, reason) in cases {
        assert_eq!(
            f.answer(from, &bytes),
            AnswerOutcome::Drop(reason),
            "{what}"
        );
        assert_eq!(f.len(), 1, "still pending after {what}");
    }
    assert!(matches!(
        f.answer(upstream(), &good),
        AnswerOutcome::Relay { .. }
    ));
}

#[test]
fn a_resolver_that_does_not_answer_gives_servfail_at_the_deadline() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(3);
    let mut f = Forwarder::new(timeout, 16);
    let q = build_query(0x5555, &name("allowed.example"), TYPE_A, Some(1232));
    forwarded(&mut f, t0, &q, 1);
    assert_eq!(f.next_deadline(), Some(t0 + timeout));
    assert!(f.expire(t0 + timeout - Duration::from_millis(1)).is_empty());
    let expired = f.expire(t0 + timeout);
    assert_eq!(expired.len(), 1);
    let d = Query::decode(&expired[0].reply).unwrap();
    assert_eq!(d.header.id, 0x5555);
    assert_eq!(d.header.rcode(), wire::RCODE_SERVFAIL);
    assert!(d.edns.is_some(), "an EDNS client gets an OPT");
    assert_eq!(d.question.unwrap().name, name("allowed.example"));
    assert!(f.is_empty() && f.next_deadline().is_none());
}

#[test]
fn a_new_timeout_applies_to_queries_forwarded_after_it() {
    let t0 = Instant::now();
    let mut f = Forwarder::new(Duration::from_secs(3), 16);
    let q = query("allowed.example", TYPE_A);
    forwarded(&mut f, t0, &q, 1);
    f.set_timeout(Duration::from_secs(1));
    forwarded(&mut f, t0, &q, 2);
    let first = f.expire(t0 + Duration::from_secs(1));
    assert_eq!(first.len(), 1, "only the query sent under the 1 s timeout");
    assert_eq!(f.len(), 1);
    assert_eq!(f.expire(t0 + Duration::from_secs(3)).len(), 1);
}

#[test]
fn ids_in_use_are_skipped_and_a_full_table_refuses() {
    let t0 = Instant::now();
    let mut f = Forwarder::new(Duration::from_secs(3), 2);
    let q = query("allowed.example", TYPE_A);
    let a = forwarded(&mut f, t0, &q, 7);
    let b = forwarded(&mut f, t0, &q, 7);
    assert_eq!(Header::decode(&a).unwrap().id, 7);
    assert_eq!(Header::decode(&b).unwrap().id, 8, "next free id");
    let query = Query::decode(&q).unwrap();
    assert_eq!(
        f.forward(
            t0,
            Outgoing {
                client: CLIENT.parse().unwrap(),
                datagram: &q,
                query: &query,
                limit: 512,
                upstream: upstream(),
            },
            9
        ),
        Err(Full)
    );
    // Both answers still find their clients.
    for sent in [a, b] {
        assert!(matches!(
            f.answer(upstream(), &upstream_answer(&sent, 1)),
            AnswerOutcome::Relay { .. }
        ));
    }
}

#[test]
fn an_answer_too_big_for_the_client_is_truncated_with_tc() {
    let t0 = Instant::now();
    let mut f = Forwarder::new(Duration::from_secs(3), 16);
    let q = query("allowed.example", TYPE_A); // no EDNS: 512 octets
    let sent = forwarded(&mut f, t0, &q, 3);
    let big = upstream_answer(&sent, 40); // 40 × 16 octets
    assert!(big.len() > 512);
    let AnswerOutcome::Relay { bytes, .. } = f.answer(upstream(), &big) else {
        panic!("relayed")
    };
    let h = Header::decode(&bytes).unwrap();
    assert!(h.truncated());
    assert_eq!((h.id, h.qdcount, h.ancount, h.arcount), (0x1234, 1, 0, 0));
    assert!(bytes.len() <= 512);
}

proptest! {
    #[test]
    fn decoding_and_answering_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Query::decode(&bytes);
        let r = responder(&["*.example.org"]);
        if let Action::Reply { bytes: out, .. } = r.handle(&bytes, PORTAL) {
            prop_assert!(Query::decode(&out).is_ok(), "our replies decode");
        }
        let mut f: Forwarder<()> = Forwarder::new(Duration::from_secs(1), 4);
        let _ = f.answer(upstream(), &bytes);
    }

    #[test]
    fn a_query_after_a_valid_header_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..300),
        counts in any::<[u16; 4]>(),
    ) {
        let m = message(0x0100, counts, &tail);
        let _ = responder(&[]).handle(&m, PORTAL);
    }
}

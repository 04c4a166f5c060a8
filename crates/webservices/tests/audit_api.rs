//! `GET /api/v1/cluster/audit`: a member's own audit records, by MAC and time range.

mod common;

use common::*;
use ironfence_audit::{AuditRecord, Query, RequestType};
use ironfence_core::Mac;
use ironfence_webservices::{ClusterCa, MAX_AUDIT_LIMIT, Trust, parse_audit_query};

fn record(time_us: i64, mac: u8) -> AuditRecord {
    AuditRecord {
        time_us,
        request_id: time_us as u64,
        mac: Some(Mac([2, 0, 0, 0, 0, mac])),
        user_name: Some("020000000001".into()),
        nas_ip: "192.0.2.1".into(),
        nas_port: Some("7".into()),
        request_type: RequestType::Auth,
        outcome: "accept".into(),
        reason: "registered".into(),
        vlan: Some("10".into()),
        role: None,
        switch_id: Some("192.0.2.1".into()),
        calling_station_id: None,
        called_station_id: None,
    }
}

#[tokio::test]
async fn a_member_answers_its_records_by_mac_and_time() {
    let ca = ClusterCa::generate("ca").unwrap();
    let node = std::sync::Arc::new(TestNode {
        audit_records: (0..50)
            .map(|i| record(i * 1_000_000, (i % 2) as u8))
            .collect(),
        ..TestNode::default()
    });
    let server = start_with(cert_for(&ca, LOCALHOST), node).await;
    let c = client(
        server.addr,
        Trust::ClusterCa(ca.cert_der().clone()),
        creds(),
    );
    let q = Query {
        mac: Some(Mac([2, 0, 0, 0, 0, 1])),
        since_us: Some(10_000_000),
        until_us: Some(30_000_000),
        limit: Some(4),
    };
    let got = c.audit(&q).await.unwrap();
    let times: Vec<i64> = got.iter().map(|r| r.time_us / 1_000_000).collect();
    assert_eq!(times, [23, 25, 27, 29]);
    assert_eq!(
        got[0],
        record(23_000_000, 1),
        "every field survives the JSON"
    );
    // The node got exactly the query the client asked.
    assert_eq!(server.node.audit_queries.lock().unwrap().as_slice(), [q]);
    // No limit asked: the server's cap applies.
    let all = c.audit(&Query::default()).await.unwrap();
    assert_eq!(all.len(), 50);
    assert_eq!(
        server.node.audit_queries.lock().unwrap()[1].limit,
        Some(MAX_AUDIT_LIMIT)
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_queries_and_missing_credentials_are_refused() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let auth = format!("\r\nAuthorization: Basic {}", basic(&creds()));
    for (query, why) in [
        ("mac=nope", "mac=\\\"nope\\\" is not a MAC address"),
        ("since=yesterday", "is not a time in microseconds"),
        ("limit=-1", "limit=\\\"-1\\\" is not a number"),
        ("mac=020000000001&mac=020000000002", "mac given twice"),
        ("drop=table", "unknown parameter"),
    ] {
        let (status, text) = raw(
            server.addr,
            ca.cert_der(),
            &format!("GET /api/v1/cluster/audit?{query} HTTP/1.1{auth}"),
        )
        .await;
        assert_eq!(status, 400, "{query}: {text}");
        assert!(text.contains(why), "{query}: {text}");
    }
    let (status, _) = raw(
        server.addr,
        ca.cert_der(),
        "GET /api/v1/cluster/audit?mac=020000000001 HTTP/1.1",
    )
    .await;
    assert_eq!(status, 401);
    assert!(server.node.audit_queries.lock().unwrap().is_empty());
    server.stop().await;
}

#[test]
fn query_string_round_trip() {
    let q = Query {
        mac: Some(Mac([0xaa, 0xbb, 0xcc, 0, 1, 2])),
        since_us: Some(-5),
        until_us: Some(1_700_000_000_000_000),
        limit: Some(3),
    };
    let s = ironfence_webservices::audit_query_string(&q);
    assert_eq!(
        s,
        "mac=aabbcc000102&since=-5&until=1700000000000000&limit=3"
    );
    assert_eq!(parse_audit_query(Some(&s)).unwrap(), q);
    let big = Query {
        limit: Some(usize::MAX),
        ..Query::default()
    };
    assert_eq!(
        parse_audit_query(Some(&ironfence_webservices::audit_query_string(&big)))
            .unwrap()
            .limit,
        Some(MAX_AUDIT_LIMIT)
    );
    assert_eq!(
        parse_audit_query(None).unwrap().limit,
        Some(MAX_AUDIT_LIMIT)
    );
}

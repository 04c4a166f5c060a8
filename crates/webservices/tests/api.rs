//! End-to-end tests over real TLS on loopback.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use ironfence_webservices::{
    AllowedPeers, Client, ClientError, ClusterCa, Credentials, MAX_BUNDLE_BYTES, ServerCert, Trust,
};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn trust(ca: &ClusterCa) -> Trust {
    Trust::ClusterCa(ca.cert_der().clone())
}

#[tokio::test]
async fn round_trip_with_a_ca_issued_certificate() {
    let ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let c = client(server.addr, trust(&ca), creds());

    let status = c.status().await.unwrap();
    assert_eq!(status.hostname, "pf1");
    assert_eq!(status.disabled_peers, vec!["pf3".to_string()]);
    assert_eq!(status.config_version, version());
    assert_eq!(c.config_version().await.unwrap(), version());
    assert_eq!(c.bundle().await.unwrap(), server.node.bundle);

    assert_eq!(
        c.bundle_file("conf/pf.conf").await.unwrap().unwrap(),
        b"[general]\nhostname=pf1\n"
    );
    assert_eq!(
        c.bundle_file("conf/my file.conf").await.unwrap().unwrap(),
        b"spaces"
    );
    assert_eq!(c.bundle_file("conf/absent.conf").await.unwrap(), None);

    let applied = c
        .push_bundle(b"IFBUNDLE new".to_vec(), "pf2")
        .await
        .unwrap();
    assert_eq!(applied.changed_by, "pf2");
    assert_eq!(
        server.node.applied.lock().unwrap().as_slice(),
        &[(b"IFBUNDLE new".to_vec(), "pf2".to_string())]
    );

    let report = c.ask_push().await.unwrap();
    assert_eq!(report.updated, vec!["pf2".to_string()]);
    assert_eq!(report.failed.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn refused_bundle_is_422_with_the_reason() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let c = client(server.addr, trust(&ca), creds());
    match c.push_bundle(b"BAD bundle".to_vec(), "pf2").await {
        Err(ClientError::Refused {
            status, message, ..
        }) => {
            assert_eq!(status, 422);
            assert!(message.contains("bundle hash mismatch"), "{message}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(server.node.applied.lock().unwrap().is_empty());

    // Missing X-Ironfence-From header → 400 with a precise JSON error.
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!(
            "POST /api/v1/cluster/bundle HTTP/1.1\r\nAuthorization: Basic {}\r\nContent-Length: 0",
            basic(&creds())
        ),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains(r#"{"error":"missing X-Ironfence-From header"#),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let ca = ClusterCa::generate("ca").unwrap();
    // The raw requests come from a second member address: more than 5 wrong passwords from one
    // source would block it (see failed_logins_are_throttled_per_source).
    let raw_source = IpAddr::V4(Ipv4Addr::new(127, 0, 32, 1));
    let server = start_on(
        cert_for(&ca, LOCALHOST),
        LOCALHOST,
        AllowedPeers::new([raw_source]),
        TestNode::new(),
    )
    .await;
    let c = client(server.addr, trust(&ca), wrong_creds());
    let err = c.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "401: wrong webservices user or password (pf.conf [webservices] user/pass on the peer)"
        ),
        "{err}"
    );
    // Every endpoint is protected, including the ones with side effects and unknown paths.
    assert!(matches!(
        c.push_bundle(b"x".to_vec(), "pf2").await,
        Err(ClientError::Unauthorized { .. })
    ));
    assert!(matches!(
        c.ask_push().await,
        Err(ClientError::Unauthorized { .. })
    ));
    assert!(matches!(
        c.bundle_file("conf/pf.conf").await,
        Err(ClientError::Unauthorized { .. })
    ));
    assert!(server.node.applied.lock().unwrap().is_empty());
    assert_eq!(server.node.file_calls(), 0);

    for auth in [
        String::new(),
        format!("\r\nAuthorization: Basic {}", basic(&wrong_creds())),
        format!(
            "\r\nAuthorization: Basic {}",
            basic(&Credentials {
                user: "other".into(),
                pass: "s3cret".into()
            })
        ),
        "\r\nAuthorization: Bearer abc".to_string(),
    ] {
        for path in ["/api/v1/cluster/status", "/nope"] {
            let (status, text) = raw_from(
                raw_source,
                server.addr,
                ca.cert_der(),
                &format!("GET {path} HTTP/1.1{auth}"),
            )
            .await;
            assert_eq!(status, 401, "{text}");
            assert!(
                text.to_ascii_lowercase()
                    .contains("www-authenticate: basic realm=\"ironfence\""),
                "{text}"
            );
            assert!(text.contains(r#"{"error":"#), "{text}");
        }
    }
    // The right credentials over the raw path work (sanity check of the helper).
    let (status, _) = raw(
        server.addr,
        ca.cert_der(),
        &format!(
            "GET /api/v1/cluster/version HTTP/1.1\r\nAuthorization: Basic {}",
            basic(&creds())
        ),
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_a_tls_error() {
    let ours = ClusterCa::generate("ironfence cluster CA").unwrap();
    let theirs = ClusterCa::generate("ironfence cluster CA").unwrap(); // same name, other key
    let server = start(cert_for(&theirs, LOCALHOST)).await;
    let err = client(server.addr, trust(&ours), creds())
        .status()
        .await
        .unwrap_err();
    match &err {
        ClientError::Tls { reason, .. } => assert!(
            reason.contains("not issued by this cluster's CA")
                || reason.contains("signature does not verify"),
            "{reason}"
        ),
        other => panic!("expected Tls, got {other:?}"),
    }
    assert!(err.to_string().starts_with("TLS with 127.0.0.1:"), "{err}");

    // Another CA with a different name: plainly an unknown issuer.
    let other = ClusterCa::generate("someone else's CA").unwrap();
    let err = client(server.addr, trust(&other), creds())
        .status()
        .await
        .unwrap_err();
    match err {
        ClientError::Tls { reason, .. } => {
            assert!(
                reason.contains("not issued by this cluster's CA"),
                "{reason}"
            )
        }
        other => panic!("expected Tls, got {other:?}"),
    }
    server.stop().await;
}

/// A self-signed leaf with the same subject and SANs as a genuine one, sent with the genuine CA
/// certificate after it.
#[tokio::test]
async fn tampered_self_signed_leaf_is_refused() {
    let ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "pf1.example.com");
    params.distinguished_name = dn;
    params.subject_alt_names = vec![
        SanType::IpAddress(LOCALHOST),
        SanType::DnsName("pf1.example.com".try_into().unwrap()),
    ];
    let key = KeyPair::generate().unwrap();
    let forged = params.self_signed(&key).unwrap();
    let cert = ServerCert {
        chain: vec![forged.der().clone(), ca.cert_der().clone()],
        key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        reissued: true,
    };
    let server = start(cert).await;
    let err = client(server.addr, trust(&ca), creds())
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    // Pinning the genuine CA fingerprint does not help a forged leaf either.
    let err = client(
        server.addr,
        Trust::PinnedCaFingerprint(ca.fingerprint()),
        creds(),
    )
    .status()
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn certificate_is_verified_against_the_peer_ip() {
    let ca = ClusterCa::generate("ca").unwrap();
    // Issued for another management IP, served on 127.0.0.1.
    let server = start(cert_for(&ca, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))).await;
    match client(server.addr, trust(&ca), creds()).status().await {
        Err(ClientError::Tls { reason, .. }) => {
            assert!(reason.contains("not valid for 127.0.0.1"), "{reason}")
        }
        other => panic!("expected Tls, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn pinned_fingerprint_accepts_the_right_ca_only() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;

    // Accepted: also with the upper-case/colon spelling operators may paste.
    let c = client(
        server.addr,
        Trust::PinnedCaFingerprint(ca.fingerprint()),
        creds(),
    );
    assert_eq!(c.config_version().await.unwrap(), version());
    let upper = ca.fingerprint().to_uppercase();
    let c = client(server.addr, Trust::PinnedCaFingerprint(upper), creds());
    assert_eq!(c.bundle().await.unwrap(), server.node.bundle);

    // Refused: the fingerprint of another CA.
    let other = ClusterCa::generate("ca").unwrap();
    let err = client(
        server.addr,
        Trust::PinnedCaFingerprint(other.fingerprint()),
        creds(),
    )
    .status()
    .await
    .unwrap_err();
    match &err {
        ClientError::Untrusted {
            presented_fingerprint,
            pinned,
            ..
        } => {
            assert_eq!(presented_fingerprint, &ca.fingerprint());
            assert_eq!(pinned.as_deref(), Some(other.fingerprint().as_str()));
        }
        other => panic!("expected Untrusted, got {other:?}"),
    }
    assert!(err.to_string().contains("does NOT match"), "{err}");

    // Malformed fingerprint: refused before connecting.
    let err = Client::new(
        LOCALHOST,
        server.addr.port(),
        Trust::PinnedCaFingerprint("SHA256:1234".into()),
        creds(),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(matches!(err, ClientError::Config { .. }), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn joining_without_fingerprint_shows_the_presented_one() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let err = client(server.addr, Trust::Unknown, creds())
        .status()
        .await
        .unwrap_err();
    let ClientError::Untrusted {
        presented_fingerprint,
        pinned: None,
        ..
    } = &err
    else {
        panic!("expected Untrusted, got {err:?}");
    };
    assert_eq!(presented_fingerprint, &ca.fingerprint());
    let msg = err.to_string();
    assert!(msg.contains(&ca.fingerprint()), "{msg}");
    assert!(
        msg.contains(&format!("--ca-fingerprint {}", ca.fingerprint())),
        "{msg}"
    );
    assert_eq!(server.node.file_calls(), 0);
    server.stop().await;
}

#[tokio::test]
async fn file_paths_cannot_escape_the_bundle() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let auth = format!("\r\nAuthorization: Basic {}", basic(&creds()));
    for path in [
        "../../../etc/passwd",
        "conf/../../etc/shadow",
        "%2e%2e/%2e%2e/etc/passwd",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "conf%2f..%2f..%2fetc%2fpasswd",
        "%2fetc%2fpasswd",
        "/etc/passwd",
        "%252e%252e/etc/passwd",
        "..%5c..%5cetc%5cpasswd",
        "conf/pf.conf%00.txt",
        "./conf/pf.conf",
        "conf/%zz",
    ] {
        let (status, text) = raw(
            server.addr,
            ca.cert_der(),
            &format!("GET /api/v1/cluster/files/{path} HTTP/1.1{auth}"),
        )
        .await;
        assert!(status == 400 || status == 404, "{path}: {status} {text}");
        assert!(!text.contains("root:"), "{path}: {text}");
    }
    assert_eq!(server.node.file_calls(), 0, "the node was asked");

    // Through the client too: refused by the server, the node is never asked.
    let c = client(server.addr, trust(&ca), creds());
    match c.bundle_file("../etc/passwd").await {
        Err(ClientError::Refused {
            status: 400,
            message,
            ..
        }) => {
            assert!(message.contains("invalid bundle file path"), "{message}")
        }
        other => panic!("expected 400, got {other:?}"),
    }
    assert_eq!(server.node.file_calls(), 0);

    // A file of the bundle is served; a path that is not part of it is a 404 from the node.
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!("GET /api/v1/cluster/files/conf/pf.conf HTTP/1.1{auth}"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("hostname=pf1"));
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!("GET /api/v1/cluster/files/var/state.json HTTP/1.1{auth}"),
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert!(
        text.contains("is not a file of the configuration bundle"),
        "{text}"
    );
    assert_eq!(server.node.file_calls(), 2);
    server.stop().await;
}

#[tokio::test]
async fn body_size_limits() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let auth = format!("\r\nAuthorization: Basic {}", basic(&creds()));
    // Declared too large: refused before reading.
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!(
            "POST /api/v1/cluster/bundle HTTP/1.1{auth}\r\nX-Ironfence-From: pf2\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}",
            MAX_BUNDLE_BYTES + 1
        ),
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("larger than 64 MiB"), "{text}");
    // Other endpoints: 1 MiB.
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!(
            "POST /api/v1/cluster/push HTTP/1.1{auth}\r\nContent-Length: {}",
            (1 << 20) + 1
        ),
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(server.node.applied.lock().unwrap().is_empty());

    // The client refuses to send an oversized bundle at all.
    let c = client(server.addr, trust(&ca), creds());
    let err = c
        .push_bundle(vec![0u8; MAX_BUNDLE_BYTES + 1], "pf2")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("64 MiB"), "{err}");

    // A bundle of a few MiB (above the 1 MiB default) goes through, streamed.
    let big = vec![7u8; 3 << 20];
    c.push_bundle(big.clone(), "pf2").await.unwrap();
    assert_eq!(server.node.applied.lock().unwrap()[0].0.len(), big.len());
    server.stop().await;
}

#[tokio::test]
async fn unreachable_and_timeout_errors() {
    let ca = ClusterCa::generate("ca").unwrap();
    // Nothing listens on this port any more.
    let port = {
        let l = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::new(LOCALHOST, port, trust(&ca), creds(), Duration::from_secs(5))
        .unwrap()
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach 127.0.0.1:{port}: connection refused — is ironfence running there and \
             listening on its management IP?"
        )
    );

    // Accepts TCP but never speaks TLS.
    let silent = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let err = Client::new(
        addr.ip(),
        addr.port(),
        trust(&ca),
        creds(),
        Duration::from_millis(300),
    )
    .unwrap()
    .status()
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not answer within 0.3s"),
        "{err}"
    );
    hold.abort();
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let addr: SocketAddr = server.addr;
    client(addr, trust(&ca), creds()).status().await.unwrap();
    server.stop().await;
    let err = client(addr, trust(&ca), creds())
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn unknown_endpoint_and_wrong_method_are_json_errors() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start(cert_for(&ca, LOCALHOST)).await;
    let auth = format!("\r\nAuthorization: Basic {}", basic(&creds()));
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!("GET /api/v1/cluster/nope HTTP/1.1{auth}"),
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert!(
        text.contains(r#"{"error":"no such endpoint: /api/v1/cluster/nope"}"#),
        "{text}"
    );
    let (status, text) = raw(
        server.addr,
        ca.cert_der(),
        &format!("DELETE /api/v1/cluster/status HTTP/1.1{auth}"),
    )
    .await;
    assert_eq!(status, 405, "{text}");
    assert!(
        text.contains(r#"{"error":"DELETE is not allowed"#),
        "{text}"
    );
    server.stop().await;
}

#[test]
fn ca_der_accessor_is_the_trust_anchor() {
    let ca = ClusterCa::generate("ca").unwrap();
    let der: &CertificateDer<'static> = ca.cert_der();
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(ironfence_webservices::ca_fingerprint(der), ca.fingerprint());
}

/// Test cluster on loopback aliases (all of 127/8 is local on Linux): the server is member
/// 127.0.31.1, the other members 127.0.31.2 and .3; 127.0.9.9 is not a member.
const SELF_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 31, 1));
const MEMBER_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 31, 2));
const MEMBER_C: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 31, 3));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 9, 9));

fn members() -> AllowedPeers {
    AllowedPeers::new([SELF_IP, MEMBER_B, MEMBER_C])
}

/// A TCP connection to `addr` from `source`.
async fn connect_from(source: IpAddr, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// The bytes of a genuine TLS ClientHello for `server`.
fn client_hello(ca: &ClusterCa, server: IpAddr) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        rustls::pki_types::ServerName::IpAddress(server.into()),
    )
    .unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    hello
}

/// Sends a ClientHello from `source` and returns everything the server sent back before
/// closing (or what arrived within 5 s).
async fn answer_to_client_hello(source: IpAddr, addr: SocketAddr, hello: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = connect_from(source, addr).await;
    // The server may already have closed: a failed write is part of the answer.
    let _ = tcp.write_all(hello).await;
    let mut buf = [0u8; 4096];
    // The first read tells: a TLS record (the ServerHello), or the close.
    match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].to_vec(),
        Ok(Err(_)) => Vec::new(),
        Err(_) => panic!("neither an answer nor a close from the server within 5 s"),
    }
}

/// Issue 7 item 5: a non-member is closed before the TLS handshake (no ServerHello), a
/// member gets one.
#[tokio::test]
async fn non_members_are_closed_before_the_tls_handshake() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start_on(cert_for(&ca, SELF_IP), SELF_IP, members(), TestNode::new()).await;
    let hello = client_hello(&ca, SELF_IP);

    let from_member = answer_to_client_hello(MEMBER_B, server.addr, &hello).await;
    assert_eq!(
        from_member.first(),
        Some(&0x16),
        "a member gets a ServerHello (TLS handshake record): {from_member:?}"
    );
    let from_stranger = answer_to_client_hello(STRANGER, server.addr, &hello).await;
    assert!(
        from_stranger.is_empty(),
        "a non-member must be closed without any TLS byte, got {} bytes starting {:?}",
        from_stranger.len(),
        &from_stranger[..from_stranger.len().min(8)]
    );

    // Through the client: the error says what to check.
    let err = client(server.addr, trust(&ca), creds())
        .with_source(STRANGER)
        .status()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is this server's address listed in the peer's cluster.conf"),
        "{err}"
    );
    // A member (bound to its management IP) is served.
    let c = client(server.addr, trust(&ca), creds()).with_source(MEMBER_B);
    assert_eq!(c.config_version().await.unwrap(), version());
    server.stop().await;
}

/// The allow-list is live: a reload of cluster.conf (AllowedPeers::set) applies to the next
/// connection without restarting the server.
#[tokio::test]
async fn the_member_list_follows_set_without_a_restart() {
    let ca = ClusterCa::generate("ca").unwrap();
    let allowed = members();
    let server = start_on(
        cert_for(&ca, SELF_IP),
        SELF_IP,
        allowed.clone(),
        TestNode::new(),
    )
    .await;
    let c = client(server.addr, trust(&ca), creds()).with_source(MEMBER_C);
    c.status().await.unwrap();
    allowed.set([SELF_IP, MEMBER_B]); // C removed from cluster.conf
    let err = c.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    allowed.set([SELF_IP, MEMBER_B, MEMBER_C]);
    c.status().await.unwrap();
    server.stop().await;
}

/// Opens `n` TCP connections from `source` and keeps them open (never speaking TLS).
async fn flood(source: IpAddr, addr: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(connect_from(source, addr).await);
    }
    held
}

/// Issue 7 item 5: a flood of connections that never authenticate, from a non-member and
/// then from one member, does not keep the other members from being served.
#[tokio::test]
async fn members_are_served_while_others_flood_the_port() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start_on(cert_for(&ca, SELF_IP), SELF_IP, members(), TestNode::new()).await;
    let member = client(server.addr, trust(&ca), creds()).with_source(MEMBER_B);

    // More connections than the server has slots in all (256), held open.
    let stranger_flood = flood(STRANGER, server.addr, 300).await;
    let status = member.status().await.unwrap();
    assert_eq!(status.hostname, "pf1");
    assert_eq!(member.bundle().await.unwrap(), server.node.bundle);

    // A member (or whoever took its address) flooding gets its own few slots only.
    let member_flood = flood(MEMBER_C, server.addr, 300).await;
    assert_eq!(member.config_version().await.unwrap(), version());
    assert_eq!(member.status().await.unwrap().hostname, "pf1");
    drop(stranger_flood);
    drop(member_flood);
    server.stop().await;
}

/// Issue 7 item 8: after 5 wrong passwords a source is refused (429), even with the right
/// password, while another member is not affected.
#[tokio::test]
async fn failed_logins_are_throttled_per_source() {
    let ca = ClusterCa::generate("ca").unwrap();
    let server = start_on(cert_for(&ca, SELF_IP), SELF_IP, members(), TestNode::new()).await;
    let guesser = client(server.addr, trust(&ca), wrong_creds()).with_source(MEMBER_B);
    for _ in 0..6 {
        let err = guesser.status().await.unwrap_err();
        assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    }
    // Blocked now: the right password from the same source is refused without being checked.
    let same_source = client(server.addr, trust(&ca), creds()).with_source(MEMBER_B);
    match same_source.status().await {
        Err(ClientError::Refused {
            status: 429,
            message,
            ..
        }) => assert!(
            message.contains("too many failed logins from 127.0.31.2"),
            "{message}"
        ),
        other => panic!("expected 429, got {other:?}"),
    }
    let (status, text) = raw_from(
        MEMBER_B,
        server.addr,
        ca.cert_der(),
        &format!(
            "GET /api/v1/cluster/status HTTP/1.1\r\nAuthorization: Basic {}",
            basic(&creds())
        ),
    )
    .await;
    assert_eq!(status, 429, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: "),
        "{text}"
    );
    // Another member is served.
    let other = client(server.addr, trust(&ca), creds()).with_source(MEMBER_C);
    assert_eq!(other.status().await.unwrap().hostname, "pf1");
    server.stop().await;
}

//! How much memory an open EAP conversation holds, measured: opens N conversations and
//! stops each at a given point, then prints `Conversations::state_bytes()` per conversation
//! (what the engine accounts for) and the growth of the process's resident memory per
//! conversation (everything, rustls' own buffers included).
//!
//!   cargo run --release -p ironfence-eap --example state_memory -- [N]
//!
//! Points: after the Identity (the TLS method proposed), and in the middle of a TLS 1.3
//! handshake (ClientHello answered: the server's flight sent, its Finished awaited) — the
//! heaviest state a half-open conversation can make the server keep.

use ironfence_eap::packet::encode;
use ironfence_eap::tlsframe::{FLAG_M, TlsFrame};
use ironfence_eap::{
    Code, Conversations, ConversationsConfig, EapPacket, EapType, Input, Limits, Step,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["nac.example".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .unwrap(),
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let config = Arc::new(ConversationsConfig {
        tls_client_auth: server.clone(),
        tls_tunnel: server,
        methods: vec![EapType::Peap],
        fragment_size: 1024,
        server_name: "nac".into(),
        limits: Limits {
            max_conversations: n * 2,
            max_per_client: n * 2,
            ..Limits::default()
        },
    });
    let now = Instant::now();
    for point in ["after Identity", "mid TLS 1.3 handshake"] {
        let convs: Conversations<()> = Conversations::new(config.clone());
        let before = rss_bytes();
        for i in 0..n {
            let client_ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
            let ident = encode(
                Code::Response,
                1,
                EapType::Identity,
                format!("user{i}").as_bytes(),
            );
            let step = convs.handle(Input {
                now,
                client: client_ip,
                state: None,
                eap: &ident,
                framed_mtu: None,
                md5_mab: false,
            });
            let Step::Challenge { eap, state } = step else {
                panic!("{step:?}")
            };
            if point == "after Identity" {
                continue;
            }
            // ClientHello, then ACK every fragment of the server's flight: the server now
            // holds a handshake in progress waiting for the client's Finished.
            let mut tls = rustls::ClientConnection::new(
                client.clone(),
                ServerName::try_from("nac.example").unwrap(),
            )
            .unwrap();
            let mut hello = vec![0u8];
            tls.write_tls(&mut hello).unwrap();
            let mut id = EapPacket::decode(&eap).unwrap().identifier;
            let mut msg = encode(Code::Response, id, EapType::Peap, &hello);
            loop {
                let step = convs.handle(Input {
                    now,
                    client: client_ip,
                    state: Some(&state),
                    eap: &msg,
                    framed_mtu: None,
                    md5_mab: false,
                });
                let Step::Challenge { eap, .. } = step else {
                    panic!("{step:?}")
                };
                let p = EapPacket::decode(&eap).unwrap();
                let f = TlsFrame::decode(p.data).unwrap();
                id = p.identifier;
                if f.flags & FLAG_M == 0 {
                    break;
                }
                msg = encode(Code::Response, id, EapType::Peap, &[0]);
            }
            // The client is dropped: only the server's state stays in memory.
            drop(tls);
        }
        let rss = rss_bytes().saturating_sub(before);
        println!(
            "{point}: {n} open conversations, state_bytes {:.0} B/conversation, resident memory +{:.0} B/conversation",
            convs.state_bytes() as f64 / n as f64,
            rss as f64 / n as f64
        );
    }
}

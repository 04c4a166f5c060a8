//! The whole EAP server (`Conversations`) fed arbitrary Access-Request EAP parts: a
//! conversation is opened from the first message, later messages carry its State (or a
//! forged one), with Framed-MTU and MD5-MAB varied. Nothing panics and the table stays
//! within its limits.
#![no_main]

use ironfence_eap::{Conversations, ConversationsConfig, EapType, Input, Limits, Step, Verdict};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn config() -> Arc<ConversationsConfig> {
    static CONFIG: OnceLock<Arc<ConversationsConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["nac.example".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let chain = vec![cert.der().clone()];
            let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .unwrap();
            let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
            let auth = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), der.clone_key())
                .unwrap();
            let tunnel = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, der)
                .unwrap();
            Arc::new(ConversationsConfig {
                tls_client_auth: Arc::new(auth),
                tls_tunnel: Arc::new(tunnel),
                methods: vec![EapType::Peap, EapType::Ttls, EapType::Tls],
                fragment_size: 1024,
                server_name: "nac".into(),
                limits: Limits {
                    max_conversations: 8,
                    max_per_client: 4,
                    max_rounds: 20,
                    ..Limits::default()
                },
            })
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let c: Conversations<()> = Conversations::new(config());
    let t0 = Instant::now();
    let mut state: Option<Vec<u8>> = None;
    let mut rest = data;
    let mut round = 0u64;
    // Each message: [control, len, bytes…]; control bits pick the State sent, MTU, MD5-MAB.
    while let [control, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (eap, next) = tail.split_at(n);
        rest = next;
        round += 1;
        let forged = [control.wrapping_mul(7); 16];
        let sent: Option<&[u8]> = match control & 3 {
            0 => None,
            1 | 2 => state.as_deref(),
            _ => Some(&forged),
        };
        let step = c.handle(Input {
            now: t0 + Duration::from_secs(round * u64::from(control >> 6)),
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, control & 0x0c)),
            state: sent,
            eap,
            framed_mtu: (control & 0x10 != 0).then_some(u32::from(*len) * 4),
            md5_mab: control & 0x20 != 0,
        });
        match step {
            Step::Challenge { state: s, .. } => state = Some(s),
            Step::Verify { id, .. } => {
                let verdict = match control & 0x30 {
                    0 => Verdict::Unavailable,
                    0x10 => Verdict::NtHash(Some([*control; 16]), None),
                    0x20 => Verdict::Password(true, None),
                    _ => Verdict::Password(false, None),
                };
                let _ = c.resume(t0, id, verdict);
            }
            _ => {}
        }
        assert!(c.len() <= 8);
    }
    let _ = c.state_bytes();
    c.expire(t0 + Duration::from_secs(86_400));
    assert!(c.is_empty());
});

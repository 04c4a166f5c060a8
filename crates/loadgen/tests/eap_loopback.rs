//! `ironfence-loadgen eap`'s client against a small EAP server written here: RADIUS on
//! 127.0.0.1 (ironfence-radius), EAP-TLS / PEAPv0 framing with fragments and ACKs (RFC 5216
//! §3.1), a rustls `ServerConnection` driven in memory, PEAP's inner phase by
//! `ironfence_eap::peap::PeapInner` (MSCHAPv2, optional crypto-binding), MS-MPPE keys from the
//! server's own key export (RFC 2548 encryption). FreeRADIUS is the real check
//! (`bench/eap.sh check` and the benchmark); this test keeps the client honest without it:
//! full and resumed logins over TLS 1.2 and 1.3, resumption on a second server sharing the
//! session cache (the cluster case of `--servers`), wrong password, wrong keys.

use ironfence_eap::inner::{InnerStep, InnerVerdict};
use ironfence_eap::mschapv2;
use ironfence_eap::packet::{self as eap, Code as EapCode, EapPacket, EapType};
use ironfence_eap::peap::{BindingPolicy, PeapBinding, PeapInner};
use ironfence_loadgen::eap::{self as lg, EapConfig, Failure, Method, TlsVersions};
use ironfence_radius::{Code, Packet, PacketBuilder, dict, verify_request};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const SECRET: &[u8] = b"loopback-test-secret";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const SERVER_NAME: &str = "radius.ironfence.test";
const FRAGMENT: usize = 1000;

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "loopback test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str, eku: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![eku];
        (p.signed_by(&key, &ca).unwrap(), key)
    };
    let (server, server_key) = leaf(SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf("client.ironfence.test", ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_chain: vec![server.der().clone(), ca.der().clone()],
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// How the test server behaves.
#[derive(Clone)]
struct ServerOpts {
    /// rustls configurations for EAP-TLS (client certificate required) and PEAP.
    tls: Arc<rustls::ServerConfig>,
    peap: Arc<rustls::ServerConfig>,
    /// PEAP: send a Crypto-Binding TLV (and require the peer's).
    binding: bool,
    /// Put the wrong MS-MPPE keys into the Access-Accept.
    corrupt_keys: bool,
}

fn server_configs(p: &Pki, cache: Arc<dyn rustls::server::StoresServerSessions>) -> ServerOpts {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = || PrivateKeyDer::Pkcs8(p.server_key.clone_key());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(p.server_chain.clone(), key())
        .unwrap();
    tls.session_storage = cache.clone();
    let mut peap = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(p.server_chain.clone(), key())
        .unwrap();
    peap.session_storage = cache;
    ServerOpts {
        tls: Arc::new(tls),
        peap: Arc::new(peap),
        binding: false,
        corrupt_keys: false,
    }
}

enum Phase {
    Handshake,
    Inner(Box<PeapInner>),
}

struct Conv {
    method: EapType,
    conn: rustls::ServerConnection,
    /// Identifier of the last EAP Request sent.
    id: u8,
    /// Our TLS data not yet sent, and how much of it is.
    tx: Vec<u8>,
    tx_off: usize,
    /// The peer's fragments so far.
    rx: Vec<u8>,
    phase: Phase,
    /// EAP-TLS over TLS 1.3: the commitment octet has been written.
    committed: bool,
}

/// What one Access-Request gets.
enum Answer {
    Challenge(Vec<u8>),
    Accept([u8; 64]),
    Reject,
}

struct TestServer {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(opts: ServerOpts) -> TestServer {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = match sock.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            a => panic!("not IPv4: {a}"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || serve(&sock, &opts, &s));
        TestServer {
            addr,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(sock: &UdpSocket, opts: &ServerOpts, stop: &AtomicBool) {
    let mut convs: HashMap<Vec<u8>, Conv> = HashMap::new();
    let mut buf = vec![0u8; 4096];
    let mut next_state = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(req) = Packet::decode(&buf[..n]) else {
            continue;
        };
        // Unsigned EAP requests are discarded (RFC 3579 §3.2), as a real server does.
        match verify_request(&req, SECRET) {
            Ok(c) if c.message_authenticator => {}
            _ => continue,
        }
        let mut msg = Vec::new();
        for part in req.get_all(dict::EAP_MESSAGE) {
            msg.extend_from_slice(part);
        }
        let state = req.get(dict::STATE).map(<[u8]>::to_vec);
        let mut conv = state.as_ref().and_then(|s| convs.remove(s));
        let answer = answer(opts, &mut conv, &msg);
        let mut b = PacketBuilder::new(
            match answer {
                Answer::Challenge(_) => Code::AccessChallenge,
                Answer::Accept(_) => Code::AccessAccept,
                Answer::Reject => Code::AccessReject,
            },
            req.identifier(),
        );
        let id = conv.as_ref().map_or(0, |c| c.id);
        let eap_out = match &answer {
            Answer::Challenge(e) => e.clone(),
            Answer::Accept(_) => eap::encode_result(true, id),
            Answer::Reject => eap::encode_result(false, id),
        };
        for chunk in eap_out.chunks(ironfence_radius::MAX_ATTRIBUTE_VALUE_LEN) {
            b.add(dict::EAP_MESSAGE, chunk).unwrap();
        }
        if let Answer::Accept(msk) = &answer {
            let mut keys = *msk;
            if opts.corrupt_keys {
                keys[0] ^= 1;
            }
            // RFC 2548: Recv-Key = MSK[0..32], Send-Key = MSK[32..64] (RFC 5216 §2.3).
            b.add_mppe_key(17, &keys[..32], SECRET, req.authenticator(), [1, 2])
                .unwrap();
            b.add_mppe_key(16, &keys[32..], SECRET, req.authenticator(), [3, 4])
                .unwrap();
        }
        if let (Answer::Challenge(_), Some(c)) = (&answer, conv) {
            next_state += 1;
            let s = next_state.to_be_bytes().to_vec();
            b.add(dict::STATE, &s).unwrap();
            convs.insert(s, c);
        }
        let _ = sock.send_to(&b.encode_response(&req, SECRET), from);
    }
}

fn tls_request(id: u8, method: EapType, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + data.len());
    body.push(flags);
    body.extend_from_slice(data);
    eap::encode(EapCode::Request, id, method, &body)
}

/// The next fragment of `c.tx` as an EAP Request (L on the first of several, M on all but
/// the last).
fn next_fragment(c: &mut Conv) -> Vec<u8> {
    let rest = &c.tx[c.tx_off..];
    let n = rest.len().min(FRAGMENT);
    let more = n < rest.len();
    let mut data = Vec::new();
    let mut flags = 0;
    if more {
        flags |= 0x40;
    }
    if c.tx_off == 0 && more {
        flags |= 0x80;
        data.extend_from_slice(&(c.tx.len() as u32).to_be_bytes());
    }
    data.extend_from_slice(&rest[..n]);
    c.tx_off += n;
    c.id = c.id.wrapping_add(1);
    tls_request(c.id, c.method, flags, &data)
}

fn key_material(conn: &rustls::ServerConnection, method: EapType) -> [u8; 128] {
    let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    if tls13 {
        conn.export_keying_material(
            [0u8; 128],
            b"EXPORTER_EAP_TLS_Key_Material",
            Some(&[method.as_u8()]),
        )
    } else {
        conn.export_keying_material([0u8; 128], b"client EAP encryption", None)
    }
    .unwrap()
}

/// Drives one conversation by one EAP Response.
fn answer(opts: &ServerOpts, conv: &mut Option<Conv>, msg: &[u8]) -> Answer {
    let Ok(p) = EapPacket::decode(msg) else {
        return Answer::Reject;
    };
    if p.code != EapCode::Response {
        return Answer::Reject;
    }
    let Some(c) = conv.as_mut() else {
        // A new conversation: Identity decides the method (the test names them so).
        if p.typ != Some(EapType::Identity) {
            return Answer::Reject;
        }
        let (method, cfg) = if p.data == USER.as_bytes() {
            (EapType::Peap, opts.peap.clone())
        } else {
            (EapType::Tls, opts.tls.clone())
        };
        let mut c = Conv {
            method,
            conn: rustls::ServerConnection::new(cfg).unwrap(),
            id: p.identifier,
            tx: Vec::new(),
            tx_off: 0,
            rx: Vec::new(),
            phase: Phase::Handshake,
            committed: false,
        };
        c.id = c.id.wrapping_add(1);
        let start = tls_request(c.id, method, 0x20, &[]);
        *conv = Some(c);
        return Answer::Challenge(start);
    };
    if p.typ != Some(c.method) || p.identifier != c.id {
        return Answer::Reject;
    }
    let Some((&flags, mut data)) = p.data.split_first() else {
        return Answer::Reject;
    };
    if c.tx_off < c.tx.len() {
        // An ACK of our fragment: the next one.
        return Answer::Challenge(next_fragment(c));
    }
    if flags & 0x80 != 0 {
        data = &data[4..];
    }
    c.rx.extend_from_slice(data);
    if flags & 0x40 != 0 {
        c.id = c.id.wrapping_add(1);
        return Answer::Challenge(tls_request(c.id, c.method, 0, &[]));
    }
    let mut rd = &c.rx[..];
    while !rd.is_empty() {
        if c.conn.read_tls(&mut rd).is_err() || c.conn.process_new_packets().is_err() {
            return Answer::Reject;
        }
    }
    c.rx.clear();
    if !c.conn.is_handshaking() {
        if c.method == EapType::Tls
            && !c.committed
            && c.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
        {
            // RFC 9190 §2.5: one octet 0x00 of application data ends the handshake.
            c.conn.writer().write_all(&[0]).unwrap();
            c.committed = true;
        }
        if c.method == EapType::Peap {
            let mut plain = Vec::new();
            let _ = c.conn.reader().read_to_end(&mut plain);
            let step = match &mut c.phase {
                Phase::Handshake => {
                    let binding = opts.binding.then(|| {
                        let km = key_material(&c.conn, EapType::Peap);
                        let mut tk = [0u8; 40];
                        tk.copy_from_slice(&km[..40]);
                        PeapBinding {
                            policy: BindingPolicy::Required,
                            tk,
                            nonce: [0x5a; 32],
                        }
                    });
                    let mut inner = Box::new(PeapInner::new("test", [0x11; 16], binding));
                    let s = inner.start();
                    c.phase = Phase::Inner(inner);
                    Some(s)
                }
                Phase::Inner(inner) if !plain.is_empty() => Some(inner.on_data(&plain)),
                Phase::Inner(_) => None,
            };
            let mut step = step;
            loop {
                match step {
                    Some(InnerStep::Send(out)) => {
                        c.conn.writer().write_all(&out).unwrap();
                        break;
                    }
                    Some(InnerStep::NeedNtHash { user }) => {
                        let Phase::Inner(inner) = &mut c.phase else {
                            unreachable!()
                        };
                        let hash = (user == USER).then(|| mschapv2::nt_password_hash(PASSWORD));
                        step = Some(inner.on_verdict(InnerVerdict::NtHash(hash)));
                    }
                    Some(InnerStep::Success { msk, .. }) => {
                        return Answer::Accept(match msk {
                            Some(m) => m.msk,
                            None => msk_of(&c.conn, c.method),
                        });
                    }
                    Some(_) => return Answer::Reject,
                    None => break,
                }
            }
        }
    }
    c.tx.clear();
    c.tx_off = 0;
    while c.conn.wants_write() {
        c.conn.write_tls(&mut c.tx).unwrap();
    }
    if !c.tx.is_empty() {
        return Answer::Challenge(next_fragment(c));
    }
    if c.method == EapType::Tls && !c.conn.is_handshaking() {
        return Answer::Accept(msk_of(&c.conn, c.method));
    }
    // Nothing to say and not done: the peer acknowledged something we never sent.
    Answer::Reject
}

fn msk_of(conn: &rustls::ServerConnection, method: EapType) -> [u8; 64] {
    let mut m = [0u8; 64];
    m.copy_from_slice(&key_material(conn, method)[..64]);
    m
}

fn client_config(
    p: &Pki,
    servers: Vec<SocketAddrV4>,
    method: Method,
    tls: TlsVersions,
) -> EapConfig {
    let (identity, cert, key) = match method {
        Method::Tls => (
            "client.ironfence.test".to_string(),
            Some(p.client_cert_pem.clone().into_bytes()),
            Some(p.client_key_pem.clone().into_bytes()),
        ),
        Method::Peap => (USER.to_string(), None, None),
    };
    EapConfig {
        servers,
        bind_ip: Ipv4Addr::LOCALHOST,
        secret: SECRET.to_vec(),
        method,
        tls,
        resume: true,
        session_id_only: false,
        identity,
        password: PASSWORD.to_string(),
        ca_pem: p.ca_pem.clone().into_bytes(),
        client_cert_pem: cert,
        client_key_pem: key,
        server_name: SERVER_NAME.to_string(),
        concurrency: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        retries: 1,
        nas_ip: Ipv4Addr::LOCALHOST,
        fragment_size: 1000,
        verbose: false,
        json: false,
    }
}

fn device(cfg: EapConfig) -> lg::Device {
    let shared = Arc::new(lg::tls_config(&cfg).unwrap());
    lg::Device::new(Arc::new(cfg), &shared, 0).unwrap()
}

fn cache() -> Arc<dyn rustls::server::StoresServerSessions> {
    rustls::server::ServerSessionMemoryCache::new(1024)
}

#[test]
fn full_then_resumed_logins_every_method_and_version() {
    let p = pki();
    let server = TestServer::start(server_configs(&p, cache()));
    for method in [Method::Tls, Method::Peap] {
        for tls in [TlsVersions::V12, TlsVersions::V13] {
            let mut dev = device(client_config(&p, vec![server.addr], method, tls));
            for n in 0..3 {
                let l = dev
                    .login()
                    .unwrap_or_else(|e| panic!("{method:?} {tls:?} login {n}: {e}"));
                assert_eq!(l.resumed, n > 0, "{method:?} {tls:?} login {n}: {l:?}");
                assert_eq!(l.offered_resumption, n > 0);
                assert_eq!(l.tls13, tls == TlsVersions::V13);
                assert_eq!(l.server, server.addr);
                // A resumed handshake takes fewer rounds than a full one.
                assert!(l.rounds >= 3, "{l:?}");
            }
        }
    }
}

#[test]
fn resumed_login_goes_to_the_other_server_and_resumes_there() {
    let p = pki();
    let shared = cache();
    let a = TestServer::start(server_configs(&p, shared.clone()));
    let b = TestServer::start(server_configs(&p, shared));
    for method in [Method::Tls, Method::Peap] {
        for tls in [TlsVersions::V12, TlsVersions::V13] {
            let mut dev = device(client_config(&p, vec![a.addr, b.addr], method, tls));
            let first = dev.login().unwrap();
            assert_eq!((first.server, first.resumed), (a.addr, false));
            let second = dev.login().unwrap();
            assert_eq!(
                (second.server, second.resumed),
                (b.addr, true),
                "{method:?} {tls:?}"
            );
        }
    }
    // Servers that do not share their session cache: offered, not resumed, still a login.
    let c = TestServer::start(server_configs(&p, cache()));
    let mut dev = device(client_config(
        &p,
        vec![a.addr, c.addr],
        Method::Tls,
        TlsVersions::V13,
    ));
    dev.login().unwrap();
    let l = dev.login().unwrap();
    assert_eq!(
        (l.server, l.offered_resumption, l.resumed),
        (c.addr, true, false)
    );
}

#[test]
fn peap_with_crypto_binding_uses_the_compound_msk() {
    let p = pki();
    let mut opts = server_configs(&p, cache());
    opts.binding = true;
    let server = TestServer::start(opts);
    for tls in [TlsVersions::V12, TlsVersions::V13] {
        let mut dev = device(client_config(&p, vec![server.addr], Method::Peap, tls));
        // The server sends the compound MSK's keys: a client that ignored the binding (or
        // computed it wrong) would count a key mismatch, and PeapInner (policy Required)
        // would refuse a missing or wrong Crypto-Binding response.
        dev.login().unwrap();
    }
}

#[test]
fn wrong_password_is_a_reject_and_wrong_keys_a_key_mismatch() {
    let p = pki();
    let server = TestServer::start(server_configs(&p, cache()));
    let mut cfg = client_config(&p, vec![server.addr], Method::Peap, TlsVersions::V13);
    cfg.password = "not-the-password".into();
    assert_eq!(device(cfg).login(), Err(Failure::Reject));

    let mut opts = server_configs(&p, cache());
    opts.corrupt_keys = true;
    let bad = TestServer::start(opts);
    for method in [Method::Tls, Method::Peap] {
        let cfg = client_config(&p, vec![bad.addr], method, TlsVersions::V12);
        assert_eq!(device(cfg).login(), Err(Failure::KeyMismatch), "{method:?}");
    }
}

#[test]
fn timed_run_counts_logins_and_resumptions() {
    let p = pki();
    let server = TestServer::start(server_configs(&p, cache()));
    let mut cfg = client_config(&p, vec![server.addr], Method::Tls, TlsVersions::V13);
    cfg.concurrency = 4;
    let (mut started, mut ended) = (false, false);
    let r = lg::run(&cfg, || started = true, || ended = true).unwrap();
    assert!(started && ended);
    let c = r.counters;
    assert!(c.ok > 4, "{c:?}");
    assert_eq!(c.failed(), 0, "{c:?} {:?}", r.sample_failures);
    // Every device's first login is full; all later ones resume.
    assert!(c.resumed + 4 >= c.ok && c.resumed > 0, "{c:?}");
    assert_eq!(c.tls13, c.ok);
    assert_eq!(r.hist.count(), c.ok);
    assert_eq!(r.hist_resumed.count(), c.resumed);
}

#[test]
fn login_lines_parse_as_json_and_key_value() {
    let p = pki();
    let server = TestServer::start(server_configs(&p, cache()));
    let mut dev = device(client_config(
        &p,
        vec![server.addr],
        Method::Peap,
        TlsVersions::V12,
    ));
    let ok = dev.login();
    let line = lg::login_line(0, 0, Method::Peap, server.addr, &ok, 1.5, true);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let l = &v["login"];
    assert_eq!(l["accepted"], true);
    assert_eq!(l["resumed"], false);
    assert_eq!(l["tls"], "1.2");
    assert_eq!(l["method"], "peap-mschapv2");
    assert_eq!(l["server"], server.addr.to_string());
    assert_eq!(l["ms"], 1.5);
    let failed: Result<lg::Login, Failure> = Err(Failure::Protocol("a \"quoted\" reason".into()));
    let line = lg::login_line(3, 7, Method::Tls, server.addr, &failed, 2.0, true);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["login"]["accepted"], false);
    assert_eq!(v["login"]["failure"], "protocol");
    assert_eq!(v["login"]["error"], "protocol: a \"quoted\" reason");
    let kv = lg::login_line(3, 7, Method::Tls, server.addr, &failed, 2.0, false);
    assert!(kv.starts_with("login device=3 n=7 "), "{kv}");
    assert!(kv.contains(" accepted=0 failure=protocol error="), "{kv}");
}

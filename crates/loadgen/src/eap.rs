//! `ironfence-loadgen eap`: 802.1X logins over RADIUS, the NAS and the supplicant in one
//! process. EAP-TLS (RFC 5216, RFC 9190 for TLS 1.3) and PEAPv0-MSCHAPv2 ([MS-PEAP],
//! draft-kamath-pppext-eap-mschapv2) with a rustls client driven in memory.
//!
//! Each simulated device is one thread with one connected UDP socket, running logins back to
//! back (closed loop): `concurrency` conversations are open at any time. One login:
//!
//! * Access-Request per round (RFC 3579): User-Name, NAS-IP-Address, Calling-Station-Id,
//!   Framed-MTU, the EAP packet split into EAP-Message attributes of at most 253 octets
//!   (§3.1), the State of the last Access-Challenge echoed (RFC 2865 §5.24),
//!   Message-Authenticator (mandatory with EAP-Message, §3.2); every reply's Response
//!   Authenticator and Message-Authenticator verified, a reply without Message-Authenticator
//!   is a failure;
//! * EAP-TLS/PEAP framing (RFC 5216 §3.1): flags L/M/S, fragments of the server reassembled
//!   and acknowledged with an empty Response, our own records fragmented and sent one per
//!   round as the server acknowledges;
//! * PEAPv0 inner phase: inner EAP packets without their 4-octet header, except Extensions
//!   (type 33) and FreeRADIUS's Identity request, which carry it; MSCHAPv2 Challenge →
//!   Response → Success (authenticator response checked) → Result TLV acknowledged;
//! * Access-Accept: EAP-Success, MS-MPPE-Recv-Key/Send-Key decrypted (RFC 2548 §2.4.2) and
//!   compared with the MSK the client derived itself (RFC 5216 §2.3: Recv-Key = MSK[0..32],
//!   Send-Key = MSK[32..64]). A login with missing or different keys is a failure.
//!
//! "resumed" mode keeps each device's rustls session store (tickets / session IDs) between
//! its logins, so every login after the device's first is an abbreviated handshake.

use crate::hist::Histogram;
use anyhow::{Context, bail};
use ironfence_eap::packet::{self as eap, Code as EapCode, EapPacket, EapType};
use ironfence_eap::{mschapv2, peap};
use ironfence_radius::{Code, PacketBuilder, decrypt_mppe_key, dict, verify_response};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// EAP method of the logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// EAP-TLS (client certificate).
    Tls,
    /// PEAPv0 with EAP-MSCHAPv2 inside.
    Peap,
}

impl Method {
    fn eap_type(self) -> EapType {
        match self {
            Method::Tls => EapType::Tls,
            Method::Peap => EapType::Peap,
        }
    }

    /// Label in the result line.
    pub fn label(self) -> &'static str {
        match self {
            Method::Tls => "eap-tls",
            Method::Peap => "peap-mschapv2",
        }
    }
}

/// TLS versions the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 only.
    V12,
    /// TLS 1.3 only.
    V13,
    /// Both (the server chooses).
    Any,
}

impl TlsVersions {
    /// Label in the result line.
    pub fn label(self) -> &'static str {
        match self {
            TlsVersions::V12 => "1.2",
            TlsVersions::V13 => "1.3",
            TlsVersions::Any => "any",
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct EapConfig {
    /// RADIUS authentication addresses of the servers. Login `k` of device `n` goes to
    /// `servers[(n + k) % len]`: with several servers and `resume`, every resumed login of a
    /// device is sent to another server than the one that made its session.
    pub servers: Vec<SocketAddrV4>,
    /// Source address of our sockets (the server's client entry).
    pub bind_ip: Ipv4Addr,
    /// Shared secret.
    pub secret: Vec<u8>,
    /// Method.
    pub method: Method,
    /// TLS versions offered.
    pub tls: TlsVersions,
    /// Keep each device's TLS session store between its logins.
    pub resume: bool,
    /// TLS 1.2: resume by session ID only, no session tickets (RFC 5077) — what
    /// wpa_supplicant does, and the only way a TLS 1.2 session made by one server can be
    /// resumed on another that shares its session cache but not its ticket keys.
    pub session_id_only: bool,
    /// EAP identity (outer and, for PEAP, inner MSCHAPv2 user name).
    pub identity: String,
    /// PEAP: the user's password.
    pub password: String,
    /// PEM of the CA(s) that issued the server certificate.
    pub ca_pem: Vec<u8>,
    /// EAP-TLS: client certificate chain (PEM).
    pub client_cert_pem: Option<Vec<u8>>,
    /// EAP-TLS: client private key (PEM, PKCS#8 / SEC1 / PKCS#1).
    pub client_key_pem: Option<Vec<u8>>,
    /// Name the server certificate must carry.
    pub server_name: String,
    /// Conversations open at once (one thread each).
    pub concurrency: usize,
    /// Warm-up, not measured.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
    /// Reply timeout before a retransmission.
    pub timeout: Duration,
    /// Retransmissions of one Access-Request before the login is given up.
    pub retries: u8,
    /// NAS-IP-Address sent.
    pub nas_ip: Ipv4Addr,
    /// Largest TLS data per EAP packet we send (our fragments).
    pub fragment_size: usize,
    /// Timed run: print one line per login (see [`login_line`]).
    pub verbose: bool,
    /// Lines as JSON objects instead of key=value.
    pub json: bool,
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No reply after the retransmissions.
    Timeout,
    /// Access-Reject.
    Reject,
    /// Access-Accept without MS-MPPE keys, or keys different from the client's MSK.
    KeyMismatch,
    /// TLS error (certificate, handshake, alert).
    Tls(String),
    /// Anything else the server got wrong or we could not follow.
    Protocol(String),
    /// Socket error.
    Io(String),
}

/// Labels of [`Failure::kind`], also the keys of the result line's failure counters.
pub const FAILURE_LABELS: [&str; 6] = [
    "timeouts",
    "rejects",
    "key_mismatch",
    "tls_errors",
    "protocol_errors",
    "io_errors",
];

impl Failure {
    /// One word for a per-login line: timeout, reject, key_mismatch, tls, protocol, io.
    pub fn label(&self) -> &'static str {
        ["timeout", "reject", "key_mismatch", "tls", "protocol", "io"][self.kind()]
    }

    /// Index of the failure counter (see [`FAILURE_LABELS`]).
    pub fn kind(&self) -> usize {
        match self {
            Failure::Timeout => 0,
            Failure::Reject => 1,
            Failure::KeyMismatch => 2,
            Failure::Tls(_) => 3,
            Failure::Protocol(_) => 4,
            Failure::Io(_) => 5,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timeout"),
            Failure::Reject => f.write_str("Access-Reject"),
            Failure::KeyMismatch => f.write_str("MPPE keys missing or different from the MSK"),
            Failure::Tls(e) => write!(f, "TLS: {e}"),
            Failure::Protocol(e) => write!(f, "protocol: {e}"),
            Failure::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

/// One login's outcome as one line, key=value or (`json`) a JSON object:
/// `login device=N n=K server=IP:PORT accepted=1 method=… tls=1.2|1.3 resumed=0|1
/// offered_resumption=0|1 rounds=R retransmits=T mppe=ok ms=…`, or on failure
/// `accepted=0 failure=timeout|reject|key_mismatch|tls|protocol|io error="…"`.
pub fn login_line(
    device: u32,
    seq: u64,
    method: Method,
    server: SocketAddrV4,
    outcome: &Result<Login, Failure>,
    ms: f64,
    json: bool,
) -> String {
    let mut kv: Vec<(&str, String, bool)> = vec![
        ("device", device.to_string(), false),
        ("n", seq.to_string(), false),
        ("server", server.to_string(), true),
        ("method", method.label().to_string(), true),
    ];
    match outcome {
        Ok(l) => {
            let b = |v: bool| {
                if json {
                    v.to_string()
                } else {
                    u8::from(v).to_string()
                }
            };
            kv.push(("accepted", b(true), false));
            kv.push(("tls", if l.tls13 { "1.3" } else { "1.2" }.to_string(), true));
            kv.push(("resumed", b(l.resumed), false));
            kv.push(("offered_resumption", b(l.offered_resumption), false));
            kv.push(("rounds", l.rounds.to_string(), false));
            kv.push(("retransmits", l.retransmits.to_string(), false));
            kv.push(("mppe", "ok".to_string(), true));
        }
        Err(f) => {
            kv.push((
                "accepted",
                if json { "false" } else { "0" }.to_string(),
                false,
            ));
            kv.push(("failure", f.label().to_string(), true));
            kv.push(("error", f.to_string(), true));
        }
    }
    kv.push(("ms", format!("{ms:.3}"), false));
    if json {
        let body: Vec<String> = kv
            .iter()
            .map(|(k, v, quoted)| {
                if *quoted {
                    format!("\"{k}\":{}", json_string(v))
                } else {
                    format!("\"{k}\":{v}")
                }
            })
            .collect();
        format!("{{\"login\":{{{}}}}}", body.join(","))
    } else {
        let body: Vec<String> = kv
            .iter()
            .map(|(k, v, _)| {
                if v.contains(' ') || v.contains('"') {
                    format!("{k}={v:?}")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        format!("login {}", body.join(" "))
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn proto(msg: impl Into<String>) -> Failure {
    Failure::Protocol(msg.into())
}

/// A successful login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Login {
    /// Server that answered it.
    pub server: SocketAddrV4,
    /// The client had a session (ticket or ID) of an earlier login to offer.
    pub offered_resumption: bool,
    /// RADIUS round trips (Access-Requests answered, retransmissions not counted).
    pub rounds: u32,
    /// The TLS handshake was an abbreviated (resumed) one.
    pub resumed: bool,
    /// TLS 1.3 was negotiated.
    pub tls13: bool,
    /// Retransmissions.
    pub retransmits: u32,
}

/// Builds the rustls client configuration of `cfg` (resumption disabled; a device that
/// resumes gets its own copy with a session store, see [`Device::new`]).
pub fn tls_config(cfg: &EapConfig) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match cfg.tls {
        TlsVersions::V12 => &[&rustls::version::TLS12],
        TlsVersions::V13 => &[&rustls::version::TLS13],
        TlsVersions::Any => rustls::ALL_VERSIONS,
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&cfg.ca_pem) {
        roots.add(c.context("CA PEM")?).context("CA certificate")?;
    }
    if roots.is_empty() {
        bail!("no CA certificate in the CA PEM");
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_root_certificates(roots);
    let mut c = match (&cfg.client_cert_pem, &cfg.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .context("client certificate PEM")?;
            let key = PrivateKeyDer::from_pem_slice(key).context("client key PEM")?;
            b.with_client_auth_cert(chain, key)
                .context("client certificate")?
        }
        (None, None) => b.with_no_client_auth(),
        _ => bail!("a client certificate needs its key and the other way round"),
    };
    c.resumption = Resumption::disabled();
    Ok(c)
}

/// EAP-TLS flags (RFC 5216 §3.1).
const FLAG_L: u8 = 0x80;
const FLAG_M: u8 = 0x40;
const FLAG_S: u8 = 0x20;
/// Largest TLS message we reassemble (bounded memory against a hostile server).
const MAX_TLS_MESSAGE: usize = 64 * 1024;
/// Microsoft vendor attributes (RFC 2548 §2.4.2, §2.4.3).
const MS_MPPE_SEND_KEY: u8 = 16;
const MS_MPPE_RECV_KEY: u8 = 17;

/// What a reply brought us.
struct Reply {
    code: Code,
    state: Option<Vec<u8>>,
    eap: Vec<u8>,
    recv_key: Option<Vec<u8>>,
    send_key: Option<Vec<u8>>,
}

/// What the MSCHAPv2 Response we sent needs to check the server's Success request.
#[derive(Debug)]
struct SentResponse {
    nt_hash: [u8; 16],
    nt_response: [u8; 24],
    peer_challenge: [u8; 16],
    auth_challenge: [u8; 16],
}

/// Inner MSCHAPv2 progress of a PEAP login.
#[derive(Debug, Default)]
struct Inner {
    /// Set once our Response is sent.
    sent: Option<SentResponse>,
    /// The server's Success request verified and answered.
    mschap_ok: bool,
    /// Result TLV success acknowledged.
    done: bool,
    /// The MSK from crypto-binding, when the server asked for it ([MS-PEAP] §3.1.5.5.2).
    binding_msk: Option<[u8; 64]>,
}

/// One simulated device: its socket, its TLS configuration (own session store when
/// resuming) and its RADIUS identifier sequence.
#[derive(Debug)]
pub struct Device {
    cfg: Arc<EapConfig>,
    tls: Arc<rustls::ClientConfig>,
    sock: UdpSocket,
    mac: String,
    radius_id: u8,
    rx: Vec<u8>,
    /// Device number.
    n: u32,
    /// Logins started so far (picks the server of the next one).
    logins: u64,
    /// A login of this device has completed (its session store may hold a session).
    has_session: bool,
}

impl Device {
    /// Device number `n` (its Calling-Station-Id is 02:ee:<n as 4 bytes>).
    pub fn new(
        cfg: Arc<EapConfig>,
        shared_tls: &Arc<rustls::ClientConfig>,
        n: u32,
    ) -> anyhow::Result<Device> {
        let tls = if cfg.resume {
            let mut c = (**shared_tls).clone();
            let mut r = Resumption::in_memory_sessions(4);
            if cfg.session_id_only {
                r = r.tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
            }
            c.resumption = r;
            Arc::new(c)
        } else {
            shared_tls.clone()
        };
        if cfg.servers.is_empty() {
            bail!("no server given");
        }
        let sock = UdpSocket::bind((cfg.bind_ip, 0))
            .with_context(|| format!("binding a UDP socket on {}", cfg.bind_ip))?;
        sock.set_read_timeout(Some(cfg.timeout))?;
        let b = n.to_be_bytes();
        let mac = format!("02-EE-{:02X}-{:02X}-{:02X}-{:02X}", b[0], b[1], b[2], b[3]);
        Ok(Device {
            cfg,
            tls,
            sock,
            mac,
            radius_id: (n % 256) as u8,
            rx: vec![0; 4096],
            n,
            logins: 0,
            has_session: false,
        })
    }

    /// The server the next login goes to.
    pub fn next_server(&self) -> SocketAddrV4 {
        let s = &self.cfg.servers;
        s[((u64::from(self.n) + self.logins) % s.len() as u64) as usize]
    }

    /// One Access-Request carrying `eap_msg` (and `state`), retransmitted on timeout; the
    /// verified reply.
    fn exchange(
        &mut self,
        server: SocketAddrV4,
        eap_msg: &[u8],
        state: Option<&[u8]>,
        retransmits: &mut u32,
    ) -> Result<Reply, Failure> {
        let cfg = &*self.cfg;
        self.radius_id = self.radius_id.wrapping_add(1);
        let id = self.radius_id;
        let mut b = PacketBuilder::new(Code::AccessRequest, id);
        let enc = |e: ironfence_radius::EncodeError| proto(format!("encoding: {e}"));
        b.add_str(dict::USER_NAME, &cfg.identity).map_err(enc)?;
        b.add_ipv4(dict::NAS_IP_ADDRESS, cfg.nas_ip).map_err(enc)?;
        b.add_u32(dict::NAS_PORT_TYPE, 15).map_err(enc)?; // Ethernet
        b.add_u32(dict::SERVICE_TYPE, 2).map_err(enc)?; // Framed
        b.add_str(dict::CALLING_STATION_ID, &self.mac)
            .map_err(enc)?;
        b.add_u32(dict::FRAMED_MTU, 1400).map_err(enc)?;
        // RFC 3579 §3.1: the EAP packet split into EAP-Message attributes, in order.
        for chunk in eap_msg.chunks(ironfence_radius::MAX_ATTRIBUTE_VALUE_LEN) {
            b.add(dict::EAP_MESSAGE, chunk).map_err(enc)?;
        }
        if let Some(s) = state {
            b.add(dict::STATE, s).map_err(enc)?;
        }
        let mut authenticator = [0u8; 16];
        getrandom::fill(&mut authenticator).map_err(|e| Failure::Io(e.to_string()))?;
        let pkt = b.encode_request(authenticator, &cfg.secret, true);
        let mut tries = 0u8;
        loop {
            self.sock
                .send_to(&pkt, server)
                .map_err(|e| Failure::Io(e.to_string()))?;
            let deadline = Instant::now() + cfg.timeout;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                self.sock
                    .set_read_timeout(Some(deadline - now))
                    .map_err(|e| Failure::Io(e.to_string()))?;
                let n = match self.sock.recv_from(&mut self.rx) {
                    Ok((n, from)) if from == std::net::SocketAddr::V4(server) => n,
                    // Not from the server of this login (a late reply of another one).
                    Ok(_) => continue,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) => return Err(Failure::Io(e.to_string())),
                };
                let p = match verify_response(&self.rx[..n], id, &authenticator, &cfg.secret) {
                    Ok(p) => p,
                    // A late answer to an earlier request of ours: not this one.
                    Err(ironfence_radius::ResponseError::IdentifierMismatch { .. }) => continue,
                    Err(e) => return Err(proto(format!("reply: {e}"))),
                };
                if !p.has_message_authenticator() {
                    return Err(proto("reply without Message-Authenticator"));
                }
                let mut eap = Vec::new();
                for part in p.get_all(dict::EAP_MESSAGE) {
                    eap.extend_from_slice(part);
                }
                let mut recv_key = None;
                let mut send_key = None;
                for (t, v) in p.vendor_attributes(dict::vendor::MICROSOFT) {
                    let slot = match t {
                        MS_MPPE_RECV_KEY => &mut recv_key,
                        MS_MPPE_SEND_KEY => &mut send_key,
                        _ => continue,
                    };
                    *slot = Some(
                        decrypt_mppe_key(v, &cfg.secret, &authenticator)
                            .map_err(|e| proto(format!("MPPE key: {e}")))?,
                    );
                }
                return Ok(Reply {
                    code: p.code(),
                    state: p.get(dict::STATE).map(<[u8]>::to_vec),
                    eap,
                    recv_key,
                    send_key,
                });
            }
            if tries >= cfg.retries {
                return Err(Failure::Timeout);
            }
            tries += 1;
            *retransmits += 1;
        }
    }

    /// One complete login, sent to [`Device::next_server`].
    pub fn login(&mut self) -> Result<Login, Failure> {
        let server = self.next_server();
        self.logins += 1;
        let offered_resumption = self.cfg.resume && self.has_session;
        let r = self.login_to(server, offered_resumption);
        if r.is_ok() {
            self.has_session = true;
        }
        r
    }

    fn login_to(
        &mut self,
        server: SocketAddrV4,
        offered_resumption: bool,
    ) -> Result<Login, Failure> {
        let cfg = self.cfg.clone();
        let method = cfg.method;
        let want = method.eap_type();
        let server_name = ServerName::try_from(cfg.server_name.clone())
            .map_err(|e| Failure::Tls(format!("server name: {e}")))?;
        let mut out = eap::encode(
            EapCode::Response,
            0,
            EapType::Identity,
            cfg.identity.as_bytes(),
        );
        let mut state: Option<Vec<u8>> = None;
        let mut conn: Option<rustls::ClientConnection> = None;
        let mut rx_frag: Vec<u8> = Vec::new();
        let mut tx: Vec<u8> = Vec::new();
        let mut tx_off = 0usize;
        let mut km: Option<[u8; 128]> = None;
        let mut inner = Inner::default();
        let mut rounds = 0u32;
        let mut retransmits = 0u32;
        loop {
            if rounds > 64 {
                return Err(proto("more than 64 rounds"));
            }
            let reply = self.exchange(server, &out, state.as_deref(), &mut retransmits)?;
            rounds += 1;
            match reply.code {
                Code::AccessChallenge => {}
                Code::AccessAccept => {
                    let p = EapPacket::decode(&reply.eap)
                        .map_err(|e| proto(format!("Accept EAP-Message: {e}")))?;
                    if p.code != EapCode::Success {
                        return Err(proto("Access-Accept without EAP-Success"));
                    }
                    let c = conn.as_ref().ok_or_else(|| proto("Accept before TLS"))?;
                    if c.is_handshaking() {
                        return Err(proto("Accept before the TLS handshake finished"));
                    }
                    if method == Method::Peap && !inner.done {
                        return Err(proto("Accept before the inner method finished"));
                    }
                    let km = km.ok_or_else(|| proto("no MSK"))?;
                    // PEAP with crypto-binding: the MSK of the compound keys, else the
                    // TLS-exported one (RFC 5216 §2.3 / RFC 9190 §2.3 / RFC 9427 §3.1).
                    let msk = match inner.binding_msk {
                        Some(m) => m,
                        None => {
                            let mut m = [0u8; 64];
                            m.copy_from_slice(&km[..64]);
                            m
                        }
                    };
                    match (&reply.recv_key, &reply.send_key) {
                        (Some(r), Some(s)) if r[..] == msk[..32] && s[..] == msk[32..] => {}
                        _ => return Err(Failure::KeyMismatch),
                    }
                    return Ok(Login {
                        server,
                        offered_resumption,
                        rounds,
                        resumed: c.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
                        tls13: c.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3),
                        retransmits,
                    });
                }
                Code::AccessReject => return Err(Failure::Reject),
                c => return Err(proto(format!("unexpected reply code {c:?}"))),
            }
            state = reply.state;
            let p = EapPacket::decode(&reply.eap)
                .map_err(|e| proto(format!("Challenge EAP-Message: {e}")))?;
            if p.code != EapCode::Request {
                return Err(proto(format!("Challenge carrying EAP {:?}", p.code)));
            }
            let id = p.identifier;
            match p.typ {
                Some(EapType::Identity) => {
                    out = eap::encode(
                        EapCode::Response,
                        id,
                        EapType::Identity,
                        cfg.identity.as_bytes(),
                    );
                    continue;
                }
                Some(t) if t == want => {}
                // RFC 3748 §5.3.1: Legacy Nak with the method we want.
                Some(_) if conn.is_none() => {
                    out = eap::encode(EapCode::Response, id, EapType::Nak, &[want.as_u8()]);
                    continue;
                }
                other => return Err(proto(format!("unexpected EAP type {other:?}"))),
            }
            let (&flags, mut data) = p
                .data
                .split_first()
                .ok_or_else(|| proto("TLS method packet without flags"))?;
            if flags & FLAG_L != 0 {
                if data.len() < 4 {
                    return Err(proto("L flag without TLS Message Length"));
                }
                let total = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
                if total > MAX_TLS_MESSAGE {
                    return Err(proto("TLS Message Length too large"));
                }
                data = &data[4..];
            }
            if flags & FLAG_S != 0 {
                if conn.is_some() {
                    return Err(proto("second Start"));
                }
                // PEAP: the low 3 bits carry the version; we answer version 0 (PEAPv0).
                let mut c = rustls::ClientConnection::new(self.tls.clone(), server_name.clone())
                    .map_err(|e| Failure::Tls(e.to_string()))?;
                tx.clear();
                tx_off = 0;
                c.write_tls(&mut tx)
                    .map_err(|e| Failure::Tls(e.to_string()))?;
                conn = Some(c);
                out = self.tls_fragment(id, &tx, &mut tx_off);
                continue;
            }
            let c = conn
                .as_mut()
                .ok_or_else(|| proto("TLS data before Start"))?;
            if tx_off < tx.len() {
                // The server acknowledged our previous fragment.
                if !data.is_empty() {
                    return Err(proto("server sent data while we were fragmenting"));
                }
                out = self.tls_fragment(id, &tx, &mut tx_off);
                continue;
            }
            if rx_frag.len() + data.len() > MAX_TLS_MESSAGE {
                return Err(proto("TLS message too large"));
            }
            rx_frag.extend_from_slice(data);
            if flags & FLAG_M != 0 {
                out = self.tls_ack(id);
                continue;
            }
            let mut rd = &rx_frag[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd)
                    .map_err(|e| Failure::Tls(e.to_string()))?;
                c.process_new_packets()
                    .map_err(|e| Failure::Tls(e.to_string()))?;
            }
            rx_frag.clear();
            if !c.is_handshaking() {
                if km.is_none() {
                    km = Some(key_material(c, method)?);
                }
                let mut plain = Vec::new();
                loop {
                    let mut buf = [0u8; 4096];
                    match std::io::Read::read(&mut c.reader(), &mut buf) {
                        Ok(0) => break,
                        Ok(n) => plain.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(Failure::Tls(e.to_string())),
                    }
                    if plain.len() > MAX_TLS_MESSAGE {
                        return Err(proto("inner data too large"));
                    }
                }
                // FreeRADIUS 3.2 also sends EAP-TLS's TLS 1.3 commitment message (one 0x00
                // octet of application data, RFC 9190 §2.5) inside PEAP, which defines none;
                // no inner packet starts with 0x00 (neither a Code nor a Type), so leading
                // zero octets are that message and skipped, as wpa_supplicant does.
                if method == Method::Peap
                    && c.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
                {
                    let zeros = plain.iter().take_while(|&&b| b == 0).count();
                    plain.drain(..zeros);
                }
                if method == Method::Peap && !plain.is_empty() {
                    let resumed = c.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                    let km = km.as_ref().ok_or_else(|| proto("no key material"))?;
                    let resp = peap_inner(&cfg, &mut inner, &plain, resumed, km)?;
                    std::io::Write::write_all(&mut c.writer(), &resp)
                        .map_err(|e| Failure::Tls(e.to_string()))?;
                }
                // EAP-TLS over TLS 1.3 (RFC 9190 §2.5): the server's one-octet 0x00
                // application data ends the handshake; it is acknowledged like any fragment.
            }
            tx.clear();
            tx_off = 0;
            while c.wants_write() {
                c.write_tls(&mut tx)
                    .map_err(|e| Failure::Tls(e.to_string()))?;
            }
            out = if tx.is_empty() {
                self.tls_ack(id)
            } else {
                self.tls_fragment(id, &tx, &mut tx_off)
            };
        }
    }

    /// An empty EAP-TLS/PEAP Response: acknowledges a fragment (RFC 5216 §3.1).
    fn tls_ack(&self, id: u8) -> Vec<u8> {
        eap::encode(EapCode::Response, id, self.cfg.method.eap_type(), &[0])
    }

    /// The next fragment of `tx` from `*off`; L and the total length on the first fragment of
    /// a fragmented message, M on every fragment but the last.
    fn tls_fragment(&self, id: u8, tx: &[u8], off: &mut usize) -> Vec<u8> {
        let frag = self.cfg.fragment_size.max(64);
        let rest = &tx[*off..];
        let n = rest.len().min(frag);
        let more = n < rest.len();
        let mut data = Vec::with_capacity(n + 5);
        let mut flags = 0;
        if more {
            flags |= FLAG_M;
        }
        if *off == 0 && more {
            flags |= FLAG_L;
        }
        data.push(flags);
        if flags & FLAG_L != 0 {
            data.extend_from_slice(&(tx.len() as u32).to_be_bytes());
        }
        data.extend_from_slice(&rest[..n]);
        *off += n;
        eap::encode(EapCode::Response, id, self.cfg.method.eap_type(), &data)
    }
}

/// Key material of the TLS session, 128 octets (MSK ‖ EMSK): RFC 5216 §2.3 (TLS 1.2:
/// PRF(master, "client EAP encryption", client.random ‖ server.random), i.e. the RFC 5705
/// exporter without context) or RFC 9190 §2.3 (TLS 1.3: TLS-Exporter(
/// "EXPORTER_EAP_TLS_Key_Material", Type-Code, 128)); PEAP the same with its own type code
/// (RFC 9427 §3.1). PEAP's crypto-binding TK is its first 40 octets ([MS-PEAP] §3.1.5.5.2.1).
fn key_material(c: &rustls::ClientConnection, method: Method) -> Result<[u8; 128], Failure> {
    let tls13 = c.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    let type_code = [method.eap_type().as_u8()];
    let km = if tls13 {
        c.export_keying_material(
            [0u8; 128],
            b"EXPORTER_EAP_TLS_Key_Material",
            Some(&type_code),
        )
    } else {
        c.export_keying_material([0u8; 128], b"client EAP encryption", None)
    }
    .map_err(|e| Failure::Tls(format!("exporter: {e}")))?;
    Ok(km)
}

/// Answers one inner PEAPv0 packet (plaintext of the tunnel). `resumed`: the TLS session was
/// resumed, so the server may skip the inner method and send the Result TLV at once ("fast
/// reconnect", [MS-PEAP] §3.1.5.3). `km`: the tunnel's key material (crypto-binding TK).
fn peap_inner(
    cfg: &EapConfig,
    st: &mut Inner,
    plain: &[u8],
    resumed: bool,
    km: &[u8; 128],
) -> Result<Vec<u8>, Failure> {
    // [MS-PEAP] §2.2 / hostapd's interpretation: PEAPv0 inner packets have no EAP header,
    // except Extensions (33) and — FreeRADIUS — a bare 5-octet Identity request.
    let full = plain.len() >= 5
        && plain[0] == EapCode::Request.as_u8()
        && usize::from(u16::from_be_bytes([plain[2], plain[3]])) == plain.len()
        && ((plain.len() == 5 && plain[4] == EapType::Identity.as_u8())
            || plain[4] == EapType::Extensions.as_u8());
    let (id, typ, data) = if full {
        (plain[1], EapType::from_u8(plain[4]), &plain[5..])
    } else {
        (0, EapType::from_u8(plain[0]), &plain[1..])
    };
    // Responses are sent without header too, except Extensions.
    let headerless = |typ: EapType, body: &[u8]| {
        let mut v = Vec::with_capacity(1 + body.len());
        v.push(typ.as_u8());
        v.extend_from_slice(body);
        v
    };
    match typ {
        EapType::Identity => Ok(headerless(EapType::Identity, cfg.identity.as_bytes())),
        EapType::MsChapV2 => {
            mschapv2_round(cfg, st, data).map(|body| headerless(EapType::MsChapV2, &body))
        }
        EapType::Extensions if full => {
            let tlvs = peap::parse_tlvs(data).map_err(|e| proto(format!("Extensions: {e}")))?;
            let mut result = None;
            let mut binding = None;
            for t in &tlvs {
                match t.typ {
                    peap::TLV_RESULT if t.value.len() == 2 => {
                        result = Some(u16::from_be_bytes([t.value[0], t.value[1]]));
                    }
                    peap::TLV_CRYPTO_BINDING => binding = Some(t.value),
                    typ if t.mandatory => {
                        return Err(proto(format!("unknown mandatory TLV {typ}")));
                    }
                    _ => {}
                }
            }
            match result {
                Some(peap::RESULT_SUCCESS) if st.mschap_ok || resumed => {}
                Some(peap::RESULT_SUCCESS) => {
                    return Err(proto("Result TLV success before MSCHAPv2 success"));
                }
                Some(_) => return Err(Failure::Reject),
                None => return Err(proto("Extensions without Result TLV")),
            }
            let mut body = peap::result_tlv(true).to_vec();
            if let Some(v) = binding {
                body.extend_from_slice(&crypto_binding(st, v, km)?);
            }
            st.done = true;
            Ok(eap::encode(
                EapCode::Response,
                id,
                EapType::Extensions,
                &body,
            ))
        }
        t => Err(proto(format!("unexpected inner EAP type {t:?}"))),
    }
}

/// The peer's Crypto-Binding TLV ([MS-PEAP] §3.1.5.5.2): checks the server's Compound MAC
/// (`request`: the 56-octet value of its TLV) under the CMK of TK = `km[..40]` and ISK = the
/// MSCHAPv2 MPPE keys (zeros after fast reconnect), answers with subtype 1 and the same nonce,
/// and makes the compound MSK the one the Access-Accept must carry.
fn crypto_binding(st: &mut Inner, request: &[u8], km: &[u8; 128]) -> Result<[u8; 60], Failure> {
    if request.len() != 56 || request[3] != 0 {
        return Err(proto("Crypto-Binding TLV: not a request"));
    }
    let isk = match &st.sent {
        Some(s) if st.mschap_ok => mschapv2::MppeKeys::derive(&s.nt_hash, &s.nt_response).isk(),
        _ => [0u8; 32],
    };
    let mut tk = [0u8; 40];
    tk.copy_from_slice(&km[..40]);
    let (ipmk, cmk) = peap::compound_keys(&tk, &isk);
    let mut tlv = [0u8; 60];
    tlv[..4].copy_from_slice(&[0, peap::TLV_CRYPTO_BINDING as u8, 0, 56]);
    tlv[4..].copy_from_slice(request);
    if peap::compound_mac(&cmk, &tlv) != tlv[40..] {
        return Err(proto("Crypto-Binding TLV: Compound MAC does not verify"));
    }
    let mut nonce = [0u8; 32];
    nonce.copy_from_slice(&request[4..36]);
    st.binding_msk = Some(peap::binding_msk(&ipmk).msk);
    Ok(peap::binding_tlv(&cmk, &nonce, 1))
}

/// EAP-MSCHAPv2 peer (draft-kamath-pppext-eap-mschapv2 §2): the answer to one request
/// (what follows the Type octet). The computations are `ironfence_eap::mschapv2`'s.
fn mschapv2_round(cfg: &EapConfig, st: &mut Inner, data: &[u8]) -> Result<Vec<u8>, Failure> {
    let p = mschapv2::Packet::decode(data).map_err(|e| proto(format!("MSCHAPv2: {e}")))?;
    match p {
        mschapv2::Packet::Challenge {
            ms_id, challenge, ..
        } => {
            let mut peer_challenge = [0u8; 16];
            getrandom::fill(&mut peer_challenge).map_err(|e| Failure::Io(e.to_string()))?;
            let user = mschapv2::strip_domain(cfg.identity.as_bytes());
            let nt_hash = mschapv2::nt_password_hash(&cfg.password);
            let nt_response =
                mschapv2::generate_nt_response(&challenge, &peer_challenge, user, &nt_hash);
            st.sent = Some(SentResponse {
                nt_hash,
                nt_response,
                peer_challenge,
                auth_challenge: challenge,
            });
            Ok(mschapv2::encode_response(
                ms_id,
                &peer_challenge,
                &nt_response,
                cfg.identity.as_bytes(),
            ))
        }
        mschapv2::Packet::SuccessRequest { message, .. } => {
            let sent = st
                .sent
                .as_ref()
                .ok_or_else(|| proto("MSCHAPv2 Success before the Response"))?;
            // RFC 2759 §8.8: the authenticator response proves the server knew the password.
            let user = mschapv2::strip_domain(cfg.identity.as_bytes());
            if !mschapv2::check_authenticator_response(
                &sent.nt_hash,
                &sent.nt_response,
                &sent.peer_challenge,
                &sent.auth_challenge,
                user,
                message,
            ) {
                return Err(proto("MSCHAPv2 authenticator response does not verify"));
            }
            st.mschap_ok = true;
            Ok(mschapv2::encode_success_response())
        }
        mschapv2::Packet::FailureRequest { .. } => Err(Failure::Reject),
        other => Err(proto(format!("MSCHAPv2 {other:?} from the server"))),
    }
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EapCounters {
    /// Successful logins in the window.
    pub ok: u64,
    /// Of which resumed.
    pub resumed: u64,
    /// Of which TLS 1.3.
    pub tls13: u64,
    /// RADIUS rounds of the successful logins.
    pub rounds: u64,
    /// Retransmissions (all logins of the window).
    pub retransmits: u64,
    /// Failures by kind: timeout, reject, key mismatch, TLS, protocol, socket.
    pub failures: [u64; 6],
}

impl EapCounters {
    /// Every failed login.
    pub fn failed(&self) -> u64 {
        self.failures.iter().sum()
    }

    fn add(&mut self, o: &EapCounters) {
        self.ok += o.ok;
        self.resumed += o.resumed;
        self.tls13 += o.tls13;
        self.rounds += o.rounds;
        self.retransmits += o.retransmits;
        for (a, b) in self.failures.iter_mut().zip(o.failures) {
            *a += b;
        }
    }
}

/// Result of a run.
#[derive(Debug, Clone)]
pub struct EapRunResult {
    /// Login latencies (first Access-Request sent → Access-Accept), successful logins.
    pub hist: Histogram,
    /// The same, of the logins whose TLS handshake was resumed.
    pub hist_resumed: Histogram,
    /// Counters of the window.
    pub counters: EapCounters,
    /// Length of the measured window.
    pub window: Duration,
    /// First failure messages seen (at most 5), for the operator.
    pub sample_failures: Vec<String>,
}

/// Runs `cfg.concurrency` devices for warm-up + duration; `at_start` / `at_end` are called
/// at the window's edges (CPU snapshots of the server).
pub fn run(
    cfg: &EapConfig,
    at_start: impl FnOnce(),
    at_end: impl FnOnce(),
) -> anyhow::Result<EapRunResult> {
    let cfg = Arc::new(cfg.clone());
    let shared = Arc::new(tls_config(&cfg)?);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let measure_from = t0 + cfg.warmup;
    let until = measure_from + cfg.duration;
    let mut handles = Vec::new();
    for n in 0..cfg.concurrency.max(1) {
        let mut dev = Device::new(cfg.clone(), &shared, n as u32)?;
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut hist = Histogram::new();
            let mut hist_resumed = Histogram::new();
            let mut c = EapCounters::default();
            let mut samples = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let server = dev.next_server();
                let start = Instant::now();
                let r = dev.login();
                let end = Instant::now();
                let counted = end >= measure_from && end <= until;
                if dev.cfg.verbose {
                    let line = login_line(
                        dev.n,
                        seq,
                        dev.cfg.method,
                        server,
                        &r,
                        (end - start).as_secs_f64() * 1e3,
                        dev.cfg.json,
                    );
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
                seq += 1;
                match r {
                    Ok(l) if counted => {
                        hist.record((end - start).as_nanos() as u64);
                        if l.resumed {
                            hist_resumed.record((end - start).as_nanos() as u64);
                        }
                        c.ok += 1;
                        c.resumed += u64::from(l.resumed);
                        c.tls13 += u64::from(l.tls13);
                        c.rounds += u64::from(l.rounds);
                        c.retransmits += u64::from(l.retransmits);
                    }
                    Ok(_) => {}
                    Err(f) => {
                        if counted {
                            c.failures[f.kind()] += 1;
                        }
                        if samples.len() < 2 {
                            samples.push(f.to_string());
                        }
                        // Do not spin on a dead server.
                        if matches!(f, Failure::Io(_)) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
            (hist, hist_resumed, c, samples)
        }));
    }
    sleep_until(measure_from);
    at_start();
    sleep_until(until);
    at_end();
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::new();
    let mut hist_resumed = Histogram::new();
    let mut counters = EapCounters::default();
    let mut sample_failures = Vec::new();
    for h in handles {
        let (hh, hr, c, s) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a device thread panicked"))?;
        hist.merge(&hh);
        hist_resumed.merge(&hr);
        counters.add(&c);
        for m in s {
            if sample_failures.len() < 5 && !sample_failures.contains(&m) {
                sample_failures.push(m);
            }
        }
    }
    Ok(EapRunResult {
        hist,
        hist_resumed,
        counters,
        window: cfg.duration,
        sample_failures,
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

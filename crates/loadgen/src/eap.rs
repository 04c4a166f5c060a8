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
use ironfence_radius::{Code, PacketBuilder, decrypt_mppe_key, dict, verify_response};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::ErrorKind;
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
    /// RADIUS authentication address of the server.
    pub server: SocketAddrV4,
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

impl Failure {
    fn kind(&self) -> usize {
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

fn proto(msg: impl Into<String>) -> Failure {
    Failure::Protocol(msg.into())
}

/// A successful login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Login {
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

/// Inner MSCHAPv2 progress of a PEAP login.
#[derive(Debug, Default)]
struct Inner {
    /// "S=<40 hex>" we expect in the Success request.
    expected_auth: Option<String>,
    /// The server's Success request verified and answered.
    mschap_ok: bool,
    /// Result TLV success acknowledged.
    done: bool,
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
            c.resumption = Resumption::in_memory_sessions(4);
            Arc::new(c)
        } else {
            shared_tls.clone()
        };
        let sock = UdpSocket::bind((cfg.bind_ip, 0))
            .with_context(|| format!("binding a UDP socket on {}", cfg.bind_ip))?;
        sock.connect(cfg.server)?;
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
        })
    }

    /// One Access-Request carrying `eap_msg` (and `state`), retransmitted on timeout; the
    /// verified reply.
    fn exchange(
        &mut self,
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
                .send(&pkt)
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
                let n = match self.sock.recv(&mut self.rx) {
                    Ok(n) => n,
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

    /// One complete login.
    pub fn login(&mut self) -> Result<Login, Failure> {
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
        let mut msk: Option<[u8; 64]> = None;
        let mut inner = Inner::default();
        let mut rounds = 0u32;
        let mut retransmits = 0u32;
        loop {
            if rounds > 64 {
                return Err(proto("more than 64 rounds"));
            }
            let reply = self.exchange(&out, state.as_deref(), &mut retransmits)?;
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
                    let msk = msk.ok_or_else(|| proto("no MSK"))?;
                    match (&reply.recv_key, &reply.send_key) {
                        (Some(r), Some(s)) if r[..] == msk[..32] && s[..] == msk[32..] => {}
                        _ => return Err(Failure::KeyMismatch),
                    }
                    return Ok(Login {
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
                if msk.is_none() {
                    msk = Some(derive_msk(c, method)?);
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
                if method == Method::Peap && !plain.is_empty() {
                    let resp = peap_inner(&cfg, &mut inner, &plain)?;
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

/// MSK of the TLS session: RFC 5216 §2.3 (TLS 1.2: PRF(master, "client EAP encryption",
/// client.random ‖ server.random), i.e. the RFC 5705 exporter without context) or RFC 9190
/// §2.3 (TLS 1.3: TLS-Exporter("EXPORTER_EAP_TLS_Key_Material", Type-Code, 128)); PEAP uses
/// the same derivation with its own type code (draft-ietf-emu-tls-eap-types §2).
fn derive_msk(c: &rustls::ClientConnection, method: Method) -> Result<[u8; 64], Failure> {
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
    let mut msk = [0u8; 64];
    msk.copy_from_slice(&km[..64]);
    Ok(msk)
}

/// Answers one inner PEAPv0 packet (plaintext of the tunnel).
fn peap_inner(cfg: &EapConfig, st: &mut Inner, plain: &[u8]) -> Result<Vec<u8>, Failure> {
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
        EapType::Extensions => {
            // Result TLV (type 3, M bit set): 1 success, 2 failure.
            let mut tlvs = data;
            let mut result = None;
            while tlvs.len() >= 4 {
                let t = u16::from_be_bytes([tlvs[0], tlvs[1]]) & 0x3fff;
                let l = usize::from(u16::from_be_bytes([tlvs[2], tlvs[3]]));
                if tlvs.len() < 4 + l {
                    return Err(proto("truncated TLV"));
                }
                if t == 3 && l == 2 {
                    result = Some(u16::from_be_bytes([tlvs[4], tlvs[5]]));
                }
                tlvs = &tlvs[4 + l..];
            }
            match result {
                Some(1) if st.mschap_ok => {
                    st.done = true;
                    Ok(eap::encode(
                        EapCode::Response,
                        id,
                        EapType::Extensions,
                        &[0x80, 0x03, 0x00, 0x02, 0x00, 0x01],
                    ))
                }
                Some(1) => Err(proto("Result TLV success before MSCHAPv2 success")),
                Some(_) => Err(Failure::Reject),
                None => Err(proto("Extensions without Result TLV")),
            }
        }
        t => Err(proto(format!("unexpected inner EAP type {t:?}"))),
    }
}

/// EAP-MSCHAPv2 peer (draft-kamath-pppext-eap-mschapv2 §2): the answer to one request
/// (what follows the Type octet).
fn mschapv2_round(cfg: &EapConfig, st: &mut Inner, data: &[u8]) -> Result<Vec<u8>, Failure> {
    let (&opcode, rest) = data.split_first().ok_or_else(|| proto("empty MSCHAPv2"))?;
    match opcode {
        1 => {
            // Challenge: MS-CHAPv2-ID, MS-Length(2), Value-Size = 16, Challenge, Name.
            if rest.len() < 20 || rest[3] != 16 {
                return Err(proto("bad MSCHAPv2 Challenge"));
            }
            let ms_id = rest[0];
            let mut auth_challenge = [0u8; 16];
            auth_challenge.copy_from_slice(&rest[4..20]);
            let mut peer_challenge = [0u8; 16];
            getrandom::fill(&mut peer_challenge).map_err(|e| Failure::Io(e.to_string()))?;
            let user = cfg.identity.as_bytes();
            let (nt, expected) =
                mschap::client_response(&auth_challenge, &peer_challenge, user, &cfg.password)?;
            st.expected_auth = Some(expected);
            let ms_len = 4 + 1 + 49 + user.len();
            let mut v = Vec::with_capacity(ms_len);
            v.extend_from_slice(&[2, ms_id]);
            v.extend_from_slice(&(ms_len as u16).to_be_bytes());
            v.push(49);
            v.extend_from_slice(&peer_challenge);
            v.extend_from_slice(&[0u8; 8]);
            v.extend_from_slice(&nt);
            v.push(0);
            v.extend_from_slice(user);
            Ok(v)
        }
        3 => {
            // Success request: MS-CHAPv2-ID, MS-Length, "S=<40 hex> M=<msg>".
            if rest.len() < 3 + 42 {
                return Err(proto("short MSCHAPv2 Success"));
            }
            let msg = &rest[3..];
            let expected = st
                .expected_auth
                .as_deref()
                .ok_or_else(|| proto("MSCHAPv2 Success before the Response"))?;
            // RFC 2759 §8.7: the authenticator response proves the server knew the password.
            if !msg[..42].eq_ignore_ascii_case(expected.as_bytes()) {
                return Err(proto("MSCHAPv2 authenticator response does not verify"));
            }
            st.mschap_ok = true;
            Ok(vec![3])
        }
        4 => Err(Failure::Reject),
        o => Err(proto(format!("MSCHAPv2 opcode {o}"))),
    }
}

/// The MSCHAPv2 client computations come from `ironfence_eap::mschapv2` (helper A2).
mod mschap {
    use super::Failure;

    /// NT-Response (RFC 2759 §8.1) and the expected "S=<40 hex>" authenticator response
    /// (§8.7).
    pub(super) fn client_response(
        _auth_challenge: &[u8; 16],
        _peer_challenge: &[u8; 16],
        _user: &[u8],
        _password: &str,
    ) -> Result<([u8; 24], String), Failure> {
        Err(Failure::Protocol(
            "PEAP: the MSCHAPv2 client primitives of ironfence_eap::mschapv2 have not landed yet"
                .into(),
        ))
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
            let mut c = EapCounters::default();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let r = dev.login();
                let end = Instant::now();
                let counted = end >= measure_from && end <= until;
                match r {
                    Ok(l) if counted => {
                        hist.record((end - start).as_nanos() as u64);
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
            (hist, c, samples)
        }));
    }
    sleep_until(measure_from);
    at_start();
    sleep_until(until);
    at_end();
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::new();
    let mut counters = EapCounters::default();
    let mut sample_failures = Vec::new();
    for h in handles {
        let (hh, c, s) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a device thread panicked"))?;
        hist.merge(&hh);
        counters.add(&c);
        for m in s {
            if sample_failures.len() < 5 && !sample_failures.contains(&m) {
                sample_failures.push(m);
            }
        }
    }
    Ok(EapRunResult {
        hist,
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

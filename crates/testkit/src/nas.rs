//! A NAS stand-in for CoA / Disconnect tests (RFC 5176): a UDP listener, on an address of the
//! test's loopback range, that behaves like a switch's dynamic-authorization server.
//!
//! ```text
//!  code under test ──CoA-/Disconnect-Request──► NasStandIn (thread, std UdpSocket)
//!                                                 │ decode; verify the Request Authenticator
//!                                                 │ and the Message-Authenticator with the
//!                                                 │ secret (missing MA or bad → refused, no answer)
//!                                                 │ drop the first N authentic requests
//!                                                 ▼
//!                    ◄──ACK / NAK (Error-Cause)── answer per kind, signed (reply_secret)
//! ```
//!
//! Every datagram is recorded ([`Received`]) so a test can assert what the switch would have
//! seen. Stopped (thread joined) on drop.

use ironfence_radius::{Code, Packet, PacketBuilder, dict, verify_request};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the stand-in answers one request kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// CoA-ACK / Disconnect-ACK.
    Ack,
    /// CoA-NAK / Disconnect-NAK, with this Error-Cause if any.
    Nak(Option<u32>),
    /// No answer at all.
    Silent,
}

/// The stand-in's behaviour.
#[derive(Debug, Clone)]
pub struct NasConfig {
    /// Secret the requests must be signed with.
    pub secret: Vec<u8>,
    /// Secret replies are signed with (the same as `secret` unless a test wants bad replies).
    pub reply_secret: Vec<u8>,
    pub coa: Answer,
    pub disconnect: Answer,
    /// Authentic requests dropped (unanswered) before answering: exercises retransmission.
    pub drop_first: usize,
    /// Put a Message-Authenticator in replies (real switches often do not).
    pub reply_message_authenticator: bool,
}

impl NasConfig {
    /// ACK everything, signed with `secret`, Message-Authenticator in replies.
    pub fn new(secret: &[u8]) -> NasConfig {
        NasConfig {
            secret: secret.to_vec(),
            reply_secret: secret.to_vec(),
            coa: Answer::Ack,
            disconnect: Answer::Ack,
            drop_first: 0,
            reply_message_authenticator: true,
        }
    }
}

/// What reached the stand-in.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: SocketAddr,
    pub at: Instant,
    pub bytes: Vec<u8>,
    /// `Ok(())` when authentic (Request Authenticator and Message-Authenticator verified);
    /// else why it was refused.
    pub verdict: Result<(), String>,
    /// Answered (not refused, dropped or silent).
    pub answered: bool,
}

impl Received {
    /// The request, decoded (`None` if it is not a well-formed packet).
    pub fn packet(&self) -> Option<Packet<'_>> {
        Packet::decode(&self.bytes).ok()
    }

    pub fn code(&self) -> Option<Code> {
        self.packet().map(|p| p.code())
    }
}

/// A running stand-in. See the module docs.
#[derive(Debug)]
pub struct NasStandIn {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NasStandIn {
    /// Listens on `addr` (e.g. `127.0.74.1:3799`).
    pub fn start(addr: SocketAddr, config: NasConfig) -> std::io::Result<NasStandIn> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let addr = socket.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || serve(socket, config, received, stop))
        };
        Ok(NasStandIn {
            addr,
            received,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until at least `n` datagrams arrived (or `timeout`), returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NasStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    socket: UdpSocket,
    config: NasConfig,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 4096];
    let mut authentic = 0usize;
    while !stop.load(Ordering::Acquire) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue, // read timeout: check the stop flag
        };
        let bytes = buf[..n].to_vec();
        let (verdict, reply) = handle(&bytes, &config, &mut authentic);
        // Recorded before answering: a test that got the answer finds the request here.
        received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Received {
                from,
                at: Instant::now(),
                bytes,
                verdict,
                answered: reply.is_some(),
            });
        if let Some(reply) = &reply {
            let _ = socket.send_to(reply, from);
        }
    }
}

fn handle(
    bytes: &[u8],
    config: &NasConfig,
    authentic: &mut usize,
) -> (Result<(), String>, Option<Vec<u8>>) {
    let p = match Packet::decode(bytes) {
        Ok(p) => p,
        Err(e) => return (Err(format!("malformed: {e}")), None),
    };
    // Status-Server (RFC 5997): the benchmark's baseline round trip.
    if p.code() == Code::StatusServer {
        return match verify_request(&p, &config.secret) {
            Ok(_) => (
                Ok(()),
                Some(
                    PacketBuilder::new(Code::AccessAccept, p.identifier())
                        .encode_response(&p, &config.secret),
                ),
            ),
            Err(e) => (Err(e.to_string()), None),
        };
    }
    let (ack, nak, answer) = match p.code() {
        Code::CoaRequest => (Code::CoaAck, Code::CoaNak, config.coa),
        Code::DisconnectRequest => (Code::DisconnectAck, Code::DisconnectNak, config.disconnect),
        other => return (Err(format!("unexpected {other}")), None),
    };
    match verify_request(&p, &config.secret) {
        Ok(check) if check.message_authenticator => {}
        Ok(_) => return (Err("no Message-Authenticator".into()), None),
        Err(e) => return (Err(e.to_string()), None),
    }
    *authentic += 1;
    if *authentic <= config.drop_first {
        return (Ok(()), None);
    }
    let mut b = match answer {
        Answer::Ack => PacketBuilder::new(ack, p.identifier()),
        Answer::Nak(cause) => {
            let mut b = PacketBuilder::new(nak, p.identifier());
            if let Some(c) = cause {
                b.add_u32(dict::ERROR_CAUSE, c).expect("fits");
            }
            b
        }
        Answer::Silent => return (Ok(()), None),
    };
    b.copy_proxy_state(&p).expect("fits");
    let mut out = Vec::new();
    b.encode_reply_raw(
        p.identifier(),
        p.authenticator(),
        &config.reply_secret,
        config.reply_message_authenticator,
        &mut out,
    );
    (Ok(()), Some(out))
}

//! The closed-loop MAB client: `concurrency` Access-Requests in flight, a new one sent as soon
//! as one is answered, every reply verified.
//!
//! Per thread: a few connected UDP sockets, each with its own 256-entry identifier space
//! (at most 255 requests in flight per socket; identifiers are reused in FIFO order so the
//! same (source port, identifier) comes back as late as possible). One loop per thread:
//! `recvmmsg` on every socket (non-blocking) → verify → refill → one `sendmmsg` per socket;
//! `poll` only when nothing arrived. Request Authenticators come from `getrandom`, 4 KiB
//! (256 authenticators) per call; device choice uses a xorshift generator.

use crate::devices::{self, Role};
use crate::hist::Histogram;
use crate::net::{self, RecvBatch, SendBatch};
use anyhow::{Context, bail};
use ironfence_radius::{Code, PacketBuilder, ResponseError, dict, verify_response};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::MsgFlags;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// RADIUS authentication address of the server.
    pub server: SocketAddrV4,
    /// Shared secret.
    pub secret: Vec<u8>,
    /// Number of known devices (MAC i = 02:00:<i>).
    pub devices: u32,
    /// Fraction 0.0..=1.0 of requests from unknown MACs (02:01:<i>).
    pub unknown_fraction: f64,
    /// Roles; device i has role i % len.
    pub roles: Vec<Role>,
    /// VLAN expected for unknown devices.
    pub registration_vlan: u16,
    /// If set, every Access-Accept must carry this VLAN (null responder).
    pub expect_vlan: Option<u16>,
    /// Requests in flight (total over all threads).
    pub concurrency: usize,
    /// Worker threads.
    pub threads: usize,
    /// Sockets per thread (`None`: one per 128 requests in flight).
    pub sockets_per_thread: Option<usize>,
    /// Warm-up, not measured.
    pub warmup: Duration,
    /// Measured window (ignored when `requests` is set).
    pub duration: Duration,
    /// Send exactly this many requests in the measured phase, then wait for the replies.
    pub requests: Option<u64>,
    /// Reply timeout before a retransmission.
    pub timeout: Duration,
    /// Retransmissions before a request is given up (counted as lost).
    pub retries: u8,
    /// CPUs to pin the worker threads to (round robin), empty: no pinning.
    pub cpus: Vec<usize>,
    /// NAS-IP-Address sent.
    pub nas_ip: Ipv4Addr,
}

/// Counters of one thread (or the sum over threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Replies with valid authenticators (any code): the throughput.
    pub completed: u64,
    /// Access-Accept with the expected VLAN.
    pub ok: u64,
    /// Access-Reject.
    pub reject: u64,
    /// Access-Accept without Tunnel-Private-Group-Id or with another VLAN.
    pub wrong_vlan: u64,
    /// Reply whose Response Authenticator or Message-Authenticator did not verify.
    pub bad_auth: u64,
    /// Authentic reply without Message-Authenticator (BlastRADIUS: must be refused).
    pub no_ma: u64,
    /// Undecodable or truncated datagram.
    pub malformed: u64,
    /// Any other reply code (Challenge, …).
    pub other_code: u64,
    /// Timeouts (each one triggers a retransmission or gives the request up).
    pub timeouts: u64,
    /// Requests given up after the last retransmission timed out.
    pub lost: u64,
    /// Datagrams the kernel refused to send, and socket errors (ECONNREFUSED …).
    pub send_errors: u64,
    /// Replies for an identifier not in flight (e.g. second answer after a retransmission).
    pub stale: u64,
    /// Requests sent for the first time (warm-up included: the server's total load).
    pub sent_total: u64,
}

impl Counters {
    /// Every anomaly, timeouts included. `stale` is a consequence of a timeout, not added.
    pub fn errors(&self) -> u64 {
        self.reject
            + self.wrong_vlan
            + self.bad_auth
            + self.no_ma
            + self.malformed
            + self.other_code
            + self.timeouts
            + self.send_errors
    }

    fn add(&mut self, o: &Counters) {
        self.completed += o.completed;
        self.ok += o.ok;
        self.reject += o.reject;
        self.wrong_vlan += o.wrong_vlan;
        self.bad_auth += o.bad_auth;
        self.no_ma += o.no_ma;
        self.malformed += o.malformed;
        self.other_code += o.other_code;
        self.timeouts += o.timeouts;
        self.lost += o.lost;
        self.send_errors += o.send_errors;
        self.stale += o.stale;
        self.sent_total += o.sent_total;
    }

    /// Zeroes the measured counters at the end of the warm-up (`sent_total` is kept).
    fn reset_measured(&mut self) {
        *self = Counters {
            sent_total: self.sent_total,
            ..Counters::default()
        };
    }
}

/// Result of a run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Latencies of the measured window (every authentic reply).
    pub hist: Histogram,
    /// Counters of the measured window (`sent_total`: everything).
    pub counters: Counters,
    /// Length of the measured window.
    pub window: Duration,
    /// Sockets per thread used.
    pub sockets_per_thread: usize,
}

impl RunResult {
    /// Completed requests per second in the measured window.
    pub fn rate(&self) -> f64 {
        let s = self.window.as_secs_f64();
        if s > 0.0 {
            self.counters.completed as f64 / s
        } else {
            0.0
        }
    }
}

/// Expected-VLAN marker for unknown devices in [`Slot::expect`].
const EXPECT_REGISTRATION: u8 = u8::MAX;

#[derive(Debug)]
struct Slot {
    pkt: Vec<u8>,
    authenticator: [u8; 16],
    /// Index into the expected VLAN strings.
    expect: u8,
    busy: bool,
    retries: u8,
    first_tx: Instant,
    last_tx: Instant,
}

#[derive(Debug)]
struct Sock {
    udp: UdpSocket,
    slots: Vec<Slot>,
    free: VecDeque<u8>,
    in_flight: usize,
    target: usize,
    to_send: Vec<u8>,
}

/// Small fast PRNG for device choice (xorshift64*); the authenticators use getrandom.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Random Request Authenticators, fetched from the OS 4 KiB at a time.
#[derive(Debug)]
struct AuthPool {
    buf: Box<[u8; 4096]>,
    pos: usize,
}

impl AuthPool {
    fn new() -> Self {
        AuthPool {
            buf: Box::new([0; 4096]),
            pos: 4096,
        }
    }

    fn next(&mut self) -> anyhow::Result<[u8; 16]> {
        if self.pos + 16 > self.buf.len() {
            getrandom::fill(&mut self.buf[..]).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
            self.pos = 0;
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buf[self.pos..self.pos + 16]);
        self.pos += 16;
        Ok(a)
    }
}

/// Phase boundaries shared by all threads.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    measure_from: Instant,
    /// End of the measured window (duration mode).
    until: Option<Instant>,
    /// Requests to send in the measured phase (requests mode), per thread.
    quota: Option<u64>,
}

struct Worker<'c> {
    cfg: &'c ClientConfig,
    socks: Vec<Sock>,
    builder: PacketBuilder,
    rng: XorShift,
    auths: AuthPool,
    /// Expected Tunnel-Private-Group-Id per role, then the registration VLAN last.
    vlan_strs: Vec<String>,
    unknown_threshold: u64,
    hist: Histogram,
    c: Counters,
}

impl Worker<'_> {
    fn prepare(&mut self, si: usize, id: u8) -> anyhow::Result<()> {
        let cfg = self.cfg;
        let r = self.rng.next();
        let unknown = self.unknown_threshold > 0 && (r >> 32) < self.unknown_threshold;
        let idx = (((r & 0xffff_ffff) * u64::from(cfg.devices)) >> 32) as u32;
        let (mac, expect) = if unknown {
            (devices::unknown_mac(idx), EXPECT_REGISTRATION)
        } else {
            let role = devices::role_index(idx, cfg.roles.len());
            (devices::known_mac(idx), role as u8)
        };
        let plain = devices::mac_plain(&mac);
        let dashed = devices::mac_dashed(&mac);
        let auth = self.auths.next()?;
        let b = &mut self.builder;
        b.reset(Code::AccessRequest, id);
        b.add(dict::USER_NAME, &plain)?;
        b.add_user_password(&plain, &cfg.secret, &auth)?;
        b.add(dict::CALLING_STATION_ID, &dashed)?;
        b.add_u32(dict::SERVICE_TYPE, dict::service_type::CALL_CHECK)?;
        b.add_u32(dict::NAS_PORT_TYPE, dict::nas_port_type::ETHERNET)?;
        b.add_u32(dict::NAS_PORT, 1 + idx % 48)?;
        b.add_ipv4(dict::NAS_IP_ADDRESS, cfg.nas_ip)?;
        let slot = &mut self.socks[si].slots[usize::from(id)];
        b.encode_request_into(auth, &cfg.secret, true, &mut slot.pkt);
        slot.authenticator = auth;
        slot.expect = expect;
        slot.busy = true;
        slot.retries = 0;
        Ok(())
    }

    /// Verifies one reply; frees its slot when it is an authentic answer.
    fn on_reply(&mut self, si: usize, data: &[u8], truncated: bool, now: Instant) {
        if truncated || data.len() < ironfence_radius::HEADER_LEN {
            self.c.malformed += 1;
            return;
        }
        let id = data[1];
        let sock = &mut self.socks[si];
        let slot = &mut sock.slots[usize::from(id)];
        if !slot.busy {
            self.c.stale += 1;
            return;
        }
        let p = match verify_response(data, id, &slot.authenticator, &self.cfg.secret) {
            Ok(p) => p,
            Err(ResponseError::Decode(_)) => {
                self.c.malformed += 1;
                return;
            }
            Err(ResponseError::UnexpectedCode(_)) => {
                self.c.other_code += 1;
                return;
            }
            // Bad authenticators (or an identifier mismatch, impossible here): maybe a late
            // answer to an earlier use of this identifier; keep waiting for the real one.
            Err(_) => {
                self.c.bad_auth += 1;
                return;
            }
        };
        // Authentic: this request is answered.
        slot.busy = false;
        sock.in_flight -= 1;
        sock.free.push_back(id);
        self.c.completed += 1;
        self.hist
            .record(now.saturating_duration_since(slot.first_tx).as_nanos() as u64);
        if !p.has_message_authenticator() {
            self.c.no_ma += 1;
            return;
        }
        match p.code() {
            Code::AccessAccept => {}
            Code::AccessReject => {
                self.c.reject += 1;
                return;
            }
            _ => {
                self.c.other_code += 1;
                return;
            }
        }
        let expected = if slot.expect == EXPECT_REGISTRATION {
            self.vlan_strs.last()
        } else {
            self.vlan_strs.get(usize::from(slot.expect))
        };
        match p.get_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID) {
            Some((_, v)) if Some(v) == expected.map(String::as_str) => self.c.ok += 1,
            _ => self.c.wrong_vlan += 1,
        }
    }

    fn check_timeouts(&mut self, now: Instant) {
        let timeout = self.cfg.timeout;
        for sock in &mut self.socks {
            for (id, slot) in sock.slots.iter_mut().enumerate() {
                if !slot.busy || now.saturating_duration_since(slot.last_tx) < timeout {
                    continue;
                }
                self.c.timeouts += 1;
                if slot.retries < self.cfg.retries {
                    slot.retries += 1;
                    sock.to_send.push(id as u8);
                } else {
                    self.c.lost += 1;
                    slot.busy = false;
                    sock.in_flight -= 1;
                    sock.free.push_back(id as u8);
                }
            }
        }
    }

    fn flush(&mut self, si: usize, send: &mut SendBatch<()>) {
        let now = Instant::now();
        let sock = &mut self.socks[si];
        if sock.to_send.is_empty() {
            return;
        }
        for &id in &sock.to_send {
            let slot = &mut sock.slots[usize::from(id)];
            if slot.retries == 0 {
                slot.first_tx = now;
            }
            slot.last_tx = now;
        }
        let pkts: Vec<&[u8]> = sock
            .to_send
            .iter()
            .map(|&id| sock.slots[usize::from(id)].pkt.as_slice())
            .collect();
        let addrs = [None; 256];
        let failed = send.send(&sock.udp, &pkts, &addrs[..pkts.len()]);
        // A refused datagram stays in flight and is retransmitted after the timeout.
        self.c.send_errors += failed as u64;
        sock.to_send.clear();
    }

    fn run(mut self, sched: Schedule) -> anyhow::Result<(Histogram, Counters, Duration)> {
        let mut recv = RecvBatch::<()>::new();
        let mut send = SendBatch::<()>::default();
        let mut measuring = false;
        let mut measure_start = sched.measure_from;
        let mut measured_sent: u64 = 0;
        let mut next_timeout_check = Instant::now() + Duration::from_millis(10);
        loop {
            let now = Instant::now();
            if !measuring && now >= sched.measure_from {
                measuring = true;
                measure_start = now;
                self.hist.clear();
                self.c.reset_measured();
            }
            if let Some(until) = sched.until
                && now >= until
            {
                return Ok((self.hist, self.c, now - measure_start));
            }
            let may_send = |sent: u64| match sched.quota {
                Some(q) if measuring => sent < q,
                _ => true,
            };
            if let Some(q) = sched.quota
                && measuring
                && measured_sent >= q
                && self.socks.iter().all(|s| s.in_flight == 0)
            {
                // The last reply (or give-up) was handled in the previous iteration.
                return Ok((
                    self.hist,
                    self.c,
                    now.saturating_duration_since(measure_start),
                ));
            }

            let mut received = 0;
            for si in 0..self.socks.len() {
                let n = match recv.recv(&self.socks[si].udp, MsgFlags::MSG_DONTWAIT) {
                    Ok(n) => n,
                    Err(_) => {
                        self.c.send_errors += 1;
                        0
                    }
                };
                if n > 0 {
                    let now = Instant::now();
                    for k in 0..n {
                        let (data, _, trunc) = recv.get(k);
                        self.on_reply(si, data, trunc, now);
                    }
                    received += n;
                }
                // Refill this socket's share.
                while self.socks[si].in_flight < self.socks[si].target && may_send(measured_sent) {
                    let Some(id) = self.socks[si].free.pop_front() else {
                        break;
                    };
                    self.prepare(si, id)?;
                    let sock = &mut self.socks[si];
                    sock.in_flight += 1;
                    sock.to_send.push(id);
                    self.c.sent_total += 1;
                    if measuring {
                        measured_sent += 1;
                    }
                }
                self.flush(si, &mut send);
            }

            let now = Instant::now();
            if now >= next_timeout_check {
                self.check_timeouts(now);
                for si in 0..self.socks.len() {
                    self.flush(si, &mut send);
                }
                next_timeout_check = now + Duration::from_millis(10);
            }

            if received == 0 {
                // Nothing waiting: sleep in poll until a reply, the next timeout check or
                // the next phase boundary.
                let mut wake = next_timeout_check;
                if !measuring {
                    wake = wake.min(sched.measure_from);
                }
                if let Some(u) = sched.until {
                    wake = wake.min(u);
                }
                let ms = wake
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .clamp(0, 10) as u16;
                let mut fds: Vec<PollFd<'_>> = self
                    .socks
                    .iter()
                    .map(|s| PollFd::new(s.udp.as_fd(), PollFlags::POLLIN))
                    .collect();
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
        }
    }
}

/// Runs the load: warm-up, then the measured window. `on_measure_start` is called (from the
/// calling thread) when the measured window begins, `on_measure_end` when it ends (duration
/// mode) or once every reply is in (requests mode); used to sample the server's CPU time.
pub fn run(
    cfg: &ClientConfig,
    mut on_measure_start: impl FnMut(),
    mut on_measure_end: impl FnMut(),
) -> anyhow::Result<RunResult> {
    if cfg.concurrency == 0 || cfg.threads == 0 {
        bail!("concurrency and threads must be at least 1");
    }
    if cfg.threads > cfg.concurrency {
        bail!("more threads than requests in flight");
    }
    if cfg.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let per_thread: Vec<usize> = (0..cfg.threads)
        .map(|t| cfg.concurrency / cfg.threads + usize::from(t < cfg.concurrency % cfg.threads))
        .collect();
    let max_share = per_thread[0];
    let sockets = cfg
        .sockets_per_thread
        .unwrap_or_else(|| max_share.div_ceil(128))
        .max(1);
    if max_share.div_ceil(sockets) > 255 {
        bail!(
            "{max_share} requests in flight per thread need at least {} sockets (255 identifiers per socket)",
            max_share.div_ceil(255)
        );
    }
    let mut vlan_strs: Vec<String> = match cfg.expect_vlan {
        Some(v) => vec![v.to_string(); cfg.roles.len()],
        None => cfg.roles.iter().map(|r| r.vlan.to_string()).collect(),
    };
    vlan_strs.push(cfg.expect_vlan.unwrap_or(cfg.registration_vlan).to_string());
    let unknown_threshold = (cfg.unknown_fraction.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;

    // Sockets and buffers are set up before the clock starts.
    let mut workers = Vec::new();
    for (t, &share) in per_thread.iter().enumerate() {
        let mut socks = Vec::new();
        for s in 0..sockets {
            let target = share / sockets + usize::from(s < share % sockets);
            let now = Instant::now();
            socks.push(Sock {
                udp: net::connected_socket(cfg.server, 4 << 20)?,
                slots: (0..256)
                    .map(|_| Slot {
                        pkt: Vec::with_capacity(256),
                        authenticator: [0; 16],
                        expect: 0,
                        busy: false,
                        retries: 0,
                        first_tx: now,
                        last_tx: now,
                    })
                    .collect(),
                free: (0..=255u8).collect(),
                in_flight: 0,
                target,
                to_send: Vec::with_capacity(256),
            });
        }
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
        workers.push((t, socks, XorShift(u64::from_le_bytes(seed) | 1)));
    }

    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let until = cfg.requests.is_none().then(|| measure_from + cfg.duration);
    let quotas: Vec<Option<u64>> = (0..cfg.threads as u64)
        .map(|t| {
            cfg.requests.map(|n| {
                let th = cfg.threads as u64;
                n / th + u64::from(t < n % th)
            })
        })
        .collect();

    let results = std::thread::scope(|scope| -> anyhow::Result<Vec<_>> {
        let mut handles = Vec::new();
        for (t, socks, rng) in workers {
            let sched = Schedule {
                measure_from,
                until,
                quota: quotas[t],
            };
            let cpu = (!cfg.cpus.is_empty()).then(|| cfg.cpus[t % cfg.cpus.len()]);
            let w = Worker {
                cfg,
                socks,
                builder: PacketBuilder::new(Code::AccessRequest, 0),
                rng,
                auths: AuthPool::new(),
                vlan_strs: vlan_strs.clone(),
                unknown_threshold,
                hist: Histogram::new(),
                c: Counters::default(),
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("loadgen-{t}"))
                    .spawn_scoped(scope, move || {
                        if let Some(cpu) = cpu {
                            net::pin_current_thread(cpu)?;
                        }
                        w.run(sched)
                    })
                    .context("spawning a worker thread")?,
            );
        }
        // Sample the server around the measured window from this thread.
        std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
        on_measure_start();
        if let Some(u) = until {
            std::thread::sleep(u.saturating_duration_since(Instant::now()));
            on_measure_end();
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a worker thread panicked"))??,
            );
        }
        if until.is_none() {
            on_measure_end();
        }
        Ok(out)
    })?;

    let mut hist = Histogram::new();
    let mut counters = Counters::default();
    let mut window = Duration::ZERO;
    for (h, c, w) in &results {
        hist.merge(h);
        counters.add(c);
        window = window.max(*w);
    }
    Ok(RunResult {
        hist,
        counters,
        window,
        sockets_per_thread: sockets,
    })
}

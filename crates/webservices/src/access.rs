//! Who may talk to the node-to-node API, and how much: decided per TCP connection *before* the
//! TLS handshake (a refused source costs one `accept` and no slot), and per source after a
//! failed login.
//!
//! ```text
//!  accept ─► source allowed? ─no─► close (no ServerHello, no slot)
//!              │ yes (a member's address in cluster.conf, or this server itself)
//!              ▼
//!            < MAX_PER_SOURCE connections from it? ─no─► close
//!              │ yes
//!              ▼
//!            a global slot (MAX_CONNECTIONS)? ─no─► close
//!              │ yes
//!              ▼
//!            TLS (short timeout) ─► request ─► source blocked after failed logins? ─yes─► 429
//!                                                │ no
//!                                                ▼
//!                                              Basic auth ─wrong─► 401, failure counted
//! ```
//!
//! Why: the API is what Galera recovery (`db start`) and configuration sync depend on. Before
//! this, 256 global slots were open to anyone who could reach the port, each held up to 40 s
//! before authentication. Members are few and known (cluster.conf), so everyone else is
//! refused outright; the per-source cap keeps one member (or whoever took its address) from
//! using the slots of the others.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// At most this many concurrent connections from one source address.
pub(crate) const MAX_PER_SOURCE: usize = 8;

/// The addresses allowed to connect (cluster members' addresses from cluster.conf). Cheap to
/// clone; [`AllowedPeers::set`] takes effect for the next connection, so a reload of
/// cluster.conf needs no restart of the API. This server's own address (the one a connection
/// arrives on) and the loopback addresses `127.0.0.1`/`::1` are always allowed: only local
/// processes can use them.
#[derive(Clone, Default)]
pub struct AllowedPeers {
    list: Arc<RwLock<Arc<BTreeSet<IpAddr>>>>,
    counters: Arc<ApiCounters>,
}

/// What the access checks refused, since the process started: exported by the daemon's
/// `/metrics` (`ironfence_webservices_refused_total{reason}`, `…_auth_failures_total`), so a
/// flood or a password-guessing source shows on a dashboard, not only in the (rate-limited) log.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Connections closed before TLS: the source is not a cluster member.
    pub refused_not_member: AtomicU64,
    /// Connections closed before TLS: the source already holds its share of connections.
    pub refused_source_limit: AtomicU64,
    /// Connections closed before TLS: every global slot is taken.
    pub refused_no_slot: AtomicU64,
    /// Requests answered 429 because their source is blocked after failed logins.
    pub refused_blocked: AtomicU64,
    /// Wrong user/password (counted toward the source's backoff).
    pub auth_failures: AtomicU64,
}

impl ApiCounters {
    pub(crate) fn hit(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(reason, count)` of every refusal kind, for an exporter.
    pub fn refused(&self) -> [(&'static str, u64); 4] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("not_member", get(&self.refused_not_member)),
            ("source_limit", get(&self.refused_source_limit)),
            ("no_slot", get(&self.refused_no_slot)),
            ("blocked_after_failed_logins", get(&self.refused_blocked)),
        ]
    }

    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Ordering::Relaxed)
    }
}

impl AllowedPeers {
    pub fn new(addresses: impl IntoIterator<Item = IpAddr>) -> AllowedPeers {
        let peers = AllowedPeers::default();
        peers.set(addresses);
        peers
    }

    /// Replaces the list.
    pub fn set(&self, addresses: impl IntoIterator<Item = IpAddr>) {
        let set: BTreeSet<IpAddr> = addresses.into_iter().map(|ip| ip.to_canonical()).collect();
        let mut guard = self.list.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(set);
    }

    /// The refusal counters of the API servers using this list.
    pub fn counters(&self) -> &ApiCounters {
        &self.counters
    }

    /// The addresses listed now.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.current().iter().copied().collect()
    }

    fn current(&self) -> Arc<BTreeSet<IpAddr>> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// May a connection from `peer`, arriving on this server's `local` address, go on?
    pub(crate) fn admits(&self, peer: IpAddr, local: Option<IpAddr>) -> bool {
        let peer = peer.to_canonical();
        peer == IpAddr::V4(Ipv4Addr::LOCALHOST)
            || peer == IpAddr::V6(Ipv6Addr::LOCALHOST)
            || local.is_some_and(|l| l.to_canonical() == peer)
            || self.current().contains(&peer)
    }
}

impl fmt::Debug for AllowedPeers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AllowedPeers")
            .field(&self.current())
            .finish()
    }
}

/// Concurrent connections per source address.
#[derive(Default)]
pub(crate) struct SourceSlots(Mutex<HashMap<IpAddr, usize>>);

/// One connection of a source; gives the slot back when dropped.
pub(crate) struct SourceSlot {
    slots: Arc<SourceSlots>,
    ip: IpAddr,
}

impl SourceSlots {
    pub(crate) fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<SourceSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            slots: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        self.0.lock().unwrap().get(&ip).copied().unwrap_or_default()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Failed logins tolerated from one source before it is blocked.
pub(crate) const FREE_FAILURES: u32 = 5;
/// The first block; each further failure doubles it, up to [`MAX_BLOCK`].
pub(crate) const FIRST_BLOCK: Duration = Duration::from_secs(10);
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
/// A source's failures are forgotten this long after its last one (longer than
/// [`MAX_BLOCK`], so that the backoff never resets while someone keeps guessing).
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Sources remembered at most (only allowed sources get this far, so this is a safety net).
const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Per-source backoff after failed logins (pure: the clock is an argument).
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    sources: HashMap<IpAddr, Failures>,
}

/// What a failed login did to its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FailureOutcome {
    /// Failures of this source so far (since its last success or since it was forgotten).
    pub count: u32,
    /// The source is now refused for this long.
    pub blocked_for: Option<Duration>,
}

impl LoginThrottle {
    /// `Some(remaining)` while `ip` is blocked: its requests are refused without looking at
    /// the credentials, the right password included (otherwise guessing would go on).
    pub(crate) fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.sources.get(&ip)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    pub(crate) fn failure(&mut self, ip: IpAddr, now: Instant) -> FailureOutcome {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.forget_old(now);
            if self.sources.len() >= MAX_SOURCES
                && let Some(oldest) = self
                    .sources
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(ip, _)| *ip)
            {
                self.sources.remove(&oldest);
            }
        }
        let f = self.sources.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        if now.saturating_duration_since(f.last) > FORGET_AFTER {
            *f = Failures {
                count: 0,
                last: now,
                blocked_until: None,
            };
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let blocked_for = block_after(f.count);
        f.blocked_until = blocked_for.map(|d| now + d);
        FailureOutcome {
            count: f.count,
            blocked_for,
        }
    }

    /// A successful login clears the source's record.
    pub(crate) fn success(&mut self, ip: IpAddr) {
        self.sources.remove(&ip);
    }

    fn forget_old(&mut self, now: Instant) {
        self.sources
            .retain(|_, f| now.saturating_duration_since(f.last) <= FORGET_AFTER);
    }
}

/// How long a source is blocked after its `count`-th failure.
fn block_after(count: u32) -> Option<Duration> {
    let over = count.checked_sub(FREE_FAILURES)?.checked_sub(1)?;
    let block = FIRST_BLOCK.saturating_mul(1u32.checked_shl(over).unwrap_or(u32::MAX));
    Some(block.min(MAX_BLOCK))
}

/// At most `burst` log lines per `window`, then one line counting the suppressed ones.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    burst: u32,
    window: Duration,
    start: Instant,
    pub(crate) logged: u32,
    pub(crate) suppressed: u64,
}

impl LogLimiter {
    pub(crate) fn new(burst: u32, window: Duration) -> LogLimiter {
        LogLimiter {
            burst,
            window,
            start: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    /// `(log this one?, lines suppressed in the window that just ended)`.
    pub(crate) fn hit(&mut self, now: Instant) -> (bool, u64) {
        let mut ended = 0;
        if now.saturating_duration_since(self.start) >= self.window {
            ended = self.suppressed;
            self.start = now;
            self.logged = 0;
            self.suppressed = 0;
        }
        if self.logged < self.burst {
            self.logged += 1;
            (true, ended)
        } else {
            self.suppressed += 1;
            (false, ended)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn only_members_and_this_server_are_admitted() {
        let allowed = AllowedPeers::new([MEMBER]);
        assert!(allowed.admits(MEMBER, Some(ME)));
        assert!(!allowed.admits(STRANGER, Some(ME)));
        // This server itself: the address the connection arrived on, and loopback.
        assert!(allowed.admits(ME, Some(ME)));
        assert!(allowed.admits("127.0.0.1".parse().unwrap(), Some(ME)));
        assert!(allowed.admits("::1".parse().unwrap(), Some(ME)));
        // Other loopback addresses are not "this server" (test clusters live on 127.0.x.y).
        assert!(!allowed.admits("127.0.9.9".parse().unwrap(), Some(ME)));
        // IPv4-mapped IPv6 is the same address.
        assert!(allowed.admits("::ffff:10.0.0.2".parse().unwrap(), Some(ME)));
        // A reload replaces the list.
        allowed.set([STRANGER]);
        assert!(!allowed.admits(MEMBER, Some(ME)));
        assert!(allowed.admits(STRANGER, Some(ME)));
        assert_eq!(allowed.addresses(), vec![STRANGER]);
        assert!(!AllowedPeers::default().admits(MEMBER, None));
    }

    #[test]
    fn per_source_slots_are_capped_and_given_back() {
        let slots = Arc::new(SourceSlots::default());
        let held: Vec<_> = (0..3).map(|_| slots.try_take(MEMBER, 3).unwrap()).collect();
        assert!(slots.try_take(MEMBER, 3).is_none());
        // Another source is not affected.
        let other = slots.try_take(STRANGER, 3).unwrap();
        drop(held);
        assert_eq!(slots.held(MEMBER), 0);
        assert!(slots.try_take(MEMBER, 3).is_some());
        drop(other);
        assert!(slots.0.lock().unwrap().is_empty());
    }

    #[test]
    fn failed_logins_back_off_per_source() {
        let mut t = LoginThrottle::default();
        let t0 = Instant::now();
        for n in 1..=FREE_FAILURES {
            let out = t.failure(MEMBER, t0);
            assert_eq!(
                out,
                FailureOutcome {
                    count: n,
                    blocked_for: None
                }
            );
            assert_eq!(t.blocked(MEMBER, t0), None);
        }
        // The next failure blocks for FIRST_BLOCK, then each one doubles it.
        let out = t.failure(MEMBER, t0);
        assert_eq!(out.blocked_for, Some(FIRST_BLOCK));
        assert_eq!(t.blocked(MEMBER, t0), Some(FIRST_BLOCK));
        assert_eq!(
            t.blocked(MEMBER, t0 + Duration::from_secs(4)),
            Some(FIRST_BLOCK - Duration::from_secs(4))
        );
        assert_eq!(
            t.blocked(STRANGER, t0),
            None,
            "other sources are not blocked"
        );
        let t1 = t0 + FIRST_BLOCK;
        assert_eq!(t.blocked(MEMBER, t1), None, "the block ends");
        assert_eq!(t.failure(MEMBER, t1).blocked_for, Some(FIRST_BLOCK * 2));
        assert_eq!(t.failure(MEMBER, t1).blocked_for, Some(FIRST_BLOCK * 4));
        // Capped.
        for _ in 0..40 {
            t.failure(MEMBER, t1);
        }
        assert_eq!(t.failure(MEMBER, t1).blocked_for, Some(MAX_BLOCK));
        // Not forgotten while someone keeps trying at the capped rate...
        let t2 = t1 + MAX_BLOCK;
        assert_eq!(t.failure(MEMBER, t2).blocked_for, Some(MAX_BLOCK));
        // ...but an hour without failure starts over.
        let t3 = t2 + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(t.failure(MEMBER, t3).count, 1);
        // A success clears the record.
        for _ in 0..FREE_FAILURES {
            t.failure(MEMBER, t3);
        }
        t.success(MEMBER);
        assert_eq!(t.failure(MEMBER, t3).count, 1);
    }

    #[test]
    fn the_throttle_memory_is_bounded() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            t.failure(IpAddr::V4(Ipv4Addr::from(i)), now);
        }
        assert_eq!(t.sources.len(), MAX_SOURCES);
    }

    #[test]
    fn log_lines_are_rate_limited() {
        let mut l = LogLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.hit(t0), (true, 0));
        assert_eq!(l.hit(t0), (true, 0));
        assert_eq!(l.hit(t0), (false, 0));
        assert_eq!(l.hit(t0), (false, 0));
        assert_eq!(l.hit(t0 + Duration::from_secs(61)), (true, 2));
    }
}

//! Reply cache for duplicate detection (RFC 5080 §2.2.2), sans-IO: time is an input.
//!
//! A retransmitted request (same client address and port, Identifier and Request
//! Authenticator) must get the *same* reply without being processed again, and a request still
//! being processed must not be processed a second time. A new Request Authenticator with the
//! same (client, Identifier) is a new request — it is simply a different key.
//!
//! ```text
//!  begin(key) ──New──► process ──► complete(key, reply)   (reply kept for ttl)
//!      │                  └──────► abandon(key)           (retransmit processed anew)
//!      ├──InProgress──► drop the retransmit
//!      └──Replay(r)───► send r again
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Identity of a request for duplicate detection (RFC 5080 §2.2.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CacheKey {
    /// Source address and port of the request.
    pub client: SocketAddr,
    /// Identifier.
    pub identifier: u8,
    /// Request Authenticator.
    pub authenticator: [u8; 16],
}

/// Result of [`ReplyCache::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup<'c> {
    /// Not seen (or expired): process it. The key is now marked in progress.
    New,
    /// A copy is being processed: drop this retransmit.
    InProgress,
    /// Already answered: send these bytes again.
    Replay(&'c [u8]),
}

/// A compact copy of a [`CacheKey`]: 35 octets instead of 52, because at tens of thousands of
/// requests per second the cache holds hundreds of thousands of keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct PackedKey {
    ip: [u8; 16],
    port: [u8; 2],
    identifier: u8,
    authenticator: [u8; 16],
}

impl PackedKey {
    fn new(key: &CacheKey) -> PackedKey {
        let ip = match key.client.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        PackedKey {
            ip,
            port: key.client.port().to_be_bytes(),
            identifier: key.identifier,
            authenticator: key.authenticator,
        }
    }
}

/// Replies up to this size (a MAB Accept with a VLAN is ~56 octets) are kept inside the slot:
/// no allocation per request, and ~80 octets less per entry than a boxed copy.
const INLINE_REPLY: usize = 62;

#[derive(Debug)]
enum State {
    /// Expired, abandoned or evicted: skipped, reclaimed when it reaches the front.
    Dead,
    InProgress,
    Inline {
        len: u8,
        bytes: [u8; INLINE_REPLY],
    },
    Boxed(Box<[u8]>),
}

impl State {
    fn done(reply: &[u8]) -> State {
        if reply.len() <= INLINE_REPLY {
            let mut bytes = [0u8; INLINE_REPLY];
            bytes[..reply.len()].copy_from_slice(reply);
            State::Inline {
                len: reply.len() as u8,
                bytes,
            }
        } else {
            State::Boxed(reply.into())
        }
    }

    fn reply(&self) -> Option<&[u8]> {
        match self {
            State::Inline { len, bytes } => Some(&bytes[..usize::from(*len)]),
            State::Boxed(b) => Some(b),
            State::Dead | State::InProgress => None,
        }
    }
}

#[derive(Debug)]
struct Slot {
    key: PackedKey,
    /// Milliseconds since the cache's epoch.
    deadline_ms: u64,
    state: State,
}

/// The index maps a keyed hash of the key to the slot's sequence number; the slot holds the
/// key itself, so a (vanishingly rare) 64-bit collision is detected, never served.
type Index = HashMap<u64, u64, BuildHasherDefault<PassThroughHasher>>;

/// The index's keys are already SipHash outputs: hashing them again would be wasted work.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Bounded reply cache.
///
/// * An entry lives for `ttl` from its `begin` (in progress) and then for `ttl` from its
///   `complete` (answered). An in-progress entry whose processing never completes therefore
///   stops pinning its key after `ttl`.
/// * Entries are kept in the order their key was first seen. At `max_entries`, a new key evicts
///   the oldest entry, completed or in progress. A retransmit of an evicted request is
///   processed again; size the cache for `ttl × peak request rate` to avoid it.
///   `max_entries == 0` disables the cache (`begin` always returns [`CacheLookup::New`]).
/// * Expiry is amortised O(expired): entries leave from the front of a queue. `now` is expected
///   to be non-decreasing (an out-of-order `now` only delays expiry, it never serves an
///   expired entry).
/// * Memory: about 130 octets per entry including a typical MAB reply (a 35-octet packed key,
///   the deadline, the reply kept inline up to 62 octets, and an 8+8-octet hash index entry).
pub struct ReplyCache {
    ttl_ms: u64,
    max_entries: usize,
    hasher: RandomState,
    index: Index,
    /// `slots[i]` has sequence number `front_seq + i`.
    slots: VecDeque<Slot>,
    front_seq: u64,
    epoch: Option<Instant>,
}

impl std::fmt::Debug for ReplyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyCache")
            .field("ttl_ms", &self.ttl_ms)
            .field("max_entries", &self.max_entries)
            .field("len", &self.index.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl ReplyCache {
    /// New cache keeping replies for `ttl` (RFC 5080 suggests a few seconds, longer than the
    /// clients' retransmission window) and at most `max_entries` keys.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        ReplyCache {
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            max_entries,
            hasher: RandomState::new(),
            index: Index::default(),
            slots: VecDeque::new(),
            front_seq: 0,
            epoch: None,
        }
    }

    /// Looks `key` up. Unknown (or expired) keys are marked in progress and reported as
    /// [`CacheLookup::New`]. Evicts the oldest entry when the cache is full.
    pub fn begin(&mut self, key: CacheKey, now: Instant) -> CacheLookup<'_> {
        let now_ms = self.millis(now);
        self.expire_ms(now_ms);
        if self.max_entries == 0 {
            return CacheLookup::New;
        }
        let packed = PackedKey::new(&key);
        let hash = self.hasher.hash_one(packed);
        if let Some(i) = self.live_slot(hash, &packed) {
            return match self.slots[i].state.reply() {
                Some(reply) => CacheLookup::Replay(reply),
                None => CacheLookup::InProgress,
            };
        }
        self.insert(hash, packed, State::InProgress, now_ms);
        CacheLookup::New
    }

    /// Stores the reply sent for `key`; it is replayed to retransmits for `ttl` from `now`.
    /// If the key was evicted or expired meanwhile it is inserted again.
    pub fn complete(&mut self, key: CacheKey, reply: &[u8], now: Instant) {
        let now_ms = self.millis(now);
        self.expire_ms(now_ms);
        if self.max_entries == 0 {
            return;
        }
        let packed = PackedKey::new(&key);
        let hash = self.hasher.hash_one(packed);
        let deadline_ms = now_ms.saturating_add(self.ttl_ms);
        match self.live_slot(hash, &packed) {
            Some(i) => {
                let slot = &mut self.slots[i];
                slot.state = State::done(reply);
                slot.deadline_ms = deadline_ms;
            }
            None => self.insert(hash, packed, State::done(reply), now_ms),
        }
    }

    /// Forgets `key`: processing failed or the request was dropped, so a retransmit is
    /// processed anew.
    pub fn abandon(&mut self, key: &CacheKey) {
        let packed = PackedKey::new(key);
        let hash = self.hasher.hash_one(packed);
        if let Some(i) = self.live_slot(hash, &packed) {
            self.slots[i].state = State::Dead;
            self.index.remove(&hash);
        }
    }

    /// Removes every entry whose ttl has passed at `now`. Amortised O(expired).
    pub fn expire(&mut self, now: Instant) {
        let now_ms = self.millis(now);
        self.expire_ms(now_ms);
    }

    /// Number of keys held (in progress and completed).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn millis(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Index of the live slot holding `key`, if any.
    fn live_slot(&self, hash: u64, key: &PackedKey) -> Option<usize> {
        let seq = *self.index.get(&hash)?;
        let i = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        let slot = self.slots.get(i)?;
        (slot.key == *key && !matches!(slot.state, State::Dead)).then_some(i)
    }

    fn expire_ms(&mut self, now_ms: u64) {
        // Entries leave in first-seen order; an entry whose deadline was pushed back by
        // `complete` holds the ones behind it for at most its processing time.
        while let Some(front) = self.slots.front() {
            let live = !matches!(front.state, State::Dead);
            if live && front.deadline_ms > now_ms {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(slot) = self.slots.pop_front() {
            if !matches!(slot.state, State::Dead) {
                let hash = self.hasher.hash_one(slot.key);
                if self.index.get(&hash) == Some(&self.front_seq) {
                    self.index.remove(&hash);
                }
            }
            self.front_seq += 1;
        }
    }

    fn insert(&mut self, hash: u64, key: PackedKey, state: State, now_ms: u64) {
        while self.index.len() >= self.max_entries && !self.slots.is_empty() {
            self.pop_front(); // evict the oldest (dead slots on the way cost nothing)
        }
        // A colliding live entry (different key, same 64-bit hash) loses its index entry: its
        // retransmits will be processed again, never answered with another request's reply.
        if let Some(i) = self
            .index
            .get(&hash)
            .and_then(|seq| seq.checked_sub(self.front_seq))
            .and_then(|i| usize::try_from(i).ok())
            && let Some(old) = self.slots.get_mut(i)
        {
            old.state = State::Dead;
        }
        let seq = self.front_seq + self.slots.len() as u64;
        self.slots.push_back(Slot {
            key,
            deadline_ms: now_ms.saturating_add(self.ttl_ms),
            state,
        });
        self.index.insert(hash, seq);
        // Abandoned slots wait for their turn at the front; compact if they dominate so memory
        // stays O(max_entries) whatever the traffic does.
        if self.slots.len() > self.max_entries.max(16).saturating_mul(2) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.index.clear();
        let base = self.front_seq;
        for slot in old.into_iter().filter(|s| !matches!(s.state, State::Dead)) {
            let hash = self.hasher.hash_one(slot.key);
            self.index.insert(hash, base + self.slots.len() as u64);
            self.slots.push_back(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, id: u8, auth: u8) -> CacheKey {
        CacheKey {
            client: SocketAddr::from(([192, 0, 2, 1], port)),
            identifier: id,
            authenticator: [auth; 16],
        }
    }

    const TTL: Duration = Duration::from_secs(5);

    #[test]
    fn short_and_long_replies_are_replayed_byte_for_byte() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        for len in [0usize, 1, 56, INLINE_REPLY, INLINE_REPLY + 1, 4096] {
            let k = key(len as u16, 1, 9);
            let reply: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            assert_eq!(c.begin(k, t0), CacheLookup::New);
            c.complete(k, &reply, t0);
            assert_eq!(c.begin(k, t0), CacheLookup::Replay(&reply[..]), "len {len}");
        }
    }

    #[test]
    fn new_then_in_progress_then_replay_within_ttl() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        let k = key(1812, 7, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        assert_eq!(
            c.begin(k, t0 + Duration::from_millis(10)),
            CacheLookup::InProgress
        );
        c.complete(k, &[2, 7, 0, 20], t0 + Duration::from_millis(20));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.begin(k, t0 + Duration::from_secs(4)),
            CacheLookup::Replay(&[2, 7, 0, 20][..])
        );
        // ttl counts from completion: still there just before completion + ttl.
        assert_eq!(
            c.begin(
                k,
                t0 + Duration::from_millis(20) + TTL - Duration::from_millis(1)
            ),
            CacheLookup::Replay(&[2, 7, 0, 20][..])
        );
    }

    #[test]
    fn expires_after_ttl() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        let k = key(1812, 7, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        c.complete(k, &[1], t0);
        c.expire(t0 + TTL);
        assert!(c.is_empty());
        assert_eq!(c.begin(k, t0 + TTL), CacheLookup::New);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn in_progress_entries_expire() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        let k = key(1812, 1, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        assert_eq!(
            c.begin(k, t0 + TTL - Duration::from_nanos(1)),
            CacheLookup::InProgress
        );
        assert_eq!(c.begin(k, t0 + TTL), CacheLookup::New);
    }

    #[test]
    fn abandon_allows_reprocessing() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        let k = key(1812, 1, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        c.abandon(&k);
        assert!(c.is_empty());
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        // The stale queue item of the first begin must not remove the new entry.
        c.expire(t0 + Duration::from_secs(1));
        assert_eq!(
            c.begin(k, t0 + Duration::from_secs(1)),
            CacheLookup::InProgress
        );
    }

    #[test]
    fn new_authenticator_is_a_new_request() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        let a = key(1812, 9, 1);
        let b = key(1812, 9, 2);
        assert_eq!(c.begin(a, t0), CacheLookup::New);
        c.complete(a, &[1], t0);
        assert_eq!(c.begin(b, t0), CacheLookup::New);
        // Other port, same id and authenticator: another client socket, another request.
        assert_eq!(c.begin(key(1813, 9, 1), t0), CacheLookup::New);
        assert_eq!(c.begin(a, t0), CacheLookup::Replay(&[1][..]));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn evicts_oldest_at_capacity() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 3);
        for i in 0..3 {
            assert_eq!(c.begin(key(1, i, 0), t0), CacheLookup::New);
            c.complete(key(1, i, 0), &[i], t0);
        }
        // A fourth key evicts the first one seen (key 0).
        assert_eq!(
            c.begin(key(1, 3, 0), t0 + Duration::from_millis(2)),
            CacheLookup::New
        );
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.begin(key(1, 1, 0), t0 + Duration::from_millis(3)),
            CacheLookup::Replay(&[1][..])
        );
        assert_eq!(
            c.begin(key(1, 0, 0), t0 + Duration::from_millis(3)),
            CacheLookup::New
        ); // evicted, and now evicts key 1
        assert_eq!(
            c.begin(key(1, 3, 0), t0 + Duration::from_millis(3)),
            CacheLookup::InProgress
        );
        assert_eq!(
            c.begin(key(1, 2, 0), t0 + Duration::from_millis(3)),
            CacheLookup::Replay(&[2][..])
        );
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn zero_capacity_disables() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 0);
        let k = key(1, 1, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        c.complete(k, &[1], t0);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        assert!(c.is_empty());
    }

    #[test]
    fn queue_stays_bounded_under_churn() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 10);
        for i in 0..10_000u32 {
            let k = key(1, (i % 7) as u8, (i % 5) as u8);
            let _ = c.begin(k, t0);
            if i % 3 == 0 {
                c.abandon(&k);
            } else {
                c.complete(k, &[1], t0);
            }
            assert!(
                c.slots.len() <= 2 * 16 + 1,
                "queue grew to {}",
                c.slots.len()
            );
            assert!(c.len() <= 10);
        }
    }
}

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

#[derive(Debug)]
struct Entry {
    seq: u64,
    deadline: Instant,
    reply: Option<Vec<u8>>,
}

/// Bounded reply cache.
///
/// * Entries (in progress or completed) live for `ttl` from the last `begin`/`complete`. An
///   in-progress entry whose processing never completes therefore stops pinning its key after
///   `ttl`.
/// * At `max_entries`, inserting a new key evicts the oldest entry (in insertion/refresh order),
///   whether completed or in progress. A retransmit of an evicted request is processed again;
///   size the cache for `ttl × peak request rate` to avoid it. `max_entries == 0` disables the
///   cache (`begin` always returns [`CacheLookup::New`]).
/// * Expiry is amortised O(expired) using a queue in insertion order; `now` is expected to be
///   non-decreasing (an out-of-order `now` only delays expiry, it never serves an expired
///   entry).
#[derive(Debug)]
pub struct ReplyCache {
    ttl: Duration,
    max_entries: usize,
    map: HashMap<CacheKey, Entry>,
    /// (key, seq, deadline) in insertion order; items whose seq no longer matches the map are
    /// stale and skipped.
    order: VecDeque<(CacheKey, u64, Instant)>,
    seq: u64,
}

impl ReplyCache {
    /// New cache keeping replies for `ttl` (RFC 5080 suggests a few seconds, longer than the
    /// clients' retransmission window) and at most `max_entries` keys.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        ReplyCache {
            ttl,
            max_entries,
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
        }
    }

    /// Looks `key` up. Unknown (or expired) keys are marked in progress and reported as
    /// [`CacheLookup::New`]. Evicts the oldest entry when the cache is full.
    pub fn begin(&mut self, key: CacheKey, now: Instant) -> CacheLookup<'_> {
        self.expire(now);
        if self.max_entries == 0 {
            return CacheLookup::New;
        }
        if self.map.get(&key).is_some_and(|e| e.deadline <= now) {
            self.map.remove(&key);
        }
        if self.map.contains_key(&key) {
            return match self.map.get(&key) {
                Some(Entry { reply: Some(r), .. }) => CacheLookup::Replay(r),
                _ => CacheLookup::InProgress,
            };
        }
        self.insert(key, None, now);
        CacheLookup::New
    }

    /// Stores the reply sent for `key`; it is replayed to retransmits for `ttl` from `now`.
    /// If the key was evicted or expired meanwhile it is inserted again.
    pub fn complete(&mut self, key: CacheKey, reply: Vec<u8>, now: Instant) {
        self.expire(now);
        if self.max_entries == 0 {
            return;
        }
        self.map.remove(&key);
        self.insert(key, Some(reply), now);
    }

    /// Forgets `key`: processing failed or the request was dropped, so a retransmit is
    /// processed anew.
    pub fn abandon(&mut self, key: &CacheKey) {
        self.map.remove(key);
    }

    /// Removes every entry whose ttl has passed at `now`. Amortised O(expired).
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(key, seq, deadline)) = self.order.front() {
            if deadline > now {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
            }
        }
    }

    /// Number of keys held (in progress and completed).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn evict_oldest(&mut self) {
        while let Some((key, seq, _)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
                return;
            }
        }
    }

    fn insert(&mut self, key: CacheKey, reply: Option<Vec<u8>>, now: Instant) {
        if self.map.len() >= self.max_entries {
            self.evict_oldest();
        }
        self.seq += 1;
        let deadline = now.checked_add(self.ttl).unwrap_or(now);
        self.map.insert(
            key,
            Entry {
                seq: self.seq,
                deadline,
                reply,
            },
        );
        self.order.push_back((key, self.seq, deadline));
        // Stale queue items (refreshed or abandoned keys) are dropped lazily; compact when they
        // dominate so the queue stays O(max_entries). Amortised O(1).
        if self.order.len() > self.max_entries.max(16).saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(k, s, _)| map.get(k).is_some_and(|e| e.seq == *s));
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
    fn new_then_in_progress_then_replay_within_ttl() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 100);
        let k = key(1812, 7, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        assert_eq!(
            c.begin(k, t0 + Duration::from_millis(10)),
            CacheLookup::InProgress
        );
        c.complete(k, vec![2, 7, 0, 20], t0 + Duration::from_millis(20));
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
        c.complete(k, vec![1], t0);
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
        c.complete(a, vec![1], t0);
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
            c.complete(key(1, i, 0), vec![i], t0);
        }
        // Refresh key 0 so key 1 becomes the oldest.
        c.complete(key(1, 0, 0), vec![0], t0 + Duration::from_millis(1));
        assert_eq!(
            c.begin(key(1, 3, 0), t0 + Duration::from_millis(2)),
            CacheLookup::New
        );
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.begin(key(1, 1, 0), t0 + Duration::from_millis(3)),
            CacheLookup::New
        ); // evicted, evicts 2
        assert_eq!(
            c.begin(key(1, 0, 0), t0 + Duration::from_millis(3)),
            CacheLookup::Replay(&[0][..])
        );
        assert_eq!(
            c.begin(key(1, 3, 0), t0 + Duration::from_millis(3)),
            CacheLookup::InProgress
        );
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn zero_capacity_disables() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(TTL, 0);
        let k = key(1, 1, 1);
        assert_eq!(c.begin(k, t0), CacheLookup::New);
        c.complete(k, vec![1], t0);
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
                c.complete(k, vec![1], t0);
            }
            assert!(
                c.order.len() <= 2 * 16 + 1,
                "queue grew to {}",
                c.order.len()
            );
            assert!(c.len() <= 10);
        }
    }
}

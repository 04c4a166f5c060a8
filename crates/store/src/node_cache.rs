//! Per-server node read cache that stays correct across a cluster.
//!
//! Every RADIUS request needs a [`PolicyView`] of the device (status, role, unregdate, open
//! security events): the part of [`NodeView`] the decision reads, and what this cache keeps.
//! On MariaDB that is one query costing mariadbd ~250 µs of CPU; this cache answers most
//! requests from memory and still honours every change made on any server.
//!
//! # How it stays correct
//!
//! * **Change log.** Every store method that changes what [`Store::node_view`] returns (node
//!   created, registered, unregistered, deleted, imported; security event opened or closed;
//!   an accounting Start/Interim that creates the node) inserts a `(id, mac, changed_at)` row
//!   in `node_change` **in the same transaction** (migration 5). `touch_last_seen` does not:
//!   a cached view's `node.last_seen` may be older than the database's (the policy does not
//!   use it).
//! * **Poller.** Each server reads [`Store::changes_since`] every ~100–150 ms and invalidates
//!   the MACs it returns ([`CachedNodes::poll_once`]). On Galera that read is causal
//!   (`wsrep_sync_wait = 1`): it sees every change committed anywhere in the cluster before it
//!   started.
//! * **Trust rule.** Cached entries are used only while the most recent successful poll
//!   *started* less than `max_staleness` ago ([`NodeCache::get`] returns
//!   [`Lookup::Untrusted`] otherwise, and the caller reads the database). A poll that starts
//!   at `s` and succeeds has invalidated every change committed before `s`, so:
//!
//!   > **Invariant.** A change committed at time `T` (on any server) is reflected by every
//!   > server's lookups — from its cache, or because that server is reading the database —
//!   > from `T + max_staleness` on.
//!
//!   A writer that must be sure every server sees its change before acting on it (the CoA /
//!   Disconnect sender) therefore waits [`CachedNodes::max_staleness`] after its commit
//!   before sending. When trust was lost (polls failing), the first good poll clears the cache
//!   before entries are trusted again (changes older than the change log's retention could
//!   otherwise have been missed).
//! * **Fill race.** A miss returns a [`FillTicket`]; the caller reads the database and calls
//!   [`NodeCache::fill`], which stores the result only if no invalidation hit that MAC's shard
//!   since the ticket was taken (per-shard generation counter). An invalidation that raced the
//!   read therefore either rejects the fill or removes the filled entry.
//! * **Galera ids.** Auto-increment ids are interleaved per node (`auto_increment_offset`) and
//!   are not in commit order across nodes: a change can commit with an id below one already
//!   seen. [`ChangeCursor`] therefore re-reads a look-back window: the floor of each poll is the
//!   highest id seen by a poll that started at least `look_back` (5 s) ago, and ids already
//!   applied are skipped. **Assumption:** a change transaction commits (and is applied on the
//!   node the poller reads) within `look_back` of taking its id. Change transactions are
//!   single short statements batches, so this holds unless a node stalls for seconds, which
//!   also stalls Galera's flow control for the whole cluster. SQLite ids commit in order; the
//!   same code path is used.
//!
//! Negative entries (`None`: unknown MAC) are cached too: node creation is logged like any
//! other change.
//!
//! [`NodeCache`] and [`ChangeCursor`] are pure data structures: time is an input, there is no
//! clock inside. [`CachedNodes`] binds them to a [`Store`] and the monotonic clock.

use crate::{Store, StoreError};
use ironfence_core::{Mac, NodeView, PolicyView};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Settings of the node cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Entries at most (positive and negative), over all shards.
    pub capacity: usize,
    /// Independently locked shards (a power of two is not required).
    pub shards: usize,
    /// Entries are used only while the last successful poll started less than this ago.
    pub max_staleness: Duration,
    /// Look-back window of the change poller (see [`ChangeCursor`]).
    pub look_back: Duration,
    /// Entries older than this are read again: a safety net for writes that bypass the
    /// change log (an administrator's SQL, a server running a release older than migration 5
    /// during a rolling upgrade). Not part of the staleness invariant, which does not depend
    /// on it.
    pub max_age: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            capacity: 262_144,
            shards: 64,
            max_staleness: Duration::from_millis(500),
            look_back: Duration::from_secs(5),
            max_age: Duration::from_secs(60),
        }
    }
}

/// Result of a cache lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Cached: the view, or `None` for a MAC known to have no node.
    Hit(Option<PolicyView>),
    /// Not cached: read the database, then [`NodeCache::fill`] with this ticket.
    Miss(FillTicket),
    /// The cache cannot confirm it is current: read the database (and do not fill).
    Untrusted,
}

/// Proof of when a miss began, for [`NodeCache::fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillTicket {
    shard: usize,
    generation: u64,
}

/// Counters (monotonic since creation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub untrusted: u64,
    pub invalidations: u64,
    pub evictions: u64,
    /// Fills refused because an invalidation raced the database read.
    pub fills_rejected: u64,
    pub poll_failures: u64,
    pub entries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    untrusted: AtomicU64,
    invalidations: AtomicU64,
    evictions: AtomicU64,
    fills_rejected: AtomicU64,
    poll_failures: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, Default)]
struct Shard {
    /// The view (`None`: no such node) and when it was filled.
    map: HashMap<Mac, (Option<PolicyView>, Instant)>,
    /// Insertion order for FIFO eviction; may hold MACs no longer in `map` (skipped).
    order: VecDeque<Mac>,
    /// Bumped by every invalidation in this shard.
    generation: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sharded MAC → view map with a capacity bound and the trust rule (see the module docs).
#[derive(Debug)]
pub struct NodeCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    max_staleness: Duration,
    max_age: Duration,
    hasher: std::collections::hash_map::RandomState,
    /// Time origin of `last_good_poll_ns`: the start of the first successful poll.
    poll_base: OnceLock<Instant>,
    /// Start of the most recent successful poll, in ns after `poll_base`, plus one (0: none).
    /// An atomic, so that lookups take no lock besides their shard's.
    last_good_poll_ns: AtomicU64,
    /// Serialises [`NodeCache::poll_succeeded`].
    poll_lock: Mutex<()>,
    counters: Counters,
}

impl NodeCache {
    pub fn new(settings: &CacheSettings) -> NodeCache {
        let shards = settings.shards.max(1);
        NodeCache {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: settings.capacity.div_ceil(shards).max(1),
            max_staleness: settings.max_staleness,
            max_age: settings.max_age,
            hasher: std::collections::hash_map::RandomState::new(),
            poll_base: OnceLock::new(),
            last_good_poll_ns: AtomicU64::new(0),
            poll_lock: Mutex::new(()),
            counters: Counters::default(),
        }
    }

    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    fn shard_of(&self, mac: Mac) -> usize {
        (self.hasher.hash_one(mac) % self.shards.len() as u64) as usize
    }

    /// Age of the start of the last successful poll at `now` (`None`: never polled).
    pub fn staleness(&self, now: Instant) -> Option<Duration> {
        self.last_good_poll()
            .map(|s| now.saturating_duration_since(s))
    }

    fn last_good_poll(&self) -> Option<Instant> {
        let base = *self.poll_base.get()?;
        match self.last_good_poll_ns.load(Ordering::Acquire) {
            0 => None,
            n => Some(base + Duration::from_nanos(n - 1)),
        }
    }

    /// Whether entries may be used at `now`.
    pub fn trusted(&self, now: Instant) -> bool {
        self.staleness(now)
            .is_some_and(|age| age < self.max_staleness)
    }

    pub fn get(&self, mac: Mac, now: Instant) -> Lookup {
        if !self.trusted(now) {
            bump(&self.counters.untrusted);
            return Lookup::Untrusted;
        }
        let idx = self.shard_of(mac);
        let shard = lock(&self.shards[idx]);
        match shard.map.get(&mac) {
            Some((v, filled)) if now.saturating_duration_since(*filled) < self.max_age => {
                bump(&self.counters.hits);
                Lookup::Hit(v.clone())
            }
            _ => {
                bump(&self.counters.misses);
                Lookup::Miss(FillTicket {
                    shard: idx,
                    generation: shard.generation,
                })
            }
        }
    }

    /// Stores what the database returned for a miss (read after `now`, the time of the miss
    /// or later), unless an invalidation hit the shard since the ticket was taken. Returns
    /// whether it was stored.
    pub fn fill(
        &self,
        mac: Mac,
        ticket: FillTicket,
        view: Option<PolicyView>,
        now: Instant,
    ) -> bool {
        let mut shard = lock(&self.shards[ticket.shard]);
        if shard.generation != ticket.generation || ticket.shard != self.shard_of(mac) {
            bump(&self.counters.fills_rejected);
            return false;
        }
        if shard.map.insert(mac, (view, now)).is_none() {
            shard.order.push_back(mac);
        }
        while shard.map.len() > self.per_shard {
            match shard.order.pop_front() {
                Some(old) => {
                    if shard.map.remove(&old).is_some() {
                        bump(&self.counters.evictions);
                    }
                }
                None => break,
            }
        }
        // Invalidated MACs linger in `order`: compact when it grows well past the map.
        if shard.order.len() > 2 * self.per_shard + 16 {
            let Shard { map, order, .. } = &mut *shard;
            order.retain(|m| map.contains_key(m));
        }
        true
    }

    /// Forgets the MAC's entry (and refuses fills that began before).
    pub fn invalidate(&self, mac: Mac) {
        let mut shard = lock(&self.shards[self.shard_of(mac)]);
        shard.generation += 1;
        shard.map.remove(&mac);
        bump(&self.counters.invalidations);
    }

    /// Forgets everything (and refuses fills that began before).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            let mut shard = lock(s);
            shard.generation += 1;
            shard.map.clear();
            shard.order.clear();
        }
    }

    /// A poll that started at `started` succeeded and its invalidations are applied: entries
    /// are trusted until `started + max_staleness`. If trust had lapsed before `started`, the
    /// cache is cleared first.
    pub fn poll_succeeded(&self, started: Instant) {
        let _serial = lock(&self.poll_lock);
        let lapsed = match self.last_good_poll() {
            None => true,
            Some(prev) => started.saturating_duration_since(prev) >= self.max_staleness,
        };
        if lapsed {
            self.clear();
        }
        let base = *self.poll_base.get_or_init(|| started);
        let ns = u64::try_from(started.saturating_duration_since(base).as_nanos())
            .unwrap_or(u64::MAX - 1);
        // Release: the invalidations applied before this call are visible to a lookup that
        // reads the new value (they were made under the shard locks, taken after it).
        self.last_good_poll_ns.fetch_max(ns + 1, Ordering::Release);
    }

    pub fn poll_failed(&self) {
        bump(&self.counters.poll_failures);
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            hits: r(&c.hits),
            misses: r(&c.misses),
            untrusted: r(&c.untrusted),
            invalidations: r(&c.invalidations),
            evictions: r(&c.evictions),
            fills_rejected: r(&c.fills_rejected),
            poll_failures: r(&c.poll_failures),
            entries: self.len() as u64,
        }
    }
}

/// Which change ids to read next, with the look-back window for out-of-order commits (see the
/// module docs).
#[derive(Debug)]
pub struct ChangeCursor {
    look_back: Duration,
    /// `(poll start, highest id seen by then)`, oldest first, for polls younger than look_back.
    history: VecDeque<(Instant, u64)>,
    floor: u64,
    max_seen: u64,
    /// Ids above `floor` already applied.
    applied: HashSet<u64>,
}

impl ChangeCursor {
    pub fn new(look_back: Duration) -> ChangeCursor {
        ChangeCursor {
            look_back,
            history: VecDeque::new(),
            floor: 0,
            max_seen: 0,
            applied: HashSet::new(),
        }
    }

    /// The floor for a poll starting at `now`: the highest id seen by a poll that started at
    /// least `look_back` before.
    pub fn floor(&mut self, now: Instant) -> u64 {
        while let Some(&(started, seen)) = self.history.front() {
            if now.saturating_duration_since(started) < self.look_back {
                break;
            }
            self.floor = self.floor.max(seen);
            self.history.pop_front();
        }
        let floor = self.floor;
        self.applied.retain(|id| *id > floor);
        floor
    }

    /// Records the rows read by the poll that started at `started`; returns the MACs of the
    /// changes not applied before (to invalidate).
    pub fn record(&mut self, started: Instant, rows: &[(u64, Mac)]) -> Vec<Mac> {
        let mut fresh = Vec::new();
        for &(id, mac) in rows {
            if id > self.floor && self.applied.insert(id) {
                fresh.push(mac);
            }
            self.max_seen = self.max_seen.max(id);
        }
        self.history.push_back((started, self.max_seen));
        fresh
    }
}

/// A [`Store`] with a [`NodeCache`] in front of [`Store::node_view`]: the RADIUS path's read
/// path ([`CachedNodes::policy_view`]). Someone must call [`CachedNodes::poll_once`] every
/// 100–150 ms (the server's `node_cache` task); without polls every lookup goes to the
/// database.
#[derive(Debug)]
pub struct CachedNodes {
    store: Store,
    cache: NodeCache,
    cursor: Mutex<ChangeCursor>,
}

impl CachedNodes {
    pub fn new(store: Store, settings: &CacheSettings) -> CachedNodes {
        CachedNodes {
            store,
            cache: NodeCache::new(settings),
            cursor: Mutex::new(ChangeCursor::new(settings.look_back)),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn cache(&self) -> &NodeCache {
        &self.cache
    }

    /// How long after committing a node change a writer waits before acting on the belief
    /// that every server sees it (e.g. before sending a CoA). See the module's invariant.
    pub fn max_staleness(&self) -> Duration {
        self.cache.max_staleness()
    }

    /// [`Store::node_view`] reduced to a [`PolicyView`], answered from the cache when it is
    /// trusted.
    ///
    /// The database futures are boxed: a MariaDB query's future is kilobytes, and held inline
    /// it would make every caller's future (allocated per request) that large even when the
    /// answer comes from memory.
    ///
    /// What is cached is the [`PolicyView`] (only what the decision reads), not the whole
    /// node: about 40 octets a device.
    pub async fn policy_view(&self, mac: Mac) -> Result<Option<PolicyView>, StoreError> {
        match self.cache.get(mac, Instant::now()) {
            Lookup::Hit(v) => Ok(v),
            Lookup::Miss(ticket) => {
                let asked = Instant::now();
                let v = Box::pin(self.store.node_view(mac)).await?;
                let v = v.as_ref().map(PolicyView::from);
                self.cache.fill(mac, ticket, v.clone(), asked);
                Ok(v)
            }
            Lookup::Untrusted => Ok(Box::pin(self.store.node_view(mac))
                .await?
                .as_ref()
                .map(PolicyView::from)),
        }
    }

    /// [`Store::create_node_if_absent`], then forgets the cached (negative) entry at once.
    pub async fn create_node_if_absent(
        &self,
        mac: Mac,
        now: ironfence_core::UnixTime,
    ) -> Result<ironfence_core::Node, StoreError> {
        let node = self.store.create_node_if_absent(mac, now).await?;
        self.cache.invalidate(mac);
        Ok(node)
    }

    /// For writes made by this process: forget the MAC now rather than at the next poll.
    pub fn invalidate(&self, mac: Mac) {
        self.cache.invalidate(mac);
    }

    /// One poll of the change log: invalidates the changed MACs and extends the trust window.
    /// Returns the number of changes applied. Not meant to run concurrently with itself.
    pub async fn poll_once(&self) -> Result<usize, StoreError> {
        let started = Instant::now();
        let floor = lock(&self.cursor).floor(started);
        match self.store.changes_since(floor).await {
            Ok(rows) => {
                let fresh = lock(&self.cursor).record(started, &rows);
                for mac in &fresh {
                    self.cache.invalidate(*mac);
                }
                self.cache.poll_succeeded(started);
                Ok(fresh.len())
            }
            Err(e) => {
                self.cache.poll_failed();
                Err(e)
            }
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Age of the start of the last successful poll (`None`: none yet).
    pub fn staleness(&self) -> Option<Duration> {
        self.cache.staleness(Instant::now())
    }
}

/// The whole [`NodeView`] is not cached (only its [`PolicyView`], see
/// [`CachedNodes::policy_view`]): it comes from the store.
impl crate::NodeLookup for CachedNodes {
    fn node_view(
        &self,
        mac: Mac,
    ) -> impl Future<Output = Result<Option<NodeView>, StoreError>> + Send {
        self.store.node_view(mac)
    }

    fn create_node_if_absent(
        &self,
        mac: Mac,
        now: ironfence_core::UnixTime,
    ) -> impl Future<Output = Result<ironfence_core::Node, StoreError>> + Send {
        CachedNodes::create_node_if_absent(self, mac, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_core::{Node, NodeStatus};

    fn mac(i: u32) -> Mac {
        let b = i.to_be_bytes();
        Mac([2, 0, b[0], b[1], b[2], b[3]])
    }

    fn view(m: Mac, status: NodeStatus) -> PolicyView {
        PolicyView::from(&NodeView {
            node: Node {
                mac: m,
                pid: "default".into(),
                role: None,
                status,
                regdate: None,
                unregdate: None,
                last_seen: None,
                notes: None,
            },
            open_security_events: 0,
        })
    }

    fn settings(capacity: usize, shards: usize) -> CacheSettings {
        CacheSettings {
            capacity,
            shards,
            max_staleness: Duration::from_millis(500),
            look_back: Duration::from_secs(5),
            max_age: Duration::from_secs(60),
        }
    }

    fn ticket(l: Lookup) -> FillTicket {
        match l {
            Lookup::Miss(t) => t,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    #[test]
    fn untrusted_until_polled_then_hit_and_miss() {
        let c = NodeCache::new(&settings(100, 4));
        let t0 = Instant::now();
        assert_eq!(c.get(mac(1), t0), Lookup::Untrusted);
        c.poll_succeeded(t0);
        let t = ticket(c.get(mac(1), t0 + Duration::from_millis(10)));
        assert!(c.fill(mac(1), t, Some(view(mac(1), NodeStatus::Registered)), t0));
        let t = ticket(c.get(mac(2), t0));
        assert!(c.fill(mac(2), t, None, t0), "negative entry");
        assert_eq!(
            c.get(mac(1), t0 + Duration::from_millis(499)),
            Lookup::Hit(Some(view(mac(1), NodeStatus::Registered)))
        );
        assert_eq!(c.get(mac(2), t0), Lookup::Hit(None));
        // The trust window ends max_staleness after the poll *started*.
        assert_eq!(
            c.get(mac(1), t0 + Duration::from_millis(500)),
            Lookup::Untrusted
        );
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.untrusted, s.entries), (2, 2, 2, 2));
    }

    #[test]
    fn invalidation_removes_and_rejects_racing_fill() {
        let c = NodeCache::new(&settings(100, 1));
        let t0 = Instant::now();
        c.poll_succeeded(t0);
        // Miss, then the change is invalidated while the database read is in flight: the old
        // value read must not be stored.
        let t = ticket(c.get(mac(1), t0));
        c.invalidate(mac(1));
        assert!(!c.fill(mac(1), t, Some(view(mac(1), NodeStatus::Unregistered)), t0));
        assert!(matches!(c.get(mac(1), t0), Lookup::Miss(_)));
        // A fill after the invalidation is stored; a later invalidation removes it.
        let t = ticket(c.get(mac(1), t0));
        assert!(c.fill(mac(1), t, Some(view(mac(1), NodeStatus::Registered)), t0));
        c.invalidate(mac(1));
        assert!(matches!(c.get(mac(1), t0), Lookup::Miss(_)));
        let s = c.stats();
        assert_eq!((s.invalidations, s.fills_rejected), (2, 1));
    }

    #[test]
    fn capacity_is_bounded_per_shard_fifo() {
        let c = NodeCache::new(&settings(8, 2));
        let t0 = Instant::now();
        c.poll_succeeded(t0);
        for i in 0..100 {
            let t = ticket(c.get(mac(i), t0));
            assert!(c.fill(mac(i), t, None, t0));
            assert!(c.len() <= 8, "len {} after {i}", c.len());
        }
        assert_eq!(c.stats().evictions, 100 - c.len() as u64);
        // The most recent fill of a shard is still there.
        assert_eq!(c.get(mac(99), t0), Lookup::Hit(None));
    }

    #[test]
    fn entries_expire_after_max_age() {
        let c = NodeCache::new(&settings(100, 4));
        let t0 = Instant::now();
        c.poll_succeeded(t0);
        let t = ticket(c.get(mac(1), t0));
        assert!(c.fill(mac(1), t, None, t0));
        // Polled every 100 ms all along, but the entry is a minute old: read again.
        for i in 1..=600u64 {
            c.poll_succeeded(t0 + Duration::from_millis(100 * i));
        }
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            c.get(mac(1), later - Duration::from_millis(1)),
            Lookup::Hit(None)
        );
        assert!(matches!(c.get(mac(1), later), Lookup::Miss(_)));
    }

    #[test]
    fn lapsed_trust_clears_on_next_good_poll() {
        let c = NodeCache::new(&settings(100, 4));
        let t0 = Instant::now();
        c.poll_succeeded(t0);
        let t = ticket(c.get(mac(1), t0));
        c.fill(mac(1), t, None, t0);
        // Polls every 100 ms keep it.
        c.poll_succeeded(t0 + Duration::from_millis(100));
        assert_eq!(
            c.get(mac(1), t0 + Duration::from_millis(550)),
            Lookup::Hit(None)
        );
        // A 2 s gap (polls failing): untrusted, then cleared by the next good poll.
        let late = t0 + Duration::from_secs(2);
        assert_eq!(c.get(mac(1), late), Lookup::Untrusted);
        c.poll_succeeded(late);
        assert!(matches!(c.get(mac(1), late), Lookup::Miss(_)));
        // An older poll finishing late does not move the window back.
        c.poll_succeeded(t0 + Duration::from_secs(1));
        assert_eq!(c.staleness(late), Some(Duration::ZERO));
    }

    #[test]
    fn cursor_rereads_look_back_and_dedupes() {
        let mut cur = ChangeCursor::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(cur.floor(at(0)), 0);
        assert_eq!(
            cur.record(at(0), &[(1, mac(1)), (3, mac(3))]),
            [mac(1), mac(3)]
        );
        // Within the window the floor stays at 0: id 2, committed late (Galera), is found.
        assert_eq!(cur.floor(at(100)), 0);
        assert_eq!(
            cur.record(
                at(100),
                &[(1, mac(1)), (2, mac(2)), (3, mac(3)), (5, mac(5))]
            ),
            [mac(2), mac(5)],
            "already applied ids are skipped"
        );
        // 5 s after the first poll, its highest id becomes the floor.
        assert_eq!(cur.floor(at(5_000)), 3);
        assert_eq!(cur.record(at(5_000), &[(5, mac(5)), (4, mac(4))]), [mac(4)]);
        assert_eq!(cur.floor(at(5_100)), 5);
        assert_eq!(cur.record(at(5_100), &[]), Vec::<Mac>::new());
        assert_eq!(cur.floor(at(20_000)), 5);
    }
}

//! Per-source-IP token buckets (login attempts, form posts). Time is an input: a
//! monotonic [`Duration`] since an origin the caller keeps.
//!
//! Memory is bounded: at `max_keys` entries, buckets that are full again (their owner has
//! been quiet long enough to be forgotten without changing any decision) are dropped first;
//! if none is, the new key is refused (fail closed under a flood of source addresses).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Burst size.
    pub capacity: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Duration,
}

#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Limiter<K> {
        Limiter {
            rate,
            max_keys,
            buckets: HashMap::new(),
        }
    }

    fn refill(rate: Rate, b: &Bucket, now: Duration) -> f64 {
        let elapsed = now.saturating_sub(b.at).as_secs_f64();
        (b.tokens + elapsed * rate.per_second).min(rate.capacity)
    }

    /// Takes one token for `key` at `now`: `true` if allowed.
    pub fn check(&mut self, key: &K, now: Duration) -> bool {
        let rate = self.rate;
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.buckets
                .retain(|_, b| Self::refill(rate, b, now) < rate.capacity);
            if self.buckets.len() >= self.max_keys {
                return false;
            }
        }
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: rate.capacity,
            at: now,
        });
        let tokens = Self::refill(rate, b, now);
        if tokens >= 1.0 {
            *b = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            true
        } else {
            *b = Bucket { tokens, at: now };
            false
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        capacity: 3.0,
        per_second: 0.5,
    };

    #[test]
    fn burst_then_refill() {
        let mut l = Limiter::new(RATE, 100);
        let t0 = Duration::from_secs(100);
        assert!(l.check(&"a", t0));
        assert!(l.check(&"a", t0));
        assert!(l.check(&"a", t0));
        assert!(!l.check(&"a", t0));
        // Another address has its own bucket.
        assert!(l.check(&"b", t0));
        // 2 s later: one token back.
        assert!(l.check(&"a", t0 + Duration::from_secs(2)));
        assert!(!l.check(&"a", t0 + Duration::from_secs(2)));
        // Refused attempts do not push the refill back.
        assert!(!l.check(&"a", t0 + Duration::from_secs(3)));
        assert!(l.check(&"a", t0 + Duration::from_secs(4)));
    }

    #[test]
    fn bounded_memory_forgets_only_full_buckets() {
        let mut l = Limiter::new(RATE, 2);
        let t0 = Duration::from_secs(0);
        assert!(l.check(&1, t0));
        assert!(l.check(&2, t0));
        // Table full, nobody forgettable: a new key is refused.
        assert!(!l.check(&3, t0));
        // Much later, both buckets are full again and can be forgotten.
        assert!(l.check(&3, t0 + Duration::from_secs(60)));
        assert!(l.len() <= 2);
    }
}

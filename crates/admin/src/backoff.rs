//! Login backoff: failure counters per account name and per source address, with an
//! exponential lock once the free attempts are used (default: 5 free, then 2, 4, 8 … seconds,
//! at most 15 minutes). Both counters are checked: guessing many passwords for one account
//! from many addresses is slowed by the account's counter, guessing from one address across
//! many accounts by the address's.
//!
//! Account names are counted whether or not the account exists, so the answer (and its
//! timing, with the shell's dummy password verification) does not reveal which exist.
//! A success resets the account's counter and halves the source's (one admin behind a NAT
//! logging in does not unlock an attacker at the same address). Counters are forgotten after
//! [`BackoffPolicy::forget_after_secs`] without a failure. Memory is bounded: at most
//! `max_entries` per table; when full, entries past their forget time go first, then the
//! one with the oldest failure.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Failures allowed before any delay.
    pub free: u32,
    /// The delay after failure `free + n` is `2^n` seconds, at most this.
    pub max_delay_secs: i64,
    /// A counter without a failure for this long is dropped.
    pub forget_after_secs: i64,
    /// Entries per table (accounts, sources).
    pub max_entries: usize,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            free: 5,
            max_delay_secs: 15 * 60,
            forget_after_secs: 3600,
            max_entries: 10_000,
        }
    }
}

impl BackoffPolicy {
    /// The lock after `failures` consecutive failures (0 while free).
    pub fn delay_after(&self, failures: u32) -> i64 {
        if failures <= self.free {
            return 0;
        }
        let n = failures - self.free;
        if n >= 62 {
            return self.max_delay_secs;
        }
        (1i64 << n).min(self.max_delay_secs)
    }
}

/// A caller must wait: until `until` (UNIX seconds), i.e. `retry_after` seconds from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub until: i64,
    pub retry_after: i64,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    last_failure: i64,
    locked_until: i64,
}

#[derive(Debug, Clone)]
struct Table<K> {
    map: HashMap<K, Counter>,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn locked_until(&self, k: &K, now: i64) -> Option<i64> {
        self.map
            .get(k)
            .map(|c| c.locked_until)
            .filter(|&until| until > now)
    }

    fn fail(&mut self, k: &K, now: i64, p: &BackoffPolicy) {
        if !self.map.contains_key(k) && self.map.len() >= p.max_entries {
            self.map
                .retain(|_, c| now - c.last_failure < p.forget_after_secs);
            if self.map.len() >= p.max_entries
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, c)| c.last_failure)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        let c = self.map.entry(k.clone()).or_insert(Counter {
            failures: 0,
            last_failure: now,
            locked_until: 0,
        });
        if now - c.last_failure >= p.forget_after_secs {
            c.failures = 0;
        }
        c.failures = c.failures.saturating_add(1);
        c.last_failure = now;
        c.locked_until = now + p.delay_after(c.failures);
    }

    fn reset(&mut self, k: &K) {
        self.map.remove(k);
    }

    fn halve(&mut self, k: &K, p: &BackoffPolicy) {
        if let Some(c) = self.map.get_mut(k) {
            c.failures /= 2;
            c.locked_until = c.last_failure + p.delay_after(c.failures);
            if c.failures == 0 {
                self.map.remove(k);
            }
        }
    }
}

/// The two tables. Keys of accounts are compared as given (admin.conf names are
/// case-sensitive).
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    accounts: Table<String>,
    sources: Table<IpAddr>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff {
            policy,
            accounts: Table {
                map: HashMap::new(),
            },
            sources: Table {
                map: HashMap::new(),
            },
        }
    }

    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// Whether a login for `account` from `source` may be tried at `now`.
    pub fn check(&self, account: &str, source: IpAddr, now: i64) -> Result<(), Locked> {
        let a = self.accounts.locked_until(&account.to_string(), now);
        let s = self.sources.locked_until(&source, now);
        match a.max(s) {
            Some(until) => Err(Locked {
                until,
                retry_after: until - now,
            }),
            None => Ok(()),
        }
    }

    /// A failed login (wrong password, unknown or disabled account, wrong TOTP code).
    pub fn failure(&mut self, account: &str, source: IpAddr, now: i64) {
        let p = self.policy;
        self.accounts.fail(&account.to_string(), now, &p);
        self.sources.fail(&source, now, &p);
    }

    /// A successful login.
    pub fn success(&mut self, account: &str, source: IpAddr) {
        let p = self.policy;
        self.accounts.reset(&account.to_string());
        self.sources.halve(&source, &p);
    }

    /// Entries held (accounts, sources).
    pub fn len(&self) -> (usize, usize) {
        (self.accounts.map.len(), self.sources.map.len())
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BackoffPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn the_delay_table() {
        let p = BackoffPolicy::default();
        let rows = [
            (0, 0),
            (5, 0),
            (6, 2),
            (7, 4),
            (10, 32),
            (14, 512),
            (15, 900),
            (100, 900),
            (u32::MAX, 900),
        ];
        for (failures, want) in rows {
            assert_eq!(p.delay_after(failures), want, "{failures}");
        }
    }

    #[test]
    fn five_free_then_locked_with_retry_after() {
        let mut b = Backoff::default();
        for i in 0..5 {
            assert!(b.check("alice", ip(1), T0 + i).is_ok());
            b.failure("alice", ip(1), T0 + i);
        }
        assert!(b.check("alice", ip(1), T0 + 5).is_ok(), "five free");
        b.failure("alice", ip(1), T0 + 5);
        let l = b.check("alice", ip(1), T0 + 5).unwrap_err();
        assert_eq!(
            l,
            Locked {
                until: T0 + 7,
                retry_after: 2
            }
        );
        // The account's counter holds from another address too …
        assert!(b.check("alice", ip(2), T0 + 6).is_err());
        // … and the address's counter for another account.
        assert!(b.check("bob", ip(1), T0 + 6).is_err());
        assert!(b.check("bob", ip(2), T0 + 6).is_ok());
        assert!(b.check("alice", ip(1), T0 + 7).is_ok(), "lock over");
        b.failure("alice", ip(1), T0 + 7);
        assert_eq!(b.check("alice", ip(1), T0 + 7).unwrap_err().retry_after, 4);
    }

    #[test]
    fn success_resets_the_account_and_halves_the_source() {
        let mut b = Backoff::default();
        for i in 0..8 {
            b.failure(&format!("u{i}"), ip(1), T0);
            b.failure("alice", ip(3), T0);
        }
        b.success("alice", ip(3));
        assert!(b.check("alice", ip(9), T0).is_ok());
        b.success("x", ip(1));
        // 8 → 4 failures: under the free five.
        assert!(b.check("y", ip(1), T0).is_ok());
    }

    #[test]
    fn counters_are_forgotten_and_memory_is_bounded() {
        let p = BackoffPolicy {
            max_entries: 100,
            ..BackoffPolicy::default()
        };
        let mut b = Backoff::new(p);
        for i in 0..6 {
            b.failure("alice", ip(1), T0 + i);
        }
        // An hour later the count starts again.
        b.failure("alice", ip(1), T0 + 3600 + 10);
        assert!(b.check("alice", ip(1), T0 + 3600 + 10).is_ok());
        for i in 0..10_000u32 {
            b.failure(
                &format!("spray{i}"),
                IpAddr::from(i.to_be_bytes()),
                T0 + 4000 + i as i64,
            );
        }
        let (a, s) = b.len();
        assert!(a <= 100 && s <= 100, "{a} {s}");
    }
}

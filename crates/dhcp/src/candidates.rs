//! Allocation candidates: the order in which addresses of a pool are tried for one client.
//!
//! Every server computes the same order for the same client (a hash of the network and the
//! MAC, no randomness, no shared state), so two members answering one DISCOVER try the same
//! address first and the database's primary key makes exactly one of them win; the loser
//! re-reads the winner's row and offers the same address. Different clients start at
//! different places, so concurrent allocations rarely touch the same row (no hot row, unlike
//! a "next free address" counter). The probe stride is coprime with the pool size, so the
//! sequence visits every address exactly once before repeating.

use ironfence_core::Mac;
use std::net::Ipv4Addr;

/// FNV-1a 64: stable across Rust releases and machines (std's hasher is not specified to be).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Final avalanche (splitmix64's mixer): FNV's low bits are weak for short inputs.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The candidate addresses of `[first, last]` for one client, in probe order.
#[derive(Debug, Clone)]
pub struct Candidates {
    first: u32,
    size: u64,
    start: u64,
    stride: u64,
    taken: u64,
}

impl Candidates {
    /// Candidates for `mac` on the network named `network` (its address, e.g. `192.168.2.0`,
    /// so that one client gets unrelated sequences on different networks). An empty pool
    /// (`last < first`) yields nothing.
    pub fn new(network: &str, mac: Mac, first: Ipv4Addr, last: Ipv4Addr) -> Candidates {
        let (f, l) = (u32::from(first), u32::from(last));
        let size = if l < f { 0 } else { u64::from(l - f) + 1 };
        let h = fnv1a(&[network.as_bytes(), b"/", &mac.0]);
        let (start, stride) = if size <= 1 {
            (0, 1)
        } else {
            let mut stride = (fnv1a(&[&h.to_be_bytes()]) % (size - 1)) + 1;
            while gcd(stride, size) != 1 {
                stride = stride % (size - 1) + 1;
            }
            (h % size, stride)
        };
        Candidates {
            first: f,
            size,
            start,
            stride,
            taken: 0,
        }
    }

    /// Number of addresses in the pool.
    pub fn pool_size(&self) -> u64 {
        self.size
    }
}

impl Iterator for Candidates {
    type Item = Ipv4Addr;

    fn next(&mut self) -> Option<Ipv4Addr> {
        if self.taken >= self.size {
            return None;
        }
        // (start + k·stride) mod size, computed without overflow (all < 2^33).
        let off = (self.start + (self.taken % self.size) * self.stride % self.size) % self.size;
        self.taken += 1;
        // off < size ≤ 2^32 and first + off ≤ last: no overflow.
        Some(Ipv4Addr::from(self.first + off as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn mac(i: u32) -> Mac {
        let b = i.to_be_bytes();
        Mac([2, 0, b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn same_client_same_order_on_every_server() {
        let a: Vec<_> = Candidates::new(
            "192.168.2.0",
            mac(7),
            "192.168.2.10".parse().unwrap(),
            "192.168.2.250".parse().unwrap(),
        )
        .take(5)
        .collect();
        let b: Vec<_> = Candidates::new(
            "192.168.2.0",
            mac(7),
            "192.168.2.10".parse().unwrap(),
            "192.168.2.250".parse().unwrap(),
        )
        .take(5)
        .collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
    }

    #[test]
    fn starts_spread_over_the_pool() {
        // 1,000 clients over a 2,000-address pool: first choices mostly distinct (a counter
        // would give all the same start; a good hash about 1,000·e^{-1/2} ≈ 790 distinct).
        let first = "10.0.0.0".parse().unwrap();
        let last = "10.0.7.207".parse().unwrap();
        let starts: HashSet<_> = (0..1000)
            .map(|i| {
                Candidates::new("10.0.0.0", mac(i), first, last)
                    .next()
                    .unwrap()
            })
            .collect();
        assert!(
            starts.len() > 700,
            "only {} distinct first choices",
            starts.len()
        );
    }

    #[test]
    fn empty_and_single_pools() {
        let a: Ipv4Addr = "10.0.0.5".parse().unwrap();
        let b: Ipv4Addr = "10.0.0.4".parse().unwrap();
        assert_eq!(Candidates::new("n", mac(1), a, b).count(), 0);
        assert_eq!(
            Candidates::new("n", mac(1), a, a).collect::<Vec<_>>(),
            vec![a]
        );
    }

    proptest! {
        #[test]
        fn visits_every_address_once(first in any::<u32>(), len in 0u32..3000, m in any::<[u8; 6]>()) {
            let last = first.saturating_add(len);
            let c = Candidates::new("net", Mac(m), Ipv4Addr::from(first), Ipv4Addr::from(last));
            let all: Vec<u32> = c.map(u32::from).collect();
            let set: HashSet<u32> = all.iter().copied().collect();
            prop_assert_eq!(all.len() as u64, u64::from(last - first) + 1);
            prop_assert_eq!(set.len(), all.len());
            prop_assert!(all.iter().all(|a| *a >= first && *a <= last));
        }
    }
}

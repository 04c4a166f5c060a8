//! Rendezvous (highest-random-weight) ranking of backends for a conversation key.
//!
//! Every backend gets a score `mix(h(key) ⊕ mix(h(member)))` and the backends are ranked by
//! descending score (ties, which need a 64-bit collision, by name). Removing a backend only
//! moves the keys it ranked first, and those spread over the survivors by their own scores:
//! PacketFence's `hash % N` remaps most keys when N changes and hands all of a dead node's
//! keys to one neighbour.
//!
//! The hash is fixed and written here, not `std`'s `DefaultHasher` (whose algorithm may change
//! between Rust releases): every server of a cluster, whatever its build, must rank the same
//! way or an EAP conversation would bounce between backends. `h` is 64-bit FNV-1a; `mix` is
//! the SplitMix64 / MurmurHash3 `fmix64` finaliser (FNV-1a alone avalanches poorly in its high
//! bits). The golden vectors in the tests catch any change.

use ironfence_core::Mac;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// SplitMix64's finaliser: full avalanche of a 64-bit value.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The conversation key: Calling-Station-Id (its canonical `aa:bb:cc:dd:ee:ff` form when it
/// parses as a MAC, so that switches spelling it differently agree), 0x00, User-Name. Every
/// round of an EAP conversation carries the same two attributes, so it ranks the same.
pub fn key(calling_station_id: Option<&[u8]>, user_name: Option<&[u8]>) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    if let Some(c) = calling_station_id {
        match std::str::from_utf8(c).ok().and_then(|s| Mac::parse(s).ok()) {
            Some(mac) => k.extend_from_slice(mac.to_string().as_bytes()),
            None => k.extend_from_slice(c),
        }
    }
    k.push(0);
    if let Some(u) = user_name {
        k.extend_from_slice(u);
    }
    k
}

/// The score of `member` for a key hashed as `key_hash` (= [`fnv1a`] of [`key`]).
pub fn score(key_hash: u64, member: &str) -> u64 {
    mix(key_hash ^ mix(fnv1a(member.as_bytes())))
}

/// `members` ranked for `key`, best first (indices into `members`).
pub fn rank<S: AsRef<str>>(members: &[S], key: &[u8]) -> Vec<usize> {
    let kh = fnv1a(key);
    let mut scored: Vec<(u64, usize)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (score(kh, m.as_ref()), i))
        .collect();
    scored.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| members[a.1].as_ref().cmp(members[b.1].as_ref()))
    });
    scored.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mac = format!(
                    "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
                    (i >> 24) & 0xff,
                    (i >> 16) & 0xff,
                    (i >> 8) & 0xff,
                    i & 0xff
                );
                key(Some(mac.as_bytes()), Some(mac.replace(':', "").as_bytes()))
            })
            .collect()
    }

    fn first<'a>(members: &[&'a str], k: &[u8]) -> &'a str {
        members[rank(members, k)[0]]
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // http://www.isthe.com/chongo/tech/comp/fnv/ test vectors (FNV-1a 64).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn mac_spellings_give_one_key() {
        let a = key(Some(b"AA-BB-CC-DD-EE-FF"), Some(b"u"));
        let b = key(Some(b"aabb.ccdd.eeff"), Some(b"u"));
        assert_eq!(a, b);
        assert_eq!(a, b"aa:bb:cc:dd:ee:ff\0u".to_vec());
        // Not a MAC: taken as is.
        assert_eq!(key(Some(b"port 7"), None), b"port 7\0".to_vec());
        assert_eq!(key(None, Some(b"bob")), b"\0bob".to_vec());
    }

    #[test]
    fn golden_vector_catches_a_change_of_hash() {
        let members = ["pf1", "pf2", "pf3"];
        let k = key(Some(b"aa:bb:cc:dd:ee:ff"), Some(b"aabbccddeeff"));
        assert_eq!(score(fnv1a(&k), "pf1"), GOLDEN_PF1);
        let order: Vec<&str> = rank(&members, &k).into_iter().map(|i| members[i]).collect();
        assert_eq!(order, GOLDEN_ORDER);
        let k2 = key(Some(b"02:00:00:00:00:01"), Some(b"020000000001"));
        let order: Vec<&str> = rank(&members, &k2)
            .into_iter()
            .map(|i| members[i])
            .collect();
        assert_eq!(order, GOLDEN_ORDER_2);
    }

    // Computed by an independent implementation (Python) of the same definition.
    const GOLDEN_PF1: u64 = 0x1696_d4d6_89fe_61f7;
    const GOLDEN_ORDER: [&str; 3] = ["pf3", "pf2", "pf1"];
    const GOLDEN_ORDER_2: [&str; 3] = ["pf2", "pf1", "pf3"];

    #[test]
    fn removing_a_backend_moves_only_its_keys_and_spreads_them() {
        let all = ["pf1", "pf2", "pf3"];
        let survivors = ["pf1", "pf3"];
        let ks = keys(10_000);
        let before: Vec<&str> = ks.iter().map(|k| first(&all, k)).collect();
        // Fair share of each backend: 1/3 ± 5 %.
        for m in all {
            let n = before.iter().filter(|b| **b == m).count();
            assert!((2_833..=3_833).contains(&n), "{m} ranks first for {n} keys");
        }
        let after: Vec<&str> = ks.iter().map(|k| first(&survivors, k)).collect();
        let mut moved = 0;
        let mut to = std::collections::BTreeMap::new();
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                assert_eq!(*b, "pf2", "a key of a surviving backend moved");
                moved += 1;
                *to.entry(*a).or_insert(0) += 1;
            } else {
                assert_ne!(*b, "pf2");
            }
        }
        assert!(moved <= 10_000 / 3 + 500, "{moved} keys moved");
        // pf2's keys split between both survivors: each takes 50 % ± 10 %.
        for s in survivors {
            let n = to.get(s).copied().unwrap_or(0);
            assert!(
                n * 10 >= moved * 4 && n * 10 <= moved * 6,
                "{s} took {n} of {moved}"
            );
        }
        // Re-adding restores every key's backend.
        let again: Vec<&str> = ks.iter().map(|k| first(&all, k)).collect();
        assert_eq!(again, before);
    }

    #[test]
    fn ranking_does_not_depend_on_member_order() {
        let ks = keys(200);
        let a = ["pf1", "pf2", "pf3"];
        let b = ["pf3", "pf1", "pf2"];
        for k in &ks {
            let ra: Vec<&str> = rank(&a, k).into_iter().map(|i| a[i]).collect();
            let rb: Vec<&str> = rank(&b, k).into_iter().map(|i| b[i]).collect();
            assert_eq!(ra, rb);
        }
    }
}

//! Log-linear latency histogram (HDR-like, no dependencies).
//!
//! Values are recorded in **nanoseconds**. Values below 2^[`SUB_BITS`] ns are exact; above,
//! each power-of-two range is split into 2^[`SUB_BITS`] equal buckets, so a reported value is
//! within 1/2^[`SUB_BITS`] (0.8 %) of the recorded one. Values up to 2^[`MAX_EXP`] ns (~18 min)
//! are kept; larger ones are clamped into the last bucket. Recording is a few integer
//! operations and one increment; the table is ~38 KiB.

/// Sub-bucket resolution: 2^7 = 128 linear buckets per power of two.
pub const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Largest power of two tracked.
pub const MAX_EXP: u32 = 40;
const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) as usize + 1) * SUB as usize;

/// Latency histogram.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index_of(v: u64) -> usize {
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let mantissa = (v >> shift) - SUB; // 0..SUB
    ((shift as u64 + 1) * SUB + mantissa) as usize
}

/// Lowest and highest value (inclusive) that map to bucket `i`.
fn bounds_of(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i);
    }
    let shift = i / SUB - 1;
    let mantissa = i % SUB;
    let lo = (SUB + mantissa) << shift;
    (lo, lo + (1u64 << shift) - 1)
}

impl Histogram {
    /// Empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one value (nanoseconds).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index_of(ns)] += 1;
        self.total += 1;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.sum += u128::from(ns);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded (exact), 0 if empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Smallest value recorded (exact), 0 if empty.
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    /// Mean (exact), 0 if empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Forgets every value (end of warm-up).
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.min = u64::MAX;
        self.max = 0;
        self.sum = 0;
    }

    /// Value at quantile `q` (0.0..=1.0): the smallest recorded value v such that at least
    /// `ceil(q × count)` values are ≤ v, reported as the midpoint of its bucket (exact below
    /// 128 ns) and clamped to the exact min/max; the top rank is the exact max. 0 if empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return self.max;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bounds_of(i);
                return (lo + (hi - lo) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut prev_hi = None;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds_of(i);
            assert!(lo <= hi);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "bucket {i}");
            }
            prev_hi = Some(hi);
            assert_eq!(index_of(lo), i);
            assert_eq!(index_of(hi), i);
        }
        assert_eq!(prev_hi, Some((1u64 << (MAX_EXP + 1)) - 1));
        // Clamped, not out of bounds.
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn relative_error_is_below_one_percent() {
        for v in [
            1u64,
            127,
            128,
            129,
            1000,
            12_345,
            99_999,
            1_000_000,
            987_654_321,
        ] {
            let (lo, hi) = bounds_of(index_of(v));
            let mid = lo + (hi - lo) / 2;
            let err = (mid as f64 - v as f64).abs() / v as f64;
            assert!(err < 0.008, "{v}: {mid} err {err}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        // 1 µs .. 100 ms in 1 µs steps.
        let mut h = Histogram::new();
        for us in 1..=100_000u64 {
            h.record(us * 1000);
        }
        for (q, expect_us) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64 / 1000.0;
            assert!(
                (got - expect_us).abs() / expect_us < 0.008,
                "q={q}: {got} µs, expected {expect_us}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000_000);
    }

    #[test]
    fn tail_is_not_hidden_by_the_bulk() {
        // 998 fast requests, 2 slow ones: p99.9 must land on the slow ones, p99 on the fast.
        let mut h = Histogram::new();
        for _ in 0..998 {
            h.record(100_000); // 0.1 ms
        }
        h.record(20_000_000);
        h.record(20_000_000); // 20 ms
        assert!((h.quantile(0.99) as f64 - 100_000.0).abs() < 1_000.0);
        assert!((h.quantile(0.999) as f64 - 20_000_000.0).abs() < 200_000.0);
        assert_eq!(h.max(), 20_000_000);
    }

    #[test]
    fn merge_and_clear() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..1000 {
            a.record(v * 10);
            b.record(v * 10 + 5);
        }
        a.merge(&b);
        assert_eq!(a.count(), 2000);
        assert_eq!(a.max(), 9995);
        assert_eq!(a.min(), 0);
        a.clear();
        assert_eq!(a.count(), 0);
        assert_eq!(a.quantile(0.5), 0);
        assert_eq!(a.min(), 0);
    }
}

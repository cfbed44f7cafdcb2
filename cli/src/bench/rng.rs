//! A small seeded random source (SplitMix64) and the id layout shared by every scenario.
//!
//! # Ids
//!
//! Lease *index* `i` (from 0) has id `i + 1` and belongs to thread `i % T`. A thread touches
//! only its own leases, in every scenario and on every engine, so the workload is the same for
//! lessor, the reference lessor and the floor (whose maps are one per thread). Fresh ids for
//! grants continue the same numbering past `N`.

/// SplitMix64: one add and three multiply-xorshift steps per word; good enough to pick ids and
/// TTLs, and reproducible from `--seed`.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one stream of one run: the seed mixed with a stream number (the thread).
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    /// The next random word.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0), by Lemire's multiply-shift (no division).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A stateless 64-bit mix of `seed` and `x` (SplitMix64's finaliser): the same lease gets the
/// same TTL and phase on every target.
#[inline]
pub(crate) fn hash64(seed: u64, x: u64) -> u64 {
    let mut z = seed ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many of the indices `lo..hi` belong to thread `t` of `threads`.
pub(crate) fn count_of(t: usize, threads: usize, lo: u64, hi: u64) -> u64 {
    let (t, threads) = (t as u64, threads as u64);
    let first = first_of(t, threads, lo);
    if first >= hi {
        0
    } else {
        (hi - first).div_ceil(threads)
    }
}

/// The `k`-th index at or after `lo` that belongs to thread `t`, as a lease id.
#[inline]
pub(crate) fn id_of(t: usize, threads: usize, lo: u64, k: u64) -> i64 {
    let index = first_of(t as u64, threads as u64, lo) + k * threads as u64;
    i64::try_from(index + 1).expect("lease counts fit in i64")
}

/// The ids of thread `t` among the indices `lo..hi`, in order.
pub(crate) fn ids_of(t: usize, threads: usize, lo: u64, hi: u64) -> Vec<i64> {
    (0..count_of(t, threads, lo, hi))
        .map(|k| id_of(t, threads, lo, k))
        .collect()
}

/// The first index at or after `lo` that is `t` modulo `threads`.
fn first_of(t: u64, threads: u64, lo: u64) -> u64 {
    lo + (t + threads - lo % threads) % threads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_partition_the_indices_exactly() {
        for threads in 1..=5 {
            for (lo, hi) in [(0, 0), (0, 1), (0, 17), (17, 40), (3, 4)] {
                let mut all: Vec<i64> = (0..threads)
                    .flat_map(|t| {
                        let ids = ids_of(t, threads, lo, hi);
                        for id in &ids {
                            assert_eq!((id - 1) as usize % threads, t, "owner of {id}");
                        }
                        ids
                    })
                    .collect();
                all.sort_unstable();
                let want: Vec<i64> = (lo as i64 + 1..=hi as i64).collect();
                assert_eq!(all, want, "threads {threads}, {lo}..{hi}");
            }
        }
    }

    #[test]
    fn below_stays_below_and_seeds_differ() {
        let mut r = Rng::new(7, 0);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_ne!(Rng::new(7, 0).next_u64(), Rng::new(7, 1).next_u64());
        assert_eq!(Rng::new(7, 3).next_u64(), Rng::new(7, 3).next_u64());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        Rng::new(1, 0).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}

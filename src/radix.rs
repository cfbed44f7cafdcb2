//! A stable least-significant-digit radix sort, for the places that sort up to millions of
//! items by an integer key with no lock held: promote's spreading, the expiry worker's
//! bucket-ordered lookups, and compaction's leases in grant order.

/// Sorts `v` stably by `key`, 11 bits a pass, over only the bits the keys use: keys are
/// rebased on the smallest, so a million TTLs within an hour of each other take two passes.
/// `scratch` is working space, reused across calls to spare the allocation.
pub(crate) fn radix_sort_by<T: Copy>(
    v: &mut Vec<T>,
    scratch: &mut Vec<T>,
    key: impl Fn(&T) -> u64,
) {
    const BITS: u32 = 11;
    const MASK: u64 = (1 << BITS) - 1;
    let Some(min) = v.iter().map(&key).min() else {
        return;
    };
    let span = v.iter().map(|e| key(e) - min).max().unwrap_or(0);
    let buf = scratch;
    let mut shift = 0;
    while shift < 64 && (span >> shift) != 0 {
        let digit = |e: &T| (((key(e) - min) >> shift) & MASK) as usize;
        let mut counts = [0usize; 1 << BITS];
        for e in v.iter() {
            counts[digit(e)] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        // Scatter into `buf` in digit order; every slot below `v.len()` is written once. It
        // only needs to be the right length: after the first pass it holds the previous one.
        if buf.len() != v.len() {
            buf.clear();
            buf.extend_from_slice(v);
        }
        for e in v.iter() {
            let d = digit(e);
            buf[counts[d]] = *e;
            counts[d] += 1;
        }
        std::mem::swap(v, buf);
        shift += BITS;
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_std() {
        let mut v: Vec<(u64, u32)> = (0..5000u32)
            .map(|i| {
                let k = (u64::from(i) * 7919) % 1000;
                (if i % 3 == 0 { k + (1 << 40) } else { k }, i)
            })
            .collect();
        let mut expect = v.clone();
        expect.sort_by_key(|e| e.0); // std's stable sort
        radix_sort_by(&mut v, &mut Vec::new(), |e| e.0);
        assert_eq!(v, expect);
    }

    #[test]
    fn edge_cases() {
        let mut empty: Vec<(u64, u32)> = Vec::new();
        radix_sort_by(&mut empty, &mut Vec::new(), |e| e.0);
        assert!(empty.is_empty());
        let mut same = vec![(7, 2), (7, 1), (7, 0)];
        radix_sort_by(&mut same, &mut Vec::new(), |e| e.0);
        assert_eq!(same, [(7, 2), (7, 1), (7, 0)]);
        let mut extremes = vec![(u64::MAX, 0), (0, 1), (u64::MAX - 1, 2), (1, 3)];
        radix_sort_by(&mut extremes, &mut Vec::new(), |e| e.0);
        assert_eq!(extremes, [(0, 1), (1, 3), (u64::MAX - 1, 2), (u64::MAX, 0)]);
    }
}

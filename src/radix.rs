//! Radix sorts for the places that sort up to millions of items by an integer key with no lock
//! held: a stable least-significant-digit sort for promote's spreading and compaction's leases
//! in grant order, and an in-place one-pass sort on a small key for the expiry worker's
//! table-ordered lookups, where stability does not matter and fresh memory would cost more
//! than the sort.

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

/// The most bits [`flag_sort_by`] sorts on.
pub(crate) const FLAG_BITS_MAX: u32 = 12;

/// Sorts `v` in place, not stably, by a key below `2^bits` (`bits <= FLAG_BITS_MAX`), in one
/// counting pass and one permuting pass (an American flag sort): no memory beyond two counts
/// per key value (on the heap: the expiry worker also runs on small-stacked threads, loom's
/// among them). `key` is called about twice per item.
///
/// # Panics
///
/// If `bits > FLAG_BITS_MAX`, or (in debug builds) if a key is not below `2^bits`.
pub(crate) fn flag_sort_by<T>(v: &mut [T], bits: u32, key: impl Fn(&T) -> usize) {
    assert!(
        bits <= FLAG_BITS_MAX,
        "flag_sort_by sorts on at most {FLAG_BITS_MAX} bits"
    );
    let buckets = 1usize << bits;
    let mut next = vec![0usize; buckets];
    let mut end = vec![0usize; buckets];
    for e in v.iter() {
        let k = key(e);
        debug_assert!(k < buckets, "key {k} not below 2^{bits}");
        end[k] += 1;
    }
    let mut sum = 0;
    for b in 0..buckets {
        next[b] = sum;
        sum += end[b];
        end[b] = sum;
    }
    for b in 0..buckets {
        // Every item before next[b] in bucket b's range belongs there; place the rest.
        while next[b] < end[b] {
            let k = key(&v[next[b]]);
            if k == b {
                next[b] += 1;
            } else {
                // Swap the item into its own bucket's next free place; what comes back is
                // examined in the next round.
                v.swap(next[b], next[k]);
                next[k] += 1;
            }
        }
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn flag_sort_orders_by_key_and_keeps_every_item() {
        for (n, bits) in [(0, 0), (1, 0), (7, 1), (5000, 4), (5000, 11), (20_000, 12)] {
            let mut v: Vec<(usize, usize)> = (0..n)
                .map(|i| ((i * 7919 + i / 3) % (1 << bits), i))
                .collect();
            let mut expect = v.clone();
            flag_sort_by(&mut v, bits, |e| e.0);
            assert!(
                v.windows(2).all(|w| w[0].0 <= w[1].0),
                "{n} items, {bits} bits"
            );
            v.sort_unstable();
            expect.sort_unstable();
            assert_eq!(v, expect, "the same items come out");
        }
    }

    #[test]
    #[should_panic(expected = "at most 12 bits")]
    fn flag_sort_refuses_wide_keys() {
        flag_sort_by(&mut [1u8], 13, |&e| usize::from(e));
    }

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

//! One level of the timing wheel: 64 slots and a bitmap of the occupied ones.
//!
//! The level arithmetic lives in pure free functions ([`level_for`], [`slot_for`],
//! [`slot_range`], [`level_range`], [`next_occupied_slot`]) so that it can be tested
//! exhaustively on its own. A [`Level`] only stores items; it never learns their deadlines.

use std::fmt;
use std::mem;

use super::{LEVEL_BITS, NUM_LEVELS, SLOTS};

/// Mask of the bits that select a slot within one level (`SLOTS - 1`).
const SLOT_MASK: u64 = (1 << LEVEL_BITS) - 1;

/// The bit shift that turns a tick into a slot count at `level` (`level * LEVEL_BITS`).
fn shift(level: usize) -> u32 {
    debug_assert!(level < NUM_LEVELS, "level {level} out of range");
    let level = u32::try_from(level).expect("a wheel level fits in u32");
    level * LEVEL_BITS
}

/// The level an item due at `when` is filed in while the wheel stands at `elapsed`.
///
/// This is the level of the most significant bit in which `elapsed` and `when` differ, counted
/// in groups of [`LEVEL_BITS`] bits; `when == elapsed` gives level 0. A difference above the top
/// level's bits (the two ticks lie in different top-level windows) gives the top level.
pub(crate) fn level_for(elapsed: u64, when: u64) -> usize {
    // Or-ing in the slot mask makes ticks that agree above the lowest group land on level 0.
    let masked = (elapsed ^ when) | SLOT_MASK;
    let significant = u64::BITS - 1 - masked.leading_zeros();
    let level = usize::try_from(significant / LEVEL_BITS).unwrap_or(NUM_LEVELS - 1);
    level.min(NUM_LEVELS - 1)
}

/// The slot of `level` that holds the ticks around `when`: `(when >> (level * 6)) & 63`.
pub(crate) fn slot_for(when: u64, level: usize) -> usize {
    let slot = (when >> shift(level)) & SLOT_MASK;
    usize::try_from(slot).expect("a 6-bit slot index fits in usize")
}

/// How many ticks one slot of `level` spans: `64^level`.
pub(crate) fn slot_range(level: usize) -> u64 {
    1 << shift(level)
}

/// How many ticks the 64 slots of `level` span together: `64^(level + 1)`.
///
/// The top level spans `2^48` ticks, so this never overflows a `u64`.
pub(crate) fn level_range(level: usize) -> u64 {
    slot_range(level) << LEVEL_BITS
}

/// The first occupied slot at or after `now_slot`, wrapping past slot 63 to slot 0.
///
/// `occupied` has bit `i` set when slot `i` holds items. Returns `None` when no slot does.
pub(crate) fn next_occupied_slot(occupied: u64, now_slot: usize) -> Option<usize> {
    if occupied == 0 {
        return None;
    }
    let now_slot = now_slot % SLOTS;
    let rotation = u32::try_from(now_slot).expect("a slot index fits in u32");
    // After rotating, bit 0 is `now_slot`; the trailing zeros count the empty slots after it.
    let zeros = occupied.rotate_right(rotation).trailing_zeros();
    let zeros = usize::try_from(zeros).expect("a bit count fits in usize");
    Some((now_slot + zeros) % SLOTS)
}

// ===== impl Level =====

/// One level of the wheel: [`SLOTS`] slots of items plus a bitmap of the non-empty ones.
pub(crate) struct Level<T> {
    /// The items filed in each slot, in insertion order.
    slots: [Vec<T>; SLOTS],
    /// Bit `i` is set exactly when `slots[i]` is non-empty.
    occupied: u64,
}

impl<T> Level<T> {
    /// An empty level.
    pub(crate) fn new() -> Self {
        Level {
            slots: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
        }
    }

    /// Files `item` in `slot` and marks the slot occupied.
    pub(crate) fn push(&mut self, slot: usize, item: T) {
        self.slots[slot].push(item);
        self.occupied |= 1 << slot;
    }

    /// Moves every item of `slot` out (the slot's `Vec` itself) and marks the slot empty.
    pub(crate) fn take_slot(&mut self, slot: usize) -> Vec<T> {
        self.occupied &= !(1 << slot);
        mem::take(&mut self.slots[slot])
    }

    /// The earliest occupied slot as seen from `elapsed`, with the tick at which it starts.
    ///
    /// `level` is this level's index in the wheel. A slot whose index is below the slot of
    /// `elapsed` belongs to the next window of this level, one [`level_range`] later. The start
    /// saturates at `u64::MAX` rather than overflow (it cannot, while ticks stay below `2^62`).
    pub(crate) fn next_occupied(&self, level: usize, elapsed: u64) -> Option<(usize, u64)> {
        let now_slot = slot_for(elapsed, level);
        let slot = next_occupied_slot(self.occupied, now_slot)?;
        let window_start = elapsed & !(level_range(level) - 1);
        let offset = slot_range(level) * u64::try_from(slot).expect("a slot index fits in u64");
        // Cannot overflow: the window is aligned, so its last tick is at most `u64::MAX`.
        let mut start = window_start + offset;
        if slot < now_slot {
            start = start.saturating_add(level_range(level));
        }
        Some((slot, start))
    }

    /// Drops every item of this level.
    pub(crate) fn clear(&mut self) {
        while let Some(slot) = next_occupied_slot(self.occupied, 0) {
            drop(self.take_slot(slot));
        }
    }
}

impl<T> fmt::Debug for Level<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Level")
            .field("occupied", &format_args!("{:#066b}", self.occupied))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    /// `level_for` by its definition: the lowest level above which both ticks agree.
    fn naive_level_for(elapsed: u64, when: u64) -> usize {
        (0..NUM_LEVELS)
            .find(|&l| {
                let bits = 6 * (u32::try_from(l).unwrap() + 1);
                elapsed.checked_shr(bits).unwrap_or(0) == when.checked_shr(bits).unwrap_or(0)
            })
            .unwrap_or(NUM_LEVELS - 1)
    }

    /// `next_occupied_slot` by scanning the slots one by one.
    fn naive_next_occupied(occupied: u64, now_slot: usize) -> Option<usize> {
        (0..SLOTS)
            .map(|i| (now_slot + i) % SLOTS)
            .find(|&s| occupied & (1 << s) != 0)
    }

    /// The smallest multiple of `step` that is `>= x` (saturating).
    fn align_up(x: u64, step: u64) -> u64 {
        x.div_ceil(step).saturating_mul(step)
    }

    #[test]
    fn ranges_are_powers_of_64() {
        let mut expected = 1u64;
        for level in 0..NUM_LEVELS {
            assert_eq!(slot_range(level), expected, "slot_range({level})");
            assert_eq!(level_range(level), expected * 64, "level_range({level})");
            expected *= 64;
        }
        assert_eq!(slot_range(NUM_LEVELS - 1), 1 << 42);
        assert_eq!(level_range(NUM_LEVELS - 1), 1 << 48);
        assert_eq!(level_range(NUM_LEVELS - 1) - 1, super::super::MAX_TICKS);
    }

    #[test]
    fn level_for_at_every_power_of_64_from_zero() {
        assert_eq!(level_for(0, 0), 0);
        for k in 1..=9u32 {
            let boundary = 64u64.pow(k);
            let below = usize::try_from(k - 1).unwrap().min(NUM_LEVELS - 1);
            let at = usize::try_from(k).unwrap().min(NUM_LEVELS - 1);
            assert_eq!(level_for(0, boundary - 1), below, "when = 64^{k} - 1");
            assert_eq!(level_for(0, boundary), at, "when = 64^{k}");
            assert_eq!(level_for(0, boundary + 1), at, "when = 64^{k} + 1");
        }
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, 262_143), 2);
        assert_eq!(level_for(0, 262_144), 3);
        assert_eq!(level_for(0, (1 << 48) - 1), 7);
        assert_eq!(
            level_for(0, 1 << 48),
            7,
            "beyond the top level clamps to it"
        );
        assert_eq!(level_for(0, u64::MAX), 7);
    }

    #[test]
    fn level_for_at_boundaries_from_unaligned_elapsed() {
        let elapsed_values = [
            1,
            5,
            63,
            64,
            65,
            4_095,
            12_345,
            262_143,
            (1 << 30) + 777,
            (1 << 42) - 1,
            (1 << 47) + 3,
            (1 << 48) - 1,
            (1 << 48) + 12_345,
            (1 << 61) + 99,
        ];
        for &elapsed in &elapsed_values {
            assert_eq!(level_for(elapsed, elapsed), 0);
            for k in 1..=9u32 {
                let step = 64u64.pow(k);
                let edge = align_up(elapsed + 1, step);
                for when in [edge - 1, edge, edge + 1, elapsed + step - 1, elapsed + step] {
                    assert_eq!(
                        level_for(elapsed, when),
                        naive_level_for(elapsed, when),
                        "elapsed = {elapsed}, when = {when}"
                    );
                }
            }
            // Crossing the next slot boundary of level 0 always needs level >= 1.
            let next_block = align_up(elapsed + 1, 64);
            assert!(level_for(elapsed, next_block) >= 1);
            assert_eq!(level_for(elapsed, next_block - 1), 0);
        }
        // Concrete unaligned cases: the rule looks at bits, not at the distance.
        assert_eq!(level_for(5, 5 + 63), 1);
        assert_eq!(level_for(64, 64 + 63), 0);
        assert_eq!(level_for(4_095, 4_096), 2);
        assert_eq!(level_for(4_096, 4_096 + 4_095), 1);
    }

    #[test]
    fn level_for_matches_definition_on_a_grid() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            // xorshift64: deterministic spread over all bit widths.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let elapsed = x >> (x % 64);
            let when = elapsed.wrapping_add(x.rotate_left(17) >> (x % 61));
            assert_eq!(level_for(elapsed, when), naive_level_for(elapsed, when));
        }
    }

    #[test]
    fn slot_for_each_level() {
        for level in 0..NUM_LEVELS {
            let range = slot_range(level);
            for slot in 0..SLOTS {
                let start = range * u64::try_from(slot).unwrap();
                assert_eq!(slot_for(start, level), slot, "level {level} slot start");
                assert_eq!(
                    slot_for(start + range - 1, level),
                    slot,
                    "level {level} slot end"
                );
                // The next window of the level wraps to the same slot.
                assert_eq!(slot_for(start + level_range(level), level), slot);
            }
        }
        assert_eq!(slot_for(63, 0), 63);
        assert_eq!(slot_for(64, 0), 0);
        assert_eq!(slot_for(64, 1), 1);
        assert_eq!(slot_for(4_095, 1), 63);
        assert_eq!(slot_for(4_096, 1), 0);
        assert_eq!(slot_for(4_096, 2), 1);
        assert_eq!(slot_for((1 << 48) - 1, 7), 63);
        assert_eq!(slot_for(1 << 48, 7), 0);
        assert_eq!(slot_for(u64::MAX, 7), 63);
    }

    #[test]
    fn next_occupied_slot_all_rotations() {
        let patterns = [
            0u64,
            1,
            1 << 63,
            0b1010_0110,
            0x8000_0000_0000_0001,
            0x0000_0001_0000_0000,
            0xf0f0_f0f0_f0f0_f0f0,
            0x1248_1248_1248_1248,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ];
        for &occupied in &patterns {
            for now_slot in 0..SLOTS {
                assert_eq!(
                    next_occupied_slot(occupied, now_slot),
                    naive_next_occupied(occupied, now_slot),
                    "occupied = {occupied:#x}, now_slot = {now_slot}"
                );
            }
        }
        for bit in 0..SLOTS {
            for now_slot in 0..SLOTS {
                assert_eq!(next_occupied_slot(1 << bit, now_slot), Some(bit));
            }
        }
    }

    #[test]
    fn level_push_take_and_bitmap() {
        let mut level = Level::new();
        assert_eq!(level.occupied, 0);
        assert_eq!(level.next_occupied(0, 0), None);
        level.push(5, 'a');
        level.push(5, 'b');
        level.push(63, 'c');
        assert_eq!(level.occupied, (1 << 5) | (1 << 63));
        assert_eq!(level.next_occupied(0, 0), Some((5, 5)));
        assert_eq!(level.take_slot(5), vec!['a', 'b']);
        assert_eq!(level.occupied, 1 << 63);
        assert!(level.take_slot(5).is_empty());
        level.clear();
        assert_eq!(level.occupied, 0);
        assert!(format!("{level:?}").contains("occupied"));
    }

    #[test]
    fn next_occupied_start_wraps_to_next_window() {
        let mut level = Level::<()>::new();
        level.push(3, ());
        // From slot 10 of level 1, slot 3 is in the next window.
        let elapsed = 10 * 64 + 7;
        assert_eq!(level.next_occupied(1, elapsed), Some((3, 4_096 + 3 * 64)));
        // From slot 2 it is in the current one.
        assert_eq!(level.next_occupied(1, 2 * 64), Some((3, 3 * 64)));
    }

    #[test]
    fn top_level_arithmetic_does_not_overflow() {
        let top = NUM_LEVELS - 1;
        let mut level = Level::<()>::new();
        level.push(0, ());
        let elapsed = 63 << 42;
        assert_eq!(level.next_occupied(top, elapsed), Some((0, 1 << 48)));
        // At the very end of the tick space the wrapped start saturates instead of panicking.
        assert_eq!(level.next_occupied(top, u64::MAX), Some((0, u64::MAX)));
        level.push(63, ());
        let last = level.next_occupied(top, u64::MAX);
        assert_eq!(last, Some((63, u64::MAX - ((1 << 42) - 1))));
        assert_eq!(level_for(u64::MAX - 1, u64::MAX), 0);
        assert_eq!(level_for(0, u64::MAX), top);
    }
}

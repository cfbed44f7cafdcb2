//! A hierarchical timing wheel over `u64` ticks: the expiry thread's index of deadlines.
//!
//! # Ground rules
//!
//! - **Owner.** The wheel is owned by the expiry thread alone; no other thread holds a
//!   reference to it. Every method that changes it takes `&mut self`: there is no lock, no
//!   atomic and no interior mutability inside, and none is needed.
//! - **A pure data structure.** Time is a `u64` tick count that the caller passes in. The wheel
//!   holds no clock, thread, lock or channel and never reads the time itself.
//! - **Ticks stay below `2^62`.** The arithmetic saturates instead of panicking near
//!   `u64::MAX`, but deadlines that close to the end of the tick space are not meaningful.
//! - **The lazy contract: registered vs true deadline.** The wheel does not store an item's
//!   deadline (that would cost 8 bytes per item); the caller owns the true deadline (for a
//!   lease, its atomic). [`Wheel::insert`] files an item under the tick `when` it is given, and
//!   [`Wheel::advance`] yields every item whose *slot* has started:
//!   - An item filed in level 0 is yielded exactly when due: its `when <= now`.
//!   - An item filed in a higher level is a **candidate**: its slot's range of ticks has
//!     started, so its `when` lies in `[slot start, slot end)` and may still be later than
//!     `now`. The caller re-checks each candidate's true deadline and re-inserts the ones not
//!     yet due. This is how items cascade down the levels: each re-insert files the item in a
//!     strictly lower level, so an item is re-filed at most `NUM_LEVELS - 1` times (plus once
//!     per top-level turn if it was parked past the horizon, see below).
//!   - The caller may also re-insert with a *later* deadline than before (a renewed lease):
//!     the wheel never needs to be told about a renewal until the old slot fires.
//!
//!   Guarantee: an item inserted with `when` is yielded by the first `advance(now)` with
//!   `now >= when`, unless it was yielded earlier as a candidate; a caller that then re-inserts
//!   it with the same `when` gets it back no later than that. A level-0 item is never yielded
//!   before its `when`, and a higher-level item never before its slot starts.
//! - **Due list.** An item inserted with `when <= elapsed()` goes to a due list that the next
//!   `advance` yields first, whatever its `now`.
//! - **Horizon.** The top level spans [`MAX_TICKS`]` + 1` ticks, starting at the top-level slot
//!   that holds `elapsed`. An item due past the end of that window (at least
//!   `MAX_TICKS - (2^42 - 1)` and at most `MAX_TICKS` ticks after `elapsed`) is parked in the
//!   window's last top-level slot, which starts before its deadline: it comes out as a
//!   candidate and the caller re-files it, like any other candidate. (Clamping to
//!   `elapsed + MAX_TICKS` instead would, for an unaligned `elapsed`, wrap the item into the
//!   *current* top-level slot and make it fire at once, on every advance.)
//!
//! Layout: [`NUM_LEVELS`] levels of [`SLOTS`] slots; a slot of level `l` spans `64^l` ticks.
//! Each slot is a plain `Vec<T>` taken whole when it fires, and each level keeps a `u64`
//! bitmap of its occupied slots, so finding the next deadline is a few `rotate_right` and
//! `trailing_zeros` per level, and [`Wheel::advance`] jumps any distance in time proportional
//! to the number of occupied slots it fires, never to the number of ticks it crosses.

use std::fmt;
use std::mem;

mod level;

use self::level::{level_for, level_range, slot_for, slot_range, Level};

/// Bits of a tick consumed by each level: each level has `2^LEVEL_BITS` slots.
pub(crate) const LEVEL_BITS: u32 = 6;

/// Slots per level (`2^LEVEL_BITS`).
pub(crate) const SLOTS: usize = 1 << LEVEL_BITS;

/// Levels in the wheel; together they span `2^(LEVEL_BITS * NUM_LEVELS) = 2^48` ticks.
pub(crate) const NUM_LEVELS: usize = 8;

/// The farthest offset from [`Wheel::elapsed`] at which an item is filed; an item due later is
/// parked at the wheel's horizon (at most this far, see the module docs) and re-filed by the
/// caller when it comes out as a candidate.
#[cfg_attr(not(test), allow(dead_code))] // the tests and the wheel bench use it
pub(crate) const MAX_TICKS: u64 = (1 << 48) - 1;

// ===== impl Wheel =====

/// A hierarchical timing wheel of items of type `T`, keyed by `u64` ticks.
///
/// See the module docs for the lazy contract: items from levels above 0 are candidates whose
/// true deadline the caller re-checks.
pub(crate) struct Wheel<T> {
    /// The levels, finest first: a slot of level `l` spans `64^l` ticks.
    levels: Box<[Level<T>; NUM_LEVELS]>,
    /// Items inserted with `when <= elapsed`, yielded first by the next `advance`.
    due: Vec<T>,
    /// The tick the wheel stands at: every slot starting at or before it has fired.
    elapsed: u64,
    /// Items filed, the due list included.
    len: usize,
}

impl<T> Wheel<T> {
    /// An empty wheel standing at tick 0.
    pub(crate) fn new() -> Self {
        Wheel {
            levels: Box::new(std::array::from_fn(|_| Level::new())),
            due: Vec::new(),
            elapsed: 0,
            len: 0,
        }
    }

    /// The tick the wheel stands at: the largest `now` passed to [`Wheel::advance`] so far (or
    /// the tick given to [`Wheel::set_elapsed`]).
    #[cfg_attr(not(test), allow(dead_code))] // the tests and the wheel bench use it
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// How many items are filed, including those in the due list.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no item is filed.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Files `item` to be yielded at tick `when`.
    ///
    /// If `when <= elapsed()` the item goes to the due list and the next [`Wheel::advance`]
    /// yields it. If `when` is past the wheel's horizon (about [`MAX_TICKS`] ahead) the item is
    /// parked at the horizon and comes out early, as a candidate for the caller to re-file.
    pub(crate) fn insert(&mut self, when: u64, item: T) {
        self.len += 1;
        if when <= self.elapsed {
            self.due.push(item);
            return;
        }
        let when = when.min(self.horizon());
        let level = level_for(self.elapsed, when);
        self.levels[level].push(slot_for(when, level), item);
    }

    /// The earliest tick at which [`Wheel::advance`] would yield something: `elapsed()` if the
    /// due list is non-empty, else the start of the earliest occupied slot; `None` when empty.
    ///
    /// This is exact for the wheel's content, but for an item in a level above 0 it is the
    /// start of its slot, which may come before the item's own deadline.
    #[cfg_attr(not(test), allow(dead_code))] // the tests and the wheel bench use it
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if !self.due.is_empty() {
            return Some(self.elapsed);
        }
        self.next_slot().map(|(_, _, start)| start)
    }

    /// Moves time forward to `now`, appending to `out` every item of the due list and of every
    /// slot that starts at or before `now`; then `elapsed()` becomes `max(elapsed(), now)`.
    ///
    /// Items from level 0 are due (`when <= now`); items from higher levels are candidates
    /// whose `when` may still be later than `now`: the caller must check each one's true
    /// deadline and [`Wheel::insert`] again those not yet due. Items come out slot by slot in
    /// order of slot start, each slot in insertion order. The work done is proportional to the
    /// number of slots fired, whatever the distance from `elapsed()` to `now`.
    pub(crate) fn advance(&mut self, now: u64, out: &mut Vec<T>) {
        let due = mem::take(&mut self.due);
        self.yield_items(due, out);
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            let items = self.levels[level].take_slot(slot);
            self.yield_items(items, out);
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// Drops every filed item, the due list included; `elapsed()` is unchanged.
    pub(crate) fn clear(&mut self) {
        for level in self.levels.iter_mut() {
            level.clear();
        }
        self.due = Vec::new();
        self.len = 0;
    }

    /// Moves an empty wheel to tick `now`, forwards or backwards (used after [`Wheel::clear`]).
    ///
    /// # Panics
    ///
    /// In debug builds, if the wheel is not empty. Moving a non-empty wheel is a logic error:
    /// its items would fire at the wrong ticks.
    pub(crate) fn set_elapsed(&mut self, now: u64) {
        debug_assert!(
            self.is_empty(),
            "set_elapsed on a wheel holding {} items",
            self.len
        );
        self.elapsed = now;
    }

    /// The last tick the wheel can file an item at: the end of the top level's window, which
    /// starts at the top-level slot holding `elapsed`. At most `elapsed + MAX_TICKS`.
    fn horizon(&self) -> u64 {
        let top = NUM_LEVELS - 1;
        let slot_start = self.elapsed & !(slot_range(top) - 1);
        slot_start.saturating_add(level_range(top) - 1)
    }

    /// The earliest occupied slot as `(level, slot, start tick)`.
    ///
    /// Every occupied slot of a level starts after every occupied slot of the levels below it
    /// (an item of level `l` sits in a later slot of `l` than `elapsed` does, so past the end
    /// of `elapsed`'s window of level `l - 1`), so the first non-empty level holds it.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        self.levels.iter().enumerate().find_map(|(index, level)| {
            let (slot, start) = level.next_occupied(index, self.elapsed)?;
            Some((index, slot, start))
        })
    }

    /// Moves `items` to the end of `out`, reusing the `Vec` itself when `out` is empty.
    fn yield_items(&mut self, mut items: Vec<T>, out: &mut Vec<T>) {
        self.len -= items.len();
        if out.is_empty() && out.capacity() <= items.capacity() {
            *out = items;
        } else {
            out.append(&mut items);
        }
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Wheel::new()
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len)
            .field("due", &self.due.len())
            .field("levels", &self.levels)
            .finish()
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests;

//! [`TableAlloc`]: the allocator of the shards' hash tables, which backs large tables with
//! transparent huge pages on Linux.
//!
//! # Ground rules
//!
//! - **Why.** At a million leases the lease tables span about 70 MiB. With 4 KiB pages nearly
//!   every renew, grant and expiry lookup misses the TLB, twice (hashbrown keeps a bucket's
//!   control bytes and its entry in different pages), and on a virtual machine each miss is a
//!   nested page walk. A 2 MiB page covers 512 times as much: the `map/renew` and `map/grant`
//!   benches measure the difference (see the commit that brought this in).
//! - **Who uses it.** Only the shards' `HashTable`s, through hashbrown's allocator parameter.
//!   An allocation under [`HUGE`] goes to the global allocator unchanged; so does everything
//!   under loom and off Linux.
//! - **What it does.** A table of [`HUGE`] or more is allocated from the global allocator
//!   aligned to [`HUGE`], so whole huge pages can back it, and advised with
//!   `madvise(MADV_HUGEPAGE)`. The advice is a hint: if the kernel declines (huge pages off,
//!   or none free), the table works the same on ordinary pages.
//! - **Unsafe.** The [`Allocator`] impl is this module's only unsafe code: it forwards to the
//!   global allocator with a layout that [`stored_layout`] derives the same way for
//!   `allocate` and `deallocate`.

#![allow(unsafe_code)] // the Allocator impl below; see the module docs

use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};

/// The size of a transparent huge page on x86-64 and aarch64 Linux: tables at least this
/// large are aligned to it and advised to use huge pages.
pub(crate) const HUGE: usize = 2 << 20;

/// The shards' table allocator: the global allocator, with huge pages for large tables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TableAlloc;

/// The layout actually asked of the global allocator for `layout`: aligned to [`HUGE`] when
/// it is at least that large (and huge pages are in use), else `layout` itself.
fn stored_layout(layout: Layout) -> Layout {
    if !USE_HUGE || layout.size() < HUGE || layout.align() >= HUGE {
        return layout;
    }
    Layout::from_size_align(layout.size(), HUGE).unwrap_or(layout)
}

/// Whether large tables get huge pages: on Linux, outside loom models.
const USE_HUGE: bool = cfg!(all(target_os = "linux", not(lessor_loom)));

// SAFETY: every block handed out comes from `Global` and goes back to `Global` with the
// layout it was allocated with: `deallocate` recomputes it with `stored_layout`, a pure
// function of the caller's layout, which the `Allocator` contract requires to be the one
// given to `allocate`. `madvise` only changes how the kernel backs the pages, never their
// contents or validity. The value is a zero-sized `Copy` handle, so clones are equivalent.
unsafe impl Allocator for TableAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let stored = stored_layout(layout);
        let block = Global.allocate(stored)?;
        if stored.align() >= HUGE && stored != layout {
            advise_huge(block.cast::<u8>(), stored.size());
        }
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `allocate` with this `layout` (the caller's contract), which
        // took it from `Global` with `stored_layout(layout)`.
        unsafe { Global.deallocate(ptr, stored_layout(layout)) }
    }
}

/// Asks the kernel to back `len` bytes at `ptr` (aligned to [`HUGE`]) with huge pages.
#[cfg(all(target_os = "linux", not(lessor_loom)))]
fn advise_huge(ptr: NonNull<u8>, len: usize) {
    // Only whole huge pages: the tail of the block shares its last page with nothing else
    // we know of, so it is left alone.
    let whole = len - len % HUGE;
    // SAFETY: `ptr..ptr + whole` lies inside the block just allocated for us; MADV_HUGEPAGE
    // changes no byte of it and fails harmlessly (ignored: the advice is a hint).
    let _ = unsafe {
        rustix::mm::madvise(
            ptr.as_ptr().cast(),
            whole,
            rustix::mm::Advice::LinuxHugepage,
        )
    };
}

#[cfg(not(all(target_os = "linux", not(lessor_loom))))]
fn advise_huge(_ptr: NonNull<u8>, _len: usize) {}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;
    use hashbrown::HashTable;

    #[test]
    fn small_layouts_pass_through_and_large_ones_are_aligned() {
        let small = Layout::from_size_align(HUGE - 1, 16).unwrap();
        assert_eq!(stored_layout(small), small);
        let large = Layout::from_size_align(3 * HUGE + 5, 16).unwrap();
        let stored = stored_layout(large);
        assert_eq!(stored.size(), large.size());
        assert_eq!(stored.align(), if USE_HUGE { HUGE } else { 16 });
    }

    #[test]
    fn large_blocks_come_aligned_and_go_back() {
        for size in [HUGE - 1, HUGE, 5 * HUGE + 3] {
            let layout = Layout::from_size_align(size, 16).unwrap();
            let block = TableAlloc.allocate(layout).unwrap();
            assert_eq!(block.len(), size);
            let ptr = block.cast::<u8>();
            if USE_HUGE && size >= HUGE {
                assert_eq!(ptr.as_ptr() as usize % HUGE, 0, "{size} bytes");
            }
            // The whole block is ours to write.
            // SAFETY: `ptr` points to `size` bytes just allocated.
            unsafe { ptr.as_ptr().write_bytes(0xA5, size) };
            // SAFETY: allocated above by `TableAlloc` with this layout, not freed before.
            unsafe { TableAlloc.deallocate(ptr, layout) };
        }
    }

    #[test]
    fn a_large_table_works() {
        let mut t: HashTable<(u64, u64), TableAlloc> = HashTable::new_in(TableAlloc);
        for i in 0..200_000u64 {
            t.insert_unique(i, (i, i * 2), |e| e.0);
        }
        // 200k entries of 16 bytes need a table well over 2 MiB.
        assert!(t.allocation_size() >= HUGE);
        for i in (0..200_000u64).step_by(997) {
            assert_eq!(t.find(i, |e| e.0 == i), Some(&(i, i * 2)));
        }
        t.clear();
        t.shrink_to_fit(|e| e.0);
        assert_eq!(t.len(), 0);
    }
}

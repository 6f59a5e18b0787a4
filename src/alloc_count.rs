//! A counting allocator for the unit tests. The counts are per thread (memory freed on
//! another thread than the one that allocated it skews both), so a test on a current-thread
//! runtime can show that repeating some work does not grow memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static ALLOCATED: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(bytes)));
    if bytes > 0 {
        let _ = ALLOCATED.try_with(|total| total.set(total.get().wrapping_add(bytes)));
    }
}

fn size(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Bytes allocated minus bytes freed by this thread so far.
pub fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

/// Bytes allocated by this thread so far (growth by `realloc` included).
pub fn allocated_bytes() -> i64 {
    ALLOCATED.with(Cell::get)
}

// SAFETY: every call is passed to `System` unchanged; the counting touches no memory the
// allocator hands out, and it neither allocates nor panics (const thread-locals without
// destructors, wrapping arithmetic).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(size(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(size(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-size(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(size(new_size) - size(layout.size()));
        }
        p
    }
}

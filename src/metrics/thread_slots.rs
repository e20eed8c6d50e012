//! Optimisation: per-thread counter slots with a single writer each, so that counting is a
//! plain load and store instead of a locked read-modify-write; measured in
//! docs/performance.md, "What changed, and what it bought" (item 7) and "Round six".
//!
//! The plain version gives every executor one slot that all threads bump with `fetch_add`.
//! Here the first [`OWNED_SLOTS`] threads alive at once each lease a slot number of their
//! own (the same number in every executor's counters); a thread without one counts in the
//! shared slot, with `fetch_add`, as the plain version does.

use std::cell::Cell;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

/// How many slots have a single writer: the first this many threads alive at once each own
/// one (see [`Lease`]).
pub(super) const OWNED_SLOTS: usize = 16;

/// Slots per executor: the owned ones and the shared one.
pub(super) const SLOTS: usize = OWNED_SLOTS + 1;

/// The slot that threads without one of their own share (with atomic read-modify-writes).
pub(super) const SHARED_SLOT: usize = OWNED_SLOTS;

/// This thread's claim on one of the [`OWNED_SLOTS`] slot numbers, given back when the
/// thread ends (its thread-local is destroyed), so that a later thread can own it.
///
/// A slot number names the same slot in every executor's [`Counters`]; while a thread
/// holds the lease, no other thread writes to that slot anywhere. That is what lets
/// [`Counters::bump`] count with a plain load and store instead of a locked
/// read-modify-write: an uncontended `lock add` is still the costliest instruction on the
/// spawn path, and a task pays three of them (spawned, polled, ended).
///
/// The lease keeps its own copy of the number (also in `SLOT`, for the fast read): the
/// order in which a thread's thread-locals are destroyed is unspecified, and the number
/// must be given back even if `SLOT` is gone first.
struct Lease(Cell<usize>);

/// A lease not taken yet.
const UNSET: usize = usize::MAX;

/// Slot numbers free for a new lease.
static FREE_SLOTS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
/// Slot numbers never leased yet: `0..NEVER_LEASED` have been handed out.
static NEVER_LEASED: StdAtomicUsize = StdAtomicUsize::new(0);

impl Lease {
    /// Leases a slot number for this thread.
    fn take(&self) -> usize {
        let reused = FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let slot = reused.unwrap_or_else(|| {
            let next = NEVER_LEASED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            next.min(SHARED_SLOT)
        });
        self.0.set(slot);
        slot
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let slot = self.0.get();
        // From now on this thread counts in the shared slot.
        let _ = SLOT.try_with(|s| s.set(SHARED_SLOT));
        if slot < SHARED_SLOT {
            // The thread is ending and counts nothing more through this lease: a counter
            // bumped later, from another thread-local's destructor, finds `LEASE` gone and
            // uses the shared slot.
            FREE_SLOTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(slot);
        }
    }
}

crate::loom::thread_local! {
    /// The slot this thread counts in (`UNSET` until its first count). A plain cell with
    /// no destructor, so reading it is a single load.
    static SLOT: Cell<usize> = Cell::new(UNSET);
    /// The lease behind `SLOT`, whose destructor gives the slot number back.
    static LEASE: Lease = Lease(Cell::new(UNSET));
}

/// The slot this thread counts in: its own, or the shared one.
#[inline]
pub(super) fn slot() -> usize {
    match SLOT.try_with(Cell::get).unwrap_or(SHARED_SLOT) {
        UNSET => first_slot(),
        slot => slot,
    }
}

/// The first count on this thread: take a lease (the shared slot if the lease's
/// thread-local is already gone, during thread exit).
#[cold]
fn first_slot() -> usize {
    let slot = LEASE.try_with(Lease::take).unwrap_or(SHARED_SLOT);
    let _ = SLOT.try_with(|s| s.set(slot));
    slot
}

//! Optimisation: each worker's run-next slot; measured in docs/performance.md, "The LIFO
//! slot".
//!
//! # The LIFO slot
//!
//! A task spawned or woken on a worker goes into that worker's *LIFO slot*, and runs next:
//! a task that spawns a helper and awaits it, or two tasks passing messages back and forth,
//! then run one after the other on one worker, with their data still in its cache and no
//! other worker woken. A task already in the slot moves to the back of the deque, where it
//! can be stolen. Two rules keep the slot from starving anyone: a worker runs at most
//! `run_next::MAX_STREAK` slot tasks in a row before it takes one from its deque (the slot's
//! task goes to the back of the deque), and a task re-queued after its own poll (it woke
//! itself, like `yield_now`) never goes into the slot.
//!
//! Filling an empty slot wakes no idle worker: the task will run on this worker as soon as
//! the current poll returns, and waking a sleeper only to find nothing is the expensive
//! part of message passing between two tasks. Pushing to the deque (a displaced slot task,
//! a spawn from a worker of another pool, a wake from outside) does wake one.
//!
//! But a poll may not return soon: a task that spawns a helper and then blocks its thread
//! (a long computation, a synchronous wait) would keep the helper in the slot for the whole
//! block, and a group deadline could not reach it either. So the slot is stealable, by one
//! rule: **an idle worker takes a slot's task when that slot's worker has been in the same
//! poll for at least [`WATCH`]** (2 ms). While any worker is busy, one idle worker (the
//! *watcher*, at most one at a time) parks for `WATCH` instead of until woken; when it wakes
//! and finds a busy worker whose slot is full and whose poll mark (a count the worker
//! stores as it starts each poll) has not moved since its park began, it takes that task
//! and runs it, and wakes another idle worker, if any, to watch in its place. When every
//! worker is idle, nobody watches and the pool sleeps with no timer ticking. Message
//! passing never meets the rule (its polls take microseconds), so its tasks stay on one
//! worker; stealing from the slot at once, whenever a worker searches, would scatter
//! them. The price on the hot path is one compare-exchange per task taken from the slot
//! (`LifoSlot` says how the owner and a thief share the slot); the price while a worker
//! is busy and another idle is one wake-up of the watcher per `WATCH`.
//!

use crate::loom::{AtomicUsize, Ordering, UnsafeCell};
use std::mem::MaybeUninit;

/// `LifoSlot` states.
const EMPTY: usize = 0;
const FULL: usize = 1;
/// The owner is replacing the slot's task, or a thief is taking it: wait for `EMPTY` or
/// `FULL` again (a few instructions away).
const BUSY: usize = 2;

/// A worker's LIFO slot (module doc, "The LIFO slot"): at most one task, put and taken by
/// its worker (the *owner*), and stolen by an idle worker when the owner has been in one
/// poll for a while.
///
/// The cell is guarded by `state`, and holds a value exactly in `FULL` (and while `BUSY`).
/// The owner writes it only in `EMPTY` (which it alone leaves, by publishing `FULL` with a
/// release store) or after claiming it with a compare-exchange from `FULL`; a thief reads it
/// only after claiming it with `FULL -> BUSY`, and hands it back with a release store of
/// `EMPTY`. So no two threads touch the cell at once, and a task is taken exactly once
/// (`loom_lifo_slot_*`). The owner's costs: a put into an empty slot is a load and a store,
/// a take one compare-exchange.
///
/// Aligned to 128 bytes, so that two workers' slots never share a cache line.
#[repr(align(128))]
pub(super) struct LifoSlot<T> {
    state: AtomicUsize,
    cell: UnsafeCell<MaybeUninit<T>>,
    /// The owner's turn count when it last started a poll (`work`): a watcher that reads
    /// the same value twice, a `WATCH` apart, knows the owner has been in one poll since.
    pub(super) poll_mark: AtomicUsize,
}

// SAFETY: the cell is only touched by one thread at a time, as the type's doc explains, and
// a `T: Send` may move between threads through it.
unsafe impl<T: Send> Sync for LifoSlot<T> {}

impl<T> LifoSlot<T> {
    pub(super) fn new() -> LifoSlot<T> {
        LifoSlot {
            state: AtomicUsize::new(EMPTY),
            cell: UnsafeCell::new(MaybeUninit::uninit()),
            poll_mark: AtomicUsize::new(0),
        }
    }

    /// Puts `task` in the slot; returns the task it displaced, if any (none if a thief
    /// took it meanwhile).
    ///
    /// # Safety
    ///
    /// Only the slot's owner calls `put` and `take`: one thread, the worker whose slot it is.
    #[inline]
    pub(super) unsafe fn put(&self, task: T) -> Option<T> {
        if self.state.load(Ordering::Acquire) != EMPTY {
            // SAFETY: passed on from our caller.
            return unsafe { self.put_displacing(task) };
        }
        // SAFETY: in `EMPTY` the cell holds nothing and only the owner (this thread, by the
        // caller's promise) touches it; the acquire load ordered a thief's last access
        // before this one.
        self.cell.with_mut(|cell| unsafe { (*cell).write(task) });
        self.state.store(FULL, Ordering::Release);
        None
    }

    /// `put` into a slot that was not empty.
    ///
    /// # Safety
    ///
    /// As for [`put`](Self::put): owner only.
    #[cold]
    pub(super) unsafe fn put_displacing(&self, task: T) -> Option<T> {
        loop {
            match self.state.load(Ordering::Acquire) {
                EMPTY => {
                    // SAFETY: as in `put`.
                    self.cell.with_mut(|cell| unsafe { (*cell).write(task) });
                    self.state.store(FULL, Ordering::Release);
                    return None;
                }
                FULL => {
                    if self
                        .state
                        .compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        // SAFETY: we claimed the cell (`FULL -> BUSY`), which holds a task;
                        // nobody else touches it until we publish it again.
                        let displaced = self
                            .cell
                            .with_mut(|cell| unsafe { (*cell).assume_init_read() });
                        // SAFETY: still ours, and now logically empty.
                        self.cell.with_mut(|cell| unsafe { (*cell).write(task) });
                        self.state.store(FULL, Ordering::Release);
                        return Some(displaced);
                    }
                }
                _ => spin(),
            }
        }
    }

    /// Takes the slot's task, if any.
    ///
    /// # Safety
    ///
    /// As for [`put`](Self::put): owner only.
    #[inline]
    pub(super) unsafe fn take(&self) -> Option<T> {
        loop {
            match self.state.load(Ordering::Relaxed) {
                EMPTY => return None,
                FULL => {
                    if self
                        .state
                        .compare_exchange(FULL, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        // SAFETY: we claimed the cell, which holds a task (`FULL -> EMPTY`):
                        // a thief needs `FULL` to touch it, and only the owner (this thread)
                        // publishes `FULL`, after writing it anew.
                        let task = self
                            .cell
                            .with_mut(|cell| unsafe { (*cell).assume_init_read() });
                        return Some(task);
                    }
                }
                _ => spin(),
            }
        }
    }

    /// `true` if the slot holds no task. Any thread; a hint unless called by the owner.
    pub(super) fn is_empty(&self) -> bool {
        self.state.load(Ordering::Acquire) == EMPTY
    }

    /// Takes the slot's task, if it has one and nobody else is at the cell. Any thread.
    pub(super) fn steal(&self) -> Option<T> {
        self.state
            .compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: we claimed the cell (`FULL -> BUSY`), which holds a task; the owner waits
        // for `EMPTY` or `FULL` before it touches it again, and other thieves need `FULL`.
        let task = self
            .cell
            .with_mut(|cell| unsafe { (*cell).assume_init_read() });
        self.state.store(EMPTY, Ordering::Release);
        Some(task)
    }
}

impl<T> Drop for LifoSlot<T> {
    fn drop(&mut self) {
        if self.state.load(Ordering::Acquire) == FULL {
            // SAFETY: `&mut self`: nobody else can reach the slot, and `FULL` means the
            // cell holds a task, dropped here once.
            self.cell
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
        }
    }
}

/// One turn of a wait for a slot another thread holds for a few instructions.
fn spin() {
    #[cfg(all(loom, test))]
    loom::thread::yield_now();
    #[cfg(not(all(loom, test)))]
    std::hint::spin_loop();
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::LifoSlot;
    use crate::loom::{Arc, AtomicUsize, Ordering};

    /// The owner puts two tasks into its slot (the second displaces the first, unless a
    /// thief took it) and takes what is left, while `thieves` threads each try to steal:
    /// every task comes out exactly once, and the cell is never touched by two threads at
    /// once (loom checks each access to the `UnsafeCell`).
    fn slot_tasks_come_out_once(thieves: usize) {
        let slot = Arc::new(LifoSlot::<usize>::new());
        let handles: Vec<_> = (0..thieves)
            .map(|_| {
                let slot = slot.clone();
                loom::thread::spawn(move || slot.steal())
            })
            .collect();
        let mut out = Vec::new();
        // SAFETY: this thread is the slot's only owner.
        unsafe {
            out.extend(slot.put(1));
            out.extend(slot.put(2));
            out.extend(slot.take());
        }
        for handle in handles {
            out.extend(handle.join().unwrap());
        }
        out.sort_unstable();
        assert_eq!(out, [1, 2]);
        assert!(slot.is_empty());
    }

    /// An idle worker steals from a slot while its owner fills, refills and empties it.
    #[test]
    fn loom_lifo_slot_owner_vs_thief() {
        loom::model(|| slot_tasks_come_out_once(1));
    }

    /// Two thieves at once (the watch is meant for one idle worker at a time, but the slot
    /// must not depend on that).
    #[test]
    fn loom_lifo_slot_owner_vs_two_thieves() {
        loom::model(|| slot_tasks_come_out_once(2));
    }
}

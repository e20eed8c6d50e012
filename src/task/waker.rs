//! Wakers: a task's `Arc` is its waker, through a hand-written [`RawWakerVTable`] that
//! counts the task's live wakers in its state word.
//!
//! Waking is transition 1: if the task was idle, the waker puts it on its executor's run
//! queue; if it is being polled, it sets `SCHEDULED` so the poller re-queues it
//! (transition 4); if it is already queued or complete, the word is written back unchanged
//! (one read-modify-write; see `transition_to_notified` for why never a plain load). A
//! waker that outlives its executor finds the task complete (shutdown completes every
//! task) and does nothing.
//!
//! # Waker accounting
//!
//! Each waker holds one reference to the task's `Arc` and counts one in the state word
//! ([`WAKER_ONE`](super::state::WAKER_ONE)): cloning adds one to both, dropping takes one
//! from both, and waking by value takes its one off in the same read-modify-write as the
//! wake itself. The waker lent to a poll ([`Task::borrowed_waker`]) is borrowed from the
//! poller's reference and not counted: it cannot outlive the poll, and a running task is
//! never judged. So when a drop takes the count to zero while the task is idle (or a poll
//! returns `Pending` with the count at zero), that operation's result proves that nothing
//! can wake the task again: [`unreachable`](super::lost::unreachable) decides what to do.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Waker};

use std::future::Future;

use super::TaskRef;
use super::harness::Task;
use super::state::Notified;

impl<F, T> Task<F, T>
where
    F: Future + 'static,
    T: 'static,
{
    const WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
        Self::clone_waker,
        Self::wake,
        Self::wake_by_ref,
        Self::drop_waker,
    );

    /// The waker lent to one poll: borrowed from `self`, not counted, never dropped.
    #[inline]
    pub(super) fn borrowed_waker(self: &Arc<Self>) -> ManuallyDrop<Waker> {
        let raw = RawWaker::new(Arc::as_ptr(self).cast(), &Self::WAKER_VTABLE);
        // SAFETY: the vtable's functions expect a pointer from `Arc::as_ptr` of this very
        // type, which `raw` holds. The waker owns no reference (it is never dropped:
        // `ManuallyDrop`), and `self` keeps the task alive for as long as it is borrowed;
        // its clones take references of their own.
        ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
    }

    /// The vtable's `clone`: one more reference, one more waker counted.
    ///
    /// # Safety
    ///
    /// `data` comes from `Arc::as_ptr` of a live `Arc<Self>` (a waker's, or the poller's
    /// for the borrowed waker).
    unsafe fn clone_waker(data: *const ()) -> RawWaker {
        let task = data.cast::<Self>();
        // SAFETY: `task` is alive (the waker being cloned keeps it so) and came from
        // `Arc::as_ptr`: the count may be raised, and the header read.
        unsafe {
            Arc::increment_strong_count(task);
            (*task).header.state.clone_waker();
        }
        RawWaker::new(data, &Self::WAKER_VTABLE)
    }

    /// The vtable's `wake`: consumes a counted waker.
    ///
    /// # Safety
    ///
    /// `data` is a counted waker's (made by `clone_waker`): it owns one reference.
    unsafe fn wake(data: *const ()) {
        // SAFETY: the waker's own reference, taken over here and dropped at the end.
        let task = unsafe { Arc::from_raw(data.cast::<Self>()) };
        if task.header.state.transition_to_notified_by_value() == Notified::Submit {
            // `schedule` takes the task by value; the scheduler is borrowed from the task,
            // so hand over a second reference and let this one go after.
            super::submit(&*task.header.scheduler, task.clone() as TaskRef);
        }
    }

    /// The vtable's `wake_by_ref`.
    ///
    /// # Safety
    ///
    /// As for [`clone_waker`](Self::clone_waker).
    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: borrowed for this call only: `ManuallyDrop` keeps the waker's reference
        // (or the poller's) where it is.
        let task = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<Self>()) });
        if task.header.state.transition_to_notified() == Notified::Submit {
            super::submit(&*task.header.scheduler, Arc::clone(&*task) as TaskRef);
        }
    }

    /// The vtable's `drop`: one fewer waker; if it was the last, and the task is idle,
    /// nothing can wake the task any more.
    ///
    /// # Safety
    ///
    /// As for [`wake`](Self::wake).
    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: the waker's own reference, taken over here and dropped at the end.
        let task = unsafe { Arc::from_raw(data.cast::<Self>()) };
        let after = task.header.state.drop_waker();
        if after.is_unreachable() {
            super::lost::unreachable(task as TaskRef, after);
        }
    }
}

//! The task's atomic state word, its bits, and the named transitions between states.
//!
//! See the module doc of [`crate::task`] for the lifecycle diagram and the rules that the
//! bits grant. Every transition is one atomic read-modify-write and returns a
//! `#[must_use]` value that tells the caller what it now owns or must do.

use crate::loom::AtomicUsize;
use crate::loom::Ordering::*;
use std::fmt;

/// The task is on a run queue, or is about to be put on one, or (together with
/// [`RUNNING`]) was woken during its poll and must be re-queued when the poll ends.
/// Never set together with [`COMPLETE`].
pub(crate) const SCHEDULED: usize = 1 << 0;

/// One thread is polling the task, or dropping its future. That thread alone may touch the
/// future (rule 1). Never set together with [`COMPLETE`].
pub(crate) const RUNNING: usize = 1 << 1;

/// The future is gone and the stage holds the result (or has been read, or was never
/// stored because the handle was gone). Set once, never cleared. From here on, wakes and
/// cancels do nothing.
pub(crate) const COMPLETE: usize = 1 << 2;

/// Somebody asked for this task to be cancelled; the reason is in the header's
/// `cancel_reason`, written before this bit. The next transition to running sees it.
pub(crate) const CANCELLED: usize = 1 << 3;

/// A [`JoinHandle`](crate::JoinHandle) exists. Whoever clears it or sets [`COMPLETE`]
/// second owns the result (rule 3).
pub(crate) const HANDLE: usize = 1 << 4;

/// The handle has stored a waker in the header's `join_waker` slot (at some point; the
/// slot may be empty again). Set by the handle after storing, never cleared: whoever
/// completes the task, or drops the handle, locks the slot only if this bit is set, so a
/// handle that never waited costs no lock at all (rule 5).
pub(crate) const JOIN_WAKER: usize = 1 << 5;

/// A lost-waker or deadlock report was made for this task (at most one is).
pub(crate) const STALL_REPORTED: usize = 1 << 6;

/// One live waker: the bits from here up count the task's wakers (clones of its waker that
/// exist anywhere; the one borrowed for a poll is not counted). In the state word, so that
/// "no waker left" is decided in the same atomic operation as "not queued, not running,
/// not complete" (module doc of `crate::stall`).
pub(crate) const WAKER_ONE: usize = 1 << 7;

/// A freshly spawned task: queued, with a handle.
const INITIAL: usize = SCHEDULED | HANDLE;

/// The state word.
pub(crate) struct State {
    word: AtomicUsize,
}

/// A copy of the state word at one moment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    pub(crate) fn is_scheduled(self) -> bool {
        self.0 & SCHEDULED != 0
    }
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn has_handle(self) -> bool {
        self.0 & HANDLE != 0
    }
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    /// This state with `HANDLE` cleared: the state after [`State::drop_handle`].
    pub(crate) fn without_handle(self) -> Snapshot {
        Snapshot(self.0 & !HANDLE)
    }
    /// How many wakers of the task exist (the one borrowed for a poll aside).
    pub(crate) fn wakers(self) -> usize {
        self.0 / WAKER_ONE
    }
    /// Idle, with no waker anywhere: nothing but a cancel can ever queue the task again.
    pub(crate) fn is_unreachable(self) -> bool {
        self.0 & (SCHEDULED | RUNNING | COMPLETE) == 0 && self.wakers() == 0
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("scheduled", &self.is_scheduled())
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("cancelled", &self.is_cancelled())
            .field("handle", &self.has_handle())
            .field("join_waker", &self.has_join_waker())
            .field("stall_reported", &(self.0 & STALL_REPORTED != 0))
            .field("wakers", &self.wakers())
            .finish()
    }
}

/// What a wake (transition 1, or 4 during a poll) asks of the waker.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Notified {
    /// The task was idle: the waker now owns putting it on a run queue.
    Submit,
    /// Already queued, being polled (it will be re-queued after), or complete: nothing to do.
    Nothing,
}

/// What the run queue's owner may do with a task it popped (transition 2).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// Poll it: this thread now holds [`RUNNING`].
    Poll,
    /// It was cancelled: this thread holds [`RUNNING`] and must drop the future.
    Cancel,
    /// It completed while queued; just drop the reference.
    Dead,
}

/// What happens after a poll returned `Pending` (transition 3).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Nobody woke it: it waits for a waker.
    Idle,
    /// Nobody woke it, and no waker for it exists (this is the state after the
    /// transition): only a cancel can queue it again.
    Unreachable(Snapshot),
    /// It was woken (or cancelled) during the poll: the poller must queue it again.
    Requeue,
}

impl State {
    #[inline]
    pub(crate) fn new() -> State {
        State {
            word: AtomicUsize::new(INITIAL),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.word.load(Acquire))
    }

    /// Applies `f` in a compare-and-swap loop; returns the old snapshot and `f`'s verdict.
    fn update<R>(&self, mut f: impl FnMut(Snapshot) -> (Option<usize>, R)) -> (Snapshot, R) {
        let mut current = self.word.load(Acquire);
        loop {
            let (next, verdict) = f(Snapshot(current));
            let Some(next) = next else {
                return (Snapshot(current), verdict);
            };
            match self
                .word
                .compare_exchange_weak(current, next, AcqRel, Acquire)
            {
                Ok(_) => return (Snapshot(current), verdict),
                Err(actual) => current = actual,
            }
        }
    }

    /// Transition 1 (and 4): a waker fired. Sets [`SCHEDULED`] unless it is set already or
    /// the task is complete.
    ///
    /// Even when nothing changes, this is a read-modify-write (it writes the same word
    /// back), never a plain load: a load may read a stale `SCHEDULED` bit from before the
    /// task's last poll and drop the wake, while a read-modify-write always reads the
    /// latest value, and its release half makes what the waker wrote before waking visible
    /// to the poll that the `SCHEDULED` bit promises. (Loom found the plain-load version
    /// losing a wake-up: `loom_group_cancel_vs_poll`.)
    #[inline]
    pub(crate) fn transition_to_notified(&self) -> Notified {
        self.update(|s| {
            if s.0 & (SCHEDULED | COMPLETE) != 0 {
                (Some(s.0), Notified::Nothing)
            } else if s.is_running() {
                (Some(s.0 | SCHEDULED), Notified::Nothing)
            } else {
                (Some(s.0 | SCHEDULED), Notified::Submit)
            }
        })
        .1
    }

    /// A waker was cloned.
    #[inline]
    pub(crate) fn clone_waker(&self) {
        // Relaxed, as for a reference count: the count only matters to the
        // read-modify-writes that take it down, which see every earlier change of the word.
        self.word.fetch_add(WAKER_ONE, Relaxed);
    }

    /// A waker was dropped without waking. Returns the state after.
    #[inline]
    pub(crate) fn drop_waker(&self) -> Snapshot {
        Snapshot(self.word.fetch_sub(WAKER_ONE, AcqRel) - WAKER_ONE)
    }

    /// Transition 1 by a waker that is consumed (`Waker::wake`): one fewer waker, in the
    /// same operation. A waker woken by value always sets `SCHEDULED` (or finds the task
    /// complete), so it never leaves the task unreachable.
    #[inline]
    pub(crate) fn transition_to_notified_by_value(&self) -> Notified {
        self.update(|s| {
            let fewer = s.0 - WAKER_ONE;
            if s.0 & (SCHEDULED | COMPLETE) != 0 {
                (Some(fewer), Notified::Nothing)
            } else if s.is_running() {
                (Some(fewer | SCHEDULED), Notified::Nothing)
            } else {
                (Some(fewer | SCHEDULED), Notified::Submit)
            }
        })
        .1
    }

    /// Marks the task as reported (a lost waker or a deadlock); `true` if it was not yet.
    pub(crate) fn mark_stall_reported(&self) -> bool {
        self.word.fetch_or(STALL_REPORTED, AcqRel) & STALL_REPORTED == 0
    }

    /// Transition 5: cancel requested. Sets [`CANCELLED`] and, like a wake, [`SCHEDULED`],
    /// so that the task reaches a poller that will drop it.
    pub(crate) fn transition_to_cancel_requested(&self) -> Notified {
        self.update(|s| {
            if s.is_complete() || (s.is_cancelled() && s.is_scheduled()) {
                // Written back unchanged, for the reason given at `transition_to_notified`.
                (Some(s.0), Notified::Nothing)
            } else if s.is_scheduled() || s.is_running() {
                (Some(s.0 | CANCELLED | SCHEDULED), Notified::Nothing)
            } else {
                (Some(s.0 | CANCELLED | SCHEDULED), Notified::Submit)
            }
        })
        .1
    }

    /// Transition 2: a poller popped the task off a run queue.
    #[inline]
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|s| {
            if s.is_complete() {
                return (None, ToRunning::Dead);
            }
            debug_assert!(
                s.is_scheduled(),
                "popped a task that was not scheduled: {s:?}"
            );
            debug_assert!(!s.is_running(), "two pollers at once: {s:?}");
            let next = (s.0 & !SCHEDULED) | RUNNING;
            if s.is_cancelled() {
                (Some(next), ToRunning::Cancel)
            } else {
                (Some(next), ToRunning::Poll)
            }
        })
        .1
    }

    /// Transition 3: the poll returned `Pending`. Clears [`RUNNING`]; re-queue if woken
    /// during the poll, or say that nothing can wake the task any more (no waker, not
    /// scheduled: see `lost.rs`).
    #[inline]
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        // `RUNNING` is set (this thread set it in transition 2 and nothing else clears it),
        // so subtracting it clears it: one read-modify-write, no loop.
        let before = Snapshot(self.word.fetch_sub(RUNNING, AcqRel));
        debug_assert!(before.is_running(), "idle without running: {before:?}");
        let after = Snapshot(before.0 - RUNNING);
        if after.is_scheduled() {
            ToIdle::Requeue
        } else if after.0 < WAKER_ONE {
            ToIdle::Unreachable(after)
        } else {
            ToIdle::Idle
        }
    }

    /// Transition 6: the poller stored the result. Returns the state before, whose
    /// [`HANDLE`] bit says who owns the result now (rule 3).
    #[inline]
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        self.update(|s| {
            debug_assert!(s.is_running() && !s.is_complete(), "complete: {s:?}");
            (Some((s.0 & !(RUNNING | SCHEDULED)) | COMPLETE), ())
        })
        .0
    }

    /// The handle stored a waker: sets [`JOIN_WAKER`]. Returns the state before; if it was
    /// [`COMPLETE`], the completer may have missed the waker, and the handle must not
    /// wait for it (rule 5).
    #[inline]
    pub(crate) fn set_join_waker(&self) -> Snapshot {
        Snapshot(self.word.fetch_or(JOIN_WAKER, AcqRel))
    }

    /// Transition 7: the handle is dropped or detached. Returns the state before: if it was
    /// [`COMPLETE`], the handle owns the result and must drop it.
    #[inline]
    pub(crate) fn drop_handle(&self) -> Snapshot {
        Snapshot(self.word.fetch_and(!HANDLE, AcqRel))
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.load().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_while_scheduled_does_not_enqueue_twice() {
        let s = State::new();
        s.clone_waker(); // a waker exists somewhere, so the task is never unreachable
        assert_eq!(s.transition_to_notified(), Notified::Nothing);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_notified(), Notified::Nothing); // during poll
        assert_eq!(s.transition_to_notified(), Notified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Requeue); // exactly one re-queue
        assert_eq!(s.transition_to_notified(), Notified::Nothing);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified(), Notified::Submit);
        assert_eq!(s.transition_to_notified(), Notified::Nothing);
    }

    #[test]
    fn wake_after_complete_is_a_no_op() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let before = s.transition_to_complete();
        assert!(before.has_handle());
        assert_eq!(s.transition_to_notified(), Notified::Nothing);
        assert_eq!(s.transition_to_cancel_requested(), Notified::Nothing);
        assert!(s.drop_handle().is_complete());
        assert!(!s.load().has_handle());
    }

    #[test]
    fn cancel_is_seen_at_the_next_transition_to_running() {
        let s = State::new();
        s.clone_waker();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_cancel_requested(), Notified::Submit);
        assert_eq!(s.transition_to_cancel_requested(), Notified::Nothing);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    }

    #[test]
    fn cancel_during_poll_requeues() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_cancel_requested(), Notified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Requeue);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    }

    #[test]
    fn unreachable_is_decided_by_the_operation_that_makes_it_so() {
        let s = State::new();
        s.clone_waker();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle); // one waker out there
        s.clone_waker();
        assert!(!s.drop_waker().is_unreachable()); // one left
        assert!(s.drop_waker().is_unreachable()); // the last one
        // A poll that returns with no waker kept.
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert!(matches!(s.transition_to_idle(), ToIdle::Unreachable(_)));
        // Woken by value: queued, so not unreachable, though no waker is left.
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        s.clone_waker();
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified_by_value(), Notified::Submit);
        assert!(!s.load().is_unreachable() && s.load().wakers() == 0);
        // A running task whose last waker goes is not judged until its poll returns.
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        s.clone_waker();
        assert!(!s.drop_waker().is_unreachable());
        // Complete: never unreachable.
        s.transition_to_complete();
        s.clone_waker();
        assert!(!s.drop_waker().is_unreachable());
    }

    #[test]
    fn snapshot_debug_names_each_flag() {
        let text = format!("{:?}", State::new());
        assert!(
            text.contains("scheduled: true") && text.contains("handle: true"),
            "{text}"
        );
    }
}

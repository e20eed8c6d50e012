//! The part of a task that does not depend on its future's type.

use crate::loom::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering::Relaxed};
use std::task::Waker;

use super::cancel::CancelSlot;
use super::state::State;
use super::timing::TimingCell;
use super::{GroupLink, Schedule, TaskId, TaskInfo};
use crate::failure::CancelReason;
use crate::trace::Tracer;

/// Shared by the executor, the wakers, the handle and the group. The field rules are in
/// the module doc of [`crate::task`].
///
/// Optimisation: the fields every poll touches come first, in declaration order
/// (`repr(C)`), so that they share one or two cache lines; the rest, read on rarer paths,
/// follow. (Rust would otherwise order the fields by size, which scatters the hot ones.)
#[repr(C)]
pub(crate) struct Header {
    // Touched by every poll.
    /// The state word (see `state.rs`).
    pub(crate) state: State,
    /// The executor that runs this task.
    pub(crate) scheduler: Arc<dyn Schedule>,
    /// The group this task belongs to, if any.
    pub(crate) group: Option<Arc<dyn GroupLink>>,
    /// How many times it was polled; written by the `RUNNING` thread only (rule 1), read
    /// by dumps and by the exit's timing.
    pub(crate) polls: StdAtomicU64,
    /// Where and when its last poll began: the executor's poll stamp (see `snapshot.rs`),
    /// stored before transition 2. Read by dumps.
    pub(crate) last_poll: StdAtomicU64,
    /// Who this task is (a poll reads its id).
    pub(crate) info: TaskInfo,
    // Touched on rarer paths.
    /// Why it was cancelled; written before `CANCELLED` is set (rule 4).
    pub(crate) cancel_reason: CancelSlot,
    /// The waker of whoever awaits the handle (rule 5).
    pub(crate) join_waker: Mutex<Option<Waker>>,
    /// The task's key in its owner's registry; written once, before the task is queued.
    pub(crate) owner_key: AtomicUsize,
    /// The id of the task that last stored a waker in `join_waker` (0: none, or a
    /// `block_on`), for a deadlock report.
    pub(crate) awaited_by: AtomicU64,
    /// Its poll timing record, when the owner times polls (see `timing.rs`): set once, by
    /// the spawning thread before the task is queued. Looked at only on the paths that the
    /// owner's `observes_polls` flag guards, so without timing a task pays for its
    /// initialisation and nothing else.
    pub(crate) timing: OnceLock<Box<TimingCell>>,
}

impl Header {
    #[inline]
    pub(crate) fn new(
        info: TaskInfo,
        scheduler: Arc<dyn Schedule>,
        group: Option<Arc<dyn GroupLink>>,
    ) -> Header {
        Header {
            state: State::new(),
            info,
            cancel_reason: CancelSlot::new(),
            join_waker: Mutex::new(None),
            scheduler,
            group,
            owner_key: AtomicUsize::new(usize::MAX),
            awaited_by: AtomicU64::new(0),
            polls: StdAtomicU64::new(0),
            last_poll: StdAtomicU64::new(0),
            timing: OnceLock::new(),
        }
    }

    /// Stores the executor's poll stamp (see `snapshot.rs`); `run` does, before transition 2.
    #[inline]
    pub(crate) fn stamp_poll(&self, stamp: u64) {
        self.last_poll.store(stamp, Relaxed);
    }

    /// How many times it was polled so far.
    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Relaxed)
    }

    /// Counts a poll and returns how many came before it. The caller holds `RUNNING`, the
    /// only writer (rule 1), so a load and a store cannot lose a count.
    #[inline]
    pub(crate) fn count_poll(&self) -> u64 {
        let before = self.polls.load(Relaxed);
        self.polls.store(before + 1, Relaxed);
        before
    }

    /// The task's own cancel reason (the group's is read separately, in `Task::run`).
    pub(crate) fn reason(&self) -> CancelReason {
        self.cancel_reason
            .get()
            .unwrap_or(CancelReason::Explicit(None))
    }

    /// The task that awaits this task's handle, if a task does.
    pub(crate) fn awaited_by(&self) -> Option<TaskId> {
        TaskId::from_u64(self.awaited_by.load(Ordering::Acquire))
    }

    /// The task is being queued by a wake (transition 1 said `Submit`): recorded in the
    /// task timeline and in its poll timing, if either is on. One test when both are off.
    pub(crate) fn note_wake(&self) {
        let owner = self.scheduler.owner();
        if owner.observes_polls {
            self.note_observed_wake(owner.tracer.as_ref(), owner.epoch);
        }
    }

    /// [`note_wake`](Self::note_wake) with an observer on: out of line, so that the wake
    /// path stays as small as it was without observers.
    #[cold]
    #[inline(never)]
    fn note_observed_wake(&self, tracer: Option<&Tracer>, epoch: std::time::Instant) {
        if let Some(tracer) = tracer {
            tracer.wake(&self.info);
        }
        if let Some(timing) = self.timing.get() {
            timing.queued(epoch);
        }
    }

    /// Takes the waker the handle left in the slot, if any.
    pub(crate) fn take_join_waker(&self) -> Option<Waker> {
        self.join_waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Takes the handle's waker, if one is waiting, and wakes it.
    pub(crate) fn wake_join_waiter(&self) {
        if let Some(waker) = self.take_join_waker() {
            self.scheduler.wake_join_waiter(waker);
        }
    }
}

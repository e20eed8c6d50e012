//! The part of a task that does not depend on its future's type.

use crate::loom::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};
use std::task::Waker;

use super::cancel::CancelSlot;
use super::state::State;
use super::{GroupLink, Schedule, TaskId, TaskInfo};
use crate::failure::CancelReason;

/// Shared by the executor, the wakers, the handle and the group. The field rules are in
/// the module doc of [`crate::task`].
pub(crate) struct Header {
    /// The state word (see `state.rs`).
    pub(crate) state: State,
    /// Who this task is.
    pub(crate) info: TaskInfo,
    /// Why it was cancelled; written before `CANCELLED` is set (rule 4).
    pub(crate) cancel_reason: CancelSlot,
    /// The waker of whoever awaits the handle (rule 5).
    pub(crate) join_waker: Mutex<Option<Waker>>,
    /// The executor that runs this task.
    pub(crate) scheduler: Arc<dyn Schedule>,
    /// The group this task belongs to, if any.
    pub(crate) group: Option<Arc<dyn GroupLink>>,
    /// The task's key in its owner's registry; written once, before the task is queued.
    pub(crate) owner_key: AtomicUsize,
    /// The id of the task that last stored a waker in `join_waker` (0: none, or a
    /// `block_on`), for a deadlock report.
    pub(crate) awaited_by: AtomicU64,
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
        }
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

    /// Records a wake in the task timeline, if tracing is on.
    pub(crate) fn trace_wake(&self) {
        if let Some(tracer) = &self.scheduler.owner().tracer {
            tracer.wake(&self.info);
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

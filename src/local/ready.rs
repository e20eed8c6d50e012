//! The owner thread's ready queue: FIFO, with the next slot in front (the run-next rule,
//! `run_next.rs`), and how the owner thread reaches it and the remote queue.

use std::collections::VecDeque;

use super::LocalShared;
use crate::context;
use crate::loom::Ordering;
use crate::run_next::Streak;
use crate::task::{Poller, TaskRef};
use std::time::Instant;

impl LocalShared {
    /// Runs `f` on the ready queue.
    ///
    /// Owner thread only: every caller either checked [`is_owner_thread`](Self::is_owner_thread)
    /// or runs inside a method of the `!Send`, `!Sync` [`LocalExecutor`], which exists on
    /// its owner thread alone. `f` must not call back into anything that may schedule.
    #[inline(always)]
    pub(super) fn with_ready<R>(&self, f: impl FnOnce(&mut Ready) -> R) -> R {
        debug_assert!(
            self.is_owner_thread() || context::thread_token() == 0,
            "the ready queue was touched off the owner thread"
        );
        self.ready.with_mut(|ready| {
            // SAFETY: on the owner thread (see above), and no two calls overlap: none of
            // the closures passed here runs user code or schedules, and the one thread
            // that may touch the queue runs one of them at a time. So this is the only
            // reference to the queue while it lives.
            f(unsafe { &mut *ready })
        })
    }

    /// Moves every task of the remote queue to the back of the ready queue. Owner thread
    /// only.
    #[inline]
    pub(super) fn take_remote(&self) {
        if self.remote_queued.load(Ordering::Acquire) {
            let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            self.remote_queued.store(false, Ordering::Relaxed);
            self.with_ready(|ready| ready.queue.append(&mut remote));
        }
    }

    /// What each poll of a batch starting at `now` is handed (see `Poller`): the owner, the
    /// watchdog's slot, and the poll stamp (see task/snapshot.rs).
    #[inline]
    pub(super) fn poller(&self, now: Instant) -> Poller<'_> {
        let slot = self.watchdog.as_ref().map(|w| w.slot(0));
        Poller::new(&self.owner, slot, self.owner.poll_clock(0, now).stamp())
    }

    /// The next ready task. Owner thread only.
    #[inline]
    pub(super) fn pop(&self) -> Option<TaskRef> {
        if let Some(task) = self.with_ready(Ready::pop) {
            return Some(task);
        }
        self.take_remote();
        self.with_ready(Ready::pop)
    }

    /// Opens or closes the next slot until the returned guard is dropped, which restores
    /// what it was (also if a panic unwinds past it). Owner thread only.
    #[inline]
    pub(super) fn set_slot_open(&self, open: bool) -> SlotSetting<'_> {
        let previous = self.with_ready(|ready| std::mem::replace(&mut ready.slot_open, open));
        SlotSetting {
            shared: self,
            previous,
        }
    }
}

/// Restores [`Ready::slot_open`] when dropped; see [`LocalShared::set_slot_open`].
pub(super) struct SlotSetting<'a> {
    shared: &'a LocalShared,
    previous: bool,
}

impl Drop for SlotSetting<'_> {
    fn drop(&mut self) {
        let previous = self.previous;
        self.shared.with_ready(|ready| ready.slot_open = previous);
    }
}

/// The owner thread's ready tasks: a FIFO queue, and a slot for the task to run next.
///
/// The slot holds the first task that a running task spawns or wakes (later ones, while
/// it is full, join the queue in order). Two tasks that hand messages back and forth,
/// or a task and the helper it has just spawned, then run one after the other while
/// their data is still in cache, and the blocks they free are reused at once; through a
/// FIFO queue alone, every other ready task would run in between. Two rules keep it fair:
/// at most `run_next::MAX_STREAK` tasks in a row come from the slot, and a task that wakes
/// itself (a yield) goes to the back of the queue, never into the slot.
pub(super) struct Ready {
    pub(super) queue: VecDeque<TaskRef>,
    pub(super) next: Option<TaskRef>,
    /// Tasks taken from `next` in a row.
    pub(super) streak: Streak,
    /// `true` while `run_batch` runs tasks: pushes then may fill the slot. Pushes from
    /// the root future of `block_on`, from outside the executor, and join wakes (see
    /// [`Schedule::wake_join_waiter`]) go to the queue.
    pub(super) slot_open: bool,
}

impl Ready {
    pub(super) fn new() -> Ready {
        Ready {
            queue: VecDeque::new(),
            next: None,
            streak: Streak::default(),
            slot_open: false,
        }
    }

    /// Queues a task spawned or woken on the owner thread: into the slot if it is open
    /// and empty, else at the back.
    #[inline]
    pub(super) fn push(&mut self, task: TaskRef) {
        if self.slot_open && self.next.is_none() {
            self.next = Some(task);
        } else {
            self.queue.push_back(task);
        }
    }

    /// The next task to run: the slot's, unless the streak is used up (then the slot's task
    /// goes to the back), else the queue's first.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<TaskRef> {
        if let Some(task) = self.next.take() {
            if self.streak.allow_next() {
                return Some(task);
            }
            self.queue.push_back(task);
        }
        self.streak.reset();
        self.queue.pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.next.is_none() && self.queue.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len() + usize::from(self.next.is_some())
    }
}

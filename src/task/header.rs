//! The part of a task that does not depend on its future's type.

use crate::loom::{Arc, AtomicUsize, Mutex, Ordering};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::Waker;

use super::state::State;
use super::timing::TimingCell;
use super::{GroupLink, Schedule, TaskInfo};
use crate::failure::CancelReason;
use crate::trace::Tracer;

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
    /// How many times it was polled; written by the `RUNNING` thread only (rule 1), read
    /// by dumps and by the exit's timing.
    pub(crate) polls: AtomicU64,
    /// Where and when its last poll began: the executor's poll stamp (see `snapshot.rs`),
    /// stored before transition 2. Read by dumps.
    pub(crate) last_poll: AtomicU64,
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
            polls: AtomicU64::new(0),
            last_poll: AtomicU64::new(0),
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

/// A task's cancel reason: set at most once (the first reason wins), read many times.
///
/// One word. The reasons that carry no data (all but `Explicit(Some(_))` and
/// `SiblingFailed(_)`) are stored as small codes, so cancelling a task with one of them
/// allocates nothing; the others are boxed, and the word holds the box's address. A heap
/// address of a `CancelReason` is a multiple of its alignment (8), so it never equals a
/// code (1 to 5), and 0 means "not set".
pub(crate) struct CancelSlot {
    word: AtomicUsize,
}

const EXPLICIT: usize = 1;
const DEADLINE: usize = 2;
const PARENT_CANCELLED: usize = 3;
const GROUP_DROPPED: usize = 4;
const SHUTDOWN: usize = 5;
const LAST_CODE: usize = SHUTDOWN;

const _: () = assert!(std::mem::align_of::<CancelReason>() > LAST_CODE);

impl CancelSlot {
    pub(crate) fn new() -> CancelSlot {
        CancelSlot {
            word: AtomicUsize::new(0),
        }
    }

    /// Stores `reason` unless a reason is already there. Returns whether it was stored.
    pub(crate) fn set(&self, reason: CancelReason) -> bool {
        let word = match reason {
            CancelReason::Explicit(None) => EXPLICIT,
            CancelReason::Deadline => DEADLINE,
            CancelReason::ParentCancelled => PARENT_CANCELLED,
            CancelReason::GroupDropped => GROUP_DROPPED,
            CancelReason::Shutdown => SHUTDOWN,
            boxed => {
                // Already set: do not allocate for a reason that would lose anyway.
                if self.word.load(Ordering::Acquire) != 0 {
                    return false;
                }
                Box::into_raw(Box::new(boxed)) as usize
            }
        };
        // Release: a reader that sees the word (Acquire) sees the box's contents.
        match self
            .word
            .compare_exchange(0, word, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                if word > LAST_CODE {
                    // SAFETY: `word` came from `Box::into_raw` just above and was never
                    // published (the exchange failed), so this is its only owner.
                    drop(unsafe { Box::from_raw(word as *mut CancelReason) });
                }
                false
            }
        }
    }

    /// The reason, if one was set.
    pub(crate) fn get(&self) -> Option<CancelReason> {
        match self.word.load(Ordering::Acquire) {
            0 => None,
            EXPLICIT => Some(CancelReason::Explicit(None)),
            DEADLINE => Some(CancelReason::Deadline),
            PARENT_CANCELLED => Some(CancelReason::ParentCancelled),
            GROUP_DROPPED => Some(CancelReason::GroupDropped),
            SHUTDOWN => Some(CancelReason::Shutdown),
            // SAFETY: a word above the codes is the address of a box that `set` published
            // (the Acquire load pairs with its release, so the contents are visible), and
            // the box is freed only in `drop`, which cannot run while `&self` is borrowed.
            boxed => Some(unsafe { (*(boxed as *const CancelReason)).clone() }),
        }
    }
}

impl Drop for CancelSlot {
    fn drop(&mut self) {
        let word = self.word.load(Ordering::Acquire);
        if word > LAST_CODE {
            // SAFETY: `&mut self`: nobody else can read the word any more, and a word above
            // the codes is a box published by `set`, owned by this slot.
            drop(unsafe { Box::from_raw(word as *mut CancelReason) });
        }
    }
}

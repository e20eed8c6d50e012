//! [`Metrics`]: counters every executor keeps, and that always add up.
//!
//! The plain idea: one atomic counter per event (spawned, polled, each kind of ending),
//! bumped with `fetch_add` where the event happens and summed into a [`Metrics`] snapshot.
//! [`Counters`] keeps one such set of counters per counting thread instead of one in
//! total, which is an optimisation (in `thread_slots.rs`): each thread writes its own
//! slot with a plain load and store, and the snapshot adds the slots up.

mod thread_slots;

use std::time::Duration;

use crate::hook::TaskExit;
use crate::loom::AtomicU64;
use crate::loom::Ordering::*;
use thread_slots::{SHARED_SLOT, SLOTS, slot};

/// The calling thread's poll counter in one [`Counters`], looked up once
/// ([`Counters::poll_counter`]): an executor resolves it for a batch of polls and hands it
/// to each, which counts itself with [`PollCounter::polled`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct PollCounter<'a> {
    counter: &'a AtomicU64,
    shared: bool,
}

impl PollCounter<'_> {
    /// One poll.
    #[inline]
    pub(crate) fn polled(self) {
        if self.shared {
            self.counter.fetch_add(1, Release);
        } else {
            // The lease makes this thread the only writer (see `Counters::bump`).
            self.counter.store(self.counter.load(Relaxed) + 1, Release);
        }
    }
}

/// A snapshot of an executor's task counters, from [`LocalExecutor::metrics`] or
/// [`Executor::metrics`].
///
/// The counters add up at every snapshot:
/// `spawned == completed + panicked + errored + cancelled + live`.
///
/// [`LocalExecutor::metrics`]: crate::LocalExecutor::metrics
/// [`Executor::metrics`]: crate::Executor::metrics
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let ok = ex.spawn(async { 1 });
/// let bad = ex.spawn(async { panic!("boom") });
/// ex.block_on(async {
///     let _ = ok.await;
///     let _ = bad.await;
/// });
/// let m = ex.metrics();
/// assert_eq!((m.spawned, m.completed, m.panicked, m.live), (2, 1, 1, 0));
/// assert_eq!(m.spawned, m.completed + m.panicked + m.errored + m.cancelled + m.live);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Tasks spawned, including those refused after shutdown (they count as cancelled).
    pub spawned: u64,
    /// Tasks that finished with a value.
    pub completed: u64,
    /// Tasks that panicked (in `poll`, or in their destructor during cancellation).
    pub panicked: u64,
    /// Group tasks whose body returned `Err`.
    pub errored: u64,
    /// Tasks cancelled before they finished.
    pub cancelled: u64,
    /// Polls of tasks (the root future of `block_on` is not a task and is not counted).
    pub polls: u64,
    /// Tasks spawned but not yet finished.
    pub live: u64,
    /// Time spent inside task polls, summed over every poll so far. Counted only with
    /// [`Builder::poll_timing`](crate::Builder::poll_timing) on: zero otherwise.
    pub busy: Duration,
    /// Time tasks spent on run queues, from each spawn or wake to the poll that followed,
    /// summed over every poll so far (see [`PollTiming`](crate::PollTiming)). Counted only
    /// with [`Builder::poll_timing`](crate::Builder::poll_timing) on: zero otherwise.
    pub scheduled_wait: Duration,
}

/// One line, the identity the counters keep:
/// `spawned 10 = completed 2 + panicked 3 + errored 3 + cancelled 2 + live 0; 41 polls`.
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// ex.block_on(ex.spawn(async {})).unwrap();
/// assert_eq!(
///     ex.metrics().to_string(),
///     "spawned 1 = completed 1 + panicked 0 + errored 0 + cancelled 0 + live 0; 1 polls"
/// );
/// ```
impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spawned {} = completed {} + panicked {} + errored {} + cancelled {} + live {}; {} polls",
            self.spawned,
            self.completed,
            self.panicked,
            self.errored,
            self.cancelled,
            self.live,
            self.polls
        )
    }
}

/// One slot of counters, on a cache line of its own.
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    spawned: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    errored: AtomicU64,
    cancelled: AtomicU64,
    polls: AtomicU64,
    /// Nanoseconds in polls, with poll timing on.
    busy: AtomicU64,
    /// Nanoseconds on run queues, with poll timing on.
    waited: AtomicU64,
}

/// The atomic counters behind [`Metrics`], one slot per thread that counts (and one shared,
/// see `thread_slots.rs`), summed by [`Counters::snapshot`].
#[derive(Debug)]
pub(crate) struct Counters {
    slots: [Slot; SLOTS],
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            slots: std::array::from_fn(|_| Slot {
                spawned: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                panicked: AtomicU64::new(0),
                errored: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                polls: AtomicU64::new(0),
                busy: AtomicU64::new(0),
                waited: AtomicU64::new(0),
            }),
        }
    }

    /// Adds one to `field` of this thread's slot. Release: a snapshot that reads the new
    /// value (acquire) also sees everything this thread did before, such as counting the
    /// spawn of the task whose end this is.
    #[inline(always)]
    fn bump(&self, field: impl FnOnce(&Slot) -> &AtomicU64) {
        let index = slot();
        let counter = field(&self.slots[index]);
        if index == SHARED_SLOT {
            counter.fetch_add(1, Release);
        } else {
            // This thread holds the lease on `index`: it is the only writer, so a load and
            // a store cannot lose an update (readers only load).
            counter.store(counter.load(Relaxed) + 1, Release);
        }
    }

    /// A timed poll ran for `busy` nanoseconds, after `waited` nanoseconds on a queue.
    pub(crate) fn timed(&self, busy: u64, waited: u64) {
        let index = slot();
        let slot = &self.slots[index];
        for (counter, amount) in [(&slot.busy, busy), (&slot.waited, waited)] {
            if index == SHARED_SLOT {
                counter.fetch_add(amount, Release);
            } else {
                // The lease makes this thread the only writer (see `bump`).
                counter.store(counter.load(Relaxed) + amount, Release);
            }
        }
    }

    #[inline]
    pub(crate) fn spawned(&self) {
        self.bump(|s| &s.spawned);
    }

    /// The calling thread's poll counter (see [`PollCounter`]).
    #[inline]
    pub(crate) fn poll_counter(&self) -> PollCounter<'_> {
        let index = slot();
        PollCounter {
            counter: &self.slots[index].polls,
            shared: index == SHARED_SLOT,
        }
    }

    #[inline]
    pub(crate) fn ended(&self, exit: &TaskExit<'_>) {
        match exit {
            TaskExit::Completed => self.bump(|s| &s.completed),
            TaskExit::Failed(e) if e.is_panic() => self.bump(|s| &s.panicked),
            TaskExit::Failed(_) => self.bump(|s| &s.errored),
            TaskExit::Cancelled(_) => self.bump(|s| &s.cancelled),
        }
    }

    /// Reads every slot's endings first, then every slot's `spawned`: a task counted as
    /// ended was counted as spawned before it (its spawn happened before its end, and the
    /// acquire read of the end makes the earlier increment visible to the later reads), so
    /// `live` never goes negative and the counters add up.
    pub(crate) fn snapshot(&self) -> Metrics {
        let sum = |field: fn(&Slot) -> &AtomicU64, order| -> u64 {
            self.slots.iter().map(|s| field(s).load(order)).sum()
        };
        let completed = sum(|s| &s.completed, Acquire);
        let panicked = sum(|s| &s.panicked, Acquire);
        let errored = sum(|s| &s.errored, Acquire);
        let cancelled = sum(|s| &s.cancelled, Acquire);
        let spawned = sum(|s| &s.spawned, Acquire);
        Metrics {
            spawned,
            completed,
            panicked,
            errored,
            cancelled,
            polls: sum(|s| &s.polls, Relaxed),
            live: spawned - (completed + panicked + errored + cancelled),
            busy: Duration::from_nanos(sum(|s| &s.busy, Relaxed)),
            scheduled_wait: Duration::from_nanos(sum(|s| &s.waited, Relaxed)),
        }
    }
}

//! [`Metrics`]: counters every executor keeps, and that always add up.

use crate::loom::AtomicU64;
use crate::loom::Ordering::*;

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
}

/// The atomic counters behind [`Metrics`].
#[derive(Debug)]
pub(crate) struct Counters {
    spawned: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    errored: AtomicU64,
    cancelled: AtomicU64,
    polls: AtomicU64,
}

/// How a task ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    Panicked,
    Errored,
    Cancelled,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            spawned: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            errored: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        }
    }

    pub(crate) fn spawned(&self) {
        self.spawned.fetch_add(1, SeqCst);
    }

    pub(crate) fn polled(&self) {
        self.polls.fetch_add(1, Relaxed);
    }

    pub(crate) fn ended(&self, ending: Ending) {
        let counter = match ending {
            Ending::Completed => &self.completed,
            Ending::Panicked => &self.panicked,
            Ending::Errored => &self.errored,
            Ending::Cancelled => &self.cancelled,
        };
        counter.fetch_add(1, SeqCst);
    }

    /// Reads the endings first, then `spawned`: every task counted as ended was counted as
    /// spawned before it, so `live` never goes negative.
    pub(crate) fn snapshot(&self) -> Metrics {
        let completed = self.completed.load(SeqCst);
        let panicked = self.panicked.load(SeqCst);
        let errored = self.errored.load(SeqCst);
        let cancelled = self.cancelled.load(SeqCst);
        let spawned = self.spawned.load(SeqCst);
        Metrics {
            spawned,
            completed,
            panicked,
            errored,
            cancelled,
            polls: self.polls.load(Relaxed),
            live: spawned - (completed + panicked + errored + cancelled),
        }
    }
}

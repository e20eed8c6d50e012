//! [`Metrics`]: counters every executor keeps, and that always add up.

use std::cell::Cell;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

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

/// How many slots the counters are spread over.
const SHARDS: usize = 8;

/// One slot of counters, on a cache line of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    spawned: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    errored: AtomicU64,
    cancelled: AtomicU64,
    polls: AtomicU64,
}

crate::loom::thread_local! {
    /// This thread's counter slot (`usize::MAX` until first used).
    static SHARD: Cell<usize> = Cell::new(usize::MAX);
}

/// The slot this thread counts in. Threads take slots round-robin, so the workers of a
/// pool each bump a cache line of their own instead of fighting over one: with one shared
/// line, two workers yielding in a loop spent about a third of their time on the poll
/// counter alone.
fn shard() -> usize {
    static NEXT: StdAtomicUsize = StdAtomicUsize::new(0);
    SHARD
        .try_with(|slot| {
            if slot.get() == usize::MAX {
                slot.set(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS);
            }
            slot.get()
        })
        .unwrap_or(0)
}

/// The atomic counters behind [`Metrics`], spread over per-thread slots and summed by
/// [`Counters::snapshot`].
#[derive(Debug)]
pub(crate) struct Counters {
    shards: [Shard; SHARDS],
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
            shards: std::array::from_fn(|_| Shard {
                spawned: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                panicked: AtomicU64::new(0),
                errored: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                polls: AtomicU64::new(0),
            }),
        }
    }

    fn mine(&self) -> &Shard {
        &self.shards[shard()]
    }

    pub(crate) fn spawned(&self) {
        self.mine().spawned.fetch_add(1, SeqCst);
    }

    pub(crate) fn polled(&self) {
        self.mine().polls.fetch_add(1, Relaxed);
    }

    pub(crate) fn ended(&self, ending: Ending) {
        let shard = self.mine();
        let counter = match ending {
            Ending::Completed => &shard.completed,
            Ending::Panicked => &shard.panicked,
            Ending::Errored => &shard.errored,
            Ending::Cancelled => &shard.cancelled,
        };
        counter.fetch_add(1, SeqCst);
    }

    /// Reads every slot's endings first, then every slot's `spawned`: a task counted as
    /// ended was counted as spawned before it (its spawn happened before its end, and the
    /// `SeqCst` read of the end makes the earlier increment visible to the later reads), so
    /// `live` never goes negative and the counters add up.
    pub(crate) fn snapshot(&self) -> Metrics {
        let sum = |field: fn(&Shard) -> &AtomicU64, order| -> u64 {
            self.shards.iter().map(|s| field(s).load(order)).sum()
        };
        let completed = sum(|s| &s.completed, SeqCst);
        let panicked = sum(|s| &s.panicked, SeqCst);
        let errored = sum(|s| &s.errored, SeqCst);
        let cancelled = sum(|s| &s.cancelled, SeqCst);
        let spawned = sum(|s| &s.spawned, SeqCst);
        Metrics {
            spawned,
            completed,
            panicked,
            errored,
            cancelled,
            polls: sum(|s| &s.polls, Relaxed),
            live: spawned - (completed + panicked + errored + cancelled),
        }
    }
}

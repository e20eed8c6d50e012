//! Per-task poll timing, when [`Builder::poll_timing`](crate::Builder::poll_timing) is on:
//! [`PollTiming`] (what a task's exit carries) and [`TimingCell`] (where the task keeps it
//! while it runs).
//!
//! # Clock reads
//!
//! With timing on, a task reads the clock when it is put on a run queue (spawned, woken
//! from idle: transition 1 answering `Submit`), when a poll starts, and when it ends (the
//! end of a poll after which the task is re-queued is also when its next wait starts).
//! With timing off, no task has a cell, and the executor's hot paths do not look for one:
//! the poll and the wake test one flag in the owner that also covers the tracer.
//!
//! # Fields
//!
//! Times are nanoseconds since the owner's epoch (`TaskOwner::epoch`), in atomics so that
//! the cell is `Sync`. `queued_at` is written by whoever queues the task (a waker, on any
//! thread) before the task is pushed; the push and the pop order that write before the
//! poll that reads it. Everything else is written only by the thread that holds `RUNNING`
//! (rule 1 in task/mod.rs), and read by that thread when the task finishes, so relaxed
//! loads and stores (no read-modify-write) suffice. These are plain `std` atomics even
//! under loom: they carry no synchronisation that a model would have to explore.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How a task spent its life, recorded when [`Builder::poll_timing`] is on and read from
/// its exit with [`TaskExit::timing`].
///
/// * `polls`: how many times it was polled (a cancelled task's last step, which drops its
///   future without polling it, is not a poll);
/// * `busy`: the time spent inside those polls (for the last poll of a task that
///   finishes, this includes dropping its future);
/// * `longest`: the longest of them;
/// * `scheduled_wait`: the total time it sat on a run queue, from being spawned or woken
///   (or re-queued after a poll in which it was woken) to the poll that followed;
/// * `first_poll_delay`: from its spawn to its first poll (the first part of
///   `scheduled_wait`); zero if it was never polled.
///
/// [`Builder::poll_timing`]: crate::Builder::poll_timing
/// [`TaskExit::timing`]: crate::TaskExit::timing
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let busy = Arc::new(Mutex::new(Duration::ZERO));
/// let ex = warden::Builder::new()
///     .poll_timing(true)
///     .on_task_exit({
///         let busy = busy.clone();
///         move |_info, exit| {
///             let timing = exit.timing().expect("poll timing is on");
///             assert_eq!(timing.polls, 2);
///             *busy.lock().unwrap() += timing.busy;
///         }
///     })
///     .build_local();
/// ex.block_on(ex.spawn(async {
///     std::thread::sleep(Duration::from_millis(5)); // blocks inside a poll: busy time
///     warden::yield_now().await;
/// }))
/// .unwrap();
/// assert!(*busy.lock().unwrap() >= Duration::from_millis(5));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollTiming {
    /// How many times the task was polled.
    pub polls: u64,
    /// Time spent inside its polls.
    pub busy: Duration,
    /// The longest single poll.
    pub longest: Duration,
    /// Total time spent queued, from each spawn or wake to the poll that followed.
    pub scheduled_wait: Duration,
    /// From the spawn to the first poll (zero if never polled).
    pub first_poll_delay: Duration,
}

/// A task's timing record while it lives (see the module doc for who writes what).
pub(crate) struct TimingCell {
    /// When the task was last put on a run queue, if its wait has not been counted yet.
    queued_at: AtomicU64,
    busy: AtomicU64,
    longest: AtomicU64,
    waited: AtomicU64,
    first_poll_delay: AtomicU64,
}

/// Nanoseconds from `epoch` to `at` (0 if `at` is earlier).
#[inline]
pub(crate) fn nanos_since(epoch: Instant, at: Instant) -> u64 {
    // Seconds and nanoseconds apart rather than `as_nanos`, which is 128-bit arithmetic;
    // 2^64 ns is 584 years, so the sum does not overflow.
    let since = at.saturating_duration_since(epoch);
    since.as_secs() * 1_000_000_000 + u64::from(since.subsec_nanos())
}

/// The moment a timed poll started, and how long the task had waited for it.
pub(crate) struct PollStarted {
    at: u64,
    /// The wait that ended with this poll, in nanoseconds.
    pub(crate) waited: u64,
}

impl TimingCell {
    /// A cell for a task spawned now: its first wait starts here.
    pub(crate) fn new(epoch: Instant) -> Box<TimingCell> {
        Box::new(TimingCell {
            queued_at: AtomicU64::new(nanos_since(epoch, Instant::now())),
            busy: AtomicU64::new(0),
            longest: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            first_poll_delay: AtomicU64::new(0),
        })
    }

    /// The task is being put on a run queue now (transition 1 said `Submit`).
    pub(crate) fn queued(&self, epoch: Instant) {
        self.queued_at
            .store(nanos_since(epoch, Instant::now()), Relaxed);
    }

    /// A poll starts: counts the wait that ends here. `first` for the task's first poll.
    /// The caller holds `RUNNING`.
    pub(crate) fn poll_started(&self, epoch: Instant, first: bool) -> PollStarted {
        let at = nanos_since(epoch, Instant::now());
        let waited = at.saturating_sub(self.queued_at.load(Relaxed));
        self.waited
            .store(self.waited.load(Relaxed) + waited, Relaxed);
        if first {
            self.first_poll_delay.store(waited, Relaxed);
        }
        PollStarted { at, waited }
    }

    /// The poll that began at `started` ended: counts it, and starts the next wait here
    /// (the right start if the task is re-queued because it was woken during the poll; a
    /// later wake of an idle task overwrites it). Returns the poll's length in nanoseconds.
    /// The caller holds `RUNNING`.
    pub(crate) fn poll_ended(&self, epoch: Instant, started: &PollStarted) -> u64 {
        let end = nanos_since(epoch, Instant::now());
        let busy = end.saturating_sub(started.at);
        self.busy.store(self.busy.load(Relaxed) + busy, Relaxed);
        if busy > self.longest.load(Relaxed) {
            self.longest.store(busy, Relaxed);
        }
        self.queued_at.store(end, Relaxed);
        busy
    }

    /// The record so far, with `polls` from the task's header. For the thread that holds
    /// `RUNNING` (or that finished the task).
    pub(crate) fn read(&self, polls: u64) -> PollTiming {
        PollTiming {
            polls,
            busy: Duration::from_nanos(self.busy.load(Relaxed)),
            longest: Duration::from_nanos(self.longest.load(Relaxed)),
            scheduled_wait: Duration::from_nanos(self.waited.load(Relaxed)),
            first_poll_delay: Duration::from_nanos(self.first_poll_delay.load(Relaxed)),
        }
    }
}

//! What the live-task dump reads from a task: [`TaskSnapshot`] and [`TaskState`], and the
//! *poll stamp* that says where and when a task's last poll began.
//!
//! # The poll stamp
//!
//! A dump says how long a running task has been running and how long an idle one has been
//! idle, yet reading the clock on every poll would cost more than the rest of a short poll.
//! So every executor keeps a [`PollClock`] per worker: the worker's index and a time read
//! now and then, not per poll. The executor hands the clock's current stamp (one word: the
//! time in microseconds since the owner's epoch, and the worker index) to each poll
//! (`RawTask::run`), which stores it in the task's header before transition 2: a plain
//! store to a line the poll touches anyway.
//!
//! When the clock is read is the executor's choice, with one rule: a stamp is never later
//! than the poll it stamps, so "running for" and "idle for" are never understated. The
//! `LocalExecutor` reads it once per batch of at most 64 polls (it reads the clock there
//! anyway, for its timers); a pool worker once every 64 polls and after each park. A stamp
//! can therefore be older than its poll by up to 63 other polls' worth of time, which for
//! ordinary polls is microseconds; both numbers in the dump are upper bounds to that extent.
//! An idle task's "idle for" is measured from the start of its last poll.
//!
//! The per-task poll count is a plain load and store too: only the thread that holds
//! `RUNNING` writes it (rule 1 in task/mod.rs). Both are `std` atomics even under loom:
//! they carry no synchronisation a model would have to explore.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{GroupId, Header, Location, TaskId, TaskInfo};

/// Bits of a poll stamp that hold the worker index.
const WORKER_BITS: u32 = 12;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;

/// A worker's coarse clock: the stamp each task it polls gets.
pub(crate) struct PollClock {
    epoch: Instant,
    stamp: u64,
}

impl PollClock {
    /// A clock for worker `worker` (indices above 4 095 share 4 095), read at `now`.
    pub(crate) fn new(epoch: Instant, worker: usize, now: Instant) -> PollClock {
        let mut clock = PollClock {
            epoch,
            stamp: (worker as u64).min(WORKER_MASK),
        };
        clock.set(now);
        clock
    }

    /// Moves the clock to `now`.
    #[inline]
    pub(crate) fn set(&mut self, now: Instant) {
        // Seconds and microseconds apart rather than `as_micros` (128-bit arithmetic).
        let since = now.saturating_duration_since(self.epoch);
        let micros = since.as_secs() * 1_000_000 + u64::from(since.subsec_micros());
        self.stamp = micros << WORKER_BITS | (self.stamp & WORKER_MASK);
    }

    /// The stamp for a task about to be polled.
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        self.stamp
    }
}

/// What a live task is doing, as a [`TaskSnapshot`] saw it.
///
/// The durations come from a coarse clock (see [`TaskDump`](crate::TaskDump)): they are
/// never less than the truth, and may be more by the length of a few dozen short polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// On a run queue, waiting for a worker (spawned and not yet polled, or woken).
    Queued,
    /// Being polled, by worker `worker` (always 0 on a `LocalExecutor`), for `for_` so far.
    /// A task woken during its poll is still `Running`.
    Running {
        /// The worker's index, from 0.
        worker: usize,
        /// How long this poll has been running.
        for_: Duration,
    },
    /// Waiting to be woken; its last poll began `since` ago.
    Idle {
        /// How long ago its last poll began.
        since: Duration,
    },
}

/// One live task, as a [`TaskDump`](crate::TaskDump) saw it.
///
/// # Examples
///
/// ```
/// use warden::TaskState;
///
/// let ex = warden::LocalExecutor::new();
/// let task = ex.spawn_named("waiter", std::future::pending::<()>());
/// ex.run_until_idle(); // polled once: now idle
/// let dump = ex.dump();
/// let waiter = dump.iter().next().unwrap();
/// assert_eq!(waiter.id(), task.id());
/// assert_eq!(waiter.name(), Some("waiter"));
/// assert_eq!(waiter.polls(), 1);
/// assert!(matches!(waiter.state(), TaskState::Idle { .. }));
/// ```
#[derive(Clone)]
pub struct TaskSnapshot {
    info: TaskInfo,
    state: TaskState,
    polls: u64,
    has_waker: bool,
}

impl TaskSnapshot {
    /// Reads `header` at `now` (on the owner's clock: microseconds since its epoch); `None`
    /// if the task has completed.
    pub(crate) fn read(header: &Header, now: u64) -> Option<TaskSnapshot> {
        // The stamp is stored before the poll's transition 2, which is a release: a state
        // that shows that poll shows its stamp.
        let word = header.state.load();
        if word.is_complete() {
            return None;
        }
        let stamp = header.last_poll.load(Relaxed);
        let elapsed = Duration::from_micros(now.saturating_sub(stamp >> WORKER_BITS));
        let state = if word.is_running() {
            TaskState::Running {
                worker: (stamp & WORKER_MASK) as usize,
                for_: elapsed,
            }
        } else if word.is_scheduled() {
            TaskState::Queued
        } else {
            TaskState::Idle { since: elapsed }
        };
        Some(TaskSnapshot {
            info: header.info.clone(),
            state,
            polls: header.polls.load(Relaxed),
            has_waker: waker_exists(header),
        })
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.info.id()
    }

    /// Its name, if it was spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.info.name()
    }

    /// Where it was spawned.
    pub fn spawned_at(&self) -> Location {
        self.info.spawned_at()
    }

    /// The task that spawned it, if it was spawned from inside a task.
    pub fn parent(&self) -> Option<TaskId> {
        self.info.parent()
    }

    /// Its group, if it is a group member.
    pub fn group(&self) -> Option<GroupId> {
        self.info.group()
    }

    /// What it was doing when the dump was taken.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// How many times it has been polled.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// Whether a waker for it exists anywhere (a future, a channel or a timer holds one).
    /// `false` for an idle task means that only a cancel can ever run it again (a detached
    /// task in no group is then freed as a lost waker; see [`StallKind`](crate::StallKind)).
    pub fn has_waker(&self) -> bool {
        self.has_waker
    }

    /// All of the above that [`TaskInfo`] holds (id, name, spawn site, parent, group).
    pub fn info(&self) -> &TaskInfo {
        &self.info
    }
}

/// Whether a waker for the task exists: the waker count in its state word (see
/// `waker.rs`). The waker lent to a running poll is not counted.
fn waker_exists(header: &Header) -> bool {
    header.state.load().wakers() > 0
}

impl fmt::Debug for TaskSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSnapshot")
            .field("id", &self.info.id())
            .field("name", &self.info.name())
            .field("spawned_at", &self.info.spawned_at())
            .field("parent", &self.info.parent())
            .field("group", &self.info.group())
            .field("state", &self.state)
            .field("polls", &self.polls)
            .field("has_waker", &self.has_waker)
            .finish()
    }
}

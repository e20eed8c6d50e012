//! Misbehaving tasks: [`Stall`] reports, for polls that block their thread and for tasks
//! that nothing can ever wake.
//!
//! Two kinds of misbehaviour hurt an async program without failing anything:
//!
//! * **A poll that blocks.** A synchronous loop, a blocking read or a lock held across a
//!   long computation keeps its thread from running any other task. The *watchdog*
//!   ([`watchdog`]) samples which task each polling thread is in, and a poll that it finds
//!   in the same poll for [`Builder::blocking_threshold`](crate::Builder::blocking_threshold)
//!   is reported while it still runs ([`StallKind::Blocking`] with `finished: false`), then
//!   once more, by the polling thread, when it returns (`finished: true`, with the total).
//! * **A task that nothing can wake.** A task that returned `Pending`, is not queued, and
//!   holds no waker anywhere can only end by cancellation. The task core counts each task's
//!   live wakers in its state word (`task/waker.rs`), so the moment the last one goes (or
//!   the poll that left none returns) is seen in one atomic operation, together with the
//!   rest of the state. A detached task in no group is then freed ([`StallKind::LostWaker`],
//!   cancelled with [`CancelReason::LostWaker`](crate::CancelReason::LostWaker)); one whose
//!   handle another task awaits is a deadlock ([`StallKind::Deadlock`]), reported and left.
//!
//! Both go to [`Builder::on_stall`](crate::Builder::on_stall); the default reports a warning
//! (through `log`, or on stderr with no logger installed).

pub(crate) mod watchdog;

use std::fmt;
use std::time::Duration;

use crate::task::{TaskId, TaskInfo};

/// A task that misbehaves: what [`Builder::on_stall`](crate::Builder::on_stall) is given.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use warden::StallKind;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let ex = warden::Builder::new()
///     .blocking_threshold(Some(Duration::from_millis(20)))
///     .on_stall({
///         let seen = seen.clone();
///         move |stall| seen.lock().unwrap().push(stall.kind().clone())
///     })
///     .build_local();
/// ex.block_on(ex.spawn(async { std::thread::sleep(Duration::from_millis(200)) }))
///     .unwrap();
/// let seen = seen.lock().unwrap();
/// assert!(seen.iter().any(|k| matches!(k, StallKind::Blocking { finished: true, .. })));
/// ```
#[derive(Debug, Clone)]
pub struct Stall {
    task: TaskInfo,
    kind: StallKind,
    thread: Option<String>,
}

/// What a [`Stall`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StallKind {
    /// One poll of the task has run for `elapsed` (at least the blocking threshold) without
    /// returning. Reported once while it still runs (`finished: false`), and once more when
    /// it returns (`finished: true`, `elapsed` then the poll's whole length as seen by the
    /// watchdog).
    Blocking {
        /// How long the poll has run (or ran), measured from when the watchdog first saw it.
        elapsed: Duration,
        /// `true` in the report made when the poll returned.
        finished: bool,
    },
    /// The task returned `Pending`, is not queued, and no waker for it exists: nothing can
    /// wake it. It was detached and in no group, so nothing could cancel it either: it has
    /// been freed (its future dropped), and ends cancelled with
    /// [`CancelReason::LostWaker`](crate::CancelReason::LostWaker).
    LostWaker,
    /// Nothing can wake the task, and task `awaited_by` awaits its handle: both wait
    /// forever unless something cancels one of them. The task is left as it is.
    Deadlock {
        /// The task that awaits the stalled task's handle.
        awaited_by: TaskId,
    },
}

impl Stall {
    pub(crate) fn new(task: TaskInfo, kind: StallKind, thread: Option<String>) -> Stall {
        Stall { task, kind, thread }
    }

    /// The task that misbehaves.
    pub fn task(&self) -> &TaskInfo {
        &self.task
    }

    /// What it does.
    pub fn kind(&self) -> &StallKind {
        &self.kind
    }

    /// For a blocking poll: the name of the thread the poll blocks (a pool worker's, or
    /// the thread that drives a `LocalExecutor`), if it has one.
    pub fn thread(&self) -> Option<&str> {
        self.thread.as_deref()
    }
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = &self.task;
        let site = task.spawned_at();
        let thread = self.thread.as_deref().unwrap_or("an unnamed thread");
        match &self.kind {
            StallKind::Blocking {
                elapsed,
                finished: false,
            } => write!(
                f,
                "{task} (spawned at {site}) has been blocking thread {thread} in one poll for {elapsed:?} \
                 (and counting): no other task runs on that thread meanwhile; move blocking \
                 work to a thread of its own"
            ),
            StallKind::Blocking {
                elapsed,
                finished: true,
            } => write!(
                f,
                "{task} (spawned at {site}) blocked thread {thread} in one poll for {elapsed:?}; it has returned"
            ),
            StallKind::LostWaker => write!(
                f,
                "{task} (spawned at {site}) returned Pending and no waker for it is left \
                 anywhere; with no handle and no group, nothing could ever wake or cancel it, \
                 so it was freed (cancelled with reason LostWaker); a future must keep the \
                 waker it was given until it wakes it"
            ),
            StallKind::Deadlock { awaited_by } => write!(
                f,
                "deadlock: task {awaited_by} awaits the handle of {task} (spawned at {site}), which returned \
                 Pending and holds no waker: nothing can wake it; cancel it through its \
                 handle or a group"
            ),
        }
    }
}

/// The stall hook's type.
pub(crate) type StallHookFn = dyn Fn(&Stall) + Send + Sync;

/// The default stall hook: one warning naming the task, its id, spawn site, the thread
/// and how long so far.
pub(crate) fn report_stall(stall: &Stall) {
    crate::report::warning!("{stall}");
}

/// Calls `hook` with `stall`, catching (and logging) a panic inside it.
pub(crate) fn call_hook(hook: &StallHookFn, stall: &Stall) {
    if let Err(payload) = crate::failure::catch_panics(crate::Backtraces::Off, || hook(stall)) {
        crate::report::error!(
            "the stall hook panicked ({}) for {}",
            crate::failure::payload_message(&*payload),
            stall.task()
        );
        crate::failure::drop_payload(payload);
    }
}

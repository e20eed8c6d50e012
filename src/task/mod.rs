//! The task core: what a task is, independent of any executor.
//!
//! A task is one heap block (`Arc<Task<F, T>>`, in [`harness`]) holding a [`Header`] and a
//! *stage*: first the future, then its result. Executors see tasks only as [`TaskRef`]
//! (`Arc<dyn RawTask>`) and talk back through the [`Schedule`] trait; a
//! [`JoinHandle`](crate::JoinHandle) is a typed view of the same block. Groups attach
//! through the [`GroupLink`] trait. Nothing in this module knows which executor runs it.
//!
//! # State
//!
//! The header's state word (see [`state`]) has six bits for the lifecycle: `SCHEDULED`,
//! `RUNNING`, `COMPLETE`, `CANCELLED`, `HANDLE` and `JOIN_WAKER`; a seventh,
//! `STALL_REPORTED`, and above it the count of the task's live wakers (`waker.rs`, "Waker
//! accounting"; `lost.rs` for what happens when it reaches zero while the task is idle).
//! The lifecycle, with the transitions as named in `state.rs`:
//!
//! ```text
//!                   spawn
//!                     |
//!                     v            (2) transition_to_running
//!   +------------> SCHEDULED ----------------------------------+
//!   |                 ^                                        |
//!   | (1) notified    | (3) transition_to_idle -> Requeue      v
//!   |                 +------------------------------------ RUNNING --(6) complete--> COMPLETE
//!   |                                                       |  ^  |                   (value,
//! IDLE <------------ (3) transition_to_idle -> Idle --------+  |  |                    failure or
//!   ^                                                          |  |                    cancelled)
//!   +----- (4) notified during the poll: SCHEDULED|RUNNING ----+  |
//!                                                                 |
//!   (5) cancel requested: CANCELLED|SCHEDULED, then (2) returns Cancel and the
//!       poller drops the future instead of polling it --------------+
//!
//!   (7) drop_handle: clears HANDLE at any point; see rule 3.
//! ```
//!
//! # Fields
//!
//! 1. **The future** (the stage while running) is touched only by the thread that holds
//!    `RUNNING`: it polls it, or drops it. `RUNNING` is taken by transition 2, which only
//!    the thread that popped the task off a run queue performs (or the spawning thread,
//!    for a task refused after shutdown that never reached a queue), so there is never
//!    more than one.
//! 2. **The result** is written into the stage by the `RUNNING` thread, before transition 6
//!    publishes it (release) together with `COMPLETE`. If `HANDLE` is already clear when
//!    the task finishes, it is not written at all: nobody could ever read it, since
//!    `HANDLE` is never set again, and the `RUNNING` thread drops it where it is.
//! 3. **After `COMPLETE`**, the result belongs to exactly one party: the handle, if
//!    `HANDLE` was still set at transition 6; otherwise the completing thread. Transition 6
//!    and transition 7 are both single atomic operations on the same word, so whichever
//!    comes second learns that the other has happened: if the handle is dropped after
//!    completion, the handle drops the result; if completion comes after the handle was
//!    dropped, the completing thread drops it.
//! 4. **The cancel reason** is a set-once slot ([`cancel::CancelSlot`]), written before
//!    `CANCELLED` is set; the first reason wins.
//! 5. **The join waker** sits behind a mutex. The handle stores its waker, then sets the
//!    `JOIN_WAKER` bit, an atomic operation on the state word that also re-checks
//!    `COMPLETE`; the completing thread sets `COMPLETE`, and takes the waker if
//!    `JOIN_WAKER` was set before. Both are operations on one word, so one of them comes
//!    second and sees the other: either the handle sees `COMPLETE` or the completer sees
//!    the waker, and no wake-up is lost. A handle that never had to wait (the task was done
//!    when it looked) never sets the bit, and nobody locks the slot.
//!
//! # Safety
//!
//! The stage is an `UnsafeCell`: the rules above are what make each access exclusive, and
//! every `unsafe` block in [`harness`] names the rule it relies on. A task may hold a
//! future or output that is not `Send`; [`spawn_unchecked`] is `unsafe` for exactly that
//! reason, and its contract keeps such a task on one thread.

mod asymmetric_fence;
mod cancel;
mod cancel_slot;
pub(crate) mod current;
mod harness;
mod header;
mod id;
mod join;
mod location;
mod lost;
mod owner;
mod poll_slot;
pub(crate) mod slab;
mod snapshot;
pub(crate) mod state;
mod timing;
mod waker;

use std::future::Future;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

pub use id::{GroupId, TaskId, TaskInfo};
pub use join::JoinHandle;
pub use location::Location;
pub use snapshot::{TaskSnapshot, TaskState};
pub use timing::PollTiming;

pub(crate) use cancel::{cancel, cancel_all};
pub(crate) use header::Header;
pub(crate) use owner::{OwnerConfig, Placement, TaskOwner};
pub(crate) use poll_slot::{PollSlot, prepare_watchdog};
pub(crate) use snapshot::PollClock;

use crate::failure::{BoxError, CancelReason, TaskError};
use crate::hook::{FailureWatch, TaskExit};
use crate::metrics::PollCounter;

/// An executor's reference to a task, with the type of its future erased.
pub(crate) type TaskRef = Arc<dyn RawTask>;

/// What executors can do with a task.
///
/// No `'static` supertrait: every task is `'static` (spawning requires it), and a
/// [`TaskRef`] is `'static` by its default object lifetime, but a supertrait would make the
/// typed view behind a [`JoinHandle`] demand `T: 'static` of every use of the handle, and so
/// of every generic type that holds one.
pub(crate) trait RawTask: Send + Sync {
    /// The type-independent part of the task.
    fn header(&self) -> &Header;

    /// Runs one step: transition 2, then poll the future (or drop it if cancelled), then
    /// store the result or go idle. Call only with a reference popped off a run queue, or
    /// (`spawn_unchecked`, after shutdown) with a task that was never queued.
    ///
    /// Returns the task itself if it was woken during the poll and must go back on the run
    /// queue: the caller, which is the executor, queues it (so the requeue costs no
    /// reference counting at all).
    ///
    /// `poller` is what the polling executor knows of this poll (see [`Poller`]).
    #[must_use = "a task returned by run must be queued again"]
    fn run(self: Arc<Self>, poller: &Poller<'_>) -> Option<TaskRef>;

    /// [`run`](Self::run), keeping the task's last poll stamp and with no watchdog slot:
    /// for the steps that are no worker's poll (a shutdown drain, a task refused after
    /// shutdown).
    #[must_use = "a task returned by run must be queued again"]
    fn run_unstamped(self: Arc<Self>) -> Option<TaskRef> {
        // The poller borrows the owner from a second reference to the scheduler: the task
        // itself is handed to `run` by value.
        let scheduler = Arc::clone(&self.header().scheduler);
        let stamp = self
            .header()
            .last_poll
            .load(std::sync::atomic::Ordering::Relaxed);
        let poller = Poller::new(scheduler.owner(), None, stamp);
        self.run(&poller)
    }
}

/// What an executor hands each poll it makes ([`RawTask::run`]): what it knows of the
/// polling thread, gathered once for a batch of polls, so that a poll looks none of it up.
pub(crate) struct Poller<'a> {
    /// The owner of the tasks this executor polls: what `scheduler.owner()` returns for
    /// each of them, without the virtual call.
    pub(crate) owner: &'a TaskOwner,
    /// The polling thread's slot for the watchdog, if one watches it: the poll is announced
    /// there, and a poll the watchdog reported as blocking is reported again, finished,
    /// when it returns.
    pub(crate) slot: Option<&'a PollSlot>,
    /// The executor's poll stamp for this poll (see `snapshot.rs`), stored in the header
    /// before transition 2.
    pub(crate) stamp: u64,
    /// The polling thread's poll counter in the owner's metrics.
    pub(crate) polls: PollCounter<'a>,
}

impl<'a> Poller<'a> {
    /// A poller for the calling thread.
    #[inline]
    pub(crate) fn new(owner: &'a TaskOwner, slot: Option<&'a PollSlot>, stamp: u64) -> Self {
        Poller::with_counter(owner, slot, stamp, owner.metrics.poll_counter())
    }

    /// A poller for the calling thread, whose poll counter the caller looked up already.
    #[inline]
    pub(crate) fn with_counter(
        owner: &'a TaskOwner,
        slot: Option<&'a PollSlot>,
        stamp: u64,
        polls: PollCounter<'a>,
    ) -> Self {
        Poller {
            owner,
            slot,
            stamp,
            polls,
        }
    }
}

/// How a task talks to the executor that runs it.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Puts a notified task on a run queue. Called from any thread, by wakers.
    fn schedule(&self, task: TaskRef);

    /// Wakes whoever awaits a task that has just completed (its join handle's waker).
    fn wake_join_waiter(&self, waker: std::task::Waker) {
        crate::failure::wake_guarded(waker);
    }

    /// The executor's registry of live tasks, counters and error sink.
    fn owner(&self) -> &TaskOwner;

    /// Whether a future that is not `Send` may be spawned here, from this thread: `Ok` only
    /// if this executor polls and drops its tasks on the current thread alone.
    /// [`spawn_local`] relies on that (it is what [`spawn_unchecked`] requires), so an
    /// implementation answers `Ok` only when it can promise it. The default refuses.
    fn local_spawn(&self) -> Result<(), LocalSpawnRefused> {
        Err(LocalSpawnRefused::MultiThreaded)
    }

    /// Adds a timer that wakes `waker` at `deadline` (by this executor's clock); returns
    /// its key, for [`remove_timer`](Self::remove_timer).
    fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey;

    /// Removes a timer (nothing if it already fired).
    fn remove_timer(&self, key: TimerKey);

    /// `now + duration` by this executor's clock (a manual one in tests).
    fn deadline_after(&self, duration: Duration) -> Instant;

    /// Which thread frees a cancelled group's task blocks: `false` (the default) lets each
    /// member free its own as it ends, on the thread that runs it; `true` makes the
    /// cancelling thread keep them and free them, for a pool whose workers would otherwise
    /// free blocks another thread allocated (docs/performance.md, round two).
    fn cancelling_thread_frees_blocks(&self) -> bool {
        false
    }
}

/// Why [`Schedule::local_spawn`] refused a future that is not `Send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalSpawnRefused {
    /// The executor is single-threaded, but another thread owns it.
    NotTheOwnerThread,
    /// The executor runs its tasks on several threads.
    MultiThreaded,
}

/// A timer's key: its deadline, and a number that tells timers with one deadline apart.
pub(crate) type TimerKey = (Instant, u64);

/// How a task talks to its group, if it has one. Implemented in `group/mod.rs`.
pub(crate) trait GroupLink: Send + Sync + 'static {
    /// The group's id, recorded in the task's [`TaskInfo`].
    fn id(&self) -> GroupId;

    /// The task was created: remember it, so that cancelling the group can wake it.
    fn register(&self, task: &TaskRef);

    /// `Some(reason)` once the group (or an ancestor) was cancelled. Checked before every
    /// poll, so it must be cheap: an atomic load.
    fn cancel_reason(&self) -> Option<CancelReason>;

    /// For a group cancelled with [`CancelReason::SiblingFailed`]: that sibling's failure,
    /// which a cancelled member's [`TaskError`] names.
    fn sibling_failure(&self) -> Option<TaskError>;

    /// The task ended. For a failure, `watch` is its [`FailureWatch`]: the group keeps a
    /// clone so it can report the failure at `join`, or hand it on if the group is dropped
    /// without `join`.
    fn member_exited(&self, id: TaskId, exit: &TaskExit<'_>, watch: Option<&Arc<FailureWatch>>);
}

/// Everything about a task but its future.
pub(crate) struct SpawnSpec {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) location: &'static std::panic::Location<'static>,
    pub(crate) group: Option<Arc<dyn GroupLink>>,
    /// The task's handle goes to an owner that awaits it, among other things, for as long
    /// as the task runs, and cancels it when it must (a supervisor's child): waiting on it
    /// is never a deadlock, so none is reported (`lost.rs`).
    pub(crate) awaited_by_owner: bool,
}

impl SpawnSpec {
    #[track_caller]
    #[inline]
    pub(crate) fn new(name: Option<String>) -> SpawnSpec {
        SpawnSpec {
            name: name.map(Arc::from),
            location: std::panic::Location::caller(),
            group: None,
            awaited_by_owner: false,
        }
    }
}

/// Futures larger than this many bytes are boxed before they become a task.
const BOX_FUTURE_THRESHOLD: usize = 2048;

/// Creates a task for `future`, registers it with `scheduler` and queues it.
///
/// `into_result` turns the future's output into the task's result: `Ok` for a value, `Err` for
/// a failure that a group task's body returned.
///
/// If the executor is shut down, the task is created and cancelled at once with
/// [`CancelReason::Shutdown`] (its future dropped, never polled), and the handle resolves to
/// that.
///
/// # Safety
///
/// If `F` or `T` is not `Send`, the caller must guarantee that `scheduler` runs and drops
/// its tasks only on the current thread. (The returned handle is `!Send` when `T` is, and
/// the future is only ever polled or dropped inside [`RawTask::run`], so that suffices.)
pub(crate) unsafe fn spawn_unchecked<F, T>(
    future: F,
    into_result: fn(F::Output) -> Result<T, BoxError>,
    spec: SpawnSpec,
    scheduler: Arc<dyn Schedule>,
) -> JoinHandle<T>
where
    F: Future + 'static,
    T: 'static,
{
    // A large future is boxed first: the task block stays small, and no step of the task's
    // life (building it, storing its result) moves a future-sized value on the stack.
    if std::mem::size_of::<F>() > BOX_FUTURE_THRESHOLD {
        // SAFETY: forwarded from this function's own contract; boxing changes nothing
        // about which thread runs or drops the future.
        unsafe { spawn_task(Box::pin(future), into_result, spec, scheduler) }
    } else {
        // SAFETY: forwarded from this function's own contract.
        unsafe { spawn_task(future, into_result, spec, scheduler) }
    }
}

/// The body of [`spawn_unchecked`], after the boxing decision.
///
/// # Safety
///
/// As for [`spawn_unchecked`].
unsafe fn spawn_task<F, T>(
    future: F,
    into_result: fn(F::Output) -> Result<T, BoxError>,
    spec: SpawnSpec,
    scheduler: Arc<dyn Schedule>,
) -> JoinHandle<T>
where
    F: Future + 'static,
    T: 'static,
{
    crate::failure::install_panic_hook();
    let info = TaskInfo::new(
        spec.name,
        spec.location,
        current::current_task(),
        spec.group.as_ref().map(|g| g.id()),
    );
    // SAFETY: forwarded from this function's own contract.
    let task = unsafe { harness::Task::new(future, into_result, info, scheduler, spec.group) };
    let header = task.header();
    if spec.awaited_by_owner {
        // As if its deadlock had been reported already: none will be.
        header.state.mark_stall_reported();
    }
    let owner = header.scheduler.owner();
    if owner.poll_timing {
        // Before the task is queued: its first wait starts here.
        let _ = header.timing.set(timing::TimingCell::new(owner.epoch));
    }
    owner.metrics.spawned();
    if let Some(tracer) = &owner.tracer {
        tracer.spawn(&header.info);
    }
    let task_ref: TaskRef = task.clone();
    if let Some(group) = &header.group {
        group.register(&task_ref);
    }
    match owner.insert(&task_ref) {
        Ok(()) => header.scheduler.schedule(task_ref),
        Err(_closed) => {
            // The executor has shut down: the task never runs. Run it once here so that the
            // normal cancel path drops the future and resolves the handle.
            cancel::request(header, CancelReason::Shutdown);
            let requeue = task_ref.run_unstamped();
            debug_assert!(requeue.is_none(), "a cancelled task is never re-queued");
        }
    }
    JoinHandle::new(task)
}

/// Spawns a `Send` future; see [`spawn_unchecked`].
pub(crate) fn spawn<F, T>(
    future: F,
    into_result: fn(F::Output) -> Result<T, BoxError>,
    spec: SpawnSpec,
    scheduler: Arc<dyn Schedule>,
) -> JoinHandle<T>
where
    F: Future + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: `F` and `T` are `Send`, so the contract's condition does not apply.
    unsafe { spawn_unchecked(future, into_result, spec, scheduler) }
}

/// Spawns a future that need not be `Send`, on `scheduler` if it can run it on this thread
/// alone ([`Schedule::local_spawn`]).
///
/// # Panics
///
/// If `scheduler` refused: the message names `what` (the public function called) and says
/// why.
#[track_caller]
pub(crate) fn spawn_local<F, T>(
    future: F,
    into_result: fn(F::Output) -> Result<T, BoxError>,
    spec: SpawnSpec,
    scheduler: Arc<dyn Schedule>,
    what: &str,
) -> JoinHandle<T>
where
    F: Future + 'static,
    T: 'static,
{
    match scheduler.local_spawn() {
        // SAFETY: `local_spawn` answered `Ok`, which by its contract means the scheduler
        // polls and drops its tasks on this thread alone: what `spawn_unchecked` requires.
        Ok(()) => unsafe { spawn_unchecked(future, into_result, spec, scheduler) },
        Err(LocalSpawnRefused::NotTheOwnerThread) => panic!(
            "warden: `{what}` was called on a thread that does not own the LocalExecutor; \
             a future that is not Send can only be spawned on the executor's own thread"
        ),
        Err(LocalSpawnRefused::MultiThreaded) => panic!(
            "warden: `{what}` needs a LocalExecutor, but the current executor is a \
             multi-threaded Executor; use `spawn` with a Send future, or run a \
             LocalExecutor"
        ),
    }
}

/// `into_result` for ordinary tasks: every output is a value.
pub(crate) fn plain<T>(value: T) -> Result<T, BoxError> {
    Ok(value)
}

/// The one way a woken task reaches a run queue: after a transition answered
/// [`Notified::Submit`](state::Notified::Submit) (the task was idle, and this caller now
/// owes it a place in the queue), record the wake in the timeline and hand the task to its
/// executor. Wakers, cancels and group cancels all end here.
/// (`scheduler` is the task's own; callers that hold it elsewhere pass that copy, so the
/// task can be moved into the queue without another reference count.)
#[inline]
pub(crate) fn submit(scheduler: &dyn Schedule, task: TaskRef) {
    task.header().note_wake();
    scheduler.schedule(task);
}

/// Transition 1, as a waker does it, without the queueing: hands `task` back if it must
/// be queued (with `note_wake` and `schedule`), else drops it. For a caller that owns
/// references to the tasks it wakes (a group cancelling its members).
pub(crate) fn notify(task: TaskRef) -> Option<TaskRef> {
    match task.header().state.transition_to_notified() {
        state::Notified::Submit => Some(task),
        _ => None,
    }
}

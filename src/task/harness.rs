//! One task's heap block, and one step of running it.
//!
//! [`Task::run`](RawTask::run) is the whole life of a poll:
//!
//! 1. the cancel-at-poll check (its rules are in `cancel.rs`): transition 2
//!    (`transition_to_running`), which also sees the task's own cancel flag, then the
//!    group's flag. A cancelled task's future is dropped instead of polled.
//! 2. `catch_unwind(poll)`, with a waker borrowed from the task's own `Arc`
//!    (`borrowed_waker`: no clone, no reference-count traffic, not counted among the
//!    task's wakers, unless the future keeps a clone). A future
//!    that returns `Ready` is dropped right there, under the same guard.
//! 3. `Pending`: transition 3, re-queueing the task if it was woken meanwhile.
//!    `Ready` or a panic: drop the future (if the poll did not), store the result unless
//!    the handle is already gone, transition 6, then hand the result to whoever owns it
//!    (rule 3), and leave the owner's registry.
//!
//! Panics are data here: user code (the future's `poll` and `Drop`, the output's `Drop`)
//! always runs inside [`catch_panics`], and what it throws becomes the task's failure.

use crate::loom::{Arc, Ordering, UnsafeCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::TaskOwner;
use super::cancel::group_reason;
use super::state::{Snapshot, ToIdle, ToRunning};
use super::timing::PollTiming;
use super::{GroupLink, Header, PollSlot, Poller, RawTask, Schedule, TaskInfo, TaskRef};
use crate::Backtraces;
use crate::failure::{BoxError, CancelReason, TaskError, catch_panics, drop_logged};
use crate::hook::{FailureWatch, TaskExit};
use crate::stall::{Stall, StallKind, call_hook};

/// A task: its stage, how to turn the future's output into the task's result, and its
/// header.
///
/// Optimisation: the stage comes first (`repr(C)`), right after the reference counts, and
/// the header's hot fields right after it, so that a poll of a small future touches two
/// neighbouring cache lines rather than both ends of the block.
#[repr(C)]
pub(crate) struct Task<F: Future, T> {
    stage: UnsafeCell<Stage<F, T>>,
    into_result: fn(F::Output) -> Result<T, BoxError>,
    pub(super) header: Header,
}

/// What the task holds: its future, then its result.
pub(super) enum Stage<F, T> {
    /// Rule 1: only the `RUNNING` thread touches it.
    Running(F),
    /// Rules 2 and 3. A failure carries its watch (see `hook.rs`).
    Finished(Exit<T>, Option<Arc<FailureWatch>>),
    /// The future was dropped and the result taken, or not yet stored, or never to be
    /// stored (a detached task's result is dropped without passing through the stage).
    Consumed,
}

/// How a task ended, as stored in its block: the one record of an ending. Everything that
/// reacts to an ending (the counters, the group, the outcome hook, the trace) reads it
/// through one view, [`Exit::view`], a [`TaskExit`].
///
/// A cancellation keeps only its reason: the [`TaskError`] that the handle yields is built
/// when the handle reads it, so a cancelled task nobody awaits (a detached member of a
/// cancelled group, say) costs no allocation for it.
pub(super) enum Exit<T> {
    Value(T),
    Failed(TaskError),
    Cancelled(CancelReason),
}

impl<T> Exit<T> {
    /// The ending as the counters, the group, the outcome hook and the trace see it.
    fn view(&self) -> TaskExit<'_> {
        match self {
            Exit::Value(_) => TaskExit::Completed,
            Exit::Failed(e) => TaskExit::Failed(e),
            Exit::Cancelled(reason) => TaskExit::Cancelled(reason),
        }
    }
}

/// What one poll did (see `Task::poll_once`).
enum Polled<O> {
    /// The future is still there, waiting.
    Pending,
    /// The future returned this output and has been dropped.
    Ready(O),
    /// The future returned this output, then its destructor panicked.
    DropPanicked(O, Box<dyn std::any::Any + Send>),
    /// The poll panicked; the future is still there, to be dropped.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// The task's exit once dropping its future panicked: that panic is the failure if the
/// body had returned a value (which is dropped: nothing is lost, the panic is reported);
/// if the body had failed already, the first failure stays and the second is logged.
fn after_drop_panic<T>(exit: Exit<T>, drop_panic: TaskError, info: &TaskInfo) -> Exit<T> {
    match exit {
        Exit::Value(value) => {
            drop_logged(value, info, "output");
            Exit::Failed(drop_panic)
        }
        first => {
            crate::report::error!("{drop_panic} (while dropping a failed task's future)");
            first
        }
    }
}

// SAFETY: the stage is the only field that is not `Send + Sync` on its own. Rules 1-3 in
// task/mod.rs make every access to it exclusive (one `RUNNING` thread, then one result
// owner), so sharing the block between threads never shares the stage. Futures and outputs
// that are not `Send` only get here through `spawn_unchecked`, whose contract keeps every
// access to them on one thread.
unsafe impl<F: Future, T> Send for Task<F, T> {}
// SAFETY: as for `Send` above.
unsafe impl<F: Future, T> Sync for Task<F, T> {}

impl<F, T> Task<F, T>
where
    F: Future + 'static,
    T: 'static,
{
    /// Allocates the task, queued-and-handled (`SCHEDULED | HANDLE`).
    ///
    /// # Safety
    ///
    /// As for [`spawn_unchecked`](super::spawn_unchecked): if `F` or `T` is not `Send`,
    /// `scheduler` must run the task only on the current thread.
    pub(super) unsafe fn new(
        future: F,
        into_result: fn(F::Output) -> Result<T, BoxError>,
        info: TaskInfo,
        scheduler: Arc<dyn Schedule>,
        group: Option<Arc<dyn GroupLink>>,
    ) -> Arc<Self> {
        Arc::new(Task {
            header: Header::new(info, scheduler, group),
            stage: UnsafeCell::new(Stage::Running(future)),
            into_result,
        })
    }

    /// Polls the future once. The caller holds `RUNNING`. Returns the task if it must be
    /// queued again.
    fn poll_future(self: Arc<Self>, poller: &Poller<'_>) -> Option<TaskRef> {
        let owner = poller.owner;
        debug_assert!(std::ptr::eq(owner, self.header.scheduler.owner()));
        poller.polls.polled();
        let first = self.header.count_poll() == 0;
        if let Some(slot) = poller.slot {
            slot.begin(&self.header);
        }
        let polled = self.poll_observing(owner, first);
        if let Some(slot) = poller.slot {
            if !slot.end() {
                report_blocking_end(owner, slot);
            }
        }
        match polled {
            Polled::Pending => match self.header.state.transition_to_idle() {
                ToIdle::Requeue => Some(self),
                ToIdle::Idle => None,
                ToIdle::Unreachable(state) => {
                    super::lost::unreachable(self, state);
                    None
                }
            },
            Polled::Ready(output) => {
                let exit = self.exit_for(output);
                self.finish(exit);
                None
            }
            Polled::DropPanicked(output, payload) => {
                let exit = self.exit_for(output);
                let drop_panic = TaskError::from_panic(self.header.info.clone(), payload);
                let exit = after_drop_panic(exit, drop_panic, &self.header.info);
                self.finish(exit);
                None
            }
            Polled::Panicked(payload) => {
                let failure = TaskError::from_panic(self.header.info.clone(), payload);
                self.drop_then_finish(Exit::Failed(failure));
                None
            }
        }
    }

    /// [`poll_once`](Self::poll_once), or [`poll_observed`](Self::poll_observed) when the
    /// trace or poll timing is on. Tracing and timing off take the first branch, which is
    /// exactly the plain poll.
    #[inline(always)]
    fn poll_observing(self: &Arc<Self>, owner: &TaskOwner, first: bool) -> Polled<F::Output> {
        if owner.observes_polls {
            self.poll_observed(owner, first)
        } else {
            self.poll_once(owner)
        }
    }

    /// [`poll_once`](Self::poll_once), recorded in the trace and the poll timing (whichever
    /// is on). `first` for the task's first poll.
    #[inline(never)]
    fn poll_observed(self: &Arc<Self>, owner: &TaskOwner, first: bool) -> Polled<F::Output> {
        let timing = self.header.timing.get().map(|t| &**t);
        let timed = timing.map(|t| t.poll_started(owner.epoch, first));
        let traced = owner.tracer.as_ref().map(|tracer| tracer.poll_start());
        let polled = self.poll_once(owner);
        if let (Some(tracer), Some(started)) = (&owner.tracer, traced) {
            let outcome = match &polled {
                Polled::Pending => "pending",
                Polled::Ready(_) | Polled::DropPanicked(..) => "ready",
                Polled::Panicked(_) => "panicked",
            };
            tracer.poll_end(&self.header.info, started, outcome);
        }
        if let (Some(timing), Some(started)) = (timing, timed) {
            let busy = timing.poll_ended(owner.epoch, &started);
            owner.metrics.timed(busy, started.waited);
        }
        polled
    }

    /// The task's result for the future's output: a value, or the failure a group task's
    /// body returned.
    fn exit_for(&self, output: F::Output) -> Exit<T> {
        match (self.into_result)(output) {
            Ok(value) => Exit::Value(value),
            Err(e) => Exit::Failed(TaskError::from_error(self.header.info.clone(), e)),
        }
    }

    /// `catch_unwind(poll)`, with the task's own waker borrowed (`borrowed_waker`) and the task
    /// set as the thread's current one. A future that returns `Ready` is dropped in place
    /// under the same guard, so a finishing task sets up one guard, not two.
    #[inline(always)]
    fn poll_once(self: &Arc<Self>, owner: &TaskOwner) -> Polled<F::Output> {
        let waker = self.borrowed_waker();
        let mut cx = Context::from_waker(&waker);
        let _task = super::current::enter_task(self.header.info.id());
        // A panic from the finished future's destructor is kept aside rather than in the
        // closure's result, so that what `catch_panics` returns stays two words (for a
        // `()` output) and comes back in registers.
        let mut drop_panic = None;
        let caught = catch_panics(owner.backtraces, || {
            self.stage.with_mut(|stage| {
                // SAFETY: rule 1: transition 2 gave this thread `RUNNING`, so nothing else
                // touches the stage until transition 3 or 6.
                let stage = unsafe { &mut *stage };
                let Stage::Running(future) = stage else {
                    unreachable!("polled a task whose future is gone")
                };
                // SAFETY: the future lives inside the `Arc`'s heap block, which never
                // moves, and it is only ever dropped in place (the stage is overwritten,
                // never moved out of while it is `Running`): the pinning guarantee holds.
                let future = unsafe { Pin::new_unchecked(future) };
                let polled = future.poll(&mut cx);
                if polled.is_ready() {
                    // An inner `catch_unwind` for the destructor, so that its panic does
                    // not unwind through the output (whose own destructor might panic too,
                    // which would abort). The outer guard records the panic; re-armed
                    // first, in case the body caught a panic of its own before it returned.
                    let dropped = panic::catch_unwind(AssertUnwindSafe(|| {
                        crate::failure::rearm_capture();
                        consume(stage);
                    }));
                    drop_panic = dropped.err();
                }
                polled
            })
        });
        match caught {
            Ok(Poll::Pending) => Polled::Pending,
            Ok(Poll::Ready(output)) => match drop_panic {
                None => Polled::Ready(output),
                Some(payload) => Polled::DropPanicked(output, payload),
            },
            Err(payload) => Polled::Panicked(payload),
        }
    }

    /// Drops the future in place, catching a panic from its destructor. The caller holds
    /// `RUNNING`.
    fn drop_future(&self) -> Result<(), TaskError> {
        let owner = self.header.scheduler.owner();
        let _task = super::current::enter_task(self.header.info.id());
        catch_panics(owner.backtraces, || {
            // SAFETY: rule 1: this thread holds `RUNNING`.
            self.stage
                .with_mut(|stage| unsafe { *stage = Stage::Consumed });
        })
        .map_err(|payload| TaskError::from_panic(self.header.info.clone(), payload))
    }

    /// The poll panicked and the future is still there: drop it, then finish.
    fn drop_then_finish(self: Arc<Self>, exit: Exit<T>) {
        let exit = match self.drop_future() {
            Ok(()) => exit,
            Err(drop_panic) => after_drop_panic(exit, drop_panic, &self.header.info),
        };
        self.finish(exit);
    }

    /// The task was cancelled: drop its future without polling it.
    fn cancel_now(self: Arc<Self>, reason: CancelReason) {
        let exit = match self.drop_future() {
            Ok(()) => Exit::Cancelled(reason),
            // A destructor that panics during cancellation: the panic becomes the task's
            // failure, so that it is reported rather than lost.
            Err(drop_panic) => Exit::Failed(drop_panic),
        };
        self.finish(exit);
    }

    /// Stores the result and hands it on (transition 6, rule 3). The caller holds `RUNNING`
    /// and has dropped the future.
    fn finish(self: Arc<Self>, exit: Exit<T>) {
        let header = &self.header;
        let owner = header.scheduler.owner();
        if owner.watched {
            // Its block may be freed once this thread lets go of it: not while a watchdog
            // reads its header (`poll_slot.rs`).
            super::poll_slot::wait_unread(header);
        }
        let view = exit.view();
        let watch = match view {
            TaskExit::Failed(e) => Some(FailureWatch::new(e.clone(), owner.sink.clone())),
            _ => None,
        };
        owner.metrics.ended(&view);
        // Both observers are off unless configured: one test each, without a call.
        if owner.tracer.is_some() || owner.on_exit.is_some() {
            report_exit(owner, header, &view);
        }
        if let Some(group) = &header.group {
            group.member_exited(header.info.id(), &view, watch.as_ref());
        }
        if !header.state.load().has_handle() {
            // Detached (or the handle is gone): nobody can ever read the result, since
            // `HANDLE` is never set again, so it skips the trip through the stage.
            header.state.transition_to_complete();
            drop_unread_exit(exit, watch, &header.info);
        } else {
            // SAFETY: rule 2: this thread still holds `RUNNING`. The stage is `Consumed`
            // (the future was dropped), which owns nothing: it is overwritten, not dropped.
            self.stage.with_mut(|stage| unsafe {
                debug_assert!(
                    matches!(*stage, Stage::Consumed),
                    "finish: the future is live"
                );
                stage.write(Stage::Finished(exit, watch));
            });
            let before = header.state.transition_to_complete();
            if before.has_handle() {
                // Rule 5: the handle sets `JOIN_WAKER` after storing its waker, so a waker
                // stored before our transition is announced in `before`.
                if before.has_join_waker() {
                    header.wake_join_waiter();
                }
            } else {
                // SAFETY: rule 3: the handle was dropped before transition 6, so the result
                // is ours, and nobody else will touch the stage again.
                let stage = self.stage.with_mut(|stage| unsafe { take(stage) });
                drop_unread(stage, &header.info);
            }
        }
        let registered = owner.remove(header);
        drop(registered);
    }

    /// For the handle: the result, once complete. The caller owns `HANDLE`.
    pub(super) fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        let header = &self.header;
        let state = header.state.load();
        if !state.is_complete() {
            {
                let mut slot = header.join_waker.lock().unwrap_or_else(|e| e.into_inner());
                match &*slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
                let awaiting = super::lost::awaiting_id(super::current::current_task());
                header.awaited_by.store(awaiting, Ordering::Release);
            }
            // Rule 5: announce the waker (once), re-checking in the same operation. Once
            // announced, the slot's lock orders a later store against the completer's
            // take, and a plain re-check suffices.
            let now = if state.has_join_waker() {
                header.state.load()
            } else {
                header.state.set_join_waker()
            };
            if !now.is_complete() {
                if now.is_unreachable() {
                    super::lost::check_deadlock(header);
                }
                return Poll::Pending;
            }
        }
        // SAFETY: rule 3: `COMPLETE` is set and the caller holds `HANDLE`, so the result is
        // the handle's alone.
        let stage = self.stage.with_mut(|stage| unsafe { take(stage) });
        match stage {
            Stage::Finished(exit, watch) => {
                if let Some(watch) = watch {
                    watch.observe();
                }
                Poll::Ready(match exit {
                    Exit::Value(value) => Ok(value),
                    Exit::Failed(e) => Err(e),
                    Exit::Cancelled(reason) => {
                        let cause = match reason {
                            CancelReason::SiblingFailed(_) => {
                                header.group.as_ref().and_then(|g| g.sibling_failure())
                            }
                            _ => None,
                        };
                        Err(TaskError::cancelled_by(header.info.clone(), reason, cause))
                    }
                })
            }
            _ => panic!("a warden JoinHandle was polled after it had returned its result"),
        }
    }

    /// For the handle: it is being dropped or detached (transition 7). Returns the state
    /// after.
    pub(super) fn release_handle(&self) -> Snapshot {
        let before = self.header.state.drop_handle();
        // A waker the handle left behind belongs to whoever awaited it; it may be that very
        // task, or one that this task awaits, and keeping it here would keep both alive.
        if before.has_join_waker() {
            drop(self.header.take_join_waker());
        }
        if before.is_complete() {
            // SAFETY: rule 3: `COMPLETE` was set before we cleared `HANDLE`, so the result
            // is ours; after this, nobody touches the stage.
            let stage = self.stage.with_mut(|stage| unsafe { take(stage) });
            drop_unread(stage, &self.header.info);
        }
        before.without_handle()
    }
}

impl<F, T> RawTask for Task<F, T>
where
    F: Future + 'static,
    T: 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(self: Arc<Self>, poller: &Poller<'_>) -> Option<TaskRef> {
        self.header.stamp_poll(poller.stamp);
        // The cancel-at-poll check (the rules are in `cancel.rs`): the task's own flag is a
        // bit of the state word, seen by transition 2 itself; then the group's flag.
        match self.header.state.transition_to_running() {
            ToRunning::Dead => None,
            ToRunning::Cancel => {
                let reason = self.header.reason();
                self.cancel_now(reason);
                None
            }
            ToRunning::Poll => match group_reason(&self.header) {
                Some(reason) => {
                    self.cancel_now(reason);
                    None
                }
                None => self.poll_future(poller),
            },
        }
    }
}

/// Drops the future in place, leaving `Consumed`. Should the destructor panic, the
/// assignment still completes as the panic unwinds, so the stage never holds a
/// half-dropped future. Kept out of line: the poll that calls it stays small for the
/// common case, a `Pending`.
#[inline(never)]
fn consume<F, T>(stage: &mut Stage<F, T>) {
    *stage = Stage::Consumed;
}

/// Moves the stage out, leaving `Consumed`.
///
/// # Safety
///
/// `stage` must be valid, and the caller must have exclusive access to it (rules 1-3).
unsafe fn take<F, T>(stage: *mut Stage<F, T>) -> Stage<F, T> {
    // SAFETY: the caller guarantees a valid pointer with exclusive access.
    unsafe { std::mem::replace(&mut *stage, Stage::Consumed) }
}

/// Drops a result nobody will read, catching a panic from its destructor. Three cases need
/// no guard, because dropping them runs no user code: a value whose type has no
/// destructor at all (`()`, numbers), a cancellation (a `CancelReason`), and nothing (the
/// handle read the result before it was dropped).
fn drop_unread<F, T>(stage: Stage<F, T>, info: &TaskInfo) {
    match stage {
        Stage::Consumed => {}
        Stage::Finished(exit, watch) => drop_unread_exit(exit, watch, info),
        running @ Stage::Running(_) => drop_logged(running, info, "future"),
    }
}

/// [`drop_unread`] for a result that never went into the stage (a detached task's): the
/// same cases, matched on the exit alone, so that the common one (a value with no
/// destructor) compiles to nothing rather than a call to the stage's drop glue.
#[inline]
fn drop_unread_exit<T>(exit: Exit<T>, watch: Option<Arc<FailureWatch>>, info: &TaskInfo) {
    match (exit, watch) {
        (Exit::Value(value), None) if !std::mem::needs_drop::<T>() => drop(value),
        (Exit::Cancelled(_), None) => {}
        finished => drop_logged(finished, info, "output"),
    }
}

/// Tells the outcome hook and the tracer how a task ended, with its poll timing if that
/// is on.
fn report_exit(owner: &TaskOwner, header: &Header, exit: &TaskExit<'_>) {
    let info = &header.info;
    let timing: Option<PollTiming> = header.timing.get().map(|t| t.read(header.polls()));
    if let Some(tracer) = &owner.tracer {
        // A member cancelled because a sibling failed: the event names that sibling.
        let sibling = match exit {
            TaskExit::Cancelled(CancelReason::SiblingFailed(_)) => {
                header.group.as_ref().and_then(|g| g.sibling_failure())
            }
            _ => None,
        };
        tracer.ended(info, exit, sibling.as_ref(), timing.as_ref());
    }
    if let Some(hook) = &owner.on_exit {
        let call = || crate::hook::with_timing(exit, timing.as_ref(), || hook(info, exit));
        if let Err(payload) = catch_panics(Backtraces::Off, call) {
            crate::report::error!(
                "the task-exit hook panicked ({}) for {info}",
                crate::failure::payload_message(&*payload)
            );
            crate::failure::drop_payload(payload);
        }
    }
}

/// The second report of a blocking poll, made by its own thread when it returns.
#[cold]
#[inline(never)]
fn report_blocking_end(owner: &TaskOwner, slot: &PollSlot) {
    let Some(blocking) = slot.end_reported() else {
        return;
    };
    let kind = StallKind::Blocking {
        elapsed: blocking.elapsed,
        finished: true,
    };
    let stall = Stall::new(blocking.task, kind, slot.thread_name().map(Into::into));
    call_hook(&*owner.on_stall, &stall);
}

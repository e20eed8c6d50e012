//! What both executors share around their scheduling policy: the `block_on` loop that
//! drives a root future, its waker, a shutdown that a failure asked for, and the drain
//! that drops every cancelled future at shutdown.
//!
//! An executor is a *policy*: where ready tasks wait, who runs them, how a thread sleeps
//! when there is nothing to do. `LocalExecutor` runs its tasks on the thread that calls
//! `block_on`; `Executor` runs them on worker threads while `block_on`'s thread only
//! sleeps. The loop around the root future is the same for both, written once here, as
//! futures-executor writes one `run_executor` loop for all its entry points:
//!
//! 1. if a failure asked for a shutdown ([`UnhandledPolicy::Shutdown`]), panic with it;
//! 2. if the root future was woken, poll it; done when it is ready;
//! 3. let the policy run what is ready on this thread ([`Driver::run_ready`]);
//! 4. if nothing ran and the root was not woken meanwhile, let the policy put the thread
//!    to sleep until a wake or the next timer ([`Driver::park`]).
//!
//! The root future is not a task: it has no id, no failure slot, and a panic in it unwinds
//! out of `block_on` to the caller.
//!
//! [`UnhandledPolicy::Shutdown`]: crate::UnhandledPolicy::Shutdown

use crate::loom::{Arc, AtomicBool, OnceLock, Ordering};
use crate::park::{self, Unparker};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use futures_task::{ArcWake, waker_ref};

use crate::failure::TaskError;
use crate::task::{TaskOwner, TaskRef};

/// The waker of `block_on`'s root future: a flag, and an unpark of the thread that waits.
pub(crate) struct RootWaker {
    woken: AtomicBool,
    thread: Unparker,
}

impl RootWaker {
    /// `true` if the root was woken since the last [`take_woken`](Self::take_woken).
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }

    fn take_woken(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }
}

impl ArcWake for RootWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.thread.unpark();
    }
}

/// What an executor's policy does for the `block_on` loop.
pub(crate) trait Driver {
    /// Runs tasks that are ready to run on this thread; returns how many polls it made.
    /// A pool's tasks run on its workers: it runs none here.
    fn run_ready(&self) -> usize {
        0
    }

    /// The failure that asked for a shutdown, once one did ([`ShutdownRequest`]).
    fn shutdown_cause(&self) -> Option<TaskError>;

    /// Shuts down after a failure asked for it, before `block_on` panics with it (a
    /// `LocalExecutor` does it here, on its own thread; a pool began as the failure was
    /// reported).
    fn shut_down_for_request(&self) {}

    /// Sleeps until `root` is woken, a task is ready for this thread, or a timer this
    /// thread fires comes due. May return early.
    fn park(&self, root: &RootWaker);
}

/// Runs `future` to completion on the calling thread, with `driver` between its polls.
#[track_caller]
pub(crate) fn drive<F: Future>(driver: &impl Driver, future: F) -> F::Output {
    let root = Arc::new(RootWaker {
        woken: AtomicBool::new(true),
        thread: park::current(),
    });
    let waker = waker_ref(&root);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Some(cause) = driver.shutdown_cause() {
            driver.shut_down_for_request();
            panic!(
                "warden: the executor shut down because of an unobserved failure \
                 (UnhandledPolicy::Shutdown): {cause}"
            );
        }
        if root.take_woken() {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
        let ran = driver.run_ready();
        if ran == 0 && !root.is_woken() && driver.shutdown_cause().is_none() {
            driver.park(&root);
        }
    }
}

/// A shutdown asked for by an unobserved failure under
/// [`UnhandledPolicy::Shutdown`](crate::UnhandledPolicy::Shutdown): the failure, kept for
/// the panic of every `block_on` that is running or starts later.
pub(crate) struct ShutdownRequest {
    cause: OnceLock<TaskError>,
    requested: AtomicBool,
}

impl ShutdownRequest {
    pub(crate) fn new() -> ShutdownRequest {
        ShutdownRequest {
            cause: OnceLock::new(),
            requested: AtomicBool::new(false),
        }
    }

    /// Records `cause` (the first one wins). The executor then starts its shutdown.
    pub(crate) fn record(&self, cause: &TaskError) {
        let _ = self.cause.set(cause.clone());
        self.requested.store(true, Ordering::SeqCst);
    }

    /// The failure that asked for the shutdown, if one did.
    pub(crate) fn cause(&self) -> Option<&TaskError> {
        if self.requested.load(Ordering::SeqCst) {
            self.cause.get()
        } else {
            None
        }
    }
}

/// The drain at the end of a shutdown: runs every queued task (cancelled: running it drops
/// its future) until no task is live, then writes the trace. `pop` gives the next queued
/// task, `requeue` takes a task woken during its own final step, and `wait` sleeps until a
/// push: a `Handle::spawn` on another thread may have registered its task just before the
/// registry closed and not queued it yet, so "no task queued" is not "no task live".
pub(crate) fn drain(
    owner: &TaskOwner,
    mut pop: impl FnMut() -> Option<TaskRef>,
    requeue: impl Fn(TaskRef),
    wait: impl Fn(),
) {
    loop {
        while let Some(task) = pop() {
            if let Some(again) = task.run_unstamped() {
                requeue(again);
            }
        }
        if owner.live() == 0 {
            break;
        }
        wait();
    }
    if let Some(tracer) = &owner.tracer {
        tracer.write();
    }
}

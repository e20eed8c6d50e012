//! The loop-level error hook and the "nothing lost, nothing twice" bookkeeping.
//!
//! A failure (a panic, or a group task's `Err`) can be observed in two places: by awaiting
//! the task's [`JoinHandle`](crate::JoinHandle), and by its group's
//! [`join`](crate::TaskGroup::join). If neither will ever happen, the executor's error
//! hook must see it, exactly once, as soon as that is certain. That is asyncio's "Task
//! exception was never retrieved", done without a garbage collector.
//!
//! The bookkeeping is one shared [`FailureWatch`] per failure. Each place that could still
//! observe the failure (the handle's slot, the group's list) holds a clone of the `Arc`.
//! Observing it sets `observed`. When the last holder lets go, the watch's `Drop` runs;
//! if nobody observed the failure, it goes to the hook there. Reference counting gives
//! "exactly once" for free: `Drop` runs once.

use crate::loom::{Arc, AtomicBool, OnceLock, Ordering};
use std::cell::Cell;
use std::fmt;

use crate::Backtraces;
use crate::failure::{CancelReason, TaskError, catch_panics, payload_message};
use crate::task::{PollTiming, TaskInfo};

/// What an executor does after its error hook has seen an unobserved failure.
///
/// # Examples
///
/// ```
/// use warden::{Builder, UnhandledPolicy};
///
/// let ex = Builder::new()
///     .unhandled_policy(UnhandledPolicy::Continue)
///     .build_local();
/// # drop(ex);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnhandledPolicy {
    /// Keep running (the default). The failure was reported; the other tasks go on.
    #[default]
    Continue,
    /// Shut the executor down: every live task is cancelled with
    /// [`CancelReason::Shutdown`](crate::CancelReason::Shutdown), and a pending `block_on`
    /// panics with a message naming the failed task. For programs where an unhandled
    /// failure means the state can no longer be trusted.
    Shutdown,
}

/// How a task ended, as the outcome hook ([`Builder::on_task_exit`](crate::Builder::on_task_exit))
/// sees it.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use warden::TaskExit;
///
/// let exits = Arc::new(Mutex::new(Vec::new()));
/// let ex = warden::Builder::new()
///     .on_task_exit({
///         let exits = exits.clone();
///         move |info, exit| {
///             let what = match exit {
///                 TaskExit::Completed => "completed".to_string(),
///                 TaskExit::Failed(err) => format!("failed: {}", err.panic_message().unwrap_or("")),
///                 TaskExit::Cancelled(reason) => format!("cancelled: {reason}"),
///             };
///             exits.lock().unwrap().push(format!("{}: {what}", info.name().unwrap_or("?")));
///         }
///     })
///     .build_local();
/// let ok = ex.spawn_named("ok", async {});
/// let bad = ex.spawn_named("bad", async { panic!("boom") });
/// ex.block_on(async {
///     let _ = ok.await;
///     let _ = bad.await;
/// });
/// assert_eq!(*exits.lock().unwrap(), ["ok: completed", "bad: failed: boom"]);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum TaskExit<'a> {
    /// The task finished with a value.
    Completed,
    /// The task panicked, or its body returned `Err` (group tasks).
    Failed(&'a TaskError),
    /// The task was cancelled.
    Cancelled(&'a CancelReason),
}

impl TaskExit<'_> {
    /// The task's poll timing, with [`Builder::poll_timing`](crate::Builder::poll_timing)
    /// on: on the exit that [`on_task_exit`](crate::Builder::on_task_exit) hands its hook,
    /// for the length of the call. `None` with timing off, and on a `TaskExit` made or
    /// copied elsewhere (`let copy = *exit;` has none: the record belongs to the hook's
    /// argument, not to the value).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::Builder::new()
    ///     .poll_timing(true)
    ///     .on_task_exit(|info, exit| {
    ///         if let Some(timing) = exit.timing() {
    ///             println!("{info}: {} polls, {:?} busy", timing.polls, timing.busy);
    ///         }
    ///     })
    ///     .build_local();
    /// ex.block_on(ex.spawn(async { warden::yield_now().await })).unwrap();
    /// ```
    pub fn timing(&self) -> Option<&PollTiming> {
        let (exit, timing) = EXIT_TIMING.try_with(Cell::get).ok()?;
        if timing.is_null() || !std::ptr::eq(exit, (self as *const Self).cast()) {
            return None;
        }
        // SAFETY: `with_timing` stores these two pointers for the length of a call and
        // restores the previous pair before it returns, and both referents outlive the
        // call (they are its caller's). So the pair is set and `self` is at `exit`: `self`
        // is that very exit (two live values never share an address, and `TaskExit` is not
        // zero-sized), and a borrow of it cannot outlive the call that lent it, nor,
        // therefore, the timing beside it, which nothing mutates meanwhile.
        Some(unsafe { &*timing })
    }
}

thread_local! {
    /// The exit whose hook call is running on this thread, and its timing (see
    /// [`TaskExit::timing`]); null pointers when none.
    static EXIT_TIMING: Cell<(*const (), *const PollTiming)> =
        const { Cell::new((std::ptr::null(), std::ptr::null())) };
}

/// Runs `f` (a call of the outcome hook with `exit`) with `timing` readable through
/// [`TaskExit::timing`] on `exit`. Both must outlive the call, which they do: they are
/// borrowed for it.
pub(crate) fn with_timing<R>(
    exit: &TaskExit<'_>,
    timing: Option<&PollTiming>,
    f: impl FnOnce() -> R,
) -> R {
    let Some(timing) = timing else { return f() };
    /// Puts the previous pair back, also if `f` unwinds (a nested executor's hook may
    /// have set its own).
    struct Restore((*const (), *const PollTiming));
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = EXIT_TIMING.try_with(|cell| cell.set(self.0));
        }
    }
    let pair = (
        (exit as *const TaskExit<'_>).cast(),
        timing as *const PollTiming,
    );
    let _restore = EXIT_TIMING.try_with(|cell| Restore(cell.replace(pair)));
    f()
}

/// The outcome hook's type.
pub(crate) type ExitHookFn = dyn Fn(&TaskInfo, &TaskExit<'_>) + Send + Sync + 'static;

/// The user's hook, shared by the executor and every failure watch.
pub(crate) type HookFn = dyn Fn(&TaskError) + Send + Sync + 'static;

/// Where unobserved failures go: the hook, then the policy.
pub(crate) struct ErrorSink {
    hook: Option<Arc<HookFn>>,
    policy: UnhandledPolicy,
    /// Set by the executor that owns this sink: what `UnhandledPolicy::Shutdown` calls.
    on_shutdown: OnceLock<Box<HookFn>>,
}

impl ErrorSink {
    pub(crate) fn new(hook: Option<Arc<HookFn>>, policy: UnhandledPolicy) -> ErrorSink {
        ErrorSink {
            hook,
            policy,
            on_shutdown: OnceLock::new(),
        }
    }

    /// Called once by the owning executor, to learn how to shut it down.
    pub(crate) fn set_shutdown_trigger(&self, trigger: Box<HookFn>) {
        let _ = self.on_shutdown.set(trigger);
    }

    /// Hands an unobserved failure to the hook. A panic in the hook is caught and logged:
    /// it never unwinds into the executor.
    pub(crate) fn deliver(&self, err: &TaskError) {
        let outcome = catch_panics(Backtraces::Off, || match &self.hook {
            Some(hook) => hook(err),
            None => default_hook(err),
        });
        if let Err(payload) = outcome {
            crate::report::error!(
                "the error hook panicked ({}) while handling: {:#}",
                payload_message(&*payload),
                err
            );
            crate::failure::drop_payload(payload);
        }
        if self.policy == UnhandledPolicy::Shutdown {
            if let Some(trigger) = self.on_shutdown.get() {
                trigger(err);
            }
        }
    }
}

impl fmt::Debug for ErrorSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorSink")
            .field("custom_hook", &self.hook.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}

/// The default hook: one error report with the task, the panic location and the backtrace
/// (the alternate form of [`TaskError`]'s `Display`), through `log` (target `warden`), or
/// on stderr when no logger is installed.
pub(crate) fn default_hook(err: &TaskError) {
    crate::report::error!("unobserved failure: {err:#}");
}

/// One failure's "has anybody seen it?" record. See the module doc.
pub(crate) struct FailureWatch {
    error: TaskError,
    observed: AtomicBool,
    sink: Arc<ErrorSink>,
}

impl FailureWatch {
    pub(crate) fn new(error: TaskError, sink: Arc<ErrorSink>) -> Arc<FailureWatch> {
        Arc::new(FailureWatch {
            error,
            observed: AtomicBool::new(false),
            sink,
        })
    }

    /// Somebody read the failure: the hook will not be called for it.
    pub(crate) fn observe(&self) {
        self.observed.store(true, Ordering::Release);
    }
}

impl Drop for FailureWatch {
    fn drop(&mut self) {
        if !self.observed.load(Ordering::Acquire) {
            self.sink.deliver(&self.error);
        }
    }
}

//! [`Builder`]: one place to configure either executor.

use std::fmt;
use std::sync::Arc;

use crate::hook::{ErrorSink, ExitHookFn, HookFn};
use crate::{Backtraces, Executor, LocalExecutor, TaskError, UnhandledPolicy};
use crate::{TaskExit, TaskInfo};
use std::path::PathBuf;
use std::time::Duration;

use crate::stall::{Stall, StallHookFn};

/// Configures and builds an [`Executor`] (`build`) or a [`LocalExecutor`] (`build_local`).
///
/// # Examples
///
/// ```
/// use warden::{Backtraces, Builder, UnhandledPolicy};
///
/// let ex = Builder::new()
///     .worker_threads(2)
///     .thread_name("app-worker")
///     .on_unhandled(|err| eprintln!("unobserved: {err}"))
///     .unhandled_policy(UnhandledPolicy::Continue)
///     .backtraces(Backtraces::Always)
///     .build();
/// assert_eq!(ex.block_on(ex.spawn(async { 1 })).unwrap(), 1);
/// ```
#[derive(Clone)]
pub struct Builder {
    pub(crate) worker_threads: Option<usize>,
    pub(crate) thread_name: String,
    pub(crate) hook: Option<Arc<HookFn>>,
    pub(crate) policy: UnhandledPolicy,
    pub(crate) backtraces: Backtraces,
    pub(crate) on_exit: Option<Arc<ExitHookFn>>,
    pub(crate) trace: Option<PathBuf>,
    pub(crate) manual_clock: bool,
    pub(crate) blocking_threshold: Option<Duration>,
    pub(crate) on_stall: Option<Arc<StallHookFn>>,
    pub(crate) poll_timing: bool,
}

impl Builder {
    /// The defaults: one worker per core, threads named `warden-worker-N`, the default
    /// hook (reports through `log::error!`, or on stderr when no logger is installed),
    /// [`UnhandledPolicy::Continue`], [`Backtraces::Always`].
    pub fn new() -> Builder {
        Builder {
            worker_threads: None,
            thread_name: "warden-worker".to_owned(),
            hook: None,
            policy: UnhandledPolicy::Continue,
            backtraces: Backtraces::Always,
            on_exit: None,
            trace: None,
            manual_clock: false,
            blocking_threshold: Some(DEFAULT_BLOCKING_THRESHOLD),
            on_stall: None,
            poll_timing: false,
        }
    }

    /// How many worker threads the multi-threaded executor starts (ignored by
    /// `build_local`).
    ///
    /// # Panics
    ///
    /// If `n` is 0: a pool without workers would never run a task.
    #[track_caller]
    pub fn worker_threads(mut self, n: usize) -> Builder {
        assert!(n > 0, "warden: worker_threads must be at least 1");
        self.worker_threads = Some(n);
        self
    }

    /// The prefix of worker thread names; workers are named `{name}-0`, `{name}-1`, ...
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
        self
    }

    /// The loop-level error hook: called exactly once with every failure that nobody will
    /// observe (see [`TaskError`] and the crate doc's "Nothing lost, nothing twice").
    ///
    /// It runs on whichever thread let go of the failure last (a worker, or the thread that
    /// dropped a handle); a panic inside it is caught and logged.
    pub fn on_unhandled<H>(mut self, hook: H) -> Builder
    where
        H: Fn(&TaskError) + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// What to do after the hook has seen an unobserved failure.
    pub fn unhandled_policy(mut self, policy: UnhandledPolicy) -> Builder {
        self.policy = policy;
        self
    }

    /// When to capture backtraces of panicking tasks.
    pub fn backtraces(mut self, backtraces: Backtraces) -> Builder {
        self.backtraces = backtraces;
        self
    }

    /// The outcome hook: called exactly once per task, when it ends, with
    /// [`TaskExit::Completed`], [`TaskExit::Failed`] or [`TaskExit::Cancelled`]. It runs on
    /// the thread that finished the task, before the task's handle is woken; a panic inside
    /// it is caught and logged. Unlike the error hook, it sees every task, observed or not.
    pub fn on_task_exit<H>(mut self, hook: H) -> Builder
    where
        H: Fn(&TaskInfo, &TaskExit<'_>) + Send + Sync + 'static,
    {
        self.on_exit = Some(Arc::new(hook));
        self
    }

    /// Records a task timeline (every spawn, poll, wake that queues a task, failure and
    /// cancellation) and writes
    /// it to `path` as Chrome trace-event JSON when the executor shuts down. Open it in
    /// <https://ui.perfetto.dev> or `chrome://tracing`. Without this, the `WARDEN_TRACE`
    /// environment variable names the file.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Builder {
        self.trace = Some(path.into());
        self
    }

    /// Records, for every task, how many polls it took, how long they ran (in total and
    /// the longest), how long it waited on run queues, and how long from spawn to its first
    /// poll. Off by default. Each task's record is on its exit
    /// ([`TaskExit::timing`](crate::TaskExit::timing), in
    /// [`on_task_exit`](Builder::on_task_exit)) and on its last event in the
    /// [`trace`](Builder::trace); [`Metrics`](crate::Metrics) gains the executor-wide
    /// `busy` and `scheduled_wait`.
    ///
    /// Off, it costs nothing measurable (one flag, tested where the tracer's flag already
    /// was); on, a task reads the clock when it is queued and twice per poll, and carries
    /// a small heap record (docs/performance.md has the figures).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new().poll_timing(true).build_local();
    /// ex.block_on(ex.spawn(async { std::thread::sleep(Duration::from_millis(2)) }))
    ///     .unwrap();
    /// assert_eq!(ex.metrics().polls, 1);
    /// assert!(ex.metrics().busy >= Duration::from_millis(2));
    /// ```
    pub fn poll_timing(mut self, on: bool) -> Builder {
        self.poll_timing = on;
        self
    }

    /// Time follows a [`ManualClock`](crate::ManualClock) instead of the real clock: for
    /// tests. [`sleep`](crate::sleep), [`timeout`](crate::timeout), group deadlines and a
    /// [`Supervisor`](crate::Supervisor)'s intensity period and backoff see time move only
    /// when the test calls [`advance`](crate::ManualClock::advance); get the clock with
    /// `ex.clock()`. Each executor built gets a clock of its own, starting when it is built.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new().manual_clock().build_local();
    /// let clock = ex.clock().unwrap();
    /// let woke = ex.block_on(async {
    ///     let nap = warden::spawn(warden::sleep(Duration::from_secs(10)));
    ///     warden::yield_now().await; // the sleep registers its timer
    ///     clock.advance(Duration::from_secs(10));
    ///     nap.await
    /// });
    /// assert!(woke.is_ok());
    /// ```
    pub fn manual_clock(mut self) -> Builder {
        self.manual_clock = true;
        self
    }

    /// How long one poll may run before it is reported as blocking its thread; `None`
    /// turns the watchdog off. The default is 100 ms (asyncio's debug mode uses the same).
    ///
    /// A watchdog thread samples, a few times per threshold, which task each polling
    /// thread (each pool worker, or the thread driving a `LocalExecutor`) is in. A poll it
    /// finds running for the threshold is reported to [`on_stall`](Builder::on_stall)
    /// while it still runs, as [`StallKind::Blocking`](crate::StallKind::Blocking) with
    /// `finished: false`, and once more when it returns, with `finished: true`. On a pool,
    /// the blocked worker's queued tasks are handed to the other workers. Polls pay no
    /// clock read: a store and a compare-exchange each.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new()
    ///     .blocking_threshold(Some(Duration::from_millis(250)))
    ///     .build();
    /// let quiet = warden::Builder::new().blocking_threshold(None).build_local();
    /// # drop((ex, quiet));
    /// ```
    pub fn blocking_threshold(mut self, threshold: Option<Duration>) -> Builder {
        self.blocking_threshold = threshold;
        self
    }

    /// Where misbehaving tasks are reported: polls that block their thread, tasks whose
    /// last waker was lost (freed, cancelled with
    /// [`CancelReason::LostWaker`](crate::CancelReason::LostWaker)), and tasks that no
    /// waker can reach while another task awaits their handle (a deadlock). See
    /// [`Stall`].
    ///
    /// The default reports each as a warning (through `log`, or on stderr with no logger
    /// installed), naming the task, its id and spawn site, and for a blocking poll the
    /// thread and how long so far. The hook runs on the watchdog thread (a poll still
    /// blocking), on the polling thread (a blocking poll that returned), or on the thread
    /// that let go of the last waker; a panic inside it is caught and logged.
    pub fn on_stall<H>(mut self, hook: H) -> Builder
    where
        H: Fn(&Stall) + Send + Sync + 'static,
    {
        self.on_stall = Some(Arc::new(hook));
        self
    }

    /// Builds the multi-threaded executor and starts its workers.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread.
    pub fn build(&self) -> Executor {
        Executor::from_builder(self)
    }

    /// Builds a single-threaded executor owned by the current thread.
    pub fn build_local(&self) -> LocalExecutor {
        LocalExecutor::from_builder(self)
    }
}

impl Builder {
    /// The settings the task core needs, with `sink` where unobserved failures go.
    pub(crate) fn owner_config(&self, sink: Arc<ErrorSink>) -> crate::task::OwnerConfig {
        crate::task::OwnerConfig {
            sink,
            backtraces: self.backtraces,
            on_exit: self.on_exit.clone(),
            trace: self.trace.clone(),
            on_stall: self.stall_hook(),
            watched: self.blocking_threshold.is_some(),
            poll_timing: self.poll_timing,
        }
    }

    /// The stall hook: the configured one, or the default report.
    pub(crate) fn stall_hook(&self) -> Arc<StallHookFn> {
        match &self.on_stall {
            Some(hook) => hook.clone(),
            None => Arc::new(crate::stall::report_stall),
        }
    }
}

/// The default of [`Builder::blocking_threshold`].
const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(100);

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("worker_threads", &self.worker_threads)
            .field("thread_name", &self.thread_name)
            .field("on_unhandled", &self.hook.as_ref().map(|_| "<custom>"))
            .field("unhandled_policy", &self.policy)
            .field("backtraces", &self.backtraces)
            .field("on_task_exit", &self.on_exit.as_ref().map(|_| "<custom>"))
            .field("trace", &self.trace)
            .field("manual_clock", &self.manual_clock)
            .field("blocking_threshold", &self.blocking_threshold)
            .field("on_stall", &self.on_stall.as_ref().map(|_| "<custom>"))
            .field("poll_timing", &self.poll_timing)
            .finish()
    }
}

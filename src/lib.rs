//! warden: a small async executor in which failure is first-class.
//!
//! warden runs futures on a single thread ([`LocalExecutor`]) or a pool of worker threads
//! ([`Executor`]). Its tasks keep what went wrong: a panicking task's message, panic
//! location, backtrace, id, name and spawn site are stored in its **failure slot** and
//! handed, whole, to whoever reads its [`JoinHandle`] — or, if nobody ever will, to the
//! executor's **error hook**, exactly once. [`TaskGroup`]s cancel the siblings of a failed
//! task, and the executor checks their cancel flag before **every** poll.
//!
//! The design follows robust asyncio exception handling, mapped onto Rust:
//!
//! | asyncio practice | warden |
//! |---|---|
//! | `try`/`except` in a coroutine | `?` and `match` in the task; [`TaskError::downcast_ref`] plays `except E` |
//! | a top-level handler around `gather` | [`TaskGroup::join`] returns every failure of the group |
//! | log exceptions with their tracebacks | the failure slot keeps message, location, backtrace, task and spawn site |
//! | `loop.set_exception_handler` | [`Builder::on_unhandled`]: every unobserved failure, exactly once |
//! | cancel the siblings when one fails | [`TaskGroup`]: the first failure cancels the rest, destructors run |
//!
//! # A tour in four steps
//!
//! **1. Spawn and join.** A task is a future the executor owns; its handle is a future of
//! its result.
//!
//! ```
//! let ex = warden::LocalExecutor::new();
//! let answer = ex.spawn(async { 6 * 7 });
//! assert_eq!(ex.block_on(answer).unwrap(), 42);
//! ```
//!
//! **2. A panic is data.** It does not unwind into the executor; it becomes a
//! [`TaskError`] with everything needed to find it.
//!
//! ```
//! let ex = warden::LocalExecutor::new();
//! let handle = ex.spawn_named("fetch-user", async { panic!("connection reset") });
//! let err = ex.block_on(handle).unwrap_err();
//! assert_eq!(err.panic_message(), Some("connection reset"));
//! assert_eq!(err.location().unwrap().file(), file!());
//! assert_eq!(err.task().name(), Some("fetch-user"));
//! assert!(err.backtrace().is_some());
//! ```
//!
//! **3. Nothing lost.** A failure whose handle is dropped unread goes to the error hook.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let ex = warden::Builder::new()
//!     .on_unhandled({
//!         let seen = seen.clone();
//!         move |err| seen.lock().unwrap().push(err.to_string())
//!     })
//!     .build_local();
//! ex.spawn(async { panic!("nobody is listening") }).detach();
//! ex.run_until_idle();
//! assert_eq!(seen.lock().unwrap().len(), 1);
//! ```
//!
//! **4. Groups.** The first failure cancels the siblings; `join` reports every failure.
//!
//! ```
//! let ex = warden::LocalExecutor::new();
//! let result = ex.block_on(async {
//!     let group = warden::TaskGroup::new();
//!     group.spawn(std::future::pending::<()>()).detach();
//!     group.spawn(async { Err::<(), _>("boom") }).detach();
//!     group.join().await
//! });
//! let err = result.unwrap_err();
//! assert_eq!(err.failures().len(), 1);
//! assert_eq!(err.cancelled(), 1);
//! ```
//!
//! # How it works, in the order to read it
//!
//! `docs/guide.md` builds an executor from an empty file; this is the short version, with
//! the file that implements each step.
//!
//! **A task is a future plus a header** (`src/task/`). Spawning allocates one block holding
//! the future, a state word and the failure slot, and queues it. Nothing runs until the
//! executor is driven:
//!
//! ```
//! let ex = warden::LocalExecutor::new();
//! let handle = ex.spawn(async { 1 + 1 });
//! assert!(!handle.is_finished()); // queued, not run
//! assert!(ex.try_tick()); // one turn of the run loop: pop, poll, store the result
//! assert!(handle.is_finished());
//! ```
//!
//! **A waker puts the task back on the queue** (`src/task/waker.rs`, `src/task/state.rs`).
//! A task that returns `Pending` sleeps until its waker fires; waking it twice queues it
//! once:
//!
//! ```
//! use std::future::poll_fn;
//! use std::task::Poll;
//!
//! let ex = warden::LocalExecutor::new();
//! let mut polls = 0;
//! let task = ex.spawn(poll_fn(move |cx| {
//!     polls += 1;
//!     if polls < 3 {
//!         cx.waker().wake_by_ref(); // ask to be polled again...
//!         cx.waker().wake_by_ref(); // ...once, however often we ask
//!         Poll::Pending
//!     } else {
//!         Poll::Ready(polls)
//!     }
//! }));
//! assert_eq!(ex.run_until_idle(), 3); // three polls, not five
//! assert_eq!(ex.block_on(task).unwrap(), 3);
//! ```
//!
//! **The run loop parks when there is nothing to do** (`src/block_on.rs`, `src/local/`,
//! `src/pool/`):
//! `block_on` alternates between the root future and the queue, and sleeps until a waker
//! or a timer (`src/time.rs`) unparks it.
//!
//! ```
//! use std::time::Duration;
//!
//! let ex = warden::Executor::new(); // worker threads, work stealing
//! let slept = ex.block_on(async {
//!     let t = warden::spawn(async { warden::sleep(Duration::from_millis(5)).await; "rested" });
//!     t.await.unwrap()
//! });
//! assert_eq!(slept, "rested");
//! ```
//!
//! **Every task's end is observable** (`src/hook.rs`, `src/trace.rs`): the outcome hook
//! sees each task once, and a timeline of spawns, polls, wakes, failures and cancellations
//! can be written for Perfetto with `Builder::trace` or `WARDEN_TRACE`.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let ended = Arc::new(AtomicUsize::new(0));
//! let ex = warden::Builder::new()
//!     .on_task_exit({
//!         let ended = ended.clone();
//!         move |_info, _exit| {
//!             ended.fetch_add(1, Ordering::SeqCst);
//!         }
//!     })
//!     .build_local();
//! ex.spawn(async {}).detach();
//! ex.spawn(async { panic!("counted too") }).detach();
//! ex.run_until_idle();
//! assert_eq!(ended.load(Ordering::SeqCst), 2);
//! ```
//!
//! # Nothing lost, nothing twice
//!
//! Every failure (a panic, or a group task's `Err`) is observed exactly once by the error
//! hook unless somebody else observes it: by awaiting its [`JoinHandle`], or by its group's
//! [`join`](TaskGroup::join) (which reports every member's failure, whether or not its
//! handle was awaited too). The hook gets it as soon as nobody can read it any more.
//! Cancellations are not failures and never reach the hook. [`Metrics`] always add up:
//! `spawned = completed + panicked + errored + cancelled + live`.
//!
//! # Where things are
//!
//! * `task/`: the task core (state word, harness, waker, handle); knows no executor.
//! * `failure/`, `hook.rs`: [`TaskError`], the panic hook, the error hook.
//! * `block_on.rs`: the `block_on` loop and the shutdown drain both executors share.
//! * `local.rs`: [`LocalExecutor`]; `pool/`: [`Executor`]; each is one scheduling policy.
//! * `group/`: [`TaskGroup`]; `time.rs`: [`sleep`], [`timeout`].
//! * `supervise/`: [`Supervisor`], OTP-style restarts; `clock.rs`: [`ManualClock`], time
//!   for tests.
//!
//! # Panics and aborts
//!
//! A panic inside a task, inside a future's destructor during cancellation, or inside the
//! error hook is caught. Rust itself aborts the process on a panic *while already
//! unwinding* (a destructor that panics during a panic's unwinding); warden cannot catch
//! that.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

mod block_on;
mod builder;
mod clock;
mod context;
#[cfg(feature = "criterion")]
mod criterion_support;
mod dump;
mod failure;
mod group;
mod handle;
mod hook;
#[cfg(all(feature = "hyper", not(loom)))]
mod hyper_io;
mod local;
mod loom;
mod metrics;
mod outcome;
mod park;
mod pool;
mod report;
mod run_next;
mod stall;
pub mod supervise;
mod task;
mod time;
mod trace;

#[cfg(all(test, loom))]
mod loom_models;

/// The README's example runs as a doctest, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use builder::Builder;
pub use clock::ManualClock;
pub use dump::TaskDump;
pub use failure::{Backtraces, BoxError, CancelReason, GroupError, Location, TaskError};
pub use group::{GroupCanceller, GroupJoin, TaskGroup};
pub use handle::Handle;
pub use hook::{TaskExit, UnhandledPolicy};
#[cfg(all(feature = "hyper", not(loom)))]
pub use hyper_io::HyperIo;
pub use local::LocalExecutor;
pub use metrics::Metrics;
pub use outcome::Outcome;
pub use pool::Executor;
pub use stall::{Stall, StallKind};
pub use supervise::{Backoff, Child, Restart, Restarted, Strategy, Supervisor, SupervisorError};
pub use task::{GroupId, JoinHandle, PollTiming, TaskId, TaskInfo, TaskSnapshot, TaskState};
pub use time::{Elapsed, Sleep, Timeout, sleep, sleep_until, timeout};

/// Runs `future` to completion on a fresh [`LocalExecutor`], together with the tasks it
/// spawns. When it returns, the executor is dropped: tasks still pending are cancelled
/// with [`CancelReason::Shutdown`].
///
/// # Examples
///
/// ```
/// let v = warden::block_on(async {
///     let h = warden::spawn(async { 2 });
///     h.await.unwrap() * 21
/// });
/// assert_eq!(v, 42);
/// ```
///
/// # Panics
///
/// If called from inside a task or another `block_on` on this thread.
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    LocalExecutor::new().block_on(future)
}

/// Spawns a task onto the executor of the current task (or `block_on`).
///
/// # Examples
///
/// ```
/// let ex = warden::Executor::new();
/// let v = ex.block_on(async { warden::spawn(async { 5 }).await.unwrap() });
/// assert_eq!(v, 5);
/// ```
///
/// # Panics
///
/// If no warden executor is running on this thread.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let spec = task::SpawnSpec::new(None);
    context::with_current("warden::spawn", |h| h.spawn_with(future, task::plain, spec))
}

/// Spawns a named task onto the executor of the current task (or `block_on`).
///
/// # Panics
///
/// If no warden executor is running on this thread.
#[track_caller]
pub fn spawn_named<F>(name: impl Into<String>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let spec = task::SpawnSpec::new(Some(name.into()));
    context::with_current("warden::spawn_named", |h| {
        h.spawn_with(future, task::plain, spec)
    })
}

/// Spawns a future that is not `Send` onto the current [`LocalExecutor`].
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// let v = warden::block_on(async {
///     let shared = Rc::new(3);
///     warden::spawn_local(async move { *shared }).await.unwrap()
/// });
/// assert_eq!(v, 3);
/// ```
///
/// # Panics
///
/// If no warden executor is running on this thread, or it is a multi-threaded
/// [`Executor`].
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    context::expect_current("warden::spawn_local").spawn_local_with(
        future,
        task::plain,
        task::SpawnSpec::new(None),
        "warden::spawn_local",
    )
}

/// Spawns a named future that is not `Send` onto the current [`LocalExecutor`]; the name
/// appears in every failure report and log line.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// let err = warden::block_on(async {
///     let shared = Rc::new(3);
///     warden::spawn_local_named("counter", async move {
///         if *shared == 3 {
///             panic!("three is too many");
///         }
///     })
///     .await
///     .unwrap_err()
/// });
/// assert_eq!(err.task().name(), Some("counter"));
/// ```
///
/// # Panics
///
/// If no warden executor is running on this thread, or it is a multi-threaded
/// [`Executor`].
#[track_caller]
pub fn spawn_local_named<F>(name: impl Into<String>, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    context::expect_current("warden::spawn_local_named").spawn_local_with(
        future,
        task::plain,
        task::SpawnSpec::new(Some(name.into())),
        "warden::spawn_local_named",
    )
}

/// Yields once: the current task goes to the back of its executor's queue, so other ready
/// tasks run first.
///
/// # Examples
///
/// ```
/// warden::block_on(async {
///     warden::yield_now().await;
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

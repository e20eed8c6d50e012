//! Shared helpers for the integration tests.
//!
//! * [`Flavor`] / [`Rt`] and the [`rt_test!`] macro: one test body, run on both executors
//!   (as tokio's `rt_common.rs` does).
//! * [`DropCounter`] / [`PollCounter`]: futures that count their drops and polls.
//! * [`HookLog`]: an error hook that records what it saw.
//! * [`Trace`]: an ordered event log to assert against.
//! * [`guard`]: hang guards ([`hang_guard`], [`no_hang`], [`bounded`]).
//! * [`child`]: running one test again in a child process.
//! * Driving and polling: [`drive_until`], [`drive_until_bounded`], [`wait_until`],
//!   [`poll_once`], [`poll_quietly`].
//! * Panics: [`payload_str`], [`payload_text`], [`escaped`], [`must_not_panic`].

#![allow(dead_code)]

pub mod child;
pub mod guard;

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use guard::{bounded, hang_guard, no_hang, no_hang_or};

use warden::{Builder, Executor, Handle, JoinHandle, LocalExecutor, Metrics, TaskError, TaskGroup};

/// Which executor a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Local,
    /// The pool, with 2 workers (this is a 2-core machine).
    Pool,
}

impl Flavor {
    pub fn build(self, builder: Builder) -> Rt {
        match self {
            Flavor::Local => Rt::Local(builder.build_local()),
            Flavor::Pool => Rt::Pool(builder.worker_threads(2).build()),
        }
    }

    pub fn rt(self) -> Rt {
        self.build(Builder::new())
    }
}

/// Either executor, with the methods both have.
#[derive(Debug)]
pub enum Rt {
    Local(LocalExecutor),
    Pool(Executor),
}

impl Rt {
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            Rt::Local(ex) => ex.block_on(future),
            Rt::Pool(ex) => ex.block_on(future),
        }
    }

    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Rt::Local(ex) => ex.spawn(future),
            Rt::Pool(ex) => ex.spawn(future),
        }
    }

    #[track_caller]
    pub fn spawn_named<F>(&self, name: &str, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Rt::Local(ex) => ex.spawn_named(name, future),
            Rt::Pool(ex) => ex.spawn_named(name, future),
        }
    }

    pub fn group(&self) -> TaskGroup {
        match self {
            Rt::Local(ex) => ex.group(),
            Rt::Pool(ex) => ex.group(),
        }
    }

    pub fn handle(&self) -> Handle {
        match self {
            Rt::Local(ex) => ex.handle(),
            Rt::Pool(ex) => ex.handle(),
        }
    }

    pub fn metrics(&self) -> Metrics {
        match self {
            Rt::Local(ex) => ex.metrics(),
            Rt::Pool(ex) => ex.metrics(),
        }
    }

    pub fn timer_count(&self) -> usize {
        match self {
            Rt::Local(ex) => ex.timer_count(),
            Rt::Pool(ex) => ex.timer_count(),
        }
    }

    pub fn shutdown(&self) {
        match self {
            Rt::Local(ex) => ex.shutdown(),
            Rt::Pool(ex) => ex.shutdown(),
        }
    }

    pub fn flavor(&self) -> Flavor {
        match self {
            Rt::Local(_) => Flavor::Local,
            Rt::Pool(_) => Flavor::Pool,
        }
    }
}

/// Expands each test body into `mod local` and `mod pool`, one `#[test]` per flavor:
///
/// ```ignore
/// rt_test! {
///     fn spawns(flavor) {
///         let rt = flavor.rt();
///         assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
///     }
/// }
/// ```
#[macro_export]
macro_rules! rt_test {
    ($( $(#[$meta:meta])* fn $name:ident($flavor:ident) $body:block )*) => {
        mod local {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    let $flavor = $crate::support::Flavor::Local;
                    $body
                }
            )*
        }
        mod pool {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    let $flavor = $crate::support::Flavor::Pool;
                    $body
                }
            )*
        }
    };
}

/// Counts how many times its clones were dropped.
#[derive(Debug, Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A token that bumps the counter when dropped; move it into a future.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Bumps its [`DropCounter`] when dropped.
#[derive(Debug)]
pub struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until cancelled, like `std::future::pending()`, but keeps its waker, as a task
/// waiting on real I/O does: a detached task waiting here is never freed as a lost waker,
/// so it lives until something cancels it (a shutdown, say).
pub async fn wait_forever() {
    KeepsItsWaker(None).await
}

/// Returns `Pending` forever, keeping a clone of the latest waker.
pub struct KeepsItsWaker(Option<Waker>);

impl Future for KeepsItsWaker {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0 = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A future that counts its polls and never completes unless `ready_after` polls passed.
#[derive(Debug)]
pub struct PollCounter {
    polls: Arc<AtomicUsize>,
    ready_after: Option<usize>,
}

impl PollCounter {
    /// Pending forever (until cancelled); returns the shared poll count.
    pub fn pending() -> (PollCounter, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        (
            PollCounter {
                polls: polls.clone(),
                ready_after: None,
            },
            polls,
        )
    }
}

impl Future for PollCounter {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        match self.ready_after {
            Some(limit) if n >= limit => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

/// An error hook that records each failure it sees.
#[derive(Debug, Clone, Default)]
pub struct HookLog(Arc<Mutex<Vec<TaskError>>>);

impl HookLog {
    pub fn new() -> HookLog {
        HookLog::default()
    }

    /// A builder with this log as its error hook.
    pub fn builder(&self) -> Builder {
        let log = self.clone();
        Builder::new().on_unhandled(move |err| log.0.lock().unwrap().push(err.clone()))
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn errors(&self) -> Vec<TaskError> {
        self.0.lock().unwrap().clone()
    }
}

/// An ordered log of events, to assert the order things happened in.
#[derive(Debug, Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    pub fn new() -> Trace {
        Trace::default()
    }

    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Fixes a body that only panics to `()` (Rust 2024 would infer `!`).
pub fn unit(f: impl Future<Output = ()>) -> impl Future<Output = ()> {
    f
}

/// Asserts that `m` adds up.
#[track_caller]
pub fn assert_adds_up(m: &Metrics) {
    assert_eq!(
        m.spawned,
        m.completed + m.panicked + m.errored + m.cancelled + m.live,
        "metrics do not add up: {m:?}"
    );
}

/// Drives `rt` (on the calling thread for the local executor) until `cond` holds, yielding
/// to the executor and to other threads in between. Unbounded: pair it with a hang guard.
pub fn drive_until(rt: &Rt, cond: impl Fn() -> bool) {
    rt.block_on(async {
        while !cond() {
            std::thread::yield_now();
            warden::yield_now().await;
        }
    });
}

/// Drives `rt` until `done` holds: yields for 100 rounds, then sleeps 1 ms a round, and
/// panics with "the condition never became true" after 5,000 rounds (about 5 s).
pub fn drive_until_bounded(rt: &Rt, mut done: impl FnMut() -> bool) {
    rt.block_on(async {
        for round in 0..5_000u32 {
            if done() {
                return;
            }
            if round < 100 {
                warden::yield_now().await;
            } else {
                warden::sleep(Duration::from_millis(1)).await;
            }
        }
        panic!("the condition never became true");
    })
}

/// Yields (inside a task or `block_on`) until `cond` holds; fails with "timed out waiting
/// for `what`" after 10 s, so a bug shows up as a failure, not a hang.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        warden::yield_now().await;
    }
}

/// Polls `fut` once with `waker` in its context.
pub fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// Polls `fut` once with a no-op waker.
pub fn poll_quietly<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_once(fut, &futures::task::noop_waker())
}

/// The text of a `&str` or `String` panic payload, `None` for any other payload. (Which of
/// the two `panic!` produces is up to std: a message whose arguments are constants is
/// folded into a `&'static str`.)
///
/// Pass `&*payload` for a `Box<dyn Any + Send>`: `&payload` would be the box itself.
pub fn payload_str(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// The text of a `&str` or `String` panic payload, `"<non-string payload>"` for any other.
///
/// Pass `&*payload` for a `Box<dyn Any + Send>`: `&payload` would be the box itself.
pub fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload_str(payload).unwrap_or_else(|| "<non-string payload>".to_owned())
}

/// Runs `f`; returns the text of the panic that escaped it ([`payload_text`]), if one did.
pub fn escaped<R>(f: impl FnOnce() -> R) -> Option<String> {
    catch_unwind(AssertUnwindSafe(f))
        .err()
        .map(|p| payload_text(&*p))
}

/// Runs `f`, asserting that no panic (a destructor's, in the tests that use it) escapes
/// it; the failure names `what` and the panic's text.
#[track_caller]
pub fn must_not_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(p) => panic!(
            "a destructor's panic escaped {what}: {:?}",
            payload_str(&*p)
        ),
    }
}

/// On the pool, asserts that both workers are alive: two tasks that each wait (up to 10 s)
/// for the other to have started can only both finish on two threads. Does nothing on the
/// local executor.
#[track_caller]
pub fn assert_both_workers_alive(rt: &Rt) {
    if rt.flavor() != Flavor::Pool {
        return;
    }
    let (a_tx, a_rx) = std::sync::mpsc::channel::<()>();
    let (b_tx, b_rx) = std::sync::mpsc::channel::<()>();
    let a = rt.spawn(async move {
        a_tx.send(()).unwrap();
        b_rx.recv_timeout(Duration::from_secs(10)).is_ok()
    });
    let b = rt.spawn(async move {
        b_tx.send(()).unwrap();
        a_rx.recv_timeout(Duration::from_secs(10)).is_ok()
    });
    assert_eq!(
        rt.block_on(async { (a.await.unwrap(), b.await.unwrap()) }),
        (true, true),
        "a worker died"
    );
}

/// A `log` logger that takes nothing, installed once for this test binary (with the level
/// at `Info`, so warden sends its reports to `log` rather than to stderr). For tests whose
/// reports are expected in the thousands (restart logs in a soak), where stderr would
/// only fill the CI log.
pub fn quiet_logs() {
    struct Quiet;
    impl log::Log for Quiet {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            false
        }
        fn log(&self, _: &log::Record<'_>) {}
        fn flush(&self) {}
    }
    static QUIET: Quiet = Quiet;
    if log::set_logger(&QUIET).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

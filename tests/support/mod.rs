//! Shared helpers for the integration tests.
//!
//! * [`Flavor`] / [`Rt`] and the [`rt_test!`] macro: one test body, run on both executors
//!   (as tokio's `rt_common.rs` does).
//! * [`DropCounter`] / [`PollCounter`]: futures that count their drops and polls.
//! * [`HookLog`]: an error hook that records what it saw.
//! * [`Trace`]: an ordered event log to assert against.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

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

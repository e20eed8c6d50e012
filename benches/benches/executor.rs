//! warden against its peers, workload by workload.
//!
//! Every workload runs on eight runtimes, in two groups per workload:
//!
//! | mode     | warden                          | tokio                       | async-executor                      | futures                |
//! |----------|---------------------------------|-----------------------------|-------------------------------------|------------------------|
//! | `single` | `LocalExecutor`                 | `current_thread`            | `LocalExecutor`                     | `LocalPool`            |
//! | `multi`  | `Executor`, 2 workers           | `multi_thread`, 2 workers   | `Executor`, 2 threads in `run`      | `ThreadPool`, 2 threads |
//!
//! Criterion groups are named `{workload}/{mode}`; the function id is the runtime. Each
//! runtime is built once per benchmark, before criterion starts timing, and dropped after.
//! `cargo bench -p warden-bench` runs it (this file is in the `benches/` workspace member,
//! the only one that depends on the peers); `benches/report.py` turns the results into
//! `docs/benchmarks.md`.
//!
//! The workloads follow tokio's `benches/rt_multi_threaded.rs` and async-executor's
//! `benches/executor.rs`:
//!
//! * `spawn_many`: a task spawns 10 000 trivial tasks and awaits every handle (on the
//!   `multi` runtimes, spawning from a worker);
//! * `spawn_remote`: the bench thread spawns 10 000 trivial tasks through a handle, from
//!   outside the executor, then awaits them all in `block_on`;
//! * `yield_many`: the `block_on` root spawns 200 tasks that yield 1 000 times each, and
//!   awaits them. warden and tokio use their own `yield_now`; async-executor and futures
//!   a future that wakes itself once (futures-lite's `yield_now`). On futures'
//!   `ThreadPool` that is no real yield: a task woken during its own poll is polled again
//!   at once, in place, so the report leaves it out of the `multi` ratios;
//! * `ping_pong`: a task spawns 1 000 pingers; each spawns its ponger and the pair does one
//!   round trip over two `futures::channel::oneshot`s (tokio's shape);
//! * `chained_spawn`: a chain of 1 000 tasks, each spawning the next; the last one
//!   signals over a oneshot;
//! * `panic_storm`: the root spawns 10 000 tasks, every 10th panics, and awaits them all,
//!   counting the panics. warden as `warden` (a no-op error hook, `Backtraces::Always`) and
//!   `warden-bt-off` (`Backtraces::Off`); async-executor and futures tasks are wrapped in
//!   `catch_unwind`; tokio reports panics through `JoinError`;
//! * `cancel_group`: 10 000 tasks that are polled once and then stay pending, cancelled;
//!   timed from the cancel until every future has been dropped (a drop counter), so the
//!   spawning and first polls are not timed. `warden`: one `TaskGroup`, `cancel()` then
//!   `join().await`; `warden-each`: `JoinHandle::cancel` on each task, then each awaited;
//!   tokio: `JoinHandle::abort` on each, then each awaited; async-executor: every `Task`
//!   dropped; futures: `AbortHandle::abort` on each (`futures::future::abortable`);
//! * `group_overhead`: `yield_many` on warden only, every task spawned into one
//!   `TaskGroup` and the group joined (`warden-group`) vs plain spawn (`warden-plain`).
//! * `restart` (in `executor/restart.rs`): one child under a supervisor fails (`panic`,
//!   or `err`: returns `Err`) and is restarted, 1 000 times in a row; timed until the last
//!   restarted child's first poll. warden's `Supervisor` (`warden`, and `warden-bt-off` or
//!   `warden-log`) against the restart loop written by hand on tokio and async-executor
//!   (futures has no peer here). Groups `restart/panic/{mode}` and `restart/err/{mode}`.
//!
//! Panics: `main` installs a panic hook before any warden executor exists, so warden's
//! own hook (installed with the first executor, chained to the previous one) still
//! captures task panics. That hook stays quiet about `panic_storm`'s and `restart`'s own
//! panics while they run, and passes every other panic to the default hook.
//!
//! A full run takes 20 samples per benchmark, after 1 s of warm-up, over 3 s of
//! measurement. `WARDEN_BENCH_QUICK=1` cuts that to 10 samples, 0.5 s and 1 s, and turns
//! off criterion's plots (and so its HTML report), which on a 2-core machine cost more
//! time than the measurements; `WARDEN_BENCH_PLOTS=1` turns them back on.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use futures::channel::oneshot;
use futures::future::{AbortHandle, Map, RemoteHandle, abortable};
use futures::task::{AtomicWaker, LocalSpawnExt, SpawnExt};
use futures::{FutureExt, executor::LocalPool, executor::ThreadPool};
use warden::{Backtraces, Builder, TaskError};

#[path = "executor/restart.rs"]
mod restart;

const SPAWN_MANY: usize = 10_000;
const YIELD_TASKS: usize = 200;
const YIELDS: usize = 1_000;
const PINGS: usize = 1_000;
const CHAIN: usize = 1_000;
const PANIC_TASKS: usize = 10_000;
const PANIC_EVERY: usize = 10;
const CANCEL_TASKS: usize = 10_000;
const WORKERS: usize = 2;
/// How every `panic_storm` panic message starts.
const STORM_MESSAGE: &str = "panic_storm: task";

// ---------------------------------------------------------------------------------------
// Small futures shared by every runtime.

/// A yield for runtimes without one of their own (futures-lite's `yield_now`): wakes
/// itself once and returns `Pending`. On futures' `ThreadPool` this is no real yield: a
/// task that wakes itself during its poll is polled again at once, in place.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Counts events down to zero; `wait` resolves at zero. Parks properly (no spinning), so
/// a waiting bench thread does not steal a core from the workers.
struct Countdown {
    left: AtomicUsize,
    waker: AtomicWaker,
}

impl Countdown {
    fn new(n: usize) -> Arc<Countdown> {
        Arc::new(Countdown {
            left: AtomicUsize::new(n),
            waker: AtomicWaker::new(),
        })
    }

    fn hit(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waker.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> CountdownWait {
        CountdownWait(self.clone())
    }
}

struct CountdownWait(Arc<Countdown>);

impl Future for CountdownWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.left.load(Ordering::Acquire) == 0 {
            return Poll::Ready(());
        }
        self.0.waker.register(cx.waker());
        if self.0.left.load(Ordering::Acquire) == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A task that never completes: counts its first poll, and its drop.
struct PendingGuard {
    polled: Option<Arc<Countdown>>,
    dropped: Arc<Countdown>,
}

impl PendingGuard {
    fn new(polled: &Arc<Countdown>, dropped: &Arc<Countdown>) -> PendingGuard {
        PendingGuard {
            polled: Some(polled.clone()),
            dropped: dropped.clone(),
        }
    }
}

impl Future for PendingGuard {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if let Some(polled) = self.polled.take() {
            polled.hit();
        }
        Poll::Pending
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.dropped.hit();
    }
}

fn unwrap_ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.expect("a benchmark task failed")
}

type Caught = Result<(), Box<dyn Any + Send>>;

fn caught_panic(result: Caught) -> bool {
    result.is_err()
}

// ---------------------------------------------------------------------------------------
// What a workload needs from a runtime.

/// Drives a runtime from the bench thread.
trait Driver {
    /// How tasks (and the bench thread) spawn onto it.
    type S: Clone + 'static;
    fn spawner(&self) -> Self::S;
    /// Runs `f` to completion on the bench thread, the runtime's tasks meanwhile.
    fn block_on<F: Future>(&self, f: F) -> F::Output;
}

/// Spawning `Send` futures (every runtime but async-executor's and futures' local ones).
trait SpawnSend: Clone + Send + Sync + 'static {
    type Join<T: Send + 'static>: Future<Output = T> + Send + 'static;
    /// Resolves to whether the task panicked.
    type Catch: Future<Output = bool> + Send + 'static;
    type Abort: Send + 'static;
    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    fn spawn_detached<F: Future<Output = ()> + Send + 'static>(&self, f: F);
    fn spawn_catch<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Catch;
    fn spawn_abortable<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Abort;
    /// Cancels every task; resolves when the runtime has been told (their futures may be
    /// dropped later: callers wait for the drops).
    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> + Send;
    fn yield_now() -> impl Future<Output = ()> + Send + 'static;
}

/// The same for runtimes whose spawner is `!Send` (async-executor's `LocalExecutor`,
/// futures' `LocalPool`).
trait SpawnLocal: Clone + 'static {
    type Join<T: 'static>: Future<Output = T> + 'static;
    type Catch: Future<Output = bool> + 'static;
    type Abort: 'static;
    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static;
    fn spawn_detached<F: Future<Output = ()> + 'static>(&self, f: F);
    fn spawn_catch<F: Future<Output = ()> + 'static>(&self, f: F) -> Self::Catch;
    fn spawn_abortable<F: Future<Output = ()> + 'static>(&self, f: F) -> Self::Abort;
    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()>;
    fn yield_now() -> impl Future<Output = ()> + 'static;
}

// ---------------------------------------------------------------------------------------
// The workloads, written once and instantiated for both spawner traits.

macro_rules! workloads {
    ($module:ident, $spawner:ident) => {
        mod $module {
            use super::$spawner as Spawner;
            use super::*;

            /// One task spawns `SPAWN_MANY` trivial tasks and awaits them all.
            pub fn spawn_many<D: Driver>(d: &D)
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                let inner = s.clone();
                let root = s.spawn(async move {
                    let handles: Vec<_> = (0..SPAWN_MANY).map(|_| inner.spawn(async {})).collect();
                    for handle in handles {
                        handle.await;
                    }
                });
                d.block_on(root);
            }

            /// The bench thread spawns `SPAWN_MANY` trivial tasks from outside the runtime,
            /// then awaits them all.
            pub fn spawn_remote<D: Driver>(d: &D)
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                let handles: Vec<_> = (0..SPAWN_MANY).map(|_| s.spawn(async {})).collect();
                d.block_on(async move {
                    for handle in handles {
                        handle.await;
                    }
                });
            }

            /// `YIELD_TASKS` tasks yield `YIELDS` times each.
            pub fn yield_many<D: Driver>(d: &D)
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                d.block_on(async move {
                    let handles: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            s.spawn(async {
                                for _ in 0..YIELDS {
                                    <D::S as Spawner>::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await;
                    }
                });
            }

            /// tokio's shape: a task spawns `PINGS` pingers; each spawns its ponger, and
            /// the pair does one round trip over two oneshots.
            pub fn ping_pong<D: Driver>(d: &D)
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                let done = Countdown::new(PINGS);
                let spawner = s.clone();
                let counter = done.clone();
                s.spawn_detached(async move {
                    for _ in 0..PINGS {
                        let inner = spawner.clone();
                        let done = counter.clone();
                        spawner.spawn_detached(async move {
                            let (ping_tx, ping_rx) = oneshot::channel::<()>();
                            let (pong_tx, pong_rx) = oneshot::channel::<()>();
                            inner.spawn_detached(async move {
                                ping_rx.await.unwrap();
                                pong_tx.send(()).unwrap();
                            });
                            ping_tx.send(()).unwrap();
                            pong_rx.await.unwrap();
                            done.hit();
                        });
                    }
                });
                d.block_on(done.wait());
            }

            fn chain<S: Spawner>(s: S, left: usize, done: oneshot::Sender<()>) {
                if left == 0 {
                    let _ = done.send(());
                } else {
                    let next = s.clone();
                    s.spawn_detached(async move { chain(next, left - 1, done) });
                }
            }

            /// A chain of `CHAIN` tasks, each spawning the next.
            pub fn chained_spawn<D: Driver>(d: &D)
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                d.block_on(async move {
                    let (tx, rx) = oneshot::channel();
                    chain(s, CHAIN, tx);
                    rx.await.unwrap();
                });
            }

            /// `PANIC_TASKS` tasks, every `PANIC_EVERY`th panics; all awaited.
            pub fn panic_storm<D: Driver>(d: &D)
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                let panicked = d.block_on(async move {
                    let handles: Vec<_> = (0..PANIC_TASKS)
                        .map(|i| {
                            s.spawn_catch(async move {
                                if i % PANIC_EVERY == 0 {
                                    panic!("{STORM_MESSAGE} {i}");
                                }
                            })
                        })
                        .collect();
                    let mut panicked = 0;
                    for handle in handles {
                        panicked += usize::from(handle.await);
                    }
                    panicked
                });
                assert_eq!(panicked, PANIC_TASKS / PANIC_EVERY);
            }

            /// `CANCEL_TASKS` pending tasks, each cancelled on its own; timed from the
            /// first cancel until every future is dropped.
            pub fn cancel_each<D: Driver>(d: &D, iters: u64) -> Duration
            where
                D::S: Spawner,
            {
                let s = d.spawner();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let polled = Countdown::new(CANCEL_TASKS);
                    let dropped = Countdown::new(CANCEL_TASKS);
                    let tasks: Vec<_> = (0..CANCEL_TASKS)
                        .map(|_| s.spawn_abortable(PendingGuard::new(&polled, &dropped)))
                        .collect();
                    d.block_on(polled.wait());
                    let start = Instant::now();
                    d.block_on(async {
                        <D::S as Spawner>::abort_all(tasks).await;
                        dropped.wait().await;
                    });
                    total += start.elapsed();
                }
                total
            }
        }
    };
}

workloads!(send, SpawnSend);
workloads!(local, SpawnLocal);

// ---------------------------------------------------------------------------------------
// warden-only workloads.

/// `CANCEL_TASKS` pending tasks in one `TaskGroup`; `group.cancel()`, then `join`.
fn cancel_group_warden<D: Driver<S = warden::Handle>>(d: &D, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let polled = Countdown::new(CANCEL_TASKS);
        let dropped = Countdown::new(CANCEL_TASKS);
        let group = d.spawner().group();
        for _ in 0..CANCEL_TASKS {
            group.spawn(PendingGuard::new(&polled, &dropped)).detach();
        }
        d.block_on(polled.wait());
        let start = Instant::now();
        group.cancel();
        let report = d.block_on(group.join());
        d.block_on(dropped.wait());
        total += start.elapsed();
        let err = report.expect_err("a cancelled group reports its cancellations");
        assert_eq!(err.cancelled(), CANCEL_TASKS);
    }
    total
}

/// `yield_many` with every task a member of one `TaskGroup`, joined at the end.
fn yield_many_group<D: Driver<S = warden::Handle>>(d: &D) {
    let s = d.spawner();
    d.block_on(async move {
        let group = s.group();
        for _ in 0..YIELD_TASKS {
            group
                .spawn(async {
                    for _ in 0..YIELDS {
                        warden::yield_now().await;
                    }
                })
                .detach();
        }
        group.join().await.expect("no member fails");
    });
}

// ---------------------------------------------------------------------------------------
// warden.

struct WardenLocal(warden::LocalExecutor);
struct WardenMulti(warden::Executor);

impl WardenLocal {
    fn new(builder: Builder) -> WardenLocal {
        WardenLocal(builder.build_local())
    }
}

impl WardenMulti {
    fn new(builder: Builder) -> WardenMulti {
        WardenMulti(builder.worker_threads(WORKERS).build())
    }
}

impl Driver for WardenLocal {
    type S = warden::Handle;
    fn spawner(&self) -> warden::Handle {
        self.0.handle()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
}

impl Driver for WardenMulti {
    type S = warden::Handle;
    fn spawner(&self) -> warden::Handle {
        self.0.handle()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
}

type WardenJoin<T> = warden::JoinHandle<T>;

impl SpawnSend for warden::Handle {
    type Join<T: Send + 'static> = Map<WardenJoin<T>, fn(Result<T, TaskError>) -> T>;
    type Catch = Map<WardenJoin<()>, fn(Result<(), TaskError>) -> bool>;
    type Abort = WardenJoin<()>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        warden::Handle::spawn(self, f).map(unwrap_ok as fn(_) -> _)
    }

    fn spawn_detached<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        warden::Handle::spawn(self, f).detach();
    }

    fn spawn_catch<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Catch {
        fn is_panic(result: Result<(), TaskError>) -> bool {
            result.is_err_and(|e| e.is_panic())
        }
        warden::Handle::spawn(self, f).map(is_panic as fn(_) -> _)
    }

    fn spawn_abortable<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Abort {
        warden::Handle::spawn(self, f)
    }

    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> + Send {
        for task in &tasks {
            task.cancel();
        }
        async move {
            for task in tasks {
                let err = task.await.expect_err("cancelled");
                assert!(err.is_cancelled());
            }
        }
    }

    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        warden::yield_now()
    }
}

// ---------------------------------------------------------------------------------------
// tokio.

struct Tokio(tokio::runtime::Runtime);

impl Tokio {
    fn current_thread() -> Tokio {
        Tokio(
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("tokio current_thread runtime"),
        )
    }

    fn multi_thread() -> Tokio {
        Tokio(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .build()
                .expect("tokio multi_thread runtime"),
        )
    }
}

impl Driver for Tokio {
    type S = tokio::runtime::Handle;
    fn spawner(&self) -> tokio::runtime::Handle {
        self.0.handle().clone()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
}

type TokioJoin<T> = tokio::task::JoinHandle<T>;
type JoinError = tokio::task::JoinError;

impl SpawnSend for tokio::runtime::Handle {
    type Join<T: Send + 'static> = Map<TokioJoin<T>, fn(Result<T, JoinError>) -> T>;
    type Catch = Map<TokioJoin<()>, fn(Result<(), JoinError>) -> bool>;
    type Abort = TokioJoin<()>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::runtime::Handle::spawn(self, f).map(unwrap_ok as fn(_) -> _)
    }

    fn spawn_detached<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        drop(tokio::runtime::Handle::spawn(self, f));
    }

    fn spawn_catch<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Catch {
        fn is_panic(result: Result<(), JoinError>) -> bool {
            result.is_err_and(|e| e.is_panic())
        }
        tokio::runtime::Handle::spawn(self, f).map(is_panic as fn(_) -> _)
    }

    fn spawn_abortable<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Abort {
        tokio::runtime::Handle::spawn(self, f)
    }

    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> + Send {
        for task in &tasks {
            task.abort();
        }
        async move {
            for task in tasks {
                let err = task.await.expect_err("aborted");
                assert!(err.is_cancelled());
            }
        }
    }

    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        tokio::task::yield_now()
    }
}

// ---------------------------------------------------------------------------------------
// async-executor.

struct AsyncLocal(Rc<async_executor::LocalExecutor<'static>>);

impl Driver for AsyncLocal {
    type S = Rc<async_executor::LocalExecutor<'static>>;
    fn spawner(&self) -> Self::S {
        self.0.clone()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        futures::executor::block_on(self.0.run(f))
    }
}

/// async-executor driven by two threads, as its own benches do: one extra thread runs
/// `ex.run(shutdown)`, and the bench thread runs `ex.run(work)` in `block_on`.
struct AsyncMulti {
    ex: Arc<async_executor::Executor<'static>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AsyncMulti {
    fn new() -> AsyncMulti {
        let ex = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let runner = ex.clone();
        let thread = std::thread::Builder::new()
            .name("async-executor-runner".into())
            .spawn(move || {
                futures::executor::block_on(runner.run(async {
                    let _ = stopped.await;
                }))
            })
            .expect("async-executor runner thread");
        AsyncMulti {
            ex,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for AsyncMulti {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("async-executor runner thread panicked");
        }
    }
}

impl Driver for AsyncMulti {
    type S = Arc<async_executor::Executor<'static>>;
    fn spawner(&self) -> Self::S {
        self.ex.clone()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        futures::executor::block_on(self.ex.run(f))
    }
}

type AsyncTask<T> = async_executor::Task<T>;

impl SpawnSend for Arc<async_executor::Executor<'static>> {
    type Join<T: Send + 'static> = AsyncTask<T>;
    type Catch = Map<AsyncTask<Caught>, fn(Caught) -> bool>;
    type Abort = AsyncTask<()>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        async_executor::Executor::spawn(self, f)
    }

    fn spawn_detached<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        async_executor::Executor::spawn(self, f).detach();
    }

    fn spawn_catch<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Catch {
        async_executor::Executor::spawn(self, AssertUnwindSafe(f).catch_unwind())
            .map(caught_panic as fn(_) -> _)
    }

    fn spawn_abortable<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Abort {
        async_executor::Executor::spawn(self, f)
    }

    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> + Send {
        // Dropping a `Task` cancels it; the executor drops the future when it next runs it.
        drop(tasks);
        async {}
    }

    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        YieldNow(false)
    }
}

impl SpawnLocal for Rc<async_executor::LocalExecutor<'static>> {
    type Join<T: 'static> = AsyncTask<T>;
    type Catch = Map<AsyncTask<Caught>, fn(Caught) -> bool>;
    type Abort = AsyncTask<()>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        async_executor::LocalExecutor::spawn(self, f)
    }

    fn spawn_detached<F: Future<Output = ()> + 'static>(&self, f: F) {
        async_executor::LocalExecutor::spawn(self, f).detach();
    }

    fn spawn_catch<F: Future<Output = ()> + 'static>(&self, f: F) -> Self::Catch {
        async_executor::LocalExecutor::spawn(self, AssertUnwindSafe(f).catch_unwind())
            .map(caught_panic as fn(_) -> _)
    }

    fn spawn_abortable<F: Future<Output = ()> + 'static>(&self, f: F) -> Self::Abort {
        async_executor::LocalExecutor::spawn(self, f)
    }

    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> {
        drop(tasks);
        async {}
    }

    fn yield_now() -> impl Future<Output = ()> + 'static {
        YieldNow(false)
    }
}

// ---------------------------------------------------------------------------------------
// futures.

struct FuturesLocal {
    pool: RefCell<LocalPool>,
    spawner: futures::executor::LocalSpawner,
}

impl FuturesLocal {
    fn new() -> FuturesLocal {
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        FuturesLocal {
            pool: RefCell::new(pool),
            spawner,
        }
    }
}

impl Driver for FuturesLocal {
    type S = futures::executor::LocalSpawner;
    fn spawner(&self) -> Self::S {
        self.spawner.clone()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.pool.borrow_mut().run_until(f)
    }
}

struct FuturesPool(ThreadPool);

impl FuturesPool {
    fn new() -> FuturesPool {
        FuturesPool(
            ThreadPool::builder()
                .pool_size(WORKERS)
                .name_prefix("futures-pool-")
                .create()
                .expect("futures ThreadPool"),
        )
    }
}

impl Driver for FuturesPool {
    type S = ThreadPool;
    fn spawner(&self) -> ThreadPool {
        self.0.clone()
    }
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        futures::executor::block_on(f)
    }
}

impl SpawnSend for ThreadPool {
    type Join<T: Send + 'static> = RemoteHandle<T>;
    type Catch = Map<RemoteHandle<Caught>, fn(Caught) -> bool>;
    type Abort = AbortHandle;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with_handle(f).expect("ThreadPool spawn")
    }

    fn spawn_detached<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        self.spawn_ok(f);
    }

    fn spawn_catch<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Catch {
        self.spawn_with_handle(AssertUnwindSafe(f).catch_unwind())
            .expect("ThreadPool spawn")
            .map(caught_panic as fn(_) -> _)
    }

    fn spawn_abortable<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> Self::Abort {
        let (f, abort) = abortable(f);
        self.spawn_ok(f.map(drop));
        abort
    }

    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> + Send {
        for task in &tasks {
            task.abort();
        }
        async {}
    }

    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        YieldNow(false)
    }
}

impl SpawnLocal for futures::executor::LocalSpawner {
    type Join<T: 'static> = RemoteHandle<T>;
    type Catch = Map<RemoteHandle<Caught>, fn(Caught) -> bool>;
    type Abort = AbortHandle;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_local_with_handle(f).expect("LocalPool spawn")
    }

    fn spawn_detached<F: Future<Output = ()> + 'static>(&self, f: F) {
        self.spawn_local(f).expect("LocalPool spawn");
    }

    fn spawn_catch<F: Future<Output = ()> + 'static>(&self, f: F) -> Self::Catch {
        self.spawn_local_with_handle(AssertUnwindSafe(f).catch_unwind())
            .expect("LocalPool spawn")
            .map(caught_panic as fn(_) -> _)
    }

    fn spawn_abortable<F: Future<Output = ()> + 'static>(&self, f: F) -> Self::Abort {
        let (f, abort) = abortable(f);
        self.spawn_local(f.map(drop)).expect("LocalPool spawn");
        abort
    }

    fn abort_all(tasks: Vec<Self::Abort>) -> impl Future<Output = ()> {
        for task in &tasks {
            task.abort();
        }
        async {}
    }

    fn yield_now() -> impl Future<Output = ()> + 'static {
        YieldNow(false)
    }
}

// ---------------------------------------------------------------------------------------
// Registration.

struct Settings {
    quick: bool,
    plots: bool,
    sample_size: usize,
    warm_up: Duration,
    measurement: Duration,
}

fn settings() -> Settings {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    let quick = set("WARDEN_BENCH_QUICK");
    // Plotting costs more than measuring in quick mode (seconds per benchmark on a small
    // machine): a quick run makes no plots, and so no HTML report, unless asked.
    let plots = !quick || set("WARDEN_BENCH_PLOTS");
    if quick {
        Settings {
            quick,
            plots,
            sample_size: 10,
            warm_up: Duration::from_millis(500),
            measurement: Duration::from_secs(1),
        }
    } else {
        Settings {
            quick,
            plots,
            sample_size: 20,
            warm_up: Duration::from_secs(1),
            measurement: Duration::from_secs(3),
        }
    }
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Benchmarks `f` on `rt`, built before the call (so not timed) and dropped after.
fn bench<D>(g: &mut Group<'_>, id: &str, rt: D, f: fn(&D)) {
    g.bench_function(id, |b| b.iter(|| f(&rt)));
    drop(rt);
}

/// The same, for workloads that time themselves (`iter_custom`).
fn bench_custom<D>(g: &mut Group<'_>, id: &str, rt: D, f: fn(&D, u64) -> Duration) {
    g.bench_function(id, |b| b.iter_custom(|iters| f(&rt, iters)));
    drop(rt);
}

/// Runs `$f` (a workload of `send`/`local`) on all eight runtimes, in `$name/single` and
/// `$name/multi`.
macro_rules! every_runtime {
    ($c:expr, $name:literal, $bench:ident, $f:ident) => {{
        let mut g = $c.benchmark_group(concat!($name, "/single"));
        $bench(&mut g, "warden", WardenLocal::new(Builder::new()), send::$f);
        $bench(&mut g, "tokio", Tokio::current_thread(), send::$f);
        let ae = AsyncLocal(Rc::new(async_executor::LocalExecutor::new()));
        $bench(&mut g, "async-executor", ae, local::$f);
        $bench(&mut g, "futures", FuturesLocal::new(), local::$f);
        g.finish();
        let mut g = $c.benchmark_group(concat!($name, "/multi"));
        $bench(&mut g, "warden", WardenMulti::new(Builder::new()), send::$f);
        $bench(&mut g, "tokio", Tokio::multi_thread(), send::$f);
        $bench(&mut g, "async-executor", AsyncMulti::new(), send::$f);
        $bench(&mut g, "futures", FuturesPool::new(), send::$f);
        g.finish();
    }};
}

fn spawn_many(c: &mut Criterion) {
    every_runtime!(c, "spawn_many", bench, spawn_many);
}

fn spawn_remote(c: &mut Criterion) {
    every_runtime!(c, "spawn_remote", bench, spawn_remote);
}

fn yield_many(c: &mut Criterion) {
    every_runtime!(c, "yield_many", bench, yield_many);
}

fn ping_pong(c: &mut Criterion) {
    every_runtime!(c, "ping_pong", bench, ping_pong);
}

fn chained_spawn(c: &mut Criterion) {
    every_runtime!(c, "chained_spawn", bench, chained_spawn);
}

/// Silences the default panic output for the storm's own panics while `panic_storm` runs,
/// and for the failing children's while `restart` runs (see `main`); any other panic, a
/// failed assertion included, is still printed.
static QUIET_PANICS: AtomicBool = AtomicBool::new(false);

/// warden for `panic_storm`: a no-op error hook (every handle is awaited, so it sees
/// nothing) and the given backtrace policy (`Always` is the default).
fn storm(backtraces: Backtraces) -> Builder {
    Builder::new().on_unhandled(|_| {}).backtraces(backtraces)
}

fn panic_storm(c: &mut Criterion) {
    QUIET_PANICS.store(true, Ordering::SeqCst);
    let mut g = c.benchmark_group("panic_storm/single");
    bench(
        &mut g,
        "warden",
        WardenLocal::new(storm(Backtraces::Always)),
        send::panic_storm,
    );
    bench(
        &mut g,
        "warden-bt-off",
        WardenLocal::new(storm(Backtraces::Off)),
        send::panic_storm,
    );
    bench(&mut g, "tokio", Tokio::current_thread(), send::panic_storm);
    let ae = AsyncLocal(Rc::new(async_executor::LocalExecutor::new()));
    bench(&mut g, "async-executor", ae, local::panic_storm);
    bench(&mut g, "futures", FuturesLocal::new(), local::panic_storm);
    g.finish();
    let mut g = c.benchmark_group("panic_storm/multi");
    bench(
        &mut g,
        "warden",
        WardenMulti::new(storm(Backtraces::Always)),
        send::panic_storm,
    );
    bench(
        &mut g,
        "warden-bt-off",
        WardenMulti::new(storm(Backtraces::Off)),
        send::panic_storm,
    );
    bench(&mut g, "tokio", Tokio::multi_thread(), send::panic_storm);
    bench(
        &mut g,
        "async-executor",
        AsyncMulti::new(),
        send::panic_storm,
    );
    bench(&mut g, "futures", FuturesPool::new(), send::panic_storm);
    g.finish();
    QUIET_PANICS.store(false, Ordering::SeqCst);
}

fn cancel_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel_group/single");
    let rt = WardenLocal::new(Builder::new());
    bench_custom(&mut g, "warden", rt, cancel_group_warden);
    let rt = WardenLocal::new(Builder::new());
    bench_custom(&mut g, "warden-each", rt, send::cancel_each);
    bench_custom(&mut g, "tokio", Tokio::current_thread(), send::cancel_each);
    let ae = AsyncLocal(Rc::new(async_executor::LocalExecutor::new()));
    bench_custom(&mut g, "async-executor", ae, local::cancel_each);
    bench_custom(&mut g, "futures", FuturesLocal::new(), local::cancel_each);
    g.finish();
    let mut g = c.benchmark_group("cancel_group/multi");
    let rt = WardenMulti::new(Builder::new());
    bench_custom(&mut g, "warden", rt, cancel_group_warden);
    let rt = WardenMulti::new(Builder::new());
    bench_custom(&mut g, "warden-each", rt, send::cancel_each);
    bench_custom(&mut g, "tokio", Tokio::multi_thread(), send::cancel_each);
    bench_custom(
        &mut g,
        "async-executor",
        AsyncMulti::new(),
        send::cancel_each,
    );
    bench_custom(&mut g, "futures", FuturesPool::new(), send::cancel_each);
    g.finish();
}

fn group_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_overhead/single");
    let rt = WardenLocal::new(Builder::new());
    bench(&mut g, "warden-group", rt, yield_many_group);
    let rt = WardenLocal::new(Builder::new());
    bench(&mut g, "warden-plain", rt, send::yield_many);
    g.finish();
    let mut g = c.benchmark_group("group_overhead/multi");
    let rt = WardenMulti::new(Builder::new());
    bench(&mut g, "warden-group", rt, yield_many_group);
    let rt = WardenMulti::new(Builder::new());
    bench(&mut g, "warden-plain", rt, send::yield_many);
    g.finish();
}

/// Where criterion writes: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// the workspace's `target/criterion`. Criterion asks `cargo metadata` for that last one;
/// this takes it from where this package sits (`benches/` in the workspace root), which is
/// the same unless a cargo config file moves the target directory. Not a path relative to
/// the working directory: cargo runs benches in the package root, `benches/`, not in the
/// workspace root.
fn criterion_dir() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::Path::new(&dir).join("criterion"),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"),
    }
}

/// Which warden was measured: the commit, and whether warden's `src/` or `Cargo.toml` had
/// uncommitted changes when the run started. `None` outside a git checkout. The paths are
/// from the repository's top (`:/`), since the bench runs in `benches/`.
fn warden_source() -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let changes = git(&["status", "--porcelain", "--", ":/src", ":/Cargo.toml"])?;
    Some(if changes.is_empty() {
        commit
    } else {
        format!("{commit} with uncommitted changes in src/ or Cargo.toml")
    })
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Records when and how this run happened, for `report.py` (which uses only results
/// written after `started`).
fn write_run_info(
    settings: &Settings,
    source: Option<&str>,
    started: SystemTime,
    finished: SystemTime,
) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let json_args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let target_dir = std::env::var("CARGO_TARGET_DIR").map_or("null".to_owned(), |d| quote(&d));
    let source = source.map_or("null".to_owned(), quote);
    let json = format!(
        "{{\n  \"quick\": {},\n  \"plots\": {},\n  \"sample_size\": {},\n  \"warm_up_s\": {},\n  \
         \"measurement_s\": {},\n  \"started\": {:.3},\n  \"finished\": {:.3},\n  \
         \"cargo_target_dir\": {},\n  \"warden_source\": {},\n  \"args\": [{}]\n}}\n",
        settings.quick,
        settings.plots,
        settings.sample_size,
        settings.warm_up.as_secs_f64(),
        settings.measurement.as_secs_f64(),
        unix_seconds(started),
        unix_seconds(finished),
        target_dir,
        source,
        json_args.join(", "),
    );
    let dir = criterion_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("warden-run.json"), json));
    if let Err(err) = written {
        eprintln!(
            "could not write {}: {err}",
            dir.join("warden-run.json").display()
        );
    }
}

fn main() {
    // Installed before any warden executor exists: warden's own panic hook (installed
    // with the first executor) chains to this one, so warden keeps capturing task panics,
    // and everything else reaches the default hook unless `panic_storm` or `restart` is
    // running.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        let ours = message.is_some_and(|m| m.starts_with(STORM_MESSAGE) || m == restart::MESSAGE);
        if !(ours && QUIET_PANICS.load(Ordering::SeqCst)) {
            default_hook(info);
        }
    }));

    let settings = settings();
    let source = warden_source();
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .sample_size(settings.sample_size)
        .warm_up_time(settings.warm_up)
        .measurement_time(settings.measurement);
    if !settings.plots {
        c = c.without_plots();
    }
    let mut c = c.configure_from_args();
    // Criterion measures only under `--bench` (what `cargo bench` passes) without `--test`,
    // `--list` or `--profile-time`; `cargo test --benches` runs each benchmark once, untimed.
    // Only a measuring run is recorded for `report.py`.
    let arg =
        |name: &str| std::env::args().any(|a| a == name || a.starts_with(&format!("{name}=")));
    let measuring = arg("--bench") && !arg("--test") && !arg("--list") && !arg("--profile-time");

    spawn_many(&mut c);
    spawn_remote(&mut c);
    yield_many(&mut c);
    ping_pong(&mut c);
    chained_spawn(&mut c);
    panic_storm(&mut c);
    cancel_group(&mut c);
    group_overhead(&mut c);
    restart::restart(&mut c);

    c.final_summary();
    if measuring {
        write_run_info(&settings, source.as_deref(), started, SystemTime::now());
    }
}

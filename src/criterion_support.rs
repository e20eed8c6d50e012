//! criterion's async benchmarks on warden, with the `criterion` feature.
//!
//! criterion times async code through `Bencher::to_async(executor)`, which takes any
//! [`AsyncExecutor`]. That trait is criterion's and the executors are warden's, so only one
//! of the two crates can join them (the orphan rule); with the `criterion` feature on,
//! warden does, for [`Executor`], `&Executor`, [`LocalExecutor`] and `&LocalExecutor`. The
//! feature also turns on criterion's `async` feature, which `to_async` needs, and nothing
//! else of criterion's.
//!
//! ```toml
//! [dev-dependencies]
//! criterion = "0.8"
//! warden = { version = "0.1", features = ["criterion"] }
//! ```
//!
//! # Examples
//!
//! Build the executor once, outside the benchmark, and pass it by reference: criterion
//! calls `block_on` once per batch of iterations (warm-up, then every sample), and the
//! same executor serves every call. In a bench target (`harness = false`), finish with
//! `criterion_group!(benches, spawn_join); criterion_main!(benches);`.
//!
//! ```no_run
//! use criterion::Criterion;
//!
//! fn spawn_join(c: &mut Criterion) {
//!     let ex = warden::LocalExecutor::new();
//!     c.bench_function("spawn_join", |b| {
//!         b.to_async(&ex)
//!             .iter(|| async { warden::spawn(async { 1 }).await.unwrap() })
//!     });
//! }
//! # spawn_join(&mut Criterion::default());
//! ```
//!
//! # Semantics
//!
//! [`AsyncExecutor::block_on`] is the executor's own `block_on`
//! ([`LocalExecutor::block_on`], [`Executor::block_on`]), with everything that comes with
//! it:
//!
//! * inside the routine, `warden::spawn`, `spawn_local` (on a `LocalExecutor`) and
//!   `TaskGroup::new` target the executor, so a benchmark can spawn and join tasks;
//! * tasks the routine spawned and did not await are not waited for: they stay on the
//!   executor (a pool's workers go on running them, a `LocalExecutor` runs them whenever
//!   it is next driven) until they end or the executor is dropped, which cancels them;
//! * a panic in the routine's future unwinds out of `block_on`, and so out of criterion's
//!   `iter` and `bench_function`, to the caller; the executor stays usable. A panic in a
//!   spawned task does not unwind: it is the task's failure, returned by its `JoinHandle`
//!   (so `.await.unwrap()` in the routine turns it into a panic of the routine);
//! * `block_on` panics when called from inside a warden task or another `block_on` on the
//!   same thread, so `to_async` cannot run inside a warden executor.
//!
//! An executor passed by value (`b.to_async(Executor::new())`) lives as long as the
//! `to_async` bencher: one call of the benchmark's closure, one sample. Building and
//! dropping it are not timed, but every sample then starts on a fresh executor (for a pool,
//! freshly started workers). Pass `&ex` to measure one executor in its steady state.

use std::future::Future;

use criterion::async_executor::AsyncExecutor;

use crate::{Executor, LocalExecutor};

/// With the `criterion` feature: runs criterion's async benchmarks (`b.to_async(ex)`) on
/// the worker pool; the benchmark's future runs on the bench thread, the tasks it spawns on
/// the workers. See [`Executor::block_on`].
impl AsyncExecutor for Executor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        Executor::block_on(self, future)
    }
}

/// With the `criterion` feature: runs criterion's async benchmarks (`b.to_async(&ex)`) on
/// the worker pool, borrowed, so one executor serves every sample. See
/// [`Executor::block_on`].
impl AsyncExecutor for &Executor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        Executor::block_on(self, future)
    }
}

/// With the `criterion` feature: runs criterion's async benchmarks (`b.to_async(ex)`) on
/// the bench thread, the benchmark's future and the tasks it spawns together. See
/// [`LocalExecutor::block_on`].
impl AsyncExecutor for LocalExecutor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        LocalExecutor::block_on(self, future)
    }
}

/// With the `criterion` feature: runs criterion's async benchmarks (`b.to_async(&ex)`) on
/// the bench thread, borrowed, so one executor serves every sample. See
/// [`LocalExecutor::block_on`].
impl AsyncExecutor for &LocalExecutor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        LocalExecutor::block_on(self, future)
    }
}

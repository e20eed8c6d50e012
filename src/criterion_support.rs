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
//! same executor serves every call.
//!
//! ```
//! use criterion::Criterion;
//! use std::time::Duration;
//!
//! let ex = warden::LocalExecutor::new();
//! let mut c = Criterion::default()
//!     .sample_size(10)
//!     .warm_up_time(Duration::from_millis(10))
//!     .measurement_time(Duration::from_millis(20))
//!     .without_plots();
//! c.bench_function("spawn_join", |b| {
//!     b.to_async(&ex)
//!         .iter(|| async { warden::spawn(async { 1 }).await.unwrap() })
//! });
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
//! * tasks the routine spawned and did not await stay on the executor after `block_on`
//!   returns and run during the next call (or are cancelled when the executor is dropped);
//! * a panic in the routine's future unwinds out of `block_on`, and so out of criterion's
//!   `iter` and `bench_function`, to the caller; the executor stays usable. A panic in a
//!   spawned task does not unwind: it is the task's failure, returned by its `JoinHandle`
//!   (so `.await.unwrap()` in the routine turns it into a panic of the routine);
//! * `block_on` panics when called from inside a warden task or another `block_on` on the
//!   same thread, so `to_async` cannot run inside a warden executor.
//!
//! An [`Executor`] passed by value lives as long as the `to_async` bencher, one call of the
//! benchmark's closure: its workers start and stop around every sample. Pass `&ex` to
//! measure the tasks rather than the pool's start-up and shutdown.

use std::future::Future;

use criterion::async_executor::AsyncExecutor;

use crate::{Executor, LocalExecutor};

/// Runs criterion's async benchmarks on the worker pool; the benchmark's future runs on the
/// bench thread, its spawned tasks on the workers. See [`Executor::block_on`].
impl AsyncExecutor for Executor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        Executor::block_on(self, future)
    }
}

/// Runs criterion's async benchmarks on the worker pool, borrowed: one executor serves
/// every sample. See [`Executor::block_on`].
impl AsyncExecutor for &Executor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        Executor::block_on(self, future)
    }
}

/// Runs criterion's async benchmarks on the bench thread, the benchmark's future and its
/// spawned tasks together. See [`LocalExecutor::block_on`].
impl AsyncExecutor for LocalExecutor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        LocalExecutor::block_on(self, future)
    }
}

/// Runs criterion's async benchmarks on the bench thread, borrowed: one executor serves
/// every sample. See [`LocalExecutor::block_on`].
impl AsyncExecutor for &LocalExecutor {
    #[track_caller]
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        LocalExecutor::block_on(self, future)
    }
}

//! The `criterion` feature: `b.to_async(ex)` on warden's executors, with no glue.
//!
//! `cargo test --features criterion --test criterion_feature`. Each benchmark runs under
//! criterion itself, with 10 samples and a few milliseconds of warm-up and measurement, and
//! writes its results under cargo's temporary directory for integration tests, not
//! `target/criterion` (where `benches/report.py` reads).

#![cfg(feature = "criterion")]

mod support;

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::Criterion;
use criterion::async_executor::AsyncExecutor;
use warden::{Builder, LocalExecutor};

use support::{bounded, escaped};

/// Samples per benchmark: criterion's minimum. Each sample is one call of the benchmark's
/// closure, so one `to_async` and one `block_on`; warm-up adds at least one more.
const SAMPLES: usize = 10;

/// A criterion whose whole run (warm-up, samples, analysis) is a few milliseconds per
/// benchmark, with no plots, writing under `name` in cargo's temporary directory. 2 000
/// bootstrap resamples, not the default 100 000, keep the analysis (unoptimized here) short;
/// criterion warns at 1 000 or fewer.
fn quick_criterion(name: &str) -> Criterion {
    Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(10))
        .measurement_time(Duration::from_millis(30))
        .nresamples(2_000)
        .without_plots()
        .output_directory(&Path::new(env!("CARGO_TARGET_TMPDIR")).join(name))
}

/// What one benchmark did: closure calls (`block_on` calls, one per sample and per warm-up
/// batch), routine runs, and tasks the routine spawned that ran.
#[derive(Default)]
struct Counts {
    calls: AtomicUsize,
    routines: AtomicUsize,
    tasks: AtomicUsize,
}

impl Counts {
    /// Every sample was a `block_on` on the executor, every routine run's spawned task ran
    /// and was joined.
    #[track_caller]
    fn assert_ran(&self) {
        let calls = self.calls.load(Ordering::SeqCst);
        let routines = self.routines.load(Ordering::SeqCst);
        let tasks = self.tasks.load(Ordering::SeqCst);
        assert!(
            calls > SAMPLES,
            "{calls} block_on calls: expected one per sample ({SAMPLES}) and one or more for warm-up"
        );
        assert!(
            routines >= calls,
            "{routines} routine runs in {calls} calls: every call runs the routine at least once"
        );
        assert_eq!(tasks, routines, "one spawned task joined per routine run");
    }
}

/// One spawned task, joined; counts the routine run and the task's run.
async fn spawn_and_join(counts: Arc<Counts>) {
    counts.routines.fetch_add(1, Ordering::SeqCst);
    let task = warden::spawn(async move {
        counts.tasks.fetch_add(1, Ordering::SeqCst);
    });
    task.await.unwrap();
}

#[test]
fn borrowed_local_executor_serves_every_sample() {
    let ex = LocalExecutor::new();
    let counts = Arc::new(Counts::default());
    let mut c = quick_criterion("borrowed_local");
    c.bench_function("local", |b| {
        counts.calls.fetch_add(1, Ordering::SeqCst);
        b.to_async(&ex).iter(|| spawn_and_join(counts.clone()))
    });
    counts.assert_ran();
    // The spawned tasks ran on this executor, counted as its tasks.
    let spawned = ex.metrics().spawned;
    assert_eq!(spawned, counts.tasks.load(Ordering::SeqCst) as u64);
    // The executor outlives the benchmark and is still usable.
    let five = ex.block_on(async { warden::spawn(async { 5 }).await.unwrap() });
    assert_eq!(five, 5);
}

#[test]
fn borrowed_local_executor_runs_futures_that_are_not_send() {
    let ex = LocalExecutor::new();
    let runs = Rc::new(std::cell::Cell::new(0_usize));
    let mut c = quick_criterion("borrowed_local_not_send");
    c.bench_function("local_not_send", |b| {
        b.to_async(&ex).iter(|| {
            let runs = runs.clone();
            async move {
                warden::spawn_local(async move { runs.set(runs.get() + 1) })
                    .await
                    .unwrap()
            }
        })
    });
    assert!(runs.get() > SAMPLES, "{} spawn_local tasks ran", runs.get());
}

#[test]
fn owned_local_executor_runs_the_routine() {
    let counts = Arc::new(Counts::default());
    let mut c = quick_criterion("owned_local");
    c.bench_function("local", |b| {
        counts.calls.fetch_add(1, Ordering::SeqCst);
        b.to_async(LocalExecutor::new())
            .iter(|| spawn_and_join(counts.clone()))
    });
    counts.assert_ran();
}

#[test]
fn borrowed_executor_serves_every_sample() {
    bounded(|| {
        let ex = Builder::new().worker_threads(2).build();
        let counts = Arc::new(Counts::default());
        let mut c = quick_criterion("borrowed_pool");
        c.bench_function("pool", |b| {
            counts.calls.fetch_add(1, Ordering::SeqCst);
            b.to_async(&ex).iter(|| spawn_and_join(counts.clone()))
        });
        counts.assert_ran();
        // The spawned tasks ran on this pool's workers, counted as its tasks.
        let spawned = ex.metrics().spawned;
        assert_eq!(spawned, counts.tasks.load(Ordering::SeqCst) as u64);
        let five = ex.block_on(async { warden::spawn(async { 5 }).await.unwrap() });
        assert_eq!(five, 5);
    });
}

#[test]
fn owned_executor_runs_the_routine() {
    bounded(|| {
        let counts = Arc::new(Counts::default());
        let mut c = quick_criterion("owned_pool");
        c.bench_function("pool", |b| {
            counts.calls.fetch_add(1, Ordering::SeqCst);
            b.to_async(Builder::new().worker_threads(1).build())
                .iter(|| spawn_and_join(counts.clone()))
        });
        counts.assert_ran();
    });
}

/// criterion's `block_on` is the executor's: a panic in the future unwinds to the caller,
/// and the executor runs the next future as before.
#[test]
fn a_panic_in_the_routine_unwinds_and_the_executor_stays_usable() {
    fn check(ex: impl AsyncExecutor) {
        let escaped = escaped(|| ex.block_on(async { panic!("the routine failed") }));
        assert_eq!(escaped.as_deref(), Some("the routine failed"));
        let after = ex.block_on(async { warden::spawn(async { 7 }).await.unwrap() });
        assert_eq!(after, 7);
    }
    bounded(|| {
        let local = LocalExecutor::new();
        check(&local);
        check(local);
        let pool = Builder::new().worker_threads(2).build();
        check(&pool);
        check(pool);
    });
}

/// A panic in a task the routine spawned is the task's failure, not a panic of `block_on`.
#[test]
fn a_panicking_task_is_a_failure_in_its_handle() {
    fn check(ex: impl AsyncExecutor) {
        let err = ex.block_on(async { warden::spawn(async { panic!("task failed") }).await });
        assert_eq!(err.unwrap_err().panic_message(), Some("task failed"));
    }
    bounded(|| {
        let local = LocalExecutor::new();
        check(&local);
        check(local);
        let pool = Builder::new().worker_threads(2).build();
        check(&pool);
        check(pool);
    });
}

/// The README's criterion example is `benches/benches/to_async.rs`, word for word, so the
/// bench build (`cargo bench -p warden-bench --no-run`) compiles it.
#[test]
fn the_readme_bench_is_the_to_async_bench() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```rust,ignore\nuse criterion::")
        .expect("the README's criterion bench")
        + "```rust,ignore\n".len();
    let end = start + readme[start..].find("```\n").expect("the block's end");
    assert_eq!(
        &readme[start..end],
        include_str!("../benches/benches/to_async.rs"),
        "README.md's criterion bench and benches/benches/to_async.rs differ: keep them the same"
    );
}

//! How late do timers fire? 10,000 sleeps of a random 1-50 ms each (100 tasks, 100 sleeps
//! one after another in each), on warden's pool (2 workers), on a `LocalExecutor`, and on
//! async-io's `Timer` under `async_io::block_on`; prints the median and 99th percentile
//! of the lateness (how long after its deadline each sleep returned).
//!
//! ```text
//! cargo run --release --example timer_lateness
//! cargo run --release --example timer_lateness --features io
//! ```
//!
//! The random durations come from a fixed-seed xorshift, so every run sleeps the same
//! durations. Takes about 3 s per row.

use std::time::{Duration, Instant};

const TASKS: usize = 100;
const SLEEPS_PER_TASK: usize = 100;

/// xorshift64: deterministic and good enough to spread durations over 1-50 ms.
fn durations(seed: u64) -> Vec<Duration> {
    let mut x = seed | 1;
    (0..SLEEPS_PER_TASK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(1_000 + x % 49_000)
        })
        .collect()
}

/// One task's sleeps, slept with `sleep`; returns each one's lateness.
async fn sleeper<F, Fut>(seed: u64, sleep: F) -> Vec<Duration>
where
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future,
{
    let mut late = Vec::with_capacity(SLEEPS_PER_TASK);
    for d in durations(seed) {
        let deadline = Instant::now() + d;
        sleep(d).await;
        late.push(Instant::now().saturating_duration_since(deadline));
    }
    late
}

/// Every sleeper on the current warden executor, each a task; their lateness, all of it.
async fn warden_sleepers() -> Vec<Duration> {
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|seed| warden::spawn(sleeper(seed + 1, warden::sleep)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

fn report(name: &str, mut late: Vec<Duration>) {
    late.sort_unstable();
    let at = |q: f64| late[((late.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    println!(
        "{name:<44} {:>5} sleeps   p50 {:>7.1} µs   p99 {:>7.1} µs",
        late.len(),
        at(0.50),
        at(0.99)
    );
}

fn main() {
    let feature = if cfg!(feature = "io") { "on" } else { "off" };
    println!("feature io: {feature}");

    let ex = warden::Builder::new().worker_threads(2).build();
    let late = ex.block_on(warden_sleepers());
    report("warden::sleep, Executor (2 workers)", late);
    drop(ex);

    let ex = warden::LocalExecutor::new();
    let late = ex.block_on(warden_sleepers());
    report("warden::sleep, LocalExecutor", late);
    drop(ex);

    let late = async_io::block_on(futures::future::join_all(
        (0..TASKS as u64).map(|seed| sleeper(seed + 1, async_io::Timer::after)),
    ));
    report(
        "async_io::Timer, async_io::block_on",
        late.into_iter().flatten().collect(),
    );
}

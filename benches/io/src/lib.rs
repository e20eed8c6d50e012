//! What the two server benchmarks share (the benchmarks themselves are the examples:
//! `cargo run --release -p warden-io-bench --example hyper_bench`, `... --example
//! echo_bench`): how each runtime runs a round ([`on_warden`], [`on_async_executor`],
//! [`on_tokio`]), how the rounds take turns and are reported ([`take_turns`]), and two
//! small runtime-neutral signals over a mutex, so that warden and async-executor run the
//! same client code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A boxed task body.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Spawns a detached task on the runtime running the round.
pub type Spawn = Arc<dyn Fn(BoxFuture) + Send + Sync>;
/// One round on one runtime: (items done, elapsed).
pub type Run = Box<dyn Fn() -> (usize, Duration)>;

/// Runs `round` as a task on a warden `Executor` with 2 workers (and the `io` feature:
/// idle workers wait in async-io's reactor).
pub fn on_warden<F>(round: impl FnOnce(Spawn) -> F) -> (usize, Duration)
where
    F: Future<Output = usize> + Send + 'static,
{
    let ex = warden::Builder::new().worker_threads(2).build();
    let spawn: Spawn = Arc::new(|f| warden::spawn(f).detach());
    let start = Instant::now();
    let handle = ex.handle();
    let round = round(spawn);
    // The round itself runs as a task, on the workers.
    let done = ex.block_on(async move { handle.spawn(round).await.unwrap() });
    (done, start.elapsed())
}

/// Runs `round` on an async-executor `Executor` driven as smol drives it: 2 threads, each
/// in `async_io::block_on(ex.run(..))`.
pub fn on_async_executor<F>(round: impl FnOnce(Spawn) -> F) -> (usize, Duration)
where
    F: Future<Output = usize> + Send + 'static,
{
    let ex = Arc::new(async_executor::Executor::new());
    let (stop_tx, stop_rx) = async_channel_pair();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (ex, stop_rx) = (ex.clone(), stop_rx.clone());
            std::thread::spawn(move || async_io::block_on(ex.run(stop_rx.wait())))
        })
        .collect();
    let spawn: Spawn = {
        let ex = ex.clone();
        Arc::new(move |f| ex.spawn(f).detach())
    };
    let start = Instant::now();
    let done = async_io::block_on(ex.spawn(round(spawn)));
    let elapsed = start.elapsed();
    stop_tx.stop();
    for t in threads {
        t.join().unwrap();
    }
    (done, elapsed)
}

/// Runs `round` as a task on tokio's `multi_thread` runtime with 2 workers and its I/O
/// driver.
pub fn on_tokio<F>(round: impl FnOnce() -> F) -> (usize, Duration)
where
    F: Future<Output = usize> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .unwrap();
    let start = Instant::now();
    let round = round();
    let done = rt.block_on(async { tokio::spawn(round).await.unwrap() });
    (done, start.elapsed())
}

/// Runs every entry of `runs` once per round, taking turns, printing each round's rate
/// (`unit`s done per second, `rate` naming it); then prints each entry's median and
/// returns the medians, in `runs`' order.
pub fn take_turns(rounds: usize, runs: &[(&str, Run)], unit: &str, rate: &str) -> Vec<f64> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for (i, (name, run)) in runs.iter().enumerate() {
            let (done, elapsed) = run();
            let per_second = done as f64 / elapsed.as_secs_f64();
            println!(
                "round {}: {name:<28} {done:>6} {unit} in {:>6.3} s = {per_second:>8.0} {rate}",
                round + 1,
                elapsed.as_secs_f64(),
            );
            rates[i].push(per_second);
        }
    }
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|v| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        })
        .collect();
    println!("median {rate} over {rounds} rounds (2 worker threads each, 50 connections):");
    for ((name, _), m) in runs.iter().zip(&medians) {
        println!("  {name:<28} {m:>8.0}");
    }
    medians
}

/// The clients' counts: (sum, senders done, the receiver's waker).
type SumState = Arc<std::sync::Mutex<(usize, usize, Option<std::task::Waker>)>>;
/// The stop signal: (stopped, the waiting threads' wakers).
type StopState = Arc<std::sync::Mutex<(bool, Vec<std::task::Waker>)>>;

/// A tiny multi-producer sum channel over a mutex: the clients send their counts, the
/// round awaits all of them. (Runtime-neutral, so that warden and
/// async-executor run the same code.)
pub fn async_channel_like() -> (SumSender, SumReceiver) {
    let shared = Arc::new(std::sync::Mutex::new((
        0usize,
        0usize,
        None::<std::task::Waker>,
    )));
    (SumSender(shared.clone()), SumReceiver(shared))
}

/// The clients' end of the sum channel.
#[derive(Clone)]
pub struct SumSender(SumState);

impl SumSender {
    /// Adds one sender's count `n`, and marks that sender done.
    pub fn send(&self, n: usize) {
        let mut s = self.0.lock().unwrap();
        s.0 += n;
        s.1 += 1;
        if let Some(w) = s.2.take() {
            w.wake();
        }
    }
}

/// The round's end of the sum channel.
pub struct SumReceiver(SumState);

impl SumReceiver {
    /// The sum, once `senders` senders are done.
    pub async fn sum(self, senders: usize) -> usize {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock().unwrap();
            if s.1 == senders {
                std::task::Poll::Ready(s.0)
            } else {
                s.2 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// A stop signal for async-executor's threads.
pub fn async_channel_pair() -> (StopSender, StopReceiver) {
    let event = Arc::new(std::sync::Mutex::new((
        false,
        Vec::<std::task::Waker>::new(),
    )));
    (StopSender(event.clone()), StopReceiver(event))
}

/// Stops async-executor's threads.
pub struct StopSender(StopState);

impl StopSender {
    /// Wakes every waiting thread, for good.
    pub fn stop(&self) {
        let mut s = self.0.lock().unwrap();
        s.0 = true;
        for w in s.1.drain(..) {
            w.wake();
        }
    }
}

/// What async-executor's threads wait on.
#[derive(Clone)]
pub struct StopReceiver(StopState);

impl StopReceiver {
    /// Returns once stopped.
    pub async fn wait(self) {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock().unwrap();
            if s.0 {
                std::task::Poll::Ready(())
            } else {
                s.1.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}

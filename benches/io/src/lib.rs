//! What the two server benchmarks share (the benchmarks themselves are the examples:
//! `cargo run --release -p warden-io-bench --example hyper_bench`, `... --example
//! echo_bench`): two small runtime-neutral signals over a mutex, so that warden and
//! async-executor run the same client code.

use std::sync::Arc;

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

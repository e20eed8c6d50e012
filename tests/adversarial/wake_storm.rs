//! Adversarial theme: a wake storm.
//!
//! Ten pending tasks, each woken 200 000 times (100 000 from each of two threads), while
//! the executor runs. Wakes coalesce: a task woken while it is already queued (or being
//! polled) is queued once, so each task's poll count stays far below its wake count. It
//! can never exceed wakes + 1; the test also asserts a loose "at most one poll per two
//! wakes", where about one per 200 to 1000 is typical. No task is ever polled by two
//! threads at once (an `AtomicBool` guard in `poll`), no wake-up is lost (each task
//! finishes once its `done` flag is set and it is woken), and `Metrics::polls` equals the
//! polls the futures counted themselves.
//!
//! The exact coalescing bound needs a quiet executor: `storm_while_not_driven` (local
//! only: a pool's workers run whenever there is work, so it cannot be kept quiet) wakes
//! every idle task 200 000 times and then expects exactly one more poll per task.

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};

use support::{assert_adds_up, hang_guard};

const TASKS: usize = 10;
const WAKES_PER_THREAD: usize = 100_000;

/// Shared state of one storm task.
#[derive(Default)]
struct Probe {
    polls: AtomicUsize,
    in_poll: AtomicBool,
    overlapped: AtomicBool,
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// Pending until `done`; publishes its waker; flags overlapping polls.
struct Stormed(Arc<Probe>);

impl Future for Stormed {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let p = &self.0;
        if p.in_poll.swap(true, SeqCst) {
            p.overlapped.store(true, SeqCst);
        }
        let n = p.polls.fetch_add(1, SeqCst) + 1;
        {
            let mut slot = p.waker.lock().unwrap();
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // A little work inside the poll widens the window for a concurrent poll.
        for _ in 0..50 {
            std::hint::spin_loop();
        }
        let done = p.done.load(SeqCst);
        p.in_poll.store(false, SeqCst);
        if done { Poll::Ready(n) } else { Poll::Pending }
    }
}

/// Wakes a clone of `waker` by value (`Waker::wake`), the path `wake_by_ref` does not take.
#[allow(clippy::waker_clone_wake)] // on purpose: this exercises the by-value wake
fn wake_by_value(waker: &Waker) {
    waker.clone().wake();
}

fn waker_of(p: &Probe) -> Waker {
    p.waker.lock().unwrap().clone().expect("polled once")
}

rt_test! {
    fn storm_while_running(flavor) {
        hang_guard("a wake storm", move || {
            let rt = flavor.rt();
            let probes: Vec<Arc<Probe>> = (0..TASKS).map(|_| Arc::default()).collect();
            let handles: Vec<_> = probes
                .iter()
                .map(|p| rt.spawn(Stormed(p.clone())))
                .collect();
            rt.block_on(async {
                while probes.iter().any(|p| p.polls.load(SeqCst) == 0) {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            let wakers: Vec<Waker> = probes.iter().map(|p| waker_of(p)).collect();
            let stormers_done = Arc::new(AtomicUsize::new(0));
            let barrier = Arc::new(Barrier::new(2));
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let wakers = wakers.clone();
                    let barrier = barrier.clone();
                    let stormers_done = stormers_done.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        for i in 0..WAKES_PER_THREAD {
                            for (k, w) in wakers.iter().enumerate() {
                                if (i + k + t) % 2 == 0 {
                                    w.wake_by_ref();
                                } else {
                                    wake_by_value(w);
                                }
                            }
                        }
                        stormers_done.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            // Run the executor during the whole storm (the local one needs driving).
            rt.block_on(async {
                while stormers_done.load(SeqCst) < 2 {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            for t in threads {
                t.join().expect("a storming thread panicked");
            }
            // Finish: set every flag, wake once more, and every task must complete.
            for (p, w) in probes.iter().zip(&wakers) {
                p.done.store(true, SeqCst);
                w.wake_by_ref();
            }
            let finals: Vec<usize> = rt.block_on(async move {
                let mut v = Vec::new();
                for h in handles {
                    v.push(h.await.expect("the task finished"));
                }
                v
            });
            let wakes_per_task = 2 * WAKES_PER_THREAD;
            let mut total_polls = 0;
            for (i, p) in probes.iter().enumerate() {
                assert!(
                    !p.overlapped.load(SeqCst),
                    "task {i} was polled by two threads at once"
                );
                let polls = p.polls.load(SeqCst);
                assert_eq!(finals[i], polls, "task {i} was polled after it completed");
                // Hard bound: the first poll, plus at most one per wake (+ the final wake).
                assert!(
                    polls <= wakes_per_task + 2,
                    "task {i}: {polls} polls for {wakes_per_task} wakes: more polls than wakes"
                );
                // Loose bound (about 0.1-0.5 % is typical): it fails only if most wakes
                // lead to a poll of their own, i.e. if wakes stopped coalescing.
                assert!(
                    polls <= wakes_per_task / 2,
                    "task {i}: {polls} polls for {wakes_per_task} wakes: wakes do not coalesce"
                );
                total_polls += polls;
            }
            eprintln!(
                "{flavor:?}: {total_polls} polls for {} wakes ({:.4} polls per wake)",
                TASKS * wakes_per_task,
                total_polls as f64 / (TASKS * wakes_per_task) as f64
            );
            let m = rt.metrics();
            // The two block_on roots are not tasks; everything polled is a Stormed task.
            assert_eq!(m.polls as usize, total_polls, "{m:?}");
            assert_eq!(
                (m.spawned, m.completed, m.live),
                (TASKS as u64, TASKS as u64, 0),
                "{m:?}"
            );
            assert_adds_up(&m);
        });
    }
}

/// Local only: with the executor not driven, 200 000 wakes of an idle task from two
/// threads queue it exactly once, so the next run polls each task exactly once more.
#[test]
fn storm_while_not_driven() {
    hang_guard("a wake storm on an idle local executor", || {
        let ex = warden::LocalExecutor::new();
        let probes: Vec<Arc<Probe>> = (0..TASKS).map(|_| Arc::default()).collect();
        let handles: Vec<_> = probes
            .iter()
            .map(|p| ex.spawn(Stormed(p.clone())))
            .collect();
        assert_eq!(ex.run_until_idle(), TASKS);
        let wakers: Vec<Waker> = probes.iter().map(|p| waker_of(p)).collect();
        std::thread::scope(|s| {
            for _ in 0..2 {
                let wakers = &wakers;
                s.spawn(move || {
                    for _ in 0..WAKES_PER_THREAD {
                        for w in wakers {
                            w.wake_by_ref();
                        }
                    }
                });
            }
        });
        assert_eq!(
            ex.run_until_idle(),
            TASKS,
            "each task must be queued exactly once"
        );
        for (i, p) in probes.iter().enumerate() {
            assert_eq!(p.polls.load(SeqCst), 2, "task {i}");
        }
        assert_eq!(ex.run_until_idle(), 0, "nothing left queued");
        for (p, w) in probes.iter().zip(&wakers) {
            p.done.store(true, SeqCst);
            w.wake_by_ref();
        }
        assert_eq!(ex.run_until_idle(), TASKS);
        assert!(handles.iter().all(|h| h.is_finished()));
        let m = ex.metrics();
        assert_eq!(
            (m.polls, m.completed, m.live),
            (3 * TASKS as u64, TASKS as u64, 0),
            "{m:?}"
        );
    });
}

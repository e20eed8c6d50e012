//! Adversarial theme: wakers used after their task finished and after their executor
//! is gone.
//!
//! Tasks hand out clones of their wakers. After a task completed (value, panic or
//! cancellation), and after the whole executor was dropped, those wakers are woken many
//! times from several threads at once (`wake_by_ref`, `wake` on clones, `will_wake`, clone
//! and drop). A waker used after its executor is gone must be a no-op. Nothing may
//! run (no poll counter moves), nothing may crash, and once the wakers are dropped too,
//! nothing of the executor may be left alive (its error hook holds a marker `Arc`).
//! A last test wakes the tasks from other threads *while* the executor shuts down.

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};

use support::{DropCounter, DropToken, Flavor, Rt, hang_guard};
use warden::Builder;

/// Publishes its waker on every poll, counts its polls, and ends as `end` says once
/// `release` is set: 0 = value, 1 = panic, otherwise stays pending (to be cancelled).
struct Leaker {
    wakers: Arc<Mutex<Vec<Waker>>>,
    polls: Arc<AtomicUsize>,
    release: Arc<AtomicBool>,
    end: u8,
    _token: DropToken,
}

impl Future for Leaker {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        self.polls.fetch_add(1, SeqCst);
        self.wakers.lock().unwrap().push(cx.waker().clone());
        if self.release.load(SeqCst) {
            match self.end {
                0 => return Poll::Ready(1),
                1 => panic!("the leaker panicked"),
                _ => {}
            }
        }
        Poll::Pending
    }
}

/// A builder whose error hook holds a clone of `probe` (and swallows the failures).
fn probed(probe: &Arc<()>) -> Builder {
    let held = probe.clone();
    Builder::new().on_unhandled(move |_| {
        let _ = &held;
    })
}

/// Wakes a clone of `waker` by value (`Waker::wake`), the path `wake_by_ref` does not take.
#[allow(clippy::waker_clone_wake)] // on purpose: this exercises the by-value wake
fn wake_by_value(waker: &Waker) {
    waker.clone().wake();
}

/// Wakes every waker in `wakers` `rounds` times from each of `threads` threads, in every
/// way a waker can be used.
fn hammer(wakers: &[Waker], threads: usize, rounds: usize) {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for r in 0..rounds {
                    for (i, w) in wakers.iter().enumerate() {
                        match (r + i + t) % 4 {
                            0 => w.wake_by_ref(),
                            1 => wake_by_value(w),
                            2 => {
                                assert!(w.will_wake(w));
                                drop(w.clone());
                            }
                            _ => {
                                let c = w.clone();
                                c.wake_by_ref();
                                c.wake();
                            }
                        }
                    }
                }
            });
        }
    });
}

struct Setup {
    rt: Rt,
    wakers: Arc<Mutex<Vec<Waker>>>,
    polls: Vec<Arc<AtomicUsize>>,
    release: Arc<AtomicBool>,
    drops: DropCounter,
    handles: Vec<warden::JoinHandle<u8>>,
}

/// Spawns 3 tasks of each ending (value, panic, pending), all polled at least once.
fn setup(flavor: Flavor, probe: &Arc<()>) -> Setup {
    let rt = flavor.build(probed(probe));
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let release = Arc::new(AtomicBool::new(false));
    let drops = DropCounter::new();
    let mut polls = Vec::new();
    let mut handles = Vec::new();
    for i in 0..9u8 {
        let count = Arc::new(AtomicUsize::new(0));
        polls.push(count.clone());
        handles.push(rt.spawn(Leaker {
            wakers: wakers.clone(),
            polls: count,
            release: release.clone(),
            end: i % 3,
            _token: drops.token(),
        }));
    }
    rt.block_on(async {
        while polls.iter().any(|p| p.load(SeqCst) == 0) {
            std::thread::yield_now();
            warden::yield_now().await;
        }
    });
    Setup {
        rt,
        wakers,
        polls,
        release,
        drops,
        handles,
    }
}

fn snapshot(polls: &[Arc<AtomicUsize>]) -> Vec<usize> {
    polls.iter().map(|p| p.load(SeqCst)).collect()
}

rt_test! {
    /// Wakers of tasks that completed, panicked, or were cancelled, while the executor
    /// still runs: no task is polled again, and the executor keeps working.
    fn wakes_after_completion_are_no_ops(flavor) {
        hang_guard("waking finished tasks", move || {
            let probe = Arc::new(());
            let Setup {
                rt,
                wakers,
                polls,
                release,
                drops,
                handles,
            } = setup(flavor, &probe);
            release.store(true, SeqCst);
            let first: Vec<Waker> = wakers.lock().unwrap().clone();
            for w in &first {
                w.wake_by_ref();
            }
            drop(first);
            // Values and panics finish now; the pending ones are cancelled.
            let mut outcomes = Vec::new();
            for (i, h) in handles.into_iter().enumerate() {
                if i % 3 == 2 {
                    h.cancel();
                }
                outcomes.push(rt.block_on(h));
            }
            assert_eq!(drops.count(), 9);
            let before = snapshot(&polls);
            let all: Vec<Waker> = wakers.lock().unwrap().drain(..).collect();
            hammer(&all, 4, 2_000);
            // Give any wrongly queued task the chance to run.
            assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
            if let Rt::Local(ex) = &rt {
                ex.run_until_idle();
            }
            assert_eq!(snapshot(&polls), before, "a finished task was polled again");
            for (i, outcome) in outcomes.iter().enumerate() {
                match (i % 3, outcome) {
                    (0, Ok(1)) => {}
                    (1, Err(e)) if e.is_panic() => {}
                    (2, Err(e)) if e.is_cancelled() => {}
                    other => panic!("task {i}: unexpected {other:?}"),
                }
            }
            let m = rt.metrics();
            assert_eq!(
                (m.spawned, m.completed, m.panicked, m.cancelled, m.live),
                (10, 4, 3, 3, 0),
                "{m:?}"
            );
            drop(rt);
            drop(all);
            assert_eq!(
                Arc::strong_count(&probe),
                1,
                "wakers kept the executor's state alive"
            );
        });
    }

    /// The executor is dropped (pending tasks cancelled), then every waker it ever handed
    /// out is woken, hard, from four threads.
    fn wakes_after_the_executor_is_gone(flavor) {
        hang_guard("waking tasks of a dropped executor", move || {
            let probe = Arc::new(());
            let Setup {
                rt,
                wakers,
                polls,
                release,
                drops,
                handles,
            } = setup(flavor, &probe);
            drop(rt);
            assert_eq!(drops.count(), 9, "shutdown drops every future");
            assert!(handles.iter().all(|h| h.is_finished()));
            let before = snapshot(&polls);
            release.store(true, SeqCst);
            let all: Vec<Waker> = wakers.lock().unwrap().drain(..).collect();
            hammer(&all, 4, 5_000);
            assert_eq!(
                snapshot(&polls),
                before,
                "a task of a dropped executor was polled"
            );
            for h in handles {
                let err = futures::executor::block_on(h).unwrap_err();
                assert_eq!(err.cancel_reason(), Some(&warden::CancelReason::Shutdown));
            }
            drop(all);
            assert_eq!(
                Arc::strong_count(&probe),
                1,
                "something of the executor outlived it"
            );
        });
    }

    /// Wakes from four threads *while* the executor shuts down: no crash, no hang, each
    /// future dropped exactly once, nothing polled after its cancellation was final.
    fn wakes_racing_shutdown(flavor) {
        hang_guard("waking tasks while the executor shuts down", move || {
            let probe = Arc::new(());
            let Setup {
                rt,
                wakers,
                polls,
                release: _release,
                drops,
                handles,
            } = setup(flavor, &probe);
            let all: Vec<Waker> = wakers.lock().unwrap().clone();
            let stop = AtomicBool::new(false);
            /// Stops the waking threads even if an assertion fails (the scope would
            /// otherwise wait for them forever).
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, SeqCst);
                }
            }
            let (after_shutdown, later) = std::thread::scope(|s| {
                let _stop = StopOnDrop(&stop);
                for t in 0..4 {
                    let (all, stop) = (&all, &stop);
                    s.spawn(move || {
                        let mut i = t;
                        while !stop.load(SeqCst) {
                            all[i % all.len()].wake_by_ref();
                            i += 1;
                        }
                    });
                }
                std::thread::yield_now();
                drop(rt);
                let after_shutdown = snapshot(&polls);
                // Wake some more from here too, while the other threads keep going.
                for _ in 0..1_000 {
                    for w in &all {
                        w.wake_by_ref();
                    }
                }
                (after_shutdown, snapshot(&polls))
            });
            assert_eq!(later, after_shutdown, "polled after shutdown");
            assert_eq!(drops.count(), 9);
            assert!(handles.iter().all(|h| h.is_finished()));
            drop(handles);
            drop(all);
            wakers.lock().unwrap().clear();
            assert_eq!(Arc::strong_count(&probe), 1);
        });
    }
}

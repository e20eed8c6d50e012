//! Fairness, on both executors: a task that wakes itself on every poll cannot starve the
//! other tasks, the root future of `block_on`, or (on the pool) tasks spawned from outside
//! while every worker is busy with such tasks.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};

use futures::channel::oneshot;
use support::{DropCounter, DropToken, Flavor, Rt};
use warden::{CancelReason, JoinHandle};

/// [`support::no_hang`], failing with "something was starved": starvation shows up as a
/// body that never ends.
fn no_hang(body: impl FnOnce() + Send + 'static) {
    support::no_hang_or(
        "the test hung (no result after 30 s): something was starved",
        body,
    );
}

/// Wakes itself and returns `Pending` on every poll, forever; counts its polls.
struct Spinner {
    polls: Arc<AtomicUsize>,
    _token: DropToken,
}

impl Future for Spinner {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Spawns a spinner on `rt`; returns its handle and poll count.
fn spawn_spinner(rt: &Rt, drops: &DropCounter) -> (JoinHandle<()>, Arc<AtomicUsize>) {
    let polls = Arc::new(AtomicUsize::new(0));
    let handle = rt.spawn(Spinner {
        polls: polls.clone(),
        _token: drops.token(),
    });
    (handle, polls)
}

/// Cancels every spinner and checks that each ends cancelled and dropped.
fn stop_spinners(rt: &Rt, spinners: Vec<JoinHandle<()>>, drops: &DropCounter) {
    let n = spinners.len();
    for s in &spinners {
        s.cancel();
    }
    rt.block_on(async {
        for s in spinners {
            let err = s.await.expect_err("a spinner never finishes by itself");
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
        }
    });
    assert_eq!(drops.count(), n);
}

rt_test! {
    fn self_waking_task_cannot_starve_other_tasks(flavor) {
        no_hang(move || {
            const N: usize = 100;
            let rt = flavor.rt();
            let drops = DropCounter::new();
            // One spinner queued before the ordinary tasks, one after them: neither FIFO
            // nor LIFO order alone lets them finish.
            let (first, first_spins) = spawn_spinner(&rt, &drops);
            let finished = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let finished = finished.clone();
                    rt.spawn(async move {
                        for _ in 0..3 {
                            warden::yield_now().await;
                        }
                        finished.fetch_add(1, SeqCst);
                        i
                    })
                })
                .collect();
            let (last, last_spins) = spawn_spinner(&rt, &drops);
            let sum = rt.block_on(async {
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            });
            assert_eq!(sum, N * (N - 1) / 2);
            assert_eq!(finished.load(SeqCst), N);
            // The spinners run too (on the pool, the tasks may all be done before the last
            // spinner's first poll, so wait for it rather than assert it already happened).
            rt.block_on(async {
                while first_spins.load(SeqCst) == 0 || last_spins.load(SeqCst) == 0 {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            assert!(!first.is_finished() && !last.is_finished());
            stop_spinners(&rt, vec![first, last], &drops);
            let m = rt.metrics();
            assert_eq!((m.completed, m.cancelled, m.live), (N as u64, 2, 0), "{m:?}");
        });
    }

    fn self_waking_task_cannot_starve_the_root_future(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let (spinner, spins) = spawn_spinner(&rt, &drops);
            // Let the spinner get going first.
            rt.block_on(async {
                while spins.load(SeqCst) == 0 {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            let rounds = rt.block_on(async {
                let mut rounds = 0;
                for _ in 0..100 {
                    warden::yield_now().await;
                    rounds += 1;
                }
                rounds
            });
            assert_eq!(rounds, 100);
            stop_spinners(&rt, vec![spinner], &drops);
        });
    }

    fn tasks_spawned_by_a_spinner_still_run(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let (spinner, _spins) = spawn_spinner(&rt, &drops);
            // A second self-waking task that spawns a child from inside its own poll
            // loop: the child lands on the same queue as the spinners and must run.
            let (child_tx, child_rx) = oneshot::channel::<JoinHandle<&'static str>>();
            let spawner = rt.spawn(async move {
                let child = warden::spawn(async {
                    warden::yield_now().await;
                    "child ran"
                });
                child_tx.send(child).unwrap();
                loop {
                    warden::yield_now().await;
                }
            });
            let child = rt.block_on(child_rx).unwrap();
            assert_eq!(rt.block_on(child).unwrap(), "child ran");
            spawner.cancel();
            assert!(rt.block_on(spawner).unwrap_err().is_cancelled());
            stop_spinners(&rt, vec![spinner], &drops);
        });
    }
}

/// Pool only: a `LocalExecutor` has no workers to keep busy, and a spawn from another
/// thread onto it is covered in `local.rs`.
#[test]
fn pool_runs_outside_spawns_while_every_worker_spins() {
    no_hang(|| {
        let rt = Flavor::Pool.rt();
        let drops = DropCounter::new();
        // More spinners than workers: both workers always have a self-waking task.
        let spinners: Vec<_> = (0..4).map(|_| spawn_spinner(&rt, &drops)).collect();
        rt.block_on(async {
            while spinners.iter().any(|(_, spins)| spins.load(SeqCst) < 10) {
                std::thread::yield_now();
                warden::yield_now().await;
            }
        });
        let handle = rt.handle();
        let outside = std::thread::spawn(move || {
            (0..20)
                .map(|i| handle.spawn(async move { i * 2 }))
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        let sum = rt.block_on(async {
            let mut sum = 0;
            for h in outside {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 380);
        // Awaited from a foreign thread too, with nothing driving from this side.
        let handle = rt.handle();
        let from_thread = std::thread::spawn(move || {
            let task = handle.spawn(async {
                warden::yield_now().await;
                "ran"
            });
            futures::executor::block_on(task).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(from_thread, "ran");
        stop_spinners(&rt, spinners.into_iter().map(|(h, _)| h).collect(), &drops);
    });
}

/// Local only: `try_tick` is the host-loop API of `LocalExecutor`. A bounded number of
/// ticks makes progress on an ordinary task queued between two spinners.
#[test]
fn local_try_tick_is_fair_with_spinners() {
    let ex = warden::LocalExecutor::new();
    let drops = DropCounter::new();
    let spinner = |polls: &Arc<AtomicUsize>| Spinner {
        polls: polls.clone(),
        _token: drops.token(),
    };
    let (spins_a, spins_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a = ex.spawn(spinner(&spins_a));
    let task = ex.spawn(async {
        for _ in 0..3 {
            warden::yield_now().await;
        }
        "done"
    });
    let b = ex.spawn(spinner(&spins_b));
    // Round-robin, the task's 4 polls need at most 12 ticks.
    for _ in 0..12 {
        assert!(ex.try_tick(), "there is always something ready");
    }
    assert!(task.is_finished(), "the task was starved by the spinners");
    assert!(spins_a.load(SeqCst) >= 3, "spinner a was starved");
    assert!(spins_b.load(SeqCst) >= 3, "spinner b was starved");
    assert_eq!(ex.block_on(task).unwrap(), "done");
    a.cancel();
    b.cancel();
    ex.run_until_idle();
    assert!(a.is_finished() && b.is_finished());
    assert_eq!(drops.count(), 2);
}

/// Local only: a task spawned or woken from another thread goes to the executor's remote
/// queue, which the owner moves to the back of its ready queue on every tick. Spinners on
/// the owner thread (whose wakes take the lock-free owner path) cannot keep it waiting.
#[test]
fn local_remote_spawns_and_wakes_are_not_starved_by_spinners() {
    let ex = warden::LocalExecutor::new();
    let drops = DropCounter::new();
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let polls = Arc::new(AtomicUsize::new(0));
            ex.spawn(Spinner {
                polls,
                _token: drops.token(),
            })
        })
        .collect();
    let (tx, rx) = oneshot::channel::<u32>();
    let waiter = ex.spawn(async move { rx.await.unwrap() + 1 });
    for _ in 0..10 {
        assert!(ex.try_tick());
    }
    assert!(!waiter.is_finished(), "nothing has woken the waiter yet");
    let handle = ex.handle();
    let remote = std::thread::spawn(move || {
        tx.send(41).unwrap();
        handle.spawn(async { "spawned elsewhere" })
    })
    .join()
    .unwrap();
    // Two spinners, then the two remote tasks: four ticks reach both, whatever the order.
    for _ in 0..4 {
        assert!(ex.try_tick());
    }
    assert!(
        waiter.is_finished(),
        "a wake from another thread was starved"
    );
    assert!(
        remote.is_finished(),
        "a spawn from another thread was starved"
    );
    assert_eq!(ex.block_on(waiter).unwrap(), 42);
    assert_eq!(ex.block_on(remote).unwrap(), "spawned elsewhere");
    for s in &spinners {
        s.cancel();
    }
    ex.run_until_idle();
    assert_eq!(drops.count(), 2);
}

/// Wakes its partner on every poll and returns `Pending`, forever: two of them keep a
/// worker's LIFO slot full.
struct Bouncer {
    me: usize,
    wakers: Arc<std::sync::Mutex<[Option<std::task::Waker>; 2]>>,
    _token: DropToken,
}

impl Future for Bouncer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let partner = {
            let mut wakers = self.wakers.lock().unwrap();
            wakers[self.me] = Some(cx.waker().clone());
            wakers[1 - self.me].take()
        };
        if let Some(partner) = partner {
            partner.wake();
        }
        Poll::Pending
    }
}

/// Two tasks that wake each other keep the slot in front of the queue full (each wake of
/// the other lands in it), but at most three slot tasks run in a row, so a task waiting in
/// the queue (here `victim`, whose yields put it at the back) still runs. Without the
/// streak limit, `block_on(victim)` hangs.
fn tasks_waking_each_other_cannot_starve_the_queue(make_rt: fn() -> Rt) {
    no_hang(move || {
        let rt = make_rt();
        let drops = DropCounter::new();
        let wakers = Arc::new(std::sync::Mutex::new([None, None]));
        let bouncer = |me| Bouncer {
            me,
            wakers: wakers.clone(),
            _token: drops.token(),
        };
        let (a, b) = (bouncer(0), bouncer(1));
        // Spawned from a running task, so that all three start out in the slot and the
        // queue: `victim` first, so that the bouncers' wakes of each other push it back.
        let (victim, a, b) = rt
            .block_on(rt.spawn(async move {
                let victim = warden::spawn(async {
                    for _ in 0..5 {
                        warden::yield_now().await;
                    }
                    "ran"
                });
                (victim, warden::spawn(a), warden::spawn(b))
            }))
            .unwrap();
        assert_eq!(rt.block_on(victim).unwrap(), "ran");
        a.cancel();
        b.cancel();
        rt.block_on(async {
            assert!(a.await.unwrap_err().is_cancelled());
            assert!(b.await.unwrap_err().is_cancelled());
        });
        assert_eq!(drops.count(), 2);
    });
}

/// The pool's LIFO slot, on one worker, so that nobody else could steal the victim.
#[test]
fn pool_tasks_waking_each_other_cannot_starve_the_workers_deque() {
    tasks_waking_each_other_cannot_starve_the_queue(|| {
        Rt::Pool(warden::Builder::new().worker_threads(1).build())
    });
}

/// The `LocalExecutor`'s next slot.
#[test]
fn local_tasks_waking_each_other_cannot_starve_the_queue() {
    tasks_waking_each_other_cannot_starve_the_queue(|| Rt::Local(warden::LocalExecutor::new()));
}

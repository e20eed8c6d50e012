//! Adversarial theme: handle cycles.
//!
//! Two tasks that await each other's `JoinHandle` (handles exchanged through a
//! `Mutex<Option<JoinHandle>>`) deadlock until the executor shuts down; shutdown must drop
//! both futures and free everything: the futures' captures, and the task blocks
//! themselves. A task's header keeps the waker of whoever polled its handle (the join
//! waker); a waker is the polling task's `Arc`, so a join waker that outlives the handle
//! is a reference from one task block to another, and two of them can form a cycle that
//! reference counting never frees.
//!
//! How a leaked task block is seen: every task holds its executor's shared state, which
//! holds the error hook; the hook here captures an `Arc` marker (`leak_probe`). Once the
//! executor, every handle and every waker are gone, the marker's strong count must be 1
//! again; more means some task block (and with it the executor's state) is still alive.
//!
//! Found on the way: on the pool, a task of a pair can *complete* during shutdown, after
//! its partner's cancellation woke it; `every_task_live_at_shutdown_is_cancelled` pins
//! that down.

use crate::support;

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use support::{DropCounter, Flavor, Rt, assert_adds_up, hang_guard};
use warden::{Builder, CancelReason, JoinHandle};

/// A builder whose error hook holds a clone of `marker`: while any task block of the
/// executor is alive, so is the hook, and the marker's count stays above 1.
fn leak_probe(marker: &Arc<()>) -> Builder {
    let held = marker.clone();
    Builder::new().on_unhandled(move |_| {
        let _ = &held;
    })
}

type Slot = Arc<Mutex<Option<JoinHandle<()>>>>;

/// Waits (yielding) until `slot` holds a handle, and takes it.
async fn take_handle(slot: &Slot) -> JoinHandle<()> {
    loop {
        let taken = slot.lock().unwrap().take();
        if let Some(handle) = taken {
            return handle;
        }
        warden::yield_now().await;
    }
}

/// Polls `handle` exactly once (storing this task's waker in it), then drops it.
struct PollOnceThenDrop(Option<JoinHandle<()>>);

impl Future for PollOnceThenDrop {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut handle = self.0.take().expect("polled once");
        let pending = Pin::new(&mut handle).poll(cx).is_pending();
        drop(handle);
        Poll::Ready(pending)
    }
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Builds the executor for `flavor` with a leak probe.
fn probed_rt(flavor: Flavor, marker: &Arc<()>) -> Rt {
    flavor.build(leak_probe(marker))
}

rt_test! {
    /// A awaits B's handle, B awaits A's: a deadlock that only shutdown ends. Both
    /// futures are dropped once, their shared capture is freed, and so are the task blocks.
    fn mutual_await_is_freed_at_shutdown(flavor) {
        hang_guard("shutting down two tasks that await each other", move || {
            let probe = Arc::new(());
            let rt = ManuallyDrop::new(probed_rt(flavor, &probe));
            let drops = DropCounter::new();
            let shared = Arc::new(());
            let polled = Arc::new(AtomicUsize::new(0));
            let slot_a: Slot = Arc::new(Mutex::new(None));
            let slot_b: Slot = Arc::new(Mutex::new(None));

            let make = |mine: Slot, other: Slot| {
                let token = drops.token();
                let shared = shared.clone();
                let polled = polled.clone();
                async move {
                    let _token = token;
                    let _shared = shared;
                    let theirs = take_handle(&other).await;
                    polled.fetch_add(1, SeqCst);
                    drop(mine);
                    let _ = theirs.await;
                }
            };
            let a = rt.spawn(make(slot_a.clone(), slot_b.clone()));
            let b = rt.spawn(make(slot_b.clone(), slot_a.clone()));
            let (a_id, b_id) = (a.id(), b.id());
            *slot_a.lock().unwrap() = Some(a);
            *slot_b.lock().unwrap() = Some(b);
            drop((slot_a, slot_b));

            // Let both reach the mutual await.
            rt.block_on(async {
                while polled.load(SeqCst) < 2 {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            assert_eq!(drops.count(), 0, "a future was dropped before shutdown");
            let m = rt.metrics();
            assert_eq!((m.spawned, m.live), (2, 2), "{m:?}");

            let rt = ManuallyDrop::into_inner(rt);
            rt.shutdown();
            assert_eq!(
                drops.count(),
                2,
                "shutdown must drop both futures ({a_id}, {b_id})"
            );
            assert_eq!(
                Arc::strong_count(&shared),
                1,
                "a future's capture outlived shutdown"
            );
            let m = rt.metrics();
            // Both end, one way or another (whether the second one can still complete
            // after the first one's cancellation woke it is `every_pair_is_cancelled`'s
            // question).
            assert_eq!(
                (m.spawned, m.completed + m.cancelled, m.live),
                (2, 2, 0),
                "{m:?}"
            );
            assert_adds_up(&m);
            drop(rt);
            assert_eq!(
                Arc::strong_count(&probe),
                1,
                "a task block (and the executor state it holds) was leaked after shutdown"
            );
        });
    }

    /// The degenerate cycle: a task awaits its own handle. Shutdown drops its future (and
    /// with it the handle), and must free the task block too.
    fn self_await_is_freed_at_shutdown(flavor) {
        hang_guard("shutting down a task that awaits itself", move || {
            let probe = Arc::new(());
            let rt = ManuallyDrop::new(probed_rt(flavor, &probe));
            let drops = DropCounter::new();
            let polled = Arc::new(AtomicUsize::new(0));
            let slot: Slot = Arc::new(Mutex::new(None));
            let me = rt.spawn({
                let slot = slot.clone();
                let token = drops.token();
                let polled = polled.clone();
                async move {
                    let _token = token;
                    let mine = take_handle(&slot).await;
                    polled.fetch_add(1, SeqCst);
                    let _ = mine.await;
                }
            });
            *slot.lock().unwrap() = Some(me);
            rt.block_on(async {
                while polled.load(SeqCst) < 1 {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            drop(ManuallyDrop::into_inner(rt));
            assert_eq!(drops.count(), 1);
            assert_eq!(
                Arc::strong_count(&probe),
                1,
                "the task that awaited its own handle was leaked (its join waker holds itself)"
            );
        });
    }

    /// A polls B's handle once and drops it; B does the same with A's; both then finish
    /// normally. Nothing is pending and nothing awaits anything any more, so once the
    /// executor is dropped everything must be freed.
    fn abandoned_handle_polls_do_not_leak(flavor) {
        hang_guard("two tasks that poll each other's handle once", move || {
            let probe = Arc::new(());
            let rt = ManuallyDrop::new(probed_rt(flavor, &probe));
            let slot_a: Slot = Arc::new(Mutex::new(None));
            let slot_b: Slot = Arc::new(Mutex::new(None));
            let arrived = Arc::new(AtomicUsize::new(0));
            let make = |other: Slot| {
                let arrived = arrived.clone();
                async move {
                    let theirs = take_handle(&other).await;
                    let was_pending = PollOnceThenDrop(Some(theirs)).await;
                    arrived.fetch_add(1, SeqCst);
                    // Wait for the other task to have polled our handle too.
                    while arrived.load(SeqCst) < 2 {
                        warden::yield_now().await;
                    }
                    assert!(was_pending, "the other task was still running");
                }
            };
            let a = rt.spawn(make(slot_b.clone()));
            let b = rt.spawn(make(slot_a.clone()));
            *slot_a.lock().unwrap() = Some(a);
            *slot_b.lock().unwrap() = Some(b);
            drop((slot_a, slot_b));
            rt.block_on(async {
                while rt.metrics().live > 0 {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            });
            let m = rt.metrics();
            assert_eq!(
                (m.spawned, m.completed, m.panicked, m.live),
                (2, 2, 0, 0),
                "{m:?}"
            );
            drop(ManuallyDrop::into_inner(rt));
            assert_eq!(
                Arc::strong_count(&probe),
                1,
                "two finished tasks keep each other alive through their join wakers"
            );
        });
    }

    /// Shutdown "cancels every live task": tasks that are all live when `shutdown()` is
    /// called must all end `Cancelled(Shutdown)`, except a poll already under way on a
    /// worker, which may finish. Each "B" task polls in a loop (yielding)
    /// until its partner "A" has been dropped, and then returns a value; the A tasks come
    /// first in the registry, 2 000 idle fillers next, the Bs last. If shutdown cancels
    /// and runs tasks one at a time, a worker drops an A (and polls its B, which sees it)
    /// before the B's own cancel flag is set, and the B completes with a value although it
    /// was live when the shutdown began. (A race: how often it shows depends on the
    /// machine; five rounds of 50 pairs make it likely. Setting every flag before running
    /// any cancelled task removes it.)
    fn every_task_live_at_shutdown_is_cancelled(flavor) {
        hang_guard("shutting down pairs of tasks", move || {
            const PAIRS: usize = 50;
            const FILLERS: usize = 2_000;
            for round in 0..5 {
                let rt = flavor.rt();
                let started = Arc::new(AtomicUsize::new(0));
                let flags: Vec<Arc<AtomicBool>> = (0..PAIRS).map(|_| Arc::default()).collect();
                // The handles of the tasks that only wait are kept: a detached `pending()`
                // task holds no waker, and would be freed as a lost waker at once.
                let mut waiting = Vec::new();
                for flag in &flags {
                    let guard = SetOnDrop(flag.clone());
                    let started = started.clone();
                    waiting.push(rt.spawn(async move {
                        let _guard = guard;
                        started.fetch_add(1, SeqCst);
                        std::future::pending::<()>().await
                    }));
                }
                for _ in 0..FILLERS {
                    waiting.push(rt.spawn(std::future::pending::<()>()));
                }
                for flag in &flags {
                    let flag = flag.clone();
                    let started = started.clone();
                    rt.spawn(async move {
                        started.fetch_add(1, SeqCst);
                        while !flag.load(SeqCst) {
                            warden::yield_now().await;
                        }
                    })
                    .detach();
                }
                rt.block_on(async {
                    while started.load(SeqCst) < 2 * PAIRS {
                        std::thread::yield_now();
                        warden::yield_now().await;
                    }
                });
                rt.shutdown();
                let m = rt.metrics();
                let all = (2 * PAIRS + FILLERS) as u64;
                // A poll already under way when shutdown() began may still finish (the
                // cancel check happens before a poll, not during one): at most one per
                // worker, where the one-task-at-a-time shutdown let dozens through.
                let in_flight = match flavor {
                    support::Flavor::Local => 0,
                    support::Flavor::Pool => 2,
                };
                assert_eq!((m.spawned, m.live), (all, 0), "round {round}: {m:?}");
                assert_eq!(m.completed + m.cancelled, all, "round {round}: {m:?}");
                assert!(
                    m.completed <= in_flight,
                    "round {round}: tasks that were live when shutdown() was called \
                     completed instead of being cancelled: {m:?}"
                );
                drop(waiting);
            }
        });
    }

    /// The ordinary case, as a control for the probe: tasks that await handles to the end
    /// leave nothing behind.
    fn completed_awaits_leave_nothing_behind(flavor) {
        hang_guard("a chain of awaited handles", move || {
            let probe = Arc::new(());
            let rt = probed_rt(flavor, &probe);
            let inner = rt.spawn(async { 1 });
            let outer = rt.spawn(async move { inner.await.unwrap() + 1 });
            assert_eq!(rt.block_on(outer).unwrap(), 2);
            let cancelled = rt.spawn(std::future::pending::<()>());
            cancelled.cancel();
            let err = rt.block_on(cancelled).unwrap_err();
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
            drop(err);
            drop(rt);
            assert_eq!(
                Arc::strong_count(&probe),
                1,
                "the executor's state outlived it"
            );
        });
    }
}

//! Shutting an executor down (explicitly or by dropping it), on both executors: every live
//! future is dropped, handles resolve as `Cancelled(Shutdown)`, late spawns are refused,
//! stale wakers are no-ops, and destructors that wake, spawn, panic or form handle cycles
//! neither deadlock nor leak.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;
use futures::task::{ArcWake, SpawnExt};
use support::{DropCounter, DropToken, HookLog, PollCounter, assert_adds_up, drive_until, no_hang};
use warden::{CancelReason, Handle, JoinHandle, TaskError};

/// Asserts that `handle` has resolved, and resolved as cancelled by shutdown.
#[track_caller]
fn assert_shut_down<T: std::fmt::Debug>(handle: JoinHandle<T>) {
    assert!(
        handle.is_finished(),
        "a handle outlived shutdown unresolved"
    );
    let err = futures::executor::block_on(handle).expect_err("cancelled, not a value");
    assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown), "{err}");
}

/// Stores its task's waker in a shared slot on every poll; pending forever.
struct GrabWaker {
    slot: Arc<Mutex<Option<Waker>>>,
    _token: DropToken,
}

impl Future for GrabWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Panics in its destructor.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// Runs a closure when dropped (inside a task's future: runs while shutdown drops it).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A waker that forwards to another and counts its own drops: a task block that leaks
/// keeps the wakers stored in it, so this counter exposes the leak.
struct Forward {
    inner: Waker,
    _token: DropToken,
}

impl ArcWake for Forward {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.inner.wake_by_ref();
    }
}

/// Polls `inner` with a fresh [`Forward`] waker each time, counting how many it made.
struct Tracked<F> {
    inner: Pin<Box<F>>,
    made: Arc<AtomicUsize>,
    drops: DropCounter,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.made.fetch_add(1, SeqCst);
        let waker = futures::task::waker(Arc::new(Forward {
            inner: cx.waker().clone(),
            _token: self.drops.token(),
        }));
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

rt_test! {
    fn dropping_executor_drops_every_live_future(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let polled = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::new();
            // Half wait forever after a first poll, half sit in the queue never polled.
            for _ in 0..50 {
                let token = drops.token();
                let polled = polled.clone();
                handles.push(rt.spawn(async move {
                    let _token = token;
                    polled.fetch_add(1, SeqCst);
                    support::wait_forever().await
                }));
            }
            drive_until(&rt, || polled.load(SeqCst) == 50);
            let mut never_polled = Vec::new();
            for _ in 0..50 {
                let token = drops.token();
                let (counter, polls) = PollCounter::pending();
                never_polled.push(polls);
                handles.push(rt.spawn(async move {
                    let _token = token;
                    counter.await
                }));
            }
            assert_eq!(drops.count(), 0);
            drop(rt);
            assert_eq!(drops.count(), 100, "every live future is dropped by the executor's drop");
            for handle in handles {
                assert_shut_down(handle);
            }
            if flavor == support::Flavor::Local {
                // A local executor only runs while driven: these were never polled.
                assert!(never_polled.iter().all(|p| p.load(SeqCst) == 0));
            }
        });
    }

    fn shutdown_cancels_live_tasks_and_metrics_add_up(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let token = drops.token();
                    rt.spawn(async move {
                        let _token = token;
                        support::wait_forever().await
                    })
                })
                .collect();
            let done = rt.spawn(async { 1 });
            assert_eq!(rt.block_on(done).unwrap(), 1);
            rt.shutdown();
            assert_eq!(drops.count(), 10, "shutdown() drops the futures before it returns");
            let m = rt.metrics();
            assert_eq!((m.spawned, m.completed, m.cancelled, m.live), (11, 1, 10, 0), "{m:?}");
            assert_adds_up(&m);
            rt.shutdown(); // a second call does nothing
            assert_eq!(rt.metrics(), m);
            for handle in handles {
                assert_shut_down(handle);
            }
        });
    }

    fn spawn_after_shutdown_resolves_at_once(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            rt.shutdown();
            let drops = DropCounter::new();
            let (counter, polls) = PollCounter::pending();
            let token = drops.token();
            let late = rt.spawn(async move {
                let _token = token;
                counter.await
            });
            assert_eq!(drops.count(), 1, "a refused task's future is dropped at once");
            assert_eq!(polls.load(SeqCst), 0, "a refused task is never polled");
            assert_shut_down(late);

            // Awaiting a refused task's handle on the executor itself does not hang either.
            let late = rt.spawn(async { 5 });
            let err = rt.block_on(late).unwrap_err();
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));

            // Through a Handle, from another thread.
            let handle = rt.handle();
            let from_thread = std::thread::spawn(move || handle.spawn(async { 6 }))
                .join()
                .expect("spawning after shutdown must not panic");
            assert_shut_down(from_thread);

            // The futures `Spawn` impl says so instead of pretending.
            let err = SpawnExt::spawn(&rt.handle(), async {}).expect_err("Spawn refuses after shutdown");
            assert!(err.is_shutdown());

            let m = rt.metrics();
            assert_eq!((m.spawned, m.cancelled, m.completed, m.live), (3, 3, 0, 0), "{m:?}");
            assert_adds_up(&m);
        });
    }

    fn stale_wakers_are_no_ops(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let slot = Arc::new(Mutex::new(None));
            let handle = rt.spawn(GrabWaker {
                slot: slot.clone(),
                _token: drops.token(),
            });
            drive_until(&rt, || slot.lock().unwrap().is_some());
            // The root future's waker, too.
            let root_waker = rt.block_on(futures::future::poll_fn(|cx| {
                Poll::Ready(cx.waker().clone())
            }));
            // And the waker of a task that finished normally.
            let done_slot = Arc::new(Mutex::new(None));
            let done = rt.spawn({
                let done_slot = done_slot.clone();
                async move {
                    futures::future::poll_fn(|cx| {
                        *done_slot.lock().unwrap() = Some(cx.waker().clone());
                        Poll::Ready(())
                    })
                    .await
                }
            });
            rt.block_on(done).unwrap();

            drop(rt);
            assert_eq!(drops.count(), 1);
            assert_shut_down(handle);

            let task_waker = slot.lock().unwrap().take().unwrap();
            let done_waker = done_slot.lock().unwrap().take().unwrap();
            task_waker.wake_by_ref();
            done_waker.wake_by_ref();
            root_waker.wake_by_ref();
            let wakers = (task_waker.clone(), done_waker.clone(), root_waker.clone());
            std::thread::spawn(move || {
                wakers.0.wake_by_ref();
                wakers.1.wake_by_ref();
                wakers.2.wake_by_ref();
                wakers.0.wake();
                wakers.1.wake();
                wakers.2.wake();
            })
            .join()
            .expect("waking after the executor is gone must not panic");
            task_waker.wake();
            done_waker.wake();
            root_waker.wake();
            assert_eq!(drops.count(), 1, "nothing was dropped twice");
        });
    }

    fn destructors_that_wake_and_spawn_during_shutdown(flavor) {
        no_hang(move || {
            const N: usize = 20;
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let spawned_drops = DropCounter::new();
            let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
            let late_handles: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
            let mut handles = Vec::new();
            for _ in 0..N {
                let token = drops.token();
                let wakers = wakers.clone();
                let wakers_for_drop = wakers.clone();
                let late_handles = late_handles.clone();
                let spawned_drops = spawned_drops.clone();
                let handle: Handle = rt.handle();
                handles.push(rt.spawn(async move {
                    let _token = token;
                    // On drop: wake every stored waker (other pending tasks) and spawn
                    // two tasks, through warden::spawn and through a Handle.
                    let _on_drop = OnDrop(move || {
                        for waker in wakers_for_drop.lock().unwrap().iter() {
                            waker.wake_by_ref();
                        }
                        let a = spawned_drops.token();
                        let b = spawned_drops.token();
                        let h1 = warden::spawn(async move {
                            let _a = a;
                            support::wait_forever().await
                        });
                        let h2 = handle.spawn(async move {
                            let _b = b;
                        });
                        late_handles.lock().unwrap().extend([h1, h2]);
                    });
                    // Register this task's waker for the others to wake.
                    futures::future::poll_fn(|cx| {
                        let mut wakers = wakers.lock().unwrap();
                        if wakers.len() < N * 4 {
                            wakers.push(cx.waker().clone());
                        }
                        Poll::<()>::Pending
                    })
                    .await;
                }));
            }
            drive_until(&rt, || wakers.lock().unwrap().len() >= N);
            drop(rt);
            assert_eq!(drops.count(), N, "every pending future dropped");
            assert_eq!(
                spawned_drops.count(),
                2 * N,
                "every future spawned during shutdown was dropped (refused)"
            );
            for handle in handles {
                assert_shut_down(handle);
            }
            let late = std::mem::take(&mut *late_handles.lock().unwrap());
            assert_eq!(late.len(), 2 * N, "every spawn during shutdown returned a handle");
            for handle in late {
                assert_shut_down(handle);
            }
            // The stored wakers now point at dead tasks: still no-ops.
            for waker in wakers.lock().unwrap().drain(..) {
                waker.wake();
            }
        });
    }

    fn destructors_that_cancel_and_drop_other_handles(flavor) {
        no_hang(move || {
            const N: usize = 10;
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let started = Arc::new(AtomicUsize::new(0));
            // Each "holder" task owns the handle of a "held" task; dropping the holder
            // cancels the held task and drops its handle, in the middle of shutdown.
            for _ in 0..N {
                let token = drops.token();
                let started2 = started.clone();
                let held = rt.spawn(async move {
                    let _token = token;
                    started2.fetch_add(1, SeqCst);
                    support::wait_forever().await
                });
                let token = drops.token();
                let started2 = started.clone();
                rt.spawn(async move {
                    let _token = token;
                    let _cancel_on_drop = OnDrop(move || held.cancel_with("holder dropped"));
                    started2.fetch_add(1, SeqCst);
                    support::wait_forever().await
                })
                .detach();
            }
            drive_until(&rt, || started.load(SeqCst) == 2 * N);
            rt.shutdown();
            assert_eq!(drops.count(), 2 * N);
            let m = rt.metrics();
            assert_eq!((m.cancelled, m.live), (2 * N as u64, 0), "{m:?}");
            assert_adds_up(&m);
        });
    }

    fn handle_cycle_is_freed_at_shutdown(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let waker_drops = DropCounter::new();
            let wakers_made = Arc::new(AtomicUsize::new(0));
            let waiting = Arc::new(AtomicUsize::new(0));
            let (to_a, from_b) = oneshot::channel::<JoinHandle<()>>();
            let (to_b, from_a) = oneshot::channel::<JoinHandle<()>>();
            let make = |peer: oneshot::Receiver<JoinHandle<()>>| {
                let token = drops.token();
                let waiting = waiting.clone();
                Tracked {
                    inner: Box::pin(async move {
                        let _token = token;
                        let peer = peer.await.expect("peer handle sent");
                        waiting.fetch_add(1, SeqCst);
                        // Awaits the peer, which awaits us: neither ever finishes.
                        let _ = peer.await;
                    }),
                    made: wakers_made.clone(),
                    drops: waker_drops.clone(),
                }
            };
            let a = rt.spawn(make(from_b));
            let b = rt.spawn(make(from_a));
            to_a.send(b).unwrap();
            to_b.send(a).unwrap();
            drive_until(&rt, || waiting.load(SeqCst) == 2);
            drop(rt);
            assert_eq!(drops.count(), 2, "both futures of the cycle were dropped");
            assert_eq!(
                waker_drops.count(),
                wakers_made.load(SeqCst),
                "a waker stored in a task block was never freed: the cycle leaked"
            );
        });
    }

    fn task_awaiting_its_own_handle_is_freed_at_shutdown(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let waker_drops = DropCounter::new();
            let wakers_made = Arc::new(AtomicUsize::new(0));
            let waiting = Arc::new(AtomicUsize::new(0));
            let (to_self, from_self) = oneshot::channel::<JoinHandle<()>>();
            let token = drops.token();
            let handle = rt.spawn(Tracked {
                inner: Box::pin({
                    let waiting = waiting.clone();
                    async move {
                        let _token = token;
                        let me = from_self.await.expect("own handle sent");
                        waiting.fetch_add(1, SeqCst);
                        // A cycle of length one: the task waits for itself.
                        let _ = me.await;
                    }
                }),
                made: wakers_made.clone(),
                drops: waker_drops.clone(),
            });
            to_self.send(handle).unwrap();
            drive_until(&rt, || waiting.load(SeqCst) == 1);
            drop(rt);
            assert_eq!(drops.count(), 1, "the future was dropped");
            assert_eq!(
                waker_drops.count(),
                wakers_made.load(SeqCst),
                "a waker stored in the task block was never freed: the self-cycle leaked"
            );
        });
    }

    fn spawns_racing_with_shutdown_are_never_lost(flavor) {
        no_hang(move || {
            const THREADS: usize = 3;
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let spawned = Arc::new(AtomicUsize::new(0));
            let spawners: Vec<_> = (0..THREADS)
                .map(|_| {
                    let handle = rt.handle();
                    let drops = drops.clone();
                    let spawned = spawned.clone();
                    std::thread::spawn(move || {
                        // Spawn until shutdown has visibly happened (a handle comes back
                        // already resolved) a few times over, so that some spawns overlap it.
                        let mut handles = Vec::new();
                        let mut resolved_at_once = 0;
                        while resolved_at_once < 20 && handles.len() < 100_000 {
                            let token = drops.token();
                            let h = handle.spawn(async move {
                                let _token = token;
                                support::wait_forever().await
                            });
                            if h.is_finished() {
                                resolved_at_once += 1;
                            }
                            handles.push(h);
                            spawned.fetch_add(1, SeqCst);
                        }
                        handles
                    })
                })
                .collect();
            while spawned.load(SeqCst) < THREADS * 50 {
                std::thread::yield_now();
            }
            // Shut down while the other threads are spawning.
            drop(rt);
            let handles: Vec<_> = spawners
                .into_iter()
                .flat_map(|t| t.join().expect("a spawn racing with shutdown panicked"))
                .collect();
            assert_eq!(
                drops.count(),
                handles.len(),
                "a future spawned around shutdown was never dropped"
            );
            for handle in handles {
                assert_shut_down(handle);
            }
        });
    }

    fn destructor_panics_during_shutdown_are_contained(flavor) {
        no_hang(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let started = Arc::new(AtomicUsize::new(0));
            let mut read = Vec::new();
            for i in 0..6 {
                let started = started.clone();
                let handle = rt.spawn(async move {
                    let _bomb = PanicOnDrop("drop panic at shutdown");
                    started.fetch_add(1, SeqCst);
                    support::wait_forever().await
                });
                if i % 2 == 0 {
                    read.push(handle);
                } else {
                    handle.detach();
                }
            }
            drive_until(&rt, || started.load(SeqCst) == 6);
            rt.shutdown(); // must not unwind
            let m = rt.metrics();
            assert_eq!((m.panicked, m.cancelled, m.live), (6, 0, 0), "{m:?}");
            assert_adds_up(&m);
            for handle in read {
                let err: TaskError = futures::executor::block_on(handle).unwrap_err();
                assert!(err.is_panic(), "{err}");
                assert_eq!(err.panic_message(), Some("drop panic at shutdown"));
            }
            drop(rt);
            let unread = log.errors();
            assert_eq!(unread.len(), 3, "the detached failures, once each: {unread:?}");
            assert!(unread.iter().all(|e| e.is_panic()));
        });
    }
}

//! Adversarial theme: destructors that wake, cancel and spawn while the executor shuts
//! down.
//!
//! Pending tasks hold each other's wakers and handles. When the executor is dropped (or
//! shut down), each task's destructor wakes every waker it can reach (its own, its
//! siblings', finished ones), cancels and drops the handle of the next task, and spawns
//! new tasks (through a captured `Handle` and through `warden::spawn`) whose futures, in
//! turn, spawn again from their own destructors, two levels deep. Shutdown refuses those
//! spawns (they resolve to `Shutdown` at once and their futures are dropped), so it must
//! finish: no deadlock, no hang, and every destructor runs exactly once.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use support::{DropCounter, DropToken, Rt, hang_guard};
use warden::{Handle, JoinHandle};

const TASKS: usize = 16;

/// What every task's destructor can reach.
#[derive(Clone)]
struct Shared {
    wakers: Arc<Mutex<Vec<Waker>>>,
    handles: Arc<Mutex<Vec<Option<JoinHandle<()>>>>>,
    spawner: Handle,
    drops: DropCounter,
    spawned_in_drop: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

/// Wakes, cancels and spawns when dropped; `depth` limits the spawn chain.
struct Mischief {
    index: usize,
    depth: u32,
    shared: Shared,
    _token: DropToken,
}

impl Drop for Mischief {
    fn drop(&mut self) {
        let s = &self.shared;
        // Wake everything reachable (cloned first: a wake must not run under our lock).
        let wakers: Vec<Waker> = s.wakers.lock().unwrap().clone();
        for w in &wakers {
            w.wake_by_ref();
        }
        // Cancel and drop the next task's handle.
        let next = s
            .handles
            .lock()
            .unwrap()
            .get_mut((self.index + 1) % TASKS)
            .and_then(Option::take);
        if let Some(next) = next {
            next.cancel();
            drop(next);
        }
        // Spawn, two levels deep, alternating the two ways to spawn.
        if self.depth < 2 {
            let child = Mischief {
                index: self.index,
                depth: self.depth + 1,
                shared: s.clone(),
                _token: s.drops.token(),
            };
            let body = async move {
                let _child = child;
                support::wait_forever().await
            };
            let handle = if self.depth % 2 == 0 {
                s.spawner.spawn(body)
            } else {
                warden::spawn(body)
            };
            s.spawned_in_drop.fetch_add(1, SeqCst);
            if handle.is_finished() {
                s.refused.fetch_add(1, SeqCst);
            }
            handle.detach();
        }
    }
}

/// Spawns `TASKS` pending tasks that publish their wakers, then drives the executor until
/// all of them were polled.
fn populate(rt: &Rt, shared: &Shared) {
    let polled = Arc::new(AtomicUsize::new(0));
    for index in 0..TASKS {
        let mischief = Mischief {
            index,
            depth: 0,
            shared: shared.clone(),
            _token: shared.drops.token(),
        };
        let wakers = shared.wakers.clone();
        let polled = polled.clone();
        let handle = rt.spawn(async move {
            let _mischief = mischief;
            let registered = AtomicBool::new(false);
            std::future::poll_fn(|cx| {
                if !registered.swap(true, SeqCst) {
                    wakers.lock().unwrap().push(cx.waker().clone());
                    polled.fetch_add(1, SeqCst);
                }
                std::task::Poll::<()>::Pending
            })
            .await
        });
        shared.handles.lock().unwrap().push(Some(handle));
    }
    // A finished task's waker is in the mix too.
    let finished = rt.spawn({
        let wakers = shared.wakers.clone();
        std::future::poll_fn(move |cx| {
            wakers.lock().unwrap().push(cx.waker().clone());
            std::task::Poll::Ready(())
        })
    });
    rt.block_on(async {
        while polled.load(SeqCst) < TASKS || !finished.is_finished() {
            std::thread::yield_now();
            warden::yield_now().await;
        }
    });
}

fn shared_for(rt: &Rt) -> Shared {
    Shared {
        wakers: Arc::default(),
        handles: Arc::default(),
        spawner: rt.handle(),
        drops: DropCounter::new(),
        spawned_in_drop: Arc::default(),
        refused: Arc::default(),
    }
}

rt_test! {
    fn dropping_the_executor_while_destructors_wake_and_spawn(flavor) {
        hang_guard(
            "dropping an executor whose destructors wake and spawn",
            move || {
                let rt = flavor.rt();
                let shared = shared_for(&rt);
                populate(&rt, &shared);
                assert_eq!(shared.drops.count(), 0);
                let spawner_alive = shared.spawner.clone();
                drop(rt);
                // Every task's destructor ran, and so did those of every future spawned from a
                // destructor (each level refused by the shut-down executor).
                let spawned = shared.spawned_in_drop.load(SeqCst);
                assert_eq!(spawned, TASKS * 2, "each task spawns a chain of two");
                assert_eq!(
                    shared.refused.load(SeqCst),
                    spawned,
                    "spawns during shutdown are refused"
                );
                assert_eq!(
                    shared.drops.count(),
                    TASKS + spawned,
                    "every destructor ran once"
                );
                // The handle of the shut-down executor still refuses cleanly afterwards.
                let late = spawner_alive.spawn(async {});
                assert!(late.is_finished());
                drop(shared);
            },
        );
    }

    fn explicit_shutdown_while_destructors_wake_and_spawn(flavor) {
        hang_guard(
            "shutdown() with destructors that wake and spawn",
            move || {
                let rt = flavor.rt();
                let shared = shared_for(&rt);
                populate(&rt, &shared);
                rt.shutdown();
                let spawned = shared.spawned_in_drop.load(SeqCst);
                assert_eq!(shared.drops.count(), TASKS + spawned);
                let m = rt.metrics();
                assert_eq!(m.live, 0, "{m:?}");
                assert_eq!(m.spawned, (TASKS + 1 + spawned) as u64, "{m:?}");
                assert_eq!(m.completed, 1, "{m:?}");
                assert_eq!(m.cancelled, (TASKS + spawned) as u64, "{m:?}");
                // Shutting down twice, and dropping afterwards, do nothing more.
                rt.shutdown();
                drop(rt);
                assert_eq!(shared.drops.count(), TASKS + spawned);
            },
        );
    }
}

/// Local only: a task whose destructor calls `shutdown()` of its own executor again, while
/// that executor is already shutting down (the executor is `!Send`, so the task holds it
/// in an `Rc` and is spawned with `spawn_local`). The nested call must return at once
/// instead of waiting for the task that is being dropped. (On the pool, a destructor runs
/// on the thread that finishes the shutdown only in rare races, so it is not tested here.)
#[test]
fn destructor_that_shuts_down_again() {
    hang_guard("a destructor that calls shutdown during shutdown", || {
        struct ShutsDown {
            ex: std::rc::Rc<warden::LocalExecutor>,
            _token: DropToken,
        }
        impl Drop for ShutsDown {
            fn drop(&mut self) {
                self.ex.shutdown();
            }
        }
        let ex = std::rc::Rc::new(warden::LocalExecutor::new());
        let drops = DropCounter::new();
        for _ in 0..3 {
            let guard = ShutsDown {
                ex: ex.clone(),
                _token: drops.token(),
            };
            ex.spawn(async move {
                let _guard = guard;
                support::wait_forever().await
            })
            .detach();
        }
        ex.run_until_idle();
        ex.shutdown();
        assert_eq!(drops.count(), 3);
        assert_eq!(
            std::rc::Rc::strong_count(&ex),
            1,
            "the tasks let go of the executor"
        );
        let m = ex.metrics();
        assert_eq!((m.spawned, m.cancelled, m.live), (3, 3, 0), "{m:?}");
    });
}

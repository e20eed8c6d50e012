//! Adversarial theme: spawning after shutdown.
//!
//! Once an executor is shut down (explicitly, or dropped), every way of spawning is
//! refused: `spawn`/`spawn_named` on the executor, `Handle::spawn` (from this thread and
//! from another, also after the executor was dropped), `warden::spawn` from a destructor
//! running during shutdown, a group's `spawn`, and `futures::task::Spawn::spawn_obj`, which
//! returns a shutdown `SpawnError` (`LocalSpawn::spawn_local_obj` likewise). A refused task
//! resolves at once to `Cancelled(Shutdown)`, its future is dropped without being polled
//! (and a panic in that destructor becomes the task's failure, not the spawner's), and the
//! metrics count it. Spawns racing the shutdown from another thread either run or are
//! refused, each future dropped exactly once, and shutdown still finishes.

use crate::support;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll};

use futures::task::{LocalSpawnExt, SpawnExt};
use support::{DropCounter, DropToken, HookLog, Rt, assert_adds_up, hang_guard, poll_quietly};
use warden::{CancelReason, JoinHandle, TaskError};

/// A future that counts its polls and holds a drop token; ready at once.
struct Watched {
    polls: Arc<AtomicUsize>,
    _token: DropToken,
}

impl Future for Watched {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        self.polls.fetch_add(1, SeqCst);
        Poll::Ready(1)
    }
}

/// Reads a finished handle without driving any executor.
fn read_now<T>(mut handle: JoinHandle<T>) -> Result<T, TaskError> {
    assert!(
        handle.is_finished(),
        "a refused task must be finished at once"
    );
    match poll_quietly(&mut handle) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("a finished handle was pending"),
    }
}

#[track_caller]
fn assert_refused(result: Result<u32, TaskError>) {
    let err = result.expect_err("a task spawned after shutdown must not run");
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));
}

rt_test! {
    fn every_spawn_path_is_refused(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let watched = || Watched {
            polls: polls.clone(),
            _token: drops.token(),
        };
        let handle = rt.handle();
        let group = rt.group();
        rt.shutdown();

        assert_refused(read_now(rt.spawn(watched())));
        assert_refused(read_now(rt.spawn_named("late", watched())));
        assert_refused(read_now(handle.spawn(watched())));
        assert_refused(read_now(handle.spawn_named("late via handle", watched())));
        let group_member = group.spawn(async {});
        let err = read_now(group_member).unwrap_err();
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));
        drop(group);
        // From another thread.
        let remote = {
            let handle = handle.clone();
            let w = watched();
            std::thread::spawn(move || handle.spawn(w)).join().unwrap()
        };
        assert_refused(read_now(remote));
        // `futures::task::Spawn`.
        let obj_drops = DropCounter::new();
        let token = obj_drops.token();
        let err =
            futures::task::Spawn::spawn_obj(&handle, Box::new(async move { drop(token) }).into())
                .expect_err("spawn_obj after shutdown");
        assert!(err.is_shutdown(), "{err:?}");
        assert_eq!(obj_drops.count(), 1, "the refused FutureObj is dropped");
        assert!(
            futures::task::Spawn::status(&handle)
                .unwrap_err()
                .is_shutdown()
        );
        assert!(handle.spawn_with_handle(async {}).is_err());

        assert_eq!(polls.load(SeqCst), 0, "a refused future was polled");
        assert_eq!(drops.count(), 5, "every refused future is dropped at once");
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.cancelled, m.completed, m.live, m.polls),
            (6, 6, 0, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        drop(rt);
        assert_eq!(log.len(), 0, "cancellations never reach the hook");
    }

    /// The executor is gone entirely; its `Handle` still refuses cleanly, from any thread.
    fn handle_outliving_the_executor(flavor) {
        let rt = flavor.rt();
        let handle = rt.handle();
        drop(rt);
        let drops = DropCounter::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let w = Watched {
            polls: polls.clone(),
            _token: drops.token(),
        };
        assert_refused(read_now(handle.spawn(w)));
        let w = Watched {
            polls: polls.clone(),
            _token: drops.token(),
        };
        let remote = std::thread::spawn(move || read_now(handle.spawn(w)))
            .join()
            .unwrap();
        assert_refused(remote);
        assert_eq!((polls.load(SeqCst), drops.count()), (0, 2));
    }

    /// A refused future whose destructor panics: the panic becomes the task's failure
    /// (reported through the handle), and the spawner does not see it.
    fn refused_future_with_a_panicking_destructor(flavor) {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("refused and exploded");
            }
        }
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        rt.shutdown();
        let bomb = Bomb;
        let spawned = catch_unwind(AssertUnwindSafe(|| {
            rt.spawn(async move {
                let _bomb = bomb;
            })
        }));
        let handle = spawned.expect("the destructor's panic escaped into spawn()");
        let err = read_now(handle).unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.panic_message(), Some("refused and exploded"));
        // Detached this time: the hook gets it.
        let bomb = Bomb;
        let spawned = catch_unwind(AssertUnwindSafe(|| {
            rt.spawn(async move {
                let _bomb = bomb;
            })
            .detach()
        }));
        assert!(
            spawned.is_ok(),
            "the destructor's panic escaped into spawn()"
        );
        drop(rt);
        assert_eq!(log.len(), 1);
    }

    /// `warden::spawn` from destructors running during the shutdown itself.
    fn spawn_from_a_destructor_during_shutdown(flavor) {
        struct SpawnsOnDrop {
            results: Arc<Mutex<Vec<Result<u32, TaskError>>>>,
            inner: DropCounter,
        }
        impl Drop for SpawnsOnDrop {
            fn drop(&mut self) {
                let token = self.inner.token();
                let handle = warden::spawn(async move {
                    let _token = token;
                    1
                });
                self.results.lock().unwrap().push(read_now(handle));
            }
        }
        let rt = flavor.rt();
        let results: Arc<Mutex<Vec<Result<u32, TaskError>>>> = Arc::default();
        let inner = DropCounter::new();
        let started = Arc::new(AtomicUsize::new(0));
        // Handles kept: a detached `pending()` task holds no waker and would be freed as a
        // lost waker before the shutdown.
        let mut waiting = Vec::new();
        for _ in 0..4 {
            let guard = SpawnsOnDrop {
                results: results.clone(),
                inner: inner.clone(),
            };
            let started = started.clone();
            waiting.push(rt.spawn(async move {
                let _guard = guard;
                started.fetch_add(1, SeqCst);
                std::future::pending::<()>().await
            }));
        }
        rt.block_on(async {
            while started.load(SeqCst) < 4 {
                std::thread::yield_now();
                warden::yield_now().await;
            }
        });
        drop(rt);
        drop(waiting);
        let results = std::mem::take(&mut *results.lock().unwrap());
        assert_eq!(results.len(), 4);
        for r in results {
            assert_refused(r);
        }
        assert_eq!(inner.count(), 4);
    }

    /// Another thread spawns as fast as it can while the executor shuts down: each task
    /// either ran (its value) or was refused (`Shutdown`), each future is dropped exactly
    /// once, shutdown finishes, and the metrics add up with nothing live.
    fn spawns_racing_shutdown(flavor) {
        hang_guard("spawns racing shutdown", move || {
            let rt = flavor.rt();
            let handle = rt.handle();
            let drops = DropCounter::new();
            let stop = Arc::new(AtomicBool::new(false));
            let (first_tx, first_rx) = mpsc::channel::<()>();
            let spawner = {
                let (drops, stop) = (drops.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut handles = Vec::new();
                    let mut i = 0u32;
                    // Keep going until well after shutdown began, then a little more.
                    let mut after_stop = 0;
                    while after_stop < 200 {
                        if stop.load(SeqCst) {
                            after_stop += 1;
                        }
                        let token = drops.token();
                        handles.push(handle.spawn(async move {
                            let _token = token;
                            warden::yield_now().await;
                            i
                        }));
                        if i == 10 {
                            first_tx.send(()).unwrap();
                        }
                        i += 1;
                    }
                    handles
                })
            };
            first_rx.recv().unwrap();
            if let Rt::Local(ex) = &rt {
                // Run a few (not `run_until_idle`: the other thread never lets it idle).
                for _ in 0..20 {
                    ex.try_tick();
                }
            }
            rt.shutdown();
            stop.store(true, SeqCst);
            let handles = spawner.join().expect("the spawning thread did not panic");
            let total = handles.len();
            let (mut ran, mut refused) = (0, 0);
            for (i, h) in handles.into_iter().enumerate() {
                match read_now(h) {
                    Ok(v) => {
                        assert_eq!(v as usize, i);
                        ran += 1;
                    }
                    Err(e) => {
                        assert_eq!(e.cancel_reason(), Some(&CancelReason::Shutdown), "{e}");
                        refused += 1;
                    }
                }
            }
            assert!(refused >= 200, "the spawns after shutdown were refused");
            assert_eq!(drops.count(), total, "every future dropped exactly once");
            let m = rt.metrics();
            assert_eq!(m.spawned as usize, total, "{m:?}");
            assert_eq!(
                (m.completed as usize, m.cancelled as usize, m.live),
                (ran, refused, 0),
                "{m:?}"
            );
            assert_adds_up(&m);
        });
    }
}

/// Local only (`LocalSpawn` is implemented by `LocalExecutor`, which is `!Send`).
#[test]
fn local_spawn_obj_after_shutdown_is_refused() {
    let ex = warden::LocalExecutor::new();
    ex.shutdown();
    let drops = DropCounter::new();
    let token = drops.token();
    let err = futures::task::LocalSpawn::spawn_local_obj(
        &ex,
        Box::new(async move { drop(token) }).into(),
    )
    .expect_err("spawn_local_obj after shutdown");
    assert!(err.is_shutdown(), "{err:?}");
    assert_eq!(drops.count(), 1);
    assert!(
        futures::task::LocalSpawn::status_local(&ex)
            .unwrap_err()
            .is_shutdown()
    );
    assert!(ex.spawn_local_with_handle(async {}).is_err());
    let pool = warden::Executor::new();
    pool.shutdown();
    assert!(
        pool.spawn_with_handle(async {}).is_err(),
        "Executor's Spawn refuses too"
    );
}

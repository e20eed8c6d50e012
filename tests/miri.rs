//! A small tour of every `unsafe` path, sized for Miri:
//! `cargo +nightly miri test --test miri` (see docs/testing.md).
//!
//! The stage cell of a task (src/task/harness.rs) is read and written under the rules of
//! src/task/mod.rs; `Timeout` pin-projects its inner future (src/time.rs); `spawn_local`
//! runs futures that are not `Send`. Each test below drives one of those paths the way a
//! user would, with counts small enough for Miri's interpreter. They also run (quickly) in
//! the ordinary suite.

mod support;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use support::DropCounter;
use warden::{Backtraces, Builder, CancelReason, LocalExecutor};

fn local() -> LocalExecutor {
    // Backtrace capture walks the stack through FFI that Miri does not model. No watchdog
    // thread: the tests of the watchdog below start their own.
    Builder::new()
        .backtraces(Backtraces::Off)
        .blocking_threshold(None)
        .build_local()
}

#[test]
fn value_read_through_the_handle() {
    let ex = local();
    let h = ex.spawn(async { vec![1, 2, 3] });
    assert_eq!(ex.block_on(h).unwrap(), vec![1, 2, 3]);
}

#[test]
fn handle_dropped_before_and_after_completion() {
    let drops = DropCounter::new();
    let ex = local();
    let early = ex.spawn({
        let t = drops.token();
        async move { t }
    });
    drop(early); // before completion: the executor drops the output
    let late = ex.spawn({
        let t = drops.token();
        async move { t }
    });
    ex.run_until_idle();
    assert_eq!(drops.count(), 1);
    drop(late); // after completion: the handle drops the output
    assert_eq!(drops.count(), 2);
}

#[test]
fn cancel_drops_the_future_in_place() {
    let drops = DropCounter::new();
    let ex = local();
    let h = ex.spawn({
        let t = drops.token();
        async move {
            let _t = t;
            std::future::pending::<()>().await
        }
    });
    ex.run_until_idle();
    h.cancel();
    let err = ex.block_on(h).unwrap_err();
    assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
    assert_eq!(drops.count(), 1);
}

#[test]
fn panic_becomes_the_failure() {
    let ex = local();
    let h = ex.spawn(async { panic!("under miri") });
    let err = ex.block_on(h).unwrap_err();
    assert_eq!(err.panic_message(), Some("under miri"));
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"under miri"));
}

#[test]
fn not_send_futures_on_the_local_executor() {
    let ex = local();
    let shared = Rc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let shared = shared.clone();
            ex.spawn(async move {
                warden::yield_now().await;
                shared.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    ex.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(shared.load(Ordering::SeqCst), 4);
}

#[test]
fn timeout_projects_and_drops_its_future() {
    let drops = DropCounter::new();
    let ex = local();
    let result = ex.block_on({
        let t = drops.token();
        warden::timeout(Duration::from_millis(1), async move {
            let _t = t;
            std::future::pending::<()>().await
        })
    });
    assert!(result.is_err());
    assert_eq!(drops.count(), 1);
    assert_eq!(ex.timer_count(), 0);
}

#[test]
fn group_failure_and_shutdown() {
    let drops = DropCounter::new();
    let ex = local();
    let report = ex.block_on({
        let drops = drops.clone();
        async move {
            let group = warden::TaskGroup::new();
            let t = drops.token();
            group
                .spawn(async move {
                    let _t = t;
                    std::future::pending::<()>().await
                })
                .detach();
            group.spawn(async { Err::<(), _>("boom") }).detach();
            group.join().await
        }
    });
    assert_eq!(report.unwrap_err().cancelled(), 1);
    assert_eq!(drops.count(), 1);
    let pending = ex.spawn(std::future::pending::<()>());
    drop(ex);
    assert!(pending.is_finished());
}

#[test]
fn pool_wakes_across_threads() {
    let ex = Builder::new()
        .worker_threads(2)
        .backtraces(Backtraces::Off)
        .build();
    let counter = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let counter = counter.clone();
            ex.spawn(async move {
                warden::yield_now().await;
                counter.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    ex.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(counter.load(Ordering::SeqCst), 8);
}

/// A task left in the LIFO slot of a worker stuck in one poll is taken by the idle worker
/// (the slot's owner/thief hand-off, through its `UnsafeCell`).
#[test]
fn a_stuck_workers_slot_task_is_taken_by_the_idle_worker() {
    let ex = Builder::new()
        .worker_threads(2)
        .backtraces(Backtraces::Off)
        .build();
    let child_ran = Arc::new(AtomicUsize::new(0));
    let parent = ex.spawn({
        let child_ran = child_ran.clone();
        async move {
            let child = warden::spawn({
                let child_ran = child_ran.clone();
                async move {
                    child_ran.fetch_add(1, Ordering::SeqCst);
                }
            });
            // Stuck in this poll until the child ran elsewhere (or a generous bound).
            let mut ran_during_the_block = false;
            for _ in 0..2_000 {
                if child_ran.load(Ordering::SeqCst) == 1 {
                    ran_during_the_block = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            child.await.unwrap();
            assert!(
                ran_during_the_block,
                "the child waited for its parent's poll to end"
            );
        }
    });
    ex.block_on(parent).unwrap();
    assert_eq!(child_ran.load(Ordering::SeqCst), 1);
}

/// The cancel slot boxes reasons that carry data, and frees the box with the task; a
/// second reason loses and its box is freed at once.
#[test]
fn cancel_reasons_with_data_are_kept_and_freed() {
    let ex = local();
    let h = ex.spawn(std::future::pending::<()>());
    h.cancel_with("first");
    h.cancel_with("second");
    h.cancel();
    let err = ex.block_on(h).unwrap_err();
    assert_eq!(
        err.cancel_reason(),
        Some(&CancelReason::Explicit(Some("first".into())))
    );
}

/// Spawns and wakes from another thread go through the local executor's remote queue and a
/// locked registry shard; the owner thread's own spawns use its unlocked queue and slab.
#[test]
fn local_executor_fed_from_another_thread() {
    let ex = local();
    let handle = ex.handle();
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let waiter = ex.spawn(async move { rx.await.unwrap() });
    ex.run_until_idle();
    let remote = std::thread::spawn(move || {
        tx.send(6).unwrap();
        handle.spawn(async { 7 })
    })
    .join()
    .unwrap();
    let product = ex.block_on(async move { waiter.await.unwrap() * remote.await.unwrap() });
    assert_eq!(product, 42);
    assert_eq!(ex.metrics().live, 0);
}

/// A future returns its value and then panics in its destructor, which runs in place
/// under the poll's guard: the panic is the failure, the value is dropped once, the
/// future's fields once (no double drop of a half-dropped stage).
#[test]
fn finished_future_whose_destructor_panics() {
    struct ReturnsThenPanics {
        value: Option<support::DropToken>,
        _held: support::DropToken,
    }
    impl std::future::Future for ReturnsThenPanics {
        type Output = support::DropToken;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<support::DropToken> {
            std::task::Poll::Ready(self.value.take().expect("polled once"))
        }
    }
    impl Drop for ReturnsThenPanics {
        fn drop(&mut self) {
            panic!("the future's destructor panicked");
        }
    }
    let drops = DropCounter::new();
    let ex = local();
    let h = ex.spawn(ReturnsThenPanics {
        value: Some(drops.token()),
        _held: drops.token(),
    });
    let err = ex.block_on(h).unwrap_err();
    assert_eq!(
        err.panic_message(),
        Some("the future's destructor panicked")
    );
    assert_eq!(
        drops.count(),
        2,
        "the value and the future's field, once each"
    );
}

/// The hand-written waker vtable (src/task/waker.rs): the borrowed waker, clones, wakes by
/// reference and by value from another thread, and drops, each taking its reference to the
/// task and its count in the state word with it.
#[test]
fn waker_clones_wakes_and_drops_keep_the_task_alive() {
    let ex = local();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let h = ex.spawn({
        let (slot, polls) = (slot.clone(), polls.clone());
        std::future::poll_fn(move |cx| match polls.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let spare = cx.waker().clone();
                spare.wake_by_ref(); // queued again after this poll
                drop(spare);
                Poll::Pending
            }
            1 => {
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(7),
        })
    });
    ex.run_until_idle();
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    let waker = slot.lock().unwrap().take().unwrap();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    assert_eq!(ex.block_on(h).unwrap(), 7);
}

/// A detached task whose only waker is dropped unwoken is freed there and then: the drop
/// of the last waker queues its cancellation, and its future is dropped in place.
#[test]
fn a_lost_waker_frees_its_task() {
    let drops = DropCounter::new();
    let reports = Arc::new(AtomicUsize::new(0));
    let ex = Builder::new()
        .backtraces(Backtraces::Off)
        .blocking_threshold(None)
        .on_stall({
            let reports = reports.clone();
            move |_| {
                reports.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build_local();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    ex.spawn({
        let (slot, token) = (slot.clone(), drops.token());
        std::future::poll_fn(move |cx| {
            let _ = &token;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
    })
    .detach();
    ex.run_until_idle();
    assert_eq!(drops.count(), 0);
    drop(slot.lock().unwrap().take());
    ex.run_until_idle();
    assert_eq!((drops.count(), reports.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(ex.metrics().cancelled, 1);
}

/// The watchdog reads the header of a task whose poll blocks (src/task/poll_slot.rs) while
/// the poller may be finishing: a completing task waits while the header is read.
#[test]
fn the_watchdog_names_a_blocking_poll() {
    let finished = Arc::new(AtomicUsize::new(0));
    let ex = Builder::new()
        .backtraces(Backtraces::Off)
        .blocking_threshold(Some(Duration::from_millis(1)))
        .on_stall({
            let finished = finished.clone();
            move |stall| {
                if matches!(
                    stall.kind(),
                    warden::StallKind::Blocking { finished: true, .. }
                ) {
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .build_local();
    for _ in 0..3 {
        let h = ex.spawn_named("sleeper", async {
            std::thread::sleep(Duration::from_millis(20));
        });
        ex.block_on(h).unwrap();
    }
    // Under Miri the watchdog may be scheduled late; at least the claim path ran without
    // undefined behaviour. On a real machine, every sleep is seen.
    let _ = finished.load(Ordering::SeqCst);
}

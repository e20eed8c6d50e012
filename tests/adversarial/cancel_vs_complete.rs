//! Adversarial theme: `cancel()` racing completion, from another thread.
//!
//! 1 000 iterations: a task finishes (at once, after a yield, or after a few yields) while
//! another thread cancels it. Whatever wins, the handle yields exactly one outcome, either
//! the value or `Cancelled(Explicit)`, never both, never a panic; the future is dropped
//! exactly once; the value, if produced, is dropped exactly once (by whoever reads the
//! handle); the outcome hook sees each task exactly once and agrees with the handle; and
//! `Metrics` add up with `completed + cancelled == spawned`.

use crate::support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};

use support::{DropCounter, DropToken, Flavor, Rt, assert_adds_up, hang_guard};
use warden::{Builder, CancelReason, JoinHandle, TaskExit, TaskId};

const ITERATIONS: usize = 1_000;

/// The task's value; counts its drops.
#[derive(Debug)]
struct Value {
    n: usize,
    _token: DropToken,
}

/// What the outcome hook saw, per task.
type Exits = Arc<Mutex<HashMap<TaskId, Vec<&'static str>>>>;

fn build(flavor: Flavor, exits: &Exits) -> Rt {
    let exits = exits.clone();
    flavor.build(Builder::new().on_task_exit(move |info, exit| {
        let what = match exit {
            TaskExit::Completed => "completed",
            TaskExit::Failed(_) => "failed",
            TaskExit::Cancelled(_) => "cancelled",
        };
        exits
            .lock()
            .unwrap()
            .entry(info.id())
            .or_default()
            .push(what);
    }))
}

rt_test! {
    fn cancel_races_completion(flavor) {
        hang_guard("cancel racing completion", move || {
            let exits: Exits = Arc::default();
            let rt = build(flavor, &exits);
            let future_drops = DropCounter::new();
            let value_drops = DropCounter::new();
            let (mut values, mut cancels) = (0, 0);
            for i in 0..ITERATIONS {
                let future_token = future_drops.token();
                let value_token = value_drops.token();
                let yields = i % 4;
                let handle: JoinHandle<Value> = rt.spawn(async move {
                    let _future_token = future_token;
                    for _ in 0..yields {
                        warden::yield_now().await;
                    }
                    Value {
                        n: i,
                        _token: value_token,
                    }
                });
                let barrier = Barrier::new(2);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        barrier.wait();
                        if i % 3 == 0 {
                            std::hint::spin_loop();
                        }
                        handle.cancel();
                    });
                    barrier.wait();
                    // Drive the executor (the local one runs only while driven) until the
                    // task is finished, one way or the other.
                    rt.block_on(async {
                        while !handle.is_finished() {
                            warden::yield_now().await;
                        }
                    });
                });
                match rt.block_on(handle) {
                    Ok(v) => {
                        assert_eq!(v.n, i);
                        values += 1;
                    }
                    Err(e) => {
                        assert!(e.is_cancelled(), "iteration {i}: {e}");
                        assert_eq!(e.cancel_reason(), Some(&CancelReason::Explicit(None)));
                        cancels += 1;
                    }
                }
                assert_eq!(future_drops.count(), i + 1, "iteration {i}: future drops");
                assert_eq!(value_drops.count(), i + 1, "iteration {i}: value drops");
            }
            let m = rt.metrics();
            assert_eq!(m.spawned, ITERATIONS as u64, "{m:?}");
            assert_eq!(m.completed + m.cancelled, m.spawned, "{m:?}");
            assert_eq!((m.completed, m.cancelled), (values, cancels), "{m:?}");
            assert_eq!((m.panicked, m.errored, m.live), (0, 0, 0), "{m:?}");
            assert_adds_up(&m);
            let exits = exits.lock().unwrap();
            assert_eq!(exits.len(), ITERATIONS);
            let completed = exits
                .values()
                .filter(|v| v.as_slice() == ["completed"])
                .count();
            let cancelled = exits
                .values()
                .filter(|v| v.as_slice() == ["cancelled"])
                .count();
            assert_eq!(
                (completed as u64, cancelled as u64),
                (values, cancels),
                "{exits:?}"
            );
            eprintln!("{flavor:?}: {values} values, {cancels} cancellations");
        });
    }

    /// Many tasks at once, cancelled by another thread while the executor completes them:
    /// each handle still yields exactly one outcome.
    fn bulk_cancel_races_bulk_completion(flavor) {
        hang_guard("bulk cancel racing bulk completion", move || {
            let exits: Exits = Arc::default();
            let rt = build(flavor, &exits);
            let future_drops = DropCounter::new();
            let polls = Arc::new(AtomicUsize::new(0));
            let handles: Vec<JoinHandle<usize>> = (0..ITERATIONS)
                .map(|i| {
                    let token = future_drops.token();
                    let polls = polls.clone();
                    rt.spawn(async move {
                        let _token = token;
                        polls.fetch_add(1, SeqCst);
                        warden::yield_now().await;
                        i
                    })
                })
                .collect();
            std::thread::scope(|s| {
                s.spawn(|| {
                    for h in handles.iter().rev() {
                        h.cancel();
                    }
                });
                rt.block_on(async {
                    while !handles.iter().all(|h| h.is_finished()) {
                        warden::yield_now().await;
                    }
                });
            });
            assert!(polls.load(SeqCst) <= ITERATIONS);
            let mut values = 0u64;
            for (i, h) in handles.into_iter().enumerate() {
                match rt.block_on(h) {
                    Ok(v) => {
                        assert_eq!(v, i);
                        values += 1;
                    }
                    Err(e) => assert_eq!(e.cancel_reason(), Some(&CancelReason::Explicit(None))),
                }
            }
            assert_eq!(future_drops.count(), ITERATIONS);
            let m = rt.metrics();
            assert_eq!(m.completed, values, "{m:?}");
            assert_eq!(m.completed + m.cancelled, ITERATIONS as u64, "{m:?}");
            assert_eq!(m.live, 0, "{m:?}");
            assert_adds_up(&m);
            assert!(exits.lock().unwrap().values().all(|v| v.len() == 1));
        });
    }
}

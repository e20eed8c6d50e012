//! Adversarial theme: when a failing task's handle is dropped.
//!
//! The handle of a task that panics is dropped unread before the task runs, *during* its
//! poll (from another thread, while the task is blocked inside `poll`, after which it
//! panics), and after it failed. Each way, nobody will read the failure, so the error hook
//! must see it exactly once. Then 1 000 failing tasks whose handles are dropped from
//! another thread at arbitrary moments while the executor runs them: the hook sees each of
//! them exactly once, whichever side lets go last.

use crate::support;

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

use support::{HookLog, assert_adds_up, drive_until, hang_guard, unit};
use warden::{Backtraces, TaskId};

/// Asserts that the hook saw exactly `ids`, each once, all panics.
#[track_caller]
fn assert_seen_once(log: &HookLog, ids: &[TaskId]) {
    let seen = log.errors();
    let seen_ids: Vec<TaskId> = seen.iter().map(|e| e.task().id()).collect();
    let unique: HashSet<TaskId> = seen_ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen_ids.len(),
        "a failure reached the hook twice: {seen_ids:?}"
    );
    let expected: HashSet<TaskId> = ids.iter().copied().collect();
    assert_eq!(
        unique, expected,
        "the hook saw {seen_ids:?}, expected {ids:?}"
    );
    assert!(seen.iter().all(|e| e.is_panic()), "{seen:?}");
}

rt_test! {
    fn dropped_before_the_task_runs(flavor) {
        hang_guard("handle dropped before the run", move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let handle = rt.spawn(unit(async {
                panic!("failed after its handle was dropped")
            }));
            let id = handle.id();
            drop(handle);
            drive_until(&rt, || rt.metrics().live == 0);
            drop(rt);
            assert_seen_once(&log, &[id]);
        });
    }

    /// The task signals that it is inside `poll`, waits there until another thread has
    /// dropped its handle, then panics.
    fn dropped_during_the_poll_from_another_thread(flavor) {
        hang_guard("handle dropped during the poll", move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let (in_poll_tx, in_poll_rx) = mpsc::channel::<()>();
            let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
            let handle = rt.spawn(unit(async move {
                in_poll_tx.send(()).unwrap();
                dropped_rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("the other thread dropped the handle");
                panic!("failed while its handle was being dropped");
            }));
            let id = handle.id();
            let dropper = std::thread::spawn(move || {
                in_poll_rx.recv().unwrap();
                drop(handle);
                dropped_tx.send(()).unwrap();
            });
            drive_until(&rt, || rt.metrics().live == 0);
            dropper.join().expect("the dropping thread did not panic");
            drop(rt);
            assert_seen_once(&log, &[id]);
        });
    }

    fn dropped_after_the_failure(flavor) {
        hang_guard("handle dropped after the failure", move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let handle = rt.spawn(unit(async {
                panic!("failed before its handle was dropped")
            }));
            let id = handle.id();
            drive_until(&rt, || handle.is_finished());
            assert_eq!(log.len(), 0, "the handle could still read it");
            drop(handle);
            assert_eq!(
                log.len(),
                1,
                "dropping the handle hands the failure to the hook at once"
            );
            drop(rt);
            assert_seen_once(&log, &[id]);
        });
    }

    /// All three at once, plus a handle that is read (the hook must not see that one).
    fn mixed_timings(flavor) {
        hang_guard("mixed handle drop timings", move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let before = rt.spawn(unit(async { panic!("before") }));
            let after = rt.spawn(unit(async { panic!("after") }));
            let read = rt.spawn(unit(async { panic!("read") }));
            let mut expected = vec![before.id(), after.id()];
            drop(before);
            let (in_poll_tx, in_poll_rx) = mpsc::channel::<()>();
            let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
            let during = rt.spawn(unit(async move {
                in_poll_tx.send(()).unwrap();
                dropped_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                panic!("during");
            }));
            expected.push(during.id());
            let dropper = std::thread::spawn(move || {
                in_poll_rx.recv().unwrap();
                drop(during);
                dropped_tx.send(()).unwrap();
            });
            let err = rt.block_on(read).unwrap_err();
            assert_eq!(err.panic_message(), Some("read"));
            drive_until(&rt, || after.is_finished() && rt.metrics().live == 0);
            drop(after);
            dropper.join().unwrap();
            drop(rt);
            assert_seen_once(&log, &expected);
        });
    }

    /// 1 000 failing tasks; another thread drops their handles at arbitrary moments while
    /// the executor runs them (some before their poll, some during, some after).
    fn racing_drops(flavor) {
        hang_guard("handles dropped while their tasks fail", move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder().backtraces(Backtraces::Off));
            let handles: Vec<_> = (0..1_000u32)
                .map(|i| {
                    rt.spawn(unit(async move {
                        if i % 2 == 0 {
                            warden::yield_now().await;
                        }
                        panic!("racing failure {i}");
                    }))
                })
                .collect();
            let ids: Vec<TaskId> = handles.iter().map(|h| h.id()).collect();
            let dropper = std::thread::spawn(move || {
                for (i, h) in handles.into_iter().enumerate() {
                    if i % 7 == 0 {
                        std::thread::yield_now();
                    }
                    drop(h);
                }
            });
            drive_until(&rt, || rt.metrics().live == 0);
            dropper.join().expect("the dropping thread did not panic");
            let m = rt.metrics();
            assert_eq!((m.spawned, m.panicked, m.live), (1_000, 1_000, 0), "{m:?}");
            assert_adds_up(&m);
            drop(rt);
            assert_seen_once(&log, &ids);
        });
    }
}

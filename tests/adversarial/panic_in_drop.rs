//! Adversarial theme: a future whose `Drop` panics while it is being cancelled.
//!
//! Cancellation drops the future, and its destructor may panic: through `handle.cancel()`
//! (from this thread or another), a group cancelling the siblings of a failed member, a
//! group dropped without `join`, and executor shutdown (explicit, or by dropping it). In
//! every case the panic becomes the task's failure (`is_panic()`, not a cancellation), it
//! never escapes to whoever cancelled (`cancel()` returns normally, `shutdown()` and
//! dropping the executor return normally), and it is reported exactly once: to the handle
//! or group that reads it, or else to the error hook.

use crate::support;

use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use support::{DropCounter, DropToken, HookLog, Rt, assert_adds_up, drive_until, must_not_panic};
use warden::{CancelReason, JoinHandle, TaskError};

/// Panics in its destructor, after bumping its drop counter.
struct Bomb {
    _token: DropToken,
    message: &'static str,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{}", self.message);
    }
}

/// Panics in its destructor with a payload that is not a string.
#[derive(Debug, PartialEq, Clone, Copy)]
struct DropPayload(u32);

struct CustomBomb(u32);

impl Drop for CustomBomb {
    fn drop(&mut self) {
        panic_any(DropPayload(self.0));
    }
}

/// A task that holds a bomb and waits forever; `started` is set at its first poll.
fn spawn_bomb(
    rt: &Rt,
    drops: &DropCounter,
    message: &'static str,
) -> (JoinHandle<()>, Arc<AtomicBool>) {
    let started = Arc::new(AtomicBool::new(false));
    let bomb = Bomb {
        _token: drops.token(),
        message,
    };
    let flag = started.clone();
    let handle = rt.spawn(async move {
        let _bomb = bomb;
        flag.store(true, SeqCst);
        support::wait_forever().await
    });
    (handle, started)
}

/// Asserts that `err` is the destructor's panic `message`, not a cancellation.
#[track_caller]
fn assert_drop_panic(err: &TaskError, message: &str) {
    assert!(err.is_panic(), "expected the destructor's panic, got {err}");
    assert!(
        !err.is_cancelled() && err.cancel_reason().is_none(),
        "{err}"
    );
    assert_eq!(err.panic_message(), Some(message));
}

rt_test! {
    fn cancel_of_a_task_whose_drop_panics(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let (handle, started) = spawn_bomb(&rt, &drops, "boom in drop (cancel)");
        drive_until(&rt, || started.load(SeqCst));
        must_not_panic("JoinHandle::cancel", || handle.cancel());
        let err = must_not_panic("awaiting the handle", || rt.block_on(handle)).unwrap_err();
        assert_drop_panic(&err, "boom in drop (cancel)");
        assert_eq!(drops.count(), 1);
        // Unpolled: cancelled before its first poll.
        let (unpolled, _) = spawn_bomb(&rt, &drops, "boom before first poll");
        must_not_panic("JoinHandle::cancel_with", || unpolled.cancel_with("early"));
        let err = rt.block_on(unpolled).unwrap_err();
        assert_drop_panic(&err, "boom before first poll");
        assert_eq!(drops.count(), 2);

        assert_eq!(
            rt.block_on(rt.spawn(async { 1 })).unwrap(),
            1,
            "the executor still runs"
        );
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.cancelled, m.completed, m.live),
            (3, 2, 0, 1, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        drop(rt);
        assert_eq!(
            log.len(),
            0,
            "both failures were read through their handles"
        );
    }

    fn cancel_from_another_thread(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let (handle, started) = spawn_bomb(&rt, &drops, "boom in drop (remote cancel)");
        drive_until(&rt, || started.load(SeqCst));
        std::thread::scope(|s| {
            s.spawn(|| must_not_panic("cancel on another thread", || handle.cancel()))
                .join()
                .expect("the cancelling thread did not panic");
        });
        let err = rt.block_on(handle).unwrap_err();
        assert_drop_panic(&err, "boom in drop (remote cancel)");
        drop(rt);
        assert_eq!(log.len(), 0);
    }

    /// Cancelled and detached: the failure has no reader, so the hook gets it, once.
    fn cancelled_and_detached_goes_to_the_hook_once(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let (handle, started) = spawn_bomb(&rt, &drops, "boom in a detached drop");
        drive_until(&rt, || started.load(SeqCst));
        let id = handle.id();
        handle.cancel();
        handle.detach();
        drive_until(&rt, || drops.count() == 1 && log.len() == 1);
        drop(rt);
        let seen = log.errors();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].task().id(), id);
        assert_drop_panic(&seen[0], "boom in a detached drop");
    }

    fn non_string_payload_from_drop(flavor) {
        let rt = flavor.rt();
        // Built outside the body, so the future holds it even if cancelled before it runs.
        let bomb = CustomBomb(77);
        let handle = rt.spawn(async move {
            let _bomb = bomb;
            support::wait_forever().await
        });
        handle.cancel();
        let err = rt.block_on(handle).unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        assert_eq!(
            *err.into_panic().downcast::<DropPayload>().unwrap(),
            DropPayload(77)
        );
    }

    /// One member fails; the group cancels its sibling, whose destructor panics: `join`
    /// reports both failures (the sibling's as a panic, not a cancellation), the hook none.
    fn group_sibling_cancel_with_panicking_drop(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let group = rt.group();
        let bomb = Bomb {
            _token: drops.token(),
            message: "boom in a sibling's drop",
        };
        let (go_tx, go_rx) = futures::channel::oneshot::channel::<()>();
        let sibling = group.spawn_named("sibling", async move {
            let _bomb = bomb;
            support::wait_forever().await
        });
        let failing = group.spawn_named("failing", async move {
            let _ = go_rx.await;
            Err::<(), _>("the first failure")
        });
        let sibling_id = sibling.id();
        let failing_id = failing.id();
        sibling.detach();
        failing.detach();
        go_tx.send(()).unwrap();
        let report = must_not_panic("the group's join", || rt.block_on(group.join()));
        let err = report.expect_err("the group failed");
        let failures = err.failures();
        assert_eq!(failures.len(), 2, "{err}");
        assert_eq!(failures[0].task().id(), failing_id);
        assert!(failures[0].is_error());
        assert_eq!(failures[1].task().id(), sibling_id);
        assert_drop_panic(&failures[1], "boom in a sibling's drop");
        assert_eq!(
            err.cancelled(),
            0,
            "the sibling panicked; it was not just cancelled"
        );
        assert_eq!(err.reason(), Some(&CancelReason::SiblingFailed(failing_id)));
        assert_eq!(drops.count(), 1);
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.errored, m.panicked, m.cancelled, m.live),
            (2, 1, 1, 0, 0),
            "{m:?}"
        );
        drop(rt);
        assert_eq!(log.len(), 0, "join reported both");
    }

    /// The group is dropped without `join`: its members are cancelled, the destructor
    /// panics, nobody will read it, so the hook sees it exactly once.
    fn group_dropped_with_panicking_member(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let group = rt.group();
        let bomb = Bomb {
            _token: drops.token(),
            message: "boom when the group is dropped",
        };
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let member = group.spawn(async move {
            let _bomb = bomb;
            flag.store(true, SeqCst);
            support::wait_forever().await
        });
        let id = member.id();
        member.detach();
        drive_until(&rt, || started.load(SeqCst));
        must_not_panic("dropping the group", || drop(group));
        drive_until(&rt, || drops.count() == 1 && log.len() == 1);
        drop(rt);
        let seen = log.errors();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].task().id(), id);
        assert_drop_panic(&seen[0], "boom when the group is dropped");
    }

    /// Shutdown (explicit, then by drop) with many pending bombs, some with handles kept,
    /// some detached: shutdown returns normally, every destructor ran once, each failure
    /// is reported once (handle or hook).
    fn shutdown_with_panicking_destructors(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let mut kept = Vec::new();
        let mut detached_ids = Vec::new();
        let mut started = Vec::new();
        for i in 0..20 {
            let (handle, flag) = spawn_bomb(&rt, &drops, "boom at shutdown");
            started.push(flag);
            if i % 2 == 0 {
                kept.push(handle);
            } else {
                detached_ids.push(handle.id());
                handle.detach();
            }
        }
        drive_until(&rt, || started.iter().all(|f| f.load(SeqCst)));
        must_not_panic("shutdown", || rt.shutdown());
        assert_eq!(drops.count(), 20, "shutdown must run every destructor");
        let mut hooked: Vec<_> = log.errors().iter().map(|e| e.task().id()).collect();
        hooked.sort_by_key(|id| id.to_string());
        detached_ids.sort_by_key(|id| id.to_string());
        assert_eq!(
            hooked, detached_ids,
            "each detached failure reaches the hook, once"
        );
        for handle in kept {
            assert!(handle.is_finished());
            let err = rt.block_on(handle).unwrap_err();
            assert_drop_panic(&err, "boom at shutdown");
        }
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.cancelled, m.live),
            (20, 20, 0, 0),
            "{m:?}"
        );
        must_not_panic("dropping the executor", || drop(rt));
        assert_eq!(log.len(), 10);
    }

    /// The executor is simply dropped, from a thread that is not the one that drives it
    /// for the pool (the local executor must be dropped on its own thread).
    fn drop_executor_with_panicking_destructors(flavor) {
        let log = HookLog::new();
        let (tx, rx) = mpsc::channel();
        let drops = DropCounter::new();
        let thread_drops = drops.clone();
        let thread_log = log.clone();
        std::thread::spawn(move || {
            let rt = flavor.build(thread_log.builder());
            let mut started = Vec::new();
            for _ in 0..8 {
                let (handle, flag) = spawn_bomb(&rt, &thread_drops, "boom when dropped");
                started.push(flag);
                handle.detach();
            }
            drive_until(&rt, || started.iter().all(|f| f.load(SeqCst)));
            let outcome = catch_unwind(AssertUnwindSafe(|| drop(rt)));
            let _ = tx.send(outcome.is_ok());
        });
        let dropped_cleanly = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("dropping the executor hung (hang guard, 20 s)");
        assert!(
            dropped_cleanly,
            "a destructor's panic escaped the executor's drop"
        );
        assert_eq!(drops.count(), 8);
        assert_eq!(log.len(), 8, "each failure reaches the hook exactly once");
        for err in log.errors() {
            assert_drop_panic(&err, "boom when dropped");
        }
    }
}

//! Adversarial theme: nested `block_on`.
//!
//! Blocking on an executor from a thread that already drives one would deadlock it, so
//! warden panics instead, with a message naming `block_on` (semantics 3): `block_on` (the
//! executor's, or the free `warden::block_on`) called inside a task becomes that task's
//! failure, on either executor, also when it targets a *different* executor; inside
//! `block_on`'s root future the panic unwinds to the caller. The local executor's
//! `try_tick` and `run_until_idle` called from inside its own task panic naming
//! themselves. Afterwards the executor carries on, and the thread can drive executors
//! again.

use crate::support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use support::{Rt, assert_adds_up, payload_text, unit};
use warden::{Builder, Executor, LocalExecutor, TaskError};

/// The failure of a task that was expected to panic, with its message.
fn failure(rt: &Rt, handle: warden::JoinHandle<()>) -> (TaskError, String) {
    let err = rt
        .block_on(handle)
        .expect_err("the nested block_on panicked");
    assert!(err.is_panic(), "{err}");
    let message = err.panic_message().unwrap_or("").to_string();
    (err, message)
}

rt_test! {
    fn free_block_on_inside_a_task_panics(flavor) {
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async {
            let v = warden::block_on(async { 1 });
            unreachable!("nested block_on returned {v}");
        }));
        let (err, message) = failure(&rt, handle);
        assert!(
            message.contains("block_on"),
            "the message must name block_on: {message}"
        );
        assert!(
            message.contains(&err.task().id().to_string()),
            "the message names the task: {message}"
        );
        assert_eq!(
            rt.block_on(rt.spawn(async { 2 })).unwrap(),
            2,
            "the executor continues"
        );
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.completed, m.live),
            (2, 1, 1, 0),
            "{m:?}"
        );
    }

    /// `block_on` of another executor (a fresh local one, a fresh pool) from a task.
    fn block_on_of_another_executor_inside_a_task_panics(flavor) {
        let rt = flavor.rt();
        let local = rt.spawn(unit(async {
            let other = LocalExecutor::new();
            other.block_on(async {});
        }));
        let (_, message) = failure(&rt, local);
        assert!(message.contains("block_on"), "{message}");

        let other_pool = Arc::new(Builder::new().worker_threads(1).build());
        let pool = rt.spawn(unit({
            let other_pool = other_pool.clone();
            async move {
                other_pool.block_on(async {});
            }
        }));
        let (_, message) = failure(&rt, pool);
        assert!(message.contains("block_on"), "{message}");
        // The other pool is untouched.
        assert_eq!(other_pool.block_on(async { 5 }), 5);
        drop(other_pool);
        assert_eq!(
            rt.block_on(async { warden::spawn(async { 3 }).await.unwrap() }),
            3
        );
    }

    /// `block_on` of the same executor inside its own root future.
    fn block_on_inside_block_on_panics(flavor) {
        let rt = flavor.rt();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { rt.block_on(async { 1 }) })
        }))
        .expect_err("nested block_on panics");
        let message = payload_text(&*caught);
        assert!(message.contains("block_on"), "{message}");
        // Again with the free function.
        let caught = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { warden::block_on(async { 1 }) })
        }))
        .expect_err("nested block_on panics");
        let message = payload_text(&*caught);
        assert!(message.contains("block_on"), "{message}");
        // The thread and the executor are usable again.
        assert_eq!(
            rt.block_on(async { warden::spawn(async { 4 }).await.unwrap() }),
            4
        );
        assert_eq!(warden::block_on(async { 5 }), 5);
        let m = rt.metrics();
        assert_adds_up(&m);
        assert_eq!(m.live, 0, "{m:?}");
    }

    /// A task tries many times; every attempt fails the same way and nothing leaks.
    fn repeated_attempts(flavor) {
        let rt = flavor.rt();
        let handles: Vec<_> = (0..20)
            .map(|_| rt.spawn(unit(async { warden::block_on(async {}) })))
            .collect();
        for h in handles {
            let (_, message) = failure(&rt, h);
            assert!(message.contains("block_on"), "{message}");
        }
        let m = rt.metrics();
        assert_eq!((m.spawned, m.panicked, m.live), (20, 20, 0), "{m:?}");
    }
}

/// Local only (a pool has no `try_tick`/`run_until_idle`): a task that drives its own
/// executor re-entrantly panics, naming what it called.
#[test]
fn local_try_tick_and_run_until_idle_inside_a_task_panic() {
    let ex = std::rc::Rc::new(LocalExecutor::new());
    let tick = ex.spawn({
        let ex = ex.clone();
        unit(async move {
            ex.try_tick();
        })
    });
    let idle = ex.spawn({
        let ex = ex.clone();
        unit(async move {
            ex.run_until_idle();
        })
    });
    let tick = ex.block_on(tick).unwrap_err();
    assert!(
        tick.panic_message().unwrap_or("").contains("try_tick"),
        "{tick}"
    );
    let idle = ex.block_on(idle).unwrap_err();
    assert!(
        idle.panic_message()
            .unwrap_or("")
            .contains("run_until_idle"),
        "{idle}"
    );
    assert_eq!(ex.run_until_idle(), 0);
    assert_eq!(ex.block_on(ex.spawn(async { 6 })).unwrap(), 6);
}

/// Pool only: a task on one pool calls `block_on` of a *second* pool whose task, in turn,
/// would need the first: without the guard this is a cross-executor deadlock.
#[test]
fn pool_task_blocking_on_a_second_pool_panics() {
    let first = Builder::new().worker_threads(1).build();
    let second = Arc::new(Executor::new());
    let handle = first.spawn(unit({
        let second = second.clone();
        async move {
            second.block_on(async { warden::yield_now().await });
        }
    }));
    let err = first.block_on(handle).unwrap_err();
    assert!(
        err.panic_message().unwrap_or("").contains("block_on"),
        "{err}"
    );
    assert_eq!(first.block_on(first.spawn(async { 7 })).unwrap(), 7);
}

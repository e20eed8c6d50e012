//! Adversarial theme: an error hook that panics, or spawns.
//!
//! The error hook is user code that warden calls from inside its own machinery (the
//! worker that finished a detached task, the thread that dropped a handle). A hook that
//! panics (with a string, with any payload, with a payload whose own destructor panics)
//! must not take down the executor, and the next failure must still be delivered to it. A
//! hook that spawns through a `Handle` it captured starts a task that runs; a hook that
//! spawns a task that fails in turn sees that failure too (bounded here).

use crate::support;

use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use support::{Flavor, Rt, assert_adds_up, assert_both_workers_alive, drive_until, unit};
use warden::{Builder, Handle, TaskError};

/// Builds `flavor` with `hook` as its error hook.
fn with_hook(flavor: Flavor, hook: impl Fn(&TaskError) + Send + Sync + 'static) -> Rt {
    flavor.build(Builder::new().on_unhandled(hook))
}

/// A payload whose destructor panics.
struct NastyPayload(Arc<AtomicUsize>);

impl Drop for NastyPayload {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("the hook's payload's destructor panicked");
    }
}

rt_test! {
    /// The hook panics on every call, in turn with a string, a formatted message, a
    /// non-string payload and a payload whose destructor panics. Every failure is still
    /// delivered, the executor keeps running, nothing escapes to the thread that dropped a
    /// handle.
    fn panicking_hook_keeps_the_executor_going(flavor) {
        let calls = Arc::new(AtomicUsize::new(0));
        let nasty_drops = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let rt = with_hook(flavor, {
            let (calls, seen, nasty_drops) = (calls.clone(), seen.clone(), nasty_drops.clone());
            move |err| {
                seen.lock()
                    .unwrap()
                    .push(err.panic_message().unwrap_or("").to_string());
                match calls.fetch_add(1, SeqCst) % 4 {
                    0 => panic!("the hook panicked"),
                    1 => panic!("the hook panicked for {}", err.task().id()),
                    2 => panic_any(12345_u64),
                    _ => panic_any(NastyPayload(nasty_drops.clone())),
                }
            }
        });
        // Detached failures: the hook runs on the executor's own threads.
        for i in 0..8 {
            rt.spawn(unit(async move { panic!("detached failure {i}") }))
                .detach();
        }
        drive_until(&rt, || calls.load(SeqCst) == 8);
        // Handles dropped unread after the failure: the hook runs on this thread.
        let handles: Vec<_> = (0..4)
            .map(|i| rt.spawn(unit(async move { panic!("dropped failure {i}") })))
            .collect();
        drive_until(&rt, || handles.iter().all(|h| h.is_finished()));
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(handles)));
        assert!(
            dropped.is_ok(),
            "the hook's panic escaped a JoinHandle's drop"
        );
        assert_eq!(
            calls.load(SeqCst),
            12,
            "every failure reaches the hook, once"
        );
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let mut expected: Vec<String> = (0..8)
            .map(|i| format!("detached failure {i}"))
            .chain((0..4).map(|i| format!("dropped failure {i}")))
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
        // warden drops a hook's panic payload safely: a payload whose own destructor panics
        // is dropped (once each) and that second panic is contained.
        assert!(
            nasty_drops.load(SeqCst) <= 12,
            "a nasty payload was dropped more than once"
        );
        assert_both_workers_alive(&rt);
        assert_eq!(rt.block_on(rt.spawn(async { 9 })).unwrap(), 9);
        let m = rt.metrics();
        assert_eq!((m.panicked, m.live), (12, 0), "{m:?}");
        assert_adds_up(&m);
    }

    /// After the hook panicked on a thread, a failure re-raised with `resume_unwind` (which
    /// skips the panic hook, so no fresh record is made) must report its own message, not
    /// the hook's panic.
    fn hook_panic_does_not_leak_into_the_next_report(flavor) {
        let rt = with_hook(flavor, |_| panic!("the hook's own panic"));
        let handle = rt.spawn(unit(async { panic!("first failure") }));
        drive_until(&rt, || handle.is_finished());
        drop(handle); // the hook runs (and panics) on this thread
        // On the local executor the next task runs on this same thread.
        let resumed = rt.spawn(unit(async {
            std::panic::resume_unwind(Box::new(String::from("resumed failure")))
        }));
        let err = rt.block_on(resumed).unwrap_err();
        assert_eq!(err.panic_message(), Some("resumed failure"), "{err}");
        assert!(!err.to_string().contains("the hook's own panic"), "{err}");
    }

    /// The hook spawns a task through a `Handle` it captured: the task runs.
    fn hook_spawns_through_a_captured_handle(flavor) {
        let slot: Arc<Mutex<Option<Handle>>> = Arc::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let rt = with_hook(flavor, {
            let (slot, ran) = (slot.clone(), ran.clone());
            move |err| {
                let handle = slot.lock().unwrap().clone();
                if let Some(handle) = handle {
                    let ran = ran.clone();
                    let id = err.task().id();
                    handle
                        .spawn(async move {
                            warden::yield_now().await;
                            ran.fetch_add(1, SeqCst);
                            id
                        })
                        .detach();
                }
            }
        });
        *slot.lock().unwrap() = Some(rt.handle());
        for _ in 0..5 {
            rt.spawn(unit(async { panic!("needs a follow-up") }))
                .detach();
        }
        let handle = rt.spawn(unit(async { panic!("dropped unread") }));
        drive_until(&rt, || handle.is_finished());
        drop(handle); // this hook call spawns from the test thread
        // `ran` counts before the follow-up task ends: on a pool, a worker may still be
        // finishing the last one, so wait for no live task as well.
        drive_until(&rt, || ran.load(SeqCst) == 6 && rt.metrics().live == 0);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.panicked, m.completed), (12, 6, 6), "{m:?}");
        // Break the hook -> handle -> executor cycle before dropping the executor.
        slot.lock().unwrap().take();
        drop(rt);
    }

    /// The hook spawns a task that fails too, detached, so the hook is called again for
    /// it: a chain of three hook calls, each from a failure the previous one caused.
    fn hook_spawns_a_failing_task(flavor) {
        let slot: Arc<Mutex<Option<Handle>>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let rt = with_hook(flavor, {
            let (slot, calls) = (slot.clone(), calls.clone());
            move |_| {
                let n = calls.fetch_add(1, SeqCst);
                let handle = slot.lock().unwrap().clone();
                if let (true, Some(handle)) = (n < 2, handle) {
                    handle
                        .spawn(unit(async move { panic!("follow-up failure {n}") }))
                        .detach();
                }
            }
        });
        *slot.lock().unwrap() = Some(rt.handle());
        rt.spawn(unit(async { panic!("the first failure") }))
            .detach();
        drive_until(&rt, || calls.load(SeqCst) == 3 && rt.metrics().live == 0);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.panicked, m.live), (3, 3, 0), "{m:?}");
        slot.lock().unwrap().take();
        drop(rt);
        assert_eq!(calls.load(SeqCst), 3);
    }

    /// A hook that panics and spawns: the spawn (before the panic) still runs.
    fn hook_spawns_then_panics(flavor) {
        let slot: Arc<Mutex<Option<Handle>>> = Arc::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let rt = with_hook(flavor, {
            let (slot, ran) = (slot.clone(), ran.clone());
            move |_| {
                let handle = slot.lock().unwrap().clone();
                if let Some(handle) = handle {
                    let ran = ran.clone();
                    handle
                        .spawn(async move {
                            ran.fetch_add(1, SeqCst);
                        })
                        .detach();
                }
                panic!("the hook panicked after spawning");
            }
        });
        *slot.lock().unwrap() = Some(rt.handle());
        rt.spawn(unit(async { panic!("a failure") })).detach();
        rt.spawn(unit(async { panic!("another failure") })).detach();
        drive_until(&rt, || ran.load(SeqCst) == 2);
        slot.lock().unwrap().take();
        drop(rt);
    }
}

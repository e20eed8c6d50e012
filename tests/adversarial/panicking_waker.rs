//! Adversarial theme: a panicking waker.
//!
//! Whoever awaits a `JoinHandle` (or a `GroupJoin`) hands the executor a waker that the
//! *completing* task will call. Here that waker panics on wake. The future awaiting the
//! handle is polled by hand, with a `Context` built from such a waker, so the panic can
//! only happen inside warden, on the thread that finishes the task. A panic in user code
//! never takes down a worker or the executor, so the executor must survive it: the completing task's worker / owner loop
//! keeps running, the task's outcome (value or failure) is still delivered to the handle,
//! `Metrics` add up, and dropping the executor does not hang.
//!
//! Each executor is held in a `ManuallyDrop` and dropped only at the end of a passing body:
//! when warden loses a task to such a panic, dropping the executor would wait forever for
//! it, and the hang guard would then hide the assertion that explains why.

use crate::support;

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::channel::oneshot;
use futures::task::ArcWake;
use support::{
    Rt, assert_adds_up, assert_both_workers_alive, payload_text, poll_once, poll_quietly, unit,
};

/// What a guarded body is doing, for the hang guard's message.
#[derive(Clone, Default)]
struct Phase(Arc<Mutex<&'static str>>);

impl Phase {
    fn set(&self, what: &'static str) {
        *self.0.lock().unwrap() = what;
    }
}

/// Runs `body` on its own thread and fails the test, naming the phase it was in, if it has
/// not finished after 20 s. A hang guard, not a timing assertion: each body takes
/// milliseconds when warden is right.
fn hang_guard<R: Send + 'static>(what: &str, body: impl FnOnce(Phase) -> R + Send + 'static) -> R {
    let phase = Phase::default();
    let (tx, rx) = mpsc::channel();
    let body_phase = phase.clone();
    std::thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(move || body(body_phase))));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!(
            "{what}: hung (no result after 20 s) while {}",
            phase.0.lock().unwrap()
        ),
    }
}

/// A waker that counts its wakes and then panics.
#[derive(Default)]
struct PanickingWaker {
    wakes: AtomicUsize,
}

impl ArcWake for PanickingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wakes.fetch_add(1, SeqCst);
        panic!("the waker exploded");
    }
}

/// Polls `fut` once with a context whose waker panics on wake.
fn poll_with_panicking_waker<F: Future + Unpin>(
    fut: &mut F,
    waker: &Arc<PanickingWaker>,
) -> Poll<F::Output> {
    poll_once(fut, &futures::task::waker(waker.clone()))
}

/// Drives `rt` until `done()` holds. A panic escaping the executor is returned, not
/// propagated, so that the test can say what went wrong.
fn drive_until(rt: &Rt, done: impl Fn() -> bool) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(futures::future::poll_fn(|cx| {
            if done() {
                Poll::Ready(())
            } else {
                std::thread::yield_now();
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }))
    }))
    .map_err(|p| payload_text(&*p))
}

rt_test! {
    /// The task completes with a value; its handle's waiter panics on wake.
    fn join_waiter_that_panics_on_wake_does_not_crash_the_executor(flavor) {
        hang_guard(
            "completing a task whose JoinHandle waker panics",
            move |phase| {
                phase.set("running the test body");
                let rt = ManuallyDrop::new(flavor.rt());
                let (tx, rx) = oneshot::channel::<u32>();
                let mut handle = rt.spawn(async move { rx.await.unwrap() + 1 });
                let waker = Arc::new(PanickingWaker::default());
                assert!(poll_with_panicking_waker(&mut handle, &waker).is_pending());
                tx.send(41).unwrap();

                phase.set("driving the executor until the task(s) finished");
                let driven = drive_until(&rt, || handle.is_finished());
                assert_eq!(
                    driven,
                    Ok(()),
                    "the join waiter's panic escaped the executor into block_on"
                );
                assert_eq!(
                    waker.wakes.load(SeqCst),
                    1,
                    "the waiter must be woken exactly once"
                );
                match poll_quietly(&mut handle) {
                    Poll::Ready(Ok(v)) => assert_eq!(v, 42),
                    other => panic!("the value was not delivered: {other:?}"),
                }

                // The executor keeps working, and adds up.
                assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
                let m = rt.metrics();
                assert_eq!(
                    (m.spawned, m.completed, m.panicked, m.live),
                    (2, 2, 0, 0),
                    "{m:?}"
                );
                assert_adds_up(&m);
                phase.set("dropping the executor (shutdown)");
                drop(ManuallyDrop::into_inner(rt));
            },
        );
    }

    /// The task panics; its handle's waiter panics on wake. The failure still reaches the
    /// handle (and not the error hook).
    fn failure_is_delivered_despite_a_panicking_join_waiter(flavor) {
        hang_guard(
            "failing a task whose JoinHandle waker panics",
            move |phase| {
                phase.set("running the test body");
                let log = support::HookLog::new();
                let rt = ManuallyDrop::new(flavor.build(log.builder()));
                let (tx, rx) = oneshot::channel::<()>();
                let mut handle = rt.spawn(unit(async move {
                    rx.await.unwrap();
                    panic!("the task failed");
                }));
                let waker = Arc::new(PanickingWaker::default());
                assert!(poll_with_panicking_waker(&mut handle, &waker).is_pending());
                tx.send(()).unwrap();

                phase.set("driving the executor until the task(s) finished");
                let driven = drive_until(&rt, || handle.is_finished());
                assert_eq!(
                    driven,
                    Ok(()),
                    "the join waiter's panic escaped the executor"
                );
                match poll_quietly(&mut handle) {
                    Poll::Ready(Err(e)) => {
                        assert!(e.is_panic(), "{e}");
                        assert_eq!(e.panic_message(), Some("the task failed"));
                    }
                    other => panic!("the failure was not delivered: {other:?}"),
                }
                drop(handle);
                assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
                let m = rt.metrics();
                assert_eq!(
                    (m.spawned, m.completed, m.panicked, m.live),
                    (2, 1, 1, 0),
                    "{m:?}"
                );
                assert_adds_up(&m);
                phase.set("dropping the executor (shutdown)");
                drop(ManuallyDrop::into_inner(rt));
                assert_eq!(
                    log.len(),
                    0,
                    "the handle read the failure: the hook must not see it"
                );
            },
        );
    }

    /// Many completions in a row, each with a panicking waiter: every worker survives
    /// (on the pool, both workers get some of them) and every value is delivered.
    fn many_panicking_join_waiters(flavor) {
        hang_guard(
            "many tasks with panicking JoinHandle wakers",
            move |phase| {
                phase.set("running the test body");
                let rt = ManuallyDrop::new(flavor.rt());
                let waker = Arc::new(PanickingWaker::default());
                let mut senders = Vec::new();
                let mut handles = Vec::new();
                for i in 0..50u32 {
                    let (tx, rx) = oneshot::channel::<u32>();
                    let mut h = rt.spawn(async move { rx.await.unwrap() * 2 });
                    assert!(poll_with_panicking_waker(&mut h, &waker).is_pending());
                    senders.push((tx, i));
                    handles.push(h);
                }
                for (tx, i) in senders {
                    tx.send(i).unwrap();
                }
                phase.set("driving the executor until the task(s) finished");
                let driven = drive_until(&rt, || handles.iter().all(|h| h.is_finished()));
                assert_eq!(driven, Ok(()), "a join waiter's panic escaped the executor");
                assert_eq!(waker.wakes.load(SeqCst), 50);
                for (i, mut h) in handles.into_iter().enumerate() {
                    match poll_quietly(&mut h) {
                        Poll::Ready(Ok(v)) => assert_eq!(v, 2 * i as u32),
                        other => panic!("task {i}: {other:?}"),
                    }
                }
                // Both workers of the pool are still there.
                assert_both_workers_alive(&rt);
                let m = rt.metrics();
                assert_adds_up(&m);
                assert_eq!(m.live, 0, "{m:?}");
                phase.set("dropping the executor (shutdown)");
                drop(ManuallyDrop::into_inner(rt));
            },
        );
    }

    /// The group's join future is the waiter: its waker panics when the last member ends.
    fn group_join_waiter_that_panics_on_wake(flavor) {
        hang_guard("a group whose join waker panics", move |phase| {
            phase.set("running the test body");
            let rt = ManuallyDrop::new(flavor.rt());
            let group = rt.group();
            let (tx, rx) = oneshot::channel::<()>();
            let member = group.spawn(async move {
                rx.await.unwrap();
            });
            let mut join = Box::pin(group.join());
            let waker = Arc::new(PanickingWaker::default());
            assert!(poll_with_panicking_waker(&mut join, &waker).is_pending());
            tx.send(()).unwrap();

            phase.set("driving the executor until the task(s) finished");
            let driven = drive_until(&rt, || member.is_finished());
            assert_eq!(
                driven,
                Ok(()),
                "the group join waiter's panic escaped the executor"
            );
            let mut member = member;
            match poll_quietly(&mut member) {
                Poll::Ready(Ok(())) => {}
                other => panic!("the member's value was not delivered: {other:?}"),
            }
            match poll_quietly(&mut join) {
                Poll::Ready(Ok(())) => {}
                other => panic!("the group's join did not finish: {other:?}"),
            }
            assert_eq!(waker.wakes.load(SeqCst), 1);
            assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
            let m = rt.metrics();
            assert_eq!((m.spawned, m.completed, m.live), (2, 2, 0), "{m:?}");
            phase.set("dropping the executor (shutdown)");
            drop(ManuallyDrop::into_inner(rt));
        });
    }
}

//! Adversarial theme: a waker woken from a thread-local destructor.
//!
//! A plain std thread keeps a task's waker in a `thread_local!` whose destructor wakes it;
//! the thread exits, and the wake happens while that thread's thread-locals are being torn
//! down, when `LocalKey::with` panics for keys already destroyed. The task must still be
//! woken and complete. When the executor is already gone, the wake must be a no-op.
//!
//! On Linux, thread-local destructors run in the reverse order of their registration, so a
//! key first used *after* the waker was stored is destroyed *before* the waker's destructor
//! runs. `thread_already_used_warden` exploits that: the thread first stores the waker, then
//! wakes another task (which makes the executor touch its own thread-locals on this thread,
//! if it has any), then exits.
//!
//! A panic inside a thread-local destructor aborts the whole process, so every test here
//! runs its body in a child process (this test binary, started again with
//! `--exact <test> --nocapture` and `WARDEN_ADVERSARIAL_CHILD=<test>`) and asserts on the
//! child's exit status and output.

use crate::support;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::child::{in_child, test_name};
use support::{DropCounter, Flavor, Rt, hang_guard};
use warden::{Builder, CancelReason};

/// Wakes its waker when dropped (after setting `fired`), as the thread-local's value.
struct WakeOnDrop {
    waker: Waker,
    fired: Arc<AtomicBool>,
}

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.fired.store(true, SeqCst);
        self.waker.wake_by_ref();
    }
}

thread_local! {
    static HELD: RefCell<Option<WakeOnDrop>> = const { RefCell::new(None) };
}

/// Pending until `fired` is set; on its first poll, sends its waker to `waker_tx`.
struct WaitForFlag {
    fired: Arc<AtomicBool>,
    waker_tx: Option<mpsc::Sender<Waker>>,
    polls: Arc<AtomicUsize>,
}

impl Future for WaitForFlag {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        self.polls.fetch_add(1, SeqCst);
        if self.fired.load(SeqCst) {
            return Poll::Ready("woken from a thread-local destructor");
        }
        if let Some(tx) = self.waker_tx.take() {
            tx.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }
}

/// Spawns a `WaitForFlag` task and returns its handle, waker, flag and poll count, once
/// its first poll has *returned* (ensured by `settle`).
fn spawn_waiter(
    rt: &Rt,
) -> (
    warden::JoinHandle<&'static str>,
    Waker,
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
) {
    let fired = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let (waker_tx, waker_rx) = mpsc::channel();
    let handle = rt.spawn(WaitForFlag {
        fired: fired.clone(),
        waker_tx: Some(waker_tx),
        polls: polls.clone(),
    });
    if let Rt::Local(ex) = rt {
        ex.run_until_idle();
    }
    let waker = waker_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the task was polled");
    settle(rt);
    (handle, waker, fired, polls)
}

/// Returns once every poll that started before the call has returned: on the local
/// executor, by running it until idle; on a one-worker pool, by running one more task on
/// that worker after them.
fn settle(rt: &Rt) {
    match rt {
        Rt::Local(ex) => {
            ex.run_until_idle();
        }
        Rt::Pool(_) => rt.block_on(rt.spawn(async {})).unwrap(),
    }
}

/// Local executor, or a pool with ONE worker (so that `settle` works).
fn build(flavor: Flavor) -> Rt {
    match flavor {
        Flavor::Local => Rt::Local(Builder::new().build_local()),
        Flavor::Pool => Rt::Pool(Builder::new().worker_threads(1).build()),
    }
}

/// Stores `waker` in the exiting thread's `HELD`, then (optionally) wakes `other_waker`
/// first-use style, then exits, and returns once the thread is gone.
fn wake_from_tls_destructor(waker: Waker, fired: Arc<AtomicBool>, other_waker: Option<Waker>) {
    std::thread::spawn(move || {
        HELD.with(|held| *held.borrow_mut() = Some(WakeOnDrop { waker, fired }));
        if let Some(other) = other_waker {
            other.wake();
        }
    })
    .join()
    .expect("the waking thread exited cleanly");
}

/// Drives the executor until `handle` finishes and returns its output.
fn await_handle(rt: &Rt, handle: warden::JoinHandle<&'static str>) -> &'static str {
    rt.block_on(handle).expect("the task completed")
}

rt_test! {
    /// A fresh thread whose only contact with the executor is the wake in its thread-local
    /// destructor.
    fn waker_in_tls_destructor_wakes_the_task(flavor) {
        let test = test_name(module_path!(), "waker_in_tls_destructor_wakes_the_task");
        in_child(&test, || {
            hang_guard("a wake from a thread-local destructor", move || {
                let rt = build(flavor);
                let (handle, waker, fired, polls) = spawn_waiter(&rt);
                wake_from_tls_destructor(waker, fired.clone(), None);
                assert!(
                    fired.load(SeqCst),
                    "the thread-local destructor did not run"
                );
                assert_eq!(
                    await_handle(&rt, handle),
                    "woken from a thread-local destructor"
                );
                assert_eq!(polls.load(SeqCst), 2);
                let m = rt.metrics();
                assert_eq!((m.spawned, m.live), (m.completed, 0), "{m:?}");
            });
        });
    }

    /// The thread stores the waker first, then wakes another task of the same executor
    /// (so whatever thread-locals the executor uses on a waking thread are created after
    /// the waker's, and destroyed before it), then exits.
    fn thread_already_used_warden(flavor) {
        let test = test_name(module_path!(), "thread_already_used_warden");
        in_child(&test, || {
            hang_guard(
                "a wake from a thread-local destructor, late in teardown",
                move || {
                    let rt = build(flavor);
                    let (other, other_waker, _other_fired, other_polls) = spawn_waiter(&rt);
                    let (handle, waker, fired, polls) = spawn_waiter(&rt);
                    wake_from_tls_destructor(waker, fired.clone(), Some(other_waker));
                    assert!(
                        fired.load(SeqCst),
                        "the thread-local destructor did not run"
                    );
                    assert_eq!(
                        await_handle(&rt, handle),
                        "woken from a thread-local destructor"
                    );
                    assert_eq!(polls.load(SeqCst), 2);
                    settle(&rt);
                    assert_eq!(other_polls.load(SeqCst), 2, "the ordinary wake was lost");
                    other.cancel();
                    let err = rt.block_on(other).unwrap_err();
                    assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
                },
            );
        });
    }

    /// The executor is dropped (the task cancelled) before the thread exits: the wake from
    /// the destructor finds nothing to do, and nothing crashes.
    fn tls_destructor_wake_after_executor_is_gone(flavor) {
        let test = test_name(module_path!(), "tls_destructor_wake_after_executor_is_gone");
        in_child(&test, || {
            hang_guard(
                "a wake from a thread-local destructor after shutdown",
                move || {
                    let rt = build(flavor);
                    let drops = DropCounter::new();
                    let (handle, waker, fired, polls) = spawn_waiter(&rt);
                    let token = drops.token();
                    let parked = rt.spawn(async move {
                        let _token = token;
                        std::future::pending::<()>().await
                    });
                    settle(&rt);
                    let (go_tx, go_rx) = mpsc::channel::<()>();
                    let (stored_tx, stored_rx) = mpsc::channel::<()>();
                    let fired_in_thread = fired.clone();
                    let thread = std::thread::spawn(move || {
                        HELD.with(|held| {
                            *held.borrow_mut() = Some(WakeOnDrop {
                                waker,
                                fired: fired_in_thread,
                            })
                        });
                        stored_tx.send(()).unwrap();
                        go_rx.recv().unwrap();
                    });
                    stored_rx.recv().unwrap();
                    drop(rt);
                    assert_eq!(drops.count(), 1, "shutdown did not drop the pending future");
                    let polls_at_shutdown = polls.load(SeqCst);
                    go_tx.send(()).unwrap();
                    thread.join().expect("the waking thread exited cleanly");
                    assert!(fired.load(SeqCst));
                    assert_eq!(
                        polls.load(SeqCst),
                        polls_at_shutdown,
                        "polled after shutdown"
                    );
                    assert!(handle.is_finished() && parked.is_finished());
                    let mut handle = handle;
                    let waker = futures::task::noop_waker();
                    match Pin::new(&mut handle).poll(&mut Context::from_waker(&waker)) {
                        Poll::Ready(Err(e)) => {
                            assert_eq!(e.cancel_reason(), Some(&CancelReason::Shutdown))
                        }
                        other => panic!("expected a shutdown cancellation, got {other:?}"),
                    }
                },
            );
        });
    }

    /// Many threads at once, each waking from its destructor a task that is also woken
    /// normally by the others (the tasks are shared round-robin).
    fn many_threads_wake_from_tls_destructors(flavor) {
        let test = test_name(module_path!(), "many_threads_wake_from_tls_destructors");
        in_child(&test, || {
            hang_guard("many wakes from thread-local destructors", move || {
                let rt = build(flavor);
                let waiters: Vec<_> = (0..8).map(|_| spawn_waiter(&rt)).collect();
                let wakers: Arc<Mutex<Vec<Waker>>> =
                    Arc::new(Mutex::new(waiters.iter().map(|w| w.1.clone()).collect()));
                let threads: Vec<_> = waiters
                    .iter()
                    .enumerate()
                    .map(|(i, (_, waker, fired, _))| {
                        let (waker, fired) = (waker.clone(), fired.clone());
                        let wakers = wakers.clone();
                        std::thread::spawn(move || {
                            HELD.with(|h| *h.borrow_mut() = Some(WakeOnDrop { waker, fired }));
                            let other = wakers.lock().unwrap()[(i + 1) % 8].clone();
                            other.wake();
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("a waking thread exited cleanly");
                }
                for (handle, _, fired, _) in waiters {
                    assert!(fired.load(SeqCst));
                    assert_eq!(
                        await_handle(&rt, handle),
                        "woken from a thread-local destructor"
                    );
                }
                let m = rt.metrics();
                assert_eq!(m.live, 0, "{m:?}");
            });
        });
    }
}

//! Cancelling a task through its `JoinHandle` (`cancel`, `cancel_with`), on both executors:
//! the future is never polled again, its destructor runs promptly, the handle reports the
//! reason, and a destructor that panics becomes the task's failure. (The failure read
//! through the handle or given to the error hook, and the other ways a cancelled task's
//! destructor can panic, are in `tests/adversarial/panic_in_drop.rs`.)

mod support;

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use support::{DropCounter, PollCounter, assert_adds_up, drive_until, no_hang};
use warden::{CancelReason, JoinHandle};

/// Panics in its destructor.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// Stays pending forever after flagging that it was polled.
async fn pending_after_start(started: Arc<AtomicBool>) {
    started.store(true, SeqCst);
    pending::<()>().await
}

rt_test! {
    fn cancel_pending_task_stops_polls_and_drops_future(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let (counter, polls) = PollCounter::pending();
            let token = drops.token();
            let handle = rt.spawn(async move {
                let _token = token;
                counter.await
            });
            // Let it be polled (and go idle: PollCounter never wakes itself).
            drive_until(&rt, || polls.load(SeqCst) >= 1);
            assert_eq!(drops.count(), 0, "dropped before it was cancelled");

            handle.cancel();
            let polls_at_cancel = polls.load(SeqCst);

            let err = rt.block_on(handle).expect_err("a cancelled task has no value");
            assert!(err.is_cancelled(), "{err}");
            assert!(!err.is_panic() && !err.is_error(), "{err}");
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
            assert_eq!(err.panic_message(), None);
            assert_eq!(drops.count(), 1, "the future's destructor must run exactly once");
            assert_eq!(
                polls.load(SeqCst),
                polls_at_cancel,
                "the future was polled after cancel() returned"
            );
            let m = rt.metrics();
            assert_eq!((m.spawned, m.cancelled, m.live), (1, 1, 0), "{m:?}");
            assert_adds_up(&m);
        });
    }

    fn cancel_before_first_poll_never_polls(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let (counter, polls) = PollCounter::pending();
            let token = drops.token();
            let handle = rt.spawn(async move {
                let _token = token;
                counter.await
            });
            handle.cancel();
            let polls_at_cancel = polls.load(SeqCst);
            if flavor == support::Flavor::Local {
                // Nothing runs a local executor's tasks until it is driven.
                assert_eq!(polls_at_cancel, 0);
            }
            let err = rt.block_on(handle).unwrap_err();
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
            assert_eq!(polls.load(SeqCst), polls_at_cancel);
            assert_eq!(drops.count(), 1);
        });
    }

    fn cancel_with_gives_explicit_reason(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let started = Arc::new(AtomicBool::new(false));
            let handle = rt.spawn(pending_after_start(started.clone()));
            drive_until(&rt, || started.load(SeqCst));
            handle.cancel_with("why");
            let err = rt.block_on(handle).unwrap_err();
            assert!(err.is_cancelled());
            assert_eq!(
                err.cancel_reason(),
                Some(&CancelReason::Explicit(Some("why".to_owned())))
            );
            assert!(err.to_string().contains("why"), "Display should carry the reason: {err}");
        });
    }

    fn cancel_wakes_task_waiting_forever(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let started = Arc::new(AtomicBool::new(false));
            let token = drops.token();
            let handle = rt.spawn({
                let started = started.clone();
                async move {
                    let _token = token;
                    started.store(true, SeqCst);
                    // Nobody holds a waker for this: only the cancel can wake it.
                    pending::<()>().await
                }
            });
            drive_until(&rt, || started.load(SeqCst));
            handle.cancel();
            // Without awaiting the handle: the drop must happen by itself.
            drive_until(&rt, || drops.count() == 1 && handle.is_finished());
            let err = rt.block_on(handle).unwrap_err();
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
            assert_eq!(drops.count(), 1);
        });
    }

    fn cancel_of_finished_task_does_nothing(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let token = drops.token();
            let handle = rt.spawn(async move {
                let _token = token;
                7
            });
            drive_until(&rt, || handle.is_finished());
            handle.cancel();
            handle.cancel_with("too late");
            assert_eq!(rt.block_on(handle).expect("the value survives a late cancel"), 7);
            assert_eq!(drops.count(), 1);
            let m = rt.metrics();
            assert_eq!((m.completed, m.cancelled, m.live), (1, 0, 0), "{m:?}");
            assert_adds_up(&m);
        });
    }

    fn first_reason_wins(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let started = Arc::new(AtomicBool::new(false));
            let handle = rt.spawn(pending_after_start(started.clone()));
            drive_until(&rt, || started.load(SeqCst));
            handle.cancel_with("first");
            handle.cancel_with("second");
            handle.cancel();
            let err = rt.block_on(handle).unwrap_err();
            assert_eq!(
                err.cancel_reason(),
                Some(&CancelReason::Explicit(Some("first".to_owned())))
            );
        });
    }

    fn explicit_reason_beats_a_later_shutdown(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let handle = rt.spawn(pending::<()>());
            handle.cancel_with("first");
            rt.shutdown();
            assert!(handle.is_finished(), "shutdown must resolve every handle");
            let err = futures::executor::block_on(handle).unwrap_err();
            assert_eq!(
                err.cancel_reason(),
                Some(&CancelReason::Explicit(Some("first".to_owned())))
            );
        });
    }

    fn cancel_from_another_thread(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let started = Arc::new(AtomicBool::new(false));
            let token = drops.token();
            let handle = rt.spawn({
                let started = started.clone();
                async move {
                    let _token = token;
                    started.store(true, SeqCst);
                    pending::<()>().await
                }
            });
            drive_until(&rt, || started.load(SeqCst));

            // The other thread cancels, then awaits the handle on a foreign executor and
            // hands the result back. Meanwhile this thread parks in block_on, so the
            // cancel's wake must reach it from outside.
            let (result_tx, result_rx) = oneshot::channel();
            let canceller = std::thread::spawn(move || {
                handle.cancel_with("from afar");
                let result = futures::executor::block_on(handle);
                let _ = result_tx.send(result);
            });
            let result = rt.block_on(result_rx).expect("the canceller sent a result");
            canceller.join().expect("cancel() must not panic");
            let err = result.unwrap_err();
            assert_eq!(
                err.cancel_reason(),
                Some(&CancelReason::Explicit(Some("from afar".to_owned())))
            );
            assert_eq!(drops.count(), 1);
        });
    }

    fn cancel_during_own_poll_stops_at_next_poll(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let slot: Arc<Mutex<Option<JoinHandle<()>>>> = Arc::new(Mutex::new(None));
            let polled_after_cancel = Arc::new(AtomicBool::new(false));
            let (go_tx, go_rx) = oneshot::channel::<()>();
            let (cancelled_tx, cancelled_rx) = oneshot::channel::<()>();
            let handle = rt.spawn({
                let slot = slot.clone();
                let polled_after_cancel = polled_after_cancel.clone();
                async move {
                    go_rx.await.unwrap();
                    slot.lock().unwrap().as_ref().expect("handle stored").cancel();
                    cancelled_tx.send(()).unwrap();
                    // Yielding wakes the task; the next step must drop it, not poll it.
                    warden::yield_now().await;
                    polled_after_cancel.store(true, SeqCst);
                }
            });
            *slot.lock().unwrap() = Some(handle);
            go_tx.send(()).unwrap();
            rt.block_on(cancelled_rx).unwrap();
            let handle = slot.lock().unwrap().take().unwrap();
            let err = rt.block_on(handle).unwrap_err();
            assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
            assert!(
                !polled_after_cancel.load(SeqCst),
                "the task ran past its own cancellation"
            );
        });
    }

    fn destructor_panic_never_reaches_a_canceller_task(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let started = Arc::new(AtomicBool::new(false));
            let victim = rt.spawn({
                let started = started.clone();
                async move {
                    let _bomb = PanicOnDrop("victim drop");
                    started.store(true, SeqCst);
                    pending::<()>().await
                }
            });
            drive_until(&rt, || started.load(SeqCst));
            let canceller = rt.spawn(async move {
                victim.cancel();
                let err = victim.await.unwrap_err();
                warden::yield_now().await;
                err
            });
            let err = rt
                .block_on(canceller)
                .expect("the canceller itself must not fail");
            assert!(err.is_panic(), "{err}");
            assert_eq!(err.panic_message(), Some("victim drop"));
            let m = rt.metrics();
            assert_eq!((m.completed, m.panicked, m.cancelled), (1, 1, 0), "{m:?}");
        });
    }

    fn metrics_count_cancelled(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let pending_handles: Vec<_> = (0..3).map(|_| rt.spawn(pending::<()>())).collect();
            let done = rt.spawn(async { 1 });
            assert_eq!(rt.block_on(done).unwrap(), 1);
            for h in &pending_handles {
                h.cancel();
            }
            let cancelled_seen = rt.block_on(async {
                let mut n = 0;
                for h in pending_handles {
                    if h.await.unwrap_err().is_cancelled() {
                        n += 1;
                    }
                }
                n
            });
            assert_eq!(cancelled_seen, 3);
            let m = rt.metrics();
            assert_eq!(
                (m.spawned, m.completed, m.cancelled, m.panicked, m.live),
                (4, 1, 3, 0, 0),
                "{m:?}"
            );
            assert_adds_up(&m);
        });
    }

    fn cancel_many_while_they_run(flavor) {
        no_hang(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let polls = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    let token = drops.token();
                    let polls = polls.clone();
                    rt.spawn(async move {
                        let _token = token;
                        loop {
                            polls.fetch_add(1, SeqCst);
                            warden::yield_now().await;
                        }
                    })
                })
                .collect();
            drive_until(&rt, || polls.load(SeqCst) >= 100);
            for h in &handles {
                h.cancel();
            }
            let all_cancelled = rt.block_on(async {
                let mut ok = true;
                for h in handles {
                    ok &= h.await.unwrap_err().cancel_reason() == Some(&CancelReason::Explicit(None));
                }
                ok
            });
            assert!(all_cancelled);
            assert_eq!(drops.count(), 50);
            let m = rt.metrics();
            assert_eq!((m.cancelled, m.live), (50, 0), "{m:?}");
        });
    }
}

//! Time: `sleep` and `timeout` on both executors, timer order, and timers that clean up.

mod support;

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::task::ArcWake;
use support::{DropCounter, Flavor, Trace, bounded, payload_text, wait_until};
use warden::{Elapsed, Sleep, TaskGroup};

/// A waker that records, in order, which sleep the timer woke, then wakes the task.
struct RecordingWaker {
    index: usize,
    trace: Trace,
    inner: Waker,
}

impl ArcWake for RecordingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.trace.push(arc_self.index.to_string());
        arc_self.inner.wake_by_ref();
    }
}

/// A [`Sleep`] whose timer wakes a [`RecordingWaker`].
struct RecordedSleep {
    sleep: Sleep,
    index: usize,
    trace: Trace,
}

impl Future for RecordedSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let waker = futures::task::waker(Arc::new(RecordingWaker {
            index: self.index,
            trace: self.trace.clone(),
            inner: cx.waker().clone(),
        }));
        let mut cx = Context::from_waker(&waker);
        Pin::new(&mut self.sleep).poll(&mut cx)
    }
}

rt_test! {
    fn sleep_lasts_at_least_its_duration(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            for ms in [1, 10, 25] {
                let duration = Duration::from_millis(ms);
                let start = Instant::now();
                rt.block_on(warden::sleep(duration));
                let slept = start.elapsed();
                assert!(slept >= duration, "sleep({duration:?}) in block_on took {slept:?}");
                let slept = rt
                    .block_on(rt.spawn(async move {
                        let start = Instant::now();
                        warden::sleep(duration).await;
                        start.elapsed()
                    }))
                    .unwrap();
                assert!(slept >= duration, "sleep({duration:?}) in a task took {slept:?}");
            }
            let deadline = Instant::now() + Duration::from_millis(15);
            let until = warden::sleep_until(deadline);
            assert_eq!(until.deadline(), deadline);
            rt.block_on(until);
            assert!(Instant::now() >= deadline);
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn concurrent_sleeps_wake_in_deadline_order(flavor) {
        bounded(move || {
            const N: usize = 40;
            let rt = flavor.rt();
            let woken = Trace::new();
            let finished = Trace::new();
            let base = Instant::now() + Duration::from_millis(150);
            // Spawned out of order; the deadline is what decides.
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let index = (i * 17) % N;
                    let sleep = RecordedSleep {
                        sleep: warden::sleep_until(base + Duration::from_millis(2 * index as u64)),
                        index,
                        trace: woken.clone(),
                    };
                    let finished = finished.clone();
                    rt.spawn(async move {
                        sleep.await;
                        finished.push(index.to_string());
                    })
                })
                .collect();
            rt.block_on(async {
                wait_until("every sleep to register", || rt.timer_count() == N).await;
                for handle in handles {
                    handle.await.unwrap();
                }
            });
            assert!(Instant::now() >= base + Duration::from_millis(2 * (N as u64 - 1)));
            let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
            assert_eq!(woken.events(), expected, "the timers fired out of deadline order");
            let mut done = finished.events();
            if flavor == Flavor::Local {
                // One thread, FIFO queue: the tasks also finish in deadline order.
                assert_eq!(done, expected);
            }
            done.sort_by_key(|s| s.parse::<usize>().unwrap());
            assert_eq!(done, expected);
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn timeout_elapses_and_drops_the_inner_future(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let token = drops.token();
            let limit = Duration::from_millis(20);
            let start = Instant::now();
            let (result, drops_at_return) = rt.block_on(async {
                // Pinned here, so the `Timeout` itself is still alive when it returns: the
                // inner future must have been dropped by then, not when the `Timeout` is.
                let mut timed = std::pin::pin!(warden::timeout(limit, async move {
                    let _token = token;
                    pending::<()>().await
                }));
                let result = timed.as_mut().await;
                let count = drops.count();
                (result, count)
            });
            assert!(start.elapsed() >= limit, "timed out early");
            let elapsed: Elapsed = result.unwrap_err();
            assert_eq!(elapsed.duration(), limit);
            assert_eq!(drops_at_return, 1, "the inner future outlived the timeout");
            assert!(elapsed.to_string().contains("20ms"), "{elapsed}");
            let _: &(dyn std::error::Error + Send + Sync) = &elapsed;
            assert_eq!(rt.timer_count(), 0);
            // Inside a task too.
            let token = drops.token();
            let counter = drops.clone();
            let in_task = rt.spawn(async move {
                let mut timed = std::pin::pin!(warden::timeout(
                    Duration::from_millis(5),
                    async move {
                        let _token = token;
                        warden::sleep(Duration::from_secs(60)).await;
                    }
                ));
                let result = timed.as_mut().await;
                (result, counter.count())
            });
            let (result, drops_at_return) = rt.block_on(in_task).unwrap();
            assert!(result.is_err());
            assert_eq!(drops_at_return, 2);
            assert_eq!(rt.timer_count(), 0, "the inner sleep's timer was left behind");
        });
    }

    fn timeout_of_a_fast_future_is_ok(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let token = drops.token();
            let values = rt.block_on(async {
                let ready = warden::timeout(Duration::from_secs(60), async { 5 }).await;
                let quick = warden::timeout(Duration::from_secs(60), async move {
                    let _token = token;
                    warden::yield_now().await;
                    warden::sleep(Duration::from_millis(1)).await;
                    6
                })
                .await;
                (ready, quick)
            });
            assert_eq!(values, (Ok(5), Ok(6)));
            assert_eq!(drops.count(), 1);
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn early_finishing_timeouts_leave_no_timers(flavor) {
        bounded(move || {
            // A million in release builds (`cargo test --release --test time`), as the
            // issue asks; a tenth of that keeps the debug suite quick.
            let n: usize = if cfg!(debug_assertions) { 100_000 } else { 1_000_000 };
            let rt = flavor.rt();
            rt.block_on(async {
                // Some timeouts that stay pending: their timers are registered.
                let mut held: Vec<_> = (0..100)
                    .map(|_| Box::pin(warden::timeout(Duration::from_secs(60), pending::<()>())))
                    .collect();
                std::future::poll_fn(|cx| {
                    for t in &mut held {
                        assert!(t.as_mut().poll(cx).is_pending());
                    }
                    Poll::Ready(())
                })
                .await;
                assert_eq!(rt.timer_count(), 100, "a pending timeout registers its timer");
                for i in 0..n {
                    let fast = warden::timeout(Duration::from_secs(60), warden::yield_now());
                    let result = fast.await;
                    assert!(result.is_ok());
                    if i % 10_000 == 0 {
                        assert_eq!(rt.timer_count(), 100, "after {i} early finishes");
                    }
                }
                assert_eq!(rt.timer_count(), 100);
                drop(held);
                assert_eq!(rt.timer_count(), 0, "dropped timeouts left their timers behind");
            });
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn many_concurrent_early_finishing_timeouts_in_tasks(flavor) {
        bounded(move || {
            const N: usize = 2_000;
            let rt = flavor.rt();
            let handles: Vec<_> = (0..N)
                .map(|_| {
                    rt.spawn(async {
                        let fast = warden::timeout(Duration::from_secs(60), async {
                            warden::yield_now().await;
                            warden::yield_now().await;
                            1
                        });
                        fast.await.unwrap()
                    })
                })
                .collect();
            let total = rt.block_on(async {
                let mut total = 0;
                for handle in handles {
                    total += handle.await.unwrap();
                }
                total
            });
            assert_eq!(total, N);
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn a_cancelled_sleeping_task_removes_its_timer(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let token = drops.token();
            let sleeper = rt.spawn(async move {
                let _token = token;
                warden::sleep(Duration::from_secs(60)).await;
            });
            rt.block_on(wait_until("the sleep to register", || rt.timer_count() == 1));
            sleeper.cancel();
            let err = rt.block_on(sleeper).unwrap_err();
            assert!(err.is_cancelled());
            assert_eq!(drops.count(), 1);
            assert_eq!(rt.timer_count(), 0, "the cancelled task's timer was left behind");
            // Group members sleeping in a timeout, cancelled with their group.
            rt.block_on(async {
                let group = TaskGroup::new();
                for _ in 0..10 {
                    group
                        .spawn(warden::timeout(Duration::from_secs(60), pending::<()>()))
                        .detach();
                }
                group.spawn(warden::sleep(Duration::from_secs(60))).detach();
                wait_until("the sleeps to register", || rt.timer_count() == 11).await;
                group.cancel();
                let err = group.join().await.unwrap_err();
                assert_eq!(err.cancelled(), 11);
            });
            assert_eq!(rt.timer_count(), 0);
            // And tasks dropped at shutdown.
            rt.spawn(warden::sleep(Duration::from_secs(60))).detach();
            rt.block_on(wait_until("the sleep to register", || rt.timer_count() == 1));
            rt.shutdown();
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn huge_durations_do_not_overflow(flavor) {
        // `timeout(Duration::MAX, ..)` is the usual way to say "no limit"; a valid
        // `Duration` must not make `sleep` or `timeout` panic with an `Instant` overflow.
        bounded(move || {
            let rt = flavor.rt();
            let fast = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(async { warden::timeout(Duration::MAX, async { 5 }).await })
            }));
            assert_eq!(fast.ok(), Some(Ok(5)), "timeout(Duration::MAX, ..) panicked");
            let sleeper = rt.spawn(async {
                warden::sleep(Duration::MAX).await;
            });
            rt.block_on(wait_until("the sleep to register", || {
                sleeper.is_finished() || rt.timer_count() == 1
            }));
            sleeper.cancel();
            let err = rt.block_on(sleeper).unwrap_err();
            assert!(err.is_cancelled(), "sleep(Duration::MAX) failed: {err}");
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn sleep_outside_any_executor_panics(flavor) {
        bounded(move || {
            // An executor exists, but this thread is not running it.
            let _rt = flavor.rt();
            let payload = std::panic::catch_unwind(|| {
                futures::executor::block_on(warden::sleep(Duration::from_millis(10)));
            })
            .expect_err("sleep polled outside an executor");
            let message = payload_text(&*payload);
            assert!(message.contains("no warden executor is running"), "{message}");
            assert!(message.contains("sleep"), "{message}");
            let payload = std::panic::catch_unwind(|| {
                futures::executor::block_on(warden::timeout(
                    Duration::from_millis(10),
                    pending::<()>(),
                ))
            })
            .expect_err("timeout polled outside an executor");
            let message = payload_text(&*payload);
            assert!(message.contains("no warden executor is running"), "{message}");
        });
    }
}

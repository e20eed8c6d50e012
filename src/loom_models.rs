//! Loom models of warden's races. Each test name contains `loom`; run them with
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release --lib loom
//! ```
//!
//! Loom runs each model under every interleaving of its threads (up to the preemption
//! bound), with the atomics, locks, cells and parks of `src/loom.rs`. The model of the
//! pool's parking protocol lives in `pool.rs`, next to the code it checks.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::task::{Poll, Waker};

use loom::thread;

use crate::hook::{ErrorSink, HookFn};
use crate::loom::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::task::{
    self, OwnerConfig, Placement, Schedule, SpawnSpec, TaskOwner, TaskRef, TimerKey,
};
use crate::time::Timers;
use crate::{Backtraces, Builder, CancelReason, UnhandledPolicy};
use std::time::{Duration, Instant};

/// A scheduler with one plain queue: any thread may pop and run.
struct TestSched {
    owner: TaskOwner,
    queue: Mutex<VecDeque<TaskRef>>,
    /// Unused by the models (no task here waits on time), but a scheduler has timers.
    timers: Timers,
}

impl Schedule for TestSched {
    fn schedule(&self, task: TaskRef) {
        self.queue.lock().unwrap().push_back(task);
    }

    fn owner(&self) -> &TaskOwner {
        &self.owner
    }

    fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        self.timers.insert(deadline, waker)
    }

    fn remove_timer(&self, key: TimerKey) {
        self.timers.remove(key)
    }

    fn deadline_after(&self, duration: Duration) -> Instant {
        self.timers.deadline_after(duration)
    }
}

fn test_sched(hook: Option<Arc<HookFn>>) -> Arc<TestSched> {
    test_sched_with_stalls(hook, Drops::default())
}

/// [`test_sched`] whose stall hook counts its reports in `stalls`.
fn test_sched_with_stalls(hook: Option<Arc<HookFn>>, stalls: Drops) -> Arc<TestSched> {
    let config = OwnerConfig {
        sink: Arc::new(ErrorSink::new(hook, UnhandledPolicy::Continue)),
        backtraces: Backtraces::Off,
        on_exit: None,
        trace: None,
        on_stall: Arc::new(move |_| drop(stalls.token())),
        watched: false,
        poll_timing: false,
    };
    Arc::new(TestSched {
        // Two shards: tasks land in both, by id.
        owner: TaskOwner::new(config, Placement::Shards(2)),
        queue: Mutex::new(VecDeque::new()),
        timers: Timers::new(),
    })
}

/// Runs queued tasks until the queue is empty; returns how many ran.
fn run_ready(sched: &TestSched) -> usize {
    let mut ran = 0;
    loop {
        let task = sched.queue.lock().unwrap().pop_front();
        match task {
            Some(task) => {
                if let Some(again) = task.run_unstamped() {
                    sched.schedule(again);
                }
                ran += 1;
            }
            None => return ran,
        }
    }
}

/// Runs tasks until `done()`, yielding to the other model threads when idle.
fn run_until(sched: &TestSched, done: impl Fn() -> bool) {
    while !done() {
        if run_ready(sched) == 0 {
            thread::yield_now();
        }
    }
}

/// Counts drops, with a std atomic (it is not part of any protocol under test).
#[derive(Clone, Default)]
struct Drops(std::sync::Arc<StdAtomicUsize>);

struct Token(Drops);

impl Drop for Token {
    fn drop(&mut self) {
        (self.0).0.fetch_add(1, SeqCst);
    }
}

impl Drops {
    fn token(&self) -> Token {
        Token(self.clone())
    }
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Waits for a waker to appear in `slot`, then takes it.
fn take_waker(slot: &Mutex<Option<Waker>>) -> Waker {
    loop {
        if let Some(waker) = slot.lock().unwrap().take() {
            return waker;
        }
        thread::yield_now();
    }
}

/// A detached task's last waker, dropped (or woken by value, with `wake`) on another thread
/// while the task's poll may still be running: the task is judged on the state word the
/// deciding operation returned, so a dropped waker frees it exactly once, reported once,
/// whichever comes last of the drop and the poll's end; a waker woken by value leaves it
/// queued, never reported, and it finishes.
fn last_waker_vs_poll_end(wake: bool) {
    loom::model(move || {
        let stalls = Drops::default();
        let sched = test_sched_with_stalls(None, stalls.clone());
        let drops = Drops::default();
        let finished = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let future = {
            let (slot, finished, token) = (slot.clone(), finished.clone(), drops.token());
            let mut polled = false;
            poll_fn(move |cx| {
                let _token = &token;
                if polled {
                    finished.store(true, Ordering::SeqCst);
                    return Poll::Ready(());
                }
                polled = true;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            })
        };
        task::spawn(future, task::plain, SpawnSpec::new(None), sched.clone()).detach();
        let other = {
            let slot = slot.clone();
            thread::spawn(move || {
                let waker = take_waker(&slot);
                if wake {
                    waker.wake();
                } else {
                    drop(waker);
                }
            })
        };
        run_until(&sched, || {
            if wake {
                finished.load(Ordering::SeqCst)
            } else {
                drops.count() == 1
            }
        });
        other.join().unwrap();
        run_ready(&sched);
        let metrics = sched.owner.metrics.snapshot();
        assert_eq!(drops.count(), 1);
        if wake {
            assert_eq!((stalls.count(), metrics.completed), (0, 1));
        } else {
            assert_eq!((stalls.count(), metrics.cancelled), (1, 1));
        }
    });
}

#[test]
fn loom_last_waker_dropped_vs_poll_end() {
    last_waker_vs_poll_end(false);
}

#[test]
fn loom_last_waker_woken_by_value_vs_poll_end() {
    last_waker_vs_poll_end(true);
}

/// Wake vs poll, with two pollers: a task is never polled by two threads at once, and a
/// wake that lands during a poll re-queues it exactly once.
#[test]
fn loom_wake_vs_poll() {
    loom::model(|| {
        let sched = test_sched(None);
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let in_poll = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let future = {
            let (slot, in_poll, polls) = (slot.clone(), in_poll.clone(), polls.clone());
            poll_fn(move |cx| {
                assert!(!in_poll.swap(true, Ordering::SeqCst), "two polls at once");
                let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                }
                in_poll.store(false, Ordering::SeqCst);
                if n >= 2 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        };
        let handle = task::spawn(future, task::plain, SpawnSpec::new(None), sched.clone());
        let waker = thread::spawn(move || {
            let waker = take_waker(&slot);
            waker.wake_by_ref();
            waker.wake();
        });
        let poller = {
            let sched = sched.clone();
            thread::spawn(move || {
                run_ready(&sched);
            })
        };
        run_until(&sched, || handle.is_finished());
        waker.join().unwrap();
        poller.join().unwrap();
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        assert!(sched.queue.lock().unwrap().is_empty());
    });
}

/// Wake vs completion: a wake racing the task's last poll does nothing harmful, and once
/// the handle and waker are gone the task is freed (the scheduler's count drops to one).
#[test]
fn loom_wake_vs_completion() {
    loom::model(|| {
        let sched = test_sched(None);
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let future_drops = Drops::default();
        let output_drops = Drops::default();
        let future = {
            let slot = slot.clone();
            let token = future_drops.token();
            let output = output_drops.clone();
            poll_fn(move |cx| {
                let _ = &token;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Ready(output.token())
            })
        };
        let handle = task::spawn(future, task::plain, SpawnSpec::new(None), sched.clone());
        let waker = thread::spawn(move || take_waker(&slot).wake());
        run_until(&sched, || handle.is_finished());
        drop(handle);
        waker.join().unwrap();
        run_ready(&sched);
        assert_eq!(future_drops.count(), 1);
        assert_eq!(output_drops.count(), 1);
        assert_eq!(
            Arc::strong_count(&sched),
            1,
            "a task outlived its handle and wakers"
        );
    });
}

/// Group cancel vs poll: the member's future is dropped exactly once, the handle gets
/// exactly one outcome, and the member is never polled again once cancelled. (Its only
/// wake-up is the cancel's, so a second poll would be a poll after the cancel; a poll that
/// was already under way when `cancel` returned may finish, which is why the count is
/// "at most one".)
#[test]
fn loom_group_cancel_vs_poll() {
    loom::model(|| {
        let ex = Builder::new().backtraces(Backtraces::Off).build_local();
        let group = ex.group();
        let drops = Drops::default();
        let polls = Arc::new(AtomicUsize::new(0));
        let future = {
            let token = drops.token();
            let polls = polls.clone();
            poll_fn(move |_cx| {
                let _ = &token;
                polls.fetch_add(1, Ordering::SeqCst);
                Poll::<()>::Pending
            })
        };
        let handle = group.spawn(future);
        let canceller = thread::spawn(move || group.cancel());
        let outcome = ex.block_on(handle);
        canceller.join().unwrap();
        let err = outcome.unwrap_err();
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
        assert_eq!(drops.count(), 1);
        assert!(polls.load(Ordering::SeqCst) <= 1);
    });
}

/// Members ending (on the executor's thread) vs `join` polled on another thread: the
/// member that ends last finds the join waker, or `join` sees no member left; either way
/// `join` returns, and it counts the cancelled member.
#[test]
fn loom_group_member_exit_vs_join() {
    loom::model(|| {
        let ex = Builder::new().backtraces(Backtraces::Off).build_local();
        let group = ex.group();
        group.spawn(async {}).detach();
        let pending = group.spawn(std::future::pending::<()>());
        pending.cancel();
        let joiner = thread::spawn(move || block_on(group.join()));
        ex.run_until_idle();
        let report = joiner.join().unwrap();
        assert_eq!(report.unwrap_err().cancelled(), 1);
        drop(pending);
    });
}

/// A group cancelled and joined on another thread while its members end on the
/// executor's thread: the cancel takes the member map while members exit without the
/// lock (once the map is gone) or with it (before), and `join` must still see both exits,
/// count both as cancelled, and return.
#[test]
fn loom_group_cancel_vs_member_exit() {
    loom::model(|| {
        let ex = Builder::new().backtraces(Backtraces::Off).build_local();
        let group = ex.group();
        let drops = Drops::default();
        let first = group.spawn(pending_with(drops.token()));
        let second = group.spawn(pending_with(drops.token()));
        ex.run_until_idle();
        let canceller = thread::spawn(move || {
            group.cancel();
            block_on(group.join())
        });
        ex.block_on(async {
            assert!(first.await.unwrap_err().is_cancelled());
            assert!(second.await.unwrap_err().is_cancelled());
        });
        let report = canceller.join().unwrap();
        assert_eq!(report.unwrap_err().cancelled(), 2);
        assert_eq!(drops.count(), 2);
    });
}

/// The other side of the cancel: a member that ends on its own (completes) while the
/// group is being cancelled, so its exit may come before the cancel takes the member map
/// (and remove its entry under the lock), or after (no lock), or the cancel may reach it
/// first (it is cancelled before its second poll). Whatever the order, `join` returns and
/// its cancelled count matches what the handles saw.
#[test]
fn loom_group_cancel_vs_member_completing() {
    loom::model(|| {
        let ex = Builder::new().backtraces(Backtraces::Off).build_local();
        let group = ex.group();
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let waiting = group.spawn(pending_with(()));
        let completing = group.spawn({
            let slot = slot.clone();
            let mut polled = false;
            poll_fn(move |cx| {
                if polled {
                    return Poll::Ready(());
                }
                polled = true;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            })
        });
        ex.run_until_idle();
        let canceller = thread::spawn(move || {
            take_waker(&slot).wake();
            group.cancel();
            block_on(group.join())
        });
        let completing_was_cancelled = ex.block_on(async {
            assert!(waiting.await.unwrap_err().is_cancelled());
            match completing.await {
                Ok(()) => false,
                Err(err) => {
                    assert!(err.is_cancelled());
                    true
                }
            }
        });
        let report = canceller.join().unwrap();
        let expected = 1 + usize::from(completing_was_cancelled);
        assert_eq!(report.unwrap_err().cancelled(), expected);
    });
}

/// A future that never completes and holds `token` until it is dropped.
fn pending_with<T: Send + 'static>(
    token: T,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    poll_fn(move |_cx| {
        let _ = &token;
        Poll::Pending
    })
}

/// Polls `future` on this model thread, parking between polls.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(loom::thread::Thread);
    impl futures_task::ArcWake for Unpark {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.unpark();
        }
    }
    let waker = futures_task::waker(Arc::new(Unpark(thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// A hook that counts its calls.
fn counting_hook() -> (Arc<HookFn>, std::sync::Arc<StdAtomicUsize>) {
    let calls = std::sync::Arc::new(StdAtomicUsize::new(0));
    let hook: Arc<HookFn> = {
        let calls = calls.clone();
        Arc::new(move |_err: &crate::TaskError| {
            calls.fetch_add(1, SeqCst);
        })
    };
    (hook, calls)
}

/// `finish` for a task whose body "returns Err": every output is a failure.
fn always_fails(_: ()) -> Result<(), crate::BoxError> {
    Err("boom".into())
}

/// Handle drop vs completion: the failure reaches the error hook exactly once, whichever
/// comes first.
#[test]
fn loom_handle_drop_vs_completion() {
    loom::model(|| {
        let (hook, calls) = counting_hook();
        let sched = test_sched(Some(hook));
        let handle = task::spawn(async {}, always_fails, SpawnSpec::new(None), sched.clone());
        let dropper = thread::spawn(move || drop(handle));
        run_until(&sched, || sched.owner.live() == 0);
        dropper.join().unwrap();
        assert_eq!(calls.load(SeqCst), 1);
    });
}

/// A failure captured on one thread (a panic, caught by the harness) while the handle is
/// polled on another: delivered to the handle once, and never to the hook.
#[test]
fn loom_failure_captured_while_handle_polled_elsewhere() {
    loom::model(|| {
        let (hook, calls) = counting_hook();
        let sched = test_sched(Some(hook));
        let handle = task::spawn(
            async { panic!("captured on the runner") },
            task::plain,
            SpawnSpec::new(None),
            sched.clone(),
        );
        let reader = thread::spawn(move || block_on(handle));
        run_until(&sched, || sched.owner.live() == 0);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.panic_message(), Some("captured on the runner"));
        assert_eq!(calls.load(SeqCst), 0);
    });
}

/// Shutdown vs a wake and a spawn from another thread: nothing is left queued or live, and
/// every future is dropped.
#[test]
fn loom_shutdown_vs_wake_and_spawn() {
    loom::model(|| {
        let ex = Builder::new().backtraces(Backtraces::Off).build_local();
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let pending_drops = Drops::default();
        let late_drops = Drops::default();
        let pending = {
            let slot = slot.clone();
            let token = pending_drops.token();
            ex.spawn(poll_fn(move |cx| {
                let _ = &token;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            }))
        };
        ex.run_until_idle();
        let handle = ex.handle();
        let other = {
            let token = late_drops.token();
            thread::spawn(move || {
                take_waker(&slot).wake();
                handle.spawn(async move {
                    let _token = token;
                })
            })
        };
        drop(ex);
        let late = other.join().unwrap();
        assert!(pending.is_finished());
        assert!(late.is_finished());
        assert_eq!(pending_drops.count(), 1);
        assert_eq!(late_drops.count(), 1);
    });
}

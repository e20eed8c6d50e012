//! The multi-threaded `Executor` under load: many spawners, wake storms, shutdown races, panics, and where tasks run.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::FutureExt;
use warden::{Builder, CancelReason, Executor, JoinHandle, UnhandledPolicy};

use support::{DropCounter, DropToken, HookLog, assert_adds_up, payload_text, unit};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The pool every test uses unless it says otherwise: 2 workers (this is a 2-core machine).
fn pool(prefix: &str) -> Executor {
    Builder::new().worker_threads(2).thread_name(prefix).build()
}

/// Runs `f` on a helper thread and fails the test if it has not returned after `secs`
/// seconds: a deadlock becomes a failure instead of a hung test run. A panic in `f` is
/// re-raised here.
#[track_caller]
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(format!("within: {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(value) => {
            worker.join().unwrap();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the helper thread ended without a value or a panic"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done after {secs} s (deadlock or lost wake-up?)")
        }
    }
}

/// Polls `cond` until it holds; fails the test after 10 s.
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Busy-waits (holds the thread) for `d`.
fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("<unnamed>").to_owned()
}

/// Awaits a handle from a thread that is not part of any warden executor.
fn join_outside<T>(handle: JoinHandle<T>) -> Result<T, warden::TaskError> {
    futures::executor::block_on(handle)
}

#[track_caller]
fn assert_shutdown_cancelled<T: std::fmt::Debug>(result: Result<T, warden::TaskError>) {
    let err = result.expect_err("the task should have been cancelled by the shutdown");
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown), "{err}");
}

/// A slot that tasks publish their current waker into.
type WakerSlot = Arc<Mutex<Option<Waker>>>;

// ---------------------------------------------------------------------------------------
// 1. Many spawners
// ---------------------------------------------------------------------------------------

const SPAWNER_THREADS: u64 = 4;
const PER_SPAWNER: u64 = 25_000;
/// Every this many tasks an outside thread spawns one parent that spawns children itself.
const PARENT_EVERY: u64 = 100;
const CHILDREN: u64 = 10;

#[test]
fn hundred_thousand_tasks_from_four_threads_and_from_tasks_add_up() {
    within(60, "100 000 spawns", || {
        let ex = pool("wpool-many");
        let spawners: Vec<_> = (0..SPAWNER_THREADS)
            .map(|t| {
                let handle = ex.handle();
                thread::spawn(move || {
                    let handles: Vec<JoinHandle<u64>> = (0..PER_SPAWNER)
                        .map(|i| {
                            let n = t * PER_SPAWNER + i;
                            if i % PARENT_EVERY == 0 {
                                // A parent: its children go through `warden::spawn`, from a
                                // worker thread, onto the same pool.
                                handle.spawn(async move {
                                    let children: Vec<_> = (0..CHILDREN)
                                        .map(|c| warden::spawn(async move { c }))
                                        .collect();
                                    let mut sum = n;
                                    for child in children {
                                        sum += child.await.unwrap();
                                    }
                                    sum
                                })
                            } else {
                                handle.spawn(async move { n })
                            }
                        })
                        .collect();
                    // Joined from this (non-worker) thread: join wakers cross threads.
                    futures::executor::block_on(async {
                        let mut sum = 0;
                        for h in handles {
                            sum += h.await.unwrap();
                        }
                        sum
                    })
                })
            })
            .collect();
        let total: u64 = spawners.into_iter().map(|t| t.join().unwrap()).sum();

        let outside = SPAWNER_THREADS * PER_SPAWNER;
        let parents = outside / PARENT_EVERY;
        let children = parents * CHILDREN;
        let expected = outside * (outside - 1) / 2 + parents * (CHILDREN * (CHILDREN - 1) / 2);
        assert_eq!(
            total, expected,
            "some task returned a wrong value or ran twice"
        );

        let m = ex.metrics();
        assert_eq!(m.spawned, outside + children, "{m:?}");
        assert_eq!(m.completed, outside + children, "{m:?}");
        assert_eq!(
            (m.panicked, m.errored, m.cancelled, m.live),
            (0, 0, 0, 0),
            "{m:?}"
        );
        assert!(
            m.polls >= m.spawned,
            "every task is polled at least once: {m:?}"
        );
        assert_adds_up(&m);
    });
}

// ---------------------------------------------------------------------------------------
// 2. Wake storm
// ---------------------------------------------------------------------------------------

/// Pending forever; counts its polls, publishes its waker on every poll, and detects two
/// polls at once.
struct StormTarget {
    polls: Arc<AtomicUsize>,
    in_poll: Arc<AtomicBool>,
    overlap: Arc<AtomicBool>,
    waker: WakerSlot,
    _token: DropToken,
}

impl Future for StormTarget {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.in_poll.swap(true, SeqCst) {
            self.overlap.store(true, SeqCst);
            panic!("StormTarget polled by two threads at once");
        }
        self.polls.fetch_add(1, SeqCst);
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        // Stay in the poll a moment, so that many wakes arrive while the task is RUNNING:
        // if one of them queued it again, another worker would poll it now.
        spin_for(Duration::from_micros(50));
        self.in_poll.store(false, SeqCst);
        Poll::Pending
    }
}

#[test]
fn wake_storm_is_coalesced_and_never_polls_concurrently() {
    const WAKES_PER_THREAD: usize = 500_000;
    const TOTAL_WAKES: usize = 2 * WAKES_PER_THREAD;

    within(60, "wake storm", || {
        let ex = pool("wpool-storm");
        let polls = Arc::new(AtomicUsize::new(0));
        let overlap = Arc::new(AtomicBool::new(false));
        let slot: WakerSlot = Arc::default();
        let drops = DropCounter::new();
        let task = ex.spawn(StormTarget {
            polls: polls.clone(),
            in_poll: Arc::default(),
            overlap: overlap.clone(),
            waker: slot.clone(),
            _token: drops.token(),
        });
        wait_until("the target was polled once", || {
            slot.lock().unwrap().is_some()
        });

        let start = Arc::new(Barrier::new(2));
        let stormers: Vec<_> = (0..2)
            .map(|_| {
                let slot = slot.clone();
                let start = start.clone();
                thread::spawn(move || {
                    // Any clone of the task's waker wakes the same task.
                    let waker = slot.lock().unwrap().clone().unwrap();
                    start.wait();
                    for i in 0..WAKES_PER_THREAD {
                        waker.wake_by_ref();
                        if i % 1024 == 0 {
                            // A short pause now and then stretches the storm over many
                            // poll cycles, even in release builds, and leaves both cores
                            // to the workers for a moment.
                            thread::sleep(Duration::from_micros(50));
                        }
                    }
                })
            })
            .collect();
        for s in stormers {
            s.join().unwrap();
        }

        assert!(!overlap.load(SeqCst), "the task was polled concurrently");

        // A wake that finds the task already queued (SCHEDULED) does nothing but one atomic
        // load, and a wake during a poll only sets SCHEDULED so that the poller queues the
        // task once more when the poll ends: a wake never puts a task on a queue a second
        // time. So a million wakes collapse into about one poll per poll cycle (a few
        // hundred here, in debug and release alike); without that, every wake would cost a
        // queue push and a poll.
        let after_storm = polls.load(SeqCst);
        assert!(after_storm >= 1);
        assert!(
            after_storm < TOTAL_WAKES / 10,
            "{after_storm} polls for {TOTAL_WAKES} wakes: wakes of a queued task are not coalesced"
        );

        // No wake was lost: one more wake after the storm leads to one more poll.
        let before = polls.load(SeqCst);
        slot.lock().unwrap().clone().unwrap().wake();
        wait_until("the last wake was followed by a poll", || {
            polls.load(SeqCst) > before
        });

        assert!(!overlap.load(SeqCst), "the task was polled concurrently");
        task.cancel();
        let err = ex.block_on(task).unwrap_err();
        assert_eq!(
            err.cancel_reason(),
            Some(&CancelReason::Explicit(None)),
            "{err}"
        );
        assert_eq!(drops.count(), 1, "the cancelled future was not dropped");
        let m = ex.metrics();
        assert_eq!(
            (m.spawned, m.cancelled, m.panicked, m.live),
            (1, 1, 0, 0),
            "{m:?}"
        );
        assert_eq!(m.polls as usize, polls.load(SeqCst), "{m:?}");
        assert_adds_up(&m);
    });
}

// ---------------------------------------------------------------------------------------
// 3. Spawning after shutdown
// ---------------------------------------------------------------------------------------

#[test]
fn spawn_after_shutdown_resolves_to_shutdown_from_any_thread() {
    within(20, "spawn after shutdown", || {
        let ex = pool("wpool-late");
        let handle = ex.handle();
        ex.shutdown();
        ex.shutdown(); // a second call does nothing

        let drops = DropCounter::new();
        let polled = Arc::new(AtomicBool::new(false));
        let late = {
            let token = drops.token();
            let polled = polled.clone();
            ex.spawn(async move {
                polled.store(true, SeqCst);
                drop(token);
                1
            })
        };
        assert!(
            late.is_finished(),
            "a task refused at shutdown resolves at once"
        );
        assert_shutdown_cancelled(join_outside(late));

        // Through a Handle, on another thread; awaited there too.
        let (name, result) = {
            let handle = handle.clone();
            let token = drops.token();
            let polled = polled.clone();
            thread::spawn(move || {
                let h = handle.spawn_named("late-from-thread", async move {
                    polled.store(true, SeqCst);
                    drop(token);
                    2
                });
                (h.name().map(String::from), join_outside(h))
            })
            .join()
            .unwrap()
        };
        assert_eq!(name.as_deref(), Some("late-from-thread"));
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.task().name(), Some("late-from-thread"));
        assert_shutdown_cancelled(result);

        // block_on still works after a plain shutdown, and sees the same.
        let token = drops.token();
        assert_shutdown_cancelled(ex.block_on(ex.spawn(async move {
            drop(token);
            3
        })));

        assert!(
            !polled.load(SeqCst),
            "a task spawned after shutdown was polled"
        );
        assert_eq!(drops.count(), 3, "the refused futures were not dropped");
        let m = ex.metrics();
        assert_eq!(
            (m.spawned, m.cancelled, m.polls, m.live),
            (3, 3, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);

        // After the executor is dropped, the Handle still refuses cleanly.
        drop(ex);
        let token = drops.token();
        let h = handle.spawn(async move {
            drop(token);
        });
        assert_shutdown_cancelled(join_outside(h));
        assert_eq!(drops.count(), 4);
    });
}

// ---------------------------------------------------------------------------------------
// 4. Shutdown while destructors wake other tasks
// ---------------------------------------------------------------------------------------

type Slots = Arc<Mutex<Vec<Option<Waker>>>>;

/// Pending forever. Its destructor wakes every task's waker (its own included) and spawns
/// a task, all while the executor is shutting down.
struct WakesOthersOnDrop {
    index: usize,
    slots: Slots,
    registered: Arc<AtomicUsize>,
    late_drops: DropCounter,
    late_refused: Arc<AtomicUsize>,
    _token: DropToken,
}

impl Future for WakesOthersOnDrop {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.slots.lock().unwrap();
        if slots[self.index].replace(cx.waker().clone()).is_none() {
            self.registered.fetch_add(1, SeqCst);
        }
        Poll::Pending
    }
}

impl Drop for WakesOthersOnDrop {
    fn drop(&mut self) {
        let wakers: Vec<Waker> = self
            .slots
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect();
        for waker in wakers {
            waker.wake();
        }
        // The executor is closed: a spawn here resolves to Shutdown at once.
        let token = self.late_drops.token();
        let late = warden::spawn(async move { drop(token) });
        if let Some(Err(err)) = late.now_or_never() {
            if err.cancel_reason() == Some(&CancelReason::Shutdown) {
                self.late_refused.fetch_add(1, SeqCst);
            }
        }
    }
}

#[test]
fn shutdown_while_destructors_wake_other_tasks_does_not_deadlock() {
    const TASKS: usize = 200;
    within(20, "shutdown with waking destructors", || {
        let ex = pool("wpool-dropwake");
        let slots: Slots = Arc::new(Mutex::new(vec![None; TASKS]));
        let registered = Arc::new(AtomicUsize::new(0));
        let drops = DropCounter::new();
        let late_drops = DropCounter::new();
        let late_refused = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..TASKS)
            .map(|index| {
                ex.spawn(WakesOthersOnDrop {
                    index,
                    slots: slots.clone(),
                    registered: registered.clone(),
                    late_drops: late_drops.clone(),
                    late_refused: late_refused.clone(),
                    _token: drops.token(),
                })
            })
            .collect();
        wait_until("every task stored its waker", || {
            registered.load(SeqCst) == TASKS
        });

        ex.shutdown();

        assert_eq!(
            drops.count(),
            TASKS,
            "shutdown returned before every destructor ran"
        );
        assert_eq!(
            late_drops.count(),
            TASKS,
            "futures spawned during shutdown were not dropped"
        );
        assert_eq!(
            late_refused.load(SeqCst),
            TASKS,
            "a spawn during shutdown did not resolve to Shutdown"
        );
        for h in handles {
            assert_shutdown_cancelled(join_outside(h));
        }
        let m = ex.metrics();
        assert_eq!(m.spawned, 2 * TASKS as u64, "{m:?}");
        assert_eq!(m.cancelled, 2 * TASKS as u64, "{m:?}");
        assert_eq!(
            (m.panicked, m.live),
            (0, 0),
            "a destructor panicked, or a task is left: {m:?}"
        );
        assert_adds_up(&m);

        // Wakers used after their executor is gone do nothing.
        drop(ex);
        for waker in slots.lock().unwrap().iter().flatten() {
            waker.wake_by_ref();
        }
    });
}

// ---------------------------------------------------------------------------------------
// 5. Shutdown while another thread keeps waking
// ---------------------------------------------------------------------------------------

/// Pending forever; publishes its waker on its first poll.
struct Registers {
    wakers: Arc<Mutex<Vec<Waker>>>,
    registered: bool,
    _token: DropToken,
}

impl Future for Registers {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.registered {
            self.registered = true;
            self.wakers.lock().unwrap().push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[test]
fn shutdown_of_ten_thousand_tasks_under_a_wake_storm_twenty_times() {
    const TASKS: usize = 10_000;
    const ROUNDS: usize = 20;
    within(120, "shutdown under a wake storm", || {
        for round in 0..ROUNDS {
            let ex = pool("wpool-storm-shutdown");
            let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
            let drops = DropCounter::new();
            let stop = Arc::new(AtomicBool::new(false));
            let passes = Arc::new(AtomicUsize::new(0));
            let waker_thread = {
                let wakers = wakers.clone();
                let stop = stop.clone();
                let passes = passes.clone();
                thread::spawn(move || {
                    while !stop.load(SeqCst) {
                        let batch = wakers.lock().unwrap().clone();
                        for w in &batch {
                            w.wake_by_ref();
                        }
                        passes.fetch_add(1, SeqCst);
                        if batch.is_empty() {
                            thread::yield_now();
                        }
                    }
                })
            };
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    ex.spawn(Registers {
                        wakers: wakers.clone(),
                        registered: false,
                        _token: drops.token(),
                    })
                })
                .collect();
            if round % 2 == 0 {
                // Every task idle or re-woken, and the storm going over all of them.
                wait_until("every task registered", || {
                    wakers.lock().unwrap().len() == TASKS
                });
                let seen = passes.load(SeqCst);
                wait_until("a full wake pass", || passes.load(SeqCst) > seen + 1);
            } else {
                // Shut down early: some tasks were never polled.
                wait_until("some task registered", || {
                    !wakers.lock().unwrap().is_empty()
                });
            }

            ex.shutdown();

            let m = ex.metrics();
            assert_eq!(
                drops.count(),
                TASKS,
                "round {round}: shutdown returned with futures not dropped: {m:?}"
            );
            assert_eq!(
                (m.spawned, m.cancelled, m.live),
                (TASKS as u64, TASKS as u64, 0),
                "round {round}: {m:?}"
            );
            assert_adds_up(&m);
            assert!(handles.iter().all(JoinHandle::is_finished), "round {round}");
            for h in handles {
                assert_shutdown_cancelled(join_outside(h));
            }
            // Keep waking a little after the executor is gone: no-ops.
            drop(ex);
            let seen = passes.load(SeqCst);
            wait_until("a wake pass after drop", || passes.load(SeqCst) > seen + 1);
            stop.store(true, SeqCst);
            waker_thread.join().unwrap();
        }
    });
}

#[test]
fn spawns_from_other_threads_racing_shutdown_all_resolve() {
    const SPAWNERS: usize = 4;
    const ROUNDS: usize = 10;
    within(60, "spawns racing shutdown", || {
        for round in 0..ROUNDS {
            let ex = pool("wpool-race");
            let drops = DropCounter::new();
            let stop = Arc::new(AtomicBool::new(false));
            let spawned = Arc::new(AtomicUsize::new(0));
            let spawners: Vec<_> = (0..SPAWNERS)
                .map(|_| {
                    let handle = ex.handle();
                    let drops = drops.clone();
                    let stop = stop.clone();
                    let spawned = spawned.clone();
                    thread::spawn(move || {
                        let mut handles = Vec::new();
                        while !stop.load(SeqCst) && handles.len() < 20_000 {
                            let token = drops.token();
                            handles.push(handle.spawn(async move {
                                let _token = token;
                                std::future::pending::<()>().await
                            }));
                            spawned.fetch_add(1, SeqCst);
                        }
                        handles
                    })
                })
                .collect();
            wait_until("the spawners are going", || spawned.load(SeqCst) >= 400);

            // Some spawns land before the registry closes, some after, some in between
            // (registered before, queued after): each must end up cancelled, its future
            // dropped, once shutdown has returned or at once when it was refused.
            ex.shutdown();
            stop.store(true, SeqCst);
            let handles: Vec<_> = spawners
                .into_iter()
                .flat_map(|s| s.join().unwrap())
                .collect();
            // The workers are gone: nothing would finish a task that was left behind.
            let stuck = handles.iter().filter(|h| !h.is_finished()).count();
            assert_eq!(
                stuck, 0,
                "round {round}: tasks left unfinished after shutdown"
            );
            assert_eq!(drops.count(), handles.len(), "round {round}");
            let m = ex.metrics();
            assert_eq!(
                (m.spawned, m.cancelled, m.live),
                (handles.len() as u64, handles.len() as u64, 0),
                "round {round}: {m:?}"
            );
            for h in handles {
                assert_shutdown_cancelled(join_outside(h));
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// 6. UnhandledPolicy::Shutdown
// ---------------------------------------------------------------------------------------

#[test]
fn unhandled_policy_shutdown_fails_block_on_naming_the_task() {
    within(20, "UnhandledPolicy::Shutdown", || {
        let hook = HookLog::new();
        let ex = hook
            .builder()
            .worker_threads(2)
            .unhandled_policy(UnhandledPolicy::Shutdown)
            .build();
        let drops = DropCounter::new();
        let bystanders: Vec<JoinHandle<()>> = (0..10)
            .map(|_| {
                let token = drops.token();
                ex.spawn(async move {
                    let _token = token;
                    std::future::pending::<()>().await
                })
            })
            .collect();
        let awaited = {
            let token = drops.token();
            ex.spawn(async move {
                let _token = token;
                std::future::pending::<()>().await
            })
        };

        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            ex.block_on(async {
                warden::spawn_named(
                    "doomed-task",
                    unit(async {
                        warden::sleep(Duration::from_millis(20)).await;
                        panic!("disk on fire");
                    }),
                )
                .detach();
                awaited.await
            })
        }));
        let payload = outcome.expect_err("block_on should panic after an unhandled failure");
        let text = payload_text(&*payload);
        assert!(
            text.contains("doomed-task"),
            "the panic does not name the task: {text}"
        );
        assert!(
            text.contains("disk on fire"),
            "the panic does not say what failed: {text}"
        );

        let seen = hook.errors();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].task().name(), Some("doomed-task"));
        assert_eq!(seen[0].panic_message(), Some("disk on fire"));

        for h in bystanders {
            assert_shutdown_cancelled(join_outside(h));
        }
        // The awaited task's handle went with the panicking block_on, so nothing waits
        // for it: a worker may still be dropping its future. Give it up to 10 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while drops.count() < 11 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            drops.count(),
            11,
            "a cancelled task's future was not dropped"
        );

        // A later block_on on the shut-down executor fails the same way, at once.
        let again = panic::catch_unwind(AssertUnwindSafe(|| ex.block_on(async { 5 })));
        let text = payload_text(&*again.expect_err("block_on after the shutdown should panic"));
        assert!(text.contains("doomed-task"), "{text}");

        drop(ex);
        let m = hook.len();
        assert_eq!(m, 1, "the failure reached the hook more than once");
    });
}

#[test]
fn unhandled_policy_shutdown_wakes_a_block_on_that_waits_for_nothing() {
    // The root future waits for something no task will ever provide: the shutdown itself
    // has to wake the thread in block_on so that it can panic.
    within(
        10,
        "block_on(pending) under UnhandledPolicy::Shutdown",
        || {
            let ex = Builder::new()
                .worker_threads(2)
                .on_unhandled(|_| {})
                .unhandled_policy(UnhandledPolicy::Shutdown)
                .build();
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                ex.block_on(async {
                    warden::spawn_named(
                        "doomed-task",
                        unit(async {
                            warden::sleep(Duration::from_millis(20)).await;
                            panic!("disk on fire");
                        }),
                    )
                    .detach();
                    std::future::pending::<()>().await
                })
            }));
            let text = payload_text(&*outcome.expect_err("block_on should panic"));
            assert!(text.contains("doomed-task"), "{text}");
        },
    );
}

// ---------------------------------------------------------------------------------------
// 7. Where things run
// ---------------------------------------------------------------------------------------

#[test]
fn spawn_inside_a_task_targets_the_same_pool_and_block_on_runs_on_the_caller() {
    within(20, "spawn inside a task", || {
        let ex = pool("wpool-where");
        let caller = thread::current().id();
        let (root_thread, parent_id, parent_name, child_parent, child_name) = ex.block_on(async {
            let root_thread = thread::current().id();
            let parent = warden::spawn(async {
                let parent_name = thread_name();
                let child = warden::spawn(async { thread_name() });
                let child_parent = child.info().parent();
                (parent_name, child_parent, child.await.unwrap())
            });
            let parent_id = parent.id();
            let (parent_name, child_parent, child_name) = parent.await.unwrap();
            (
                root_thread,
                parent_id,
                parent_name,
                child_parent,
                child_name,
            )
        });
        assert_eq!(
            root_thread, caller,
            "block_on ran its root on another thread"
        );
        for name in [&parent_name, &child_name] {
            assert!(
                name == "wpool-where-0" || name == "wpool-where-1",
                "a task ran on {name:?}, not on a worker of this pool"
            );
        }
        assert_eq!(child_parent, Some(parent_id));
        let m = ex.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.live),
            (2, 2, 0),
            "the child went elsewhere: {m:?}"
        );
    });
}

#[test]
fn block_on_inside_a_pool_task_panics_naming_block_on() {
    within(20, "block_on inside a task", || {
        let ex = pool("wpool-nested");
        let err = ex
            .block_on(ex.spawn(async { warden::block_on(async { 1 }) }))
            .unwrap_err();
        let msg = err.panic_message().unwrap_or_default();
        assert!(msg.contains("block_on"), "{err}");
        // The worker survived: the pool still runs tasks.
        assert_eq!(ex.block_on(ex.spawn(async { 2 })).unwrap(), 2);
    });
}

// ---------------------------------------------------------------------------------------
// 8. Panics do not kill workers
// ---------------------------------------------------------------------------------------

/// Runs on a worker and holds it until `arrived` reaches 2, so two of these can only both
/// finish if two workers are alive. Returns the worker's name.
async fn rendezvous(arrived: Arc<AtomicUsize>) -> (String, bool) {
    arrived.fetch_add(1, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while arrived.load(SeqCst) < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_micros(100));
    }
    (thread_name(), arrived.load(SeqCst) >= 2)
}

#[test]
fn a_thousand_panicking_tasks_leave_both_workers_running() {
    within(30, "panicking tasks", || {
        let hook = HookLog::new();
        let ex = hook
            .builder()
            .worker_threads(2)
            .thread_name("wpool-panic")
            .build();
        let failing: Vec<_> = (0..1000)
            .map(|i| ex.spawn(unit(async move { panic!("task {i} fails on purpose") })))
            .collect();
        for (i, h) in failing.into_iter().enumerate() {
            let err = join_outside(h).unwrap_err();
            assert!(err.is_panic(), "{err}");
            assert_eq!(
                err.panic_message(),
                Some(format!("task {i} fails on purpose").as_str())
            );
        }
        let fine: Vec<_> = (0..1000u64)
            .map(|i| ex.spawn(async move { (i, thread_name()) }))
            .collect();
        for (i, h) in fine.into_iter().enumerate() {
            let (value, name) = join_outside(h).unwrap();
            assert_eq!(value, i as u64);
            assert!(name.starts_with("wpool-panic-"), "ran on {name:?}");
        }
        // Both workers still take tasks: two tasks that must be running at the same time.
        let arrived = Arc::new(AtomicUsize::new(0));
        let a = ex.spawn(rendezvous(arrived.clone()));
        let b = ex.spawn(rendezvous(arrived.clone()));
        let (name_a, met_a) = join_outside(a).unwrap();
        let (name_b, met_b) = join_outside(b).unwrap();
        assert!(met_a && met_b, "only one worker is left");
        let names = BTreeSet::from([name_a, name_b]);
        let expected = BTreeSet::from(["wpool-panic-0".to_owned(), "wpool-panic-1".to_owned()]);
        assert_eq!(names, expected);

        let m = ex.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.completed, m.live),
            (2002, 1000, 1002, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        assert_eq!(
            hook.len(),
            0,
            "every failure was observed through its handle"
        );
    });
}

// ---------------------------------------------------------------------------------------
// 9. Queues: injector and stealing
// ---------------------------------------------------------------------------------------

#[test]
fn tasks_woken_from_outside_threads_run_on_workers() {
    const TASKS: usize = 100;
    within(20, "wakes from outside", || {
        let ex = pool("wpool-inject");
        let mut senders = Vec::new();
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let (tx, rx) = futures::channel::oneshot::channel::<usize>();
                senders.push(tx);
                ex.spawn(async move {
                    let v = rx.await.unwrap();
                    assert_eq!(v, i);
                    thread_name()
                })
            })
            .collect();
        wait_until("every task waits", || ex.metrics().polls == TASKS as u64);
        // The wakes come from a thread that is no worker: they go through the injector.
        thread::spawn(move || {
            for (i, tx) in senders.into_iter().enumerate() {
                tx.send(i).unwrap();
            }
        })
        .join()
        .unwrap();
        for h in handles {
            let name = join_outside(h).unwrap();
            assert!(name.starts_with("wpool-inject-"), "ran on {name:?}");
        }
        let m = ex.metrics();
        // Exactly one poll before the wake and one after: no wake was lost or doubled.
        assert_eq!(
            (m.completed, m.polls),
            (TASKS as u64, 2 * TASKS as u64),
            "{m:?}"
        );
    });
}

#[test]
fn children_queued_on_a_blocked_worker_are_stolen_by_the_other() {
    const CHILDREN: usize = 1000;
    within(20, "stealing", || {
        let ex = pool("wpool-steal");
        let ran_elsewhere = Arc::new(AtomicBool::new(false));
        let names = ex.block_on({
            let ran_elsewhere = ran_elsewhere.clone();
            async move {
                let parent = warden::spawn(async move {
                    let me = thread_name();
                    // These go to this worker's own deque.
                    let children: Vec<_> = (0..CHILDREN)
                        .map(|_| {
                            let me = me.clone();
                            let ran_elsewhere = ran_elsewhere.clone();
                            warden::spawn(async move {
                                let name = thread_name();
                                if name != me {
                                    ran_elsewhere.store(true, SeqCst);
                                }
                                name
                            })
                        })
                        .collect();
                    // Hold this worker: only the other one can run the children now, and only
                    // by stealing them.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while !ran_elsewhere.load(SeqCst) && Instant::now() < deadline {
                        thread::sleep(Duration::from_micros(200));
                    }
                    let mut names = BTreeSet::from([me]);
                    for child in children {
                        names.insert(child.await.unwrap());
                    }
                    names
                });
                parent.await.unwrap()
            }
        });
        assert!(
            ran_elsewhere.load(SeqCst),
            "no child was stolen by the idle worker"
        );
        let expected = BTreeSet::from(["wpool-steal-0".to_owned(), "wpool-steal-1".to_owned()]);
        assert_eq!(names, expected);
    });
}

#[test]
fn a_self_waking_task_does_not_starve_the_injector() {
    // One worker (stated: the point is that nobody else could take the injector's tasks).
    within(20, "injector fairness", || {
        let ex = Builder::new()
            .worker_threads(1)
            .thread_name("wpool-fair")
            .build();
        let spinning = Arc::new(AtomicBool::new(false));
        let spinner = {
            let spinning = spinning.clone();
            ex.spawn(async move {
                loop {
                    spinning.store(true, SeqCst);
                    warden::yield_now().await;
                }
            })
        };
        wait_until("the spinner runs", || spinning.load(SeqCst));
        // Spawned from outside: into the injector, while the only worker's own deque is
        // never empty.
        let from_outside = ex.spawn(async { thread_name() });
        assert_eq!(join_outside(from_outside).unwrap(), "wpool-fair-0");
        spinner.cancel();
        let err = join_outside(spinner).unwrap_err();
        assert!(err.is_cancelled(), "{err}");
    });
}

// ---------------------------------------------------------------------------------------
// Shutdown from inside, and timers at shutdown
// ---------------------------------------------------------------------------------------

#[test]
fn shutdown_from_inside_a_task_returns_at_once_and_drop_joins() {
    within(20, "shutdown from a worker", || {
        let ex = Arc::new(pool("wpool-inner"));
        let drops = DropCounter::new();
        let sleeper = {
            let token = drops.token();
            ex.spawn(async move {
                let _token = token;
                warden::sleep(Duration::from_secs(3600)).await;
            })
        };
        wait_until("the timer is registered", || ex.timer_count() == 1);
        let inner = {
            let ex2 = ex.clone();
            ex.spawn(async move {
                ex2.shutdown();
                "returned"
            })
        };
        assert_eq!(join_outside(inner).unwrap(), "returned");
        assert_shutdown_cancelled(join_outside(sleeper));
        assert_eq!(drops.count(), 1);
        let ex = Arc::try_unwrap(ex).expect("the task's future (and its Arc) was dropped");
        drop(ex);
    });
}

/// Counters are kept per thread, in slots that a thread leases and gives back when it ends:
/// 60 short-lived threads (more than there are slots), 4 alive at a time, each spawning
/// onto the pool and onto a local executor, leave every counter exact.
#[test]
fn metrics_stay_exact_across_many_short_lived_threads() {
    within(60, "short-lived spawners", || {
        let ex = pool("lease");
        let local = warden::LocalExecutor::new();
        let (pool_handle, local_handle) = (ex.handle(), local.handle());
        let mut handles = Vec::new();
        for _ in 0..15 {
            let spawners: Vec<_> = (0..4)
                .map(|_| {
                    let (p, l) = (pool_handle.clone(), local_handle.clone());
                    thread::spawn(move || {
                        let on_pool: Vec<_> = (0..25).map(|i| p.spawn(async move { i })).collect();
                        let on_local: Vec<_> = (0..25).map(|i| l.spawn(async move { i })).collect();
                        (on_pool, on_local)
                    })
                })
                .collect();
            for spawner in spawners {
                handles.push(spawner.join().unwrap());
            }
        }
        let mut sum = 0;
        for (on_pool, on_local) in handles {
            for h in on_pool {
                sum += ex.block_on(h).unwrap();
            }
            for h in on_local {
                sum += local.block_on(h).unwrap();
            }
        }
        assert_eq!(sum, 60 * 2 * (0..25).sum::<i32>());
        for m in [ex.metrics(), local.metrics()] {
            assert_eq!((m.spawned, m.completed, m.live), (1500, 1500, 0), "{m:?}");
            assert_eq!(m.polls, 1500, "{m:?}");
            assert_adds_up(&m);
        }
    });
}

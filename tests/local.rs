//! The single-threaded `LocalExecutor` and the free functions around it: `!Send` futures,
//! `try_tick` / `run_until_idle` for host loops, cross-thread wakes and spawns while
//! `block_on` is parked, `LocalSpawn`, the clear panics for misuse (`block_on` in a task,
//! `spawn` with no executor), a panicking root future, and shutdown from inside a task.
//!
//! Every test here is about `LocalExecutor` alone (the pool has no `!Send` futures, no
//! `try_tick`, and no owner thread), so none uses `rt_test!`.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{Future, pending};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;
use futures::task::{LocalSpawn, LocalSpawnExt};
use support::{DropCounter, no_hang, payload_text, unit};
use warden::{CancelReason, JoinHandle, LocalExecutor};

/// A future that completes once `ready` is set, storing its waker and reporting (once)
/// through `stored` that the waker is in place.
struct WaitForFlag {
    ready: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    stored: Option<mpsc::Sender<()>>,
}

impl Future for WaitForFlag {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.ready.load(SeqCst) {
            return Poll::Ready("woken from another thread");
        }
        if let Some(stored) = self.stored.take() {
            stored.send(()).unwrap();
        }
        Poll::Pending
    }
}

/// Starts a thread that waits until the waker is stored, then sets the flag and wakes it.
fn wake_from_thread() -> (WaitForFlag, std::thread::JoinHandle<()>) {
    let ready = Arc::new(AtomicBool::new(false));
    let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (stored_tx, stored_rx) = mpsc::channel();
    let future = WaitForFlag {
        ready: ready.clone(),
        waker: waker.clone(),
        stored: Some(stored_tx),
    };
    let waker_thread = std::thread::spawn(move || {
        stored_rx.recv().expect("the future stored its waker");
        ready.store(true, SeqCst);
        let waker = waker.lock().unwrap().take().expect("a stored waker");
        waker.wake();
    });
    (future, waker_thread)
}

#[test]
fn not_send_futures_run_through_every_spawn() {
    let ex = LocalExecutor::new();
    let shared = Rc::new(RefCell::new(Vec::new()));

    let a = ex.spawn({
        let shared = shared.clone();
        async move { shared.borrow_mut().push("spawn") }
    });
    let b = ex.spawn({
        let shared = shared.clone();
        async move { shared.borrow_mut().push("spawn_local") }
    });
    let c = ex.spawn_named("rc-task", {
        let shared = shared.clone();
        async move {
            warden::yield_now().await;
            shared.borrow_mut().push("spawn_named");
            Rc::new(3) // a !Send output, too
        }
    });
    assert_eq!(c.name(), Some("rc-task"));
    let total = ex.block_on({
        let shared = shared.clone();
        async move {
            a.await.unwrap();
            b.await.unwrap();
            let three = c.await.unwrap();
            // warden::spawn_local from the root future, and from inside a task.
            let inner = shared.clone();
            let d = warden::spawn_local(async move {
                inner.borrow_mut().push("warden::spawn_local");
                let nested = inner.clone();
                warden::spawn_local(async move {
                    nested.borrow_mut().push("nested spawn_local");
                    Rc::new(4)
                })
                .await
                .unwrap()
            });
            *three + *d.await.unwrap()
        }
    });
    assert_eq!(total, 7);
    let mut seen = shared.borrow().clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            "nested spawn_local",
            "spawn",
            "spawn_local",
            "spawn_named",
            "warden::spawn_local"
        ]
    );
    let m = ex.metrics();
    assert_eq!((m.spawned, m.completed, m.live), (5, 5, 0), "{m:?}");
}

#[test]
fn try_tick_runs_one_task_at_a_time() {
    let ex = LocalExecutor::new();
    assert!(!ex.try_tick(), "nothing to run yet");
    let ran = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let ran = ran.clone();
        ex.spawn(async move { ran.set(ran.get() + 1) }).detach();
    }
    assert!(ex.try_tick());
    assert_eq!(ran.get(), 1, "try_tick runs exactly one task");
    assert!(ex.try_tick());
    assert_eq!(ran.get(), 2);
    assert!(ex.try_tick());
    assert_eq!(ran.get(), 3);
    assert!(!ex.try_tick(), "and reports when it found none");
    assert_eq!(ex.metrics().polls, 3);
}

#[test]
fn try_tick_and_run_until_idle_never_block() {
    let ex = LocalExecutor::new();
    let drops = DropCounter::new();
    let token = drops.token();
    let (tx, rx) = oneshot::channel::<u32>();
    let waiting = ex.spawn(async move {
        let _token = token;
        rx.await.unwrap()
    });
    let forever = ex.spawn(pending::<()>());
    // Two tasks, each polled once and then waiting: neither call may block on them.
    assert_eq!(ex.run_until_idle(), 2);
    assert!(!ex.try_tick());
    assert_eq!(ex.run_until_idle(), 0);
    assert!(!waiting.is_finished() && !forever.is_finished());

    tx.send(9).unwrap();
    assert_eq!(ex.run_until_idle(), 1, "the wake queued exactly one poll");
    assert!(waiting.is_finished());
    assert_eq!(drops.count(), 1);

    // A cancelled task's final step (dropping its future) counts as one poll.
    forever.cancel();
    assert_eq!(ex.run_until_idle(), 1);
    assert!(forever.is_finished());
    assert_eq!(ex.block_on(waiting).unwrap(), 9);
    let err = ex.block_on(forever).unwrap_err();
    assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
}

#[test]
fn run_until_idle_counts_every_poll() {
    let ex = LocalExecutor::new();
    let finished = Rc::new(Cell::new(0));
    // Task i yields i times: i + 1 polls each, 1 + 2 + 3 + 4 + 5 = 15 in all.
    for yields in 0..5 {
        let finished = finished.clone();
        ex.spawn(async move {
            for _ in 0..yields {
                warden::yield_now().await;
            }
            finished.set(finished.get() + 1);
        })
        .detach();
    }
    assert_eq!(ex.run_until_idle(), 15);
    assert_eq!(finished.get(), 5);
    assert_eq!(ex.run_until_idle(), 0);
    let m = ex.metrics();
    assert_eq!((m.polls, m.completed, m.live), (15, 5, 0), "{m:?}");
}

#[test]
fn wake_from_another_thread_reaches_parked_block_on() {
    no_hang(|| {
        let ex = LocalExecutor::new();
        // A task woken from another thread while block_on parks on its handle.
        let (future, waker_thread) = wake_from_thread();
        let task = ex.spawn(future);
        assert_eq!(ex.block_on(task).unwrap(), "woken from another thread");
        waker_thread.join().unwrap();

        // The root future itself woken from another thread.
        let (future, waker_thread) = wake_from_thread();
        assert_eq!(ex.block_on(future), "woken from another thread");
        waker_thread.join().unwrap();
    });
}

#[test]
fn block_on_inside_a_task_panics_naming_block_on() {
    let ex = LocalExecutor::new();
    let free_fn = ex.spawn(async { warden::block_on(async { 1 }) });
    let err = ex
        .block_on(free_fn)
        .expect_err("blocking inside a task must fail");
    assert!(err.is_panic(), "{err}");
    let msg = err.panic_message().unwrap();
    assert!(
        msg.contains("block_on"),
        "the message should name block_on: {msg}"
    );

    // The same executor's block_on, through an Rc, from inside one of its tasks.
    let ex = Rc::new(ex);
    let again = ex.spawn({
        let ex = ex.clone();
        async move { ex.block_on(async { 2 }) }
    });
    let err = ex.block_on(again).unwrap_err();
    assert!(err.panic_message().unwrap().contains("block_on"), "{err}");

    // The executor survives both and still works.
    assert_eq!(
        ex.block_on(async { warden::spawn(async { 3 }).await.unwrap() }),
        3
    );
    let m = ex.metrics();
    assert_eq!((m.panicked, m.completed, m.live), (2, 1, 0), "{m:?}");
}

#[test]
fn spawn_outside_any_executor_panics_clearly() {
    let cases: [(&str, fn()); 3] = [
        ("warden::spawn", || warden::spawn(async {}).detach()),
        ("warden::spawn_named", || {
            warden::spawn_named("x", async {}).detach()
        }),
        ("warden::spawn_local", || {
            warden::spawn_local(async {}).detach()
        }),
    ];
    for (what, call) in cases {
        let payload = catch_unwind(AssertUnwindSafe(call))
            .expect_err("spawning with no executor running must panic");
        let msg = payload_text(&*payload);
        assert!(
            msg.contains("no warden executor is running"),
            "{what}: unclear message: {msg}"
        );
        assert!(
            msg.contains(what),
            "{what}: the message should name the call: {msg}"
        );
    }
}

#[test]
fn local_spawn_ext_spawns_not_send_futures() {
    let ex = LocalExecutor::new();
    let hits = Rc::new(Cell::new(0));
    assert!(LocalSpawn::status_local(&ex).is_ok());
    LocalSpawnExt::spawn_local(&ex, {
        let hits = hits.clone();
        async move { hits.set(hits.get() + 1) }
    })
    .expect("spawn_local_obj accepts before shutdown");
    let remote = ex
        .spawn_local_with_handle({
            let hits = hits.clone();
            async move {
                hits.set(hits.get() + 10);
                Rc::new("remote")
            }
        })
        .expect("spawn_local_with_handle accepts before shutdown");
    assert_eq!(*ex.block_on(remote), "remote");
    ex.run_until_idle();
    assert_eq!(hits.get(), 11);
    assert_eq!(
        ex.metrics().spawned,
        2,
        "LocalSpawn goes through the executor's tasks"
    );

    ex.shutdown();
    let err = LocalSpawnExt::spawn_local(&ex, async {}).expect_err("refused after shutdown");
    assert!(err.is_shutdown());
    assert!(LocalSpawn::status_local(&ex).unwrap_err().is_shutdown());
}

#[test]
fn free_block_on_runs_spawned_tasks_and_drops_leftovers() {
    let drops = DropCounter::new();
    let leftover_handles: Rc<RefCell<Vec<JoinHandle<()>>>> = Rc::default();
    let sum = warden::block_on({
        let drops = drops.clone();
        let leftover_handles = leftover_handles.clone();
        async move {
            let handles: Vec<_> = (1..=4u64)
                .map(|i| {
                    warden::spawn(async move {
                        warden::yield_now().await;
                        i * 10
                    })
                })
                .collect();
            let local = warden::spawn_local(async { Rc::new(5u64) });
            for _ in 0..3 {
                let token = drops.token();
                leftover_handles
                    .borrow_mut()
                    .push(warden::spawn(async move {
                        let _token = token;
                        pending::<()>().await
                    }));
            }
            let mut sum = *local.await.unwrap();
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        }
    });
    assert_eq!(sum, 105);
    assert_eq!(
        drops.count(),
        3,
        "block_on's executor drops the tasks still pending"
    );
    for handle in leftover_handles.borrow_mut().drain(..) {
        assert!(handle.is_finished());
        let err = futures::executor::block_on(handle).unwrap_err();
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));
    }
}

#[test]
fn root_panic_unwinds_to_the_caller() {
    let ex = LocalExecutor::new();
    let drops = DropCounter::new();
    let token = drops.token();
    let bystander = ex.spawn(async move {
        let _token = token;
        pending::<()>().await
    });
    let payload = catch_unwind(AssertUnwindSafe(|| {
        ex.block_on(unit(async {
            warden::yield_now().await;
            panic!("root boom");
        }))
    }))
    .expect_err("a panic in the root future unwinds out of block_on");
    assert_eq!(payload_text(&*payload), "root boom");
    assert_eq!(ex.metrics().panicked, 0, "the root future is not a task");

    // The thread is no longer marked as driving: no executor is current here...
    let outside = catch_unwind(|| warden::spawn(async {}).detach()).unwrap_err();
    assert!(payload_text(&*outside).contains("no warden executor is running"));
    // ...and the executor still runs.
    assert_eq!(
        ex.block_on(async { warden::spawn(async { 8 }).await.unwrap() }),
        8
    );

    drop(ex);
    assert_eq!(
        drops.count(),
        1,
        "dropping it afterwards still drops the live futures"
    );
    let err = futures::executor::block_on(bystander).unwrap_err();
    assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));
}

#[test]
fn handle_spawn_from_another_thread() {
    no_hang(|| {
        let ex = LocalExecutor::new();
        let owner = std::thread::current().id();
        let handle = ex.handle();
        let (tx, rx) = oneshot::channel();
        let spawner = std::thread::spawn(move || {
            let task = handle.spawn(async {
                warden::yield_now().await;
                std::thread::current().id()
            });
            tx.send(task).unwrap();
        });
        // block_on parks on the oneshot; the spawn and the send must wake it.
        let ran_on = ex.block_on(async { rx.await.unwrap().await.unwrap() });
        spawner.join().unwrap();
        assert_eq!(
            ran_on, owner,
            "a LocalExecutor runs every task on its owner thread"
        );

        // Many spawners at once.
        let counter = Arc::new(AtomicUsize::new(0));
        let spawners: Vec<_> = (0..4)
            .map(|_| {
                let handle = ex.handle();
                let counter = counter.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| {
                            let counter = counter.clone();
                            handle.spawn(async move {
                                counter.fetch_add(1, SeqCst);
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let handles: Vec<JoinHandle<()>> = spawners
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        ex.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
        assert_eq!(counter.load(SeqCst), 100);
    });
}

#[test]
fn shutdown_from_inside_a_task() {
    let ex = Rc::new(LocalExecutor::new());
    let drops = DropCounter::new();
    let victims: Vec<_> = (0..5)
        .map(|_| {
            let token = drops.token();
            ex.spawn(async move {
                let _token = token;
                pending::<()>().await
            })
        })
        .collect();
    ex.run_until_idle(); // all five are now waiting
    let drops_during_shutdown_call = Rc::new(Cell::new(usize::MAX));
    let stopper = ex.spawn({
        let ex = ex.clone();
        let drops = drops.clone();
        let seen = drops_during_shutdown_call.clone();
        async move {
            ex.shutdown();
            // It returns at once: the futures are dropped after this poll, not inside it.
            seen.set(drops.count());
            let late = warden::spawn(async { 1 });
            assert!(late.is_finished(), "spawns are refused once shut down");
            late.await.unwrap_err().cancel_reason().cloned()
        }
    });
    let late_reason = ex.block_on(async {
        let late_reason = stopper.await.expect("the stopper's own poll finished");
        let mut reasons = Vec::new();
        for victim in victims {
            reasons.push(victim.await.unwrap_err().cancel_reason().cloned());
        }
        (late_reason, reasons)
    });
    assert_eq!(late_reason.0, Some(CancelReason::Shutdown));
    assert!(
        late_reason
            .1
            .iter()
            .all(|r| *r == Some(CancelReason::Shutdown)),
        "{late_reason:?}"
    );
    assert_eq!(drops_during_shutdown_call.get(), 0);
    assert_eq!(drops.count(), 5);
    let m = ex.metrics();
    assert_eq!(m.live, 0, "{m:?}");
    support::assert_adds_up(&m);
}

/// The next slot: the first task that a running task spawns runs right after it, ahead of
/// tasks already queued; the tasks it spawns after that queue in order. Tasks spawned from
/// outside a task (here, before `run_until_idle`) queue in order.
#[test]
fn the_first_task_a_running_task_spawns_runs_next() {
    let ex = LocalExecutor::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let log = |n: u32| {
        let order = order.clone();
        async move { order.borrow_mut().push(n) }
    };
    ex.spawn({
        let (three, four) = (log(3), log(4));
        let order = order.clone();
        async move {
            order.borrow_mut().push(1);
            warden::spawn_local(three).detach();
            warden::spawn_local(four).detach();
        }
    })
    .detach();
    ex.spawn(log(2)).detach();
    ex.run_until_idle();
    assert_eq!(*order.borrow(), [1, 3, 2, 4]);
}

/// A task that awaits its children one by one is woken by each child's completion, but
/// those wakes queue at the back: it is polled once to spawn and once more when every
/// child is done, not once per child (which the next slot would do if a join wake could
/// fill it).
#[test]
fn a_parent_awaiting_its_children_in_turn_is_not_polled_after_each() {
    const CHILDREN: usize = 100;
    let ex = LocalExecutor::new();
    let polls = Rc::new(Cell::new(0));
    let mut body = Box::pin(async {
        let children: Vec<_> = (0..CHILDREN)
            .map(|i| warden::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for child in children {
            sum += child.await.unwrap();
        }
        sum
    });
    let parent = ex.spawn({
        let polls = polls.clone();
        std::future::poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            body.as_mut().poll(cx)
        })
    });
    assert_eq!(ex.block_on(parent).unwrap(), (0..CHILDREN).sum::<usize>());
    assert!(
        polls.get() <= 3,
        "the parent was polled {} times",
        polls.get()
    );
}

/// The next slot across `try_tick` calls and shutdown: a task left in the slot when a tick
/// ends runs first at the next tick, and one still there at shutdown has its future
/// dropped like every other live task.
#[test]
fn a_task_left_in_the_next_slot_runs_next_tick_or_is_dropped_at_shutdown() {
    let ex = LocalExecutor::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let drops = DropCounter::new();
    // The children's handles are kept: a detached `pending()` child holds no waker and
    // would be freed at once as a lost waker.
    let children = Rc::new(RefCell::new(Vec::new()));
    let spawner = |name: &'static str| {
        let order = order.clone();
        let token = drops.token();
        let children = children.clone();
        async move {
            order.borrow_mut().push(name);
            let child_order = order.clone();
            children.borrow_mut().push(warden::spawn_local(async move {
                let _token = token;
                child_order.borrow_mut().push("child");
                pending::<()>().await;
            }));
        }
    };
    ex.spawn(spawner("first")).detach();
    ex.spawn({
        let order = order.clone();
        async move { order.borrow_mut().push("queued") }
    })
    .detach();
    assert!(ex.try_tick());
    assert_eq!(*order.borrow(), ["first"], "the child waits in the slot");
    assert!(ex.try_tick());
    assert_eq!(
        *order.borrow(),
        ["first", "child"],
        "the slot goes before the queue"
    );
    ex.run_until_idle();
    assert_eq!(*order.borrow(), ["first", "child", "queued"]);

    // Leave a fresh child in the slot, then shut down.
    ex.spawn(spawner("second")).detach();
    assert!(ex.try_tick());
    assert_eq!(drops.count(), 0);
    ex.shutdown();
    assert_eq!(
        drops.count(),
        2,
        "both pending children's futures were dropped"
    );
    assert_eq!(ex.metrics().live, 0);
}

/// A join wake closes the slot only while it runs: a later, ordinary wake in the same batch
/// still fills it. `d` waits on a oneshot; `b`'s completion wakes `w` (its handle's
/// waiter), which queues at the back; then `c` wakes `d`, which runs right after `c`,
/// ahead of `e` and `w`.
#[test]
fn an_ordinary_wake_after_a_join_wake_still_fills_the_slot() {
    let ex = LocalExecutor::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let log = |name: &'static str| {
        let order = order.clone();
        move || order.borrow_mut().push(name)
    };
    let (tx, rx) = oneshot::channel::<()>();
    let d = log("d");
    ex.spawn(async move {
        rx.await.unwrap();
        d();
    })
    .detach();
    let (b_log, w_log, c_log, e_log) = (log("b"), log("w"), log("c"), log("e"));
    let b: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let b_slot = b.clone();
    ex.spawn(async move {
        let handle = b_slot.borrow_mut().take().expect("b was spawned");
        handle.await.unwrap();
        w_log();
    })
    .detach();
    *b.borrow_mut() = Some(ex.spawn(async move { b_log() }));
    ex.spawn(async move {
        c_log();
        tx.send(()).unwrap();
    })
    .detach();
    ex.spawn(async move { e_log() }).detach();
    ex.run_until_idle();
    assert_eq!(*order.borrow(), ["b", "c", "d", "e", "w"]);
}

/// `warden::spawn_local_named` and `TaskGroup::spawn_local_named` name a `!Send` task.
#[test]
fn spawn_local_named_names_a_task_that_is_not_send() {
    use std::rc::Rc;
    let ex = warden::LocalExecutor::new();
    let (plain, member) = ex.block_on(async {
        let shared = Rc::new(5);
        let plain = warden::spawn_local_named("rc-reader", {
            let shared = shared.clone();
            async move {
                if *shared == 5 {
                    panic!("five");
                }
            }
        });
        let group = ex.group();
        let member = group.spawn_local_named("rc-member", async move {
            Err::<(), _>(format!("{} is odd", *shared))
        });
        let member = member.await.unwrap_err();
        let _ = group.join().await;
        (plain.await.unwrap_err(), member)
    });
    assert_eq!(plain.task().name(), Some("rc-reader"));
    assert!(
        plain.to_string().starts_with("task 'rc-reader' #"),
        "{plain}"
    );
    assert_eq!(plain.task().spawned_at().file(), file!());
    assert_eq!(member.task().name(), Some("rc-member"));
    assert!(member.to_string().ends_with("failed: 5 is odd"), "{member}");
}

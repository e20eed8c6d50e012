//! Misbehaving tasks: blocking polls reported while they block, lost wakers reported (and
//! freed) when they are lost, deadlocks on a wakerless task's handle.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use warden::{Builder, CancelReason, Stall, StallKind, TaskExit, TaskId};

/// Generous: the machine may be loaded.
const THRESHOLD: Duration = Duration::from_millis(50);
/// A spin that the test expects to be cut short by a report; failing that, the test fails
/// after this long instead of hanging.
const GIVE_UP: Duration = Duration::from_secs(60);

/// An `on_stall` hook that records every report, and a flag raised by the first report
/// of a poll still blocking.
#[derive(Clone, Default)]
struct Reports {
    seen: Arc<Mutex<Vec<Stall>>>,
    blocking: Arc<AtomicBool>,
}

impl Reports {
    fn builder(&self, threshold: Option<Duration>) -> Builder {
        let reports = self.clone();
        Builder::new()
            .blocking_threshold(threshold)
            .on_stall(move |stall| {
                if matches!(
                    stall.kind(),
                    StallKind::Blocking {
                        finished: false,
                        ..
                    }
                ) {
                    reports.blocking.store(true, Ordering::SeqCst);
                }
                reports.seen.lock().unwrap().push(stall.clone());
            })
    }

    fn all(&self) -> Vec<Stall> {
        self.seen.lock().unwrap().clone()
    }
}

/// Spins until `stop` is raised (or `GIVE_UP` passes); returns whether `stop` was raised.
fn spin_until(stop: &AtomicBool) -> bool {
    let start = Instant::now();
    while start.elapsed() < GIVE_UP {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

mod blocking {
    use super::*;

    rt_test! {
        /// The report arrives while the poll still runs: the spinning task stops only when the
        /// hook has raised the flag. Then the poll's end is reported too.
        fn a_spinning_task_is_reported_while_it_spins(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(Some(THRESHOLD)));
            let flag = reports.blocking.clone();
            let spinner = rt.spawn_named("spinner", async move { spin_until(&flag) });
            let id = spinner.id();
            assert!(rt.block_on(spinner).unwrap(), "no report came while the task spun");
            let all = reports.all();
            let mine: Vec<_> = all.iter().filter(|s| s.task().id() == id).collect();
            assert_eq!(mine.len(), 2, "{all:?}");
            let (during, after) = (mine[0], mine[1]);
            assert_eq!(during.task().name(), Some("spinner"));
            assert_eq!(during.task().spawned_at().file(), file!());
            assert!(during.thread().is_some(), "{during:?}");
            match (during.kind(), after.kind()) {
                (
                    StallKind::Blocking { elapsed: so_far, finished: false },
                    StallKind::Blocking { elapsed: total, finished: true },
                ) => {
                    assert!(*so_far >= THRESHOLD, "{so_far:?}");
                    assert!(total >= so_far, "{total:?} < {so_far:?}");
                }
                other => panic!("{other:?}"),
            }
            let text = during.to_string();
            assert!(text.contains("'spinner'") && text.contains(file!()), "{text}");
        }

        /// After an idle spell (every polling thread parked, the watchdog dozing), the
        /// first poll that blocks is still reported while it blocks.
        fn a_spin_after_an_idle_spell_is_reported(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(Some(THRESHOLD)));
            rt.block_on(warden::sleep(Duration::from_millis(300)));
            let flag = reports.blocking.clone();
            let spinner = rt.spawn(async move { spin_until(&flag) });
            assert!(rt.block_on(spinner).unwrap(), "no report came while the task spun");
        }

        /// Threshold off: a long poll is nobody's business.
        fn no_report_with_the_threshold_off(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(None));
            rt.block_on(rt.spawn(async { std::thread::sleep(Duration::from_millis(300)) }))
                .unwrap();
            assert!(reports.all().is_empty(), "{:?}", reports.all());
        }

        /// A short poll is not reported, however many there are.
        fn short_polls_are_not_reported(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(Some(Duration::from_secs(5))));
            rt.block_on(rt.spawn(async {
                for _ in 0..1000 {
                    warden::yield_now().await;
                }
            }))
            .unwrap();
            assert!(reports.all().is_empty(), "{:?}", reports.all());
        }
    }
}

/// On a 2-worker pool, a task that spawns a child and then blocks its worker: the child
/// (in the blocked worker's run-next slot) runs on the other worker during the block.
#[test]
fn a_blocked_workers_child_runs_on_the_idle_worker() {
    let reports = Reports::default();
    let ex = reports.builder(Some(THRESHOLD)).worker_threads(2).build();
    let child_ran = Arc::new(AtomicBool::new(false));
    let parent = ex.spawn({
        let child_ran = child_ran.clone();
        async move {
            let flag = child_ran.clone();
            let child = warden::spawn(async move { flag.store(true, Ordering::SeqCst) });
            let start = Instant::now();
            let mut ran_during_spin = false;
            while start.elapsed() < Duration::from_secs(1) {
                ran_during_spin |= child_ran.load(Ordering::SeqCst);
                std::hint::spin_loop();
            }
            child.await.unwrap();
            ran_during_spin
        }
    });
    assert!(
        ex.block_on(parent).unwrap(),
        "the child waited for the spin to end"
    );
}

/// A future with a bug: it returns `Pending` once without keeping its waker (or, with a
/// shared slot, keeps it there for someone else to drop), then never completes.
struct ForgetsItsWaker {
    _token: support::DropToken,
    keep_in: Option<Arc<Mutex<Option<Waker>>>>,
}

impl Future for ForgetsItsWaker {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(slot) = &self.keep_in {
            *slot.lock().unwrap() = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Each cancelled task's id and cancel reason (`Debug`), as the outcome hook saw them.
type Exits = Arc<Mutex<Vec<(TaskId, String)>>>;

/// Records every task's exit reason.
fn exits_hook(builder: Builder) -> (Builder, Exits) {
    let exits = Arc::new(Mutex::new(Vec::new()));
    let builder = builder.on_task_exit({
        let exits = exits.clone();
        move |info, exit| {
            if let TaskExit::Cancelled(reason) = exit {
                exits
                    .lock()
                    .unwrap()
                    .push((info.id(), format!("{reason:?}")));
            }
        }
    });
    (builder, exits)
}

fn metrics_add_up(m: &warden::Metrics) {
    assert_eq!(
        m.spawned,
        m.completed + m.panicked + m.errored + m.cancelled + m.live,
        "{m}"
    );
}

/// Drives `rt` until `done` (yielding), or fails after `GIVE_UP`.
fn drive_until(rt: &support::Rt, done: impl Fn() -> bool) {
    rt.block_on(async {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < GIVE_UP, "gave up waiting");
            std::thread::yield_now();
            warden::yield_now().await;
        }
    });
}

mod lost {
    use super::*;

    rt_test! {
        /// The poll returns with no waker kept: reported once, then freed at once (its
        /// destructor runs), ending cancelled with `LostWaker`; the counters add up.
        fn a_future_that_drops_its_waker_is_reported_once_and_freed(flavor) {
            let reports = Reports::default();
            let trace = std::env::temp_dir().join(format!(
                "warden-stall-lost-{}-{flavor:?}.json",
                std::process::id()
            ));
            let (builder, exits) = exits_hook(reports.builder(None).trace(&trace));
            let rt = flavor.build(builder);
            let drops = support::DropCounter::new();
            let task = rt.spawn_named("forgetful", ForgetsItsWaker { _token: drops.token(), keep_in: None });
            let id = task.id();
            task.detach();
            drive_until(&rt, || drops.count() == 1);
            let all = reports.all();
            assert_eq!(all.len(), 1, "{all:?}");
            assert_eq!(all[0].task().id(), id);
            assert_eq!(all[0].task().name(), Some("forgetful"));
            assert_eq!(all[0].kind(), &StallKind::LostWaker);
            drive_until(&rt, || !exits.lock().unwrap().is_empty());
            assert_eq!(*exits.lock().unwrap(), vec![(id, "LostWaker".to_owned())]);
            let m = rt.metrics();
            assert_eq!((m.cancelled, m.live), (1, 0), "{m}");
            metrics_add_up(&m);
            drop(rt);
            assert_eq!(reports.all().len(), 1, "reported again at shutdown");
            let json = std::fs::read_to_string(&trace).unwrap();
            let _ = std::fs::remove_file(&trace);
            assert!(json.contains(&CancelReason::LostWaker.to_string()), "{json}");
        }

        /// The waker is kept elsewhere and dropped later, unwoken: the task is reported (and
        /// freed) when that last waker goes, not before.
        fn a_waker_dropped_later_is_reported_when_it_goes(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(None));
            let drops = support::DropCounter::new();
            let slot = Arc::new(Mutex::new(None));
            rt.spawn(ForgetsItsWaker { _token: drops.token(), keep_in: Some(slot.clone()) })
                .detach();
            drive_until(&rt, || slot.lock().unwrap().is_some());
            assert!(reports.all().is_empty(), "{:?}", reports.all());
            assert_eq!(drops.count(), 0);
            let waker = slot.lock().unwrap().take().unwrap();
            drop(waker);
            drive_until(&rt, || drops.count() == 1);
            assert_eq!(reports.all().len(), 1);
            assert_eq!(reports.all()[0].kind(), &StallKind::LostWaker);
        }

        /// `pending()` in a group waits for the group's cancel: normal, never reported; nor is
        /// a task whose handle exists but is not awaited.
        fn pending_group_members_and_held_handles_are_not_reported(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(None));
            let held = rt.spawn(std::future::pending::<()>());
            let group = rt.group();
            group.spawn(std::future::pending::<()>()).detach();
            group.spawn(std::future::pending::<()>()).detach();
            rt.block_on(async {
                for _ in 0..50 {
                    warden::yield_now().await;
                }
            });
            group.cancel();
            held.cancel();
            rt.block_on(async {
                let _ = held.await;
                let _ = group.join().await;
            });
            drop(rt);
            assert!(reports.all().is_empty(), "{:?}", reports.all());
        }

        /// A task that no waker can reach, whose handle another task awaits: one deadlock
        /// report naming both.
        fn awaiting_a_wakerless_task_is_one_deadlock_report(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(None));
            let drops = support::DropCounter::new();
            let stuck = rt.spawn_named("stuck", ForgetsItsWaker { _token: drops.token(), keep_in: None });
            let stuck_id = stuck.id();
            let waiter = rt.spawn_named("waiter", async move {
                let _ = stuck.await;
            });
            let waiter_id = waiter.id();
            drive_until(&rt, || !reports.all().is_empty());
            // Give a second report every chance to appear.
            rt.block_on(async {
                for _ in 0..50 {
                    warden::yield_now().await;
                }
            });
            let all = reports.all();
            assert_eq!(all.len(), 1, "{all:?}");
            assert_eq!(all[0].task().id(), stuck_id);
            assert_eq!(all[0].kind(), &StallKind::Deadlock { awaited_by: waiter_id });
            assert_eq!(drops.count(), 0, "a deadlocked task is left alone");
            let text = all[0].to_string();
            assert!(text.contains(&waiter_id.to_string()) && text.contains("'stuck'"), "{text}");
            waiter.cancel();
            rt.block_on(async { let _ = waiter.await; });
        }

        /// Woken by value (the wake consumes the last waker) and still queued: no waker
        /// exists, but the task is queued, so it is not reported; it runs and finishes.
        fn a_task_woken_by_value_and_queued_is_not_reported(flavor) {
            let reports = Reports::default();
            let rt = flavor.build(reports.builder(None));
            let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
            let finished = Arc::new(AtomicBool::new(false));
            let polls = Arc::new(AtomicUsize::new(0));
            rt.spawn({
                let (slot, finished, polls) = (slot.clone(), finished.clone(), polls.clone());
                std::future::poll_fn(move |cx| {
                    if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                        *slot.lock().unwrap() = Some(cx.waker().clone());
                        Poll::Pending
                    } else {
                        finished.store(true, Ordering::SeqCst);
                        Poll::Ready(())
                    }
                })
            })
            .detach();
            rt.block_on(async {
                let start = Instant::now();
                while slot.lock().unwrap().is_none() {
                    assert!(start.elapsed() < GIVE_UP);
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
                // Wakes by value, from inside the root future: the task is queued behind us,
                // with no waker left anywhere.
                slot.lock().unwrap().take().unwrap().wake();
                assert!(reports.all().is_empty(), "{:?}", reports.all());
            });
            // The poll sets `finished` before it returns; on a pool the worker counts the
            // task's end after that, so wait for the count too.
            drive_until(&rt, || {
                finished.load(Ordering::SeqCst) && rt.metrics().live == 0
            });
            assert!(reports.all().is_empty(), "{:?}", reports.all());
            let m = rt.metrics();
            assert_eq!((m.completed, m.cancelled), (1, 0), "{m}");
        }
    }
}

/// A supervisor awaits every running child's handle (and cancels them itself): a child
/// that waits, waker-less, to be cancelled is no deadlock.
#[test]
fn supervisor_children_waiting_to_be_cancelled_are_not_deadlocks() {
    let reports = Reports::default();
    let ex = reports.builder(None).build_local();
    let sup = warden::Supervisor::new(warden::Strategy::OneForAll)
        .child(warden::Child::new("service", || {
            std::future::pending::<()>()
        }))
        .child(
            warden::Child::new("short", || async {
                for _ in 0..20 {
                    warden::yield_now().await;
                }
                Err::<(), _>("done")
            })
            .restart(warden::Restart::Temporary),
        );
    let sup = ex.spawn(sup.run());
    ex.block_on(async {
        for _ in 0..50 {
            warden::yield_now().await;
        }
    });
    sup.cancel();
    let _ = ex.block_on(sup);
    assert!(reports.all().is_empty(), "{:?}", reports.all());
}

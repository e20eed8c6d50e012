//! The outcome hook (`Builder::on_task_exit`), on both executors: over 10 000 mixed tasks
//! (completed, panicked, a group's `Err`, cancelled through the handle, by a sibling's
//! failure and by shutdown) it is called exactly once per task, with the right kind, and its
//! counts match `Metrics`; a panicking hook breaks neither the executor nor its workers.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::{HookLog, assert_adds_up, unit};
use warden::{Backtraces, Builder, CancelReason, JoinHandle, TaskExit, TaskGroup, TaskId};

/// How a task ended, as the hook reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Completed,
    Panicked,
    Errored,
    Cancelled(CancelReason),
}

impl Kind {
    fn of(exit: &TaskExit<'_>) -> Kind {
        match exit {
            TaskExit::Completed => Kind::Completed,
            TaskExit::Failed(err) if err.is_panic() => Kind::Panicked,
            TaskExit::Failed(err) => {
                assert!(
                    err.is_error(),
                    "a failure that is neither panic nor error: {err}"
                );
                Kind::Errored
            }
            TaskExit::Cancelled(reason) => Kind::Cancelled((*reason).clone()),
        }
    }
}

/// Every call of the hook: the first kind seen per task, and any task seen twice.
#[derive(Debug, Clone, Default)]
struct Exits {
    seen: Arc<Mutex<HashMap<TaskId, Kind>>>,
    twice: Arc<Mutex<Vec<(TaskId, Kind, Kind)>>>,
}

impl Exits {
    fn record(&self, id: TaskId, kind: Kind) {
        let previous = self.seen.lock().unwrap().insert(id, kind.clone());
        if let Some(previous) = previous {
            self.twice.lock().unwrap().push((id, previous, kind));
        }
    }

    fn count(&self, kind: &Kind) -> u64 {
        self.seen
            .lock()
            .unwrap()
            .values()
            .filter(|k| *k == kind)
            .count() as u64
    }

    fn count_cancelled(&self) -> u64 {
        let seen = self.seen.lock().unwrap();
        seen.values()
            .filter(|k| matches!(k, Kind::Cancelled(_)))
            .count() as u64
    }
}

const OK: usize = 3000;
const GROUP_OK: usize = 1000;
const GROUP_ERR: usize = 1400;
const SIBLINGS: usize = 99;
const PANICS: usize = 1500;
const CANCELLED: usize = 1500;
const AT_SHUTDOWN: usize = 1500;
const TOTAL: usize = OK + GROUP_OK + GROUP_ERR + 1 + SIBLINGS + PANICS + CANCELLED + AT_SHUTDOWN;

fn pending() -> impl Future<Output = ()> + Send + 'static {
    std::future::pending()
}

rt_test! {
    fn called_once_per_task_and_matches_metrics(flavor) {
        assert_eq!(TOTAL, 10_000);
        assert_eq!(OK, 2 * PANICS);
        assert_ne!((GROUP_OK + GROUP_ERR) % 7, 0, "7 must be coprime with the group size");
        let exits = Exits::default();
        let unhandled = HookLog::new();
        let rt = flavor.build(
            unhandled
                .builder()
                .backtraces(Backtraces::Off)
                .on_task_exit({
                    let exits = exits.clone();
                    move |info, exit| exits.record(info.id(), Kind::of(exit))
                }),
        );
        let mut ids = Vec::with_capacity(TOTAL);
        fn keep<T>(ids: &mut Vec<TaskId>, h: JoinHandle<T>) -> JoinHandle<T> {
            ids.push(h.id());
            h
        }

        // Interleave the kinds, so that both executors see them mixed in their queues.
        // Only `TaskGroup::supervisor()` makes a supervisor, on the current executor.
        let supervisor = rt.block_on(async { TaskGroup::supervisor() });
        let fail_fast = rt.group();
        let mut ok = Vec::new();
        let mut panics = Vec::new();
        let mut cancel = Vec::new();
        let mut shutdown = Vec::new();
        for i in 0..PANICS {
            for _ in 0..2 {
                ok.push(keep(&mut ids, rt.spawn(async move { i })));
            }
            // Half the panics are awaited, half detached (they reach the error hook).
            let p = keep(&mut ids, rt.spawn(unit(async { panic!("task panic") })));
            if i % 2 == 0 {
                panics.push(p);
            } else {
                p.detach();
            }
            cancel.push(keep(&mut ids, rt.spawn(pending())));
            shutdown.push(keep(&mut ids, rt.spawn(pending())));
        }
        for i in 0..(GROUP_OK + GROUP_ERR) {
            // `i -> 7i mod n` is a permutation (7 and n are coprime): exactly GROUP_ERR errors,
            // spread out.
            let h = if (i * 7) % (GROUP_OK + GROUP_ERR) < GROUP_ERR {
                supervisor.spawn(async { Err::<(), _>("group error") })
            } else {
                supervisor.spawn(async { Ok::<(), &str>(()) })
            };
            keep(&mut ids, h).detach();
        }
        for _ in 0..SIBLINGS {
            keep(&mut ids, fail_fast.spawn(pending())).detach();
        }
        let failing = keep(&mut ids, fail_fast.spawn(async {
            warden::yield_now().await;
            Err::<(), _>("first failure")
        }));
        failing.detach();
        assert_eq!(ids.len(), TOTAL);

        rt.block_on(async {
            for h in cancel.iter() {
                h.cancel();
            }
            for (i, h) in ok.into_iter().enumerate() {
                assert_eq!(h.await.unwrap(), i / 2);
            }
            for h in panics {
                assert!(h.await.unwrap_err().is_panic());
            }
            for h in cancel {
                let err = h.await.unwrap_err();
                assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
            }
            let report = supervisor.join().await.unwrap_err();
            assert_eq!(report.failures().len(), GROUP_ERR);
            assert_eq!(report.cancelled(), 0);
            let report = fail_fast.join().await.unwrap_err();
            assert_eq!(report.failures().len(), 1);
            assert_eq!(report.cancelled(), SIBLINGS);
        });
        rt.shutdown();
        for h in shutdown {
            assert!(h.is_finished());
        }

        // Exactly once per task.
        let twice = exits.twice.lock().unwrap().clone();
        assert!(twice.is_empty(), "the hook saw tasks twice: {:?}", &twice[..twice.len().min(5)]);
        {
            let seen = exits.seen.lock().unwrap();
            assert_eq!(seen.len(), TOTAL);
            let missing: Vec<_> = ids.iter().filter(|id| !seen.contains_key(id)).take(5).collect();
            assert!(missing.is_empty(), "the hook never saw {missing:?}");
        }

        // The kinds match what the tasks did...
        let sibling_failed = {
            let seen = exits.seen.lock().unwrap();
            seen.values()
                .filter(|k| matches!(k, Kind::Cancelled(CancelReason::SiblingFailed(_))))
                .count()
        };
        assert_eq!(exits.count(&Kind::Completed), (OK + GROUP_OK) as u64);
        assert_eq!(exits.count(&Kind::Panicked), PANICS as u64);
        assert_eq!(exits.count(&Kind::Errored), (GROUP_ERR + 1) as u64);
        assert_eq!(exits.count(&Kind::Cancelled(CancelReason::Explicit(None))), CANCELLED as u64);
        assert_eq!(exits.count(&Kind::Cancelled(CancelReason::Shutdown)), AT_SHUTDOWN as u64);
        assert_eq!(sibling_failed, SIBLINGS);

        // ... and Metrics.
        let m = rt.metrics();
        assert_adds_up(&m);
        assert_eq!(m.spawned, TOTAL as u64);
        assert_eq!(m.live, 0);
        assert_eq!(m.completed, exits.count(&Kind::Completed));
        assert_eq!(m.panicked, exits.count(&Kind::Panicked));
        assert_eq!(m.errored, exits.count(&Kind::Errored));
        assert_eq!(m.cancelled, exits.count_cancelled());

        // The error hook saw the detached panics only: awaited and joined failures are
        // observed, and cancellations are not failures.
        assert_eq!(unhandled.len(), PANICS / 2);
    }

    fn a_panicking_hook_breaks_nothing(flavor) {
        let calls = Arc::new(AtomicUsize::new(0));
        let rt = flavor.build(Builder::new().backtraces(Backtraces::Off).on_task_exit({
            let calls = calls.clone();
            move |info, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                if info.name() != Some("spared") {
                    panic!("the exit hook panics");
                }
            }
        }));
        // Enough tasks that every worker runs the hook (and survives it) many times.
        let handles: Vec<_> = (0..200).map(|i| rt.spawn(async move { i })).collect();
        let failing = rt.spawn(unit(async { panic!("a task panic") }));
        let group = rt.group();
        group.spawn(async { Err::<(), _>("e") }).detach();
        let left = rt.spawn(pending());
        rt.block_on(async {
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await.unwrap(), i);
            }
            let err = failing.await.unwrap_err();
            assert_eq!(err.panic_message(), Some("a task panic"));
            assert!(group.join().await.is_err());
        });
        assert_eq!(calls.load(Ordering::SeqCst), 202);

        // The executor still runs tasks afterwards, on every worker, and a hook that
        // returns normally sees them.
        let spared = rt.spawn_named("spared", async { 5 });
        assert_eq!(rt.block_on(spared).unwrap(), 5);
        let more: Vec<_> = (0..100).map(|i| rt.spawn(async move { i * 2 })).collect();
        let sum = rt.block_on(async {
            let mut sum = 0;
            for h in more {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 9900);

        // Shutdown runs the hook too (for `left`), and survives its panic.
        rt.shutdown();
        assert!(left.is_finished());
        assert_eq!(calls.load(Ordering::SeqCst), 304);
        let m = rt.metrics();
        assert_adds_up(&m);
        assert_eq!((m.spawned, m.completed, m.panicked, m.errored, m.cancelled, m.live), (304, 301, 1, 1, 1, 0));
    }
}

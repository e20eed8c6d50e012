//! Misbehaving tasks: blocking polls reported while they block, lost wakers reported (and
//! freed) when they are lost, deadlocks on a wakerless task's handle.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use warden::{Builder, Stall, StallKind};

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
                if matches!(stall.kind(), StallKind::Blocking { finished: false, .. }) {
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
    assert!(ex.block_on(parent).unwrap(), "the child waited for the spin to end");
}

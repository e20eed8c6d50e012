//! Per-task poll timing (`Builder::poll_timing`), on both executors: over a mix of tasks
//! (yielding, panicking, a group's `Err`, cancelled before and after their first poll,
//! cancelled at shutdown) the timings on the exits add up to `Metrics` (polls, busy time,
//! scheduled wait); a poll that sleeps counts as busy and as the longest poll; a task that
//! waits on a queue behind a sleeping poll counts that wait (first-poll delay, scheduled
//! wait); the trace's ending event carries the timing; and with timing off every exit's
//! `timing()` is `None` and `Metrics` count no time.

mod support;

use std::collections::HashMap;
use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use support::{Flavor, Rt, bounded, unit};
use warden::{Builder, PollTiming, TaskExit, TaskId};

/// How long the sleeping polls sleep: busy times and waits must be at least this.
const SLEPT: Duration = Duration::from_millis(15);

/// Every exit's timing, by task id (`None` where the exit had none); `copies` counts exits
/// whose copy (`*exit`) had a timing, which it must not.
#[derive(Clone, Default)]
struct Timings {
    seen: Arc<Mutex<HashMap<TaskId, Option<PollTiming>>>>,
    copies: Arc<Mutex<usize>>,
}

impl Timings {
    fn builder(&self, timing: bool) -> Builder {
        let this = self.clone();
        Builder::new()
            .poll_timing(timing)
            .on_task_exit(move |info, exit: &TaskExit<'_>| {
                let copy = *exit;
                if copy.timing().is_some() {
                    *this.copies.lock().unwrap() += 1;
                }
                let previous = this
                    .seen
                    .lock()
                    .unwrap()
                    .insert(info.id(), exit.timing().copied());
                assert!(previous.is_none(), "two exits for {info}");
            })
    }

    fn get(&self, id: TaskId) -> Option<PollTiming> {
        *self
            .seen
            .lock()
            .unwrap()
            .get(&id)
            .expect("the task has exited")
    }
}

/// A task that yields `n` times: `n + 1` polls.
async fn yields(n: usize) {
    for _ in 0..n {
        warden::yield_now().await;
    }
}

rt_test! {
    fn timings_add_up_to_the_metrics(flavor) {
        bounded(move || add_up(flavor));
    }

    fn a_sleeping_poll_is_busy_time(flavor) {
        bounded(move || {
            let timings = Timings::default();
            let rt = flavor.build(timings.builder(true));
            let task = rt.spawn(async {
                warden::yield_now().await;
                std::thread::sleep(SLEPT);
                warden::yield_now().await;
            });
            let id = task.id();
            rt.block_on(task).unwrap();
            rt.shutdown();
            let timing = timings.get(id).expect("poll timing is on");
            assert_eq!(timing.polls, 3);
            assert!(timing.busy >= SLEPT, "{timing:?}");
            assert!(timing.longest >= SLEPT, "{timing:?}");
            assert!(timing.busy >= timing.longest, "{timing:?}");
            assert!(rt.metrics().busy >= SLEPT);
        });
    }

    fn waiting_behind_a_sleeping_poll_is_scheduled_wait(flavor) {
        bounded(move || {
            let timings = Timings::default();
            // One worker, so that the tasks below wait for the sleeping poll to end.
            let rt = one_thread(flavor, timings.builder(true));
            let (ids_tx, ids_rx) = std::sync::mpsc::channel();
            rt.block_on(rt.spawn(async move {
                // Spawned during this poll: its first poll waits at least SLEPT.
                let late = warden::spawn(async {});
                // Woken during this poll (it waits on the channel first): its second
                // poll waits at least SLEPT.
                let (tx, rx) = oneshot::channel::<()>();
                let woken = warden::spawn(async move {
                    let _ = rx.await;
                });
                ids_tx.send((late.id(), woken.id())).unwrap();
                warden::yield_now().await; // `woken` runs and waits; `late` finishes
                tx.send(()).unwrap();
                std::thread::sleep(SLEPT);
                late.await.unwrap();
                woken.await.unwrap();
            }))
            .unwrap();
            rt.shutdown();
            let (late, woken) = ids_rx.recv().unwrap();
            let late = timings.get(late).unwrap();
            assert_eq!(late.polls, 1);
            assert!(late.first_poll_delay <= late.scheduled_wait, "{late:?}");
            let woken = timings.get(woken).unwrap();
            assert_eq!(woken.polls, 2);
            assert!(woken.scheduled_wait >= SLEPT, "{woken:?}");
            assert!(woken.scheduled_wait >= woken.first_poll_delay, "{woken:?}");
        });
    }

    fn the_first_poll_waits_behind_its_spawner(flavor) {
        bounded(move || {
            let timings = Timings::default();
            let rt = one_thread(flavor, timings.builder(true));
            let child = rt.block_on(rt.spawn(async {
                let child = warden::spawn(async {});
                std::thread::sleep(SLEPT);
                let id = child.id();
                child.await.unwrap(); // so that shutdown finds it finished
                id
            }))
            .unwrap();
            rt.shutdown();
            let child = timings.get(child).unwrap();
            assert_eq!(child.polls, 1);
            assert!(child.first_poll_delay >= SLEPT, "{child:?}");
            assert_eq!(child.scheduled_wait, child.first_poll_delay, "one wait only");
        });
    }

    fn off_means_no_timing(flavor) {
        bounded(move || {
            let timings = Timings::default();
            let rt = flavor.build(timings.builder(false));
            let task = rt.spawn(async {
                std::thread::sleep(Duration::from_millis(1));
                warden::yield_now().await;
            });
            let id = task.id();
            rt.block_on(task).unwrap();
            rt.shutdown();
            assert_eq!(timings.get(id), None);
            let m = rt.metrics();
            assert_eq!((m.busy, m.scheduled_wait), (Duration::ZERO, Duration::ZERO));
            assert_eq!(m.polls, 2);
        });
    }

    fn the_trace_shows_the_timing_at_the_end(flavor) {
        bounded(move || {
            let path = std::env::temp_dir().join(format!(
                "warden-poll-timing-{}-{flavor:?}.json",
                std::process::id()
            ));
            let rt = flavor.build(Builder::new().poll_timing(true).trace(&path));
            let done = rt.spawn_named("timed", yields(2));
            let failed = rt.spawn_named("failing", async {
                warden::yield_now().await;
                panic!("on purpose");
            });
            let id = done.id();
            rt.block_on(done).unwrap();
            let failed_id = failed.id();
            assert!(rt.block_on(failed).is_err());
            rt.shutdown();
            drop(rt);
            let text = std::fs::read_to_string(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            let event = |name: String| {
                text.lines()
                    .find(|l| l.contains(&format!("\"name\":\"{name}\"")))
                    .unwrap_or_else(|| panic!("no event {name:?} in {text}"))
                    .to_owned()
            };
            let done = event(format!("done timed {id}"));
            assert!(done.contains("\"polls\":\"3\""), "{done}");
            for arg in ["busy_us", "longest_poll_us", "scheduled_wait_us", "first_poll_delay_us"] {
                assert!(done.contains(&format!("\"{arg}\":")), "{arg} missing: {done}");
            }
            let panic = event(format!("panic failing {failed_id}"));
            assert!(panic.contains("\"polls\":\"2\""), "{panic}");
        });
    }
}

/// `builder`'s executor with one thread running tasks, so that a task that sleeps in its
/// poll holds up every other.
fn one_thread(flavor: Flavor, builder: warden::Builder) -> Rt {
    match flavor {
        Flavor::Local => Rt::Local(builder.build_local()),
        Flavor::Pool => Rt::Pool(builder.worker_threads(1).build()),
    }
}

fn add_up(flavor: Flavor) {
    let timings = Timings::default();
    let rt = flavor.build(timings.builder(true));
    let mut handles = Vec::new();
    for i in 0..200 {
        handles.push(rt.spawn(yields(i % 7)));
    }
    for i in 0..20 {
        handles.push(rt.spawn(async move {
            warden::yield_now().await;
            if i % 2 == 0 {
                panic!("on purpose");
            }
        }));
    }
    let group = rt.group();
    for i in 0..20 {
        group
            .spawn(async move {
                warden::yield_now().await;
                if i == 3 { Err("on purpose") } else { Ok(()) }
            })
            .detach();
    }
    // Cancelled before any poll, and after one.
    let never = rt.spawn(pending::<()>());
    never.cancel();
    let once = rt.spawn(pending::<()>());
    let at_shutdown: Vec<_> = (0..10).map(|_| rt.spawn(unit(pending()))).collect();
    rt.block_on(async {
        for handle in handles {
            let _ = handle.await;
        }
        let _ = group.join().await;
        let _ = never.await;
        warden::yield_now().await;
    });
    once.cancel();
    let _ = rt.block_on(once);
    rt.shutdown();
    drop(at_shutdown);

    let m = rt.metrics();
    assert_eq!(m.live, 0);
    let seen = timings.seen.lock().unwrap();
    assert_eq!(seen.len() as u64, m.spawned, "one exit per task");
    let all: Vec<PollTiming> = seen
        .values()
        .map(|t| t.expect("poll timing is on"))
        .collect();
    assert_eq!(all.iter().map(|t| t.polls).sum::<u64>(), m.polls);
    assert_eq!(all.iter().map(|t| t.busy).sum::<Duration>(), m.busy);
    assert_eq!(
        all.iter().map(|t| t.scheduled_wait).sum::<Duration>(),
        m.scheduled_wait
    );
    for t in &all {
        assert!(t.longest <= t.busy, "{t:?}");
        assert!(t.first_poll_delay <= t.scheduled_wait, "{t:?}");
        if t.polls == 0 {
            assert_eq!(*t, PollTiming::default(), "never polled, nothing timed");
        }
    }
    assert_eq!(
        *timings.copies.lock().unwrap(),
        0,
        "a copy of an exit had a timing"
    );
}

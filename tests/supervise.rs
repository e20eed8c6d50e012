//! Supervision: strategies, restart types, intensity, escalation, cancellation from
//! outside, backoff, history and reports, on both executors.
//!
//! Every test runs on an executor with a manual clock, so time moves only when a test
//! says so. What is asserted are recorded sequences (which child started, which was
//! cancelled, in what order), never timings. Children record their own starts (the
//! factory runs in the supervisor, so starts are in the supervisor's order) and their
//! cancellations (a guard in the child's future, dropped by the executor when the
//! supervisor cancels it; the supervisor waits for each before the next). A child's own
//! failure is recorded apart, since on the pool it can interleave with its siblings'
//! starts. Every test body runs under a watchdog: a hang fails it after 30 s.

mod support;

use std::future::{Future, pending};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use support::{Flavor, HookLog, Rt, Trace, no_hang, unit, wait_until};
use warden::supervise::NormalExit;
use warden::{
    Backoff, BoxError, Builder, CancelReason, Child, Restart, Strategy, Supervisor,
    SupervisorError, TaskExit,
};

// ---------------------------------------------------------------------------------------
// Scripted children
// ---------------------------------------------------------------------------------------

/// A child's future, boxed so that scripted children share one type.
type BoxFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// What a child does on one of its starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Panics at once.
    Panic,
    /// Returns `Err` at once.
    Fail,
    /// Returns `Ok(())` at once.
    End,
    /// Waits until cancelled.
    Pend,
}

/// Cancellations are recorded by this guard's `Drop`, while it is armed.
struct Guard {
    trace: Trace,
    name: &'static str,
    armed: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.armed {
            self.trace.push(format!("cancel {}", self.name));
        }
    }
}

/// The line of the `panic!` in scripted children, for the location checks.
static PANIC_LINE: AtomicU32 = AtomicU32::new(0);

/// A child that follows `script`, one step per start (then `Pend`), recording `start X`
/// in its factory, `cancel X` when cancelled, and `fail X` / `end X` in `failures`.
fn scripted(
    trace: &Trace,
    failures: &Trace,
    name: &'static str,
    script: &[Step],
) -> Child<impl FnMut() -> BoxFuture + Send + 'static> {
    let trace = trace.clone();
    let failures = failures.clone();
    let script = script.to_vec();
    let mut starts = 0usize;
    Child::new(name, move || {
        let step = script.get(starts).copied().unwrap_or(Step::Pend);
        starts += 1;
        trace.push(format!("start {name}"));
        let guard = Guard {
            trace: trace.clone(),
            name,
            armed: true,
        };
        let failures = failures.clone();
        let future: BoxFuture = Box::pin(async move {
            let mut guard = guard; // the whole guard, not only the field the arms assign
            match step {
                Step::Panic => {
                    guard.armed = false;
                    failures.push(format!("fail {name}"));
                    PANIC_LINE.store(line!() + 1, Ordering::SeqCst);
                    panic!("{name} broke");
                }
                Step::Fail => {
                    guard.armed = false;
                    failures.push(format!("fail {name}"));
                    Err(format!("{name} failed").into())
                }
                Step::End => {
                    guard.armed = false;
                    failures.push(format!("end {name}"));
                    Ok(())
                }
                Step::Pend => pending().await,
            }
        });
        future
    })
}

/// Senders that make `triggered` children fail, one per start, by child name.
#[derive(Clone, Default)]
struct Triggers(Arc<Mutex<Vec<Trigger>>>);

/// A running `triggered` child's name, and the sender that makes it fail.
type Trigger = (&'static str, futures::channel::oneshot::Sender<()>);

impl Triggers {
    /// Makes the running instance of child `name` fail.
    fn fire(&self, name: &str) {
        let mut senders = self.0.lock().unwrap();
        let at = senders
            .iter()
            .rposition(|(n, _)| *n == name)
            .expect("a running child");
        let (_, sender) = senders.remove(at);
        sender.send(()).unwrap();
    }
}

/// A child that records `start X`, then waits until `triggers.fire(X)`, then fails.
fn triggered(
    trace: &Trace,
    name: &'static str,
    triggers: &Triggers,
) -> Child<impl FnMut() -> BoxFuture + Send + 'static> {
    let trace = trace.clone();
    let triggers = triggers.clone();
    Child::new(name, move || {
        trace.push(format!("start {name}"));
        let (tx, rx) = futures::channel::oneshot::channel();
        triggers.0.lock().unwrap().push((name, tx));
        let future: BoxFuture = Box::pin(async move {
            match rx.await {
                Ok(()) => Err(format!("{name} was triggered").into()),
                Err(_) => pending().await,
            }
        });
        future
    })
}

/// An executor with a manual clock, an error hook that records, and an exit hook that
/// records every child's end as `name: how`.
struct Setup {
    rt: Rt,
    hook: HookLog,
    exits: Trace,
    trace: Trace,
    failures: Trace,
}

fn setup(flavor: Flavor) -> Setup {
    let hook = HookLog::new();
    let exits = Trace::new();
    let builder = hook.builder().manual_clock().on_task_exit({
        let exits = exits.clone();
        move |info, exit| {
            let how = match exit {
                TaskExit::Completed => "completed".to_owned(),
                TaskExit::Failed(_) => "failed".to_owned(),
                TaskExit::Cancelled(reason) => format!("cancelled ({reason:?})"),
            };
            exits.push(format!("{}: {how}", info.name().unwrap_or("?")));
        }
    });
    Setup {
        rt: flavor.build(builder),
        hook,
        exits,
        trace: Trace::new(),
        failures: Trace::new(),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs `sup` to its end on `rt`, as a task.
fn run_to_end(rt: &Rt, sup: Supervisor) -> Result<(), SupervisorError> {
    rt.block_on(async move { warden::spawn(sup.run()).await.expect("the supervisor task") })
}

macro_rules! rt_test {
    ($( fn $name:ident($flavor:ident) $body:block )*) => {
        mod local {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    no_hang(|| {
                        let $flavor = Flavor::Local;
                        $body
                    });
                }
            )*
        }
        mod pool {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    no_hang(|| {
                        let $flavor = Flavor::Pool;
                        $body
                    });
                }
            )*
        }
    };
}

rt_test! {
    fn one_for_one_restarts_only_the_failed_child(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(2, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, "a", &[Step::Pend]))
            .child(scripted(&s.trace, &s.failures, "b", &[Step::Panic, Step::Fail, Step::Panic]))
            .child(scripted(&s.trace, &s.failures, "c", &[Step::Pend]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        assert_eq!(
            s.trace.events(),
            strs(&[
                "start a", "start b", "start c", // in start order
                "start b", "start b",            // b alone, twice
                "cancel c", "cancel a",          // gave up: reverse start order
            ])
        );
        assert_eq!(s.failures.events(), strs(&["fail b", "fail b", "fail b"]));
        assert!(err.gave_up());
        let history: Vec<(&str, u32)> =
            err.history().iter().map(|r| (r.child(), r.attempt())).collect();
        assert_eq!(history, [("b", 1), ("b", 2), ("b", 3)]);
        assert!(err.history()[1].cause().is_error());
        assert_eq!(s.hook.len(), 0, "the supervisor observed every failure");
    }

    fn one_for_all_restarts_every_child_in_start_order(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForAll)
            .intensity(1, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, "a", &[]))
            .child(scripted(&s.trace, &s.failures, "b", &[Step::Panic, Step::Panic]))
            .child(scripted(&s.trace, &s.failures, "c", &[]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        assert_eq!(
            s.trace.events(),
            strs(&[
                "start a", "start b", "start c",
                "cancel c", "cancel a",          // the others, reverse start order
                "start a", "start b", "start c", // all, start order
                "cancel c", "cancel a",          // gave up
            ])
        );
        assert_eq!(err.history().len(), 2);
        // The strategy's cancellations carry `Restart`; giving up's, `ParentCancelled`.
        let exits = s.exits.events();
        assert_eq!(
            exits.iter().filter(|e| e.ends_with("cancelled (Restart)")).count(),
            2,
            "{exits:?}"
        );
        assert_eq!(
            exits.iter().filter(|e| e.ends_with("cancelled (ParentCancelled)")).count(),
            2,
            "{exits:?}"
        );
        assert_eq!(exits.iter().filter(|e| e.ends_with("failed")).count(), 2);
        assert_eq!(s.hook.len(), 0);
    }

    fn rest_for_one_restarts_the_failed_child_and_those_after_it(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::RestForOne)
            .intensity(1, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, "a", &[]))
            .child(scripted(&s.trace, &s.failures, "b", &[Step::Fail, Step::Fail]))
            .child(scripted(&s.trace, &s.failures, "c", &[]))
            .child(scripted(&s.trace, &s.failures, "d", &[]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        assert_eq!(
            s.trace.events(),
            strs(&[
                "start a", "start b", "start c", "start d",
                "cancel d", "cancel c",          // those after b, reverse order
                "start b", "start c", "start d", // b and them, in order; a untouched
                "cancel d", "cancel c", "cancel a",
            ])
        );
        assert_eq!(err.history().len(), 2);
        assert_eq!(s.hook.len(), 0);
    }

    fn rest_for_one_with_the_last_child_is_one_for_one(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::RestForOne)
            .intensity(1, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, "a", &[]))
            .child(scripted(&s.trace, &s.failures, "b", &[Step::Panic, Step::Panic]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        assert_eq!(
            s.trace.events(),
            strs(&["start a", "start b", "start b", "cancel a"])
        );
        assert_eq!(err.history().len(), 2);
    }

    fn restart_types_decide_who_comes_back(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(60))
            // Transient: restarted after its failure, not after its normal end.
            .child(
                scripted(&s.trace, &s.failures, "transient", &[Step::Fail, Step::Panic, Step::End])
                    .restart(Restart::Transient),
            )
            // Temporary: never restarted, not even after a failure.
            .child(
                scripted(&s.trace, &s.failures, "temporary", &[Step::Panic])
                    .restart(Restart::Temporary),
            )
            .child(
                scripted(&s.trace, &s.failures, "done", &[Step::End])
                    .restart(Restart::Temporary),
            );
        // Nothing is left to run once they all ended normally or for good.
        run_to_end(&s.rt, sup).unwrap();
        let starts = |name: &str| {
            s.trace.events().iter().filter(|e| **e == format!("start {name}")).count()
        };
        assert_eq!(starts("transient"), 3);
        assert_eq!(starts("temporary"), 1);
        assert_eq!(starts("done"), 1);
        // The temporary child's failure was nobody's to handle: the hook got it, once.
        let hooked = s.hook.errors();
        assert_eq!(hooked.len(), 1, "{hooked:?}");
        assert_eq!(hooked[0].task().name(), Some("temporary"));
        assert_eq!(hooked[0].panic_message(), Some("temporary broke"));
    }

    fn a_transient_child_ending_ok_is_not_restarted(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .child(
                scripted(&s.trace, &s.failures, "t", &[Step::End, Step::Panic])
                    .restart(Restart::Transient),
            );
        run_to_end(&s.rt, sup).unwrap();
        assert_eq!(s.trace.events(), strs(&["start t"]));
        assert_eq!(s.failures.events(), strs(&["end t"]));
    }

    fn a_set_restart_starts_an_ended_transient_sibling_again(flavor) {
        // As in OTP: `Transient` is about the child's own end; a sibling's failure
        // restarts the whole set, ended members included. `Temporary` ones are gone.
        let s = setup(flavor);
        let triggers = Triggers::default();
        let sup = Supervisor::new(Strategy::OneForAll)
            .intensity(1, Duration::from_secs(60))
            .child(
                scripted(&s.trace, &s.failures, "t", &[Step::End, Step::Pend])
                    .restart(Restart::Transient),
            )
            .child(
                scripted(&s.trace, &s.failures, "tmp", &[Step::End]).restart(Restart::Temporary),
            )
            .child(triggered(&s.trace, "p", &triggers));
        let trace = s.rt.block_on(async {
            let sup = warden::spawn(sup.run());
            wait_until("t and tmp to end", || s.failures.events().len() == 2).await;
            triggers.fire("p"); // p fails: the set is restarted
            wait_until("the restart", || s.trace.events().len() == 5).await;
            let trace = s.trace.events();
            sup.cancel();
            assert!(sup.await.unwrap_err().is_cancelled());
            trace
        });
        assert_eq!(
            trace,
            strs(&["start t", "start tmp", "start p", "start t", "start p"])
        );
        assert_eq!(s.hook.len(), 0);
    }

    fn a_permanent_child_that_ends_normally_is_restarted(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, "p", &[Step::End, Step::End]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        assert_eq!(s.trace.events(), strs(&["start p", "start p"]));
        assert_eq!(err.history().len(), 2);
        for restarted in err.history() {
            assert!(restarted.cause().downcast_ref::<NormalExit>().is_some());
        }
    }

    fn intensity_exceeded_cancels_every_child_in_reverse_and_reports_the_history(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(3, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, "first", &[]))
            .child(scripted(&s.trace, &s.failures, "crashy", &[Step::Panic; 4]))
            .child(scripted(&s.trace, &s.failures, "last", &[]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        let trace = s.trace.events();
        assert_eq!(trace[trace.len() - 2..], strs(&["cancel last", "cancel first"]));
        assert!(err.gave_up());
        assert_eq!(err.restarts(), 4);
        // N + 1 entries, each with its panic's location in this file, and the task.
        assert_eq!(err.history().len(), 4);
        let line = PANIC_LINE.load(Ordering::SeqCst);
        let mut ids = Vec::new();
        for (k, restarted) in err.history().iter().enumerate() {
            assert_eq!(restarted.child(), "crashy");
            assert_eq!(restarted.attempt(), k as u32 + 1);
            let cause = restarted.cause();
            assert_eq!(cause.panic_message(), Some("crashy broke"));
            let location = cause.location().expect("the panic's location");
            assert_eq!(location.file(), file!());
            assert_eq!(location.line(), line);
            assert!(cause.backtrace().is_some());
            assert_eq!(cause.task().name(), Some("crashy"));
            assert_eq!(cause.task().spawned_at().file(), file!());
            ids.push(cause.task().id());
        }
        ids.dedup();
        assert_eq!(ids.len(), 4, "each restart is a new task");
        assert_eq!(
            err.last_failure().map(|e| e.task().id()),
            Some(err.history()[3].cause().task().id())
        );
        assert_eq!(s.hook.len(), 0, "the final failure went to run()'s awaiter");
        let m = s.rt.metrics();
        assert_eq!(m.panicked, 4);
    }

    fn escalation_through_two_levels(flavor) {
        let s = setup(flavor);
        let leaf_starts = Arc::new(AtomicU32::new(0));
        let mid = {
            let leaf_starts = leaf_starts.clone();
            move || {
                let leaf_starts = leaf_starts.clone();
                // A fresh middle supervisor on each start, giving up at the first failure.
                Supervisor::new(Strategy::OneForOne)
                    .intensity(0, Duration::from_secs(60))
                    .child(Child::new("leaf", move || {
                        leaf_starts.fetch_add(1, Ordering::SeqCst);
                        unit(async { panic!("leaf broke") })
                    }))
                    .run()
            }
        };
        let root = Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(60))
            .child(Child::new("mid", mid));
        let err = run_to_end(&s.rt, root).unwrap_err();
        assert_eq!(leaf_starts.load(Ordering::SeqCst), 2);
        assert_eq!(err.history().len(), 2);
        for restarted in err.history() {
            assert_eq!(restarted.child(), "mid");
            let cause = restarted.cause();
            assert!(cause.is_error());
            let inner = cause.downcast_ref::<SupervisorError>().expect("the mid supervisor's error");
            assert!(inner.gave_up());
            assert_eq!(inner.history().len(), 1);
            assert_eq!(inner.history()[0].child(), "leaf");
            assert_eq!(inner.history()[0].cause().panic_message(), Some("leaf broke"));
            assert_eq!(inner.history()[0].cause().location().unwrap().file(), file!());
        }
        assert_eq!(s.hook.len(), 0);
        let report = format!("{err}");
        assert!(report.contains("restart 2 of 'mid'"), "{report}");
        assert!(report.contains("leaf broke"), "{report}");
    }

    fn cancelled_from_outside_cancels_the_children_with_parent_cancelled(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .child(scripted(&s.trace, &s.failures, "x", &[]))
            .child(scripted(&s.trace, &s.failures, "y", &[]));
        s.rt.block_on(async {
            let sup = warden::spawn_named("sup", sup.run());
            wait_until("both children to start", || s.trace.events().len() == 2).await;
            sup.cancel();
            assert!(sup.await.unwrap_err().is_cancelled());
            wait_until("both children to end", || {
                s.exits.events().iter().filter(|e| e.starts_with(['x', 'y'])).count() == 2
            })
            .await;
        });
        let mut exits = s.exits.events();
        exits.sort();
        assert_eq!(
            exits,
            strs(&[
                "sup: cancelled (Explicit(None))",
                "x: cancelled (ParentCancelled)",
                "y: cancelled (ParentCancelled)",
            ])
        );
        let mut cancels = s.trace.events()[2..].to_vec();
        cancels.sort();
        assert_eq!(cancels, strs(&["cancel x", "cancel y"]));
        assert_eq!(s.hook.len(), 0, "cancellations never reach the hook");
        support::assert_adds_up(&s.rt.metrics());
    }

    fn a_group_deadline_cancels_a_supervisor_and_its_children(flavor) {
        let s = setup(flavor);
        let clock = match &s.rt {
            Rt::Local(ex) => ex.clock(),
            Rt::Pool(ex) => ex.clock(),
        }
        .unwrap();
        let sup = Supervisor::new(Strategy::OneForAll)
            .child(scripted(&s.trace, &s.failures, "g1", &[]))
            .child(scripted(&s.trace, &s.failures, "g2", &[]));
        let joined = s.rt.block_on(async {
            let group = warden::TaskGroup::new().with_timeout(Duration::from_secs(30));
            group.spawn_named("sup", sup.run()).detach();
            wait_until("both children to start", || s.trace.events().len() == 2).await;
            clock.advance(Duration::from_secs(30));
            let joined = group.join().await;
            wait_until("both children to end", || s.trace.events().len() == 4).await;
            // A child's trace event comes from its future's destructor; its exit is
            // recorded after that, when its task finishes (on a pool, maybe on another
            // worker, later).
            wait_until("both children's exits", || {
                let exits = s.exits.events();
                ["g1: ", "g2: "].iter().all(|c| exits.iter().any(|e| e.starts_with(c)))
            })
            .await;
            joined
        });
        let err = joined.unwrap_err();
        assert_eq!(err.reason(), Some(&CancelReason::Deadline));
        assert_eq!(err.failures().len(), 0);
        let exits = s.exits.events();
        assert!(exits.contains(&"g1: cancelled (ParentCancelled)".to_owned()), "{exits:?}");
        assert!(exits.contains(&"g2: cancelled (ParentCancelled)".to_owned()), "{exits:?}");
        assert_eq!(s.hook.len(), 0);
    }

    fn a_supervisor_that_gives_up_is_a_failing_group_member(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(0, Duration::from_secs(1))
            .child(scripted(&s.trace, &s.failures, "m", &[Step::Panic]));
        let joined = s.rt.block_on(async {
            let group = warden::TaskGroup::new();
            group.spawn_named("sup", sup.run()).detach();
            group.join().await
        });
        let err = joined.unwrap_err();
        assert_eq!(err.failures().len(), 1);
        let inner = err.failures()[0].downcast_ref::<SupervisorError>().unwrap();
        assert_eq!(inner.history()[0].cause().panic_message(), Some("m broke"));
        assert_eq!(s.hook.len(), 0);
    }

    fn an_unobserved_supervisor_failure_reaches_the_hook_once(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(1))
            .child(scripted(&s.trace, &s.failures, "u", &[Step::Panic, Step::Panic]));
        // As a group member, its `Err` is a failure (a plain task's output is a value).
        // Nobody reads it: the handle is dropped unread and the group without `join`.
        let group = s.rt.group();
        let sup = group.spawn_named("unwatched", sup.run());
        s.rt.block_on(wait_until("the supervisor to give up", || sup.is_finished()));
        drop(sup);
        assert_eq!(s.hook.len(), 0, "the group could still report it");
        drop(group);
        s.rt.block_on(wait_until("the hook", || s.hook.len() == 1));
        let hooked = s.hook.errors();
        assert_eq!(hooked.len(), 1);
        assert_eq!(hooked[0].task().name(), Some("unwatched"));
        let inner = hooked[0].downcast_ref::<SupervisorError>().unwrap();
        assert_eq!(inner.history().len(), 2);
    }

    fn backoff_never_restarts_earlier_than_configured(flavor) {
        let s = setup(flavor);
        let clock = match &s.rt {
            Rt::Local(ex) => ex.clock(),
            Rt::Pool(ex) => ex.clock(),
        }
        .unwrap();
        let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(60))
            .jitter(0.5);
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let child = Child::new("slow", {
            let starts = starts.clone();
            let clock = clock.clone();
            move || {
                starts.lock().unwrap().push(clock.now());
                async { Err::<(), _>("not yet") }
            }
        });
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(6, Duration::from_secs(3600))
            .backoff(backoff)
            .child(child);
        let err = s.rt.block_on(async {
            let sup = warden::spawn(sup.run());
            // Time moves only here, a millisecond at a time.
            while !sup.is_finished() {
                clock.advance(Duration::from_millis(1));
                for _ in 0..5 {
                    warden::yield_now().await;
                }
                std::thread::yield_now();
            }
            sup.await.unwrap().unwrap_err()
        });
        let starts = starts.lock().unwrap().clone();
        assert_eq!(starts.len(), 7);
        assert_eq!(err.history().len(), 7);
        for (k, restarted) in err.history().iter().take(6).enumerate() {
            let least = backoff.delay(k as u32 + 1);
            let waited = starts[k + 1] - restarted.at();
            assert!(
                waited >= least,
                "restart {} came {waited:?} after the failure, before its {least:?}",
                k + 1
            );
        }
        // The delays double up to the cap.
        assert_eq!(backoff.delay(1), Duration::from_millis(10));
        assert_eq!(backoff.delay(3), Duration::from_millis(40));
        assert_eq!(backoff.delay(4), Duration::from_millis(60));
    }

    fn restarts_are_logged_once_with_name_and_task_id(flavor) {
        let s = setup(flavor);
        install_logger();
        let name: &'static str = match flavor {
            Flavor::Local => "logged-local",
            Flavor::Pool => "logged-pool",
        };
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(2, Duration::from_secs(60))
            .child(scripted(&s.trace, &s.failures, name, &[Step::Panic; 3]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        let lines: Vec<String> = logged()
            .into_iter()
            .filter(|l| l.contains(&format!("'{name}'")))
            .collect();
        let restarts: Vec<&String> =
            lines.iter().filter(|l| l.contains("restarting child")).collect();
        assert_eq!(restarts.len(), 2, "{lines:?}");
        for (restarted, line) in err.history().iter().zip(&restarts) {
            assert!(line.starts_with("INFO warden"), "{line}");
            assert!(line.contains(&restarted.cause().task().id().to_string()), "{line}");
        }
        assert_eq!(lines.iter().filter(|l| l.contains("giving up")).count(), 1, "{lines:?}");
    }

    fn the_report_tells_the_story(flavor) {
        let s = setup(flavor);
        let sup = Supervisor::new(Strategy::RestForOne)
            .intensity(1, Duration::from_secs(5))
            .child(scripted(&s.trace, &s.failures, "story", &[Step::Fail, Step::Panic]));
        let err = run_to_end(&s.rt, sup).unwrap_err();
        let report = err.to_string();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 3, "{report}");
        assert!(lines[0].starts_with("supervisor #"), "{report}");
        assert!(lines[0].contains("RestForOne, at most 1 restart in 5s) gave up"), "{report}");
        assert!(lines[1].contains("restart 1 of 'story': task 'story'"), "{report}");
        assert!(lines[1].contains("failed: story failed"), "{report}");
        assert!(lines[2].contains("restart 2 of 'story'"), "{report}");
        assert!(lines[2].contains(&format!("panicked at {}:", file!())), "{report}");
        assert!(lines[2].ends_with("(not restarted: gave up)"), "{report}");
        assert_eq!(format!("{err:?}"), report, "Debug is the same report");
        assert!(format!("{err:#}").contains("stack backtrace:"));
        // A std error, with the final failure as its source, that boxes for `?`.
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("story broke"), "{source}");
        let boxed: BoxError = err.clone().into();
        assert!(boxed.to_string().contains("gave up"));
    }
}

// ---------------------------------------------------------------------------------------
// Local-only and type-level checks
// ---------------------------------------------------------------------------------------

#[test]
fn run_local_supervises_children_that_are_not_send() {
    no_hang(|| {
        use std::cell::RefCell;
        use std::rc::Rc;

        let ex = Builder::new().manual_clock().build_local();
        let log = Rc::new(RefCell::new(Vec::new()));
        let sup = Supervisor::new(Strategy::OneForAll)
            .intensity(1, Duration::from_secs(1))
            .child(Child::new("rc-a", {
                let log = log.clone();
                move || {
                    let log = log.clone(); // Rc: the future is not Send
                    log.borrow_mut().push("start a");
                    async move {
                        let _keep = log;
                        pending::<()>().await
                    }
                }
            }))
            .child(Child::new("rc-b", {
                let log = log.clone();
                move || {
                    let log = log.clone();
                    log.borrow_mut().push("start b");
                    async move { Err::<(), _>(format!("b failed, {} entries", log.borrow().len())) }
                }
            }));
        let err = ex.block_on(sup.run_local()).unwrap_err();
        assert_eq!(*log.borrow(), ["start a", "start b", "start a", "start b"]);
        assert_eq!(err.history().len(), 2);
        assert_eq!(ex.metrics().live, 0);
    });
}

#[test]
fn a_supervisor_runs_as_the_root_future_of_block_on() {
    no_hang(|| {
        let ex = Builder::new().manual_clock().build_local();
        let err = ex
            .block_on(
                Supervisor::new(Strategy::OneForOne)
                    .intensity(0, Duration::from_secs(1))
                    .child(Child::new("root-child", || async { Err::<(), _>("no") }))
                    .run(),
            )
            .unwrap_err();
        // Not a task: the report says "supervisor" with no id.
        assert!(
            err.to_string().starts_with("supervisor (OneForOne"),
            "{err}"
        );
    });
}

#[test]
fn a_supervisor_without_children_is_done_at_once() {
    let ex = warden::LocalExecutor::new();
    assert!(
        ex.block_on(Supervisor::new(Strategy::OneForOne).run())
            .is_ok()
    );
}

#[test]
#[should_panic(expected = "already has a child named 'twin'")]
fn children_need_distinct_names() {
    drop(
        Supervisor::new(Strategy::OneForOne)
            .child(Child::new("twin", || async {}))
            .child(Child::new("twin", || async {}))
            .run(),
    );
}

#[test]
#[should_panic(expected = "period above zero")]
fn a_zero_period_is_refused() {
    drop(
        Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::ZERO)
            .run(),
    );
}

#[test]
fn the_types_travel() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    send_sync_static::<SupervisorError>();
    send_sync_static::<warden::Restarted>();
    send_sync_static::<warden::ManualClock>();
    let sup = Supervisor::new(Strategy::OneForOne).child(Child::new("s", || async {}));
    send(&sup);
    send(&sup.run());
}

// ---------------------------------------------------------------------------------------
// A logger that keeps what `warden` logs, for the log test
// ---------------------------------------------------------------------------------------

struct Keep;

static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Keep {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "warden"
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LOGGED.lock().unwrap().push(format!(
                "{} {} {}",
                record.level(),
                record.target(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_logger(&Keep).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Info);
    });
}

fn logged() -> Vec<String> {
    LOGGED.lock().unwrap().clone()
}

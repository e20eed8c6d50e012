//! Property test: random supervisor trees and failure scripts on both executors, checked
//! against a small reference model of OTP's rules.
//!
//! A case is a tree of supervisors (depth at most 3, at most 4 children each) with random
//! strategies, intensities (0 to 3 restarts) and periods (20 to 200 ms of the manual
//! clock); each child is a leaf or a supervisor, `Permanent`, `Transient` or `Temporary`.
//! Leaves never end by themselves: the script ends them, one at a time. A script is a list
//! of actions: end a running leaf (chosen by index among those the model says are running)
//! with a panic, an `Err` or a normal end; or advance the clock. Between actions the test
//! waits until the system is quiet (every event the model expects has happened), so the
//! run is deterministic where OTP's rules make it so, on either executor.
//!
//! The model ([`MSup`]) applies the rules: which children a strategy restarts, in what
//! order; restart types (a `Transient` that ended is started again by a set restart, a
//! `Temporary` is never restarted and its failure goes to the error hook); the intensity
//! window (restarts more than a period old drop out; more than the intensity within it:
//! give up, cancel every child); a supervisor with no child left ends `Ok`; a supervisor
//! that ends ends its parent's child. Events are what the children record: each start
//! (the factory runs in the supervisor), and each end as `on_task_exit` sees it. Checked
//! after every action, then at the end:
//!
//! * for every supervisor, the sequence of its children's starts, own ends and
//!   `Restart` cancellations is exactly the model's;
//! * `ParentCancelled` cancellations (a supervisor giving up, or dropped: then its
//!   children end asynchronously) are the model's, as a multiset per child;
//! * the root's result: `Ok`, or a `SupervisorError` that gave up, whose history names
//!   the children the model's intensity window holds;
//! * the error hook saw exactly the `Temporary` failures; metrics add up, nothing is live.
//!
//! 256 cases per executor per run; each under a 30 s hang guard (the waits fail after
//! 5 s, or as soon as the events diverge from the model's). Failing cases are not
//! persisted: a failure prints the minimised case.

mod support;

use std::collections::{HashMap, VecDeque};
use std::future::pending;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Strategy as _;
use support::{Flavor, HookLog, Rt, Trace, assert_adds_up, no_hang};
use warden::{
    BoxError, Child, ManualClock, Restart, Strategy, Supervisor, SupervisorError, TaskError,
    TaskExit,
};

// ---------------------------------------------------------------------------------------
// A case
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SupSpec {
    name: String,
    strategy: Strategy,
    intensity: u32,
    period_ms: u64,
    children: Vec<ChildSpec>,
}

#[derive(Debug, Clone)]
struct ChildSpec {
    name: String,
    restart: Restart,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Leaf,
    Sup(SupSpec),
}

/// How a leaf ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Panic,
    Fail,
    Normal,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    /// End the running leaf at this index (in the model's depth-first order).
    End(Index, End),
    /// Advance the manual clock by this many milliseconds.
    Advance(u64),
}

fn strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
    prop_oneof![
        Just(Strategy::OneForOne),
        Just(Strategy::OneForAll),
        Just(Strategy::RestForOne)
    ]
}

fn restart() -> impl proptest::strategy::Strategy<Value = Restart> {
    prop_oneof![
        2 => Just(Restart::Permanent),
        2 => Just(Restart::Transient),
        1 => Just(Restart::Temporary),
    ]
}

/// A supervisor's shape; names are given afterwards.
fn sup_shape(depth: u32) -> BoxedStrategy<SupSpec> {
    let kind: BoxedStrategy<Kind> = if depth == 0 {
        Just(Kind::Leaf).boxed()
    } else {
        prop_oneof![
            3 => Just(Kind::Leaf),
            1 => sup_shape(depth - 1).prop_map(Kind::Sup),
        ]
        .boxed()
    };
    (
        strategy(),
        0..4u32,
        20..200u64,
        prop::collection::vec((restart(), kind), 1..=4),
    )
        .prop_map(|(strategy, intensity, period_ms, children)| SupSpec {
            name: String::new(),
            strategy,
            intensity,
            period_ms,
            children: children
                .into_iter()
                .map(|(restart, kind)| ChildSpec {
                    name: String::new(),
                    restart,
                    kind,
                })
                .collect(),
        })
        .boxed()
}

/// Names every node: `l<n>` for leaves, `s<n>` for supervisors, `root` for the root.
fn name_all(sup: &mut SupSpec, next: &mut u32) {
    for child in &mut sup.children {
        *next += 1;
        match &mut child.kind {
            Kind::Leaf => child.name = format!("l{next}"),
            Kind::Sup(inner) => {
                child.name = format!("s{next}");
                inner.name = child.name.clone();
                name_all(inner, next);
            }
        }
    }
}

fn case() -> impl proptest::strategy::Strategy<Value = (SupSpec, Vec<Action>)> {
    let action = prop_oneof![
        4 => (any::<Index>(), prop_oneof![Just(End::Panic), Just(End::Fail), Just(End::Normal)])
            .prop_map(|(i, end)| Action::End(i, end)),
        1 => (1..120u64).prop_map(Action::Advance),
    ];
    (sup_shape(2), prop::collection::vec(action, 1..30)).prop_map(|(mut root, actions)| {
        root.name = "root".to_owned();
        name_all(&mut root, &mut 0);
        (root, actions)
    })
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// What the model predicts, in order.
#[derive(Default)]
struct Expect {
    events: Vec<String>,
    hook: usize,
}

/// A running supervisor.
struct MSup {
    spec: SupSpec,
    slots: Vec<MSlot>,
    /// When the restarts within the period happened, and of which child.
    window: VecDeque<(u64, String)>,
}

enum MSlot {
    /// A running leaf (`None`) or supervisor.
    Running(Option<MSup>),
    Ended,
    Removed,
}

/// How a supervisor ended.
#[derive(Debug, PartialEq, Eq)]
enum SupEnd {
    Ok,
    /// Gave up; the children its history names, oldest first.
    GaveUp(Vec<String>),
}

impl MSup {
    fn start(spec: &SupSpec, ex: &mut Expect) -> MSup {
        let mut sup = MSup {
            spec: spec.clone(),
            slots: Vec::new(),
            window: VecDeque::new(),
        };
        for i in 0..spec.children.len() {
            let slot = sup.start_child(i, ex);
            sup.slots.push(slot);
        }
        sup
    }

    fn start_child(&self, i: usize, ex: &mut Expect) -> MSlot {
        let child = &self.spec.children[i];
        ex.events.push(format!("{}: start", child.name));
        match &child.kind {
            Kind::Leaf => MSlot::Running(None),
            Kind::Sup(inner) => MSlot::Running(Some(MSup::start(inner, ex))),
        }
    }

    /// Every running leaf, depth first.
    fn running_leaves(&self, out: &mut Vec<String>) {
        for (slot, child) in self.slots.iter().zip(&self.spec.children) {
            match slot {
                MSlot::Running(None) => out.push(child.name.clone()),
                MSlot::Running(Some(inner)) => inner.running_leaves(out),
                _ => {}
            }
        }
    }

    /// Everything running below this supervisor ends with `ParentCancelled` (it was
    /// dropped).
    fn drop_all(&self, ex: &mut Expect) {
        for (slot, child) in self.slots.iter().zip(&self.spec.children) {
            if let MSlot::Running(inner) = slot {
                ex.events
                    .push(format!("{}: cancelled (ParentCancelled)", child.name));
                if let Some(inner) = inner {
                    inner.drop_all(ex);
                }
            }
        }
    }

    /// Cancels slot `j` if it runs, with `reason`.
    fn cancel(&mut self, j: usize, reason: &str, ex: &mut Expect) {
        if let MSlot::Running(inner) = &self.slots[j] {
            ex.events.push(format!(
                "{}: cancelled ({reason})",
                self.spec.children[j].name
            ));
            if let Some(inner) = inner {
                inner.drop_all(ex);
            }
            self.slots[j] = MSlot::Ended;
        }
    }

    /// The leaf `name`, somewhere below, ends with `end`. Returns how this supervisor
    /// ended, if it did.
    fn end_leaf(&mut self, name: &str, end: End, now: u64, ex: &mut Expect) -> Option<SupEnd> {
        for i in 0..self.slots.len() {
            let failed = match &mut self.slots[i] {
                MSlot::Running(None) if self.spec.children[i].name == name => {
                    let how = if end == End::Normal {
                        "completed"
                    } else {
                        "failed"
                    };
                    ex.events.push(format!("{name}: {how}"));
                    end != End::Normal
                }
                MSlot::Running(Some(inner)) => match inner.end_leaf(name, end, now, ex) {
                    None => continue,
                    Some(inner_end) => {
                        let failed = inner_end != SupEnd::Ok;
                        let how = if failed { "failed" } else { "completed" };
                        ex.events
                            .push(format!("{}: {how}", self.spec.children[i].name));
                        failed
                    }
                },
                _ => continue,
            };
            return self.on_end(i, failed, now, ex);
        }
        None
    }

    fn on_end(&mut self, i: usize, failed: bool, now: u64, ex: &mut Expect) -> Option<SupEnd> {
        self.slots[i] = MSlot::Ended;
        match (self.spec.children[i].restart, failed) {
            (Restart::Transient, false) => {}
            (Restart::Temporary, failed) => {
                self.slots[i] = MSlot::Removed;
                if failed {
                    ex.hook += 1;
                }
            }
            _ => {
                if let Some(end) = self.restart(i, now, ex) {
                    return Some(end);
                }
            }
        }
        let running = self
            .slots
            .iter()
            .any(|slot| matches!(slot, MSlot::Running(_)));
        (!running).then_some(SupEnd::Ok)
    }

    fn restart(&mut self, i: usize, now: u64, ex: &mut Expect) -> Option<SupEnd> {
        let period = self.spec.period_ms;
        while self.window.front().is_some_and(|(t, _)| now - t >= period) {
            self.window.pop_front();
        }
        self.window
            .push_back((now, self.spec.children[i].name.clone()));
        let n = self.slots.len();
        if self.window.len() > self.spec.intensity as usize {
            for j in (0..n).rev() {
                self.cancel(j, "ParentCancelled", ex);
                self.slots[j] = MSlot::Removed;
            }
            let names = self.window.iter().map(|(_, name)| name.clone()).collect();
            return Some(SupEnd::GaveUp(names));
        }
        let set = match self.spec.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..n,
            Strategy::RestForOne => i..n,
        };
        for j in set.clone().rev() {
            self.cancel(j, "Restart", ex);
        }
        for j in set {
            let gone = matches!(self.slots[j], MSlot::Removed)
                || (j != i && self.spec.children[j].restart == Restart::Temporary);
            self.slots[j] = if gone {
                MSlot::Removed
            } else {
                self.start_child(j, ex)
            };
        }
        None
    }
}

// ---------------------------------------------------------------------------------------
// The real tree
// ---------------------------------------------------------------------------------------

/// The sender that ends each running leaf, by name.
#[derive(Clone, Default)]
struct Triggers(Arc<Mutex<HashMap<String, oneshot::Sender<End>>>>);

type BoxFuture = Pin<Box<dyn std::future::Future<Output = Result<(), BoxError>> + Send>>;

fn build(spec: &SupSpec, trace: &Trace, triggers: &Triggers) -> Supervisor {
    let mut sup = Supervisor::new(spec.strategy)
        .intensity(spec.intensity, Duration::from_millis(spec.period_ms));
    for child in &spec.children {
        let name = child.name.clone();
        let trace = trace.clone();
        let triggers = triggers.clone();
        sup = match &child.kind {
            Kind::Leaf => sup.child(
                Child::new(child.name.clone(), move || {
                    // The trigger first: once the start event is visible, the test may
                    // take the trigger at once (on a pool, from another thread).
                    let (tx, rx) = oneshot::channel();
                    triggers.0.lock().unwrap().insert(name.clone(), tx);
                    trace.push(format!("{name}: start"));
                    let name = name.clone();
                    let future: BoxFuture = Box::pin(async move {
                        match rx.await {
                            Ok(End::Panic) => panic!("{name} panicked"),
                            Ok(End::Fail) => Err(format!("{name} failed").into()),
                            Ok(End::Normal) => Ok(()),
                            Err(_) => pending().await,
                        }
                    });
                    future
                })
                .restart(child.restart),
            ),
            Kind::Sup(inner) => {
                let inner = inner.clone();
                sup.child(
                    Child::new(child.name.clone(), move || {
                        trace.push(format!("{name}: start"));
                        build(&inner, &trace, &triggers).run()
                    })
                    .restart(child.restart),
                )
            }
        };
    }
    sup
}

/// The children's names of every supervisor in the tree, by supervisor.
fn families(spec: &SupSpec, out: &mut Vec<(String, Vec<String>)>) {
    out.push((
        spec.name.clone(),
        spec.children.iter().map(|c| c.name.clone()).collect(),
    ));
    for child in &spec.children {
        if let Kind::Sup(inner) = &child.kind {
            families(inner, out);
        }
    }
}

/// Compares what happened with what the model expects; returns the differences.
fn compare(root: &SupSpec, actual: &[String], expected: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fams = Vec::new();
    families(root, &mut fams);
    for (sup, children) in &fams {
        let got = ordered(actual, children);
        let want = ordered(expected, children);
        if got != want {
            problems.push(format!(
                "{sup}'s children: got {got:?}\n    expected {want:?}"
            ));
        }
    }
    let parent_cancelled = |events: &[String]| {
        let mut v: Vec<String> = events
            .iter()
            .filter(|e| e.ends_with("(ParentCancelled)"))
            .cloned()
            .collect();
        v.sort();
        v
    };
    let (got, want) = (parent_cancelled(actual), parent_cancelled(expected));
    if got != want {
        problems.push(format!(
            "ParentCancelled: got {got:?}\n    expected {want:?}"
        ));
    }
    problems
}

/// The first supervisor whose children's ordered events so far are not a beginning of the
/// model's, if any.
fn diverged(root: &SupSpec, actual: &[String], expected: &[String]) -> Option<String> {
    let mut fams = Vec::new();
    families(root, &mut fams);
    fams.iter().find_map(|(sup, children)| {
        let got = ordered(actual, children);
        let want = ordered(expected, children);
        (!want.starts_with(&got))
            .then(|| format!("{sup}'s children diverged: got {got:?}\n    expected {want:?}"))
    })
}

/// The events of `children` that are ordered: starts, own ends, `Restart` cancellations.
fn ordered(events: &[String], children: &[String]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            let name = e.split(':').next().unwrap_or("");
            children.iter().any(|c| c == name) && !e.ends_with("(ParentCancelled)")
        })
        .cloned()
        .collect()
}

fn clock_of(rt: &Rt) -> ManualClock {
    match rt {
        Rt::Local(ex) => ex.clock(),
        Rt::Pool(ex) => ex.clock(),
    }
    .expect("a manual clock")
}

/// Drives `rt` until `trace` has the model's events and `hook` its count. Fails at once
/// when what happened so far is not a beginning of what the model expects (for some
/// supervisor's children), and after 5 s when something is missing.
fn settle(
    rt: &Rt,
    root: &SupSpec,
    trace: &Trace,
    ex: &Expect,
    hook: &HookLog,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let n = ex.events.len();
    rt.block_on(async {
        loop {
            let events = trace.events();
            if events.len() == n && hook.len() == ex.hook {
                // Quiet: one more turn, so that an extra event would show.
                warden::yield_now().await;
                if trace.events().len() == n {
                    return Ok(());
                }
            }
            if let Some(diverged) = diverged(root, &events, &ex.events) {
                return Err(diverged);
            }
            if events.len() > n || Instant::now() > deadline {
                return Err(format!(
                    "expected {n} events and {} hook calls, have {} and {}",
                    ex.hook,
                    events.len(),
                    hook.len()
                ));
            }
            warden::yield_now().await;
            std::thread::sleep(Duration::from_micros(100));
        }
    })
}

fn run_case(flavor: Flavor, root: SupSpec, actions: Vec<Action>) -> Result<(), String> {
    let trace = Trace::new();
    let hook = HookLog::new();
    let builder = hook.builder().manual_clock().on_task_exit({
        let trace = trace.clone();
        move |info, exit| {
            let how = match exit {
                TaskExit::Completed => "completed".to_owned(),
                TaskExit::Failed(_) => "failed".to_owned(),
                TaskExit::Cancelled(reason) => format!("cancelled ({reason:?})"),
            };
            trace.push(format!("{}: {how}", info.name().unwrap_or("?")));
        }
    });
    let rt = flavor.build(builder);
    let clock = clock_of(&rt);
    let triggers = Triggers::default();

    let mut ex = Expect::default();
    let mut model = Some(MSup::start(&root, &mut ex));
    let handle = rt.spawn_named("root", build(&root, &trace, &triggers).run());
    let mut now = 0u64;
    let mut root_end = None;
    let fail = |what: String, trace: &Trace, ex: &Expect| -> String {
        let diffs = compare(&root, &trace.events(), &ex.events);
        format!(
            "{what}\n  events: {:?}\n  model:  {:?}\n  {}",
            trace.events(),
            ex.events,
            diffs.join("\n  ")
        )
    };
    settle(&rt, &root, &trace, &ex, &hook).map_err(|e| fail(e, &trace, &ex))?;

    for action in actions {
        let Some(sup) = model.as_mut() else { break };
        match action {
            Action::Advance(ms) => {
                clock.advance(Duration::from_millis(ms));
                now += ms;
            }
            Action::End(index, end) => {
                let mut leaves = Vec::new();
                sup.running_leaves(&mut leaves);
                let name = leaves[index.index(leaves.len())].clone();
                let sender = triggers.0.lock().unwrap().remove(&name);
                sender.expect("a running leaf").send(end).unwrap();
                if let Some(end) = sup.end_leaf(&name, end, now, &mut ex) {
                    ex.events.push("root: completed".to_owned());
                    root_end = Some(end);
                    model = None;
                }
            }
        }
        settle(&rt, &root, &trace, &ex, &hook).map_err(|e| fail(e, &trace, &ex))?;
        let diffs = compare(&root, &trace.events(), &ex.events);
        if !diffs.is_empty() {
            return Err(fail(format!("after {action:?}"), &trace, &ex));
        }
    }

    // The end: the root's result, or it is cancelled.
    match root_end {
        Some(want) => {
            let got: Result<(), SupervisorError> = rt.block_on(handle).expect("the root task");
            match (&want, &got) {
                (SupEnd::Ok, Ok(())) => {}
                (SupEnd::GaveUp(names), Err(err)) => {
                    let history: Vec<&str> = err.history().iter().map(|r| r.child()).collect();
                    if !err.gave_up() || history != *names {
                        return Err(format!("root gave up with {history:?}, model {names:?}"));
                    }
                }
                _ => return Err(format!("root ended {got:?}, model {want:?}")),
            }
        }
        None => {
            handle.cancel();
            let got = rt.block_on(handle);
            if !got.as_ref().is_err_and(TaskError::is_cancelled) {
                return Err(format!("the cancelled root ended {got:?}"));
            }
            if let Some(sup) = &model {
                sup.drop_all(&mut ex);
            }
            ex.events
                .push("root: cancelled (Explicit(None))".to_owned());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    rt.block_on(async {
        while rt.metrics().live > 0 && Instant::now() < deadline {
            warden::yield_now().await;
        }
    });
    let m = rt.metrics();
    assert_adds_up(&m);
    if m.live != 0 {
        return Err(fail(format!("tasks still live: {m:?}"), &trace, &ex));
    }
    // A task's exit is recorded by the outcome hook, which may still be running on a
    // worker when the task stops counting as live.
    settle(&rt, &root, &trace, &ex, &hook).map_err(|e| fail(e, &trace, &ex))?;
    let diffs = compare(&root, &trace.events(), &ex.events);
    if !diffs.is_empty() || trace.events().len() != ex.events.len() {
        return Err(fail("at the end".to_owned(), &trace, &ex));
    }
    let hooked = hook.errors();
    if hooked.len() != ex.hook || hooked.iter().any(TaskError::is_cancelled) {
        return Err(format!(
            "the hook saw {} failures, model {}: {hooked:?}",
            hooked.len(),
            ex.hook
        ));
    }
    Ok(())
}

fn run_guarded(flavor: Flavor, root: SupSpec, actions: Vec<Action>) -> Result<(), String> {
    // Thousands of restart reports over the cases: dropped by a logger, not printed.
    support::quiet_logs();
    let result = Arc::new(Mutex::new(Ok(())));
    let out = result.clone();
    no_hang(move || *out.lock().unwrap() = run_case(flavor, root, actions));
    result.lock().unwrap().clone()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn supervisor_trees_follow_otp_rules_on_the_local_executor((root, actions) in case()) {
        if let Err(problem) = run_guarded(Flavor::Local, root, actions) {
            prop_assert!(false, "{}", problem);
        }
    }

    #[test]
    fn supervisor_trees_follow_otp_rules_on_the_pool((root, actions) in case()) {
        if let Err(problem) = run_guarded(Flavor::Pool, root, actions) {
            prop_assert!(false, "{}", problem);
        }
    }
}

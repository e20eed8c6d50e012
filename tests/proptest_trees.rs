//! Property test: random task trees on both executors, checked against a reference model.
//!
//! A case is a tree of tasks (depth at most 5, fan-out at most 8, at most 200 tasks). The
//! root is a group created inside `block_on`; every node is a task spawned into a group,
//! and a node's children go into a group that the node creates, then joins (or drops).
//! Each node runs a short program: yield, wake itself (a custom future), sleep a few
//! microseconds, panic, return `Err`, cancel its own group, or spawn a child group. A node
//! may carry a guard whose `Drop` panics when the task is cancelled (never while already
//! unwinding, which would abort the process). Groups are plain, supervisors, or nested
//! under the owner's group; some have a deadline, some are cancelled by their owner right
//! after spawning, some are dropped without `join`. Each member's handle is awaited
//! before or after the join, detached, or cancelled at once.
//!
//! After each case the executor is dropped, and the run is checked against what the tree
//! allows, whatever the schedule was:
//!
//! * **each task accounted for exactly once**: `on_task_exit` saw every spawned task once
//!   and nothing else, in the right group with the right parent; every future was dropped
//!   exactly once (and every `DropToken` counted);
//! * **each failure observed exactly once**: every failed task was observed by its handle
//!   or its group's `join`, or else by the error hook, once, and never by both; the hook
//!   never sees a cancellation; each `join` reports exactly the failed and cancelled
//!   members;
//! * **cancellation at poll**: once a task has seen, inside a poll, that its group is
//!   cancelled, it is never polled again; a cancelled task's future was dropped unfinished
//!   and every handle agrees with the exit the executor reported;
//! * **the reference model**: a completed node had no `panic`/`Err` in its program and
//!   spawned all its children; a failure is one its program (or its guard) can produce; a
//!   cancellation reason is one that the tree can produce for that node; a node that
//!   nothing in the tree can cancel ends exactly as its program says;
//! * **metrics** match the exits exactly, `live == 0`, they add up, and no timer is left.
//!
//! 256 cases per executor per run (`ProptestConfig::cases`); a case runs on its own thread
//! under a 30 s hang guard. Failing cases are not persisted to a file: a failure prints
//! the minimised tree, which belongs in a regular test.

mod support;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use support::{DropCounter, DropToken, Flavor, HookLog, assert_adds_up};
use warden::{Backtraces, CancelReason, GroupId, TaskError, TaskExit, TaskGroup, TaskId};

// ---------------------------------------------------------------------------------------
// The tree, as generated
// ---------------------------------------------------------------------------------------

/// One step of a node's program.
#[derive(Debug, Clone)]
enum Op {
    /// `warden::yield_now()`.
    Yield,
    /// A custom future that wakes itself (through a cloned waker) and is pending once.
    WakeSelf,
    /// `warden::sleep` for this many microseconds.
    Sleep(u16),
    /// `panic!`.
    Panic,
    /// Returns `Err` (a failure: every node is a group member).
    Fail,
    /// Cancels the group this node is a member of (`cancel_with("self")`).
    CancelOwnGroup,
    /// Creates a group, spawns these children into it, then joins or drops it.
    Children(Group),
}

/// What the owner does with a member's `JoinHandle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// Awaited after every member was spawned, before the group's join.
    Await,
    /// Detached at once.
    Detach,
    /// Awaited after the group's join (or drop).
    AwaitAfterJoin,
    /// `handle.cancel()` right after spawning, then awaited before the join.
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `TaskGroup::new()`.
    New,
    /// `TaskGroup::supervisor()`.
    Supervisor,
    /// A child of the owner's own group (through the owner's probe, see `Checked`), so
    /// that cancelling the owner's group cancels this one with `ParentCancelled`.
    Nested,
}

#[derive(Debug, Clone)]
struct Node {
    /// The node's future holds a guard whose `Drop` panics if it was not disarmed (the
    /// program did not finish): a cancelled task then fails with that panic.
    drop_panics: bool,
    handling: Handling,
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
struct Group {
    kind: Kind,
    /// `with_timeout(micros)`.
    timeout_us: Option<u16>,
    /// The owner cancels the group (`cancel_with("owner")`) right after spawning.
    cancel_after_spawn: bool,
    /// `join` it; otherwise drop it (after the handles awaited before the join).
    join: bool,
    /// If the join reports failures, the owner returns `Err` too.
    propagate: bool,
    members: Vec<Node>,
}

impl Group {
    fn tasks(&self) -> usize {
        self.members.iter().map(Node::tasks).sum()
    }
}

impl Node {
    fn tasks(&self) -> usize {
        1 + self
            .ops
            .iter()
            .map(|op| match op {
                Op::Children(g) => g.tasks(),
                _ => 0,
            })
            .sum::<usize>()
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

const MAX_TASKS: usize = 200;

fn leaf_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Yield),
        6 => Just(Op::WakeSelf),
        6 => (0u16..200).prop_map(Op::Sleep),
        1 => Just(Op::Panic),
        1 => Just(Op::Fail),
        1 => Just(Op::CancelOwnGroup),
    ]
}

fn handling() -> impl Strategy<Value = Handling> {
    prop_oneof![
        4 => Just(Handling::Await),
        4 => Just(Handling::Detach),
        3 => Just(Handling::AwaitAfterJoin),
        1 => Just(Handling::Cancel),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![2 => Just(Kind::New), 3 => Just(Kind::Supervisor), 2 => Just(Kind::Nested)]
}

fn group(
    kind: impl Strategy<Value = Kind>,
    members: BoxedStrategy<Vec<Node>>,
) -> impl Strategy<Value = Group> {
    (
        kind,
        prop::option::weighted(0.1, 0u16..400),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.85),
        any::<bool>(),
        members,
    )
        .prop_map(
            |(kind, timeout_us, cancel_after_spawn, join, propagate, members)| Group {
                kind,
                timeout_us,
                cancel_after_spawn,
                join,
                propagate,
                members,
            },
        )
}

/// A node: a leaf, or (up to 4 levels down) a node with one `Children` op among its others.
fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        prop::bool::weighted(0.3),
        handling(),
        prop::collection::vec(leaf_op(), 0..4),
    )
        .prop_map(|(drop_panics, handling, ops)| Node {
            drop_panics,
            handling,
            ops,
        });
    leaf.prop_recursive(4, 48, 4, |inner| {
        (
            prop::bool::weighted(0.3),
            handling(),
            prop::collection::vec(leaf_op(), 0..3),
            group(kind(), prop::collection::vec(inner, 0..=8).boxed()),
            any::<Option<Index>>(),
        )
            .prop_map(|(drop_panics, handling, mut ops, children, at)| {
                // First in half the nodes, so that deep subtrees run more often.
                let at = at.map_or(0, |at| at.index(ops.len() + 1));
                ops.insert(at, Op::Children(children));
                Node {
                    drop_panics,
                    handling,
                    ops,
                }
            })
    })
}

/// The root group (created in `block_on`, always joined): 1 to 8 subtrees, 200 tasks at most.
fn tree() -> impl Strategy<Value = Group> {
    let kind = prop_oneof![Just(Kind::New), Just(Kind::Supervisor)];
    group(kind, prop::collection::vec(node(), 1..=8).boxed())
        .prop_map(|mut root| {
            root.join = true;
            root
        })
        .prop_filter("at most 200 tasks", |root| root.tasks() <= MAX_TASKS)
}

// ---------------------------------------------------------------------------------------
// The tree, indexed (what the tasks and the checks read)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum POp {
    Yield,
    WakeSelf,
    Sleep(u16),
    Panic,
    Fail,
    CancelOwnGroup,
    Children(usize),
}

#[derive(Debug)]
struct PNode {
    /// The group it is a member of.
    group: usize,
    drop_panics: bool,
    handling: Handling,
    ops: Vec<POp>,
}

impl PNode {
    fn has(&self, want: fn(&POp) -> bool) -> bool {
        self.ops.iter().any(want)
    }

    fn cancels_own_group(&self) -> bool {
        self.has(|op| matches!(op, POp::CancelOwnGroup))
    }
}

#[derive(Debug)]
struct PGroup {
    /// The node that creates it; `None` for the root.
    owner: Option<usize>,
    kind: Kind,
    timeout_us: Option<u16>,
    cancel_after_spawn: bool,
    join: bool,
    propagate: bool,
    members: Vec<usize>,
}

#[derive(Debug, Default)]
struct Plan {
    nodes: Vec<PNode>,
    /// `groups[0]` is the root.
    groups: Vec<PGroup>,
}

impl Plan {
    fn new(root: &Group) -> Plan {
        let mut plan = Plan::default();
        plan.add_group(root, None);
        plan
    }

    fn add_group(&mut self, group: &Group, owner: Option<usize>) -> usize {
        let g = self.groups.len();
        self.groups.push(PGroup {
            owner,
            kind: group.kind,
            timeout_us: group.timeout_us,
            cancel_after_spawn: group.cancel_after_spawn,
            join: group.join,
            propagate: group.propagate,
            members: Vec::new(),
        });
        for member in &group.members {
            let n = self.nodes.len();
            self.nodes.push(PNode {
                group: g,
                drop_panics: member.drop_panics,
                handling: member.handling,
                ops: Vec::new(),
            });
            self.groups[g].members.push(n);
            let ops = member
                .ops
                .iter()
                .map(|op| match op {
                    Op::Yield => POp::Yield,
                    Op::WakeSelf => POp::WakeSelf,
                    Op::Sleep(us) => POp::Sleep(*us),
                    Op::Panic => POp::Panic,
                    Op::Fail => POp::Fail,
                    Op::CancelOwnGroup => POp::CancelOwnGroup,
                    Op::Children(child) => POp::Children(self.add_group(child, Some(n))),
                })
                .collect();
            self.nodes[n].ops = ops;
        }
        g
    }

    /// A sound over-approximation, computed as a least fixpoint: `(node may be cancelled,
    /// group may be cancelled)`. What is `false` here cannot happen on any schedule.
    fn may_cancel(&self) -> (Vec<bool>, Vec<bool>) {
        let mut node = vec![false; self.nodes.len()];
        let mut group = vec![false; self.groups.len()];
        loop {
            let mut changed = false;
            for (g, spec) in self.groups.iter().enumerate() {
                let owner_cancelled = spec.owner.is_some_and(|o| node[o]);
                let parent_cancelled = spec.kind == Kind::Nested
                    && spec.owner.is_some_and(|o| group[self.nodes[o].group]);
                let member_fails = spec.kind != Kind::Supervisor
                    && spec.members.iter().any(|&m| self.may_fail(m, node[m]));
                let v = spec.cancel_after_spawn
                    || spec.timeout_us.is_some()
                    || !spec.join
                    || spec
                        .members
                        .iter()
                        .any(|&m| self.nodes[m].cancels_own_group())
                    || member_fails
                    || owner_cancelled
                    || parent_cancelled;
                if v && !group[g] {
                    group[g] = true;
                    changed = true;
                }
            }
            for (n, spec) in self.nodes.iter().enumerate() {
                let v = spec.handling == Handling::Cancel || group[spec.group];
                if v && !node[n] {
                    node[n] = true;
                    changed = true;
                }
            }
            if !changed {
                return (node, group);
            }
        }
    }

    fn may_fail(&self, n: usize, may_be_cancelled: bool) -> bool {
        let spec = &self.nodes[n];
        spec.has(|op| matches!(op, POp::Panic | POp::Fail))
            || spec
                .ops
                .iter()
                .any(|op| matches!(op, POp::Children(c) if self.groups[*c].propagate && self.groups[*c].join))
            || (spec.drop_panics && may_be_cancelled)
    }
}

// ---------------------------------------------------------------------------------------
// What happened (recorded while the case runs)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Exit {
    Completed,
    Failed(TaskError),
    Cancelled(CancelReason),
}

#[derive(Debug, Clone)]
struct ExitRecord {
    exit: Exit,
    group: Option<GroupId>,
    parent: Option<TaskId>,
}

#[derive(Debug)]
struct JoinRecord {
    group: usize,
    /// `GroupError::group()`, when the join failed.
    reported_group: Option<GroupId>,
    failures: Vec<TaskId>,
    cancelled: usize,
    reason: Option<CancelReason>,
    ok: bool,
}

/// Everything shared between the tasks, the hooks and the checks of one case.
#[derive(Debug)]
struct World {
    plan: Plan,
    /// Node index to task id, written by the owner right after spawning.
    ids: Mutex<Vec<Option<TaskId>>>,
    /// Group index to group id.
    gids: Mutex<Vec<Option<GroupId>>>,
    /// Futures built.
    created: AtomicUsize,
    /// Per node: how many times its future was dropped.
    drops: Vec<AtomicU32>,
    /// Per node: its future returned `Ready` before it was dropped.
    finished: Vec<AtomicBool>,
    tokens: DropCounter,
    /// `on_task_exit`, by task id; tasks reported twice.
    exits: Mutex<HashMap<TaskId, ExitRecord>>,
    exits_twice: Mutex<Vec<TaskId>>,
    /// Every awaited handle: node index and what it yielded.
    handles: Mutex<Vec<(usize, Result<(), TaskError>)>>,
    joins: Mutex<Vec<JoinRecord>>,
    /// Polls after a visible cancellation, and other problems seen by the tasks.
    violations: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    fn new(plan: Plan) -> World {
        let (n, g) = (plan.nodes.len(), plan.groups.len());
        World {
            plan,
            ids: Mutex::new(vec![None; n]),
            gids: Mutex::new(vec![None; g]),
            created: AtomicUsize::new(0),
            drops: (0..n).map(|_| AtomicU32::new(0)).collect(),
            finished: (0..n).map(|_| AtomicBool::new(false)).collect(),
            tokens: DropCounter::new(),
            exits: Mutex::new(HashMap::new()),
            exits_twice: Mutex::new(Vec::new()),
            handles: Mutex::new(Vec::new()),
            joins: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        }
    }

    fn record_exit(&self, id: TaskId, record: ExitRecord) {
        if lock(&self.exits).insert(id, record).is_some() {
            lock(&self.exits_twice).push(id);
        }
    }

    fn violation(&self, what: String) {
        lock(&self.violations).push(what);
    }
}

/// The error a node returns: its own (`Fail`), or its children's (`propagate`).
#[derive(Debug)]
struct NodeFail {
    node: usize,
    propagated: bool,
}

impl fmt::Display for NodeFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} failed (propagated: {})",
            self.node, self.propagated
        )
    }
}

impl std::error::Error for NodeFail {}

// ---------------------------------------------------------------------------------------
// The tasks
// ---------------------------------------------------------------------------------------

/// Pending once, after waking itself through a clone of its waker.
#[derive(Debug, Default)]
struct WakeSelf {
    woken: bool,
}

impl Future for WakeSelf {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken {
            return Poll::Ready(());
        }
        self.woken = true;
        // On purpose: an owned clone, woken by value (`yield_now` uses `wake_by_ref`).
        #[allow(clippy::waker_clone_wake)]
        cx.waker().clone().wake();
        Poll::Pending
    }
}

/// Panics in `Drop` while armed, unless the thread is already unwinding (a panic then
/// would abort the process): the program disarms it when it finishes, so it only fires
/// when the future is dropped unfinished, i.e. cancelled.
#[derive(Debug)]
struct DropPanic {
    node: usize,
    armed: bool,
}

impl Drop for DropPanic {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
            panic!("drop-panic {}", self.node);
        }
    }
}

type Body = Pin<Box<dyn Future<Output = Result<(), NodeFail>> + Send>>;

/// A node's future: its program, wrapped to check cancellation at poll.
///
/// `probe` is a child of the node's group with no members: it is cancelled (with
/// `ParentCancelled`) inside the group's `cancel`, after the group's own flag is set. So
/// once a poll has seen `probe.is_cancelled()`, the executor's check before the next poll
/// must see the group cancelled, on any thread: a next poll is a violation.
struct Checked {
    world: Arc<World>,
    node: usize,
    probe: Arc<TaskGroup>,
    seen_cancel: bool,
    finished: bool,
    body: Body,
}

impl Future for Checked {
    type Output = Result<(), NodeFail>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.seen_cancel {
            this.world.violation(format!(
                "node {} was polled after an earlier poll saw its group cancelled",
                this.node
            ));
        }
        this.seen_cancel |= this.probe.is_cancelled();
        let polled = this.body.as_mut().poll(cx);
        match polled {
            Poll::Ready(_) => this.finished = true,
            Poll::Pending => this.seen_cancel |= this.probe.is_cancelled(),
        }
        polled
    }
}

impl Drop for Checked {
    fn drop(&mut self) {
        self.world.drops[self.node].fetch_add(1, SeqCst);
        self.world.finished[self.node].store(self.finished, SeqCst);
    }
}

/// Builds node `n`'s future. `own` is its group, for `CancelOwnGroup`.
fn node_future(
    world: Arc<World>,
    n: usize,
    probe: Arc<TaskGroup>,
    own: Option<Arc<TaskGroup>>,
) -> Checked {
    world.created.fetch_add(1, SeqCst);
    let guard = DropPanic {
        node: n,
        armed: world.plan.nodes[n].drop_panics,
    };
    let token = world.tokens.token();
    let body: Body = Box::pin({
        let world = world.clone();
        let probe = probe.clone();
        async move {
            // Captured, so dropped (and counted, and armed) even if never polled.
            let mut guard = guard;
            let _token: DropToken = token;
            let result = run_ops(world, n, probe, own).await;
            guard.armed = false;
            result
        }
    });
    Checked {
        world,
        node: n,
        probe,
        seen_cancel: false,
        finished: false,
        body,
    }
}

async fn run_ops(
    world: Arc<World>,
    n: usize,
    probe: Arc<TaskGroup>,
    mut own: Option<Arc<TaskGroup>>,
) -> Result<(), NodeFail> {
    for i in 0..world.plan.nodes[n].ops.len() {
        match world.plan.nodes[n].ops[i] {
            POp::Yield => warden::yield_now().await,
            POp::WakeSelf => WakeSelf::default().await,
            POp::Sleep(us) => warden::sleep(Duration::from_micros(us.into())).await,
            POp::Panic => panic!("boom {n}"),
            POp::Fail => {
                return Err(NodeFail {
                    node: n,
                    propagated: false,
                });
            }
            POp::CancelOwnGroup => {
                if let Some(group) = own.take() {
                    group.cancel_with("self");
                }
            }
            POp::Children(g) => {
                let failed = run_group(world.clone(), g, Some(probe.clone())).await;
                if failed {
                    return Err(NodeFail {
                        node: n,
                        propagated: true,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Creates group `g`, spawns its members, handles their handles, joins or drops it.
/// Returns `true` if the owner must fail (`propagate` and the join reported failures).
async fn run_group(world: Arc<World>, g: usize, owner_probe: Option<Arc<TaskGroup>>) -> bool {
    let spec = &world.plan.groups[g];
    let mut group = match spec.kind {
        Kind::New => TaskGroup::new(),
        Kind::Supervisor => TaskGroup::supervisor(),
        Kind::Nested => owner_probe
            .as_ref()
            .expect("a nested group has an owner")
            .child(),
    };
    drop(owner_probe);
    if let Some(us) = spec.timeout_us {
        group = group.with_timeout(Duration::from_micros(us.into()));
    }
    lock(&world.gids)[g] = Some(group.id());
    let mut group = Arc::new(group);
    let mut before = Vec::new();
    let mut after = Vec::new();
    for &m in &spec.members {
        let member = &world.plan.nodes[m];
        let probe = Arc::new(group.child());
        let own = member.cancels_own_group().then(|| group.clone());
        let handle = group.spawn(node_future(world.clone(), m, probe, own));
        lock(&world.ids)[m] = Some(handle.id());
        match member.handling {
            Handling::Await => before.push((m, handle)),
            Handling::Detach => handle.detach(),
            Handling::AwaitAfterJoin => after.push((m, handle)),
            Handling::Cancel => {
                handle.cancel();
                before.push((m, handle));
            }
        }
    }
    if spec.cancel_after_spawn {
        group.cancel_with("owner");
    }
    for (m, handle) in before {
        let result = handle.await;
        lock(&world.handles).push((m, result));
    }
    let mut fail = false;
    if spec.join {
        // Members that may cancel the group hold it too; they let go when they have
        // cancelled it or when their future is dropped.
        let group = loop {
            match Arc::try_unwrap(group) {
                Ok(group) => break group,
                Err(shared) => {
                    group = shared;
                    warden::yield_now().await;
                }
            }
        };
        let record = match group.join().await {
            Ok(()) => JoinRecord {
                group: g,
                reported_group: None,
                failures: Vec::new(),
                cancelled: 0,
                reason: None,
                ok: true,
            },
            Err(err) => JoinRecord {
                group: g,
                reported_group: Some(err.group()),
                failures: err.failures().iter().map(|e| e.task().id()).collect(),
                cancelled: err.cancelled(),
                reason: err.reason().cloned(),
                ok: false,
            },
        };
        fail = spec.propagate && !record.failures.is_empty();
        lock(&world.joins).push(record);
    } else {
        drop(group);
    }
    for (m, handle) in after {
        let result = handle.await;
        lock(&world.handles).push((m, result));
    }
    fail
}

// ---------------------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------------------

/// Runs `body` on its own thread; a hang (a bug) fails the case after 30 s.
fn with_hang_guard(
    body: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(result) => {
            let _ = thread.join();
            result
        }
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => Err("the case thread ended without a result".into()),
        },
        Err(RecvTimeoutError::Timeout) => Err("the case hung (no result after 30 s)".into()),
    }
}

fn run_case(flavor: Flavor, root: Group) -> Result<(), String> {
    with_hang_guard(move || run_case_here(flavor, &root))
}

fn run_case_here(flavor: Flavor, root: &Group) -> Result<(), String> {
    let world = Arc::new(World::new(Plan::new(root)));
    let hook = HookLog::new();
    let builder = hook.builder().backtraces(Backtraces::Off).on_task_exit({
        let world = world.clone();
        move |info, exit| {
            let exit = match exit {
                TaskExit::Completed => Exit::Completed,
                TaskExit::Failed(err) => Exit::Failed((*err).clone()),
                TaskExit::Cancelled(reason) => Exit::Cancelled((*reason).clone()),
            };
            world.record_exit(
                info.id(),
                ExitRecord {
                    exit,
                    group: info.group(),
                    parent: info.parent(),
                },
            );
        }
    });
    let rt = flavor.build(builder);
    let root_failed = rt.block_on(run_group(world.clone(), 0, None));
    // Members of groups dropped without `join` may still be finishing.
    let deadline = Instant::now() + Duration::from_secs(10);
    rt.block_on(async {
        while rt.metrics().live > 0 && Instant::now() < deadline {
            warden::sleep(Duration::from_micros(50)).await;
        }
    });
    let metrics = rt.metrics();
    let timers = rt.timer_count();
    // Dropping the executor joins the pool's workers: every hook call has returned.
    drop(rt);
    let mut problems = check(&world, &hook, flavor);
    assert_adds_up(&metrics);
    let count = |want: fn(&Exit) -> bool| {
        lock(&world.exits)
            .values()
            .filter(|r| want(&r.exit))
            .count() as u64
    };
    let spawned = lock(&world.ids).iter().flatten().count() as u64;
    let expected = warden::Metrics {
        spawned,
        completed: count(|e| matches!(e, Exit::Completed)),
        panicked: count(|e| matches!(e, Exit::Failed(err) if err.is_panic())),
        errored: count(|e| matches!(e, Exit::Failed(err) if err.is_error())),
        cancelled: count(|e| matches!(e, Exit::Cancelled(_))),
        polls: metrics.polls,
        live: 0,
        ..metrics
    };
    if metrics != expected {
        problems.push(format!("metrics {metrics:?}, expected {expected:?}"));
    }
    if timers != 0 {
        problems.push(format!("{timers} timers left after every task ended"));
    }
    let root_join_failed = lock(&world.joins)
        .iter()
        .any(|j| j.group == 0 && !j.failures.is_empty());
    if root_failed != (world.plan.groups[0].propagate && root_join_failed) {
        problems.push("the root's propagate flag disagrees with its join".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Every check but the metrics; returns the problems found.
fn check(world: &World, hook: &HookLog, flavor: Flavor) -> Vec<String> {
    let plan = &world.plan;
    let mut problems: Vec<String> = lock(&world.violations).clone();
    let ids = lock(&world.ids).clone();
    let gids = lock(&world.gids).clone();
    let exits = lock(&world.exits).clone();
    let node_of: HashMap<TaskId, usize> = ids
        .iter()
        .enumerate()
        .filter_map(|(n, id)| id.map(|id| (id, n)))
        .collect();
    let exit_of = |n: usize| ids[n].and_then(|id| exits.get(&id));
    let is_failed = |n: usize| {
        matches!(
            exit_of(n),
            Some(ExitRecord {
                exit: Exit::Failed(_),
                ..
            })
        )
    };
    let drop_panicked = |n: usize| {
        matches!(exit_of(n), Some(ExitRecord { exit: Exit::Failed(e), .. })
            if e.panic_message() == Some(&format!("drop-panic {n}")))
    };

    // (a) Each task accounted for exactly once.
    for id in lock(&world.exits_twice).iter() {
        problems.push(format!("task {id} exited twice"));
    }
    for id in exits.keys() {
        if !node_of.contains_key(id) {
            problems.push(format!(
                "task {id} exited but was never spawned by the tree"
            ));
        }
    }
    let spawned = node_of.len();
    let created = world.created.load(SeqCst);
    if created != spawned {
        problems.push(format!("{created} futures built, {spawned} tasks spawned"));
    }
    // (d) Every destructor ran.
    if world.tokens.count() != created {
        problems.push(format!(
            "{} of {created} drop tokens dropped",
            world.tokens.count()
        ));
    }

    let (may_cancel_node, _) = plan.may_cancel();
    for (n, spec) in plan.nodes.iter().enumerate() {
        let g = &plan.groups[spec.group];
        let owner_exit = g.owner.map(|o| exit_of(o).map(|r| &r.exit));
        let drops = world.drops[n].load(SeqCst);
        let Some(id) = ids[n] else {
            if drops != 0 {
                problems.push(format!(
                    "node {n} was never spawned, yet its future was dropped"
                ));
            }
            match owner_exit {
                None => problems.push(format!("root member {n} was never spawned")),
                Some(Some(Exit::Completed)) => problems.push(format!(
                    "node {n} was never spawned, yet its owner completed"
                )),
                Some(_) => {}
            }
            continue;
        };
        if drops != 1 {
            problems.push(format!(
                "node {n} ({id}): its future was dropped {drops} times"
            ));
        }
        let Some(record) = exits.get(&id) else {
            problems.push(format!("node {n} ({id}) never exited"));
            continue;
        };
        if record.group != gids[spec.group] {
            problems.push(format!(
                "node {n} ({id}): exit names group {:?}",
                record.group
            ));
        }
        let parent = g.owner.and_then(|o| ids[o]);
        if record.parent != parent {
            problems.push(format!(
                "node {n} ({id}): parent {:?}, expected {parent:?}",
                record.parent
            ));
        }
        let finished = world.finished[n].load(SeqCst);
        let cancel_then_pend = spec
            .ops
            .iter()
            .skip_while(|op| !matches!(op, POp::CancelOwnGroup))
            .any(|op| matches!(op, POp::Yield | POp::WakeSelf));
        match &record.exit {
            Exit::Completed => {
                if !finished {
                    problems.push(format!("node {n} completed, but its future did not finish"));
                }
                if spec.has(|op| matches!(op, POp::Panic | POp::Fail)) {
                    problems.push(format!(
                        "node {n} completed, but its program panics or fails"
                    ));
                }
                if cancel_then_pend {
                    problems.push(format!(
                        "node {n} completed, but it cancels its own group and then yields"
                    ));
                }
            }
            Exit::Failed(err) if err.is_panic() => {
                let msg = err.panic_message().unwrap_or("");
                if msg == format!("boom {n}") {
                    if !spec.has(|op| matches!(op, POp::Panic)) {
                        problems.push(format!("node {n} panicked 'boom' without a Panic op"));
                    }
                } else if msg == format!("drop-panic {n}") {
                    if !spec.drop_panics {
                        problems.push(format!(
                            "node {n} has no drop guard, yet it panicked in Drop"
                        ));
                    }
                    if finished {
                        problems.push(format!(
                            "node {n}'s guard panicked after the program finished"
                        ));
                    }
                } else {
                    problems.push(format!(
                        "node {n} panicked with an unexpected message: {err}"
                    ));
                }
            }
            Exit::Failed(err) => match err.downcast_ref::<NodeFail>() {
                Some(fail) if fail.node == n => {
                    let why_ok = if fail.propagated {
                        spec.ops.iter().any(|op| {
                            matches!(op, POp::Children(c) if plan.groups[*c].join && plan.groups[*c].propagate)
                        })
                    } else {
                        spec.has(|op| matches!(op, POp::Fail))
                    };
                    if !why_ok || !finished {
                        problems.push(format!(
                            "node {n} failed with an error its program cannot return: {err}"
                        ));
                    }
                }
                _ => problems.push(format!("node {n} failed with a foreign error: {err}")),
            },
            Exit::Cancelled(reason) => {
                if finished {
                    problems.push(format!("node {n} was cancelled after its future finished"));
                }
                if spec.drop_panics {
                    problems.push(format!(
                        "node {n} was cancelled, but its guard panics in Drop: that panic is \
                         its failure"
                    ));
                }
                let allowed = match reason {
                    CancelReason::Explicit(None) => spec.handling == Handling::Cancel,
                    CancelReason::Explicit(Some(who)) if who == "self" => {
                        g.members.iter().any(|&m| plan.nodes[m].cancels_own_group())
                    }
                    CancelReason::Explicit(Some(who)) if who == "owner" => g.cancel_after_spawn,
                    CancelReason::SiblingFailed(sibling) => {
                        g.kind != Kind::Supervisor
                            && node_of
                                .get(sibling)
                                .is_some_and(|&s| plan.nodes[s].group == spec.group && is_failed(s))
                    }
                    CancelReason::Deadline => g.timeout_us.is_some(),
                    CancelReason::ParentCancelled => g.kind == Kind::Nested,
                    CancelReason::GroupDropped => {
                        !g.join
                            || g.owner.is_some_and(|o| {
                                matches!(
                                    exit_of(o),
                                    Some(ExitRecord {
                                        exit: Exit::Cancelled(_),
                                        ..
                                    })
                                ) || drop_panicked(o)
                            })
                    }
                    _ => false,
                };
                if !allowed {
                    problems.push(format!(
                        "node {n} cancelled with a reason the tree cannot produce: {reason:?}"
                    ));
                }
            }
        }
        // Cancelled through its handle before the local executor could run it.
        if flavor == Flavor::Local && spec.handling == Handling::Cancel {
            let as_expected = matches!(&record.exit, Exit::Cancelled(CancelReason::Explicit(None)))
                || (spec.drop_panics && drop_panicked(n));
            if !as_expected {
                problems.push(format!(
                    "node {n}: cancelled through its handle right after spawn on the local executor, \
                     but ended {:?}",
                    record.exit
                ));
            }
        }
        // Nothing in the tree can cancel this node: it runs its program to the end (or to
        // its first panic or `Err`; a propagating join fails it if the join reported
        // failures), and ends as that says.
        if !may_cancel_node[n] {
            let mut expected = "complete";
            for op in &spec.ops {
                match op {
                    POp::Panic => expected = "panic",
                    POp::Fail => expected = "fail",
                    POp::Children(c) if plan.groups[*c].join && plan.groups[*c].propagate => {
                        let joins = lock(&world.joins);
                        match joins.iter().find(|j| j.group == *c) {
                            Some(join) if !join.failures.is_empty() => expected = "fail",
                            Some(_) => continue,
                            None => expected = "have joined its children",
                        }
                    }
                    _ => continue,
                }
                break;
            }
            let actual = match &record.exit {
                Exit::Completed => "complete",
                Exit::Failed(e) if e.is_panic() => "panic",
                Exit::Failed(_) => "fail",
                Exit::Cancelled(_) => "cancelled",
            };
            if expected != actual {
                problems.push(format!(
                    "node {n} cannot be cancelled by anything in the tree and should {expected}, \
                     but ended {:?}",
                    record.exit
                ));
            }
        }
    }

    // Handles agree with the exits.
    let mut observed: HashSet<TaskId> = HashSet::new();
    for (n, result) in lock(&world.handles).iter() {
        let Some(record) = exit_of(*n) else { continue };
        let agrees = match (result, &record.exit) {
            (Ok(()), Exit::Completed) => true,
            (Err(e), Exit::Cancelled(r)) => e.cancel_reason() == Some(r),
            (Err(e), Exit::Failed(f)) => {
                observed.insert(e.task().id());
                !e.is_cancelled()
                    && e.is_panic() == f.is_panic()
                    && e.panic_message() == f.panic_message()
            }
            _ => false,
        };
        if !agrees
            || result
                .as_ref()
                .err()
                .is_some_and(|e| Some(e.task().id()) != ids[*n])
        {
            problems.push(format!(
                "node {n}: handle yielded {result:?}, exit was {:?}",
                record.exit
            ));
        }
    }

    // Each join reports exactly its members' failures and cancellations.
    for join in lock(&world.joins).iter() {
        let g = &plan.groups[join.group];
        let mut failed: Vec<TaskId> = g
            .members
            .iter()
            .filter(|&&m| is_failed(m))
            .filter_map(|&m| ids[m])
            .collect();
        let cancelled = g
            .members
            .iter()
            .filter(|&&m| {
                matches!(
                    exit_of(m),
                    Some(ExitRecord {
                        exit: Exit::Cancelled(_),
                        ..
                    })
                )
            })
            .count();
        let mut reported = join.failures.clone();
        failed.sort_by_key(|id| id.as_u64());
        reported.sort_by_key(|id| id.as_u64());
        if reported != failed
            || join.cancelled != cancelled
            || join.ok != (failed.is_empty() && cancelled == 0)
        {
            problems.push(format!(
                "group {}: join reported {:?} failed and {} cancelled (ok: {}), members: {failed:?} failed and {cancelled} cancelled",
                join.group, join.failures, join.cancelled, join.ok
            ));
        }
        if join.reported_group.is_some() && join.reported_group != gids[join.group] {
            problems.push(format!(
                "group {}: GroupError names another group",
                join.group
            ));
        }
        let reason_ok = match &join.reason {
            None => true,
            Some(CancelReason::Explicit(Some(who))) if who == "self" => {
                g.members.iter().any(|&m| plan.nodes[m].cancels_own_group())
            }
            Some(CancelReason::Explicit(Some(who))) if who == "owner" => g.cancel_after_spawn,
            Some(CancelReason::SiblingFailed(id)) => {
                g.kind != Kind::Supervisor && failed.contains(id)
            }
            Some(CancelReason::Deadline) => g.timeout_us.is_some(),
            Some(CancelReason::ParentCancelled) => g.kind == Kind::Nested,
            Some(_) => false,
        };
        if !reason_ok {
            problems.push(format!(
                "group {}: join's reason {:?} cannot happen",
                join.group, join.reason
            ));
        }
        observed.extend(join.failures.iter().copied());
    }

    // (b) Each failure observed exactly once: by a handle or a join, or else by the hook.
    let mut hooked: HashMap<TaskId, usize> = HashMap::new();
    for err in hook.errors() {
        if err.is_cancelled() {
            problems.push(format!("the error hook saw a cancellation: {err}"));
        }
        *hooked.entry(err.task().id()).or_default() += 1;
    }
    for (id, record) in &exits {
        let hook_count = hooked.remove(id).unwrap_or(0);
        match &record.exit {
            Exit::Failed(_) => {
                let by_others = observed.contains(id);
                if by_others && hook_count != 0 {
                    problems.push(format!(
                        "failure of {id} observed by a handle or a join, and by the hook"
                    ));
                } else if !by_others && hook_count != 1 {
                    problems.push(format!(
                        "unobserved failure of {id} reached the hook {hook_count} times"
                    ));
                }
            }
            _ if hook_count != 0 => problems.push(format!("the hook saw {id}, which did not fail")),
            _ => {}
        }
    }
    for id in hooked.keys() {
        problems.push(format!("the hook saw {id}, which never exited"));
    }
    problems
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_trees_on_the_local_executor(root in tree()) {
        if let Err(problems) = run_case(Flavor::Local, root) {
            prop_assert!(false, "{}", problems);
        }
    }

    #[test]
    fn random_trees_on_the_pool(root in tree()) {
        if let Err(problems) = run_case(Flavor::Pool, root) {
            prop_assert!(false, "{}", problems);
        }
    }
}

//! The live task dump (`ex.dump()`, `handle.dump()`), on both executors: the dump of a known
//! tree (a group with named members, a parent with a detached child, a task blocked on a
//! channel, a running task with a queued child, and on the pool a task spinning on the
//! other worker) matches it exactly in structure, names, states and poll counts, with the
//! durations at least what the test waited; `Display` prints that tree; iterating yields
//! every live task once; a dump taken on another thread while tasks run lists them all
//! (the pool) or those it can see (a `LocalExecutor`'s handle, away from its thread); a task
//! whose parent ended sits at the top and names it; and a chain of live parents deeper than
//! the tree indents still prints every task, with bounded indentation.

mod support;

use std::collections::HashSet;
use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use futures::channel::oneshot;
use support::{Flavor, Rt, bounded, unit};
use warden::{GroupId, TaskDump, TaskId, TaskSnapshot, TaskState};

/// How long the test leaves the idle tasks idle, and the running ones running, before the
/// dump: their durations must be at least this.
const WAITED: Duration = Duration::from_millis(20);

/// Runs the executor until `n` tasks are idle (the pool runs by itself: just wait).
fn settle(rt: &Rt, n: usize) {
    for _ in 0..10_000 {
        if let Rt::Local(ex) = rt {
            ex.run_until_idle();
        }
        let idle = dump_of(rt)
            .iter()
            .filter(|t| matches!(t.state(), TaskState::Idle { .. }))
            .count();
        if idle == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{n} tasks never became idle:\n{}", dump_of(rt));
}

fn dump_of(rt: &Rt) -> TaskDump {
    match rt {
        Rt::Local(ex) => ex.dump(),
        Rt::Pool(ex) => ex.dump(),
    }
}

/// What the test expects of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Queued,
    Running,
    Idle,
}

#[derive(Debug, PartialEq, Eq)]
struct Expected {
    id: TaskId,
    name: &'static str,
    parent: Option<TaskId>,
    group: Option<GroupId>,
    kind: Kind,
    polls: u64,
}

fn seen(t: &TaskSnapshot) -> Expected {
    let kind = match t.state() {
        TaskState::Queued => Kind::Queued,
        TaskState::Running { .. } => Kind::Running,
        TaskState::Idle { .. } => Kind::Idle,
    };
    let name = t.name().expect("every task here has a name");
    Expected {
        id: t.id(),
        name: Box::leak(name.to_owned().into_boxed_str()),
        parent: t.parent(),
        group: t.group(),
        kind,
        polls: t.polls(),
    }
}

rt_test! {
    fn the_dump_of_a_known_tree_matches_it(flavor) {
        bounded(move || known_tree(flavor));
    }

    fn a_dump_from_another_thread_while_tasks_run(flavor) {
        bounded(move || from_another_thread(flavor));
    }

    fn a_task_whose_parent_ended_is_at_the_top_and_says_so(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let (tx, rx) = mpsc::channel();
            let parent = rt.spawn_named("parent", async move {
                // Detached: it keeps its waker, or it would be freed as a lost waker.
                tx.send(warden::spawn_named("orphan", support::wait_forever()).id()).unwrap();
            });
            let parent_id = parent.id();
            rt.block_on(parent).unwrap();
            let orphan = rx.recv().unwrap();
            settle(&rt, 1);
            let dump = dump_of(&rt);
            assert_eq!(dump.len(), 1);
            assert_eq!(dump.get(orphan).unwrap().parent(), Some(parent_id));
            let text = dump.to_string();
            let line = text.lines().nth(1).unwrap();
            assert!(line.starts_with(&format!("task 'orphan' {orphan}: idle for ")), "{text}");
            assert!(line.ends_with(&format!(", by {parent_id} (ended)")), "{text}");
            rt.shutdown();
        });
    }
}

/// A chain of live parents deeper than the tree indents: every task still gets its line,
/// one below the other, and the indentation stops growing.
#[test]
fn a_deep_chain_prints_every_task_with_bounded_indentation() {
    const DEPTH: usize = 100;
    fn nest(left: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'static>> {
        Box::pin(async move {
            if left > 0 {
                warden::spawn_local_named(format!("level-{left}"), nest(left - 1)).detach();
            }
            // Detached: each keeps its waker, or it would be freed as a lost waker.
            support::wait_forever().await
        })
    }
    let ex = warden::LocalExecutor::new();
    ex.spawn_named("root", nest(DEPTH)).detach();
    ex.run_until_idle();
    let dump = ex.dump();
    assert_eq!(dump.len(), DEPTH + 1);
    let text = dump.to_string();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), DEPTH + 1, "{text}");
    let column = |l: &&str| l[..l.find("task ").unwrap()].chars().count();
    let widest = lines.iter().map(column).max().unwrap();
    let deepest = lines.last().unwrap();
    assert!(deepest.contains("'level-1'"), "{deepest}");
    // Each level indents by one four-column step (`└── ` is four characters) up to 32.
    assert!(widest <= 4 * 33, "indentation grew to {widest} columns");
    // Every task is there: ids in tree order are the spawn order here.
    let ids: Vec<TaskId> = dump.iter().map(|t| t.id()).collect();
    for (line, id) in lines.iter().zip(&ids) {
        assert!(line.contains(&format!("{id}: ")), "{line} should be {id}");
    }
}

fn known_tree(flavor: Flavor) {
    let rt = flavor.rt();
    let pool = flavor == Flavor::Pool;
    let group = rt.group();
    let a = group.spawn_named("member-a", unit(pending()));
    let b = group.spawn_named("member-b", unit(pending()));
    let (child_tx, child_rx) = mpsc::channel::<TaskId>();
    let parent = rt.spawn_named("parent", async move {
        // Detached: it keeps its waker, or it would be freed as a lost waker.
        let child = warden::spawn_named("child", support::wait_forever());
        child_tx.send(child.id()).unwrap();
        child.detach();
        pending::<()>().await
    });
    let (_keep_sender, rx) = oneshot::channel::<()>();
    let blocked = rt.spawn_named("blocked", async move {
        let _ = rx.await;
    });
    settle(&rt, 5);
    let child = child_rx.recv().unwrap();

    // The pool's other worker spins, so that nothing steals the queued task below.
    let release = Arc::new(AtomicBool::new(false));
    let spinner = pool.then(|| {
        let spinning = Arc::new(AtomicBool::new(false));
        let spinner = rt.spawn_named("spinner", {
            let (spinning, release) = (spinning.clone(), release.clone());
            async move {
                spinning.store(true, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            }
        });
        while !spinning.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        spinner
    });
    std::thread::sleep(WAITED);

    // A task that spawns a child (queued behind it: the poll is still running) and takes
    // the dump from inside its own poll.
    let (dump_tx, dump_rx) = mpsc::channel::<(TaskDump, TaskId)>();
    let handle = rt.handle();
    let dumper = rt.spawn_named("dumper", async move {
        let queued = warden::spawn_named("queued", async {});
        std::thread::sleep(WAITED);
        dump_tx.send((handle.dump(), queued.id())).unwrap();
    });
    if let Rt::Local(ex) = &rt {
        ex.run_until_idle();
    }
    let (dump, queued) = dump_rx.recv().unwrap();
    release.store(true, Ordering::SeqCst);

    // Structure, names, states, poll counts: exactly.
    let g = Some(group.id());
    let mut expected = vec![
        Expected {
            id: a.id(),
            name: "member-a",
            parent: None,
            group: g,
            kind: Kind::Idle,
            polls: 1,
        },
        Expected {
            id: b.id(),
            name: "member-b",
            parent: None,
            group: g,
            kind: Kind::Idle,
            polls: 1,
        },
        Expected {
            id: parent.id(),
            name: "parent",
            parent: None,
            group: None,
            kind: Kind::Idle,
            polls: 1,
        },
        Expected {
            id: blocked.id(),
            name: "blocked",
            parent: None,
            group: None,
            kind: Kind::Idle,
            polls: 1,
        },
        Expected {
            id: child,
            name: "child",
            parent: Some(parent.id()),
            group: None,
            kind: Kind::Idle,
            polls: 1,
        },
        Expected {
            id: dumper.id(),
            name: "dumper",
            parent: None,
            group: None,
            kind: Kind::Running,
            polls: 1,
        },
        Expected {
            id: queued,
            name: "queued",
            parent: Some(dumper.id()),
            group: None,
            kind: Kind::Queued,
            polls: 0,
        },
    ];
    if let Some(spinner) = &spinner {
        expected.push(Expected {
            id: spinner.id(),
            name: "spinner",
            parent: None,
            group: None,
            kind: Kind::Running,
            polls: 1,
        });
    }
    expected.sort_by_key(|e| e.id);
    let got: Vec<Expected> = dump.iter().map(seen).collect();
    assert_eq!(got, expected, "the dump:\n{dump}");
    assert!(dump.is_complete());

    // Durations: the variant's lower bounds; the worker within the pool.
    let mut workers = HashSet::new();
    for task in &dump {
        match task.state() {
            TaskState::Idle { since } => assert!(since >= WAITED, "{task:?}"),
            TaskState::Running { worker, for_ } => {
                assert!(for_ >= WAITED, "{task:?}");
                assert!(worker < if pool { 2 } else { 1 }, "{task:?}");
                workers.insert(worker);
            }
            TaskState::Queued => {}
        }
        assert_eq!(task.spawned_at().file(), file!());
    }
    assert_eq!(
        workers.len(),
        if pool { 2 } else { 1 },
        "the running tasks' workers"
    );

    // Iteration: every live task once, by value too.
    let ids: Vec<TaskId> = dump.clone().into_iter().map(|t| t.id()).collect();
    assert_eq!(ids.len(), expected.len());
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "a task listed twice"
    );
    assert_eq!(dump.len(), expected.len());

    // Display: the tree, line by line (what follows each state word varies).
    let label = |name: &str, id: TaskId| format!("task '{name}' {id}: ");
    let running = if pool {
        "running on worker "
    } else {
        "running for "
    };
    let mut lines = vec![
        format!(
            "{} live tasks on {}: {} running, 1 queued, 5 idle",
            expected.len(),
            if pool {
                "an Executor"
            } else {
                "a LocalExecutor"
            },
            if pool { 2 } else { 1 }
        ),
        format!("{}", group.id()),
        format!("├── {}idle for ", label("member-a", a.id())),
        format!("└── {}idle for ", label("member-b", b.id())),
        format!("{}idle for ", label("parent", parent.id())),
        format!("└── {}idle for ", label("child", child)),
        format!("{}idle for ", label("blocked", blocked.id())),
    ];
    if let Some(spinner) = &spinner {
        lines.push(format!("{}{running}", label("spinner", spinner.id())));
    }
    lines.push(format!("{}{running}", label("dumper", dumper.id())));
    lines.push(format!(
        "└── {}queued, 0 polls, spawned at {}:",
        label("queued", queued),
        file!()
    ));
    let text = dump.to_string();
    let shown: Vec<&str> = text.lines().collect();
    assert_eq!(shown.len(), lines.len(), "the dump:\n{text}");
    for (shown, expected) in shown.iter().zip(&lines) {
        assert!(
            shown.starts_with(expected.as_str()),
            "{shown:?} should start with {expected:?}; the dump:\n{text}"
        );
    }
    for line in shown.iter().filter(|l| l.contains("idle for")) {
        assert!(line.contains(", 1 poll, spawned at "), "{line:?}");
    }
    drop(dump);
    rt.shutdown();
}

fn from_another_thread(flavor: Flavor) {
    const OWN: usize = 10;
    const REMOTE: usize = 2;
    let rt = flavor.rt();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = |stop: Arc<AtomicBool>| async move {
        while !stop.load(Ordering::SeqCst) {
            warden::yield_now().await;
        }
    };
    let own: Vec<TaskId> = (0..OWN)
        .map(|_| rt.spawn(busy(stop.clone())).id())
        .collect();
    let handle = rt.handle();
    let (stop2, busy2) = (stop.clone(), busy);
    let dumper = std::thread::spawn(move || {
        let remote: Vec<TaskId> = (0..REMOTE)
            .map(|_| handle.spawn(busy2(stop2.clone())).id())
            .collect();
        let dumps: Vec<TaskDump> = (0..20).map(|_| handle.dump()).collect();
        stop2.store(true, Ordering::SeqCst);
        (remote, dumps)
    });
    // The tasks run meanwhile: the pool's workers run them, the local one runs here.
    support::drive_until(&rt, || stop.load(Ordering::SeqCst));
    let (remote, dumps) = dumper.join().unwrap();
    for dump in &dumps {
        let ids: Vec<TaskId> = dump.iter().map(|t| t.id()).collect();
        let unique: HashSet<TaskId> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "a task listed twice:\n{dump}");
        let expected: HashSet<TaskId> = match flavor {
            // Every task, from any thread.
            Flavor::Pool => own.iter().chain(&remote).copied().collect(),
            // Away from its thread, a LocalExecutor's dump has only the tasks spawned
            // through handles elsewhere, and says so.
            Flavor::Local => remote.iter().copied().collect(),
        };
        assert_eq!(unique, expected, "the dump:\n{dump}");
        assert_eq!(dump.is_complete(), flavor == Flavor::Pool);
        if flavor == Flavor::Local {
            assert!(
                dump.to_string()
                    .contains("(not listed: tasks spawned on the LocalExecutor's own thread")
            );
        }
    }
    rt.shutdown();
}

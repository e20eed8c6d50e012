//! Spawning tasks and joining their values, on both executors: values of several types,
//! names and ids, `is_finished`, `detach`, `warden::spawn` inside `block_on`, `Handle` from
//! other threads and through `futures::task::SpawnExt`, and parent ids. (A 10 000-deep chain
//! of spawn-and-await is in `tests/adversarial/deep_spawn_chain.rs`.)

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use futures::channel::oneshot;
use futures::task::{Spawn, SpawnExt};
use support::{DropCounter, Flavor, HookLog, assert_adds_up, drive_until_bounded, unit};

/// A value type of our own, to join something that is not from `std`.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: i64,
    y: i64,
}

/// `true` when the current thread is one of the pool's workers (default thread name).
fn on_pool_worker() -> bool {
    thread::current()
        .name()
        .is_some_and(|n| n.starts_with("warden-worker-"))
}

rt_test! {
    fn spawn_and_join_values(flavor) {
        let rt = flavor.rt();
        let a = rt.spawn(async { 1 });
        let b = rt.spawn(async { String::from("two") });
        assert_eq!(rt.block_on(a).unwrap(), 1);
        assert_eq!(rt.block_on(b).unwrap(), "two");
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.live), (2, 2, 0));
    }

    fn spawn_and_join_values_of_several_types(flavor) {
        let rt = flavor.rt();
        let unit_value = rt.spawn(async {});
        let bytes = rt.spawn(async { vec![1u8, 2, 3] });
        let tuple = rt.spawn(async { (7u8, "seven", 7.5f64) });
        let boxed = rt.spawn(async { Some(Box::new(u64::MAX)) });
        let point = rt.spawn(async { Point { x: -3, y: 4 } });
        let shared = rt.spawn(async { Arc::new(AtomicUsize::new(11)) });
        let (unit_value, bytes, tuple, boxed, point, shared) = rt.block_on(async move {
            (
                unit_value.await,
                bytes.await,
                tuple.await,
                boxed.await,
                point.await,
                shared.await,
            )
        });
        unit_value.unwrap();
        assert_eq!(bytes.unwrap(), [1, 2, 3]);
        assert_eq!(tuple.unwrap(), (7, "seven", 7.5));
        assert_eq!(boxed.unwrap(), Some(Box::new(u64::MAX)));
        assert_eq!(point.unwrap(), Point { x: -3, y: 4 });
        assert_eq!(shared.unwrap().load(Ordering::SeqCst), 11);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.live), (6, 6, 0));
        assert_adds_up(&m);
    }

    fn a_plain_task_returning_err_is_a_value_not_a_failure(flavor) {
        // Only group tasks treat `Err` as a failure (Outcome); a plain task's `Result` is
        // its value.
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let handle = rt.spawn(async { Err::<u8, String>("just data".into()) });
        let value = rt.block_on(handle).expect("the task itself succeeded");
        assert_eq!(value, Err("just data".to_owned()));
        let detached = rt.spawn(async { Err::<u8, String>("dropped data".into()) });
        detached.detach();
        drive_until_bounded(&rt, || rt.metrics().live == 0);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.errored, m.panicked), (2, 2, 0, 0));
        drop(rt);
        assert_eq!(hook.len(), 0);
    }

    fn names_and_ids_on_handles(flavor) {
        let rt = flavor.rt();
        let anonymous = rt.spawn(async { 1 });
        let named = rt.spawn_named("fetch-user", async { 2 });
        let owned_name = rt.handle().spawn_named(String::from("owned-name"), async { 3 });
        assert_eq!(anonymous.name(), None);
        assert_eq!(named.name(), Some("fetch-user"));
        assert_eq!(owned_name.name(), Some("owned-name"));
        // Ids are unique and handed out in spawn order (other tests spawn concurrently, so
        // only the order is known, not the numbers).
        assert!(anonymous.id() < named.id(), "{:?} {:?}", anonymous.id(), named.id());
        assert!(named.id() < owned_name.id());
        assert_eq!(named.id().to_string(), format!("#{}", named.id().as_u64()));
        assert_eq!(named.info().id(), named.id());
        assert_eq!(named.info().name(), Some("fetch-user"));
        let debug = format!("{named:?}");
        assert!(debug.contains("fetch-user"), "{debug}");
        // The id and name stay the same in the task's failure report.
        let failing = rt.spawn_named("will-fail", unit(async { panic!("boom") }));
        let failing_id = failing.id();
        let err = rt.block_on(failing).unwrap_err();
        assert_eq!(err.task().id(), failing_id);
        assert_eq!(err.task().name(), Some("will-fail"));
        assert_eq!(rt.block_on(anonymous).unwrap(), 1);
        assert_eq!(rt.block_on(named).unwrap(), 2);
        assert_eq!(rt.block_on(owned_name).unwrap(), 3);
    }

    fn is_finished_tracks_completion(flavor) {
        let rt = flavor.rt();
        let (tx, rx) = oneshot::channel::<u32>();
        let gated = rt.spawn(async move { rx.await.unwrap() * 2 });
        // Let it run up to the gate: it cannot finish before the send.
        drive_until_bounded(&rt, || rt.metrics().polls >= 1);
        assert!(!gated.is_finished());
        tx.send(21).unwrap();
        drive_until_bounded(&rt, || gated.is_finished());
        assert!(gated.is_finished());
        assert_eq!(rt.block_on(gated).unwrap(), 42);

        // Failed and cancelled tasks are finished too.
        let panicked = rt.spawn(unit(async { panic!("boom") }));
        drive_until_bounded(&rt, || panicked.is_finished());
        assert!(rt.block_on(panicked).unwrap_err().is_panic());
        let cancelled = rt.spawn(std::future::pending::<()>());
        assert!(!cancelled.is_finished());
        cancelled.cancel();
        drive_until_bounded(&rt, || cancelled.is_finished());
        assert!(rt.block_on(cancelled).unwrap_err().is_cancelled());
    }

    fn detached_task_still_runs(flavor) {
        let rt = flavor.rt();
        let (tx, rx) = oneshot::channel::<&'static str>();
        let (gate_tx, gate_rx) = oneshot::channel::<()>();
        let handle = rt.spawn(async move {
            gate_rx.await.unwrap();
            tx.send("side effect").unwrap();
        });
        // Detach before it can finish: it must still run to the end.
        handle.detach();
        gate_tx.send(()).unwrap();
        assert_eq!(rt.block_on(rx).unwrap(), "side effect");

        // Dropping the handle detaches too.
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = rt.spawn({
            let ran = ran.clone();
            async move {
                warden::yield_now().await;
                ran.fetch_add(1, Ordering::SeqCst);
            }
        });
        drop(dropped);
        drive_until_bounded(&rt, || ran.load(Ordering::SeqCst) == 1);
        drive_until_bounded(&rt, || rt.metrics().live == 0);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.cancelled, m.live), (2, 2, 0, 0));
    }

    fn detached_value_is_dropped_when_the_task_finishes(flavor) {
        let rt = flavor.rt();
        let drops = DropCounter::new();
        let token = drops.token();
        rt.spawn(async move { token }).detach();
        drive_until_bounded(&rt, || drops.count() == 1);
        assert_eq!(drops.count(), 1);
    }

    fn spawn_inside_block_on_targets_that_executor(flavor) {
        let rt = flavor.rt();
        let other = flavor.rt();
        let test_thread = thread::current().id();
        let (plain, named) = rt.block_on(async {
            let plain = warden::spawn(async { (thread::current().id(), on_pool_worker()) });
            let named = warden::spawn_named("inner", async { on_pool_worker() });
            assert_eq!(named.name(), Some("inner"));
            (plain.await.unwrap(), named.await.unwrap())
        });
        match flavor {
            Flavor::Local => {
                assert_eq!(plain.0, test_thread, "a LocalExecutor task runs on its owner");
                assert!(!plain.1 && !named);
            }
            Flavor::Pool => {
                assert_ne!(plain.0, test_thread, "a pool task runs on a worker");
                assert!(plain.1 && named, "a pool task runs on a warden worker");
            }
        }
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.live), (2, 2, 0));
        assert_eq!(other.metrics().spawned, 0, "the other executor got nothing");
        // ... and inside the other executor's block_on, spawn targets the other one.
        other.block_on(async { warden::spawn(async {}).await.unwrap() });
        assert_eq!(other.metrics().spawned, 1);
        assert_eq!(rt.metrics().spawned, 2);
    }

    fn handle_spawns_from_another_thread(flavor) {
        let rt = flavor.rt();
        let handle = rt.handle();
        let test_thread = thread::current().id();
        let (plain, named) = thread::spawn(move || {
            let plain = handle.spawn(async { (thread::current().id(), 6 * 7) });
            let named = handle.spawn_named("from-thread", async { "named" });
            (plain, named)
        })
        .join()
        .unwrap();
        assert_eq!(named.name(), Some("from-thread"));
        assert_eq!(named.info().parent(), None);
        let (ran_on, value) = rt.block_on(plain).unwrap();
        assert_eq!(value, 42);
        if flavor == Flavor::Local {
            assert_eq!(ran_on, test_thread, "a LocalExecutor runs its tasks on its owner");
        }
        assert_eq!(rt.block_on(named).unwrap(), "named");
        assert_eq!(rt.metrics().spawned, 2);
    }

    fn handle_spawns_from_many_threads(flavor) {
        let rt = flavor.rt();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let handle = rt.handle();
                thread::spawn(move || {
                    (0..25u64)
                        .map(|i| handle.spawn(async move { t * 100 + i }))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let handles: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let total: u64 = rt.block_on(async move {
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            total
        });
        let expected: u64 = (0..4u64).flat_map(|t| (0..25u64).map(move |i| t * 100 + i)).sum();
        assert_eq!(total, expected);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.live), (100, 100, 0));
    }

    fn parent_is_recorded_when_spawned_inside_a_task(flavor) {
        let rt = flavor.rt();
        // From outside any task, and from block_on's root (which is not a task): no parent.
        let outside = rt.spawn(async {});
        assert_eq!(outside.info().parent(), None);
        let from_root = rt.block_on(async {
            let h = warden::spawn(async {});
            let parent = h.info().parent();
            h.await.unwrap();
            parent
        });
        assert_eq!(from_root, None);

        // Parent -> child -> grandchild.
        let parent = rt.spawn(async {
            let child = warden::spawn(async {
                let grandchild = warden::spawn_named("grandchild", async {});
                let grandchild_parent = grandchild.info().parent();
                grandchild.await.unwrap();
                grandchild_parent
            });
            let child_id = child.id();
            let child_parent = child.info().parent();
            let grandchild_parent = child.await.unwrap();
            (child_id, child_parent, grandchild_parent)
        });
        let parent_id = parent.id();
        let (child_id, child_parent, grandchild_parent) = rt.block_on(parent).unwrap();
        assert_eq!(child_parent, Some(parent_id));
        assert_eq!(grandchild_parent, Some(child_id));
        assert_ne!(child_id, parent_id);
        rt.block_on(outside).unwrap();
    }

    fn parent_is_in_the_failure_report(flavor) {
        let rt = flavor.rt();
        let parent = rt.spawn(async {
            let child = warden::spawn(unit(async { panic!("child failed") }));
            child.await.unwrap_err()
        });
        let parent_id = parent.id();
        let err = rt.block_on(parent).unwrap();
        assert_eq!(err.task().parent(), Some(parent_id));
    }

    fn spawn_ext_through_handle(flavor) {
        let rt = flavor.rt();
        let handle = rt.handle();
        assert!(Spawn::status(&handle).is_ok());
        let (tx, rx) = oneshot::channel::<u32>();
        // The inherent `spawn` shadows `SpawnExt::spawn`; name the trait to get the latter.
        SpawnExt::spawn(&handle, async move { tx.send(5).unwrap() }).unwrap();
        assert_eq!(rt.block_on(rx).unwrap(), 5);
        let remote = handle.spawn_with_handle(async { 6 * 7 }).unwrap();
        assert_eq!(rt.block_on(remote), 42);
        drive_until_bounded(&rt, || rt.metrics().live == 0);
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.live), (2, 2, 0));

        // Once the executor is shut down, the spawner says so.
        rt.shutdown();
        assert!(Spawn::status(&handle).unwrap_err().is_shutdown());
        let refused = SpawnExt::spawn(&handle, async {}).unwrap_err();
        assert!(refused.is_shutdown());
    }
}

/// `warden::spawn` with no executor running panics, saying so. (No executor at all: there
/// is nothing to run on both flavors.)
#[test]
fn spawn_outside_any_executor_panics_clearly() {
    let payload = std::panic::catch_unwind(|| warden::spawn(async {})).unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert!(
        message.contains("no warden executor is running"),
        "{message}"
    );
    assert!(message.contains("warden::spawn"), "{message}");
}

/// A `LocalExecutor` joins values that are not `Send` (only it can: the pool needs `Send`).
#[test]
fn local_executor_joins_values_that_are_not_send() {
    let ex = warden::LocalExecutor::new();
    let shared = std::rc::Rc::new(5);
    let handle = ex.spawn({
        let shared = shared.clone();
        async move { std::rc::Rc::new(*shared * 2) }
    });
    assert_eq!(*ex.block_on(handle).unwrap(), 10);
    assert_eq!(std::rc::Rc::strong_count(&shared), 1);
}

/// A generic wrapper around a `JoinHandle<T>` needs no `T: 'static` bound of its own.
struct Labelled<T> {
    label: &'static str,
    handle: warden::JoinHandle<T>,
}

impl<T> Labelled<T> {
    fn describe(&self) -> String {
        format!("{} ({})", self.label, self.handle.id())
    }
}

impl<T> Future for Labelled<T> {
    type Output = Result<T, warden::TaskError>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.handle).poll(cx)
    }
}

#[test]
fn a_generic_wrapper_of_a_join_handle_needs_no_static_bound() {
    let ex = warden::LocalExecutor::new();
    let wrapped = Labelled {
        label: "answer",
        handle: ex.spawn(async { 42 }),
    };
    assert!(wrapped.describe().starts_with("answer (#"));
    assert_eq!(ex.block_on(wrapped).unwrap(), 42);
}

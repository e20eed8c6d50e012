//! Adversarial theme: a panic in the root future of `block_on`.
//!
//! The root future is not a task: its panic is not captured as a failure, it unwinds out of
//! `block_on` to the caller, with its original payload (`&str`, `String`, or any type). The
//! executor stays usable afterwards (another `block_on`, spawns from inside it, tasks that
//! were pending keep running), and when it is finally dropped its pending tasks are still
//! cancelled with `Shutdown` and their destructors run. `warden::block_on` drops its fresh
//! executor *while the root's panic unwinds*: its tasks are cancelled there too, and a
//! destructor that panics at that moment must be caught (a panic escaping a destructor
//! during unwinding would abort the process, so that test runs in a child process).

use crate::support;

use std::future::pending;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use support::{DropCounter, DropToken, HookLog, assert_adds_up, child, payload_str};
use warden::CancelReason;

#[derive(Debug, PartialEq)]
struct RootPayload(u32, &'static str);

rt_test! {
    fn root_panic_reaches_the_caller_with_its_payload(flavor) {
        let rt = flavor.rt();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { panic_any(RootPayload(7, "root")) })
        }))
        .expect_err("the root's panic must reach the caller");
        assert_eq!(
            *caught.downcast::<RootPayload>().unwrap(),
            RootPayload(7, "root")
        );

        let caught = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                warden::yield_now().await;
                panic!("root {} after a yield", 2)
            })
        }))
        .expect_err("the root's panic must reach the caller");
        assert_eq!(
            payload_str(&*caught).as_deref(),
            Some("root 2 after a yield")
        );

        let caught = catch_unwind(AssertUnwindSafe(|| rt.block_on(async { panic!("plain") })))
            .expect_err("the root's panic must reach the caller");
        assert_eq!(payload_str(&*caught).as_deref(), Some("plain"));

        // Still usable, and the root was never counted as a task.
        assert_eq!(
            rt.block_on(async { warden::spawn(async { 6 }).await.unwrap() }),
            6
        );
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.panicked, m.live),
            (1, 1, 0, 0),
            "{m:?}"
        );
    }

    /// The root panics after spawning tasks: those tasks keep running afterwards, and a
    /// root failure is not reported to the error hook.
    fn tasks_survive_a_root_panic(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let waiter = warden::spawn(async move { rx.await.unwrap() * 2 });
                // Hand the handle out through the panic payload.
                panic_any(std::sync::Mutex::new(Some(waiter)));
            })
        }))
        .expect_err("the root panicked");
        let waiter = caught
            .downcast::<std::sync::Mutex<Option<warden::JoinHandle<u32>>>>()
            .unwrap()
            .lock()
            .unwrap()
            .take()
            .unwrap();
        tx.send(21).unwrap();
        assert_eq!(rt.block_on(waiter).unwrap(), 42);
        drop(rt);
        assert_eq!(log.len(), 0, "a root panic is the caller's, not the hook's");
    }

    /// Pending tasks are cancelled when the executor is dropped after a root panic.
    fn pending_tasks_are_cancelled_at_drop_after_a_root_panic(flavor) {
        let rt = flavor.rt();
        let drops = DropCounter::new();
        let token = drops.token();
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let pending_task = rt.spawn(async move {
            let _token: DropToken = token;
            flag.store(true, SeqCst);
            pending::<()>().await
        });
        let caught = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                while !started.load(SeqCst) {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
                panic!("root gives up");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(
            drops.count(),
            0,
            "a root panic does not cancel the executor's tasks"
        );
        let m = rt.metrics();
        drop(rt);
        assert_eq!(
            drops.count(),
            1,
            "dropping the executor cancels the pending task"
        );
        assert!(pending_task.is_finished());
        let err = futures::executor::block_on(pending_task).unwrap_err();
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));
        assert_eq!((m.spawned, m.live), (1, 1), "{m:?}");
        assert_adds_up(&m);
    }

    /// A root panic inside a nested `block_on` attempt etc. leaves the thread's warden
    /// context clean: `warden::spawn` outside any executor panics as it should, and a
    /// fresh executor works on the same thread.
    fn context_is_restored_after_a_root_panic(flavor) {
        let rt = flavor.rt();
        let _ = catch_unwind(AssertUnwindSafe(|| rt.block_on(async { panic!("root") })));
        let outside = catch_unwind(|| warden::spawn(async {}).detach())
            .expect_err("spawn outside an executor panics");
        let message = outside
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.contains("no warden executor is running"),
            "{message}"
        );
        assert_eq!(warden::block_on(async { 3 }), 3);
        assert_eq!(rt.block_on(async { 4 }), 4);
    }
}

/// A destructor that panics.
struct Bomb {
    _token: DropToken,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a task's destructor panicked while the root's panic unwound");
    }
}

/// `warden::block_on`: the root panics while spawned tasks are pending, one of them with a
/// destructor that panics. The fresh executor is dropped during the unwinding; its tasks
/// must be cancelled there, the destructor's panic caught, and the root's payload must
/// reach the caller unchanged. Runs in a child process: a panic escaping that destructor
/// during unwinding would abort the process.
#[test]
fn free_block_on_root_panic_cancels_its_tasks() {
    const NAME: &str = "free_block_on_root_panic_cancels_its_tasks";
    if child::is_child(NAME) {
        let drops = DropCounter::new();
        let log_drops = drops.clone();
        let caught = catch_unwind(AssertUnwindSafe(move || {
            warden::block_on(async move {
                let quiet = log_drops.token();
                warden::spawn(async move {
                    let _token = quiet;
                    pending::<()>().await
                })
                .detach();
                let bomb = Bomb {
                    _token: log_drops.token(),
                };
                warden::spawn(async move {
                    let _bomb = bomb;
                    pending::<()>().await
                })
                .detach();
                warden::yield_now().await;
                panic_any(RootPayload(9, "free block_on"))
            })
        }))
        .expect_err("the root panicked");
        assert_eq!(
            *caught.downcast::<RootPayload>().unwrap(),
            RootPayload(9, "free block_on")
        );
        assert_eq!(drops.count(), 2, "both tasks were cancelled and dropped");
        return;
    }
    let run = child::run(&child::test_name(module_path!(), NAME), NAME, &[]);
    assert!(
        run.passed(),
        "the child failed ({}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

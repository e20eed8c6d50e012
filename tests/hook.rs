//! The loop-level error hook, on both executors: every failure nobody can observe any more
//! reaches it exactly once (detached, dropped unread, group dropped without `join`), awaited
//! and cancelled tasks never do, a panicking hook does not break the executor, the default
//! hook logs through `log`, and `UnhandledPolicy::Shutdown` stops the executor.

mod support;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::Duration;

use futures::channel::oneshot;
use support::{DropCounter, HookLog, assert_adds_up, drive_until_bounded, payload_text, unit};
use warden::{Builder, CancelReason, UnhandledPolicy};

// ---------------------------------------------------------------------------------------
// A logger that keeps every record, to check what the default hook logs.

struct Record {
    level: log::Level,
    target: String,
    text: String,
}

struct CaptureLogger {
    records: Mutex<Vec<Record>>,
}

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.records.lock().unwrap().push(Record {
            level: record.level(),
            target: record.target().to_owned(),
            text: record.args().to_string(),
        });
    }

    fn flush(&self) {}
}

static LOGGER: CaptureLogger = CaptureLogger {
    records: Mutex::new(Vec::new()),
};

/// Installs [`LOGGER`] (once per process; tests run in parallel, so each looks only for
/// records that mention its own task).
fn install_logger() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// `(level, target, text)` of every record whose text contains `needle`.
fn records_containing(needle: &str) -> Vec<(log::Level, String, String)> {
    LOGGER
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.text.contains(needle))
        .map(|r| (r.level, r.target.clone(), r.text.clone()))
        .collect()
}

/// A group task's own error type.
#[derive(Debug, PartialEq)]
struct DiskFull {
    free: u64,
}

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk full ({} bytes free)", self.free)
    }
}

impl std::error::Error for DiskFull {}

rt_test! {
    fn detached_then_fails_reaches_the_hook_once(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let (gate_tx, gate_rx) = oneshot::channel::<()>();
        let handle = rt.spawn_named("detached-failure", unit(async move {
            gate_rx.await.unwrap();
            panic!("failed after detach");
        }));
        let id = handle.id();
        handle.detach();
        // Running, not failed yet: nothing to report.
        drive_until_bounded(&rt, || rt.metrics().polls >= 1);
        assert_eq!(hook.len(), 0);
        gate_tx.send(()).unwrap();
        drive_until_bounded(&rt, || hook.len() >= 1);
        drop(rt); // joins the workers: every delivery that could happen has happened
        assert_eq!(hook.len(), 1);
        let err = &hook.errors()[0];
        assert!(err.is_panic());
        assert_eq!(err.task().id(), id);
        assert_eq!(err.task().name(), Some("detached-failure"));
        assert_eq!(err.panic_message(), Some("failed after detach"));
    }

    fn handle_dropped_before_the_failure_reaches_the_hook_once(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let (gate_tx, gate_rx) = oneshot::channel::<()>();
        let handle = rt.spawn(unit(async move {
            gate_rx.await.unwrap();
            panic!("failed after the handle was dropped");
        }));
        drop(handle);
        gate_tx.send(()).unwrap();
        drive_until_bounded(&rt, || hook.len() >= 1);
        drop(rt);
        assert_eq!(hook.len(), 1);
    }

    fn failed_then_handle_dropped_unread_reaches_the_hook_once(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let handle = rt.spawn_named("unread", unit(async { panic!("nobody reads me") }));
        drive_until_bounded(&rt, || handle.is_finished());
        // Failed, but the handle could still read it: not the hook's yet.
        assert_eq!(hook.len(), 0);
        drop(handle);
        // The hook runs in the drop, on this thread.
        assert_eq!(hook.len(), 1);
        drop(rt);
        assert_eq!(hook.len(), 1);
        let err = &hook.errors()[0];
        assert_eq!(err.task().name(), Some("unread"));
        assert_eq!(err.panic_message(), Some("nobody reads me"));
    }

    fn awaited_failure_never_reaches_the_hook(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let handle = rt.spawn(unit(async { panic!("read by the handle") }));
        let err = rt.block_on(handle).unwrap_err();
        assert!(err.is_panic());
        // Awaited from inside another task, too.
        let outer = rt.spawn(async {
            let inner = warden::spawn(unit(async { panic!("read by a task") }));
            inner.await.unwrap_err().is_panic()
        });
        assert!(rt.block_on(outer).unwrap());
        let copy = err.clone();
        drop(err);
        drop(copy);
        drop(rt);
        assert_eq!(hook.len(), 0);
    }

    fn cancelled_tasks_never_reach_the_hook(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let drops = DropCounter::new();
        let started = Arc::new(AtomicUsize::new(0));
        let pending = |token: support::DropToken| {
            let started = started.clone();
            async move {
                let _token = token;
                started.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await
            }
        };
        // Cancelled and awaited.
        let awaited = rt.spawn(pending(drops.token()));
        awaited.cancel();
        let err = rt.block_on(awaited).unwrap_err();
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Explicit(None)));
        // Cancelled, then its handle dropped unread.
        let dropped = rt.spawn(pending(drops.token()));
        dropped.cancel_with("no longer needed");
        drive_until_bounded(&rt, || dropped.is_finished());
        drop(dropped);
        // Detached, then cancelled by the shutdown.
        rt.spawn(pending(drops.token())).detach();
        drive_until_bounded(&rt, || started.load(Ordering::SeqCst) >= 1);
        drop(rt);
        assert_eq!(drops.count(), 3);
        assert_eq!(hook.len(), 0);
    }

    fn a_panicking_hook_does_not_break_the_executor(flavor) {
        install_logger();
        let calls = Arc::new(Mutex::new(Vec::<String>::new()));
        let builder = Builder::new().on_unhandled({
            let calls = calls.clone();
            move |err| {
                calls.lock().unwrap().push(err.task().name().unwrap_or("?").to_owned());
                panic!("the hook itself panics");
            }
        });
        let rt = flavor.build(builder);
        let first_name = format!("hook-panics-first-{flavor:?}");
        rt.spawn_named(&first_name, unit(async { panic!("first") })).detach();
        drive_until_bounded(&rt, || !calls.lock().unwrap().is_empty());
        // Later tasks still run.
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
        let value = rt.block_on(async { warden::spawn(async { 6 }).await.unwrap() });
        assert_eq!(value, 6);
        // A second failure still reaches the hook.
        let second_name = format!("hook-panics-second-{flavor:?}");
        rt.spawn_named(&second_name, unit(async { panic!("second") })).detach();
        drive_until_bounded(&rt, || calls.lock().unwrap().len() >= 2);
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.panicked, m.cancelled, m.live),
            (4, 2, 2, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        drop(rt);
        assert_eq!(*calls.lock().unwrap(), [first_name.clone(), second_name]);
        // The hook's own panic was logged rather than lost.
        let logged = records_containing(&first_name);
        assert!(
            logged.iter().any(|(level, _, text)| *level == log::Level::Error
                && text.contains("the hook itself panics")),
            "no log record of the hook's panic"
        );
    }

    fn the_default_hook_logs_an_error_record(flavor) {
        install_logger();
        let rt = flavor.rt(); // no on_unhandled: the default hook
        let name = format!("default-hook-logs-{flavor:?}");
        let handle = rt.spawn_named(&name, unit(async { panic!("logged, not lost") }));
        let id = handle.id();
        handle.detach();
        drive_until_bounded(&rt, || !records_containing(&name).is_empty());
        drop(rt);
        let records = records_containing(&name);
        assert_eq!(records.len(), 1, "{:?}", records.iter().map(|r| &r.2).collect::<Vec<_>>());
        let (level, target, text) = &records[0];
        assert_eq!(*level, log::Level::Error);
        assert_eq!(target, "warden");
        assert!(text.contains(&format!("task '{name}' {id}")), "{text}");
        assert!(text.contains(&id.to_string()), "{text}");
        assert!(text.contains("panicked at"), "{text}");
        assert!(text.contains("logged, not lost"), "{text}");
    }

    fn shutdown_policy_panics_a_pending_block_on_and_cancels_the_rest(flavor) {
        // The body runs on its own thread so that a block_on that never returns shows as a
        // failure of this test instead of hanging the run.
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            let hook = HookLog::new();
            let rt = flavor.build(hook.builder().unhandled_policy(UnhandledPolicy::Shutdown));
            let drops = DropCounter::new();
            let token = drops.token();
            let victim = rt.spawn(async move {
                let _token = token;
                std::future::pending::<()>().await
            });
            let fatal = rt.spawn_named("fatal-task", unit(async {
                warden::yield_now().await;
                panic!("state is corrupt");
            }));
            let fatal_id = fatal.id();
            fatal.detach();
            // The root future waits for something that never comes: only the shutdown can
            // end this block_on.
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(std::future::pending::<()>())
            }));
            let message = payload_text(&*outcome.expect_err("block_on must panic"));
            // The other task was cancelled with Shutdown and its future dropped.
            let victim = futures::executor::block_on(victim).unwrap_err();
            let report = (
                message,
                fatal_id,
                victim.cancel_reason().cloned(),
                drops.count(),
                hook.len(),
            );
            drop(rt);
            done_tx.send(report).unwrap();
        });
        let (message, fatal_id, victim_reason, drops, hook_calls) = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("block_on did not return after the unobserved failure (hung)");
        assert!(message.contains("UnhandledPolicy::Shutdown"), "{message}");
        assert!(message.contains(&format!("task 'fatal-task' {fatal_id}")), "{message}");
        assert!(message.contains("state is corrupt"), "{message}");
        assert_eq!(victim_reason, Some(CancelReason::Shutdown));
        assert_eq!(drops, 1);
        assert_eq!(hook_calls, 1, "the hook still saw the failure first");
    }

    fn shutdown_policy_panics_a_block_on_waiting_for_a_task(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder().unhandled_policy(UnhandledPolicy::Shutdown));
        let drops = DropCounter::new();
        let token = drops.token();
        let victim = rt.spawn(async move {
            let _token = token;
            std::future::pending::<()>().await
        });
        rt.spawn_named("fatal-task", unit(async { panic!("state is corrupt") })).detach();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(victim)));
        let message = payload_text(&*outcome.expect_err("block_on must panic"));
        assert!(message.contains("task 'fatal-task'"), "{message}");
        // Spawning after the shutdown is refused.
        let late = rt.spawn(async { 1 });
        assert!(late.is_finished());
        drop(rt);
        assert_eq!(drops.count(), 1);
        assert_eq!(hook.len(), 1);
    }

    fn group_error_dropped_unjoined_reaches_the_hook_once(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let group = rt.group();
        let handle = group.spawn_named("group-err", async { Err::<(), _>(DiskFull { free: 12 }) });
        let group_id = group.id();
        drive_until_bounded(&rt, || handle.is_finished());
        // The handle is dropped unread, but the group could still report it at join.
        drop(handle);
        assert_eq!(hook.len(), 0);
        // The group is dropped without join: nobody can read it now.
        drop(group);
        assert_eq!(hook.len(), 1);
        drop(rt);
        assert_eq!(hook.len(), 1);
        let err = &hook.errors()[0];
        assert!(err.is_error());
        assert!(!err.is_panic());
        assert_eq!(err.downcast_ref::<DiskFull>(), Some(&DiskFull { free: 12 }));
        assert_eq!(err.task().name(), Some("group-err"));
        assert_eq!(err.task().group(), Some(group_id));
        assert!(err.to_string().contains("disk full (12 bytes free)"), "{err}");
    }

    fn group_dropped_first_then_handle_dropped_reaches_the_hook_once(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let group = rt.group();
        let handle = group.spawn(async { Err::<(), _>(DiskFull { free: 0 }) });
        drive_until_bounded(&rt, || handle.is_finished());
        drop(group);
        assert_eq!(hook.len(), 0, "the handle can still read it");
        drop(handle);
        assert_eq!(hook.len(), 1);
        drop(rt);
        assert_eq!(hook.len(), 1);
        assert_eq!(hook.errors()[0].downcast_ref::<DiskFull>(), Some(&DiskFull { free: 0 }));
    }

    fn group_join_observes_failures_so_no_hook(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let group = rt.group();
        group.spawn(async { Err::<(), _>(DiskFull { free: 1 }) }).detach();
        group.spawn(unit(async { panic!("member panics") })).detach();
        let report = rt.block_on(group.join()).unwrap_err();
        assert!(!report.failures().is_empty());
        drop(rt);
        assert_eq!(hook.len(), 0);
    }

    fn many_detached_failures_each_reach_the_hook_once(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder().backtraces(warden::Backtraces::Off));
        let ids: Vec<_> = (0..200u32)
            .map(|i| {
                let handle = rt.spawn(unit(async move {
                    if i % 2 == 0 {
                        warden::yield_now().await;
                    }
                    panic!("failure {i}");
                }));
                let id = handle.id();
                if i % 2 == 0 {
                    handle.detach();
                } else {
                    drive_until_bounded(&rt, || handle.is_finished());
                    drop(handle);
                }
                id
            })
            .collect();
        drive_until_bounded(&rt, || hook.len() >= ids.len());
        drop(rt);
        let mut seen: Vec<_> = hook.errors().iter().map(|e| e.task().id()).collect();
        seen.sort();
        assert_eq!(seen, ids, "each failure exactly once");
    }
}

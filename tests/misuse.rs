//! Misuse panics name the caller's line, not a line inside warden.
//!
//! Every public function that panics on misuse is `#[track_caller]`, so the panic's
//! location is the user's call. A future that finds the misuse later, when first polled
//! (`sleep` and `timeout` outside an executor), names the line that created it in its
//! message.
//!
//! The cases install their own panic hook to read the locations, which is process-wide, so
//! they run in a child process.

mod support;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Duration;

use support::child::in_child;
use support::unit;
use warden::{Builder, LocalExecutor, TaskGroup};

/// The location and message of the last panic, as `file:line` and text.
static LAST: Mutex<Option<(String, String)>> = Mutex::new(None);

fn record_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = support::payload_text(info.payload());
        *LAST.lock().unwrap() = Some((location, message));
    }));
}

/// Runs `misuse`, which must panic, and returns where and with what message.
fn panic_of(misuse: impl FnOnce()) -> (String, String) {
    *LAST.lock().unwrap() = None;
    let outcome = catch_unwind(AssertUnwindSafe(misuse));
    assert!(outcome.is_err(), "the misuse did not panic");
    LAST.lock().unwrap().take().expect("the hook saw the panic")
}

fn here(line: u32) -> String {
    format!("{}:{line}", file!())
}

/// Polls `future` to its end with no warden executor on this thread.
fn poll_outside_warden<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

#[test]
fn misuse_panics_name_the_callers_line() {
    in_child("misuse_panics_name_the_callers_line", || {
        record_panics();

        let (at, msg) = panic_of(|| drop(Builder::new().worker_threads(0)));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(msg.contains("worker_threads must be at least 1"), "{msg}");

        let (at, msg) = panic_of(|| drop(warden::spawn(async {})));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(
            msg.contains("`warden::spawn` was called but no warden executor"),
            "{msg}"
        );

        let (at, _) = panic_of(|| drop(warden::spawn_named("n", async {})));
        assert_eq!(at, here(line!() - 1));

        let (at, _) = panic_of(|| drop(warden::spawn_local(async {})));
        assert_eq!(at, here(line!() - 1));

        let (at, msg) = panic_of(|| drop(warden::spawn_local_named("n", async {})));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(msg.contains("warden::spawn_local_named"), "{msg}");
    });
}

#[test]
fn a_group_made_outside_an_executor_suggests_ex_group() {
    in_child("a_group_made_outside_an_executor_suggests_ex_group", || {
        record_panics();
        let (at, msg) = panic_of(|| drop(TaskGroup::new()));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(msg.contains("`ex.group()`"), "{msg}");
        assert!(!msg.contains("ex.spawn"), "{msg}");

        let (at, msg) = panic_of(|| drop(TaskGroup::supervisor()));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(msg.contains("`ex.supervisor()`"), "{msg}");
    });
}

#[test]
fn sleep_and_timeout_polled_outside_an_executor_name_where_they_were_made() {
    in_child(
        "sleep_and_timeout_polled_outside_an_executor_name_where_they_were_made",
        || {
            record_panics();
            let sleep = warden::sleep(Duration::from_millis(1));
            let made = here(line!() - 1);
            let (_, msg) = panic_of(|| poll_outside_warden(sleep));
            assert!(msg.contains(&format!("created at {made}")), "{msg}");

            let limited = warden::timeout(Duration::from_secs(1), std::future::pending::<()>());
            let made = here(line!() - 1);
            let (_, msg) = panic_of(|| {
                let _ = poll_outside_warden(limited);
            });
            assert!(msg.contains(&format!("created at {made}")), "{msg}");
        },
    );
}

#[test]
fn misuse_inside_an_executor_names_the_callers_line() {
    in_child("misuse_inside_an_executor_names_the_callers_line", || {
        record_panics();
        let pool = Builder::new().worker_threads(1).build();

        let (at, msg) = panic_of(|| pool.block_on(async { drop(warden::spawn_local(async {})) }));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(msg.contains("needs a LocalExecutor"), "{msg}");

        let group = pool.group();
        let (at, _) = panic_of(|| drop(group.spawn_local(unit(async {}))));
        assert_eq!(at, here(line!() - 1));
        let (at, _) = panic_of(|| drop(group.spawn_local_named("n", unit(async {}))));
        assert_eq!(at, here(line!() - 1));
        drop(group);

        let local = LocalExecutor::new();
        let (at, msg) = panic_of(|| local.block_on(async { warden::block_on(async {}) }));
        assert_eq!(at, here(line!() - 1), "{msg}");
        assert!(msg.contains("`block_on`"), "{msg}");
    });
}

#[test]
fn block_on_inside_a_task_fails_the_task_at_the_callers_line() {
    // The panic happens in a task: its TaskError carries the location (no child needed).
    let pool = Builder::new().worker_threads(1).build();
    let nested = pool.spawn(async { warden::block_on(async {}) });
    let line = line!() - 1;
    let err = pool.block_on(nested).unwrap_err();
    let location = err.location().expect("a location");
    assert_eq!((location.file(), location.line()), (file!(), line), "{err}");
    assert!(err.panic_message().unwrap().contains("`block_on`"), "{err}");
}

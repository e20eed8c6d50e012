//! Hang guards: run a test body on its own thread and turn a hang into a failure.
//!
//! They are not timing assertions: every guarded body takes milliseconds, and the way most
//! of the guarded tests fail when something is broken (a lost wake-up, a deadlock, a member
//! that is never cancelled) is by waiting forever.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `body` on a new thread (named `name`, if given) and waits up to `limit` for it.
///
/// Returns `None` if `body` has not finished by then; re-raises its panic here if it
/// panicked. With `wait_for_exit`, waits after the result for the thread to end (its
/// thread-local destructors included) before returning.
pub fn watchdog<R: Send + 'static>(
    limit: Duration,
    name: Option<String>,
    wait_for_exit: bool,
    body: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    let mut builder = thread::Builder::new();
    if let Some(name) = name {
        builder = builder.name(name);
    }
    let thread = builder
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(body)));
        })
        .expect("spawn the test thread");
    let result = rx.recv_timeout(limit).ok()?;
    if wait_for_exit {
        thread.join().expect("the test thread");
    }
    match result {
        Ok(value) => Some(value),
        Err(panic) => resume_unwind(panic),
    }
}

/// Runs `body` on its own thread and fails with "`what`: hung" if it has not finished
/// after 20 s; returns its value, or re-raises its panic.
pub fn hang_guard<R: Send + 'static>(what: &str, body: impl FnOnce() -> R + Send + 'static) -> R {
    watchdog(Duration::from_secs(20), None, false, body)
        .unwrap_or_else(|| panic!("{what}: hung (no result after 20 s)"))
}

/// Runs `body` on its own thread and fails the test if it has not finished after 30 s
/// (waiting for the thread to end); re-raises its panic.
pub fn no_hang(body: impl FnOnce() + Send + 'static) {
    no_hang_or("the test hung (no result after 30 s)", body);
}

/// [`no_hang`] that fails with `message` when the body hangs.
pub fn no_hang_or(message: &str, body: impl FnOnce() + Send + 'static) {
    watchdog(Duration::from_secs(30), None, true, body).unwrap_or_else(|| panic!("{message}"));
}

/// Runs `body` on a thread named after the current one (the test's name) and fails the
/// test if it does not finish within 20 s (waiting for the thread to end); re-raises its
/// panic.
pub fn bounded(body: impl FnOnce() + Send + 'static) {
    let name = thread::current().name().unwrap_or("test").to_owned();
    watchdog(Duration::from_secs(20), Some(name), true, body)
        .unwrap_or_else(|| panic!("the test body did not finish within 20 s (hung)"));
}

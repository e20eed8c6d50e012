//! Adversarial theme: a panic payload whose own `Drop` panics.
//!
//! A task panics with `std::panic::panic_any(Nasty)`, where `Nasty`'s destructor panics.
//!
//! What Rust does: dropping such a payload is an ordinary call of its destructor, so where
//! it is dropped *normally* (not during unwinding) the destructor's panic is an ordinary
//! panic that `catch_unwind` catches, and nothing aborts. Only if the payload is dropped
//! *while another panic unwinds* (it is a local of a frame being unwound) does Rust abort
//! the process: a panic escaping a destructor during cleanup is a "non-unwinding panic"
//! (`panic in a destructor during cleanup`, then `thread caused non-unwinding panic.
//! aborting.`, SIGABRT). No executor can catch that.
//!
//! What warden does: a `TaskError` owns the payload until `into_panic` takes it out, and
//! drops it safely. When the last clone goes, the payload's destructor runs inside
//! `catch_unwind` and its panic is contained (never escapes `drop`, whoever drops the
//! error); if the last clone goes while a panic is already unwinding, where running the
//! destructor would abort the process, the payload is forgotten (leaked) instead. A payload
//! taken out with `into_panic` is the caller's, with Rust's ordinary rules.
//!
//! So, in process: the failure is delivered (`is_panic()`, message `Box<dyn Any>`),
//! `into_panic` returns the very payload, the payload is dropped exactly once (when the
//! last clone of the `TaskError` goes, or by whoever took it), and wherever the last clone
//! goes (a detached task with the default hook, a handle dropped unread, a group dropped
//! without `join`, an executor shut down by `UnhandledPolicy::Shutdown`, user code) the
//! destructor's panic does not escape. The cases that could abort run in a child process
//! (this test binary, started again with `--exact <test>` and
//! `WARDEN_ADVERSARIAL_CHILD=<test>`), asserting on its exit status and output.

use crate::support;

use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use support::{HookLog, child, drive_until, escaped, unit};
use warden::{Builder, TaskError, UnhandledPolicy};

/// A payload whose destructor counts, then panics.
struct Nasty {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Nasty {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        panic!("the payload's destructor panicked");
    }
}

fn nasty(id: u32) -> (Nasty, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    (
        Nasty {
            id,
            drops: drops.clone(),
        },
        drops,
    )
}

rt_test! {
    /// The failure reaches the handle; `into_panic` gives back the payload itself; dropping
    /// it is an ordinary panic for whoever drops it, caught here; it is dropped once.
    fn failure_is_delivered_and_payload_returned(flavor) {
        let rt = flavor.rt();
        let (payload, drops) = nasty(1);
        let err = rt
            .block_on(rt.spawn(unit(async move { panic_any(payload) })))
            .unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        assert_eq!(drops.load(SeqCst), 0, "the payload is kept in the error");
        let payload = err.into_panic();
        let nasty = payload
            .downcast::<Nasty>()
            .unwrap_or_else(|_| panic!("not the payload"));
        assert_eq!(nasty.id, 1);
        assert_eq!(
            escaped(move || drop(nasty)).as_deref(),
            Some("the payload's destructor panicked")
        );
        assert_eq!(drops.load(SeqCst), 1);
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    }

    /// Clones share the payload: only dropping the last one drops it, once.
    fn dropping_the_last_clone_drops_the_payload_once(flavor) {
        let rt = flavor.rt();
        let (payload, drops) = nasty(2);
        let err: TaskError = rt
            .block_on(rt.spawn(unit(async move { panic_any(payload) })))
            .unwrap_err();
        let clones: Vec<TaskError> = (0..3).map(|_| err.clone()).collect();
        assert_eq!(
            escaped(move || drop(clones)),
            None,
            "a clone dropped the payload"
        );
        assert_eq!(drops.load(SeqCst), 0);
        assert_eq!(
            escaped(move || drop(err)),
            None,
            "the payload's destructor panic escaped the last TaskError's drop"
        );
        assert_eq!(drops.load(SeqCst), 1);
    }

    /// Detached, with the default hook: warden holds the last clone, and drops it inside
    /// the executor, which must survive the destructor's panic.
    fn detached_with_the_default_hook(flavor) {
        let rt = flavor.rt();
        let (payload, drops) = nasty(3);
        rt.spawn(unit(async move { panic_any(payload) })).detach();
        let dropped = drops.clone();
        drive_until(&rt, || dropped.load(SeqCst) == 1);
        assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2);
        let m = rt.metrics();
        assert_eq!((m.panicked, m.completed, m.live), (1, 1, 0), "{m:?}");
        assert_eq!(escaped(move || drop(rt)), None);
        assert_eq!(drops.load(SeqCst), 1);
    }

    /// The handle is dropped unread after the failure: it hands the failure to the hook
    /// (the default one, which keeps nothing) and then drops the last clone itself.
    fn handle_dropped_unread(flavor) {
        let rt = flavor.rt();
        let (payload, drops) = nasty(4);
        let handle = rt.spawn(unit(async move { panic_any(payload) }));
        drive_until(&rt, || handle.is_finished());
        assert_eq!(
            escaped(move || drop(handle)),
            None,
            "the payload's panic escaped the handle's drop"
        );
        assert_eq!(drops.load(SeqCst), 1);
    }

    /// A hook that keeps the error: the payload lives as long as the hook's copy.
    fn hook_keeps_the_error(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let (payload, drops) = nasty(5);
        rt.spawn(unit(async move { panic_any(payload) })).detach();
        drive_until(&rt, || log.len() == 1);
        drop(rt);
        assert_eq!(drops.load(SeqCst), 0, "the hook's copy keeps the payload");
        let errors = log.errors();
        assert!(errors[0].is_panic());
        drop(errors);
        assert_eq!(escaped(move || drop(log)), None);
        assert_eq!(drops.load(SeqCst), 1);
    }

    /// A group member fails with the nasty payload; the group is dropped without `join`, so
    /// the failure goes to the (default) hook, and the group's bookkeeping lets go of the
    /// last clone. That happens inside `drop(group)`, on the caller's thread: the
    /// destructor's panic must not escape it, as it does not escape a handle's drop.
    fn group_dropped_without_join(flavor) {
        let rt = flavor.rt();
        let group = rt.group();
        let (payload, drops) = nasty(6);
        let member = group.spawn(unit(async move { panic_any(payload) }));
        drive_until(&rt, || member.is_finished());
        drop(member);
        assert_eq!(drops.load(SeqCst), 0, "the group still holds the failure");
        assert_eq!(
            escaped(move || drop(group)),
            None,
            "the payload's destructor panic escaped drop(TaskGroup)"
        );
        assert_eq!(drops.load(SeqCst), 1);
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
    }

    /// `UnhandledPolicy::Shutdown`: the executor keeps the failure that shut it down (to
    /// name it in `block_on`'s panic). Dropping the executor lets go of it, and the
    /// destructor's panic must not escape the executor's drop.
    fn shutdown_policy_cause(flavor) {
        let rt = flavor.build(Builder::new().unhandled_policy(UnhandledPolicy::Shutdown));
        let (payload, drops) = nasty(7);
        rt.spawn(unit(async move { panic_any(payload) })).detach();
        let outcome = escaped(|| {
            rt.block_on(async {
                loop {
                    std::thread::yield_now();
                    warden::yield_now().await;
                }
            })
        });
        let message = outcome.expect("block_on panics once the policy shut the executor down");
        assert!(message.contains("UnhandledPolicy::Shutdown"), "{message}");
        assert_eq!(
            escaped(move || drop(rt)),
            None,
            "the payload's panic escaped the executor's drop"
        );
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the payload must be dropped exactly once"
        );
    }
}

/// Holds `err` (the last clone, with a nasty payload) as a local and panics: unwinding
/// drops `err`, the payload's destructor panics during cleanup, and Rust aborts.
#[inline(never)]
fn hold_while_panicking(err: TaskError) {
    let _held = err;
    panic!("a second panic while the error is held");
}

/// Runs the test `name` (a function of this module) alone in a child process; returns its
/// exit status, stdout and stderr.
fn run_child(name: &str) -> (std::process::ExitStatus, String, String) {
    // Some children forget a payload on purpose (dropping it during unwinding would
    // abort); under LeakSanitizer that deliberate leak must not fail the child.
    let quiet_leaks = [
        ("ASAN_OPTIONS", "detect_leaks=0"),
        ("LSAN_OPTIONS", "detect_leaks=0"),
    ];
    let run = child::run(&child::test_name(module_path!(), name), name, &quiet_leaks);
    (run.status, run.stdout, run.stderr)
}

#[track_caller]
fn assert_aborted(status: std::process::ExitStatus, stderr: &str) {
    assert!(!status.success(), "the child survived: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(6),
            "expected SIGABRT: {status}\n{stderr}"
        );
    }
}

/// The error (last clone) is held by a frame that unwinds, outside any task. Running the
/// payload's destructor there would abort the process ("panic in a destructor during
/// cleanup"); warden forgets the payload instead, and the first panic unwinds normally.
#[test]
fn payload_held_during_unwinding_is_forgotten_not_aborted() {
    const NAME: &str = "payload_held_during_unwinding_is_forgotten_not_aborted";
    if child::is_child(NAME) {
        let ex = warden::LocalExecutor::new();
        let (payload, drops) = nasty(8);
        let failed = ex.spawn(unit(async move { panic_any(payload) }));
        let err = ex.block_on(failed).unwrap_err();
        let outcome = escaped(move || hold_while_panicking(err));
        assert_eq!(
            outcome.as_deref(),
            Some("a second panic while the error is held")
        );
        assert_eq!(
            drops.load(SeqCst),
            0,
            "forgotten, not dropped, during unwinding"
        );
        return;
    }
    let (status, stdout, stderr) = run_child(NAME);
    assert!(
        status.success() && stdout.contains("1 passed"),
        "the child aborted instead of unwinding ({status}):\n{stderr}"
    );
}

/// Panics on drop: held by an async body that then panics, it makes Rust abort.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("a local's destructor panicked during the unwinding");
    }
}

/// An abort inside a task's poll (a local whose destructor panics while the body's panic
/// unwinds). warden's panic hook records panics inside polls instead of printing them,
/// because the failure will reach a handle or the error hook; an abort reaches neither, so
/// the second panic is passed on to the previous hook, and the process says why it died.
#[test]
fn abort_inside_a_task_still_names_its_cause() {
    const NAME: &str = "abort_inside_a_task_still_names_its_cause";
    if child::is_child(NAME) {
        let ex = warden::LocalExecutor::new();
        let doomed = ex.spawn(unit(async {
            let _local = PanicOnDrop;
            warden::yield_now().await;
            panic!("the body panicked first");
        }));
        let _ = ex.block_on(doomed);
        unreachable!("the process has aborted");
    }
    let (status, _, stderr) = run_child(NAME);
    assert_aborted(status, &stderr);
    assert!(
        stderr.contains("panic in a destructor during cleanup")
            || stderr.contains("a local's destructor panicked during the unwinding"),
        "the process aborted without a word about why (warden's panic hook swallowed \
         both panics): {stderr}"
    );
}

/// The natural way to meet `shutdown_policy_cause`: the executor is a local, `block_on`
/// panics because the policy shut it down, and the unwinding drops the executor, which
/// lets go of the failure it kept. If that drop lets the payload's destructor panic out,
/// it does so during unwinding, and the process aborts instead of reporting the panic.
#[test]
fn shutdown_policy_panic_unwinds_without_aborting() {
    const NAME: &str = "shutdown_policy_panic_unwinds_without_aborting";
    if child::is_child(NAME) {
        let (payload, drops) = nasty(10);
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            let ex = Builder::new()
                .unhandled_policy(UnhandledPolicy::Shutdown)
                .build_local();
            ex.spawn(unit(async move { panic_any(payload) })).detach();
            ex.block_on(async {
                loop {
                    warden::yield_now().await;
                }
            })
        }));
        let message = outcome.expect_err("block_on panicked");
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("UnhandledPolicy::Shutdown"), "{message}");
        // The executor let go of the failure while `block_on`'s panic unwound: the payload
        // was forgotten rather than dropped (dropping it would have aborted).
        assert!(drops.load(SeqCst) <= 1);
        return;
    }
    let (status, stdout, stderr) = run_child(NAME);
    assert!(
        status.success() && stdout.contains("1 passed"),
        "the child aborted instead of unwinding ({status}):\n{stderr}"
    );
}

//! With no `log` logger installed, warden's reports reach stderr: an unobserved failure
//! (the default error hook), a panic inside the error hook, a panic inside the task-exit
//! hook. With a logger installed they go through `log` instead, and stderr stays quiet.
//!
//! Whether a logger is installed is process-wide, so every case runs in a child process
//! and the parent reads the child's stderr.

mod support;

use std::sync::Mutex;

use support::child::{is_child, run};
use support::{Flavor, Rt};
use warden::Builder;

/// Runs this test again as a child, and returns its stderr once it passed.
fn child_stderr(name: &str) -> String {
    let run = run(name, name, &[]);
    assert!(run.passed(), "the child failed: {}", run.report());
    run.stderr
}

/// A detached task that panics on `rt`, run to its end. Returns the line of the panic.
fn lose_a_failure(rt: &Rt) -> u32 {
    let line = line!() + 1;
    let lost = rt.spawn_named("lost", async { panic!("nobody reads this") });
    lost.detach();
    rt.block_on(warden::sleep(std::time::Duration::from_millis(20)));
    line
}

fn both_flavors(mut f: impl FnMut(Flavor)) {
    f(Flavor::Local);
    f(Flavor::Pool);
}

#[test]
fn an_unobserved_failure_reaches_stderr_without_a_logger() {
    if is_child("an_unobserved_failure_reaches_stderr_without_a_logger") {
        both_flavors(|flavor| {
            let line = lose_a_failure(&flavor.rt());
            eprintln!("expected line: {line}");
        });
        return;
    }
    let stderr = child_stderr("an_unobserved_failure_reaches_stderr_without_a_logger");
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("expected line: "))
        .collect();
    assert_eq!(lines.len(), 2, "stderr:\n{stderr}");
    // One report per executor, each naming the task, the message and the panic's line.
    let wanted = format!("tests/no_logger.rs:{}", lines[0]);
    let reports = stderr
        .lines()
        .filter(|l| l.starts_with("warden: ERROR: unobserved failure: task 'lost'"))
        .filter(|l| l.contains(&wanted) && l.contains("nobody reads this"))
        .count();
    assert_eq!(
        reports, 2,
        "want two reports at {wanted}; stderr:\n{stderr}"
    );
}

#[test]
fn a_panicking_error_hook_and_exit_hook_reach_stderr_without_a_logger() {
    if is_child("a_panicking_error_hook_and_exit_hook_reach_stderr_without_a_logger") {
        both_flavors(|flavor| {
            let rt = flavor.build(
                Builder::new()
                    .on_unhandled(|_| panic!("the error hook itself broke"))
                    .on_task_exit(|_, _| panic!("the exit hook itself broke")),
            );
            lose_a_failure(&rt);
        });
        return;
    }
    let stderr = child_stderr("a_panicking_error_hook_and_exit_hook_reach_stderr_without_a_logger");
    let count = |needle: &str| stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("warden: ERROR: the error hook panicked (the error hook itself broke)"),
        2,
        "stderr:\n{stderr}"
    );
    assert_eq!(
        count("warden: ERROR: the task-exit hook panicked (the exit hook itself broke)"),
        2,
        "stderr:\n{stderr}"
    );
}

/// Keeps every record it is given.
struct Keep(Mutex<Vec<String>>);

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        self.0.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

static KEEP: Keep = Keep(Mutex::new(Vec::new()));

#[test]
fn with_a_logger_the_report_goes_through_log_and_not_stderr() {
    if is_child("with_a_logger_the_report_goes_through_log_and_not_stderr") {
        log::set_logger(&KEEP).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        both_flavors(|flavor| {
            lose_a_failure(&flavor.rt());
        });
        let kept = KEEP.0.lock().unwrap();
        let reports = kept
            .iter()
            .filter(|l| l.starts_with("ERROR warden unobserved failure: task 'lost'"))
            .count();
        assert_eq!(reports, 2, "records: {kept:?}");
        return;
    }
    let stderr = child_stderr("with_a_logger_the_report_goes_through_log_and_not_stderr");
    assert!(!stderr.contains("warden: ERROR"), "stderr:\n{stderr}");
}

//! Running one test of this binary again in a child process, for cases that may abort the
//! process (a stack overflow, a panic during unwinding) or need a fresh one.

use std::process::{Command, ExitStatus};

/// The environment variable that tells a child process which case it was started for.
pub const CHILD: &str = "WARDEN_ADVERSARIAL_CHILD";

/// The case this process was started for as a child, if it is one.
pub fn case() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// `true` in the child process started for `case`.
pub fn is_child(case: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == case)
}

/// The name libtest gives the test `name` defined in `module` (pass `module_path!()`): the
/// module path without the crate's name, then `name`. So `local::x` for a test in the
/// `local` module of `tests/foo.rs`, `panic_in_poll::local::x` in the folder
/// `tests/adversarial/`, and plain `x` at a crate's root.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// What a child process left behind.
#[derive(Debug)]
pub struct ChildRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildRun {
    /// The child exited successfully, having run (and passed) exactly one test.
    pub fn passed(&self) -> bool {
        self.status.success() && self.stdout.contains("1 passed")
    }

    /// The exit status and both outputs, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Starts this test binary again to run `test` alone (`--exact`, one thread), as child
/// `case`, with `env` set; waits for it.
pub fn run(test: &str, case: &str, env: &[(&str, &str)]) -> ChildRun {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, case)
        .envs(env.iter().copied())
        .output()
        .expect("start the child process");
    ChildRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `body` if this process is the child started for `test`; otherwise starts that
/// child and asserts that it ran exactly this one test and passed.
pub fn in_child(test: &str, body: impl FnOnce()) {
    if is_child(test) {
        body();
        return;
    }
    let run = run(test, test, &[]);
    assert!(
        run.passed(),
        "the child running `{test}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

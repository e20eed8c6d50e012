//! Every program in `docs/guide.md` and `docs/asyncio.md` is compiled here and run, and
//! what it prints must be what the doc shows under it.
//!
//! `build.rs` extracts the programs into `OUT_DIR`; the generated `programs.rs` included
//! below holds one module per program (its `main` and a `run` that calls it), the table
//! `PROGRAMS` and one test per program (`guide_check_05` for `_guide_check_05`). A test
//! runs its program in a child process, this binary started again with
//! `WARDEN_DOC_PROGRAM=<name>`, so that each program has a process of its own as when it
//! was run for the doc (task ids from 1, its own panic hook, its own logger), with stdout
//! and stderr going to one file in the order they were written. Then both outputs are
//! normalised (`warden_doc_programs::normalise`) and compared line by line.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warden_doc_programs::{Varying, compare, normalise};

/// A program of a doc.
struct Program {
    /// Its scratch file's name, `_guide_check_05`.
    name: &'static str,
    /// The test that checks it, `guide_check_05`.
    test: &'static str,
    doc: &'static str,
    /// The line of its ```` ```rust ```` fence in `doc`.
    line: usize,
    run: fn(),
    /// The ```` ```text ```` block under it.
    shown: &'static str,
    varying: &'static [Varying],
}

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// Set in the child process to the name of the program it runs.
const CHILD: &str = "WARDEN_DOC_PROGRAM";

/// Printed by the child before the program runs: libtest's own lines come before it.
const MARKER: &str = "--- the program's output starts here ---";

/// How long a program may run.
const LIMIT: Duration = Duration::from_secs(60);

fn check(name: &str) {
    let program = PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .expect("a program of the table");
    if std::env::var(CHILD).is_ok_and(|v| v == name) {
        run_here(program);
    }
    let printed = run_in_child(program);
    let whose = format!(
        "{} ({}:{}, examples/{}.rs)",
        program.test, program.doc, program.line, program.name
    );
    let crate_name = env!("CARGO_CRATE_NAME");
    let shown = normalise(program.shown, crate_name, program.varying)
        .unwrap_or_else(|why| panic!("{whose}: the doc's output breaks its rule: {why}"));
    let actual = normalise(&printed, crate_name, program.varying).unwrap_or_else(|why| {
        panic!("{whose}: the output breaks its rule: {why}\n--- output\n{printed}")
    });
    if let Err(diff) = compare(&shown, &actual) {
        panic!(
            "{whose}: the program's output is not the one the doc shows, after \
             normalisation (doc-programs/src/lib.rs):\n{diff}--- the output as printed\n\
             {printed}"
        );
    }
}

/// In the child: runs the program, then ends the process before libtest prints more.
fn run_here(program: &Program) -> ! {
    use std::io::Write as _;
    println!("{MARKER}");
    (program.run)();
    std::io::stdout().flush().expect("flush stdout");
    std::process::exit(0);
}

/// Runs `program` in a child process; returns what it printed after the marker.
fn run_in_child(program: &Program) -> String {
    // A directory of its own, also as its TMPDIR (section 11 writes its trace there).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("doc-programs")
        .join(program.name);
    std::fs::create_dir_all(&dir).expect("create the program's directory");
    let output = dir.join("output");
    let file = File::create(&output).expect("create the output file");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", program.test, "--nocapture", "--test-threads=1"])
        .env(CHILD, program.name)
        .env("TMPDIR", &dir)
        // What the programs print must not depend on the caller's environment.
        .env_remove("RUST_LOG")
        .env_remove("RUST_LOG_STYLE")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("WARDEN_TRACE")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("share the output file"))
        .stderr(file)
        .spawn()
        .expect("start the child process");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{}: still running after {LIMIT:?}\n--- output\n{}",
                program.name,
                std::fs::read_to_string(&output).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = std::fs::read_to_string(&output).expect("read the output");
    assert!(
        status.success(),
        "{} ({}:{}) failed: {status}\n--- output\n{text}",
        program.name,
        program.doc,
        program.line
    );
    let Some(at) = text.find(MARKER) else {
        panic!("{}: the child never ran the program\n{text}", program.name);
    };
    let after = &text[at + MARKER.len()..];
    after.strip_prefix('\n').unwrap_or(after).to_owned()
}

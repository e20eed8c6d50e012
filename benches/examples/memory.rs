//! Bytes per pending task: warden against its peers.
//!
//! ```text
//! cargo run --release -p warden-bench --example memory [-- OUT.json]
//! ```
//!
//! For each runtime, this program starts itself again as a child process (a fresh heap and
//! a fresh RSS baseline each time). The child builds the runtime, notes its resident set
//! (`VmRSS` in `/proc/self/status`) and its live heap bytes (counted by a wrapping global
//! allocator), spawns 100 000 tasks that are polled once and then stay pending forever
//! (their handles detached), waits until every one has been polled, and reports the growth
//! divided by the number of tasks. Each runtime is measured three times; the table shows
//! the median.
//!
//! The figures include everything the runtime keeps per pending task: the task's
//! allocation (header, future, output slot), its registry entry, and queue capacity left
//! over from the spawn burst.
//!
//! The results also go, as JSON, to `OUT.json`, or else to `$CARGO_TARGET_DIR/memory.json`
//! or the workspace's `target/memory.json`, where `benches/report.py` picks them up.
//!
//! This example is in the `benches/` workspace member, with the peers it measures, so that
//! warden's own examples and tests do not build them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::{AtomicWaker, LocalSpawnExt};

const TASKS: usize = 100_000;
const REPEATS: usize = 3;
const WORKERS: usize = 2;

/// Every runtime measured: (name, mode).
const RUNTIMES: &[(&str, &str)] = &[
    ("warden", "single"),
    ("warden", "multi"),
    ("tokio", "single"),
    ("tokio", "multi"),
    ("async-executor", "single"),
    ("async-executor", "multi"),
    ("futures", "single"),
    ("futures", "multi"),
];

// ---------------------------------------------------------------------------------------
// Live heap bytes.

struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Resident set size in bytes, from `/proc/self/status`.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value in kB");
    kib * 1024
}

// ---------------------------------------------------------------------------------------
// The pending task, and waiting until all of them have been polled once.

static POLLED: AtomicUsize = AtomicUsize::new(0);
static ALL_POLLED: AtomicWaker = AtomicWaker::new();

/// Counts its first poll, then stays pending forever (and never keeps a waker).
struct PendingTask(bool);

impl Future for PendingTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if !self.0 {
            self.0 = true;
            if POLLED.fetch_add(1, Ordering::AcqRel) + 1 == TASKS {
                ALL_POLLED.wake();
            }
        }
        Poll::Pending
    }
}

fn task() -> PendingTask {
    PendingTask(false)
}

/// Resolves once every task has been polled.
struct AllPolled;

impl Future for AllPolled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if POLLED.load(Ordering::Acquire) >= TASKS {
            return Poll::Ready(());
        }
        ALL_POLLED.register(cx.waker());
        if POLLED.load(Ordering::Acquire) >= TASKS {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------------------
// The child: one runtime.

struct Sample {
    rss: usize,
    heap: usize,
}

/// The baseline: after a pause, so that the runtime's threads have started and parked.
fn baseline() -> Sample {
    std::thread::sleep(Duration::from_millis(50));
    sample()
}

fn sample() -> Sample {
    Sample {
        rss: rss_bytes(),
        heap: LIVE_BYTES.load(Ordering::Relaxed),
    }
}

/// Builds the runtime, takes the baseline, spawns the tasks, waits for their first polls
/// and samples again. The runtime is leaked: the process exits right after.
fn measure_one(name: &str, mode: &str) -> (Sample, Sample) {
    match (name, mode) {
        ("warden", "single") => {
            let ex = warden::LocalExecutor::new();
            ex.block_on(async {});
            let before = baseline();
            for _ in 0..TASKS {
                ex.spawn(task()).detach();
            }
            ex.block_on(AllPolled);
            let after = sample();
            std::mem::forget(ex);
            (before, after)
        }
        ("warden", "multi") => {
            let ex = warden::Builder::new().worker_threads(WORKERS).build();
            ex.block_on(async {});
            let before = baseline();
            for _ in 0..TASKS {
                ex.spawn(task()).detach();
            }
            ex.block_on(AllPolled);
            let after = sample();
            std::mem::forget(ex);
            (before, after)
        }
        ("tokio", _) => {
            let rt = if mode == "single" {
                tokio::runtime::Builder::new_current_thread().build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(WORKERS)
                    .build()
            }
            .expect("tokio runtime");
            rt.block_on(async {});
            let before = baseline();
            for _ in 0..TASKS {
                drop(rt.spawn(task()));
            }
            rt.block_on(AllPolled);
            let after = sample();
            std::mem::forget(rt);
            (before, after)
        }
        ("async-executor", "single") => {
            let ex = async_executor::LocalExecutor::new();
            futures::executor::block_on(ex.run(async {}));
            let before = baseline();
            for _ in 0..TASKS {
                ex.spawn(task()).detach();
            }
            futures::executor::block_on(ex.run(AllPolled));
            let after = sample();
            std::mem::forget(ex);
            (before, after)
        }
        ("async-executor", "multi") => {
            // As in the benches: one extra thread runs the executor, and so does this one
            // while it waits.
            let ex: &'static async_executor::Executor<'static> =
                Box::leak(Box::new(async_executor::Executor::new()));
            std::thread::spawn(move || {
                futures::executor::block_on(ex.run(std::future::pending::<()>()))
            });
            futures::executor::block_on(ex.run(async {}));
            let before = baseline();
            for _ in 0..TASKS {
                ex.spawn(task()).detach();
            }
            futures::executor::block_on(ex.run(AllPolled));
            let after = sample();
            (before, after)
        }
        ("futures", "single") => {
            let mut pool = futures::executor::LocalPool::new();
            let spawner = pool.spawner();
            pool.run_until(async {});
            let before = baseline();
            for _ in 0..TASKS {
                spawner.spawn_local(task()).expect("LocalPool spawn");
            }
            pool.run_until(AllPolled);
            let after = sample();
            std::mem::forget(pool);
            (before, after)
        }
        ("futures", "multi") => {
            let pool = futures::executor::ThreadPool::builder()
                .pool_size(WORKERS)
                .create()
                .expect("futures ThreadPool");
            futures::executor::block_on(async {});
            let before = baseline();
            for _ in 0..TASKS {
                pool.spawn_ok(task());
            }
            futures::executor::block_on(AllPolled);
            let after = sample();
            std::mem::forget(pool);
            (before, after)
        }
        _ => panic!("unknown runtime {name} {mode}"),
    }
}

fn child(name: &str, mode: &str) {
    let (before, after) = measure_one(name, mode);
    let per_task = |a: usize, b: usize| (b as f64 - a as f64) / TASKS as f64;
    println!(
        "RESULT {name} {mode} {:.1} {:.1}",
        per_task(before.rss, after.rss),
        per_task(before.heap, after.heap)
    );
    // The runtime (forgotten above) and its 100 000 tasks go with the process.
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------
// The parent: every runtime, in child processes.

struct Row {
    name: &'static str,
    mode: &'static str,
    rss: f64,
    heap: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_child(name: &str, mode: &str) -> (f64, f64) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--child", name, mode])
        .output()
        .expect("start a child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "child for {name} {mode} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let fields: Vec<&str> = line.split_whitespace().collect();
    let rss = fields[3].parse().expect("rss per task");
    let heap = fields[4].parse().expect("heap per task");
    (rss, heap)
}

/// The warden commit measured (and whether `src/` had uncommitted changes), when run from
/// a git checkout.
fn warden_source() -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // From the repository's top (`:/`), whatever the working directory.
    let changes = git(&["status", "--porcelain", "--", ":/src", ":/Cargo.toml"])?;
    Some(if changes.is_empty() {
        commit
    } else {
        format!("{commit} with uncommitted changes in src/ or Cargo.toml")
    })
}

/// `$CARGO_TARGET_DIR/memory.json`, else `memory.json` in the workspace's `target/` (found
/// from where this package sits, `benches/` in the workspace root, so it does not depend on
/// the directory `cargo run` was started from). `benches/report.py` looks in the same places.
fn default_output() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("memory.json"),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/memory.json"
        )),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1], &args[2]);
        return;
    }
    if let Some(flag) = args.first().filter(|a| a.starts_with('-')) {
        let help = flag == "--help" || flag == "-h";
        eprintln!("usage: cargo run --release -p warden-bench --example memory [OUTPUT.json]");
        eprintln!("(the default output is target/memory.json, which benches/report.py reads)");
        if !help {
            eprintln!("unknown option {flag}");
        }
        std::process::exit(if help { 0 } else { 2 });
    }
    let output = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(default_output);

    let mut rows = Vec::new();
    for &(name, mode) in RUNTIMES {
        let runs: Vec<(f64, f64)> = (0..REPEATS).map(|_| run_child(name, mode)).collect();
        rows.push(Row {
            name,
            mode,
            rss: median(runs.iter().map(|r| r.0).collect()),
            heap: median(runs.iter().map(|r| r.1).collect()),
        });
    }

    println!("{TASKS} pending tasks per runtime, median of {REPEATS} runs, one child process each");
    println!();
    println!(
        "{:<16} {:<7} {:>14} {:>15}",
        "runtime", "mode", "RSS B/task", "heap B/task"
    );
    for row in &rows {
        println!(
            "{:<16} {:<7} {:>14.1} {:>15.1}",
            row.name, row.mode, row.rss, row.heap
        );
    }

    let entries: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "    {{\"runtime\": \"{}\", \"mode\": \"{}\", \"rss_bytes_per_task\": {:.1}, \
                 \"heap_bytes_per_task\": {:.1}}}",
                r.name, r.mode, r.rss, r.heap
            )
        })
        .collect();
    let source = warden_source().map_or("null".to_owned(), |s| format!("\"{s}\""));
    let json = format!(
        "{{\n  \"tasks\": {TASKS},\n  \"repeats\": {REPEATS},\n  \"workers\": {WORKERS},\n  \
         \"warden_source\": {source},\n  \"results\": [\n{}\n  ]\n}}\n",
        entries.join(",\n")
    );
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).expect("create the output directory");
    }
    std::fs::write(&output, json).expect("write the JSON output");
    println!();
    let shown = std::fs::canonicalize(&output).unwrap_or(output);
    println!("written to {}", shown.display());
}

//! Measures the CPU time an idle 2-worker `Executor` burns: parked workers and a timer thread blocked on its channel should burn none. Exits non-zero at 1% of one core or more.
//!
//! ```text
//! cargo run --release --example idle_cpu
//! ```
//!
//! Two measurements of one second each: the executor with nothing to do, then the same with
//! a task waiting in `warden::sleep` for an hour (a timer far in the future must not make
//! the timer thread spin).
//!
//! CPU time comes from `/proc` (Linux only, no `libc`): `utime + stime` of the whole process
//! from `/proc/self/stat`, in clock ticks (`getconf CLK_TCK`, 100 if that fails), and, more
//! precisely, the on-CPU nanoseconds of every thread from `/proc/self/task/*/schedstat`.
//! The verdict uses the nanoseconds when the kernel provides them, the ticks otherwise.
//! Set `IDLE_CPU_VERBOSE=1` to see the time of each thread.

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

/// 1% of one core.
const LIMIT_PERCENT: f64 = 1.0;
const WINDOW: Duration = Duration::from_secs(1);

/// What `/proc` says about this process at one instant.
struct Sample {
    at: Instant,
    /// `utime + stime` of the whole process, in clock ticks.
    ticks: u64,
    /// On-CPU nanoseconds per live thread (tid -> (name, ns)), if the kernel keeps them.
    threads: Option<BTreeMap<u32, (String, u64)>>,
}

impl Sample {
    fn take() -> Sample {
        Sample {
            ticks: process_ticks(),
            threads: thread_times(),
            at: Instant::now(),
        }
    }
}

/// Fields 14 (utime) and 15 (stime) of `/proc/self/stat`. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after the last `)`.
fn process_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").expect("idle_cpu needs Linux /proc");
    let after_name = &stat[stat.rfind(')').expect("malformed /proc/self/stat") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state), so field N is `fields[N - 3]`.
    let utime: u64 = fields[14 - 3].parse().expect("utime");
    let stime: u64 = fields[15 - 3].parse().expect("stime");
    utime + stime
}

/// The first field of `/proc/self/task/<tid>/schedstat` (nanoseconds on the CPU) for every
/// live thread; `None` if the kernel does not provide it (or reports all zeros).
fn thread_times() -> Option<BTreeMap<u32, (String, u64)>> {
    let mut times = BTreeMap::new();
    for entry in fs::read_dir("/proc/self/task").ok()? {
        let entry = entry.ok()?;
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(schedstat) = fs::read_to_string(entry.path().join("schedstat")) else {
            continue; // the thread just exited
        };
        let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        let name = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        times.insert(tid, (name.trim().to_owned(), ns));
    }
    (times.values().any(|&(_, ns)| ns > 0)).then_some(times)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Sleeps for [`WINDOW`] and reports the CPU this process used meanwhile, as a percent of
/// one core. Returns `true` if it stayed under [`LIMIT_PERCENT`].
fn measure(label: &str, ticks_per_second: u64) -> bool {
    let before = Sample::take();
    thread::sleep(WINDOW);
    let after = Sample::take();

    let elapsed = after.at - before.at;
    let tick_delta = after.ticks - before.ticks;
    let tick_percent = tick_delta as f64 / ticks_per_second as f64 / elapsed.as_secs_f64() * 100.0;

    // Per-thread nanoseconds, for threads alive at both samples.
    let per_thread: Option<Vec<(String, u64)>> = match (&before.threads, &after.threads) {
        (Some(b), Some(a)) => Some(
            a.iter()
                .filter_map(|(tid, (name, ns))| {
                    let (_, was) = b.get(tid)?;
                    Some((format!("{name} ({tid})"), ns.saturating_sub(*was)))
                })
                .collect(),
        ),
        _ => None,
    };

    let (percent, detail) = match &per_thread {
        Some(threads) => {
            let ns: u64 = threads.iter().map(|(_, ns)| ns).sum();
            let percent = ns as f64 / elapsed.as_nanos() as f64 * 100.0;
            (
                percent,
                format!(
                    "utime+stime delta {tick_delta} ticks; on-CPU delta {} us",
                    ns / 1000
                ),
            )
        }
        None => (
            tick_percent,
            format!("utime+stime delta {tick_delta} ticks at {ticks_per_second}/s"),
        ),
    };
    println!(
        "{label}: {percent:.2}% of one core over {:.2} s ({detail})",
        elapsed.as_secs_f64()
    );
    let ok = percent < LIMIT_PERCENT;
    if !ok || std::env::var_os("IDLE_CPU_VERBOSE").is_some() {
        if !ok {
            println!("  over the {LIMIT_PERCENT}% limit");
        }
        println!("  per thread:");
        for (thread, ns) in per_thread.iter().flatten() {
            println!("    {thread}: {} us", ns / 1000);
        }
    }
    ok
}

fn main() -> ExitCode {
    let ticks_per_second = clock_ticks_per_second();
    let ex = warden::Builder::new()
        .worker_threads(2)
        .thread_name("idle-worker")
        .build();

    // Settle: run some tasks on both workers and through the timer thread, then let
    // everything go quiet.
    let sum = ex.block_on(async {
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                warden::spawn(async move {
                    warden::yield_now().await;
                    i
                })
            })
            .collect();
        warden::sleep(Duration::from_millis(5)).await;
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 4950);
    thread::sleep(Duration::from_millis(100));

    let idle_ok = measure("idle 2-worker executor", ticks_per_second);

    // A timer an hour away: the timer thread must block until then, not poll.
    let sleeper = ex.spawn(warden::sleep(Duration::from_secs(3600)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while ex.timer_count() != 1 {
        assert!(
            Instant::now() < deadline,
            "the sleep never registered its timer"
        );
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(100));
    let timer_ok = measure(
        "idle 2-worker executor, one timer 1 h away",
        ticks_per_second,
    );

    sleeper.cancel();
    drop(ex);

    if idle_ok && timer_ok {
        ExitCode::SUCCESS
    } else {
        println!("FAIL: an idle executor should use (almost) no CPU");
        ExitCode::FAILURE
    }
}

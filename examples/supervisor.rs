//! A flaky worker pool under a supervisor: restarted until it gives up, then the story.
//!
//! ```text
//! cargo run --release --example supervisor
//! RUST_LOG=warden=info cargo run --release --example supervisor   # each restart, as it happens
//! ```
//!
//! Three workers take jobs from a shared counter. Some jobs are poison: one in seven has
//! corrupt input (the worker panics), one in eleven times out (the worker returns an
//! `io::Error`). A [`Supervisor`] restarts whichever worker failed (`OneForOne`), after a
//! short, growing backoff, and gives up once more than 3 restarts happen within a second.
//! Then `run()` returns the [`SupervisorError`], whose `Display` tells what happened: one
//! line per restart, with the failed task, where it panicked or what it returned.
//!
//! A `reporter` child (`Temporary`) prints a line and ends; it is not restarted. A worker
//! that returns `Err`, or is cancelled when the supervisor gives up, runs its destructors,
//! as the `stopped` lines show. The output differs a little from run to run: the workers
//! run on two threads, and which of them meets which poison job depends on timing.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use warden::{Backoff, Child, Restart, Strategy, Supervisor, TaskExit};

/// What happens to job `n`.
fn fate(n: u32) -> Result<(), io::Error> {
    if n % 7 == 3 {
        panic!("job {n}: corrupt input");
    }
    if n % 11 == 5 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("job {n}: upstream timed out"),
        ));
    }
    Ok(())
}

/// Says when a worker's future is dropped: by its own end, or by the supervisor.
struct Stopped(&'static str);

impl Drop for Stopped {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            println!("    {}: stopped, its destructors ran", self.0);
        }
    }
}

/// One worker: jobs until one fails it.
async fn worker(name: &'static str, jobs: Arc<AtomicU32>) -> Result<(), io::Error> {
    let _stopped = Stopped(name);
    loop {
        let n = jobs.fetch_add(1, Ordering::SeqCst);
        warden::sleep(Duration::from_millis(2)).await; // the work
        fate(n)?;
    }
}

fn main() {
    env_logger::init();
    let ex = warden::Builder::new()
        .worker_threads(2)
        .on_task_exit(|info, exit| {
            if let TaskExit::Failed(err) = exit {
                let why = match (err.panic_message(), std::error::Error::source(err)) {
                    (Some(message), _) => format!("panicked: {message}"),
                    (None, Some(source)) => format!("returned Err: {source}"),
                    (None, None) => err.to_string(),
                };
                println!("  {} {} {why}", info.name().unwrap_or("?"), info.id());
            }
        })
        .build();
    let jobs = Arc::new(AtomicU32::new(0));

    let mut sup = Supervisor::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(1))
        .backoff(Backoff::exponential(
            Duration::from_millis(5),
            Duration::from_millis(50),
        ))
        .child(
            Child::new("reporter", || async {
                println!("  reporter: the pool is up")
            })
            .restart(Restart::Temporary),
        );
    for name in ["worker-1", "worker-2", "worker-3"] {
        let jobs = jobs.clone();
        sup = sup.child(Child::new(name, move || worker(name, jobs.clone())));
    }

    println!("running the pool:");
    let supervisor = ex.spawn_named("pool-supervisor", sup.run());
    let err = ex
        .block_on(supervisor)
        .expect("the supervisor task")
        .unwrap_err();
    println!();
    println!(
        "after {} jobs, the supervisor gave up:",
        jobs.load(Ordering::SeqCst)
    );
    println!("{err}");
    println!();
    // Each cause is the child's whole TaskError: a panic's backtrace is in there too.
    if let Some(panic) = err.history().iter().rev().find(|r| r.cause().is_panic()) {
        println!("the last panic, with its backtrace ({{:#}}):");
        println!("{:#}", panic.cause());
    }
    println!();
    println!("metrics: {}", ex.metrics());
}

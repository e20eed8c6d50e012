//! A tour of warden: the four practices of robust asyncio exception handling, done by the
//! executor.
//!
//! ```text
//! cargo run --release --example tour
//! ```
//!
//! 1. `try`/`except` inside a coroutine: a typed error, matched with `downcast_ref`.
//! 2. A top-level handler around `gather`: a group's `join` reports every failure.
//! 3. Log exceptions with their tracebacks: a panic keeps its location, spawn site and
//!    backtrace; a failure nobody reads reaches the error hook, which logs it.
//! 4. Cancel the siblings when one fails: the group does it, destructors run, and each
//!    sibling says why it was cancelled.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use warden::{Builder, TaskGroup};

/// A typed error, as a real service would have.
#[derive(Debug)]
struct UserNotFound {
    id: u32,
}

impl fmt::Display for UserNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {} not found", self.id)
    }
}

impl std::error::Error for UserNotFound {}

async fn fetch_user(id: u32) -> Result<String, UserNotFound> {
    warden::sleep(Duration::from_millis(5)).await;
    if id == 7 {
        Err(UserNotFound { id })
    } else {
        Ok(format!("user-{id}"))
    }
}

#[inline(never)]
fn parse_config(text: &str) -> u32 {
    text.parse().expect("config must be a number")
}

/// Prints a line when dropped: shows that cancelled siblings' destructors run.
struct Cleanup {
    name: &'static str,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
        println!("    cleanup: {} released its resources", self.name);
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let ex = Builder::new().worker_threads(2).build();

    println!("1. try/except inside a task: a typed error, matched with downcast_ref");
    ex.block_on(async {
        let group = TaskGroup::new();
        let handle = group.spawn_named("fetch-user-7", fetch_user(7));
        match handle.await {
            Ok(user) => println!("    got {user}"),
            Err(err) => match err.downcast_ref::<UserNotFound>() {
                Some(e) => println!(
                    "    handled: {e} (user id {}), falling back to a guest",
                    e.id
                ),
                None => println!("    something else went wrong: {err}"),
            },
        }
        // The group reports the failure too; we already handled it, so say so.
        let _ = group.join().await;
    });

    println!();
    println!("2. a top-level handler: join reports every failure of the group");
    let report = ex.block_on(async {
        let group = TaskGroup::supervisor();
        for id in [1, 7, 3] {
            group
                .spawn_named(format!("fetch-user-{id}"), fetch_user(id))
                .detach();
        }
        group
            .spawn_named("load-config", async {
                parse_config("forty-two");
            })
            .detach();
        group.join().await
    });
    if let Err(err) = report {
        println!("    {}", err.to_string().replace('\n', "\n    "));
    }

    println!();
    println!("3. log exceptions with their tracebacks");
    let handle = ex.spawn_named("load-config", async { parse_config("x") });
    let err = ex.block_on(handle).unwrap_err();
    println!("    one line:  {err}");
    println!(
        "    task:      {} spawned at {}",
        err.task(),
        err.task().spawned_at()
    );
    println!("    location:  {}", err.location().expect("captured"));
    println!("    with its backtrace ({{:#}}):");
    println!("    {}", format!("{err:#}").replace('\n', "\n    "));
    println!("    a failure that nobody reads goes to the error hook, which logs it:");
    let report = ex.spawn_named("nightly-report", async {
        parse_config("");
    });
    ex.block_on(async {
        while !report.is_finished() {
            warden::yield_now().await;
        }
    });
    // The task has failed and its handle is dropped unread: nobody can observe the
    // failure any more, so the error hook logs it now (on stderr), exactly once.
    drop(report);

    println!();
    println!("4. cancel the siblings when one fails");
    let dropped = Arc::new(AtomicUsize::new(0));
    let result = ex.block_on({
        let dropped = dropped.clone();
        async move {
            let group = TaskGroup::new();
            let mut siblings = Vec::new();
            for name in ["resize-images", "send-emails"] {
                let cleanup = Cleanup {
                    name,
                    dropped: dropped.clone(),
                };
                siblings.push(group.spawn_named(name, async move {
                    let _cleanup = cleanup;
                    warden::sleep(Duration::from_secs(3600)).await;
                }));
            }
            group
                .spawn_named("charge-card", async {
                    warden::sleep(Duration::from_millis(10)).await;
                    Err::<(), _>("payment gateway timed out")
                })
                .detach();
            for sibling in siblings {
                let err = sibling.await.unwrap_err();
                println!("    {err}");
            }
            group.join().await
        }
    });
    let err = result.unwrap_err();
    // The report's first line counts failures and cancellations and names the sibling
    // whose failure cancelled the rest (the failures follow, one per line).
    let summary = err.to_string();
    println!(
        "    group report: {}",
        summary.lines().next().unwrap_or_default()
    );
    println!("    destructors run: {}", dropped.load(Ordering::SeqCst));

    println!();
    // `Metrics` prints the identity its counters keep, with the poll count.
    println!("metrics: {}", ex.metrics());
    println!("after the failure, restarting: cargo run --release --example supervisor");
}

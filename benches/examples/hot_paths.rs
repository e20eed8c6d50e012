//! The hot paths of warden, one at a time, for a profiler: `valgrind --tool=callgrind`
//! counts instructions exactly even on a busy machine, where wall-clock benchmarks wobble.
//! `docs/performance.md` quotes its figures and says how to read them.
//!
//! ```text
//! cargo build --release -p warden-bench --example hot_paths
//! target/release/examples/hot_paths yield            # LocalExecutor
//! target/release/examples/hot_paths yield --pool     # Executor, 2 workers
//! target/release/examples/hot_paths yield --pool 4   # Executor, 4 workers
//! target/release/examples/hot_paths yield --poll-timing   # with Builder::poll_timing(true)
//! target/release/examples/hot_paths yield --no-watchdog   # with blocking_threshold(None)
//! valgrind --tool=callgrind target/release/examples/hot_paths chain
//! callgrind_annotate callgrind.out.<pid> | head -40
//! ```
//!
//! Each workload runs `ROUNDS` times and prints its wall time. Workloads: `spawn` (10 000
//! spawns awaited, per round), `chain` (1 000 tasks, each spawning the next), `yield` (200
//! tasks x 1 000 yields), `ping` (1 000 pairs, one round trip each), `cancel` (10 000 pending
//! tasks, each cancelled through its handle and awaited), `group-cancel` (10 000 pending
//! group members, one `TaskGroup::cancel`: the printed time is the cancel and join only),
//! `each-cancel` (the same 10 000 with handles, each cancelled and awaited: timed likewise),
//! `panic` (10 000 tasks, every 10th panics, all awaited; backtraces off).
//! `tokio-spawn`, `tokio-chain` and `futures-chain` run the same shapes on tokio's
//! `current_thread` runtime and on futures' `LocalPool`, to compare instruction counts.
//!
//! This example is in the `benches/` workspace member because of those peers: warden's own
//! examples and tests do not build tokio. The binary still lands in the workspace's
//! `target/release/examples/`.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::task::LocalSpawnExt;

const ROUNDS: usize = 100;

/// The executor under test, by kind.
enum Runtime {
    Local(warden::LocalExecutor),
    Pool(warden::Executor),
}

impl Runtime {
    fn handle(&self) -> warden::Handle {
        match self {
            Runtime::Local(ex) => ex.handle(),
            Runtime::Pool(ex) => ex.handle(),
        }
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        match self {
            Runtime::Local(ex) => ex.block_on(future),
            Runtime::Pool(ex) => ex.block_on(future),
        }
    }
}

fn chain(handle: warden::Handle, left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        let next = handle.clone();
        handle
            .spawn(async move { chain(next, left - 1, done) })
            .detach();
    }
}

/// One round of a warden workload. Returns the time to report for it, if only part of
/// the round counts (`group-cancel`).
fn warden_round(rt: &Runtime, workload: &str) -> Option<Duration> {
    let h = rt.handle();
    match workload {
        "spawn" => rt.block_on(Box::pin(async move {
            let handles: Vec<_> = (0..10_000).map(|_| h.spawn(async {})).collect();
            for handle in handles {
                handle.await.unwrap();
            }
        })),
        "chain" => rt.block_on(Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            chain(h, 1_000, tx);
            rx.await.unwrap();
        })),
        "yield" => rt.block_on(Box::pin(async move {
            let handles: Vec<_> = (0..200)
                .map(|_| {
                    h.spawn(async {
                        for _ in 0..1_000 {
                            warden::yield_now().await;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        })),
        "ping" => rt.block_on(Box::pin(async move {
            let mut pingers = Vec::new();
            for _ in 0..1_000 {
                let inner = h.clone();
                pingers.push(h.spawn(async move {
                    let (ping_tx, ping_rx) = oneshot::channel::<()>();
                    let (pong_tx, pong_rx) = oneshot::channel::<()>();
                    inner
                        .spawn(async move {
                            ping_rx.await.unwrap();
                            pong_tx.send(()).unwrap();
                        })
                        .detach();
                    ping_tx.send(()).unwrap();
                    pong_rx.await.unwrap();
                }));
            }
            for pinger in pingers {
                pinger.await.unwrap();
            }
        })),
        "cancel" => {
            let handles: Vec<_> = (0..10_000)
                .map(|_| h.spawn(std::future::pending::<()>()))
                .collect();
            rt.block_on(Box::pin(async move {
                warden::yield_now().await;
                for handle in &handles {
                    handle.cancel();
                }
                for handle in handles {
                    assert!(handle.await.unwrap_err().is_cancelled());
                }
            }));
        }
        "group-cancel" => {
            let group = h.group();
            for _ in 0..10_000 {
                group.spawn(std::future::pending::<()>()).detach();
            }
            // Let every member be polled once, so each waits, as in the benchmark.
            rt.block_on(Box::pin(warden::yield_now()));
            std::thread::sleep(Duration::from_millis(2));
            let start = Instant::now();
            group.cancel();
            rt.block_on(Box::pin(async move {
                let report = group.join().await.unwrap_err();
                assert_eq!(report.cancelled(), 10_000);
            }));
            return Some(start.elapsed());
        }
        "panic" => rt.block_on(Box::pin(async move {
            let handles: Vec<_> = (0..10_000)
                .map(|i| {
                    h.spawn(async move {
                        if i % 10 == 0 {
                            panic!("panic {i}");
                        }
                    })
                })
                .collect();
            let mut panicked = 0;
            for handle in handles {
                panicked += usize::from(handle.await.is_err());
            }
            assert_eq!(panicked, 1_000);
        })),
        "each-cancel" => {
            let handles: Vec<_> = (0..10_000)
                .map(|_| h.spawn(std::future::pending::<()>()))
                .collect();
            rt.block_on(Box::pin(warden::yield_now()));
            std::thread::sleep(Duration::from_millis(2));
            let start = Instant::now();
            for handle in &handles {
                handle.cancel();
            }
            rt.block_on(Box::pin(async move {
                for handle in handles {
                    assert!(handle.await.unwrap_err().is_cancelled());
                }
            }));
            return Some(start.elapsed());
        }
        other => panic!("unknown workload {other:?}; see the doc comment at the top"),
    }
    None
}

fn tokio_chain(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(tokio::spawn(async move { tokio_chain(left - 1, done) }));
    }
}

fn futures_chain(spawner: futures::executor::LocalSpawner, left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        let next = spawner.clone();
        spawner
            .spawn_local(async move { futures_chain(next, left - 1, done) })
            .unwrap();
    }
}

/// A peer's version of `workload`, if there is one.
fn peer_rounds(workload: &str) -> Option<Duration> {
    let start = Instant::now();
    match workload {
        "tokio-spawn" | "tokio-chain" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            for _ in 0..ROUNDS {
                if workload == "tokio-spawn" {
                    rt.block_on(async {
                        let handles: Vec<_> = (0..10_000).map(|_| tokio::spawn(async {})).collect();
                        for handle in handles {
                            handle.await.unwrap();
                        }
                    });
                } else {
                    rt.block_on(async {
                        let (tx, rx) = oneshot::channel();
                        tokio_chain(1_000, tx);
                        rx.await.unwrap();
                    });
                }
            }
        }
        "futures-chain" => {
            let mut pool = futures::executor::LocalPool::new();
            for _ in 0..ROUNDS {
                let (tx, rx) = oneshot::channel();
                futures_chain(pool.spawner(), 1_000, tx);
                pool.run_until(async { rx.await.unwrap() });
            }
        }
        _ => return None,
    }
    Some(start.elapsed())
}

fn main() {
    // `--poll-timing`, anywhere: the same with `Builder::poll_timing(true)`.
    let all: Vec<String> = std::env::args().skip(1).collect();
    let poll_timing = all.iter().any(|a| a == "--poll-timing");
    // `--no-watchdog`, anywhere: with `Builder::blocking_threshold(None)`.
    let watchdog = !all.iter().any(|a| a == "--no-watchdog");
    let mut args = all
        .into_iter()
        .filter(|a| a != "--poll-timing" && a != "--no-watchdog");
    let workload = args.next().unwrap_or_else(|| "yield".to_owned());
    let pool = args.next().as_deref() == Some("--pool");
    let workers: usize = args
        .next()
        .map_or(2, |n| n.parse().expect("--pool N: a number"));
    if let Some(elapsed) = peer_rounds(&workload) {
        println!("{workload}: {ROUNDS} rounds in {elapsed:?}");
        return;
    }
    // Backtraces off: `panic` then measures what warden adds to a panic besides the stack
    // walk (which the default, `Backtraces::Always`, adds on top). No other workload panics.
    let builder = warden::Builder::new()
        .backtraces(warden::Backtraces::Off)
        .poll_timing(poll_timing);
    let builder = if watchdog {
        builder
    } else {
        builder.blocking_threshold(None)
    };
    let rt = if pool {
        Runtime::Pool(builder.worker_threads(workers).build())
    } else {
        Runtime::Local(builder.build_local())
    };
    let start = Instant::now();
    let mut counted = Duration::ZERO;
    let mut partial = false;
    for _ in 0..ROUNDS {
        if let Some(part) = warden_round(&rt, &workload) {
            counted += part;
            partial = true;
        }
    }
    let total = start.elapsed();
    let kind = if pool {
        format!(
            "Executor, {workers} worker{}",
            if workers == 1 { "" } else { "s" }
        )
    } else {
        "LocalExecutor".to_owned()
    };
    if partial {
        println!(
            "{workload} ({kind}): {ROUNDS} rounds in {total:?}, of which the timed part {counted:?}"
        );
    } else {
        println!("{workload} ({kind}): {ROUNDS} rounds in {total:?}");
    }
}

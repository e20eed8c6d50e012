//! A TCP echo on loopback: the same server and client on warden (with the `io` feature),
//! on async-executor driven as smol drives it, and on tokio; each with 2 worker threads,
//! in one run; prints messages/s and warden's ratios to the others.
//!
//! ```text
//! cargo run --release -p warden-io-bench --example echo_bench [-- ROUNDS]
//! ```
//!
//! Each round, on each runtime: a server on `127.0.0.1:0` (loopback only) with one task
//! per connection, and 50 client connections in the same runtime, each sending
//! `MESSAGES_PER_CONNECTION` 64-byte messages one after another and checking every echo.
//! A round stops early at `ROUND_LIMIT`. The runtimes take turns (3 rounds by default),
//! and the median round counts. This is the shape of `examples/echo_server.rs`'s client
//! mode, without its task groups (which the peers do not have).

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CONNECTIONS: usize = 50;
const MESSAGES_PER_CONNECTION: usize = 2_000;
const MESSAGE: usize = 64;
const ROUND_LIMIT: Duration = Duration::from_secs(20);

use warden_io_bench::{async_channel_like, async_channel_pair};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Spawn = Arc<dyn Fn(BoxFuture) + Send + Sync>;
/// One round on one runtime: (items done, elapsed).
type Run = fn() -> (usize, Duration);

/// The message a client sends `i`th.
fn message(i: usize) -> [u8; MESSAGE] {
    let mut m = [0u8; MESSAGE];
    m[..8].copy_from_slice(&(i as u64).to_le_bytes());
    m
}

/// A round on an async-io based runtime (warden or async-executor): returns the messages
/// echoed.
async fn async_io_round(spawn: Spawn) -> usize {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().unwrap();
    let accept_spawn = spawn.clone();
    spawn(Box::pin(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.get_ref().set_nodelay(true).unwrap();
            accept_spawn(Box::pin(async move {
                let mut buf = [0u8; MESSAGE];
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            }));
        }
    }));
    let deadline = Instant::now() + ROUND_LIMIT;
    let (tx, rx) = async_channel_like();
    for _ in 0..CONNECTIONS {
        let tx = tx.clone();
        spawn(Box::pin(async move {
            let mut stream = Async::<TcpStream>::connect(addr).await.expect("connect");
            stream.get_ref().set_nodelay(true).unwrap();
            let mut done = 0;
            let mut buf = [0u8; MESSAGE];
            while done < MESSAGES_PER_CONNECTION && Instant::now() < deadline {
                stream.write_all(&message(done)).await.expect("write");
                stream.read_exact(&mut buf).await.expect("read");
                assert_eq!(buf, message(done), "wrong echo");
                done += 1;
            }
            tx.send(done);
        }));
    }
    rx.sum(CONNECTIONS).await
}

/// A round on tokio: as [`async_io_round`], with tokio's sockets.
async fn tokio_round() -> usize {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; MESSAGE];
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let deadline = Instant::now() + ROUND_LIMIT;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut done = 0;
                let mut buf = [0u8; MESSAGE];
                while done < MESSAGES_PER_CONNECTION && Instant::now() < deadline {
                    stream.write_all(&message(done)).await.expect("write");
                    stream.read_exact(&mut buf).await.expect("read");
                    assert_eq!(buf, message(done), "wrong echo");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for client in clients {
        total += client.await.unwrap();
    }
    server.abort();
    total
}

fn run_warden() -> (usize, Duration) {
    let ex = warden::Builder::new().worker_threads(2).build();
    let spawn: Spawn = Arc::new(|f| warden::spawn(f).detach());
    let start = Instant::now();
    let handle = ex.handle();
    let done = ex.block_on(async move { handle.spawn(async_io_round(spawn)).await.unwrap() });
    (done, start.elapsed())
}

fn run_async_executor() -> (usize, Duration) {
    let ex = Arc::new(async_executor::Executor::new());
    let (stop_tx, stop_rx) = async_channel_pair();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (ex, stop_rx) = (ex.clone(), stop_rx.clone());
            std::thread::spawn(move || async_io::block_on(ex.run(stop_rx.wait())))
        })
        .collect();
    let spawn: Spawn = {
        let ex = ex.clone();
        Arc::new(move |f| ex.spawn(f).detach())
    };
    let start = Instant::now();
    let done = async_io::block_on(ex.spawn(async_io_round(spawn)));
    let elapsed = start.elapsed();
    stop_tx.stop();
    for t in threads {
        t.join().unwrap();
    }
    (done, elapsed)
}

fn run_tokio() -> (usize, Duration) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .unwrap();
    let start = Instant::now();
    let done = rt.block_on(async { tokio::spawn(tokio_round()).await.unwrap() });
    (done, start.elapsed())
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROUNDS must be a number"))
        .unwrap_or(3);
    let runs: [(&str, Run); 3] = [
        ("warden (io)", run_warden),
        ("async-executor (smol-style)", run_async_executor),
        ("tokio", run_tokio),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for (i, (name, run)) in runs.iter().enumerate() {
            let (done, elapsed) = run();
            let rate = done as f64 / elapsed.as_secs_f64();
            println!(
                "round {}: {name:<28} {done:>6} echoes in {:>6.3} s = {:>8.0} msg/s",
                round + 1,
                elapsed.as_secs_f64(),
                rate
            );
            rates[i].push(rate);
        }
    }
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|v| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        })
        .collect();
    println!("median messages/s over {rounds} rounds (2 worker threads each, 50 connections):");
    for ((name, _), m) in runs.iter().zip(&medians) {
        println!("  {name:<28} {m:>8.0}");
    }
    println!(
        "  warden / tokio = {:.2}x, warden / async-executor = {:.2}x",
        medians[0] / medians[2],
        medians[0] / medians[1]
    );
}

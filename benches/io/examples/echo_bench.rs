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

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CONNECTIONS: usize = 50;
const MESSAGES_PER_CONNECTION: usize = 2_000;
const MESSAGE: usize = 64;
const ROUND_LIMIT: Duration = Duration::from_secs(20);

use warden_io_bench::{
    Run, Spawn, async_channel_like, on_async_executor, on_tokio, on_warden, take_turns,
};

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

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROUNDS must be a number"))
        .unwrap_or(3);
    let runs: [(&str, Run); 3] = [
        ("warden (io)", Box::new(|| on_warden(async_io_round))),
        (
            "async-executor (smol-style)",
            Box::new(|| on_async_executor(async_io_round)),
        ),
        ("tokio", Box::new(|| on_tokio(tokio_round))),
    ];
    let medians = take_turns(rounds, &runs, "echoes", "messages/s");
    println!(
        "  warden / tokio = {:.2}x, warden / async-executor = {:.2}x",
        medians[0] / medians[2],
        medians[0] / medians[1]
    );
}

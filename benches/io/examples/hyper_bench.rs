//! hyper 1.x HTTP/1 keep-alive on loopback: the same server and client on warden (with
//! the `io` feature), on async-executor driven as smol drives it, and on tokio; each with
//! 2 worker threads, in one run; prints requests/s and warden's ratios to the others.
//!
//! ```text
//! cargo run --release -p warden-io-bench --example hyper_bench [-- ROUNDS [RUNTIME]]
//! ```
//!
//! RUNTIME runs that one alone, for a profiler: `warden`, `async-executor` or `tokio`, or
//! `warden-smol-hyper` / `async-executor-smol-hyper` for the async-io runtimes with
//! smol-hyper's adapter.
//!
//! Each round, on each runtime: a server on `127.0.0.1:0` (loopback only), 50 client
//! connections in the same runtime, each sending `REQUESTS_PER_CONNECTION` GET requests
//! one after another on its keep-alive connection and checking every response's status
//! and body. A round stops early at `ROUND_LIMIT`. The runtimes take turns, round by round
//! (3 rounds by default), and the median round counts.
//!
//! I/O: async-io's `Async<TcpStream>` on warden and async-executor, each with two hyper
//! adapters: warden's `HyperIo` (feature `hyper`; remembers readiness) and
//! `smol-hyper`'s `FuturesIo` (async-io's `AsyncRead`, which reads first); tokio's
//! `TcpStream` with hyper-util's `TokioIo` on tokio. The ratios compare warden with each
//! peer on the same adapter.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Async;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};

const CONNECTIONS: usize = 50;
const REQUESTS_PER_CONNECTION: usize = 1_000;
const ROUND_LIMIT: Duration = Duration::from_secs(20);
const BODY: &[u8] = b"Hello from a keep-alive connection!";

use warden::HyperIo;
use warden_io_bench::{
    Run, Spawn, async_channel_like, on_async_executor, on_tokio, on_warden, take_turns,
};

/// Which hyper adapter wraps async-io's sockets.
#[derive(Clone, Copy)]
enum Adapter {
    /// `warden::HyperIo` (feature `hyper`).
    HyperIo,
    /// `smol_hyper::rt::FuturesIo`.
    SmolHyper,
}

/// Serves one connection: every request gets `BODY`.
async fn serve_connection<T>(io: T)
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// One client connection: up to `REQUESTS_PER_CONNECTION` requests, each response
/// checked; returns how many completed before `deadline`.
async fn client_connection<T>(io: T, spawn: Spawn, deadline: Instant) -> usize
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .expect("handshake");
    spawn(Box::pin(async move {
        let _ = conn.await;
    }));
    let mut done = 0;
    while done < REQUESTS_PER_CONNECTION && Instant::now() < deadline {
        // The previous response's end may not have been processed by the connection task
        // yet: wait until the connection takes a new request.
        sender.ready().await.expect("connection ready");
        let request = Request::get("/")
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Empty::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], BODY, "wrong response body");
        done += 1;
    }
    done
}

/// A round on an async-io based runtime (warden or async-executor): the accept loop and
/// 50 clients spawned with `spawn`; returns the requests completed.
async fn async_io_round(spawn: Spawn, adapter: Adapter) -> usize {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().unwrap();
    let accept_spawn = spawn.clone();
    spawn(Box::pin(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.get_ref().set_nodelay(true).unwrap();
            match adapter {
                Adapter::HyperIo => accept_spawn(Box::pin(serve_connection(HyperIo::new(stream)))),
                Adapter::SmolHyper => accept_spawn(Box::pin(serve_connection(
                    smol_hyper::rt::FuturesIo::new(stream),
                ))),
            }
        }
    }));
    let deadline = Instant::now() + ROUND_LIMIT;
    let (tx, rx) = async_channel_like();
    for _ in 0..CONNECTIONS {
        let (spawn2, tx) = (spawn.clone(), tx.clone());
        spawn(Box::pin(async move {
            let stream = Async::<TcpStream>::connect(addr).await.expect("connect");
            stream.get_ref().set_nodelay(true).unwrap();
            let done = match adapter {
                Adapter::HyperIo => client_connection(HyperIo::new(stream), spawn2, deadline).await,
                Adapter::SmolHyper => {
                    let io = smol_hyper::rt::FuturesIo::new(stream);
                    client_connection(io, spawn2, deadline).await
                }
            };
            tx.send(done);
        }));
    }
    rx.sum(CONNECTIONS).await
}

/// A round on tokio: as [`async_io_round`], with tokio's sockets.
async fn tokio_round() -> usize {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(serve_connection(hyper_util::rt::TokioIo::new(stream)));
        }
    });
    let spawn: Spawn = Arc::new(|f| {
        tokio::spawn(f);
    });
    let deadline = Instant::now() + ROUND_LIMIT;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let spawn = spawn.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                client_connection(hyper_util::rt::TokioIo::new(stream), spawn, deadline).await
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
    let only = std::env::args().nth(2);
    let on_async_io = |adapter: Adapter| move |spawn| async_io_round(spawn, adapter);
    let runs: [(&str, Run); 5] = [
        (
            "warden (io) HyperIo",
            Box::new(move || on_warden(on_async_io(Adapter::HyperIo))),
        ),
        (
            "async-executor HyperIo",
            Box::new(move || on_async_executor(on_async_io(Adapter::HyperIo))),
        ),
        ("tokio TokioIo", Box::new(|| on_tokio(tokio_round))),
        (
            "warden (io) smol-hyper",
            Box::new(move || on_warden(on_async_io(Adapter::SmolHyper))),
        ),
        (
            "async-executor smol-hyper",
            Box::new(move || on_async_executor(on_async_io(Adapter::SmolHyper))),
        ),
    ];
    // What `RUNTIME` names, in `runs`' order.
    let keys = [
        "warden",
        "async-executor",
        "tokio",
        "warden-smol-hyper",
        "async-executor-smol-hyper",
    ];
    if let Some(only) = only {
        let i = keys.iter().position(|k| *k == only).expect(
            "RUNTIME: warden, async-executor, tokio, warden-smol-hyper or async-executor-smol-hyper",
        );
        let (name, run) = &runs[i];
        for round in 0..rounds {
            let (done, elapsed) = run();
            let rate = done as f64 / elapsed.as_secs_f64();
            println!(
                "round {}: {name} {done} requests, {rate:.0} req/s",
                round + 1
            );
        }
        return;
    }
    let medians = take_turns(rounds, &runs, "requests", "req/s");
    println!(
        "  HyperIo:    warden / tokio = {:.2}x, warden / async-executor = {:.2}x",
        medians[0] / medians[2],
        medians[0] / medians[1]
    );
    println!(
        "  smol-hyper: warden / tokio = {:.2}x, warden / async-executor = {:.2}x",
        medians[3] / medians[2],
        medians[3] / medians[4]
    );
    println!(
        "  HyperIo / smol-hyper: warden {:.2}x, async-executor {:.2}x",
        medians[0] / medians[3],
        medians[1] / medians[4]
    );
}

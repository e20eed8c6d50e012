//! The `io` feature: idle executor threads wait in async-io's reactor (module `park`).
//!
//! Both executors serve a TCP ping-pong over async-io's `Async<TcpStream>`: every message
//! must arrive (a lost wake-up hangs the test, which the guard turns into a failure), and
//! the wake-ups of the I/O futures must come, at least sometimes, from warden's own threads
//! parked in the reactor rather than from async-io's fallback thread.

#![cfg(feature = "io")]

mod support;

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_io::Async;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::task::ArcWake;
use support::{Flavor, Rt, hang_guard};
use warden::Builder;

const ROUNDS: usize = 300;

/// The names of the threads that woke a [`Recorded`] future, one per wake.
type WakerThreads = Arc<Mutex<Vec<String>>>;

/// A waker that records the name of the thread that calls it, then wakes the task.
struct RecordingWaker {
    threads: WakerThreads,
    inner: Waker,
}

impl ArcWake for RecordingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        arc_self.threads.lock().unwrap().push(name);
        arc_self.inner.wake_by_ref();
    }
}

/// Polls `inner` with a [`RecordingWaker`] around the task's waker.
struct Recorded<F> {
    inner: Pin<Box<F>>,
    threads: WakerThreads,
}

impl<F: Future> Future for Recorded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = futures::task::waker(Arc::new(RecordingWaker {
            threads: self.threads.clone(),
            inner: cx.waker().clone(),
        }));
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

/// A connected pair of non-blocking loopback sockets.
fn socket_pair() -> (Async<TcpStream>, Async<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (Async::new(client).unwrap(), Async::new(server).unwrap())
}

/// `ROUNDS` round trips between a spawned echo task and the root future, whose reads
/// record the threads that woke them. Returns those names.
fn ping_pong(rt: &Rt) -> Vec<String> {
    let (mut client, mut server) = socket_pair();
    let echo = rt.spawn(async move {
        let mut buf = [0u8; 8];
        for _ in 0..ROUNDS {
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(&buf).await.unwrap();
        }
    });
    let threads = WakerThreads::default();
    rt.block_on(async {
        for round in 0..ROUNDS as u64 {
            client.write_all(&round.to_le_bytes()).await.unwrap();
            let mut buf = [0u8; 8];
            let read = Recorded {
                inner: Box::pin(client.read_exact(&mut buf)),
                threads: threads.clone(),
            };
            read.await.unwrap();
            assert_eq!(u64::from_le_bytes(buf), round);
        }
        echo.await.unwrap();
    });
    threads.lock().unwrap().clone()
}

fn check(flavor: Flavor) {
    let test_thread = format!("io-reactor-{flavor:?}");
    let names = hang_guard("the ping-pong", move || {
        std::thread::Builder::new()
            .name(test_thread)
            .spawn(move || ping_pong(&flavor.build(Builder::new().thread_name("io-worker"))))
            .unwrap()
            .join()
            .unwrap()
    });
    assert!(!names.is_empty(), "the reads never waited for the echo");
    assert!(
        names
            .iter()
            .any(|name| name.starts_with("io-worker") || name.starts_with("io-reactor")),
        "every I/O wake-up came from async-io's own thread, none from a parked warden thread: \
         {names:?}"
    );
}

#[test]
fn local_executor_ping_pong_wakes_in_its_own_thread() {
    check(Flavor::Local);
}

#[test]
fn pool_ping_pong_wakes_in_a_warden_thread() {
    check(Flavor::Pool);
}

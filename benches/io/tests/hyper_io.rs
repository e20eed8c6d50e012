//! The `hyper` feature: `HyperIo`, hyper's I/O traits for async-io's sockets.
//!
//! `cargo test -p warden-io-bench --test hyper_io`: here, in the member that builds hyper's
//! client and server anyway, so that warden's own `cargo test` does not. On both executors: a hyper HTTP/1 client
//! and server on loopback with every body checked (small ones, and bodies large enough
//! that writes fill the socket and have to wait); EOF after a request; a peer that closes
//! in the middle of a body, on either side, is an error and not a hang. And, with a socket
//! that counts its system calls: a read or write that came back short is not tried again
//! until the reactor reports the socket ready.

// warden's integration-test helpers (hang guards, `rt_test!`), shared rather than copied.
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use async_io::Async;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::rt::{Read as _, ReadBuf, Write as _};
use hyper::{Request, Response, StatusCode};
use support::hang_guard;
use warden::HyperIo;

/// Connections the round trip opens at once.
const CONNECTIONS: usize = 3;
/// Request body sizes each connection sends, one request each, in this order. The large
/// ones fill the sockets' buffers, so writes come back short and wait for writability.
const BODY_SIZES: [usize; 7] = [0, 1, 100, 5_000, 70_000, 2 * 1024 * 1024, 17];

/// The body connection `conn` sends as its request number `i`.
fn request_body(conn: usize, i: usize) -> Vec<u8> {
    (0..BODY_SIZES[i])
        .map(|k| (k * 7 + conn * 31 + i * 13) as u8)
        .collect()
}

/// The server's answer: the request body, reversed (so an answer cannot be the request
/// passing through unserved).
fn answer(body: &[u8]) -> Vec<u8> {
    body.iter().rev().copied().collect()
}

/// Serves one connection: every request's body, reversed. Returns hyper's result.
///
/// With `half_close`, a request followed by EOF still gets its answer (hyper's default
/// treats EOF as the peer gone, answered or not).
async fn serve(stream: Async<TcpStream>, half_close: bool) -> hyper::Result<()> {
    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
        let body = req.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(answer(&body)))))
    });
    hyper::server::conn::http1::Builder::new()
        .half_close(half_close)
        .serve_connection(HyperIo::new(stream), service)
        .await
}

/// A loopback listener and its address.
fn listen() -> (Async<TcpListener>, std::net::SocketAddr) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    (listener, addr)
}

/// A server task that serves one connection with [`serve`], and a raw peer connected to
/// it that has sent `request`.
async fn raw_peer(
    half_close: bool,
    request: &[u8],
) -> (Async<TcpStream>, warden::JoinHandle<hyper::Result<()>>) {
    let (listener, addr) = listen();
    let server = warden::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream, half_close).await
    });
    let mut peer = Async::<TcpStream>::connect(addr).await.unwrap();
    peer.write_all(request).await.unwrap();
    (peer, server)
}

rt_test! {
    /// Every request of every keep-alive connection gets its own body back, reversed, and
    /// the server's connections end cleanly when the clients go.
    fn round_trip_checks_every_body(flavor) {
        hang_guard("round trip", move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let (listener, addr) = listen();
                let server = warden::spawn(async move {
                    let mut conns = Vec::new();
                    for _ in 0..CONNECTIONS {
                        let (stream, _) = listener.accept().await.unwrap();
                        conns.push(warden::spawn(serve(stream, false)));
                    }
                    for conn in conns {
                        conn.await.unwrap().expect("server connection");
                    }
                });
                let clients: Vec<_> = (0..CONNECTIONS)
                    .map(|conn| {
                        warden::spawn(async move {
                            let stream = Async::<TcpStream>::connect(addr).await.unwrap();
                            let (mut sender, connection) =
                                hyper::client::conn::http1::handshake(HyperIo::new(stream))
                                    .await
                                    .unwrap();
                            let connection = warden::spawn(connection);
                            for i in 0..BODY_SIZES.len() {
                                sender.ready().await.unwrap();
                                let sent = request_body(conn, i);
                                let request = Request::post("/")
                                    .header(hyper::header::HOST, "127.0.0.1")
                                    .body(Full::new(Bytes::from(sent.clone())))
                                    .unwrap();
                                let response = sender.send_request(request).await.unwrap();
                                assert_eq!(response.status(), StatusCode::OK);
                                let got = response.into_body().collect().await.unwrap();
                                assert!(
                                    got.to_bytes() == answer(&sent),
                                    "connection {conn}, request {i}: wrong body"
                                );
                            }
                            drop(sender);
                            connection.await.unwrap().expect("client connection");
                        })
                    })
                    .collect();
                for client in clients {
                    client.await.unwrap();
                }
                server.await.unwrap();
            });
        });
    }

    /// A peer that sends one request and then shuts its side down (EOF) gets its answer,
    /// and the server's connection ends without an error.
    fn eof_after_a_request_ends_the_connection(flavor) {
        hang_guard("EOF", move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc";
                let (mut peer, server) = raw_peer(true, request).await;
                peer.get_ref().shutdown(Shutdown::Write).unwrap();
                server.await.unwrap().expect("a clean end after EOF");
                let mut response = Vec::new();
                peer.read_to_end(&mut response).await.unwrap();
                let response = String::from_utf8(response).unwrap();
                assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
                assert!(response.ends_with("\r\n\r\ncba"), "{response}");
            });
        });
    }

    /// A client that closes its socket 10 bytes into a 100-byte request body: the server's
    /// connection ends with an error.
    fn a_client_closing_mid_body_is_an_error(flavor) {
        hang_guard("client closing mid-body", move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789";
                let (peer, server) = raw_peer(false, request).await;
                drop(peer);
                let result = server.await.unwrap();
                assert!(result.is_err(), "the server took a cut-off body: {result:?}");
            });
        });
    }

    /// A server that closes its socket 10 bytes into a 100-byte response body: the
    /// client's body ends with an error, and the client's connection ends.
    fn a_server_closing_mid_body_is_an_error(flavor) {
        hang_guard("server closing mid-body", move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let (listener, addr) = listen();
                let server = warden::spawn(async move {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    // Read the request's head (it has no body), then answer with a cut-off
                    // body and close.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        stream.read_exact(&mut byte).await.unwrap();
                        head.push(byte[0]);
                    }
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                        .await
                        .unwrap();
                });
                let stream = Async::<TcpStream>::connect(addr).await.unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(HyperIo::new(stream)).await.unwrap();
                let connection = warden::spawn(connection);
                let request = Request::get("/")
                    .header(hyper::header::HOST, "127.0.0.1")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                server.await.unwrap();
                let body = response.into_body().collect().await;
                assert!(body.is_err(), "the client took a cut-off body");
                // The error went to the body; the connection itself ends (not hangs).
                let _ = connection.await.unwrap();
            });
        });
    }

    /// After a short read, reads wait for the reactor: polls with nothing to read cost
    /// no `read`, and new data costs one. EOF reads as 0 bytes.
    fn a_short_read_waits_for_readiness(flavor) {
        hang_guard("short read", move || {
            let rt = flavor.rt();
            let (mut io, calls, peer) = counted_pair();
            let mut noop = Context::from_waker(Waker::noop());

            (&peer).write_all(b"hello").unwrap();
            assert_eq!(poll_read(&mut io, &mut noop), Poll::Ready(b"hello".to_vec()));
            assert_eq!(calls.reads(), 1);
            for _ in 0..3 {
                assert_eq!(poll_read(&mut io, &mut noop), Poll::Pending);
            }
            assert_eq!(calls.reads(), 1, "a read after a short read went to the socket");

            (&peer).write_all(b"world").unwrap();
            let got = rt.block_on(poll_fn(|cx| poll_read(&mut io, cx)));
            assert_eq!(got, b"world");
            assert_eq!(calls.reads(), 2);

            drop(peer);
            let got = rt.block_on(poll_fn(|cx| poll_read(&mut io, cx)));
            assert!(got.is_empty(), "EOF reads as 0 bytes");
        });
    }

    /// After a short or blocked write, writes wait for the reactor (a flush does not), then
    /// go on; every byte arrives, in order, through plain and vectored writes.
    fn a_short_write_waits_for_readiness(flavor) {
        hang_guard("short write", move || {
            let rt = flavor.rt();
            let (mut io, calls, peer) = counted_pair();
            let mut noop = Context::from_waker(Waker::noop());
            let chunk: Vec<u8> = (0..64 * 1024).map(|k| (k % 251) as u8).collect();

            // Fill the socket until a write has to wait. A short write is the last that goes
            // to the socket; after a full one, the next write's `WouldBlock` is.
            let mut sent = Vec::new();
            let (mut writes, mut last_short) = (0, false);
            while let Poll::Ready(n) = Pin::new(&mut io).poll_write(&mut noop, &chunk) {
                let n = n.unwrap();
                sent.extend_from_slice(&chunk[..n]);
                (writes, last_short) = (calls.writes(), n < chunk.len());
            }
            let expected = if last_short { writes } else { writes + 1 };
            assert_eq!(calls.writes(), expected, "a write after a short write went to the socket");
            for _ in 0..3 {
                assert!(Pin::new(&mut io).poll_write(&mut noop, &chunk).is_pending());
            }
            assert_eq!(calls.writes(), expected, "a write after `WouldBlock` went to the socket");
            // A socket's flush sends nothing: it does not wait for room.
            assert!(matches!(Pin::new(&mut io).poll_flush(&mut noop), Poll::Ready(Ok(()))));

            // A reader drains the other end; the writes go on, vectored ones too.
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                (&peer).read_to_end(&mut got).unwrap();
                got
            });
            rt.block_on(async {
                for round in 0..8 {
                    let n = poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &chunk)).await.unwrap();
                    sent.extend_from_slice(&chunk[..n]);
                    let parts = [IoSlice::new(&chunk[..1000]), IoSlice::new(&chunk[round..])];
                    let n = poll_fn(|cx| Pin::new(&mut io).poll_write_vectored(cx, &parts))
                        .await
                        .unwrap();
                    let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
                    sent.extend_from_slice(&joined[..n]);
                }
                poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await.unwrap();
            });
            drop(io);
            assert!(reader.join().unwrap() == sent, "the bytes that arrived differ");
        });
    }
}

/// One `poll_read` into a fresh 64-byte buffer: the bytes read, or `Pending`.
fn poll_read<T>(io: &mut HyperIo<T>, cx: &mut Context<'_>) -> Poll<Vec<u8>>
where
    for<'a> &'a T: Read,
{
    let mut storage = [0u8; 64];
    let mut buf = ReadBuf::new(&mut storage);
    match Pin::new(io).poll_read(cx, buf.unfilled()) {
        Poll::Ready(result) => {
            result.unwrap();
            Poll::Ready(buf.filled().to_vec())
        }
        Poll::Pending => Poll::Pending,
    }
}

/// How many `read` and `write` calls a [`Counted`] socket saw.
#[derive(Clone, Default)]
struct Calls(std::sync::Arc<(AtomicUsize, AtomicUsize)>);

impl Calls {
    fn reads(&self) -> usize {
        self.0.0.load(Ordering::SeqCst)
    }

    fn writes(&self) -> usize {
        self.0.1.load(Ordering::SeqCst)
    }
}

/// A Unix socket that counts the `read` and `write` calls made on it (each is one system
/// call), vectored writes included.
struct Counted {
    stream: UnixStream,
    calls: Calls,
}

impl Counted {
    fn new(stream: UnixStream) -> Counted {
        Counted {
            stream,
            calls: Calls::default(),
        }
    }

    fn calls(&self) -> Calls {
        self.calls.clone()
    }
}

/// One end of a socket pair that counts its system calls, wrapped in `HyperIo`; its
/// counts; the other end.
fn counted_pair() -> (HyperIo<Counted>, Calls, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    let counted = Counted::new(ours);
    let calls = counted.calls();
    (HyperIo::new(Async::new(counted).unwrap()), calls, peer)
}

impl AsFd for Counted {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Read for &Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls.0.0.fetch_add(1, Ordering::SeqCst);
        (&self.stream).read(buf)
    }
}

impl Write for &Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls.0.1.fetch_add(1, Ordering::SeqCst);
        (&self.stream).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.calls.0.1.fetch_add(1, Ordering::SeqCst);
        (&self.stream).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

//! A TCP echo server on warden's multi-threaded [`Executor`], with `async-io` for the
//! sockets, and a client mode that loads it.
//!
//! ```text
//! cargo run --release --example echo_server -- client [--connections N] [--messages M]
//! cargo run --release --example echo_server -- serve [ADDR] [--max-connections N]
//! ```
//!
//! `client` starts the server in this process on `127.0.0.1:0` (an ephemeral loopback
//! port), runs N client tasks at once, each sending M messages and checking every echo,
//! then prints the throughput (messages/s) and a summary and exits (0 when every echo came
//! back right). `serve` only serves, on `127.0.0.1:7878` unless ADDR says otherwise; it
//! stops after `--max-connections` connections (default: never, stop it with Ctrl-C).
//! Both modes take `--deadline-secs S` (default 30), the time limit of one connection.
//! This example binds loopback addresses only. Set `RUST_LOG=debug` to see every
//! connection close.
//!
//! What it shows:
//!
//! * **One [`TaskGroup`] per connection, with a deadline.** Each connection is two group
//!   members, a reader and a writer joined by a bounded channel. If one fails (the peer
//!   reset the connection), the group cancels the other; if the connection outlives its
//!   deadline ([`TaskGroup::with_timeout`]), both are cancelled with
//!   [`CancelReason::Deadline`]. Either way the socket is closed because the futures that
//!   own it are dropped.
//! * **Failures reported where they are handled.** The connection's `join` returns every
//!   failure of the connection in a [`GroupError`](warden::GroupError); the server logs it
//!   through `log` (`env_logger` prints it) and keeps serving.
//! * **Nesting.** Each connection's group is a child of the server's supervisor group: a
//!   failed connection cancels nothing else, and stopping the server cancels every
//!   connection.
//! * **Cancelling a task from outside.** The client mode cancels the server's accept loop
//!   with a [`JoinHandle::cancel`](warden::JoinHandle::cancel) if it has not stopped by
//!   itself in time.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_io::Async;
use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, SinkExt, StreamExt};
use warden::{Builder, CancelReason, Executor, TaskGroup};

/// How many chunks a reader may hand to its writer before it waits (backpressure).
const CHANNEL_DEPTH: usize = 8;
/// The reader's buffer.
const CHUNK: usize = 4096;
/// At most this many reads per connection (64 MiB with full chunks): every loop is bounded.
const MAX_READS: usize = 16 * 1024;
/// The most clients, and messages per client, the client mode accepts (the message format
/// has room for that many digits).
const MAX_CLIENTS: u64 = 10_000;
const MAX_MESSAGES: u64 = 10_000_000;

/// What the server counts, across every connection.
#[derive(Debug, Default)]
struct ServerStats {
    accepted: AtomicU64,
    closed_ok: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    bytes: AtomicU64,
}

impl fmt::Display for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} accepted, {} closed cleanly, {} failed, {} timed out, {} bytes echoed",
            self.accepted.load(Ordering::SeqCst),
            self.closed_ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            self.timed_out.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

/// Accepts up to `max_connections` connections, each served by its own group, then waits
/// for the open ones to finish.
async fn serve(
    listener: Async<TcpListener>,
    max_connections: u64,
    deadline: Duration,
    stats: Arc<ServerStats>,
) {
    // A supervisor: one connection failing does not cancel the others.
    let connections = TaskGroup::supervisor();
    for _ in 0..max_connections {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, a connection reset while queued...: not the
                // server's end. Back off a little and go on.
                log::warn!("accept failed: {err}");
                warden::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::SeqCst);
        let group = connections.child().with_timeout(deadline);
        connections
            .spawn_named(
                format!("conn {peer}"),
                connection(stream, peer, group, deadline, stats.clone()),
            )
            .detach();
    }
    drop(listener);
    // Only a panic in a connection task gets here: `connection` handles everything else.
    if let Err(err) = connections.join().await {
        log::error!("the server's connection tasks failed: {err}");
    }
}

/// Serves one connection with two members of `group` and reports how it ended.
async fn connection(
    stream: Async<TcpStream>,
    peer: SocketAddr,
    group: TaskGroup,
    deadline: Duration,
    stats: Arc<ServerStats>,
) {
    let stream = Arc::new(stream);
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    group
        .spawn_named(format!("read {peer}"), read_half(stream.clone(), tx))
        .detach();
    group
        .spawn_named(
            format!("write {peer}"),
            write_half(stream, rx, stats.clone()),
        )
        .detach();
    match group.join().await {
        Ok(()) => {
            stats.closed_ok.fetch_add(1, Ordering::SeqCst);
            log::debug!("connection {peer} closed");
        }
        Err(err) if err.first().is_none() && err.reason() == Some(&CancelReason::Deadline) => {
            stats.timed_out.fetch_add(1, Ordering::SeqCst);
            log::warn!("connection {peer} closed: still open after its deadline of {deadline:?}");
        }
        Err(err) => {
            stats.failed.fetch_add(1, Ordering::SeqCst);
            // Every failure of the connection, each with its task's name and spawn site.
            log::warn!("connection {peer} failed: {err}");
        }
    }
}

/// Reads chunks until the peer closes its side, and hands them to the writer.
async fn read_half(stream: Arc<Async<TcpStream>>, mut tx: mpsc::Sender<Vec<u8>>) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    for _ in 0..MAX_READS {
        let n = (&*stream).read(&mut buf).await?;
        if n == 0 {
            // End of stream: dropping `tx` ends the writer once it has sent everything.
            return Ok(());
        }
        tx.send(buf[..n].to_vec())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the writer is gone"))?;
    }
    Err(io::Error::other(format!(
        "the connection sent more than {MAX_READS} chunks"
    )))
}

/// Writes back every chunk the reader hands over, then closes the sending side.
async fn write_half(
    stream: Arc<Async<TcpStream>>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    stats: Arc<ServerStats>,
) -> io::Result<()> {
    // Bounded: the reader sends at most MAX_READS chunks, then the channel ends.
    while let Some(chunk) = rx.next().await {
        (&*stream).write_all(&chunk).await?;
        stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    (&*stream).flush().await?;
    // Tell the peer we are done. It may have closed the socket already, which is fine.
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    Ok(())
}

/// The `i`th message of client `c`: fixed length, so the client knows how much to read.
fn message(c: u64, i: u64) -> Vec<u8> {
    format!("client {c:05} message {i:08}\n").into_bytes()
}

/// One client: sends `messages` messages, one at a time, and checks every echo.
async fn client(c: u64, addr: SocketAddr, messages: u64) -> io::Result<u64> {
    let mut stream = Async::<TcpStream>::connect(addr).await?;
    let mut echo = vec![0u8; message(c, 0).len()];
    for i in 0..messages {
        let sent = message(c, i);
        stream.write_all(&sent).await?;
        stream.read_exact(&mut echo).await?;
        if echo != sent {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "echo mismatch at message {i}: sent {:?}, got {:?}",
                    String::from_utf8_lossy(&sent),
                    String::from_utf8_lossy(&echo)
                ),
            ));
        }
    }
    Ok(messages)
}

/// The client mode: server and clients in this process, on loopback.
fn run_clients(ex: &Executor, opts: &Options) -> io::Result<bool> {
    let listener = Async::<TcpListener>::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = listener.get_ref().local_addr()?;
    log::info!(
        "serving on {addr}; {} clients x {} messages",
        opts.connections,
        opts.messages
    );
    let stats = Arc::new(ServerStats::default());
    let connections = opts.connections;
    let messages = opts.messages;
    let deadline = opts.deadline;
    let server_stats = stats.clone();

    let (report, elapsed) = ex.block_on(async move {
        // The server accepts exactly as many connections as there are clients, then drains
        // them and ends by itself.
        let server = warden::spawn_named(
            "accept-loop",
            serve(listener, connections, deadline, server_stats),
        );

        let started = Instant::now();
        let clients = TaskGroup::supervisor().with_timeout(deadline);
        for c in 0..connections {
            clients
                .spawn_named(format!("client-{c}"), client(c, addr, messages))
                .detach();
        }
        let report = clients.join().await;
        let elapsed = started.elapsed();

        // The clients are done and have closed their sockets: the server finishes too.
        // Should a connection hang on, cancel the whole server after a grace period.
        let mut server = server;
        if warden::timeout(Duration::from_secs(5), &mut server)
            .await
            .is_err()
        {
            log::warn!("the server did not stop within 5 s of the clients; cancelling it");
            server.cancel();
            let _ = server.await;
        }
        (report, elapsed)
    });

    let total = connections * messages;
    let failed_clients = match &report {
        Ok(()) => 0,
        Err(err) => {
            log::error!("some clients failed: {err}");
            err.failures().len() + err.cancelled()
        }
    };
    let ok_messages = (connections - failed_clients as u64) * messages;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "echo_server: {} clients x {} messages = {} echoes checked in {:.3} s: {:.0} messages/s",
        connections,
        messages,
        ok_messages,
        secs,
        ok_messages as f64 / secs
    );
    println!(
        "  clients: {} ok, {} failed",
        connections - failed_clients as u64,
        failed_clients
    );
    println!("  server:  {stats}");
    let m = ex.metrics();
    println!(
        "  tasks:   spawned {} = completed {} + panicked {} + errored {} + cancelled {} + live {}; {} polls",
        m.spawned, m.completed, m.panicked, m.errored, m.cancelled, m.live, m.polls
    );
    Ok(failed_clients == 0 && ok_messages == total)
}

/// The serve mode: until `max_connections` connections were served (or Ctrl-C).
fn run_server(ex: &Executor, opts: &Options) -> io::Result<()> {
    let listener = Async::<TcpListener>::bind(opts.addr)?;
    let addr = listener.get_ref().local_addr()?;
    log::info!("echo server listening on {addr}");
    let stats = Arc::new(ServerStats::default());
    ex.block_on(serve(
        listener,
        opts.max_connections,
        opts.deadline,
        stats.clone(),
    ));
    log::info!("served {stats}");
    Ok(())
}

#[derive(Debug)]
enum Mode {
    Client,
    Serve,
}

#[derive(Debug)]
struct Options {
    mode: Mode,
    connections: u64,
    messages: u64,
    addr: SocketAddr,
    max_connections: u64,
    deadline: Duration,
}

const USAGE: &str = "usage: echo_server client [--connections N] [--messages M] [--deadline-secs S]
       echo_server serve [ADDR] [--max-connections N] [--deadline-secs S]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mode = match args.next().as_deref() {
        Some("client") => Mode::Client,
        Some("serve") => Mode::Serve,
        Some(other) => return Err(format!("unknown mode {other:?}")),
        None => return Err("missing mode".to_owned()),
    };
    let mut opts = Options {
        mode,
        connections: 32,
        messages: 500,
        addr: SocketAddr::from(([127, 0, 0, 1], 7878)),
        max_connections: u64::MAX,
        deadline: Duration::from_secs(30),
    };
    fn number(flag: &str, value: Option<String>) -> Result<u64, String> {
        let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
        value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number"))
    }
    while let Some(arg) = args.next() {
        match (&opts.mode, arg.as_str()) {
            (Mode::Client, "--connections") => opts.connections = number(&arg, args.next())?,
            (Mode::Client, "--messages") => opts.messages = number(&arg, args.next())?,
            (Mode::Serve, "--max-connections") => opts.max_connections = number(&arg, args.next())?,
            (_, "--deadline-secs") => {
                opts.deadline = Duration::from_secs(number(&arg, args.next())?)
            }
            (Mode::Serve, addr) if !addr.starts_with('-') => {
                opts.addr = addr
                    .parse()
                    .map_err(|_| format!("{addr:?} is not an address like 127.0.0.1:7878"))?;
            }
            (_, other) => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if !opts.addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address; this example only binds loopback addresses",
            opts.addr
        ));
    }
    if !(1..=MAX_CLIENTS).contains(&opts.connections) {
        return Err(format!("--connections must be 1..={MAX_CLIENTS}"));
    }
    if !(1..=MAX_MESSAGES).contains(&opts.messages) {
        return Err(format!("--messages must be 1..={MAX_MESSAGES}"));
    }
    if opts.deadline.is_zero() {
        return Err("--deadline-secs must be at least 1".to_owned());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("echo_server: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ex = Builder::new().thread_name("echo").build();
    let result = match opts.mode {
        Mode::Client => run_clients(&ex, &opts),
        Mode::Serve => run_server(&ex, &opts).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("echo_server: {err}");
            ExitCode::FAILURE
        }
    }
}

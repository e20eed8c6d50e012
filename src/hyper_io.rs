//! [`HyperIo`] (feature `hyper`): hyper 1.x's I/O traits (`hyper::rt::Read`,
//! `hyper::rt::Write`) for an async-io socket (`async_io::Async<T>`, e.g.
//! `Async<TcpStream>`), remembering readiness so that a read or write that cannot succeed
//! costs no system call.
//!
//! # Why not read first
//!
//! async-io's own `AsyncRead` for `Async<T>` tries the `recv` first and waits for readiness
//! only after `EAGAIN`. hyper polls its read side far more often than data arrives (after
//! every response, and whenever its connection task is woken for any other reason), so
//! most of those `recv`s fail. This adapter keeps one flag per direction instead:
//!
//! 1. A direction starts *ready*: the first read or write goes straight to the socket.
//! 2. A read that returns fewer bytes than it offered (the socket's receive queue was
//!    drained at that instant), or `WouldBlock`, marks reading *not ready*; a write that
//!    takes fewer bytes than offered, or `WouldBlock`, marks writing *not ready*.
//! 3. A direction that is not ready first asks `Async::poll_readable` / `poll_writable`.
//!    `Pending` goes back to hyper with no system call, unless this is the first wait
//!    since the last event: then async-io arms the socket (one `epoll_ctl`; its
//!    registrations are one-shot, and its public API offers no other kind). `Ready` means
//!    the reactor delivered an event newer than the last check: the direction is ready
//!    again and the socket is tried.
//!
//! # Why nothing is lost or hangs
//!
//! - async-io registers interest *level-triggered* one-shot (epoll without `EPOLLET`):
//!   arming a socket that already has data (or EOF, or an error) reports it at the
//!   reactor's next turn. So bytes that arrived between the short read and the arm are
//!   reported, not missed; they wait one reactor turn, which request/response traffic
//!   rarely sees (after a short read the peer is usually waiting for an answer).
//! - `Pending` is returned only when `poll_readable` / `poll_writable` returned `Pending`,
//!   and that call registered the task's waker with interest armed: someone will wake it.
//! - A stale readiness event (one delivered while the direction was already ready) can
//!   only make a read or write run once more and get `WouldBlock`; that marks the
//!   direction not ready and loops back to rule 3, which then waits.
//! - EOF is a read of 0 bytes: hyper sees it (rule 2 marks reading not ready, and a
//!   closed socket stays readable, so another read returns 0 again at once). Errors from
//!   the socket (`ECONNRESET`, ...) and from arming it are returned to hyper as they are.
//!
//! # Zero-filling
//!
//! hyper hands the adapter uninitialised memory, and `std::io::Read` wants initialised
//! bytes. Instead of zeroing all of hyper's buffer before every read, the adapter offers
//! a *window* of it: small for request/response traffic, doubled after every read that
//! fills it (a bulk transfer), halved after reads far below it. Only the window is zeroed,
//! and only the part of it hyper had not initialised yet.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_io::Async;
use hyper::rt::ReadBufCursor;

/// The smallest (and first) read window, in bytes.
const MIN_READ_WINDOW: usize = 2 * 1024;
/// The largest read window, in bytes (hyper's buffer caps it further).
const MAX_READ_WINDOW: usize = 256 * 1024;

/// hyper 1.x's I/O traits for an async-io socket, without the `recv` that cannot succeed.
///
/// Wraps an [`Async<T>`] whose `&T` reads and writes (`TcpStream`, `UnixStream`, ...) and
/// implements [`hyper::rt::Read`] and [`hyper::rt::Write`] for it. A read or write that
/// came back short or would block is not tried again until async-io's reactor reports the
/// socket ready, so the extra reads hyper makes between requests cost no system call.
/// It tells hyper it writes vectored (hyper then queues its buffers instead of copying
/// them into one); each vectored write is one `write_vectored` on `&T`, for a
/// `TcpStream` one `writev`.
///
/// A flush calls `&T`'s `flush` (a no-op for a socket) and waits only if that would
/// block. Shutting down flushes; the socket closes when the adapter is dropped (hyper
/// drops it when the connection ends).
///
/// Only one task may use it at a time (hyper's connection owns it), as async-io asks of
/// `poll_readable` and `poll_writable`.
///
/// # Examples
///
/// hyper's connections (`server::conn::http1::Builder::serve_connection`,
/// `client::conn::http1::handshake`) take any `hyper::rt::Read + hyper::rt::Write +
/// Unpin`; a `HyperIo` is one. The README's hyper section has a whole server; here, the
/// two ends of a loopback connection, each wrapped, with a request written through hyper's
/// `Write` and read through its `Read`:
///
/// ```
/// use std::future::poll_fn;
/// use std::mem::MaybeUninit;
/// use std::net::{TcpListener, TcpStream};
/// use std::pin::Pin;
///
/// use async_io::Async;
/// use hyper::rt::{Read, ReadBuf, Write};
/// use warden::HyperIo;
///
/// # fn main() -> std::io::Result<()> {
/// let ex = warden::Executor::new();
/// let received = ex.block_on(async {
///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
///     let client = Async::<TcpStream>::connect(listener.get_ref().local_addr()?).await?;
///     let (server, _) = listener.accept().await?;
///     let (mut client, mut server) = (HyperIo::new(client), HyperIo::new(server));
///
///     let request = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n";
///     let written = poll_fn(|cx| Pin::new(&mut client).poll_write(cx, request)).await?;
///     assert_eq!(written, request.len()); // a short request fits the socket at once
///
///     let mut storage = [MaybeUninit::uninit(); 64];
///     let mut buf = ReadBuf::uninit(&mut storage);
///     poll_fn(|cx| Pin::new(&mut server).poll_read(cx, buf.unfilled())).await?;
///     Ok::<_, std::io::Error>(buf.filled().to_vec())
/// })?;
/// assert!(received.starts_with(b"GET / HTTP/1.1"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HyperIo<T> {
    /// The socket, registered in async-io's reactor.
    io: Async<T>,
    /// Whether the next read may go straight to the socket (rules 1-3 in the module doc).
    readable: bool,
    /// Whether the next write may go straight to the socket.
    writable: bool,
    /// How many bytes of hyper's buffer the next read offers (and may zero-fill).
    read_window: usize,
}

// The adapter never pins its fields: the socket is only used through `&` and `&mut`.
impl<T> Unpin for HyperIo<T> {}

impl<T> HyperIo<T> {
    /// Wraps an async-io socket for hyper.
    pub fn new(io: Async<T>) -> Self {
        HyperIo {
            io,
            readable: true,
            writable: true,
            read_window: MIN_READ_WINDOW,
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &Async<T> {
        &self.io
    }

    /// Unwraps the socket.
    pub fn into_inner(self) -> Async<T> {
        self.io
    }
}

impl<T> From<Async<T>> for HyperIo<T> {
    fn from(io: Async<T>) -> Self {
        HyperIo::new(io)
    }
}

impl<T> hyper::rt::Read for HyperIo<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.readable {
                ready!(this.io.poll_readable(cx))?;
                this.readable = true;
            }
            let offered = this.read_window.min(buf.remaining());
            let dst = buf.initialize_unfilled_to(offered);
            match this.io.get_ref().read(dst) {
                Ok(n) => {
                    // `Read` is a safe trait: a wrong count must panic here, not reach
                    // `advance` below.
                    assert!(
                        n <= offered,
                        "`read` returned more bytes than it was offered"
                    );
                    if n < offered {
                        // Short (or EOF): the receive queue was empty when the read returned.
                        this.readable = false;
                        if n < this.read_window / 4 {
                            this.read_window = (this.read_window / 2).max(MIN_READ_WINDOW);
                        }
                    } else if offered == this.read_window {
                        this.read_window = (this.read_window * 2).min(MAX_READ_WINDOW);
                    }
                    // SAFETY: `initialize_unfilled_to(offered)` initialised the first
                    // `offered` bytes of the cursor, and `n <= offered` (asserted above), so
                    // the `n` bytes advanced over are initialised, as `advance` requires.
                    unsafe { buf.advance(n) };
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => this.readable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl<T> HyperIo<T>
where
    for<'a> &'a T: Write,
{
    /// Runs one write-side operation under rules 1-3: `op` returns how many of `offered`
    /// bytes it wrote.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        offered: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.writable {
                ready!(self.io.poll_writable(cx))?;
                self.writable = true;
            }
            match op(self.io.get_ref()) {
                Ok(n) => {
                    // hyper trusts the count to advance its own buffers: a `write` that
                    // claims more than it was given is a bug in `T`, stopped here.
                    assert!(
                        n <= offered,
                        "`write` reported more bytes than it was offered"
                    );
                    if n < offered {
                        // The send queue took less than offered: it is full.
                        self.writable = false;
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl<T> hyper::rt::Write for HyperIo<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, buf.len(), |mut io| io.write(buf))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let offered = bufs.iter().map(|b| b.len()).sum();
        self.get_mut()
            .poll_write_with(cx, offered, |mut io| io.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Not gated by rule 3: a socket's flush sends nothing (a no-op for `TcpStream`), so
        // it goes first even after a short write, and waits only if it would block.
        let this = self.get_mut();
        loop {
            match this.io.get_ref().flush() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    this.writable = false;
                    ready!(this.io.poll_writable(cx))?;
                    this.writable = true;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

//! The `io` parker: a parked thread waits in async-io's reactor (module doc).
//!
//! Each thread has one `IoParker`: a token (`notified`) and the waker of the
//! `async_io::block_on` that waits for it. Parking runs `async_io::block_on` on [`Wait`],
//! a future that is ready once the token is set (or its timer fired); `block_on` waits in
//! the reactor if it gets the reactor's lock and on its own parker otherwise, and its waker
//! interrupts either wait. Unparking sets the token, then wakes the stored waker.
//!
//! No lost wake-up: `Wait` stores its waker, then looks at the token again; `unpark` sets
//! the token, then reads the waker. Both sides go through the `waker` lock after their
//! first step, so either `Wait`'s second look sees the token or `unpark` sees the waker.
//!
//! In a thread-local destructor the thread's parker (a thread-local) may be gone, and so
//! may async-io's (it keeps its own parker in one): there, `park` falls back to
//! `std::thread::park`, and `unpark` always unparks the thread that way too (an atomic
//! swap unless the thread is in `std::thread::park`). The parker is made only after
//! async-io's thread-locals, so it is destroyed first: while it lives, they do too.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::Turn;
use crate::loom::{JoinHandle, spawn_thread};

/// One thread's token and the waker of its current (or last) wait.
struct IoParker {
    notified: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// The thread, for the fallback to `std::thread::park` (module doc).
    thread: OnceLock<Thread>,
}

impl IoParker {
    fn new() -> Arc<IoParker> {
        Arc::new(IoParker {
            notified: AtomicBool::new(false),
            waker: Mutex::new(None),
            thread: OnceLock::new(),
        })
    }

    /// Takes the token if it is set; otherwise stores `cx`'s waker for `unpark` and looks
    /// at the token once more (module doc: no lost wake-up).
    fn take_or_register(&self, cx: &Context<'_>) -> bool {
        if self.notified.swap(false, Ordering::SeqCst) {
            return true;
        }
        {
            let mut waker = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *waker {
                Some(stored) if stored.will_wake(cx.waker()) => {}
                other => *other = Some(cx.waker().clone()),
            }
        }
        self.notified.swap(false, Ordering::SeqCst)
    }

    fn unpark(&self) {
        self.notified.store(true, Ordering::SeqCst);
        {
            let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(waker) = &*waker {
                waker.wake_by_ref();
            }
        }
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

std::thread_local! {
    /// This thread's parker, made on first use (or installed by `spawn_parkable`).
    static OWN: RefCell<Option<Arc<IoParker>>> = const { RefCell::new(None) };
    /// `true` while this thread is inside `park` (see `woke_locally`).
    static PARKING: Cell<bool> = const { Cell::new(false) };
}

/// This thread's parker; `None` in a thread-local destructor that runs after it is gone.
fn own() -> Option<Arc<IoParker>> {
    OWN.try_with(|own| {
        if let Some(parker) = &*own.borrow() {
            return parker.clone();
        }
        let parker = IoParker::new();
        install(parker.clone());
        parker
    })
    .ok()
}

/// Makes `parker` this thread's, after async-io's thread-locals (module doc).
fn install(parker: Arc<IoParker>) {
    async_io::block_on(async {});
    let _ = parker.thread.set(thread::current());
    OWN.with(|own| *own.borrow_mut() = Some(parker));
}

/// Wakes one parked thread (the module doc says how).
#[derive(Clone)]
pub(crate) struct Unparker(Arc<IoParker>);

impl Unparker {
    /// Wakes the thread, or makes its next `park` return at once.
    pub(crate) fn unpark(&self) {
        self.0.unpark();
    }
}

/// The calling thread's unparker.
pub(crate) fn current() -> Unparker {
    Unparker(own().unwrap_or_else(|| {
        // Thread-locals gone: an unparker that reaches the thread through
        // `std::thread::park` alone (module doc).
        let parker = IoParker::new();
        let _ = parker.thread.set(thread::current());
        parker
    }))
}

/// Starts a named thread with its parker made beforehand, so that the unparker exists
/// before the thread runs.
pub(crate) fn spawn_parkable<F>(name: String, f: F) -> std::io::Result<(JoinHandle<()>, Unparker)>
where
    F: FnOnce() + Send + 'static,
{
    let parker = IoParker::new();
    let theirs = parker.clone();
    let handle = spawn_thread(name, move || {
        install(theirs);
        f()
    })?;
    let _ = parker.thread.set(handle.thread().clone());
    Ok((handle, Unparker(parker)))
}

/// `true` if the two unparkers wake the same thread.
pub(crate) fn same_thread(a: &Unparker, b: &Unparker) -> bool {
    Arc::ptr_eq(&a.0, &b.0)
}

/// Parks the calling thread in the reactor until it is unparked.
pub(crate) fn park() {
    park_until(None);
}

/// Parks the calling thread in the reactor until it is unparked or `timeout` has passed.
pub(crate) fn park_timeout(timeout: Duration) {
    match Instant::now().checked_add(timeout) {
        Some(deadline) => park_until(Some(deadline)),
        None => park_until(None),
    }
}

/// Unparks the calling thread if it is parked: a task it woke while dispatching I/O went
/// into its own queue (module doc of `park`).
#[inline]
pub(crate) fn woke_locally() {
    if PARKING.try_with(Cell::get).unwrap_or(false) {
        if let Some(parker) = own() {
            parker.unpark();
        }
    }
}

/// A busy loop ends its turn now and then (`Turn::Again`) so that the reactor can
/// dispatch ready I/O.
pub(crate) const POLLS_IO: bool = true;

/// Runs `turn` until it says `Exit`, all inside one `async_io::block_on`: a `Park` is a
/// `Pending` that lasts until the thread is unparked (or its timer fires), so the thread
/// waits in the reactor if it holds it; and after an `Again` the loop yields once, so that
/// `block_on` dispatches the I/O that is ready without waiting. (A
/// `block_on` per park would, as it returns, wake async-io's own thread each time.)
pub(crate) fn run_turns(mut turn: impl FnMut() -> Turn) {
    let Some(parker) = own() else {
        // Thread-locals gone (module doc): park through std.
        loop {
            match turn() {
                Turn::Again => {}
                Turn::Park(None) => thread::park(),
                Turn::Park(Some(timeout)) => thread::park_timeout(timeout),
                Turn::Exit => return,
            }
        }
    };
    let _parking = ClearOnDrop;
    // `Some` while parked: the park's timer, if it has a timeout.
    let mut waiting: Option<Option<async_io::Timer>> = None;
    async_io::block_on(std::future::poll_fn(|cx| {
        loop {
            if let Some(timer) = &mut waiting {
                if !parker.take_or_register(cx) {
                    let fired = timer
                        .as_mut()
                        .is_some_and(|timer| Pin::new(timer).poll(cx).is_ready());
                    if !fired {
                        return Poll::Pending;
                    }
                }
                waiting = None;
                PARKING.with(|p| p.set(false));
            }
            match turn() {
                Turn::Again => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Turn::Park(timeout) => {
                    if parker.notified.swap(false, Ordering::SeqCst) {
                        continue;
                    }
                    PARKING.with(|p| p.set(true));
                    waiting = Some(timeout.map(async_io::Timer::after));
                }
                Turn::Exit => return Poll::Ready(()),
            }
        }
    }));
}

/// Parks the calling thread until it is unparked or `timeout` has passed, outside the
/// reactor: for a thread whose wake-ups come from other threads and which would only take
/// the reactor from the workers (a pool's `block_on`).
pub(crate) fn park_outside_reactor(timeout: Option<Duration>) {
    let Some(parker) = own() else {
        match timeout {
            Some(timeout) => thread::park_timeout(timeout),
            None => thread::park(),
        }
        return;
    };
    // `unpark` always unparks the thread through std too (module doc); a spurious return
    // is allowed.
    if !parker.notified.swap(false, Ordering::SeqCst) {
        match timeout {
            Some(timeout) => thread::park_timeout(timeout),
            None => thread::park(),
        }
        parker.notified.store(false, Ordering::SeqCst);
    }
}

fn park_until(deadline: Option<Instant>) {
    let Some(parker) = own() else {
        // Thread-locals gone (module doc).
        match deadline {
            Some(deadline) => {
                thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => thread::park(),
        }
        return;
    };
    if parker.notified.swap(false, Ordering::SeqCst) {
        return;
    }
    PARKING.with(|p| p.set(true));
    let _parking = ClearOnDrop;
    async_io::block_on(Wait {
        parker: &parker,
        timer: deadline.map(async_io::Timer::at),
    });
}

/// Clears `PARKING` when `park_until` returns or unwinds.
struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        PARKING.with(|p| p.set(false));
    }
}

/// Ready once the thread's token is set (taking it) or its timer fired.
struct Wait<'a> {
    parker: &'a IoParker,
    timer: Option<async_io::Timer>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.parker.take_or_register(cx) {
            return Poll::Ready(());
        }
        match &mut self.timer {
            Some(timer) => Pin::new(timer).poll(cx).map(|_| ()),
            None => Poll::Pending,
        }
    }
}

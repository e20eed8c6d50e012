//! How a thread with nothing to run waits: the *parker*.
//!
//! Every place where warden puts a thread to sleep (a pool worker with no task, the
//! `block_on` loop of either executor, a `LocalExecutor` waiting for its next timer) and
//! every place that wakes one goes through this module: [`park`] and [`park_timeout`] put
//! the calling thread to sleep, an [`Unparker`] (from [`current`], or from
//! [`spawn_parkable`] for a thread not started yet) wakes it. Waking uses a token: an
//! `unpark` that comes before the `park` makes that `park` return at once.
//!
//! A pool worker does not call `park` itself: its loop runs in [`run_turns`], and a turn
//! that finds nothing to run returns [`Turn::Park`]. With the plain parker that is the
//! same `park`; with the `io` parker the whole loop runs inside one `async_io::block_on`
//! and a park is a `Pending` of it (see `io.rs` for why).
//!
//! Two implementations, one chosen at compile time:
//!
//! * `plain` (the default): `std::thread::park`, and a `Thread` handle as the unparker.
//!   Without the `io` feature these names are `std`'s (loom's in the models), so the code
//!   compiles exactly as if it called `std` directly;
//! * `io` (cargo feature `io`): the parked thread waits inside async-io's reactor, through
//!   `async_io::block_on` on a future that completes when the thread is unparked. A thread
//!   that gets the reactor's lock waits in `epoll` (or its platform's equivalent) and
//!   dispatches I/O readiness itself, so a socket becoming readable wakes its task on a
//!   thread that was idle anyway, with no hop through async-io's own thread. An unpark
//!   from elsewhere wakes the future, and async-io interrupts the reactor wait through its
//!   notifier. A timed park waits on an `async_io::Timer`, which the reactor fires with a
//!   precise timeout.
//!
//! One rule comes with the `io` parker: a task woken *by the parked thread itself*, while
//! it dispatches I/O inside the reactor, is pushed where that thread will look (its own
//! queue), and a push there unparks nobody, as the thread is assumed to be running. So the
//! executors call [`woke_locally`] after such a push: it unparks the calling thread if it is
//! parked in the reactor, and is an empty function with the plain parker.

#[cfg(all(feature = "io", not(loom)))]
mod io;
#[cfg(all(feature = "io", not(loom)))]
pub(crate) use io::{
    POLLS_IO, Unparker, current, park, park_outside_reactor, park_timeout, run_turns, same_thread,
    spawn_parkable, woke_locally,
};

#[cfg(not(all(feature = "io", not(loom))))]
mod plain;
#[cfg(not(all(feature = "io", not(loom))))]
pub(crate) use plain::{
    POLLS_IO, Unparker, current, park, park_outside_reactor, park_timeout, run_turns, same_thread,
    spawn_parkable, woke_locally,
};

mod slack;
pub(crate) use slack::precise_timeouts;

/// What one turn of a thread's loop asks of [`run_turns`].
pub(crate) enum Turn {
    /// Take another turn (with the `io` parker, after a look at the reactor).
    Again,
    /// Park the thread until it is unparked (or the timeout has passed), then take another
    /// turn.
    Park(Option<std::time::Duration>),
    /// Leave the loop.
    Exit,
}

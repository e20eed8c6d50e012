//! The plain parker: `std::thread::park` (loom's in the models) and the thread's handle.

use super::Turn;
use crate::loom::{JoinHandle, Thread, spawn_thread};
pub(crate) use crate::loom::{current, park, park_timeout};

/// Wakes one parked thread: its `Thread` handle.
pub(crate) type Unparker = Thread;

/// Starts a named thread and returns its unparker with its join handle.
pub(crate) fn spawn_parkable<F>(name: String, f: F) -> std::io::Result<(JoinHandle<()>, Unparker)>
where
    F: FnOnce() + Send + 'static,
{
    let handle = spawn_thread(name, f)?;
    let unparker = handle.thread().clone();
    Ok((handle, unparker))
}

/// `true` if the two unparkers wake the same thread.
pub(crate) fn same_thread(a: &Unparker, b: &Unparker) -> bool {
    a.id() == b.id()
}

/// Nothing to do: a thread parked in `std::thread::park` runs no task code.
#[inline(always)]
pub(crate) fn woke_locally() {}

/// No reactor: a busy loop never needs to end its turn for one.
pub(crate) const POLLS_IO: bool = false;

/// Runs `turn` until it says `Exit`, parking the thread when it says so.
#[inline]
pub(crate) fn run_turns(mut turn: impl FnMut() -> Turn) {
    loop {
        match turn() {
            Turn::Again => {}
            Turn::Park(None) => park(),
            Turn::Park(Some(timeout)) => park_timeout(timeout),
            Turn::Exit => return,
        }
    }
}

/// `park`, or `park_timeout` with a timeout.
pub(crate) fn park_outside_reactor(timeout: Option<std::time::Duration>) {
    match timeout {
        Some(timeout) => park_timeout(timeout),
        None => park(),
    }
}

//! Precise timeouts for a thread whose waits end at timer deadlines.
//!
//! Linux lets every timed wait of a thread (futex, `poll`, `nanosleep`) end up to its
//! *timer slack* late, 50 µs by default, so that wake-ups can be batched. The pool's timer
//! thread waits on a channel with the next deadline as its timeout, and that slack was
//! most of a `sleep`'s lateness. The timer thread wakes only at deadlines and when a nearer
//! one is registered, so it asks for the smallest slack: it costs no CPU while idle.

/// Sets the calling thread's timer slack to its minimum (Linux); does nothing elsewhere
/// (and under Miri, which cannot call `prctl`).
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
pub(crate) fn precise_timeouts() {
    use std::ffi::{c_int, c_ulong};
    /// `PR_SET_TIMERSLACK` from `<linux/prctl.h>`.
    const PR_SET_TIMERSLACK: c_int = 29;
    unsafe extern "C" {
        // The C library's `prctl`, which std links already on Linux.
        fn prctl(option: c_int, ...) -> c_int;
    }
    // SAFETY: `PR_SET_TIMERSLACK` takes one `unsigned long` argument (the slack in
    // nanoseconds, here 1) and touches no memory of ours; it only changes a setting of the
    // calling thread. It cannot fail for a positive value; a failure would only leave the
    // default slack, so the result is ignored.
    unsafe {
        prctl(PR_SET_TIMERSLACK, 1 as c_ulong);
    }
}

/// Sets the calling thread's timer slack to its minimum (Linux); does nothing elsewhere
/// (and under Miri, which cannot call `prctl`).
#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
pub(crate) fn precise_timeouts() {}

//! What a failure is: [`TaskError`], [`GroupError`], [`CancelReason`], and the panic hook
//! that captures a panic's message, location and backtrace while a task is being polled.
//!
//! # Why a panic hook
//!
//! `catch_unwind` hands back only the payload: the *where* (file, line, backtrace) is
//! known only inside the panic hook, at the moment of the panic, before unwinding starts.
//! So warden installs one hook, once per process, chained in front of whatever hook was
//! there before:
//!
//! * while a task's `poll` (or its destructor, during cancellation) runs on this thread, the
//!   hook records message, [`Location`] and, as configured by [`Backtraces`], a
//!   [`Backtrace`] into a thread-local slot, and prints nothing: the failure will reach a
//!   handle, a group or the error hook instead, and printing it here would report it twice;
//! * every other panic goes to the previous hook unchanged.
//!
//! The harness takes the record after `catch_unwind` returns and builds a [`TaskError`]
//! from it. Backtraces are captured unresolved; symbols are resolved only when one is
//! displayed (`{:#}`), which keeps a panicking task cheap.
//!
//! # Files
//!
//! * `task_error.rs`: [`TaskError`], one task's failure (or cancellation), and how it prints;
//! * `panic_capture.rs`: the panic hook and `catch_panics`, which run task code;
//! * `group_error.rs`: [`GroupError`], every failure of a group.

mod group_error;
mod panic_capture;
mod task_error;

pub use group_error::GroupError;
pub(crate) use panic_capture::{
    catch_panics, drop_logged, drop_payload, install_panic_hook, payload_message, rearm_capture,
    wake_guarded,
};
pub(crate) use task_error::SiblingFailed;
pub use task_error::TaskError;

use std::error::Error;
use std::fmt;

pub use crate::task::Location;
use crate::task::TaskId;

/// A boxed error that can cross threads: what a group task's `Err` is turned into.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// When to capture a backtrace for a panicking task. Set with
/// [`Builder::backtraces`](crate::Builder::backtraces).
///
/// Capturing costs a stack walk at the moment of the panic (symbols are resolved only when
/// the backtrace is displayed), so a program that panics on purpose very often may want
/// [`Backtraces::Off`]: in `docs/benchmarks.md`'s `panic_storm` (10 000 tasks, every tenth
/// panicking) the walk is most of the cost, about twice the time of `Off`. Tasks that do
/// not panic pay nothing for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backtraces {
    /// Never capture.
    Off,
    /// Capture when `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` ask for it, as `std` does.
    Env,
    /// Always capture (the default): a failure report without its trace is the problem the
    /// asyncio guide warns about ("bubbling exceptions lose their tracebacks").
    #[default]
    Always,
}

/// Why a task was cancelled.
///
/// # Examples
///
/// ```
/// use warden::CancelReason;
///
/// let ex = warden::LocalExecutor::new();
/// let handle = ex.spawn(std::future::pending::<()>());
/// handle.cancel_with("no longer needed");
/// let err = ex.block_on(handle).unwrap_err();
/// assert_eq!(
///     err.cancel_reason(),
///     Some(&CancelReason::Explicit(Some("no longer needed".into())))
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelReason {
    /// `cancel()` (`None`) or `cancel_with(msg)` (`Some(msg)`) on a handle or a group.
    Explicit(Option<String>),
    /// Another member of the same group failed first; this is its id.
    SiblingFailed(TaskId),
    /// The group's timeout or deadline passed.
    Deadline,
    /// An enclosing group was cancelled.
    ParentCancelled,
    /// The group was dropped without `join`.
    GroupDropped,
    /// The executor shut down (explicitly, by being dropped, or by
    /// [`UnhandledPolicy::Shutdown`](crate::UnhandledPolicy::Shutdown)).
    Shutdown,
    /// Its [`Supervisor`](crate::Supervisor) cancelled it to restart it together with a
    /// sibling that failed ([`Strategy::OneForAll`](crate::Strategy::OneForAll) and
    /// [`Strategy::RestForOne`](crate::Strategy::RestForOne)).
    Restart,
    /// Nothing could ever wake or cancel it: it returned `Pending`, every waker for it was
    /// dropped, and it had no handle and no group. warden freed it at that moment and
    /// reported it to [`Builder::on_stall`](crate::Builder::on_stall) as
    /// [`StallKind::LostWaker`](crate::StallKind::LostWaker).
    LostWaker,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Explicit(None) => f.write_str("cancelled explicitly"),
            CancelReason::Explicit(Some(msg)) => write!(f, "cancelled: {msg}"),
            CancelReason::SiblingFailed(id) => write!(f, "sibling task {id} failed"),
            CancelReason::Deadline => f.write_str("the group's deadline passed"),
            CancelReason::ParentCancelled => f.write_str("the parent group was cancelled"),
            CancelReason::GroupDropped => f.write_str("the group was dropped without join"),
            CancelReason::Shutdown => f.write_str("the executor shut down"),
            CancelReason::Restart => f.write_str("its supervisor restarts it with a sibling"),
            CancelReason::LostWaker => {
                f.write_str("its last waker was dropped: nothing could wake it again")
            }
        }
    }
}

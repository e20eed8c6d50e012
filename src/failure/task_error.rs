//! [`TaskError`]: what one task's failure or cancellation keeps, and how it prints.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::panic_capture::{drop_payload, payload_message, take_captured};
use super::{BoxError, CancelReason, Location};
use crate::task::TaskInfo;

/// Why a task did not produce its value: it panicked, its body returned `Err` (group tasks),
/// or it was cancelled.
///
/// A `TaskError` keeps everything a person needs to find the cause: the task's
/// [`TaskInfo`] (id, name, spawn site, parent, group), and for a panic its message,
/// [`Location`] and [`Backtrace`]. It is cheap to clone (one shared allocation), `Send +
/// Sync + 'static`, and implements [`std::error::Error`], so it travels with `?`.
///
/// `Display` is one line; the alternate form `{:#}` adds the backtrace (for a panic) or
/// the error's `source()` chain (for an `Err`).
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let handle = ex.spawn_named("fetch-user", async {
///     panic!("connection reset");
/// });
/// let err = ex.block_on(handle).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.panic_message(), Some("connection reset"));
///
/// // One line: who, where it was spawned, where it panicked, and why.
/// let expected = format!(
///     "task 'fetch-user' {} (spawned at {}) panicked at {}: connection reset",
///     err.task().id(),
///     err.task().spawned_at(),
///     err.location().unwrap(),
/// );
/// assert_eq!(err.to_string(), expected);
///
/// // The alternate form adds the backtrace.
/// assert!(format!("{err:#}").contains("stack backtrace:"));
/// ```
#[derive(Clone)]
pub struct TaskError {
    inner: Arc<Inner>,
}

struct Inner {
    task: TaskInfo,
    repr: Repr,
}

enum Repr {
    Panic {
        message: String,
        location: Option<Location>,
        backtrace: Option<Backtrace>,
        /// The original payload, for `resume_unwind`. Taken at most once; the `Mutex` makes
        /// the `Send`-only payload shareable between clones.
        payload: PayloadSlot,
    },
    Error(BoxError),
    Cancelled {
        reason: CancelReason,
        /// For [`CancelReason::SiblingFailed`]: the sibling's failure, to name it where the
        /// reason is printed, and as this error's `source()`.
        cause: Option<TaskError>,
    },
}

/// Holds a panic payload, and drops it safely: a payload whose own destructor panics is
/// caught (and its second payload forgotten), and during unwinding, where a second panic
/// would abort the process, the payload is forgotten instead of dropped.
struct PayloadSlot(Mutex<Option<Box<dyn Any + Send>>>);

impl Drop for PayloadSlot {
    fn drop(&mut self) {
        let payload = self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(payload) = payload {
            drop_payload(payload);
        }
    }
}

/// Drops a panic payload without letting its destructor's panic escape.
///
/// Almost every payload is a `&str` or `String`, dropped plainly. A payload whose destructor
/// panics is caught; that second panic's payload is dropped the same way, once more, and a
/// third is forgotten (a deliberate leak, to end the chain). During unwinding, where a
/// destructor's panic would abort the process, a payload of any other type is forgotten
/// instead.
impl TaskError {
    #[cold]
    pub(crate) fn from_panic(task: TaskInfo, payload: Box<dyn Any + Send>) -> TaskError {
        let message = payload_message(&*payload);
        // The record is this panic's only if the texts agree: a payload re-raised with
        // `resume_unwind` skips the panic hook, and the record (if any) is another panic's.
        // (`catch_panics` also drops a record whose panic the task caught and got over.)
        let captured = take_captured().filter(|c| c.message == message);
        let (location, backtrace) = match captured {
            Some(c) => (Some(c.location), c.backtrace),
            None => (None, None),
        };
        TaskError::new(
            task,
            Repr::Panic {
                message,
                location,
                backtrace,
                payload: PayloadSlot(Mutex::new(Some(payload))),
            },
        )
    }

    pub(crate) fn from_error(task: TaskInfo, error: BoxError) -> TaskError {
        TaskError::new(task, Repr::Error(error))
    }

    /// A cancellation caused by `cause` (the failure of a sibling in the task's group).
    pub(crate) fn cancelled_by(
        task: TaskInfo,
        reason: CancelReason,
        cause: Option<TaskError>,
    ) -> TaskError {
        TaskError::new(task, Repr::Cancelled { reason, cause })
    }

    fn new(task: TaskInfo, repr: Repr) -> TaskError {
        TaskError {
            inner: Arc::new(Inner { task, repr }),
        }
    }

    /// The task that failed: id, name, spawn site, parent and group.
    pub fn task(&self) -> &TaskInfo {
        &self.inner.task
    }

    /// `true` if the task panicked (in `poll`, or in its destructor during cancellation).
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.repr, Repr::Panic { .. })
    }

    /// `true` if the task's body returned `Err` (only group tasks can: see
    /// [`Outcome`](crate::Outcome)).
    pub fn is_error(&self) -> bool {
        matches!(self.inner.repr, Repr::Error(_))
    }

    /// `true` if the task was cancelled. Cancellation is not a failure: it never reaches
    /// the error hook.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.inner.repr, Repr::Cancelled { .. })
    }

    /// The panic's message (`&str` and `String` payloads; other payloads read
    /// `Box<dyn Any>`), or `None` if this is not a panic.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.inner.repr {
            Repr::Panic { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Where the panic happened, or `None` if this is not a panic or the location could not
    /// be captured (another panic hook replaced warden's).
    pub fn location(&self) -> Option<&Location> {
        match &self.inner.repr {
            Repr::Panic { location, .. } => location.as_ref(),
            _ => None,
        }
    }

    /// The backtrace captured at the panic, if [`Backtraces`](crate::Backtraces) allowed one.
    pub fn backtrace(&self) -> Option<&Backtrace> {
        match &self.inner.repr {
            Repr::Panic {
                backtrace: Some(bt),
                ..
            } if bt.status() == BacktraceStatus::Captured => Some(bt),
            _ => None,
        }
    }

    /// Why the task was cancelled, or `None` if it was not.
    pub fn cancel_reason(&self) -> Option<&CancelReason> {
        match &self.inner.repr {
            Repr::Cancelled { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The task's own error, if its body returned `Err(e)` and `e` is an `E`: the warden
    /// spelling of asyncio's `except E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    ///
    /// let ex = warden::LocalExecutor::new();
    /// let group = ex.group();
    /// let handle = group.spawn(async {
    ///     Err::<(), _>(io::Error::new(io::ErrorKind::NotFound, "no such user"))
    /// });
    /// let err = ex.block_on(handle).unwrap_err();
    /// let io_err = err.downcast_ref::<io::Error>().expect("an io::Error");
    /// assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
    /// # drop(group);
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        match &self.inner.repr {
            Repr::Error(err) => err.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// The original panic payload, to re-raise it with [`std::panic::resume_unwind`].
    ///
    /// The payload is kept once and shared by all clones of this error: the first call
    /// takes it. Later calls, and calls on errors and cancellations, return a `String`
    /// with the message (the panic message, or this error's one-line `Display`).
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match &self.inner.repr {
            Repr::Panic {
                payload, message, ..
            } => {
                let taken = payload.0.lock().unwrap_or_else(|e| e.into_inner()).take();
                taken.unwrap_or_else(|| Box::new(message.clone()))
            }
            _ => Box::new(self.to_string()),
        }
    }

    fn write_head(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = &self.inner.task;
        write!(f, "{} (spawned at {})", task, task.spawned_at())
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_head(f)?;
        self.write_ending(f)
    }
}

impl TaskError {
    /// How the task ended, after its head: ` panicked at ...: message`, ` failed: ...`,
    /// ` was cancelled: ...`. The alternate form adds the backtrace or the error's causes.
    fn write_ending(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.repr {
            Repr::Panic {
                message, location, ..
            } => {
                match location {
                    Some(loc) => write!(f, " panicked at {loc}: {message}")?,
                    None => write!(f, " panicked: {message}")?,
                }
                if f.alternate() {
                    match self.backtrace() {
                        Some(bt) => write_trimmed_backtrace(f, bt)?,
                        None => f.write_str("\n(no backtrace captured; see warden::Backtraces)")?,
                    }
                }
                Ok(())
            }
            Repr::Error(err) => {
                write!(f, " failed: {err}")?;
                if f.alternate() {
                    let mut source = err.source();
                    while let Some(cause) = source {
                        write!(f, "\ncaused by: {cause}")?;
                        source = cause.source();
                    }
                }
                Ok(())
            }
            Repr::Cancelled { reason, cause } => match (reason, cause) {
                (CancelReason::Explicit(Some(msg)), _) => write!(f, " was cancelled: {msg}"),
                (CancelReason::Explicit(None), _) => f.write_str(" was cancelled explicitly"),
                (CancelReason::SiblingFailed(_), Some(sibling)) => {
                    write!(f, " was cancelled: {}", SiblingFailed(sibling))
                }
                (reason, _) => write!(f, " was cancelled: {reason}"),
            },
        }
    }
}

/// Why a task was cancelled when a sibling failed, naming the sibling and its failure on
/// one line: `sibling task 'charge' #4 failed: panicked at src/pay.rs:3:5: declined`. For
/// a cancelled member's report and the trace's cancel event.
pub(crate) struct SiblingFailed<'a>(pub(crate) &'a TaskError);

impl fmt::Display for SiblingFailed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sibling {}{}", self.0.task(), OneLineEnding(self.0))
    }
}

/// A sibling's ending, on one line and phrased to follow its name: ` failed: panicked at
/// ...: message`, ` failed: <error>`.
struct OneLineEnding<'a>(&'a TaskError);

impl fmt::Display for OneLineEnding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.inner.repr {
            Repr::Panic {
                message,
                location: Some(loc),
                ..
            } => write!(f, " failed: panicked at {loc}: {message}"),
            Repr::Panic { message, .. } => write!(f, " failed: panicked: {message}"),
            Repr::Error(err) => write!(f, " failed: {err}"),
            Repr::Cancelled { reason, .. } => write!(f, " was cancelled: {reason}"),
        }
    }
}

/// The same report as `Display` (`{:#?}` as `{:#}`, with the backtrace), so that
/// `fn main() -> Result<(), TaskError>` and `.unwrap()` print it whole.
impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error for TaskError {
    /// The task's own error (group tasks that returned `Err`), or, for a task cancelled
    /// because a sibling failed, that sibling's failure.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.inner.repr {
            Repr::Error(err) => Some(&**err),
            Repr::Cancelled {
                cause: Some(sibling),
                ..
            } => Some(sibling),
            _ => None,
        }
    }
}

/// Writes the frames of `bt` that belong to the task: the panic machinery above the
/// `panic!` and warden's harness below the task's `poll` are elided, with a count, the way
/// `RUST_BACKTRACE=1` shortens std's own traces. The full trace stays available through
/// [`TaskError::backtrace`].
fn write_trimmed_backtrace(f: &mut fmt::Formatter<'_>, bt: &Backtrace) -> fmt::Result {
    let text = bt.to_string();
    // Split into frames: a frame starts with a line `   N: symbol`, followed by `at` lines.
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        let head = line.trim_start();
        let starts_frame = head
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match frames.last_mut() {
            Some(frame) if !starts_frame => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    // A frame is "machinery" if it belongs to std's panic path or to warden's hook. With
    // line tables only, symbols are short (`{closure#0}`), so the `at` lines count too.
    let machinery = |frame: &[&str]| {
        frame.iter().any(|line| {
            line.contains("core::panicking::")
                || line.contains("std::panicking::")
                || line.contains("rust_begin_unwind")
                || line.contains("/library/std/")
                || line.contains("/library/core/")
                || line.contains("/library/alloc/")
                || line.contains("warden::failure::")
                || line.contains("src/failure/")
        })
    };
    let harness = |frame: &[&str]| {
        frame.iter().any(|line| {
            line.contains("catch_unwind")
                || line.contains("warden::task::harness")
                || line.contains("src/task/harness.rs")
        })
    };
    let start = frames.iter().position(|fr| !machinery(fr)).unwrap_or(0);
    let end = frames[start..]
        .iter()
        .position(|fr| harness(fr))
        .map_or(frames.len(), |i| start + i);
    if start >= end {
        return write!(f, "\nstack backtrace:\n{bt}");
    }
    f.write_str("\nstack backtrace:")?;
    if start > 0 {
        write!(f, "\n      [{start} frames of the panic machinery elided]")?;
    }
    for frame in &frames[start..end] {
        for line in frame {
            write!(f, "\n{line}")?;
        }
    }
    if end < frames.len() {
        write!(
            f,
            "\n      [{} frames of warden's harness and below elided]",
            frames.len() - end
        )?;
    }
    Ok(())
}

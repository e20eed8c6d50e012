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

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Once};

use crate::task::{TaskId, TaskInfo};

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
        }
    }
}

/// Where a panic happened: an owned copy of [`std::panic::Location`].
///
/// (The panic hook only lends the location for the duration of the hook, so warden keeps
/// its own copy.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    file: Arc<str>,
    line: u32,
    column: u32,
}

impl Location {
    fn from_std(loc: &panic::Location<'_>) -> Location {
        Location {
            file: Arc::from(loc.file()),
            line: loc.line(),
            column: loc.column(),
        }
    }

    /// The source file, as `file!()` spells it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, starting at 1.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, starting at 1.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

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
    Cancelled(CancelReason),
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
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    fn attempt(payload: Box<dyn Any + Send>) -> Option<Box<dyn Any + Send>> {
        if payload.is::<&'static str>() || payload.is::<String>() {
            drop(payload);
            return None;
        }
        if std::thread::panicking() {
            std::mem::forget(payload);
            return None;
        }
        panic::catch_unwind(AssertUnwindSafe(move || drop(payload))).err()
    }
    if let Some(second) = attempt(payload) {
        if let Some(third) = attempt(second) {
            std::mem::forget(third);
        }
    }
}

impl TaskError {
    #[cold]
    pub(crate) fn from_panic(task: TaskInfo, payload: Box<dyn Any + Send>) -> TaskError {
        let message = payload_message(&*payload);
        // The record is this panic's only if the texts agree: a payload re-raised with
        // `resume_unwind` skips the panic hook, and the record (if any) is another panic's.
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

    pub(crate) fn cancelled(task: TaskInfo, reason: CancelReason) -> TaskError {
        TaskError::new(task, Repr::Cancelled(reason))
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
        matches!(self.inner.repr, Repr::Cancelled(_))
    }

    /// `true` for panics and errors, the outcomes that count as failures.
    pub fn is_failure(&self) -> bool {
        !self.is_cancelled()
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

    /// The backtrace captured at the panic, if [`Backtraces`] allowed one.
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
            Repr::Cancelled(reason) => Some(reason),
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
            Repr::Cancelled(reason) => write!(f, " was cancelled: {reason}"),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.inner.task.id();
        match &self.inner.repr {
            Repr::Panic {
                message, location, ..
            } => {
                let mut t = f.debug_tuple("TaskError::Panic");
                t.field(&id).field(message);
                if let Some(loc) = location {
                    t.field(&format_args!("{loc}"));
                }
                t.finish()
            }
            Repr::Error(err) => f
                .debug_tuple("TaskError::Error")
                .field(&id)
                .field(err)
                .finish(),
            Repr::Cancelled(reason) => f
                .debug_tuple("TaskError::Cancelled")
                .field(&id)
                .field(reason)
                .finish(),
        }
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.inner.repr {
            Repr::Error(err) => Some(&**err),
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
                || line.contains("src/failure.rs")
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

/// The text of a panic payload, as `std`'s hook would print it.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Panic capture.

/// What the hook recorded about the last panic on this thread inside [`catch_panics`].
struct Captured {
    message: String,
    location: Location,
    backtrace: Option<Backtrace>,
}

// These stay `std`'s under loom: the panic hook runs outside loom's control, where loom's
// thread-locals cannot be reached.
thread_local! {
    /// `Some` while task code runs inside [`catch_panics`] on this thread.
    static CAPTURING: Cell<Option<Capture>> = const { Cell::new(None) };
    /// The record of the last panic caught while capturing.
    static CAPTURED: Cell<Option<Box<Captured>>> = const { Cell::new(None) };
}

/// How the current [`catch_panics`] scope captures.
#[derive(Clone, Copy)]
struct Capture {
    mode: Backtraces,
    /// A panic was already recorded in this scope. A second one is most likely a panic
    /// during that panic's unwinding, on which Rust aborts the process: it is passed on to
    /// the previous hook as well, so the abort is not silent.
    recorded: bool,
}

/// Installs warden's panic hook, once per process, in front of the current hook.
#[inline]
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            match CAPTURING.try_with(Cell::get).ok().flatten() {
                Some(capture) => {
                    if capture.recorded {
                        previous(info);
                    }
                    let _ = CAPTURING.try_with(|c| {
                        c.set(Some(Capture {
                            recorded: true,
                            ..capture
                        }))
                    });
                    let mode = capture.mode;
                    let message = payload_message(info.payload());
                    let location =
                        info.location()
                            .map(Location::from_std)
                            .unwrap_or_else(|| Location {
                                file: Arc::from("<unknown>"),
                                line: 0,
                                column: 0,
                            });
                    let backtrace = match mode {
                        Backtraces::Off => None,
                        Backtraces::Env => Some(Backtrace::capture()),
                        Backtraces::Always => Some(Backtrace::force_capture()),
                    };
                    let record = Captured {
                        message,
                        location,
                        backtrace,
                    };
                    let _ = CAPTURED.try_with(|c| c.set(Some(Box::new(record))));
                }
                None => previous(info),
            }
        }));
    });
}

/// Forgets, in the current [`catch_panics`] scope, that a panic was recorded: the next
/// panic is a failure of its own, not a panic during an unwinding. For a finished future's
/// destructor, which runs in its poll's scope after the body may have caught a panic of
/// its own (with `catch_unwind`) and gone on to return.
#[inline]
pub(crate) fn rearm_capture() {
    let _ = CAPTURING.try_with(|c| {
        if let Some(capture) = c.get().filter(|capture| capture.recorded) {
            c.set(Some(Capture {
                recorded: false,
                ..capture
            }));
        }
    });
}

/// Runs task code `f`, catching a panic. While `f` runs, the panic hook records instead of
/// printing; the record is picked up by [`TaskError::from_panic`].
pub(crate) fn catch_panics<R>(
    mode: Backtraces,
    f: impl FnOnce() -> R,
) -> Result<R, Box<dyn Any + Send>> {
    struct Restore(Option<Capture>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CAPTURING.with(|c| c.set(self.0));
        }
    }
    let capture = Capture {
        mode,
        recorded: false,
    };
    let _restore = Restore(CAPTURING.with(|c| c.replace(Some(capture))));
    // A record left by a panic that someone else caught (task code calling `catch_unwind`)
    // is not cleared here, which would cost every poll a thread-local access: the next
    // panic's record replaces it, and `TaskError::from_panic` only accepts a record whose
    // message matches its payload.
    panic::catch_unwind(AssertUnwindSafe(f))
}

fn take_captured() -> Option<Captured> {
    CAPTURED.try_with(Cell::take).ok().flatten().map(|b| *b)
}

/// Wakes `waker`, catching a panic from it: a waker belongs to somebody else's code, and
/// its panic must not unwind into the executor that is finishing a task.
pub(crate) fn wake_guarded(waker: std::task::Waker) {
    if let Err(payload) = catch_panics(Backtraces::Off, move || waker.wake()) {
        log::error!(
            target: "warden",
            "a waker panicked when woken: {}",
            payload_message(&*payload)
        );
        drop_payload(payload);
    }
}

/// Drops `value`, catching a panic from its destructor. A caught panic is logged, since
/// there is nobody left to hand it to (used for outputs nobody will read).
pub(crate) fn drop_logged<V>(value: V, task: &TaskInfo, what: &str) {
    if let Err(payload) = catch_panics(Backtraces::Off, move || drop(value)) {
        let _ = take_captured();
        log::error!(
            target: "warden",
            "{task} (spawned at {}): the destructor of its {what} panicked: {}",
            task.spawned_at(),
            payload_message(&*payload)
        );
        drop_payload(payload);
    }
}

// ---------------------------------------------------------------------------------------
// GroupError.

/// Every failure of a [`TaskGroup`](crate::TaskGroup), returned by
/// [`TaskGroup::join`](crate::TaskGroup::join): the warden spelling of asyncio's
/// `ExceptionGroup`.
///
/// It holds the failures in the order they happened, how many members were cancelled, and
/// why the group was cancelled, if it was. Its `Display` lists every failure, one per line;
/// `source()` is the first failure.
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let report = ex.block_on(async {
///     let group = warden::TaskGroup::new();
///     group.spawn_named("ok", async {}).detach();
///     group.spawn_named("bad", async { Err::<(), _>("boom") }).detach();
///     group.join().await
/// });
/// let err = report.unwrap_err();
/// assert_eq!(err.failures().len(), 1);
/// assert_eq!(err.first().unwrap().task().name(), Some("bad"));
/// ```
#[derive(Clone)]
pub struct GroupError {
    group: crate::task::GroupId,
    failures: Vec<TaskError>,
    cancelled: usize,
    reason: Option<CancelReason>,
}

impl GroupError {
    pub(crate) fn new(
        group: crate::task::GroupId,
        failures: Vec<TaskError>,
        cancelled: usize,
        reason: Option<CancelReason>,
    ) -> GroupError {
        GroupError {
            group,
            failures,
            cancelled,
            reason,
        }
    }

    /// The first failure, or `None` when the group only had cancellations (it was
    /// cancelled, or timed out, with no member failing).
    pub fn first(&self) -> Option<&TaskError> {
        self.failures.first()
    }

    /// Every failure, in the order they happened.
    pub fn failures(&self) -> &[TaskError] {
        &self.failures
    }

    /// How many members ended cancelled.
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }

    /// Why the group was cancelled, if it was.
    pub fn reason(&self) -> Option<&CancelReason> {
        self.reason.as_ref()
    }

    /// The group's id.
    pub fn group(&self) -> crate::task::GroupId {
        self.group
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len();
        write!(
            f,
            "{} failed: {} failure{}, {} cancelled",
            self.group,
            n,
            if n == 1 { "" } else { "s" },
            self.cancelled
        )?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        for (i, failure) in self.failures.iter().enumerate() {
            if f.alternate() {
                write!(f, "\n  {}. {:#}", i + 1, failure)?;
            } else {
                write!(f, "\n  {}. {}", i + 1, failure)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupError")
            .field("group", &self.group)
            .field("failures", &self.failures)
            .field("cancelled", &self.cancelled)
            .field("reason", &self.reason)
            .finish()
    }
}

impl Error for GroupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.failures.first().map(|e| e as &(dyn Error + 'static))
    }
}

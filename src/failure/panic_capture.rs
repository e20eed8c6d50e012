//! Panic capture: the panic hook that records a task's panic (message, location,
//! backtrace) and the `catch_panics` scope that task code runs in.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use super::{Backtraces, Location};
use crate::task::TaskInfo;

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
pub(super) struct Captured {
    pub(super) message: String,
    pub(super) location: Location,
    pub(super) backtrace: Option<Backtrace>,
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
                    let location = info
                        .location()
                        .map(Location::copied)
                        .unwrap_or_else(Location::unknown);
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
///
/// A record belongs to the unwind that the hook saw start. Task code may catch that unwind
/// itself (`catch_unwind`) and go on: the record then describes a panic that is over, and
/// must not be attached to a later payload re-raised with `resume_unwind` (which runs no
/// hook), even one with the same message. So when `f` returns normally after a panic was
/// recorded in this scope, the record is dropped here; a re-raised panic in a later poll
/// then has no location rather than a stale one. Within one poll, the record of a panic
/// the task caught stays until the poll ends: re-raising that same payload (the usual
/// reason to catch one) keeps its real location.
pub(crate) fn catch_panics<R>(
    mode: Backtraces,
    f: impl FnOnce() -> R,
) -> Result<R, Box<dyn Any + Send>> {
    let capture = Capture {
        mode,
        recorded: false,
    };
    let enclosing = CAPTURING.with(|c| c.replace(Some(capture)));
    // A record left behind by a panic that task code caught itself is not cleared before
    // `f` runs (that would cost every poll an access to `CAPTURED`): a new panic replaces
    // it, and a normal return clears it below.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // `catch_unwind` returns whatever `f` did, so this always runs: restore the enclosing
    // scope's capture, and learn in the same access whether this scope recorded a panic.
    let ours = CAPTURING.with(|c| c.replace(enclosing));
    if result.is_ok() && ours.is_some_and(|c| c.recorded) {
        drop(take_captured());
    }
    result
}

pub(super) fn take_captured() -> Option<Captured> {
    CAPTURED.try_with(Cell::take).ok().flatten().map(|b| *b)
}

/// Wakes `waker`, catching a panic from it: a waker belongs to somebody else's code, and
/// its panic must not unwind into the executor that is finishing a task.
pub(crate) fn wake_guarded(waker: std::task::Waker) {
    if let Err(payload) = catch_panics(Backtraces::Off, move || waker.wake()) {
        crate::report::error!(
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
        crate::report::error!(
            "{task} (spawned at {}): the destructor of its {what} panicked: {}",
            task.spawned_at(),
            payload_message(&*payload)
        );
        drop_payload(payload);
    }
}

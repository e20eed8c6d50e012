//! Thread-local context: which executor this thread is driving, and the guard that turns a
//! nested `block_on` into a clear panic instead of a deadlock. (Which task is being polled
//! is the task core's own business: `task/current.rs`.)

use std::cell::{Cell, RefCell};
use std::fmt;

use crate::handle::Handle;
pub(crate) use crate::task::current::{current_task, thread_token};

crate::loom::thread_local! {
    /// The executor whose tasks run on this thread: what `warden::spawn` targets.
    static EXECUTOR: RefCell<Option<Handle>> = RefCell::new(None);
    /// `true` while this thread drives an executor (`block_on`, a worker loop, `try_tick`).
    static DRIVING: Cell<bool> = Cell::new(false);
}

/// Re-entry: this thread already drives an executor.
#[derive(Debug)]
pub(crate) struct EnterError;

impl fmt::Display for EnterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an execution scope has already been entered")
    }
}

impl std::error::Error for EnterError {}

/// Restores the thread's previous context when dropped.
pub(crate) struct Entered {
    previous: Option<Handle>,
    was_driving: bool,
}

impl Drop for Entered {
    fn drop(&mut self) {
        replace_current(self.previous.take());
        let _ = DRIVING.try_with(|d| d.set(self.was_driving));
    }
}

fn try_enter(handle: Handle) -> Result<Entered, EnterError> {
    // `try_with` throughout: an executor may be driven or dropped from another
    // thread-local's destructor, after these thread-locals are gone. A panic there would
    // abort the process, so a thread whose context is gone simply runs without one.
    if DRIVING.try_with(Cell::get).unwrap_or(false) {
        return Err(EnterError);
    }
    let _ = DRIVING.try_with(|d| d.set(true));
    Ok(Entered {
        previous: replace_current(Some(handle)),
        was_driving: false,
    })
}

/// Makes `handle` this thread's current executor and returns the previous one (`None`, and
/// nothing set, once the thread-local is gone at thread exit).
fn replace_current(handle: Option<Handle>) -> Option<Handle> {
    EXECUTOR
        .try_with(|e| std::mem::replace(&mut *e.borrow_mut(), handle))
        .ok()
        .flatten()
}

/// Marks this thread as driving `handle`'s executor.
///
/// # Panics
///
/// If this thread already drives an executor: blocking there would deadlock it. The message
/// names `what` (`block_on`, `try_tick`, ...).
#[track_caller]
pub(crate) fn enter(handle: Handle, what: &str) -> Entered {
    match try_enter(handle) {
        Ok(entered) => entered,
        Err(err) => match current_task() {
            Some(task) => panic!(
                "warden: `{what}` was called from inside task {task} ({err}); blocking inside a \
                 task would deadlock its executor. Await the future instead, or spawn it and \
                 await its JoinHandle."
            ),
            None => panic!(
                "warden: `{what}` was called while this thread already drives a warden \
                 executor, inside another `block_on` ({err}); nested blocking would deadlock. \
                 Await the future instead."
            ),
        },
    }
}

/// Makes `handle` the current executor without claiming the thread (used while shutdown
/// drops futures, which may run on a thread that drives another executor).
pub(crate) fn set_current(handle: Handle) -> Entered {
    Entered {
        previous: replace_current(Some(handle)),
        was_driving: DRIVING.try_with(Cell::get).unwrap_or(false),
    }
}

/// The executor this thread drives, if any.
pub(crate) fn current() -> Option<Handle> {
    EXECUTOR.try_with(|e| e.borrow().clone()).ok().flatten()
}

/// Runs `f` with the current executor, borrowed (no reference count traffic), or panics
/// saying none is running.
#[track_caller]
pub(crate) fn with_current<R>(what: &str, f: impl FnOnce(&Handle) -> R) -> R {
    let mut f = Some(f);
    let result = EXECUTOR
        .try_with(|e| {
            e.borrow()
                .as_ref()
                .map(|h| (f.take().expect("called once"))(h))
        })
        .ok()
        .flatten();
    match result {
        Some(result) => result,
        None => no_executor(what, SPAWN_DIRECTLY),
    }
}

/// What a call that needs a current executor suggests when there is none.
const SPAWN_DIRECTLY: &str =
    "use an executor or Handle directly (`ex.spawn(..)`, `handle.spawn(..)`)";

#[cold]
#[track_caller]
fn no_executor(what: &str, instead: &str) -> ! {
    if EXECUTOR.try_with(|_| ()).is_err() {
        panic!(
            "warden: `{what}` was called while this thread is exiting, from a thread-local's \
             destructor, after warden's own thread-local context was destroyed, so no current \
             executor can be found: {instead}."
        );
    }
    panic!(
        "warden: `{what}` was called but no warden executor is running on this thread. \
         Call it from inside `block_on` or a task, or {instead}."
    )
}

/// The current executor, or a panic that says none is running.
#[track_caller]
pub(crate) fn expect_current(what: &str) -> Handle {
    expect_current_or(what, SPAWN_DIRECTLY)
}

/// The current executor, or a panic that says none is running and suggests `instead`
/// (a phrase: "use ...").
#[track_caller]
pub(crate) fn expect_current_or(what: &str, instead: &str) -> Handle {
    match current() {
        Some(handle) => handle,
        None => no_executor(what, instead),
    }
}

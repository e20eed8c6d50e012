//! What the current thread is doing, at the level of tasks: which task it is polling, and
//! a number that names the thread. Nothing here knows which executor runs the task; the
//! executor-level context (which executor this thread drives) is the executor's own.

use std::cell::Cell;

use super::TaskId;

crate::loom::thread_local! {
    /// The task being polled on this thread, if any.
    static TASK: Cell<Option<TaskId>> = Cell::new(None);
}

/// Sets the task being polled, for the duration of the guard.
pub(crate) struct TaskGuard(Option<TaskId>);

impl Drop for TaskGuard {
    #[inline]
    fn drop(&mut self) {
        let _ = TASK.try_with(|t| t.set(self.0));
    }
}

#[inline]
pub(crate) fn enter_task(id: TaskId) -> TaskGuard {
    TaskGuard(TASK.try_with(|t| t.replace(Some(id))).ok().flatten())
}

/// The task being polled on this thread, if any.
#[inline]
pub(crate) fn current_task() -> Option<TaskId> {
    TASK.try_with(Cell::get).ok().flatten()
}

crate::loom::thread_local! {
    /// This thread's token (0 until first asked for); see [`thread_token`].
    static THREAD_TOKEN: Cell<u64> = Cell::new(0);
}

/// A number that names this thread for the life of the process: never 0, never reused
/// (unlike a thread-local's address, which a later thread may get). Cheaper than
/// `thread::current().id()`, which clones the thread's handle.
///
/// Returns 0 while this thread's thread-locals are being destroyed, which matches no
/// thread: callers must treat 0 as "some other thread".
#[inline]
pub(crate) fn thread_token() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    THREAD_TOKEN
        .try_with(|token| match token.get() {
            0 => {
                let fresh = NEXT.fetch_add(1, Relaxed);
                token.set(fresh);
                fresh
            }
            known => known,
        })
        .unwrap_or(0)
}

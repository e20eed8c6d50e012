//! [`JoinHandle`]: an owned permission to await a task's result, or to cancel it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::harness::Task;
use super::state::Snapshot;
use super::{RawTask, TaskId, TaskInfo, TaskRef};
use crate::failure::{CancelReason, TaskError};

/// The typed view of a task that a handle needs.
pub(super) trait JoinCell<T>: RawTask {
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>>;
    fn release_handle(&self) -> Snapshot;
}

impl<F, T> JoinCell<T> for Task<F, T>
where
    F: Future + 'static,
    T: 'static,
{
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        Task::poll_result(self, cx)
    }

    fn release_handle(&self) -> Snapshot {
        Task::release_handle(self)
    }
}

/// An owned permission to await a task's result, or to cancel it.
///
/// Awaiting a `JoinHandle<T>` yields `Ok(T)` when the task finished with a value, and
/// `Err(TaskError)` when it panicked, failed (group tasks) or was cancelled. Reading a
/// failure through the handle counts as observing it: the executor's error hook will not
/// see it.
///
/// Dropping the handle *detaches* the task: it keeps running, its value is dropped when it
/// finishes, and a failure nobody else observes goes to the error hook (exactly once).
/// [`detach`](JoinHandle::detach) says the same thing out loud.
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let handle = ex.spawn(async { 6 * 7 });
/// assert_eq!(ex.block_on(handle).unwrap(), 42);
/// ```
///
/// # Cancel safety
///
/// Dropping a `JoinHandle` future midway (for example in a `select!`) loses nothing: the
/// task runs on, and its result goes where a detached task's goes.
///
/// # Panics
///
/// Polling a handle again after it returned `Ready` panics.
#[must_use = "dropping a JoinHandle detaches the task: it runs on, and a failure goes to the \
              executor's error hook; call .detach() to say so, or .await the handle"]
pub struct JoinHandle<T> {
    task: Arc<dyn JoinCell<T>>,
    /// `JoinHandle<T>` is `Send` only if `T` is: the handle may drop the task's output.
    _output: PhantomData<T>,
}

impl<T> JoinHandle<T> {
    pub(super) fn new<F: Future + 'static>(task: Arc<Task<F, T>>) -> JoinHandle<T>
    where
        T: 'static,
    {
        JoinHandle {
            task,
            _output: PhantomData,
        }
    }

    /// Everything known about the task: id, name, spawn site, parent and group.
    pub fn info(&self) -> &TaskInfo {
        &self.task.header().info
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.info().id()
    }

    /// The task's name, if it was spawned with `spawn_named`.
    pub fn name(&self) -> Option<&str> {
        self.info().name()
    }

    /// `true` once the task has finished (with a value, a failure, or cancelled): awaiting
    /// the handle will not wait.
    pub fn is_finished(&self) -> bool {
        self.task.header().state.load().is_complete()
    }

    /// Cancels the task with [`CancelReason::Explicit(None)`](CancelReason::Explicit).
    ///
    /// The executor checks the flag before every poll: the task's future is never polled
    /// again once this returns, and it is woken so that its future is dropped promptly
    /// (destructors run) even if it was waiting for something that never comes. Awaiting
    /// the handle then yields a cancelled [`TaskError`]. Cancelling a finished task does
    /// nothing; the first reason given wins.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// handle.cancel();
    /// let err = ex.block_on(handle).unwrap_err();
    /// assert!(err.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.cancel_for(CancelReason::Explicit(None));
    }

    /// Cancels the task with [`CancelReason::Explicit(Some(reason))`](CancelReason::Explicit).
    /// See [`cancel`](JoinHandle::cancel).
    pub fn cancel_with(&self, reason: impl Into<String>) {
        self.cancel_for(CancelReason::Explicit(Some(reason.into())));
    }

    pub(crate) fn cancel_for(&self, reason: CancelReason) {
        let task: TaskRef = self.task.clone();
        super::cancel(&task, reason);
    }

    /// Lets the task run on without a handle. Its value is dropped when it finishes; a
    /// failure nobody else observes goes to the executor's error hook. Same as dropping the
    /// handle.
    pub fn detach(self) {
        drop(self);
    }
}

// The handle never pins anything: the output is moved out of the task's block, not
// borrowed, so the handle can be `Unpin` whatever `T` is (as tokio's is).
impl<T> Unpin for JoinHandle<T> {}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.poll_result(cx)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let after = self.task.release_handle();
        if after.is_unreachable() {
            // The handle was the last thing that could cancel a task nothing can wake.
            let task: TaskRef = self.task.clone();
            super::lost::unreachable(task, after);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.task.header();
        f.debug_struct("JoinHandle")
            .field("id", &header.info.id())
            .field("name", &header.info.name())
            .field("state", &header.state.load())
            .finish()
    }
}

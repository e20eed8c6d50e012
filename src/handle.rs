//! [`Handle`]: a cheap, thread-safe reference to an executor, for spawning from anywhere.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_task::{FutureObj, Spawn, SpawnError};

use crate::local::LocalShared;
use crate::pool::PoolShared;
use crate::task::{self, JoinHandle, Schedule, SpawnSpec};

/// A reference to an executor that can be cloned and sent to any thread, to spawn tasks
/// onto it. Get one with [`LocalExecutor::handle`](crate::LocalExecutor::handle) or
/// [`Executor::handle`](crate::Executor::handle).
///
/// A handle does not keep the executor running: once the executor is shut down (or
/// dropped), tasks spawned through the handle resolve at once to
/// [`CancelReason::Shutdown`](crate::CancelReason::Shutdown).
///
/// The inherent `spawn` shadows `futures::task::SpawnExt::spawn`: it returns a
/// [`JoinHandle`]. The [`Spawn`] implementation is there for libraries that take any
/// spawner.
///
/// # Examples
///
/// ```
/// let ex = warden::Executor::new();
/// let handle = ex.handle();
/// let joined = std::thread::spawn(move || handle.spawn(async { 1 + 1 })).join().unwrap();
/// assert_eq!(ex.block_on(joined).unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) flavor: Flavor,
}

#[derive(Clone)]
pub(crate) enum Flavor {
    Local(Arc<LocalShared>),
    Pool(Arc<PoolShared>),
}

impl Handle {
    /// The executor, borrowed as a scheduler.
    pub(crate) fn schedule_ref(&self) -> &dyn Schedule {
        match &self.flavor {
            Flavor::Local(shared) => &**shared,
            Flavor::Pool(shared) => &**shared,
        }
    }

    pub(crate) fn scheduler(&self) -> Arc<dyn Schedule> {
        match &self.flavor {
            Flavor::Local(shared) => shared.clone(),
            Flavor::Pool(shared) => shared.clone(),
        }
    }

    /// Spawns a task onto the executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let handle = ex.handle().spawn(async { "hi" });
    /// assert_eq!(ex.block_on(handle).unwrap(), "hi");
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with(future, task::plain, SpawnSpec::new(None))
    }

    /// Spawns a named task onto the executor; the name appears in every failure report.
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<String>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with(future, task::plain, SpawnSpec::new(Some(name.into())))
    }

    /// Creates a [`TaskGroup`](crate::TaskGroup) whose members run on this executor.
    pub fn group(&self) -> crate::TaskGroup {
        crate::TaskGroup::on(self.scheduler(), false)
    }

    /// Creates a supervisor [`TaskGroup`](crate::TaskGroup) (a failure cancels nobody)
    /// whose members run on this executor.
    pub fn supervisor(&self) -> crate::TaskGroup {
        crate::TaskGroup::on(self.scheduler(), true)
    }

    pub(crate) fn spawn_with<F, T>(
        &self,
        future: F,
        finish: fn(F::Output) -> Result<T, crate::BoxError>,
        spec: SpawnSpec,
    ) -> JoinHandle<T>
    where
        F: Future + Send + 'static,
        T: Send + 'static,
    {
        task::spawn(future, finish, spec, self.scheduler())
    }

    /// Spawns a future that need not be `Send`.
    ///
    /// # Panics
    ///
    /// If this handle is not for a [`LocalExecutor`](crate::LocalExecutor) owned by the
    /// current thread.
    #[track_caller]
    pub(crate) fn spawn_local_with<F, T>(
        &self,
        future: F,
        finish: fn(F::Output) -> Result<T, crate::BoxError>,
        spec: SpawnSpec,
        what: &str,
    ) -> JoinHandle<T>
    where
        F: Future + 'static,
        T: 'static,
    {
        task::spawn_local(future, finish, spec, self.scheduler(), what)
    }

    pub(crate) fn timers(&self) -> &crate::time::Timers {
        match &self.flavor {
            Flavor::Local(shared) => &shared.timers,
            Flavor::Pool(shared) => &shared.timers,
        }
    }

    pub(crate) fn same_executor(&self, other: &Handle) -> bool {
        match (&self.flavor, &other.flavor) {
            (Flavor::Local(a), Flavor::Local(b)) => Arc::ptr_eq(a, b),
            (Flavor::Pool(a), Flavor::Pool(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Groups on the current executor. (The group module knows no executor: finding the
/// current one is done here, beside [`Handle::group`].)
impl crate::TaskGroup {
    /// Creates a group on the current executor (inside `block_on` or a task).
    ///
    /// # Panics
    ///
    /// If no warden executor is running on this thread; use
    /// [`LocalExecutor::group`](crate::LocalExecutor::group),
    /// [`Executor::group`](crate::Executor::group) or [`Handle::group`] from outside.
    // No `Default`: a default value that panics outside an executor would surprise.
    #[allow(clippy::new_without_default)]
    #[track_caller]
    pub fn new() -> crate::TaskGroup {
        crate::context::expect_current_or(
            "TaskGroup::new",
            "create the group from the executor or a Handle (`ex.group()`, `handle.group()`)",
        )
        .group()
    }

    /// Creates a supervisor group on the current executor: a failure cancels nobody, and
    /// `join` collects every failure.
    ///
    /// # Panics
    ///
    /// As for [`new`](crate::TaskGroup::new).
    #[track_caller]
    pub fn supervisor() -> crate::TaskGroup {
        crate::context::expect_current_or(
            "TaskGroup::supervisor",
            "create the group from the executor or a Handle (`ex.supervisor()`, \
             `handle.supervisor()`)",
        )
        .supervisor()
    }
}

impl Spawn for Handle {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        if self.scheduler().owner().is_closed() {
            return Err(SpawnError::shutdown());
        }
        self.spawn(future).detach();
        Ok(())
    }

    fn status(&self) -> Result<(), SpawnError> {
        if self.scheduler().owner().is_closed() {
            Err(SpawnError::shutdown())
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.flavor {
            Flavor::Local(_) => "LocalExecutor",
            Flavor::Pool(_) => "Executor",
        };
        f.debug_struct("Handle")
            .field("executor", &kind)
            .field("metrics", &self.scheduler().owner().metrics.snapshot())
            .finish()
    }
}

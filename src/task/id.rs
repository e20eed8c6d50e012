//! Task identity: [`TaskId`], [`GroupId`] and [`TaskInfo`].
//!
//! Every task gets a process-unique id when it is spawned, keeps its optional name, and
//! remembers where it was spawned (through `#[track_caller]` on every `spawn` function),
//! which task spawned it and which group it belongs to. A [`TaskError`](crate::TaskError)
//! carries a copy of this record, so a failure can always say *whose* failure it is.

use std::fmt;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A process-unique identifier of a task, displayed as `#42`.
///
/// Ids are handed out in spawn order, starting at 1, and are never reused.
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let a = ex.spawn(async {});
/// let b = ex.spawn(async {});
/// assert_ne!(a.id(), b.id());
/// assert!(a.id().to_string().starts_with('#'));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    #[inline]
    pub(crate) fn next() -> TaskId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        // Non-zero, so that `Option<TaskId>` (a task's parent) costs no extra word.
        TaskId(NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)).expect("task ids wrapped"))
    }

    /// The id for a number made by [`as_u64`](Self::as_u64); `None` for 0.
    pub(crate) fn from_u64(id: u64) -> Option<TaskId> {
        NonZeroU64::new(id).map(TaskId)
    }

    /// The id as a number, for logs and metrics keyed by integers.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

/// A process-unique identifier of a [`TaskGroup`](crate::TaskGroup), displayed as `group#7`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(NonZeroU64);

impl GroupId {
    pub(crate) fn next() -> GroupId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        GroupId(NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)).expect("group ids wrapped"))
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group#{}", self.0)
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({})", self.0)
    }
}

/// Who a task is: its id, name, spawn site, parent task and group.
///
/// Cloning is cheap (the name is shared). Every [`TaskError`](crate::TaskError) carries one,
/// reachable through [`TaskError::task`](crate::TaskError::task).
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let handle = ex.spawn_named("fetch-user", async { panic!("connection reset") });
/// let err = ex.block_on(handle).unwrap_err();
/// assert_eq!(err.task().name(), Some("fetch-user"));
/// assert_eq!(err.task().spawned_at().file(), file!());
/// assert_eq!(err.task().parent(), None); // spawned from outside any task
/// ```
#[derive(Clone)]
pub struct TaskInfo {
    id: TaskId,
    name: Option<Arc<str>>,
    spawned_at: &'static Location<'static>,
    parent: Option<TaskId>,
    group: Option<GroupId>,
}

impl TaskInfo {
    #[inline]
    pub(crate) fn new(
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
        parent: Option<TaskId>,
        group: Option<GroupId>,
    ) -> TaskInfo {
        TaskInfo {
            id: TaskId::next(),
            name,
            spawned_at,
            parent,
            group,
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The name given with `spawn_named`, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the task was spawned: the caller of `spawn`, `spawn_named`, `spawn_local` or a
    /// group's `spawn`.
    pub fn spawned_at(&self) -> super::Location {
        super::Location::from_static(self.spawned_at)
    }

    /// The task that was running when this one was spawned, if any.
    pub fn parent(&self) -> Option<TaskId> {
        self.parent
    }

    /// The group this task belongs to, if it was spawned through a [`TaskGroup`](crate::TaskGroup).
    pub fn group(&self) -> Option<GroupId> {
        self.group
    }
}

/// `task 'name' #42` or `task #42`.
impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "task '{}' {}", name, self.id),
            None => write!(f, "task {}", self.id),
        }
    }
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInfo")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("spawned_at", &format_args!("{}", self.spawned_at))
            .field("parent", &self.parent)
            .field("group", &self.group)
            .finish()
    }
}

//! [`TaskGroup`]: structured concurrency with first-class failure.
//!
//! A group is asyncio's "cancel the siblings when one fails" and "a top-level handler
//! around `gather`", done by the executor:
//!
//! * **Cancel flag.** A group has one flag (a `OnceLock<CancelReason>`: set once, read with
//!   one atomic load). The harness reads it before *every* poll of every member; a member
//!   whose group is cancelled is dropped instead of polled. Cancelling also wakes every
//!   unfinished member, so this happens at once, even for members waiting forever.
//! * **First failure.** A member's panic or `Err` sets the flag with
//!   [`CancelReason::SiblingFailed`] (unless the group is a supervisor); later failures are
//!   still collected.
//! * **Nesting.** A child group is cancelled with [`CancelReason::ParentCancelled`] when
//!   its parent is, and passes that on to its own children, so a member only ever checks
//!   its own group's flag.
//! * **Join.** [`TaskGroup::join`] waits for every member and reports every failure in a
//!   [`GroupError`]. It observes each failure (see `hook.rs`), so the error hook does not
//!   see them; a group dropped without `join` lets go of its failures, and those whose
//!   handles were not read either go to the hook, once.
//!
//! # Files
//!
//! * `mod.rs`: the group, its cancel, and how members report their end;
//! * `member_map.rs`: where a group keeps its members and counts them (an optimisation);
//! * `join.rs`: `join`, and the `GroupCanceller` a member can hold.

use crate::loom::{Arc, AtomicBool, Mutex, MutexGuard, OnceLock, Ordering, Weak};
use std::fmt;
use std::future::Future;
use std::task::Waker;
use std::time::{Duration, Instant};

use futures_task::ArcWake;

use crate::failure::{CancelReason, GroupError, TaskError};
use crate::hook::{FailureWatch, TaskExit};
use crate::outcome::{self, Outcome};
use crate::task::{self, GroupId, GroupLink, JoinHandle, Schedule, SpawnSpec, TaskId, TaskRef};

mod join;
mod member_map;

pub use join::{GroupCanceller, GroupJoin};
use member_map::{MemberCounts, MemberMap, into_wake_order, wake_order};

/// A set of tasks that succeed or fail together.
///
/// Members are spawned with [`spawn`](TaskGroup::spawn); their future's output is an
/// [`Outcome`] (`()` or a `Result`). The first failure cancels the others (a
/// [`supervisor`](TaskGroup::supervisor) group cancels nobody); [`join`](TaskGroup::join)
/// waits for every member and returns every failure. Dropping a group without joining it
/// cancels its unfinished members with [`CancelReason::GroupDropped`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::CancelReason;
///
/// let ex = warden::LocalExecutor::new();
/// let report = ex.block_on(async {
///     let group = warden::TaskGroup::new();
///     let slow = group.spawn_named("slow", async {
///         warden::sleep(Duration::from_secs(60)).await;
///     });
///     group.spawn_named("broken", async { Err::<(), _>("disk full") }).detach();
///     let slow = slow.await.unwrap_err();
///     assert!(matches!(slow.cancel_reason(), Some(CancelReason::SiblingFailed(_))));
///     group.join().await
/// });
/// let err = report.unwrap_err();
/// assert_eq!(err.failures().len(), 1);
/// assert_eq!(err.cancelled(), 1);
/// ```
#[must_use = "dropping a TaskGroup cancels its members; call .join().await"]
pub struct TaskGroup {
    inner: Arc<GroupInner>,
}

struct GroupInner {
    id: GroupId,
    /// The executor that runs the members (every member is spawned through it).
    scheduler: Arc<dyn Schedule>,
    supervisor: bool,
    /// Keeps the parent (and so the chain up to the root) alive while this group lives,
    /// so a cancel of any ancestor still reaches it after the groups in between were
    /// joined and dropped. Parents hold only `Weak`s to their children.
    _parent: Option<Arc<GroupInner>>,
    cancelled: OnceLock<CancelReason>,
    /// The first member failure, which cancels the others (not in a supervisor group).
    sibling_failure: OnceLock<TaskError>,
    /// Two counts in one word, so that a cancelled member's exit is one atomic operation
    /// on a line that every worker writes: the low 32 bits are the members registered and
    /// not yet exited (`join` is done at 0; more than 2^32 live members would need
    /// terabytes of task blocks), the high 32 the members that ended cancelled, for the
    /// [`GroupError`] (see [`MemberCounts`]).
    counts: MemberCounts,
    /// Set, under the lock, when `cancel` took the member map: from then on members are
    /// neither inserted nor removed, and a member that ends without failing does so with
    /// a few atomic operations; only the last one takes the lock, to wake `join` (see
    /// `member_exited`).
    released: AtomicBool,
    state: Mutex<GroupState>,
}

#[derive(Default)]
struct GroupState {
    /// Unfinished members, to wake them on cancel; taken (and left empty) by the cancel.
    members: MemberMap,
    /// Failures in order, each with its watch; emptied when the group is dropped.
    failures: Vec<(TaskError, Arc<FailureWatch>)>,
    children: Vec<Weak<GroupInner>>,
    join_waker: Option<Waker>,
    /// The `TaskGroup` is gone without `join`: failures are no longer kept.
    abandoned: bool,
    /// The deadline timer, removed when the group ends.
    deadline: Option<(Instant, u64)>,
}

impl GroupInner {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the flag (first reason wins), wakes every member, cancels child groups.
    fn cancel(&self, reason: CancelReason) {
        if self.cancelled.set(reason).is_err() {
            return;
        }
        // The map is taken under the lock and the members are woken after it, one by one
        // (so workers start on the first while the rest are still being woken). Exiting
        // members no longer touch the map.
        let (mut members, children) = {
            let mut state = self.lock();
            self.released.store(true, Ordering::Release);
            (std::mem::take(&mut state.members), state.children.clone())
        };
        // Every member was spawned through `self.scheduler`: it is their scheduler.
        let wake = |member: TaskRef| {
            if let Some(member) = crate::task::notify(member) {
                crate::task::submit(&*self.scheduler, member);
            }
        };
        // Who frees the members' blocks. On a `LocalExecutor`, the group's references move
        // into the run queue, and each block is freed as its member ends, while it is
        // still in cache. On a pool, the cancelling thread frees them, not the workers:
        // freeing many blocks that another thread allocated, two workers at once, slowed
        // the cancel-and-join down (measured in docs/performance.md, round two). Once
        // every member is woken, it drops its references to the members that have ended
        // by then, while the workers are still ending the rest; the group keeps the others
        // until the `TaskGroup` is dropped (after `join`), and that thread frees them.
        if self.scheduler.cancelling_thread_frees_blocks() {
            wake_order(&members).cloned().for_each(wake);
            members.retain(|_, member| !member.header().state.load().is_complete());
            let mut state = self.lock();
            if !state.abandoned {
                state.members = members;
            } else {
                // The `TaskGroup` is gone (dropped while this cancel ran on another
                // thread): nobody is left to free them later, so they go now.
                drop(state);
                drop(members);
            }
        } else {
            into_wake_order(members).for_each(wake);
        }
        for child in children.iter().filter_map(Weak::upgrade) {
            child.cancel(CancelReason::ParentCancelled);
        }
    }

    /// One member fewer; the last one wakes `join`. Called after the exit was recorded
    /// (the `Release` half publishes it to the `Acquire` load in `join`), and never under
    /// the lock.
    fn member_gone(&self, cancelled: bool) {
        if self.counts.exit(cancelled) {
            // `join` checks `live` and stores its waker under the lock, so taking the lock
            // here (after the decrement) finds the waker if `join` missed the zero.
            let waker = self.lock().join_waker.take();
            if let Some(waker) = waker {
                crate::failure::wake_guarded(waker);
            }
        }
    }

    /// A member ended without failing (completed or cancelled). Once the cancel has taken
    /// the map there is nothing to remove, and no lock; before, the entry goes, and is
    /// dropped outside the lock (it may be the last reference).
    fn ended_quietly(&self, id: TaskId, cancelled: bool) {
        if !self.released.load(Ordering::Acquire) {
            let removed = self.lock().members.remove(&id);
            drop(removed);
        }
        self.member_gone(cancelled);
    }

    /// `true` once every member has exited.
    fn is_done(&self) -> bool {
        self.counts.live() == 0
    }
}

impl GroupLink for GroupInner {
    fn id(&self) -> GroupId {
        self.id
    }

    fn register(&self, task: &TaskRef) {
        self.counts.register();
        let mut state = self.lock();
        // After the cancel took the map, a new member needs no entry: it checks the
        // group's flag before its first poll and ends cancelled.
        if !self.released.load(Ordering::Relaxed) {
            state.members.insert(task.header().info.id(), task.clone());
        }
    }

    fn cancel_reason(&self) -> Option<CancelReason> {
        self.cancelled.get().cloned()
    }

    fn sibling_failure(&self) -> Option<TaskError> {
        self.sibling_failure.get().cloned()
    }

    fn member_exited(&self, id: TaskId, exit: &TaskExit<'_>, watch: Option<&Arc<FailureWatch>>) {
        let (error, watch) = match (exit, watch) {
            (TaskExit::Failed(error), Some(watch)) => ((*error).clone(), watch.clone()),
            (TaskExit::Cancelled(_), _) => return self.ended_quietly(id, true),
            _ => return self.ended_quietly(id, false),
        };
        let cancels_siblings = !self.supervisor && self.sibling_failure.set(error.clone()).is_ok();
        let (removed, dropped_watch) = {
            let mut state = self.lock();
            let removed = state.members.remove(&id);
            let dropped_watch = if state.abandoned {
                Some(watch)
            } else {
                state.failures.push((error, watch));
                None
            };
            (removed, dropped_watch)
        };
        // Outside the lock: these may run user code (a hook, a waker).
        drop(removed);
        drop(dropped_watch);
        if cancels_siblings {
            self.cancel(CancelReason::SiblingFailed(id));
        }
        self.member_gone(false);
    }
}

/// A timer waker that cancels its group with `Deadline`.
struct DeadlineWaker(Weak<GroupInner>);

impl ArcWake for DeadlineWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        if let Some(group) = arc_self.0.upgrade() {
            group.cancel(CancelReason::Deadline);
        }
    }
}

impl TaskGroup {
    // `TaskGroup::new` and `TaskGroup::supervisor`, which find the executor this thread
    // runs, are defined beside `Handle::group` (handle.rs): which executor is current is
    // the executors' business, and a group knows only the scheduler it is given.

    /// A group whose members `scheduler` runs.
    pub(crate) fn on(scheduler: Arc<dyn Schedule>, supervisor: bool) -> TaskGroup {
        TaskGroup::with_parent(scheduler, supervisor, None)
    }

    fn with_parent(
        scheduler: Arc<dyn Schedule>,
        supervisor: bool,
        parent: Option<Arc<GroupInner>>,
    ) -> TaskGroup {
        TaskGroup {
            inner: Arc::new(GroupInner {
                id: GroupId::next(),
                scheduler,
                supervisor,
                _parent: parent,
                cancelled: OnceLock::new(),
                sibling_failure: OnceLock::new(),
                counts: MemberCounts::new(),
                released: AtomicBool::new(false),
                state: Mutex::new(GroupState::default()),
            }),
        }
    }

    /// The group's id, as recorded in each member's [`TaskInfo`](crate::TaskInfo).
    pub fn id(&self) -> GroupId {
        self.inner.id
    }

    fn spec(
        &self,
        name: Option<String>,
        location: &'static std::panic::Location<'static>,
    ) -> SpawnSpec {
        SpawnSpec {
            name: name.map(Arc::from),
            location,
            group: Some(self.inner.clone()),
            awaited_by_owner: false,
        }
    }

    /// Spawns a member. Its output is an [`Outcome`]: `()`, or a `Result` whose `Err` is a
    /// failure. If the group is already cancelled, the member is cancelled before its first
    /// poll.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<<F::Output as Outcome>::Value>
    where
        F: Future + Send + 'static,
        F::Output: Outcome,
        <F::Output as Outcome>::Value: Send + 'static,
    {
        let spec = self.spec(None, std::panic::Location::caller());
        let scheduler = self.inner.scheduler.clone();
        task::spawn(future, outcome::finish::<F::Output>, spec, scheduler)
    }

    /// Spawns a named member; see [`spawn`](TaskGroup::spawn).
    #[track_caller]
    pub fn spawn_named<F>(
        &self,
        name: impl Into<String>,
        future: F,
    ) -> JoinHandle<<F::Output as Outcome>::Value>
    where
        F: Future + Send + 'static,
        F::Output: Outcome,
        <F::Output as Outcome>::Value: Send + 'static,
    {
        let spec = self.spec(Some(name.into()), std::panic::Location::caller());
        let scheduler = self.inner.scheduler.clone();
        task::spawn(future, outcome::finish::<F::Output>, spec, scheduler)
    }

    /// Spawns a member whose future is not `Send`.
    ///
    /// # Panics
    ///
    /// If the group's executor is not a [`LocalExecutor`](crate::LocalExecutor) owned by
    /// this thread.
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<<F::Output as Outcome>::Value>
    where
        F: Future + 'static,
        F::Output: Outcome,
        <F::Output as Outcome>::Value: 'static,
    {
        let spec = self.spec(None, std::panic::Location::caller());
        let scheduler = self.inner.scheduler.clone();
        let what = "TaskGroup::spawn_local";
        task::spawn_local(future, outcome::finish::<F::Output>, spec, scheduler, what)
    }

    /// Spawns a named member whose future is not `Send`; see
    /// [`spawn_local`](TaskGroup::spawn_local).
    ///
    /// # Panics
    ///
    /// As for [`spawn_local`](TaskGroup::spawn_local).
    #[track_caller]
    pub fn spawn_local_named<F>(
        &self,
        name: impl Into<String>,
        future: F,
    ) -> JoinHandle<<F::Output as Outcome>::Value>
    where
        F: Future + 'static,
        F::Output: Outcome,
        <F::Output as Outcome>::Value: 'static,
    {
        let spec = self.spec(Some(name.into()), std::panic::Location::caller());
        let scheduler = self.inner.scheduler.clone();
        let what = "TaskGroup::spawn_local_named";
        task::spawn_local(future, outcome::finish::<F::Output>, spec, scheduler, what)
    }

    /// A handle that cancels this group and nothing else: `Clone + Send + Sync`, so a
    /// member can hold one and cancel its own group (the group itself is consumed by
    /// `join`, and a member cannot hold it).
    ///
    /// # Examples
    ///
    /// Cancel the whole batch only when the critical request fails:
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let report = ex.block_on(async {
    ///     let group = warden::TaskGroup::supervisor(); // failures alone cancel nobody
    ///     let canceller = group.canceller();
    ///     group.spawn_named("optional", async { Err::<(), _>("cache miss") }).detach();
    ///     group.spawn_named("critical", async move {
    ///         let reply: Result<u32, &str> = Err("payment refused");
    ///         if let Err(why) = reply {
    ///             canceller.cancel_with(format!("critical request failed: {why}"));
    ///         }
    ///     })
    ///     .detach();
    ///     group.spawn(std::future::pending::<()>()).detach();
    ///     group.join().await
    /// });
    /// let err = report.unwrap_err();
    /// assert_eq!(err.failures().len(), 1); // the optional one; the rest were cancelled
    /// assert_eq!(err.cancelled(), 1);
    /// assert_eq!(
    ///     err.reason().unwrap().to_string(),
    ///     "cancelled: critical request failed: payment refused"
    /// );
    /// ```
    pub fn canceller(&self) -> GroupCanceller {
        GroupCanceller {
            group: self.inner.clone(),
        }
    }

    /// A nested group on the same executor: cancelling this group cancels the child (and
    /// its children) with [`CancelReason::ParentCancelled`].
    pub fn child(&self) -> TaskGroup {
        let child = TaskGroup::with_parent(
            self.inner.scheduler.clone(),
            false,
            Some(self.inner.clone()),
        );
        self.inner
            .lock()
            .children
            .push(Arc::downgrade(&child.inner));
        if self.inner.cancelled.get().is_some() {
            child.inner.cancel(CancelReason::ParentCancelled);
        }
        child
    }

    /// Cancels the group with [`CancelReason::Deadline`] once `duration` has passed.
    pub fn with_timeout(self, duration: Duration) -> TaskGroup {
        let deadline = self.inner.scheduler.deadline_after(duration);
        self.with_deadline(deadline)
    }

    /// Cancels the group with [`CancelReason::Deadline`] at `deadline`.
    pub fn with_deadline(self, deadline: Instant) -> TaskGroup {
        let waker = futures_task::waker(Arc::new(DeadlineWaker(Arc::downgrade(&self.inner))));
        let key = self.inner.scheduler.add_timer(deadline, waker);
        let previous = self.inner.lock().deadline.replace(key);
        if let Some(previous) = previous {
            self.inner.scheduler.remove_timer(previous);
        }
        self
    }

    /// Cancels every unfinished member with [`CancelReason::Explicit(None)`](CancelReason::Explicit).
    pub fn cancel(&self) {
        self.inner.cancel(CancelReason::Explicit(None));
    }

    /// Cancels every unfinished member with `Explicit(Some(reason))`.
    pub fn cancel_with(&self, reason: impl Into<String>) {
        self.inner
            .cancel(CancelReason::Explicit(Some(reason.into())));
    }

    /// `true` once the group was cancelled, for any reason.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.get().is_some()
    }

    /// Waits for every member, then reports: `Ok(())` if every member succeeded, else a
    /// [`GroupError`] with every failure in order, how many were cancelled, and the group's
    /// cancel reason.
    ///
    /// Every failure is reported here, also those whose handles were awaited too; the error
    /// hook sees none of them.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future before it completes drops the group, which cancels the
    /// unfinished members with [`CancelReason::GroupDropped`].
    pub fn join(self) -> GroupJoin {
        GroupJoin { group: Some(self) }
    }

    fn finish(&self) -> Result<(), GroupError> {
        let (failures, cancelled, deadline) = {
            let mut state = self.inner.lock();
            (
                std::mem::take(&mut state.failures),
                self.inner.counts.cancelled(),
                state.deadline.take(),
            )
        };
        if let Some(key) = deadline {
            self.inner.scheduler.remove_timer(key);
        }
        let failures: Vec<TaskError> = failures
            .into_iter()
            .map(|(error, watch)| {
                watch.observe();
                error
            })
            .collect();
        if failures.is_empty() && cancelled == 0 {
            Ok(())
        } else {
            let reason = self.inner.cancelled.get().cloned();
            Err(GroupError::new(self.inner.id, failures, cancelled, reason))
        }
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        let (failures, deadline, unfinished) = {
            let mut state = self.inner.lock();
            state.abandoned = true;
            (
                std::mem::take(&mut state.failures),
                state.deadline.take(),
                !self.inner.is_done(),
            )
        };
        if unfinished {
            self.inner.cancel(CancelReason::GroupDropped);
        }
        // The references a pool's cancel kept (see `GroupInner::cancel`): freed here, by
        // the thread that joins or drops the group. Each member's header holds the group,
        // so these must not wait for the group itself to go.
        let kept = std::mem::take(&mut self.inner.lock().members);
        drop(kept);
        if let Some(key) = deadline {
            self.inner.scheduler.remove_timer(key);
        }
        // Unobserved failures whose handles are gone reach the hook here, once.
        drop(failures);
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TaskGroup");
        d.field("id", &self.inner.id)
            .field("supervisor", &self.inner.supervisor)
            .field("cancelled", &self.inner.cancelled.get());
        match self.inner.state.try_lock() {
            Ok(state) => d
                .field("members", &self.inner.counts.live())
                .field("failures", &state.failures.len()),
            Err(_) => d.field("state", &format_args!("<locked>")),
        };
        d.finish()
    }
}

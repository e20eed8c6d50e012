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

use crate::loom::{Arc, AtomicBool, AtomicU64, Mutex, MutexGuard, OnceLock, Ordering, Weak};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_task::ArcWake;

use crate::context;
use crate::failure::{CancelReason, GroupError, TaskError};
use crate::handle::Handle;
use crate::hook::{FailureWatch, TaskExit};
use crate::outcome::{self, Outcome};
use crate::task::{GroupId, GroupLink, JoinHandle, SpawnSpec, TaskId, TaskRef};

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
    handle: Handle,
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

/// A group's live and cancelled member counts, in one atomic word (see
/// `GroupInner::counts`).
struct MemberCounts(AtomicU64);

/// The live count's bits.
const LIVE: u64 = u32::MAX as u64;
/// One cancelled member, in the cancelled count's bits.
const ONE_CANCELLED: u64 = 1 << 32;

impl MemberCounts {
    fn new() -> MemberCounts {
        MemberCounts(AtomicU64::new(0))
    }

    /// One more live member.
    fn register(&self) {
        let before = self.0.fetch_add(1, Ordering::Relaxed);
        debug_assert!(before & LIVE < LIVE, "2^32 live members in one group");
    }

    /// One live member fewer, and one more cancelled if it was: adding `ONE_CANCELLED - 1`
    /// to a word whose live count is at least 1 takes 1 from it and carries 1 into the
    /// cancelled count, in one operation. Returns `true` for the last live member. The
    /// `Release` half publishes the exit (recorded before) to `live`'s `Acquire` load.
    fn exit(&self, cancelled: bool) -> bool {
        let before = if cancelled {
            self.0.fetch_add(ONE_CANCELLED - 1, Ordering::AcqRel)
        } else {
            self.0.fetch_sub(1, Ordering::AcqRel)
        };
        debug_assert!(before & LIVE > 0, "a group member exited twice");
        before & LIVE == 1
    }

    /// Members registered and not yet exited.
    fn live(&self) -> u64 {
        self.0.load(Ordering::Acquire) & LIVE
    }

    /// Members that ended cancelled (counted modulo 2^32).
    fn cancelled(&self) -> usize {
        (self.0.load(Ordering::Relaxed) >> 32) as usize
    }
}

/// A group's unfinished members, by task id.
type MemberMap = HashMap<TaskId, TaskRef, BuildHasherDefault<IdHasher>>;

/// The members in the order a cancel wakes them: the map's own, which is close to spawn
/// order (see [`IdHasher`]), except under loom, where it is exactly spawn order. (The
/// map's order follows the ids, which differ from one loom execution to the next, and a
/// model must replay the same steps.)
fn wake_order(members: &MemberMap) -> impl Iterator<Item = &TaskRef> {
    #[cfg(not(all(loom, test)))]
    return members.values();
    #[cfg(all(loom, test))]
    {
        let mut sorted: Vec<&TaskRef> = members.values().collect();
        sorted.sort_by_key(|member| member.header().info.id());
        sorted.into_iter()
    }
}

/// As [`wake_order`], taking the references.
fn into_wake_order(members: MemberMap) -> impl Iterator<Item = TaskRef> {
    #[cfg(not(all(loom, test)))]
    return members.into_values();
    #[cfg(all(loom, test))]
    {
        let mut sorted: Vec<TaskRef> = members.into_values().collect();
        sorted.sort_by_key(|member| member.header().info.id());
        sorted.into_iter()
    }
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
        // Every member was spawned through `self.handle`, so that is their scheduler.
        let scheduler = self.handle.schedule_ref();
        let wake = |member: TaskRef| {
            if let Some(member) = crate::task::notify(member) {
                member.header().trace_wake();
                scheduler.schedule(member);
            }
        };
        // Who frees the members' blocks. On a `LocalExecutor`, the group's references move
        // into the run queue, and each block is freed as its member ends, while it is
        // still in cache. On a pool, the cancelling thread frees them, not the workers:
        // freeing 10 000 blocks that another thread allocated, two workers at once, made
        // the cancel-and-join 1.5 times slower (see docs/performance.md, round two). Once
        // every member is woken, it drops its references to the members that have ended
        // by then, while the workers are still ending the rest; the group keeps the others
        // until the `TaskGroup` is dropped (after `join`), and that thread frees them.
        if self.handle.is_multi_threaded() {
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

/// Hashes a [`TaskId`] cheaply (no SipHash on every spawn and exit), and so that the
/// member map keeps its members roughly in spawn order.
///
/// Order matters for a cancel, which wakes the members in the map's order: their task
/// blocks were allocated one after another as they were spawned, so walking them in spawn
/// order lets the CPU prefetch the next block, while a scattered order costs a cache miss
/// per member, on the cancelling thread and again on the worker that drops the future
/// (`docs/performance.md`, round three). The table places an entry by the hash's low bits
/// and tells entries apart within a probe by its top 7, so:
///
/// * the low bits are the id plus an offset that is the same for each run of 65 536
///   consecutive ids: within a run, consecutive ids fill consecutive buckets, in order
///   (members spawned among other tasks leave gaps, but keep their order). Ids that wrap
///   around the table onto one bucket must be a multiple of its size apart *and* in one
///   run, so at most 65 536 / capacity of them meet there; the runs land at scattered
///   places. (A plain multiplication piles ids 256 apart onto a few buckets: its low bits
///   depend only on the id's low bits.)
/// * the top 7 bits come from the whole id multiplied, so that neighbours differ there.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing's multiplier: odd, with well-mixed high bits.
        const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
        const TAG: u64 = !0 << 57;
        // The run's offset: the product's high half, which depends on every bit of the run
        // number (its low half does not, for run numbers with trailing zeros).
        let offset = (n >> RUN_BITS).wrapping_mul(MUL).rotate_left(32);
        let placed = n.wrapping_add(offset);
        self.0 = (placed & !TAG) | (n.wrapping_mul(MUL) & TAG);
    }
}

/// Runs of `1 << RUN_BITS` consecutive ids stay together in a member map (see [`IdHasher`]).
const RUN_BITS: u32 = 16;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{BuildHasherDefault, HashMap, IdHasher};
    use std::hash::BuildHasher;

    fn hash(id: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(id)
    }

    /// The longest run of ids that the map's iteration visits in increasing order (not
    /// necessarily next to each other): the members a cancel reaches in spawn order.
    fn longest_increasing(ids: impl IntoIterator<Item = u64>) -> usize {
        let map: HashMap<u64, (), BuildHasherDefault<IdHasher>> =
            ids.into_iter().map(|id| (id, ())).collect();
        // Patience sorting: `tails[k]` is the smallest last id of an increasing run of
        // length k + 1 seen so far.
        let mut tails: Vec<u64> = Vec::new();
        for &id in map.keys() {
            let at = tails.partition_point(|&tail| tail < id);
            if at == tails.len() {
                tails.push(id);
            } else {
                tails[at] = id;
            }
        }
        tails.len()
    }

    #[test]
    fn a_member_map_iterates_mostly_in_spawn_order() {
        // Consecutive ids fill consecutive buckets; where they wrap around the table, or
        // cross into the next run (whose buckets may overlap the first's), two increasing
        // sequences interleave, so at least half of the members are in order. A hash that
        // scatters ids (a plain multiplication) keeps about 2 * sqrt(n) of them in order.
        for start in [1, 60_000, 1 << 40] {
            let found = longest_increasing(start..start + 10_000);
            assert!(
                found >= 5_000,
                "{found} of 10 000 ids from {start} in order"
            );
        }
        // Members spawned among other tasks (every 3rd id).
        let found = longest_increasing((0..10_000).map(|i| 1 + 3 * i));
        assert!(found >= 5_000, "{found} of 10 000 ids, stride 3, in order");
    }

    #[test]
    fn strided_ids_do_not_pile_onto_one_bucket() {
        // With the id itself as the position, ids 16 384 apart would all share a bucket
        // of a 16 384-bucket table.
        for stride in [2, 16, 256, 1_024, 16_384] {
            let mut per_bucket = vec![0u32; 1 << 14];
            for i in 0..10_000u64 {
                per_bucket[(hash(1 + i * stride) & ((1 << 14) - 1)) as usize] += 1;
            }
            let worst = per_bucket.iter().max().copied().unwrap_or(0);
            assert!(worst <= 16, "stride {stride}: {worst} ids in one bucket");
        }
    }

    #[test]
    fn neighbours_differ_in_the_tag_bits() {
        let tags: std::collections::HashSet<u64> = (1..=64).map(|id| hash(id) >> 57).collect();
        assert!(
            tags.len() >= 32,
            "only {} distinct tags for 64 ids",
            tags.len()
        );
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
    pub fn new() -> TaskGroup {
        TaskGroup::on(
            context::expect_current_or(
                "TaskGroup::new",
                "create the group from the executor or a Handle (`ex.group()`, `handle.group()`)",
            ),
            false,
        )
    }

    /// Creates a supervisor group on the current executor: a failure cancels nobody, and
    /// `join` collects every failure.
    ///
    /// # Panics
    ///
    /// As for [`new`](TaskGroup::new).
    #[track_caller]
    pub fn supervisor() -> TaskGroup {
        TaskGroup::on(
            context::expect_current_or(
                "TaskGroup::supervisor",
                "create the group from the executor or a Handle (`ex.supervisor()`, \
                 `handle.supervisor()`)",
            ),
            true,
        )
    }

    pub(crate) fn on(handle: Handle, supervisor: bool) -> TaskGroup {
        TaskGroup::with_parent(handle, supervisor, None)
    }

    fn with_parent(handle: Handle, supervisor: bool, parent: Option<Arc<GroupInner>>) -> TaskGroup {
        TaskGroup {
            inner: Arc::new(GroupInner {
                id: GroupId::next(),
                handle,
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
        self.inner
            .handle
            .spawn_with(future, outcome::finish::<F::Output>, spec)
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
        self.inner
            .handle
            .spawn_with(future, outcome::finish::<F::Output>, spec)
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
        self.inner.handle.spawn_local_with(
            future,
            outcome::finish::<F::Output>,
            spec,
            "TaskGroup::spawn_local",
        )
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
        self.inner.handle.spawn_local_with(
            future,
            outcome::finish::<F::Output>,
            spec,
            "TaskGroup::spawn_local_named",
        )
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
        let child =
            TaskGroup::with_parent(self.inner.handle.clone(), false, Some(self.inner.clone()));
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
        let deadline = self.inner.handle.timers().deadline_after(duration);
        self.with_deadline(deadline)
    }

    /// Cancels the group with [`CancelReason::Deadline`] at `deadline`.
    pub fn with_deadline(self, deadline: Instant) -> TaskGroup {
        let waker = futures_task::waker(Arc::new(DeadlineWaker(Arc::downgrade(&self.inner))));
        let key = self.inner.handle.timers().insert(deadline, waker);
        let previous = self.inner.lock().deadline.replace(key);
        if let Some(previous) = previous {
            self.inner.handle.timers().remove(previous);
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
            self.inner.handle.timers().remove(key);
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

/// Cancels one [`TaskGroup`] from anywhere, a member of it included. Made by
/// [`TaskGroup::canceller`]; `Clone + Send + Sync`.
///
/// It holds the group's shared state, not the group: dropping it cancels nothing, and
/// cancelling after the group was joined does nothing.
#[derive(Clone)]
pub struct GroupCanceller {
    group: Arc<GroupInner>,
}

impl GroupCanceller {
    /// Cancels every unfinished member with
    /// [`CancelReason::Explicit(None)`](CancelReason::Explicit), as
    /// [`TaskGroup::cancel`] does.
    pub fn cancel(&self) {
        self.group.cancel(CancelReason::Explicit(None));
    }

    /// Cancels every unfinished member with `Explicit(Some(reason))`, as
    /// [`TaskGroup::cancel_with`] does.
    pub fn cancel_with(&self, reason: impl Into<String>) {
        self.group
            .cancel(CancelReason::Explicit(Some(reason.into())));
    }

    /// `true` once the group was cancelled, for any reason.
    pub fn is_cancelled(&self) -> bool {
        self.group.cancelled.get().is_some()
    }
}

impl fmt::Debug for GroupCanceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCanceller")
            .field("group", &self.group.id)
            .field("cancelled", &self.is_cancelled())
            .finish()
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
            self.inner.handle.timers().remove(key);
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

/// The future returned by [`TaskGroup::join`].
#[must_use = "futures do nothing unless awaited"]
pub struct GroupJoin {
    group: Option<TaskGroup>,
}

impl Future for GroupJoin {
    type Output = Result<(), GroupError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let group = self
            .group
            .as_ref()
            .expect("a warden GroupJoin was polled after it completed");
        {
            let mut state = group.inner.lock();
            if !group.inner.is_done() {
                match &state.join_waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.join_waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        let group = self.group.take().expect("checked above");
        let result = group.finish();
        drop(group);
        Poll::Ready(result)
    }
}

impl fmt::Debug for GroupJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupJoin")
            .field("group", &self.group)
            .finish()
    }
}

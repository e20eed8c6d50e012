//! [`LocalExecutor`]: the single-threaded executor.
//!
//! Read this module on its own to see a whole executor: a run queue, a loop that pops
//! tasks and runs them, a way to sleep when there is nothing to do, and shutdown.
//!
//! # Queues
//!
//! Two queues of [`TaskRef`]s:
//!
//! - the *ready* queue, which only the owner thread touches, so it needs no lock: tasks
//!   spawned or woken on the owner thread (the common case: tasks waking each other, a task
//!   yielding) are pushed and popped with plain memory operations. It is FIFO, with a
//!   one-task *next* slot in front: the first task that a running task spawns or wakes
//!   runs right after it (see `Ready`), as on a pool worker;
//! - the *remote* queue, behind a mutex, for wakes and spawns from other threads (a timer
//!   thread, an I/O reactor, a `Handle` used elsewhere). Such a push also unparks the
//!   owner if it sleeps.
//!
//! A wake finds out which thread it runs on by comparing a per-thread token
//! ([`context::thread_token`]) with the owner's. The owner moves the remote queue, all of
//! it, to the back of its ready queue at the start of every batch and whenever the ready
//! queue runs dry; a flag says whether there is anything to move, so an empty remote queue
//! costs one atomic load and no lock.
//!
//! # Threads
//!
//! A `LocalExecutor` is `!Send`: it stays on the thread that created it (the *owner*), and
//! only its own methods run tasks. So every task, `Send` or not, is polled and dropped on
//! the owner thread; that is the guarantee `task::spawn_unchecked` asks for when a future
//! is not `Send`. Other threads can only push woken tasks, or spawn `Send` futures through a
//! [`Handle`].
//!
//! # Fairness
//!
//! `block_on` alternates between the root future and the queue: after the root future is
//! polled (when woken), at most [`BATCH`] tasks run before it is looked at again. A task
//! that wakes itself goes to the back of the queue, behind every task that was already
//! ready, so it cannot starve them; and at most three tasks in a row come from the next
//! slot, so two tasks waking each other cannot starve them either.
//!
//! # Parking
//!
//! With no task ready and the root future not woken, the owner thread parks
//! (`std::thread::park`), after announcing it in a `sleeping` flag and looking at the
//! queue once more. A push that sees the flag unparks it; pushes while the owner is awake
//! (the common case: tasks waking each other) skip the unpark. Parking uses a token, so an
//! unpark that lands between the last look and `park()` makes that `park()` return at
//! once: no wake-up is lost (the argument is in `LocalShared::sleep`).

use crate::loom::{Arc, AtomicBool, Mutex, Ordering, UnsafeCell, Weak};
use crate::park::{self, Unparker};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::block_on::{self, ShutdownRequest};
use crate::builder::Builder;
use crate::context;
use crate::failure::{CancelReason, TaskError};
use crate::handle::{Flavor, Handle};
use crate::hook::ErrorSink;
use crate::metrics::Metrics;
use crate::stall::watchdog::Watchdog;
use crate::task::{
    self, JoinHandle, LocalSpawnRefused, Placement, Schedule, SpawnSpec, TaskOwner, TaskRef,
    TimerKey,
};
use crate::time::Timers;

mod futures_spawn;
mod ready;

use ready::Ready;

/// How many tasks `block_on` runs before it looks at the root future again.
pub(crate) const BATCH: usize = 64;

/// A single-threaded executor: futures need not be `Send`.
///
/// Tasks run only while the owner thread drives the executor: inside
/// [`block_on`](LocalExecutor::block_on), or through [`try_tick`](LocalExecutor::try_tick)
/// and [`run_until_idle`](LocalExecutor::run_until_idle) for hosts with their own loop (a
/// game frame, a GUI event loop, a test harness). Dropping the executor shuts it down:
/// every live task is cancelled with [`CancelReason::Shutdown`] and its future dropped.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// let ex = warden::LocalExecutor::new();
/// let shared = Rc::new(5); // not Send: fine on a LocalExecutor
/// let task = ex.spawn({
///     let shared = shared.clone();
///     async move { *shared * 2 }
/// });
/// assert_eq!(ex.block_on(task).unwrap(), 10);
/// ```
pub struct LocalExecutor {
    shared: Arc<LocalShared>,
    /// Makes the type `!Send` and `!Sync`: tasks must run on the owner thread.
    _not_send: PhantomData<Rc<()>>,
}

/// The part of a local executor that tasks and wakers point at.
pub(crate) struct LocalShared {
    owner: TaskOwner,
    /// Tasks ready to run, pushed on the owner thread. Only the owner thread touches it.
    ready: UnsafeCell<Ready>,
    /// Tasks made ready on other threads.
    remote: Mutex<VecDeque<TaskRef>>,
    /// `true` when `remote` may hold tasks (set under its lock, cleared by the owner).
    remote_queued: AtomicBool,
    /// The owner thread, unparked by wakes while it sleeps.
    thread: Unparker,
    /// The owner thread's [`context::thread_token`].
    owner_token: u64,
    /// `true` while the owner is parked or about to park (see `sleep`).
    sleeping: AtomicBool,
    pub(crate) timers: Timers,
    /// Set by `UnhandledPolicy::Shutdown`: the failure that asked for the shutdown.
    shutdown: ShutdownRequest,
    /// Samples the owner thread's polls, when the blocking threshold is on.
    watchdog: Option<Arc<Watchdog>>,
}

// SAFETY: every field but `ready` is `Send + Sync` on its own. `ready` is only touched on
// the owner thread (see `with_ready`), so sharing `LocalShared` never shares it; the
// `TaskRef`s in it are `Send + Sync` themselves.
unsafe impl Send for LocalShared {}
// SAFETY: as for `Send` above.
unsafe impl Sync for LocalShared {}

impl Schedule for LocalShared {
    fn schedule(&self, task: TaskRef) {
        if self.is_owner_thread() {
            // The owner is running this very code, so it is not asleep: no unpark (unless it
            // runs it while parked in the I/O reactor, dispatching I/O: module `park`).
            self.with_ready(|ready| ready.push(task));
            park::woke_locally();
            return;
        }
        {
            let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            remote.push_back(task);
            self.remote_queued.store(true, Ordering::Release);
        }
        // Only a parked (or parking) owner needs unparking; see `LocalShared::sleep`.
        if self.sleeping.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
    }

    /// A task that awaits the one that just completed goes to the back of the queue, not
    /// into the slot: a parent that awaits its children's handles one by one would
    /// otherwise be polled after each child, to find the next one still pending. (It is
    /// this executor's slot that is closed, the completed task's: in the one case where
    /// the waiter belongs to another executor on this thread, that one's slot may take it.)
    fn wake_join_waiter(&self, waker: Waker) {
        if !self.is_owner_thread() {
            return crate::failure::wake_guarded(waker);
        }
        let _closed = self.set_slot_open(false);
        crate::failure::wake_guarded(waker);
    }

    fn owner(&self) -> &TaskOwner {
        &self.owner
    }

    /// The owner thread may spawn futures that are not `Send`: a `LocalExecutor` polls and
    /// drops its tasks on its owner thread alone (module doc, "Threads").
    fn local_spawn(&self) -> Result<(), LocalSpawnRefused> {
        if self.is_owner_thread() {
            Ok(())
        } else {
            Err(LocalSpawnRefused::NotTheOwnerThread)
        }
    }

    fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        self.timers.insert(deadline, waker)
    }

    fn remove_timer(&self, key: TimerKey) {
        self.timers.remove(key)
    }

    fn deadline_after(&self, duration: Duration) -> Instant {
        self.timers.deadline_after(duration)
    }
}

impl LocalShared {
    /// Parks the owner thread until a push (or `deadline`), unless a task is queued.
    ///
    /// The owner announces itself in `sleeping` before it looks at the queue one last
    /// time; a pusher pushes (under the queue's lock) before it reads `sleeping`. The
    /// lock orders the two: either the owner's look sees the task, or the pusher sees
    /// `sleeping` and unparks the owner (and `unpark` before `park` is not lost).
    ///
    /// Owner thread only.
    fn sleep(&self, deadline: Option<std::time::Instant>) {
        self.sleeping.store(true, Ordering::SeqCst);
        let queued = !self.with_ready(|ready| ready.is_empty())
            || !self
                .remote
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
        if !queued {
            match deadline {
                Some(deadline) => {
                    let now = std::time::Instant::now();
                    if deadline > now {
                        park::park_timeout(deadline - now);
                    }
                }
                None => park::park(),
            }
        }
        self.sleeping.store(false, Ordering::SeqCst);
        self.watchdog.iter().for_each(|w| w.polling_thread_woke());
    }

    /// `true` on the thread that created the executor.
    pub(crate) fn is_owner_thread(&self) -> bool {
        context::thread_token() == self.owner_token
    }

    /// `UnhandledPolicy::Shutdown`: the failure may be let go of on any thread, so the
    /// shutdown itself happens on the owner thread, at the next turn of its loop.
    fn request_shutdown(&self, cause: &TaskError) {
        self.shutdown.record(cause);
        self.thread.unpark();
    }
}

/// `block_on`'s loop (module `block_on`) with this executor's policy: the ready tasks run
/// on this thread, between polls of the root future.
impl block_on::Driver for LocalExecutor {
    fn run_ready(&self) -> usize {
        self.run_batch(BATCH)
    }

    fn shutdown_cause(&self) -> Option<TaskError> {
        self.shared.shutdown.cause().cloned()
    }

    fn shut_down_for_request(&self) {
        self.shutdown();
    }

    /// Fires due timers, then parks until a wake or the next timer deadline.
    fn park(&self, _root: &block_on::RootWaker) {
        let next_timer = self.shared.timers.fire_due();
        self.shared.sleep(next_timer);
        self.shared.timers.fire_due();
    }
}

impl LocalExecutor {
    /// Creates a single-threaded executor with the default [`Builder`] settings.
    pub fn new() -> LocalExecutor {
        Builder::new().build_local()
    }

    pub(crate) fn from_builder(builder: &Builder) -> LocalExecutor {
        crate::failure::install_panic_hook();
        let sink = Arc::new(ErrorSink::new(builder.hook.clone(), builder.policy));
        let owner_token = context::thread_token();
        let this_thread = std::thread::current().name().map(String::from);
        let watchdog = Watchdog::for_builder(builder, vec![this_thread]);
        let shared = Arc::new(LocalShared {
            owner: TaskOwner::new(
                builder.owner_config(sink.clone()),
                Placement::OwnerThread(owner_token),
            ),
            ready: UnsafeCell::new(Ready::new()),
            remote: Mutex::new(VecDeque::new()),
            remote_queued: AtomicBool::new(false),
            thread: park::current(),
            owner_token,
            sleeping: AtomicBool::new(false),
            timers: Timers::new(),
            shutdown: ShutdownRequest::new(),
            watchdog,
        });
        if let Some(watchdog) = &shared.watchdog {
            let weak = Arc::downgrade(&shared);
            let parked = move || {
                weak.upgrade()
                    .is_some_and(|s| s.sleeping.load(Ordering::SeqCst))
            };
            watchdog.set_all_parked(Box::new(parked));
        }
        let owner_thread = shared.thread.clone();
        shared
            .timers
            .set_notify(Box::new(move || owner_thread.unpark()));
        if builder.manual_clock {
            shared.timers.use_manual_clock();
        }
        let weak: Weak<LocalShared> = Arc::downgrade(&shared);
        sink.set_shutdown_trigger(Box::new(move |err| {
            if let Some(shared) = weak.upgrade() {
                shared.request_shutdown(err);
            }
        }));
        LocalExecutor {
            shared,
            _not_send: PhantomData,
        }
    }

    /// A thread-safe handle, to spawn `Send` futures onto this executor from anywhere.
    pub fn handle(&self) -> Handle {
        Handle {
            flavor: Flavor::Local(self.shared.clone()),
        }
    }

    /// Spawns a task. The future need not be `Send`.
    ///
    /// The task is queued at once and runs while the executor is driven.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let handle = ex.spawn(async { 1 });
    /// assert_eq!(ex.block_on(handle).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_inner(future, SpawnSpec::new(None))
    }

    /// Spawns a named task; the name appears in every failure report and log line.
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<String>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_inner(future, SpawnSpec::new(Some(name.into())))
    }

    fn spawn_inner<F>(&self, future: F, spec: SpawnSpec) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        // SAFETY: `self` is `!Send`, so this is the owner thread, and a `LocalExecutor` runs
        // and drops tasks only on its owner thread (module doc, "Threads").
        unsafe { task::spawn_unchecked(future, task::plain, spec, self.shared.clone()) }
    }

    /// Creates a [`TaskGroup`](crate::TaskGroup) on this executor.
    pub fn group(&self) -> crate::TaskGroup {
        self.handle().group()
    }

    /// Creates a supervisor [`TaskGroup`](crate::TaskGroup) on this executor: a failure
    /// cancels nobody, and `join` collects every failure.
    pub fn supervisor(&self) -> crate::TaskGroup {
        self.handle().supervisor()
    }

    /// Runs `future` to completion on this thread, running the executor's tasks meanwhile.
    ///
    /// `future` itself is not a task (it has no id and is not counted in [`Metrics`]), but
    /// inside it `warden::spawn`, `spawn_local` and `TaskGroup::new` target this executor.
    /// A panic in `future` unwinds out of `block_on` to the caller.
    ///
    /// `block_on` still works after [`shutdown`](LocalExecutor::shutdown), and through one
    /// that the root future or a task calls while it runs: the root future keeps working
    /// timers until it finishes ([`sleep`](crate::sleep), [`timeout`](crate::timeout) and
    /// group deadlines fire on time), while tasks it spawns resolve at once to
    /// [`CancelReason::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let sum = ex.block_on(async {
    ///     let a = warden::spawn(async { 1 });
    ///     let b = warden::spawn_local(async { 2 });
    ///     a.await.unwrap() + b.await.unwrap()
    /// });
    /// assert_eq!(sum, 3);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from inside a task or another `block_on` on this thread (it would
    /// deadlock), and, under [`UnhandledPolicy::Shutdown`](crate::UnhandledPolicy::Shutdown),
    /// when an unobserved failure shut the executor down: the message names the task.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _entered = context::enter(self.handle(), "block_on");
        block_on::drive(self, future)
    }

    /// Runs up to `limit` ready tasks; returns how many ran.
    fn run_batch(&self, limit: usize) -> usize {
        let now = Instant::now();
        self.shared.timers.fire_due_at(now);
        let poller = self.shared.poller(now);
        // Tasks woken elsewhere join the back of the line once per batch, so a task that
        // keeps waking itself here cannot keep them waiting.
        self.shared.take_remote();
        let mut ran = 0;
        let _open = self.shared.set_slot_open(true);
        while ran < limit {
            match self.shared.pop() {
                Some(task) => {
                    if let Some(again) = task.run(&poller) {
                        // Woken during its own poll: back of the line. This is the owner
                        // thread, so straight onto the ready queue.
                        self.shared.with_ready(|ready| ready.queue.push_back(again));
                    }
                    ran += 1;
                }
                None => break,
            }
        }
        ran
    }

    /// Runs one ready task, if there is one, and returns whether it did. Never blocks.
    ///
    /// For hosts that drive warden from their own loop. Due timers are fired first.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let handle = ex.spawn(async { 7 });
    /// assert!(ex.try_tick()); // ran the task
    /// assert!(!ex.try_tick()); // nothing left
    /// assert!(handle.is_finished());
    /// ```
    ///
    /// # Panics
    ///
    /// If called from inside a task or `block_on` on this thread.
    #[track_caller]
    pub fn try_tick(&self) -> bool {
        let _entered = context::enter(self.handle(), "try_tick");
        self.shutdown_if_requested();
        self.run_batch(1) == 1
    }

    /// Runs ready tasks until none is ready, and returns how many task polls it made
    /// (a cancelled task's final step, which drops its future, counts as one). Never blocks.
    ///
    /// Tasks woken while it runs are run too, so a task that wakes itself on every poll
    /// (a loop around [`yield_now`](crate::yield_now)) keeps it going, as with
    /// `futures::executor::LocalPool::run_until_stalled`. Use
    /// [`try_tick`](Self::try_tick) for a bounded amount of work per frame.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// for i in 0..3 {
    ///     ex.spawn(async move { i }).detach();
    /// }
    /// assert_eq!(ex.run_until_idle(), 3);
    /// assert_eq!(ex.run_until_idle(), 0);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from inside a task or `block_on` on this thread.
    #[track_caller]
    pub fn run_until_idle(&self) -> usize {
        let _entered = context::enter(self.handle(), "run_until_idle");
        self.shutdown_if_requested();
        let mut polls = 0;
        loop {
            let ran = self.run_batch(BATCH);
            polls += ran;
            if ran == 0 {
                return polls;
            }
        }
    }

    fn shutdown_if_requested(&self) {
        if self.shared.shutdown.cause().is_some() {
            self.shutdown();
        }
    }

    /// A snapshot of this executor's task counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.owner.metrics.snapshot()
    }

    /// How many timers ([`sleep`](crate::sleep), [`timeout`](crate::timeout), group
    /// deadlines) are registered and not yet fired. A finished or dropped timer is removed
    /// at once, so this is 0 when no task is waiting on time.
    pub fn timer_count(&self) -> usize {
        self.shared.timers.len()
    }

    /// Shuts the executor down: refuses new tasks (they resolve to
    /// [`CancelReason::Shutdown`] at once), cancels every live task with
    /// [`CancelReason::Shutdown`], and drops their futures here, running their
    /// destructors, before it returns. Calling it again does nothing.
    ///
    /// The timers stay: a [`block_on`](LocalExecutor::block_on) running when `shutdown` is
    /// called (from its root future or one of its tasks), or started later, keeps firing
    /// them until its root future finishes. The timer queue is emptied when the executor is
    /// dropped.
    ///
    /// Called from inside one of this executor's own tasks, it cancels every task and
    /// returns at once; the futures are dropped by the loop that runs that task, when the
    /// current poll returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::LocalExecutor::new();
    /// let pending = ex.spawn(std::future::pending::<()>());
    /// ex.shutdown();
    /// assert!(pending.is_finished());
    /// let late = ex.spawn(async {});
    /// assert!(late.is_finished()); // refused: cancelled at once
    /// ```
    pub fn shutdown(&self) {
        task::cancel_all(self.shared.owner.close(), CancelReason::Shutdown);
        let inside_own_task = context::current_task().is_some()
            && context::current().is_some_and(|h| h.same_executor(&self.handle()));
        if inside_own_task {
            return;
        }
        // Every live task is now queued, or about to be, with its cancel flag set; running
        // each drops its future on this thread. Destructors may wake other tasks (already
        // cancelled) or spawn (refused).
        //
        // "About to be": a `Handle::spawn` on another thread may have registered its task
        // just before `close` and not pushed it yet. Such a task is live but not queued, so
        // the drain waits (parked; the push unparks this thread) until no task is live.
        let _current = context::set_current(self.handle());
        // The timers stay: a `block_on` (this very one, if the root called `shutdown`) still
        // fires them. `Drop` empties them.
        block_on::drain(
            &self.shared.owner,
            || self.shared.pop(),
            |again| self.shared.schedule(again),
            || self.shared.sleep(None),
        );
    }
}

impl Default for LocalExecutor {
    fn default() -> LocalExecutor {
        LocalExecutor::new()
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        self.shutdown();
        // No `block_on` can be running any more (it borrows the executor): nobody will fire
        // the timers again, and no task will be polled.
        self.shared.timers.clear();
        if let Some(watchdog) = &self.shared.watchdog {
            watchdog.stop();
        }
    }
}

impl fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remote = self
            .shared
            .remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let queued = self.shared.with_ready(|ready| ready.len()) + remote;
        f.debug_struct("LocalExecutor")
            .field("queued", &queued)
            .field("metrics", &self.metrics())
            .finish()
    }
}

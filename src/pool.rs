//! [`Executor`]: the multi-threaded executor, a pool of worker threads.
//!
//! Read this module on its own to see a work-stealing scheduler.
//!
//! # Queues
//!
//! Every worker owns a FIFO deque (`crossbeam_deque::Worker`); the others can steal from
//! its far end. One global `Injector` takes tasks from threads that are not workers of this
//! pool (spawns from outside, wakes from timers or other threads). A task woken on one of
//! this pool's workers goes to that worker's own deque: it is likely to touch the same
//! data again, and pushing there takes no lock.
//!
//! # Finding work, and fairness
//!
//! A worker takes, in order: its LIFO slot (below); its own deque; the injector (a batch,
//! to save trips); the other workers' deques (stealing half, starting at a rotating
//! victim). Every [`INJECTOR_INTERVAL`] pops it looks at the injector *first*, so a busy
//! worker cannot leave tasks from outside waiting forever. A task that wakes itself is
//! pushed to the back of its worker's FIFO deque, behind every task already there, so it
//! cannot starve them either.
//!
//! # The LIFO slot
//!
//! A task spawned or woken on a worker goes into that worker's *LIFO slot*, and runs next:
//! a task that spawns a helper and awaits it, or two tasks passing messages back and forth,
//! then run one after the other on one worker, with their data still in its cache and no
//! other worker woken. A task already in the slot moves to the back of the deque, where it
//! can be stolen. Two rules keep the slot from starving anyone: a worker runs at most
//! [`MAX_LIFO_STREAK`] slot tasks in a row before it takes one from its deque (the slot's
//! task goes to the back of the deque), and a task re-queued after its own poll (it woke
//! itself, like `yield_now`) never goes into the slot. The slot is not stealable: while its
//! worker is busy in one long poll, the slot's task waits for it (as in tokio).
//!
//! Filling an empty slot wakes no idle worker: the task will run on this worker as soon as
//! the current poll returns, and waking a sleeper only to find nothing is the expensive
//! part of message passing between two tasks. Pushing to the deque (a displaced slot task,
//! a spawn from a worker of another pool, a wake from outside) does wake one.
//!
//! # Parking, and why no wake-up is lost
//!
//! A worker that finds nothing announces itself idle (pushes its index on the idle list
//! and increments its count), issues a `SeqCst` fence, and looks at every queue once
//! more before it parks. A thread that pushes a task issues a `SeqCst` fence after the
//! push and then reads the count; if a worker is idle, it pops it off the list and
//! unparks it. The two fences order the two sides: either the pusher's read sees the
//! worker's announcement (and unparks it), or the worker's second look sees the task.
//! `park`/`unpark` use a token, so an unpark that comes before the `park` is not lost.
//! An idle pool therefore sleeps in `park` with no timer ticking: no CPU.
//!
//! Unparking costs a system call, so a pusher wakes nobody while a worker it (or another
//! pusher) woke is still *searching*: that worker is on its way to the queues. When it
//! finds a task it stops searching, and if it was the last searcher it notifies once, as a
//! pusher would, for the pushes that skipped; when it finds nothing it stops searching
//! *before* its fenced last look, so a push that skipped because of it is either seen by
//! that look or was made after the count dropped (and then wakes someone itself). This is
//! tokio's scheme; `loom_push_skipped_while_a_worker_searches` checks it.
//!
//! # Shutdown
//!
//! `shutdown` closes the task registry (new spawns resolve to `Shutdown` at once), cancels
//! every live task (which queues it), and tells the workers to stop. Workers keep running
//! tasks, which now only drop their futures, until they find no work; each hands what is
//! left in its own deque to the injector and exits. The thread that called `shutdown` joins
//! them, then runs whatever is still queued, so that every future has been dropped before
//! `shutdown` returns.

use crate::loom::{
    Arc, AtomicBool, AtomicUsize, JoinHandle as ThreadHandle, Mutex, OnceLock, Ordering, Thread,
    Weak, current, fence, park, spawn_thread,
};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use futures_task::{ArcWake, waker_ref};

use crate::builder::Builder;
use crate::context;
use crate::failure::{CancelReason, TaskError};
use crate::handle::{Flavor, Handle};
use crate::hook::ErrorSink;
use crate::metrics::Metrics;
use crate::task::{self, JoinHandle, Placement, Schedule, SpawnSpec, TaskOwner, TaskRef};
use crate::time::Timers;

/// A worker looks at the injector before its own deque once every this many pops.
pub(crate) const INJECTOR_INTERVAL: u32 = 61;

/// A worker runs at most this many tasks from its LIFO slot in a row.
pub(crate) const MAX_LIFO_STREAK: u32 = 3;

/// A multi-threaded executor: a pool of worker threads with work stealing.
///
/// Futures must be `Send`. [`block_on`](Executor::block_on) runs a root future on the
/// calling thread (not a worker) while the workers run tasks. Dropping the executor shuts
/// it down: every live task is cancelled with [`CancelReason::Shutdown`], its future is
/// dropped, and the workers are joined.
///
/// # Examples
///
/// ```
/// let ex = warden::Builder::new().worker_threads(2).build();
/// let total = ex.block_on(async {
///     let handles: Vec<_> = (0..10u64).map(|i| warden::spawn(async move { i * i })).collect();
///     let mut total = 0;
///     for h in handles {
///         total += h.await.unwrap();
///     }
///     total
/// });
/// assert_eq!(total, 285);
/// ```
pub struct Executor {
    shared: Arc<PoolShared>,
    threads: Mutex<Vec<ThreadHandle<()>>>,
}

/// What workers, wakers and handles share.
pub(crate) struct PoolShared {
    owner: TaskOwner,
    injector: Injector<TaskRef>,
    stealers: Vec<Stealer<TaskRef>>,
    /// Parked (or parking) workers.
    idle: IdleWorkers,
    /// The worker threads, for `unpark`; set once all have started.
    workers: OnceLock<Vec<Thread>>,
    pub(crate) timers: Timers,
    timer_wake: Sender<()>,
    /// Workers and the timer thread exit once this is set and they run out of work.
    stopping: AtomicBool,
    shutdown_cause: OnceLock<TaskError>,
    shutdown_requested: AtomicBool,
    /// Threads parked in `block_on`, unparked by a shutdown so they can notice it.
    blocked: Mutex<Vec<Thread>>,
}

crate::loom::thread_local! {
    /// On a worker thread: which pool it belongs to (by address) and its own deque.
    static LOCAL: RefCell<Option<LocalQueue>> = RefCell::new(None);
}

struct LocalQueue {
    pool: *const PoolShared,
    deque: Worker<TaskRef>,
    /// The task that runs next (module doc, "The LIFO slot").
    lifo: Cell<Option<TaskRef>>,
}

impl LocalQueue {
    fn lifo_is_empty(&self) -> bool {
        let task = self.lifo.take();
        let empty = task.is_none();
        self.lifo.set(task);
        empty
    }
}

impl Schedule for PoolShared {
    fn schedule(&self, task: TaskRef) {
        // `try_with`: a waker may fire from a thread-local destructor, after this
        // thread's `LOCAL` is gone; such a wake goes to the injector.
        let mut task = Some(task);
        let mut filled_empty_slot = false;
        let _ = LOCAL.try_with(|local| {
            if let Some(q) = &*local.borrow() {
                if std::ptr::eq(q.pool, self) {
                    match q.lifo.replace(task.take()) {
                        Some(displaced) => q.deque.push(displaced),
                        None => filled_empty_slot = true,
                    }
                }
            }
        });
        if let Some(task) = task {
            self.injector.push(task);
        }
        if !filled_empty_slot {
            self.notify_one();
        }
    }

    fn owner(&self) -> &TaskOwner {
        &self.owner
    }
}

impl PoolShared {
    /// Wakes one idle worker, if any.
    fn notify_one(&self) {
        if let (Some(index), Some(workers)) = (self.idle.take_one(), self.workers.get()) {
            workers[index].unpark();
        }
    }

    fn notify_all(&self) {
        if let Some(workers) = self.workers.get() {
            for worker in workers {
                worker.unpark();
            }
        }
    }

    /// Anything to run, anywhere?
    fn has_visible_work(&self, own: &Worker<TaskRef>) -> bool {
        !own.is_empty() || !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Starts a shutdown without waiting for it: closes the registry, cancels every live
    /// task, and tells workers to stop. Safe to call from any thread, including a worker.
    fn begin_shutdown(&self) {
        // Two phases: every live task's cancel flag is set before any is queued, so that
        // no task (say, woken by a cancelled task's destructor) runs on after shutdown.
        task::cancel_all(self.owner.close(), CancelReason::Shutdown);
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.timer_wake.try_send(());
        self.notify_all();
    }

    fn request_shutdown(&self, cause: &TaskError) {
        let _ = self.shutdown_cause.set(cause.clone());
        self.shutdown_requested.store(true, Ordering::SeqCst);
        self.begin_shutdown();
        // A `block_on` whose root waits for something that will never come must still
        // learn of the shutdown: unpark it (it checks the flag before parking again).
        for thread in self
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            thread.unpark();
        }
    }

    fn is_worker_thread(&self) -> bool {
        LOCAL
            .try_with(|local| {
                local
                    .borrow()
                    .as_ref()
                    .is_some_and(|q| std::ptr::eq(q.pool, self))
            })
            .unwrap_or(false)
    }
}

/// One worker thread's loop.
fn run_worker(shared: Arc<PoolShared>, index: usize, deque: Worker<TaskRef>) {
    LOCAL.with(|local| {
        *local.borrow_mut() = Some(LocalQueue {
            pool: Arc::as_ptr(&shared),
            deque,
            lifo: Cell::new(None),
        })
    });
    let handle = Handle {
        flavor: Flavor::Pool(shared.clone()),
    };
    let entered = context::enter(handle, "a worker thread");
    // The loop borrows the worker's own queues once, for its whole life, instead of looking
    // them up in the thread-local on every turn. (Wakes during a poll still go through
    // `LOCAL` in `schedule`; a shared borrow next to ours is fine.)
    LOCAL.with(|local| {
        let local = local.borrow();
        let own = local.as_ref().expect("worker thread without its queues");
        work(&shared, index, own);
    });
    // Hand anything left in our deque to the injector for the thread that joins us.
    let local = LOCAL.with(|local| local.borrow_mut().take());
    if let Some(local) = local {
        if let Some(task) = local.lifo.take() {
            shared.injector.push(task);
        }
        while let Some(task) = local.deque.pop() {
            shared.injector.push(task);
        }
    }
    drop(entered);
}

/// The worker's loop: find a task, run it, park when there is none, until the pool stops.
fn work(shared: &PoolShared, index: usize, own: &LocalQueue) {
    let mut pops: u32 = 0;
    let mut victim = index;
    let mut lifo_streak: u32 = 0;
    let mut searching = false;
    loop {
        pops = pops.wrapping_add(1);
        if let Some(task) = find_task(shared, own, pops, &mut victim, &mut lifo_streak) {
            if searching {
                searching = false;
                if shared.idle.end_search() {
                    shared.notify_one();
                }
            }
            if let Some(again) = task.run() {
                // Woken during its own poll: to the back of our deque, never the LIFO
                // slot. No idle worker is woken: the number of runnable tasks did not
                // grow, and this worker looks at its deque next.
                own.deque.push(again);
            }
            continue;
        }
        if shared.stopping.load(Ordering::SeqCst) {
            if searching {
                shared.idle.end_search();
            }
            return;
        }
        searching = park_worker(shared, own, index, searching);
    }
}

/// LIFO slot, own deque, injector, then stealing; the injector first every
/// `INJECTOR_INTERVAL` pops, and the LIFO slot at most `MAX_LIFO_STREAK` times in a row.
fn find_task(
    shared: &PoolShared,
    local: &LocalQueue,
    pops: u32,
    victim: &mut usize,
    lifo_streak: &mut u32,
) -> Option<TaskRef> {
    let own = &local.deque;
    if pops % INJECTOR_INTERVAL == 0 {
        if let Some(task) = steal_retrying(|| shared.injector.steal_batch_and_pop(own)) {
            *lifo_streak = 0;
            return Some(task);
        }
    }
    if let Some(task) = local.lifo.take() {
        if *lifo_streak < MAX_LIFO_STREAK {
            *lifo_streak += 1;
            return Some(task);
        }
        // Streak over: the slot's task waits its turn at the back of the deque. It is
        // stealable there, so an idle worker may take it.
        own.push(task);
        shared.notify_one();
    }
    *lifo_streak = 0;
    if let Some(task) = own.pop() {
        return Some(task);
    }
    if let Some(task) = steal_retrying(|| shared.injector.steal_batch_and_pop(own)) {
        return Some(task);
    }
    let n = shared.stealers.len();
    for i in 0..n {
        let v = (*victim + i) % n;
        if let Some(task) = steal_retrying(|| shared.stealers[v].steal_batch_and_pop(own)) {
            *victim = v;
            return Some(task);
        }
    }
    *victim = (*victim + 1) % n.max(1);
    None
}

fn steal_retrying(mut steal: impl FnMut() -> Steal<TaskRef>) -> Option<TaskRef> {
    loop {
        match steal() {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

/// Parks the worker unless there is work (the worker's half of the protocol). Returns
/// whether the worker is searching now (see `IdleWorkers::sleep`).
fn park_worker(shared: &PoolShared, own: &LocalQueue, index: usize, searching: bool) -> bool {
    shared.idle.sleep(
        index,
        searching,
        || {
            // The slot is empty here (`find_task` just took what it held), but parking
            // must not depend on that: look anyway.
            shared.stopping.load(Ordering::SeqCst)
                || shared.has_visible_work(&own.deque)
                || !own.lifo_is_empty()
        },
        park,
    )
}

/// The idle list and the parking protocol (module doc, "Parking"), apart from the queues
/// so that a loom model can check it on its own.
struct IdleWorkers {
    list: Mutex<Vec<usize>>,
    count: AtomicUsize,
    /// Workers taken off the list by `take_one` that have neither found a task nor gone
    /// back to sleep yet ("Parking" in the module doc).
    searching: AtomicUsize,
}

impl IdleWorkers {
    fn new(capacity: usize) -> IdleWorkers {
        IdleWorkers {
            list: Mutex::new(Vec::with_capacity(capacity)),
            count: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
        }
    }

    /// The pusher's half, called after a push: takes one idle worker off the list, if any
    /// and if no woken worker is still searching, for the caller to unpark. The worker
    /// taken counts as searching until it calls [`end_search`](Self::end_search) or
    /// sleeps again.
    fn take_one(&self) -> Option<usize> {
        fence(Ordering::SeqCst);
        if self.count.load(Ordering::SeqCst) == 0 || self.searching.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let index = list.pop();
        if index.is_some() {
            self.count.fetch_sub(1, Ordering::SeqCst);
            self.searching.fetch_add(1, Ordering::SeqCst);
        }
        index
    }

    /// A searching worker found a task. Returns `true` if it was the last one searching:
    /// pushes made meanwhile woke nobody, so the caller must notify once (as a pusher).
    fn end_search(&self) -> bool {
        self.searching.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// The worker's half: announce, stop searching, fence, look again with `has_work`, and
    /// `park` only if it found nothing; then leave the list if nobody took us off it (we
    /// found work, or woke spuriously). Returns `true` if a pusher took us off the list:
    /// we are searching now.
    fn sleep(
        &self,
        index: usize,
        searching: bool,
        has_work: impl FnOnce() -> bool,
        park: impl FnOnce(),
    ) -> bool {
        {
            let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
            list.push(index);
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        if searching {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if !has_work() {
            park();
        }
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        match list.iter().position(|&i| i == index) {
            Some(pos) => {
                list.swap_remove(pos);
                self.count.fetch_sub(1, Ordering::SeqCst);
                false
            }
            None => true,
        }
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

/// The timer thread: fires due timers, then blocks until the next deadline or a
/// notification that an earlier one was registered.
fn run_timers(shared: Weak<PoolShared>, wake: Receiver<()>) {
    loop {
        let Some(pool) = shared.upgrade() else { return };
        if pool.stopping.load(Ordering::SeqCst) {
            return;
        }
        let next = pool.timers.fire_due();
        drop(pool);
        let outcome = match next {
            Some(deadline) => wake
                .recv_deadline(deadline)
                .map_err(|e| e.is_disconnected()),
            None => wake.recv().map_err(|_| true),
        };
        if outcome == Err(true) {
            return;
        }
    }
}

/// Lists the current thread in `PoolShared::blocked` while `block_on` runs.
struct BlockedGuard<'a> {
    shared: &'a PoolShared,
    thread: Thread,
}

impl<'a> BlockedGuard<'a> {
    fn register(shared: &'a PoolShared) -> BlockedGuard<'a> {
        let thread = current();
        shared
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(thread.clone());
        BlockedGuard { shared, thread }
    }
}

impl Drop for BlockedGuard<'_> {
    fn drop(&mut self) {
        let mut blocked = self
            .shared
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = blocked.iter().position(|t| t.id() == self.thread.id()) {
            blocked.swap_remove(pos);
        }
    }
}

/// The waker of `block_on`'s root future.
struct RootWaker {
    woken: AtomicBool,
    thread: Thread,
}

impl ArcWake for RootWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.thread.unpark();
    }
}

impl Executor {
    /// Creates a pool with one worker per core (`std::thread::available_parallelism`).
    pub fn new() -> Executor {
        Builder::new().build()
    }

    pub(crate) fn from_builder(builder: &Builder) -> Executor {
        crate::failure::install_panic_hook();
        let n = builder.worker_threads.unwrap_or_else(|| {
            thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let deques: Vec<Worker<TaskRef>> = (0..n).map(|_| Worker::new_fifo()).collect();
        let stealers = deques.iter().map(Worker::stealer).collect();
        let sink = Arc::new(ErrorSink::new(builder.hook.clone(), builder.policy));
        let (timer_wake, timer_rx) = crossbeam_channel::bounded(1);
        let shared = Arc::new(PoolShared {
            // About four registry shards per worker: two workers ending tasks at the same
            // moment rarely need the same lock.
            owner: TaskOwner::new(
                builder,
                sink.clone(),
                Placement::Shards((4 * n).next_power_of_two().min(64)),
            ),
            injector: Injector::new(),
            stealers,
            idle: IdleWorkers::new(n),
            workers: OnceLock::new(),
            timers: Timers::new(),
            timer_wake,
            stopping: AtomicBool::new(false),
            shutdown_cause: OnceLock::new(),
            shutdown_requested: AtomicBool::new(false),
            blocked: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&shared);
        sink.set_shutdown_trigger(Box::new(move |err| {
            if let Some(shared) = weak.upgrade() {
                shared.request_shutdown(err);
            }
        }));
        let weak = Arc::downgrade(&shared);
        shared.timers.set_notify(Box::new(move || {
            if let Some(shared) = weak.upgrade() {
                let _ = shared.timer_wake.try_send(());
            }
        }));
        if builder.manual_clock {
            shared.timers.use_manual_clock();
        }
        let mut threads = Vec::with_capacity(n + 1);
        for (index, deque) in deques.into_iter().enumerate() {
            let shared = shared.clone();
            let name = format!("{}-{}", builder.thread_name, index);
            let spawned = spawn_thread(name, move || run_worker(shared, index, deque))
                .expect("warden: failed to spawn a worker thread");
            threads.push(spawned);
        }
        let _ = shared
            .workers
            .set(threads.iter().map(|t| t.thread().clone()).collect());
        // Workers that parked before the list was set could have missed an unpark.
        shared.notify_all();
        let weak = Arc::downgrade(&shared);
        let name = format!("{}-timer", builder.thread_name);
        let timer = spawn_thread(name, move || run_timers(weak, timer_rx))
            .expect("warden: failed to spawn the timer thread");
        threads.push(timer);
        Executor {
            shared,
            threads: Mutex::new(threads),
        }
    }

    /// A thread-safe handle, to spawn onto this executor from anywhere.
    pub fn handle(&self) -> Handle {
        Handle {
            flavor: Flavor::Pool(self.shared.clone()),
        }
    }

    /// Spawns a task onto the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::Executor::new();
    /// let handle = ex.spawn(async { 40 + 2 });
    /// assert_eq!(ex.block_on(handle).unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        task::spawn(
            future,
            task::plain,
            SpawnSpec::new(None),
            self.shared.clone(),
        )
    }

    /// Spawns a named task; the name appears in every failure report and log line.
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<String>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let spec = SpawnSpec::new(Some(name.into()));
        task::spawn(future, task::plain, spec, self.shared.clone())
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

    /// Runs `future` to completion on the calling thread (not a worker), parking it between
    /// polls, while the workers run tasks.
    ///
    /// `future` itself is not a task, but inside it `warden::spawn` and `TaskGroup::new`
    /// target this executor.
    ///
    /// # Panics
    ///
    /// If called from inside a task or another `block_on` on this thread, and, under
    /// [`UnhandledPolicy::Shutdown`](crate::UnhandledPolicy::Shutdown), when an unobserved
    /// failure shut the executor down: the message names the task.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _entered = context::enter(self.handle(), "block_on");
        let root = Arc::new(RootWaker {
            woken: AtomicBool::new(true),
            thread: current(),
        });
        let waker = waker_ref(&root);
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let _blocked = BlockedGuard::register(&self.shared);
        loop {
            if self.shared.shutdown_requested.load(Ordering::SeqCst) {
                match self.shared.shutdown_cause.get() {
                    Some(cause) => panic!(
                        "warden: the executor shut down because of an unobserved failure \
                         (UnhandledPolicy::Shutdown): {cause}"
                    ),
                    None => panic!("warden: the executor shut down during block_on"),
                }
            }
            if root.woken.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
            }
            if !root.woken.load(Ordering::Acquire) {
                park();
            }
        }
    }

    /// A snapshot of this executor's task counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.owner.metrics.snapshot()
    }

    /// How many timers are registered and not yet fired; see
    /// [`LocalExecutor::timer_count`](crate::LocalExecutor::timer_count).
    pub fn timer_count(&self) -> usize {
        self.shared.timers.len()
    }

    /// Shuts the executor down: refuses new tasks (they resolve to
    /// [`CancelReason::Shutdown`] at once), cancels every live task with
    /// [`CancelReason::Shutdown`], drops every future (destructors run) and joins the
    /// workers, all before it returns. Calling it again does nothing.
    ///
    /// Called from one of this pool's own worker threads (inside a task), it starts the
    /// shutdown and returns at once; the join happens when the `Executor` is dropped (and
    /// if that drop, too, happens on a worker, a short-lived `warden-shutdown` thread
    /// joins the workers and drops what is left).
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
        if self.shared.is_worker_thread() {
            return;
        }
        finish_shutdown(&self.shared, self.take_threads());
    }

    fn take_threads(&self) -> Vec<ThreadHandle<()>> {
        std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The second half of a shutdown, on a thread that is not a worker: join the workers,
/// then run what they left queued (cancelled tasks whose futures still need dropping).
fn finish_shutdown(shared: &Arc<PoolShared>, threads: Vec<ThreadHandle<()>>) {
    for t in threads {
        // Workers never unwind (task code runs inside catch_unwind); if one did, the panic
        // was already reported by the panic hook.
        let _ = t.join();
    }
    // A `Handle::spawn` on another thread may have registered its task just before the
    // registry closed and not pushed it yet: wait for that push (a few instructions away)
    // until no task is live.
    let _current = context::set_current(Handle {
        flavor: Flavor::Pool(shared.clone()),
    });
    loop {
        while let Some(task) = steal_retrying(|| shared.injector.steal()) {
            if let Some(again) = task.run() {
                shared.injector.push(again);
            }
        }
        if shared.owner.live() == 0 {
            break;
        }
        thread::yield_now();
    }
    shared.timers.clear();
    if let Some(tracer) = &shared.owner.tracer {
        tracer.write();
    }
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::new()
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if self.shared.is_worker_thread() {
            // Dropped inside one of its own tasks: this thread cannot join itself, so a
            // short-lived thread finishes the shutdown once the workers (this one included,
            // after the current poll) have stopped.
            self.shared.begin_shutdown();
            let shared = self.shared.clone();
            let threads = self.take_threads();
            let reaper = spawn_thread("warden-shutdown".to_owned(), move || {
                finish_shutdown(&shared, threads)
            });
            if let Err(err) = reaper {
                log::error!(target: "warden", "could not start the shutdown thread: {err}");
            }
        } else {
            self.shutdown();
        }
    }
}

impl futures_task::Spawn for Executor {
    fn spawn_obj(
        &self,
        future: futures_task::FutureObj<'static, ()>,
    ) -> Result<(), futures_task::SpawnError> {
        self.handle().spawn_obj(future)
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("workers", &self.shared.stealers.len())
            .field("injector", &self.shared.injector.len())
            .field("idle", &self.shared.idle.len())
            .field("metrics", &self.metrics())
            .finish()
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::IdleWorkers;
    use crate::loom::{Arc, AtomicUsize, Ordering};

    /// `pushes` pushes from this thread, each followed by the pusher's half of the
    /// protocol, and one worker that must run them all. The queue is modelled as a count
    /// with release/acquire operations, as weak as crossbeam's, so that only the protocol's
    /// fences can order the two sides. A lost wake-up leaves the worker parked forever,
    /// which loom reports as a deadlock.
    fn pushes_reach_the_worker(pushes: usize) {
        let idle = Arc::new(IdleWorkers::new(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (idle, queued) = (idle.clone(), queued.clone());
            loom::thread::spawn(move || {
                let mut ran = 0;
                let mut searching = false;
                while ran < pushes {
                    if queued.load(Ordering::Acquire) > 0 {
                        queued.fetch_sub(1, Ordering::AcqRel);
                        ran += 1;
                        if searching {
                            searching = false;
                            // One worker: nobody else to notify, but the count must come
                            // back to zero.
                            idle.end_search();
                        }
                        continue;
                    }
                    searching = idle.sleep(
                        0,
                        searching,
                        || queued.load(Ordering::Acquire) > 0,
                        loom::thread::park,
                    );
                }
                if searching {
                    idle.end_search();
                }
            })
        };
        let worker_thread = worker.thread().clone();
        for _ in 0..pushes {
            queued.fetch_add(1, Ordering::Release);
            if idle.take_one() == Some(0) {
                worker_thread.unpark();
            }
        }
        worker.join().unwrap();
        assert_eq!(idle.len(), 0);
        assert_eq!(idle.searching.load(Ordering::SeqCst), 0);
    }

    /// Push vs a worker going to sleep: the worker is never left parked with work queued.
    #[test]
    fn loom_push_vs_worker_sleep() {
        loom::model(|| pushes_reach_the_worker(1));
    }

    /// Two pushes, one worker: the second push may find the worker woken by the first
    /// still searching and wake nobody. The worker must still run both: it either sees
    /// the second task before it sleeps again, or its pre-sleep look (after it stops
    /// searching) does.
    #[test]
    fn loom_push_skipped_while_a_worker_searches() {
        loom::model(|| pushes_reach_the_worker(2));
    }
}

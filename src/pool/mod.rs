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
//! # Files
//!
//! * `worker.rs`: a worker thread's loop (find a task, run it, park) and the wake path;
//! * `lifo_slot.rs`: the LIFO slot, each worker's run-next task (an optimisation);
//! * `idle.rs`: the idle list, and the parking protocol that loses no wake-up;
//! * `shutdown.rs`: stopping the workers and dropping every future.

mod idle;
mod lifo_slot;
mod shutdown;
mod worker;

use idle::IdleWorkers;
use lifo_slot::LifoSlot;
use shutdown::BlockedGuard;
use worker::run_worker;

use crate::loom::{
    Arc, AtomicBool, JoinHandle as ThreadHandle, Mutex, OnceLock, Ordering, Weak, spawn_thread,
};
use crate::park::{self, Unparker};
use std::fmt;
use std::future::Future;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use crossbeam_deque::{Injector, Stealer, Worker};

use crate::block_on::{self, ShutdownRequest};
use crate::builder::Builder;
use crate::context;
use crate::failure::TaskError;
use crate::handle::{Flavor, Handle};
use crate::hook::ErrorSink;
use crate::metrics::Metrics;
use crate::stall::watchdog::Watchdog;
use crate::task::{self, JoinHandle, Placement, SpawnSpec, TaskOwner, TaskRef};
use crate::time::Timers;

/// A worker looks at the injector before its own deque once every this many pops.
pub(crate) const INJECTOR_INTERVAL: u32 = 61;

/// How long an idle worker watches the busy ones before it takes a task from the slot of a
/// worker still in the same poll (module doc, "The LIFO slot"). Also the period of the
/// watcher's wake-ups while a worker is busy and another idle.
pub(crate) const WATCH: Duration = Duration::from_millis(2);

/// A multi-threaded executor: a pool of worker threads with work stealing.
///
/// Futures must be `Send`. [`block_on`](Executor::block_on) runs a root future on the
/// calling thread (not a worker) while the workers run tasks. Dropping the executor shuts
/// it down: every live task is cancelled with [`CancelReason::Shutdown`](crate::CancelReason::Shutdown), its future is
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
    workers: OnceLock<Vec<Unparker>>,
    pub(crate) timers: Timers,
    timer_wake: Sender<()>,
    /// Workers and the timer thread exit once this is set and they run out of work.
    stopping: AtomicBool,
    shutdown: ShutdownRequest,
    /// Threads parked in `block_on`, unparked by a shutdown so they can notice it.
    blocked: Mutex<Vec<Unparker>>,
    /// Each worker's LIFO slot, by worker index.
    slots: Box<[LifoSlot<TaskRef>]>,
    /// `true` while an idle worker watches the others' slots (module doc, "The LIFO slot").
    watching: AtomicBool,
    /// Samples each worker's poll, when the blocking threshold is on.
    watchdog: Option<Arc<Watchdog>>,
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

    /// A worker's poll is blocking (the watchdog found it): the tasks it holds go to the
    /// others. Its slot's task goes to the injector; its deque can be stolen from, so an
    /// idle worker is woken to look, as for any push.
    fn hand_off_blocked(&self, index: usize) {
        let mut moved = false;
        if let Some(task) = self.slots[index].steal() {
            self.injector.push(task);
            moved = true;
        }
        if moved || !self.stealers[index].is_empty() {
            self.notify_one();
        }
    }

    /// Anything to run, anywhere?
    fn has_visible_work(&self, own: &Worker<TaskRef>) -> bool {
        !own.is_empty() || !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }
}

/// The timer thread: fires due timers, then blocks until the next deadline or a
/// notification that an earlier one was registered.
fn run_timers(shared: Weak<PoolShared>, wake: Receiver<()>) {
    park::precise_timeouts();
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

/// `block_on`'s loop (module `block_on`) with the pool's policy: the workers run the tasks,
/// and `block_on`'s thread only sleeps between polls of the root future.
impl block_on::Driver for Executor {
    fn shutdown_cause(&self) -> Option<TaskError> {
        self.shared.shutdown.cause().cloned()
    }

    fn park(&self, root: &block_on::RootWaker) {
        if self.shared.stopping.load(Ordering::SeqCst) {
            // Shut down: the timer thread is gone (or going), so this thread fires the
            // timers, and sleeps until the next deadline. A timer registered meanwhile
            // with an earlier deadline unparks it (the timers' notify).
            let next = self.shared.timers.fire_due();
            if root.is_woken() {
                return;
            }
            let timeout = next.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            park::park_outside_reactor(timeout);
        } else {
            // The workers wait in the reactor (with the `io` parker); this thread, which
            // runs no task, would only take it from them.
            park::park_outside_reactor(None);
        }
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
        let names = (0..n).map(|i| Some(format!("{}-{i}", builder.thread_name)));
        let watchdog = Watchdog::for_builder(builder, names.collect());
        let shared = Arc::new(PoolShared {
            // About four registry shards per worker: two workers ending tasks at the same
            // moment rarely need the same lock.
            owner: TaskOwner::new(
                builder.owner_config(sink.clone()),
                Placement::Shards((4 * n).next_power_of_two().min(64)),
            ),
            injector: Injector::new(),
            stealers,
            idle: IdleWorkers::new(n),
            workers: OnceLock::new(),
            slots: (0..n).map(|_| LifoSlot::new()).collect(),
            watching: AtomicBool::new(false),
            watchdog,
            timers: Timers::new(),
            timer_wake,
            stopping: AtomicBool::new(false),
            shutdown: ShutdownRequest::new(),
            blocked: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&shared);
        sink.set_shutdown_trigger(Box::new(move |err| {
            if let Some(shared) = weak.upgrade() {
                shared.request_shutdown(err);
            }
        }));
        if let Some(watchdog) = &shared.watchdog {
            let weak = Arc::downgrade(&shared);
            watchdog.set_hand_off(Box::new(move |index| {
                if let Some(shared) = weak.upgrade() {
                    shared.hand_off_blocked(index);
                }
            }));
            let weak = Arc::downgrade(&shared);
            watchdog.set_all_parked(Box::new(move || {
                weak.upgrade()
                    .is_some_and(|s| s.idle.all_idle(s.slots.len()))
            }));
        }
        let weak = Arc::downgrade(&shared);
        shared.timers.set_notify(Box::new(move || {
            if let Some(shared) = weak.upgrade() {
                let _ = shared.timer_wake.try_send(());
                // After a shutdown, the `block_on`s fire the timers: each recomputes the
                // deadline it sleeps until.
                if shared.stopping.load(Ordering::SeqCst) {
                    shared.unpark_blocked();
                }
            }
        }));
        if builder.manual_clock {
            shared.timers.use_manual_clock();
        }
        let mut threads = Vec::with_capacity(n + 1);
        let mut unparkers = Vec::with_capacity(n);
        for (index, deque) in deques.into_iter().enumerate() {
            let shared = shared.clone();
            let name = format!("{}-{}", builder.thread_name, index);
            let (spawned, unparker) =
                park::spawn_parkable(name, move || run_worker(shared, index, deque))
                    .expect("warden: failed to spawn a worker thread");
            threads.push(spawned);
            unparkers.push(unparker);
        }
        let _ = shared.workers.set(unparkers);
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
    /// # After a shutdown
    ///
    /// `block_on` still works after [`shutdown`](Executor::shutdown), and through one called
    /// from another thread or from a task while it runs: the root future keeps working
    /// timers until it finishes. Its [`sleep`](crate::sleep)s, [`timeout`](crate::timeout)s
    /// and group deadlines fire on time: with the timer thread gone, `block_on` fires the
    /// due timers itself and parks until the next deadline or a wake. Tasks it spawns are
    /// refused as always after a shutdown: they resolve at once to
    /// [`CancelReason::Shutdown`](crate::CancelReason::Shutdown).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let ex = warden::Builder::new().worker_threads(2).build();
    /// ex.shutdown();
    /// let start = Instant::now();
    /// ex.block_on(warden::sleep(Duration::from_millis(10)));
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from inside a task or another `block_on` on this thread, and, under
    /// [`UnhandledPolicy::Shutdown`](crate::UnhandledPolicy::Shutdown), when an unobserved
    /// failure shut the executor down: the message names the task.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _entered = context::enter(self.handle(), "block_on");
        let _blocked = BlockedGuard::register(&self.shared);
        block_on::drive(self, future)
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
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::new()
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

//! [`TaskOwner`]: the executor-side record of live tasks.
//!
//! Each executor embeds one. It keeps a strong reference to every task that has not
//! completed, so that shutdown can find (and cancel) tasks that sit idle waiting for a
//! waker nobody will ever fire; it counts tasks for [`Metrics`](crate::Metrics); and it
//! holds the error sink and backtrace setting that the harness needs when a task fails.
//!
//! Registering and forgetting a task happen once each per task, so they are on the spawn
//! path of every benchmark. Where the registry lives is the executor's choice
//! ([`Placement`]): a `LocalExecutor` keeps the tasks spawned on its own thread in a slab
//! that only that thread touches (no lock at all), and a pool spreads its tasks over
//! several locked shards by task id, so its workers seldom meet on one lock.

use crate::loom::{Arc, AtomicBool, Mutex, MutexGuard, Ordering, UnsafeCell};
use std::time::Instant;

use super::TaskRef;
use super::slab::Slab;
use super::snapshot::TaskSnapshot;
use super::timing::nanos_since;
use crate::Backtraces;
use crate::hook::{ErrorSink, ExitHookFn};
use crate::metrics::Counters;
use crate::stall::StallHookFn;
use crate::trace::Tracer;

/// The executor has shut down: no task may be added.
#[derive(Debug)]
pub(crate) struct Closed;

/// Where an executor's tasks are registered.
pub(crate) enum Placement {
    /// A `LocalExecutor`: tasks spawned on its owner thread (the thread with this
    /// [`thread_token`](super::current::thread_token)) go to a registry only that thread
    /// touches, with no lock; tasks spawned elsewhere through a `Handle` go to one locked
    /// shard.
    OwnerThread(u64),
    /// A pool: every task goes to one of this many locked shards, chosen by task id, so
    /// that workers ending different tasks rarely wait for the same lock.
    Shards(usize),
}

/// What a [`TaskOwner`] is told by the executor that embeds it: plain settings, so that
/// the task core needs nothing from the executor's builder.
pub(crate) struct OwnerConfig {
    /// Where unobserved failures go.
    pub(crate) sink: Arc<ErrorSink>,
    /// When a panicking task's backtrace is captured.
    pub(crate) backtraces: Backtraces,
    /// The outcome hook, called once per task.
    pub(crate) on_exit: Option<Arc<ExitHookFn>>,
    /// Where to write the task timeline, if anywhere (`WARDEN_TRACE` is read too).
    pub(crate) trace: Option<std::path::PathBuf>,
    /// Where stall reports go (blocking polls, lost wakers, deadlocks).
    pub(crate) on_stall: Arc<StallHookFn>,
    /// Whether a watchdog samples this owner's polls (and may read a polled task's
    /// header: see `poll_slot.rs`).
    pub(crate) watched: bool,
    /// Whether each task records its poll timing (`timing.rs`).
    pub(crate) poll_timing: bool,
}

/// Live tasks, counters, and where failures go.
pub(crate) struct TaskOwner {
    registry: Registry,
    pub(crate) metrics: Counters,
    pub(crate) sink: Arc<ErrorSink>,
    pub(crate) backtraces: Backtraces,
    /// The outcome hook, called once per task.
    pub(crate) on_exit: Option<Arc<ExitHookFn>>,
    /// The task timeline, when tracing is on.
    pub(crate) tracer: Option<Tracer>,
    /// Where stall reports go.
    pub(crate) on_stall: Arc<StallHookFn>,
    /// Whether a watchdog may read this owner's task headers: a task then waits, as it
    /// completes, until the watchdog is not reading its header (`poll_slot.rs`).
    pub(crate) watched: bool,
    /// Whether each task records its poll timing (`timing.rs`).
    pub(crate) poll_timing: bool,
    /// `tracer.is_some() || poll_timing`: the one flag that polls and wakes test.
    pub(crate) observes_polls: bool,
    /// Time zero for poll stamps and timing records.
    pub(crate) epoch: Instant,
}

/// Every live task an owner could see, from [`TaskOwner::snapshot`].
pub(crate) struct LiveTasks {
    /// In id order.
    pub(crate) tasks: Vec<TaskSnapshot>,
    /// `false` if the tasks of a local executor's owner thread were left out (the
    /// snapshot was taken on another thread).
    pub(crate) complete: bool,
}

/// The live tasks: an owner-thread slab (local executors only) and locked shards.
///
/// A task's key (in its header's `owner_key`) says where it is: the low 8 bits name the
/// shard, or [`OWNER_SLAB`], and the rest is its index there. `usize::MAX` means "never
/// registered" (refused after shutdown).
struct Registry {
    owner_slab: Option<(u64, UnsafeCell<Live>)>,
    shards: Box<[Shard]>,
    /// Set by `close`; read without a lock by owner-thread inserts and by `is_closed`.
    closed: AtomicBool,
}

/// The tag of keys in the owner-thread slab.
const OWNER_SLAB: usize = 0xFF;
const TAG_BITS: u32 = 8;
const UNREGISTERED: usize = usize::MAX;

/// One locked slab, on a cache line of its own.
#[repr(align(128))]
struct Shard(Mutex<Live>);

// SAFETY: every field but `owner_slab`'s cell is `Send + Sync`. The cell is touched only on
// the owner thread (`insert` checks the thread token; `remove` only for keys that
// `insert` made there, and a local executor ends its tasks on that thread; `close` and
// `live` are called by `LocalExecutor` methods, which run on that thread alone), so
// sharing the registry never shares the cell.
unsafe impl Send for Registry {}
// SAFETY: as for `Send` above.
unsafe impl Sync for Registry {}

/// One slab of live tasks, and whether it still takes new ones.
struct Live {
    slab: Slab<TaskRef>,
    closed: bool,
}

impl Live {
    const fn new() -> Live {
        Live {
            slab: Slab::new(),
            closed: false,
        }
    }

    /// Closes the slab and appends a reference to every live task to `out`.
    fn close_into(&mut self, out: &mut Vec<TaskRef>) {
        self.closed = true;
        out.extend(self.slab.iter().cloned());
    }
}

impl Registry {
    fn new(placement: Placement) -> Registry {
        let (owner_slab, shards) = match placement {
            Placement::OwnerThread(token) => (Some((token, UnsafeCell::new(Live::new()))), 1),
            Placement::Shards(n) => (None, n.clamp(1, OWNER_SLAB)),
        };
        Registry {
            owner_slab,
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(Live::new())))
                .collect(),
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the owner-thread slab.
    ///
    /// # Safety
    ///
    /// The caller is on the owner thread (see the `Sync` impl), and `f` does not reach
    /// this function again.
    unsafe fn with_owner_slab<R>(&self, f: impl FnOnce(&mut Live) -> R) -> Option<R> {
        let (_, cell) = self.owner_slab.as_ref()?;
        // SAFETY: the caller is on the owner thread, the only thread that touches the
        // cell, and no call is nested in another: this is the only reference.
        Some(cell.with_mut(|slab| f(unsafe { &mut *slab })))
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Live> {
        // The lock is never held while user code runs, so poisoning cannot happen; if it
        // somehow did, the data is still consistent (every update is a single step).
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl TaskOwner {
    pub(crate) fn new(config: OwnerConfig, placement: Placement) -> TaskOwner {
        let tracer = Tracer::from_config(config.trace.as_deref());
        TaskOwner {
            registry: Registry::new(placement),
            metrics: Counters::new(),
            sink: config.sink,
            backtraces: config.backtraces,
            on_exit: config.on_exit,
            on_stall: config.on_stall,
            watched: config.watched,
            observes_polls: tracer.is_some() || config.poll_timing,
            tracer,
            poll_timing: config.poll_timing,
            epoch: Instant::now(),
        }
    }

    /// A poll clock for worker `worker`, read at `now` (see `snapshot.rs`).
    pub(crate) fn poll_clock(&self, worker: usize, now: Instant) -> super::PollClock {
        super::PollClock::new(self.epoch, worker, now)
    }

    /// A snapshot of every live task, for a dump. On any thread; a local executor's
    /// owner-thread tasks only on its owner thread (else `complete` is `false`).
    pub(crate) fn snapshot(&self) -> LiveTasks {
        let registry = &self.registry;
        // Microseconds, the poll stamps' unit.
        let now = nanos_since(self.epoch, Instant::now()) / 1_000;
        let mut tasks = Vec::new();
        let mut visit = |live: &Live| {
            let headers = live.slab.iter().map(|task| task.header());
            tasks.extend(headers.filter_map(|header| TaskSnapshot::read(header, now)));
        };
        let mut complete = true;
        if let Some((token, _)) = &registry.owner_slab {
            if *token == super::current::thread_token() {
                // SAFETY: on the owner thread (token checked). `visit` reads headers and
                // allocates, and runs no code that could insert or remove a task: it does
                // not come back here. (Nor is this nested in an insert or remove: those
                // run no user code, and a snapshot is only ever taken by user code.)
                unsafe { registry.with_owner_slab(|live| visit(live)) };
            } else {
                complete = false;
            }
        }
        for shard in 0..registry.shards.len() {
            visit(&registry.lock(shard));
        }
        tasks.sort_by_key(|task| task.id());
        LiveTasks { tasks, complete }
    }

    /// Registers a new task; fails once the owner is closed. The owner-thread case is a
    /// few instructions and is inlined into the spawn; the shards' case is a call.
    #[inline]
    pub(crate) fn insert(&self, task: &TaskRef) -> Result<(), Closed> {
        let registry = &self.registry;
        let header = task.header();
        if let Some((token, _)) = &registry.owner_slab {
            if *token == super::current::thread_token() {
                // The owner thread also does `close`, so this plain check cannot race it.
                if registry.closed.load(Ordering::Relaxed) {
                    return Err(Closed);
                }
                // SAFETY: on the owner thread (token checked), and `Slab::insert` does not
                // come back here.
                let index =
                    unsafe { registry.with_owner_slab(|live| live.slab.insert(task.clone())) }
                        .expect("an owner token comes with an owner slab");
                header
                    .owner_key
                    .store(index << TAG_BITS | OWNER_SLAB, Ordering::Relaxed);
                return Ok(());
            }
        }
        self.insert_into_shard(task)
    }

    /// [`insert`](Self::insert) for any thread but a local executor's owner.
    #[inline(never)]
    fn insert_into_shard(&self, task: &TaskRef) -> Result<(), Closed> {
        let registry = &self.registry;
        let header = task.header();
        let shard = header.info.id().as_u64() as usize % registry.shards.len();
        let mut live = registry.lock(shard);
        if live.closed {
            return Err(Closed);
        }
        let index = live.slab.insert(task.clone());
        header
            .owner_key
            .store(index << TAG_BITS | shard, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets a completed task. Returns the owner's reference, which the caller drops
    /// outside the lock.
    #[inline]
    pub(crate) fn remove(&self, task: &super::Header) -> Option<TaskRef> {
        let key = task.owner_key.load(Ordering::Relaxed);
        if key == UNREGISTERED {
            return None; // spawned after shutdown
        }
        let (index, shard) = (key >> TAG_BITS, key & OWNER_SLAB);
        if shard == OWNER_SLAB {
            // SAFETY: the key was made by an owner-thread insert, and a local executor
            // runs (and so ends) its tasks on its owner thread: we are on it.
            unsafe {
                self.registry
                    .with_owner_slab(|live| live.slab.remove(index))
            }
            .flatten()
        } else {
            self.remove_from_shard(shard, index)
        }
    }

    /// [`remove`](Self::remove) for a task registered in a shard.
    #[inline(never)]
    fn remove_from_shard(&self, shard: usize, index: usize) -> Option<TaskRef> {
        self.registry.lock(shard).slab.remove(index)
    }

    /// Refuses new tasks from now on and returns every live one, for cancellation.
    ///
    /// For a local executor, call it on the owner thread only.
    pub(crate) fn close(&self) -> Vec<TaskRef> {
        let registry = &self.registry;
        registry.closed.store(true, Ordering::Relaxed);
        let mut live = Vec::new();
        // SAFETY: a local executor closes its owner from `LocalExecutor::shutdown`, on the
        // owner thread; `close_into` does not come back here.
        unsafe { registry.with_owner_slab(|slab| slab.close_into(&mut live)) };
        // Shard by shard: an insert into a shard either comes before its close (and its
        // task is returned) or after (and is refused).
        for shard in 0..registry.shards.len() {
            registry.lock(shard).close_into(&mut live);
        }
        live
    }

    /// `true` once [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.registry.closed.load(Ordering::Relaxed)
    }

    /// How many tasks have not completed.
    ///
    /// For a local executor, call it on the owner thread only.
    pub(crate) fn live(&self) -> usize {
        let registry = &self.registry;
        // SAFETY: as for `close`: only `LocalExecutor::shutdown` asks, on the owner thread.
        let owned = unsafe { registry.with_owner_slab(|live| live.slab.len()) }.unwrap_or(0);
        owned
            + (0..registry.shards.len())
                .map(|shard| registry.lock(shard).slab.len())
                .sum::<usize>()
    }
}

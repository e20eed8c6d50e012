//! [`TaskOwner`]: the executor-side record of live tasks.
//!
//! Each executor embeds one. It keeps a strong reference to every task that has not
//! completed, so that shutdown can find (and cancel) tasks that sit idle waiting for a
//! waker nobody will ever fire; it counts tasks for [`Metrics`](crate::Metrics); and it
//! holds the error sink and backtrace setting that the harness needs when a task fails.

use crate::loom::{Arc, Mutex, MutexGuard, Ordering};

use super::TaskRef;
use crate::Backtraces;
use crate::hook::{ErrorSink, ExitHookFn};
use crate::metrics::Counters;
use crate::trace::Tracer;

/// The executor has shut down: no task may be added.
#[derive(Debug)]
pub(crate) struct Closed;

/// Live tasks, counters, and where failures go.
pub(crate) struct TaskOwner {
    live: Mutex<Slab>,
    pub(crate) metrics: Counters,
    pub(crate) sink: Arc<ErrorSink>,
    pub(crate) backtraces: Backtraces,
    /// The outcome hook, called once per task.
    pub(crate) on_exit: Option<Arc<ExitHookFn>>,
    /// The task timeline, when tracing is on.
    pub(crate) tracer: Option<Tracer>,
}

/// A vector with a free list: O(1) insert and remove by key.
struct Slab {
    entries: Vec<Entry>,
    next_free: usize,
    len: usize,
    closed: bool,
}

enum Entry {
    Occupied(TaskRef),
    Vacant(usize),
}

impl TaskOwner {
    pub(crate) fn new(builder: &crate::Builder, sink: Arc<ErrorSink>) -> TaskOwner {
        TaskOwner {
            live: Mutex::new(Slab {
                entries: Vec::new(),
                next_free: 0,
                len: 0,
                closed: false,
            }),
            metrics: Counters::new(),
            sink,
            backtraces: builder.backtraces,
            on_exit: builder.on_exit.clone(),
            tracer: Tracer::from_config(builder.trace.as_deref()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slab> {
        // The lock is never held while user code runs, so poisoning cannot happen; if it
        // somehow did, the data is still consistent (every update is a single step).
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new task; fails once the owner is closed.
    pub(crate) fn insert(&self, task: &TaskRef) -> Result<(), Closed> {
        let mut slab = self.lock();
        if slab.closed {
            return Err(Closed);
        }
        let key = slab.next_free;
        if key == slab.entries.len() {
            slab.entries.push(Entry::Occupied(task.clone()));
            slab.next_free = key + 1;
        } else {
            let Entry::Vacant(next) = slab.entries[key] else {
                unreachable!("free list points at an occupied entry")
            };
            slab.entries[key] = Entry::Occupied(task.clone());
            slab.next_free = next;
        }
        slab.len += 1;
        task.header().owner_key.store(key, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets a completed task. Returns the owner's reference, which the caller drops
    /// outside the lock.
    pub(crate) fn remove(&self, task: &super::Header) -> Option<TaskRef> {
        let key = task.owner_key.load(Ordering::Relaxed);
        let mut slab = self.lock();
        if key >= slab.entries.len() {
            return None; // never registered: spawned after shutdown
        }
        let next_free = slab.next_free;
        match std::mem::replace(&mut slab.entries[key], Entry::Vacant(next_free)) {
            Entry::Occupied(task) => {
                slab.next_free = key;
                slab.len -= 1;
                Some(task)
            }
            vacant => {
                slab.entries[key] = vacant;
                None
            }
        }
    }

    /// Refuses new tasks from now on and returns every live one, for cancellation.
    pub(crate) fn close(&self) -> Vec<TaskRef> {
        let mut slab = self.lock();
        slab.closed = true;
        slab.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Occupied(t) => Some(t.clone()),
                Entry::Vacant(_) => None,
            })
            .collect()
    }

    /// `true` once [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many tasks have not completed.
    pub(crate) fn live(&self) -> usize {
        self.lock().len
    }
}

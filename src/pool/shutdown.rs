//! Shutdown: stopping the workers, and dropping every future before `shutdown` returns.
//!
//! `shutdown` closes the task registry (new spawns resolve to `Shutdown` at once), cancels
//! every live task (which queues it), and tells the workers to stop. Workers keep running
//! tasks, which now only drop their futures, until they find no work; each hands what is
//! left in its own deque to the injector and exits. The thread that called `shutdown` joins
//! them, then runs whatever is still queued, so that every future has been dropped before
//! `shutdown` returns.
//!
//! The timer thread stops too, but the timers stay: `block_on` still runs root futures
//! after a shutdown, and from then on fires the timers itself, sleeping until the next
//! deadline. `begin_shutdown` unparks every `block_on` so that one asleep waiting for the
//! timer thread takes over. The timers are dropped with the executor.

use crate::loom::{Arc, JoinHandle as ThreadHandle, Ordering, spawn_thread};
use crate::park::{self, Unparker};
use std::thread;

use super::worker::steal_retrying;
use super::{Executor, PoolShared};
use crate::block_on;
use crate::context;
use crate::failure::{CancelReason, TaskError};
use crate::handle::{Flavor, Handle};
use crate::task;

impl PoolShared {
    /// Starts a shutdown without waiting for it: closes the registry, cancels every live
    /// task, and tells workers to stop. Safe to call from any thread, including a worker.
    pub(super) fn begin_shutdown(&self) {
        // Two phases: every live task's cancel flag is set before any is queued, so that
        // no task (say, woken by a cancelled task's destructor) runs on after shutdown.
        task::cancel_all(self.owner.close(), CancelReason::Shutdown);
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.timer_wake.try_send(());
        self.notify_all();
        // The timer thread stops now. Every `block_on` takes over the timers from here on
        // (see `Executor::block_on`), so each must learn of the shutdown even while it
        // sleeps waiting for the timer thread: unpark them. A `block_on` lists its thread
        // before it first reads `stopping`, under the same lock, so none is missed.
        self.unpark_blocked();
    }

    pub(super) fn request_shutdown(&self, cause: &TaskError) {
        self.shutdown.record(cause);
        // This unparks every `block_on`, which then sees the flag and panics.
        self.begin_shutdown();
    }

    /// Unparks every thread in `block_on`.
    pub(super) fn unpark_blocked(&self) {
        for thread in self
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            thread.unpark();
        }
    }
}

/// Lists the current thread in `PoolShared::blocked` while `block_on` runs.
pub(super) struct BlockedGuard<'a> {
    shared: &'a PoolShared,
    thread: Unparker,
}

impl<'a> BlockedGuard<'a> {
    pub(super) fn register(shared: &'a PoolShared) -> BlockedGuard<'a> {
        let thread = park::current();
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
        if let Some(pos) = blocked
            .iter()
            .position(|t| park::same_thread(t, &self.thread))
        {
            blocked.swap_remove(pos);
        }
    }
}

impl Executor {
    /// Shuts the executor down: refuses new tasks (they resolve to
    /// [`CancelReason::Shutdown`] at once), cancels every live task with
    /// [`CancelReason::Shutdown`], drops every future (destructors run) and joins the
    /// workers, all before it returns. Calling it again does nothing.
    ///
    /// The timers stay: a [`block_on`](Executor::block_on) running on another thread goes
    /// on, and so does one started later; its root future's timers keep firing until it
    /// finishes (that `block_on` fires them, as the timer thread has stopped). The timer
    /// queue is emptied when the executor is dropped.
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
    // No worker polls any more: the watchdog has nothing left to watch.
    if let Some(watchdog) = &shared.watchdog {
        watchdog.stop();
    }
    let _current = context::set_current(Handle {
        flavor: Flavor::Pool(shared.clone()),
    });
    // The timers stay: a `block_on` running now, or started later, still fires them (see
    // `Executor::block_on`). Dropping the executor empties them.
    block_on::drain(
        &shared.owner,
        || steal_retrying(|| shared.injector.steal()),
        |again| shared.injector.push(again),
        thread::yield_now,
    );
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
                finish_shutdown(&shared, threads);
                shared.timers.clear();
            });
            if let Err(err) = reaper {
                crate::report::error!("could not start the shutdown thread: {err}");
            }
        } else {
            self.shutdown();
            // No `block_on` can be running any more (it borrows the executor): nobody will
            // fire the timers again.
            self.shared.timers.clear();
        }
    }
}

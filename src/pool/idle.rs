//! The idle list, and parking: why no wake-up is lost.
//!
//! A worker that finds nothing announces itself idle (pushes its index on the idle list
//! and increments its count), issues a `SeqCst` fence, and looks at every queue once
//! more before it parks. A thread that pushes a task issues a `SeqCst` fence after the
//! push and then reads the count; if a worker is idle, it pops it off the list and
//! unparks it. The two fences order the two sides: either the pusher's read sees the
//! worker's announcement (and unparks it), or the worker's second look sees the task.
//! `park`/`unpark` use a token, so an unpark that comes before the `park` is not lost.
//! An idle pool therefore sleeps in `park` with no timer ticking: no CPU. (A watcher's park
//! ends after `WATCH` even if nobody unparks it; returning early never loses a wake-up.)
//!
//! Unparking costs a system call, so a pusher wakes nobody while a worker it (or another
//! pusher) woke is still *searching*: that worker is on its way to the queues. When it
//! finds a task it stops searching, and if it was the last searcher it notifies once, as a
//! pusher would, for the pushes that skipped; when it finds nothing it stops searching
//! *before* its fenced last look, so a push that skipped because of it is either seen by
//! that look or was made after the count dropped (and then wakes someone itself). This is
//! tokio's scheme; `loom_push_skipped_while_a_worker_searches` checks it.
//!

use crate::loom::{AtomicUsize, Mutex, Ordering, fence};

/// The idle list and the parking protocol (module doc, "Parking"), apart from the queues
/// so that a loom model can check it on its own.
pub(super) struct IdleWorkers {
    list: Mutex<Vec<usize>>,
    count: AtomicUsize,
    /// Workers taken off the list by `take_one` that have neither found a task nor gone
    /// back to sleep yet ("Parking" in the module doc).
    searching: AtomicUsize,
}

impl IdleWorkers {
    pub(super) fn new(capacity: usize) -> IdleWorkers {
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
    pub(super) fn take_one(&self) -> Option<usize> {
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
    pub(super) fn end_search(&self) -> bool {
        self.searching.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// The worker's half: announce, stop searching, fence, look again with `has_work`, and
    /// `park` only if it found nothing; then leave the list if nobody took us off it (we
    /// found work, or woke spuriously). Returns `true` if a pusher took us off the list:
    /// we are searching now. (The worker runs the two halves, `announce` and `leave`, as
    /// steps of its loop; the loom model runs them through this function.)
    #[cfg(all(test, loom))]
    pub(super) fn sleep(
        &self,
        index: usize,
        searching: bool,
        has_work: impl FnOnce() -> bool,
        park: impl FnOnce(),
    ) -> bool {
        self.announce(index, searching);
        if !has_work() {
            park();
        }
        self.leave(index)
    }

    /// The first half of `sleep`, for a worker whose park is a turn of its
    /// loop (module `park`): announce, stop searching, fence. The caller then looks again
    /// for work, parks only if it found none, and calls `leave`.
    pub(super) fn announce(&self, index: usize, searching: bool) {
        {
            let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
            list.push(index);
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        if searching {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
    }

    /// The second half of `sleep`: leave the list if nobody took us off it.
    /// Returns `true` if a pusher took us off the list: we are searching now.
    pub(super) fn leave(&self, index: usize) -> bool {
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

    /// `true` if all `workers` are on the idle list (`SeqCst`: the watchdog's doze check).
    pub(super) fn all_idle(&self, workers: usize) -> bool {
        self.count.load(Ordering::SeqCst) == workers
    }

    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
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

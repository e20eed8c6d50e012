//! One worker thread: find a task, run it, park when there is none; and the wake path
//! that puts a task where a worker finds it.

use crate::loom::{Arc, Ordering};
use crate::park::{self, Turn};
use std::cell::RefCell;

use crossbeam_deque::{Steal, Worker};

use super::lifo_slot::LifoSlot;
use super::{INJECTOR_INTERVAL, PoolShared, WATCH};
use crate::context;
use crate::handle::{Flavor, Handle};
use crate::run_next::Streak;
use crate::task::{Poller, Schedule, TaskOwner, TaskRef, TimerKey};
use std::task::Waker;
use std::time::{Duration, Instant};

/// A worker reads the clock for its poll stamps once every this many turns of its loop
/// (and after each park): often enough that a stamp is at most this many short polls old,
/// seldom enough that the read is noise beside the polls (docs/performance.md).
const CLOCK_INTERVAL: u32 = 64;

crate::loom::thread_local! {
    /// On a worker thread: which pool it belongs to (by address) and its own deque.
    static LOCAL: RefCell<Option<LocalQueue>> = RefCell::new(None);
}

struct LocalQueue {
    pool: *const PoolShared,
    /// This worker's index: its slot is `slots[index]`, which only this thread fills or
    /// empties (`LifoSlot`'s owner).
    index: usize,
    deque: Worker<TaskRef>,
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
                    let task = task.take().expect("the task is still here");
                    // SAFETY: this thread is worker `q.index` of this pool (its `LOCAL`
                    // says so), the owner of that slot.
                    match unsafe { self.slots[q.index].put(task) } {
                        Some(displaced) => q.deque.push(displaced),
                        None => filled_empty_slot = true,
                    }
                }
            }
        });
        match task {
            Some(task) => self.injector.push(task),
            // Into this worker's own queues: if it is parked in the I/O reactor (this wake
            // came from the I/O it dispatches there), it must stop waiting and run the task.
            None => park::woke_locally(),
        }
        if !filled_empty_slot {
            self.notify_one();
        }
    }

    fn owner(&self) -> &TaskOwner {
        &self.owner
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

    /// Yes: freeing many blocks that another thread allocated, two workers at once, slowed
    /// a cancel-and-join down (measured in docs/performance.md, round two).
    fn cancelling_thread_frees_blocks(&self) -> bool {
        true
    }
}

impl PoolShared {
    /// `true` on one of this pool's worker threads.
    pub(super) fn is_worker_thread(&self) -> bool {
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
pub(super) fn run_worker(shared: Arc<PoolShared>, index: usize, deque: Worker<TaskRef>) {
    LOCAL.with(|local| {
        *local.borrow_mut() = Some(LocalQueue {
            pool: Arc::as_ptr(&shared),
            index,
            deque,
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
        // SAFETY: this is worker `index`, the slot's owner.
        if let Some(task) = unsafe { shared.slots[index].take() } {
            shared.injector.push(task);
        }
        while let Some(task) = local.deque.pop() {
            shared.injector.push(task);
        }
    }
    drop(entered);
}

/// The worker's loop: find a task, run it, park when there is none, until the pool stops.
/// The loop runs in turns: a turn runs tasks until there is none, then asks
/// `park::run_turns` to park the thread (the park is the thread's to do, so that with the
/// `io` parker it can wait in the reactor without leaving it between parks); with the `io`
/// parker, a turn also ends every `INJECTOR_INTERVAL` pops, for a look at the reactor.
fn work(shared: &PoolShared, index: usize, own: &LocalQueue) {
    let slot = &shared.slots[index];
    let mut pops: u32 = 0;
    let mut victim = index;
    let mut lifo_streak = Streak::default();
    let mut searching = false;
    // The other workers' poll marks, as this worker saw them when it began a watch.
    let mut marks = vec![0; shared.slots.len()];
    let poll_slot = shared.watchdog.as_ref().map(|w| w.slot(index));
    let polls = shared.owner.metrics.poll_counter();
    // The poll stamp each task gets before its poll, for dumps (see task/snapshot.rs).
    let mut clock = shared.owner.poll_clock(index, Instant::now());
    // `Some` between a `Turn::Park` and the next turn: whether that park is a watch.
    let mut parked: Option<bool> = None;
    let run = |task: TaskRef, pops: u32, stamp: u64| {
        // A relaxed store to a line that only this worker writes: what a watcher reads.
        slot.poll_mark.store(pops as usize, Ordering::Relaxed);
        let poller = Poller::with_counter(&shared.owner, poll_slot, stamp, polls);
        if let Some(again) = task.run(&poller) {
            // Woken during its own poll: to the back of our deque, never the LIFO slot. No
            // idle worker is woken: the number of runnable tasks did not grow, and this
            // worker looks at its deque next.
            own.deque.push(again);
        }
    };
    park::run_turns(|| {
        if let Some(watched) = parked.take() {
            let stolen;
            (searching, stolen) = end_park(shared, index, watched, &marks);
            clock.set(Instant::now());
            if let Some(task) = stolen {
                // Taken from a stuck worker's slot. Now busy, this worker no longer watches:
                // another idle worker, if any, takes over (as when a searcher finds work).
                shared.notify_one();
                pops = pops.wrapping_add(1);
                run(task, pops, clock.stamp());
            }
        }
        loop {
            pops = pops.wrapping_add(1);
            if pops % CLOCK_INTERVAL == 0 {
                clock.set(Instant::now());
            }
            if let Some(task) = find_task(shared, own, slot, pops, &mut victim, &mut lifo_streak) {
                if searching {
                    searching = false;
                    if shared.idle.end_search() {
                        shared.notify_one();
                    }
                }
                run(task, pops, clock.stamp());
                if park::POLLS_IO && pops % INJECTOR_INTERVAL == 0 {
                    // The thread looks at the reactor between turns (module `park`).
                    return Turn::Again;
                }
                continue;
            }
            if shared.stopping.load(Ordering::SeqCst) {
                if searching {
                    shared.idle.end_search();
                }
                return Turn::Exit;
            }
            match begin_park(shared, own, index, searching, &mut marks) {
                None => searching = leave_idle(shared, index),
                Some(watch) => {
                    parked = Some(watch);
                    return Turn::Park(watch.then_some(WATCH));
                }
            }
        }
    });
}

/// LIFO slot (`slot`, this worker's own), own deque, injector, then stealing; the injector
/// first every `INJECTOR_INTERVAL` pops, and the LIFO slot at most `run_next::MAX_STREAK` times
/// in a row. (Other workers' slots are left to the watch: see `park_worker`.)
fn find_task(
    shared: &PoolShared,
    local: &LocalQueue,
    slot: &LifoSlot<TaskRef>,
    pops: u32,
    victim: &mut usize,
    lifo_streak: &mut Streak,
) -> Option<TaskRef> {
    let own = &local.deque;
    if pops % INJECTOR_INTERVAL == 0 {
        if let Some(task) = steal_retrying(|| shared.injector.steal_batch_and_pop(own)) {
            lifo_streak.reset();
            return Some(task);
        }
    }
    // SAFETY: `slot` is this worker's own slot (`work` passes `slots[index]`), and this is
    // that worker's thread.
    if let Some(task) = unsafe { slot.take() } {
        if lifo_streak.allow_next() {
            return Some(task);
        }
        // Streak over: the slot's task waits its turn at the back of the deque. It is
        // stealable there, so an idle worker may take it.
        own.push(task);
        shared.notify_one();
    }
    lifo_streak.reset();
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

pub(super) fn steal_retrying(mut steal: impl FnMut() -> Steal<TaskRef>) -> Option<TaskRef> {
    loop {
        match steal() {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

/// The first half of a park (the worker's half of the protocol, `IdleWorkers::sleep`):
/// announce, then look for work once more. Returns `None` if there is work after all (the
/// caller leaves the idle list), else whether the park is a watch (module doc, "The LIFO
/// slot"): while another worker is busy (not on the idle list), one idle worker watches,
/// parking for `WATCH` instead of until woken.
fn begin_park(
    shared: &PoolShared,
    own: &LocalQueue,
    index: usize,
    searching: bool,
    marks: &mut [usize],
) -> Option<bool> {
    shared.idle.announce(index, searching);
    // The slot is empty here (`find_task` just took what it held), but parking must not
    // depend on that: look anyway.
    if shared.stopping.load(Ordering::SeqCst)
        || shared.has_visible_work(&own.deque)
        || !shared.slots[index].is_empty()
    {
        return None;
    }
    let n = shared.slots.len();
    let watch = n > 1
        && shared.idle.len() < n
        && shared
            .watching
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
    if watch {
        for (mark, slot) in marks.iter_mut().zip(shared.slots.iter()) {
            *mark = slot.poll_mark.load(Ordering::Relaxed);
        }
    }
    Some(watch)
}

/// Leaves the idle list (`IdleWorkers::leave`), and wakes the watchdog if it dozes: it
/// dozes only while every worker is on the list. Returns whether the worker is searching.
fn leave_idle(shared: &PoolShared, index: usize) -> bool {
    let searching = shared.idle.leave(index);
    if let Some(watchdog) = &shared.watchdog {
        watchdog.polling_thread_woke();
    }
    searching
}

/// The second half of a park: leave the idle list. Returns whether the worker is searching
/// now (see `IdleWorkers::sleep`), and a task it took from another worker's slot, if its
/// park was a watch that found that worker in the same poll as when the watch began.
fn end_park(
    shared: &PoolShared,
    index: usize,
    watched: bool,
    marks: &[usize],
) -> (bool, Option<TaskRef>) {
    if watched {
        shared.watching.store(false, Ordering::Release);
    }
    let searching = leave_idle(shared, index);
    // Woken by a pusher (`searching`): there is work to look for first.
    if !watched || searching {
        return (searching, None);
    }
    let stolen = shared.slots.iter().enumerate().find_map(|(v, slot)| {
        let stuck =
            v != index && !slot.is_empty() && slot.poll_mark.load(Ordering::Relaxed) == marks[v];
        if stuck { slot.steal() } else { None }
    });
    (searching, stolen)
}

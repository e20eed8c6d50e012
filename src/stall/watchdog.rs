//! The watchdog: a thread that samples each polling thread's [`PollSlot`] and reports a
//! poll that has run for the blocking threshold, while it still runs.
//!
//! It wakes every quarter of the threshold (at most every millisecond), looks at one word
//! per polling thread, and sleeps again: between samples it costs nothing, and a poll pays
//! two plain stores and a load (`PollSlot`). While every polling thread is parked
//! (the executor is idle) it *dozes*: it parks with no timeout, and the first polling
//! thread to wake up unparks it ([`Watchdog::polling_thread_woke`]). Both sides store
//! their flag, then read the other's, all `SeqCst`: either the watchdog sees a thread
//! awake and does not doze, or that thread sees the watchdog dozing and unparks it (a
//! park token makes an unpark that comes first count). It holds its executor's watchdog
//! weakly, so it never keeps an executor alive, and nobody joins it: when the executor goes
//! it is told to stop and exits at its next wake-up, without delaying the shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::{Stall, StallHookFn, StallKind, call_hook};
use crate::task::PollSlot;

/// What an executor does for a thread found blocking (a pool hands the thread's queued
/// work to the other workers). Given the slot's index.
pub(crate) type HandOff = Box<dyn Fn(usize) + Send + Sync>;

/// One executor's watchdog: the slots it samples and where reports go.
pub(crate) struct Watchdog {
    slots: Box<[PollSlot]>,
    threshold: Duration,
    hook: Arc<StallHookFn>,
    hand_off: OnceLock<HandOff>,
    /// `true` when every polling thread is parked (read `SeqCst`, after `dozing` is set).
    all_parked: OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
    /// The watchdog is parked until a polling thread wakes up.
    dozing: AtomicBool,
    stop: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Watchdog {
    /// Starts a watchdog over one slot per name in `threads` (the polling threads' names).
    pub(crate) fn start(
        threshold: Duration,
        hook: Arc<StallHookFn>,
        threads: Vec<Option<String>>,
        name: String,
    ) -> Arc<Watchdog> {
        let watchdog = Arc::new(Watchdog {
            slots: threads.into_iter().map(PollSlot::new).collect(),
            threshold,
            hook,
            hand_off: OnceLock::new(),
            all_parked: OnceLock::new(),
            dozing: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            thread: OnceLock::new(),
        });
        let weak = Arc::downgrade(&watchdog);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || watch(weak, threshold));
        match spawned {
            Ok(handle) => {
                let _ = watchdog.thread.set(handle.thread().clone());
            }
            Err(e) => crate::report::warning!(
                "could not start the watchdog thread ({e}); blocking polls will not be reported"
            ),
        }
        watchdog
    }

    /// Starts a watchdog for an executor built by `builder` whose polling threads are
    /// named `threads`, if the builder's blocking threshold is on.
    pub(crate) fn for_builder(
        builder: &crate::Builder,
        threads: Vec<Option<String>>,
    ) -> Option<Arc<Watchdog>> {
        let threshold = builder.blocking_threshold?;
        let name = format!("{}-watchdog", builder.thread_name);
        Some(Watchdog::start(
            threshold,
            builder.stall_hook(),
            threads,
            name,
        ))
    }

    /// The slot of polling thread `index`.
    pub(crate) fn slot(&self, index: usize) -> &PollSlot {
        &self.slots[index]
    }

    /// Sets what to do for a thread found blocking (once).
    pub(crate) fn set_hand_off(&self, hand_off: HandOff) {
        let _ = self.hand_off.set(hand_off);
    }

    /// Sets how to tell that every polling thread is parked (once). Without it, the
    /// watchdog never dozes.
    pub(crate) fn set_all_parked(&self, all_parked: Box<dyn Fn() -> bool + Send + Sync>) {
        let _ = self.all_parked.set(all_parked);
    }

    /// A polling thread has just stopped being parked (after clearing what `all_parked`
    /// reads, `SeqCst`): wakes the watchdog if it dozes.
    #[inline]
    pub(crate) fn polling_thread_woke(&self) {
        if self.dozing.load(Ordering::SeqCst) && self.dozing.swap(false, Ordering::SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }

    /// After a sample: doze if every polling thread is parked (module doc).
    fn should_doze(&self) -> bool {
        let Some(all_parked) = self.all_parked.get() else {
            return false;
        };
        if !all_parked() {
            return false;
        }
        self.dozing.store(true, Ordering::SeqCst);
        if all_parked() {
            return true;
        }
        self.dozing.store(false, Ordering::SeqCst);
        false
    }

    /// Tells the thread to exit at once; does not wait for it.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn sample(&self, seen_at: &mut [Option<Instant>]) {
        let now = Instant::now();
        for (index, (slot, seen)) in self.slots.iter().zip(seen_at).enumerate() {
            if let Some(ended) = slot.take_unfinished() {
                // A reported poll ended without its poller seeing the report (`PollSlot`).
                let kind = StallKind::Blocking {
                    elapsed: ended.elapsed,
                    finished: true,
                };
                let stall = Stall::new(ended.task, kind, slot.thread_name().map(Into::into));
                call_hook(&*self.hook, &stall);
            }
            if let Some(blocking) = slot.sample(seen, self.threshold, now) {
                if let Some(hand_off) = self.hand_off.get() {
                    hand_off(index);
                }
                let kind = StallKind::Blocking {
                    elapsed: blocking.elapsed,
                    finished: false,
                };
                let stall = Stall::new(blocking.task, kind, slot.thread_name().map(Into::into));
                call_hook(&*self.hook, &stall);
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The watchdog thread's loop.
fn watch(watchdog: Weak<Watchdog>, threshold: Duration) {
    // Here, off every poller's path: it may block for milliseconds, once per process.
    crate::task::prepare_watchdog();
    let period = (threshold / 4).max(Duration::from_millis(1));
    let mut seen_at = Vec::new();
    loop {
        let doze = {
            let Some(watchdog) = watchdog.upgrade() else {
                return;
            };
            if watchdog.stop.load(Ordering::Acquire) {
                return;
            }
            seen_at.resize(watchdog.slots.len(), None);
            watchdog.sample(&mut seen_at);
            watchdog.should_doze()
        };
        if doze {
            // No poll runs; a polling thread that wakes (or `stop`) unparks us.
            std::thread::park();
        } else {
            std::thread::park_timeout(period);
        }
    }
}

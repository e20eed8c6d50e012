//! [`PollSlot`]: which task a polling thread is in, for a watchdog to sample.
//!
//! The polling thread stores the address of the task's header when a poll begins and
//! takes it out when the poll returns: two plain stores per poll (and a load), no clock,
//! no read-modify-write. A watchdog thread samples the slot. The first time it sees a poll
//! it marks it `SEEN` and notes the time; when it sees the same mark again after the
//! threshold, the poll has not returned since (a new poll would have overwritten the
//! mark), so it is blocking.
//!
//! To name the task, the watchdog must read its header while the poller may be finishing
//! the poll, after which the task may be freed. A task's block is freed only after the
//! task has completed ([`wait_unread`] runs in `Task::finish`, before the completing thread
//! lets go of its reference), so the guard sits at completion, once per task, not at every
//! poll:
//!
//! * the watchdog publishes the header it is about to read in [`READING`] (`SeqCst`), runs
//!   the heavy side of a store-load barrier pair, then loads the slot again: only if it
//!   still holds the same poll does it read;
//! * a completing task, after its poll has emptied the slot, runs the light side of the
//!   pair and then looks at [`READING`]: while its own header is there, it waits.
//!
//! Either the watchdog's second look sees the emptied slot (and reads nothing), or the
//! completing task sees its header published (and waits for the read to end): the two
//! barriers cannot both miss. The pair is two `SeqCst` fences, or, where Linux's
//! `membarrier` is available, a compiler fence on the completing side and a barrier the
//! kernel runs on every thread on the watchdog's (`asymmetric_fence.rs`): the cost moves
//! from every completing task to the rare read. That holds when the task
//! completes on another thread than the poll that blocked, too, since the poll's store
//! happens before that thread's fence. One watchdog reads at a time, process-wide
//! ([`READER`]), so one word is enough.
//!
//! The poll's end is a load and a store: if the watchdog had reported the poll
//! (`REPORTED`), the poller reports its end; if the watchdog sets `REPORTED` between that
//! load and store, the store erases the flag and the watchdog reports the end itself at
//! its next sample (it still holds the report, [`PollSlot::take_unfinished`]).

use crate::loom::{Mutex, Ordering};
use std::sync::atomic::AtomicPtr;
use std::time::{Duration, Instant};

use super::{Header, TaskInfo, asymmetric_fence};

/// The watchdog has seen this poll (and noted when).
const SEEN: usize = 1;
/// The poll was reported as blocking: the poller reports its end.
const REPORTED: usize = 2;
const FLAGS: usize = SEEN | REPORTED;

const _: () = assert!(std::mem::align_of::<Header>() > FLAGS);

/// The header a watchdog is reading, or null (module doc).
static READING: AtomicPtr<Header> = AtomicPtr::new(std::ptr::null_mut());

/// Held by the watchdog that publishes in [`READING`]: one reader at a time.
static READER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Readies the barrier pair of the guard (module doc) for this process. The watchdog
/// thread calls it as it starts: it may block for milliseconds, once per process.
pub(crate) fn prepare_watchdog() {
    let _asymmetric = asymmetric_fence::prepare();
}

/// Called by a task as it completes, before its completing thread lets go of it, when a
/// watchdog may read its header: waits while a watchdog reads it (module doc).
#[inline]
pub(crate) fn wait_unread(header: &Header) {
    asymmetric_fence::light();
    while READING.load(Ordering::SeqCst) == as_ptr(header) {
        std::thread::yield_now();
    }
}

/// One polling thread's slot (module doc).
pub(crate) struct PollSlot {
    /// The polled task's header, with the flags above in its low bits (it is aligned to
    /// more than they need), or null between polls.
    current: AtomicPtr<Header>,
    /// The reported poll's task and when the watchdog first saw it; written by the
    /// watchdog under its claim, taken by the poller when the poll ends.
    reported: Mutex<Option<(TaskInfo, Instant)>>,
    /// The polling thread's name, for reports.
    thread_name: Option<String>,
}

/// A poll the watchdog found blocking.
pub(crate) struct Blocking {
    pub(crate) task: TaskInfo,
    pub(crate) elapsed: Duration,
}

impl PollSlot {
    pub(crate) fn new(thread_name: Option<String>) -> PollSlot {
        PollSlot {
            current: AtomicPtr::new(std::ptr::null_mut()),
            reported: Mutex::new(None),
            thread_name,
        }
    }

    /// The polling thread's name.
    pub(crate) fn thread_name(&self) -> Option<&str> {
        self.thread_name.as_deref()
    }

    /// A poll of the task with `header` begins. Polling thread only.
    #[inline]
    pub(crate) fn begin(&self, header: &Header) {
        // Release: a watchdog that reads the address (acquire) sees the header's contents.
        self.current.store(as_ptr(header), Ordering::Release);
    }

    /// The poll begun with [`begin`](Self::begin) returned: empties the slot. `true` if
    /// the watchdog had not reported the poll; otherwise the caller reports its end with
    /// [`end_reported`](Self::end_reported).
    #[inline]
    pub(crate) fn end(&self) -> bool {
        // Only this thread stores a poll here; the watchdog only adds flags. A flag added
        // between this load and the store below is erased by it: `SEEN` harmlessly (the
        // next poll is a new one), `REPORTED` with the report left for the watchdog
        // (module doc).
        let now = self.current.load(Ordering::Relaxed);
        self.current.store(std::ptr::null_mut(), Ordering::Release);
        now.addr() & REPORTED == 0
    }

    /// After [`end`](Self::end) answered `false`: the reported poll's task and the poll's
    /// length since the watchdog first saw it, unless the watchdog took the report first.
    #[cold]
    #[inline(never)]
    pub(crate) fn end_reported(&self) -> Option<Blocking> {
        let (task, since) = self
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some(Blocking {
            task,
            elapsed: since.elapsed(),
        })
    }

    /// The watchdog's look for a reported poll that has ended without its poller
    /// reporting the end (the poller's store erased `REPORTED`): takes the report.
    pub(crate) fn take_unfinished(&self) -> Option<Blocking> {
        let current = self.current.load(Ordering::Acquire);
        if current.addr() & REPORTED != 0 {
            return None; // still running, or its poller will report the end
        }
        self.end_reported()
    }

    /// The watchdog's sample. `seen_at` is the watchdog's own note for this slot. Returns
    /// the task if its poll has run for `threshold` since the watchdog first saw it, and
    /// was not reported yet.
    pub(crate) fn sample(
        &self,
        seen_at: &mut Option<Instant>,
        threshold: Duration,
        now: Instant,
    ) -> Option<Blocking> {
        let current = self.current.load(Ordering::Acquire);
        if current.is_null() {
            *seen_at = None;
            return None;
        }
        if current.addr() & SEEN == 0 {
            // A poll not seen before (a new poll overwrites the flags).
            if self
                .current
                .compare_exchange(
                    current,
                    with_flags(current, SEEN),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                *seen_at = Some(now);
            }
            return None;
        }
        if current.addr() & REPORTED != 0 {
            return None;
        }
        let since = *seen_at.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed < threshold {
            return None;
        }
        let header = current.map_addr(|address| address & !FLAGS);
        let task = {
            let _reader = READER.lock().unwrap_or_else(|e| e.into_inner());
            READING.store(header, Ordering::SeqCst);
            let fenced = asymmetric_fence::heavy();
            let task = if fenced && self.current.load(Ordering::SeqCst) == current {
                // SAFETY: the slot still holds this poll after `READING` was published
                // (and the barrier pair ran), so the task had not completed when the slot
                // was read:
                // its poll empties the slot before the task can complete, and completing
                // runs `wait_unread`, which waits while `READING` holds this header. The
                // block cannot be freed before the task completes and its completing
                // thread lets go of it (module doc): the header is alive until `READING`
                // is cleared below.
                Some(unsafe { (*header).info.clone() })
            } else {
                None
            };
            READING.store(std::ptr::null_mut(), Ordering::SeqCst);
            task
        }?;
        *self.reported.lock().unwrap_or_else(|e| e.into_inner()) = Some((task.clone(), since));
        // If the poll ended meanwhile, the flag is not set and the watchdog reports the end
        // at its next sample (`take_unfinished`).
        let _ = self.current.compare_exchange(
            current,
            with_flags(current, REPORTED),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        Some(Blocking { task, elapsed })
    }
}

/// The pointer a poll stores: the header's address, no flags.
#[inline]
fn as_ptr(header: &Header) -> *mut Header {
    (header as *const Header).cast_mut()
}

/// `pointer` with `flags` set in its low bits (same provenance).
fn with_flags(pointer: *mut Header, flags: usize) -> *mut Header {
    pointer.map_addr(|address| address | flags)
}

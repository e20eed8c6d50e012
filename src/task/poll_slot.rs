//! [`PollSlot`]: which task a polling thread is in, for a watchdog to sample.
//!
//! The polling thread stores the address of the task's header when a poll begins and
//! takes it out when the poll returns: a store and a compare-exchange per poll, no clock.
//! A watchdog thread samples the slot. The first time it sees a poll it marks it `SEEN`
//! and notes the time; when it sees the same mark again after the threshold, the poll has
//! not returned since (a new poll would have overwritten the mark), so it is blocking.
//!
//! To name the task, the watchdog must read its header while the poller may be finishing
//! the poll, after which the task may be freed. So it claims the slot first (`READING`,
//! a compare-exchange that fails if the poll has ended) and the poller, whose own
//! compare-exchange at the end of the poll then fails, waits for the claim to go before
//! it lets go of the task. The claim lasts for a clone of the task's [`TaskInfo`].

use crate::loom::{Mutex, Ordering};
use std::sync::atomic::AtomicPtr;
use std::time::{Duration, Instant};

use super::{Header, TaskInfo};

/// The watchdog has seen this poll (and noted when).
const SEEN: usize = 1;
/// The watchdog is reading the header: the poller waits before it lets go of the task.
const READING: usize = 2;
/// The poll was reported as blocking: the poller reports its end.
const REPORTED: usize = 4;
const FLAGS: usize = SEEN | READING | REPORTED;

const _: () = assert!(std::mem::align_of::<Header>() > FLAGS);

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

    /// The poll begun with [`begin`](Self::begin) returned. `true` if the watchdog never
    /// marked it; otherwise the caller must call [`end_watched`](Self::end_watched) before
    /// it lets go of the task.
    #[inline]
    pub(crate) fn end(&self, header: &Header) -> bool {
        self.current
            .compare_exchange(
                as_ptr(header),
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// [`end`](Self::end) for a poll the watchdog has marked: waits for a claim to go,
    /// then empties the slot. If the watchdog reported the poll, returns the task and the
    /// poll's length since the watchdog first saw it.
    #[cold]
    #[inline(never)]
    pub(crate) fn end_watched(&self) -> Option<Blocking> {
        loop {
            let now = self.current.load(Ordering::Acquire);
            if now.addr() & READING != 0 {
                std::thread::yield_now();
                continue;
            }
            if self
                .current
                .compare_exchange(
                    now,
                    std::ptr::null_mut(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                continue; // the watchdog claimed it meanwhile
            }
            if now.addr() & REPORTED == 0 {
                return None;
            }
            let (task, since) = self
                .reported
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()?;
            return Some(Blocking {
                task,
                elapsed: since.elapsed(),
            });
        }
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
        self.current
            .compare_exchange(
                current,
                with_flags(current, READING),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        let header = current.map_addr(|address| address & !FLAGS);
        // SAFETY: the claim succeeded, so the poll that stored this address has not ended
        // (its `end` would have replaced the word), and its poller holds a reference to the
        // task until it has seen `READING` go (`end_watched`): the header is alive.
        let task = unsafe { (*header).info.clone() };
        *self.reported.lock().unwrap_or_else(|e| e.into_inner()) = Some((task.clone(), since));
        self.current
            .store(with_flags(current, REPORTED), Ordering::Release);
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

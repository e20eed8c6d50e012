//! Optimisation: a task's cancel reason packed into one word, measured in docs/performance.md,
//! "What changed, and what it bought" (item 4) and "Round six: cancellation in one place".
//!
//! The plain version is a `Mutex<Option<CancelReason>>`: lock, store if empty; lock,
//! clone. This one is a single atomic word, so cancelling a task with a reason that carries
//! no data allocates nothing and takes no lock, and the header stays small.

use crate::loom::{AtomicUsize, Ordering};

use crate::failure::CancelReason;

/// A task's cancel reason: set at most once (the first reason wins), read many times.
///
/// One word. The reasons that carry no data (all but `Explicit(Some(_))` and
/// `SiblingFailed(_)`) are stored as small codes, so cancelling a task with one of them
/// allocates nothing; the others are boxed, and the word holds the box's address. A heap
/// address of a `CancelReason` is a multiple of its alignment (8), so it never equals a
/// code (1 to 6), and 0 means "not set".
pub(crate) struct CancelSlot {
    word: AtomicUsize,
}

const EXPLICIT: usize = 1;
const DEADLINE: usize = 2;
const PARENT_CANCELLED: usize = 3;
const GROUP_DROPPED: usize = 4;
const SHUTDOWN: usize = 5;
const LOST_WAKER: usize = 6;
const LAST_CODE: usize = LOST_WAKER;

const _: () = assert!(std::mem::align_of::<CancelReason>() > LAST_CODE);

impl CancelSlot {
    pub(crate) fn new() -> CancelSlot {
        CancelSlot {
            word: AtomicUsize::new(0),
        }
    }

    /// Stores `reason` unless a reason is already there. Returns whether it was stored.
    pub(crate) fn set(&self, reason: CancelReason) -> bool {
        let word = match reason {
            CancelReason::Explicit(None) => EXPLICIT,
            CancelReason::Deadline => DEADLINE,
            CancelReason::ParentCancelled => PARENT_CANCELLED,
            CancelReason::GroupDropped => GROUP_DROPPED,
            CancelReason::Shutdown => SHUTDOWN,
            CancelReason::LostWaker => LOST_WAKER,
            boxed => {
                // Already set: do not allocate for a reason that would lose anyway.
                if self.word.load(Ordering::Acquire) != 0 {
                    return false;
                }
                Box::into_raw(Box::new(boxed)) as usize
            }
        };
        // Release: a reader that sees the word (Acquire) sees the box's contents.
        match self
            .word
            .compare_exchange(0, word, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                if word > LAST_CODE {
                    // SAFETY: `word` came from `Box::into_raw` just above and was never
                    // published (the exchange failed), so this is its only owner.
                    drop(unsafe { Box::from_raw(word as *mut CancelReason) });
                }
                false
            }
        }
    }

    /// The reason, if one was set.
    pub(crate) fn get(&self) -> Option<CancelReason> {
        match self.word.load(Ordering::Acquire) {
            0 => None,
            EXPLICIT => Some(CancelReason::Explicit(None)),
            DEADLINE => Some(CancelReason::Deadline),
            PARENT_CANCELLED => Some(CancelReason::ParentCancelled),
            GROUP_DROPPED => Some(CancelReason::GroupDropped),
            SHUTDOWN => Some(CancelReason::Shutdown),
            LOST_WAKER => Some(CancelReason::LostWaker),
            // SAFETY: a word above the codes is the address of a box that `set` published
            // (the Acquire load pairs with its release, so the contents are visible), and
            // the box is freed only in `drop`, which cannot run while `&self` is borrowed.
            boxed => Some(unsafe { (*(boxed as *const CancelReason)).clone() }),
        }
    }
}

impl Drop for CancelSlot {
    fn drop(&mut self) {
        let word = self.word.load(Ordering::Acquire);
        if word > LAST_CODE {
            // SAFETY: `&mut self`: nobody else can read the word any more, and a word above
            // the codes is a box published by `set`, owned by this slot.
            drop(unsafe { Box::from_raw(word as *mut CancelReason) });
        }
    }
}

//! Optimisation: the fence pair of the watchdog's read guard (`poll_slot.rs`), asymmetric
//! where the kernel can make it so.
//!
//! The guard is a handshake in which each side stores, then loads what the other side
//! stored: a completing task empties its poll slot and then looks at `READING`; the
//! watchdog publishes `READING` and then looks at the slot. Each side needs a full fence
//! between its store and its load (a store-load barrier), or both could miss the other.
//! With a `SeqCst` fence on both sides, every completing task pays for one, although the
//! watchdog reads a header only for a poll that has blocked for the threshold.
//!
//! Linux's `membarrier(2)` moves that cost to the rare side. [`heavy`] asks the kernel to
//! run a full memory barrier on every thread of the process that is running (one that is
//! not has passed through the scheduler, which is one): it acts as a `SeqCst` fence placed
//! in each of them at that moment. Against it, the frequent side needs only to keep the
//! compiler from moving its load above its store: [`light`], a compiler fence. Either the
//! frequent side's load comes after the barrier point in its thread (and sees the rare
//! side's store, made before [`heavy`]), or its store came before that point (and the rare
//! side's load, made after [`heavy`] returned, sees it).
//!
//! The process must register for expedited barriers first, which can take the kernel
//! milliseconds (it waits for a grace period): the rare side does that, once per process,
//! in [`prepare`] (the watchdog thread calls it as it starts), never a poller. Until the
//! registration has succeeded, [`light`] is a `SeqCst` fence; after, a compiler fence.
//! [`heavy`] decides the mode (registering if nobody did yet) before it acts, so it never
//! acts symmetric once any [`light`] has acted asymmetric: the flag [`light`] reads is set
//! inside the one-time decision, before the decision becomes visible to [`heavy`]. Where
//! the kernel refuses (Linux before 4.14, another OS, Miri, loom), both sides are `SeqCst`
//! fences.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering, compiler_fence, fence};

/// Whether this process uses `membarrier`: decided once, by the first [`prepare`] or
/// [`heavy`].
static DECIDED: OnceLock<bool> = OnceLock::new();
/// Set (to `true`) inside that decision when it is `true`: what [`light`] reads.
static LIGHT_IS_ENOUGH: AtomicBool = AtomicBool::new(false);

/// Decides the mode, registering with the kernel if this is the first call (which may
/// block for milliseconds: never call it from a poller). Returns whether it is asymmetric.
pub(crate) fn prepare() -> bool {
    *DECIDED.get_or_init(|| {
        let registered = membarrier::register();
        if registered {
            LIGHT_IS_ENOUGH.store(true, Ordering::SeqCst);
        }
        registered
    })
}

/// The frequent side's store-load barrier.
#[inline]
pub(crate) fn light() {
    if LIGHT_IS_ENOUGH.load(Ordering::Acquire) {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The rare side's store-load barrier, against every thread's [`light`]. Returns whether
/// it holds: `false` only if the kernel refused a barrier it had registered the process
/// for, which it documents as impossible; the caller must then act as if it had not
/// published its store.
#[must_use]
pub(crate) fn heavy() -> bool {
    // A `SeqCst` fence in any case: it orders this thread's own accesses, and it is all
    // the symmetric mode needs.
    fence(Ordering::SeqCst);
    !prepare() || membarrier::expedited()
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(loom)
))]
mod membarrier {
    use std::ffi::{c_int, c_long};

    /// The `membarrier` system call's number.
    #[cfg(target_arch = "x86_64")]
    const SYS_MEMBARRIER: c_long = 324;
    #[cfg(target_arch = "aarch64")]
    const SYS_MEMBARRIER: c_long = 283;
    /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` from `<linux/membarrier.h>`.
    const PRIVATE_EXPEDITED: c_int = 1 << 3;
    /// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
    const REGISTER_PRIVATE_EXPEDITED: c_int = 1 << 4;

    unsafe extern "C" {
        // The C library's `syscall`, which std links already on Linux.
        fn syscall(number: c_long, ...) -> c_long;
    }

    /// Registers the process for expedited barriers; `true` if the kernel accepted.
    pub(super) fn register() -> bool {
        // SAFETY: `membarrier(REGISTER_PRIVATE_EXPEDITED, 0)` takes two integers, reads and
        // writes no memory of ours, and only records in the kernel that this process will
        // ask for expedited barriers. It fails with an error code (never undefined
        // behaviour) on a kernel without it.
        unsafe { syscall(SYS_MEMBARRIER, REGISTER_PRIVATE_EXPEDITED, 0 as c_int) == 0 }
    }

    /// A full memory barrier on every running thread of the process; `true` if the
    /// kernel ran it.
    pub(super) fn expedited() -> bool {
        // SAFETY: as for `register`: two integers, no memory of ours. The process is
        // registered (`register` returned `true`, the only way here).
        unsafe { syscall(SYS_MEMBARRIER, PRIVATE_EXPEDITED, 0 as c_int) == 0 }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(loom)
)))]
mod membarrier {
    /// No `membarrier` here: the symmetric mode.
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn expedited() -> bool {
        unreachable!("membarrier is never registered on this target")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_sides_run_in_either_mode() {
        // Whatever mode this machine gets, the two sides run without failing, repeatedly,
        // before and after the decision, and the decision does not change.
        super::light();
        let mode = super::prepare();
        for _ in 0..3 {
            super::light();
            assert!(super::heavy());
            assert_eq!(super::prepare(), mode);
        }
        assert_eq!(super::LIGHT_IS_ENOUGH.load(super::Ordering::SeqCst), mode);
    }
}

//! The synchronisation primitives warden is built on: `std`'s normally, loom's under
//! `--cfg loom`, so that loom's model checker sees every atomic, lock, cell access and
//! park of the task core, the queues, the parker, the group flags and the failure slot.
//!
//! Only `Arc` stays `std`'s in both builds: tasks are `Arc<dyn RawTask>` (unsized coercion,
//! which loom's `Arc` cannot do) and wakers come from `futures_task::ArcWake`. Loom models
//! count drops instead to check that tasks are freed.
//!
//! Run the models with
//! `RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom`.

#![allow(unused_imports, dead_code)]

pub(crate) use std::sync::{Arc, Weak};

#[cfg(not(all(loom, test)))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    pub(crate) use std::sync::{Mutex, MutexGuard, OnceLock};
    pub(crate) use std::thread::{JoinHandle, Thread, current, park, park_timeout};

    /// Starts a named thread.
    pub(crate) fn spawn_thread<F>(name: String, f: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        std::thread::Builder::new().name(name).spawn(f)
    }

    /// `std::cell::UnsafeCell` with loom's closure-based API, so that loom can track each
    /// access.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Gives `f` a raw pointer to the value, for a mutable access.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(all(loom, test))]
mod imp {
    pub(crate) use ::loom::cell::UnsafeCell;
    pub(crate) use ::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    pub(crate) use ::loom::sync::{Mutex, MutexGuard};
    pub(crate) use ::loom::thread::{JoinHandle, Thread, current, park};

    /// Starts a model thread (loom's threads have no names).
    pub(crate) fn spawn_thread<F>(_name: String, f: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        Ok(::loom::thread::spawn(f))
    }

    /// Loom has no timed park; a model never depends on the timeout.
    pub(crate) fn park_timeout(_: std::time::Duration) {
        park();
    }

    /// `std::sync::OnceLock` with a loom atomic in front, so the model sees the
    /// publication of the value (a release store) and its reading (an acquire load).
    #[derive(Debug)]
    pub(crate) struct OnceLock<T> {
        published: AtomicBool,
        value: std::sync::OnceLock<T>,
    }

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> OnceLock<T> {
            OnceLock {
                published: AtomicBool::new(false),
                value: std::sync::OnceLock::new(),
            }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            if self.published.load(Ordering::Acquire) {
                self.value.get()
            } else {
                None
            }
        }

        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            self.value.set(value)?;
            self.published.store(true, Ordering::Release);
            Ok(())
        }
    }
}

pub(crate) use imp::*;

/// `thread_local!` that becomes loom's under `--cfg loom` (loom's macro has no `const {}`
/// form, so the initialiser is written plainly).
macro_rules! warden_thread_local {
    ($($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;)+) => {
        #[cfg(not(all(loom, test)))]
        std::thread_local! {
            $($(#[$attr])* static $name: $t = const { $init };)+
        }
        #[cfg(all(loom, test))]
        ::loom::thread_local! {
            $($(#[$attr])* static $name: $t = $init;)+
        }
    };
}
pub(crate) use warden_thread_local as thread_local;

//! [`ManualClock`]: time that moves only when a test moves it.
//!
//! An executor built with [`Builder::manual_clock`](crate::Builder::manual_clock) reads
//! "now" from a `ManualClock` instead of [`Instant::now`]: [`sleep`](crate::sleep),
//! [`timeout`](crate::timeout), group deadlines and a [`Supervisor`](crate::Supervisor)'s
//! intensity period and backoff all follow it. The clock is an `Instant` taken when the
//! executor was built plus an offset that only [`advance`](ManualClock::advance) changes,
//! so the `Instant`-based API ([`sleep_until`](crate::sleep_until), deadlines,
//! [`Restarted::at`](crate::Restarted::at)) works unchanged.
//!
//! This is tokio's `start_paused` without the auto-advance: time never moves by itself, not
//! even when every task is waiting. A test decides when a deadline passes, so restart,
//! backoff and timeout behaviour is tested without real time and without flakiness.
//!
//! How it is wired (the rest is in `src/time.rs`):
//!
//! * the clock shares the executor's timer map (`Timers`) and holds it weakly (the
//!   executor owns the timers, the timers own the clock);
//! * `advance` moves the offset, then fires every timer that came due, outside the map's
//!   lock; the wakers queue their tasks, and that wakes a parked executor;
//! * `Timers::fire_due` returns no deadline to park until, so the drivers park until
//!   woken and never spin;
//! * a timer registered concurrently with an `advance`, after it fired, is caught by the
//!   driver: an earliest registration notifies it, and it fires what is due by the clock.
//!
//! `ex.clock()` is defined here, for both executors, rather than in `local.rs` and
//! `pool.rs`: it is one line each, and it keeps the clock in one place.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::time::TimerMap;
use crate::{Executor, LocalExecutor};

/// `true` once any manual clock was created in this process: until then, reading "now"
/// for a `sleep` skips looking up the current executor.
static ANY_MANUAL_CLOCK: AtomicBool = AtomicBool::new(false);

#[inline]
pub(crate) fn any_manual_clock() -> bool {
    ANY_MANUAL_CLOCK.load(Ordering::Relaxed)
}

/// A clock that moves only when it is told to: the time of an executor built with
/// [`Builder::manual_clock`](crate::Builder::manual_clock), for tests.
///
/// Get it with [`LocalExecutor::clock`] or [`Executor::clock`]. It is cheap to clone and
/// can be sent to any thread; every clone is the same clock. [`now`](ManualClock::now)
/// starts at the moment the executor was built and moves forward only by
/// [`advance`](ManualClock::advance), which fires every timer that came due.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ex = warden::Builder::new().manual_clock().build_local();
/// let clock = ex.clock().expect("built with a manual clock");
/// let nap = ex.spawn(warden::sleep(Duration::from_secs(3600)));
/// ex.run_until_idle();
/// assert!(!nap.is_finished()); // time has not moved
///
/// clock.advance(Duration::from_secs(3600)); // an hour passes at once
/// ex.run_until_idle();
/// assert!(nap.is_finished());
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    base: Instant,
    /// How far the clock was advanced. A lock, not an atomic: `advance` must publish the
    /// new time before it fires, and the two `advance`s of two threads add up.
    offset: Mutex<Duration>,
    /// The executor's timers; gone once the executor is.
    timers: Weak<TimerMap>,
}

/// How far a clock can be advanced: about a hundred years, well inside what `Instant`
/// can hold on every platform.
const MAX_OFFSET: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 100);

impl ManualClock {
    pub(crate) fn new(timers: Weak<TimerMap>) -> ManualClock {
        ANY_MANUAL_CLOCK.store(true, Ordering::Relaxed);
        ManualClock {
            inner: Arc::new(ClockInner {
                base: Instant::now(),
                offset: Mutex::new(Duration::ZERO),
                timers,
            }),
        }
    }

    fn offset(&self) -> Duration {
        *self.inner.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock's time: the moment its executor was built, plus every
    /// [`advance`](ManualClock::advance) so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new().manual_clock().build_local();
    /// let clock = ex.clock().unwrap();
    /// let before = clock.now();
    /// std::thread::sleep(Duration::from_millis(2)); // real time does not count
    /// assert_eq!(clock.now(), before);
    /// clock.advance(Duration::from_millis(250));
    /// assert_eq!(clock.now() - before, Duration::from_millis(250));
    /// ```
    pub fn now(&self) -> Instant {
        self.inner.base + self.offset()
    }

    /// How far the clock has been advanced since its executor was built.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new().manual_clock().build_local();
    /// let clock = ex.clock().unwrap();
    /// clock.advance(Duration::from_secs(90));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(90));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.offset()
    }

    /// Moves the clock forward by `by`, then wakes every timer that is due by the new time
    /// ([`sleep`](crate::sleep)s, [`timeout`](crate::timeout)s, group deadlines, a
    /// supervisor's backoff), in deadline order. The woken tasks run when the executor is
    /// next driven; a parked executor is woken by them.
    ///
    /// Advancing in several small steps wakes the timers step by step: a task woken by one
    /// step can register a new timer that a later step fires. The clock saturates at about
    /// a hundred years past its start. Advancing after the executor is gone only moves the
    /// time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new().manual_clock().build_local();
    /// let clock = ex.clock().unwrap();
    /// let slow = ex.spawn(warden::timeout(
    ///     Duration::from_secs(5),
    ///     std::future::pending::<()>(),
    /// ));
    /// ex.run_until_idle();
    /// clock.advance(Duration::from_secs(4));
    /// ex.run_until_idle();
    /// assert!(!slow.is_finished());
    /// clock.advance(Duration::from_secs(1));
    /// ex.run_until_idle();
    /// assert!(ex.block_on(slow).unwrap().is_err()); // timed out, at exactly 5 s
    /// ```
    pub fn advance(&self, by: Duration) {
        let now = {
            let mut offset = self.inner.offset.lock().unwrap_or_else(|e| e.into_inner());
            *offset = offset.saturating_add(by).min(MAX_OFFSET);
            self.inner.base + *offset
        };
        if let Some(timers) = self.inner.timers.upgrade() {
            crate::time::fire_due_in(&timers, now);
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = match self.inner.offset.try_lock() {
            Ok(offset) => format!("{:?}", *offset),
            Err(_) => "<locked>".to_owned(),
        };
        f.debug_struct("ManualClock")
            .field("elapsed", &format_args!("{offset}"))
            .finish()
    }
}

impl LocalExecutor {
    /// The executor's [`ManualClock`], if it was built with
    /// [`Builder::manual_clock`](crate::Builder::manual_clock); `None` for real time.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(warden::LocalExecutor::new().clock().is_none());
    /// let ex = warden::Builder::new().manual_clock().build_local();
    /// assert!(ex.clock().is_some());
    /// ```
    pub fn clock(&self) -> Option<ManualClock> {
        self.handle().timers().manual_clock()
    }
}

impl Executor {
    /// The executor's [`ManualClock`], if it was built with
    /// [`Builder::manual_clock`](crate::Builder::manual_clock); `None` for real time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::Builder::new().worker_threads(1).manual_clock().build();
    /// let clock = ex.clock().unwrap();
    /// let nap = ex.spawn(warden::sleep(Duration::from_secs(60)));
    /// while ex.timer_count() == 0 {
    ///     std::thread::yield_now(); // until a worker has run the task and it registered
    /// }
    /// clock.advance(Duration::from_secs(60)); // from this thread
    /// ex.block_on(nap).unwrap();
    /// ```
    pub fn clock(&self) -> Option<ManualClock> {
        self.handle().timers().manual_clock()
    }
}

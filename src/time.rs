//! Time: [`sleep`], [`timeout`], and the timer queue each executor owns.
//!
//! A timer is an entry `(deadline, seq) -> Waker` in a `BTreeMap`, so the next deadline
//! is the first key. [`Sleep`] registers on its first poll and removes its entry when it
//! is dropped, so a timer whose task was cancelled, or whose `timeout` finished early,
//! leaves nothing behind.
//!
//! Who fires the timers:
//! * the [`LocalExecutor`](crate::LocalExecutor) checks them on every batch and, when idle,
//!   parks until the nearest deadline (`park_timeout`);
//! * the multi-threaded [`Executor`](crate::Executor) has one timer thread that blocks on a
//!   channel with the nearest deadline as its timeout, so an idle pool wakes a sleeping task
//!   within about a millisecond of its deadline and otherwise uses no CPU.
//!
//! A registration that moves the nearest deadline earlier notifies the driver.
//!
//! With the `io` feature, a [`Sleep`] on an executor with a real clock (so also a
//! [`timeout`]; a group's deadline stays an entry here) is none of those: it
//! is an `async_io::Timer`, fired by async-io's reactor, which the executor's idle threads
//! are waiting in anyway (module `park`). The reactor waits with the nearest deadline as its
//! timeout, so the thread that wakes at the deadline is the one that runs the task, where
//! the pool's timer thread would wake first and then wake a worker.
//!
//! An executor built with [`Builder::manual_clock`](crate::Builder::manual_clock) reads
//! "now" from its [`ManualClock`] instead of `Instant::now()` (see `src/clock.rs`): the
//! timers fire when the clock is advanced, and the drivers park until woken, never until a
//! deadline.

use crate::loom::{Arc, AtomicU64, AtomicUsize, Mutex, MutexGuard, OnceLock, Ordering};
use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::clock::ManualClock;
use crate::context;
use crate::handle::Handle;

type Key = crate::task::TimerKey;

/// An executor's timers.
pub(crate) struct Timers {
    /// Shared with the executor's [`ManualClock`], if it has one (which fires them).
    entries: Arc<TimerMap>,
    seq: AtomicU64,
    /// Tells the driver that the nearest deadline moved earlier. Set once by the executor.
    notify: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Set once, by an executor built with `Builder::manual_clock`: where "now" comes from.
    clock: OnceLock<ManualClock>,
    /// With the `io` feature: how many sleeps wait on async-io's reactor instead of in
    /// `entries` (module doc), counted by [`len`](Self::len) all the same.
    reactor_sleeps: AtomicUsize,
}

/// The registered timers, by deadline.
pub(crate) type TimerMap = Mutex<BTreeMap<Key, Waker>>;

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            entries: Arc::new(Mutex::new(BTreeMap::new())),
            seq: AtomicU64::new(0),
            notify: OnceLock::new(),
            clock: OnceLock::new(),
            reactor_sleeps: AtomicUsize::new(0),
        }
    }

    pub(crate) fn set_notify(&self, notify: Box<dyn Fn() + Send + Sync>) {
        let _ = self.notify.set(notify);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, Waker>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes these timers follow a fresh [`ManualClock`] (once, as the executor is built).
    pub(crate) fn use_manual_clock(&self) {
        let _ = self
            .clock
            .set(ManualClock::new(Arc::downgrade(&self.entries)));
    }

    /// The manual clock these timers follow, if any.
    pub(crate) fn manual_clock(&self) -> Option<ManualClock> {
        self.clock.get().cloned()
    }

    /// Now, by this executor's clock.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self.clock.get() {
            Some(clock) => clock.now(),
            None => Instant::now(),
        }
    }

    /// `now + duration` by this executor's clock; see [`deadline_after`].
    pub(crate) fn deadline_after(&self, duration: Duration) -> Instant {
        deadline_from(self.now(), duration)
    }

    /// Adds a timer; returns its key.
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> Key {
        let key = (deadline, self.seq.fetch_add(1, Ordering::Relaxed));
        let earliest = {
            let mut entries = self.lock();
            entries.insert(key, waker);
            entries.keys().next() == Some(&key)
        };
        if earliest {
            if let Some(notify) = self.notify.get() {
                notify();
            }
        }
        key
    }

    /// Replaces the waker of a registered timer. Returns `false` if it already fired.
    pub(crate) fn update(&self, key: Key, waker: &Waker) -> bool {
        match self.lock().get_mut(&key) {
            Some(slot) => {
                if !slot.will_wake(waker) {
                    *slot = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&self, key: Key) {
        let removed = self.lock().remove(&key);
        drop(removed);
    }

    /// Wakes every timer whose deadline has passed; returns the next deadline to park
    /// until, if any. Wakers are called outside the lock.
    ///
    /// With a manual clock there is none: time moves only when the clock is advanced, and
    /// `advance` fires what came due (and wakes the driver through the tasks it wakes).
    pub(crate) fn fire_due(&self) -> Option<Instant> {
        self.fire_due_at(Instant::now())
    }

    /// [`fire_due`](Self::fire_due) for a caller that has just read the real clock
    /// (`real_now`); a manual clock still reads its own time.
    pub(crate) fn fire_due_at(&self, real_now: Instant) -> Option<Instant> {
        match self.clock.get() {
            Some(clock) => {
                fire_due_in(&self.entries, clock.now());
                None
            }
            None => fire_due_in(&self.entries, real_now),
        }
    }

    /// How many timers are registered (in the queue, or waiting on the reactor).
    pub(crate) fn len(&self) -> usize {
        self.lock().len() + self.reactor_sleeps.load(Ordering::Acquire)
    }

    /// Empties the queue when its executor is dropped, after which nothing fires it: the
    /// timers already due are woken (they are owed that wake), the others dropped. Wakers
    /// are called and dropped outside the lock.
    ///
    /// Not at shutdown: a `block_on` may still be waiting on a timer then, and it fires the
    /// timers itself from then on.
    pub(crate) fn clear(&self) {
        let now = Instant::now();
        let entries = std::mem::take(&mut *self.lock());
        let mut rest = Vec::new();
        for ((deadline, _), waker) in entries {
            if deadline <= now {
                crate::failure::wake_guarded(waker);
            } else {
                rest.push(waker);
            }
        }
        drop(rest);
    }
}

/// Wakes every timer in `entries` whose deadline is at or before `now`, outside the lock;
/// returns the next deadline, if any. (For [`Timers::fire_due`] and [`ManualClock::advance`].)
pub(crate) fn fire_due_in(entries: &TimerMap, now: Instant) -> Option<Instant> {
    let mut due = Vec::new();
    let next = {
        let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(entry) = entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        entries.keys().next().map(|k| k.0)
    };
    for waker in due {
        waker.wake();
    }
    next
}

/// Now, by the clock of the executor this thread runs (the real one unless it was built
/// with [`Builder::manual_clock`](crate::Builder::manual_clock)).
#[inline]
pub(crate) fn now() -> Instant {
    if !crate::clock::any_manual_clock() {
        return Instant::now();
    }
    context::current().map_or_else(Instant::now, |handle| handle.timers().now())
}

/// A future that completes at a deadline. Created by [`sleep`] and [`sleep_until`].
///
/// It uses the timers of the executor that first polls it.
///
/// # Panics
///
/// Polling it outside a warden executor panics; the message names the line that created
/// it.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// Set for a `sleep(duration)` made outside any executor while a manual clock exists:
    /// the deadline is fixed at the first poll, by the clock of the executor that polls it
    /// (until then, `deadline` is measured from the real clock).
    relative: Option<Duration>,
    registered: Option<(Handle, Key)>,
    /// With the `io` feature, on an executor with a real clock: async-io's timer, in place
    /// of an entry in the executor's timers (module doc). Set at the first poll.
    /// (The handle is there to count it in its executor's `timer_count`.)
    #[cfg(all(feature = "io", not(loom)))]
    reactor_timer: Option<(Handle, async_io::Timer)>,
    /// Where the caller created it: a misuse found at the first poll names that line.
    created_at: &'static std::panic::Location<'static>,
}

/// Waits until `duration` has passed.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// warden::block_on(warden::sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let mut sleep = sleep_until(deadline_after(duration));
    if crate::clock::any_manual_clock() && context::current().is_none() {
        // Whose clock is not known yet: the executor that first polls it decides.
        sleep.relative = Some(duration);
    }
    sleep
}

/// `now + duration`, or about thirty years from now when that would overflow `Instant`
/// (`Duration::MAX` means "never", and must not panic).
/// (By the current executor's clock: see [`now`].)
pub(crate) fn deadline_after(duration: Duration) -> Instant {
    deadline_from(now(), duration)
}

fn deadline_from(now: Instant, duration: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    now.checked_add(duration.min(FAR_FUTURE)).unwrap_or(now)
}

/// Waits until `deadline`.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        relative: None,
        registered: None,
        #[cfg(all(feature = "io", not(loom)))]
        reactor_timer: None,
        created_at: std::panic::Location::caller(),
    }
}

impl Sleep {
    /// The instant this sleep completes at.
    ///
    /// (A `sleep(duration)` made outside any executor, in a process where an executor
    /// with a [`ManualClock`] exists, fixes its deadline at its first poll, by the clock
    /// of the executor that polls it; before that, this is measured from the real clock.)
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        #[cfg(all(feature = "io", not(loom)))]
        if let Some((_, timer)) = &mut self.reactor_timer {
            let fired = Pin::new(timer).poll(cx).is_ready();
            if fired {
                self.leave_reactor();
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        let now = match &self.registered {
            Some((handle, _)) => handle.timers().now(),
            None => {
                let now = now();
                if let Some(duration) = self.relative.take() {
                    self.deadline = deadline_from(now, duration);
                }
                now
            }
        };
        if now >= self.deadline {
            if let Some((handle, key)) = self.registered.take() {
                handle.timers().remove(key);
            }
            return Poll::Ready(());
        }
        match &self.registered {
            Some((handle, key)) => {
                if !handle.timers().update(*key, cx.waker()) {
                    // Fired, but the clock says not yet due (coarse timer): register again.
                    let handle = handle.clone();
                    let key = handle.timers().insert(self.deadline, cx.waker().clone());
                    self.registered = Some((handle, key));
                }
            }
            None => {
                let Some(handle) = context::current() else {
                    polled_outside_an_executor(self.created_at)
                };
                #[cfg(all(feature = "io", not(loom)))]
                if handle.timers().manual_clock().is_none() {
                    handle
                        .timers()
                        .reactor_sleeps
                        .fetch_add(1, Ordering::AcqRel);
                    self.reactor_timer = Some((handle, async_io::Timer::at(self.deadline)));
                    return self.poll(cx);
                }
                let key = handle.timers().insert(self.deadline, cx.waker().clone());
                self.registered = Some((handle, key));
            }
        }
        Poll::Pending
    }
}

#[cold]
fn polled_outside_an_executor(created_at: &std::panic::Location<'_>) -> ! {
    panic!(
        "warden: the sleep or timeout created at {created_at} was polled but no warden \
         executor is running on this thread. Await it inside `block_on` or a task of a \
         warden executor."
    )
}

impl Sleep {
    /// Drops its reactor timer, if any, and stops counting it.
    fn leave_reactor(&mut self) {
        #[cfg(all(feature = "io", not(loom)))]
        if let Some((handle, timer)) = self.reactor_timer.take() {
            drop(timer);
            handle
                .timers()
                .reactor_sleeps
                .fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Whether it waits on async-io's reactor (module doc).
    fn reactor_registered(&self) -> bool {
        #[cfg(all(feature = "io", not(loom)))]
        return self.reactor_timer.is_some();
        #[cfg(not(all(feature = "io", not(loom))))]
        false
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.leave_reactor();
        if let Some((handle, key)) = self.registered.take() {
            handle.timers().remove(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field(
                "registered",
                &(self.registered.is_some() || self.reactor_registered()),
            )
            .finish()
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    after: Duration,
}

impl Elapsed {
    /// How long the timeout was.
    pub fn duration(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the operation did not finish within {:?}", self.after)
    }
}

impl Error for Elapsed {}

/// A future with a time limit. Created by [`timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    /// `None` once finished or timed out: the inner future is dropped at once.
    future: Option<F>,
    sleep: Sleep,
    after: Duration,
}

/// Runs `future`, giving up after `duration`: `Ok(output)`, or `Err(Elapsed)` with the
/// inner future dropped (its destructors run) at the deadline.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let result = warden::block_on(warden::timeout(
///     Duration::from_millis(5),
///     std::future::pending::<()>(),
/// ));
/// assert!(result.is_err());
/// ```
///
/// # Panics
///
/// Polling it outside a warden executor panics; the message names the line that created
/// it.
#[track_caller]
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future: Some(future),
        sleep: sleep(duration),
        after: duration,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`: it is never moved out of `self` (only
        // dropped in place through `Pin::set`), `Timeout` has no `Unpin` impl of its own
        // that would let it move, and its `Drop` is the default. `sleep` and `after` are
        // `Unpin` and are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.future` is structurally pinned.
        let mut future = unsafe { Pin::new_unchecked(&mut this.future) };
        let Some(inner) = future.as_mut().as_pin_mut() else {
            panic!("a warden Timeout was polled after it completed");
        };
        if let Poll::Ready(output) = inner.poll(cx) {
            future.set(None);
            return Poll::Ready(Ok(output));
        }
        if Pin::new(&mut this.sleep).poll(cx).is_ready() {
            future.set(None);
            return Poll::Ready(Err(Elapsed { after: this.after }));
        }
        Poll::Pending
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("after", &self.after)
            .field("finished", &self.future.is_none())
            .finish()
    }
}

#[cfg(all(test, feature = "io", not(loom)))]
mod io_tests {
    use super::*;

    /// Polls `sleep` once, in the current task.
    async fn poll_once(sleep: &mut Sleep) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *sleep).poll(cx))).await
    }

    #[test]
    fn with_a_real_clock_a_sleep_waits_in_the_reactor() {
        let ex = crate::LocalExecutor::new();
        ex.block_on(async {
            let start = Instant::now();
            let mut sleep = sleep(Duration::from_millis(5));
            assert!(poll_once(&mut sleep).await.is_pending());
            assert!(sleep.reactor_timer.is_some() && sleep.registered.is_none());
            assert_eq!(ex.timer_count(), 1, "a reactor sleep still counts");
            sleep.await;
            assert!(start.elapsed() >= Duration::from_millis(5));
            assert_eq!(ex.timer_count(), 0);
            let mut dropped = super::sleep(Duration::from_secs(3600));
            assert!(poll_once(&mut dropped).await.is_pending());
            assert_eq!(ex.timer_count(), 1);
            drop(dropped);
            assert_eq!(ex.timer_count(), 0, "a dropped sleep leaves nothing behind");
        });
    }

    #[test]
    fn with_a_manual_clock_a_sleep_stays_in_the_executors_timers() {
        let ex = crate::Builder::new().manual_clock().build_local();
        let clock = ex.clock().expect("built with a manual clock");
        let slept = ex.spawn(async {
            let mut sleep = sleep(Duration::from_secs(3600));
            assert!(poll_once(&mut sleep).await.is_pending());
            assert!(sleep.registered.is_some() && sleep.reactor_timer.is_none());
            sleep.await;
        });
        ex.block_on(crate::yield_now());
        clock.advance(Duration::from_secs(3600));
        ex.block_on(slept)
            .expect("the sleep ends when the clock is advanced");
    }
}

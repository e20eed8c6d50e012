//! The supervisor's loop: start what is due, wait for a child to end (or a backoff to
//! pass), apply the strategy, count the restart against the intensity.
//!
//! # State
//!
//! Each child has a slot, in start order, in one of four states:
//!
//! ```text
//!                 start (due)                 ended, restart it or its set (1)
//!   Waiting(t) ---------------> Running(h) ----------------------------------> Waiting(t')
//!       ^                         |    |
//!       |  a sibling's set        |    | ended normally (Transient) (2)
//!       |  restart (3)            |    v
//!       +-------------------------|-- Ended
//!                                 |
//!                                 +--> Removed: Temporary, ended or cancelled by a set (4)
//! ```
//!
//! 1. A child that must be restarted (a failure, or a `Permanent` child ending) records a
//!    restart; its *set* (itself, all, or itself and those after it) is cancelled in
//!    reverse start order, one child at a time, and every slot of the set waits until
//!    `now + backoff` (or a later time a slot of the set already waited for), so the set
//!    starts together, in start order.
//! 2. `Ended` keeps the spec: as in OTP, a set restart starts it again (3).
//! 4. `Removed` is final.
//!
//! `run` is done when no slot is `Running` or `Waiting`.
//!
//! # Fields
//!
//! The engine is a plain struct inside the supervisor's future: only the task that polls
//! that future touches it, so nothing here is shared or locked. The children's
//! [`JoinHandle`]s are the only link to the child tasks; reading a result through one
//! observes the failure (the error hook never sees it). When the future is dropped
//! (cancelled), `Drop` cancels the children that still run, in reverse start order, with
//! `ParentCancelled`, and detaches them.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::backoff::Rng;
use super::error::{Ending, NormalExit, Restarted, SupervisorError};
use super::spec::{Entry, Start};
use super::{Config, Restart, Strategy};
use crate::context;
use crate::failure::{CancelReason, TaskError};
use crate::handle::Handle;
use crate::task::{JoinHandle, SpawnSpec, TaskId, TaskInfo};
use crate::time::{Sleep, sleep_until};

/// At most this many restarts are kept in the history (the newest): a supervisor with a
/// huge intensity must not grow without bound.
const HISTORY_CAP: usize = 1000;

/// The supervisor's future: takes the current executor at its first poll, then runs the
/// engine.
pub(super) async fn supervise<S: Start + 'static>(
    config: Config,
    entries: Vec<Entry<S>>,
    what: &'static str,
) -> Result<(), SupervisorError> {
    let handle = context::expect_current(what);
    let mut engine = Engine::new(config, entries, handle);
    engine.run().await
}

struct Engine<S> {
    config: Config,
    handle: Handle,
    /// The supervisor's own task, for the logs and the report (`None` in a `block_on`).
    me: Option<TaskId>,
    slots: Vec<Slot<S>>,
    /// When the restarts within the last period happened, oldest first (the intensity).
    window: VecDeque<Instant>,
    /// Those restarts, with their causes (at most [`HISTORY_CAP`]).
    history: VecDeque<Restarted>,
    /// Every restart, made or refused.
    restarts: u64,
    started: Instant,
    rng: Rng,
    /// The backoff timer for the earliest waiting slot.
    timer: Option<Sleep>,
}

struct Slot<S> {
    entry: Entry<S>,
    state: State,
    /// Restarts of this child so far (its `Restarted::attempt`).
    attempts: u32,
    /// When this child's restarts within the last period happened (the backoff exponent).
    recent: VecDeque<Instant>,
}

enum State {
    Running(JoinHandle<()>),
    /// To be started once the clock reaches this time.
    Waiting(Instant),
    /// Ended normally and not restarted by itself; a set restart starts it again.
    Ended,
    /// Gone for good (a `Temporary` child that ended, or was cancelled by a set restart).
    Removed,
}

enum Event {
    /// Slot `.0`'s child ended, with this result.
    Ended(usize, TaskInfo, Result<(), TaskError>),
    /// The backoff timer fired.
    Timer,
}

/// Displays " #id" for a supervisor running as a task, nothing otherwise.
struct Who(Option<TaskId>);

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, " {id}"),
            None => Ok(()),
        }
    }
}

/// Drops the times that are no longer within `period` of `now`.
fn prune(times: &mut VecDeque<Instant>, now: Instant, period: Duration) {
    while times
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= period)
    {
        times.pop_front();
    }
}

impl<S: Start> Engine<S> {
    fn new(config: Config, entries: Vec<Entry<S>>, handle: Handle) -> Engine<S> {
        let started = handle.timers().now();
        Engine {
            config,
            me: context::current_task(),
            slots: entries
                .into_iter()
                .map(|entry| Slot {
                    entry,
                    state: State::Waiting(started),
                    attempts: 0,
                    recent: VecDeque::new(),
                })
                .collect(),
            handle,
            window: VecDeque::new(),
            history: VecDeque::new(),
            restarts: 0,
            started,
            rng: Rng::new(),
            timer: None,
        }
    }

    fn now(&self) -> Instant {
        self.handle.timers().now()
    }

    async fn run(&mut self) -> Result<(), SupervisorError> {
        loop {
            self.start_due();
            let live = self
                .slots
                .iter()
                .any(|slot| matches!(slot.state, State::Running(_) | State::Waiting(_)));
            if !live {
                return Ok(());
            }
            match poll_fn(|cx| self.poll_event(cx)).await {
                Event::Timer => {}
                Event::Ended(i, info, result) => self.on_end(i, info, result).await?,
            }
        }
    }

    /// Starts every waiting child whose time has come, in start order.
    fn start_due(&mut self) {
        let now = self.now();
        for slot in &mut self.slots {
            if matches!(slot.state, State::Waiting(due) if due <= now) {
                let spec = SpawnSpec {
                    name: Some(slot.entry.name.clone()),
                    location: slot.entry.location,
                    group: None,
                    // The engine awaits every running child's handle, and cancels the
                    // children itself: a child waiting to be cancelled is no deadlock.
                    awaited_by_owner: true,
                };
                slot.state = State::Running(slot.entry.start.start(&self.handle, spec));
            }
        }
    }

    /// The next thing to react to: the first child (in start order) that ended, or the
    /// backoff timer of the earliest waiting slot.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let State::Running(handle) = &mut slot.state {
                if let Poll::Ready(result) = Pin::new(&mut *handle).poll(cx) {
                    let info = handle.info().clone();
                    // A placeholder: `on_end` decides.
                    slot.state = State::Ended;
                    return Poll::Ready(Event::Ended(i, info, result));
                }
            }
        }
        let earliest = self
            .slots
            .iter()
            .filter_map(|slot| match slot.state {
                State::Waiting(due) => Some(due),
                _ => None,
            })
            .min();
        let Some(due) = earliest else {
            self.timer = None;
            return Poll::Pending;
        };
        if self.timer.as_ref().map(Sleep::deadline) != Some(due) {
            self.timer = Some(sleep_until(due));
        }
        let timer = self.timer.as_mut().expect("set just above");
        if Pin::new(timer).poll(cx).is_ready() {
            self.timer = None;
            return Poll::Ready(Event::Timer);
        }
        Poll::Pending
    }

    /// Slot `i`'s child ended: restart it (and its set), let it go, or stop.
    async fn on_end(
        &mut self,
        i: usize,
        info: TaskInfo,
        result: Result<(), TaskError>,
    ) -> Result<(), SupervisorError> {
        let restart = self.slots[i].entry.restart;
        let cause = match result {
            Ok(()) => match restart {
                Restart::Permanent => TaskError::from_error(info, Box::new(NormalExit)),
                Restart::Transient => {
                    self.slots[i].state = State::Ended;
                    return Ok(());
                }
                Restart::Temporary => {
                    self.slots[i].state = State::Removed;
                    return Ok(());
                }
            },
            Err(err) if err.cancel_reason() == Some(&CancelReason::Shutdown) => {
                // The executor is going away: nothing to restart on.
                return Err(self.stop(Ending::Shutdown(err)).await);
            }
            Err(err) if restart == Restart::Temporary => {
                self.slots[i].state = State::Removed;
                if !err.is_cancelled() {
                    // Not restarted, so not handled: the error hook gets it, once (this
                    // read observed it, so the watch will not deliver it again).
                    self.handle.schedule_ref().owner().sink.deliver(&err);
                }
                return Ok(());
            }
            Err(err) => err,
        };
        self.restart(i, cause).await
    }

    /// Records a restart of slot `i`, then gives up or restarts its set.
    async fn restart(&mut self, i: usize, cause: TaskError) -> Result<(), SupervisorError> {
        let now = self.now();
        let period = self.config.period;
        self.restarts += 1;
        prune(&mut self.window, now, period);
        self.window.push_back(now);
        let slot = &mut self.slots[i];
        slot.attempts = slot.attempts.saturating_add(1);
        prune(&mut slot.recent, now, period);
        slot.recent.push_back(now);
        let nth = u32::try_from(slot.recent.len()).unwrap_or(u32::MAX);
        let attempt = slot.attempts;
        let name = slot.entry.name.clone();
        while self
            .history
            .front()
            .is_some_and(|r| now.saturating_duration_since(r.at) >= period)
            || self.history.len() >= HISTORY_CAP
        {
            self.history.pop_front();
        }
        let task = cause.task().id();
        self.history.push_back(Restarted {
            child: name.clone(),
            attempt,
            cause: cause.clone(),
            at: now,
        });

        if self.window.len() > self.config.intensity as usize {
            crate::report::warning!(
                "supervisor{}: child '{name}' (task {task}) ended: {} restarts within {:?}, \
                 more than the {} allowed; giving up and cancelling every child",
                Who(self.me),
                self.window.len(),
                period,
                self.config.intensity,
            );
            return Err(self.stop(Ending::GaveUp).await);
        }
        crate::report::info!(
            "supervisor{}: restarting child '{name}' (task {task}, restart {attempt}) after: {cause}",
            Who(self.me),
        );

        let n = self.slots.len();
        let set = match self.config.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..n,
            Strategy::RestForOne => i..n,
        };
        for j in set.clone().rev() {
            self.cancel_and_wait(j, CancelReason::Restart).await;
        }
        let delay = match &self.config.backoff {
            Some(backoff) => backoff.jittered(nth, &mut self.rng),
            None => Duration::ZERO,
        };
        // (A delay too long for `Instant` is capped by `checked_add`'s neighbour: the far
        // future the timers use for "never".)
        let mut due = now
            .checked_add(delay)
            .unwrap_or_else(|| self.handle.timers().deadline_after(delay));
        for slot in &self.slots[set.clone()] {
            if let State::Waiting(t) = slot.state {
                due = due.max(t);
            }
        }
        for (j, slot) in self.slots[set.clone()].iter_mut().enumerate() {
            let j = set.start + j;
            slot.state = match slot.state {
                State::Removed => State::Removed,
                _ if j != i && slot.entry.restart == Restart::Temporary => State::Removed,
                _ => State::Waiting(due),
            };
        }
        Ok(())
    }

    /// Cancels slot `j`'s child, if it runs, and waits until it has ended (its destructors
    /// have run).
    async fn cancel_and_wait(&mut self, j: usize, reason: CancelReason) {
        let State::Running(handle) = &self.slots[j].state else {
            return;
        };
        handle.cancel_for(reason);
        let result = poll_fn(|cx| match &mut self.slots[j].state {
            State::Running(handle) => Pin::new(handle).poll(cx),
            _ => unreachable!("slot {j} stops running only here"),
        })
        .await;
        self.slots[j].state = State::Ended;
        if let Err(err) = result {
            if !err.is_cancelled() {
                // It failed before the cancel reached it: the failure is read (observed)
                // here and superseded by the restart or the stop, but not silently.
                crate::report::warning!(
                    "supervisor{}: child '{}' failed while being cancelled: {err}",
                    Who(self.me),
                    self.slots[j].entry.name,
                );
            }
        }
    }

    /// Cancels every child in reverse start order, one at a time, and makes the error.
    async fn stop(&mut self, ending: Ending) -> SupervisorError {
        for j in (0..self.slots.len()).rev() {
            self.cancel_and_wait(j, CancelReason::ParentCancelled).await;
        }
        for slot in &mut self.slots {
            slot.state = State::Removed;
        }
        self.timer = None;
        SupervisorError {
            ending,
            strategy: self.config.strategy,
            supervisor: self.me,
            intensity: self.config.intensity,
            period: self.config.period,
            started: self.started,
            restarts: self.restarts,
            history: std::mem::take(&mut self.history).into(),
        }
    }
}

impl<S> Drop for Engine<S> {
    fn drop(&mut self) {
        // The supervisor was cancelled or dropped (or a factory panicked): its children go
        // with it. Their handles are detached as the slots drop; a cancelled child never
        // reaches the error hook.
        for slot in self.slots.iter().rev() {
            if let State::Running(handle) = &slot.state {
                handle.cancel_for(CancelReason::ParentCancelled);
            }
        }
    }
}

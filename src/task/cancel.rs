//! Cancellation, in one place: how a task is asked to stop, and where it stops.
//!
//! warden cancels cooperatively, at one point only: **before a poll**. A cancelled task's
//! future is never interrupted in the middle of a `poll`; the next time a thread picks the
//! task up to poll it, it drops the future instead, and the task ends
//! [`Cancelled`](crate::CancelReason) (or failed, if a destructor panicked on the way).
//!
//! A task can be asked to stop in two ways, and the thread that is about to poll it looks
//! at both (`Task::run`, in `harness.rs`: transition 2, then [`group_reason`]):
//!
//! 1. **Its own flag**: [`cancel`] and [`cancel_all`] (a handle's `cancel`, a shutdown,
//!    a group cancelling the members it knows) store a reason in the task's
//!    [`CancelSlot`] (one word: an optimisation, in `cancel_slot.rs`) and then set the
//!    `CANCELLED` bit of its state word (transition 5,
//!    which also queues an idle task, like a wake, so the stop happens promptly). The bit
//!    is seen by transition 2 itself, in the same atomic operation that takes `RUNNING`.
//! 2. **Its group's flag**: one flag for all members of a group (and, through the group,
//!    of its ancestors), read with one atomic load right after transition 2
//!    ([`GroupLink::cancel_reason`](super::GroupLink::cancel_reason)). Setting one flag stops every member at its next poll,
//!    however many there are; the group also wakes its idle members so that they get one.
//!
//! The first reason given wins: a slot that already holds one keeps it, and a group's
//! reason is only consulted while the task's own flag is clear.

pub(crate) use super::cancel_slot::CancelSlot;
use super::state::Notified;
use super::{Header, TaskRef, submit};
use crate::failure::CancelReason;

/// The cancel-at-poll check, second half: the group's flag, read right after transition 2
/// (which sees the task's own flag). One atomic load when the group is not cancelled.
#[inline(always)]
pub(super) fn group_reason(header: &Header) -> Option<CancelReason> {
    header.group.as_ref().and_then(|g| g.cancel_reason())
}

/// Requests cancellation of `task` with `reason` and wakes it, so that a poller drops its
/// future promptly. The first reason given wins.
pub(crate) fn cancel(task: &TaskRef, reason: CancelReason) {
    if request(task.header(), reason) {
        submit(&*task.header().scheduler, task.clone());
    }
}

/// Cancels every task in `tasks` with `reason`, in two phases: all cancel flags are set
/// first, then the tasks that were idle are queued. No task can be polled in between with
/// its flag still clear, whatever order they are queued (or woken by each other) in.
pub(crate) fn cancel_all(tasks: Vec<TaskRef>, reason: CancelReason) {
    let mut to_queue = Vec::new();
    for task in tasks {
        if request(task.header(), reason.clone()) {
            to_queue.push(task);
        }
    }
    for task in to_queue {
        submit(&*task.header().scheduler, task.clone());
    }
}

/// Stores `reason` (unless one is there) and sets `CANCELLED` (transition 5). Returns
/// whether the task was idle, so that the caller now owes it a place in a run queue.
pub(super) fn request(header: &Header, reason: CancelReason) -> bool {
    if header.state.load().is_complete() {
        return false;
    }
    header.cancel_reason.set(reason);
    header.state.transition_to_cancel_requested() == Notified::Submit
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins() {
        let slot = CancelSlot::new();
        assert!(slot.get().is_none());
        assert!(slot.set(CancelReason::Deadline));
        assert!(!slot.set(CancelReason::Shutdown));
        assert!(matches!(slot.get(), Some(CancelReason::Deadline)));
    }

    #[test]
    fn a_reason_with_a_message_is_kept_whole() {
        let slot = CancelSlot::new();
        assert!(slot.set(CancelReason::Explicit(Some("operator asked".into()))));
        assert!(!slot.set(CancelReason::Explicit(None)));
        match slot.get() {
            Some(CancelReason::Explicit(Some(msg))) => assert_eq!(&*msg, "operator asked"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

//! Tasks that nothing can wake: what happens when a task's last waker goes while it is
//! idle (module doc of `crate::stall`, and `waker.rs`, "Waker accounting").
//!
//! The rule, decided on the state word that the operation which made the task unreachable
//! returned (so it cannot be stale: from that state only a cancel leads anywhere):
//!
//! * in a group: nothing. The group can still cancel the task (a `pending()` member is
//!   normal: it waits for the group's cancel).
//! * a handle exists: if a task awaits it, both wait forever: a *deadlock*, reported once
//!   and left alone (the awaiting task, or whoever holds a canceller, may still cancel).
//!   A handle that nobody awaits can still cancel the task: nothing is reported.
//! * detached, in no group: nothing can ever run or cancel the task before shutdown. It
//!   is reported once as a *lost waker* and cancelled with [`CancelReason::LostWaker`], so
//!   that a poller drops its future now (destructors run) and it ends as cancelled.

use super::state::{Notified, Snapshot};
use super::{Header, TaskId, TaskRef};
use crate::failure::CancelReason;
use crate::stall::{Stall, StallKind, call_hook};

/// `task` was found unreachable; `state` is the word as the operation that found it left
/// it.
#[cold]
#[inline(never)]
pub(crate) fn unreachable(task: TaskRef, state: Snapshot) {
    let header = task.header();
    if header.group.is_some() {
        return;
    }
    if state.has_handle() {
        if state.has_join_waker() {
            check_deadlock(header);
        }
        return;
    }
    // A cancel reason already there means a cancel is under way (a shutdown, say), which
    // will free the task: nothing is lost.
    if !header.cancel_reason.set(CancelReason::LostWaker) {
        return;
    }
    // Reported once: the cancel reason is set once. (A deadlock reported before, whose
    // awaiting task then dropped the handle, is reported again, now as lost.)
    header.state.mark_stall_reported();
    report(header, StallKind::LostWaker);
    if header.state.transition_to_cancel_requested() == Notified::Submit {
        super::submit(&*header.scheduler.clone(), task);
    }
}

/// The task is unreachable and its handle has stored a waker: if a task awaits the
/// handle, report the deadlock (once).
#[cold]
#[inline(never)]
pub(crate) fn check_deadlock(header: &Header) {
    if header.group.is_some() {
        return;
    }
    let Some(awaited_by) = header.awaited_by() else {
        return; // awaited by a `block_on`, not by a task
    };
    if header.state.mark_stall_reported() {
        report(header, StallKind::Deadlock { awaited_by });
    }
}

fn report(header: &Header, kind: StallKind) {
    let stall = Stall::new(header.info.clone(), kind, None);
    call_hook(&*header.scheduler.owner().on_stall, &stall);
}

/// The id stored in a header's `awaited_by` (0 for none).
pub(crate) fn awaiting_id(id: Option<TaskId>) -> u64 {
    id.map_or(0, TaskId::as_u64)
}

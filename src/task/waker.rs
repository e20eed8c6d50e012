//! Wakers: a task's `Arc` is its waker, through `futures_task::ArcWake`.
//!
//! Waking is transition 1: if the task was idle, the waker puts it on its executor's run
//! queue; if it is being polled, it sets `SCHEDULED` so the poller re-queues it
//! (transition 4); if it is already queued or complete, the word is written back unchanged
//! (one read-modify-write; see `transition_to_notified` for why never a plain load). A
//! waker that outlives its executor finds the task complete (shutdown completes every
//! task) and does nothing.

use std::future::Future;
use std::sync::Arc;

use futures_task::ArcWake;

use super::harness::Task;
use super::state::Notified;

impl<F, T> ArcWake for Task<F, T>
where
    F: Future + 'static,
    T: 'static,
{
    fn wake(self: Arc<Self>) {
        if self.header.state.transition_to_notified() == Notified::Submit {
            // `schedule` takes the task by value; the scheduler is borrowed from the task,
            // so hand over a second reference and let this one go after.
            super::submit(&*self.header.scheduler, self.clone());
        }
    }

    fn wake_by_ref(arc_self: &Arc<Self>) {
        if arc_self.header.state.transition_to_notified() == Notified::Submit {
            super::submit(&*arc_self.header.scheduler, arc_self.clone());
        }
    }
}

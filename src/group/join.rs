//! How a group ends: [`GroupJoin`], the future of `join`, and [`GroupCanceller`], which
//! lets a member (or anyone) cancel the group that `join` consumed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{GroupInner, TaskGroup};
use crate::failure::{CancelReason, GroupError};
use crate::loom::Arc;

/// Cancels one [`TaskGroup`] from anywhere, a member of it included. Made by
/// [`TaskGroup::canceller`]; `Clone + Send + Sync`.
///
/// It holds the group's shared state, not the group: dropping it cancels nothing, and
/// cancelling after the group was joined does nothing.
#[derive(Clone)]
pub struct GroupCanceller {
    pub(super) group: Arc<GroupInner>,
}

impl GroupCanceller {
    /// Cancels every unfinished member with
    /// [`CancelReason::Explicit(None)`](CancelReason::Explicit), as
    /// [`TaskGroup::cancel`] does.
    pub fn cancel(&self) {
        self.group.cancel(CancelReason::Explicit(None));
    }

    /// Cancels every unfinished member with `Explicit(Some(reason))`, as
    /// [`TaskGroup::cancel_with`] does.
    pub fn cancel_with(&self, reason: impl Into<String>) {
        self.group
            .cancel(CancelReason::Explicit(Some(reason.into())));
    }

    /// `true` once the group was cancelled, for any reason.
    pub fn is_cancelled(&self) -> bool {
        self.group.cancelled.get().is_some()
    }
}

impl fmt::Debug for GroupCanceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCanceller")
            .field("group", &self.group.id)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future returned by [`TaskGroup::join`].
#[must_use = "futures do nothing unless awaited"]
pub struct GroupJoin {
    pub(super) group: Option<TaskGroup>,
}

impl Future for GroupJoin {
    type Output = Result<(), GroupError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let group = self
            .group
            .as_ref()
            .expect("a warden GroupJoin was polled after it completed");
        {
            let mut state = group.inner.lock();
            if !group.inner.is_done() {
                match &state.join_waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.join_waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        let group = self.group.take().expect("checked above");
        let result = group.finish();
        drop(group);
        Poll::Ready(result)
    }
}

impl fmt::Debug for GroupJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupJoin")
            .field("group", &self.group)
            .finish()
    }
}

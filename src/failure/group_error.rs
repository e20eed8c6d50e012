//! [`GroupError`]: every failure of a group, in order.

use std::error::Error;
use std::fmt;

use super::{CancelReason, TaskError};

// ---------------------------------------------------------------------------------------
// GroupError.

/// Every failure of a [`TaskGroup`](crate::TaskGroup), returned by
/// [`TaskGroup::join`](crate::TaskGroup::join): the warden spelling of asyncio's
/// `ExceptionGroup`.
///
/// It holds the failures in the order they happened, how many members were cancelled, and
/// why the group was cancelled, if it was. Its `Display` lists every failure, one per line;
/// `source()` is the first failure.
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let report = ex.block_on(async {
///     let group = warden::TaskGroup::new();
///     group.spawn_named("ok", async {}).detach();
///     group.spawn_named("bad", async { Err::<(), _>("boom") }).detach();
///     group.join().await
/// });
/// let err = report.unwrap_err();
/// assert_eq!(err.failures().len(), 1);
/// assert_eq!(err.first().unwrap().task().name(), Some("bad"));
/// ```
#[derive(Clone)]
pub struct GroupError {
    group: crate::task::GroupId,
    failures: Vec<TaskError>,
    cancelled: usize,
    reason: Option<CancelReason>,
}

impl GroupError {
    pub(crate) fn new(
        group: crate::task::GroupId,
        failures: Vec<TaskError>,
        cancelled: usize,
        reason: Option<CancelReason>,
    ) -> GroupError {
        GroupError {
            group,
            failures,
            cancelled,
            reason,
        }
    }

    /// The first failure, or `None` when the group only had cancellations (it was
    /// cancelled, or timed out, with no member failing).
    pub fn first(&self) -> Option<&TaskError> {
        self.failures.first()
    }

    /// Every failure, in the order they happened.
    pub fn failures(&self) -> &[TaskError] {
        &self.failures
    }

    /// How many members ended cancelled.
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }

    /// Why the group was cancelled, if it was.
    pub fn reason(&self) -> Option<&CancelReason> {
        self.reason.as_ref()
    }

    /// The group's id.
    pub fn group(&self) -> crate::task::GroupId {
        self.group
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len();
        write!(
            f,
            "{} failed: {} failure{}, {} cancelled",
            self.group,
            n,
            if n == 1 { "" } else { "s" },
            self.cancelled
        )?;
        match &self.reason {
            // Name the sibling whose failure cancelled the group: it is in the list below.
            Some(CancelReason::SiblingFailed(id)) => {
                match self.failures.iter().find(|e| e.task().id() == *id) {
                    Some(sibling) => write!(f, " (sibling {} failed)", sibling.task())?,
                    None => write!(f, " (sibling task {id} failed)")?,
                }
            }
            Some(reason) => write!(f, " ({reason})")?,
            None => {}
        }
        for (i, failure) in self.failures.iter().enumerate() {
            if f.alternate() {
                write!(f, "\n  {}. {:#}", i + 1, failure)?;
            } else {
                write!(f, "\n  {}. {}", i + 1, failure)?;
            }
        }
        Ok(())
    }
}

/// The same report as `Display` (`{:#?}` as `{:#}`, with backtraces), so that
/// `fn main() -> Result<(), GroupError>` and `.unwrap()` print it whole.
impl fmt::Debug for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error for GroupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.failures.first().map(|e| e as &(dyn Error + 'static))
    }
}

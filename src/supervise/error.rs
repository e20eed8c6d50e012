//! What a supervisor reports: [`Restarted`] (one restart and its cause),
//! [`SupervisorError`] (the story of a supervisor that gave up) and [`NormalExit`].

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Strategy;
use crate::{TaskError, TaskId};

/// One restart in a supervisor's history: which child, its how-manieth restart, why, and
/// when.
///
/// The cause is the child's [`TaskError`], whole: panic message, location and backtrace
/// (or its `Err`), task id and name, spawn site.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::{Child, Strategy, Supervisor};
///
/// let ex = warden::LocalExecutor::new();
/// let err = ex
///     .block_on(
///         Supervisor::new(Strategy::OneForOne)
///             .intensity(1, Duration::from_secs(60))
///             .child(Child::new("flaky", || async { Err::<(), _>("disk full") }))
///             .run(),
///     )
///     .unwrap_err();
/// let first = &err.history()[0];
/// assert_eq!(first.child(), "flaky");
/// assert_eq!(first.attempt(), 1);
/// assert_eq!(first.cause().task().name(), Some("flaky"));
/// assert!(first.cause().to_string().contains("disk full"));
/// ```
#[derive(Clone)]
pub struct Restarted {
    pub(super) child: Arc<str>,
    pub(super) attempt: u32,
    pub(super) cause: TaskError,
    pub(super) at: Instant,
}

impl Restarted {
    /// The name of the child that ended.
    pub fn child(&self) -> &str {
        &self.child
    }

    /// Which restart of this child it is: 1 for its first, counted over the supervisor's
    /// whole run.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Why: the ended child's failure. For a [`Permanent`](crate::Restart::Permanent)
    /// child that ended normally, an error holding [`NormalExit`].
    pub fn cause(&self) -> &TaskError {
        &self.cause
    }

    /// When the supervisor saw the child end and decided, by its executor's clock (a
    /// [`ManualClock`](crate::ManualClock) in tests).
    pub fn at(&self) -> Instant {
        self.at
    }
}

impl fmt::Display for Restarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "restart {} of '{}': ", self.attempt, self.child)?;
        if f.alternate() {
            write!(f, "{:#}", self.cause)
        } else {
            write!(f, "{}", self.cause)
        }
    }
}

impl fmt::Debug for Restarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Restarted")
            .field("child", &self.child)
            .field("attempt", &self.attempt)
            .field("cause", &self.cause)
            .field("at", &self.at)
            .finish()
    }
}

/// Why a supervisor stopped with an error.
#[derive(Clone)]
pub(super) enum Ending {
    /// More restarts within the period than its intensity allows.
    GaveUp,
    /// A child came back cancelled by the executor's shutdown: there is nothing to restart
    /// on. The child's error.
    Shutdown(TaskError),
}

/// A [`Supervisor`](crate::Supervisor) stopped: it gave up after more restarts than its
/// intensity allows, and cancelled its children. It holds the history of the restarts
/// that made it give up, each with its cause.
///
/// `Display` (and `Debug`, so that `main() -> Result<(), SupervisorError>` prints it)
/// tells the story: one line for the supervisor, then one per restart, oldest first, the
/// last being the failure that made it give up; the alternate form `{:#}` adds each
/// cause's backtrace. `source()` is that last failure.
///
/// It converts into [`BoxError`](crate::BoxError), so a supervisor's `run()` can be a
/// group member or the child of another supervisor: to a parent, a supervisor that gave
/// up is an ordinary failure (that is how failures escalate).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::{Child, Strategy, Supervisor};
///
/// fn unit(f: impl Future<Output = ()>) -> impl Future<Output = ()> { f }
///
/// let ex = warden::LocalExecutor::new();
/// let err = ex
///     .block_on(
///         Supervisor::new(Strategy::OneForOne)
///             .intensity(2, Duration::from_secs(10))
///             .child(Child::new("worker", || unit(async { panic!("bad input") })))
///             .run(),
///     )
///     .unwrap_err();
/// assert!(err.gave_up());
/// assert_eq!(err.history().len(), 3); // two restarts, then the one it refused
/// let report = err.to_string();
/// assert!(report.contains("gave up"));
/// assert!(report.contains("restart 3 of 'worker'"));
/// assert!(report.contains("bad input"));
/// ```
#[derive(Clone)]
pub struct SupervisorError {
    pub(super) ending: Ending,
    pub(super) strategy: Strategy,
    pub(super) supervisor: Option<TaskId>,
    pub(super) intensity: u32,
    pub(super) period: Duration,
    pub(super) started: Instant,
    pub(super) restarts: u64,
    pub(super) history: Vec<Restarted>,
}

impl SupervisorError {
    /// The restarts that led here, oldest first: those within the last intensity period
    /// (at most a thousand), the last one being the failure that made the supervisor give
    /// up (it was not carried out). After more than its intensity allows, that is
    /// intensity + 1 entries.
    pub fn history(&self) -> &[Restarted] {
        &self.history
    }

    /// `true` if the supervisor gave up because of too many restarts; `false` if it
    /// stopped because its executor shut down under it (a child came back cancelled with
    /// [`CancelReason::Shutdown`](crate::CancelReason::Shutdown)).
    pub fn gave_up(&self) -> bool {
        matches!(self.ending, Ending::GaveUp)
    }

    /// How many restarts the supervisor made or refused over its whole run, including
    /// those no longer in [`history`](SupervisorError::history).
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The failure that ended the supervisor: the last restart's cause, or the shutdown's
    /// cancellation.
    pub fn last_failure(&self) -> Option<&TaskError> {
        match &self.ending {
            Ending::GaveUp => self.history.last().map(Restarted::cause),
            Ending::Shutdown(err) => Some(err),
        }
    }

    fn write_report(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.supervisor {
            Some(id) => write!(f, "supervisor {id}")?,
            None => f.write_str("supervisor")?,
        }
        write!(
            f,
            " ({:?}, at most {} restart{} in {:?})",
            self.strategy,
            self.intensity,
            if self.intensity == 1 { "" } else { "s" },
            self.period
        )?;
        match &self.ending {
            Ending::GaveUp => write!(
                f,
                " gave up: {} restarts within {:?}",
                self.history.len(),
                self.period
            )?,
            Ending::Shutdown(err) => write!(f, " stopped: its executor shut down ({err})")?,
        }
        let earlier = self.restarts - self.history.len() as u64;
        if earlier > 0 {
            write!(f, "; {earlier} earlier restarts not shown")?;
        }
        let last = self.history.len();
        for (i, restarted) in self.history.iter().enumerate() {
            let offset = restarted.at.saturating_duration_since(self.started);
            write!(f, "\n  +{:.3}s ", offset.as_secs_f64())?;
            if f.alternate() {
                write!(f, "{restarted:#}")?;
            } else {
                write!(f, "{restarted}")?;
            }
            if i + 1 == last && self.gave_up() {
                f.write_str(" (not restarted: gave up)")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_report(f)
    }
}

impl fmt::Debug for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_report(f)
    }
}

impl Error for SupervisorError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.last_failure().map(|e| e as &(dyn Error + 'static))
    }
}

/// The cause a supervisor records when a [`Permanent`](crate::Restart::Permanent) child
/// ended normally and was restarted (there was no failure to record).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::supervise::NormalExit;
/// use warden::{Child, Strategy, Supervisor};
///
/// let ex = warden::LocalExecutor::new();
/// let err = ex
///     .block_on(
///         Supervisor::new(Strategy::OneForOne)
///             .intensity(0, Duration::from_secs(1))
///             .child(Child::new("oneshot", || async {})) // Permanent: ends, is restarted
///             .run(),
///     )
///     .unwrap_err();
/// assert!(err.history()[0].cause().downcast_ref::<NormalExit>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NormalExit;

impl fmt::Display for NormalExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "it ended normally, and a Permanent child is restarted whenever it ends \
             (make it Restart::Transient if it may finish)",
        )
    }
}

impl Error for NormalExit {}

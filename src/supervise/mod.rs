//! Supervision, OTP style: a [`Supervisor`] restarts the children that fail, by a
//! [`Strategy`], until they fail too often, then gives up and fails itself.
//!
//! A task group answers "one failed: stop the others and report". A supervisor answers
//! "one failed: start it again (and whatever depends on it)", and keeps a record of every
//! restart. Both are built on the same thing: a task's failure is data, whole (message,
//! location, backtrace, task id, spawn site), read from its [`JoinHandle`](crate::JoinHandle).
//!
//! * **Children.** Each [`Child`] is a name, a factory (`FnMut() -> impl Future`) and a
//!   [`Restart`] type: [`Permanent`](Restart::Permanent) (always restarted),
//!   [`Transient`](Restart::Transient) (restarted after a failure),
//!   [`Temporary`](Restart::Temporary) (never). The supervisor starts them in the order
//!   they were added (their *start order*), each as a task named after the child. A
//!   child's output is an [`Outcome`](crate::Outcome), as for group members: a panic or an
//!   `Err` is a failure.
//! * **Strategies.** When a child must be restarted: [`OneForOne`](Strategy::OneForOne)
//!   restarts it alone; [`OneForAll`](Strategy::OneForAll) cancels all the others and
//!   restarts every child; [`RestForOne`](Strategy::RestForOne) cancels the children
//!   started after it and restarts it and them. Cancellations go in reverse start order,
//!   one at a time (each child's destructors have run before the next is cancelled), with
//!   [`CancelReason::Restart`](crate::CancelReason::Restart); restarts go in start order.
//!   These cancellations are not failures and never reach the error hook.
//! * **Intensity.** More than `max_restarts` restarts within `period` and the supervisor
//!   gives up: it cancels every child (reverse start order, with
//!   [`CancelReason::ParentCancelled`](crate::CancelReason::ParentCancelled)) and `run()`
//!   returns a [`SupervisorError`] with the history. The default is OTP's: at most **1
//!   restart in 5 seconds**. It is deliberately strict: a supervisor exists to turn a
//!   transient fault into a fresh start, and a child that fails twice in a few seconds has
//!   a fault a fresh start does not cure, which the level above (or a person) should hear
//!   about soon. Raise it for children that are expected to fail now and then.
//! * **Escalation** is nesting: a supervisor's `run()` is an ordinary future whose output
//!   is a `Result`, so it can be a child of another supervisor (which restarts it, fresh,
//!   when it gives up) or a group member.
//! * **Backoff** ([`Backoff`]): optionally, wait before each restart, exponentially longer,
//!   capped, with jitter.
//! * **Ending.** `run()` returns `Ok(())` once no child is left to run (every
//!   `Transient` and `Temporary` child has ended normally, or a `Temporary` one failed);
//!   with a `Permanent` child it runs until it gives up or is cancelled. Cancelling or
//!   dropping the supervisor's future (its task, its group, a deadline) cancels the
//!   children with `ParentCancelled`.
//!
//! Nothing is lost and nothing reported twice: the supervisor reads each child's result
//! from its handle, so a failure it handles by restarting is observed (the error hook never
//! sees it); it is logged once (at `info`, target `warden`, with the child's name and task
//! id; on stderr when no logger is installed) and kept in the history; the executor's `on_task_exit` hook sees every child's
//! end, restarts included. The failure that makes it give up reaches whoever awaits
//! `run()`, inside the [`SupervisorError`], or, if nobody does, the error hook (as the
//! supervisor task's own failure). A `Temporary` child's failure, which nobody handles,
//! goes to the error hook.
//!
//! Time (the intensity period, backoff, [`Restarted::at`]) is the executor's clock: a
//! [`ManualClock`](crate::ManualClock) in tests.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use warden::{Child, Restart, Strategy, Supervisor};
//!
//! let starts = Arc::new(AtomicU32::new(0));
//! let sup = Supervisor::new(Strategy::OneForOne)
//!     .intensity(5, Duration::from_secs(10))
//!     .child(
//!         Child::new("flaky", {
//!             let starts = starts.clone();
//!             move || {
//!                 let n = starts.fetch_add(1, Ordering::SeqCst) + 1;
//!                 async move {
//!                     if n < 3 {
//!                         return Err(format!("attempt {n} failed"));
//!                     }
//!                     Ok(()) // the third attempt succeeds
//!                 }
//!             }
//!         })
//!         .restart(Restart::Transient),
//!     );
//! let ex = warden::Executor::new();
//! assert!(ex.block_on(sup.run()).is_ok());
//! assert_eq!(starts.load(Ordering::SeqCst), 3);
//! ```

mod backoff;
mod engine;
mod error;
mod spec;

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use backoff::Backoff;
pub use error::{NormalExit, Restarted, SupervisorError};
pub use spec::{AddChild, Child, ChildSet, LocalChildren, Restart, SendChildren};

/// Which children a [`Supervisor`] restarts when one of them must be restarted.
///
/// "Must be restarted" depends on the child's [`Restart`] type; a child that ends and is
/// not restarted affects nobody else.
///
/// # Examples
///
/// ```
/// use warden::{Strategy, Supervisor};
///
/// // db, cache and api depend on each other in start order: when the cache fails, the
/// // api (started after it) is restarted with it, the db is left alone.
/// let sup = Supervisor::new(Strategy::RestForOne);
/// # drop(sup.run());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Restart the child that ended, and no other (OTP's `one_for_one`).
    OneForOne,
    /// Cancel every other child (reverse start order), then restart them all in start
    /// order (`one_for_all`): for children that cannot work without each other.
    OneForAll,
    /// Cancel the children started after the one that ended (reverse start order), then
    /// restart it and them in start order (`rest_for_one`): for children that depend on
    /// those started before them.
    RestForOne,
}

/// The settings the engine runs with.
#[derive(Debug, Clone, Copy)]
struct Config {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    backoff: Option<Backoff>,
}

/// The default intensity: OTP's, at most 1 restart in 5 seconds (see the module doc).
const DEFAULT_INTENSITY: (u32, Duration) = (1, Duration::from_secs(5));

/// A set of children that it starts, watches, and restarts by a [`Strategy`], giving up
/// after too many restarts.
///
/// Build it with [`new`](Supervisor::new), [`intensity`](Supervisor::intensity),
/// [`backoff`](Supervisor::backoff) and one [`child`](Supervisor::child) call per child
/// (in start order), then await [`run`](Supervisor::run) (`Send` children, either
/// executor) or [`run_local`](Supervisor::run_local) (children that are not `Send`, on a
/// [`LocalExecutor`](crate::LocalExecutor)). The type parameter is the child list; it is
/// inferred from which of the two runs it, and you never name it, except in a type:
/// `Supervisor` is `Supervisor<SendChildren>`.
///
/// See the [module documentation](crate::supervise) for the rules.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::{Backoff, Child, Restart, Strategy, Supervisor};
///
/// let sup = Supervisor::new(Strategy::OneForOne)
///     .intensity(5, Duration::from_secs(10)) // more than 5 restarts in 10 s: give up
///     .backoff(Backoff::exponential(Duration::from_millis(1), Duration::from_millis(50)))
///     .child(Child::new("db", || async { Err::<(), _>("connection refused") }))
///     .child(Child::new("cache", || async {}).restart(Restart::Transient));
///
/// let err = warden::block_on(sup.run()).unwrap_err();
/// assert!(err.gave_up());
/// assert_eq!(err.history().len(), 6);
/// assert!(err.history().iter().all(|r| r.child() == "db"));
/// println!("{err}"); // the story, one line per restart
/// ```
pub struct Supervisor<C = SendChildren> {
    config: Config,
    children: C,
}

impl<C: ChildSet> Supervisor<C> {
    /// A supervisor with no children yet, restarting by `strategy`, with the default
    /// intensity (at most 1 restart in 5 s) and no backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// use warden::{Strategy, Supervisor};
    ///
    /// // No children: nothing to run, done at once.
    /// let sup: Supervisor = Supervisor::new(Strategy::OneForAll);
    /// assert!(warden::block_on(sup.run()).is_ok());
    /// ```
    pub fn new(strategy: Strategy) -> Supervisor<C> {
        Supervisor {
            config: Config {
                strategy,
                intensity: DEFAULT_INTENSITY.0,
                period: DEFAULT_INTENSITY.1,
                backoff: None,
            },
            children: C::empty(),
        }
    }

    /// Gives up after more than `max_restarts` restarts within any `period` (by the
    /// executor's clock). `intensity(0, ..)` gives up at the first failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden::{Child, Strategy, Supervisor};
    ///
    /// let sup = Supervisor::new(Strategy::OneForOne)
    ///     .intensity(0, Duration::from_secs(1)) // no second chance
    ///     .child(Child::new("once", || async { Err::<(), _>("no") }));
    /// let err = warden::block_on(sup.run()).unwrap_err();
    /// assert_eq!(err.history().len(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// If `period` is zero: no restart would ever be inside it.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Supervisor<C> {
        assert!(
            !period.is_zero(),
            "warden: Supervisor::intensity needs a period above zero (restarts are counted \
             within it)"
        );
        self.config.intensity = max_restarts;
        self.config.period = period;
        self
    }

    /// Waits before each restart, as `backoff` says. Without it, restarts happen at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden::{Backoff, Child, Strategy, Supervisor};
    ///
    /// let ex = warden::Builder::new().manual_clock().build_local();
    /// let clock = ex.clock().unwrap();
    /// let sup = Supervisor::new(Strategy::OneForOne)
    ///     .backoff(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30)))
    ///     .child(Child::new("slow-to-start", || async { Err::<(), _>("not yet") }));
    /// let sup = ex.spawn(sup.run());
    /// ex.run_until_idle(); // failed once; its restart waits a second of clock time
    /// assert!(!sup.is_finished());
    /// clock.advance(Duration::from_secs(2));
    /// ex.run_until_idle(); // restarted, failed again: 2 restarts in 5 s, it gives up
    /// assert!(ex.block_on(sup).unwrap().unwrap_err().gave_up());
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Supervisor<C> {
        self.config.backoff = Some(backoff);
        self
    }

    /// Adds a child; children start in the order they are added.
    ///
    /// # Examples
    ///
    /// ```
    /// use warden::{Child, Restart, Strategy, Supervisor};
    ///
    /// let sup = Supervisor::new(Strategy::RestForOne)
    ///     .child(Child::new("db", || async {}).restart(Restart::Transient))
    ///     .child(Child::new("api", || async {}).restart(Restart::Transient));
    /// assert!(format!("{sup:?}").contains(r#"children: ["db", "api"]"#));
    /// # drop(sup.run());
    /// ```
    ///
    /// # Panics
    ///
    /// If another child already has this name: the history and the logs name children,
    /// so names must tell them apart.
    pub fn child<Fac>(mut self, child: Child<Fac>) -> Supervisor<C>
    where
        C: AddChild<Fac>,
    {
        assert!(
            !self.children.names().contains(&child.name()),
            "warden: a supervisor already has a child named '{}'; give each child its own \
             name",
            child.name()
        );
        self.children.add(child);
        self
    }
}

impl Supervisor<SendChildren> {
    /// Starts the children on the current executor and supervises them: returns `Ok(())`
    /// once no child is left to run, or the [`SupervisorError`] when it gives up.
    ///
    /// The future is `Send`: spawn it, make it a group member, or the child of another
    /// supervisor. Dropping it (or cancelling its task) cancels the children with
    /// [`CancelReason::ParentCancelled`](crate::CancelReason::ParentCancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use warden::{Child, Restart, Strategy, Supervisor};
    ///
    /// let ex = warden::Executor::new();
    /// let done = ex.block_on(async {
    ///     let sup = Supervisor::new(Strategy::OneForAll)
    ///         .child(Child::new("a", || async {}).restart(Restart::Temporary))
    ///         .child(Child::new("b", || async {}).restart(Restart::Transient));
    ///     warden::spawn(sup.run()).await.unwrap()
    /// });
    /// assert!(done.is_ok()); // both ended normally; nothing left to run
    /// ```
    ///
    /// # Panics
    ///
    /// When first polled outside a warden executor. A panic in a child's factory unwinds
    /// through the supervisor (it is a bug in the supervisor's own code, not a child's
    /// failure); its children are cancelled as when it is dropped.
    ///
    /// # Errors
    ///
    /// [`SupervisorError`] when more restarts than its intensity allows happened within
    /// its period, or its executor shut down under it.
    pub fn run(self) -> impl Future<Output = Result<(), SupervisorError>> + Send + 'static {
        engine::supervise(self.config, self.children.entries, "Supervisor::run")
    }
}

impl Supervisor<LocalChildren> {
    /// As [`run`](Supervisor::run), for children that are not `Send`, on the current
    /// [`LocalExecutor`](crate::LocalExecutor).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use warden::{Child, Restart, Strategy, Supervisor};
    ///
    /// let runs = Rc::new(Cell::new(0));
    /// let sup = Supervisor::new(Strategy::OneForOne).child(
    ///     Child::new("local", {
    ///         let runs = runs.clone();
    ///         move || {
    ///             let runs = runs.clone(); // an Rc: not Send
    ///             async move { runs.set(runs.get() + 1) }
    ///         }
    ///     })
    ///     .restart(Restart::Transient),
    /// );
    /// warden::block_on(sup.run_local()).unwrap();
    /// assert_eq!(runs.get(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// When first polled anywhere but on a [`LocalExecutor`](crate::LocalExecutor) owned
    /// by this thread, and as for [`run`](Supervisor::run).
    ///
    /// # Errors
    ///
    /// As for [`run`](Supervisor::run).
    pub fn run_local(self) -> impl Future<Output = Result<(), SupervisorError>> + 'static {
        engine::supervise(self.config, self.children.entries, "Supervisor::run_local")
    }
}

impl<C: ChildSet> fmt::Debug for Supervisor<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.config.strategy)
            .field("intensity", &self.config.intensity)
            .field("period", &self.config.period)
            .field("backoff", &self.config.backoff)
            .field("children", &self.children.names())
            .finish()
    }
}

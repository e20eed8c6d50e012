//! Child specifications: [`Child`], [`Restart`], and the two child lists
//! ([`SendChildren`], [`LocalChildren`]) that keep a supervisor's factories with their
//! types erased.
//!
//! A factory is erased into "a closure that spawns the child and hands back its
//! [`JoinHandle`]": the engine (`engine.rs`) never sees a future type. The two lists differ
//! only in whether that closure, and so the supervisor, is `Send`. Which one a
//! [`Supervisor`](crate::Supervisor) uses is inferred from the call that runs it
//! (`run` or `run_local`), so `Child::new` needs no `Send` bound of its own.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use crate::BoxError;
use crate::handle::Handle;
use crate::outcome::Outcome;
use crate::task::{JoinHandle, SpawnSpec};

/// When a child is restarted after it ends.
///
/// # Examples
///
/// ```
/// use warden::{Child, Restart};
///
/// let job = Child::new("migrate", || async { Ok::<_, std::io::Error>(()) })
///     .restart(Restart::Transient); // run again only if it fails
/// assert_eq!(job.restart_type(), Restart::Transient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// Always restarted, whether it failed or ended normally (the default): a service
    /// that should run as long as its supervisor does.
    #[default]
    Permanent,
    /// Restarted only after a failure (a panic, an `Err`, or a cancellation its
    /// supervisor did not make); ending normally is final. As in OTP, a `Transient` child
    /// that has ended is started again when a sibling's failure restarts the set it
    /// belongs to ([`OneForAll`](crate::Strategy::OneForAll),
    /// [`RestForOne`](crate::Strategy::RestForOne)).
    Transient,
    /// Never restarted, and dropped from the supervisor once it ends, or once a sibling's
    /// restart cancels it. Its failure is nobody's: it goes to the executor's error hook.
    Temporary,
}

/// A child specification: a name, a factory that makes the child's future, and a
/// [`Restart`] type.
///
/// The factory is called once for every start (the first and each restart), by the
/// supervisor, in start order; the future it returns runs as a task named after the child.
/// Its output is an [`Outcome`], as for a [`TaskGroup`](crate::TaskGroup) member: `()`
/// (only a panic fails) or a `Result` (an `Err` fails too, and is the restart's cause).
///
/// # Examples
///
/// ```
/// use warden::{Child, Restart};
///
/// let db = Child::new("db", || async {
///     // connect, serve, return Err on a lost connection...
///     Ok::<(), std::io::Error>(())
/// });
/// assert_eq!(db.name(), "db");
/// assert_eq!(db.restart_type(), Restart::Permanent);
/// ```
pub struct Child<Fac> {
    pub(super) name: Arc<str>,
    pub(super) factory: Fac,
    pub(super) restart: Restart,
    pub(super) location: &'static Location<'static>,
}

impl<Fac> Child<Fac> {
    /// A [`Permanent`](Restart::Permanent) child named `name`, started by calling
    /// `factory`. Its tasks record this call as their spawn site.
    #[track_caller]
    pub fn new(name: impl Into<String>, factory: Fac) -> Child<Fac> {
        Child {
            name: Arc::from(name.into()),
            factory,
            restart: Restart::Permanent,
            location: Location::caller(),
        }
    }

    /// Sets when the child is restarted (the default is [`Restart::Permanent`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use warden::{Child, Restart};
    ///
    /// let report = Child::new("report", || async {}).restart(Restart::Temporary);
    /// assert_eq!(report.restart_type(), Restart::Temporary);
    /// ```
    pub fn restart(mut self, restart: Restart) -> Child<Fac> {
        self.restart = restart;
        self
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's restart type.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }
}

impl<Fac> fmt::Debug for Child<Fac> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("location", &format_args!("{}", self.location))
            .finish()
    }
}

/// A child as the engine keeps it: the spec with its factory erased into `S`.
pub(super) struct Entry<S> {
    pub(super) name: Arc<str>,
    pub(super) restart: Restart,
    pub(super) location: &'static Location<'static>,
    pub(super) start: S,
}

/// Starts one more instance of a child: calls its factory and spawns the future.
pub(super) trait Start {
    fn start(&mut self, handle: &Handle, spec: SpawnSpec) -> JoinHandle<()>;
}

/// Calls a `Send` child's factory and spawns what it returns.
type SendStartFn = dyn FnMut(&Handle, SpawnSpec) -> JoinHandle<()> + Send;

/// Calls a child's factory and spawns what it returns (on the owner thread).
type LocalStartFn = dyn FnMut(&Handle, SpawnSpec) -> JoinHandle<()>;

/// A `Send` child's factory, erased.
pub(super) struct SendStart(Box<SendStartFn>);

impl Start for SendStart {
    fn start(&mut self, handle: &Handle, spec: SpawnSpec) -> JoinHandle<()> {
        (self.0)(handle, spec)
    }
}

/// A factory whose futures need not be `Send`, erased.
pub(super) struct LocalStart(Box<LocalStartFn>);

impl Start for LocalStart {
    fn start(&mut self, handle: &Handle, spec: SpawnSpec) -> JoinHandle<()> {
        (self.0)(handle, spec)
    }
}

/// `finish` for children: failures as for group members; the value is dropped here, in
/// the task, so it needs no bounds.
fn finish<O: Outcome>(output: O) -> Result<(), BoxError> {
    output.into_result().map(drop)
}

/// The child list of a supervisor whose children are `Send`, run with
/// [`Supervisor::run`](crate::Supervisor::run) on either executor. This is the default:
/// `Supervisor` alone means `Supervisor<SendChildren>`.
///
/// You never build one yourself; it appears in types only.
///
/// # Examples
///
/// ```
/// use warden::supervise::SendChildren;
/// use warden::{Child, Strategy, Supervisor};
///
/// fn workers() -> Supervisor<SendChildren> { // the same type as `Supervisor`
///     Supervisor::new(Strategy::OneForOne).child(Child::new("w", || async {}))
/// }
/// # drop(workers().run());
/// ```
pub struct SendChildren {
    pub(super) entries: Vec<Entry<SendStart>>,
}

/// The child list of a supervisor whose children need not be `Send`, run with
/// [`Supervisor::run_local`](crate::Supervisor::run_local) on a
/// [`LocalExecutor`](crate::LocalExecutor).
///
/// You never build one yourself; it appears in types only.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use warden::supervise::LocalChildren;
/// use warden::{Child, Restart, Strategy, Supervisor};
///
/// fn local(state: Rc<String>) -> Supervisor<LocalChildren> {
///     Supervisor::new(Strategy::OneForOne).child(
///         Child::new("reader", move || {
///             let state = state.clone();
///             async move { assert_eq!(*state, "shared") }
///         })
///         .restart(Restart::Transient),
///     )
/// }
/// warden::block_on(local(Rc::new("shared".into())).run_local()).unwrap();
/// ```
pub struct LocalChildren {
    pub(super) entries: Vec<Entry<LocalStart>>,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::SendChildren {}
    impl Sealed for super::LocalChildren {}
}

/// What a [`Supervisor`](crate::Supervisor) keeps its children in: [`SendChildren`] or
/// [`LocalChildren`]. Sealed: only warden implements it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::supervise::ChildSet;
/// use warden::{Strategy, Supervisor};
///
/// // Settings shared by both kinds of supervisor.
/// fn strict<C: ChildSet>(sup: Supervisor<C>) -> Supervisor<C> {
///     sup.intensity(0, Duration::from_secs(1))
/// }
/// # drop(strict(Supervisor::new(Strategy::OneForOne)).run());
/// ```
pub trait ChildSet: sealed::Sealed {
    /// An empty list.
    #[doc(hidden)]
    fn empty() -> Self;

    /// The children's names, in start order.
    #[doc(hidden)]
    fn names(&self) -> Vec<&str>;
}

impl ChildSet for SendChildren {
    fn empty() -> Self {
        SendChildren {
            entries: Vec::new(),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| &*e.name).collect()
    }
}

impl ChildSet for LocalChildren {
    fn empty() -> Self {
        LocalChildren {
            entries: Vec::new(),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| &*e.name).collect()
    }
}

/// A child list that can hold a [`Child`] with factory `Fac`: [`SendChildren`] when the
/// factory and its futures are `Send`, [`LocalChildren`] always. Sealed.
///
/// # Examples
///
/// ```
/// use warden::supervise::{AddChild, ChildSet};
/// use warden::{Child, Strategy, Supervisor};
///
/// // Adds the same child to either kind of supervisor.
/// fn with_heartbeat<C, Fac>(sup: Supervisor<C>, beat: Fac) -> Supervisor<C>
/// where
///     C: ChildSet + AddChild<Fac>,
/// {
///     sup.child(Child::new("heartbeat", beat))
/// }
/// let sup = with_heartbeat(Supervisor::new(Strategy::OneForOne), || async {});
/// # drop(sup.run());
/// ```
pub trait AddChild<Fac>: ChildSet {
    /// Erases the factory and appends the child.
    #[doc(hidden)]
    fn add(&mut self, child: Child<Fac>);
}

impl<Fac, F> AddChild<Fac> for SendChildren
where
    Fac: FnMut() -> F + Send + 'static,
    F: Future + Send + 'static,
    F::Output: Outcome,
{
    fn add(&mut self, child: Child<Fac>) {
        let mut factory = child.factory;
        let start = SendStart(Box::new(move |handle: &Handle, spec: SpawnSpec| {
            handle.spawn_with(factory(), finish::<F::Output>, spec)
        }));
        self.entries.push(Entry {
            name: child.name,
            restart: child.restart,
            location: child.location,
            start,
        });
    }
}

impl<Fac, F> AddChild<Fac> for LocalChildren
where
    Fac: FnMut() -> F + 'static,
    F: Future + 'static,
    F::Output: Outcome,
{
    fn add(&mut self, child: Child<Fac>) {
        let mut factory = child.factory;
        let start = LocalStart(Box::new(move |handle: &Handle, spec: SpawnSpec| {
            handle.spawn_local_with(
                factory(),
                finish::<F::Output>,
                spec,
                "Supervisor::run_local",
            )
        }));
        self.entries.push(Entry {
            name: child.name,
            restart: child.restart,
            location: child.location,
            start,
        });
    }
}

impl fmt::Debug for SendChildren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl fmt::Debug for LocalChildren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

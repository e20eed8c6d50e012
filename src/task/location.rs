//! [`Location`]: a place in the source, as `file:line:column`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A place in the source: where a task was spawned ([`TaskInfo::spawned_at`]) or where
/// it panicked ([`TaskError::location`]).
///
/// It is warden's own type rather than [`std::panic::Location`] because a panic's location
/// is only lent to the panic hook, for the duration of the hook: warden keeps a copy. A
/// spawn site, known at compile time, costs no copy.
///
/// [`TaskInfo::spawned_at`]: crate::TaskInfo::spawned_at
/// [`TaskError::location`]: crate::TaskError::location
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let err = ex.block_on(ex.spawn(async { panic!("here") })).unwrap_err();
/// let (spawned, panicked) = (err.task().spawned_at(), err.location().unwrap());
/// assert_eq!((spawned.file(), panicked.file()), (file!(), file!()));
/// assert_eq!(spawned.line(), panicked.line());
/// assert!(spawned.column() < panicked.column());
/// ```
#[derive(Clone)]
pub struct Location {
    file: File,
    line: u32,
    column: u32,
}

/// The file's name: borrowed for the life of the program, or shared.
#[derive(Clone)]
enum File {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Location {
    /// A copy of a location the panic hook lends.
    pub(crate) fn copied(loc: &std::panic::Location<'_>) -> Location {
        Location {
            file: File::Shared(Arc::from(loc.file())),
            line: loc.line(),
            column: loc.column(),
        }
    }

    /// A location known at compile time (`#[track_caller]`): nothing is copied.
    pub(crate) fn from_static(loc: &'static std::panic::Location<'static>) -> Location {
        Location {
            file: File::Static(loc.file()),
            line: loc.line(),
            column: loc.column(),
        }
    }

    /// For a panic whose location std did not give: `<unknown>:0:0`.
    pub(crate) fn unknown() -> Location {
        Location {
            file: File::Static("<unknown>"),
            line: 0,
            column: 0,
        }
    }

    /// The source file, as `file!()` spells it.
    pub fn file(&self) -> &str {
        match &self.file {
            File::Static(file) => file,
            File::Shared(file) => file,
        }
    }

    /// The line, starting at 1.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, starting at 1.
    pub fn column(&self) -> u32 {
        self.column
    }

    fn key(&self) -> (&str, u32, u32) {
        (self.file(), self.line, self.column)
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Location) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Location {}

impl Hash for Location {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file(), self.line, self.column)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            .field("file", &self.file())
            .field("line", &self.line)
            .field("column", &self.column)
            .finish()
    }
}

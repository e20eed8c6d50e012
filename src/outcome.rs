//! [`Outcome`]: what counts as a failure for a group task.

use crate::BoxError;

/// What a [`TaskGroup`](crate::TaskGroup) member's future may return, and what counts as
/// its failure.
///
/// * `()`: only a panic fails.
/// * `Result<T, E>`: `Err(e)` fails too (with `e` boxed into the [`TaskError`](crate::TaskError),
///   where [`downcast_ref`](crate::TaskError::downcast_ref) finds it); the member's handle
///   yields `Ok(T)` otherwise.
///
/// A body that only panics has no output type of its own (Rust 2024 infers `!`, which is
/// not an `Outcome`): give it `()` with a typed helper, e.g.
/// `fn unit(f: impl Future<Output = ()>) -> impl Future<Output = ()> { f }`.
///
/// # Examples
///
/// ```
/// let ex = warden::LocalExecutor::new();
/// let group = ex.group();
/// let ok = group.spawn(async { Ok::<_, std::io::Error>(5) });
/// let unit = group.spawn(async {});
/// assert_eq!(ex.block_on(ok).unwrap(), 5);
/// assert!(ex.block_on(unit).is_ok());
/// assert!(ex.block_on(group.join()).is_ok());
/// ```
pub trait Outcome {
    /// What the member's [`JoinHandle`](crate::JoinHandle) yields on success.
    type Value;

    /// Splits the output into a value or a failure.
    fn into_result(self) -> Result<Self::Value, BoxError>;
}

impl Outcome for () {
    type Value = ();

    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<T, E: Into<BoxError>> Outcome for Result<T, E> {
    type Value = T;

    fn into_result(self) -> Result<T, BoxError> {
        self.map_err(Into::into)
    }
}

/// `finish` for group tasks (see `task::spawn`).
pub(crate) fn finish<O: Outcome>(output: O) -> Result<O::Value, BoxError> {
    output.into_result()
}

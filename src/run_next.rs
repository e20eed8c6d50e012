//! Optimisation: the run-next rule, measured in docs/performance.md ("The next slot",
//! "The LIFO slot").
//!
//! Both executors keep, in front of their FIFO queue, a slot for the task to run next:
//! the first task that a running task spawns or wakes (`LocalExecutor`'s next slot, each
//! pool worker's LIFO slot). A task and the helper it has just spawned, or two tasks
//! passing messages back and forth, then run one after the other while their data is still
//! in cache. Without a limit, two tasks waking each other through the slot would run
//! forever while the queue waits: so at most [`MAX_STREAK`] tasks in a row come from the
//! slot, and then the queue gets a turn. A plain FIFO queue gives the same results, only
//! slower; this module is the rule both slots follow.

/// How many tasks in a row may come from the run-next slot before the queue gets a turn.
pub(crate) const MAX_STREAK: u8 = 3;

/// How many tasks in a row came from the run-next slot.
#[derive(Debug, Default)]
pub(crate) struct Streak(u8);

impl Streak {
    /// One more task from the slot, if the streak allows it (then it counts); `false` when
    /// the queue must have its turn first.
    #[inline]
    pub(crate) fn allow_next(&mut self) -> bool {
        if self.0 < MAX_STREAK {
            self.0 += 1;
            true
        } else {
            false
        }
    }

    /// A task came from elsewhere: the streak starts again.
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.0 = 0;
    }
}

//! Behaviour under hostile input: one module per hostile case, all in one test binary.
//!
//! Each module takes one way user code can turn against the executor and checks that
//! warden survives it and still keeps its promises (every failure reported exactly once,
//! every future dropped exactly once, metrics that add up, no hang, no leak):
//!
//! * panics: in `poll` with payloads of every type (`panic_in_poll`), in a destructor run
//!   by a cancellation (`panic_in_drop`), in the destructor of an output nobody reads
//!   (`output_drop_panics`) or of a panic payload (`payload_drop_panics`), in the root
//!   future of `block_on` (`root_panic`), in the error hook (`hook_panics_or_spawns`), in
//!   the waker of whoever awaits a handle (`panicking_waker`);
//! * wakers: woken after their task or executor is gone (`wake_after_free`), from a
//!   thread-local destructor (`tls_destructor_wake`), 200 000 times a task
//!   (`wake_storm`);
//! * shutdown: destructors that wake, cancel and spawn while it runs
//!   (`drop_wakes_during_shutdown`), spawns after and during it (`spawn_after_shutdown`),
//!   tasks awaiting each other's handles (`handle_cycle`);
//! * races and timing: `cancel()` against completion (`cancel_vs_complete`), a failing
//!   task's handle dropped before, during or after its poll (`handle_drop_timing`);
//! * size and depth: 10 000-task spawn chains (`deep_spawn_chain`), a 1 MiB future on
//!   small stacks (`big_future_small_stack`), `block_on` nested inside a task or another
//!   `block_on` (`nested_block_on`).
//!
//! Cases that may abort the process (a stack overflow, a panic during unwinding or in a
//! thread-local destructor) run their body in a child process: this binary started again
//! for that one test (`support::child`), named as libtest names it here, with the module
//! of its theme (`panic_in_poll::local::name`).
//!
//! The capability files beside this folder (`tests/cancel.rs`, `tests/shutdown.rs`, ...)
//! test what each feature does for well-behaved code.

#[path = "../support/mod.rs"]
#[macro_use]
mod support;

mod big_future_small_stack;
mod cancel_vs_complete;
mod deep_spawn_chain;
mod drop_wakes_during_shutdown;
mod handle_cycle;
mod handle_drop_timing;
mod hook_panics_or_spawns;
mod nested_block_on;
mod output_drop_panics;
mod panic_in_drop;
mod panic_in_poll;
mod panicking_waker;
mod payload_drop_panics;
mod root_panic;
mod spawn_after_shutdown;
mod tls_destructor_wake;
mod wake_after_free;
mod wake_storm;

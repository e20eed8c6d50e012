//! Adversarial theme: a big future and a small stack.
//!
//! A 1 MiB future (a struct holding `[u8; 1 << 20]`, polled in place) is spawned through a
//! `Handle` from a std thread with a deliberately small stack, and run by executor threads
//! with small stacks. Moving a value by value costs a stack slot of its size in debug
//! builds, so every layer of the spawn path that takes the future by value, and every
//! temporary of a type that contains it, costs another megabyte.
//!
//! What Rust itself needs, measured here (debug, x86_64): constructing the 1 MiB future and
//! passing it on by value needs about 4 MiB of stack, `Box::pin` of it about 2.5 MiB. A
//! thread with a 256 KiB stack therefore overflows before warden is
//! even called: that part is Rust, not warden, and is not tested. What is tested is what
//! warden adds:
//!
//! * `spawn_from_a_thread_with_little_headroom`: the spawning thread has 8 MiB, twice what
//!   building the future needs; warden's spawn path gets the other 4 MiB. (A sanity child
//!   first checks that building the future alone fits.)
//! * `run_on_executor_threads_with_small_stacks`: the executor's threads (the pool's
//!   workers, the local executor's owner) have 4 MiB for a future they poll in place; a
//!   harness that moves the task's stage (which is as large as the future) around by value
//!   when the task finishes needs several times that.
//!
//! A stack overflow aborts the process, so each case runs in a child process (this test
//! binary, started again with `--exact <test>` and `WARDEN_ADVERSARIAL_CHILD=<case>`), and
//! the parent asserts on its exit status. `RUST_MIN_STACK` sets the stack of threads
//! spawned without an explicit size (the pool's workers, libtest's test thread).

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use support::{Flavor, child};
use warden::{Builder, Handle, JoinHandle};

const BIG: usize = 1 << 20;
const MIB: usize = 1 << 20;

/// A 1 MiB future: pending once (waking itself), then ready with the last byte.
struct Big {
    buf: [u8; BIG],
    polled: bool,
}

impl Future for Big {
    type Output = u8;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        if self.polled {
            return Poll::Ready(self.buf[BIG - 1]);
        }
        self.polled = true;
        self.buf[BIG - 1] = 7;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[inline(never)]
fn big_future() -> Big {
    Big {
        buf: [0u8; BIG],
        polled: false,
    }
}

/// Builds the future and passes it on by value, without warden: the premise check.
#[inline(never)]
fn build_only() {
    std::hint::black_box(big_future());
}

/// Builds the future and spawns it through `handle`.
#[inline(never)]
fn build_and_spawn(handle: &Handle) -> JoinHandle<u8> {
    handle.spawn(big_future())
}

/// Runs `f` on a thread with a `stack`-byte stack and returns its result.
fn on_thread_with_stack<R: Send + 'static>(
    stack: usize,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(f)
        .expect("start the thread")
        .join()
        .expect("the thread finished")
}

/// Starts this binary again to run `test` alone, as child `case`, with `env` set. Returns
/// whether it passed, and its output for the failure message.
fn run_child(test: &str, case: &str, env: &[(&str, String)]) -> (bool, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = child::run(test, case, &env);
    (run.passed(), run.report())
}

fn build(flavor: Flavor) -> support::Rt {
    flavor.build(Builder::new())
}

rt_test! {
    fn spawn_from_a_thread_with_little_headroom(flavor) {
        let test = child::test_name(module_path!(), "spawn_from_a_thread_with_little_headroom");
        const SPAWNER_STACK: usize = 8 * MIB;
        match child::case().as_deref() {
            Some("premise") => on_thread_with_stack(SPAWNER_STACK, build_only),
            Some("spawn") => {
                let rt = build(flavor);
                let handle = rt.handle();
                let joined = on_thread_with_stack(SPAWNER_STACK, move || build_and_spawn(&handle));
                assert_eq!(rt.block_on(joined).expect("the big task ran"), 7);
            }
            Some(other) => panic!("unknown child case {other}"),
            None => {
                // Executor threads get plenty, so that only the spawning thread is tested.
                let roomy = [("RUST_MIN_STACK", (64 * MIB).to_string())];
                let (ok, report) = run_child(&test, "premise", &roomy);
                assert!(
                    ok,
                    "premise: building a 1 MiB future alone overflows 8 MiB: {report}"
                );
                let (ok, report) = run_child(&test, "spawn", &roomy);
                assert!(
                    ok,
                    "spawning a 1 MiB future from a thread with 8 MiB of stack (building it \
                     needs about 4) overflowed: the spawn path copies the future onto the \
                     stack several times: {report}"
                );
            }
        }
    }

    fn run_on_executor_threads_with_small_stacks(flavor) {
        let test = child::test_name(module_path!(), "run_on_executor_threads_with_small_stacks");
        const EXECUTOR_STACK: usize = 4 * MIB;
        match child::case().as_deref() {
            Some("run") => {
                // The spawning thread gets plenty; the executor's threads (pool workers via
                // RUST_MIN_STACK, the local executor's owner explicitly) get 4 MiB.
                let run = move || {
                    let rt = build(flavor);
                    let handle = rt.handle();
                    let joined = on_thread_with_stack(64 * MIB, move || build_and_spawn(&handle));
                    let value = rt.block_on(joined).expect("the big task ran");
                    assert_eq!(value, 7);
                    let m = rt.metrics();
                    assert_eq!((m.spawned, m.completed, m.live), (1, 1, 0), "{m:?}");
                };
                on_thread_with_stack(EXECUTOR_STACK, run);
            }
            Some(other) => panic!("unknown child case {other}"),
            None => {
                let small = [("RUST_MIN_STACK", EXECUTOR_STACK.to_string())];
                let (ok, report) = run_child(&test, "run", &small);
                assert!(
                    ok,
                    "running a 1 MiB future (polled in place) on executor threads with 4 MiB \
                     of stack overflowed: the harness moves values as large as the future \
                     by value: {report}"
                );
            }
        }
    }
}

//! An executor kept in a `thread_local!`, dropped or driven when its thread exits.
//!
//! On Linux, thread-local destructors run in the reverse order of their registration. A
//! user's thread-local first touched *before* warden's own (warden registers its context
//! the first time the thread drives an executor) is destroyed *after* them: its destructor
//! then drops or drives an executor whose thread-local context is already gone. Reaching a
//! destroyed thread-local with `LocalKey::with` panics, and a panic inside a thread-local
//! destructor aborts the process; so each case runs in a child process, and the parent
//! asserts that the child passed (an abort fails it). tokio's `runtime_in_thread_local`
//! tests the same thing.

mod support;

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Duration;

use support::child::{in_child, test_name};
use support::{DropCounter, Flavor, Rt};

thread_local! {
    /// The user's thread-local that owns an executor.
    static OWNED: RefCell<Option<Rt>> = const { RefCell::new(None) };
}

/// On a fresh thread: touches `OWNED` first, then drives an executor of `flavor` (so that
/// warden's thread-locals are registered after it), leaves a pending task with a drop
/// counter in it, and puts the executor in `OWNED`. The thread then exits; `OWNED`'s
/// destructor drops the executor last. Returns the counter, read after the thread joined.
fn executor_dropped_at_thread_exit(flavor: Flavor) -> DropCounter {
    let dropped = DropCounter::new();
    let token = dropped.token();
    std::thread::spawn(move || {
        OWNED.with(|_| {});
        let rt = flavor.rt();
        // Drive it once, with a task polled and a spawn from inside, so that every
        // thread-local warden uses on this thread exists now.
        rt.block_on(async {
            let inner = warden::spawn(async { 1 });
            assert_eq!(inner.await.unwrap(), 1);
        });
        rt.spawn(async move {
            let _token = token;
            std::future::pending::<()>().await
        })
        .detach();
        OWNED.with(|cell| *cell.borrow_mut() = Some(rt));
    })
    .join()
    .expect("the thread that owned the executor panicked");
    dropped
}

/// Runs `warden::block_on` from a thread-local's destructor, after warden's own
/// thread-locals on that thread are gone, and sends what it returned.
struct BlockOnAtExit(mpsc::Sender<(i32, usize)>);

impl Drop for BlockOnAtExit {
    fn drop(&mut self) {
        let ex = warden::LocalExecutor::new();
        let dropped = DropCounter::new();
        let token = dropped.token();
        let value = ex.block_on(async {
            let a = ex.spawn(async { 20 });
            let b = ex.spawn(async { 22 });
            warden::yield_now().await;
            a.await.unwrap() + b.await.unwrap()
        });
        ex.spawn(async move {
            let _token = token;
            std::future::pending::<()>().await
        })
        .detach();
        drop(ex);
        let _ = self.0.send((value, dropped.count()));
    }
}

thread_local! {
    static AT_EXIT: RefCell<Option<BlockOnAtExit>> = const { RefCell::new(None) };
}

macro_rules! both {
    ($( fn $name:ident($flavor:ident) $body:block )*) => {
        mod local {
            use super::*;
            $(
                #[test]
                fn $name() {
                    let $flavor = Flavor::Local;
                    in_child(&test_name(module_path!(), stringify!($name)), || $body);
                }
            )*
        }
        mod pool {
            use super::*;
            $(
                #[test]
                fn $name() {
                    let $flavor = Flavor::Pool;
                    in_child(&test_name(module_path!(), stringify!($name)), || $body);
                }
            )*
        }
    };
}

both! {
    fn dropping_an_executor_from_a_thread_local_destructor_shuts_it_down(flavor) {
        let dropped = executor_dropped_at_thread_exit(flavor);
        assert_eq!(dropped.count(), 1, "the pending task's future was not dropped");
    }
}

#[test]
fn block_on_from_a_thread_local_destructor_runs_and_shuts_down() {
    in_child(
        "block_on_from_a_thread_local_destructor_runs_and_shuts_down",
        || {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                AT_EXIT.with(|cell| *cell.borrow_mut() = Some(BlockOnAtExit(tx)));
                // Use warden on this thread after `AT_EXIT` was registered, so its
                // thread-locals are destroyed first.
                assert_eq!(
                    warden::block_on(async { warden::spawn(async { 3 }).await }).unwrap(),
                    3
                );
            })
            .join()
            .expect("the thread panicked");
            let (value, dropped) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the destructor's block_on never finished");
            assert_eq!(value, 42);
            assert_eq!(
                dropped, 1,
                "shutdown did not drop the pending task's future"
            );
        },
    );
}

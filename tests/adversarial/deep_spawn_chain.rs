//! Adversarial theme: deep spawn chains.
//!
//! 10 000 tasks in a chain, on both executors:
//! * each task spawns the next and does not await it (detached), the last reports back;
//! * each task spawns the next and awaits its handle, so 10 000 tasks are pending at once,
//!   and completion cascades back up the chain;
//! * the same nested chain, but the executor is dropped while all 10 000 wait: shutdown
//!   cancels them in some order, and nothing may recurse once per link (each task's future
//!   holds the next task's handle; a task block dropped from inside another's destructor,
//!   10 000 deep, overflows the stack).
//!
//! None of this may recurse on the stack per link: wakes go through run queues. A stack
//! overflow aborts the process, so the shutdown test runs in a child process (this test
//! binary, started again with `--exact <test>` and `WARDEN_ADVERSARIAL_CHILD=<test>`).

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use futures::channel::oneshot;
use support::child::{in_child, test_name};
use support::{DropCounter, DropToken, assert_adds_up, hang_guard};

const DEPTH: usize = 10_000;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Link `n` spawns link `n + 1` (detached) and returns; the last one sends `DEPTH`.
fn detached_link(n: usize, ran: Arc<AtomicUsize>, done: oneshot::Sender<usize>) -> Boxed<()> {
    Box::pin(async move {
        ran.fetch_add(1, SeqCst);
        if n + 1 == DEPTH {
            let _ = done.send(n + 1);
        } else {
            warden::spawn(detached_link(n + 1, ran, done)).detach();
        }
    })
}

/// Link `n` spawns link `n + 1` and awaits it; the last link returns 0 at once, or waits
/// on `leaf` if given. Each link adds 1 to its child's value.
fn nested_link(
    n: usize,
    leaf: Option<oneshot::Receiver<()>>,
    token: Option<DropCounter>,
) -> Boxed<usize> {
    Box::pin(async move {
        let _token: Option<DropToken> = token.as_ref().map(DropCounter::token);
        if n + 1 == DEPTH {
            if let Some(leaf) = leaf {
                let _ = leaf.await;
            }
            return 0;
        }
        let child = warden::spawn(nested_link(n + 1, leaf, token.clone()));
        child.await.expect("the child link finished") + 1
    })
}

rt_test! {
    /// Each task spawns the next without awaiting it.
    fn detached_chain_of_ten_thousand(flavor) {
        hang_guard("a detached chain of 10 000 spawns", move || {
            let rt = flavor.rt();
            let ran = Arc::new(AtomicUsize::new(0));
            let (done_tx, done_rx) = oneshot::channel();
            rt.spawn(detached_link(0, ran.clone(), done_tx)).detach();
            let last = rt.block_on(done_rx).expect("the last link reported");
            assert_eq!(last, DEPTH);
            assert_eq!(ran.load(SeqCst), DEPTH);
            rt.block_on(async {
                while warden_live(&rt) > 0 {
                    warden::yield_now().await;
                }
            });
            let m = rt.metrics();
            assert_eq!(
                (m.spawned, m.completed, m.live),
                (DEPTH as u64, DEPTH as u64, 0),
                "{m:?}"
            );
            assert_adds_up(&m);
        });
    }

    /// Each task spawns the next and awaits it: 10 000 pending at once, then a cascade of
    /// completions back to the root.
    fn nested_await_chain_of_ten_thousand(flavor) {
        hang_guard("a nested chain of 10 000 awaits", move || {
            let rt = flavor.rt();
            let (leaf_tx, leaf_rx) = oneshot::channel();
            let root = rt.spawn(nested_link(0, Some(leaf_rx), None));
            // Wait until the whole chain is pending, then release the leaf.
            rt.block_on(async {
                while rt.metrics().spawned < DEPTH as u64 {
                    warden::yield_now().await;
                }
            });
            assert_eq!(rt.metrics().live, DEPTH as u64);
            leaf_tx.send(()).unwrap();
            let value = rt.block_on(root).expect("the root link finished");
            assert_eq!(value, DEPTH - 1);
            let m = rt.metrics();
            assert_eq!(
                (m.spawned, m.completed, m.live),
                (DEPTH as u64, DEPTH as u64, 0),
                "{m:?}"
            );
            assert_adds_up(&m);
        });
    }

    /// The nested chain, all 10 000 pending, and the executor dropped: every future is
    /// dropped once, without a stack overflow and without a hang.
    fn nested_chain_dropped_at_shutdown(flavor) {
        let test = test_name(module_path!(), "nested_chain_dropped_at_shutdown");
        in_child(&test, || {
            hang_guard("shutting down a nested chain of 10 000 awaits", move || {
                let rt = flavor.rt();
                let drops = DropCounter::new();
                let (_leaf_tx, leaf_rx) = oneshot::channel::<()>();
                let root = rt.spawn(nested_link(0, Some(leaf_rx), Some(drops.clone())));
                rt.block_on(async {
                    while rt.metrics().spawned < DEPTH as u64 {
                        warden::yield_now().await;
                    }
                });
                assert_eq!(drops.count(), 0);
                rt.shutdown();
                assert_eq!(
                    drops.count(),
                    DEPTH,
                    "every link's future must be dropped once"
                );
                let m = rt.metrics();
                assert_eq!(
                    (m.spawned, m.cancelled, m.live),
                    (DEPTH as u64, DEPTH as u64, 0),
                    "{m:?}"
                );
                drop(rt);
                assert!(root.is_finished());
                drop(root);
            });
        });
    }
}

fn warden_live(rt: &support::Rt) -> u64 {
    rt.metrics().live
}

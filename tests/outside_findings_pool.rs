//! Outside findings on the executors' loops.
//!
//! * `block_on` after (or during) a shutdown: the root future keeps working timers until it
//!   finishes, on both executors, whichever comes first, the shutdown or the `block_on`.
//!   Before, the pool's `block_on(sleep(..))` hung forever once its timer thread had gone,
//!   and a shutdown called while a root slept dropped the root's timer without waking it.
//!   Every body runs under a hang guard, so a regression fails instead of hanging the suite.
//!   Timing asserts are lower bounds only.
//! * The pool's LIFO slot: a task spawned just before its parent blocks the worker in a long
//!   synchronous stretch is taken by an idle worker instead of waiting for the block to end.

mod support;

use std::future::pending;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Flavor, no_hang_or};
use warden::{Builder, CancelReason, Executor, LocalExecutor};

const NAP: Duration = Duration::from_millis(60);

fn pool() -> Executor {
    Builder::new().worker_threads(2).build()
}

/// Runs `body` under a 30 s hang guard that fails with a message naming `what`.
fn guarded(what: &str, body: impl FnOnce() + Send + 'static) {
    no_hang_or(
        &format!("{what}: no result after 30 s (block_on hung after a shutdown)"),
        body,
    );
}

/// Waits (really sleeping, outside any executor) until `ready` holds; gives up after 20 s,
/// leaving the hang guard to report the hang.
fn wait_for(mut ready: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while !ready() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[track_caller]
fn assert_slept(start: Instant, at_least: Duration) {
    let slept = start.elapsed();
    assert!(
        slept >= at_least,
        "block_on returned after {slept:?}, before its {at_least:?} sleep was over"
    );
}

// --- block_on after shutdown: shutdown first, then block_on -------------------------------

#[test]
fn pool_block_on_sleeps_after_shutdown() {
    guarded("pool: shutdown, then block_on(sleep)", || {
        let ex = pool();
        ex.shutdown();
        let start = Instant::now();
        ex.block_on(warden::sleep(NAP));
        assert_slept(start, NAP);
        // And again: the first block_on left nothing behind that a second one trips on.
        let start = Instant::now();
        ex.block_on(warden::sleep(NAP));
        assert_slept(start, NAP);
    });
}

#[test]
fn local_block_on_sleeps_after_shutdown() {
    guarded("local: shutdown, then block_on(sleep)", || {
        let ex = LocalExecutor::new();
        ex.shutdown();
        let start = Instant::now();
        ex.block_on(warden::sleep(NAP));
        assert_slept(start, NAP);
    });
}

#[test]
fn timeout_works_in_block_on_after_shutdown() {
    for flavor in [Flavor::Local, Flavor::Pool] {
        guarded(&format!("{flavor:?}: timeout after shutdown"), move || {
            let rt = flavor.rt();
            rt.shutdown();
            let start = Instant::now();
            let result = rt.block_on(warden::timeout(NAP, pending::<()>()));
            let elapsed = result.expect_err("a pending future cannot finish");
            assert_eq!(elapsed.duration(), NAP);
            assert_slept(start, NAP);
            let start = Instant::now();
            let result = rt.block_on(warden::timeout(
                Duration::from_secs(3600),
                warden::sleep(NAP),
            ));
            assert_eq!(result, Ok(()));
            assert_slept(start, NAP);
        });
    }
}

#[test]
fn tasks_spawned_in_block_on_after_shutdown_are_refused_at_once() {
    for flavor in [Flavor::Local, Flavor::Pool] {
        guarded(
            &format!("{flavor:?}: spawn in block_on after shutdown"),
            move || {
                let rt = flavor.rt();
                rt.shutdown();
                let err = rt
                    .block_on(async {
                        let handle = warden::spawn(async { 1 });
                        assert!(handle.is_finished(), "a refused task is finished at once");
                        // The root still sleeps on a working timer around the refusal.
                        warden::sleep(Duration::from_millis(5)).await;
                        handle.await
                    })
                    .expect_err("a task spawned after shutdown must not run");
                assert_eq!(err.cancel_reason(), Some(&CancelReason::Shutdown));
            },
        );
    }
}

#[test]
fn group_deadline_fires_in_block_on_after_shutdown() {
    for flavor in [Flavor::Local, Flavor::Pool] {
        guarded(
            &format!("{flavor:?}: group deadline after shutdown"),
            move || {
                let rt = flavor.rt();
                rt.shutdown();
                rt.block_on(async {
                    let group = warden::TaskGroup::new().with_timeout(Duration::from_millis(20));
                    assert!(!group.is_cancelled());
                    while !group.is_cancelled() {
                        warden::sleep(Duration::from_millis(5)).await;
                    }
                });
            },
        );
    }
}

// --- shutdown while a block_on sleeps -----------------------------------------------------

/// `Executor` is `Sync`: one thread sleeps in `block_on` while another shuts it down.
#[test]
fn pool_shutdown_from_another_thread_while_block_on_sleeps() {
    guarded(
        "pool: shutdown from another thread during block_on(sleep)",
        || {
            let ex = pool();
            let nap = Duration::from_millis(200);
            let start = Instant::now();
            std::thread::scope(|s| {
                s.spawn(|| {
                    // Once the root's timer is registered, the root is asleep on it (or about to
                    // be): shut down under it.
                    wait_for(|| ex.timer_count() == 1);
                    ex.shutdown();
                });
                ex.block_on(warden::sleep(nap));
            });
            assert_slept(start, nap);
        },
    );
}

/// A task of the pool shuts it down (from a worker thread, where `shutdown` only starts it)
/// while the root sleeps.
#[test]
fn pool_shutdown_from_a_task_while_block_on_sleeps() {
    guarded("pool: shutdown from a task during block_on(sleep)", || {
        let ex = Arc::new(pool());
        let nap = Duration::from_millis(200);
        let start = Instant::now();
        ex.block_on({
            let ex = ex.clone();
            async move {
                let mut nap = pin!(warden::sleep(nap));
                assert!(futures::poll!(nap.as_mut()).is_pending());
                warden::spawn(async move { ex.shutdown() }).detach();
                nap.await;
            }
        });
        assert_slept(start, nap);
    });
}

/// On a `LocalExecutor`, the root itself shuts the executor down while its sleep is
/// registered.
#[test]
fn local_shutdown_from_the_root_while_it_sleeps() {
    guarded(
        "local: shutdown from the root during block_on(sleep)",
        || {
            let ex = LocalExecutor::new();
            let start = Instant::now();
            // `join` polls the sleep (which registers its timer), then runs the shutdown, and
            // then waits for a wake: the sleep is not polled again until its timer fires.
            ex.block_on(async {
                futures::join!(warden::sleep(NAP), async { ex.shutdown() });
            });
            assert_slept(start, NAP);
        },
    );
}

/// On a `LocalExecutor`, a task shuts the executor down while the root sleeps.
#[test]
fn local_shutdown_from_a_task_while_block_on_sleeps() {
    guarded("local: shutdown from a task during block_on(sleep)", || {
        let ex = Rc::new(LocalExecutor::new());
        let start = Instant::now();
        ex.block_on({
            let ex = ex.clone();
            async move {
                let mut nap = pin!(warden::sleep(NAP));
                assert!(futures::poll!(nap.as_mut()).is_pending());
                warden::spawn_local(async move { ex.shutdown() }).detach();
                nap.await;
            }
        });
        assert_slept(start, NAP);
    });
}

/// Two roots on two threads of one pool, the shutdown between their sleeps: each wakes.
#[test]
fn pool_two_roots_sleep_through_a_shutdown() {
    guarded("pool: two block_ons across a shutdown", || {
        let ex = pool();
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| ex.block_on(warden::sleep(Duration::from_millis(300))));
            s.spawn(|| {
                wait_for(|| ex.timer_count() >= 1);
                ex.block_on(warden::sleep(Duration::from_millis(100)));
            });
            wait_for(|| ex.timer_count() == 2);
            ex.shutdown();
        });
        assert_slept(start, Duration::from_millis(300));
    });
}

// --- the pool's LIFO slot: an idle worker takes a task stuck behind a blocked parent ------

/// How long the parent blocks its worker, synchronously.
const BLOCK: Duration = Duration::from_secs(1);

/// A parent task spawns a child (which goes into its worker's LIFO slot) and then blocks its
/// worker for `BLOCK` without returning to the executor. The other worker is idle: it must
/// take the child, which then starts before the block is over. Returns (when the child
/// started, when the block ended).
fn child_behind_a_blocked_parent(spin: bool) -> (Instant, Instant) {
    let ex = pool();
    ex.block_on(async {
        warden::spawn(async move {
            let (tx, rx) = std::sync::mpsc::channel();
            let child = warden::spawn(async move {
                tx.send(Instant::now()).unwrap();
            });
            let end = Instant::now() + BLOCK;
            if spin {
                while Instant::now() < end {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::sleep(BLOCK);
            }
            let block_ended = Instant::now();
            child.await.unwrap();
            (rx.recv().unwrap(), block_ended)
        })
        .await
        .unwrap()
    })
}

#[test]
fn pool_child_starts_while_its_parent_sleeps_synchronously() {
    no_hang_or("the blocked-parent test hung", || {
        let (child_started, block_ended) = child_behind_a_blocked_parent(false);
        assert!(
            child_started < block_ended,
            "the child started {:?} after its parent's 1 s block ended: it waited in the \
             blocked worker's LIFO slot while the other worker was idle",
            child_started - block_ended
        );
    });
}

#[test]
fn pool_child_starts_while_its_parent_spins() {
    no_hang_or("the spinning-parent test hung", || {
        let (child_started, block_ended) = child_behind_a_blocked_parent(true);
        assert!(
            child_started < block_ended,
            "the child started {:?} after its parent's 1 s spin ended",
            child_started - block_ended
        );
    });
}

/// The group deadline of a child stuck behind its blocked parent cancels it (its future is
/// dropped) before the block ends.
#[test]
fn pool_group_deadline_reaches_a_child_behind_a_blocked_parent() {
    no_hang_or("the group-deadline test hung", || {
        let ex = pool();
        let (dropped_at, block_ended, err) = ex.block_on(async {
            warden::spawn(async move {
                struct OnDrop(Option<std::sync::mpsc::Sender<Instant>>);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        let _ = self.0.take().unwrap().send(Instant::now());
                    }
                }
                let (tx, rx) = std::sync::mpsc::channel();
                let group = warden::TaskGroup::new().with_timeout(Duration::from_millis(20));
                let guard = OnDrop(Some(tx));
                let child = group.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await
                });
                std::thread::sleep(BLOCK);
                let block_ended = Instant::now();
                let err = child
                    .await
                    .expect_err("the child never finishes on its own");
                (rx.recv().unwrap(), block_ended, err)
            })
            .await
            .unwrap()
        });
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Deadline));
        assert!(
            dropped_at < block_ended,
            "the child was cancelled {:?} after its parent's block ended",
            dropped_at - block_ended
        );
    });
}

//! Adversarial theme: an output whose `Drop` panics.
//!
//! A task finishes with a value that nobody reads, and the value's destructor panics:
//! when the handle is dropped unread after completion (on this thread or another), when
//! the task was detached (the executor drops the value), when the handle outlives the
//! executor, and when the future's own destructor panics after it returned the value
//! (warden then drops the value itself). Nothing may crash or unwind into the caller, the
//! executor keeps working, and such a panic is not a task failure: the error hook does not
//! see it (it is logged) and the task counts as completed.

use crate::support;

use std::panic::panic_any;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};

use support::{
    DropCounter, DropToken, HookLog, assert_adds_up, assert_both_workers_alive, drive_until,
    must_not_panic,
};

/// A value whose destructor panics (after bumping its counter).
#[derive(Debug)]
struct Grenade {
    _token: DropToken,
}

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("the output's destructor panicked");
    }
}

/// A panic payload whose own destructor panics too.
struct NastyPayload(Arc<AtomicUsize>);

impl Drop for NastyPayload {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("the payload's destructor panicked");
    }
}

/// An output whose destructor panics with a `NastyPayload`.
struct NastyGrenade(Arc<AtomicUsize>);

impl Drop for NastyGrenade {
    fn drop(&mut self) {
        panic_any(NastyPayload(self.0.clone()));
    }
}

/// The panic message of [`ReturnsThenExplodes`]'s destructor.
const RETURNED_THEN_EXPLODED: &str = "the future's destructor panicked after it returned";

/// A future that returns its `Grenade` at the first poll, then panics in its destructor.
struct ReturnsThenExplodes(Option<Grenade>);

impl std::future::Future for ReturnsThenExplodes {
    type Output = Grenade;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Grenade> {
        Poll::Ready(self.0.take().expect("polled once"))
    }
}

impl Drop for ReturnsThenExplodes {
    fn drop(&mut self) {
        panic!("{RETURNED_THEN_EXPLODED}");
    }
}

rt_test! {
    fn handle_dropped_unread_after_completion(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = rt.spawn(async move { Grenade { _token: token } });
        drive_until(&rt, || handle.is_finished());
        assert_eq!(
            drops.count(),
            0,
            "the output belongs to the handle until it is dropped"
        );
        must_not_panic("dropping the handle", || drop(handle));
        assert_eq!(drops.count(), 1);
        assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2);
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.panicked, m.live),
            (2, 2, 0, 0),
            "{m:?}"
        );
        drop(rt);
        assert_eq!(
            log.len(),
            0,
            "an output's destructor panic is not a task failure"
        );
    }

    fn handle_dropped_unread_on_another_thread(flavor) {
        let rt = flavor.rt();
        let drops = DropCounter::new();
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let token = drops.token();
                rt.spawn(async move { Grenade { _token: token } })
            })
            .collect();
        drive_until(&rt, || handles.iter().all(|h| h.is_finished()));
        let joined = std::thread::spawn(move || {
            for h in handles {
                drop(h);
            }
        })
        .join();
        assert!(
            joined.is_ok(),
            "an output's destructor panic escaped the handle's drop"
        );
        assert_eq!(drops.count(), 10);
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
    }

    fn detached_outputs_are_dropped_by_the_executor(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        for _ in 0..100 {
            let token = drops.token();
            rt.spawn(async move {
                warden::yield_now().await;
                Grenade { _token: token }
            })
            .detach();
        }
        drive_until(&rt, || drops.count() == 100);
        assert_both_workers_alive(&rt);
        let m = rt.metrics();
        assert_eq!(
            (m.completed, m.panicked, m.live),
            (m.spawned, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        must_not_panic("dropping the executor", || drop(rt));
        assert_eq!(log.len(), 0);
    }

    /// The handle keeps the finished output past the executor's life; dropping it then
    /// still may not crash.
    fn handle_outlives_the_executor(flavor) {
        let rt = flavor.rt();
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = rt.spawn(async move { Grenade { _token: token } });
        drive_until(&rt, || handle.is_finished());
        drop(rt);
        assert_eq!(drops.count(), 0);
        must_not_panic("dropping the handle after the executor", || drop(handle));
        assert_eq!(drops.count(), 1);
    }

    /// The output's destructor panics with a payload whose own destructor panics. warden
    /// drops such a payload inside `catch_unwind` too (and would forget only a third link
    /// of the chain): no crash, and each payload is dropped exactly once.
    fn output_drop_panics_with_a_nasty_payload(flavor) {
        let rt = flavor.rt();
        let payload_drops = Arc::new(AtomicUsize::new(0));
        let counter = payload_drops.clone();
        let detached_counter = payload_drops.clone();
        let handle = rt.spawn(async move { NastyGrenade(counter) });
        rt.spawn(async move { NastyGrenade(detached_counter) })
            .detach();
        drive_until(&rt, || handle.is_finished() && rt.metrics().live == 0);
        must_not_panic("dropping the handle", || drop(handle));
        assert_eq!(rt.block_on(rt.spawn(async { 4 })).unwrap(), 4);
        must_not_panic("dropping the executor", || drop(rt));
        assert_eq!(
            payload_drops.load(SeqCst),
            2,
            "each nasty payload is dropped exactly once"
        );
    }

    /// The future returns its value, then the future's destructor panics: that panic is
    /// the task's failure, and warden drops the value, whose destructor panics as well.
    fn future_drop_panics_then_output_drop_panics(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        let handle = rt.spawn(ReturnsThenExplodes(Some(Grenade {
            _token: drops.token(),
        })));
        let err = must_not_panic("awaiting the handle", || rt.block_on(handle)).unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(
            err.panic_message(),
            Some(RETURNED_THEN_EXPLODED)
        );
        assert_eq!(drops.count(), 1, "warden drops the value it cannot deliver");
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.panicked, m.live),
            (2, 1, 1, 0),
            "{m:?}"
        );
        drop(rt);
        assert_eq!(log.len(), 0, "the handle read the failure");
    }

    /// Detached, the future returns its value and then its destructor panics: nobody will
    /// read the result, so the destructor's panic reaches the hook, exactly once, and the
    /// value (whose destructor panics too) is dropped by warden and logged.
    fn detached_future_drop_panics_after_returning(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let drops = DropCounter::new();
        rt.spawn(ReturnsThenExplodes(Some(Grenade {
            _token: drops.token(),
        })))
        .detach();
        drive_until(&rt, || rt.metrics().live == 0);
        assert_eq!(drops.count(), 1, "warden drops the value nobody will read");
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
        drop(rt);
        let errors = log.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].panic_message(),
            Some(RETURNED_THEN_EXPLODED)
        );
    }

    /// A group member returns `Err`, then its future's destructor panics: the `Err` is the
    /// member's failure (the first one wins) and the destructor's panic is only logged.
    fn group_member_err_then_drop_panics(flavor) {
        struct FailsThenExplodes;
        impl std::future::Future for FailsThenExplodes {
            type Output = Result<(), std::io::Error>;
            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
                Poll::Ready(Err(std::io::Error::other("the body failed")))
            }
        }
        impl Drop for FailsThenExplodes {
            fn drop(&mut self) {
                panic!("the destructor panicked after the body failed");
            }
        }
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let group = rt.group();
        let member = group.spawn(FailsThenExplodes);
        let err = must_not_panic("awaiting the member", || rt.block_on(member)).unwrap_err();
        assert!(err.is_error(), "{err}");
        assert_eq!(
            err.downcast_ref::<std::io::Error>().map(ToString::to_string).as_deref(),
            Some("the body failed")
        );
        let report = rt.block_on(group.join()).unwrap_err();
        assert_eq!(report.failures().len(), 1);
        assert!(report.failures()[0].is_error());
        drop(rt);
        assert_eq!(log.len(), 0, "the group reported the failure; the hook sees nothing");
    }
}

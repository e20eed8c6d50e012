//! Adversarial theme: panics in `poll`, with payloads of many types.
//!
//! `&'static str`, `String`, formatted messages, integers, `()`, a user struct, a boxed
//! error, a nested box, and payloads re-raised with `resume_unwind` (which skips the panic
//! hook): each becomes the task's failure, with the right message (`&str` and `String`
//! payloads; others read `Box<dyn Any>`) and the original payload back from `into_panic`.
//! The worker (pool) or owner loop (local) survives hundreds of them, later tasks run, and
//! `Metrics` count every one exactly.

use crate::support;

use std::any::Any;
use std::panic::{catch_unwind, panic_any, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use support::{DropCounter, HookLog, Rt, assert_adds_up, assert_both_workers_alive, unit};
use warden::{Backtraces, JoinHandle, TaskError};

#[derive(Debug, PartialEq)]
struct Custom {
    code: u32,
    what: &'static str,
}

/// A payload with no `Display`: just data.
#[derive(Debug, PartialEq, Clone, Copy)]
struct Opaque(u64);

/// Spawns a task whose first poll panics with `payload()`.
fn spawn_panicking<P: Any + Send + 'static>(
    rt: &Rt,
    payload: impl FnOnce() -> P + Send + 'static,
) -> JoinHandle<()> {
    rt.spawn(unit(async move { panic_any(payload()) }))
}

/// Awaits `handle` and returns its failure, which must be a panic.
fn panic_of(rt: &Rt, handle: JoinHandle<()>) -> TaskError {
    let err = rt.block_on(handle).expect_err("the task panicked");
    assert!(
        err.is_panic() && !err.is_error() && !err.is_cancelled(),
        "{err:?}"
    );
    err
}

rt_test! {
    fn every_payload_type_is_kept(flavor) {
        let rt = flavor.rt();

        let err = panic_of(&rt, spawn_panicking(&rt, || "static str"));
        assert_eq!(err.panic_message(), Some("static str"));
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "static str");

        let err = panic_of(&rt, spawn_panicking(&rt, || String::from("owned string")));
        assert_eq!(err.panic_message(), Some("owned string"));
        assert_eq!(
            *err.into_panic().downcast::<String>().unwrap(),
            "owned string"
        );

        let n = 17;
        let err = panic_of(
            &rt,
            rt.spawn(unit(async move { panic!("formatted {n} {}", n + 1) })),
        );
        assert_eq!(err.panic_message(), Some("formatted 17 18"));
        assert!(err.location().is_some(), "a panic! has a location");
        assert_eq!(err.location().unwrap().file(), file!());
        assert_eq!(
            *err.into_panic().downcast::<String>().unwrap(),
            "formatted 17 18"
        );

        let err = panic_of(&rt, spawn_panicking(&rt, || 42_i32));
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        assert_eq!(*err.into_panic().downcast::<i32>().unwrap(), 42);

        let err = panic_of(&rt, spawn_panicking(&rt, || u64::MAX));
        assert_eq!(*err.into_panic().downcast::<u64>().unwrap(), u64::MAX);

        let err = panic_of(&rt, spawn_panicking(&rt, || ()));
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        assert!(err.into_panic().downcast::<()>().is_ok());

        let err = panic_of(
            &rt,
            spawn_panicking(&rt, || Custom {
                code: 7,
                what: "custom",
            }),
        );
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        assert_eq!(
            *err.into_panic().downcast::<Custom>().unwrap(),
            Custom {
                code: 7,
                what: "custom"
            }
        );

        let err = panic_of(&rt, spawn_panicking(&rt, || Opaque(9)));
        let clone = err.clone();
        assert_eq!(*err.into_panic().downcast::<Opaque>().unwrap(), Opaque(9));
        // The payload is kept once: a clone gets the message instead.
        let again = clone.into_panic();
        assert_eq!(
            again.downcast_ref::<String>().map(String::as_str),
            Some("Box<dyn Any>")
        );

        let err = panic_of(
            &rt,
            spawn_panicking(&rt, || {
                Box::<dyn std::error::Error + Send + Sync>::from("a boxed error")
            }),
        );
        let payload = err.into_panic();
        let boxed = payload
            .downcast::<Box<dyn std::error::Error + Send + Sync>>()
            .expect("the boxed error payload");
        assert_eq!(boxed.to_string(), "a boxed error");

        let err = panic_of(&rt, spawn_panicking(&rt, || Box::new(5_u8)));
        assert_eq!(**err.into_panic().downcast::<Box<u8>>().unwrap(), 5);

        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.completed, m.live),
            (10, 10, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
    }

    /// `resume_unwind` skips the panic hook: the message must come from the payload itself,
    /// even right after another panic that task code caught on the same thread (whose
    /// record must not be mistaken for this one).
    fn resume_unwind_after_a_caught_panic_reports_its_own_payload(flavor) {
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async {
            let caught = catch_unwind(|| panic!("swallowed by the task"));
            assert!(caught.is_err());
            resume_unwind(Box::new(String::from("resumed")));
        }));
        let err = panic_of(&rt, handle);
        assert_eq!(err.panic_message(), Some("resumed"), "{err}");
        if let Some(loc) = err.location() {
            // Not required (the hook never saw this panic), but if there is one it must not
            // be the caught panic's.
            assert!(
                !err.to_string().contains("swallowed"),
                "the report names the caught panic: {err} at {loc}"
            );
        }
        assert_eq!(*err.into_panic().downcast::<String>().unwrap(), "resumed");

        // resume_unwind with a non-string payload.
        let handle = rt.spawn(unit(async {
            let _ = catch_unwind(|| panic!("another swallowed one"));
            resume_unwind(Box::new(Custom {
                code: 1,
                what: "resumed custom",
            }));
        }));
        let err = panic_of(&rt, handle);
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"), "{err}");
        assert_eq!(
            *err.into_panic().downcast::<Custom>().unwrap(),
            Custom {
                code: 1,
                what: "resumed custom"
            }
        );
    }

    /// A child's panic re-raised in the parent with `resume_unwind(err.into_panic())`.
    fn re_raised_child_panic_keeps_the_original_payload(flavor) {
        let rt = flavor.rt();
        let parent = rt.spawn(unit(async {
            let child = warden::spawn(unit(async {
                panic_any(Custom {
                    code: 3,
                    what: "child",
                })
            }));
            let err = child.await.unwrap_err();
            resume_unwind(err.into_panic());
        }));
        let err = panic_of(&rt, parent);
        assert_eq!(
            *err.into_panic().downcast::<Custom>().unwrap(),
            Custom {
                code: 3,
                what: "child"
            }
        );
        let m = rt.metrics();
        assert_eq!((m.spawned, m.panicked, m.live), (2, 2, 0), "{m:?}");
    }

    /// Hundreds of panics interleaved with ordinary tasks: nothing is lost, every worker
    /// survives, the metrics are exact.
    fn executor_survives_many_panics(flavor) {
        let log = HookLog::new();
        let rt = flavor.build(log.builder().backtraces(Backtraces::Off));
        let ran = Arc::new(AtomicUsize::new(0));
        let mut failing = Vec::new();
        let mut ok = Vec::new();
        for i in 0..200u32 {
            let kind = i % 4;
            failing.push(rt.spawn(unit(async move {
                warden::yield_now().await;
                match kind {
                    0 => panic!("str {i}"),
                    1 => panic_any(i),
                    2 => panic_any(Custom { code: i, what: "x" }),
                    _ => resume_unwind(Box::new(format!("resumed {i}"))),
                }
            })));
            let ran = ran.clone();
            ok.push(rt.spawn(async move {
                warden::yield_now().await;
                ran.fetch_add(1, SeqCst);
                i * 2
            }));
        }
        // 100 detached failures go to the hook.
        for i in 0..100u32 {
            rt.spawn(unit(async move { panic!("detached {i}") }))
                .detach();
        }
        let (values, errors) = rt.block_on(async move {
            let mut values = Vec::new();
            for h in ok {
                values.push(h.await.unwrap());
            }
            let mut errors = Vec::new();
            for h in failing {
                errors.push(h.await.unwrap_err());
            }
            (values, errors)
        });
        assert_eq!(values, (0..200u32).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(ran.load(SeqCst), 200);
        for (i, err) in errors.iter().enumerate() {
            assert!(err.is_panic(), "{err}");
            let expected = match i % 4 {
                0 => format!("str {i}"),
                3 => format!("resumed {i}"),
                _ => "Box<dyn Any>".to_string(),
            };
            assert_eq!(err.panic_message(), Some(expected.as_str()));
        }
        rt.block_on(async {
            while rt.metrics().live > 0 {
                std::thread::sleep(Duration::from_millis(1));
                warden::yield_now().await;
            }
        });
        let m = rt.metrics();
        assert_eq!(
            (
                m.spawned,
                m.completed,
                m.panicked,
                m.errored,
                m.cancelled,
                m.live
            ),
            (500, 200, 300, 0, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        assert_eq!(
            log.len(),
            100,
            "every detached failure reaches the hook once"
        );
        // On the pool, both workers are still alive.
        assert_both_workers_alive(&rt);
    }

    /// A panic after a wake-by-ref in the same poll: the task is not polled again, its
    /// future is dropped once, and it is counted once.
    fn panic_after_self_wake_is_final(flavor) {
        let rt = flavor.rt();
        let polls = Arc::new(AtomicUsize::new(0));
        let drops = DropCounter::new();
        let token = drops.token();
        let counted = polls.clone();
        let handle = rt.spawn(unit(async move {
            let _token = token;
            let mut n = 0;
            std::future::poll_fn(|cx| {
                counted.fetch_add(1, SeqCst);
                n += 1;
                cx.waker().wake_by_ref();
                if n == 3 {
                    panic!("third poll");
                }
                std::task::Poll::<()>::Pending
            })
            .await
        }));
        let err = panic_of(&rt, handle);
        assert_eq!(err.panic_message(), Some("third poll"));
        assert_eq!(polls.load(SeqCst), 3);
        assert_eq!(drops.count(), 1);
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.polls, m.live),
            (1, 1, 3, 0),
            "{m:?}"
        );
    }

    /// The future's `poll` panics, then the future's own destructor panics too (when warden
    /// drops it): the first panic is the task's failure, the second is only logged.
    ///
    /// (A hand-written future: an `async` block holding a value whose `Drop` panics would
    /// drop that value *while* the body's panic unwinds, and Rust aborts the process for a
    /// panic in a destructor during unwinding; no executor can catch that.)
    fn panic_in_poll_then_in_drop_keeps_the_first(flavor) {
        struct PanicsTwice {
            polls: u32,
        }
        impl std::future::Future for PanicsTwice {
            type Output = ();
            fn poll(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<()> {
                self.polls += 1;
                if self.polls == 1 {
                    cx.waker().wake_by_ref();
                    return std::task::Poll::Pending;
                }
                panic!("the body panicked first");
            }
        }
        impl Drop for PanicsTwice {
            fn drop(&mut self) {
                panic!("the destructor panicked second");
            }
        }
        let log = HookLog::new();
        let rt = flavor.build(log.builder());
        let handle = rt.spawn(PanicsTwice { polls: 0 });
        let err = panic_of(&rt, handle);
        assert_eq!(err.panic_message(), Some("the body panicked first"));
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.panicked, m.completed, m.live),
            (2, 1, 1, 0),
            "{m:?}"
        );
        drop(rt);
        assert_eq!(log.len(), 0, "the handle observed the failure");
    }
}

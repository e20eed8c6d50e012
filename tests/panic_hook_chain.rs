//! warden's panic hook is chained in front of the hook that was installed before its first
//! executor: panics inside task polls are captured (and do not reach that hook), every
//! other panic still does.
//!
//! The panic hook is process-global and warden installs its own once, at the first
//! executor; so this binary holds a single test, which installs its hook before any warden
//! code runs and then exercises both executors in turn.

mod support;

use std::panic;
use std::sync::{Arc, Mutex};
use std::thread;

use support::{Flavor, unit};

#[test]
fn task_panics_are_captured_and_other_panics_reach_the_previous_hook() {
    // Installed before warden's hook exists: warden must chain to it.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let seen = seen.clone();
        panic::set_hook(Box::new(move |info| {
            let text = info
                .payload_as_str()
                .unwrap_or("<non-string payload>")
                .to_owned();
            seen.lock().unwrap().push(text);
        }));
    }
    let seen_now = || seen.lock().unwrap().clone();

    for flavor in [Flavor::Local, Flavor::Pool] {
        seen.lock().unwrap().clear();
        let rt = flavor.rt();

        // A panic inside a task: captured by warden, not passed on.
        let err = rt
            .block_on(rt.spawn(unit(async { panic!("inside a task") })))
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("inside a task"));
        assert!(err.location().is_some());
        assert_eq!(
            seen_now(),
            Vec::<String>::new(),
            "{flavor:?}: a task panic leaked"
        );

        // A panic outside any task, on this thread: the previous hook sees it.
        let caught = panic::catch_unwind(|| panic!("outside any task"));
        assert!(caught.is_err());
        assert_eq!(seen_now(), ["outside any task"], "{flavor:?}");

        // A panic in block_on's root future (not a task): it unwinds out of block_on and
        // goes to the previous hook.
        let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            rt.block_on(unit(async { panic!("in the root future") }))
        }));
        assert!(caught.is_err());
        assert_eq!(
            seen_now(),
            ["outside any task", "in the root future"],
            "{flavor:?}"
        );

        // A panic on an unrelated thread while the executor runs.
        let joined = thread::spawn(|| panic!("on another thread")).join();
        assert!(joined.is_err());
        assert_eq!(
            seen_now(),
            [
                "outside any task",
                "in the root future",
                "on another thread"
            ],
            "{flavor:?}"
        );

        // A task catches a panic of its own, returns, and its destructor then panics: the
        // destructor's panic is the failure, captured like any other, not passed on.
        struct CatchesThenExplodes;
        impl std::future::Future for CatchesThenExplodes {
            type Output = ();
            fn poll(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<()> {
                let caught = panic::catch_unwind(|| panic!("caught by the task itself"));
                assert!(caught.is_err());
                std::task::Poll::Ready(())
            }
        }
        impl Drop for CatchesThenExplodes {
            fn drop(&mut self) {
                panic!("the destructor after a caught panic");
            }
        }
        let err = rt.block_on(rt.spawn(CatchesThenExplodes)).unwrap_err();
        assert_eq!(
            err.panic_message(),
            Some("the destructor after a caught panic")
        );
        assert_eq!(seen_now().len(), 3, "{flavor:?}: a task panic leaked");

        // The executor still works, and a later task panic is still captured.
        assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
        let err = rt
            .block_on(rt.spawn(unit(async { panic!("inside another task") })))
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("inside another task"));
        assert_eq!(seen_now().len(), 3, "{flavor:?}: a task panic leaked");
    }
}

//! Panic capture, on both executors: a panicking task's `TaskError` keeps its message,
//! location, spawn site and backtrace, shows them in `Display` / `{:#}` / `Debug`, hands
//! back the original payload once (`into_panic`), and `Metrics` add up under many panics.

mod support;

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use support::{HookLog, Rt, assert_adds_up, payload_str, unit};
use warden::{Backtraces, Builder, TaskError};

/// `panic!($($arg)*)`, after storing the line and column it panics at into `$site` (a
/// `OnceLock<(u32, u32)>`). Both `line!()`/`column!()` and the panic location of code in a
/// macro body name the macro's invocation: this is "`line!()` on the same line as the
/// `panic!`", kept together through `rustfmt`.
macro_rules! panic_noting_site {
    ($site:expr; $($arg:tt)*) => {{
        let _ = $site.set((line!(), column!()));
        panic!($($arg)*)
    }};
}

/// [`std::panic::panic_any`] with a payload that is not a string, noting its site as
/// [`panic_noting_site!`] does.
macro_rules! panic_any_noting_site {
    ($site:expr; $payload:expr) => {{
        let _ = $site.set((line!(), column!()));
        std::panic::panic_any($payload)
    }};
}

/// Evaluates `$rt.spawn_named($name, $fut)` and returns the handle with the file, line and
/// column of this macro's invocation, which is also where `#[track_caller]` places the
/// call written in the macro body.
macro_rules! spawn_named_noting_site {
    ($rt:expr, $name:expr, $fut:expr) => {
        ($rt.spawn_named($name, $fut), file!(), line!(), column!())
    };
}

/// Where [`explode_in_a_named_function`] panics.
static EXPLODE_SITE: OnceLock<(u32, u32)> = OnceLock::new();

/// Panics with `msg`. Never inlined, so that its name shows in the backtrace.
#[inline(never)]
fn explode_in_a_named_function(msg: &str) {
    panic_noting_site!(EXPLODE_SITE; "{msg}");
}

fn explode_site() -> (u32, u32) {
    *EXPLODE_SITE.get().expect("explode_in_a_named_function ran")
}

/// Spawns a task named `name` that panics in [`explode_in_a_named_function`] with `msg`,
/// and returns its error and where it was spawned (file, line, column).
fn failed_named_task(
    rt: &Rt,
    name: &str,
    msg: &'static str,
) -> (TaskError, (&'static str, u32, u32)) {
    let (handle, file, line, column) = spawn_named_noting_site!(
        rt,
        name,
        unit(async move { explode_in_a_named_function(msg) })
    );
    let err = rt.block_on(handle).unwrap_err();
    (err, (file, line, column))
}

/// The file and line of `err`'s spawn site.
fn spawn_file_and_line(err: &TaskError) -> (String, u32) {
    let site = err.task().spawned_at();
    (site.file().to_owned(), site.line())
}

/// A payload of our own, for `panic_any`.
#[derive(Debug, PartialEq)]
struct Corrupted {
    block: u64,
}

rt_test! {
    fn panic_message_and_location_are_kept(flavor) {
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async { explode_in_a_named_function("connection reset") }));
        let err = rt.block_on(handle).unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert!(!err.is_error());
        assert!(!err.is_cancelled());
        assert_eq!(err.cancel_reason(), None);
        assert_eq!(err.panic_message(), Some("connection reset"));
        let location = err.location().expect("the panic location was captured");
        let (line, column) = explode_site();
        assert_eq!(location.file(), file!());
        assert_eq!(location.line(), line);
        assert_eq!(location.column(), column);
        assert_eq!(location.to_string(), format!("{}:{line}:{column}", file!()));
        let m = rt.metrics();
        assert_eq!((m.spawned, m.panicked, m.completed, m.live), (1, 1, 0, 0));
    }

    fn panic_directly_in_the_async_block_is_located_there(flavor) {
        static SITE: OnceLock<(u32, u32)> = OnceLock::new();
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async { panic_noting_site!(SITE; "in the block") }));
        let err = rt.block_on(handle).unwrap_err();
        let location = err.location().unwrap();
        assert_eq!(location.file(), file!());
        assert_eq!((location.line(), location.column()), *SITE.get().unwrap());
    }

    fn spawn_site_is_the_spawn_call(flavor) {
        let rt = flavor.rt();
        let (err, (file, line, column)) = failed_named_task(&rt, "site", "boom");
        let site = err.task().spawned_at();
        assert_eq!(site.file(), file);
        assert_eq!(site.file(), file!());
        assert_eq!((site.line(), site.column()), (line, column));

        // The other ways to spawn record their caller too.
        let (handle, line) = (rt.spawn(unit(async { panic!("a") })), line!());
        let err = rt.block_on(handle).unwrap_err();
        assert_eq!(spawn_file_and_line(&err), (file!().to_owned(), line));

        let (handle, line) = (rt.handle().spawn(unit(async { panic!("b") })), line!());
        let err = rt.block_on(handle).unwrap_err();
        assert_eq!(spawn_file_and_line(&err), (file!().to_owned(), line));

        let (err, line) = rt.block_on(async {
            let (handle, line) = (warden::spawn(unit(async { panic!("c") })), line!());
            (handle.await.unwrap_err(), line)
        });
        assert_eq!(spawn_file_and_line(&err), (file!().to_owned(), line));

        let (err, line) = rt.block_on(async {
            let (handle, line) = (warden::spawn_named("n", unit(async { panic!("d") })), line!());
            (handle.await.unwrap_err(), line)
        });
        assert_eq!(spawn_file_and_line(&err), (file!().to_owned(), line));
    }

    fn backtrace_names_the_function_that_panicked(flavor) {
        // Builder::new() has the default, Backtraces::Always.
        let rt = flavor.rt();
        let (err, _) = failed_named_task(&rt, "traced", "with a trace");
        let backtrace = err.backtrace().expect("Backtraces::Always captures a backtrace");
        let text = backtrace.to_string();
        assert!(
            text.contains("explode_in_a_named_function"),
            "the backtrace does not name the panicking function:\n{text}"
        );
    }

    fn backtraces_off_gives_none(flavor) {
        let rt = flavor.build(Builder::new().backtraces(Backtraces::Off));
        let (err, _) = failed_named_task(&rt, "untraced", "no trace");
        assert!(err.backtrace().is_none());
        // The rest of the report is still there.
        assert_eq!(err.panic_message(), Some("no trace"));
        assert_eq!(err.location().unwrap().line(), explode_site().0);
        let alternate = format!("{err:#}");
        assert!(!alternate.contains("stack backtrace"), "{alternate}");
        assert!(alternate.contains("no backtrace captured"), "{alternate}");
    }

    fn display_is_one_exact_line(flavor) {
        let rt = flavor.rt();
        let (err, (file, line, column)) = failed_named_task(&rt, "fetch-user", "connection reset");
        let (panic_line, panic_column) = explode_site();
        let expected = format!(
            "task 'fetch-user' #{} (spawned at {file}:{line}:{column}) \
             panicked at {}:{panic_line}:{panic_column}: connection reset",
            err.task().id().as_u64(),
            file!(),
        );
        assert_eq!(err.to_string(), expected);
        assert!(!err.to_string().contains('\n'));

        // Unnamed: `task #N`.
        let body = unit(async { explode_in_a_named_function("x") });
        let (handle, spawn_line) = (rt.spawn(body), line!());
        let err = rt.block_on(handle).unwrap_err();
        let spawned_at = err.task().spawned_at();
        assert_eq!(spawned_at.line(), spawn_line);
        let expected = format!(
            "task #{} (spawned at {}:{spawn_line}:{}) \
             panicked at {}:{panic_line}:{panic_column}: x",
            err.task().id().as_u64(),
            file!(),
            spawned_at.column(),
            file!(),
        );
        assert_eq!(err.to_string(), expected);
    }

    fn alternate_display_adds_the_backtrace(flavor) {
        let rt = flavor.rt();
        let (err, _) = failed_named_task(&rt, "alt", "with backtrace");
        let one_line = err.to_string();
        let alternate = format!("{err:#}");
        assert!(alternate.starts_with(&format!("{one_line}\n")), "{alternate}");
        assert!(alternate.contains("explode_in_a_named_function"), "{alternate}");
        assert!(alternate.lines().count() > 2, "{alternate}");
    }

    fn debug_is_the_same_report_as_display(flavor) {
        // `fn main() -> Result<(), TaskError>` and `.unwrap()` print `Debug`: the whole
        // report, as anyhow does, not the enum's insides.
        let rt = flavor.rt();
        let (err, _) = failed_named_task(&rt, "dbg", "debug me");
        assert_eq!(format!("{err:?}"), err.to_string());
        assert_eq!(format!("{err:#?}"), format!("{err:#}"));
        assert!(format!("{err:?}").starts_with("task 'dbg' #"), "{err:?}");
    }

    fn into_panic_returns_the_str_payload_once(flavor) {
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async { panic!("a static str") }));
        let err = rt.block_on(handle).unwrap_err();
        let clone = err.clone();
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"a static str"));
        // The payload was taken: the clone gets the message as a String.
        let second = clone.into_panic();
        assert!(second.downcast_ref::<&str>().is_none());
        assert_eq!(second.downcast_ref::<String>().map(String::as_str), Some("a static str"));
        // The payload is fit for resume_unwind.
        let resume = AssertUnwindSafe(|| std::panic::resume_unwind(payload));
        let resumed = std::panic::catch_unwind(resume).unwrap_err();
        assert_eq!(resumed.downcast_ref::<&str>(), Some(&"a static str"));
    }

    fn into_panic_returns_the_string_payload_once(flavor) {
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async {
            let n = 42;
            panic!("formatted {n}")
        }));
        let err = rt.block_on(handle).unwrap_err();
        assert_eq!(err.panic_message(), Some("formatted 42"));
        let clone = err.clone();
        let payload = clone.into_panic();
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("formatted 42"));
        let second = err.into_panic();
        assert_eq!(payload_str(&*second).as_deref(), Some("formatted 42"));
    }

    fn into_panic_returns_a_custom_payload(flavor) {
        static SITE: OnceLock<(u32, u32)> = OnceLock::new();
        let rt = flavor.rt();
        let handle = rt.spawn(unit(async {
            panic_any_noting_site!(SITE; Corrupted { block: 17 })
        }));
        let err = rt.block_on(handle).unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        let location = err.location().unwrap();
        assert_eq!(location.file(), file!());
        assert_eq!((location.line(), location.column()), *SITE.get().unwrap());
        let clone = err.clone();
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<Corrupted>(), Some(&Corrupted { block: 17 }));
        let second = clone.into_panic();
        assert!(second.downcast_ref::<Corrupted>().is_none());
        assert_eq!(payload_str(&*second).as_deref(), Some("Box<dyn Any>"));
    }

    fn a_panic_with_a_non_string_payload(flavor) {
        static SITE: OnceLock<(u32, u32)> = OnceLock::new();
        let rt = flavor.rt();
        let body = unit(async { panic_any_noting_site!(SITE; 42_i32) });
        let handle = rt.spawn_named("numeric", body);
        let err = rt.block_on(handle).unwrap_err();
        assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
        let (line, column) = *SITE.get().unwrap();
        assert!(
            err.to_string()
                .ends_with(&format!("panicked at {}:{line}:{column}: Box<dyn Any>", file!())),
            "{err}"
        );
        assert_eq!(err.into_panic().downcast_ref::<i32>(), Some(&42));
    }

    fn metrics_add_up_after_ten_thousand_tasks_with_every_tenth_panicking(flavor) {
        let hook = HookLog::new();
        let rt = flavor.build(hook.builder());
        let handles: Vec<_> = (0..10_000u32)
            .map(|i| {
                rt.spawn(async move {
                    if i % 10 == 9 {
                        panic!("task {i} panics");
                    }
                    i
                })
            })
            .collect();
        let (ok, failed) = rt.block_on(async move {
            let (mut ok, mut failed) = (0u64, Vec::new());
            for handle in handles {
                match handle.await {
                    Ok(_) => ok += 1,
                    Err(err) => failed.push(err),
                }
            }
            (ok, failed)
        });
        assert_eq!(ok, 9_000);
        assert_eq!(failed.len(), 1_000);
        assert!(failed.iter().all(TaskError::is_panic));
        assert_eq!(failed[0].panic_message(), Some("task 9 panics"));
        assert_eq!(failed[999].panic_message(), Some("task 9999 panics"));
        let m = rt.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.panicked, m.errored, m.cancelled, m.live),
            (10_000, 9_000, 1_000, 0, 0, 0),
            "{m:?}"
        );
        assert_adds_up(&m);
        assert_eq!(hook.len(), 0, "every failure was awaited");
    }

    fn a_re_raised_panic_never_takes_a_stale_location(flavor) {
        // The task catches a panic of its own (which the panic hook recorded), awaits, and
        // then re-raises a payload with the same message that panicked on another thread
        // (as `blocking::unblock` does): no hook runs for the re-raise, and the record of
        // the caught panic must not be attached to it.
        let rt = flavor.rt();
        let handle = rt.spawn(async {
            let caught = std::panic::catch_unwind(|| std::hint::black_box(None::<u8>).unwrap());
            assert!(caught.is_err());
            warden::yield_now().await;
            let elsewhere = std::thread::spawn(|| {
                // `resume_unwind` runs no panic hook: nothing is printed for this thread.
                std::panic::resume_unwind(Box::new("called `Option::unwrap()` on a `None` value"))
            })
            .join()
            .unwrap_err();
            std::panic::resume_unwind(elsewhere)
        });
        let err = rt.block_on(handle).unwrap_err();
        assert_eq!(
            err.panic_message(),
            Some("called `Option::unwrap()` on a `None` value")
        );
        assert_eq!(err.location(), None, "a stale location: {err}");
        assert!(err.backtrace().is_none(), "a stale backtrace: {err:#}");
    }

    fn a_panic_caught_and_re_raised_in_one_poll_keeps_its_location(flavor) {
        let rt = flavor.rt();
        let site = std::sync::Arc::new(OnceLock::new());
        let handle = rt.spawn({
            let site = site.clone();
            async move {
                let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    panic_noting_site!(site; "caught, then re-raised")
                }));
                std::panic::resume_unwind(caught.unwrap_err())
            }
        });
        let err = rt.block_on(handle).unwrap_err();
        let (line, _) = *site.get().unwrap();
        assert_eq!(err.location().map(|l| (l.file(), l.line())), Some((file!(), line)));
    }
}

//! Task groups: the first failure cancels the siblings, `join` reports every failure,
//! cancellation is checked before every poll, nesting, deadlines, and the error hook.

mod support;

use std::fmt;
use std::future::{Future, pending};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use support::{
    DropCounter, Flavor, HookLog, PollCounter, assert_adds_up, bounded, payload_text, unit,
    wait_until,
};
use warden::{CancelReason, JoinHandle, TaskGroup};

/// A custom error type a group task returns as `Err`, matched with `downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QuotaExceeded {
    user: String,
    limit: u32,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {} exceeded their quota of {}",
            self.user, self.limit
        )
    }
}

impl std::error::Error for QuotaExceeded {}

fn quota() -> QuotaExceeded {
    QuotaExceeded {
        user: "ada".into(),
        limit: 3,
    }
}

/// Waits until the task behind `handle` has finished, without reading its result.
async fn wait_finished<T>(handle: &JoinHandle<T>) {
    wait_until("a task to finish", || handle.is_finished()).await;
}

/// A member that counts its starts and then waits forever (until cancelled).
fn started_pending(started: &Arc<AtomicUsize>) -> impl Future<Output = ()> + Send + 'static {
    let started = started.clone();
    async move {
        started.fetch_add(1, Ordering::SeqCst);
        pending::<()>().await
    }
}

/// Panics when dropped: a destructor that fails during cancellation.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor failed");
    }
}

/// A future that wakes itself on every poll and counts its polls.
struct Spinner(Arc<AtomicUsize>);

impl Future for Spinner {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Where `parse_header` panics; the failure report must point here.
const PARSE_PANIC_LINE: u32 = line!() + 6;

#[inline(never)]
fn parse_header(input: &str) -> u32 {
    match input.parse() {
        Ok(n) => n,
        Err(_) => panic!("bad header: {input:?}"),
    }
}

rt_test! {
    // ---------------------------------------------------------------------------------
    // Seed practice 1: a typed error matched with `downcast_ref` (asyncio's `except E`).

    fn typed_error_matched_with_downcast_ref(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let (handle_err, group_err, panic_err) = rt.block_on(async {
                let group = TaskGroup::supervisor();
                let typed = group.spawn_named("quota", async { Err::<u32, _>(quota()) });
                let typed_err = typed.await.unwrap_err();
                let panicked = group.spawn(unit(async { panic!("not a typed error") }));
                let panic_err = panicked.await.unwrap_err();
                (typed_err, group.join().await.unwrap_err(), panic_err)
            });
            assert!(handle_err.is_error(), "{handle_err:?}");
            assert!(!handle_err.is_panic() && !handle_err.is_cancelled());
            // The `except QuotaExceeded:` arm.
            let handled = match handle_err.downcast_ref::<QuotaExceeded>() {
                Some(q) => format!("{} over {}", q.user, q.limit),
                None => panic!("expected a QuotaExceeded, got {handle_err:?}"),
            };
            assert_eq!(handled, "ada over 3");
            assert!(handle_err.downcast_ref::<io::Error>().is_none());
            let source = std::error::Error::source(&handle_err).expect("the error is the source");
            assert_eq!(source.downcast_ref::<QuotaExceeded>(), Some(&quota()));
            assert!(
                handle_err
                    .to_string()
                    .contains("failed: user ada exceeded their quota of 3"),
                "{handle_err}"
            );
            // The same failure, through the group's report.
            let first = group_err.first().expect("a failure");
            assert_eq!(first.task().id(), handle_err.task().id());
            assert_eq!(first.downcast_ref::<QuotaExceeded>(), Some(&quota()));
            // A panic is not a typed error.
            assert!(panic_err.is_panic());
            assert!(panic_err.downcast_ref::<QuotaExceeded>().is_none());
            assert_eq!(group_err.failures().len(), 2);
        });
    }

    // ---------------------------------------------------------------------------------
    // Seed practice 2: `join` as the top-level handler sees every failure.

    fn supervisor_join_sees_every_failure_in_order(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let (err, ids, values) = rt.block_on(async {
                let group = TaskGroup::supervisor();
                let (tx, rx) = oneshot::channel::<u32>();
                let late_ok = group.spawn_named("late-ok", async move {
                    Ok::<_, io::Error>(rx.await.unwrap() + 1)
                });
                let early_ok = group.spawn_named("early-ok", async { Ok::<_, io::Error>(1) });
                let a = group.spawn_named("panics", unit(async { panic!("first: a panic") }));
                wait_finished(&a).await;
                let b = group.spawn_named("quota", async { Err::<(), _>(quota()) });
                wait_finished(&b).await;
                let c = group.spawn_named("io", async {
                    Err::<(), _>(io::Error::new(io::ErrorKind::NotFound, "third: no such file"))
                });
                wait_finished(&c).await;
                assert!(!group.is_cancelled(), "a supervisor cancels nobody");
                tx.send(41).unwrap();
                let values = (early_ok.await.unwrap(), late_ok.await.unwrap());
                let ids = [a.id(), b.id(), c.id()];
                // The failing handles are dropped unread: `join` is the handler.
                drop((a, b, c));
                (group.join().await.unwrap_err(), ids, values)
            });
            assert_eq!(values, (1, 42));
            let failures = err.failures();
            assert_eq!(failures.len(), 3, "{err:?}");
            assert_eq!(err.cancelled(), 0);
            assert_eq!(err.reason(), None);
            let got: Vec<_> = failures.iter().map(|f| f.task().id()).collect();
            assert_eq!(got, ids, "failures are in the order they happened");
            assert_eq!(failures[0].panic_message(), Some("first: a panic"));
            assert_eq!(failures[1].downcast_ref::<QuotaExceeded>(), Some(&quota()));
            let io_err = failures[2].downcast_ref::<io::Error>().expect("an io::Error");
            assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
            assert_eq!(err.first().map(|f| f.task().id()), Some(ids[0]));
            // Display: a header, then each failure on its own line.
            let text = err.to_string();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 4, "{text}");
            assert!(lines[0].contains("3 failures, 0 cancelled"), "{text}");
            for (i, failure) in failures.iter().enumerate() {
                assert!(lines[i + 1].contains(&failure.to_string()), "{text}");
                assert!(lines[i + 1].contains(&format!("{}.", i + 1)), "{text}");
            }
            assert!(lines[1].contains("'panics'") && lines[1].contains("first: a panic"));
            assert!(lines[2].contains("'quota'") && lines[2].contains("exceeded their quota"));
            assert!(lines[3].contains("'io'") && lines[3].contains("third: no such file"));
        });
    }

    // ---------------------------------------------------------------------------------
    // Seed practice 3: a failure report with location, backtrace and spawn site.

    fn failure_report_has_location_backtrace_and_spawn_site(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let spawn_line = line!() + 3;
            let (err, group_id) = rt.block_on(async {
                let group = TaskGroup::new();
                let parser = group.spawn_named("parser", async { io::Result::Ok(parse_header("x")) });
                let group_id = group.id();
                parser.detach();
                (group.join().await.unwrap_err(), group_id)
            });
            let first = err.first().expect("the panic is the first failure");
            assert!(first.is_panic());
            assert_eq!(first.panic_message(), Some("bad header: \"x\""));
            // Where it panicked.
            let location = first.location().expect("a panic location");
            assert_eq!(location.file(), file!());
            assert_eq!(location.line(), PARSE_PANIC_LINE);
            // The backtrace (Backtraces::Always is the default), naming the function.
            let backtrace = first.backtrace().expect("a captured backtrace");
            let backtrace = backtrace.to_string();
            assert!(backtrace.contains("parse_header"), "{backtrace}");
            // Which task, spawned where.
            let task = first.task();
            assert_eq!(task.name(), Some("parser"));
            assert_eq!(task.group(), Some(group_id));
            assert_eq!(task.spawned_at().file(), file!());
            assert_eq!(task.spawned_at().line(), spawn_line);
            // One line a person can act on, and `{:#}` adds the trace.
            let line = first.to_string();
            assert!(line.starts_with(&format!("task 'parser' {}", task.id())), "{line}");
            assert!(line.contains(&format!("(spawned at {}:{}:", file!(), spawn_line)), "{line}");
            assert!(
                line.contains(&format!("panicked at {location}: bad header")),
                "{line}"
            );
            assert!(!line.contains('\n'), "{line}");
            let full = format!("{first:#}");
            assert!(full.contains("stack backtrace:") && full.contains("parse_header"), "{full}");
            // The group report carries it too.
            let report = format!("{err:#}");
            assert!(report.contains("stack backtrace:") && report.contains("parse_header"));
            let source = std::error::Error::source(&err).expect("the first failure");
            assert_eq!(source.to_string(), line);
        });
    }

    // ---------------------------------------------------------------------------------
    // Seed practice 4: the siblings of a failed task are cancelled, destructors run.

    fn siblings_cancelled_with_destructors_and_sibling_failed(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let started = Arc::new(AtomicUsize::new(0));
            let (failing_id, sibling_errs, err, failing_err) = rt.block_on(async {
                let group = TaskGroup::new();
                let siblings: Vec<_> = (0..3)
                    .map(|_| {
                        let token = drops.token();
                        let body = started_pending(&started);
                        group.spawn(async move {
                            let _token = token;
                            body.await
                        })
                    })
                    .collect();
                wait_until("the siblings to start", || started.load(Ordering::SeqCst) == 3).await;
                assert_eq!(drops.count(), 0);
                let failing = group.spawn_named("failing", async { Err::<(), _>(quota()) });
                let failing_id = failing.id();
                let mut sibling_errs = Vec::new();
                for sibling in siblings {
                    sibling_errs.push(sibling.await.unwrap_err());
                }
                let err = group.join().await.unwrap_err();
                (failing_id, sibling_errs, err, failing.await.unwrap_err())
            });
            assert_eq!(drops.count(), 3, "every sibling's destructor ran");
            for e in &sibling_errs {
                assert!(e.is_cancelled(), "{e:?}");
                assert_eq!(e.cancel_reason(), Some(&CancelReason::SiblingFailed(failing_id)));
            }
            assert!(failing_err.is_error());
            assert_eq!(err.reason(), Some(&CancelReason::SiblingFailed(failing_id)));
            assert_eq!(err.cancelled(), 3);
            assert_eq!(err.failures().len(), 1);
            assert_eq!(err.first().unwrap().task().id(), failing_id);
            let m = rt.metrics();
            assert_eq!((m.errored, m.cancelled, m.live), (1, 3, 0));
            assert_adds_up(&m);
        });
    }

    fn a_panic_cancels_its_siblings_too(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let (panicker_id, sibling_err, err) = rt.block_on(async {
                let group = TaskGroup::new();
                let token = drops.token();
                let sibling = group.spawn(async move {
                    let _token = token;
                    warden::sleep(Duration::from_secs(60)).await;
                });
                let panicker = group.spawn(unit(async { panic!("boom") }));
                let id = panicker.id();
                drop(panicker);
                (id, sibling.await.unwrap_err(), group.join().await.unwrap_err())
            });
            assert_eq!(drops.count(), 1);
            let sibling_failed = CancelReason::SiblingFailed(panicker_id);
            assert_eq!(sibling_err.cancel_reason(), Some(&sibling_failed));
            assert_eq!(err.reason(), Some(&CancelReason::SiblingFailed(panicker_id)));
            assert_eq!(err.first().unwrap().panic_message(), Some("boom"));
            assert_eq!(rt.timer_count(), 0, "the cancelled sleep removed its timer");
        });
    }

    // ---------------------------------------------------------------------------------
    // Cancellation at every poll.

    fn cancelled_member_is_never_polled_after_cancel_returns(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let (at_cancel, after, err) = rt.block_on(async {
                let group = TaskGroup::new();
                let counters: Vec<_> = (0..8)
                    .map(|_| {
                        let (counter, polls) = PollCounter::pending();
                        group.spawn(counter).detach();
                        polls
                    })
                    .collect();
                let load = |c: &Vec<Arc<AtomicUsize>>| -> Vec<usize> {
                    c.iter().map(|p| p.load(Ordering::SeqCst)).collect()
                };
                wait_until("every member's first poll", || load(&counters).iter().all(|&n| n >= 1))
                    .await;
                group.cancel();
                let at_cancel = load(&counters);
                let err = group.join().await.unwrap_err();
                (at_cancel, load(&counters), err)
            });
            assert!(at_cancel.iter().all(|&n| n >= 1));
            assert_eq!(at_cancel, after, "a member was polled after cancel() returned");
            assert_eq!(err.cancelled(), 8);
            assert_eq!(err.reason(), Some(&CancelReason::Explicit(None)));
            assert!(err.first().is_none());
        });
    }

    fn busy_members_stop_being_polled_at_cancel(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let (at_cancel, after) = rt.block_on(async {
                let group = TaskGroup::new();
                let counters: Vec<_> = (0..2)
                    .map(|_| {
                        let polls = Arc::new(AtomicUsize::new(0));
                        group.spawn(Spinner(polls.clone())).detach();
                        polls
                    })
                    .collect();
                let load = |c: &Vec<Arc<AtomicUsize>>| -> Vec<usize> {
                    c.iter().map(|p| p.load(Ordering::SeqCst)).collect()
                };
                let spinning = || load(&counters).iter().all(|&n| n >= 10);
                wait_until("the spinners to spin", spinning).await;
                group.cancel();
                let at_cancel = load(&counters);
                let err = group.join().await.unwrap_err();
                assert_eq!(err.cancelled(), 2);
                (at_cancel, load(&counters))
            });
            for (before, after) in at_cancel.iter().zip(&after) {
                match flavor {
                    // The root future runs between tasks: no poll is in flight at cancel.
                    Flavor::Local => assert_eq!(before, after),
                    // A poll that had already started on a worker may still finish; no new
                    // one may start.
                    Flavor::Pool => assert!(*after <= before + 1, "{before} -> {after}"),
                }
            }
        });
    }

    // ---------------------------------------------------------------------------------
    // Nesting.

    fn cancelling_the_top_reaches_grandchildren_as_parent_cancelled(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            rt.block_on(async {
                let top = TaskGroup::new();
                let mid = top.child();
                let leaf = mid.child();
                let started = Arc::new(AtomicUsize::new(0));
                let t = top.spawn(started_pending(&started));
                let m = mid.spawn(started_pending(&started));
                let token = drops.token();
                let body = started_pending(&started);
                let l = leaf.spawn(async move {
                    let _token = token;
                    body.await
                });
                wait_until("all three to start", || started.load(Ordering::SeqCst) == 3).await;
                assert!(!leaf.is_cancelled());
                top.cancel();
                assert!(top.is_cancelled() && mid.is_cancelled() && leaf.is_cancelled());
                let l = l.await.unwrap_err();
                assert_eq!(l.cancel_reason(), Some(&CancelReason::ParentCancelled));
                assert_eq!(drops.count(), 1);
                let m = m.await.unwrap_err();
                assert_eq!(m.cancel_reason(), Some(&CancelReason::ParentCancelled));
                let t = t.await.unwrap_err();
                assert_eq!(t.cancel_reason(), Some(&CancelReason::Explicit(None)));
                let leaf_err = leaf.join().await.unwrap_err();
                assert_eq!(leaf_err.reason(), Some(&CancelReason::ParentCancelled));
                assert_eq!(leaf_err.cancelled(), 1);
                let mid_err = mid.join().await.unwrap_err();
                assert_eq!(mid_err.reason(), Some(&CancelReason::ParentCancelled));
                let top_err = top.join().await.unwrap_err();
                assert_eq!(top_err.reason(), Some(&CancelReason::Explicit(None)));
                assert_eq!(top_err.cancelled(), 1);
            });
        });
    }

    fn cancelling_a_child_does_not_cancel_the_parent(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let top = TaskGroup::new();
                let mid = top.child();
                let leaf = mid.child();
                let (tx, rx) = oneshot::channel::<u32>();
                let t = top.spawn(async move { Ok::<_, io::Error>(rx.await.unwrap() * 2) });
                let m = mid.spawn(pending::<()>());
                let l = leaf.spawn(pending::<()>());
                mid.cancel_with("mid only");
                assert!(!top.is_cancelled(), "cancelling a child cancelled its parent");
                assert!(mid.is_cancelled() && leaf.is_cancelled());
                let l = l.await.unwrap_err();
                assert_eq!(l.cancel_reason(), Some(&CancelReason::ParentCancelled));
                let m = m.await.unwrap_err();
                assert_eq!(
                    m.cancel_reason(),
                    Some(&CancelReason::Explicit(Some("mid only".into())))
                );
                assert!(!t.is_finished(), "the parent's member was cancelled");
                tx.send(21).unwrap();
                assert_eq!(t.await.unwrap(), 42);
                assert!(!top.is_cancelled());
                assert!(top.join().await.is_ok());
                let mid_err = mid.join().await.unwrap_err();
                assert_eq!(
                    mid_err.reason(),
                    Some(&CancelReason::Explicit(Some("mid only".into())))
                );
                assert_eq!(mid_err.cancelled(), 1);
                let leaf_err = leaf.join().await.unwrap_err();
                assert_eq!(leaf_err.reason(), Some(&CancelReason::ParentCancelled));
            });
        });
    }

    fn a_parent_deadline_reaches_child_members(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let top = TaskGroup::new().with_timeout(Duration::from_millis(20));
                let child = top.child();
                let top_member = top.spawn(pending::<()>());
                let member = child.spawn(pending::<()>());
                let err = member.await.unwrap_err();
                assert_eq!(err.cancel_reason(), Some(&CancelReason::ParentCancelled));
                assert!(top.is_cancelled());
                let top_member = top_member.await.unwrap_err();
                assert_eq!(top_member.cancel_reason(), Some(&CancelReason::Deadline));
                let top_err = top.join().await.unwrap_err();
                assert_eq!(top_err.reason(), Some(&CancelReason::Deadline));
                assert_eq!(top_err.cancelled(), 1);
                let child_err = child.join().await.unwrap_err();
                assert_eq!(child_err.reason(), Some(&CancelReason::ParentCancelled));
            });
        });
    }

    // ---------------------------------------------------------------------------------
    // Supervisors.

    fn supervisor_collects_every_failure_and_cancels_nobody(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let group = TaskGroup::supervisor();
                let (tx, rx) = oneshot::channel::<u32>();
                let patient = group.spawn_named("patient", async move {
                    Ok::<_, io::Error>(rx.await.unwrap() * 2)
                });
                let a = group.spawn(unit(async { panic!("one") }));
                wait_finished(&a).await;
                let b = group.spawn(async { Err::<(), _>(io::Error::other("two")) });
                wait_finished(&b).await;
                assert!(!group.is_cancelled(), "a supervisor was cancelled by a failure");
                assert!(!patient.is_finished());
                tx.send(21).unwrap();
                assert_eq!(patient.await.unwrap(), 42, "the sibling completed normally");
                let ids = [a.id(), b.id()];
                drop((a, b));
                let err = group.join().await.unwrap_err();
                let got: Vec<_> = err.failures().iter().map(|f| f.task().id()).collect();
                assert_eq!(got, ids);
                assert_eq!(err.cancelled(), 0);
                assert_eq!(err.reason(), None);
            });
        });
    }

    // ---------------------------------------------------------------------------------
    // Many members.

    fn ten_thousand_pending_members_cancelled(flavor) {
        bounded(move || {
            const N: usize = 10_000;
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let started = Arc::new(AtomicUsize::new(0));
            let err = rt.block_on(async {
                let group = TaskGroup::new();
                for _ in 0..N {
                    let token = drops.token();
                    let body = started_pending(&started);
                    group
                        .spawn(async move {
                            let _token = token;
                            body.await
                        })
                        .detach();
                }
                wait_until("every member to start", || started.load(Ordering::SeqCst) == N).await;
                assert_eq!(drops.count(), 0);
                group.cancel();
                group.join().await.unwrap_err()
            });
            assert_eq!(drops.count(), N, "every destructor ran");
            assert_eq!(err.cancelled(), N);
            assert!(err.failures().is_empty());
            assert!(err.first().is_none());
            assert_eq!(err.reason(), Some(&CancelReason::Explicit(None)));
            let m = rt.metrics();
            assert_eq!((m.spawned, m.cancelled, m.live), (N as u64, N as u64, 0));
            assert_adds_up(&m);
        });
    }

    // ---------------------------------------------------------------------------------
    // Deadlines.

    fn with_timeout_cancels_with_deadline(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            let start = Instant::now();
            let (err, member_err) = rt.block_on(async {
                let group = TaskGroup::new().with_timeout(Duration::from_millis(20));
                let token = drops.token();
                let member = group.spawn(async move {
                    let _token = token;
                    pending::<()>().await
                });
                let member_err = member.await.unwrap_err();
                (group.join().await.unwrap_err(), member_err)
            });
            assert!(start.elapsed() >= Duration::from_millis(20), "cancelled before its deadline");
            assert_eq!(err.reason(), Some(&CancelReason::Deadline));
            assert!(err.first().is_none());
            assert_eq!(err.cancelled(), 1);
            assert_eq!(member_err.cancel_reason(), Some(&CancelReason::Deadline));
            assert_eq!(drops.count(), 1);
            assert!(err.to_string().contains("deadline"), "{err}");
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn with_deadline_cancels_with_deadline(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let deadline = Instant::now() + Duration::from_millis(20);
            let err = rt.block_on(async {
                let group = TaskGroup::supervisor().with_deadline(deadline);
                group.spawn(pending::<()>()).detach();
                group.spawn(warden::sleep(Duration::from_secs(60))).detach();
                let done = group.spawn(async { Ok::<_, io::Error>(1) });
                assert_eq!(done.await.unwrap(), 1);
                group.join().await.unwrap_err()
            });
            assert!(Instant::now() >= deadline);
            assert_eq!(err.reason(), Some(&CancelReason::Deadline));
            assert!(err.first().is_none());
            assert_eq!(err.cancelled(), 2);
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn with_timeout_of_duration_max_means_no_deadline(flavor) {
        // Same family as time.rs's huge_durations_do_not_overflow: a valid `Duration`
        // must not panic with an `Instant` overflow.
        bounded(move || {
            let rt = flavor.rt();
            let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(async {
                    let group = TaskGroup::new().with_timeout(Duration::MAX);
                    let member = group.spawn(async { Ok::<_, io::Error>(1) });
                    assert_eq!(member.await.unwrap(), 1);
                    group.join().await
                })
            }));
            let joined = joined.expect("with_timeout(Duration::MAX) panicked");
            assert!(joined.is_ok(), "{joined:?}");
            assert_eq!(rt.timer_count(), 0);
        });
    }

    fn a_group_done_before_its_deadline_is_ok_and_removes_its_timer(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let group = TaskGroup::new().with_timeout(Duration::from_secs(60));
                assert_eq!(rt.timer_count(), 1, "the deadline is a timer");
                let member = group.spawn(async { Ok::<_, io::Error>(3) });
                assert_eq!(member.await.unwrap(), 3);
                assert!(group.join().await.is_ok());
                assert_eq!(rt.timer_count(), 0, "join left the deadline timer behind");
                let dropped = TaskGroup::new().with_timeout(Duration::from_secs(60));
                assert_eq!(rt.timer_count(), 1);
                drop(dropped);
                assert_eq!(rt.timer_count(), 0, "drop left the deadline timer behind");
            });
        });
    }

    // ---------------------------------------------------------------------------------
    // The error hook: nothing lost, nothing twice.

    fn a_group_dropped_unjoined_gives_its_failure_to_the_hook_once(flavor) {
        bounded(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let failing_id = rt.block_on(async {
                let group = TaskGroup::new();
                let sibling = group.spawn(pending::<()>());
                let failing = group.spawn_named("lost", unit(async { panic!("nobody joins") }));
                let id = failing.id();
                wait_finished(&failing).await;
                drop(failing);
                let sibling = sibling.await.unwrap_err();
                assert_eq!(sibling.cancel_reason(), Some(&CancelReason::SiblingFailed(id)));
                assert_eq!(log.len(), 0, "the group could still report it");
                drop(group);
                assert_eq!(log.len(), 1, "dropping the group must hand the failure on");
                id
            });
            rt.shutdown();
            drop(rt);
            let seen = log.errors();
            assert_eq!(seen.len(), 1, "{seen:?}");
            assert_eq!(seen[0].task().id(), failing_id);
            assert_eq!(seen[0].panic_message(), Some("nobody joins"));
        });
    }

    fn an_unread_handle_keeps_the_failure_from_the_hook_until_dropped(flavor) {
        bounded(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            rt.block_on(async {
                let group = TaskGroup::new();
                let failing = group.spawn(async { Err::<(), _>(quota()) });
                wait_finished(&failing).await;
                drop(group);
                assert_eq!(log.len(), 0, "the handle can still read it");
                drop(failing);
                assert_eq!(log.len(), 1);
            });
            drop(rt);
            assert_eq!(log.len(), 1);
            assert_eq!(log.errors()[0].downcast_ref::<QuotaExceeded>(), Some(&quota()));
        });
    }

    fn an_awaited_failure_is_not_given_to_the_hook_when_the_group_drops(flavor) {
        bounded(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let unread_id = rt.block_on(async {
                let group = TaskGroup::supervisor();
                let read = group.spawn(async { Err::<(), _>(quota()) });
                let unread = group.spawn(unit(async { panic!("unread") }));
                let unread_id = unread.id();
                assert!(read.await.unwrap_err().is_error());
                wait_finished(&unread).await;
                drop(unread);
                drop(group);
                unread_id
            });
            drop(rt);
            let seen = log.errors();
            assert_eq!(seen.len(), 1, "{seen:?}");
            assert_eq!(seen[0].task().id(), unread_id);
        });
    }

    fn join_reports_awaited_failures_and_the_hook_sees_nothing(flavor) {
        bounded(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            let (err, ids) = rt.block_on(async {
                let group = TaskGroup::supervisor();
                let read = group.spawn(async { Err::<(), _>(quota()) });
                wait_finished(&read).await;
                let unread = group.spawn(unit(async { panic!("unread") }));
                wait_finished(&unread).await;
                let detached = group.spawn(async { Err::<(), _>(io::Error::other("detached")) });
                let ids = [read.id(), unread.id(), detached.id()];
                detached.detach();
                assert_eq!(read.await.unwrap_err().downcast_ref::<QuotaExceeded>(), Some(&quota()));
                drop(unread);
                (group.join().await.unwrap_err(), ids)
            });
            let got: Vec<_> = err.failures().iter().map(|f| f.task().id()).collect();
            assert_eq!(got, ids, "join reports every failure, awaited or not");
            assert_eq!(log.len(), 0);
            drop(rt);
            assert_eq!(log.len(), 0, "a failure reported by join reached the hook");
        });
    }

    // ---------------------------------------------------------------------------------
    // Spawning into a cancelled group, dropping a group.

    fn spawning_into_a_cancelled_group_cancels_before_the_first_poll(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let group = TaskGroup::new();
                group.cancel_with("closing");
                let (counter, polls) = PollCounter::pending();
                let member = group.spawn(counter);
                let err = member.await.unwrap_err();
                assert_eq!(polls.load(Ordering::SeqCst), 0, "polled after its group was cancelled");
                let closing = CancelReason::Explicit(Some("closing".into()));
                assert_eq!(err.cancel_reason(), Some(&closing));
                // A child of a cancelled group is born cancelled.
                let child = group.child();
                assert!(child.is_cancelled());
                let (counter, child_polls) = PollCounter::pending();
                let err = child.spawn(counter).await.unwrap_err();
                assert_eq!(child_polls.load(Ordering::SeqCst), 0);
                assert_eq!(err.cancel_reason(), Some(&CancelReason::ParentCancelled));
                let report = group.join().await.unwrap_err();
                assert_eq!(report.reason(), Some(&closing));
                assert_eq!(report.cancelled(), 1);
                drop(child);
            });
        });
    }

    fn spawning_after_a_failure_yields_sibling_failed(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let group = TaskGroup::new();
                let failing = group.spawn(async { Err::<(), _>(quota()) });
                wait_finished(&failing).await;
                assert!(group.is_cancelled());
                let (counter, polls) = PollCounter::pending();
                let late = group.spawn(counter).await.unwrap_err();
                assert_eq!(polls.load(Ordering::SeqCst), 0);
                assert_eq!(late.cancel_reason(), Some(&CancelReason::SiblingFailed(failing.id())));
                drop(failing);
                let err = group.join().await.unwrap_err();
                assert_eq!((err.failures().len(), err.cancelled()), (1, 1));
            });
        });
    }

    fn dropping_a_group_cancels_unfinished_members_with_group_dropped(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let drops = DropCounter::new();
            rt.block_on(async {
                let group = TaskGroup::new();
                let token = drops.token();
                let unfinished = group.spawn(async move {
                    let _token = token;
                    pending::<()>().await
                });
                let done = group.spawn(async { Ok::<_, io::Error>(5) });
                wait_finished(&done).await;
                drop(group);
                let err = unfinished.await.unwrap_err();
                assert_eq!(err.cancel_reason(), Some(&CancelReason::GroupDropped));
                assert_eq!(drops.count(), 1);
                assert_eq!(done.await.unwrap(), 5, "a finished member keeps its value");
            });
            let m = rt.metrics();
            assert_eq!((m.completed, m.cancelled, m.live), (1, 1, 0));
        });
    }

    fn cancellations_never_reach_the_hook(flavor) {
        bounded(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            rt.block_on(async {
                let dropped = TaskGroup::new();
                dropped.spawn(pending::<()>()).detach();
                let member = dropped.spawn(pending::<()>());
                drop(dropped);
                assert!(member.await.unwrap_err().is_cancelled());
                let cancelled = TaskGroup::new();
                let member = cancelled.spawn(warden::sleep(Duration::from_secs(60)));
                cancelled.spawn(pending::<()>()).detach();
                cancelled.cancel();
                drop(member);
                assert_eq!(cancelled.join().await.unwrap_err().cancelled(), 2);
            });
            let m = rt.metrics();
            assert_eq!((m.cancelled, m.live), (4, 0));
            drop(rt);
            assert_eq!(log.len(), 0, "{:?}", log.errors());
        });
    }

    fn a_destructor_panic_during_cancellation_is_a_failure(flavor) {
        bounded(move || {
            let log = HookLog::new();
            let rt = flavor.build(log.builder());
            rt.block_on(async {
                // Joined: the report has it, the hook does not.
                let group = TaskGroup::new();
                let guard = PanicOnDrop;
                let member = group.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await
                });
                warden::yield_now().await;
                group.cancel();
                let err = member.await.unwrap_err();
                assert!(err.is_panic(), "{err:?}");
                assert_eq!(err.panic_message(), Some("destructor failed"));
                let report = group.join().await.unwrap_err();
                assert_eq!(report.failures().len(), 1);
                assert_eq!(report.reason(), Some(&CancelReason::Explicit(None)));
                assert_eq!(log.len(), 0);
                // Dropped, handle detached: the failure happens after the group is gone and
                // reaches the hook, once.
                let group = TaskGroup::new();
                let guard = PanicOnDrop;
                group
                    .spawn(async move {
                        let _guard = guard;
                        pending::<()>().await
                    })
                    .detach();
                warden::yield_now().await;
                drop(group);
                wait_until("the hook to see the destructor's panic", || log.len() == 1).await;
            });
            drop(rt);
            let seen = log.errors();
            assert_eq!(seen.len(), 1, "{seen:?}");
            assert_eq!(seen[0].panic_message(), Some("destructor failed"));
        });
    }

    fn cancelling_the_top_reaches_grandchildren_after_the_middle_group_joined(flavor) {
        bounded(move || {
            // DESIGN: before each poll the executor checks the task's group "and ancestors'".
            // The middle group finishing (join) does not make the leaf stop being the top's
            // grandchild.
            let rt = flavor.rt();
            rt.block_on(async {
                let top = TaskGroup::new();
                let mid = top.child();
                let leaf = mid.child();
                let (counter, polls) = PollCounter::pending();
                let member = leaf.spawn(counter);
                wait_until("the leaf member's first poll", || polls.load(Ordering::SeqCst) == 1)
                    .await;
                assert!(mid.join().await.is_ok(), "the middle group had no members");
                top.cancel();
                assert!(leaf.is_cancelled(), "top.cancel() did not reach the grandchild group");
                let result = warden::timeout(Duration::from_secs(2), member).await;
                let err = result.expect("the grandchild member was never cancelled").unwrap_err();
                assert_eq!(err.cancel_reason(), Some(&CancelReason::ParentCancelled));
                assert_eq!(polls.load(Ordering::SeqCst), 1);
                drop(leaf);
                assert!(top.join().await.is_ok());
            });
        });
    }

    fn dropping_an_unfinished_join_cancels_with_group_dropped(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let group = TaskGroup::new();
                let member = group.spawn(pending::<()>());
                let mut join = Box::pin(group.join());
                assert!(futures::poll!(&mut join).is_pending());
                drop(join);
                let err = member.await.unwrap_err();
                assert_eq!(err.cancel_reason(), Some(&CancelReason::GroupDropped));
            });
        });
    }

    // ---------------------------------------------------------------------------------
    // Creating groups; Ok from join.

    fn join_is_ok_when_every_member_succeeded(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let values = rt.block_on(async {
                let group = TaskGroup::new();
                let unit_member = group.spawn(async {});
                let number = group.spawn(async { Ok::<_, io::Error>(3) });
                let text = group.spawn_named("text", async {
                    warden::yield_now().await;
                    Ok::<_, QuotaExceeded>(String::from("s"))
                });
                let slow = group.spawn(async {
                    warden::sleep(Duration::from_millis(5)).await;
                    Ok::<_, io::Error>(4u8)
                });
                let report = group.join().await;
                assert!(report.is_ok(), "{report:?}");
                (
                    unit_member.await.unwrap(),
                    number.await.unwrap(),
                    text.await.unwrap(),
                    slow.await.unwrap(),
                )
            });
            assert_eq!(values, ((), 3, String::from("s"), 4));
            let empty = rt.block_on(async { TaskGroup::new().join().await });
            assert!(empty.is_ok(), "an empty group joins Ok");
        });
    }

    fn task_group_new_inside_a_task(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            let outer = rt.spawn(async {
                let group = TaskGroup::new();
                let member = group.spawn(async { Ok::<_, io::Error>(2) });
                let info = member.info().clone();
                let value = member.await.unwrap();
                let group_id = group.id();
                let joined = group.join().await;
                (value, info, group_id, joined.is_ok())
            });
            let outer_id = outer.id();
            let (value, info, group_id, joined) = rt.block_on(outer).unwrap();
            assert_eq!(value, 2);
            assert!(joined);
            assert_eq!(info.group(), Some(group_id));
            assert_eq!(info.parent(), Some(outer_id), "the member's parent is the spawning task");
            // And from block_on.
            let (in_root, root_info) = rt.block_on(async {
                let group = TaskGroup::new();
                let member = group.spawn(async {});
                let info = member.info().clone();
                member.detach();
                (group.join().await.is_ok(), info)
            });
            assert!(in_root);
            assert_eq!(root_info.parent(), None, "block_on's future is not a task");
        });
    }

    fn task_group_new_outside_any_executor_panics(flavor) {
        bounded(move || {
            // An executor exists, but this thread is not running it.
            let _rt = flavor.rt();
            let payload = std::panic::catch_unwind(TaskGroup::new).expect_err("no executor");
            let message = payload_text(&*payload);
            assert!(message.contains("no warden executor is running"), "{message}");
            assert!(message.contains("TaskGroup::new"), "{message}");
            let payload = std::panic::catch_unwind(TaskGroup::supervisor).expect_err("no executor");
            let message = payload_text(&*payload);
            assert!(message.contains("no warden executor is running"), "{message}");
        });
    }

    // ---------------------------------------------------------------------------------
    // Metrics.

    fn metrics_count_group_outcomes_and_add_up(flavor) {
        bounded(move || {
            let rt = flavor.rt();
            rt.block_on(async {
                let group = TaskGroup::supervisor();
                let finishing = vec![
                    group.spawn(async { Err::<(), _>(quota()) }),
                    group.spawn(async { Err::<(), _>(io::Error::other("e")) }),
                    group.spawn(unit(async { panic!("p") })),
                    group.spawn(async { Ok::<_, io::Error>(()) }),
                    group.spawn(async {}),
                    group.spawn(async { Ok::<(), QuotaExceeded>(()) }),
                ];
                let pending_members = [group.spawn(pending::<()>()), group.spawn(pending::<()>())];
                for h in &finishing {
                    wait_finished(h).await;
                }
                let m = rt.metrics();
                assert_eq!((m.errored, m.panicked, m.completed, m.live), (2, 1, 3, 2), "{m:?}");
                assert_adds_up(&m);
                group.cancel();
                let err = group.join().await.unwrap_err();
                assert_eq!((err.failures().len(), err.cancelled()), (3, 2));
                drop((finishing, pending_members));
                // An `Err` from a plain task is its value, not a failure.
                let plain = warden::spawn(async { Err::<(), _>("a value") });
                assert!(plain.await.unwrap().is_err());
            });
            let m = rt.metrics();
            assert_eq!(m.spawned, 9);
            assert_eq!(m.errored, 2);
            assert_eq!(m.panicked, 1);
            assert_eq!(m.completed, 4);
            assert_eq!(m.cancelled, 2);
            assert_eq!(m.live, 0);
            assert_adds_up(&m);
        });
    }

    fn a_member_cancels_its_own_group_through_a_canceller(flavor) {
        let rt = flavor.rt();
        let dropped = DropCounter::new();
        let report = rt.block_on({
            let dropped = dropped.clone();
            async move {
                let group = TaskGroup::supervisor();
                let canceller = group.canceller();
                assert!(!canceller.is_cancelled());
                for _ in 0..3 {
                    let token = dropped.token();
                    group
                        .spawn(async move {
                            let _token = token;
                            pending::<()>().await
                        })
                        .detach();
                }
                group.spawn_named("optional", async { Err::<(), _>("cache miss") }).detach();
                let critical = group.spawn_named("critical", {
                    let canceller = canceller.clone();
                    async move {
                        warden::yield_now().await;
                        canceller.cancel_with("critical request failed");
                        assert!(canceller.is_cancelled());
                    }
                });
                critical.await.unwrap();
                group.join().await
            }
        });
        let err = report.unwrap_err();
        assert_eq!(err.failures().len(), 1, "{err}");
        assert_eq!(err.cancelled(), 3, "{err}");
        assert_eq!(
            err.reason(),
            Some(&CancelReason::Explicit(Some("critical request failed".into())))
        );
        assert_eq!(dropped.count(), 3, "the cancelled members' destructors ran");
    }

    fn a_canceller_is_send_sync_and_outlives_its_group(flavor) {
        fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
        let rt = flavor.rt();
        let canceller = rt.block_on(async {
            let group = TaskGroup::new();
            let canceller = group.canceller();
            send_sync_clone(&canceller);
            group.spawn(async {}).detach();
            group.join().await.unwrap();
            canceller
        });
        // The group was joined: cancelling it now does nothing and panics nowhere.
        canceller.cancel();
        assert!(canceller.is_cancelled());
        assert_eq!(rt.metrics().cancelled, 0);
    }

    fn a_cancelled_member_names_the_sibling_that_failed(flavor) {
        let rt = flavor.rt();
        let (bystander, report) = rt.block_on(async {
            let group = TaskGroup::new();
            let bystander = group.spawn_named("bystander", pending::<()>());
            warden::yield_now().await;
            group.spawn_named("charge", async { Err::<(), _>("card declined") }).detach();
            let report = group.join().await;
            (bystander.await.unwrap_err(), report.unwrap_err())
        });
        let failed = report.first().unwrap();
        let reason = bystander.to_string();
        assert!(
            reason.ends_with(&format!(
                "was cancelled: sibling task 'charge' {} failed: card declined",
                failed.task().id()
            )),
            "{reason}"
        );
        // The sibling's failure is the cancellation's source.
        let source = std::error::Error::source(&bystander).expect("a source");
        assert_eq!(source.to_string(), failed.to_string());
        let summary = report.to_string();
        assert!(
            summary.lines().next().unwrap().ends_with(&format!(
                "1 failure, 1 cancelled (sibling task 'charge' {} failed)",
                failed.task().id()
            )),
            "{summary}"
        );
    }

    fn an_explicit_cancel_message_is_printed_once(flavor) {
        let rt = flavor.rt();
        let handle = rt.spawn(pending::<()>());
        handle.cancel_with("client went away");
        let err = rt.block_on(handle).unwrap_err();
        assert!(err.to_string().ends_with(" was cancelled: client went away"), "{err}");
        let handle = rt.spawn(pending::<()>());
        handle.cancel();
        let err = rt.block_on(handle).unwrap_err();
        assert!(err.to_string().ends_with(" was cancelled explicitly"), "{err}");
    }

    fn group_error_debug_is_its_report(flavor) {
        let rt = flavor.rt();
        let err = rt
            .block_on(async {
                let group = TaskGroup::new();
                group.spawn_named("bad", async { Err::<(), _>("nope") }).detach();
                group.join().await
            })
            .unwrap_err();
        assert_eq!(format!("{err:?}"), err.to_string());
        assert!(format!("{err:?}").contains("task 'bad'"), "{err:?}");
    }
}

/// `group.spawn_local` takes a future that is not `Send`, on the local executor.
#[test]
fn group_spawn_local_with_an_rc() {
    use std::cell::Cell;
    use std::rc::Rc;

    let ex = warden::LocalExecutor::new();
    let shared = Rc::new(Cell::new(0));
    let (value, err) = ex.block_on(async {
        let group = TaskGroup::supervisor();
        let counter = shared.clone();
        let member = group.spawn_local(async move {
            counter.set(counter.get() + 1);
            warden::yield_now().await;
            counter.set(counter.get() + 1);
            Ok::<_, io::Error>(Rc::new(counter.get()))
        });
        let counter = shared.clone();
        group
            .spawn_local(async move {
                let _held = counter;
                Err::<(), _>(quota())
            })
            .detach();
        let value = member.await.unwrap();
        (value, group.join().await.unwrap_err())
    });
    assert_eq!(*value, 2);
    assert_eq!(shared.get(), 2);
    assert_eq!(
        Rc::strong_count(&shared),
        1,
        "the members' futures were dropped"
    );
    assert_eq!(err.failures().len(), 1);
    assert_eq!(
        err.first().unwrap().downcast_ref::<QuotaExceeded>(),
        Some(&quota())
    );
}

/// `group.spawn_local` on a pool group panics with a message naming the problem.
#[test]
fn group_spawn_local_on_a_pool_panics() {
    let ex = warden::Builder::new().worker_threads(2).build();
    let group = ex.group();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rc = std::rc::Rc::new(1);
        group
            .spawn_local(async move { Ok::<_, io::Error>(*rc) })
            .detach();
    }))
    .expect_err("spawn_local on a pool");
    let message = payload_text(&*payload);
    assert!(message.contains("LocalExecutor"), "{message}");
    assert!(ex.block_on(group.join()).is_ok());
}

/// On a pool, a cancel keeps the group's references to its members until the `TaskGroup`
/// is dropped, and each member's header holds the group: a cycle that dropping the
/// `TaskGroup` must break, or the executor's shared state (which holds the error hook)
/// would never be freed. Two ways in: the group is cancelled and then dropped; and the
/// group is dropped while a failing member is still cancelling it on a worker (the drop
/// waits for the cancel flag, then goes while the worker wakes 2 000 members).
#[test]
fn a_cancelled_group_on_a_pool_frees_its_members_when_dropped() {
    for (round, cancel_first) in [true, false].into_iter().cycle().take(40).enumerate() {
        let drops = support::DropCounter::new();
        let token = drops.token();
        let ex = warden::Builder::new()
            .worker_threads(2)
            .on_unhandled(move |_| {
                let _ = &token;
            })
            .build();
        let group = ex.group();
        for _ in 0..2_000 {
            group.spawn(pending::<()>()).detach();
        }
        if cancel_first {
            group.cancel();
        } else {
            group
                .spawn(async { Err::<(), _>(io::Error::other("fails at once")) })
                .detach();
            while !group.is_cancelled() {
                std::hint::spin_loop();
            }
        }
        drop(group);
        drop(ex);
        assert_eq!(
            drops.count(),
            1,
            "round {round} (cancel first: {cancel_first}): the executor's state leaked"
        );
    }
}

//! The manual clock (`Builder::manual_clock`): `sleep`, `timeout` and group deadlines follow
//! it on both executors, time moves only by `advance`, and an executor waiting for the
//! clock parks instead of spinning.

mod support;

use std::future::pending;
use std::time::{Duration, Instant};

use support::{Flavor, Rt, no_hang, wait_until};
use warden::{Builder, CancelReason, ManualClock};

fn clock_of(rt: &Rt) -> ManualClock {
    match rt {
        Rt::Local(ex) => ex.clock(),
        Rt::Pool(ex) => ex.clock(),
    }
    .expect("built with a manual clock")
}

macro_rules! both {
    ($( fn $name:ident($flavor:ident) $body:block )*) => {
        mod local {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { no_hang(|| { let $flavor = Flavor::Local; $body }); } )*
        }
        mod pool {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { no_hang(|| { let $flavor = Flavor::Pool; $body }); } )*
        }
    };
}

both! {
    fn a_sleep_ends_when_the_clock_is_advanced_past_it(flavor) {
        let rt = flavor.build(Builder::new().manual_clock());
        let clock = clock_of(&rt);
        let start = clock.now();
        let woke_at = rt.block_on(async {
            let nap = warden::spawn({
                let clock = clock.clone();
                async move {
                    warden::sleep(Duration::from_secs(3600)).await;
                    clock.now()
                }
            });
            wait_until("the sleep to register", || rt.timer_count() == 1).await;
            clock.advance(Duration::from_secs(1800));
            for _ in 0..10 {
                warden::yield_now().await;
            }
            assert!(!nap.is_finished(), "woke at half time");
            clock.advance(Duration::from_secs(1800));
            nap.await.unwrap()
        });
        assert_eq!(woke_at - start, Duration::from_secs(3600));
        assert_eq!(clock.elapsed(), Duration::from_secs(3600));
        assert_eq!(rt.timer_count(), 0);
    }

    fn a_timeout_follows_the_clock(flavor) {
        let rt = flavor.build(Builder::new().manual_clock());
        let clock = clock_of(&rt);
        let result = rt.block_on(async {
            let slow = warden::spawn(warden::timeout(Duration::from_secs(5), pending::<()>()));
            wait_until("the timeout to register", || rt.timer_count() == 1).await;
            clock.advance(Duration::from_secs(5));
            slow.await.unwrap()
        });
        assert_eq!(result.unwrap_err().duration(), Duration::from_secs(5));
    }

    fn a_sleep_made_outside_any_executor_follows_the_executor_that_runs_it(flavor) {
        let rt = flavor.build(Builder::new().manual_clock());
        let clock = clock_of(&rt);
        // Made on this thread, outside the executor; real time has moved since the
        // executor was built, so measuring it from the real clock would never end.
        std::thread::sleep(Duration::from_millis(5));
        let nap = rt.spawn(warden::sleep(Duration::from_secs(60)));
        rt.block_on(wait_until("the sleep to register", || rt.timer_count() == 1));
        clock.advance(Duration::from_secs(60));
        rt.block_on(nap).unwrap();
    }

    fn a_group_deadline_follows_the_clock(flavor) {
        let rt = flavor.build(Builder::new().manual_clock());
        let clock = clock_of(&rt);
        // Made from outside, with the executor's group(): the deadline is the group's
        // executor's, not the caller's.
        let group = rt.group().with_timeout(Duration::from_secs(10));
        let member = group.spawn(pending::<()>());
        clock.advance(Duration::from_secs(9));
        rt.block_on(async {
            for _ in 0..10 {
                warden::yield_now().await;
            }
        });
        assert!(!group.is_cancelled());
        clock.advance(Duration::from_secs(1));
        let err = rt.block_on(member).unwrap_err();
        assert_eq!(err.cancel_reason(), Some(&CancelReason::Deadline));
        let joined = rt.block_on(group.join()).unwrap_err();
        assert_eq!(joined.reason(), Some(&CancelReason::Deadline));
    }

    fn an_advance_from_another_thread_wakes_a_parked_executor(flavor) {
        let rt = flavor.build(Builder::new().manual_clock());
        let clock = clock_of(&rt);
        let advancer = {
            let clock = clock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                clock.advance(Duration::from_secs(1));
            })
        };
        // The root future itself sleeps: `block_on` parks until the advance wakes it.
        rt.block_on(warden::sleep(Duration::from_secs(1)));
        advancer.join().unwrap();
    }
}

#[test]
fn real_time_executors_have_no_clock() {
    assert!(warden::LocalExecutor::new().clock().is_none());
    assert!(Builder::new().worker_threads(1).build().clock().is_none());
}

#[test]
fn now_moves_only_by_advance() {
    let ex = Builder::new().manual_clock().build_local();
    let clock = ex.clock().unwrap();
    let t0 = clock.now();
    std::thread::sleep(Duration::from_millis(3));
    assert_eq!(clock.now(), t0);
    clock.advance(Duration::from_millis(7));
    clock.clone().advance(Duration::from_millis(3)); // clones are the same clock
    assert_eq!(clock.now() - t0, Duration::from_millis(10));
    assert!(format!("{clock:?}").contains("10ms"));
}

#[test]
fn advancing_after_the_executor_is_gone_only_moves_time() {
    let ex = Builder::new().manual_clock().build_local();
    let clock = ex.clock().unwrap();
    drop(ex);
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.elapsed(), Duration::from_secs(1));
}

/// CPU time (user + system, in clock ticks) of this process's threads whose name starts
/// with `prefix`, or of the calling thread for `None`. Linux only.
#[cfg(target_os = "linux")]
fn cpu_ticks(prefix: Option<&str>) -> u64 {
    fn ticks(stat: &str) -> u64 {
        // Fields after the parenthesised name: state is field 3; utime, stime are 14, 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
    match prefix {
        None => ticks(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()),
        Some(prefix) => std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let path = task.ok()?.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                comm.starts_with(prefix)
                    .then(|| std::fs::read_to_string(path.join("stat")).ok())
                    .flatten()
            })
            .map(|stat| ticks(&stat))
            .sum(),
    }
}

/// Waiting for the clock is parking, not spinning: over 300 ms of real time with a timer
/// registered and the clock not moving, the waiting threads use a small part of it.
#[cfg(target_os = "linux")]
#[test]
fn waiting_for_the_clock_parks_instead_of_spinning() {
    no_hang(|| {
        const WAIT: Duration = Duration::from_millis(300);
        // Clock ticks are 10 ms; a spinning thread would use about 30 in 300 ms.
        const MOST_TICKS: u64 = 10;

        // The local executor: its block_on thread.
        let ex = Builder::new().manual_clock().build_local();
        let clock = ex.clock().unwrap();
        let advancer = std::thread::spawn(move || {
            std::thread::sleep(WAIT);
            clock.advance(Duration::from_secs(1));
        });
        let before = cpu_ticks(None);
        let started = Instant::now();
        ex.block_on(warden::sleep(Duration::from_secs(1)));
        let used = cpu_ticks(None) - before;
        assert!(started.elapsed() >= WAIT);
        assert!(
            used <= MOST_TICKS,
            "the local executor used {used} ticks waiting"
        );
        advancer.join().unwrap();

        // The pool: its workers and timer thread, while a task sleeps.
        let ex = Builder::new()
            .worker_threads(2)
            .thread_name("spincheck")
            .manual_clock()
            .build();
        let clock = ex.clock().unwrap();
        let nap = ex.spawn(warden::sleep(Duration::from_secs(1)));
        while ex.timer_count() == 0 {
            std::thread::yield_now();
        }
        let before = cpu_ticks(Some("spincheck"));
        std::thread::sleep(WAIT);
        let used = cpu_ticks(Some("spincheck")) - before;
        assert!(used <= MOST_TICKS, "the pool used {used} ticks waiting");
        clock.advance(Duration::from_secs(1));
        ex.block_on(nap).unwrap();
    });
}

//! Soak: 100 000 tasks on the pool (2 workers), with exact accounting and no heap leak.
//!
//! The tasks come in 10 batches. A third complete, a third panic in `poll`, and a third
//! stay pending until cancelled, when a guard in their future panics in `Drop` (only when
//! the thread is not already unwinding: a panic then would abort the process). Most go
//! into groups (plain or supervisor, chosen by a seeded PRNG); some groups are joined,
//! some cancelled and then joined, some dropped without `join`; some tasks have no group.
//! Handles are kept and awaited, or detached. Then:
//!
//! * `Metrics` are exact: `spawned` is the number of tasks, `live` is 0, `completed` and
//!   `panicked` equal what the task bodies counted (a completion or a panic in `poll` is
//!   counted by the body in the same poll), every pending task failed with its `Drop`
//!   panic, and the rest were cancelled; they add up;
//! * the error hook saw exactly the failures that nobody could observe (detached, and in
//!   no group or a dropped group), and never a cancellation; handles and joins agree;
//! * after the executor and every handle are dropped, the live heap (bytes and blocks,
//!   counted by this binary's `#[global_allocator]`) is back to what it was before, up to
//!   what crossbeam-epoch reclaims lazily (a few blocks per executor, not per task; see
//!   [`EPOCH_SLACK_BYTES`]).
//!
//! `cargo test --release --test soak -- --nocapture` prints the figures. A debug build
//! runs 10 000 tasks instead of 100 000, so that plain `cargo test` stays fast. The PRNG
//! seed is fixed; `WARDEN_SOAK_SEED` overrides it.
//!
//! The executor runs with `Backtraces::Off`: capturing a backtrace for each of the
//! ~60 000 panics (in `poll` and in `Drop`) would take most of the run, and this test is
//! about accounting and memory, not about reports.
//!
//! The allocator counts every thread, so a test running beside another would disturb its
//! measurement: the two tests of this binary (this one, and the supervision soak at the
//! end of the file) take [`SOAK_SERIAL`] first, so they run one after the other. Nothing is
//! printed before the final measurement either (libtest's output capture allocates).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::pending;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use support::{assert_adds_up, unit};
use warden::{Backtraces, Builder, Executor, JoinHandle, Metrics, TaskGroup};

// ---------------------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------------------

/// `System`, counting the bytes currently allocated.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE_BYTES.fetch_add(bytes as isize, Relaxed) + bytes as isize;
    PEAK_BYTES.fetch_max(now, Relaxed);
}

fn shrank(bytes: usize) {
    LIVE_BYTES.fetch_sub(bytes as isize, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System` upholds the `GlobalAlloc` contract; the counters are a side effect that never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded: the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
            LIVE_BLOCKS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded: the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
            LIVE_BLOCKS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded: `ptr` was allocated by this allocator (that is, by `System`)
        // with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
        LIVE_BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded: the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes and blocks.
fn live() -> (isize, isize) {
    (LIVE_BYTES.load(SeqCst), LIVE_BLOCKS.load(SeqCst))
}

// ---------------------------------------------------------------------------------------
// What the tasks count (statics: they allocate nothing between the measurements)
// ---------------------------------------------------------------------------------------

/// Bodies that returned (in the poll that completed them).
static RAN_COMPLETE: AtomicU64 = AtomicU64::new(0);
/// Bodies that panicked in `poll`.
static RAN_PANIC: AtomicU64 = AtomicU64::new(0);
/// ... of which nobody can observe the failure (detached, no group or a dropped group).
static RAN_PANIC_UNOBSERVED: AtomicU64 = AtomicU64::new(0);
/// Guards that panicked in `Drop`.
static DROP_PANICS: AtomicU64 = AtomicU64::new(0);
/// Error hook calls, and how many of them were cancellations (there must be none).
static HOOK_CALLS: AtomicU64 = AtomicU64::new(0);
static HOOK_CANCELLED: AtomicU64 = AtomicU64::new(0);

fn reset_counters() {
    for c in [
        &RAN_COMPLETE,
        &RAN_PANIC,
        &RAN_PANIC_UNOBSERVED,
        &DROP_PANICS,
        &HOOK_CALLS,
        &HOOK_CANCELLED,
    ] {
        c.store(0, SeqCst);
    }
}

/// Panics when dropped, unless the thread is already unwinding.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            DROP_PANICS.fetch_add(1, SeqCst);
            panic!("soak: drop panic");
        }
    }
}

/// xorshift64*: a seeded PRNG, no crate needed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Complete,
    Panic,
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Join,
    CancelThenJoin,
    Drop,
}

/// What one run saw; integers only, so that keeping it allocates nothing.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    tasks: u64,
    kinds: [u64; 3],
    /// Tasks that nothing can cancel (no group, or a supervisor group that is only joined).
    safe: [u64; 3],
    groups: u64,
    groups_cancelled: u64,
    groups_dropped: u64,
    /// Pending tasks whose drop panic nobody can observe.
    pending_unobserved: u64,
    handles_ok: u64,
    handles_failed: u64,
    handles_cancelled: u64,
    join_failures: u64,
    join_cancelled: u64,
    /// Handles that yielded something their task's kind cannot produce.
    wrong: u64,
}

const GROUPS: u64 = 40;

/// How far the live heap may be from its starting figure after the executor is dropped.
///
/// Not zero, because of crossbeam-epoch (under crossbeam-deque, the pool's work-stealing
/// queues): when a worker thread exits, its epoch record (about 2.3 KB) and its last bag of
/// deferred frees (about 2 KB) are freed only later, when another thread advances the
/// epoch. So a few such blocks of this run may still be waiting at the end, and a few of
/// the warm-up's may have been freed during it (runs have ended between -4 136 and +6 208
/// bytes, -3 and +5 blocks). That is a handful of blocks per executor, whatever the number
/// of tasks: a leak of one block per group (400 groups), of one block per task, or of one
/// byte per task in release (100 000 tasks) is well beyond it.
const EPOCH_SLACK_BYTES: isize = 40 * 1024;
const EPOCH_SLACK_BLOCKS: isize = 16;

fn kind_index(kind: Kind) -> usize {
    kind as usize
}

/// Spawns one batch of `size` tasks, the first being task number `first`; cancels, drops
/// and joins the groups; awaits the kept handles. Runs inside `block_on`.
async fn batch(rng: &mut Rng, first: u64, size: u64, tally: &mut Tally) {
    let mut groups: Vec<Option<(TaskGroup, Fate, bool)>> = (0..GROUPS)
        .map(|_| {
            let supervisor = rng.below(4) != 0;
            let group = if supervisor {
                TaskGroup::supervisor()
            } else {
                TaskGroup::new()
            };
            let fate = match rng.below(3) {
                0 => Fate::Join,
                1 => Fate::CancelThenJoin,
                _ => Fate::Drop,
            };
            Some((group, fate, supervisor))
        })
        .collect();
    tally.groups += GROUPS;
    let mut kept: Vec<(Kind, bool, JoinHandle<()>)> = Vec::with_capacity(size as usize);
    for i in first..first + size {
        let kind = [Kind::Complete, Kind::Panic, Kind::Pending][(i % 3) as usize];
        // About one task in eleven has no group.
        let slot = rng.below(GROUPS * 10 / 9);
        let mut target = groups
            .get(slot as usize)
            .map(|g| g.as_ref().expect("all groups live"));
        if kind == Kind::Pending && matches!(target, Some((_, Fate::Join, _))) {
            // Nothing would ever cancel it there: it goes without a group (and its handle
            // is cancelled below).
            target = None;
        }
        let grouped = target.is_some();
        let fate = target.map(|(_, fate, _)| *fate);
        // An ungrouped pending task keeps its handle: that is how it gets cancelled.
        let detach = rng.below(2) == 0 && (grouped || kind != Kind::Pending);
        let unobserved = detach && matches!(fate, None | Some(Fate::Drop));
        let safe = match target {
            None => true,
            Some((_, fate, supervisor)) => *fate == Fate::Join && *supervisor,
        };
        tally.tasks += 1;
        tally.kinds[kind_index(kind)] += 1;
        if safe {
            tally.safe[kind_index(kind)] += 1;
        }
        if kind == Kind::Pending && unobserved {
            tally.pending_unobserved += 1;
        }
        let handle = match (kind, target) {
            (Kind::Complete, Some((group, ..))) => group.spawn(complete()),
            (Kind::Complete, None) => warden::spawn(complete()),
            (Kind::Panic, Some((group, ..))) => group.spawn(unit(panic_in_poll(unobserved))),
            (Kind::Panic, None) => warden::spawn(unit(panic_in_poll(unobserved))),
            (Kind::Pending, Some((group, ..))) => group.spawn(pending_until_cancelled()),
            (Kind::Pending, None) => warden::spawn(pending_until_cancelled()),
        };
        if detach {
            handle.detach();
        } else {
            kept.push((kind, grouped, handle));
        }
    }
    // Let the workers get going, then cancel and drop groups in a random order, while
    // their members run.
    warden::sleep(Duration::from_micros(rng.below(500))).await;
    let mut joins = Vec::new();
    while !groups.iter().all(Option::is_none) {
        let slot = rng.below(GROUPS) as usize;
        let Some((group, fate, _)) = groups[slot].take() else {
            continue;
        };
        match fate {
            Fate::Join => joins.push(group),
            Fate::CancelThenJoin => {
                group.cancel_with("soak");
                tally.groups_cancelled += 1;
                joins.push(group);
            }
            Fate::Drop => {
                drop(group);
                tally.groups_dropped += 1;
            }
        }
        if rng.below(4) == 0 {
            warden::sleep(Duration::from_micros(rng.below(100))).await;
        }
    }
    for (kind, grouped, handle) in &kept {
        if *kind == Kind::Pending && !grouped {
            handle.cancel();
        }
    }
    for group in joins {
        if let Err(err) = group.join().await {
            tally.join_failures += err.failures().len() as u64;
            tally.join_cancelled += err.cancelled() as u64;
        }
    }
    for (kind, _, handle) in kept {
        let result = handle.await;
        let fine = match (&result, kind) {
            (Ok(()), Kind::Complete) => true,
            (Err(e), Kind::Complete) => e.is_cancelled(),
            (Err(e), Kind::Panic) => {
                e.is_cancelled() || e.panic_message() == Some("soak: panic in poll")
            }
            (Err(e), Kind::Pending) => e.panic_message() == Some("soak: drop panic"),
            _ => false,
        };
        if !fine {
            tally.wrong += 1;
        }
        match result {
            Ok(()) => tally.handles_ok += 1,
            Err(e) if e.is_cancelled() => tally.handles_cancelled += 1,
            Err(_) => tally.handles_failed += 1,
        }
    }
}

async fn complete() {
    warden::yield_now().await;
    RAN_COMPLETE.fetch_add(1, SeqCst);
}

async fn panic_in_poll(unobserved: bool) {
    warden::yield_now().await;
    RAN_PANIC.fetch_add(1, SeqCst);
    if unobserved {
        RAN_PANIC_UNOBSERVED.fetch_add(1, SeqCst);
    }
    panic!("soak: panic in poll");
}

fn pending_until_cancelled() -> impl Future<Output = ()> + Send + 'static {
    // Captured: dropped (and panicking) even if the task is cancelled before its first poll.
    let guard = PanicOnDrop;
    async move {
        let _guard = guard;
        pending::<()>().await
    }
}

fn executor() -> Executor {
    Builder::new()
        .worker_threads(2)
        // See the module doc: 66 000 backtraces would dominate the run.
        .backtraces(Backtraces::Off)
        .on_unhandled(|err| {
            HOOK_CALLS.fetch_add(1, SeqCst);
            if err.is_cancelled() {
                HOOK_CANCELLED.fetch_add(1, SeqCst);
            }
        })
        .build()
}

/// Runs `batches` batches of `size` tasks on a fresh executor, waits until no task is
/// live, drops the executor, and returns the tally and the last metrics.
fn run(seed: u64, batches: u64, size: u64) -> (Tally, Metrics) {
    let ex = executor();
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    for b in 0..batches {
        ex.block_on(batch(&mut rng, b * size, size, &mut tally));
        // Detached members of dropped groups may still be on their way out.
        let deadline = Instant::now() + Duration::from_secs(60);
        ex.block_on(async {
            while ex.metrics().live > 0 {
                assert!(
                    Instant::now() < deadline,
                    "tasks still live after 60 s: {:?}",
                    ex.metrics()
                );
                warden::sleep(Duration::from_micros(200)).await;
            }
        });
    }
    let metrics = ex.metrics();
    // Joins the workers: every hook call has returned.
    drop(ex);
    (tally, metrics)
}

#[test]
fn soak_exact_accounting_and_no_leak() {
    let _serial = SOAK_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Ten thousand restart reports: through a logger that drops them, not onto stderr.
    support::quiet_logs();
    let total: u64 = if cfg!(debug_assertions) {
        10_000
    } else {
        100_000
    };
    let batches = 10;
    let seed = std::env::var("WARDEN_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0f0a_4d1e_u64);

    // Warm-up: process-wide statics that are initialised once (warden's panic hook, this
    // thread's executor context, std's and crossbeam's lazy globals) are allocated here,
    // and the warm-up executor is dropped before the starting figure is taken.
    for _ in 0..2 {
        run(seed ^ 0xabcd, 2, 600);
    }
    reset_counters();

    let (before, blocks_before) = live();
    PEAK_BYTES.store(before, SeqCst);
    let started = Instant::now();
    let (t, m) = run(seed, batches, total / batches);
    let elapsed = started.elapsed();
    let (after, blocks_after) = live();
    let peak = PEAK_BYTES.load(SeqCst);

    let ran_complete = RAN_COMPLETE.load(SeqCst);
    let ran_panic = RAN_PANIC.load(SeqCst);
    let drop_panics = DROP_PANICS.load(SeqCst);
    let hook = HOOK_CALLS.load(SeqCst);
    let expected_hook = t.pending_unobserved + RAN_PANIC_UNOBSERVED.load(SeqCst);
    let [complete, panic, pending] = t.kinds;
    let cancelled = total - ran_complete - ran_panic - pending;

    println!(
        "soak: {total} tasks in {batches} batches on 2 workers, seed {seed:#x}, {elapsed:.2?}"
    );
    println!(
        "  kinds: {complete} complete, {panic} panic in poll, {pending} pending (panic in Drop when cancelled)"
    );
    println!(
        "  groups: {} ({} cancelled, {} dropped without join); {} tasks safe from cancellation",
        t.groups,
        t.groups_cancelled,
        t.groups_dropped,
        t.safe.iter().sum::<u64>()
    );
    println!(
        "  ran: {ran_complete} completed, {ran_panic} panicked in poll, {drop_panics} panicked in Drop; {cancelled} cancelled"
    );
    println!("  metrics: {m:?}");
    println!(
        "  observed: {} handles ok, {} failed, {} cancelled; joins: {} failures, {} cancelled",
        t.handles_ok, t.handles_failed, t.handles_cancelled, t.join_failures, t.join_cancelled
    );
    println!(
        "  error hook: {hook} unobserved failures (expected {expected_hook}), {} cancellations",
        HOOK_CANCELLED.load(SeqCst)
    );
    println!(
        "  heap: {before} bytes in {blocks_before} blocks live before, {after} bytes in \
         {blocks_after} blocks after ({:+} bytes, {:+} blocks), peak {peak} bytes",
        after - before,
        blocks_after - blocks_before
    );

    assert_eq!(t.tasks, total);
    assert_eq!(
        t.wrong, 0,
        "handles yielded results their tasks cannot produce"
    );
    assert_adds_up(&m);
    assert_eq!(m.spawned, total);
    assert_eq!(m.live, 0);
    assert_eq!(m.errored, 0);
    assert_eq!(m.completed, ran_complete);
    assert_eq!(
        drop_panics, pending,
        "every pending task is cancelled and panics in Drop"
    );
    assert_eq!(m.panicked, ran_panic + drop_panics);
    assert_eq!(m.cancelled, cancelled);
    assert!(
        ran_complete >= t.safe[0],
        "a task that nothing cancels completes"
    );
    assert!(ran_panic >= t.safe[1], "a task that nothing cancels panics");
    assert_eq!(
        HOOK_CANCELLED.load(SeqCst),
        0,
        "the hook saw a cancellation"
    );
    assert_eq!(
        hook, expected_hook,
        "the hook saw every unobserved failure, once"
    );
    // See `EPOCH_SLACK_*`: what crossbeam-epoch has not reclaimed yet, a fixed amount.
    assert!(
        (after - before).abs() <= EPOCH_SLACK_BYTES
            && (blocks_after - blocks_before).abs() <= EPOCH_SLACK_BLOCKS,
        "live heap after the executor was dropped: {after} bytes in {blocks_after} blocks, \
         before: {before} bytes in {blocks_before} blocks"
    );
}

// ---------------------------------------------------------------------------------------
// Supervision soak: 10 000 restarts
// ---------------------------------------------------------------------------------------

/// One test of this binary at a time (see the module doc): the allocator counts every
/// thread.
static SOAK_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A supervisor restarts a failing child 10 000 times, with exact accounting and a flat
/// heap.
///
/// `RestForOne` over two children: `flaky` (Transient) fails on each of its first 10 000
/// starts, a panic and an `Err` in turn, and ends normally on the next; `peer` (Permanent)
/// waits forever, so each of flaky's restarts cancels it and starts it again. Each start of
/// flaky moves the executor's manual clock by 300 ms, so at most 4 restarts fall in any
/// 1-second period and an intensity of 5 per second is never exceeded. After flaky's last
/// start, the supervisor task is cancelled. Then:
///
/// * `Metrics` are exact: every task of the run is accounted for (see the sum below) and
///   none is live;
/// * the error hook saw nothing: the supervisor observed every failure it restarted after,
///   and cancellations are not failures;
/// * the heap at flaky's 10 001st start is what it was at its 5 001st (the same moment of
///   the same cycle: the history then holds the same 4 restarts), up to
///   [`SUPERVISOR_SLACK_BYTES`]; and after the executor is dropped, the heap is back to
///   its starting figure, up to [`EPOCH_SLACK_BYTES`].
///
/// Backtraces are captured (the default): the history keeps each cause whole, backtrace
/// included, and that is part of what must not grow.
#[test]
fn supervisor_soak_10_000_restarts_exact_accounting_flat_heap() {
    use std::sync::atomic::AtomicBool;
    use warden::{Child, ManualClock, Restart, Strategy, Supervisor};

    const RESTARTS: u64 = 10_000;
    /// How far the heap may move between the two mid-run figures: a task block or two in
    /// flight on a worker. A leak of 8 bytes per restart (40 000 bytes) is beyond it.
    const SUPERVISOR_SLACK_BYTES: isize = 24 * 1024;

    let _serial = SOAK_SERIAL.lock().unwrap_or_else(|e| e.into_inner());

    static FLAKY_STARTS: AtomicU64 = AtomicU64::new(0);
    static HEAP_AT: [AtomicIsize; 2] = [AtomicIsize::new(0), AtomicIsize::new(0)];
    static BLOCKS_AT: [AtomicIsize; 2] = [AtomicIsize::new(0), AtomicIsize::new(0)];
    static LAST_ENDED: AtomicBool = AtomicBool::new(false);
    static SOAK_HOOK: AtomicU64 = AtomicU64::new(0);

    fn unit_err(fail: bool) -> Result<(), &'static str> {
        if fail { Err("flaky: refused") } else { Ok(()) }
    }

    fn supervisor(clock: ManualClock) -> Supervisor {
        let flaky = Child::new("flaky", move || {
            let n = FLAKY_STARTS.fetch_add(1, SeqCst) + 1;
            if n == RESTARTS / 2 + 1 || n == RESTARTS + 1 {
                let (bytes, blocks) = live();
                let at = usize::from(n == RESTARTS + 1);
                HEAP_AT[at].store(bytes, SeqCst);
                BLOCKS_AT[at].store(blocks, SeqCst);
            }
            clock.advance(Duration::from_millis(300));
            async move {
                if n > RESTARTS {
                    LAST_ENDED.store(true, SeqCst);
                    return unit_err(false);
                }
                if n % 2 == 1 {
                    panic!("flaky: start {n} broke");
                }
                unit_err(true)
            }
        })
        .restart(Restart::Transient);
        let peer = Child::new("peer", pending::<()>);
        Supervisor::new(Strategy::RestForOne)
            .intensity(5, Duration::from_secs(1))
            .child(flaky)
            .child(peer)
    }

    fn one_run() -> (Metrics, Result<(), warden::TaskError>) {
        FLAKY_STARTS.store(0, SeqCst);
        LAST_ENDED.store(false, SeqCst);
        let ex = Builder::new()
            .worker_threads(2)
            .manual_clock()
            .on_unhandled(|_| {
                SOAK_HOOK.fetch_add(1, SeqCst);
            })
            .build();
        let clock = ex.clock().expect("a manual clock");
        let sup = ex.spawn_named("supervisor", supervisor(clock).run());
        let deadline = Instant::now() + Duration::from_secs(120);
        ex.block_on(async {
            while !LAST_ENDED.load(SeqCst) {
                assert!(
                    Instant::now() < deadline,
                    "no end after 120 s: {:?}",
                    ex.metrics()
                );
                warden::sleep(Duration::ZERO).await;
                warden::yield_now().await;
            }
        });
        sup.cancel();
        let result = ex.block_on(sup).map(drop);
        ex.block_on(async {
            while ex.metrics().live > 0 {
                assert!(
                    Instant::now() < deadline,
                    "tasks still live: {:?}",
                    ex.metrics()
                );
                warden::yield_now().await;
            }
        });
        let metrics = ex.metrics();
        drop(ex);
        (metrics, result)
    }

    // Warm-up: process-wide lazy state (the panic hook, backtrace machinery, thread-locals).
    let _ = one_run();
    SOAK_HOOK.store(0, SeqCst);

    let (before, blocks_before) = live();
    let started = Instant::now();
    let (m, result) = one_run();
    let elapsed = started.elapsed();
    let (after, blocks_after) = live();
    let mid = [HEAP_AT[0].load(SeqCst), HEAP_AT[1].load(SeqCst)];
    let mid_blocks = [BLOCKS_AT[0].load(SeqCst), BLOCKS_AT[1].load(SeqCst)];
    let hook = SOAK_HOOK.load(SeqCst);

    println!(
        "supervisor soak: {RESTARTS} restarts (RestForOne, 2 children, 2 workers), {elapsed:.2?}"
    );
    println!("  metrics: {m:?}");
    println!("  error hook: {hook} calls");
    println!(
        "  heap at the 5 000th restart: {} bytes in {} blocks; at the 10 000th: {} bytes in {} blocks ({:+} bytes, {:+} blocks)",
        mid[0],
        mid_blocks[0],
        mid[1],
        mid_blocks[1],
        mid[1] - mid[0],
        mid_blocks[1] - mid_blocks[0]
    );
    println!(
        "  heap before the run: {before} bytes in {blocks_before} blocks; after: {after} bytes in {blocks_after} blocks ({:+} bytes, {:+} blocks)",
        after - before,
        blocks_after - blocks_before
    );

    assert!(
        result.unwrap_err().is_cancelled(),
        "the supervisor ends cancelled"
    );
    assert_eq!(FLAKY_STARTS.load(SeqCst), RESTARTS + 1);
    assert_adds_up(&m);
    // The supervisor, and each start of flaky and of peer.
    assert_eq!(m.spawned, 1 + 2 * (RESTARTS + 1));
    assert_eq!(m.panicked, RESTARTS / 2);
    assert_eq!(m.errored, RESTARTS / 2);
    // Flaky's last start.
    assert_eq!(m.completed, 1);
    // Peer, once per restart (by the strategy) and once at the end (with the supervisor),
    // and the supervisor.
    assert_eq!(m.cancelled, RESTARTS + 2);
    assert_eq!(m.live, 0);
    assert_eq!(
        hook, 0,
        "the error hook saw a failure the supervisor handled"
    );
    assert!(
        (mid[1] - mid[0]).abs() <= SUPERVISOR_SLACK_BYTES,
        "the heap grew by {} bytes between the 5 000th and the 10 000th restart",
        mid[1] - mid[0]
    );
    assert!(
        (after - before).abs() <= EPOCH_SLACK_BYTES
            && (blocks_after - blocks_before).abs() <= EPOCH_SLACK_BLOCKS,
        "live heap after the executor was dropped: {after} bytes in {blocks_after} blocks, \
         before: {before} bytes in {blocks_before} blocks"
    );
}

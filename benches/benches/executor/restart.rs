//! `restart`: what one supervised restart costs, from a child's failure until the restarted
//! child's first poll: warden's `Supervisor` against the restart loop people write by hand
//! on tokio (and async-executor).
//!
//! A module of `executor.rs`, not a bench target of its own, so that one `cargo bench`
//! run writes one `warden-run.json` for `report.py` (each bench binary writes it, and the
//! report drops results older than the run it describes), and so that the restarts'
//! panics go through the same quiet panic hook `main` installs before any executor exists.
//!
//! One iteration: a child is started and fails, and is restarted, [`RESTARTS`] times in a
//! row; the last start (the [`RESTARTS`]-th restarted child) ends normally. Timed from
//! just before the supervisor (or the loop) is spawned until that last child's first poll,
//! so the time of an iteration divided by [`RESTARTS`] is the cost of one restart: the
//! failure, the supervisor noticing it, its bookkeeping, and spawning and first polling
//! the next child. The supervisor's own end after that is not timed, and with it the
//! freeing of warden's restart history (1 000 entries, its cap): a supervisor that keeps
//! restarting past the cap frees an entry per restart (`docs/performance.md`, "Restart
//! cost", has the instructions that costs).
//!
//! Groups `restart/panic/{mode}` (each failing child panics at its first poll) and
//! `restart/err/{mode}` (it returns `Err` instead), the modes as for the other workloads.
//! Function ids:
//!
//! * `warden`: `Supervisor::new(Strategy::OneForOne).intensity(RESTARTS, 1 h)` with one
//!   `Transient` child (restarted after each failure, as a `Permanent` one would be; its
//!   normal end is final, so `run()` then returns `Ok`), spawned as a task, on an executor
//!   with the default `Backtraces::Always` (a stack walk per panic; an `Err` has none);
//! * `warden-bt-off` (`panic` only): the same, `Backtraces::Off`;
//! * `warden-log` (`err` only): the same as `warden`, with a logger at `Info` that formats
//!   each record it gets (into a buffer, never written anywhere): a real logger's cost,
//!   less its I/O. Every restart is logged (at `info`, target `warden`, the cause in
//!   full). A program with no logger installed gets that line on stderr (warden's reports
//!   fall back to stderr); the other variants run with a logger installed that takes no
//!   record (`enabled` is `false`), the cost of a logger that filters warden's `info` out;
//! * `tokio`: the loop people write, spawned as a task: `tokio::spawn` the child, await its
//!   handle, restart after a panic (`JoinError::is_panic`) or an `Err`, with the
//!   bookkeeping a supervisor needs to give up (an intensity window, [`Window`]);
//! * `async-executor`: the same loop, the child wrapped in `catch_unwind`.
//!
//! The tokio and async-executor panics reach the bench's panic hook, which is quiet about
//! them ([`MESSAGE`]) while this group runs; warden's own hook records them instead.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use futures::future::CatchUnwind;
use warden::{Child, Restart, Strategy, Supervisor};

use super::*;

/// Restarts per iteration.
const RESTARTS: usize = 1_000;
/// The intensity both sides run with: exactly the restarts an iteration makes, within a
/// period no iteration comes near, so neither ever gives up but both keep the window.
const INTENSITY: usize = RESTARTS;
const PERIOD: Duration = Duration::from_secs(3600);
/// What every failing child panics with in `restart/panic`.
pub const MESSAGE: &str = "restart: the child failed";

/// How the failing children fail.
#[derive(Clone, Copy)]
enum Fail {
    Panic,
    Err,
}

/// What a failing child returns in `restart/err`: a small error value, so that warden's
/// boxing it (into the `TaskError`) allocates once, as for most real error types (a
/// `&str` would cost two, a unit struct none).
#[derive(Debug)]
struct ChildFailed {
    start: usize,
}

impl std::fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "restart: start {} failed", self.start)
    }
}

impl std::error::Error for ChildFailed {}

/// One iteration: how many times the child was started, and when its last start was first
/// polled.
struct Run {
    fail: Fail,
    starts: AtomicUsize,
    last_poll: Mutex<Option<Instant>>,
}

impl Run {
    fn new(fail: Fail) -> Arc<Run> {
        Arc::new(Run {
            fail,
            starts: AtomicUsize::new(0),
            last_poll: Mutex::new(None),
        })
    }

    /// From `start` until the last child's first poll; checks that every start happened.
    fn took(&self, start: Instant) -> Duration {
        assert_eq!(self.starts.load(Ordering::Relaxed), RESTARTS + 1);
        let last = self.last_poll.lock().unwrap().take();
        last.expect("the last child was polled") - start
    }
}

/// One start of the child. Every start but the last fails at its first poll; the last
/// records the time of its first poll and ends normally.
struct ChildRun {
    nth: usize,
    run: Arc<Run>,
}

impl ChildRun {
    /// The child's factory: the next start.
    fn start(run: &Arc<Run>) -> ChildRun {
        ChildRun {
            nth: run.starts.fetch_add(1, Ordering::Relaxed),
            run: run.clone(),
        }
    }
}

impl Future for ChildRun {
    type Output = Result<(), ChildFailed>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.nth < RESTARTS {
            return match self.run.fail {
                Fail::Panic => std::panic::panic_any(MESSAGE),
                Fail::Err => Poll::Ready(Err(ChildFailed { start: self.nth })),
            };
        }
        *self.run.last_poll.lock().unwrap() = Some(Instant::now());
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------
// warden.

/// One supervisor per iteration, spawned as a task. Each restart is logged at `info`,
/// through [`FormatOnly`], which takes no record unless `warden-log` turned it on.
fn warden<D: Driver<S = warden::Handle>>(d: &D, fail: Fail, iters: u64) -> Duration {
    // Installed once per process; later calls fail and change nothing. Without a logger,
    // every restart line would go to stderr.
    let _ = log::set_logger(&FORMAT_ONLY);
    log::set_max_level(log::LevelFilter::Info);
    let handle = d.spawner();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let run = Run::new(fail);
        let child = Child::new("child", {
            let run = run.clone();
            move || ChildRun::start(&run)
        });
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(u32::try_from(INTENSITY).unwrap(), PERIOD)
            .child(child.restart(Restart::Transient))
            .run();
        let start = Instant::now();
        let sup = handle.spawn(sup);
        let ended = d.block_on(sup).expect("the supervisor's task");
        total += run.took(start);
        ended.expect("the supervisor never gives up");
    }
    total
}

/// `warden` with [`FormatOnly`] taking warden's `Info` records while it measures, and
/// taking none again afterwards.
fn warden_logged<D: Driver<S = warden::Handle>>(d: &D, fail: Fail, iters: u64) -> Duration {
    let before = LOGGED.load(Ordering::Relaxed);
    FORMATTING.store(true, Ordering::Relaxed);
    let took = warden(d, fail, iters);
    FORMATTING.store(false, Ordering::Relaxed);
    let logged = LOGGED.load(Ordering::Relaxed) - before;
    let restarts = usize::try_from(iters).unwrap() * RESTARTS;
    assert!(
        logged >= restarts,
        "warden-log: {logged} records formatted for {restarts} restarts"
    );
    took
}

/// While [`FORMATTING`] is set (`warden-log`), formats every record it is given into a
/// reused buffer and drops the text: a logger's cost without its I/O. Otherwise it takes
/// no record, like a logger that filters warden's `info` out.
struct FormatOnly;

/// Set by `warden_logged` while it measures.
static FORMATTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records formatted: checks that `warden-log` measured what it says.
static LOGGED: AtomicUsize = AtomicUsize::new(0);

impl log::Log for FormatOnly {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        FORMATTING.load(Ordering::Relaxed) && metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LINE.with_borrow_mut(|line| {
                line.clear();
                let _ = write!(
                    line,
                    "{} {}: {}",
                    record.level(),
                    record.target(),
                    record.args()
                );
                std::hint::black_box(line.len());
            });
            LOGGED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

static FORMAT_ONLY: FormatOnly = FormatOnly;

// ---------------------------------------------------------------------------------------
// The hand-written loops.

/// The bookkeeping a hand-written loop needs to give up as a supervisor does: the times of
/// the restarts within the last `PERIOD`, oldest first.
struct Window(VecDeque<Instant>);

impl Window {
    /// Records a restart now; `false` when that makes more than `INTENSITY` within
    /// `PERIOD`.
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        while self
            .0
            .front()
            .is_some_and(|&t| now.duration_since(t) >= PERIOD)
        {
            self.0.pop_front();
        }
        self.0.push_back(now);
        self.0.len() <= INTENSITY
    }
}

/// The restart loop people write on tokio. Returns the restarts made.
async fn tokio_loop(run: Arc<Run>) -> Result<usize, &'static str> {
    let mut window = Window(VecDeque::new());
    let mut restarts = 0;
    loop {
        let child = tokio::spawn(ChildRun::start(&run));
        match child.await {
            Ok(Ok(())) => return Ok(restarts),
            Ok(Err(_)) => {}
            Err(err) if err.is_panic() => {}
            Err(_) => return Err("the child was cancelled"),
        }
        if !window.admit() {
            return Err("too many restarts: giving up");
        }
        restarts += 1;
    }
}

type Caught<T> = Result<T, Box<dyn Any + Send>>;
type AsyncChild = CatchUnwind<AssertUnwindSafe<ChildRun>>;
type AsyncChildTask = async_executor::Task<Caught<Result<(), ChildFailed>>>;

/// The same loop on async-executor (either executor: `spawn` is its `spawn`), which
/// does not catch a task's panic: the child is wrapped in `catch_unwind`.
async fn async_loop<S>(spawn: S, run: Arc<Run>) -> Result<usize, &'static str>
where
    S: Fn(AsyncChild) -> AsyncChildTask,
{
    let mut window = Window(VecDeque::new());
    let mut restarts = 0;
    loop {
        let child = spawn(AssertUnwindSafe(ChildRun::start(&run)).catch_unwind());
        // Anything else is a failure: an `Err`, or a panic that `catch_unwind` caught.
        if let Ok(Ok(())) = child.await {
            return Ok(restarts);
        }
        if !window.admit() {
            return Err("too many restarts: giving up");
        }
        restarts += 1;
    }
}

fn tokio(d: &Tokio, fail: Fail, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let run = Run::new(fail);
        let looped = tokio_loop(run.clone());
        let start = Instant::now();
        let looped = d.0.spawn(looped);
        let ended = d.block_on(looped).expect("the loop's task");
        total += run.took(start);
        assert_eq!(ended, Ok(RESTARTS));
    }
    total
}

fn async_local(d: &AsyncLocal, fail: Fail, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let run = Run::new(fail);
        let ex = d.0.clone();
        let looped = async_loop(move |child| ex.spawn(child), run.clone());
        let start = Instant::now();
        let looped = d.0.spawn(looped);
        let ended = d.block_on(looped);
        total += run.took(start);
        assert_eq!(ended, Ok(RESTARTS));
    }
    total
}

fn async_multi(d: &AsyncMulti, fail: Fail, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let run = Run::new(fail);
        let ex = d.ex.clone();
        let looped = async_loop(move |child| ex.spawn(child), run.clone());
        let start = Instant::now();
        let looped = d.ex.spawn(looped);
        let ended = d.block_on(looped);
        total += run.took(start);
        assert_eq!(ended, Ok(RESTARTS));
    }
    total
}

// ---------------------------------------------------------------------------------------
// Registration.

/// Benchmarks `f` on `rt` with children that fail as `fail` says.
fn bench_restarts<D>(
    g: &mut Group<'_>,
    id: &str,
    rt: D,
    fail: Fail,
    f: fn(&D, Fail, u64) -> Duration,
) {
    g.bench_function(id, |b| b.iter_custom(|iters| f(&rt, fail, iters)));
    drop(rt);
}

/// The `restart/panic/{mode}` and `restart/err/{mode}` groups.
pub fn restart(c: &mut Criterion) {
    QUIET_PANICS.store(true, Ordering::SeqCst);
    for (fail, name) in [(Fail::Panic, "panic"), (Fail::Err, "err")] {
        let mut g = c.benchmark_group(format!("restart/{name}/single"));
        wardens(&mut g, fail, WardenLocal::new);
        bench_restarts(&mut g, "tokio", Tokio::current_thread(), fail, tokio);
        let ae = AsyncLocal(Rc::new(async_executor::LocalExecutor::new()));
        bench_restarts(&mut g, "async-executor", ae, fail, async_local);
        g.finish();

        let mut g = c.benchmark_group(format!("restart/{name}/multi"));
        wardens(&mut g, fail, WardenMulti::new);
        bench_restarts(&mut g, "tokio", Tokio::multi_thread(), fail, tokio);
        bench_restarts(
            &mut g,
            "async-executor",
            AsyncMulti::new(),
            fail,
            async_multi,
        );
        g.finish();
    }
    QUIET_PANICS.store(false, Ordering::SeqCst);
}

/// warden's variants, each on its own executor made by `new`: `warden` (the default
/// builder), then `warden-bt-off` for panics, or `warden-log` for errors.
fn wardens<D: Driver<S = warden::Handle>>(g: &mut Group<'_>, fail: Fail, new: fn(Builder) -> D) {
    bench_restarts(g, "warden", new(Builder::new()), fail, warden);
    match fail {
        Fail::Panic => {
            let rt = new(Builder::new().backtraces(Backtraces::Off));
            bench_restarts(g, "warden-bt-off", rt, fail, warden);
        }
        Fail::Err => bench_restarts(g, "warden-log", new(Builder::new()), fail, warden_logged),
    }
}

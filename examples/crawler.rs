//! A crawler-shaped fan-out over simulated pages: groups, timeouts and a failure report.
//!
//! ```text
//! cargo run --release --example crawler [-- --pages N --seed S]
//! ```
//!
//! Nothing touches the network: each "page" is a [`warden::sleep`] whose length and fate
//! (fine, slow, an HTTP error, a parser panic) come from a small seeded PRNG keyed by the
//! page's URL, so a given seed always builds the same site. The run takes well under a
//! second.
//!
//! What it shows:
//!
//! * **A supervisor at the top.** The N top-level pages are members of
//!   [`TaskGroup::supervisor`]: one page failing does not stop the crawl of the others, and
//!   `join` returns every failure in a [`GroupError`].
//! * **A time limit per page.** Each fetch runs under [`warden::timeout`]; a slow page's
//!   fetch is dropped at the deadline and the page fails with [`Elapsed`].
//! * **Fan-out in child groups.** A page spawns its links, up to depth 2, into a group of
//!   its own and joins it; if a link failed, the page fails with that group's `GroupError`
//!   as its error, so the report nests (found with `downcast_ref::<GroupError>()`). These
//!   groups are supervisors too: a crawler wants every link tried. (A
//!   [`TaskGroup::child`] group would fail fast: the first broken link would cancel its
//!   siblings, and which of them had finished by then would depend on timing, while this
//!   example prints the same report on every run.) Were a page task cancelled, dropping its
//!   unjoined group would cancel its links (`GroupDropped`).
//! * **A panic is a failure like any other.** One page's "parser" panics; the panic is
//!   reported with its task name and location, and the crawl goes on.
//! * **Counting every outcome.** [`Builder::on_task_exit`] sees how every task ended,
//!   observed or not; its counts agree with [`Metrics`](warden::Metrics).

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use warden::{BoxError, Builder, Elapsed, GroupError, TaskError, TaskExit, TaskGroup};

/// The per-page time limit.
const PAGE_TIMEOUT: Duration = Duration::from_millis(100);
/// Top-level pages are depth 0; pages at this depth have no links of their own.
const MAX_DEPTH: u32 = 2;
/// This page's "parser" panics (its parent is made to link to it).
const PANIC_PAGE: &str = "/page/3/link/1";

/// A tiny PRNG (xorshift64*): deterministic, and enough to pick fates.
struct Rng(u64);

impl Rng {
    /// A generator for one page: the seed mixed with an FNV-1a hash of the URL, so each
    /// page's fate does not depend on the order pages are visited in.
    fn for_page(seed: u64, url: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in url.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // splitmix64's finalizer: nearby seeds give unrelated sites. Never 0 (xorshift's
        // fixed point).
        let mut z = (seed ^ h).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What fetching a simulated page does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Answers after `ms` with `links` links.
    Fine { ms: u64, links: u64 },
    /// Takes far longer than [`PAGE_TIMEOUT`].
    Slow { ms: u64 },
    /// Answers after `ms` with an HTTP error.
    Broken { ms: u64, status: u16 },
    /// The parser panics.
    Panics,
}

fn fate(seed: u64, url: &str, depth: u32) -> Fate {
    let mut rng = Rng::for_page(seed, url);
    let max_links = if depth < MAX_DEPTH {
        4 - depth as u64
    } else {
        0
    };
    let fine = |rng: &mut Rng| Fate::Fine {
        ms: 5 + 20 * rng.below(4),
        links: rng.below(max_links + 1),
    };
    if url == PANIC_PAGE {
        return Fate::Panics;
    }
    if url == parent_of(PANIC_PAGE) {
        // Make sure the panicking page is linked to.
        return Fate::Fine { ms: 5, links: 3 };
    }
    match rng.below(100) {
        0..3 => Fate::Slow {
            ms: 10 * PAGE_TIMEOUT.as_millis() as u64,
        },
        3..8 => Fate::Broken {
            ms: 15 + 20 * rng.below(3),
            status: [404, 500, 503][rng.below(3) as usize],
        },
        _ => fine(&mut rng),
    }
}

fn parent_of(url: &str) -> &str {
    let without_index = &url[..url.rfind('/').unwrap_or(0)];
    &without_index[..without_index.rfind('/').unwrap_or(0)]
}

/// An HTTP error from a simulated server.
#[derive(Debug)]
struct HttpError {
    url: String,
    status: u16,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GET {} answered HTTP {}", self.url, self.status)
    }
}

impl Error for HttpError {}

/// A fetched page: how many links it has.
struct Body {
    links: u64,
}

/// The simulated network.
async fn fetch(seed: u64, url: &str, depth: u32) -> Result<Body, HttpError> {
    match fate(seed, url, depth) {
        Fate::Fine { ms, links } => {
            warden::sleep(Duration::from_millis(ms)).await;
            Ok(Body { links })
        }
        Fate::Slow { ms } => {
            // `timeout` drops this future at the deadline: the sleep never finishes.
            warden::sleep(Duration::from_millis(ms)).await;
            Ok(Body { links: 0 })
        }
        Fate::Broken { ms, status } => {
            warden::sleep(Duration::from_millis(ms)).await;
            Err(HttpError {
                url: url.to_owned(),
                status,
            })
        }
        Fate::Panics => {
            warden::sleep(Duration::from_millis(10)).await;
            panic!("parser bug: unbalanced <table> in {url}");
        }
    }
}

/// Crawls one page: fetch it (with a time limit), then its links, in a group of their own.
///
/// Boxed because it spawns itself.
fn page(seed: u64, url: String, depth: u32) -> BoxFuture<'static, Result<(), BoxError>> {
    Box::pin(async move {
        let body = match warden::timeout(PAGE_TIMEOUT, fetch(seed, &url, depth)).await {
            Ok(fetched) => fetched?,
            Err(elapsed) => return Err(elapsed.into()),
        };
        if body.links == 0 {
            return Ok(());
        }
        let links = TaskGroup::supervisor();
        for i in 0..body.links {
            let link = format!("{url}/link/{i}");
            links
                .spawn_named(format!("GET {link}"), page(seed, link, depth + 1))
                .detach();
        }
        // The page fails if any of its links did; its error is the links' whole report.
        links.join().await.map_err(BoxError::from)
    })
}

/// How every task ended, as [`Builder::on_task_exit`] saw it.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    failed_links: AtomicU64,
    cancelled: AtomicU64,
}

impl Tally {
    fn record(&self, exit: &TaskExit<'_>) {
        let counter = match exit {
            TaskExit::Completed => &self.ok,
            TaskExit::Cancelled(_) => &self.cancelled,
            TaskExit::Failed(err) => match Kind::of(err) {
                Kind::Panic => &self.panics,
                Kind::Timeout(_) => &self.timeouts,
                Kind::Http(_) => &self.errors,
                Kind::Links(_) => &self.failed_links,
                Kind::Other => &self.errors,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// How many tasks have ended, of any kind.
    fn ended(&self) -> u64 {
        [
            &self.ok,
            &self.timeouts,
            &self.errors,
            &self.panics,
            &self.failed_links,
            &self.cancelled,
        ]
        .into_iter()
        .map(Tally::get)
        .sum()
    }
}

/// What a page's failure was.
enum Kind<'a> {
    Panic,
    Timeout(&'a Elapsed),
    Http(&'a HttpError),
    Links(&'a GroupError),
    Other,
}

impl Kind<'_> {
    fn of(err: &TaskError) -> Kind<'_> {
        if err.is_panic() {
            Kind::Panic
        } else if let Some(e) = err.downcast_ref::<Elapsed>() {
            Kind::Timeout(e)
        } else if let Some(e) = err.downcast_ref::<HttpError>() {
            Kind::Http(e)
        } else if let Some(e) = err.downcast_ref::<GroupError>() {
            Kind::Links(e)
        } else {
            Kind::Other
        }
    }
}

/// Prints every failure of `report`, descending into the reports of failed links.
///
/// `GroupError` lists failures in the order they happened; pages that fail at the same
/// moment (two timeouts) may swap places from run to run, so the report sorts by name to
/// print the same thing every time. Task ids are left out for the same reason: they are
/// handed out as pages spawn their links, on whichever worker runs first.
fn print_report(report: &GroupError, indent: usize) {
    let pad = " ".repeat(indent);
    let mut failures: Vec<&TaskError> = report.failures().iter().collect();
    failures.sort_by_key(|err| err.task().name().map(str::to_owned));
    for err in failures {
        let name = err.task().name().unwrap_or("<unnamed>");
        match Kind::of(err) {
            Kind::Panic => println!(
                "{pad}- {name}: panicked at {}: {}",
                err.location()
                    .map_or_else(|| "?".to_owned(), |l| l.to_string()),
                err.panic_message().unwrap_or("?")
            ),
            Kind::Timeout(e) => println!("{pad}- {name}: timed out after {:?}", e.duration()),
            Kind::Http(e) => println!("{pad}- {name}: HTTP {}", e.status),
            Kind::Links(links) => {
                let n = links.failures().len();
                let mut line = format!("{pad}- {name}: {n} of its links failed");
                if links.cancelled() > 0 {
                    line += &format!(", {} cancelled", links.cancelled());
                }
                if let Some(reason) = links.reason() {
                    line += &format!(" ({reason})");
                }
                println!("{line}:");
                print_report(links, indent + 4);
            }
            Kind::Other => println!("{pad}- {err}"),
        }
    }
}

fn parse_args() -> Result<(u64, u64), String> {
    let (mut pages, mut seed) = (12, 0x5eed);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("{arg}: {value:?} is not a number"))?;
        match arg.as_str() {
            "--pages" if (1..=1000).contains(&value) => pages = value,
            "--seed" => seed = value,
            _ => return Err(format!("unexpected argument {arg} (or value out of range)")),
        }
    }
    Ok((pages, seed))
}

fn main() {
    let (pages, seed) = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("crawler: {msg}\nusage: crawler [--pages N (1..=1000)] [--seed S]");
            std::process::exit(2);
        }
    };

    let tally = Arc::new(Tally::default());
    let ex = Builder::new()
        .thread_name("crawler")
        .on_task_exit({
            let tally = tally.clone();
            move |_, exit| tally.record(exit)
        })
        .build();

    let started = Instant::now();
    let report = ex.block_on(async {
        let crawl = TaskGroup::supervisor();
        for i in 0..pages {
            let url = format!("/page/{i}");
            crawl
                .spawn_named(format!("GET {url}"), page(seed, url, 0))
                .detach();
        }
        // Every page has ended, and the hook has seen it, before its group's join returns.
        crawl.join().await
    });
    let elapsed = started.elapsed();

    println!("crawled {pages} top-level pages (seed {seed}) in {elapsed:.2?}");
    match &report {
        Ok(()) => println!("every page and link was fetched"),
        Err(report) => {
            println!(
                "{} of {pages} top-level pages failed:",
                report.failures().len()
            );
            print_report(report, 2);
        }
    }

    let t = &*tally;
    println!(
        "outcomes (on_task_exit): {} ok, {} timeouts, {} errors, {} panics, {} failed because of their links, {} cancelled",
        Tally::get(&t.ok),
        Tally::get(&t.timeouts),
        Tally::get(&t.errors),
        Tally::get(&t.panics),
        Tally::get(&t.failed_links),
        Tally::get(&t.cancelled),
    );
    let m = ex.metrics();
    println!(
        "metrics: spawned {} = completed {} + panicked {} + errored {} + cancelled {} + live {}; {} polls",
        m.spawned, m.completed, m.panicked, m.errored, m.cancelled, m.live, m.polls
    );
    // The two views agree: every task ended once, and the hook saw it.
    assert_eq!(m.completed, Tally::get(&t.ok));
    assert_eq!(m.panicked, Tally::get(&t.panics));
    assert_eq!(
        m.errored,
        Tally::get(&t.timeouts) + Tally::get(&t.errors) + Tally::get(&t.failed_links)
    );
    assert_eq!(m.cancelled, Tally::get(&t.cancelled));
    assert_eq!(m.live, 0);
    assert_eq!(m.spawned, t.ended());
}

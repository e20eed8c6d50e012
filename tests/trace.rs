//! The task timeline (`Builder::trace`), on both executors: the file appears only at
//! shutdown, is valid JSON (checked by a small strict parser below), and holds a spawn, polls
//! with the task id, a wake, a panic, an error, a cancellation and thread names matching what
//! the run did; without tracing configured, nothing is written.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use support::{Flavor, PollCounter, unit};
use warden::{Builder, TaskId};

// ---------------------------------------------------------------------------------------
// A minimal JSON parser: objects, arrays, strings (with escapes), numbers, bools, null.
// Strict: anything else, trailing commas or trailing text is an error.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn num(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Json::Num(n)) => Some(*n),
            _ => None,
        }
    }

    /// `args[key]`, for the string arguments warden writes.
    fn arg(&self, key: &str) -> Option<&str> {
        self.get("args").and_then(|args| args.str(key))
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.ws();
    if p.pos != p.bytes.len() {
        return Err(p.error("trailing text after the value"));
    }
    Ok(value)
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("JSON error at byte {}: {what}", self.pos)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", b as char)))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err(self.error("nested too deep"));
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a key"));
                    }
                    let key = self.string()?;
                    self.expect(b':')?;
                    fields.push((key, self.value(depth + 1)?));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(self.error("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(self.error("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("expected a value")),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        let digits = |p: &mut Parser<'_>| {
            let from = p.pos;
            while p.bytes.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > from
        };
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        if self.bytes.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return Err(self.error("expected digits"));
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.error("expected digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.error("expected exponent digits"));
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap();
        text.parse()
            .map(Json::Num)
            .map_err(|_| self.error("bad number"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.error("bad \\u escape"))?;
        self.pos += 4;
        Ok(hex)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let rest = &self.bytes[self.pos..];
            // Copy the run of plain characters up to the next quote, backslash or end.
            let run = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| self.error("unterminated string"))?;
            out.push_str(std::str::from_utf8(&rest[..run]).map_err(|_| self.error("bad UTF-8"))?);
            self.pos += run;
            match self.bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let esc = *self
                        .bytes
                        .get(self.pos + 1)
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 2;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code) {
                                if !self.bytes[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error("lone surrogate"));
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.error("bad low surrogate"));
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            out.push(
                                char::from_u32(code).ok_or_else(|| self.error("bad code point"))?,
                            );
                        }
                        _ => return Err(self.error("unknown escape")),
                    }
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
    }
}

#[test]
fn the_parser_accepts_json_and_rejects_the_rest() {
    let v = parse_json(r#" {"a": [1, -2.5e3, true, false, null], "b\n\u00e9\ud83d\ude00": {}} "#)
        .unwrap();
    assert_eq!(
        v.get("a"),
        Some(&Json::Arr(vec![
            Json::Num(1.0),
            Json::Num(-2500.0),
            Json::Bool(true),
            Json::Bool(false),
            Json::Null
        ]))
    );
    assert_eq!(v.get("b\n\u{e9}\u{1F600}"), Some(&Json::Obj(vec![])));
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "{a:1}",
        "01",
        "1.",
        "\"\n\"",
        "[1] 2",
        "tru",
        "\"\\x\"",
        "\"\\ud800\"",
    ] {
        assert!(parse_json(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The trace itself.
// ---------------------------------------------------------------------------------------

/// A file name under the temp dir that no other test (or test run) uses; removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        TempPath(std::env::temp_dir().join(format!(
            "warden-test-trace-{}-{nanos}-{n}-{tag}.json",
            std::process::id()
        )))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads and parses a trace; returns its events.
fn read_trace(path: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no trace at {}: {e}", path.display()));
    let json = parse_json(&text).unwrap_or_else(|e| panic!("{e} in:\n{text}"));
    match json.get("traceEvents") {
        Some(Json::Arr(events)) => events.clone(),
        other => panic!("no traceEvents array: {other:?}"),
    }
}

/// The events of phase `ph` whose `args.task` is `id`.
fn events_of<'a>(events: &'a [Json], ph: &str, id: TaskId) -> Vec<&'a Json> {
    let id = id.as_u64().to_string();
    events
        .iter()
        .filter(|e| e.str("ph") == Some(ph) && e.arg("task") == Some(id.as_str()))
        .collect()
}

/// The one instant event named `{kind} ...` for task `id`.
fn instant<'a>(events: &'a [Json], kind: &str, id: TaskId) -> &'a Json {
    let found: Vec<_> = events_of(events, "i", id)
        .into_iter()
        .filter(|e| {
            e.str("name")
                .is_some_and(|n| n.starts_with(&format!("{kind} ")))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one '{kind}' event for task {id}, got {found:?}"
    );
    found[0]
}

rt_test! {
    fn records_the_run(flavor) {
        let file = TempPath::new(&format!("{flavor:?}"));
        let rt = flavor.build(Builder::new().trace(file.path()));
        let weird = "we\"ird\\name\n\ttab";

        let ok = rt.spawn_named(weird, async { 7 });
        let panics = rt.spawn_named("boom", unit(async { panic!("traced panic") }));
        let group = rt.group();
        let errs = group.spawn_named("fails", async { Err::<(), _>("traced error") });

        // Ping-pong over channels: the ponger waits (goes idle) for each ping, so a ping
        // wakes it from outside its poll. (On the pool, a ponger still running when the next
        // ping comes would take it in the same poll, with no wake: the pause before each ping
        // lets it go idle first.)
        let (mut ping_tx, mut ping_rx) = mpsc::channel::<u32>(1);
        let (mut pong_tx, mut pong_rx) = mpsc::channel::<u32>(1);
        let ponger = rt.spawn_named("ponger", async move {
            let mut n = 0;
            while let Some(v) = ping_rx.next().await {
                pong_tx.send(v).await.unwrap();
                n += 1;
            }
            n
        });
        let sleeper = rt.spawn_named("sleeper", warden::sleep(Duration::from_millis(5)));

        // Polled at least once, then cancelled through its handle.
        let (pending, polls) = PollCounter::pending();
        let cancelled = rt.spawn_named("cancel-me", pending);
        // Still pending when the executor shuts down.
        let at_shutdown = rt.spawn_named("left-behind", std::future::pending::<()>());

        rt.block_on(async {
            for i in 0..20 {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.next().await, Some(i));
                warden::sleep(Duration::from_millis(1)).await;
            }
            drop(ping_tx);
            while polls.load(Ordering::SeqCst) == 0 {
                warden::yield_now().await;
            }
            cancelled.cancel();
        });
        let (ok_id, panic_id, error_id, ponger_id, sleeper_id, cancel_id, shutdown_id) = (
            ok.id(),
            panics.id(),
            errs.id(),
            ponger.id(),
            sleeper.id(),
            cancelled.id(),
            at_shutdown.id(),
        );
        let ids = [ok_id, panic_id, error_id, ponger_id, sleeper_id, cancel_id, shutdown_id];
        rt.block_on(async {
            assert_eq!(ok.await.unwrap(), 7);
            assert!(panics.await.unwrap_err().is_panic());
            assert!(errs.await.unwrap_err().is_error());
            assert_eq!(ponger.await.unwrap(), 20);
            sleeper.await.unwrap();
            assert!(cancelled.await.unwrap_err().is_cancelled());
            assert!(group.join().await.is_err());
        });

        // Kept in memory until shutdown.
        assert!(!file.path().exists(), "the trace was written before shutdown");
        rt.shutdown();
        let events = read_trace(file.path());
        drop(rt);

        // Every event has the fields a viewer needs.
        for e in &events {
            let ph = e.str("ph").unwrap_or_else(|| panic!("no ph: {e:?}"));
            assert!(e.str("name").is_some() && e.num("pid").is_some() && e.num("tid").is_some(), "{e:?}");
            match ph {
                "M" => assert_eq!(e.str("name"), Some("thread_name")),
                "X" => {
                    assert!(e.num("ts").is_some_and(|t| t >= 0.0), "{e:?}");
                    assert!(e.num("dur").is_some_and(|d| d >= 0.0), "{e:?}");
                }
                "i" => assert!(e.num("ts").is_some_and(|t| t >= 0.0), "{e:?}"),
                other => panic!("unexpected phase {other:?} in {e:?}"),
            }
        }

        // A spawn for every task, named after it; polls carrying the task id.
        for id in ids {
            let spawn = instant(&events, "spawn", id);
            assert!(spawn.arg("spawned_at").is_some_and(|at| at.contains("trace.rs")), "{spawn:?}");
            assert!(!events_of(&events, "X", id).is_empty(), "no poll event for task {id}");
        }
        assert_eq!(
            instant(&events, "spawn", ok_id).str("name"),
            Some(format!("spawn {weird} {ok_id}").as_str()),
            "the name survives JSON escaping"
        );
        let group_spawn = instant(&events, "spawn", error_id);
        assert!(group_spawn.arg("group").is_some(), "{group_spawn:?}");
        let outcomes: HashSet<&str> = events_of(&events, "X", ok_id)
            .iter()
            .filter_map(|e| e.arg("outcome"))
            .collect();
        assert_eq!(outcomes, HashSet::from(["ready"]));
        assert!(events_of(&events, "X", panic_id).iter().any(|e| e.arg("outcome") == Some("panicked")));
        assert!(events_of(&events, "X", ponger_id).len() > 1, "the ponger was polled once only");

        // Failures and cancellations.
        let panic = instant(&events, "panic", panic_id);
        assert!(panic.arg("error").is_some_and(|m| m.contains("traced panic")), "{panic:?}");
        assert!(panic.arg("location").is_some_and(|l| l.contains("trace.rs")), "{panic:?}");
        let error = instant(&events, "error", error_id);
        assert!(error.arg("error").is_some_and(|m| m.contains("traced error")), "{error:?}");
        let cancel = instant(&events, "cancel", cancel_id);
        assert_eq!(cancel.arg("reason"), Some("cancelled explicitly"));
        let shutdown = instant(&events, "cancel", shutdown_id);
        assert_eq!(shutdown.arg("reason"), Some("the executor shut down"));
        for id in [ok_id, ponger_id, sleeper_id] {
            let failures: Vec<_> = events_of(&events, "i", id)
                .into_iter()
                .filter(|e| e.str("name").is_some_and(|n| !n.starts_with("spawn ") && !n.starts_with("wake ")))
                .collect();
            assert!(failures.is_empty(), "task {id} succeeded: {failures:?}");
        }

        // Wakes: the ponger was woken from outside its poll.
        assert!(
            events_of(&events, "i", ponger_id).iter().any(|e| e.str("name").is_some_and(|n| n.starts_with("wake "))),
            "no wake event for the ponger"
        );

        // Thread names: every thread that recorded an event is named once.
        let named: Vec<(u64, &str)> = events
            .iter()
            .filter(|e| e.str("ph") == Some("M"))
            .map(|e| (e.num("tid").unwrap() as u64, e.arg("name").expect("a thread name")))
            .collect();
        let tids: HashSet<u64> = named.iter().map(|(t, _)| *t).collect();
        assert_eq!(tids.len(), named.len(), "a thread is named twice: {named:?}");
        for e in events.iter().filter(|e| e.str("ph") != Some("M")) {
            let tid = e.num("tid").unwrap() as u64;
            assert!(tids.contains(&tid), "tid {tid} has no name: {e:?}");
        }
        if flavor == Flavor::Pool {
            // Task polls ran on the workers.
            let worker_tids: HashSet<u64> = named
                .iter()
                .filter(|(_, n)| n.starts_with("warden-worker-"))
                .map(|(t, _)| *t)
                .collect();
            assert!(!worker_tids.is_empty(), "no worker thread named: {named:?}");
            for e in events.iter().filter(|e| e.str("ph") == Some("X")) {
                assert!(worker_tids.contains(&(e.num("tid").unwrap() as u64)), "a poll off the workers: {e:?}");
            }
        } else {
            let me = std::thread::current().name().unwrap().to_owned();
            assert!(named.iter().any(|(_, n)| *n == me), "{me} not in {named:?}");
        }
    }

    fn no_trace_configured_writes_nothing(flavor) {
        // In this process: `Builder::trace` writes the file when the executor is dropped.
        let traced = TempPath::new("control");
        run_workload(flavor, Builder::new().trace(traced.path()));
        assert!(!read_trace(traced.path()).is_empty());

        // Without it, nothing appears anywhere. WARDEN_TRACE must be unset for that, and
        // tests in this process run in parallel, so the workload runs in a child process
        // (this test binary, running `child_workload`) whose environment we choose, with an
        // empty directory as its working directory.
        let dir = TempDir::new(&format!("{flavor:?}"));
        run_child(flavor, dir.path(), None);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "an untraced run wrote {left:?}");

        // The control: the same child with WARDEN_TRACE (relative to its working directory)
        // does write there.
        run_child(flavor, dir.path(), Some("trace.json"));
        let events = read_trace(&dir.path().join("trace.json"));
        assert!(events.iter().any(|e| e.str("name").is_some_and(|n| n.starts_with("spawn "))));
    }

    fn a_cancel_event_names_the_sibling_that_failed(flavor) {
        let file = TempPath::new(&format!("sibling-{flavor:?}"));
        let rt = flavor.build(Builder::new().trace(file.path()));
        let (bystander_id, failed_id) = rt.block_on(async {
            let group = warden::TaskGroup::new();
            let bystander = group.spawn_named("bystander", std::future::pending::<()>());
            warden::yield_now().await;
            let fails = group.spawn_named("fails", async { Err::<(), _>("disk full") });
            let ids = (bystander.id(), fails.id());
            assert!(group.join().await.is_err());
            ids
        });
        rt.shutdown();
        let events = read_trace(file.path());
        let cancel = instant(&events, "cancel", bystander_id);
        assert_eq!(
            cancel.arg("reason"),
            Some(format!("sibling task 'fails' {failed_id} failed: disk full").as_str()),
            "{cancel:?}"
        );
    }
}

/// A small workload with a failure and a cancellation.
fn run_workload(flavor: Flavor, builder: Builder) {
    let rt = flavor.build(builder);
    let group = rt.group();
    group.spawn(async { Err::<(), _>("e") }).detach();
    let h = rt.spawn(std::future::pending::<()>());
    rt.block_on(async {
        assert!(group.join().await.is_err());
        h.cancel();
        assert!(h.await.unwrap_err().is_cancelled());
    });
    drop(rt);
}

/// Not a test of its own: `no_trace_configured_writes_nothing` runs it in a child process.
#[test]
#[ignore = "run by no_trace_configured_writes_nothing in a child process"]
fn child_workload() {
    let flavor = match std::env::var("WARDEN_TEST_FLAVOR").as_deref() {
        Ok("Pool") => Flavor::Pool,
        _ => Flavor::Local,
    };
    run_workload(flavor, Builder::new());
    println!("child workload done");
}

/// Runs `child_workload` in a child process in `dir`, with `WARDEN_TRACE` set to `trace` or
/// removed.
fn run_child(flavor: Flavor, dir: &Path, trace: Option<&str>) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_workload",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .current_dir(dir)
    .env("WARDEN_TEST_FLAVOR", format!("{flavor:?}"));
    match trace {
        Some(path) => cmd.env("WARDEN_TRACE", path),
        None => cmd.env_remove("WARDEN_TRACE"),
    };
    let out = cmd.output().expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child workload done"),
        "the child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An empty directory under the temp dir, removed (with what is in it) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = TempPath::new(tag).0.clone().with_extension("d");
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `docs/sample-trace.json` (a trace of `examples/tour.rs`) stays valid and shows each kind
/// of event.
#[test]
fn the_sample_trace_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sample-trace.json");
    let events = read_trace(&path);
    for kind in ["spawn ", "wake ", "panic ", "error ", "cancel "] {
        assert!(
            events
                .iter()
                .any(|e| e.str("ph") == Some("i")
                    && e.str("name").is_some_and(|n| n.starts_with(kind))),
            "no '{kind}' event in {}",
            path.display()
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.str("ph") == Some("X") && e.arg("task").is_some())
    );
    assert!(
        events
            .iter()
            .any(|e| e.str("ph") == Some("M") && e.str("name") == Some("thread_name"))
    );
}

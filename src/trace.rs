//! The task timeline: every spawn, poll, wake that queues a task (a wake during the task's
//! own poll shows as the poll's `"outcome": "pending"` followed by the next poll), failure
//! and cancellation, written as Chrome
//! trace-event JSON that Perfetto (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! Turn it on with [`Builder::trace`](crate::Builder::trace) or the `WARDEN_TRACE`
//! environment variable (a file path). Events are kept in memory and written when the
//! executor shuts down (or is dropped). With tracing off, the executor's hot paths pay one
//! branch on a field that is `None` (what that costs is measured in docs/performance.md,
//! "The timeline, switched off").
//!
//! Each poll is a complete event (`"ph": "X"`) on the thread that ran it, named after the
//! task; the last poll of a task that finishes also covers the drop of its future, which
//! runs right after it returns `Ready`. Spawns, wakes, failures and cancellations are
//! instant events (`"ph": "i"`) with the task id in `args`. Thread names are recorded as
//! metadata events. With [`Builder::poll_timing`](crate::Builder::poll_timing) on, a task's
//! ending event (its failure, its cancellation, or a `done` event for a completion) also
//! carries its poll timing.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::failure::{CancelReason, SiblingFailed, TaskError};
use crate::hook::TaskExit;
use crate::task::{PollTiming, TaskInfo};

/// One recorded event.
struct Event {
    phase: char,
    name: String,
    category: &'static str,
    /// Microseconds since the tracer started.
    ts: f64,
    dur: Option<f64>,
    tid: u64,
    args: Vec<(&'static str, String)>,
}

/// Records events for one executor.
pub(crate) struct Tracer {
    path: PathBuf,
    start: Instant,
    events: Mutex<Vec<Event>>,
    threads: Mutex<Vec<(u64, String)>>,
}

thread_local! {
    /// A small number for this thread, for the trace's `tid`.
    static TID: Cell<u64> = const { Cell::new(0) };
}

fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // At thread exit (an executor dropped from a thread-local's destructor) the cell may be
    // gone: such events share the number 0.
    TID.try_with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
    .unwrap_or(0)
}

fn label(info: &TaskInfo) -> String {
    match info.name() {
        Some(name) => format!("{name} {}", info.id()),
        None => format!("task {}", info.id()),
    }
}

/// The moment a poll started.
pub(crate) struct PollStart(Instant);

impl Tracer {
    /// The tracer for a new executor: from the builder's path, else `WARDEN_TRACE`.
    pub(crate) fn from_config(path: Option<&Path>) -> Option<Tracer> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let env = std::env::var_os("WARDEN_TRACE")?;
                if env.is_empty() {
                    return None;
                }
                numbered(PathBuf::from(env))
            }
        };
        Some(Tracer {
            path,
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        })
    }

    fn micros(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1e6
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tid(&self) -> u64 {
        let tid = thread_number();
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if !threads.iter().any(|(t, _)| *t == tid) {
            let name = std::thread::current()
                .name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("thread {tid}"));
            threads.push((tid, name));
        }
        tid
    }

    fn instant(&self, name: String, info: &TaskInfo, mut args: Vec<(&'static str, String)>) {
        args.insert(0, ("task", info.id().as_u64().to_string()));
        let event = Event {
            phase: 'i',
            name,
            category: "task",
            ts: self.micros(Instant::now()),
            dur: None,
            tid: self.tid(),
            args,
        };
        self.lock().push(event);
    }

    pub(crate) fn spawn(&self, info: &TaskInfo) {
        let mut args = vec![("spawned_at", info.spawned_at().to_string())];
        if let Some(parent) = info.parent() {
            args.push(("parent", parent.as_u64().to_string()));
        }
        if let Some(group) = info.group() {
            args.push(("group", group.as_u64().to_string()));
        }
        self.instant(format!("spawn {}", label(info)), info, args);
    }

    pub(crate) fn wake(&self, info: &TaskInfo) {
        self.instant(format!("wake {}", label(info)), info, Vec::new());
    }

    pub(crate) fn poll_start(&self) -> PollStart {
        PollStart(Instant::now())
    }

    pub(crate) fn poll_end(&self, info: &TaskInfo, start: PollStart, outcome: &'static str) {
        let end = Instant::now();
        let event = Event {
            phase: 'X',
            name: label(info),
            category: "poll",
            ts: self.micros(start.0),
            dur: Some(self.micros(end) - self.micros(start.0)),
            tid: self.tid(),
            args: vec![
                ("task", info.id().as_u64().to_string()),
                ("outcome", outcome.to_owned()),
            ],
        };
        self.lock().push(event);
    }

    /// A task ended: failures and cancellations are marked on its timeline (a completion
    /// is the end of its last poll, already there, unless poll timing is on: then it gets
    /// an instant event of its own, `done`, to carry the timing). With poll timing on, the
    /// ending event's args carry the task's [`PollTiming`], durations in microseconds.
    /// `sibling` is the failure that cancelled a group member, to name it in the event.
    pub(crate) fn ended(
        &self,
        info: &TaskInfo,
        exit: &TaskExit<'_>,
        sibling: Option<&TaskError>,
        timing: Option<&PollTiming>,
    ) {
        let timing_args = timing.map(timing_args).unwrap_or_default();
        match exit {
            TaskExit::Completed => {
                if timing.is_some() {
                    self.instant(format!("done {}", label(info)), info, timing_args);
                }
            }
            TaskExit::Failed(error) => self.failed(error, timing_args),
            TaskExit::Cancelled(reason) => self.cancelled(info, reason, sibling, timing_args),
        }
    }

    fn failed(&self, error: &TaskError, timing_args: Vec<(&'static str, String)>) {
        let mut args = vec![("error", error.to_string())];
        if let Some(location) = error.location() {
            args.push(("location", location.to_string()));
        }
        args.extend(timing_args);
        let kind = if error.is_panic() { "panic" } else { "error" };
        self.instant(
            format!("{kind} {}", label(error.task())),
            error.task(),
            args,
        );
    }

    fn cancelled(
        &self,
        info: &TaskInfo,
        reason: &CancelReason,
        sibling: Option<&TaskError>,
        timing_args: Vec<(&'static str, String)>,
    ) {
        let reason = match (reason, sibling) {
            (CancelReason::SiblingFailed(_), Some(sibling)) => SiblingFailed(sibling).to_string(),
            _ => reason.to_string(),
        };
        let mut args = vec![("reason", reason)];
        args.extend(timing_args);
        self.instant(format!("cancel {}", label(info)), info, args);
    }

    /// Writes everything recorded so far to the file, replacing it.
    pub(crate) fn write(&self) {
        let json = self.to_json();
        if let Err(err) = std::fs::write(&self.path, json) {
            crate::report::error!(
                "could not write the task trace to {}: {err}",
                self.path.display()
            );
        }
    }

    fn to_json(&self) -> String {
        let mut out = String::from("{\"traceEvents\":[\n");
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push_str(",\n");
            }
            first = false;
        };
        for (tid, name) in self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                quote(name)
            );
        }
        for e in self.lock().iter() {
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"name\":{},\"cat\":\"{}\",\"ph\":\"{}\",\"ts\":{:.3},\"pid\":1,\"tid\":{}",
                quote(&e.name),
                e.category,
                e.phase,
                e.ts,
                e.tid
            );
            if let Some(dur) = e.dur {
                let _ = write!(out, ",\"dur\":{dur:.3}");
            }
            if e.phase == 'i' {
                out.push_str(",\"s\":\"t\"");
            }
            out.push_str(",\"args\":{");
            for (i, (k, v)) in e.args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "\"{k}\":{}", quote(v));
            }
            out.push_str("}}");
        }
        out.push_str("\n],\"displayTimeUnit\":\"ms\"}\n");
        out
    }
}

/// `WARDEN_TRACE=trace.json` with several executors in one process: the first writes
/// `trace.json`, the next `trace.2.json`, and so on.
fn numbered(path: PathBuf) -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 {
        return path;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n}"),
    };
    path.with_file_name(name)
}

/// A task's poll timing as event args: the count, and durations in microseconds (the
/// trace's unit).
fn timing_args(timing: &PollTiming) -> Vec<(&'static str, String)> {
    let micros = |d: std::time::Duration| format!("{:.3}", d.as_secs_f64() * 1e6);
    vec![
        ("polls", timing.polls.to_string()),
        ("busy_us", micros(timing.busy)),
        ("longest_poll_us", micros(timing.longest)),
        ("scheduled_wait_us", micros(timing.scheduled_wait)),
        ("first_poll_delay_us", micros(timing.first_poll_delay)),
    ]
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_escapes_json() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}

#!/usr/bin/env python3
"""Turns the results of `cargo bench -p warden-bench` into docs/benchmarks.md.

    python3 benches/report.py [--out docs/benchmarks.md]

(`benches/` is the workspace member that holds the benchmark, `benches/benches/executor.rs`
with its module `executor/restart.rs`, and the examples that measure the peers; paths here
are from the repository root, found from this file's place, so the script can be run from
any directory.)

Reads, under criterion's output directory ($CRITERION_HOME, else
$CARGO_TARGET_DIR/criterion, else the workspace's target/criterion):

* `<group>/<function>/new/benchmark.json` and `new/estimates.json` for every benchmark
  (the median point estimate and its confidence interval, in ns);
* `warden-run.json`, written by the bench at the end of a run: when it started and ended,
  whether it was a quick run, its arguments. Only results written during that run are
  used, so a filtered run does not mix with stale results.

and, if present, the memory example's `memory.json` (in $CARGO_TARGET_DIR or the workspace's
target/), from `cargo run --release -p warden-bench --example memory`.

Every figure in the output comes from these files; nothing is typed in by hand.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Restarts per iteration of the `restart` workloads (`RESTARTS` in benches/benches/executor/restart.rs).
RESTARTS = 1_000

# Workloads in report order: (name, what one iteration does, operations per iteration, unit).
WORKLOADS = [
    ("spawn_many", "a task spawns 10 000 trivial tasks and awaits every handle", 10_000, "task"),
    ("spawn_remote", "the bench thread spawns 10 000 trivial tasks through a handle, then awaits them", 10_000, "task"),
    ("yield_many", "200 tasks yield 1 000 times each", 200_000, "yield"),
    ("ping_pong", "1 000 task pairs, one round trip each over two oneshots", 1_000, "round trip"),
    ("chained_spawn", "a chain of 1 000 tasks, each spawning the next", 1_000, "task"),
    ("panic_storm", "10 000 tasks, every 10th panics, all awaited", 10_000, "task"),
    ("cancel_group", "10 000 pending tasks cancelled; timed from the cancel until every future is dropped", 10_000, "task"),
    ("group_overhead", "yield_many on warden: members of one TaskGroup vs plain spawn", 200_000, "yield"),
    ("restart/panic", "a supervised child panics at its first poll and is restarted, 1 000 times in a row; timed "
     "until the last restarted child's first poll", RESTARTS, "restart"),
    ("restart/err", "the same with a child that returns `Err`", RESTARTS, "restart"),
]
MODES = ["single", "multi"]
PEERS = ["tokio", "async-executor", "futures"]
RUNTIME_ORDER = ["warden", "warden-bt-off", "warden-log", "warden-each", "warden-group", "warden-plain"] + PEERS
MODE_RUNTIMES = {
    "single": "warden `LocalExecutor`, tokio `current_thread`, async-executor `LocalExecutor`, futures `LocalPool`",
    "multi": "warden `Executor` (2 workers), tokio `multi_thread` (2 workers), async-executor `Executor` "
    "(2 threads in `run`: one extra thread and the bench thread), futures `ThreadPool` (2 threads)",
}
# Left out of the ratios: on futures' ThreadPool a task that wakes itself during its poll is
# polled again at once, on the same thread, without going back to a queue, so a yield
# there is not a yield.
NOT_A_REAL_YIELD = {("yield_many", "multi", "futures")}
# warden's variants in the `restart` workloads, with their labels.
RESTART_VARIANTS = {
    "restart/panic": [("warden", "warden, `Backtraces::Always`"), ("warden-bt-off", "warden-bt-off, `Backtraces::Off`")],
    "restart/err": [("warden", None), ("warden-log", "warden-log, a logger formatting each record")],
}


def target_dir():
    env = os.environ.get("CARGO_TARGET_DIR")
    return Path(env) if env else REPO / "target"


def criterion_dir():
    env = os.environ.get("CRITERION_HOME")
    return Path(env) if env else target_dir() / "criterion"


def load_json(path):
    with open(path) as f:
        return json.load(f)


def load_results(cdir, since):
    """{(workload, mode): {runtime: estimate}}, and the stale benchmarks left out."""
    results, stale = {}, []
    for bench_json in sorted(cdir.glob("*/*/new/benchmark.json")):
        est_path = bench_json.with_name("estimates.json")
        if not est_path.exists():
            continue
        meta = load_json(bench_json)
        group, function = meta.get("group_id", ""), meta.get("function_id")
        if "/" not in group or function is None:
            continue
        if since is not None and est_path.stat().st_mtime < since - 1:
            stale.append(f"{group}/{function}")
            continue
        workload, mode = group.rsplit("/", 1)
        median = load_json(est_path)["median"]
        ci = median["confidence_interval"]
        fastest = None
        sample_path = bench_json.with_name("sample.json")
        if sample_path.exists():
            sample = load_json(sample_path)
            fastest = min(t / n for t, n in zip(sample["times"], sample["iters"]) if n)
        results.setdefault((workload, mode), {})[function] = {
            "median": median["point_estimate"],
            "lower": ci["lower_bound"],
            "upper": ci["upper_bound"],
            "fastest": fastest,
        }
    return results, stale


def fmt_time(ns):
    if ns >= 1e9:
        return f"{ns / 1e9:.3g} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def fmt_us(ns):
    return f"{ns / 1e3:.2f} µs"


def fmt_cell(est):
    half = (est["upper"] - est["lower"]) / 2
    pct = 100 * half / est["median"] if est["median"] else 0
    return f"{fmt_time(est['median'])} ±{pct:.0f}%"


def fmt_int(n):
    return f"{n:,}".replace(",", " ")


def show_path(path):
    """Relative to the repository when inside it, else absolute."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def fmt_ratio(r):
    return f"{r:.2f}×"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                    break
    except OSError:
        pass
    return f"{model}, `nproc` = {nproc}{mem}, {platform.system()} {platform.release()}"


def lock_versions(names):
    """Versions of the named packages, from Cargo.lock."""
    versions = {}
    try:
        text = (REPO / "Cargo.lock").read_text()
    except OSError:
        return versions
    for block in text.split("[[package]]"):
        name = re.search(r'^name = "([^"]+)"', block, re.M)
        version = re.search(r'^version = "([^"]+)"', block, re.M)
        if name and version and name.group(1) in names:
            versions.setdefault(name.group(1), []).append(version.group(1))
    return versions


def rustc_version():
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown rustc"


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def ordered(runtimes):
    known = [r for r in RUNTIME_ORDER if r in runtimes]
    return known + sorted(r for r in runtimes if r not in RUNTIME_ORDER)


def best_peer(workload, mode, row, key="median"):
    peers = [(row[p][key], p) for p in PEERS
             if p in row and row[p][key] is not None and (workload, mode, p) not in NOT_A_REAL_YIELD]
    return min(peers) if peers else None


def table(w, header, lines):
    """A markdown table, or a note when this run has no rows for it."""
    if lines:
        w(header)
        w("|" + "---|" * (header.count("|") - 1))
        for line in lines:
            w(line)
    else:
        w("(not in this run)")
    w("")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    cdir = criterion_dir()
    run_path = cdir / "warden-run.json"
    run = load_json(run_path) if run_path.exists() else None
    results, stale = load_results(cdir, run["started"] if run else None)
    if not results:
        sys.exit(f"no criterion results under {cdir}; run `cargo bench -p warden-bench` first")

    out = []
    w = out.append
    w("# Benchmarks: warden and its peers")
    w("")
    w("Generated by `benches/report.py` from the results of one run of `benches/benches/executor.rs`;")
    w("do not edit by hand. Absolute times depend on the machine and on whatever else it was")
    w("doing; the ratios compare runtimes measured in the same run, one after another, on the")
    w("same workload.")
    w("")
    w("## The run")
    w("")
    w(f"* Machine: {machine()}")
    if run:
        env = "WARDEN_BENCH_QUICK=1 " if run.get("quick") else ""
        if run.get("cargo_target_dir"):
            env = f"CARGO_TARGET_DIR={run['cargo_target_dir']} " + env
        extra = [a for a in run.get("args", []) if a != "--bench"]
        tail = (" -- " + " ".join(extra)) if extra else ""
        w(f"* Date: {utc(run['started'])} to {utc(run['finished'])} "
          f"({(run['finished'] - run['started']) / 60:.1f} minutes)")
        w(f"* Command: `{env}cargo bench -p warden-bench{tail}`, then "
          "`cargo run --release -p warden-bench --example memory` and `python3 benches/report.py`")
        if run.get("warden_source"):
            w(f"* warden: commit {run['warden_source']}")
        w(f"* Criterion settings: {run['sample_size']} samples, {run['warm_up_s']:g} s warm-up, "
          f"{run['measurement_s']:g} s measurement per benchmark"
          + (" (quick mode)" if run.get("quick") else ""))
    else:
        w(f"* Date: report written {utc(datetime.datetime.now().timestamp())}; "
          "no `warden-run.json`, so every result found was used")
        w("* Command: `cargo bench -p warden-bench`")
    versions = lock_versions({"tokio", "async-executor", "futures", "criterion"})
    if versions:
        w("* Versions: " + ", ".join(f"{n} {'/'.join(v)}" for n, v in sorted(versions.items()))
          + f"; {rustc_version()} (at report time)")
    html = cdir / "report" / "index.html"
    html_name = show_path(html)
    if html.exists() and (run is None or html.stat().st_mtime >= run["started"] - 1):
        w(f"* Criterion's HTML report (plots, every sample): `{html_name}`")
    elif run is not None and not run.get("plots", True):
        w(f"* Criterion's HTML report: not written by this run (a quick run makes no plots; "
          f"a full run, or `WARDEN_BENCH_PLOTS=1`, writes `{html_name}`)")
    else:
        w(f"* Criterion's HTML report: `{html_name}` (not from this run)")
    if stale:
        w(f"* Left out, older than this run: {len(stale)} result(s) ({', '.join(stale[:6])}"
          + (", ..." if len(stale) > 6 else "") + ")")
    w("")
    w("Modes:")
    w("")
    for mode in MODES:
        w(f"* `{mode}`: {MODE_RUNTIMES[mode]}.")
    w("")
    w("Each cell is criterion's median time for one iteration of the workload, ± half the width")
    w("of its 95% confidence interval.")
    w("")

    # Ratio summary first: it is what the page is for.
    w("## warden / best peer")
    w("")
    w("Below 1.00× warden is faster than every peer; above, slower than the fastest one (named).")
    w("")
    w("| workload | single | multi |")
    w("|---|---|---|")
    ratio_rows = []
    for workload, _, _, _ in WORKLOADS:
        if workload == "group_overhead":
            continue
        variants = {
            "panic_storm": [("warden", "warden, `Backtraces::Always`"), ("warden-bt-off", "warden-bt-off, `Backtraces::Off`")],
            "cancel_group": [("warden", "warden, `TaskGroup::cancel`"), ("warden-each", "warden-each, `JoinHandle::cancel` per task")],
        }.get(workload, RESTART_VARIANTS.get(workload, [("warden", None)]))
        for runtime, label in variants:
            cells, any_cell = [], False
            for mode in MODES:
                row = results.get((workload, mode), {})
                best = best_peer(workload, mode, row)
                if runtime in row and best:
                    ratio = row[runtime]["median"] / best[0]
                    note = " ¹" if any((workload, mode, p) in NOT_A_REAL_YIELD for p in PEERS) else ""
                    cells.append(f"{fmt_ratio(ratio)} ({best[1]}){note}")
                    ratio_rows.append((workload, runtime, mode, ratio, best[1]))
                    any_cell = True
                else:
                    cells.append("–")
            if any_cell:
                name = f"{workload} ({label})" if label else workload
                w(f"| {name} | {cells[0]} | {cells[1]} |")
    w("")
    if any((wl, m) in results for wl, m, _ in NOT_A_REAL_YIELD):
        w("¹ futures' `ThreadPool` is left out of `yield_many/multi`: a task that wakes itself")
        w("during its poll is polled again at once, in place, without going back to a queue, so its")
        w("\"yield\" yields to nobody. Its time is still in the table below.")
        w("")

    w("### The same, from each runtime's fastest sample")
    w("")
    w("Background load only ever adds time, so the fastest sample (total time / iterations of")
    w("the quickest of criterion's samples) is the least disturbed figure. Where this table")
    w("and the one above disagree much, the run was noisy for that workload.")
    w("")
    lines = []
    for workload, runtime, _, _, _ in dict.fromkeys((wl, rt, 0, 0, 0) for wl, rt, _, _, _ in ratio_rows):
        cells = []
        for mode in MODES:
            row = results.get((workload, mode), {})
            best = best_peer(workload, mode, row, "fastest")
            if runtime in row and best and row[runtime]["fastest"] is not None:
                note = " ¹" if any((workload, mode, p) in NOT_A_REAL_YIELD for p in PEERS) else ""
                cells.append(f"{fmt_ratio(row[runtime]['fastest'] / best[0])} ({best[1]}){note}")
            else:
                cells.append("–")
        name = workload if runtime == "warden" else f"{workload} ({runtime})"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    table(w, "| workload | single | multi |", lines)

    w("### warden / each peer")
    w("")
    header = "| workload | mode | " + " | ".join(PEERS) + " |"
    w(header)
    w("|---|---|" + "---|" * len(PEERS))
    for workload, _, _, _ in WORKLOADS:
        for mode in MODES:
            row = results.get((workload, mode), {})
            if "warden" not in row:
                continue
            cells = []
            for p in PEERS:
                if p in row:
                    mark = " ¹" if (workload, mode, p) in NOT_A_REAL_YIELD else ""
                    cells.append(fmt_ratio(row["warden"]["median"] / row[p]["median"]) + mark)
                else:
                    cells.append("–")
            w(f"| {workload} | {mode} | " + " | ".join(cells) + " |")
    w("")

    # group_overhead
    w("## Group overhead")
    w("")
    w("`yield_many` on warden with every task spawned into one `TaskGroup` (then `join`) against")
    w("plain `spawn` (then every handle awaited), in the same run.")
    w("")
    lines = []
    for mode in MODES:
        row = results.get(("group_overhead", mode), {})
        if "warden-group" in row and "warden-plain" in row:
            g, p = row["warden-group"], row["warden-plain"]
            lines.append(f"| {mode} | {fmt_cell(g)} | {fmt_cell(p)} | {fmt_ratio(g['median'] / p['median'])} |")
    table(w, "| mode | warden-group | warden-plain | group / plain |", lines)

    # panic_storm detail
    w("## Panic storm")
    w("")
    w("warden runs with a no-op error hook (every handle is awaited, so nothing reaches it)")
    w("and stores every panic in the task's failure slot with its message and location;")
    w("`warden` also captures a backtrace per panic (`Backtraces::Always`, the default),")
    w("`warden-bt-off` does not. Peers run with the bench's silent panic hook, and")
    w("async-executor and futures wrap each task in `catch_unwind`.")
    w("")
    lines = []
    for mode in MODES:
        row = results.get(("panic_storm", mode), {})
        best = best_peer("panic_storm", mode, row)
        if best and "warden" in row and "warden-bt-off" in row:
            a, o = row["warden"]["median"], row["warden-bt-off"]["median"]
            lines.append(f"| {mode} | {fmt_ratio(a / best[0])} ({best[1]}) | {fmt_ratio(o / best[0])} ({best[1]}) "
                         f"| {fmt_ratio(a / o)} |")
    table(w, "| mode | warden / best peer | warden-bt-off / best peer | warden / warden-bt-off |", lines)

    # restart detail
    w("## Restart cost")
    w("")
    w("One child under a warden `Supervisor` (`OneForOne`, the child `Transient`) fails and is")
    w(f"restarted {fmt_int(RESTARTS)} times in a row; an iteration is timed from spawning the supervisor until")
    w(f"the last restarted child's first poll, so its median divided by {fmt_int(RESTARTS)} is the cost of one")
    w("restart, from the failure to the restarted child's first poll. The peers run the restart")
    w("loop people write by hand, as a task: spawn the child, await its handle, restart it after")
    w("a panic or an `Err`, keeping an intensity window (the restart times within the period, as")
    w("a supervisor must to give up); async-executor's child is wrapped in `catch_unwind`. In")
    w("`restart/panic` the child panics, in `restart/err` it returns `Err`. `warden` captures a")
    w("backtrace per panic (`Backtraces::Always`, the default), `warden-bt-off` does not (an")
    w("`Err` has none). warden logs each restart with `log::info!`: `warden-log` runs with a")
    w("logger that formats each record (and writes it nowhere); every other variant runs without")
    w("a logger, where that costs one atomic load and nothing reaches stderr.")
    w("")
    lines = []
    for workload, _, _, _ in WORKLOADS:
        if workload not in RESTART_VARIANTS:
            continue
        for runtime, label in RESTART_VARIANTS[workload]:
            for mode in MODES:
                row = results.get((workload, mode), {})
                best = best_peer(workload, mode, row)
                if runtime not in row or not best:
                    continue
                ours = row[runtime]["median"]
                tokio = row.get("tokio")
                name = f"{workload} ({label})" if label else workload
                lines.append(
                    f"| {name} | {mode} | {fmt_us(ours / RESTARTS)} "
                    + (f"| {fmt_us(tokio['median'] / RESTARTS)} | {fmt_ratio(ours / tokio['median'])} " if tokio else "| – | – ")
                    + f"| {fmt_us(best[0] / RESTARTS)} ({best[1]}) | {fmt_ratio(ours / best[0])} |")
    table(w, "| workload | mode | warden per restart | tokio per restart | warden / tokio "
             "| best peer per restart | warden / best peer |", lines)

    # Per-workload medians.
    w("## Medians per workload")
    w("")
    for workload, what, ops, unit in WORKLOADS:
        rows = {m: results.get((workload, m), {}) for m in MODES}
        runtimes = ordered(set(rows["single"]) | set(rows["multi"]))
        if not runtimes:
            continue
        w(f"### {workload}")
        w("")
        w(f"One iteration: {what}. Per {unit}: the median divided by {fmt_int(ops)}.")
        w("")
        w("| runtime | single | per " + unit + " | multi | per " + unit + " |")
        w("|---|---|---|---|---|")
        for rt in runtimes:
            cells = []
            for m in MODES:
                est = rows[m].get(rt)
                if est:
                    mark = " ¹" if (workload, m, rt) in NOT_A_REAL_YIELD else ""
                    cells += [fmt_cell(est) + mark, fmt_time(est["median"] / ops)]
                else:
                    cells += ["–", "–"]
            w(f"| {rt} | " + " | ".join(cells) + " |")
        w("")

    # Memory.
    mem_path = target_dir() / "memory.json"
    w("## Memory per pending task")
    w("")
    if mem_path.exists():
        mem = load_json(mem_path)
        w(f"From `cargo run --release -p warden-bench --example memory` ({utc(mem_path.stat().st_mtime)}): "
          f"{fmt_int(mem['tasks'])} tasks that were polled once and stay pending, handles detached; "
          f"growth of the resident set (`VmRSS`) and of live heap bytes (a counting global "
          f"allocator) divided by the number of tasks; each runtime in its own child process, "
          f"median of {mem['repeats']} runs."
          + (f" warden commit {mem['warden_source']}." if mem.get("warden_source") else ""))
        w("")
        w("| runtime | mode | RSS bytes / task | heap bytes / task |")
        w("|---|---|---|---|")
        for r in mem["results"]:
            w(f"| {r['runtime']} | {r['mode']} | {r['rss_bytes_per_task']:.0f} | {r['heap_bytes_per_task']:.0f} |")
        w("")
        by = {(r["runtime"], r["mode"]): r for r in mem["results"]}
        cells = []
        for mode in MODES:
            wr = by.get(("warden", mode))
            peers = [(by[(p, mode)]["heap_bytes_per_task"], p) for p in PEERS if (p, mode) in by]
            if wr and peers:
                best = min(peers)
                cells.append(f"{mode}: {fmt_ratio(wr['heap_bytes_per_task'] / best[0])} ({best[1]})")
        if cells:
            w("Heap bytes per task, warden / smallest peer: " + "; ".join(cells) + ".")
            w("")
    else:
        w(f"No `{show_path(mem_path)}`: run `cargo run --release -p warden-bench --example memory` "
          "before this script to include it.")
        w("")

    # What the numbers mean.
    w("## What the numbers mean")
    w("")
    w("* Every runtime is built once per benchmark, before timing starts; an iteration is one")
    w("  whole workload, from the first spawn until the last result is in the bench thread's")
    w("  hands (for `cancel_group`, from the cancel until the last future has been dropped).")
    w("* The machine is small and shared: with 2 cores, the `multi` runtimes' 2 workers plus")
    w("  the bench thread compete for them, and other processes add noise. Read the ratios,")
    w("  not the absolute times, and compare them with the noise check below.")
    w("* warden pays for its failure model on every task: a task id, a spawn site, a registry")
    w("  entry (so shutdown can cancel every live task), and a group cancel-flag check before")
    w("  each poll. `spawn_many`, `spawn_remote` and `chained_spawn` show that per-task cost;")
    w("  `yield_many` and `ping_pong` show the cost of a poll and a wake. Where that cost goes,")
    w("  instruction by instruction (callgrind, against tokio and futures), and what was tried")
    w("  to cut it: [performance.md](performance.md).")
    w("* `panic_storm` is where the failure slot costs most: each panic is recorded with its")
    w("  message and location, and with `Backtraces::Always` a stack walk; `warden-bt-off`")
    w("  shows the cost without the backtrace.")
    w("* `cancel_group` compares warden's one `TaskGroup::cancel` with the peers' per-task")
    w("  abort (tokio `JoinHandle::abort`, async-executor dropping the `Task`, futures")
    w("  `AbortHandle::abort`); `warden-each` is warden's per-task `JoinHandle::cancel`.")
    w("* `restart/panic` and `restart/err` compare a supervised restart with the loop written by")
    w("  hand: warden's supervisor also turns each failure into a `TaskError` (with a backtrace")
    w("  under `Backtraces::Always`), keeps it in its history, and logs it.")
    spread = []
    for mode in MODES:
        a = results.get(("yield_many", mode), {}).get("warden")
        b = results.get(("group_overhead", mode), {}).get("warden-plain")
        if a and b:
            spread.append(f"{mode} {fmt_time(a['median'])} and {fmt_time(b['median'])} "
                          f"({fmt_ratio(max(a['median'], b['median']) / min(a['median'], b['median']))})")
    if spread:
        w("* A noise check: `yield_many`'s `warden` and `group_overhead`'s `warden-plain` run the")
        w("  same code on the same kind of executor, minutes apart. In this run their medians")
        w(f"  were: {'; '.join(spread)}. Ratios closer to 1.00× than that are within this run's")
        w("  noise.")
    w("")
    if ratio_rows:
        faster = [r for r in ratio_rows if r[3] < 0.9]
        even = [r for r in ratio_rows if 0.9 <= r[3] <= 1.1]
        slower = [r for r in ratio_rows if 1.1 < r[3] <= 2.0]
        much = [r for r in ratio_rows if r[3] > 2.0]

        def names(rows):
            return ", ".join(f"{wl}/{m}" + ("" if rt == "warden" else f" ({rt})") + f" {fmt_ratio(x)}"
                             for wl, rt, m, x, _ in rows) or "none"

        w("In this run, warden against the fastest peer:")
        w("")
        w(f"* faster by more than 10%: {names(faster)}")
        w(f"* within 10%: {names(even)}")
        w(f"* slower, up to 2×: {names(slower)}")
        w(f"* slower by more than 2×: {names(much)}")
        w("")

    text = "\n".join(out)
    # Sections measured by other commands (the I/O servers of `benches/io/`) are written by
    # hand below a marker: carry them over from the file being replaced.
    marker = "<!-- hand-written below: not generated by benches/report.py -->"
    if Path(args.out).exists():
        previous = Path(args.out).read_text()
        if marker in previous:
            text = text.rstrip("\n") + "\n\n" + previous[previous.index(marker):]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

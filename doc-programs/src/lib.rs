//! Comparing a doc program's output with the output the doc shows for it.
//!
//! `build.rs` extracts the programs of `docs/guide.md` and `docs/asyncio.md`;
//! `tests/programs.rs` runs each one and compares, line by line, what it printed (stdout
//! and stderr, interleaved as written) with the doc's ```` ```text ```` block. Both sides
//! go through [`normalise`] first, which rewrites only what legitimately differs between
//! the run the doc shows and this one:
//!
//! * the path of the program's file: the doc's run was `examples/_guide_check_NN.rs`,
//!   this one is `OUT_DIR/_guide_check_NN.rs`; any path ending in `_guide_check_NN.rs`
//!   becomes `examples/_guide_check_NN.rs` (the line and column after it are kept);
//! * the crate in backtrace symbols: `programs::_guide_check_NN::main` here,
//!   `_guide_check_NN::main` in the doc's example binary;
//! * backtrace frame numbers and elided-frame counts, which depend on the binary around
//!   the program (the symbols and their `at` lines are kept);
//! * `env_logger`'s timestamps;
//! * the time offsets of a supervisor's restart history (`  +0.011s restart 2 of ...`),
//!   which follow real time when a program does not use the manual clock;
//! * the lines a [`Varying`] rule names (`build.rs` keeps the list, each with its reason).
//!
//! Everything else must match: the messages, the line and column numbers, the task ids
//! and the order of the lines.

use std::fmt::Write as _;

/// The marker that replaces the path before a program's file name.
const SCRATCH: &str = "_guide_check_";

/// A line of one program's output that varies from run to run on purpose.
#[derive(Debug, Clone, Copy)]
pub enum Varying {
    /// The line that starts with `prefix` ends in a set, `{a, b}`, of one or more of
    /// `members`, each at most once. Any such set reads the same after [`normalise`].
    Set {
        prefix: &'static str,
        members: &'static [&'static str],
    },
}

/// Normalises `text`, a program's output or the doc's copy of it (see the crate doc).
/// `crate_name` is the crate the program was compiled in. Fails if a line a [`Varying`]
/// rule names is missing or breaks the rule.
pub fn normalise(text: &str, crate_name: &str, varying: &[Varying]) -> Result<Vec<String>, String> {
    let in_crate = format!("{crate_name}::{SCRATCH}");
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let line = line.replace(&in_crate, SCRATCH);
            let line = scratch_paths(&line);
            let line = frame_number(&line);
            let line = elided_count(&line);
            restart_offset(&timestamp(&line))
        })
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    for rule in varying {
        let Varying::Set { prefix, members } = *rule;
        let mut seen = 0;
        for line in lines.iter_mut().filter(|l| l.starts_with(prefix)) {
            seen += 1;
            let set = &line[prefix.len()..];
            check_set(set, members).map_err(|why| format!("{line:?}: {why}"))?;
            *line = format!("{prefix}{{one or more of {}}}", members.join(", "));
        }
        if seen == 0 {
            return Err(format!("no line starts with {prefix:?}"));
        }
    }
    Ok(lines)
}

/// `Ok` if `set` is `{a, b, ...}` with one or more distinct `members`.
fn check_set(set: &str, members: &[&str]) -> Result<(), String> {
    let inner = set
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or("not a set")?;
    let items: Vec<&str> = inner.split(", ").collect();
    if items.iter().any(|item| !members.contains(item)) {
        return Err(format!("a member is not one of {members:?}"));
    }
    let mut distinct = items.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != items.len() {
        return Err("a member is there twice".to_owned());
    }
    Ok(())
}

/// Every path that ends in a program's file name, `.../_guide_check_NN.rs`, becomes
/// `examples/_guide_check_NN.rs`. A path starts after whitespace, `(`, `"`, `'` or `[`.
fn scratch_paths(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(SCRATCH) {
        let tail = &rest[at + SCRATCH.len()..];
        let id = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        let end = at + SCRATCH.len() + id;
        if id == 0 || !rest[end..].starts_with(".rs") {
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let start = rest[..at]
            .rfind(|c: char| c.is_whitespace() || "(\"'[".contains(c))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        out.push_str("examples/");
        out.push_str(&rest[at..end]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A backtrace frame's number (`  10: symbol`) becomes `N`, right-aligned as before.
fn frame_number(line: &str) -> String {
    let body = line.trim_start();
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !body[digits..].starts_with(": ") {
        return line.to_owned();
    }
    let width = line.len() - body.len() + digits;
    format!("{:>width$}{}", "N", &body[digits..])
}

/// `[32 frames of ... elided]` becomes `[N frames of ... elided]`.
fn elided_count(line: &str) -> String {
    let Some(open) = line.find('[') else {
        return line.to_owned();
    };
    let after = &line[open + 1..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !after[digits..].starts_with(" frames of ") {
        return line.to_owned();
    }
    format!("{}[N{}", &line[..open], &after[digits..])
}

/// A restart history's `  +0.011s restart 2 of ...` becomes `  +<offset> restart 2 of ...`.
fn restart_offset(line: &str) -> String {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    let Some(rest) = body.strip_prefix('+') else {
        return line.to_owned();
    };
    let Some((number, after)) = rest.split_once("s restart ") else {
        return line.to_owned();
    };
    let fits = number.split_once('.').is_some_and(|(whole, millis)| {
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && millis.len() == 3
            && millis.bytes().all(|b| b.is_ascii_digit())
    });
    if !fits {
        return line.to_owned();
    }
    format!("{indent}+<offset> restart {after}")
}

/// `env_logger`'s `[2026-11-25T15:57:05Z ERROR ...` becomes `[<timestamp> ERROR ...`.
fn timestamp(line: &str) -> String {
    const SHAPE: &str = "dddd-dd-ddTdd:dd:ddZ ";
    let Some(rest) = line.strip_prefix('[') else {
        return line.to_owned();
    };
    let fits = rest.len() >= SHAPE.len()
        && rest.bytes().zip(SHAPE.bytes()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            _ => c == s,
        });
    if !fits {
        return line.to_owned();
    }
    format!("[<timestamp> {}", &rest[SHAPE.len()..])
}

/// `Ok` if `shown` and `actual` are the same lines; otherwise a report of where they
/// differ: a line diff (`-` the doc only, `+` the run only).
pub fn compare(shown: &[String], actual: &[String]) -> Result<(), String> {
    if shown == actual {
        return Ok(());
    }
    // Longest common subsequence, from the end: outputs are a few dozen lines.
    let (n, m) = (shown.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if shown[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut report = String::from("(- shown by the doc, + printed by the program)\n");
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && shown[i] == actual[j] {
            writeln!(report, "  {}", shown[i]).unwrap();
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            writeln!(report, "+ {}", actual[j]).unwrap();
            j += 1;
        } else {
            writeln!(report, "- {}", shown[i]).unwrap();
            i += 1;
        }
    }
    Err(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> String {
        normalise(line, "programs", &[]).unwrap().join("\n")
    }

    #[test]
    fn paths_end_in_examples() {
        assert_eq!(
            one("task #3 (spawned at /t/out/_guide_check_05.rs:95:19) was cancelled"),
            "task #3 (spawned at examples/_guide_check_05.rs:95:19) was cancelled"
        );
        assert_eq!(
            one("             at ./examples/_guide_check_07.rs:2:18"),
            "             at examples/_guide_check_07.rs:2:18"
        );
        assert_eq!(
            one("panicked at _guide_check_a3.rs:2:25: x"),
            "panicked at examples/_guide_check_a3.rs:2:25: x"
        );
        // Not a file: left alone.
        assert_eq!(
            one("_guide_check_07::parse_port"),
            "_guide_check_07::parse_port"
        );
    }

    #[test]
    fn backtraces_keep_symbols_and_lines() {
        assert_eq!(
            one("  10: programs::_guide_check_a3::main::{{closure}}"),
            "   N: _guide_check_a3::main::{{closure}}"
        );
        assert_eq!(
            one("       9: _guide_check_a3::risky_call"),
            "       N: _guide_check_a3::risky_call"
        );
        assert_eq!(
            one("      [32 frames of warden's harness and below elided]"),
            "      [N frames of warden's harness and below elided]"
        );
        // Numbered lines that are not frames are kept.
        assert_eq!(one("  1. task 'foo' #1"), "  1. task 'foo' #1");
        assert_eq!(one("polls: 9"), "polls: 9");
    }

    #[test]
    fn restart_offsets() {
        assert_eq!(
            one("  +0.011s restart 2 of 'cache': task 'cache' #2 failed"),
            "  +<offset> restart 2 of 'cache': task 'cache' #2 failed"
        );
        assert_eq!(one("  +0.011 restart"), "  +0.011 restart");
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            one("[2026-11-25T15:57:05Z ERROR warden] unobserved failure"),
            "[<timestamp> ERROR warden] unobserved failure"
        );
    }

    const WORKERS: Varying = Varying::Set {
        prefix: "ran on: ",
        members: &["\"w-0\"", "\"w-1\""],
    };

    #[test]
    fn a_varying_set_is_checked_then_read_the_same() {
        let a = normalise("ran on: {\"w-1\"}\nend", "programs", &[WORKERS]).unwrap();
        let b = normalise("ran on: {\"w-0\", \"w-1\"}\nend", "programs", &[WORKERS]).unwrap();
        assert_eq!(a, b);
        for bad in [
            "ran on: {}",
            "ran on: {\"w-2\"}",
            "ran on: {\"w-0\", \"w-0\"}",
            "ran on: [\"w-0\"]",
            "ran elsewhere",
        ] {
            assert!(normalise(bad, "programs", &[WORKERS]).is_err(), "{bad}");
        }
    }

    #[test]
    fn compare_reports_a_line_diff() {
        let lines = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
        assert!(compare(&lines("a\nb"), &lines("a\nb")).is_ok());
        let report = compare(&lines("a\nb\nc"), &lines("a\nc\nd")).unwrap_err();
        assert!(report.ends_with("  a\n- b\n  c\n+ d\n"), "{report}");
    }
}

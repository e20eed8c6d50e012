//! Extracts the programs of `docs/guide.md` and `docs/asyncio.md` into `OUT_DIR`.
//!
//! A program is a ```` ```rust ```` block with a `fn main`; the ```` ```text ```` block right
//! after it is the output the doc shows for it. Each program is written to
//! `OUT_DIR/<name>.rs`, exactly as the doc shows it (so the lines and columns in its output
//! are those of the doc's block), and its shown output to `OUT_DIR/<name>.txt`. `<name>` is
//! the scratch file the doc's output names (`_guide_check_05`, `_guide_check_a4`); a
//! program whose output names no file takes the next name of its doc's series.
//!
//! `OUT_DIR/programs.rs`, included by `tests/programs.rs`, declares one module per program
//! (`mod _guide_check_05 { include!(..); pub fn run() { main() } }`), the table
//! `PROGRAMS` and one `#[test]` per program. The rules below ([`VARYING`], [`ALLOWED`])
//! are the only places where a program's output or lints are let off.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The docs, with the series their scratch files are named in: `(prefix, width)` gives
/// `_guide_check_{prefix}{n:0width$}`.
const DOCS: &[(&str, &str, usize)] = &[("guide.md", "", 2), ("asyncio.md", "a", 1)];

/// A line of a program's output that varies from run to run on purpose, and can be
/// neither made deterministic without changing what the doc shows nor normalised by the
/// generic rules (`warden_doc_programs::normalise`): the line that starts with `prefix`
/// must end in a set, `{a, b}`, of one or more of `members`, and then reads the same
/// whichever it is.
struct VaryingSet {
    program: &'static str,
    prefix: &'static str,
    members: &'static [&'static str],
}

/// Every varying line. Each needs a comment that says why it varies.
const VARYING: &[VaryingSet] = &[
    // guide.md section 8: which pool workers ran the hundred tasks spawned from outside
    // depends on which worker took the injector's batch first (the doc says so under the
    // output). It is still a non-empty set of the pool's two workers.
    VaryingSet {
        program: "_guide_check_11",
        prefix: "they ran on: ",
        members: &["\"demo-0\"", "\"demo-1\""],
    },
];

/// Lints allowed on the module of one program, because the doc shows the program as it
/// is: `(program, lint, why)`. Never change the doc's program to please a lint.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// One program found in a doc.
struct Program {
    name: String,
    /// The doc's file name, relative to `docs/`.
    doc: &'static str,
    /// The line of the doc's ```` ```rust ```` fence.
    line: usize,
    source: String,
    shown: String,
}

fn main() {
    let docs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");

    let mut programs = Vec::new();
    for &(doc, prefix, width) in DOCS {
        let path = docs_dir.join(doc);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        programs.extend(extract(doc, &text, prefix, width));
    }

    let mut names = BTreeSet::new();
    for p in &programs {
        assert!(
            names.insert(p.name.clone()),
            "two programs are named {} (docs/{}:{})",
            p.name,
            p.doc,
            p.line
        );
    }
    for rule in VARYING {
        assert!(
            names.contains(rule.program),
            "VARYING names no program {}",
            rule.program
        );
    }
    for (name, _, _) in ALLOWED {
        assert!(names.contains(*name), "ALLOWED names no program {name}");
    }

    for p in &programs {
        write_if_changed(&out_dir.join(format!("{}.rs", p.name)), &p.source);
        write_if_changed(&out_dir.join(format!("{}.txt", p.name)), &p.shown);
    }
    write_if_changed(&out_dir.join("programs.rs"), &table(&programs));
}

/// The programs of one doc, in order.
fn extract(doc: &'static str, text: &str, prefix: &str, width: usize) -> Vec<Program> {
    let series = |n: usize| format!("_guide_check_{prefix}{n:0width$}");
    let lines: Vec<&str> = text.lines().collect();
    let mut programs = Vec::new();
    let mut next = 1;
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let (body, after) = block(&lines, i, doc);
        if info.trim() != "rust" || !body.iter().any(|l| l.starts_with("fn main()")) {
            i = after;
            continue;
        }
        let line = i + 1;
        // The shown output: the next block, with only blank lines before it.
        let mut j = after;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        assert!(
            j < lines.len() && lines[j].trim_end() == "```text",
            "docs/{doc}:{line}: a program with no ```text block of its output after it"
        );
        let (shown, after_shown) = block(&lines, j, doc);
        let named = scratch_names(&shown);
        assert!(
            named.len() <= 1,
            "docs/{doc}:{line}: the output names several files: {named:?}"
        );
        let name = match named.into_iter().next() {
            Some(name) => {
                if name == series(next) {
                    next += 1;
                } else {
                    // A name outside the series (`_guide_check_c`) does not move it; one in
                    // it must be the next.
                    let number = name.strip_prefix(&format!("_guide_check_{prefix}"));
                    assert!(
                        !number.is_some_and(|n| !n.is_empty()
                            && n.bytes().all(|b| b.is_ascii_digit())),
                        "docs/{doc}:{line}: the output names {name}, the series is at {}",
                        series(next)
                    );
                }
                name
            }
            None => {
                next += 1;
                series(next - 1)
            }
        };
        for l in &body {
            assert!(
                !l.starts_with("//!") && !l.starts_with("#!["),
                "docs/{doc}:{line}: {name} has an inner attribute, which include! rejects"
            );
        }
        programs.push(Program {
            name,
            doc,
            line,
            source: body.join("\n") + "\n",
            shown: shown.join("\n") + "\n",
        });
        i = after_shown;
    }
    programs
}

/// The lines inside the fenced block that opens at `open`, and the index after its
/// closing fence.
fn block<'a>(lines: &[&'a str], open: usize, doc: &str) -> (Vec<&'a str>, usize) {
    let close = (open + 1..lines.len())
        .find(|&k| lines[k].trim_end() == "```")
        .unwrap_or_else(|| panic!("docs/{doc}:{}: an unclosed code block", open + 1));
    (lines[open + 1..close].to_vec(), close + 1)
}

/// The distinct `_guide_check_<id>` names the `.rs` files in `text` have.
fn scratch_names(text: &[&str]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text {
        let mut rest = *line;
        while let Some(at) = rest.find("_guide_check_") {
            let tail = &rest[at + "_guide_check_".len()..];
            let id_len = tail
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(tail.len());
            if tail[id_len..].starts_with(".rs") && id_len > 0 {
                names.insert(format!("_guide_check_{}", &tail[..id_len]));
            }
            rest = &tail[id_len..];
        }
    }
    names
}

/// `programs.rs`: the modules, the table and the tests.
fn table(programs: &[Program]) -> String {
    let mut out = String::from("// Generated by doc-programs/build.rs from docs/*.md.\n\n");
    for p in programs {
        let allowed: Vec<&str> = ALLOWED
            .iter()
            .filter(|(name, _, _)| *name == p.name)
            .map(|(_, lint, _)| *lint)
            .collect();
        if !allowed.is_empty() {
            writeln!(out, "#[allow({})]", allowed.join(", ")).unwrap();
        }
        writeln!(
            out,
            "mod {name} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{name}.rs\"));\n    \
             pub fn run() {{\n        main()\n    }}\n}}\n",
            name = p.name
        )
        .unwrap();
    }
    out.push_str("const PROGRAMS: &[Program] = &[\n");
    for p in programs {
        let varying: Vec<String> = VARYING
            .iter()
            .filter(|rule| rule.program == p.name)
            .map(|rule| {
                format!(
                    "warden_doc_programs::Varying::Set {{ prefix: {:?}, members: &{:?} }}",
                    rule.prefix, rule.members
                )
            })
            .collect();
        writeln!(
            out,
            "    Program {{\n        name: \"{name}\",\n        test: \"{test}\",\n        \
             doc: \"docs/{doc}\",\n        line: {line},\n        run: {name}::run,\n        \
             shown: include_str!(concat!(env!(\"OUT_DIR\"), \"/{name}.txt\")),\n        \
             varying: &[{varying}],\n    }},",
            name = p.name,
            test = test_name(&p.name),
            doc = p.doc,
            line = p.line,
            varying = varying.join(", "),
        )
        .unwrap();
    }
    out.push_str("];\n\n");
    for p in programs {
        writeln!(
            out,
            "/// docs/{doc}:{line}\n#[test]\nfn {test}() {{\n    check(\"{name}\");\n}}\n",
            doc = p.doc,
            line = p.line,
            test = test_name(&p.name),
            name = p.name
        )
        .unwrap();
    }
    out
}

/// The test that checks program `name`: `guide_check_05` for `_guide_check_05`.
fn test_name(name: &str) -> String {
    name.trim_start_matches('_').to_owned()
}

/// Writes `text` to `path` unless it holds that already (keeps the test crate's inputs'
/// timestamps, so that an unchanged doc does not rebuild it).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

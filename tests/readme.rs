//! The README's example is `examples/readme.rs`, word for word, and the output its
//! comment shows is what the program prints when saved as a fresh `src/main.rs`: same
//! lines, same columns.

mod support;

mod readme {
    include!("../examples/readme.rs");

    pub(super) fn run() {
        main()
    }
}

use support::child::{is_child, run};

const CASE: &str = "the_readme_example_prints_what_its_comment_says";

/// The README's first Rust code block.
fn readme_block() -> String {
    let text = include_str!("../README.md");
    let start = text.find("```rust\n").expect("a rust block in the README") + "```rust\n".len();
    let end = start + text[start..].find("```\n").expect("the block's end");
    text[start..end].to_string()
}

#[test]
fn the_readme_example_is_examples_readme_rs() {
    assert_eq!(
        readme_block(),
        include_str!("../examples/readme.rs"),
        "README.md's example and examples/readme.rs differ: keep them the same"
    );
}

#[test]
fn the_readme_example_prints_what_its_comment_says() {
    if is_child(CASE) {
        readme::run();
        return;
    }
    let child = run(CASE, CASE, &[]);
    assert!(child.passed(), "{}", child.report());
    // Compiled here, the example's file is named through the `include!` above; as a
    // program's own `src/main.rs` it is named so.
    let printed = child
        .stdout
        .lines()
        .find_map(|l| l.find("task 'fetch-user'").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no report printed:\n{}", child.stdout))
        .replace("tests/../examples/readme.rs", "src/main.rs");
    assert!(
        !printed.contains("readme.rs"),
        "an unexpected file name: {printed}"
    );
    let block = readme_block();
    let shown = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("// task 'fetch-user'"))
        .map(|rest| format!("task 'fetch-user'{rest}"))
        .expect("the README shows the report in a comment");
    assert_eq!(printed, shown);
}

/// The README's hyper example is `benches/io/examples/hyper_server.rs` (from its first
/// `use` on), word for word: that package builds it with the `hyper` feature.
#[test]
fn readme_hyper_example_is_the_compiled_one() {
    let readme = include_str!("../README.md");
    let example = include_str!("../benches/io/examples/hyper_server.rs");
    let code = &example[example.find("\nuse ").expect("a use line") + 1..];
    let section = &readme[readme
        .find("## Servers: the `io` feature")
        .expect("the README's io section")..];
    let fence = "```rust,ignore\n";
    let start = section.find(fence).expect("a rust block in the io section") + fence.len();
    let len = section[start..].find("```\n").expect("the block's end");
    assert_eq!(
        &section[start..start + len],
        code,
        "README.md's hyper example and benches/io/examples/hyper_server.rs differ: keep them the same"
    );
}

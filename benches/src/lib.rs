//! `warden-bench` holds no library code: it is the workspace member that measures warden
//! against its peers (tokio, async-executor, futures), kept apart so that warden's own
//! build and test suite never compile the peers or criterion.
//!
//! * `benches/executor.rs`: the criterion benchmarks, `cargo bench -p warden-bench` (from
//!   anywhere in the workspace); `report.py` turns a run into `docs/benchmarks.md`.
//! * `benches/to_async.rs`: warden's `criterion` feature at work, `b.to_async(&ex)` on both
//!   executors (the README's example; not in `report.py`'s tables).
//! * `examples/hot_paths.rs`: one hot path at a time, for callgrind
//!   (`cargo build --release -p warden-bench --example hot_paths`).
//! * `examples/memory.rs`: bytes per pending task
//!   (`cargo run --release -p warden-bench --example memory`).
//!
//! A package needs a library or a binary target; this file is that target.

//! Placeholder: the benchmarks are the examples (`cargo run --release -p warden-io-bench --example hyper_bench`).

use criterion::{Criterion, criterion_group, criterion_main};
use warden::{Executor, LocalExecutor};

// One spawn and one join per iteration, on each executor, through `b.to_async(&ex)`.
fn spawn_join(c: &mut Criterion) {
    let local = LocalExecutor::new();
    let pool = Executor::new();
    let mut group = c.benchmark_group("to_async");
    group.bench_function("local", |b| {
        b.to_async(&local)
            .iter(|| async { warden::spawn(async { 1 }).await.unwrap() })
    });
    group.bench_function("pool", |b| {
        b.to_async(&pool)
            .iter(|| async { warden::spawn(async { 1 }).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, spawn_join);
criterion_main!(benches);

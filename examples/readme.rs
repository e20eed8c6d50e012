use warden::{Builder, TaskGroup};

fn main() {
    let ex = Builder::new()
        .on_unhandled(|err| eprintln!("nobody handled: {err:#}"))
        .build();

    // A panic is data: message, location, task name, spawn site and backtrace.
    let err = ex
        .block_on(ex.spawn_named("fetch-user", async { panic!("connection reset") }))
        .unwrap_err();
    println!("{err}");
    // task 'fetch-user' #1 (spawned at src/main.rs:10:22) panicked at src/main.rs:10:56: connection reset

    // A group: the first failure cancels the siblings; join reports every failure.
    let report = ex.block_on(async {
        let group = TaskGroup::new();
        group.spawn(std::future::pending::<()>()).detach();
        group.spawn(async { Err::<(), _>("disk full") }).detach();
        group.join().await
    });
    let err = report.unwrap_err();
    assert_eq!((err.failures().len(), err.cancelled()), (1, 1));
}

//! Spawning tasks and joining their values, on both executors.

mod support;

rt_test! {
    fn spawn_and_join_values(flavor) {
        let rt = flavor.rt();
        let a = rt.spawn(async { 1 });
        let b = rt.spawn(async { String::from("two") });
        assert_eq!(rt.block_on(a).unwrap(), 1);
        assert_eq!(rt.block_on(b).unwrap(), "two");
        let m = rt.metrics();
        assert_eq!((m.spawned, m.completed, m.live), (2, 2, 0));
    }
}

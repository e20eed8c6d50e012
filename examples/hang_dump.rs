//! A program that hangs on purpose, and the live-task dump that shows where.
//!
//! ```text
//! cargo run --example hang_dump
//! ```
//!
//! An order needs its stock reserved and its payment taken. The `inventory` task waits for
//! `billing` to confirm the payment before it reserves; `billing` waits for `inventory` to
//! confirm the reservation before it charges. Neither ever sends: a deadlock through two
//! channels, which no executor can tell from a slow peer (both tasks are idle, and the
//! senders they wait on are alive). A group of `notify` tasks waits for the order's
//! confirmation, and a `heartbeat` task ticks along, unaffected.
//!
//! The main future waits for the order with a timeout. When it fires, the program prints
//! [`Executor::dump`](warden::Executor::dump): every live task in a tree by parent and
//! group, with its state and poll count. The stuck tasks stand out: idle since the start,
//! after a single poll, while the heartbeat was polled a moment ago. Then it lists them
//! again by iterating over the dump, as a tool would, and exits normally (0); dropping the
//! executor cancels the stuck tasks.

use std::time::Duration;

use futures::channel::oneshot;
use warden::{Builder, TaskGroup, TaskState};

/// How long the order may take before the program calls it hung.
const PATIENCE: Duration = Duration::from_millis(300);

async fn place_order(order: u32) {
    let (paid_tx, paid_rx) = oneshot::channel::<()>();
    let (reserved_tx, reserved_rx) = oneshot::channel::<()>();
    let inventory = warden::spawn_named("inventory", async move {
        let _ = paid_rx.await; // waits for billing...
        let _ = reserved_tx.send(());
    });
    let billing = warden::spawn_named("billing", async move {
        let _ = reserved_rx.await; // ...which waits for inventory
        let _ = paid_tx.send(());
    });
    let notify = TaskGroup::new();
    let mut confirmations = Vec::new();
    for channel in ["email", "sms"] {
        let (tx, rx) = oneshot::channel::<u32>();
        confirmations.push(tx);
        notify
            .spawn_named(format!("notify-{channel}"), async move {
                if let Ok(order) = rx.await {
                    println!("{channel}: order {order} confirmed");
                }
            })
            .detach();
    }
    let _ = inventory.await;
    let _ = billing.await;
    for tx in confirmations {
        let _ = tx.send(order);
    }
    let _ = notify.join().await;
}

fn main() {
    let ex = Builder::new().worker_threads(2).build();
    ex.spawn_named("heartbeat", async {
        loop {
            warden::sleep(Duration::from_millis(20)).await;
        }
    })
    .detach();
    let order = ex.spawn_named("order-7", place_order(7));
    match ex.block_on(warden::timeout(PATIENCE, order)) {
        Ok(_) => println!("the order went through (it was not supposed to)"),
        Err(_) => {
            let dump = ex.dump();
            println!("no progress after {PATIENCE:?}; the live tasks:\n\n{dump}");
            // The same, as a tool reads it: tasks idle for most of the wait after one poll.
            let stuck: Vec<String> = dump
                .iter()
                .filter(|t| t.polls() <= 1)
                .filter(|t| matches!(t.state(), TaskState::Idle { since } if since >= PATIENCE / 2))
                .map(|t| format!("{}", t.info()))
                .collect();
            println!("polled once and idle ever since: {}", stuck.join(", "));
        }
    }
}

//! Live wire rates: while at least one comms client is connected, a task
//! reads the runtime's per-output message counters once per interval and
//! publishes `flowd/rates`:
//! `{"interval_ms": 1000, "nodes": {"<node id>": [messages sent per output port in the interval]}}`.
//! With no client connected the task ends; the next client starts it again.

use crate::comms::CommsHub;
use flowd_engine::Runtime;
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// The comms topic of the rates.
pub const RATES_TOPIC: &str = "flowd/rates";
/// How often rates are published.
pub const RATES_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the publisher unless it is running.
pub fn ensure_running(runtime: Arc<Runtime>, hub: Arc<CommsHub>, interval: Duration) {
    if hub
        .rates_running
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        tokio::spawn(run(runtime, hub, interval));
    }
}

/// True while the publisher runs.
pub fn is_running(hub: &CommsHub) -> bool {
    hub.rates_running.load(Ordering::SeqCst)
}

/// Messages per port since `prev` (a restarted node counts from 0 again).
fn deltas(now: &[u64], prev: Option<&Vec<u64>>) -> Vec<u64> {
    now.iter()
        .enumerate()
        .map(|(i, &c)| {
            let p = prev.and_then(|p| p.get(i)).copied().unwrap_or(0);
            if c >= p {
                c - p
            } else {
                c
            }
        })
        .collect()
}

async fn run(runtime: Arc<Runtime>, hub: Arc<CommsHub>, interval: Duration) {
    let mut last: HashMap<String, Vec<u64>> = match runtime.output_counts().await {
        Ok(c) => c.into_iter().collect(),
        Err(_) => {
            hub.rates_running.store(false, Ordering::SeqCst);
            return;
        }
    };
    let mut at = Instant::now();
    let mut ticker = tokio::time::interval_at(at + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if hub.client_count() == 0 {
            hub.rates_running.store(false, Ordering::SeqCst);
            // A client that connected between the check and the store found
            // the flag still set: carry on for it.
            if hub.client_count() == 0
                || hub
                    .rates_running
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                return;
            }
        }
        let Ok(now) = runtime.output_counts().await else {
            hub.rates_running.store(false, Ordering::SeqCst);
            return;
        };
        let elapsed = at.elapsed();
        at = Instant::now();
        let mut nodes = Map::new();
        let mut next = HashMap::with_capacity(now.len());
        for (id, counts) in now {
            nodes.insert(id.clone(), json!(deltas(&counts, last.get(&id))));
            next.insert(id, counts);
        }
        last = next;
        let interval_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        hub.publish(
            RATES_TOPIC,
            json!({"interval_ms": interval_ms, "nodes": Json::Object(nodes)}),
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::deltas;

    #[test]
    fn deltas_restart_from_zero_for_restarted_nodes() {
        assert_eq!(deltas(&[5, 2], Some(&vec![3, 2])), vec![2, 0]);
        assert_eq!(deltas(&[4], None), vec![4]);
        assert_eq!(deltas(&[1, 7], Some(&vec![9])), vec![1, 7]);
    }
}

//! Broker counters for `$SYS/broker/...`: plain atomics, updated without a
//! lock by the router and the connections.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug)]
pub struct Stats {
    pub clients_connected: AtomicU64,
    pub sessions: AtomicU64,
    pub subscriptions: AtomicU64,
    pub retained: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            clients_connected: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            retained: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_dropped: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub fn set_gauges(&self, sessions: usize, subscriptions: usize, retained: usize) {
        self.sessions.store(sessions as u64, Relaxed);
        self.subscriptions.store(subscriptions as u64, Relaxed);
        self.retained.store(retained as u64, Relaxed);
    }

    pub fn message_received(&self) {
        self.messages_received.fetch_add(1, Relaxed);
    }

    pub fn message_sent(&self) {
        self.messages_sent.fetch_add(1, Relaxed);
    }

    pub fn message_dropped(&self) {
        self.messages_dropped.fetch_add(1, Relaxed);
    }

    pub fn bytes_in(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Relaxed);
    }

    pub fn bytes_out(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Relaxed);
    }
}

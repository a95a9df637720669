//! What flows between connections and the router: routed application
//! messages (shared, never copied per subscriber), the router's inbound
//! requests and each connection's outbox.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::codec::{
    Ack, ConnAck, Connect, Disconnect, Properties, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

/// An application message as the router holds it. One `Arc<Message>` is
/// shared by every subscriber it is delivered to.
#[derive(Debug)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Publish properties without topic alias and subscription ids.
    pub properties: Properties,
    /// From the v5 message expiry interval.
    pub expires_at: Option<Instant>,
    /// The publishing client, for no-local.
    pub publisher: Option<Arc<str>>,
}

impl Message {
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// One message on its way to one client.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
    pub pkid: u16,
    pub subscription_ids: Vec<u32>,
    /// Journal sequence number when the session is persisted, else 0.
    pub seq: u64,
}

/// Identifies one network or local connection (a client id may have
/// several over time; stale ones are ignored by the router).
pub type ConnId = u64;

/// Why a connection ended, as the router needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// DISCONNECT with reason 0: no will.
    Normal,
    /// Anything else: the will is published.
    Abnormal,
}

/// A request from a connection to the router.
#[derive(Debug)]
pub enum Inbound {
    Connect {
        conn: ConnId,
        connect: Box<Connect>,
        outbox: Outbox,
        username: Option<String>,
    },
    Publish {
        conn: ConnId,
        client: Arc<str>,
        publish: crate::codec::Publish,
    },
    Ack {
        conn: ConnId,
        client: Arc<str>,
        ack: Ack,
    },
    /// A QoS 1/2 delivery the connection could not send (too large for the
    /// client): complete it as if acknowledged.
    Dropped {
        conn: ConnId,
        client: Arc<str>,
        pkid: u16,
    },
    Subscribe {
        conn: ConnId,
        client: Arc<str>,
        subscribe: Subscribe,
    },
    Unsubscribe {
        conn: ConnId,
        client: Arc<str>,
        unsubscribe: Unsubscribe,
    },
    /// A message the broker itself publishes (`$SYS`).
    Internal(Arc<Message>),
    Closed {
        conn: ConnId,
        client: Arc<str>,
        reason: CloseReason,
        session_expiry: Option<u32>,
    },
}

/// What the router sends to a connection.
#[derive(Debug)]
pub enum Outgoing {
    // Large packets are boxed: an outbox's channel allocates blocks of
    // slots the size of this enum, per connection.
    ConnAck {
        connack: Box<ConnAck>,
    },
    Publish(Delivery),
    Ack(AckOut),
    SubAck(Box<SubAck>),
    UnsubAck(Box<UnsubAck>),
    /// Answer to PINGREQ (sent by the connection's own reader).
    PingResp,
    /// Send DISCONNECT (v5) and close.
    Disconnect(Box<Disconnect>),
}

/// A PUBACK / PUBREC / PUBREL / PUBCOMP to send (no properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOut {
    pub kind: crate::codec::AckKind,
    pub pkid: u16,
    pub code: u8,
}

impl Outgoing {
    pub fn ack(a: Ack) -> Outgoing {
        Outgoing::Ack(AckOut {
            kind: a.kind,
            pkid: a.pkid,
            code: a.code,
        })
    }

    pub fn disconnect(code: u8) -> Outgoing {
        Outgoing::Disconnect(Box::new(Disconnect::new(code)))
    }
}

/// The router's side of a connection: a queue whose length the router
/// bounds itself (QoS 1/2 by the in-flight window, QoS 0 by `queued_qos0`,
/// decremented by the connection as it takes them). A `VecDeque` behind a
/// per-connection mutex rather than a channel: it allocates nothing while
/// empty, so idle connections stay small.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<OutboxShared>,
    pub queued_qos0: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct OutboxShared {
    queue: Mutex<VecDeque<Outgoing>>,
    ready: Notify,
    senders: AtomicUsize,
    receiver_gone: AtomicBool,
}

/// The connection's side of its outbox.
#[derive(Debug)]
pub struct OutboxRx {
    shared: Arc<OutboxShared>,
}

/// Queue capacity kept when the queue empties; beyond it the memory is
/// given back.
const OUTBOX_KEEP: usize = 64;

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Outbox {
            shared: self.shared.clone(),
            queued_qos0: self.queued_qos0.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Relaxed);
        if let Ok(mut q) = self.shared.queue.lock() {
            *q = VecDeque::new();
        }
    }
}

impl Outbox {
    pub fn new() -> (Outbox, OutboxRx) {
        let shared = Arc::new(OutboxShared {
            senders: AtomicUsize::new(1),
            ..Default::default()
        });
        let outbox = Outbox {
            shared: shared.clone(),
            queued_qos0: Arc::new(AtomicUsize::new(0)),
        };
        (outbox, OutboxRx { shared })
    }

    fn push(&self, out: Outgoing) -> bool {
        if self.shared.receiver_gone.load(Ordering::Relaxed) {
            return false;
        }
        match self.shared.queue.lock() {
            Ok(mut q) => q.push_back(out),
            Err(_) => return false,
        }
        self.shared.ready.notify_one();
        true
    }

    /// Sends unless the connection is gone (then the message is dropped;
    /// QoS 1/2 deliveries stay in the session and are resent later).
    pub fn send(&self, out: Outgoing) {
        self.push(out);
    }

    /// Sends a QoS 0 delivery if fewer than `limit` are waiting.
    pub fn try_send_qos0(&self, d: Delivery, limit: usize) -> bool {
        if self.queued_qos0.load(Ordering::Relaxed) >= limit {
            return false;
        }
        self.queued_qos0.fetch_add(1, Ordering::Relaxed);
        if !self.push(Outgoing::Publish(d)) {
            self.queued_qos0.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Called by the connection when it has taken a QoS 0 delivery.
    pub fn qos0_taken(counter: &AtomicUsize) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OutboxRx {
    /// The next item without waiting.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let mut q = self.shared.queue.lock().ok()?;
        let out = q.pop_front();
        if q.is_empty() && q.capacity() > OUTBOX_KEEP {
            *q = VecDeque::new();
        }
        out
    }

    /// The next item; `None` once every sender is gone and it is empty.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(out) = self.try_recv() {
                return Some(out);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return self.try_recv();
            }
            // notify_one stores a permit, so a push between the check and
            // this await is not missed.
            self.shared.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_items_stay_small() {
        // Every queued outbox item is this size.
        assert!(
            std::mem::size_of::<Outgoing>() <= 96,
            "{}",
            std::mem::size_of::<Outgoing>()
        );
    }
}

#[cfg(test)]
mod outbox_tests {
    use super::*;

    #[tokio::test]
    async fn outbox_delivers_in_order_and_ends_when_senders_are_gone() {
        let (tx, mut rx) = Outbox::new();
        let tx2 = tx.clone();
        tx.send(Outgoing::PingResp);
        tx2.send(Outgoing::disconnect(0));
        assert!(matches!(rx.recv().await, Some(Outgoing::PingResp)));
        assert!(matches!(rx.recv().await, Some(Outgoing::Disconnect(_))));
        let waiter = tokio::spawn(async move { rx.recv().await.is_none() });
        tokio::task::yield_now().await;
        drop(tx);
        drop(tx2);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn sends_after_the_receiver_is_gone_are_dropped() {
        let (tx, rx) = Outbox::new();
        drop(rx);
        assert!(!tx.push(Outgoing::PingResp));
    }
}

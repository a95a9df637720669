//! Received publications on their way to the subscribing nodes, and their
//! acknowledgements: a QoS 1/2 publication is acknowledged once every node
//! that got it has passed it on to the flow, in the order publications
//! arrived.

use super::mqtt_client::{Client, RawPublish, Received};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the acknowledgement of a publication no node took waits for the
/// connection to close (see [`AckOnDrop`]).
pub const ABANDONED_ACK_DELAY: Duration = Duration::from_secs(5);
/// A received publication handed to a subscribing node. The broker gets the
/// acknowledgement once every node's copy was taken ([`Delivery::taken`]);
/// a copy dropped without being taken (the node stopped) withholds it, so a
/// persistent session gets the publication again.
pub struct Delivery {
    /// The subscription it matched.
    pub subscription: u64,
    /// The publication.
    pub received: Arc<AckOnDrop>,
    pub(super) taken: bool,
    pub(super) backlog: Arc<AtomicUsize>,
}

/// Where a subscribing node receives its publications.
pub type DeliverySender = mpsc::UnboundedSender<Delivery>;

impl Delivery {
    /// The flow has the message: this copy no longer holds back the acknowledgement.
    pub fn taken(mut self) {
        self.taken = true;
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.backlog.fetch_sub(1, Ordering::SeqCst);
        if !self.taken {
            self.received.abandoned.store(true, Ordering::SeqCst);
        }
    }
}

/// Acknowledges a received QoS 1/2 publication when the last copy is gone,
/// in the order the publications arrived (a broker such as Mosquitto
/// redelivers out of order when acknowledgements come out of order).
/// When a copy was abandoned, its acknowledgement is left out of the order;
/// it waits [`ABANDONED_ACK_DELAY`] and is skipped if the connection closed
/// meanwhile (flowd stopping: a persistent session gets the publication
/// again); on a connection that stays up it is sent, so the broker's
/// in-flight window does not fill with publications no node will take.
pub struct AckOnDrop {
    /// The publication.
    pub publication: Received,
    pub(super) client: Client,
    pub(super) abandoned: AtomicBool,
    pub(super) closed: Arc<AtomicBool>,
    pub(super) acks: Arc<Mutex<AckOrder>>,
    /// Generation and sequence number in [`AckOrder`] (QoS 1/2 only).
    pub(super) slot: Option<(u64, u64)>,
}

impl Drop for AckOnDrop {
    fn drop(&mut self) {
        let Some(packet) = self.publication.packet.take() else {
            return;
        };
        let Some((generation, seq)) = self.slot else {
            return;
        };
        let abandoned = self.abandoned.load(Ordering::SeqCst);
        let late = {
            let mut order = self.acks.lock().unwrap_or_else(|e| e.into_inner());
            if order.generation != generation {
                return; // received on an earlier connection
            }
            let entry = order.waiting.iter_mut().find(|(s, _)| *s == seq);
            match (entry, abandoned) {
                (Some(e), false) => {
                    e.1 = AckState::Ready(packet);
                    None
                }
                (Some(e), true) => {
                    e.1 = AckState::Skip;
                    Some(packet)
                }
                (None, _) => None,
            }
        };
        if let Some(packet) = late {
            let (client, closed) = (self.client.clone(), self.closed.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    tokio::time::sleep(ABANDONED_ACK_DELAY).await;
                    if !closed.load(Ordering::SeqCst) {
                        client.ack(&packet).await;
                    }
                });
            }
        }
        pump_acks(&self.acks, &self.client);
    }
}

/// What a received QoS 1/2 publication waits for.
pub(super) enum AckState {
    /// Some node still has it.
    Waiting,
    /// Taken: acknowledge in turn.
    Ready(RawPublish),
    /// Abandoned: not acknowledged in turn.
    Skip,
}

/// Received QoS 1/2 publications of the current connection, in arrival order.
#[derive(Default)]
pub struct AckOrder {
    pub(super) generation: u64,
    pub(super) next_seq: u64,
    pub(super) waiting: VecDeque<(u64, AckState)>,
}

/// Sends the acknowledgements that are due, in order, while the client has room.
pub(super) fn pump_acks(acks: &Mutex<AckOrder>, client: &Client) {
    let mut order = acks.lock().unwrap_or_else(|e| e.into_inner());
    while let Some((_, state)) = order.waiting.front() {
        match state {
            AckState::Waiting => break,
            AckState::Skip => {
                order.waiting.pop_front();
            }
            AckState::Ready(packet) => {
                if !client.try_ack(packet) {
                    break; // the poll loop pumps again after its next event
                }
                order.waiting.pop_front();
            }
        }
    }
}

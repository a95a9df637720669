//! A client session as the router keeps it: subscriptions, the outgoing
//! QoS 1/2 window (in-flight) and queue, incoming QoS 2 ids awaiting
//! PUBREL, the will, and the link to the current connection if any.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use crate::codec::{Ack, AckKind, LastWill, ProtocolVersion, QoS, SubscriptionOptions};
use crate::message::{ConnId, Delivery, Outbox, Outgoing};

/// Session expiry that means "never" (v3 clean session 0).
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// The live connection of a session.
#[derive(Debug)]
pub struct Link {
    pub conn: ConnId,
    pub outbox: Outbox,
    /// In-flight window: min(client receive maximum, broker limit).
    pub window: usize,
}

/// Where an outgoing QoS 1/2 message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the packets awaited
pub enum Awaiting {
    /// QoS 1 sent, waiting for PUBACK.
    PubAck,
    /// QoS 2 sent, waiting for PUBREC.
    PubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    PubComp,
}

#[derive(Debug)]
pub struct Inflight {
    pub delivery: Delivery,
    pub state: Awaiting,
}

/// A step of a journaled (persisted) outgoing QoS 1/2 delivery, which the
/// router journals. QoS 2 steps must be on disk before the client sees
/// them, so the router holds their packet until the journal is flushed:
/// otherwise a restart could resend a message the client already has under
/// a new packet id, or resend a PUBLISH after PUBREL, and the client would
/// deliver it twice. A QoS 1 PUBLISH goes out at once; its packet id is
/// journaled so that a restart resends it with the same id.
#[derive(Debug)]
pub enum OutStep {
    /// QoS 2 PUBLISH with a packet id assigned (awaiting PUBREC).
    Sent(Delivery),
    /// QoS 2 PUBREC received: PUBREL to send (awaiting PUBCOMP).
    Released { seq: u64, pkid: u16 },
    /// QoS 1 PUBLISH sent (already written) with this packet id.
    SentQos1 { seq: u64, pkid: u16 },
}

/// A subscription as the session remembers it (to resend nothing twice and
/// to answer "did it exist" for retain handling 1 and UNSUBACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSub {
    pub options: SubscriptionOptions,
    pub id: Option<u32>,
}

#[derive(Debug)]
pub struct Session {
    pub version: ProtocolVersion,
    pub username: Option<String>,
    pub link: Option<Link>,
    /// Full filter (including any `$share/group/` prefix) -> options.
    pub subscriptions: HashMap<String, SessionSub>,
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Delivery>,
    pub incoming_qos2: HashSet<u16>,
    /// Persisted QoS 2 steps for the router to journal, then send.
    pub out_steps: Vec<OutStep>,
    pub will: Option<LastWill>,
    /// Seconds the session outlives its connection.
    pub expiry_interval: u32,
    /// Bumped on every connect, so timers set for an older connection
    /// (will delay, session expiry) can tell they are stale.
    pub generation: u64,
    next_pkid: u16,
    pub last_seen: Instant,
    /// Whether this session is in the journal (session expiry > 0 and
    /// persistence configured).
    pub persisted: bool,
}

impl Session {
    pub fn new(version: ProtocolVersion) -> Session {
        Session {
            version,
            username: None,
            link: None,
            subscriptions: HashMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            incoming_qos2: HashSet::new(),
            out_steps: Vec::new(),
            will: None,
            expiry_interval: 0,
            generation: 0,
            next_pkid: 0,
            last_seen: Instant::now(),
            persisted: false,
        }
    }

    /// A packet id not used by any in-flight message.
    fn alloc_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1);
            if self.next_pkid == 0 {
                continue;
            }
            let id = self.next_pkid;
            if !self.inflight.iter().any(|i| i.delivery.pkid == id) {
                return id;
            }
        }
    }

    fn window_open(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| self.inflight.len() < l.window)
    }

    /// Sends a QoS 1/2 delivery now if the window allows, else queues it.
    /// Returns false when the queue is full and the message was dropped.
    pub fn push_qos(&mut self, mut d: Delivery, max_queued: usize) -> bool {
        if self.window_open() && self.queue.is_empty() {
            self.send_inflight(d);
            return true;
        }
        if self.queue.len() >= max_queued {
            return false;
        }
        d.dup = false;
        self.queue.push_back(d);
        true
    }

    fn send_inflight(&mut self, mut d: Delivery) {
        d.pkid = self.alloc_pkid();
        let state = if d.qos == QoS::ExactlyOnce {
            Awaiting::PubRec
        } else {
            Awaiting::PubAck
        };
        if d.seq != 0 && d.qos == QoS::ExactlyOnce {
            self.out_steps.push(OutStep::Sent(d.clone()));
        } else {
            if d.seq != 0 {
                self.out_steps.push(OutStep::SentQos1 {
                    seq: d.seq,
                    pkid: d.pkid,
                });
            }
            if let Some(link) = &self.link {
                link.outbox.send(Outgoing::Publish(d.clone()));
            }
        }
        self.inflight.push_back(Inflight { delivery: d, state });
    }

    /// Moves queued messages into the window while it has room, skipping
    /// expired ones.
    pub fn pump(&mut self, now: Instant) {
        while self.window_open() {
            let Some(d) = self.queue.pop_front() else {
                break;
            };
            if d.message.expired(now) {
                continue;
            }
            self.send_inflight(d);
        }
    }

    /// Handles PUBACK / PUBREC / PUBCOMP from the client for our delivery.
    /// Returns the completed delivery's journal sequence number when the
    /// window moved (so the caller should pump).
    pub fn on_client_ack(&mut self, kind: AckKind, pkid: u16) -> Option<u64> {
        let pos = self.inflight.iter().position(|i| i.delivery.pkid == pkid)?;
        match (kind, self.inflight[pos].state) {
            (AckKind::PubAck, Awaiting::PubAck) | (AckKind::PubComp, Awaiting::PubComp) => {
                self.inflight.remove(pos).map(|i| i.delivery.seq)
            }
            (AckKind::PubRec, Awaiting::PubRec | Awaiting::PubComp) => {
                self.inflight[pos].state = Awaiting::PubComp;
                let seq = self.inflight[pos].delivery.seq;
                if seq != 0 {
                    self.out_steps.push(OutStep::Released { seq, pkid });
                } else if let Some(link) = &self.link {
                    link.outbox
                        .send(Outgoing::ack(Ack::new(AckKind::PubRel, pkid)));
                }
                None
            }
            _ => None,
        }
    }

    /// Completes an in-flight delivery whatever its state (dropped for size,
    /// or a v5 PUBREC with a failure reason code).
    pub fn complete(&mut self, pkid: u16) -> Option<u64> {
        let pos = self.inflight.iter().position(|i| i.delivery.pkid == pkid)?;
        self.inflight.remove(pos).map(|i| i.delivery.seq)
    }

    /// On reconnect: resend everything in flight, in order, with DUP set
    /// (PUBREL for those past PUBREC) [MQTT-4.4.0-1]. Expired ones too:
    /// their onward delivery has started [MQTT-3.3.2-5], and the client
    /// may hold their packet ids.
    pub fn resend_inflight(&mut self) {
        let Some(link) = &self.link else { return };
        for i in &mut self.inflight {
            match i.state {
                Awaiting::PubComp => {
                    link.outbox
                        .send(Outgoing::ack(Ack::new(AckKind::PubRel, i.delivery.pkid)));
                }
                _ => {
                    i.delivery.dup = true;
                    link.outbox.send(Outgoing::Publish(i.delivery.clone()));
                }
            }
        }
    }

    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }
}

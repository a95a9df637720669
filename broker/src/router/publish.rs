//! Incoming PUBLISH (QoS 0/1/2 flows with QoS 2 de-duplication), the
//! client's acks for our deliveries, routing to subscribers (overlapping
//! subscriptions merged per client, shared subscriptions to one member of
//! each group) and delivery at min(publish QoS, subscription QoS).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::{secs, Router};
use crate::codec::{Ack, AckKind, Publish, QoS};
use crate::message::{ConnId, Delivery, Message, Outgoing};
use crate::persistence::Record;

/// v5 reason code: accepted, but nobody subscribed.
const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
/// v5 reason code: the publish was refused by the ACL.
const NOT_AUTHORIZED: u8 = 0x87;
/// v5 reason code: PUBREL for an unknown packet id.
const PACKET_ID_NOT_FOUND: u8 = 0x92;

/// Shared subscription members per (group, filter): client, QoS, id.
type ShareGroups = HashMap<(Arc<str>, Arc<str>), Vec<(Arc<str>, QoS, Option<u32>)>>;

/// What a client is owed for one matched topic, merged over its
/// overlapping subscriptions.
struct Target {
    qos: QoS,
    retain_as_published: bool,
    ids: Vec<u32>,
}

impl Router {
    pub(super) fn on_publish(&mut self, conn: ConnId, client: &Arc<str>, publish: Publish) {
        let now = Instant::now();
        let allowed = self.may_publish(client, &publish.topic);
        let Some(session) = self.live_session(conn, client) else {
            return;
        };
        let v5 = session.version.is_v5();
        let (qos, pkid) = (publish.qos, publish.pkid);
        let persisted = session.persisted;
        if qos == QoS::ExactlyOnce && !session.incoming_qos2.insert(pkid) {
            // A resent QoS 2 PUBLISH we already have: acknowledge only
            // (once what recorded it is on disk).
            if let Some(outbox) = session.link.as_ref().map(|l| l.outbox.clone()) {
                self.send_ack(outbox, Outgoing::ack(Ack::new(AckKind::PubRec, pkid)));
            }
            return;
        }
        self.stats.message_received();
        let mut matched = 0;
        if allowed {
            let mut properties = publish.properties;
            properties.topic_alias = None;
            properties.subscription_identifiers.clear();
            let expires_at = properties.message_expiry_interval.map(|s| now + secs(s));
            let msg = Arc::new(Message {
                topic: publish.topic.into(),
                payload: publish.payload,
                qos,
                retain: publish.retain,
                properties,
                expires_at,
                publisher: Some(client.clone()),
            });
            matched = self.route(&msg);
        }
        let code = match (allowed, matched) {
            (false, _) if v5 => NOT_AUTHORIZED,
            (true, 0) if v5 => NO_MATCHING_SUBSCRIBERS,
            _ => 0,
        };
        if qos == QoS::ExactlyOnce && code >= 0x80 {
            // A failure PUBREC ends the flow: no PUBREL will free the id,
            // and the client may use it again at once [MQTTv5-4.3.3].
            if let Some(s) = self.live_session(conn, client) {
                s.incoming_qos2.remove(&pkid);
            }
        } else if qos == QoS::ExactlyOnce && persisted {
            // After the routed copies' records: the id is journaled with
            // (never before) what it stands for.
            self.journal(Record::Qos2In {
                client: client.to_string(),
                pkid,
            });
        }
        let kind = match qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => AckKind::PubAck,
            QoS::ExactlyOnce => AckKind::PubRec,
        };
        let outbox = self
            .live_session(conn, client)
            .and_then(|s| s.link.as_ref())
            .map(|l| l.outbox.clone());
        if let Some(outbox) = outbox {
            // Held until the journal is on disk, if the publish changed it.
            self.send_ack(outbox, Outgoing::ack(Ack::with_code(kind, pkid, code)));
        }
    }

    pub(super) fn on_ack(&mut self, conn: ConnId, client: &Arc<str>, ack: Ack) {
        let now = Instant::now();
        let Some(session) = self.live_session(conn, client) else {
            return;
        };
        let moved = match ack.kind {
            AckKind::PubRel => {
                let known = session.incoming_qos2.remove(&ack.pkid);
                let code = if known || !session.version.is_v5() {
                    0
                } else {
                    PACKET_ID_NOT_FOUND
                };
                let persisted = session.persisted;
                let outbox = session.link.as_ref().map(|l| l.outbox.clone());
                if known && persisted {
                    // PUBCOMP frees the id for a new message: only once the
                    // journal no longer holds it, or a restart would take
                    // that new message for a duplicate.
                    self.journal(Record::Qos2InDone {
                        client: client.to_string(),
                        pkid: ack.pkid,
                    });
                }
                if let Some(outbox) = outbox {
                    let pubcomp = Ack::with_code(AckKind::PubComp, ack.pkid, code);
                    self.send_ack(outbox, Outgoing::ack(pubcomp));
                }
                return;
            }
            // A v5 PUBREC with a failure code ends the QoS 2 flow.
            AckKind::PubRec if ack.code >= 0x80 => session.complete(ack.pkid),
            kind => session.on_client_ack(kind, ack.pkid),
        };
        if let Some(seq) = moved {
            session.pump(now);
            self.journal_done(client, seq);
        }
        self.journal_out_steps(client);
    }

    pub(super) fn on_dropped(&mut self, conn: ConnId, client: &Arc<str>, pkid: u16) {
        let now = Instant::now();
        if let Some(session) = self.live_session(conn, client) {
            if let Some(seq) = session.complete(pkid) {
                session.pump(now);
                self.journal_done(client, seq);
                self.journal_out_steps(client);
            }
        }
    }

    /// Routes `msg` to every matching subscription (and updates the
    /// retained store if it is retained). Returns how many clients it was
    /// delivered to.
    pub(super) fn route(&mut self, msg: &Arc<Message>) -> usize {
        if msg.retain {
            self.retained.update(msg);
            self.journal_retained(msg);
        }
        let mut targets: HashMap<Arc<str>, Target> = HashMap::new();
        let mut groups: ShareGroups = HashMap::new();
        let publisher = msg.publisher.as_ref();
        self.tree
            .for_each_match(&msg.topic, |key, sub| match &key.group {
                None => {
                    if sub.options.no_local && publisher == Some(&key.client) {
                        return;
                    }
                    let t = targets.entry(key.client.clone()).or_insert(Target {
                        qos: QoS::AtMostOnce,
                        retain_as_published: false,
                        ids: Vec::new(),
                    });
                    t.qos = t.qos.max(sub.options.qos);
                    t.retain_as_published |= sub.options.retain_as_published;
                    t.ids.extend(sub.id);
                }
                Some(group) => {
                    let members = groups
                        .entry((group.clone(), sub.filter.clone()))
                        .or_default();
                    members.push((key.client.clone(), sub.options.qos, sub.id));
                }
            });
        let mut count = 0;
        for (client, t) in targets {
            let retain = msg.retain && t.retain_as_published;
            self.deliver(&client, msg, t.qos.min(msg.qos), retain, t.ids);
            count += 1;
        }
        for (group, mut members) in groups {
            members.sort_by(|a, b| a.0.cmp(&b.0));
            let cursor = self.share_cursor.entry(group).or_insert(0);
            let start = *cursor;
            *cursor = cursor.wrapping_add(1);
            // Round robin, preferring a connected member.
            let n = members.len();
            let pick = (0..n)
                .map(|i| (start + i) % n)
                .find(|&i| {
                    self.sessions
                        .get(&members[i].0)
                        .is_some_and(|s| s.is_connected())
                })
                .unwrap_or(start % n);
            let (client, qos, id) = members.swap_remove(pick);
            self.deliver(
                &client,
                msg,
                qos.min(msg.qos),
                false,
                id.into_iter().collect(),
            );
            count += 1;
        }
        count
    }

    /// Delivers to one client's session: QoS 0 straight to its connection
    /// (dropped if offline or over the queue limit), QoS 1/2 through the
    /// in-flight window and queue.
    pub(super) fn deliver(
        &mut self,
        client: &Arc<str>,
        msg: &Arc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: Vec<u32>,
    ) {
        let max_queued = self.config.limits.max_queued_messages;
        let max_qos0 = self.config.limits.max_queued_qos0;
        if let Some(acl) = &self.acl {
            let username = self
                .sessions
                .get(client)
                .and_then(|s| s.username.as_deref());
            if !acl.may_read(client, username, &msg.topic) {
                return;
            }
        }
        let Some(session) = self.sessions.get_mut(client) else {
            return;
        };
        let persisted = session.persisted && qos != QoS::AtMostOnce;
        let seq = if persisted { self.next_seq() } else { 0 };
        let Some(session) = self.sessions.get_mut(client) else {
            return;
        };
        let d = Delivery {
            message: msg.clone(),
            qos,
            retain,
            dup: false,
            pkid: 0,
            subscription_ids,
            seq,
        };
        let record = persisted.then(|| Self::enqueue_record(client, &d));
        let delivered = if qos == QoS::AtMostOnce {
            session
                .link
                .as_ref()
                .is_some_and(|l| l.outbox.try_send_qos0(d, max_qos0))
        } else {
            session.push_qos(d, max_queued)
        };
        if !delivered {
            self.stats.message_dropped();
        } else if let Some(record) = record {
            self.journal(record);
            self.journal_out_steps(client);
        }
    }
}

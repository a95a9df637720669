//! The router's side of persistence: journal records for durable changes,
//! acks held until the journal is on disk, restore at start and
//! compaction from the live state.

use std::sync::Arc;
use std::time::Instant;

use tracing::error;

use super::{secs, Router, SubKey, Timer, TreeSub};
use crate::codec::{Ack, AckKind, QoS};
use crate::message::{Delivery, Message, Outbox, Outgoing};
use crate::persistence::{Journal, Record, Restored, StoredMessage};
use crate::session::{Awaiting, Inflight, OutStep, Session, SessionSub, NEVER_EXPIRES};
use crate::topic::split_shared;

impl Router {
    /// Restores the replayed state and keeps `journal` for new changes.
    pub fn with_journal(mut self, journal: Journal, restored: Restored) -> Router {
        let now = Instant::now();
        for m in restored.retained.into_values() {
            if let Some(msg) = m.into_message() {
                self.retained.update(&Arc::new(msg));
            }
        }
        for (client_id, rs) in restored.sessions {
            let Some(version) = rs.version else { continue };
            let client: Arc<str> = client_id.into();
            let mut session = Session::new(version);
            session.expiry_interval = rs.expiry;
            session.persisted = true;
            self.generations += 1;
            session.generation = self.generations;
            for (filter, (options, id)) in rs.subscriptions {
                let (group, inner) = split_shared(&filter);
                let key = SubKey {
                    client: client.clone(),
                    group,
                };
                self.tree.insert(
                    inner,
                    key,
                    TreeSub {
                        filter: inner.into(),
                        options,
                        id,
                    },
                );
                session
                    .subscriptions
                    .insert(filter, SessionSub { options, id });
            }
            session.incoming_qos2.extend(rs.incoming_qos2);
            for (seq, m) in rs.messages {
                let sent = rs.sent_out.get(&seq).copied();
                // Sent before the restart: onward delivery has started, so
                // it is completed whatever its expiry (and its packet id
                // stays taken until then).
                let message = match sent {
                    Some(_) => m.message.into_started_message(),
                    None => match m.message.into_message() {
                        Some(message) => message,
                        None => continue,
                    },
                };
                let delivery = Delivery {
                    message: Arc::new(message),
                    qos: m.qos,
                    retain: m.retain,
                    dup: false,
                    pkid: sent.map_or(0, |(pkid, _)| pkid),
                    subscription_ids: m.ids,
                    seq,
                };
                // Sent before the restart: resent with the same packet id
                // (DUP), or PUBREL again if the client had it.
                match sent {
                    Some((_, released)) => session.inflight.push_back(Inflight {
                        state: match (delivery.qos, released) {
                            (QoS::AtLeastOnce, _) => Awaiting::PubAck,
                            (_, true) => Awaiting::PubComp,
                            (_, false) => Awaiting::PubRec,
                        },
                        delivery,
                    }),
                    None => session.queue.push_back(delivery),
                }
            }
            if rs.expiry != NEVER_EXPIRES {
                let generation = session.generation;
                self.add_timer(
                    now + secs(rs.expiry),
                    Timer::Expire {
                        client: client.clone(),
                        generation,
                    },
                );
            }
            self.sessions.insert(client, session);
        }
        self.journal = Some(journal);
        self
    }

    /// Journals the persisted QoS 1/2 steps `client`'s session took and
    /// holds the QoS 2 packets until the journal is on disk.
    pub(super) fn journal_out_steps(&mut self, client: &Arc<str>) {
        let Some(session) = self.sessions.get_mut(client) else {
            return;
        };
        if session.out_steps.is_empty() {
            return;
        }
        let steps = std::mem::take(&mut session.out_steps);
        let outbox = session.link.as_ref().map(|l| l.outbox.clone());
        for step in steps {
            // The packet a QoS 2 step holds until the journal is on disk.
            let (seq, pkid, released, held) = match step {
                OutStep::Sent(d) => (d.seq, d.pkid, false, Some(Outgoing::Publish(d))),
                OutStep::Released { seq, pkid } => (
                    seq,
                    pkid,
                    true,
                    Some(Outgoing::ack(Ack::new(AckKind::PubRel, pkid))),
                ),
                // Already written: only its packet id is journaled.
                OutStep::SentQos1 { seq, pkid } => (seq, pkid, false, None),
            };
            self.journal(Record::OutSent {
                client: client.to_string(),
                seq,
                pkid,
                released,
            });
            if let (Some(outbox), Some(out)) = (&outbox, held) {
                self.send_ack(outbox.clone(), out);
            }
        }
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        match &mut self.journal {
            Some(j) => {
                j.next_seq += 1;
                j.next_seq
            }
            None => 0,
        }
    }

    pub(super) fn journal(&mut self, r: Record) {
        if let Some(j) = &mut self.journal {
            j.append(&r);
        }
    }

    pub(super) fn enqueue_record(client: &Arc<str>, d: &Delivery) -> Record {
        Record::Enqueue {
            client: client.to_string(),
            seq: d.seq,
            qos: d.qos,
            retain: d.retain,
            ids: d.subscription_ids.clone(),
            message: StoredMessage::from_message(&d.message),
        }
    }

    pub(super) fn journal_done(&mut self, client: &Arc<str>, seq: u64) {
        if seq != 0 {
            self.journal(Record::Done {
                client: client.to_string(),
                seq,
            });
        }
    }

    pub(super) fn journal_retained(&mut self, msg: &Message) {
        // $SYS values are republished after a restart anyway.
        if self.journal.is_none() || msg.topic.starts_with("$SYS/") {
            return;
        }
        let r = if msg.payload.is_empty() {
            Record::RetainClear {
                topic: msg.topic.to_string(),
            }
        } else {
            Record::RetainSet(StoredMessage::from_message(msg))
        };
        self.journal(r);
    }

    /// Sends an acknowledgement, or holds it until the journal is flushed
    /// if this request changed durable state.
    pub(super) fn send_ack(&mut self, outbox: Outbox, out: Outgoing) {
        match &mut self.journal {
            Some(j) if j.is_dirty() => j.hold(outbox, out),
            _ => outbox.send(out),
        }
    }

    /// Writes and fsyncs what the last batch journaled, then releases the
    /// held acks.
    pub(super) fn flush_journal(&mut self) {
        let Some(j) = &mut self.journal else { return };
        if let Err(e) = j.flush() {
            error!(error = %e, "Cannot write the persistence journal.");
        }
        if j.wants_compaction() {
            self.compact_journal();
        }
    }

    pub(super) fn compact_journal(&mut self) {
        let records = self.live_records();
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.compact(&records) {
                error!(error = %e, "Cannot compact the persistence journal.");
            }
        }
    }

    /// The records that recreate the live durable state.
    fn live_records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for m in self.retained.iter() {
            out.push(Record::RetainSet(StoredMessage::from_message(m)));
        }
        for (client, s) in self.sessions.iter().filter(|(_, s)| s.persisted) {
            let client = client.to_string();
            out.push(Record::Session {
                client: client.clone(),
                version: s.version,
                expiry: s.expiry_interval,
            });
            for (filter, sub) in &s.subscriptions {
                out.push(Record::Subscribe {
                    client: client.clone(),
                    filter: filter.clone(),
                    options: sub.options,
                    id: sub.id,
                });
            }
            let client_arc: Arc<str> = client.as_str().into();
            let deliveries = s.inflight.iter().map(|i| &i.delivery).chain(s.queue.iter());
            for d in deliveries.filter(|d| d.seq != 0) {
                out.push(Self::enqueue_record(&client_arc, d));
            }
            let sent = s
                .inflight
                .iter()
                .filter(|i| i.delivery.seq != 0 && i.delivery.qos != QoS::AtMostOnce);
            for i in sent {
                out.push(Record::OutSent {
                    client: client.clone(),
                    seq: i.delivery.seq,
                    pkid: i.delivery.pkid,
                    released: i.state == Awaiting::PubComp,
                });
            }
            for &pkid in &s.incoming_qos2 {
                out.push(Record::Qos2In {
                    client: client.clone(),
                    pkid,
                });
            }
        }
        out
    }
}

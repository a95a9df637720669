//! The router's side of persistence: journal records for durable changes,
//! acks held until the journal is on disk, restore at start and
//! compaction from the live state.

use std::sync::Arc;
use std::time::Instant;

use tracing::error;

use super::{secs, Router, SubKey, Timer, TreeSub};
use crate::message::{Delivery, Message, Outbox, Outgoing};
use crate::persistence::{Journal, Record, Restored, StoredMessage};
use crate::session::{Session, SessionSub, NEVER_EXPIRES};
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
            for (seq, m) in rs.messages {
                let Some(message) = m.message.into_message() else {
                    continue;
                };
                session.queue.push_back(Delivery {
                    message: Arc::new(message),
                    qos: m.qos,
                    retain: m.retain,
                    dup: false,
                    pkid: 0,
                    subscription_ids: m.ids,
                    seq,
                });
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
            let deliveries = s.inflight.iter().map(|i| &i.delivery).chain(s.queue.iter());
            for d in deliveries.filter(|d| d.seq != 0) {
                out.push(Self::enqueue_record(&client.as_str().into(), d));
            }
        }
        out
    }
}

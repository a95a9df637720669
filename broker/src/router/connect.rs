//! CONNECT (new session, resumed session, client id takeover), connection
//! close, last will (with v5 will delay) and session expiry.

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use super::{secs, Router, SubKey, Timer};
use crate::codec::{disconnect_reason, ConnAck, Connect, LastWill, Properties};
use crate::message::{CloseReason, ConnId, Message, Outbox, Outgoing};
use crate::persistence::Record;
use crate::session::{Link, Session, NEVER_EXPIRES};
use crate::topic::split_shared;

impl Router {
    pub(super) fn on_connect(
        &mut self,
        conn: ConnId,
        connect: Connect,
        outbox: Outbox,
        username: Option<String>,
    ) {
        let now = Instant::now();
        let client_id: Arc<str> = connect.client_id.as_str().into();
        let mut session_existed = false;
        if let Some(old) = self.sessions.get_mut(&client_id) {
            session_existed = true;
            if let Some(link) = old.link.take() {
                info!("Client {client_id} already connected, closing old connection.");
                link.outbox
                    .send(Outgoing::disconnect(disconnect_reason::SESSION_TAKEN_OVER));
                let will = old.will.take();
                let delayed = will
                    .as_ref()
                    .is_some_and(|w| w.properties.will_delay_interval.unwrap_or(0) > 0);
                // A resumed session cancels a delayed will [MQTTv5-3.1.3.2.2].
                if let Some(will) = will {
                    if connect.clean_start || !delayed {
                        self.publish_will(&client_id, will);
                    }
                }
            }
        }
        if connect.clean_start && session_existed {
            self.end_session(&client_id);
            session_existed = false;
        }
        let expiry = if connect.version.is_v5() {
            connect.properties.session_expiry_interval.unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            NEVER_EXPIRES
        };
        // Globally increasing, so a timer of an ended session never
        // matches a new session of the same client id.
        self.generations += 1;
        let generation = self.generations;
        let limits = &self.config.limits;
        let window = usize::from(
            connect
                .properties
                .receive_maximum
                .unwrap_or(u16::MAX)
                .min(limits.max_inflight_messages)
                .max(1),
        );
        let session = self
            .sessions
            .entry(client_id.clone())
            .or_insert_with(|| Session::new(connect.version));
        session.version = connect.version;
        session.username = username;
        session.will = connect.will;
        session.expiry_interval = expiry;
        let persist = self.journal.is_some() && expiry > 0;
        session.persisted |= persist;
        session.generation = generation;
        session.last_seen = now;
        session.link = Some(Link {
            conn,
            outbox: outbox.clone(),
            window,
        });

        let mut connack = ConnAck::new(0);
        connack.session_present = session_existed;
        if connect.version.is_v5() {
            let p = &mut connack.properties;
            p.receive_maximum = Some(limits.max_inflight_messages);
            p.topic_alias_maximum = Some(limits.max_topic_alias);
            p.maximum_packet_size = Some(limits.max_packet_size);
            p.retain_available = Some(1);
            p.wildcard_subscription_available = Some(1);
            p.subscription_identifier_available = Some(1);
            p.shared_subscription_available = Some(1);
        }
        outbox.send(Outgoing::ConnAck {
            connack: Box::new(connack),
        });
        session.resend_inflight();
        session.pump(now);
        debug!(client = %client_id, session_present = session_existed, "Session attached.");
        if persist {
            let version = connect.version;
            self.journal(Record::Session {
                client: client_id.to_string(),
                version,
                expiry,
            });
        }
        self.journal_out_steps(&client_id);
    }

    pub(super) fn on_closed(
        &mut self,
        conn: ConnId,
        client: &Arc<str>,
        reason: CloseReason,
        session_expiry: Option<u32>,
    ) {
        let now = Instant::now();
        let Some(session) = self.live_session(conn, client) else {
            return;
        };
        session.link = None;
        session.last_seen = now;
        if let Some(e) = session_expiry {
            session.expiry_interval = e;
        }
        let expiry = session.expiry_interval;
        let generation = session.generation;
        let will = session.will.take();
        if session.persisted && session_expiry.is_some() {
            let version = session.version;
            self.journal(Record::Session {
                client: client.to_string(),
                version,
                expiry,
            });
        }
        if let (CloseReason::Abnormal, Some(will)) = (reason, will) {
            let delay = will.properties.will_delay_interval.unwrap_or(0);
            if delay == 0 || expiry == 0 {
                self.publish_will(client, will);
            } else {
                let at = now + secs(delay.min(expiry));
                self.add_timer(
                    at,
                    Timer::Will {
                        client: client.clone(),
                        generation,
                        will: Box::new(will),
                    },
                );
            }
        }
        if expiry == 0 {
            self.end_session(client);
        } else if expiry != NEVER_EXPIRES {
            self.add_timer(
                now + secs(expiry),
                Timer::Expire {
                    client: client.clone(),
                    generation,
                },
            );
        }
    }

    pub(super) fn fire_will(&mut self, client: &Arc<str>, generation: u64, will: LastWill) {
        // Stale if the client came back (a newer generation) in the meantime.
        if self
            .sessions
            .get(client)
            .is_some_and(|s| s.generation != generation)
        {
            return;
        }
        self.publish_will(client, will);
    }

    pub(super) fn fire_expiry(&mut self, client: &Arc<str>, generation: u64) {
        let stale = self
            .sessions
            .get(client)
            .is_none_or(|s| s.generation != generation || s.is_connected());
        if !stale {
            debug!(client = %client, "Session expired.");
            self.end_session(client);
        }
    }

    /// Publishes a will message as if `client` had published it.
    pub(super) fn publish_will(&mut self, client: &Arc<str>, will: LastWill) {
        let mut properties: Properties = will.properties;
        properties.will_delay_interval = None;
        let expires_at = properties
            .message_expiry_interval
            .map(|s| Instant::now() + secs(s));
        let msg = Arc::new(Message {
            topic: will.topic.into(),
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties,
            expires_at,
            publisher: Some(client.clone()),
        });
        debug!(client = %client, topic = %msg.topic, "Publishing will.");
        self.route(&msg);
    }

    /// Removes a session and all its subscriptions.
    pub(super) fn end_session(&mut self, client: &Arc<str>) {
        let Some(session) = self.sessions.remove(client) else {
            return;
        };
        if session.persisted {
            self.journal(Record::SessionEnd {
                client: client.to_string(),
            });
        }
        for filter in session.subscriptions.keys() {
            let (group, inner) = split_shared(filter);
            let key = SubKey {
                client: client.clone(),
                group,
            };
            self.tree.remove(inner, &key);
        }
    }
}

//! SUBSCRIBE (validation, ACL, granted QoS, v5 options and subscription
//! identifiers, retained delivery per retain handling) and UNSUBSCRIBE.

use std::sync::Arc;
use std::time::Instant;

use super::{Router, SubKey, TreeSub};
use crate::codec::{
    Properties, QoS, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::message::{ConnId, Outgoing};
use crate::persistence::Record;
use crate::session::SessionSub;
use crate::topic::{parse_shared, valid_filter};

/// SUBACK failure codes (v5; 3.1.1 gets 0x80 for all of them). An ACL
/// refusal is 0x80 with the reason string [`DENIED_REASON`], not 0x87:
/// the Paho v5 interoperability suite accepts only 0x80 there, and 0x80
/// is a valid failure code for it [MQTTv5-3.9.3].
const UNSPECIFIED_ERROR: u8 = 0x80;
const TOPIC_FILTER_INVALID: u8 = 0x8F;
/// Reason string sent with a SUBACK when the ACL refused a filter.
const DENIED_REASON: &str = "Not authorized";
/// UNSUBACK: there was no such subscription.
const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;

/// A granted subscription whose retained messages are still to be sent.
struct RetainedRequest {
    filter: String,
    qos: QoS,
    id: Option<u32>,
}

impl Router {
    pub(super) fn on_subscribe(&mut self, conn: ConnId, client: &Arc<str>, subscribe: Subscribe) {
        if self.live_session(conn, client).is_none() {
            return;
        }
        let id = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        let mut denied = false;
        for (filter, options) in subscribe.filters {
            let code = self.subscribe_one(client, filter, options, id, &mut retained, &mut denied);
            codes.push(code);
        }
        let Some(session) = self.sessions.get(client) else {
            return;
        };
        if let Some(outbox) = session.link.as_ref().map(|l| l.outbox.clone()) {
            let mut properties = Properties::default();
            if denied && session.version.is_v5() {
                properties.reason_string = Some(DENIED_REASON.to_owned());
            }
            let suback = SubAck {
                pkid: subscribe.pkid,
                properties,
                codes,
            };
            self.send_ack(outbox, Outgoing::SubAck(Box::new(suback)));
        }
        let now = Instant::now();
        for req in retained {
            for msg in self.retained.matching(&req.filter, now) {
                let qos = msg.qos.min(req.qos);
                self.deliver(client, &msg, qos, true, req.id.into_iter().collect());
            }
        }
    }

    /// Adds one subscription; returns its SUBACK code.
    fn subscribe_one(
        &mut self,
        client: &Arc<str>,
        filter: String,
        options: SubscriptionOptions,
        id: Option<u32>,
        retained: &mut Vec<RetainedRequest>,
        denied: &mut bool,
    ) -> u8 {
        let (group, inner) = match parse_shared(&filter) {
            Err(()) => return TOPIC_FILTER_INVALID,
            Ok(Some((group, inner))) => (Some(Arc::<str>::from(group)), inner.to_owned()),
            Ok(None) if valid_filter(&filter) => (None, filter.clone()),
            Ok(None) => return TOPIC_FILTER_INVALID,
        };
        // No-local on a shared subscription is a protocol error [MQTTv5-3.8.3-4].
        if group.is_some() && options.no_local {
            return UNSPECIFIED_ERROR;
        }
        if !self.may_subscribe(client, &inner) {
            *denied = true;
            return UNSPECIFIED_ERROR;
        }
        let Some(session) = self.sessions.get_mut(client) else {
            return UNSPECIFIED_ERROR;
        };
        let options = SubscriptionOptions {
            qos: options.qos.min(QoS::ExactlyOnce),
            ..options
        };
        let persisted = session.persisted;
        let existed = session
            .subscriptions
            .insert(filter.clone(), SessionSub { options, id })
            .is_some();
        if persisted {
            let client = client.to_string();
            self.journal(Record::Subscribe {
                client,
                filter,
                options,
                id,
            });
        }
        let key = SubKey {
            client: client.clone(),
            group: group.clone(),
        };
        let sub = TreeSub {
            filter: inner.as_str().into(),
            options,
            id,
        };
        self.tree.insert(&inner, key, sub);
        let send_retained = group.is_none()
            && match options.retain_handling {
                RetainHandling::OnSubscribe => true,
                RetainHandling::OnNewSubscribe => !existed,
                RetainHandling::Never => false,
            };
        if send_retained {
            retained.push(RetainedRequest {
                filter: inner,
                qos: options.qos,
                id,
            });
        }
        options.qos as u8
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        conn: ConnId,
        client: &Arc<str>,
        unsubscribe: Unsubscribe,
    ) {
        let Some(session) = self.live_session(conn, client) else {
            return;
        };
        let mut removed = Vec::new();
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            if session.subscriptions.remove(&filter).is_some() {
                codes.push(0);
                removed.push(filter);
            } else {
                codes.push(NO_SUBSCRIPTION_EXISTED);
            }
        }
        let persisted = session.persisted;
        let outbox = session.link.as_ref().map(|l| l.outbox.clone());
        if persisted {
            for filter in &removed {
                let r = Record::Unsubscribe {
                    client: client.to_string(),
                    filter: filter.clone(),
                };
                self.journal(r);
            }
        }
        if let Some(outbox) = outbox {
            let unsuback = UnsubAck {
                pkid: unsubscribe.pkid,
                properties: Properties::default(),
                codes,
            };
            self.send_ack(outbox, Outgoing::UnsubAck(Box::new(unsuback)));
        }
        for filter in removed {
            let (group, inner) = crate::topic::split_shared(&filter);
            self.tree.remove(
                inner,
                &SubKey {
                    client: client.clone(),
                    group,
                },
            );
        }
    }
}

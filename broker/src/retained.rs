//! Retained messages: the last retained message per topic, replaced by the
//! next one and cleared by an empty payload [MQTT-3.3.1-5..-11].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::message::Message;
use crate::topic;

#[derive(Debug, Default)]
pub struct RetainedStore {
    by_topic: HashMap<Arc<str>, Arc<Message>>,
}

impl RetainedStore {
    /// Stores `msg` (or clears its topic if the payload is empty).
    pub fn update(&mut self, msg: &Arc<Message>) {
        if msg.payload.is_empty() {
            self.by_topic.remove(&msg.topic);
        } else {
            self.by_topic.insert(msg.topic.clone(), msg.clone());
        }
    }

    /// The unexpired retained messages matching `filter`. Expired ones are
    /// dropped on the way.
    pub fn matching(&mut self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.by_topic.retain(|_, m| !m.expired(now));
        self.by_topic
            .values()
            .filter(|m| topic::matches(filter, &m.topic))
            .cloned()
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.by_topic.values()
    }

    pub fn len(&self) -> usize {
        self.by_topic.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, QoS};
    use bytes::Bytes;

    fn msg(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message {
            topic: topic.into(),
            payload: Bytes::from_static(payload),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
            expires_at: None,
            publisher: None,
        })
    }

    #[test]
    fn replace_clear_and_match() {
        let mut store = RetainedStore::default();
        let now = Instant::now();
        store.update(&msg("a/b", b"1"));
        store.update(&msg("a/b", b"2"));
        store.update(&msg("a/c", b"3"));
        store.update(&msg("$SYS/x", b"4"));
        assert_eq!(store.len(), 3);
        let got = store.matching("a/b", now);
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].payload[..], b"2");
        assert_eq!(store.matching("#", now).len(), 2, "# does not match $SYS");
        store.update(&msg("a/b", b""));
        assert_eq!(store.matching("a/+", now).len(), 1);
    }
}

//! The router: one task that owns every session, the subscription tree and
//! the retained messages. Connections (network or local) talk to it over
//! one bounded channel; it answers through each connection's outbox and
//! never waits on a connection, so a slow client cannot stall the others.
//!
//! - `connect.rs`: CONNECT, takeover, connection close, wills, expiry.
//! - `publish.rs`: incoming PUBLISH and acks, routing and delivery.
//! - `subscribe.rs`: SUBSCRIBE / UNSUBSCRIBE and retained delivery.

mod connect;
mod persist;
mod publish;
mod subscribe;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::acl::Acl;
use crate::codec::{disconnect_reason, LastWill, SubscriptionOptions};
use crate::config::BrokerConfig;
use crate::message::{Inbound, Outgoing};
use crate::retained::RetainedStore;
use crate::session::Session;
use crate::stats::Stats;
use crate::topic::TopicTree;

/// Requests handled between two journal flushes.
const BATCH: usize = 256;

/// Capacity of the channel from connections to the router.
pub const ROUTER_CHANNEL_CAPACITY: usize = 4096;

/// A subscriber in the topic tree: a client, and its share group if the
/// subscription is `$share/group/...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubKey {
    pub client: Arc<str>,
    pub group: Option<Arc<str>>,
}

/// A subscription in the topic tree.
#[derive(Debug, Clone)]
pub struct TreeSub {
    /// The filter without any `$share/group/` prefix.
    pub filter: Arc<str>,
    pub options: SubscriptionOptions,
    pub id: Option<u32>,
}

#[derive(Debug)]
enum Timer {
    /// A delayed v5 will, for the session generation that set it.
    Will {
        client: Arc<str>,
        generation: u64,
        will: Box<LastWill>,
    },
    /// Session expiry for a disconnected session.
    Expire { client: Arc<str>, generation: u64 },
}

pub struct Router {
    config: Arc<BrokerConfig>,
    sessions: HashMap<Arc<str>, Session>,
    tree: TopicTree<SubKey, TreeSub>,
    retained: RetainedStore,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    share_cursor: HashMap<(Arc<str>, Arc<str>), usize>,
    stats: Arc<Stats>,
    acl: Option<Acl>,
    generations: u64,
    journal: Option<crate::persistence::Journal>,
}

impl Router {
    pub fn new(config: Arc<BrokerConfig>, stats: Arc<Stats>, acl: Option<Acl>) -> Router {
        Router {
            config,
            sessions: HashMap::new(),
            tree: TopicTree::default(),
            retained: RetainedStore::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            share_cursor: HashMap::new(),
            stats,
            acl,
            generations: 0,
            journal: None,
        }
    }

    /// Runs until `shutdown` is cancelled or every sender is gone, then
    /// tells every connected client the server is shutting down.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Inbound>, shutdown: CancellationToken) {
        loop {
            let next_timer = self.timers.keys().next().map(|(t, _)| *t);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => {
                        self.handle(msg);
                        // A batch, then one journal flush for all of it.
                        for _ in 0..BATCH {
                            match rx.try_recv() {
                                Ok(msg) => self.handle(msg),
                                Err(_) => break,
                            }
                        }
                        self.flush_journal();
                    }
                    None => break,
                },
                _ = sleep_until(next_timer), if next_timer.is_some() => {
                    self.fire_timers(Instant::now());
                    self.flush_journal();
                }
                _ = shutdown.cancelled() => break,
            }
        }
        for s in self.sessions.values_mut() {
            if let Some(link) = s.link.take() {
                link.outbox.send(Outgoing::disconnect(
                    disconnect_reason::SERVER_SHUTTING_DOWN,
                ));
            }
        }
        self.flush_journal();
        self.compact_journal();
        info!("Router stopped.");
    }

    fn handle(&mut self, msg: Inbound) {
        match msg {
            Inbound::Connect {
                conn,
                connect,
                outbox,
                username,
            } => self.on_connect(conn, *connect, outbox, username),
            Inbound::Publish {
                conn,
                client,
                publish,
            } => self.on_publish(conn, &client, publish),
            Inbound::Ack { conn, client, ack } => self.on_ack(conn, &client, ack),
            Inbound::Internal(msg) => {
                self.route(&msg);
            }
            Inbound::Dropped { conn, client, pkid } => self.on_dropped(conn, &client, pkid),
            Inbound::Subscribe {
                conn,
                client,
                subscribe,
            } => self.on_subscribe(conn, &client, subscribe),
            Inbound::Unsubscribe {
                conn,
                client,
                unsubscribe,
            } => self.on_unsubscribe(conn, &client, unsubscribe),
            Inbound::Closed {
                conn,
                client,
                reason,
                session_expiry,
            } => self.on_closed(conn, &client, reason, session_expiry),
        }
        self.stats
            .set_gauges(self.sessions.len(), self.tree.len(), self.retained.len());
    }

    /// The session of `client` if `conn` is its current connection.
    fn live_session(&mut self, conn: u64, client: &Arc<str>) -> Option<&mut Session> {
        self.sessions
            .get_mut(client)
            .filter(|s| s.link.as_ref().is_some_and(|l| l.conn == conn))
    }

    fn add_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Timer::Will {
                    client,
                    generation,
                    will,
                } => self.fire_will(&client, generation, *will),
                Timer::Expire { client, generation } => self.fire_expiry(&client, generation),
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Seconds as a `Duration`, saturating far in the future.
fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Router {
    /// Whether `client` may publish to `topic` (the ACL, when configured).
    fn may_publish(&self, client: &Arc<str>, topic: &str) -> bool {
        let Some(acl) = &self.acl else { return true };
        let username = self
            .sessions
            .get(client)
            .and_then(|s| s.username.as_deref());
        acl.may_write(client, username, topic)
    }

    /// Whether `client` may subscribe to `filter`.
    fn may_subscribe(&self, client: &Arc<str>, filter: &str) -> bool {
        let Some(acl) = &self.acl else { return true };
        let username = self
            .sessions
            .get(client)
            .and_then(|s| s.username.as_deref());
        acl.may_subscribe(client, username, filter)
    }
}

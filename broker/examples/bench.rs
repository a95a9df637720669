//! Load generator for comparing MQTT brokers on one machine (see
//! `broker/bench/run.sh`, which runs it against flowd's broker and
//! Mosquitto in the same run).
//!
//! `bench ADDR PID LABEL [MESSAGES] [RATE]`: QoS 0 and QoS 1 fan-in (100
//! publishers -> 1 subscriber) and fan-out (1 -> 100), about MESSAGES
//! deliveries each, reporting messages/s, latency percentiles (p50, p99,
//! max) and the broker's CPU time per 1,000 delivered messages (from
//! /proc/PID/stat).
//!
//! - RATE 0 (default): publishers send as fast as the broker takes it
//!   (throughput), then RSS per idle connection for 10,000 idle MQTT
//!   connections.
//! - RATE > 0: deliveries per second, paced (fan-in: each of the 100
//!   publishers sends RATE/100 per second, staggered; fan-out: the
//!   publisher sends RATE/100 per second, each delivered 100 times): the
//!   latency of a broker that is not saturated.
//!
//! Latency: every payload starts with its send timestamp (nanoseconds
//! since the run's start, taken just before the write, same clock in this
//! one process); a subscriber takes the difference when it decodes the
//! PUBLISH. Every phase is bounded in count and time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use flowd_broker::codec::{
    self, Ack, AckKind, Connect, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe,
};
use flowd_broker::SubscriptionOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

const V: ProtocolVersion = ProtocolVersion::V311;
const CLIENTS: usize = 100;
const PAYLOAD: usize = 64;
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);
const IDLE_CONNECTIONS: usize = 10_000;
const PUBLISH_WINDOW: usize = 64;
const QUIET_END: Duration = Duration::from_secs(3);

fn encode(p: Packet) -> Bytes {
    let mut out = BytesMut::new();
    codec::encode(&p, V, &mut out);
    out.freeze()
}

async fn connect(addr: SocketAddr, id: String) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let c = Connect {
        version: V,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::default(),
        client_id: id,
        will: None,
        username: None,
        password: None,
    };
    s.write_all(&encode(Packet::Connect(Box::new(c)))).await?;
    let mut buf = BytesMut::new();
    loop {
        if let Ok(Some(Packet::ConnAck(_))) = codec::decode(&mut buf, V, usize::MAX) {
            return Ok(s);
        }
        if s.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Subscribes, then counts deliveries (acking QoS 1) and sends each
/// message's latency on `lat`.
async fn subscriber(
    mut s: TcpStream,
    filter: String,
    qos: QoS,
    base: Instant,
    lat: mpsc::UnboundedSender<u64>,
) {
    let sub = Subscribe {
        pkid: 1,
        properties: Properties::default(),
        filters: vec![(
            filter,
            SubscriptionOptions {
                qos,
                ..Default::default()
            },
        )],
    };
    if s.write_all(&encode(Packet::Subscribe(sub))).await.is_err() {
        return;
    }
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut acks = BytesMut::new();
    loop {
        while let Ok(Some(p)) = codec::decode(&mut buf, V, usize::MAX) {
            if let Packet::Publish(p) = p {
                let sent = u64::from_be_bytes(p.payload[..8].try_into().unwrap_or([0; 8]));
                let now = base.elapsed().as_nanos() as u64;
                let _ = lat.send(now.saturating_sub(sent));
                if p.qos == QoS::AtLeastOnce {
                    codec::encode(
                        &Packet::Ack(Ack::new(AckKind::PubAck, p.pkid)),
                        V,
                        &mut acks,
                    );
                }
            }
        }
        if !acks.is_empty() && s.write_all(&acks.split()).await.is_err() {
            return;
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// How one publisher sends.
#[derive(Clone, Copy)]
struct Pace {
    /// Time between two messages; `None`: as fast as possible.
    every: Option<Duration>,
    /// When the first message is due (publishers are staggered).
    first: tokio::time::Instant,
}

/// Publishes `n` messages to `topic` (QoS 1 with a window of unacked ones).
async fn publisher(s: TcpStream, topic: String, n: usize, qos: QoS, base: Instant, pace: Pace) {
    let (mut rd, mut wr) = s.into_split();
    let window = Arc::new(Semaphore::new(PUBLISH_WINDOW));
    let acker = {
        let window = window.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                while let Ok(Some(p)) = codec::decode(&mut buf, V, usize::MAX) {
                    if matches!(p, Packet::Ack(_)) {
                        window.add_permits(1);
                    }
                }
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
    };
    let mut ticks = pace.every.map(|every| {
        let mut t = tokio::time::interval_at(pace.first, every);
        // Behind schedule (a stalled broker): catch up, as a sensor
        // backlog would.
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    for i in 0..n {
        if let Some(t) = &mut ticks {
            t.tick().await;
        }
        if qos == QoS::AtLeastOnce {
            match window.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
        }
        let mut payload = BytesMut::with_capacity(PAYLOAD);
        payload.put_u64(base.elapsed().as_nanos() as u64);
        payload.resize(PAYLOAD, b'.');
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else {
            (i % 65_000) as u16 + 1
        };
        let p = Publish {
            qos,
            topic: topic.clone(),
            pkid,
            payload: payload.freeze(),
            ..Default::default()
        };
        if wr.write_all(&encode(Packet::Publish(p))).await.is_err() {
            return;
        }
    }
    if qos == QoS::AtLeastOnce {
        let _ =
            tokio::time::timeout(PHASE_TIMEOUT, window.acquire_many(PUBLISH_WINDOW as u32)).await;
    }
    acker.abort();
}

/// Broker CPU seconds (user + system) from /proc/PID/stat.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The `q`-quantile of sorted latencies, in milliseconds.
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1e6
}

async fn scenario(
    addr: SocketAddr,
    pid: u32,
    label: &str,
    fan_in: bool,
    qos: QoS,
    messages: usize,
    rate: u64,
) {
    let base = Instant::now();
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel();
    let tag = format!("{}{}", if fan_in { "in" } else { "out" }, qos as u8);
    let subs = if fan_in { 1 } else { CLIENTS };
    let pubs = if fan_in { CLIENTS } else { 1 };
    // About `messages` deliveries in both shapes.
    let per_pub = if fan_in {
        messages / pubs
    } else {
        messages / subs
    };
    let expected = if fan_in {
        per_pub * pubs
    } else {
        per_pub * subs
    };
    let mut sub_tasks = Vec::new();
    for i in 0..subs {
        let Ok(s) = connect(addr, format!("bench-sub-{tag}-{i}")).await else {
            println!("{label} {tag}: cannot connect subscribers");
            return;
        };
        sub_tasks.push(tokio::spawn(subscriber(
            s,
            format!("bench/{tag}/#"),
            qos,
            base,
            lat_tx.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut pub_streams = Vec::new();
    for i in 0..pubs {
        match connect(addr, format!("bench-pub-{tag}-{i}")).await {
            Ok(s) => pub_streams.push(s),
            Err(_) => {
                println!("{label} {tag}: cannot connect publishers");
                return;
            }
        }
    }
    // Paced: RATE deliveries/s; one publish is delivered to `subs`
    // subscribers, and the publishers share the publish rate.
    let every = (rate > 0).then(|| {
        let publishes_per_sec = rate as f64 / subs as f64;
        Duration::from_secs_f64(pubs as f64 / publishes_per_sec)
    });
    let cpu0 = cpu_secs(pid);
    let start = Instant::now();
    let t0 = tokio::time::Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    for (i, s) in pub_streams.into_iter().enumerate() {
        let done = done.clone();
        let topic = format!("bench/{tag}/{i}");
        let pace = Pace {
            every,
            first: t0 + every.map_or(Duration::ZERO, |e| e.mul_f64(i as f64 / pubs as f64)),
        };
        tokio::spawn(async move {
            publisher(s, topic, per_pub, qos, base, pace).await;
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
    let mut lats = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
    let mut last = start;
    while lats.len() < expected && tokio::time::Instant::now() < deadline {
        // Messages a broker dropped never come: stop after a quiet spell.
        match tokio::time::timeout(QUIET_END, lat_rx.recv()).await {
            Ok(Some(l)) => {
                lats.push(l);
                last = Instant::now();
            }
            _ => break,
        }
    }
    let elapsed = last.duration_since(start).as_secs_f64().max(1e-6);
    let cpu = cpu_secs(pid) - cpu0;
    for t in sub_tasks {
        t.abort();
    }
    lats.sort_unstable();
    let n = lats.len().max(1) as f64;
    println!(
        "{label:10} {:8} qos{} {} delivered {:6}/{:6}  {:9.0} msg/s  p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  cpu {:6.3} s/1000 msgs",
        if fan_in { "fan-in" } else { "fan-out" },
        qos as u8,
        if rate > 0 { format!("at {rate}/s") } else { "max rate".into() },
        lats.len(),
        expected,
        n / elapsed,
        quantile_ms(&lats, 0.50),
        quantile_ms(&lats, 0.99),
        lats.last().copied().unwrap_or(0) as f64 / 1e6,
        cpu / n * 1000.0
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn idle(addr: SocketAddr, pid: u32, label: &str) {
    let before = rss_kb(pid);
    let mut conns = Vec::with_capacity(IDLE_CONNECTIONS);
    let deadline = Instant::now() + PHASE_TIMEOUT;
    for i in 0..IDLE_CONNECTIONS {
        if Instant::now() > deadline {
            break;
        }
        match connect(addr, format!("bench-idle-{i}")).await {
            Ok(s) => conns.push(s),
            Err(e) => {
                println!("{label} idle: stopped at {i} connections: {e}");
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kb(pid);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / conns.len().max(1) as f64;
    println!(
        "{label:10} idle     {} connections  RSS {} KB -> {} KB  {:.0} bytes per connection",
        conns.len(),
        before,
        after,
        per
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(pid), Some(label)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(2).and_then(|p| p.parse::<u32>().ok()),
        args.get(3),
    ) else {
        eprintln!("usage: bench ADDR BROKER_PID LABEL [MESSAGES] [RATE]");
        std::process::exit(2);
    };
    let messages = args.get(4).and_then(|m| m.parse().ok()).unwrap_or(20_000);
    let rate = args.get(5).and_then(|r| r.parse().ok()).unwrap_or(0);
    for (fan_in, qos) in [
        (true, QoS::AtMostOnce),
        (true, QoS::AtLeastOnce),
        (false, QoS::AtMostOnce),
        (false, QoS::AtLeastOnce),
    ] {
        scenario(addr, pid, label, fan_in, qos, messages, rate).await;
    }
    if rate == 0 {
        idle(addr, pid, label).await;
    }
}

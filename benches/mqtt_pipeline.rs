//! The seed pipeline through Mosquitto, measured from outside: 100 simulated
//! sensors publish readings (half of them changing temperature) at a fixed
//! rate with QoS 0; `flowd run flows/temperature-alert.json` (as a separate
//! process) turns changes into alerts; a subscriber times each alert against
//! the reading that caused it. The bench's publisher and subscriber are
//! flowd's own MQTT client (`TCP_NODELAY`, immediate acknowledgements), so
//! their own packet delays are not measured.
//!
//! Options (after `--`): `--mosquitto-nodelay` runs Mosquitto with
//! `set_tcp_nodelay true`; `--embedded` replaces Mosquitto with flowd's own
//! broker (`flowd run --broker`: the flow's mqtt nodes connect in-process,
//! and flowd's CPU then includes the broker's work); `--latency-only RATE`
//! does one run at RATE; `--baseline` also subscribes `mosquitto_sub` to every
//! reading and reports its CPU and wake-ups beside flowd's (what a client
//! that only reads costs on this machine).
//!
//! Prints, for flowd: RSS idle; p50/p99 latency, CPU ms per 1,000 readings
//! (user and system) with wake-ups per second, and RSS at 10,000 readings/s;
//! the same at each higher rate tried; the highest rate with zero loss. Needs
//! `mosquitto` (scripts/test.sh installs it). Figures are printed, never asserted.
//!
//! Run: `cargo bench --bench mqtt_pipeline`.

use flowd_nodes::network::mqtt_client::{
    self, Client, ClientOptions, EventLoop, LinkEvent, SubOptions,
};
use flowd_nodes::network::mqtt_message::Publication;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SENSORS: usize = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a process has used so far: CPU in user and kernel mode (ms),
/// wake-ups (context switches) and RSS (KiB).
#[derive(Clone, Copy, Default)]
struct Usage {
    user_ms: f64,
    system_ms: f64,
    wakeups: u64,
    rss_kib: u64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // USER_HZ = 100: one tick is 10 ms.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                * 10.0
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Usage {
            user_ms: ticks(11),
            system_ms: ticks(12),
            wakeups: field("voluntary_ctxt_switches:") + field("nonvoluntary_ctxt_switches:"),
            rss_kib: field("VmRSS:"),
        }
    }

    /// What was used between `earlier` and `self` (RSS: the later one).
    fn since(self, earlier: Usage) -> Usage {
        Usage {
            user_ms: self.user_ms - earlier.user_ms,
            system_ms: self.system_ms - earlier.system_ms,
            wakeups: self.wakeups.saturating_sub(earlier.wakeups),
            rss_kib: self.rss_kib,
        }
    }

    fn cpu_ms(&self) -> f64 {
        self.user_ms + self.system_ms
    }

    /// "X ms CPU per 1,000 readings (user U, system S), W wake-ups/s".
    fn describe(&self, readings: usize, secs: f64) -> String {
        let per_k = |ms: f64| ms * 1000.0 / readings as f64;
        format!(
            "{:.2} ms CPU per 1,000 readings (user {:.2}, system {:.2}), {:.0} wake-ups/s",
            per_k(self.cpu_ms()),
            per_k(self.user_ms),
            per_k(self.system_ms),
            self.wakeups as f64 / secs
        )
    }
}

/// Send instants of the changing readings, per sensor, in order.
type Sent = Arc<Mutex<Vec<Vec<Instant>>>>;

struct RunResult {
    readings: usize,
    expected_alerts: usize,
    alerts: usize,
    latencies_us: Vec<u64>,
    /// flowd's usage while the readings were sent and processed.
    flowd: Usage,
    /// The baseline subscriber's, if one runs (`--baseline`).
    baseline: Option<Usage>,
    /// How long that took, in seconds.
    secs: f64,
    max_rss_kib: u64,
}

/// A client of the bench (flowd's own MQTT client: `TCP_NODELAY`, batched
/// writes), so what is measured is not the bench's own client delaying
/// small packets.
fn bench_client(port: u16, id: String) -> (Client, EventLoop) {
    mqtt_client::open(&ClientOptions {
        keepalive: 30,
        ..ClientOptions::new("127.0.0.1", port, id)
    })
}

async fn run_rate(
    port: u16,
    flowd_pid: u32,
    baseline_pid: Option<u32>,
    rate: usize,
    secs: u64,
    round: &mut u64,
) -> RunResult {
    let sent: Sent = Arc::new(Mutex::new(vec![Vec::new(); SENSORS]));
    let (sub, mut sub_loop) = bench_client(port, format!("bench-sub-{round}"));
    loop {
        match sub_loop.poll().await.expect("subscriber connects") {
            LinkEvent::Connected { .. } => {
                let all = SubOptions {
                    qos: 0,
                    nl: false,
                    rap: false,
                    rh: 0,
                };
                assert!(sub.try_subscribe("alerts/temperature", &all));
            }
            // SUBACK.
            LinkEvent::Other => break,
            _ => {}
        }
    }
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (lat, rec, sent_c) = (latencies.clone(), received.clone(), sent.clone());
    let consumer = tokio::spawn(async move {
        let mut per_sensor: HashMap<usize, usize> = HashMap::new();
        while let Ok(ev) = sub_loop.poll().await {
            if let LinkEvent::Publish(p) = ev {
                let now = Instant::now();
                let text = String::from_utf8_lossy(&p.payload);
                // "Temperature on sensors/<n>/reading changed to ..."
                let sensor = text.split('/').nth(1).and_then(|s| s.parse::<usize>().ok());
                if let Some(s) = sensor {
                    let k = per_sensor.entry(s).or_default();
                    if let Some(t) = sent_c
                        .lock()
                        .unwrap()
                        .get(s)
                        .and_then(|v| v.get(*k))
                        .copied()
                    {
                        lat.lock()
                            .unwrap()
                            .push(now.duration_since(t).as_micros() as u64);
                    }
                    *k += 1;
                }
                rec.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let _keep_subscriber = sub;

    let (publisher, mut pub_loop) = bench_client(port, format!("bench-pub-{round}"));
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut connected = Some(connected_tx);
        while let Ok(e) = pub_loop.poll().await {
            if let (LinkEvent::Connected { .. }, Some(tx)) = (e, connected.take()) {
                let _ = tx.send(());
            }
        }
    });
    connected_rx.await.expect("publisher connects");
    let started = Instant::now();
    let flowd0 = Usage::of(flowd_pid);
    let baseline0 = baseline_pid.map(Usage::of);
    let total = rate * secs as usize;
    let per_tick = (rate / 1000).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut max_rss = 0;
    let mut i = 0usize;
    let mut expected = 0usize;
    let base = 20.0 + (*round as f64) * 10.0;
    while i < total {
        ticker.tick().await;
        for _ in 0..per_tick.min(total - i) {
            let s = i % SENSORS;
            let step = i / SENSORS;
            // Each sensor changes temperature every second reading.
            let temperature = base + (step / 2) as f64 * 0.5;
            let changes = step % 2 == 0;
            let payload = format!("{{\"temperature\":{temperature},\"humidity\":40,\"ts\":{i}}}");
            if changes {
                sent.lock().unwrap()[s].push(Instant::now());
                expected += 1;
            }
            let reading = Publication {
                topic: format!("sensors/{s}/reading"),
                payload: payload.into(),
                qos: 0,
                retain: false,
            };
            // The request queue is bounded: wait for room (bounded in time).
            let give_up = Instant::now() + Duration::from_secs(5);
            while !publisher.try_publish(&reading, None) && Instant::now() < give_up {
                tokio::task::yield_now().await;
            }
            i += 1;
        }
        if i % (rate / 10).max(1) < per_tick {
            max_rss = max_rss.max(Usage::of(flowd_pid).rss_kib);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(std::sync::atomic::Ordering::Relaxed) < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let flowd = Usage::of(flowd_pid).since(flowd0);
    let baseline = baseline_pid
        .zip(baseline0)
        .map(|(p, u0)| Usage::of(p).since(u0));
    let secs = started.elapsed().as_secs_f64();
    consumer.abort();
    driver.abort();
    *round += 1;
    let latencies_us = std::mem::take(&mut *latencies.lock().unwrap());
    RunResult {
        readings: total,
        expected_alerts: expected,
        alerts: received.load(std::sync::atomic::Ordering::Relaxed),
        latencies_us,
        max_rss_kib: max_rss.max(flowd.rss_kib),
        flowd,
        baseline,
        secs,
    }
}

fn percentile(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

/// Starts Mosquitto on `port` (`-- --mosquitto-nodelay`: without Nagle's
/// delay; stock Mosquitto keeps it).
fn start_mosquitto(dir: &std::path::Path, port: u16) -> Proc {
    let conf = dir.join("mosquitto.conf");
    let nodelay = std::env::args().any(|a| a == "--mosquitto-nodelay");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n{}",
            if nodelay {
                "set_tcp_nodelay true\n"
            } else {
                ""
            }
        ),
    )
    .unwrap();
    let proc = Proc(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .or_else(|_| {
                Command::new("/usr/sbin/mosquitto")
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
            })
            .expect("mosquitto"),
    );
    wait_port(port);
    proc
}

fn main() {
    let dir = std::env::temp_dir().join(format!("flowd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    // `-- --embedded`: no Mosquitto; flowd's own broker (`flowd run --broker`)
    // serves the bench's clients and the flow's mqtt nodes (in-process).
    let embedded = std::env::args().any(|a| a == "--embedded");
    let _mosquitto = (!embedded).then(|| start_mosquitto(&dir, port));
    // The repo's seed pipeline, pointed at the broker, QoS 0.
    let flows_path = concat!(env!("CARGO_MANIFEST_DIR"), "/flows/temperature-alert.json");
    let mut flows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(flows_path).unwrap()).unwrap();
    for n in flows.as_array_mut().unwrap() {
        match n["type"].as_str() {
            Some("mqtt-broker") => n["port"] = serde_json::json!(port.to_string()),
            Some("mqtt in") | Some("mqtt out") => n["qos"] = serde_json::json!("0"),
            _ => {}
        }
    }
    let bench_flows = dir.join("flows.json");
    std::fs::write(&bench_flows, flows.to_string()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowd"));
    command.args(["run", "--quiet"]).arg(&bench_flows);
    if embedded {
        command.args(["--broker", &format!("127.0.0.1:{port}")]);
    }
    let flowd = Proc(
        command
            .env("FLOWD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("flowd"),
    );
    let pid = flowd.0.id();
    if embedded {
        wait_port(port);
    }
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "flowd RSS idle: {:.1} MB",
        Usage::of(pid).rss_kib as f64 / 1024.0
    );
    // `-- --baseline`: `mosquitto_sub` (a C client that only reads, leaving
    // acknowledgements to the kernel) also subscribes to every reading, as a
    // reference for what receiving alone costs here.
    let baseline = std::env::args().any(|a| a == "--baseline").then(|| {
        Proc(
            Command::new("mosquitto_sub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-t",
                    "sensors/#",
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("mosquitto_sub (package mosquitto-clients)"),
        )
    });
    let baseline_pid = baseline.as_ref().map(|p| p.0.id());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut round = 0;
        let report = |r: &RunResult| {
            let mut line = format!("flowd {}", r.flowd.describe(r.readings, r.secs));
            if let Some(b) = &r.baseline {
                line += &format!("; mosquitto_sub {}", b.describe(r.readings, r.secs));
            }
            line
        };
        // `-- --latency-only RATE`: one run at RATE, for latency studies.
        let args: Vec<String> = std::env::args().collect();
        if let Some(i) = args.iter().position(|a| a == "--latency-only") {
            let rate = args.get(i + 1).and_then(|r| r.parse().ok()).unwrap_or(1000);
            let mut r = run_rate(port, pid, baseline_pid, rate, 3, &mut round).await;
            println!(
                "{rate} readings/s: {}/{} alerts, latency p50 {:.2} ms p99 {:.2} ms; {}",
                r.alerts,
                r.expected_alerts,
                percentile(&mut r.latencies_us, 0.5),
                percentile(&mut r.latencies_us, 0.99),
                report(&r)
            );
            return;
        }
        let mut r = run_rate(port, pid, baseline_pid, 10_000, 3, &mut round).await;
        println!(
            "10,000 readings/s for 3 s: {} readings, {}/{} alerts, latency p50 {:.2} ms p99 {:.2} ms, RSS {:.1} MB; {}",
            r.readings,
            r.alerts,
            r.expected_alerts,
            percentile(&mut r.latencies_us, 0.5),
            percentile(&mut r.latencies_us, 0.99),
            r.max_rss_kib as f64 / 1024.0,
            report(&r)
        );
        let mut best = 0;
        let mut peak_rss = r.max_rss_kib;
        for rate in [20_000, 40_000, 60_000, 80_000, 100_000] {
            let r = run_rate(port, pid, baseline_pid, rate, 2, &mut round).await;
            peak_rss = peak_rss.max(r.max_rss_kib);
            let lossless = r.alerts == r.expected_alerts;
            println!(
                "{rate} readings/s: {}/{} alerts{}; {}",
                r.alerts,
                r.expected_alerts,
                if lossless { "" } else { " (loss)" },
                report(&r)
            );
            if !lossless {
                break;
            }
            best = rate;
        }
        println!("highest rate with zero loss: {best} readings/s; flowd peak RSS {:.1} MB", peak_rss as f64 / 1024.0);
    });
    drop(baseline);
    let _ = std::fs::remove_dir_all(&dir);
}

//! A sensor simulator: N sensors publishing JSON temperature readings to any
//! MQTT broker at a total rate, each sensor changing its temperature every
//! second reading (so a "block unless value changes" filter passes half).
//!
//! ```sh
//! cargo run --release --example sensor_simulator -- --host 127.0.0.1 --port 1883 --sensors 100 --rate 1000 --seconds 10
//! ```
//! Topics are `sensors/<n>/reading`, payloads `{"temperature":21.5,"humidity":40,"ts":<ms>}`.

use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let host: String = arg("--host", "127.0.0.1".to_string());
    let port: u16 = arg("--port", 1883);
    let sensors: usize = arg("--sensors", 10usize).max(1);
    let rate: usize = arg("--rate", 100usize).max(1);
    let seconds: u64 = arg("--seconds", 10);
    let qos = match arg("--qos", 0u8) {
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtMostOnce,
    };

    let mut options = MqttOptions::new(format!("flowd-sim-{}", std::process::id()), host, port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let driver = tokio::spawn(async move {
        loop {
            if let Err(e) = events.poll().await {
                eprintln!("connection: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });

    let total = rate * seconds as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let sensor = i % sensors;
        let step = i / sensors;
        let temperature = 20.0 + (step / 2 % 10) as f64 * 0.5 + sensor as f64 * 0.01;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let payload = format!("{{\"temperature\":{temperature},\"humidity\":40,\"ts\":{ts}}}");
        if client
            .publish(format!("sensors/{sensor}/reading"), qos, false, payload)
            .await
            .is_err()
        {
            eprintln!("the client stopped");
            break;
        }
    }
    println!(
        "published {total} readings from {sensors} sensors in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.abort();
}

//! Interoperability with Mosquitto's own command-line clients (installed
//! with mosquitto; CI installs it).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

fn run(cmd: &mut Command) -> std::process::Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto clients are installed")
}

#[tokio::test]
async fn mosquitto_pub_and_sub_in_both_protocol_versions() {
    let broker = common::start().await;
    let port = broker.local_addr().unwrap().port().to_string();
    for version in ["mqttv311", "mqttv5"] {
        let sub = run(Command::new("mosquitto_sub").args([
            "-p", &port, "-V", version, "-t", "cli/#", "-q", "2", "-C", "2", "-W", "10", "-v",
        ]));
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (topic, qos) in [("cli/a", "1"), ("cli/b", "2")] {
            let status = tokio::task::spawn_blocking({
                let port = port.clone();
                move || {
                    Command::new("mosquitto_pub")
                        .args([
                            "-p", &port, "-V", version, "-t", topic, "-q", qos, "-m", "hello",
                        ])
                        .status()
                }
            })
            .await
            .unwrap()
            .unwrap();
            assert!(status.success());
        }
        let out = tokio::task::spawn_blocking(move || sub.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "cli/a hello\ncli/b hello\n"
        );
    }
    broker.shutdown().await;
}

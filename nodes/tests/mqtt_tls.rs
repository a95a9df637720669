//! mqtt-broker with TLS (rustls): a tls-config node with a CA certificate,
//! against Mosquitto serving a certificate that CA signed.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use flowd_engine::{Msg, Value};
use mqtt_support::{broker_node, wait_connected, Mosquitto};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Time for the subscription to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
        .status
        .success();
    assert!(ok, "openssl {args:?} failed");
}

/// A CA and a server certificate for 127.0.0.1, in a new temp directory.
fn certificates(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowd-mqtt-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=flowd test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext file");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext file");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=flowd client",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.crt",
            "-days",
            "2",
            // An X.509 v3 certificate (with an extension): rustls refuses v1.
            "-extfile",
            "client.ext",
        ],
    );
    dir
}

/// Mosquitto serving the server certificate of `certs` (and with
/// `require_certificate`, checking client certificates against its CA).
fn tls_broker(certs: &Path, require_certificate: bool) -> Mosquitto {
    Mosquitto::start_with(&format!(
        "user root\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n\
         require_certificate {1}\n",
        certs.display(),
        require_certificate
    ))
}

/// Publishes through mqtt out and receives through mqtt in over `broker`.
async fn round_trip(broker: serde_json::Value, tls: Option<serde_json::Value>) {
    let mut flows = vec![
        json!({"id": "t1", "type": "tab", "label": "tls"}),
        broker,
        json!({"id": "in", "type": "mqtt in", "z": "t1", "topic": "tls/#", "qos": "1",
         "datatype": "utf8", "broker": "b1", "wires": [[]]}),
        json!({"id": "out", "type": "mqtt out", "z": "t1", "topic": "tls/x", "qos": "1",
         "retain": "", "broker": "b1", "wires": []}),
    ];
    flows.extend(tls);
    let mut f = TestFlow::start(&flowd_nodes::registry(), json!(flows))
        .await
        .expect("valid flows");
    wait_connected(&f, "in").await;
    tokio::time::sleep(SETTLE).await;
    let mut m = Msg::new();
    m.insert("payload", Value::str("secret"));
    f.send("out", m).await;
    let got = f.next_from("in").await.msg;
    assert_eq!(got.payload(), Some(&Value::str("secret")));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_with_a_ca_certificate() {
    let certs = certificates("ca");
    let broker = tls_broker(&certs, false);
    let ca = certs.join("ca.crt").display().to_string();
    round_trip(
        broker_node("b1", broker.port, json!({"usetls": true, "tls": "tls1"})),
        Some(
            json!({"id": "tls1", "type": "tls-config", "name": "", "cert": "", "key": "",
            "ca": ca, "certname": "", "keyname": "", "caname": "", "servername": "",
            "verifyservercert": true}),
        ),
    )
    .await;
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_with_a_client_certificate() {
    let certs = certificates("client");
    let broker = tls_broker(&certs, true);
    let path = |f: &str| certs.join(f).display().to_string();
    round_trip(
        broker_node("b1", broker.port, json!({"usetls": true, "tls": "tls1"})),
        Some(
            json!({"id": "tls1", "type": "tls-config", "cert": path("client.crt"),
            "key": path("client.key"), "ca": path("ca.crt"), "verifyservercert": true}),
        ),
    )
    .await;
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_without_verification() {
    let certs = certificates("noverify");
    let broker = tls_broker(&certs, false);
    // Without a tls-config node, as in Node-RED, the certificate is checked
    // only with `verifyservercert`.
    round_trip(
        broker_node(
            "b1",
            broker.port,
            json!({"usetls": true, "verifyservercert": false}),
        ),
        None,
    )
    .await;
    // A tls-config node with verification off and no CA.
    round_trip(
        broker_node("b1", broker.port, json!({"usetls": true, "tls": "tls1"})),
        Some(json!({"id": "tls1", "type": "tls-config", "verifyservercert": false})),
    )
    .await;
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test]
async fn tls_settings_are_validated() {
    let flows = json!([
        {"id": "t1", "type": "tab", "label": "tls"},
        broker_node("b1", 8883, json!({"usetls": true, "tls": "tls1"})),
        {"id": "tls1", "type": "tls-config", "ca": "/nonexistent/ca.crt", "verifyservercert": true},
        broker_node("b2", 8883, json!({"usetls": true, "tls": "tls2"})),
        {"id": "tls2", "type": "tls-config", "cert": "/etc/hostname", "verifyservercert": true},
        {"id": "o1", "type": "mqtt out", "z": "t1", "topic": "x", "broker": "b1", "wires": []},
    ]);
    let errs = match TestFlow::start(&flowd_nodes::registry(), flows).await {
        Ok(_) => panic!("flows should not start"),
        Err(e) => e.0,
    };
    for node in ["b1", "b2"] {
        assert!(
            errs.iter()
                .any(|e| e.node.as_deref() == Some(node) && e.field.as_deref() == Some("tls")),
            "{node}: {errs:?}"
        );
    }
}

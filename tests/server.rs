//! End-to-end tests of `flowd` (broker + admin API + runtime), `flowd deploy`
//! and `flowd broker`, with Mosquitto's command-line clients as the outside
//! world.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn flowd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowd"))
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tempdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("flowd-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills the child when dropped (a failing test leaves nothing behind).
struct Running(Option<Child>);
impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
impl Running {
    fn stop(mut self, sig: &str) -> Output {
        let child = self.0.take().unwrap();
        Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = child;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        panic!("flowd did not stop within 20 s");
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

/// Subscribes with mosquitto_sub and returns the first `count` messages ("topic payload").
fn subscribe(port: u16, topic: &str, count: usize) -> Vec<String> {
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-v",
            "-C",
            &count.to_string(),
            "-W",
            "15",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (installed by scripts/test.sh)");
    let out = BufReader::new(sub.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let _ = sub.wait();
    out
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; returns (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut r = rest;
        while let Some((size, tail)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            r = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

/// Subscribes with a user name and password; the first message ("topic payload").
fn subscribe_as(port: u16, user: &str, password: &str, topic: &str) -> Option<String> {
    let out = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-P",
            password,
        ])
        .args(["-t", topic, "-v", "-C", "1", "-W", "15"])
        .output()
        .expect("mosquitto_sub");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

#[test]
fn flowd_runs_the_demo_on_its_broker_and_takes_deploys() {
    let (http, mqtt) = (free_port(), free_port());
    let dir = tempdir("server");
    let child = flowd()
        .args([
            "--user-dir",
            dir.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--mqtt",
            &format!("127.0.0.1:{mqtt}"),
        ])
        .env_remove("FLOWD_MQTT_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(mqtt);
    wait_for_port(http);
    // The demo's simulated sensors produce alerts on the embedded broker.
    let alerts = subscribe(mqtt, "alerts/temperature", 2);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts
            .iter()
            .all(|a| a.starts_with("alerts/temperature Temperature on sensors/")),
        "{alerts:?}"
    );
    assert!(
        dir.join("flows.json").exists(),
        "the demo was written to the user directory"
    );

    let url = format!("http://127.0.0.1:{http}");
    let ok = flowd()
        .args([
            "deploy",
            repo_file("flows/demo.json").to_str().unwrap(),
            "--url",
            &url,
            "--type",
            "nodes",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = flowd()
        .args([
            "deploy",
            repo_file("tests/fixtures/many-faults.json")
                .to_str()
                .unwrap(),
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("unknown node type \"function-of-doom\""),
        "{err}"
    );
    let unreachable = flowd()
        .args([
            "deploy",
            repo_file("flows/demo.json").to_str().unwrap(),
            "--url",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot connect"));

    // Still alerting after the deploys.
    assert_eq!(subscribe(mqtt, "alerts/temperature", 1).len(), 1);
    let out = running.stop("TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flowd_broker_alone_relays_messages() {
    let port = free_port();
    let child = flowd()
        .args(["broker", "--mqtt", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(port);
    let sub = std::thread::spawn(move || subscribe(port, "t/#", 1));
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sub.is_finished() && Instant::now() < deadline {
        let _ = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "t/1",
                "-m",
                "hello",
            ])
            .status();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(sub.join().unwrap(), ["t/1 hello"]);
    let out = running.stop("INT");
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("New client connected from 127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn settings_come_from_flowd_toml_and_bad_ones_stop_the_start() {
    let dir = tempdir("settings");
    std::fs::write(
        dir.join("flowd.toml"),
        "[broker]\nmax_keepalive = \"soon\"\n",
    )
    .unwrap();
    let out = flowd()
        .args(["--user-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_keepalive"), "{err}");

    std::fs::write(dir.join("flowd.toml"), "[http]\naddr = \"localhost\"\n").unwrap();
    let out = flowd()
        .args(["--user-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid setting http.addr"));

    // Each bad setting stops the start, naming the setting and its source.
    let toml = dir.join("flowd.toml");
    let start_err = |toml_text: &str, env: &[(&str, &str)], args: &[&str]| {
        std::fs::write(&toml, toml_text).unwrap();
        let mut cmd = flowd();
        cmd.args(["--user-dir", dir.to_str().unwrap()]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_ne!(out.status.code(), Some(0));
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let toml_path = toml.display().to_string();
    let err = start_err("[log]\nlevel = \"info\"\n[broker]\nbogus = 1\n", &[], &[]);
    assert_eq!(
        err,
        format!("flowd: unknown setting broker.bogus in {toml_path} line 4\n")
    );
    let err = start_err("[context]\nstorage = 7\n", &[], &[]);
    assert_eq!(
        err,
        format!("flowd: invalid setting context.storage in {toml_path} line 2: expected a string, found an integer\n")
    );
    let err = start_err("", &[("FLOWD_BROKER_PERSISTENCE", "maybe")], &[]);
    assert_eq!(
        err,
        "flowd: invalid setting broker.persistence from environment variable FLOWD_BROKER_PERSISTENCE: \"maybe\" is not true or false\n"
    );
    let err = start_err("", &[("FLOWD_LOG_LEVEL", "chatty")], &[]);
    assert!(
        err.contains("invalid setting log.level from environment variable FLOWD_LOG_LEVEL: \"chatty\" is not a log level"),
        "{err}"
    );
    let err = start_err("", &[("FLOWD_MQTT", "nowhere")], &[]);
    assert!(
        err.contains("invalid setting broker.addr from environment variable FLOWD_MQTT: \"nowhere\" is not an address"),
        "{err}"
    );
    // A flag beats the bad variable; a bad flag is named by the parser.
    let err = start_err("", &[("FLOWD_HTTP", "nowhere")], &["--http", "nowhere:x"]);
    assert!(
        err.contains("invalid value 'nowhere:x' for '--http <ADDR>'"),
        "{err}"
    );
    let err = start_err("", &[], &["--context-storage", "disk"]);
    assert!(
        err.contains("'--context-storage <STORAGE>'") && err.contains("not a context storage"),
        "{err}"
    );

    let (http, mqtt) = (free_port(), free_port());
    std::fs::write(
        dir.join("flowd.toml"),
        format!("[http]\naddr = \"127.0.0.1:{http}\"\n[broker]\naddr = \"127.0.0.1:{mqtt}\"\npersistence = false\n"),
    )
    .unwrap();
    let child = flowd()
        .args(["--user-dir", dir.to_str().unwrap()])
        .env_remove("FLOWD_HTTP")
        .env_remove("FLOWD_MQTT")
        .env_remove("FLOWD_MQTT_PORT")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(http);
    wait_for_port(mqtt);
    assert!(
        !dir.join("broker").exists(),
        "persistence = false keeps no broker state"
    );
    assert!(running.stop("INT").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_admin_api_stays_on_loopback_unless_insecure() {
    let dir = tempdir("insecure");
    let out = flowd()
        .args([
            "--user-dir",
            dir.to_str().unwrap(),
            "--http",
            "0.0.0.0:0",
            "--no-broker",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_admin_users_the_api_needs_a_login() {
    let dir = tempdir("auth");
    let http_port = free_port();
    // bcrypt of "s3cret" (cost 4).
    let hash = "$2b$04$BYyoMepRzYLJh7pLrvE2UuiX1QkF.2q0rAoFfY43dWwb9g1juX96a";
    std::fs::write(
        dir.join("flowd.toml"),
        format!("[admin]\nusers = [{{ username = \"admin\", password = \"{hash}\" }}]\n"),
    )
    .unwrap();
    let child = flowd()
        .args([
            "--user-dir",
            dir.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{http_port}"),
            "--no-broker",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(http_port);
    let url = format!("http://127.0.0.1:{http_port}");
    let refused = flowd()
        .args([
            "deploy",
            repo_file("flows/temperature-demo.json").to_str().unwrap(),
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(http(http_port, "GET", "/flows", None, None).0, 401);

    // A wrong password gets no token; the right one does (as Node-RED's login).
    let login = |password: &str| {
        http(
            http_port,
            "POST",
            "/auth/token",
            None,
            Some(&format!(
                r#"{{"client_id":"node-red-admin","grant_type":"password","scope":"*","username":"admin","password":"{password}"}}"#
            )),
        )
    };
    let (status, _) = login("wrong");
    assert!(status == 401 || status == 403, "{status}");
    let (status, body) = login("s3cret");
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let (status, body) = http(http_port, "GET", "/flows", Some(&token), None);
    assert_eq!(status, 200, "{body}");

    let deploy_with = |token: &str| {
        flowd()
            .args([
                "deploy",
                repo_file("flows/temperature-demo.json").to_str().unwrap(),
                "--url",
                &url,
                "--token",
                token,
            ])
            .env_remove("FLOWD_TOKEN")
            .output()
            .unwrap()
    };
    let ok = deploy_with(&token);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("deployed (full)"));
    let (_, flows) = http(http_port, "GET", "/flows", Some(&token), None);
    assert!(
        flows.contains("Temperature"),
        "the deploy took effect: {flows}"
    );
    let forged = deploy_with("not-a-token");
    assert_eq!(forged.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&forged.stderr).contains("deploy refused (401)"));
    assert!(running.stop("INT").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Node-RED flow whose broker node needs a user name and password from
/// its credentials to publish to the embedded broker.
fn credential_flow(password: &str) -> String {
    format!(
        r#"[
  {{"id":"t1","type":"tab","label":"Credentials"}},
  {{"id":"b1","type":"mqtt-broker","name":"local","broker":"127.0.0.1","port":"${{FLOWD_MQTT_PORT}}","clientid":"","protocolVersion":"4","keepalive":"60","cleansession":true,
    "credentials":{{"user":"flowuser","password":"{password}"}}}},
  {{"id":"tick","type":"inject","z":"t1","repeat":"0.3","once":true,"onceDelay":"0.1","payload":"ping","payloadType":"str","topic":"","wires":[["out"]]}},
  {{"id":"out","type":"mqtt out","z":"t1","topic":"cred/out","qos":"0","retain":"false","broker":"b1","wires":[]}}
]"#
    )
}

#[test]
fn credentials_round_trip_and_secrets_stay_out_of_files_logs_and_the_api() {
    const PASSWORD: &str = "Pa55-XYZZY-never-shown";
    const SECRET: &str = "cred-secret-QWERTY-never-shown";
    let dir = tempdir("creds");
    let passwd = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(dir.join("passwd"))
        .args(["flowuser", PASSWORD])
        .status()
        .expect("mosquitto_passwd");
    assert!(passwd.success());
    std::fs::write(
        dir.join("flowd.toml"),
        "[broker]\npassword_file = \"passwd\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("flows.json"), r#"[{"id":"t1","type":"tab"}]"#).unwrap();
    let flows_file = dir.join("deploy.json");
    std::fs::write(&flows_file, credential_flow(PASSWORD)).unwrap();
    let (http_port, mqtt) = (free_port(), free_port());
    let start = || {
        let child = flowd()
            .args(["--user-dir", dir.to_str().unwrap()])
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .args(["--mqtt", &format!("127.0.0.1:{mqtt}")])
            .env("FLOWD_CREDENTIAL_SECRET", SECRET)
            .env("FLOWD_BROKER_ALLOW_ANONYMOUS", "false")
            .env("FLOWD_LOG_LEVEL", "debug")
            .env_remove("FLOWD_MQTT_PORT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let running = Running(Some(child));
        wait_for_port(http_port);
        wait_for_port(mqtt);
        running
    };
    let running = start();
    // Anonymous clients are refused: only the flow's credentials get in.
    let anonymous = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &mqtt.to_string(),
            "-t",
            "#",
            "-C",
            "1",
            "-W",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!anonymous.status.success());
    let deployed = flowd()
        .args(["deploy", flows_file.to_str().unwrap()])
        .args(["--url", &format!("http://127.0.0.1:{http_port}")])
        .output()
        .unwrap();
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    assert_eq!(
        subscribe_as(mqtt, "flowuser", PASSWORD, "cred/out").as_deref(),
        Some("cred/out ping"),
        "the deployed credentials log the flow in"
    );
    let (status, api) = http(http_port, "GET", "/flows", None, None);
    assert_eq!(status, 200);
    assert!(api.contains("\"b1\"") && !api.contains(PASSWORD), "{api}");
    let first = running.stop("TERM");
    assert!(first.status.success());

    // A restart reads the credentials back from flows_cred.json with the secret.
    let running = start();
    assert_eq!(
        subscribe_as(mqtt, "flowuser", PASSWORD, "cred/out").as_deref(),
        Some("cred/out ping"),
        "credentials survive a restart"
    );
    let second = running.stop("TERM");
    assert!(second.status.success());

    let flows_json = std::fs::read_to_string(dir.join("flows.json")).unwrap();
    assert!(flows_json.contains("\"b1\""), "{flows_json}");
    let cred_file = std::fs::read_to_string(dir.join("flows_cred.json")).unwrap();
    assert!(
        cred_file.contains("\"$\""),
        "encrypted as Node-RED does: {cred_file}"
    );
    for (what, text) in [
        ("flows.json", flows_json),
        ("flows_cred.json", cred_file),
        ("GET /flows", api),
        (
            "first run's stdout",
            String::from_utf8_lossy(&first.stdout).into_owned(),
        ),
        (
            "first run's log",
            String::from_utf8_lossy(&first.stderr).into_owned(),
        ),
        (
            "second run's stdout",
            String::from_utf8_lossy(&second.stdout).into_owned(),
        ),
        (
            "second run's log",
            String::from_utf8_lossy(&second.stderr).into_owned(),
        ),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "the password is in {what}:\n{text}"
        );
        assert!(
            !text.contains(SECRET),
            "the credential secret is in {what}:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flowd_writes_file_context_when_it_stops() {
    let dir = tempdir("context");
    std::fs::write(
        dir.join("flowd.toml"),
        "[context]\nstorage = \"file\"\nflush_interval = 3600\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("flows.json"),
        r#"[{"id":"t1","type":"tab","label":"Context"},
            {"id":"in","type":"inject","z":"t1","once":true,"onceDelay":0.1,"props":[{"p":"payload"}],"payload":"hello","payloadType":"str","wires":[["set"]]},
            {"id":"set","type":"change","z":"t1","rules":[{"t":"set","p":"greeting","pt":"global","to":"payload","tot":"msg"}],"wires":[]}]"#,
    )
    .unwrap();
    let http_port = free_port();
    let child = flowd()
        .args(["--user-dir", dir.to_str().unwrap(), "--no-broker"])
        .args(["--http", &format!("127.0.0.1:{http_port}")])
        .env_remove("FLOWD_CONTEXT_STORAGE")
        .env_remove("FLOWD_CONTEXT_FLUSH_INTERVAL")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(http_port);
    // The inject fires 0.1 s after the start.
    std::thread::sleep(Duration::from_millis(1000));
    let global = dir.join("context/global/global.json");
    assert!(!global.exists(), "not before the flush interval");
    let out = running.stop("TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&global).unwrap();
    assert_eq!(text, "{\n    \"greeting\": \"hello\"\n}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Admin API tests: the router in-process (tower's `oneshot`) over a real
//! runtime, and one real server on port 0.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flowd_editor::comms::CommsHub;
use flowd_editor::storage::FlowStorage;
use flowd_editor::{app, EditorState};
use flowd_engine::testing::RecordingObserver;
use flowd_engine::{prepare_json, Runtime, RuntimeOptions};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct Harness {
    router: axum::Router,
    observer: Arc<RecordingObserver>,
    comms: Arc<CommsHub>,
    dir: PathBuf,
}

/// inject "i" (payload 1) -> rbe "r" -> debug "d"; plus an inject "i2" with payload 2.
fn seed_flows(debug_name: &str) -> Value {
    json!([
        {"id":"t1","type":"tab","label":"Flow 1"},
        {"id":"i","type":"inject","z":"t1","props":[{"p":"payload","v":"1","vt":"num"}],"x":1,"y":1,"wires":[["r"]]},
        {"id":"i2","type":"inject","z":"t1","props":[{"p":"payload","v":"2","vt":"num"}],"x":1,"y":1,"wires":[["r"]]},
        {"id":"r","type":"rbe","z":"t1","func":"rbe","x":1,"y":1,"wires":[["d"]]},
        {"id":"d","type":"debug","z":"t1","name":debug_name,"x":1,"y":1,"wires":[]}
    ])
}

async fn harness(flows: Value) -> Harness {
    let registry = Arc::new(flowd_nodes::registry());
    let observer = Arc::new(RecordingObserver::default());
    let (set, errors) = flowd_engine::flows::from_json(flows.clone());
    assert!(errors.is_empty());
    let prepared = prepare_json(&registry, flows).expect("valid");
    let runtime = Arc::new(Runtime::start(
        prepared,
        RuntimeOptions {
            observer: observer.clone(),
            tap: None,
        },
    ));
    let dir = std::env::temp_dir().join(format!("flowd-api-{}-{}", std::process::id(), fastid()));
    let storage = FlowStorage::new(dir.join("flows.json"));
    let comms = CommsHub::new();
    let state = Arc::new(EditorState::new(
        runtime,
        registry,
        Some(storage),
        &set,
        comms.clone(),
    ));
    Harness {
        router: app(state),
        observer,
        comms,
        dir,
    }
}

fn fastid() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn call(h: &Harness, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let res = h.router.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v, headers)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", "127.0.0.1:1880")
        .body(Body::empty())
        .unwrap()
}

fn post(path: &str, body: Value, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path)
        .header("host", "127.0.0.1:1880")
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

async fn alerts(h: &Harness) -> usize {
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.observer.debug().len()
}

#[tokio::test]
async fn get_flows_v1_and_v2() {
    let h = harness(seed_flows("D")).await;
    let (s, v, headers) = call(&h, get("/flows")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, seed_flows("D"));
    assert!(headers.get("access-control-allow-origin").is_none());
    let (s, v, _) = call(
        &h,
        Request::get("/flows")
            .header("node-red-api-version", "v2")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["flows"], seed_flows("D"));
    assert_eq!(v["rev"].as_str().unwrap().len(), 64);
    let (s, v, _) = call(
        &h,
        Request::get("/flows")
            .header("node-red-api-version", "v9")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_api_version"))
    );
}

#[tokio::test]
async fn deploy_nodes_keeps_rbe_state_and_full_resets_it() {
    let h = harness(seed_flows("D")).await;
    for _ in 0..2 {
        assert_eq!(
            call(&h, post("/inject/i", json!({}), &[])).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(alerts(&h).await, 1, "rbe blocks the repeated value");

    let (s, _, _) = call(
        &h,
        post(
            "/flows",
            seed_flows("renamed"),
            &[("node-red-deployment-type", "nodes")],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    call(&h, post("/inject/i", json!({}), &[])).await;
    assert_eq!(
        alerts(&h).await,
        1,
        "the rbe kept its state through a 'nodes' deploy"
    );

    let (s, _, _) = call(
        &h,
        post(
            "/flows",
            seed_flows("renamed again"),
            &[("node-red-deployment-type", "full")],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    call(&h, post("/inject/i", json!({}), &[])).await;
    assert_eq!(alerts(&h).await, 2, "a full deploy restarts the rbe");

    let saved = std::fs::read_to_string(h.dir.join("flows.json")).unwrap();
    assert!(saved.contains("renamed again"));
    assert!(h.dir.join(".flows.json.backup").exists());
}

#[tokio::test]
async fn v2_rev_conflicts_and_returns_the_new_rev() {
    let h = harness(seed_flows("D")).await;
    let (_, v, _) = call(
        &h,
        Request::get("/flows")
            .header("node-red-api-version", "v2")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let rev = v["rev"].as_str().unwrap().to_string();
    let stale = json!({"flows": seed_flows("x"), "rev": "0000"});
    let (s, v, _) = call(&h, post("/flows", stale, &[("node-red-api-version", "v2")])).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("version_mismatch"))
    );
    let (s, v, _) = call(
        &h,
        post(
            "/flows",
            json!({"flows": seed_flows("x"), "rev": rev}),
            &[("node-red-api-version", "v2")],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let new_rev = v["rev"].as_str().unwrap();
    assert_ne!(new_rev, rev);
    let (_, v, _) = call(
        &h,
        Request::get("/flows")
            .header("node-red-api-version", "v2")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(v["rev"].as_str(), Some(new_rev));
}

#[tokio::test]
async fn invalid_deploys_get_every_error_and_change_nothing() {
    let h = harness(seed_flows("D")).await;
    let mut bad = seed_flows("D");
    bad.as_array_mut()
        .unwrap()
        .push(json!({"id":"x","type":"no-such","z":"t1","x":1,"y":1,"wires":[["ghost"]]}));
    bad[3]["gap"] = json!("lots");
    bad[3]["func"] = json!("deadband");
    let (s, v, _) = call(&h, post("/flows", bad, &[])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "invalid_flows");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{v}");
    assert!(errors
        .iter()
        .any(|e| e["node"] == "r" && e["field"] == "gap"));
    let (_, flows, _) = call(&h, get("/flows")).await;
    assert_eq!(flows, seed_flows("D"));
    assert!(!h.dir.join("flows.json").exists(), "nothing was saved");
    call(&h, post("/inject/i", json!({}), &[])).await;
    assert_eq!(alerts(&h).await, 1, "the old flows still run");

    for (body, code) in [
        ("{not json", "invalid_json"),
        ("{\"a\":1}", "invalid_request"),
    ] {
        let req = Request::post("/flows")
            .header("host", "127.0.0.1:1880")
            .body(Body::from(body))
            .unwrap();
        let (s, v, _) = call(&h, req).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }
    let (s, v, _) = call(
        &h,
        post(
            "/flows",
            seed_flows("D"),
            &[("node-red-deployment-type", "sideways")],
        ),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_deployment_type"))
    );
}

#[tokio::test]
async fn inject_debug_switch_and_unknown_nodes() {
    let h = harness(seed_flows("D")).await;
    assert_eq!(
        call(&h, post("/inject/nope", json!({}), &[])).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, post("/debug/d/disable", json!({}), &[])).await.0,
        StatusCode::OK
    );
    call(&h, post("/inject/i", json!({}), &[])).await;
    assert_eq!(alerts(&h).await, 0, "a disabled debug node shows nothing");
    assert_eq!(
        call(&h, post("/debug/enable", json!({"nodes":["d"]}), &[]))
            .await
            .0,
        StatusCode::OK
    );
    call(&h, post("/inject/i2", json!({}), &[])).await;
    assert_eq!(alerts(&h).await, 1);
    assert_eq!(
        call(&h, post("/debug/nope/enable", json!({}), &[])).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, post("/debug/d/sideways", json!({}), &[])).await.0,
        StatusCode::NOT_FOUND
    );
    // __user_inject_props__ overrides the inject node's own props.
    let body = json!({"__user_inject_props__":[{"p":"payload","v":"7","vt":"num"}]});
    call(&h, post("/inject/i", body, &[])).await;
    assert_eq!(alerts(&h).await, 2);
    assert_eq!(
        h.observer.debug().last().unwrap().1,
        Some(flowd_engine::Value::Number(7.0))
    );
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let h = harness(seed_flows("D")).await;
    let evil = post("/flows", json!([]), &[("origin", "http://evil.example")]);
    let (s, v, headers) = call(&h, evil).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("cross_origin"))
    );
    assert!(headers.get("access-control-allow-origin").is_none());
    let sneaky = post("/inject/i", json!({}), &[("sec-fetch-site", "cross-site")]);
    assert_eq!(call(&h, sneaky).await.0, StatusCode::FORBIDDEN);
    let same = post(
        "/inject/i",
        json!({}),
        &[("origin", "http://127.0.0.1:1880")],
    );
    assert_eq!(call(&h, same).await.0, StatusCode::OK);
    // Reads are not writes.
    let read = Request::get("/flows")
        .header("origin", "http://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&h, read).await.0, StatusCode::OK);
}

#[tokio::test]
async fn nodes_and_settings() {
    let h = harness(seed_flows("D")).await;
    let req = Request::get("/nodes")
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    let (s, v, _) = call(&h, req).await;
    assert_eq!(s, StatusCode::OK);
    let rbe = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "node-red/rbe")
        .expect("rbe set");
    assert_eq!(rbe["types"], json!(["rbe"]));
    let keys: Vec<&String> = rbe.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["id", "name", "types", "enabled", "local", "user", "module", "version"]
    );
    let (_, v, _) = call(&h, get("/flowd/nodes")).await;
    let tpl = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "template")
        .unwrap();
    assert_eq!(tpl["category"], "function");
    assert!(tpl["properties"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "template"));
    let (_, v, _) = call(&h, get("/settings")).await;
    assert_eq!(v["httpNodeRoot"], "/");
    assert_eq!(
        v["context"],
        json!({"default": "memory", "stores": ["memory"]})
    );
    let (_, v, _) = call(&h, get("/flows/state")).await;
    assert_eq!(v, json!({"state":"start"}));
}

#[tokio::test]
async fn settings_name_a_context_store_on_disk_as_node_red_does() {
    // Node-RED 4.1 with `contextStorage: {default: {module: "localfilesystem"}}`.
    let registry = Arc::new(flowd_nodes::registry());
    let flows = json!([{"id": "t1", "type": "tab", "label": "F"}]);
    let (set, _) = flowd_engine::flows::from_json(flows.clone());
    let runtime = Arc::new(Runtime::start(
        prepare_json(&registry, flows).expect("valid"),
        RuntimeOptions::default(),
    ));
    let state =
        EditorState::new(runtime, registry, None, &set, CommsHub::new()).with_context_on_disk();
    let res = app(Arc::new(state))
        .oneshot(get("/settings"))
        .await
        .expect("router answers");
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        v["context"],
        json!({"default": "default", "stores": ["default"]})
    );
}

#[tokio::test]
async fn a_real_server_on_port_0() {
    let h = harness(seed_flows("D")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, h.router).await;
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!("GET /flows/state HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
    assert!(buf.contains("{\"state\":\"start\"}"));
    assert!(!buf
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));
}

#[tokio::test]
async fn comms_websocket_replays_retained_and_streams_debug() {
    use flowd_engine::observer::RuntimeObserver;
    use futures_util::{SinkExt, StreamExt};
    let h = harness(seed_flows("D")).await;
    let comms = h.comms.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, h.router).await;
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/comms"))
        .await
        .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"subscribe":"notification/#"}"#,
    ))
    .await
    .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"subscribe":"debug"}"#,
    ))
    .await
    .unwrap();
    macro_rules! next {
        ($ws:expr) => {{
            let m = tokio::time::timeout(Duration::from_secs(5), $ws.next())
                .await
                .expect("a frame")
                .unwrap()
                .unwrap();
            serde_json::from_str::<Value>(m.to_text().unwrap()).unwrap()
        }};
    }
    let first = next!(ws);
    let topics: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert!(topics.contains(&"notification/runtime-deploy"), "{first}");
    // A debug message from the runtime reaches the client.
    let mut info = flowd_engine::node::NodeInfo::detached("dbg1", "debug");
    info.z = Some("t1".into());
    let v = flowd_engine::Value::str("hello");
    comms.debug(&flowd_engine::observer::DebugEvent {
        node: &info,
        topic: None,
        property: Some("payload"),
        value: Some(&v),
    });
    let frame = next!(ws);
    assert_eq!(frame[0]["topic"], "debug");
    assert_eq!(frame[0]["data"]["msg"], "hello");
    assert_eq!(frame[0]["data"]["format"], "string[5]");
}

#[tokio::test]
async fn credentials_are_encrypted_and_never_returned() {
    let registry = Arc::new(flowd_nodes::registry());
    let flows = json!([
        {"id":"t1","type":"tab","label":"Flow 1"},
        {"id":"b1","type":"mqtt-broker","broker":"127.0.0.1","port":"1","autoConnect":false}
    ]);
    let (set, _) = flowd_engine::flows::from_json(flows.clone());
    let runtime = Arc::new(Runtime::start(
        prepare_json(&registry, flows.clone()).unwrap(),
        RuntimeOptions::default(),
    ));
    let dir = std::env::temp_dir().join(format!(
        "flowd-api-cred-{}-{}",
        std::process::id(),
        fastid()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = flowd_editor::credentials::CredentialStore::new(
        dir.join("flows_cred.json"),
        Some("secret"),
    );
    let state = EditorState::new(
        runtime,
        registry,
        Some(FlowStorage::new(dir.join("flows.json"))),
        &set,
        CommsHub::new(),
    )
    .with_credentials(store.clone());
    let router = app(Arc::new(state));
    let h = Harness {
        router,
        observer: Arc::new(RecordingObserver::default()),
        comms: CommsHub::new(),
        dir: dir.clone(),
    };

    let mut with_creds = flows.clone();
    with_creds[1]["credentials"] = json!({"user":"alice","password":"hunter2"});
    let (s, v, _) = call(
        &h,
        post(
            "/flows",
            json!({"flows": with_creds}),
            &[("node-red-api-version", "v2")],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, got, _) = call(&h, get("/flows")).await;
    assert!(
        !got.to_string().contains("hunter2") && !got.to_string().contains("alice"),
        "{got}"
    );
    let (_, c, _) = call(&h, get("/credentials/mqtt-broker/b1")).await;
    assert_eq!(c, json!({"user":"alice","has_password":true}));
    for f in ["flows.json", "flows_cred.json"] {
        let raw = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!raw.contains("hunter2"), "{f}: {raw}");
    }
    assert_eq!(store.load().unwrap()["b1"]["password"], "hunter2");

    // "__PWRD__" keeps the stored password; a deploy without credentials keeps them too.
    let mut unchanged = flows.clone();
    unchanged[1]["credentials"] = json!({"user":"bob","password":"__PWRD__"});
    call(
        &h,
        post(
            "/flows",
            json!({"flows": unchanged}),
            &[("node-red-api-version", "v2")],
        ),
    )
    .await;
    call(&h, post("/flows", flows.clone(), &[])).await;
    let kept = store.load().unwrap();
    assert_eq!(
        (kept["b1"]["user"].as_str(), kept["b1"]["password"].as_str()),
        (Some("bob"), Some("hunter2"))
    );
}

#[tokio::test]
async fn admin_auth_requires_tokens_and_read_users_only_read() {
    use flowd_editor::auth::{AdminAuth, AdminUser, Permission};
    let registry = Arc::new(flowd_nodes::registry());
    let flows = seed_flows("D");
    let (set, _) = flowd_engine::flows::from_json(flows.clone());
    let runtime = Arc::new(Runtime::start(
        prepare_json(&registry, flows.clone()).unwrap(),
        RuntimeOptions::default(),
    ));
    let users = vec![
        AdminUser {
            username: "admin".into(),
            password: bcrypt::hash("s3cret", 4).unwrap(),
            permissions: Permission::All,
        },
        AdminUser {
            username: "viewer".into(),
            password: bcrypt::hash("look", 4).unwrap(),
            permissions: Permission::Read,
        },
    ];
    let state = EditorState::new(runtime, registry, None, &set, CommsHub::new())
        .with_auth(AdminAuth::new(users).unwrap());
    let h = Harness {
        router: app(Arc::new(state)),
        observer: Arc::new(RecordingObserver::default()),
        comms: CommsHub::new(),
        dir: std::env::temp_dir(),
    };

    assert_eq!(call(&h, get("/flows")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&h, post("/inject/i", json!({}), &[])).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, login, _) = call(&h, get("/auth/login")).await;
    assert_eq!(login["type"], "credentials");
    let (s, _, _) = call(
        &h,
        post(
            "/auth/token",
            json!({"username":"admin","password":"nope"}),
            &[],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let form = Request::post("/auth/token")
        .header("host", "127.0.0.1:1880")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "client_id=node-red-editor&grant_type=password&scope=*&username=admin&password=s3cret",
        ))
        .unwrap();
    let (s, tok, _) = call(&h, form).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let admin = format!("Bearer {}", tok["access_token"].as_str().unwrap());
    let (_, tok, _) = call(
        &h,
        post(
            "/auth/token",
            json!({"username":"viewer","password":"look"}),
            &[],
        ),
    )
    .await;
    let viewer = format!("Bearer {}", tok["access_token"].as_str().unwrap());

    let authed_get = |token: &str| {
        Request::get("/flows")
            .header("authorization", token)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&h, authed_get(&admin)).await.0, StatusCode::OK);
    assert_eq!(call(&h, authed_get(&viewer)).await.0, StatusCode::OK);
    assert_eq!(
        call(&h, authed_get("Bearer forged")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &h,
            post("/inject/i", json!({}), &[("authorization", &viewer)])
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &h,
            post("/inject/i", json!({}), &[("authorization", &admin)])
        )
        .await
        .0,
        StatusCode::OK
    );
}

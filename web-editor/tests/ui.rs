//! The editor's files: served at `/` with content types and ETags, only the
//! listed files, public even when the admin API needs a login.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use flowd_editor::comms::CommsHub;
use flowd_editor::{app, EditorState};
use flowd_engine::{prepare_json, Runtime, RuntimeOptions};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

fn router(auth: Option<flowd_editor::auth::AdminAuth>) -> axum::Router {
    let registry = Arc::new(flowd_nodes::registry());
    let flows = json!([{"id":"t1","type":"tab","label":"Flow 1"}]);
    let (set, _) = flowd_engine::flows::from_json(flows.clone());
    let runtime = Arc::new(Runtime::start(
        prepare_json(&registry, flows).expect("valid"),
        RuntimeOptions::default(),
    ));
    let mut state = EditorState::new(runtime, registry, None, &set, CommsHub::new());
    if let Some(a) = auth {
        state = state.with_auth(a);
    }
    app(Arc::new(state))
}

async fn fetch(
    r: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:1880");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = r
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .expect("router answers");
    let status = res.status();
    let h = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, h, body.to_vec())
}

#[tokio::test]
async fn editor_files_are_served_with_types_and_etags() {
    let r = router(None);
    let (s, h, body) = fetch(&r, "GET", "/", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert!(h.contains_key(header::CONTENT_SECURITY_POLICY));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains(r#"src="js/main.js""#), "{html}");
    assert!(
        !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "no CORS header"
    );

    let etag = h[header::ETAG].to_str().unwrap().to_string();
    let (s, _, body) = fetch(&r, "GET", "/", &[("if-none-match", &etag)]).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (s, h, body) = fetch(&r, "GET", "/js/model.js", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("export class Model"));
    let (s, h, _) = fetch(&r, "GET", "/editor.css", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/css; charset=utf-8");
    let (s, _, body) = fetch(&r, "HEAD", "/index.html", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.is_empty());

    for bad in [
        "/nope.js",
        "/js/../Cargo.toml",
        "/..%2fCargo.toml",
        "/js/%2e%2e/%2e%2e/Cargo.toml",
        "/ui/index.html",
    ] {
        let (s, h, _) = fetch(&r, "GET", bad, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(h[header::CONTENT_TYPE], "application/json", "{bad}");
    }
    // A write to an editor file is not a thing.
    let (s, _, _) = fetch(&r, "POST", "/index.html", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The API is still routed.
    let (s, _, body) = fetch(&r, "GET", "/flows", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("Flow 1"));
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

#[tokio::test]
async fn editor_files_are_gzipped_for_browsers_that_accept_it() {
    let r = router(None);
    for path in ["/", "/js/canvas.js", "/editor.css"] {
        let (s, plain_h, plain) = fetch(&r, "GET", path, &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!plain_h.contains_key(header::CONTENT_ENCODING), "{path}");
        assert_eq!(plain_h[header::VARY], "accept-encoding");

        // What Chromium sends.
        let accept = [("accept-encoding", "gzip, deflate, br, zstd")];
        let (s, h, body) = fetch(&r, "GET", path, &accept).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip", "{path}");
        assert_eq!(h[header::VARY], "accept-encoding");
        assert_eq!(h[header::CONTENT_TYPE], plain_h[header::CONTENT_TYPE]);
        assert!(
            body.len() < plain.len(),
            "{path}: {} >= {}",
            body.len(),
            plain.len()
        );
        assert_eq!(gunzip(&body), plain, "{path}: the same file");

        // Each encoding has its own tag; a revalidation matches its own.
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        assert_ne!(tag, plain_h[header::ETAG].to_str().unwrap());
        let (s, _, body) = fetch(&r, "GET", path, &[accept[0], ("if-none-match", &tag)]).await;
        assert_eq!(s, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
        let (s, _, _) = fetch(&r, "GET", path, &[("if-none-match", &tag)]).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "{path}: the plain file is another variant"
        );
    }
    // gzip refused with q=0, or not offered: the plain file.
    for refused in ["gzip;q=0, identity", "br", "identity"] {
        let (s, h, body) = fetch(&r, "GET", "/", &[("accept-encoding", refused)]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!h.contains_key(header::CONTENT_ENCODING), "{refused}");
        assert!(
            String::from_utf8(body).unwrap().contains("<html"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn large_json_answers_are_gzipped_for_browsers_that_accept_it() {
    let r = router(None);
    let accept = [("accept-encoding", "gzip, deflate, br, zstd")];
    // The node catalogue is the editor's largest answer.
    let (s, plain_h, plain) = fetch(&r, "GET", "/flowd/nodes", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(plain.len() > 4096, "{} bytes", plain.len());
    assert!(!plain_h.contains_key(header::CONTENT_ENCODING));
    assert_eq!(plain_h[header::VARY], "accept-encoding");
    let (s, h, body) = fetch(&r, "GET", "/flowd/nodes", &accept).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    assert_eq!(h[header::VARY], "accept-encoding");
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(
        body.len() * 3 < plain.len(),
        "{} gzipped against {} plain",
        body.len(),
        plain.len()
    );
    assert_eq!(gunzip(&body), plain, "the same answer");

    // Refused gzip: the plain answer.
    let (_, h, body) = fetch(
        &r,
        "GET",
        "/flowd/nodes",
        &[("accept-encoding", "gzip;q=0")],
    )
    .await;
    assert!(!h.contains_key(header::CONTENT_ENCODING));
    assert_eq!(body, plain);

    // A short answer is not worth compressing.
    let (s, h, body) = fetch(&r, "GET", "/flows/state", &accept).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.contains_key(header::CONTENT_ENCODING));
    assert_eq!(h[header::VARY], "accept-encoding");
    let state: serde_json::Value = serde_json::from_slice(&body).expect("plain JSON");
    assert!(state.get("state").is_some(), "{state}");
}

#[tokio::test]
async fn editor_files_are_public_while_the_api_needs_a_login() {
    use flowd_editor::auth::{AdminAuth, AdminUser, Permission};
    let auth = AdminAuth::new(vec![AdminUser {
        username: "admin".into(),
        password: bcrypt::hash("s3cret", 4).unwrap(),
        permissions: Permission::All,
    }])
    .unwrap();
    let r = router(Some(auth));
    for path in ["/", "/index.html", "/js/main.js", "/editor.css"] {
        assert_eq!(
            fetch(&r, "GET", path, &[]).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
    for path in ["/flows", "/settings", "/flowd/nodes", "/nope.js"] {
        assert_eq!(
            fetch(&r, "GET", path, &[]).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let (s, _, body) = fetch(&r, "GET", "/auth/login", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("credentials"));
}

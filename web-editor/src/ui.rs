//! The browser editor's files (`web-editor/ui/`), served publicly at `/`
//! (the editor asks for a login in-page when admin users are configured).
//!
//! [`UI_FILES`] lists every file: release builds serve the copies embedded
//! with `include_bytes!`; debug builds read the same files from disk at each
//! request, so editing and reloading works without recompiling. Only listed
//! names are ever served (no path from a request reaches the file system);
//! anything else is 404. Answers carry an ETag (SHA-256 of the bytes) and
//! `Cache-Control: no-cache`, so browsers revalidate and get 304s. A browser
//! that accepts gzip gets the file gzipped (about a third of the bytes over
//! a slow link to an edge device), under its own ETag; release builds
//! compress each file once.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::compression::{accepts_gzip, gzip};

macro_rules! ui_files {
    ($($name:literal),* $(,)?) => {
        /// Every file of the editor: (path under `ui/`, embedded bytes).
        pub const UI_FILES: &[(&str, &[u8])] = &[
            $(($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $name)))),*
        ];
    };
}

ui_files!(
    "index.html",
    "editor.css",
    "js/main.js",
    "js/util.js",
    "js/model.js",
    "js/history.js",
    "js/canvas.js",
    "js/palette.js",
    "js/forms.js",
    "js/sidebar.js",
    "js/comms.js",
    "js/keymap.js",
    "js/deploy.js",
    "js/io.js",
);

/// The `Content-Type` of a file name.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The listed file a request path names (`/` is `index.html`).
pub fn lookup(path: &str) -> Option<(&'static str, &'static [u8])> {
    position(path).map(|i| UI_FILES[i])
}

/// Index in [`UI_FILES`] of the file a request path names.
fn position(path: &str) -> Option<usize> {
    let name = match path.strip_prefix('/')? {
        "" => "index.html",
        rest => rest,
    };
    UI_FILES.iter().position(|(n, _)| *n == name)
}

/// True when `path` is one of the editor's files (served without a login).
pub fn is_ui_path(path: &str) -> bool {
    position(path).is_some()
}

/// A listed file as it is sent: plain, gzipped, and the hash its ETags name.
#[derive(Clone)]
struct Encoded {
    plain: Bytes,
    gzipped: Bytes,
    /// Hex of the first 12 bytes of the plain file's SHA-256.
    hash: String,
}

impl Encoded {
    fn new(plain: Bytes) -> Encoded {
        let digest = Sha256::digest(&plain);
        Encoded {
            hash: digest[..12].iter().map(|b| format!("{b:02x}")).collect(),
            gzipped: gzip(&plain, flate2::Compression::best()).into(),
            plain,
        }
    }

    /// The ETag of the plain or the gzipped form.
    fn etag(&self, gzipped: bool) -> String {
        if gzipped {
            format!("\"{}-gz\"", self.hash)
        } else {
            format!("\"{}\"", self.hash)
        }
    }
}

/// Debug builds: file `i` read from disk and encoded at each request.
#[cfg(debug_assertions)]
fn encoded(i: usize) -> Encoded {
    let (name, embedded) = UI_FILES[i];
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ui")
        .join(name);
    Encoded::new(match std::fs::read(&path) {
        Ok(bytes) => bytes.into(),
        // The source tree is gone (a debug binary moved elsewhere): the build's copy.
        Err(_) => Bytes::from_static(embedded),
    })
}

/// Release builds: embedded file `i`, hashed and compressed on first use.
#[cfg(not(debug_assertions))]
fn encoded(i: usize) -> Encoded {
    use std::sync::OnceLock;
    static ENCODED: OnceLock<Vec<OnceLock<Encoded>>> = OnceLock::new();
    let cells = ENCODED.get_or_init(|| UI_FILES.iter().map(|_| OnceLock::new()).collect());
    cells[i]
        .get_or_init(|| Encoded::new(Bytes::from_static(UI_FILES[i].1)))
        .clone()
}

/// Fallback handler: an editor file for GET/HEAD, else 404 JSON.
pub async fn serve(method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let found = position(uri.path());
    let Some(i) = found.filter(|_| method == Method::GET || method == Method::HEAD) else {
        return crate::error::ApiError::not_found("Not Found").into_response();
    };
    let name = UI_FILES[i].0;
    let file = encoded(i);
    let gzipped_body = accepts_gzip(&headers);
    // The tag names the file's content and the encoding it is sent in.
    let tag = file.etag(gzipped_body);
    let bytes = if gzipped_body {
        file.gzipped
    } else {
        file.plain
    };
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes))
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped_body {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if name == "index.html" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
                 style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
            ),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_ui_directory_is_listed_and_typed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("ui dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&dir).expect("under ui");
                    on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = UI_FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "UI_FILES must list exactly the files of ui/"
        );
        for (name, _) in UI_FILES {
            assert_ne!(content_type(name), "application/octet-stream", "{name}");
        }
    }

    #[test]
    fn only_listed_names_resolve() {
        assert_eq!(lookup("/").map(|f| f.0), Some("index.html"));
        assert_eq!(lookup("/js/model.js").map(|f| f.0), Some("js/model.js"));
        for bad in [
            "/../Cargo.toml",
            "/js/../index.html",
            "//etc/passwd",
            "/js/",
            "/nope.js",
            "index.html",
        ] {
            assert!(lookup(bad).is_none(), "{bad}");
        }
    }
}

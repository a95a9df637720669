//! gzip for browsers that accept it: the editor's files (compressed once in
//! release builds, see [`crate::ui`]) and the admin API's JSON answers
//! ([`gzip_json_answers`]), so the editor's first load stays small over a
//! slow link to an edge device.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// JSON answers shorter than this are sent as they are: gzip's header and
/// the CPU would cost more than the bytes saved.
const MIN_GZIP_LEN: u64 = 1024;

/// The largest JSON answer compressed; larger ones (a huge flows file) and
/// answers of unknown length go out as they are.
const MAX_GZIP_LEN: u64 = 64 * 1024 * 1024;

/// True when `Accept-Encoding` lists gzip (or `*`) without `q=0`.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// `bytes` gzipped at `level`.
pub(crate) fn gzip(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), level);
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Middleware: a JSON answer of at least [`MIN_GZIP_LEN`] bytes goes out
/// gzipped (default level: built per request) when the request accepts gzip.
/// Every JSON answer names `Accept-Encoding` in `Vary`. Other answers (the
/// editor's files, websocket upgrades, errors in other types) pass through.
pub(crate) async fn gzip_json_answers(request: Request, next: Next) -> Response {
    let gzip_ok = accepts_gzip(request.headers());
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let worth_it = body
        .size_hint()
        .exact()
        .is_some_and(|n| (MIN_GZIP_LEN..=MAX_GZIP_LEN).contains(&n));
    if !gzip_ok || !worth_it {
        return Response::from_parts(parts, body);
    }
    // A JSON answer is one buffer already: collecting it cannot fail.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let gzipped = gzip(&bytes, flate2::Compression::default());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, Body::from(gzipped))
}

//! Cross-origin protection. Node-RED answers every request with
//! `Access-Control-Allow-Origin: *`, so any web page a user visits can replace
//! their flows. flowd sends no CORS header at all and refuses any write
//! (a method other than GET/HEAD/OPTIONS) whose `Origin` is not the server
//! itself, or that the browser marks as cross-site.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `host[:port]` part of an origin URL.
fn origin_authority(origin: &str) -> Option<&str> {
    let rest = origin.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Middleware: cross-origin writes get 403.
pub async fn refuse_cross_origin_writes(req: Request, next: Next) -> Response {
    if is_write(req.method()) {
        let headers = req.headers();
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let foreign_origin = headers.get(header::ORIGIN).is_some_and(|o| {
            let o = o.to_str().unwrap_or("");
            o == "null" || origin_authority(o) != host
        });
        if cross_site || foreign_origin {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "cross-origin writes to the admin API are refused",
            )
            .into_response();
        }
    }
    next.run(req).await
}

//! Admin authentication, as Node-RED's `adminAuth` with credentials: users
//! with bcrypt password hashes log in at `POST /auth/token` and get a bearer
//! token; every other admin request needs `Authorization: Bearer <token>`
//! (a `read` user may only read). Without users configured the admin API is
//! open, which the `flowd` binary only allows on loopback (or with --insecure).

use crate::error::ApiError;
use crate::EditorState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a token stays valid (Node-RED: 7 days).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most sessions kept; the oldest is dropped beyond this.
const MAX_SESSIONS: usize = 1000;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Everything (`"*"` in Node-RED's settings).
    #[serde(rename = "*")]
    All,
    /// Only reads.
    Read,
}

/// An admin user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    /// Login name.
    pub username: String,
    /// bcrypt hash of the password (`$2a$`/`$2b$`/`$2y$`, as `node-red admin hash-pw` makes).
    pub password: String,
    /// `"*"` or `"read"`.
    #[serde(default = "all")]
    pub permissions: Permission,
}

fn all() -> Permission {
    Permission::All
}

struct Session {
    permission: Permission,
    expires: Instant,
}

/// Users and live sessions.
pub struct AdminAuth {
    users: Vec<AdminUser>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl AdminAuth {
    /// Authentication for `users` (checked to be bcrypt hashes).
    pub fn new(users: Vec<AdminUser>) -> Result<AdminAuth, String> {
        for u in &users {
            if !u.password.starts_with("$2") {
                return Err(format!(
                    "admin user \"{}\": password must be a bcrypt hash",
                    u.username
                ));
            }
        }
        Ok(AdminAuth {
            users,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn new_token() -> String {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            // The OS random source is unavailable: refuse to mint predictable tokens.
            return String::new();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks a login; returns a new token.
    pub fn login(&self, username: &str, password: &str) -> Option<String> {
        let user = self.users.iter().find(|u| u.username == username)?;
        if !bcrypt::verify(password, &user.password).unwrap_or(false) {
            return None;
        }
        let token = Self::new_token();
        if token.is_empty() {
            return None;
        }
        let mut s = self.sessions.lock().ok()?;
        let now = Instant::now();
        s.retain(|_, v| v.expires > now);
        if s.len() >= MAX_SESSIONS {
            if let Some(oldest) = s
                .iter()
                .min_by_key(|(_, v)| v.expires)
                .map(|(k, _)| k.clone())
            {
                s.remove(&oldest);
            }
        }
        s.insert(
            token.clone(),
            Session {
                permission: user.permissions,
                expires: now + TOKEN_LIFETIME,
            },
        );
        Some(token)
    }

    /// The permission of a valid token.
    pub fn check(&self, token: &str) -> Option<Permission> {
        let s = self.sessions.lock().ok()?;
        s.get(token)
            .filter(|v| v.expires > Instant::now())
            .map(|v| v.permission)
    }

    /// Ends a session.
    pub fn revoke(&self, token: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(token);
        }
    }
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Middleware: with users configured, requests need a valid token (the
/// login endpoints, the editor's files and the comms websocket, which
/// authenticates in-band, excepted).
pub async fn require_token(
    State(st): State<Arc<EditorState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(auth) = &st.auth else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path.starts_with("/auth/") || path == "/comms" || crate::ui::is_ui_path(path) {
        return next.run(req).await;
    }
    match bearer(&req).and_then(|t| auth.check(t)) {
        Some(Permission::All) => next.run(req).await,
        Some(Permission::Read) if matches!(*req.method(), Method::GET | Method::HEAD) => {
            next.run(req).await
        }
        Some(Permission::Read) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this user may only read",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in at POST /auth/token",
        )
        .into_response(),
    }
}

/// `GET /auth/login`: how to log in.
pub async fn login_info(State(st): State<Arc<EditorState>>) -> Json<Value> {
    if st.auth.is_none() {
        return Json(json!({}));
    }
    Json(json!({"type": "credentials", "prompts": [
        {"id": "username", "type": "text", "label": "Username"},
        {"id": "password", "type": "password", "label": "Password"}
    ]}))
}

#[derive(Deserialize)]
struct TokenRequest {
    username: String,
    password: String,
}

/// `POST /auth/token` (form or JSON: username, password) -> `{access_token, expires_in, token_type}`.
pub async fn token(
    State(st): State<Arc<EditorState>>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let Some(auth) = st.auth.clone() else {
        return Err(ApiError::bad_request(
            "auth_disabled",
            "this admin API needs no login",
        ));
    };
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::bad_request("invalid_request", "the body is too large"))?;
    let creds: TokenRequest = if is_form {
        serde_urlencoded_like(&body).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "username and password required")
        })?
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::bad_request("invalid_request", "username and password required")
        })?
    };
    // bcrypt is deliberately slow: keep it off the async workers.
    let minted = tokio::task::spawn_blocking(move || auth.login(&creds.username, &creds.password))
        .await
        .map_err(|e| ApiError::internal("login failed", e))?;
    match minted {
        Some(t) => Ok(Json(
            json!({"access_token": t, "expires_in": TOKEN_LIFETIME.as_secs(), "token_type": "Bearer"}),
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong username or password",
        )),
    }
}

/// `POST /auth/revoke` with `{token}` (or the bearer token).
pub async fn revoke(State(st): State<Arc<EditorState>>, req: Request) -> StatusCode {
    if let (Some(auth), Some(t)) = (&st.auth, bearer(&req)) {
        auth.revoke(t);
    }
    StatusCode::OK
}

/// Decodes `username=..&password=..` (percent-encoding and `+`).
fn serde_urlencoded_like(body: &[u8]) -> Option<TokenRequest> {
    let text = std::str::from_utf8(body).ok()?;
    let mut user = None;
    let mut pass = None;
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=')?;
        let v = percent_decode(v)?;
        match k {
            "username" => user = Some(v),
            "password" => pass = Some(v),
            _ => {}
        }
    }
    Some(TokenRequest {
        username: user?,
        password: pass?,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_check_revoke() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let auth = AdminAuth::new(vec![AdminUser {
            username: "admin".into(),
            password: hash,
            permissions: Permission::All,
        }])
        .unwrap();
        assert!(auth.login("admin", "wrong").is_none());
        assert!(auth.login("nobody", "secret").is_none());
        let t = auth.login("admin", "secret").unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(auth.check(&t), Some(Permission::All));
        auth.revoke(&t);
        assert_eq!(auth.check(&t), None);
        assert!(AdminAuth::new(vec![AdminUser {
            username: "x".into(),
            password: "plain".into(),
            permissions: Permission::All
        }])
        .is_err());
        let f = serde_urlencoded_like(
            b"client_id=node-red-editor&username=ad%40min&password=a+b&grant_type=password",
        )
        .unwrap();
        assert_eq!(
            (f.username.as_str(), f.password.as_str()),
            ("ad@min", "a b")
        );
    }
}

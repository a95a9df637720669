//! `flowd deploy`: posts a flows file to a running flowd or Node-RED admin
//! API (`POST /flows` with `Node-RED-Deployment-Type`). A minimal HTTP/1.1
//! client over TCP: plain `http://` URLs.

use crate::cli::EXIT_INVALID;
use crate::headless::read_flows;
use anyhow::{bail, Context};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a deploy may take before giving up.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(60);

/// Splits `http://host:port/base` into (host:port, base path without trailing slash).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// admin URLs are supported, got {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        bail!("no host in {url}");
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// Deploys `path` to `url`; exit 0 when accepted, 2 with the errors when refused.
pub fn deploy(
    path: &Path,
    url: &str,
    deploy_type: &str,
    token: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let text = read_flows(path)?;
    let flows: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let body = serde_json::to_string(&flows)?;
    let (authority, base) = split_url(url)?;
    let rt = crate::cli::tokio_runtime()?;
    let (status, response) = rt.block_on(async {
        tokio::time::timeout(
            DEPLOY_TIMEOUT,
            post(
                &authority,
                &format!("{base}/flows"),
                deploy_type,
                token,
                &body,
            ),
        )
        .await
        .context("the admin API did not answer in time")?
    })?;
    if (200..300).contains(&status) {
        println!("deployed ({deploy_type}) to {url}");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("flowd: deploy refused ({status})");
    match serde_json::from_str::<Value>(&response) {
        Ok(v) => {
            if let Some(m) = v.get("message").and_then(Value::as_str) {
                eprintln!("{m}");
            }
            for e in v
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field = |k: &str| e.get(k).and_then(Value::as_str);
                let mut line = String::new();
                if let Some(id) = field("node") {
                    line.push_str(&format!("node \"{id}\""));
                    if let Some(t) = field("type") {
                        line.push_str(&format!(" ({t})"));
                    }
                    if let Some(tab) = field("tab") {
                        line.push_str(&format!(" on tab \"{tab}\""));
                    }
                    if let Some(f) = field("field") {
                        line.push_str(&format!(", field \"{f}\""));
                    }
                    line.push_str(": ");
                }
                line.push_str(field("message").unwrap_or(""));
                eprintln!("{line}");
            }
        }
        Err(_) => eprintln!("{response}"),
    }
    Ok(ExitCode::from(EXIT_INVALID))
}

async fn post(
    authority: &str,
    path: &str,
    deploy_type: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nNode-RED-Deployment-Type: {deploy_type}\r\nNode-RED-API-Version: v1\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("not an HTTP response")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

/// Decodes a chunked HTTP body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_chunks() {
        assert_eq!(
            split_url("http://127.0.0.1:1880").unwrap(),
            ("127.0.0.1:1880".into(), "".into())
        );
        assert_eq!(
            split_url("http://host/admin/").unwrap(),
            ("host:80".into(), "/admin".into())
        );
        assert!(split_url("https://x").is_err());
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}

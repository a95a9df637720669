//! Settings of the `flowd` server: `flowd.toml` in the user directory, each
//! setting also given by a `FLOWD_...` environment variable or a flag
//! (flag > environment > file > default). An invalid setting stops the start
//! with a message naming it.
//!
//! ```toml
//! [http]
//! addr = "127.0.0.1:1880"       # FLOWD_HTTP, --http
//! [broker]
//! enabled = true                # --no-broker
//! addr = "127.0.0.1:1883"       # FLOWD_MQTT, --mqtt
//! ws = "127.0.0.1:9001"         # MQTT over WebSocket (off when absent)
//! password_file = "passwd"      # Mosquitto format, relative to the user directory
//! acl_file = "acl"
//! max_keepalive = 60
//! persistence = true            # keep retained messages and sessions in DIR/broker
//! [credentials]
//! secret = "..."                # FLOWD_CREDENTIAL_SECRET; default: generated in .config.runtime.json
//! [admin]                       # admin API login (required to bind it beyond loopback)
//! users = [{ username = "admin", password = "$2b$10$...", permissions = "*" }]
//! ```

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The settings file's name in the user directory.
pub const SETTINGS_FILE: &str = "flowd.toml";

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Admin API address.
    pub addr: Option<String>,
}

/// `[broker]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSettings {
    /// Start the embedded broker.
    pub enabled: Option<bool>,
    /// MQTT listener.
    pub addr: Option<String>,
    /// MQTT over WebSocket listener.
    pub ws: Option<String>,
    /// Mosquitto password file.
    pub password_file: Option<PathBuf>,
    /// Mosquitto ACL file.
    pub acl_file: Option<PathBuf>,
    /// Largest keep alive clients may use.
    pub max_keepalive: Option<u16>,
    /// Keep broker state across restarts.
    pub persistence: Option<bool>,
}

/// `[credentials]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSettings {
    /// The secret credentials are encrypted with.
    pub secret: Option<String>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Users who may log in to the admin API (bcrypt hashes); none: no login.
    #[serde(default)]
    pub users: Vec<flowd_editor::auth::AdminUser>,
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    /// `[http]`.
    #[serde(default)]
    pub http: HttpSettings,
    /// `[broker]`.
    #[serde(default)]
    pub broker: BrokerSettings,
    /// `[credentials]`.
    #[serde(default)]
    pub credentials: CredentialSettings,
    /// `[admin]`.
    #[serde(default)]
    pub admin: AdminSettings,
}

/// Reads `DIR/flowd.toml` (absent: defaults). Errors name the setting.
pub fn load(dir: &Path) -> anyhow::Result<SettingsFile> {
    let path = dir.join(SETTINGS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SettingsFile::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "invalid setting in {}: {}",
            path.display(),
            e.to_string().trim()
        )
    })
}

/// Parses an address setting, naming it on error.
pub fn address(name: &str, value: &str) -> anyhow::Result<SocketAddr> {
    match value.parse() {
        Ok(a) => Ok(a),
        Err(_) => {
            bail!("invalid setting {name}: \"{value}\" is not an address like 127.0.0.1:1883")
        }
    }
}

/// The first given of: flag / environment (already merged by clap), file, default.
pub fn pick_addr(
    name: &str,
    given: Option<SocketAddr>,
    file: Option<&str>,
    default: &str,
) -> anyhow::Result<SocketAddr> {
    match (given, file) {
        (Some(a), _) => Ok(a),
        (None, Some(f)) => address(name, f),
        (None, None) => address(name, default),
    }
}

/// A path setting relative to the user directory.
pub fn in_dir(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(text: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "flowd-settings-{}-{}",
            std::process::id(),
            fastrand_like()
        ));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(SETTINGS_FILE), text).unwrap();
        d
    }

    fn fastrand_like() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    #[test]
    fn reads_settings_and_names_bad_ones() {
        let d = dir_with("[http]\naddr = \"127.0.0.1:1990\"\n[broker]\nmax_keepalive = 30\n");
        let s = load(&d).unwrap();
        assert_eq!(s.http.addr.as_deref(), Some("127.0.0.1:1990"));
        assert_eq!(s.broker.max_keepalive, Some(30));
        let d = dir_with("[broker]\nmax_keepalive = \"soon\"\n");
        let e = load(&d).unwrap_err().to_string();
        assert!(e.contains("max_keepalive"), "{e}");
        let d = dir_with("[brokr]\n");
        let e = load(&d).unwrap_err().to_string();
        assert!(e.contains("brokr"), "{e}");
        let e = address("http.addr", "localhost").unwrap_err().to_string();
        assert!(e.contains("http.addr"), "{e}");
        assert_eq!(
            pick_addr("x", None, Some("127.0.0.1:5"), "127.0.0.1:6")
                .unwrap()
                .port(),
            5
        );
        assert_eq!(pick_addr("x", None, None, "127.0.0.1:6").unwrap().port(), 6);
    }
}

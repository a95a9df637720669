//! Settings: `flowd.toml` in the user directory, each setting also given by
//! a `FLOWD_...` environment variable and a flag. Precedence: flag >
//! environment > file > default. [`SETTINGS`] is the table of them all
//! (shown by `flowd --help` and in the README).
//!
//! An invalid setting stops the start with a message naming the setting and
//! where its value came from: the file and line, the environment variable,
//! or the flag (clap reports flags).
//!
//! ```toml
//! [http]
//! addr = "127.0.0.1:1880"
//! [broker]
//! addr = "127.0.0.1:1883"
//! max_keepalive = 60
//! [credentials]
//! secret = "..."
//! [admin]
//! users = [{ username = "admin", password = "$2b$10$...", permissions = "*" }]
//! [log]
//! level = "info"
//! [context]
//! storage = "file"
//! flush_interval = 30
//! ```

mod file;
mod values;

pub use values::{parse_addr, parse_admin_user, parse_bool, ContextStorage, LogLevel};

use anyhow::{anyhow, bail};
use clap::Args;
use file::SettingsFile;
use flowd_editor::auth::AdminUser;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use values::SettingValue;

/// The settings file's name in the user directory.
pub const SETTINGS_FILE: &str = "flowd.toml";

/// One setting: its key in flowd.toml, its environment variable, its flag,
/// its default and what it does.
pub struct SettingSpec {
    /// `table.key` in flowd.toml.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Flag.
    pub flag: &'static str,
    /// Default.
    pub default: &'static str,
    /// What it does.
    pub about: &'static str,
}

const fn spec(
    key: &'static str,
    env: &'static str,
    flag: &'static str,
    default: &'static str,
    about: &'static str,
) -> SettingSpec {
    SettingSpec {
        key,
        env,
        flag,
        default,
        about,
    }
}

/// Every setting of flowd.toml.
#[rustfmt::skip]
pub const SETTINGS: &[SettingSpec] = &[
    spec("http.addr", "FLOWD_HTTP", "--http ADDR", "127.0.0.1:1880", "editor and admin API listener"),
    spec("http.enabled", "FLOWD_HTTP_ENABLED", "--no-editor", "true", "serve the editor and admin API"),
    spec("http.insecure", "FLOWD_INSECURE", "--insecure", "false", "allow the admin API beyond loopback without users"),
    spec("broker.enabled", "FLOWD_BROKER_ENABLED", "--no-broker", "true", "start the embedded MQTT broker"),
    spec("broker.addr", "FLOWD_MQTT", "--mqtt ADDR", "127.0.0.1:1883", "MQTT listener"),
    spec("broker.ws", "FLOWD_MQTT_WS", "--mqtt-ws ADDR", "off", "MQTT over WebSocket listener"),
    spec("broker.password_file", "FLOWD_BROKER_PASSWORD_FILE", "--broker-password-file FILE", "none", "Mosquitto password file (relative to the user directory)"),
    spec("broker.acl_file", "FLOWD_BROKER_ACL_FILE", "--broker-acl-file FILE", "none", "Mosquitto ACL file (relative to the user directory)"),
    spec("broker.allow_anonymous", "FLOWD_BROKER_ALLOW_ANONYMOUS", "--broker-allow-anonymous BOOL", "loopback only", "clients without a user name"),
    spec("broker.max_keepalive", "FLOWD_BROKER_MAX_KEEPALIVE", "--broker-max-keepalive SECS", "no limit", "largest keep alive a client may use"),
    spec("broker.max_connections", "FLOWD_BROKER_MAX_CONNECTIONS", "--broker-max-connections N", "100000", "concurrent connections"),
    spec("broker.max_packet_size", "FLOWD_BROKER_MAX_PACKET_SIZE", "--broker-max-packet-size BYTES", "16777216", "largest packet accepted"),
    spec("broker.max_queued_messages", "FLOWD_BROKER_MAX_QUEUED_MESSAGES", "--broker-max-queued-messages N", "1000", "QoS 1/2 messages queued per session"),
    spec("broker.persistence", "FLOWD_BROKER_PERSISTENCE", "--broker-persistence BOOL", "true", "keep retained messages and sessions in DIR/broker"),
    spec("credentials.secret", "FLOWD_CREDENTIAL_SECRET", "--credential-secret SECRET", "generated", "key of flows_cred.json"),
    spec("admin.users", "FLOWD_ADMIN_USERS", "--admin-user USER:HASH[:read]", "none", "admin API users (bcrypt hashes)"),
    spec("log.level", "FLOWD_LOG_LEVEL", "--log-level LEVEL", "info", "off, error, warn, info, debug or trace"),
    spec("context.storage", "FLOWD_CONTEXT_STORAGE", "--context-storage memory|file", "memory", "keep flow/global/node context in DIR/context"),
    spec("context.flush_interval", "FLOWD_CONTEXT_FLUSH_INTERVAL", "--context-flush-interval SECS", "30", "seconds between context writes"),
];

/// The settings table as `flowd --help` shows it.
pub fn help_table() -> String {
    let mut out = String::from(
        "Settings (flag > environment > DIR/flowd.toml > default):\n\n  flowd.toml key              environment variable              flag\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "  {:<27} {:<33} {}\n      {} [default: {}]\n",
            s.key, s.env, s.flag, s.about, s.default
        ));
    }
    out.push_str("  (user directory)            FLOWD_USER_DIR                    --user-dir DIR [default: ~/.flowd]\n");
    out
}

/// Reads environment variables (replaceable in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<std::ffi::OsString>;

/// The process environment.
pub fn process_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

/// Environment and file, consulted after the flags.
pub struct Sources<'a> {
    env: EnvLookup<'a>,
    file: SettingsFile,
}

impl<'a> Sources<'a> {
    /// The environment and `DIR/flowd.toml` (when `dir` is given).
    pub fn new(env: EnvLookup<'a>, dir: Option<&Path>) -> anyhow::Result<Sources<'a>> {
        let file = match dir {
            Some(d) => SettingsFile::load(&d.join(SETTINGS_FILE))?,
            None => SettingsFile::default(),
        };
        Ok(Sources { env, file })
    }

    /// The value of setting `key`: `flag`, else its environment variable,
    /// else the file; `None` when none gives it.
    fn get<T: SettingValue>(&self, key: &str, flag: Option<T>) -> anyhow::Result<Option<T>> {
        if flag.is_some() {
            return Ok(flag);
        }
        let spec = SETTINGS
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| anyhow!("internal: no setting {key}"))?;
        let mut env_value = (self.env)(spec.env).map(|v| (spec.env, v));
        if env_value.is_none() && key == "log.level" {
            // The older name.
            env_value = (self.env)(LEGACY_LOG_ENV).map(|v| (LEGACY_LOG_ENV, v));
        }
        if let Some((var, v)) = env_value.filter(|(_, v)| !v.is_empty()) {
            let text = v.to_str().ok_or_else(|| {
                anyhow!("invalid setting {key} from environment variable {var}: not UTF-8 text")
            })?;
            return T::from_text(text).map(Some).map_err(|e| {
                anyhow!("invalid setting {key} from environment variable {var}: {e}")
            });
        }
        match self.file.values.get(key) {
            Some((raw, line)) => T::from_file(raw).map(Some).map_err(|e| {
                anyhow!(
                    "invalid setting {key} in {} line {line}: {e}",
                    self.file.path.display()
                )
            }),
            None => Ok(None),
        }
    }
}

/// The older environment variable for the log level.
const LEGACY_LOG_ENV: &str = "FLOWD_LOG";

/// Flags of the settings (the server mode has them all).
#[derive(Args, Debug, Clone, Default)]
pub struct SettingFlags {
    /// Admin API address [env: FLOWD_HTTP; default: 127.0.0.1:1880].
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub http: Option<SocketAddr>,
    /// Do not serve the editor and admin API [env: FLOWD_HTTP_ENABLED=false].
    #[arg(long)]
    pub no_editor: bool,
    /// Allow the admin API on a non-loopback address without users [env: FLOWD_INSECURE].
    #[arg(long)]
    pub insecure: bool,
    /// Do not start the embedded broker [env: FLOWD_BROKER_ENABLED=false].
    #[arg(long)]
    pub no_broker: bool,
    /// Embedded broker's MQTT address [env: FLOWD_MQTT; default: 127.0.0.1:1883].
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub mqtt: Option<SocketAddr>,
    /// MQTT over WebSocket address [env: FLOWD_MQTT_WS; default: off].
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub mqtt_ws: Option<SocketAddr>,
    /// Mosquitto password file for the broker [env: FLOWD_BROKER_PASSWORD_FILE].
    #[arg(long, value_name = "FILE")]
    pub broker_password_file: Option<PathBuf>,
    /// Mosquitto ACL file for the broker [env: FLOWD_BROKER_ACL_FILE].
    #[arg(long, value_name = "FILE")]
    pub broker_acl_file: Option<PathBuf>,
    /// Clients without a user name [env: FLOWD_BROKER_ALLOW_ANONYMOUS; default: on loopback only].
    #[arg(long, value_name = "BOOL", value_parser = parse_bool)]
    pub broker_allow_anonymous: Option<bool>,
    /// Largest keep alive a client may use, seconds [env: FLOWD_BROKER_MAX_KEEPALIVE].
    #[arg(long, value_name = "SECS")]
    pub broker_max_keepalive: Option<u16>,
    /// Concurrent broker connections [env: FLOWD_BROKER_MAX_CONNECTIONS; default: 100000].
    #[arg(long, value_name = "N")]
    pub broker_max_connections: Option<usize>,
    /// Largest MQTT packet accepted, bytes [env: FLOWD_BROKER_MAX_PACKET_SIZE; default: 16 MiB].
    #[arg(long, value_name = "BYTES")]
    pub broker_max_packet_size: Option<u32>,
    /// QoS 1/2 messages queued per session [env: FLOWD_BROKER_MAX_QUEUED_MESSAGES; default: 1000].
    #[arg(long, value_name = "N")]
    pub broker_max_queued_messages: Option<usize>,
    /// Keep retained messages and sessions in DIR/broker [env: FLOWD_BROKER_PERSISTENCE; default: true].
    #[arg(long, value_name = "BOOL", value_parser = parse_bool)]
    pub broker_persistence: Option<bool>,
    /// Secret that encrypts flows_cred.json [env: FLOWD_CREDENTIAL_SECRET; default: generated].
    #[arg(long, value_name = "SECRET")]
    pub credential_secret: Option<String>,
    /// An admin API user, USER:BCRYPT-HASH[:read]; repeatable [env: FLOWD_ADMIN_USERS, comma-separated].
    #[arg(long = "admin-user", value_name = "USER:HASH", value_parser = parse_admin_user)]
    pub admin_users: Vec<AdminUser>,
    #[command(flatten)]
    pub context: ContextFlags,
}

/// Context storage flags (the server and `flowd run`).
#[derive(Args, Debug, Clone, Default)]
pub struct ContextFlags {
    /// Where context is kept: memory, or file (DIR/context) [env: FLOWD_CONTEXT_STORAGE; default: memory].
    #[arg(long, value_name = "STORAGE")]
    pub context_storage: Option<ContextStorage>,
    /// Seconds between writes of changed context [env: FLOWD_CONTEXT_FLUSH_INTERVAL; default: 30].
    #[arg(long, value_name = "SECS")]
    pub context_flush_interval: Option<u64>,
}

/// The broker's settings.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Start it.
    pub enabled: bool,
    /// MQTT listener.
    pub addr: SocketAddr,
    /// WebSocket listener.
    pub ws: Option<SocketAddr>,
    /// Password file (resolved against the user directory).
    pub password_file: Option<PathBuf>,
    /// ACL file (resolved against the user directory).
    pub acl_file: Option<PathBuf>,
    /// Anonymous clients (`None`: on loopback listeners only).
    pub allow_anonymous: Option<bool>,
    /// Largest keep alive.
    pub max_keepalive: Option<u16>,
    /// Connection limit.
    pub max_connections: Option<usize>,
    /// Packet size limit.
    pub max_packet_size: Option<u32>,
    /// Queue limit per session.
    pub max_queued_messages: Option<usize>,
    /// Keep state in DIR/broker.
    pub persistence: bool,
}

/// Context settings.
#[derive(Debug, Clone, Copy)]
pub struct ContextSettings {
    /// Memory or file.
    pub storage: ContextStorage,
    /// Time between writes.
    pub flush_interval: Duration,
}

/// Everything the server mode needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The user directory.
    pub user_dir: PathBuf,
    /// Admin API listener.
    pub http: SocketAddr,
    /// Serve the admin API.
    pub editor: bool,
    /// Allow it beyond loopback without users.
    pub insecure: bool,
    /// The embedded broker.
    pub broker: BrokerSettings,
    /// Credential secret (`None`: generated in the user directory).
    pub credential_secret: Option<String>,
    /// Admin users.
    pub admin_users: Vec<AdminUser>,
    /// Log level.
    pub log_level: LogLevel,
    /// Context storage.
    pub context: ContextSettings,
}

/// The user directory: the flag, else FLOWD_USER_DIR, else ~/.flowd.
pub fn user_dir(flag: Option<PathBuf>, env: EnvLookup<'_>) -> PathBuf {
    flag.or_else(|| {
        env("FLOWD_USER_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| {
        env("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".flowd")
    })
}

/// The log level: flag, environment (FLOWD_LOG_LEVEL, or the older FLOWD_LOG), file, info.
pub fn log_level(src: &Sources<'_>, flag: Option<LogLevel>) -> anyhow::Result<LogLevel> {
    Ok(src.get("log.level", flag)?.unwrap_or(LogLevel::Info))
}

/// Context settings from their flags, the environment and the file.
pub fn context(src: &Sources<'_>, flags: &ContextFlags) -> anyhow::Result<ContextSettings> {
    let storage = src
        .get("context.storage", flags.context_storage)?
        .unwrap_or(ContextStorage::Memory);
    let secs = src
        .get("context.flush_interval", flags.context_flush_interval)?
        .unwrap_or(flowd_engine::context::DEFAULT_FLUSH_INTERVAL.as_secs());
    if secs == 0 {
        bail!("invalid setting context.flush_interval: 0 (at least 1 second)");
    }
    Ok(ContextSettings {
        storage,
        flush_interval: Duration::from_secs(secs),
    })
}

/// Resolves every setting of the server mode.
pub fn resolve(
    user_dir: PathBuf,
    flags: &SettingFlags,
    log_flag: Option<LogLevel>,
    env: EnvLookup<'_>,
) -> anyhow::Result<Settings> {
    let src = Sources::new(env, Some(&user_dir))?;
    let off = |b: bool| (b).then_some(false);
    let broker = BrokerSettings {
        enabled: src
            .get("broker.enabled", off(flags.no_broker))?
            .unwrap_or(true),
        addr: src
            .get("broker.addr", flags.mqtt)?
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1883))),
        ws: src.get("broker.ws", flags.mqtt_ws)?,
        password_file: src
            .get("broker.password_file", flags.broker_password_file.clone())?
            .map(|p| in_dir(&user_dir, &p)),
        acl_file: src
            .get("broker.acl_file", flags.broker_acl_file.clone())?
            .map(|p| in_dir(&user_dir, &p)),
        allow_anonymous: src.get("broker.allow_anonymous", flags.broker_allow_anonymous)?,
        max_keepalive: src.get("broker.max_keepalive", flags.broker_max_keepalive)?,
        max_connections: src.get("broker.max_connections", flags.broker_max_connections)?,
        max_packet_size: src.get("broker.max_packet_size", flags.broker_max_packet_size)?,
        max_queued_messages: src.get(
            "broker.max_queued_messages",
            flags.broker_max_queued_messages,
        )?,
        persistence: src
            .get("broker.persistence", flags.broker_persistence)?
            .unwrap_or(true),
    };
    let users_flag = (!flags.admin_users.is_empty()).then(|| flags.admin_users.clone());
    let credential_secret = src.get("credentials.secret", flags.credential_secret.clone())?;
    if credential_secret.as_deref() == Some("") {
        bail!("invalid setting credentials.secret: empty");
    }
    Ok(Settings {
        http: src
            .get("http.addr", flags.http)?
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1880))),
        editor: src
            .get("http.enabled", off(flags.no_editor))?
            .unwrap_or(true),
        insecure: src
            .get("http.insecure", flags.insecure.then_some(true))?
            .unwrap_or(false),
        broker,
        credential_secret,
        admin_users: src.get("admin.users", users_flag)?.unwrap_or_default(),
        log_level: log_level(&src, log_flag)?,
        context: context(&src, &flags.context)?,
        user_dir,
    })
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
    use std::ffi::OsString;

    fn dir_with(text: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let d = std::env::temp_dir().join(format!("flowd-settings-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(SETTINGS_FILE), text).unwrap();
        d
    }

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn resolve_with(
        text: &str,
        flags: &SettingFlags,
        vars: &'static [(&'static str, &'static str)],
    ) -> anyhow::Result<Settings> {
        let d = dir_with(text);
        let env = env_of(vars);
        let r = resolve(d.clone(), flags, None, &env);
        let _ = std::fs::remove_dir_all(&d);
        r
    }

    #[test]
    fn flag_beats_environment_beats_file_beats_default() {
        let file = "[http]\naddr = \"127.0.0.1:1990\"\n[broker]\nmax_keepalive = 30\naddr = \"127.0.0.1:1991\"\n[log]\nlevel = \"debug\"\n[context]\nstorage = \"file\"\n";
        let s = resolve_with(file, &SettingFlags::default(), &[]).unwrap();
        assert_eq!(s.http.port(), 1990);
        assert_eq!(s.broker.addr.port(), 1991);
        assert_eq!(s.broker.max_keepalive, Some(30));
        assert_eq!(s.log_level, LogLevel::Debug);
        assert_eq!(s.context.storage, ContextStorage::File);
        assert_eq!(s.context.flush_interval, Duration::from_secs(30));
        assert!(s.broker.persistence && s.editor && !s.insecure);

        let vars = &[
            ("FLOWD_HTTP", "127.0.0.1:2000"),
            ("FLOWD_LOG_LEVEL", "warn"),
            ("FLOWD_BROKER_PERSISTENCE", "off"),
            ("FLOWD_CONTEXT_FLUSH_INTERVAL", "5"),
            ("FLOWD_MQTT", ""),
        ];
        let s = resolve_with(file, &SettingFlags::default(), vars).unwrap();
        assert_eq!(s.http.port(), 2000);
        assert_eq!(s.broker.addr.port(), 1991, "an empty variable is unset");
        assert_eq!(s.log_level, LogLevel::Warn);
        assert!(!s.broker.persistence);
        assert_eq!(s.context.flush_interval, Duration::from_secs(5));

        let flags = SettingFlags {
            http: Some("127.0.0.1:2001".parse().unwrap()),
            no_broker: true,
            ..SettingFlags::default()
        };
        let s = resolve_with(file, &flags, vars).unwrap();
        assert_eq!(s.http.port(), 2001);
        assert!(!s.broker.enabled);

        let s = resolve_with("", &SettingFlags::default(), &[]).unwrap();
        assert_eq!(s.http.port(), 1880);
        assert_eq!(s.log_level, LogLevel::Info);
        assert_eq!(s.context.storage, ContextStorage::Memory);
    }

    #[test]
    fn bad_settings_name_the_setting_and_its_source() {
        let err = |text: &str, vars: &'static [(&'static str, &'static str)]| {
            resolve_with(text, &SettingFlags::default(), vars)
                .unwrap_err()
                .to_string()
        };
        let e = err("[broker]\n\nmax_keepalive = \"soon\"\n", &[]);
        assert!(
            e.starts_with("invalid setting broker.max_keepalive in "),
            "{e}"
        );
        assert!(
            e.ends_with("flowd.toml line 3: expected a whole number, found a string"),
            "{e}"
        );
        let e = err("[broker]\nmax_keepalive = 70000\n", &[]);
        assert!(
            e.contains("70000 is not a whole number from 0 to 65535"),
            "{e}"
        );
        let e = err("[http]\naddr = \"localhost\"\n", &[]);
        assert!(
            e.contains("invalid setting http.addr in ")
                && e.contains("line 2: \"localhost\" is not an address"),
            "{e}"
        );
        let e = err("[broker]\nbogus = 1\n", &[]);
        assert!(
            e.starts_with("unknown setting broker.bogus in ") && e.ends_with("line 2"),
            "{e}"
        );
        let e = err("\n[brokr]\n", &[]);
        assert!(
            e.starts_with("unknown setting brokr in ") && e.contains("line 2"),
            "{e}"
        );
        let e = err("level = \"debug\"\n", &[]);
        assert!(
            e.starts_with("unknown setting level in ") && e.contains("[log]"),
            "{e}"
        );
        let e = err("log = \"debug\"\n", &[]);
        assert!(e.contains("expected a [log] table"), "{e}");
        let e = err("[http\n", &[]);
        assert!(
            e.starts_with("invalid settings file ") && e.contains("line 1"),
            "{e}"
        );
        let e = err("[broker]\npersistence = \"yes\"\n", &[]);
        assert!(
            e.contains("broker.persistence")
                && e.contains("expected true or false, found a string"),
            "{e}"
        );
        let e = err("", &[("FLOWD_BROKER_MAX_KEEPALIVE", "soon")]);
        assert_eq!(e, "invalid setting broker.max_keepalive from environment variable FLOWD_BROKER_MAX_KEEPALIVE: \"soon\" is not a whole number from 0 to 65535");
        let e = err("", &[("FLOWD_LOG_LEVEL", "loud")]);
        assert!(
            e.contains(
                "log.level from environment variable FLOWD_LOG_LEVEL: \"loud\" is not a log level"
            ),
            "{e}"
        );
        let e = err("[context]\nstorage = \"disk\"\n", &[]);
        assert!(
            e.contains("context.storage in") && e.contains("\"disk\" is not a context storage"),
            "{e}"
        );
        let e = err("[context]\nflush_interval = 0\n", &[]);
        assert!(e.contains("context.flush_interval"), "{e}");
        let e = err("[admin]\nusers = [{ username = \"a\" }]\n", &[]);
        assert!(
            e.contains("admin.users") && e.contains("needs a username and a password"),
            "{e}"
        );
    }

    #[test]
    fn admin_users_from_every_source() {
        let hash = "$2b$04$BYyoMepRzYLJh7pLrvE2UuiX1QkF.2q0rAoFfY43dWwb9g1juX96a";
        let file = format!("[admin]\nusers = [{{ username = \"admin\", password = \"{hash}\", permissions = \"read\" }}]\n");
        let s = resolve_with(&file, &SettingFlags::default(), &[]).unwrap();
        assert_eq!(s.admin_users.len(), 1);
        assert_eq!(
            s.admin_users[0].permissions,
            flowd_editor::auth::Permission::Read
        );
        let vars = &[("FLOWD_ADMIN_USERS", "a:$2b$04$x,b:$2b$04$y:read")];
        let s = resolve_with(&file, &SettingFlags::default(), vars).unwrap();
        assert_eq!(s.admin_users.len(), 2);
        assert_eq!(s.admin_users[1].username, "b");
        assert_eq!(s.admin_users[1].password, "$2b$04$y");
        assert!(parse_admin_user("nobody").is_err());
    }

    #[test]
    fn the_example_file_holds_the_defaults() {
        let text = include_str!("../examples/flowd.toml");
        let e = resolve_with(text, &SettingFlags::default(), &[]).unwrap();
        let d = resolve_with("", &SettingFlags::default(), &[]).unwrap();
        assert_eq!(
            (e.http, e.editor, e.insecure),
            (d.http, d.editor, d.insecure)
        );
        assert_eq!(
            (e.broker.enabled, e.broker.addr, e.broker.persistence),
            (d.broker.enabled, d.broker.addr, d.broker.persistence)
        );
        assert_eq!(
            (
                e.broker.max_connections,
                e.broker.max_packet_size,
                e.broker.max_queued_messages
            ),
            (Some(100_000), Some(16 * 1024 * 1024), Some(1000))
        );
        assert!(e.admin_users.is_empty() && e.credential_secret.is_none());
        assert_eq!(e.log_level, d.log_level);
        assert_eq!(e.context.storage, d.context.storage);
        assert_eq!(e.context.flush_interval, d.context.flush_interval);
        // Every key of the file is a documented setting, and every setting is in the file.
        for s in SETTINGS {
            let name = s.key.split('.').nth(1).unwrap_or_default();
            assert!(
                text.contains(&format!("{name} = ")),
                "examples/flowd.toml lacks {}",
                s.key
            );
        }
    }

    #[test]
    fn the_readme_example_file_is_valid() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").expect("a toml block") + 8;
        let len = readme[start..].find("```").expect("its end");
        let s = resolve_with(&readme[start..start + len], &SettingFlags::default(), &[]).unwrap();
        assert_eq!(s.context.storage, ContextStorage::File);
        assert_eq!(s.admin_users.len(), 1);
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../README.md");
        for s in SETTINGS {
            let flag = s.flag.split(' ').next().unwrap_or(s.flag);
            for needle in [s.key, s.env, flag] {
                assert!(readme.contains(needle), "README lacks {needle}");
            }
        }
        let help = help_table();
        assert!(SETTINGS.iter().all(|s| help.contains(s.env)));
    }
}

//! Setting values: their types, read from text (environment variables,
//! flags) or from flowd.toml values, with messages that say what was expected.

use super::file::Raw;
use flowd_editor::auth::{AdminUser, Permission};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// More.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The tracing filter directive.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "off" => LogLevel::Off,
            "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => {
                return Err(format!(
                    "\"{s}\" is not a log level (off, error, warn, info, debug, trace)"
                ))
            }
        })
    }
}

/// Where context is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextStorage {
    /// In memory: lost on restart (Node-RED's default).
    Memory,
    /// In memory and on disk under DIR/context (Node-RED's `localfilesystem`).
    File,
}

impl FromStr for ContextStorage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "memory" => Ok(ContextStorage::Memory),
            "file" | "localfilesystem" => Ok(ContextStorage::File),
            _ => Err(format!("\"{s}\" is not a context storage (memory, file)")),
        }
    }
}

/// A type a setting can have: read from text (environment) or from the file.
pub(crate) trait SettingValue: Sized {
    /// What the file should hold, for messages.
    const EXPECTED: &'static str = "a string";
    fn from_text(s: &str) -> Result<Self, String>;
    fn from_file(v: &Raw) -> Result<Self, String> {
        match v {
            Raw::Str(s) => Self::from_text(s),
            other => Err(format!(
                "expected {}, found {}",
                Self::EXPECTED,
                other.type_name()
            )),
        }
    }
}

impl SettingValue for SocketAddr {
    fn from_text(s: &str) -> Result<Self, String> {
        s.trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not an address like 127.0.0.1:1883"))
    }
}

impl SettingValue for String {
    fn from_text(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
}

impl SettingValue for PathBuf {
    fn from_text(s: &str) -> Result<Self, String> {
        Ok(PathBuf::from(s))
    }
}

impl SettingValue for LogLevel {
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl SettingValue for ContextStorage {
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl SettingValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_text(s: &str) -> Result<Self, String> {
        parse_bool(s)
    }
    fn from_file(v: &Raw) -> Result<Self, String> {
        match v {
            Raw::Bool(b) => Ok(*b),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_name()
            )),
        }
    }
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn from_text(s: &str) -> Result<Self, String> {
                s.trim().parse().map_err(|_| {
                    format!("\"{s}\" is not a whole number from {} to {}", <$t>::MIN, <$t>::MAX)
                })
            }
            fn from_file(v: &Raw) -> Result<Self, String> {
                match v {
                    Raw::Int(n) => <$t>::try_from(*n).map_err(|_| {
                        format!("{n} is not a whole number from {} to {}", <$t>::MIN, <$t>::MAX)
                    }),
                    other => Err(format!("expected a whole number, found {}", other.type_name())),
                }
            }
        }
    )*};
}
whole_number!(u16, u32, u64, usize);

/// `true`/`false` (also 1/0, yes/no, on/off) for environment variables and flags.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("\"{s}\" is not true or false")),
    }
}

/// Parses an address for a flag.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_text(s)
}

/// One admin user written `USER:HASH[:PERMISSIONS]` (a flag or an entry of FLOWD_ADMIN_USERS).
pub fn parse_admin_user(s: &str) -> Result<AdminUser, String> {
    let mut parts = s.trim().splitn(3, ':');
    let username = parts.next().unwrap_or_default();
    let password = parts.next().unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Err(format!(
            "\"{s}\" is not USER:BCRYPT-HASH[:read] (e.g. admin:$2b$10$...)"
        ));
    }
    let permissions = parse_permission(parts.next().unwrap_or("*"))?;
    Ok(AdminUser {
        username: username.to_string(),
        password: password.to_string(),
        permissions,
    })
}

pub(crate) fn parse_permission(s: &str) -> Result<Permission, String> {
    match s {
        "*" => Ok(Permission::All),
        "read" => Ok(Permission::Read),
        _ => Err(format!("\"{s}\" is not a permission (\"*\" or \"read\")")),
    }
}

impl SettingValue for Vec<AdminUser> {
    const EXPECTED: &'static str = "an array of { username, password, permissions } tables";
    fn from_text(s: &str) -> Result<Self, String> {
        s.split(',')
            .filter(|u| !u.trim().is_empty())
            .map(parse_admin_user)
            .collect()
    }
    fn from_file(v: &Raw) -> Result<Self, String> {
        let Raw::Array(items) = v else {
            return Err(format!(
                "expected {}, found {}",
                Self::EXPECTED,
                v.type_name()
            ));
        };
        let mut users = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Raw::Table(fields) = item else {
                return Err(format!(
                    "entry {i}: expected a {{ username, password, permissions }} table"
                ));
            };
            let mut user = (None, None, Permission::All);
            for (k, v) in fields {
                let text = match v {
                    Raw::Str(s) => s.clone(),
                    other => {
                        return Err(format!(
                            "entry {i}, {k}: expected a string, found {}",
                            other.type_name()
                        ))
                    }
                };
                match k.as_str() {
                    "username" => user.0 = Some(text),
                    "password" => user.1 = Some(text),
                    "permissions" => {
                        user.2 = parse_permission(&text).map_err(|e| format!("entry {i}: {e}"))?
                    }
                    other => return Err(format!("entry {i}: unknown key \"{other}\"")),
                }
            }
            match user {
                (Some(username), Some(password), permissions) => users.push(AdminUser {
                    username,
                    password,
                    permissions,
                }),
                _ => return Err(format!("entry {i}: needs a username and a password")),
            }
        }
        Ok(users)
    }
}

impl fmt::Display for ContextStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextStorage::Memory => "memory",
            ContextStorage::File => "file",
        })
    }
}

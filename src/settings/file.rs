//! flowd.toml read with spans, so every error names its line.

use super::SETTINGS;
use anyhow::{anyhow, bail, Context};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// The tables of flowd.toml, for messages.
const TABLES: &str = "[http], [broker], [credentials], [admin], [log], [context]";

/// A value of the settings file.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Raw>),
    Table(Vec<(String, Raw)>),
    Other(&'static str),
}

impl Raw {
    fn from_de(v: &DeValue<'_>) -> Raw {
        match v {
            DeValue::String(s) => Raw::Str(s.to_string()),
            DeValue::Integer(i) => {
                let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
                match i64::from_str_radix(&digits, i.radix()) {
                    Ok(n) => Raw::Int(n),
                    Err(_) => Raw::Other("out-of-range integer"),
                }
            }
            DeValue::Boolean(b) => Raw::Bool(*b),
            DeValue::Array(a) => Raw::Array(a.iter().map(|x| Raw::from_de(x.get_ref())).collect()),
            DeValue::Table(t) => Raw::Table(
                t.iter()
                    .map(|(k, v)| (k.get_ref().to_string(), Raw::from_de(v.get_ref())))
                    .collect(),
            ),
            DeValue::Float(_) => Raw::Other("float"),
            DeValue::Datetime(_) => Raw::Other("datetime"),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Raw::Str(_) => "a string",
            Raw::Int(_) => "an integer",
            Raw::Bool(_) => "a boolean",
            Raw::Array(_) => "an array",
            Raw::Table(_) => "a table",
            Raw::Other(t) => t,
        }
    }
}

/// The values of a settings file, by key, with their line.
#[derive(Debug, Default)]
pub(crate) struct SettingsFile {
    pub(crate) path: PathBuf,
    pub(crate) values: HashMap<String, (Raw, usize)>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl SettingsFile {
    /// Reads `path` (absent: no values). Unknown keys and syntax errors name their line.
    pub(crate) fn load(path: &Path) -> anyhow::Result<SettingsFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SettingsFile {
                    path: path.to_path_buf(),
                    values: HashMap::new(),
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> anyhow::Result<SettingsFile> {
        let root = DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            anyhow!(
                "invalid settings file {} line {line}: {}",
                path.display(),
                e.message().trim()
            )
        })?;
        let mut values = HashMap::new();
        for (table, v) in root.get_ref().iter() {
            let line = line_of(text, table.span().start);
            let table = table.get_ref();
            let known = SETTINGS
                .iter()
                .any(|s| s.key.split('.').next() == Some(table));
            if !known {
                bail!(
                    "unknown setting {table} in {} line {line} (settings live in the tables {TABLES})",
                    path.display()
                );
            }
            let DeValue::Table(entries) = v.get_ref() else {
                bail!(
                    "invalid setting {table} in {} line {line}: expected a [{table}] table",
                    path.display()
                );
            };
            for (k, v) in entries.iter() {
                let key = format!("{table}.{}", k.get_ref());
                let line = line_of(text, k.span().start);
                if !SETTINGS.iter().any(|s| s.key == key) {
                    bail!("unknown setting {key} in {} line {line}", path.display());
                }
                values.insert(key, (Raw::from_de(v.get_ref()), line));
            }
        }
        Ok(SettingsFile {
            path: path.to_path_buf(),
            values,
        })
    }
}

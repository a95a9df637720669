//! [`CredentialStore`]: node credentials in `flows_cred.json`, encrypted the
//! way Node-RED does it, so a Node-RED user directory's credentials can be
//! read with its `credentialSecret`: `{"$": "<IV, 32 hex chars><base64>"}`,
//! AES-256-CTR with a random IV, the key SHA-256 of the secret, the plaintext
//! the JSON text of `{node id: {field: value}}`. Credentials never appear in
//! flows.json, the logs or the admin API.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Credentials by node id.
pub type Credentials = HashMap<String, Map<String, Json>>;

/// Why credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not what flowd or Node-RED writes, or the secret is wrong.
    #[error("{path}: cannot decrypt the credentials (wrong credential secret?): {reason}")]
    Decrypt {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// `flows_cred.json` and the secret that encrypts it.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    file: PathBuf,
    key: Option<[u8; 32]>,
}

fn key_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl CredentialStore {
    /// A store encrypting with `secret` (`None`: plain JSON, Node-RED's `credentialSecret: false`).
    pub fn new(file: impl Into<PathBuf>, secret: Option<&str>) -> Self {
        CredentialStore {
            file: file.into(),
            key: secret.map(key_of),
        }
    }

    /// The secret of a user directory: `.config.runtime.json`'s
    /// `_credentialSecret`, generated (32 random bytes as hex) and saved when absent.
    pub fn user_dir_secret(dir: &Path) -> Result<String, CredentialError> {
        let path = dir.join(".config.runtime.json");
        let io = |source| CredentialError::Io {
            path: path.clone(),
            source,
        };
        let mut config: Map<String, Json> = match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(io(e)),
        };
        if let Some(s) = config.get("_credentialSecret").and_then(Json::as_str) {
            return Ok(s.to_string());
        }
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", fastrand::u8(..)))
            .collect();
        config.insert("_credentialSecret".into(), Json::String(secret.clone()));
        write_private(
            &path,
            serde_json::to_string_pretty(&config)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(io)?;
        Ok(secret)
    }

    /// Reads the credentials (none when the file does not exist).
    pub fn load(&self) -> Result<Credentials, CredentialError> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::new()),
            Err(source) => {
                return Err(CredentialError::Io {
                    path: self.file.clone(),
                    source,
                })
            }
        };
        let fail = |reason: String| CredentialError::Decrypt {
            path: self.file.clone(),
            reason,
        };
        let doc: Json = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let plain: Json = match (doc.get("$").and_then(Json::as_str), self.key) {
            (Some(enc), Some(key)) => {
                let iv_hex = enc.get(..32).ok_or_else(|| fail("too short".into()))?;
                let iv: Vec<u8> = (0..16)
                    .map(|i| u8::from_str_radix(&iv_hex[2 * i..2 * i + 2], 16))
                    .collect::<Result<_, _>>()
                    .map_err(|e| fail(e.to_string()))?;
                let mut data = base64::engine::general_purpose::STANDARD
                    .decode(&enc[32..])
                    .map_err(|e| fail(e.to_string()))?;
                let mut cipher = Aes256Ctr::new(&key.into(), iv.as_slice().into());
                cipher.apply_keystream(&mut data);
                serde_json::from_slice(&data).map_err(|e| fail(e.to_string()))?
            }
            (Some(_), None) => {
                return Err(fail("the file is encrypted but no secret is set".into()))
            }
            (None, _) => doc,
        };
        let map = plain.as_object().cloned().unwrap_or_default();
        Ok(map
            .into_iter()
            .filter_map(|(id, v)| v.as_object().cloned().map(|o| (id, o)))
            .collect())
    }

    /// Writes the credentials atomically (owner-readable only).
    pub fn save(&self, creds: &Credentials) -> Result<(), CredentialError> {
        let map: Map<String, Json> = creds
            .iter()
            .map(|(k, v)| (k.clone(), Json::Object(v.clone())))
            .collect();
        let plain = serde_json::to_string(&Json::Object(map)).unwrap_or_default();
        let doc = match self.key {
            Some(key) => {
                let iv: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
                let mut data = plain.into_bytes();
                let mut cipher = Aes256Ctr::new(&key.into(), &iv.into());
                cipher.apply_keystream(&mut data);
                let hex: String = iv.iter().map(|b| format!("{b:02x}")).collect();
                serde_json::json!({"$": format!("{hex}{}", base64::engine::general_purpose::STANDARD.encode(data))})
            }
            None => serde_json::from_str(&plain).unwrap_or_default(),
        };
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        write_private(&self.file, text.as_bytes()).map_err(|source| CredentialError::Io {
            path: self.file.clone(),
            source,
        })
    }
}

/// Writes `bytes` to `path` atomically with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "flowd-cred-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_what_node_red_writes() {
        // Written by Node.js with Node-RED's algorithm and the secret "test-secret".
        let d = dir();
        let f = d.join("flows_cred.json");
        std::fs::write(&f, r#"{"$":"000102030405060708090a0b0c0d0e0faywEOpMyCcBdQYdEJ2QBUoAtH7c0EqfGqMIkc6LUHOQ8Y74EXtRv+al0n6/Mdb0J"}"#).unwrap();
        let creds = CredentialStore::new(&f, Some("test-secret"))
            .load()
            .unwrap();
        assert_eq!(creds["brk1"]["user"], "alice");
        assert_eq!(creds["brk1"]["password"], "s3cr3t é");
        let wrong = CredentialStore::new(&f, Some("other")).load();
        assert!(matches!(wrong, Err(CredentialError::Decrypt { .. })));
    }

    #[test]
    fn round_trip_encrypted_and_plain() {
        let d = dir();
        let mut creds = Credentials::new();
        let mut c = Map::new();
        c.insert("password".into(), Json::String("hunter2".into()));
        creds.insert("n1".into(), c);
        let enc = CredentialStore::new(d.join("a.json"), Some("s"));
        enc.save(&creds).unwrap();
        let raw = std::fs::read_to_string(d.join("a.json")).unwrap();
        assert!(!raw.contains("hunter2"), "{raw}");
        assert_eq!(enc.load().unwrap(), creds);
        let plain = CredentialStore::new(d.join("b.json"), None);
        plain.save(&creds).unwrap();
        assert_eq!(plain.load().unwrap(), creds);
        let secret = CredentialStore::user_dir_secret(&d).unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(
            CredentialStore::user_dir_secret(&d).unwrap(),
            secret,
            "generated once, then kept"
        );
    }
}

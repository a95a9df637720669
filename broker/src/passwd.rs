//! Mosquitto password files (`mosquitto_passwd`): one `user:hash` per line,
//! hash `$7$iterations$salt$hash` (PBKDF2-HMAC-SHA512, Mosquitto 2) or
//! `$6$salt$hash` (SHA-512 of password then salt, Mosquitto 1.x); salt and
//! hash in standard base64.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha512};

#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("cannot read password file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("password file line {line}: {message}")]
    Syntax { line: usize, message: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hash {
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

#[derive(Debug, Default)]
pub struct PasswordFile {
    users: HashMap<String, Hash>,
}

impl PasswordFile {
    pub fn load(path: &Path) -> Result<PasswordFile, PasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswdError::Io {
            path: path.display().to_string(),
            source,
        })?;
        PasswordFile::parse(&text)
    }

    pub fn parse(text: &str) -> Result<PasswordFile, PasswdError> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |message| PasswdError::Syntax {
                line: i + 1,
                message,
            };
            let (user, hash) = line.split_once(':').ok_or(syntax("expected user:hash"))?;
            users.insert(
                user.to_owned(),
                parse_hash(hash).ok_or(syntax("unsupported or malformed hash"))?,
            );
        }
        Ok(PasswordFile { users })
    }

    /// Whether `password` is `user`'s password.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(Hash::Sha512 { salt, hash }) => {
                let mut d = Sha512::new();
                d.update(password);
                d.update(salt);
                constant_time_eq(&d.finalize(), hash)
            }
            Some(Hash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            }) => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                constant_time_eq(&out, hash)
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn parse_hash(s: &str) -> Option<Hash> {
    let parts: Vec<&str> = s.split('$').collect();
    match parts.as_slice() {
        ["", "6", salt, hash] => Some(Hash::Sha512 {
            salt: STANDARD.decode(salt).ok()?,
            hash: STANDARD.decode(hash).ok()?,
        }),
        ["", "7", iterations, salt, hash] => {
            let hash = STANDARD.decode(hash).ok()?;
            if hash.is_empty() || hash.len() > 64 {
                return None;
            }
            Some(Hash::Pbkdf2Sha512 {
                iterations: iterations.parse().ok().filter(|&n| n > 0)?,
                salt: STANDARD.decode(salt).ok()?,
                hash,
            })
        }
        _ => None,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `mosquitto_passwd -b` (Mosquitto 2.0.11).
    const FILE: &str = "\
alice:$7$101$oezicVClSxCAz5b0$YjQvzfm8mNhmVVWYW4L4NS76WanOFn0aPhYyG/Sq3kYGoy2MLQpjzVm9IL2P5eGwi0q3xl+KZiFi5JhQP2Ncsw==
bob:$7$101$WbbmwpHbx3JJtkax$LGbJRxwxOLHuqe86Uo8isvvH0OvVeVWA1b613MYD2Z0g0TxL12n92tKK/Pk5/t/i/f5vi46YjurTI3fc7UY49w==
";

    #[test]
    fn verifies_mosquitto_passwd_hashes() {
        let f = PasswordFile::parse(FILE).unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.verify("alice", b"secret"));
        assert!(!f.verify("alice", b"Secret"));
        assert!(f.verify("bob", b"p@ss w0rd"));
        assert!(!f.verify("carol", b"secret"));
    }

    #[test]
    fn verifies_sha512_hashes() {
        let salt = b"0123456789ab";
        let mut d = Sha512::new();
        d.update(b"pw");
        d.update(salt);
        let line = format!(
            "u:$6${}${}",
            STANDARD.encode(salt),
            STANDARD.encode(d.finalize())
        );
        let f = PasswordFile::parse(&line).unwrap();
        assert!(f.verify("u", b"pw"));
        assert!(!f.verify("u", b"px"));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        assert!(matches!(
            PasswordFile::parse("ok:$6$AA==$AA==\nbad"),
            Err(PasswdError::Syntax { line: 2, .. })
        ));
        assert!(matches!(
            PasswordFile::parse("u:plaintext"),
            Err(PasswdError::Syntax { line: 1, .. })
        ));
    }
}

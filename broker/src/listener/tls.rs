//! TLS with rustls: the certificate chain and private key from PEM files.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no private key in {0}")]
    NoKey(String),
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// Builds the acceptor for `cert_file` (PEM chain) and `key_file` (PEM key).
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let open = |p: &Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|source| TlsError::Io {
                path: p.display().to_string(),
                source,
            })
    };
    let certs = rustls_pemfile::certs(&mut open(cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Io {
            path: cert_file.display().to_string(),
            source,
        })?;
    let key = rustls_pemfile::private_key(&mut open(key_file)?)
        .map_err(|source| TlsError::Io {
            path: key_file.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(key_file.display().to_string()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

//! `tls-config` config node (the TLS settings an `mqtt-broker` refers to with
//! `tls`) and the rustls client configuration built from it.
//!
//! Supported: a CA certificate (`ca`), a client certificate and key
//! (`cert`, `key`), PEM files or pasted into the editor (credentials
//! `cadata`, `certdata`, `keydata`), and `verifyservercert` (default on).

use flowd_engine::node::{BuildContext, BuiltNode, ConfigNode, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use serde_json::{json, Value as Json};
use std::sync::Arc;
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The Node-RED type name.
pub const TLS_CONFIG: &str = "tls-config";

/// The `tls-config` node type.
pub struct TlsConfigType;

/// A built `tls-config` node (its settings are read by the broker node).
pub struct TlsConfig;

impl ConfigNode for TlsConfig {}

impl NodeType for TlsConfigType {
    fn type_name(&self) -> &'static str {
        TLS_CONFIG
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new(TLS_CONFIG, "config", "node-red/tls", "#d8bfd8", 0, 0)
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .prop(Prop::new("ca", "CA Certificate (file)", Kind::Text, json!("")))
            .prop(Prop::new("cert", "Certificate (file)", Kind::Text, json!("")))
            .prop(Prop::new("key", "Private Key (file)", Kind::Text, json!("")))
            .prop(Prop::new(
                "verifyservercert",
                "Verify server certificate",
                Kind::Bool,
                json!(true),
            ))
            .help("TLS settings for MQTT connections: CA certificate, client certificate and key (PEM files).")
    }

    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::config(Arc::new(TlsConfig)))
    }
}

fn text(v: Option<&Json>) -> String {
    v.and_then(Json::as_str).unwrap_or("").to_string()
}

/// Accepts any server certificate (`verifyservercert: false`); handshake
/// signatures are still checked.
#[derive(Debug)]
struct AnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// PEM text of `field` (a file path) or of credential `data_field` (pasted text).
fn pem_of(
    cx: &mut BuildContext<'_>,
    tls_id: &str,
    node: &serde_json::Map<String, Json>,
    field: &str,
    data_field: &str,
) -> Option<Option<Vec<u8>>> {
    let path = text(node.get(field));
    if !path.is_empty() {
        return match std::fs::read(&path) {
            Ok(b) => Some(Some(b)),
            Err(e) => {
                cx.error("tls", format!("cannot read {field} file \"{path}\": {e}"));
                None
            }
        };
    }
    let data = cx
        .flow_set()
        .credentials
        .get(tls_id)
        .and_then(|c| c.get(data_field))
        .and_then(Json::as_str)
        .filter(|d| !d.is_empty())
        .map(|d| d.as_bytes().to_vec());
    Some(data)
}

/// Where Linux distributions (and `SSL_CERT_FILE`) keep the trusted roots.
const SYSTEM_ROOT_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trusted roots (empty when none can be read).
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let env = std::env::var("SSL_CERT_FILE").ok();
    for path in env
        .iter()
        .map(String::as_str)
        .chain(SYSTEM_ROOT_FILES.iter().copied())
    {
        if let Ok(pem) = std::fs::read(path) {
            roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).flatten());
            if !roots.is_empty() {
                break;
            }
        }
    }
    roots
}

/// The rustls settings for a broker with `usetls`: from its `tls-config`
/// node `tls_id` when set (CA, client certificate and key, verification as
/// that node says), else system roots, verified only with the broker's
/// `verifyservercert` (as Node-RED).
pub fn client_config(
    cx: &mut BuildContext<'_>,
    tls_id: &str,
    verify_without_node: bool,
) -> Option<Arc<ClientConfig>> {
    let (verify, ca, client_auth) = if tls_id.is_empty() {
        (verify_without_node, None, None)
    } else {
        let _node: Arc<TlsConfig> = cx.config_node("tls", TLS_CONFIG)?;
        let raw = cx.flow_set().get(tls_id)?.raw.clone();
        let verify = !matches!(raw.get("verifyservercert"), Some(Json::Bool(false)))
            && text(raw.get("verifyservercert")) != "false";
        let ca = pem_of(cx, tls_id, &raw, "ca", "cadata");
        let cert = pem_of(cx, tls_id, &raw, "cert", "certdata");
        let key = pem_of(cx, tls_id, &raw, "key", "keydata");
        let (ca, cert, key) = (ca?, cert?, key?);
        let client_auth = match (cert, key) {
            (Some(c), Some(k)) => {
                let certs: Result<Vec<CertificateDer<'static>>, _> =
                    CertificateDer::pem_slice_iter(&c).collect();
                match (certs, PrivateKeyDer::from_pem_slice(&k)) {
                    (Ok(certs), Ok(key)) if !certs.is_empty() => Some((certs, key)),
                    _ => {
                        cx.error("tls", "the client certificate or key is not valid PEM");
                        return None;
                    }
                }
            }
            (None, None) => None,
            _ => {
                cx.error("tls", "a client certificate needs both cert and key");
                return None;
            }
        };
        (verify, ca, client_auth)
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => {
            cx.error("tls", format!("TLS setup failed: {e}"));
            return None;
        }
    };
    let builder = if verify {
        let roots = match ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    match cert.map(|c| roots.add(c)) {
                        Ok(Ok(())) => {}
                        _ => {
                            cx.error("tls", "the CA certificate is not a valid PEM certificate");
                            return None;
                        }
                    }
                }
                if roots.is_empty() {
                    cx.error("tls", "the CA certificate file holds no certificate");
                    return None;
                }
                roots
            }
            None => system_roots(),
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
    };
    let config = match client_auth {
        Some((certs, key)) => match builder.with_client_auth_cert(certs, key) {
            Ok(c) => c,
            Err(e) => {
                cx.error("tls", format!("invalid client certificate or key: {e}"));
                return None;
            }
        },
        None => builder.with_no_client_auth(),
    };
    Some(Arc::new(config))
}

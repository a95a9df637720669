//! `tls-config` config node (the TLS settings an `mqtt-broker` refers to with
//! `tls`) and the rustls client configuration built from it.
//!
//! Supported: a CA certificate file (`ca`), an optional client certificate
//! and key (`cert`, `key`), PEM encoded, with server certificate
//! verification on. Certificates pasted into the editor (credentials
//! `cadata`, `certdata`, `keydata`) are accepted too.

use flowd_engine::node::{BuildContext, BuiltNode, ConfigNode, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use serde_json::{json, Value as Json};
use std::sync::Arc;

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

/// Reads a PEM file named in `field` of the TLS node `node`.
fn read_pem(
    cx: &mut BuildContext<'_>,
    node: &serde_json::Map<String, Json>,
    field: &str,
) -> Option<Option<Vec<u8>>> {
    let path = text(node.get(field));
    if path.is_empty() {
        return Some(None);
    }
    match std::fs::read(&path) {
        Ok(b) => Some(Some(b)),
        Err(e) => {
            cx.error("tls", format!("cannot read {field} file \"{path}\": {e}"));
            None
        }
    }
}

/// The rustls settings for a broker with `usetls`, from its `tls-config` node `tls_id`.
pub fn client_config(
    cx: &mut BuildContext<'_>,
    tls_id: &str,
    _verify_without_node: bool,
) -> Option<rumqttc::TlsConfiguration> {
    if tls_id.is_empty() {
        cx.error(
            "tls",
            "TLS needs a tls-config node with a CA certificate (system roots are not supported yet)",
        );
        return None;
    }
    let _node: Arc<TlsConfig> = cx.config_node("tls", TLS_CONFIG)?;
    let raw = cx.flow_set().get(tls_id)?.raw.clone();
    let verify = !matches!(raw.get("verifyservercert"), Some(Json::Bool(false)))
        && text(raw.get("verifyservercert")) != "false";
    if !verify {
        cx.error(
            "tls",
            "turning server certificate verification off is not supported yet",
        );
        return None;
    }
    let ca = read_pem(cx, &raw, "ca")?;
    let cert = read_pem(cx, &raw, "cert")?;
    let key = read_pem(cx, &raw, "key")?;
    let Some(ca) = ca else {
        cx.error("tls", "the tls-config node has no CA certificate file (ca)");
        return None;
    };
    let client_auth = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            cx.error("tls", "a client certificate needs both cert and key files");
            return None;
        }
    };
    Some(rumqttc::TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    })
}

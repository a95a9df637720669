//! The node registry: Node-RED type string -> node type (constructor and
//! editor descriptor). Each node type is defined once, in its own file; the
//! editor's palette and edit forms are generated from [`NodeDescriptor`]s.

use crate::node::NodeType;
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// How the editor edits one property.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PropertyKind {
    /// Free text.
    Text,
    /// Multi-line text (templates).
    Multiline,
    /// A number.
    Number,
    /// A checkbox.
    Bool,
    /// One of fixed options.
    Select {
        /// (value, label) pairs.
        options: Vec<(String, String)>,
    },
    /// Node-RED's typed input: a value plus its type (`str`, `num`, `msg`, ...),
    /// the type stored in `type_field`.
    Typed {
        /// Allowed types.
        types: Vec<String>,
        /// Property holding the type.
        type_field: String,
    },
    /// A reference to a config node of `node_type`.
    Config {
        /// Config node type.
        node_type: String,
    },
    /// A structured value edited by a dedicated widget (rules, props, scope).
    Structured {
        /// Widget name.
        widget: String,
    },
    /// A password-like secret (credentials).
    Password,
}

/// One property of a node type.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PropertyDescriptor {
    /// Key in flows.json.
    pub name: String,
    /// Label in the edit form.
    pub label: String,
    /// Editor widget.
    #[serde(flatten)]
    pub kind: PropertyKind,
    /// Value a new node gets.
    pub default: Json,
    /// Must not be empty.
    pub required: bool,
}

impl PropertyDescriptor {
    /// A property with a widget and default.
    pub fn new(name: &str, label: &str, kind: PropertyKind, default: Json) -> Self {
        PropertyDescriptor {
            name: name.to_string(),
            label: label.to_string(),
            kind,
            default,
            required: false,
        }
    }

    /// Marks the property required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// How the editor draws and edits a node type.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeDescriptor {
    /// Node-RED type string.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Palette category (`common`, `function`, `parser`, `network`, or `config`).
    pub category: String,
    /// Node-RED's node-set id (`node-red/rbe`), for `GET /nodes`.
    pub set: String,
    /// Fill colour.
    pub color: String,
    /// Number of inputs (0 or 1).
    pub inputs: u8,
    /// Number of outputs (the default; switch derives it from its rules).
    pub outputs: u8,
    /// Label in the palette.
    pub palette_label: String,
    /// Icon name.
    pub icon: String,
    /// Properties shown in the edit form, in order.
    pub properties: Vec<PropertyDescriptor>,
    /// Credential fields (stored outside flows.json).
    pub credentials: Vec<PropertyDescriptor>,
    /// Help text (markdown).
    pub help: String,
}

impl NodeDescriptor {
    /// A descriptor with the basics; add properties with [`NodeDescriptor::prop`].
    pub fn new(
        type_name: &str,
        category: &str,
        set: &str,
        color: &str,
        inputs: u8,
        outputs: u8,
    ) -> Self {
        NodeDescriptor {
            type_name: type_name.to_string(),
            category: category.to_string(),
            set: set.to_string(),
            color: color.to_string(),
            inputs,
            outputs,
            palette_label: type_name.to_string(),
            icon: String::new(),
            properties: Vec::new(),
            credentials: Vec::new(),
            help: String::new(),
        }
    }

    /// Adds a property.
    pub fn prop(mut self, p: PropertyDescriptor) -> Self {
        self.properties.push(p);
        self
    }

    /// Adds a credential field.
    pub fn credential(mut self, p: PropertyDescriptor) -> Self {
        self.credentials.push(p);
        self
    }

    /// Sets the palette label.
    pub fn label(mut self, l: &str) -> Self {
        self.palette_label = l.to_string();
        self
    }

    /// Sets the icon.
    pub fn icon(mut self, i: &str) -> Self {
        self.icon = i.to_string();
        self
    }

    /// Sets the help text.
    pub fn help(mut self, h: &str) -> Self {
        self.help = h.trim().to_string();
        self
    }
}

/// Maps type strings to node types.
#[derive(Default)]
pub struct Registry {
    types: BTreeMap<&'static str, &'static dyn NodeType>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a node type (a later registration of the same name replaces it).
    pub fn register(&mut self, t: &'static dyn NodeType) {
        self.types.insert(t.type_name(), t);
    }

    /// The node type named `name`.
    pub fn get(&self, name: &str) -> Option<&'static dyn NodeType> {
        self.types.get(name).copied()
    }

    /// All node types, by name.
    pub fn iter(&self) -> impl Iterator<Item = &'static dyn NodeType> + '_ {
        self.types.values().copied()
    }
}

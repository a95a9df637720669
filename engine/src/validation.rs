//! Validation errors: every problem in a flow set, each naming the node, its
//! type, its tab and the field at fault.

use std::fmt;

/// One problem found while validating a flow set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationError {
    /// Id of the node at fault (absent for file-level errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    /// Label of its tab (or "global" for config nodes without a tab).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tab: Option<String>,
    /// The property at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ValidationError {
    /// A file-level error (not tied to a node).
    pub fn file(message: impl Into<String>) -> Self {
        ValidationError {
            node: None,
            node_type: None,
            tab: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.node {
            write!(f, "node \"{id}\"")?;
            if let Some(t) = &self.node_type {
                write!(f, " ({t})")?;
            }
            if let Some(tab) = &self.tab {
                write!(f, " on tab \"{tab}\"")?;
            }
            if let Some(field) = &self.field {
                write!(f, ", field \"{field}\"")?;
            }
            write!(f, ": ")?;
        } else if let Some(field) = &self.field {
            write!(f, "field \"{field}\": ")?;
        }
        f.write_str(&self.message)
    }
}

/// All problems found in a flow set (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates the errors.
    pub fn iter(&self) -> impl Iterator<Item = &ValidationError> {
        self.0.iter()
    }
}

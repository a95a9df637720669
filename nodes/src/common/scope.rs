//! The `scope` property shared by catch and status nodes.

use flowd_engine::node::Scope;
use serde_json::Value as Json;

/// Parses `scope`: null/absent = all nodes of the tab, an array of ids, or `"group"`.
pub fn parse_scope(v: Option<&Json>) -> Result<Scope, String> {
    match v {
        None | Some(Json::Null) => Ok(Scope::All),
        Some(Json::String(s)) if s == "group" => Ok(Scope::Group),
        Some(Json::String(s)) if s.is_empty() => Ok(Scope::All),
        Some(Json::Array(ids)) => ids
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("scope entries must be node ids, found {i}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Scope::Nodes),
        Some(other) => Err(format!(
            "expected null, \"group\" or an array of node ids, found {other}"
        )),
    }
}

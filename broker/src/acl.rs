//! Access control in Mosquitto's ACL file syntax:
//!
//! ```text
//! # topic lines before any user line apply to anonymous clients
//! topic read $SYS/#
//! user alice
//! topic readwrite sensors/#
//! topic deny sensors/secret
//! # pattern lines apply to everyone; %c = client id, %u = user name
//! pattern write devices/%c/status
//! ```
//!
//! With an ACL file, what is not granted is refused; `deny` wins over any
//! grant. Subscriptions are checked when made: a filter is allowed when a
//! readable rule covers it (and no deny rule does), and every delivery is
//! checked for read access, so a deny rule also holds behind a wildcard.

use std::collections::HashMap;
use std::path::Path;

use crate::topic;

#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("cannot read ACL file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("ACL file line {line}: {message}")]
    Syntax { line: usize, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

#[derive(Debug, Clone)]
struct Rule {
    access: Access,
    topic: String,
}

#[derive(Debug, Default)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl Acl {
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Acl::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Acl, AclError> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |message: &str| AclError::Syntax {
                line: i + 1,
                message: message.to_owned(),
            };
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(syntax("user without a name"));
                    }
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest)
                        .ok_or_else(|| syntax("topic or pattern without a topic"))?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => return Err(syntax(&format!("unknown keyword '{other}'"))),
            }
        }
        Ok(acl)
    }

    /// Visits the rules that apply to this client (patterns expanded) and
    /// decides: some rule with a wanted access hits, and no deny rule does.
    fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        wanted: impl Fn(Access) -> bool,
        hit: impl Fn(&str) -> bool,
    ) -> bool {
        let (mut granted, mut denied) = (false, false);
        let mut visit = |access: Access, topic: &str| {
            if access == Access::Deny {
                denied = denied || hit(topic);
            } else if wanted(access) && !granted {
                granted = hit(topic);
            }
        };
        let own = match username {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or_default(),
            None => self.anonymous.as_slice(),
        };
        for r in own {
            visit(r.access, &r.topic);
        }
        for p in &self.patterns {
            if p.topic.contains("%u") && username.is_none() {
                continue;
            }
            if p.topic.contains('%') {
                let topic = p
                    .topic
                    .replace("%c", client_id)
                    .replace("%u", username.unwrap_or(""));
                visit(p.access, &topic);
            } else {
                visit(p.access, &p.topic);
            }
        }
        granted && !denied
    }

    /// May this client receive a message published to `topic`?
    pub fn may_read(&self, client_id: &str, username: Option<&str>, topic_name: &str) -> bool {
        let readable = |a| matches!(a, Access::Read | Access::ReadWrite);
        self.decide(client_id, username, readable, |rule| {
            topic::matches(rule, topic_name)
        })
    }

    /// May this client publish to `topic`?
    pub fn may_write(&self, client_id: &str, username: Option<&str>, topic_name: &str) -> bool {
        let writable = |a| matches!(a, Access::Write | Access::ReadWrite);
        self.decide(client_id, username, writable, |rule| {
            topic::matches(rule, topic_name)
        })
    }

    /// May this client subscribe to `filter`?
    pub fn may_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let readable = |a| matches!(a, Access::Read | Access::ReadWrite);
        self.decide(client_id, username, readable, |rule| covers(rule, filter))
    }
}

fn parse_rule(rest: &str) -> Option<Rule> {
    let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let access = match first {
        "read" => Some(Access::Read),
        "write" => Some(Access::Write),
        "readwrite" => Some(Access::ReadWrite),
        "deny" => Some(Access::Deny),
        _ => None,
    };
    let (access, topic) = match access {
        Some(a) => (a, tail.trim()),
        None => (Access::ReadWrite, rest),
    };
    (!topic.is_empty()).then(|| Rule {
        access,
        topic: topic.to_owned(),
    })
}

/// Whether every topic `filter` can match is also matched by `rule`.
fn covers(rule: &str, filter: &str) -> bool {
    if filter.starts_with('$') && rule.starts_with(['+', '#']) {
        return false;
    }
    let mut r = rule.split('/');
    let mut f = filter.split('/');
    loop {
        match (r.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous
topic readwrite #
topic deny test/nosubscribe

user alice
topic read sensors/#
topic write cmd/alice
pattern readwrite devices/%c/#
pattern read users/%u/inbox
";

    #[test]
    fn anonymous_rules_and_deny() {
        let acl = Acl::parse(FILE).unwrap();
        assert!(acl.may_subscribe("c", None, "a/b"));
        assert!(acl.may_subscribe("c", None, "#"));
        assert!(!acl.may_subscribe("c", None, "test/nosubscribe"));
        assert!(acl.may_write("c", None, "a/b"));
        assert!(!acl.may_write("c", None, "test/nosubscribe"));
        assert!(!acl.may_subscribe("c", None, "$SYS/#"));
        assert!(acl.may_read("c", None, "a/b"));
        assert!(
            !acl.may_read("c", None, "test/nosubscribe"),
            "denied even through a # subscription"
        );
    }

    #[test]
    fn user_rules_and_patterns() {
        let acl = Acl::parse(FILE).unwrap();
        assert!(acl.may_subscribe("c1", Some("alice"), "sensors/+/temp"));
        assert!(!acl.may_write("c1", Some("alice"), "sensors/x"));
        assert!(acl.may_write("c1", Some("alice"), "cmd/alice"));
        assert!(!acl.may_subscribe("c1", Some("alice"), "#"));
        assert!(acl.may_write("c1", Some("alice"), "devices/c1/status"));
        assert!(!acl.may_write("c1", Some("alice"), "devices/c2/status"));
        assert!(acl.may_subscribe("c1", Some("alice"), "users/alice/inbox"));
        assert!(acl.may_subscribe("c1", Some("bob"), "users/bob/inbox"));
        assert!(!acl.may_subscribe("c1", Some("bob"), "users/alice/inbox"));
        assert!(!acl.may_write("c1", Some("bob"), "cmd/alice"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        match Acl::parse("user alice\nfrobnicate x\n") {
            Err(AclError::Syntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn covering() {
        assert!(covers("a/#", "a/+/c"));
        assert!(covers("a/+", "a/+"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(covers("#", "x"));
    }
}

//! Topic names and filters [MQTT-4.7]: validation, single-filter matching
//! (for retained messages and ACLs), shared subscription parsing, and the
//! subscription tree the router matches every publish against.

use std::collections::HashMap;
use std::hash::Hash;

/// Prefix of a shared subscription filter, `$share/{group}/{filter}`.
pub const SHARE_PREFIX: &str = "$share/";

/// A topic name a client may publish to: non-empty, no wildcards.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// A topic filter: `#` only as the whole last level, `+` only as a whole
/// level. Shared filters are checked by [`parse_shared`].
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if level.contains('#') && (level != "#" || !last) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// Splits `$share/group/filter` into `(group, filter)`. `Ok(None)` for a
/// plain filter, `Err(())` for a malformed shared one.
#[allow(clippy::result_unit_err)]
pub fn parse_shared(filter: &str) -> Result<Option<(&str, &str)>, ()> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return if filter == "$share" {
            Err(())
        } else {
            Ok(None)
        };
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(());
    };
    if group.is_empty() || group.contains(['+', '#']) || !valid_filter(inner) {
        return Err(());
    }
    Ok(Some((group, inner)))
}

/// Splits an already validated filter into its share group (if any) and
/// the filter the topic tree indexes.
pub fn split_shared(filter: &str) -> (Option<std::sync::Arc<str>>, &str) {
    match parse_shared(filter) {
        Ok(Some((group, inner))) => (Some(group.into()), inner),
        _ => (None, filter),
    }
}

/// Whether `filter` matches `topic`, with the rule that a leading wildcard
/// does not match a `$` topic [MQTT-4.7.2-1].
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Subscriptions indexed by filter level. `K` identifies a subscriber
/// (client and share group), `V` is what it subscribed with.
#[derive(Debug)]
pub struct TopicTree<K, V> {
    root: Node<K, V>,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    children: HashMap<Box<str>, Node<K, V>>,
    subscribers: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            subscribers: HashMap::new(),
        }
    }
}

impl<K, V> Default for TopicTree<K, V> {
    fn default() -> Self {
        TopicTree {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V> TopicTree<K, V> {
    /// Number of (filter, subscriber) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces; returns the previous value for this key and filter.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let old = node.subscribers.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes and returns the value for this key and filter, pruning
    /// nodes left empty.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let out = Self::remove_at(&mut self.root, &levels, key);
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    fn remove_at(node: &mut Node<K, V>, levels: &[&str], key: &K) -> Option<V> {
        let Some((first, rest)) = levels.split_first() else {
            return node.subscribers.remove(key);
        };
        let child = node.children.get_mut(*first)?;
        let out = Self::remove_at(child, rest, key);
        if child.children.is_empty() && child.subscribers.is_empty() {
            node.children.remove(*first);
        }
        out
    }

    /// Calls `f` for every subscription whose filter matches `topic`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&K, &V)) {
        let levels: Vec<&str> = topic.split('/').collect();
        Self::walk(&self.root, &levels, true, &mut f);
    }

    fn walk(node: &Node<K, V>, levels: &[&str], at_root: bool, f: &mut impl FnMut(&K, &V)) {
        let Some((level, rest)) = levels.split_first() else {
            node.subscribers.iter().for_each(|(k, v)| f(k, v));
            // "a/#" also matches "a" [MQTT-4.7.1-2].
            if let Some(hash) = node.children.get("#") {
                hash.subscribers.iter().for_each(|(k, v)| f(k, v));
            }
            return;
        };
        if let Some(child) = node.children.get(*level) {
            Self::walk(child, rest, false, f);
        }
        if at_root && level.starts_with('$') {
            return;
        }
        if let Some(plus) = node.children.get("+") {
            Self::walk(plus, rest, false, f);
        }
        if let Some(hash) = node.children.get("#") {
            hash.subscribers.iter().for_each(|(k, v)| f(k, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_validation() {
        for ok in ["#", "+", "a/+/b", "a/#", "/", "+/+", "/+", "a//b", "$SYS/#"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "#/a", "a+/b", "a\0"] {
            assert!(!valid_filter(bad), "{bad}");
        }
        assert!(valid_topic_name("a/b"));
        assert!(!valid_topic_name("a/+"));
        assert!(!valid_topic_name(""));
    }

    #[test]
    fn shared_filters_parse() {
        assert_eq!(parse_shared("$share/g/a/+"), Ok(Some(("g", "a/+"))));
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(parse_shared("$share/g"), Err(()));
        assert_eq!(parse_shared("$share//a"), Err(()));
        assert_eq!(parse_shared("$share/g+/a"), Err(()));
        assert_eq!(parse_shared("$share/g/"), Err(()));
    }

    #[test]
    fn single_filter_matching() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/+", "/a", true),
            ("/+", "/a", true),
            ("+", "/a", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/+/c", "a//c", true),
        ];
        for (f, t, want) in cases {
            assert_eq!(matches(f, t), want, "{f} vs {t}");
        }
    }

    fn matched(tree: &TopicTree<&'static str, u8>, topic: &str) -> Vec<(&'static str, u8)> {
        let mut out = Vec::new();
        tree.for_each_match(topic, |k, v| out.push((*k, *v)));
        out.sort();
        out
    }

    #[test]
    fn tree_matches_like_the_single_filter_matcher() {
        let filters = [
            "a/b", "a/+", "a/#", "#", "+/+", "/+", "+", "$SYS/#", "a/+/c", "/#",
        ];
        let topics = ["a/b", "a", "a/b/c", "/a", "$SYS/x", "a//c", "b", "/"];
        let mut tree = TopicTree::default();
        for (i, f) in filters.iter().enumerate() {
            tree.insert(f, *f, i as u8);
        }
        for t in topics {
            let got: Vec<&str> = matched(&tree, t).into_iter().map(|(k, _)| k).collect();
            let mut want: Vec<&str> = filters.iter().copied().filter(|f| matches(f, t)).collect();
            want.sort();
            assert_eq!(got, want, "topic {t}");
        }
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut tree = TopicTree::default();
        assert_eq!(tree.insert("a/b/c", "c1", 1), None);
        assert_eq!(tree.insert("a/b/c", "c1", 2), Some(1));
        tree.insert("a/b/c", "c2", 3);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree.remove("a/b/c", &"c1"), Some(2));
        assert_eq!(tree.remove("a/b/c", &"c1"), None);
        assert_eq!(tree.remove("a/b/c", &"c2"), Some(3));
        assert!(tree.is_empty());
        assert!(tree.root.children.is_empty());
    }
}

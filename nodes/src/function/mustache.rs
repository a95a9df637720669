//! Mustache templates rendered the way Node-RED's `template` node renders
//! them: mustache.js 4.2.0 driven by Node-RED's own context class.
//!
//! A [`MustacheTemplate`] is parsed once (at deploy) into a token tree and
//! rendered per message into one `String`. The parser reproduces mustache.js
//! exactly where it shows in the output: tag scanning with JavaScript `\s`
//! whitespace, `{{=<% %>=}}` delimiter changes, and the removal of whitespace
//! on lines that hold only section, inverted, closing, comment, partial or
//! delimiter tags ("standalone" lines). Its error messages are those of
//! mustache.js (`Unclosed tag at 12`), positions counted in UTF-16 units.
//!
//! Rendering follows mustache.js's context stack: a section pushes its value,
//! names are looked up on the innermost context first and fall back outwards;
//! the bottom of the stack is a [`RootLookup`] (the message, then Node-RED's
//! `env.`/`flow.`/`global.` fallbacks). Partials render nothing, because
//! Node-RED passes none; lambdas cannot occur since values are JSON-like.

use flowd_engine::value::path::js_property;
use flowd_engine::value::{push_js_number, Value};
use std::borrow::Cow;

/// What a JavaScript object converts to with `String()`.
const OBJECT_STRING: &str = "[object Object]";

/// A parsed template (parse once at deploy, render per message).
#[derive(Clone, Debug)]
pub struct MustacheTemplate {
    nodes: Vec<Node>,
    /// Distinct names used by variable and section tags, in order of first use ("." excluded).
    names: Vec<Box<str>>,
    /// Distinct first segments of `names`, in order of first use.
    root_names: Vec<Box<str>>,
    /// Bytes of literal text, used as the initial output capacity.
    text_len: usize,
}

/// Why a template could not be parsed or rendered. The messages are those of
/// mustache.js (positions in UTF-16 code units, as JavaScript counts them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MustacheError {
    /// A tag was opened but its closing delimiter never follows.
    #[error("Unclosed tag at {pos}")]
    UnclosedTag {
        /// Position where scanning stopped (the template's end).
        pos: usize,
    },
    /// A closing tag `{{/name}}` without a matching open section.
    #[error("Unopened section \"{name}\" at {pos}")]
    UnopenedSection {
        /// The name in the closing tag.
        name: String,
        /// Position of the closing tag.
        pos: usize,
    },
    /// A section still open at a closing tag for another name, or at the end.
    #[error("Unclosed section \"{name}\" at {pos}")]
    UnclosedSection {
        /// The name of the open section.
        name: String,
        /// Position of the mismatched closing tag, or the template's end.
        pos: usize,
    },
    /// A delimiter change `{{=...=}}` that does not give exactly two delimiters.
    #[error("Invalid tags: {tags}")]
    InvalidTags {
        /// The text between the `=` signs.
        tags: String,
    },
    /// A name was looked up on a `null` array element pushed by a section;
    /// JavaScript throws a `TypeError` there (only [`MustacheTemplate::try_render`] reports it).
    #[error("Cannot read properties of null (reading '{name}')")]
    NullContext {
        /// The name being looked up.
        name: String,
    },
}

/// Where a value found by [`RootLookup::lookup_with_source`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// A property of the message (subject to [`RenderOptions::json_escape_root_strings`]).
    Message,
    /// A fallback: `env.X`, `flow.x`/`global.x` context, or the empty string for
    /// anything else (never JSON-escaped).
    Fallback,
}

/// The bottom context (the message plus Node-RED's fallbacks).
pub trait RootLookup {
    /// Value of a (possibly dotted) name at the root: Node-RED looks the whole name up on the
    /// message first (`payload.a.b` walks properties, JS-like: `payload.arr.length`), then falls back
    /// to `env.X`, `flow.x`/`global.x` context; `None` = undefined.
    ///
    /// As in mustache.js, a name is walked only when its first `.` is not its first character
    /// (`.x` is one property name), the walk ends as undefined at a `null` or missing step, and a
    /// final `null` is a value (it renders empty). The renderer never asks for `.`.
    fn lookup(&self, name: &str) -> Option<Cow<'_, Value>>;

    /// Like [`lookup`](RootLookup::lookup), also telling whether the value is a message property
    /// or a fallback. Only called when [`RenderOptions::json_escape_root_strings`] is set, since
    /// Node-RED escapes message strings only. The default reports every value as
    /// [`RootSource::Message`].
    fn lookup_with_source(&self, name: &str) -> Option<(Cow<'_, Value>, RootSource)> {
        self.lookup(name).map(|v| (v, RootSource::Message))
    }
}

/// Options for [`MustacheTemplate::render`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    /// Escape `\` newline tab CR form-feed backspace (as `\\` `\n` `\t` `\r` `\f` `\b`) in string
    /// values found on the message at the root context (the template node's output "json").
    pub json_escape_root_strings: bool,
}

/// A name as written in a tag.
#[derive(Clone, Debug)]
struct Name {
    text: Box<str>,
    /// mustache.js walks properties only when the first `.` is not at index 0.
    dotted: bool,
    /// The name is exactly `.` (the current context's value).
    is_dot: bool,
}

impl Name {
    fn new(text: &str) -> Name {
        Name {
            text: text.into(),
            dotted: text.find('.').is_some_and(|i| i > 0),
            is_dot: text == ".",
        }
    }
}

/// One node of the token tree.
#[derive(Clone, Debug)]
enum Node {
    Text(Box<str>),
    Variable {
        name: Name,
        escape: bool,
    },
    Section {
        name: Name,
        inverted: bool,
        children: Vec<Node>,
    },
}

// ---------------------------------------------------------------- parsing

/// JavaScript's `\s`.
fn is_js_space(c: char) -> bool {
    flowd_engine::value::is_js_whitespace(c)
}

fn skip_space(s: &str, pos: usize) -> usize {
    s[pos..]
        .find(|c: char| !is_js_space(c))
        .map_or(s.len(), |i| pos + i)
}

/// The first position at or after `pos` where optional whitespace followed by
/// `lit` starts (JavaScript `search(/\s*lit/)`); `lit` holds no whitespace.
fn find_space_then(s: &str, pos: usize, lit: &str) -> Option<usize> {
    let at = pos + s[pos..].find(lit)?;
    let run = s[pos..at].trim_end_matches(is_js_space).len();
    Some(pos + run)
}

/// Consumes optional whitespace followed by `lit` at `pos`.
fn scan_space_then(s: &str, pos: usize, lit: &str) -> Option<usize> {
    let p = skip_space(s, pos);
    s[p..].starts_with(lit).then(|| p + lit.len())
}

/// A UTF-16 position, as mustache.js reports it.
fn js_pos(s: &str, byte_pos: usize) -> usize {
    s[..byte_pos].encode_utf16().count()
}

/// Tag kinds, by their sigil.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TagKind {
    Name,
    Unescaped,
    Section,
    Inverted,
    Close,
    Partial,
    Comment,
    Delimiters,
}

/// A token of the flat list built before nesting.
enum Flat<'t> {
    /// Literal text (a single whitespace character, or a run of other characters).
    Text {
        start: usize,
        end: usize,
        space: bool,
    },
    Tag {
        kind: TagKind,
        value: &'t str,
    },
    /// Whitespace removed from a standalone line.
    Removed,
}

struct Delimiters {
    open: String,
    close: String,
    /// `}` followed by the closing delimiter (end of a triple mustache).
    curly_close: String,
}

impl Delimiters {
    fn new(open: &str, close: &str) -> Delimiters {
        Delimiters {
            open: open.to_owned(),
            close: close.to_owned(),
            curly_close: format!("}}{close}"),
        }
    }

    /// Parses the text of a `{{=open close=}}` tag.
    fn from_tag(value: &str) -> Result<Delimiters, MustacheError> {
        let mut parts = value.split(is_js_space).filter(|p| !p.is_empty());
        match (parts.next(), parts.next()) {
            (Some(open), Some(close)) => Ok(Delimiters::new(open, close)),
            _ => Err(MustacheError::InvalidTags {
                tags: value.to_owned(),
            }),
        }
    }
}

/// Standalone-line bookkeeping, as mustache.js keeps it while scanning.
#[derive(Default)]
struct LineState {
    /// Indices (into the flat list) of the whitespace characters on the current line.
    spaces: Vec<usize>,
    has_tag: bool,
    non_space: bool,
}

impl LineState {
    /// End of a line (or of the template): a line with tags and nothing but
    /// whitespace besides loses that whitespace, including its newline.
    fn end_line(&mut self, flat: &mut [Flat<'_>]) {
        if self.has_tag && !self.non_space {
            for i in self.spaces.drain(..) {
                flat[i] = Flat::Removed;
            }
        } else {
            self.spaces.clear();
        }
        self.has_tag = false;
        self.non_space = false;
    }
}

impl MustacheTemplate {
    /// Parses a template.
    ///
    /// # Errors
    /// A malformed template gives mustache.js's error (which Node-RED reports as the node error).
    pub fn parse(text: &str) -> Result<MustacheTemplate, MustacheError> {
        let flat = scan(text)?;
        Ok(build_tree(text, flat))
    }

    /// Names looked up at the root (the first segment of every variable/section name used), so the
    /// node can prefetch e.g. flow/global context only when the template mentions them.
    pub fn root_names(&self) -> impl Iterator<Item = &str> {
        self.root_names.iter().map(|n| &**n)
    }

    /// Every distinct full name used by a variable or section tag (`payload.a`, `env.HOST`,
    /// `flow[disk].x`), in order of first use, excluding `.`: the names Node-RED resolves
    /// `env.`/`flow.`/`global.` fallbacks for before rendering.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// Renders with `root` as the bottom of the context stack.
    ///
    /// Where JavaScript would throw (a name looked up on a `null` array element pushed by a
    /// section, see [`MustacheError::NullContext`]) this treats the element as having no
    /// properties; use [`try_render`](Self::try_render) to get Node-RED's error instead.
    pub fn render(&self, root: &dyn RootLookup, opts: RenderOptions) -> String {
        let mut out = String::with_capacity(self.text_len + 32);
        let renderer = Renderer {
            root,
            json_escape: opts.json_escape_root_strings,
            strict: false,
        };
        // Lenient rendering cannot fail.
        let _ = renderer.render_nodes(&self.nodes, None, &mut out);
        out
    }

    /// Renders like [`render`](Self::render) but fails where mustache.js throws, as Node-RED does
    /// (the message is then dropped with the error).
    ///
    /// # Errors
    /// [`MustacheError::NullContext`] when a name is looked up on a `null` array element.
    pub fn try_render(
        &self,
        root: &dyn RootLookup,
        opts: RenderOptions,
    ) -> Result<String, MustacheError> {
        let mut out = String::with_capacity(self.text_len + 32);
        self.render_into(root, opts, &mut out)?;
        Ok(out)
    }

    /// Appends the rendering to `out` (strict, like [`try_render`](Self::try_render)).
    ///
    /// # Errors
    /// As [`try_render`](Self::try_render); `out` then holds a partial rendering.
    pub fn render_into(
        &self,
        root: &dyn RootLookup,
        opts: RenderOptions,
        out: &mut String,
    ) -> Result<(), MustacheError> {
        let renderer = Renderer {
            root,
            json_escape: opts.json_escape_root_strings,
            strict: true,
        };
        renderer.render_nodes(&self.nodes, None, out)
    }
}

/// Scans `text` into a flat token list with standalone whitespace removed.
fn scan(text: &str) -> Result<Vec<Flat<'_>>, MustacheError> {
    let mut flat: Vec<Flat<'_>> = Vec::new();
    let mut line = LineState::default();
    let mut open_sections: Vec<&str> = Vec::new();
    let mut delims = Delimiters::new("{{", "}}");
    let mut pos = 0;

    while pos < text.len() {
        // Literal text up to the next opening delimiter.
        let text_end = text[pos..]
            .find(delims.open.as_str())
            .map_or(text.len(), |i| pos + i);
        push_text(text, pos, text_end, &mut flat, &mut line);
        pos = text_end;
        if pos == text.len() {
            break;
        }
        let tag_start = pos;
        line.has_tag = true;
        let (kind, value, tag_end) = scan_tag(text, tag_start, &delims)?;
        pos = tag_end;

        flat.push(Flat::Tag { kind, value });
        match kind {
            TagKind::Section | TagKind::Inverted => open_sections.push(value),
            TagKind::Close => match open_sections.pop() {
                None => {
                    return Err(MustacheError::UnopenedSection {
                        name: value.to_owned(),
                        pos: js_pos(text, tag_start),
                    })
                }
                Some(open) if open != value => {
                    return Err(MustacheError::UnclosedSection {
                        name: open.to_owned(),
                        pos: js_pos(text, tag_start),
                    })
                }
                Some(_) => {}
            },
            TagKind::Name | TagKind::Unescaped => line.non_space = true,
            TagKind::Delimiters => delims = Delimiters::from_tag(value)?,
            TagKind::Partial | TagKind::Comment => {}
        }
    }
    line.end_line(&mut flat);
    if let Some(open) = open_sections.pop() {
        return Err(MustacheError::UnclosedSection {
            name: open.to_owned(),
            pos: js_pos(text, pos),
        });
    }
    Ok(flat)
}

/// Appends the literal text `text[start..end]`: every whitespace character as
/// its own token (so a standalone line can drop it), other characters in runs.
fn push_text<'t>(
    text: &'t str,
    start: usize,
    end: usize,
    flat: &mut Vec<Flat<'t>>,
    line: &mut LineState,
) {
    for (i, c) in text[start..end].char_indices() {
        let from = start + i;
        let to = from + c.len_utf8();
        if is_js_space(c) {
            line.spaces.push(flat.len());
            flat.push(Flat::Text {
                start: from,
                end: to,
                space: true,
            });
        } else {
            line.non_space = true;
            match flat.last_mut() {
                Some(Flat::Text {
                    end: e,
                    space: false,
                    ..
                }) if *e == from => *e = to,
                _ => flat.push(Flat::Text {
                    start: from,
                    end: to,
                    space: false,
                }),
            }
        }
        if c == '\n' {
            line.end_line(flat);
        }
    }
}

/// Scans the tag whose opening delimiter starts at `tag_start`: its kind, its
/// value and the position after its closing delimiter.
fn scan_tag<'t>(
    text: &'t str,
    tag_start: usize,
    delims: &Delimiters,
) -> Result<(TagKind, &'t str, usize), MustacheError> {
    let mut pos = skip_space(text, tag_start + delims.open.len());
    let kind = match text[pos..].chars().next() {
        Some('#') => TagKind::Section,
        Some('^') => TagKind::Inverted,
        Some('/') => TagKind::Close,
        Some('>') => TagKind::Partial,
        Some('{' | '&') => TagKind::Unescaped,
        Some('=') => TagKind::Delimiters,
        Some('!') => TagKind::Comment,
        _ => TagKind::Name,
    };
    let triple = text[pos..].starts_with('{');
    if kind != TagKind::Name {
        pos += 1;
    }
    pos = skip_space(text, pos);

    let value;
    if kind == TagKind::Delimiters {
        let value_end = find_space_then(text, pos, "=").unwrap_or(text.len());
        value = &text[pos..value_end];
        pos = scan_space_then(text, value_end, "=").unwrap_or(value_end);
    } else if triple {
        let value_end = find_space_then(text, pos, &delims.curly_close).unwrap_or(text.len());
        value = &text[pos..value_end];
        pos = scan_space_then(text, value_end, "}").unwrap_or(value_end);
    } else {
        let value_end = find_space_then(text, pos, &delims.close).unwrap_or(text.len());
        value = &text[pos..value_end];
        pos = value_end;
    }
    // Skip anything up to the closing delimiter, then consume it.
    pos = find_space_then(text, pos, &delims.close).unwrap_or(text.len());
    let end =
        scan_space_then(text, pos, &delims.close).ok_or_else(|| MustacheError::UnclosedTag {
            pos: js_pos(text, text.len()),
        })?;
    Ok((kind, value, end))
}

/// Moves the pending literal text into a text node.
fn flush_text(pending: &mut String, current: &mut Vec<Node>) {
    if !pending.is_empty() {
        current.push(Node::Text(std::mem::take(pending).into_boxed_str()));
    }
}

/// Nests the flat tokens into sections, merging adjacent text and dropping
/// tokens that render nothing (comments, partials, delimiter changes).
fn build_tree(text: &str, flat: Vec<Flat<'_>>) -> MustacheTemplate {
    let mut tpl = MustacheTemplate {
        nodes: Vec::new(),
        names: Vec::new(),
        root_names: Vec::new(),
        text_len: 0,
    };
    // Open sections: (name, inverted, the enclosing node list).
    let mut stack: Vec<(Name, bool, Vec<Node>)> = Vec::new();
    let mut current: Vec<Node> = Vec::new();
    let mut pending = String::new();

    for tok in flat {
        match tok {
            Flat::Removed => {}
            Flat::Text { start, end, .. } => {
                pending.push_str(&text[start..end]);
                tpl.text_len += end - start;
            }
            Flat::Tag { kind, value } => {
                match kind {
                    TagKind::Name | TagKind::Unescaped | TagKind::Section | TagKind::Inverted => {
                        tpl.note_name(value);
                    }
                    _ => {}
                }
                match kind {
                    TagKind::Name | TagKind::Unescaped => {
                        flush_text(&mut pending, &mut current);
                        current.push(Node::Variable {
                            name: Name::new(value),
                            escape: kind == TagKind::Name,
                        });
                    }
                    TagKind::Section | TagKind::Inverted => {
                        flush_text(&mut pending, &mut current);
                        let outer = std::mem::take(&mut current);
                        stack.push((Name::new(value), kind == TagKind::Inverted, outer));
                    }
                    TagKind::Close => {
                        flush_text(&mut pending, &mut current);
                        // The scanner checked the nesting, so a section is open here.
                        if let Some((name, inverted, outer)) = stack.pop() {
                            let children = std::mem::replace(&mut current, outer);
                            current.push(Node::Section {
                                name,
                                inverted,
                                children,
                            });
                        }
                    }
                    TagKind::Partial | TagKind::Comment | TagKind::Delimiters => {}
                }
            }
        }
    }
    flush_text(&mut pending, &mut current);
    tpl.nodes = current;
    tpl
}

impl MustacheTemplate {
    fn note_name(&mut self, name: &str) {
        if name == "." || self.names.iter().any(|n| &**n == name) {
            return;
        }
        self.names.push(name.into());
        let first = match name.find('.') {
            Some(i) if i > 0 => &name[..i],
            _ => name,
        };
        if !self.root_names.iter().any(|n| &**n == first) {
            self.root_names.push(first.into());
        }
    }
}

// ---------------------------------------------------------------- rendering

/// A context pushed by a section.
#[derive(Clone, Copy)]
enum Frame<'c> {
    /// The message itself (pushed by `{{#.}}` at the root). It can only sit
    /// directly above the root, so lookups on it give what the root gives.
    Message,
    /// Any other value.
    View(&'c Value),
}

/// The context stack, innermost first, as a linked list on the call stack.
struct Ctx<'c> {
    frame: Frame<'c>,
    parent: Option<&'c Ctx<'c>>,
}

/// The result of a name lookup.
enum Found<'c> {
    Undefined,
    /// The message object itself (`{{.}}` at the root).
    Message,
    Value {
        value: Cow<'c, Value>,
        /// A message string found at the root while JSON escaping is on.
        json_escape: bool,
    },
}

/// One rendering: the root, the options, and whether JavaScript's throws are reproduced.
struct Renderer<'r> {
    root: &'r dyn RootLookup,
    json_escape: bool,
    strict: bool,
}

impl<'r> Renderer<'r> {
    fn render_nodes<'c>(
        &self,
        nodes: &[Node],
        ctx: Option<&'c Ctx<'c>>,
        out: &mut String,
    ) -> Result<(), MustacheError>
    where
        'r: 'c,
    {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Variable { name, escape } => {
                    let found = self.lookup(ctx, name)?;
                    write_found(out, &found, *escape);
                }
                Node::Section {
                    name,
                    inverted: true,
                    children,
                } => {
                    let show = match self.lookup(ctx, name)? {
                        Found::Undefined => true,
                        Found::Message => false,
                        Found::Value { value, .. } => match &*value {
                            Value::Array(a) => a.is_empty(),
                            v => !v.is_truthy(),
                        },
                    };
                    if show {
                        self.render_nodes(children, ctx, out)?;
                    }
                }
                Node::Section {
                    name,
                    inverted: false,
                    children,
                } => match self.lookup(ctx, name)? {
                    Found::Undefined => {}
                    Found::Message => {
                        let inner = Ctx {
                            frame: Frame::Message,
                            parent: ctx,
                        };
                        self.render_nodes(children, Some(&inner), out)?;
                    }
                    Found::Value { value, json_escape } => {
                        let value = if json_escape {
                            Cow::Owned(json_escaped(&value))
                        } else {
                            value
                        };
                        match &*value {
                            v if !v.is_truthy() => {}
                            Value::Array(items) => {
                                for item in items.iter() {
                                    let inner = Ctx {
                                        frame: Frame::View(item),
                                        parent: ctx,
                                    };
                                    self.render_nodes(children, Some(&inner), out)?;
                                }
                            }
                            Value::Bool(_) => self.render_nodes(children, ctx, out)?,
                            v => {
                                let inner = Ctx {
                                    frame: Frame::View(v),
                                    parent: ctx,
                                };
                                self.render_nodes(children, Some(&inner), out)?;
                            }
                        }
                    }
                },
            }
        }
        Ok(())
    }

    /// Looks `name` up on the context stack, then at the root.
    fn lookup<'c>(&self, ctx: Option<&'c Ctx<'c>>, name: &Name) -> Result<Found<'c>, MustacheError>
    where
        'r: 'c,
    {
        if name.is_dot {
            return Ok(match ctx.map(|c| c.frame) {
                None | Some(Frame::Message) => Found::Message,
                Some(Frame::View(v)) => Found::Value {
                    value: Cow::Borrowed(v),
                    json_escape: false,
                },
            });
        }
        let mut cur = ctx;
        while let Some(c) = cur {
            if let Frame::View(view) = c.frame {
                if let Some(value) = self.view_lookup(view, name)? {
                    return Ok(Found::Value {
                        value,
                        json_escape: false,
                    });
                }
            }
            cur = c.parent;
        }
        let root: &'c dyn RootLookup = self.root;
        if ctx.is_none() && self.json_escape {
            return Ok(match root.lookup_with_source(&name.text) {
                None => Found::Undefined,
                Some((value, source)) => {
                    let json_escape =
                        source == RootSource::Message && matches!(&*value, Value::String(_));
                    Found::Value { value, json_escape }
                }
            });
        }
        Ok(match root.lookup(&name.text) {
            None => Found::Undefined,
            Some(value) => Found::Value {
                value,
                json_escape: false,
            },
        })
    }

    /// mustache.js's lookup on one pushed value: `Some` when it "hits" there
    /// (the last property exists), `None` to fall back to the enclosing context.
    fn view_lookup<'c>(
        &self,
        view: &'c Value,
        name: &Name,
    ) -> Result<Option<Cow<'c, Value>>, MustacheError> {
        if !name.dotted {
            // A plain name only hits on objects (arrays and Buffers included):
            // `length` of a pushed string falls back to the enclosing context.
            return match view {
                Value::Object(_) | Value::Array(_) | Value::Buffer(_) => {
                    Ok(js_property(view, &name.text))
                }
                Value::Null if self.strict => Err(MustacheError::NullContext {
                    name: name.text.to_string(),
                }),
                _ => Ok(None),
            };
        }
        let mut cur: Cow<'c, Value> = Cow::Borrowed(view);
        for seg in name.text.split('.') {
            if cur.is_null() {
                return Ok(None);
            }
            let next = match cur {
                Cow::Borrowed(v) => js_property(v, seg),
                Cow::Owned(v) => js_property(&v, seg).map(|p| Cow::Owned(p.into_owned())),
            };
            match next {
                Some(v) => cur = v,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }
}

/// Node-RED's escaping of message strings for JSON output, as a new value.
fn json_escaped(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 8);
            push_escaped(&mut out, s, false, true);
            Value::string(out)
        }
        other => other.clone(),
    }
}

/// Writes a looked-up value as `{{name}}` (`escape`) or `{{{name}}}` does.
fn write_found(out: &mut String, found: &Found<'_>, escape: bool) {
    match found {
        Found::Undefined => {}
        Found::Message => out.push_str(OBJECT_STRING),
        Found::Value { value, json_escape } => write_value(out, value, escape, *json_escape),
    }
}

/// Appends JavaScript `String(v)` (null renders nothing), escaped as asked.
fn write_value(out: &mut String, v: &Value, html: bool, json: bool) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => push_js_number(out, *n),
        Value::String(s) => push_escaped(out, s, html, json),
        Value::Array(items) => write_joined(out, items, html),
        Value::Object(_) => out.push_str(OBJECT_STRING),
        Value::Buffer(b) => push_escaped(out, &String::from_utf8_lossy(b), html, false),
    }
}

/// `Array.prototype.join(",")`: null elements are empty, nested arrays flatten.
fn write_joined(out: &mut String, items: &[Value], html: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(out, item, html, false);
    }
}

/// Class bits of bytes that need escaping: mustache.js's HTML table, Node-RED's JSON escaping.
const ESC_HTML: u8 = 1;
const ESC_JSON: u8 = 2;

/// The escaping class of every byte (all escaped characters are ASCII).
static ESCAPE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let html = b"&<>\"'/`=";
    let mut i = 0;
    while i < html.len() {
        t[html[i] as usize] = ESC_HTML;
        i += 1;
    }
    let json = b"\\\n\t\r\x0c\x08";
    let mut i = 0;
    while i < json.len() {
        t[json[i] as usize] = ESC_JSON;
        i += 1;
    }
    t
};

/// The replacement of a byte of class [`ESC_HTML`] or [`ESC_JSON`].
fn replacement(b: u8) -> &'static str {
    match b {
        b'&' => "&amp;",
        b'<' => "&lt;",
        b'>' => "&gt;",
        b'"' => "&quot;",
        b'\'' => "&#39;",
        b'/' => "&#x2F;",
        b'`' => "&#x60;",
        b'=' => "&#x3D;",
        b'\\' => "\\\\",
        b'\n' => "\\n",
        b'\t' => "\\t",
        b'\r' => "\\r",
        0x0c => "\\f",
        _ => "\\b",
    }
}

/// Appends `s` with the requested escaping, copying unescaped runs in one go.
/// JSON escaping comes first; its output holds nothing the HTML table escapes.
fn push_escaped(out: &mut String, s: &str, html: bool, json: bool) {
    let mask = if html { ESC_HTML } else { 0 } | if json { ESC_JSON } else { 0 };
    if mask == 0 {
        out.push_str(s);
        return;
    }
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        // Every escaped character is ASCII, so `i` is a character boundary.
        if ESCAPE_CLASS[usize::from(b)] & mask != 0 {
            out.push_str(&s[run..i]);
            out.push_str(replacement(b));
            run = i + 1;
        }
    }
    out.push_str(&s[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use flowd_engine::value::json;
    use std::collections::HashMap;

    /// A root like the template node's: the message, then `env.`/`flow.`/`global.`
    /// values prefetched by full name, then the empty string.
    struct TestRoot {
        msg: Value,
        prefetched: HashMap<&'static str, Value>,
    }

    impl TestRoot {
        fn new(msg_json: &str) -> TestRoot {
            TestRoot {
                msg: json::parse(msg_json).expect("test message is JSON"),
                prefetched: HashMap::new(),
            }
        }

        fn with(mut self, name: &'static str, v: Value) -> TestRoot {
            self.prefetched.insert(name, v);
            self
        }
    }

    /// mustache.js's lookup on the message object alone.
    fn message_lookup<'a>(msg: &'a Value, name: &str) -> Option<Cow<'a, Value>> {
        let dotted = name.find('.').is_some_and(|i| i > 0);
        if !dotted {
            return js_property(msg, name);
        }
        let mut cur = Cow::Borrowed(msg);
        for seg in name.split('.') {
            if cur.is_null() {
                return None;
            }
            cur = match cur {
                Cow::Borrowed(v) => js_property(v, seg)?,
                Cow::Owned(v) => Cow::Owned(js_property(&v, seg)?.into_owned()),
            };
        }
        Some(cur)
    }

    impl RootLookup for TestRoot {
        fn lookup(&self, name: &str) -> Option<Cow<'_, Value>> {
            self.lookup_with_source(name).map(|(v, _)| v)
        }

        fn lookup_with_source(&self, name: &str) -> Option<(Cow<'_, Value>, RootSource)> {
            if let Some(v) = message_lookup(&self.msg, name) {
                return Some((v, RootSource::Message));
            }
            if ["env.", "flow.", "global.", "flow[", "global["]
                .iter()
                .any(|p| name.starts_with(p))
            {
                return self
                    .prefetched
                    .get(name)
                    .map(|v| (Cow::Borrowed(v), RootSource::Fallback));
            }
            Some((Cow::Owned(Value::str("")), RootSource::Fallback))
        }
    }

    fn render(template: &str, root: &TestRoot) -> String {
        MustacheTemplate::parse(template)
            .expect("template parses")
            .render(root, RenderOptions::default())
    }

    fn render_json(template: &str, root: &TestRoot) -> String {
        let opts = RenderOptions {
            json_escape_root_strings: true,
        };
        MustacheTemplate::parse(template)
            .expect("template parses")
            .render(root, opts)
    }

    /// Cases recorded from mustache.js 4.2.0 driven by Node-RED's context class:
    /// `{name, template, msg, output}` or `{name, template, msg, error}`.
    const MUSTACHE_JS_CASES: &str =
        include_str!("../../tests/fixtures/mustache/mustache_js_cases.json");

    #[test]
    fn matches_mustache_js() {
        let doc = json::parse(MUSTACHE_JS_CASES).expect("fixture is JSON");
        let cases = js_property(&doc, "cases").expect("fixture has cases");
        let cases = cases.as_array().expect("cases is an array");
        assert!(cases.len() >= 60);
        let text = |case: &Value, key: &str| js_property(case, key).map(|v| v.to_js_string());
        let mut failures = Vec::new();
        for case in cases {
            let name = text(case, "name").expect("case has a name");
            let template = text(case, "template").expect("case has a template");
            let root = TestRoot {
                msg: js_property(case, "msg")
                    .expect("case has a msg")
                    .into_owned(),
                prefetched: HashMap::new(),
            };
            let got = MustacheTemplate::parse(&template)
                .and_then(|t| t.try_render(&root, RenderOptions::default()))
                .map_err(|e| e.to_string());
            let want =
                text(case, "output").ok_or_else(|| text(case, "error").expect("output or error"));
            if got != want {
                failures.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} case(s) differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn conformance_tpl_escaping() {
        let root = TestRoot::new(
            r#"{"topic":"in/x","payload":{"s":"<b>Tom & \"Jerry\"</b> 'x' a/b `c` d=e"},"qos":0,"retain":false}"#,
        );
        assert_eq!(
            render("d={{payload.s}} t={{{payload.s}}} a={{&payload.s}}", &root),
            "d=&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;&#x2F;b&gt; &#39;x&#39; a&#x2F;b &#x60;c&#x60; d&#x3D;e \
             t=<b>Tom & \"Jerry\"</b> 'x' a/b `c` d=e a=<b>Tom & \"Jerry\"</b> 'x' a/b `c` d=e"
        );
    }

    #[test]
    fn conformance_tpl_sections() {
        let root = TestRoot::new(
            r#"{"topic":"in/x","payload":{"items":[{"name":"a","qty":1},{"name":"b"}],"none":[],
                "flag":true,"off":false,"obj":{"k":"v"},"nums":[1,2,3]},"qos":0,"retain":false}"#,
        );
        let template = "{{#payload.items}}[{{name}}:{{qty}}]{{/payload.items}}{{^payload.none}}(none){{/payload.none}}\
            {{#payload.flag}}flag-on{{/payload.flag}}{{#payload.off}}hidden{{/payload.off}}\
            {{#payload.obj}}<{{k}}>{{/payload.obj}}{{#payload.nums}}{{.}};{{/payload.nums}}\
            {{#payload.items}}{{topic}}{{/payload.items}}";
        assert_eq!(
            render(template, &root),
            "[a:1][b:](none)flag-on<v>1;2;3;in&#x2F;xin&#x2F;x"
        );
    }

    #[test]
    fn escapes_with_mustache_js_table() {
        let root = TestRoot::new(r#"{"payload":"&<>\"'/`=\\x é"}"#);
        assert_eq!(
            render("{{payload}}", &root),
            "&amp;&lt;&gt;&quot;&#39;&#x2F;&#x60;&#x3D;\\x é"
        );
        assert_eq!(
            render("{{{payload}}}|{{&payload}}|{{& payload}}", &root),
            "&<>\"'/`=\\x é|&<>\"'/`=\\x é|&<>\"'/`=\\x é"
        );
    }

    #[test]
    fn numbers_print_like_js_string() {
        let root = TestRoot::new(
            r#"{"a":0.1,"b":1e21,"c":0,"d":-0.0,"e":123456789012,"f":1e-7,"g":2.5e-300}"#,
        )
        .with("flow.nan", Value::Number(f64::NAN))
        .with("flow.inf", Value::Number(f64::NEG_INFINITY));
        assert_eq!(
            render(
                "{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}} {{flow.nan}} {{{flow.inf}}}",
                &root
            ),
            "0.1 1e+21 0 0 123456789012 1e-7 2.5e-300 NaN -Infinity"
        );
        // 0 and NaN are falsy sections.
        assert_eq!(
            render(
                "{{#c}}x{{/c}}{{^c}}zero{{/c}}{{#flow.nan}}x{{/flow.nan}}",
                &root
            ),
            "zero"
        );
    }

    #[test]
    fn null_missing_arrays_objects() {
        let root = TestRoot::new(
            r#"{"n":null,"arr":[1,null,"a/b",{"k":1},[2,[3,"x"]],true,false],"o":{"k":"v"},"e":[]}"#,
        );
        assert_eq!(
            render(
                "[{{n}}][{{missing}}][{{missing.deeper}}][{{{n}}}][{{e}}]",
                &root
            ),
            "[][][][][]"
        );
        assert_eq!(
            render("{{arr}}", &root),
            "1,,a&#x2F;b,[object Object],2,3,x,true,false"
        );
        assert_eq!(
            render("{{{arr}}}|{{o}}|{{{o}}}", &root),
            "1,,a/b,[object Object],2,3,x,true,false|[object Object]|[object Object]"
        );
    }

    #[test]
    fn buffers_render_as_utf8() {
        let mut root = TestRoot::new("{}");
        let buf = Value::Buffer(Bytes::from_static(&[104, 105, 47, 255, 0, 33]));
        root.msg
            .as_object_mut()
            .expect("object")
            .insert("payload", buf);
        assert_eq!(
            render("{{payload}}|{{payload.length}}|{{payload.0}}|{{#payload}}{{length}}:{{0}}{{/payload}}", &root),
            "hi&#x2F;\u{fffd}\u{0}!|6|104|6:104"
        );
        assert_eq!(
            render("{{{payload}}}{{^payload}}empty{{/payload}}", &root),
            "hi/\u{fffd}\u{0}!"
        );
    }

    #[test]
    fn sections_of_every_kind() {
        let root = TestRoot::new(
            r#"{"t":true,"f":false,"z":0,"s":"abc","n":1.5,"e":"","nul":null,"ea":[],"a":[1,"x"],"o":{"k":"v"},
                "eo":{},"topic":"top"}"#,
        );
        assert_eq!(render("{{#t}}T{{.}}{{/t}}", &root), "T[object Object]");
        assert_eq!(render("{{#f}}F{{/f}}{{#z}}Z{{/z}}{{#e}}E{{/e}}{{#nul}}N{{/nul}}{{#ea}}A{{/ea}}{{#nope}}U{{/nope}}", &root), "");
        assert_eq!(
            render("{{#s}}<{{.}}>{{/s}}{{#n}}<{{.}}>{{/n}}", &root),
            "<abc><1.5>"
        );
        assert_eq!(
            render("{{#a}}<{{.}}|{{topic}}>{{/a}}", &root),
            "<1|top><x|top>"
        );
        assert_eq!(
            render(
                "{{#o}}<{{k}}|{{topic}}>{{/o}}{{#eo}}<empty object>{{/eo}}",
                &root
            ),
            "<v|top><empty object>"
        );
        assert_eq!(
            render("{{^f}}f{{/f}}{{^z}}z{{/z}}{{^e}}e{{/e}}{{^nul}}n{{/nul}}{{^ea}}a{{/ea}}{{^nope}}u{{/nope}}", &root),
            "fzenau"
        );
        assert_eq!(
            render(
                "{{^t}}t{{/t}}{{^s}}s{{/s}}{{^a}}a{{/a}}{{^o}}o{{/o}}{{^eo}}eo{{/eo}}",
                &root
            ),
            ""
        );
    }

    #[test]
    fn standalone_lines() {
        let t = TestRoot::new(r#"{"x":true}"#);
        let f = TestRoot::new(r#"{"x":false}"#);
        assert_eq!(render("a\n{{#x}}\nb\n{{/x}}\nc", &t), "a\nb\nc");
        assert_eq!(render("a\n{{#x}}\nb\n{{/x}}\nc", &f), "a\nc");
        assert_eq!(
            render("a\n  {{#x}}  \n  b\n  {{/x}}\t\nc\n", &t),
            "a\n  b\nc\n"
        );
        assert_eq!(render("a\r\n{{#x}}\r\nb\r\n{{/x}}\r\nc", &t), "a\r\nb\r\nc");
        assert_eq!(render("a\n{{! comment }}\nb\n   {{!x}}\n", &t), "a\nb\n");
        // Variables never make a line standalone.
        assert_eq!(render("a\n{{x}}\nb", &t), "a\ntrue\nb");
        assert_eq!(render("a {{#x}}\nb{{/x}} c\n", &t), "a \nb c\n");
        // The last line has no newline but is still standalone.
        assert_eq!(render("a\n  {{^x}}{{/x}}  ", &t), "a\n");
        assert_eq!(render("a\n  {{> partial}}\nb{{>p}}c", &t), "a\nbc");
    }

    #[test]
    fn delimiter_changes() {
        let root = TestRoot::new(r#"{"x":"a/b","s":[1,2]}"#);
        assert_eq!(
            render(
                "{{=<% %>=}}<% x %> {{x}} <%{x}%> <%&x%> <%#s%>[<%.%>]<%/s%>",
                &root
            ),
            "a&#x2F;b {{x}} a/b a/b [1][2]"
        );
        assert_eq!(
            render("{{=| |=}}|x||={{ }}=|{{x}}", &root),
            "a&#x2F;ba&#x2F;b"
        );
        assert_eq!(
            render("a\n{{=<% %>=}}\nb <%x%>\n<%={{ }}=%>\n{{x}}", &root),
            "a\nb a&#x2F;b\na&#x2F;b"
        );
    }

    #[test]
    fn comments_render_nothing() {
        let root = TestRoot::new(r#"{"x":1}"#);
        assert_eq!(render("a{{! hidden {{x}} }}b{{!}}c{{x}}", &root), "a }}bc1");
    }

    #[test]
    fn malformed_templates_fail_like_mustache_js() {
        let err = |t: &str| {
            MustacheTemplate::parse(t)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(err("abc {{x"), Err("Unclosed tag at 7".to_owned()));
        assert_eq!(
            err("ab{{/x}}"),
            Err("Unopened section \"x\" at 2".to_owned())
        );
        assert_eq!(
            err("{{#a}}{{#b}}{{/a}}{{/b}}"),
            Err("Unclosed section \"b\" at 12".to_owned())
        );
        assert_eq!(
            err("{{#a}}xyz"),
            Err("Unclosed section \"a\" at 9".to_owned())
        );
        assert_eq!(
            err("\u{1f600}{{#a}}\u{e9}"),
            Err("Unclosed section \"a\" at 9".to_owned())
        );
        assert_eq!(err("{{=<%=}}"), Err("Invalid tags: <%".to_owned()));
        assert_eq!(err(""), Ok(()));
    }

    #[test]
    fn null_array_elements_throw_only_in_strict_mode() {
        let root = TestRoot::new(r#"{"a":[1,null],"x":"root","y":{"z":"yz"}}"#);
        let t = MustacheTemplate::parse("{{#a}}[{{x}}|{{y.z}}]{{/a}}").expect("parses");
        assert_eq!(
            t.try_render(&root, RenderOptions::default()),
            Err(MustacheError::NullContext { name: "x".into() })
        );
        assert_eq!(
            MustacheError::NullContext { name: "x".into() }.to_string(),
            "Cannot read properties of null (reading 'x')"
        );
        assert_eq!(
            t.render(&root, RenderOptions::default()),
            "[root|yz][root|yz]"
        );
        // Dotted names and `.` do not throw.
        assert_eq!(render("{{#a}}[{{y.z}}|{{.}}]{{/a}}", &root), "[yz|1][yz|]");
    }

    #[test]
    fn json_escape_applies_to_message_strings_at_the_root_only() {
        let root = TestRoot::new(
            r#"{"payload":"a\\b\n\t\r\f\b\"q\"/","obj":{"s":"in\nobj"},"t":true,"arr":["a\nb"]}"#,
        )
        .with("env.HOME", Value::str("C:\\home\n"));
        assert_eq!(
            render_json("{{payload}}", &root),
            "a\\\\b\\n\\t\\r\\f\\b&quot;q&quot;&#x2F;"
        );
        assert_eq!(
            render_json("{{{payload}}}", &root),
            "a\\\\b\\n\\t\\r\\f\\b\"q\"/"
        );
        // A section on a root string pushes the escaped string.
        assert_eq!(
            render_json("{{#payload}}{{{.}}}{{/payload}}", &root),
            "a\\\\b\\n\\t\\r\\f\\b\"q\"/"
        );
        // Pushed contexts do not escape, even for values found on the message.
        assert_eq!(
            render_json("{{#obj}}{{{s}}}|{{{payload}}}{{/obj}}", &root),
            "in\nobj|a\\b\n\t\r\u{c}\u{8}\"q\"/"
        );
        assert_eq!(
            render_json("{{#.}}{{{payload}}}{{/.}}", &root),
            "a\\b\n\t\r\u{c}\u{8}\"q\"/"
        );
        // `true` keeps the root context, so escaping continues.
        assert_eq!(render_json("{{#t}}{{{obj.s}}}{{/t}}", &root), "in\\nobj");
        // Fallbacks and non-string values are not escaped.
        assert_eq!(
            render_json("{{{env.HOME}}}|{{{arr}}}", &root),
            "C:\\home\n|a\nb"
        );
        // Without the option nothing is JSON-escaped.
        assert_eq!(render("{{{obj.s}}}", &root), "in\nobj");
    }

    #[test]
    fn fallbacks_come_after_the_message() {
        let root = TestRoot::new(r#"{"env":{"X":"from msg"},"items":[{"a":1}]}"#)
            .with("env.X", Value::str("from env"))
            .with("env.HOST", Value::str("h/1"))
            .with("flow[disk].n", Value::Number(3.0));
        assert_eq!(
            render(
                "{{env.X}}|{{env.HOST}}|{{flow[disk].n}}|{{global.none}}|{{other}}",
                &root
            ),
            "from msg|h&#x2F;1|3||"
        );
        assert_eq!(
            render("{{#items}}{{env.HOST}}{{a}}{{/items}}", &root),
            "h&#x2F;11"
        );
    }

    #[test]
    fn pushed_contexts_follow_the_lookup_hit_rule() {
        let root = TestRoot::new(
            r#"{"a":{"b":"root"},"length":"L","items":[{"a":{}},{"a":{"b":null}},{"a":null},{"a":{"b":"own"}},{"a":"str"}],
                "prims":["abc",5,true,[1,2]]}"#,
        );
        assert_eq!(
            render("{{#items}}[{{a.b}}]{{/items}}", &root),
            "[root][][root][own][root]"
        );
        assert_eq!(
            render("{{#prims}}[{{length}}|{{.}}]{{/prims}}", &root),
            "[L|abc][L|5][L|true][2|1,2]"
        );
        assert_eq!(
            render("{{#prims}}[{{.length}}]{{/prims}}", &root),
            "[][][][]"
        );
    }

    #[test]
    fn nested_arrays_and_sections() {
        let root = TestRoot::new(r#"{"m":[[1,2],[3]],"a":{"a":{"b":"inner"},"b":"outer"}}"#);
        assert_eq!(
            render(
                "{{#m}}({{#.}}{{.}}{{/.}}){{/m}}{{#m}}[{{.}}|{{length}}|{{1}}]{{/m}}",
                &root
            ),
            "(12)(3)[1,2|2|2][3|1|]"
        );
        assert_eq!(
            render("{{#a}}{{#a}}{{b}}{{/a}}{{b}}{{/a}}", &root),
            "innerouter"
        );
    }

    #[test]
    fn root_names_and_names() {
        let t = MustacheTemplate::parse(
            "{{payload.a}}{{#payload.items}}{{name}}{{/payload.items}}{{env.HOST}}{{{flow[disk].x}}}{{.}}{{! c.d }}{{>p.q}}{{^payload.b}}{{/payload.b}}{{.x}}",
        )
        .expect("parses");
        assert_eq!(
            t.root_names().collect::<Vec<_>>(),
            ["payload", "name", "env", "flow[disk]", ".x"]
        );
        assert_eq!(
            t.names().collect::<Vec<_>>(),
            [
                "payload.a",
                "payload.items",
                "name",
                "env.HOST",
                "flow[disk].x",
                "payload.b",
                ".x"
            ]
        );
    }

    #[test]
    fn render_into_appends() {
        let root = TestRoot::new(r#"{"x":"v"}"#);
        let t = MustacheTemplate::parse("<{{x}}>").expect("parses");
        let mut out = String::from("pre");
        t.render_into(&root, RenderOptions::default(), &mut out)
            .expect("renders");
        assert_eq!(out, "pre<v>");
    }
}

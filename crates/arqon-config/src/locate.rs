//! Maps byte spans to key paths and key paths to lines, so every error names the key and the line.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A key path such as `limits.tenants.acme.max_rooms` or `spine.nats_urls[1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub(crate) Vec<Segment>);

impl KeyPath {
    pub(crate) fn key(mut self, key: &str) -> Self {
        self.0.push(Segment::Key(key.to_owned()));
        self
    }

    pub(crate) fn index(mut self, index: usize) -> Self {
        self.0.push(Segment::Index(index));
        self
    }
}

/// `KeyPath::from("a.b.c")` splits on dots (only for literal paths without quoted keys).
impl From<&str> for KeyPath {
    fn from(path: &str) -> Self {
        Self(
            path.split('.')
                .filter(|part| !part.is_empty())
                .map(|part| Segment::Key(part.to_owned()))
                .collect(),
        )
    }
}

fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parsed document with spans, when the text is syntactically valid TOML.
pub(crate) struct Locator<'a> {
    text: &'a str,
    doc: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            doc: DeTable::parse(text).ok(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
        (line, column)
    }

    /// The deepest key path whose key or scalar value contains `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::default();
        if let Some(doc) = &self.doc {
            search_table(doc.get_ref(), offset, &mut path);
        }
        path
    }

    /// The span of the deepest part of `path` present in the document: the key itself when present,
    /// else its nearest existing parent's key.
    pub(crate) fn span_of(&self, path: &KeyPath) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut value: &DeValue<'_> = &DeValue::Table(DeTable::new());
        let mut table = Some(doc.get_ref());
        let mut best = None;
        for segment in &path.0 {
            let next = match (segment, table, value) {
                (Segment::Key(key), Some(current), _) => current
                    .iter()
                    .find(|(name, _)| name.get_ref().as_ref() == key.as_str())
                    .map(|(name, found)| (name.span(), found)),
                (Segment::Index(index), None, DeValue::Array(array)) => {
                    array.get(*index).map(|found| (found.span(), found))
                }
                _ => None,
            };
            let Some((span, found)) = next else { break };
            best = Some(span);
            value = found.get_ref();
            table = value.as_table();
        }
        best
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn search_table(table: &DeTable<'_>, offset: usize, path: &mut KeyPath) -> bool {
    for (key, value) in table {
        path.0.push(Segment::Key(key.get_ref().to_string()));
        if contains(&key.span(), offset) || search_value(value, offset, path) {
            return true;
        }
        path.0.pop();
    }
    false
}

fn search_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut KeyPath) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => {
            search_table(table, offset, path) || contains(&value.span(), offset)
        }
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                path.0.push(Segment::Index(index));
                if search_value(item, offset, path) {
                    return true;
                }
                path.0.pop();
            }
            contains(&value.span(), offset)
        }
        _ => contains(&value.span(), offset),
    }
}

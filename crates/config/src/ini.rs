//! A comment-preserving INI document model in PacketFence's dialect (Perl `Config::IniFiles`).
//!
//! Dialect:
//! - `[section name]` alone on its line (spaces inside the name are allowed: `[group core]`,
//!   `[interface eth1.2]`, `[pf1.example.com interface eth0]`);
//! - `key=value`, whitespace around `=` and around the value trimmed; keys are case-sensitive;
//!   no inline comments (a `#` after a value is part of the value, as in PacketFence);
//! - comment lines start with `#` or `;` (after optional whitespace); blank lines are kept;
//! - heredoc values: `key=<<EOT` … `EOT` (the marker may be quoted: `<<"EOT"`, `<<'EOT'`);
//! - a section or a key may appear only once (PacketFence would silently merge; we refuse).
//!
//! Every physical line is kept verbatim, so `to_string()` of an unmodified document is
//! byte-identical to its input, and edits ([`Document::set`], [`Document::remove`],
//! [`Document::remove_section`], [`Document::rename_section`]) touch only the lines they change.

use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A syntax error in an INI file, located by file and 1-based line.
///
/// Displays as `file:line: message`, or `file: message` when the error concerns the whole file
/// (`line == 0`, e.g. it could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why an edit was refused. The document is unchanged when an edit fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    #[error(
        "invalid section name {0:?}: it must be non-empty, on one line, without [ or ] and without surrounding spaces"
    )]
    InvalidSectionName(String),
    #[error(
        "invalid key {0:?}: it must be non-empty, on one line, without '=' and must not start with '[', '#' or ';'"
    )]
    InvalidKey(String),
    #[error("invalid value for {key:?}: values cannot contain a carriage return")]
    InvalidValue { key: String },
    #[error("no section [{0}]")]
    NoSuchSection(String),
    #[error("section [{0}] already exists")]
    SectionExists(String),
}

/// One `key=value` as read: the value (trimmed; heredoc lines joined with `\n`) and the 1-based
/// line the key is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
struct Item {
    /// The exact bytes of the item, including its line terminator(s).
    raw: String,
    line: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Blank,
    Comment,
    /// A line kept verbatim but not understood (only in documents from [`Document::parse_lenient`]).
    Invalid,
    Key(KeyItem),
}

#[derive(Debug, Clone)]
struct KeyItem {
    key: String,
    entry: Entry,
    /// Byte offset in `raw` where the value (or the `<<EOT` marker) starts.
    value_start: usize,
    /// For single-line values, the byte range of the value in `raw` (so it can be replaced in
    /// place, keeping the spacing and the line ending after it). `None` for heredocs.
    value_span: Option<Range<usize>>,
}

#[derive(Debug, Clone)]
struct Block {
    name: String,
    header: String,
    name_span: Range<usize>,
    line: usize,
    items: Vec<Item>,
    /// A repeated section (lenient parsing only): kept for round-trip, invisible to look-ups.
    duplicate: bool,
}

/// A parsed INI file that remembers every line.
#[derive(Debug, Clone)]
pub struct Document {
    file: PathBuf,
    preamble: Vec<Item>,
    blocks: Vec<Block>,
    eol: &'static str,
}

/// A read-only view of one section.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    block: &'a Block,
}

impl<'a> Section<'a> {
    pub fn name(&self) -> &'a str {
        &self.block.name
    }

    /// 1-based line of the `[name]` header.
    pub fn line(&self) -> usize {
        self.block.line
    }

    pub fn get(self, key: &str) -> Option<&'a Entry> {
        self.entries().find(|(k, _)| *k == key).map(|(_, e)| e)
    }

    /// Keys in file order.
    pub fn keys(self) -> impl Iterator<Item = &'a str> + 'a {
        self.entries().map(|(k, _)| k)
    }

    /// `(key, entry)` pairs in file order.
    pub fn entries(self) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        self.block.items.iter().filter_map(|item| match &item.kind {
            Kind::Key(k) => Some((k.key.as_str(), &k.entry)),
            _ => None,
        })
    }
}

impl Document {
    /// An empty document that will report errors against `file`.
    pub fn new(file: impl Into<PathBuf>) -> Document {
        Document {
            file: file.into(),
            preamble: Vec::new(),
            blocks: Vec::new(),
            eol: "\n",
        }
    }

    /// Parses `text`; `file` is only used to name the file in errors. Fails on the first error.
    pub fn parse(file: impl Into<PathBuf>, text: &str) -> Result<Document, ConfigError> {
        let (doc, mut errors) = Document::parse_lenient(file, text);
        if errors.is_empty() {
            Ok(doc)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Parses `text` and reports *every* error instead of stopping at the first. Offending lines
    /// are kept verbatim (so the document still round-trips) but are invisible to look-ups; a
    /// repeated section or key is ignored in favour of the first one.
    pub fn parse_lenient(file: impl Into<PathBuf>, text: &str) -> (Document, Vec<ConfigError>) {
        Parser::new(file.into(), text).run()
    }

    /// Reads and parses a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Document, ConfigError> {
        let path = path.as_ref();
        let text = read_to_string(path)?;
        Document::parse(path, &text)
    }

    /// The file this document was read from (or will report errors against).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Section names with their 1-based header line, in file order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.visible_blocks().map(|b| (b.name.as_str(), b.line))
    }

    pub fn section(&self, name: &str) -> Option<Section<'_>> {
        self.block_index(name).map(|i| Section {
            block: &self.blocks[i],
        })
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.section(section)?.get(key)
    }

    /// Keys of `section` in file order (nothing if the section does not exist).
    pub fn keys(&self, section: &str) -> impl Iterator<Item = &str> + '_ {
        self.section(section).into_iter().flat_map(|s| s.keys())
    }

    /// The section a 1-based line belongs to (the last header at or above it), if any.
    pub fn section_at_line(&self, line: usize) -> Option<&str> {
        self.blocks
            .iter()
            .take_while(|b| b.line <= line)
            .last()
            .map(|b| b.name.as_str())
    }

    /// What a 1-based `line` holds, as `(section, key)`: the key whose `key=value` (or heredoc)
    /// is on that line, or `(section, None)` for its header, a comment or a blank line inside
    /// it; `None` before the first section. This is how a diagnostic (file:line) is turned
    /// into the field an admin tool names.
    pub fn locate(&self, line: usize) -> Option<(&str, Option<&str>)> {
        let block = self
            .visible_blocks()
            .take_while(|b| b.line <= line)
            .last()?;
        let key = block.items.iter().find_map(|i| match &i.kind {
            Kind::Key(k)
                if i.line <= line && line < i.line + i.raw.matches('\n').count().max(1) =>
            {
                Some(k.key.as_str())
            }
            _ => None,
        });
        Some((block.name.as_str(), key))
    }

    /// Sets `key` in `section`.
    ///
    /// An existing single-line value is replaced in place (spacing and comments around it stay as
    /// they are). A new key goes right after the last key of the section (so comment blocks that
    /// introduce the next section stay where they are). A missing section is created at the end
    /// of the file. Values containing newlines (or leading/trailing spaces, or starting with
    /// `<<`) are written as heredocs.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> Result<(), EditError> {
        validate_section_name(section)?;
        validate_key(key)?;
        if value.contains('\r') {
            return Err(EditError::InvalidValue {
                key: key.to_string(),
            });
        }
        let eol = self.eol;
        let bi = match self.block_index(section) {
            Some(bi) => bi,
            None => {
                self.ensure_trailing_newline();
                let last_is_blank = self
                    .last_item()
                    .is_none_or(|i| matches!(i.kind, Kind::Blank));
                if !last_is_blank {
                    let target = match self.blocks.last_mut() {
                        Some(b) => &mut b.items,
                        None => &mut self.preamble,
                    };
                    target.push(Item {
                        raw: eol.to_string(),
                        line: 0,
                        kind: Kind::Blank,
                    });
                }
                self.blocks.push(Block {
                    name: section.to_string(),
                    header: format!("[{section}]{eol}"),
                    name_span: 1..1 + section.len(),
                    line: 0,
                    items: Vec::new(),
                    duplicate: false,
                });
                self.blocks.len() - 1
            }
        };
        let block = &mut self.blocks[bi];
        let existing = block
            .items
            .iter()
            .position(|i| matches!(&i.kind, Kind::Key(k) if k.key == key));
        match existing {
            Some(pos) => {
                let item = &mut block.items[pos];
                let Kind::Key(k) = &item.kind else {
                    unreachable!("position() matched a key")
                };
                let raw = match (&k.value_span, needs_heredoc(value)) {
                    (Some(span), false) => {
                        format!(
                            "{}{}{}",
                            &item.raw[..span.start],
                            value,
                            &item.raw[span.end..]
                        )
                    }
                    _ => format!("{}{}", &item.raw[..k.value_start], render_value(value, eol)),
                };
                *item = key_item(raw, key);
            }
            None => {
                let pos = block
                    .items
                    .iter()
                    .rposition(|i| matches!(i.kind, Kind::Key(_)))
                    .map_or(0, |p| p + 1);
                let prev = if pos == 0 {
                    &mut block.header
                } else {
                    &mut block.items[pos - 1].raw
                };
                if !prev.ends_with('\n') {
                    prev.push_str(eol);
                }
                let raw = format!("{key}={}", render_value(value, eol));
                block.items.insert(pos, key_item(raw, key));
            }
        }
        self.renumber();
        Ok(())
    }

    /// Removes `key` from `section`, returning what it was. Comments around it stay.
    pub fn remove(&mut self, section: &str, key: &str) -> Option<Entry> {
        let bi = self.block_index(section)?;
        let items = &mut self.blocks[bi].items;
        let pos = items
            .iter()
            .position(|i| matches!(&i.kind, Kind::Key(k) if k.key == key))?;
        let removed = items.remove(pos);
        self.renumber();
        match removed.kind {
            Kind::Key(k) => Some(k.entry),
            _ => None,
        }
    }

    /// Removes a section with its keys and the comment lines directly above its header (no
    /// blank line in between). Comment lines at the end of the section that sit directly above
    /// the *next* header describe that next section and are kept. Returns whether it existed.
    pub fn remove_section(&mut self, name: &str) -> bool {
        let Some(bi) = self.block_index(name) else {
            return false;
        };
        let block = self.blocks.remove(bi);
        let has_next = bi < self.blocks.len();
        let prev = if bi == 0 {
            &mut self.preamble
        } else {
            &mut self.blocks[bi - 1].items
        };
        let attached_above = prev
            .iter()
            .rev()
            .take_while(|i| matches!(i.kind, Kind::Comment))
            .count();
        prev.truncate(prev.len() - attached_above);
        if has_next {
            let keep = block
                .items
                .iter()
                .rev()
                .take_while(|i| matches!(i.kind, Kind::Comment))
                .count();
            prev.extend(block.items[block.items.len() - keep..].iter().cloned());
        }
        self.renumber();
        true
    }

    /// Renames a section in place (its header line keeps its spacing).
    pub fn rename_section(&mut self, old: &str, new: &str) -> Result<(), EditError> {
        validate_section_name(new)?;
        let bi = self
            .block_index(old)
            .ok_or_else(|| EditError::NoSuchSection(old.to_string()))?;
        if old != new && self.block_index(new).is_some() {
            return Err(EditError::SectionExists(new.to_string()));
        }
        let block = &mut self.blocks[bi];
        block.header.replace_range(block.name_span.clone(), new);
        block.name_span = block.name_span.start..block.name_span.start + new.len();
        block.name = new.to_string();
        Ok(())
    }

    /// Writes the document to `path` all-or-nothing: a temporary file in the same directory is
    /// written, fsynced, given the permissions of the file it replaces, then renamed over `path`;
    /// the directory is fsynced afterwards. Readers see either the old or the new file.
    pub fn save_atomic(&self, path: impl AsRef<Path>) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = path.as_ref();
        // Keep the permissions of the file it replaces; a new configuration file is 0640.
        let mode = fs::metadata(path).map_or(0o640, |m| m.permissions().mode() & 0o7777);
        ironfence_core::fsutil::write_atomic_with(
            path,
            self.to_string().as_bytes(),
            ironfence_core::fsutil::WriteOptions {
                mode,
                create_dirs: None,
                owner: None,
            },
        )
    }

    fn visible_blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(|b| !b.duplicate)
    }

    fn block_index(&self, name: &str) -> Option<usize> {
        self.blocks
            .iter()
            .position(|b| !b.duplicate && b.name == name)
    }

    fn last_item(&self) -> Option<&Item> {
        match self.blocks.last() {
            Some(b) => b.items.last(),
            None => self.preamble.last(),
        }
    }

    fn ensure_trailing_newline(&mut self) {
        let eol = self.eol;
        let last = match self.blocks.last_mut() {
            Some(b) => match b.items.last_mut() {
                Some(i) => &mut i.raw,
                None => &mut b.header,
            },
            None => match self.preamble.last_mut() {
                Some(i) => &mut i.raw,
                None => return,
            },
        };
        if !last.ends_with('\n') {
            last.push_str(eol);
        }
    }

    fn renumber(&mut self) {
        let mut line = 1;
        let mut number = |item: &mut Item| {
            item.line = line;
            if let Kind::Key(k) = &mut item.kind {
                k.entry.line = line;
            }
            line += item.raw.matches('\n').count();
        };
        self.preamble.iter_mut().for_each(&mut number);
        for b in &mut self.blocks {
            b.line = line;
            line += b.header.matches('\n').count();
            let mut inner = line;
            for item in &mut b.items {
                item.line = inner;
                if let Kind::Key(k) = &mut item.kind {
                    k.entry.line = inner;
                }
                inner += item.raw.matches('\n').count();
            }
            line = inner;
        }
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.preamble {
            f.write_str(&item.raw)?;
        }
        for b in &self.blocks {
            f.write_str(&b.header)?;
            for item in &b.items {
                f.write_str(&item.raw)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        message: format!("cannot read the file: {e}"),
    })
}

fn validate_section_name(name: &str) -> Result<(), EditError> {
    let ok = !name.is_empty() && name.trim() == name && !name.contains(['\n', '\r', '[', ']']);
    if ok {
        Ok(())
    } else {
        Err(EditError::InvalidSectionName(name.to_string()))
    }
}

fn validate_key(key: &str) -> Result<(), EditError> {
    let ok = !key.is_empty()
        && key.trim() == key
        && !key.contains(['\n', '\r', '='])
        && !key.starts_with(['[', '#', ';']);
    if ok {
        Ok(())
    } else {
        Err(EditError::InvalidKey(key.to_string()))
    }
}

fn needs_heredoc(value: &str) -> bool {
    value.contains('\n') || value.trim() != value || value.starts_with("<<")
}

/// The text that follows `key=`, including the final line ending.
fn render_value(value: &str, eol: &str) -> String {
    if !needs_heredoc(value) {
        return format!("{value}{eol}");
    }
    let mut marker = "EOT".to_string();
    let mut n = 0;
    while value.lines().any(|l| l.trim() == marker) {
        n += 1;
        marker = format!("EOT{n}");
    }
    let body = value.split('\n').collect::<Vec<_>>().join(eol);
    format!("<<{marker}{eol}{body}{eol}{marker}{eol}")
}

/// Builds a key item from freshly rendered text by re-parsing it (so the stored entry is exactly
/// what a later parse of the file would produce).
fn key_item(raw: String, key: &str) -> Item {
    let (doc, errors) = Document::parse_lenient("", &format!("[x]\n{raw}"));
    debug_assert!(
        errors.is_empty(),
        "rendered {raw:?} does not parse: {errors:?}"
    );
    let mut item = doc.blocks[0].items[0].clone();
    debug_assert!(matches!(&item.kind, Kind::Key(k) if k.key == key));
    item.raw = raw;
    item
}

/// Marker of a heredoc opener (`<<EOT`, `<<"EOT"`, `<<'EOT'`), if `value` is one.
fn heredoc_marker(value: &str) -> Option<&str> {
    let rest = value.strip_prefix("<<")?.trim();
    let rest = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(rest);
    (!rest.is_empty() && !rest.contains(char::is_whitespace)).then_some(rest)
}

struct Parser<'t> {
    file: PathBuf,
    lines: std::iter::Peekable<std::str::SplitInclusive<'t, char>>,
    line_no: usize,
    doc: Document,
    errors: Vec<ConfigError>,
}

impl<'t> Parser<'t> {
    fn new(file: PathBuf, text: &'t str) -> Parser<'t> {
        let eol = match text.find('\n') {
            Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        };
        Parser {
            doc: Document {
                file: file.clone(),
                preamble: Vec::new(),
                blocks: Vec::new(),
                eol,
            },
            file,
            lines: text.split_inclusive('\n').peekable(),
            line_no: 0,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            message,
        });
    }

    fn push(&mut self, item: Item) {
        match self.doc.blocks.last_mut() {
            Some(b) => b.items.push(item),
            None => self.doc.preamble.push(item),
        }
    }

    fn run(mut self) -> (Document, Vec<ConfigError>) {
        while let Some(raw) = self.lines.next() {
            self.line_no += 1;
            let line = self.line_no;
            let content = strip_eol(raw);
            let trimmed = content.trim();
            let simple = |kind| Item {
                raw: raw.to_string(),
                line,
                kind,
            };
            if trimmed.is_empty() {
                self.push(simple(Kind::Blank));
            } else if trimmed.starts_with(['#', ';']) {
                self.push(simple(Kind::Comment));
            } else if trimmed.starts_with('[') {
                self.section(raw, content, line);
            } else if let Some(eq) = content.find('=') {
                self.key(raw, content, eq, line);
            } else {
                self.error(
                    line,
                    "line is neither a [section], a key=value nor a comment".to_string(),
                );
                self.push(simple(Kind::Invalid));
            }
        }
        (self.doc, self.errors)
    }

    fn section(&mut self, raw: &str, content: &str, line: usize) {
        let trimmed = content.trim();
        let inner = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .filter(|s| !s.contains(['[', ']']));
        let Some(inner) = inner else {
            self.error(
                line,
                "malformed section header: write [name] alone on the line (no text after ])"
                    .to_string(),
            );
            self.push(Item {
                raw: raw.to_string(),
                line,
                kind: Kind::Invalid,
            });
            return;
        };
        let name = inner.trim();
        if name.is_empty() {
            self.error(line, "empty section name []".to_string());
            self.push(Item {
                raw: raw.to_string(),
                line,
                kind: Kind::Invalid,
            });
            return;
        }
        let start = content.find('[').expect("starts with [") + 1;
        let start = start + (inner.len() - inner.trim_start().len());
        let first = self
            .doc
            .blocks
            .iter()
            .find(|b| !b.duplicate && b.name == name)
            .map(|b| b.line);
        if let Some(first) = first {
            self.error(
                line,
                format!(
                    "duplicate section [{name}] (first defined on line {first}): merge the two sections"
                ),
            );
        }
        self.doc.blocks.push(Block {
            name: name.to_string(),
            header: raw.to_string(),
            name_span: start..start + name.len(),
            line,
            items: Vec::new(),
            duplicate: first.is_some(),
        });
    }

    fn key(&mut self, raw: &str, content: &str, eq: usize, line: usize) {
        let key = content[..eq].trim();
        let after = &content[eq + 1..];
        let value_start = eq + 1 + (after.len() - after.trim_start().len());
        let value = after.trim();
        let mut raw = raw.to_string();
        let mut value_span = Some(value_start..value_start + value.len());
        let mut value = value.to_string();
        let mut valid = true;
        if let Some(marker) = heredoc_marker(&value).map(str::to_string) {
            value_span = None;
            let mut body: Vec<&str> = Vec::new();
            let mut closed = false;
            for next in self.lines.by_ref() {
                self.line_no += 1;
                raw.push_str(next);
                let c = strip_eol(next);
                if c.trim() == marker {
                    closed = true;
                    break;
                }
                body.push(c);
            }
            if !closed {
                self.error(
                    line,
                    format!(
                        "heredoc {key}=<<{marker} opened here is never closed: add a line {marker} after the value"
                    ),
                );
                valid = false;
            }
            value = body.join("\n");
        }
        if key.is_empty() {
            self.error(line, "key=value line without a key before '='".to_string());
            valid = false;
        } else if self.doc.blocks.is_empty() {
            self.error(
                line,
                format!("{key}= appears before the first [section]: move it under a section"),
            );
            valid = false;
        } else if let Some(b) = self.doc.blocks.last() {
            let first = Section { block: b }.get(key).map(|e| e.line);
            if let Some(first) = first {
                self.error(
                    line,
                    format!(
                        "duplicate key {key} in [{}] (first set on line {first}): keep only one",
                        b.name
                    ),
                );
                valid = false;
            }
        }
        let kind = if valid {
            Kind::Key(KeyItem {
                key: key.to_string(),
                entry: Entry { value, line },
                value_start,
                value_span,
            })
        } else {
            Kind::Invalid
        };
        self.push(Item { raw, line, kind });
    }
}

fn strip_eol(raw: &str) -> &str {
    let s = raw.strip_suffix('\n').unwrap_or(raw);
    s.strip_suffix('\r').unwrap_or(s)
}

#[cfg(test)]
mod tests;

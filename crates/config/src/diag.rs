//! Diagnostics: what `checkup` prints and what `Config::load` fails with.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::ini::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration cannot be used: `Config::load` fails.
    Error,
    /// The configuration works but something is risky or probably a mistake.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        })
    }
}

/// One finding, located as precisely as possible: file, line, section.
///
/// Displays as `ERROR conf/switches.conf:12 [192.168.1.0/24]: registrationVlan "5000" is not a
/// VLAN id (1-4094): fix the value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: Option<usize>,
    pub section: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.severity, self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(section) = &self.section {
            write!(f, " [{section}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All findings of a load or a checkup, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        file: &Path,
        line: Option<usize>,
        section: Option<&str>,
        message: impl Into<String>,
    ) {
        self.0.push(Diagnostic {
            severity,
            file: file.to_path_buf(),
            line,
            section: section.map(str::to_string),
            message: message.into(),
        });
    }

    pub(crate) fn syntax(&mut self, e: ConfigError, section: Option<&str>) {
        let line = (e.line > 0).then_some(e.line);
        self.push(Severity::Error, &e.file, line, section, e.message);
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Diagnostics about one file: remembers the file name so call sites stay short.
pub(crate) struct FileDiags<'a> {
    pub file: &'a Path,
    pub out: &'a mut Diagnostics,
}

impl FileDiags<'_> {
    pub fn error(&mut self, line: Option<usize>, section: Option<&str>, msg: impl Into<String>) {
        self.out
            .push(Severity::Error, self.file, line, section, msg);
    }

    pub fn warning(&mut self, line: Option<usize>, section: Option<&str>, msg: impl Into<String>) {
        self.out
            .push(Severity::Warning, self.file, line, section, msg);
    }
}

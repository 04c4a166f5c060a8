//! PacketFence-style INI configuration: a comment-preserving document model, typed pf.conf /
//! switches.conf / roles.conf, validation with file:line.
//!
//! ```text
//!  conf/pf.conf ──────┐
//!  conf/switches.conf ┼─> ini::Document ───> Config::load / checkup ──> Config (typed)
//!  conf/roles.conf ───┘   lossless: every      every finding as           │
//!                         line kept, edits     Diagnostics:               ├─> server: sockets, metrics
//!                         in place, atomic     file:line [section]        ├─> policy: SwitchesConf::lookup
//!                         save                                            └─> store: database
//!                              ▲
//!                              └── admin tools / cluster sync edit and save the same files
//! ```
//!
//! Two layers:
//! - [`ini`]: a lossless model of PacketFence's INI dialect (`Config::IniFiles`): parse, look up,
//!   edit, save atomically, byte-identical round trip.
//! - Typed configuration: [`Config::load`] (fails on any error) and [`checkup`] (every error and
//!   warning, like `pfcmd checkup`). Missing files mean built-in defaults (the equivalent of
//!   PacketFence's `*.conf.defaults`); the admin's file overrides them key by key.
//!
//! Path resolution: relative paths in pf.conf (`state_dir`) are relative to the *parent* of the
//! configuration directory (the install root, like PacketFence's `/usr/local/pf` for
//! `/usr/local/pf/conf`); a relative sqlite `path` is relative to `state_dir`.
#![forbid(unsafe_code)]

mod diag;
pub mod ini;
mod pf;
mod roles;
mod switches;
pub mod value;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use ini::{ConfigError, Document, EditError, Entry, Section};
pub use pf::{
    ActiveActiveConf, DEFAULT_METRICS_PORT, DEFAULT_STATE_DIR, DatabaseConf, GeneralConf,
    InterfaceConf, InterfaceType, MaintenanceConf, MetricsConf, MysqlConf, PfConf, RadiusConf,
    Secret, WebservicesConf,
};
pub use roles::{BUILTIN_ROLES, Role, RolesConf};
pub use switches::{
    PF_SWITCH_KEYS, RequireMessageAuthenticator, SwitchIdError, SwitchSettings, SwitchesConf,
};

use diag::FileDiags;

/// File names inside the configuration directory.
pub const PF_CONF: &str = "pf.conf";
pub const SWITCHES_CONF: &str = "switches.conf";
pub const ROLES_CONF: &str = "roles.conf";

/// The whole typed configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub conf_dir: PathBuf,
    pub pf: PfConf,
    pub switches: SwitchesConf,
    pub roles: RolesConf,
}

impl Config {
    /// Loads and validates `conf_dir`. Fails with every finding if any of them is an error;
    /// warnings alone do not prevent loading (use [`Config::load_with_warnings`] to log them).
    pub fn load(conf_dir: &Path) -> Result<Config, Diagnostics> {
        Config::load_with_warnings(conf_dir).map(|(config, _)| config)
    }

    /// Like [`Config::load`], also returning the warnings of a successful load.
    pub fn load_with_warnings(conf_dir: &Path) -> Result<(Config, Diagnostics), Diagnostics> {
        let (config, diags) = build(conf_dir);
        if diags.has_errors() {
            Err(diags)
        } else {
            Ok((config, diags))
        }
    }
}

/// Checks `conf_dir` the way `pfcmd checkup` does: every error and warning of every file (syntax,
/// values, references between files, weak secrets), never stopping at the first.
pub fn checkup(conf_dir: &Path) -> Diagnostics {
    build(conf_dir).1
}

fn build(conf_dir: &Path) -> (Config, Diagnostics) {
    let mut diags = Diagnostics::default();
    if !conf_dir.is_dir() {
        diags.push(
            Severity::Error,
            conf_dir,
            None,
            None,
            "configuration directory not found: pass the directory that holds pf.conf, switches.conf and roles.conf",
        );
    }
    let roles_doc = read_optional(conf_dir, ROLES_CONF, &mut diags);
    let pf_doc = read_optional(conf_dir, PF_CONF, &mut diags);
    let switches_doc = read_optional(conf_dir, SWITCHES_CONF, &mut diags);

    let roles = RolesConf::from_document(
        roles_doc.as_ref(),
        &mut FileDiags {
            file: &conf_dir.join(ROLES_CONF),
            out: &mut diags,
        },
    );
    let pf = PfConf::from_document(
        pf_doc.as_ref(),
        &install_root(conf_dir),
        &mut FileDiags {
            file: &conf_dir.join(PF_CONF),
            out: &mut diags,
        },
    );
    let switches = SwitchesConf::from_document(
        switches_doc.as_ref(),
        &roles,
        &mut FileDiags {
            file: &conf_dir.join(SWITCHES_CONF),
            out: &mut diags,
        },
    );
    let config = Config {
        conf_dir: conf_dir.to_path_buf(),
        pf,
        switches,
        roles,
    };
    (config, diags)
}

/// The directory relative pf.conf paths are resolved against: the parent of the configuration
/// directory, made absolute so the result does not depend on how `conf_dir` was spelt.
fn install_root(conf_dir: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(conf_dir)
        .or_else(|_| std::path::absolute(conf_dir))
        .unwrap_or_else(|_| conf_dir.to_path_buf());
    abs.parent().map_or(abs.clone(), Path::to_path_buf)
}

/// Reads `conf_dir/name` if it exists, reporting syntax errors (all of them) as diagnostics.
/// The returned document skips the offending lines.
fn read_optional(conf_dir: &Path, name: &str, diags: &mut Diagnostics) -> Option<Document> {
    let path = conf_dir.join(name);
    if !path.exists() {
        return None;
    }
    let text = match ini::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            diags.syntax(e, None);
            return None;
        }
    };
    let (doc, errors) = Document::parse_lenient(&path, &text);
    for e in errors {
        let section = doc.section_at_line(e.line).map(str::to_string);
        diags.syntax(e, section.as_deref());
    }
    Some(doc)
}

#[cfg(test)]
mod tests;

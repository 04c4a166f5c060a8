//! `conf/cluster-files.txt`: extra files the cluster synchronizes (clustering guide, "Adding
//! files to the synchronization").
//!
//! One path per line; blank lines and lines starting with `#` (after optional spaces) are
//! ignored (a `#` later on a line is part of the path). A path is absolute or relative to the
//! installation root ([`installation_root`]: the parent of the configuration directory, like
//! `/usr/local/pf` for `/usr/local/pf/conf`).
//!
//! Only files under the installation root can be synchronized: a path that resolves outside it
//! is an error naming `file:line`. Resolution is lexical (`.` and `..` are normalised without
//! touching the disk, so a file that does not exist yet can be listed); then the real location
//! of the deepest existing part of the path (symbolic links followed) must be under the root
//! too, so a link inside the root cannot smuggle out `/etc/shadow`. Unlike PacketFence (which
//! serves any path it is asked for), peers should only ever accept files from this list.

use std::path::{Component, Path, PathBuf};

use crate::diag::Diagnostics;
use crate::diag::Severity;

/// File name inside the configuration directory.
pub const CLUSTER_FILES: &str = "cluster-files.txt";

/// The installation root: the parent of the configuration directory, made absolute (symbolic
/// links resolved when the directory exists), so the result does not depend on how `conf_dir`
/// was spelt. Relative pf.conf paths (`state_dir`) and cluster-files.txt entries are resolved
/// against it.
pub fn installation_root(conf_dir: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(conf_dir)
        .or_else(|_| std::path::absolute(conf_dir).map(|p| normalize(&p)))
        .unwrap_or_else(|_| conf_dir.to_path_buf());
    abs.parent().map_or(abs.clone(), Path::to_path_buf)
}

/// `..` and `.` removed lexically (`/a/b/../c` → `/a/c`; `..` above `/` stays at `/`).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // Never pops past the root; a relative path keeps leading `..`.
                if !out.pop() && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads `conf_dir/cluster-files.txt` (absent → no extra file). Returns the accepted paths,
/// absolute and normalised, in file order.
pub(crate) fn read(conf_dir: &Path, out: &mut Diagnostics) -> Vec<PathBuf> {
    let file = conf_dir.join(CLUSTER_FILES);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            out.push(
                Severity::Error,
                &file,
                None,
                None,
                format!("cannot read: {e}: fix its permissions or remove it"),
            );
            return Vec::new();
        }
    };
    let root = installation_root(conf_dir);
    // The root as spelt (before symbolic links are resolved): an operator writes
    // /opt/ironfence/... even when /opt/ironfence is a link to /srv/ironfence-1.2.
    let spelt_root = std::path::absolute(conf_dir)
        .map(|p| normalize(&p))
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| root.clone());
    let mut files: Vec<PathBuf> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let written = raw.trim();
        if written.is_empty() || written.starts_with('#') {
            continue;
        }
        let p = Path::new(written);
        let resolved = normalize(&if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        });
        let shown = if Path::new(written) == resolved {
            written.to_string()
        } else {
            format!("{written} ({})", resolved.display())
        };
        let mut error = |msg: String| {
            out.push(Severity::Error, &file, Some(line), None, msg);
        };
        let inside = |r: &Path| resolved.starts_with(r) && resolved != r;
        if resolved == root || resolved == spelt_root {
            error(format!(
                "{shown} is the installation root itself: list the files to synchronize, one per line"
            ));
            continue;
        }
        if !inside(&root) && !inside(&spelt_root) {
            error(format!(
                "{shown} is outside the installation root {}: only files under it can be synchronized",
                root.display()
            ));
            continue;
        }
        // The real location of the deepest part of the path that exists.
        let real = resolved.ancestors().find_map(|a| {
            std::fs::canonicalize(a)
                .ok()
                .map(|r| r.join(resolved.strip_prefix(a).unwrap_or(Path::new(""))))
        });
        if let Some(real) = real
            && (!real.starts_with(&root) || real == root)
        {
            error(format!(
                "{shown} leads to {} through a symbolic link, outside the installation root {}: only files under it can be synchronized",
                real.display(),
                root.display()
            ));
            continue;
        }
        if files.contains(&resolved) {
            out.push(
                Severity::Warning,
                &file,
                Some(line),
                None,
                format!("{shown} is listed twice: remove this line"),
            );
            continue;
        }
        files.push(resolved);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        for (input, want) in [
            ("/a/b/../c", "/a/c"),
            ("/a/./b/", "/a/b"),
            ("/../../etc", "/etc"),
            ("/opt/if/conf/../../../etc/shadow", "/etc/shadow"),
            ("a/../../b", "../b"),
        ] {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }
}

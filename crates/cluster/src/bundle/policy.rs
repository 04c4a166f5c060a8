//! What a receiver accepts from a peer's bundle: its own rules, never the sender's.
//!
//! A holder of the webservices password can push any bundle. The sender's header (its
//! `extra_files` list) is therefore only a consistency check; the decision is made here, from
//! the receiver's configuration as it runs before the apply:
//!
//! ```text
//!  path ─ validate_path (lexical: relative, no `..`, no reserved name)
//!       ─ inside this server's state directory?            → refused (database, keys, grastate)
//!       ─ NEVER_SYNCED (conf/cluster-files.txt)?            → refused (a peer may not widen the rule)
//!       ─ conf/*.conf or conf/ssl/**?                       → accepted
//!       ─ listed in this server's own conf/cluster-files.txt → accepted
//!       ─ anything else                                     → refused
//! ```
//!
//! Symbolic links on the way are refused when the target is resolved on disk (apply), and
//! modes go through [`normalize_mode`].

use super::{BundleError, NEVER_SYNCED, is_default_synced, validate_path};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The permission bits a receiver writes for a file offered with `mode`: execute bits and
/// group/other write removed (`mode & 0o644`), so a key offered `0o600` stays `0o600` and
/// nothing pushed becomes a program or writable by other users.
pub fn normalize_mode(mode: u32) -> u32 {
    mode & 0o644
}

/// The receiver's rules (see the module docs).
#[derive(Debug, Clone)]
pub struct ReceivePolicy {
    install_root: PathBuf,
    state_dir: PathBuf,
    /// The state directory relative to the installation root, for every spelling that is
    /// inside it (as configured, and with symbolic links resolved).
    state_rel: Vec<String>,
    extra_files: BTreeSet<String>,
}

impl ReceivePolicy {
    /// `state_dir` is pf.conf's `state_dir` as this server runs (absolute); `extra_files` are
    /// this server's own conf/cluster-files.txt entries (absolute, as `Config::cluster_files`
    /// holds them). Entries outside `install_root` are ignored (the config loader refuses them).
    pub fn new(install_root: &Path, state_dir: &Path, extra_files: &[PathBuf]) -> ReceivePolicy {
        let mut state_rel = Vec::new();
        for rel in relatives(install_root, state_dir) {
            if !state_rel.contains(&rel) {
                state_rel.push(rel);
            }
        }
        let extra_files = extra_files
            .iter()
            .flat_map(|p| relatives(install_root, p))
            .collect();
        ReceivePolicy {
            install_root: install_root.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            state_rel,
            extra_files,
        }
    }

    pub fn install_root(&self) -> &Path {
        &self.install_root
    }

    /// This server's state directory (where the version is recorded when a bundle changes no
    /// file).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The same rules with another state directory also refused (the one the configuration
    /// being applied will use).
    pub fn also_refusing_state_dir(&self, state_dir: &Path) -> ReceivePolicy {
        let mut p = self.clone();
        for rel in relatives(&self.install_root, state_dir) {
            if !p.state_rel.contains(&rel) {
                p.state_rel.push(rel);
            }
        }
        p
    }

    /// Accepts or refuses one bundle path (lexically; apply checks the disk for links).
    pub fn check(&self, path: &str) -> Result<(), BundleError> {
        validate_path(path)?;
        let refuse = |reason: String| {
            Err(BundleError::NotAccepted {
                path: path.chars().take(200).collect(),
                reason,
            })
        };
        for s in &self.state_rel {
            let inside = s.is_empty()
                || path == s
                || path
                    .strip_prefix(s.as_str())
                    .is_some_and(|r| r.starts_with('/'));
            if inside {
                return refuse(format!(
                    "it is inside this server's state directory {} (databases, keys and other \
                     per-server state are never synchronized)",
                    self.state_dir.display()
                ));
            }
        }
        if NEVER_SYNCED.contains(&path) {
            return refuse(
                "it is never synchronized (each server's conf/cluster-files.txt is the rule its \
                 own receiver applies; edit it on each server)"
                    .into(),
            );
        }
        if is_default_synced(path) || self.extra_files.contains(path) {
            return Ok(());
        }
        refuse(
            "a receiver writes only conf/*.conf, conf/ssl/** and the extra files its own \
             conf/cluster-files.txt lists; add this path to conf/cluster-files.txt on this \
             server to accept it"
                .into(),
        )
    }
}

/// `p` relative to `root` (`/`-separated, lexically normalised), for each combination of the
/// spelt and the symbolic-link-resolved forms of both that is inside `root`.
fn relatives(root: &Path, p: &Path) -> Vec<String> {
    let roots = [Some(root.to_path_buf()), std::fs::canonicalize(root).ok()];
    let paths = [Some(lexical(p)), canonical_prefix(p)];
    let mut out = Vec::new();
    for r in roots.iter().flatten() {
        for q in paths.iter().flatten() {
            if let Ok(rel) = q.strip_prefix(r) {
                let parts: Vec<String> = rel
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        _ => None,
                    })
                    .collect();
                let rel = parts.join("/");
                if !out.contains(&rel) {
                    out.push(rel);
                }
            }
        }
    }
    out
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The real location of `p`: its deepest existing ancestor with links resolved, plus the rest.
fn canonical_prefix(p: &Path) -> Option<PathBuf> {
    let p = lexical(p);
    p.ancestors().find_map(|a| {
        std::fs::canonicalize(a)
            .ok()
            .map(|r| r.join(p.strip_prefix(a).unwrap_or(Path::new(""))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_receivers_rules() {
        let root = Path::new("/nonexistent-root/etc");
        let p = ReceivePolicy::new(
            root,
            &root.join("ironfence-state"),
            &[root.join("raddb/modules/mschap"), "/elsewhere/x".into()],
        );
        for ok in [
            "conf/pf.conf",
            "conf/ssl/ca.pem",
            "conf/ssl/private/k.key",
            "raddb/modules/mschap",
        ] {
            p.check(ok).unwrap();
        }
        for bad in [
            "cron.d/x",
            "ironfence-state/ironfence.db",
            "ironfence-state",
            "conf/cluster-files.txt",
            "conf/sub/deep.conf",
            "raddb/modules/eap",
            "../x",
            "conf/.pf.conf.ironfence-new-1-2",
        ] {
            assert!(p.check(bad).is_err(), "{bad}");
        }
        let e = p.check("cron.d/x").unwrap_err().to_string();
        assert!(
            e.contains("cron.d/x") && e.contains("cluster-files.txt"),
            "{e}"
        );
        // A state directory inside conf/ssl is still refused.
        let p = p.also_refusing_state_dir(&root.join("conf/ssl/state"));
        assert!(p.check("conf/ssl/state/db").is_err());
        p.check("conf/ssl/statex").unwrap();
    }

    #[test]
    fn modes_lose_exec_and_group_other_write() {
        assert_eq!(normalize_mode(0o755), 0o644);
        assert_eq!(normalize_mode(0o777), 0o644);
        assert_eq!(normalize_mode(0o600), 0o600);
        assert_eq!(normalize_mode(0o640), 0o640);
        assert_eq!(normalize_mode(0o4755), 0o644);
    }
}

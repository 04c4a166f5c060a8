//! Writing a bundle to disk: all files or none.
//!
//! ```text
//!  plan ── compare every bundle file with the disk; list local conf/*.conf and conf/ssl/**
//!    │     files absent from the bundle (deleted: they were removed on the peer)
//!  stage ─ write <file>.ironfence-new next to each changed target, fsync
//!    │
//!  validate(staging conf/) ── a full copy of conf/ with the changes, in
//!    │                        <root>/.ironfence-staging-XXXX/conf; refused → staged files removed
//!  commit ─ per file: hard-link target → <file>.ironfence-old (backup), rename staged → target;
//!    │      deleted files: rename target → backup. Any failure → restore every backup.
//!  fsync directories, remove backups
//! ```
//!
//! A crash during the commit step (a few renames) can leave some files new and some old, with
//! the `.ironfence-old` backups still present; the next configuration check then sees a local
//! change. Collect ignores `.ironfence-new`/`.ironfence-old` files; the next apply overwrites them.

use super::{BACKUP_SUFFIX, Bundle, BundleError, NEVER_SYNCED, STAGED_SUFFIX, is_default_synced};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name prefix of the temporary directory (under the installation root) holding the staging
/// copy of `conf/` that the validation callback sees.
pub const STAGING_DIR_PREFIX: &str = ".ironfence-staging-";

/// What [`apply`] changed. Paths are relative to the installation root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Files that did not exist before.
    pub added: Vec<String>,
    /// Files whose content or mode changed.
    pub modified: Vec<String>,
    /// Local files absent from the bundle (removed on the peer).
    pub deleted: Vec<String>,
    /// Files already identical (not rewritten).
    pub unchanged: usize,
}

impl ApplyReport {
    /// True when at least one file was added, modified or deleted.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty())
    }
}

enum Op {
    Write {
        rel: String,
        target: PathBuf,
        staged: PathBuf,
        mode: u32,
        existed: bool,
    },
    Delete {
        target: PathBuf,
    },
}

impl Op {
    fn target(&self) -> &Path {
        match self {
            Op::Write { target, .. } | Op::Delete { target } => target,
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Applies `bundle` under `install_root`, atomically: every file or none (see the module docs).
///
/// `validate` receives a complete staging copy of the resulting `conf/` directory (e.g. to run
/// `Config::load` on it); an `Err` refuses the bundle and nothing changes. It is not called when
/// nothing would change. Files that exist locally but not in the bundle are deleted when they
/// are `conf/*.conf` or under `conf/ssl/` (except [`super::NEVER_SYNCED`]); other files are
/// never deleted. A bundle without any `conf/*.conf` file is refused (applying it would delete
/// the whole configuration).
pub fn apply(
    install_root: &Path,
    bundle: &Bundle,
    validate: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<ApplyReport, BundleError> {
    let is_conf = |p: &str| {
        p.strip_prefix("conf/")
            .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".conf"))
    };
    if !bundle.files().iter().any(|f| is_conf(&f.path)) {
        return Err(BundleError::Validation(
            "the bundle has no conf/*.conf file; applying it would delete this server's whole \
             configuration"
                .into(),
        ));
    }
    let mut report = ApplyReport::default();
    let mut ops = Vec::new();

    // Plan.
    for f in bundle.files() {
        let target = safe_target(install_root, &f.path)?;
        match fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(BundleError::Symlink { path: target });
            }
            Ok(m) if !m.is_file() => return Err(BundleError::NotRegularFile { path: target }),
            Ok(m) => {
                let same_mode = m.permissions().mode() & 0o777 == f.mode;
                let same = same_mode
                    && m.len() == f.content.len() as u64
                    && fs::read(&target).map_err(|e| BundleError::io("read", &target, e))?
                        == f.content;
                if same {
                    report.unchanged += 1;
                    continue;
                }
                report.modified.push(f.path.clone());
                ops.push(Op::Write {
                    rel: f.path.clone(),
                    staged: with_suffix(&target, STAGED_SUFFIX),
                    target,
                    mode: f.mode,
                    existed: true,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.added.push(f.path.clone());
                ops.push(Op::Write {
                    rel: f.path.clone(),
                    staged: with_suffix(&target, STAGED_SUFFIX),
                    target,
                    mode: f.mode,
                    existed: false,
                });
            }
            Err(e) => return Err(BundleError::io("stat", &target, e)),
        }
    }
    for rel in local_synced_files(install_root)? {
        if bundle.get(&rel).is_none() && !NEVER_SYNCED.contains(&rel.as_str()) {
            ops.push(Op::Delete {
                target: install_root.join(&rel),
            });
            report.deleted.push(rel);
        }
    }
    if ops.is_empty() {
        return Ok(report);
    }

    // Stage.
    let staged: Vec<PathBuf> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Write { staged, .. } => Some(staged.clone()),
            Op::Delete { .. } => None,
        })
        .collect();
    let result = stage_validate_commit(install_root, bundle, &ops, &report, validate);
    for s in &staged {
        // After a commit the staged files were renamed away; after a failure they go.
        let _ = fs::remove_file(s);
    }
    result.map(|()| report)
}

fn stage_validate_commit(
    install_root: &Path,
    bundle: &Bundle,
    ops: &[Op],
    report: &ApplyReport,
    validate: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), BundleError> {
    for op in ops {
        let Op::Write {
            rel,
            target,
            staged,
            mode,
            ..
        } = op
        else {
            continue;
        };
        let content = bundle.get(rel).map(|b| &b.content[..]).unwrap_or_default();
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| BundleError::io("create directory", parent, e))?;
        }
        write_file(staged, content, *mode)?;
    }

    // Validation on a complete copy of the future conf/.
    let staging = tempfile::Builder::new()
        .prefix(STAGING_DIR_PREFIX)
        .tempdir_in(install_root)
        .map_err(|e| BundleError::io("create a staging directory in", install_root, e))?;
    let staging_conf = staging.path().join("conf");
    fs::create_dir_all(&staging_conf)
        .map_err(|e| BundleError::io("create directory", &staging_conf, e))?;
    let conf = install_root.join("conf");
    if conf.is_dir() {
        copy_tree(&conf, &staging_conf)?;
    }
    for rel in report.added.iter().chain(&report.modified) {
        if let Some(rest) = rel.strip_prefix("conf/")
            && let Some(f) = bundle.get(rel)
        {
            let p = staging_conf.join(rest);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| BundleError::io("create directory", parent, e))?;
            }
            let _ = fs::remove_file(&p);
            write_file(&p, &f.content, f.mode)?;
        }
    }
    for rel in &report.deleted {
        if let Some(rest) = rel.strip_prefix("conf/") {
            let p = staging_conf.join(rest);
            fs::remove_file(&p).map_err(|e| BundleError::io("remove", &p, e))?;
        }
    }
    validate(&staging_conf).map_err(BundleError::Validation)?;
    drop(staging);

    // Commit.
    let mut done: Vec<&Op> = Vec::new();
    for op in ops {
        if let Err((path, source)) = commit_one(op) {
            let rollback_errors = rollback(&done);
            sync_dirs(ops);
            return Err(BundleError::Commit {
                path,
                source,
                rollback_errors,
            });
        }
        done.push(op);
    }
    sync_dirs(ops);
    for op in ops {
        let _ = fs::remove_file(with_suffix(op.target(), BACKUP_SUFFIX));
    }
    sync_dirs(ops);
    Ok(())
}

fn commit_one(op: &Op) -> Result<(), (PathBuf, std::io::Error)> {
    let target = op.target();
    let backup = with_suffix(target, BACKUP_SUFFIX);
    match op {
        Op::Write {
            staged, existed, ..
        } => {
            if *existed {
                remove_if_exists(&backup).map_err(|e| (backup.clone(), e))?;
                // The target stays in place until the rename replaces it.
                if fs::hard_link(target, &backup).is_err() {
                    fs::copy(target, &backup).map_err(|e| (backup.clone(), e))?;
                }
            }
            fs::rename(staged, target).map_err(|e| (target.to_path_buf(), e))
        }
        Op::Delete { .. } => {
            remove_if_exists(&backup).map_err(|e| (backup.clone(), e))?;
            fs::rename(target, &backup).map_err(|e| (target.to_path_buf(), e))
        }
    }
}

/// Undoes committed operations, newest first; returns what could not be undone.
fn rollback(done: &[&Op]) -> Vec<String> {
    let mut errors = Vec::new();
    for op in done.iter().rev() {
        let target = op.target();
        let backup = with_suffix(target, BACKUP_SUFFIX);
        let r = match op {
            Op::Write { existed: true, .. } | Op::Delete { .. } => fs::rename(&backup, target),
            Op::Write { existed: false, .. } => fs::remove_file(target),
        };
        if let Err(e) = r {
            errors.push(format!("{}: {e}", target.display()));
        }
    }
    errors
}

fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn sync_dirs(ops: &[Op]) {
    let dirs: BTreeSet<&Path> = ops.iter().filter_map(|op| op.target().parent()).collect();
    for d in dirs {
        if let Ok(f) = fs::File::open(d) {
            let _ = f.sync_all();
        }
    }
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), BundleError> {
    remove_if_exists(path).map_err(|e| BundleError::io("remove", path, e))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| BundleError::io("create", path, e))?;
    // The umask may have cleared bits of `mode`.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| BundleError::io("set permissions of", path, e))?;
    f.write_all(content)
        .map_err(|e| BundleError::io("write", path, e))?;
    f.sync_all().map_err(|e| BundleError::io("fsync", path, e))
}

/// `root/rel`, refusing a symbolic link or a file on the way (a link could lead the write out
/// of the installation root). Missing directories are fine (created when staging).
fn safe_target(root: &Path, rel: &str) -> Result<PathBuf, BundleError> {
    super::validate_path(rel)?;
    let mut p = root.to_path_buf();
    let comps: Vec<&str> = rel.split('/').collect();
    for comp in &comps[..comps.len() - 1] {
        p.push(comp);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Err(BundleError::Symlink { path: p }),
            Ok(m) if !m.is_dir() => {
                return Err(BundleError::io(
                    "create directory",
                    p,
                    std::io::Error::other("a file is in the way"),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(root.join(rel));
            }
            Err(e) => return Err(BundleError::io("stat", p, e)),
        }
    }
    Ok(root.join(rel))
}

/// The local files a bundle would carry by default: `conf/*.conf` and `conf/ssl/**`.
fn local_synced_files(root: &Path) -> Result<Vec<String>, BundleError> {
    let mut out = Vec::new();
    let conf = root.join("conf");
    let entries = match fs::read_dir(&conf) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(BundleError::io("read", conf, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io("read", &conf, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let rel = format!("conf/{name}");
        if !is_default_synced(&rel) || name == "ssl" {
            continue;
        }
        let path = entry.path();
        let m = fs::symlink_metadata(&path).map_err(|e| BundleError::io("stat", &path, e))?;
        if m.file_type().is_symlink() {
            return Err(BundleError::Symlink { path });
        }
        if m.is_file() {
            out.push(rel);
        }
    }
    let ssl = conf.join("ssl");
    match fs::symlink_metadata(&ssl) {
        Ok(m) if m.file_type().is_symlink() => return Err(BundleError::Symlink { path: ssl }),
        Ok(m) if m.is_dir() => walk_ssl(&ssl, "conf/ssl", &mut out)?,
        _ => {}
    }
    Ok(out)
}

fn walk_ssl(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), BundleError> {
    let entries = fs::read_dir(dir).map_err(|e| BundleError::io("read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io("read", dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(BundleError::NonUtf8Path { path });
        };
        if name.ends_with(STAGED_SUFFIX) || name.ends_with(BACKUP_SUFFIX) {
            continue;
        }
        let child = format!("{rel}/{name}");
        let m = fs::symlink_metadata(&path).map_err(|e| BundleError::io("stat", &path, e))?;
        if m.file_type().is_symlink() {
            return Err(BundleError::Symlink { path });
        } else if m.is_dir() {
            walk_ssl(&path, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// Copies `from` into `to` recursively for the validation copy: regular files and directories;
/// symbolic links are recreated as links; apply's temporary files are skipped.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BundleError> {
    let entries = fs::read_dir(from).map_err(|e| BundleError::io("read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io("read", from, e))?;
        let name = entry.file_name();
        if let Some(n) = name.to_str()
            && (n.ends_with(STAGED_SUFFIX) || n.ends_with(BACKUP_SUFFIX))
        {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let m = fs::symlink_metadata(&src).map_err(|e| BundleError::io("stat", &src, e))?;
        let ft = m.file_type();
        if ft.is_symlink() {
            let link = fs::read_link(&src).map_err(|e| BundleError::io("read link", &src, e))?;
            std::os::unix::fs::symlink(&link, &dst)
                .map_err(|e| BundleError::io("create link", &dst, e))?;
        } else if ft.is_dir() {
            fs::create_dir(&dst).map_err(|e| BundleError::io("create directory", &dst, e))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(|e| BundleError::io("copy", &src, e))?;
        }
    }
    Ok(())
}

//! Writing a bundle to disk: all files or none, one apply at a time, crash-safe.
//!
//! ```text
//!  check ── the version is not dated in the future (beyond MAX_CLOCK_SKEW); every path passes
//!    │      the receiver's ReceivePolicy; modes normalised
//!  lock ─── exclusive apply lock (in-process mutex + flock on conf/.ironfence-apply.lock);
//!    │      a journal left by an earlier crash is recovered first
//!  plan ─── compare every bundle file with the disk (refusing symbolic links on the way); list
//!    │      local conf/*.conf and conf/ssl/** files absent from the bundle (deleted on the peer)
//!  journal(staging) ── names every staged file and the validation copy before they exist
//!  stage ── write .<file>.ironfence-new-<unique> next to each changed target (fsutil: fsync'd)
//!  validate(staging conf/) ── a full copy of conf/ with the changes; refused → staged removed
//!  journal(commit) ── from here a crash rolls FORWARD (every staged file is durable)
//!  commit ─ per file: hard-link target → .<file>.ironfence-old-<unique>, rename staged → target;
//!    │      deleted files: rename target → backup. A failure → journal(rollback), restore
//!  fsync directories, record the version, remove the backups, remove the journal
//! ```
//!
//! A crash at any point leaves either no journal (nothing was changed; at most an orphaned
//! temporary), or a journal that [`super::recover`] completes before the configuration is read
//! again: the old bundle entirely, or the new one entirely with its version recorded. No
//! temporary name is fixed: two applies never share one (and the lock orders them anyway).

use super::journal::{self, ApplyLock, Journal, JournalOp, Phase, exists, fault_point};
use super::{
    Bundle, BundleError, NEVER_SYNCED, ReceivePolicy, is_default_synced, is_reserved_name,
};
use crate::types::{ConfigVersion, UnixTime};
use crate::version::VersionStore;
use ironfence_core::fsutil::{WriteOptions, write_atomic_with};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::types::MAX_CLOCK_SKEW;

/// Mode of directories an apply creates (e.g. for a new extra file).
const DIR_MODE: u32 = 0o755;

/// What the validation callback learnt from the staged configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedConfig {
    /// pf.conf's `state_dir` as the staged configuration resolves it (a relative value resolves
    /// under the staging copy; apply maps it back to the installation root). The version is
    /// recorded there, and no bundle file may be inside it.
    pub state_dir: PathBuf,
}

/// What [`apply`] changed. Paths are relative to the installation root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// Files that did not exist before.
    pub added: Vec<String>,
    /// Files whose content or mode changed.
    pub modified: Vec<String>,
    /// Local files absent from the bundle (removed on the peer).
    pub deleted: Vec<String>,
    /// Files already identical (not rewritten).
    pub unchanged: usize,
    /// Files offered with a mode the receiver does not write (`path (sent → written)`).
    pub normalized_modes: Vec<String>,
    /// The version recorded: the sender's, with the hash of what was written (equal to the
    /// sender's unless a mode was normalised).
    pub version: ConfigVersion,
}

impl ApplyReport {
    /// True when at least one file was added, modified or deleted.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty())
    }
}

/// A temporary name next to `target`, unique across threads, processes and restarts.
fn unique(target: &Path, tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = target.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{name}.ironfence-{tag}-{}-{n}-{nanos:08x}",
        std::process::id()
    ))
}

/// Applies `bundle` under `policy.install_root()`, atomically and crash-safely (see the module
/// docs), and records `version` (with the hash of what was written) in the state directory of
/// the configuration applied — all under the apply lock.
///
/// `validate` receives a complete staging copy of the resulting `conf/` directory (e.g. to run
/// `Config::load` on it); an `Err` refuses the bundle and nothing changes. It is not called when
/// nothing would change (the version is then recorded in `policy.state_dir()`). Files that
/// exist locally but not in the bundle are deleted when they are `conf/*.conf` or under
/// `conf/ssl/` (except [`super::NEVER_SYNCED`]); other files are never deleted. Refused without
/// writing anything: a version dated more than [`MAX_CLOCK_SKEW`] after `now`, any path the
/// policy does not accept or reached through a symbolic link, and a bundle without any
/// `conf/*.conf` file (applying it would delete the whole configuration).
pub fn apply(
    policy: &ReceivePolicy,
    bundle: Bundle,
    version: &ConfigVersion,
    now: UnixTime,
    validate: impl FnOnce(&Path) -> Result<StagedConfig, String>,
) -> Result<ApplyReport, BundleError> {
    if version.changed_at > now.saturating_add(MAX_CLOCK_SKEW) {
        return Err(BundleError::FromTheFuture {
            hash: version.hash.clone(),
            changed_by: version.changed_by.clone(),
            changed_at: version.changed_at,
            now,
            max_skew: MAX_CLOCK_SKEW,
        });
    }
    for f in bundle.files() {
        policy.check(&f.path)?;
    }
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
    let (bundle, normalized_modes) = bundle.normalized();
    let recorded = ConfigVersion {
        hash: bundle.hash(),
        ..version.clone()
    };
    let root = policy.install_root();
    let conf_dir = root.join("conf");

    let _lock = ApplyLock::exclusive(&conf_dir)?;
    journal::recover_locked(&conf_dir)?;

    let mut report = ApplyReport {
        added: Vec::new(),
        modified: Vec::new(),
        deleted: Vec::new(),
        unchanged: 0,
        normalized_modes,
        version: recorded.clone(),
    };
    // (op, index of the bundle file it writes)
    let mut ops: Vec<(JournalOp, Option<usize>)> = Vec::new();

    // Plan.
    for (i, f) in bundle.files().iter().enumerate() {
        let target = safe_target(root, &f.path)?;
        let existed = match fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(BundleError::Symlink { path: target });
            }
            Ok(m) if !m.is_file() => return Err(BundleError::NotRegularFile { path: target }),
            Ok(m) => {
                let same = m.permissions().mode() & 0o7777 == f.mode
                    && m.len() == f.content.len() as u64
                    && fs::read(&target).map_err(|e| BundleError::io("read", &target, e))?
                        == f.content;
                if same {
                    report.unchanged += 1;
                    continue;
                }
                report.modified.push(f.path.clone());
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.added.push(f.path.clone());
                false
            }
            Err(e) => return Err(BundleError::io("stat", &target, e)),
        };
        ops.push((
            JournalOp {
                staged: Some(unique(&target, "new")),
                backup: unique(&target, "old"),
                target,
                existed,
                sha256: Some(journal::sha256_hex(&f.content)),
            },
            Some(i),
        ));
    }
    for rel in local_synced_files(root)? {
        if bundle.get(&rel).is_none()
            && !NEVER_SYNCED.contains(&rel.as_str())
            && policy.check(&rel).is_ok()
        {
            let target = root.join(&rel);
            ops.push((
                JournalOp {
                    staged: None,
                    backup: unique(&target, "old"),
                    target,
                    existed: true,
                    sha256: None,
                },
                None,
            ));
            report.deleted.push(rel);
        }
    }
    if ops.is_empty() {
        VersionStore::record(policy.state_dir(), &recorded)?;
        return Ok(report);
    }

    let mut j = Journal {
        phase: Phase::Staging,
        staging_dir: Some(unique(&root.join("staging"), "staging")),
        ops: ops.iter().map(|(op, _)| op.clone()).collect(),
        version: recorded.clone(),
        version_file: None,
    };
    j.write(&conf_dir)?;
    fault_point();
    let staged = stage_and_validate(root, policy, &bundle, &ops, &report, &j, validate);
    let state_dir = match staged {
        Ok(s) => s,
        Err(e) => {
            journal::discard_staged(&j);
            Journal::remove(&conf_dir)?;
            return Err(e);
        }
    };

    // Commit.
    j.phase = Phase::Commit;
    j.staging_dir = None;
    j.version_file = Some(VersionStore::path(&state_dir));
    j.write(&conf_dir)?;
    fault_point();
    for (n, op) in j.ops.iter().enumerate() {
        if let Err((path, source)) = commit_one(op) {
            // Undo what was done; the journal says so first, so that a crash while undoing
            // is undone too rather than rolled forward over restored files.
            j.phase = Phase::Rollback;
            if let Err(e) = j.write(&conf_dir) {
                return Err(BundleError::Commit {
                    path,
                    source,
                    rollback_errors: vec![format!(
                        "could not record the rollback ({e}); the interrupted apply is \
                         completed (rolled forward) at the next start"
                    )],
                });
            }
            let mut rollback_errors = journal::roll_back(&j.ops[..=n]);
            journal::discard_staged(&j);
            if rollback_errors.is_empty()
                && let Err(e) = Journal::remove(&conf_dir)
            {
                rollback_errors.push(e.to_string());
            }
            return Err(BundleError::Commit {
                path,
                source,
                rollback_errors,
            });
        }
    }
    journal::sync_parents(&j.ops);
    fault_point();
    // From here on a failure leaves the commit journal: recovery records the version.
    VersionStore::record(&state_dir, &recorded)?;
    fault_point();
    // Backups go before the journal (rolling forward does not need them), so a crash leaves
    // none behind.
    journal::remove_backups(&j.ops);
    fault_point();
    Journal::remove(&conf_dir)?;
    Ok(report)
}

/// Stages every write, builds and validates the staging copy of `conf/`; returns the state
/// directory of the validated configuration (mapped back to the installation root).
fn stage_and_validate(
    root: &Path,
    policy: &ReceivePolicy,
    bundle: &Bundle,
    ops: &[(JournalOp, Option<usize>)],
    report: &ApplyReport,
    j: &Journal,
    validate: impl FnOnce(&Path) -> Result<StagedConfig, String>,
) -> Result<PathBuf, BundleError> {
    for (op, file) in ops {
        let (Some(staged), Some(i)) = (&op.staged, file) else {
            continue;
        };
        let f = &bundle.files()[*i];
        let opts = WriteOptions {
            mode: f.mode,
            create_dirs: Some(DIR_MODE),
            owner: None,
        };
        write_atomic_with(staged, &f.content, opts)
            .map_err(|e| BundleError::io("write", staged, e))?;
        fault_point();
    }

    // Validation on a complete copy of the future conf/ (not durable: it is thrown away).
    let staging = j.staging_dir.as_deref().unwrap_or(root);
    fs::create_dir(staging).map_err(|e| BundleError::io("create directory", staging, e))?;
    let staging_conf = staging.join("conf");
    fs::create_dir_all(&staging_conf)
        .map_err(|e| BundleError::io("create directory", &staging_conf, e))?;
    let conf = root.join("conf");
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
            fs::write(&p, &f.content).map_err(|e| BundleError::io("write", &p, e))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))
                .map_err(|e| BundleError::io("set permissions of", &p, e))?;
        }
    }
    for rel in &report.deleted {
        if let Some(rest) = rel.strip_prefix("conf/") {
            let p = staging_conf.join(rest);
            fs::remove_file(&p).map_err(|e| BundleError::io("remove", &p, e))?;
        }
    }
    let validated = validate(&staging_conf).map_err(BundleError::Validation)?;
    let state_dir = rebase(&validated.state_dir, staging, root);
    fs::remove_dir_all(staging).map_err(|e| BundleError::io("remove", staging, e))?;
    fault_point();

    // The configuration being applied must not have its state directory among the files
    // either; and nothing on the way may have become a link since the plan.
    let policy = policy.also_refusing_state_dir(&state_dir);
    for f in bundle.files() {
        policy.check(&f.path)?;
        safe_target(root, &f.path)?;
    }
    Ok(state_dir)
}

/// `p` with a `staging` prefix replaced by `root` (a relative `state_dir` resolved inside the
/// staging copy).
fn rebase(p: &Path, staging: &Path, root: &Path) -> PathBuf {
    let canonical = fs::canonicalize(staging).ok();
    for s in std::iter::once(staging).chain(canonical.as_deref()) {
        if let Ok(rest) = p.strip_prefix(s) {
            return root.join(rest);
        }
    }
    p.to_path_buf()
}

fn commit_one(op: &JournalOp) -> Result<(), (PathBuf, std::io::Error)> {
    let target = &op.target;
    let backup = &op.backup;
    match &op.staged {
        Some(staged) => {
            if op.existed {
                // The target stays in place until the rename replaces it.
                if fs::hard_link(target, backup).is_err() {
                    let m = fs::metadata(target).map_err(|e| (target.clone(), e))?;
                    let content = fs::read(target).map_err(|e| (target.clone(), e))?;
                    let opts = WriteOptions {
                        mode: m.permissions().mode() & 0o7777,
                        create_dirs: None,
                        owner: None,
                    };
                    write_atomic_with(backup, &content, opts).map_err(|e| (backup.clone(), e))?;
                }
                fault_point();
            }
            if !exists(staged) {
                return Err((
                    staged.clone(),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the staged file disappeared",
                    ),
                ));
            }
            fs::rename(staged, target).map_err(|e| (target.clone(), e))?;
            fault_point();
            Ok(())
        }
        None => {
            fs::rename(target, backup).map_err(|e| (target.clone(), e))?;
            fault_point();
            Ok(())
        }
    }
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
    let target = root.join(rel);
    if let Ok(m) = fs::symlink_metadata(&target)
        && m.file_type().is_symlink()
    {
        return Err(BundleError::Symlink { path: target });
    }
    Ok(target)
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
        if !is_default_synced(&rel) || name == "ssl" || is_reserved_name(&name) {
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
    let templates = conf.join("portal/templates");
    for p in [conf.join("portal"), templates.clone()] {
        if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(BundleError::Symlink { path: p });
        }
    }
    if templates.is_dir() {
        walk_ssl(&templates, super::PORTAL_TEMPLATES, &mut out)?;
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
        if is_reserved_name(&name) {
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
/// symbolic links are recreated as links; apply's own files are skipped.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BundleError> {
    let entries = fs::read_dir(from).map_err(|e| BundleError::io("read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io("read", from, e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_reserved_name) {
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

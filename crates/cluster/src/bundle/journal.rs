//! One apply at a time, and an apply a crash interrupted is finished or undone before anything
//! reads the configuration again.
//!
//! ```text
//!  conf/.ironfence-apply.lock     flock: exclusive for apply/recover (plus an in-process mutex),
//!                                 shared for readers (collect + version record), so the daemon,
//!                                 `ironfence cluster sync` and any thread serialise
//!  conf/.ironfence-apply.journal  written atomically (fsync'd) before each phase:
//!      staging   staged files being written; a crash → staged files removed (old config)
//!      commit    every staged file durable and validated; a crash → roll FORWARD: rename the
//!                remaining staged files, delete, record the version (new config) — or, if a
//!                staged file vanished and its target lacks the new content (its SHA-256 is
//!                in the journal), roll back from the backups (old config)
//!      rollback  a rename failed in-process; a crash → roll BACK from the backups (old config)
//!  no journal    nothing in flight
//! ```
//!
//! The journal lives in the configuration directory, not in the state directory: the state
//! directory is only known from pf.conf, which is one of the files a crash may have left half
//! applied. `conf/` is always known (`-c`), and its journal names every other path (targets,
//! staged and backup files, the version record) absolutely.
//!
//! While a journal exists, [`local_version`] never stamps a "local change": the files on disk
//! are a mix nobody validated.

use super::{Bundle, BundleError, collect};
use crate::types::{ConfigVersion, UnixTime};
use crate::version::{LocalChange, VersionStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The lock file, in the configuration directory.
pub const LOCK_FILE: &str = ".ironfence-apply.lock";
/// The commit journal, in the configuration directory.
pub const JOURNAL_FILE: &str = ".ironfence-apply.journal";

/// `O_NOFOLLOW` on Linux.
const O_NOFOLLOW: i32 = 0o400_000;

/// Orders applies between the threads of one process (the file lock orders processes).
static APPLY_MUTEX: Mutex<()> = Mutex::new(());

/// A held apply lock (see the module docs); released on drop.
#[derive(Debug)]
pub struct ApplyLock {
    // Field order: the file lock is released before the in-process mutex.
    _file: Option<fs::File>,
    _guard: Option<MutexGuard<'static, ()>>,
}

impl ApplyLock {
    /// The exclusive lock of an apply or a recovery. Blocks until every other holder is done.
    pub fn exclusive(conf_dir: &Path) -> Result<ApplyLock, BundleError> {
        let guard = APPLY_MUTEX.lock().unwrap_or_else(|e| e.into_inner());
        fs::create_dir_all(conf_dir)
            .map_err(|e| BundleError::io("create directory", conf_dir, e))?;
        let path = conf_dir.join(LOCK_FILE);
        let file = open_lock(&path, true).map_err(|e| BundleError::io("open", &path, e))?;
        file.lock().map_err(|e| BundleError::io("lock", &path, e))?;
        Ok(ApplyLock {
            _file: Some(file),
            _guard: Some(guard),
        })
    }

    /// The shared lock of a reader. A user who can neither create nor open the lock file (an
    /// unprivileged `ironfence cluster status`) reads without it: it cannot record anything.
    pub fn shared(conf_dir: &Path) -> Result<ApplyLock, BundleError> {
        let path = conf_dir.join(LOCK_FILE);
        let file = match open_lock(&path, true).or_else(|_| open_lock(&path, false)) {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
                ) =>
            {
                return Ok(ApplyLock {
                    _file: None,
                    _guard: None,
                });
            }
            Err(e) => return Err(BundleError::io("open", &path, e)),
        };
        file.lock_shared()
            .map_err(|e| BundleError::io("lock", &path, e))?;
        Ok(ApplyLock {
            _file: Some(file),
            _guard: None,
        })
    }
}

fn open_lock(path: &Path, write: bool) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.read(true).custom_flags(O_NOFOLLOW);
    if write {
        o.write(true).create(true).mode(0o600);
    }
    o.open(path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    Staging,
    Commit,
    Rollback,
}

/// One file operation of an apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JournalOp {
    pub target: PathBuf,
    /// The staged new content; `None` deletes the target.
    pub staged: Option<PathBuf>,
    /// Where the previous content is kept (hard link) until the apply is complete.
    pub backup: PathBuf,
    /// The target existed before the apply.
    pub existed: bool,
    /// SHA-256 (hex) of the new content: rolling forward checks that a target whose staged
    /// file is gone really holds it.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Journal {
    pub phase: Phase,
    /// The validation copy of `conf/` (removed once validated).
    pub staging_dir: Option<PathBuf>,
    pub ops: Vec<JournalOp>,
    /// The version recorded once every file is in place.
    pub version: ConfigVersion,
    /// `<state_dir>/config-version.json` of the configuration being applied (known once it
    /// validated).
    pub version_file: Option<PathBuf>,
}

impl Journal {
    pub fn write(&self, conf_dir: &Path) -> Result<(), BundleError> {
        let path = conf_dir.join(JOURNAL_FILE);
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        ironfence_core::fsutil::write_atomic(&path, &json, 0o600)
            .map_err(|e| BundleError::io("write", &path, e))
    }

    fn read(conf_dir: &Path) -> Result<Option<Journal>, BundleError> {
        let path = conf_dir.join(JOURNAL_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BundleError::io("read", &path, e)),
        };
        let j: Journal =
            serde_json::from_slice(&bytes).map_err(|e| BundleError::CorruptJournal {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        // Every path must be absolute and free of `..`: the journal is ours, but a corrupt one
        // must not make recovery touch anything else.
        let sane = |p: &Path| {
            p.is_absolute()
                && !p
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        };
        let all_sane = j.ops.iter().all(|op| {
            sane(&op.target) && sane(&op.backup) && op.staged.as_deref().is_none_or(sane)
        }) && j.staging_dir.as_deref().is_none_or(sane)
            && j.version_file.as_deref().is_none_or(|v| {
                sane(v) && v.file_name() == Some(crate::version::VERSION_FILE.as_ref())
            });
        if !all_sane {
            return Err(BundleError::CorruptJournal {
                path,
                reason: "it names a relative path or one with `..`".into(),
            });
        }
        Ok(Some(j))
    }

    pub fn remove(conf_dir: &Path) -> Result<(), BundleError> {
        let path = conf_dir.join(JOURNAL_FILE);
        remove_if_exists(&path).map_err(|e| BundleError::io("remove", &path, e))?;
        ironfence_core::fsutil::sync_dir(conf_dir);
        Ok(())
    }
}

/// True when an apply journal exists in `conf_dir`.
pub fn journal_pending(conf_dir: &Path) -> bool {
    fs::symlink_metadata(conf_dir.join(JOURNAL_FILE)).is_ok()
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The apply had not reached its commit: its staged files were removed; the previous
    /// configuration is in force.
    Discarded,
    /// The apply had committed: its remaining renames were done and its version recorded.
    RolledForward,
    /// A failed commit was being undone: the previous files were restored.
    RolledBack,
}

/// The outcome of a recovery, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub recovery: Recovery,
    /// The version the interrupted apply was installing.
    pub version: ConfigVersion,
    pub files: usize,
}

/// Finishes or undoes an apply a crash interrupted (see the module docs). `Ok(None)`: there
/// was nothing to do. Call it at start-up before the configuration is read.
pub fn recover(conf_dir: &Path) -> Result<Option<Recovered>, BundleError> {
    if !journal_pending(conf_dir) {
        return Ok(None);
    }
    let _lock = ApplyLock::exclusive(conf_dir)?;
    recover_locked(conf_dir)
}

/// [`recover`] with the exclusive lock already held.
pub(crate) fn recover_locked(conf_dir: &Path) -> Result<Option<Recovered>, BundleError> {
    let Some(j) = Journal::read(conf_dir)? else {
        return Ok(None);
    };
    let recovery = match j.phase {
        Phase::Staging => {
            discard_staged(&j);
            Journal::remove(conf_dir)?;
            Recovery::Discarded
        }
        Phase::Commit if can_roll_forward(&j) => {
            roll_forward(&j)?;
            remove_backups(&j.ops);
            Journal::remove(conf_dir)?;
            Recovery::RolledForward
        }
        // Committed, but a staged file is gone and its target does not hold the new content
        // (removed by someone else): the new bundle cannot be completed, the old one can.
        Phase::Commit | Phase::Rollback => {
            let errors = roll_back(&j.ops);
            if !errors.is_empty() {
                return Err(BundleError::Commit {
                    path: conf_dir.join(JOURNAL_FILE),
                    source: std::io::Error::other("recovery could not restore every file"),
                    rollback_errors: errors,
                });
            }
            discard_staged(&j);
            Journal::remove(conf_dir)?;
            Recovery::RolledBack
        }
    };
    Ok(Some(Recovered {
        recovery,
        version: j.version,
        files: j.ops.len(),
    }))
}

/// True when every write can be completed: its staged file is there, or its target already
/// holds the new content.
fn can_roll_forward(j: &Journal) -> bool {
    j.ops.iter().all(|op| match (&op.staged, &op.sha256) {
        (Some(staged), Some(want)) => {
            exists(staged) || fs::read(&op.target).is_ok_and(|c| &sha256_hex(&c) == want)
        }
        _ => true,
    })
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Commit phase, resumed: every staged file still present is renamed over its target (a
/// missing one was renamed already), deleted targets go, then the version is recorded.
/// Idempotent: a crash during it is recovered the same way.
fn roll_forward(j: &Journal) -> Result<(), BundleError> {
    for op in &j.ops {
        match &op.staged {
            Some(staged) => {
                if exists(staged) {
                    fs::rename(staged, &op.target)
                        .map_err(|e| BundleError::io("rename", staged, e))?;
                }
            }
            None => {
                remove_if_exists(&op.target)
                    .map_err(|e| BundleError::io("remove", &op.target, e))?;
            }
        }
    }
    sync_parents(&j.ops);
    if let Some(vf) = &j.version_file {
        let state_dir = vf.parent().unwrap_or(Path::new("/"));
        VersionStore::record(state_dir, &j.version)?;
    }
    if let Some(d) = &j.staging_dir {
        let _ = fs::remove_dir_all(d);
    }
    Ok(())
}

/// Undoes committed operations from their backups, newest first; returns what could not be
/// undone. Idempotent (see the module docs of apply for why each case is safe to repeat).
pub(crate) fn roll_back(ops: &[JournalOp]) -> Vec<String> {
    let mut errors = Vec::new();
    for op in ops.iter().rev() {
        let r = match (&op.staged, op.existed) {
            // The backup is made before the rename: without one, the target is still the old
            // file; with one, it holds the old content (renaming a link over the same inode is
            // a no-op, so the backup is removed afterwards either way).
            (_, true) => {
                if exists(&op.backup) {
                    fs::rename(&op.backup, &op.target)
                } else {
                    Ok(())
                }
            }
            // A new file: renamed in iff its staged file is gone.
            (Some(staged), false) => {
                if exists(staged) {
                    Ok(())
                } else {
                    remove_if_exists(&op.target)
                }
            }
            (None, false) => Ok(()),
        };
        if let Err(e) = r {
            errors.push(format!("{}: {e}", op.target.display()));
        }
        fault_point();
    }
    sync_parents(ops);
    for op in ops {
        let _ = remove_if_exists(&op.backup);
    }
    errors
}

/// Removes the staged files (and the temporaries `write_atomic` may have left next to them)
/// and the validation copy.
pub(crate) fn discard_staged(j: &Journal) {
    for op in &j.ops {
        if let Some(staged) = &op.staged {
            let _ = remove_if_exists(staged);
            sweep_temporaries(staged);
        }
        if op.existed {
            let _ = remove_if_exists(&op.backup);
        }
    }
    if let Some(d) = &j.staging_dir {
        let _ = fs::remove_dir_all(d);
    }
    sync_parents(&j.ops);
}

/// `fsutil::write_atomic` writes `.<name>.tmp-…` before renaming it to `name`: a crash in
/// between leaves it.
fn sweep_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

pub(crate) fn remove_backups(ops: &[JournalOp]) {
    for op in ops {
        let _ = remove_if_exists(&op.backup);
    }
    sync_parents(ops);
}

pub(crate) fn sync_parents(ops: &[JournalOp]) {
    let dirs: BTreeSet<&Path> = ops.iter().filter_map(|op| op.target.parent()).collect();
    for d in dirs {
        ironfence_core::fsutil::sync_dir(d);
    }
}

pub(crate) fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

pub(crate) fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// This server's bundle and version, read under the shared apply lock so that an apply in
/// progress is never mistaken for a local edit. A bundle whose hash differs from the recorded
/// version is a local change (manual edit) stamped `now` by `identity` — never while an apply
/// journal exists: a pending journal is recovered first, and refused if that fails.
pub fn local_version(
    conf_dir: &Path,
    install_root: &Path,
    extra_files: &[PathBuf],
    state_dir: &Path,
    identity: &str,
    now: UnixTime,
) -> Result<(ConfigVersion, LocalChange, Bundle), BundleError> {
    if journal_pending(conf_dir) {
        recover(conf_dir)?;
    }
    let _lock = ApplyLock::shared(conf_dir)?;
    if journal_pending(conf_dir) {
        return Err(BundleError::ApplyPending {
            journal: conf_dir.join(JOURNAL_FILE),
        });
    }
    let bundle = collect(conf_dir, install_root, extra_files)?;
    let (version, change) = VersionStore::current(state_dir, &bundle.hash(), identity, now)?;
    Ok((version, change, bundle))
}

/// Fault injection for the crash tests: with `IRONFENCE_TEST_APPLY_CRASH_AT=N` in the
/// environment, the process aborts at the N-th step of an apply. Test builds only.
#[cfg(test)]
pub(crate) fn fault_point() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static STEP: AtomicU32 = AtomicU32::new(0);
    let n = STEP.fetch_add(1, Ordering::SeqCst) + 1;
    if std::env::var("IRONFENCE_TEST_APPLY_CRASH_AT")
        .ok()
        .and_then(|v| v.parse().ok())
        == Some(n)
    {
        std::process::abort();
    }
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn fault_point() {}

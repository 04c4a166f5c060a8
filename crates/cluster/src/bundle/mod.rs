//! The configuration bundle: every file the cluster keeps identical on all servers, its content
//! hash (the [`ConfigVersion::hash`]), its wire format, what a receiver accepts, and its
//! crash-safe application.
//!
//! ```text
//!  conf/*.conf ─────────┐
//!  conf/ssl/**  ────────┼─ collect() ─► Bundle ─ hash() ─► ConfigVersion.hash
//!  cluster-files.txt ───┘                │  ▲
//!                                 encode()│  │decode()  (untrusted bytes from a peer:
//!                                         ▼  │           bounds, paths, hash checked)
//!                                      IFBUNDLE bytes
//!                                         │
//!  apply() ◄──────────────────────────────┘  under the apply lock: ReceivePolicy (this server's
//!    rules) ─► stage ─► validate(staging conf/) ─► journal ─► renames ─► version record
//!  recover() at start-up: finishes or undoes an apply a crash interrupted (see `journal`)
//! ```
//!
//! # What is synchronized
//! Paths in a bundle are relative to the installation root, with `/` separators:
//! - every regular `*.conf` file directly in `conf/` (not in sub-directories);
//! - everything under `conf/ssl/` (the cluster CA and other TLS material shared by the cluster);
//! - everything under `conf/portal/templates/` (the captive portal's template overrides);
//! - the extra files listed in `conf/cluster-files.txt` (the guide's "Adding files to the
//!   synchronization"); they must be inside the installation root.
//!
//! Files that are never synchronized even though they match the rules above:
//! [`NEVER_SYNCED`] (`conf/cluster-files.txt` itself: each server's list of extra files is the
//! rule its receiver applies, so a peer must not be able to widen it).
//!
//! # What a receiver accepts
//! The sender's list is not trusted: [`ReceivePolicy`] (built from the receiver's own
//! configuration) accepts only `conf/*.conf`, `conf/ssl/**`, `conf/portal/templates/**` and the extra files the
//! receiver's own `conf/cluster-files.txt` lists, never anything in its state directory, never
//! through a symbolic link; any other path refuses the whole bundle with an error naming it.
//! Modes are normalised with [`normalize_mode`] (no execute bits, no group/other write), both
//! when collecting and when writing, so the hash of what a receiver wrote equals the hash it
//! later collects.
//!
//! Symbolic links are refused everywhere (a link could make a peer's push write outside the
//! installation root), as are devices, FIFOs and sockets. Ownership is not synchronized (files
//! are written by the daemon's user).

mod apply;
mod collect;
mod journal;
mod policy;
mod wire;

pub use apply::{ApplyReport, MAX_CLOCK_SKEW, StagedConfig, apply};
pub use collect::collect;
pub use journal::{
    ApplyLock, JOURNAL_FILE, LOCK_FILE, Recovered, Recovery, journal_pending, local_version,
    recover,
};
pub use policy::{ReceivePolicy, normalize_mode};
pub use wire::{FORMAT_VERSION, MAGIC, decode, decode_owned};

use crate::types::{ConfigVersion, UnixTime};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Largest file a bundle may carry.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// Largest sum of file sizes in a bundle.
pub const MAX_TOTAL_SIZE: u64 = 64 * 1024 * 1024;
/// Most files a bundle may carry.
pub const MAX_FILES: usize = 10_000;
/// Longest path (bytes) in a bundle.
pub const MAX_PATH_LEN: usize = 1024;
/// Marker of the names [`apply`] uses for its own files (staged files
/// `.<name>.ironfence-new-…`, backups `.<name>.ironfence-old-…`, the staging directory, the
/// journal and the lock): a path component containing it is never collected nor accepted.
pub const RESERVED_MARKER: &str = ".ironfence-";
/// The captive portal's template overrides: synchronized like `conf/ssl/**`.
pub const PORTAL_TEMPLATES: &str = "conf/portal/templates";
const PORTAL_TEMPLATES_PREFIX: &str = "conf/portal/templates/";
/// Files (relative to the installation root) that are never synchronized: not collected, never
/// accepted from a peer, never deleted by [`apply`].
pub const NEVER_SYNCED: &[&str] = &["conf/cluster-files.txt"];

/// One synchronized file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Relative to the installation root, `/`-separated (e.g. `conf/pf.conf`).
    pub path: String,
    /// Permission bits (`0o777` at most), e.g. `0o600` for private keys.
    pub mode: u32,
    /// Shared, so that a decoded bundle slices the received bytes instead of copying them.
    pub content: Bytes,
}

/// The set of synchronized files, sorted by path, each path valid and unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    files: Vec<BundleFile>,
}

/// Everything that can go wrong collecting, decoding or applying a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "configuration directory {} must be the `conf` directory of the installation root {} \
         (bundle paths are relative to the installation root)",
        conf_dir.display(), install_root.display()
    )]
    ConfDirLayout {
        conf_dir: PathBuf,
        install_root: PathBuf,
    },
    #[error(
        "refusing to synchronize symbolic link {}: replace it with a regular file (a link could \
         make a peer write outside the installation root)",
        path.display()
    )]
    Symlink { path: PathBuf },
    #[error("{} is not a regular file; only regular files are synchronized", path.display())]
    NotRegularFile { path: PathBuf },
    #[error(
        "{} (listed in conf/cluster-files.txt) is outside the installation root {}: only files \
         under the installation root can be synchronized; remove that line",
        path.display(), install_root.display()
    )]
    ExtraOutsideRoot {
        path: PathBuf,
        install_root: PathBuf,
    },
    #[error(
        "{} is listed in conf/cluster-files.txt but does not exist: create it or remove that line",
        path.display()
    )]
    ExtraMissing { path: PathBuf },
    #[error("{} is not valid UTF-8; rename it to synchronize it", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error("invalid bundle path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{path} is {size} bytes, more than the {max} bytes a synchronized file may have")]
    FileTooLarge { path: String, size: u64, max: u64 },
    #[error("the synchronized files total more than {max} bytes")]
    BundleTooLarge { max: u64 },
    #[error("more than {max} files to synchronize")]
    TooManyFiles { max: usize },
    #[error("not a configuration bundle (missing IFBUNDLE magic)")]
    BadMagic,
    #[error(
        "bundle format version {found} is not supported (this server reads version {supported}); upgrade this server"
    )]
    UnsupportedFormat { found: u16, supported: u16 },
    #[error("malformed bundle at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: String },
    #[error(
        "bundle refused: its header announces version {announced} but its files hash to \
         {computed} (corrupted or tampered in transit)"
    )]
    HashMismatch { announced: String, computed: String },
    #[error("the received configuration was refused, nothing was changed: {0}")]
    Validation(String),
    #[error("bundle refused, nothing was written: this server does not accept {path}: {reason}")]
    NotAccepted { path: String, reason: String },
    #[error(
        "bundle refused, nothing was written: its version {} is dated {changed_at} (UNIX \
         time), {} s ahead of this server's clock ({now}); at most {max_skew} s of clock skew \
         is accepted (a version from the future would win \"most recent\" forever): fix the \
         clock of {changed_by} or of this server, then publish again",
        &.hash[..hash.len().min(12)], .changed_at.saturating_sub(*.now)
    )]
    FromTheFuture {
        hash: String,
        changed_by: String,
        changed_at: UnixTime,
        now: UnixTime,
        max_skew: i64,
    },
    #[error(
        "an interrupted configuration apply is pending ({}): it is completed at the next \
         start of any ironfence command; until then this server's version is not reported",
        journal.display()
    )]
    ApplyPending { journal: PathBuf },
    #[error("{} is corrupt ({reason}): restore the files listed in it by hand, then delete it", path.display())]
    CorruptJournal { path: PathBuf, reason: String },
    #[error(transparent)]
    Version(#[from] crate::version::VersionStoreError),
    #[error(
        "applying the configuration failed at {}: {source}; {}",
        path.display(),
        if rollback_errors.is_empty() {
            "every file was restored to its previous content".to_string()
        } else {
            format!("ROLLBACK INCOMPLETE ({}), check these files by hand: {}", RECOVERY_NOTE, rollback_errors.join("; "))
        }
    )]
    Commit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        rollback_errors: Vec<String>,
    },
}

impl BundleError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BundleError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl Bundle {
    /// The same files with every mode passed through [`normalize_mode`] (what a receiver
    /// writes), and the paths whose mode changed.
    pub fn normalized(self) -> (Bundle, Vec<String>) {
        let mut changed = Vec::new();
        let files = self
            .files
            .into_iter()
            .map(|mut f| {
                let m = normalize_mode(f.mode);
                if m != f.mode {
                    changed.push(format!("{} ({:o} → {:o})", f.path, f.mode, m));
                    f.mode = m;
                }
                f
            })
            .collect();
        (Bundle { files }, changed)
    }

    /// Builds a bundle from files in any order: validates every path and mode, the size limits,
    /// and refuses duplicates and a path that is also a directory of another path.
    pub fn from_files(mut files: Vec<BundleFile>) -> Result<Bundle, BundleError> {
        if files.len() > MAX_FILES {
            return Err(BundleError::TooManyFiles { max: MAX_FILES });
        }
        let mut total: u64 = 0;
        for f in &files {
            validate_path(&f.path)?;
            if f.mode > 0o777 {
                return Err(BundleError::InvalidPath {
                    path: f.path.clone(),
                    reason: "mode has bits beyond 0o777 (setuid/setgid/sticky are never synchronized)",
                });
            }
            let size = f.content.len() as u64;
            if size > MAX_FILE_SIZE {
                return Err(BundleError::FileTooLarge {
                    path: f.path.clone(),
                    size,
                    max: MAX_FILE_SIZE,
                });
            }
            total = total.saturating_add(size);
            if total > MAX_TOTAL_SIZE {
                return Err(BundleError::BundleTooLarge {
                    max: MAX_TOTAL_SIZE,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        check_unique_and_not_nested(files.iter().map(|f| f.path.as_str()))?;
        Ok(Bundle { files })
    }

    /// The files, sorted by path.
    pub fn files(&self) -> &[BundleFile] {
        &self.files
    }

    pub fn get(&self, path: &str) -> Option<&BundleFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }

    /// Files outside the default set (`conf/*.conf`, `conf/ssl/**`): the extra files of
    /// `conf/cluster-files.txt`.
    pub fn extra_files(&self) -> Vec<&str> {
        self.files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| !is_default_synced(p))
            .collect()
    }

    /// Sum of the file sizes.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.content.len() as u64).sum()
    }

    /// Lower-case hex SHA-256 over the sorted (path, mode, length, content) records; this is
    /// [`ConfigVersion::hash`]. Framing: a domain tag, the record count, then per record the
    /// path length (u64 BE), path, mode (u32 BE), content length (u64 BE), content.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"ironfence-config-bundle-v1\0");
        h.update((self.files.len() as u64).to_be_bytes());
        for f in &self.files {
            h.update((f.path.len() as u64).to_be_bytes());
            h.update(f.path.as_bytes());
            h.update(f.mode.to_be_bytes());
            h.update((f.content.len() as u64).to_be_bytes());
            h.update(&f.content);
        }
        let digest = h.finalize();
        let mut out = String::with_capacity(64);
        for b in digest.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Encodes the bundle with `version` in the header (see [`decode`] for the format).
    /// `version.hash` should be [`Bundle::hash`]; a mismatch is refused by the receiver.
    pub fn encode(&self, version: &ConfigVersion) -> Vec<u8> {
        wire::encode(self, version)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// True for the paths synchronized without being listed: `conf/*.conf` (directly in `conf/`)
/// and anything under `conf/ssl/`.
pub fn is_default_synced(path: &str) -> bool {
    match path.strip_prefix("conf/") {
        Some(rest) => {
            if NEVER_SYNCED.contains(&path) {
                return false;
            }
            rest.starts_with("ssl/")
                || path.starts_with(PORTAL_TEMPLATES_PREFIX)
                || (!rest.contains('/') && rest.ends_with(".conf"))
        }
        None => false,
    }
}

/// True for a file name of [`apply`]'s own (staged files, backups, staging directory, journal,
/// lock): never collected, never accepted, never deleted as "absent from the bundle".
pub fn is_reserved_name(name: &str) -> bool {
    name.contains(RESERVED_MARKER)
}

/// What a failed rollback leaves to the operator.
const RECOVERY_NOTE: &str = "the journal is kept: the next start of any ironfence command retries";

/// Validates a bundle path: relative, `/`-separated, no empty, `.` or `..` component, no NUL
/// or other control character, no name reserved for apply's own files, at most
/// [`MAX_PATH_LEN`] bytes. A valid path never leaves the installation root lexically (apply
/// also refuses symbolic links on the way).
pub fn validate_path(path: &str) -> Result<(), BundleError> {
    let bad = |reason| {
        Err(BundleError::InvalidPath {
            path: path.chars().take(200).collect(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_PATH_LEN {
        return bad("too long");
    }
    if path.starts_with('/') {
        return bad("absolute");
    }
    if path.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if path.contains('\\') {
        return bad("contains a backslash");
    }
    for c in path.split('/') {
        match c {
            "" => return bad("empty component"),
            "." | ".." => return bad("`.` or `..` component"),
            _ => {}
        }
        if is_reserved_name(c) {
            return bad("uses a name reserved for apply's own files (containing `.ironfence-`)");
        }
    }
    Ok(())
}

/// Sorted input: refuses duplicates and a file that is also an ancestor directory of another.
fn check_unique_and_not_nested<'a>(
    sorted: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), BundleError> {
    let mut seen = BTreeSet::new();
    for p in sorted.clone() {
        if !seen.insert(p) {
            return Err(BundleError::InvalidPath {
                path: p.to_string(),
                reason: "appears twice",
            });
        }
    }
    for p in sorted {
        let mut idx = 0;
        while let Some(pos) = p[idx..].find('/') {
            let ancestor = &p[..idx + pos];
            if seen.contains(ancestor) {
                return Err(BundleError::InvalidPath {
                    path: p.to_string(),
                    reason: "its parent directory is also a file of the bundle",
                });
            }
            idx += pos + 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! Where this server remembers its configuration version: `<state_dir>/config-version.json`.
//!
//! The hash alone says *what* runs; the file adds *when* and *where* it was changed, which the
//! conflict resolution needs ("most recent"). A bundle hash that differs from the recorded one
//! means the configuration was changed on this server without going through a recorded write
//! (a manual edit, a local tool): it becomes a new version changed now, by this server.

use crate::types::{ConfigVersion, UnixTime};
use std::fs;
use std::path::{Path, PathBuf};

/// File name inside the state directory.
pub const VERSION_FILE: &str = "config-version.json";

/// What [`VersionStore::current`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalChange {
    /// The recorded version matches the files.
    Unchanged,
    /// The files changed since the recorded version (or nothing was recorded yet); a new
    /// version was recorded. `previous` is the version recorded before, if any.
    Detected { previous: Option<ConfigVersion> },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VersionStoreError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a valid configuration version record ({source}); delete it and the current \
         configuration will be recorded as changed locally",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads and writes `<state_dir>/config-version.json` (atomically: temporary file, fsync,
/// rename, fsync of the directory).
#[derive(Debug, Clone, Copy)]
pub struct VersionStore;

impl VersionStore {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(VERSION_FILE)
    }

    /// The recorded version, `None` if nothing was recorded yet.
    pub fn load(state_dir: &Path) -> Result<Option<ConfigVersion>, VersionStoreError> {
        let path = Self::path(state_dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| VersionStoreError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VersionStoreError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// This server's version for a bundle hashing to `bundle_hash`: the recorded version if its
    /// hash matches; otherwise a local change is detected and
    /// `ConfigVersion { hash, changed_at: now, changed_by: identity }` is recorded and returned.
    /// Call it through [`crate::bundle::local_version`], which holds the apply lock and never
    /// stamps while an apply is pending (a half-applied mix is not a local change).
    pub fn current(
        state_dir: &Path,
        bundle_hash: &str,
        identity: &str,
        now: UnixTime,
    ) -> Result<(ConfigVersion, LocalChange), VersionStoreError> {
        let previous = Self::load(state_dir)?;
        if let Some(v) = &previous
            && v.hash == bundle_hash
        {
            return Ok((v.clone(), LocalChange::Unchanged));
        }
        let v = ConfigVersion {
            hash: bundle_hash.to_string(),
            changed_at: now,
            changed_by: identity.to_string(),
        };
        Self::record(state_dir, &v)?;
        Ok((v, LocalChange::Detected { previous }))
    }

    /// Records `version`, e.g. after applying a peer's bundle (keeping the peer's `changed_at`
    /// and `changed_by`) or after a local write through the admin tools.
    pub fn record(state_dir: &Path, version: &ConfigVersion) -> Result<(), VersionStoreError> {
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| VersionStoreError::Io { op, path, source }
        };
        let path = Self::path(state_dir);
        let mut json = serde_json::to_vec_pretty(version).unwrap_or_default();
        json.push(b'\n');
        ironfence_core::fsutil::write_atomic(&path, &json, 0o600).map_err(io("write", &path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_records_a_local_change() {
        let dir = tempfile::tempdir().unwrap();
        let (v, c) = VersionStore::current(dir.path(), "aa", "pf1", 100).unwrap();
        assert_eq!(
            v,
            ConfigVersion {
                hash: "aa".into(),
                changed_at: 100,
                changed_by: "pf1".into()
            }
        );
        assert_eq!(c, LocalChange::Detected { previous: None });
        assert_eq!(VersionStore::load(dir.path()).unwrap(), Some(v));
    }

    #[test]
    fn same_hash_keeps_the_recorded_version() {
        let dir = tempfile::tempdir().unwrap();
        let peer = ConfigVersion {
            hash: "bb".into(),
            changed_at: 50,
            changed_by: "pf2".into(),
        };
        VersionStore::record(dir.path(), &peer).unwrap();
        let (v, c) = VersionStore::current(dir.path(), "bb", "pf1", 999).unwrap();
        assert_eq!((v, c), (peer, LocalChange::Unchanged));
    }

    #[test]
    fn manual_edit_is_a_new_version_by_this_server() {
        let dir = tempfile::tempdir().unwrap();
        let peer = ConfigVersion {
            hash: "bb".into(),
            changed_at: 50,
            changed_by: "pf2".into(),
        };
        VersionStore::record(dir.path(), &peer).unwrap();
        let (v, c) = VersionStore::current(dir.path(), "cc", "pf1", 999).unwrap();
        assert_eq!(v.changed_at, 999);
        assert_eq!(v.changed_by, "pf1");
        assert_eq!(
            c,
            LocalChange::Detected {
                previous: Some(peer)
            }
        );
        // Now recorded: the next check is unchanged.
        let (_, c) = VersionStore::current(dir.path(), "cc", "pf1", 1000).unwrap();
        assert_eq!(c, LocalChange::Unchanged);
        assert!(!dir.path().join("config-version.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_an_actionable_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(VersionStore::path(dir.path()), b"{not json").unwrap();
        let e = VersionStore::current(dir.path(), "aa", "pf1", 1).unwrap_err();
        assert!(e.to_string().contains("delete it"), "{e}");
    }
}

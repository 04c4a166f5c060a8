//! Durable, race-free file writes: the one helper every crate uses to replace a file.
//!
//! [`write_atomic`] writes a temporary file with a unique name in the target's directory
//! (created with `O_CREAT|O_EXCL|O_NOFOLLOW`, so a link planted there is never followed and
//! two writers never share a temporary), sets the mode explicitly (the umask cannot widen or
//! narrow it), fsyncs it, renames it over the target (rename replaces a planted symbolic link
//! instead of writing through it) and fsyncs the directory so the rename survives a crash.
//!
//! This is IO by nature; it lives in `core` only so that every layer shares one copy.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `O_NOFOLLOW` on Linux: opening a symbolic link fails with `ELOOP`.
const O_NOFOLLOW: i32 = 0o400_000;

/// Options for [`write_atomic_with`].
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Permission bits of the file (e.g. `0o600` for secrets).
    pub mode: u32,
    /// Mode of directories created on the way (`None`: the parent must exist).
    pub create_dirs: Option<u32>,
    /// Owner and group to give the file before it becomes visible (root writing a file another
    /// user must read). `None` keeps the writer's.
    pub owner: Option<(u32, u32)>,
}

impl WriteOptions {
    /// A file with `mode`, parent directories created `0o700` when missing.
    pub fn mode(mode: u32) -> WriteOptions {
        WriteOptions {
            mode,
            create_dirs: Some(0o700),
            owner: None,
        }
    }
}

/// Replaces `path` with `data` atomically and durably, with permission bits `mode`; missing
/// parent directories are created `0o700`. See the module documentation.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_with(path, data, WriteOptions::mode(mode))
}

/// [`write_atomic`] with every option.
pub fn write_atomic_with(path: &Path, data: &[u8], opts: WriteOptions) -> io::Result<()> {
    let dir = parent_of(path)?;
    if let Some(dir_mode) = opts.create_dirs {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)?;
    }
    let tmp = unique_temp_name(path)?;
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(O_NOFOLLOW)
            .mode(opts.mode)
            .open(&tmp)?;
        if let Some((uid, gid)) = opts.owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        // The umask may have narrowed the requested mode: set it explicitly.
        f.set_permissions(fs::Permissions::from_mode(opts.mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Fsyncs a directory so that renames and unlinks in it survive a crash. Best effort: some
/// filesystems cannot fsync a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates `dir` (and missing parents) and makes sure it has exactly `mode` (e.g. `0o700`
/// for the control socket's directory). Refuses a symbolic link in place of the directory.
pub fn ensure_dir_mode(dir: &Path, mode: u32) -> io::Result<()> {
    set_dir_mode(dir, mode, |_| mode).map(|_| ())
}

/// Creates `dir` (and missing parents) with `max_mode`, or removes from an existing directory
/// every permission bit outside `max_mode` (a 0710 directory stays 0710 under 0750; a 0755
/// one becomes 0750). Returns the resulting mode. Refuses a symbolic link in its place.
pub fn tighten_dir_mode(dir: &Path, max_mode: u32) -> io::Result<u32> {
    set_dir_mode(dir, max_mode, |current| current & max_mode)
}

/// Creates `dir` with `create_mode` if missing, then gives it `wanted(current mode)`.
fn set_dir_mode(dir: &Path, create_mode: u32, wanted: impl Fn(u32) -> u32) -> io::Result<u32> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(create_mode)
        .create(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a symbolic link or file is in its place)",
            dir.display()
        )));
    }
    let current = meta.permissions().mode() & 0o7777;
    let new = wanted(current);
    if new != current {
        fs::set_permissions(dir, fs::Permissions::from_mode(new))?;
    }
    Ok(new)
}

/// Creates `dir` (and missing parents, `mode`) when it does not exist; an existing directory
/// is left as it is (its owner chose its mode).
pub fn ensure_dir_mode_if_new(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

fn parent_of(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )),
    }
}

/// `.<name>.tmp-<pid>-<counter>` next to `path`: unique within and across processes.
pub fn unique_temp_name(path: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let tmp = format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Ok(parent_of(path)?.join(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_with_exact_mode_despite_umask() {
        let dir = tempfile_dir();
        let p = dir.join("sub/secret.key");
        write_atomic(&p, b"k", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"k");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(
            fs::metadata(dir.join("sub")).unwrap().mode() & 0o7777,
            0o700
        );
        write_atomic(&p, b"k2", 0o640).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"k2");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        // No temporary left behind.
        let left: Vec<_> = fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = tempfile_dir();
        let victim = dir.join("victim");
        fs::write(&victim, b"original").unwrap();
        let target = dir.join("recovered-position");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"original");
        assert!(
            !fs::symlink_metadata(&target)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&target).unwrap(), b"new");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tighten_dir_mode_only_removes_bits() {
        let dir = tempfile_dir();
        let d = dir.join("state");
        assert_eq!(tighten_dir_mode(&d, 0o750).unwrap(), 0o750);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o710)).unwrap();
        assert_eq!(tighten_dir_mode(&d, 0o750).unwrap(), 0o710);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(tighten_dir_mode(&d, 0o750).unwrap(), 0o750);
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o750);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ensure_dir_mode_tightens_existing() {
        let dir = tempfile_dir();
        let d = dir.join("state");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir_mode(&d, 0o750).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o750);
        let link = dir.join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(ensure_dir_mode(&link, 0o750).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        tempfile::tempdir().unwrap().keep()
    }
}

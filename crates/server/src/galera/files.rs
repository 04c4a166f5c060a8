//! The Galera node's files on disk: the directories of [`GaleraLayout`], their owners and
//! modes, the generated option file (mode 0640, root:mysql: it holds the SST password and the
//! SST scripts, running as `mysql`, read it), and the position cache of `--wsrep-recover`.
//!
//! ```text
//!   <state_dir>/mysql/          root:mysql 01770  (sticky: mysql creates its socket, pid file
//!   ├── my.cnf                  root:mysql  0640   and logs here, but cannot replace my.cnf)
//!   ├── data/                   mysql:mysql 0750  (datadir; grastate.dat, gvwstate.dat)
//!   ├── tmp/                    mysql:mysql 0750
//!   ├── sst_log_archive/        mysql:mysql 0750
//!   ├── mysqld.sock, mysqld.pid, error.log, wsrep-recover.log   (mysql's)
//!   └── recovered-position      root 0644: the last `--wsrep-recover` result, for peers
//! ```
//!
//! Root works in directories the `mysql` user can write (`<state_dir>/mysql` is group-writable,
//! `data/` is mysql's): `mysql` can plant a symbolic link at any name root later writes or
//! reads there, or swap `data/` itself for a link. So root never follows a link there: files
//! are replaced with [`write_atomic_with`] (a new temporary opened `O_CREAT|O_EXCL|O_NOFOLLOW`,
//! then rename, which replaces a link instead of writing through it); files are read with
//! `O_NOFOLLOW`; the datadir is opened once with `O_NOFOLLOW|O_DIRECTORY` and its files are
//! reached through that descriptor (`/proc/self/fd/N/<name>`), so a swapped `data/` is refused,
//! not followed; owners and modes of the directories are set on a descriptor opened the same
//! way (`fchown`/`fchmod`), never by path.
//!
//! [`write_atomic_with`]: ironfence_core::fsutil::write_atomic_with

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ironfence_core::fsutil::{WriteOptions, write_atomic_with};

use ironfence_galera::GaleraLayout;

/// Mode of the generated option file.
pub const CONFIG_MODE: u32 = 0o640;
/// Mode of `<state_dir>/mysql`: group-writable for `mysql`, sticky so that `mysql` cannot
/// remove or replace root's `my.cnf`.
pub const BASE_MODE: u32 = 0o1770;
/// Mode of the directories owned by `mysql`.
pub const MYSQL_DIR_MODE: u32 = 0o750;
/// The OS account mariadbd runs as (`user=mysql` in the option file).
pub const MYSQL_USER: &str = "mysql";

/// A system account's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// The `mysql` account from `/etc/passwd` (its primary group is the group of the option file).
pub fn mysql_account() -> Result<Account, String> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    parse_passwd(&passwd, MYSQL_USER).ok_or_else(|| {
        format!(
            "there is no {MYSQL_USER:?} system user: mariadbd runs as {MYSQL_USER} (rsync SST fails as root); install mariadb-server (apt-get install mariadb-server galera-4 rsync), which creates it"
        )
    })
}

/// `name`'s uid and primary gid in a passwd(5) text.
pub fn parse_passwd(text: &str, name: &str) -> Option<Account> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        Some(Account {
            uid: f.next()?.parse().ok()?,
            gid: f.next()?.parse().ok()?,
        })
    })
}

/// The directory holding the layout (`<state_dir>/mysql`).
pub fn base_dir(layout: &GaleraLayout) -> PathBuf {
    layout
        .config_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the supervisor keeps the position `--wsrep-recover` found.
pub fn recovered_position_file(layout: &GaleraLayout) -> PathBuf {
    base_dir(layout).join("recovered-position")
}

/// Where `mariadbd --wsrep-recover` logs.
pub fn recover_log(layout: &GaleraLayout) -> PathBuf {
    base_dir(layout).join("wsrep-recover.log")
}

/// Whether the `mysql` account (`uid`, `gid`) can traverse a directory with this mode and
/// owner.
pub fn traversable_by(mode: u32, owner_uid: u32, owner_gid: u32, who: Account) -> bool {
    if owner_uid == who.uid {
        mode & 0o100 != 0
    } else if owner_gid == who.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Creates the layout's directories with their owners and modes (see the module
/// documentation). Every ancestor of `<state_dir>/mysql` must be traversable by `mysql`.
pub fn prepare_dirs(layout: &GaleraLayout, mysql: Account) -> Result<(), String> {
    let base = base_dir(layout);
    std::fs::create_dir_all(&base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    for ancestor in base.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::metadata(ancestor)
            .map_err(|e| format!("cannot inspect {}: {e}", ancestor.display()))?;
        if !traversable_by(meta.mode(), meta.uid(), meta.gid(), mysql) {
            return Err(format!(
                "the {MYSQL_USER} user cannot enter {} (mode {:o}): mariadbd runs as {MYSQL_USER} and its files are under it; run `chmod o+x {}` or choose another pf.conf [general] state_dir",
                ancestor.display(),
                meta.mode() & 0o7777,
                ancestor.display()
            ));
        }
    }
    set_owner_mode(&base, 0, mysql.gid, BASE_MODE)?;
    for dir in [&layout.datadir, &layout.tmpdir, &layout.sst_log_archive] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        set_owner_mode(dir, mysql.uid, mysql.gid, MYSQL_DIR_MODE)?;
    }
    Ok(())
}

/// `O_NOFOLLOW` / `O_DIRECTORY` on Linux.
const O_NOFOLLOW: i32 = 0o400_000;
const O_DIRECTORY: i32 = 0o200_000;
/// `ELOOP`: what opening a symbolic link with `O_NOFOLLOW` fails with.
const ELOOP: i32 = 40;

/// Why a path could not be opened, saying so plainly when a link was planted in its place.
fn open_error(path: &Path, e: &std::io::Error) -> String {
    // O_NOFOLLOW gives ELOOP on a link to a file, O_DIRECTORY ENOTDIR on a link to a directory.
    let link = e.raw_os_error() == Some(ELOOP)
        || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if link {
        format!(
            "{} is a symbolic link: refusing to follow it (the {MYSQL_USER} user can create links there; remove it and check who planted it)",
            path.display()
        )
    } else {
        format!("cannot open {}: {e}", path.display())
    }
}

/// Opens a directory without following a symbolic link in its place.
pub fn open_dir_nofollow(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_DIRECTORY)
        .open(path)
}

/// Opens a regular file for reading without following a symbolic link in its place.
pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// `name` inside an opened directory, whatever its path now points to.
fn in_dir(dir: &File, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

fn read_to_string_nofollow(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    open_nofollow(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Sets owner and mode on the directory itself, refusing a symbolic link in its place (root
/// would otherwise chown whatever it points to, e.g. `/etc`, to `mysql`).
fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: u32) -> Result<(), String> {
    let dir = open_dir_nofollow(path).map_err(|e| open_error(path, &e))?;
    std::os::unix::fs::fchown(&dir, Some(uid), Some(gid)).map_err(|e| {
        format!(
            "cannot give {} to uid {uid} gid {gid}: {e} (run this command as root)",
            path.display()
        )
    })?;
    dir.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {:o} {}: {e}", mode, path.display()))
}

/// Writes the option file atomically (temporary file, then rename) with mode 0640, owner
/// root, group `group` (the `mysql` group; `None` keeps the caller's group, for tests run
/// without root). The mode is set before any secret is written.
pub fn write_config(path: &Path, text: &str, group: Option<u32>) -> Result<(), String> {
    // Unchanged (the supervisor regenerates it before every decision): leave it alone.
    if let (Ok(meta), Ok(current)) = (std::fs::metadata(path), std::fs::read(path))
        && current == text.as_bytes()
        && meta.mode() & 0o7777 == CONFIG_MODE
        && group.is_none_or(|gid| meta.uid() == 0 && meta.gid() == gid)
    {
        return Ok(());
    }
    let opts = ironfence_core::fsutil::WriteOptions {
        mode: CONFIG_MODE,
        create_dirs: Some(0o755),
        owner: group.map(|gid| (0, gid)),
    };
    ironfence_core::fsutil::write_atomic_with(path, text.as_bytes(), opts)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The datadir, opened without following a link in its place; `None` when it does not exist.
fn open_datadir(layout: &GaleraLayout) -> Result<Option<File>, String> {
    match open_dir_nofollow(&layout.datadir) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(&layout.datadir, &e)),
    }
}

/// `grastate.dat`, or `None` when the datadir has none (empty, or wiped for an SST). A
/// symbolic link in its place (or in place of the datadir) is an error, never followed.
pub fn read_grastate(layout: &GaleraLayout) -> Result<Option<ironfence_galera::GraState>, String> {
    let path = layout.grastate();
    let Some(dir) = open_datadir(layout)? else {
        return Ok(None);
    };
    match read_to_string_nofollow(&in_dir(&dir, GRASTATE)) {
        Ok(text) => ironfence_galera::grastate::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(&path, &e)),
    }
}

const GRASTATE: &str = "grastate.dat";
const GVWSTATE: &str = "gvwstate.dat";

/// Sets `safe_to_bootstrap: 1` in `grastate.dat` (when there is one) and removes
/// `gvwstate.dat`: what `--force-new-cluster` does before `--wsrep-new-cluster`. The datadir
/// belongs to `mysql`: the new `grastate.dat` replaces the old one by rename (owner and mode
/// kept), never written through a link planted there.
pub fn force_bootstrap_files(layout: &GaleraLayout) -> Result<(), String> {
    let path = layout.grastate();
    let Some(dir) = open_datadir(layout)? else {
        return Ok(());
    };
    let target = in_dir(&dir, GRASTATE);
    match open_nofollow(&target) {
        Ok(mut f) => {
            let meta = f
                .metadata()
                .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
            let mut text = String::new();
            f.read_to_string(&mut text)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            drop(f);
            let marked = ironfence_galera::mark_safe_to_bootstrap(&text);
            let opts = WriteOptions {
                mode: meta.mode() & 0o666,
                create_dirs: None,
                owner: Some((meta.uid(), meta.gid())),
            };
            write_atomic_with(&target, marked.as_bytes(), opts)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(open_error(&path, &e)),
    }
    // unlink removes a link itself, never its target.
    match std::fs::remove_file(in_dir(&dir, GVWSTATE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot remove {}: {e}",
            layout.gvwstate().display()
        )),
    }
}

/// Whether the datadir holds an initialised database (its `mysql` system schema).
pub fn datadir_initialised(layout: &GaleraLayout) -> bool {
    layout.datadir.join("mysql").is_dir()
}

/// The cached `--wsrep-recover` result (`uuid:seqno`): only a regular file this process's
/// user owns (root wrote it), never through a link, never one `mysql` created.
pub fn read_recovered(layout: &GaleraLayout) -> Option<(String, i64)> {
    let path = recovered_position_file(layout);
    let mut f = open_nofollow(&path).ok()?;
    let me = std::fs::metadata("/proc/self").ok()?.uid();
    if f.metadata().ok()?.uid() != me {
        tracing::warn!(path = %path.display(), "ignoring a recovered position this server did not write");
        return None;
    }
    let mut text = String::new();
    f.by_ref().take(4096).read_to_string(&mut text).ok()?;
    let (uuid, seqno) = text.trim().rsplit_once(':')?;
    Some((uuid.to_string(), seqno.parse().ok()?))
}

/// Caches the `--wsrep-recover` result, replacing (never following) whatever is at its name.
pub fn write_recovered(layout: &GaleraLayout, uuid: &str, seqno: i64) -> Result<(), String> {
    let path = recovered_position_file(layout);
    let opts = WriteOptions {
        mode: 0o644,
        create_dirs: None,
        owner: None,
    };
    write_atomic_with(&path, format!("{uuid}:{seqno}\n").as_bytes(), opts)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn clear_recovered(layout: &GaleraLayout) {
    let _ = std::fs::remove_file(recovered_position_file(layout));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let text = "root:x:0:0:root:/root:/bin/bash\nmysql:x:102:105:MariaDB Server,,,:/nonexistent:/bin/false\n";
        assert_eq!(
            parse_passwd(text, "mysql"),
            Some(Account { uid: 102, gid: 105 })
        );
        assert_eq!(parse_passwd(text, "mysq"), None);
        assert_eq!(parse_passwd("mysql:x:abc:1:", "mysql"), None);
    }

    #[test]
    fn traversal_rules() {
        let mysql = Account { uid: 102, gid: 105 };
        assert!(traversable_by(0o755, 0, 0, mysql));
        assert!(
            !traversable_by(0o700, 0, 0, mysql),
            "tempdir-like 0700 root"
        );
        assert!(traversable_by(0o750, 0, 105, mysql), "group mysql");
        assert!(
            !traversable_by(0o705, 0, 105, mysql),
            "group bits apply, not other"
        );
        assert!(traversable_by(0o700, 102, 0, mysql), "owner mysql");
    }

    #[test]
    fn config_file_mode_and_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mysql/my.cnf");
        write_config(&path, "[mariadbd]\nwsrep_sst_auth=a:b\n", None).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, CONFIG_MODE);
        write_config(&path, "second\n", None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert!(!path.with_extension("cnf.tmp").exists());
        // As root, the group is set as asked.
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            == 0
        {
            write_config(&path, "third\n", Some(4242)).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (0, 4242));
            assert_eq!(meta.mode() & 0o7777, CONFIG_MODE);
        }
    }

    #[test]
    fn force_bootstrap_marks_and_removes_gvwstate() {
        let dir = tempfile::tempdir().unwrap();
        let layout = GaleraLayout::new(dir.path());
        std::fs::create_dir_all(&layout.datadir).unwrap();
        std::fs::write(
            layout.grastate(),
            "# GALERA saved state\nversion: 2.1\nuuid:    5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno:   -1\nsafe_to_bootstrap: 0\n",
        )
        .unwrap();
        std::fs::write(layout.gvwstate(), "my_uuid: x\n").unwrap();
        force_bootstrap_files(&layout).unwrap();
        let g = read_grastate(&layout).unwrap().unwrap();
        assert!(g.safe_to_bootstrap);
        assert_eq!(g.seqno, -1);
        assert!(!layout.gvwstate().exists());
        // Idempotent, and fine on an empty datadir.
        force_bootstrap_files(&layout).unwrap();
        let empty = GaleraLayout::new(&dir.path().join("other"));
        force_bootstrap_files(&empty).unwrap();
        assert_eq!(read_grastate(&empty).unwrap(), None);
    }

    #[test]
    fn recovered_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let layout = GaleraLayout::new(dir.path());
        std::fs::create_dir_all(base_dir(&layout)).unwrap();
        assert_eq!(read_recovered(&layout), None);
        write_recovered(&layout, "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b", 71).unwrap();
        assert_eq!(
            read_recovered(&layout),
            Some(("5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b".into(), 71))
        );
        clear_recovered(&layout);
        assert_eq!(read_recovered(&layout), None);
    }

    fn is_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            == 0
    }

    /// A root-owned file `mysql` would like to overwrite or read.
    fn victim(dir: &Path) -> PathBuf {
        let v = dir.join("victim");
        std::fs::write(&v, "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:99\nroot's data\n").unwrap();
        v
    }

    fn assert_intact(v: &Path) {
        assert_eq!(
            std::fs::read_to_string(v).unwrap(),
            "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:99\nroot's data\n",
            "the victim behind the planted link was modified"
        );
    }

    fn is_link(p: &Path) -> bool {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
    }

    /// Every name root writes or reads in a directory `mysql` can write, with a link planted
    /// in its place: the link's target is never written, chowned or read.
    #[test]
    fn planted_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = GaleraLayout::new(&dir.path().join("state"));
        std::fs::create_dir_all(&layout.datadir).unwrap();
        let v = victim(dir.path());

        // recovered-position: written by rename over the link, which stays untouched.
        let rp = recovered_position_file(&layout);
        std::os::unix::fs::symlink(&v, &rp).unwrap();
        assert_eq!(read_recovered(&layout), None, "read through a planted link");
        write_recovered(&layout, "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b", 71).unwrap();
        assert_intact(&v);
        assert!(!is_link(&rp));
        assert_eq!(
            read_recovered(&layout),
            Some(("5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b".into(), 71))
        );

        // grastate.dat as a link: refused by --force-new-cluster and by the reader.
        std::os::unix::fs::symlink(&v, layout.grastate()).unwrap();
        let e = force_bootstrap_files(&layout).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_intact(&v);
        let e = read_grastate(&layout).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::remove_file(layout.grastate()).unwrap();

        // gvwstate.dat as a link: the link is removed, not its target.
        std::fs::write(
            layout.grastate(),
            "version: 2.1\nuuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 3\nsafe_to_bootstrap: 0\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(&v, layout.gvwstate()).unwrap();
        force_bootstrap_files(&layout).unwrap();
        assert_intact(&v);
        assert!(!is_link(&layout.gvwstate()) && !layout.gvwstate().exists());
        assert!(read_grastate(&layout).unwrap().unwrap().safe_to_bootstrap);

        // The datadir itself swapped for a link to a directory holding a grastate.dat.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let other = elsewhere.join("grastate.dat");
        std::fs::write(
            &other,
            "uuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 1\n",
        )
        .unwrap();
        std::fs::rename(&layout.datadir, dir.path().join("data.moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &layout.datadir).unwrap();
        assert!(
            force_bootstrap_files(&layout)
                .unwrap_err()
                .contains("symbolic link")
        );
        assert!(
            read_grastate(&layout)
                .unwrap_err()
                .contains("symbolic link")
        );
        assert_eq!(
            std::fs::read_to_string(&other).unwrap(),
            "uuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 1\n"
        );
    }

    /// A regular file `mysql` created at the recovered position's name is not trusted.
    #[test]
    fn a_recovered_position_root_did_not_write_is_ignored() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let layout = GaleraLayout::new(dir.path());
        std::fs::create_dir_all(base_dir(&layout)).unwrap();
        let rp = recovered_position_file(&layout);
        std::fs::write(&rp, "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:999\n").unwrap();
        std::os::unix::fs::chown(&rp, Some(4242), Some(4242)).unwrap();
        assert_eq!(read_recovered(&layout), None);
    }

    /// `prepare_dirs` gives the datadir to mysql: a link swapped in its place would give its
    /// target (e.g. `/etc`) to mysql. Refused, target unchanged.
    #[test]
    fn prepare_dirs_never_chowns_through_a_link() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let layout = GaleraLayout::new(&dir.path().join("state"));
        let mysql = Account {
            uid: 4242,
            gid: 4243,
        };
        prepare_dirs(&layout, mysql).unwrap();
        let meta = std::fs::metadata(&layout.datadir).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (4242, 4243, MYSQL_DIR_MODE)
        );
        let victim_dir = dir.path().join("etc");
        std::fs::create_dir(&victim_dir).unwrap();
        std::fs::set_permissions(&victim_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_dir(&layout.datadir).unwrap();
        std::os::unix::fs::symlink(&victim_dir, &layout.datadir).unwrap();
        let e = prepare_dirs(&layout, mysql).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        let meta = std::fs::metadata(&victim_dir).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 0, 0o755)
        );
    }
}

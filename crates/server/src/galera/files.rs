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

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
        format!(
            "cannot give {} to uid {uid} gid {gid}: {e} (run this command as root)",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
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

/// `grastate.dat`, or `None` when the datadir has none (empty, or wiped for an SST).
pub fn read_grastate(layout: &GaleraLayout) -> Result<Option<ironfence_galera::GraState>, String> {
    let path = layout.grastate();
    match std::fs::read_to_string(&path) {
        Ok(text) => ironfence_galera::grastate::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Sets `safe_to_bootstrap: 1` in `grastate.dat` (when there is one) and removes
/// `gvwstate.dat`: what `--force-new-cluster` does before `--wsrep-new-cluster`.
pub fn force_bootstrap_files(layout: &GaleraLayout) -> Result<(), String> {
    let path = layout.grastate();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let marked = ironfence_galera::mark_safe_to_bootstrap(&text);
            // Keep the owner (mysql): rewrite in place.
            std::fs::write(&path, marked)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    match std::fs::remove_file(layout.gvwstate()) {
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

/// The cached `--wsrep-recover` result (`uuid:seqno`).
pub fn read_recovered(layout: &GaleraLayout) -> Option<(String, i64)> {
    let text = std::fs::read_to_string(recovered_position_file(layout)).ok()?;
    let (uuid, seqno) = text.trim().rsplit_once(':')?;
    Some((uuid.to_string(), seqno.parse().ok()?))
}

pub fn write_recovered(layout: &GaleraLayout, uuid: &str, seqno: i64) -> Result<(), String> {
    let path = recovered_position_file(layout);
    std::fs::write(&path, format!("{uuid}:{seqno}\n"))
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
}

//! Test support: real third-party peers started and cleaned up by tests.
//!
//! ```text
//!   test ──start()──▶ MariaDb ──spawns──▶ mariadbd (child, --user=mysql when root)
//!                        │                     ▲
//!                        │                     │ SIGTERM → SIGKILL by PID
//!                        ├──spawns──▶ watchdog (sh): kills mariadbd if the test process dies
//!                        └── Drop: kill watchdog, stop mariadbd, remove the temp dir
//! ```
//!
//! [`MariaDb`] runs a private, throw-away `mariadbd` in a temporary directory, listening on
//! `127.0.0.1:<free port>` and a private Unix socket. Nothing is ever skipped: if MariaDB is not
//! installed the start fails with a message saying to install `mariadb-server`.
//!
//! Cleanup: [`Drop`] stops the server by the PID this crate spawned (SIGTERM, then SIGKILL after
//! a grace period) and removes the directory; `Drop` runs during unwinding too, so a failing
//! test still cleans up. For the cases where `Drop` cannot run (the test binary is killed, or a
//! `MariaDb` is kept in a `static`, which is never dropped), a tiny watchdog shell process polls
//! the test process once a second and stops the server when it is gone.

pub mod nas;
pub mod netns;
pub mod slapd;
pub mod webdriver;
use anyhow::{Context, bail};
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Password of the `ironfence` test account. A **test fixture**, not a secret: the server only
/// lives for the duration of a test and only listens on 127.0.0.1.
pub const TEST_PASSWORD: &str = "ironfence-test-fixture-password-NOT-A-SECRET";
/// Account created for the code under test (`'ironfence'@'127.0.0.1'`).
pub const TEST_USER: &str = "ironfence";
/// Database created at start.
pub const TEST_DATABASE: &str = "ironfence_test";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running, private `mariadbd`. See the crate docs.
#[derive(Debug)]
pub struct MariaDb {
    child: Child,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
    socket: PathBuf,
    port: u16,
    /// OS/database user the client uses to administer the server over the socket.
    admin_user: String,
    client: PathBuf,
}

fn find_program(names: &[&str], dirs: &[&str]) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    candidates.extend(dirs.iter().map(PathBuf::from));
    for dir in candidates {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

const SYSTEM_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/sbin",
];

fn missing(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} not found: these tests need a real MariaDB server. Install it with \
         `sudo apt-get install mariadb-server` (Debian/Ubuntu; provides mariadbd, \
         mariadb-install-db and the mariadb client)"
    )
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free TCP port")?;
    Ok(l.local_addr()?.port())
}

/// Last `lines` lines of a file, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(s) => {
            let v: Vec<&str> = s.lines().collect();
            v[v.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn current_euid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the effective uid of this process (no unsafe FFI needed).
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn command_output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn lookup_id(flag: &str, user: &str) -> anyhow::Result<u32> {
    let s = command_output(Command::new("id").arg(flag).arg(user))?;
    s.trim()
        .parse()
        .with_context(|| format!("parsing `id {flag} {user}` output {s:?}"))
}

/// Sends `sig` to `pid`. The PID is always one of our own children that has not been reaped
/// yet, so it cannot have been reused by another process.
fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is a positive PID of our own
    // unreaped child (never 0 or -1, which would signal process groups).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Stops a child by PID: `first` signal, wait up to `grace`, then SIGKILL; always reaps it.
fn stop_child(child: &mut Child, first: libc::c_int, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child.id(), first);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl MariaDb {
    /// Initialises a fresh data directory, starts `mariadbd` on a free port and waits (≤ 60 s)
    /// until it accepts connections, then creates [`TEST_DATABASE`] and the [`TEST_USER`]
    /// account with [`TEST_PASSWORD`].
    pub fn start() -> anyhow::Result<MariaDb> {
        let mariadbd = find_program(&["mariadbd", "mysqld"], SYSTEM_DIRS)
            .ok_or_else(|| missing("mariadbd"))?;
        let install_db = find_program(&["mariadb-install-db", "mysql_install_db"], SYSTEM_DIRS)
            .ok_or_else(|| missing("mariadb-install-db"))?;
        let client = find_program(&["mariadb", "mysql"], SYSTEM_DIRS)
            .ok_or_else(|| missing("the mariadb client"))?;

        let dir = tempfile::Builder::new()
            .prefix("ironfence-mariadb-")
            .tempdir()
            .context("creating a temporary directory for mariadbd")?;
        let root = dir.path().to_path_buf();
        let datadir = root.join("data");
        let socket = root.join("mariadbd.sock");
        let error_log = root.join("error.log");

        // As root, mariadbd must drop to the `mysql` account, which then needs to own the
        // directory. As an ordinary user it runs as that user.
        let is_root = current_euid() == 0;
        let (server_user, admin_user) = if is_root {
            let uid = lookup_id("-u", "mysql").context(
                "running as root needs the `mysql` system user (created by mariadb-server)",
            )?;
            let gid = lookup_id("-g", "mysql")?;
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to mysql", root.display()))?;
            ("mysql".to_string(), "root".to_string())
        } else {
            let me = command_output(Command::new("id").arg("-un"))?
                .trim()
                .to_string();
            (me.clone(), me)
        };

        command_output(
            Command::new(&install_db)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--user={server_user}"))
                .arg("--auth-root-authentication-method=socket")
                .arg(format!("--auth-root-socket-user={admin_user}"))
                .arg("--skip-test-db")
                .arg("--skip-name-resolve")
                .arg("--innodb-log-file-size=16M")
                // Not the shared /tmp: concurrent bootstraps collide on temporary table names.
                .arg(format!("--tmpdir={}", root.display()))
                .current_dir(&root),
        )
        .context("mariadb-install-db failed")?;

        let mut last_err = None;
        for _attempt in 0..3 {
            let port = free_port()?;
            let child = Command::new(&mariadbd)
                .arg("--no-defaults")
                .arg(format!("--user={server_user}"))
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--log-error={}", error_log.display()))
                .arg(format!(
                    "--pid-file={}",
                    root.join("mariadbd.pid").display()
                ))
                .arg(format!("--tmpdir={}", root.display()))
                .arg("--skip-name-resolve")
                .arg("--skip-log-bin")
                .arg("--innodb-buffer-pool-size=64M")
                .arg("--innodb-log-file-size=16M")
                .arg("--innodb-flush-log-at-trx-commit=2")
                .arg("--innodb-doublewrite=0")
                .arg("--performance-schema=OFF")
                .arg("--max-connections=200")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("spawning {}", mariadbd.display()))?;
            let watchdog = spawn_watchdog(child.id()).ok();
            // Owned by `db` right away so that every early return stops it.
            let mut db = MariaDb {
                child,
                watchdog,
                dir: None,
                socket: socket.clone(),
                port,
                admin_user: admin_user.clone(),
                client: client.clone(),
            };
            match db.wait_ready(&error_log) {
                Ok(()) => {
                    db.dir = Some(dir);
                    db.setup()
                        .context("creating the test database and account")?;
                    return Ok(db);
                }
                Err(e) => {
                    let port_clash = tail(&error_log, 30).contains("Address already in use");
                    db.stop();
                    if !port_clash {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("mariadbd did not start")))
    }

    fn wait_ready(&mut self, error_log: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "mariadbd exited during startup ({status}); error log tail:\n{}",
                    tail(error_log, 30)
                );
            }
            let last = match self.admin_sql("SELECT 1") {
                Ok(_) => return Ok(()),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "mariadbd (pid {}) did not accept connections within {START_TIMEOUT:?}; \
                     last client error: {last}\nerror log tail:\n{}",
                    self.pid(),
                    tail(error_log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn setup(&self) -> anyhow::Result<()> {
        self.admin_sql(&format!(
            "CREATE USER IF NOT EXISTS '{TEST_USER}'@'127.0.0.1' IDENTIFIED BY '{TEST_PASSWORD}';"
        ))?;
        self.create_database(TEST_DATABASE)
    }

    /// Runs SQL as the administrator over the Unix socket and returns the tab-separated output
    /// (no column names). For test set-up only (e.g. `SET GLOBAL read_only = 1`).
    pub fn admin_sql(&self, sql: &str) -> anyhow::Result<String> {
        command_output(
            Command::new(&self.client)
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket.display()))
                .arg(format!("--user={}", self.admin_user))
                .arg("--batch")
                .arg("--skip-column-names")
                .arg("--connect-timeout=2")
                .arg("-e")
                .arg(sql),
        )
    }

    /// Creates database `name` (utf8mb4) if absent and grants the test account all rights on
    /// it, so several tests can share one server with separate databases. `name` must be an
    /// identifier of letters, digits and `_`.
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        if !valid_identifier(name) {
            bail!("invalid database name {name:?} (letters, digits and _ only, ≤ 64 chars)");
        }
        self.admin_sql(&format!(
            "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; \
             GRANT ALL PRIVILEGES ON `{name}`.* TO '{TEST_USER}'@'127.0.0.1';"
        ))
        .with_context(|| format!("creating database {name}"))?;
        Ok(())
    }

    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        TEST_USER
    }

    pub fn password(&self) -> &str {
        TEST_PASSWORD
    }

    /// The database created at start ([`TEST_DATABASE`]).
    pub fn database(&self) -> &str {
        TEST_DATABASE
    }

    /// PID of the `mariadbd` process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the server's Unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Data/socket/log directory (removed on drop).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    fn stop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            stop_child(&mut w, libc::SIGKILL, Duration::from_secs(1));
        }
        stop_child(&mut self.child, libc::SIGTERM, STOP_GRACE);
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                eprintln!("testkit: could not remove {}: {e}", path.display());
            }
        }
    }
}

/// Starts `sh` polling this test process; when it disappears, stops `server_pid` (TERM, then
/// KILL). `Drop` kills the watchdog first, so it never signals a reaped (reusable) PID.
fn spawn_watchdog(server_pid: u32) -> anyhow::Result<Child> {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do \
            kill -0 {server_pid} 2>/dev/null || exit 0; sleep 1; \
         done; \
         kill -TERM {server_pid} 2>/dev/null; \
         for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 {server_pid} 2>/dev/null || exit 0; sleep 1; done; \
         kill -KILL {server_pid} 2>/dev/null"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning the mariadbd watchdog")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(valid_identifier("ironfence_test_1"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("a`; DROP DATABASE x"));
        assert!(!valid_identifier("a-b"));
    }
}

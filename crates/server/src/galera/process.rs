//! mariadbd and its helper programs: finding them, their arguments (pure, tested), and
//! running them. `--defaults-file` must be the first argument of every MariaDB program.
//!
//! Processes are std's (the workspace's tokio has no `process` feature): short commands run
//! on the blocking pool; the long-running mariadbd is waited for by a dedicated thread that
//! reports its exit on a channel, and is stopped by PID (SIGTERM, then SIGKILL).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Directories searched after `PATH` (Debian puts mariadbd in /usr/sbin).
const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"];

/// What mariabackup SST runs (on the donor and on the joiner), with its Debian package: the
/// SST script (in `mariadb-server`), mariabackup itself and socat (the stream between them).
const SST_TOOLS: &[(&[&str], &str)] = &[
    (&["wsrep_sst_mariabackup"], "mariadb-server"),
    (&["mariadb-backup", "mariabackup"], "mariadb-backup"),
    (&["socat"], "socat"),
];

/// The MariaDB programs the supervisor runs.
#[derive(Debug, Clone)]
pub struct Programs {
    pub mariadbd: PathBuf,
    pub install_db: PathBuf,
    /// The `mariadb` command-line client (status queries, user creation over the socket).
    pub client: PathBuf,
}

impl Programs {
    /// Finds the programs in `PATH` and the system directories.
    pub fn find() -> Result<Programs, String> {
        let missing = |what: &str| {
            format!(
                "{what} not found in PATH or {}: install MariaDB and Galera (apt-get install mariadb-server mariadb-client galera-4 mariadb-backup socat)",
                SYSTEM_DIRS.join(", ")
            )
        };
        // The state transfer runs on the donor when a peer joins, long after this start: a
        // missing tool would only show then, as a failed join on another server.
        if let Some(e) = missing_sst_tool(find_program) {
            return Err(e);
        }
        Ok(Programs {
            mariadbd: find_program(&["mariadbd", "mysqld"]).ok_or_else(|| missing("mariadbd"))?,
            install_db: find_program(&["mariadb-install-db", "mysql_install_db"])
                .ok_or_else(|| missing("mariadb-install-db"))?,
            client: find_program(&["mariadb", "mysql"])
                .ok_or_else(|| missing("mariadb (client)"))?,
        })
    }

    /// The client alone (for status queries, which need no server binary).
    pub fn find_client() -> Result<PathBuf, String> {
        find_program(&["mariadb", "mysql"]).ok_or_else(|| {
            "the mariadb client was not found: apt-get install mariadb-client".to_string()
        })
    }
}

/// The error for the first SST tool `find` does not find, `None` when all are there.
fn missing_sst_tool(find: impl Fn(&[&str]) -> Option<PathBuf>) -> Option<String> {
    SST_TOOLS.iter().find(|(names, _)| find(names).is_none()).map(|(names, package)| {
        format!(
            "{} not found in PATH or {}: Galera state transfers use wsrep_sst_method={} (the donor keeps accepting writes during a join); install it: apt-get install {package}",
            names[0],
            SYSTEM_DIRS.join(", "),
            ironfence_galera::mycnf::SST_METHOD
        )
    })
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    names
        .iter()
        .find_map(|n| dirs.iter().map(|d| d.join(n)).find(|p| p.is_file()))
}

fn defaults_file(config_file: &Path) -> OsString {
    let mut a = OsString::from("--defaults-file=");
    a.push(config_file);
    a
}

/// How mariadbd is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartMode {
    /// `--wsrep-new-cluster`: this node starts (bootstraps) the cluster.
    pub new_cluster: bool,
    /// `--wsrep_start_position=<uuid>:<seqno>` (after an unclean stop, from
    /// `--wsrep-recover`).
    pub start_position: Option<(String, i64)>,
}

/// `mariadbd --defaults-file=… [--wsrep-new-cluster] [--wsrep_start_position=uuid:seqno]`.
pub fn start_args(config_file: &Path, mode: &StartMode) -> Vec<OsString> {
    let mut args = vec![defaults_file(config_file)];
    if mode.new_cluster {
        args.push("--wsrep-new-cluster".into());
    }
    if let Some((uuid, seqno)) = &mode.start_position {
        args.push(format!("--wsrep_start_position={uuid}:{seqno}").into());
    }
    args
}

/// `mariadbd --defaults-file=… --wsrep-recover --log-error=<log>`: finds the last committed
/// position after an unclean stop and exits.
pub fn recover_args(config_file: &Path, log: &Path) -> Vec<OsString> {
    let mut log_arg = OsString::from("--log-error=");
    log_arg.push(log);
    vec![
        defaults_file(config_file),
        "--wsrep-recover".into(),
        log_arg,
    ]
}

/// `mariadb-install-db --defaults-file=… --user=mysql --skip-test-db`: initialises an empty
/// datadir (only on the node that bootstraps; joiners get the data by SST).
pub fn install_db_args(config_file: &Path) -> Vec<OsString> {
    vec![
        defaults_file(config_file),
        format!("--user={}", super::files::MYSQL_USER).into(),
        "--skip-test-db".into(),
    ]
}

/// `mariadb` over the unix socket as root (unix_socket authentication, so no password),
/// reading the SQL from stdin; tab-separated rows, no header. `--no-defaults` keeps
/// `/etc/mysql` and `~/.my.cnf` out.
pub fn client_args(socket: &Path) -> Vec<OsString> {
    let mut s = OsString::from("--socket=");
    s.push(socket);
    vec![
        "--no-defaults".into(),
        "--protocol=socket".into(),
        s,
        "--user=root".into(),
        "--batch".into(),
        "--skip-column-names".into(),
        "--connect-timeout=2".into(),
    ]
}

/// Runs a short command to completion on the blocking pool, with `stdin` fed, within
/// `timeout`. Returns stdout, or an error with stderr.
pub async fn run(
    program: &Path,
    args: Vec<OsString>,
    stdin: Option<String>,
    timeout: Duration,
) -> Result<String, String> {
    let program = program.to_path_buf();
    let shown = program.display().to_string();
    let task = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let pid = child.id();
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes());
        }
        // Enforce the timeout from a watchdog thread (std has no wait_timeout).
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                signal(pid, "KILL");
                true
            } else {
                false
            }
        });
        let out = child.wait_with_output();
        let _ = done_tx.send(());
        let killed = watchdog.join().unwrap_or(false);
        let out = out.map_err(|e| format!("{}: {e}", program.display()))?;
        if killed {
            return Err(format!(
                "{} did not finish within {timeout:?} and was killed",
                program.display()
            ));
        }
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{} failed ({}): {}",
                program.display(),
                out.status,
                err.trim()
            ))
        }
    });
    task.await
        .map_err(|e| format!("{shown}: the task running it failed: {e}"))?
}

/// Sends a signal by PID with kill(1) (the crate denies `unsafe`; this keeps libc out).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running mariadbd, started by the supervisor.
#[derive(Debug)]
pub struct Mariadbd {
    pid: u32,
    started: Instant,
    exited: oneshot::Receiver<std::io::Result<ExitStatus>>,
}

impl Mariadbd {
    /// Starts `mariadbd` with `args`; its log goes to `log-error` (the option file), its
    /// standard streams to the supervisor's stderr.
    pub fn spawn(program: &Path, args: &[OsString]) -> Result<Mariadbd, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let pid = child.id();
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("mariadbd-{pid}"))
            .spawn(move || {
                let _ = tx.send(child.wait());
            })
            .map_err(|e| format!("cannot start the thread waiting for mariadbd: {e}"))?;
        Ok(Mariadbd {
            pid,
            started: Instant::now(),
            exited: rx,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits until it exits (reaped). Cancel-safe.
    pub async fn wait(&mut self) -> String {
        match (&mut self.exited).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("cannot wait for it: {e}"),
            Err(_) => "its waiting thread ended".to_string(),
        }
    }

    /// Graceful stop: SIGTERM, then SIGKILL after `grace`. Returns how it ended.
    pub async fn stop(mut self, grace: Duration) -> String {
        signal(self.pid, "TERM");
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::error!(
                    pid = self.pid,
                    "mariadbd did not stop within {grace:?} after SIGTERM: killing it (the next start recovers its position with --wsrep-recover)"
                );
                signal(self.pid, "KILL");
                self.wait().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[OsString]) -> Vec<&str> {
        v.iter().map(|s| s.to_str().unwrap()).collect()
    }

    #[test]
    fn sst_tools_are_checked_with_their_package() {
        let without = |missing: &'static str| {
            move |names: &[&str]| (!names.contains(&missing)).then(|| PathBuf::from("/usr/bin/x"))
        };
        let e = missing_sst_tool(without("mariabackup")).unwrap();
        assert!(
            e.starts_with("mariadb-backup not found")
                && e.contains("wsrep_sst_method=mariabackup")
                && e.ends_with("apt-get install mariadb-backup"),
            "{e}"
        );
        let e = missing_sst_tool(without("socat")).unwrap();
        assert!(e.ends_with("apt-get install socat"), "{e}");
        assert_eq!(missing_sst_tool(without("nothing")), None);
    }

    #[test]
    fn start_arguments() {
        let cnf = Path::new("/s/mysql/my.cnf");
        let plain = start_args(
            cnf,
            &StartMode {
                new_cluster: false,
                start_position: None,
            },
        );
        assert_eq!(strs(&plain), ["--defaults-file=/s/mysql/my.cnf"]);
        let boot = start_args(
            cnf,
            &StartMode {
                new_cluster: true,
                start_position: Some(("5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b".into(), 71)),
            },
        );
        assert_eq!(
            strs(&boot),
            [
                "--defaults-file=/s/mysql/my.cnf",
                "--wsrep-new-cluster",
                "--wsrep_start_position=5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:71"
            ]
        );
    }

    #[test]
    fn helper_arguments() {
        let cnf = Path::new("/s/mysql/my.cnf");
        assert_eq!(
            strs(&recover_args(cnf, Path::new("/s/mysql/wsrep-recover.log"))),
            [
                "--defaults-file=/s/mysql/my.cnf",
                "--wsrep-recover",
                "--log-error=/s/mysql/wsrep-recover.log"
            ]
        );
        assert_eq!(
            strs(&install_db_args(cnf)),
            [
                "--defaults-file=/s/mysql/my.cnf",
                "--user=mysql",
                "--skip-test-db"
            ]
        );
        let c = client_args(Path::new("/s/mysql/mysqld.sock"));
        assert_eq!(strs(&c)[0], "--no-defaults", "must come first");
        assert!(strs(&c).contains(&"--socket=/s/mysql/mysqld.sock"));
        assert!(strs(&c).contains(&"--user=root"));
        assert!(!strs(&c).iter().any(|a| a.starts_with("--password")));
    }

    #[tokio::test]
    async fn run_reports_failure_and_timeout() {
        let ok = run(
            Path::new("/bin/cat"),
            vec![],
            Some("hello".into()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(ok, "hello");
        let err = run(
            Path::new("/bin/sh"),
            vec!["-c".into(), "echo boom >&2; exit 3".into()],
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(err.contains("boom"), "{err}");
        let slow = run(
            Path::new("/bin/sleep"),
            vec!["5".into()],
            None,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(slow.contains("killed"), "{slow}");
    }
}

//! A real single-node MariaDB Galera cluster on loopback, driven by the operator commands:
//! `db generate-config`, `db start --force-new-cluster`, `db status`, a write, a graceful stop
//! (safe_to_bootstrap: 1), a plain restart that bootstraps by itself, a `kill -9` of mariadbd
//! that the supervisor recovers (`--wsrep-recover`) and restarts, and the node-to-node
//! `GET /api/v1/cluster/db` answered by `ironfence serve` with the database up and down.
//!
//! cluster.conf lists three servers (checkup wants a real cluster); this server disables the
//! two others, so its database cluster has one member. Needs root, `mariadb-server`,
//! `galera-4` and `rsync` (scripts/test-all installs them). Every process is stopped by PID,
//! even when the test fails.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ironfence_webservices::{Client, ClusterCa, Credentials, Trust};

const NAME: &str = "pf1.example.com";
const IP: &str = "127.0.44.1";
/// TEST FIXTURE credentials, only for this test.
const WS_USER: &str = "ws-galera-admin";
const WS_PASS: &str = "ws-galera-test-fixture-password-0123456789";
const APP_USER: &str = "ironfence";
const APP_PASS: &str = "galera-test-fixture-app-password";
const APP_DB: &str = "ironfence";

struct Proc {
    what: &'static str,
    child: Option<Child>,
}

impl Proc {
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// SIGTERM, then SIGKILL after `grace`.
    fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(child.id(), "TERM");
        let deadline = Instant::now() + grace;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                eprintln!("{} did not stop within {grace:?}: killing it", self.what);
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// Kills, by PID, any mariadbd still running on this test's datadir (after a failure).
struct MariadbdGuard {
    pid_file: PathBuf,
    marker: String,
}

impl Drop for MariadbdGuard {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.pid_file)
            && cmdline(pid).is_some_and(|c| c.contains(&self.marker))
        {
            signal(pid, "KILL");
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `/proc/PID/cmdline`, `None` when the process is gone or a zombie.
fn cmdline(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    if state == 'Z' {
        return None;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    fn mysql(&self) -> PathBuf {
        self.dir.path().join("state/mysql")
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ironfence"))
            .env("IRONFENCE_HOSTNAME", NAME)
            .arg("--conf-dir")
            .arg(self.conf())
            .args(args)
            .output()
            .unwrap()
    }

    fn spawn(&self, what: &'static str, args: &[&str], log: &str) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(log))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ironfence"))
            .env("IRONFENCE_HOSTNAME", NAME)
            .env("RUST_LOG", "info")
            .arg("--conf-dir")
            .arg(self.conf())
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc {
            what,
            child: Some(child),
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// `db status` until this server's database is Primary, Synced and ready.
    fn wait_healthy(&self, supervisor: &mut Proc) -> Duration {
        let t = Instant::now();
        eventually(
            "db status: Primary, Synced, ready",
            Duration::from_secs(90),
            || {
                if let Some(s) = supervisor.exited() {
                    panic!("db start exited ({s}):\n{}", self.log("db-start.log"));
                }
                let o = self.cli(&["db", "status"]);
                let out = String::from_utf8_lossy(&o.stdout).to_string();
                let row = out.lines().nth(1).unwrap_or_default().to_string();
                (o.status.success()
                    && row.contains("Primary")
                    && row.contains("Synced")
                    && row.contains(" ON "))
                .then_some(())
            },
        );
        t.elapsed()
    }

    fn sql(&self, sql: &str) -> String {
        let o = Command::new("mariadb")
            .args(["--no-defaults", "-h", IP, "-P", "3306", "-u", APP_USER])
            .arg(format!("-p{APP_PASS}"))
            .args(["--batch", "--skip-column-names", APP_DB, "-e", sql])
            .output()
            .unwrap();
        assert!(o.status.success(), "{sql}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn grastate(&self) -> String {
        std::fs::read_to_string(self.mysql().join("data/grastate.dat")).unwrap_or_default()
    }

    fn client(&self, ws_port: u16) -> Client {
        let ca = ClusterCa::load(&self.conf()).unwrap().expect("cluster CA");
        Client::new(
            IP.parse().unwrap(),
            ws_port,
            Trust::ClusterCa(ca.cert_der().clone()),
            Credentials {
                user: WS_USER.into(),
                pass: WS_PASS.into(),
            },
            Duration::from_secs(10),
        )
        .unwrap()
    }
}

fn write_config(conf: &Path, ws_port: u16) {
    std::fs::create_dir_all(conf).unwrap();
    let radius = free_port();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = {IP}\nport = 3306\nuser = {APP_USER}\npass = {APP_PASS}\ndb = {APP_DB}\n\n\
             [radius]\nauth_port = {radius}\nacct_port = {}\n\n\
             [metrics]\nlisten =\n\n\
             [webservices]\nuser = {WS_USER}\npass = {WS_PASS}\nport = {ws_port}\n\n\
             [active_active]\ngalera_replication_username = galera-repl\ngalera_replication_password = galera-test-fixture-repl-password\n\
             password = galera-test-fixture-vrrp-key\n\n\
             [maintenance]\ncluster_check_interval = 0\n",
            radius + 1
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("cluster.conf"),
        format!(
            "[CLUSTER]\nmanagement_ip = 127.0.44.100\n\n[{NAME}]\nmanagement_ip = {IP}\n\n\
             [pf2.example.com]\nmanagement_ip = 127.0.44.2\n\n[pf3.example.com]\nmanagement_ip = 127.0.44.3\n"
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        "[default]\nregistrationVlan = 2\n\n[127.0.0.1]\nradiusSecret = galera-test-fixture-radius-secret\n",
    )
    .unwrap();
}

fn mysql_gid() -> u32 {
    let out = Command::new("id").args(["-g", "mysql"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn single_node_galera_bootstrap_graceful_restart_and_crash_recovery() {
    assert!(
        Path::new("/usr/lib/galera/libgalera_smm.so").exists(),
        "the Galera provider is missing: apt-get install galera-4 rsync (scripts/test-all does)"
    );
    let dir = tempfile::Builder::new()
        .prefix("ifg")
        .tempdir_in("/tmp")
        .unwrap();
    // mariadbd runs as mysql: it must be able to enter the test directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let lab = Lab { dir };
    let ws_port = free_port();
    write_config(&lab.conf(), ws_port);
    let _mariadbd = MariadbdGuard {
        pid_file: lab.mysql().join("mysqld.pid"),
        marker: lab.mysql().display().to_string(),
    };

    let o = lab.cli(&["checkup"]);
    assert!(o.status.success(), "{}", text(&o));
    for peer in ["pf2.example.com", "pf3.example.com"] {
        let o = lab.cli(&["cluster", "node", peer, "disable"]);
        assert!(o.status.success(), "{}", text(&o));
    }

    // generate-config: root:mysql 0640, only the enabled member in gcomm://.
    let o = lab.cli(&["db", "generate-config"]);
    assert!(o.status.success(), "{}", text(&o));
    let cnf = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    assert_eq!(cnf, lab.mysql().join("my.cnf"));
    let meta = std::fs::metadata(&cnf).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (0, mysql_gid()));
    let text_cnf = std::fs::read_to_string(&cnf).unwrap();
    assert!(
        text_cnf.contains(&format!("wsrep_cluster_address=gcomm://{IP}\n")),
        "{text_cnf}"
    );
    assert!(text_cnf.contains("user=mysql\n"));

    // A plain start on an empty datadir waits (nobody to join, no position) and says what decides.
    let mut waiting = lab.spawn("db start (waiting)", &["db", "start"], "db-wait.log");
    eventually("the waiting decision", Duration::from_secs(30), || {
        lab.log("db-wait.log")
            .contains("ironfence db start --force-new-cluster")
            .then_some(())
    });
    assert!(waiting.stop(Duration::from_secs(10)).unwrap().success());
    assert!(
        !lab.mysql().join("data/mysql").exists(),
        "a waiting node initialised its datadir"
    );

    // Bootstrap a new cluster.
    let t = Instant::now();
    let mut sup = lab.spawn(
        "db start --force-new-cluster",
        &["db", "start", "--force-new-cluster"],
        "db-start.log",
    );
    lab.wait_healthy(&mut sup);
    eprintln!(
        "figure: --force-new-cluster on an empty datadir -> Primary/Synced/ready: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        lab.log("db-start.log")
            .contains("initialised the empty datadir")
    );
    let first_pid = read_pid(&lab.mysql().join("mysqld.pid")).unwrap();
    let status = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|u| u.split_whitespace().next().unwrap_or("").to_string())
            })
            .unwrap_or_default()
    };
    assert_ne!(status(first_pid), "0", "mariadbd must not run as root");

    // The bootstrap created the accounts: write through the application user over TCP.
    eventually("application account", Duration::from_secs(20), || {
        lab.log("db-start.log")
            .contains("database accounts ensured")
            .then_some(())
    });
    lab.sql("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(32)) ENGINE=InnoDB");
    lab.sql("INSERT INTO t (v) VALUES ('before-stop')");
    let o = lab.cli(&["db", "init-replication-user"]);
    assert!(
        o.status.success() && text(&o).contains("galera-repl"),
        "{}",
        text(&o)
    );

    // Galera's group port listens on the management address only, never on every interface.
    let listening = Command::new("ss")
        .args(["-ltnH", "sport = :4567"])
        .output()
        .unwrap();
    let listening = String::from_utf8_lossy(&listening.stdout).to_string();
    assert!(
        listening.contains(&format!("{IP}:4567")),
        "group port not on {IP}: {listening}"
    );
    assert!(
        !listening.contains("0.0.0.0:4567") && !listening.contains("*:4567"),
        "group port on every interface: {listening}"
    );

    // SIGHUP reloads the configuration: my.cnf is rewritten, mariadbd keeps running; a refused
    // configuration (file:line in the log) leaves the running one and my.cnf alone.
    let cnf_path = lab.mysql().join("my.cnf");
    let pf_conf = lab.conf().join("pf.conf");
    let original = std::fs::read_to_string(&pf_conf).unwrap();
    let sup_pid = sup.child.as_ref().unwrap().id();
    std::fs::write(
        &pf_conf,
        original.replace(
            "galera_replication_password = galera-test-fixture-repl-password",
            "galera_replication_password = galera-test-fixture-repl-password-2",
        ),
    )
    .unwrap();
    signal(sup_pid, "HUP");
    eventually(
        "my.cnf rewritten on SIGHUP",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&cnf_path)
                .unwrap_or_default()
                .contains("galera-test-fixture-repl-password-2")
                .then_some(())
        },
    );
    assert!(sup.exited().is_none(), "db start died on SIGHUP");
    assert_eq!(
        read_pid(&lab.mysql().join("mysqld.pid")),
        Some(first_pid),
        "a reload must not restart mariadbd"
    );
    std::fs::write(
        &pf_conf,
        format!("{original}\n[radius]\nauth_port = not-a-port\n"),
    )
    .unwrap();
    signal(sup_pid, "HUP");
    eventually("refused reload logged", Duration::from_secs(20), || {
        lab.log("db-start.log")
            .contains("configuration reload refused")
            .then_some(())
    });
    assert!(
        lab.log("db-start.log").contains("pf.conf:"),
        "the refusal names file:line:\n{}",
        lab.log("db-start.log")
    );
    assert!(
        std::fs::read_to_string(&cnf_path)
            .unwrap()
            .contains("galera-test-fixture-repl-password-2"),
        "a refused configuration must not rewrite my.cnf"
    );
    assert!(sup.exited().is_none(), "db start died on a refused reload");
    std::fs::write(&pf_conf, &original).unwrap();
    signal(sup_pid, "HUP");

    // The node-to-node API reports the running database.
    let mut serve = lab.spawn("serve", &["serve"], "serve.log");
    eventually("serve's node-to-node API", Duration::from_secs(30), || {
        if let Some(s) = serve.exited() {
            panic!("serve exited ({s}):\n{}", lab.log("serve.log"));
        }
        lab.log("serve.log")
            .contains("node-to-node API (webservices) ready")
            .then_some(())
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = lab.client(ws_port);
    let up = rt.block_on(client.db_state()).unwrap();
    assert!(up.running && up.primary && up.synced && up.ready, "{up:?}");
    assert_eq!(up.cluster_size, Some(1));
    assert!(up.last_committed.unwrap_or(0) > 0, "{up:?}");

    // Graceful stop: mariadbd stops, the last node out may bootstrap.
    let t = Instant::now();
    let st = sup.stop(Duration::from_secs(60)).unwrap();
    assert!(
        st.success(),
        "db start exit: {st}\n{}",
        lab.log("db-start.log")
    );
    eprintln!(
        "figure: graceful stop of db start (mariadbd included): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        cmdline(first_pid).is_none(),
        "mariadbd still runs after db start stopped"
    );
    let g = lab.grastate();
    assert!(g.contains("safe_to_bootstrap: 1"), "{g}");
    let seqno: i64 = g
        .lines()
        .find_map(|l| l.strip_prefix("seqno:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(seqno > 0, "{g}");
    let down = rt.block_on(client.db_state()).unwrap();
    assert!(
        !down.running && !down.primary && down.safe_to_bootstrap,
        "{down:?}"
    );
    assert_eq!(down.last_committed, Some(seqno));

    // A plain start bootstraps again by itself (safe_to_bootstrap: 1).
    let t = Instant::now();
    let mut sup = lab.spawn("db start", &["db", "start"], "db-start.log");
    lab.wait_healthy(&mut sup);
    eprintln!(
        "figure: plain db start after a graceful stop -> Primary: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        lab.log("db-start.log")
            .contains("this node has safe_to_bootstrap: 1")
    );
    assert_eq!(lab.sql("SELECT v FROM t ORDER BY id"), "before-stop");
    lab.sql("INSERT INTO t (v) VALUES ('before-crash')");

    // kill -9 of mariadbd: the supervisor recovers the position and restarts it. Galera
    // records the running node's state UUID in grastate.dat a moment after the node is
    // healthy; a crash before that leaves the zero UUID, which the start decision does not
    // recover from (it bootstraps on safe_to_bootstrap; see the issue-9 note) — this test is
    // about the recovery of a node that runs.
    eventually(
        "grastate.dat names the state UUID",
        Duration::from_secs(20),
        || {
            let g = lab.grastate();
            (g.contains("uuid:") && !g.contains("00000000-0000-0000-0000-000000000000"))
                .then_some(())
        },
    );
    let pid = read_pid(&lab.mysql().join("mysqld.pid")).unwrap();
    let t = Instant::now();
    signal(pid, "KILL");
    eventually(
        "mariadbd restarted with another PID",
        Duration::from_secs(60),
        || read_pid(&lab.mysql().join("mysqld.pid")).filter(|p| *p != pid && cmdline(*p).is_some()),
    );
    lab.wait_healthy(&mut sup);
    eprintln!(
        "figure: kill -9 of mariadbd -> Primary again: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let log = lab.log("db-start.log");
    assert!(
        log.contains("recovered the last committed position"),
        "{log}"
    );
    assert!(log.contains("--wsrep_start_position="), "{log}");
    assert_eq!(
        lab.sql("SELECT v FROM t ORDER BY id").replace('\n', ","),
        "before-stop,before-crash"
    );
    let after = rt.block_on(client.db_state()).unwrap();
    assert!(after.running && after.primary, "{after:?}");

    serve.stop(Duration::from_secs(20));
    let st = sup.stop(Duration::from_secs(60)).unwrap();
    assert!(st.success(), "{}", lab.log("db-start.log"));
    assert!(lab.grastate().contains("safe_to_bootstrap: 1"));
    if std::env::var_os("GALERA_TEST_LOG").is_some() {
        eprintln!("---- db start log ----\n{}", lab.log("db-start.log"));
    }
}

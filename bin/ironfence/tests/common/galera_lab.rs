//! The Galera lab that galera_cluster, galera_split and galera_monitor drive: N ironfence
//! installations, one per host of a `netns::Lab`, each with its own root and a `conf/` holding
//! pf.conf, cluster.conf and switches.conf for one Galera cluster of them, plus the helpers those
//! tests share (the CLI, the supervised `db start` / `serve`, wsrep status through the unix
//! socket, the join by `cluster sync --from`, MAB by radclient from the switch namespace).
//! One copy, so that a change to how a node is installed or joined reaches every Galera test.
//! Included by path (`#[path = "common/galera_lab.rs"] mod galera_lab;`), not through
//! `common/mod.rs`, so that the other test binaries do not compile it.
#![allow(dead_code)]

use ironfence_testkit::netns::{Lab, ProcHandle, require_lab};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ironfence");

/// TEST FIXTURE secrets of one test binary (each binary has its own, so that a log or a
/// failure names the test it came from).
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub ws_user: &'static str,
    pub ws_pass: &'static str,
    pub db_pass: &'static str,
    pub sst_pass: &'static str,
    pub secret: &'static str,
    pub vrrp_pass: &'static str,
}

pub fn name(i: usize) -> String {
    format!("pf{}.example.com", i + 1)
}

/// The lab, the installation root of every host, and the `db start` / `serve` processes
/// started there (stopped by the lab on drop, also when a test panics).
pub struct GaleraLab {
    pub lab: Lab,
    pub roots: Vec<PathBuf>,
    pub db: Vec<Option<ProcHandle>>,
    pub serve: Vec<Option<ProcHandle>>,
    pub fx: Fixture,
}

impl GaleraLab {
    /// A lab of `hosts` hosts, each with its conf dir written; nothing started yet.
    pub fn new(hosts: usize, fx: Fixture) -> GaleraLab {
        require_lab().expect("network namespaces (root, iproute2, iputils-ping)");
        let lab = Lab::new(hosts).expect("lab");
        let roots: Vec<PathBuf> = (0..hosts)
            .map(|i| lab.dir().join(format!("pf{}", i + 1)))
            .collect();
        let mut cluster = format!("[CLUSTER]\nmanagement_ip = {}\n\n", lab.vip(0));
        for i in 0..hosts {
            cluster.push_str(&format!(
                "[{}]\nmanagement_ip = {}\n\n",
                name(i),
                lab.host_ip(i)
            ));
        }
        let Fixture {
            ws_user,
            ws_pass,
            db_pass,
            sst_pass,
            secret,
            vrrp_pass,
        } = fx;
        // cluster_check_interval = 0: the tests decide when the configuration is synced.
        let pf = format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = 127.0.0.1\nport = 3306\nuser = ironfence\npass = {db_pass}\ndb = pf\n\n\
             [radius]\nauth_port = 1812\nacct_port = 1813\n\n\
             [webservices]\nuser = {ws_user}\npass = {ws_pass}\n\n\
             [active_active]\ngalera_replication_username = sst\ngalera_replication_password = {sst_pass}\n\
             password = {vrrp_pass}\n\n\
             [maintenance]\ncluster_check_interval = 0\n"
        );
        let switches = format!(
            "[default]\nregistrationVlan = 2\nisolationVlan = 3\ndefaultVlan = 100\nguestVlan = 200\n\n\
             [{}]\nradiusSecret = {secret}\n",
            lab.switch_ip()
        );
        for root in &roots {
            let conf = root.join("conf");
            std::fs::create_dir_all(&conf).unwrap();
            std::fs::write(conf.join("pf.conf"), &pf).unwrap();
            std::fs::write(conf.join("cluster.conf"), &cluster).unwrap();
            std::fs::write(conf.join("switches.conf"), &switches).unwrap();
            // mariadbd runs as mysql: it must be able to traverse to its datadir.
            let _ = Command::new("chmod")
                .arg("755")
                .arg(root)
                .arg(lab.dir())
                .status();
        }
        GaleraLab {
            lab,
            roots,
            db: (0..hosts).map(|_| None).collect(),
            serve: (0..hosts).map(|_| None).collect(),
            fx,
        }
    }

    /// Gives the cluster its front door before anything starts: `[CLUSTER interface eth0]`
    /// with the management VIP (`lab.vip(0)`), each host's own `eth0` section, and
    /// `active_active` (lines `key = value`) added to every pf.conf's `[active_active]` (the
    /// stats page account, a VRRP mode for a benchmark).
    pub fn with_front_door(self, active_active: &str) -> GaleraLab {
        let lab = &self.lab;
        let mut cluster = format!(
            "[CLUSTER]\nmanagement_ip = {vip}\n\n\
             [CLUSTER interface eth0]\nip = {vip}\nmask = 255.255.255.0\ntype = management,high-availability,radius\n\n",
            vip = lab.vip(0)
        );
        for i in 0..self.roots.len() {
            cluster.push_str(&format!(
                "[{n}]\nmanagement_ip = {ip}\n\n\
                 [{n} interface eth0]\nip = {ip}\nmask = 255.255.255.0\ntype = management,high-availability,radius\n\n",
                n = name(i),
                ip = lab.host_ip(i)
            ));
        }
        for root in &self.roots {
            let conf = root.join("conf");
            std::fs::write(conf.join("cluster.conf"), &cluster).unwrap();
            let pf = std::fs::read_to_string(conf.join("pf.conf")).unwrap();
            let pf = pf.replace(
                "[active_active]\n",
                &format!("[active_active]\n{active_active}"),
            );
            std::fs::write(conf.join("pf.conf"), pf).unwrap();
        }
        self
    }

    /// The cluster from nothing: host 0 bootstraps (`db start --force-new-cluster`), creates
    /// the accounts and starts its daemon (which creates the cluster CA); every other host
    /// takes the configuration with the pinned CA (`cluster sync --from`), joins the database
    /// by SST and starts its daemon. `before_join(lab, i)` runs on host i between its
    /// configuration and its database (a fault only that host has, for example).
    pub fn bring_up(&mut self, mut before_join: impl FnMut(&GaleraLab, usize)) {
        self.start_db(0, true);
        eventually(
            "pf1 Primary/Synced",
            Duration::from_secs(60),
            || self.synced(0),
            || self.logs(),
        );
        let o = self.cli(0, &["db", "init-replication-user"]);
        assert!(ok(&o), "{}", text(&o));
        self.start_serve(0);
        let fp = self.ca_fingerprint(0);
        for i in 1..self.roots.len() {
            self.sync_config(i, &fp);
            before_join(self, i);
            self.start_db(i, false);
            eventually(
                &format!("{} joined", name(i)),
                Duration::from_secs(90),
                || self.synced(i),
                || self.logs(),
            );
            self.start_serve(i);
        }
    }

    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        self.lab
            .command(i, BIN)
            .env("IRONFENCE_HOSTNAME", name(i))
            .arg("--conf-dir")
            .arg(self.roots[i].join("conf"))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn spawn_ironfence(&mut self, i: usize, args: &[&str], label: &str) -> ProcHandle {
        let mut cmd = self.lab.command(i, BIN);
        cmd.env("IRONFENCE_HOSTNAME", name(i))
            .env("RUST_LOG", "info")
            .arg("--conf-dir")
            .arg(self.roots[i].join("conf"))
            .args(args);
        self.lab.spawn(i, cmd, label).unwrap()
    }

    /// `db start` (with `--force-new-cluster` if `force`) on host i, logged as `db{i}`.
    pub fn start_db(&mut self, i: usize, force: bool) {
        let label = format!("db{i}");
        let args: Vec<&str> = if force {
            vec!["db", "start", "--force-new-cluster"]
        } else {
            vec!["db", "start"]
        };
        let h = self.spawn_ironfence(i, &args, &label);
        self.db[i] = Some(h);
    }

    /// Starts `serve` on host i and waits for a new "ironfence ready" in its log (counted, so
    /// that a restart under the same label waits for its own).
    pub fn start_serve(&mut self, i: usize) {
        let label = format!("serve{i}");
        let before = self.lab.log(&label).matches("ironfence ready").count();
        self.spawn_serve(i);
        eventually(
            &format!("{} serving", name(i)),
            Duration::from_secs(60),
            || self.lab.log(&label).matches("ironfence ready").count() > before,
            || self.lab.log(&label),
        );
    }

    /// Starts `serve` on host i without waiting for it (see [`GaleraLab::wait_ready`]).
    pub fn spawn_serve(&mut self, i: usize) {
        let label = format!("serve{i}");
        let h = self.spawn_ironfence(i, &["serve"], &label);
        self.serve[i] = Some(h);
    }

    pub fn wait_ready(&self, i: usize) {
        let label = format!("serve{i}");
        eventually(
            &format!("{} serving", name(i)),
            Duration::from_secs(60),
            || self.lab.log(&label).contains("ironfence ready"),
            || self.lab.log(&label),
        );
    }

    /// The cluster CA fingerprint that `cluster status` on host i prints (the joiners pin it).
    pub fn ca_fingerprint(&self, i: usize) -> String {
        text(&self.cli(i, &["cluster", "status"]))
            .lines()
            .find_map(|l| l.strip_prefix("cluster CA fingerprint: "))
            .expect("fingerprint")
            .trim()
            .to_string()
    }

    /// `cluster sync --from <pf1>` on host i with the pinned CA: the configuration part of a
    /// join (the database follows by SST at `db start`).
    pub fn sync_config(&self, i: usize, fp: &str) {
        let from = self.lab.host_ip(0).to_string();
        let o = self.cli(
            i,
            &[
                "cluster",
                "sync",
                "--from",
                &from,
                "--api-user",
                self.fx.ws_user,
                "--api-password",
                self.fx.ws_pass,
                "--ca-fingerprint",
                fp,
            ],
        );
        assert!(ok(&o), "{}", text(&o));
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        socket(&self.roots[i])
    }

    /// `SHOW GLOBAL STATUS` value on node i, through its unix socket (works across namespaces).
    pub fn wsrep(&self, i: usize, var: &str) -> Option<String> {
        wsrep_at(&self.socket(i), &[], var)
    }

    pub fn synced(&self, i: usize) -> bool {
        synced_by(|var| self.wsrep(i, var))
    }

    /// The last 60 lines of every host's `db{i}` and `serve{i}` log.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for i in 0..self.roots.len() {
            for l in [format!("db{i}"), format!("serve{i}")] {
                all.push_str(&format!("---- {l} ----\n{}\n", tail(&self.lab.log(&l), 60)));
            }
        }
        all
    }
}

/// The mariadbd socket of the installation at `root`.
pub fn socket(root: &Path) -> PathBuf {
    root.join("state/mysql/mysqld.sock")
}

/// `SHOW GLOBAL STATUS LIKE '<var>'` as root through `socket`, with extra client `opts`.
pub fn wsrep_at(socket: &Path, opts: &[&str], var: &str) -> Option<String> {
    let out = Command::new("mariadb")
        .arg(format!("--socket={}", socket.display()))
        .args(["-uroot", "-N", "-B"])
        .args(opts)
        .arg("-e")
        .arg(format!("SHOW GLOBAL STATUS LIKE '{var}'"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().nth(1).map(str::to_string)
}

/// Primary, Synced and ready, by the status values `wsrep` returns.
pub fn synced_by(wsrep: impl Fn(&str) -> Option<String>) -> bool {
    wsrep("wsrep_cluster_status").as_deref() == Some("Primary")
        && wsrep("wsrep_local_state_comment").as_deref() == Some("Synced")
        && wsrep("wsrep_ready").as_deref() == Some("ON")
}

/// One statement as root on database `db` through `socket`: its output, or the client's error.
pub fn sql_at(socket: &Path, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .arg(format!("--socket={}", socket.display()))
        .args(["-uroot", "-N", "-B", db, "-e", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A MAB request for `mac` to `server` by `radclient` (a command for the program in the
/// switch namespace), one try of `timeout_s` seconds: (reply code, VLAN).
pub fn radclient_mab(
    mut radclient: Command,
    server: Ipv4Addr,
    secret: &str,
    timeout_s: &str,
    mac: &str,
) -> (Option<String>, Option<String>) {
    let mut child = radclient
        .args(["-x", "-r", "1", "-t", timeout_s])
        .arg(format!("{server}:1812"))
        .args(["auth", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "User-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nService-Type = Call-Check\nMessage-Authenticator = 0x00\n"
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let code = text
        .lines()
        .find_map(|l| l.strip_prefix("Received "))
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string);
    let vlan = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tunnel-Private-Group-Id:0 = "))
        .map(|v| v.trim_matches('"').to_string());
    (code, vlan)
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `cond` every 100 ms until it holds (returns how long that took) or `timeout` passes
/// (panics with `logs()`).
pub fn eventually(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    logs: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {timeout:?} waiting for: {what}\n{}",
        logs()
    );
}

pub fn ok(o: &Output) -> bool {
    o.status.success()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

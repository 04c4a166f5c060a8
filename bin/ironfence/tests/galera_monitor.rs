//! The quorum monitor follows the database, and a join does not stop the donor's writes.
//!
//! - Three ironfence servers on a real MariaDB Galera cluster in network namespaces
//!   (`netns::Lab`), `serve` and `db start` started together (every reboot): `serve`'s first
//!   polls find no database, then Galera; a restart of the database service and a partition
//!   later, `ironfence_db_read_only` still follows (1 while isolated, 0 after the heal).
//! - MariaDB without Galera (testkit's `mariadbd`): a write refused by `read_only=1` flips
//!   the server to read-only at once, and the 5 s poll of `read_only` brings it back.
//! - A join by mariabackup SST under MAB registrations of new devices on the donor: no write
//!   refused or lost on the donor, every one present on every node after the join.
//!
//! Figures (time to read-only, donor writes during the join) are printed as `figure:` lines,
//! never asserted.

mod common;

#[path = "common/galera_lab.rs"]
mod galera_lab;

use galera_lab::{Fixture, GaleraLab, eventually, name, ok, tail, text};
use ironfence_testkit::MariaDb;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// TEST FIXTURE secrets, only for this test.
const WS_USER: &str = "ws-galmon-e2e";
const WS_PASS: &str = "ws-galmon-e2e-test-fixture-password-0123";
const DB_PASS: &str = "db-galmon-e2e-test-fixture-password-0123";
const SST_PASS: &str = "sst-galmon-e2e-test-fixture-password-0123";
const SECRET: &str = "radius-galmon-e2e-test-fixture-secret-01";
const FIXTURE: Fixture = Fixture {
    ws_user: WS_USER,
    ws_pass: WS_PASS,
    db_pass: DB_PASS,
    sst_pass: SST_PASS,
    secret: SECRET,
    vrrp_pass: "galmon-e2e-vrrp-fixture",
};
/// pf.conf's default `[metrics] listen` port (on the management address in a cluster).
const METRICS_PORT: u16 = 9101;

/// The shared lab of three hosts (`g`, driven from the main thread, which starts and stops
/// processes) and what the load and watcher threads read (`p`).
struct Cluster {
    g: GaleraLab,
    p: Probe,
}

/// What the load and watcher threads need (the lab itself stays with the main thread):
/// namespace names, addresses, installation roots.
#[derive(Clone)]
struct Probe {
    switch_ns: String,
    hosts: Vec<String>,
    ips: Vec<std::net::Ipv4Addr>,
    roots: Vec<PathBuf>,
}

impl std::ops::Deref for Cluster {
    type Target = Probe;
    fn deref(&self) -> &Probe {
        &self.p
    }
}

impl Cluster {
    fn new() -> Cluster {
        let g = GaleraLab::new(3, FIXTURE);
        let p = Probe {
            switch_ns: g.lab.switch_ns().to_string(),
            hosts: (0..3).map(|i| g.lab.ns(i).to_string()).collect(),
            ips: (0..3).map(|i| g.lab.host_ip(i)).collect(),
            roots: g.roots.clone(),
        };
        Cluster { g, p }
    }

    /// pf1 bootstraps, gets the accounts and its `serve` (which creates the cluster CA).
    /// Returns the CA fingerprint the others pin.
    fn bootstrap_first(&mut self) -> String {
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
        self.wait_ready(0);
        self.g.ca_fingerprint(0)
    }

    fn sync_config(&self, i: usize, fp: &str) {
        self.g.sync_config(i, fp);
    }

    fn cli(&self, i: usize, args: &[&str]) -> Output {
        self.g.cli(i, args)
    }

    fn start_db(&mut self, i: usize, force: bool) {
        self.g.start_db(i, force);
    }

    /// Starts `serve` without waiting for it (see [`Cluster::wait_ready`]).
    fn start_serve(&mut self, i: usize) {
        self.g.spawn_serve(i);
    }

    fn wait_ready(&self, i: usize) {
        self.g.wait_ready(i);
    }

    fn logs(&self) -> String {
        self.g.logs()
    }
}

impl Probe {
    /// `ip netns exec <ns of host i> <program>`.
    fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[i], program]);
        c
    }

    /// `SHOW GLOBAL STATUS` value on node i; a short connect timeout, as the watcher threads
    /// poll while a database is down.
    fn wsrep(&self, i: usize, var: &str) -> Option<String> {
        galera_lab::wsrep_at(
            &galera_lab::socket(&self.roots[i]),
            &["--connect-timeout=2"],
            var,
        )
    }

    fn synced(&self, i: usize) -> bool {
        galera_lab::synced_by(|var| self.wsrep(i, var))
    }

    fn sql(&self, i: usize, sql: &str) -> Result<String, String> {
        galera_lab::sql_at(&galera_lab::socket(&self.roots[i]), "pf", sql)
    }

    /// One sample of server i's `/metrics` (fetched inside its namespace), `None` when the
    /// endpoint does not answer or lacks the series.
    fn metric(&self, i: usize, series: &str) -> Option<f64> {
        // bash's /dev/tcp: no HTTP client to install; HTTP/1.0 so the server closes.
        let out = self
            .command(i, "timeout")
            .args(["3", "bash", "-c"])
            .arg(format!(
                "exec 3<>/dev/tcp/{}/{METRICS_PORT} && printf 'GET /metrics HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3",
                self.ips[i]
            ))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    fn read_only(&self, i: usize) -> Option<f64> {
        self.metric(i, "ironfence_db_read_only")
    }

    /// A MAB request for `mac` to server i from the switch namespace: (reply code, VLAN).
    fn radclient_mab(&self, i: usize, mac: &str) -> (Option<String>, Option<String>) {
        let mut radclient = Command::new("ip");
        radclient.args(["netns", "exec", &self.switch_ns, "radclient"]);
        galera_lab::radclient_mab(radclient, self.ips[i], SECRET, "3", mac)
    }

    fn count_nodes(&self, i: usize, macs: &[String]) -> Result<String, String> {
        let list = macs
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(",");
        self.sql(
            i,
            &format!("SELECT COUNT(*) FROM node WHERE mac IN ({list})"),
        )
    }
}

/// issue 7 B: `serve` and `db start` start together, so `serve`'s first polls find no database;
/// the database service restarts under a running `serve`; a partition later, read-only mode
/// still follows the database.
#[test]
fn monitor_follows_the_database_through_restarts() {
    let mut c = Cluster::new();
    let fp = c.bootstrap_first();
    for i in 1..3 {
        c.sync_config(i, &fp);
        // Together, as at boot: serve's first poll finds the database not yet there.
        c.start_db(i, false);
        c.start_serve(i);
    }
    for i in 1..3 {
        c.wait_ready(i);
        eventually(
            &format!("{} joined", name(i)),
            Duration::from_secs(120),
            || c.synced(i),
            || c.logs(),
        );
    }
    for i in 0..3 {
        eventually(
            &format!("{} read-write", name(i)),
            Duration::from_secs(20),
            || c.read_only(i) == Some(0.0),
            || c.logs(),
        );
    }
    // `cluster status` shows the Galera state (not "MariaDB (no Galera)").
    let status = text(&c.cli(2, &["cluster", "status"]));
    let line = status
        .lines()
        .find(|l| l.contains(&name(2)))
        .expect("pf3 row");
    assert!(line.contains("db Primary/Synced size 3"), "{status}");

    // Restart the database service of pf3 under its running serve.
    let h = c.g.db[2].take().unwrap();
    assert!(
        c.g.lab.stop(&h, Duration::from_secs(60)),
        "db start pf3 stops"
    );
    eventually(
        "pf3 read-only while its database is down",
        Duration::from_secs(20),
        || c.read_only(2) == Some(1.0),
        || c.logs(),
    );
    c.start_db(2, false);
    eventually(
        "pf3 rejoined",
        Duration::from_secs(120),
        || c.synced(2),
        || c.logs(),
    );
    eventually(
        "pf3 read-write after the restart",
        Duration::from_secs(20),
        || c.read_only(2) == Some(0.0),
        || c.logs(),
    );

    // Partition pf3: read-only; heal: read-write.
    c.g.lab.partition(2).unwrap();
    let to_ro = eventually(
        "pf3 read-only while partitioned",
        Duration::from_secs(30),
        || c.read_only(2) == Some(1.0),
        || c.logs(),
    );
    println!(
        "figure: partition after a database restart -> ironfence_db_read_only 1: {:.2} s",
        to_ro.as_secs_f64()
    );
    // The majority stays read-write.
    assert_eq!(c.read_only(0), Some(0.0));
    c.g.lab.heal(2).unwrap();
    let to_rw = eventually(
        "pf3 read-write after the heal",
        Duration::from_secs(60),
        || c.read_only(2) == Some(0.0),
        || c.logs(),
    );
    println!(
        "figure: heal -> ironfence_db_read_only 0: {:.2} s",
        to_rw.as_secs_f64()
    );
}

/// MariaDB without Galera: a write refused because of `read_only=1` makes the server read-only
/// at once (`ironfence_db_read_only 1`, the new device's node row spooled); the poll of
/// `@@global.read_only` brings it back when the flag is cleared, and the spool is replayed.
#[test]
fn plain_mariadb_read_only_flips_on_a_refused_write_and_returns() {
    use common::*;
    let db = MariaDb::start().expect("start mariadbd (apt-get install mariadb-server)");
    db.create_database("ironfence_ro").unwrap();
    // The application account must not bypass read_only (no SUPER / READ_ONLY ADMIN).
    let user = "ironfence_ro_app";
    let pass = "ironfence-ro-test-fixture-password-0123";
    db.admin_sql(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{pass}'; CREATE USER '{user}'@'localhost' IDENTIFIED BY '{pass}'; \
         GRANT ALL PRIVILEGES ON ironfence_ro.* TO '{user}'@'%'; GRANT ALL PRIVILEGES ON ironfence_ro.* TO '{user}'@'localhost';"
    ))
    .unwrap();
    let d = DaemonBuilder::default()
        .database(&format!(
            "[database]\ntype=mysql\nhost={}\nport={}\nuser={user}\npass={pass}\ndb=ironfence_ro\n",
            db.host(),
            db.port(),
        ))
        .start();
    eventually("read-write on plain MariaDB", || {
        d.metrics_text().contains("ironfence_db_read_only 0")
    });
    let mac = "02:00:00:00:7e:01";
    let r = radtest_mab(d.auth_port, SECRET, mac);
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert!(
        stdout(&d.cli(&["node", "show", mac])).contains("status"),
        "stored while writable"
    );

    db.admin_sql("SET GLOBAL read_only = 1").unwrap();
    let mac2 = "02:00:00:00:7e:02";
    let r = radtest_mab(d.auth_port, SECRET, mac2);
    // Still answered (registration VLAN), not stored, and read-only at once: no poll has run
    // yet (the plain poll is every 5 s), the refused write flipped it.
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(d.metric("ironfence_db_read_only"), 1.0, "{}", d.log());
    // The new device's node row went to the local spool (replayed after the heal).
    assert_eq!(
        d.metric("ironfence_spool_records_total{op=\"create_node\"}"),
        1.0
    );
    // Later new devices are not even tried against the database while read-only.
    radtest_mab(d.auth_port, SECRET, "02:00:00:00:7e:03");
    assert_eq!(
        d.metric("ironfence_spool_records_total{op=\"create_node\"}"),
        2.0
    );

    db.admin_sql("SET GLOBAL read_only = 0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.metric("ironfence_db_read_only") != 0.0 {
        assert!(Instant::now() < deadline, "back to read-write\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = radtest_mab(d.auth_port, SECRET, mac2);
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert!(
        stdout(&d.cli(&["node", "show", mac2])).contains("status"),
        "stored once writable"
    );
    // The device seen only while read-only was created by the spool's replay.
    eventually("the spooled node row replayed", || {
        d.cli(&["node", "show", "02:00:00:00:7e:03"])
            .status
            .success()
    });
}

/// What one server saw under MAB registrations of new devices during a join.
#[derive(Debug, Default)]
struct Load {
    /// MACs whose request was answered (each creates a node row unless read-only).
    answered: Vec<String>,
    /// Requests never answered (radclient gave up after its retry).
    unanswered: u32,
    /// The slowest answered request.
    slowest: Duration,
    /// The longest time between two answers (a stall of the server's writes shows here, also
    /// when the stalled request is never answered).
    longest_gap: Duration,
    /// How long the load ran.
    ran: Duration,
}

/// MAB requests for new devices sent to `server`, one after the other, until `stop`.
fn mab_load(p: &Probe, server: usize, prefix: u8, stop: &AtomicBool) -> Load {
    let mut load = Load::default();
    let mut n = 0u32;
    let start = Instant::now();
    let mut last_answer = start;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let mac = format!(
            "02:00:{prefix:02x}:{:02x}:{:02x}:{:02x}",
            n >> 16,
            (n >> 8) & 0xff,
            n & 0xff
        );
        let t = Instant::now();
        match p.radclient_mab(server, &mac).0 {
            Some(code) if code.starts_with("Access-Accept") => {
                load.slowest = load.slowest.max(t.elapsed());
                load.longest_gap = load.longest_gap.max(last_answer.elapsed());
                last_answer = Instant::now();
                load.answered.push(mac);
            }
            _ => load.unanswered += 1,
        }
    }
    load.ran = start.elapsed();
    load
}

/// What a join under load measured on the donor.
#[derive(Debug)]
struct JoinFigures {
    donor: usize,
    join: Duration,
    donor_load: Load,
    /// `ironfence_db_writes_skipped_total{op="create_node"}` on the donor during the join.
    donor_skipped: f64,
    /// The donor's `ironfence_db_read_only` was 1 at some poll during the join.
    donor_went_read_only: bool,
    /// Every answered MAC (both servers), to check on every node.
    all_answered: Vec<String>,
}

/// pf1 bootstrapped and pf2 joined, both serving, with some data.
fn two_nodes_under_way() -> Cluster {
    let mut c = Cluster::new();
    let fp = c.bootstrap_first();
    c.sync_config(1, &fp);
    c.start_db(1, false);
    eventually(
        "pf2 joined",
        Duration::from_secs(120),
        || c.synced(1),
        || c.logs(),
    );
    c.start_serve(1);
    c.wait_ready(1);
    c.sync_config(2, &fp);
    // Some data, so the copy is not empty.
    for k in 0..50u32 {
        let mac = format!("02:00:00:aa:{:02x}:{:02x}", k >> 8, k & 0xff);
        let o = c.cli(0, &["node", "register", &mac, "--role", "default"]);
        assert!(ok(&o), "{}", text(&o));
    }
    for i in 0..2 {
        eventually(
            "read-write",
            Duration::from_secs(20),
            || c.read_only(i) == Some(0.0),
            || c.logs(),
        );
    }
    c
}

fn skipped_creates(p: &Probe, i: usize) -> f64 {
    p.metric(i, "ironfence_db_writes_skipped_total{op=\"create_node\"}")
        .unwrap_or(0.0)
}

/// Registrations on pf1 and pf2 while `start_join` makes pf3 join (a full SST: its datadir is
/// empty), until pf3 is synced and 2 s more.
fn join_under_load(c: &mut Cluster, start_join: impl FnOnce(&mut Cluster)) -> JoinFigures {
    let p = c.p.clone();
    let skipped_before = [skipped_creates(&p, 0), skipped_creates(&p, 1)];
    let stop = AtomicBool::new(false);
    let (loads, (donor, ro), join) = std::thread::scope(|scope| {
        let (p, stop) = (&p, &stop);
        let loads: Vec<_> = (0..2)
            .map(|i| scope.spawn(move || mab_load(p, i, 0x10 + i as u8, stop)))
            .collect();
        // Who donates, and whether it ever reports read-only.
        let watch = scope.spawn(move || {
            let mut donor = None;
            let mut ro = [false; 2];
            while !stop.load(Ordering::Relaxed) {
                for (i, ro) in ro.iter_mut().enumerate() {
                    if p.wsrep(i, "wsrep_local_state_comment").as_deref() == Some("Donor/Desynced")
                    {
                        donor = Some(i);
                    }
                    *ro |= p.read_only(i) != Some(0.0);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (donor, ro)
        });
        std::thread::sleep(Duration::from_secs(2));
        start_join(c);
        let joined = eventually(
            "pf3 joined under load",
            Duration::from_secs(180),
            || p.synced(2),
            || c.logs(),
        );
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        let loads: Vec<Load> = loads.into_iter().map(|h| h.join().unwrap()).collect();
        (loads, watch.join().unwrap(), joined)
    });
    let donor = donor.unwrap_or_else(|| panic!("no donor seen during the join\n{}", c.logs()));
    let all_answered: Vec<String> = loads
        .iter()
        .flat_map(|l| l.answered.iter().cloned())
        .collect();
    let donor_skipped = skipped_creates(&p, donor) - skipped_before[donor];
    let mut loads = loads;
    JoinFigures {
        donor,
        join,
        donor_load: std::mem::take(&mut loads[donor]),
        donor_skipped,
        donor_went_read_only: ro[donor],
        all_answered,
    }
}

fn print_figures(method: &str, f: &JoinFigures) {
    println!(
        "figure: {method} join under load: pf3 synced after {:.1} s; donor {}: {} registrations answered in {:.1} s ({:.1}/s), {} unanswered, {} skipped (read-only), slowest answer {:.2} s, longest time without an answer {:.2} s, read-only seen: {}",
        f.join.as_secs_f64(),
        name(f.donor),
        f.donor_load.answered.len(),
        f.donor_load.ran.as_secs_f64(),
        f.donor_load.answered.len() as f64 / f.donor_load.ran.as_secs_f64(),
        f.donor_load.unanswered,
        f.donor_skipped,
        f.donor_load.slowest.as_secs_f64(),
        f.donor_load.longest_gap.as_secs_f64(),
        f.donor_went_read_only
    );
}

/// Every answered registration is a node row on every node (none refused, none lost).
fn assert_everywhere(c: &Cluster, macs: &[String]) {
    for i in 0..3 {
        eventually(
            &format!(
                "every registration acknowledged during the join on {}",
                name(i)
            ),
            Duration::from_secs(30),
            || c.count_nodes(i, macs) == Ok(macs.len().to_string()),
            || format!("{:?}\n{}", c.count_nodes(i, macs), c.logs()),
        );
    }
}

/// issue 7 F: a join by mariabackup SST does not stop the donor's writes. pf1 and pf2 run,
/// both under MAB registrations of new devices (each creates a node row); pf3 joins with an
/// empty datadir (a full SST from one of them). On the donor no registration is refused,
/// skipped or unanswered, the donor never reports read-only, and every registration answered
/// during the join is on every node after it.
#[test]
fn join_by_mariabackup_keeps_the_donor_writable() {
    let mut c = two_nodes_under_way();
    let f = join_under_load(&mut c, |c| c.start_db(2, false));
    print_figures("mariabackup", &f);
    assert!(
        !f.donor_load.answered.is_empty(),
        "registrations were sent to the donor"
    );
    assert_eq!(f.donor_skipped, 0.0, "no write skipped on the donor");
    assert_eq!(f.donor_load.unanswered, 0, "every donor request answered");
    assert!(!f.donor_went_read_only, "the donor stayed read-write");
    assert_everywhere(&c, &f.all_answered);
    let error_log =
        std::fs::read_to_string(c.roots[2].join("state/mysql/error.log")).unwrap_or_default();
    assert!(
        error_log.contains("wsrep_sst_mariabackup"),
        "the join used mariabackup SST\n{}",
        tail(&error_log, 40)
    );
}

/// Benchmark (run by hand, see docs/benchmarks.md): the same join under load twice in one run,
/// first by rsync SST (pf3's mariadbd started by hand with the generated option file, only
/// `wsrep_sst_method` changed: the joiner asks for the method, the donor runs it), then, with
/// pf3's datadir emptied, by `ironfence db start` (mariabackup).
#[test]
#[ignore = "benchmark: cargo nextest run -p ironfence --test galera_monitor --run-ignored only"]
fn bench_join_donor_availability_rsync_vs_mariabackup() {
    let mut c = two_nodes_under_way();
    let o = c.cli(2, &["db", "generate-config"]);
    assert!(ok(&o), "{}", text(&o));
    let mysql = c.roots[2].join("state/mysql");
    let cnf = std::fs::read_to_string(mysql.join("my.cnf")).unwrap();
    let rsync_cnf = mysql.join("my-rsync.cnf");
    std::fs::write(
        &rsync_cnf,
        cnf.replace("wsrep_sst_method=mariabackup", "wsrep_sst_method=rsync"),
    )
    .unwrap();
    let mut handle = None;
    let f = join_under_load(&mut c, |c| {
        let mut cmd = c.g.lab.command(2, "mariadbd");
        cmd.arg(format!("--defaults-file={}", rsync_cnf.display()));
        handle = Some(c.g.lab.spawn(2, cmd, "mariadbd-rsync").unwrap());
    });
    print_figures("rsync", &f);
    assert_everywhere(&c, &f.all_answered);
    let h = handle.unwrap();
    assert!(c.g.lab.stop(&h, Duration::from_secs(60)));
    // Empty the datadir: the next join is a full SST again.
    let data = mysql.join("data");
    for e in std::fs::read_dir(&data).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let f = join_under_load(&mut c, |c| c.start_db(2, false));
    print_figures("mariabackup", &f);
    assert_everywhere(&c, &f.all_answered);
}

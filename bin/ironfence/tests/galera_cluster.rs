//! Three ironfence servers on a real MariaDB Galera cluster, each in its own network namespace
//! (the project's `netns::Lab`): bootstrap and joins through `ironfence db start`, a write on
//! any node read on the others, a partition of one node under continuous registrations (it
//! turns read-only and keeps answering MAB from stored roles; nothing the majority acknowledged
//! is lost), and a kill -9 of every node re-forming without an operator.
//!
//! Figures (time to read-only, to read-write, to a Primary cluster after kill -9) are printed,
//! never asserted.

#[path = "common/galera_lab.rs"]
mod galera_lab;

use galera_lab::{Fixture, GaleraLab, eventually, name, ok, text};
use std::process::Command;
use std::time::{Duration, Instant};

/// TEST FIXTURE secrets, only for this test.
const WS_USER: &str = "ws-galera-e2e";
const WS_PASS: &str = "ws-galera-e2e-test-fixture-password-0123";
const DB_PASS: &str = "db-galera-e2e-test-fixture-password-0123";
const SST_PASS: &str = "sst-galera-e2e-test-fixture-password-0123";
const SECRET: &str = "radius-galera-e2e-test-fixture-secret-01";
const FIXTURE: Fixture = Fixture {
    ws_user: WS_USER,
    ws_pass: WS_PASS,
    db_pass: DB_PASS,
    sst_pass: SST_PASS,
    secret: SECRET,
    vrrp_pass: "galera-e2e-vrrp-fixture",
};

/// The shared lab of three hosts, with this test's own helpers.
struct Cluster {
    g: GaleraLab,
}

impl std::ops::Deref for Cluster {
    type Target = GaleraLab;
    fn deref(&self) -> &GaleraLab {
        &self.g
    }
}

impl std::ops::DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut GaleraLab {
        &mut self.g
    }
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            g: GaleraLab::new(3, FIXTURE),
        }
    }

    /// Bootstraps pf1, joins pf2 and pf3 (configuration with the pinned CA, then the database by
    /// SST) and starts `serve` everywhere.
    fn up() -> Cluster {
        let mut c = Cluster::new();
        let t0 = Instant::now();
        c.bring_up(|_, _| {});
        println!(
            "figure: 3-node cluster from nothing to serving in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        c
    }

    fn sql(&self, i: usize, sql: &str) -> Result<String, String> {
        galera_lab::sql_at(&self.socket(i), "pf", sql)
    }

    fn radclient_mab(&self, i: usize, mac: &str) -> (Option<String>, Option<String>) {
        galera_lab::radclient_mab(
            self.lab.switch_command("radclient"),
            self.lab.host_ip(i),
            SECRET,
            "2",
            mac,
        )
    }

    /// Cuts node i off from its peers while the switch namespace still reaches it (a database
    /// partition during which RADIUS clients keep talking to the isolated server). The
    /// neighbour entries between node i and its peers point at a MAC address nobody has, so
    /// their frames are silently lost, as in a real partition (timeouts, not errors); no
    /// firewall or traffic-control kernel module is needed.
    fn isolate_from_peers(&self, i: usize, on: bool) {
        for j in (0..3).filter(|&j| j != i) {
            for (from, to) in [(i, j), (j, i)] {
                let to = self.lab.host_ip(to).to_string();
                let mut cmd = self.lab.command(from, "ip");
                if on {
                    cmd.args([
                        "neigh",
                        "replace",
                        &to,
                        "lladdr",
                        "02:00:5e:00:00:01",
                        "nud",
                        "permanent",
                        "dev",
                        "eth0",
                    ]);
                } else {
                    cmd.args(["neigh", "del", &to, "dev", "eth0"]);
                }
                let st = cmd.status().unwrap();
                assert!(st.success(), "ip neigh in host {from}");
            }
        }
    }
}

#[test]
fn galera_cluster_bootstrap_partition_and_crash_recovery() {
    let mut c = Cluster::up();
    assert_eq!(c.wsrep(0, "wsrep_cluster_size").as_deref(), Some("3"));

    // A write on any node is read on the others.
    for i in 0..3 {
        let mac = format!("02:00:00:00:0a:0{i}");
        let o = c.cli(i, &["node", "register", &mac, "--role", "guest"]);
        assert!(ok(&o), "{}", text(&o));
    }
    for i in 0..3 {
        eventually(
            "replicated registrations",
            Duration::from_secs(10),
            || {
                c.sql(
                    i,
                    "SELECT COUNT(*) FROM node WHERE mac LIKE '02:00:00:00:0a:%'",
                )
                .as_deref()
                    == Ok("3")
            },
            || c.logs(),
        );
        assert_eq!(
            c.radclient_mab(i, "02:00:00:00:0a:00").1.as_deref(),
            Some("200")
        );
    }

    // Concurrent writes to the same rows on two nodes: Galera rejects one of each conflicting
    // pair (certification, error 1213); ironfence retries, so every write succeeds.
    let conflicting: Vec<String> = (0..15).map(|k| format!("02:00:00:00:0e:{k:02x}")).collect();
    let results: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let c = &c;
                let macs = &conflicting;
                scope.spawn(move || {
                    macs.iter()
                        .map(|m| {
                            ok(&c.cli(
                                i,
                                &[
                                    "node",
                                    "register",
                                    m,
                                    "--role",
                                    if i == 0 { "guest" } else { "default" },
                                ],
                            ))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        results.iter().all(|r| *r),
        "every concurrent write must succeed: {results:?}"
    );
    let list_c = conflicting
        .iter()
        .map(|m| format!("'{m}'"))
        .collect::<Vec<_>>()
        .join(",");
    let counts: Vec<String> = (0..3)
        .map(|i| c.sql(i, &format!("SELECT COUNT(*), GROUP_CONCAT(category ORDER BY mac) FROM node WHERE mac IN ({list_c})")).unwrap())
        .collect();
    assert!(
        counts
            .iter()
            .all(|x| x == &counts[0] && x.starts_with("15")),
        "nodes disagree: {counts:?}"
    );

    // Partition pf3 under continuous registrations sent to all three servers.
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut seq = 0u32;
    let mut register = |c: &Cluster, acknowledged: &mut Vec<String>, refused: &mut u32| {
        for i in 0..3 {
            seq += 1;
            let mac = format!("02:00:00:01:{:02x}:{:02x}", seq >> 8, seq & 0xff);
            let o = c.cli(i, &["node", "register", &mac, "--role", "default"]);
            if ok(&o) {
                acknowledged.push(mac);
            } else {
                *refused += 1;
            }
        }
    };
    register(&c, &mut acknowledged, &mut refused);
    let ro_before = c.lab.log("serve2").matches("database read-only").count();
    let partitioned = Instant::now();
    c.isolate_from_peers(2, true);
    let to_ro = eventually(
        "pf3 read-only",
        Duration::from_secs(30),
        || c.lab.log("serve2").matches("database read-only").count() > ro_before,
        || c.logs(),
    );
    println!(
        "figure: partition -> read-only on the isolated node: {:.2} s",
        to_ro.as_secs_f64()
    );
    for _ in 0..5 {
        register(&c, &mut acknowledged, &mut refused);
    }
    assert!(
        refused >= 5,
        "writes on the isolated node must be refused ({refused})"
    );
    // The isolated node keeps answering MAB with the stored role, and a new device gets the
    // registration VLAN without anything being persisted.
    assert_eq!(
        c.radclient_mab(2, "02:00:00:00:0a:00").1.as_deref(),
        Some("200")
    );
    assert_eq!(
        c.radclient_mab(2, "02:00:00:00:0b:01").1.as_deref(),
        Some("2")
    );
    // The majority stays read-write.
    assert_eq!(
        c.wsrep(0, "wsrep_cluster_status").as_deref(),
        Some("Primary")
    );
    let o = c.cli(0, &["node", "register", "02:00:00:00:0c:01"]);
    assert!(ok(&o), "{}", text(&o));
    acknowledged.push("02:00:00:00:0c:01".into());

    let rw_before = c
        .lab
        .log("serve2")
        .matches("database read-write again")
        .count();
    let healed = Instant::now();
    c.isolate_from_peers(2, false);
    let to_rw = eventually(
        "pf3 read-write again",
        Duration::from_secs(60),
        || {
            c.lab
                .log("serve2")
                .matches("database read-write again")
                .count()
                > rw_before
        },
        || c.logs(),
    );
    println!(
        "figure: heal -> read-write on the isolated node: {:.2} s (partition lasted {:.1} s)",
        to_rw.as_secs_f64(),
        (healed - partitioned).as_secs_f64()
    );
    // Zero acknowledged registrations lost, on every node.
    let list = acknowledged
        .iter()
        .map(|m| format!("'{m}'"))
        .collect::<Vec<_>>()
        .join(",");
    for i in 0..3 {
        eventually(
            "every acknowledged registration present",
            Duration::from_secs(20),
            || {
                c.sql(
                    i,
                    &format!("SELECT COUNT(*) FROM node WHERE mac IN ({list}) AND status = 'reg'"),
                ) == Ok(acknowledged.len().to_string())
            },
            || c.logs(),
        );
    }
    println!(
        "figure: {} registrations acknowledged, {refused} refused by the isolated node, 0 lost",
        acknowledged.len()
    );

    // kill -9 every database node: the cluster re-forms with no operator action.
    for i in 0..3 {
        let h = c.db[i].take().unwrap();
        c.lab.kill9(&h);
    }
    // mariadbd children of the killed supervisors are still running: kill them too (by the PID
    // in their pid file, which the test's own mariadbd processes wrote).
    for i in 0..3 {
        if let Ok(pid) = std::fs::read_to_string(c.roots[i].join("state/mysql/mysqld.pid")) {
            let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        c.start_db(i, false);
    }
    let to_primary = eventually(
        "cluster Primary after kill -9 of all",
        Duration::from_secs(120),
        || (0..3).all(|i| c.synced(i)),
        || c.logs(),
    );
    println!(
        "figure: kill -9 of all nodes -> Primary 3-node cluster: {:.1} s",
        to_primary.as_secs_f64()
    );
    for i in 0..3 {
        eventually(
            "no acknowledged registration lost after the crash",
            Duration::from_secs(20),
            || {
                c.sql(
                    i,
                    &format!("SELECT COUNT(*) FROM node WHERE mac IN ({list})"),
                ) == Ok(acknowledged.len().to_string())
            },
            || c.logs(),
        );
    }
}

/// The guide's restart procedures: a graceful stop of every node (the last one down bootstraps
/// by itself), then the split-brain procedure (`--force-new-cluster` on one node, the others
/// wiped and rejoined by SST).
#[test]
fn galera_graceful_restart_and_force_new_cluster() {
    let mut c = Cluster::up();
    let o = c.cli(
        0,
        &["node", "register", "02:00:00:00:0d:01", "--role", "guest"],
    );
    assert!(ok(&o), "{}", text(&o));
    // Graceful stop in cluster.conf order: pf3 is the last to leave.
    for i in 0..3 {
        let h = c.db[i].take().unwrap();
        assert!(
            c.lab.stop(&h, Duration::from_secs(60)),
            "db start on {} did not stop",
            name(i)
        );
    }
    let grastate =
        std::fs::read_to_string(c.roots[2].join("state/mysql/data/grastate.dat")).unwrap();
    assert!(grastate.contains("safe_to_bootstrap: 1"), "{grastate}");
    let restarted = Instant::now();
    for i in 0..3 {
        c.start_db(i, false);
    }
    let t = eventually(
        "cluster Primary after a graceful stop of all",
        Duration::from_secs(120),
        || (0..3).all(|i| c.synced(i)),
        || c.logs(),
    );
    println!(
        "figure: graceful stop of all -> Primary 3-node cluster: {:.1} s",
        t.as_secs_f64()
    );
    assert!(
        c.lab
            .log("db2")
            .contains("bootstrap a new cluster: no peer"),
        "pf3 (last down) must bootstrap:\n{}",
        c.logs()
    );
    let _ = restarted;
    for i in 0..3 {
        assert_eq!(
            c.sql(
                i,
                "SELECT category FROM node WHERE mac = '02:00:00:00:0d:01'"
            )
            .as_deref(),
            Ok("guest")
        );
    }

    // Split brain procedure: pf1 forms a new cluster; pf2 and pf3 are wiped and rejoin.
    for i in 0..3 {
        let h = c.db[i].take().unwrap();
        assert!(c.lab.stop(&h, Duration::from_secs(60)));
    }
    c.start_db(0, true);
    eventually(
        "pf1 Primary after --force-new-cluster",
        Duration::from_secs(60),
        || c.synced(0),
        || c.logs(),
    );
    let o = c.cli(0, &["node", "register", "02:00:00:00:0d:02"]);
    assert!(ok(&o), "{}", text(&o));
    for i in 1..3 {
        std::fs::remove_dir_all(c.roots[i].join("state/mysql/data")).unwrap();
        c.start_db(i, false);
        eventually(
            &format!("{} rejoined by SST", name(i)),
            Duration::from_secs(90),
            || c.synced(i),
            || c.logs(),
        );
        assert_eq!(
            c.sql(
                i,
                "SELECT COUNT(*) FROM node WHERE mac IN ('02:00:00:00:0d:01','02:00:00:00:0d:02')"
            )
            .as_deref(),
            Ok("2")
        );
    }

    // Total outage where no node may bootstrap (kill -9 of all, primary-component state
    // lost): never automatic while a member is missing — the operator is told which command
    // decides — and automatic once every member has answered: the highest seqno bootstraps.
    let o = c.cli(0, &["node", "register", "02:00:00:00:0d:03"]);
    assert!(ok(&o), "{}", text(&o));
    for i in 0..3 {
        let h = c.db[i].take().unwrap();
        c.lab.kill9(&h);
        if let Ok(pid) = std::fs::read_to_string(c.roots[i].join("state/mysql/mysqld.pid")) {
            let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        let _ = std::fs::remove_file(c.roots[i].join("state/mysql/data/gvwstate.dat"));
    }
    let pf3_serve = c.serve[2].take().unwrap();
    assert!(c.lab.stop(&pf3_serve, Duration::from_secs(30)));
    let mark = c.lab.log("db0").len();
    c.start_db(0, false);
    c.start_db(1, false);
    eventually(
        "pf1 waits and names the missing member and the deciding command",
        Duration::from_secs(60),
        || {
            let log = c.lab.log("db0");
            let new = &log[mark.min(log.len())..];
            new.contains("database not started")
                && new.contains("pf3.example.com")
                && new.contains("--force-new-cluster")
        },
        || c.logs(),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !c.synced(0) && !c.synced(1),
        "nothing may start while a member is missing"
    );
    c.start_serve(2);
    c.start_db(2, false);
    let t = eventually(
        "cluster re-formed by the all-members election",
        Duration::from_secs(120),
        || (0..3).all(|i| c.synced(i)),
        || c.logs(),
    );
    println!(
        "figure: all-members election after a total outage -> Primary 3-node cluster: {:.1} s",
        t.as_secs_f64()
    );
    for i in 0..3 {
        assert_eq!(
            c.sql(
                i,
                "SELECT COUNT(*) FROM node WHERE mac LIKE '02:00:00:00:0d:%'"
            )
            .as_deref(),
            Ok("3")
        );
    }
}

//! Three (or two) ironfence servers as separate processes on loopback addresses, each with its
//! own installation root (conf + state), sharing one real MariaDB: joining with
//! `cluster sync --from`, pushing with a peer down, and the clustering guide's conflict
//! scenarios end to end. Every process is stopped by PID when its guard drops.

use ironfence_testkit::MariaDb;
use ironfence_webservices::{Client, Credentials, Trust};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// TEST FIXTURE credentials, only for these tests.
const WS_USER: &str = "ws-e2e-admin";
const WS_PASS: &str = "ws-e2e-test-fixture-password-0123456789";
const RADIUS_SECRET: &str = "cluster-e2e-test-fixture-secret-0123";

struct Server {
    name: String,
    ip: String,
    root: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn new(base: &Path, name: &str, ip: &str) -> Server {
        let root = base.join(name);
        std::fs::create_dir_all(root.join("conf")).unwrap();
        Server {
            name: name.into(),
            ip: ip.into(),
            root,
            child: None,
        }
    }

    fn conf(&self) -> PathBuf {
        self.root.join("conf")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("ironfence.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ironfence"))
            .env("IRONFENCE_HOSTNAME", &self.name)
            .arg("--conf-dir")
            .arg(self.conf())
            .args(args)
            .output()
            .unwrap()
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ironfence"))
            .env("IRONFENCE_HOSTNAME", &self.name)
            .env("RUST_LOG", "info")
            .arg("--conf-dir")
            .arg(self.conf())
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let starts = self
            .log()
            .matches("node-to-node API (webservices) ready")
            .count();
        eventually(
            &format!("{} ready", self.name),
            Duration::from_secs(30),
            || {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("{} exited ({status}):\n{}", self.name, self.log());
                }
                self.log()
                    .matches("node-to-node API (webservices) ready")
                    .count()
                    > starts
            },
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.conf().join(rel)).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        }
    }
}

fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes the first server's configuration: pf.conf, cluster.conf (servers in order), switches.
fn write_first_config(
    first: &Server,
    servers: &[(&str, &str)],
    vip: &str,
    db: &MariaDb,
    db_name: &str,
) {
    let conf = first.conf();
    let radius_port = free_port();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = {db_name}\n\n\
             [radius]\nauth_port = {radius_port}\nacct_port = {}\n\n\
             [metrics]\nlisten =\n\n\
             [webservices]\nuser = {WS_USER}\npass = {WS_PASS}\n\n\
             [active_active]\ngalera_replication_username = e2e-repl\ngalera_replication_password = e2e-test-fixture-repl-password\n\
             password = e2e-test-fixture-vrrp-key\n\n\
             [maintenance]\ncluster_check_interval = 2s\n",
            db.host(),
            db.port(),
            db.user(),
            db.password(),
            radius_port + 1
        ),
    )
    .unwrap();
    let mut cluster = format!("# cluster of the e2e test\n[CLUSTER]\nmanagement_ip = {vip}\n\n");
    for (name, ip) in servers {
        cluster.push_str(&format!("[{name}]\nmanagement_ip = {ip}\n\n"));
    }
    std::fs::write(conf.join("cluster.conf"), cluster).unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        format!("# switches\n[default]\nregistrationVlan = 2\n\n[127.0.0.1]\nradiusSecret = {RADIUS_SECRET}\n"),
    )
    .unwrap();
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn fingerprint(server: &Server) -> String {
    let out = server.cli(&["cluster", "status"]);
    let t = text(&out);
    t.lines()
        .find_map(|l| l.strip_prefix("cluster CA fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in:\n{t}"))
        .trim()
        .to_string()
}

fn join(server: &Server, from: &Server, fingerprint: &str) {
    let out = server.cli(&[
        "cluster",
        "sync",
        "--from",
        &from.ip,
        "--api-user",
        WS_USER,
        "--api-password",
        WS_PASS,
        "--ca-fingerprint",
        fingerprint,
    ]);
    assert!(
        out.status.success(),
        "join of {} failed:\n{}",
        server.name,
        text(&out)
    );
}

/// Edits registrationVlan on `server` by hand and reloads it, as an admin would.
fn manual_edit(server: &Server, vlan: u16) {
    let path = server.conf().join("switches.conf");
    let old = std::fs::read_to_string(&path).unwrap();
    let new: String = old
        .lines()
        .map(|l| {
            if l.starts_with("registrationVlan") {
                format!("registrationVlan = {vlan}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(&path, new).unwrap();
}

fn vlan_of(server: &Server) -> String {
    server
        .file("switches.conf")
        .lines()
        .find_map(|l| l.strip_prefix("registrationVlan = ").map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn join_push_with_a_peer_down_and_quorum_wins_after_return() {
    let db = MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("cluster_a").unwrap();
    let base = tempfile::tempdir().unwrap();
    let names = [
        ("pf1.example.com", "127.0.21.1"),
        ("pf2.example.com", "127.0.21.2"),
        ("pf3.example.com", "127.0.21.3"),
    ];
    let mut pf1 = Server::new(base.path(), names[0].0, names[0].1);
    let mut pf2 = Server::new(base.path(), names[1].0, names[1].1);
    let mut pf3 = Server::new(base.path(), names[2].0, names[2].1);
    write_first_config(&pf1, &names, "127.0.21.10", &db, "cluster_a");
    let out = pf1.cli(&["checkup"]);
    assert!(out.status.success(), "{}", text(&out));
    pf1.start();
    let fp = fingerprint(&pf1);
    assert!(fp.starts_with("SHA256:"), "{fp}");

    // Wrong password: 401 and a clear error; nothing written.
    let out = pf2.cli(&[
        "cluster",
        "sync",
        "--from",
        &pf1.ip,
        "--api-user",
        WS_USER,
        "--api-password",
        "wrong",
        "--ca-fingerprint",
        &fp,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("401"), "{}", text(&out));
    assert!(!pf2.conf().join("pf.conf").exists());
    // No fingerprint: refused, showing the fingerprint to verify out of band.
    let out = pf2.cli(&[
        "cluster",
        "sync",
        "--from",
        &pf1.ip,
        "--api-user",
        WS_USER,
        "--api-password",
        WS_PASS,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains(&fp), "{}", text(&out));
    // A wrong fingerprint (an untrusted CA): refused.
    let wrong = format!("SHA256:{}", "00".repeat(32));
    let out = pf2.cli(&[
        "cluster",
        "sync",
        "--from",
        &pf1.ip,
        "--api-user",
        WS_USER,
        "--api-password",
        WS_PASS,
        "--ca-fingerprint",
        &wrong,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!pf2.conf().join("pf.conf").exists());

    // Join pf2 and pf3 for real.
    join(&pf2, &pf1, &fp);
    join(&pf3, &pf1, &fp);
    assert_eq!(pf2.file("switches.conf"), pf1.file("switches.conf"));
    assert_eq!(
        pf3.file("ssl/cluster-ca.crt"),
        pf1.file("ssl/cluster-ca.crt")
    );
    pf2.start();
    pf3.start();
    let status = text(&pf1.cli(&["cluster", "status"]));
    // Every server reachable, all on the same configuration version.
    let versions: Vec<&str> = names
        .iter()
        .map(|(name, _)| {
            let row = status
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("{status}"));
            let cols: Vec<&str> = row.split_whitespace().collect();
            let at = cols.iter().position(|c| c == name).unwrap();
            assert_eq!(cols[at + 2], "yes", "{name} unreachable:\n{status}");
            cols[at + 3]
        })
        .collect();
    assert!(versions.iter().all(|v| *v == versions[0]), "{status}");

    // A path outside the bundle is never served.
    let ca = ironfence_webservices::ClusterCa::load(&pf1.conf())
        .unwrap()
        .unwrap();
    let client = Client::new(
        pf1.ip.parse().unwrap(),
        9090,
        Trust::ClusterCa(ca.cert_der().clone()),
        Credentials {
            user: WS_USER.into(),
            pass: WS_PASS.into(),
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "state/ironfence.log",
        "conf/../../x",
    ] {
        let r = rt.block_on(client.bundle_file(path));
        assert!(
            matches!(r, Ok(None) | Err(_)),
            "{path} must not be served: {r:?}"
        );
    }
    assert!(
        rt.block_on(client.bundle_file("conf/switches.conf"))
            .unwrap()
            .is_some()
    );

    // Push on change with one peer down: the answer names it.
    pf3.stop();
    manual_edit(&pf1, 20);
    let out = pf1.cli(&["configreload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("cluster sync --as-master"),
        "{}",
        text(&out)
    );
    let out = pf1.cli(&["cluster", "sync", "--as-master"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("pf3.example.com: NOT updated"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("pf2.example.com: updated"),
        "{}",
        text(&out)
    );
    assert_eq!(vlan_of(&pf2), "20");
    // pf3 returns: the conflict check (on pf1, the management server) brings it up to date.
    pf3.start();
    eventually("pf3 receives the change", Duration::from_secs(30), || {
        vlan_of(&pf3) == "20"
    });

    // The guide: a change not pushed to at least half of the servers loses when they return.
    pf2.stop();
    pf3.stop();
    manual_edit(&pf1, 30);
    assert!(pf1.cli(&["configreload"]).status.success());
    // Both return together; their (older) version has the quorum and is pushed to pf1.
    pf2.start();
    pf3.start();
    eventually(
        "quorum's version wins on pf1",
        Duration::from_secs(40),
        || vlan_of(&pf1) == "20",
    );
    assert!(
        pf1.log().contains("resolving configuration conflict"),
        "{}",
        pf1.log()
    );

    // A disabled peer is left out of pushes; maintenance shows in everyone's status.
    let out = pf1.cli(&["cluster", "node", "pf3.example.com", "disable"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pf1.cli(&["cluster", "sync", "--as-master"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("pf3.example.com"), "{}", text(&out));
    assert!(
        pf1.cli(&["cluster", "node", "pf3.example.com", "enable"])
            .status
            .success()
    );
    let out = pf2.cli(&["cluster", "maintenance", "--activate"]);
    assert!(
        text(&out).contains("maintenance mode is ACTIVE"),
        "{}",
        text(&out)
    );
    let status = text(&pf1.cli(&["cluster", "status"]));
    let pf2_row = status
        .lines()
        .find(|l| l.contains("pf2.example.com"))
        .unwrap_or_default();
    assert!(
        pf2_row.contains(" yes ")
            && pf2_row.split_whitespace().filter(|w| *w == "yes").count() >= 2,
        "{status}"
    );
    let out = pf1.cli(&["cluster", "node", "nosuch.example.com", "disable"]);
    assert!(
        !out.status.success() && text(&out).contains("not in cluster.conf"),
        "{}",
        text(&out)
    );
}

#[test]
fn two_server_cluster_most_recent_wins_and_waits_for_the_peer() {
    let db = MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("cluster_b").unwrap();
    let base = tempfile::tempdir().unwrap();
    let names = [
        ("pf1.example.com", "127.0.22.1"),
        ("pf2.example.com", "127.0.22.2"),
    ];
    let mut pf1 = Server::new(base.path(), names[0].0, names[0].1);
    let mut pf2 = Server::new(base.path(), names[1].0, names[1].1);
    write_first_config(&pf1, &names, "127.0.22.10", &db, "cluster_b");
    pf1.start();
    let fp = fingerprint(&pf1);
    join(&pf2, &pf1, &fp);
    pf2.start();

    // pf1 (the management server) is down; a change on pf2 is the most recent version.
    pf1.stop();
    // Versions are ordered by their change time in seconds: make this change strictly later.
    std::thread::sleep(Duration::from_millis(1100));
    manual_edit(&pf2, 40);
    assert!(pf2.cli(&["configreload"]).status.success());
    // While pf1 is down nothing is decided (two-server cluster: the peer's API must answer).
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(vlan_of(&pf2), "40");
    assert!(
        !pf2.log().contains("resolving configuration conflict"),
        "{}",
        pf2.log()
    );
    // pf1 returns with the older version: the most recent one (pf2's) is pushed to it, by pf2
    // at pf1's request.
    pf1.start();
    eventually(
        "most recent version wins on pf1",
        Duration::from_secs(40),
        || vlan_of(&pf1) == "40",
    );
    assert!(pf1.log().contains("TwoServersMostRecent"), "{}", pf1.log());
}

/// `auth_port` of the shared pf.conf.
fn radius_port(server: &Server) -> u16 {
    server
        .file("pf.conf")
        .lines()
        .find_map(|l| l.strip_prefix("auth_port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("auth_port in pf.conf")
}

/// The VLAN `server`'s RADIUS (on its management IP) gives an unknown device, by radtest.
fn registration_vlan_answered(server: &Server, mac: &str) -> String {
    let out = Command::new("radtest")
        .args(["-t", "pap", "-x", mac, mac])
        .arg(format!("{}:{}", server.ip, radius_port(server)))
        .args(["0", RADIUS_SECRET])
        .output()
        .expect("radtest is required: apt-get install freeradius-utils");
    let t = text(&out);
    t.lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("Tunnel-Private-Group-Id:0 = ")
                .or_else(|| l.strip_prefix("Tunnel-Private-Group-Id = "))
        })
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no VLAN from {}:\n{t}", server.name))
}

/// The CONFIG column of `server`'s row in `cluster status` as seen from `from`.
fn status_version(from: &Server, server: &str) -> String {
    let status = text(&from.cli(&["cluster", "status"]));
    let row = status
        .lines()
        .find(|l| l.contains(server))
        .unwrap_or_else(|| panic!("{status}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let at = cols.iter().position(|c| *c == server).unwrap();
    assert_eq!(cols[at + 2], "yes", "{server} unreachable:\n{status}");
    cols[at + 3].to_string()
}

/// Wave-1 defect A: `cluster sync --as-master` must apply the change on the publishing server
/// too, and every server must report the version it actually runs.
#[test]
fn publishing_applies_locally_and_status_reports_the_running_version() {
    let db = MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("cluster_c").unwrap();
    let base = tempfile::tempdir().unwrap();
    let names = [
        ("pf1.example.com", "127.0.25.1"),
        ("pf2.example.com", "127.0.25.2"),
    ];
    let mut pf1 = Server::new(base.path(), names[0].0, names[0].1);
    let mut pf2 = Server::new(base.path(), names[1].0, names[1].1);
    write_first_config(&pf1, &names, "127.0.25.10", &db, "cluster_c");
    pf1.start();
    let fp = fingerprint(&pf1);
    join(&pf2, &pf1, &fp);
    pf2.start();
    assert_eq!(registration_vlan_answered(&pf1, "02:00:00:00:23:01"), "2");

    // An admin edits switches.conf on pf1 and publishes it, without a configreload.
    manual_edit(&pf1, 7);
    // Until it is reloaded or published, pf1 runs (and reports) the old version.
    assert_eq!(
        status_version(&pf1, "pf1.example.com"),
        status_version(&pf1, "pf2.example.com")
    );
    let out = pf1.cli(&["cluster", "sync", "--as-master"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(vlan_of(&pf2), "7");
    // Every server answers the new VLAN, the publishing one included.
    assert_eq!(registration_vlan_answered(&pf2, "02:00:00:00:23:02"), "7");
    assert_eq!(registration_vlan_answered(&pf1, "02:00:00:00:23:03"), "7");
    // And both report the same version, the one they run.
    let v1 = status_version(&pf2, "pf1.example.com");
    assert_eq!(v1, status_version(&pf2, "pf2.example.com"));
    assert_ne!(v1, "-");
}

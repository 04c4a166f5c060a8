//! The RADIUS audit log end to end: a burst of radclient requests, then `ironfence audit`
//! shows every one of them — while the daemon runs, after a graceful restart and after a
//! crash (SIGKILL).

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const A: &str = "02:00:00:00:26:0a";
const B: &str = "02:00:00:00:26:0b";

/// `n` MAB requests for `mac`, NAS-Port = `first_port + i`, as one radclient input.
fn burst(mac: &str, first_port: u32, n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "User-Name = \"{mac}\"\nUser-Password = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\n\
                 Service-Type = Call-Check\nNAS-Port = {}\nMessage-Authenticator = 0x00\n",
                first_port + i
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends every request of `input` with 32 in flight; returns radclient's summary.
fn radclient_burst(port: u16, input: &str) -> String {
    radclient_burst_to("127.0.0.1", port, SECRET, input)
}

fn radclient_burst_to(host: &str, port: u16, secret: &str, input: &str) -> String {
    let mut child = Command::new("radclient")
        .args(["-q", "-s", "-r", "3", "-t", "3", "-p", "32"])
        .arg(format!("{host}:{port}"))
        .args(["auth", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient is required: apt-get install freeradius-utils");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ironfence audit <mac> --json` → the NAS-Port of every record, sorted.
fn audited_ports(d: &Daemon, mac: &str) -> Vec<u32> {
    let out = d.cli(&["audit", mac, "--limit", "100000", "--json"]);
    assert!(
        out.status.success(),
        "audit {mac}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ports: Vec<u32> = stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["mac"], mac, "{l}");
            assert_eq!(v["request_type"], "auth", "{l}");
            assert_eq!(v["outcome"], "accept", "{l}");
            assert!(v["time"].as_str().unwrap().ends_with('Z'), "{l}");
            v["nas_port"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn every_request_of_a_burst_is_audited_and_survives_restart_and_crash() {
    let mut d = Daemon::start();
    let (na, nb) = (400u32, 100u32);
    let input = format!("{}\n\n{}", burst(A, 1, na), burst(B, 1, nb));
    let summary = radclient_burst(d.auth_port, &input);
    let accepted = d.metric("ironfence_radius_replies_total{kind=\"access_accept\"}");
    assert_eq!(accepted, f64::from(na + nb), "radclient: {summary}");
    eventually("every record written", || {
        d.metric("ironfence_audit_log_records_written_total") >= f64::from(na + nb)
    });
    assert_eq!(
        d.metric("ironfence_audit_records_total{outcome=\"dropped\"}"),
        0.0
    );
    let want_a: Vec<u32> = (1..=na).collect();
    let want_b: Vec<u32> = (1..=nb).collect();
    // While the daemon runs: the open segment is read directly.
    assert_eq!(audited_ports(&d, A), want_a);
    assert_eq!(audited_ports(&d, B), want_b);

    // The table, and the filters.
    let out = stdout(&d.cli(&["audit", "02-00-00-00-26-0B", "--limit", "3"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("TIME"), "{out}");
    assert!(
        lines[1].contains("auth") && lines[1].contains("accept"),
        "{out}"
    );
    assert_eq!(
        lines[4],
        format!("3 record(s) for {B} (the newest 3; --limit to see more)")
    );
    let out = stdout(&d.cli(&["audit", A, "--since", "1h"]));
    assert!(
        out.ends_with(
            "100 record(s) for 02:00:00:00:26:0a (the newest 100; --limit to see more)\n"
        ),
        "{out}"
    );
    let out = stdout(&d.cli(&["audit", A, "--until", "2000-01-01"]));
    assert_eq!(out, format!("0 record(s) for {A}\n"));
    // `| head`: the reader goes away, the command ends quietly (no panic, no message).
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --conf-dir {} audit {A} --limit 1000 | head -1",
            env!("CARGO_BIN_EXE_ironfence"),
            d.conf_dir().display()
        ))
        .output()
        .unwrap();
    assert!(stdout(&piped).starts_with("TIME"), "{}", stdout(&piped));
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let bad = d.cli(&["audit", A, "--since", "last tuesday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));

    // Graceful restart: the open segment is closed and indexed, a new one starts.
    assert!(d.stop().success());
    let audit_dir = d.dir.path().join("state/audit");
    let idx = std::fs::read_dir(&audit_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".idx")
        })
        .count();
    assert_eq!(idx, 1, "closed at shutdown");
    // Readable with the daemon stopped, too.
    assert_eq!(audited_ports(&d, A), want_a);
    d.restart();
    assert_eq!(audited_ports(&d, A), want_a);

    // A crash: records handed to the kernel survive, the segment is recovered at the next start.
    let summary = radclient_burst(d.auth_port, &burst(A, na + 1, 100));
    eventually("the second burst written", || {
        d.metric("ironfence_audit_log_records_written_total") >= 100.0
    });
    d.kill9();
    d.restart();
    let want: Vec<u32> = (1..=na + 100).collect();
    assert_eq!(audited_ports(&d, A), want, "radclient: {summary}");
    assert_eq!(audited_ports(&d, B), want_b);
    assert!(
        d.log()
            .contains("audit log recovered after an unclean stop"),
        "{}",
        d.log()
    );
}

#[test]
fn audit_log_database_mode_and_disabled() {
    // `database`: PacketFence's table, kept as an option; no files are written.
    let d = DaemonBuilder::default()
        .radius_extra("audit_log = database\n")
        .start();
    let _ = radclient_burst(d.auth_port, &burst(A, 1, 20));
    eventually("rows written", || {
        d.metric("ironfence_audit_records_total{outcome=\"written\"}") >= 20.0
    });
    assert!(!d.dir.path().join("state/audit").exists());
    drop(d);
    let d = DaemonBuilder::default()
        .radius_extra("audit_log = disabled\n")
        .start();
    let _ = radclient_burst(d.auth_port, &burst(A, 1, 5));
    assert_eq!(
        d.metric("ironfence_radius_replies_total{kind=\"access_accept\"}"),
        5.0
    );
    assert!(!d.dir.path().join("state/audit").exists());
    assert_eq!(
        stdout(&d.cli(&["audit", A])),
        format!("0 record(s) for {A}\n")
    );
}

// ---- cluster: every member keeps its own log, `ironfence audit` asks them all ----

/// TEST FIXTURE credentials, only for this test.
const WS_USER: &str = "ws-audit-e2e";
const WS_PASS: &str = "ws-audit-e2e-test-fixture-password-0123";
const CLUSTER_SECRET: &str = "audit-e2e-test-fixture-secret-012345";

/// One cluster member: its own installation root on its own loopback address (127.0.26.x).
struct Member {
    name: String,
    ip: String,
    root: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn new(base: &Path, name: &str, ip: &str) -> Member {
        let root = base.join(name);
        std::fs::create_dir_all(root.join("conf")).unwrap();
        Member {
            name: name.into(),
            ip: ip.into(),
            root,
            child: None,
        }
    }

    fn conf(&self) -> PathBuf {
        self.root.join("conf")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("ironfence.log")).unwrap_or_default()
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
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("ironfence.log"))
            .unwrap();
        let ready = "node-to-node API (webservices) ready";
        let before = self.log().matches(ready).count();
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_ironfence"))
                .env("IRONFENCE_HOSTNAME", &self.name)
                .env("RUST_LOG", "info")
                .arg("--conf-dir")
                .arg(self.conf())
                .arg("serve")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.log().matches(ready).count() == before {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited ({st}):\n{}", self.name, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_cluster_query_reaches_every_member_and_names_the_silent_one() {
    let db =
        ironfence_testkit::MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("audit_e2e").unwrap();
    let base = tempfile::tempdir().unwrap();
    let mut pf1 = Member::new(base.path(), "pf1.example.com", "127.0.26.1");
    let mut pf2 = Member::new(base.path(), "pf2.example.com", "127.0.26.2");
    let port = free_udp_port();
    std::fs::write(
        pf1.conf().join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = audit_e2e\n\n\
             [radius]\nauth_port = {port}\nacct_port = {}\n\n\
             [metrics]\nlisten =\n\n\
             [webservices]\nuser = {WS_USER}\npass = {WS_PASS}\n\n\
             [active_active]\ngalera_replication_username = e2e-repl\ngalera_replication_password = e2e-test-fixture-repl-password\n\
             password = e2e-test-fixture-vrrp-key\n\n\
             [maintenance]\ncluster_check_interval = 0\n",
            db.host(),
            db.port(),
            db.user(),
            db.password(),
            port + 1
        ),
    )
    .unwrap();
    std::fs::write(
        pf1.conf().join("cluster.conf"),
        format!(
            "[CLUSTER]\nmanagement_ip = 127.0.26.10\n\n[{}]\nmanagement_ip = {}\n\n[{}]\nmanagement_ip = {}\n",
            pf1.name, pf1.ip, pf2.name, pf2.ip
        ),
    )
    .unwrap();
    std::fs::write(
        pf1.conf().join("switches.conf"),
        format!(
            "[default]\nregistrationVlan = 2\n\n[127.0.0.1]\nradiusSecret = {CLUSTER_SECRET}\n"
        ),
    )
    .unwrap();
    pf1.start();
    let status = text(&pf1.cli(&["cluster", "status"]));
    let fp = status
        .lines()
        .find_map(|l| l.strip_prefix("cluster CA fingerprint: "))
        .unwrap_or_else(|| panic!("{status}"))
        .trim()
        .to_string();
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
        &fp,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    pf2.start();

    // The device talks to both servers (switches fail over); each keeps its own records.
    let _ = radclient_burst_to(&pf1.ip, port, CLUSTER_SECRET, &burst(A, 1, 30));
    let _ = radclient_burst_to(&pf2.ip, port, CLUSTER_SECRET, &burst(A, 31, 20));
    let audit = |from: &Member| {
        let out = from.cli(&["audit", A, "--limit", "1000", "--json"]);
        let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            out.status.success(),
            records,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mut merged = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (ok, records, err) = audit(&pf2);
        assert!(ok, "{err}");
        if records.len() == 50 {
            merged = Some(records);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let merged = merged.expect("50 records from the two servers");
    // Merged by time, each named after the server that answered the request.
    let times: Vec<i64> = merged
        .iter()
        .map(|r| r["time_us"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let from = |server: &str| {
        let mut ports: Vec<u32> = merged
            .iter()
            .filter(|r| r["server"] == server)
            .map(|r| r["nas_port"].as_str().unwrap().parse().unwrap())
            .collect();
        ports.sort_unstable();
        ports
    };
    assert_eq!(from(&pf1.name), (1..=30).collect::<Vec<u32>>());
    assert_eq!(from(&pf2.name), (31..=50).collect::<Vec<u32>>());
    // The same from the other member.
    assert_eq!(audit(&pf1).1.len(), 50);

    // A member down: the others' records, its name on stderr, exit code 1.
    pf1.stop();
    let (ok, records, err) = audit(&pf2);
    assert!(!ok);
    assert_eq!(records.len(), 20);
    assert!(
        err.contains(&format!(
            "warning: {} did not answer, its records are missing",
            pf1.name
        )),
        "{err}"
    );
}

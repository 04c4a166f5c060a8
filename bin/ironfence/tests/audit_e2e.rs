//! The RADIUS audit log end to end: a burst of radclient requests, then `ironfence audit`
//! shows every one of them — while the daemon runs, after a graceful restart and after a
//! crash (SIGKILL).

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

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
    let mut child = Command::new("radclient")
        .args(["-q", "-s", "-r", "3", "-t", "3", "-p", "32"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["auth", SECRET])
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

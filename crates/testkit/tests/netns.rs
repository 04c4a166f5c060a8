//! The netns lab: connectivity, partition/heal, process handling and cleanup (also on panic).
//!
//! Needs root, `iproute2` and `iputils-ping`; without them these tests FAIL with the reason
//! (they are never skipped silently).

use ironfence_testkit::netns::{Lab, require_lab};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn lab(n: usize) -> Lab {
    if let Err(e) = require_lab() {
        panic!("this test needs the netns lab: {e:#}");
    }
    let t = Instant::now();
    let lab = Lab::new(n).expect("Lab::new");
    println!(
        "lab {} ({n} hosts, {}..) created in {:?}",
        lab.name(),
        lab.host_ip(0),
        t.elapsed()
    );
    lab
}

fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn lab_namespaces(lab: &Lab) -> Vec<String> {
    let mut v: Vec<String> = (0..lab.len()).map(|i| lab.ns(i).to_string()).collect();
    v.push(lab.switch_ns().to_string());
    v
}

fn assert_gone(namespaces: &[String], dir: &Path, pids: &[u32]) {
    let list = netns_list();
    for ns in namespaces {
        assert!(!list.contains(ns), "namespace {ns} still exists: {list:?}");
    }
    assert!(!dir.exists(), "{} still exists", dir.display());
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
    }
}

/// Pings `to` from every host in `from` and checks the outcome.
fn check(lab: &Lab, from: usize, to: usize, expect: bool) {
    let ok = lab.ping(from, lab.host_ip(to)).expect("ping");
    assert_eq!(
        ok,
        expect,
        "ping host {from} -> host {to} ({}): expected {}",
        lab.host_ip(to),
        if expect { "reply" } else { "no reply" }
    );
}

#[test]
fn three_hosts_talk_partition_and_heal() {
    let lab = lab(3);
    assert_eq!(lab.switch_ip().octets()[3], 1);
    assert_eq!(lab.host_ip(2).octets()[3], 13);
    assert_eq!(lab.vip(0).octets()[3], 100);
    for i in 0..3 {
        assert!(lab.ns(i).len() <= 15, "{}", lab.ns(i));
    }

    // Inside a host: lo up, ip_nonlocal_bind = 1, no default route.
    let out = lab
        .command(0, "cat")
        .arg("/proc/sys/net/ipv4/ip_nonlocal_bind")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let out = lab
        .command(1, "ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    assert!(lab.ping(1, "127.0.0.1".parse().unwrap()).unwrap(), "lo up");
    // The root namespace knows nothing of the lab's subnet.
    let out = Command::new("ip")
        .args(["-4", "addr", "show"])
        .output()
        .unwrap();
    let prefix = format!(
        "10.{}.{}.",
        lab.host_ip(0).octets()[1],
        lab.host_ip(0).octets()[2]
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&prefix));

    let t = Instant::now();
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                check(&lab, from, to, true);
            }
        }
        assert!(lab.ping(from, lab.switch_ip()).unwrap());
        assert!(lab.switch_ping(lab.host_ip(from)).unwrap());
    }
    println!("full mesh of pings: {:?}", t.elapsed());

    let t = Instant::now();
    lab.partition(1).unwrap();
    println!("partition(1): {:?}", t.elapsed());
    check(&lab, 1, 0, false);
    check(&lab, 1, 2, false);
    assert!(!lab.ping(1, lab.switch_ip()).unwrap());
    check(&lab, 0, 2, true);
    check(&lab, 2, 0, true);
    check(&lab, 0, 1, false);

    let t = Instant::now();
    lab.heal(1).unwrap();
    println!("heal(1): {:?}", t.elapsed());
    // Time until host 1 answers again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lab.ping(1, lab.host_ip(0)).unwrap() {
        assert!(Instant::now() < deadline, "host 1 unreachable after heal");
    }
    println!("heal(1) until reachable: {:?}", t.elapsed());
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                check(&lab, from, to, true);
            }
        }
    }

    let names = lab_namespaces(&lab);
    let dir = lab.dir().to_path_buf();
    let t = Instant::now();
    drop(lab);
    println!("drop (3 hosts, no processes): {:?}", t.elapsed());
    assert_gone(&names, &dir, &[]);
}

#[test]
fn processes_are_tracked_killed_and_cleaned_up() {
    let mut lab = lab(3);
    let mut sleep = Command::new("sleep");
    sleep.arg("1000");
    let h = lab.spawn(2, sleep, "sleeper").unwrap();
    assert_eq!(h.host, 2);
    assert!(lab.is_running(&h));
    // It really runs inside host 2's namespace.
    let ns_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    // `ip netns exec` enters the namespace and then execs the program: right after spawn
    // the PID may not be listed yet, so look for a little while.
    let in_ns = || {
        let out = Command::new("ip")
            .args(["netns", "pids", lab.ns(2)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|p| p == h.pid.to_string())
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !in_ns() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(in_ns(), "pid {} not in {}", h.pid, lab.ns(2));
    assert_ne!(ns_of(h.pid), ns_of(std::process::id()));

    let t = Instant::now();
    lab.kill9(&h);
    assert!(!lab.is_running(&h));
    println!("kill9 + reap: {:?}", t.elapsed());

    // A process that exits by itself turns into a zombie until reaped: is_running must say no.
    let mut quick = lab.command(0, "sh");
    quick.args(["-c", "echo hello from $0; echo oops >&2"]);
    let q = lab.spawn(0, quick, "quick").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.is_running(&q) {
        assert!(Instant::now() < deadline, "short process still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!Path::new(&format!("/proc/{}", q.pid)).exists(), "reaped");
    let log = lab.log("quick");
    assert!(
        log.contains("hello from sh") && log.contains("oops"),
        "{log:?}"
    );

    // stop(): SIGTERM + wait.
    let mut sleep = Command::new("sleep");
    sleep.arg("1000");
    let s = lab.spawn(1, sleep, "stoppable").unwrap();
    let t = Instant::now();
    assert!(lab.stop(&s, Duration::from_secs(5)));
    println!("stop (SIGTERM sleep): {:?}", t.elapsed());
    assert!(!lab.is_running(&s));

    // Spawn again and let the Lab clean up.
    let mut sleep = Command::new("sleep");
    sleep.arg("1000");
    let h2 = lab.spawn(2, sleep, "sleeper").unwrap();
    assert!(lab.is_running(&h2));
    // A process that ignores SIGTERM is SIGKILLed after the 5 s grace.
    let mut stubborn = Command::new("sh");
    stubborn.args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]);
    let h3 = lab.spawn(0, stubborn, "stubborn").unwrap();
    // Only once the trap is set (a SIGTERM before that would simply end it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lab.log("stubborn").contains("ready") {
        assert!(Instant::now() < deadline, "stubborn never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    let names = lab_namespaces(&lab);
    let dir: PathBuf = lab.dir().to_path_buf();
    let t = Instant::now();
    drop(lab);
    println!(
        "drop (3 hosts, 2 processes, one ignoring SIGTERM): {:?}",
        t.elapsed()
    );
    assert_gone(&names, &dir, &[h2.pid, h3.pid]);
}

#[test]
fn a_panicking_test_still_cleans_up() {
    require_lab().unwrap_or_else(|e| panic!("this test needs the netns lab: {e:#}"));
    let mut seen: Option<(Vec<String>, PathBuf, u32)> = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lab = Lab::new(2).expect("Lab::new");
        let mut sleep = Command::new("sleep");
        sleep.arg("1000");
        let h = lab.spawn(1, sleep, "sleeper").unwrap();
        seen = Some((lab_namespaces(&lab), lab.dir().to_path_buf(), h.pid));
        assert!(netns_list().contains(&lab.ns(0).to_string()));
        panic!("deliberate panic inside a lab test");
    }));
    assert!(r.is_err());
    let (names, dir, pid) = seen.expect("the lab was built");
    assert_gone(&names, &dir, &[pid]);
}

#[test]
fn labs_get_distinct_names_and_subnets() {
    let a = lab(1);
    let b = lab(1);
    assert_ne!(a.ns(0), b.ns(0));
    assert_ne!(a.switch_ns(), b.switch_ns());
    assert_ne!(a.host_ip(0), b.host_ip(0));
    // Wrapping a command meant for another host is refused.
    let mut a2 = lab(2);
    let wrong = a2.command(0, "true");
    assert!(a2.spawn(1, wrong, "wrong").is_err());
}

#[test]
fn segments_and_devices_reach_only_what_is_plugged_in_and_are_cleaned_up() {
    let mut lab = lab(2);
    let reg = lab.add_segment().unwrap();
    assert_eq!(
        (reg.bridge(), reg.ip(5)),
        ("br1".to_string(), "192.168.2.5".parse().unwrap())
    );
    lab.attach(0, &reg, "eth1.2", Some(5)).unwrap();
    let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
    let d = lab.add_device(&reg, mac).unwrap();
    let link = lab
        .device_command(d, "ip")
        .args(["-o", "link", "show", "eth0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("02:00:5e:10:00:01"),
        "{}",
        String::from_utf8_lossy(&link.stdout)
    );
    let run = |c: &mut Command| c.status().unwrap().success();
    assert!(run(lab.device_command(d, "ip").args([
        "addr",
        "add",
        "192.168.2.50/24",
        "dev",
        "eth0"
    ])));
    let ping = |lab: &Lab, to: &str| {
        run(lab
            .device_command(d, "ping")
            .args(["-n", "-q", "-c1", "-W1", to])
            .stdout(std::process::Stdio::null()))
    };
    assert!(ping(&lab, "192.168.2.5"), "device → host 0 on the segment");
    // Host 1 is not on the segment: give it the address the device pings, on its eth0.
    assert!(run(lab.command(1, "ip").args([
        "addr",
        "add",
        "192.168.2.6/24",
        "dev",
        "eth0"
    ])));
    assert!(
        !ping(&lab, "192.168.2.6"),
        "host 1 is not plugged into the segment"
    );

    let mut sleep = Command::new("sleep");
    sleep.arg("1000");
    let h = lab.spawn_device(d, sleep, "device-sleeper").unwrap();
    assert!(lab.is_running(&h));
    let mut names = lab_namespaces(&lab);
    names.push(lab.device_ns(d).to_string());
    let dir = lab.dir().to_path_buf();
    drop(lab);
    assert_gone(&names, &dir, &[h.pid]);
}

/// Entry point of the child process of the next test (not a test by itself).
#[test]
#[ignore]
fn child_holding_a_lab_with_a_device() {
    if std::env::var_os("IRONFENCE_NETNS_CHILD").is_none() {
        return;
    }
    let mut lab = Lab::new(1).unwrap();
    let seg = lab.add_segment().unwrap();
    let d = lab.add_device(&seg, [2, 0, 0, 0, 0, 9]).unwrap();
    let mut sleep = Command::new("sleep");
    sleep.arg("1000");
    let h = lab.spawn_device(d, sleep, "sleeper").unwrap();
    println!(
        "LAB {} {} {} {} {}",
        lab.ns(0),
        lab.switch_ns(),
        lab.device_ns(d),
        lab.dir().display(),
        h.pid
    );
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_killed_test_process_leaves_no_namespace_device_or_process_behind() {
    require_lab().unwrap_or_else(|e| panic!("this test needs the netns lab: {e:#}"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holding_a_lab_with_a_device",
            "--ignored",
            "--nocapture",
        ])
        .env("IRONFENCE_NETNS_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("LAB ")))
        .expect("the child printed its lab");
    let f: Vec<&str> = line.split_whitespace().collect();
    let names: Vec<String> = f[1..4].iter().map(|s| s.to_string()).collect();
    let (dir, pid) = (PathBuf::from(f[4]), f[5].parse::<u32>().unwrap());
    assert!(netns_list().contains(&names[2]), "device namespace exists");
    child.kill().unwrap();
    child.wait().unwrap();
    // The watchdog polls once a second, then TERM, 2 s, KILL, delete.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && (names.iter().any(|n| netns_list().contains(n)) || dir.exists())
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_gone(&names, &dir, &[pid]);
}

#[test]
fn a_socket_made_in_a_namespace_serves_there_from_the_test_process() {
    let lab = lab(1);
    let sw = lab.switch_ip();
    // The switch address exists only inside the lab: binding it here fails, in there works.
    assert!(std::net::UdpSocket::bind((sw, 0)).is_err());
    let sock = lab
        .in_namespace(lab.switch_ns(), move || std::net::UdpSocket::bind((sw, 0)))
        .unwrap()
        .expect("bind inside the switch namespace");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let sent = lab
        .command(0, "bash")
        .args(["-c", &format!("echo hello > /dev/udp/{sw}/{port}")])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut buf = [0u8; 64];
    let (n, from) = sock.recv_from(&mut buf).expect("datagram from host 0");
    assert_eq!(
        (&buf[..n], from.ip()),
        (&b"hello\n"[..], std::net::IpAddr::V4(lab.host_ip(0)))
    );
    assert!(lab.in_namespace("not-ours", || ()).is_err());
}

//! The registration network's DHCP server end to end (issue 10), in network namespaces.
//!
//! * `dhclient_gets_a_lease_with_router_dns_and_option_114`: one server (SQLite) on the
//!   guide's registration network (segment 1, 192.168.2.0/24, interface eth1.2); a "device"
//!   namespace runs the real ISC `dhclient` (its own pid/lease files in the lab's directory, a
//!   script that records what it got and configures the address inside the device only). The
//!   device gets an address of the pool with router, DNS = the service address and option 114
//!   (the captive-portal API); it renews (unicast to the server identifier); the lease and
//!   ip4log are in the database; malformed datagrams are dropped and counted.
//! * `two_servers_on_galera_never_share_an_address` lives in dhcp_galera.rs.

use ironfence_testkit::netns::{Lab, ProcHandle, Segment, require_lab};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ironfence");
/// TEST FIXTURE secret, only for this test.
const SECRET: &str = "dhcp-e2e-test-fixture-secret-0123456789";
const DEVICE_MAC: [u8; 6] = [0x02, 0x71, 0x00, 0x00, 0x00, 0x01];

fn eventually(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    logs: impl Fn() -> String,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {timeout:?} waiting for: {what}\n{}",
        logs()
    );
}

/// The value of one metric line (`name{labels} value`) on the daemon's /metrics.
fn metric(lab: &Lab, host: usize, addr: &str, line_prefix: &str) -> Option<f64> {
    let out = lab
        .command(host, "curl")
        .args(["-s", "-m", "3"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 (Debian package sqlite3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `key=value` pairs of the last `reason=<reason>` block the dhclient script recorded.
fn event(events: &str, reason: &str) -> Option<std::collections::HashMap<String, String>> {
    events
        .split("----\n")
        .filter(|b| b.lines().next() == Some(&format!("reason={reason}")))
        .last()
        .map(|b| {
            b.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
}

#[test]
fn dhclient_gets_a_lease_with_router_dns_and_option_114() {
    require_lab().expect("network namespaces (root, iproute2, iputils-ping)");
    assert!(
        Path::new("/usr/sbin/dhclient").exists() || Path::new("/sbin/dhclient").exists(),
        "dhclient missing: apt-get install isc-dhcp-client"
    );
    let mut lab = Lab::new(1).expect("lab");
    let seg = lab.add_segment().expect("segment");
    let server_ip = seg.ip(5);
    let mgmt = lab.host_ip(0);
    let (root, _server) = start_server(
        &mut lab,
        &seg,
        &format!("{server_ip}/24"),
        "[192.168.2.0]\ntype = vlan-registration\nnetmask = 255.255.255.0\n\
         dhcp_start = 192.168.2.10\ndhcp_end = 192.168.2.250\n\
         dhcp_default_lease_time = 30\ndhcp_max_lease_time = 30\ndomain-name = registration.lab\n",
    );

    // Malformed datagrams from the segment (six kinds), then nothing else from there.
    let bridge = seg.bridge();
    let report = lab
        .in_namespace(lab.switch_ns(), move || {
            ironfence_loadgen::dhcp::run(&ironfence_loadgen::dhcp::DhcpConfig {
                interface: bridge,
                clients: 0,
                concurrency: 1,
                first: 0,
                timeout: Duration::from_secs(1),
                tries: 1,
                malformed: 6,
                server_port: 67,
                client_port: 68,
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(report.malformed_sent, 6);
    let metrics = format!("{mgmt}:9101");
    for reason in [
        "too_short",
        "no_magic_cookie",
        "not_ethernet",
        "truncated_option",
        "bad_option_length",
        "no_message_type",
    ] {
        let line = format!("ironfence_dhcp_dropped_total{{reason=\"{reason}\"}}");
        eventually(
            &format!("{reason} counted"),
            Duration::from_secs(5),
            || metric(&lab, 0, &metrics, &line) == Some(1.0),
            || lab.log("serve"),
        );
    }

    // The device and its real DHCP client.
    let dev = lab.add_device(&seg, DEVICE_MAC).unwrap();
    let dir = lab.dir().join("dhclient");
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.log");
    let script = dir.join("script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ echo \"reason=$reason\"; echo \"ip=$new_ip_address\"; echo \"mask=$new_subnet_mask\"; \
             echo \"routers=$new_routers\"; echo \"dns=$new_domain_name_servers\"; echo \"domain=$new_domain_name\"; \
             echo \"url=$new_default_url\"; echo \"lease=$new_dhcp_lease_time\"; echo \"server=$new_dhcp_server_identifier\"; \
             echo ----; }} >> {events}\n\
             case \"$reason\" in BOUND|RENEW|REBIND|REBOOT) ip addr replace \"$new_ip_address/24\" dev \"$interface\";; esac\n\
             exit 0\n",
            events = events.display()
        ),
    )
    .unwrap();
    let _ = Command::new("chmod").arg("755").arg(&script).status();
    std::fs::write(
        dir.join("dhclient.conf"),
        "request subnet-mask, routers, domain-name-servers, domain-name, default-url;\n",
    )
    .unwrap();
    let mut dhclient = Command::new("dhclient");
    dhclient
        .args(["-4", "-d", "-v"])
        .arg("-cf")
        .arg(dir.join("dhclient.conf"))
        .arg("-sf")
        .arg(&script)
        .arg("-pf")
        .arg(dir.join("dhclient.pid"))
        .arg("-lf")
        .arg(dir.join("dhclient.leases"))
        .arg("eth0");
    let _client = lab.spawn_device(dev, dhclient, "dhclient").unwrap();
    let logs = || {
        format!(
            "---- serve ----\n{}\n---- dhclient ----\n{}",
            lab.log("serve"),
            lab.log("dhclient")
        )
    };
    let read_events = || std::fs::read_to_string(&events).unwrap_or_default();
    eventually(
        "dhclient BOUND",
        Duration::from_secs(30),
        || event(&read_events(), "BOUND").is_some(),
        logs,
    );
    let bound = event(&read_events(), "BOUND").unwrap();
    let ip: Ipv4Addr = bound["ip"].parse().unwrap();
    assert!(
        (seg.ip(10)..=seg.ip(250)).contains(&ip),
        "address {ip} outside the pool"
    );
    assert_eq!(bound["mask"], "255.255.255.0");
    assert_eq!(
        bound["routers"],
        server_ip.to_string(),
        "router = service address"
    );
    assert_eq!(bound["dns"], server_ip.to_string(), "DNS = service address");
    assert_eq!(bound["server"], server_ip.to_string());
    assert_eq!(bound["domain"], "registration.lab");
    assert_eq!(bound["lease"], "30");
    assert_eq!(
        bound["url"],
        format!("http://{server_ip}/captive-portal/api"),
        "option 114 (RFC 8910)"
    );

    // The lease and the IP log in the database.
    let db = root.join("state/ironfence.db");
    let mac = "02:71:00:00:00:01";
    assert_eq!(
        sqlite(
            &db,
            "SELECT ip || ' ' || mac || ' ' || state FROM dhcp_lease"
        ),
        format!("{ip} {mac} bound")
    );
    assert_eq!(
        sqlite(
            &db,
            &format!("SELECT mac FROM ip4log WHERE ip = '{ip}' AND end_time IS NULL")
        ),
        mac
    );

    // T1 = 15 s: the renewal is a unicast to the server identifier, and is acknowledged.
    eventually(
        "dhclient RENEW",
        Duration::from_secs(30),
        || event(&read_events(), "RENEW").is_some(),
        logs,
    );
    let renewed = event(&read_events(), "RENEW").unwrap();
    assert_eq!(renewed["ip"], ip.to_string(), "the same address");
    let acks = metric(
        &lab,
        0,
        &metrics,
        "ironfence_dhcp_replies_total{type=\"ack\"}",
    )
    .unwrap_or(0.0);
    assert!(acks >= 2.0, "ACK of the REQUEST and of the renewal: {acks}");
    let expires: i64 = sqlite(&db, "SELECT expires_at - updated_at FROM dhcp_lease")
        .parse()
        .unwrap();
    assert_eq!(expires, 30, "the renewal extended the lease");
}

/// One server (SQLite) in host 0, on `seg` as eth1.2 with `addr` (`ip/prefix`), networks.conf
/// `networks`; waits until it listens. Returns its installation root.
fn start_server(
    lab: &mut Lab,
    seg: &Segment,
    addr: &str,
    networks: &str,
) -> (std::path::PathBuf, ProcHandle) {
    lab.attach(0, seg, "eth1.2", None).expect("attach");
    let o = lab
        .command(0, "ip")
        .args(["addr", "add", addr, "dev", "eth1.2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ip, prefix) = addr.split_once('/').unwrap();
    let mask = Ipv4Addr::from(u32::MAX << (32 - prefix.parse::<u32>().unwrap()));
    let mgmt = lab.host_ip(0);
    let root = lab.dir().join("pf1");
    let conf = root.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n[database]\ntype = sqlite\npath = ironfence.db\n\n\
             [radius]\nlisten = {mgmt}\nauth_port = 1812\nacct_port = 1813\n\n\
             [metrics]\nlisten = {mgmt}:9101\n\n\
             [interface eth0]\nip = {mgmt}\nmask = 255.255.255.0\ntype = management\n\n\
             [interface eth1.2]\nip = {ip}\nmask = {mask}\ntype = internal\nenforcement = vlan\n"
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        format!(
            "[default]\nregistrationVlan = 2\n\n[{}]\nradiusSecret = {SECRET}\n",
            lab.switch_ip()
        ),
    )
    .unwrap();
    std::fs::write(conf.join("networks.conf"), networks).unwrap();
    let _ = Command::new("chmod")
        .arg("640")
        .arg(conf.join("pf.conf"))
        .arg(conf.join("switches.conf"))
        .status();
    let mut serve = lab.command(0, BIN);
    serve
        .env("RUST_LOG", "info")
        .arg("--conf-dir")
        .arg(&conf)
        .arg("serve");
    let handle = lab.spawn(0, serve, "serve").unwrap();
    eventually(
        "DHCP listening and ironfence ready",
        Duration::from_secs(30),
        || {
            let l = lab.log("serve");
            l.contains("DHCP listening") && l.contains("ironfence ready")
        },
        || lab.log("serve"),
    );
    (root, handle)
}

/// Benchmark (bench/dhcp.sh): DORA/s of one server on SQLite. Printed, not asserted; every
/// client must be bound once, without duplicates.
#[test]
#[ignore = "benchmark: bench/dhcp.sh runs it"]
fn bench_dora_one_server_sqlite() {
    require_lab().expect("network namespaces (root, iproute2, iputils-ping)");
    let clients: u32 = std::env::var("IRONFENCE_BENCH_DHCP_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    let mut lab = Lab::new(1).expect("lab");
    let seg = lab.add_segment().expect("segment");
    let (_, server) = start_server(
        &mut lab,
        &seg,
        "172.16.64.1/21",
        "[172.16.64.0]\ntype = vlan-registration\nnetmask = 255.255.248.0\n\
         dhcp_start = 172.16.64.20\ndhcp_end = 172.16.71.250\n",
    );
    let bridge = seg.bridge();
    let ours = generate(&lab, &bridge, 0, clients);
    println!("BENCH sqlite-1-server {}", ours.line());
    assert_eq!(
        (
            ours.bound,
            ours.duplicate_addresses,
            ours.inconsistent_clients
        ),
        (clients, 0, 0),
        "{}",
        lab.log("serve")
    );
    perfdhcp(&mut lab, &bridge, clients, "ironfence");

    // Same-run baseline: Kea's DHCPv4 server (memfile) on the same interface and pool.
    assert!(lab.stop(&server, Duration::from_secs(10)));
    if Path::new("/usr/sbin/kea-dhcp4").exists() {
        let dir = lab.dir().join("kea");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("kea-dhcp4.json");
        std::fs::write(
            &conf,
            format!(
                r#"{{"Dhcp4": {{
  "interfaces-config": {{"interfaces": ["eth1.2"], "dhcp-socket-type": "raw"}},
  "lease-database": {{"type": "memfile", "persist": true, "name": "{}/leases4.csv", "lfc-interval": 0}},
  "valid-lifetime": 30,
  "subnet4": [{{"subnet": "172.16.64.0/21", "id": 1,
    "pools": [{{"pool": "172.16.64.20 - 172.16.71.250"}}],
    "option-data": [{{"name": "routers", "data": "172.16.64.1"}},
                    {{"name": "domain-name-servers", "data": "172.16.64.1"}}]}}],
  "loggers": [{{"name": "kea-dhcp4", "output_options": [{{"output": "stdout"}}], "severity": "INFO"}}]
}}}}"#,
                dir.display()
            ),
        )
        .unwrap();
        let mut kea = Command::new("kea-dhcp4");
        kea.env("KEA_PIDFILE_DIR", &dir)
            .env("KEA_LOCKFILE_DIR", &dir)
            .arg("-c")
            .arg(&conf);
        lab.spawn(0, kea, "kea").unwrap();
        eventually(
            "kea-dhcp4 started",
            Duration::from_secs(20),
            || lab.log("kea").contains("DHCP4_STARTED"),
            || lab.log("kea"),
        );
        let kea_run = generate(&lab, &bridge, 0, clients);
        println!("BENCH kea-memfile-1-server {}", kea_run.line());
        assert_eq!(kea_run.duplicate_addresses, 0);
        perfdhcp(&mut lab, &bridge, clients, "kea-memfile");
    } else {
        println!(
            "BENCH kea: kea-dhcp4 not installed (apt-get install kea-dhcp4-server): no baseline"
        );
    }
}

fn generate(
    lab: &Lab,
    bridge: &str,
    first: u32,
    clients: u32,
) -> ironfence_loadgen::dhcp::DhcpReport {
    let bridge = bridge.to_string();
    lab.in_namespace(lab.switch_ns(), move || {
        ironfence_loadgen::dhcp::run(&ironfence_loadgen::dhcp::DhcpConfig {
            interface: bridge,
            clients,
            concurrency: 64,
            first,
            timeout: Duration::from_secs(1),
            tries: 6,
            malformed: 0,
            server_port: 67,
            client_port: 68,
        })
    })
    .unwrap()
    .unwrap()
}

/// Kea's perfdhcp (Debian kea-admin) against whatever answers on the segment, if installed:
/// its summary lines are printed as `BENCH perfdhcp <label> …`.
fn perfdhcp(lab: &mut Lab, bridge: &str, clients: u32, label: &str) {
    if !Path::new("/usr/sbin/perfdhcp").exists() {
        println!("BENCH perfdhcp {label}: perfdhcp not installed (apt-get install kea-admin)");
        return;
    }
    // The bridge needs an address for perfdhcp's socket; outside the pool.
    let _ = lab
        .switch_command("ip")
        .args(["addr", "replace", "172.16.71.254/21", "dev", bridge])
        .output();
    let out = lab
        .switch_command("perfdhcp")
        .args([
            "-4", "-l", bridge, "-r", "4000", "-p", "10", "-W", "1000000",
        ])
        .arg("-R")
        .arg(clients.to_string())
        .arg("-n")
        .arg(clients.to_string())
        .args(["-b", "mac=02:99:00:00:00:00"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for l in text.lines().filter(|l| {
        let l = l.trim();
        l.starts_with("Rate:")
            || l.starts_with("sent packets")
            || l.starts_with("received packets")
            || l.starts_with("drops")
            || l.contains("rror")
    }) {
        println!("BENCH perfdhcp {label} {}", l.trim());
    }
}

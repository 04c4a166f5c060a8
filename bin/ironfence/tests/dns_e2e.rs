//! The registration network's DNS responder, for real (issue 10): `ironfence serve` in a
//! network namespace with the guide's registration interface eth1.2; a "device" namespace on
//! that network runs the real `dig` (Debian dnsutils); a real resolver (Debian dnsmasq, own
//! configuration only: `--conf-file=/dev/null --no-resolv`) runs in a third namespace and
//! holds the pass-through domains.
//!
//! ```text
//!   device d0 ── 192.168.2.50 ──┐ segment 1 (eth1.2, 192.168.2.0/24)
//!                               └── eth1.2 192.168.2.5  host 0: ironfence serve
//!                                   eth0   10.a.b.11  ──┐ lab bridge
//!                                   eth0   10.a.b.12  ──┘ host 1: dnsmasq (the resolver)
//! ```
//!
//! - any name → A = the portal address (the interface's own address on a single server),
//!   TTL 15; AAAA → NOERROR with no answer and a SOA (NODATA); MX → NODATA; STATUS → NOTIMP;
//! - pass-through names (exact and `*.` wildcard) → the resolver's answers; a name next to
//!   them → the portal;
//! - an answer too big for UDP → TC, and dig's retry over TCP gets the whole answer (TCP to
//!   us, TCP to the resolver); plain names over TCP too;
//! - malformed datagrams (cut header, compression loop) → no answer, counted by reason in
//!   `/metrics`;
//! - the resolver gone → SERVFAIL after `upstream_timeout`, counted.
//!
//! Every process is started by the lab and killed by its PID when the lab drops.

use ironfence_testkit::netns::{Lab, require_lab};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// TEST FIXTURE secret, only for this test.
const SECRET: &str = "dns-e2e-test-fixture-secret-0123456789";
const SERVER: &str = "192.168.2.5";
const DEVICE: &str = "192.168.2.50";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}

struct Net {
    lab: Lab,
    dnsmasq: ironfence_testkit::netns::ProcHandle,
}

impl Net {
    /// `dig @SERVER <args>` from the device.
    fn dig(&self, args: &[&str]) -> String {
        let o = self
            .lab
            .device_command(0, "dig")
            .arg(format!("@{SERVER}"))
            .args(["+time=3", "+tries=1"])
            .args(args)
            .output()
            .expect("dig (apt-get install dnsutils)");
        text(&o)
    }

    fn metrics(&self) -> String {
        let o = self
            .lab
            .command(0, "curl")
            .args(["-s", "-m", "3", "http://127.0.0.1:9101/metrics"])
            .output()
            .expect("curl");
        text(&o)
    }

    fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends raw bytes from the device to the server's port 53 (bash's /dev/udp).
    fn send_raw(&self, printf_escapes: &str) {
        let o = self
            .lab
            .device_command(0, "bash")
            .args([
                "-c",
                &format!("printf '{printf_escapes}' > /dev/udp/{SERVER}/53"),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
}

fn run(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", text(&o));
}

fn bring_up() -> Net {
    require_lab().expect("netns lab");
    let mut lab = Lab::new(2).expect("lab");
    let seg = lab.add_segment().unwrap();
    lab.attach(0, &seg, "eth1.2", Some(5)).unwrap();
    lab.add_device(&seg, [0x02, 0, 0, 0, 0, 0x50]).unwrap();
    run(lab
        .device_command(0, "ip")
        .args(["addr", "add", &format!("{DEVICE}/24"), "dev", "eth0"]));

    let resolver = lab.host_ip(1);
    let big: Vec<String> = (b'a'..=b'c')
        .map(|c| format!("\"{}\"", (c as char).to_string().repeat(200)))
        .collect();
    let mut dnsmasq = lab.command(1, "dnsmasq");
    dnsmasq.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--pid-file=",
        "--log-queries",
        "--log-facility=-",
        &format!("--listen-address={resolver}"),
        "--address=/allowed.example/192.0.2.10",
        "--address=/wild.example/192.0.2.20",
        &format!("--txt-record=big.example,{}", big.join(",")),
    ]);
    let dnsmasq = lab.spawn(1, dnsmasq, "dnsmasq").unwrap();

    let conf = lab.dir().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n[database]\ntype = sqlite\n\n\
             [interface eth0]\nip = {}\nmask = 255.255.255.0\ntype = management\n\n\
             [interface eth1.2]\nip = {SERVER}\nmask = 255.255.255.0\ntype = internal\nenforcement = vlan\n\n\
             [fencing]\npassthrough = enabled\npassthroughs = allowed.example, *.wild.example, big.example\n\
             passthrough_resolvers = {resolver}\n\n\
             [dns]\nttl = 15s\nupstream_timeout = 1s\n",
            lab.host_ip(0)
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        format!("[127.0.0.1]\nradiusSecret = {SECRET}\nregistrationVlan = 2\n"),
    )
    .unwrap();
    let mut serve = lab.command(0, env!("CARGO_BIN_EXE_ironfence"));
    serve
        .env("RUST_LOG", "info")
        .arg("--conf-dir")
        .arg(&conf)
        .arg("serve");
    lab.spawn(0, serve, "ironfence").unwrap();
    let net = Net { lab, dnsmasq };
    eventually("the responder answers", || {
        net.dig(&["+short", "ready.test"]).trim() == SERVER
    });
    eventually("dnsmasq answers", || {
        let o = net
            .lab
            .command(0, "dig")
            .args([
                &format!("@{resolver}"),
                "+short",
                "+time=1",
                "+tries=1",
                "allowed.example",
            ])
            .output()
            .unwrap();
        text(&o).trim() == "192.0.2.10"
    });
    net
}

#[test]
fn dig_on_the_registration_network_gets_the_portal_and_the_pass_through_names() {
    let mut net = bring_up();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checks(&mut net)));
    if result.is_err() {
        eprintln!("---- ironfence ----\n{}", net.lab.log("ironfence"));
        eprintln!("---- dnsmasq ----\n{}", net.lab.log("dnsmasq"));
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn checks(net: &mut Net) {
    // Any name → the portal, TTL 15, authoritative.
    for name in [
        "www.apple.com",
        "connectivitycheck.gstatic.com",
        "Captive.Example",
    ] {
        let out = net.dig(&["+noall", "+answer", name, "A"]);
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields.get(1), Some(&"15"), "TTL 15 for {name}: {out}");
        assert_eq!(fields.get(3), Some(&"A"), "{out}");
        assert_eq!(fields.get(4), Some(&SERVER), "{name}: {out}");
    }
    let out = net.dig(&["www.example.net"]);
    assert!(
        out.contains("status: NOERROR") && out.contains(" aa "),
        "{out}"
    );

    // AAAA (and MX) → NODATA with a SOA, so dual-stack devices fall back to IPv4.
    for qtype in ["AAAA", "MX"] {
        let out = net.dig(&["www.apple.com", qtype]);
        assert!(out.contains("status: NOERROR"), "{qtype}: {out}");
        assert!(out.contains("ANSWER: 0, AUTHORITY: 1"), "{qtype}: {out}");
        assert!(out.contains("SOA"), "{qtype}: {out}");
    }
    let out = net.dig(&["+opcode=2", "www.apple.com"]);
    assert!(out.contains("status: NOTIMP"), "{out}");

    // Pass-through names: the real resolver's answers.
    assert_eq!(net.dig(&["+short", "allowed.example"]).trim(), "192.0.2.10");
    assert_eq!(net.dig(&["+short", "ALLOWED.example"]).trim(), "192.0.2.10");
    assert_eq!(
        net.dig(&["+short", "a.b.wild.example"]).trim(),
        "192.0.2.20"
    );
    assert_eq!(net.dig(&["+short", "wild.example"]).trim(), "192.0.2.20");
    assert_eq!(
        net.dig(&["+short", "www.allowed.example"]).trim(),
        SERVER,
        "exact only"
    );
    assert_eq!(net.dig(&["+short", "notwild.example"]).trim(), SERVER);
    assert!(net.metric("ironfence_dns_relayed_total") >= 4.0);

    // Over TCP: our own answers and the pass-through ones.
    assert_eq!(net.dig(&["+tcp", "+short", "tcp.test"]).trim(), SERVER);
    assert_eq!(
        net.dig(&["+tcp", "+short", "allowed.example"]).trim(),
        "192.0.2.10"
    );

    // Too big for 512 octets: relayed truncated (TC), dig retries over TCP and gets it whole.
    let out = net.dig(&["+noedns", "+ignore", "big.example", "TXT"]);
    assert!(out.contains(" tc "), "truncated over UDP: {out}");
    let out = net.dig(&["+noedns", "big.example", "TXT"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    for c in ['a', 'b', 'c'] {
        assert!(
            out.contains(&c.to_string().repeat(200)),
            "whole answer over TCP: {out}"
        );
    }
    assert!(net.metric("ironfence_dns_queries_total{transport=\"tcp\"}") >= 3.0);

    // Malformed: no answer, counted by reason.
    net.send_raw("\\x12\\x34\\x01");
    net.send_raw("\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\xc0\\x0c\\x00\\x01\\x00\\x01");
    eventually("malformed datagrams counted", || {
        net.metric("ironfence_dns_dropped_total{reason=\"truncated\"}") >= 1.0
            && net.metric("ironfence_dns_dropped_total{reason=\"bad_pointer\"}") >= 1.0
    });
    // The responder still answers after them.
    assert_eq!(net.dig(&["+short", "after.test"]).trim(), SERVER);
    assert!(net.metric("ironfence_dns_answered_total{kind=\"portal\"}") >= 5.0);

    // The resolver gone: SERVFAIL after upstream_timeout (1 s), counted.
    let dnsmasq = net.dnsmasq.clone();
    assert!(net.lab.stop(&dnsmasq, Duration::from_secs(5)));
    let out = net.dig(&["allowed.example"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
    assert!(net.metric("ironfence_dns_upstream_timeouts_total") >= 1.0);
    // Everything else is unaffected.
    assert_eq!(net.dig(&["+short", "still.test"]).trim(), SERVER);
}

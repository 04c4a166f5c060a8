//! The RADIUS load balancer in a three-host namespace lab (real Galera, real radclient): the
//! management VIP is put on pf1 by hand (`ip addr add`, no keepalived here: the HA helper owns
//! that), every server binds it with IP_FREEBIND and balances; the switch namespace sends
//! through the VIP.
//!
//! Which backend handled a request is read from pf1's (the front's) metrics,
//! `ironfence_lb_backend_requests_total{backend, outcome}` (`local` for pf1 itself,
//! `answered` for a peer), and compared with the ranking `ironfence_lb::rank` computes: the
//! balancer must follow it exactly, so a conversation always lands on one backend.

#[path = "common/galera_lab.rs"]
mod galera_lab;

use galera_lab::{Fixture, GaleraLab, eventually, name, ok, text};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

/// TEST FIXTURE secrets, only for this test.
const WS_USER: &str = "ws-lb-e2e";
const SECRET: &str = "radius-lb-e2e-test-fixture-secret-01";
const FIXTURE: Fixture = Fixture {
    ws_user: WS_USER,
    ws_pass: "ws-lb-e2e-test-fixture-password-0123",
    db_pass: "db-lb-e2e-test-fixture-password-0123",
    sst_pass: "sst-lb-e2e-test-fixture-password-0123",
    secret: SECRET,
    vrrp_pass: "lb-e2e-vrrp-fixture",
};

fn names() -> Vec<String> {
    (0..3).map(name).collect()
}

/// Index of the backend `ironfence_lb` ranks `rank` for a request with this
/// Calling-Station-Id and User-Name.
fn ranked(mac: &str, user: Option<&str>, rank: usize) -> usize {
    let k = ironfence_lb::key(Some(mac.as_bytes()), user.map(str::as_bytes));
    ironfence_lb::rank(&names(), &k)[rank]
}

/// `n` MACs (from `base`) whose first backend is `backend` (MAB: User-Name = MAC).
fn macs_for(backend: usize, base: u8, n: usize) -> Vec<String> {
    (0..=255u8)
        .map(|i| format!("02:00:00:00:{base:02x}:{i:02x}"))
        .filter(|m| ranked(m, Some(m), 0) == backend)
        .take(n)
        .collect()
}

struct Lb {
    g: GaleraLab,
    vip: Ipv4Addr,
}

impl Lb {
    fn up() -> Lb {
        let mut g = GaleraLab::new(3, FIXTURE);
        let vip = g.lab.vip(0);
        g.bring_up(|_, _| {});
        // The VIP on pf1 (what keepalived would do); the servers bound it already.
        let out = g
            .lab
            .command(0, "ip")
            .args(["addr", "add", &format!("{vip}/32"), "dev", "eth0"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lb = Lb { g, vip };
        // pf1 probed pf2 and pf3 while they were starting (dead): three answers revive them.
        eventually(
            "pf1 sees pf2 and pf3 alive",
            Duration::from_secs(10),
            || lb.state(1) == 0.0 && lb.state(2) == 0.0,
            || lb.logs(),
        );
        lb
    }

    /// pf1's metrics (the front server).
    fn metrics(&self) -> String {
        let url = format!("http://{}:9101/metrics", self.g.lab.host_ip(0));
        let out = self
            .g
            .lab
            .command(0, "curl")
            .args(["-sS", "--max-time", "3", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn metric_opt(&self, series: &str) -> Option<f64> {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .map(|v| v.trim().parse().unwrap())
    }

    fn metric(&self, series: &str) -> f64 {
        self.metric_opt(series).unwrap_or(0.0)
    }

    /// Requests pf1 placed on backend `i` (in-process for pf1 itself).
    fn placed(&self, i: usize) -> f64 {
        let outcome = if i == 0 { "local" } else { "answered" };
        self.metric(&format!(
            "ironfence_lb_backend_requests_total{{backend=\"{}\",outcome=\"{outcome}\"}}",
            name(i)
        ))
    }

    fn placements(&self) -> [f64; 3] {
        [self.placed(0), self.placed(1), self.placed(2)]
    }

    /// pf1's view of backend `i`: 0 alive, 1 zombie, 2 dead, 3 reviving (-1: not yet probed).
    fn state(&self, i: usize) -> f64 {
        self.metric_opt(&format!(
            "ironfence_lb_backend_state{{backend=\"{}\"}}",
            name(i)
        ))
        .unwrap_or(-1.0)
    }

    /// radclient from the switch through the VIP: (reply code, VLAN).
    fn send(
        &self,
        port: u16,
        command: &str,
        retries: &str,
        attrs: &str,
    ) -> (Option<String>, Option<String>) {
        let mut child = self
            .g
            .lab
            .switch_command("radclient")
            .args(["-x", "-r", retries, "-t", "1"])
            .arg(format!("{}:{port}", self.vip))
            .args([command, SECRET])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        write!(child.stdin.take().unwrap(), "{attrs}").unwrap();
        let out = child.wait_with_output().unwrap();
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        let code = t
            .lines()
            .find_map(|l| l.strip_prefix("Received "))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string);
        let vlan = t
            .lines()
            .find_map(|l| l.trim().strip_prefix("Tunnel-Private-Group-Id:0 = "))
            .map(|v| v.trim_matches('"').to_string());
        (code, vlan)
    }

    fn mab(&self, mac: &str, retries: &str) -> (Option<String>, Option<String>) {
        self.send(
            1812,
            "auth",
            retries,
            &format!(
                "User-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nService-Type = Call-Check\nMessage-Authenticator = 0x00\n"
            ),
        )
    }

    fn logs(&self) -> String {
        format!(
            "{}\n---- pf1 metrics ----\n{}",
            self.g.logs(),
            self.metrics()
        )
    }
}

fn diff(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [b[0] - a[0], b[1] - a[1], b[2] - a[2]]
}

#[test]
fn balancer_through_the_vip_sticks_drains_fails_over_and_stores_accounting() {
    let mut c = Lb::up();

    // 1. MAB through the VIP, answered with the registration VLAN; every request of a key
    //    reaches the backend the ranking names, and all three backends get keys.
    let before = c.placements();
    for b in 0..3 {
        for mac in macs_for(b, 0x10, 2) {
            for _ in 0..3 {
                let (code, vlan) = c.mab(&mac, "1");
                assert_eq!(
                    code.as_deref(),
                    Some("Access-Accept"),
                    "{mac}\n{}",
                    c.logs()
                );
                assert_eq!(vlan.as_deref(), Some("2"), "{mac}");
            }
        }
    }
    assert_eq!(
        diff(before, c.placements()),
        [6.0, 6.0, 6.0],
        "{}",
        c.logs()
    );

    // 2. Maintenance on pf2: new conversations skip it (and go to their second backend),
    //    learned by pf1 from pf2's Status-Server answers.
    let o = c.g.cli(1, &["cluster", "maintenance", "--activate"]);
    assert!(ok(&o), "{}", text(&o));
    let probe = macs_for(1, 0x20, 40);
    let mut probe = probe.iter();
    eventually(
        "pf1 skips pf2 in maintenance",
        Duration::from_secs(10),
        || {
            let before = c.placements();
            let mac = probe.next().expect("enough MACs");
            assert_eq!(c.mab(mac, "1").0.as_deref(), Some("Access-Accept"));
            diff(before, c.placements())[1] == 0.0
        },
        || c.logs(),
    );
    let before = c.placements();
    let drained = macs_for(1, 0x21, 6);
    let mut expected = [0.0; 3];
    for mac in &drained {
        assert_eq!(c.mab(mac, "1").0.as_deref(), Some("Access-Accept"));
        expected[ranked(mac, Some(mac), 1)] += 1.0;
    }
    assert_eq!(diff(before, c.placements()), expected, "{}", c.logs());
    assert_eq!(expected[1], 0.0);
    // A later round of a conversation (it carries State) still reaches the drained member.
    let before = c.placements();
    let (code, _) = c.send(
        1812,
        "auth",
        "1",
        &format!(
            "User-Name = \"{m}\"\nCalling-Station-Id = \"{m}\"\nState = 0x6c622d65326500\nMessage-Authenticator = 0x00\n",
            m = drained[0]
        ),
    );
    assert!(code.is_some(), "{}", c.logs());
    assert_eq!(
        diff(before, c.placements()),
        [0.0, 1.0, 0.0],
        "{}",
        c.logs()
    );
    let o = c.g.cli(1, &["cluster", "maintenance", "--deactivate"]);
    assert!(ok(&o), "{}", text(&o));
    eventually(
        "pf2 back in rotation",
        Duration::from_secs(10),
        || {
            let before = c.placements();
            let mac = probe.next().expect("enough MACs");
            assert_eq!(c.mab(mac, "1").0.as_deref(), Some("Access-Accept"));
            diff(before, c.placements())[1] == 1.0
        },
        || c.logs(),
    );

    // 3. pf3's daemon killed (-9): its keys go to the survivors with no failed request
    //    (radclient retransmits after 1 s, the balancer tries the next backend after 0.5 s),
    //    Status-Server marks it dead, and it is revived after a restart.
    let serve = c.g.serve[2].take().unwrap();
    c.g.lab.kill9(&serve);
    let victims = macs_for(2, 0x30, 8);
    let mut failed = 0;
    for mac in &victims {
        let (code, vlan) = c.mab(mac, "3");
        if code.as_deref() != Some("Access-Accept") || vlan.as_deref() != Some("2") {
            failed += 1;
        }
    }
    assert_eq!(
        failed,
        0,
        "failed MAB requests while pf3 is down\n{}",
        c.logs()
    );
    eventually(
        "pf3 dead",
        Duration::from_secs(10),
        || c.state(2) == 2.0,
        || c.logs(),
    );
    let before = c.placements();
    for mac in &victims {
        assert_eq!(c.mab(mac, "1").0.as_deref(), Some("Access-Accept"));
    }
    let moved = diff(before, c.placements());
    assert_eq!(moved[2], 0.0);
    assert_eq!(moved[0] + moved[1], victims.len() as f64);
    c.g.start_serve(2);
    eventually(
        "pf3 alive again",
        Duration::from_secs(15),
        || c.state(2) == 0.0,
        || c.logs(),
    );
    let before = c.placements();
    for mac in &victims[..3] {
        assert_eq!(c.mab(mac, "1").0.as_deref(), Some("Access-Accept"));
    }
    assert_eq!(
        diff(before, c.placements()),
        [0.0, 0.0, 3.0],
        "{}",
        c.logs()
    );

    // 4. Accounting through the VIP to a peer: the Accounting-Response comes once the
    //    backend stored the record (the location log row exists when radclient returns).
    let mac = (0..=255u8)
        .map(|i| format!("02:00:00:00:40:{i:02x}"))
        .find(|m| ranked(m, None, 0) == 1)
        .unwrap();
    let before = c.placements();
    let (code, _) = c.send(
        1813,
        "acct",
        "1",
        &format!(
            "Acct-Status-Type = Start\nCalling-Station-Id = \"{mac}\"\nNAS-Port = 7\nAcct-Session-Id = \"lb-e2e-1\"\n"
        ),
    );
    assert_eq!(code.as_deref(), Some("Accounting-Response"), "{}", c.logs());
    assert_eq!(diff(before, c.placements()), [0.0, 1.0, 0.0]);
    let rows = galera_lab::sql_at(
        &c.g.socket(1),
        "pf",
        &format!("SELECT COUNT(*) FROM locationlog WHERE mac = '{mac}' AND end_time IS NULL"),
    )
    .unwrap();
    assert_eq!(rows, "1", "{}", c.logs());
    // The entry names the switch (the hop's client), not the front server that forwarded it:
    // CoA requests for this device go there.
    let switch_ip = galera_lab::sql_at(
        &c.g.socket(1),
        "pf",
        &format!("SELECT switch_ip FROM locationlog WHERE mac = '{mac}' AND end_time IS NULL"),
    )
    .unwrap();
    assert_eq!(switch_ip, c.g.lab.switch_ip().to_string(), "{}", c.logs());
    assert_eq!(c.metric("ironfence_lb_bad_backend_reply_total"), 0.0);
}

//! The node-to-node API of a real `ironfence serve` in a cluster (issue 7 items 5 and 8): only
//! cluster.conf's member addresses get a TLS handshake, the list follows `configreload`, and
//! wrong passwords block their source. One daemon (pf1) on loopback aliases with a real
//! MariaDB; the other members are only addresses the test connects from (all of 127/8 is
//! local on Linux). The daemon is stopped by PID when its guard drops.

use ironfence_testkit::MariaDb;
use ironfence_webservices::{Client, ClientError, ClusterCa, Credentials, Trust};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// TEST FIXTURE credentials, only for this test.
const WS_USER: &str = "ws-access-e2e";
const WS_PASS: &str = "ws-access-e2e-test-fixture-password-0123";
const RADIUS_SECRET: &str = "access-e2e-test-fixture-secret-0123";
const PF1: Ipv4Addr = Ipv4Addr::new(127, 0, 23, 1);
const PF2: Ipv4Addr = Ipv4Addr::new(127, 0, 23, 2);
const PF3: Ipv4Addr = Ipv4Addr::new(127, 0, 23, 3);
const NEWCOMER: Ipv4Addr = Ipv4Addr::new(127, 0, 23, 9);

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::thread::panicking() {
            eprintln!("---- pf1 log ----\n{}", self.log());
        }
    }
}

fn cli(conf: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ironfence"))
        .env("IRONFENCE_HOSTNAME", "pf1.example.com")
        .arg("--conf-dir")
        .arg(conf)
        .args(args)
        .output()
        .unwrap()
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

fn cluster_conf(third: Ipv4Addr) -> String {
    format!(
        "[CLUSTER]\nmanagement_ip = 127.0.23.10\n\n\
         [pf1.example.com]\nmanagement_ip = {PF1}\n\n\
         [pf2.example.com]\nmanagement_ip = {PF2}\n\n\
         [pf3.example.com]\nmanagement_ip = {third}\n"
    )
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn only_members_reach_the_api_and_the_list_follows_reloads() {
    let db = MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("access_e2e").unwrap();
    let base = tempfile::tempdir().unwrap();
    let conf = base.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let radius_port = free_port();
    let metrics_port = free_port();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = access_e2e\n\n\
             [radius]\nauth_port = {radius_port}\nacct_port = {}\n\n\
             [metrics]\nlisten = 127.0.0.1:{metrics_port}\n\n\
             [webservices]\nuser = {WS_USER}\npass = {WS_PASS}\n\n\
             [active_active]\ngalera_replication_username = e2e-repl\ngalera_replication_password = e2e-test-fixture-repl-password\n\
             password = e2e-test-fixture-vrrp-key\n\n\
             [maintenance]\ncluster_check_interval = 0\n",
            db.host(),
            db.port(),
            db.user(),
            db.password(),
            radius_port + 1
        ),
    )
    .unwrap();
    std::fs::write(conf.join("cluster.conf"), cluster_conf(PF3)).unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        format!("[127.0.0.1]\nradiusSecret = {RADIUS_SECRET}\nregistrationVlan = 2\n"),
    )
    .unwrap();
    let out = cli(&conf, &["checkup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log = base.path().join("ironfence.log");
    let child = Command::new(env!("CARGO_BIN_EXE_ironfence"))
        .env("IRONFENCE_HOSTNAME", "pf1.example.com")
        .env("RUST_LOG", "info")
        .arg("--conf-dir")
        .arg(&conf)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon { child, log };
    eventually("pf1 ready", || {
        daemon
            .log()
            .contains("node-to-node API (webservices) ready")
    });

    let ca = ClusterCa::load(&conf).unwrap().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = |from: Ipv4Addr, pass: &str| {
        Client::new(
            PF1.into(),
            9090,
            Trust::ClusterCa(ca.cert_der().clone()),
            Credentials {
                user: WS_USER.into(),
                pass: pass.into(),
            },
            Duration::from_secs(10),
        )
        .unwrap()
        .with_source(from.into())
    };
    let served = |from: Ipv4Addr| rt.block_on(client(from, WS_PASS).status()).is_ok();
    let closed_before_tls = |from: Ipv4Addr| {
        matches!(
            rt.block_on(client(from, WS_PASS).status()),
            Err(ClientError::Tls { reason, .. }) if reason.contains("listed in the peer's cluster.conf")
        )
    };

    // Members are served, a non-member is closed before TLS.
    assert!(served(PF2));
    assert!(served(PF3));
    assert!(closed_before_tls(NEWCOMER));
    eventually("the refusal is logged", || {
        daemon.log().contains("connection closed before TLS")
    });

    // cluster.conf now lists the newcomer instead of pf3's old address: after configreload
    // the running API admits it and refuses the old address, without a restart.
    std::fs::write(conf.join("cluster.conf"), cluster_conf(NEWCOMER)).unwrap();
    let out = cli(&conf, &["configreload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the newcomer is admitted", || served(NEWCOMER));
    assert!(closed_before_tls(PF3));
    assert!(served(PF2));
    assert_eq!(
        daemon
            .log()
            .matches("node-to-node API (webservices) ready")
            .count(),
        1,
        "the API was restarted"
    );

    // Wrong passwords block their source (429, even with the right password); others are
    // served; the block is logged with the count.
    for _ in 0..6 {
        let err = rt
            .block_on(client(PF2, "not-the-password").status())
            .unwrap_err();
        assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    }
    match rt.block_on(client(PF2, WS_PASS).status()) {
        Err(ClientError::Refused { status: 429, .. }) => {}
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(served(NEWCOMER));
    eventually("the block is logged", || {
        daemon
            .log()
            .contains("refused for 10s after 6 failed logins")
    });

    // The refusals are counted in /metrics (on pf1's management IP in a cluster).
    let metrics = http_get(PF1, metrics_port, "/metrics");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert!(value("ironfence_webservices_refused_total{reason=\"not_member\"}") >= 2.0);
    assert!(
        value("ironfence_webservices_refused_total{reason=\"blocked_after_failed_logins\"}") >= 1.0
    );
    assert!(value("ironfence_webservices_auth_failures_total") >= 6.0);
}

fn http_get(ip: Ipv4Addr, port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((ip, port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

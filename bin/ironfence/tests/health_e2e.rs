//! The web listener's `/health` of a real `ironfence serve` in a cluster (issue 9): 200 while
//! up, and `/health?writable` 503 while the database is read-only (haproxy's write backend
//! checks it, so a degraded member takes no writes). One daemon (pf1) on loopback aliases with
//! a real MariaDB whose `read_only` flag the test turns on and off; the other members are only
//! addresses. The daemon is stopped by PID when its guard drops.

use ironfence_testkit::MariaDb;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// TEST FIXTURE credentials, only for this test.
const WS_USER: &str = "ws-health-e2e";
const WS_PASS: &str = "ws-health-e2e-test-fixture-password-0123";
const RADIUS_SECRET: &str = "health-e2e-test-fixture-secret-0123456";
const PF1: &str = "127.0.45.1";

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

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl` the path on pf1's web listener: (HTTP status, body).
fn get(port: u16, path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "3", "-w", "\n%{http_code}"])
        .arg(format!("http://{PF1}:{port}{path}"))
        .output()
        .expect("curl");
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = t.rsplit_once('\n').unwrap_or(("", &t));
    (code.trim().to_string(), body.to_string())
}

fn write_conf(conf: &Path, db: &MariaDb, web_port: u16) {
    let radius_port = free_port();
    std::fs::create_dir_all(conf).unwrap();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = health_e2e\n\n\
             [radius]\nauth_port = {radius_port}\nacct_port = {}\n\n\
             [metrics]\nlisten =\n\n\
             [webservices]\nuser = {WS_USER}\npass = {WS_PASS}\nport = {}\n\n\
             [ports]\nweb = {web_port}\n\n\
             [active_active]\ngalera_replication_username = e2e-repl\ngalera_replication_password = e2e-test-fixture-repl-password\n\
             password = health-e2e-vrrp-fixture\n\n\
             [maintenance]\ncluster_check_interval = 0\n",
            db.host(),
            db.port(),
            db.user(),
            db.password(),
            radius_port + 1,
            free_port(),
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("cluster.conf"),
        "[CLUSTER]\nmanagement_ip = 127.0.45.10\n\n\
         [pf1.example.com]\nmanagement_ip = 127.0.45.1\n\n\
         [pf2.example.com]\nmanagement_ip = 127.0.45.2\n\n\
         [pf3.example.com]\nmanagement_ip = 127.0.45.3\n",
    )
    .unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        format!("[127.0.0.1]\nradiusSecret = {RADIUS_SECRET}\nregistrationVlan = 2\n"),
    )
    .unwrap();
}

#[test]
fn health_answers_and_writable_follows_the_database_read_only_flag() {
    let db = MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("health_e2e").unwrap();
    let base = tempfile::tempdir().unwrap();
    let conf = base.path().join("conf");
    let web = free_port();
    write_conf(&conf, &db, web);
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
    eventually("/health answers", || get(web, "/health").0 == "200");
    eventually("the database writable", || {
        get(web, "/health?writable").0 == "200"
    });
    let (_, body) = get(web, "/health");
    let json: serde_json::Value = serde_json::from_str(body.trim()).expect(&body);
    assert_eq!(json["hostname"], "pf1.example.com", "{body}");
    assert_eq!(json["read_only"], false, "{body}");
    // No [CLUSTER interface X]: no VIP is managed here.
    assert_eq!(json["vips"], serde_json::json!([]), "{body}");
    assert!(!daemon.log().contains("program=\"keepalived\""));

    db.admin_sql("SET GLOBAL read_only = 1").unwrap();
    eventually("503 on /health?writable while read-only", || {
        get(web, "/health?writable").0 == "503"
    });
    let (code, body) = get(web, "/health");
    assert_eq!(code, "200", "a read-only member is still up: {body}");
    assert!(body.contains("\"read_only\":true"), "{body}");
    let (_, body) = get(web, "/health?writable");
    assert!(body.contains("\"read_only\":true"), "{body}");

    db.admin_sql("SET GLOBAL read_only = 0").unwrap();
    eventually("200 on /health?writable once writable again", || {
        get(web, "/health?writable").0 == "200"
    });
}

//! The administration API on a three-server cluster (separate `ironfence serve` processes on
//! 127.0.83.1-3, one real MariaDB): a switch edited through server 1's API is in force on every
//! server and the answer lists the three results; with one server stopped the answer names
//! it as not updated, and the change is saved on the others. Processes are stopped by PID
//! when their guard drops (also on failure).

use ironfence_testkit::MariaDb;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// TEST FIXTURE credentials, only for these tests.
const WS_USER: &str = "ws-admin-cluster";
const WS_PASS: &str = "ws-admin-cluster-test-fixture-password-0123";
const RADIUS_SECRET: &str = "admin-cluster-test-fixture-secret-0123";
const ADMIN_USER: &str = "clusteradmin";
const ADMIN_PASS: &str = "admin-cluster-test-fixture-login-0123";

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
        eventually(&format!("{} ready", self.name), || {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited ({st}):\n{}", self.name, self.log());
            }
            self.log().matches(ready).count() > before
        });
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

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.83.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to `ip:port` (the server's web listener): status and JSON body.
fn http(
    ip: &str,
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect((ip, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The application's database account: no SUPER / READ ONLY ADMIN, so `read_only=1` applies.
const DB_USER: &str = "ironfence_ac_app";
const DB_PASS: &str = "ironfence-ac-test-fixture-password-0123";

fn write_first_config(first: &Server, servers: &[(&str, &str)], db: &MariaDb, web: u16) {
    let conf = first.conf();
    let radius = free_port();
    std::fs::write(
        conf.join("pf.conf"),
        format!(
            "[general]\nstate_dir = state\n\n\
             [database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = admin_cluster\n\n\
             [radius]\nauth_port = {radius}\nacct_port = {}\n\n\
             [metrics]\nlisten =\n\n\
             [ports]\nweb = {web}\n\n\
             [webservices]\nuser = {WS_USER}\npass = {WS_PASS}\n\n\
             [active_active]\ngalera_replication_username = ac-repl\ngalera_replication_password = ac-test-fixture-repl-password\n\
             password = ac-test-fixture-vrrp-key\n\n\
             [maintenance]\ncluster_check_interval = 0\n",
            db.host(),
            db.port(),
            DB_USER,
            DB_PASS,
            radius + 1
        ),
    )
    .unwrap();
    let mut cluster =
        "# admin cluster test\n[CLUSTER]\nmanagement_ip = 127.0.83.10\n\n".to_string();
    for (name, ip) in servers {
        cluster.push_str(&format!("[{name}]\nmanagement_ip = {ip}\n\n"));
    }
    std::fs::write(conf.join("cluster.conf"), cluster).unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        format!(
            "# switches — this comment survives API edits\n[default]\nregistrationVlan = 2\n\n\
             [127.0.0.1]\n# the lab switch\nradiusSecret = {RADIUS_SECRET}\n"
        ),
    )
    .unwrap();
    let hash = ironfence_portal::password::hash(ADMIN_PASS).unwrap();
    let admin = conf.join("admin.conf");
    std::fs::write(
        &admin,
        format!("[account {ADMIN_USER}]\nrole=administrator\npassword={hash}\n"),
    )
    .unwrap();
    // The token key every member verifies sessions with, as `ironfence admin add` makes it
    // (conf/ssl is synchronized to the members that join).
    ironfence_server::admin::auth::ensure_key(&conf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["pf.conf", "switches.conf", "admin.conf"] {
        std::fs::set_permissions(conf.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
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

fn join(server: &Server, from: &Server, fp: &str) {
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
        fp,
    ]);
    assert!(
        out.status.success(),
        "join of {}:\n{}",
        server.name,
        text(&out)
    );
}

fn login(s: &Server, web: u16) -> String {
    let (status, body) = http(
        &s.ip,
        web,
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"username": ADMIN_USER, "password": ADMIN_PASS})),
    );
    assert_eq!(status, 200, "login on {}: {body}", s.name);
    body["token"].as_str().unwrap().to_string()
}

fn results(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["server"].as_str().unwrap().to_string(),
                s["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_switch_edited_on_one_server_is_in_force_on_all_and_a_stopped_one_is_named() {
    let db = MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("admin_cluster").unwrap();
    db.admin_sql(&format!(
        "CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASS}'; CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASS}'; \
         GRANT ALL PRIVILEGES ON admin_cluster.* TO '{DB_USER}'@'%'; GRANT ALL PRIVILEGES ON admin_cluster.* TO '{DB_USER}'@'localhost';"
    ))
    .unwrap();
    let base = tempfile::tempdir().unwrap();
    let names = [
        ("pf1.example.com", "127.0.83.1"),
        ("pf2.example.com", "127.0.83.2"),
        ("pf3.example.com", "127.0.83.3"),
    ];
    let web = free_port();
    let mut servers: Vec<Server> = names
        .iter()
        .map(|(n, ip)| Server::new(base.path(), n, ip))
        .collect();
    write_first_config(&servers[0], &names, &db, web);
    servers[0].start();
    let fp = fingerprint(&servers[0]);
    for i in 1..3 {
        let (first, rest) = servers.split_at_mut(i);
        join(&rest[0], &first[0], &fp);
        rest[0].start();
    }
    let token = login(&servers[0], web);
    let (st, read) = http(
        &servers[0].ip,
        web,
        "GET",
        "/api/v1/switches",
        Some(&token),
        None,
    );
    assert_eq!(st, 200, "{read}");
    let version = read["version"].as_str().unwrap().to_string();

    // Edit through pf1's API: every server runs it, the answer lists three results.
    let (st, w) = http(
        &servers[0].ip,
        web,
        "PATCH",
        "/api/v1/switches/127.0.0.1",
        Some(&token),
        Some(&json!({"isolationVlan": 33, "expected_version": version})),
    );
    assert_eq!(st, 200, "{w}");
    assert_eq!(
        results(&w["report"]),
        [
            ("pf1.example.com".to_string(), "this_server".to_string()),
            ("pf2.example.com".into(), "updated".into()),
            ("pf3.example.com".into(), "updated".into()),
        ],
        "{w}"
    );
    let new_version = w["report"]["version"].as_str().unwrap().to_string();
    for s in &servers {
        let text = s.file("switches.conf");
        assert!(text.contains("isolationVlan=33\n"), "{}: {text}", s.name);
        assert!(text.starts_with("# switches — this comment survives API edits\n"));
        // The running configuration (not only the files) is the new version, as the peers report it.
        let (st, status) = http(
            &s.ip,
            web,
            "GET",
            "/api/v1/cluster/status",
            Some(&login(s, web)),
            None,
        );
        assert_eq!(st, 200, "{status}");
        assert_eq!(
            status["config_version"]["hash"],
            new_version.as_str(),
            "{}: {status}",
            s.name
        );
        assert_eq!(status["config_in_sync"], true, "{status}");
    }
    // The same stale version again: 409, nothing written.
    let (st, e) = http(
        &servers[0].ip,
        web,
        "PATCH",
        "/api/v1/switches/127.0.0.1",
        Some(&token),
        Some(&json!({"isolationVlan": 34, "expected_version": version})),
    );
    assert_eq!(st, 409, "{e}");
    // A bad VLAN: 422 naming the field, nothing written anywhere.
    let (st, e) = http(
        &servers[0].ip,
        web,
        "PATCH",
        "/api/v1/switches/127.0.0.1",
        Some(&token),
        Some(&json!({"isolationVlan": 5000})),
    );
    assert_eq!(st, 422, "{e}");
    assert_eq!(e["errors"][0]["field"], "isolationVlan", "{e}");
    assert!(
        servers[1]
            .file("switches.conf")
            .contains("isolationVlan=33\n")
    );

    // pf3 stopped: the change is saved on pf1 and pf2, and the answer names pf3.
    servers[2].stop();
    let (st, w) = http(
        &servers[0].ip,
        web,
        "PATCH",
        "/api/v1/switches/127.0.0.1",
        Some(&token),
        Some(&json!({"isolationVlan": 35})),
    );
    assert_eq!(st, 200, "{w}");
    assert_eq!(
        results(&w["report"]),
        [
            ("pf1.example.com".to_string(), "this_server".to_string()),
            ("pf2.example.com".into(), "updated".into()),
            ("pf3.example.com".into(), "failed".into()),
        ],
        "{w}"
    );
    let failed = w["report"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == "pf3.example.com")
        .unwrap();
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{w}"
    );
    assert!(
        servers[1]
            .file("switches.conf")
            .contains("isolationVlan=35\n")
    );
    assert!(
        servers[2]
            .file("switches.conf")
            .contains("isolationVlan=33\n")
    );

    // The database becomes read-only (degraded mode): a configuration change is still accepted
    // (and pushed), a device change is refused with 503.
    db.admin_sql("SET GLOBAL read_only = 1").unwrap();
    let token2 = login(&servers[1], web);
    eventually("pf2 read-only", || {
        let (_, st) = http(
            &servers[1].ip,
            web,
            "GET",
            "/api/v1/cluster/status",
            Some(&token2),
            None,
        );
        st["read_only"] == true
    });
    let (st, w) = http(
        &servers[1].ip,
        web,
        "PATCH",
        "/api/v1/switches/127.0.0.1",
        Some(&token2),
        Some(&json!({"isolationVlan": 36})),
    );
    assert_eq!(st, 200, "{w}");
    assert!(
        servers[0]
            .file("switches.conf")
            .contains("isolationVlan=36\n")
    );
    // A device change (helper B's POST /nodes, Writes::Data) is refused by the gate.
    let (st, e) = http(
        &servers[1].ip,
        web,
        "POST",
        "/api/v1/nodes",
        Some(&token2),
        Some(&json!({"mac": "02:00:00:00:83:02"})),
    );
    assert_eq!(st, 503, "{e}");
    db.admin_sql("SET GLOBAL read_only = 0").unwrap();
}

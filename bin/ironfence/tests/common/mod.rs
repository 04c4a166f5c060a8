//! End-to-end harness: runs the real `ironfence` binary with a generated conf dir and drives it
//! with the real FreeRADIUS clients (`radclient`, `radtest`). Every daemon started here is
//! stopped by PID when its guard drops, even if the test panics.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// TEST FIXTURE secret, only for these tests.
pub const SECRET: &str = "e2e-test-fixture-secret-0123456789";

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ironfence serve`.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub auth_port: u16,
    pub acct_port: u16,
    pub metrics_port: u16,
    child: Option<Child>,
}

pub struct DaemonBuilder {
    switches: String,
    database: String,
    radius_extra: String,
    /// More pf.conf sections, and more files in the conf dir (captive portal tests).
    pf_extra: String,
    files: Vec<(String, String)>,
}

impl Default for DaemonBuilder {
    fn default() -> Self {
        DaemonBuilder {
            switches: format!(
                "[default]\nregistrationVlan=2\nisolationVlan=3\ndefaultVlan=100\nguestVlan=200\n\n\
                 [127.0.0.1]\ndescription=e2e switch\nradiusSecret={SECRET}\nrequire_message_authenticator=yes\nguestVlan=210\n"
            ),
            database: "[database]\ntype=sqlite\n".to_string(),
            radius_extra: String::new(),
            pf_extra: String::new(),
            files: Vec::new(),
        }
    }
}

impl DaemonBuilder {
    pub fn switches(mut self, text: &str) -> Self {
        self.switches = text.to_string();
        self
    }

    pub fn database(mut self, text: &str) -> Self {
        self.database = text.to_string();
        self
    }

    /// More `key = value` lines for pf.conf's `[radius]` section.
    pub fn radius_extra(mut self, lines: &str) -> Self {
        self.radius_extra = lines.to_string();
        self
    }

    /// More pf.conf sections (appended).
    pub fn pf_extra(mut self, text: &str) -> Self {
        self.pf_extra = text.to_string();
        self
    }

    /// Another file in the conf dir (`name` relative to it).
    pub fn file(mut self, name: &str, text: &str) -> Self {
        self.files.push((name.to_string(), text.to_string()));
        self
    }

    pub fn start(self) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        let (auth_port, acct_port, metrics_port) =
            (free_udp_port(), free_udp_port(), free_tcp_port());
        let state = dir.path().join("state");
        std::fs::write(
            conf.join("pf.conf"),
            format!(
                "[general]\nstate_dir={}\n\n{}\n[radius]\nlisten=127.0.0.1\nauth_port={auth_port}\nacct_port={acct_port}\n{}\n[metrics]\nlisten=127.0.0.1:{metrics_port}\n{}",
                state.display(),
                self.database,
                self.radius_extra,
                self.pf_extra
            ),
        )
        .unwrap();
        for (name, text) in &self.files {
            let path = conf.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::write(conf.join("switches.conf"), &self.switches).unwrap();
        let mut d = Daemon {
            dir,
            auth_port,
            acct_port,
            metrics_port,
            child: None,
        };
        d.spawn();
        d
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        DaemonBuilder::default().start()
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ironfence.log")).unwrap_or_default()
    }

    /// Starts `ironfence serve` on this conf dir (its log appended to the previous runs').
    fn spawn(&mut self) {
        let conf = self.conf_dir();
        let ready_before = self.log().matches("ironfence ready").count();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("ironfence.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ironfence"))
            .args(["--conf-dir", conf.to_str().unwrap(), "serve"])
            .env("RUST_LOG", "info,ironfence_server=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ironfence");
        self.child = Some(child);
        self.wait_ready(ready_before);
    }

    /// SIGKILL and wait: a crash (nothing flushed, no shutdown code runs).
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("already stopped");
        signal(child.id(), "KILL");
        child.wait().unwrap();
    }

    /// Starts the daemon again after [`Daemon::stop`] or [`Daemon::kill9`], same conf dir and
    /// state, and waits until it is ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    fn wait_ready(&mut self, ready_before: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ironfence exited early ({status}):\n{}", self.log());
            }
            if self.log().matches("ironfence ready").count() > ready_before
                && TcpStream::connect(("127.0.0.1", self.metrics_port)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ironfence not ready after 30 s:\n{}", self.log());
    }

    /// Runs an `ironfence` CLI command against this daemon's conf dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ironfence"))
            .arg("--conf-dir")
            .arg(self.conf_dir())
            .args(args)
            .output()
            .expect("run ironfence cli")
    }

    /// Fetches `/metrics` and returns the value of one sample (exact series text), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let body = http_get(self.metrics_port, "/metrics");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }

    pub fn metrics_text(&self) -> String {
        http_get(self.metrics_port, "/metrics")
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("already stopped");
        signal(child.id(), "TERM");
        wait_or_kill(&mut child, Duration::from_secs(15))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            wait_or_kill(&mut child, Duration::from_secs(10));
        }
        if std::thread::panicking() {
            eprintln!("---- ironfence log ----\n{}", self.log());
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn wait_or_kill(child: &mut Child, grace: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

/// What radclient printed about the reply.
#[derive(Debug)]
pub struct RadReply {
    /// `Access-Accept`, `Access-Reject`, `Accounting-Response`, or `None` if no reply.
    pub code: Option<String>,
    /// Reply attributes as printed (`Tunnel-Private-Group-Id:0` → `"2"` with quotes stripped).
    pub attrs: Vec<(String, String)>,
    pub output: String,
}

impl RadReply {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn vlan(&self) -> Option<&str> {
        self.attr("Tunnel-Private-Group-Id:0")
            .or(self.attr("Tunnel-Private-Group-Id"))
    }
}

/// Runs `radclient -x` with `request` (attribute lines) on stdin.
pub fn radclient(port: u16, command: &str, secret: &str, request: &str) -> RadReply {
    let mut child = Command::new("radclient")
        // -r 1: one try, no retransmit, so drop counters are exact.
        .args(["-x", "-r", "1", "-t", "1"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(command)
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient is required: apt-get install freeradius-utils");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    parse_radclient(&out)
}

pub fn radtest_mab(port: u16, secret: &str, mac: &str) -> RadReply {
    let out = Command::new("radtest")
        .args([
            "-t",
            "pap",
            "-x",
            mac,
            mac,
            &format!("127.0.0.1:{port}"),
            "0",
            secret,
        ])
        .output()
        .expect("radtest is required: apt-get install freeradius-utils");
    parse_radclient(&out)
}

fn parse_radclient(out: &Output) -> RadReply {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut code = None;
    let mut attrs = Vec::new();
    let mut in_reply = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Received ") {
            code = rest.split_whitespace().next().map(str::to_string);
            in_reply = true;
            continue;
        }
        if line.starts_with("Sent ") || line.starts_with('(') {
            in_reply = false;
            continue;
        }
        if in_reply
            && line.starts_with(char::is_whitespace)
            && let Some((n, v)) = line.trim().split_once(" = ")
        {
            attrs.push((n.to_string(), v.trim_matches('"').to_string()));
        }
    }
    RadReply {
        code,
        attrs,
        output: text,
    }
}

/// Waits until `cond` holds (for effects that happen off the request path, e.g. audit writes).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_path_exists(p: &Path) {
    assert!(p.exists(), "{} should exist", p.display());
}

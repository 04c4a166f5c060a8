//! docs/cluster.md, executed: three servers in network namespaces (`netns::Lab`) built by
//! running the guide's own commands, in the guide's order, from its fenced blocks tagged
//! `walkthrough` — so the documentation and what the product does cannot drift apart.
//!
//! Block syntax (in docs/cluster.md):
//! - ```` ```sh walkthrough host=pf1,pf2 ```` — every command line runs on each listed host in
//!   turn (`switch` = the RADIUS client workstation); `#` lines are comments, a trailing `\`
//!   continues a line. Every command must succeed.
//! - ```` ```ini walkthrough host=pf1 file=PATH ```` — the block is written to PATH.
//!
//! What the test substitutes, and why (one machine stands in for three):
//! - paths: `/usr/local/ironfence`, `/etc/systemd/system`, `/etc/profile.d` become a
//!   directory of that host inside the lab (the namespaces share one filesystem);
//!   `/usr/local/bin/ironfence` is the binary under test, which is also first on `PATH`;
//! - the guide's addresses become the lab's (pf1..pf3 = hosts 0..2, the workstation = the
//!   switch namespace, the management VIP = the lab's first VIP); `<…>` placeholders become
//!   test-fixture secrets, `<fingerprint>` the CA fingerprint the first server printed;
//! - `systemctl start/enable --now UNIT` starts the `ExecStart=` of the unit file the guide
//!   installed (packaging/systemd), with systemd's clean environment, as a lab process;
//!   `stop` sends it SIGTERM (KillMode=mixed); `daemon-reload` and plain `enable` change
//!   nothing at run time. `systemd-run --unit=NAME CMD` starts CMD the same way. Starting
//!   `ironfence.service` waits for the daemon's "ironfence ready" (what Type=notify would do);
//! - the identity: the namespaces share one UTS hostname, so `IRONFENCE_HOSTNAME` stands in for
//!   `hostnamectl set-hostname` (a prerequisite the test does not run, like `apt-get`);
//!   `IRONFENCE_CONF_DIR` is what the installed /etc/profile.d/ironfence.sh exports (checked).
//!
//! The checks at the end are the guide's: radtest answered through every server (VLAN 2, then
//! VLAN 5 after the day-2 change was published), `cluster status` listing all three on one
//! version, `db status --all` three Primary/Synced nodes.

use ironfence_testkit::netns::{Lab, ProcHandle, require_lab};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ironfence");

/// TEST FIXTURE secrets, only for this test.
const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "<webservices password>",
        "ws-walkthrough-test-fixture-password-0123",
    ),
    (
        "<database password>",
        "db-walkthrough-test-fixture-password-0123",
    ),
    (
        "<replication password>",
        "sst-walkthrough-test-fixture-password-0123",
    ),
    ("<keepalived password>", "kaWalk42"),
    ("<stats password>", "stats-walkthrough-test-fixture-pass"),
    (
        "<radius secret>",
        "radius-walkthrough-test-fixture-secret-01",
    ),
];

/// Longest a single documented command may take (the `until` loops wait inside it).
const LINE_TIMEOUT_SECS: u32 = 180;
const SERVICE_STOP: Duration = Duration::from_secs(150);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hostname(i: usize) -> String {
    format!("pf{}.example.com", i + 1)
}

#[derive(Debug)]
struct Block {
    lang: String,
    hosts: Vec<String>,
    file: Option<String>,
    body: String,
    /// 1-based line of the opening fence, for messages.
    line: usize,
}

/// The `walkthrough` blocks of a markdown text, in order.
fn walkthrough_blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = md.lines().enumerate();
    while let Some((n, l)) = lines.next() {
        let Some(info) = l.trim_start().strip_prefix("```") else {
            continue;
        };
        let words: Vec<&str> = info.split_whitespace().collect();
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        if !words.contains(&"walkthrough") {
            continue;
        }
        let attr = |k: &str| {
            words
                .iter()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        out.push(Block {
            lang: words.first().copied().unwrap_or("").to_string(),
            hosts: attr("host")
                .unwrap_or_default()
                .split(',')
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect(),
            file: attr("file"),
            body,
            line: n + 1,
        });
    }
    out
}

/// Command lines of a shell block: comments and blank lines dropped, `\` continuations joined.
fn command_lines(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in body.lines() {
        let t = l.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    assert!(cur.is_empty(), "dangling continuation: {cur}");
    out
}

/// `text` with every `from` replaced by `to` where `from` is not followed by a digit (so that
/// 192.168.1.1 never matches inside 192.168.1.10).
fn replace_token(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(from) {
        let after = &rest[pos + from.len()..];
        out.push_str(&rest[..pos]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Which host a block names: `Some(i)` for pf(i+1), `None` for the switch workstation.
fn host_index(h: &str) -> Option<usize> {
    match h {
        "switch" => None,
        _ => {
            let n: usize = h
                .strip_prefix("pf")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unknown host {h:?} in a walkthrough block"));
            Some(n - 1)
        }
    }
}

struct Walk {
    lab: Lab,
    roots: Vec<PathBuf>,
    services: HashMap<(usize, String), ProcHandle>,
    fingerprint: Option<String>,
    /// Every command with its output, in order: the failure report, and what the final
    /// checks read.
    transcript: Vec<(String, String, String)>,
}

impl Walk {
    fn new() -> Walk {
        require_lab().expect("network namespaces (root, iproute2, iputils-ping)");
        let lab = Lab::new(3).expect("lab");
        let roots: Vec<PathBuf> = (0..3)
            .map(|i| lab.dir().join(format!("pf{}", i + 1)))
            .collect();
        for root in &roots {
            // What a Debian server has before the guide starts.
            for d in ["usr/local", "etc/systemd/system", "etc/profile.d"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
        }
        // mariadbd runs as mysql: it must be able to traverse to its datadir.
        let st = Command::new("chmod")
            .arg("755")
            .arg(lab.dir())
            .args(roots.iter().flat_map(|r| [r.clone(), r.join("usr/local")]))
            .status()
            .unwrap();
        assert!(st.success());
        Walk {
            lab,
            roots,
            services: HashMap::new(),
            fingerprint: None,
            transcript: Vec::new(),
        }
    }

    fn subst(&self, host: Option<usize>, text: &str) -> String {
        let mut t = text.to_string();
        if let Some(i) = host {
            let root = self.roots[i].display().to_string();
            t = t.replace("/usr/local/bin/ironfence", BIN);
            for p in [
                "/usr/local/ironfence",
                "/etc/systemd/system",
                "/etc/profile.d",
            ] {
                t = t.replace(p, &format!("{root}{p}"));
            }
        }
        let lab = &self.lab;
        for (from, to) in [
            ("192.168.1.10", lab.vip(0)),
            ("192.168.1.254", lab.switch_ip()),
            ("192.168.1.5", lab.host_ip(0)),
            ("192.168.1.6", lab.host_ip(1)),
            ("192.168.1.7", lab.host_ip(2)),
        ] {
            t = replace_token(&t, from, &to.to_string());
        }
        for (from, to) in PLACEHOLDERS {
            t = t.replace(from, to);
        }
        if let Some(fp) = &self.fingerprint {
            t = t.replace("<fingerprint>", fp);
        }
        assert!(
            !t.contains("<fingerprint>"),
            "the fingerprint is used before a command printed it: {text}"
        );
        t
    }

    fn host_label(host: Option<usize>) -> String {
        host.map_or("switch".into(), |i| format!("pf{}", i + 1))
    }

    fn record(&mut self, host: Option<usize>, line: &str, output: String) {
        if let Some(fp) = output
            .lines()
            .find_map(|l| l.trim().strip_prefix("cluster CA fingerprint: "))
        {
            self.fingerprint = Some(fp.trim().to_string());
        }
        println!("{}$ {line}\n{output}", Self::host_label(host));
        self.transcript
            .push((Self::host_label(host), line.to_string(), output));
    }

    fn report(&self) -> String {
        let mut s = String::from("---- transcript (last commands) ----\n");
        for (h, l, o) in self.transcript.iter().rev().take(8).rev() {
            s.push_str(&format!("{h}$ {l}\n{}\n", tail(o, 40)));
        }
        for ((i, unit), _) in self.services.iter() {
            let label = service_label(*i, unit);
            s.push_str(&format!(
                "---- {label} ----\n{}\n",
                tail(&self.lab.log(&label), 40)
            ));
        }
        s
    }

    fn run_block(&mut self, b: &Block) {
        assert!(
            !b.hosts.is_empty(),
            "docs/cluster.md:{}: walkthrough block without host=",
            b.line
        );
        for h in &b.hosts {
            let host = host_index(h);
            if let Some(file) = &b.file {
                let path = self.subst(host, file);
                let content = self.subst(host, &b.body);
                std::fs::write(&path, content)
                    .unwrap_or_else(|e| panic!("docs/cluster.md:{}: writing {path}: {e}", b.line));
                self.record(host, &format!("(write {file})"), String::new());
                continue;
            }
            assert_eq!(
                b.lang, "sh",
                "docs/cluster.md:{}: a walkthrough block is sh or has file=",
                b.line
            );
            for line in command_lines(&b.body) {
                self.run_line(host, &line, b.line);
            }
        }
    }

    /// The environment systemd gives a unit (plus the identity, see the module docs).
    fn unit_command(&self, i: usize, argv: &[String], env: &[(String, String)]) -> Command {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("IRONFENCE_HOSTNAME", hostname(i))
            .current_dir("/");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn start_unit(&mut self, i: usize, unit: &str) {
        let path = self.roots[i]
            .join("etc/systemd/system")
            .join(unit_file(unit));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{unit} is not installed ({}): {e}", path.display()));
        let (exec, env) = parse_unit(&text);
        let exec = exec.unwrap_or_else(|| panic!("{unit}: no ExecStart="));
        let argv: Vec<String> = self
            .subst(Some(i), &exec)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let cmd = self.unit_command(i, &argv, &env);
        let label = service_label(i, unit);
        let before = self.lab.log(&label).matches("ironfence ready").count();
        let h = self.lab.spawn(i, cmd, &label).unwrap();
        self.services.insert((i, unit_name(unit)), h);
        if argv.iter().any(|a| a == "serve") {
            let start = Instant::now();
            while self.lab.log(&label).matches("ironfence ready").count() <= before {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "{unit} on pf{} never got ready\n{}",
                    i + 1,
                    self.report()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn stop_unit(&mut self, i: usize, unit: &str) {
        let h = self
            .services
            .remove(&(i, unit_name(unit)))
            .unwrap_or_else(|| panic!("systemctl stop {unit}: not running on pf{}", i + 1));
        assert!(
            self.lab.stop(&h, SERVICE_STOP),
            "{unit} on pf{} did not stop\n{}",
            i + 1,
            self.report()
        );
    }

    fn run_line(&mut self, host: Option<usize>, line: &str, block_line: usize) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = format!("docs/cluster.md:{block_line}: {line}");
        match (words[0], host) {
            ("systemctl", Some(i)) => {
                let units: Vec<&str> = words[2..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with('-'))
                    .collect();
                match words[1] {
                    "daemon-reload" => {}
                    "enable" if !words.contains(&"--now") => {}
                    "enable" | "start" => {
                        for u in units {
                            self.start_unit(i, u);
                        }
                    }
                    "restart" => {
                        for u in units {
                            self.stop_unit(i, u);
                            self.start_unit(i, u);
                        }
                    }
                    "stop" => {
                        for u in units {
                            self.stop_unit(i, u);
                        }
                    }
                    other => panic!("{at}: systemctl {other} is not emulated"),
                }
                self.record(host, line, String::new());
            }
            ("systemd-run", Some(i)) => {
                let mut unit = None;
                let mut k = 1;
                while k < words.len() && words[k].starts_with('-') {
                    if let Some(u) = words[k].strip_prefix("--unit=") {
                        unit = Some(u.to_string());
                    } else if words[k] == "-p" || words[k] == "--property" {
                        k += 1;
                    }
                    k += 1;
                }
                let unit = unit.unwrap_or_else(|| panic!("{at}: systemd-run without --unit="));
                let argv: Vec<String> = self
                    .subst(Some(i), &words[k..].join(" "))
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                let cmd = self.unit_command(i, &argv, &[]);
                let h = self.lab.spawn(i, cmd, &service_label(i, &unit)).unwrap();
                self.services.insert((i, unit_name(&unit)), h);
                self.record(host, line, String::new());
            }
            _ => {
                let shell_line = self.subst(host, line);
                let mut cmd = match host {
                    Some(i) => {
                        let mut c = self.lab.command(i, "timeout");
                        c.env("IRONFENCE_HOSTNAME", hostname(i)).env(
                            "IRONFENCE_CONF_DIR",
                            self.subst(Some(i), "/usr/local/ironfence/conf"),
                        );
                        c
                    }
                    None => self.lab.switch_command("timeout"),
                };
                let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
                let out_path = self.lab.dir().join("command.out");
                let out_file = std::fs::File::create(&out_path).unwrap();
                let mut child = cmd
                    .arg(LINE_TIMEOUT_SECS.to_string())
                    .args(["sh", "-c", &shell_line])
                    .env(
                        "PATH",
                        format!(
                            "{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                        ),
                    )
                    .current_dir(workspace())
                    .stdin(Stdio::null())
                    .stdout(out_file.try_clone().unwrap())
                    .stderr(out_file)
                    .spawn()
                    .unwrap();
                // A service that died makes a waiting `until` loop hopeless: stop it at once
                // (our own child, by its PID) and report the service's log.
                let status = loop {
                    if let Some(st) = child.try_wait().unwrap() {
                        break Ok(st);
                    }
                    if let Some(((i, unit), _)) =
                        self.services.iter().find(|(_, h)| !self.lab.is_running(h))
                    {
                        let dead = format!("{unit} on pf{} exited", i + 1);
                        // SIGTERM: `timeout` passes it on to the shell it runs.
                        let _ = Command::new("kill")
                            .args(["-TERM", &child.id().to_string()])
                            .status();
                        let _ = child.wait();
                        break Err(dead);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                let text = std::fs::read_to_string(&out_path).unwrap_or_default();
                self.record(host, line, text);
                match status {
                    Ok(st) => assert!(st.success(), "{at}\nfailed: {st}\n{}", self.report()),
                    Err(dead) => panic!("{at}\n{dead}\n{}", self.report()),
                }
            }
        }
    }

    fn outputs_of<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a (String, String, String)> {
        self.transcript
            .iter()
            .filter(move |(_, l, _)| l.starts_with(prefix))
    }
}

fn unit_name(unit: &str) -> String {
    unit.trim_end_matches(".service").to_string()
}

fn unit_file(unit: &str) -> String {
    format!("{}.service", unit_name(unit))
}

fn service_label(i: usize, unit: &str) -> String {
    format!("pf{}-{}", i + 1, unit_name(unit))
}

/// `ExecStart=` and the `Environment=` pairs of a unit file's `[Service]` section.
fn parse_unit(text: &str) -> (Option<String>, Vec<(String, String)>) {
    let mut section = "";
    let mut exec = None;
    let mut env = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with('[') {
            section = l;
        } else if section == "[Service]" {
            if let Some(v) = l.strip_prefix("ExecStart=") {
                exec = Some(v.to_string());
            } else if let Some(v) = l.strip_prefix("Environment=") {
                for pair in v.split_whitespace() {
                    let (k, v) = pair.split_once('=').expect("Environment=K=V");
                    env.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    (exec, env)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn cluster_md() -> String {
    std::fs::read_to_string(workspace().join("docs/cluster.md")).unwrap()
}

/// The Access-Accept's VLAN in radtest's output, or a panic naming what came back.
fn radtest_vlan(output: &str) -> String {
    assert!(
        output.contains("Received Access-Accept"),
        "radtest got no Access-Accept:\n{output}"
    );
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tunnel-Private-Group-Id:0 = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no VLAN in the Access-Accept:\n{output}"))
}

/// Without root: the guide still contains the procedure the namespace test runs (so that test
/// cannot silently shrink to nothing), and the shipped units are the ones it installs.
#[test]
fn cluster_guide_holds_the_whole_procedure_and_the_units_never_force_a_new_cluster() {
    let blocks = walkthrough_blocks(&cluster_md());
    let commands: Vec<String> = blocks
        .iter()
        .filter(|b| b.file.is_none())
        .flat_map(|b| command_lines(&b.body))
        .collect();
    let files: Vec<&str> = blocks.iter().filter_map(|b| b.file.as_deref()).collect();
    for f in ["cluster.conf", "pf.conf", "switches.conf"] {
        assert!(
            files.iter().any(|p| p.ends_with(&format!("/conf/{f}"))),
            "docs/cluster.md must write {f} in a walkthrough block: {files:?}"
        );
    }
    // The steps, in this order.
    let steps = [
        "install -m 0644 packaging/systemd/ironfence-db.service",
        "ironfence checkup",
        "ironfence db generate-config",
        "db start --force-new-cluster",
        "ironfence db init-replication-user",
        "systemctl enable --now ironfence.service",
        "ironfence cluster sync --from=",
        "systemctl enable --now ironfence-db.service ironfence.service",
        "systemctl stop ironfence-db-bootstrap",
        "ironfence cluster status",
        "ironfence db status --all",
        "radtest",
        "ironfence cluster sync --as-master",
    ];
    let mut from = 0;
    for step in steps {
        let pos = commands[from..]
            .iter()
            .position(|c| c.contains(step))
            .unwrap_or_else(|| {
                panic!("docs/cluster.md: step {step:?} missing (or out of order) in {commands:#?}")
            });
        from += pos + 1;
    }
    // --force-new-cluster only ever in the one-off transient unit.
    for c in &commands {
        if c.contains("--force-new-cluster") {
            assert!(c.starts_with("systemd-run --unit="), "{c}");
        }
    }
    for unit in ["ironfence-db.service", "ironfence.service"] {
        let text =
            std::fs::read_to_string(workspace().join("packaging/systemd").join(unit)).unwrap();
        let (exec, _) = parse_unit(&text);
        let exec = exec.unwrap_or_else(|| panic!("{unit}: no ExecStart"));
        assert!(!exec.contains("force-new-cluster"), "{unit}: {exec}");
        assert!(
            !text
                .lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("force-new-cluster")),
            "{unit} must never carry --force-new-cluster outside comments"
        );
        assert!(
            exec.starts_with("/usr/local/bin/ironfence -c /usr/local/ironfence/conf "),
            "{unit}: {exec}"
        );
    }
    let db = std::fs::read_to_string(workspace().join("packaging/systemd/ironfence-db.service"))
        .unwrap();
    assert!(db.contains("\nRestart=on-failure\n") && db.contains("\nKillMode=mixed\n"));
    let serve =
        std::fs::read_to_string(workspace().join("packaging/systemd/ironfence.service")).unwrap();
    assert!(
        serve
            .lines()
            .any(|l| l.starts_with("After=") && l.contains("ironfence-db.service")),
        "serve is ordered after the database (and stops before it)"
    );
    let profile =
        std::fs::read_to_string(workspace().join("packaging/profile.d/ironfence.sh")).unwrap();
    assert!(profile.contains("\nexport IRONFENCE_CONF_DIR=/usr/local/ironfence/conf\n"));
    // The substitution the namespace test relies on.
    assert_eq!(
        replace_token("a 192.168.1.1 b 192.168.1.10 c", "192.168.1.1", "X"),
        "a X b 192.168.1.10 c"
    );
}

#[test]
fn docs_cluster_walkthrough_in_namespaces() {
    let t0 = Instant::now();
    let mut w = Walk::new();
    for b in walkthrough_blocks(&cluster_md()) {
        w.run_block(&b);
    }
    println!(
        "figure: docs/cluster.md walkthrough, 3 servers from nothing to a published change: {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // radtest through every server and the VIP: the registration VLAN (2), then the published
    // change (5) through every server.
    let vlans: Vec<String> = w
        .outputs_of("radtest")
        .map(|(_, _, o)| radtest_vlan(o))
        .collect();
    assert_eq!(vlans, ["2", "2", "2", "2", "5", "5", "5"], "{}", w.report());

    // The last `cluster status`: all three reachable, on one configuration version.
    let (_, _, status) = w
        .outputs_of("ironfence cluster status")
        .last()
        .expect("cluster status ran");
    let versions: Vec<String> = (0..3)
        .map(|i| {
            let row = status
                .lines()
                .find(|l| l.split_whitespace().any(|t| t == hostname(i)))
                .unwrap_or_else(|| panic!("{} missing from:\n{status}", hostname(i)));
            let t: Vec<&str> = row.split_whitespace().collect();
            let at = t.iter().position(|x| *x == hostname(i)).unwrap();
            assert_eq!(t[at + 2], "yes", "{} not reachable:\n{status}", hostname(i));
            t[at + 3].to_string()
        })
        .collect();
    assert!(
        versions.iter().all(|v| v == &versions[0] && v != "-"),
        "one version everywhere:\n{status}"
    );
    // `db status --all`: three Primary, Synced nodes in a cluster of 3.
    let (_, _, db) = w
        .outputs_of("ironfence db status --all")
        .last()
        .expect("db status --all ran");
    for i in 0..3 {
        let row = db
            .lines()
            .find(|l| l.starts_with(&hostname(i)))
            .unwrap_or_else(|| panic!("{} missing from:\n{db}", hostname(i)));
        let t: Vec<&str> = row.split_whitespace().collect();
        assert!(
            t.contains(&"Primary") && t.contains(&"Synced") && t.contains(&"3"),
            "{db}"
        );
    }
}

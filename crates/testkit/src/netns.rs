//! Multi-host lab: several "hosts" on one machine, each a Linux network namespace, all plugged
//! into one bridge that lives in a dedicated "switch" namespace.
//!
//! ```text
//!                       switch namespace  <prefix>s      (clients run here: 10.a.b.1)
//!          ┌──────────────────────────────────────────────────────────┐
//!          │                       br0  10.a.b.1/24                    │
//!          │        ┌───────────────┼────────────────┐                 │
//!          │       p0              p1               p2   ...          │  bridge ports
//!          └────────┼───────────────┼────────────────┼─────────────────┘  (partition(i) = p<i> down)
//!              veth │          veth │           veth │
//!          ┌────────┼───┐   ┌───────┼────┐   ┌───────┼────┐
//!          │ eth0 .11   │   │ eth0 .12   │   │ eth0 .13   │   ...  host namespaces <prefix>h<i>
//!          │ lo up      │   │ lo up      │   │ lo up      │        (ip_nonlocal_bind=1,
//!          └────────────┘   └────────────┘   └────────────┘         no default route)
//!             host 0           host 1           host 2
//!
//!   VIPs: 10.a.b.(100+k) are never assigned by the lab; keepalived & co. may claim them.
//! ```
//!
//! * **Nothing in the root namespace.** Every veth pair is created directly inside the lab's
//!   namespaces (`ip link add p<i> netns <switch> type veth peer name eth0 netns <host>`), so the
//!   lab's addresses and routes exist only there; no namespace has a default route, so no lab
//!   traffic can leave the machine.
//! * **Unique names.** A lab is named `if<pid>-<counter>`; its namespaces are `<name>s` (switch)
//!   and `<name>h<i>` (hosts), at most 15 characters for up to 100 labs per process. Interface
//!   names (`br0`, `p<i>`, `eth0`) are local to the lab's namespaces, so they never collide. The
//!   subnet `10.a.b.0/24` is derived from the pid and counter (distinct for every lab of one
//!   process); an accidental clash with another process's lab is harmless because each lab's
//!   addresses live in its own namespaces.
//! * **Processes.** [`Lab::spawn`] starts a process inside a host (via `ip netns exec`, which
//!   `exec`s, so the child's PID is the program's PID) and remembers it. Processes are only ever
//!   signalled by the PIDs the lab started, and only while they are unreaped children (so a PID
//!   cannot have been reused). Zombies count as dead and are reaped.
//! * **Cleanup.** [`Drop`] (which also runs while a failing test unwinds) stops every process
//!   (SIGTERM, up to 5 s, then SIGKILL, reaped), deletes the namespaces (which destroys the veths
//!   and the bridge) and removes the lab's temporary directory. If the test process itself is
//!   killed (so `Drop` cannot run), a small watchdog `sh` notices within a second and does the
//!   same: it signals only the recorded PIDs that are still inside the lab's namespaces, then
//!   deletes the namespaces and the directory.
//!
//! * **More networks and devices.** [`Lab::add_segment`] adds another bridge (`br<k>`, in the
//!   switch namespace, no address of its own: the guide's registration network eth1.2 is
//!   `192.168.2.0/24`, segment 1), [`Lab::attach`] plugs a host into it with an interface
//!   name of its choice (`eth1.2`), and [`Lab::add_device`] adds a "device": a namespace of
//!   its own (`<name>d<j>`) with one `eth0` of a given MAC on that segment and no address (a
//!   DHCP client gives it one). Devices run programs like hosts ([`Lab::device_command`],
//!   [`Lab::spawn_device`]) and are cleaned up the same way.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and the Debian packages `iproute2` (`ip`) and
//! `iputils-ping` (`ping`, used for readiness checks); see [`require_lab`].

use anyhow::{Context, bail};
use std::ffi::OsStr;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Hosts get `.11 ..= .(11+n-1)`; `.100+` is kept for VIPs.
const MAX_HOSTS: usize = 88;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const DROP_GRACE: Duration = Duration::from_secs(5);
const PIDS_FILE: &str = ".pids";
const NAMESPACES_FILE: &str = ".namespaces";
/// [`ProcHandle::host`] of a process in device `j` is `DEVICE_BASE + j`.
pub const DEVICE_BASE: usize = 1000;

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A process started by [`Lab::spawn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcHandle {
    pub pid: u32,
    pub host: usize,
    pub label: String,
}

/// A network added by [`Lab::add_segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    index: u8,
}

impl Segment {
    /// `192.168.(k+1).octet`.
    pub fn ip(&self, octet: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, self.index + 1, octet)
    }

    /// The bridge's name in the switch namespace (`br<k>`).
    pub fn bridge(&self) -> String {
        format!("br{}", self.index)
    }
}

#[derive(Debug)]
struct Managed {
    handle: ProcHandle,
    child: Child,
}

/// A network-namespace lab of `n` hosts on one bridge. See the module docs.
#[derive(Debug)]
pub struct Lab {
    name: String,
    ip: PathBuf,
    ping: PathBuf,
    net: [u8; 2],
    switch_ns: String,
    hosts: Vec<String>,
    /// Device namespaces (`<name>d<j>`), see [`Lab::add_device`].
    devices: Vec<String>,
    /// Segments added so far (bridge `br<k>` is segment k; br0 is the hosts' network).
    segments: u8,
    /// Namespaces actually created (deleted on drop), switch first.
    created: Vec<String>,
    /// Behind a mutex so that `is_running(&self)` can reap.
    procs: Mutex<Vec<Managed>>,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
}

/// Checks that this machine can run a [`Lab`]: root, `ip` and `ping` installed, and
/// `ip netns add`/`del` work. The error says what is missing; tests that need a lab should
/// fail with it rather than skip.
pub fn require_lab() -> anyhow::Result<()> {
    let ip = find_tool("ip", "iproute2")?;
    find_tool("ping", "iputils-ping")?;
    let euid = current_euid();
    if euid != 0 {
        bail!(
            "the netns lab needs root (euid is {euid}): it creates network namespaces, a bridge \
             and veth pairs. Run the tests as root, e.g. `sudo -E cargo test`, or in a \
             privileged container"
        );
    }
    let probe = format!(
        "ifp{}-{}",
        std::process::id(),
        LAB_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new(&ip)
        .args(["netns", "add", &probe])
        .stdin(Stdio::null())
        .output()
        .context("running `ip netns add`")?;
    if !out.status.success() {
        bail!(
            "`ip netns add {probe}` failed ({}): {} — the netns lab needs CAP_SYS_ADMIN and \
             CAP_NET_ADMIN (a privileged container when run in Docker)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    run(Command::new(&ip).args(["netns", "del", &probe]))?;
    Ok(())
}

impl Lab {
    /// Builds `n` hosts (1 ≤ n ≤ 88) on one bridge and waits (≤ 10 s per host) until each host
    /// can ping the switch address. On error everything created so far is removed.
    pub fn new(n: usize) -> anyhow::Result<Lab> {
        if n == 0 || n > MAX_HOSTS {
            bail!("Lab::new({n}): between 1 and {MAX_HOSTS} hosts");
        }
        let ip = find_tool("ip", "iproute2")?;
        let ping = find_tool("ping", "iputils-ping")?;
        let pid = std::process::id();

        // A name none of whose namespaces exists yet (one left over by a killed run of a
        // process that had the same PID is skipped, never touched).
        let (counter, name) = loop {
            let c = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("if{pid}-{c}");
            let taken = Path::new("/run/netns").join(format!("{name}s")).exists()
                || (0..n).any(|i| Path::new("/run/netns").join(format!("{name}h{i}")).exists());
            if !taken {
                break (c, name);
            }
            if c > 10_000 {
                bail!("no free lab name for pid {pid}");
            }
        };
        let v = (u64::from(pid) * 131 + u64::from(counter)) % (64 * 256);
        let net = [64 + (v / 256) as u8, (v % 256) as u8];

        let dir = tempfile::Builder::new()
            .prefix(&format!("ironfence-netns-{name}-"))
            .tempdir()
            .context("creating the lab's temporary directory")?;
        let dir_path = dir.path().to_path_buf();
        let mut lab = Lab {
            switch_ns: format!("{name}s"),
            hosts: (0..n).map(|i| format!("{name}h{i}")).collect(),
            devices: Vec::new(),
            segments: 0,
            name,
            ip,
            ping,
            net,
            created: Vec::new(),
            procs: Mutex::new(Vec::new()),
            watchdog: None,
            dir: Some(dir),
            dir_path,
        };
        // From here on, every early return drops `lab`, which undoes what was done.
        lab.watchdog = Some(lab.spawn_watchdog()?);
        lab.build()
            .with_context(|| format!("building lab {}", lab.name))?;
        Ok(lab)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let sw = self.switch_ns.clone();
        self.add_ns(&sw)?;
        let net = self.prefix();
        self.ip_run(&["-n", &sw, "link", "set", "lo", "up"])?;
        self.ip_run(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        self.ip_run(&["-n", &sw, "link", "set", "br0", "up"])?;
        self.ip_run(&[
            "-n",
            &sw,
            "addr",
            "add",
            &format!("{net}.1/24"),
            "dev",
            "br0",
        ])?;
        for i in 0..self.hosts.len() {
            let h = self.hosts[i].clone();
            let port = port_name(i);
            self.add_ns(&h)?;
            self.ip_run(&[
                "link", "add", &port, "netns", &sw, "type", "veth", "peer", "name", "eth0",
                "netns", &h,
            ])?;
            self.ip_run(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            self.ip_run(&["-n", &h, "link", "set", "lo", "up"])?;
            self.ip_run(&["-n", &h, "link", "set", "eth0", "up"])?;
            self.ip_run(&[
                "-n",
                &h,
                "addr",
                "add",
                &format!("{}/24", self.host_ip(i)),
                "dev",
                "eth0",
            ])?;
            // Per-netns sysctl: /proc/sys/net shows the namespace of the process opening it.
            run(self
                .command(i, "sh")
                .args(["-c", "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind"]))
            .with_context(|| format!("setting ip_nonlocal_bind in {h}"))?;
        }
        let sw_ip = self.switch_ip();
        for i in 0..self.hosts.len() {
            let deadline = Instant::now() + READY_TIMEOUT;
            while !self.ping(i, sw_ip)? {
                if Instant::now() >= deadline {
                    bail!(
                        "host {i} ({}) cannot ping the switch {sw_ip} after {READY_TIMEOUT:?}",
                        self.hosts[i]
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    fn add_ns(&mut self, ns: &str) -> anyhow::Result<()> {
        // Recorded for the watchdog before it exists, so a kill in between leaks nothing.
        use std::io::Write;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir_path.join(NAMESPACES_FILE))
            .and_then(|mut f| writeln!(f, "{ns}"))
            .context("recording the namespace for the watchdog")?;
        self.ip_run(&["netns", "add", ns])?;
        self.created.push(ns.to_string());
        Ok(())
    }

    fn ip_run(&self, args: &[&str]) -> anyhow::Result<()> {
        run(Command::new(&self.ip).args(args))
    }

    fn prefix(&self) -> String {
        format!("10.{}.{}", self.net[0], self.net[1])
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Always false (a lab has at least one host).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The lab's name (`if<pid>-<counter>`), the prefix of all its namespace names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `10.a.b.(11+i)`.
    pub fn host_ip(&self, i: usize) -> Ipv4Addr {
        self.check_host(i);
        Ipv4Addr::new(10, self.net[0], self.net[1], 11 + i as u8)
    }

    /// `10.a.b.1`, on the bridge in the switch namespace.
    pub fn switch_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net[0], self.net[1], 1)
    }

    /// `10.a.b.(100+k)`: addresses in the lab's subnet that the lab never assigns.
    pub fn vip(&self, k: u8) -> Ipv4Addr {
        assert!(k <= 154, "vip({k}): k must be ≤ 154");
        Ipv4Addr::new(10, self.net[0], self.net[1], 100 + k)
    }

    /// Name of host `i`'s namespace.
    pub fn ns(&self, i: usize) -> &str {
        self.check_host(i);
        &self.hosts[i]
    }

    /// Name of the switch namespace.
    pub fn switch_ns(&self) -> &str {
        &self.switch_ns
    }

    /// The lab's temporary directory (process logs go here; removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    fn check_host(&self, i: usize) {
        assert!(
            i < self.hosts.len(),
            "host {i} out of range: the lab has {} hosts",
            self.hosts.len()
        );
    }

    /// `ip netns exec <ns of host i> <program>`; add arguments with `.arg(s)`.
    pub fn command(&self, i: usize, program: &str) -> Command {
        self.check_host(i);
        self.ns_command(&self.hosts[i], program)
    }

    /// `ip netns exec <switch ns> <program>`.
    pub fn switch_command(&self, program: &str) -> Command {
        self.ns_command(&self.switch_ns, program)
    }

    fn ns_command(&self, ns: &str, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// One `ping -c1 -W1 <to>` from host `i`: `Ok(true)` if answered. `Err` only if ping
    /// could not be run at all.
    pub fn ping(&self, i: usize, to: Ipv4Addr) -> anyhow::Result<bool> {
        self.check_host(i);
        self.ping_from(&self.hosts[i], to)
    }

    /// Like [`Lab::ping`], from the switch namespace.
    pub fn switch_ping(&self, to: Ipv4Addr) -> anyhow::Result<bool> {
        self.ping_from(&self.switch_ns, to)
    }

    fn ping_from(&self, ns: &str, to: Ipv4Addr) -> anyhow::Result<bool> {
        let status = self
            .ns_command(ns, &self.ping)
            .args(["-n", "-q", "-c1", "-W1"])
            .arg(to.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running ping in {ns}"))?;
        Ok(status.success())
    }

    /// Spawns a long-running process in host `i` and remembers it for cleanup. `cmd` may be a
    /// plain command (`Command::new("sleep")`, which is wrapped in `ip netns exec`, keeping its
    /// arguments, environment changes and working directory) or one from
    /// [`Lab::command`]`(i, …)`. stdin is /dev/null; stdout and stderr are appended to
    /// `<dir>/<label>.log` (see [`Lab::log`]).
    pub fn spawn(&mut self, i: usize, cmd: Command, label: &str) -> anyhow::Result<ProcHandle> {
        self.check_host(i);
        let ns = self.hosts[i].clone();
        self.spawn_in(i, &ns, cmd, label)
    }

    /// [`Lab::spawn`] in device `j` (its handle's `host` is [`DEVICE_BASE`]` + j`).
    pub fn spawn_device(
        &mut self,
        j: usize,
        cmd: Command,
        label: &str,
    ) -> anyhow::Result<ProcHandle> {
        let ns = self.device_ns(j).to_string();
        self.spawn_in(DEVICE_BASE + j, &ns, cmd, label)
    }

    fn spawn_in(
        &mut self,
        host: usize,
        ns: &str,
        cmd: Command,
        label: &str,
    ) -> anyhow::Result<ProcHandle> {
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || label.starts_with('.')
        {
            bail!("invalid label {label:?}: letters, digits, '-', '_' and '.' (not first) only");
        }
        let mut cmd = self.wrap(ns, cmd)?;
        let log_path = self.log_path(label);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {label} in {ns}: {cmd:?}"))?;
        let handle = ProcHandle {
            pid: child.id(),
            host,
            label: label.to_string(),
        };
        // Record it for the watchdog first, then own it (so Drop stops it from now on).
        let line = format!("{} {ns}\n", handle.pid);
        self.procs
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(Managed {
                handle: handle.clone(),
                child,
            });
        use std::io::Write;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir_path.join(PIDS_FILE))
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .context("recording the PID for the watchdog")?;
        Ok(handle)
    }

    fn wrap(&self, ns: &str, cmd: Command) -> anyhow::Result<Command> {
        let args: Vec<&OsStr> = cmd.get_args().collect();
        let is_ip = cmd.get_program() == self.ip.as_os_str() || cmd.get_program() == "ip";
        if is_ip && args.len() >= 3 && args[0] == "netns" && args[1] == "exec" {
            if args[2] != OsStr::new(ns) {
                bail!(
                    "spawn: the command runs in namespace {:?}, not in {ns}",
                    args[2]
                );
            }
            return Ok(cmd);
        }
        let mut c = self.ns_command(ns, cmd.get_program());
        c.args(args);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        Ok(c)
    }

    /// Runs `f` on the managed process `h` (the newest entry wins, should a reaped PID ever
    /// have been reused by a later spawn). None if the lab did not start it.
    fn with_proc<T>(&self, h: &ProcHandle, f: impl FnOnce(&mut Child) -> T) -> Option<T> {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs
            .iter_mut()
            .rev()
            .find(|m| m.handle.pid == h.pid && m.handle.host == h.host)
            .map(|m| f(&mut m.child))
    }

    /// SIGKILL and reap (no effect if it has already exited).
    pub fn kill9(&mut self, h: &ProcHandle) {
        self.with_proc(h, |child| {
            // std never signals a child whose exit status it has already collected.
            let _ = child.kill();
            let _ = child.wait();
        });
    }

    /// SIGTERM, then wait up to `timeout` for it to exit (and reap it). True if it is gone.
    pub fn stop(&mut self, h: &ProcHandle, timeout: Duration) -> bool {
        self.with_proc(h, |child| match child.try_wait() {
            Ok(Some(_)) => true,
            Ok(None) => {
                signal(child.id(), libc::SIGTERM);
                wait_exit(child, timeout)
            }
            Err(_) => false,
        })
        .unwrap_or_else(|| !pid_alive(h.pid))
    }

    /// True while the process runs. A zombie counts as dead and is reaped (`waitpid`), so the
    /// answer never lags behind the exit.
    pub fn is_running(&self, h: &ProcHandle) -> bool {
        self.with_proc(h, |child| matches!(child.try_wait(), Ok(None)))
            .unwrap_or_else(|| pid_alive(h.pid))
    }

    /// Cuts host `i` off the bridge (its bridge port goes down; `eth0` loses carrier). The
    /// other hosts and the switch still reach each other.
    pub fn partition(&self, i: usize) -> anyhow::Result<()> {
        self.check_host(i);
        self.ip_run(&["-n", &self.switch_ns, "link", "set", &port_name(i), "down"])
    }

    /// Undoes [`Lab::partition`], and forgets neighbour (ARP) entries left INCOMPLETE or
    /// FAILED by traffic sent during the partition, in every namespace of the lab. Without
    /// that, the first packet to such an address after the heal is dropped when the stale
    /// entry's last probe runs out (measured: the first ping fails, the next succeeds).
    pub fn heal(&self, i: usize) -> anyhow::Result<()> {
        self.check_host(i);
        self.ip_run(&["-n", &self.switch_ns, "link", "set", &port_name(i), "up"])?;
        let stale = ["nud", "incomplete", "nud", "failed"];
        let mut args = vec!["-n", &self.switch_ns, "neigh", "flush", "dev", "br0"];
        args.extend(stale);
        self.ip_run(&args)?;
        for h in &self.hosts {
            let mut args = vec!["-n", h.as_str(), "neigh", "flush", "dev", "eth0"];
            args.extend(stale);
            self.ip_run(&args)?;
        }
        Ok(())
    }

    /// Adds another network: bridge `br<k>` in the switch namespace (k = 1, 2, …), subnet
    /// `192.168.(k+1).0/24` (segment 1 is the guide's registration network 192.168.2.0/24).
    /// Only namespaces plugged into it with [`Lab::attach`] / [`Lab::add_device`] reach it.
    pub fn add_segment(&mut self) -> anyhow::Result<Segment> {
        if self.segments >= 200 {
            bail!("add_segment: at most 200 segments");
        }
        self.segments += 1;
        let seg = Segment {
            index: self.segments,
        };
        let sw = self.switch_ns.clone();
        let br = seg.bridge();
        self.ip_run(&["-n", &sw, "link", "add", &br, "type", "bridge"])?;
        // Forward at once (no STP listening delay) so a DHCP client's first DISCOVER passes.
        self.ip_run(&[
            "-n",
            &sw,
            "link",
            "set",
            &br,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        self.ip_run(&["-n", &sw, "link", "set", &br, "up"])?;
        Ok(seg)
    }

    /// Plugs host `i` into `seg` with an interface named `ifname` (≤ 15 characters, e.g.
    /// `eth1.2`), addressed `seg.ip(octet)/24` when `octet` is given.
    pub fn attach(
        &mut self,
        i: usize,
        seg: &Segment,
        ifname: &str,
        octet: Option<u8>,
    ) -> anyhow::Result<()> {
        self.check_host(i);
        let (sw, h) = (self.switch_ns.clone(), self.hosts[i].clone());
        let port = format!("s{}p{i}", seg.index);
        self.ip_run(&[
            "link", "add", &port, "netns", &sw, "type", "veth", "peer", "name", ifname, "netns", &h,
        ])?;
        self.ip_run(&[
            "-n",
            &sw,
            "link",
            "set",
            &port,
            "master",
            &seg.bridge(),
            "up",
        ])?;
        self.ip_run(&["-n", &h, "link", "set", ifname, "up"])?;
        if let Some(o) = octet {
            let addr = format!("{}/24", seg.ip(o));
            self.ip_run(&["-n", &h, "addr", "add", &addr, "dev", ifname])?;
        }
        Ok(())
    }

    /// Adds a device on `seg`: namespace `<name>d<j>` with `lo` and one `eth0` of MAC `mac`,
    /// up, without an address. Returns `j`.
    pub fn add_device(&mut self, seg: &Segment, mac: [u8; 6]) -> anyhow::Result<usize> {
        let j = self.devices.len();
        let ns = format!("{}d{j}", self.name);
        self.add_ns(&ns)?;
        self.devices.push(ns.clone());
        let sw = self.switch_ns.clone();
        let port = format!("s{}d{j}", seg.index);
        let mac = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        self.ip_run(&[
            "link", "add", &port, "netns", &sw, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ])?;
        self.ip_run(&[
            "-n",
            &sw,
            "link",
            "set",
            &port,
            "master",
            &seg.bridge(),
            "up",
        ])?;
        self.ip_run(&["-n", &ns, "link", "set", "eth0", "address", &mac])?;
        self.ip_run(&["-n", &ns, "link", "set", "lo", "up"])?;
        self.ip_run(&["-n", &ns, "link", "set", "eth0", "up"])?;
        Ok(j)
    }

    /// Name of device `j`'s namespace.
    pub fn device_ns(&self, j: usize) -> &str {
        assert!(
            j < self.devices.len(),
            "device {j} out of range: the lab has {} devices",
            self.devices.len()
        );
        &self.devices[j]
    }

    /// `ip netns exec <ns of device j> <program>`.
    pub fn device_command(&self, j: usize, program: &str) -> Command {
        self.ns_command(self.device_ns(j), program)
    }

    /// Runs `f` on a new thread that has entered namespace `ns` (one of this lab's: a host's,
    /// a device's or the switch's) and returns its result. Sockets created by `f` belong to
    /// that namespace and keep working from any thread afterwards: a test can run a peer (a
    /// NAS stand-in, a probe) inside the lab without a helper process.
    pub fn in_namespace<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        if !self.created.iter().any(|c| c == ns) {
            bail!("in_namespace: {ns} is not a namespace of lab {}", self.name);
        }
        let path = Path::new("/run/netns").join(ns);
        let file = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            #[allow(unsafe_code)]
            // SAFETY: setns(2) on a valid namespace descriptor affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(anyhow::anyhow!(
                    "setns: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("in_namespace: the closure panicked"))?
    }

    /// Contents of `<dir>/<label>.log` so far (empty if there is none).
    pub fn log(&self, label: &str) -> String {
        fs::read(self.log_path(label))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_path(&self, label: &str) -> PathBuf {
        self.dir_path.join(format!("{label}.log"))
    }

    /// `sh` that waits for this process to die (its parent changes) and then cleans up what
    /// Drop could not: recorded PIDs still inside the lab's namespaces, the namespaces, the dir.
    fn spawn_watchdog(&self) -> anyhow::Result<Child> {
        let me = std::process::id();
        let dir = shell_quote(&self.dir_path.to_string_lossy());
        let script = format!(
            r#"
while [ "$(cut -d' ' -f4 /proc/$$/stat)" = "{me}" ]; do sleep 1; done
sig() {{
  [ -f {dir}/{PIDS_FILE} ] || return 0
  while read -r p ns; do
    a=$(stat -L -c %i /proc/"$p"/ns/net 2>/dev/null); b=$(stat -L -c %i /run/netns/"$ns" 2>/dev/null)
    [ -n "$a" ] && [ "$a" = "$b" ] && kill -"$1" "$p" 2>/dev/null
  done < {dir}/{PIDS_FILE}
}}
sig TERM; sleep 2; sig KILL
[ -f {dir}/{NAMESPACES_FILE} ] && while read -r ns; do {ip} netns del "$ns" 2>/dev/null; done < {dir}/{NAMESPACES_FILE}
rm -rf {dir}
"#,
            ip = shell_quote(&self.ip.to_string_lossy()),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning the lab watchdog")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The watchdog first, so that it never acts on PIDs we reap below.
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let procs = self.procs.get_mut().unwrap_or_else(|e| e.into_inner());
        for m in procs.iter_mut() {
            if let Ok(None) = m.child.try_wait() {
                signal(m.child.id(), libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + DROP_GRACE;
        for m in procs.iter_mut() {
            let left = deadline.saturating_duration_since(Instant::now());
            if !wait_exit(&mut m.child, left) {
                let _ = m.child.kill();
                let _ = m.child.wait();
            }
        }
        for ns in self.created.iter().rev() {
            // Processes the lab did not start (children of spawned ones) are only reported.
            if let Ok(out) = Command::new(&self.ip).args(["netns", "pids", ns]).output() {
                let pids = String::from_utf8_lossy(&out.stdout);
                let pids: Vec<&str> = pids.split_whitespace().collect();
                if !pids.is_empty() {
                    eprintln!(
                        "testkit::netns: processes not started by the lab still in {ns}: {pids:?} \
                         (the namespace lives on until they exit)"
                    );
                }
            }
            if let Err(e) = run(Command::new(&self.ip).args(["netns", "del", ns])) {
                eprintln!("testkit::netns: {e:#}");
            }
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            eprintln!(
                "testkit::netns: could not remove {}: {e}",
                self.dir_path.display()
            );
        }
    }
}

fn port_name(i: usize) -> String {
    format!("p{i}")
}

fn find_tool(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "`{name}` not found: the netns lab needs it. Install it with \
                 `sudo apt-get install {package}` (Debian/Ubuntu)"
            )
        })
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

fn current_euid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Waits up to `timeout` for `child` to exit, reaping it. True if it has exited.
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return false,
        }
    }
}

/// Alive and not a zombie, for a PID the lab does not know.
fn pid_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z')
}

/// The state letter from `/proc/<pid>/stat` (after the `(comm)` field), or None if gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Sends `sig` to `pid`, one of our own unreaped children (so the PID cannot be reused).
fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is positive (never a group).
    unsafe {
        libc::kill(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_state_of_self_is_alive() {
        // The main thread (whose state /proc/<pid>/stat shows) may be sleeping.
        assert!(matches!(proc_state(std::process::id()), Some('R' | 'S')));
        assert!(pid_alive(std::process::id()));
        assert_eq!(proc_state(u32::MAX), None);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

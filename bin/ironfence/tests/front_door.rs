//! The cluster's front door, end to end, in a namespace lab: three servers on a real MariaDB
//! Galera cluster, each `ironfence serve` running its own keepalived (VIPs) and haproxy, and
//! the switch namespace sending MAB with `radclient` to the management VIP.
//!
//! - the VIP lands on the first server and `cluster status` says who holds it;
//! - MAB through the VIP while the holder is killed (-9 of `serve` and keepalived) and while it
//!   is cut off the network: 0 failed authentications with the switch's normal retransmits
//!   (`radclient -r 3 -t 1`), the VIP back on the first server when it returns, and never on two
//!   connected servers at once (sampled every ~20 ms; a handover is allowed one sample of
//!   overlap, the time keepalived takes to drop the address after the higher-priority advert);
//! - haproxy on the VIP: `/health` through it; the stats page refuses without the account and
//!   answers with it.
//!
//! Failover times are printed as `figure:` lines, never asserted. `bench_vip_failover`
//! (ignored; `bench/failover.sh`) repeats kill and partition trials and prints median and max
//! for a VRRP mode given in `IRONFENCE_BENCH_VRRP` (see there).

#[path = "common/galera_lab.rs"]
mod galera_lab;

use galera_lab::{Fixture, GaleraLab, eventually, name, text};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// TEST FIXTURE secrets, only for this test.
const WS_USER: &str = "ws-front-door";
const WS_PASS: &str = "ws-front-door-test-fixture-password-01";
const DB_PASS: &str = "db-front-door-test-fixture-password-01";
const SST_PASS: &str = "sst-front-door-test-fixture-password-1";
const SECRET: &str = "radius-front-door-test-fixture-secret1";
const VRRP_PASS: &str = "vrrpkey-fixture";
const STATS_USER: &str = "stats-fixture";
const STATS_PASS: &str = "stats-front-door-test-fixture-pass";
const FIXTURE: Fixture = Fixture {
    ws_user: WS_USER,
    ws_pass: WS_PASS,
    db_pass: DB_PASS,
    sst_pass: SST_PASS,
    secret: SECRET,
    vrrp_pass: VRRP_PASS,
};

/// No host, in [`Sampler`]'s "excluded host" slot.
const NOBODY: usize = usize::MAX;

struct Door {
    g: GaleraLab,
}

impl std::ops::Deref for Door {
    type Target = GaleraLab;
    fn deref(&self) -> &GaleraLab {
        &self.g
    }
}

impl std::ops::DerefMut for Door {
    fn deref_mut(&mut self) -> &mut GaleraLab {
        &mut self.g
    }
}

impl Door {
    /// Bootstraps pf1, joins pf2 and pf3 and starts `serve` everywhere, with the front door
    /// configured (`active_active`: extra `[active_active]` lines).
    fn up(active_active: &str) -> Door {
        let extra = format!(
            "haproxy_stats_user = {STATS_USER}\nhaproxy_stats_pass = {STATS_PASS}\n{active_active}"
        );
        let mut d = Door {
            g: GaleraLab::new(3, FIXTURE).with_front_door(&extra),
        };
        d.bring_up(|_, _| {});
        d
    }

    fn vip(&self) -> Ipv4Addr {
        self.lab.vip(0)
    }

    /// Hosts whose eth0 carries the VIP right now.
    fn holders(&self) -> Vec<usize> {
        holders(&host_namespaces(&self.lab), self.vip())
    }

    fn wait_holder(&self, i: usize, timeout: Duration) -> Duration {
        eventually(
            &format!("the VIP on {} only", name(i)),
            timeout,
            || self.holders() == vec![i],
            || format!("holders {:?}\n{}", self.holders(), self.logs()),
        )
    }

    /// keepalived's processes started by host i's `serve` (from its pid files, checked by
    /// their command line so that nothing else is ever signalled): the VRRP child first — it
    /// holds the addresses, and keepalived gives its children a parent-death SIGTERM, so
    /// killing the parent first would let the child hand over cleanly.
    fn keepalived_pids(&self, i: usize) -> Vec<u32> {
        let run = self.roots[i].join("state/run");
        let mut pids = Vec::new();
        for file in ["keepalived-vrrp.pid", "keepalived.pid"] {
            let path = run.join(file);
            let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("keepalived") && cmdline.contains(&*self.roots[i].to_string_lossy())
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// kill -9 of host i's `serve` and of its keepalived (the holder's sudden death).
    fn kill_server(&mut self, i: usize) {
        let keepalived = self.keepalived_pids(i);
        assert!(
            !keepalived.is_empty(),
            "no keepalived of {} found under state/run\n{}",
            name(i),
            self.logs()
        );
        // keepalived first: killed after serve, it would get the parent-death SIGTERM and
        // hand the VIPs over with a priority-0 advert — the easy case, not a sudden death.
        for pid in keepalived {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let serve = self.g.serve[i].take().expect("serve running");
        self.g.lab.kill9(&serve);
    }

    /// The first moment after `since` at which MAB through the VIP is answered, probing with
    /// 100 ms tries.
    fn first_answer_after(&self, since: Instant, timeout: Duration) -> Duration {
        let ns = self.lab.switch_ns().to_string();
        let mut moved: Option<Duration> = None;
        loop {
            if moved.is_none() && self.holders().iter().any(|&h| h != 0) {
                moved = Some(since.elapsed());
            }
            if mab(&ns, self.vip(), "02:00:00:00:ff:01", "0.1", "1").is_some() {
                let answered = since.elapsed();
                println!(
                    "  (VIP on another server after {:.3} s, answered after {:.3} s)",
                    moved.unwrap_or(answered).as_secs_f64(),
                    answered.as_secs_f64()
                );
                return answered;
            }
            assert!(
                since.elapsed() < timeout,
                "no answer through the VIP {timeout:?} after the failure\n{}",
                self.logs()
            );
        }
    }
}

/// The namespaces of the lab's hosts, in order.
fn host_namespaces(lab: &ironfence_testkit::netns::Lab) -> Vec<String> {
    (0..lab.len()).map(|i| lab.ns(i).to_string()).collect()
}

fn holders(namespaces: &[String], vip: Ipv4Addr) -> Vec<usize> {
    let needle = format!(" {vip}/");
    namespaces
        .iter()
        .enumerate()
        .filter(|(_, ns)| {
            let o = Command::new("ip")
                .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).contains(&needle)
        })
        .map(|(i, _)| i)
        .collect()
}

/// One MAB request by radclient from the switch namespace: `Some(VLAN)` when answered.
fn mab(switch_ns: &str, to: Ipv4Addr, mac: &str, timeout_s: &str, tries: &str) -> Option<String> {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            switch_ns,
            "radclient",
            "-x",
            "-r",
            tries,
            "-t",
        ])
        .arg(timeout_s)
        .arg(format!("{to}:1812"))
        .args(["auth", SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "User-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nService-Type = Call-Check\nMessage-Authenticator = 0x00\n"
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("Received Access-Accept") {
        return None;
    }
    Some(
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Tunnel-Private-Group-Id:0 = "))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default(),
    )
}

/// A switch that keeps authenticating new devices through the VIP, one at a time, with the
/// retransmits of a real NAS (`-r 3 -t 1`), counting answers and failures.
struct Switch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, Vec<String>)>>,
}

impl Switch {
    fn start(switch_ns: String, vip: Ipv4Addr) -> Switch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut answered, mut failed) = (0u64, Vec::new());
            let mut n = 0u32;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let mac = format!(
                    "02:00:00:{:02x}:{:02x}:{:02x}",
                    n >> 16,
                    (n >> 8) & 0xff,
                    n & 0xff
                );
                match mab(&switch_ns, vip, &mac, "1", "3") {
                    Some(_) => answered += 1,
                    None => failed.push(mac),
                }
            }
            (answered, failed)
        });
        Switch {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Samples which connected, live hosts hold the VIP, every ~20 ms.
struct Sampler {
    stop: Arc<AtomicBool>,
    /// The host cut off the network, or killed and not restarted yet (its address is stale:
    /// nothing on it can answer, and its restart removes it), or NOBODY.
    excluded: Arc<AtomicUsize>,
    thread: Option<JoinHandle<SampleReport>>,
}

#[derive(Debug, Default)]
struct SampleReport {
    samples: u64,
    /// Samples in which two connected hosts held the VIP.
    overlaps: u64,
    /// The longest run of consecutive such samples.
    longest_overlap: u64,
    /// (seconds since the sampler started, holders) of the first overlapping samples.
    overlap_samples: Vec<(f64, Vec<usize>)>,
}

impl Sampler {
    fn start(namespaces: Vec<String>, vip: Ipv4Addr) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let excluded = Arc::new(AtomicUsize::new(NOBODY));
        let (flag, cut) = (stop.clone(), excluded.clone());
        let thread = std::thread::spawn(move || {
            let mut r = SampleReport::default();
            let mut run = 0;
            let t0 = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let cut_now = cut.load(Ordering::Relaxed);
                let live: Vec<usize> = holders(&namespaces, vip)
                    .into_iter()
                    .filter(|&h| h != cut_now)
                    .collect();
                r.samples += 1;
                if live.len() > 1 {
                    if r.overlap_samples.len() < 20 {
                        r.overlap_samples.push((t0.elapsed().as_secs_f64(), live));
                    }
                    r.overlaps += 1;
                    run += 1;
                    r.longest_overlap = r.longest_overlap.max(run);
                } else {
                    run = 0;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            r
        });
        Sampler {
            stop,
            excluded,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> SampleReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// `curl` from the switch namespace: (HTTP status, body).
fn curl(switch_ns: &str, url: &str, user: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", switch_ns, "curl", "-s", "-m", "5"]);
    if let Some(u) = user {
        cmd.args(["-u", u]);
    }
    let o = cmd
        .args(["-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn vips_move_on_failure_with_no_failed_authentication() {
    let mut d = Door::up("");
    let vip = d.vip();
    let ns = d.lab.switch_ns().to_string();

    // The VIP lands on the first server, and every server's `cluster status` says so.
    let t = d.wait_holder(0, Duration::from_secs(30));
    println!(
        "figure: VIP on pf1 {:.2} s after the last server was ready",
        t.as_secs_f64()
    );
    eventually(
        "cluster status names pf1 as the VIP holder",
        Duration::from_secs(15),
        || {
            let s = text(&d.cli(2, &["cluster", "status"]));
            s.lines()
                .any(|l| l.contains(&name(0)) && l.contains(&vip.to_string()))
        },
        || text(&d.cli(2, &["cluster", "status"])),
    );
    assert_eq!(
        mab(&ns, vip, "02:00:00:00:00:01", "1", "3").as_deref(),
        Some("2"),
        "an unknown device through the VIP gets the registration VLAN"
    );

    // haproxy on the VIP: the health endpoint, and the stats page behind its account.
    let (code, body) = curl(&ns, &format!("http://{vip}/health"), None);
    assert_eq!(code, 200, "GET /health through haproxy: {body}");
    let stats = format!("http://{vip}:1025/stats");
    assert_eq!(
        curl(&ns, &stats, None).0,
        401,
        "stats page without credentials"
    );
    assert_eq!(
        curl(&ns, &stats, Some("nobody:wrong")).0,
        401,
        "stats page with a wrong account"
    );
    let (code, body) = curl(&ns, &stats, Some(&format!("{STATS_USER}:{STATS_PASS}")));
    assert_eq!(code, 200, "stats page with the account");
    assert!(body.contains("Statistics Report"), "{body}");

    let switch = Switch::start(ns.clone(), vip);
    let sampler = Sampler::start(host_namespaces(&d.lab), vip);
    let t0 = Instant::now();
    let phase = |what: &str| println!("  [{:.2} s] {what}", t0.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(1));

    // 1. The holder dies: kill -9 of serve and keepalived.
    phase("kill -9 of pf1's keepalived and serve");
    sampler.excluded.store(0, Ordering::Relaxed);
    let killed = Instant::now();
    d.kill_server(0);
    let took = d.first_answer_after(killed, Duration::from_secs(30));
    println!(
        "figure: kill -9 of the holder -> MAB answered through the VIP: {:.2} s",
        took.as_secs_f64()
    );
    let live: Vec<usize> = d.holders().into_iter().filter(|&h| h != 0).collect();
    assert_eq!(live.len(), 1, "one live holder after the kill: {live:?}");
    // It comes back: the stale address of the killed keepalived is removed before keepalived
    // starts again, and the VIP returns once pf1 is ready.
    phase("restart of pf1's serve");
    d.start_serve(0);
    eventually(
        "the killed holder's stale VIP removed",
        Duration::from_secs(20),
        || {
            let h = d.holders();
            !h.contains(&0) || h == vec![0]
        },
        || format!("holders {:?}\n{}", d.holders(), d.logs()),
    );
    sampler.excluded.store(NOBODY, Ordering::Relaxed);
    let back = d.wait_holder(0, Duration::from_secs(60));
    println!(
        "figure: restarted pf1 holds the VIP again {:.2} s after it was ready",
        back.as_secs_f64()
    );

    // 2. The holder is cut off the network.
    phase("pf1 back; partition of pf1");
    sampler.excluded.store(0, Ordering::Relaxed);
    let cut = Instant::now();
    d.lab.partition(0).unwrap();
    let took = d.first_answer_after(cut, Duration::from_secs(30));
    println!(
        "figure: partition of the holder -> MAB answered through the VIP: {:.2} s",
        took.as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    phase("heal of pf1");
    d.lab.heal(0).unwrap();
    sampler.excluded.store(NOBODY, Ordering::Relaxed);
    let back = d.wait_holder(0, Duration::from_secs(60));
    println!(
        "figure: after the heal, pf1 holds the VIP again in {:.2} s",
        back.as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(1));

    let (answered, failed) = switch.finish();
    let report = sampler.finish();
    println!(
        "figure: {answered} MAB requests through the VIP during the failures, {} failed; VIP samples {}, overlaps {} (longest {} samples)",
        failed.len(),
        report.samples,
        report.overlaps,
        report.longest_overlap
    );
    assert!(answered > 20, "the switch kept authenticating ({answered})");
    assert!(
        failed.is_empty(),
        "failed authentications through the VIP: {failed:?}\n{}",
        d.logs()
    );
    phase("end");
    assert!(
        report.longest_overlap <= 1,
        "the VIP stayed on two connected servers: {report:?}"
    );
}

/// VIP failover, repeated: `IRONFENCE_BENCH_VRRP` = `ironfence` (the shipped default),
/// `vrrp2` (VRRPv2 with the shared key, 1 s adverts) or `packetfence` (PacketFence's
/// keepalived settings: VRRPv2, `advert_int 5`). Trials from `IRONFENCE_BENCH_TRIALS` (10).
#[test]
#[ignore = "benchmark: bench/failover.sh"]
fn bench_vip_failover() {
    let mode = std::env::var("IRONFENCE_BENCH_VRRP").unwrap_or_else(|_| "ironfence".into());
    let trials: usize = std::env::var("IRONFENCE_BENCH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    let settings = match mode.as_str() {
        "ironfence" => "",
        "vrrp2" => "vrrp_version = 2\nvrrp_advert_interval = 1s\n",
        "packetfence" => "vrrp_version = 2\nvrrp_advert_interval = 5s\n",
        other => panic!("IRONFENCE_BENCH_VRRP={other}: ironfence, vrrp2 or packetfence"),
    };
    let mut d = Door::up(settings);
    d.wait_holder(0, Duration::from_secs(60));
    let (mut kills, mut partitions) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        let killed = Instant::now();
        d.kill_server(0);
        let t = d
            .first_answer_after(killed, Duration::from_secs(60))
            .as_secs_f64();
        println!("trial {trial}: kill -9 -> answered in {t:.3} s");
        kills.push(t);
        d.start_serve(0);
        d.wait_holder(0, Duration::from_secs(120));
    }
    for trial in 0..trials {
        let cut = Instant::now();
        d.lab.partition(0).unwrap();
        let t = d
            .first_answer_after(cut, Duration::from_secs(60))
            .as_secs_f64();
        println!("trial {trial}: partition -> answered in {t:.3} s");
        partitions.push(t);
        d.lab.heal(0).unwrap();
        d.wait_holder(0, Duration::from_secs(120));
    }
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "figure: mode {mode}, {trials} kills: median {:.3} s, max {:.3} s; {trials} partitions: median {:.3} s, max {:.3} s",
        median(&mut kills.clone()),
        max(&kills),
        median(&mut partitions.clone()),
        max(&partitions)
    );
}

//! The cluster's front door on this server: keepalived (the VIPs) and haproxy (the web front
//! door on them) as supervised children, the readiness that gates holding a VIP, and the
//! notify FIFO that says which VIPs this server holds. Decisions come from `ironfence_ha`
//! (pure); this module only writes files, spawns, signals and reads.
//!
//! ```text
//!  reload / every 2 s ──► ha::plan + render ──► Desired(hash) ─┐
//!  child exits ──────────────────────────────► Exited ──────────┼─► ha::Supervisor ─► WriteConfig,
//!  every 100 ms ─────────────────────────────► Tick ───────────┘      Spawn, Reload, Stop
//!  every 250 ms: RADIUS tasks alive ∧ DB writable ∧ running version = files ─► ready.track
//!  keepalived ── notify FIFO ──► ha::parse_line ─► Held ─► Shared (status, metrics, /health)
//! ```
//!
//! Runs only in a cluster whose cluster.conf has `[CLUSTER interface X]`. Failure to start
//! either program is logged, shown in `cluster status`, and retried with back-off; RADIUS and
//! the API keep serving on this server's own address.

mod child;
pub mod web;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ironfence_config::Config;
use ironfence_ha::{Command, Event, Held, RunFiles, Supervisor, VipPlan};
use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::Shared;
use crate::cluster::{LocalClusterState, Member};
use child::{Child, Which};

/// One VIP this server holds (keepalived reported its instance MASTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldVip {
    pub interface: String,
    pub vip: Ipv4Addr,
}

/// What the front door reports (`cluster status`, `/health`, metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontDoorStatus {
    /// This server runs keepalived and haproxy (a cluster with `[CLUSTER interface X]`).
    pub managed: bool,
    pub held: Vec<HeldVip>,
    /// This server holds `[CLUSTER] management_ip`.
    pub management_vip_held: bool,
    /// Readiness at the last check; `None` before the first one.
    pub ready: Option<bool>,
    pub unready_reasons: Vec<String>,
    /// keepalived / haproxy / plan errors (cleared once the program runs steadily).
    pub errors: Vec<String>,
}

/// Shared state of the front door.
#[derive(Debug, Default)]
pub struct FrontDoor {
    status: RwLock<FrontDoorStatus>,
    /// Set by the daemon once the RADIUS receive loops run, and cleared when they end.
    radius: RwLock<Option<RadiusProbe>>,
    stopping: AtomicBool,
}

/// The readiness input "RADIUS answers", set by the daemon ([`FrontDoor::set_radius_probe`]).
#[derive(Debug, Clone)]
pub enum RadiusProbe {
    /// Every RADIUS receive task is running (what the daemon sets today).
    Tasks(Vec<tokio::task::AbortHandle>),
    /// The result of a self-probe kept by its owner, e.g. the load balancer's Status-Server
    /// to this server's own RADIUS service (true while it is answered).
    Answered(Arc<AtomicBool>),
    /// Both: every receive task runs (the VIP listeners included) and the self-probe is
    /// answered (what a cluster member sets).
    TasksAndAnswered(Vec<tokio::task::AbortHandle>, Arc<AtomicBool>),
}

impl RadiusProbe {
    pub fn answers(&self) -> bool {
        match self {
            RadiusProbe::Tasks(tasks) => {
                !tasks.is_empty() && tasks.iter().all(|t| !t.is_finished())
            }
            RadiusProbe::Answered(flag) => flag.load(Ordering::Relaxed),
            RadiusProbe::TasksAndAnswered(tasks, flag) => {
                RadiusProbe::Tasks(tasks.clone()).answers() && flag.load(Ordering::Relaxed)
            }
        }
    }
}

impl FrontDoor {
    pub fn status(&self) -> FrontDoorStatus {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut FrontDoorStatus)) {
        f(&mut self.status.write().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn set_radius_probe(&self, probe: RadiusProbe) {
        *self.radius.write().unwrap_or_else(|e| e.into_inner()) = Some(probe);
    }

    fn radius_answers(&self) -> bool {
        self.radius
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(RadiusProbe::answers)
    }
}

/// What keepalived and haproxy should run now, with the plan it came from.
#[derive(Debug, Clone, Default)]
struct Desired {
    plan: VipPlan,
    keepalived: Option<String>,
    haproxy: Option<String>,
    error: Option<String>,
}

fn hash(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|t| {
        Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// `<state_dir>/run`.
pub fn run_dir(config: &Config) -> PathBuf {
    config.pf.general.state_dir.join("run")
}

fn desired(config: &Config) -> Desired {
    let state_dir = &config.pf.general.state_dir;
    let local = match LocalClusterState::load(state_dir) {
        Ok(l) => l,
        Err(e) => {
            return Desired {
                error: Some(format!("cannot read the local cluster state: {e}")),
                ..Desired::default()
            };
        }
    };
    let run = run_dir(config);
    let files = RunFiles::new(&run);
    let plan = match ironfence_ha::plan(
        config,
        &ironfence_ha::Local {
            disabled_peers: &local.disabled_peers,
            maintenance: local.maintenance,
            run_dir: &run,
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            return Desired {
                error: Some(format!("no virtual IP plan: {e}")),
                ..Desired::default()
            };
        }
    };
    let keepalived = ironfence_ha::keepalived::render(&plan, &config.pf.active_active, &files);
    let backends = backends(config, &local.disabled_peers);
    let pem = config.conf_dir.join("ssl/server.pem");
    let aa = &config.pf.active_active;
    let haproxy = ironfence_ha::haproxy::render(&ironfence_ha::haproxy::Input {
        plan: &plan,
        backends,
        admin_port: config.pf.ports.admin,
        tls_pem: pem.is_file().then_some(pem),
        stats: match (&aa.haproxy_stats_user, &aa.haproxy_stats_pass) {
            (Some(u), Some(p)) if !p.is_empty() => Some((u.clone(), p.expose().to_string())),
            _ => None,
        },
    });
    Desired {
        plan,
        keepalived,
        haproxy,
        error: None,
    }
}

/// Every enabled member's web listener (this server's disabled peers left out).
fn backends(config: &Config, disabled: &BTreeSet<String>) -> Vec<(String, SocketAddr)> {
    config
        .cluster
        .iter()
        .flat_map(|c| c.servers.iter())
        .filter(|s| !disabled.contains(&s.name))
        .filter_map(|s| {
            s.management_ip
                .map(|ip| (s.name.clone(), SocketAddr::from((ip, config.pf.ports.web))))
        })
        .collect()
}

/// The program for `which`, or why it cannot run.
fn program(which: Which) -> Result<PathBuf, String> {
    ironfence_config::host::find_program(which.name()).ok_or_else(|| {
        format!(
            "{} not found in PATH or {}: apt-get install {}; the virtual IPs are not served by this server until it is",
            which.name(),
            ironfence_config::host::SYSTEM_DIRS.join(", "),
            which.name()
        )
    })
}

fn args(which: Which, files: &RunFiles) -> Vec<std::ffi::OsString> {
    match which {
        // -n foreground, -l log to the console (our log), -D detailed, -P VRRP only; own
        // configuration and pid files, so that several servers share one machine in tests.
        Which::Keepalived => vec![
            "-n".into(),
            "-l".into(),
            "-D".into(),
            "-P".into(),
            "-f".into(),
            files.keepalived_conf().into(),
            "-p".into(),
            files.keepalived_pid().into(),
            "-r".into(),
            files.vrrp_pid().into(),
        ],
        // -W master-worker (SIGUSR2 reloads without dropping connections), -db foreground.
        Which::Haproxy => vec![
            "-W".into(),
            "-db".into(),
            "-f".into(),
            files.haproxy_cfg().into(),
            "-p".into(),
            files.haproxy_pid().into(),
        ],
    }
}

/// Removes this server's own VIPs from its interfaces before keepalived (re)starts: a holder
/// that crashed and comes back must not answer on a VIP another member took meanwhile.
fn remove_stale_vips(plan: &VipPlan) {
    let Some(ip) = ironfence_config::host::find_program("ip") else {
        tracing::warn!("ip (iproute2) not found: stale virtual IPs cannot be removed");
        return;
    };
    for i in &plan.instances {
        let Ok(out) = std::process::Command::new(&ip)
            .args(["-4", "-o", "addr", "show", "dev", &i.interface])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        for v in &i.vips {
            let needle = format!(" {}/", v.ip);
            if text.contains(&needle) {
                let st = std::process::Command::new(&ip)
                    .args(["-4", "addr", "del", &v.to_string(), "dev", &i.interface])
                    .status();
                tracing::warn!(interface = %i.interface, vip = %v, ok = ?st.map(|s| s.success()), "removed a stale virtual IP of this server before starting keepalived");
            }
        }
    }
}

/// One supervised program: its engine, its child and the text it should run.
struct Slot {
    which: Which,
    sup: Supervisor,
    child: Option<Child>,
    text: Option<String>,
}

/// The front door task (a cluster member with `[CLUSTER interface X]`).
pub async fn run(
    shared: Arc<Shared>,
    mut reloads: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = shared.config();
    let run = run_dir(&config);
    if let Err(e) = ironfence_core::fsutil::ensure_dir_mode(&run, 0o750) {
        let msg = format!("cannot create {}: {e}", run.display());
        tracing::error!("{msg}");
        shared.front_door.update(|s| s.errors = vec![msg]);
        return;
    }
    let files = RunFiles::new(&run);
    let fifo = files.notify_fifo();
    let _ = std::fs::remove_file(&fifo);
    if let Err(e) = nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        tracing::error!(path = %fifo.display(), error = %e, "cannot create keepalived's notify FIFO: held VIPs will not be known");
    }
    // Open both ends (read-write): opening never blocks and keepalived's restarts never
    // give us end-of-file.
    let mut notify = match tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&fifo)
    {
        Ok(rx) => Some(tokio::io::BufReader::new(rx)),
        Err(e) => {
            tracing::error!(path = %fifo.display(), error = %e, "cannot open keepalived's notify FIFO");
            None
        }
    };
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let mut slots = [
        Slot {
            which: Which::Keepalived,
            sup: Supervisor::new(
                "keepalived",
                Duration::from_millis(200),
                Duration::from_secs(10),
            ),
            child: None,
            text: None,
        },
        Slot {
            which: Which::Haproxy,
            sup: Supervisor::new(
                "haproxy",
                Duration::from_millis(500),
                Duration::from_secs(10),
            ),
            child: None,
            text: None,
        },
    ];
    let origin = Instant::now();
    let mut held = Held::default();
    let mut want = desired(&config);
    let mut last_track: Option<&'static str> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    let mut line = String::new();
    shared.front_door.update(|s| s.managed = true);
    // Not ready until proven: a file left by a previous run must not let keepalived claim
    // the VIPs before the first readiness check.
    if let Err(e) = ironfence_core::fsutil::write_atomic(&files.track_file(), b"1\n", 0o640) {
        tracing::error!(error = %e, "cannot write the readiness track file");
    }
    apply_desired(&shared, &mut slots, &want, &files, &exit_tx, origin);
    loop {
        use tokio::io::AsyncBufReadExt;
        tokio::select! {
            _ = tick.tick() => {
                ticks += 1;
                let now = origin.elapsed();
                // Readiness every 250 ms (off the runtime: it hashes the configuration files).
                if ticks.is_multiple_of(2) || last_track.is_none() {
                    let r = readiness(&shared).await;
                    let value = r.track_value();
                    if last_track != Some(value) {
                        match ironfence_core::fsutil::write_atomic(&files.track_file(), value.as_bytes(), 0o640) {
                            Ok(()) => {
                                if !r.ready() {
                                    tracing::warn!(reasons = ?r.reasons(), "not ready: lowering this server's VRRP priority");
                                } else if last_track.is_some() {
                                    tracing::info!("ready again: VRRP priority restored");
                                }
                                last_track = Some(value);
                            }
                            Err(e) => tracing::error!(error = %e, "cannot write the readiness track file"),
                        }
                    }
                    shared.front_door.update(|s| {
                        s.ready = Some(r.ready());
                        s.unready_reasons = r.reasons().into_iter().map(str::to_string).collect();
                    });
                }
                // Maintenance and disabled peers are local files the CLI changes: look again.
                if ticks.is_multiple_of(20) {
                    let new = desired(&shared.config());
                    if new.keepalived != want.keepalived || new.haproxy != want.haproxy || new.error != want.error {
                        want = new;
                        apply_desired(&shared, &mut slots, &want, &files, &exit_tx, origin);
                    }
                }
                for slot in slots.iter_mut() {
                    let cmds = slot.sup.handle(Event::Tick { now });
                    execute(slot, cmds, &want.plan, &files, &exit_tx, origin);
                }
                publish_errors(&shared, &slots, &want);
            }
            changed = reloads.changed() => {
                if changed.is_err() {
                    break;
                }
                want = desired(&shared.config());
                apply_desired(&shared, &mut slots, &want, &files, &exit_tx, origin);
            }
            Some((which, pid, status)) = exit_rx.recv() => {
                let slot = slots.iter_mut().find(|s| s.which == which).expect("slot");
                if slot.child.as_ref().is_some_and(|c| c.pid == pid) {
                    slot.child = None;
                    if !shared.front_door.stopping.load(Ordering::Relaxed) {
                        tracing::error!(program = which.name(), pid, %status, "exited; restarting after back-off");
                    }
                    if which == Which::Keepalived {
                        held.clear();
                        publish_held(&shared, &held, &want.plan);
                    }
                    let cmds = slot.sup.handle(Event::Exited { now: origin.elapsed(), status });
                    execute(slot, cmds, &want.plan, &files, &exit_tx, origin);
                }
            }
            read = async {
                line.clear();
                match notify.as_mut() {
                    Some(r) => r.read_line(&mut line).await,
                    None => std::future::pending().await,
                }
            } => {
                match read {
                    Ok(0) | Err(_) => notify = None,
                    Ok(_) => match ironfence_ha::parse_line(&line) {
                        Some(n) => {
                            tracing::info!(instance = %n.name, state = ?n.state, priority = ?n.priority, "keepalived state change");
                            if held.apply(&n) {
                                publish_held(&shared, &held, &want.plan);
                            }
                        }
                        None => {
                            shared.metrics.keepalived_notify_unparsed.inc();
                            tracing::debug!(line = %line.trim_end(), "notify FIFO line not understood: dropped");
                        }
                    },
                }
            }
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        }
    }
    // Shutdown: keepalived withdraws the VIPs on SIGTERM.
    shared.front_door.stopping.store(true, Ordering::Relaxed);
    for slot in slots.iter_mut() {
        if let Some(c) = &slot.child {
            c.signal(Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while slots.iter().any(|s| s.child.is_some()) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), exit_rx.recv()).await {
            Ok(Some((which, pid, _))) => {
                if let Some(s) = slots.iter_mut().find(|s| s.which == which)
                    && s.child.as_ref().is_some_and(|c| c.pid == pid)
                {
                    s.child = None;
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    for slot in slots.iter() {
        if let Some(c) = &slot.child {
            c.signal(Signal::SIGKILL);
        }
    }
    held.clear();
    publish_held(&shared, &held, &want.plan);
}

fn apply_desired(
    shared: &Shared,
    slots: &mut [Slot],
    want: &Desired,
    files: &RunFiles,
    exits: &mpsc::UnboundedSender<(Which, u32, String)>,
    origin: Instant,
) {
    if let Some(e) = &want.error {
        tracing::error!("{e}");
    }
    for slot in slots.iter_mut() {
        slot.text = match slot.which {
            Which::Keepalived => want.keepalived.clone(),
            Which::Haproxy => want.haproxy.clone(),
        };
        let cmds = slot.sup.handle(Event::Desired(hash(&slot.text)));
        execute(slot, cmds, &want.plan, files, exits, origin);
    }
    publish_errors(shared, slots, want);
}

fn execute(
    slot: &mut Slot,
    cmds: Vec<Command>,
    plan: &VipPlan,
    files: &RunFiles,
    exits: &mpsc::UnboundedSender<(Which, u32, String)>,
    origin: Instant,
) {
    for cmd in cmds {
        match cmd {
            Command::WriteConfig => {
                let (path, mode) = match slot.which {
                    Which::Keepalived => (files.keepalived_conf(), 0o600),
                    Which::Haproxy => (files.haproxy_cfg(), 0o640),
                };
                if let Some(text) = &slot.text
                    && let Err(e) =
                        ironfence_core::fsutil::write_atomic(&path, text.as_bytes(), mode)
                {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the configuration");
                }
            }
            Command::Spawn => {
                let result = program(slot.which).and_then(|p| {
                    match slot.which {
                        Which::Keepalived => {
                            remove_stale_vips(plan);
                            child::remove_stale_pid_file(&files.keepalived_pid(), "keepalived");
                            child::remove_stale_pid_file(&files.vrrp_pid(), "keepalived");
                        }
                        Which::Haproxy => {
                            child::remove_stale_pid_file(&files.haproxy_pid(), "haproxy");
                        }
                    }
                    Child::spawn(slot.which, &p, args(slot.which, files), exits.clone())
                });
                let now = origin.elapsed();
                match result {
                    Ok(c) => {
                        tracing::info!(program = slot.which.name(), pid = c.pid, "started");
                        slot.child = Some(c);
                        let more = slot.sup.handle(Event::Spawned { now });
                        execute(slot, more, plan, files, exits, origin);
                    }
                    Err(error) => {
                        tracing::error!(program = slot.which.name(), %error, "cannot start: retrying after back-off; this server keeps serving on its own address");
                        slot.sup.handle(Event::SpawnFailed { now, error });
                    }
                }
            }
            Command::Reload => {
                if let Some(c) = &slot.child {
                    tracing::info!(
                        program = slot.which.name(),
                        pid = c.pid,
                        "configuration changed: reloading"
                    );
                    c.signal(match slot.which {
                        Which::Keepalived => Signal::SIGHUP,
                        Which::Haproxy => Signal::SIGUSR2,
                    });
                }
            }
            Command::Stop => {
                if let Some(c) = &slot.child {
                    tracing::info!(
                        program = slot.which.name(),
                        pid = c.pid,
                        "not needed any more (maintenance, or nothing to serve): stopping"
                    );
                    c.signal(Signal::SIGTERM);
                } else {
                    // Nothing runs: the engine waits for an exit that will not come.
                    let more = slot.sup.handle(Event::Exited {
                        now: origin.elapsed(),
                        status: "not running".into(),
                    });
                    execute(slot, more, plan, files, exits, origin);
                }
            }
        }
    }
}

fn publish_errors(shared: &Shared, slots: &[Slot], want: &Desired) {
    let mut errors: Vec<String> = want.error.iter().cloned().collect();
    errors.extend(slots.iter().filter_map(|s| s.sup.status().last_error));
    shared.front_door.update(|s| {
        if s.errors != errors {
            s.errors = errors;
        }
    });
}

fn publish_held(shared: &Shared, held: &Held, plan: &VipPlan) {
    let vips = held.vips(plan);
    for i in &plan.instances {
        for v in &i.vips {
            let on = vips.iter().any(|(_, h)| h == v);
            shared
                .metrics
                .vip_held
                .get_or_create(&[
                    ("interface", i.interface.clone()),
                    ("vip", v.ip.to_string()),
                ])
                .set(i64::from(on));
        }
    }
    let mgmt = plan.management_vip;
    shared.front_door.update(|s| {
        s.held = vips
            .iter()
            .map(|(interface, v)| HeldVip {
                interface: interface.clone(),
                vip: v.ip,
            })
            .collect();
        s.management_vip_held = mgmt.is_some_and(|m| vips.iter().any(|(_, v)| v.ip == m));
    });
}

/// The readiness inputs, measured now.
async fn readiness(shared: &Arc<Shared>) -> ironfence_ha::Readiness {
    let config = shared.config();
    let running = shared.running_version().map(|v| v.hash);
    let on_disk =
        tokio::task::spawn_blocking(move || Member::of(&config).bundle(&config).map(|b| b.hash()))
            .await
            .ok()
            .and_then(Result::ok);
    ironfence_ha::Readiness {
        radius: shared.front_door.radius_answers(),
        db_writable: !shared.db.is_read_only(),
        config_current: running.is_some() && running == on_disk,
    }
}

/// Whether the configuration's cluster has VIPs for this server to hold.
pub fn wanted(config: &Config) -> bool {
    ironfence_config::host::runs_vips(config)
}

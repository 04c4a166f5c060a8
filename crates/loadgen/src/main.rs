//! `ironfence-loadgen`: RADIUS MAB load generator and null responder. See `docs/benchmarks.md`.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ironfence_loadgen::client::{self, ClientConfig};
use ironfence_loadgen::devices::{self, DEFAULT_ROLES};
use ironfence_loadgen::procstat::{self, CpuTimes};
use ironfence_loadgen::responder::{self, ResponderConfig};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "ironfence-loadgen",
    version,
    about = "RADIUS MAB load generator: closed loop, Message-Authenticator on every request, every reply verified",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Answer every Access-Request with a fixed signed Access-Accept + VLAN (the generator's ceiling).
    NullResponder(ResponderArgs),
    /// Write the device population: ironfence import CSV and/or FreeRADIUS users file.
    Seed(SeedArgs),
    /// Simulated DHCP clients (DORA) on one interface: duplicate-address check and DORA/s.
    Dhcp(DhcpArgs),
    /// 802.1X logins (EAP-TLS or PEAP-MSCHAPv2, rustls client): logins/s, latency, server CPU per login.
    Eap(Box<EapArgs>),
    /// Print N distinct ports free for both UDP and TCP on 127.0.0.1 (one per line).
    FreePorts {
        /// How many.
        #[arg(default_value_t = 1)]
        count: usize,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Server RADIUS authentication address.
    #[arg(long, default_value = "127.0.0.1:1812")]
    server: SocketAddrV4,
    /// Shared secret.
    #[arg(long, env = "LOADGEN_SECRET", default_value = "")]
    secret: String,
    /// Label printed as target=… (ironfence, freeradius, null, …).
    #[arg(long, default_value = "server")]
    label: String,
    /// Known devices: MAC i = 02:00:<i as 4 bytes>, i in 0..N.
    #[arg(long, default_value_t = 100_000)]
    devices: u32,
    /// Fraction of requests from unknown MACs (02:01:<i>), which must get the registration VLAN.
    #[arg(long, default_value_t = 0.0)]
    unknown_fraction: f64,
    /// Roles as name:vlan,…; device i has role i % count.
    #[arg(long, default_value = DEFAULT_ROLES)]
    roles: String,
    /// VLAN expected for unknown devices.
    #[arg(long, default_value_t = 2)]
    registration_vlan: u16,
    /// Expect this VLAN in every Access-Accept instead of the role formula (null responder).
    #[arg(long)]
    expect_vlan: Option<u16>,
    /// Requests in flight (closed loop).
    #[arg(short = 'c', long, default_value_t = 32)]
    concurrency: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// UDP sockets per thread (default: one per 128 requests in flight; max 255 per socket).
    #[arg(long)]
    sockets: Option<usize>,
    /// Warm-up before measuring (e.g. 3s, 500ms).
    #[arg(long, default_value = "3s", value_parser = humantime_duration)]
    warmup: Duration,
    /// Measured window.
    #[arg(long, default_value = "10s", value_parser = humantime_duration)]
    duration: Duration,
    /// Instead of --duration: send exactly N requests after the warm-up and wait for their replies.
    #[arg(long)]
    requests: Option<u64>,
    /// Reply timeout; each timeout is an error and triggers a retransmission.
    #[arg(long, default_value = "1s", value_parser = humantime_duration)]
    timeout: Duration,
    /// Retransmissions before a request is given up (lost).
    #[arg(long, default_value_t = 2)]
    retries: u8,
    /// Pin the worker threads to these CPUs (comma-separated, round robin).
    #[arg(long, value_delimiter = ',')]
    cpu: Vec<usize>,
    /// NAS-IP-Address to send.
    #[arg(long, default_value = "127.0.0.1")]
    nas_ip: Ipv4Addr,
    /// PID of the server: report its CPU µs per request over the window and its RSS after.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Another process to account over the same window, as NAME=PID (repeatable), e.g. the
    /// database server: reported as NAME_cpu_us_per_req, NAME_cpu_cores and NAME_rss_mb.
    #[arg(long = "also-pid", value_parser = name_pid)]
    also_pid: Vec<(String, u32)>,
    /// Exit with status 1 if any error or timeout occurred.
    #[arg(long)]
    fail_on_error: bool,
}

#[derive(Debug, Args)]
struct EapArgs {
    /// Server RADIUS authentication address.
    #[arg(long, default_value = "127.0.0.1:1812", conflicts_with = "servers")]
    server: SocketAddrV4,
    /// Several servers, comma-separated: login k of device n goes to server (n + k) % count,
    /// so with --resume each resumed login is sent to another server than the one that
    /// made the session (cluster test).
    #[arg(long, value_delimiter = ',')]
    servers: Vec<SocketAddrV4>,
    /// Source address of the sockets.
    #[arg(long, default_value = "127.0.0.1")]
    bind: Ipv4Addr,
    /// Shared secret.
    #[arg(long, env = "LOADGEN_SECRET", default_value = "")]
    secret: String,
    /// Label printed as target=….
    #[arg(long, default_value = "server")]
    label: String,
    /// tls or peap.
    #[arg(long, default_value = "peap")]
    method: String,
    /// TLS versions offered: 1.2, 1.3 or any.
    #[arg(long, default_value = "any")]
    tls: String,
    /// Keep each device's TLS session store: every login after its first resumes.
    #[arg(long)]
    resume: bool,
    /// With --resume: TLS 1.2 sessions resume by session ID only (no session tickets), as
    /// wpa_supplicant does.
    #[arg(long, requires = "resume")]
    session_id_only: bool,
    /// EAP identity (PEAP: also the MSCHAPv2 user name).
    #[arg(long, default_value = "bench")]
    identity: String,
    /// PEAP password.
    #[arg(long, env = "LOADGEN_PASSWORD", default_value = "")]
    password: String,
    /// CA certificate(s) of the server certificate (PEM file).
    #[arg(long)]
    ca: PathBuf,
    /// EAP-TLS client certificate (PEM file).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// EAP-TLS client key (PEM file).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Name the server certificate must carry.
    #[arg(long, default_value = "radius.ironfence.test")]
    server_name: String,
    /// Conversations open at once.
    #[arg(short = 'c', long, default_value_t = 1)]
    concurrency: usize,
    #[arg(long, default_value = "2s", value_parser = humantime_duration)]
    warmup: Duration,
    #[arg(long, default_value = "10s", value_parser = humantime_duration)]
    duration: Duration,
    /// Instead of a timed run: N logins in sequence, one line each, exit 1 on any failure.
    #[arg(long)]
    logins: Option<u32>,
    #[arg(long, default_value = "1s", value_parser = humantime_duration)]
    timeout: Duration,
    #[arg(long, default_value_t = 2)]
    retries: u8,
    #[arg(long, default_value = "127.0.0.1")]
    nas_ip: Ipv4Addr,
    /// Largest TLS data per EAP packet we send.
    #[arg(long, default_value_t = 1000)]
    fragment_size: usize,
    /// PID of the server: its CPU µs per login over the window and its RSS after.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Exit with status 1 if any login failed.
    #[arg(long)]
    fail_on_error: bool,
    /// Timed run: also print one line per login (device, server, method, TLS version,
    /// resumed, rounds, latency; or the failure).
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Per-login lines and the result line as JSON objects.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ResponderArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: Ipv4Addr,
    /// UDP port (0: any free port, printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Shared secret.
    #[arg(long, env = "LOADGEN_SECRET")]
    secret: String,
    /// VLAN in every Access-Accept.
    #[arg(long, default_value_t = 100)]
    vlan: u16,
    /// Pin to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
}

#[derive(Debug, Args)]
struct DhcpArgs {
    /// Interface the clients are on (broadcasts go out of it; replies are read on it).
    #[arg(long)]
    interface: String,
    /// Number of clients (MAC 02:dc:<i>).
    #[arg(long, default_value_t = 1000)]
    clients: u32,
    /// Index of the first client.
    #[arg(long, default_value_t = 0)]
    first: u32,
    /// Clients in flight at once.
    #[arg(short = 'c', long, default_value_t = 32)]
    concurrency: usize,
    /// Retransmission timeout.
    #[arg(long, default_value = "1s", value_parser = humantime_duration)]
    timeout: Duration,
    /// Tries per step (DISCOVER, REQUEST) before a client gives up.
    #[arg(long, default_value_t = 4)]
    tries: u32,
    /// Malformed datagrams to send before the clients start.
    #[arg(long, default_value_t = 0)]
    malformed: u32,
    /// Write "MAC IP" of every bound client here.
    #[arg(long)]
    leases_out: Option<PathBuf>,
    /// Exit with status 1 unless every client is bound and no address was given twice.
    #[arg(long)]
    fail_on_error: bool,
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// Number of devices.
    #[arg(long, default_value_t = 100_000)]
    devices: u32,
    /// Roles as name:vlan,…; device i has role i % count.
    #[arg(long, default_value = DEFAULT_ROLES)]
    roles: String,
    /// VLAN of the FreeRADIUS DEFAULT entry (unknown devices).
    #[arg(long, default_value_t = 2)]
    registration_vlan: u16,
    /// Write the ironfence import CSV (mac,status,role,pid) here.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write a FreeRADIUS users file (rlm_files) here.
    #[arg(long)]
    freeradius_users: Option<PathBuf>,
}

/// `NAME=PID`, NAME of letters, digits and `_` (it becomes a key of the result line).
fn name_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=PID"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("{name:?}: NAME must be letters, digits and _"));
    }
    let pid = pid
        .parse()
        .map_err(|_| format!("{pid:?}: PID must be a number"))?;
    Ok((name.to_string(), pid))
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>()
        && secs >= 0.0
        && secs.is_finite()
    {
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::NullResponder(a)) => null_responder(a).map(|()| ExitCode::SUCCESS),
        Some(Command::Seed(a)) => seed(a).map(|()| ExitCode::SUCCESS),
        Some(Command::FreePorts { count }) => free_ports(count).map(|()| ExitCode::SUCCESS),
        Some(Command::Dhcp(a)) => dhcp(a),
        Some(Command::Eap(a)) => eap_run(*a),
        None => run(cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ironfence-loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn null_responder(a: ResponderArgs) -> anyhow::Result<()> {
    let cfg = ResponderConfig {
        listen: SocketAddrV4::new(a.listen, a.port),
        secret: a.secret.into_bytes(),
        vlan: a.vlan,
        cpu: a.cpu,
    };
    responder::serve(&cfg, |addr| {
        println!("null-responder listening on {addr} vlan={}", cfg.vlan);
        let _ = std::io::stdout().flush();
    })
}

/// Binds UDP port 0, then TCP on the same port; all sockets stay open until every port is
/// chosen, so the ports are distinct.
fn free_ports(count: usize) -> anyhow::Result<()> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut attempts = 0;
    while ports.len() < count {
        attempts += 1;
        if attempts > 1000 {
            anyhow::bail!("could not find {count} free ports");
        }
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        let Ok(tcp) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) else {
            continue;
        };
        ports.push(port);
        held.push((udp, tcp));
    }
    for p in ports {
        println!("{p}");
    }
    Ok(())
}

fn dhcp(a: DhcpArgs) -> anyhow::Result<ExitCode> {
    let cfg = ironfence_loadgen::dhcp::DhcpConfig {
        interface: a.interface,
        clients: a.clients,
        concurrency: a.concurrency.max(1),
        first: a.first,
        timeout: a.timeout,
        tries: a.tries.max(1),
        malformed: a.malformed,
        server_port: 67,
        client_port: 68,
    };
    let r = ironfence_loadgen::dhcp::run(&cfg)?;
    if let Some(p) = &a.leases_out {
        let text: String = r
            .leases
            .iter()
            .map(|(m, ip)| format!("{m} {ip}\n"))
            .collect();
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("{}", r.line());
    let bad = r.bound != r.clients || r.duplicate_addresses > 0 || r.inconsistent_clients > 0;
    Ok(if a.fail_on_error && bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn eap_run(a: EapArgs) -> anyhow::Result<ExitCode> {
    use ironfence_loadgen::eap::{self, EapConfig, Method, TlsVersions};
    if a.secret.is_empty() {
        anyhow::bail!("--secret (or LOADGEN_SECRET) is required");
    }
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let method = match a.method.as_str() {
        "tls" | "eap-tls" => Method::Tls,
        "peap" | "peap-mschapv2" => Method::Peap,
        m => anyhow::bail!("--method {m:?}: tls or peap"),
    };
    let tls = match a.tls.as_str() {
        "1.2" => TlsVersions::V12,
        "1.3" => TlsVersions::V13,
        "any" => TlsVersions::Any,
        v => anyhow::bail!("--tls {v:?}: 1.2, 1.3 or any"),
    };
    let servers = if a.servers.is_empty() {
        vec![a.server]
    } else {
        a.servers.clone()
    };
    let cfg = EapConfig {
        servers: servers.clone(),
        bind_ip: a.bind,
        secret: a.secret.into_bytes(),
        method,
        tls,
        resume: a.resume,
        session_id_only: a.session_id_only,
        identity: a.identity,
        password: a.password,
        ca_pem: read(&a.ca)?,
        client_cert_pem: a.cert.as_ref().map(read).transpose()?,
        client_key_pem: a.key.as_ref().map(read).transpose()?,
        server_name: a.server_name,
        concurrency: a.concurrency.max(1),
        warmup: a.warmup,
        duration: a.duration,
        timeout: a.timeout,
        retries: a.retries,
        nas_ip: a.nas_ip,
        fragment_size: a.fragment_size,
        verbose: a.verbose,
        json: a.json,
    };
    if let Some(n) = a.logins {
        let shared = std::sync::Arc::new(eap::tls_config(&cfg)?);
        let mut dev = eap::Device::new(std::sync::Arc::new(cfg), &shared, 0)?;
        let mut failed = 0u32;
        for i in 0..n {
            let server = dev.next_server();
            let t = std::time::Instant::now();
            let r = dev.login();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            failed += u32::from(r.is_err());
            println!(
                "{}",
                eap::login_line(0, u64::from(i), method, server, &r, ms, a.json)
            );
        }
        if a.json {
            println!("{{\"logins\":{n},\"failed\":{failed}}}");
        }
        return Ok(if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let pid = a.server_pid;
    let (mut s0, mut s1, mut o0, mut o1) = (None, None, CpuTimes::default(), CpuTimes::default());
    let res = eap::run(
        &cfg,
        || {
            o0 = procstat::cpu_times(None).unwrap_or_default();
            s0 = pid.and_then(|p| procstat::cpu_times(Some(p)).ok());
        },
        || {
            o1 = procstat::cpu_times(None).unwrap_or_default();
            s1 = pid.and_then(|p| procstat::cpu_times(Some(p)).ok());
        },
    )?;
    let c = &res.counters;
    let secs = res.window.as_secs_f64();
    let per = |us: u64| {
        if c.ok > 0 {
            format!("{:.0}", us as f64 / c.ok as f64)
        } else {
            "nan".into()
        }
    };
    // (key, value, is a string): printed as key=value, or as one JSON object with --json.
    let mut kv: Vec<(String, String, bool)> = Vec::new();
    let mut put = |k: &str, v: String, quoted: bool| kv.push((k.to_string(), v, quoted));
    put("target", a.label.clone(), true);
    put(
        "servers",
        servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        true,
    );
    put("method", method.label().into(), true);
    put("tls", tls.label().into(), true);
    put(
        "mode",
        if cfg.resume { "resumed" } else { "full" }.into(),
        true,
    );
    put("c", cfg.concurrency.to_string(), false);
    put("secs", format!("{secs:.2}"), false);
    put("logins/s", format!("{:.1}", c.ok as f64 / secs), false);
    put("p50_ms", ms(res.hist.quantile(0.5)), false);
    put("p99_ms", ms(res.hist.quantile(0.99)), false);
    put("max_ms", ms(res.hist.max()), false);
    let rounds = if c.ok > 0 {
        c.rounds as f64 / c.ok as f64
    } else {
        0.0
    };
    put("rounds_per_login", format!("{rounds:.2}"), false);
    put("ok", c.ok.to_string(), false);
    put("resumed", c.resumed.to_string(), false);
    put(
        "resumed_pct",
        if c.ok > 0 {
            format!("{:.0}", c.resumed as f64 * 100.0 / c.ok as f64)
        } else {
            "0".into()
        },
        false,
    );
    put("resumed_p50_ms", ms(res.hist_resumed.quantile(0.5)), false);
    put("resumed_p99_ms", ms(res.hist_resumed.quantile(0.99)), false);
    put("tls13", c.tls13.to_string(), false);
    put("failed", c.failed().to_string(), false);
    for (label, n) in eap::FAILURE_LABELS.iter().zip(c.failures) {
        put(label, n.to_string(), false);
    }
    put("retransmits", c.retransmits.to_string(), false);
    put("lg_cpu_us_per_login", per(o1.since(&o0).total_us()), false);
    if let Some(p) = pid {
        match (s0, s1) {
            (Some(s), Some(e)) => {
                let d = e.since(&s);
                put("server_cpu_us_per_login", per(d.total_us()), false);
                put(
                    "server_cpu_cores",
                    format!("{:.2}", d.total_us() as f64 / 1e6 / secs),
                    false,
                );
            }
            _ => put("server_cpu_us_per_login", "nan".into(), false),
        }
        if let Ok(m) = procstat::memory(p) {
            put(
                "server_rss_mb",
                format!("{:.1}", m.rss_kb as f64 / 1024.0),
                false,
            );
        }
    }
    let line = if a.json {
        let body: Vec<String> = kv
            .iter()
            .map(|(k, v, quoted)| {
                let v = if *quoted || v == "nan" {
                    eap::json_string(v)
                } else {
                    v.clone()
                };
                format!("{}:{v}", eap::json_string(k))
            })
            .collect();
        format!("{{{}}}", body.join(","))
    } else {
        kv.iter()
            .map(|(k, v, _)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("{line}");
    for m in &res.sample_failures {
        eprintln!("ironfence-loadgen eap: failure sample: {m}");
    }
    Ok(if a.fail_on_error && c.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn seed(a: SeedArgs) -> anyhow::Result<()> {
    let roles = devices::parse_roles(&a.roles)?;
    if let Some(p) = &a.csv {
        let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
        let mut w = std::io::BufWriter::new(f);
        devices::write_csv(&mut w, a.devices, &roles)?;
        w.flush()?;
    }
    if let Some(p) = &a.freeradius_users {
        let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
        let mut w = std::io::BufWriter::new(f);
        devices::write_freeradius_users(&mut w, a.devices, &roles, a.registration_vlan)?;
        w.flush()?;
    }
    Ok(())
}

fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    if a.secret.is_empty() {
        anyhow::bail!("--secret (or LOADGEN_SECRET) is required");
    }
    let cfg = ClientConfig {
        server: a.server,
        secret: a.secret.into_bytes(),
        devices: a.devices,
        unknown_fraction: a.unknown_fraction,
        roles: devices::parse_roles(&a.roles)?,
        registration_vlan: a.registration_vlan,
        expect_vlan: a.expect_vlan,
        concurrency: a.concurrency,
        threads: a.threads,
        sockets_per_thread: a.sockets,
        warmup: a.warmup,
        duration: a.duration,
        requests: a.requests,
        timeout: a.timeout,
        retries: a.retries,
        cpus: a.cpu,
        nas_ip: a.nas_ip,
    };
    let pid = a.server_pid;
    let mut srv_start: Option<CpuTimes> = None;
    let mut srv_end: Option<CpuTimes> = None;
    let also = a.also_pid.clone();
    let mut also_start: Vec<Option<CpuTimes>> = Vec::new();
    let mut also_end: Vec<Option<CpuTimes>> = Vec::new();
    let mut own_start = CpuTimes::default();
    let mut own_end = CpuTimes::default();
    let res = client::run(
        &cfg,
        || {
            own_start = procstat::cpu_times(None).unwrap_or_default();
            srv_start = pid.and_then(|p| procstat::cpu_times(Some(p)).ok());
            also_start = also
                .iter()
                .map(|(_, p)| procstat::cpu_times(Some(*p)).ok())
                .collect();
        },
        || {
            own_end = procstat::cpu_times(None).unwrap_or_default();
            srv_end = pid.and_then(|p| procstat::cpu_times(Some(p)).ok());
            also_end = also
                .iter()
                .map(|(_, p)| procstat::cpu_times(Some(*p)).ok())
                .collect();
        },
    )?;
    let c = &res.counters;
    let per_req = |us: u64| {
        if c.completed > 0 {
            format!("{:.2}", us as f64 / c.completed as f64)
        } else {
            "nan".to_string()
        }
    };
    let secs = res.window.as_secs_f64();
    let cores = |us: u64| {
        if secs > 0.0 {
            format!("{:.2}", us as f64 / 1e6 / secs)
        } else {
            "nan".to_string()
        }
    };
    let mut line = format!(
        "target={} c={} threads={} sockets={} secs={:.2} req/s={:.0} p50_ms={} p99_ms={} p999_ms={} max_ms={} mean_ms={} \
         completed={} ok={} errors={} timeouts={} lost={} reject={} wrong_vlan={} bad_auth={} no_ma={} malformed={} other_code={} send_errors={} stale={} sent_total={}",
        a.label,
        cfg.concurrency,
        cfg.threads,
        res.sockets_per_thread,
        secs,
        res.rate(),
        ms(res.hist.quantile(0.5)),
        ms(res.hist.quantile(0.99)),
        ms(res.hist.quantile(0.999)),
        ms(res.hist.max()),
        ms(res.hist.mean() as u64),
        c.completed,
        c.ok,
        c.errors(),
        c.timeouts,
        c.lost,
        c.reject,
        c.wrong_vlan,
        c.bad_auth,
        c.no_ma,
        c.malformed,
        c.other_code,
        c.send_errors,
        c.stale,
        c.sent_total,
    );
    let own = own_end.since(&own_start);
    line += &format!(
        " lg_cpu_us_per_req={} lg_cpu_cores={}",
        per_req(own.total_us()),
        cores(own.total_us())
    );
    if let Some(pid) = pid {
        match (srv_start, srv_end) {
            (Some(s), Some(e)) => {
                let d = e.since(&s);
                line += &format!(
                    " server_cpu_us_per_req={} server_user_us_per_req={} server_sys_us_per_req={} server_cpu_cores={}",
                    per_req(d.total_us()),
                    per_req(d.user_us),
                    per_req(d.sys_us),
                    cores(d.total_us())
                );
            }
            _ => line += " server_cpu_us_per_req=nan",
        }
        match procstat::memory(pid) {
            Ok(m) => {
                let mb = |kb: u64| kb as f64 / 1024.0;
                line += &format!(
                    " server_rss_mb={:.1} server_hwm_mb={:.1} server_rss_anon_mb={:.1} server_rss_file_mb={:.1}",
                    mb(m.rss_kb),
                    mb(m.hwm_kb),
                    mb(m.anon_kb),
                    mb(m.file_kb)
                )
            }
            Err(_) => line += " server_rss_mb=nan",
        }
    }
    for (k, (name, p)) in a.also_pid.iter().enumerate() {
        match (
            also_start.get(k).copied().flatten(),
            also_end.get(k).copied().flatten(),
        ) {
            (Some(s), Some(e)) => {
                let d = e.since(&s);
                line += &format!(
                    " {name}_cpu_us_per_req={} {name}_cpu_cores={}",
                    per_req(d.total_us()),
                    cores(d.total_us())
                );
            }
            _ => line += &format!(" {name}_cpu_us_per_req=nan"),
        }
        match procstat::memory(*p) {
            Ok(m) => line += &format!(" {name}_rss_mb={:.1}", m.rss_kb as f64 / 1024.0),
            Err(_) => line += &format!(" {name}_rss_mb=nan"),
        }
    }
    println!("{line}");
    if a.fail_on_error && c.errors() > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::name_pid;

    #[test]
    fn also_pid_is_name_equals_pid() {
        assert_eq!(name_pid("mariadbd=42"), Ok(("mariadbd".to_string(), 42)));
        assert_eq!(name_pid("db_1=7"), Ok(("db_1".to_string(), 7)));
        assert!(name_pid("mariadbd").is_err());
        assert!(name_pid("=42").is_err());
        assert!(name_pid("my db=42").is_err());
        assert!(name_pid("db=x").is_err());
    }
}

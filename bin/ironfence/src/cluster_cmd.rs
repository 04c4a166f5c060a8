//! `ironfence cluster …`: join, publish, enable/disable peers, maintenance, status.
//! These commands work with or without a running daemon; when one runs, it is asked to reload.

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use ironfence_cluster::{ReceivePolicy, ServerStatus, StagedConfig};
use ironfence_config::Config;
use ironfence_server::cluster::{self, LocalClusterState};
use ironfence_webservices::{Client, ClusterCa, Credentials, Trust};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Pull the whole configuration from a member (joining), or push ours to every peer.
    Sync(SyncArgs),
    /// Enable or disable a peer for this server (sync, conflict checks, later VIPs and DB).
    Node {
        hostname: String,
        #[arg(value_parser = ["enable", "disable"])]
        action: String,
    },
    /// Show or change this server's maintenance mode.
    Maintenance {
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        #[arg(long)]
        deactivate: bool,
    },
    /// Table of the cluster's servers as this server sees them.
    Status,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Management IP of the member to pull the configuration from.
    #[arg(
        long,
        conflicts_with = "as_master",
        required_unless_present = "as_master"
    )]
    from: Option<IpAddr>,
    /// Webservices user of that member (pf.conf [webservices] user).
    #[arg(long, requires = "from")]
    api_user: Option<String>,
    /// Webservices password of that member. Visible to every user of this machine (`ps`):
    /// prefer --api-password-file, IRONFENCE_API_PASSWORD or the prompt (when none is given
    /// and stdin is a terminal, the password is asked without echo).
    #[arg(long, requires = "from", conflicts_with = "api_password_file")]
    api_password: Option<String>,
    /// File whose first line is the webservices password of that member (keep it mode 0600).
    #[arg(long, requires = "from", value_name = "FILE")]
    api_password_file: Option<PathBuf>,
    /// Fingerprint of the cluster CA (`ironfence cluster status` on a member prints it).
    /// Required to join a cluster whose CA this server does not have yet.
    #[arg(long)]
    ca_fingerprint: Option<String>,
    /// Webservices port of that member.
    #[arg(long, default_value_t = 9090)]
    port: u16,
    /// Push this server's configuration to every enabled peer.
    #[arg(long)]
    as_master: bool,
}

pub(crate) async fn run(conf_dir: &Path, cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClusterCommand::Sync(args) if args.as_master => as_master(conf_dir).await,
        ClusterCommand::Sync(args) => sync_from(conf_dir, args).await,
        ClusterCommand::Node { hostname, action } => node(conf_dir, &hostname, &action).await,
        ClusterCommand::Maintenance {
            activate,
            deactivate,
        } => maintenance(conf_dir, activate, deactivate).await,
        ClusterCommand::Status => status(conf_dir).await,
    }
}

fn cluster_config(conf_dir: &Path) -> anyhow::Result<Config> {
    let config = crate::load_config(conf_dir)?;
    if !config.is_cluster() {
        bail!(
            "{} has no cluster.conf servers: this server is not part of a cluster",
            conf_dir.display()
        );
    }
    Ok(config)
}

/// The environment variable `cluster sync --from` reads the webservices password from.
pub(crate) const API_PASSWORD_ENV: &str = "IRONFENCE_API_PASSWORD";

/// Where the password of `cluster sync --from` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordSource {
    File,
    Flag,
    Env,
    Prompt,
}

/// The credentials for `--from`. The password comes from (first found): --api-password-file,
/// --api-password (with a warning: the command line is visible in `ps`),
/// IRONFENCE_API_PASSWORD, or a prompt without echo when stdin is a terminal.
fn api_credentials(args: &SyncArgs, from: IpAddr) -> anyhow::Result<Credentials> {
    use std::io::IsTerminal;
    let Some(user) = args.api_user.clone() else {
        bail!("--from needs --api-user (the member's pf.conf [webservices] user)");
    };
    let (pass, source) = resolve_api_password(
        args.api_password.as_deref(),
        args.api_password_file.as_deref(),
        std::env::var_os(API_PASSWORD_ENV),
        std::io::stdin().is_terminal(),
        || prompt_password(&format!("webservices password of {user} on {from}: ")),
    )?;
    if source == PasswordSource::Flag {
        eprintln!(
            "warning: --api-password is visible to every user of this machine (ps, \
             /proc/<pid>/cmdline) and stays in the shell history; use --api-password-file FILE, \
             {API_PASSWORD_ENV}, or no option at all to be asked"
        );
    }
    Ok(Credentials { user, pass })
}

fn resolve_api_password(
    flag: Option<&str>,
    file: Option<&Path>,
    env: Option<std::ffi::OsString>,
    stdin_is_terminal: bool,
    prompt: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<(String, PasswordSource)> {
    let nonempty = |pass: String, source| {
        if pass.is_empty() {
            bail!("the webservices password is empty");
        }
        Ok((pass, source))
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the webservices password from {}", path.display()))?;
        let pass = text.lines().next().unwrap_or_default().to_string();
        if pass.is_empty() {
            bail!(
                "{} is empty: write the webservices password on its first line",
                path.display()
            );
        }
        return Ok((pass, PasswordSource::File));
    }
    if let Some(pass) = flag {
        return nonempty(pass.to_string(), PasswordSource::Flag);
    }
    if let Some(pass) = env {
        let pass = pass
            .into_string()
            .map_err(|_| anyhow!("{API_PASSWORD_ENV} is not valid UTF-8"))?;
        return nonempty(pass, PasswordSource::Env)
            .with_context(|| format!("{API_PASSWORD_ENV} is set"));
    }
    if stdin_is_terminal {
        return nonempty(prompt()?, PasswordSource::Prompt);
    }
    bail!(
        "--from needs the member's webservices password (pf.conf [webservices] pass): give \
         --api-password-file FILE, set {API_PASSWORD_ENV}, or run on a terminal to be asked"
    )
}

/// Reads one line from the terminal on stdin with echo turned off (restored afterwards).
pub(crate) fn prompt_password(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning the terminal echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.context("reading the password")?;
    restored.context("restoring the terminal echo")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Joining: pull the bundle from a member, apply it atomically, record its version, reload.
async fn sync_from(conf_dir: &Path, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let from = args.from.expect("clap requires --from without --as-master");
    let Credentials { user, pass } = api_credentials(&args, from)?;
    let trust = match &args.ca_fingerprint {
        Some(fp) => Trust::PinnedCaFingerprint(fp.clone()),
        None => match ClusterCa::load(conf_dir).map_err(|e| anyhow!("{e}"))? {
            Some(ca) => Trust::ClusterCa(ca.cert_der().clone()),
            None => Trust::Unknown,
        },
    };
    let client = Client::new(
        from,
        args.port,
        trust,
        Credentials { user, pass },
        cluster::PEER_TIMEOUT,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let bytes = client.bundle().await.map_err(|e| anyhow!("{e}"))?;
    let (version, bundle) = ironfence_cluster::decode_owned(bytes)
        .map_err(|e| anyhow!("the bundle from {from} is unusable: {e}"))?;
    let root = ironfence_config::installation_root(conf_dir);
    std::fs::create_dir_all(conf_dir)
        .with_context(|| format!("creating {}", conf_dir.display()))?;
    // This server's own rules decide what the member may write here: its configuration as it
    // is now (none yet on a new server: only conf/*.conf and conf/ssl/**).
    let policy = match Config::load(conf_dir) {
        Ok(c) => ReceivePolicy::new(&root, &c.pf.general.state_dir, &c.cluster_files),
        Err(_) => ReceivePolicy::new(&root, Path::new(ironfence_config::DEFAULT_STATE_DIR), &[]),
    };
    let now = cluster::unix_now();
    let report = tokio::task::spawn_blocking(move || {
        ironfence_cluster::apply(&policy, bundle, &version, now, |staging| {
            Config::load_as(staging, None)
                .map(|c| StagedConfig {
                    state_dir: c.pf.general.state_dir,
                })
                .map_err(|d| {
                    format!("the configuration from {from} would not load on this server:\n{d}")
                })
        })
    })
    .await?
    .map_err(|e| anyhow!("configuration from {from} not applied (nothing was changed): {e}"))?;
    let version = &report.version;
    let config = crate::load_config(conf_dir)?;
    outln!(
        "configuration {} (changed {} by {}) applied from {from}: {} added, {} modified, {} deleted, {} unchanged",
        version.short(),
        crate::fmt_time(version.changed_at),
        version.changed_by,
        report.added.len(),
        report.modified.len(),
        report.deleted.len(),
        report.unchanged
    );
    reload_daemon(&config).await;
    Ok(ExitCode::SUCCESS)
}

async fn as_master(conf_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    // Publishing applies locally first: the daemon on this server must run what it is about to
    // push, or it keeps serving the old configuration while reporting the new version.
    let client =
        ironfence_server::ControlClient::new(ironfence_server::control_socket_path(&config));
    match client.call("reload").await {
        Ok(_) => outln!(
            "{}: configuration reloaded by the running daemon",
            config.identity
        ),
        Err(ironfence_server::ControlError::NotRunning { .. }) => outln!(
            "{}: no ironfence daemon running here; the configuration is checked and published",
            config.identity
        ),
        Err(e) => bail!(
            "the running daemon on this server refused the configuration, nothing was published: {e}"
        ),
    }
    let report = cluster::push_to_peers(&config, None)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let version = report
        .version
        .as_ref()
        .map(|v| v.short().to_string())
        .unwrap_or_default();
    for name in &report.updated {
        outln!("{name}: updated to {version}");
    }
    for f in &report.failed {
        eprintln!("{}: NOT updated: {}", f.server, f.error);
    }
    if report.failed.is_empty() {
        outln!(
            "configuration {version} pushed to {} peer(s)",
            report.updated.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} peer(s) could not be updated: {}; the conflict check will retry when they are back",
            report.failed.len(),
            report
                .failed
                .iter()
                .map(|f| f.server.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn node(conf_dir: &Path, hostname: &str, action: &str) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    let cluster = config.cluster.as_ref().expect("checked");
    let Some(server) = cluster.server(hostname) else {
        bail!(
            "{hostname} is not in cluster.conf (servers: {})",
            cluster.server_names().collect::<Vec<_>>().join(", ")
        );
    };
    if server.name == config.identity {
        bail!("{hostname} is this server: use `ironfence cluster maintenance --activate` instead");
    }
    let state_dir = &config.pf.general.state_dir;
    let mut local = LocalClusterState::load(state_dir)?;
    let changed = if action == "disable" {
        local.disabled_peers.insert(server.name.clone())
    } else {
        local.disabled_peers.remove(&server.name)
    };
    local.save(state_dir)?;
    outln!(
        "{}: {} for this server ({}){}",
        server.name,
        if action == "disable" {
            "disabled"
        } else {
            "enabled"
        },
        config.identity,
        if changed { "" } else { " (already)" }
    );
    reload_daemon(&config).await;
    Ok(ExitCode::SUCCESS)
}

async fn maintenance(
    conf_dir: &Path,
    activate: bool,
    deactivate: bool,
) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    let state_dir = &config.pf.general.state_dir;
    let mut local = LocalClusterState::load(state_dir)?;
    if activate || deactivate {
        local.maintenance = activate;
        local.save(state_dir)?;
        reload_daemon(&config).await;
    }
    outln!(
        "maintenance mode is {} on {}",
        if local.maintenance { "ACTIVE" } else { "off" },
        config.identity
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(conf_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    let cluster = config.cluster.as_ref().expect("checked");
    // The same gathering as the admin API's GET /cluster/status (server::cluster::status):
    // every server asked at once, this one through its daemon or, without one, its files.
    let gathered = cluster::status::gather(&config, None, cluster::status::STATUS_TIMEOUT)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let local = &gathered.local;
    let mgmt = gathered.management_server.clone();
    let rows: Vec<(String, String, Result<ServerStatus, String>)> = gathered
        .members
        .into_iter()
        .map(|m| {
            let ip = m
                .management_ip
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into());
            (m.name, ip, m.status)
        })
        .collect();
    outln!(
        "   {:<24} {:<15} {:<10} {:<13} {:<20} {:<24} {:<5} DISABLED HERE",
        "SERVER",
        "MANAGEMENT IP",
        "REACHABLE",
        "CONFIG",
        "CHANGED AT",
        "CHANGED BY",
        "MAINT"
    );
    for (name, ip, st) in &rows {
        let mark = if mgmt.as_deref() == Some(name) {
            "*"
        } else {
            ""
        };
        let disabled = if local.is_disabled(name) { "yes" } else { "no" };
        match st {
            Ok(s) => outln!(
                "{:<2} {:<24} {:<15} {:<10} {:<13} {:<20} {:<24} {:<5} {disabled}  db {}{}",
                mark,
                name,
                ip,
                "yes",
                s.config_version.short(),
                crate::fmt_time(s.config_version.changed_at),
                s.config_version.changed_by,
                if s.maintenance { "yes" } else { "no" },
                if s.db_state.is_empty() {
                    "-"
                } else {
                    &s.db_state
                },
                if s.read_only { " READ-ONLY" } else { "" }
            ),
            Err(e) => outln!(
                "{:<2} {:<24} {:<15} {:<10} {:<13} {:<20} {:<24} {:<5} {}   ({e})",
                mark,
                name,
                ip,
                "NO",
                "-",
                "-",
                "-",
                "-",
                disabled
            ),
        }
    }
    outln!(
        "* = management server (the holder of the management VIP; when nobody reports it, the first enabled, reachable server not in maintenance, in cluster.conf order)"
    );
    // Virtual IPs and the front door (keepalived, haproxy), per member.
    if !cluster.virtual_interfaces.is_empty() {
        outln!("virtual IPs:");
        for (name, _, st) in &rows {
            let Ok(s) = st else {
                outln!("   {name:<24} unknown (not reachable)");
                continue;
            };
            let held = if s.vips_held.is_empty() {
                "none".to_string()
            } else {
                s.vips_held.join(", ")
            };
            let ready = match s.ready {
                Some(true) => "ready".to_string(),
                Some(false) if s.unready_reasons.is_empty() => "NOT READY".to_string(),
                Some(false) => format!("NOT READY ({})", s.unready_reasons.join(", ")),
                None => "-".to_string(),
            };
            outln!("   {name:<24} holds: {held:<40} {ready}");
            for e in &s.front_door_errors {
                outln!("   {name:<24} ERROR: {e}");
            }
        }
    }
    if let Some(ca) = ClusterCa::load(&config.conf_dir).map_err(|e| anyhow!("{e}"))? {
        outln!("cluster CA fingerprint: {}", ca.fingerprint());
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks a running daemon to reload; says so when none runs.
async fn reload_daemon(config: &Config) {
    let client =
        ironfence_server::ControlClient::new(ironfence_server::control_socket_path(config));
    match client.call("reload").await {
        Ok(text) => out!("{text}"),
        Err(ironfence_server::ControlError::NotRunning { .. }) => {
            outln!("(no ironfence daemon running with this configuration: start `ironfence serve`)")
        }
        Err(e) => eprintln!("warning: the running daemon did not reload: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_prompt() -> anyhow::Result<String> {
        panic!("must not prompt")
    }

    #[test]
    fn password_sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ws-pass");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let env = || Some(std::ffi::OsString::from("from-the-env"));
        let got = |r: anyhow::Result<(String, PasswordSource)>| r.unwrap();

        assert_eq!(
            got(resolve_api_password(
                Some("flag"),
                Some(&file),
                env(),
                true,
                no_prompt
            )),
            ("from-the-file".to_string(), PasswordSource::File)
        );
        assert_eq!(
            got(resolve_api_password(
                Some("flag"),
                None,
                env(),
                true,
                no_prompt
            )),
            ("flag".to_string(), PasswordSource::Flag)
        );
        assert_eq!(
            got(resolve_api_password(None, None, env(), true, no_prompt)),
            ("from-the-env".to_string(), PasswordSource::Env)
        );
        assert_eq!(
            got(resolve_api_password(None, None, None, true, || Ok(
                "typed".into()
            ))),
            ("typed".to_string(), PasswordSource::Prompt)
        );
        // No terminal, nothing given: a clear error, no prompt.
        let err = resolve_api_password(None, None, None, false, no_prompt).unwrap_err();
        assert!(
            err.to_string()
                .contains("--api-password-file FILE, set IRONFENCE_API_PASSWORD"),
            "{err}"
        );
    }

    #[test]
    fn bad_password_files_and_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let err = resolve_api_password(None, Some(&empty), None, false, no_prompt).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let absent = dir.path().join("absent");
        let err = resolve_api_password(None, Some(&absent), None, false, no_prompt).unwrap_err();
        assert!(
            format!("{err:#}").contains(&absent.display().to_string()),
            "{err:#}"
        );
        // Only the first line counts (CRLF included).
        let crlf = dir.path().join("crlf");
        std::fs::write(&crlf, "p4ss\r\nsecond line\n").unwrap();
        assert_eq!(
            resolve_api_password(None, Some(&crlf), None, false, no_prompt)
                .unwrap()
                .0,
            "p4ss"
        );
        let err = resolve_api_password(None, None, Some("".into()), false, no_prompt).unwrap_err();
        assert!(
            format!("{err:#}").contains("IRONFENCE_API_PASSWORD"),
            "{err:#}"
        );
    }
}

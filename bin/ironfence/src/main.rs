//! `ironfence`: the NAC daemon (`ironfence serve`) and every operator command.
//!
//! Exit codes: 0 success, 1 the command failed (the message says why and what to do),
//! 2 usage error (clap).

/// `outln!` for operator output that survives a closed pipe (`ironfence node show … | head`):
/// std's `outln!` panics when the reader went away; these stop the command quietly instead.
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod admin_cmd;
mod audit_cmd;
mod cluster_cmd;
mod db_cmd;
mod node_cmd;
mod user_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ironfence_config::Config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ironfence",
    version,
    about = "Network access control server (RADIUS MAB, accounting, VLAN enforcement)"
)]
struct Cli {
    /// Configuration directory (pf.conf, switches.conf, roles.conf, ...).
    #[arg(
        short = 'c',
        long,
        env = "IRONFENCE_CONF_DIR",
        default_value = "/usr/local/ironfence/conf",
        global = true
    )]
    conf_dir: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (RADIUS auth + accounting, metrics, control socket) until SIGTERM/SIGINT.
    Serve,
    /// Validate every configuration file; exit code 1 if anything is fatal.
    Checkup,
    /// Ask the running daemon to reload its configuration (it keeps the old one if the new is refused).
    Configreload,
    /// Manage devices (nodes).
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Captive portal local users: add one, or import a PacketFence password export.
    #[command(subcommand)]
    User(user_cmd::UserCommand),
    /// Admin accounts of the administration interface (conf/admin.conf): add, passwd, remove,
    /// list, totp.
    #[command(subcommand)]
    Admin(admin_cmd::AdminCommand),
    /// RADIUS audit records of a device (every cluster member is asked), newest last.
    Audit(audit_cmd::AuditArgs),
    /// Cluster membership: sync, node enable/disable, maintenance, status.
    #[command(subcommand)]
    Cluster(cluster_cmd::ClusterCommand),
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply pending schema migrations and print the schema version.
    Migrate,
    /// Write this server's MariaDB Galera configuration (<state_dir>/mysql/my.cnf) from
    /// pf.conf and cluster.conf; prints its path.
    GenerateConfig,
    /// Supervised start of this server's Galera node, in the foreground until SIGTERM/SIGINT
    /// (run it as its own service): decides whether to join, bootstrap or wait, restarts
    /// mariadbd if it dies, stops it gracefully on exit.
    Start(db_cmd::StartArgs),
    /// wsrep state of this server's database, or of every member's with --all. Exit code 0
    /// only when this server's database is Primary, Synced and ready.
    Status(db_cmd::StatusArgs),
    /// Create the Galera replication user (pf.conf [active_active]) and the application
    /// user/database (pf.conf [database]) on the local node, if missing.
    InitReplicationUser,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(
        cli.log_format,
        matches!(
            cli.command,
            Command::Serve | Command::Db(DbCommand::Start(_))
        ),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if daemon { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if !matches!(cli.command, Command::Version) {
        recover_interrupted_apply(&cli.conf_dir)?;
    }
    match cli.command {
        Command::Version => {
            outln!("ironfence {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => serve(&cli.conf_dir).await,
        Command::Checkup => Ok(checkup(&cli.conf_dir)),
        Command::Configreload => configreload(&cli.conf_dir).await,
        Command::Cluster(cmd) => cluster_cmd::run(&cli.conf_dir, cmd).await,
        Command::Node(cmd) => node_cmd::run(&load_config(&cli.conf_dir)?, cmd).await,
        Command::User(cmd) => user_cmd::run(&load_config(&cli.conf_dir)?, cmd).await,
        Command::Admin(cmd) => admin_cmd::run(&cli.conf_dir, cmd),
        Command::Audit(args) => audit_cmd::run(&load_config(&cli.conf_dir)?, args).await,
        Command::Db(DbCommand::Migrate) => {
            let config = load_config(&cli.conf_dir)?;
            let store =
                ironfence_store::Store::open(&ironfence_server::store_config(&config)).await?;
            outln!(
                "{} schema at version {}",
                store.backend_name(),
                store.schema_version().await?
            );
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::GenerateConfig) => db_cmd::generate_config(&cli.conf_dir).await,
        Command::Db(DbCommand::Start(args)) => db_cmd::start(&cli.conf_dir, args).await,
        Command::Db(DbCommand::Status(args)) => db_cmd::status(&cli.conf_dir, args).await,
        Command::Db(DbCommand::InitReplicationUser) => {
            db_cmd::init_replication_user(&cli.conf_dir).await
        }
    }
}

/// A configuration apply that a crash interrupted is finished (or undone) before anything reads
/// the configuration: otherwise a mix of old and new files would run, and be stamped as a
/// local change that wins "most recent".
fn recover_interrupted_apply(conf_dir: &Path) -> anyhow::Result<()> {
    let recovered = ironfence_cluster::recover(conf_dir).with_context(|| {
        format!(
            "completing an interrupted configuration apply in {}",
            conf_dir.display()
        )
    })?;
    if let Some(r) = recovered {
        let what = match r.recovery {
            ironfence_cluster::bundle::Recovery::RolledForward => "completed (new configuration)",
            ironfence_cluster::bundle::Recovery::RolledBack => "undone (previous configuration)",
            ironfence_cluster::bundle::Recovery::Discarded => {
                "discarded before its commit (previous configuration)"
            }
        };
        // Logged at warn: shown by every CLI command too.
        tracing::warn!(
            version = r.version.short(), changed_by = %r.version.changed_by, files = r.files,
            "an interrupted configuration apply was {what}"
        );
    }
    Ok(())
}

pub(crate) fn load_config(conf_dir: &Path) -> anyhow::Result<Config> {
    Config::load(conf_dir)
        .map_err(|d| anyhow::anyhow!("configuration in {} refused:\n{d}", conf_dir.display()))
}

async fn serve(conf_dir: &Path) -> anyhow::Result<ExitCode> {
    let daemon = ironfence_server::Daemon::start(conf_dir)
        .await
        .with_context(|| format!("starting ironfence with {}", conf_dir.display()))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => { let _ = daemon.shared.reload(); }
        }
    }
    daemon.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn checkup(conf_dir: &Path) -> ExitCode {
    let mut diags = ironfence_config::checkup(conf_dir);
    // The 802.1X certificates are looked at with the configuration they are named in (eap.conf
    // paths, enabled), so only when it loads: its own errors come first.
    if !diags.has_errors()
        && let Ok(config) = Config::load(conf_dir)
    {
        ironfence_server::eap_certificate_checkup(
            &config,
            ironfence_server::cluster::unix_now(),
            &mut diags,
        );
    }
    let (errors, warnings) = (diags.errors().count(), diags.warnings().count());
    if errors + warnings > 0 {
        outln!("{diags}");
    }
    outln!(
        "checkup of {}: {errors} error(s), {warnings} warning(s)",
        conf_dir.display()
    );
    if diags.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn configreload(conf_dir: &Path) -> anyhow::Result<ExitCode> {
    // Validate here first so that the operator sees every problem even if no daemon runs.
    let config = load_config(conf_dir)?;
    let client =
        ironfence_server::ControlClient::new(ironfence_server::control_socket_path(&config));
    match client.call("reload").await {
        Ok(text) => {
            out!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Writes operator output to stdout. When the reader has gone (`| head`), the command ends
/// like any Unix tool killed by SIGPIPE (exit status 141), without a panic or a message;
/// any other write error is reported on stderr.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// RFC 3339 rendering of a UNIX time for operator output.
pub(crate) fn fmt_time(t: i64) -> String {
    if t <= 0 {
        return "-".to_string();
    }
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64),
    )
    .to_string()
}

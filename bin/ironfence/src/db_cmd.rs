//! `ironfence db …` for the replicated database (MariaDB Galera): the generated option file,
//! the supervised start, the status of this server's or every server's node, and the
//! replication account. `db start` is a long-running process of its own: run it as its own
//! service (like PacketFence's `packetfence-mariadb`), next to `ironfence serve`, on every
//! member. `serve` must run on every member too: it answers the peers' database-state
//! questions that the automatic election after a total outage needs.

use anyhow::{anyhow, bail};
use clap::Args;
use ironfence_cluster::types::DbState;
use ironfence_config::Config;
use ironfence_server::galera::{self, StartOptions, state::PEER_DB_TIMEOUT};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Start a NEW cluster from this server's data, even though it may not hold the latest
    /// commits (the clustering guide's "Electing a new master" / split-brain recovery). Use it
    /// on ONE server only; the others then join it. Refused while a peer's database is
    /// Primary (it would start a second cluster): never leave it in a unit file.
    #[arg(long)]
    pub force_new_cluster: bool,
    /// With --force-new-cluster: bootstrap even though a peer's database is Primary. Only for
    /// the split-brain procedure (docs/galera.md), on the server whose data is kept.
    #[arg(
        long = "i-know-this-splits-the-cluster",
        requires = "force_new_cluster"
    )]
    pub split_override: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Every member (asked over the node-to-node API), not only this server.
    #[arg(long)]
    pub all: bool,
}

fn cluster_config(conf_dir: &Path) -> anyhow::Result<Config> {
    let config = crate::load_config(conf_dir)?;
    if config.this_server().is_none() {
        bail!(
            "this server {:?} is not a member of a cluster in {}/cluster.conf: the replicated database (Galera) runs only on cluster members; a single server uses pf.conf [database] directly",
            config.identity,
            conf_dir.display()
        );
    }
    Ok(config)
}

/// `db generate-config`.
pub(crate) async fn generate_config(conf_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    let answers = galera::ask_peers(&config, PEER_DB_TIMEOUT)
        .await
        .map_err(|e| anyhow!(e))?;
    for a in &answers {
        if let Err(e) = &a.answer {
            eprintln!(
                "note: {} did not answer ({e}); it is listed as a member unless this server disabled it",
                a.name
            );
        }
    }
    let path = galera::write_config(&config, &answers).map_err(|e| anyhow!(e))?;
    outln!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `db start`: runs until SIGTERM/SIGINT; SIGHUP reloads the configuration.
pub(crate) async fn start(conf_dir: &Path, args: StartArgs) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let conf_dir = conf_dir.to_path_buf();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hup.recv() => reload(&conf_dir, &config_tx),
            }
        }
        tracing::info!("stopping: mariadbd is stopped gracefully");
        let _ = tx.send(true);
    });
    let options = StartOptions {
        force_new_cluster: args.force_new_cluster,
        split_override: args.split_override,
    };
    match galera::supervise(config_rx, options, rx).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(reason) => {
            eprintln!("error: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// SIGHUP: loads the conf directory again. A configuration that is refused (file:line and
/// reason in the log), names another server, or moves the state directory leaves the running
/// one in force.
fn reload(conf_dir: &Path, configs: &tokio::sync::watch::Sender<Arc<Config>>) {
    let running = configs.borrow().clone();
    let new = match cluster_config(conf_dir) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration reload refused, the running one stays in force: {e:#}");
            return;
        }
    };
    if new.identity != running.identity || new.pf.general.state_dir != running.pf.general.state_dir
    {
        tracing::error!(
            running = %running.identity,
            new = %new.identity,
            "configuration reload refused: this server's identity or state_dir changed; restart `ironfence db start` to apply that"
        );
        return;
    }
    tracing::info!("configuration reloaded (SIGHUP)");
    configs.send_replace(Arc::new(new));
}

/// `db init-replication-user`.
pub(crate) async fn init_replication_user(conf_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(conf_dir)?;
    let done = galera::init_accounts(&config)
        .await
        .map_err(|e| anyhow!(e))?;
    for line in done {
        outln!("ok: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `db status [--all]`: exit 0 when this server's database is healthy (Primary, Synced,
/// wsrep_ready=ON), 1 otherwise. With `--all`, also 1 when the members show a split brain
/// (different state UUIDs, two Primary components), said in `ERROR:` lines.
pub(crate) async fn status(conf_dir: &Path, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = cluster_config(conf_dir)?;
    let mine = galera::local_db_state(&config)
        .await
        .map_err(|e| anyhow!(e))?;
    let mut rows: Vec<(String, Result<DbState, String>)> = vec![(
        format!("{} (this server)", config.identity),
        Ok(mine.clone()),
    )];
    if args.all {
        let answers = galera::ask_peers(&config, Duration::from_secs(5))
            .await
            .map_err(|e| anyhow!(e))?;
        rows.extend(answers.into_iter().map(|a| (a.name, a.answer)));
    }
    out!("{}", render(&rows));
    let split = if args.all {
        split_errors(&rows)
    } else {
        Vec::new()
    };
    for e in &split {
        outln!("ERROR: {e}");
    }
    let healthy = mine.running && mine.primary && mine.synced && mine.ready;
    if healthy && split.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if healthy {
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "this server's database is not healthy (it needs Primary, Synced, wsrep_ready=ON): {}",
        if mine.maintenance {
            "this server is in maintenance (`ironfence cluster maintenance --deactivate`)"
        } else if !mine.running {
            "mariadbd is not running or not answering on its socket: is `ironfence db start` running? Its log says why it waits"
        } else {
            "it is not in a quorum or still syncing: see `ironfence db status --all` and the MariaDB error log"
        }
    );
    Ok(ExitCode::FAILURE)
}

/// The split-brain checks of `ironfence_galera::split` on the members that answered.
pub(crate) fn split_errors(rows: &[(String, Result<DbState, String>)]) -> Vec<String> {
    let reports: Vec<ironfence_galera::split::MemberReport> = rows
        .iter()
        .filter_map(|(name, r)| {
            let s = r.as_ref().ok()?;
            Some(ironfence_galera::split::MemberReport {
                name: name.trim_end_matches(" (this server)").to_string(),
                running: s.running,
                primary: s.primary,
                cluster_size: s.cluster_size,
                incoming_addresses: s.incoming_addresses.clone(),
                state_uuid: s.state_uuid.clone(),
                last_committed: s.last_committed,
            })
        })
        .collect();
    ironfence_galera::split::check(&reports)
}

/// The status table.
pub(crate) fn render(rows: &[(String, Result<DbState, String>)]) -> String {
    let mut out = String::new();
    let header = [
        "server",
        "running",
        "cluster_status",
        "size",
        "local_state",
        "ready",
        "last_committed",
        "safe_to_bootstrap",
        "state_uuid",
        "incoming_addresses",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let mut notes = Vec::new();
    for (name, r) in rows {
        match r {
            Ok(s) => table.push(vec![
                name.clone(),
                yes_no(s.running).into(),
                dash(&s.cluster_status),
                s.cluster_size.map_or("-".into(), |n| n.to_string()),
                if s.maintenance {
                    "maintenance".into()
                } else {
                    dash(&s.local_state)
                },
                if s.running {
                    if s.ready { "ON" } else { "OFF" }
                } else {
                    "-"
                }
                .into(),
                s.last_committed.map_or("-".into(), |n| n.to_string()),
                if s.safe_to_bootstrap { "1" } else { "0" }.into(),
                s.state_uuid.clone().unwrap_or_else(|| "-".into()),
                if s.incoming_addresses.is_empty() {
                    "-".into()
                } else {
                    s.incoming_addresses.join(",")
                },
            ]),
            Err(e) => {
                let mut row = vec![name.clone(), "?".into()];
                row.extend(std::iter::repeat_n("?".to_string(), header.len() - 2));
                table.push(row);
                notes.push(format!("{name}: no answer: {e}"));
            }
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let up = DbState {
            running: true,
            primary: true,
            synced: true,
            ready: true,
            cluster_size: Some(2),
            last_committed: Some(12),
            cluster_status: "Primary".into(),
            local_state: "Synced".into(),
            incoming_addresses: vec!["10.0.0.1:3306".into(), "10.0.0.2:3306".into()],
            ..DbState::default()
        };
        let down = DbState {
            last_committed: Some(9),
            safe_to_bootstrap: true,
            ..DbState::default()
        };
        let t = render(&[
            ("pf1 (this server)".into(), Ok(up)),
            ("pf2".into(), Ok(down)),
            ("pf3".into(), Err("cannot reach 10.0.0.3:9090".into())),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("server"), "{t}");
        assert!(
            lines[1].contains("Primary")
                && lines[1].contains("Synced")
                && lines[1].contains("10.0.0.1:3306,10.0.0.2:3306"),
            "{t}"
        );
        let pf2: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            pf2,
            ["pf2", "no", "-", "-", "-", "-", "9", "1", "-", "-"],
            "{t}"
        );
        assert!(t.contains("pf3: no answer: cannot reach"), "{t}");
    }

    #[test]
    fn split_is_reported_by_member_name() {
        let primary = |size: u32, addrs: &[&str]| DbState {
            running: true,
            primary: true,
            cluster_size: Some(size),
            incoming_addresses: addrs.iter().map(|a| a.to_string()).collect(),
            state_uuid: Some("5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b".into()),
            ..DbState::default()
        };
        let rows = vec![
            ("pf1 (this server)".to_string(), Ok(primary(1, &["a:3306"]))),
            ("pf2".to_string(), Ok(primary(2, &["b:3306", "c:3306"]))),
            ("pf3".to_string(), Err("timeout".to_string())),
        ];
        let e = split_errors(&rows);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("[pf1 (cluster size 1)] and [pf2 (cluster size 2)]"),
            "{e:?}"
        );
        assert!(split_errors(&rows[1..]).is_empty());
    }
}

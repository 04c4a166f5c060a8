//! `ironfence db start`: the supervised start of this server's Galera node. It gathers the
//! inputs of the start decision (grastate.dat, gvwstate.dat, the recovered position, the
//! peers' answers), logs them with the decision, acts on it, watches the node's health and
//! restarts mariadbd when it dies (deciding again: after a crash that means `--wsrep-recover`
//! first). It stops mariadbd gracefully when asked to stop, so that the last node to leave
//! gets `safe_to_bootstrap: 1`.
//!
//! **Reload (SIGHUP).** `configs` delivers each configuration the command loaded successfully
//! (a refused one never reaches here: the running one stays in force). A new one is used by
//! every later decision and restart, and `my.cnf` is rewritten at once, so the next start of
//! mariadbd — after a crash or an operator restart — runs with it. The running mariadbd is not
//! restarted: a new member is found by gossip without changing `wsrep_cluster_address`, and
//! restarting a healthy node to apply a file would cost the cluster a member for a state
//! transfer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironfence_config::Config;
use ironfence_galera::{GaleraLayout, StartDecision, StartInputs, decide_start};
use tokio::sync::watch;

use super::process::{self, Mariadbd, Programs, StartMode};
use super::{files, query, state};
use crate::cluster::LocalClusterState;

/// Between two decisions while waiting.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// Health poll period while mariadbd runs.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Health poll period until the node is healthy for the first time (time to Primary).
const STARTING_INTERVAL: Duration = Duration::from_millis(200);
/// How long mariadbd gets to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(120);
/// A mariadbd that ran at least this long before dying is restarted at once; one that keeps
/// dying sooner is restarted after a growing pause (at once, then 1 s, doubling, up to 30 s).
const STABLE_RUN: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// `mariadbd --wsrep-recover` and `mariadb-install-db` must finish within this.
const HELPER_TIMEOUT: Duration = Duration::from_secs(300);
/// A waiting decision is logged again at least this often.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(30);

/// `ironfence db start` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// `--force-new-cluster`: the operator elects this server to start a new cluster.
    pub force_new_cluster: bool,
    /// `--i-know-this-splits-the-cluster`: force even though a peer's database is Primary (the
    /// split-brain procedure only; without it such a force is refused).
    pub split_override: bool,
}

/// Runs until `shutdown` turns true (then stops mariadbd gracefully and returns `Ok`), or
/// until the decision refuses to start (`Err` with the reason, which says what to do).
pub async fn run(
    mut configs: watch::Receiver<Arc<Config>>,
    options: StartOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let first = configs.borrow_and_update().clone();
    let config: &Config = &first;
    let me = config.this_server().ok_or_else(|| {
        format!(
            "this server {:?} is not in cluster.conf: the replicated database runs only on cluster members; add its section or set IRONFENCE_HOSTNAME to its section name",
            config.identity
        )
    })?;
    let (this_name, this_index) = (me.name.clone(), me.index);
    let layout = GaleraLayout::from_config(config);
    let programs = Programs::find()?;
    let mysql = files::mysql_account()?;
    crate::settings::prepare_state_dir(config).map_err(|e| {
        format!(
            "cannot prepare {}: {e}",
            config.pf.general.state_dir.display()
        )
    })?;
    files::prepare_dirs(&layout, mysql)?;
    if let Ok(s) = query::wsrep_status(&programs.client, &layout.socket).await {
        return Err(format!(
            "a mariadbd already answers on {} (wsrep_cluster_status {}): it was not started by this supervisor; stop it first (the PID is in {})",
            layout.socket.display(),
            if s.cluster_status.is_empty() {
                "unknown"
            } else {
                &s.cluster_status
            },
            layout.pid_file.display()
        ));
    }

    let mut force = options.force_new_cluster;
    // The position of `--wsrep-recover`, valid while grastate.dat says seqno -1 for its uuid.
    let mut recovered: Option<(String, i64)> = files::read_recovered(&layout).filter(|r| {
        files::read_grastate(&layout)
            .ok()
            .flatten()
            .is_some_and(|g| g.needs_recovery() && g.uuid.eq_ignore_ascii_case(&r.0))
    });
    let mut backoff = Duration::ZERO;
    let mut last_wait: Option<(String, Instant)> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let current = configs.borrow_and_update().clone();
        let config: &Config = &current;
        let local = LocalClusterState::load(&config.pf.general.state_dir)
            .map_err(|e| format!("cannot read this server's cluster state: {e}"))?;
        let grastate = files::read_grastate(&layout)?;
        if !grastate.as_ref().is_some_and(|g| g.needs_recovery()) {
            recovered = None;
        }
        let answers = state::ask_peers(config, state::PEER_DB_TIMEOUT).await?;
        for a in &answers {
            if let Err(e) = &a.answer {
                tracing::debug!(peer = %a.name, error = %e, "peer did not report its database state");
            }
        }
        super::write_config(config, &answers)?;
        let inputs = StartInputs {
            maintenance: local.maintenance,
            force_new_cluster: force,
            split_override: force && options.split_override,
            local: grastate.clone(),
            gvwstate_present: layout.gvwstate().exists(),
            recovered: recovered.as_ref().map(|r| r.1),
            peers: answers
                .iter()
                .map(|a| state::peer_from(&a.name, a.index, a.answer.as_ref().ok()))
                .collect(),
            total_members: 1 + answers.len(),
            // cluster.conf order may have changed with a reload (the name cannot: the
            // command refuses a configuration without this server).
            this_index: config.this_server().map_or(this_index, |s| s.index),
            this_name: this_name.clone(),
        };
        let decision = decide_start(&inputs);
        let mode = match &decision {
            StartDecision::Refuse { reason } => {
                tracing::error!(inputs = %inputs, "database start refused: {reason}");
                return Err(reason.clone());
            }
            StartDecision::Recover => {
                tracing::info!(inputs = %inputs, "{decision}");
                recovered = Some(recover(&programs, &layout).await?);
                continue;
            }
            StartDecision::Wait { .. } => {
                let text = decision.to_string();
                let repeat = last_wait
                    .as_ref()
                    .is_some_and(|(t, at)| *t == text && at.elapsed() < WAIT_LOG_EVERY);
                if !repeat {
                    tracing::warn!(inputs = %inputs, "database not started: {text}");
                    last_wait = Some((text, Instant::now()));
                }
                if sleep_or_shutdown(RETRY_INTERVAL, &mut shutdown).await {
                    return Ok(());
                }
                continue;
            }
            StartDecision::Bootstrap {
                recovered_position, ..
            } => {
                tracing::warn!(inputs = %inputs, "{decision}");
                // mariadbd refuses --wsrep-new-cluster without safe_to_bootstrap: 1; the
                // decision (operator's force, the last node to leave, or the elected highest
                // seqno) makes it safe.
                files::force_bootstrap_files(&layout)?;
                if grastate.is_none() && !files::datadir_initialised(&layout) {
                    initialise_datadir(&programs, &layout).await?;
                }
                StartMode {
                    new_cluster: true,
                    start_position: recovered.clone().filter(|_| recovered_position.is_some()),
                }
            }
            StartDecision::Join { .. } | StartDecision::StartForPcRecovery { .. } => {
                tracing::info!(inputs = %inputs, "{decision}");
                StartMode {
                    new_cluster: false,
                    start_position: recovered
                        .clone()
                        .filter(|_| inputs.start_position().is_some()),
                }
            }
        };
        last_wait = None;
        let bootstrap = mode.new_cluster;
        let args = process::start_args(&layout.config_file, &mode);
        let mut child = Mariadbd::spawn(&programs.mariadbd, &args)?;
        tracing::info!(
            pid = child.pid(),
            args = ?args,
            "mariadbd started"
        );
        // The recovered position stays published (peers' elections read it through our API)
        // until the node is healthy; after another crash a new recovery is needed.
        recovered = None;
        force = false;

        let exit = watch_node(
            &mut configs,
            &programs,
            &layout,
            &mut child,
            bootstrap,
            &mut shutdown,
        )
        .await;
        let ran = child.started().elapsed();
        match exit {
            None => {
                let t = Instant::now();
                let how = child.stop(STOP_GRACE).await;
                tracing::info!(
                    "mariadbd stopped ({how}) {} ms after SIGTERM",
                    t.elapsed().as_millis()
                );
                return Ok(());
            }
            Some(status) => {
                tracing::error!(
                    %status,
                    ran_s = ran.as_secs_f64(),
                    errors = %last_errors(&layout, 6),
                    "mariadbd exited: deciding again and restarting it (see {})",
                    layout.error_log.display()
                );
            }
        }
        if ran >= STABLE_RUN {
            backoff = Duration::ZERO;
        } else {
            if sleep_or_shutdown(backoff, &mut shutdown).await {
                return Ok(());
            }
            backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
        }
    }
}

/// Watches the running node until it exits (`Some(status)`) or shutdown is asked (`None`).
/// Logs health transitions; on a bootstrap, creates the accounts once the node is healthy.
async fn watch_node(
    configs: &mut watch::Receiver<Arc<Config>>,
    programs: &Programs,
    layout: &GaleraLayout,
    child: &mut Mariadbd,
    bootstrap: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<String> {
    let mut ever_healthy = false;
    let mut healthy: Option<bool> = None;
    let mut last_reason = String::new();
    let mut accounts_done = !bootstrap;
    let mut accounts_warned = false;
    loop {
        let period = if ever_healthy {
            HEALTH_INTERVAL
        } else {
            STARTING_INTERVAL
        };
        tokio::select! {
            status = child.wait() => return Some(status),
            _ = shutdown.wait_for(|s| *s) => return None,
            changed = configs.changed() => {
                if changed.is_ok() {
                    let config = configs.borrow_and_update().clone();
                    rewrite_config(&config).await;
                }
                continue;
            }
            _ = tokio::time::sleep(period) => {}
        }
        let config = configs.borrow().clone();
        let config: &Config = &config;
        let Ok(status) = query::wsrep_status(&programs.client, &layout.socket).await else {
            if healthy == Some(true) {
                tracing::warn!("the database stopped answering on its socket");
                healthy = Some(false);
            }
            continue;
        };
        match status.unhealthy_reason() {
            None => {
                if healthy != Some(true) {
                    tracing::info!(
                        cluster_size = ?status.cluster_size,
                        last_committed = ?status.last_committed,
                        incoming = %status.incoming_addresses.join(","),
                        "database healthy (Primary, Synced, wsrep_ready=ON) {:.2} s after mariadbd started",
                        child.started().elapsed().as_secs_f64()
                    );
                    healthy = Some(true);
                    if !ever_healthy {
                        files::clear_recovered(layout);
                    }
                    ever_healthy = true;
                    last_reason.clear();
                }
                if !accounts_done {
                    match super::init_accounts(config).await {
                        Ok(done) => {
                            tracing::info!(accounts = ?done, "database accounts ensured on the bootstrap node");
                            accounts_done = true;
                        }
                        Err(e) if !accounts_warned => {
                            tracing::warn!(error = %e, "cannot create the replication/application accounts yet (retrying); `ironfence db init-replication-user` does it by hand");
                            accounts_warned = true;
                        }
                        Err(_) => {}
                    }
                }
            }
            Some(reason) => {
                if healthy == Some(true) || reason != last_reason {
                    tracing::warn!(
                        local_state = %status.local_state_comment,
                        "database not healthy: {reason}"
                    );
                }
                healthy = Some(false);
                last_reason = reason;
            }
        }
    }
}

/// A reloaded configuration: `my.cnf` rewritten for the next start of mariadbd.
async fn rewrite_config(config: &Config) {
    let answers = match state::ask_peers(config, state::PEER_DB_TIMEOUT).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "configuration reloaded, but my.cnf was not rewritten");
            return;
        }
    };
    match super::write_config(config, &answers) {
        Ok(path) => tracing::info!(
            file = %path.display(),
            "configuration reloaded (SIGHUP): my.cnf rewritten; the running mariadbd keeps its settings until its next start"
        ),
        Err(e) => {
            tracing::error!(error = %e, "configuration reloaded, but my.cnf was not rewritten")
        }
    }
}

/// `mariadbd --wsrep-recover`: the position of the last committed transaction after an
/// unclean stop. Cached on disk for the peers' decisions (`GET /api/v1/cluster/db`).
async fn recover(programs: &Programs, layout: &GaleraLayout) -> Result<(String, i64), String> {
    let log = files::recover_log(layout);
    let _ = std::fs::remove_file(&log);
    let t = Instant::now();
    let run = process::run(
        &programs.mariadbd,
        process::recover_args(&layout.config_file, &log),
        None,
        HELPER_TIMEOUT,
    )
    .await;
    // mysql writes this log in a directory it can write: never follow a link planted there.
    let text = read_tail(&log, 1 << 20);
    match ironfence_galera::parse_wsrep_recover(&text) {
        Some((uuid, seqno)) => {
            tracing::info!(
                position = %format!("{uuid}:{seqno}"),
                "recovered the last committed position with mariadbd --wsrep-recover in {} ms",
                t.elapsed().as_millis()
            );
            files::write_recovered(layout, &uuid, seqno)?;
            Ok((uuid, seqno))
        }
        None => Err(format!(
            "mariadbd --wsrep-recover found no position ({}); its log {} says: {}. The datadir may be damaged: if another member has the data, empty {} and start again to get a full copy (SST)",
            run.err().unwrap_or_else(|| "it exited normally".into()),
            log.display(),
            tail_matching(&text, 6, |_| true),
            layout.datadir.display()
        )),
    }
}

/// `mariadb-install-db` on an empty datadir (the bootstrap node only).
async fn initialise_datadir(programs: &Programs, layout: &GaleraLayout) -> Result<(), String> {
    let t = Instant::now();
    process::run(
        &programs.install_db,
        process::install_db_args(&layout.config_file),
        None,
        HELPER_TIMEOUT,
    )
    .await
    .map_err(|e| {
        format!(
            "initialising the empty datadir {} failed: {e}",
            layout.datadir.display()
        )
    })?;
    tracing::info!(
        datadir = %layout.datadir.display(),
        "initialised the empty datadir with mariadb-install-db in {} ms",
        t.elapsed().as_millis()
    );
    Ok(())
}

/// True when shutdown was asked during the pause.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.wait_for(|s| *s) => true,
    };
    stopped || *shutdown.borrow()
}

/// The last `n` `[ERROR]` lines of the error log (its last 64 KiB), for the operator.
fn last_errors(layout: &GaleraLayout, n: usize) -> String {
    let text = read_tail(&layout.error_log, 64 << 10);
    tail_matching(&text, n, |l| l.contains("[ERROR]"))
}

/// The last `max` bytes of a log `mysql` writes (in a directory it can write), never through
/// a symbolic link planted at its name.
fn read_tail(path: &std::path::Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = files::open_nofollow(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn tail_matching(text: &str, n: usize, keep: impl Fn(&str) -> bool) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        "(nothing logged)".to_string()
    } else {
        tail.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_tail() {
        let log = "a\n[ERROR] one\nb\n[ERROR] two\n[ERROR] three\n";
        assert_eq!(
            tail_matching(log, 2, |l| l.contains("[ERROR]")),
            "[ERROR] two | [ERROR] three"
        );
        assert_eq!(tail_matching("", 2, |_| true), "(nothing logged)");
    }

    /// A link `mysql` planted at the error log's name is not read (root would otherwise copy
    /// lines of any file into its own log and error messages).
    #[test]
    fn logs_are_not_read_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let layout = GaleraLayout::new(dir.path());
        std::fs::create_dir_all(files::base_dir(&layout)).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "[ERROR] root-only secret\n").unwrap();
        std::os::unix::fs::symlink(&victim, &layout.error_log).unwrap();
        assert_eq!(last_errors(&layout, 6), "(nothing logged)");
        std::fs::remove_file(&layout.error_log).unwrap();
        std::fs::write(&layout.error_log, "[ERROR] mariadbd's own\n").unwrap();
        assert_eq!(last_errors(&layout, 6), "[ERROR] mariadbd's own");
    }
}

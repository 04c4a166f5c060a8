//! This server's MariaDB Galera node: the IO around the pure decision layer of
//! `ironfence-galera` (generated option file, grastate.dat, the start decision, wsrep health).
//!
//! ```text
//!  ironfence db start ──► supervisor ─┬─ state::ask_peers ── GET /api/v1/cluster/db ──► peers'
//!   (its own service,                 │                                      `ironfence serve`
//!    like PacketFence's               ├─ files: layout dirs (owner mysql), my.cnf 0640 root:mysql,
//!    packetfence-mariadb)             │         grastate.dat, gvwstate.dat, recovered position
//!                                     ├─ ironfence_galera::decide_start(StartInputs) ─► decision
//!                                     ├─ process: mariadb-install-db, mariadbd --wsrep-recover,
//!                                     │           mariadbd [--wsrep-new-cluster] (user=mysql)
//!                                     └─ query: SHOW GLOBAL STATUS LIKE 'wsrep%' over the socket
//!  ironfence serve ──► ClusterService::db_state ──► state::local_db_state (socket + datadir)
//! ```
//!
//! `ironfence db start` runs as its own long-lived process (a systemd service of its own, as
//! PacketFence's `packetfence-mariadb`), not inside `ironfence serve`: the database must be
//! able to start, stop and restart without the NAC daemon, and the daemon without it.
//! The automatic all-members election after a total outage (the highest last committed seqno
//! bootstraps, see `ironfence_galera::bootstrap`) needs the answers of every member's
//! node-to-node API: **`ironfence serve` must run on every member** (it answers
//! `GET /api/v1/cluster/db` from the local socket and datadir even while the database is
//! down). Without it that member counts as not answering and the election waits, telling the
//! operator which `ironfence db start --force-new-cluster` decides.

pub mod files;
pub mod process;
pub mod query;
pub mod state;
pub mod supervisor;

use std::path::PathBuf;

use ironfence_config::{Config, DatabaseConf};
use ironfence_galera::{GaleraLayout, Member};

pub use state::{PeerAnswer, ask_peers, local_db_state};
pub use supervisor::{StartOptions, run as supervise};

/// Writes this server's MariaDB option file for the enabled members (not disabled by this
/// server, not in maintenance as reported by the peers in `answers`), with mode 0640,
/// root:mysql, and the layout's directories. Returns its path.
pub fn write_config(config: &Config, answers: &[PeerAnswer]) -> Result<PathBuf, String> {
    let local = crate::cluster::LocalClusterState::load(&config.pf.general.state_dir)
        .map_err(|e| e.to_string())?;
    let mysql = files::mysql_account()?;
    let layout = GaleraLayout::from_config(config);
    let members = Member::from_config(
        config,
        &local.disabled_peers,
        &state::in_maintenance(answers),
    );
    let text = ironfence_galera::generate(config, &members, &layout).map_err(|e| e.to_string())?;
    crate::settings::prepare_state_dir(config).map_err(|e| {
        format!(
            "cannot prepare {}: {e}",
            config.pf.general.state_dir.display()
        )
    })?;
    files::prepare_dirs(&layout, mysql)?;
    files::write_config(&layout.config_file, &text, Some(mysql.gid))?;
    Ok(layout.config_file)
}

/// Creates (idempotently) the replication account and the application database/account of
/// pf.conf `[database]` on the local node, over its socket as root.
pub async fn init_accounts(config: &Config) -> Result<Vec<String>, String> {
    let aa = &config.pf.active_active;
    let user = aa
        .galera_replication_username
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or("pf.conf [active_active] galera_replication_username is not set: set it (and galera_replication_password) first")?;
    let pass = aa
        .galera_replication_password
        .as_ref()
        .filter(|p| !p.is_empty())
        .ok_or("pf.conf [active_active] galera_replication_password is empty: set it first")?;
    let app = match &config.pf.database {
        DatabaseConf::Mysql(m) => Some(m),
        DatabaseConf::Sqlite { .. } => None,
    };
    let layout = GaleraLayout::from_config(config);
    let client = process::Programs::find_client()?;
    query::run_sql(
        &client,
        &layout.socket,
        &query::accounts_sql(user.trim(), pass.expose(), app),
    )
    .await
    .map_err(|e| {
        format!(
            "{e}: is the database running and Primary here (`ironfence db status`)? Run this on a member whose database is up"
        )
    })?;
    let mut done = vec![format!(
        "replication user {}@'%' and @'localhost' ({})",
        user.trim(),
        query::REPLICATION_GRANTS
    )];
    if let Some(app) = app {
        done.push(format!(
            "database {} and application user {}@'%' and @'localhost' (ALL on {}.*)",
            app.db, app.user, app.db
        ));
    }
    Ok(done)
}

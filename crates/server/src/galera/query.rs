//! Queries to the local mariadbd over its unix socket, as root (unix_socket authentication):
//! the wsrep status (health is `Primary` + `Synced` + `wsrep_ready=ON`, never a TCP check or
//! `SELECT 1`) and the creation of the replication and application accounts. SQL goes through
//! the client's stdin, never its command line (passwords would show in `ps`).

use std::path::Path;
use std::time::Duration;

use ironfence_config::MysqlConf;
use ironfence_galera::WsrepStatus;

use super::process;

/// Bound of one status query.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `sql` on the local server through `socket`. Returns the tab-separated rows.
pub async fn run_sql(client: &Path, socket: &Path, sql: &str) -> Result<String, String> {
    process::run(
        client,
        process::client_args(socket),
        Some(sql.to_string()),
        QUERY_TIMEOUT,
    )
    .await
}

/// `SHOW GLOBAL STATUS LIKE 'wsrep%'` on the local server. `Err` when it does not answer
/// (not running, still starting, or waiting for a primary component without a socket yet).
pub async fn wsrep_status(client: &Path, socket: &Path) -> Result<WsrepStatus, String> {
    if !socket.exists() {
        return Err(format!("no MariaDB socket at {}", socket.display()));
    }
    let out = run_sql(client, socket, "SHOW GLOBAL STATUS LIKE 'wsrep%';\n").await?;
    Ok(WsrepStatus::from_status_rows(&parse_rows(&out)))
}

/// `name<TAB>value` lines.
pub fn parse_rows(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// A SQL string literal (MariaDB's default sql_mode: `\` escapes, `'` doubles).
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A SQL identifier in backquotes.
pub fn identifier(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// The grants of the replication account: the clustering guide's (RELOAD, LOCK TABLES,
/// REPLICATION CLIENT, SUPER) plus what a mariabackup SST needs per the lab notes (PROCESS,
/// BINLOG MONITOR). rsync SST needs no account, but `wsrep_sst_auth` names this one.
pub const REPLICATION_GRANTS: &str =
    "RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT, BINLOG MONITOR, SUPER";

/// Idempotent SQL creating the replication account `user@'%'` and `user@'localhost'` and, when
/// given, the application database and account of pf.conf `[database]`. Existing accounts
/// get pf.conf's password (pf.conf is the reference) and the grants.
pub fn accounts_sql(repl_user: &str, repl_pass: &str, app: Option<&MysqlConf>) -> String {
    let mut sql = String::new();
    for host in ["%", "localhost"] {
        let account = format!("{}@{}", literal(repl_user), literal(host));
        sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {p};\nALTER USER {account} IDENTIFIED BY {p};\nGRANT {REPLICATION_GRANTS} ON *.* TO {account};\n",
            p = literal(repl_pass)
        ));
    }
    if let Some(app) = app {
        sql.push_str(&format!(
            "CREATE DATABASE IF NOT EXISTS {};\n",
            identifier(&app.db)
        ));
        for host in ["%", "localhost"] {
            let account = format!("{}@{}", literal(&app.user), literal(host));
            sql.push_str(&format!(
                "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {p};\nALTER USER {account} IDENTIFIED BY {p};\nGRANT ALL PRIVILEGES ON {}.* TO {account};\n",
                identifier(&app.db),
                p = literal(app.pass.expose())
            ));
        }
    }
    // The guide's "remove the empty users" step, as a statement Galera replicates (a DELETE
    // on the mysql schema's Aria tables would not be).
    sql.push_str("DROP USER IF EXISTS ''@'localhost';\nFLUSH PRIVILEGES;\n");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_config::Secret;

    #[test]
    fn rows() {
        let rows = parse_rows(
            "wsrep_cluster_status\tPrimary\nwsrep_ready\tON\nwsrep_incoming_addresses\t127.0.0.1:3306\n",
        );
        let s = WsrepStatus::from_status_rows(&rows);
        assert_eq!(s.cluster_status, "Primary");
        assert!(s.ready);
        assert_eq!(s.incoming_addresses, ["127.0.0.1:3306"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(literal("a'b\\c"), "'a''b\\\\c'");
        assert_eq!(identifier("p`f"), "`p``f`");
    }

    #[test]
    fn accounts() {
        let app = MysqlConf {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "pf".into(),
            pass: Secret::new("app'pass"),
            db: "pf".into(),
        };
        let sql = accounts_sql("repl", "s3cr'et", Some(&app));
        for host in ["'%'", "'localhost'"] {
            assert!(
                sql.contains(&format!(
                    "CREATE USER IF NOT EXISTS 'repl'@{host} IDENTIFIED BY 's3cr''et';"
                )),
                "{sql}"
            );
            assert!(sql.contains(&format!("GRANT RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT, BINLOG MONITOR, SUPER ON *.* TO 'repl'@{host};")), "{sql}");
            assert!(
                sql.contains(&format!("GRANT ALL PRIVILEGES ON `pf`.* TO 'pf'@{host};")),
                "{sql}"
            );
        }
        assert!(sql.contains("CREATE DATABASE IF NOT EXISTS `pf`;"));
        assert!(sql.contains("IDENTIFIED BY 'app''pass'"));
        assert!(!accounts_sql("repl", "x", None).contains("DATABASE"));
    }
}

//! Runs the generic suite (`suite/mod.rs`) against both backends.
//!
//! * **SQLite**: one `#[tokio::test]` per case, each on its own file in a temp dir.
//! * **MariaDB**: a single test, `mariadb_suite`, starts one real `mariadbd` (testkit) and runs
//!   every case sequentially, each in its own database. The server guard is a local of that
//!   test, so it is dropped — the process stopped by PID and its directory removed — on every
//!   path, panics included; cases run as spawned tasks, so a failing case is reported by name
//!   and the remaining cases still run. (A lazily started `static` server would never be
//!   dropped and would depend on the testkit watchdog alone for cleanup.)

mod suite;

use ironfence_store::{Store, StoreConfig, StoreError};
use ironfence_testkit::MariaDb;
use std::time::Instant;

fn sqlite_cfg(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig::Sqlite {
        // A not-yet-existing subdirectory: open must create it.
        path: dir.path().join("db").join("ironfence.sqlite"),
    }
}

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    suite::$name(sqlite_cfg(&dir)).await;
                }
            )*
        }
    };
}
with_cases!(sqlite_tests);

fn mysql_cfg(db: &MariaDb, database: &str) -> StoreConfig {
    StoreConfig::MySql {
        host: db.host().to_string(),
        port: db.port(),
        user: db.user().to_string(),
        password: db.password().to_string(),
        database: database.to_string(),
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into()),
        Err(e) => e.to_string(),
    }
}

/// MariaDB-only: `--read-only` makes writes fail as `ReadOnly` (retryable) while reads work.
async fn read_only_server_is_reported(db: &MariaDb, cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    store
        .create_node_if_absent(suite::mac(1), suite::T0)
        .await
        .unwrap();
    db.admin_sql("SET GLOBAL read_only = 1")
        .expect("set read_only");
    let write = store.create_node_if_absent(suite::mac(2), suite::T0).await;
    let read = store.node_view(suite::mac(1)).await;
    db.admin_sql("SET GLOBAL read_only = 0")
        .expect("reset read_only");
    match write {
        Err(e @ StoreError::ReadOnly { code: 1290, .. }) => assert!(e.is_retryable()),
        other => panic!("expected ReadOnly(1290), got {other:?}"),
    }
    assert!(read.expect("reads still work").is_some());
    store.close().await;
}

/// MariaDB-only: nothing listening is `Unavailable`, with the address in the message.
async fn unreachable_server_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = StoreConfig::MySql {
        host: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        password: "x".into(),
        database: "none".into(),
    };
    match Store::open(&cfg).await {
        Err(e @ StoreError::Unavailable { .. }) => {
            assert!(e.to_string().contains(&port.to_string()), "{e}");
            assert!(e.is_retryable());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_suite() {
    let t = Instant::now();
    let db = tokio::task::block_in_place(MariaDb::start).expect("start mariadbd");
    println!(
        "mariadbd pid {} on port {} started in {:.2?}",
        db.pid(),
        db.port(),
        t.elapsed()
    );

    // The change poller's causal read (`SET SESSION wsrep_sync_wait = 1`) must work on a
    // MariaDB without Galera too: show what this server says about it.
    println!(
        "wsrep on this mariadbd: {}",
        db.admin_sql("SELECT @@version, @@global.wsrep_on, @@session.wsrep_sync_wait")
            .unwrap_or_else(|e| format!("not available ({e})"))
            .trim()
    );
    let mut failures = Vec::new();
    for (name, case) in suite::CASES {
        db.create_database(name).expect("create database");
        let t = Instant::now();
        match tokio::spawn(case(mysql_cfg(&db, name))).await {
            Ok(()) => println!("[mysql] {name} ok ({:.2?})", t.elapsed()),
            Err(e) => failures.push(format!("{name}: {}", panic_message(e))),
        }
    }

    db.create_database("read_only").expect("create database");
    read_only_server_is_reported(&db, mysql_cfg(&db, "read_only")).await;
    unreachable_server_is_unavailable().await;

    drop(db);
    assert!(
        failures.is_empty(),
        "MariaDB cases failed:\n{}",
        failures.join("\n")
    );
}

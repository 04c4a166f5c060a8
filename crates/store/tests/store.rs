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

/// MariaDB-only: auto-increment ids are taken at insert, not at commit, so a change can commit
/// after one with a higher id (concurrent transactions here; across nodes on Galera). The
/// poller's look-back window must still apply it, within the staleness bound of its commit.
async fn change_committed_out_of_id_order_is_applied(cfg: StoreConfig) {
    use ironfence_store::node_cache::{CacheSettings, CachedNodes};
    use sqlx::Connection;
    use std::sync::Arc;
    use std::time::Duration;
    let a = Store::open(&cfg).await.expect("open");
    let settings = CacheSettings::default();
    let b = Arc::new(CachedNodes::new(
        Store::open(&cfg).await.expect("open"),
        &settings,
    ));
    let (late, early) = (suite::mac(501), suite::mac(502));
    b.poll_once().await.unwrap();
    assert_eq!(
        b.policy_view(late).await.unwrap(),
        None,
        "cached as unknown"
    );

    // A writer takes its change id and stalls before committing…
    let StoreConfig::MySql {
        host,
        port,
        user,
        password,
        database,
    } = &cfg
    else {
        unreachable!()
    };
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(host)
        .port(*port)
        .username(user)
        .password(password)
        .database(database);
    let mut slow = sqlx::mysql::MySqlConnection::connect_with(&opts)
        .await
        .unwrap();
    let mut tx = slow.begin().await.unwrap();
    sqlx::query("INSERT INTO node (mac, pid, status) VALUES (?, 'default', 'unreg')")
        .bind(late.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO node_change (mac, changed_at) VALUES (?, UNIX_TIMESTAMP())")
        .bind(late.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    // …while another change, with a higher id, commits and is polled.
    a.create_node_if_absent(early, suite::T0).await.unwrap();
    for _ in 0..3 {
        b.poll_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(b.policy_view(early).await.unwrap().is_some());
    assert_eq!(
        b.policy_view(late).await.unwrap(),
        None,
        "not committed yet"
    );
    tx.commit().await.unwrap();
    let committed = Instant::now();
    loop {
        b.poll_once().await.unwrap();
        let asked = Instant::now();
        if b.policy_view(late).await.unwrap().is_some() {
            break;
        }
        assert!(
            asked < committed + settings.max_staleness,
            "change committed out of id order still not seen after {:?}",
            asked - committed
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    slow.close().await.unwrap();
    a.close().await;
    b.store().close().await;
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
    db.create_database("out_of_order").expect("create database");
    change_committed_out_of_id_order_is_applied(mysql_cfg(&db, "out_of_order")).await;

    drop(db);
    assert!(
        failures.is_empty(),
        "MariaDB cases failed:\n{}",
        failures.join("\n")
    );
}

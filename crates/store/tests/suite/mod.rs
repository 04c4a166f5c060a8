//! The backend-independent store test suite. Every case takes the configuration of an empty
//! database, opens it itself (some cases reopen it) and panics on failure.

use ironfence_core::{Mac, Node, NodeStatus};
use ironfence_store::migrations::LATEST_VERSION;
use ironfence_store::node_cache::{CacheSettings, CachedNodes, Lookup};
use ironfence_store::{
    AccountingEvent, AccountingKind, AuditRecord, NodeFilter, NodeLookup, Person, Store,
    StoreConfig, StoreError,
};
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

mod admin_nodes;
mod dhcp;
pub use admin_nodes::*;
pub use dhcp::*;

pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
pub type Case = fn(StoreConfig) -> CaseFuture;

/// Calls `$cb!` with the names of all generic cases (so each harness can generate its tests).
#[macro_export]
macro_rules! with_cases {
    ($cb:ident) => {
        $cb!(
            migrations_from_empty_and_idempotent_reopen,
            newer_schema_is_refused,
            create_if_absent_is_idempotent_and_race_safe,
            register_unregister_delete,
            node_view_counts_open_security_events,
            accounting_start_interim_stop,
            accounting_on_closes_only_that_switch,
            idempotent_accounting_applies_each_key_once,
            concurrent_accounting_keeps_one_open_entry,
            concurrent_security_event_opens_once,
            ip4log_follows_framed_ip,
            audit_batch_insert_and_count,
            bulk_import_100k_and_time_node_view,
            every_node_change_is_logged,
            two_servers_cache_coherence,
            portal_local_users_and_mac_for_ip,
            admin_audit_and_revoked_sessions,
            dhcp_claim_release_decline_and_ip4log,
            dhcp_concurrent_claims_never_share_an_address,
            admin_node_search_filters_sort_and_page,
            admin_node_update_logs_a_change,
            admin_people_search_and_delete
        );
    };
}

macro_rules! case_table {
    ($($name:ident),* $(,)?) => {
        /// `(name, case)` for every generic case, for harnesses that run them in a loop.
        pub const CASES: &[(&str, Case)] = &[$((stringify!($name), |cfg| Box::pin($name(cfg)))),*];
    };
}
with_cases!(case_table);

pub const T0: i64 = 1_700_000_000;

pub fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

async fn open(cfg: &StoreConfig) -> Store {
    Store::open(cfg).await.expect("open store")
}

/// Executes one statement directly on the database, bypassing the store.
async fn raw_exec(cfg: &StoreConfig, sql: &'static str) {
    match cfg {
        StoreConfig::Sqlite { path } => {
            let c = rusqlite::Connection::open(path).expect("raw sqlite open");
            c.execute_batch(sql).expect("raw sqlite exec");
        }
        StoreConfig::MySql {
            host,
            port,
            user,
            password,
            database,
        } => {
            use sqlx::Connection;
            let opts = sqlx::mysql::MySqlConnectOptions::new()
                .host(host)
                .port(*port)
                .username(user)
                .password(password)
                .database(database);
            let mut c = sqlx::mysql::MySqlConnection::connect_with(&opts)
                .await
                .expect("raw mysql connect");
            sqlx::raw_sql(sql)
                .execute(&mut c)
                .await
                .expect("raw mysql exec");
            c.close().await.expect("raw mysql close");
        }
    }
}

pub async fn migrations_from_empty_and_idempotent_reopen(cfg: StoreConfig) {
    let store = open(&cfg).await;
    assert_eq!(store.schema_version().await.unwrap(), LATEST_VERSION);
    assert_eq!(store.count_nodes().await.unwrap(), 0);
    // The `default` owner exists from the first migration.
    assert!(store.get_person("default").await.unwrap().is_some());
    store.create_node_if_absent(mac(1), T0).await.unwrap();
    store.close().await;
    drop(store);

    for _ in 0..2 {
        let store = open(&cfg).await;
        assert_eq!(store.schema_version().await.unwrap(), LATEST_VERSION);
        assert_eq!(
            store.count_nodes().await.unwrap(),
            1,
            "data survives reopen"
        );
        store.close().await;
    }
}

pub async fn newer_schema_is_refused(cfg: StoreConfig) {
    let store = open(&cfg).await;
    store.close().await;
    drop(store);
    raw_exec(
        &cfg,
        "INSERT INTO schema_version (version, description, applied_at)
         VALUES (999, 'from the future', 0)",
    )
    .await;
    match Store::open(&cfg).await {
        Err(e @ StoreError::Migration { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("999") && msg.contains("newer"), "{msg}");
            assert!(!e.is_retryable());
        }
        Err(e) => panic!("wrong error for a newer schema: {e:?}"),
        Ok(_) => panic!("a database with schema version 999 was opened"),
    }
}

pub async fn create_if_absent_is_idempotent_and_race_safe(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(7);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.create_node_if_absent(m, T0 + i).await })
        })
        .collect();
    let mut rows = Vec::new();
    for t in tasks {
        rows.push(t.await.expect("task").expect("create_node_if_absent"));
    }
    assert!(
        rows.windows(2).all(|w| w[0] == w[1]),
        "all callers see the same row"
    );
    let n = &rows[0];
    assert_eq!(n.mac, m);
    assert_eq!(n.status, NodeStatus::Unregistered);
    assert_eq!(n.pid, "default");
    assert_eq!(n.role, None);
    assert_eq!(store.count_nodes().await.unwrap(), 1);

    // Idempotent: a later call returns the stored row unchanged.
    let again = store.create_node_if_absent(m, T0 + 1000).await.unwrap();
    assert_eq!(&again, n);

    store.touch_last_seen(m, T0 + 2000).await.unwrap();
    assert_eq!(
        store.get_node(m).await.unwrap().unwrap().last_seen,
        Some(T0 + 2000)
    );
    store.touch_last_seen(mac(8), T0).await.unwrap(); // unknown MAC: no-op
    assert_eq!(store.count_nodes().await.unwrap(), 1);
    store.close().await;
}

pub async fn register_unregister_delete(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(20);
    // Registering an unknown MAC creates the node and its owner.
    let n = store
        .register_node(m, "alice", "staff", Some(T0 + 86_400), T0)
        .await
        .unwrap();
    assert_eq!(n.status, NodeStatus::Registered);
    assert_eq!(n.pid, "alice");
    assert_eq!(n.role.as_deref(), Some("staff"));
    assert_eq!(n.regdate, Some(T0));
    assert_eq!(n.unregdate, Some(T0 + 86_400));
    assert_eq!(store.get_node(m).await.unwrap(), Some(n.clone()));
    assert_eq!(
        store.get_person("alice").await.unwrap(),
        Some(Person::new("alice"))
    );

    store
        .upsert_person(&Person {
            pid: "alice".into(),
            firstname: Some("Alice".into()),
            lastname: Some("Liddell".into()),
            email: Some("alice@example.org".into()),
            notes: None,
        })
        .await
        .unwrap();
    let p = store.get_person("alice").await.unwrap().unwrap();
    assert_eq!(p.firstname.as_deref(), Some("Alice"));
    assert_eq!(p.email.as_deref(), Some("alice@example.org"));

    // Re-registering an existing node changes owner and role.
    store.create_node_if_absent(mac(21), T0).await.unwrap();
    let n2 = store
        .register_node(mac(21), "bob", "guest", None, T0 + 5)
        .await
        .unwrap();
    assert_eq!(
        (n2.pid.as_str(), n2.role.as_deref()),
        ("bob", Some("guest"))
    );
    assert_eq!(n2.unregdate, None);
    assert_eq!(n2.last_seen, Some(T0), "registration keeps last_seen");

    let reg = NodeFilter {
        status: Some(NodeStatus::Registered),
        ..NodeFilter::default()
    };
    assert_eq!(store.list_nodes(&reg).await.unwrap().len(), 2);
    let staff = NodeFilter {
        role: Some("staff".into()),
        ..NodeFilter::default()
    };
    assert_eq!(store.list_nodes(&staff).await.unwrap(), vec![n]);
    let page = NodeFilter {
        limit: 1,
        offset: 1,
        ..NodeFilter::default()
    };
    assert_eq!(store.list_nodes(&page).await.unwrap()[0].mac, mac(21));

    assert!(store.unregister_node(m, T0 + 10).await.unwrap());
    assert!(
        !store.unregister_node(m, T0 + 11).await.unwrap(),
        "already unregistered"
    );
    assert!(
        !store.unregister_node(mac(99), T0).await.unwrap(),
        "unknown"
    );
    let u = store.get_node(m).await.unwrap().unwrap();
    assert_eq!(u.status, NodeStatus::Unregistered);
    assert_eq!(u.unregdate, Some(T0 + 10));

    assert!(store.delete_node(m).await.unwrap());
    assert!(!store.delete_node(m).await.unwrap());
    assert_eq!(store.get_node(m).await.unwrap(), None);
    assert_eq!(store.count_nodes().await.unwrap(), 1);
    store.close().await;
}

pub async fn node_view_counts_open_security_events(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(30);
    assert_eq!(store.node_view(m).await.unwrap(), None);
    store
        .register_node(m, "carol", "staff", None, T0)
        .await
        .unwrap();
    let v = store.node_view(m).await.unwrap().unwrap();
    assert_eq!(v.open_security_events, 0);
    assert_eq!(v.node.pid, "carol");

    let a = store
        .open_security_event(m, 1100001, T0 + 1, Some("p2p"))
        .await
        .unwrap();
    assert_eq!(
        store
            .node_view(m)
            .await
            .unwrap()
            .unwrap()
            .open_security_events,
        1
    );
    let a2 = store
        .open_security_event(m, 1100001, T0 + 2, None)
        .await
        .unwrap();
    assert_eq!(a, a2, "the same event is not opened twice");
    store
        .open_security_event(m, 1200003, T0 + 3, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .node_view(m)
            .await
            .unwrap()
            .unwrap()
            .open_security_events,
        2
    );

    // Another node's events are not counted; an unknown MAC gets a node.
    store
        .open_security_event(mac(31), 1, T0, None)
        .await
        .unwrap();
    let other = store.node_view(mac(31)).await.unwrap().unwrap();
    assert_eq!(other.open_security_events, 1);
    assert_eq!(other.node.status, NodeStatus::Unregistered);
    assert_eq!(
        store
            .node_view(m)
            .await
            .unwrap()
            .unwrap()
            .open_security_events,
        2
    );

    assert_eq!(store.close_security_events(m, T0 + 10).await.unwrap(), 2);
    assert_eq!(store.close_security_events(m, T0 + 11).await.unwrap(), 0);
    assert_eq!(
        store
            .node_view(m)
            .await
            .unwrap()
            .unwrap()
            .open_security_events,
        0
    );
    let b = store
        .open_security_event(m, 1100001, T0 + 20, None)
        .await
        .unwrap();
    assert_ne!(a, b, "a closed event can be reopened as a new row");

    // Deleting the node removes its events: a recreated node starts clean.
    assert!(store.delete_node(mac(31)).await.unwrap());
    store.create_node_if_absent(mac(31), T0 + 30).await.unwrap();
    assert_eq!(
        store
            .node_view(mac(31))
            .await
            .unwrap()
            .unwrap()
            .open_security_events,
        0
    );
    store.close().await;
}

fn session(kind: AccountingKind, m: Mac, switch_ip: &str, port: &str, now: i64) -> AccountingEvent {
    AccountingEvent {
        mac: Some(m),
        port: Some(port.to_string()),
        vlan: Some("10".into()),
        role: Some("staff".into()),
        connection_type: Some("Ethernet-EAP".into()),
        ..AccountingEvent::new(kind, switch_ip, switch_ip, now)
    }
}

pub async fn accounting_start_interim_stop(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(40);
    store
        .record_accounting(&session(AccountingKind::Start, m, "10.0.0.1", "1", T0))
        .await
        .unwrap();
    let log = store.locationlog(m, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    let first = log[0].clone();
    assert_eq!(first.end_time, None);
    assert_eq!(first.start_time, T0);
    assert_eq!(first.port.as_deref(), Some("1"));
    assert_eq!(first.session_id, None);

    // Same location: the entry is kept, and the session id / user name filled in.
    let interim = AccountingEvent {
        session_id: Some("S1".into()),
        username: Some("alice".into()),
        ..session(AccountingKind::InterimUpdate, m, "10.0.0.1", "1", T0 + 60)
    };
    store.record_accounting(&interim).await.unwrap();
    let log = store.locationlog(m, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].id, first.id);
    assert_eq!(log[0].start_time, T0);
    assert_eq!(log[0].session_id.as_deref(), Some("S1"));
    assert_eq!(log[0].username.as_deref(), Some("alice"));
    // An interim without them does not erase them.
    store
        .record_accounting(&session(
            AccountingKind::InterimUpdate,
            m,
            "10.0.0.1",
            "1",
            T0 + 90,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.locationlog(m, 10).await.unwrap()[0]
            .session_id
            .as_deref(),
        Some("S1")
    );

    // New port: old entry closed, new one opened.
    let moved = AccountingEvent {
        session_id: Some("S2".into()),
        ..session(AccountingKind::InterimUpdate, m, "10.0.0.1", "2", T0 + 120)
    };
    store.record_accounting(&moved).await.unwrap();
    let log = store.locationlog(m, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].port.as_deref(), Some("2"));
    assert_eq!(log[0].end_time, None);
    assert_eq!(log[0].start_time, T0 + 120);
    assert_eq!(log[1].id, first.id);
    assert_eq!(log[1].end_time, Some(T0 + 120));
    assert_eq!(store.open_locationlog_count().await.unwrap(), 1);

    // A Stop for another session does not close the current one; the right one does.
    let wrong_stop = AccountingEvent {
        session_id: Some("OTHER".into()),
        ..session(AccountingKind::Stop, m, "10.0.0.1", "2", T0 + 150)
    };
    store.record_accounting(&wrong_stop).await.unwrap();
    assert_eq!(store.open_locationlog_count().await.unwrap(), 1);
    let stop = AccountingEvent {
        session_id: Some("S2".into()),
        ..session(AccountingKind::Stop, m, "10.0.0.1", "2", T0 + 180)
    };
    store.record_accounting(&stop).await.unwrap();
    let log = store.locationlog(m, 10).await.unwrap();
    assert_eq!(log[0].end_time, Some(T0 + 180));
    assert_eq!(store.open_locationlog_count().await.unwrap(), 0);
    assert_eq!(store.locationlog(m, 1).await.unwrap().len(), 1, "limit");
    store.close().await;
}

/// A replayed spool (crash in the middle of a replay, then the whole spool replayed again)
/// must not re-open a session its Stop already closed: the keyed events apply once.
pub async fn idempotent_accounting_applies_each_key_once(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(45);
    let start = AccountingEvent {
        session_id: Some("R1".into()),
        ..session(AccountingKind::Start, m, "10.0.0.9", "7", T0)
    };
    let stop = AccountingEvent {
        session_id: Some("R1".into()),
        ..session(AccountingKind::Stop, m, "10.0.0.9", "7", T0 + 30)
    };
    let (k_start, k_stop) = ([1u8; 32], [2u8; 32]);
    let now = T0 + 1000;
    assert!(
        store
            .record_accounting_idempotent(&start, &k_start, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_accounting_idempotent(&stop, &k_stop, now)
            .await
            .unwrap()
    );
    // The replay again, from the start: nothing changes.
    assert!(
        !store
            .record_accounting_idempotent(&start, &k_start, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_accounting_idempotent(&stop, &k_stop, now)
            .await
            .unwrap()
    );
    let log = store.locationlog(m, 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].start_time, T0);
    assert_eq!(log[0].end_time, Some(T0 + 30));
    assert_eq!(store.open_locationlog_count().await.unwrap(), 0);
    // Pruning forgets old keys only.
    assert_eq!(store.prune_spool_keys(now).await.unwrap(), 0);
    assert_eq!(store.prune_spool_keys(now + 1).await.unwrap(), 2);
    assert!(
        store
            .record_accounting_idempotent(&stop, &k_stop, now + 2)
            .await
            .unwrap()
    );
    store.close().await;
}

pub async fn accounting_on_closes_only_that_switch(cfg: StoreConfig) {
    let store = open(&cfg).await;
    for (i, sw) in [(1, "10.0.0.1"), (2, "10.0.0.1"), (3, "10.0.0.2")] {
        store
            .record_accounting(&session(
                AccountingKind::Start,
                mac(50 + i),
                sw,
                &i.to_string(),
                T0,
            ))
            .await
            .unwrap();
    }
    assert_eq!(store.open_locationlog_count().await.unwrap(), 3);
    let on = AccountingEvent::new(AccountingKind::AccountingOn, "sw1", "10.0.0.1", T0 + 300);
    store.record_accounting(&on).await.unwrap();
    assert_eq!(store.open_locationlog_count().await.unwrap(), 1);
    for i in [1, 2] {
        assert_eq!(
            store.locationlog(mac(50 + i), 5).await.unwrap()[0].end_time,
            Some(T0 + 300)
        );
    }
    assert_eq!(
        store.locationlog(mac(53), 5).await.unwrap()[0].end_time,
        None
    );

    let off = AccountingEvent::new(AccountingKind::AccountingOff, "sw2", "10.0.0.2", T0 + 400);
    store.record_accounting(&off).await.unwrap();
    assert_eq!(store.open_locationlog_count().await.unwrap(), 0);
    assert_eq!(
        store.locationlog(mac(51), 5).await.unwrap()[0].end_time,
        Some(T0 + 300),
        "untouched"
    );
    store.close().await;
}

/// Many concurrent accounting updates for one MAC (alternating ports) must leave exactly one open
/// entry: events serialise (SQLite writer lock; MariaDB `FOR UPDATE` + deadlock retries).
pub async fn concurrent_accounting_keeps_one_open_entry(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(60);
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                let ev = session(
                    AccountingKind::InterimUpdate,
                    m,
                    "10.0.0.9",
                    &(i % 3).to_string(),
                    T0 + i,
                );
                s.record_accounting(&ev).await
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("task")
            .expect("record_accounting under contention");
    }
    let open = store
        .locationlog(m, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.end_time.is_none())
        .count();
    assert_eq!(open, 1);
    store.close().await;
}

/// Concurrent opens of the same event for one (new) MAC open it once.
pub async fn concurrent_security_event_opens_once(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(65);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.open_security_event(m, 1100010, T0 + i, None).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(
            t.await
                .expect("task")
                .expect("open_security_event under contention"),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let v = store.node_view(m).await.unwrap().unwrap();
    assert_eq!(v.open_security_events, 1);
    store.close().await;
}

pub async fn ip4log_follows_framed_ip(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let (a, b) = (mac(70), mac(71));
    let ip = |d| Ipv4Addr::new(10, 1, 0, d);
    let with_ip = |m, addr, now| AccountingEvent {
        framed_ip: Some(addr),
        ..session(AccountingKind::InterimUpdate, m, "10.0.0.1", "1", now)
    };
    store
        .record_accounting(&with_ip(a, ip(5), T0))
        .await
        .unwrap();
    let l = store.ip4log_for(a).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0].ip, l[0].mac, l[0].start_time, l[0].end_time),
        (ip(5), a, T0, None)
    );

    // Same address again: unchanged start.
    store
        .record_accounting(&with_ip(a, ip(5), T0 + 60))
        .await
        .unwrap();
    assert_eq!(store.ip4log_for(a).await.unwrap()[0].start_time, T0);

    // A moves to .6: .5 is closed for A.
    store
        .record_accounting(&with_ip(a, ip(6), T0 + 120))
        .await
        .unwrap();
    let l = store.ip4log_for(a).await.unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].ip, l[0].end_time), (ip(6), None));
    assert_eq!((l[1].ip, l[1].end_time), (ip(5), Some(T0 + 120)));

    // B takes .6: it belongs to B now, A holds nothing open.
    store
        .record_accounting(&with_ip(b, ip(6), T0 + 180))
        .await
        .unwrap();
    let lb = store.ip4log_for(b).await.unwrap();
    assert_eq!(
        (lb[0].ip, lb[0].start_time, lb[0].end_time),
        (ip(6), T0 + 180, None)
    );
    assert!(
        store
            .ip4log_for(a)
            .await
            .unwrap()
            .iter()
            .all(|e| e.end_time.is_some())
    );
    store.close().await;
}

fn audit(i: u32, m: Option<Mac>) -> AuditRecord {
    AuditRecord {
        created_at: T0 + i64::from(i),
        mac: m,
        user_name: Some(format!("user{i}")),
        nas_ip: "10.0.0.1".into(),
        nas_port: Some("12".into()),
        request_type: "auth".into(),
        outcome: if i.is_multiple_of(2) {
            "accept"
        } else {
            "reject"
        }
        .into(),
        reason: "test ✓ utf8".into(),
        vlan: Some("10".into()),
        role: Some("staff".into()),
        switch_id: Some("sw1".into()),
        calling_station_id: m.map(|m| m.to_string()),
        called_station_id: None,
    }
}

pub async fn audit_batch_insert_and_count(cfg: StoreConfig) {
    let store = open(&cfg).await;
    store.insert_audit_batch(&[]).await.unwrap();
    assert_eq!(store.count_audit(None).await.unwrap(), 0);
    let x = mac(80);
    let batch: Vec<_> = (0..1250)
        .map(|i| audit(i, if i.is_multiple_of(2) { Some(x) } else { None }))
        .collect();
    store.insert_audit_batch(&batch).await.unwrap();
    store
        .insert_audit_batch(&[audit(9999, Some(mac(81)))])
        .await
        .unwrap();
    assert_eq!(store.count_audit(None).await.unwrap(), 1251);
    assert_eq!(store.count_audit(Some(x)).await.unwrap(), 625);
    assert_eq!(store.count_audit(Some(mac(81))).await.unwrap(), 1);
    assert_eq!(store.count_audit(Some(mac(82))).await.unwrap(), 0);
    store.close().await;
}

pub async fn bulk_import_100k_and_time_node_view(cfg: StoreConfig) {
    const N: u32 = 100_000;
    let store = open(&cfg).await;
    let nodes: Vec<Node> = (0..N)
        .map(|i| {
            let mut n = Node::new_unregistered(mac(i), T0);
            if i.is_multiple_of(2) {
                n.status = NodeStatus::Registered;
                n.pid = format!("user{}", i % 100);
                n.role = Some(
                    if i.is_multiple_of(4) {
                        "staff"
                    } else {
                        "guest"
                    }
                    .into(),
                );
                n.regdate = Some(T0);
            }
            n
        })
        .collect();
    let t = Instant::now();
    assert_eq!(store.bulk_import_nodes(&nodes).await.unwrap(), u64::from(N));
    let import = t.elapsed();
    println!(
        "[{}] bulk_import_nodes: {N} nodes in {:.2?} ({:.0} nodes/s)",
        store.backend_name(),
        import,
        f64::from(N) / import.as_secs_f64()
    );
    assert_eq!(store.count_nodes().await.unwrap(), u64::from(N));
    assert_eq!(
        store.get_node(mac(4)).await.unwrap().as_ref(),
        Some(&nodes[4])
    );
    let staff = NodeFilter {
        role: Some("staff".into()),
        limit: 10,
        ..NodeFilter::default()
    };
    assert_eq!(store.list_nodes(&staff).await.unwrap().len(), 10);
    // Re-import is an upsert, not a duplicate.
    store.bulk_import_nodes(&nodes[..10]).await.unwrap();
    assert_eq!(store.count_nodes().await.unwrap(), u64::from(N));
    store
        .open_security_event(mac(3), 1, T0, None)
        .await
        .unwrap();

    // Hot path timing (printed, not asserted).
    let lookups: u32 = if store.backend_name() == "sqlite" {
        100_000
    } else {
        20_000
    };
    let t = Instant::now();
    let mut found = 0u32;
    for i in 0..lookups {
        let m = mac(i.wrapping_mul(7919) % N);
        if store.node_view(m).await.unwrap().is_some() {
            found += 1;
        }
    }
    let elapsed = t.elapsed();
    assert_eq!(found, lookups);
    println!(
        "[{}] node_view: {:.2} µs per lookup ({lookups} sequential lookups in {:.2?}, {} build)",
        store.backend_name(),
        elapsed.as_secs_f64() * 1e6 / f64::from(lookups),
        elapsed,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert_eq!(
        store
            .node_view(mac(3))
            .await
            .unwrap()
            .unwrap()
            .open_security_events,
        1
    );
    store.close().await;
}

/// The MACs of the changes logged since `floor` (which moves past them); ids strictly increase.
async fn changes(store: &Store, floor: &mut u64) -> Vec<Mac> {
    let rows = store.changes_since(*floor).await.expect("changes_since");
    for w in rows.windows(2) {
        assert!(w[0].0 < w[1].0, "ids in order: {rows:?}");
    }
    if let Some(&(id, _)) = rows.last() {
        assert!(id > *floor);
        *floor = id;
    }
    rows.into_iter().map(|(_, m)| m).collect()
}

/// Every store method that changes what `node_view` shows logs the MAC in `node_change`; the
/// others (and no-op calls) do not.
pub async fn every_node_change_is_logged(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let mut floor = 0;
    let f = &mut floor;
    let m = mac(80);
    assert_eq!(changes(&store, f).await, []);
    store.create_node_if_absent(m, T0).await.unwrap();
    assert_eq!(changes(&store, f).await, [m], "node created");
    store.create_node_if_absent(m, T0 + 1).await.unwrap();
    store.touch_last_seen(m, T0 + 2).await.unwrap();
    assert_eq!(changes(&store, f).await, [], "existing node, last_seen");
    store
        .register_node(m, "alice", "staff", None, T0 + 3)
        .await
        .unwrap();
    assert_eq!(changes(&store, f).await, [m], "registered");
    assert!(store.unregister_node(m, T0 + 4).await.unwrap());
    assert_eq!(changes(&store, f).await, [m], "unregistered");
    assert!(!store.unregister_node(m, T0 + 5).await.unwrap());
    assert_eq!(changes(&store, f).await, [], "already unregistered");
    store
        .open_security_event(m, 1100010, T0 + 6, None)
        .await
        .unwrap();
    assert_eq!(changes(&store, f).await, [m], "security event opened");
    store
        .open_security_event(m, 1100010, T0 + 7, None)
        .await
        .unwrap();
    assert_eq!(changes(&store, f).await, [], "already open");
    assert_eq!(store.close_security_events(m, T0 + 8).await.unwrap(), 1);
    assert_eq!(changes(&store, f).await, [m], "security events closed");
    assert_eq!(store.close_security_events(m, T0 + 9).await.unwrap(), 0);
    assert_eq!(changes(&store, f).await, [], "nothing open");
    let n = mac(81);
    store.open_security_event(n, 1, T0, None).await.unwrap();
    assert_eq!(changes(&store, f).await, [n], "event on a new node");

    let a = mac(82);
    store
        .record_accounting(&session(AccountingKind::Start, a, "10.0.0.1", "1", T0 + 10))
        .await
        .unwrap();
    assert_eq!(changes(&store, f).await, [a], "accounting created the node");
    store
        .record_accounting(&session(
            AccountingKind::InterimUpdate,
            a,
            "10.0.0.1",
            "2",
            T0 + 70,
        ))
        .await
        .unwrap();
    store
        .record_accounting(&session(
            AccountingKind::Stop,
            mac(83),
            "10.0.0.1",
            "3",
            T0 + 80,
        ))
        .await
        .unwrap();
    assert_eq!(
        changes(&store, f).await,
        [],
        "accounting on a known / no node"
    );

    assert!(store.delete_node(m).await.unwrap());
    assert_eq!(changes(&store, f).await, [m], "deleted");
    assert!(!store.delete_node(m).await.unwrap());
    store.upsert_person(&Person::new("bob")).await.unwrap();
    assert_eq!(changes(&store, f).await, [], "nothing deleted, person");

    let imported: Vec<Node> = (90..93)
        .map(|i| Node {
            status: NodeStatus::Registered,
            regdate: Some(T0),
            ..Node::new_unregistered(mac(i), T0)
        })
        .collect();
    store.bulk_import_nodes(&imported).await.unwrap();
    let mut got = changes(&store, f).await;
    got.sort();
    assert_eq!(got, [mac(90), mac(91), mac(92)], "imported");

    // Pruning forgets old rows; ids are never reused afterwards.
    let last = *f;
    let far = 4_000_000_000;
    assert!(store.prune_node_changes(far).await.unwrap() >= 9);
    assert_eq!(store.changes_since(0).await.unwrap(), []);
    store.create_node_if_absent(mac(99), T0).await.unwrap();
    let after = store.changes_since(0).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].0 > last, "id {} reused (last {last})", after[0].0);
    store.close().await;
}

/// What any [`NodeLookup`] (a store or a cache) says about a MAC's status.
async fn status_via(n: &impl NodeLookup, m: Mac) -> Option<NodeStatus> {
    n.node_view(m)
        .await
        .expect("node_view")
        .map(|v| v.node.status)
}

/// Two servers (two store handles on one database): a change through A is seen by B's cache
/// within `max_staleness` of its commit; B without polls turns untrusted and reads the
/// database. Also reports B's hit rate in a simple request mix.
pub async fn two_servers_cache_coherence(cfg: StoreConfig) {
    let a = open(&cfg).await;
    let settings = CacheSettings::default();
    let b = Arc::new(CachedNodes::new(open(&cfg).await, &settings));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (b, stop) = (b.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                b.poll_once().await.expect("poll");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let devices: Vec<Node> = (0..1000)
        .map(|i| Node::new_unregistered(mac(2000 + i), T0))
        .collect();
    a.bulk_import_nodes(&devices).await.unwrap();
    while b.staleness().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // B caches the device (and an unknown MAC, negatively).
    let m = mac(2000);
    let unknown = mac(9999);
    for _ in 0..3 {
        let v = b.policy_view(m).await.unwrap().expect("imported");
        assert_eq!(v.status, NodeStatus::Unregistered);
        assert_eq!(b.policy_view(unknown).await.unwrap(), None);
    }
    assert!(b.stats().hits >= 4, "{:?}", b.stats());

    // A registers it and creates the unknown one: B must see both by commit + max_staleness.
    let mut worst = Duration::ZERO;
    for (mac_, change) in [(m, 0), (unknown, 1)] {
        if change == 0 {
            a.register_node(mac_, "alice", "staff", None, T0)
                .await
                .unwrap();
        } else {
            a.create_node_if_absent(mac_, T0).await.unwrap();
        }
        let committed = Instant::now(); // the commit happened before this instant
        loop {
            let asked = Instant::now();
            let v = b.policy_view(mac_).await.unwrap();
            let seen = match change {
                0 => v.is_some_and(|v| v.status == NodeStatus::Registered),
                _ => v.is_some(),
            };
            if seen {
                worst = worst.max(committed.elapsed());
                break;
            }
            assert!(
                asked < committed + settings.max_staleness,
                "stale view served {:?} after the commit",
                asked - committed
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    println!("[cache] change visible on the other server after at most {worst:.2?}");
    // The store and the cache agree.
    for d in [m, unknown, mac(2001)] {
        let cached = b.policy_view(d).await.unwrap().map(|v| v.status);
        assert_eq!(status_via(&a, d).await, cached, "{d}");
    }

    // Hit rate: 20,000 lookups over the 1000 devices while A changes one device every 100.
    let before = b.stats();
    let t = Instant::now();
    for i in 0..20_000u32 {
        let d = mac(2000 + (i.wrapping_mul(7919) % 1000));
        b.policy_view(d).await.unwrap().expect("known");
        if i % 100 == 99 {
            a.register_node(mac(2000 + i % 1000), "bob", "guest", None, T0)
                .await
                .unwrap();
        }
    }
    let after = b.stats();
    let (hits, misses, untrusted) = (
        after.hits - before.hits,
        after.misses - before.misses,
        after.untrusted - before.untrusted,
    );
    let rate = hits as f64 / (hits + misses + untrusted) as f64;
    println!(
        "[cache] {} lookups in {:.2?}: {hits} hits, {misses} misses, {untrusted} untrusted, \
         hit rate {:.1} %, {} invalidations, staleness {:?}",
        hits + misses + untrusted,
        t.elapsed(),
        rate * 100.0,
        after.invalidations - before.invalidations,
        b.staleness()
    );
    assert!(rate > 0.8, "hit rate {rate}");
    // Cost of a lookup from the cache and from the database (this server, this machine).
    let n = 2000u32;
    let t = Instant::now();
    for i in 0..n {
        b.policy_view(mac(2000 + i % 1000)).await.unwrap();
    }
    let cached = t.elapsed() / n;
    let t = Instant::now();
    for i in 0..n {
        b.store().node_view(mac(2000 + i % 1000)).await.unwrap();
    }
    let direct = t.elapsed() / n;
    println!("[cache] per lookup: from the cache {cached:.2?}, from the database {direct:.2?}");

    // Polling stopped: B turns untrusted within max_staleness and reads the database.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.await.expect("poller");
    tokio::time::sleep(settings.max_staleness).await;
    assert_eq!(b.cache().get(m, Instant::now()), Lookup::Untrusted);
    assert!(a.unregister_node(m, T0 + 1).await.unwrap());
    let v = b.policy_view(m).await.unwrap().unwrap();
    assert_eq!(v.status, NodeStatus::Unregistered, "read from the database");
    assert!(b.stats().untrusted > after.untrusted);
    a.close().await;
    b.store().close().await;
}

/// Captive portal (migration v7): local users round-trip with their validity window and
/// replace on upsert; `mac_for_ip` answers the device holding an address now (not one whose
/// address moved to another device).
pub async fn portal_local_users_and_mac_for_ip(cfg: StoreConfig) {
    use ironfence_store::portal::LocalUser;
    let store = open(&cfg).await;
    assert_eq!(store.get_local_user("alice").await.unwrap(), None);
    let mut alice = LocalUser {
        pid: "alice".into(),
        password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        // NT hash of "password" (the MS-CHAPv2 test vector), read back byte for byte.
        nt_hash: Some([
            0x88, 0x46, 0xf7, 0xea, 0xee, 0x8f, 0xb1, 0x17, 0xad, 0x06, 0xbd, 0xd8, 0x30, 0xb7,
            0x58, 0x6c,
        ]),
        valid_from: Some(T0),
        expiration: Some(T0 + 86_400),
    };
    store.upsert_local_user(&alice, T0).await.unwrap();
    assert_eq!(
        store.get_local_user("alice").await.unwrap().as_ref(),
        Some(&alice)
    );
    assert!(
        store.get_person("alice").await.unwrap().is_some(),
        "person row created"
    );
    let got = store.get_local_user("alice").await.unwrap().unwrap();
    assert!(!got.valid_at(T0 - 1) && got.valid_at(T0) && !got.valid_at(T0 + 86_400));
    alice.password = "$2y$04$abcdefghijklmnopqrstuu5Ht1Cq3bnfpXFxWeHZW1qPV5rZyV7cm".into();
    alice.expiration = None;
    // An imported bcrypt hash has no NT hash: the replacement clears the old one.
    alice.nt_hash = None;
    store.upsert_local_user(&alice, T0 + 5).await.unwrap();
    assert_eq!(
        store.get_local_user("alice").await.unwrap().as_ref(),
        Some(&alice)
    );

    let ip = Ipv4Addr::new(192, 0, 2, 10);
    assert_eq!(store.mac_for_ip(ip, T0).await.unwrap(), None);
    let start = AccountingEvent {
        mac: Some(mac(7)),
        framed_ip: Some(ip),
        session_id: Some("s7".into()),
        ..AccountingEvent::new(AccountingKind::Start, "sw1", "192.0.2.250", T0)
    };
    store.record_accounting(&start).await.unwrap();
    assert_eq!(store.mac_for_ip(ip, T0 + 1).await.unwrap(), Some(mac(7)));
    // The address moves to another device: the lookup follows.
    let other = AccountingEvent {
        mac: Some(mac(8)),
        session_id: Some("s8".into()),
        now: T0 + 10,
        ..start.clone()
    };
    store.record_accounting(&other).await.unwrap();
    assert_eq!(store.mac_for_ip(ip, T0 + 11).await.unwrap(), Some(mac(8)));
    assert_eq!(
        store
            .mac_for_ip(Ipv4Addr::new(192, 0, 2, 11), T0 + 11)
            .await
            .unwrap(),
        None
    );
}

/// Administration (migration v8): admin audit entries are stored once per idempotency key
/// (a replayed spool record is a no-op), searched newest first by account, target, action
/// and time with paging; revoked sessions are listed until they expire.
pub async fn admin_audit_and_revoked_sessions(cfg: StoreConfig) {
    use ironfence_store::admin::{AdminAuditEntry, AdminAuditFilter};
    let store = open(&cfg).await;
    let entry = |i: i64, account: &str, target: &str, action: &str| AdminAuditEntry {
        id: 0,
        at: T0 + i,
        server: "pf1".into(),
        account: account.into(),
        client: "192.0.2.7".into(),
        session: "c2Vzc2lvbg".into(),
        action: action.into(),
        target: target.into(),
        changes: r#"[{"field":"role","before":"operator","after":"administrator"}]"#.into(),
        result: "ok".into(),
    };
    let e1 = entry(1, "alice", "admin:bob", "admin.update");
    assert!(store.insert_admin_audit(&e1, &[1; 32]).await.unwrap());
    assert!(
        !store.insert_admin_audit(&e1, &[1; 32]).await.unwrap(),
        "same key: applied once"
    );
    for i in 2..=5 {
        let e = entry(i, "bob", "switch:10.0.0.1", "switch.update");
        assert!(store.insert_admin_audit(&e, &[i as u8; 32]).await.unwrap());
    }
    let all = |f: AdminAuditFilter| {
        let store = store.clone();
        async move {
            store
                .search_admin_audit(&AdminAuditFilter { limit: 100, ..f })
                .await
                .unwrap()
        }
    };
    let got = all(AdminAuditFilter::default()).await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].at, T0 + 5, "newest first");
    assert!(got[0].id > 0);
    let alice = all(AdminAuditFilter {
        account: Some("alice".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(alice.len(), 1);
    assert_eq!(
        AdminAuditEntry {
            id: 0,
            ..alice[0].clone()
        },
        e1,
        "round trip"
    );
    let sw = all(AdminAuditFilter {
        target: Some("switch:10.0.0.1".into()),
        since: Some(T0 + 3),
        until: Some(T0 + 4),
        ..Default::default()
    })
    .await;
    assert_eq!(
        sw.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![T0 + 4, T0 + 3]
    );
    let by_action = all(AdminAuditFilter {
        action: Some("admin.update".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_action.len(), 1);
    let page = store
        .search_admin_audit(&AdminAuditFilter {
            limit: 2,
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![T0 + 4, T0 + 3]
    );

    assert!(store.revoked_admin_sessions(T0).await.unwrap().is_empty());
    store
        .revoke_admin_session("s1", T0 + 100, T0)
        .await
        .unwrap();
    store.revoke_admin_session("s2", T0 + 10, T0).await.unwrap();
    store.revoke_admin_session("s1", T0 + 50, T0).await.unwrap(); // never shortened
    let mut r = store.revoked_admin_sessions(T0).await.unwrap();
    r.sort();
    assert_eq!(
        r,
        vec![("s1".to_string(), T0 + 100), ("s2".to_string(), T0 + 10)]
    );
    assert_eq!(
        store.revoked_admin_sessions(T0 + 11).await.unwrap(),
        vec![("s1".to_string(), T0 + 100)],
        "expired revocations are not listed"
    );
    store.close().await;
}

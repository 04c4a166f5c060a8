//! wsrep status parsing and the read-only state machine, with synthetic instants.

use super::*;
use std::time::Duration;

fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The lab's healthy node (§3), as `SHOW GLOBAL STATUS LIKE 'wsrep%'` returns it (excerpt).
fn healthy_rows() -> Vec<(String, String)> {
    rows(&[
        (
            "wsrep_cluster_state_uuid",
            "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b",
        ),
        ("wsrep_cluster_status", "Primary"),
        ("wsrep_cluster_size", "3"),
        ("wsrep_local_state_comment", "Synced"),
        (
            "wsrep_incoming_addresses",
            "10.99.0.11:3306,10.99.0.12:3306,10.99.0.13:3306",
        ),
        ("wsrep_ready", "ON"),
        ("wsrep_connected", "ON"),
        ("wsrep_last_committed", "74"),
        ("wsrep_local_cert_failures", "148"),
        ("wsrep_provider_name", "Galera"),
    ])
}

/// The lab's isolated node (§4).
fn isolated_rows() -> Vec<(String, String)> {
    rows(&[
        ("wsrep_cluster_status", "non-Primary"),
        ("wsrep_cluster_size", "1"),
        ("wsrep_local_state_comment", "Initialized"),
        ("wsrep_incoming_addresses", "10.99.0.13:3306"),
        ("wsrep_ready", "OFF"),
        ("wsrep_connected", "ON"),
    ])
}

fn healthy() -> WsrepStatus {
    WsrepStatus::from_status_rows(&healthy_rows())
}

fn isolated() -> WsrepStatus {
    WsrepStatus::from_status_rows(&isolated_rows())
}

fn with(edit: impl FnOnce(&mut WsrepStatus)) -> WsrepStatus {
    let mut s = healthy();
    edit(&mut s);
    s
}

#[test]
fn status_rows_parse() {
    let s = healthy();
    assert_eq!(
        s,
        WsrepStatus {
            cluster_status: "Primary".into(),
            local_state_comment: "Synced".into(),
            ready: true,
            connected: true,
            cluster_size: Some(3),
            incoming_addresses: vec![
                "10.99.0.11:3306".into(),
                "10.99.0.12:3306".into(),
                "10.99.0.13:3306".into()
            ],
            last_committed: Some(74),
            cluster_state_uuid: Some("5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b".into()),
            local_cert_failures: Some(148),
        }
    );
    let odd = WsrepStatus::from_status_rows(&rows(&[
        ("WSREP_READY", " on "),
        ("wsrep_cluster_size", "three"),
        ("wsrep_incoming_addresses", ""),
    ]));
    assert!(odd.ready);
    assert_eq!(odd.cluster_size, None);
    assert!(odd.incoming_addresses.is_empty());
    assert_eq!(WsrepStatus::from_status_rows(&[]), WsrepStatus::default());
}

/// One row per health rule: Primary + Synced + ready, nothing else.
#[test]
fn health_rows() {
    let rows: Vec<(&str, WsrepStatus, Option<&str>)> = vec![
        ("Primary, Synced, ready: healthy", healthy(), None),
        (
            "lab's isolated node: non-Primary, Initialized, not ready",
            isolated(),
            Some(
                "wsrep_cluster_status is non-Primary (not in a quorum), wsrep_local_state_comment is Initialized (not Synced), wsrep_ready is OFF",
            ),
        ),
        (
            "a donor (Donor/Desynced) is not healthy",
            with(|s| s.local_state_comment = "Donor/Desynced".into()),
            Some("Donor/Desynced (not Synced)"),
        ),
        (
            "wsrep_ready OFF alone",
            with(|s| s.ready = false),
            Some("wsrep_ready is OFF"),
        ),
        (
            "no provider (no wsrep rows at all)",
            WsrepStatus::default(),
            Some("wsrep_cluster_status is missing"),
        ),
        (
            "disconnected is irrelevant when Primary/Synced/ready (never a TCP-level check)",
            with(|s| s.connected = false),
            None,
        ),
        (
            "a smaller cluster is still healthy (the majority side of a partition)",
            with(|s| s.cluster_size = Some(2)),
            None,
        ),
    ];
    for (rule, status, want) in rows {
        assert_eq!(status.is_healthy(), want.is_none(), "{rule}");
        match want {
            None => assert_eq!(status.unhealthy_reason(), None, "{rule}"),
            Some(w) => {
                let got = status.unhealthy_reason().unwrap();
                assert!(got.contains(w), "{rule}: {got}");
            }
        }
    }
}

/// Writable is healthy plus the donor: one row per difference.
#[test]
fn writable_rows() {
    let rows: Vec<(&str, WsrepStatus, bool, bool)> = vec![
        ("Primary, Synced, ready", healthy(), true, true),
        (
            "donor: writable, not healthy",
            with(|s| s.local_state_comment = "Donor/Desynced".into()),
            true,
            false,
        ),
        (
            "joiner: neither",
            with(|s| s.local_state_comment = "Joiner".into()),
            false,
            false,
        ),
        (
            "donor not ready: neither",
            with(|s| {
                s.local_state_comment = "Donor/Desynced".into();
                s.ready = false;
            }),
            false,
            false,
        ),
        ("isolated: neither", isolated(), false, false),
    ];
    for (rule, status, writable, healthy) in rows {
        assert_eq!(status.not_writable_reason().is_none(), writable, "{rule}");
        assert_eq!(status.is_healthy(), healthy, "{rule}");
    }
}

#[test]
fn poll_cadence() {
    use PolledDb::*;
    assert_eq!(poll_interval(Galera, false), Duration::from_secs(1));
    assert_eq!(poll_interval(Galera, true), Duration::from_millis(250));
    assert_eq!(poll_interval(Plain, false), Duration::from_secs(5));
    assert_eq!(poll_interval(Plain, true), Duration::from_secs(5));
    assert_eq!(poll_interval(Unreachable, true), Duration::from_secs(1));
}

#[test]
fn missing_members_from_incoming_addresses() {
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let members = [ip("10.99.0.11"), ip("10.99.0.12"), ip("10.99.0.13")];
    assert!(healthy().missing_members(&members).is_empty());
    assert_eq!(
        isolated().missing_members(&members),
        vec![ip("10.99.0.11"), ip("10.99.0.12")]
    );
}

#[test]
fn write_error_codes() {
    let rows = [
        (
            1047,
            "WSREP has not yet prepared node for application use",
            Some(WriteErrorKind::WsrepNotReady),
        ),
        (
            1180,
            "Error while appending streaming replication fragment(provider status: Not connected to Primary Component)",
            Some(WriteErrorKind::WsrepNotReady),
        ),
        (1180, "Got error 5 during COMMIT", None),
        (
            1290,
            "The MariaDB server is running with the --read-only option",
            Some(WriteErrorKind::ReadOnly),
        ),
        (
            1792,
            "Cannot execute statement in a READ ONLY transaction",
            Some(WriteErrorKind::ReadOnly),
        ),
        (
            1213,
            "Deadlock found when trying to get lock; try restarting transaction",
            Some(WriteErrorKind::Deadlock),
        ),
        (
            1836,
            "Running in read-only mode",
            Some(WriteErrorKind::ReadOnly),
        ),
        (1062, "Duplicate entry", None),
    ];
    for (code, msg, want) in rows {
        assert_eq!(
            WriteErrorKind::from_mysql_error(code, msg),
            want,
            "{code} {msg}"
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum M {
    Rw,
    Ro,
}

fn kind(m: &DbMode) -> M {
    match m {
        DbMode::ReadWrite => M::Rw,
        DbMode::ReadOnly { .. } => M::Ro,
    }
}

enum E {
    Poll(WsrepStatus),
    Plain(bool),
    Fail(&'static str),
    Write(WriteErrorKind),
}

/// Scenarios: (rule, steps of (ms since start, event, mode after, a change expected?)).
#[test]
fn quorum_monitor_rows() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    type Step = (u64, E, M, bool);
    let rows: Vec<(&str, Vec<Step>)> = vec![
        (
            "starts read-only; the first healthy poll makes it read-write",
            vec![(1000, E::Poll(healthy()), M::Rw, true)],
        ),
        (
            "starts read-only; an unhealthy first poll changes nothing",
            vec![(1000, E::Poll(isolated()), M::Ro, false)],
        ),
        (
            "partition -> read-only within one poll",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (2000, E::Poll(isolated()), M::Ro, true),
            ],
        ),
        (
            "heal -> read-write on the first healthy poll",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (2000, E::Poll(isolated()), M::Ro, true),
                (3000, E::Poll(isolated()), M::Ro, false),
                (4000, E::Poll(healthy()), M::Rw, true),
            ],
        ),
        (
            "1047 on a write -> read-only at once, before any poll sees it",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (1300, E::Write(WriteErrorKind::WsrepNotReady), M::Ro, true),
            ],
        ),
        (
            "1290/1792 on a write -> read-only",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (1300, E::Write(WriteErrorKind::ReadOnly), M::Ro, true),
            ],
        ),
        (
            "a deadlock (1213) is not a quorum signal",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (1300, E::Write(WriteErrorKind::Deadlock), M::Rw, false),
            ],
        ),
        (
            "a deadlock does not make a read-only node read-write either",
            vec![(1300, E::Write(WriteErrorKind::Deadlock), M::Ro, false)],
        ),
        (
            "poll failure (database down) -> read-only",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (2000, E::Fail("connection refused"), M::Ro, true),
            ],
        ),
        (
            "a donor (Donor/Desynced) stays read-write: a mariabackup donor keeps committing",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (
                    2000,
                    E::Poll(with(|s| s.local_state_comment = "Donor/Desynced".into())),
                    M::Rw,
                    false,
                ),
            ],
        ),
        (
            "a donor out of the quorum is read-only",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (
                    2000,
                    E::Poll(with(|s| {
                        s.local_state_comment = "Donor/Desynced".into();
                        s.cluster_status = "non-Primary".into();
                    })),
                    M::Ro,
                    true,
                ),
            ],
        ),
        (
            "a joiner (Joining / Joined) is read-only: its data is not complete",
            vec![
                (
                    1000,
                    E::Poll(with(|s| s.local_state_comment = "Joining".into())),
                    M::Ro,
                    false,
                ),
                (
                    2000,
                    E::Poll(with(|s| s.local_state_comment = "Joined".into())),
                    M::Ro,
                    false,
                ),
                (3000, E::Poll(healthy()), M::Rw, true),
            ],
        ),
        (
            "database down at the first poll, then Galera appears (serve and db start together)",
            vec![
                (1000, E::Fail("Connection refused"), M::Ro, false),
                (
                    2000,
                    E::Poll(with(|s| s.local_state_comment = "Joining".into())),
                    M::Ro,
                    false,
                ),
                (3000, E::Poll(healthy()), M::Rw, true),
                (4000, E::Poll(isolated()), M::Ro, true),
            ],
        ),
        (
            "a restart of mariadbd: down, back, then a partition is still seen",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (2000, E::Fail("Connection refused"), M::Ro, true),
                (3000, E::Poll(healthy()), M::Rw, true),
                (4000, E::Poll(isolated()), M::Ro, true),
            ],
        ),
        (
            "MariaDB without Galera: read-write while read_only=OFF",
            vec![(1000, E::Plain(false), M::Rw, true)],
        ),
        (
            "MariaDB without Galera: a refused write (1290) flips at once, a poll with read_only=ON keeps it",
            vec![
                (1000, E::Plain(false), M::Rw, true),
                (1300, E::Write(WriteErrorKind::ReadOnly), M::Ro, true),
                (1200, E::Plain(false), M::Ro, false),
                (6000, E::Plain(true), M::Ro, false),
                (11000, E::Plain(false), M::Rw, true),
            ],
        ),
        (
            "MariaDB without Galera, then Galera appears after a restart: quorum monitoring from then on",
            vec![
                (1000, E::Plain(false), M::Rw, true),
                (2000, E::Fail("Connection refused"), M::Ro, true),
                (3000, E::Poll(healthy()), M::Rw, true),
                (4000, E::Poll(isolated()), M::Ro, true),
            ],
        ),
        (
            "not ready -> read-only",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (2000, E::Poll(with(|s| s.ready = false)), M::Ro, true),
            ],
        ),
        (
            "only a healthy poll returns to read-write (a failure while read-only changes nothing)",
            vec![
                (1000, E::Fail("timeout"), M::Ro, false),
                (1100, E::Write(WriteErrorKind::WsrepNotReady), M::Ro, false),
                (1200, E::Poll(healthy()), M::Rw, true),
            ],
        ),
        (
            "a stale healthy poll (taken before the failed write) does not undo it",
            vec![
                (1000, E::Poll(healthy()), M::Rw, true),
                (2000, E::Write(WriteErrorKind::WsrepNotReady), M::Ro, true),
                (1900, E::Poll(healthy()), M::Ro, false),
                (2100, E::Poll(healthy()), M::Rw, true),
            ],
        ),
        (
            "a stale write error (before the heal) does not flip it back",
            vec![
                (1000, E::Poll(isolated()), M::Ro, false),
                (2000, E::Poll(healthy()), M::Rw, true),
                (1500, E::Write(WriteErrorKind::WsrepNotReady), M::Rw, false),
            ],
        ),
    ];
    for (rule, steps) in rows {
        let mut m = QuorumMonitor::new(t0);
        assert!(m.is_read_only(), "{rule}");
        for (n, (ms, e, want_mode, want_change)) in steps.into_iter().enumerate() {
            let ev = match e {
                E::Poll(status) => DbEvent::StatusPolled { status, at: at(ms) },
                E::Plain(read_only) => DbEvent::PlainPolled {
                    read_only,
                    at: at(ms),
                },
                E::Fail(error) => DbEvent::PollFailed {
                    error: error.into(),
                    at: at(ms),
                },
                E::Write(error) => DbEvent::WriteRejected { error, at: at(ms) },
            };
            let before = m.mode().clone();
            let change = m.handle(ev);
            let ctx = format!("{rule}, step {n}: {change:?}");
            assert_eq!(kind(m.mode()), want_mode, "{ctx}");
            assert_eq!(change.is_some(), want_change, "{ctx}");
            if let Some(c) = change {
                assert_eq!(c.from, before, "{ctx}");
                assert_eq!(&c.to, m.mode(), "{ctx}");
                assert!(!c.reason.is_empty(), "{ctx}");
                if let DbMode::ReadOnly { since, reason } = m.mode() {
                    assert_eq!(*since, at(ms), "{ctx}: read-only since the event");
                    assert_eq!(reason, &c.reason, "{ctx}");
                }
            }
        }
    }
}

#[test]
fn mode_change_reasons_name_the_cause() {
    let t0 = Instant::now();
    let mut m = QuorumMonitor::new(t0);
    let up = m
        .handle(DbEvent::StatusPolled {
            status: healthy(),
            at: t0,
        })
        .unwrap();
    assert_eq!(
        up.to_string(),
        "database read-only -> read-write: wsrep status Primary, Synced, ready, cluster size 3"
    );
    let down = m
        .handle(DbEvent::StatusPolled {
            status: isolated(),
            at: t0 + Duration::from_secs(1),
        })
        .unwrap();
    assert!(down.reason.contains("non-Primary"), "{down}");
    assert!(
        m.mode()
            .to_string()
            .starts_with("read-only (wsrep status: wsrep_cluster_status is non-Primary")
    );
    assert_eq!(m.last_status(), Some(&isolated()));

    let mut m = QuorumMonitor::new(t0);
    m.handle(DbEvent::StatusPolled {
        status: healthy(),
        at: t0,
    });
    let c = m
        .handle(DbEvent::WriteRejected {
            error: WriteErrorKind::WsrepNotReady,
            at: t0,
        })
        .unwrap();
    assert!(c.reason.contains("1047"), "{c}");
    let mut m = QuorumMonitor::new(t0);
    m.handle(DbEvent::StatusPolled {
        status: healthy(),
        at: t0,
    });
    let c = m
        .handle(DbEvent::PollFailed {
            error: "Can't connect to local server through socket".into(),
            at: t0,
        })
        .unwrap();
    assert!(
        c.reason
            .contains("did not answer the status poll: Can't connect"),
        "{c}"
    );
}

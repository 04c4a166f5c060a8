//! The spool against the real file system and a real (SQLite) store.

use super::*;
use ironfence_core::Mac;
use ironfence_store::{AccountingEvent, AccountingKind, StoreConfig};
use std::os::unix::fs::MetadataExt;

const T0: i64 = 1_700_000_000;
const MAC: Mac = Mac([2, 0, 0, 0, 0x5b, 1]);

fn event(kind: AccountingKind, session: &str, port: &str, now: i64) -> Record {
    Record::Accounting(AccountingEvent {
        mac: Some(MAC),
        port: Some(port.into()),
        session_id: Some(session.into()),
        ..AccountingEvent::new(kind, "sw1", "192.0.2.1", now)
    })
}

fn open(path: &Path, max: u64) -> (Spool, SpoolMetrics) {
    let m = SpoolMetrics::default();
    (Spool::open(path, max, m.clone()).expect("open spool"), m)
}

async fn store(dir: &Path) -> Store {
    Store::open(&StoreConfig::Sqlite {
        path: dir.join("db.sqlite"),
    })
    .await
    .expect("open store")
}

fn records_in(path: &Path) -> Vec<Record> {
    let buf = std::fs::read(path).unwrap();
    let s = record::scan(&buf);
    assert_eq!(s.tail, None);
    s.entries.into_iter().map(|(e, _)| e.record).collect()
}

#[tokio::test]
async fn appended_records_are_on_disk_private_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join(FILE_NAME);
    let (spool, m) = open(&path, 1 << 20);
    assert!(!spool.is_pending());
    let sent: Vec<Record> = (0..5)
        .map(|i| event(AccountingKind::InterimUpdate, "s", "1", T0 + i))
        .collect();
    for r in &sent {
        spool.append(r.clone()).await.unwrap();
    }
    assert!(spool.is_pending());
    assert_eq!(spool.len(), std::fs::metadata(&path).unwrap().len());
    assert_eq!(m.bytes.get() as u64, spool.len());
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    // What an append acknowledged is in the file (read by another handle, as after a crash).
    assert_eq!(records_in(&path), sent);
    drop(spool);
    let (again, _) = open(&path, 1 << 20);
    assert!(again.is_pending());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (spool, _) = open(&path, 1 << 24);
    let spool = Arc::new(spool);
    let mut tasks = Vec::new();
    for i in 0..400 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            spool
                .append(event(AccountingKind::Start, &format!("s{i}"), "1", T0))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = records_in(&path);
    assert_eq!(got.len(), 400);
    let distinct: std::collections::HashSet<_> = got.iter().map(record::idempotency_key).collect();
    assert_eq!(distinct.len(), 400);
}

#[tokio::test]
async fn a_torn_tail_is_truncated_at_open_and_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (spool, _) = open(&path, 1 << 20);
    for i in 0..3 {
        spool
            .append(event(AccountingKind::Start, &format!("s{i}"), "1", T0 + i))
            .await
            .unwrap();
    }
    drop(spool);
    // A crash in the middle of the write of a fourth group: half a frame at the end.
    let whole = std::fs::metadata(&path).unwrap().len();
    let fourth = record::encode_frame(&Entry::new(event(AccountingKind::Stop, "s9", "1", T0)));
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    io::Write::write_all(&mut f, &fourth[..fourth.len() / 2]).unwrap();
    drop(f);
    let (spool, _) = open(&path, 1 << 20);
    assert_eq!(spool.len(), whole);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        whole,
        "cut at open"
    );
    // New appends follow the last whole record, so the file reads cleanly.
    spool
        .append(event(AccountingKind::Stop, "s0", "1", T0 + 9))
        .await
        .unwrap();
    assert_eq!(records_in(&path).len(), 4);
}

#[tokio::test]
async fn when_full_new_records_are_refused_and_the_old_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let frame_len =
        record::encode_frame(&Entry::new(event(AccountingKind::Start, "s0", "1", T0))).len() as u64;
    let (spool, m) = open(&path, frame_len * 3);
    for i in 0..3 {
        spool
            .append(event(AccountingKind::Start, &format!("s{i}"), "1", T0))
            .await
            .unwrap();
    }
    let e = spool
        .append(event(AccountingKind::Start, "s3", "1", T0))
        .await
        .unwrap_err();
    assert!(matches!(e, SpoolError::Full { .. }), "{e}");
    assert_eq!(
        m.refused_total.get_or_create(&[("reason", "full")]).get(),
        1
    );
    assert_eq!(records_in(&path).len(), 3);
}

#[tokio::test]
async fn append_if_pending_writes_nothing_to_an_empty_spool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (spool, _) = open(&path, 1 << 20);
    let r = event(AccountingKind::Start, "s0", "1", T0);
    assert!(!spool.append_if_pending(r.clone()).await.unwrap());
    assert_eq!(spool.len(), 0);
    spool.append(r.clone()).await.unwrap();
    assert!(spool.append_if_pending(r).await.unwrap(), "queues behind");
    assert_eq!(records_in(&path).len(), 2);
}

#[tokio::test]
async fn replay_applies_in_order_then_empties_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (spool, m) = open(&path, 1 << 20);
    let st = store(dir.path()).await;
    // Moved from port 1 to port 2, then left: order matters (Stop before Start would leave
    // the port-2 stay open).
    for r in [
        event(AccountingKind::Start, "a", "1", T0),
        event(AccountingKind::InterimUpdate, "a", "1", T0 + 60),
        event(AccountingKind::Stop, "a", "1", T0 + 100),
        event(AccountingKind::Start, "b", "2", T0 + 110),
        event(AccountingKind::Stop, "b", "2", T0 + 200),
        Record::NodeSeen {
            mac: Mac([2, 0, 0, 0, 0x5b, 2]),
            at: T0 + 5,
        },
    ] {
        spool.append(r).await.unwrap();
    }
    let report = spool.replay(&st, || T0 + 1000).await.unwrap();
    assert!(report.blocked.is_none());
    assert_eq!((report.applied, report.duplicates), (6, 0));
    assert!(report.drained);
    assert!(!spool.is_pending());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(m.bytes.get(), 0);
    let log = st.locationlog(MAC, 10).await.unwrap();
    let stays: Vec<_> = log
        .iter()
        .map(|e| (e.port.as_deref(), e.start_time, e.end_time))
        .collect();
    assert_eq!(
        stays,
        vec![
            (Some("2"), T0 + 110, Some(T0 + 200)),
            (Some("1"), T0, Some(T0 + 100)),
        ]
    );
    let seen = st.get_node(Mac([2, 0, 0, 0, 0x5b, 2])).await.unwrap();
    assert_eq!(seen.map(|n| n.last_seen), Some(Some(T0 + 5)));
}

/// A crash after the replay applied records but before it truncated the spool: at the next
/// start the whole spool is replayed again. Without the idempotency keys, the replayed Start
/// of session `a` would reopen a stay its Stop had closed.
#[tokio::test]
async fn a_replay_repeated_after_a_crash_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let st = store(dir.path()).await;
    let (spool, _) = open(&path, 1 << 20);
    spool
        .append(event(AccountingKind::Start, "a", "1", T0))
        .await
        .unwrap();
    spool
        .append(event(AccountingKind::Stop, "a", "1", T0 + 100))
        .await
        .unwrap();
    let before_replay = std::fs::read(&path).unwrap();
    assert!(spool.replay(&st, || T0 + 1000).await.unwrap().drained);
    drop(spool);
    // The crash: the truncation never reached the disk; one more record came after.
    std::fs::write(&path, &before_replay).unwrap();
    let (spool, _) = open(&path, 1 << 20);
    spool
        .append(event(AccountingKind::Start, "b", "2", T0 + 300))
        .await
        .unwrap();
    let report = spool.replay(&st, || T0 + 2000).await.unwrap();
    assert_eq!((report.applied, report.duplicates), (1, 2));
    let log = st.locationlog(MAC, 10).await.unwrap();
    let stays: Vec<_> = log
        .iter()
        .map(|e| (e.session_id.as_deref(), e.start_time, e.end_time))
        .collect();
    assert_eq!(
        stays,
        vec![(Some("b"), T0 + 300, None), (Some("a"), T0, Some(T0 + 100))]
    );
}

#[tokio::test]
async fn a_symlink_in_place_of_the_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"").unwrap();
    let path = dir.path().join(FILE_NAME);
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let e = Spool::open(&path, 1 << 20, SpoolMetrics::default()).unwrap_err();
    assert!(matches!(e, SpoolError::Io { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_spool_is_replayed_one_batch_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let st = store(dir.path()).await;
    let (spool, _) = open(&path, 1 << 24);
    let spool = Arc::new(spool);
    let n = REPLAY_BATCH + 88;
    let mut tasks = Vec::new();
    for i in 0..n {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            let mac = Mac([2, 1, 0, 0, (i >> 8) as u8, i as u8]);
            spool.append(Record::NodeSeen { mac, at: T0 }).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Between calls the replay task notices a shutdown: a call never runs the whole spool.
    let first = spool.replay(&st, || T0).await.unwrap();
    assert_eq!((first.applied, first.drained), (REPLAY_BATCH as u64, false));
    assert!(spool.is_pending());
    let second = spool.replay(&st, || T0).await.unwrap();
    assert_eq!((second.applied, second.drained), (88, true));
    assert_eq!(st.count_nodes().await.unwrap(), n as u64);
    assert!(!spool.is_pending());
}

#[tokio::test]
async fn a_second_process_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (first, _) = open(&path, 1 << 20);
    // flock locks belong to the open file: a second open, even in this process, is refused.
    let e = Spool::open(&path, 1 << 20, SpoolMetrics::default()).unwrap_err();
    assert!(e.to_string().contains("another process"), "{e}");
    drop(first);
    let (_again, _) = open(&path, 1 << 20);
}

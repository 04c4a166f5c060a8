//! The log as a whole: append, rotate, recover, retain, query.

use crate::log::{AuditLog, Closed, Limits, retention_plan, should_rotate};
use crate::record::tests::{mac, sample};
use crate::{Query, query, segment};
use std::path::Path;

const S: i64 = 1_000_000;

fn limits() -> Limits {
    Limits {
        segment_size: 1 << 20,
        segment_age_us: 3600 * S,
        max_age_us: 86_400 * S,
        max_size: 1 << 30,
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn rotation_table() {
    let l = Limits {
        segment_size: 1000,
        segment_age_us: 60 * S,
        ..limits()
    };
    // (len, records, opened_at, now) -> rotate?
    let cases = [
        (8, 0, 0, 0, false),
        (999, 10, 0, 59 * S, false),
        (1000, 10, 0, 0, true),           // size reached
        (500, 10, 0, 60 * S, true),       // age reached
        (8, 0, 0, 3600 * S, false),       // old but empty: nothing to close
        (500, 1, 100 * S, 50 * S, false), // clock went back
    ];
    for (len, records, opened, now, want) in cases {
        assert_eq!(
            should_rotate(len, records, opened, now, &l),
            want,
            "{len} {records} {opened} {now}"
        );
    }
}

#[test]
fn retention_table() {
    let l = Limits {
        max_age_us: 100 * S,
        max_size: 1000,
        ..limits()
    };
    let seg = |seq, bytes, t: Option<i64>| Closed {
        seq,
        bytes,
        max_time_us: t.map(|t| t * S),
    };
    let now = 1000 * S;
    let cases: Vec<(Vec<Closed>, u64, Vec<u64>)> = vec![
        (vec![], 0, vec![]),
        // all young, small
        (
            vec![seg(1, 100, Some(950)), seg(2, 100, Some(990))],
            100,
            vec![],
        ),
        // age: 1 is older than 100 s, 2 is exactly at the limit (kept)
        (
            vec![seg(1, 100, Some(899)), seg(2, 100, Some(900))],
            100,
            vec![1],
        ),
        // size: 1200 > 1000 → oldest goes until it fits
        (
            vec![
                seg(1, 300, Some(990)),
                seg(2, 300, Some(991)),
                seg(3, 300, Some(992)),
            ],
            300,
            vec![1],
        ),
        (
            vec![seg(1, 600, Some(990)), seg(2, 600, Some(991))],
            100,
            vec![1],
        ),
        // the open segment alone is too large: every closed one goes, never the open one
        (
            vec![seg(1, 10, Some(990)), seg(2, 10, Some(991))],
            2000,
            vec![1, 2],
        ),
        // an empty closed segment has nothing to keep
        (vec![seg(1, 8, None), seg(2, 100, Some(999))], 8, vec![1]),
    ];
    for (closed, open, want) in cases {
        assert_eq!(
            retention_plan(&closed, open, now, &l),
            want,
            "{closed:?} open {open}"
        );
    }
}

#[test]
fn append_query_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    let (mut log, rec) = AuditLog::open(&d, limits(), 0).unwrap();
    assert_eq!(rec, Default::default());
    let batch: Vec<_> = (0..300)
        .map(|i| sample(i * S, i as u64, Some(mac((i % 3) as u8))))
        .collect();
    log.append(&batch[..100], 0).unwrap();
    log.append(&batch[100..], 0).unwrap();
    // The open segment is read by scanning, while the writer holds it.
    let found = query(
        &d,
        &Query {
            mac: Some(mac(1)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(found.records.len(), 100);
    assert_eq!((found.scanned, found.indexed), (1, 0));
    assert!(found.records.iter().all(|r| r.mac == Some(mac(1))));
    assert!(
        found
            .records
            .windows(2)
            .all(|w| w[0].time_us < w[1].time_us)
    );
    log.close().unwrap();
    // Closed: read through the index; reopened: a new segment, the old one kept.
    let (log, rec) = AuditLog::open(&d, limits(), 0).unwrap();
    assert_eq!(rec.indexed, 0);
    assert_eq!(log.segments(), 2);
    let found = query(
        &d,
        &Query {
            mac: Some(mac(1)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(found.records.len(), 100);
    assert_eq!(found.indexed, 1);
    let want: Vec<_> = batch
        .iter()
        .filter(|r| r.mac == Some(mac(1)))
        .cloned()
        .collect();
    assert_eq!(found.records, want);
    // Time range and limit.
    let q = Query {
        mac: Some(mac(2)),
        since_us: Some(100 * S),
        until_us: Some(200 * S),
        limit: Some(5),
    };
    let got: Vec<u64> = query(&d, &q)
        .unwrap()
        .records
        .iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(got, [185, 188, 191, 194, 197]);
    // Every record, no MAC.
    let all = query(&d, &Query::default()).unwrap();
    assert_eq!(all.records, batch);
}

#[test]
fn a_torn_tail_is_cut_and_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    let (mut log, _) = AuditLog::open(&d, limits(), 0).unwrap();
    let batch: Vec<_> = (0..10)
        .map(|i| sample(i * S, i as u64, Some(mac(7))))
        .collect();
    log.append(&batch, 0).unwrap();
    log.sync().unwrap();
    drop(log); // a crash: no index written
    let seg = segment::segment_path(&d, 1);
    let full = std::fs::read(&seg).unwrap();
    let one = sample(0, 0, Some(mac(7))).encode().len();
    // Tear the last record at every possible point: 9 records survive, never a 10th.
    for cut in 1..one {
        std::fs::write(&seg, &full[..full.len() - cut]).unwrap();
        let found = query(
            &d,
            &Query {
                mac: Some(mac(7)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(found.records, batch[..9], "cut {cut}");
    }
    // Garbage instead of a tail (a crash on a filesystem that zero-fills or reorders).
    let mut bad = full[..full.len() - one].to_vec();
    bad.extend_from_slice(&[0x55; 40]);
    std::fs::write(&seg, &bad).unwrap();
    let (log, rec) = AuditLog::open(&d, limits(), 0).unwrap();
    assert_eq!(rec.indexed, 1);
    assert_eq!(rec.truncated_bytes, 40);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len() as usize,
        full.len() - one
    );
    assert_eq!(
        files(&d),
        [
            "00000000000000000001.idx",
            "00000000000000000001.seg",
            "00000000000000000002.seg"
        ]
    );
    drop(log);
    let found = query(
        &d,
        &Query {
            mac: Some(mac(7)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(found.records, batch[..9]);
    assert_eq!(found.indexed, 1);
}

#[test]
fn odd_files_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    std::fs::create_dir_all(&d).unwrap();
    // Crashed right after creating a segment, before its header; a foreign file; a stray index.
    std::fs::write(segment::segment_path(&d, 3), &segment::MAGIC[..3]).unwrap();
    std::fs::write(segment::segment_path(&d, 4), b"not a segment at all").unwrap();
    std::fs::write(segment::index_path(&d, 2), b"stray").unwrap();
    std::fs::write(d.join("notes.txt"), b"x").unwrap();
    let (log, rec) = AuditLog::open(&d, limits(), 0).unwrap();
    assert_eq!(rec.set_aside, [d.join("00000000000000000004.seg.corrupt")]);
    assert_eq!(log.segments(), 1);
    drop(log);
    assert!(!segment::segment_path(&d, 3).exists());
    assert!(segment::segment_path(&d, 5).exists());
    assert!(query(&d, &Query::default()).unwrap().records.is_empty());
}

#[test]
fn a_damaged_index_falls_back_to_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    let (mut log, _) = AuditLog::open(&d, limits(), 0).unwrap();
    let batch: Vec<_> = (0..20)
        .map(|i| sample(i * S, i as u64, Some(mac(1))))
        .collect();
    log.append(&batch, 0).unwrap();
    log.close().unwrap();
    std::fs::write(
        segment::index_path(&d, 1),
        b"IFAUDIX1 but garbage after that....................",
    )
    .unwrap();
    let found = query(
        &d,
        &Query {
            mac: Some(mac(1)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(found.records, batch);
    assert_eq!(found.scanned, 1);
    // and the next open rebuilds it
    let (_log, rec) = AuditLog::open(&d, limits(), 0).unwrap();
    assert_eq!(rec.indexed, 1);
    assert_eq!(
        query(
            &d,
            &Query {
                mac: Some(mac(1)),
                ..Default::default()
            }
        )
        .unwrap()
        .indexed,
        1
    );
}

#[test]
fn rotation_by_size_and_age_and_retention_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    let one = sample(0, 0, Some(mac(1))).encode().len() as u64;
    let l = Limits {
        segment_size: 8 + 10 * one, // ten records a segment
        segment_age_us: 60 * S,
        max_age_us: 1000 * S,
        max_size: 1 << 30,
    };
    let (mut log, _) = AuditLog::open(&d, l, 0).unwrap();
    for i in 0..35i64 {
        log.append(&[sample(i * S, i as u64, Some(mac(1)))], i * S)
            .unwrap();
    }
    // 10 + 10 + 10 closed by size, 5 in the open segment.
    assert_eq!(log.segments(), 4);
    // Age: nothing for 60 s → the open one closes at the next maintenance.
    log.maintain(35 * S + 60 * S).unwrap();
    assert_eq!(log.segments(), 5);
    assert_eq!(
        query(
            &d,
            &Query {
                mac: Some(mac(1)),
                ..Default::default()
            }
        )
        .unwrap()
        .records
        .len(),
        35
    );
    // Retention by age: newest record of segments 1 and 2 is at 9 s and 19 s.
    let deleted = log.apply_retention(1019 * S + 1).unwrap();
    assert_eq!(deleted, [1, 2]);
    let left = query(&d, &Query::default()).unwrap().records;
    assert_eq!(left.first().map(|r| r.request_id), Some(20));
    assert_eq!(left.len(), 15);
    // Retention by size: shrink the limit to about two segments.
    let total = log.total_bytes();
    drop(log);
    let (mut log, _) = AuditLog::open(
        &d,
        Limits {
            max_size: total / 2,
            ..l
        },
        0,
    )
    .unwrap();
    let deleted = log.apply_retention(100 * S).unwrap();
    // 3 for the size; 5 is the empty segment the age rotation opened (nothing to keep).
    assert_eq!(deleted, [3, 5]);
    assert!(log.total_bytes() <= total / 2);
    assert_eq!(query(&d, &Query::default()).unwrap().records.len(), 5);
    assert!(!segment::segment_path(&d, 1).exists() && !segment::index_path(&d, 1).exists());
}

#[test]
fn a_limited_query_skips_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    let (mut log, _) = AuditLog::open(&d, limits(), 0).unwrap();
    for s in 0..5i64 {
        let batch: Vec<_> = (0..10)
            .map(|i| sample((s * 10 + i) * S, (s * 10 + i) as u64, Some(mac(1))))
            .collect();
        log.append(&batch, 0).unwrap();
        log.rotate(0).unwrap();
    }
    drop(log);
    let q = Query {
        mac: Some(mac(1)),
        limit: Some(3),
        ..Default::default()
    };
    let found = query(&d, &q).unwrap();
    let ids: Vec<u64> = found.records.iter().map(|r| r.request_id).collect();
    assert_eq!(ids, [47, 48, 49]);
    assert_eq!(found.indexed, 1);
    assert_eq!(found.skipped, 4);
    // time range outside every segment
    let q = Query {
        since_us: Some(1000 * S),
        ..Default::default()
    };
    let found = query(&d, &q).unwrap();
    assert!(found.records.is_empty());
    assert_eq!(found.indexed, 0);
}

#[test]
fn merge_orders_by_time_and_keeps_the_newest() {
    let a = vec![sample(1, 1, None), sample(5, 5, None)];
    let b = vec![sample(2, 2, None), sample(9, 9, None)];
    let ids = |v: Vec<crate::AuditRecord>| v.into_iter().map(|r| r.request_id).collect::<Vec<_>>();
    assert_eq!(
        ids(crate::merge([a.clone(), b.clone()], None)),
        [1, 2, 5, 9]
    );
    assert_eq!(ids(crate::merge([a, b], Some(2))), [5, 9]);
}

#[test]
fn the_sink_never_drops_and_counts_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("audit");
    // A channel of 4 and 20k records from 4 threads: the senders must wait, nothing is lost.
    let (sink, _) = crate::Sink::start(&d, limits(), 4).unwrap();
    let sink = std::sync::Arc::new(sink);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..5000u64 {
                    assert!(sink.push(sample(i as i64, t * 10_000 + i, Some(mac(t as u8)))));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(sink.flush());
    let stats = sink.stats().clone();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.records_written.load(Relaxed), 20_000);
    assert!(stats.blocked_pushes.load(Relaxed) > 0);
    sink.close();
    assert!(!sink.push(sample(0, 0, None)), "closed");
    for t in 0..4u8 {
        let found = query(
            &d,
            &Query {
                mac: Some(mac(t)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(found.records.len(), 5000);
        assert_eq!(found.scanned, 0, "closed at shutdown, so all indexed");
    }
}

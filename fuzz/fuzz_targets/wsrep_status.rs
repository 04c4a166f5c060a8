//! Parse arbitrary bytes as `SHOW GLOBAL STATUS LIKE 'wsrep%'` rows (the tab-separated output
//! of the mariadb client, as the supervisor reads it; on a peer's database the values come
//! from a server this one does not control). Never panics; the decisions agree with each
//! other (healthy implies writable, the monitor goes read-write exactly on a writable poll);
//! the parsed status written back as rows parses to the same status.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ironfence_galera::{DbEvent, QuorumMonitor, WsrepStatus};
use libfuzzer_sys::fuzz_target;

fn rows_of(s: &WsrepStatus) -> Vec<(String, String)> {
    let on = |b: bool| if b { "ON" } else { "OFF" }.to_string();
    let mut rows = vec![
        ("wsrep_cluster_status".into(), s.cluster_status.clone()),
        (
            "wsrep_local_state_comment".into(),
            s.local_state_comment.clone(),
        ),
        ("wsrep_ready".into(), on(s.ready)),
        ("wsrep_connected".into(), on(s.connected)),
        (
            "wsrep_incoming_addresses".into(),
            s.incoming_addresses.join(","),
        ),
    ];
    if let Some(n) = s.cluster_size {
        rows.push(("wsrep_cluster_size".into(), n.to_string()));
    }
    if let Some(n) = s.last_committed {
        rows.push(("wsrep_last_committed".into(), n.to_string()));
    }
    if let Some(u) = &s.cluster_state_uuid {
        rows.push(("wsrep_cluster_state_uuid".into(), u.clone()));
    }
    if let Some(n) = s.local_cert_failures {
        rows.push(("wsrep_local_cert_failures".into(), n.to_string()));
    }
    rows
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let rows: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let s = WsrepStatus::from_status_rows(&rows);

    assert!(
        s.incoming_addresses
            .iter()
            .all(|a| !a.is_empty() && a.trim() == a && !a.contains(',')),
        "{s:?}"
    );
    assert_eq!(s.is_healthy(), s.unhealthy_reason().is_none());
    if s.is_healthy() {
        assert_eq!(
            s.not_writable_reason(),
            None,
            "healthy must be writable: {s:?}"
        );
    }
    let members = [
        Ipv4Addr::new(10, 99, 0, 11),
        Ipv4Addr::new(10, 99, 0, 12),
        Ipv4Addr::new(10, 99, 0, 13),
    ];
    assert!(s.missing_members(&members).len() <= members.len());

    let t0 = Instant::now();
    let mut m = QuorumMonitor::new(t0);
    m.handle(DbEvent::StatusPolled {
        status: s.clone(),
        at: t0 + Duration::from_millis(1),
    });
    assert_eq!(m.is_read_only(), s.not_writable_reason().is_some(), "{s:?}");
    assert_eq!(m.last_status(), Some(&s));

    assert_eq!(WsrepStatus::from_status_rows(&rows_of(&s)), s);
});

//! The device's location recorded at Access-Accept (PacketFence's `locationlog_synchronize`),
//! so that a switch that sends no accounting still tells the CoA sender where the device is.
//!
//! Cheap by construction: the reply never waits for it (a background task); a location this
//! server wrote less than [`RECENT_TTL`] ago is not even read again (a per-server memory of
//! the last location written per MAC, forgotten when accounting arrives for the MAC, bounded
//! to [`RECENT_MAX`] entries); otherwise it writes only when the open entry differs (one
//! indexed read first). It is skipped while the database is read-only (never spooled: the next
//! authentication or accounting records it), and at most [`MAX_IN_FLIGHT`] run at once
//! (beyond that it is skipped and counted as `busy`).
//!
//! The memory is per server: within [`RECENT_TTL`] a device that went elsewhere through
//! another server and came back here is not rewritten until then (its accounting, if the
//! switch sends any, rewrites it at once).

use crate::Shared;
use ironfence_core::Mac;
use ironfence_store::{AccountingEvent, AccountingKind, LocationLogEntry, Store};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Background location writes allowed at once.
pub const MAX_IN_FLIGHT: usize = 128;
/// How long a location written (or found) here is trusted without reading it again.
pub const RECENT_TTL: Duration = Duration::from_secs(60);
/// Entries of that memory (it is emptied when full: a cheap bound, the database is the truth).
pub const RECENT_MAX: usize = 100_000;

type Recent = Arc<Mutex<HashMap<Mac, (u64, Instant)>>>;

/// Bounds the background writes and remembers the last location written per MAC (one per
/// server).
#[derive(Debug, Default)]
pub struct Recorder {
    in_flight: Arc<AtomicUsize>,
    recent: Recent,
}

impl Recorder {
    /// Accounting arrived for `mac`: what it writes may differ from what was remembered.
    pub(crate) fn forget(&self, mac: Mac) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mac);
    }

    fn is_recent(&self, mac: Mac, key: u64, now: Instant) -> bool {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&mac)
            .is_some_and(|(k, at)| *k == key && now.duration_since(*at) < RECENT_TTL)
    }
}

fn remember(recent: &Recent, mac: Mac, key: u64) {
    let mut map = recent.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= RECENT_MAX {
        map.clear();
    }
    map.insert(mac, (key, Instant::now()));
}

struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where an Access-Accept placed the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcceptedAt {
    pub mac: ironfence_core::Mac,
    pub switch_id: String,
    pub switch_ip: String,
    pub port: Option<String>,
    pub vlan: Option<String>,
    pub role: Option<String>,
    pub ssid: Option<String>,
    pub username: Option<String>,
    pub connection_type: Option<String>,
    pub now: ironfence_core::UnixTime,
}

/// Whether an open entry already says this.
fn unchanged(open: &[LocationLogEntry], at: &AcceptedAt) -> bool {
    open.iter().any(|e| {
        e.end_time.is_none()
            && e.switch_ip == at.switch_ip
            && e.port == at.port
            && e.vlan == at.vlan
            && e.ssid == at.ssid
    })
}

/// The location's identity (what [`unchanged`] compares).
fn key_of(at: &AcceptedAt) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&at.switch_ip, &at.port, &at.vlan, &at.ssid).hash(&mut h);
    h.finish()
}

/// Records `at` in the background (see the module docs). Never blocks the caller.
pub(crate) fn record(shared: &Shared, at: AcceptedAt) {
    let metrics = shared.metrics.coa.clone();
    let key = key_of(&at);
    if shared.locations.is_recent(at.mac, key, Instant::now()) {
        metrics.location("unchanged");
        return;
    }
    if shared.db.is_read_only() {
        metrics.location("read_only");
        return;
    }
    let counter = &shared.locations.in_flight;
    if counter.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
        counter.fetch_sub(1, Ordering::AcqRel);
        metrics.location("busy");
        return;
    }
    let slot = Slot(counter.clone());
    let store: Store = shared.store.clone();
    let recent = shared.locations.recent.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let mac = at.mac;
        let result = write_if_changed(&store, at).await;
        if result != "error" {
            remember(&recent, mac, key);
        }
        metrics.location(result);
    });
}

async fn write_if_changed(store: &Store, at: AcceptedAt) -> &'static str {
    match store.locationlog(at.mac, 4).await {
        Ok(open) if unchanged(&open, &at) => return "unchanged",
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(mac = %at.mac, error = %e, "location at auth not read");
            return "error";
        }
    }
    // The accounting planner's rules: the MAC's open entry elsewhere is closed, a new one
    // opened (and the node created if the Accept raced its first-sighting write).
    let ev = AccountingEvent {
        kind: AccountingKind::InterimUpdate,
        mac: Some(at.mac),
        port: at.port,
        vlan: at.vlan,
        role: at.role,
        ssid: at.ssid,
        username: at.username,
        connection_type: at.connection_type,
        ..AccountingEvent::new(
            AccountingKind::InterimUpdate,
            &at.switch_id,
            &at.switch_ip,
            at.now,
        )
    };
    match store.record_accounting(&ev).await {
        Ok(()) => "recorded",
        Err(e) => {
            tracing::debug!(mac = %at.mac, error = %e, "location at auth not recorded");
            "error"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(port: &str, vlan: Option<&str>, end: Option<i64>) -> LocationLogEntry {
        LocationLogEntry {
            id: 1,
            mac: ironfence_core::Mac([2, 0, 0, 0, 0, 1]),
            switch_id: "sw".into(),
            switch_ip: "192.0.2.1".into(),
            port: Some(port.into()),
            vlan: vlan.map(str::to_string),
            role: None,
            ssid: None,
            session_id: None,
            username: None,
            connection_type: None,
            start_time: 0,
            end_time: end,
        }
    }

    #[test]
    fn unchanged_only_when_an_open_entry_says_the_same() {
        let at = AcceptedAt {
            mac: ironfence_core::Mac([2, 0, 0, 0, 0, 1]),
            switch_id: "sw".into(),
            switch_ip: "192.0.2.1".into(),
            port: Some("12".into()),
            vlan: Some("2".into()),
            role: None,
            ssid: None,
            username: None,
            connection_type: None,
            now: 0,
        };
        let cases: &[(&str, Vec<LocationLogEntry>, bool)] = &[
            ("no entry", vec![], false),
            ("same, open", vec![entry("12", Some("2"), None)], true),
            ("same, closed", vec![entry("12", Some("2"), Some(5))], false),
            ("other port", vec![entry("13", Some("2"), None)], false),
            (
                "other VLAN (after a CoA)",
                vec![entry("12", Some("100"), None)],
                false,
            ),
            (
                "accounting wrote no VLAN",
                vec![entry("12", None, None)],
                false,
            ),
        ];
        for (name, open, want) in cases {
            assert_eq!(unchanged(open, &at), *want, "{name}");
        }
    }

    #[test]
    fn the_memory_expires_and_is_forgotten_on_accounting() {
        let r = Recorder::default();
        let mac = ironfence_core::Mac([2, 0, 0, 0, 0, 1]);
        let t0 = Instant::now();
        assert!(!r.is_recent(mac, 7, t0));
        remember(&r.recent, mac, 7);
        assert!(r.is_recent(mac, 7, Instant::now()));
        assert!(!r.is_recent(mac, 8, Instant::now()), "another location");
        assert!(!r.is_recent(mac, 7, Instant::now() + RECENT_TTL), "expired");
        r.forget(mac);
        assert!(!r.is_recent(mac, 7, Instant::now()));
    }
}

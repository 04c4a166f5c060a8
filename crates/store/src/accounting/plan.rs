//! The accounting planner: one pure function from an accounting event and the open location
//! log entries it may concern to the list of changes to apply. Both backends use it: in their
//! transaction they [ensure the node](Needs::create_node) (which on MariaDB also locks its row),
//! read the open entries of the [scope](Needs::scope), call [`plan`] and apply the
//! [`Change`]s in order. The rules themselves are documented in the [parent module](super).

use super::{AccountingEvent, AccountingKind};
use ironfence_core::Mac;
use std::net::Ipv4Addr;

/// What a backend must do and read before it can call [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Create this node (unregistered, owner `default`) if absent, first thing in the
    /// transaction. On MariaDB that statement (`INSERT … ON DUPLICATE KEY UPDATE`) also takes
    /// the node's record lock, which serialises concurrent events of one MAC.
    pub create_node: Option<Mac>,
    /// Which open location log entries to read (after the node statement).
    pub scope: Scope,
}

/// A set of open (`end_time IS NULL`) location log entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Nothing to read: the event changes no location log entry.
    Nothing,
    /// Every open entry of this MAC.
    Mac(Mac),
    /// The open entries of this NAS (`switch_ip`) with this session id.
    NasSession {
        switch_ip: String,
        session_id: String,
    },
    /// Every open entry of this NAS.
    Nas { switch_ip: String },
}

/// An open location log entry, as the planner needs it. Backends may read more rows than the
/// scope strictly needs: the planner filters again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEntry {
    pub id: u64,
    pub mac: Mac,
    pub switch_ip: String,
    pub port: Option<String>,
    pub vlan: Option<String>,
    pub ssid: Option<String>,
    pub session_id: Option<String>,
    pub username: Option<String>,
}

/// One change, applied in order inside the event's transaction. Times are the event's `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `UPDATE locationlog SET end_time = now WHERE id = ? AND end_time IS NULL` (by primary
    /// key: record locks only on MariaDB).
    Close { id: u64 },
    /// Set the session id and user name of the entry kept open (the values given are the
    /// final ones: the event's, or the entry's when the event has none).
    Fill {
        id: u64,
        session_id: Option<String>,
        username: Option<String>,
    },
    /// Insert a new open entry with the event's location, session and user fields.
    Open { mac: Mac },
    /// Close (`end_time = now`) every open `ip4log` entry of `mac` other than `keep`.
    IpCloseOthers { mac: Mac, keep: Ipv4Addr },
    /// Upsert `ip4log`: `ip` now belongs to `mac`, open; its `start_time` is kept when it was
    /// already held (open) by the same MAC, else `now`. Applied as one atomic upsert in SQL, so
    /// a concurrent change of that row cannot be lost between a read and a write.
    IpClaim { ip: Ipv4Addr, mac: Mac },
}

/// Step 1: what the backend must do and read for `ev`.
pub fn needs(ev: &AccountingEvent) -> Needs {
    match (ev.kind, ev.mac) {
        (AccountingKind::Start | AccountingKind::InterimUpdate, Some(m)) => Needs {
            create_node: Some(m),
            scope: Scope::Mac(m),
        },
        (AccountingKind::Start | AccountingKind::InterimUpdate, None) => Needs {
            create_node: None,
            scope: Scope::Nothing,
        },
        (AccountingKind::Stop, Some(m)) => Needs {
            create_node: None,
            scope: Scope::Mac(m),
        },
        (AccountingKind::Stop, None) => Needs {
            create_node: None,
            scope: match &ev.session_id {
                Some(sid) => Scope::NasSession {
                    switch_ip: ev.switch_ip.clone(),
                    session_id: sid.clone(),
                },
                None => Scope::Nothing,
            },
        },
        (AccountingKind::AccountingOn | AccountingKind::AccountingOff, _) => Needs {
            create_node: None,
            scope: Scope::Nas {
                switch_ip: ev.switch_ip.clone(),
            },
        },
    }
}

fn in_scope(scope: &Scope, e: &OpenEntry) -> bool {
    match scope {
        Scope::Nothing => false,
        Scope::Mac(m) => e.mac == *m,
        Scope::NasSession {
            switch_ip,
            session_id,
        } => e.switch_ip == *switch_ip && e.session_id.as_deref() == Some(session_id.as_str()),
        Scope::Nas { switch_ip } => e.switch_ip == *switch_ip,
    }
}

/// Step 2: the changes for `ev`, given the open entries of [`needs`]`(ev).scope` (entries out
/// of scope are ignored). Deterministic: closes come in ascending id order.
pub fn plan(ev: &AccountingEvent, open: &[OpenEntry]) -> Vec<Change> {
    let scope = needs(ev).scope;
    let mut open: Vec<&OpenEntry> = open.iter().filter(|e| in_scope(&scope, e)).collect();
    open.sort_by_key(|e| e.id);
    open.dedup_by_key(|e| e.id);
    let mut changes = Vec::new();
    match (ev.kind, ev.mac) {
        (AccountingKind::Start | AccountingKind::InterimUpdate, Some(m)) => {
            // NULLs compare equal: `Option` equality.
            let same = open
                .iter()
                .rev()
                .find(|e| {
                    e.switch_ip == ev.switch_ip
                        && e.port == ev.port
                        && e.vlan == ev.vlan
                        && e.ssid == ev.ssid
                })
                .map(|e| e.id);
            for e in &open {
                if Some(e.id) != same {
                    changes.push(Change::Close { id: e.id });
                }
            }
            match same.and_then(|id| open.iter().find(|e| e.id == id)) {
                Some(kept) => {
                    let session_id = ev.session_id.clone().or_else(|| kept.session_id.clone());
                    let username = ev.username.clone().or_else(|| kept.username.clone());
                    if session_id != kept.session_id || username != kept.username {
                        changes.push(Change::Fill {
                            id: kept.id,
                            session_id,
                            username,
                        });
                    }
                }
                None => changes.push(Change::Open { mac: m }),
            }
        }
        (AccountingKind::Stop, Some(_)) => {
            for e in &open {
                let matches = match (&ev.session_id, &e.session_id) {
                    (None, _) | (_, None) => true,
                    (Some(a), Some(b)) => a == b,
                };
                if matches {
                    changes.push(Change::Close { id: e.id });
                }
            }
        }
        (AccountingKind::Stop, None)
        | (AccountingKind::AccountingOn | AccountingKind::AccountingOff, _) => {
            // The scope already is exactly the entries to close.
            changes.extend(open.iter().map(|e| Change::Close { id: e.id }));
        }
        (AccountingKind::Start | AccountingKind::InterimUpdate, None) => {}
    }
    let nas_event = matches!(
        ev.kind,
        AccountingKind::AccountingOn | AccountingKind::AccountingOff
    );
    if let (Some(m), Some(ip), false) = (ev.mac, ev.framed_ip, nas_event) {
        changes.push(Change::IpCloseOthers { mac: m, keep: ip });
        changes.push(Change::IpClaim { ip, mac: m });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const NAS: &str = "10.0.0.1";

    fn mac(i: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, i])
    }

    fn ev(kind: AccountingKind, m: Option<u8>, port: Option<&str>) -> AccountingEvent {
        AccountingEvent {
            mac: m.map(mac),
            port: port.map(str::to_string),
            ..AccountingEvent::new(kind, "sw1", NAS, NOW)
        }
    }

    fn entry(id: u64, m: u8, switch_ip: &str, port: Option<&str>) -> OpenEntry {
        OpenEntry {
            id,
            mac: mac(m),
            switch_ip: switch_ip.to_string(),
            port: port.map(str::to_string),
            vlan: None,
            ssid: None,
            session_id: None,
            username: None,
        }
    }

    fn with_sid(mut e: OpenEntry, sid: &str) -> OpenEntry {
        e.session_id = Some(sid.to_string());
        e
    }

    fn sid(mut e: AccountingEvent, sid: &str) -> AccountingEvent {
        e.session_id = Some(sid.to_string());
        e
    }

    use AccountingKind::*;
    use Change::*;

    /// One row per rule of the table in the module docs, plus edge cases.
    #[test]
    fn rule_table() {
        struct Row {
            what: &'static str,
            ev: AccountingEvent,
            open: Vec<OpenEntry>,
            want: Vec<Change>,
        }
        let ssid_ev = AccountingEvent {
            ssid: Some("corp".into()),
            ..ev(Start, Some(1), None)
        };
        let rows = vec![
            Row {
                what: "Start, nothing open: open a new entry",
                ev: ev(Start, Some(1), Some("1")),
                open: vec![],
                want: vec![Open { mac: mac(1) }],
            },
            Row {
                what: "Start, same location open: keep it, nothing to write",
                ev: ev(Start, Some(1), Some("1")),
                open: vec![entry(5, 1, NAS, Some("1"))],
                want: vec![],
            },
            Row {
                what: "Interim, same location: fill session id and user name",
                ev: AccountingEvent {
                    username: Some("alice".into()),
                    ..sid(ev(InterimUpdate, Some(1), Some("1")), "S1")
                },
                open: vec![entry(5, 1, NAS, Some("1"))],
                want: vec![Fill {
                    id: 5,
                    session_id: Some("S1".into()),
                    username: Some("alice".into()),
                }],
            },
            Row {
                what: "Interim without session id keeps the recorded one (no write)",
                ev: ev(InterimUpdate, Some(1), Some("1")),
                open: vec![with_sid(entry(5, 1, NAS, Some("1")), "S1")],
                want: vec![],
            },
            Row {
                what: "Interim with only a user name keeps the recorded session id",
                ev: AccountingEvent {
                    username: Some("bob".into()),
                    ..ev(InterimUpdate, Some(1), Some("1"))
                },
                open: vec![with_sid(entry(5, 1, NAS, Some("1")), "S1")],
                want: vec![Fill {
                    id: 5,
                    session_id: Some("S1".into()),
                    username: Some("bob".into()),
                }],
            },
            Row {
                what: "Start, another port: close every open entry, open a new one",
                ev: ev(Start, Some(1), Some("2")),
                open: vec![entry(5, 1, NAS, Some("1")), entry(3, 1, "10.0.0.2", None)],
                want: vec![Close { id: 3 }, Close { id: 5 }, Open { mac: mac(1) }],
            },
            Row {
                what: "Start, same location plus a concurrent extra: keep the newest match",
                ev: ev(Start, Some(1), Some("1")),
                open: vec![
                    entry(5, 1, NAS, Some("1")),
                    entry(7, 1, NAS, Some("1")),
                    entry(6, 1, NAS, Some("9")),
                ],
                want: vec![Close { id: 5 }, Close { id: 6 }],
            },
            Row {
                what: "NULLs compare equal: no port / no port is the same location",
                ev: ssid_ev.clone(),
                open: vec![OpenEntry {
                    ssid: Some("corp".into()),
                    ..entry(5, 1, NAS, None)
                }],
                want: vec![],
            },
            Row {
                what: "NULL is not equal to a value: no SSID vs SSID is a move",
                ev: ssid_ev,
                open: vec![entry(5, 1, NAS, None)],
                want: vec![Close { id: 5 }, Open { mac: mac(1) }],
            },
            Row {
                what: "other MACs' entries are ignored",
                ev: ev(Start, Some(1), Some("1")),
                open: vec![entry(9, 2, NAS, Some("1"))],
                want: vec![Open { mac: mac(1) }],
            },
            Row {
                what: "Start without a MAC changes nothing",
                ev: ev(Start, None, Some("1")),
                open: vec![entry(9, 2, NAS, Some("1"))],
                want: vec![],
            },
            Row {
                what: "Stop without session id: close all the MAC's open entries",
                ev: ev(Stop, Some(1), Some("1")),
                open: vec![
                    with_sid(entry(5, 1, NAS, Some("1")), "S1"),
                    entry(6, 1, NAS, None),
                ],
                want: vec![Close { id: 5 }, Close { id: 6 }],
            },
            Row {
                what: "Stop with session id: only that session or none recorded",
                ev: sid(ev(Stop, Some(1), Some("1")), "S1"),
                open: vec![
                    with_sid(entry(5, 1, NAS, Some("1")), "S1"),
                    with_sid(entry(6, 1, NAS, Some("2")), "S2"),
                    entry(7, 1, NAS, Some("3")),
                ],
                want: vec![Close { id: 5 }, Close { id: 7 }],
            },
            Row {
                what: "Stop for another session closes nothing",
                ev: sid(ev(Stop, Some(1), Some("1")), "OTHER"),
                open: vec![with_sid(entry(5, 1, NAS, Some("1")), "S1")],
                want: vec![],
            },
            Row {
                what: "Stop without MAC: that NAS's entries with that session id",
                ev: sid(ev(Stop, None, None), "S1"),
                open: vec![
                    with_sid(entry(5, 1, NAS, Some("1")), "S1"),
                    with_sid(entry(6, 2, "10.0.0.2", Some("1")), "S1"),
                    with_sid(entry(7, 3, NAS, Some("2")), "S2"),
                    entry(8, 4, NAS, Some("3")),
                ],
                want: vec![Close { id: 5 }],
            },
            Row {
                what: "Stop without MAC nor session id changes nothing",
                ev: ev(Stop, None, None),
                open: vec![entry(5, 1, NAS, Some("1"))],
                want: vec![],
            },
            Row {
                what: "Accounting-On: close that NAS's entries only",
                ev: ev(AccountingOn, None, None),
                open: vec![
                    entry(5, 1, NAS, Some("1")),
                    entry(6, 2, "10.0.0.2", Some("1")),
                    entry(7, 3, NAS, Some("2")),
                ],
                want: vec![Close { id: 5 }, Close { id: 7 }],
            },
            Row {
                what: "Accounting-Off: same, and a Framed-IP on it is ignored",
                ev: AccountingEvent {
                    framed_ip: Some(Ipv4Addr::new(10, 1, 1, 1)),
                    ..ev(AccountingOff, Some(1), None)
                },
                open: vec![entry(5, 9, NAS, Some("1")), entry(6, 9, "10.9.9.9", None)],
                want: vec![Close { id: 5 }],
            },
            Row {
                what: "Framed-IP with a MAC: close the MAC's other addresses, claim this one",
                ev: AccountingEvent {
                    framed_ip: Some(Ipv4Addr::new(10, 1, 1, 1)),
                    ..ev(Start, Some(1), Some("1"))
                },
                open: vec![entry(5, 1, NAS, Some("1"))],
                want: vec![
                    IpCloseOthers {
                        mac: mac(1),
                        keep: Ipv4Addr::new(10, 1, 1, 1),
                    },
                    IpClaim {
                        ip: Ipv4Addr::new(10, 1, 1, 1),
                        mac: mac(1),
                    },
                ],
            },
            Row {
                what: "Framed-IP on a Stop still updates ip4log",
                ev: AccountingEvent {
                    framed_ip: Some(Ipv4Addr::new(10, 1, 1, 2)),
                    ..ev(Stop, Some(1), Some("1"))
                },
                open: vec![],
                want: vec![
                    IpCloseOthers {
                        mac: mac(1),
                        keep: Ipv4Addr::new(10, 1, 1, 2),
                    },
                    IpClaim {
                        ip: Ipv4Addr::new(10, 1, 1, 2),
                        mac: mac(1),
                    },
                ],
            },
            Row {
                what: "Framed-IP without a MAC is ignored",
                ev: AccountingEvent {
                    framed_ip: Some(Ipv4Addr::new(10, 1, 1, 3)),
                    ..sid(ev(Stop, None, None), "S9")
                },
                open: vec![],
                want: vec![],
            },
            Row {
                what: "an entry read twice is planned once",
                ev: ev(Stop, Some(1), None),
                open: vec![entry(5, 1, NAS, None), entry(5, 1, NAS, None)],
                want: vec![Close { id: 5 }],
            },
        ];
        for r in rows {
            assert_eq!(plan(&r.ev, &r.open), r.want, "{}", r.what);
        }
    }

    #[test]
    fn needs_per_event() {
        assert_eq!(
            needs(&ev(Start, Some(1), None)),
            Needs {
                create_node: Some(mac(1)),
                scope: Scope::Mac(mac(1))
            }
        );
        assert_eq!(
            needs(&ev(InterimUpdate, Some(1), None)).create_node,
            Some(mac(1))
        );
        assert_eq!(
            needs(&ev(Stop, Some(1), None)),
            Needs {
                create_node: None,
                scope: Scope::Mac(mac(1))
            },
            "a Stop never creates the node"
        );
        assert_eq!(
            needs(&sid(ev(Stop, None, None), "S1")).scope,
            Scope::NasSession {
                switch_ip: NAS.into(),
                session_id: "S1".into()
            }
        );
        assert_eq!(needs(&ev(Stop, None, None)).scope, Scope::Nothing);
        assert_eq!(needs(&ev(Start, None, None)).scope, Scope::Nothing);
        for k in [AccountingOn, AccountingOff] {
            assert_eq!(
                needs(&ev(k, Some(1), None)),
                Needs {
                    create_node: None,
                    scope: Scope::Nas {
                        switch_ip: NAS.into()
                    }
                }
            );
        }
    }
}

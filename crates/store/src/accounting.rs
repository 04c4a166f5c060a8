//! RADIUS accounting → location log and IP log.
//!
//! The location log answers "where is (was) this device plugged in": one row per stay of a MAC
//! on a switch port / SSID / VLAN, open while `end_time IS NULL`. The IP log maps IPv4 addresses
//! to the MAC that holds them. Both are fed by [`Store::record_accounting`](crate::Store::record_accounting)
//! from RADIUS accounting requests, with these rules (PacketFence's semantics):
//!
//! | Event | Effect on `locationlog` |
//! |---|---|
//! | `Start` / `Interim-Update` with a MAC | If the MAC has an open entry with the **same** `switch_ip`, `port`, `vlan` and `ssid` (NULLs compare equal), keep it, filling in `session_id` / `username` when the request carries them (other open entries of that MAC, which cannot exist unless written concurrently, are closed). Otherwise close **every** open entry of the MAC (`end_time = now`) and insert a new open one. |
//! | `Stop` with a MAC | Close the MAC's open entries; when the request has an `Acct-Session-Id`, only those with that session id (or with no recorded session id). |
//! | `Stop` without a MAC but with a session id | Close the open entries of that NAS with that session id. |
//! | `Accounting-On` / `Accounting-Off` | The NAS (re)booted: close all open entries whose `switch_ip` is that NAS — and only those. |
//!
//! A `Start` / `Interim-Update` for an unknown MAC also creates its node (unregistered, owner
//! `default`), as PacketFence's `locationlog_synchronize` does. On MariaDB, that row's lock is
//! what serialises concurrent events of one MAC (the open entries are then read with a plain
//! consistent read and closed by primary key, so no gap locks are taken and concurrent events of
//! neighbouring MACs do not deadlock). On a Galera cluster this serialisation is per node: two
//! events for the same MAC written at the same instant on two different nodes could both open
//! an entry; the next event for that MAC closes the extra one.
//!
//! Framed-IP-Address, when present together with a MAC (on any session event), updates
//! `ip4log`: the address now belongs to that MAC (an entry held by another MAC is taken over, a
//! still-open entry of the same MAC keeps its `start_time`), and any other open address of that
//! MAC is closed (`end_time = now`).
//!
//! Both backends share one implementation of these rules, the pure [`plan`] module: in the
//! event's transaction they read the open entries the event concerns, ask [`plan::plan`] for
//! the changes, and apply them (closing entries by primary key).
//!
//! All changes caused by one accounting event happen in **one transaction**, so a concurrent
//! reader never sees a MAC with zero or two open entries because of a half-applied event, and a
//! write conflict rolls the whole event back (see the retry rules in the [crate docs](crate)).

use ironfence_core::{Mac, UnixTime};
use std::net::Ipv4Addr;

pub mod plan;

/// `Acct-Status-Type` of an accounting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountingKind {
    Start,
    InterimUpdate,
    Stop,
    AccountingOn,
    AccountingOff,
}

/// One RADIUS accounting request, reduced to what the store records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingEvent {
    pub kind: AccountingKind,
    /// The device (from `Calling-Station-Id`); `None` for NAS-level events.
    pub mac: Option<Mac>,
    /// Switch identifier as configured (often its IP or name).
    pub switch_id: String,
    /// NAS-IP-Address (or the packet source): identifies the NAS for Accounting-On/Off.
    pub switch_ip: String,
    /// NAS-Port or NAS-Port-Id.
    pub port: Option<String>,
    pub vlan: Option<String>,
    pub role: Option<String>,
    pub ssid: Option<String>,
    /// Acct-Session-Id.
    pub session_id: Option<String>,
    pub username: Option<String>,
    pub connection_type: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    pub now: UnixTime,
}

impl AccountingEvent {
    /// An event of `kind` with only the NAS identified; fill in the rest with struct update
    /// syntax.
    pub fn new(kind: AccountingKind, switch_id: &str, switch_ip: &str, now: UnixTime) -> Self {
        AccountingEvent {
            kind,
            mac: None,
            switch_id: switch_id.to_string(),
            switch_ip: switch_ip.to_string(),
            port: None,
            vlan: None,
            role: None,
            ssid: None,
            session_id: None,
            username: None,
            connection_type: None,
            framed_ip: None,
            now,
        }
    }
}

/// One row of `locationlog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationLogEntry {
    pub id: u64,
    pub mac: Mac,
    pub switch_id: String,
    pub switch_ip: String,
    pub port: Option<String>,
    pub vlan: Option<String>,
    pub role: Option<String>,
    pub ssid: Option<String>,
    pub session_id: Option<String>,
    pub username: Option<String>,
    pub connection_type: Option<String>,
    pub start_time: UnixTime,
    /// `None` while the device is still there.
    pub end_time: Option<UnixTime>,
}

/// One row of `ip4log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip4LogEntry {
    pub ip: Ipv4Addr,
    pub mac: Mac,
    pub start_time: UnixTime,
    /// `None` while the MAC still holds the address.
    pub end_time: Option<UnixTime>,
}

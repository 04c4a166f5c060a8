//! Embedded SQLite backend (rusqlite).
//!
//! * WAL journal, `synchronous=NORMAL` (a power loss can lose the last commits but never
//!   corrupts), `busy_timeout` 5 s, foreign keys on, memory-mapped reads.
//! * One writer connection behind a `std::sync::Mutex` (SQLite allows one writer at a time
//!   anyway; serialising in-process avoids busy-waiting), and a small pool of reader
//!   connections (`query_only`) picked round-robin with `try_lock`. In WAL mode readers never
//!   block the writer nor each other.
//! * Statements run inline in the async methods, without `spawn_blocking`: a cached point
//!   lookup is a few µs, less than a thread hand-off. Writes are short transactions; a writer
//!   waiting on the mutex blocks its executor thread for at most the duration of the write in
//!   progress.
//! * Statements are prepared once per connection (`prepare_cached`).

mod dhcp;

use crate::accounting::plan::{self, Change, OpenEntry, Scope};
use crate::accounting::{AccountingEvent, Ip4LogEntry, LocationLogEntry};
use crate::migrations::{
    LATEST_VERSION, MIGRATIONS, SQLITE_SCHEMA_VERSION_DDL, newer_schema_error,
};
use crate::types::{AuditRecord, NodeFilter, Person};
use crate::{StoreError, mac_text};
use ironfence_core::{Mac, Node, NodeStatus, NodeView, UnixTime};
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

/// Requests are processed on the listener tasks (one per RADIUS port) and the CLI opens its own
/// store, so two readers cover the daemon; each holds its own page cache and file mapping.
const READERS: usize = 2;

/// `ironfence.db` -> `ironfence.audit.db`, beside it.
pub(crate) fn audit_path(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ironfence".into());
    main.with_file_name(format!("{stem}.audit.db"))
}

/// Schema of the audit file; versioned with the main schema (see migrations.rs, version 3).
const AUDIT_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS radius_audit_log (
        id INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL,
        mac TEXT,
        user_name TEXT,
        nas_ip TEXT NOT NULL,
        nas_port TEXT,
        request_type TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        vlan TEXT,
        role TEXT,
        switch_id TEXT,
        calling_station_id TEXT,
        called_station_id TEXT
    );
    CREATE INDEX IF NOT EXISTS radius_audit_log_created_at ON radius_audit_log (created_at);
    CREATE INDEX IF NOT EXISTS radius_audit_log_mac ON radius_audit_log (mac);
";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// The RADIUS audit log lives in its own file (`<name>.audit.db`): it is written
    /// continuously, and every commit to the main file would invalidate the node readers'
    /// page cache and mapping — the audit log would then cost more than the lookups it records.
    audit: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("readers", &self.readers.len())
            .finish()
    }
}

const NODE_COLS: &str =
    "n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, n.notes";

fn conversion_error(
    idx: usize,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

fn mac_at(r: &Row<'_>, idx: usize) -> rusqlite::Result<Mac> {
    let s: String = r.get(idx)?;
    Mac::parse(&s).map_err(|e| conversion_error(idx, e))
}

/// Reads the 8 node columns of [`NODE_COLS`] starting at column 0.
fn node_from_row(r: &Row<'_>) -> rusqlite::Result<Node> {
    let status: String = r.get(3)?;
    Ok(Node {
        mac: mac_at(r, 0)?,
        pid: r.get(1)?,
        role: r.get(2)?,
        status: status
            .parse::<NodeStatus>()
            .map_err(|e| conversion_error(3, e))?,
        regdate: r.get(4)?,
        unregdate: r.get(5)?,
        last_seen: r.get(6)?,
        notes: r.get(7)?,
    })
}

/// Records in the caller's transaction that what `node_view` shows for `mac` changed (the
/// per-server node caches poll `node_change`). Stamped with the database's clock.
fn log_change(conn: &Connection, mac: Mac) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO node_change (mac, changed_at) VALUES (?1, unixepoch())")?
        .execute([mac_text(mac)])?;
    Ok(())
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no transaction open (rusqlite rolls back on
    // drop), so the connection is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates the database file private (0600) before SQLite opens it, and tightens one created
/// by an older version with the umask: it holds MACs, owners and IP addresses. SQLite gives
/// its `-wal`/`-shm` files the mode of the database file.
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| {
        StoreError::other(format!(
            "cannot create SQLite database {}: {e}",
            path.display()
        ))
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    if file.metadata().map_err(io)?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_os_string();
        side.push(suffix);
        if let Ok(m) = std::fs::metadata(&side)
            && m.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

fn open_connection(path: &Path, writer: bool) -> Result<Connection, StoreError> {
    if writer {
        make_private(path)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Unavailable {
        message: format!("cannot open SQLite database {}: {e}", path.display()),
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if writer {
        // Persistent in the file: readers opened afterwards use WAL too.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::other(format!(
                "SQLite database {} refused WAL mode (got {mode})",
                path.display()
            )));
        }
    } else {
        conn.pragma_update(None, "query_only", "ON")?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Memory budget: 5 connections x 4 MiB of page cache, plus a 32 MiB read mapping of the
    // start of the file. The node table is created first, so its pages sit at the start and
    // lookups are served from the mapping; the append-only logs further in the file (which
    // grow without bound) are not mapped, so they do not inflate the resident set.
    conn.pragma_update(None, "cache_size", -4096)?;
    conn.pragma_update(None, "mmap_size", 32 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    u32::try_from(v).map_err(|_| StoreError::migration(format!("invalid schema version {v}")))
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(SQLITE_SCHEMA_VERSION_DDL)
        .map_err(|e| StoreError::migration(format!("creating schema_version: {e}")))?;
    let found = current_version(conn)?;
    if found > LATEST_VERSION {
        return Err(newer_schema_error(found));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = current_version(&tx)?;
        if now > LATEST_VERSION {
            return Err(newer_schema_error(now));
        }
        if now >= m.version {
            continue; // applied concurrently by another process
        }
        for sql in m.sqlite {
            tx.execute_batch(sql).map_err(|e| {
                StoreError::migration(format!(
                    "SQLite migration {} ({}) failed: {e}",
                    m.version, m.description
                ))
            })?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, description, applied_at)
             VALUES (?1, ?2, unixepoch())",
            params![m.version, m.description],
        )?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "applied SQLite migration"
        );
    }
    Ok(())
}

impl SqliteStore {
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            ironfence_core::fsutil::ensure_dir_mode_if_new(parent, 0o750).map_err(|e| {
                StoreError::other(format!(
                    "cannot create directory {} for the SQLite database: {e}",
                    parent.display()
                ))
            })?;
        }
        let mut writer = open_connection(path, true)?;
        migrate(&mut writer)?;
        let audit = open_connection(&audit_path(path), true)?;
        // The audit log trades durability for cost: a power cut may lose the last flushed
        // batch (never corrupt the file: WAL), and checkpoints run rarely, in big steps.
        audit.pragma_update(None, "synchronous", "OFF")?;
        audit.pragma_update(None, "wal_autocheckpoint", 16384)?;
        audit.pragma_update(None, "mmap_size", 0)?;
        audit.execute_batch(AUDIT_SCHEMA).map_err(|e| {
            StoreError::migration(format!(
                "SQLite audit log {}: {e}",
                audit_path(path).display()
            ))
        })?;
        let readers = (0..READERS)
            .map(|_| open_connection(path, false).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            audit: Mutex::new(audit),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        lock(&self.readers[start % n])
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    pub(crate) fn schema_version(&self) -> Result<u32, StoreError> {
        current_version(&self.reader())
    }

    pub(crate) fn node_view(&self, mac: Mac) -> Result<Option<NodeView>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, n.notes,
                    (SELECT COUNT(*) FROM security_event s WHERE s.mac = n.mac AND s.status = 'open')
             FROM node n WHERE n.mac = ?1",
        )?;
        let v = st
            .query_row([mac_text(mac)], |r| {
                let open: i64 = r.get(8)?;
                Ok(NodeView {
                    node: node_from_row(r)?,
                    open_security_events: u32::try_from(open).unwrap_or(u32::MAX),
                })
            })
            .optional()?;
        Ok(v)
    }

    fn get_node_on(conn: &Connection, mac: Mac) -> Result<Option<Node>, StoreError> {
        let mut st =
            conn.prepare_cached(&format!("SELECT {NODE_COLS} FROM node n WHERE n.mac = ?1"))?;
        Ok(st.query_row([mac_text(mac)], node_from_row).optional()?)
    }

    pub(crate) fn get_node(&self, mac: Mac) -> Result<Option<Node>, StoreError> {
        Self::get_node_on(&self.reader(), mac)
    }

    fn stored_node(conn: &Connection, mac: Mac) -> Result<Node, StoreError> {
        Self::get_node_on(conn, mac)?
            .ok_or_else(|| StoreError::other(format!("node {mac} vanished after being written")))
    }

    pub(crate) fn create_node_if_absent(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> Result<Node, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO node (mac, pid, status, last_seen, detect_date)
                 VALUES (?1, 'default', 'unreg', ?2, ?2)
                 ON CONFLICT (mac) DO NOTHING",
            )?
            .execute(params![mac_text(mac), now])?;
        if inserted > 0 {
            log_change(&tx, mac)?;
        }
        let node = Self::stored_node(&tx, mac)?;
        tx.commit()?;
        Ok(node)
    }

    pub(crate) fn touch_last_seen(&self, mac: Mac, now: UnixTime) -> Result<(), StoreError> {
        let conn = self.writer();
        conn.prepare_cached("UPDATE node SET last_seen = ?2 WHERE mac = ?1")?
            .execute(params![mac_text(mac), now])?;
        Ok(())
    }

    pub(crate) fn list_nodes(&self, f: &NodeFilter) -> Result<Vec<Node>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {NODE_COLS} FROM node n
             WHERE (?1 IS NULL OR n.status = ?1) AND (?2 IS NULL OR n.category = ?2)
             ORDER BY n.mac LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = st.query_map(
            params![
                f.status.map(|s| s.as_str()),
                f.role.as_deref(),
                i64::from(f.limit),
                i64_of(f.offset)
            ],
            node_from_row,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub(crate) fn count_nodes(&self) -> Result<u64, StoreError> {
        let conn = self.reader();
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM node")?
            .query_row([], |r| r.get(0))?;
        Ok(u64_of(n))
    }

    pub(crate) fn register_node(
        &self,
        mac: Mac,
        pid: &str,
        role: &str,
        unregdate: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Node, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO person (pid, created_at) VALUES (?1, ?2) ON CONFLICT (pid) DO NOTHING",
        )?
        .execute(params![pid, now])?;
        tx.prepare_cached(
            "INSERT INTO node (mac, pid, category, status, regdate, unregdate, detect_date)
             VALUES (?1, ?2, ?3, 'reg', ?5, ?4, ?5)
             ON CONFLICT (mac) DO UPDATE SET
                pid = excluded.pid, category = excluded.category, status = 'reg',
                regdate = excluded.regdate, unregdate = excluded.unregdate",
        )?
        .execute(params![mac_text(mac), pid, role, unregdate, now])?;
        log_change(&tx, mac)?;
        let node = Self::stored_node(&tx, mac)?;
        tx.commit()?;
        Ok(node)
    }

    pub(crate) fn unregister_node(&self, mac: Mac, now: UnixTime) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx
            .prepare_cached(
                "UPDATE node SET status = 'unreg', unregdate = ?2
                 WHERE mac = ?1 AND status <> 'unreg'",
            )?
            .execute(params![mac_text(mac), now])?;
        if n > 0 {
            log_change(&tx, mac)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    pub(crate) fn delete_node(&self, mac: Mac) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx
            .prepare_cached("DELETE FROM node WHERE mac = ?1")?
            .execute([mac_text(mac)])?;
        if n > 0 {
            log_change(&tx, mac)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    pub(crate) fn bulk_import_nodes(&self, nodes: &[Node]) -> Result<u64, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let pids: HashSet<&str> = nodes.iter().map(|n| n.pid.as_str()).collect();
            let mut person = tx.prepare_cached(
                "INSERT INTO person (pid, created_at) VALUES (?1, unixepoch())
                 ON CONFLICT (pid) DO NOTHING",
            )?;
            for pid in pids {
                person.execute([pid])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO node (mac, pid, category, status, regdate, unregdate, last_seen,
                                   detect_date, notes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, COALESCE(?7, ?5), ?8)
                 ON CONFLICT (mac) DO UPDATE SET
                    pid = excluded.pid, category = excluded.category, status = excluded.status,
                    regdate = excluded.regdate, unregdate = excluded.unregdate,
                    last_seen = excluded.last_seen, notes = excluded.notes",
            )?;
            for n in nodes {
                ins.execute(params![
                    mac_text(n.mac),
                    n.pid,
                    n.role,
                    n.status.as_str(),
                    n.regdate,
                    n.unregdate,
                    n.last_seen,
                    n.notes
                ])?;
                log_change(&tx, n.mac)?;
            }
        }
        tx.commit()?;
        Ok(nodes.len() as u64)
    }

    pub(crate) fn upsert_person(&self, p: &Person) -> Result<(), StoreError> {
        let conn = self.writer();
        conn.prepare_cached(
            "INSERT INTO person (pid, firstname, lastname, email, notes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, unixepoch())
             ON CONFLICT (pid) DO UPDATE SET
                firstname = excluded.firstname, lastname = excluded.lastname,
                email = excluded.email, notes = excluded.notes",
        )?
        .execute(params![p.pid, p.firstname, p.lastname, p.email, p.notes])?;
        Ok(())
    }

    pub(crate) fn get_person(&self, pid: &str) -> Result<Option<Person>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT pid, firstname, lastname, email, notes FROM person WHERE pid = ?1",
        )?;
        Ok(st
            .query_row([pid], |r| {
                Ok(Person {
                    pid: r.get(0)?,
                    firstname: r.get(1)?,
                    lastname: r.get(2)?,
                    email: r.get(3)?,
                    notes: r.get(4)?,
                })
            })
            .optional()?)
    }

    pub(crate) fn open_security_event(
        &self,
        mac: Mac,
        event_id: u32,
        now: UnixTime,
        notes: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let m = mac_text(mac);
        tx.prepare_cached(
            "INSERT INTO node (mac, pid, status, detect_date) VALUES (?1, 'default', 'unreg', ?2)
             ON CONFLICT (mac) DO NOTHING",
        )?
        .execute(params![m, now])?;
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM security_event
                 WHERE mac = ?1 AND status = 'open' AND security_event_id = ?2
                 ORDER BY id LIMIT 1",
            )?
            .query_row(params![m, event_id], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO security_event (mac, security_event_id, status, start_date, notes)
                     VALUES (?1, ?2, 'open', ?3, ?4)",
                )?
                .execute(params![m, event_id, now, notes])?;
                let id = tx.last_insert_rowid();
                log_change(&tx, mac)?;
                id
            }
        };
        tx.commit()?;
        Ok(u64_of(id))
    }

    pub(crate) fn close_security_events(&self, mac: Mac, now: UnixTime) -> Result<u64, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx
            .prepare_cached(
                "UPDATE security_event SET status = 'closed', release_date = ?2
                 WHERE mac = ?1 AND status = 'open'",
            )?
            .execute(params![mac_text(mac), now])?;
        if n > 0 {
            log_change(&tx, mac)?;
        }
        tx.commit()?;
        Ok(n as u64)
    }

    /// Node changes with an id above `floor`, in id order.
    pub(crate) fn changes_since(&self, floor: u64) -> Result<Vec<(u64, Mac)>, StoreError> {
        let conn = self.reader();
        let mut st =
            conn.prepare_cached("SELECT id, mac FROM node_change WHERE id > ?1 ORDER BY id")?;
        let rows = st.query_map([i64_of(floor)], |r| Ok((u64_of(r.get(0)?), mac_at(r, 1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes node changes recorded before `before` (UNIX seconds); returns how many.
    pub(crate) fn prune_node_changes(&self, before: UnixTime) -> Result<u64, StoreError> {
        let conn = self.writer();
        let n = conn
            .prepare_cached("DELETE FROM node_change WHERE changed_at < ?1")?
            .execute(params![before])?;
        Ok(n as u64)
    }

    /// The open location log entries of `scope` (see [`plan::needs`]).
    fn open_entries(conn: &Connection, scope: &Scope) -> Result<Vec<OpenEntry>, StoreError> {
        const COLS: &str = "id, mac, switch_ip, port, vlan, ssid, session_id, username";
        let map = |r: &Row<'_>| {
            Ok(OpenEntry {
                id: u64_of(r.get(0)?),
                mac: mac_at(r, 1)?,
                switch_ip: r.get(2)?,
                port: r.get(3)?,
                vlan: r.get(4)?,
                ssid: r.get(5)?,
                session_id: r.get(6)?,
                username: r.get(7)?,
            })
        };
        let rows = match scope {
            Scope::Nothing => return Ok(Vec::new()),
            Scope::Mac(m) => conn
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM locationlog WHERE mac = ?1 AND end_time IS NULL"
                ))?
                .query_map([mac_text(*m)], map)?
                .collect::<Result<Vec<_>, _>>()?,
            Scope::NasSession {
                switch_ip,
                session_id,
            } => conn
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM locationlog
                     WHERE switch_ip = ?1 AND end_time IS NULL AND session_id = ?2"
                ))?
                .query_map(params![switch_ip, session_id], map)?
                .collect::<Result<Vec<_>, _>>()?,
            Scope::Nas { switch_ip } => conn
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM locationlog WHERE switch_ip = ?1 AND end_time IS NULL"
                ))?
                .query_map([switch_ip], map)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(rows)
    }

    pub(crate) fn record_accounting(&self, ev: &AccountingEvent) -> Result<(), StoreError> {
        self.record_accounting_keyed(ev, None).map(|_| ())
    }

    /// With `key = Some((idempotency key, now))`, the key is recorded in the same transaction
    /// and an event whose key is already recorded changes nothing (returns `false`).
    pub(crate) fn record_accounting_keyed(
        &self,
        ev: &AccountingEvent,
        key: Option<(&[u8], UnixTime)>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some((key, applied_at)) = key {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO spool_applied (idem_key, applied_at) VALUES (?1, ?2)
                     ON CONFLICT (idem_key) DO NOTHING",
                )?
                .execute(params![key, applied_at])?;
            if inserted == 0 {
                return Ok(false); // already applied; the transaction rolls back on drop
            }
        }
        let now = ev.now;
        let needs = plan::needs(ev);
        if let Some(m) = needs.create_node {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO node (mac, pid, status, detect_date)
                     VALUES (?1, 'default', 'unreg', ?2)
                     ON CONFLICT (mac) DO NOTHING",
                )?
                .execute(params![mac_text(m), now])?;
            if inserted > 0 {
                log_change(&tx, m)?;
            }
        }
        let open = Self::open_entries(&tx, &needs.scope)?;
        for change in plan::plan(ev, &open) {
            match change {
                Change::Close { id } => {
                    tx.prepare_cached(
                        "UPDATE locationlog SET end_time = ?2 WHERE id = ?1 AND end_time IS NULL",
                    )?
                    .execute(params![i64_of(id), now])?;
                }
                Change::Fill {
                    id,
                    session_id,
                    username,
                } => {
                    tx.prepare_cached(
                        "UPDATE locationlog SET session_id = ?2, username = ?3 WHERE id = ?1",
                    )?
                    .execute(params![i64_of(id), session_id, username])?;
                }
                Change::Open { mac } => {
                    tx.prepare_cached(
                        "INSERT INTO locationlog (mac, switch_id, switch_ip, port, vlan, role,
                            ssid, session_id, username, connection_type, start_time)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?
                    .execute(params![
                        mac_text(mac),
                        ev.switch_id,
                        ev.switch_ip,
                        ev.port,
                        ev.vlan,
                        ev.role,
                        ev.ssid,
                        ev.session_id,
                        ev.username,
                        ev.connection_type,
                        now
                    ])?;
                }
                Change::IpCloseOthers { mac, keep } => {
                    tx.prepare_cached(
                        "UPDATE ip4log SET end_time = ?3
                         WHERE mac = ?1 AND ip <> ?2 AND end_time IS NULL",
                    )?
                    .execute(params![mac_text(mac), keep.to_string(), now])?;
                }
                Change::IpClaim { ip, mac } => {
                    tx.prepare_cached(
                        "INSERT INTO ip4log (ip, mac, start_time, end_time) VALUES (?1, ?2, ?3, NULL)
                         ON CONFLICT (ip) DO UPDATE SET
                            start_time = CASE WHEN ip4log.mac = excluded.mac
                                                   AND ip4log.end_time IS NULL
                                              THEN ip4log.start_time ELSE excluded.start_time END,
                            mac = excluded.mac,
                            end_time = NULL",
                    )?
                    .execute(params![ip.to_string(), mac_text(mac), now])?;
                }
            }
        }
        tx.commit()?;
        Ok(true)
    }

    /// Forgets idempotency keys recorded before `before`; returns how many.
    pub(crate) fn prune_spool_keys(&self, before: UnixTime) -> Result<u64, StoreError> {
        let conn = self.writer();
        let n = conn
            .prepare_cached("DELETE FROM spool_applied WHERE applied_at < ?1")?
            .execute(params![before])?;
        Ok(n as u64)
    }

    pub(crate) fn locationlog(
        &self,
        mac: Mac,
        limit: u32,
    ) -> Result<Vec<LocationLogEntry>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT id, mac, switch_id, switch_ip, port, vlan, role, ssid, session_id, username,
                    connection_type, start_time, end_time
             FROM locationlog WHERE mac = ?1 ORDER BY start_time DESC, id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![mac_text(mac), i64::from(limit)], |r| {
            Ok(LocationLogEntry {
                id: u64_of(r.get(0)?),
                mac: mac_at(r, 1)?,
                switch_id: r.get(2)?,
                switch_ip: r.get(3)?,
                port: r.get(4)?,
                vlan: r.get(5)?,
                role: r.get(6)?,
                ssid: r.get(7)?,
                session_id: r.get(8)?,
                username: r.get(9)?,
                connection_type: r.get(10)?,
                start_time: r.get(11)?,
                end_time: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub(crate) fn open_locationlog_count(&self) -> Result<u64, StoreError> {
        let conn = self.reader();
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM locationlog WHERE end_time IS NULL")?
            .query_row([], |r| r.get(0))?;
        Ok(u64_of(n))
    }

    pub(crate) fn ip4log_for(&self, mac: Mac) -> Result<Vec<Ip4LogEntry>, StoreError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(
            "SELECT ip, mac, start_time, end_time FROM ip4log WHERE mac = ?1
             ORDER BY start_time DESC, ip",
        )?;
        let rows = st.query_map([mac_text(mac)], |r| {
            let ip: String = r.get(0)?;
            Ok(Ip4LogEntry {
                ip: ip.parse().map_err(|e| conversion_error(0, e))?,
                mac: mac_at(r, 1)?,
                start_time: r.get(2)?,
                end_time: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub(crate) fn insert_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO radius_audit_log (created_at, mac, user_name, nas_ip, nas_port,
                    request_type, outcome, reason, vlan, role, switch_id, calling_station_id,
                    called_station_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for a in records {
                st.execute(params![
                    a.created_at,
                    a.mac.map(mac_text),
                    a.user_name,
                    a.nas_ip,
                    a.nas_port,
                    a.request_type,
                    a.outcome,
                    a.reason,
                    a.vlan,
                    a.role,
                    a.switch_id,
                    a.calling_station_id,
                    a.called_station_id
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn count_audit(&self, mac: Option<Mac>) -> Result<u64, StoreError> {
        let conn = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        let n: i64 = match mac {
            Some(m) => conn
                .prepare_cached("SELECT COUNT(*) FROM radius_audit_log WHERE mac = ?1")?
                .query_row([mac_text(m)], |r| r.get(0))?,
            None => conn
                .prepare_cached("SELECT COUNT(*) FROM radius_audit_log")?
                .query_row([], |r| r.get(0))?,
        };
        Ok(u64_of(n))
    }

    pub(crate) fn close(&self) {
        // Fold the WAL back into the main file so a copied database file is complete.
        let conn = self.writer();
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, path = %self.path.display(), "SQLite checkpoint on close failed");
        }
        let audit = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = audit.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, path = %audit_path(&self.path).display(), "SQLite checkpoint on close failed");
        }
    }
}

// Captive portal: local users and IP → MAC (migration v7).
mod portal;

// Administration: the admin audit log and revoked sessions (migration v8).
mod admin;

// Administration: node search and update, people (migration v9).
mod admin_nodes;

//! Node, location log, security event and audit storage on SQLite (embedded) or MariaDB, with
//! versioned migrations.
//!
//! ```text
//!                      server (RADIUS, portal, API)
//!                                 │  Store (Clone = Arc)
//!                 ┌───────────────┴────────────────┐
//!          StoreConfig::Sqlite              StoreConfig::MySql
//!   ┌──────────────────────────────┐   ┌──────────────────────────────┐
//!   │ writer: Mutex<Connection>    │   │ sqlx MySqlPool (≤16 conns)   │
//!   │ readers: [Mutex<Connection>] │   │ retry on 1213 (deadlock /    │
//!   │ WAL · synchronous=NORMAL     │   │   Galera certification)      │
//!   │ statements inline, cached    │   │ InnoDB · utf8mb4             │
//!   └──────────────┬───────────────┘   └──────────────┬───────────────┘
//!                  └──────────── migrations ──────────┘
//!                      schema_version + MIGRATIONS (v1, v2, …)
//!   tables: node · person · security_event · locationlog · ip4log · radius_audit_log
//!           · dhcp_lease (see [`dhcp`]) · admin_audit, admin_session_revoked (see [`admin`])
//! ```
//!
//! [`Store::open`] connects and applies pending [`migrations`]; it refuses a database written by
//! a newer release. The hot path of every RADIUS request is [`Store::node_view`]: the node and
//! its number of open security events in one indexed query (a few µs on SQLite, one round trip
//! on MariaDB).
//!
//! Accounting feeds the location log and IP log with the rules documented in [`accounting`],
//! implemented once, by the pure planner [`accounting::plan`], for both backends.
//!
//! # Traits and the `Store` handle
//!
//! What the server depends on is expressed as traits ([`traits`]): [`NodeLookup`] (the request
//! path), [`AccountingSink`], [`NodeAdmin`] and [`NodeChangeLog`]. Each backend implements
//! them. [`Store`] is a cheap handle (`Arc`) over an **enum** of the two backends and
//! implements the same traits by dispatching to the one in use; its inherent methods (kept,
//! with their signatures, for existing callers) are those trait methods. An enum rather than
//! `Arc<dyn …>`: the traits return `impl Future` (statically dispatched, no boxed future per
//! call on the request path), which trait objects cannot; the set of backends is closed
//! anyway. The one `match` on the backend is the `via!` macro in this file. Code that only
//! looks nodes up can take `impl NodeLookup` and be given a `Store` or the per-server cache
//! [`node_cache::CachedNodes`], which keeps RADIUS lookups off the database (see
//! [`node_cache`] for how it stays correct across a cluster).
//!
//! # Errors and retries
//!
//! Every failure is a [`StoreError`] classified by what the caller can do:
//! [`StoreError::is_retryable`] is true for read-only nodes, unreachable databases, write
//! conflicts and busy databases. The MariaDB backend itself retries transactions rolled back by
//! a write conflict (InnoDB deadlock or Galera certification failure, both error 1213) up to 4
//! times: each write method is a single idempotent transaction, so re-running it cannot apply a
//! change twice. Nothing else is retried internally — a read-only or unreachable node is the
//! caller's decision (fail over, or answer without writing).
//!
//! Times are UNIX seconds ([`UnixTime`]) passed in by the caller and stored as BIGINT.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod admin;
pub mod admin_nodes;
pub mod dhcp;
mod error;
pub mod migrations;
mod mysql;
pub mod node_cache;
pub mod portal;
mod sqlite;
pub mod traits;
mod types;

pub use accounting::{AccountingEvent, AccountingKind, Ip4LogEntry, LocationLogEntry};
pub use dhcp::{Claim, ClaimOutcome, DhcpLease, DhcpLeaseState};
pub use error::StoreError;
pub use traits::{AccountingSink, NodeAdmin, NodeChangeLog, NodeLookup};
pub use types::{AuditRecord, NodeFilter, Person};

use ironfence_core::{Mac, Node, NodeView, UnixTime};
use mysql::MySqlStore;
use sqlite::SqliteStore;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded database file (created, with its parent directory, if missing).
    Sqlite { path: PathBuf },
    /// MariaDB server (or Galera cluster node / load balancer). The database must exist and
    /// the user needs DDL rights on it for migrations.
    MySql {
        host: String,
        port: u16,
        user: String,
        password: String,
        database: String,
    },
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            StoreConfig::MySql {
                host,
                port,
                user,
                database,
                ..
            } => f
                .debug_struct("MySql")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .field("password", &"<redacted>")
                .field("database", database)
                .finish(),
        }
    }
}

enum Backend {
    Sqlite(Box<SqliteStore>),
    MySql(MySqlStore),
}

/// Handle to the database. Cheap to clone (an `Arc`); all clones share the connections.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.backend {
            Backend::Sqlite(s) => f.debug_tuple("Store").field(s).finish(),
            Backend::MySql(s) => f.debug_tuple("Store").field(s).finish(),
        }
    }
}

/// Canonical text form of a MAC as stored in every table (`aa:bb:cc:dd:ee:ff`).
pub(crate) fn mac_text(mac: Mac) -> String {
    mac.to_string()
}

/// Calls a trait method on whichever backend is in use (see [`traits`]).
macro_rules! via {
    ($tr:ident :: $method:ident ( $self:ident $(, $arg:expr)* )) => {
        match &*$self.backend {
            Backend::Sqlite(s) => $tr::$method(&**s $(, $arg)*).await,
            Backend::MySql(m) => $tr::$method(m $(, $arg)*).await,
        }
    };
}

/// Calls the same inherent method (not part of a trait) on whichever backend is in use;
/// SQLite runs inline, MariaDB awaits.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.backend {
            Backend::Sqlite(s) => s.$method($($arg),*),
            Backend::MySql(m) => m.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Connects (SQLite: opens or creates the file) and applies pending migrations.
    pub async fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match cfg {
            StoreConfig::Sqlite { path } => Backend::Sqlite(Box::new(SqliteStore::open(path)?)),
            StoreConfig::MySql {
                host,
                port,
                user,
                password,
                database,
            } => Backend::MySql(MySqlStore::open(host, *port, user, password, database).await?),
        };
        Ok(Store {
            backend: Arc::new(backend),
        })
    }

    /// Like [`Store::open`], but a MariaDB store does not connect yet: call [`Store::migrate`]
    /// until it succeeds. For a cluster member whose database may be down when it starts;
    /// queries fail with `Unavailable` meanwhile. SQLite opens (and migrates) at once.
    pub fn open_lazy(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match cfg {
            StoreConfig::Sqlite { path } => Backend::Sqlite(Box::new(SqliteStore::open(path)?)),
            StoreConfig::MySql {
                host,
                port,
                user,
                password,
                database,
            } => Backend::MySql(MySqlStore::open_lazy(host, *port, user, password, database)),
        };
        Ok(Store {
            backend: Arc::new(backend),
        })
    }

    /// Applies pending migrations (idempotent; SQLite did it at open).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::MySql(m) => m.migrate().await,
        }
    }

    /// `"sqlite"` or `"mysql"`.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::MySql(_) => "mysql",
        }
    }

    /// Highest migration version recorded in the database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        dispatch!(self.schema_version())
    }

    /// Hot path: the node and its number of open security events, in one query.
    pub async fn node_view(&self, mac: Mac) -> Result<Option<NodeView>, StoreError> {
        via!(NodeLookup::node_view(self, mac))
    }

    /// First sighting: inserts the node as unregistered (owner `default`, `last_seen` and
    /// `detect_date` = `now`) unless it exists, and returns the stored row. Idempotent and safe
    /// under concurrent calls for the same MAC (the primary key arbitrates).
    pub async fn create_node_if_absent(&self, mac: Mac, now: UnixTime) -> Result<Node, StoreError> {
        via!(NodeLookup::create_node_if_absent(self, mac, now))
    }

    /// Sets `last_seen`; does nothing for an unknown MAC.
    pub async fn touch_last_seen(&self, mac: Mac, now: UnixTime) -> Result<(), StoreError> {
        via!(NodeAdmin::touch_last_seen(self, mac, now))
    }

    pub async fn get_node(&self, mac: Mac) -> Result<Option<Node>, StoreError> {
        via!(NodeAdmin::get_node(self, mac))
    }

    /// Nodes matching `filter`, ordered by MAC.
    pub async fn list_nodes(&self, filter: &NodeFilter) -> Result<Vec<Node>, StoreError> {
        via!(NodeAdmin::list_nodes(self, filter))
    }

    pub async fn count_nodes(&self) -> Result<u64, StoreError> {
        via!(NodeAdmin::count_nodes(self))
    }

    /// Registers the node to `pid` with `role` (creating the node and the person if absent):
    /// status `reg`, `regdate = now`, `unregdate` = expiry (`None` = never). One transaction.
    pub async fn register_node(
        &self,
        mac: Mac,
        pid: &str,
        role: &str,
        unregdate: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Node, StoreError> {
        via!(NodeAdmin::register_node(
            self, mac, pid, role, unregdate, now
        ))
    }

    /// Sets a registered or pending node back to `unreg` (`unregdate = now`; owner and role are
    /// kept for history). Returns `false` if the node is unknown or already unregistered.
    pub async fn unregister_node(&self, mac: Mac, now: UnixTime) -> Result<bool, StoreError> {
        via!(NodeAdmin::unregister_node(self, mac, now))
    }

    /// Deletes the node and its security events (location/IP/audit history is kept). Returns
    /// whether it existed.
    pub async fn delete_node(&self, mac: Mac) -> Result<bool, StoreError> {
        via!(NodeAdmin::delete_node(self, mac))
    }

    /// Upserts many nodes (creating their owners if absent); returns the number written.
    /// SQLite: one transaction. MariaDB: idempotent batches of 1000 rows, each a transaction.
    pub async fn bulk_import_nodes(&self, nodes: &[Node]) -> Result<u64, StoreError> {
        via!(NodeAdmin::bulk_import_nodes(self, nodes))
    }

    /// Inserts or updates a person (all fields replaced except `created_at`).
    pub async fn upsert_person(&self, person: &Person) -> Result<(), StoreError> {
        via!(NodeAdmin::upsert_person(self, person))
    }

    pub async fn get_person(&self, pid: &str) -> Result<Option<Person>, StoreError> {
        via!(NodeAdmin::get_person(self, pid))
    }

    /// Opens security event `event_id` on the node (creating the node, unregistered, if absent)
    /// and returns its row id. If that event is already open for the node, returns the existing
    /// row's id instead of opening a second one.
    pub async fn open_security_event(
        &self,
        mac: Mac,
        event_id: u32,
        now: UnixTime,
        notes: Option<&str>,
    ) -> Result<u64, StoreError> {
        via!(NodeAdmin::open_security_event(
            self, mac, event_id, now, notes
        ))
    }

    /// Closes all open security events of the node (`release_date = now`); returns how many.
    pub async fn close_security_events(&self, mac: Mac, now: UnixTime) -> Result<u64, StoreError> {
        via!(NodeAdmin::close_security_events(self, mac, now))
    }

    /// Applies one accounting request to `locationlog` / `ip4log` in one transaction; see
    /// [`accounting`] for the rules.
    pub async fn record_accounting(&self, ev: &AccountingEvent) -> Result<(), StoreError> {
        via!(AccountingSink::record_accounting(self, ev))
    }

    /// Like [`Store::record_accounting`], exactly once per `key` (a replay of a locally spooled
    /// record): the key is recorded with `applied_at` in the event's transaction, and an event
    /// whose key is already recorded changes nothing. Returns `false` in that case.
    pub async fn record_accounting_idempotent(
        &self,
        ev: &AccountingEvent,
        key: &[u8; 32],
        applied_at: UnixTime,
    ) -> Result<bool, StoreError> {
        via!(AccountingSink::record_accounting_idempotent(
            self, ev, key, applied_at
        ))
    }

    /// For the trait impls (same shape as the backends' inherent method).
    async fn record_accounting_keyed(
        &self,
        ev: &AccountingEvent,
        key: Option<(&[u8], UnixTime)>,
    ) -> Result<bool, StoreError> {
        match key {
            None => self.record_accounting(ev).await.map(|()| true),
            Some((k, applied_at)) => {
                let k: &[u8; 32] = k
                    .try_into()
                    .map_err(|_| StoreError::other("idempotency keys are 32 bytes"))?;
                self.record_accounting_idempotent(ev, k, applied_at).await
            }
        }
    }

    /// Forgets the idempotency keys recorded before `before` (see
    /// [`Store::record_accounting_idempotent`]); returns how many.
    pub async fn prune_spool_keys(&self, before: UnixTime) -> Result<u64, StoreError> {
        via!(AccountingSink::prune_spool_keys(self, before))
    }

    /// Node changes (see [`node_cache`]) with an id above `floor`, in id order: every write
    /// that changes what [`Store::node_view`] returns records the MAC in the same transaction.
    /// On MariaDB/Galera the query is a causal read (`wsrep_sync_wait = 1`): it sees every
    /// transaction committed anywhere in the cluster before it started.
    pub async fn changes_since(&self, floor: u64) -> Result<Vec<(u64, Mac)>, StoreError> {
        via!(NodeChangeLog::changes_since(self, floor))
    }

    /// Forgets the node changes recorded before `before` (database clock, UNIX seconds);
    /// returns how many. Call it periodically (e.g. keep one hour).
    pub async fn prune_node_changes(&self, before: UnixTime) -> Result<u64, StoreError> {
        via!(NodeChangeLog::prune_node_changes(self, before))
    }

    /// The MAC's location history, newest first.
    pub async fn locationlog(
        &self,
        mac: Mac,
        limit: u32,
    ) -> Result<Vec<LocationLogEntry>, StoreError> {
        dispatch!(self.locationlog(mac, limit))
    }

    /// Number of open location log entries (devices currently connected).
    pub async fn open_locationlog_count(&self) -> Result<u64, StoreError> {
        dispatch!(self.open_locationlog_count())
    }

    /// IPv4 addresses held (end_time `None`) or last held by the MAC, newest first.
    pub async fn ip4log_for(&self, mac: Mac) -> Result<Vec<Ip4LogEntry>, StoreError> {
        dispatch!(self.ip4log_for(mac))
    }

    /// Appends audit records in one transaction (multi-row inserts on MariaDB).
    pub async fn insert_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        dispatch!(self.insert_audit_batch(records))
    }

    /// Number of audit records, all or for one MAC.
    pub async fn count_audit(&self, mac: Option<Mac>) -> Result<u64, StoreError> {
        dispatch!(self.count_audit(mac))
    }

    /// Galera status rows (`SHOW GLOBAL STATUS LIKE 'wsrep%'`) on MariaDB; `None` on SQLite,
    /// which has no replication. An empty list means MariaDB without Galera.
    pub async fn wsrep_status(&self) -> Result<Option<Vec<(String, String)>>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::MySql(m) => m.wsrep_status().await.map(Some),
        }
    }

    /// MariaDB's `@@global.read_only` (`None` on SQLite): what decides whether MariaDB without
    /// Galera accepts writes.
    pub async fn read_only(&self) -> Result<Option<bool>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::MySql(m) => m.read_only().await.map(Some),
        }
    }

    /// Flushes and closes (SQLite: WAL checkpoint; MariaDB: closes the pool, waiting for
    /// connections in use). Other clones become unusable on MariaDB.
    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite(s) => s.close(),
            Backend::MySql(m) => m.close().await,
        }
    }
}

// `Store` implements the traits with its inherent methods (which dispatch to the backend).
use traits::{awaited, backend_impls};
backend_impls!(Store, awaited);

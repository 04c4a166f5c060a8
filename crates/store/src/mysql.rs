//! MariaDB backend (sqlx `MySqlPool`), ready for Galera clusters.
//!
//! * InnoDB tables, `utf8mb4` with binary collation (same comparison rules as SQLite).
//! * Every table has a primary key (Galera requirement); times are BIGINT UNIX seconds.
//! * The pool does not ping connections before handing them out (`test_before_acquire(false)`):
//!   that would add a round trip to every RADIUS request. A connection found dead fails its
//!   query with [`StoreError::Unavailable`] and is discarded by the pool.
//!
//! # Write retries
//!
//! InnoDB resolves deadlocks by rolling back one transaction (error 1213), and Galera reports a
//! transaction that lost certification against a concurrent write on another node the same way.
//! In both cases **the whole transaction was rolled back**, nothing of it is visible, and running
//! it again is the documented remedy. Every write method therefore runs its transaction through
//! [`retry_write`]: up to [`WRITE_ATTEMPTS`] attempts with a short randomised back-off, retrying
//! **only** [`StoreError::Deadlock`]. This is safe because each write method is one transaction
//! (never a sequence of independently committed ones, except [`MySqlStore::bulk_import_nodes`],
//! whose batches are each an idempotent upsert) and is idempotent by design: upserts,
//! `INSERT … ON DUPLICATE KEY UPDATE`, "open if not already open", "close if open". Read-only,
//! unavailable and lock-wait-timeout errors are returned to the caller, who knows whether to fail
//! over to another node or to answer the RADIUS request without the write.

mod dhcp;

use crate::accounting::plan::{self, Change, OpenEntry, Scope};
use crate::accounting::{AccountingEvent, Ip4LogEntry, LocationLogEntry};
use crate::migrations::{LATEST_VERSION, MIGRATIONS, MYSQL_SCHEMA_VERSION_DDL, newer_schema_error};
use crate::types::{AuditRecord, NodeFilter, Person};
use crate::{StoreError, mac_text};
use ironfence_core::{Mac, Node, NodeStatus, NodeView, UnixTime};
use sqlx::mysql::{
    MySql, MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions, MySqlRow,
};
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

/// Attempts (first try included) of a write transaction that hits a write conflict.
pub(crate) const WRITE_ATTEMPTS: u32 = 4;
/// Rows per multi-row INSERT (keeps statements well under `max_allowed_packet` and Galera's
/// write-set limits).
const BATCH_ROWS: usize = 1000;
const MIGRATION_LOCK: &str = "ironfence_schema_migration";
/// ER_UNKNOWN_SYSTEM_VARIABLE: `@@wsrep_on` on a server built without wsrep.
const UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

#[derive(Debug)]
pub(crate) struct MySqlStore {
    pool: MySqlPool,
}

/// Runs `attempt` until it succeeds or fails with something other than a write conflict, at
/// most [`WRITE_ATTEMPTS`] times. See the module docs for why this is safe.
pub(crate) async fn retry_write<T, F, Fut>(
    what: &'static str,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e @ StoreError::Deadlock { .. }) if n < WRITE_ATTEMPTS => {
                // 10, 20, 40 ms base, randomised ±50% so that colliding writers spread out.
                let base = Duration::from_millis(5 << n);
                let delay = base / 2 + base.mul_f64(random_fraction());
                tracing::debug!(operation = what, attempt = n, error = %e, ?delay, "write conflict, retrying");
                tokio::time::sleep(delay).await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// A random number in [0, 1) (std's randomly keyed hasher; no RNG dependency needed).
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (r >> 11) as f64 / (1u64 << 53) as f64
}

fn decode_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::other(format!("unreadable {what} in the database: {e}"))
}

fn mac_col(r: &MySqlRow, idx: usize) -> Result<Mac, StoreError> {
    let s: String = r.try_get(idx)?;
    Mac::parse(&s).map_err(|e| decode_err("MAC", e))
}

fn node_from_row(r: &MySqlRow) -> Result<Node, StoreError> {
    let status: String = r.try_get(3)?;
    Ok(Node {
        mac: mac_col(r, 0)?,
        pid: r.try_get(1)?,
        role: r.try_get(2)?,
        status: status
            .parse::<NodeStatus>()
            .map_err(|e| decode_err("node status", e))?,
        regdate: r.try_get(4)?,
        unregdate: r.try_get(5)?,
        last_seen: r.try_get(6)?,
        notes: r.try_get(7)?,
    })
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The open location log entries of `scope` (see [`plan::needs`]), with a plain consistent
/// read (no locks: they are closed by primary key afterwards).
async fn open_entries(
    conn: &mut MySqlConnection,
    scope: &Scope,
) -> Result<Vec<OpenEntry>, StoreError> {
    macro_rules! open_where {
        ($cond:literal) => {
            concat!(
                "SELECT id, mac, switch_ip, port, vlan, ssid, session_id, username
                 FROM locationlog WHERE end_time IS NULL AND ",
                $cond
            )
        };
    }
    let rows = match scope {
        Scope::Nothing => return Ok(Vec::new()),
        Scope::Mac(m) => {
            sqlx::query(open_where!("mac = ?"))
                .bind(mac_text(*m))
                .fetch_all(&mut *conn)
                .await?
        }
        Scope::NasSession {
            switch_ip,
            session_id,
        } => {
            sqlx::query(open_where!("switch_ip = ? AND session_id = ?"))
                .bind(switch_ip.as_str())
                .bind(session_id.as_str())
                .fetch_all(&mut *conn)
                .await?
        }
        Scope::Nas { switch_ip } => {
            sqlx::query(open_where!("switch_ip = ?"))
                .bind(switch_ip.as_str())
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(OpenEntry {
                id: r.try_get(0)?,
                mac: mac_col(r, 1)?,
                switch_ip: r.try_get(2)?,
                port: r.try_get(3)?,
                vlan: r.try_get(4)?,
                ssid: r.try_get(5)?,
                session_id: r.try_get(6)?,
                username: r.try_get(7)?,
            })
        })
        .collect()
}

const SELECT_NODE: &str =
    "SELECT n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, n.notes
     FROM node n WHERE n.mac = ?";

async fn stored_node(conn: &mut MySqlConnection, mac: Mac) -> Result<Node, StoreError> {
    let row = sqlx::query(SELECT_NODE)
        .bind(mac_text(mac))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::other(format!("node {mac} vanished after being written")))?;
    node_from_row(&row)
}

/// Records in the caller's transaction that what `node_view` shows for these MACs changed
/// (the per-server node caches poll `node_change`). Stamped with the database's clock.
async fn log_change(conn: &mut MySqlConnection, macs: &[Mac]) -> Result<(), StoreError> {
    for chunk in macs.chunks(BATCH_ROWS) {
        let mut qb = QueryBuilder::<MySql>::new("INSERT INTO node_change (mac, changed_at) ");
        qb.push_values(chunk, |mut b, m| {
            b.push_bind(mac_text(*m)).push("UNIX_TIMESTAMP()");
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn schema_version_on(conn: &mut MySqlConnection) -> Result<u32, StoreError> {
    let v: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(version), 0) AS SIGNED) FROM schema_version")
            .fetch_one(&mut *conn)
            .await?;
    u32::try_from(v).map_err(|_| StoreError::migration(format!("invalid schema version {v}")))
}

async fn migrate_locked(conn: &mut MySqlConnection) -> Result<(), StoreError> {
    // An up-to-date schema needs no DDL: a read-only node (no quorum, `read_only=1`) can
    // still open the store and say "read-only" about the write it is asked for, instead of
    // failing on a CREATE TABLE it did not need.
    if let Ok(found) = schema_version_on(conn).await
        && found == LATEST_VERSION
    {
        return Ok(());
    }
    sqlx::raw_sql(MYSQL_SCHEMA_VERSION_DDL)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            let e = StoreError::from(e);
            if e.is_retryable() {
                e
            } else {
                StoreError::migration(format!("creating schema_version: {e}"))
            }
        })?;
    let found = schema_version_on(conn).await?;
    if found > LATEST_VERSION {
        return Err(newer_schema_error(found));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        for sql in m.mysql {
            sqlx::raw_sql(*sql).execute(&mut *conn).await.map_err(|e| {
                let e = StoreError::from(e);
                if e.is_retryable() {
                    e
                } else {
                    StoreError::migration(format!(
                        "MariaDB migration {} ({}) failed: {e}",
                        m.version, m.description
                    ))
                }
            })?;
        }
        sqlx::query(
            "INSERT INTO schema_version (version, description, applied_at)
             VALUES (?, ?, UNIX_TIMESTAMP())
             ON DUPLICATE KEY UPDATE version = version",
        )
        .bind(m.version)
        .bind(m.description)
        .execute(&mut *conn)
        .await?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "applied MariaDB migration"
        );
    }
    Ok(())
}

async fn migrate(pool: &MySqlPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
        .bind(MIGRATION_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if got != Some(1) {
        return Err(StoreError::migration(
            "timed out after 60 s waiting for another server to finish migrating the schema",
        ));
    }
    let result = migrate_locked(&mut conn).await;
    let released = sqlx::query_scalar::<_, Option<i64>>("SELECT RELEASE_LOCK(?)")
        .bind(MIGRATION_LOCK)
        .fetch_one(&mut *conn)
        .await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "releasing the schema migration lock failed");
    }
    result
}

impl MySqlStore {
    pub(crate) async fn open(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<MySqlStore, StoreError> {
        let store = Self::open_lazy(host, port, user, password, database);
        // Connect now, so that a wrong address or password is reported at start, with where.
        drop(
            store
                .pool
                .acquire()
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Unavailable { message } => StoreError::Unavailable {
                        message: format!(
                            "cannot connect to MariaDB {user}@{host}:{port}/{database}: {message}"
                        ),
                    },
                    other => other,
                })?,
        );
        migrate(&store.pool).await?;
        Ok(store)
    }

    /// A pool that connects on first use, without running migrations: for a daemon that must
    /// start while its database is still down (a cluster member during an outage).
    pub(crate) fn open_lazy(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        database: &str,
    ) -> MySqlStore {
        let opts = MySqlConnectOptions::new()
            .host(host)
            .port(port)
            .username(user)
            .password(password)
            .database(database)
            .charset("utf8mb4");
        let pool = MySqlPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .connect_lazy_with(opts);
        MySqlStore { pool }
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool).await
    }

    pub(crate) async fn schema_version(&self) -> Result<u32, StoreError> {
        let mut conn = self.pool.acquire().await?;
        schema_version_on(&mut conn).await
    }

    pub(crate) async fn node_view(&self, mac: Mac) -> Result<Option<NodeView>, StoreError> {
        let row = sqlx::query(
            "SELECT n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, n.notes,
                    CAST((SELECT COUNT(*) FROM security_event s
                          WHERE s.mac = n.mac AND s.status = 'open') AS SIGNED)
             FROM node n WHERE n.mac = ?",
        )
        .bind(mac_text(mac))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let open: i64 = r.try_get(8)?;
                Ok(Some(NodeView {
                    node: node_from_row(&r)?,
                    open_security_events: u32::try_from(open).unwrap_or(u32::MAX),
                }))
            }
        }
    }

    pub(crate) async fn get_node(&self, mac: Mac) -> Result<Option<Node>, StoreError> {
        let row = sqlx::query(SELECT_NODE)
            .bind(mac_text(mac))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(node_from_row).transpose()
    }

    pub(crate) async fn create_node_if_absent(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> Result<Node, StoreError> {
        retry_write("create_node_if_absent", || async {
            // Same connection for the INSERT and the SELECT: read-your-writes even behind a
            // load balancer.
            // IGNORE (not ON DUPLICATE KEY UPDATE, which reports 1 either way with the
            // found-rows flag the client sets) tells whether this call inserted the node, and
            // only then is the change logged.
            let mut tx = self.pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT IGNORE INTO node (mac, pid, status, last_seen, detect_date)
                 VALUES (?, 'default', 'unreg', ?, ?)",
            )
            .bind(mac_text(mac))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted > 0 {
                log_change(&mut tx, &[mac]).await?;
            }
            let node = stored_node(&mut tx, mac).await?;
            tx.commit().await?;
            Ok(node)
        })
        .await
    }

    pub(crate) async fn touch_last_seen(&self, mac: Mac, now: UnixTime) -> Result<(), StoreError> {
        retry_write("touch_last_seen", || async {
            sqlx::query("UPDATE node SET last_seen = ? WHERE mac = ?")
                .bind(now)
                .bind(mac_text(mac))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn list_nodes(&self, f: &NodeFilter) -> Result<Vec<Node>, StoreError> {
        let status = f.status.map(|s| s.as_str());
        let rows = sqlx::query(
            "SELECT n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, n.notes
             FROM node n
             WHERE (? IS NULL OR n.status = ?) AND (? IS NULL OR n.category = ?)
             ORDER BY n.mac LIMIT ? OFFSET ?",
        )
        .bind(status)
        .bind(status)
        .bind(f.role.as_deref())
        .bind(f.role.as_deref())
        .bind(i64::from(f.limit))
        .bind(i64_of(f.offset))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(node_from_row).collect()
    }

    pub(crate) async fn count_nodes(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM node")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64_of(n))
    }

    pub(crate) async fn register_node(
        &self,
        mac: Mac,
        pid: &str,
        role: &str,
        unregdate: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Node, StoreError> {
        retry_write("register_node", || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO person (pid, created_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE pid = pid",
            )
            .bind(pid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO node (mac, pid, category, status, regdate, unregdate, detect_date)
                 VALUES (?, ?, ?, 'reg', ?, ?, ?)
                 ON DUPLICATE KEY UPDATE pid = VALUES(pid), category = VALUES(category),
                    status = 'reg', regdate = VALUES(regdate), unregdate = VALUES(unregdate)",
            )
            .bind(mac_text(mac))
            .bind(pid)
            .bind(role)
            .bind(now)
            .bind(unregdate)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            log_change(&mut tx, &[mac]).await?;
            let node = stored_node(&mut tx, mac).await?;
            tx.commit().await?;
            Ok(node)
        })
        .await
    }

    pub(crate) async fn unregister_node(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        retry_write("unregister_node", || async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "UPDATE node SET status = 'unreg', unregdate = ? WHERE mac = ? AND status <> 'unreg'",
            )
            .bind(now)
            .bind(mac_text(mac))
            .execute(&mut *tx)
            .await?;
            let changed = r.rows_affected() > 0;
            if changed {
                log_change(&mut tx, &[mac]).await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
        .await
    }

    pub(crate) async fn delete_node(&self, mac: Mac) -> Result<bool, StoreError> {
        retry_write("delete_node", || async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query("DELETE FROM node WHERE mac = ?")
                .bind(mac_text(mac))
                .execute(&mut *tx)
                .await?;
            let deleted = r.rows_affected() > 0;
            if deleted {
                log_change(&mut tx, &[mac]).await?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
        .await
    }

    async fn import_batch(&self, nodes: &[Node]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let pids: BTreeSet<&str> = nodes.iter().map(|n| n.pid.as_str()).collect();
        let mut qb = QueryBuilder::<MySql>::new("INSERT INTO person (pid, created_at) ");
        qb.push_values(pids, |mut b, pid| {
            b.push_bind(pid).push("UNIX_TIMESTAMP()");
        });
        qb.push(" ON DUPLICATE KEY UPDATE pid = pid");
        qb.build().execute(&mut *tx).await?;

        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO node (mac, pid, category, status, regdate, unregdate, last_seen, detect_date, notes) ",
        );
        qb.push_values(nodes, |mut b, n| {
            b.push_bind(mac_text(n.mac))
                .push_bind(n.pid.as_str())
                .push_bind(n.role.as_deref())
                .push_bind(n.status.as_str())
                .push_bind(n.regdate)
                .push_bind(n.unregdate)
                .push_bind(n.last_seen)
                .push_bind(n.last_seen.or(n.regdate))
                .push_bind(n.notes.as_deref());
        });
        qb.push(
            " ON DUPLICATE KEY UPDATE pid = VALUES(pid), category = VALUES(category),
               status = VALUES(status), regdate = VALUES(regdate), unregdate = VALUES(unregdate),
               last_seen = VALUES(last_seen), notes = VALUES(notes)",
        );
        qb.build().execute(&mut *tx).await?;
        let macs: Vec<Mac> = nodes.iter().map(|n| n.mac).collect();
        log_change(&mut tx, &macs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Batches of [`BATCH_ROWS`] nodes, each its own transaction (one giant transaction would
    /// exceed Galera's write-set limits); every batch is an idempotent upsert, so a failure
    /// part-way can simply be re-run.
    pub(crate) async fn bulk_import_nodes(&self, nodes: &[Node]) -> Result<u64, StoreError> {
        for chunk in nodes.chunks(BATCH_ROWS) {
            retry_write("bulk_import_nodes", || self.import_batch(chunk)).await?;
        }
        Ok(nodes.len() as u64)
    }

    pub(crate) async fn upsert_person(&self, p: &Person) -> Result<(), StoreError> {
        retry_write("upsert_person", || async {
            sqlx::query(
                "INSERT INTO person (pid, firstname, lastname, email, notes, created_at)
                 VALUES (?, ?, ?, ?, ?, UNIX_TIMESTAMP())
                 ON DUPLICATE KEY UPDATE firstname = VALUES(firstname),
                    lastname = VALUES(lastname), email = VALUES(email), notes = VALUES(notes)",
            )
            .bind(p.pid.as_str())
            .bind(p.firstname.as_deref())
            .bind(p.lastname.as_deref())
            .bind(p.email.as_deref())
            .bind(p.notes.as_deref())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn get_person(&self, pid: &str) -> Result<Option<Person>, StoreError> {
        let row =
            sqlx::query("SELECT pid, firstname, lastname, email, notes FROM person WHERE pid = ?")
                .bind(pid)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| -> Result<Person, StoreError> {
            Ok(Person {
                pid: r.try_get(0)?,
                firstname: r.try_get(1)?,
                lastname: r.try_get(2)?,
                email: r.try_get(3)?,
                notes: r.try_get(4)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn open_security_event(
        &self,
        mac: Mac,
        event_id: u32,
        now: UnixTime,
        notes: Option<&str>,
    ) -> Result<u64, StoreError> {
        retry_write("open_security_event", || async {
            let m = mac_text(mac);
            let mut tx = self.pool.begin().await?;
            // Creating/locking the node row serialises concurrent opens for one MAC, so the
            // plain read below (the transaction's first consistent read) cannot miss an event
            // opened concurrently, and no gap locks are taken.
            sqlx::query(
                "INSERT INTO node (mac, pid, status, detect_date) VALUES (?, 'default', 'unreg', ?)
                 ON DUPLICATE KEY UPDATE mac = mac",
            )
            .bind(m.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let existing: Option<u64> = sqlx::query_scalar(
                "SELECT id FROM security_event
                 WHERE mac = ? AND status = 'open' AND security_event_id = ?
                 ORDER BY id LIMIT 1",
            )
            .bind(m.as_str())
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match existing {
                Some(id) => id,
                None => sqlx::query(
                    "INSERT INTO security_event (mac, security_event_id, status, start_date, notes)
                     VALUES (?, ?, 'open', ?, ?)",
                )
                .bind(m.as_str())
                .bind(event_id)
                .bind(now)
                .bind(notes)
                .execute(&mut *tx)
                .await?
                .last_insert_id(),
            };
            if existing.is_none() {
                log_change(&mut tx, &[mac]).await?;
            }
            tx.commit().await?;
            Ok(id)
        })
        .await
    }

    pub(crate) async fn close_security_events(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        retry_write("close_security_events", || async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "UPDATE security_event SET status = 'closed', release_date = ?
                 WHERE mac = ? AND status = 'open'",
            )
            .bind(now)
            .bind(mac_text(mac))
            .execute(&mut *tx)
            .await?;
            let n = r.rows_affected();
            if n > 0 {
                log_change(&mut tx, &[mac]).await?;
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Node changes with an id above `floor`, in id order, read with Galera's causal read
    /// (`wsrep_sync_wait = 1`): the result includes every change committed anywhere in the
    /// cluster before the query started. On MariaDB without Galera the variable exists (and
    /// does nothing) when the server is built with wsrep; a server built without it refuses
    /// the variable (1193), which is ignored: there is no replication to wait for.
    pub(crate) async fn changes_since(&self, floor: u64) -> Result<Vec<(u64, Mac)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let causal = match sqlx::query("SET SESSION wsrep_sync_wait = 1")
            .execute(&mut *conn)
            .await
        {
            Ok(_) => true,
            Err(sqlx::Error::Database(db))
                if db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|e| e.number() == UNKNOWN_SYSTEM_VARIABLE) =>
            {
                false
            }
            Err(e) => return Err(e.into()),
        };
        let rows = sqlx::query_as::<_, (u64, String)>(
            "SELECT id, mac FROM node_change WHERE id > ? ORDER BY id",
        )
        .bind(floor)
        .fetch_all(&mut *conn)
        .await;
        if causal {
            // The connection goes back to the pool: other queries must not wait. One that
            // cannot be reset is closed instead of being handed to them.
            if let Err(e) = sqlx::query("SET SESSION wsrep_sync_wait = 0")
                .execute(&mut *conn)
                .await
            {
                let _ = conn.close().await;
                return Err(e.into());
            }
        }
        rows?
            .into_iter()
            .map(|(id, m)| Ok((id, Mac::parse(&m).map_err(|e| decode_err("MAC", e))?)))
            .collect()
    }

    /// Deletes node changes recorded before `before` (UNIX seconds); returns how many.
    pub(crate) async fn prune_node_changes(&self, before: UnixTime) -> Result<u64, StoreError> {
        retry_write("prune_node_changes", || async {
            let r = sqlx::query("DELETE FROM node_change WHERE changed_at < ?")
                .bind(before)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected())
        })
        .await
    }

    async fn record_accounting_once(
        &self,
        ev: &AccountingEvent,
        key: Option<(&[u8], UnixTime)>,
    ) -> Result<bool, StoreError> {
        let now = ev.now;
        let mut tx = self.pool.begin().await?;
        if let Some((key, applied_at)) = key {
            // First statement of the transaction: a concurrent replay of the same record waits
            // on this key's lock and then finds it. (IGNORE, not ON DUPLICATE KEY UPDATE: the
            // client counts found rows, so a no-op update would also report 1.)
            let r = sqlx::query(
                "INSERT IGNORE INTO spool_applied (idem_key, applied_at) VALUES (?, ?)",
            )
            .bind(key)
            .bind(applied_at)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false); // already applied; the transaction rolls back on drop
            }
        }
        let needs = plan::needs(ev);
        if let Some(m) = needs.create_node {
            // Ensure the node exists and lock its row: concurrent events for one MAC
            // serialise on this record lock (no gap locks, so no deadlock storm), and the
            // plain SELECT of the open entries below, being the transaction's first consistent
            // read, sees what the previous holder of the lock committed.
            sqlx::query(
                "INSERT INTO node (mac, pid, status, detect_date) VALUES (?, 'default', 'unreg', ?)
                 ON DUPLICATE KEY UPDATE mac = mac",
            )
            .bind(mac_text(m))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The statement reports 1 whether it inserted or not (found rows): a node whose
            // detect_date is this event's time was (most likely) created by it. Logging a
            // change for one created by another event in the same second is harmless (one
            // extra invalidation); missing one is not, and cannot happen: a node inserted here
            // has detect_date = now.
            let detected: Option<Option<i64>> =
                sqlx::query_scalar("SELECT detect_date FROM node WHERE mac = ?")
                    .bind(mac_text(m))
                    .fetch_optional(&mut *tx)
                    .await?;
            if detected == Some(Some(now)) {
                log_change(&mut tx, &[m]).await?;
            }
        }
        let open = open_entries(&mut tx, &needs.scope).await?;
        let changes = plan::plan(ev, &open);
        // Close by primary key (record locks only), in batches.
        let to_close: Vec<u64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Close { id } => Some(*id),
                _ => None,
            })
            .collect();
        for ids in to_close.chunks(BATCH_ROWS) {
            let mut qb = QueryBuilder::<MySql>::new("UPDATE locationlog SET end_time = ");
            qb.push_bind(now)
                .push(" WHERE end_time IS NULL AND id IN (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        for change in changes {
            match change {
                Change::Close { .. } => {} // done above
                Change::Fill {
                    id,
                    session_id,
                    username,
                } => {
                    sqlx::query("UPDATE locationlog SET session_id = ?, username = ? WHERE id = ?")
                        .bind(session_id)
                        .bind(username)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Open { mac } => {
                    sqlx::query(
                        "INSERT INTO locationlog (mac, switch_id, switch_ip, port, vlan, role,
                            ssid, session_id, username, connection_type, start_time)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(mac_text(mac))
                    .bind(ev.switch_id.as_str())
                    .bind(ev.switch_ip.as_str())
                    .bind(ev.port.as_deref())
                    .bind(ev.vlan.as_deref())
                    .bind(ev.role.as_deref())
                    .bind(ev.ssid.as_deref())
                    .bind(ev.session_id.as_deref())
                    .bind(ev.username.as_deref())
                    .bind(ev.connection_type.as_deref())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::IpCloseOthers { mac, keep } => {
                    sqlx::query(
                        "UPDATE ip4log SET end_time = ?
                         WHERE mac = ? AND ip <> ? AND end_time IS NULL",
                    )
                    .bind(now)
                    .bind(mac_text(mac))
                    .bind(keep.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                Change::IpClaim { ip, mac } => {
                    // MariaDB evaluates ON DUPLICATE KEY assignments left to right, each seeing
                    // the previous ones: start_time must be computed before mac is overwritten.
                    sqlx::query(
                        "INSERT INTO ip4log (ip, mac, start_time, end_time) VALUES (?, ?, ?, NULL)
                         ON DUPLICATE KEY UPDATE
                            start_time = IF(mac = VALUES(mac) AND end_time IS NULL,
                                            start_time, VALUES(start_time)),
                            mac = VALUES(mac),
                            end_time = NULL",
                    )
                    .bind(ip.to_string())
                    .bind(mac_text(mac))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn record_accounting(&self, ev: &AccountingEvent) -> Result<(), StoreError> {
        retry_write("record_accounting", || {
            self.record_accounting_once(ev, None)
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn record_accounting_keyed(
        &self,
        ev: &AccountingEvent,
        key: Option<(&[u8], UnixTime)>,
    ) -> Result<bool, StoreError> {
        retry_write("record_accounting", || self.record_accounting_once(ev, key)).await
    }

    pub(crate) async fn prune_spool_keys(&self, before: UnixTime) -> Result<u64, StoreError> {
        retry_write("prune_spool_keys", || async {
            let r = sqlx::query("DELETE FROM spool_applied WHERE applied_at < ?")
                .bind(before)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected())
        })
        .await
    }

    pub(crate) async fn locationlog(
        &self,
        mac: Mac,
        limit: u32,
    ) -> Result<Vec<LocationLogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, mac, switch_id, switch_ip, port, vlan, role, ssid, session_id, username,
                    connection_type, start_time, end_time
             FROM locationlog WHERE mac = ? ORDER BY start_time DESC, id DESC LIMIT ?",
        )
        .bind(mac_text(mac))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LocationLogEntry {
                    id: r.try_get(0)?,
                    mac: mac_col(r, 1)?,
                    switch_id: r.try_get(2)?,
                    switch_ip: r.try_get(3)?,
                    port: r.try_get(4)?,
                    vlan: r.try_get(5)?,
                    role: r.try_get(6)?,
                    ssid: r.try_get(7)?,
                    session_id: r.try_get(8)?,
                    username: r.try_get(9)?,
                    connection_type: r.try_get(10)?,
                    start_time: r.try_get(11)?,
                    end_time: r.try_get(12)?,
                })
            })
            .collect()
    }

    pub(crate) async fn open_locationlog_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM locationlog WHERE end_time IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64_of(n))
    }

    pub(crate) async fn ip4log_for(&self, mac: Mac) -> Result<Vec<Ip4LogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT ip, mac, start_time, end_time FROM ip4log WHERE mac = ? ORDER BY start_time DESC, ip",
        )
        .bind(mac_text(mac))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let ip: String = r.try_get(0)?;
                Ok(Ip4LogEntry {
                    ip: ip.parse().map_err(|e| decode_err("IPv4 address", e))?,
                    mac: mac_col(r, 1)?,
                    start_time: r.try_get(2)?,
                    end_time: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn insert_audit_once(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(BATCH_ROWS / 2) {
            let mut qb = QueryBuilder::<MySql>::new(
                "INSERT INTO radius_audit_log (created_at, mac, user_name, nas_ip, nas_port,
                    request_type, outcome, reason, vlan, role, switch_id, calling_station_id,
                    called_station_id) ",
            );
            qb.push_values(chunk, |mut b, a| {
                b.push_bind(a.created_at)
                    .push_bind(a.mac.map(mac_text))
                    .push_bind(a.user_name.as_deref())
                    .push_bind(a.nas_ip.as_str())
                    .push_bind(a.nas_port.as_deref())
                    .push_bind(a.request_type.as_str())
                    .push_bind(a.outcome.as_str())
                    .push_bind(a.reason.as_str())
                    .push_bind(a.vlan.as_deref())
                    .push_bind(a.role.as_deref())
                    .push_bind(a.switch_id.as_deref())
                    .push_bind(a.calling_station_id.as_deref())
                    .push_bind(a.called_station_id.as_deref());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert_audit_batch(
        &self,
        records: &[AuditRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        retry_write("insert_audit_batch", || self.insert_audit_once(records)).await
    }

    pub(crate) async fn count_audit(&self, mac: Option<Mac>) -> Result<u64, StoreError> {
        let n: i64 = match mac {
            Some(m) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM radius_audit_log WHERE mac = ?")
                    .bind(mac_text(m))
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM radius_audit_log")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(u64_of(n))
    }

    /// `SHOW GLOBAL STATUS LIKE 'wsrep%'` as (name, value) rows: what the quorum monitor needs;
    /// empty when Galera is off (`wsrep_on = OFF`).
    /// Works on a non-Primary Galera node (status queries touch no table).
    pub(crate) async fn wsrep_status(&self) -> Result<Vec<(String, String)>, StoreError> {
        // A MariaDB built with wsrep reports wsrep_* status rows even when Galera is off. Only
        // "no such variable" (a build without wsrep) means no Galera: a database that is down
        // or restarting is an error, never "not Galera" (the quorum monitor keeps following it).
        let on: i64 = match sqlx::query_scalar("SELECT CAST(@@global.wsrep_on AS SIGNED)")
            .fetch_one(&self.pool)
            .await
        {
            Ok(on) => on,
            Err(sqlx::Error::Database(db))
                if db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|e| e.number() == UNKNOWN_SYSTEM_VARIABLE) =>
            {
                0
            }
            Err(e) => return Err(e.into()),
        };
        if on == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String)> = sqlx::query_as("SHOW GLOBAL STATUS LIKE 'wsrep%'")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// `@@global.read_only`: MariaDB without Galera refuses writes (1290) while it is set.
    pub(crate) async fn read_only(&self) -> Result<bool, StoreError> {
        let v: i64 = sqlx::query_scalar("SELECT CAST(@@global.read_only AS SIGNED)")
            .fetch_one(&self.pool)
            .await?;
        Ok(v != 0)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_only_write_conflicts_and_gives_up() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry_write("t", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(crate::error::classify_mysql(1213, "Deadlock found"))
        })
        .await;
        assert!(matches!(r, Err(StoreError::Deadlock { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), WRITE_ATTEMPTS);

        let calls = AtomicU32::new(0);
        let r = retry_write("t", || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(crate::error::classify_mysql(1213, "Deadlock found"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry_write("t", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(crate::error::classify_mysql(1290, "--read-only"))
        })
        .await;
        assert!(matches!(r, Err(StoreError::ReadOnly { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

// Captive portal: local users and IP → MAC (migration v7).
mod portal;

// Administration: the admin audit log and revoked sessions (migration v8).
mod admin;

// Administration: node search and update, people (migration v9).
mod admin_nodes;

//! The administration's node and person queries on MariaDB (see [`crate::admin`]).

use super::{MySqlStore, log_change, node_from_row, retry_write, u64_of};
use crate::admin_nodes::{
    Arg, LocalUserInfo, NodePage, NodeRow, NodeSearch, NodeUpdate, PersonDelete, PersonPage,
    PersonRow, PersonSearch,
};
use crate::{Person, StoreError, mac_text};
use ironfence_core::{Mac, UnixTime};
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Row};

/// The node columns of [`node_from_row`] followed by the administration's.
const ROW_COLS: &str = "n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, \
                        n.notes, n.computername, n.detect_date";

fn row_from(r: &MySqlRow) -> Result<NodeRow, StoreError> {
    Ok(NodeRow {
        node: node_from_row(r)?,
        computername: r.try_get(8)?,
        detect_date: r.try_get(9)?,
    })
}

/// A statement built from generated SQL (only fixed fragments; every value is bound).
fn bound<'q>(sql: String, args: &'q [Arg]) -> Query<'q, MySql, MySqlArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

const PERSON_COLS: &str = "p.pid, p.firstname, p.lastname, p.email, p.notes, p.created_at, \
     (SELECT COUNT(*) FROM node n WHERE n.pid = p.pid), \
     (SELECT COUNT(*) FROM password w2 WHERE w2.pid = p.pid), w.valid_from, w.expiration";

fn person_from(r: &MySqlRow) -> Result<PersonRow, StoreError> {
    let has_password: i64 = r.try_get(7)?;
    Ok(PersonRow {
        person: Person {
            pid: r.try_get(0)?,
            firstname: r.try_get(1)?,
            lastname: r.try_get(2)?,
            email: r.try_get(3)?,
            notes: r.try_get(4)?,
        },
        created_at: r.try_get(5)?,
        nodes: u64_of(r.try_get(6)?),
        local_user: if has_password > 0 {
            Some(LocalUserInfo {
                valid_from: r.try_get(8)?,
                expiration: r.try_get(9)?,
            })
        } else {
            None
        },
    })
}

async fn get_row_on(
    conn: &mut MySqlConnection,
    mac: Mac,
    lock: bool,
) -> Result<Option<NodeRow>, StoreError> {
    let sql = format!(
        "SELECT {ROW_COLS} FROM node n WHERE n.mac = ?{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let args = [Arg::Text(mac_text(mac))];
    bound(sql, &args)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(row_from)
        .transpose()
}

impl MySqlStore {
    pub(crate) async fn search_nodes(&self, s: &NodeSearch) -> Result<NodePage, StoreError> {
        let (cond, mut args) = s.where_clause();
        let mut conn = self.pool.acquire().await?;
        let total: i64 = bound(format!("SELECT COUNT(*) FROM node n{cond}"), &args)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        args.push(Arg::Int(s.limit()));
        args.push(Arg::Int(s.offset()));
        let rows = bound(
            format!(
                "SELECT {ROW_COLS} FROM node n{cond}{} LIMIT ? OFFSET ?",
                s.order_clause()
            ),
            &args,
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(NodePage {
            total: u64_of(total),
            nodes: rows.iter().map(row_from).collect::<Result<_, _>>()?,
        })
    }

    pub(crate) async fn get_node_row(&self, mac: Mac) -> Result<Option<NodeRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        get_row_on(&mut conn, mac, false).await
    }

    pub(crate) async fn create_node(
        &self,
        row: &NodeRow,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        retry_write("create_node", || async {
            let n = &row.node;
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO person (pid, created_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE pid = pid",
            )
            .bind(n.pid.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // IGNORE: tells whether this call inserted the node (see create_node_if_absent).
            let inserted = sqlx::query(
                "INSERT IGNORE INTO node (mac, pid, category, status, regdate, unregdate,
                    last_seen, detect_date, notes, computername)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(mac_text(n.mac))
            .bind(n.pid.as_str())
            .bind(n.role.as_deref())
            .bind(n.status.as_str())
            .bind(n.regdate)
            .bind(n.unregdate)
            .bind(n.last_seen)
            .bind(row.detect_date.unwrap_or(now))
            .bind(n.notes.as_deref())
            .bind(row.computername.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            log_change(&mut tx, &[n.mac]).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn update_node(
        &self,
        mac: Mac,
        u: &NodeUpdate,
        now: UnixTime,
    ) -> Result<Option<(NodeRow, NodeRow)>, StoreError> {
        retry_write("update_node", || async {
            let mut tx = self.pool.begin().await?;
            let Some(before) = get_row_on(&mut tx, mac, true).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let after = u.apply(&before, now);
            if after != before {
                let n = &after.node;
                sqlx::query(
                    "INSERT INTO person (pid, created_at) VALUES (?, ?)
                     ON DUPLICATE KEY UPDATE pid = pid",
                )
                .bind(n.pid.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE node SET pid = ?, category = ?, status = ?, regdate = ?,
                        unregdate = ?, notes = ?, computername = ?
                     WHERE mac = ?",
                )
                .bind(n.pid.as_str())
                .bind(n.role.as_deref())
                .bind(n.status.as_str())
                .bind(n.regdate)
                .bind(n.unregdate)
                .bind(n.notes.as_deref())
                .bind(after.computername.as_deref())
                .bind(mac_text(mac))
                .execute(&mut *tx)
                .await?;
                log_change(&mut tx, &[mac]).await?;
            }
            let stored = get_row_on(&mut tx, mac, false)
                .await?
                .ok_or_else(|| StoreError::other(format!("node {mac} vanished while updated")))?;
            tx.commit().await?;
            Ok(Some((before, stored)))
        })
        .await
    }

    pub(crate) async fn search_persons(&self, s: &PersonSearch) -> Result<PersonPage, StoreError> {
        let (cond, mut args) = s.where_clause();
        let mut conn = self.pool.acquire().await?;
        let total: i64 = bound(format!("SELECT COUNT(*) FROM person p{cond}"), &args)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        args.push(Arg::Int(s.limit()));
        args.push(Arg::Int(s.offset()));
        let rows = bound(
            format!(
                "SELECT {PERSON_COLS} FROM person p LEFT JOIN password w ON w.pid = p.pid{cond}
                 ORDER BY p.pid LIMIT ? OFFSET ?"
            ),
            &args,
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(PersonPage {
            total: u64_of(total),
            people: rows.iter().map(person_from).collect::<Result<_, _>>()?,
        })
    }

    pub(crate) async fn get_person_row(&self, pid: &str) -> Result<Option<PersonRow>, StoreError> {
        let args = [Arg::Text(pid.to_string())];
        bound(
            format!(
                "SELECT {PERSON_COLS} FROM person p LEFT JOIN password w ON w.pid = p.pid
                 WHERE p.pid = ?"
            ),
            &args,
        )
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(person_from)
        .transpose()
    }

    pub(crate) async fn create_person(
        &self,
        p: &Person,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        retry_write("create_person", || async {
            let n = sqlx::query(
                "INSERT IGNORE INTO person (pid, firstname, lastname, email, notes, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(p.pid.as_str())
            .bind(p.firstname.as_deref())
            .bind(p.lastname.as_deref())
            .bind(p.email.as_deref())
            .bind(p.notes.as_deref())
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn delete_person(&self, pid: &str) -> Result<PersonDelete, StoreError> {
        if pid == "default" {
            return Ok(PersonDelete::Protected);
        }
        retry_write("delete_person", || async {
            let mut tx = self.pool.begin().await?;
            // Locks the person row: a node cannot be given to them while they are deleted.
            let exists = sqlx::query("SELECT pid FROM person WHERE pid = ? FOR UPDATE")
                .bind(pid)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                tx.rollback().await?;
                return Ok(PersonDelete::NotFound);
            }
            let owned: i64 = sqlx::query("SELECT COUNT(*) FROM node WHERE pid = ?")
                .bind(pid)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if owned > 0 {
                tx.rollback().await?;
                return Ok(PersonDelete::OwnsNodes(u64_of(owned)));
            }
            sqlx::query("DELETE FROM password WHERE pid = ?")
                .bind(pid)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM person WHERE pid = ?")
                .bind(pid)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(PersonDelete::Deleted)
        })
        .await
    }

    pub(crate) async fn delete_local_user(&self, pid: &str) -> Result<bool, StoreError> {
        retry_write("delete_local_user", || async {
            let n = sqlx::query("DELETE FROM password WHERE pid = ?")
                .bind(pid)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
        .await
    }

    /// `EXPLAIN` of a node search's page query: one line per table access (key, rows, Extra).
    pub(crate) async fn explain_node_search(
        &self,
        s: &NodeSearch,
    ) -> Result<Vec<String>, StoreError> {
        let (cond, mut args) = s.where_clause();
        args.push(Arg::Int(s.limit()));
        args.push(Arg::Int(s.offset()));
        let rows = bound(
            format!(
                "EXPLAIN SELECT {ROW_COLS} FROM node n{cond}{} LIMIT ? OFFSET ?",
                s.order_clause()
            ),
            &args,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let text = |name: &str| -> Result<String, StoreError> {
                    Ok(r.try_get::<Option<String>, _>(name)?.unwrap_or_default())
                };
                let rows: Option<u64> = r.try_get("rows").ok().flatten();
                Ok(format!(
                    "type={} key={} rows={} {}",
                    text("type")?,
                    text("key")?,
                    rows.map(|n| n.to_string()).unwrap_or_default(),
                    text("Extra")?
                ))
            })
            .collect()
    }
}

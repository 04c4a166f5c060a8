//! The administration's node and person queries on SQLite (see [`crate::admin`]).

use super::{SqliteStore, log_change, node_from_row, u64_of};
use crate::admin_nodes::{
    Arg, LocalUserInfo, NodePage, NodeRow, NodeSearch, NodeUpdate, PersonDelete, PersonPage,
    PersonRow, PersonSearch,
};
use crate::{Person, StoreError, mac_text};
use ironfence_core::{Mac, UnixTime};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

/// The node columns of [`node_from_row`] followed by the administration's.
const ROW_COLS: &str = "n.mac, n.pid, n.category, n.status, n.regdate, n.unregdate, n.last_seen, \
                        n.notes, n.computername, n.detect_date";

fn row_from(r: &Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok(NodeRow {
        node: node_from_row(r)?,
        computername: r.get(8)?,
        detect_date: r.get(9)?,
    })
}

fn values(args: Vec<Arg>) -> Vec<Value> {
    args.into_iter()
        .map(|a| match a {
            Arg::Text(s) => Value::Text(s),
            Arg::Int(i) => Value::Integer(i),
        })
        .collect()
}

const PERSON_COLS: &str = "p.pid, p.firstname, p.lastname, p.email, p.notes, p.created_at, \
     (SELECT COUNT(*) FROM node n WHERE n.pid = p.pid), \
     (SELECT COUNT(*) FROM password w WHERE w.pid = p.pid), w.valid_from, w.expiration";

fn person_from(r: &Row<'_>) -> rusqlite::Result<PersonRow> {
    let has_password: i64 = r.get(7)?;
    Ok(PersonRow {
        person: Person {
            pid: r.get(0)?,
            firstname: r.get(1)?,
            lastname: r.get(2)?,
            email: r.get(3)?,
            notes: r.get(4)?,
        },
        created_at: r.get(5)?,
        nodes: u64_of(r.get(6)?),
        local_user: if has_password > 0 {
            Some(LocalUserInfo {
                valid_from: r.get(8)?,
                expiration: r.get(9)?,
            })
        } else {
            None
        },
    })
}

fn get_row_on(conn: &Connection, mac: Mac) -> Result<Option<NodeRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ROW_COLS} FROM node n WHERE n.mac = ?1"))?
        .query_row([mac_text(mac)], row_from)
        .optional()?)
}

impl SqliteStore {
    pub(crate) fn search_nodes(&self, s: &NodeSearch) -> Result<NodePage, StoreError> {
        let conn = self.reader();
        let (cond, args) = s.where_clause();
        let args = values(args);
        let total: i64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM node n{cond}"))?
            .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        let mut page_args = args;
        page_args.push(Value::Integer(s.limit()));
        page_args.push(Value::Integer(s.offset()));
        let mut st = conn.prepare_cached(&format!(
            "SELECT {ROW_COLS} FROM node n{cond}{} LIMIT ? OFFSET ?",
            s.order_clause()
        ))?;
        let nodes = st
            .query_map(params_from_iter(page_args.iter()), row_from)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodePage {
            total: u64_of(total),
            nodes,
        })
    }

    pub(crate) fn get_node_row(&self, mac: Mac) -> Result<Option<NodeRow>, StoreError> {
        get_row_on(&self.reader(), mac)
    }

    pub(crate) fn create_node(&self, row: &NodeRow, now: UnixTime) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = &row.node;
        tx.prepare_cached(
            "INSERT INTO person (pid, created_at) VALUES (?1, ?2) ON CONFLICT (pid) DO NOTHING",
        )?
        .execute(params![n.pid, now])?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO node (mac, pid, category, status, regdate, unregdate, last_seen,
                                   detect_date, notes, computername)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (mac) DO NOTHING",
            )?
            .execute(params![
                mac_text(n.mac),
                n.pid,
                n.role,
                n.status.as_str(),
                n.regdate,
                n.unregdate,
                n.last_seen,
                row.detect_date.unwrap_or(now),
                n.notes,
                row.computername
            ])?;
        if inserted == 0 {
            return Ok(false); // rolls back the person too
        }
        log_change(&tx, n.mac)?;
        tx.commit()?;
        Ok(true)
    }

    pub(crate) fn update_node(
        &self,
        mac: Mac,
        u: &NodeUpdate,
        now: UnixTime,
    ) -> Result<Option<(NodeRow, NodeRow)>, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(before) = get_row_on(&tx, mac)? else {
            return Ok(None);
        };
        let after = u.apply(&before, now);
        if after != before {
            let n = &after.node;
            tx.prepare_cached(
                "INSERT INTO person (pid, created_at) VALUES (?1, ?2) ON CONFLICT (pid) DO NOTHING",
            )?
            .execute(params![n.pid, now])?;
            tx.prepare_cached(
                "UPDATE node SET pid = ?2, category = ?3, status = ?4, regdate = ?5,
                    unregdate = ?6, notes = ?7, computername = ?8
                 WHERE mac = ?1",
            )?
            .execute(params![
                mac_text(mac),
                n.pid,
                n.role,
                n.status.as_str(),
                n.regdate,
                n.unregdate,
                n.notes,
                after.computername
            ])?;
            log_change(&tx, mac)?;
        }
        let stored = get_row_on(&tx, mac)?
            .ok_or_else(|| StoreError::other(format!("node {mac} vanished while updated")))?;
        tx.commit()?;
        Ok(Some((before, stored)))
    }

    pub(crate) fn search_persons(&self, s: &PersonSearch) -> Result<PersonPage, StoreError> {
        let conn = self.reader();
        let (cond, args) = s.where_clause();
        let args = values(args);
        let total: i64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM person p{cond}"))?
            .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        let mut page_args = args;
        page_args.push(Value::Integer(s.limit()));
        page_args.push(Value::Integer(s.offset()));
        let people = conn
            .prepare_cached(&format!(
                "SELECT {PERSON_COLS} FROM person p LEFT JOIN password w ON w.pid = p.pid{cond}
                 ORDER BY p.pid LIMIT ? OFFSET ?"
            ))?
            .query_map(params_from_iter(page_args.iter()), person_from)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PersonPage {
            total: u64_of(total),
            people,
        })
    }

    pub(crate) fn get_person_row(&self, pid: &str) -> Result<Option<PersonRow>, StoreError> {
        let conn = self.reader();
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {PERSON_COLS} FROM person p LEFT JOIN password w ON w.pid = p.pid
                 WHERE p.pid = ?1"
            ))?
            .query_row([pid], person_from)
            .optional()?)
    }

    pub(crate) fn create_person(&self, p: &Person, now: UnixTime) -> Result<bool, StoreError> {
        let conn = self.writer();
        let n = conn
            .prepare_cached(
                "INSERT INTO person (pid, firstname, lastname, email, notes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (pid) DO NOTHING",
            )?
            .execute(params![
                p.pid,
                p.firstname,
                p.lastname,
                p.email,
                p.notes,
                now
            ])?;
        Ok(n > 0)
    }

    pub(crate) fn delete_person(&self, pid: &str) -> Result<PersonDelete, StoreError> {
        if pid == "default" {
            return Ok(PersonDelete::Protected);
        }
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let owned: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM node WHERE pid = ?1")?
            .query_row([pid], |r| r.get(0))?;
        if owned > 0 {
            return Ok(PersonDelete::OwnsNodes(u64_of(owned)));
        }
        // The password row goes with it (ON DELETE CASCADE).
        let n = tx
            .prepare_cached("DELETE FROM person WHERE pid = ?1")?
            .execute([pid])?;
        tx.commit()?;
        Ok(if n > 0 {
            PersonDelete::Deleted
        } else {
            PersonDelete::NotFound
        })
    }

    pub(crate) fn delete_local_user(&self, pid: &str) -> Result<bool, StoreError> {
        let conn = self.writer();
        let n = conn
            .prepare_cached("DELETE FROM password WHERE pid = ?1")?
            .execute([pid])?;
        Ok(n > 0)
    }

    /// The query plan of a node search (the benchmark and the suite check the indexes used).
    pub(crate) fn explain_node_search(&self, s: &NodeSearch) -> Result<Vec<String>, StoreError> {
        let conn = self.reader();
        let (cond, args) = s.where_clause();
        let mut args = values(args);
        args.push(Value::Integer(s.limit()));
        args.push(Value::Integer(s.offset()));
        let mut st = conn.prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT {ROW_COLS} FROM node n{cond}{} LIMIT ? OFFSET ?",
            s.order_clause()
        ))?;
        let rows = st.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

//! What the administration interface reads and writes about devices and people: node search
//! (filters, sort, paging, total), node create and update, person search, person delete and
//! local-user removal. Migration v9 (`node.computername`, search indexes).
//!
//! ```text
//!  admin API / pages ──► NodeSearch ──► where_clause (one SQL text, `?` placeholders, both
//!                                        dialects) ──► SQLite / MariaDB bind and run
//!                    ──► NodeUpdate ──► one transaction: UPDATE node + node_change row
//! ```
//!
//! The WHERE clause is built once ([`NodeSearch::where_clause`]) for both backends: the
//! dialects agree on everything it uses (`?` placeholders, `LIKE … ESCAPE '!'`, `LOWER`,
//! `REPLACE`, `COALESCE`, binary collation on MAC text). Indexed paths (EXPLAIN'd in the
//! store suite and docs/admin-devices.md): MAC prefix → a range on the primary key; status,
//! role, owner, last seen, registration date → their indexes. A MAC substring or a text
//! search (computername, notes) scans the table (≈ 100k rows in a few tens of ms).

use crate::{Store, StoreError};
use ironfence_core::{Mac, Node, NodeStatus, UnixTime};

/// Largest page of a search.
pub const MAX_LIMIT: u32 = 1000;

/// A node with the columns only the administration shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub node: Node,
    /// The device's host name (DHCP option 12 or set by an admin).
    pub computername: Option<String>,
    /// First sighting.
    pub detect_date: Option<UnixTime>,
}

/// Sort order of a node search (ties broken by MAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeSort {
    #[default]
    Mac,
    LastSeen,
    Regdate,
}

impl NodeSort {
    fn column(self) -> &'static str {
        match self {
            NodeSort::Mac => "n.mac",
            NodeSort::LastSeen => "n.last_seen",
            NodeSort::Regdate => "n.regdate",
        }
    }
}

/// Which nodes a search returns. Every filter given must match (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSearch {
    /// MAC prefix, in any spelling (`aa:bb`, `AABB`, `aa-bb-c`): a range on the primary key.
    pub mac_prefix: Option<String>,
    /// Hex digits anywhere in the MAC (separators ignored): scans.
    pub mac_contains: Option<String>,
    /// Owner (`node.pid`), exact.
    pub pid: Option<String>,
    pub status: Option<NodeStatus>,
    /// Role (`node.category`), exact.
    pub role: Option<String>,
    /// Case-insensitive substring of the computer name or the notes.
    pub text: Option<String>,
    /// `last_seen >= seen_since`.
    pub seen_since: Option<UnixTime>,
    /// `last_seen < seen_until`.
    pub seen_until: Option<UnixTime>,
    pub sort: NodeSort,
    pub descending: bool,
    /// At most [`MAX_LIMIT`].
    pub limit: u32,
    pub offset: u64,
}

impl Default for NodeSearch {
    fn default() -> Self {
        NodeSearch {
            mac_prefix: None,
            mac_contains: None,
            pid: None,
            status: None,
            role: None,
            text: None,
            seen_since: None,
            seen_until: None,
            sort: NodeSort::Mac,
            descending: false,
            limit: 50,
            offset: 0,
        }
    }
}

/// A bound value of a generated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The lower-case hex digits of `s`, or `None` when it holds anything but hex digits and the
/// separators `:`, `-`, `.`.
pub fn mac_digits(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.trim().chars() {
        match c {
            '0'..='9' | 'a'..='f' => out.push(c),
            'A'..='F' => out.push(c.to_ascii_lowercase()),
            ':' | '-' | '.' => {}
            _ => return None,
        }
    }
    (out.len() <= 12).then_some(out)
}

/// Canonical text (`aa:bb:c`) of the first digits of a MAC.
fn canonical_prefix(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() * 3 / 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 2 == 0 {
            out.push(':');
        }
        out.push(c);
    }
    out
}

/// `s` as a LIKE pattern matching it anywhere, lower-cased, with `!` as the escape character.
fn contains_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl NodeSearch {
    /// The `WHERE …` clause (or an empty string) and its arguments, shared by both dialects.
    /// Unusable MAC filters (not hex) are the caller's to refuse; here they match nothing.
    pub(crate) fn where_clause(&self) -> (String, Vec<Arg>) {
        let mut conds: Vec<&'static str> = Vec::new();
        let mut args = Vec::new();
        if let Some(p) = &self.mac_prefix {
            match mac_digits(p) {
                Some(d) if !d.is_empty() => {
                    let lo = canonical_prefix(&d);
                    // '~' sorts after every hex digit and ':' in a binary collation.
                    let hi = format!("{lo}~");
                    conds.push("n.mac >= ? AND n.mac < ?");
                    args.push(Arg::Text(lo));
                    args.push(Arg::Text(hi));
                }
                Some(_) => {}
                None => conds.push("1 = 0"),
            }
        }
        if let Some(s) = &self.mac_contains {
            match mac_digits(s) {
                Some(d) if !d.is_empty() => {
                    conds.push("REPLACE(n.mac, ':', '') LIKE ?");
                    args.push(Arg::Text(format!("%{d}%")));
                }
                Some(_) => {}
                None => conds.push("1 = 0"),
            }
        }
        if let Some(pid) = &self.pid {
            conds.push("n.pid = ?");
            args.push(Arg::Text(pid.clone()));
        }
        if let Some(s) = self.status {
            conds.push("n.status = ?");
            args.push(Arg::Text(s.as_str().into()));
        }
        if let Some(r) = &self.role {
            conds.push("n.category = ?");
            args.push(Arg::Text(r.clone()));
        }
        if let Some(t) = self.text.as_deref().filter(|t| !t.is_empty()) {
            conds.push(
                "(LOWER(COALESCE(n.computername, '')) LIKE ? ESCAPE '!' \
                 OR LOWER(COALESCE(n.notes, '')) LIKE ? ESCAPE '!')",
            );
            let p = contains_pattern(t);
            args.push(Arg::Text(p.clone()));
            args.push(Arg::Text(p));
        }
        if let Some(t) = self.seen_since {
            conds.push("n.last_seen >= ?");
            args.push(Arg::Int(t));
        }
        if let Some(t) = self.seen_until {
            conds.push("n.last_seen < ?");
            args.push(Arg::Int(t));
        }
        if conds.is_empty() {
            (String::new(), args)
        } else {
            (format!(" WHERE {}", conds.join(" AND ")), args)
        }
    }

    /// `ORDER BY …` (ties broken by MAC, so that pages never overlap).
    pub(crate) fn order_clause(&self) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        match self.sort {
            NodeSort::Mac => format!(" ORDER BY n.mac {dir}"),
            s => format!(" ORDER BY {} {dir}, n.mac {dir}", s.column()),
        }
    }

    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_LIMIT))
    }

    pub(crate) fn offset(&self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

/// One page of a node search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePage {
    /// Matching nodes in all pages.
    pub total: u64,
    pub nodes: Vec<NodeRow>,
}

/// The fields an admin changes on a node; `None` leaves a field as it is, `Some(None)` clears
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeUpdate {
    pub role: Option<Option<String>>,
    /// Becoming `reg` sets `regdate` to now (unless already registered); leaving it keeps it.
    pub status: Option<NodeStatus>,
    /// The owner (created if absent).
    pub pid: Option<String>,
    pub notes: Option<Option<String>>,
    pub unregdate: Option<Option<UnixTime>>,
    pub computername: Option<Option<String>>,
}

impl NodeUpdate {
    pub fn is_empty(&self) -> bool {
        *self == NodeUpdate::default()
    }

    /// `row` with the update applied at `now` (what the backends write).
    pub fn apply(&self, row: &NodeRow, now: UnixTime) -> NodeRow {
        let mut r = row.clone();
        if let Some(v) = &self.role {
            r.node.role = v.clone();
        }
        if let Some(s) = self.status {
            if s == NodeStatus::Registered && r.node.status != NodeStatus::Registered {
                r.node.regdate = Some(now);
            }
            r.node.status = s;
        }
        if let Some(p) = &self.pid {
            r.node.pid = p.clone();
        }
        if let Some(v) = &self.notes {
            r.node.notes = v.clone();
        }
        if let Some(v) = self.unregdate {
            r.node.unregdate = v;
        }
        if let Some(v) = &self.computername {
            r.computername = v.clone();
        }
        r
    }
}

/// A person with what the administration shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub person: crate::Person,
    pub created_at: Option<UnixTime>,
    /// Devices owned.
    pub nodes: u64,
    /// The local-login account (`password` row), without its hash.
    pub local_user: Option<LocalUserInfo>,
}

/// A local user's validity window (the hash is never read out by the administration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalUserInfo {
    pub valid_from: Option<UnixTime>,
    pub expiration: Option<UnixTime>,
}

/// Which people a search returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSearch {
    /// Case-insensitive substring of the pid, names or email.
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

impl Default for PersonSearch {
    fn default() -> Self {
        PersonSearch {
            text: None,
            limit: 50,
            offset: 0,
        }
    }
}

impl PersonSearch {
    pub(crate) fn where_clause(&self) -> (String, Vec<Arg>) {
        match self.text.as_deref().filter(|t| !t.is_empty()) {
            None => (String::new(), Vec::new()),
            Some(t) => {
                let p = contains_pattern(t);
                (
                    " WHERE (LOWER(p.pid) LIKE ? ESCAPE '!' \
                     OR LOWER(COALESCE(p.firstname, '')) LIKE ? ESCAPE '!' \
                     OR LOWER(COALESCE(p.lastname, '')) LIKE ? ESCAPE '!' \
                     OR LOWER(COALESCE(p.email, '')) LIKE ? ESCAPE '!')"
                        .into(),
                    vec![Arg::Text(p); 4],
                )
            }
        }
    }
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_LIMIT))
    }
    pub(crate) fn offset(&self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

/// One page of a person search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonPage {
    pub total: u64,
    pub people: Vec<PersonRow>,
}

/// What deleting a person did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonDelete {
    Deleted,
    NotFound,
    /// PacketFence refuses to delete an owner of devices: reassign or delete them first.
    OwnsNodes(u64),
    /// `default` owns unclaimed devices and always exists.
    Protected,
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.backend {
            crate::Backend::Sqlite(s) => s.$method($($arg),*),
            crate::Backend::MySql(m) => m.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// One page of the nodes matching `search`, with the total count.
    pub async fn search_nodes(&self, search: &NodeSearch) -> Result<NodePage, StoreError> {
        dispatch!(self.search_nodes(search))
    }

    /// The node with its administration columns.
    pub async fn get_node_row(&self, mac: Mac) -> Result<Option<NodeRow>, StoreError> {
        dispatch!(self.get_node_row(mac))
    }

    /// Inserts a node (creating its owner if absent) with a `node_change` row. `false` if the
    /// MAC exists (nothing written).
    pub async fn create_node(&self, row: &NodeRow, now: UnixTime) -> Result<bool, StoreError> {
        dispatch!(self.create_node(row, now))
    }

    /// Applies `update` (see [`NodeUpdate::apply`]) and records a `node_change` in the same
    /// transaction, so that every server's node cache drops the old view. Returns the stored
    /// row before and after, `None` for an unknown MAC.
    pub async fn update_node(
        &self,
        mac: Mac,
        update: &NodeUpdate,
        now: UnixTime,
    ) -> Result<Option<(NodeRow, NodeRow)>, StoreError> {
        dispatch!(self.update_node(mac, update, now))
    }

    /// One page of the people matching `search`.
    pub async fn search_persons(&self, search: &PersonSearch) -> Result<PersonPage, StoreError> {
        dispatch!(self.search_persons(search))
    }

    pub async fn get_person_row(&self, pid: &str) -> Result<Option<PersonRow>, StoreError> {
        dispatch!(self.get_person_row(pid))
    }

    /// Inserts a person; `false` if the pid exists (nothing written).
    pub async fn create_person(
        &self,
        person: &crate::Person,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self.create_person(person, now))
    }

    /// Deletes a person who owns no device (and their local-login account).
    pub async fn delete_person(&self, pid: &str) -> Result<PersonDelete, StoreError> {
        dispatch!(self.delete_person(pid))
    }

    /// The plan of a node search's page query (SQLite `EXPLAIN QUERY PLAN` details, MariaDB
    /// `EXPLAIN` rows): which index serves it.
    pub async fn explain_node_search(
        &self,
        search: &NodeSearch,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self.explain_node_search(search))
    }

    /// Removes a person's local-login account; `false` if there was none.
    pub async fn delete_local_user(&self, pid: &str) -> Result<bool, StoreError> {
        dispatch!(self.delete_local_user(pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_filters() {
        let s = NodeSearch {
            mac_prefix: Some("AA-BB-c".into()),
            ..NodeSearch::default()
        };
        let (w, a) = s.where_clause();
        assert_eq!(w, " WHERE n.mac >= ? AND n.mac < ?");
        assert_eq!(
            a,
            vec![Arg::Text("aa:bb:c".into()), Arg::Text("aa:bb:c~".into())]
        );
        let s = NodeSearch {
            mac_contains: Some("bb.cc".into()),
            ..NodeSearch::default()
        };
        assert_eq!(s.where_clause().1, vec![Arg::Text("%bbcc%".into())]);
        let s = NodeSearch {
            mac_prefix: Some("zz".into()),
            ..NodeSearch::default()
        };
        assert_eq!(s.where_clause().0, " WHERE 1 = 0");
        assert_eq!(mac_digits("aabbccddeeff00"), None);
        assert_eq!(NodeSearch::default().where_clause().0, "");
    }

    #[test]
    fn text_is_escaped_and_order_breaks_ties() {
        let s = NodeSearch {
            text: Some("50%_Off!".into()),
            sort: NodeSort::LastSeen,
            descending: true,
            ..NodeSearch::default()
        };
        let (_, a) = s.where_clause();
        assert_eq!(a[0], Arg::Text("%50!%!_off!!%".into()));
        assert_eq!(s.order_clause(), " ORDER BY n.last_seen DESC, n.mac DESC");
        assert_eq!(
            NodeSearch {
                limit: 5000,
                ..NodeSearch::default()
            }
            .limit(),
            1000
        );
    }

    #[test]
    fn update_sets_regdate_only_when_registering() {
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let row = NodeRow {
            node: Node::new_unregistered(mac, 10),
            computername: None,
            detect_date: Some(10),
        };
        let u = NodeUpdate {
            status: Some(NodeStatus::Registered),
            role: Some(Some("staff".into())),
            ..NodeUpdate::default()
        };
        let after = u.apply(&row, 20);
        assert_eq!(after.node.regdate, Some(20));
        assert_eq!(after.node.role.as_deref(), Some("staff"));
        // Already registered: the registration date stays.
        assert_eq!(u.apply(&after, 30).node.regdate, Some(20));
        assert!(NodeUpdate::default().is_empty());
    }
}

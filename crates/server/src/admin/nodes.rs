//! Devices (PacketFence "nodes"): search, show, create, update, delete; the actions register,
//! deregister and reevaluate access (CoA/Disconnect); a device's location and IP history and
//! its RADIUS decisions from the audit log of every server.
//!
//! ```text
//!  GET    /nodes                      search (filters, sort, paging, total)     read
//!  POST   /nodes                      create                                    devices · data
//!  GET    /nodes/{mac}                show                                      read
//!  PATCH  /nodes/{mac}                role, status, owner, notes, expiry, name  devices · data
//!  DELETE /nodes/{mac}                delete                                    devices · data
//!  POST   /nodes/{mac}/register       role + expiry (date or access duration)   devices · data
//!  POST   /nodes/{mac}/deregister                                               devices · data
//!  POST   /nodes/{mac}/reevaluate     CoA/Disconnect to the switch, its outcome devices
//!  GET    /nodes/{mac}/locations      locationlog                               read
//!  GET    /nodes/{mac}/ips            ip4log                                    read
//!  GET    /nodes/{mac}/decisions      RADIUS audit records, every server        read
//! ```
//!
//! Every write goes through `Store` methods that record a `node_change` row in the same
//! transaction (every server's node cache drops the old view within its poll interval), and
//! is recorded in the admin audit log with field-level before/after. A change of what the
//! RADIUS decision reads (status, role, expiry) also reevaluates the device's access in the
//! background, as the portal does after a registration: a device already on a port is
//! re-authenticated and gets its new VLAN.

use super::api::Endpoint;
use super::auth::Principal;
use super::error::ApiError;
use super::json::{Body, Params};
use super::{AdminState, AppState, Writes};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ironfence_admin::Access;
use ironfence_core::{Mac, Node, NodeStatus, UnixTime};
use ironfence_store::admin_nodes::{NodeRow, NodeSearch, NodeSort, NodeUpdate, mac_digits};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

// The admin audit log (helper A's); users.rs takes it from here too.
pub(crate) use super::audit_log;

/// Longest free text kept (notes, computer name, owner).
const MAX_TEXT: usize = 255;
const MAX_NOTES: usize = 4096;
/// How long each cluster member gets to answer an audit query.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// A node's registration status as the API spells it (PacketFence's `node.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Reg,
    Unreg,
    Pending,
}

impl From<Status> for NodeStatus {
    fn from(s: Status) -> NodeStatus {
        match s {
            Status::Reg => NodeStatus::Registered,
            Status::Unreg => NodeStatus::Unregistered,
            Status::Pending => NodeStatus::Pending,
        }
    }
}

impl From<NodeStatus> for Status {
    fn from(s: NodeStatus) -> Status {
        match s {
            NodeStatus::Registered => Status::Reg,
            NodeStatus::Unregistered => Status::Unreg,
            NodeStatus::Pending => Status::Pending,
        }
    }
}

/// A device. Times are UNIX seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeJson {
    pub mac: String,
    pub status: Status,
    /// Role (`category`); absent: `default` once registered.
    pub role: Option<String>,
    /// Owner (person id).
    pub pid: String,
    pub regdate: Option<i64>,
    /// When the registration expires (absent: never).
    pub unregdate: Option<i64>,
    pub last_seen: Option<i64>,
    pub detect_date: Option<i64>,
    pub notes: Option<String>,
    pub computername: Option<String>,
}

impl From<&NodeRow> for NodeJson {
    fn from(r: &NodeRow) -> NodeJson {
        NodeJson {
            mac: r.node.mac.to_string(),
            status: r.node.status.into(),
            role: r.node.role.clone(),
            pid: r.node.pid.clone(),
            regdate: r.node.regdate,
            unregdate: r.node.unregdate,
            last_seen: r.node.last_seen,
            detect_date: r.detect_date,
            notes: r.node.notes.clone(),
            computername: r.computername.clone(),
        }
    }
}

/// Sort keys of a device search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Mac,
    LastSeen,
    Regdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

/// Device search parameters; every one given must match.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeQuery {
    /// MAC prefix, any spelling (`aa:bb:cc`, `AABB.CC`): uses the primary key.
    pub mac: Option<String>,
    /// Hex digits anywhere in the MAC (scans the table).
    pub mac_contains: Option<String>,
    /// Owner (person id), exact.
    pub pid: Option<String>,
    pub status: Option<Status>,
    /// Role, exact.
    pub role: Option<String>,
    /// Case-insensitive text in the computer name or the notes (scans the table).
    pub q: Option<String>,
    /// Last seen at or after (UNIX seconds).
    pub seen_since: Option<i64>,
    /// Last seen before (UNIX seconds).
    pub seen_until: Option<i64>,
    /// `mac` (default), `last_seen` or `regdate`.
    pub sort: Option<SortKey>,
    /// `asc` (default) or `desc`.
    pub order: Option<Order>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<u32>,
    /// Rows skipped.
    pub offset: Option<u64>,
}

/// One page of a device search.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodePage {
    /// Matching devices in all pages.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    pub nodes: Vec<NodeJson>,
}

/// `Some(v)` for a present field (`null` included): tells "clear it" from "leave it".
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A new device.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNode {
    pub mac: String,
    /// Owner (created if absent; default `default`).
    pub pid: Option<String>,
    /// Status (default `unreg`).
    pub status: Option<Status>,
    /// A role of roles.conf.
    pub role: Option<String>,
    /// Registration expiry, UNIX seconds.
    pub unregdate: Option<i64>,
    pub notes: Option<String>,
    pub computername: Option<String>,
}

/// Changes to a device: a field absent is left as it is, `null` clears it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNode {
    /// A role of roles.conf, or null (the `default` role).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub role: Option<Option<String>>,
    pub status: Option<Status>,
    /// Owner (created if absent).
    pub pid: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub notes: Option<Option<String>>,
    /// Registration expiry (UNIX seconds), or null for never.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub unregdate: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub computername: Option<Option<String>>,
}

/// Registering a device: its role and how long the registration lasts (at most one of
/// `unregdate` and `access_duration`; neither: never expires).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterNode {
    /// A role of roles.conf (default: the device's current role, else `default`).
    pub role: Option<String>,
    /// Owner (default: the current owner).
    pub pid: Option<String>,
    /// Expiry, UNIX seconds.
    pub unregdate: Option<i64>,
    /// Expiry as a duration from now (`1h`, `7d`, `1h30m`).
    pub access_duration: Option<String>,
}

/// A device after a change, and whether its access is being reevaluated.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeChanged {
    pub node: NodeJson,
    /// `scheduled`: a CoA/Disconnect goes to the switch holding its session (see the server
    /// log for its outcome, or call /reevaluate); `not-needed`: nothing the RADIUS decision
    /// reads changed.
    pub reevaluation: String,
}

/// One CoA/Disconnect request sent.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReevaluationStep {
    /// `coa` or `disconnect`.
    pub kind: String,
    /// `ack`, `nak` or `timeout`.
    pub result: String,
    /// RFC 5176 Error-Cause of a NAK.
    pub error_cause: Option<String>,
    pub transmissions: u32,
}

/// What a reevaluation did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReevaluationJson {
    pub request_id: String,
    pub mac: String,
    /// switches.conf section of the switch holding the session.
    pub switch: String,
    /// Where the requests were sent.
    pub destination: String,
    /// The switch acknowledged the last request.
    pub acked: bool,
    pub steps: Vec<ReevaluationStep>,
}

/// One location (switch, port, VLAN) of a device.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LocationJson {
    pub switch: String,
    pub switch_ip: String,
    pub port: Option<String>,
    pub vlan: Option<String>,
    pub role: Option<String>,
    pub ssid: Option<String>,
    pub username: Option<String>,
    pub connection_type: Option<String>,
    pub start_time: i64,
    /// Absent: the session is open.
    pub end_time: Option<i64>,
}

/// One IPv4 address a device held.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IpJson {
    pub ip: String,
    pub start_time: i64,
    /// Absent: still held.
    pub end_time: Option<i64>,
}

/// How many history rows to return.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Which RADIUS decisions of a device to return.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// At or after (UNIX seconds).
    pub since: Option<i64>,
    /// Before (UNIX seconds).
    pub until: Option<i64>,
    /// The newest N (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A RADIUS decision from the audit log: why this device got this answer, where and on
/// which server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DecisionJson {
    /// RFC 3339, microseconds.
    pub time: String,
    /// The server that answered (its cluster.conf name, or this server's identity).
    pub server: String,
    /// That server's id of the request (in its logs and in the CoA it caused).
    pub request_id: u64,
    pub mac: Option<String>,
    /// `auth`, `acct` or `status`.
    pub request_type: String,
    /// `accept`, `reject`, …
    pub outcome: String,
    /// The rule or reason of the decision.
    pub reason: String,
    pub vlan: Option<String>,
    pub role: Option<String>,
    /// switches.conf section.
    pub switch: Option<String>,
    pub nas_ip: String,
    pub nas_port: Option<String>,
    pub user_name: Option<String>,
    pub calling_station_id: Option<String>,
    pub called_station_id: Option<String>,
}

/// Decisions gathered from the cluster, with the servers that did not answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DecisionList {
    /// Oldest first.
    pub decisions: Vec<DecisionJson>,
    /// Servers whose records are missing (did not answer), with the reason.
    pub missing: Vec<MissingServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MissingServer {
    pub server: String,
    pub reason: String,
}

pub fn endpoints() -> Vec<Endpoint> {
    let mac = "MAC address (any common spelling)";
    vec![
        Endpoint::get("/nodes", "Search devices")
            .tag("nodes")
            .access(Access::Read)
            .query::<NodeQuery>()
            .returns::<NodePage>()
            .to(search_h),
        Endpoint::post("/nodes", "Create a device")
            .tag("nodes")
            .access(Access::Devices)
            .writes(Writes::Data)
            .body::<CreateNode>()
            .returns_with::<NodeJson>(StatusCode::CREATED)
            .to(create_h),
        Endpoint::get("/nodes/{mac}", "Show a device")
            .tag("nodes")
            .access(Access::Read)
            .path_param("mac", mac)
            .returns::<NodeJson>()
            .to(show_h),
        Endpoint::patch("/nodes/{mac}", "Change a device")
            .tag("nodes")
            .access(Access::Devices)
            .writes(Writes::Data)
            .path_param("mac", mac)
            .body::<UpdateNode>()
            .returns::<NodeChanged>()
            .to(update_h),
        Endpoint::delete("/nodes/{mac}", "Delete a device")
            .tag("nodes")
            .access(Access::Devices)
            .writes(Writes::Data)
            .path_param("mac", mac)
            .no_content()
            .to(delete_h),
        Endpoint::post("/nodes/{mac}/register", "Register a device")
            .tag("nodes")
            .access(Access::Devices)
            .writes(Writes::Data)
            .path_param("mac", mac)
            .body::<RegisterNode>()
            .returns::<NodeChanged>()
            .to(register_h),
        Endpoint::post("/nodes/{mac}/deregister", "Deregister a device")
            .tag("nodes")
            .access(Access::Devices)
            .writes(Writes::Data)
            .path_param("mac", mac)
            .returns::<NodeChanged>()
            .to(deregister_h),
        Endpoint::post(
            "/nodes/{mac}/reevaluate",
            "Reevaluate a device's access (CoA/Disconnect)",
        )
        .tag("nodes")
        .access(Access::Devices)
        .path_param("mac", mac)
        .returns::<ReevaluationJson>()
        .to(reevaluate_h),
        Endpoint::get("/nodes/{mac}/locations", "A device's location history")
            .tag("nodes")
            .access(Access::Read)
            .path_param("mac", mac)
            .query::<HistoryQuery>()
            .returns::<Vec<LocationJson>>()
            .to(locations_h),
        Endpoint::get("/nodes/{mac}/ips", "A device's IPv4 history")
            .tag("nodes")
            .access(Access::Read)
            .path_param("mac", mac)
            .returns::<Vec<IpJson>>()
            .to(ips_h),
        Endpoint::get(
            "/nodes/{mac}/decisions",
            "A device's RADIUS decisions (every server's audit log)",
        )
        .tag("nodes")
        .access(Access::Read)
        .path_param("mac", mac)
        .query::<DecisionQuery>()
        .returns::<DecisionList>()
        .to(decisions_h),
    ]
}

pub(crate) fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The MAC of a path, or 404 (a path that cannot name a device names none).
pub(crate) fn path_mac(raw: &str) -> Result<Mac, ApiError> {
    Mac::parse(raw).map_err(|e| ApiError::not_found(format!("no such device: {e}")))
}

pub(crate) fn check_text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.len() > max {
        return Err(ApiError::invalid(
            field,
            format!("at most {max} bytes (got {})", v.len()),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::invalid(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(())
}

pub(crate) fn check_pid(field: &str, pid: &str) -> Result<(), ApiError> {
    if pid.trim().is_empty() || pid.trim() != pid {
        return Err(ApiError::invalid(
            field,
            "an owner id is not empty and has no surrounding spaces",
        ));
    }
    check_text(field, pid, MAX_TEXT)
}

fn check_role(state: &AdminState, field: &str, role: &str) -> Result<(), ApiError> {
    let config = state.shared.config();
    if config.roles.contains(role) {
        return Ok(());
    }
    let known: Vec<&str> = config.roles.names().collect();
    Err(ApiError::invalid(
        field,
        format!(
            "no role {role:?} in roles.conf (known: {})",
            known.join(", ")
        ),
    ))
}

pub(crate) fn check_time(field: &str, t: i64) -> Result<(), ApiError> {
    // Year 1970 to 9999: anything else is a unit mistake (milliseconds, negative).
    if !(0..=253_402_300_799).contains(&t) {
        return Err(ApiError::invalid(
            field,
            "a time in UNIX seconds (between 1970 and 9999)",
        ));
    }
    Ok(())
}

fn opt<T: ToString>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

/// The field-level difference of two rows, for the admin audit log.
fn diff(before: Option<&NodeRow>, after: Option<&NodeRow>) -> Vec<audit_log::FieldChange> {
    let fields = |r: Option<&NodeRow>| -> Vec<(&'static str, Option<String>)> {
        let Some(r) = r else {
            return [
                "status",
                "role",
                "pid",
                "unregdate",
                "regdate",
                "notes",
                "computername",
            ]
            .into_iter()
            .map(|f| (f, None))
            .collect();
        };
        vec![
            ("status", Some(r.node.status.as_str().to_string())),
            ("role", r.node.role.clone()),
            ("pid", Some(r.node.pid.clone())),
            ("unregdate", opt(&r.node.unregdate)),
            ("regdate", opt(&r.node.regdate)),
            ("notes", r.node.notes.clone()),
            ("computername", r.computername.clone()),
        ]
    };
    fields(before)
        .into_iter()
        .zip(fields(after))
        .filter(|(b, a)| b.1 != a.1)
        .map(|((field, before), (_, after))| audit_log::FieldChange {
            field: field.to_string(),
            before,
            after,
        })
        .collect()
}

async fn audit(
    state: &AdminState,
    who: &Principal,
    action: &str,
    mac: Mac,
    fields: Vec<audit_log::FieldChange>,
) -> Result<(), ApiError> {
    audit_log::record(
        state,
        who,
        audit_log::Change {
            action: action.to_string(),
            target: format!("node {mac}"),
            fields,
        },
    )
    .await
}

/// Whether the change touches what the RADIUS decision reads.
fn decision_changed(before: &NodeRow, after: &NodeRow) -> bool {
    before.node.status != after.node.status
        || before.node.role != after.node.role
        || before.node.unregdate != after.node.unregdate
}

/// Starts a background reevaluation when the decision may change; what to report.
fn reevaluate_if(state: &AdminState, before: &NodeRow, after: &NodeRow) -> String {
    if decision_changed(before, after) {
        crate::portal::after_registration(&state.shared, after.node.mac);
        "scheduled".into()
    } else {
        "not-needed".into()
    }
}

// ---- service functions (the API handlers and the pages call these) ----

/// `GET /nodes`.
pub async fn search(state: &AdminState, q: NodeQuery) -> Result<NodePage, ApiError> {
    for (field, v) in [("mac", &q.mac), ("mac_contains", &q.mac_contains)] {
        if let Some(v) = v
            && mac_digits(v).is_none()
        {
            return Err(ApiError::invalid(
                field,
                "hex digits of a MAC address (separators : - . allowed), at most 12",
            ));
        }
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=ironfence_store::admin_nodes::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    if let Some(r) = &q.role {
        check_text("role", r, MAX_TEXT)?;
    }
    let search = NodeSearch {
        mac_prefix: q.mac,
        mac_contains: q.mac_contains,
        pid: q.pid,
        status: q.status.map(Into::into),
        role: q.role,
        text: q.q,
        seen_since: q.seen_since,
        seen_until: q.seen_until,
        sort: match q.sort {
            None | Some(SortKey::Mac) => NodeSort::Mac,
            Some(SortKey::LastSeen) => NodeSort::LastSeen,
            Some(SortKey::Regdate) => NodeSort::Regdate,
        },
        descending: q.order == Some(Order::Desc),
        limit,
        offset: q.offset.unwrap_or(0),
    };
    let page = state
        .shared
        .store
        .search_nodes(&search)
        .await
        .map_err(|e| ApiError::store("searching devices", e))?;
    Ok(NodePage {
        total: page.total,
        limit,
        offset: search.offset,
        nodes: page.nodes.iter().map(NodeJson::from).collect(),
    })
}

async fn load(state: &AdminState, mac: Mac) -> Result<NodeRow, ApiError> {
    state
        .shared
        .store
        .get_node_row(mac)
        .await
        .map_err(|e| ApiError::store("reading the device", e))?
        .ok_or_else(|| ApiError::not_found(format!("no device {mac}")))
}

/// `GET /nodes/{mac}`.
pub async fn show(state: &AdminState, mac: Mac) -> Result<NodeJson, ApiError> {
    Ok(NodeJson::from(&load(state, mac).await?))
}

/// `POST /nodes`.
pub async fn create(
    state: &AdminState,
    who: &Principal,
    input: CreateNode,
) -> Result<NodeJson, ApiError> {
    let mac = Mac::parse(&input.mac).map_err(|e| ApiError::invalid("mac", e.to_string()))?;
    let pid = input.pid.unwrap_or_else(|| "default".into());
    check_pid("pid", &pid)?;
    if let Some(r) = &input.role {
        check_role(state, "role", r)?;
    }
    if let Some(t) = input.unregdate {
        check_time("unregdate", t)?;
    }
    if let Some(n) = &input.notes {
        check_text("notes", n, MAX_NOTES)?;
    }
    if let Some(c) = &input.computername {
        check_text("computername", c, MAX_TEXT)?;
    }
    let now = unix_now();
    let status: NodeStatus = input.status.unwrap_or(Status::Unreg).into();
    let row = NodeRow {
        node: Node {
            mac,
            status,
            role: input.role,
            pid,
            regdate: (status == NodeStatus::Registered).then_some(now),
            unregdate: input.unregdate,
            last_seen: None,
            notes: input.notes,
        },
        computername: input.computername,
        detect_date: Some(now),
    };
    let created = state
        .shared
        .store
        .create_node(&row, now)
        .await
        .map_err(|e| ApiError::store("creating the device", e))?;
    if !created {
        return Err(ApiError::conflict(format!(
            "device {mac} exists: change it with PATCH /nodes/{mac}"
        )));
    }
    let stored = load(state, mac).await?;
    audit(state, who, "node.create", mac, diff(None, Some(&stored))).await?;
    Ok(NodeJson::from(&stored))
}

/// `PATCH /nodes/{mac}`.
pub async fn update(
    state: &AdminState,
    who: &Principal,
    mac: Mac,
    input: UpdateNode,
) -> Result<NodeChanged, ApiError> {
    if let Some(Some(r)) = &input.role {
        check_role(state, "role", r)?;
    }
    if let Some(p) = &input.pid {
        check_pid("pid", p)?;
    }
    if let Some(Some(n)) = &input.notes {
        check_text("notes", n, MAX_NOTES)?;
    }
    if let Some(Some(c)) = &input.computername {
        check_text("computername", c, MAX_TEXT)?;
    }
    if let Some(Some(t)) = input.unregdate {
        check_time("unregdate", t)?;
    }
    let update = NodeUpdate {
        role: input.role,
        status: input.status.map(Into::into),
        pid: input.pid,
        notes: input.notes,
        unregdate: input.unregdate,
        computername: input.computername,
    };
    apply(state, who, mac, &update, "node.update").await
}

async fn apply(
    state: &AdminState,
    who: &Principal,
    mac: Mac,
    update: &NodeUpdate,
    action: &str,
) -> Result<NodeChanged, ApiError> {
    let (before, after) = state
        .shared
        .store
        .update_node(mac, update, unix_now())
        .await
        .map_err(|e| ApiError::store("changing the device", e))?
        .ok_or_else(|| ApiError::not_found(format!("no device {mac}")))?;
    let fields = diff(Some(&before), Some(&after));
    if !fields.is_empty() {
        audit(state, who, action, mac, fields).await?;
    }
    Ok(NodeChanged {
        reevaluation: reevaluate_if(state, &before, &after),
        node: NodeJson::from(&after),
    })
}

/// `DELETE /nodes/{mac}`.
pub async fn delete(state: &AdminState, who: &Principal, mac: Mac) -> Result<(), ApiError> {
    let before = load(state, mac).await?;
    let deleted = state
        .shared
        .store
        .delete_node(mac)
        .await
        .map_err(|e| ApiError::store("deleting the device", e))?;
    if !deleted {
        return Err(ApiError::not_found(format!("no device {mac}")));
    }
    audit(state, who, "node.delete", mac, diff(Some(&before), None)).await
}

/// `POST /nodes/{mac}/register`.
pub async fn register(
    state: &AdminState,
    who: &Principal,
    mac: Mac,
    input: RegisterNode,
) -> Result<NodeChanged, ApiError> {
    let now = unix_now();
    let unregdate = match (input.unregdate, &input.access_duration) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "access_duration",
                "give unregdate or access_duration, not both",
            ));
        }
        (Some(t), None) => {
            check_time("unregdate", t)?;
            Some(t)
        }
        (None, Some(d)) => {
            let d = humantime::parse_duration(d).map_err(|e| {
                ApiError::invalid("access_duration", format!("{e} (e.g. 1h, 7d, 1h30m)"))
            })?;
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if secs == 0 {
                return Err(ApiError::invalid("access_duration", "longer than 0s"));
            }
            Some(now.saturating_add(secs))
        }
        (None, None) => None,
    };
    let before = load(state, mac).await?;
    let role = input
        .role
        .or_else(|| before.node.role.clone())
        .unwrap_or_else(|| "default".into());
    check_role(state, "role", &role)?;
    if let Some(p) = &input.pid {
        check_pid("pid", p)?;
    }
    let update = NodeUpdate {
        role: Some(Some(role)),
        status: Some(NodeStatus::Registered),
        pid: input.pid,
        unregdate: Some(unregdate),
        ..NodeUpdate::default()
    };
    apply(state, who, mac, &update, "node.register").await
}

/// `POST /nodes/{mac}/deregister`: back to `unreg` (role and owner kept, as PacketFence).
pub async fn deregister(
    state: &AdminState,
    who: &Principal,
    mac: Mac,
) -> Result<NodeChanged, ApiError> {
    let update = NodeUpdate {
        status: Some(NodeStatus::Unregistered),
        ..NodeUpdate::default()
    };
    apply(state, who, mac, &update, "node.deregister").await
}

/// `POST /nodes/{mac}/reevaluate`: waits for the switch's answer (or the retransmissions to
/// run out) and reports it.
pub async fn reevaluate(
    state: &AdminState,
    who: &Principal,
    mac: Mac,
) -> Result<ReevaluationJson, ApiError> {
    load(state, mac).await?;
    use crate::coa::Error;
    use ironfence_radius::dynauth::StepResult;
    let r = crate::coa::reevaluate_access(&state.shared, mac)
        .await
        .map_err(|e| match e {
            Error::NoLocation(_) | Error::UnknownSwitch { .. } => ApiError::conflict(e.to_string()),
            Error::Store { source, .. } => ApiError::store("reading the device's location", source),
            other => ApiError::internal("sending the CoA/Disconnect", other),
        })?;
    let out = ReevaluationJson {
        request_id: r.request_id.to_string(),
        mac: mac.to_string(),
        switch: r.switch_id.clone(),
        destination: r.destination.to_string(),
        acked: r.acked(),
        steps: r
            .outcome
            .steps
            .iter()
            .map(|s| {
                let (result, cause) = match s.result {
                    StepResult::Ack => ("ack", None),
                    StepResult::Nak(c) => ("nak", c.map(|c| c.to_string())),
                    StepResult::Timeout => ("timeout", None),
                };
                ReevaluationStep {
                    kind: s.kind.label().to_string(),
                    result: result.into(),
                    error_cause: cause,
                    transmissions: s.transmissions,
                }
            })
            .collect(),
    };
    audit(
        state,
        who,
        "node.reevaluate",
        mac,
        vec![audit_log::FieldChange {
            field: "coa".into(),
            before: None,
            after: Some(format!(
                "request {} to {}: {}",
                out.request_id,
                out.switch,
                if out.acked {
                    "acknowledged"
                } else {
                    "not acknowledged"
                }
            )),
        }],
    )
    .await?;
    Ok(out)
}

/// `GET /nodes/{mac}/locations`.
pub async fn locations(
    state: &AdminState,
    mac: Mac,
    q: HistoryQuery,
) -> Result<Vec<LocationJson>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    load(state, mac).await?;
    let rows = state
        .shared
        .store
        .locationlog(mac, limit)
        .await
        .map_err(|e| ApiError::store("reading the location history", e))?;
    Ok(rows
        .into_iter()
        .map(|e| LocationJson {
            switch: e.switch_id,
            switch_ip: e.switch_ip,
            port: e.port,
            vlan: e.vlan,
            role: e.role,
            ssid: e.ssid,
            username: e.username,
            connection_type: e.connection_type,
            start_time: e.start_time,
            end_time: e.end_time,
        })
        .collect())
}

/// `GET /nodes/{mac}/ips`.
pub async fn ips(state: &AdminState, mac: Mac) -> Result<Vec<IpJson>, ApiError> {
    load(state, mac).await?;
    let rows = state
        .shared
        .store
        .ip4log_for(mac)
        .await
        .map_err(|e| ApiError::store("reading the IP history", e))?;
    Ok(rows
        .into_iter()
        .map(|e| IpJson {
            ip: e.ip.to_string(),
            start_time: e.start_time,
            end_time: e.end_time,
        })
        .collect())
}

pub(crate) fn decision_json(server: String, r: ironfence_audit::AuditRecord) -> DecisionJson {
    let at = std::time::UNIX_EPOCH + Duration::from_micros(u64::try_from(r.time_us).unwrap_or(0));
    DecisionJson {
        time: humantime::format_rfc3339_micros(at).to_string(),
        server,
        request_id: r.request_id,
        mac: r.mac.map(|m| m.to_string()),
        request_type: r.request_type.as_str().to_string(),
        outcome: r.outcome,
        reason: r.reason,
        vlan: r.vlan,
        role: r.role,
        switch: r.switch_id,
        nas_ip: r.nas_ip,
        nas_port: r.nas_port,
        user_name: r.user_name,
        calling_station_id: r.calling_station_id,
        called_station_id: r.called_station_id,
    }
}

/// The audit records of `query` from every server, as the API shows them.
pub(crate) async fn gather(
    state: &AdminState,
    query: ironfence_audit::Query,
) -> Result<DecisionList, ApiError> {
    let config = state.shared.config();
    let g = crate::audit::query_cluster(&config, query, PEER_TIMEOUT).await;
    if g.records.is_empty() && !g.missing.is_empty() && !g.in_cluster {
        let why = g.missing[0].1.clone();
        return Err(ApiError::internal("reading the audit log", why));
    }
    Ok(DecisionList {
        decisions: g
            .records
            .into_iter()
            .map(|(s, r)| decision_json(s, r))
            .collect(),
        missing: g
            .missing
            .into_iter()
            .map(|(server, reason)| MissingServer { server, reason })
            .collect(),
    })
}

pub(crate) fn seconds_to_us(field: &str, t: Option<i64>) -> Result<Option<i64>, ApiError> {
    t.map(|t| {
        check_time(field, t)?;
        Ok(t * 1_000_000)
    })
    .transpose()
}

/// `GET /nodes/{mac}/decisions`.
pub async fn decisions(
    state: &AdminState,
    mac: Mac,
    q: DecisionQuery,
) -> Result<DecisionList, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    let query = ironfence_audit::Query {
        mac: Some(mac),
        since_us: seconds_to_us("since", q.since)?,
        until_us: seconds_to_us("until", q.until)?,
        limit: Some(limit as usize),
    };
    gather(state, query).await
}

// ---- thin handlers ----

type Who = Extension<Principal>;
type St = State<AppState>;

async fn search_h(
    State(s): St,
    Params(q): Params<NodeQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(search(&s, q).await?))
}

async fn create_h(
    State(s): St,
    Extension(who): Who,
    Body(b): Body<CreateNode>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, axum::Json(create(&s, &who, b).await?)))
}

async fn show_h(State(s): St, Path(mac): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(show(&s, path_mac(&mac)?).await?))
}

async fn update_h(
    State(s): St,
    Extension(who): Who,
    Path(mac): Path<String>,
    Body(b): Body<UpdateNode>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(update(&s, &who, path_mac(&mac)?, b).await?))
}

async fn delete_h(
    State(s): St,
    Extension(who): Who,
    Path(mac): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    delete(&s, &who, path_mac(&mac)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn register_h(
    State(s): St,
    Extension(who): Who,
    Path(mac): Path<String>,
    Body(b): Body<RegisterNode>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(register(&s, &who, path_mac(&mac)?, b).await?))
}

async fn deregister_h(
    State(s): St,
    Extension(who): Who,
    Path(mac): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(deregister(&s, &who, path_mac(&mac)?).await?))
}

async fn reevaluate_h(
    State(s): St,
    Extension(who): Who,
    Path(mac): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(reevaluate(&s, &who, path_mac(&mac)?).await?))
}

async fn locations_h(
    State(s): St,
    Path(mac): Path<String>,
    Params(q): Params<HistoryQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(locations(&s, path_mac(&mac)?, q).await?))
}

async fn ips_h(State(s): St, Path(mac): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ips(&s, path_mac(&mac)?).await?))
}

async fn decisions_h(
    State(s): St,
    Path(mac): Path<String>,
    Params(q): Params<DecisionQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(decisions(&s, path_mac(&mac)?, q).await?))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench;

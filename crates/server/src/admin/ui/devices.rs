//! Device pages (`/admin/devices…`): the search, and one device's page with its edit form,
//! the register/deregister/reevaluate actions, its location and IP history and the RADIUS
//! decisions of every server ("why did this device get this VLAN"). Every read and write
//! goes through `admin::nodes` (the API's code: validation, node_change, audit, CoA).

use super::{Flash, FormData, Page, PageError, PageUser, field_errors, redirect, render_status};
use crate::admin::nodes::{
    self, DecisionQuery, HistoryQuery, NodeQuery, RegisterNode, Status, UpdateNode, path_mac,
};
use crate::admin::{AdminState, ApiError, AppState, Writes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ironfence_admin::Access;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub const TEMPLATES: &[(&str, &str)] = &[
    ("devices.html", include_str!("templates/devices.html")),
    ("device.html", include_str!("templates/device.html")),
];

pub fn pages() -> Vec<Page> {
    let write = |p: Page| p.access(Access::Devices).writes(Writes::Data);
    vec![
        Page::get("/devices").to(list),
        Page::get("/devices/{mac}").to(show),
        write(Page::post("/devices/{mac}")).to(save),
        write(Page::post("/devices/{mac}/register")).to(register),
        write(Page::post("/devices/{mac}/deregister")).to(deregister),
        write(Page::post("/devices/{mac}/reevaluate")).to(reevaluate),
    ]
}

/// Page size of the search.
const PAGE: u32 = 50;

/// UNIX seconds as the pages show them (UTC, to the second); empty when absent.
pub(crate) fn when(t: Option<i64>) -> String {
    match t.and_then(|t| u64::try_from(t).ok()) {
        Some(t) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
        )
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC"),
        None => String::new(),
    }
}

/// A device as a table row or the detail page shows it.
#[derive(Serialize)]
pub(crate) struct DeviceRow {
    pub mac: String,
    pub href: String,
    pub owner_href: String,
    pub status: &'static str,
    pub role: Option<String>,
    pub pid: String,
    pub regdate: String,
    pub unregdate: String,
    pub last_seen: String,
    pub detect_date: String,
    pub notes: Option<String>,
    pub computername: Option<String>,
}

pub(crate) fn status_name(s: Status) -> &'static str {
    match s {
        Status::Reg => "reg",
        Status::Unreg => "unreg",
        Status::Pending => "pending",
    }
}

impl From<nodes::NodeJson> for DeviceRow {
    fn from(n: nodes::NodeJson) -> DeviceRow {
        DeviceRow {
            href: format!("/admin/devices/{}", n.mac),
            owner_href: format!(
                "/admin/users/{}",
                form_urlencoded::byte_serialize(n.pid.as_bytes()).collect::<String>()
            ),
            status: status_name(n.status),
            role: n.role,
            pid: n.pid,
            regdate: when(n.regdate),
            unregdate: when(n.unregdate),
            last_seen: when(n.last_seen),
            detect_date: when(n.detect_date),
            notes: n.notes,
            computername: n.computername,
            mac: n.mac,
        }
    }
}

fn roles(state: &AdminState) -> Vec<String> {
    state
        .shared
        .config()
        .roles
        .names()
        .map(str::to_string)
        .collect()
}

/// The search form's fields: empty ones are not filters.
fn query_of(form: &HashMap<String, String>) -> Result<NodeQuery, ApiError> {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let status = match get("status").as_deref() {
        None => None,
        Some("reg") => Some(Status::Reg),
        Some("unreg") => Some(Status::Unreg),
        Some("pending") => Some(Status::Pending),
        Some(_) => return Err(ApiError::invalid("status", "reg, unreg or pending")),
    };
    let offset = match get("offset") {
        None => None,
        Some(o) => Some(
            o.parse::<u64>()
                .map_err(|_| ApiError::invalid("offset", "a number of rows"))?,
        ),
    };
    // Hex digits only: a prefix (uses the key); with separators in the middle too.
    Ok(NodeQuery {
        mac: get("mac"),
        pid: get("pid"),
        status,
        role: get("role"),
        q: get("q"),
        sort: Some(nodes::SortKey::Mac),
        limit: Some(PAGE),
        offset,
        ..NodeQuery::default()
    })
}

/// `/admin/devices?…` with these fields and another offset.
fn page_link(form: &BTreeMap<String, String>, offset: u64) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        if k != "offset" && !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.append_pair("offset", &offset.to_string());
    format!("/admin/devices?{}", q.finish())
}

async fn list(
    State(state): State<AppState>,
    who: PageUser,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let form: BTreeMap<String, String> = raw
        .iter()
        .filter(|(k, _)| ["mac", "pid", "status", "role", "q"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    let result = match query_of(&raw) {
        Ok(q) => nodes::search(&state, q).await,
        Err(e) => Err(e),
    };
    let (status, ctx) = match result {
        Ok(p) => {
            let prev =
                (p.offset > 0).then(|| page_link(&form, p.offset.saturating_sub(PAGE as u64)));
            let next = (p.offset + (p.nodes.len() as u64) < p.total)
                .then(|| page_link(&form, p.offset + PAGE as u64));
            let first = if p.nodes.is_empty() { 0 } else { p.offset + 1 };
            let last = p.offset + p.nodes.len() as u64;
            let rows: Vec<DeviceRow> = p.nodes.into_iter().map(DeviceRow::from).collect();
            (
                StatusCode::OK,
                minijinja::context! {
                    rows, total => p.total, first, last, prev, next,
                    form, roles => roles(&state), errors => HashMap::<String, String>::new(),
                },
            )
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => (
            StatusCode::UNPROCESSABLE_ENTITY,
            minijinja::context! {
                rows => Vec::<DeviceRow>::new(), total => 0, first => 0, last => 0,
                form, roles => roles(&state), errors => field_errors(&e), message => e.message.clone(),
            },
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(render_status(&state, &who, status, "devices.html", ctx))
}

#[derive(Serialize)]
struct LocationRow {
    switch: String,
    switch_ip: String,
    port: Option<String>,
    vlan: Option<String>,
    role: Option<String>,
    ssid: Option<String>,
    username: Option<String>,
    connection_type: Option<String>,
    start: String,
    end: String,
}

#[derive(Serialize)]
struct IpRow {
    ip: String,
    start: String,
    end: String,
}

/// The device page, with the form as entered and its errors when a save was refused.
async fn page(
    state: &AdminState,
    who: &PageUser,
    raw_mac: &str,
    status: StatusCode,
    error: Option<&ApiError>,
    form: Option<&FormData>,
) -> Result<Response, PageError> {
    let mac = path_mac(raw_mac)?;
    let node = DeviceRow::from(nodes::show(state, mac).await?);
    let locations: Vec<LocationRow> =
        nodes::locations(state, mac, HistoryQuery { limit: Some(50) })
            .await?
            .into_iter()
            .map(|l| LocationRow {
                start: when(Some(l.start_time)),
                end: when(l.end_time),
                switch: l.switch,
                switch_ip: l.switch_ip,
                port: l.port,
                vlan: l.vlan,
                role: l.role,
                ssid: l.ssid,
                username: l.username,
                connection_type: l.connection_type,
            })
            .collect();
    let ips: Vec<IpRow> = nodes::ips(state, mac)
        .await?
        .into_iter()
        .map(|i| IpRow {
            ip: i.ip,
            start: when(Some(i.start_time)),
            end: when(i.end_time),
        })
        .collect();
    // The decisions come from every cluster member: a failure is shown in its section, the
    // rest of the page still answers.
    let (mut decisions, missing, decisions_error) = match nodes::decisions(
        state,
        mac,
        DecisionQuery {
            limit: Some(50),
            ..DecisionQuery::default()
        },
    )
    .await
    {
        Ok(l) => (l.decisions, l.missing, None),
        Err(e) => (Vec::new(), Vec::new(), Some(e.message)),
    };
    // Newest first, as the other histories.
    decisions.reverse();
    let entered: BTreeMap<String, String> = form
        .map(|f| {
            f.0.iter()
                .filter(|(k, _)| k.as_str() != "csrf")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(render_status(
        state,
        who,
        status,
        "device.html",
        minijinja::context! {
            node,
            roles => roles(state),
            can_edit => who.principal.role.permits(Access::Devices),
            locations,
            ips,
            decisions,
            missing,
            decisions_error,
            form => entered,
            message => error.map(|e| e.message.clone()),
            errors => error.map(field_errors).unwrap_or_default(),
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    who: PageUser,
    Path(mac): Path<String>,
) -> Result<Response, PageError> {
    page(&state, &who, &mac, StatusCode::OK, None, None).await
}

/// After a write: back to the device page with a flash, or the form again with its errors.
async fn done<T>(
    state: &AdminState,
    who: &PageUser,
    mac: &str,
    form: Option<&FormData>,
    result: Result<T, ApiError>,
    ok: impl FnOnce(T) -> Flash,
) -> Result<Response, PageError> {
    let href = format!("/admin/devices/{}", path_mac(mac)?);
    match result {
        Ok(v) => Ok(redirect(who, &href, Some(ok(v)))),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            page(
                state,
                who,
                mac,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&e),
                form,
            )
            .await
        }
        // A refusal the admin can act on (no session to reevaluate, …): said on the page.
        Err(e) if e.status == StatusCode::CONFLICT => {
            Ok(redirect(who, &href, Some(Flash::error(e.message))))
        }
        Err(e) => Err(e.into()),
    }
}

fn reevaluation_note(r: &str) -> &'static str {
    if r == "scheduled" {
        " Its access is being reevaluated (CoA/Disconnect to its switch)."
    } else {
        ""
    }
}

/// The edit form: role, status, owner, notes, computer name. An empty role is the `default`
/// role (null in the API), empty notes clear them.
async fn save(
    State(state): State<AppState>,
    who: PageUser,
    Path(mac): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let m = path_mac(&mac)?;
    let status = match form.get("status") {
        None => None,
        Some("reg") => Some(Status::Reg),
        Some("unreg") => Some(Status::Unreg),
        Some("pending") => Some(Status::Pending),
        Some(_) => {
            let e = ApiError::invalid("status", "reg, unreg or pending");
            return page(
                &state,
                &who,
                &mac,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&e),
                Some(&form),
            )
            .await;
        }
    };
    let text = |k: &str| {
        form.0
            .contains_key(k)
            .then(|| form.get(k).map(str::to_string))
    };
    let input = UpdateNode {
        role: text("role"),
        status,
        pid: form.get("pid").map(str::to_string),
        notes: text("notes"),
        computername: text("computername"),
        ..UpdateNode::default()
    };
    let r = nodes::update(&state, &who.principal, m, input).await;
    done(&state, &who, &mac, Some(&form), r, |c| {
        Flash::ok(format!(
            "Device saved.{}",
            reevaluation_note(&c.reevaluation)
        ))
    })
    .await
}

async fn register(
    State(state): State<AppState>,
    who: PageUser,
    Path(mac): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let m = path_mac(&mac)?;
    let input = RegisterNode {
        role: form.get("role").map(str::to_string),
        access_duration: form.get("access_duration").map(str::to_string),
        ..RegisterNode::default()
    };
    let r = nodes::register(&state, &who.principal, m, input).await;
    done(&state, &who, &mac, Some(&form), r, |c| {
        Flash::ok(format!(
            "Device registered with role {}.{}",
            c.node.role.as_deref().unwrap_or("default"),
            reevaluation_note(&c.reevaluation)
        ))
    })
    .await
}

async fn deregister(
    State(state): State<AppState>,
    who: PageUser,
    Path(mac): Path<String>,
) -> Result<Response, PageError> {
    let m = path_mac(&mac)?;
    let r = nodes::deregister(&state, &who.principal, m).await;
    done(&state, &who, &mac, None, r, |c| {
        Flash::ok(format!(
            "Device deregistered.{}",
            reevaluation_note(&c.reevaluation)
        ))
    })
    .await
}

async fn reevaluate(
    State(state): State<AppState>,
    who: PageUser,
    Path(mac): Path<String>,
) -> Result<Response, PageError> {
    let m = path_mac(&mac)?;
    let r = nodes::reevaluate(&state, &who.principal, m).await;
    done(&state, &who, &mac, None, r, |r| {
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|s| format!("{} {}", s.kind, s.result))
            .collect();
        let text = format!(
            "Reevaluation {} sent to {} ({}): {}.",
            r.request_id,
            r.switch,
            r.destination,
            steps.join(", ")
        );
        if r.acked {
            Flash::ok(text)
        } else {
            Flash::error(text)
        }
    })
    .await
}

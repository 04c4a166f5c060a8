//! Switches and switch groups (switches.conf): `/switches…`, `/switch-groups…`.
//!
//! A switch is a section named by its IP address or CIDR; a group is `[group NAME]`; `[default]`
//! is the group every switch inherits last (`/switch-groups/default`). Answers show each
//! section's own values and, for switches, the resolved view (switch → group → default →
//! built-in) with where each value comes from. Secrets are never returned: `"(set)"`.
//! Request bodies are flat objects of switches.conf keys (PacketFence's names: `radiusSecret`,
//! `registrationVlan`, `<role>Vlan`, …); `null` removes a key so that it is inherited.

use super::api::{Endpoint, Writes};
use super::auth::Principal;
use super::config_write::{
    self, ConfigChange, ConfigWriteReport, SectionInput, Snapshot, own_values,
};
use super::error::ApiError;
use super::json::Body;
use super::{AdminState, AppState};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ironfence_admin::Access;
use ironfence_config::{Document, RolesConf};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const FILE: &str = "switches.conf";

/// A resolved value and the section it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Inherited {
    pub value: String,
    /// `switch`, `group NAME`, `default` or `built-in`.
    pub from: String,
}

/// One switch (or network of switches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SwitchView {
    /// The section name: an IP address or a CIDR.
    pub id: String,
    pub group: Option<String>,
    /// The keys its own section sets.
    pub own: BTreeMap<String, String>,
    /// Every setting after inheritance, with where it comes from.
    pub resolved: BTreeMap<String, Inherited>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SwitchList {
    /// The configuration version read (send it as `If-Match` / `expected_version`).
    pub version: String,
    pub switches: Vec<SwitchView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SwitchShow {
    pub version: String,
    pub switch: SwitchView,
}

/// A switch group, or `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GroupView {
    /// The group name (`default` for `[default]`).
    pub id: String,
    pub own: BTreeMap<String, String>,
    /// The switches that say `group=<id>` (every switch, for `default`).
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GroupList {
    pub version: String,
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GroupShow {
    pub version: String,
    pub group: GroupView,
}

/// The result of a write: the object as it is now (absent after a delete) and the
/// per-server report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SwitchWritten {
    pub switch: Option<SwitchView>,
    pub report: ConfigWriteReport,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GroupWritten {
    pub group: Option<GroupView>,
    pub report: ConfigWriteReport,
}

/// Built-in values of switches.conf (what applies when no section sets the key).
const BUILT_IN: &[(&str, &str)] = &[("require_message_authenticator", "yes"), ("VlanMap", "Y")];

fn is_switch_id(id: &str) -> bool {
    if id.parse::<IpAddr>().is_ok() {
        return true;
    }
    let Some((ip, len)) = id.split_once('/') else {
        return false;
    };
    match (ip.parse::<IpAddr>(), len.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
        (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
        _ => false,
    }
}

fn group_section(id: &str) -> String {
    if id == "default" {
        "default".into()
    } else {
        format!("group {id}")
    }
}

fn switch_ids(doc: &Document) -> Vec<String> {
    doc.sections()
        .map(|(n, _)| n)
        .filter(|n| is_switch_id(n))
        .map(str::to_string)
        .collect()
}

fn non_empty<'a>(doc: &'a Document, section: &str, key: &str) -> Option<&'a str> {
    doc.get(section, key)
        .map(|e| e.value.as_str())
        .filter(|v| !v.is_empty())
}

fn switch_view(doc: &Document, id: &str) -> SwitchView {
    let group = non_empty(doc, id, "group").map(str::to_string);
    let mut layers: Vec<(String, String)> = vec![(id.to_string(), "switch".into())];
    if let Some(g) = &group
        && doc.section(&group_section(g)).is_some()
    {
        layers.push((group_section(g), format!("group {g}")));
    }
    layers.push(("default".into(), "default".into()));
    let mut resolved: BTreeMap<String, Inherited> = BTreeMap::new();
    for (section, from) in &layers {
        for (k, v) in own_values(doc, section) {
            if v.is_empty() || k == "group" && from != "switch" {
                continue;
            }
            resolved.entry(k).or_insert(Inherited {
                value: v,
                from: from.clone(),
            });
        }
    }
    // `secret` is radiusSecret's alias: one resolved secret.
    if let Some(alias) = resolved.remove("secret") {
        resolved.entry("radiusSecret".into()).or_insert(alias);
    }
    for (k, v) in BUILT_IN {
        resolved.entry(k.to_string()).or_insert(Inherited {
            value: v.to_string(),
            from: "built-in".into(),
        });
    }
    SwitchView {
        id: id.to_string(),
        group,
        own: own_values(doc, id),
        resolved,
    }
}

fn group_view(doc: &Document, id: &str) -> GroupView {
    let members = switch_ids(doc)
        .into_iter()
        .filter(|s| id == "default" || non_empty(doc, s, "group") == Some(id))
        .collect();
    GroupView {
        id: id.to_string(),
        own: own_values(doc, &group_section(id)),
        members,
    }
}

/// Every switch, in file order.
pub async fn list(state: &AdminState) -> Result<SwitchList, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(FILE);
    Ok(SwitchList {
        version: snap.version.hash.clone(),
        switches: switch_ids(&doc)
            .iter()
            .map(|id| switch_view(&doc, id))
            .collect(),
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no switch [{id}] in switches.conf (a CIDR id is written with %2F for the slash)"
    ))
}

/// One switch.
pub async fn show(state: &AdminState, id: &str) -> Result<SwitchShow, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(FILE);
    if !is_switch_id(id) || doc.section(id).is_none() {
        return Err(not_found(id));
    }
    Ok(SwitchShow {
        version: snap.version.hash.clone(),
        switch: switch_view(&doc, id),
    })
}

/// The edits of `settings` on `[section]`, checked key by key: unknown keys and weak secrets
/// are refused (checkup only warns about them in a hand-edited file).
fn settings_edits(
    change: ConfigChange,
    section: &str,
    settings: &BTreeMap<String, serde_json::Value>,
    roles: &RolesConf,
) -> Result<ConfigChange, ApiError> {
    config_write::settings_edits(
        change,
        FILE,
        section,
        settings,
        |key| ironfence_config::check_switch_key(key, roles),
        |_, v| {
            ironfence_config::value::secret_weakness(v).map(|why| {
                format!(
                    "the RADIUS secret {why}: {}",
                    ironfence_config::value::SECRET_ADVICE
                )
            })
        },
    )
}

fn expected(headers: &HeaderMap, input: &SectionInput) -> Option<String> {
    config_write::expected_version(headers, input.expected_version.as_deref())
}

async fn reread(state: &AdminState) -> Result<Document, ApiError> {
    Ok(config_write::snapshot(state).await?.document(FILE))
}

/// Adds a switch.
pub async fn create(
    state: &AdminState,
    who: &Principal,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<SwitchWritten, ApiError> {
    let id = input.id.clone().unwrap_or_default();
    if !is_switch_id(&id) {
        return Err(ApiError::invalid(
            "id",
            format!("{id:?} is not an IP address (192.168.1.10) or a CIDR (192.168.1.0/24)"),
        ));
    }
    let roles = state.shared.config().roles.clone();
    let change = ConfigChange::new("switch.create", format!("switch {id}"))
        .add_section(FILE, &id)
        .expecting(expected_version);
    let change = settings_edits(change, &id, &input.settings, &roles)?;
    let report = config_write::apply(state, who, change).await?;
    let doc = reread(state).await?;
    Ok(SwitchWritten {
        switch: doc.section(&id).map(|_| switch_view(&doc, &id)),
        report,
    })
}

/// Changes (and possibly renames) a switch.
pub async fn update(
    state: &AdminState,
    who: &Principal,
    id: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<SwitchWritten, ApiError> {
    let snap: Snapshot = config_write::snapshot(state).await?;
    if !is_switch_id(id) || snap.document(FILE).section(id).is_none() {
        return Err(not_found(id));
    }
    let roles = state.shared.config().roles.clone();
    let change =
        ConfigChange::new("switch.update", format!("switch {id}")).expecting(expected_version);
    let mut change = settings_edits(change, id, &input.settings, &roles)?;
    let mut now = id.to_string();
    if let Some(new) = input.id.as_deref().filter(|n| *n != id) {
        if !is_switch_id(new) {
            return Err(ApiError::invalid(
                "id",
                format!("{new:?} is not an IP address or a CIDR"),
            ));
        }
        change = change.rename_section(FILE, id, new);
        now = new.to_string();
    }
    if change.edits.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: send the switches.conf keys to set (null to inherit)",
        ));
    }
    let report = config_write::apply(state, who, change).await?;
    let doc = reread(state).await?;
    Ok(SwitchWritten {
        switch: doc.section(&now).map(|_| switch_view(&doc, &now)),
        report,
    })
}

/// Removes a switch (its requests are ignored from then on).
pub async fn delete(
    state: &AdminState,
    who: &Principal,
    id: &str,
    expected_version: Option<String>,
) -> Result<SwitchWritten, ApiError> {
    if !is_switch_id(id) {
        return Err(not_found(id));
    }
    let change = ConfigChange::new("switch.delete", format!("switch {id}"))
        .remove_section(FILE, id)
        .expecting(expected_version);
    let report = config_write::apply(state, who, change).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            not_found(id)
        } else {
            e
        }
    })?;
    Ok(SwitchWritten {
        switch: None,
        report,
    })
}

fn valid_group_name(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id == "default"
        || id
            .chars()
            .any(|c| c.is_whitespace() || c == '[' || c == ']')
    {
        return Err(ApiError::invalid(
            "id",
            format!("{id:?} is not a group name: one word, not \"default\""),
        ));
    }
    Ok(())
}

pub async fn list_groups(state: &AdminState) -> Result<GroupList, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(FILE);
    let mut groups = vec![group_view(&doc, "default")];
    groups.extend(
        doc.sections()
            .filter_map(|(n, _)| n.strip_prefix("group "))
            .map(|g| group_view(&doc, g.trim())),
    );
    Ok(GroupList {
        version: snap.version.hash.clone(),
        groups,
    })
}

fn group_exists(doc: &Document, id: &str) -> bool {
    id == "default" || doc.section(&group_section(id)).is_some()
}

pub async fn show_group(state: &AdminState, id: &str) -> Result<GroupShow, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(FILE);
    if !group_exists(&doc, id) {
        return Err(ApiError::not_found(format!("no switch group {id:?}")));
    }
    Ok(GroupShow {
        version: snap.version.hash.clone(),
        group: group_view(&doc, id),
    })
}

pub async fn create_group(
    state: &AdminState,
    who: &Principal,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<GroupWritten, ApiError> {
    let id = input.id.clone().unwrap_or_default();
    valid_group_name(&id)?;
    let section = group_section(&id);
    let roles = state.shared.config().roles.clone();
    let change = ConfigChange::new("switch_group.create", format!("switch group {id}"))
        .add_section(FILE, &section)
        .expecting(expected_version);
    let change = settings_edits(change, &section, &input.settings, &roles)?;
    let report = config_write::apply(state, who, change).await?;
    let doc = reread(state).await?;
    Ok(GroupWritten {
        group: Some(group_view(&doc, &id)),
        report,
    })
}

pub async fn update_group(
    state: &AdminState,
    who: &Principal,
    id: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<GroupWritten, ApiError> {
    let doc = reread(state).await?;
    if !group_exists(&doc, id) {
        return Err(ApiError::not_found(format!("no switch group {id:?}")));
    }
    if input.id.as_deref().is_some_and(|n| n != id) {
        return Err(ApiError::invalid(
            "id",
            "a group is not renamed in place (its switches name it): create the new group, move the switches, delete the old one",
        ));
    }
    let section = group_section(id);
    let roles = state.shared.config().roles.clone();
    let change = ConfigChange::new("switch_group.update", format!("switch group {id}"))
        .expecting(expected_version);
    let change = settings_edits(change, &section, &input.settings, &roles)?;
    if change.edits.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: send the switches.conf keys to set (null to remove)",
        ));
    }
    let report = config_write::apply(state, who, change).await?;
    let doc = reread(state).await?;
    Ok(GroupWritten {
        group: Some(group_view(&doc, id)),
        report,
    })
}

pub async fn delete_group(
    state: &AdminState,
    who: &Principal,
    id: &str,
    expected_version: Option<String>,
) -> Result<GroupWritten, ApiError> {
    if id == "default" {
        return Err(ApiError::conflict(
            "[default] cannot be deleted: every switch inherits it (change its values instead)",
        ));
    }
    let doc = reread(state).await?;
    if !group_exists(&doc, id) {
        return Err(ApiError::not_found(format!("no switch group {id:?}")));
    }
    let members = group_view(&doc, id).members;
    if !members.is_empty() {
        return Err(ApiError::conflict(format!(
            "switch group {id} is used by {}: move them to another group first",
            members.join(", ")
        )));
    }
    let change = ConfigChange::new("switch_group.delete", format!("switch group {id}"))
        .remove_section(FILE, &group_section(id))
        .expecting(expected_version);
    let report = config_write::apply(state, who, change).await?;
    Ok(GroupWritten {
        group: None,
        report,
    })
}

// Handlers: decode, call the service function, encode.

type Json<T> = Result<axum::Json<T>, ApiError>;

async fn h_list(State(st): State<AppState>) -> Json<SwitchList> {
    list(&st).await.map(axum::Json)
}
async fn h_show(State(st): State<AppState>, Path(id): Path<String>) -> Json<SwitchShow> {
    show(&st, &id).await.map(axum::Json)
}
async fn h_create(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Result<(StatusCode, axum::Json<SwitchWritten>), ApiError> {
    let v = expected(&headers, &input);
    create(&st, &who, input, v)
        .await
        .map(|w| (StatusCode::CREATED, axum::Json(w)))
}
async fn h_update(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Json<SwitchWritten> {
    let v = expected(&headers, &input);
    update(&st, &who, &id, input, v).await.map(axum::Json)
}
async fn h_delete(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<SwitchWritten> {
    let v = config_write::expected_version(&headers, None);
    delete(&st, &who, &id, v).await.map(axum::Json)
}
async fn h_list_groups(State(st): State<AppState>) -> Json<GroupList> {
    list_groups(&st).await.map(axum::Json)
}
async fn h_show_group(State(st): State<AppState>, Path(id): Path<String>) -> Json<GroupShow> {
    show_group(&st, &id).await.map(axum::Json)
}
async fn h_create_group(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Result<(StatusCode, axum::Json<GroupWritten>), ApiError> {
    let v = expected(&headers, &input);
    create_group(&st, &who, input, v)
        .await
        .map(|w| (StatusCode::CREATED, axum::Json(w)))
}
async fn h_update_group(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Json<GroupWritten> {
    let v = expected(&headers, &input);
    update_group(&st, &who, &id, input, v).await.map(axum::Json)
}
async fn h_delete_group(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<GroupWritten> {
    let v = config_write::expected_version(&headers, None);
    delete_group(&st, &who, &id, v).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    let id = "IP address or CIDR (the slash written %2F)";
    vec![
        Endpoint::get("/switches", "List switches")
            .tag("switches")
            .access(Access::Read)
            .returns::<SwitchList>()
            .to(h_list),
        Endpoint::post("/switches", "Add a switch")
            .tag("switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .body::<SectionInput>()
            .returns_with::<SwitchWritten>(StatusCode::CREATED)
            .to(h_create),
        Endpoint::get("/switches/{id}", "Show a switch (own and resolved values)")
            .tag("switches")
            .access(Access::Read)
            .path_param("id", id)
            .returns::<SwitchShow>()
            .to(h_show),
        Endpoint::patch("/switches/{id}", "Change a switch")
            .tag("switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("id", id)
            .body::<SectionInput>()
            .returns::<SwitchWritten>()
            .to(h_update),
        Endpoint::delete("/switches/{id}", "Remove a switch")
            .tag("switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("id", id)
            .returns::<SwitchWritten>()
            .to(h_delete),
        Endpoint::get("/switch-groups", "List switch groups (default first)")
            .tag("switches")
            .access(Access::Read)
            .returns::<GroupList>()
            .to(h_list_groups),
        Endpoint::post("/switch-groups", "Add a switch group")
            .tag("switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .body::<SectionInput>()
            .returns_with::<GroupWritten>(StatusCode::CREATED)
            .to(h_create_group),
        Endpoint::get("/switch-groups/{id}", "Show a switch group")
            .tag("switches")
            .access(Access::Read)
            .path_param("id", "group name, or default")
            .returns::<GroupShow>()
            .to(h_show_group),
        Endpoint::patch("/switch-groups/{id}", "Change a switch group (or default)")
            .tag("switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("id", "group name, or default")
            .body::<SectionInput>()
            .returns::<GroupWritten>()
            .to(h_update_group),
        Endpoint::delete("/switch-groups/{id}", "Remove an unused switch group")
            .tag("switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("id", "group name")
            .returns::<GroupWritten>()
            .to(h_delete_group),
    ]
}

#[cfg(test)]
mod tests;

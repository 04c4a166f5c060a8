//! Roles (roles.conf, PacketFence "categories"): `/roles…`.
//!
//! The built-in roles (`default`, `guest`, `gaming`, `voice`, `REJECT`) always exist; roles.conf
//! overrides their notes and adds others. A role is used by switches (`<role>Vlan` keys), by
//! the portal's authentication rules (`set_role`) and by devices; deleting a role still used
//! is refused (409) naming its users.

use super::api::{Endpoint, Writes};
use super::auth::Principal;
use super::config_write::{self, ConfigChange, ConfigWriteReport, SectionInput, own_values};
use super::error::ApiError;
use super::json::Body;
use super::{AdminState, AppState};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ironfence_admin::Access;
use ironfence_config::{BUILTIN_ROLES, Document};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

pub const FILE: &str = "roles.conf";
const SWITCHES: &str = "switches.conf";

/// One role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RoleView {
    pub name: String,
    pub notes: Option<String>,
    /// Registered devices per owner in this role (0 = unlimited).
    pub max_nodes_per_pid: u32,
    /// One of PacketFence's built-in roles (cannot be deleted).
    pub builtin: bool,
    /// What roles.conf itself sets for it.
    pub own: BTreeMap<String, String>,
    /// switches.conf sections that map it to a VLAN (`<role>Vlan`), with the VLAN.
    pub switch_vlans: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoleList {
    pub version: String,
    pub roles: Vec<RoleView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoleShow {
    pub version: String,
    pub role: RoleView,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoleWritten {
    pub role: Option<RoleView>,
    pub report: ConfigWriteReport,
}

fn views(roles_doc: &Document, switches_doc: &Document) -> Vec<RoleView> {
    let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|(n, _)| n.to_string()).collect();
    for (n, _) in roles_doc.sections() {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let builtin = BUILTIN_ROLES.iter().find(|(n, _)| *n == name);
            let own = own_values(roles_doc, &name);
            let notes = own
                .get("notes")
                .filter(|v| !v.is_empty())
                .cloned()
                .or_else(|| builtin.map(|(_, n)| n.to_string()));
            let max_nodes_per_pid = own
                .get("max_nodes_per_pid")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let key = format!("{name}Vlan");
            let switch_vlans = switches_doc
                .sections()
                .filter_map(|(s, _)| {
                    switches_doc
                        .get(s, &key)
                        .filter(|e| !e.value.is_empty())
                        .map(|e| (s.to_string(), e.value.clone()))
                })
                .collect();
            RoleView {
                name,
                notes,
                max_nodes_per_pid,
                builtin: builtin.is_some(),
                own,
                switch_vlans,
            }
        })
        .collect()
}

pub async fn list(state: &AdminState) -> Result<RoleList, ApiError> {
    let snap = config_write::snapshot(state).await?;
    Ok(RoleList {
        version: snap.version.hash.clone(),
        roles: views(&snap.document(FILE), &snap.document(SWITCHES)),
    })
}

async fn find(state: &AdminState, name: &str) -> Result<(String, Option<RoleView>), ApiError> {
    let snap = config_write::snapshot(state).await?;
    let role = views(&snap.document(FILE), &snap.document(SWITCHES))
        .into_iter()
        .find(|r| r.name == name);
    Ok((snap.version.hash.clone(), role))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no role {name:?} (roles.conf and the built-in roles)"
    ))
}

pub async fn show(state: &AdminState, name: &str) -> Result<RoleShow, ApiError> {
    match find(state, name).await? {
        (version, Some(role)) => Ok(RoleShow { version, role }),
        _ => Err(not_found(name)),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "id",
            format!(
                "{name:?} is not a role name: letters, digits, _ - . (switches map it with a <role>Vlan key)"
            ),
        ))
    }
}

fn edits(change: ConfigChange, name: &str, input: &SectionInput) -> Result<ConfigChange, ApiError> {
    config_write::settings_edits(
        change,
        FILE,
        name,
        &input.settings,
        ironfence_config::check_role_key,
        |_, _| None,
    )
}

pub async fn create(
    state: &AdminState,
    who: &Principal,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<RoleWritten, ApiError> {
    let name = input.id.clone().unwrap_or_default();
    check_name(&name)?;
    if find(state, &name).await?.1.is_some() {
        return Err(ApiError::conflict(format!(
            "role {name} already exists: change it instead (PATCH /roles/{name})"
        )));
    }
    let change = ConfigChange::new("role.create", format!("role {name}"))
        .add_section(FILE, &name)
        .expecting(expected_version);
    let change = edits(change, &name, &input)?;
    let report = config_write::apply(state, who, change).await?;
    Ok(RoleWritten {
        role: find(state, &name).await?.1,
        report,
    })
}

pub async fn update(
    state: &AdminState,
    who: &Principal,
    name: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<RoleWritten, ApiError> {
    if find(state, name).await?.1.is_none() {
        return Err(not_found(name));
    }
    if input.id.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::invalid(
            "id",
            "a role is not renamed (devices, switches and rules name it): create the new role, move its users, delete the old one",
        ));
    }
    let change =
        ConfigChange::new("role.update", format!("role {name}")).expecting(expected_version);
    let change = edits(change, name, &input)?;
    if change.edits.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: send notes and/or max_nodes_per_pid",
        ));
    }
    let report = config_write::apply(state, who, change).await?;
    Ok(RoleWritten {
        role: find(state, name).await?.1,
        report,
    })
}

/// Who still uses `name`: switches.conf sections, authentication rules, devices.
async fn users(state: &AdminState, role: &RoleView) -> Result<Vec<String>, ApiError> {
    let mut users = Vec::new();
    if !role.switch_vlans.is_empty() {
        users.push(format!(
            "switches.conf [{}] ({}Vlan)",
            role.switch_vlans
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join("], ["),
            role.name
        ));
    }
    let config = state.shared.config();
    let rules: Vec<String> = config
        .authentication
        .sources
        .iter()
        .flat_map(|s| {
            s.rules
                .iter()
                .filter(|r| r.role == role.name)
                .map(move |r| format!("{} rule {}", s.id, r.name))
        })
        .collect();
    if !rules.is_empty() {
        users.push(format!("authentication.conf [{}]", rules.join("], [")));
    }
    // Devices: a few MACs named, and how many there are at least.
    const SHOWN: usize = 10;
    let nodes = state
        .shared
        .store
        .list_nodes(&ironfence_store::NodeFilter {
            role: Some(role.name.clone()),
            limit: SHOWN as u32 + 1,
            ..Default::default()
        })
        .await
        .map_err(|e| ApiError::store("checking the devices in this role", e))?;
    if !nodes.is_empty() {
        let macs: Vec<String> = nodes
            .iter()
            .take(SHOWN)
            .map(|n| n.mac.to_string())
            .collect();
        users.push(format!(
            "devices {}{}",
            macs.join(", "),
            if nodes.len() > SHOWN { ", …" } else { "" }
        ));
    }
    Ok(users)
}

pub async fn delete(
    state: &AdminState,
    who: &Principal,
    name: &str,
    expected_version: Option<String>,
) -> Result<RoleWritten, ApiError> {
    let Some(role) = find(state, name).await?.1 else {
        return Err(not_found(name));
    };
    if role.builtin {
        return Err(ApiError::conflict(format!(
            "{name} is a built-in role: it cannot be deleted (change its notes instead)"
        )));
    }
    let users = users(state, &role).await?;
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "role {name} is still used by {}: move them to another role first",
            users.join("; ")
        )));
    }
    let change = ConfigChange::new("role.delete", format!("role {name}"))
        .remove_section(FILE, name)
        .expecting(expected_version);
    let report = config_write::apply(state, who, change).await?;
    Ok(RoleWritten { role: None, report })
}

type Json<T> = Result<axum::Json<T>, ApiError>;

async fn h_list(State(st): State<AppState>) -> Json<RoleList> {
    list(&st).await.map(axum::Json)
}
async fn h_show(State(st): State<AppState>, Path(name): Path<String>) -> Json<RoleShow> {
    show(&st, &name).await.map(axum::Json)
}
async fn h_create(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Result<(StatusCode, axum::Json<RoleWritten>), ApiError> {
    let v = config_write::expected_version(&headers, input.expected_version.as_deref());
    create(&st, &who, input, v)
        .await
        .map(|w| (StatusCode::CREATED, axum::Json(w)))
}
async fn h_update(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Json<RoleWritten> {
    let v = config_write::expected_version(&headers, input.expected_version.as_deref());
    update(&st, &who, &name, input, v).await.map(axum::Json)
}
async fn h_delete(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Json<RoleWritten> {
    let v = config_write::expected_version(&headers, None);
    delete(&st, &who, &name, v).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/roles", "List roles (built-in and roles.conf)")
            .tag("roles")
            .access(Access::Read)
            .returns::<RoleList>()
            .to(h_list),
        Endpoint::post("/roles", "Add a role")
            .tag("roles")
            .access(Access::Config)
            .writes(Writes::Config)
            .body::<SectionInput>()
            .returns_with::<RoleWritten>(StatusCode::CREATED)
            .to(h_create),
        Endpoint::get("/roles/{name}", "Show a role")
            .tag("roles")
            .access(Access::Read)
            .path_param("name", "role name")
            .returns::<RoleShow>()
            .to(h_show),
        Endpoint::patch("/roles/{name}", "Change a role")
            .tag("roles")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("name", "role name")
            .body::<SectionInput>()
            .returns::<RoleWritten>()
            .to(h_update),
        Endpoint::delete("/roles/{name}", "Remove an unused role")
            .tag("roles")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("name", "role name")
            .returns::<RoleWritten>()
            .to(h_delete),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::config_write::tests::{admin, state_with};
    use crate::admin::json::parse;

    const ROLES: &str = "# our roles\n[staff]\nnotes = Employees\n\n[guest]\nnotes = Visitors\n";
    const SWITCHES: &str = "[default]\nradiusSecret = Zk3vQ9pLm2xR7tW4nB8yC1dF\nregistrationVlan = 2\n\n[10.0.0.1]\nstaffVlan = 20\n";

    fn body(json: &str) -> SectionInput {
        parse::<SectionInput>(json.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn roles_are_listed_created_changed_and_deleted_when_unused() {
        let (_d, st) = state_with(&[("roles.conf", ROLES), ("switches.conf", SWITCHES)]).await;
        let l = list(&st).await.unwrap();
        let names: Vec<&str> = l.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["default", "guest", "gaming", "voice", "REJECT", "staff"]
        );
        let staff = l.roles.iter().find(|r| r.name == "staff").unwrap();
        assert_eq!(staff.switch_vlans.get("10.0.0.1").unwrap(), "20");
        assert_eq!(l.roles[1].notes.as_deref(), Some("Visitors"));
        // Used by a switch: 409 naming it; built-in: 409.
        let e = delete(&st, &admin(), "staff", None).await.unwrap_err();
        assert_eq!(e.status.as_u16(), 409);
        assert!(e.message.contains("switches.conf [10.0.0.1]"), "{e}");
        assert_eq!(
            delete(&st, &admin(), "guest", None)
                .await
                .unwrap_err()
                .status
                .as_u16(),
            409
        );
        // Create, change, bad input.
        let w = create(
            &st,
            &admin(),
            body(r#"{"id": "contractor", "notes": "Contractors", "max_nodes_per_pid": 2}"#),
            None,
        )
        .await
        .unwrap();
        assert_eq!(w.role.unwrap().max_nodes_per_pid, 2);
        assert!(st.shared.config().roles.contains("contractor"));
        let e = update(
            &st,
            &admin(),
            "contractor",
            body(r#"{"max_nodes_per_pid": "many"}"#),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.errors[0].field.as_str()),
            (422, "max_nodes_per_pid")
        );
        let e = update(
            &st,
            &admin(),
            "contractor",
            body(r#"{"colour": "red"}"#),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.errors[0].field.as_str()),
            (422, "colour")
        );
        let e = create(&st, &admin(), body(r#"{"id": "two words"}"#), None)
            .await
            .unwrap_err();
        assert_eq!(e.errors[0].field, "id");
        assert_eq!(
            create(&st, &admin(), body(r#"{"id": "staff"}"#), None)
                .await
                .unwrap_err()
                .status
                .as_u16(),
            409
        );
        // A device in the role blocks its deletion, naming it.
        let mac: ironfence_core::Mac = "02:00:00:00:83:01".parse().unwrap();
        st.shared
            .store
            .register_node(mac, "bob", "contractor", None, 1_000)
            .await
            .unwrap();
        let e = delete(&st, &admin(), "contractor", None).await.unwrap_err();
        assert_eq!(e.status.as_u16(), 409);
        assert!(e.message.contains("02:00:00:00:83:01"), "{e}");
        st.shared.store.delete_node(mac).await.unwrap();
        delete(&st, &admin(), "contractor", None).await.unwrap();
        assert!(!st.shared.config().roles.contains("contractor"));
        let text = std::fs::read_to_string(st.shared.config().conf_dir.join(FILE)).unwrap();
        assert!(text.starts_with("# our roles\n[staff]\n"), "{text}");
    }
}

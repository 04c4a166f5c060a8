//! Admin accounts (`conf/admin.conf`): list, show, create, change (role, password, enabled,
//! TOTP), delete. Administrators only. Writes go through the configuration pipeline
//! ([`super::config_write::apply`]): validated like checkup, written with comments kept,
//! pushed to every server, audited (password hashes and TOTP secrets as `(changed)`).
//! Configuration writes: they work while the database is read-only.
//!
//! Passwords are hashed here (argon2id) and never returned; weak ones are refused (422). The
//! last enabled administrator cannot be deleted, demoted or disabled (409): someone must be
//! able to manage the server.

use super::api::{Endpoint, Writes};
use super::auth::{Principal, RoleSchema};
use super::config_write::{self, ConfigChange, ConfigWriteReport};
use super::error::ApiError;
use super::json::Body;
use super::{AdminState, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironfence_admin::{Access, Role};
use ironfence_config::admin::{ACCOUNT_PREFIX, ADMIN_CONF, password_weakness, valid_account_name};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An admin account as the API shows it (never the hash or the TOTP secret).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdminView {
    pub name: String,
    #[schemars(with = "RoleSchema")]
    pub role: Role,
    pub disabled: bool,
    /// Whether a password is set (an account without one cannot log in).
    pub has_password: bool,
    /// Whether the TOTP second factor is on.
    pub totp: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdminList {
    pub admins: Vec<AdminView>,
}

/// `POST /admins`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub name: String,
    #[schemars(with = "RoleSchema")]
    pub role: Role,
    /// At least 12 characters, not a well-known default. Hashed with argon2id.
    pub password: String,
    #[serde(default)]
    pub disabled: bool,
}

/// `PATCH /admins/{name}`: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdate {
    #[schemars(with = "Option<RoleSchema>")]
    pub role: Option<Role>,
    pub password: Option<String>,
    pub disabled: Option<bool>,
    /// `true`: a new TOTP secret (returned once in `totp_setup`); `false`: TOTP off.
    pub totp: Option<bool>,
    /// The configuration version read (409 if another change came first).
    pub expected_version: Option<String>,
}

/// What a TOTP enrolment returns, once: scan `uri` into the authenticator app.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TotpSetup {
    pub secret: String,
    pub uri: String,
}

/// The answer to a write: the account and the per-server result of the push.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdminWritten {
    pub admin: Option<AdminView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_setup: Option<TotpSetup>,
    pub report: ConfigWriteReport,
}

fn view(a: &ironfence_config::admin::AdminAccount) -> AdminView {
    AdminView {
        name: a.name.clone(),
        role: a.role,
        disabled: a.disabled,
        has_password: !a.password.is_empty(),
        totp: a.totp.is_some(),
    }
}

fn section(name: &str) -> String {
    format!("{ACCOUNT_PREFIX}{name}")
}

pub fn list(state: &AdminState, _who: &Principal) -> AdminList {
    AdminList {
        admins: state
            .shared
            .config()
            .admins
            .accounts
            .iter()
            .map(view)
            .collect(),
    }
}

pub fn show(state: &AdminState, _who: &Principal, name: &str) -> Result<AdminView, ApiError> {
    state
        .shared
        .config()
        .admins
        .get(name)
        .map(view)
        .ok_or_else(|| ApiError::not_found(format!("no admin account {name:?}")))
}

async fn hash_password(password: String) -> Result<String, ApiError> {
    if let Some(why) = password_weakness(&password) {
        return Err(ApiError::invalid(
            "password",
            format!("the password {why}: choose a long passphrase"),
        ));
    }
    tokio::task::spawn_blocking(move || ironfence_portal::password::hash(&password))
        .await
        .map_err(|e| ApiError::internal("hashing the password", e))?
        .map_err(|e| ApiError::internal("hashing the password", e))
}

/// Whether `name` is the last enabled administrator with a password.
fn is_last_administrator(state: &AdminState, name: &str) -> bool {
    let cfg = state.shared.config();
    let active: Vec<&str> = cfg
        .admins
        .active_administrators()
        .map(|a| a.name.as_str())
        .collect();
    active == [name]
}

fn issuer(state: &AdminState) -> String {
    let cfg = state.shared.config();
    match &cfg.cluster {
        Some(_) => "ironfence cluster".to_string(),
        None => format!("ironfence {}", cfg.identity),
    }
}

pub async fn create(
    state: &AdminState,
    who: &Principal,
    input: NewAdmin,
) -> Result<AdminWritten, ApiError> {
    valid_account_name(&input.name).map_err(|e| ApiError::invalid("name", e))?;
    if state.shared.config().admins.get(&input.name).is_some() {
        return Err(ApiError::conflict(format!(
            "admin account {:?} exists already: change it with PATCH /admins/{}",
            input.name, input.name
        )));
    }
    let hash = hash_password(input.password).await?;
    let s = section(&input.name);
    let change = ConfigChange::new("admin.create", format!("admin {}", input.name))
        .add_section(ADMIN_CONF, &s)
        .set(ADMIN_CONF, &s, "role", Some(input.role.to_string()))
        .set(ADMIN_CONF, &s, "password", Some(hash))
        .set(
            ADMIN_CONF,
            &s,
            "disabled",
            Some(if input.disabled { "yes" } else { "no" }.into()),
        );
    let report = config_write::apply(state, who, change).await?;
    Ok(AdminWritten {
        admin: show(state, who, &input.name).ok(),
        totp_setup: None,
        report,
    })
}

pub async fn update(
    state: &AdminState,
    who: &Principal,
    name: &str,
    input: AdminUpdate,
) -> Result<AdminWritten, ApiError> {
    let current = show(state, who, name)?;
    let demoted = input.role.is_some_and(|r| r != Role::Administrator);
    let disabled = input.disabled == Some(true);
    if (demoted || disabled)
        && current.role == Role::Administrator
        && is_last_administrator(state, name)
    {
        return Err(ApiError::conflict(format!(
            "{name} is the last enabled administrator: create or enable another administrator first"
        )));
    }
    let s = section(name);
    let mut change = ConfigChange::new("admin.update", format!("admin {name}"))
        .expecting(input.expected_version.clone());
    if let Some(role) = input.role {
        change = change.set(ADMIN_CONF, &s, "role", Some(role.to_string()));
    }
    if let Some(d) = input.disabled {
        change = change.set(
            ADMIN_CONF,
            &s,
            "disabled",
            Some(if d { "yes" } else { "no" }.into()),
        );
    }
    if let Some(p) = input.password {
        change = change.set(ADMIN_CONF, &s, "password", Some(hash_password(p).await?));
    }
    let mut setup = None;
    match input.totp {
        Some(true) => {
            let mut secret = [0u8; 20];
            getrandom::fill(&mut secret)
                .map_err(|e| ApiError::internal("no randomness for a TOTP secret", e))?;
            let b32 = ironfence_admin::totp::base32_encode(&secret);
            setup = Some(TotpSetup {
                uri: ironfence_admin::totp::otpauth_uri(&issuer(state), name, &b32),
                secret: b32.clone(),
            });
            change = change.set(ADMIN_CONF, &s, "totp", Some(b32));
        }
        Some(false) => change = change.set(ADMIN_CONF, &s, "totp", None),
        None => {}
    }
    if change.edits.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "nothing to change: give role, password, disabled or totp",
        ));
    }
    let report = config_write::apply(state, who, change).await?;
    Ok(AdminWritten {
        admin: show(state, who, name).ok(),
        totp_setup: setup,
        report,
    })
}

pub async fn delete(
    state: &AdminState,
    who: &Principal,
    name: &str,
) -> Result<AdminWritten, ApiError> {
    let current = show(state, who, name)?;
    if current.role == Role::Administrator && is_last_administrator(state, name) {
        return Err(ApiError::conflict(format!(
            "{name} is the last enabled administrator and cannot be deleted: create another administrator first"
        )));
    }
    let change = ConfigChange::new("admin.delete", format!("admin {name}"))
        .remove_section(ADMIN_CONF, &section(name));
    let report = config_write::apply(state, who, change).await?;
    Ok(AdminWritten {
        admin: None,
        totp_setup: None,
        report,
    })
}

type Json<T> = Result<axum::Json<T>, ApiError>;

async fn list_h(
    State(st): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
) -> axum::Json<AdminList> {
    axum::Json(list(&st, &who))
}

async fn show_h(
    State(st): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(name): Path<String>,
) -> Json<AdminView> {
    show(&st, &who, &name).map(axum::Json)
}

async fn create_h(
    State(st): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    Body(input): Body<NewAdmin>,
) -> Result<(StatusCode, axum::Json<AdminWritten>), ApiError> {
    create(&st, &who, input)
        .await
        .map(|w| (StatusCode::CREATED, axum::Json(w)))
}

async fn update_h(
    State(st): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(name): Path<String>,
    Body(input): Body<AdminUpdate>,
) -> Json<AdminWritten> {
    update(&st, &who, &name, input).await.map(axum::Json)
}

async fn delete_h(
    State(st): State<AppState>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(name): Path<String>,
) -> Json<AdminWritten> {
    delete(&st, &who, &name).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/admins", "List the admin accounts")
            .tag("admins")
            .access(Access::Config)
            .returns::<AdminList>()
            .to(list_h),
        Endpoint::post("/admins", "Create an admin account")
            .tag("admins")
            .access(Access::Config)
            .writes(Writes::Config)
            .body::<NewAdmin>()
            .returns_with::<AdminWritten>(StatusCode::CREATED)
            .to(create_h),
        Endpoint::get("/admins/{name}", "Show an admin account")
            .tag("admins")
            .access(Access::Config)
            .path_param("name", "account name")
            .returns::<AdminView>()
            .to(show_h),
        Endpoint::patch(
            "/admins/{name}",
            "Change an admin account (role, password, enabled, TOTP)",
        )
        .tag("admins")
        .access(Access::Config)
        .writes(Writes::Config)
        .path_param("name", "account name")
        .body::<AdminUpdate>()
        .returns::<AdminWritten>()
        .to(update_h),
        Endpoint::delete("/admins/{name}", "Delete an admin account")
            .tag("admins")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("name", "account name")
            .returns::<AdminWritten>()
            .to(delete_h),
    ]
}

#[cfg(test)]
mod tests;

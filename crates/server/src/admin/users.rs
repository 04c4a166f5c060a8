//! Users (PacketFence "persons", owners of devices) and their local-login accounts (the
//! portal's `password` table).
//!
//! ```text
//!  GET    /users               search (pid, names, email), paging       read
//!  POST   /users               create (optionally with a local login)   devices · data
//!  GET    /users/{pid}         show (devices owned, local login window)  read
//!  PATCH  /users/{pid}         names, email, notes, password, validity   devices · data
//!  DELETE /users/{pid}         delete (refused while they own devices)   devices · data
//!  GET    /users/{pid}/nodes   their devices                             read
//! ```
//!
//! A password is hashed with argon2id (`ironfence_portal::password`, the portal's verifier)
//! and never returned nor written in the admin audit log (which records only that it changed).

use super::api::Endpoint;
use super::auth::Principal;
use super::error::ApiError;
use super::json::{Body, Params};
use super::nodes::{
    self, NodePage, NodeQuery, audit_log, check_pid, check_text, check_time, present, unix_now,
};
use super::{AdminState, AppState, Writes};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ironfence_admin::Access;
use ironfence_store::Person;
use ironfence_store::admin_nodes::{PersonDelete, PersonRow, PersonSearch};
use ironfence_store::portal::LocalUser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const MAX_TEXT: usize = 255;
const MAX_NOTES: usize = 4096;
/// Shortest password accepted for a local login (NIST SP 800-63B §5.1.1.2: at least 8).
const MIN_PASSWORD: usize = 8;
/// argon2 hashes whatever it is given; a bound keeps a request from costing more than a login.
const MAX_PASSWORD: usize = 256;

/// A user's local-login account (never its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalLoginJson {
    /// UNIX seconds; absent: valid at once.
    pub valid_from: Option<i64>,
    /// UNIX seconds; absent: never expires.
    pub expiration: Option<i64>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserJson {
    pub pid: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    pub created_at: Option<i64>,
    /// Devices owned.
    pub nodes: u64,
    /// Present when the user can log in on the portal with a password.
    pub local_login: Option<LocalLoginJson>,
}

impl From<&PersonRow> for UserJson {
    fn from(r: &PersonRow) -> UserJson {
        UserJson {
            pid: r.person.pid.clone(),
            firstname: r.person.firstname.clone(),
            lastname: r.person.lastname.clone(),
            email: r.person.email.clone(),
            notes: r.person.notes.clone(),
            created_at: r.created_at,
            nodes: r.nodes,
            local_login: r.local_user.map(|l| LocalLoginJson {
                valid_from: l.valid_from,
                expiration: l.expiration,
            }),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Case-insensitive text in the pid, names or email.
    pub q: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserPage {
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    pub users: Vec<UserJson>,
}

/// A new user.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub pid: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    /// Gives the user a local login (hashed with argon2id; at least 8 characters).
    pub password: Option<String>,
    /// Local login valid from (UNIX seconds).
    pub valid_from: Option<i64>,
    /// Local login expires (UNIX seconds).
    pub expiration: Option<i64>,
}

/// Changes to a user: a field absent is left as it is, `null` clears it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub firstname: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub lastname: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub notes: Option<Option<String>>,
    /// Sets the local-login password (creating the local login).
    pub password: Option<String>,
    /// `false` removes the local login.
    pub local_login: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub valid_from: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub expiration: Option<Option<i64>>,
}

pub fn endpoints() -> Vec<Endpoint> {
    let pid = "The user's id (pid)";
    vec![
        Endpoint::get("/users", "Search users")
            .tag("users")
            .access(Access::Read)
            .query::<UserQuery>()
            .returns::<UserPage>()
            .to(search_h),
        Endpoint::post("/users", "Create a user")
            .tag("users")
            .access(Access::Devices)
            .writes(Writes::Data)
            .body::<CreateUser>()
            .returns_with::<UserJson>(StatusCode::CREATED)
            .to(create_h),
        Endpoint::get("/users/{pid}", "Show a user")
            .tag("users")
            .access(Access::Read)
            .path_param("pid", pid)
            .returns::<UserJson>()
            .to(show_h),
        Endpoint::patch("/users/{pid}", "Change a user")
            .tag("users")
            .access(Access::Devices)
            .writes(Writes::Data)
            .path_param("pid", pid)
            .body::<UpdateUser>()
            .returns::<UserJson>()
            .to(update_h),
        Endpoint::delete("/users/{pid}", "Delete a user")
            .tag("users")
            .access(Access::Devices)
            .writes(Writes::Data)
            .path_param("pid", pid)
            .no_content()
            .to(delete_h),
        Endpoint::get("/users/{pid}/nodes", "A user's devices")
            .tag("users")
            .access(Access::Read)
            .path_param("pid", pid)
            .query::<NodeQuery>()
            .returns::<NodePage>()
            .to(nodes_h),
    ]
}

fn check_email(v: &str) -> Result<(), ApiError> {
    check_text("email", v, MAX_TEXT)?;
    match v.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !v.contains(' ') => {
            Ok(())
        }
        _ => Err(ApiError::invalid(
            "email",
            "an address like user@example.org",
        )),
    }
}

/// argon2id off the async threads (it costs tens of milliseconds by design).
/// The portal hash (Argon2) and the NT hash MSCHAPv2 needs (PEAP, TTLS):
/// the second can only be made while the clear password is at hand.
async fn hash_password(password: String) -> Result<(String, [u8; 16]), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(ApiError::invalid(
            "password",
            format!("between {MIN_PASSWORD} characters and {MAX_PASSWORD} bytes"),
        ));
    }
    let nt = ironfence_eap::mschapv2::nt_password_hash(&password);
    let portal = tokio::task::spawn_blocking(move || ironfence_portal::password::hash(&password))
        .await
        .map_err(|e| ApiError::internal("hashing the password", e))?
        .map_err(|e| ApiError::internal("hashing the password", e))?;
    Ok((portal, nt))
}

async fn load(state: &AdminState, pid: &str) -> Result<PersonRow, ApiError> {
    state
        .shared
        .store
        .get_person_row(pid)
        .await
        .map_err(|e| ApiError::store("reading the user", e))?
        .ok_or_else(|| ApiError::not_found(format!("no user {pid:?}")))
}

fn fields_of(r: Option<&PersonRow>) -> Vec<(&'static str, Option<String>)> {
    let login = |r: &PersonRow| {
        r.local_user.map(|l| {
            format!(
                "valid {} to {}",
                l.valid_from.map_or("now".into(), |t| t.to_string()),
                l.expiration.map_or("never".into(), |t| t.to_string())
            )
        })
    };
    match r {
        None => ["firstname", "lastname", "email", "notes", "local_login"]
            .into_iter()
            .map(|f| (f, None))
            .collect(),
        Some(r) => vec![
            ("firstname", r.person.firstname.clone()),
            ("lastname", r.person.lastname.clone()),
            ("email", r.person.email.clone()),
            ("notes", r.person.notes.clone()),
            ("local_login", login(r)),
        ],
    }
}

fn diff(
    before: Option<&PersonRow>,
    after: Option<&PersonRow>,
    password_set: bool,
) -> Vec<audit_log::FieldChange> {
    let mut out: Vec<audit_log::FieldChange> = fields_of(before)
        .into_iter()
        .zip(fields_of(after))
        .filter(|(b, a)| b.1 != a.1)
        .map(|((field, before), (_, after))| audit_log::FieldChange {
            field: field.into(),
            before,
            after,
        })
        .collect();
    if password_set {
        out.push(audit_log::FieldChange {
            field: "password".into(),
            before: None,
            after: Some("(changed)".into()),
        });
    }
    out
}

async fn audit(
    state: &AdminState,
    who: &Principal,
    action: &str,
    pid: &str,
    fields: Vec<audit_log::FieldChange>,
) -> Result<(), ApiError> {
    audit_log::record(
        state,
        who,
        audit_log::Change {
            action: action.into(),
            target: format!("user {pid}"),
            fields,
        },
    )
    .await
}

// ---- service functions ----

/// `GET /users`.
pub async fn search(state: &AdminState, q: UserQuery) -> Result<UserPage, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=ironfence_store::admin_nodes::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    let search = PersonSearch {
        text: q.q,
        limit,
        offset: q.offset.unwrap_or(0),
    };
    let page = state
        .shared
        .store
        .search_persons(&search)
        .await
        .map_err(|e| ApiError::store("searching users", e))?;
    Ok(UserPage {
        total: page.total,
        limit,
        offset: search.offset,
        users: page.people.iter().map(UserJson::from).collect(),
    })
}

/// `GET /users/{pid}`.
pub async fn show(state: &AdminState, pid: &str) -> Result<UserJson, ApiError> {
    Ok(UserJson::from(&load(state, pid).await?))
}

/// `POST /users`.
pub async fn create(
    state: &AdminState,
    who: &Principal,
    input: CreateUser,
) -> Result<UserJson, ApiError> {
    check_pid("pid", &input.pid)?;
    for (field, v, max) in [
        ("firstname", &input.firstname, MAX_TEXT),
        ("lastname", &input.lastname, MAX_TEXT),
        ("notes", &input.notes, MAX_NOTES),
    ] {
        if let Some(v) = v {
            check_text(field, v, max)?;
        }
    }
    if let Some(e) = &input.email {
        check_email(e)?;
    }
    for (field, t) in [
        ("valid_from", input.valid_from),
        ("expiration", input.expiration),
    ] {
        if let Some(t) = t {
            check_time(field, t)?;
        }
    }
    if input.password.is_none() && (input.valid_from.is_some() || input.expiration.is_some()) {
        return Err(ApiError::invalid(
            "password",
            "a local login's validity needs a password",
        ));
    }
    let hash = match input.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let now = unix_now();
    let person = Person {
        pid: input.pid.clone(),
        firstname: input.firstname,
        lastname: input.lastname,
        email: input.email,
        notes: input.notes,
    };
    let store = &state.shared.store;
    let created = store
        .create_person(&person, now)
        .await
        .map_err(|e| ApiError::store("creating the user", e))?;
    if !created {
        return Err(ApiError::conflict(format!(
            "user {:?} exists: change it with PATCH /users/{{pid}}",
            person.pid
        )));
    }
    if let Some((password, nt_hash)) = hash.clone() {
        store
            .upsert_local_user(
                &LocalUser {
                    pid: person.pid.clone(),
                    password,
                    nt_hash: Some(nt_hash),
                    valid_from: input.valid_from,
                    expiration: input.expiration,
                },
                now,
            )
            .await
            .map_err(|e| ApiError::store("creating the user's local login", e))?;
    }
    let stored = load(state, &person.pid).await?;
    audit(
        state,
        who,
        "user.create",
        &person.pid,
        diff(None, Some(&stored), hash.is_some()),
    )
    .await?;
    Ok(UserJson::from(&stored))
}

/// `PATCH /users/{pid}`.
pub async fn update(
    state: &AdminState,
    who: &Principal,
    pid: &str,
    input: UpdateUser,
) -> Result<UserJson, ApiError> {
    for (field, v, max) in [
        ("firstname", &input.firstname, MAX_TEXT),
        ("lastname", &input.lastname, MAX_TEXT),
        ("notes", &input.notes, MAX_NOTES),
    ] {
        if let Some(Some(v)) = v {
            check_text(field, v, max)?;
        }
    }
    if let Some(Some(e)) = &input.email {
        check_email(e)?;
    }
    for (field, t) in [
        ("valid_from", input.valid_from),
        ("expiration", input.expiration),
    ] {
        if let Some(Some(t)) = t {
            check_time(field, t)?;
        }
    }
    let removing = input.local_login == Some(false);
    if removing
        && (input.password.is_some() || input.valid_from.is_some() || input.expiration.is_some())
    {
        return Err(ApiError::invalid(
            "local_login",
            "false removes the local login: do not set a password or validity with it",
        ));
    }
    if input.local_login == Some(true) && input.password.is_none() {
        return Err(ApiError::invalid(
            "password",
            "a local login needs a password",
        ));
    }
    let before = load(state, pid).await?;
    let hash = match input.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let store = &state.shared.store;
    let mut person = before.person.clone();
    let set = |slot: &mut Option<String>, v: Option<Option<String>>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut person.firstname, input.firstname);
    set(&mut person.lastname, input.lastname);
    set(&mut person.email, input.email);
    set(&mut person.notes, input.notes);
    if person != before.person {
        store
            .upsert_person(&person)
            .await
            .map_err(|e| ApiError::store("changing the user", e))?;
    }
    if removing {
        store
            .delete_local_user(pid)
            .await
            .map_err(|e| ApiError::store("removing the local login", e))?;
    } else if hash.is_some() || input.valid_from.is_some() || input.expiration.is_some() {
        let current = store
            .get_local_user(pid)
            .await
            .map_err(|e| ApiError::store("reading the local login", e))?;
        let (password, nt_hash) = match (&hash, &current) {
            (Some((h, nt)), _) => (h.clone(), Some(*nt)),
            (None, Some(c)) => (c.password.clone(), c.nt_hash),
            (None, None) => {
                return Err(ApiError::invalid(
                    "password",
                    "the user has no local login: set a password to create one",
                ));
            }
        };
        let keep = |v: Option<Option<i64>>, old: Option<i64>| v.unwrap_or(old);
        store
            .upsert_local_user(
                &LocalUser {
                    pid: pid.to_string(),
                    password,
                    nt_hash,
                    valid_from: keep(
                        input.valid_from,
                        current.as_ref().and_then(|c| c.valid_from),
                    ),
                    expiration: keep(
                        input.expiration,
                        current.as_ref().and_then(|c| c.expiration),
                    ),
                },
                unix_now(),
            )
            .await
            .map_err(|e| ApiError::store("changing the local login", e))?;
    }
    let after = load(state, pid).await?;
    let fields = diff(Some(&before), Some(&after), hash.is_some());
    if !fields.is_empty() {
        audit(state, who, "user.update", pid, fields).await?;
    }
    Ok(UserJson::from(&after))
}

/// `DELETE /users/{pid}`.
pub async fn delete(state: &AdminState, who: &Principal, pid: &str) -> Result<(), ApiError> {
    let before = load(state, pid).await?;
    match state
        .shared
        .store
        .delete_person(pid)
        .await
        .map_err(|e| ApiError::store("deleting the user", e))?
    {
        PersonDelete::Deleted => {
            audit(
                state,
                who,
                "user.delete",
                pid,
                diff(Some(&before), None, false),
            )
            .await
        }
        PersonDelete::NotFound => Err(ApiError::not_found(format!("no user {pid:?}"))),
        PersonDelete::OwnsNodes(n) => Err(ApiError::conflict(format!(
            "user {pid:?} owns {n} device(s): give them to another owner (PATCH /nodes/{{mac}} pid) or delete them first"
        ))),
        PersonDelete::Protected => Err(ApiError::conflict(
            "the user \"default\" owns unclaimed devices and cannot be deleted",
        )),
    }
}

/// `GET /users/{pid}/nodes`.
pub async fn devices(
    state: &AdminState,
    pid: &str,
    mut q: NodeQuery,
) -> Result<NodePage, ApiError> {
    load(state, pid).await?;
    if q.pid.is_some() {
        return Err(ApiError::invalid("pid", "the path names the owner"));
    }
    q.pid = Some(pid.to_string());
    nodes::search(state, q).await
}

// ---- thin handlers ----

type Who = Extension<Principal>;
type St = State<AppState>;

async fn search_h(
    State(s): St,
    Params(q): Params<UserQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(search(&s, q).await?))
}

async fn create_h(
    State(s): St,
    Extension(who): Who,
    Body(b): Body<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, axum::Json(create(&s, &who, b).await?)))
}

async fn show_h(State(s): St, Path(pid): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(show(&s, &pid).await?))
}

async fn update_h(
    State(s): St,
    Extension(who): Who,
    Path(pid): Path<String>,
    Body(b): Body<UpdateUser>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(update(&s, &who, &pid, b).await?))
}

async fn delete_h(
    State(s): St,
    Extension(who): Who,
    Path(pid): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    delete(&s, &who, &pid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn nodes_h(
    State(s): St,
    Path(pid): Path<String>,
    Params(q): Params<NodeQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(devices(&s, &pid, q).await?))
}

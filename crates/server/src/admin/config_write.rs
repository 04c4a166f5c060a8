//! Configuration writes: one pipeline for every admin change to the files in `conf/`
//! (switches, roles, sources, pf.conf sections, admin accounts).
//!
//! ```text
//!  ConfigChange { edits on conf/*.conf, audit action/target, expected version }
//!    │ APPLY_QUEUE (the daemon's queue of pushed bundles: one apply + reload at a time)
//!    ▼
//!  snapshot   local bundle + its version (ironfence_cluster::local_version, shared lock)
//!    │        expected version given and different ─► 409
//!  edit       ini::Document per file (comments, order kept) ─► candidate bundle
//!    │        edit refused ─► 422 / 404 / 409
//!  apply      ironfence_cluster::apply: the same crash-safe path as a peer's push
//!    │        (exclusive ApplyLock, journal, staged files, validation of a full staging copy
//!    │        with Config::load_with_warnings_as = checkup's checks, atomic renames, version
//!    │        recorded). Under the lock: files changed since the snapshot ─► retry (or 409 with
//!    │        an expected version); diagnostics ─► 422, one FieldError each; nothing written
//!  reload     shared.reload(): this server runs the new version (restart-needed notes kept)
//!  audit      admin audit entry, field-level before/after, secrets redacted
//!  push       cluster: crate::cluster::push_to_peers (what `cluster sync --as-master` does);
//!             a peer that cannot be updated is named in the report, not an error
//! ```
//!
//! The clustering guide: "a configuration change is pushed to every server at once and the
//! answer names the servers that could not be updated"; configuration writes are accepted
//! while the database is read-only (they touch only files; the audit entry is spooled).

use super::AdminState;
use super::audit_log;
use super::auth::Principal;
use super::error::{ApiError, FieldError};
use axum::http::HeaderMap;
use ironfence_cluster::{Bundle, BundleError, BundleFile, ConfigVersion, StagedConfig};
use ironfence_config::{Config, Diagnostics, Document, EditError};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Files an admin change may write (directly in `conf/`). cluster.conf is changed with the
/// cluster tools (membership, secrets), never through the API.
const WRITABLE: &[&str] = &[
    "pf.conf",
    "switches.conf",
    "roles.conf",
    "authentication.conf",
    "profiles.conf",
    "networks.conf",
    "admin.conf",
];

/// Files holding secrets: created 0600 (admin.conf is forced to 0600 on every write: it holds
/// password hashes and TOTP secrets).
const PRIVATE: &[&str] = &[
    "admin.conf",
    "pf.conf",
    "switches.conf",
    "authentication.conf",
];

/// How often a change is re-prepared when another write (a peer's push, another admin) changed
/// the files between the snapshot and the lock, when the caller gave no expected version.
const ATTEMPTS: usize = 3;

/// One edit of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// `key = value` in `[section]` (created if missing); `None` removes the key.
    Set {
        file: String,
        section: String,
        key: String,
        value: Option<String>,
    },
    /// A new, empty section; 409 if it exists.
    AddSection { file: String, section: String },
    /// Removes a section and its keys; 404 if it does not exist.
    RemoveSection { file: String, section: String },
    /// Renames a section in place; 404 / 409.
    RenameSection {
        file: String,
        from: String,
        to: String,
    },
}

/// A change to the configuration files and what the admin audit log says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// Audit action, e.g. `switch.update`.
    pub action: String,
    /// Audit target, e.g. `switch 10.0.0.1`.
    pub target: String,
    pub edits: Vec<Edit>,
    /// The configuration version the caller read (`If-Match` / `expected_version`): a
    /// different version in force → 409, nothing written.
    pub expected_version: Option<String>,
}

impl ConfigChange {
    pub fn new(action: impl Into<String>, target: impl Into<String>) -> ConfigChange {
        ConfigChange {
            action: action.into(),
            target: target.into(),
            edits: Vec::new(),
            expected_version: None,
        }
    }
    /// Sets `key` (`None`: removes it).
    pub fn set(mut self, file: &str, section: &str, key: &str, value: Option<String>) -> Self {
        self.edits.push(Edit::Set {
            file: file.into(),
            section: section.into(),
            key: key.into(),
            value,
        });
        self
    }
    pub fn add_section(mut self, file: &str, section: &str) -> Self {
        self.edits.push(Edit::AddSection {
            file: file.into(),
            section: section.into(),
        });
        self
    }
    pub fn remove_section(mut self, file: &str, section: &str) -> Self {
        self.edits.push(Edit::RemoveSection {
            file: file.into(),
            section: section.into(),
        });
        self
    }
    pub fn rename_section(mut self, file: &str, from: &str, to: &str) -> Self {
        self.edits.push(Edit::RenameSection {
            file: file.into(),
            from: from.into(),
            to: to.into(),
        });
        self
    }
    pub fn expecting(mut self, version: Option<String>) -> Self {
        self.expected_version = version;
        self
    }
}

/// What happened on one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerOutcome {
    /// The server that took the request: written, validated and reloaded.
    ThisServer,
    /// A peer that now runs the new version.
    Updated,
    /// A peer that could not be updated (named with why): the change is saved and the
    /// cluster's conflict check brings it up to date when it is back.
    Failed,
    /// A peer disabled on this server (`ironfence cluster node NAME disable`): not pushed to.
    Disabled,
}

/// One server's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ServerResult {
    pub server: String,
    pub result: ServerOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to a configuration write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ConfigWriteReport {
    /// The configuration version in force after the change (the bundle hash; send it back as
    /// `If-Match` / `expected_version` with the next change).
    pub version: String,
    pub changed_at: i64,
    pub changed_by: String,
    /// False when the change left every file as it was (nothing written or pushed).
    pub changed: bool,
    /// Files written (relative to the installation root).
    pub files: Vec<String>,
    /// Every server of the cluster (this one alone on a single server).
    pub servers: Vec<ServerResult>,
    /// checkup warnings of the new configuration (file:line: reason).
    pub warnings: Vec<String>,
    /// What a reload cannot apply (restart needed) and other notes.
    pub notes: Vec<String>,
}

impl ConfigWriteReport {
    /// The servers that could not be updated.
    pub fn failed(&self) -> impl Iterator<Item = &ServerResult> {
        self.servers
            .iter()
            .filter(|s| s.result == ServerOutcome::Failed)
    }
}

/// The configuration files of this server at one version, read together.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: ConfigVersion,
    pub bundle: Bundle,
    conf_dir: std::path::PathBuf,
}

impl Snapshot {
    /// `conf/<file>` as a document (empty when the file does not exist). Syntax errors are
    /// kept out of the look-ups (checkup reports them).
    pub fn document(&self, file: &str) -> Document {
        let path = self.conf_dir.join(file);
        match self.bundle.get(&format!("conf/{file}")) {
            Some(f) => Document::parse_lenient(&path, &String::from_utf8_lossy(&f.content)).0,
            None => Document::new(path),
        }
    }
}

/// The files and version of this server now (blocking: run off the runtime threads).
fn snapshot_blocking(config: &Config) -> Result<Snapshot, ApiError> {
    let member = crate::cluster::Member::of(config);
    let (version, _, bundle) = member
        .version(config)
        .map_err(|e| ApiError::internal("reading the configuration", e))?;
    Ok(Snapshot {
        version,
        bundle,
        conf_dir: config.conf_dir.clone(),
    })
}

/// The files and version of this server now: what resources read (own values) and the version
/// a client sends back with its change.
pub async fn snapshot(state: &AdminState) -> Result<Snapshot, ApiError> {
    let config = state.shared.config();
    tokio::task::spawn_blocking(move || snapshot_blocking(&config))
        .await
        .map_err(|e| ApiError::internal("reading the configuration", e))?
}

/// The version a request says it read: `If-Match` (an ETag, quotes and `W/` ignored) or the
/// body's `expected_version`; `If-Match: *` means any.
pub fn expected_version(headers: &HeaderMap, body: Option<&str>) -> Option<String> {
    let header = headers
        .get(axum::http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        })
        .filter(|v| !v.is_empty() && v != "*");
    header.or_else(|| body.map(str::to_string).filter(|v| !v.is_empty()))
}

/// Whether `expected` names `actual`: the full hash, or its first 12 or more hex digits (what
/// tables show).
fn same_version(expected: &str, actual: &ConfigVersion) -> bool {
    let e = expected.trim().to_ascii_lowercase();
    e == actual.hash || (e.len() >= 12 && actual.hash.starts_with(&e))
}

/// Keys whose values never appear in answers or in the audit log.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "pass", "pwd", "totp", "community", "key"]
        .iter()
        .any(|s| k.contains(s))
}

/// How a secret is shown in answers; sent back unchanged in a change, it keeps the secret.
pub const SECRET_SET: &str = "(set)";

/// A value in a request body: text, a number or a flag (written `yes`/`no`); `null` removes
/// the key (inherit).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ConfValue {
    Text(String),
    Number(i64),
    Flag(bool),
}

impl ConfValue {
    pub fn into_text(self) -> String {
        match self {
            ConfValue::Text(s) => s,
            ConfValue::Number(n) => n.to_string(),
            ConfValue::Flag(b) => if b { "yes" } else { "no" }.to_string(),
        }
    }
}

/// A create (POST: `id` required) or change (PATCH: `id` renames).
#[derive(Debug, Clone, Default, serde::Deserialize, JsonSchema)]
pub struct SectionInput {
    /// POST: the new section's name; PATCH: a new name (rename).
    #[serde(default)]
    pub id: Option<String>,
    /// The configuration version read (or the `If-Match` header): 409 if it changed since.
    #[serde(default)]
    pub expected_version: Option<String>,
    /// The file's keys (switches.conf: `radiusSecret`, `registrationVlan`, …); `null` removes the key (inherited again). A secret sent back as
    /// `"(set)"` is kept.
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, Option<ConfValue>>")]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// A JSON value of a flat settings body as the text written to the file (`None`: remove the
/// key), or why it cannot be one.
pub fn conf_value(v: &serde_json::Value) -> Result<Option<String>, String> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Bool(b) => Ok(Some(ConfValue::Flag(*b).into_text())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        other => Err(format!(
            "expected a text, a whole number, true/false, or null (to inherit), not {other}"
        )),
    }
}

/// The edits that set `settings` (a flat request body) in `file` `[section]`, each key checked
/// with `check_key`, each secret (not sent back as [`SECRET_SET`]) with `check_secret`; every
/// refused key is named in one 422 and nothing is written.
pub fn settings_edits(
    mut change: ConfigChange,
    file: &str,
    section: &str,
    settings: &BTreeMap<String, serde_json::Value>,
    check_key: impl Fn(&str) -> Result<(), String>,
    check_secret: impl Fn(&str, &str) -> Option<String>,
) -> Result<ConfigChange, ApiError> {
    let mut errors = Vec::new();
    for (key, value) in settings {
        let value = match conf_value(value).and_then(|v| check_key(key).map(|()| v)) {
            Ok(v) => v,
            Err(why) => {
                errors.push(FieldError {
                    field: key.clone(),
                    message: why,
                });
                continue;
            }
        };
        if is_secret_key(key) {
            match value.as_deref() {
                Some(SECRET_SET) => continue,
                Some(v) => {
                    if let Some(why) = check_secret(key, v) {
                        errors.push(FieldError {
                            field: key.clone(),
                            message: why,
                        });
                        continue;
                    }
                }
                None => {}
            }
        }
        change = change.set(file, section, key, value);
    }
    if !errors.is_empty() {
        let msg = format!(
            "nothing was changed: {}",
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        );
        return Err(ApiError::invalid_fields(msg, errors));
    }
    Ok(change)
}

/// The keys a section sets itself, in file order, secrets shown as [`SECRET_SET`].
pub fn own_values(doc: &Document, section: &str) -> BTreeMap<String, String> {
    doc.section(section)
        .map(|s| {
            s.entries()
                .map(|(k, e)| {
                    let v = if is_secret_key(k) && !e.value.is_empty() {
                        SECRET_SET.to_string()
                    } else {
                        e.value.clone()
                    };
                    (k.to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One field's change, for the admin audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldDiff {
    field: String,
    before: Option<String>,
    after: Option<String>,
}

/// What one attempt produced.
enum Outcome {
    Written {
        version: ConfigVersion,
        files: Vec<String>,
        warnings: Vec<String>,
        diffs: Vec<FieldDiff>,
    },
    Unchanged {
        version: ConfigVersion,
    },
    /// The files changed between the snapshot and the lock.
    Raced,
}

/// Applies `change` to the configuration files of this server, validated as `checkup` does,
/// then reloads it and pushes it to the cluster. See the module docs.
pub async fn apply(
    state: &AdminState,
    who: &Principal,
    change: ConfigChange,
) -> Result<ConfigWriteReport, ApiError> {
    check_files(&change)?;
    let shared = state.shared.clone();
    // One apply + reload at a time on this server, in the same queue as the peers' pushes.
    let turn = crate::cluster::APPLY_QUEUE.lock().await;
    let mut outcome = Outcome::Raced;
    for _ in 0..ATTEMPTS {
        let config = shared.config();
        let c = change.clone();
        outcome = tokio::task::spawn_blocking(move || write_blocking(&config, &c))
            .await
            .map_err(|e| ApiError::internal("writing the configuration", e))??;
        if !matches!(outcome, Outcome::Raced) {
            break;
        }
        if change.expected_version.is_some() {
            break;
        }
    }
    let (version, files, warnings, diffs) = match outcome {
        Outcome::Raced => {
            return Err(ApiError::conflict(
                "the configuration was changed by someone else while this change was prepared \
                 (another admin, or a push from the cluster): read it again and retry",
            ));
        }
        Outcome::Unchanged { version } => {
            drop(turn);
            let config = shared.config();
            return Ok(ConfigWriteReport {
                version: version.hash,
                changed_at: version.changed_at,
                changed_by: version.changed_by,
                changed: false,
                files: Vec::new(),
                servers: vec![ServerResult {
                    server: config.identity.clone(),
                    result: ServerOutcome::ThisServer,
                    error: None,
                }],
                warnings: Vec::new(),
                notes: vec!["nothing to change: the configuration already says this".into()],
            });
        }
        Outcome::Written {
            version,
            files,
            warnings,
            diffs,
        } => (version, files, warnings, diffs),
    };
    // The files are in place; the running configuration follows.
    let reload_shared = shared.clone();
    let reloaded = tokio::task::spawn_blocking(move || reload_shared.reload())
        .await
        .map_err(|e| ApiError::internal("reloading the configuration", e))?;
    drop(turn);
    let config = shared.config();
    let mut notes = Vec::new();
    let this = match reloaded {
        Ok(n) => {
            notes.extend(n);
            ServerResult {
                server: config.identity.clone(),
                result: ServerOutcome::ThisServer,
                error: None,
            }
        }
        Err(e) => ServerResult {
            server: config.identity.clone(),
            result: ServerOutcome::Failed,
            error: Some(format!(
                "saved, but the running configuration was not reloaded: {e}"
            )),
        },
    };
    if let Err(e) = audit(state, who, &change, diffs).await {
        // The change is in force; say that its audit entry is missing rather than hide it.
        tracing::error!(error = %e, action = %change.action, target = %change.target, "admin audit entry not recorded");
        notes.push(format!("the admin audit entry could not be recorded: {e}"));
    }
    let mut servers = vec![this];
    if config.is_cluster() {
        servers.extend(push(&config, &version).await);
    }
    tracing::info!(
        account = %who.account, action = %change.action, target = %change.target,
        version = version.short(), ?files,
        failed = ?servers.iter().filter(|s| s.result == ServerOutcome::Failed).map(|s| &s.server).collect::<Vec<_>>(),
        "configuration changed through the admin API"
    );
    Ok(ConfigWriteReport {
        version: version.hash,
        changed_at: version.changed_at,
        changed_by: version.changed_by,
        changed: true,
        files,
        servers,
        warnings,
        notes,
    })
}

/// Pushes the version just written to every enabled peer; one result per peer.
async fn push(config: &Config, version: &ConfigVersion) -> Vec<ServerResult> {
    let local =
        crate::cluster::LocalClusterState::load(&config.pf.general.state_dir).unwrap_or_default();
    let peers: Vec<String> = config.peers().map(|p| p.name.clone()).collect();
    let mut out: Vec<ServerResult> = Vec::new();
    match crate::cluster::push_to_peers(config, None).await {
        Ok(report) => {
            let pushed = report.version.as_ref().map(|v| v.hash.clone());
            for name in &peers {
                if local.is_disabled(name) {
                    out.push(ServerResult {
                        server: name.clone(),
                        result: ServerOutcome::Disabled,
                        error: Some(
                            "disabled on this server: not pushed to (enable it with `ironfence cluster node NAME enable`)"
                                .into(),
                        ),
                    });
                } else if let Some(f) = report.failed.iter().find(|f| &f.server == name) {
                    out.push(ServerResult {
                        server: name.clone(),
                        result: ServerOutcome::Failed,
                        error: Some(f.error.clone()),
                    });
                } else if report.updated.contains(name) {
                    let error = (pushed.as_deref() != Some(version.hash.as_str())).then(|| {
                        format!(
                            "updated to {}, a newer version than this change's",
                            pushed.as_deref().unwrap_or("?")
                        )
                    });
                    out.push(ServerResult {
                        server: name.clone(),
                        result: ServerOutcome::Updated,
                        error,
                    });
                }
            }
        }
        Err(e) => {
            for name in peers {
                let disabled = local.is_disabled(&name);
                out.push(ServerResult {
                    server: name,
                    result: if disabled {
                        ServerOutcome::Disabled
                    } else {
                        ServerOutcome::Failed
                    },
                    error: Some(format!("not pushed: {e}")),
                });
            }
        }
    }
    out
}

/// 422 for a file an admin change may not write.
fn check_files(change: &ConfigChange) -> Result<(), ApiError> {
    for e in &change.edits {
        let file = match e {
            Edit::Set { file, .. }
            | Edit::AddSection { file, .. }
            | Edit::RemoveSection { file, .. }
            | Edit::RenameSection { file, .. } => file,
        };
        if !WRITABLE.contains(&file.as_str()) {
            return Err(ApiError::invalid(
                "file",
                format!(
                    "{file} cannot be changed through the admin API (writable: {}; cluster.conf is changed with `ironfence cluster` commands)",
                    WRITABLE.join(", ")
                ),
            ));
        }
    }
    if change.edits.is_empty() {
        return Err(ApiError::bad_request("the change is empty"));
    }
    Ok(())
}

fn file_of(e: &Edit) -> &str {
    match e {
        Edit::Set { file, .. }
        | Edit::AddSection { file, .. }
        | Edit::RemoveSection { file, .. }
        | Edit::RenameSection { file, .. } => file,
    }
}

/// The edits applied to the documents of `snap`; the per-field diff for the audit log.
fn edit_documents(
    snap: &Snapshot,
    change: &ConfigChange,
) -> Result<(BTreeMap<String, Document>, Vec<FieldDiff>), ApiError> {
    let mut docs: BTreeMap<String, Document> = BTreeMap::new();
    let mut diffs = Vec::new();
    let sections: std::collections::BTreeSet<(&str, &str)> = change
        .edits
        .iter()
        .filter_map(|e| match e {
            Edit::Set { file, section, .. } => Some((file.as_str(), section.as_str())),
            _ => None,
        })
        .collect();
    let qualified = sections.len() > 1;
    for e in &change.edits {
        let file = file_of(e).to_string();
        let doc = docs
            .entry(file.clone())
            .or_insert_with(|| snap.document(&file));
        match e {
            Edit::Set {
                section,
                key,
                value,
                ..
            } => {
                let before = doc.get(section, key).map(|e| e.value.clone());
                match value {
                    Some(v) => doc
                        .set(section, key, v)
                        .map_err(|err| edit_error(key, err))?,
                    None => {
                        doc.remove(section, key);
                    }
                }
                if before != *value {
                    let field = if qualified {
                        format!("[{section}] {key}")
                    } else {
                        key.clone()
                    };
                    let redact = |v: &Option<String>| {
                        if is_secret_key(key) {
                            v.as_ref().map(|_| "(set)".to_string())
                        } else {
                            v.clone()
                        }
                    };
                    diffs.push(FieldDiff {
                        field,
                        before: redact(&before),
                        after: if is_secret_key(key) && value.is_some() {
                            Some("(changed)".into())
                        } else {
                            value.clone()
                        },
                    });
                }
            }
            Edit::AddSection { section, .. } => {
                if doc.section(section).is_some() {
                    return Err(ApiError::conflict(format!(
                        "{file} already has a [{section}] section: change it instead (PATCH), or choose another name"
                    )));
                }
                // An empty section is written as its header alone: set + remove of a key
                // creates it in the document's own style.
                doc.set(section, "x", "")
                    .map_err(|err| edit_error("id", err))?;
                doc.remove(section, "x");
                diffs.push(FieldDiff {
                    field: "section".into(),
                    before: None,
                    after: Some(section.clone()),
                });
            }
            Edit::RemoveSection { section, .. } => {
                if !doc.remove_section(section) {
                    return Err(ApiError::not_found(format!(
                        "{file} has no [{section}] section"
                    )));
                }
                diffs.push(FieldDiff {
                    field: "section".into(),
                    before: Some(section.clone()),
                    after: None,
                });
            }
            Edit::RenameSection { from, to, .. } => {
                doc.rename_section(from, to).map_err(|err| match err {
                    EditError::NoSuchSection(s) => {
                        ApiError::not_found(format!("{file} has no [{s}] section"))
                    }
                    EditError::SectionExists(s) => {
                        ApiError::conflict(format!("{file} already has a [{s}] section"))
                    }
                    other => edit_error("id", other),
                })?;
                diffs.push(FieldDiff {
                    field: "section".into(),
                    before: Some(from.clone()),
                    after: Some(to.clone()),
                });
            }
        }
    }
    Ok((docs, diffs))
}

fn edit_error(field: &str, err: EditError) -> ApiError {
    match err {
        EditError::NoSuchSection(s) => ApiError::not_found(format!("no [{s}] section")),
        EditError::SectionExists(s) => ApiError::conflict(format!("[{s}] already exists")),
        other => ApiError::invalid(field, other.to_string()),
    }
}

/// The candidate bundle: `base` with the edited documents.
fn candidate(base: &Bundle, docs: &BTreeMap<String, Document>) -> Result<Bundle, ApiError> {
    let mut files: Vec<BundleFile> = base.files().to_vec();
    for (name, doc) in docs {
        let path = format!("conf/{name}");
        let content = doc.to_string().into_bytes();
        let private = PRIVATE.contains(&name.as_str());
        match files.iter_mut().find(|f| f.path == path) {
            Some(f) => {
                f.content = content.into();
                if name == "admin.conf" {
                    f.mode &= 0o600;
                }
            }
            None => files.push(BundleFile {
                path,
                mode: if private { 0o600 } else { 0o640 },
                content: content.into(),
            }),
        }
    }
    Bundle::from_files(files).map_err(|e| ApiError::internal("preparing the configuration", e))
}

/// One attempt, under nothing but the apply lock that `ironfence_cluster::apply` takes.
fn write_blocking(config: &Arc<Config>, change: &ConfigChange) -> Result<Outcome, ApiError> {
    let snap = snapshot_blocking(config)?;
    if let Some(expected) = &change.expected_version
        && !same_version(expected, &snap.version)
    {
        return Err(ApiError::conflict(format!(
            "the configuration changed since you read it (you read {}, in force is {} changed by {}): read it again and retry",
            expected.chars().take(12).collect::<String>(),
            snap.version.short(),
            snap.version.changed_by
        )));
    }
    let (docs, diffs) = edit_documents(&snap, change)?;
    let new = candidate(&snap.bundle, &docs)?;
    if new.hash() == snap.bundle.hash() {
        return Ok(Outcome::Unchanged {
            version: snap.version,
        });
    }
    let now = crate::cluster::unix_now();
    let version = ConfigVersion {
        hash: new.hash(),
        changed_at: now,
        changed_by: config.identity.clone(),
    };
    let member = crate::cluster::Member::of(config);
    let base_hash = snap.bundle.hash();
    let mut raced = false;
    let mut refused: Option<Diagnostics> = None;
    let mut warnings = Diagnostics::default();
    let identity = config.identity.clone();
    let result = ironfence_cluster::apply(
        &member.receive_policy(config),
        new.clone(),
        &version,
        now,
        |staging_conf| {
            // Under the exclusive apply lock: the files must still be the snapshot's, or this
            // change would silently undo the other one.
            match ironfence_cluster::collect(
                &member.conf_dir,
                &member.install_root,
                &config.cluster_files,
            ) {
                Ok(now_on_disk) if now_on_disk.hash() == base_hash => {}
                Ok(_) => {
                    raced = true;
                    return Err("the files changed since they were read".into());
                }
                Err(e) => return Err(e.to_string()),
            }
            // The same checks as `ironfence checkup` (for this server's identity).
            match Config::load_with_warnings_as(staging_conf, Some(&identity)) {
                Ok((c, w)) => {
                    warnings = w;
                    Ok(StagedConfig {
                        state_dir: c.pf.general.state_dir,
                    })
                }
                Err(d) => {
                    let msg = d.to_string();
                    refused = Some(d);
                    Err(msg)
                }
            }
        },
    );
    match result {
        Ok(report) => {
            let mut files = report.added.clone();
            files.extend(report.modified.iter().cloned());
            Ok(Outcome::Written {
                version: report.version,
                files,
                warnings: warnings
                    .warnings()
                    .map(|d| describe(d, Path::new("")))
                    .collect(),
                diffs,
            })
        }
        Err(BundleError::Validation(_)) if raced => Ok(Outcome::Raced),
        Err(BundleError::Validation(msg)) => match refused {
            Some(diags) => Err(refused_error(&diags, &new)),
            None => Err(ApiError::internal("validating the configuration", msg)),
        },
        Err(e) => Err(ApiError::internal("writing the configuration", e)),
    }
}

/// `file:line [section]: message` with the file named relative to `conf/`.
fn describe(d: &ironfence_config::Diagnostic, _root: &Path) -> String {
    let file = d
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut s = file;
    if let Some(line) = d.line {
        s.push_str(&format!(":{line}"));
    }
    if let Some(section) = &d.section {
        s.push_str(&format!(" [{section}]"));
    }
    s.push_str(": ");
    s.push_str(&d.message);
    s
}

/// 422 with one field per error of the refused configuration: the key on the diagnostic's
/// line in the candidate file (what the request set), else the section or the file.
fn refused_error(diags: &Diagnostics, candidate: &Bundle) -> ApiError {
    let mut docs: BTreeMap<String, Document> = BTreeMap::new();
    let errors: Vec<FieldError> = diags
        .errors()
        .map(|d| {
            let file = d
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let doc = docs.entry(file.clone()).or_insert_with(|| {
                candidate
                    .get(&format!("conf/{file}"))
                    .map(|f| Document::parse_lenient(&file, &String::from_utf8_lossy(&f.content)).0)
                    .unwrap_or_else(|| Document::new(&file))
            });
            let located = d.line.and_then(|l| doc.locate(l));
            let field = match (located, &d.section) {
                (Some((_, Some(key))), _) => key.to_string(),
                (Some((section, None)), _) => format!("{file} [{section}]"),
                (None, Some(section)) => format!("{file} [{section}]"),
                (None, None) => file.clone(),
            };
            FieldError {
                field,
                message: describe(d, Path::new("")),
            }
        })
        .collect();
    let n = errors.len();
    let first = errors
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    ApiError::invalid_fields(
        format!(
            "the configuration was not changed: {n} error{} ({first})",
            if n == 1 { "" } else { "s" }
        ),
        errors,
    )
}

/// The admin audit entry of a configuration change.
async fn audit(
    state: &AdminState,
    who: &Principal,
    change: &ConfigChange,
    diffs: Vec<FieldDiff>,
) -> Result<(), ApiError> {
    audit_log::record(
        state,
        who,
        audit_log::Change {
            action: change.action.clone(),
            target: change.target.clone(),
            fields: diffs
                .into_iter()
                .map(|d| audit_log::FieldChange {
                    field: d.field,
                    before: d.before,
                    after: d.after,
                })
                .collect(),
        },
    )
    .await
}

#[cfg(test)]
pub(crate) mod tests;

//! Authentication sources of the captive portal (authentication.conf): `/sources…`, each with
//! its rules (`[<source> rule <name>]`: conditionN, actionN=set_role=…, match, class).
//! Passwords (LDAP bind) are shown as `"(set)"`. A source named in profiles.conf's
//! `[default] sources` cannot be deleted until it is removed there (409).

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
use ironfence_config::Document;
use ironfence_config::authentication::{check_rule_key, check_source_key};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

pub const FILE: &str = "authentication.conf";
const PROFILES: &str = "profiles.conf";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RuleView {
    pub name: String,
    pub own: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SourceView {
    pub id: String,
    /// `type`: SQL, Null, LDAP or AD.
    pub source_type: Option<String>,
    pub own: BTreeMap<String, String>,
    /// In file order (the first matching rule decides).
    pub rules: Vec<RuleView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SourceList {
    pub version: String,
    pub sources: Vec<SourceView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SourceShow {
    pub version: String,
    pub source: SourceView,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SourceWritten {
    pub source: Option<SourceView>,
    pub report: ConfigWriteReport,
}

fn rule_section(source: &str, rule: &str) -> String {
    format!("{source} rule {rule}")
}

fn source_ids(doc: &Document) -> Vec<String> {
    doc.sections()
        .map(|(n, _)| n)
        .filter(|n| !n.contains(" rule "))
        .map(str::to_string)
        .collect()
}

fn view(doc: &Document, id: &str) -> SourceView {
    let own = own_values(doc, id);
    let prefix = format!("{id} rule ");
    SourceView {
        id: id.to_string(),
        source_type: own.get("type").cloned(),
        own,
        rules: doc
            .sections()
            .filter_map(|(n, _)| n.strip_prefix(&prefix).map(|r| (n, r)))
            .map(|(n, r)| RuleView {
                name: r.to_string(),
                own: own_values(doc, n),
            })
            .collect(),
    }
}

pub async fn list(state: &AdminState) -> Result<SourceList, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(FILE);
    Ok(SourceList {
        version: snap.version.hash.clone(),
        sources: source_ids(&doc).iter().map(|id| view(&doc, id)).collect(),
    })
}

async fn find(state: &AdminState, _source: &str) -> Result<(String, Document), ApiError> {
    let snap = config_write::snapshot(state).await?;
    Ok((snap.version.hash.clone(), snap.document(FILE)))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no authentication source [{id}] in authentication.conf"
    ))
}

fn exists(doc: &Document, id: &str) -> bool {
    !id.contains(" rule ") && doc.section(id).is_some()
}

pub async fn show(state: &AdminState, id: &str) -> Result<SourceShow, ApiError> {
    let (version, doc) = find(state, id).await?;
    if !exists(&doc, id) {
        return Err(not_found(id));
    }
    Ok(SourceShow {
        version,
        source: view(&doc, id),
    })
}

fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{name:?} is not a name: letters, digits, _ - ."),
        ))
    }
}

fn source_edits(
    change: ConfigChange,
    id: &str,
    input: &SectionInput,
) -> Result<ConfigChange, ApiError> {
    config_write::settings_edits(
        change,
        FILE,
        id,
        &input.settings,
        check_source_key,
        |_, _| None,
    )
}

fn rule_edits(
    change: ConfigChange,
    section: &str,
    input: &SectionInput,
) -> Result<ConfigChange, ApiError> {
    config_write::settings_edits(
        change,
        FILE,
        section,
        &input.settings,
        check_rule_key,
        |_, _| None,
    )
}

async fn written(
    state: &AdminState,
    id: &str,
    report: ConfigWriteReport,
) -> Result<SourceWritten, ApiError> {
    let (_, doc) = find(state, id).await?;
    Ok(SourceWritten {
        source: exists(&doc, id).then(|| view(&doc, id)),
        report,
    })
}

pub async fn create(
    state: &AdminState,
    who: &Principal,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<SourceWritten, ApiError> {
    let id = input.id.clone().unwrap_or_default();
    check_name("id", &id)?;
    if !input.settings.contains_key("type") {
        return Err(ApiError::invalid(
            "type",
            "a source needs a type: SQL, Null, LDAP or AD",
        ));
    }
    let change = ConfigChange::new("source.create", format!("source {id}"))
        .add_section(FILE, &id)
        .expecting(expected_version);
    let change = source_edits(change, &id, &input)?;
    let report = config_write::apply(state, who, change).await?;
    written(state, &id, report).await
}

pub async fn update(
    state: &AdminState,
    who: &Principal,
    id: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<SourceWritten, ApiError> {
    let (_, doc) = find(state, id).await?;
    if !exists(&doc, id) {
        return Err(not_found(id));
    }
    if input.id.as_deref().is_some_and(|n| n != id) {
        return Err(ApiError::invalid(
            "id",
            "a source is not renamed (profiles.conf names it): create the new one and delete this one",
        ));
    }
    let change =
        ConfigChange::new("source.update", format!("source {id}")).expecting(expected_version);
    let change = source_edits(change, id, &input)?;
    if change.edits.is_empty() {
        return Err(ApiError::bad_request("nothing to change"));
    }
    let report = config_write::apply(state, who, change).await?;
    written(state, id, report).await
}

/// Removes a source and its rules.
pub async fn delete(
    state: &AdminState,
    who: &Principal,
    id: &str,
    expected_version: Option<String>,
) -> Result<SourceWritten, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(FILE);
    if !exists(&doc, id) {
        return Err(not_found(id));
    }
    let profiles = snap.document(PROFILES);
    if let Some(e) = profiles.get("default", "sources")
        && e.value.split(',').any(|s| s.trim() == id)
    {
        return Err(ApiError::conflict(format!(
            "source {id} is offered by the portal profile (profiles.conf [default] sources = {}): remove it there first",
            e.value
        )));
    }
    let mut change = ConfigChange::new("source.delete", format!("source {id}"))
        .remove_section(FILE, id)
        .expecting(expected_version);
    for r in view(&doc, id).rules {
        change = change.remove_section(FILE, &rule_section(id, &r.name));
    }
    let report = config_write::apply(state, who, change).await?;
    Ok(SourceWritten {
        source: None,
        report,
    })
}

/// Adds a rule at the end of the source's rules (`id`: the rule's name).
pub async fn create_rule(
    state: &AdminState,
    who: &Principal,
    source: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<SourceWritten, ApiError> {
    let (_, doc) = find(state, source).await?;
    if !exists(&doc, source) {
        return Err(not_found(source));
    }
    let rule = input.id.clone().unwrap_or_default();
    check_name("id", &rule)?;
    let section = rule_section(source, &rule);
    let change = ConfigChange::new("source.rule.create", format!("source {source} rule {rule}"))
        .add_section(FILE, &section)
        .expecting(expected_version);
    let change = rule_edits(change, &section, &input)?;
    let report = config_write::apply(state, who, change).await?;
    written(state, source, report).await
}

pub async fn update_rule(
    state: &AdminState,
    who: &Principal,
    source: &str,
    rule: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<SourceWritten, ApiError> {
    let (_, doc) = find(state, source).await?;
    let section = rule_section(source, rule);
    if !exists(&doc, source) || doc.section(&section).is_none() {
        return Err(ApiError::not_found(format!(
            "no rule {rule:?} in source {source:?}"
        )));
    }
    let mut change =
        ConfigChange::new("source.rule.update", format!("source {source} rule {rule}"))
            .expecting(expected_version);
    if let Some(new) = input.id.as_deref().filter(|n| *n != rule) {
        check_name("id", new)?;
        change = change.rename_section(FILE, &section, &rule_section(source, new));
    }
    // Keys are set on the section's final name.
    let target = input
        .id
        .as_deref()
        .map(|n| rule_section(source, n))
        .unwrap_or(section);
    let change = rule_edits(change, &target, &input)?;
    if change.edits.is_empty() {
        return Err(ApiError::bad_request("nothing to change"));
    }
    let report = config_write::apply(state, who, change).await?;
    written(state, source, report).await
}

pub async fn delete_rule(
    state: &AdminState,
    who: &Principal,
    source: &str,
    rule: &str,
    expected_version: Option<String>,
) -> Result<SourceWritten, ApiError> {
    let change = ConfigChange::new("source.rule.delete", format!("source {source} rule {rule}"))
        .remove_section(FILE, &rule_section(source, rule))
        .expecting(expected_version);
    let report = config_write::apply(state, who, change).await?;
    written(state, source, report).await
}

type Json<T> = Result<axum::Json<T>, ApiError>;

fn ev(headers: &HeaderMap, input: Option<&SectionInput>) -> Option<String> {
    config_write::expected_version(headers, input.and_then(|i| i.expected_version.as_deref()))
}

async fn h_list(State(st): State<AppState>) -> Json<SourceList> {
    list(&st).await.map(axum::Json)
}
async fn h_show(State(st): State<AppState>, Path(id): Path<String>) -> Json<SourceShow> {
    show(&st, &id).await.map(axum::Json)
}
async fn h_create(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Result<(StatusCode, axum::Json<SourceWritten>), ApiError> {
    let v = ev(&headers, Some(&input));
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
) -> Json<SourceWritten> {
    let v = ev(&headers, Some(&input));
    update(&st, &who, &id, input, v).await.map(axum::Json)
}
async fn h_delete(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<SourceWritten> {
    let v = ev(&headers, None);
    delete(&st, &who, &id, v).await.map(axum::Json)
}
async fn h_create_rule(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Result<(StatusCode, axum::Json<SourceWritten>), ApiError> {
    let v = ev(&headers, Some(&input));
    create_rule(&st, &who, &id, input, v)
        .await
        .map(|w| (StatusCode::CREATED, axum::Json(w)))
}
async fn h_update_rule(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, rule)): Path<(String, String)>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Json<SourceWritten> {
    let v = ev(&headers, Some(&input));
    update_rule(&st, &who, &id, &rule, input, v)
        .await
        .map(axum::Json)
}
async fn h_delete_rule(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, rule)): Path<(String, String)>,
    headers: HeaderMap,
) -> Json<SourceWritten> {
    let v = ev(&headers, None);
    delete_rule(&st, &who, &id, &rule, v).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    let w = |e: Endpoint| {
        e.tag("sources")
            .access(Access::Config)
            .writes(Writes::Config)
    };
    vec![
        Endpoint::get("/sources", "List authentication sources and their rules")
            .tag("sources")
            .access(Access::Read)
            .returns::<SourceList>()
            .to(h_list),
        w(Endpoint::post("/sources", "Add an authentication source"))
            .body::<SectionInput>()
            .returns_with::<SourceWritten>(StatusCode::CREATED)
            .to(h_create),
        Endpoint::get("/sources/{id}", "Show a source")
            .tag("sources")
            .access(Access::Read)
            .path_param("id", "source id")
            .returns::<SourceShow>()
            .to(h_show),
        w(Endpoint::patch("/sources/{id}", "Change a source"))
            .path_param("id", "source id")
            .body::<SectionInput>()
            .returns::<SourceWritten>()
            .to(h_update),
        w(Endpoint::delete(
            "/sources/{id}",
            "Remove a source and its rules",
        ))
        .path_param("id", "source id")
        .returns::<SourceWritten>()
        .to(h_delete),
        w(Endpoint::post("/sources/{id}/rules", "Add a rule (last)"))
            .path_param("id", "source id")
            .body::<SectionInput>()
            .returns_with::<SourceWritten>(StatusCode::CREATED)
            .to(h_create_rule),
        w(Endpoint::patch(
            "/sources/{id}/rules/{rule}",
            "Change (or rename) a rule",
        ))
        .path_param("id", "source id")
        .path_param("rule", "rule name")
        .body::<SectionInput>()
        .returns::<SourceWritten>()
        .to(h_update_rule),
        w(Endpoint::delete(
            "/sources/{id}/rules/{rule}",
            "Remove a rule",
        ))
        .path_param("id", "source id")
        .path_param("rule", "rule name")
        .returns::<SourceWritten>()
        .to(h_delete_rule),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::config_write::tests::{admin, state_with};
    use crate::admin::json::parse;

    const AUTH: &str = "\
# portal sources
[local]
type=SQL
description=Local users

[local rule staff]
class=authentication
match=all
action0=set_role=default
action1=set_access_duration=1D
";

    fn body(json: &str) -> SectionInput {
        parse::<SectionInput>(json.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn sources_and_rules_are_managed_and_validated() {
        let (_d, st) = state_with(&[("authentication.conf", AUTH)]).await;
        let l = list(&st).await.unwrap();
        assert_eq!(l.sources.len(), 1);
        assert_eq!(l.sources[0].rules[0].name, "staff");
        let w = create(
            &st,
            &admin(),
            body(r#"{"id": "corp", "type": "LDAP", "host": "127.0.83.5", "basedn": "dc=corp", "binddn": "cn=ironfence", "password": "bind-secret", "usernameattribute": "uid"}"#),
            None,
        )
        .await
        .unwrap();
        let src = w.source.unwrap();
        assert_eq!(src.own.get("password").unwrap(), "(set)");
        assert!(st.shared.config().authentication.source("corp").is_some());
        // A rule whose role does not exist: checkup's error, named.
        let e = create_rule(
            &st,
            &admin(),
            "corp",
            body(r#"{"id": "all", "class": "authentication", "action0": "set_role=nosuchrole", "action1": "set_access_duration=1h"}"#),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.errors[0].field.as_str()),
            (422, "action0"),
            "{e}"
        );
        let w = create_rule(
            &st,
            &admin(),
            "corp",
            body(r#"{"id": "all", "class": "authentication", "action0": "set_role=guest", "action1": "set_access_duration=1h"}"#),
            None,
        )
        .await
        .unwrap();
        assert_eq!(w.source.unwrap().rules[0].name, "all");
        let e = update(&st, &admin(), "corp", body(r#"{"hots": "x"}"#), None)
            .await
            .unwrap_err();
        assert_eq!(e.errors[0].field, "hots");
        let e = update_rule(
            &st,
            &admin(),
            "corp",
            "all",
            body(r#"{"acton0": "x"}"#),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.errors[0].field, "acton0");
        delete(&st, &admin(), "corp", None).await.unwrap();
        let text = std::fs::read_to_string(st.shared.config().conf_dir.join(FILE)).unwrap();
        assert!(!text.contains("corp"), "{text}");
        assert!(text.starts_with("# portal sources\n[local]\n"), "{text}");
        assert_eq!(show(&st, "corp").await.unwrap_err().status.as_u16(), 404);
    }
}

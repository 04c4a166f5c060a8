//! The configuration sections the project has: pf.conf (`/config/pf…`, read and change) and
//! cluster.conf (`/config/cluster`, read-only: membership and cluster secrets are changed
//! with the `ironfence cluster` tools). Secrets are shown as `"(set)"`. A change that a reload
//! cannot apply (ports, database, …) says so in the report's `notes` (restart needed).

use super::api::{Endpoint, Writes};
use super::auth::Principal;
use super::config_write::{self, ConfigChange, ConfigWriteReport, SectionInput, own_values};
use super::error::ApiError;
use super::json::Body;
use super::{AdminState, AppState};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use ironfence_admin::Access;
use ironfence_config::Document;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

pub const PF: &str = "pf.conf";
pub const CLUSTER: &str = "cluster.conf";

/// One section of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SectionView {
    pub name: String,
    /// The keys the file sets (secrets as "(set)"); built-in defaults apply to the others.
    pub own: BTreeMap<String, String>,
    /// The keys ironfence reads in this section.
    pub known_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PfConfView {
    pub version: String,
    pub sections: Vec<SectionView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PfSectionShow {
    pub version: String,
    pub section: SectionView,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PfSectionWritten {
    pub section: SectionView,
    pub report: ConfigWriteReport,
}

/// cluster.conf as it is (read-only here).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterConfView {
    pub version: String,
    /// cluster.conf defines a cluster.
    pub cluster: bool,
    /// The members, in cluster.conf order.
    pub servers: Vec<String>,
    pub this_server: String,
    pub sections: Vec<SectionView>,
}

fn section_view(doc: &Document, name: &str) -> SectionView {
    SectionView {
        name: name.to_string(),
        own: own_values(doc, name),
        known_keys: ironfence_config::pf_section_keys(name)
            .unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect(),
    }
}

/// The sections of pf.conf ironfence reads: the known ones, then `interface X` in file order.
fn pf_names(doc: &Document) -> Vec<String> {
    let mut names: Vec<String> = ironfence_config::pf_sections()
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend(
        doc.sections()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with("interface "))
            .map(str::to_string),
    );
    names
}

pub async fn pf(state: &AdminState) -> Result<PfConfView, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(PF);
    Ok(PfConfView {
        version: snap.version.hash.clone(),
        sections: pf_names(&doc)
            .iter()
            .map(|n| section_view(&doc, n))
            .collect(),
    })
}

fn unknown_section(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "pf.conf has no section [{name}] that ironfence reads (sections: {}, interface NAME)",
        ironfence_config::pf_sections().join(", ")
    ))
}

pub async fn pf_section(state: &AdminState, name: &str) -> Result<PfSectionShow, ApiError> {
    if ironfence_config::pf_section_keys(name).is_none() {
        return Err(unknown_section(name));
    }
    let snap = config_write::snapshot(state).await?;
    Ok(PfSectionShow {
        version: snap.version.hash.clone(),
        section: section_view(&snap.document(PF), name),
    })
}

/// Changes keys of one pf.conf section (validated as checkup does; `null` returns a key to
/// its default).
pub async fn update_pf_section(
    state: &AdminState,
    who: &Principal,
    name: &str,
    input: SectionInput,
    expected_version: Option<String>,
) -> Result<PfSectionWritten, ApiError> {
    let Some(known) = ironfence_config::pf_section_keys(name) else {
        return Err(unknown_section(name));
    };
    if input.id.is_some() {
        return Err(ApiError::invalid("id", "pf.conf sections are not renamed"));
    }
    let change =
        ConfigChange::new("pf.update", format!("pf.conf [{name}]")).expecting(expected_version);
    let change = config_write::settings_edits(
        change,
        PF,
        name,
        &input.settings,
        |key| {
            if known.contains(&key) {
                Ok(())
            } else {
                Err(format!(
                    "[{name}] has no key {key} (keys: {})",
                    known.join(", ")
                ))
            }
        },
        |_, _| None,
    )?;
    if change.edits.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: send the keys to set (null for the default)",
        ));
    }
    let report = config_write::apply(state, who, change).await?;
    let snap = config_write::snapshot(state).await?;
    Ok(PfSectionWritten {
        section: section_view(&snap.document(PF), name),
        report,
    })
}

/// cluster.conf, secrets redacted.
pub async fn cluster(state: &AdminState) -> Result<ClusterConfView, ApiError> {
    let snap = config_write::snapshot(state).await?;
    let doc = snap.document(CLUSTER);
    let config = state.shared.config();
    Ok(ClusterConfView {
        version: snap.version.hash.clone(),
        cluster: config.is_cluster(),
        servers: config
            .cluster
            .iter()
            .flat_map(|c| c.servers.iter().map(|s| s.name.clone()))
            .collect(),
        this_server: config.identity.clone(),
        sections: doc
            .sections()
            .map(|(n, _)| SectionView {
                name: n.to_string(),
                own: own_values(&doc, n),
                known_keys: Vec::new(),
            })
            .collect(),
    })
}

type Json<T> = Result<axum::Json<T>, ApiError>;

async fn h_pf(State(st): State<AppState>) -> Json<PfConfView> {
    pf(&st).await.map(axum::Json)
}
async fn h_pf_section(State(st): State<AppState>, Path(name): Path<String>) -> Json<PfSectionShow> {
    pf_section(&st, &name).await.map(axum::Json)
}
async fn h_update_pf_section(
    State(st): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Body(input): Body<SectionInput>,
) -> Json<PfSectionWritten> {
    let v = config_write::expected_version(&headers, input.expected_version.as_deref());
    update_pf_section(&st, &who, &name, input, v)
        .await
        .map(axum::Json)
}
async fn h_cluster(State(st): State<AppState>) -> Json<ClusterConfView> {
    cluster(&st).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/config/pf", "pf.conf sections")
            .tag("configuration")
            .access(Access::Read)
            .returns::<PfConfView>()
            .to(h_pf),
        Endpoint::get("/config/pf/{section}", "One pf.conf section")
            .tag("configuration")
            .access(Access::Read)
            .path_param(
                "section",
                "section name (general, radius, …, interface eth0)",
            )
            .returns::<PfSectionShow>()
            .to(h_pf_section),
        Endpoint::patch("/config/pf/{section}", "Change a pf.conf section")
            .tag("configuration")
            .access(Access::Config)
            .writes(Writes::Config)
            .path_param("section", "section name")
            .body::<SectionInput>()
            .returns::<PfSectionWritten>()
            .to(h_update_pf_section),
        Endpoint::get(
            "/config/cluster",
            "cluster.conf (read-only, secrets redacted)",
        )
        .tag("configuration")
        .access(Access::Read)
        .returns::<ClusterConfView>()
        .to(h_cluster),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::config_write::tests::{admin, state_with};
    use crate::admin::json::parse;

    #[tokio::test]
    async fn pf_sections_are_read_and_changed_with_restart_notes() {
        let (_d, st) = state_with(&[]).await;
        let v = pf(&st).await.unwrap();
        let general = v.sections.iter().find(|s| s.name == "general").unwrap();
        assert_eq!(general.own.get("state_dir").unwrap(), "var");
        assert!(general.known_keys.contains(&"hostname".to_string()));
        let w = update_pf_section(
            &st,
            &admin(),
            "radius",
            parse::<SectionInput>(br#"{"auth_port": 18121}"#).unwrap(),
            Some(v.version.clone()),
        )
        .await
        .unwrap();
        assert_eq!(w.section.own.get("auth_port").unwrap(), "18121");
        assert!(
            w.report.notes.iter().any(|n| n.contains("restart")),
            "{:?}",
            w.report.notes
        );
        let e = update_pf_section(
            &st,
            &admin(),
            "radius",
            parse::<SectionInput>(br#"{"auth_prot": 1812}"#).unwrap(),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.errors[0].field.as_str()),
            (422, "auth_prot")
        );
        assert_eq!(
            pf_section(&st, "nosuch").await.unwrap_err().status.as_u16(),
            404
        );
        let c = cluster(&st).await.unwrap();
        assert!(!c.cluster && c.sections.is_empty());
    }
}

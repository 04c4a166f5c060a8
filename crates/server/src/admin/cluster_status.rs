//! `GET /cluster/status`: members, reachability, VIP holders, database state and read-only
//! flag, configuration versions, maintenance — what `ironfence cluster status` shows, from the
//! same gathering (`cluster::status::gather`). The dashboard page calls [`status`] too.
//!
//! On a single server the answer has one member: this server, from the daemon itself.

use super::api::Endpoint;
use super::error::ApiError;
use super::{AdminState, AppState};
use axum::extract::State;
use ironfence_admin::Access;
use ironfence_cluster::ServerStatus;
use schemars::JsonSchema;
use serde::Serialize;

/// A configuration version as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VersionView {
    /// The bundle hash (SHA-256, hex): equal on two servers iff they run the same files.
    pub hash: String,
    /// Its first 12 digits, as tables show it.
    pub short: String,
    /// When the change was made (seconds since the UNIX epoch).
    pub changed_at: i64,
    /// The server where it was made.
    pub changed_by: String,
}

impl From<&ironfence_cluster::ConfigVersion> for VersionView {
    fn from(v: &ironfence_cluster::ConfigVersion) -> VersionView {
        VersionView {
            hash: v.hash.clone(),
            short: v.short().to_string(),
            changed_at: v.changed_at,
            changed_by: v.changed_by.clone(),
        }
    }
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MemberView {
    pub name: String,
    pub management_ip: Option<String>,
    /// The server that answered this request.
    pub this_server: bool,
    /// The management server (holder of the management VIP, or the first available one).
    pub management: bool,
    /// It answered the status request (within 3 s).
    pub reachable: bool,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Disabled on the server that answered (`ironfence cluster node NAME disable`).
    pub disabled_here: bool,
    pub software_version: Option<String>,
    pub config_version: Option<VersionView>,
    /// It runs the same configuration as the server that answered.
    pub same_config: Option<bool>,
    pub maintenance: Option<bool>,
    /// Database state as it sees it (`sqlite`, `Primary/Synced`, …).
    pub db_state: Option<String>,
    /// Read-only (degraded) mode: devices and users cannot be changed there.
    pub read_only: Option<bool>,
    /// Virtual IPs it holds, as `interface ip`.
    pub vips_held: Vec<String>,
    pub holds_management_vip: bool,
    /// Ready to hold VIPs (`None`: it manages none).
    pub ready: Option<bool>,
    pub unready_reasons: Vec<String>,
    pub front_door_errors: Vec<String>,
}

/// The cluster as the server that answered sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ClusterStatus {
    /// cluster.conf defines a cluster (false: a single server).
    pub cluster: bool,
    /// The server that answered.
    pub this_server: String,
    /// This server's database is read-only (degraded mode: only configuration changes are
    /// accepted here).
    pub read_only: bool,
    pub db_state: String,
    /// The configuration version this server runs.
    pub config_version: Option<VersionView>,
    pub management_server: Option<String>,
    /// `[CLUSTER] management_ip` and the `[CLUSTER interface X]` virtual IPs.
    pub management_vip: Option<String>,
    pub virtual_ips: Vec<String>,
    /// Every reachable member runs the same configuration.
    pub config_in_sync: bool,
    /// This server is in maintenance.
    pub maintenance: bool,
    pub members: Vec<MemberView>,
}

fn member_view(
    name: &str,
    ip: Option<String>,
    this: &str,
    mine: Option<&str>,
    mgmt: Option<&str>,
    disabled_here: bool,
    st: &Result<ServerStatus, String>,
) -> MemberView {
    let ok = st.as_ref().ok();
    MemberView {
        name: name.to_string(),
        management_ip: ip,
        this_server: name == this,
        management: mgmt == Some(name),
        reachable: ok.is_some(),
        error: st.as_ref().err().cloned(),
        disabled_here,
        software_version: ok.map(|s| s.software_version.clone()),
        config_version: ok.map(|s| VersionView::from(&s.config_version)),
        same_config: ok.zip(mine).map(|(s, m)| s.config_version.hash == m),
        maintenance: ok.map(|s| s.maintenance),
        db_state: ok.map(|s| s.db_state.clone()).filter(|s| !s.is_empty()),
        read_only: ok.map(|s| s.read_only),
        vips_held: ok.map(|s| s.vips_held.clone()).unwrap_or_default(),
        holds_management_vip: ok.is_some_and(|s| s.holds_management_vip),
        ready: ok.and_then(|s| s.ready),
        unready_reasons: ok.map(|s| s.unready_reasons.clone()).unwrap_or_default(),
        front_door_errors: ok.map(|s| s.front_door_errors.clone()).unwrap_or_default(),
    }
}

/// The cluster status (a single server: this server alone).
pub async fn status(state: &AdminState) -> Result<ClusterStatus, ApiError> {
    let shared = &state.shared;
    let config = shared.config();
    let me = crate::cluster::local_status(shared)
        .await
        .map_err(|e| ApiError::internal("reading this server's status", e))?;
    let mine = Some(me.config_version.hash.clone());
    let this = config.identity.clone();
    let (members, mgmt) = match &config.cluster {
        None => {
            let m = member_view(
                &this,
                None,
                &this,
                mine.as_deref(),
                Some(&this),
                false,
                &Ok(me.clone()),
            );
            (vec![m], Some(this.clone()))
        }
        Some(_) => {
            let g = crate::cluster::status::gather(
                &config,
                Some(me.clone()),
                crate::cluster::status::STATUS_TIMEOUT,
            )
            .await
            .map_err(|e| ApiError::internal("asking the cluster members", e))?;
            let mgmt = g.management_server.clone();
            let members = g
                .members
                .iter()
                .map(|m| {
                    member_view(
                        &m.name,
                        m.management_ip.map(|i| i.to_string()),
                        &this,
                        mine.as_deref(),
                        mgmt.as_deref(),
                        m.disabled_here,
                        &m.status,
                    )
                })
                .collect();
            (members, mgmt)
        }
    };
    let config_in_sync = members
        .iter()
        .filter(|m| m.reachable)
        .all(|m| m.same_config == Some(true));
    Ok(ClusterStatus {
        cluster: config.is_cluster(),
        this_server: this,
        read_only: me.read_only,
        db_state: me.db_state.clone(),
        config_version: Some(VersionView::from(&me.config_version)),
        management_server: mgmt,
        management_vip: config
            .cluster
            .as_ref()
            .and_then(|c| c.management_ip)
            .map(|i| i.to_string()),
        virtual_ips: config
            .cluster
            .iter()
            .flat_map(|c| c.virtual_interfaces.iter())
            .filter_map(|i| i.ip.map(|ip| format!("{} {ip}", i.name)))
            .collect(),
        config_in_sync,
        maintenance: me.maintenance,
        members,
    })
}

async fn get_status(State(state): State<AppState>) -> Result<axum::Json<ClusterStatus>, ApiError> {
    status(&state).await.map(axum::Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/cluster/status",
            "Cluster members, VIP holders, database and configuration versions",
        )
        .tag("cluster")
        .access(Access::Read)
        .returns::<ClusterStatus>()
        .to(get_status),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_single_server_reports_itself() {
        let (_d, st) = crate::admin::config_write::tests::state_with(&[]).await;
        let s = status(&st).await.unwrap();
        assert!(!s.cluster);
        assert_eq!(s.members.len(), 1);
        let m = &s.members[0];
        assert!(m.this_server && m.reachable && m.management);
        assert_eq!(m.db_state.as_deref(), Some("sqlite"));
        assert_eq!(m.same_config, Some(true));
        assert!(s.config_in_sync && !s.read_only);
        st.shared.db.set_read_only_for_test(true);
        let s = status(&st).await.unwrap();
        assert!(s.read_only);
        assert_eq!(s.members[0].read_only, Some(true));
    }
}

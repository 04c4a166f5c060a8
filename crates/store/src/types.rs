//! Plain records stored besides nodes: people, audit log rows, node list filters.

use ironfence_core::{Mac, NodeStatus, UnixTime};

/// A device owner (PacketFence `person`). Nodes reference their owner by `pid`; the person
/// `default` owns unclaimed devices and always exists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub pid: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
}

impl Person {
    /// A person with only an id.
    pub fn new(pid: &str) -> Person {
        Person {
            pid: pid.to_string(),
            ..Person::default()
        }
    }
}

/// One RADIUS request and what was decided (`radius_audit_log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub created_at: UnixTime,
    pub mac: Option<Mac>,
    pub user_name: Option<String>,
    pub nas_ip: String,
    pub nas_port: Option<String>,
    /// `auth`, `acct` or `status`.
    pub request_type: String,
    /// `accept`, `reject`, `accounting-response`, …
    pub outcome: String,
    pub reason: String,
    pub vlan: Option<String>,
    pub role: Option<String>,
    pub switch_id: Option<String>,
    pub calling_station_id: Option<String>,
    pub called_station_id: Option<String>,
}

/// Which nodes [`Store::list_nodes`](crate::Store::list_nodes) returns, ordered by MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFilter {
    pub status: Option<NodeStatus>,
    /// Role (`node.category`).
    pub role: Option<String>,
    /// Maximum number of rows (default 100).
    pub limit: u32,
    pub offset: u64,
}

impl Default for NodeFilter {
    fn default() -> Self {
        NodeFilter {
            status: None,
            role: None,
            limit: 100,
            offset: 0,
        }
    }
}

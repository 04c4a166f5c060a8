use crate::Mac;
use std::fmt;
use std::str::FromStr;

/// Seconds since the UNIX epoch. Every time in ironfence's domain is passed in explicitly so that
/// decisions stay pure and testable.
pub type UnixTime = i64;

/// Registration state of a node, spelled as PacketFence spells it in its `node.status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// Seen on the network, not registered: belongs in the registration VLAN.
    Unregistered,
    /// Registered (by the portal, an admin or an import): gets its role's VLAN.
    Registered,
    /// Registration started but waiting (e.g. email confirmation): treated as unregistered.
    Pending,
}

impl NodeStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Unregistered => "unreg",
            NodeStatus::Registered => "reg",
            NodeStatus::Pending => "pending",
        }
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown node status {0:?} (expected reg, unreg or pending)")]
pub struct NodeStatusParseError(pub String);

impl FromStr for NodeStatus {
    type Err = NodeStatusParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reg" | "registered" => Ok(NodeStatus::Registered),
            "unreg" | "unregistered" => Ok(NodeStatus::Unregistered),
            "pending" => Ok(NodeStatus::Pending),
            other => Err(NodeStatusParseError(other.to_string())),
        }
    }
}

/// A device known to ironfence (one row of the `node` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub mac: Mac,
    pub status: NodeStatus,
    /// Role (PacketFence "category"); `None` means the `default` role once registered.
    pub role: Option<String>,
    /// Owner (person id); PacketFence uses `default` for unowned devices.
    pub pid: String,
    pub regdate: Option<UnixTime>,
    /// When the registration expires; `None` = never.
    pub unregdate: Option<UnixTime>,
    pub last_seen: Option<UnixTime>,
    pub notes: Option<String>,
}

impl Node {
    /// A node seen for the first time: unregistered, owned by `default`.
    pub fn new_unregistered(mac: Mac, now: UnixTime) -> Node {
        Node {
            mac,
            status: NodeStatus::Unregistered,
            role: None,
            pid: "default".to_string(),
            regdate: None,
            unregdate: None,
            last_seen: Some(now),
            notes: None,
        }
    }
}

/// Only what an authorization decision reads about a node: what the RADIUS path's node cache
/// keeps per device (about 40 octets, against ~280 for a whole [`NodeView`] with its strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    pub status: NodeStatus,
    /// Role (PacketFence "category"); `None` (or empty) means `default`.
    pub role: Option<std::sync::Arc<str>>,
    pub unregdate: Option<UnixTime>,
    pub open_security_events: u32,
}

impl From<&NodeView> for PolicyView {
    fn from(v: &NodeView) -> PolicyView {
        PolicyView {
            status: v.node.status,
            role: v.node.role.as_deref().map(std::sync::Arc::from),
            unregdate: v.node.unregdate,
            open_security_events: v.open_security_events,
        }
    }
}

/// What an authorization decision needs to know about a node, read in one store query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub node: Node,
    /// Number of open security events; any open event isolates the node.
    pub open_security_events: u32,
}

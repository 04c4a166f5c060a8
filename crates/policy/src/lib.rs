//! Pure authorization decisions: what a switch is told about a device.
//!
//! ```text
//!   server ── node view (store) ──┐
//!          ── switch settings ────┼──► decide() ──► Decision { Accept(VLAN) | Reject }
//!          ── now ────────────────┘
//! ```
//!
//! No IO, no clock: everything the decision depends on is an argument, so every rule is a
//! table-driven unit test. The rules follow PacketFence's VLAN enforcement:
//!
//! 1. an open security event isolates the device (isolation VLAN), whatever its status;
//! 2. an unregistered or pending device, or one whose registration expired, goes to the
//!    registration VLAN (where the captive portal lives);
//! 3. a registered device gets the VLAN mapped to its role on that switch (the switch's own
//!    `<role>Vlan`, inherited from its group and `[default]` by the config layer); the role
//!    `REJECT` is refused;
//! 4. a needed VLAN that is not configured is a Reject that names the missing key, never a
//!    silent Accept into an arbitrary VLAN.
#![forbid(unsafe_code)]

use ironfence_config::SwitchSettings;
use ironfence_core::{NodeStatus, NodeView, PolicyView, UnixTime};
use std::fmt;

/// The role a registered node without a role gets, as in PacketFence.
pub const DEFAULT_ROLE: &str = "default";
/// PacketFence's role that denies network access.
pub const REJECT_ROLE: &str = "REJECT";

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Access-Accept. `vlan` is `None` when the switch has VLAN mapping off (`VlanMap=N`).
    Accept {
        vlan: Option<String>,
        role: String,
        reason: Reason,
    },
    /// Access-Reject.
    Reject { reason: Reason },
}

impl Decision {
    pub fn reason(&self) -> &Reason {
        match self {
            Decision::Accept { reason, .. } | Decision::Reject { reason } => reason,
        }
    }
}

/// Why a decision was taken; logged, audited and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Open security event(s): isolation VLAN.
    Isolated,
    /// Not registered (new, unregistered or pending): registration VLAN.
    Unregistered,
    /// Registration expired (`unregdate` in the past): registration VLAN.
    RegistrationExpired,
    /// Registered: role VLAN.
    Registered,
    /// Role `REJECT`.
    RejectRole,
    /// The switch has no VLAN for what the device needs; `key` is the missing switches.conf key.
    VlanNotConfigured { key: String },
}

impl Reason {
    /// Short label for metrics and the audit log.
    pub fn label(&self) -> &'static str {
        match self {
            Reason::Isolated => "isolated",
            Reason::Unregistered => "unregistered",
            Reason::RegistrationExpired => "registration_expired",
            Reason::Registered => "registered",
            Reason::RejectRole => "reject_role",
            Reason::VlanNotConfigured { .. } => "vlan_not_configured",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::VlanNotConfigured { key } => {
                write!(f, "vlan_not_configured: switch has no {key}")
            }
            other => f.write_str(other.label()),
        }
    }
}

/// Decides what `switch` should do with the device described by `view` at time `now`.
pub fn decide(view: &NodeView, switch: &SwitchSettings, now: UnixTime) -> Decision {
    decide_on(&PolicyView::from(view), switch, now)
}

/// [`decide`] on the facts the decision reads (what the RADIUS path's node cache holds).
pub fn decide_on(view: &PolicyView, switch: &SwitchSettings, now: UnixTime) -> Decision {
    let node = view;
    if view.open_security_events > 0 {
        return vlan_decision(
            switch,
            switch.isolation_vlan.as_deref(),
            &|| "isolationVlan".to_string(),
            node_role(view),
            Reason::Isolated,
        );
    }
    let expired = node.status == NodeStatus::Registered && node.unregdate.is_some_and(|t| t <= now);
    if node.status != NodeStatus::Registered || expired {
        let reason = if expired {
            Reason::RegistrationExpired
        } else {
            Reason::Unregistered
        };
        return vlan_decision(
            switch,
            switch.registration_vlan.as_deref(),
            &|| "registrationVlan".to_string(),
            "registration".to_string(),
            reason,
        );
    }
    let role = node_role(view);
    if role == REJECT_ROLE {
        return Decision::Reject {
            reason: Reason::RejectRole,
        };
    }
    vlan_decision(
        switch,
        switch.role_vlans.get(&role).map(String::as_str),
        // Only built for the rare Reject that names the missing key.
        &|| format!("{role}Vlan"),
        role.clone(),
        Reason::Registered,
    )
}

fn node_role(view: &PolicyView) -> String {
    view.role
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_ROLE)
        .to_string()
}

fn vlan_decision(
    switch: &SwitchSettings,
    vlan: Option<&str>,
    key: &dyn Fn() -> String,
    role: String,
    reason: Reason,
) -> Decision {
    if !switch.vlan_map {
        return Decision::Accept {
            vlan: None,
            role,
            reason,
        };
    }
    match vlan {
        Some(v) => Decision::Accept {
            vlan: Some(v.to_string()),
            role,
            reason,
        },
        None => Decision::Reject {
            reason: Reason::VlanNotConfigured { key: key() },
        },
    }
}

#[cfg(test)]
mod tests;

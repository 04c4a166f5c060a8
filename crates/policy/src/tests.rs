//! One row per rule of the module docs.
use super::*;
use ironfence_config::RequireMessageAuthenticator;
use ironfence_core::{Mac, Node};
use std::collections::BTreeMap;

const NOW: UnixTime = 1_800_000_000;

fn switch() -> SwitchSettings {
    SwitchSettings {
        id: "192.0.2.1".into(),
        secret: b"test-fixture-secret".to_vec(),
        registration_vlan: Some("2".into()),
        isolation_vlan: Some("3".into()),
        role_vlans: BTreeMap::from([
            ("default".to_string(), "100".to_string()),
            ("guest".to_string(), "200".to_string()),
        ]),
        require_message_authenticator: RequireMessageAuthenticator::Yes,
        vlan_map: true,
        eap_md5_mab: false,
        description: None,
        switch_type: None,
        dynauth: Default::default(),
    }
}

fn view(
    status: NodeStatus,
    role: Option<&str>,
    unregdate: Option<UnixTime>,
    events: u32,
) -> NodeView {
    let mut node = Node::new_unregistered(Mac([2, 0, 0, 0, 0, 1]), NOW);
    node.status = status;
    node.role = role.map(str::to_string);
    node.unregdate = unregdate;
    NodeView {
        node,
        open_security_events: events,
    }
}

fn accept(vlan: &str, role: &str, reason: Reason) -> Decision {
    Decision::Accept {
        vlan: Some(vlan.into()),
        role: role.into(),
        reason,
    }
}

#[test]
fn decision_table() {
    use NodeStatus::*;
    let missing = |key: &str| Decision::Reject {
        reason: Reason::VlanNotConfigured { key: key.into() },
    };
    let cases: Vec<(&str, NodeView, Decision)> = vec![
        (
            "new/unregistered device -> registration VLAN",
            view(Unregistered, None, None, 0),
            accept("2", "registration", Reason::Unregistered),
        ),
        (
            "pending counts as unregistered",
            view(Pending, Some("guest"), None, 0),
            accept("2", "registration", Reason::Unregistered),
        ),
        (
            "registered, no role -> default role VLAN",
            view(Registered, None, None, 0),
            accept("100", "default", Reason::Registered),
        ),
        (
            "registered guest -> guest VLAN",
            view(Registered, Some("guest"), None, 0),
            accept("200", "guest", Reason::Registered),
        ),
        (
            "registration not yet expired",
            view(Registered, Some("guest"), Some(NOW + 1), 0),
            accept("200", "guest", Reason::Registered),
        ),
        (
            "registration expired -> registration VLAN",
            view(Registered, Some("guest"), Some(NOW), 0),
            accept("2", "registration", Reason::RegistrationExpired),
        ),
        (
            "open security event isolates a registered device",
            view(Registered, Some("guest"), None, 1),
            accept("3", "guest", Reason::Isolated),
        ),
        (
            "open security event isolates an unregistered device",
            view(Unregistered, None, None, 2),
            accept("3", "default", Reason::Isolated),
        ),
        (
            "REJECT role is refused",
            view(Registered, Some("REJECT"), None, 0),
            Decision::Reject {
                reason: Reason::RejectRole,
            },
        ),
        (
            "role without a VLAN is refused, naming the key",
            view(Registered, Some("voice"), None, 0),
            missing("voiceVlan"),
        ),
    ];
    for (name, v, want) in cases {
        assert_eq!(decide(&v, &switch(), NOW), want, "{name}");
    }
}

#[test]
fn missing_registration_and_isolation_vlans_are_rejects_not_accepts() {
    let mut sw = switch();
    sw.registration_vlan = None;
    sw.isolation_vlan = None;
    assert_eq!(
        decide(&view(NodeStatus::Unregistered, None, None, 0), &sw, NOW).reason(),
        &Reason::VlanNotConfigured {
            key: "registrationVlan".into()
        }
    );
    assert_eq!(
        decide(&view(NodeStatus::Registered, None, None, 1), &sw, NOW).reason(),
        &Reason::VlanNotConfigured {
            key: "isolationVlan".into()
        }
    );
}

#[test]
fn vlan_map_off_accepts_without_vlan() {
    let mut sw = switch();
    sw.vlan_map = false;
    sw.role_vlans.clear();
    assert_eq!(
        decide(
            &view(NodeStatus::Registered, Some("voice"), None, 0),
            &sw,
            NOW
        ),
        Decision::Accept {
            vlan: None,
            role: "voice".into(),
            reason: Reason::Registered
        }
    );
}

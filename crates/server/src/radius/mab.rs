//! Access-Request handler: MAC authentication bypass (MAB); requests carrying EAP-Message
//! (802.1X) go to [`super::eap`].

use super::handler::{
    AuditFacts, Ctx, Handled, Handler, HandlerFuture, Write, encodable, reply_builder,
};
use ironfence_core::{Mac, NodeStatus, PolicyView};
use ironfence_policy::Decision;
use ironfence_radius::{Code, EncodeError, Packet, PacketBuilder, dict};

#[derive(Debug)]
pub(crate) struct Mab;

impl Handler for Mab {
    fn handle<'a>(&'a self, ctx: &'a Ctx<'a>) -> HandlerFuture<'a> {
        if ctx.packet.get(dict::EAP_MESSAGE).is_some() {
            Box::pin(super::eap::access_request(ctx))
        } else {
            Box::pin(access_request(ctx))
        }
    }
}

async fn access_request(ctx: &Ctx<'_>) -> Handled {
    let shared = ctx.shared;
    let packet = &ctx.packet;
    let user_name = packet.get_str(dict::USER_NAME);
    let calling = packet.get_str(dict::CALLING_STATION_ID);
    let Some(mac) = mab_mac(packet, user_name, calling) else {
        let reason = "not_mab";
        tracing::info!(
            user = user_name.unwrap_or(""),
            reason,
            "Access-Reject: not a MAC authentication request"
        );
        shared
            .metrics
            .decisions
            .get_or_create(&[("reason", reason)])
            .inc();
        return Handled {
            reply: encodable(ctx, reply_builder(Code::AccessReject, packet)),
            writes: Vec::new(),
            audit: Some(AuditFacts {
                request_type: ironfence_audit::RequestType::Auth,
                mac: None,
                outcome: "reject",
                reason,
                detail: None,
                vlan: None,
                role: None,
            }),
        };
    };
    let mut writes = Vec::new();
    let view = match shared.nodes.policy_view(mac).await {
        Ok(Some(view)) => view,
        Ok(None) => {
            // First sighting: decided as the unregistered device it is; its row is written by
            // `persist` (or spooled while the database cannot take it).
            writes.push(Write::NodeSeen(mac));
            PolicyView {
                status: NodeStatus::Unregistered,
                role: None,
                unregdate: None,
                open_security_events: 0,
            }
        }
        Err(e) => {
            shared.metrics.store_error("node_view");
            tracing::error!(%mac, error = %e, "cannot read node; request dropped");
            return Handled::unanswered();
        }
    };
    let decision = ironfence_policy::decide_on(&view, ctx.switch, ctx.now);
    let reason = decision.reason().label();
    shared
        .metrics
        .decisions
        .get_or_create(&[("reason", reason)])
        .inc();
    let (reply, audit) = match &decision {
        Decision::Accept { vlan, role, .. } => {
            tracing::debug!(%mac, vlan = vlan.as_deref().unwrap_or("-"), role, reason, "Access-Accept");
            record_location(ctx, mac, vlan.clone(), role.clone());
            (
                accept(packet, vlan.as_deref()),
                AuditFacts {
                    request_type: ironfence_audit::RequestType::Auth,
                    mac: Some(mac),
                    outcome: "accept",
                    reason,
                    detail: None,
                    vlan: vlan.clone(),
                    role: Some(role.clone()),
                },
            )
        }
        Decision::Reject { reason: why } => {
            tracing::info!(%mac, reason = %why, "Access-Reject");
            (
                reply_builder(Code::AccessReject, packet),
                AuditFacts {
                    request_type: ironfence_audit::RequestType::Auth,
                    mac: Some(mac),
                    outcome: "reject",
                    reason,
                    detail: None,
                    vlan: None,
                    role: None,
                },
            )
        }
    };
    Handled {
        reply: encodable(ctx, reply),
        writes,
        audit: Some(audit),
    }
}

/// The device's MAC if this is a MAB request: Service-Type = Call-Check, or a User-Name that
/// is the Calling-Station-Id (or a bare MAC when the switch sends no Calling-Station-Id).
pub(crate) fn mab_mac(
    packet: &Packet<'_>,
    user_name: Option<&str>,
    calling: Option<&str>,
) -> Option<Mac> {
    if packet.get(dict::EAP_MESSAGE).is_some() {
        return None;
    }
    let calling_mac = calling.and_then(|c| Mac::parse(c).ok());
    let user_mac = user_name.and_then(|u| Mac::parse(u).ok());
    let call_check = packet.get_u32(dict::SERVICE_TYPE) == Some(dict::service_type::CALL_CHECK);
    match (call_check, calling_mac, user_mac) {
        (true, Some(m), _) => Some(m),
        (true, None, Some(u)) => Some(u),
        (false, Some(c), Some(u)) if c == u => Some(c),
        (false, None, Some(u)) => Some(u),
        _ => None,
    }
}

fn accept(packet: &Packet<'_>, vlan: Option<&str>) -> Result<PacketBuilder, EncodeError> {
    let mut b = reply_builder(Code::AccessAccept, packet)?;
    if let Some(vlan) = vlan {
        add_vlan(&mut b, vlan)?;
    }
    Ok(b)
}

/// RFC 3580 §3.31 / RFC 2868: VLAN assignment, tag 0.
pub(super) fn add_vlan(b: &mut PacketBuilder, vlan: &str) -> Result<(), EncodeError> {
    b.add_tagged_u32(dict::TUNNEL_TYPE, 0, dict::tunnel_type::VLAN)?;
    b.add_tagged_u32(
        dict::TUNNEL_MEDIUM_TYPE,
        0,
        dict::tunnel_medium_type::IEEE_802,
    )?;
    b.add_tagged_str(dict::TUNNEL_PRIVATE_GROUP_ID, 0, vlan)?;
    Ok(())
}

/// Where the device is, for the CoA sender (switches without accounting too).
pub(super) fn record_location(ctx: &Ctx<'_>, mac: Mac, vlan: Option<String>, role: String) {
    let packet = &ctx.packet;
    crate::coa::location::record(
        ctx.shared,
        crate::coa::location::AcceptedAt {
            mac,
            switch_id: ctx.switch.id.clone(),
            switch_ip: ctx.switch_ip.to_string(),
            port: super::handler::nas_port(packet),
            vlan,
            role: Some(role),
            ssid: super::accounting::ssid(packet),
            username: packet.get_str(dict::USER_NAME).map(str::to_string),
            connection_type: packet
                .get_u32(dict::NAS_PORT_TYPE)
                .map(super::accounting::connection_type),
            now: ctx.now,
        },
    );
}

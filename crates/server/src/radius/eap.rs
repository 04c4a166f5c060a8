//! 802.1X: Access-Requests carrying EAP-Message, answered by the sans-IO EAP server
//! (`ironfence-eap`). This is the IO shell around it:
//!
//! ```text
//!  EAP-Message attrs ─join─► Conversations::handle ─► Step
//!    Challenge ─────────────────────────────────────► Access-Challenge (EAP-Message + State)
//!    Verify(NtHash | Password) ─► local users / authentication sources ─► resume ─► Step
//!    Success ─► policy: role from the source's rules (password methods) or the certificate
//!               source (EAP-TLS), else the device's own; VLAN per switch as for MAB;
//!               registration (not in read-only mode: computed, not saved) ─► Access-Accept
//!               (EAP-Success, MS-MPPE keys, VLAN) or Access-Reject (EAP-Failure)
//!    Failure ─────────────────────────────────────────► Access-Reject (EAP-Failure)
//!    Discard ─────────────────────────────────────────► no answer, counted
//! ```
//!
//! MAB sent as EAP-MD5 (Juniper `mac-radius`, Dell; switches.conf `eap_md5_mab`) ends in the
//! MAB decision: same policy, same VLANs.
//!
//! Only the final answer of a conversation is audited (method, identity, source, rule); the
//! challenges in between are counted in `/metrics`.

use super::handler::{AuditFacts, Ctx, Handled, Write, encodable, reply_builder};
use crate::eap_service::Facts;
use ironfence_core::{Mac, NodeStatus, PolicyView};
use ironfence_eap::{Outcome, Step, Verdict, Verify};
use ironfence_policy::Decision;
use ironfence_radius::{Code, EncodeError, Packet, PacketBuilder, dict};
use std::time::Instant;

/// An Access-Request with EAP-Message.
pub(super) async fn access_request(ctx: &Ctx<'_>) -> Handled {
    let shared = ctx.shared;
    let Some(conversations) = shared.eap.conversations() else {
        // 802.1X disabled in eap.conf, or its certificates could not be loaded (logged at
        // start and at every reload).
        return reject_without_eap(ctx, "eap_disabled");
    };
    let packet = &ctx.packet;
    let eap = match ironfence_eap::message::join(packet.get_all(dict::EAP_MESSAGE)) {
        Ok(eap) => eap,
        Err(e) => {
            tracing::debug!(error = %e, "EAP-Message attributes malformed; dropped");
            shared.metrics.drop_reason("eap_malformed");
            return Handled::unanswered();
        }
    };
    let now = Instant::now();
    let input = ironfence_eap::Input {
        now,
        client: ctx.switch_ip,
        state: packet.get(dict::STATE),
        eap: &eap,
        framed_mtu: packet.get_u32(dict::FRAMED_MTU),
        md5_mab: ctx.switch.eap_md5_mab,
    };
    let mut step = conversations.handle(input);
    // Credential checks: at most a few per conversation (inner identity, then done).
    for _ in 0..4 {
        let Step::Verify { id, what } = step else {
            break;
        };
        let verdict = verify(ctx, what).await;
        step = conversations.resume(Instant::now(), id, verdict);
    }
    match step {
        Step::Challenge { eap, state } => {
            shared.metrics.eap_round("challenge");
            Handled {
                reply: encodable(ctx, challenge(packet, &eap, &state)),
                writes: Vec::new(),
                audit: None,
            }
        }
        Step::Success { eap, keys, outcome } => success(ctx, &eap, keys, *outcome).await,
        Step::Failure {
            eap,
            reason,
            outcome,
        } => {
            shared.metrics.eap_round("failure");
            let detail = outcome.as_deref().map(describe);
            tracing::info!(
                reason,
                detail = detail.as_deref().unwrap_or(""),
                "802.1X Access-Reject"
            );
            count_decision(ctx, reason);
            Handled {
                reply: encodable(ctx, with_eap(Code::AccessReject, packet, &eap)),
                writes: Vec::new(),
                audit: Some(AuditFacts {
                    request_type: ironfence_audit::RequestType::Auth,
                    mac: calling_mac(packet),
                    outcome: "reject",
                    reason,
                    detail,
                    vlan: None,
                    role: None,
                }),
            }
        }
        Step::Verify { .. } => {
            shared.metrics.drop_reason("eap_too_many_verifications");
            Handled::unanswered()
        }
        Step::Discard { reason } => {
            shared.metrics.drop_reason(reason);
            Handled::unanswered()
        }
    }
}

/// Answers the EAP server's question with the store or the configured sources.
async fn verify(ctx: &Ctx<'_>, what: Verify) -> Verdict<Facts> {
    match what {
        Verify::NtHash { user } => {
            crate::eap_service::nt_hash(ctx.shared, ctx.config, &user, ctx.now).await
        }
        Verify::Password { user, password } => {
            crate::eap_service::password(ctx.shared, ctx.config, &user, password, ctx.now).await
        }
    }
}

/// Authenticated: the policy decides the VLAN (or still refuses).
async fn success(
    ctx: &Ctx<'_>,
    eap_success: &[u8],
    keys: Option<ironfence_eap::Msk>,
    outcome: Outcome<Facts>,
) -> Handled {
    let shared = ctx.shared;
    let packet = &ctx.packet;
    let detail = describe(&outcome);
    let failure_id = eap_success.get(1).copied().unwrap_or(0);
    let mac = match outcome.method.outer {
        // MAB over EAP-MD5: the identity is the MAC.
        ironfence_eap::EapType::Md5Challenge => Mac::parse(&outcome.identity).ok(),
        _ => calling_mac(packet),
    };
    // The device's own state: its role and registration, and its open security events, which
    // isolate it whatever the login says.
    let mut writes = Vec::new();
    let current = match mac {
        Some(mac) => match shared.nodes.policy_view(mac).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                writes.push(Write::NodeSeen(mac));
                unregistered()
            }
            Err(e) => {
                shared.metrics.store_error("node_view");
                tracing::error!(%mac, error = %e, "cannot read node; request dropped");
                return Handled::unanswered();
            }
        },
        None => unregistered(),
    };
    let grant = match crate::eap_service::grant(ctx.config, &outcome, ctx.now) {
        Ok(grant) => grant,
        Err(reason) => return refuse(ctx, reason, mac, detail, failure_id, Vec::new()),
    };
    let detail = match &grant {
        Some(g) => format!("{detail} rule={}/{}", g.source, g.rule),
        None => detail,
    };
    let view = match &grant {
        // The login decides the role: the device is registered with it (PacketFence
        // registers a device on a successful 802.1X login).
        Some(g) => PolicyView {
            status: NodeStatus::Registered,
            role: Some(std::sync::Arc::from(g.role.as_str())),
            unregdate: Some(g.unregdate),
            open_security_events: current.open_security_events,
        },
        // No rule source for this method (MAB over EAP-MD5, EAP-TLS without a certificate
        // source): the device's own registration decides, as for MAB.
        None => current,
    };
    if let (Some(g), Some(mac)) = (&grant, mac)
        && crate::eap_service::registers(ctx.config)
    {
        if ctx.read_only {
            // The guide: in read-only mode 802.1X keeps working, the role is computed from
            // the sources but nothing is saved.
            tracing::info!(%mac, role = %g.role, "read-only database: 802.1X role computed, registration not saved");
        } else {
            writes.retain(|w| !matches!(w, Write::NodeSeen(_)));
            writes.push(Write::Register(Box::new(
                crate::radius::handler::Registration {
                    mac,
                    pid: g.pid.clone(),
                    role: g.role.clone(),
                    unregdate: Some(g.unregdate),
                },
            )));
        }
    }
    let decision = ironfence_policy::decide_on(&view, ctx.switch, ctx.now);
    let reason = decision.reason().label();
    match decision {
        Decision::Accept { vlan, role, .. } => {
            count_decision(ctx, reason);
            shared.metrics.eap_round("success");
            tracing::info!(
                mac = %mac.map(|m| m.to_string()).unwrap_or_default(),
                vlan = vlan.as_deref().unwrap_or("-"),
                role,
                detail = %detail,
                "802.1X Access-Accept"
            );
            if let Some(mac) = mac {
                super::mab::record_location(ctx, mac, vlan.clone(), role.clone());
            }
            let reply = accept(ctx, eap_success, keys.as_ref(), vlan.as_deref());
            Handled {
                reply: encodable(ctx, reply),
                writes,
                audit: Some(AuditFacts {
                    request_type: ironfence_audit::RequestType::Auth,
                    mac,
                    outcome: "accept",
                    reason,
                    detail: Some(detail),
                    vlan,
                    role: Some(role),
                }),
            }
        }
        Decision::Reject { .. } => refuse(ctx, reason, mac, detail, failure_id, writes),
    }
}

/// Authenticated, but the policy refuses: EAP-Failure in an Access-Reject.
fn refuse(
    ctx: &Ctx<'_>,
    reason: &'static str,
    mac: Option<Mac>,
    detail: String,
    eap_id: u8,
    writes: Vec<Write>,
) -> Handled {
    ctx.shared.metrics.eap_round("failure");
    count_decision(ctx, reason);
    tracing::info!(reason, detail = %detail, "802.1X Access-Reject (policy)");
    let failure = ironfence_eap::packet::encode_result(false, eap_id);
    Handled {
        reply: encodable(ctx, with_eap(Code::AccessReject, &ctx.packet, &failure)),
        writes,
        audit: Some(AuditFacts {
            request_type: ironfence_audit::RequestType::Auth,
            mac,
            outcome: "reject",
            reason,
            detail: Some(detail),
            vlan: None,
            role: None,
        }),
    }
}

fn unregistered() -> PolicyView {
    PolicyView {
        status: NodeStatus::Unregistered,
        role: None,
        unregdate: None,
        open_security_events: 0,
    }
}

/// What the audit record and the log say about the login: method, TLS, identities, source
/// and rule.
fn describe(o: &Outcome<Facts>) -> String {
    let mut s = format!("eap={}", o.method.outer.label());
    if let Some(inner) = o.method.inner {
        s.push('/');
        s.push_str(inner);
    }
    if let Some(v) = o.method.tls_version {
        s.push_str(" tls=");
        s.push_str(v);
    }
    if o.method.resumed {
        s.push_str(" resumed");
    }
    s.push_str(" identity=");
    s.push_str(&o.identity);
    if let Some(inner) = &o.inner_identity {
        s.push_str(" inner=");
        s.push_str(inner);
    }
    if let Some(f) = &o.facts {
        s.push_str(" source=");
        s.push_str(&f.source);
    }
    if let Some(cn) = o
        .peer_certificates
        .first()
        .and_then(|der| crate::eap_service::certificate_cn(der))
    {
        s.push_str(" cn=");
        s.push_str(&cn);
    }
    s
}

fn count_decision(ctx: &Ctx<'_>, reason: &'static str) {
    ctx.shared
        .metrics
        .decisions
        .get_or_create(&[("reason", reason)])
        .inc();
}

fn calling_mac(packet: &Packet<'_>) -> Option<Mac> {
    packet
        .get_str(dict::CALLING_STATION_ID)
        .and_then(|c| Mac::parse(c).ok())
}

/// A reply carrying `eap` split over EAP-Message attributes (RFC 3579 §3.1);
/// Message-Authenticator is added by the encoder (mandatory with EAP-Message, §3.2).
fn with_eap(code: Code, request: &Packet<'_>, eap: &[u8]) -> Result<PacketBuilder, EncodeError> {
    let mut b = reply_builder(code, request)?;
    for chunk in ironfence_eap::message::split(eap) {
        b.add(dict::EAP_MESSAGE, chunk)?;
    }
    Ok(b)
}

fn challenge(request: &Packet<'_>, eap: &[u8], state: &[u8]) -> Result<PacketBuilder, EncodeError> {
    let mut b = with_eap(Code::AccessChallenge, request, eap)?;
    b.add(dict::STATE, state)?;
    Ok(b)
}

/// Access-Accept: EAP-Success, the MSK as MS-MPPE-Recv-Key / MS-MPPE-Send-Key (RFC 2548
/// §2.4, encrypted by the encoder with the secret and the request authenticator), the VLAN.
fn accept(
    ctx: &Ctx<'_>,
    eap: &[u8],
    keys: Option<&ironfence_eap::Msk>,
    vlan: Option<&str>,
) -> Result<PacketBuilder, EncodeError> {
    let packet = &ctx.packet;
    let mut b = with_eap(Code::AccessAccept, packet, eap)?;
    if let Some(keys) = keys {
        // RFC 2548 §2.4.2: each salt unique among the keys of this reply.
        let [a, b0] = salt();
        let authenticator = packet.authenticator();
        b.add_mppe_key(
            dict::microsoft::MPPE_RECV_KEY,
            keys.mppe_recv(),
            ctx.reply_secret,
            authenticator,
            [a, b0 & !1],
        )?;
        b.add_mppe_key(
            dict::microsoft::MPPE_SEND_KEY,
            keys.mppe_send(),
            ctx.reply_secret,
            authenticator,
            [a, b0 | 1],
        )?;
    }
    if let Some(vlan) = vlan {
        super::mab::add_vlan(&mut b, vlan)?;
    }
    Ok(b)
}

fn salt() -> [u8; 2] {
    let mut s = [0u8; 2];
    // A predictable salt weakens nothing RFC 2548 relies on beyond uniqueness per reply.
    let _ = getrandom::fill(&mut s);
    s
}

/// 802.1X is off: Access-Reject without EAP (the switch falls back to MAB where configured).
fn reject_without_eap(ctx: &Ctx<'_>, reason: &'static str) -> Handled {
    count_decision(ctx, reason);
    Handled {
        reply: encodable(ctx, reply_builder(Code::AccessReject, &ctx.packet)),
        writes: Vec::new(),
        audit: Some(AuditFacts {
            request_type: ironfence_audit::RequestType::Auth,
            mac: calling_mac(&ctx.packet),
            outcome: "reject",
            reason,
            detail: None,
            vlan: None,
            role: None,
        }),
    }
}

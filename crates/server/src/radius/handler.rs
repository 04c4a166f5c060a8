//! What every RADIUS handler sees and returns.
//!
//! A handler gets an authentic, new request with its switch and the database's state
//! (`read_only`) as inputs, and returns a [`Handled`]: the reply to send (as a builder — the
//! loop encodes and signs it), the writes the request causes, and what to audit. It does not
//! persist anything itself: [`super::persist`] does, with the degraded-mode rules in one place,
//! so no handler can acknowledge something that was not stored.

use super::SwitchRef;
use crate::Shared;
use crate::spool::record::Record;
use ironfence_config::{Config, SwitchSettings};
use ironfence_core::{Mac, UnixTime};
use ironfence_radius::{Code, EncodeError, Packet, PacketBuilder, Request, dict};
use ironfence_store::AccountingEvent;
use std::future::Future;
use std::pin::Pin;

/// A request being handled.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    /// The configuration the request arrived under (one version for the whole request).
    pub config: &'a Config,
    pub switch: &'a SwitchSettings,
    /// The switch's address: the request's source, or on the load balancer's backend port
    /// the switch its hop names (the source is then the front server). Location log entries
    /// record it: CoA requests go there.
    pub switch_ip: std::net::IpAddr,
    pub request: &'a Request<SwitchRef>,
    pub packet: Packet<'a>,
    pub now: UnixTime,
    /// The database cannot take writes (out of quorum / read-only): decisions that depend on
    /// it (802.1X: "computed but nothing saved") read it here.
    pub read_only: bool,
    /// The secret the reply is signed with (the switch's, or the hop secret on the load
    /// balancer's backend port): hidden attributes (MS-MPPE keys) are encrypted with it.
    pub reply_secret: &'a [u8],
}

/// A write a request causes, and whether its answer depends on it.
#[derive(Debug)]
pub(crate) enum Write {
    /// Accounting: RFC 2866 §4.1, answered only once recorded (database or spool).
    Accounting(Box<AccountingEvent>),
    /// First sighting of a device: its node row (spooled when the database cannot take it; the
    /// Access-Accept does not depend on it).
    NodeSeen(Mac),
    /// A successful 802.1X login registers the device (never asked for in read-only mode).
    Register(Box<Registration>),
}

/// The registration an 802.1X login grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    pub mac: Mac,
    pub pid: String,
    pub role: String,
    pub unregdate: Option<UnixTime>,
}

impl Write {
    /// The spool record that stands in for it while the database cannot take it.
    pub(crate) fn into_record(self, now: UnixTime) -> Record {
        match self {
            Write::Accounting(event) => Record::Accounting(*event),
            Write::NodeSeen(mac) => Record::NodeSeen { mac, at: now },
            // Not spooled (see persist): stands in as the node's first sighting.
            Write::Register(r) => Record::NodeSeen {
                mac: r.mac,
                at: now,
            },
        }
    }
}

/// What the audit log records about a request beyond the packet itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditFacts {
    pub request_type: ironfence_audit::RequestType,
    pub mac: Option<Mac>,
    /// `accept`, `reject`, `accounting-response`.
    pub outcome: &'static str,
    pub reason: &'static str,
    /// 802.1X: method, TLS version, identities, source, rule (appended to the reason).
    pub detail: Option<String>,
    pub vlan: Option<String>,
    pub role: Option<String>,
}

/// A handler's answer.
#[derive(Debug)]
pub(crate) struct Handled {
    /// The reply, or `None`: no answer (the NAS retransmits or fails over).
    pub reply: Option<PacketBuilder>,
    pub writes: Vec<Write>,
    pub audit: Option<AuditFacts>,
}

impl Handled {
    /// No answer, nothing written: a store read failed (the NAS retransmits).
    pub(crate) fn unanswered() -> Handled {
        Handled {
            reply: None,
            writes: Vec::new(),
            audit: None,
        }
    }
}

/// The future a handler returns.
pub(crate) type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Handled> + Send + 'a>>;

/// A request handler (MAB, accounting; later the load balancer's proxy, EAP, CoA replies).
/// hickory-dns's `RequestHandler` is the model.
pub(crate) trait Handler: Send + Sync + std::fmt::Debug {
    fn handle<'a>(&'a self, ctx: &'a Ctx<'a>) -> HandlerFuture<'a>;
}

/// A reply of `code` to `request` that carries the request's Proxy-State attributes back, in
/// order (RFC 2865 §5.33): a proxy between the switch and us relies on them.
pub(crate) fn reply_builder(
    code: Code,
    request: &Packet<'_>,
) -> Result<PacketBuilder, EncodeError> {
    let mut b = PacketBuilder::new(code, request.identifier());
    b.copy_proxy_state(request)?;
    Ok(b)
}

/// A reply that cannot be encoded (VLAN value or Proxy-State too long) is dropped and counted.
pub(crate) fn encodable(
    ctx: &Ctx<'_>,
    reply: Result<PacketBuilder, EncodeError>,
) -> Option<PacketBuilder> {
    match reply {
        Ok(b) => Some(b),
        Err(e) => {
            ctx.shared.metrics.drop_reason("reply_too_long");
            tracing::error!(error = %e, "cannot encode reply (VLAN value or Proxy-State too long?)");
            None
        }
    }
}

/// NAS-Port-Id, else NAS-Port as text.
pub(crate) fn nas_port(packet: &Packet<'_>) -> Option<String> {
    packet
        .get_str(dict::NAS_PORT_ID)
        .map(str::to_string)
        .or_else(|| packet.get_u32(dict::NAS_PORT).map(|p| p.to_string()))
}

/// Writes the request's audit record (`answered`: a reply went out).
pub(crate) fn audit(ctx: &Ctx<'_>, facts: AuditFacts, answered: bool) {
    if !crate::settings::radius(ctx.config).audit_log {
        return;
    }
    let packet = &ctx.packet;
    let text = |t| packet.get_str(t).map(str::to_string);
    let record = ironfence_audit::AuditRecord {
        time_us: ironfence_audit::now_us(),
        request_id: ctx.request.id.0,
        mac: facts.mac,
        user_name: text(dict::USER_NAME),
        nas_ip: packet
            .get_ipv4(dict::NAS_IP_ADDRESS)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| ctx.switch.id.clone()),
        nas_port: nas_port(packet),
        request_type: facts.request_type,
        outcome: if answered {
            facts.outcome.to_string()
        } else {
            "unanswered".to_string()
        },
        reason: match &facts.detail {
            Some(d) => format!("{} ({d})", facts.reason),
            None => facts.reason.to_string(),
        },
        vlan: facts.vlan,
        role: facts.role,
        switch_id: Some(ctx.switch.id.clone()),
        calling_station_id: text(dict::CALLING_STATION_ID),
        called_station_id: text(dict::CALLED_STATION_ID),
    };
    // Read-only database (database mode) and refusals are handled and counted there.
    crate::audit::push(ctx.shared, record);
}

pub(crate) fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

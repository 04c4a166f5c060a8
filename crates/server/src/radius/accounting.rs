//! Accounting-Request handler: the request becomes an [`AccountingEvent`] that must be recorded
//! (database or spool) before it is answered (RFC 2866 §4.1: a response only once the record
//! is safely recorded). When neither can take it, no answer, so the NAS retransmits.

use super::handler::{
    AuditFacts, Ctx, Handled, Handler, HandlerFuture, Write, encodable, nas_port, reply_builder,
};
use ironfence_core::Mac;
use ironfence_radius::{Code, Packet, dict};
use ironfence_store::{AccountingEvent, AccountingKind};

#[derive(Debug)]
pub(crate) struct Accounting;

impl Handler for Accounting {
    fn handle<'a>(&'a self, ctx: &'a Ctx<'a>) -> HandlerFuture<'a> {
        Box::pin(std::future::ready(accounting_request(ctx)))
    }
}

fn accounting_request(ctx: &Ctx<'_>) -> Handled {
    let packet = &ctx.packet;
    let kind = match packet.get_u32(dict::ACCT_STATUS_TYPE) {
        Some(dict::acct_status_type::START) => Some(AccountingKind::Start),
        Some(dict::acct_status_type::STOP) => Some(AccountingKind::Stop),
        Some(dict::acct_status_type::INTERIM_UPDATE) => Some(AccountingKind::InterimUpdate),
        Some(dict::acct_status_type::ACCOUNTING_ON) => Some(AccountingKind::AccountingOn),
        Some(dict::acct_status_type::ACCOUNTING_OFF) => Some(AccountingKind::AccountingOff),
        _ => None, // tunnel accounting & co: acknowledged, nothing to record
    };
    let mac = packet
        .get_str(dict::CALLING_STATION_ID)
        .and_then(|c| Mac::parse(c).ok())
        .or_else(|| {
            packet
                .get_str(dict::USER_NAME)
                .and_then(|u| Mac::parse(u).ok())
        });
    let mut writes = Vec::new();
    let mut reason = "not_recorded";
    // The location this server remembers writing at Access-Accept may change (coa::location).
    if let Some(mac) = mac {
        ctx.shared.locations.forget(mac);
    }
    if let Some(kind) = kind {
        let per_device = !matches!(
            kind,
            AccountingKind::AccountingOn | AccountingKind::AccountingOff
        );
        if per_device && mac.is_none() {
            ctx.shared.metrics.drop_reason("accounting_without_mac");
            reason = "without_mac";
            tracing::info!(
                "accounting record without a usable Calling-Station-Id: acknowledged, not stored"
            );
        } else {
            reason = kind_label(kind);
            let vlan = packet
                .get(dict::TUNNEL_PRIVATE_GROUP_ID)
                .map(strip_tag)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string);
            // (The store creates the node of a device first seen through accounting.)
            writes.push(Write::Accounting(Box::new(AccountingEvent {
                kind,
                mac,
                switch_id: ctx.switch.id.clone(),
                switch_ip: ctx.switch_ip.to_string(),
                port: nas_port(packet),
                vlan,
                role: None,
                ssid: ssid(packet),
                session_id: packet.get_str(dict::ACCT_SESSION_ID).map(str::to_string),
                username: packet.get_str(dict::USER_NAME).map(str::to_string),
                connection_type: packet.get_u32(dict::NAS_PORT_TYPE).map(connection_type),
                framed_ip: packet.get_ipv4(dict::FRAMED_IP_ADDRESS),
                now: ctx.now,
            })));
        }
    }
    Handled {
        reply: encodable(ctx, reply_builder(Code::AccountingResponse, packet)),
        writes,
        audit: Some(AuditFacts {
            request_type: ironfence_audit::RequestType::Acct,
            mac,
            outcome: "accounting-response",
            reason,
            detail: None,
            vlan: None,
            role: None,
        }),
    }
}

fn kind_label(kind: AccountingKind) -> &'static str {
    match kind {
        AccountingKind::Start => "start",
        AccountingKind::InterimUpdate => "interim-update",
        AccountingKind::Stop => "stop",
        AccountingKind::AccountingOn => "accounting-on",
        AccountingKind::AccountingOff => "accounting-off",
    }
}

/// RFC 2868 §3.6: a string Tunnel-* value may start with a tag octet (0x01..=0x1F).
fn strip_tag(v: &[u8]) -> &[u8] {
    match v.first() {
        Some(0..=0x1f) => &v[1..],
        _ => v,
    }
}

/// Vendor attributes that carry the SSID, as data: `(vendor, type)`, tried in order before the
/// Called-Station-Id (PacketFence reads the same ones).
const SSID_VENDOR_ATTRIBUTES: &[(u32, u8)] = &[(dict::vendor::ARUBA, dict::aruba::ESSID_NAME)];

/// The SSID of a wireless session: a vendor attribute of [`SSID_VENDOR_ATTRIBUTES`], else the
/// Called-Station-Id.
pub(crate) fn ssid(packet: &Packet<'_>) -> Option<String> {
    let from_vsa = SSID_VENDOR_ATTRIBUTES.iter().find_map(|&(vendor, typ)| {
        packet
            .vendor_attributes(vendor)
            .find(|(t, _)| *t == typ)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    from_vsa.or_else(|| packet.get_str(dict::CALLED_STATION_ID).and_then(ssid_of))
}

/// Wireless controllers send `Called-Station-Id = "<AP MAC>:<SSID>"` (RFC 3580 §3.20), the MAC
/// in any spelling [`Mac::parse`] accepts, colon-separated ones included
/// (`aa:bb:cc:dd:ee:ff:corp-wifi`); the SSID may itself contain colons.
fn ssid_of(called: &str) -> Option<String> {
    let ssid = called
        .match_indices(':')
        .find(|&(i, _)| Mac::parse(&called[..i]).is_ok())
        .map(|(i, _)| &called[i + 1..])?;
    (!ssid.is_empty()).then(|| ssid.to_string())
}

pub(crate) fn connection_type(nas_port_type: u32) -> String {
    match nas_port_type {
        dict::nas_port_type::ETHERNET => "Ethernet".to_string(),
        dict::nas_port_type::WIRELESS_802_11 => "Wireless-802.11".to_string(),
        dict::nas_port_type::VIRTUAL => "Virtual".to_string(),
        other => format!("NAS-Port-Type-{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssid_from_called_station_id() {
        assert_eq!(
            ssid_of("AA-BB-CC-DD-EE-FF:corp-wifi").as_deref(),
            Some("corp-wifi")
        );
        assert_eq!(
            ssid_of("aa:bb:cc:dd:ee:ff:corp-wifi").as_deref(),
            Some("corp-wifi")
        );
        assert_eq!(
            ssid_of("aabbccddeeff:guest:5GHz").as_deref(),
            Some("guest:5GHz")
        );
        assert_eq!(ssid_of("aabb.ccdd.eeff:lab").as_deref(), Some("lab"));
        assert_eq!(ssid_of("aa:bb:cc:dd:ee:ff"), None);
        assert_eq!(ssid_of("AA-BB-CC-DD-EE-FF:"), None);
        assert_eq!(ssid_of("aa:bb:cc:dd:ee:ff:"), None);
        assert_eq!(ssid_of("not-a-mac:ssid"), None);
    }

    #[test]
    fn tunnel_tag_is_stripped() {
        assert_eq!(strip_tag(b"\x00100"), b"100");
        assert_eq!(strip_tag(b"100"), b"100");
    }
}

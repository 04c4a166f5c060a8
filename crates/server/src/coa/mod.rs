//! Access reevaluation: after a device's node changed (registered by the portal, `ironfence
//! node reevaluate`), tell the switch holding its session to re-authenticate it, with an RFC
//! 5176 CoA-Request or Disconnect-Request.
//!
//! ```text
//!  portal / control socket ──► reevaluate_access(shared, mac)
//!        locationlog (open entry: switch address, port)  ── written by accounting and at
//!        switches.conf (radiusDisconnect, ports, controllerIp, attributes as data)   Access-Accept
//!        wait node_cache_max_staleness (every server sees the change before the switch asks)
//!        ▼
//!  send_dynauth: one UDP socket per request (connected: only the NAS's address is read)
//!        radius::dynauth::Exchange (pure: RFC 5080 retransmission, CoA → Disconnect fallback)
//!        radius::dynauth::verify_reply (id + Response Authenticator over our Request
//!        Authenticator + Message-Authenticator)
//!        ▼
//!  Reevaluation { request id, switch, steps (kind, transmissions, ACK / NAK + Error-Cause) }
//!  metrics ironfence_coa_* · one log line per reply with the request id and Error-Cause
//! ```
//!
//! Where requests leave from: `coaSource` (switches.conf) — by default this server's
//! management address in a cluster (the address the switch knows as a RADIUS server), the
//! kernel's choice on a single server; `vip` sends from the management VIP.

pub mod location;
pub mod metrics;

use crate::Shared;
use ironfence_config::dynauth::{CoaSource, DynAuthSettings};
use ironfence_config::{Config, SwitchSettings};
use ironfence_core::Mac;
use ironfence_radius::dynauth::{
    Command, DynAuthRequest, Exchange, Jitter, Outcome, Reply, RetryPolicy, StepResult,
    verify_reply,
};
use ironfence_radius::{Code, PacketBuilder, RequestId, dict};
use ironfence_store::{LocationLogEntry, Store};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tracing::Instrument;

pub use metrics::CoaMetrics;

/// Why no exchange took place (or could not go on).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{0} has no open location (no accounting and no Access-Accept recorded where it is): nothing to send"
    )]
    NoLocation(Mac),
    #[error(
        "the switch {switch_ip} holding {mac}'s session is not in switches.conf any more: add it or wait for the device to authenticate elsewhere"
    )]
    UnknownSwitch { mac: Mac, switch_ip: String },
    #[error("reading {mac}'s location: {source}")]
    Store {
        mac: Mac,
        source: ironfence_store::StoreError,
    },
    #[error(
        "cannot send from {source_ip}: {error} (coaSource in switches.conf names an address this server does not hold?)"
    )]
    Bind {
        source_ip: IpAddr,
        error: std::io::Error,
    },
    #[error("CoA/Disconnect socket to {to}: {error}")]
    Io {
        to: SocketAddr,
        error: std::io::Error,
    },
    #[error("building the request: {0}")]
    Encode(#[from] ironfence_radius::EncodeError),
}

impl Error {
    fn label(&self) -> &'static str {
        match self {
            Error::NoLocation(_) => "no_location",
            Error::UnknownSwitch { .. } => "unknown_switch",
            _ => "error",
        }
    }
}

/// Where and how to send, resolved from the location and switches.conf.
#[derive(Debug, Clone)]
pub struct Target {
    /// The device.
    pub mac: Mac,
    /// The NAS's address as its RADIUS traffic shows it (NAS-IP-Address of the request).
    pub nas_ip: IpAddr,
    /// Where requests go: `controllerIp`, else `nas_ip`.
    pub destination: IpAddr,
    /// Local address to send from (`None`: the kernel's choice).
    pub source: Option<IpAddr>,
    /// Used when `source` is not held by this server (`coaSource = vip` on a member that
    /// does not hold the VIP): its own management address.
    pub fallback_source: Option<IpAddr>,
    /// The switch's RADIUS secret.
    pub secret: Vec<u8>,
    pub settings: DynAuthSettings,
}

/// What a reevaluation did.
#[derive(Debug, Clone)]
pub struct Reevaluation {
    pub request_id: RequestId,
    pub mac: Mac,
    /// switches.conf section of the switch.
    pub switch_id: String,
    pub destination: IpAddr,
    pub outcome: Outcome,
}

impl Reevaluation {
    /// The NAS acknowledged the last request sent.
    pub fn acked(&self) -> bool {
        self.outcome.acked()
    }
}

impl fmt::Display for Reevaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "request id: {}", self.request_id)?;
        writeln!(f, "device:     {}", self.mac)?;
        writeln!(
            f,
            "switch:     {} (sent to {})",
            self.switch_id, self.destination
        )?;
        for s in &self.outcome.steps {
            let result = match s.result {
                StepResult::Ack => "ACK".to_string(),
                StepResult::Nak(None) => "NAK".to_string(),
                StepResult::Nak(Some(c)) => format!("NAK, Error-Cause {c}"),
                StepResult::Timeout => "no answer".to_string(),
            };
            writeln!(
                f,
                "{:<11} {result} ({} transmission{})",
                format!("{}:", s.kind.label()),
                s.transmissions,
                if s.transmissions == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// Sends a CoA or Disconnect for `mac` to the switch holding its session (see the module
/// docs). The portal calls it after a registration; `ironfence node reevaluate` through the
/// control socket. `Ok` whatever the NAS answered (see [`Reevaluation::acked`]); `Err` when
/// nothing could be sent.
pub async fn reevaluate_access(shared: &Arc<Shared>, mac: Mac) -> Result<Reevaluation, Error> {
    let request_id = new_request_id();
    let span = tracing::info_span!("coa", request_id = %request_id, %mac);
    let result: Result<Reevaluation, Error> = async {
        let location = current_location(&shared.store, mac).await?;
        let config = shared.config();
        let (switch, target) = resolve(&config, &location)?;
        // The change this follows must be visible to every server (their node caches) before
        // the switch authenticates the device again.
        tokio::time::sleep(shared.nodes.max_staleness()).await;
        let outcome = send_dynauth(&target, RetryPolicy::default(), &shared.metrics.coa).await?;
        Ok(Reevaluation {
            request_id,
            mac,
            switch_id: switch.id.clone(),
            destination: target.destination,
            outcome,
        })
    }
    .instrument(span.clone())
    .await;
    let _enter = span.enter();
    let label = match &result {
        Ok(r) => match r.outcome.last().map(|s| s.result) {
            Some(StepResult::Ack) => "ack",
            Some(StepResult::Nak(_)) => "nak",
            _ => "timeout",
        },
        Err(e) => e.label(),
    };
    shared
        .metrics
        .coa
        .outcomes
        .get_or_create(&[("outcome", label)])
        .inc();
    match &result {
        Ok(r) if r.acked() => {
            tracing::info!(switch = %r.switch_id, "access reevaluated: the switch acknowledged")
        }
        Ok(r) => {
            tracing::warn!(switch = %r.switch_id, outcome = label, "access reevaluation not acknowledged by the switch")
        }
        Err(e) => tracing::warn!(error = %e, "access not reevaluated"),
    }
    result
}

/// The device's open location log entry (the most recent one).
async fn current_location(store: &Store, mac: Mac) -> Result<LocationLogEntry, Error> {
    store
        .locationlog(mac, 8)
        .await
        .map_err(|source| Error::Store { mac, source })?
        .into_iter()
        .find(|e| e.end_time.is_none())
        .ok_or(Error::NoLocation(mac))
}

fn resolve<'c>(
    config: &'c Config,
    at: &LocationLogEntry,
) -> Result<(&'c SwitchSettings, Target), Error> {
    let unknown = || Error::UnknownSwitch {
        mac: at.mac,
        switch_ip: at.switch_ip.clone(),
    };
    let nas_ip: IpAddr = at.switch_ip.parse().map_err(|_| unknown())?;
    let switch = config
        .switches
        .lookup(nas_ip)
        .or_else(|| config.switches.get(&at.switch_id))
        .ok_or_else(unknown)?;
    let d = &switch.dynauth;
    Ok((
        switch,
        Target {
            mac: at.mac,
            nas_ip,
            destination: d.controller_ip.unwrap_or(nas_ip),
            source: source_ip(config, d.source),
            fallback_source: source_ip(config, CoaSource::Management),
            secret: switch.secret.clone(),
            settings: d.clone(),
        },
    ))
}

/// `coaSource` → the local address.
fn source_ip(config: &Config, source: CoaSource) -> Option<IpAddr> {
    let own = config
        .this_server()
        .and_then(|s| s.management_ip)
        .map(IpAddr::V4);
    match source {
        CoaSource::Management => own,
        CoaSource::ManagementVip => config
            .cluster
            .as_ref()
            .and_then(|c| c.management_ip)
            .map(IpAddr::V4)
            .or(own),
        CoaSource::Ip(ip) => Some(ip),
    }
}

/// The identification attributes (PacketFence's: Calling-Station-Id, NAS-IP-Address; RFC 5176
/// §3) and the switch's attributes for `kind`.
fn attributes(
    target: &Target,
    kind: ironfence_radius::dynauth::DynAuthKind,
) -> Result<PacketBuilder, ironfence_radius::EncodeError> {
    let mut b = PacketBuilder::new(Code::CoaRequest, 0);
    b.add_str(dict::CALLING_STATION_ID, &target.mac.to_string())?;
    match target.nas_ip {
        IpAddr::V4(ip) => b.add_ipv4(dict::NAS_IP_ADDRESS, ip)?,
        IpAddr::V6(ip) => b.add(dict::NAS_IPV6_ADDRESS, &ip.octets())?,
    };
    for a in target.settings.attributes(kind) {
        a.add_to(&mut b)?;
    }
    Ok(b)
}

/// Runs one exchange with the NAS: the engine decides, this sends and receives. Public so the
/// benchmark and tests can drive it against a NAS stand-in with their own timing.
pub async fn send_dynauth(
    target: &Target,
    policy: RetryPolicy,
    metrics: &CoaMetrics,
) -> Result<Outcome, Error> {
    let started = tokio::time::Instant::now();
    let mut exchange = Exchange::new(target.settings.radius_disconnect.chain(), policy);
    let mut cmd = exchange.start(Duration::ZERO, jitter());
    let mut current: Option<(DynAuthRequest, UdpSocket, tokio::time::Instant)> = None;
    let mut buf = vec![0u8; ironfence_radius::MAX_PACKET_LEN];
    while let Command::Send {
        kind,
        retransmission,
        until,
    } = cmd
    {
        let fresh = !retransmission || current.as_ref().is_none_or(|(r, ..)| r.kind != kind);
        if fresh {
            let to = SocketAddr::new(target.destination, target.settings.port(kind));
            let socket = match bind(target.source, to).await {
                // Not an address of this server (bind refused, or allowed by
                // ip_nonlocal_bind and then unroutable): its own management address instead.
                Err(e)
                    if target
                        .fallback_source
                        .is_some_and(|f| Some(f) != target.source) =>
                {
                    tracing::info!(source = ?target.source, fallback = ?target.fallback_source, error = %e, "cannot send from the CoA source address (not held by this server?): sending from its own");
                    bind(target.fallback_source, to).await?
                }
                other => other?,
            };
            let request = DynAuthRequest::encode(
                kind,
                random_u8(),
                &attributes(target, kind)?,
                &target.secret,
            );
            current = Some((request, socket, tokio::time::Instant::now()));
        }
        let (request, socket, first_sent) = current.as_ref().expect("set above");
        let to = SocketAddr::new(target.destination, target.settings.port(kind));
        metrics
            .sent
            .get_or_create(&[
                ("kind", kind.label()),
                ("transmission", if fresh { "first" } else { "retransmit" }),
            ])
            .inc();
        if !fresh {
            tracing::info!(kind = kind.label(), %to, "no answer yet: retransmitting");
        }
        if let Err(error) = socket.send(&request.bytes).await {
            // Unreachable network and the like: counted as a transmission without an answer.
            tracing::warn!(kind = kind.label(), %to, %error, "CoA/Disconnect not sent");
        }
        let deadline = started + until;
        let steps_before = exchange.outcome().steps.len();
        cmd = loop {
            let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
            let n = match received {
                Err(_elapsed) => {
                    break exchange.on_timeout(started.elapsed().max(until), jitter());
                }
                Ok(Err(error)) => {
                    // ICMP port unreachable on the connected socket: the NAS does not listen;
                    // wait out the timeout as for silence (it may be restarting).
                    tracing::debug!(%to, %error, "receive error");
                    tokio::time::sleep_until(deadline).await;
                    break exchange.on_timeout(started.elapsed().max(until), jitter());
                }
                Ok(Ok(n)) => n,
            };
            let reply = match verify_reply(
                request,
                &buf[..n],
                &target.secret,
                target.settings.require_message_authenticator,
            ) {
                Ok(reply) => reply,
                Err(e) => {
                    metrics
                        .bad_replies
                        .get_or_create(&[("reason", e.reason())])
                        .inc();
                    tracing::warn!(kind = kind.label(), %to, error = %e, "reply refused (ignored; still waiting)");
                    continue;
                }
            };
            metrics
                .round_trip
                .observe(first_sent.elapsed().as_secs_f64());
            match reply {
                Reply::Ack => {
                    metrics
                        .replies
                        .get_or_create(&[("kind", kind.label()), ("result", "ack")])
                        .inc();
                    tracing::info!(kind = kind.label(), %to, "ACK");
                }
                Reply::Nak { error_cause } => {
                    metrics
                        .replies
                        .get_or_create(&[("kind", kind.label()), ("result", "nak")])
                        .inc();
                    metrics
                        .nak_causes
                        .get_or_create(&[(
                            "error_cause",
                            error_cause.map_or("none".to_string(), |c| c.0.to_string()),
                        )])
                        .inc();
                    let cause = error_cause.map(|c| c.to_string());
                    tracing::warn!(kind = kind.label(), %to, error_cause = cause.as_deref().unwrap_or("none"), "NAK");
                }
            }
            break exchange.on_reply(started.elapsed(), reply, jitter());
        };
        for step in &exchange.outcome().steps[steps_before..] {
            if step.result == StepResult::Timeout {
                metrics
                    .timeouts
                    .get_or_create(&[("kind", step.kind.label())])
                    .inc();
                tracing::warn!(kind = step.kind.label(), %to, transmissions = step.transmissions, "no valid answer");
            }
        }
    }
    Ok(exchange.outcome())
}

async fn bind(source: Option<IpAddr>, to: SocketAddr) -> Result<UdpSocket, Error> {
    let local = match (source, to) {
        (Some(ip), _) => SocketAddr::new(ip, 0),
        (None, SocketAddr::V4(_)) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        (None, SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local).await.map_err(|error| Error::Bind {
        source_ip: local.ip(),
        error,
    })?;
    // Connected: the kernel delivers only datagrams from the NAS's address and port.
    socket
        .connect(to)
        .await
        .map_err(|error| Error::Io { to, error })?;
    Ok(socket)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // A failing OS random source leaves zeros: the identifier is then predictable, which the
    // Response Authenticator check (over our Request Authenticator) makes harmless.
    let _ = getrandom::fill(&mut b);
    b
}

fn random_u8() -> u8 {
    random_bytes::<1>()[0]
}

fn jitter() -> Jitter {
    Jitter::from_random(u16::from_le_bytes(random_bytes::<2>()))
}

fn new_request_id() -> RequestId {
    RequestId(u64::from_le_bytes(random_bytes::<8>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Zq8vRr2NwX4kTb7mYp3sLd9c-coa-unit";

    fn config(cluster: bool, switches: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        let mut files = vec![("switches.conf", switches.replace("SECRET", SECRET))];
        if cluster {
            files.push((
                "cluster.conf",
                "[CLUSTER]\nmanagement_ip = 127.0.74.100\n[pf1]\nmanagement_ip = 127.0.74.101\n[pf2]\nmanagement_ip = 127.0.74.102\n".to_string(),
            ));
            files.push((
                "pf.conf",
                "[database]\ntype = mysql\nhost = 127.0.0.1\npass = Xk3nP9vQ2mLr7TzW4yBs8D\n[webservices]\nuser = u\npass = Zq8vRr2NwX4kTb7mYp3sLd9c\n[active_active]\ngalera_replication_username = sst\ngalera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC\npassword = Vr9Lq2Xz\n".to_string(),
            ));
        }
        for (name, text) in files {
            std::fs::write(conf.join(name), text).unwrap();
        }
        let c = Config::load_as(&conf, Some("pf1")).unwrap_or_else(|d| panic!("{d}"));
        (dir, c)
    }

    fn at(switch_ip: &str) -> LocationLogEntry {
        LocationLogEntry {
            id: 1,
            mac: Mac([2, 0, 0, 0, 0x74, 0x40]),
            switch_id: switch_ip.into(),
            switch_ip: switch_ip.into(),
            port: Some("12".into()),
            vlan: Some("2".into()),
            role: None,
            ssid: None,
            session_id: None,
            username: None,
            connection_type: None,
            start_time: 0,
            end_time: None,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn targets_per_coa_source_and_controller_table() {
        let sw = "[default]\nradiusSecret = SECRET\nregistrationVlan = 2\n\
                  [10.0.0.1]\n\
                  [10.0.0.2]\ncoaSource = vip\ncontrollerIp = 10.0.9.9\n\
                  [10.0.0.3]\ncoaSource = 127.0.74.50\n\
                  [10.1.0.0/16]\n";
        // (cluster?, switch address, destination, source, fallback)
        type Case = (
            bool,
            &'static str,
            &'static str,
            Option<IpAddr>,
            Option<IpAddr>,
        );
        let cases: &[Case] = &[
            // Single server: the kernel's choice.
            (false, "10.0.0.1", "10.0.0.1", None, None),
            (false, "10.0.0.2", "10.0.9.9", None, None),
            (false, "10.0.0.3", "10.0.0.3", ip("127.0.74.50"), None),
            // Cluster: this member's management address by default, the VIP on request
            // (with the member's own address as the fallback).
            (
                true,
                "10.0.0.1",
                "10.0.0.1",
                ip("127.0.74.101"),
                ip("127.0.74.101"),
            ),
            (
                true,
                "10.0.0.2",
                "10.0.9.9",
                ip("127.0.74.100"),
                ip("127.0.74.101"),
            ),
            (
                true,
                "10.0.0.3",
                "10.0.0.3",
                ip("127.0.74.50"),
                ip("127.0.74.101"),
            ),
            // A switch of a CIDR section: sent to the address it authenticated from.
            (
                true,
                "10.1.2.3",
                "10.1.2.3",
                ip("127.0.74.101"),
                ip("127.0.74.101"),
            ),
        ];
        for (cluster, switch_ip, dest, source, fallback) in cases {
            let (_dir, c) = config(*cluster, sw);
            let (_, t) = resolve(&c, &at(switch_ip)).unwrap();
            assert_eq!(
                t.destination,
                dest.parse::<IpAddr>().unwrap(),
                "{switch_ip}"
            );
            assert_eq!(t.source, *source, "{cluster} {switch_ip}");
            assert_eq!(t.fallback_source, *fallback, "{cluster} {switch_ip}");
            assert_eq!(t.nas_ip, switch_ip.parse::<IpAddr>().unwrap());
            assert_eq!(t.secret, SECRET.as_bytes());
        }
        let (_dir, c) = config(false, sw);
        assert!(matches!(
            resolve(&c, &at("192.0.2.1")),
            Err(Error::UnknownSwitch { .. })
        ));
    }

    #[test]
    fn requests_identify_the_session_and_carry_the_switch_attributes() {
        let sw = "[10.0.0.1]\nradiusSecret = SECRET\nregistrationVlan = 2\ntype = Cisco::Catalyst_2960\n\
                  disconnectAttributes = Service-Type=Authorize-Only\n";
        let (_dir, c) = config(false, sw);
        let (_, t) = resolve(&c, &at("10.0.0.1")).unwrap();
        use ironfence_radius::Attributes;
        use ironfence_radius::dynauth::DynAuthKind;
        let coa = attributes(&t, DynAuthKind::Coa).unwrap();
        let types: Vec<u8> = Attributes::new(coa.attribute_bytes())
            .map(|a| a.typ)
            .collect();
        assert_eq!(
            types,
            vec![
                dict::CALLING_STATION_ID,
                dict::NAS_IP_ADDRESS,
                dict::VENDOR_SPECIFIC
            ]
        );
        let disconnect = attributes(&t, DynAuthKind::Disconnect).unwrap();
        let types: Vec<u8> = Attributes::new(disconnect.attribute_bytes())
            .map(|a| a.typ)
            .collect();
        assert_eq!(
            types,
            vec![
                dict::CALLING_STATION_ID,
                dict::NAS_IP_ADDRESS,
                dict::SERVICE_TYPE
            ]
        );
    }
}

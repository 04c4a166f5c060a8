//! `ironfence node ...`: device management from the command line. Works with or without a
//! running daemon (SQLite in WAL mode and MariaDB both allow concurrent use).

use anyhow::{Context, bail};
use clap::Subcommand;
use ironfence_config::Config;
use ironfence_core::{Mac, Node, NodeStatus, UnixTime};
use ironfence_store::{NodeFilter, Store, StoreError};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// List nodes.
    List {
        #[arg(long)]
        status: Option<NodeStatus>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Show one node, its open security events, location log and IP history.
    Show { mac: Mac },
    /// Register a node (creates it if unknown).
    Register {
        mac: Mac,
        /// Owner (person id).
        #[arg(long, default_value = "default")]
        pid: String,
        /// Role (must exist in roles.conf).
        #[arg(long, default_value = "default")]
        role: String,
        /// Registration expiry: an RFC 3339 time (2027-01-31T00:00:00Z), or a duration from now (30d).
        #[arg(long)]
        unregdate: Option<String>,
    },
    /// Unregister a node (back to the registration VLAN at its next authentication).
    Unregister { mac: Mac },
    /// Delete a node and forget it.
    Delete { mac: Mac },
    /// Isolate a node: open a security event, so it gets the isolation VLAN at its next authentication.
    Isolate {
        mac: Mac,
        /// Security event id (PacketFence numbering; 1100010 = "isolated by an administrator").
        #[arg(long, default_value_t = 1_100_010)]
        event_id: u32,
        #[arg(long)]
        notes: Option<String>,
    },
    /// Release a node: close its open security events.
    Release { mac: Mac },
    /// Import nodes from a CSV file: mac,status,role,pid (header line optional).
    Import { file: PathBuf },
    /// Ask the switch holding the device's session to re-authenticate it (RFC 5176 CoA or
    /// Disconnect, per switches.conf `radiusDisconnect`), through the running daemon.
    Reevaluate { mac: Mac },
}

pub(crate) async fn run(config: &Config, cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    if let NodeCommand::Reevaluate { mac } = cmd {
        return reevaluate(config, mac).await;
    }
    let store = Store::open(&ironfence_server::store_config(config))
        .await
        .map_err(explain)?;
    let changed = match &cmd {
        NodeCommand::Register { mac, .. }
        | NodeCommand::Unregister { mac }
        | NodeCommand::Delete { mac }
        | NodeCommand::Isolate { mac, .. }
        | NodeCommand::Release { mac } => Some(*mac),
        _ => None,
    };
    let result = exec(config, &store, cmd).await;
    if let (Ok(_), Some(mac)) = (&result, changed) {
        tell_the_daemon(config, mac).await;
    }
    let result = result.map_err(|e| match e.downcast::<StoreError>() {
        Ok(store_error) => explain(store_error),
        Err(other) => other,
    });
    store.close().await;
    result
}

/// The local daemon's node cache learns of the change through the change log within its poll
/// interval (100 ms); telling it directly makes the change visible to its next request. Best
/// effort: no daemon running is fine, and a failure leaves the poller to catch up.
async fn tell_the_daemon(config: &Config, mac: ironfence_core::Mac) {
    let client =
        ironfence_server::ControlClient::new(ironfence_server::control_socket_path(config));
    if let Err(e) = client.call(&format!("changed {mac}")).await {
        tracing::debug!(error = %e, "daemon not told of the node change (its poller will see it)");
    }
}

/// The daemon sends it (its sockets, its retransmission timers, its metrics) and answers with
/// the outcome: switch, kinds sent, ACK / NAK with the Error-Cause. Exit 1 unless acknowledged.
async fn reevaluate(config: &Config, mac: Mac) -> anyhow::Result<ExitCode> {
    let client =
        ironfence_server::ControlClient::new(ironfence_server::control_socket_path(config));
    match client.call(&format!("reevaluate {mac}")).await {
        Ok(text) => {
            out!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(ironfence_server::ControlError::Refused(text)) => {
            outln!("{text}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// Store errors worded for the operator: a refused write says where to go instead.
fn explain(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::ReadOnly { .. } => anyhow::anyhow!(
            "this server is read-only (its database has no quorum or is read-only): retry on a \
             server that has it, e.g. one `ironfence db status --all` shows Primary ({e})"
        ),
        other => other.into(),
    }
}

async fn exec(config: &Config, store: &Store, cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    let now = ironfence_server::cluster::unix_now();
    match cmd {
        NodeCommand::List {
            status,
            role,
            limit,
            offset,
        } => {
            let nodes = store
                .list_nodes(&NodeFilter {
                    status,
                    role,
                    limit,
                    offset,
                })
                .await?;
            outln!(
                "{:<17}  {:<7}  {:<12}  {:<16}  {:<20}  last seen",
                "MAC",
                "STATUS",
                "ROLE",
                "OWNER",
                "REGISTERED"
            );
            for n in &nodes {
                outln!(
                    "{:<17}  {:<7}  {:<12}  {:<16}  {:<20}  {}",
                    n.mac,
                    n.status,
                    n.role.as_deref().unwrap_or("-"),
                    n.pid,
                    fmt_time(n.regdate),
                    fmt_time(n.last_seen)
                );
            }
            outln!("{} node(s)", nodes.len());
        }
        NodeCommand::Show { mac } => {
            let Some(view) = store.node_view(mac).await? else {
                eprintln!("error: node {mac} is not known");
                return Ok(ExitCode::FAILURE);
            };
            print_node(&view.node);
            outln!("open security events: {}", view.open_security_events);
            let log = store.locationlog(mac, 10).await?;
            outln!("location log (newest first):");
            for e in &log {
                outln!(
                    "  {} .. {}  switch {} ({}) port {} vlan {} ssid {} session {}",
                    fmt_time(Some(e.start_time)),
                    e.end_time
                        .map(|t| fmt_time(Some(t)))
                        .unwrap_or_else(|| "open".into()),
                    e.switch_id,
                    e.switch_ip,
                    e.port.as_deref().unwrap_or("-"),
                    e.vlan.as_deref().unwrap_or("-"),
                    e.ssid.as_deref().unwrap_or("-"),
                    e.session_id.as_deref().unwrap_or("-"),
                );
            }
            for ip in store.ip4log_for(mac).await? {
                outln!("  ip {} since {}", ip.ip, fmt_time(Some(ip.start_time)));
            }
        }
        NodeCommand::Register {
            mac,
            pid,
            role,
            unregdate,
        } => {
            if !config.roles.contains(&role) {
                bail!(
                    "role {role:?} is not defined in roles.conf (known roles: {})",
                    config.roles.names().collect::<Vec<_>>().join(", ")
                );
            }
            let unregdate = unregdate
                .as_deref()
                .map(|s| parse_when(s, now))
                .transpose()?;
            let node = store
                .register_node(mac, &pid, &role, unregdate, now)
                .await?;
            print_node(&node);
        }
        NodeCommand::Unregister { mac } => {
            if !store.unregister_node(mac, now).await? {
                eprintln!("error: node {mac} is not known");
                return Ok(ExitCode::FAILURE);
            }
            outln!("{mac} unregistered");
        }
        NodeCommand::Delete { mac } => {
            if !store.delete_node(mac).await? {
                eprintln!("error: node {mac} is not known");
                return Ok(ExitCode::FAILURE);
            }
            outln!("{mac} deleted");
        }
        NodeCommand::Isolate {
            mac,
            event_id,
            notes,
        } => {
            if store.get_node(mac).await?.is_none() {
                store.create_node_if_absent(mac, now).await?;
            }
            let id = store
                .open_security_event(mac, event_id, now, notes.as_deref())
                .await?;
            outln!("{mac} isolated (security event {event_id}, record {id})");
        }
        NodeCommand::Release { mac } => {
            let n = store.close_security_events(mac, now).await?;
            outln!("{mac}: {n} security event(s) closed");
        }
        NodeCommand::Reevaluate { mac } => return reevaluate(config, mac).await,
        NodeCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let nodes = parse_csv(&file, &text, now)?;
            let n = store.bulk_import_nodes(&nodes).await?;
            outln!("{n} node(s) imported from {}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_csv(file: &std::path::Path, text: &str, now: UnixTime) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("mac")) {
            continue;
        }
        let mut f = line.split(',').map(str::trim);
        let at = || format!("{}:{}", file.display(), i + 1);
        let mac: Mac = f.next().unwrap_or("").parse().with_context(at)?;
        let status: NodeStatus = f.next().unwrap_or("unreg").parse().with_context(at)?;
        let role = f.next().filter(|r| !r.is_empty()).map(str::to_string);
        let pid = f
            .next()
            .filter(|p| !p.is_empty())
            .unwrap_or("default")
            .to_string();
        let mut node = Node::new_unregistered(mac, now);
        node.status = status;
        node.role = role;
        node.pid = pid;
        node.last_seen = None;
        if status == NodeStatus::Registered {
            node.regdate = Some(now);
        }
        nodes.push(node);
    }
    Ok(nodes)
}

fn print_node(n: &Node) {
    outln!("mac:        {}", n.mac);
    outln!("status:     {}", n.status);
    outln!("role:       {}", n.role.as_deref().unwrap_or("-"));
    outln!("owner:      {}", n.pid);
    outln!("registered: {}", fmt_time(n.regdate));
    outln!(
        "expires:    {}",
        n.unregdate
            .map(|t| fmt_time(Some(t)))
            .unwrap_or_else(|| "never".into())
    );
    outln!("last seen:  {}", fmt_time(n.last_seen));
}

fn parse_when(s: &str, now: UnixTime) -> anyhow::Result<UnixTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
    }
    let d = humantime::parse_duration(s)
        .with_context(|| format!("{s:?} is neither an RFC 3339 time nor a duration like 30d"))?;
    Ok(now + d.as_secs() as i64)
}

/// `-` for "never"; otherwise RFC 3339 (see `crate::fmt_time`).
fn fmt_time(t: Option<UnixTime>) -> String {
    t.map_or_else(|| "-".to_string(), crate::fmt_time)
}

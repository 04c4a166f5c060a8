//! The MariaDB option file (`my.cnf`) of this server's Galera node, generated from
//! cluster.conf and pf.conf at every database start (PacketFence: `pfcmd
//! generatemariadbconfig`, run as the `ExecStartPre` of `packetfence-mariadb`).
//!
//! Every setting and why (measured in `/work/shared/research/galera-netns-lab.md`):
//!
//! | setting | value | why |
//! |---|---|---|
//! | `user` | `mysql` | rsync SST fails when mariadbd runs as root (the joiner's rsync daemon drops to `nobody`: `mkdir "mysql" … Permission denied`, then `Will never receive state. Need to abort.`) |
//! | `bind-address` | `127.0.0.1` and this server's `management_ip` | the local ironfence uses 127.0.0.1 (pf.conf `[database] host`), peers the management IP; never every interface (the registration VLAN must not reach the database), never the VIP |
//! | `wsrep_cluster_address` | `gcomm://` + the **enabled** members, cluster.conf order | disabled and maintenance members are left out; this server is always listed, so the list is never the empty `gcomm://`, which would silently bootstrap a new cluster (split brain) |
//! | `wsrep_sst_method` | `mariabackup` | the donor keeps accepting writes during the copy (rsync holds `FLUSH TABLES WITH READ LOCK` on the donor for the whole copy: its RADIUS writes stop); the guide installs XtraBackup for the same reason. A join costs ≈10 s more (`wsrep_sst_mariabackup` sleeps 10 s before streaming). Needs `mariadb-backup` and `socat` (`db start` checks) |
//! | `wsrep_sst_auth` | pf.conf `[active_active] galera_replication_username:password` | the donor's mariabackup connects to its own mariadbd over the socket as this account (`…@'localhost'`, RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR); the SST script hands the password to mariabackup in `MYSQL_PWD`, never on a command line |
//! | `wsrep_dirty_reads` | `ON` | a non-Primary node still serves (stale) reads: RADIUS keeps answering from what it has |
//! | `wsrep_provider_options` | `gmcast.listen_addr=tcp://<management_ip>:4567`, `pc.recovery=TRUE`, `gmcast.time_wait=PT2S` + the lab's "fast" LAN timeouts | the group port listens on the management network only (Galera's default is every interface); a healed member may reconnect 1 s after it was dropped instead of 2.5 s; | after a crash of every node the primary component re-forms in ≈1 s from `gvwstate.dat`; partitions are detected in 1.1–1.4 s instead of 5.4–6.5 s (`keepalive_period ≤ inactive_check_period ≤ suspect_timeout ≤ inactive_timeout`) |
//! | `innodb_flush_log_at_trx_commit` | `2` | `0` lost the last committed row when every node was killed; `2` survives a process kill (not a host crash) |
//! | `binlog_format`, `innodb_autoinc_lock_mode`, `default_storage_engine` | `ROW`, `2`, `InnoDB` | required by Galera |
//! | `wsrep_slave_threads` | `1` | as PacketFence and the lab |
//! | `server-id` | cluster.conf index + 1 | as PacketFence |
//! | `[sst] sst-log-archive-dir` | `<state_dir>/mysql/sst_log_archive` | otherwise an SST creates `/tmp/sst_log_archive` |
//! | `[client] socket` | the node's socket, **no `user=`** | `mariabackup` reads `[client]` too |
//!
//! The file holds the SST password: write it mode 0640, owner root, group mysql (the SST
//! scripts, running as `mysql`, read it).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ironfence_config::Config;

/// `wsrep_cluster_name`. pf.conf has no key for it; every ironfence cluster uses this name
/// (a node refuses to join a cluster with another name, so two clusters on one LAN are kept
/// apart by their member lists, not by this name).
pub const CLUSTER_NAME: &str = "ironfence";
/// The Galera 4 provider as installed by Debian's `galera-4` package.
pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
/// MariaDB's port on the management address.
pub const PORT: u16 = 3306;
/// `wsrep_provider_options`: `pc.recovery` and the lab's "fast" LAN failure detection
/// (partition detected in 1.1–1.4 s, rejoin by IST in 0.6–2.0 s). `gcache.size` is Galera's
/// default, written out because it bounds how long a node may be away and still rejoin by IST.
///
/// `gmcast.time_wait=PT2S` (default 5 s): a member dropped from the view by a partition may
/// reconnect only after `time_wait / 2` (gcomm `gmcast.cpp`: `gmcast_forget(uuid,
/// time_wait_/2)`), so with the default a short partition kept the healed node out for 2.5 s
/// after the view change; 1 s is still well above the reconnect period (1 s after a failed
/// connect, checked every 0.5 s), so a flapping link cannot reconnect in a tight loop.
pub const PROVIDER_OPTIONS: &str = "gcache.size=128M; pc.recovery=TRUE; gmcast.peer_timeout=PT1S; gmcast.time_wait=PT2S; evs.keepalive_period=PT0.2S; evs.inactive_check_period=PT0.2S; evs.suspect_timeout=PT1S; evs.inactive_timeout=PT2S; evs.install_timeout=PT2S; evs.join_retrans_period=PT0.2S";

/// Galera's group-communication port.
pub const GROUP_PORT: u16 = 4567;

/// The provider options of this server: [`PROVIDER_OPTIONS`] and the group port bound to the
/// management address only (`gmcast.listen_addr`; Galera's default is `tcp://0.0.0.0:4567`,
/// which would expose the replication protocol on the registration and isolation networks).
pub fn provider_options(my_ip: Ipv4Addr) -> String {
    format!("{PROVIDER_OPTIONS}; gmcast.listen_addr=tcp://{my_ip}:{GROUP_PORT}")
}
/// `wsrep_sst_method`: a non-blocking state transfer (see the module documentation).
pub const SST_METHOD: &str = "mariabackup";
/// The longest unix socket path (`sun_path` is 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Where this server's Galera node keeps its files: everything under `<state_dir>/mysql/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaleraLayout {
    /// `<state_dir>/mysql/data`: the datadir (`grastate.dat`, `gvwstate.dat`, InnoDB files).
    pub datadir: PathBuf,
    /// `<state_dir>/mysql/tmp`.
    pub tmpdir: PathBuf,
    /// `<state_dir>/mysql/mysqld.sock`: the local clients' (and the supervisor's) socket.
    pub socket: PathBuf,
    /// `<state_dir>/mysql/mysqld.pid`.
    pub pid_file: PathBuf,
    /// `<state_dir>/mysql/error.log`: MariaDB's and Galera's log.
    pub error_log: PathBuf,
    /// `<state_dir>/mysql/sst_log_archive`.
    pub sst_log_archive: PathBuf,
    /// `<state_dir>/mysql/my.cnf`: where the generated file goes (`--defaults-file=`).
    pub config_file: PathBuf,
}

impl GaleraLayout {
    /// The layout under `state_dir` (pf.conf `[general] state_dir`).
    pub fn new(state_dir: &Path) -> GaleraLayout {
        let base = state_dir.join("mysql");
        GaleraLayout {
            datadir: base.join("data"),
            tmpdir: base.join("tmp"),
            socket: base.join("mysqld.sock"),
            pid_file: base.join("mysqld.pid"),
            error_log: base.join("error.log"),
            sst_log_archive: base.join("sst_log_archive"),
            config_file: base.join("my.cnf"),
        }
    }

    /// The layout of `config` (under its `state_dir`).
    pub fn from_config(config: &Config) -> GaleraLayout {
        GaleraLayout::new(&config.pf.general.state_dir)
    }

    /// `<datadir>/grastate.dat`: the saved state (uuid, seqno, safe_to_bootstrap).
    pub fn grastate(&self) -> PathBuf {
        self.datadir.join("grastate.dat")
    }

    /// `<datadir>/gvwstate.dat`: present after a hard shutdown (the last primary view).
    pub fn gvwstate(&self) -> PathBuf {
        self.datadir.join("gvwstate.dat")
    }
}

/// A cluster member as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its cluster.conf section name.
    pub name: String,
    /// Its management address (Galera's gcomm address).
    pub address: Ipv4Addr,
    /// `false` when this server has disabled it or it is in maintenance: it is then left out of
    /// `wsrep_cluster_address`.
    pub enabled: bool,
}

impl Member {
    /// The members of `config`'s cluster in cluster.conf order: every server with a
    /// `management_ip` (checkup reports those without), disabled when it is in
    /// `disabled_peers` (this server's `cluster-local.json`) or in `in_maintenance` (peers that
    /// reported maintenance). Names compare case-insensitively, as cluster.conf's do.
    pub fn from_config(
        config: &Config,
        disabled_peers: &BTreeSet<String>,
        in_maintenance: &BTreeSet<String>,
    ) -> Vec<Member> {
        let listed =
            |set: &BTreeSet<String>, name: &str| set.iter().any(|n| n.eq_ignore_ascii_case(name));
        config
            .cluster
            .iter()
            .flat_map(|c| c.servers.iter())
            .filter_map(|s| {
                Some(Member {
                    name: s.name.clone(),
                    address: s.management_ip?,
                    enabled: !listed(disabled_peers, &s.name) && !listed(in_maintenance, &s.name),
                })
            })
            .collect()
    }
}

/// Why the option file cannot be generated. Every message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error(
        "cluster.conf defines no cluster: the Galera configuration exists only for cluster members; a single server uses the database of pf.conf [database] (define the servers in cluster.conf to build a cluster)"
    )]
    NotACluster,
    #[error(
        "this server {identity:?} has no [{identity}] section in cluster.conf (servers: {defined}): add its section, or set IRONFENCE_HOSTNAME to this server's section name"
    )]
    NotAMember { identity: String, defined: String },
    #[error(
        "[{server}] in cluster.conf has no management_ip: its Galera node binds and replicates on that address; set management_ip= to {server}'s own address on the management network"
    )]
    NoManagementIp { server: String },
    #[error(
        "pf.conf [active_active] galera_replication_username is not set: Galera state transfers (SST) authenticate with this account; create the replication user (clustering guide, step 1) and set galera_replication_username= and galera_replication_password="
    )]
    MissingReplicationUser,
    #[error(
        "pf.conf [active_active] galera_replication_password is empty: Galera state transfers (SST) authenticate with it; set galera_replication_password= to the replication user's password"
    )]
    MissingReplicationPassword,
    #[error("pf.conf [active_active] {key}: {reason}")]
    InvalidReplicationCredentials { key: &'static str, reason: String },
    #[error(
        "member {name:?} is not in cluster.conf (servers: {defined}): cluster.conf changed since the member list was built; reload the configuration and retry"
    )]
    UnknownMember { name: String, defined: String },
    #[error(
        "the MariaDB socket path {} is {len} bytes, more than the {MAX_SOCKET_PATH} a unix socket path can hold: set a shorter pf.conf [general] state_dir",
        path.display()
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error(
        "{what} {path:?} cannot be written in my.cnf (not UTF-8 or it contains a control character): set pf.conf [general] state_dir to a plain path"
    )]
    UnwritablePath { what: &'static str, path: PathBuf },
}

/// The option file of this server (`config.identity`) for `members` (see
/// [`Member::from_config`]). `wsrep_cluster_address` lists this server and the enabled
/// members, in cluster.conf order. The text is deterministic (golden-tested).
pub fn generate(
    config: &Config,
    members: &[Member],
    layout: &GaleraLayout,
) -> Result<String, GenerateError> {
    let cluster = config.cluster.as_ref().ok_or(GenerateError::NotACluster)?;
    let defined = || {
        let names: Vec<&str> = cluster.server_names().collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let me = cluster
        .server(&config.identity)
        .ok_or_else(|| GenerateError::NotAMember {
            identity: config.identity.clone(),
            defined: defined(),
        })?;
    let my_ip = me
        .management_ip
        .ok_or_else(|| GenerateError::NoManagementIp {
            server: me.name.clone(),
        })?;
    let aa = &config.pf.active_active;
    let user = aa
        .galera_replication_username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or(GenerateError::MissingReplicationUser)?;
    let pass = aa
        .galera_replication_password
        .as_ref()
        .map(|p| p.expose())
        .filter(|p| !p.is_empty())
        .ok_or(GenerateError::MissingReplicationPassword)?;
    if user.contains(':') || user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(GenerateError::InvalidReplicationCredentials {
            key: "galera_replication_username",
            reason: format!(
                "{user:?} cannot be used: wsrep_sst_auth is user:password, so the user name may contain neither ':' nor spaces nor control characters; create a replication user with a plain name"
            ),
        });
    }
    if pass.chars().any(char::is_control) {
        return Err(GenerateError::InvalidReplicationCredentials {
            key: "galera_replication_password",
            reason: "the password contains a control character, which my.cnf cannot carry; choose a password of printable characters".to_string(),
        });
    }
    for m in members {
        if cluster.server(&m.name).is_none() {
            return Err(GenerateError::UnknownMember {
                name: m.name.clone(),
                defined: defined(),
            });
        }
    }
    let socket_len = layout.socket.as_os_str().len();
    if socket_len > MAX_SOCKET_PATH {
        return Err(GenerateError::SocketPathTooLong {
            path: layout.socket.clone(),
            len: socket_len,
        });
    }

    // This server always, the others when enabled; cluster.conf order.
    let mut addresses: Vec<Ipv4Addr> = Vec::new();
    for s in &cluster.servers {
        let address = if s.index == me.index {
            Some(my_ip)
        } else {
            members
                .iter()
                .find(|m| m.name.eq_ignore_ascii_case(&s.name) && m.enabled)
                .map(|m| m.address)
        };
        if let Some(a) = address
            && !addresses.contains(&a)
        {
            addresses.push(a);
        }
    }
    let gcomm = addresses
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(",");

    let path = |what: &'static str, p: &Path| -> Result<String, GenerateError> {
        p.to_str()
            .filter(|s| !s.chars().any(char::is_control))
            .map(quote)
            .ok_or_else(|| GenerateError::UnwritablePath {
                what,
                path: p.to_path_buf(),
            })
    };
    let datadir = path("datadir", &layout.datadir)?;
    let tmpdir = path("tmpdir", &layout.tmpdir)?;
    let socket = path("socket", &layout.socket)?;
    let pid_file = path("pid-file", &layout.pid_file)?;
    let error_log = path("log-error", &layout.error_log)?;
    let sst_archive = path("sst-log-archive-dir", &layout.sst_log_archive)?;

    let mut out = String::new();
    let w = &mut out;
    let n = cluster.servers.len();
    let _ = writeln!(
        w,
        "# Generated by ironfence for {} (cluster.conf server {} of {n}) from cluster.conf and pf.conf.",
        me.name,
        me.index + 1
    );
    let _ = writeln!(
        w,
        "# Do not edit: it is rewritten at every database start. It holds the SST password: mode 0640, root:mysql."
    );
    let _ = writeln!(w, "[mariadbd]");
    let _ = writeln!(
        w,
        "# mysql, not root: the data files stay the mysql user's (and rsync SST fails as root)"
    );
    let _ = writeln!(w, "user=mysql");
    let _ = writeln!(w, "datadir={datadir}");
    let _ = writeln!(w, "tmpdir={tmpdir}");
    let _ = writeln!(w, "socket={socket}");
    let _ = writeln!(w, "pid-file={pid_file}");
    let _ = writeln!(w, "log-error={error_log}");
    let _ = writeln!(w, "bind-address=127.0.0.1,{my_ip}");
    let _ = writeln!(w, "port={PORT}");
    let _ = writeln!(w, "skip-name-resolve");
    let _ = writeln!(w, "server-id={}", me.index + 1);
    let _ = writeln!(w, "binlog_format=ROW");
    let _ = writeln!(w, "default_storage_engine=InnoDB");
    let _ = writeln!(w, "innodb_autoinc_lock_mode=2");
    let _ = writeln!(
        w,
        "# 2 survives a kill of every node (0 lost the last commit in the lab)"
    );
    let _ = writeln!(w, "innodb_flush_log_at_trx_commit=2");
    let _ = writeln!(w, "wsrep_on=ON");
    let _ = writeln!(w, "wsrep_provider={PROVIDER}");
    let _ = writeln!(w, "wsrep_cluster_name={CLUSTER_NAME}");
    let _ = writeln!(
        w,
        "# this server and the enabled members (not disabled, not in maintenance), cluster.conf order"
    );
    let _ = writeln!(w, "wsrep_cluster_address=gcomm://{gcomm}");
    let _ = writeln!(w, "wsrep_node_name={}", quote(&me.name));
    let _ = writeln!(w, "wsrep_node_address={my_ip}");
    let _ = writeln!(
        w,
        "# mariabackup: the donor keeps accepting writes during a join (rsync locks it for the whole copy)"
    );
    let _ = writeln!(w, "wsrep_sst_method={SST_METHOD}");
    let _ = writeln!(w, "wsrep_sst_auth={}", quote(&format!("{user}:{pass}")));
    let _ = writeln!(w, "wsrep_slave_threads=1");
    let _ = writeln!(
        w,
        "# a non-Primary node still serves (stale) reads; writes fail with 1047"
    );
    let _ = writeln!(w, "wsrep_dirty_reads=ON");
    let _ = writeln!(
        w,
        "# pc.recovery: re-form the primary component after a crash of every node; LAN timeouts: partition detected in ~1.2 s"
    );
    let _ = writeln!(
        w,
        "# the group port on the management address only, never 0.0.0.0"
    );
    let _ = writeln!(w, "wsrep_provider_options=\"{}\"", provider_options(my_ip));
    let _ = writeln!(w);
    let _ = writeln!(w, "[sst]");
    let _ = writeln!(w, "sst-log-archive-dir={sst_archive}");
    let _ = writeln!(w);
    let _ = writeln!(w, "[client]");
    let _ = writeln!(w, "# no user= here: mariabackup reads [client] too");
    let _ = writeln!(w, "socket={socket}");
    Ok(out)
}

/// A value as MariaDB's option-file reader (`mysys/my_default.c`) reads it back: as is when
/// plain; otherwise in double quotes with `\` and `"` escaped (a `#` outside quotes starts a
/// comment, backslashes are escapes even unquoted, surrounding spaces are trimmed).
fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '#' | ';' | '"' | '\'' | '\\'));
    if plain {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if matches!(c, '\\' | '"') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests;

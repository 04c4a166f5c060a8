//! The replicated database of an ironfence cluster — MariaDB Galera, one node on every server,
//! as in PacketFence's active/active clustering guide — as a **pure decision layer**.
//!
//! ```text
//!   ironfence daemon: database supervisor (owns processes, sockets, clock, node-to-node API)
//!     │
//!     │  cluster.conf + pf.conf, maintenance / disabled peers (cluster-local.json),
//!     │  grastate.dat text, gvwstate.dat present?, `mariadbd --wsrep-recover` log,
//!     │  peers' answers (authenticated API), SHOW GLOBAL STATUS LIKE 'wsrep%', SQL errors, now
//!     ▼
//!   ┌─────────────────────────── ironfence-galera (this crate) ───────────────────────────┐
//!   │ mycnf      Config + members ─► my.cnf text ([mariadbd] / [sst] / [client])          │
//!   │ grastate   grastate.dat ─► GraState; recover log ─► (uuid, seqno);                   │
//!   │            mark_safe_to_bootstrap (for --force-new-cluster)                          │
//!   │ bootstrap  StartInputs ─► StartDecision: Refuse | Recover | Bootstrap | Join |       │
//!   │            StartForPcRecovery | Wait (+ the exact operator command)                  │
//!   │ health     wsrep status rows ─► WsrepStatus; QuorumMonitor: DbEvent ─► ModeChange    │
//!   │            (read-write ⇄ read-only)                                                  │
//!   │ split      members' reports ─► split-brain errors (histories, Primary components)  │
//!   └──────────────────────────────────────────────────────────────────────────────────────┘
//!     │  decisions (with their reasons) out
//!     ▼
//!   supervisor writes my.cnf, runs `mariadbd --wsrep-recover`, then
//!   `mariadbd --defaults-file=… [--wsrep-new-cluster] [--wsrep_start_position=uuid:seqno]`,
//!   polls wsrep status and switches the application to read-only / read-write
//!     │
//!     ▼
//!   mariadbd (+ libgalera_smm.so)  ◄── gcomm 4567 / IST 4568 / SST 4444 ──►  peers' mariadbd
//! ```
//!
//! Nothing here spawns a process, opens a socket or reads the clock: every input, including
//! time ([`std::time::Instant`] values in [`health::DbEvent`]), is passed in, so every rule is a
//! row of a table-driven test. The openraft style: events in, decisions/commands out.
//!
//! Where ironfence differs from PacketFence's `pf-mariadb` wrapper and `galera-autofix`:
//! - `--wsrep-recover` is a separate, explicit step ([`bootstrap::StartDecision::Recover`]) and
//!   its position is always passed on (the lab showed that starting without it after a crash
//!   resets the cluster's state UUID);
//! - there is no "ping quorum" guess: a node joins only a peer whose database *is* Primary, and
//!   the automatic election after a total outage needs an answer (with its last committed
//!   seqno and state UUID) from **every** configured member over the authenticated
//!   node-to-node API; with anyone missing, or members of different histories, it waits and
//!   tells the operator exactly which command decides;
//! - `--force-new-cluster` is refused while a peer's database is Primary (it would start a
//!   second cluster), unless the operator says `--i-know-this-splits-the-cluster`;
//! - health is `Primary` + `Synced` + `wsrep_ready=ON`, never a TCP check or `SELECT 1`.
#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod grastate;
pub mod health;
pub mod mycnf;
pub mod split;

pub use bootstrap::{PeerDbState, StartDecision, StartInputs, decide_start};
pub use grastate::{GraState, GrastateError, mark_safe_to_bootstrap, parse_wsrep_recover};
pub use health::{
    DbEvent, DbMode, ModeChange, PolledDb, QuorumMonitor, WriteErrorKind, WsrepStatus,
    poll_interval,
};
pub use mycnf::{CLUSTER_NAME, GaleraLayout, GenerateError, Member, generate};

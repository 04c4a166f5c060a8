//! The cluster's front door, as decisions without IO: which virtual IPs this server competes
//! for and how (keepalived), what haproxy serves on them, when this server is fit to hold them,
//! what keepalived tells us it holds, and when to (re)start or reload both daemons.
//!
//! ```text
//!  Config + Local (disabled peers, maintenance, run dir) ──plan──► VipPlan (one VRRP instance
//!        per [CLUSTER interface X]: vrid, priority, unicast peers, VIPs)
//!                          │                     │
//!          keepalived::render                 haproxy::render (+ members' web listeners)
//!                          ▼                     ▼
//!                    keepalived.conf          haproxy.cfg     (written by the server shell)
//!
//!  Readiness {radius, db_writable, config_current} ──► track file value (0 ready / 1 not)
//!  notify FIFO lines ──notify::parse_line──► Held (instance → state) ──► VIPs this server holds
//!  Event (desired config, spawned, exited, tick) ──supervise::Supervisor──► Command
//! ```
//!
//! Nothing here reads a clock or a file: time is an argument (`now: Duration` since any fixed
//! origin), and the server shell (`ironfence_server::supervise`) does every write, spawn and
//! signal the commands ask for.

pub mod haproxy;
pub mod keepalived;
pub mod notify;
pub mod plan;
pub mod readiness;
pub mod supervise;

pub use notify::{Held, Notify, NotifyKind, VrrpState, parse_line};
pub use plan::{Instance, Local, PlanError, RunFiles, Vip, VipPlan, plan};
pub use readiness::Readiness;
pub use supervise::{Command, Event, Supervisor, SupervisorStatus};

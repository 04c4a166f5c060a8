//! Checks of the machine a cluster member runs on (part of `checkup`, never of loading: the
//! daemon of a test cluster on loopback addresses needs no sysctl).
//!
//! They apply only where keepalived and haproxy will run: a cluster whose cluster.conf has
//! `[CLUSTER interface X]` sections (virtual IPs to hold). The facts are gathered by
//! [`HostFacts::gather`] and judged by [`check`], a pure function.

use std::path::{Path, PathBuf};

use crate::Config;
use crate::diag::{Diagnostics, Severity};

/// `/proc/sys/net/ipv4/ip_nonlocal_bind`: haproxy and the RADIUS load balancer bind the VIPs
/// on every member, also on those that do not hold them.
pub const NONLOCAL_BIND_SYSCTL: &str = "/proc/sys/net/ipv4/ip_nonlocal_bind";

/// Programs a member with virtual IPs runs, with their Debian package.
pub const HA_PROGRAMS: &[(&str, &str)] = &[("keepalived", "keepalived"), ("haproxy", "haproxy")];

/// Directories searched after `PATH` (Debian puts keepalived and haproxy in /usr/sbin).
pub const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"];

/// What `checkup` needs to know about this machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostFacts {
    /// The content of [`NONLOCAL_BIND_SYSCTL`] (trimmed), `None` when it cannot be read.
    pub nonlocal_bind: Option<String>,
    /// Programs of [`HA_PROGRAMS`] not found.
    pub missing: Vec<&'static str>,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        HostFacts {
            nonlocal_bind: std::fs::read_to_string(NONLOCAL_BIND_SYSCTL)
                .ok()
                .map(|s| s.trim().to_string()),
            missing: HA_PROGRAMS
                .iter()
                .filter(|(p, _)| find_program(p).is_none())
                .map(|(p, _)| *p)
                .collect(),
        }
    }
}

/// `name` in `PATH` or [`SYSTEM_DIRS`].
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether this server holds virtual IPs (and so runs keepalived and haproxy).
pub fn runs_vips(config: &Config) -> bool {
    config
        .cluster
        .as_ref()
        .is_some_and(|c| !c.virtual_interfaces.is_empty())
}

/// The host checks of `checkup` (errors only where VIPs are managed).
pub fn check(config: &Config, facts: &HostFacts, out: &mut Diagnostics) {
    if !runs_vips(config) {
        return;
    }
    let cluster_file = config.conf_dir.join(crate::CLUSTER_CONF);
    let file: &Path = &cluster_file;
    if facts.nonlocal_bind.as_deref() != Some("1") {
        let now = facts.nonlocal_bind.as_deref().unwrap_or("unreadable");
        out.push(
            Severity::Error,
            file,
            None,
            Some("CLUSTER"),
            format!(
                "net.ipv4.ip_nonlocal_bind is {now} but cluster.conf defines virtual IPs: haproxy and the RADIUS load balancer bind the VIPs on every server, also where keepalived has not placed them; run `sysctl -w net.ipv4.ip_nonlocal_bind=1` and add `net.ipv4.ip_nonlocal_bind = 1` to /etc/sysctl.d/ironfence.conf (clustering guide)"
            ),
        );
    }
    for p in &facts.missing {
        let package = HA_PROGRAMS
            .iter()
            .find(|(n, _)| n == p)
            .map_or(*p, |(_, pkg)| *pkg);
        out.push(
            Severity::Error,
            file,
            None,
            Some("CLUSTER"),
            format!(
                "{p} not found in PATH or {}, but cluster.conf defines virtual IPs that ironfence serve runs {p} for: apt-get install {package}",
                SYSTEM_DIRS.join(", ")
            ),
        );
    }
}

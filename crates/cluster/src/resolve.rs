//! Configuration conflict resolution, as the clustering guide describes it ("Configuration
//! conflict handling" and "Going deeper in the conflict handling"), without IO.
//!
//! ```text
//!  daemon (management server, every cluster_check_interval)
//!    │  GET /api/v1/cluster/status on every enabled server
//!    ▼
//!  Observation ──► ConflictTracker::observe ──► decide() ──► Decision
//!                    (conflict seen twice?)                     │
//!    ◄──────────── Action::{Nothing, NoDecision, Wait, Push} ◄──┘
//!    │
//!    └─ Push { pusher == me } → push my bundle to `targets`
//!       Push { pusher != me } → ask `pusher` over the API to push to its peers
//! ```
//!
//! Versions are compared by hash: two servers run the same configuration iff their hashes are
//! equal. `changed_at` only orders versions for "most recent".
//!
//! Deterministic tie-breaking (the guide does not specify it):
//! - *most recent*: the highest `changed_at` among the servers holding a hash; equal
//!   `changed_at` → the version held by the server that comes first in cluster.conf order;
//! - *most servers*: equal counts → the most recent, then cluster.conf order.
//!
//! The pusher is the first server in cluster.conf order (among alive ones) holding the chosen
//! hash, and the pushed [`ConfigVersion`] is that server's (its `changed_at`/`changed_by`).
//!
//! A version dated more than [`MAX_CLOCK_SKEW`] after the check's clock (a peer's wrong clock,
//! or a forged `changed_at`) would win "most recent" for as long as the clock lags: it is
//! never chosen and its time never counts ([`Observation::future_dated`] lists it for the log);
//! its holders are pushed the chosen version like any other server on another version.

use crate::types::{ConfigVersion, MAX_CLOCK_SKEW, UnixTime};

/// What one configuration check saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// In cluster.conf order: every configured server that this server has NOT disabled
    /// (this server included).
    pub servers: Vec<ServerObservation>,
    /// The clock of the server that made the observation.
    pub now: UnixTime,
}

impl Observation {
    /// The alive servers whose version is dated beyond `now + MAX_CLOCK_SKEW`: never chosen.
    pub fn future_dated(&self) -> Vec<(&str, &ConfigVersion)> {
        self.servers
            .iter()
            .filter(|s| s.alive)
            .filter_map(|s| s.version.as_ref().map(|v| (s.name.as_str(), v)))
            .filter(|(_, v)| self.is_future(v))
            .collect()
    }

    fn is_future(&self, v: &ConfigVersion) -> bool {
        v.changed_at > self.now.saturating_add(MAX_CLOCK_SKEW)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerObservation {
    pub name: String,
    /// Its API answered. A server marked alive without a version counts as dead.
    pub alive: bool,
    /// Its configuration version; `None` if dead.
    pub version: Option<ConfigVersion>,
}

/// Which sentence of the guide decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// "In a two node cluster, the most recent configuration is always selected when resolving
    /// a conflict."
    TwoServersMostRecent,
    /// "In the event that the dead servers are in higher number than the alive ones, the most
    /// recent version is taken."
    MostRecentDeadOutnumberAlive,
    /// "Otherwise, the version that is present on the most servers will be selected."
    Majority,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// All alive servers run one version.
    Healthy,
    /// Conflict or not, nothing may be decided (e.g. a two-server cluster whose peer's API does
    /// not answer, or no server answered).
    NoDecision { reason: String },
    /// `pusher` (a server name) pushes `version` to `targets` (the alive servers on another
    /// version, in cluster.conf order).
    Push {
        version: ConfigVersion,
        pusher: String,
        targets: Vec<String>,
        rule: Rule,
    },
}

/// One distinct hash among the alive servers.
struct Group<'a> {
    /// Index (in `alive`) of the first server holding it with a version not dated in the
    /// future: the pusher. `None`: every holder's version is future-dated (never chosen).
    first: Option<usize>,
    hash: &'a str,
    count: usize,
    /// Highest `changed_at` among its holders, future-dated versions left out.
    latest: i64,
}

/// The guide's algorithm, as a pure function of one observation.
pub fn decide(obs: &Observation) -> Decision {
    // "The first step is to get the configuration version from each server through a
    // webservice call." A server that did not answer with a version is dead.
    let alive: Vec<(&str, &ConfigVersion)> = obs
        .servers
        .iter()
        .filter(|s| s.alive)
        .filter_map(|s| s.version.as_ref().map(|v| (s.name.as_str(), v)))
        .collect();
    let configured = obs.servers.len();
    let dead = configured - alive.len();

    if alive.is_empty() {
        return Decision::NoDecision {
            reason: "no server answered with its configuration version".into(),
        };
    }
    // "In a two node cluster, no decision is taken unless the peer server has its webservices
    // available."
    if configured == 2 && dead > 0 {
        let peer = obs
            .servers
            .iter()
            .find(|s| !(s.alive && s.version.is_some()))
            .map_or("the peer", |s| s.name.as_str());
        return Decision::NoDecision {
            reason: format!(
                "two-server cluster and {peer}'s API does not answer: no decision is taken \
                 unless the peer's web services are available"
            ),
        };
    }

    // "The results are then organized by version identifier."
    let mut groups: Vec<Group> = Vec::new();
    for (i, (_, v)) in alive.iter().enumerate() {
        let g = match groups.iter_mut().position(|g| g.hash == v.hash) {
            Some(k) => &mut groups[k],
            None => {
                groups.push(Group {
                    first: None,
                    hash: &v.hash,
                    count: 0,
                    latest: i64::MIN,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        g.count += 1;
        if !obs.is_future(v) {
            g.latest = g.latest.max(v.changed_at);
            g.first.get_or_insert(i);
        }
    }
    // "Should all alive servers run the same version, the state is considered as healthy and
    // nothing happens."
    if groups.len() == 1 {
        return Decision::Healthy;
    }

    let eligible = || {
        groups
            .iter()
            .filter_map(|g| g.first.map(|first| (g, first)))
    };
    if eligible().next().is_none() {
        return Decision::NoDecision {
            reason: format!(
                "every version is dated more than {MAX_CLOCK_SKEW} s after this server's clock \
                 ({}): {}; fix the clocks, then publish with `ironfence cluster sync --as-master`",
                obs.now,
                obs.future_dated()
                    .iter()
                    .map(|(n, v)| format!("{n}={}@{}", v.short(), v.changed_at))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    // `Reverse(first)` prefers the earlier server on ties.
    let most_recent = || eligible().max_by_key(|(g, first)| (g.latest, std::cmp::Reverse(*first)));
    let (chosen, rule) = if configured <= 2 {
        // "should there be more than one version identifier across the alive servers, the
        // algorithm validates that there are at least 2 servers configured in the cluster. If
        // there aren't, then the most recent version is pushed on the peer node." (read, as in
        // PacketFence's code, as "at most 2 servers": a two-server cluster has no majority)
        // "In a two node cluster, the most recent configuration is always selected when
        // resolving a conflict."
        (most_recent(), Rule::TwoServersMostRecent)
    } else if dead > alive.len() {
        // "In the event that the dead servers are in higher number than the alive ones, the
        // most recent version is taken."
        (most_recent(), Rule::MostRecentDeadOutnumberAlive)
    } else {
        // "Otherwise, the version that is present on the most servers will be selected."
        // "If the configuration is not pushed to at least half of the servers of your cluster,
        // when the failed nodes will come back online, they will have quorum on the previous
        // configuration and the one they are running will be pushed to all the servers."
        (
            eligible().max_by_key(|(g, first)| (g.count, g.latest, std::cmp::Reverse(*first))),
            Rule::Majority,
        )
    };
    let Some((chosen, first)) = chosen else {
        // Unreachable: there are at least two groups.
        return Decision::NoDecision {
            reason: "no version to choose".into(),
        };
    };
    // "if the current server has the most recent version or is part of the quorum […], then it
    // will be the one pushing the new configuration to the other servers. Otherwise, a
    // webservice call is made to one of the servers running the selected version so that it
    // pushes its configuration to its peers." — the first one in cluster.conf order.
    let (pusher, version) = alive[first];
    Decision::Push {
        version: version.clone(),
        pusher: pusher.to_string(),
        targets: alive
            .iter()
            .filter(|(_, v)| v.hash != chosen.hash)
            .map(|(n, _)| n.to_string())
            .collect(),
        rule,
    }
}

/// What the daemon does after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Healthy.
    Nothing,
    /// [`Decision::NoDecision`]: nothing is done (log the reason).
    NoDecision { reason: String },
    /// A conflict seen for the first time: wait for the next check (a push may be in flight).
    Wait { reason: String },
    /// The same conflict was seen on two consecutive checks: push.
    Push {
        version: ConfigVersion,
        pusher: String,
        targets: Vec<String>,
        rule: Rule,
    },
}

/// The "seen twice" rule: a conflict must be observed on two consecutive checks, with the same
/// set of (server, hash) pairs among the alive servers, before a push is ordered, so that a
/// push in flight is not mistaken for a conflict. A different conflict on the second check
/// restarts the count; a healthy check or a check without decision forgets the conflict. After
/// a `Push` the tracker forgets too, so a conflict that persists is pushed again at most every
/// other check.
#[derive(Debug, Clone, Default)]
pub struct ConflictTracker {
    previous: Option<Vec<(String, String)>>,
}

impl ConflictTracker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn observe(&mut self, obs: &Observation) -> Action {
        match decide(obs) {
            Decision::Healthy => {
                self.previous = None;
                Action::Nothing
            }
            Decision::NoDecision { reason } => {
                self.previous = None;
                Action::NoDecision { reason }
            }
            Decision::Push {
                version,
                pusher,
                targets,
                rule,
            } => {
                let key = conflict_key(obs);
                if self.previous.as_ref() == Some(&key) {
                    self.previous = None;
                    Action::Push {
                        version,
                        pusher,
                        targets,
                        rule,
                    }
                } else {
                    let reason = format!(
                        "configuration conflict ({}) seen for the first time; {} would push {} \
                         to {}; waiting for the next check to confirm",
                        key.iter()
                            .map(|(s, h)| format!("{s}={}", &h[..h.len().min(12)]))
                            .collect::<Vec<_>>()
                            .join(", "),
                        pusher,
                        version.short(),
                        targets.join(", ")
                    );
                    self.previous = Some(key);
                    Action::Wait { reason }
                }
            }
        }
    }
}

fn conflict_key(obs: &Observation) -> Vec<(String, String)> {
    let mut key: Vec<(String, String)> = obs
        .servers
        .iter()
        .filter(|s| s.alive)
        .filter_map(|s| s.version.as_ref().map(|v| (s.name.clone(), v.hash.clone())))
        .collect();
    key.sort();
    key
}

/// One member as the management-server choice sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementCandidate {
    pub name: String,
    /// Enabled (not disabled here, not in maintenance) and alive (it answered).
    pub available: bool,
    /// It reports holding the management VIP (keepalived MASTER of that instance).
    pub holds_management_vip: bool,
}

/// The management server is the holder of the management VIP: the available member that
/// reports holding it (the first in cluster.conf order, should two claim it during a
/// failover); when nobody reports it (no VIPs managed, keepalived down, older peers), the
/// first available member in cluster.conf order (the guide's glossary: "the first server of a
/// PacketFence cluster as defined in cluster.conf", which is also keepalived's preferred
/// holder: priorities decrease in cluster.conf order). `servers` is in cluster.conf order.
pub fn management_server(servers: &[ManagementCandidate]) -> Option<&str> {
    servers
        .iter()
        .find(|s| s.available && s.holds_management_vip)
        .or_else(|| servers.iter().find(|s| s.available))
        .map(|s| s.name.as_str())
}

#[cfg(test)]
mod tests;

//! Whether and how this server's Galera node starts: a pure function of what the supervisor
//! observed ([`StartInputs`]) to what it must do ([`StartDecision`]), with the reason.
//!
//! Rules, first match wins (each is a row of the tests):
//!
//! | # | when | decision | source |
//! |---|---|---|---|
//! | R1 | this server is in maintenance | `Refuse` | guide "Putting a node in maintenance"; `pf-mariadb` exits |
//! | R1b | `--force-new-cluster` while a peer's database is Primary, without `--i-know-this-splits-the-cluster` | `Refuse`, naming the Primary peers and their cluster sizes | issue 7 C: re-running the bootstrap command (a unit file that kept it, a restart) started a second cluster next to a healthy one; only the guide's split-brain procedure needs it, and says so explicitly |
//! | R2 | `grastate.dat` has `seqno: -1` (unclean stop) and no recovered position yet | `Recover`: run `mariadbd --wsrep-recover`, then decide again with `recovered` | lab §5: starting without `--wsrep_start_position` resets the cluster's state UUID (and turns an IST into an SST). A precondition of every start below, `--force-new-cluster` included (PacketFence's `bootstrap_new_cluster` recovers first too) |
//! | R3 | `--force-new-cluster` | `Bootstrap` (the caller sets `safe_to_bootstrap: 1` and removes `gvwstate.dat`) | guide "Create a new cluster", "Electing a new master"; with the override the reason warns that a peer's database is Primary (split brain) |
//! | R4b | a peer's database is Primary with another state UUID than this node's data | `Wait`, naming both histories and the ways out | joining would replace this node's data by SST without a word; the guide's procedure moves the datadir away first (an empty datadir has no history and joins) |
//! | R4 | a peer's database is Primary | `Join` it | `pf-mariadb` clean-shutdown path (a); only a *Primary* peer counts, never "its port answers" |
//! | R5 | this node has `safe_to_bootstrap: 1` and no answered peer reports another history | `Bootstrap` | guide "Graceful shutdown behavior": the last node to leave self-elects. Not against a peer of another history: a lone node of a split (it bootstrapped alone, so it keeps `safe_to_bootstrap: 1`) would otherwise start and the majority would join it and lose its data |
//! | R6 | `gvwstate.dat` present (hard shutdown) | `StartForPcRecovery` | guide "Ungraceful shutdown behavior"; lab §5: `pc.recovery` re-forms the cluster in ≈1 s once every member is back |
//! | R7 | empty datadir | `Wait` for a Primary peer (full copy by SST) | guide "MariaDB sync" |
//! | R8 | total outage, **every** configured member answered with its last committed seqno **and the same state UUID** | the highest seqno `Bootstrap`s (ties: cluster.conf order), the others `Join` it | beyond PacketFence: `galera-autofix` also picks the highest seqno, but from unauthenticated UDP reports and after ping checks; here the answers come over the authenticated node-to-node API |
//! | R8b | total outage, every member answered, but their state UUIDs differ (or one did not report its UUID) | `Wait`, naming every member's uuid and seqno and the `--force-new-cluster` command for the best member of the majority history | a seqno only orders commits *within one history*: a member with a foreign history (a datadir from another cluster, the other half of a split brain) and a higher seqno would otherwise win, and the others' data would be replaced by SST |
//! | R9 | otherwise (a member is missing or has not reported a position) | `Wait`, naming the missing members and the exact command that decides (only members of the majority history are suggested) | never automatic with a member missing: it may hold the newest commits, and bootstrapping without it is the split brain of "Recovering from a split brain" |
//!
//! A peer in maintenance takes no part in the database: the caller reports it as not answered.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::grastate::GraState;

/// The command that forces a bootstrap on one server (ironfence's `pf-mariadb
/// --force-new-cluster`).
pub const FORCE_COMMAND: &str = "ironfence db start --force-new-cluster";
/// The command that takes a server out of maintenance.
pub const MAINTENANCE_OFF_COMMAND: &str = "ironfence cluster maintenance --deactivate";
/// The override of rule R1b, for the guide's split-brain procedure only.
pub const SPLIT_OVERRIDE_FLAG: &str = "--i-know-this-splits-the-cluster";

/// What a peer told this server over the node-to-node API about its database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDbState {
    /// Its cluster.conf section name.
    pub name: String,
    /// It answered (authenticated). `false`: unreachable, not answering, or in maintenance.
    pub answered: bool,
    /// Its database is running and Primary (`wsrep_cluster_status=Primary`): it can be joined.
    pub primary: bool,
    /// Its last committed seqno (`wsrep_last_committed` when running, else `grastate.dat`'s
    /// seqno or the recovered position). `None` (or a negative value): it has no position to
    /// offer (empty datadir, or its unclean stop is not recovered yet).
    pub last_committed: Option<i64>,
    /// Its cluster.conf index (the tie-break: lower wins).
    pub index: usize,
    /// `wsrep_cluster_size` of its component (running only), for the operator.
    #[serde(default)]
    pub cluster_size: Option<u32>,
    /// The Galera state UUID of its data (the history its seqno counts in). `None`: no
    /// history, or a server too old to report it.
    #[serde(default)]
    pub state_uuid: Option<String>,
}

/// Everything the start decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInputs {
    /// This server is in maintenance (`cluster-local.json`).
    pub maintenance: bool,
    /// The operator ran `ironfence db start --force-new-cluster`.
    pub force_new_cluster: bool,
    /// … with `--i-know-this-splits-the-cluster`: bootstrap even though a peer is Primary.
    pub split_override: bool,
    /// `grastate.dat`; `None`: the datadir is empty (never initialised or wiped for an SST).
    pub local: Option<GraState>,
    /// `gvwstate.dat` exists (the node was hard-shutdown while in a primary view).
    pub gvwstate_present: bool,
    /// The seqno `mariadbd --wsrep-recover` found, when `grastate.dat` says `seqno: -1`.
    pub recovered: Option<i64>,
    /// Every other configured member, answered or not.
    pub peers: Vec<PeerDbState>,
    /// The number of configured members, this server included (cluster.conf).
    pub total_members: usize,
    /// This server's cluster.conf index.
    pub this_index: usize,
    /// This server's cluster.conf name (for the operator hint).
    pub this_name: String,
}

impl StartInputs {
    /// This node's last committed seqno, if it has one: `grastate.dat`'s seqno, or the
    /// recovered one after an unclean stop. `None` for an empty datadir or the zero UUID.
    pub fn local_position(&self) -> Option<i64> {
        let g = self.local.as_ref()?;
        if g.has_zero_uuid() {
            return None;
        }
        if g.seqno >= 0 {
            Some(g.seqno)
        } else {
            self.recovered.filter(|s| *s >= 0)
        }
    }

    /// The seqno to pass as `--wsrep_start_position=<uuid>:<seqno>` (with `grastate.dat`'s
    /// uuid): the recovered one after an unclean stop, `None` when grastate.dat already has it.
    pub fn start_position(&self) -> Option<i64> {
        match &self.local {
            Some(g) if g.needs_recovery() => self.recovered,
            _ => None,
        }
    }

    /// R2's condition: an unclean stop whose position has not been recovered yet.
    pub fn needs_recovery(&self) -> bool {
        self.local
            .as_ref()
            .is_some_and(|g| g.needs_recovery() && !g.has_zero_uuid())
            && self.recovered.is_none()
    }
}

/// What the supervisor must do. Every variant but `Recover` carries its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartDecision {
    /// Do not start the database.
    Refuse { reason: String },
    /// Start a new cluster from this node (`--wsrep-new-cluster`, after setting
    /// `safe_to_bootstrap: 1`), at `recovered_position` when grastate.dat has `seqno: -1`.
    Bootstrap {
        reason: String,
        recovered_position: Option<i64>,
    },
    /// Start normally; Galera joins the cluster through these members (IST, or SST for an
    /// empty datadir). Pass [`StartInputs::start_position`] when it is `Some`.
    Join { reason: String, via: Vec<String> },
    /// Run `mariadbd --wsrep-recover` first, then decide again with its position.
    Recover,
    /// Start normally and let Galera's primary-component recovery (`pc.recovery`) re-form the
    /// cluster when the members of the last primary view are back. Pass
    /// [`StartInputs::start_position`] when it is `Some`.
    StartForPcRecovery { reason: String },
    /// Do not start yet; decide again later. `operator_hint` is the exact way out.
    Wait {
        reason: String,
        operator_hint: String,
    },
}

impl StartDecision {
    /// The reason (for `Recover`, the rule).
    pub fn reason(&self) -> &str {
        match self {
            StartDecision::Refuse { reason }
            | StartDecision::Bootstrap { reason, .. }
            | StartDecision::Join { reason, .. }
            | StartDecision::StartForPcRecovery { reason }
            | StartDecision::Wait { reason, .. } => reason,
            StartDecision::Recover => RECOVER_REASON,
        }
    }
}

const RECOVER_REASON: &str = "grastate.dat has seqno: -1 (unclean stop): run `mariadbd --wsrep-recover` and start with --wsrep_start_position=<uuid>:<seqno>; starting without it resets the cluster's state UUID";

/// The start decision (rules R1–R9 of the module documentation).
pub fn decide_start(i: &StartInputs) -> StartDecision {
    // R1
    if i.maintenance {
        return StartDecision::Refuse {
            reason: format!(
                "this server is in maintenance: its database stays stopped so that it does not join the cluster; `{MAINTENANCE_OFF_COMMAND}` to start it"
            ),
        };
    }
    let primary_peers: Vec<&PeerDbState> = {
        let mut p: Vec<&PeerDbState> = i.peers.iter().filter(|p| p.answered && p.primary).collect();
        p.sort_by_key(|p| p.index);
        p
    };
    let primary: Vec<String> = primary_peers.iter().map(|p| p.name.clone()).collect();
    // R1b: before R2, so that a refused force does not even run a recovery.
    if i.force_new_cluster && !i.split_override && !primary_peers.is_empty() {
        let who = primary_peers
            .iter()
            .map(|p| match p.cluster_size {
                Some(n) => format!("{} (Primary, cluster size {n})", p.name),
                None => format!("{} (Primary, cluster size unknown)", p.name),
            })
            .collect::<Vec<_>>()
            .join(", ");
        return StartDecision::Refuse {
            reason: format!(
                "--force-new-cluster refused: the database of {who} is running: bootstrapping here would start a second cluster next to it (split brain: two histories that cannot be merged, the data of one is lost); to join it, start without --force-new-cluster (`ironfence db start`). Only for the split-brain procedure of docs/galera.md, where this server's data is the one to keep, add {SPLIT_OVERRIDE_FLAG}"
            ),
        };
    }
    // R2
    if i.needs_recovery() {
        return StartDecision::Recover;
    }
    // R3
    if i.force_new_cluster {
        let mut reason = match i.local_position() {
            Some(s) => format!("--force-new-cluster: the operator elected this server; a new cluster starts from its data (seqno {s})"),
            None if i.local.is_none() => "--force-new-cluster: the operator elected this server; its datadir is empty: a new, empty cluster starts (initialise the datadir first)".to_string(),
            None => "--force-new-cluster: the operator elected this server; a new cluster starts from its data (no committed position)".to_string(),
        };
        if !primary.is_empty() {
            reason.push_str(&format!(
                "; WARNING: the database of {} is Primary and {SPLIT_OVERRIDE_FLAG} was given: this starts a second cluster (split brain, see \"Recovering from a split brain\"): stop the other side and move its datadirs away so that they rejoin this one by SST",
                primary.join(", ")
            ));
        }
        return StartDecision::Bootstrap {
            reason,
            recovered_position: i.start_position(),
        };
    }
    let mine = history(i.local.as_ref().map(|g| g.uuid.as_str()));
    // Answered peers whose data belongs to another history than this node's.
    let foreign: Vec<&PeerDbState> = match &mine {
        Some(m) => {
            let mut v: Vec<&PeerDbState> = i
                .peers
                .iter()
                .filter(|p| p.answered)
                .filter(|p| history(p.state_uuid.as_deref()).is_some_and(|u| u != *m))
                .collect();
            v.sort_by_key(|p| p.index);
            v
        }
        None => Vec::new(),
    };
    // R4b
    let foreign_primary: Vec<&PeerDbState> = primary_peers
        .iter()
        .copied()
        .filter(|p| foreign.iter().any(|f| f.index == p.index))
        .collect();
    if !foreign_primary.is_empty() {
        let m = mine.as_deref().unwrap_or_default();
        let who = foreign_primary
            .iter()
            .map(|p| {
                format!(
                    "{} (state UUID {})",
                    p.name,
                    p.state_uuid.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return StartDecision::Wait {
            reason: format!(
                "the database of {who} is Primary with another history than this server's data (state UUID {m}, seqno {}): joining it would replace this server's data with a full copy (SST): no automatic join",
                i.local_position()
                    .map_or_else(|| "unknown".to_string(), |s| s.to_string())
            ),
            operator_hint: format!(
                "if the Primary side's data is the one to keep, stop `ironfence db start` here, move this server's datadir away and start it again: it rejoins with a full copy; if this server's data is the one to keep, stop the other side instead and follow \"Recovering from a split brain\" (docs/galera.md, `{FORCE_COMMAND}` here)"
            ),
        };
    }
    // R4
    if !primary.is_empty() {
        let how = if i.local.is_none() {
            "empty datadir: a full copy (SST) follows"
        } else {
            "missing writesets follow by IST (or a full SST if too far behind)"
        };
        return StartDecision::Join {
            reason: format!(
                "the database of {} is Primary: join it; {how}",
                primary.join(", ")
            ),
            via: primary,
        };
    }
    // R5, unless a peer's data contradicts this node's history (then R8b decides).
    if let Some(g) = &i.local
        && g.safe_to_bootstrap
        && foreign.is_empty()
    {
        return StartDecision::Bootstrap {
            reason: format!(
                "no peer's database is Primary and this node has safe_to_bootstrap: 1 (it was the last to leave the cluster cleanly, seqno {}): it starts the cluster",
                i.local_position()
                    .map_or_else(|| "unknown".to_string(), |s| s.to_string())
            ),
            recovered_position: i.start_position(),
        };
    }
    // R6
    if i.gvwstate_present && i.local.is_some() {
        return StartDecision::StartForPcRecovery {
            reason: "no peer's database is Primary and gvwstate.dat is present (hard shutdown): start and let Galera's primary-component recovery re-form the cluster once the members of the last primary view are back".to_string(),
        };
    }
    elect(i)
}

/// One member's view in the election (R7–R9).
struct Candidate<'a> {
    name: &'a str,
    index: usize,
    position: Option<i64>,
    /// The history its position counts in (lower case); `None`: not reported.
    uuid: Option<String>,
}

/// A reported state UUID, normalised: lower case; empty and the zero UUID are no history.
fn history(uuid: Option<&str>) -> Option<String> {
    uuid.map(|u| u.trim().to_ascii_lowercase())
        .filter(|u| !u.is_empty() && u != crate::grastate::ZERO_UUID)
}

/// The histories of the members that have a position, largest first (ties: the one whose
/// first member comes first in cluster.conf). `None`: the member did not report its UUID.
fn histories<'c, 'a>(
    answered: &'c [Candidate<'a>],
) -> Vec<(Option<&'c str>, Vec<&'c Candidate<'a>>)> {
    let mut out: Vec<(Option<&str>, Vec<&Candidate<'_>>)> = Vec::new();
    let mut with_position: Vec<&Candidate<'_>> =
        answered.iter().filter(|c| c.position.is_some()).collect();
    with_position.sort_by_key(|c| c.index);
    for c in with_position {
        let key = c.uuid.as_deref();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => out.push((key, vec![c])),
        }
    }
    out.sort_by(|(_, a), (_, b)| b.len().cmp(&a.len()).then(a[0].index.cmp(&b[0].index)));
    out
}

/// `pf1 uuid 5bfc…:70, pf3 uuid 1111…:90` (cluster.conf order).
fn describe_histories(h: &[(Option<&str>, Vec<&Candidate<'_>>)]) -> String {
    let mut all: Vec<&Candidate<'_>> = h.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    all.sort_by_key(|c| c.index);
    all.iter()
        .map(|c| match &c.uuid {
            Some(u) => format!("{} {u}:{}", c.name, c.position.unwrap_or(-1)),
            None => format!(
                "{} (uuid not reported: an older ironfence, upgrade it):{}",
                c.name,
                c.position.unwrap_or(-1)
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// R7–R9: a total outage where nobody may bootstrap on its own.
fn elect(i: &StartInputs) -> StartDecision {
    let mut answered: Vec<Candidate<'_>> = vec![Candidate {
        name: &i.this_name,
        index: i.this_index,
        position: i.local_position(),
        uuid: history(i.local.as_ref().map(|g| g.uuid.as_str())),
    }];
    answered.extend(i.peers.iter().filter(|p| p.answered).map(|p| Candidate {
        name: &p.name,
        index: p.index,
        position: p.last_committed.filter(|s| *s >= 0),
        uuid: history(p.state_uuid.as_deref()),
    }));
    let mut missing: Vec<&PeerDbState> = i.peers.iter().filter(|p| !p.answered).collect();
    missing.sort_by_key(|p| p.index);
    let unlisted = i.total_members.saturating_sub(1 + i.peers.len());
    let mut no_position: Vec<&Candidate<'_>> =
        answered.iter().filter(|c| c.position.is_none()).collect();
    no_position.sort_by_key(|c| c.index);
    // A seqno orders commits only within one history: with several, only the members of the
    // history a majority of the configured members holds are candidates.
    let histories = histories(&answered);
    let mismatch = histories.len() > 1;
    let majority: Option<&str> = histories
        .iter()
        .find(|(u, v)| u.is_some() && 2 * v.len() > i.total_members)
        .and_then(|(u, _)| *u);
    // Highest seqno; ties: cluster.conf order (lower index).
    let best = answered
        .iter()
        .filter(|c| !mismatch || (majority.is_some() && c.uuid.as_deref() == majority))
        .filter_map(|c| Some((c.position?, c)))
        .max_by(|(a, ca), (b, cb)| a.cmp(b).then(cb.index.cmp(&ca.index)));
    let seen = || {
        let mut v: Vec<&Candidate<'_>> = answered.iter().filter(|c| c.position.is_some()).collect();
        v.sort_by_key(|c| c.index);
        v.iter()
            .map(|c| format!("{} {}", c.name, c.position.unwrap_or(-1)))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let complete = missing.is_empty() && unlisted == 0 && no_position.is_empty();
    // R8b
    if complete && mismatch {
        let hint = match (majority, best) {
            (Some(uuid), Some((seqno, c))) => {
                let foreign: Vec<String> = histories
                    .iter()
                    .filter(|(u, _)| *u != Some(uuid))
                    .flat_map(|(_, v)| v.iter().map(|c| c.name.to_string()))
                    .collect();
                format!(
                    "the majority history {uuid} is held by {}; its highest seqno is {seqno} on {}: if that is the data to keep, run `{FORCE_COMMAND}` on {} (check first that {} hold nothing you need: they then rejoin with a full copy (SST) and lose what only they had)",
                    histories
                        .iter()
                        .find(|(u, _)| *u == Some(uuid))
                        .map(|(_, v)| v.iter().map(|c| c.name).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                    c.name,
                    c.name,
                    foreign.join(", ")
                )
            }
            _ => format!(
                "no history is held by a majority of the {} members: decide by hand which server's data to keep (`ironfence db status --all` shows every member's uuid and seqno) and run `{FORCE_COMMAND}` on that server; the others rejoin it with a full copy (SST)",
                i.total_members
            ),
        };
        return StartDecision::Wait {
            reason: format!(
                "total outage: every member answered, but their databases hold different histories (Galera state UUID:seqno: {}): no automatic bootstrap (a seqno orders commits only within one history, and the member that bootstraps replaces the others' data by SST)",
                describe_histories(&histories)
            ),
            operator_hint: hint,
        };
    }
    if complete && let Some((seqno, winner)) = best {
        let why = format!(
            "total outage: every member ({}) answered with its last committed seqno ({}); the highest ({seqno}, ties to cluster.conf order) is {}",
            i.total_members,
            seen(),
            winner.name
        );
        return if winner.index == i.this_index {
            StartDecision::Bootstrap {
                reason: format!("{why}: this server starts the cluster"),
                recovered_position: i.start_position(),
            }
        } else {
            StartDecision::Join {
                reason: format!("{why}: it starts the cluster, this server joins it"),
                via: vec![winner.name.to_string()],
            }
        };
    }

    // R7 / R9: wait, and say exactly what is missing and what decides.
    let mut waiting: Vec<String> = missing
        .iter()
        .map(|p| format!("{} (no answer)", p.name))
        .collect();
    if unlisted > 0 {
        waiting.push(format!(
            "{unlisted} configured member(s) this server has no state for"
        ));
    }
    waiting.extend(
        no_position
            .iter()
            .filter(|c| c.index != i.this_index || i.local.is_some())
            .map(|c| {
                if c.index == i.this_index {
                    format!("{} (this server: no committed position)", c.name)
                } else {
                    format!(
                        "{} (answered without a position: empty datadir, or its unclean stop is not recovered yet)",
                        c.name
                    )
                }
            }),
    );
    let decide = match best {
        Some((seqno, c)) if mismatch => format!(
            "the members seen hold different histories ({}); the highest last committed seqno of the majority history is {seqno} on {}: if the members above are really gone, run `{FORCE_COMMAND}` on {} (the others then join it; commits only the missing members or another history had are lost)",
            describe_histories(&histories),
            c.name,
            c.name
        ),
        Some((seqno, c)) => format!(
            "the highest last committed seqno seen is {seqno} on {}: if the members above are really gone, run `{FORCE_COMMAND}` on {} (the others then join it; commits only the missing members had are lost)",
            c.name, c.name
        ),
        None if mismatch => format!(
            "the members seen hold different histories ({}) and none is held by a majority: decide by hand which server's data to keep and run `{FORCE_COMMAND}` on it",
            describe_histories(&histories)
        ),
        None => format!(
            "no member reported a position: run `{FORCE_COMMAND}` on the server with the most recent data (compare the seqno in <state_dir>/mysql/data/grastate.dat, or the `WSREP: Recovered position` of `mariadbd --wsrep-recover`, on each server)"
        ),
    };
    let (reason, hint) = if i.local.is_none() {
        (
            "this server's datadir is empty: it can only join a Primary database (full copy by SST), and no peer's database is Primary".to_string(),
            if waiting.is_empty() {
                format!("start the database of a server that holds the data; {decide}")
            } else {
                format!(
                    "waiting for: {}; start the database of a server that holds the data; {decide}",
                    waiting.join(", ")
                )
            },
        )
    } else {
        let me = match i.local_position() {
            Some(s) => format!("this server's last committed seqno is {s}"),
            None => "this server has no committed position".to_string(),
        };
        (
            format!(
                "no peer's database is Primary, this node may not bootstrap on its own (safe_to_bootstrap: 0, no gvwstate.dat) and not every member has answered with its position ({me}): no automatic bootstrap"
            ),
            format!("waiting for: {}; {decide}", waiting.join(", ")),
        )
    };
    StartDecision::Wait {
        reason,
        operator_hint: hint,
    }
}

/// One line with every input, for the log next to the decision.
impl fmt::Display for StartInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this={}#{} members={} maintenance={} force_new_cluster={} split_override={} local=",
            self.this_name,
            self.this_index,
            self.total_members,
            self.maintenance,
            self.force_new_cluster,
            self.split_override
        )?;
        match &self.local {
            Some(g) => write!(
                f,
                "{}:{} safe_to_bootstrap={}",
                g.uuid,
                g.seqno,
                u8::from(g.safe_to_bootstrap)
            )?,
            None => f.write_str("empty-datadir")?,
        }
        write!(f, " gvwstate={}", self.gvwstate_present)?;
        match self.recovered {
            Some(s) => write!(f, " recovered={s}")?,
            None => f.write_str(" recovered=none")?,
        }
        f.write_str(" peers=[")?;
        for (n, p) in self.peers.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}#{}:", p.name, p.index)?;
            if !p.answered {
                f.write_str("no-answer")?;
                continue;
            }
            f.write_str(if p.primary { "primary" } else { "not-primary" })?;
            match p.last_committed {
                Some(s) => write!(f, ",seqno={s}")?,
                None => f.write_str(",seqno=none")?,
            }
            if let Some(n) = p.cluster_size {
                write!(f, ",size={n}")?;
            }
            match &p.state_uuid {
                Some(u) => write!(f, ",uuid={u}")?,
                None => f.write_str(",uuid=none")?,
            }
        }
        f.write_str("]")
    }
}

impl fmt::Display for StartDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartDecision::Refuse { reason } => write!(f, "refuse: {reason}"),
            StartDecision::Bootstrap {
                reason,
                recovered_position,
            } => {
                write!(f, "bootstrap a new cluster: {reason}")?;
                match recovered_position {
                    Some(s) => write!(f, " (start position {s})"),
                    None => Ok(()),
                }
            }
            StartDecision::Join { reason, via } => {
                write!(f, "join via {}: {reason}", via.join(", "))
            }
            StartDecision::Recover => write!(f, "recover first: {RECOVER_REASON}"),
            StartDecision::StartForPcRecovery { reason } => {
                write!(f, "start for primary-component recovery: {reason}")
            }
            StartDecision::Wait {
                reason,
                operator_hint,
            } => write!(f, "wait: {reason}; operator: {operator_hint}"),
        }
    }
}

#[cfg(test)]
mod tests;

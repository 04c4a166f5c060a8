//! Split-brain detection for `ironfence db status --all`: from every member's report, the
//! signs that the members no longer form one cluster, as error lines an operator cannot miss.
//!
//! Two signs, each a rule of the tests:
//! - **different state UUIDs**: members' data belong to different histories (a datadir from
//!   another cluster, or one re-initialised). A seqno means nothing across histories; the
//!   automatic election refuses to choose (`bootstrap` rule R8b) and the operator must.
//! - **two Primary components**: two running members are both Primary but not in the same
//!   component — their `wsrep_incoming_addresses` share no address, or (when a member does not
//!   report its addresses) fewer members are Primary in its component than report Primary.
//!   Both accept writes: what was reproduced after re-running `--force-new-cluster` while the
//!   others were Primary (issue 7 C). A bootstrap from the same data keeps the state UUID, so
//!   the first sign alone does not see it.
//!
//! Members that did not answer are not judged (they are listed as not answering anyway).

use std::collections::BTreeSet;

/// One member's report, as `db status --all` received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberReport {
    pub name: String,
    /// Its mariadbd answers.
    pub running: bool,
    /// `wsrep_cluster_status = Primary`.
    pub primary: bool,
    /// `wsrep_cluster_size` (running only).
    pub cluster_size: Option<u32>,
    /// `wsrep_incoming_addresses` of its component (running only).
    pub incoming_addresses: Vec<String>,
    /// The Galera state UUID of its data; `None`: no history or not reported.
    pub state_uuid: Option<String>,
    /// Its last committed seqno, for the message.
    pub last_committed: Option<i64>,
}

/// The error lines (empty: no sign of a split). Each names the members and what they report.
pub fn check(members: &[MemberReport]) -> Vec<String> {
    let mut errors = Vec::new();

    // Different histories.
    let mut uuids: Vec<(String, Vec<&MemberReport>)> = Vec::new();
    for m in members {
        let Some(u) = m
            .state_uuid
            .as_deref()
            .map(|u| u.trim().to_ascii_lowercase())
            .filter(|u| !u.is_empty() && u != crate::grastate::ZERO_UUID)
        else {
            continue;
        };
        match uuids.iter_mut().find(|(k, _)| *k == u) {
            Some((_, v)) => v.push(m),
            None => uuids.push((u, vec![m])),
        }
    }
    if uuids.len() > 1 {
        let list = uuids
            .iter()
            .map(|(u, v)| {
                format!(
                    "{u} on {}",
                    v.iter()
                        .map(|m| match m.last_committed {
                            Some(s) => format!("{} (seqno {s})", m.name),
                            None => m.name.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        errors.push(format!(
            "members report different Galera state UUIDs (different histories): {list}. Their data cannot be merged; `ironfence db start` will not bootstrap automatically between them. Decide which data to keep and follow \"Recovering from a split brain\" in docs/galera.md"
        ));
    }

    // Two Primary components.
    let primaries: Vec<&MemberReport> = members.iter().filter(|m| m.running && m.primary).collect();
    let mut components: Vec<(BTreeSet<&str>, Vec<&MemberReport>)> = Vec::new();
    let mut unplaced: Vec<&MemberReport> = Vec::new();
    for m in &primaries {
        let addrs: BTreeSet<&str> = m
            .incoming_addresses
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty() && *a != "AUTO")
            .collect();
        if addrs.is_empty() {
            unplaced.push(m);
            continue;
        }
        // Merge every component this member's view overlaps (a view in transition overlaps).
        let mut merged = (addrs, vec![*m]);
        let mut rest = Vec::new();
        for c in components.drain(..) {
            if c.0.is_disjoint(&merged.0) {
                rest.push(c);
            } else {
                merged.0.extend(c.0);
                merged.1.extend(c.1);
            }
        }
        rest.push(merged);
        components = rest;
    }
    let describe = |v: &[&MemberReport]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.iter()
            .map(|m| match m.cluster_size {
                Some(n) => format!("{} (cluster size {n})", m.name),
                None => m.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let split = if components.len() > 1 {
        let first = |v: &[&MemberReport]| v.iter().map(|m| m.name.clone()).min();
        components.sort_by_key(|(_, v)| first(v));
        Some(
            components
                .iter()
                .map(|(_, v)| format!("[{}]", describe(v)))
                .collect::<Vec<_>>()
                .join(" and "),
        )
    } else if !unplaced.is_empty()
        && primaries.iter().any(|m| {
            m.cluster_size
                .is_some_and(|n| (n as usize) < primaries.len())
        })
    {
        // Without addresses (MariaDB reports `AUTO` when it cannot tell), group by size.
        let mut by_size: Vec<(Option<u32>, Vec<&MemberReport>)> = Vec::new();
        for m in &primaries {
            match by_size.iter_mut().find(|(n, _)| *n == m.cluster_size) {
                Some((_, v)) => v.push(m),
                None => by_size.push((m.cluster_size, vec![*m])),
            }
        }
        by_size.sort_by_key(|(n, _)| *n);
        Some(format!(
            "{} (a component of {} cannot hold the {} members that report Primary)",
            by_size
                .iter()
                .map(|(_, v)| format!("[{}]", describe(v)))
                .collect::<Vec<_>>()
                .join(" and "),
            primaries
                .iter()
                .filter_map(|m| m.cluster_size)
                .min()
                .unwrap_or(0),
            primaries.len()
        ))
    } else {
        None
    };
    if let Some(split) = split {
        errors.push(format!(
            "two Primary components (split brain): {split} each accept writes that the other never sees. Keep one side: stop `ironfence db start` on the servers of the other, move their datadirs away and start them again so that they rejoin by SST (\"Recovering from a split brain\" in docs/galera.md)"
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b";
    const B: &str = "11111111-2222-3333-4444-555555555555";

    fn up(name: &str, size: u32, addrs: &[&str], uuid: &str) -> MemberReport {
        MemberReport {
            name: name.into(),
            running: true,
            primary: true,
            cluster_size: Some(size),
            incoming_addresses: addrs.iter().map(|a| a.to_string()).collect(),
            state_uuid: Some(uuid.into()),
            last_committed: Some(10),
        }
    }

    fn stopped(name: &str, uuid: Option<&str>, seqno: i64) -> MemberReport {
        MemberReport {
            name: name.into(),
            state_uuid: uuid.map(str::to_string),
            last_committed: Some(seqno),
            ..MemberReport::default()
        }
    }

    const ALL: &[&str] = &["10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306"];

    #[test]
    fn rows() {
        type Row = (&'static str, Vec<MemberReport>, &'static [&'static str]);
        let rows: Vec<Row> = vec![
            (
                "healthy 3-node cluster",
                vec![
                    up("pf1", 3, ALL, A),
                    up("pf2", 3, ALL, A),
                    up("pf3", 3, ALL, A),
                ],
                &[],
            ),
            (
                "UUID case and a member without history are not a mismatch",
                vec![
                    up("pf1", 2, &ALL[..2], A),
                    up("pf2", 2, &ALL[..2], &A.to_ascii_uppercase()),
                    stopped("pf3", None, -1),
                ],
                &[],
            ),
            (
                "a member in a view change (overlapping views) is no split",
                vec![
                    up("pf1", 2, &ALL[..2], A),
                    up("pf2", 3, ALL, A),
                    up("pf3", 3, ALL, A),
                ],
                &[],
            ),
            (
                "a partitioned node is non-Primary: no split",
                vec![
                    up("pf1", 2, &ALL[..2], A),
                    up("pf2", 2, &ALL[..2], A),
                    MemberReport {
                        primary: false,
                        cluster_size: Some(1),
                        incoming_addresses: vec![ALL[2].into()],
                        ..up("pf3", 1, &[], A)
                    },
                ],
                &[],
            ),
            (
                "re-run --force-new-cluster: a Primary of 1 next to a Primary of 2, same UUID",
                vec![
                    up("pf1", 1, &ALL[..1], A),
                    up("pf2", 2, &ALL[1..], A),
                    up("pf3", 2, &ALL[1..], A),
                ],
                &[
                    "two Primary components",
                    "[pf1 (cluster size 1)] and [pf2 (cluster size 2), pf3 (cluster size 2)]",
                    "Recovering from a split brain",
                ],
            ),
            (
                "no addresses reported (MariaDB says AUTO): the size rule",
                vec![
                    up("pf1", 1, &["AUTO"], A),
                    up("pf2", 2, &["AUTO", "AUTO"], A),
                    up("pf3", 2, &[], A),
                ],
                &[
                    "two Primary components",
                    "[pf1 (cluster size 1)] and [pf2 (cluster size 2), pf3 (cluster size 2)]",
                    "a component of 1 cannot hold the 3 members that report Primary",
                ],
            ),
            (
                "no addresses, one component of 3: no split",
                vec![
                    up("pf1", 3, &["AUTO"], A),
                    up("pf2", 3, &[], A),
                    up("pf3", 3, &[], A),
                ],
                &[],
            ),
            (
                "a foreign history on a stopped member",
                vec![
                    up("pf1", 2, &ALL[..2], A),
                    up("pf2", 2, &ALL[..2], A),
                    stopped("pf3", Some(B), 90),
                ],
                &[
                    "different Galera state UUIDs",
                    "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b on pf1 (seqno 10), pf2 (seqno 10)",
                    "11111111-2222-3333-4444-555555555555 on pf3 (seqno 90)",
                ],
            ),
        ];
        for (what, members, want) in rows {
            let got = check(&members);
            if want.is_empty() {
                assert!(got.is_empty(), "{what}: {got:?}");
            }
            let all = got.join("\n");
            for w in want {
                assert!(all.contains(w), "{what}: {w:?} not in {all:?}");
            }
        }
    }

    #[test]
    fn both_signs_at_once() {
        let got = check(&[
            up("pf1", 1, &ALL[..1], B),
            up("pf2", 2, &ALL[1..], A),
            up("pf3", 2, &ALL[1..], A),
        ]);
        assert_eq!(got.len(), 2, "{got:?}");
    }
}

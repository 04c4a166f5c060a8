use super::*;
use proptest::prelude::*;

fn v(hash: &str, at: i64) -> ConfigVersion {
    ConfigVersion {
        hash: hash.to_string(),
        changed_at: at,
        changed_by: format!("by-{hash}"),
    }
}

/// A server whose API answered with version (`hash`, `changed_at`).
fn up(name: &str, hash: &str, at: i64) -> ServerObservation {
    ServerObservation {
        name: name.to_string(),
        alive: true,
        version: Some(v(hash, at)),
    }
}

fn down(name: &str) -> ServerObservation {
    ServerObservation {
        name: name.to_string(),
        alive: false,
        version: None,
    }
}

/// Checks made long after every time used in these tests.
const NOW: i64 = 2_000_000_000;

fn obs(servers: Vec<ServerObservation>) -> Observation {
    Observation { servers, now: NOW }
}

fn push(hash: &str, at: i64, pusher: &str, targets: &[&str], rule: Rule) -> Decision {
    Decision::Push {
        version: v(hash, at),
        pusher: pusher.to_string(),
        targets: targets.iter().map(|s| s.to_string()).collect(),
        rule,
    }
}

fn no_decision() -> Decision {
    Decision::NoDecision {
        reason: String::new(),
    }
}

/// Compares decisions, ignoring the wording of NoDecision reasons.
fn same(a: &Decision, b: &Decision) -> bool {
    match (a, b) {
        (Decision::NoDecision { .. }, Decision::NoDecision { .. }) => true,
        _ => a == b,
    }
}

/// One row per sentence of the clustering guide ("Configuration conflict handling" and "Going
/// deeper in the conflict handling"); the row name quotes the sentence.
#[test]
fn guide_sentences() {
    use Rule::*;
    let rows: Vec<(&str, Observation, Decision)> = vec![
        (
            "When modifying the configuration through the administration interface, the \
             configuration will be automatically synchronized to all the nodes that are online. \
             (all online servers got it: healthy)",
            obs(vec![
                up("pf1", "new", 200),
                up("pf2", "new", 200),
                up("pf3", "new", 200),
            ]),
            Decision::Healthy,
        ),
        (
            "When the failed node(s) will come back online, that scheduled check will ensure that \
             the new configuration is pushed on the new node(s).",
            obs(vec![
                up("pf1", "new", 200),
                up("pf2", "new", 200),
                up("pf3", "old", 100),
            ]),
            push("new", 200, "pf1", &["pf3"], Majority),
        ),
        (
            "If the configuration is not pushed to at least half of the servers of your cluster, \
             when the failed nodes will come back online, they will have quorum on the previous \
             configuration and the one they are running will be pushed to all the servers.",
            obs(vec![
                up("pf1", "new", 200),
                up("pf2", "old", 100),
                up("pf3", "old", 100),
            ]),
            push("old", 100, "pf2", &["pf1"], Majority),
        ),
        (
            "In a two node cluster, the most recent configuration is always selected when \
             resolving a conflict.",
            obs(vec![up("pf1", "old", 100), up("pf2", "new", 200)]),
            push("new", 200, "pf2", &["pf1"], TwoServersMostRecent),
        ),
        (
            "In a two node cluster, no decision is taken unless the peer server has its \
             webservices available.",
            obs(vec![up("pf1", "new", 200), down("pf2")]),
            no_decision(),
        ),
        (
            "The first step is to get the configuration version from each server through a \
             webservice call. (a server that answers without a version counts as dead)",
            obs(vec![
                up("pf1", "new", 200),
                ServerObservation {
                    name: "pf2".into(),
                    alive: true,
                    version: None,
                },
            ]),
            no_decision(),
        ),
        (
            "Should all alive servers run the same version, the state is considered as healthy \
             and nothing happens.",
            obs(vec![up("pf1", "a", 100), down("pf2"), up("pf3", "a", 100)]),
            Decision::Healthy,
        ),
        (
            "Then, should there be more than one version identifier across the alive servers, \
             the algorithm validates that there are at least 2 servers configured in the \
             cluster. If there aren't, then the most recent version is pushed on the peer node.",
            obs(vec![up("pf1", "new", 200), up("pf2", "old", 100)]),
            push("new", 200, "pf1", &["pf2"], TwoServersMostRecent),
        ),
        (
            "In the event that the dead servers are in higher number than the alive ones, the \
             most recent version is taken.",
            obs(vec![
                up("pf1", "old", 100),
                up("pf2", "new", 200),
                down("pf3"),
                down("pf4"),
                down("pf5"),
            ]),
            push("new", 200, "pf2", &["pf1"], MostRecentDeadOutnumberAlive),
        ),
        (
            "Otherwise, the version that is present on the most servers will be selected. \
             (dead == alive is not 'higher number')",
            obs(vec![
                up("pf1", "new", 200),
                up("pf2", "old", 100),
                up("pf3", "old", 100),
                down("pf4"),
                down("pf5"),
                down("pf6"),
            ]),
            push("old", 100, "pf2", &["pf1"], Majority),
        ),
        (
            "if the current server has the most recent version or is part of the quorum \
             (depending on which push strategy was defined above), then it will be the one \
             pushing the new configuration to the other servers.",
            obs(vec![
                up("pf1", "old", 100),
                up("pf2", "old", 100),
                up("pf3", "new", 200),
            ]),
            push("old", 100, "pf1", &["pf3"], Majority),
        ),
        (
            "Otherwise, a webservice call is made to one of the servers running the selected \
             version so that it pushes its configuration to its peers. (the first one in \
             cluster.conf order)",
            obs(vec![
                up("pf1", "new", 200),
                up("pf2", "old", 100),
                up("pf3", "old", 100),
                up("pf4", "old", 100),
            ]),
            push("old", 100, "pf2", &["pf1"], Majority),
        ),
    ];
    for (sentence, o, want) in rows {
        let got = decide(&o);
        assert!(
            same(&got, &want),
            "{sentence}\n got: {got:?}\nwant: {want:?}"
        );
    }
}

#[test]
fn tie_rules() {
    use Rule::*;
    let rows: Vec<(&str, Observation, Decision)> = vec![
        (
            "most recent, equal changed_at: the version of the first server in cluster.conf",
            obs(vec![up("pf1", "a", 100), up("pf2", "b", 100)]),
            push("a", 100, "pf1", &["pf2"], TwoServersMostRecent),
        ),
        (
            "most recent, equal changed_at, order decides not the hash",
            obs(vec![up("pf1", "z", 100), up("pf2", "a", 100)]),
            push("z", 100, "pf1", &["pf2"], TwoServersMostRecent),
        ),
        (
            "most servers, equal counts: the most recent",
            obs(vec![
                up("pf1", "old", 100),
                up("pf2", "new", 200),
                up("pf3", "old", 100),
                up("pf4", "new", 200),
            ]),
            push("new", 200, "pf2", &["pf1", "pf3"], Majority),
        ),
        (
            "most servers, equal counts and equal changed_at: cluster.conf order",
            obs(vec![
                up("pf1", "b", 100),
                up("pf2", "a", 100),
                up("pf3", "a", 100),
                up("pf4", "b", 100),
            ]),
            push("b", 100, "pf1", &["pf2", "pf3"], Majority),
        ),
        (
            "three versions on a three-server cluster: all counts 1, most recent wins",
            obs(vec![
                up("pf1", "a", 100),
                up("pf2", "c", 300),
                up("pf3", "b", 200),
            ]),
            push("c", 300, "pf2", &["pf1", "pf3"], Majority),
        ),
        (
            "same hash with different metadata is the same configuration; the group's latest \
             changed_at counts, the pusher's version is pushed",
            obs(vec![
                up("pf1", "a", 100),
                ServerObservation {
                    name: "pf2".into(),
                    alive: true,
                    version: Some(ConfigVersion {
                        hash: "a".into(),
                        changed_at: 300,
                        changed_by: "pf2".into(),
                    }),
                },
                up("pf3", "b", 200),
                down("pf4"),
                down("pf5"),
                down("pf6"),
                down("pf7"),
            ]),
            push("a", 100, "pf1", &["pf3"], MostRecentDeadOutnumberAlive),
        ),
    ];
    for (name, o, want) in rows {
        let got = decide(&o);
        assert!(same(&got, &want), "{name}\n got: {got:?}\nwant: {want:?}");
    }
}

#[test]
fn two_server_rules() {
    // Peer dead: no decision, even though only one version is visible.
    for o in [
        obs(vec![up("pf1", "a", 100), down("pf2")]),
        obs(vec![down("pf1"), up("pf2", "a", 100)]),
    ] {
        assert!(matches!(decide(&o), Decision::NoDecision { .. }), "{o:?}");
    }
    let Decision::NoDecision { reason } = decide(&obs(vec![up("pf1", "a", 1), down("pf2")])) else {
        unreachable!()
    };
    assert!(reason.contains("pf2"), "{reason}");
    // Peer alive: the most recent wins, whichever side it is on.
    assert_eq!(
        decide(&obs(vec![up("pf1", "a", 100), up("pf2", "b", 101)])),
        push("b", 101, "pf2", &["pf1"], Rule::TwoServersMostRecent)
    );
    assert_eq!(
        decide(&obs(vec![up("pf1", "a", 102), up("pf2", "b", 101)])),
        push("a", 102, "pf1", &["pf2"], Rule::TwoServersMostRecent)
    );
    // Same version: healthy.
    assert_eq!(
        decide(&obs(vec![up("pf1", "a", 1), up("pf2", "a", 1)])),
        Decision::Healthy
    );
    // A 3-server cluster where this server disabled pf3 is a two-server cluster.
    assert!(matches!(
        decide(&obs(vec![up("pf1", "a", 1), down("pf2")])),
        Decision::NoDecision { .. }
    ));
}

#[test]
fn single_server_and_nobody() {
    assert_eq!(decide(&obs(vec![up("pf1", "a", 1)])), Decision::Healthy);
    assert!(matches!(
        decide(&obs(vec![down("pf1"), down("pf2"), down("pf3")])),
        Decision::NoDecision { .. }
    ));
    assert!(matches!(
        decide(&Observation::default()),
        Decision::NoDecision { .. }
    ));
}

/// The guide: "If the configuration is not pushed to at least half of the servers of your
/// cluster, when the failed nodes will come back online, they will have quorum on the previous
/// configuration and the one they are running will be pushed to all the servers."
#[test]
fn survivor_change_is_overwritten_by_the_returning_quorum() {
    let mut t = ConflictTracker::new();
    // All three on v1.
    let healthy = obs(vec![
        up("pf1", "v1", 100),
        up("pf2", "v1", 100),
        up("pf3", "v1", 100),
    ]);
    assert_eq!(t.observe(&healthy), Action::Nothing);
    // pf2 and pf3 go down; the admin changes the configuration on the survivor pf1.
    let alone = obs(vec![up("pf1", "v2", 500), down("pf2"), down("pf3")]);
    assert_eq!(decide(&alone), Decision::Healthy);
    assert_eq!(t.observe(&alone), Action::Nothing);
    assert_eq!(t.observe(&alone), Action::Nothing);
    // Both come back with the previous configuration: they have quorum.
    let back = obs(vec![
        up("pf1", "v2", 500),
        up("pf2", "v1", 100),
        up("pf3", "v1", 100),
    ]);
    assert!(matches!(t.observe(&back), Action::Wait { .. }));
    assert_eq!(
        t.observe(&back),
        Action::Push {
            version: v("v1", 100),
            pusher: "pf2".into(),
            targets: vec!["pf1".into()],
            rule: Rule::Majority,
        }
    );
}

/// Documented consequence of the tie rule: if only one of the two returns first, the counts are
/// equal (1-1) and the most recent (the survivor's change) wins; the third server then follows
/// the majority.
#[test]
fn survivor_change_wins_if_the_others_return_one_by_one() {
    let one_back = obs(vec![
        up("pf1", "v2", 500),
        up("pf2", "v1", 100),
        down("pf3"),
    ]);
    assert_eq!(
        decide(&one_back),
        push("v2", 500, "pf1", &["pf2"], Rule::Majority)
    );
    let third_back = obs(vec![
        up("pf1", "v2", 500),
        up("pf2", "v2", 500),
        up("pf3", "v1", 100),
    ]);
    assert_eq!(
        decide(&third_back),
        push("v2", 500, "pf1", &["pf3"], Rule::Majority)
    );
}

#[test]
fn dead_outnumber_alive_most_recent_even_against_the_larger_group() {
    let o = obs(vec![
        up("pf1", "old", 100),
        up("pf2", "old", 100),
        up("pf3", "new", 200),
        down("pf4"),
        down("pf5"),
        down("pf6"),
        down("pf7"),
    ]);
    assert_eq!(
        decide(&o),
        push(
            "new",
            200,
            "pf3",
            &["pf1", "pf2"],
            Rule::MostRecentDeadOutnumberAlive
        )
    );
}

#[test]
fn conflict_must_be_seen_on_two_consecutive_checks() {
    let mut t = ConflictTracker::new();
    let c1 = obs(vec![
        up("pf1", "new", 200),
        up("pf2", "new", 200),
        up("pf3", "old", 100),
    ]);
    let c2 = obs(vec![
        up("pf1", "new", 200),
        up("pf2", "other", 300),
        up("pf3", "old", 100),
    ]);
    let healthy = obs(vec![
        up("pf1", "new", 200),
        up("pf2", "new", 200),
        up("pf3", "new", 200),
    ]);
    let push_c1 = Action::Push {
        version: v("new", 200),
        pusher: "pf1".into(),
        targets: vec!["pf3".into()],
        rule: Rule::Majority,
    };

    // First sighting: wait (a push may be in flight).
    assert!(matches!(t.observe(&c1), Action::Wait { .. }));
    // The in-flight push landed: healthy, and the conflict is forgotten.
    assert_eq!(t.observe(&healthy), Action::Nothing);
    assert!(matches!(t.observe(&c1), Action::Wait { .. }));
    // A different conflict on the second check restarts the count.
    assert!(matches!(t.observe(&c2), Action::Wait { .. }));
    assert!(matches!(t.observe(&c1), Action::Wait { .. }));
    // Same conflict twice in a row: push.
    assert_eq!(t.observe(&c1), push_c1);
    // After a push the count restarts (the push may still be in flight).
    assert!(matches!(t.observe(&c1), Action::Wait { .. }));
    assert_eq!(t.observe(&c1), push_c1);
    // A check without decision in between breaks the sequence.
    assert!(matches!(t.observe(&c1), Action::Wait { .. }));
    let nobody = obs(vec![down("pf1"), down("pf2"), down("pf3")]);
    assert!(matches!(t.observe(&nobody), Action::NoDecision { .. }));
    assert!(matches!(t.observe(&c1), Action::Wait { .. }));
    // Same (server, hash) set with a server gone dead is a different conflict.
    let c1_with_dead = obs(vec![
        up("pf1", "new", 200),
        up("pf2", "new", 200),
        up("pf3", "old", 100),
        down("pf4"),
    ]);
    let mut t2 = ConflictTracker::new();
    assert!(matches!(t2.observe(&c1_with_dead), Action::Wait { .. }));
    assert!(matches!(t2.observe(&c1_with_dead), Action::Push { .. }));
    // Server order in the observation does not change the key.
    let mut t3 = ConflictTracker::new();
    let reordered = obs(vec![
        up("pf3", "old", 100),
        up("pf1", "new", 200),
        up("pf2", "new", 200),
    ]);
    assert!(matches!(t3.observe(&c1), Action::Wait { .. }));
    assert!(matches!(t3.observe(&reordered), Action::Push { .. }));
}

#[test]
fn management_server_is_first_enabled_and_alive() {
    let s = |v: &[(&str, bool)]| -> Vec<ManagementCandidate> {
        v.iter()
            .map(|(n, b)| ManagementCandidate {
                name: n.to_string(),
                available: *b,
                holds_management_vip: false,
            })
            .collect()
    };
    assert_eq!(
        management_server(&s(&[("pf1", true), ("pf2", true)])),
        Some("pf1")
    );
    assert_eq!(
        management_server(&s(&[("pf1", false), ("pf2", true), ("pf3", true)])),
        Some("pf2")
    );
    assert_eq!(management_server(&s(&[("pf1", false)])), None);
    assert_eq!(management_server(&[]), None);
}

/// Issue 9: the management server is the member that holds the management VIP.
#[test]
fn management_server_is_the_management_vip_holder() {
    let c = |name: &str, available: bool, holds: bool| ManagementCandidate {
        name: name.into(),
        available,
        holds_management_vip: holds,
    };
    // pf1 failed over to pf2 (pf1 is back but not ready yet, so pf2 still holds the VIP).
    assert_eq!(
        management_server(&[
            c("pf1", true, false),
            c("pf2", true, true),
            c("pf3", true, false)
        ]),
        Some("pf2")
    );
    // A holder this server cannot reach (or in maintenance) is not chosen.
    assert_eq!(
        management_server(&[
            c("pf1", true, false),
            c("pf2", false, true),
            c("pf3", true, false)
        ]),
        Some("pf1")
    );
    // Two claims during a failover: cluster.conf order decides, as keepalived will.
    assert_eq!(
        management_server(&[
            c("pf1", true, false),
            c("pf2", true, true),
            c("pf3", true, true)
        ]),
        Some("pf2")
    );
    // Nobody reports it: the first available.
    assert_eq!(
        management_server(&[
            c("pf1", false, false),
            c("pf2", true, false),
            c("pf3", true, false)
        ]),
        Some("pf2")
    );
}

#[test]
fn a_version_from_the_future_never_wins_and_is_reported() {
    // Two servers: pf2 claims a change an hour ahead of the checking server's clock. Without
    // the rule it would win "most recent" (and keep winning for an hour after every change).
    let o = obs(vec![up("pf1", "aa", NOW - 10), up("pf2", "bb", NOW + 3600)]);
    assert_eq!(
        decide(&o),
        push("aa", NOW - 10, "pf1", &["pf2"], Rule::TwoServersMostRecent)
    );
    assert_eq!(o.future_dated(), vec![("pf2", &v("bb", NOW + 3600))]);
    // Within the allowed skew it is an ordinary "most recent".
    let o = obs(vec![
        up("pf1", "aa", NOW - 10),
        up("pf2", "bb", NOW + MAX_CLOCK_SKEW),
    ]);
    assert_eq!(
        decide(&o),
        push(
            "bb",
            NOW + MAX_CLOCK_SKEW,
            "pf2",
            &["pf1"],
            Rule::TwoServersMostRecent
        )
    );
    assert!(o.future_dated().is_empty());
    // Majority: two future-dated holders do not outvote one sane server.
    let o = obs(vec![
        up("pf1", "aa", NOW + 9999),
        up("pf2", "aa", NOW + 9999),
        up("pf3", "bb", NOW),
    ]);
    assert_eq!(
        decide(&o),
        push("bb", NOW, "pf3", &["pf1", "pf2"], Rule::Majority)
    );
    // A hash held by a sane and a future-dated server: the sane one pushes, with its time.
    let o = obs(vec![
        up("pf1", "aa", NOW + 9999),
        up("pf2", "aa", NOW - 5),
        up("pf3", "bb", NOW - 1),
        down("pf4"),
        down("pf5"),
        down("pf6"),
        down("pf7"),
    ]);
    assert_eq!(
        decide(&o),
        push(
            "bb",
            NOW - 1,
            "pf3",
            &["pf1", "pf2"],
            Rule::MostRecentDeadOutnumberAlive
        )
    );
    // Only future versions: no decision, and the reason names them.
    let o = obs(vec![
        up("pf1", "aa", NOW + 999),
        up("pf2", "bb", NOW + 9999),
    ]);
    match decide(&o) {
        Decision::NoDecision { reason } => {
            assert!(
                reason.contains("pf1=aa@") && reason.contains("pf2=bb@"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn arb_observation() -> impl Strategy<Value = Observation> {
    // Few hashes and timestamps, so that conflicts and ties are frequent.
    // `now` such that some of the times are beyond the allowed skew.
    let server = (any::<bool>(), 0u8..4, 0i64..4, any::<bool>());
    (proptest::collection::vec(server, 0..8), 0i64..4).prop_map(|(servers, k)| Observation {
        now: k - MAX_CLOCK_SKEW,
        servers: servers
            .into_iter()
            .enumerate()
            .map(|(i, (alive, h, at, has_version))| ServerObservation {
                name: format!("pf{i}"),
                alive,
                version: (alive || has_version).then(|| ConfigVersion {
                    hash: format!("h{h}"),
                    changed_at: at,
                    changed_by: format!("pf{}", (i + usize::from(h)) % 3),
                }),
            })
            .collect(),
    })
}

proptest! {
    #[test]
    fn decide_invariants(o in arb_observation()) {
        let alive: Vec<&ServerObservation> =
            o.servers.iter().filter(|s| s.alive && s.version.is_some()).collect();
        match decide(&o) {
            Decision::Healthy => {
                prop_assert!(!alive.is_empty());
                let h = &alive[0].version.as_ref().unwrap().hash;
                prop_assert!(alive.iter().all(|s| &s.version.as_ref().unwrap().hash == h));
            }
            Decision::NoDecision { .. } => {
                let all_future = alive.iter().all(|s| o.is_future(s.version.as_ref().unwrap()));
                prop_assert!(
                    alive.is_empty() || (o.servers.len() == 2 && alive.len() < 2) || all_future
                );
            }
            Decision::Push { version, pusher, targets, rule } => {
                // Never a version no alive server holds; the pusher holds it exactly; never
                // a version dated in the future.
                prop_assert!(!o.is_future(&version), "future version {:?} chosen", version);
                let p = alive.iter().find(|s| s.name == pusher);
                prop_assert!(p.is_some(), "pusher {} is not alive", pusher);
                prop_assert_eq!(p.unwrap().version.as_ref(), Some(&version));
                // The pusher is the first alive holder (not future-dated) in cluster.conf order.
                let first = alive
                    .iter()
                    .find(|s| {
                        let v = s.version.as_ref().unwrap();
                        v.hash == version.hash && !o.is_future(v)
                    })
                    .unwrap();
                prop_assert_eq!(&first.name, &pusher);
                // Targets: exactly the alive servers on another version, in order, not empty.
                let want: Vec<String> = alive
                    .iter()
                    .filter(|s| s.version.as_ref().unwrap().hash != version.hash)
                    .map(|s| s.name.clone())
                    .collect();
                prop_assert!(!want.is_empty());
                prop_assert_eq!(targets, want);
                let dead = o.servers.len() - alive.len();
                let expected_rule = if o.servers.len() <= 2 {
                    Rule::TwoServersMostRecent
                } else if dead > alive.len() {
                    Rule::MostRecentDeadOutnumberAlive
                } else {
                    Rule::Majority
                };
                prop_assert_eq!(rule, expected_rule);
                if rule == Rule::Majority {
                    let count = |h: &str| {
                        alive.iter().filter(|s| s.version.as_ref().unwrap().hash == h).count()
                    };
                    let chosen = count(&version.hash);
                    // Among the hashes that may be chosen (one holder not future-dated).
                    prop_assert!(alive
                        .iter()
                        .filter(|s| !o.is_future(s.version.as_ref().unwrap()))
                        .all(|s| count(&s.version.as_ref().unwrap().hash) <= chosen));
                } else {
                    // Future-dated times do not count.
                    let present = |s: &&&ServerObservation| !o.is_future(s.version.as_ref().unwrap());
                    let latest = |h: &str| {
                        alive
                            .iter()
                            .filter(present)
                            .filter(|s| s.version.as_ref().unwrap().hash == h)
                            .map(|s| s.version.as_ref().unwrap().changed_at)
                            .max()
                            .unwrap()
                    };
                    let chosen = latest(&version.hash);
                    prop_assert!(alive
                        .iter()
                        .filter(present)
                        .all(|s| s.version.as_ref().unwrap().changed_at <= chosen));
                }
            }
        }
    }

    #[test]
    fn tracker_pushes_only_what_decide_decides(os in proptest::collection::vec(arb_observation(), 1..6)) {
        let mut t = ConflictTracker::new();
        let mut prev: Option<&Observation> = None;
        for o in &os {
            let a = t.observe(o);
            if let Action::Push { version, pusher, targets, rule } = a {
                prop_assert_eq!(decide(o), Decision::Push { version, pusher, targets, rule });
                prop_assert!(prev.is_some());
                prop_assert_eq!(conflict_key(prev.unwrap()), conflict_key(o));
            }
            prev = Some(o);
        }
    }
}

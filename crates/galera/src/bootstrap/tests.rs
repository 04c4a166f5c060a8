//! The start decision: one row per rule (R1–R9, R1b, R8b of the module docs), then properties of the
//! election every member runs on the same answers.

use super::*;
use crate::grastate::ZERO_UUID;
use proptest::prelude::*;

const UUID: &str = "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b";
const PF1: &str = "pf1.example.com";
const PF2: &str = "pf2.example.com";
const PF3: &str = "pf3.example.com";
/// Another cluster's history (a datadir from elsewhere, the other side of a split brain).
const FOREIGN: &str = "11111111-2222-3333-4444-555555555555";

fn gs(seqno: i64, safe: bool) -> Option<GraState> {
    Some(GraState {
        uuid: UUID.into(),
        seqno,
        safe_to_bootstrap: safe,
    })
}

fn silent(name: &str, index: usize) -> PeerDbState {
    PeerDbState {
        name: name.into(),
        answered: false,
        primary: false,
        last_committed: None,
        index,
        cluster_size: None,
        state_uuid: None,
    }
}

/// Answered, database stopped, same history as this server.
fn down(name: &str, index: usize, seqno: Option<i64>) -> PeerDbState {
    PeerDbState {
        answered: true,
        last_committed: seqno,
        state_uuid: Some(UUID.into()),
        ..silent(name, index)
    }
}

/// Answered, database stopped, with another history.
fn foreign(name: &str, index: usize, seqno: i64) -> PeerDbState {
    PeerDbState {
        state_uuid: Some(FOREIGN.into()),
        ..down(name, index, Some(seqno))
    }
}

/// Answered, Primary in a component of 2.
fn primary(name: &str, index: usize) -> PeerDbState {
    PeerDbState {
        answered: true,
        primary: true,
        last_committed: Some(100),
        cluster_size: Some(2),
        state_uuid: Some(UUID.into()),
        ..silent(name, index)
    }
}

/// pf1 (index 0) after a clean stop at seqno 70, not the last to leave; pf2 and pf3 silent.
fn base() -> StartInputs {
    StartInputs {
        maintenance: false,
        force_new_cluster: false,
        split_override: false,
        local: gs(70, false),
        gvwstate_present: false,
        recovered: None,
        peers: vec![silent(PF2, 1), silent(PF3, 2)],
        total_members: 3,
        this_index: 0,
        this_name: PF1.into(),
    }
}

#[derive(Debug)]
enum Want {
    Refuse(&'static [&'static str]),
    Recover,
    Bootstrap(Option<i64>, &'static [&'static str]),
    Join(&'static [&'static str], &'static [&'static str]),
    Pc(&'static [&'static str]),
    /// (reason needles, operator hint needles)
    Wait(&'static [&'static str], &'static [&'static str]),
}

fn contains_all(rule: &str, text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{rule}: {n:?} not in {text:?}");
    }
}

fn check(rule: &str, i: &StartInputs, want: &Want) {
    let got = decide_start(i);
    let ctx = format!("{rule}\n  inputs: {i}\n  got: {got}");
    match (want, &got) {
        (Want::Refuse(n), StartDecision::Refuse { reason }) => contains_all(&ctx, reason, n),
        (Want::Recover, StartDecision::Recover) => {}
        (
            Want::Bootstrap(pos, n),
            StartDecision::Bootstrap {
                reason,
                recovered_position,
            },
        ) => {
            assert_eq!(recovered_position, pos, "{ctx}");
            contains_all(&ctx, reason, n);
        }
        (Want::Join(via_want, n), StartDecision::Join { reason, via }) => {
            assert_eq!(via, via_want, "{ctx}");
            contains_all(&ctx, reason, n);
        }
        (Want::Pc(n), StartDecision::StartForPcRecovery { reason }) => {
            contains_all(&ctx, reason, n)
        }
        (
            Want::Wait(r, h),
            StartDecision::Wait {
                reason,
                operator_hint,
            },
        ) => {
            contains_all(&ctx, reason, r);
            contains_all(&ctx, operator_hint, h);
        }
        _ => panic!("{ctx}\n  want: {want:?}"),
    }
    assert!(!got.reason().is_empty(), "{ctx}");
    assert!(got.to_string().contains(got.reason()), "{ctx}");
}

#[test]
fn decision_rows() {
    type Edit = fn(&mut StartInputs);
    let rows: Vec<(&str, Edit, Want)> = vec![
        // R1
        (
            "R1 maintenance: refuse",
            |i| i.maintenance = true,
            Want::Refuse(&["maintenance", "ironfence cluster maintenance --deactivate"]),
        ),
        (
            "R1 maintenance beats --force-new-cluster, safe_to_bootstrap and a Primary peer",
            |i| {
                i.maintenance = true;
                i.force_new_cluster = true;
                i.local = gs(70, true);
                i.peers[0] = primary(PF2, 1);
            },
            Want::Refuse(&["maintenance"]),
        ),
        // R1b
        (
            "R1b forced while a peer's database is Primary: refuse, naming it and its size",
            |i| {
                i.force_new_cluster = true;
                i.peers[1] = primary(PF3, 2);
            },
            Want::Refuse(&[
                "--force-new-cluster refused",
                "pf3.example.com (Primary, cluster size 2)",
                "second cluster",
                "`ironfence db start`",
                "--i-know-this-splits-the-cluster",
            ]),
        ),
        (
            "R1b names every Primary peer, in cluster.conf order",
            |i| {
                i.force_new_cluster = true;
                i.peers = vec![primary(PF3, 2), primary(PF2, 1)];
            },
            Want::Refuse(&[
                "pf2.example.com (Primary, cluster size 2), pf3.example.com (Primary, cluster size 2)",
            ]),
        ),
        (
            "R1b before recovery: a refused force runs nothing",
            |i| {
                i.force_new_cluster = true;
                i.local = gs(-1, false);
                i.peers[0] = PeerDbState {
                    cluster_size: None,
                    ..primary(PF2, 1)
                };
            },
            Want::Refuse(&["pf2.example.com (Primary, cluster size unknown)"]),
        ),
        (
            "R1b peers answering with a stopped database do not block a force",
            |i| {
                i.force_new_cluster = true;
                i.peers = vec![down(PF2, 1, Some(90)), foreign(PF3, 2, 99)];
            },
            Want::Bootstrap(None, &["--force-new-cluster", "seqno 70"]),
        ),
        // R2
        (
            "R2 seqno -1 without a recovered position: recover first",
            |i| i.local = gs(-1, false),
            Want::Recover,
        ),
        (
            "R2 before a forced bootstrap too (pf-mariadb recovers before --wsrep-new-cluster)",
            |i| {
                i.local = gs(-1, false);
                i.force_new_cluster = true;
            },
            Want::Recover,
        ),
        (
            "R2 before pc.recovery (lab §5: else the state UUID is zeroed)",
            |i| {
                i.local = gs(-1, false);
                i.gvwstate_present = true;
            },
            Want::Recover,
        ),
        (
            "R2 before joining a Primary peer (else IST becomes SST)",
            |i| {
                i.local = gs(-1, false);
                i.peers[0] = primary(PF2, 1);
            },
            Want::Recover,
        ),
        (
            "R2 not for a zero-UUID datadir (nothing to recover)",
            |i| {
                i.local = Some(GraState {
                    uuid: ZERO_UUID.into(),
                    seqno: -1,
                    safe_to_bootstrap: false,
                });
                i.peers[1] = primary(PF3, 2);
            },
            Want::Join(&[PF3], &["pf3.example.com is Primary"]),
        ),
        // R3
        (
            "R3 --force-new-cluster: bootstrap",
            |i| i.force_new_cluster = true,
            Want::Bootstrap(None, &["--force-new-cluster", "seqno 70"]),
        ),
        (
            "R3 forced after recovery: bootstrap at the recovered position",
            |i| {
                i.force_new_cluster = true;
                i.local = gs(-1, false);
                i.recovered = Some(71);
            },
            Want::Bootstrap(Some(71), &["seqno 71"]),
        ),
        (
            "R3 forced with a Primary peer and the override: bootstrap, with the split-brain warning",
            |i| {
                i.force_new_cluster = true;
                i.split_override = true;
                i.peers[1] = primary(PF3, 2);
            },
            Want::Bootstrap(
                None,
                &[
                    "WARNING",
                    "pf3.example.com is Primary",
                    "--i-know-this-splits-the-cluster was given",
                    "split brain",
                ],
            ),
        ),
        (
            "R3 forced on an empty datadir: a new, empty cluster (guide: create a new cluster)",
            |i| {
                i.force_new_cluster = true;
                i.local = None;
            },
            Want::Bootstrap(None, &["empty"]),
        ),
        // R4b
        (
            "R4b a Primary peer of another history: no automatic join (SST would wipe this data)",
            |i| {
                i.peers[1] = PeerDbState {
                    state_uuid: Some(FOREIGN.into()),
                    ..primary(PF3, 2)
                };
            },
            Want::Wait(
                &[
                    "pf3.example.com (state UUID 11111111-2222-3333-4444-555555555555) is Primary with another history",
                    "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b, seqno 70",
                    "no automatic join",
                ],
                &[
                    "move this server's datadir away",
                    "Recovering from a split brain",
                ],
            ),
        ),
        (
            "R4b an empty datadir has no history: it joins a Primary peer of any history",
            |i| {
                i.local = None;
                i.peers[1] = PeerDbState {
                    state_uuid: Some(FOREIGN.into()),
                    ..primary(PF3, 2)
                };
            },
            Want::Join(&[PF3], &["full copy (SST)"]),
        ),
        (
            "R4b a Primary peer that does not report its uuid (older ironfence) is joined as before",
            |i| {
                i.peers[1] = PeerDbState {
                    state_uuid: None,
                    ..primary(PF3, 2)
                };
            },
            Want::Join(&[PF3], &["IST"]),
        ),
        // R4
        (
            "R4 a peer's database is Primary: join it",
            |i| i.peers[1] = primary(PF3, 2),
            Want::Join(&[PF3], &["pf3.example.com is Primary", "IST"]),
        ),
        (
            "R4 several Primary peers: all of them, cluster.conf order",
            |i| i.peers = vec![primary(PF3, 2), primary(PF2, 1)],
            Want::Join(&[PF2, PF3], &["pf2.example.com, pf3.example.com"]),
        ),
        (
            "R4 a Primary peer beats safe_to_bootstrap",
            |i| {
                i.local = gs(70, true);
                i.peers[0] = primary(PF2, 1);
            },
            Want::Join(&[PF2], &[]),
        ),
        (
            "R4 a Primary peer beats gvwstate.dat",
            |i| {
                i.gvwstate_present = true;
                i.peers[0] = primary(PF2, 1);
            },
            Want::Join(&[PF2], &[]),
        ),
        (
            "R4 empty datadir: join by SST (guide: MariaDB sync)",
            |i| {
                i.local = None;
                i.peers[0] = primary(PF2, 1);
            },
            Want::Join(&[PF2], &["SST"]),
        ),
        (
            "R4 a peer that did not answer is never joined",
            |i| {
                i.peers[0] = PeerDbState {
                    answered: false,
                    ..primary(PF2, 1)
                }
            },
            Want::Wait(
                &["no automatic bootstrap"],
                &["pf2.example.com (no answer)"],
            ),
        ),
        // R5
        (
            "R5 safe_to_bootstrap: 1 (last to leave): bootstrap",
            |i| i.local = gs(74, true),
            Want::Bootstrap(None, &["safe_to_bootstrap: 1", "seqno 74"]),
        ),
        (
            "R5 safe_to_bootstrap beats gvwstate.dat",
            |i| {
                i.local = gs(74, true);
                i.gvwstate_present = true;
            },
            Want::Bootstrap(None, &["safe_to_bootstrap: 1"]),
        ),
        (
            "R5 not against a peer of another history: the lone side of a split keeps safe_to_bootstrap: 1",
            |i| {
                i.local = Some(GraState {
                    uuid: FOREIGN.into(),
                    seqno: 99,
                    safe_to_bootstrap: true,
                });
                i.peers = vec![down(PF2, 1, Some(75)), down(PF3, 2, Some(75))];
            },
            Want::Wait(
                &[
                    "different histories",
                    "pf1.example.com 11111111-2222-3333-4444-555555555555:99",
                ],
                &["run `ironfence db start --force-new-cluster` on pf2.example.com"],
            ),
        ),
        // R6
        (
            "R6 gvwstate.dat present: start for pc.recovery",
            |i| i.gvwstate_present = true,
            Want::Pc(&["gvwstate.dat", "primary-component recovery"]),
        ),
        (
            "R6 after --wsrep-recover: start for pc.recovery (with the start position)",
            |i| {
                i.local = gs(-1, false);
                i.recovered = Some(71);
                i.gvwstate_present = true;
            },
            Want::Pc(&["gvwstate.dat"]),
        ),
        // R7
        (
            "R7 empty datadir and no Primary peer: wait",
            |i| i.local = None,
            Want::Wait(&["datadir is empty"], &["no answer", "--force-new-cluster"]),
        ),
        (
            "R7 empty datadir, peers with data: start theirs",
            |i| {
                i.local = None;
                i.peers = vec![down(PF2, 1, Some(90)), down(PF3, 2, Some(91))];
            },
            Want::Wait(
                &["datadir is empty"],
                &[
                    "91 on pf3.example.com",
                    "`ironfence db start --force-new-cluster` on pf3.example.com",
                ],
            ),
        ),
        // R8
        (
            "R8 all answered, this server highest: bootstrap",
            |i| i.peers = vec![down(PF2, 1, Some(69)), down(PF3, 2, Some(68))],
            Want::Bootstrap(
                None,
                &[
                    "every member (3)",
                    "pf1.example.com 70, pf2.example.com 69, pf3.example.com 68",
                    "highest (70",
                    "this server starts",
                ],
            ),
        ),
        (
            "R8 all answered, a peer highest: join it",
            |i| i.peers = vec![down(PF2, 1, Some(69)), down(PF3, 2, Some(72))],
            Want::Join(&[PF3], &["highest (72", "this server joins it"]),
        ),
        (
            "R8 tie: cluster.conf order (pf1 before pf2)",
            |i| i.peers = vec![down(PF2, 1, Some(70)), down(PF3, 2, Some(12))],
            Want::Bootstrap(None, &["highest (70"]),
        ),
        (
            "R8 tie seen from pf3: pf2 (index 1) before pf3",
            |i| {
                i.this_index = 2;
                i.this_name = PF3.into();
                i.peers = vec![down(PF1, 0, Some(3)), down(PF2, 1, Some(70))];
            },
            Want::Join(&[PF2], &["is pf2.example.com"]),
        ),
        (
            "R8 this server's recovered position counts (and is the start position)",
            |i| {
                i.local = gs(-1, false);
                i.recovered = Some(80);
                i.peers = vec![down(PF2, 1, Some(79)), down(PF3, 2, Some(78))];
            },
            Want::Bootstrap(Some(80), &["pf1.example.com 80"]),
        ),
        // R8b
        (
            "R8b a foreign history with the highest seqno never wins: wait, naming the uuids",
            |i| i.peers = vec![down(PF2, 1, Some(75)), foreign(PF3, 2, 99)],
            Want::Wait(
                &[
                    "different histories",
                    "pf1.example.com 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:70",
                    "pf2.example.com 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:75",
                    "pf3.example.com 11111111-2222-3333-4444-555555555555:99",
                    "no automatic bootstrap",
                ],
                &[
                    "majority history 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b",
                    "held by pf1.example.com, pf2.example.com",
                    "highest seqno is 75 on pf2.example.com",
                    "run `ironfence db start --force-new-cluster` on pf2.example.com",
                    "that pf3.example.com hold nothing you need",
                ],
            ),
        ),
        (
            "R8b seen from the foreign member itself: the same answer",
            |i| {
                i.this_index = 2;
                i.this_name = PF3.into();
                i.local = Some(GraState {
                    uuid: FOREIGN.into(),
                    seqno: 99,
                    safe_to_bootstrap: false,
                });
                i.peers = vec![down(PF1, 0, Some(70)), down(PF2, 1, Some(75))];
            },
            Want::Wait(
                &["different histories"],
                &["run `ironfence db start --force-new-cluster` on pf2.example.com"],
            ),
        ),
        (
            "R8b UUIDs compare case-insensitively: no mismatch",
            |i| {
                i.peers = vec![
                    PeerDbState {
                        state_uuid: Some(UUID.to_ascii_uppercase()),
                        ..down(PF2, 1, Some(75))
                    },
                    down(PF3, 2, Some(60)),
                ];
            },
            Want::Join(&[PF2], &["highest (75"]),
        ),
        (
            "R8b a member that does not report its uuid (older ironfence) blocks the election",
            |i| {
                i.peers = vec![
                    PeerDbState {
                        state_uuid: None,
                        ..down(PF2, 1, Some(75))
                    },
                    down(PF3, 2, Some(60)),
                ];
            },
            Want::Wait(
                &["pf2.example.com (uuid not reported: an older ironfence, upgrade it):75"],
                &["on pf1.example.com"],
            ),
        ),
        (
            "R8b no majority history (2 members, 2 histories): decide by hand",
            |i| {
                i.total_members = 2;
                i.peers = vec![foreign(PF2, 1, 99)];
            },
            Want::Wait(
                &["different histories"],
                &[
                    "no history is held by a majority of the 2 members",
                    "ironfence db start --force-new-cluster",
                ],
            ),
        ),
        // R9
        (
            "R9 a foreign history is not suggested while a member is missing",
            |i| i.peers = vec![foreign(PF2, 1, 99), silent(PF3, 2)],
            Want::Wait(
                &[],
                &[
                    "waiting for: pf3.example.com (no answer)",
                    "different histories",
                    "none is held by a majority",
                ],
            ),
        ),
        (
            "R9 a member missing: wait, naming it and the server to force",
            |i| i.peers = vec![down(PF2, 1, Some(75)), silent(PF3, 2)],
            Want::Wait(
                &["no automatic bootstrap", "seqno is 70"],
                &[
                    "waiting for: pf3.example.com (no answer)",
                    "75 on pf2.example.com",
                    "run `ironfence db start --force-new-cluster` on pf2.example.com",
                ],
            ),
        ),
        (
            "R9 this server highest with a member missing: names this server",
            |i| i.peers = vec![down(PF2, 1, Some(5)), silent(PF3, 2)],
            Want::Wait(
                &[],
                &["`ironfence db start --force-new-cluster` on pf1.example.com"],
            ),
        ),
        (
            "R9 a member answered without a position: wait for it",
            |i| i.peers = vec![down(PF2, 1, Some(75)), down(PF3, 2, None)],
            Want::Wait(&[], &["pf3.example.com (answered without a position"]),
        ),
        (
            "R9 a negative seqno is no position",
            |i| i.peers = vec![down(PF2, 1, Some(75)), down(PF3, 2, Some(-1))],
            Want::Wait(&[], &["pf3.example.com (answered without a position"]),
        ),
        (
            "R9 a configured member absent from the peers list: wait",
            |i| {
                i.total_members = 4;
                i.peers = vec![down(PF2, 1, Some(1)), down(PF3, 2, Some(2))];
            },
            Want::Wait(&[], &["1 configured member(s)"]),
        ),
        (
            "R9 this server recovered no position: wait, naming it",
            |i| {
                i.local = gs(-1, false);
                i.recovered = Some(-1);
                i.peers = vec![down(PF2, 1, Some(1)), down(PF3, 2, Some(2))];
            },
            Want::Wait(
                &["no committed position"],
                &[
                    "pf1.example.com (this server: no committed position)",
                    "on pf3.example.com",
                ],
            ),
        ),
        (
            "R9 nobody has a position: tell how to find the most recent data",
            |i| {
                i.local = Some(GraState {
                    uuid: ZERO_UUID.into(),
                    seqno: -1,
                    safe_to_bootstrap: false,
                });
                i.peers = vec![down(PF2, 1, None), silent(PF3, 2)];
            },
            Want::Wait(
                &[],
                &[
                    "no member reported a position",
                    "grastate.dat",
                    "--wsrep-recover",
                ],
            ),
        ),
    ];
    for (rule, edit, want) in rows {
        let mut i = base();
        edit(&mut i);
        check(rule, &i, &want);
    }
}

#[test]
fn start_position_is_only_the_recovered_one() {
    let mut i = base();
    assert_eq!(i.start_position(), None);
    i.local = gs(-1, false);
    i.recovered = Some(71);
    assert_eq!(i.start_position(), Some(71));
    assert_eq!(i.local_position(), Some(71));
}

#[test]
fn display_logs_every_input() {
    let mut i = base();
    i.local = gs(-1, true);
    i.recovered = Some(71);
    i.gvwstate_present = true;
    i.peers = vec![primary(PF2, 1), silent(PF3, 2), down("pf4", 3, None)];
    i.total_members = 4;
    assert_eq!(
        i.to_string(),
        "this=pf1.example.com#0 members=4 maintenance=false force_new_cluster=false \
         split_override=false local=5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:-1 safe_to_bootstrap=1 \
         gvwstate=true recovered=71 peers=[pf2.example.com#1:primary,seqno=100,size=2,\
         uuid=5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b, pf3.example.com#2:no-answer, \
         pf4#3:not-primary,seqno=none,uuid=5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b]"
    );
    let mut e = base();
    e.local = None;
    assert!(
        e.to_string()
            .contains("local=empty-datadir gvwstate=false recovered=none")
    );
    assert!(
        StartDecision::Recover
            .to_string()
            .contains("--wsrep-recover")
    );
}

proptest! {
    /// Every member runs the election on the same answers: exactly one bootstraps, every other
    /// one joins it, and it holds the highest seqno (the first in cluster.conf on ties).
    #[test]
    fn election_agrees_everywhere(seqnos in proptest::collection::vec(0i64..4, 1..6)) {
        let n = seqnos.len();
        let name = |k: usize| format!("pf{}", k + 1);
        let mut boots = Vec::new();
        let mut joins = Vec::new();
        for me in 0..n {
            let i = StartInputs {
                maintenance: false,
                force_new_cluster: false,
                split_override: false,
                local: gs(seqnos[me], false),
                gvwstate_present: false,
                recovered: None,
                peers: (0..n).filter(|k| *k != me).map(|k| down(&name(k), k, Some(seqnos[k]))).collect(),
                total_members: n,
                this_index: me,
                this_name: name(me),
            };
            match decide_start(&i) {
                StartDecision::Bootstrap { .. } => boots.push(name(me)),
                StartDecision::Join { via, .. } => joins.push(via),
                other => prop_assert!(false, "{other}"),
            }
        }
        prop_assert_eq!(boots.len(), 1);
        let max = *seqnos.iter().max().unwrap();
        let winner = name(seqnos.iter().position(|s| *s == max).unwrap());
        prop_assert_eq!(&boots[0], &winner);
        for via in joins {
            prop_assert_eq!(via, vec![winner.clone()]);
        }
    }

    /// With any member silent, nobody bootstraps unless forced or safe_to_bootstrap.
    #[test]
    fn never_automatic_with_a_member_missing(
        seqnos in proptest::collection::vec(proptest::option::of(0i64..4), 2..6),
        silent_one in any::<proptest::sample::Index>(),
        me_pick in any::<proptest::sample::Index>(),
    ) {
        let n = seqnos.len();
        let me = me_pick.index(n);
        let gone = silent_one.index(n);
        prop_assume!(me != gone);
        let name = |k: usize| format!("pf{}", k + 1);
        let i = StartInputs {
            maintenance: false,
            force_new_cluster: false,
            split_override: false,
            local: seqnos[me].and_then(|s| gs(s, false)),
            gvwstate_present: false,
            recovered: None,
            peers: (0..n)
                .filter(|k| *k != me)
                .map(|k| if k == gone { silent(&name(k), k) } else { down(&name(k), k, seqnos[k]) })
                .collect(),
            total_members: n,
            this_index: me,
            this_name: name(me),
        };
        match decide_start(&i) {
            StartDecision::Wait { operator_hint, .. } => {
                let missing = format!("{} (no answer)", name(gone));
                prop_assert!(operator_hint.contains(&missing), "{}", operator_hint);
                prop_assert!(operator_hint.contains(FORCE_COMMAND), "{}", operator_hint);
            }
            other => prop_assert!(false, "{other}"),
        }
    }

    /// Members with random histories (two UUIDs): whatever the seqnos, a member of a history
    /// held by a minority never bootstraps and is never joined; with more than one history
    /// nobody starts automatically.
    #[test]
    fn a_foreign_history_never_wins(
        members in proptest::collection::vec((0i64..100, any::<bool>()), 2..6),
    ) {
        let n = members.len();
        let name = |k: usize| format!("pf{}", k + 1);
        let uuid = |k: usize| if members[k].1 { FOREIGN } else { UUID };
        let histories: std::collections::BTreeSet<&str> = (0..n).map(uuid).collect();
        for me in 0..n {
            let i = StartInputs {
                maintenance: false,
                force_new_cluster: false,
                split_override: false,
                local: Some(GraState { uuid: uuid(me).into(), seqno: members[me].0, safe_to_bootstrap: false }),
                gvwstate_present: false,
                recovered: None,
                peers: (0..n).filter(|k| *k != me).map(|k| PeerDbState {
                    state_uuid: Some(uuid(k).into()),
                    ..down(&name(k), k, Some(members[k].0))
                }).collect(),
                total_members: n,
                this_index: me,
                this_name: name(me),
            };
            let d = decide_start(&i);
            if histories.len() == 1 {
                prop_assert!(matches!(d, StartDecision::Bootstrap { .. } | StartDecision::Join { .. }), "{}", d);
            } else {
                let StartDecision::Wait { operator_hint, .. } = &d else {
                    return Err(TestCaseError::fail(format!("{d}")));
                };
                // The suggested server, if any, holds the majority history.
                let holders = |u: &str| (0..n).filter(|k| uuid(*k) == u).count();
                for k in 0..n {
                    let suggestion = format!("`{FORCE_COMMAND}` on {} ", name(k));
                    if operator_hint.contains(&suggestion) {
                        prop_assert!(2 * holders(uuid(k)) > n, "{}", operator_hint);
                    }
                }
            }
        }
    }
}

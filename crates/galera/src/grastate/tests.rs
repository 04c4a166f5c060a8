//! grastate.dat and `--wsrep-recover` output: one row per rule, plus proptests.

use super::*;
use proptest::prelude::*;

const UUID: &str = "5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b";

/// The lab's files (§5), as Galera 4.23 wrote them.
const AFTER_KILL_9: &str = "\
# GALERA saved state
version: 2.1
uuid:    5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b
seqno:   -1
safe_to_bootstrap: 0
";
const LAST_TO_LEAVE: &str = "\
# GALERA saved state
version: 2.1
uuid:    5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b
seqno:   74
safe_to_bootstrap: 1
";

fn gs(seqno: i64, safe: bool) -> GraState {
    GraState {
        uuid: UUID.into(),
        seqno,
        safe_to_bootstrap: safe,
    }
}

#[test]
fn parse_rows() {
    let ok: &[(&str, String, GraState)] = &[
        ("lab: kill -9 of every node", AFTER_KILL_9.into(), gs(-1, false)),
        ("lab: last node to leave cleanly", LAST_TO_LEAVE.into(), gs(74, true)),
        (
            "CRLF, blank lines, extra comments, unknown keys, any key order",
            "\r\n# c\r\nsafe_to_bootstrap: 1\r\nfuture_key: x\r\n\r\nseqno: 3\r\n  # indented comment\r\nuuid: 5BFC8D4B-E95E-11F1-8BB1-32AC4A781A5B\r\n".into(),
            gs(3, true),
        ),
        (
            "no safe_to_bootstrap (Galera < 3.19): not safe",
            format!("version: 2.0\nuuid: {UUID}\nseqno: 9"),
            gs(9, false),
        ),
        (
            "a fresh node: zero UUID",
            format!("uuid: {ZERO_UUID}\nseqno: -1\nsafe_to_bootstrap: 0\n"),
            GraState { uuid: ZERO_UUID.into(), seqno: -1, safe_to_bootstrap: false },
        ),
        (
            "lines without a colon are ignored",
            format!("garbage line\nuuid: {UUID}\nseqno: 0\n"),
            gs(0, false),
        ),
    ];
    for (rule, text, want) in ok {
        assert_eq!(parse(text).as_ref(), Ok(want), "{rule}");
    }

    let bad: &[(&str, String, GrastateError)] = &[
        ("empty file", String::new(), GrastateError::Missing("uuid")),
        (
            "no seqno",
            format!("uuid: {UUID}\n"),
            GrastateError::Missing("seqno"),
        ),
        (
            "no uuid",
            "seqno: 4\n".into(),
            GrastateError::Missing("uuid"),
        ),
        (
            "uuid not 8-4-4-4-12",
            "uuid: 5bfc8d4b-e95e-11f1-8bb1\nseqno: 1\n".into(),
            GrastateError::Invalid {
                key: "uuid",
                line: 1,
                value: "5bfc8d4b-e95e-11f1-8bb1".into(),
                expected: "a UUID (8-4-4-4-12 hex digits)",
            },
        ),
        (
            "seqno not a number",
            format!("uuid: {UUID}\nseqno: 12x\n"),
            GrastateError::Invalid {
                key: "seqno",
                line: 2,
                value: "12x".into(),
                expected: "a sequence number (-1 or more)",
            },
        ),
        (
            "seqno below -1",
            format!("uuid: {UUID}\nseqno: -2\n"),
            GrastateError::Invalid {
                key: "seqno",
                line: 2,
                value: "-2".into(),
                expected: "a sequence number (-1 or more)",
            },
        ),
        (
            "safe_to_bootstrap not 0/1",
            format!("uuid: {UUID}\nseqno: 1\nsafe_to_bootstrap: yes\n"),
            GrastateError::Invalid {
                key: "safe_to_bootstrap",
                line: 3,
                value: "yes".into(),
                expected: "0 or 1",
            },
        ),
        (
            "duplicate seqno",
            format!("uuid: {UUID}\nseqno: 1\nseqno: 2\n"),
            GrastateError::Duplicate {
                key: "seqno",
                line: 3,
            },
        ),
        (
            "duplicate uuid",
            format!("uuid: {UUID}\nuuid: {UUID}\nseqno: 2\n"),
            GrastateError::Duplicate {
                key: "uuid",
                line: 2,
            },
        ),
        (
            "duplicate safe_to_bootstrap",
            format!("uuid: {UUID}\nseqno: 2\nsafe_to_bootstrap: 1\nsafe_to_bootstrap: 1\n"),
            GrastateError::Duplicate {
                key: "safe_to_bootstrap",
                line: 4,
            },
        ),
    ];
    for (rule, text, want) in bad {
        let e = parse(text).expect_err(rule);
        assert_eq!(&e, want, "{rule}");
        assert!(e.to_string().contains("grastate.dat"), "{rule}: {e}");
    }
}

#[test]
fn display_is_galeras_format() {
    assert_eq!(gs(-1, false).to_string(), AFTER_KILL_9);
    assert_eq!(gs(74, true).to_string(), LAST_TO_LEAVE);
    assert!(gs(-1, false).needs_recovery() && !gs(0, false).needs_recovery());
}

#[test]
fn mark_safe_to_bootstrap_rows() {
    let rows: &[(&str, &str, &str)] = &[
        (
            "flips 0 to 1, keeps every other byte",
            AFTER_KILL_9,
            "# GALERA saved state\nversion: 2.1\nuuid:    5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno:   -1\nsafe_to_bootstrap: 1\n",
        ),
        ("already 1: unchanged", LAST_TO_LEAVE, LAST_TO_LEAVE),
        (
            "keeps CRLF",
            "uuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\r\nsafe_to_bootstrap:0\r\nseqno: 5\r\n",
            "uuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\r\nsafe_to_bootstrap: 1\r\nseqno: 5\r\n",
        ),
        (
            "missing key is appended",
            "uuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 5",
            "uuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 5\nsafe_to_bootstrap: 1\n",
        ),
        (
            "a commented-out key is left alone",
            "# safe_to_bootstrap: 0\nuuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 5\n",
            "# safe_to_bootstrap: 0\nuuid: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b\nseqno: 5\nsafe_to_bootstrap: 1\n",
        ),
    ];
    for (rule, text, want) in rows {
        let got = mark_safe_to_bootstrap(text);
        assert_eq!(got, *want, "{rule}");
        assert!(parse(&got).unwrap().safe_to_bootstrap, "{rule}");
    }
}

#[test]
fn wsrep_recover_rows() {
    let lab = "\
2025-11-26  7:12:01 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 source revision as process 4242
2025-11-26  7:12:01 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=47112
2025-11-26  7:12:01 0 [Note] WSREP: Recovered position: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:71
";
    type Row<'a> = (&'a str, String, Option<(&'a str, i64)>);
    let rows: &[Row<'_>] = &[
        ("lab's line", lab.into(), Some((UUID, 71))),
        (
            "the last line wins",
            format!("{lab}x [Note] WSREP: Recovered position: {UUID}:72\n"),
            Some((UUID, 72)),
        ),
        (
            "GTID suffix ignored",
            format!("[Note] WSREP: Recovered position: {UUID}:73,0-1-73\n"),
            Some((UUID, 73)),
        ),
        (
            "nothing to recover (fresh datadir)",
            format!("[Note] WSREP: Recovered position: {ZERO_UUID}:-1\n"),
            Some((ZERO_UUID, -1)),
        ),
        (
            "a later garbled line does not hide a good one",
            format!("{lab}[Note] WSREP: Recovered position: nonsense\n"),
            Some((UUID, 71)),
        ),
        ("no such line", "[ERROR] Aborting\n".into(), None),
        (
            "not a uuid",
            "WSREP: Recovered position: 5bfc8d4b:71\n".into(),
            None,
        ),
        (
            "\"position from storage\" is another message",
            format!("WSREP: Recovered position from storage: {UUID}:70\n"),
            None,
        ),
        ("empty", String::new(), None),
    ];
    for (rule, log, want) in rows {
        let got = parse_wsrep_recover(log);
        assert_eq!(got.as_ref().map(|(u, s)| (u.as_str(), *s)), *want, "{rule}");
    }
}

fn arb_state() -> impl Strategy<Value = GraState> {
    (
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        -1i64..i64::MAX,
        any::<bool>(),
    )
        .prop_map(|(uuid, seqno, safe_to_bootstrap)| GraState {
            uuid,
            seqno,
            safe_to_bootstrap,
        })
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC*") {
        let _ = parse(&text);
        let _ = parse_wsrep_recover(&text);
        let _ = mark_safe_to_bootstrap(&text);
    }

    #[test]
    fn parse_never_panics_on_near_grastate(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("uuid: ".to_string()),
                Just("seqno: ".to_string()),
                Just("safe_to_bootstrap: ".to_string()),
                Just("# ".to_string()),
                "[ -~]{0,12}",
            ].prop_flat_map(|k| ("[-0-9a-f:#\\r ]{0,40}").prop_map(move |v| format!("{k}{v}"))),
            0..8,
        )
    ) {
        let text = lines.join("\n");
        if let Ok(g) = parse(&text) {
            let marked = parse(&mark_safe_to_bootstrap(&text)).expect("marked file parses");
            prop_assert_eq!(marked, GraState { safe_to_bootstrap: true, ..g });
        }
    }

    #[test]
    fn display_round_trips(g in arb_state()) {
        prop_assert_eq!(parse(&g.to_string()), Ok(g.clone()));
        let marked = parse(&mark_safe_to_bootstrap(&g.to_string())).unwrap();
        prop_assert_eq!(marked, GraState { safe_to_bootstrap: true, ..g });
    }

    #[test]
    fn recover_line_round_trips(g in arb_state(), prefix in "[ -~]{0,30}") {
        let log = format!("{prefix} [Note] WSREP: Recovered position: {}:{}\n", g.uuid, g.seqno);
        prop_assert_eq!(parse_wsrep_recover(&log), Some((g.uuid.clone(), g.seqno)));
    }
}

//! The write pipeline on a real conf directory and a real `Shared` (single server): edits keep
//! comments, invalid changes write nothing and name the field, versions are checked, the
//! running configuration follows, and the database's read-only mode does not matter.

use super::*;
use crate::admin::AdminState;
use ironfence_admin::Role;
use std::fs;
use std::os::unix::fs::PermissionsExt;

pub(crate) const SWITCHES: &str = "\
# Our switches — keep this comment
[default]
# the default secret
radiusSecret = Zk3vQ9pLm2xR7tW4nB8yC1dF
registrationVlan = 2

[10.0.0.1]
# core switch, building A
description = core
defaultVlan = 10
";

pub(crate) fn admin() -> Principal {
    Principal {
        account: "alice".into(),
        role: Role::Administrator,
        session: "s1".into(),
        client: "127.0.83.9".parse().unwrap(),
    }
}

pub(crate) async fn state_with(files: &[(&str, &str)]) -> (tempfile::TempDir, AdminState) {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), "", files);
    for e in fs::read_dir(&conf).unwrap() {
        let p = e.unwrap().path();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    }
    let shared = crate::test_support::shared_for(&conf).await;
    (dir, AdminState::new(shared, false))
}

fn switches_path(st: &AdminState) -> std::path::PathBuf {
    st.shared.config().conf_dir.join("switches.conf")
}

/// Every file of conf/ with its bytes (and no temporary left over anywhere in the tree).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if !name.ends_with(".lock") && !name.starts_with("var/") {
                out.insert(name, fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn an_edit_keeps_comments_and_is_in_force_at_once() {
    let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let before = snapshot(&st).await.unwrap().version;
    let report = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.update", "switch 10.0.0.1")
            .set(
                "switches.conf",
                "10.0.0.1",
                "defaultVlan",
                Some("20".into()),
            )
            .set("switches.conf", "10.0.0.1", "guestVlan", Some("30".into()))
            .set("switches.conf", "10.0.0.1", "description", None)
            .expecting(Some(before.hash.clone())),
    )
    .await
    .unwrap();
    assert!(report.changed);
    assert_eq!(report.files, ["conf/switches.conf"]);
    assert_ne!(report.version, before.hash);
    assert_eq!(report.changed_by, st.shared.config().identity);
    assert_eq!(
        report.servers,
        [ServerResult {
            server: st.shared.config().identity.clone(),
            result: ServerOutcome::ThisServer,
            error: None
        }]
    );
    let text = fs::read_to_string(switches_path(&st)).unwrap();
    assert_eq!(
        text,
        SWITCHES
            .replace("defaultVlan = 10\n", "defaultVlan = 20\nguestVlan=30\n")
            .replace("description = core\n", "")
    );
    // The running configuration is the new one.
    let sw = st.shared.config().switches.get("10.0.0.1").unwrap().clone();
    assert_eq!(sw.role_vlans.get("default").map(String::as_str), Some("20"));
    assert_eq!(sw.role_vlans.get("guest").map(String::as_str), Some("30"));
    // The version read back is the one reported; the mode of the file is kept.
    assert_eq!(snapshot(&st).await.unwrap().version.hash, report.version);
    let mode = fs::metadata(switches_path(&st))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
}

#[tokio::test]
async fn an_invalid_change_writes_nothing_and_names_the_field() {
    let (d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let files = tree(d.path());
    let version = snapshot(&st).await.unwrap().version;
    let cases: Vec<(ConfigChange, &str, &str)> = vec![
        (
            ConfigChange::new("switch.update", "switch 10.0.0.1").set(
                "switches.conf",
                "10.0.0.1",
                "registrationVlan",
                Some("5000".into()),
            ),
            "registrationVlan",
            "not a VLAN id",
        ),
        (
            ConfigChange::new("switch.update", "switch 10.0.0.1").set(
                "switches.conf",
                "10.0.0.1",
                "require_message_authenticator",
                Some("maybe".into()),
            ),
            "require_message_authenticator",
            "yes, no or auto",
        ),
        (
            // A switch without a secret anywhere: the error is on its section.
            ConfigChange::new("switch.create", "switch 10.0.0.2")
                .set("switches.conf", "default", "radiusSecret", None)
                .set(
                    "switches.conf",
                    "10.0.0.2",
                    "description",
                    Some("new".into()),
                ),
            "switches.conf [10.0.0.1]",
            "no RADIUS secret",
        ),
        (
            ConfigChange::new("pf.update", "pf.conf [radius]").set(
                "pf.conf",
                "radius",
                "auth_port",
                Some("http".into()),
            ),
            "auth_port",
            "pf.conf:",
        ),
    ];
    for (change, field, reason) in cases {
        let e = apply(&st, &admin(), change.clone()).await.unwrap_err();
        assert_eq!(e.status.as_u16(), 422, "{change:?}: {e}");
        assert!(
            e.errors
                .iter()
                .any(|f| f.field == field && f.message.contains(reason)),
            "{change:?}: {:?}",
            e.errors
        );
        // file:line in the message, relative to conf/ (not the staging copy).
        assert!(
            e.errors.iter().all(|f| !f.message.contains("staging")),
            "{:?}",
            e.errors
        );
        assert_eq!(tree(d.path()), files, "{change:?} wrote something");
    }
    assert_eq!(snapshot(&st).await.unwrap().version, version);
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_the_current_one_is_accepted() {
    let (d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let read = snapshot(&st).await.unwrap().version;
    let first = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.update", "switch 10.0.0.1")
            .set(
                "switches.conf",
                "10.0.0.1",
                "defaultVlan",
                Some("11".into()),
            )
            .expecting(Some(read.hash.clone())),
    )
    .await
    .unwrap();
    let files = tree(d.path());
    // A second admin who read the same version.
    let e = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.update", "switch 10.0.0.1")
            .set(
                "switches.conf",
                "10.0.0.1",
                "defaultVlan",
                Some("12".into()),
            )
            .expecting(Some(read.hash.clone())),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 409, "{e}");
    assert!(e.message.contains("read it again"), "{e}");
    assert_eq!(tree(d.path()), files);
    // With the version now in force (short form, as tables show it), it goes through.
    let second = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.update", "switch 10.0.0.1")
            .set(
                "switches.conf",
                "10.0.0.1",
                "defaultVlan",
                Some("12".into()),
            )
            .expecting(Some(first.version[..12].to_string())),
    )
    .await
    .unwrap();
    assert!(second.changed);
}

#[tokio::test]
async fn sections_are_added_renamed_and_removed_with_their_comments() {
    let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let e = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.create", "switch 10.0.0.1")
            .add_section("switches.conf", "10.0.0.1"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 409);
    let e = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.delete", "switch 10.9.9.9")
            .remove_section("switches.conf", "10.9.9.9"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 404);
    apply(
        &st,
        &admin(),
        ConfigChange::new("switch.rename", "switch 10.0.0.1").rename_section(
            "switches.conf",
            "10.0.0.1",
            "10.0.0.0/24",
        ),
    )
    .await
    .unwrap();
    assert!(st.shared.config().switches.get("10.0.0.0/24").is_some());
    apply(
        &st,
        &admin(),
        ConfigChange::new("switch.delete", "switch 10.0.0.0/24")
            .remove_section("switches.conf", "10.0.0.0/24"),
    )
    .await
    .unwrap();
    let text = fs::read_to_string(switches_path(&st)).unwrap();
    assert!(!text.contains("core switch, building A"), "{text}");
    assert!(
        text.starts_with("# Our switches — keep this comment\n[default]\n# the default secret\n")
    );
    assert!(st.shared.config().switches.switches().is_empty());
}

#[tokio::test]
async fn same_values_change_nothing() {
    let (d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let files = tree(d.path());
    let r = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.update", "switch 10.0.0.1").set(
            "switches.conf",
            "10.0.0.1",
            "defaultVlan",
            Some("10".into()),
        ),
    )
    .await
    .unwrap();
    assert!(!r.changed);
    assert_eq!(tree(d.path()), files);
}

#[tokio::test]
async fn configuration_writes_work_while_the_database_is_read_only() {
    let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    st.shared.db.set_read_only_for_test(true);
    let r = apply(
        &st,
        &admin(),
        ConfigChange::new("switch.update", "switch 10.0.0.1").set(
            "switches.conf",
            "10.0.0.1",
            "defaultVlan",
            Some("99".into()),
        ),
    )
    .await
    .unwrap();
    assert!(r.changed);
}

#[tokio::test]
async fn new_secret_files_are_private_and_unwritable_files_refused() {
    let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    apply(
        &st,
        &admin(),
        ConfigChange::new("admin.create", "admin bob").set(
            "admin.conf",
            "account bob",
            "role",
            Some("operator".into()),
        ),
    )
    .await
    .unwrap();
    let p = st.shared.config().conf_dir.join("admin.conf");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read_to_string(&p).unwrap(),
        "[account bob]\nrole=operator\n"
    );
    let e = apply(
        &st,
        &admin(),
        ConfigChange::new("cluster.update", "cluster").set(
            "cluster.conf",
            "CLUSTER",
            "management_ip",
            Some("127.0.83.1".into()),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 422);
    assert_eq!(e.errors[0].field, "file");
}

#[test]
fn audit_diffs_redact_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), "", &[("switches.conf", SWITCHES)]);
    let config = Config::load(&conf).unwrap();
    let snap = snapshot_blocking(&config).unwrap();
    let (_, diffs) = edit_documents(
        &snap,
        &ConfigChange::new("switch.update", "switch default")
            .set(
                "switches.conf",
                "default",
                "radiusSecret",
                Some("N3w-S3cret-0f-22-chars!".into()),
            )
            .set(
                "switches.conf",
                "default",
                "registrationVlan",
                Some("3".into()),
            ),
    )
    .unwrap();
    assert_eq!(
        diffs,
        [
            FieldDiff {
                field: "radiusSecret".into(),
                before: Some("(set)".into()),
                after: Some("(changed)".into())
            },
            FieldDiff {
                field: "registrationVlan".into(),
                before: Some("2".into()),
                after: Some("3".into())
            }
        ]
    );
}

#[test]
fn if_match_and_body_versions() {
    let mut h = HeaderMap::new();
    assert_eq!(expected_version(&h, Some("abc")), Some("abc".into()));
    h.insert("if-match", "W/\"0123456789ab\"".parse().unwrap());
    assert_eq!(expected_version(&h, Some("x")), Some("0123456789ab".into()));
    h.insert("if-match", "*".parse().unwrap());
    assert_eq!(expected_version(&h, None), None);
    let v = ConfigVersion {
        hash: "0123456789abcdef".into(),
        changed_at: 0,
        changed_by: "pf1".into(),
    };
    assert!(same_version("0123456789AB", &v));
    assert!(!same_version("0123", &v));
    assert!(!same_version("0123456789ac", &v));
}

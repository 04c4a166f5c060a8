//! The switch and group service functions over a real conf directory: bodies decoded with the
//! API's rules, answers with secrets redacted and the inherited view, 422 naming the field with
//! nothing written, 409 for stale versions and used groups.

use super::*;
use crate::admin::config_write::tests::{SWITCHES, admin, state_with};
use crate::admin::json::parse;
use std::fs;

const GROUPED: &str = "\
[default]
radiusSecret = Zk3vQ9pLm2xR7tW4nB8yC1dF
registrationVlan = 2

[group access]
# building A access switches
isolationVlan = 3
guestVlan = 40

[10.0.0.1]
group = access
defaultVlan = 10
";

fn body(json: &str) -> SectionInput {
    parse::<SectionInput>(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[tokio::test]
async fn the_view_redacts_secrets_and_says_where_values_come_from() {
    let (_d, st) = state_with(&[("switches.conf", GROUPED)]).await;
    let list = list(&st).await.unwrap();
    assert_eq!(list.switches.len(), 1);
    let sw = &list.switches[0];
    assert_eq!(sw.id, "10.0.0.1");
    assert_eq!(sw.group.as_deref(), Some("access"));
    let r = |k: &str| {
        sw.resolved
            .get(k)
            .map(|i| (i.value.as_str(), i.from.as_str()))
    };
    assert_eq!(r("radiusSecret"), Some(("(set)", "default")));
    assert_eq!(r("registrationVlan"), Some(("2", "default")));
    assert_eq!(r("isolationVlan"), Some(("3", "group access")));
    assert_eq!(r("defaultVlan"), Some(("10", "switch")));
    assert_eq!(r("VlanMap"), Some(("Y", "built-in")));
    let text = serde_json::to_string(&list).unwrap();
    assert!(!text.contains("Zk3vQ9pLm2xR7tW4nB8yC1dF"), "{text}");
    let groups = list_groups(&st).await.unwrap();
    let ids: Vec<&str> = groups.groups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, ["default", "access"]);
    assert_eq!(groups.groups[1].members, ["10.0.0.1"]);
    assert_eq!(groups.groups[0].own.get("radiusSecret").unwrap(), "(set)");
    assert_eq!(show(&st, "10.9.9.9").await.unwrap_err().status, 404);
}

#[tokio::test]
async fn create_change_rename_and_delete_a_switch() {
    let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let w = create(
        &st,
        &admin(),
        body(r#"{"id": "10.0.1.0/24", "description": "floor 1", "registrationVlan": 5, "VlanMap": "N"}"#),
        None,
    )
    .await
    .unwrap();
    let sw = w.switch.unwrap();
    assert_eq!(sw.own.get("registrationVlan").unwrap(), "5");
    assert!(w.report.changed);
    assert!(st.shared.config().switches.get("10.0.1.0/24").is_some());
    // null inherits again; "(set)" keeps a secret.
    let w = update(
        &st,
        &admin(),
        "10.0.1.0/24",
        body(r#"{"registrationVlan": null, "radiusSecret": "(set)", "id": "10.0.2.0/24"}"#),
        Some(w.report.version.clone()),
    )
    .await
    .unwrap();
    let sw = w.switch.unwrap();
    assert_eq!(sw.id, "10.0.2.0/24");
    assert!(!sw.own.contains_key("registrationVlan"));
    assert_eq!(sw.resolved.get("registrationVlan").unwrap().from, "default");
    let text = fs::read_to_string(st.shared.config().conf_dir.join(FILE)).unwrap();
    assert!(
        text.contains("# Our switches — keep this comment\n"),
        "{text}"
    );
    assert!(
        text.contains("[10.0.2.0/24]\nVlanMap=N\ndescription=floor 1\n"),
        "{text}"
    );
    delete(&st, &admin(), "10.0.2.0/24", None).await.unwrap();
    assert!(st.shared.config().switches.get("10.0.2.0/24").is_none());
    assert_eq!(
        delete(&st, &admin(), "10.0.2.0/24", None)
            .await
            .unwrap_err()
            .status,
        404
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
    let path = st.shared.config().conf_dir.join(FILE);
    let before = fs::read(&path).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        // (id, body, field named)
        (
            "10.0.0.1",
            r#"{"registrationVlan": 5000}"#,
            "registrationVlan",
        ),
        ("10.0.0.1", r#"{"radiusSecret": "short"}"#, "radiusSecret"),
        (
            "10.0.0.1",
            r#"{"registrationVlna": "5"}"#,
            "registrationVlna",
        ),
        ("10.0.0.1", r#"{"nosuchroleVlan": "5"}"#, "nosuchroleVlan"),
        ("10.0.0.1", r#"{"group": "missing"}"#, "group"),
        ("10.0.0.1", r#"{"id": "not-an-ip"}"#, "id"),
    ];
    for (id, json, field) in cases {
        let e = update(&st, &admin(), id, body(json), None)
            .await
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 422, "{json}: {e}");
        assert!(
            e.errors.iter().any(|f| f.field == *field),
            "{json}: {:?}",
            e.errors
        );
        assert_eq!(fs::read(&path).unwrap(), before, "{json} wrote the file");
    }
    let e = create(&st, &admin(), body(r#"{"id": "default"}"#), None)
        .await
        .unwrap_err();
    assert_eq!(e.errors[0].field, "id");
    // A value of the wrong JSON type names the key.
    let e = update(
        &st,
        &admin(),
        "10.0.0.1",
        body(r#"{"registrationVlan": [1]}"#),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 422);
    assert_eq!(e.errors[0].field, "registrationVlan");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn groups_in_use_are_not_deleted_and_stale_versions_conflict() {
    let (_d, st) = state_with(&[("switches.conf", GROUPED)]).await;
    let e = delete_group(&st, &admin(), "access", None)
        .await
        .unwrap_err();
    assert_eq!(e.status.as_u16(), 409);
    assert!(e.message.contains("10.0.0.1"), "{e}");
    assert_eq!(
        delete_group(&st, &admin(), "default", None)
            .await
            .unwrap_err()
            .status
            .as_u16(),
        409
    );
    let read = list_groups(&st).await.unwrap().version;
    update_group(
        &st,
        &admin(),
        "default",
        body(r#"{"registrationVlan": 7}"#),
        Some(read.clone()),
    )
    .await
    .unwrap();
    let e = update_group(
        &st,
        &admin(),
        "access",
        body(r#"{"guestVlan": 41}"#),
        Some(read),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 409);
    let w = create_group(
        &st,
        &admin(),
        body(r#"{"id": "core", "defaultVlan": 100}"#),
        None,
    )
    .await
    .unwrap();
    assert_eq!(w.group.unwrap().own.get("defaultVlan").unwrap(), "100");
    update(
        &st,
        &admin(),
        "10.0.0.1",
        body(r#"{"group": "core", "defaultVlan": null}"#),
        None,
    )
    .await
    .unwrap();
    let sw = st.shared.config().switches.get("10.0.0.1").unwrap().clone();
    assert_eq!(
        sw.role_vlans.get("default").map(String::as_str),
        Some("100")
    );
    delete_group(&st, &admin(), "access", None).await.unwrap();
    let text = fs::read_to_string(st.shared.config().conf_dir.join(FILE)).unwrap();
    assert!(!text.contains("building A access switches"), "{text}");
}

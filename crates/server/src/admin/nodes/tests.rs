//! Devices and users through the service functions (the handlers are thin wrappers; the gate
//! is tested on every route by api/tests.rs), and the query/body extractors' errors.

use super::*;
use crate::admin::users;
use ironfence_admin::Role;

const ROLES: &str = "[staff]\nvlan = 20\n\n[guest]\nvlan = 30\n";

async fn state() -> (tempfile::TempDir, AdminState) {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), "", &[("roles.conf", ROLES)]);
    let shared = crate::test_support::shared_for(&conf).await;
    (dir, AdminState::new(shared, false))
}

fn operator() -> Principal {
    Principal {
        account: "alice".into(),
        role: Role::Operator,
        session: "s1".into(),
        client: "127.0.82.1".parse().unwrap(),
    }
}

fn mac(s: &str) -> Mac {
    Mac::parse(s).unwrap()
}

fn field_of(e: &ApiError) -> (u16, &str) {
    (
        e.status.as_u16(),
        e.errors.first().map(|f| f.field.as_str()).unwrap_or(""),
    )
}

fn new_node(mac: &str) -> CreateNode {
    CreateNode {
        mac: mac.into(),
        pid: None,
        status: None,
        role: None,
        unregdate: None,
        notes: None,
        computername: None,
    }
}

#[tokio::test]
async fn create_show_update_delete() {
    let (_d, st) = state().await;
    let who = operator();
    let created = create(
        &st,
        &who,
        CreateNode {
            pid: Some("bob".into()),
            role: Some("staff".into()),
            notes: Some("printer room 2".into()),
            computername: Some("PRN-2".into()),
            ..new_node("02-00-00-00-00-01")
        },
    )
    .await
    .unwrap();
    assert_eq!(created.mac, "02:00:00:00:00:01");
    assert_eq!(created.status, Status::Unreg);
    assert_eq!(created.pid, "bob");
    // Twice (another spelling of the same MAC): 409.
    let again = create(&st, &who, new_node("020000000001"))
        .await
        .unwrap_err();
    assert_eq!(again.status.as_u16(), 409);

    let m = mac("02:00:00:00:00:01");
    let changed = update(
        &st,
        &who,
        m,
        UpdateNode {
            role: Some(Some("guest".into())),
            status: Some(Status::Reg),
            notes: Some(None),
            ..UpdateNode::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(changed.node.role.as_deref(), Some("guest"));
    assert_eq!(changed.node.status, Status::Reg);
    assert!(changed.node.regdate.is_some());
    assert_eq!(changed.node.notes, None);
    assert_eq!(changed.node.computername.as_deref(), Some("PRN-2"));
    assert_eq!(changed.reevaluation, "scheduled");
    // What the RADIUS path reads follows.
    let view = st.shared.store.node_view(m).await.unwrap().unwrap();
    assert_eq!(view.node.role.as_deref(), Some("guest"));
    // Nothing the decision reads changed: no reevaluation.
    let same = update(
        &st,
        &who,
        m,
        UpdateNode {
            computername: Some(Some("PRN-3".into())),
            ..UpdateNode::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(same.reevaluation, "not-needed");

    assert_eq!(
        show(&st, m).await.unwrap().computername.as_deref(),
        Some("PRN-3")
    );
    delete(&st, &who, m).await.unwrap();
    assert_eq!(show(&st, m).await.unwrap_err().status.as_u16(), 404);
    assert_eq!(delete(&st, &who, m).await.unwrap_err().status.as_u16(), 404);
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let (_d, st) = state().await;
    let who = operator();
    let m = mac("02:00:00:00:00:02");
    st.shared.store.create_node_if_absent(m, 100).await.unwrap();
    let cases: Vec<(UpdateNode, &str)> = vec![
        (
            UpdateNode {
                role: Some(Some("nosuchrole".into())),
                ..UpdateNode::default()
            },
            "role",
        ),
        (
            UpdateNode {
                pid: Some(" bob".into()),
                ..UpdateNode::default()
            },
            "pid",
        ),
        (
            UpdateNode {
                unregdate: Some(Some(-5)),
                ..UpdateNode::default()
            },
            "unregdate",
        ),
        (
            UpdateNode {
                notes: Some(Some("x".repeat(5000))),
                ..UpdateNode::default()
            },
            "notes",
        ),
        (
            UpdateNode {
                computername: Some(Some("a\u{0}b".into())),
                ..UpdateNode::default()
            },
            "computername",
        ),
    ];
    for (u, field) in cases {
        let e = update(&st, &who, m, u).await.unwrap_err();
        assert_eq!(field_of(&e), (422, field), "{e}");
    }
    // Nothing was written by the refused updates.
    let row = show(&st, m).await.unwrap();
    assert_eq!((row.role, row.pid.as_str()), (None, "default"));

    let e = create(&st, &who, new_node("not-a-mac")).await.unwrap_err();
    assert_eq!(field_of(&e), (422, "mac"));
    let e = register(
        &st,
        &who,
        m,
        RegisterNode {
            access_duration: Some("forever".into()),
            ..RegisterNode::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(&e), (422, "access_duration"));
    let e = search(
        &st,
        NodeQuery {
            mac: Some("xyz".into()),
            ..NodeQuery::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(&e), (422, "mac"));
    let e = search(
        &st,
        NodeQuery {
            limit: Some(5000),
            ..NodeQuery::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(&e), (422, "limit"));
    // Unknown device: 404 for every per-device operation.
    let unknown = mac("02:00:00:00:00:99");
    assert_eq!(show(&st, unknown).await.unwrap_err().status.as_u16(), 404);
    assert_eq!(
        deregister(&st, &who, unknown)
            .await
            .unwrap_err()
            .status
            .as_u16(),
        404
    );
    assert_eq!(ips(&st, unknown).await.unwrap_err().status.as_u16(), 404);
    assert_eq!(path_mac("zz").unwrap_err().status.as_u16(), 404);
}

#[tokio::test]
async fn register_deregister_and_search() {
    let (_d, st) = state().await;
    let who = operator();
    for i in 1..=30u8 {
        st.shared
            .store
            .create_node_if_absent(Mac([2, 0, 0, 0, 1, i]), 1000 + i64::from(i))
            .await
            .unwrap();
    }
    let m = Mac([2, 0, 0, 0, 1, 7]);
    let r = register(
        &st,
        &who,
        m,
        RegisterNode {
            role: Some("staff".into()),
            pid: Some("carol".into()),
            access_duration: Some("1h".into()),
            ..RegisterNode::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.node.status, Status::Reg);
    let exp = r.node.unregdate.unwrap();
    assert!((exp - unix_now() - 3600).abs() < 5, "{exp}");
    assert_eq!(r.reevaluation, "scheduled");

    let page = search(
        &st,
        NodeQuery {
            status: Some(Status::Reg),
            ..NodeQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.nodes[0].mac, m.to_string());
    // 02:00:00:00:01:10 … 02:00:00:00:01:1e
    let page = search(
        &st,
        NodeQuery {
            mac: Some("02:00:00:00:01:1".into()),
            ..NodeQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 15);
    let page = search(
        &st,
        NodeQuery {
            sort: Some(SortKey::LastSeen),
            order: Some(Order::Desc),
            limit: Some(10),
            offset: Some(10),
            ..NodeQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 30);
    assert_eq!(page.nodes.len(), 10);
    assert_eq!(page.nodes[0].last_seen, Some(1020));
    let mine = users::devices(&st, "carol", NodeQuery::default())
        .await
        .unwrap();
    assert_eq!(mine.total, 1);

    let d = deregister(&st, &who, m).await.unwrap();
    assert_eq!(d.node.status, Status::Unreg);
    assert_eq!(d.node.role.as_deref(), Some("staff"), "kept for history");
    // A device that never authenticated: nothing to send the CoA to, 409 saying so.
    let e = reevaluate(&st, &who, m).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 409, "{e}");
    assert!(e.message.contains("no open location"), "{e}");
    // No audit records yet on a single server: an empty list, nobody missing.
    let dl = decisions(&st, m, DecisionQuery::default()).await.unwrap();
    assert!(dl.decisions.is_empty() && dl.missing.is_empty());
}

#[tokio::test]
async fn users_with_local_login() {
    let (_d, st) = state().await;
    let who = operator();
    let blank = |pid: &str| users::CreateUser {
        pid: pid.into(),
        firstname: None,
        lastname: None,
        email: None,
        notes: None,
        password: None,
        valid_from: None,
        expiration: None,
    };
    let u = users::create(
        &st,
        &who,
        users::CreateUser {
            firstname: Some("Dave".into()),
            email: Some("dave@example.org".into()),
            password: Some("correct horse".into()),
            expiration: Some(4_000_000_000),
            ..blank("dave")
        },
    )
    .await
    .unwrap();
    assert_eq!(
        u.local_login.as_ref().unwrap().expiration,
        Some(4_000_000_000)
    );
    let stored = st
        .shared
        .store
        .get_local_user("dave")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.password.starts_with("$argon2id$"));
    assert!(ironfence_portal::password::verify(
        &stored.password,
        "correct horse"
    ));
    let json = serde_json::to_string(&u).unwrap();
    assert!(
        !json.contains("argon2"),
        "the hash is never returned: {json}"
    );

    let e = users::create(&st, &who, blank("dave")).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 409);
    let e = users::update(
        &st,
        &who,
        "dave",
        users::UpdateUser {
            password: Some("short".into()),
            ..users::UpdateUser::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(&e), (422, "password"));
    let e = users::update(
        &st,
        &who,
        "dave",
        users::UpdateUser {
            email: Some(Some("nope".into())),
            ..users::UpdateUser::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(&e), (422, "email"));
    // The expiry changed alone keeps the hash.
    let u = users::update(
        &st,
        &who,
        "dave",
        users::UpdateUser {
            expiration: Some(None),
            lastname: Some(Some("Doe".into())),
            ..users::UpdateUser::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(u.lastname.as_deref(), Some("Doe"));
    assert_eq!(u.local_login.as_ref().unwrap().expiration, None);
    let again = st
        .shared
        .store
        .get_local_user("dave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.password, stored.password);

    let page = users::search(
        &st,
        users::UserQuery {
            q: Some("EXAMPLE.org".into()),
            ..users::UserQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.users[0].pid, "dave");

    // An owner of devices cannot be deleted; once they own none, they can.
    let m = mac("02:00:00:00:00:03");
    st.shared
        .store
        .register_node(m, "dave", "staff", None, 5)
        .await
        .unwrap();
    assert_eq!(users::show(&st, "dave").await.unwrap().nodes, 1);
    let e = users::delete(&st, &who, "dave").await.unwrap_err();
    assert_eq!(e.status.as_u16(), 409, "{e}");
    delete(&st, &who, m).await.unwrap();
    users::update(
        &st,
        &who,
        "dave",
        users::UpdateUser {
            local_login: Some(false),
            ..users::UpdateUser::default()
        },
    )
    .await
    .unwrap();
    assert!(
        st.shared
            .store
            .get_local_user("dave")
            .await
            .unwrap()
            .is_none()
    );
    users::delete(&st, &who, "dave").await.unwrap();
    assert_eq!(
        users::show(&st, "dave").await.unwrap_err().status.as_u16(),
        404
    );
    assert_eq!(
        users::delete(&st, &who, "default")
            .await
            .unwrap_err()
            .status
            .as_u16(),
        409
    );
}

#[test]
fn bad_queries_and_bodies_name_the_field() {
    use crate::admin::json::{parse, parse_query};
    let e = parse_query::<NodeQuery>("status=gone").unwrap_err();
    assert_eq!(field_of(&e), (422, "status"));
    let e = parse_query::<NodeQuery>("sort=colour").unwrap_err();
    assert_eq!(field_of(&e), (422, "sort"));
    let e = parse_query::<NodeQuery>("limit=-1").unwrap_err();
    assert_eq!(field_of(&e), (422, "limit"));
    let e = parse_query::<NodeQuery>("vlan=3").unwrap_err();
    assert_eq!(field_of(&e), (422, "vlan"));
    let q = parse_query::<NodeQuery>("mac=aa%3Abb&sort=last_seen&order=desc").unwrap();
    assert_eq!(q.mac.as_deref(), Some("aa:bb"));
    assert_eq!(q.sort, Some(SortKey::LastSeen));
    let e = parse::<UpdateNode>(br#"{"status": "registered!"}"#).unwrap_err();
    assert_eq!(field_of(&e), (422, "status"));
    let e = parse::<UpdateNode>(br#"{"vlan": 3}"#).unwrap_err();
    assert_eq!(e.status.as_u16(), 422);
    let u = parse::<UpdateNode>(br#"{"role": null}"#).unwrap();
    assert_eq!(u.role, Some(None), "null clears, absent leaves");
    assert_eq!(parse::<UpdateNode>(b"{}").unwrap().role, None);
}

//! Administration cases of the store suite (both backends): node search, node update with its
//! change-log row, people.

use super::{T0, mac, open};
use ironfence_core::{Node, NodeStatus};
use ironfence_store::admin_nodes::{
    NodeRow, NodeSearch, NodeSort, NodeUpdate, PersonDelete, PersonSearch,
};
use ironfence_store::portal::LocalUser;
use ironfence_store::{Person, StoreConfig};

fn row(i: u32, status: NodeStatus, role: Option<&str>, pid: &str) -> NodeRow {
    NodeRow {
        node: Node {
            mac: mac(i),
            status,
            role: role.map(str::to_string),
            pid: pid.into(),
            regdate: (status == NodeStatus::Registered).then_some(T0 + i64::from(i % 7)),
            unregdate: None,
            last_seen: Some(T0 + i64::from(i)),
            notes: i
                .is_multiple_of(10)
                .then(|| format!("Floor {} 100%_sure", i / 10)),
        },
        computername: i.is_multiple_of(4).then(|| format!("LAPTOP-{i:04}")),
        detect_date: Some(T0),
    }
}

pub async fn admin_node_search_filters_sort_and_page(cfg: StoreConfig) {
    let store = open(&cfg).await;
    // 200 devices: every third registered as staff to alice, the rest unregistered.
    for i in 1..=200u32 {
        let r = if i.is_multiple_of(3) {
            row(i, NodeStatus::Registered, Some("staff"), "alice")
        } else {
            row(i, NodeStatus::Unregistered, None, "default")
        };
        assert!(store.create_node(&r, T0).await.unwrap());
    }
    assert!(
        !store
            .create_node(&row(5, NodeStatus::Registered, None, "x"), T0)
            .await
            .unwrap(),
        "an existing MAC is not overwritten"
    );
    assert_eq!(
        store.get_node_row(mac(5)).await.unwrap().unwrap().node.pid,
        "default"
    );
    let search = |s: NodeSearch| {
        let store = store.clone();
        async move { store.search_nodes(&s).await.unwrap() }
    };
    let all = search(NodeSearch::default()).await;
    assert_eq!((all.total, all.nodes.len()), (200, 50));
    assert_eq!(all.nodes[0].node.mac, mac(1));
    assert_eq!(all.nodes[0].detect_date, Some(T0));

    let reg = search(NodeSearch {
        status: Some(NodeStatus::Registered),
        role: Some("staff".into()),
        pid: Some("alice".into()),
        limit: 1000,
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(reg.total, 66);
    assert!(
        reg.nodes
            .iter()
            .all(|r| r.node.status == NodeStatus::Registered
                && r.node.role.as_deref() == Some("staff")
                && r.node.pid == "alice"
                && r.node.mac.0[5].is_multiple_of(3))
    );

    // mac(i) = 02:00:00:00:00:xx for i < 256: the prefix 02:00:00:00:00:1 names 0x10..0x1f.
    let p = search(NodeSearch {
        mac_prefix: Some("0200.0000.001".into()),
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(p.total, 16);
    assert!(
        p.nodes
            .iter()
            .all(|r| (0x10..=0x1f).contains(&r.node.mac.0[5]))
    );
    let c = search(NodeSearch {
        mac_contains: Some("C8".into()),
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(c.total, 1, "only 0xc8 = 200");

    // Text: computer names and notes, case-insensitive, LIKE metacharacters literal.
    let t = search(NodeSearch {
        text: Some("laptop-01".into()),
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(t.total, 25, "LAPTOP-0100 … LAPTOP-0196 (every 4th)");
    let t = search(NodeSearch {
        text: Some("100%_".into()),
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(t.total, 20);
    let t = search(NodeSearch {
        text: Some("0%s".into()),
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(t.total, 0, "% is not a wildcard");

    // Last seen range, sorted newest first, paged without overlap.
    let w = NodeSearch {
        seen_since: Some(T0 + 101),
        seen_until: Some(T0 + 151),
        sort: NodeSort::LastSeen,
        descending: true,
        limit: 20,
        ..NodeSearch::default()
    };
    let p1 = search(w.clone()).await;
    let p2 = search(NodeSearch {
        offset: 20,
        ..w.clone()
    })
    .await;
    let p3 = search(NodeSearch { offset: 40, ..w }).await;
    assert_eq!((p1.total, p1.nodes.len(), p3.nodes.len()), (50, 20, 10));
    assert_eq!(p1.nodes[0].node.last_seen, Some(T0 + 150));
    let seen: std::collections::HashSet<_> = p1
        .nodes
        .iter()
        .chain(&p2.nodes)
        .chain(&p3.nodes)
        .map(|r| r.node.mac)
        .collect();
    assert_eq!(seen.len(), 50);
    // Regdate order: registered nodes (NULLs first ascending, as both backends sort them).
    let r = search(NodeSearch {
        sort: NodeSort::Regdate,
        descending: true,
        limit: 3,
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(r.nodes[0].node.regdate, Some(T0 + 6));
    // Oversized limits are capped.
    let big = search(NodeSearch {
        limit: 5000,
        ..NodeSearch::default()
    })
    .await;
    assert_eq!(big.nodes.len(), 200);

    if matches!(cfg, StoreConfig::Sqlite { .. }) {
        // The indexed paths (MariaDB's choices depend on table statistics; the benchmark
        // prints its EXPLAIN over 100k rows).
        let plan = |s: NodeSearch| {
            let store = store.clone();
            async move { store.explain_node_search(&s).await.unwrap().join("; ") }
        };
        let p = plan(NodeSearch {
            mac_prefix: Some("02:00".into()),
            ..NodeSearch::default()
        })
        .await;
        assert!(p.contains("PRIMARY KEY (mac>? AND mac<?)"), "{p}");
        let p = plan(NodeSearch {
            sort: NodeSort::LastSeen,
            descending: true,
            ..NodeSearch::default()
        })
        .await;
        assert!(
            p.contains("node_last_seen") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
        let p = plan(NodeSearch {
            status: Some(NodeStatus::Registered),
            sort: NodeSort::LastSeen,
            descending: true,
            ..NodeSearch::default()
        })
        .await;
        assert!(
            p.contains("node_status_last_seen") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
        let p = plan(NodeSearch {
            pid: Some("alice".into()),
            ..NodeSearch::default()
        })
        .await;
        assert!(p.contains("node_pid"), "{p}");
    }
    store.close().await;
}

pub async fn admin_node_update_logs_a_change(cfg: StoreConfig) {
    let store = open(&cfg).await;
    let m = mac(1);
    store.create_node_if_absent(m, T0).await.unwrap();
    let floor = store.changes_since(0).await.unwrap().last().unwrap().0;
    let u = NodeUpdate {
        role: Some(Some("staff".into())),
        status: Some(NodeStatus::Registered),
        pid: Some("newowner".into()),
        computername: Some(Some("PC-1".into())),
        unregdate: Some(Some(T0 + 3600)),
        ..NodeUpdate::default()
    };
    let (before, after) = store.update_node(m, &u, T0 + 10).await.unwrap().unwrap();
    assert_eq!(before.node.status, NodeStatus::Unregistered);
    assert_eq!(after.node.status, NodeStatus::Registered);
    assert_eq!(after.node.regdate, Some(T0 + 10));
    assert_eq!(after.node.pid, "newowner");
    assert_eq!(after.computername.as_deref(), Some("PC-1"));
    assert!(
        store.get_person("newowner").await.unwrap().is_some(),
        "owner created"
    );
    // The RADIUS path's view and the change log (what every server's cache polls).
    let v = store.node_view(m).await.unwrap().unwrap();
    assert_eq!(v.node.role.as_deref(), Some("staff"));
    assert_eq!(v.node.unregdate, Some(T0 + 3600));
    let changes = store.changes_since(floor).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.1).collect::<Vec<_>>(), vec![m]);
    // An update that changes nothing writes nothing.
    let (b, a) = store
        .update_node(
            m,
            &NodeUpdate {
                computername: Some(Some("PC-1".into())),
                ..NodeUpdate::default()
            },
            T0 + 20,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(store.changes_since(floor).await.unwrap().len(), 1);
    // Clearing.
    let (_, a) = store
        .update_node(
            m,
            &NodeUpdate {
                role: Some(None),
                unregdate: Some(None),
                ..NodeUpdate::default()
            },
            T0 + 30,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.node.role, a.node.unregdate), (None, None));
    assert!(store.update_node(mac(99), &u, T0).await.unwrap().is_none());
    store.close().await;
}

pub async fn admin_people_search_and_delete(cfg: StoreConfig) {
    let store = open(&cfg).await;
    for (pid, first, email) in [
        ("alice", "Alice", "alice@example.org"),
        ("bob", "Bob", "bob@corp.example"),
        ("carol", "Carol", "carol@example.org"),
    ] {
        let p = Person {
            pid: pid.into(),
            firstname: Some(first.into()),
            email: Some(email.into()),
            ..Person::default()
        };
        assert!(store.create_person(&p, T0).await.unwrap());
    }
    assert!(!store.create_person(&Person::new("bob"), T0).await.unwrap());
    store
        .upsert_local_user(
            &LocalUser {
                pid: "carol".into(),
                password: "$argon2id$fixture".into(),
                nt_hash: None,
                valid_from: None,
                expiration: Some(T0 + 60),
            },
            T0,
        )
        .await
        .unwrap();
    store
        .register_node(mac(1), "bob", "staff", None, T0)
        .await
        .unwrap();
    let page = store
        .search_persons(&PersonSearch {
            text: Some("EXAMPLE.ORG".into()),
            ..PersonSearch::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(
        page.people
            .iter()
            .map(|p| p.person.pid.as_str())
            .collect::<Vec<_>>(),
        ["alice", "carol"]
    );
    let carol = &page.people[1];
    assert_eq!(carol.local_user.unwrap().expiration, Some(T0 + 60));
    assert_eq!(page.people[0].local_user, None);
    let all = store
        .search_persons(&PersonSearch::default())
        .await
        .unwrap();
    assert_eq!(all.total, 4, "with default");
    let bob = store.get_person_row("bob").await.unwrap().unwrap();
    assert_eq!((bob.nodes, bob.created_at), (1, Some(T0)));

    assert_eq!(
        store.delete_person("bob").await.unwrap(),
        PersonDelete::OwnsNodes(1)
    );
    assert_eq!(
        store.delete_person("default").await.unwrap(),
        PersonDelete::Protected
    );
    assert_eq!(
        store.delete_person("nobody").await.unwrap(),
        PersonDelete::NotFound
    );
    assert_eq!(
        store.delete_person("carol").await.unwrap(),
        PersonDelete::Deleted
    );
    assert!(
        store.get_local_user("carol").await.unwrap().is_none(),
        "login went with it"
    );
    assert!(store.get_person_row("carol").await.unwrap().is_none());
    assert!(!store.delete_local_user("alice").await.unwrap());
    store.close().await;
}

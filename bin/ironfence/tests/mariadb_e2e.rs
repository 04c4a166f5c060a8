//! The daemon on its second backend: a real `mariadbd` (started by the test, killed by PID),
//! driven by `radclient`. Same behaviour as on SQLite.

mod common;

use common::*;
use ironfence_testkit::MariaDb;
use std::time::Duration;

#[test]
fn mab_registration_and_accounting_on_mariadb() {
    let db = MariaDb::start().expect("start mariadbd (apt-get install mariadb-server)");
    db.create_database("ironfence_e2e").unwrap();
    let d = DaemonBuilder::default()
        .database(&format!(
            "[database]\ntype=mysql\nhost={}\nport={}\nuser={}\npass={}\ndb=ironfence_e2e\n",
            db.host(),
            db.port(),
            db.user(),
            db.password()
        ))
        .start();
    assert!(d.log().contains("store=\"mysql\""), "{}", d.log());
    let mab = |mac: &str| {
        format!(
            "User-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nService-Type = Call-Check\nMessage-Authenticator = 0x00\n"
        )
    };
    let mac = "02:00:00:00:db:01";
    let r = radclient(d.auth_port, "auth", SECRET, &mab(mac));
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("2"));
    let o = d.cli(&["node", "register", mac, "--role", "guest"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        radclient(d.auth_port, "auth", SECRET, &mab(mac)).vlan(),
        Some("210")
    );
    let r = radclient(
        d.acct_port,
        "acct",
        SECRET,
        &format!(
            "Acct-Status-Type = Start\nCalling-Station-Id = \"{mac}\"\nNAS-Port = 4\nAcct-Session-Id = \"db-1\"\n"
        ),
    );
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
    let show = stdout(&d.cli(&["node", "show", mac]));
    assert!(
        show.contains("status:     reg") && show.contains("session db-1"),
        "{show}"
    );
    // Every request is audited: the two Access-Requests and the Accounting-Request.
    eventually("audit records written to MariaDB", || {
        d.metric("ironfence_audit_records_total{outcome=\"written\"}") == 3.0
    });
}

/// Issue 8, the node read cache: two servers on one database. Each answers repeated requests
/// from its cache; a change made through the other server (its CLI writes the change log) is
/// visible on this one within 1 s, without a restart or a reload — the cluster invariant.
#[test]
fn a_change_made_through_another_server_reaches_this_servers_cache_within_a_second() {
    let db = MariaDb::start().expect("start mariadbd (apt-get install mariadb-server)");
    db.create_database("ironfence_cache").unwrap();
    let database = format!(
        "[database]\ntype=mysql\nhost={}\nport={}\nuser={}\npass={}\ndb=ironfence_cache\n",
        db.host(),
        db.port(),
        db.user(),
        db.password()
    );
    let a = DaemonBuilder::default().database(&database).start();
    let b = DaemonBuilder::default().database(&database).start();
    let mab = |mac: &str| {
        format!(
            "User-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nService-Type = Call-Check\nMessage-Authenticator = 0x00\n"
        )
    };
    let mac = "02:00:00:00:db:c1";
    // Known to both servers as unregistered, and cached by A (its own creation of the node
    // row comes back through the change log once, so the first answers may be misses).
    eventually("A answers from its cache", || {
        assert_eq!(
            radclient(a.auth_port, "auth", SECRET, &mab(mac)).vlan(),
            Some("2")
        );
        a.metric("ironfence_node_cache_hits_total") >= 1.0
    });

    // Registered through B: A answers the role's VLAN within 1 s.
    let o = b.cli(&["node", "register", mac, "--role", "guest"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let changed = std::time::Instant::now();
    eventually("A answers the new role's VLAN", || {
        radclient(a.auth_port, "auth", SECRET, &mab(mac)).vlan() == Some("210")
    });
    let seen_after = changed.elapsed();
    assert!(
        seen_after < Duration::from_secs(1),
        "A saw the registration after {seen_after:?}"
    );
    // Isolated through B: A moves it to the isolation VLAN, again within 1 s.
    let o = b.cli(&["node", "isolate", mac]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let changed = std::time::Instant::now();
    eventually("A answers the isolation VLAN", || {
        radclient(a.auth_port, "auth", SECRET, &mab(mac)).vlan() == Some("3")
    });
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "{:?}",
        changed.elapsed()
    );
    assert!(a.metric("ironfence_node_cache_invalidations_total") >= 2.0);
}

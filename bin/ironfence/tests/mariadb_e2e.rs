//! The daemon on its second backend: a real `mariadbd` (started by the test, killed by PID),
//! driven by `radclient`. Same behaviour as on SQLite.

mod common;

use common::*;
use ironfence_testkit::MariaDb;

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
    eventually("audit records written to MariaDB", || {
        d.metric("ironfence_audit_records_total{outcome=\"written\"}") == 2.0
    });
}

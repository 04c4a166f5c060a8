//! CoA / Disconnect in a cluster (three hosts in network namespaces, real Galera): a device
//! authenticated by one member is reevaluated from another (the location log is shared), the
//! request leaves from an address the switch knows — the sender's management address by
//! default, the management VIP with `coaSource = vip` when the sender holds it, its own
//! address otherwise — and the NAS stand-in, in the switch namespace, verifies its signature.

#[path = "common/galera_lab.rs"]
mod galera_lab;

use galera_lab::{Fixture, GaleraLab, eventually, ok, radclient_mab, text};
use ironfence_radius::{Code, dict};
use ironfence_testkit::nas::{NasConfig, NasStandIn};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// TEST FIXTURE secrets, only for this test.
const SECRET: &str = "radius-coa-cluster-test-fixture-secret";
const FIXTURE: Fixture = Fixture {
    ws_user: "ws-coa-cluster",
    ws_pass: "ws-coa-cluster-test-fixture-password-01",
    db_pass: "db-coa-cluster-test-fixture-password-01",
    sst_pass: "sst-coa-cluster-test-fixture-password-01",
    secret: SECRET,
    vrrp_pass: "coa-vrrp-fixture",
};

fn sql(g: &GaleraLab, i: usize, q: &str) -> String {
    galera_lab::sql_at(&g.socket(i), "pf", q).unwrap_or_default()
}

#[test]
fn reevaluation_from_any_member_reaches_the_switch_from_an_address_it_knows() {
    let mut g = GaleraLab::new(3, FIXTURE);
    g.bring_up(|_, _| {});
    let lab_switch = g.lab.switch_ip();
    let mac = "02:00:00:00:74:61";

    // The switch authenticates the device with pf2; it sends no accounting.
    let (code, vlan) = radclient_mab(
        g.lab.switch_command("radclient"),
        g.lab.host_ip(1),
        SECRET,
        "3",
        mac,
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{}", g.logs());
    assert_eq!(vlan.as_deref(), Some("2"));
    // pf2 recorded where the device is (in the background); pf1 reads it from the cluster.
    let open =
        format!("SELECT switch_ip FROM locationlog WHERE mac = '{mac}' AND end_time IS NULL");
    eventually(
        "the location recorded at Access-Accept, seen on pf1",
        Duration::from_secs(20),
        || sql(&g, 0, &open) == lab_switch.to_string(),
        || g.logs(),
    );

    // The switch's dynamic-authorization server, in the switch namespace.
    let to = SocketAddr::from((lab_switch, 3799));
    let nas: NasStandIn = g
        .lab
        .in_namespace(g.lab.switch_ns(), move || {
            NasStandIn::start(to, NasConfig::new(SECRET.as_bytes()))
        })
        .unwrap()
        .expect("NAS stand-in in the switch namespace");

    // pf1 registers and reevaluates: generic switch → Disconnect-Request, from pf1's
    // management address.
    let out = g.cli(0, &["node", "register", mac, "--role", "default"]);
    assert!(ok(&out), "{}", text(&out));
    let out = g.cli(0, &["node", "reevaluate", mac]);
    assert!(ok(&out), "{}\n{}", text(&out), g.logs());
    assert!(text(&out).contains("disconnect: ACK"), "{}", text(&out));
    let got = nas.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].verdict, Ok(()), "signed with the switch's secret");
    assert_eq!(got[0].code(), Some(Code::DisconnectRequest));
    assert_eq!(got[0].from.ip(), IpAddr::V4(g.lab.host_ip(0)));
    assert_eq!(
        got[0].packet().unwrap().get_str(dict::CALLING_STATION_ID),
        Some(mac)
    );

    // pf3 with coaSource = vip (a local change, reloaded): without the VIP it sends from its
    // own management address; holding it, from the VIP.
    let conf = g.roots[2].join("conf/switches.conf");
    let mut switches = std::fs::read_to_string(&conf).unwrap();
    switches.push_str("coaSource = vip\n");
    std::fs::write(&conf, switches).unwrap();
    let out = g.cli(2, &["configreload"]);
    assert!(ok(&out), "{}", text(&out));
    let out = g.cli(2, &["node", "reevaluate", mac]);
    assert!(ok(&out), "{}\n{}", text(&out), g.logs());
    let vip = g.lab.vip(0);
    let add = g
        .lab
        .command(2, "ip")
        .args(["addr", "add", &format!("{vip}/32"), "dev", "eth0"])
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let out = g.cli(2, &["node", "reevaluate", mac]);
    assert!(ok(&out), "{}\n{}", text(&out), g.logs());
    let from: Vec<IpAddr> = nas.received().iter().map(|r| r.from.ip()).collect();
    assert_eq!(
        from,
        vec![
            IpAddr::V4(g.lab.host_ip(0)),
            IpAddr::V4(g.lab.host_ip(2)),
            IpAddr::V4(vip)
        ]
    );
    assert!(nas.received().iter().all(|r| r.verdict.is_ok()));

    // The switch authenticates the device again, with any member: the role's VLAN.
    let (_, vlan) = radclient_mab(
        g.lab.switch_command("radclient"),
        g.lab.host_ip(2),
        SECRET,
        "3",
        mac,
    );
    assert_eq!(vlan.as_deref(), Some("100"), "{}", g.logs());
}

//! 802.1X on a three-server cluster (real Galera in network namespaces):
//!
//! * the first server creates the 802.1X PKI and the session-ticket key in `conf/ssl`; the
//!   others receive them with the configuration (`cluster sync --from`), byte for byte;
//! * a local user added on one server logs in with PEAP-MSCHAPv2 on every server (the NT
//!   hash is in the replicated database);
//! * a device that logged in on pf1 resumes its TLS session on pf2 and on pf3 (tickets sealed
//!   with the shared key), TLS 1.3 and TLS 1.2;
//! * through the management VIP and the RADIUS load balancer, real `eapol_test` logins
//!   succeed: every round of a conversation reaches the one backend that holds its State.

#[path = "common/galera_lab.rs"]
mod galera_lab;

use galera_lab::{Fixture, GaleraLab, eventually, name, ok, text};
use ironfence_loadgen::eap::{Device, EapConfig, Method, TlsVersions, tls_config};
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

/// TEST FIXTURE secrets, only for this test.
const SECRET: &str = "radius-eap-cluster-test-fixture-secret";
const FIXTURE: Fixture = Fixture {
    ws_user: "ws-eap-cluster",
    ws_pass: "ws-eap-cluster-test-fixture-password-01",
    db_pass: "db-eap-cluster-test-fixture-password-01",
    sst_pass: "sst-eap-cluster-test-fixture-password-01",
    secret: SECRET,
    vrrp_pass: "eapcl-vrrp-fixture",
};
const ALICE_PASSWORD: &str = "eap-cluster-fixture-Passw0rd";

fn peap_config(g: &GaleraLab, servers: Vec<SocketAddrV4>, tls: TlsVersions) -> EapConfig {
    let ca_pem = std::fs::read(g.roots[0].join("conf/ssl/ca.pem")).unwrap();
    EapConfig {
        servers,
        bind_ip: g.lab.switch_ip(),
        secret: SECRET.as_bytes().to_vec(),
        method: Method::Peap,
        tls,
        resume: true,
        session_id_only: false,
        identity: "alice".into(),
        password: ALICE_PASSWORD.into(),
        ca_pem,
        client_cert_pem: None,
        client_key_pem: None,
        // The certificate pf1 created is for its own name (eap.conf server_name).
        server_name: name(0),
        concurrency: 1,
        warmup: Duration::ZERO,
        duration: Duration::ZERO,
        timeout: Duration::from_secs(2),
        retries: 2,
        nas_ip: g.lab.switch_ip(),
        fragment_size: 1000,
        verbose: false,
        json: false,
    }
}

#[test]
fn peap_on_every_server_resumes_across_servers_and_works_through_the_vip() {
    let mut g = GaleraLab::new(3, FIXTURE);
    // Synced from pf1 with the rest of its configuration.
    std::fs::write(
        g.roots[0].join("conf/authentication.conf"),
        "[local]\ntype = SQL\ndescription = Staff accounts\n\n\
         [local rule staff]\naction0 = set_role = guest\naction1 = set_access_duration = 5D\n",
    )
    .unwrap();
    g.bring_up(|_, _| {});

    // The PKI and ticket key pf1 made at its start reached pf2 and pf3 unchanged.
    for f in [
        "ssl/ca.pem",
        "ssl/server.crt",
        "ssl/server.key",
        "ssl/eap-ticket.key",
    ] {
        let first = std::fs::read(g.roots[0].join("conf").join(f)).unwrap();
        for i in 1..3 {
            let other = std::fs::read(g.roots[i].join("conf").join(f))
                .unwrap_or_else(|e| panic!("{} conf/{f}: {e}", name(i)));
            assert_eq!(other, first, "{} conf/{f} is pf1's", name(i));
        }
    }

    let pw = g.roots[0].join("alice.pw");
    std::fs::write(&pw, format!("{ALICE_PASSWORD}\n")).unwrap();
    let o = g.cli(
        0,
        &[
            "user",
            "add",
            "alice",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(ok(&o), "{}", text(&o));

    let servers: Vec<SocketAddrV4> = (0..3)
        .map(|i| SocketAddrV4::new(g.lab.host_ip(i), 1812))
        .collect();
    for (tls, device) in [(TlsVersions::V13, 1u32), (TlsVersions::V12, 2)] {
        let cfg = Arc::new(peap_config(&g, servers.clone(), tls));
        let logins = g
            .lab
            .in_namespace(g.lab.switch_ns(), move || {
                let shared = Arc::new(tls_config(&cfg).unwrap());
                // Device n's login k goes to server (n + k) mod 3: every server in turn.
                let mut d = Device::new(cfg, &shared, device * 3).unwrap();
                (0..3).map(|_| d.login()).collect::<Vec<_>>()
            })
            .unwrap();
        for (k, l) in logins.iter().enumerate() {
            let l = l
                .as_ref()
                .unwrap_or_else(|e| panic!("{tls:?} login {k}: {e:?}\n{}", g.logs()));
            assert_eq!(l.server, servers[k], "{tls:?} login {k}");
            assert_eq!(l.tls13, tls == TlsVersions::V13);
            if k == 0 {
                assert!(!l.resumed, "{tls:?}: the first login is a full handshake");
            } else {
                assert!(
                    l.offered_resumption && l.resumed,
                    "{tls:?}: login {k} on {} resumed pf1's session: {l:?}",
                    name(k)
                );
            }
        }
    }

    // Through the VIP (put on pf1 by hand, as keepalived would): pf1's balancer places each
    // conversation on one backend by Calling-Station-Id; real eapol_test logins succeed.
    let vip = g.lab.vip(0);
    let out = g
        .lab
        .command(0, "ip")
        .args(["addr", "add", &format!("{vip}/32"), "dev", "eth0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = g.lab.dir().join("eapol-vip.conf");
    std::fs::write(
        &conf,
        format!(
            "network={{\nkey_mgmt=WPA-EAP\neap=PEAP\nidentity=\"alice\"\n\
             password=\"{ALICE_PASSWORD}\"\nca_cert=\"{}\"\nphase2=\"auth=MSCHAPV2\"\n}}\n",
            g.roots[0].join("conf/ssl/ca.pem").display()
        ),
    )
    .unwrap();
    let eapol = |mac: &str| {
        let out = g
            .lab
            .switch_command("eapol_test")
            .args([
                "-c",
                conf.to_str().unwrap(),
                "-a",
                &vip.to_string(),
                "-p",
                "1812",
            ])
            .args(["-s", SECRET, "-t", "10", "-M", mac])
            .output()
            .expect("eapol_test (Debian eapoltest)");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    eventually(
        "a PEAP login through the VIP",
        Duration::from_secs(20),
        || eapol("02:00:00:0f:00:00").contains("SUCCESS"),
        || g.logs(),
    );
    for n in 1..=12u8 {
        let mac = format!("02:00:00:0f:00:{n:02x}");
        let out = eapol(&mac);
        assert!(
            out.contains("SUCCESS") && out.contains("MPPE keys OK"),
            "{mac} through the VIP:\n{}\n{}",
            galera_lab::tail(&out, 40),
            g.logs()
        );
    }
    // pf1's balancer placed those conversations on more than one backend (its metrics:
    // `local` for itself, `answered` for a peer's replies).
    let metrics = {
        let url = format!("http://{}:9101/metrics", g.lab.host_ip(0));
        let out = g
            .lab
            .command(0, "curl")
            .args(["-sS", "--max-time", "3", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let placed = |i: usize| -> f64 {
        let outcome = if i == 0 { "local" } else { "answered" };
        let series = format!(
            "ironfence_lb_backend_requests_total{{backend=\"{}\",outcome=\"{outcome}\"}} ",
            name(i)
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    };
    let used = (0..3).filter(|&i| placed(i) > 0.0).count();
    assert!(
        used >= 2,
        "conversations spread over the backends:\n{metrics}"
    );
}

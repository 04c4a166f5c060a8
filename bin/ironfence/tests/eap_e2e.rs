//! 802.1X against the real supplicant: `eapol_test` (wpa_supplicant, Debian `eapoltest`) logs
//! in to a real `ironfence serve` with EAP-TLS, PEAP-MSCHAPv2, EAP-TTLS (PAP, MSCHAPv2) over
//! TLS 1.2 and TLS 1.3, and checks the MS-MPPE keys against its own ("MPPE keys OK").
//! The PKI (CA, server, client certificates, CRL) is made at test time with rcgen.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// TEST FIXTURE password, only for these tests.
const ALICE_PASSWORD: &str = "eap-test-fixture-Passw0rd";

/// The test PKI: a CA the server trusts for client certificates, a second CA it does not.
struct Pki {
    dir: PathBuf,
}

fn pem_write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

impl Pki {
    fn make(dir: &Path) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
            ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose,
            RevokedCertParams, SerialNumber,
        };
        std::fs::create_dir_all(dir).unwrap();
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let key = KeyPair::generate().unwrap();
            let cert = p.self_signed(&key).unwrap();
            (rcgen::Issuer::new(p, key), cert)
        };
        let (issuer, ca_cert) = ca("ironfence test CA");
        let (other_issuer, _) = ca("untrusted test CA");
        pem_write(&dir.join("ca.pem"), &ca_cert.pem());
        let leaf = |name: &str,
                    issuer: &rcgen::Issuer<'_, KeyPair>,
                    server: bool,
                    serial: u64,
                    not_after: Option<time::OffsetDateTime>| {
            let mut p = CertificateParams::new(vec![format!("{name}.example")]).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.serial_number = Some(SerialNumber::from(serial));
            p.extended_key_usages = vec![if server {
                ExtendedKeyUsagePurpose::ServerAuth
            } else {
                ExtendedKeyUsagePurpose::ClientAuth
            }];
            if let Some(t) = not_after {
                p.not_before = t - time::Duration::days(30);
                p.not_after = t;
            }
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, issuer).unwrap();
            pem_write(&dir.join(format!("{name}.crt")), &cert.pem());
            pem_write(&dir.join(format!("{name}.key")), &key.serialize_pem());
        };
        leaf("server", &issuer, true, 1, None);
        leaf("laptop-7", &issuer, false, 2, None);
        leaf("revoked", &issuer, false, 3, None);
        leaf(
            "expired",
            &issuer,
            false,
            4,
            Some(time::OffsetDateTime::now_utc() - time::Duration::days(2)),
        );
        leaf("stranger", &other_issuer, false, 5, None);
        let crl = CertificateRevocationListParams {
            this_update: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
            next_update: time::OffsetDateTime::now_utc() + time::Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(3u64),
                revocation_time: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        pem_write(&dir.join("crl.pem"), &crl.pem().unwrap());
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A daemon with 802.1X configured: server certificate from the test CA, local user alice
/// (role staff by the rule), EAP-TLS certificates mapped to role `default` by CN.
fn eap_daemon(extra_eap: &str) -> (Daemon, Pki) {
    eap_daemon_on(extra_eap, "")
}

/// `switch_extra`: more keys for the switch section of 127.0.0.1.
fn eap_daemon_on(extra_eap: &str, switch_extra: &str) -> (Daemon, Pki) {
    eap_daemon_with(|b| b, extra_eap, switch_extra)
}

/// `builder`: more settings of the daemon (its database).
fn eap_daemon_with(
    builder: impl FnOnce(DaemonBuilder) -> DaemonBuilder,
    extra_eap: &str,
    switch_extra: &str,
) -> (Daemon, Pki) {
    let pki_dir = tempfile::tempdir().unwrap().keep();
    let pki = Pki::make(&pki_dir);
    let read = |n: &str| std::fs::read_to_string(pki.dir.join(n)).unwrap();
    let d = builder(DaemonBuilder::default())
        .switches(&format!(
            "[default]\nregistrationVlan=2\nisolationVlan=3\ndefaultVlan=100\nguestVlan=200\n\n\
             [127.0.0.1]\ndescription=e2e switch\nradiusSecret={SECRET}\n\
             require_message_authenticator=yes\nguestVlan=210\n{switch_extra}"
        ))
        .file("ssl/server.crt", &read("server.crt"))
        .file("ssl/server.key", &read("server.key"))
        .file("ssl/ca.pem", &read("ca.pem"))
        .file("ssl/crl.pem", &read("crl.pem"))
        .file(
            "eap.conf",
            &format!(
                "[eap]\nmethods = peap, tls, ttls\ncrl = ssl/crl.pem\npassword_sources = local\n\
                 certificate_source = certs\n{extra_eap}"
            ),
        )
        .file(
            "authentication.conf",
            "[local]\ntype = SQL\ndescription = Staff accounts\n\n\
             [local rule staff]\naction0 = set_role = guest\naction1 = set_access_duration = 5D\n\n\
             [certs]\ntype = EAPTLS\ndescription = Company laptops\n\n\
             [certs rule laptops]\ncondition0 = cn,starts,laptop-\n\
             action0 = set_role = default\naction1 = set_access_duration = 30D\n",
        )
        .start();
    let pw = d.dir.path().join("alice.pw");
    std::fs::write(&pw, format!("{ALICE_PASSWORD}\n")).unwrap();
    let out = d.cli(&[
        "user",
        "add",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (d, pki)
}

/// One eapol_test run; `network` is the body of its `network={…}` block.
struct Supplicant {
    output: String,
    success: bool,
}

fn eapol_test(d: &Daemon, mac: &str, network: &str, extra: &[&str]) -> Supplicant {
    let conf = d.dir.path().join(format!("eapol-{mac}.conf"));
    std::fs::write(&conf, format!("network={{\n{network}\n}}\n")).unwrap();
    let port = d.auth_port.to_string();
    let out = Command::new("eapol_test")
        .args(["-c", conf.to_str().unwrap(), "-a", "127.0.0.1", "-p", &port])
        .args(["-s", SECRET, "-t", "10", "-M", mac])
        .args(extra)
        .output()
        .expect("eapol_test runs (Debian package eapoltest)");
    let output = String::from_utf8_lossy(&out.stdout).to_string();
    let success = out.status.success() && output.contains("SUCCESS");
    Supplicant { output, success }
}

fn tls_version(v: &str) -> &'static str {
    match v {
        "1.2" => "tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_3=1",
        _ => {
            "tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0"
        }
    }
}

fn peap(pki: &Pki, v: &str, password: &str) -> String {
    format!(
        "key_mgmt=WPA-EAP\neap=PEAP\nidentity=\"anonymous\"\nanonymous_identity=\"anonymous\"\n\
         password=\"{password}\"\nca_cert=\"{}\"\nphase1=\"peaplabel=0 {}\"\nphase2=\"auth=MSCHAPV2\"",
        pki.path("ca.pem"),
        tls_version(v)
    )
    .replace("identity=\"anonymous\"\nanon", "identity=\"alice\"\nanon")
}

fn eap_tls(pki: &Pki, v: &str, who: &str) -> String {
    format!(
        "key_mgmt=WPA-EAP\neap=TLS\nidentity=\"{who}\"\nca_cert=\"{}\"\nclient_cert=\"{}\"\n\
         private_key=\"{}\"\nphase1=\"{}\"",
        pki.path("ca.pem"),
        pki.path(&format!("{who}.crt")),
        pki.path(&format!("{who}.key")),
        tls_version(v)
    )
}

fn ttls(pki: &Pki, v: &str, inner: &str) -> String {
    format!(
        "key_mgmt=WPA-EAP\neap=TTLS\nidentity=\"alice\"\nanonymous_identity=\"anonymous\"\n\
         password=\"{ALICE_PASSWORD}\"\nca_cert=\"{}\"\nphase1=\"{}\"\nphase2=\"auth={inner}\"",
        pki.path("ca.pem"),
        tls_version(v)
    )
}

/// The device's audit records as JSON, once they hold `until` (the audit log is written off
/// the request path: a record may land a moment after the answer). After 10 s the records
/// as they are, for the caller's assertion to show.
fn audit(d: &Daemon, mac: &str, until: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = stdout(&d.cli(&["audit", mac, "--json"]));
        if a.contains(until) || std::time::Instant::now() > deadline {
            return a;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn peap_mschapv2_registers_the_device_with_the_rule_role_over_tls12_and_tls13() {
    let (d, pki) = eap_daemon("");
    for (v, mac) in [("1.2", "02:00:00:0e:00:12"), ("1.3", "02:00:00:0e:00:13")] {
        let s = eapol_test(&d, mac, &peap(&pki, v, ALICE_PASSWORD), &[]);
        assert!(s.success, "PEAP TLS{v}:\n{}\n{}", s.output, d.log());
        assert!(s.output.contains("MPPE keys OK"), "{}", s.output);
        let show = stdout(&d.cli(&["node", "show", mac]));
        assert!(show.contains("status:     reg"), "{show}");
        assert!(show.contains("guest"), "{show}");
        let a = audit(&d, mac, "rule=local/staff");
        assert!(a.contains("eap=peap/mschapv2"), "{a}");
        assert!(a.contains(&format!("tls=TLSv1_{}", &v[2..])), "{a}");
        assert!(a.contains("rule=local/staff"), "{a}");
        // guestVlan of the switch section.
        assert!(a.contains("\"vlan\":\"210\""), "{a}");
    }
}

#[test]
fn peap_wrong_password_is_rejected_and_audited() {
    let (d, pki) = eap_daemon("");
    let s = eapol_test(
        &d,
        "02:00:00:0e:01:01",
        &peap(&pki, "1.3", "not-the-password"),
        &[],
    );
    assert!(!s.success, "{}", s.output);
    assert!(
        s.output.contains("FAILURE")
            || s.output.contains("EAP-Failure")
            || s.output.contains("Access-Reject"),
        "{}",
        s.output
    );
    let a = audit(&d, "02:00:00:0e:01:01", "reject");
    assert!(a.contains("reject"), "{a}");
    assert!(
        stdout(&d.cli(&["node", "show", "02:00:00:0e:01:01"])).contains("unreg")
            || !d
                .cli(&["node", "show", "02:00:00:0e:01:01"])
                .status
                .success()
    );
}

#[test]
fn eap_tls_with_the_certificate_rule_over_tls12_and_tls13() {
    let (d, pki) = eap_daemon("");
    for (v, mac) in [("1.2", "02:00:00:0e:02:12"), ("1.3", "02:00:00:0e:02:13")] {
        let s = eapol_test(&d, mac, &eap_tls(&pki, v, "laptop-7"), &[]);
        assert!(s.success, "EAP-TLS TLS{v}:\n{}\n{}", s.output, d.log());
        assert!(s.output.contains("MPPE keys OK"), "{}", s.output);
        let a = audit(&d, mac, "rule=certs/laptops");
        assert!(a.contains("eap=tls"), "{a}");
        assert!(a.contains("cn=laptop-7"), "{a}");
        assert!(a.contains("rule=certs/laptops"), "{a}");
        // defaultVlan.
        assert!(a.contains("\"vlan\":\"100\""), "{a}");
    }
}

#[test]
fn expired_revoked_and_untrusted_client_certificates_are_rejected_with_the_reason() {
    let (d, pki) = eap_daemon("");
    for (who, mac, reason) in [
        ("expired", "02:00:00:0e:03:01", "certificate_expired"),
        ("revoked", "02:00:00:0e:03:02", "certificate_revoked"),
        ("stranger", "02:00:00:0e:03:03", "certificate_untrusted"),
    ] {
        for v in ["1.2", "1.3"] {
            let s = eapol_test(&d, mac, &eap_tls(&pki, v, who), &[]);
            assert!(!s.success, "{who} TLS{v} must fail:\n{}", s.output);
        }
        let a = audit(&d, mac, reason);
        assert!(a.contains(reason), "{who}: {a}\n{}", d.log());
    }
}

#[test]
fn ttls_pap_and_mschapv2() {
    let (d, pki) = eap_daemon("");
    for (inner, v, mac) in [
        ("PAP", "1.2", "02:00:00:0e:04:01"),
        ("PAP", "1.3", "02:00:00:0e:04:02"),
        ("MSCHAPV2", "1.2", "02:00:00:0e:04:03"),
        ("MSCHAPV2", "1.3", "02:00:00:0e:04:04"),
    ] {
        let s = eapol_test(&d, mac, &ttls(&pki, v, inner), &[]);
        assert!(s.success, "TTLS/{inner} TLS{v}:\n{}\n{}", s.output, d.log());
        assert!(s.output.contains("MPPE keys OK"), "{}", s.output);
        let a = audit(&d, mac, "rule=local/staff");
        assert!(a.contains("eap=ttls/"), "{a}");
        assert!(a.contains("rule=local/staff"), "{a}");
    }
}

#[test]
fn resumption_on_the_same_server_and_small_framed_mtu() {
    let (d, pki) = eap_daemon("fragment_size = 1024\n");
    // -r1: a second authentication right after the first, with the TLS session resumed.
    let s = eapol_test(
        &d,
        "02:00:00:0e:05:01",
        &eap_tls(&pki, "1.3", "laptop-7"),
        &["-r1"],
    );
    assert!(s.success, "{}\n{}", s.output, d.log());
    let a = audit(&d, "02:00:00:0e:05:01", "resumed");
    assert!(a.contains("resumed"), "second login resumed: {a}");
    let s = eapol_test(
        &d,
        "02:00:00:0e:05:02",
        &peap(&pki, "1.2", ALICE_PASSWORD),
        &["-r1"],
    );
    assert!(s.success, "{}\n{}", s.output, d.log());
    assert!(audit(&d, "02:00:00:0e:05:02", "resumed").contains("resumed"));
    // Framed-MTU 300: the server's TLS flights go in many small fragments.
    let s = eapol_test(
        &d,
        "02:00:00:0e:05:03",
        &format!("{}\nfragment_size=200", eap_tls(&pki, "1.2", "laptop-7")),
        &["-N12:d:300"],
    );
    assert!(s.success, "{}\n{}", s.output, d.log());
    assert!(s.output.contains("MPPE keys OK"));
}

#[test]
fn mab_over_eap_md5_is_answered_as_mab() {
    let md5 = "key_mgmt=IEEE8021X\neap=MD5\nidentity=\"0200000e0601\"\npassword=\"0200000e0601\"";
    // A switch not configured for it: EAP-MD5 is refused (it is not a login method).
    let (d, _pki) = eap_daemon("");
    let s = eapol_test(&d, "02:00:00:0e:06:01", md5, &["-n"]);
    assert!(!s.success, "{}", s.output);
    drop(d);
    let (d, _pki) = eap_daemon_on("", "eap_md5_mab=yes\n");
    // The MAC as password, as Juniper sends it; a wrong one is refused.
    let wrong = md5.replace("password=\"0200000e0601\"", "password=\"nope\"");
    let s = eapol_test(&d, "02:00:00:0e:06:01", &wrong, &["-n"]);
    assert!(!s.success, "{}", s.output);
    let s = eapol_test(&d, "02:00:00:0e:06:01", md5, &["-n"]);
    assert!(s.success, "{}\n{}", s.output, d.log());
    let a = audit(&d, "02:00:00:0e:06:01", "\"vlan\":\"2\"");
    assert!(a.contains("eap=md5"), "{a}");
    // Unregistered: the registration VLAN, as for MAB.
    assert!(a.contains("\"vlan\":\"2\""), "{a}");
}

/// The guide's degraded mode on a real mariadbd: with the database read-only, PEAP still
/// logs in and the switch gets the role's VLAN (computed from the source's rule), but the
/// registration is not saved — and not replayed when the database is writable again.
#[test]
fn read_only_database_802_1x_keeps_working_and_saves_nothing() {
    let db =
        ironfence_testkit::MariaDb::start().expect("mariadbd (apt-get install mariadb-server)");
    db.create_database("eap_ro").unwrap();
    let database = format!(
        "[database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = eap_ro\n",
        db.host(),
        db.port(),
        db.user(),
        db.password()
    );
    let (d, pki) = eap_daemon_with(|b| b.database(&database), "", "");
    db.admin_sql("SET GLOBAL read_only = 1").unwrap();
    eventually("the daemon sees the read-only database", || {
        d.metric("ironfence_db_read_only") == 1.0
    });
    let mac = "02:00:00:0e:07:01";
    let s = eapol_test(&d, mac, &peap(&pki, "1.3", ALICE_PASSWORD), &[]);
    assert!(s.success, "{}\n{}", s.output, d.log());
    assert!(s.output.contains("MPPE keys OK"), "{}", s.output);
    assert!(
        d.log()
            .contains("802.1X role computed, registration not saved"),
        "{}",
        d.log()
    );
    db.admin_sql("SET GLOBAL read_only = 0").unwrap();
    eventually("the daemon sees the writable database", || {
        d.metric("ironfence_db_read_only") == 0.0
    });
    let show = d.cli(&["node", "show", mac]);
    let t = stdout(&show);
    assert!(
        !show.status.success() || !t.contains("status:     reg"),
        "nothing saved while read-only: {t}"
    );
    // Writable again: the same login registers the device.
    let s = eapol_test(&d, mac, &peap(&pki, "1.3", ALICE_PASSWORD), &[]);
    assert!(s.success, "{}", s.output);
    let show = stdout(&d.cli(&["node", "show", mac]));
    assert!(show.contains("status:     reg"), "{show}");
}

/// EAP-TTLS/PAP against a real directory (slapd): how Entra-ID-only sites do 802.1X
/// (PacketFence request #7031). The directory's rule gives the role; a wrong password is
/// refused; a directory that does not answer fails the login (the guide: external sources
/// must answer), it is not accepted on stale data.
#[test]
fn ttls_pap_against_ldap_uses_the_directory_rule_and_needs_it_to_answer() {
    use ironfence_testkit::slapd::{ADMIN_DN, ADMIN_PASSWORD, LdapUser, PEOPLE_DN, Slapd};
    let slapd = Slapd::start(
        std::net::Ipv4Addr::new(127, 0, 95, 4),
        &[LdapUser {
            uid: "lena".into(),
            password: "lena-directory-test-pw".into(),
            employee_type: "staff".into(),
            mail: "lena@example.org".into(),
        }],
    )
    .expect("slapd (Debian slapd, ldap-utils)");
    let pki_dir = tempfile::tempdir().unwrap().keep();
    let pki = Pki::make(&pki_dir);
    let read = |n: &str| std::fs::read_to_string(pki.dir.join(n)).unwrap();
    let d = DaemonBuilder::default()
        .switches(&format!(
            "[default]\nregistrationVlan=2\nisolationVlan=3\ndefaultVlan=100\nguestVlan=200\ngamingVlan=300\n\n\
             [127.0.0.1]\ndescription=e2e switch\nradiusSecret={SECRET}\nrequire_message_authenticator=yes\n"
        ))
        .file("ssl/server.crt", &read("server.crt"))
        .file("ssl/server.key", &read("server.key"))
        .file("ssl/ca.pem", &read("ca.pem"))
        .file("eap.conf", "[eap]\nmethods = ttls, peap\npassword_sources = ldap1\n")
        .file(
            "authentication.conf",
            &format!(
                "[ldap1]\ntype=LDAP\ndescription=Campus directory\nhost={}\nport={}\nencryption=none\n\
                 basedn={PEOPLE_DN}\nbinddn={ADMIN_DN}\npassword={ADMIN_PASSWORD}\nusernameattribute=uid\n\
                 searchattributes=employeeType\n\n\
                 [ldap1 rule staff]\ncondition0=employeeType,equals,staff\naction0=set_role=gaming\n\
                 action1=set_access_duration=30D\n",
                slapd.addr.ip(),
                slapd.addr.port()
            ),
        )
        .start();
    let ttls_pap = |password: &str| {
        format!(
            "key_mgmt=WPA-EAP\neap=TTLS\nidentity=\"lena\"\nanonymous_identity=\"anonymous\"\n\
             password=\"{password}\"\nca_cert=\"{}\"\nphase2=\"auth=PAP\"",
            pki.path("ca.pem")
        )
    };
    let mac = "02:00:00:0e:08:01";
    let s = eapol_test(&d, mac, &ttls_pap("lena-directory-test-pw"), &[]);
    assert!(s.success, "{}\n{}", s.output, d.log());
    assert!(s.output.contains("MPPE keys OK"), "{}", s.output);
    let a = audit(&d, mac, "rule=ldap1/staff");
    assert!(a.contains("eap=ttls/pap"), "{a}");
    assert!(a.contains("rule=ldap1/staff"), "{a}");
    assert!(a.contains("\"vlan\":\"300\""), "gamingVlan: {a}");

    let s = eapol_test(
        &d,
        "02:00:00:0e:08:02",
        &ttls_pap("not-lenas-password"),
        &[],
    );
    assert!(!s.success, "{}", s.output);

    drop(slapd);
    let s = eapol_test(
        &d,
        "02:00:00:0e:08:03",
        &ttls_pap("lena-directory-test-pw"),
        &[],
    );
    assert!(!s.success, "no directory, no login:\n{}", s.output);
    assert!(
        d.log().contains("802.1X password source unavailable"),
        "{}",
        d.log()
    );
}

/// A conversation abandoned half-way (radclient sends the Identity and never answers the
/// Challenge) is held, counted, then expired with its memory; a flood from one switch past
/// `max_conversations_per_switch` gets no answer and is counted.
#[test]
fn an_abandoned_conversation_expires_and_a_flood_is_bounded() {
    let (d, _pki) = eap_daemon("timeout = 3s\nmax_conversations_per_switch = 3\n");
    let identity = |n: u8| {
        format!(
            "User-Name = \"walker{n}\"\nCalling-Station-Id = \"02:00:00:0e:09:{n:02x}\"\n\
             EAP-Message = 0x0201000c0177616c6b6572{n:02x}\nMessage-Authenticator = 0x00\n"
        )
    };
    let r = radclient(d.auth_port, "auth", SECRET, &identity(1));
    assert_eq!(r.code.as_deref(), Some("Access-Challenge"), "{}", r.output);
    assert!(r.attr("State").is_some(), "{}", r.output);
    eventually("one conversation open, its state counted", || {
        d.metric("ironfence_eap_conversations") == 1.0
            && d.metric("ironfence_eap_state_bytes") > 0.0
    });
    for n in 2..=3 {
        let r = radclient(d.auth_port, "auth", SECRET, &identity(n));
        assert_eq!(r.code.as_deref(), Some("Access-Challenge"), "{}", r.output);
    }
    // The fourth from this switch: dropped, counted.
    let r = radclient(d.auth_port, "auth", SECRET, &identity(4));
    assert_eq!(
        r.code, None,
        "no answer past the per-switch limit: {}",
        r.output
    );
    assert!(
        d.metric("ironfence_radius_dropped_total{reason=\"eap_too_many_for_client\"}") >= 1.0,
        "{}",
        d.metrics_text()
    );
    // Nobody answers the Challenges: after the 3 s timeout the sweep (every 1.5 s) frees them.
    eventually("the abandoned conversations expired", || {
        d.metric("ironfence_eap_conversations") == 0.0
            && d.metric("ironfence_eap_state_bytes") == 0.0
    });
    let r = radclient(d.auth_port, "auth", SECRET, &identity(5));
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "room again: {}",
        r.output
    );
}

/// `register_on_success = disabled`: the login is answered with the rule's role VLAN, the
/// device is not registered (a site that registers devices elsewhere).
#[test]
fn register_on_success_disabled_answers_without_registering() {
    let (d, pki) = eap_daemon("register_on_success = disabled\n");
    let mac = "02:00:00:0e:0a:01";
    let s = eapol_test(&d, mac, &peap(&pki, "1.3", ALICE_PASSWORD), &[]);
    assert!(s.success, "{}\n{}", s.output, d.log());
    let a = audit(&d, mac, "rule=local/staff");
    assert!(a.contains("rule=local/staff"), "{a}");
    assert!(
        a.contains("\"vlan\":\"210\""),
        "the rule's role (guest) VLAN: {a}"
    );
    let show = d.cli(&["node", "show", mac]);
    assert!(
        !stdout(&show).contains("status:     reg"),
        "not registered: {}",
        stdout(&show)
    );
}

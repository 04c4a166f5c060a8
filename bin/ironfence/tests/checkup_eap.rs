//! `ironfence checkup` on the 802.1X certificates, as an operator runs it: the real binary on
//! a temp conf directory with a PKI made by rcgen at test time.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// TEST FIXTURE secret, only for this test.
const SECRET: &str = "checkup-eap-test-fixture-secret-0123456789";

fn checkup(conf: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ironfence"))
        .env("IRONFENCE_HOSTNAME", "pf1")
        .arg("--conf-dir")
        .arg(conf)
        .arg("checkup")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_private(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A key that is not the server certificate's: checkup exits 1 and names the key file and the
/// reason; with the right key it exits 0 and says nothing about conf/ssl.
#[test]
fn checkup_names_a_private_key_that_does_not_match_the_certificate() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    write_private(
        &conf.join("pf.conf"),
        &format!(
            "[general]\nstate_dir = {}\n\n[database]\ntype = sqlite\n\n[radius]\nlisten = 127.0.0.1\n",
            dir.path().join("state").display()
        ),
    );
    write_private(
        &conf.join("switches.conf"),
        &format!("[default]\nregistrationVlan = 2\n\n[127.0.0.1]\nradiusSecret = {SECRET}\n"),
    );

    let now = time::OffsetDateTime::now_utc();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "checkup test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["radius.ironfence.test".to_string()]).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "radius.ironfence.test");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    let cert = p.signed_by(&key, &ca).unwrap();
    let ssl = conf.join("ssl");
    write_private(&ssl.join("server.crt"), &cert.pem());
    write_private(&ssl.join("ca.pem"), &ca.pem());
    let key_path = ssl.join("server.key");
    write_private(&key_path, &KeyPair::generate().unwrap().serialize_pem());

    let o = checkup(&conf);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let expected = format!(
        "ERROR {}: private key does not match the certificate {} (CN=radius.ironfence.test)",
        key_path.display(),
        ssl.join("server.crt").display()
    );
    assert!(t.contains(&expected), "{expected:?} not in:\n{t}");
    assert!(t.contains(": 1 error(s)"), "{t}");

    write_private(&key_path, &key.serialize_pem());
    let o = checkup(&conf);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(!t.contains("ssl/"), "nothing to say about conf/ssl:\n{t}");
    assert!(t.contains(": 0 error(s)"), "{t}");
}

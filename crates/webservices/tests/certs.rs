//! Cluster CA persistence and server certificate (re)issue rules, with a synthetic clock.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::*;
use ironfence_webservices::{ClusterCa, Trust, ensure_server_cert};

const DAY: Duration = Duration::from_secs(86_400);
const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn server_certificate_reissue_rules() {
    let ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    let state = tempfile::tempdir().unwrap();
    let t0 = SystemTime::now();

    let first = ensure_server_cert(&ca, state.path(), IP, "pf1", t0).unwrap();
    assert!(first.reissued);
    assert_eq!(first.chain.len(), 2);
    assert_eq!(&first.chain[1], ca.cert_der());
    let crt = state.path().join("tls/webservices.crt");
    let key = state.path().join("tls/webservices.key");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(state.path().join("tls").as_path()), 0o700);
    assert!(
        fs::read_to_string(&crt)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    // Same inputs: kept, byte for byte.
    let again = ensure_server_cert(&ca, state.path(), IP, "pf1", t0 + DAY).unwrap();
    assert!(!again.reissued);
    assert_eq!(again.chain[0], first.chain[0]);

    // 31 days before expiry (2 years = 730 days): kept; 29 days before: reissued.
    let kept = ensure_server_cert(&ca, state.path(), IP, "pf1", t0 + 699 * DAY).unwrap();
    assert!(!kept.reissued);
    let renewed = ensure_server_cert(&ca, state.path(), IP, "pf1", t0 + 701 * DAY).unwrap();
    assert!(renewed.reissued);
    assert_ne!(renewed.chain[0], first.chain[0]);
    // Past expiry (e.g. a server powered off for years): reissued too.
    let state2 = tempfile::tempdir().unwrap();
    ensure_server_cert(&ca, state2.path(), IP, "pf1", t0).unwrap();
    assert!(
        ensure_server_cert(&ca, state2.path(), IP, "pf1", t0 + 800 * DAY)
            .unwrap()
            .reissued
    );

    // Back to "now" with a fresh one.
    let cur = ensure_server_cert(&ca, state.path(), IP, "pf1", t0).unwrap();
    // It was issued at t0+701d, so it is not valid yet at t0 → reissued.
    assert!(cur.reissued);
    assert!(
        !ensure_server_cert(&ca, state.path(), IP, "pf1", t0)
            .unwrap()
            .reissued
    );

    // Management IP changed.
    let other_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
    assert!(
        ensure_server_cert(&ca, state.path(), other_ip, "pf1", t0)
            .unwrap()
            .reissued
    );
    assert!(
        !ensure_server_cert(&ca, state.path(), other_ip, "pf1", t0)
            .unwrap()
            .reissued
    );
    // Hostname changed (DNS SAN).
    assert!(
        ensure_server_cert(&ca, state.path(), other_ip, "pf1b", t0)
            .unwrap()
            .reissued
    );
    assert!(
        !ensure_server_cert(&ca, state.path(), other_ip, "pf1b", t0)
            .unwrap()
            .reissued
    );

    // Cluster CA replaced.
    let new_ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    let moved = ensure_server_cert(&new_ca, state.path(), other_ip, "pf1b", t0).unwrap();
    assert!(moved.reissued);
    assert_eq!(&moved.chain[1], new_ca.cert_der());

    // Missing key, corrupt certificate, key of another certificate.
    fs::remove_file(&key).unwrap();
    assert!(
        ensure_server_cert(&new_ca, state.path(), other_ip, "pf1b", t0)
            .unwrap()
            .reissued
    );
    fs::write(&crt, "garbage").unwrap();
    assert!(
        ensure_server_cert(&new_ca, state.path(), other_ip, "pf1b", t0)
            .unwrap()
            .reissued
    );
    let elsewhere = tempfile::tempdir().unwrap();
    ensure_server_cert(&new_ca, elsewhere.path(), other_ip, "pf1b", t0).unwrap();
    fs::copy(elsewhere.path().join("tls/webservices.key"), &key).unwrap();
    assert!(
        ensure_server_cert(&new_ca, state.path(), other_ip, "pf1b", t0)
            .unwrap()
            .reissued
    );
    assert!(
        !ensure_server_cert(&new_ca, state.path(), other_ip, "pf1b", t0)
            .unwrap()
            .reissued
    );
}

#[test]
fn ca_is_saved_and_loaded_from_the_bundle_layout() {
    let root = tempfile::tempdir().unwrap();
    let conf = conf_dir(root.path());
    assert!(ClusterCa::load(&conf).unwrap().is_none());

    let ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    ca.save(&conf).unwrap();
    assert_eq!(mode(&conf.join("ssl/cluster-ca.key")), 0o600);
    assert_eq!(
        fs::read_to_string(conf.join("ssl/cluster-ca.crt")).unwrap(),
        ca.cert_pem()
    );
    let loaded = ClusterCa::load(&conf).unwrap().unwrap();
    assert_eq!(loaded.fingerprint(), ca.fingerprint());
    assert_eq!(loaded.cert_der(), ca.cert_der());
    assert!(!format!("{loaded:?}").contains("PRIVATE"));

    // A certificate issued by the loaded CA chains to the original certificate; and the
    // original CA's server certificate is accepted by the loaded one (not reissued).
    let state = tempfile::tempdir().unwrap();
    ensure_server_cert(&ca, state.path(), IP, "pf1", SystemTime::now()).unwrap();
    assert!(
        !ensure_server_cert(&loaded, state.path(), IP, "pf1", SystemTime::now())
            .unwrap()
            .reissued
    );
}

#[tokio::test]
async fn reloaded_ca_issues_certificates_clients_accept() {
    let root = tempfile::tempdir().unwrap();
    let conf = conf_dir(root.path());
    let ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    ca.save(&conf).unwrap();
    let loaded = ClusterCa::load(&conf).unwrap().unwrap();
    let server = start(cert_for(&loaded, LOCALHOST)).await;
    let status = client(
        server.addr,
        Trust::ClusterCa(ca.cert_der().clone()),
        creds(),
    )
    .status()
    .await
    .unwrap();
    assert_eq!(status.hostname, "pf1");
    server.stop().await;
}

#[test]
fn ca_load_refuses_inconsistent_files() {
    let root = tempfile::tempdir().unwrap();
    let conf = conf_dir(root.path());
    let ca = ClusterCa::generate("ca").unwrap();
    ca.save(&conf).unwrap();
    let key = conf.join("ssl/cluster-ca.key");

    // Readable by others.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = ClusterCa::load(&conf).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();

    // Key of another CA.
    let other_root = tempfile::tempdir().unwrap();
    let other_conf = conf_dir(other_root.path());
    ClusterCa::generate("ca")
        .unwrap()
        .save(&other_conf)
        .unwrap();
    fs::copy(other_conf.join("ssl/cluster-ca.key"), &key).unwrap();
    let err = ClusterCa::load(&conf).unwrap_err().to_string();
    assert!(err.contains("does not belong"), "{err}");

    // Only one of the two files.
    fs::remove_file(&key).unwrap();
    let err = ClusterCa::load(&conf).unwrap_err().to_string();
    assert!(
        err.contains("cluster-ca.key") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn server_certificate_is_valid_for_ipv6_and_hostnames_that_are_not_dns_names() {
    let ca = ClusterCa::generate("ca").unwrap();
    let state = tempfile::tempdir().unwrap();
    let v6: IpAddr = "fd00::1".parse().unwrap();
    let now = SystemTime::now();
    assert!(
        ensure_server_cert(&ca, state.path(), v6, "pf1", now)
            .unwrap()
            .reissued
    );
    assert!(
        !ensure_server_cert(&ca, state.path(), v6, "pf1", now)
            .unwrap()
            .reissued
    );
    // A hostname that is not a valid DNS name gets no DNS SAN but a usable certificate.
    assert!(
        ensure_server_cert(&ca, state.path(), v6, "bad host!", now)
            .unwrap()
            .reissued
    );
    assert!(
        !ensure_server_cert(&ca, state.path(), v6, "bad host!", now)
            .unwrap()
            .reissued
    );
}

//! cluster.conf, identity, per-server addresses, cluster-files.txt and the cluster checks.
//!
//! Every test passes the identity explicitly (`load_as` / `checkup_as`): nothing depends on the
//! machine's hostname and no environment variable is set.

use crate::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The clustering guide's cluster.conf ("Configure cluster.conf"), OCR errors fixed
/// (`etho`/`ethl` → `eth0`/`eth1`, `management_1ip` → `management_ip`), blank lines and key
/// order kept as printed.
const GUIDE: &str = "\
[CLUSTER]
management_ip=192.168.1.10

[CLUSTER interface eth0]
ip=192.168.1.10
type=management,high-availability

[CLUSTER interface eth1.2]
ip=192.168.2.10
type=internal

[CLUSTER interface eth1.3]
ip=192.168.3.10
type=internal

[pf1.example.com]
management_ip=192.168.1.5

[pf1.example.com interface eth0]
ip=192.168.1.5
type=management,high-availability
mask=255.255.255.0

[pf1.example.com interface eth1.2]
enforcement=vlan

ip=192.168.2.5

type=internal

mask=255.255.255.0

[pf1.example.com interface eth1.3]
enforcement=vlan

ip=192.168.3.5

type=internal

mask=255.255.255.0

[pf2.example.com]
management_ip=192.168.1.6

[pf2.example.com interface eth0]
ip=192.168.1.6
type=management,high-availability
mask=255.255.255.0

[pf2.example.com interface eth1.2]
enforcement=vlan

ip=192.168.2.6

type=internal

mask=255.255.255.0

[pf2.example.com interface eth1.3]
enforcement=vlan

ip=192.168.3.6

type=internal

mask=255.255.255.0

[pf3.example.com]
management_ip=192.168.1.7

[pf3.example.com interface eth0]
ip=192.168.1.7
type=management,high-availability
mask=255.255.255.0

[pf3.example.com interface eth1.2]
enforcement=vlan

ip=192.168.2.7

type=internal

mask=255.255.255.0

[pf3.example.com interface eth1.3]
enforcement=vlan

ip=192.168.3.7

type=internal

mask=255.255.255.0
";

/// A pf.conf a cluster accepts without any finding.
const GOOD_PF: &str = "\
[database]
type = mysql
host = 127.0.0.1
pass = Xk3nP9vQ2mLr7TzW4yBs8D
[webservices]
user = ironfence-sync
pass = Zq8vRr2NwX4kTb7mYp3sLd9c
[active_active]
galera_replication_username = pfcluster
galera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC
password = Vr9Lq2Xz
virtual_router_id = 51
";

const PF1: &str = "pf1.example.com";
const PF2: &str = "pf2.example.com";
const PF3: &str = "pf3.example.com";

/// A configuration directory with `files`, plus a valid switches.conf unless given (so that
/// "no switch is defined" does not show up in every checkup).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(
        dir.path().join("conf/switches.conf"),
        "[10.0.0.1]\nradiusSecret = Zq8vRr2NwX4kTb7mYp3sLd9c\nregistrationVlan = 2\n",
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("conf").join(name), text).unwrap();
    }
    crate::test_support::make_private(&dir.path().join("conf"));
    dir
}

fn conf(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("conf")
}

fn load_as(files: &[(&str, &str)], me: &str) -> Config {
    let dir = dir_with(files);
    Config::load_as(&conf(&dir), Some(me)).unwrap_or_else(|d| panic!("{d}"))
}

/// A machine ready for virtual IPs (ip_nonlocal_bind = 1, keepalived and haproxy installed):
/// the host checks have their own test.
fn ready_host() -> crate::host::HostFacts {
    crate::host::HostFacts {
        nonlocal_bind: Some("1".into()),
        missing: Vec::new(),
    }
}

fn check_as(files: &[(&str, &str)], me: &str) -> Diagnostics {
    let dir = dir_with(files);
    checkup_on_host(&conf(&dir), Some(me), &ready_host())
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A cluster of `n` servers on loopback (what tests running several members on one machine
/// write): no interfaces, management_ip 127.0.0.(i+1).
fn loopback_cluster(n: usize) -> String {
    let mut s = String::from("[CLUSTER]\nmanagement_ip = 127.0.0.100\n");
    for i in 1..=n {
        s += &format!("[pf{i}]\nmanagement_ip = 127.0.0.{i}\n");
    }
    s
}

/// `text` with `from` replaced by `to`, which must occur exactly once.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

#[test]
fn guide_cluster_conf_parses_unchanged() {
    // Byte-identical round trip of the file as the guide prints it.
    let doc = Document::parse("cluster.conf", GUIDE).unwrap();
    assert_eq!(doc.to_string(), GUIDE);

    for me in [PF1, PF2, PF3] {
        let (c, warnings) = Config::load_with_warnings_as(
            &conf(&dir_with(&[("cluster.conf", GUIDE), ("pf.conf", GOOD_PF)])),
            Some(me),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        assert!(warnings.is_empty(), "{warnings}");
        assert!(c.is_cluster());
        assert_eq!(c.identity, me);
        assert_eq!(c.identity_source, IdentitySource::Explicit);
        assert_eq!(c.this_server().unwrap().name, me);
        assert_eq!(c.peers().count(), 2);
        assert!(c.peers().all(|p| p.name != me));
    }

    let c = load_as(&[("cluster.conf", GUIDE), ("pf.conf", GOOD_PF)], PF2);
    let cl = c.cluster.as_ref().unwrap();
    assert_eq!(cl.management_ip, Some(v4("192.168.1.10")));
    let vips: Vec<_> = cl
        .virtual_interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.ip.unwrap(), i.types_string()))
        .collect();
    assert_eq!(
        vips,
        [
            (
                "eth0",
                v4("192.168.1.10"),
                "management,high-availability".to_string()
            ),
            ("eth1.2", v4("192.168.2.10"), "internal".to_string()),
            ("eth1.3", v4("192.168.3.10"), "internal".to_string()),
        ]
    );
    assert_eq!(cl.server_names().collect::<Vec<_>>(), [PF1, PF2, PF3]);
    assert_eq!(cl.management_server().unwrap().name, PF1);
    assert_eq!(cl.quorum(), 2);
    for (index, (name, last)) in [(PF1, 5u8), (PF2, 6), (PF3, 7)].into_iter().enumerate() {
        let s = cl.server(name).unwrap();
        assert_eq!(s.index, index);
        assert_eq!(s.management_ip, Some(Ipv4Addr::new(192, 168, 1, last)));
        let ifs: Vec<_> = s
            .interfaces
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.ip.unwrap(),
                    i.mask.unwrap(),
                    i.types_string(),
                    i.enforcement.as_deref(),
                )
            })
            .collect();
        let mask = v4("255.255.255.0");
        assert_eq!(
            ifs,
            [
                (
                    "eth0",
                    Ipv4Addr::new(192, 168, 1, last),
                    mask,
                    "management,high-availability".to_string(),
                    None
                ),
                (
                    "eth1.2",
                    Ipv4Addr::new(192, 168, 2, last),
                    mask,
                    "internal".to_string(),
                    Some("vlan")
                ),
                (
                    "eth1.3",
                    Ipv4Addr::new(192, 168, 3, last),
                    mask,
                    "internal".to_string(),
                    Some("vlan")
                ),
            ]
        );
    }
    // Host names compare case-insensitively.
    assert_eq!(cl.server("PF3.Example.COM").unwrap().index, 2);
    // This server's addresses.
    assert_eq!(c.radius_listen(), IpAddr::V4(v4("192.168.1.6")));
    assert_eq!(c.webservices_listen(), Some(sock("192.168.1.6:9090")));
    assert_eq!(c.metrics_listen(), Some(sock("192.168.1.6:9101")));
    assert_eq!(c.interfaces(), cl.server(PF2).unwrap().interfaces);
    assert_eq!(c.pf.active_active.virtual_router_id, 51);
}

#[test]
fn shipped_cluster_conf_is_commented_out_and_its_example_is_the_guide() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf");
    let text = std::fs::read_to_string(dir.join(CLUSTER_CONF)).unwrap();
    let doc = Document::parse(dir.join(CLUSTER_CONF), &text).unwrap();
    assert_eq!(
        doc.sections().count(),
        0,
        "shipped cluster.conf must be all comments"
    );
    let c = Config::load_as(&dir, Some(PF1)).unwrap();
    assert!(!c.is_cluster() && c.this_server().is_none());
    assert!(c.cluster_files.is_empty(), "{:?}", c.cluster_files);
    let list = std::fs::read_to_string(dir.join(CLUSTER_FILES)).unwrap();
    assert!(list.lines().all(|l| l.starts_with('#')), "{list}");

    // The commented example (lines "#[..." and "#key=...") is the guide's cluster.conf.
    let example: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let example_doc = Document::parse("example", &example).unwrap();
    let guide_doc = Document::parse("guide", GUIDE).unwrap();
    let sections = |d: &Document| -> Vec<(String, Vec<(String, String)>)> {
        d.sections()
            .map(|(name, _)| {
                let mut kv: Vec<(String, String)> = d
                    .section(name)
                    .unwrap()
                    .entries()
                    .map(|(k, e)| (k.to_string(), e.value.clone()))
                    .collect();
                kv.sort();
                (name.to_string(), kv)
            })
            .collect()
    };
    assert_eq!(sections(&example_doc), sections(&guide_doc));
}

#[test]
fn identity_resolution_order() {
    let os = || Some("os-host".to_string());
    let no_os = || None;
    use IdentitySource::*;
    // (explicit, IRONFENCE_HOSTNAME, pf.conf hostname, OS hostname available, identity, source)
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        bool,
        &'a str,
        IdentitySource,
    );
    let cases: &[Case] = &[
        (
            Some("given"),
            Some("env"),
            Some("pfconf"),
            true,
            "given",
            Explicit,
        ),
        (None, Some("env"), Some("pfconf"), true, "env", Env),
        (None, None, Some("pfconf"), true, "pfconf", PfConf),
        (None, None, None, true, "os-host", Os),
        // Empty or blank values do not count.
        (Some(""), Some("  "), Some("pfconf"), true, "pfconf", PfConf),
        (None, Some(""), None, true, "os-host", Os),
        (Some(" pf2 "), None, None, true, "pf2", Explicit),
        (None, None, None, false, "", Unknown),
    ];
    for &(explicit, env, pf, has_os, want, source) in cases {
        let got = if has_os {
            resolve_identity(explicit, env, pf, os)
        } else {
            resolve_identity(explicit, env, pf, no_os)
        };
        assert_eq!(
            got,
            (want.to_string(), source),
            "{explicit:?} {env:?} {pf:?} {has_os}"
        );
    }
}

#[test]
fn explicit_identity_beats_pf_conf_hostname() {
    let pf = format!("[general]\nhostname = {PF1}\n{GOOD_PF}");
    let files = [("cluster.conf", GUIDE), ("pf.conf", pf.as_str())];
    let c = load_as(&files, PF3);
    assert_eq!(
        (c.identity.as_str(), c.identity_source),
        (PF3, IdentitySource::Explicit)
    );
    assert_eq!(c.this_server().unwrap().index, 2);
    // Without an explicit identity (and without IRONFENCE_HOSTNAME), pf.conf's hostname is used,
    // and checkup warns that pf.conf is shared by every member.
    if std::env::var_os(HOSTNAME_ENV).is_none() {
        let dir = dir_with(&files);
        let (c, warnings) = Config::load_with_warnings(&conf(&dir)).unwrap();
        assert_eq!(
            (c.identity.as_str(), c.identity_source),
            (PF1, IdentitySource::PfConf)
        );
        let w = warnings
            .iter()
            .find(|d| d.message.contains("synchronized to every server"))
            .unwrap();
        assert_eq!((w.line, w.section.as_deref()), (Some(2), Some("general")));
        assert!(w.file.ends_with("pf.conf"));
    }
    // An explicit identity that matches: no warning about pf.conf's hostname.
    let diags = check_as(&files, PF1);
    assert!(diags.is_empty(), "{diags}");
}

#[test]
fn a_host_missing_from_cluster_conf_is_a_fatal_error() {
    let dir = dir_with(&[("cluster.conf", GUIDE), ("pf.conf", GOOD_PF)]);
    let err = Config::load_as(&conf(&dir), Some("pf9")).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    let d = &err.0[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.file, conf(&dir).join("cluster.conf"));
    assert_eq!(
        d.message,
        "this server \"pf9\" has no [pf9] section; servers defined: pf1.example.com, pf2.example.com, pf3.example.com (set IRONFENCE_HOSTNAME or [general] hostname if the OS hostname differs)"
    );
    assert!(
        err.to_string()
            .contains("cluster.conf: this server \"pf9\" has no [pf9] section")
    );
    // A near miss gets a suggestion.
    let err = Config::load_as(&conf(&dir), Some("pf1.example.co")).unwrap_err();
    assert!(
        err.0[0]
            .message
            .ends_with("(did you mean pf1.example.com?)"),
        "{err}"
    );
}

#[test]
fn host_interfaces_overlay_pf_conf_interfaces() {
    let pf = format!(
        "{GOOD_PF}\
[interface eth0]
ip = 192.168.1.5
mask = 255.255.255.0
type = management,high-availability
[interface eth1.2]
ip = 192.168.2.5
mask = 255.255.0.0
type = internal
enforcement = vlan
"
    );
    // cluster.conf only carries the per-host ip (PacketFence's usual split), and one interface
    // pf.conf does not have.
    let cluster = "\
[CLUSTER]
management_ip = 192.168.1.10
[CLUSTER interface eth0]
ip = 192.168.1.10
[CLUSTER interface eth1.2]
ip = 192.168.2.10
[CLUSTER interface eth2]
ip = 192.168.4.10
type = portal
mask = 255.255.255.0
[pf1]
management_ip = 192.168.1.5
[pf1 interface eth0]
ip = 192.168.1.5
[pf1 interface eth1.2]
ip = 192.168.2.5
[pf1 interface eth2]
ip = 192.168.4.5
type = portal
[pf2]
management_ip = 192.168.1.6
[pf2 interface eth0]
ip = 192.168.1.6
[pf2 interface eth1.2]
ip = 192.168.2.6
mask = 255.255.255.0
[pf2 interface eth2]
ip = 192.168.4.6
type = portal
[pf3]
management_ip = 192.168.1.7
[pf3 interface eth0]
ip = 192.168.1.7
[pf3 interface eth1.2]
ip = 192.168.2.7
[pf3 interface eth2]
ip = 192.168.4.7
type = portal
";
    let files = [("cluster.conf", cluster), ("pf.conf", pf.as_str())];
    let diags = check_as(&files, "pf2");
    assert!(diags.is_empty(), "{diags}");
    let c = load_as(&files, "pf2");
    let got: Vec<_> = c
        .interfaces()
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.ip.map(|a| a.to_string()),
                i.mask.map(|a| a.to_string()),
                i.types_string(),
                i.enforcement.clone(),
            )
        })
        .collect();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got,
        [
            (
                "eth0".into(),
                s("192.168.1.6"),
                s("255.255.255.0"),
                "management,high-availability".into(),
                None
            ),
            // ip and mask from cluster.conf, type and enforcement from pf.conf.
            (
                "eth1.2".into(),
                s("192.168.2.6"),
                s("255.255.255.0"),
                "internal".into(),
                s("vlan")
            ),
            // Only in cluster.conf: this host's keys (CLUSTER's mask is not inherited).
            ("eth2".into(), s("192.168.4.6"), None, "portal".into(), None),
        ]
    );
    // pf1 keeps pf.conf's mask on eth1.2.
    let c1 = load_as(&files, "pf1");
    assert_eq!(c1.interfaces()[1].mask, Some(v4("255.255.0.0")));
    // A single server uses pf.conf as is.
    let single = load_as(&[("pf.conf", pf.as_str())], "pf2");
    assert_eq!(single.interfaces(), single.pf.interfaces);
    assert_eq!(single.interfaces()[0].ip, Some(v4("192.168.1.5")));
}

#[test]
fn listen_addresses_single_server_and_cluster() {
    let single_pf = "[radius]\nlisten = 127.0.0.1\n[metrics]\nlisten = 127.0.0.1:9101\n[webservices]\nuser = u\npass = Zq8vRr2NwX4kTb7mYp3sLd9c\nport = 19090\n";
    let c = load_as(&[("pf.conf", single_pf)], "pf2");
    assert!(!c.is_cluster());
    assert_eq!(c.radius_listen(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.webservices_listen(), None);
    assert_eq!(c.metrics_listen(), Some(sock("127.0.0.1:9101")));
    // An empty cluster.conf (or one with comments only) is still a single server.
    for empty in ["", "# [CLUSTER]\n# management_ip = 1.2.3.4\n\n"] {
        let c = load_as(&[("pf.conf", single_pf), ("cluster.conf", empty)], "pf2");
        assert!(c.cluster.is_none() && !c.is_cluster());
    }

    let cluster = loopback_cluster(3);
    let cluster_pf = |metrics: &str| {
        format!("{GOOD_PF}[radius]\nlisten = 0.0.0.0\n[metrics]\nlisten = {metrics}\n")
            .replace("[webservices]\n", "[webservices]\nport = 19090\n")
    };
    type Case<'a> = (&'a str, &'a str, Option<&'a str>);
    let cases: &[Case] = &[
        // Loopback metrics follow the management_ip (same port).
        ("pf1", "127.0.0.1:9101", Some("127.0.0.1:9101")),
        ("pf2", "127.0.0.1:9101", Some("127.0.0.2:9101")),
        ("pf3", "[::1]:9200", Some("127.0.0.3:9200")),
        // Any other address is kept.
        ("pf2", "0.0.0.0:9101", Some("0.0.0.0:9101")),
        ("pf2", "10.1.2.3:9101", Some("10.1.2.3:9101")),
        // Disabled stays disabled.
        ("pf2", "", None),
    ];
    for &(me, metrics, want) in cases {
        let pf = cluster_pf(metrics);
        let c = load_as(&[("pf.conf", &pf), ("cluster.conf", &cluster)], me);
        let n: u8 = me[2..].parse().unwrap();
        let mine = Ipv4Addr::new(127, 0, 0, n);
        assert_eq!(c.radius_listen(), IpAddr::V4(mine), "{me}");
        assert_eq!(
            c.webservices_listen(),
            Some(SocketAddr::from((mine, 19090))),
            "{me}"
        );
        assert_eq!(c.metrics_listen(), want.map(sock), "{me} {metrics}");
        assert!(c.interfaces().is_empty());
    }
}

/// `[radius] listen` is not used in a cluster (each server binds its own management_ip), so
/// checkup must say so at the key's line instead of letting the operator believe it applies;
/// on a single server the key is used and nothing is reported.
#[test]
fn radius_listen_in_a_cluster_is_a_checkup_warning() {
    let pf = format!("{GOOD_PF}[radius]\nauth_port = 1812\nlisten = 10.9.8.7\n");
    let listen_line = pf.lines().position(|l| l.starts_with("listen =")).unwrap() + 1;
    let diags = check_as(&[("pf.conf", &pf), ("cluster.conf", GUIDE)], PF2);
    let found: Vec<_> = diags
        .iter()
        .filter(|d| {
            d.message
                .contains("is ignored because cluster.conf defines a cluster")
        })
        .collect();
    assert_eq!(found.len(), 1, "{diags}");
    let d = found[0];
    assert_eq!(d.severity, Severity::Warning, "{d}");
    assert!(d.file.ends_with("pf.conf"), "{d}");
    assert_eq!(d.line, Some(listen_line), "{d}");
    assert_eq!(d.section.as_deref(), Some("radius"), "{d}");
    // Reason and remedy: what it binds instead, and what to do.
    assert!(
        d.message.contains("listen = 10.9.8.7") && d.message.contains("management_ip"),
        "{d}"
    );
    assert!(d.message.contains("remove listen="), "{d}");
    assert!(!diags.has_errors(), "{diags}");
    // And it really is ignored: RADIUS binds pf2's management_ip.
    let c = load_as(&[("pf.conf", &pf), ("cluster.conf", GUIDE)], PF2);
    assert_eq!(c.radius_listen(), IpAddr::V4(v4("192.168.1.6")));

    // Without listen= a cluster's pf.conf has no finding; on a single server listen= is used
    // and not reported.
    run(vec![case(
        "no listen in a cluster",
        GUIDE.into(),
        format!("{GOOD_PF}[radius]\nauth_port = 1812\n"),
        None,
    )]);
    let single = check_as(&[("pf.conf", &pf)], PF2);
    assert!(
        !single.iter().any(|d| d.message.contains("listen")),
        "{single}"
    );
    let c = load_as(&[("pf.conf", &pf)], PF2);
    assert_eq!(c.radius_listen(), IpAddr::V4(v4("10.9.8.7")));
}

#[test]
fn cluster_files_txt() {
    let dir = dir_with(&[]);
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join("raddb/modules")).unwrap();
    std::fs::write(root.join("raddb/modules/mschap"), "x").unwrap();
    let outside = tempfile::tempdir().unwrap();
    let outside = std::fs::canonicalize(outside.path()).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("raddb/elsewhere")).unwrap();
    let list = format!(
        "# synchronized files\n\
         \n\
         conf/cluster-files.txt\n\
         {root}/raddb/modules/mschap\n\
         \x20 raddb/./modules/../modules/eap  \n\
         ../etc/passwd\n\
         /etc/shadow\n\
         conf/../../x\n\
         raddb/elsewhere/secret\n\
         conf/cluster-files.txt\n\
         .\n",
        root = root.display()
    );
    std::fs::write(conf(&dir).join(CLUSTER_FILES), list).unwrap();
    let diags = checkup_on_host(&conf(&dir), Some("pf1"), &ready_host());
    let file = conf(&dir).join(CLUSTER_FILES);
    let shown: Vec<String> = diags
        .iter()
        .filter(|d| d.file == file)
        .map(|d| d.to_string())
        .collect();
    let f = file.display();
    let r = root.display();
    let parent = root.parent().unwrap().display();
    assert_eq!(
        shown,
        [
            format!(
                "ERROR {f}:6: ../etc/passwd ({parent}/etc/passwd) is outside the installation root {r}: only files under it can be synchronized"
            ),
            format!(
                "ERROR {f}:7: /etc/shadow is outside the installation root {r}: only files under it can be synchronized"
            ),
            format!(
                "ERROR {f}:8: conf/../../x ({parent}/x) is outside the installation root {r}: only files under it can be synchronized"
            ),
            format!(
                "ERROR {f}:9: raddb/elsewhere/secret ({r}/raddb/elsewhere/secret) leads to {}/secret through a symbolic link, outside the installation root {r}: only files under it can be synchronized",
                outside.display()
            ),
            format!(
                "WARNING {f}:10: conf/cluster-files.txt ({r}/conf/cluster-files.txt) is listed twice: remove this line"
            ),
            format!(
                "ERROR {f}:11: . ({r}) is the installation root itself: list the files to synchronize, one per line"
            ),
        ]
    );
    // Without the bad lines it loads, with absolute normalised paths in file order.
    let good = format!(
        "conf/cluster-files.txt\n{}/raddb/modules/mschap\nraddb/./modules/../modules/eap\n",
        root.display()
    );
    std::fs::write(&file, good).unwrap();
    let c = Config::load_as(&conf(&dir), Some("pf1")).unwrap();
    assert_eq!(
        c.cluster_files,
        [
            root.join("conf/cluster-files.txt"),
            root.join("raddb/modules/mschap"),
            root.join("raddb/modules/eap"),
        ]
    );
    assert_eq!(installation_root(&conf(&dir)), root);
    assert_eq!(installation_root(&dir.path().join("conf/./")), root);
    // Missing file: nothing to add.
    std::fs::remove_file(&file).unwrap();
    assert!(
        Config::load_as(&conf(&dir), Some("pf1"))
            .unwrap()
            .cluster_files
            .is_empty()
    );
}

/// What one checkup case expects: a single finding containing `needle`.
struct Want {
    severity: Severity,
    file: &'static str,
    section: Option<&'static str>,
    needle: &'static str,
}

const fn error(file: &'static str, section: Option<&'static str>, needle: &'static str) -> Want {
    Want {
        severity: Severity::Error,
        file,
        section,
        needle,
    }
}

const fn warning(file: &'static str, section: Option<&'static str>, needle: &'static str) -> Want {
    Want {
        severity: Severity::Warning,
        file,
        section,
        needle,
    }
}

/// One rule violated (`want: Some`) or respected (`want: None`: no finding at all).
struct Case {
    name: &'static str,
    cluster: String,
    pf: String,
    me: &'static str,
    want: Option<Want>,
}

fn case(name: &'static str, cluster: String, pf: String, want: Option<Want>) -> Case {
    Case {
        name,
        cluster,
        pf,
        me: PF1,
        want,
    }
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let diags = check_as(&[("cluster.conf", &c.cluster), ("pf.conf", &c.pf)], c.me);
        match &c.want {
            None => assert!(
                diags.is_empty(),
                "{}: expected nothing, got:\n{diags}",
                c.name
            ),
            Some(w) => {
                let found: Vec<_> = diags
                    .iter()
                    .filter(|d| d.message.contains(w.needle))
                    .collect();
                assert_eq!(
                    found.len(),
                    1,
                    "{}: expected one {:?} in:\n{diags}",
                    c.name,
                    w.needle
                );
                let d = found[0];
                assert_eq!(d.severity, w.severity, "{}: {d}", c.name);
                assert!(d.file.ends_with(w.file), "{}: {d}", c.name);
                assert_eq!(d.section.as_deref(), w.section, "{}: {d}", c.name);
            }
        }
    }
}

#[test]
fn checkup_membership_management_ip_and_interfaces() {
    let g = || GUIDE.to_string();
    let pf = || GOOD_PF.to_string();
    let mut cases = vec![
        case("the guide's cluster", g(), pf(), None),
        Case {
            me: "pf4.example.com",
            ..case(
                "host missing",
                g(),
                pf(),
                Some(error(
                    "cluster.conf",
                    None,
                    "this server \"pf4.example.com\" has no [pf4.example.com] section",
                )),
            )
        },
        case(
            "CLUSTER management_ip missing",
            edit(
                GUIDE,
                "[CLUSTER]\nmanagement_ip=192.168.1.10\n",
                "[CLUSTER]\n",
            ),
            pf(),
            Some(error(
                "cluster.conf",
                Some("CLUSTER"),
                "management_ip is not defined for CLUSTER",
            )),
        ),
        case(
            "server management_ip missing",
            edit(GUIDE, "management_ip=192.168.1.7\n", ""),
            pf(),
            Some(error(
                "cluster.conf",
                Some(PF3),
                "management_ip is not defined for pf3.example.com",
            )),
        ),
        case(
            "server management_ip invalid",
            edit(
                GUIDE,
                "management_ip=192.168.1.6\n",
                "management_ip=192.168.1\n",
            ),
            pf(),
            Some(error(
                "cluster.conf",
                Some(PF2),
                "management_ip \"192.168.1\" is not a valid IPv4 address",
            )),
        ),
        case(
            "no [CLUSTER]",
            loopback_cluster(3).replace("[CLUSTER]\nmanagement_ip = 127.0.0.100\n", ""),
            pf(),
            Some(error("cluster.conf", None, "there is no [CLUSTER] section")),
        ),
        case(
            "server interface missing",
            edit(
                GUIDE,
                "[pf2.example.com interface eth1.3]\nenforcement=vlan\n\nip=192.168.3.6\n\ntype=internal\n\nmask=255.255.255.0\n",
                "",
            ),
            pf(),
            Some(error(
                "cluster.conf",
                Some(PF2),
                "[pf2.example.com interface eth1.3] is missing",
            )),
        ),
        case(
            "server interface without CLUSTER one",
            format!("{GUIDE}[pf1.example.com interface eth2]\nip=192.168.4.5\ntype=internal\n"),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf1.example.com interface eth2"),
                "has no [CLUSTER interface eth2]",
            )),
        ),
        case(
            "server interface without ip",
            edit(GUIDE, "ip=192.168.3.6\n", ""),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf2.example.com interface eth1.3"),
                "no ip= for [pf2.example.com interface eth1.3]",
            )),
        ),
        case(
            "CLUSTER interface without ip",
            edit(GUIDE, "ip=192.168.2.10\n", ""),
            pf(),
            Some(error(
                "cluster.conf",
                Some("CLUSTER interface eth1.2"),
                "no ip= for [CLUSTER interface eth1.2]",
            )),
        ),
        case(
            "type differs from CLUSTER",
            edit(
                GUIDE,
                "ip=192.168.2.7\n\ntype=internal\n",
                "ip=192.168.2.7\n\ntype=portal\n",
            ),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf3.example.com interface eth1.2"),
                "type=portal differs from [CLUSTER interface eth1.2] type=internal",
            )),
        ),
        case(
            "no management interface for CLUSTER",
            edit(
                GUIDE,
                "ip=192.168.1.10\ntype=management,high-availability\n",
                "ip=192.168.1.10\ntype=high-availability\n",
            ),
            pf(),
            Some(error(
                "cluster.conf",
                Some("CLUSTER"),
                "no management interface for CLUSTER",
            )),
        ),
        case(
            "two management interfaces on a server",
            edit(
                GUIDE,
                "ip=192.168.2.5\n\ntype=internal\n",
                "ip=192.168.2.5\n\ntype=management\n",
            ),
            pf(),
            Some(error(
                "cluster.conf",
                Some(PF1),
                "more than one management interface for pf1.example.com (eth0, eth1.2)",
            )),
        ),
        case(
            "management_ip is not the management interface's ip",
            edit(
                GUIDE,
                "management_ip=192.168.1.6\n",
                "management_ip=192.168.1.66\n",
            ),
            pf(),
            Some(warning(
                "cluster.conf",
                Some(PF2),
                "management_ip 192.168.1.66 is not the ip of pf2.example.com's management interface eth0 (192.168.1.6)",
            )),
        ),
        case(
            "duplicate ip across servers",
            edit(GUIDE, "ip=192.168.2.7\n", "ip=192.168.2.6\n"),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf3.example.com interface eth1.2"),
                "192.168.2.6 is also the address of [pf2.example.com interface eth1.2]",
            )),
        ),
        case(
            "a server uses a VIP",
            edit(GUIDE, "ip=192.168.3.7\n", "ip=192.168.3.10\n"),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf3.example.com interface eth1.3"),
                "192.168.3.10 is also the address of [CLUSTER interface eth1.3]",
            )),
        ),
        case(
            "duplicate management_ip",
            loopback_cluster(3).replace("management_ip = 127.0.0.3", "management_ip = 127.0.0.2"),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf3"),
                "127.0.0.2 is also the address of [pf2]",
            )),
        ),
        case(
            "pf.conf interface not in cluster.conf",
            g(),
            format!(
                "{GOOD_PF}[interface eth2]\nip = 192.168.4.5\nmask = 255.255.255.0\ntype = internal\n"
            ),
            Some(error(
                "pf.conf",
                Some("interface eth2"),
                "[interface eth2] is not in cluster.conf",
            )),
        ),
        case(
            "interface section of an unknown host",
            format!("{GUIDE}[pf5.example.com interface eth0]\nip=192.168.1.9\n"),
            pf(),
            Some(error(
                "cluster.conf",
                Some("pf5.example.com interface eth0"),
                "belongs to no server",
            )),
        ),
        case(
            "multi-zone section",
            format!("{GUIDE}[DC1 CLUSTER]\nmanagement_ip=10.0.0.1\n"),
            pf(),
            Some(warning(
                "cluster.conf",
                Some("DC1 CLUSTER"),
                "not supported",
            )),
        ),
        case(
            "unknown server key",
            edit(
                GUIDE,
                "management_ip=192.168.1.7\n",
                "management_ip=192.168.1.7\nmanagment=x\n",
            ),
            pf(),
            Some(warning("cluster.conf", Some(PF3), "unknown key managment")),
        ),
    ];
    cases.push(case(
        "pf.conf key in cluster.conf",
        edit(GUIDE, "[CLUSTER]\n", "[CLUSTER]\nvirtual_router_id=51\n"),
        pf(),
        Some(warning(
            "cluster.conf",
            Some("CLUSTER"),
            "virtual_router_id belongs in pf.conf [active_active]",
        )),
    ));
    // A loopback test cluster without interfaces works, with one warning.
    cases.push(case(
        "no interfaces at all",
        loopback_cluster(3),
        pf(),
        Some(warning(
            "cluster.conf",
            Some("CLUSTER"),
            "no interface is defined",
        )),
    ));
    for c in &mut cases {
        if c.cluster.starts_with("[CLUSTER]\nmanagement_ip = 127") || c.name == "no [CLUSTER]" {
            c.me = "pf1";
        }
    }
    run(cases);
}

#[test]
fn checkup_database_quorum_and_secrets() {
    let g = || GUIDE.to_string();
    let db = |lines: &str| {
        edit(
            GOOD_PF,
            "[database]\ntype = mysql\nhost = 127.0.0.1\n",
            &format!("[database]\n{lines}"),
        )
    };
    let aa = |from: &str, to: &str| edit(GOOD_PF, from, to);
    let cases = vec![
        // Database.
        case(
            "sqlite",
            g(),
            db("type = sqlite\n"),
            Some(error(
                "pf.conf",
                Some("database"),
                "SQLite is local to one server; a cluster needs `type = mysql` on MariaDB Galera, with host = 127.0.0.1",
            )),
        ),
        case(
            "sqlite by default",
            g(),
            db("").replace("pass = Xk3nP9vQ2mLr7TzW4yBs8D\n", ""),
            Some(error("pf.conf", Some("database"), "SQLite is the default")),
        ),
        case(
            "mysql on localhost",
            g(),
            db("type = mysql\nhost = localhost\n"),
            None,
        ),
        case(
            "mysql on an external database",
            g(),
            db("type = mysql\nhost = 10.9.9.9\n"),
            None,
        ),
        case(
            "mysql on a member's management ip",
            g(),
            db("type = mysql\nhost = 192.168.1.6\n"),
            Some(error(
                "pf.conf",
                Some("database"),
                "every server would use pf2.example.com's database: losing pf2.example.com loses the database for all; use 127.0.0.1 (the local Galera node)",
            )),
        ),
        case(
            "mysql on a member's interface ip",
            g(),
            db("type = mysql\nhost = 192.168.3.7\n"),
            Some(error(
                "pf.conf",
                Some("database"),
                "every server would use pf3.example.com's database",
            )),
        ),
        case(
            "mysql on a member's name",
            g(),
            db("type = mysql\nhost = PF1.example.com\n"),
            Some(error(
                "pf.conf",
                Some("database"),
                "every server would use pf1.example.com's database",
            )),
        ),
        case(
            "mysql on the VIP",
            g(),
            db("type = mysql\nhost = 192.168.1.10\n"),
            Some(warning(
                "pf.conf",
                Some("database"),
                "is a virtual IP of the cluster: it works, but every failover",
            )),
        ),
        // Number of servers.
        case(
            "1 server",
            loopback_cluster(1),
            GOOD_PF.into(),
            Some(error(
                "cluster.conf",
                Some("pf1"),
                "cluster.conf defines 1 server: a cluster needs at least 3 servers",
            )),
        ),
        case(
            "2 servers",
            loopback_cluster(2),
            GOOD_PF.into(),
            Some(warning(
                "cluster.conf",
                Some("pf2"),
                "Galera needs a majority: with 2 servers, losing either stops writes on both; use 3 or more, an odd number",
            )),
        ),
        case(
            "4 servers",
            loopback_cluster(4),
            GOOD_PF.into(),
            Some(warning(
                "cluster.conf",
                Some("pf4"),
                "4 servers is an even number: a 50/50 network split leaves no side with a majority",
            )),
        ),
        case("5 servers", loopback_cluster(5), GOOD_PF.into(), None),
        // Secrets.
        case(
            "webservices user empty",
            g(),
            aa("user = ironfence-sync\n", ""),
            Some(error(
                "pf.conf",
                Some("webservices"),
                "the web services user is empty but cluster.conf defines a cluster",
            )),
        ),
        case(
            "webservices user default",
            g(),
            aa("user = ironfence-sync\n", "user = packet\n"),
            Some(warning(
                "pf.conf",
                Some("webservices"),
                "the web services user \"packet\" is a well-known default",
            )),
        ),
        case(
            "webservices pass empty",
            g(),
            aa("pass = Zq8vRr2NwX4kTb7mYp3sLd9c\n", "pass =\n"),
            Some(error(
                "pf.conf",
                Some("webservices"),
                "the web services password is empty but cluster.conf defines a cluster: the node-to-node API needs it",
            )),
        ),
        // Issue 7 item 8: in a cluster a default or short password is an error.
        case(
            "webservices pass default",
            g(),
            aa("pass = Zq8vRr2NwX4kTb7mYp3sLd9c\n", "pass = fence\n"),
            Some(error(
                "pf.conf",
                Some("webservices"),
                "the web services password is a well-known default",
            )),
        ),
        case(
            "webservices pass short",
            g(),
            aa(
                "pass = Zq8vRr2NwX4kTb7mYp3sLd9c\n",
                "pass = Zq8vRr2NwX4kTb7\n",
            ),
            Some(error(
                "pf.conf",
                Some("webservices"),
                "the web services password has only 15 characters but cluster.conf defines a cluster",
            )),
        ),
        case(
            "webservices pass of 16 characters",
            g(),
            aa(
                "pass = Zq8vRr2NwX4kTb7mYp3sLd9c\n",
                "pass = Zq8vRr2NwX4kTb7m\n",
            ),
            None,
        ),
        case(
            "no webservices section",
            g(),
            aa(
                "[webservices]\nuser = ironfence-sync\npass = Zq8vRr2NwX4kTb7mYp3sLd9c\n",
                "",
            ),
            Some(error(
                "pf.conf",
                Some("webservices"),
                "the web services password is empty but",
            )),
        ),
        case(
            "keepalived key not set",
            g(),
            aa("password = Vr9Lq2Xz\n", ""),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "the keepalived shared key (password) is not set but cluster.conf defines a cluster",
            )),
        ),
        case(
            "keepalived key default",
            g(),
            aa("password = Vr9Lq2Xz\n", "password = 1234\n"),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "the keepalived shared key (password) is empty, a well-known default",
            )),
        ),
        // Issue 9: a short key is an error in a cluster.
        case(
            "keepalived key short",
            g(),
            aa("password = Vr9Lq2Xz\n", "password = Vr9Lq2X\n"),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "shorter than 8 characters but cluster.conf defines a cluster",
            )),
        ),
        case(
            "vrrp_version 2 with a fractional advert interval",
            g(),
            format!("{GOOD_PF}vrrp_version = 2\nvrrp_advert_interval = 0.5\n"),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "vrrp_advert_interval \"0.5\" is not a whole number of seconds",
            )),
        ),
        case(
            "vrrp_version 4",
            g(),
            format!("{GOOD_PF}vrrp_version = 4\n"),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "vrrp_version \"4\" is not 3 or 2",
            )),
        ),
        case(
            "vrrp_version 3 at 0.1 s",
            g(),
            format!("{GOOD_PF}vrrp_version = 3\nvrrp_advert_interval = 100ms\n"),
            None,
        ),
        case(
            "keepalived key empty",
            g(),
            aa("password = Vr9Lq2Xz\n", "password =\n"),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "the keepalived shared key (password) is empty",
            )),
        ),
        case(
            "haproxy stats default",
            g(),
            format!("{GOOD_PF}haproxy_stats_user = admin\nhaproxy_stats_pass = packetfence\n"),
            Some(warning(
                "pf.conf",
                Some("active_active"),
                "the HAProxy statistics password is empty or a well-known default",
            )),
        ),
        case(
            "haproxy stats strong",
            g(),
            format!("{GOOD_PF}haproxy_stats_user = stats\nhaproxy_stats_pass = Qm4vT8zR2kXw\n"),
            None,
        ),
        case(
            "galera password empty",
            g(),
            aa(
                "galera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC\n",
                "galera_replication_password =\n",
            ),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "the Galera replication password is empty but cluster.conf defines a cluster",
            )),
        ),
        case(
            "galera password missing",
            g(),
            aa(
                "galera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC\n",
                "",
            ),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "the Galera replication password is empty but",
            )),
        ),
        case(
            "galera password from the guide",
            g(),
            aa(
                "galera_replication_password = Hs7dK2pQ9xLm4vR8tW3nB6yC\n",
                "galera_replication_password = aMuchMoreSecurePassword\n",
            ),
            Some(warning(
                "pf.conf",
                Some("active_active"),
                "the Galera replication password is empty or the guide's example",
            )),
        ),
        case(
            "galera user missing",
            g(),
            aa("galera_replication_username = pfcluster\n", ""),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "galera_replication_username is not set",
            )),
        ),
        case(
            "virtual_router_id out of range",
            g(),
            aa("virtual_router_id = 51\n", "virtual_router_id = 256\n"),
            Some(error(
                "pf.conf",
                Some("active_active"),
                "virtual_router_id \"256\" is not a VRRP router id (1-255)",
            )),
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|c| if c.cluster.starts_with("[CLUSTER]\nmanagement_ip = 127") { Case { me: "pf1", ..c } } else { c })
        .map(|c| {
            // The loopback clusters have no interfaces: that warning is covered elsewhere.
            if c.cluster.starts_with("[CLUSTER]\nmanagement_ip = 127") {
                Case { cluster: c.cluster.replace("[CLUSTER]\nmanagement_ip = 127.0.0.100\n", "[CLUSTER]\nmanagement_ip = 127.0.0.100\n[CLUSTER interface lo]\nip = 127.0.0.100\ntype = management\n") + &interfaces_for_loopback(&c.cluster), ..c }
            } else {
                c
            }
        })
        .collect();
    run(cases);
}

/// `[pfN interface lo]` for every server of a loopback cluster.
fn interfaces_for_loopback(cluster: &str) -> String {
    let n = cluster.matches("\n[pf").count();
    (1..=n)
        .map(|i| format!("[pf{i} interface lo]\nip = 127.0.0.{i}\ntype = management\n"))
        .collect()
}

#[test]
fn cluster_secrets_are_only_warnings_on_a_single_server() {
    // The same weak pf.conf: errors in a cluster, at most warnings on a single server.
    let weak = "[database]\ntype = sqlite\n[webservices]\nuser =\npass =\n[active_active]\npassword = 1234\ngalera_replication_password =\n";
    let single = check_as(&[("pf.conf", weak)], PF1);
    assert!(!single.has_errors(), "{single}");
    assert_eq!(single.len(), 3, "{single}");
    let cluster = check_as(&[("pf.conf", weak), ("cluster.conf", GUIDE)], PF1);
    let errors: Vec<_> = cluster.errors().map(|d| d.message.as_str()).collect();
    // webservices user and pass, Galera user and pass, the keepalived key, SQLite.
    assert_eq!(errors.len(), 6, "{cluster}");
    // No pf.conf at all in a cluster: the secrets are still required.
    let none = check_as(&[("cluster.conf", GUIDE)], PF1);
    assert!(
        none.errors()
            .any(|d| d.message.contains("web services password is empty but")),
        "{none}"
    );
    assert!(
        none.errors().any(|d| d.message.contains("SQLite")),
        "{none}"
    );
}

#[test]
fn active_active_values() {
    let c = load_as(&[], PF1);
    assert_eq!(c.pf.active_active, ActiveActiveConf::default());
    assert_eq!(
        c.pf.active_active.virtual_router_id,
        DEFAULT_VIRTUAL_ROUTER_ID
    );
    assert_eq!(DEFAULT_VIRTUAL_ROUTER_ID, 50);
    let c = load_as(&[("pf.conf", GOOD_PF)], PF1);
    let aa = &c.pf.active_active;
    assert_eq!(aa.password.as_ref().unwrap().expose(), "Vr9Lq2Xz");
    assert_eq!(aa.virtual_router_id, 51);
    assert_eq!(aa.galera_replication_username.as_deref(), Some("pfcluster"));
    assert!(
        !format!("{aa:?}").contains("Vr9Lq2Xz"),
        "Debug must not print secrets"
    );
    for bad in ["0", "256", "x"] {
        let diags = check_as(
            &[(
                "pf.conf",
                &format!("[active_active]\nvirtual_router_id = {bad}\n"),
            )],
            PF1,
        );
        assert_eq!(diags.errors().count(), 1, "{bad}: {diags}");
    }
}

/// Issue 7 item 8: in a cluster, a default or short webservices password stops the server
/// (checkup error at pf.conf's pass= line, with the remedy); on a single server it stays a
/// warning (default) or nothing (short).
#[test]
fn weak_webservices_password_is_an_error_in_a_cluster_only() {
    let pf = edit(
        GOOD_PF,
        "pass = Zq8vRr2NwX4kTb7mYp3sLd9c\n",
        "pass = s3cret-pass\n",
    );
    let dir = dir_with(&[("pf.conf", &pf), ("cluster.conf", GUIDE)]);
    let diags = checkup_on_host(&conf(&dir), Some(PF1), &ready_host());
    let d = diags
        .errors()
        .find(|d| {
            d.message
                .contains("web services password has only 11 characters")
        })
        .unwrap_or_else(|| panic!("{diags}"));
    assert!(d.file.ends_with("pf.conf"), "{d}");
    assert_eq!(d.line, Some(7), "{d}");
    assert!(d.message.contains("the same on every server"), "{d}");
    assert!(Config::load_as(&conf(&dir), Some(PF1)).is_err());

    let default = edit(
        GOOD_PF,
        "pass = Zq8vRr2NwX4kTb7mYp3sLd9c\n",
        "pass = fence\n",
    );
    let diags = check_as(&[("pf.conf", &default), ("cluster.conf", GUIDE)], PF1);
    assert!(
        diags.errors().any(|d| d
            .message
            .contains("web services password is a well-known default")),
        "{diags}"
    );

    let single = check_as(&[("pf.conf", &pf)], PF1);
    assert!(!single.has_errors(), "{single}");
    let single = check_as(&[("pf.conf", &default)], PF1);
    assert!(!single.has_errors(), "{single}");
    assert!(
        single.warnings().any(|d| d
            .message
            .contains("web services password is a well-known default")),
        "{single}"
    );
}

/// The addresses the node-to-node API admits: every member's management and interface
/// addresses and the cluster's virtual IPs.
#[test]
fn member_addresses_cover_servers_and_virtual_ips() {
    let c = load_as(&[("cluster.conf", GUIDE), ("pf.conf", GOOD_PF)], PF1);
    let addrs: Vec<String> = c
        .cluster
        .as_ref()
        .unwrap()
        .member_addresses()
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    assert_eq!(
        addrs,
        [
            "192.168.1.5",
            "192.168.1.6",
            "192.168.1.7",
            "192.168.1.10",
            "192.168.2.5",
            "192.168.2.6",
            "192.168.2.7",
            "192.168.2.10",
            "192.168.3.5",
            "192.168.3.6",
            "192.168.3.7",
            "192.168.3.10",
        ]
    );
}

#[test]
fn radius_hop_secret_is_derived_from_the_webservices_password() {
    let cluster = loopback_cluster(3);
    let c = load_as(&[("cluster.conf", &cluster), ("pf.conf", GOOD_PF)], "pf2");
    // HMAC-SHA256(key = pass, "ironfence radius hop v1"), first 16 octets in hex (computed by
    // Python's hmac module).
    assert_eq!(
        c.radius_hop_secret().as_deref(),
        Some("6e1bba44493792413b63e1d26fcff90b")
    );
    let other = edit(
        GOOD_PF,
        "Zq8vRr2NwX4kTb7mYp3sLd9c",
        "Other-Password-1234567",
    );
    let c = load_as(&[("cluster.conf", &cluster), ("pf.conf", &other)], "pf1");
    assert_eq!(
        c.radius_hop_secret().as_deref(),
        Some("2e3299ee1027302fcda4ee3a607b9222")
    );
    assert_eq!(
        (c.pf.radius.backend_auth_port, c.pf.radius.backend_acct_port),
        (18120, 18130)
    );
    // A single server has no hop.
    let dir = dir_with(&[("pf.conf", GOOD_PF)]);
    assert_eq!(
        Config::load_as(&conf(&dir), Some("x"))
            .unwrap()
            .radius_hop_secret(),
        None
    );
}
/// Issue 9: where VIPs are managed, checkup requires ip_nonlocal_bind = 1 and the keepalived
/// and haproxy programs; a cluster without `[CLUSTER interface X]` runs neither.
#[test]
fn host_checks_for_virtual_ips() {
    let dir = dir_with(&[("pf.conf", GOOD_PF), ("cluster.conf", GUIDE)]);
    let on = |facts: &crate::host::HostFacts| checkup_on_host(&conf(&dir), Some(PF1), facts);
    let ok = on(&ready_host());
    assert!(!ok.has_errors(), "{ok}");
    let sysctl_off = on(&crate::host::HostFacts {
        nonlocal_bind: Some("0".into()),
        missing: Vec::new(),
    });
    let errors: Vec<&str> = sysctl_off.errors().map(|d| d.message.as_str()).collect();
    assert_eq!(errors.len(), 1, "{sysctl_off}");
    assert!(
        errors[0]
            .starts_with("net.ipv4.ip_nonlocal_bind is 0 but cluster.conf defines virtual IPs"),
        "{}",
        errors[0]
    );
    let unreadable = on(&crate::host::HostFacts {
        nonlocal_bind: None,
        missing: Vec::new(),
    });
    assert!(
        unreadable
            .errors()
            .any(|d| d.message.contains("ip_nonlocal_bind is unreadable")),
        "{unreadable}"
    );
    let missing = on(&crate::host::HostFacts {
        nonlocal_bind: Some("1".into()),
        missing: vec!["keepalived", "haproxy"],
    });
    let errors: Vec<&str> = missing.errors().map(|d| d.message.as_str()).collect();
    assert_eq!(errors.len(), 2, "{missing}");
    assert!(
        errors[0].starts_with("keepalived not found")
            && errors[0].contains("apt-get install keepalived")
    );
    assert!(
        errors[1].starts_with("haproxy not found") && errors[1].contains("apt-get install haproxy")
    );

    // Without [CLUSTER interface X] nothing holds a VIP: no host requirement.
    let no_vips = GUIDE
        .split("\n[")
        .filter(|s| !s.contains(" interface ") && !s.starts_with("CLUSTER interface"))
        .collect::<Vec<_>>()
        .join("\n[");
    let dir = dir_with(&[("pf.conf", GOOD_PF), ("cluster.conf", &no_vips)]);
    let d = checkup_on_host(
        &conf(&dir),
        Some(PF1),
        &crate::host::HostFacts {
            nonlocal_bind: Some("0".into()),
            missing: vec!["keepalived", "haproxy"],
        },
    );
    assert!(
        d.errors()
            .all(|e| !e.message.contains("ip_nonlocal_bind") && !e.message.contains("not found")),
        "{d}"
    );
}

#[test]
fn vrrp_settings_and_router_id_range() {
    let c = load_as(&[("pf.conf", GOOD_PF)], PF1);
    let aa = &c.pf.active_active;
    assert_eq!(aa.vrrp_version, VrrpVersion::V3);
    assert_eq!(aa.vrrp_advert_centis, None);
    assert_eq!(aa.vrrp_version.default_advert_centis(), 20);
    assert_eq!(VrrpVersion::V2.default_advert_centis(), 100);
    assert_eq!(c.pf.ports, PortsConf::default());
    assert_eq!((c.pf.ports.web, c.pf.ports.admin), (8080, 1443));
    for (v, text, want) in [
        (VrrpVersion::V3, "0.2", Some(20)),
        (VrrpVersion::V3, "200ms", Some(20)),
        (VrrpVersion::V3, "0.05", Some(5)),
        (VrrpVersion::V3, ".5", Some(50)),
        (VrrpVersion::V3, "1", Some(100)),
        (VrrpVersion::V3, "40.95", Some(4095)),
        (VrrpVersion::V3, "41", None),
        (VrrpVersion::V3, "0", None),
        (VrrpVersion::V3, "0.001", None),
        (VrrpVersion::V3, "5ms", None),
        (VrrpVersion::V3, "x", None),
        (VrrpVersion::V3, "", None),
        (VrrpVersion::V3, ".", None),
        (VrrpVersion::V2, "1", Some(100)),
        (VrrpVersion::V2, "5s", Some(500)),
        (VrrpVersion::V2, "0.5", None),
        (VrrpVersion::V2, "256", None),
    ] {
        assert_eq!(
            crate::pf::parse_advert_centis(text, v),
            want,
            "{v:?} {text:?}"
        );
    }
    let c = load_as(
        &[(
            "pf.conf",
            &format!(
                "{GOOD_PF}vrrp_version = 2\nvrrp_advert_interval = 2\n[ports]\nweb = 8081\nadmin = 2443\n"
            ),
        )],
        PF1,
    );
    assert_eq!(c.pf.active_active.vrrp_version, VrrpVersion::V2);
    assert_eq!(c.pf.active_active.vrrp_advert_centis, Some(200));
    assert_eq!((c.pf.ports.web, c.pf.ports.admin), (8081, 2443));

    // Three [CLUSTER interface X]: router ids base..=base+2 must stay ≤ 255.
    let high = GOOD_PF.replace("virtual_router_id = 51", "virtual_router_id = 254");
    let d = check_as(&[("pf.conf", &high), ("cluster.conf", GUIDE)], PF1);
    assert!(
        d.errors().any(|e| e
            .message
            .starts_with("virtual_router_id = 254 is the first of 3 VRRP router ids")),
        "{d}"
    );
    let fits = GOOD_PF.replace("virtual_router_id = 51", "virtual_router_id = 253");
    let d = check_as(&[("pf.conf", &fits), ("cluster.conf", GUIDE)], PF1);
    assert!(!d.has_errors(), "{d}");
}

#[test]
fn haproxy_stats_credentials_are_warned_about() {
    for (keys, warning) in [
        (
            "haproxy_stats_user = admin\nhaproxy_stats_pass = packetfence\n",
            "the HAProxy statistics password is empty or a well-known default",
        ),
        (
            "haproxy_stats_user = admin\nhaproxy_stats_pass = Qm4vT8zR2kXwLp\n",
            "the HAProxy statistics user is a well-known default",
        ),
        (
            "haproxy_stats_user = stats\nhaproxy_stats_pass =\n",
            "the HAProxy statistics password is empty or a well-known default",
        ),
        (
            "haproxy_stats_pass = Qm4vT8zR2kXwLp\n",
            "haproxy_stats_pass is set but haproxy_stats_user is empty",
        ),
    ] {
        let d = check_as(
            &[
                ("pf.conf", &format!("{GOOD_PF}{keys}")),
                ("cluster.conf", GUIDE),
            ],
            PF1,
        );
        assert!(!d.has_errors(), "{d}");
        assert!(
            d.warnings().any(|w| w.message.starts_with(warning)),
            "{keys}: {d}"
        );
    }
}

#[test]
fn the_guides_registration_and_isolation_networks_are_served_on_the_vips() {
    let c = load_as(&[("cluster.conf", GUIDE), ("pf.conf", GOOD_PF)], PF2);
    let served = c.served_interfaces();
    let got: Vec<_> = served
        .iter()
        .map(|s| (s.name.as_str(), s.ip, s.network.to_string(), s.service_ip()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "eth1.2",
                v4("192.168.2.6"),
                "192.168.2.6/24".into(),
                v4("192.168.2.10")
            ),
            (
                "eth1.3",
                v4("192.168.3.6"),
                "192.168.3.6/24".into(),
                v4("192.168.3.10")
            ),
        ]
    );
    assert_eq!(
        served[0].listen_ips(),
        [v4("192.168.2.6"), v4("192.168.2.10")]
    );
}

#[test]
fn a_single_server_serves_its_internal_interfaces_on_its_own_address() {
    let pf = "[interface eth0]\nip=192.168.1.5\nmask=255.255.255.0\ntype=management\n\
              [interface eth1.2]\nip=192.168.2.5\nmask=255.255.255.0\ntype=internal\nenforcement=vlan\n\
              [interface eth1.9]\nip=192.168.9.5\nmask=255.255.255.0\ntype=internal\nenforcement=inline\n";
    let dir = dir_with(&[("pf.conf", pf)]);
    let c = Config::load(&conf(&dir)).unwrap_or_else(|d| panic!("{d}"));
    let served = c.served_interfaces();
    assert_eq!(
        served.len(),
        1,
        "inline enforcement is not served: {served:?}"
    );
    assert_eq!(
        (served[0].service_ip(), served[0].vip),
        (v4("192.168.2.5"), None)
    );
    assert_eq!(served[0].listen_ips(), [v4("192.168.2.5")]);
}

//! my.cnf generation: golden output for the clustering guide's three servers, one row per rule.

use super::*;
use ironfence_config::Secret;

/// The clustering guide's cluster.conf ("Configure cluster.conf"), management part only (the
/// database needs nothing else), OCR errors fixed.
const GUIDE: &str = "\
[CLUSTER]
management_ip=192.168.1.10

[pf1.example.com]
management_ip=192.168.1.5

[pf2.example.com]
management_ip=192.168.1.6

[pf3.example.com]
management_ip=192.168.1.7
";

/// pf.conf as the guide's step 3 sets it (`[active_active] galera_replication_*`).
const PF: &str = "\
[general]
state_dir = /var/lib/ironfence
[database]
type = mysql
host = 127.0.0.1
pass = Xk3nP9vQ2mLr7TzW4yBs8D
[webservices]
user = ironfence-sync
pass = Zq8vRr2NwX4kTb7mYp3sLd9c
[active_active]
galera_replication_username = pfcluster
galera_replication_password = aMuchMoreSecurePassword
password = Vr9Lq2Xz
";

const PF1: &str = "pf1.example.com";
const PF2: &str = "pf2.example.com";
const PF3: &str = "pf3.example.com";

fn load(me: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(conf.join("cluster.conf"), GUIDE).unwrap();
    std::fs::write(conf.join("pf.conf"), PF).unwrap();
    std::fs::write(
        conf.join("switches.conf"),
        "[10.0.0.1]\nradiusSecret = Zq8vRr2NwX4kTb7mYp3sLd9c\nregistrationVlan = 2\n",
    )
    .unwrap();
    Config::load_as(&conf, Some(me)).unwrap_or_else(|d| panic!("{d}"))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn gen_for(me: &str, disabled: &[&str], maintenance: &[&str]) -> Result<String, GenerateError> {
    let c = load(me);
    let members = Member::from_config(&c, &set(disabled), &set(maintenance));
    generate(&c, &members, &GaleraLayout::from_config(&c))
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.split('=').next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

#[test]
fn golden_guide_pf1() {
    let got = gen_for(PF1, &[], &[]).unwrap();
    let want = include_str!("../../tests/golden/pf1.example.com.cnf");
    assert_eq!(got, want, "golden mismatch; got:\n{got}");
}

#[test]
fn every_server_differs_only_in_its_own_addresses() {
    let pf1 = gen_for(PF1, &[], &[]).unwrap();
    for (me, ip, id) in [(PF2, "192.168.1.6", "2"), (PF3, "192.168.1.7", "3")] {
        let got = gen_for(me, &[], &[]).unwrap();
        let want = pf1
            .replace(
                "pf1.example.com (cluster.conf server 1",
                &format!("{me} (cluster.conf server {id}"),
            )
            .replace(
                "bind-address=127.0.0.1,192.168.1.5",
                &format!("bind-address=127.0.0.1,{ip}"),
            )
            .replace("server-id=1", &format!("server-id={id}"))
            .replace(
                "wsrep_node_name=pf1.example.com",
                &format!("wsrep_node_name={me}"),
            )
            .replace(
                "wsrep_node_address=192.168.1.5",
                &format!("wsrep_node_address={ip}"),
            )
            .replace(
                "gmcast.listen_addr=tcp://192.168.1.5:4567",
                &format!("gmcast.listen_addr=tcp://{ip}:4567"),
            );
        assert_eq!(got, want);
    }
}

/// Galera's group port must not listen on every interface (its default `tcp://0.0.0.0:4567`
/// reaches the registration and isolation networks): only on this server's management IP.
#[test]
fn the_group_port_listens_on_the_management_address_only() {
    for (me, ip) in [(PF1, "192.168.1.5"), (PF2, "192.168.1.6")] {
        let text = gen_for(me, &[], &[]).unwrap();
        let options = line(&text, "wsrep_provider_options");
        assert!(
            options.contains(&format!("gmcast.listen_addr=tcp://{ip}:4567")),
            "{options}"
        );
        assert!(!options.contains("0.0.0.0"), "{options}");
    }
}

/// One row per `wsrep_cluster_address` rule.
#[test]
fn cluster_address_rows() {
    struct Row {
        rule: &'static str,
        me: &'static str,
        disabled: &'static [&'static str],
        maintenance: &'static [&'static str],
        want: &'static str,
    }
    let rows = [
        Row {
            rule: "every member enabled: all of them, cluster.conf order",
            me: PF2,
            disabled: &[],
            maintenance: &[],
            want: "gcomm://192.168.1.5,192.168.1.6,192.168.1.7",
        },
        Row {
            rule: "a member this server disabled is omitted",
            me: PF1,
            disabled: &[PF3],
            maintenance: &[],
            want: "gcomm://192.168.1.5,192.168.1.6",
        },
        Row {
            rule: "a member in maintenance is omitted",
            me: PF1,
            disabled: &[],
            maintenance: &[PF2],
            want: "gcomm://192.168.1.5,192.168.1.7",
        },
        Row {
            rule: "names compare case-insensitively, as cluster.conf's",
            me: PF1,
            disabled: &["PF2.Example.com"],
            maintenance: &[],
            want: "gcomm://192.168.1.5,192.168.1.7",
        },
        Row {
            rule: "this server is always listed: never the bootstrapping empty gcomm://",
            me: PF3,
            disabled: &[PF1, PF3],
            maintenance: &[PF2],
            want: "gcomm://192.168.1.7",
        },
    ];
    for r in rows {
        let got = gen_for(r.me, r.disabled, r.maintenance).unwrap();
        assert_eq!(
            line(&got, "wsrep_cluster_address"),
            format!("wsrep_cluster_address={}", r.want),
            "{}",
            r.rule
        );
    }
}

/// One row per error, each with the words an operator needs.
#[test]
fn error_rows() {
    type Edit = fn(&mut Config, &mut Vec<Member>, &mut GaleraLayout);
    type Is = fn(&GenerateError) -> bool;
    let rows: [(&str, Edit, Is, &str); 9] = [
        (
            "single server",
            |c, _, _| c.cluster = None,
            |e| matches!(e, GenerateError::NotACluster),
            "pf.conf [database]",
        ),
        (
            "this server not in cluster.conf",
            |c, _, _| c.identity = "pf9.example.com".into(),
            |e| matches!(e, GenerateError::NotAMember { .. }),
            "\"pf9.example.com\" has no [pf9.example.com] section in cluster.conf (servers: pf1.example.com, pf2.example.com, pf3.example.com)",
        ),
        (
            "no management IP",
            |c, _, _| c.cluster.as_mut().unwrap().servers[0].management_ip = None,
            |e| matches!(e, GenerateError::NoManagementIp { .. }),
            "[pf1.example.com] in cluster.conf has no management_ip",
        ),
        (
            "missing replication user",
            |c, _, _| c.pf.active_active.galera_replication_username = None,
            |e| matches!(e, GenerateError::MissingReplicationUser),
            "set galera_replication_username= and galera_replication_password=",
        ),
        (
            "missing replication password",
            |c, _, _| c.pf.active_active.galera_replication_password = None,
            |e| matches!(e, GenerateError::MissingReplicationPassword),
            "galera_replication_password is empty",
        ),
        (
            "empty replication password",
            |c, _, _| c.pf.active_active.galera_replication_password = Some(Secret::new("")),
            |e| matches!(e, GenerateError::MissingReplicationPassword),
            "galera_replication_password is empty",
        ),
        (
            "user name with ':' cannot go in wsrep_sst_auth",
            |c, _, _| c.pf.active_active.galera_replication_username = Some("a:b".into()),
            |e| matches!(e, GenerateError::InvalidReplicationCredentials { .. }),
            "neither ':'",
        ),
        (
            "member unknown to cluster.conf",
            |_, m, _| {
                m.push(Member {
                    name: "pf4".into(),
                    address: Ipv4Addr::new(10, 0, 0, 4),
                    enabled: true,
                })
            },
            |e| matches!(e, GenerateError::UnknownMember { .. }),
            "reload the configuration",
        ),
        (
            "socket path longer than a unix socket allows",
            |_, _, l| *l = GaleraLayout::new(&PathBuf::from(format!("/{}", "x".repeat(100)))),
            |e| matches!(e, GenerateError::SocketPathTooLong { .. }),
            "set a shorter pf.conf [general] state_dir",
        ),
    ];
    for (rule, edit, is, needle) in rows {
        let mut c = load(PF1);
        let mut members = Member::from_config(&c, &BTreeSet::new(), &BTreeSet::new());
        let mut layout = GaleraLayout::from_config(&c);
        edit(&mut c, &mut members, &mut layout);
        let e = generate(&c, &members, &layout).expect_err(rule);
        assert!(is(&e), "{rule}: {e:?}");
        assert!(e.to_string().contains(needle), "{rule}: {e}");
    }
}

#[test]
fn values_are_quoted_as_mariadb_reads_them() {
    let rows = [
        ("plain", "plain"),
        ("", "\"\""),
        ("with space", "\"with space\""),
        ("a#b", "\"a#b\""),
        ("q\"uo\\te", "\"q\\\"uo\\\\te\""),
        ("semi;colon", "\"semi;colon\""),
    ];
    for (raw, want) in rows {
        assert_eq!(quote(raw), want, "{raw:?}");
    }
    let mut c = load(PF1);
    c.pf.active_active.galera_replication_password = Some(Secret::new("p#ss \"word\""));
    let members = Member::from_config(&c, &BTreeSet::new(), &BTreeSet::new());
    let text = generate(&c, &members, &GaleraLayout::from_config(&c)).unwrap();
    assert_eq!(
        line(&text, "wsrep_sst_auth"),
        "wsrep_sst_auth=\"pfcluster:p#ss \\\"word\\\"\""
    );
}

#[test]
fn layout_lives_under_state_dir() {
    let l = GaleraLayout::new(Path::new("/srv/if"));
    assert_eq!(l.datadir, Path::new("/srv/if/mysql/data"));
    assert_eq!(l.tmpdir, Path::new("/srv/if/mysql/tmp"));
    assert_eq!(l.socket, Path::new("/srv/if/mysql/mysqld.sock"));
    assert_eq!(l.pid_file, Path::new("/srv/if/mysql/mysqld.pid"));
    assert_eq!(l.error_log, Path::new("/srv/if/mysql/error.log"));
    assert_eq!(l.config_file, Path::new("/srv/if/mysql/my.cnf"));
    assert_eq!(l.grastate(), Path::new("/srv/if/mysql/data/grastate.dat"));
    assert_eq!(l.gvwstate(), Path::new("/srv/if/mysql/data/gvwstate.dat"));
}

#[test]
fn provider_timeouts_respect_galeras_ordering() {
    // keepalive_period <= inactive_check_period <= suspect_timeout <= inactive_timeout
    let ms = |key: &str| -> f64 {
        let v = PROVIDER_OPTIONS
            .split(';')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{key}"));
        v.trim_start_matches("PT")
            .trim_end_matches('S')
            .parse::<f64>()
            .unwrap()
    };
    let order = [
        ms("evs.keepalive_period"),
        ms("evs.inactive_check_period"),
        ms("evs.suspect_timeout"),
        ms("evs.inactive_timeout"),
    ];
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert!(PROVIDER_OPTIONS.contains("pc.recovery=TRUE"));
}

/// The donor must keep accepting writes during a join: mariabackup SST, never rsync (which
/// holds FLUSH TABLES WITH READ LOCK on the donor for the whole copy), with the replication
/// account as its credentials, and the password nowhere but `wsrep_sst_auth` (no `[client]`
/// user or password, which every MariaDB program on the server would read).
#[test]
fn sst_is_mariabackup_with_the_replication_account() {
    let text = gen_for(PF1, &[], &[]).unwrap();
    assert_eq!(
        line(&text, "wsrep_sst_method"),
        "wsrep_sst_method=mariabackup"
    );
    assert_eq!(
        line(&text, "wsrep_sst_auth"),
        "wsrep_sst_auth=pfcluster:aMuchMoreSecurePassword"
    );
    assert_eq!(text.matches("aMuchMoreSecurePassword").count(), 1, "{text}");
    let client = text.split("[client]").nth(1).expect("[client] section");
    assert!(
        !client
            .lines()
            .any(|l| l.starts_with("user") || l.starts_with("password")),
        "{client}"
    );
}

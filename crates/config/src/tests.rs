use super::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const STRONG: &str = "Zq8vRr2NwX4kTb7mYp3sLd9c";

/// A configuration directory with the given files.
fn conf(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("conf").join(name), text).unwrap();
    }
    crate::test_support::make_private(&dir.path().join("conf"));
    dir
}

fn conf_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("conf")
}

fn load(files: &[(&str, &str)]) -> Config {
    let dir = conf(files);
    Config::load(&conf_dir(&dir)).unwrap_or_else(|d| panic!("{d}"))
}

fn check(files: &[(&str, &str)]) -> Diagnostics {
    let dir = conf(files);
    checkup(&conf_dir(&dir))
}

/// The single diagnostic whose message contains `needle`.
fn find<'a>(diags: &'a Diagnostics, needle: &str) -> &'a Diagnostic {
    let found: Vec<_> = diags
        .iter()
        .filter(|d| d.message.contains(needle))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one diagnostic containing {needle:?} in:\n{diags}"
    );
    found[0]
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn shipped_example_conf_loads_without_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf");
    let diags = checkup(&dir);
    assert!(!diags.has_errors(), "{diags}");
    // Exactly one warning: the example's public test-fixture secret must be changed. (File
    // modes depend on the checkout's umask: a world-readable warning is not counted here;
    // scripts/serve-example makes the files 0640.)
    let warnings: Vec<_> = diags
        .warnings()
        .filter(|w| !w.message.contains("readable by every user"))
        .collect();
    assert_eq!(warnings.len(), 1, "{diags}");
    assert!(
        warnings[0].message.contains("well-known default")
            && warnings[0].to_string().contains("switches.conf:"),
        "{diags}"
    );
    let config = Config::load(&dir).unwrap();
    let pf = &config.pf;
    let repo = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
    assert_eq!(pf.general.state_dir, repo.join("state"));
    assert_eq!(
        pf.database,
        DatabaseConf::Sqlite {
            path: repo.join("state/ironfence.db")
        }
    );
    assert_eq!(pf.radius.listen, ip("127.0.0.1"));
    assert_eq!((pf.radius.auth_port, pf.radius.acct_port), (1812, 1813));
    assert_eq!(
        pf.metrics.listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9101)))
    );
    assert!(pf.interfaces.is_empty());

    let sw = config
        .switches
        .lookup(ip("127.0.0.1"))
        .expect("local test switch");
    assert_eq!(sw.id, "127.0.0.1");
    assert_eq!(sw.description.as_deref(), Some("local test switch"));
    assert_eq!(sw.secret, b"ironfence-example-secret-CHANGE-ME");
    assert_eq!(sw.registration_vlan.as_deref(), Some("2"));
    assert_eq!(sw.isolation_vlan.as_deref(), Some("3"));
    let vlans: Vec<(&str, &str)> = sw
        .role_vlans
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vlans,
        [("default", "100"), ("guest", "200"), ("voice", "300")]
    );
    assert_eq!(
        sw.require_message_authenticator,
        RequireMessageAuthenticator::Yes
    );
    assert!(sw.vlan_map);
    assert!(config.switches.lookup(ip("127.0.0.2")).is_none());
    assert_eq!(
        config.roles.names().collect::<Vec<_>>(),
        ["default", "guest", "gaming", "voice", "REJECT"]
    );
}

#[test]
fn missing_files_mean_builtin_defaults() {
    let dir = conf(&[]);
    let diags = checkup(&conf_dir(&dir));
    assert!(!diags.has_errors(), "{diags}");
    find(&diags, "no switch is defined");
    let config = Config::load(&conf_dir(&dir)).unwrap();
    assert_eq!(
        config.pf.general.state_dir,
        PathBuf::from(DEFAULT_STATE_DIR)
    );
    assert_eq!(config.pf.database, DatabaseConf::default());
    assert_eq!(config.pf.radius, RadiusConf::default());
    assert_eq!(config.pf.radius.recv_buffer, 8 * 1024 * 1024);
    assert_eq!(config.pf.radius.reply_cache_ttl, Duration::from_secs(5));
    assert_eq!(
        config.pf.metrics.listen,
        Some("127.0.0.1:9101".parse().unwrap())
    );
    assert_eq!(config.pf.webservices.port, 9090);
    assert_eq!(
        config.pf.maintenance.cluster_check_interval,
        Some(Duration::from_secs(60))
    );
    assert_eq!(config.roles, RolesConf::default());
    assert!(config.roles.contains("REJECT") && config.roles.contains("gaming"));
    assert!(config.switches.switches().is_empty());
}

#[test]
fn missing_conf_dir_is_an_error() {
    let diags = checkup(Path::new("/nonexistent/ironfence/conf"));
    assert!(diags.has_errors());
    assert!(
        diags
            .to_string()
            .starts_with("ERROR /nonexistent/ironfence/conf: configuration directory not found")
    );
}

#[test]
fn pf_conf_values_are_parsed() {
    let pf = "\
[general]
hostname = pf1
domain = example.com
state_dir = /srv/ironfence
[database]
type = mysql
host = 100.64.0.1
pass = Xk3nP9vQ2mLr7TzW4yBs8D
[radius]
listen = 0.0.0.0
auth_port = 11812
acct_port = 11813
recv_buffer = 16M
reply_cache_ttl = 1m
max_in_flight = 100
audit_log = disabled
limit_proxy_state = no
[metrics]
listen =
[maintenance]
cluster_check_interval = 0
[interface eth0]
ip = 192.168.1.5
mask = 255.255.255.0
type = management, high-availability
[interface eth1.2]
ip = 192.168.2.5
mask = 255.255.255.0
type = internal
enforcement = vlan
";
    let c = load(&[("pf.conf", pf)]);
    assert_eq!(c.pf.general.hostname.as_deref(), Some("pf1"));
    assert_eq!(c.pf.general.domain.as_deref(), Some("example.com"));
    assert_eq!(c.pf.general.state_dir, PathBuf::from("/srv/ironfence"));
    let DatabaseConf::Mysql(m) = &c.pf.database else {
        panic!("{:?}", c.pf.database)
    };
    assert_eq!(
        (m.host.as_str(), m.port, m.user.as_str(), m.db.as_str()),
        ("100.64.0.1", 3306, "pf", "pf")
    );
    assert_eq!(m.pass.expose(), "Xk3nP9vQ2mLr7TzW4yBs8D");
    assert!(
        !format!("{m:?}").contains("Xk3n"),
        "Debug must not print passwords"
    );
    let r = &c.pf.radius;
    assert_eq!(r.listen, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        (r.auth_port, r.acct_port, r.recv_buffer, r.max_in_flight),
        (11812, 11813, 16 << 20, 100)
    );
    assert_eq!(r.reply_cache_ttl, Duration::from_secs(60));
    assert!(r.audit_log == AuditLogMode::Disabled && !r.limit_proxy_state);
    assert_eq!(c.pf.metrics.listen, None);
    assert_eq!(c.pf.maintenance.cluster_check_interval, None);
    let names: Vec<_> = c.pf.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["eth0", "eth1.2"]);
    assert_eq!(
        c.pf.interfaces[0].types,
        [InterfaceType::Management, InterfaceType::HighAvailability]
    );
    assert_eq!(c.pf.interfaces[1].ip, Some(Ipv4Addr::new(192, 168, 2, 5)));
    assert_eq!(c.pf.interfaces[1].enforcement.as_deref(), Some("vlan"));
}

#[test]
fn audit_log_modes_and_limits() {
    let cases = [
        ("", AuditLogMode::File),
        ("audit_log = file\n", AuditLogMode::File),
        // Configurations written before the file log keep working.
        ("audit_log = enabled\n", AuditLogMode::File),
        ("audit_log = yes\n", AuditLogMode::File),
        ("audit_log = database\n", AuditLogMode::Database),
        ("audit_log = Disabled\n", AuditLogMode::Disabled),
        ("audit_log = no\n", AuditLogMode::Disabled),
    ];
    for (line, want) in cases {
        let c = load(&[("pf.conf", &format!("[radius]\n{line}"))]);
        assert_eq!(c.pf.radius.audit_log, want, "{line:?}");
    }
    let d = RadiusConf::default();
    assert_eq!(
        (
            d.audit_log_max_age,
            d.audit_log_max_size,
            d.audit_log_segment_size,
            d.audit_log_segment_age
        ),
        (
            Duration::from_secs(30 * 86_400),
            4 << 30,
            64 << 20,
            Duration::from_secs(3600)
        )
    );
    let c = load(&[(
        "pf.conf",
        "[radius]\naudit_log_max_age = 1W\naudit_log_max_size = 500M\n\
         audit_log_segment_size = 16M\naudit_log_segment_age = 10m\n",
    )]);
    let r = &c.pf.radius;
    assert_eq!(r.audit_log_max_age, Duration::from_secs(7 * 86_400));
    assert_eq!(r.audit_log_max_size, 500 << 20);
    assert_eq!(r.audit_log_segment_size, 16 << 20);
    assert_eq!(r.audit_log_segment_age, Duration::from_secs(600));
    let dir = conf(&[(
        "pf.conf",
        "[radius]\naudit_log_max_age = 5s\naudit_log_segment_size = 2G\naudit_log_max_size = 10k\n",
    )]);
    let diags = checkup(&conf_dir(&dir));
    for needle in [
        "audit_log_max_age \"5s\"",
        "audit_log_segment_size \"2G\"",
        "audit_log_max_size \"10k\"",
    ] {
        assert_eq!(find(&diags, needle).severity, Severity::Error, "{needle}");
    }
}

#[test]
fn relative_paths_resolve_against_the_install_root() {
    let dir = conf(&[(
        "pf.conf",
        "[general]\nstate_dir = var/state\n[database]\npath = db/x.db\n",
    )]);
    let root = std::fs::canonicalize(dir.path()).unwrap();
    // However the conf dir is spelt.
    for spelling in [conf_dir(&dir), dir.path().join("conf/./")] {
        let c = Config::load(&spelling).unwrap();
        assert_eq!(c.pf.general.state_dir, root.join("var/state"));
        assert_eq!(
            c.pf.database,
            DatabaseConf::Sqlite {
                path: root.join("var/state/db/x.db")
            }
        );
    }
}

#[test]
fn pf_conf_errors_name_file_line_section_and_fix() {
    let pf = "\
[general]
hostname = not a host
[database]
type = postgres
[radius]
listen = 127.0.0.1:1812
auth_port = 70000
reply_cache_ttl = soon
audit_log = maybe
auht_port = 1
[metrics]
listen = localhost
[interface eth0]
ip = 192.168.1.5
mask = 255.255.0.255
type = management,dhcpp
[interface eth1]
ip = 10.0.0.1
type = management
[radus]
x = 1
";
    let dir = conf(&[("pf.conf", pf)]);
    let diags = checkup(&conf_dir(&dir));
    let file = conf_dir(&dir).join("pf.conf");
    let at = |needle: &str| {
        let d = find(&diags, needle);
        assert_eq!(d.file, file);
        (d.severity, d.line, d.section.clone().unwrap_or_default())
    };
    use Severity::*;
    assert_eq!(
        at("hostname \"not a host\" is not a host name"),
        (Error, Some(2), "general".into())
    );
    assert_eq!(
        at("database type \"postgres\""),
        (Error, Some(4), "database".into())
    );
    assert_eq!(
        at("listen \"127.0.0.1:1812\" is not an IP address"),
        (Error, Some(6), "radius".into())
    );
    assert_eq!(at("auth_port \"70000\""), (Error, Some(7), "radius".into()));
    assert_eq!(
        at("reply_cache_ttl \"soon\" is not a duration"),
        (Error, Some(8), "radius".into())
    );
    assert_eq!(at("audit_log \"maybe\""), (Error, Some(9), "radius".into()));
    assert_eq!(
        at("unknown key auht_port (did you mean auth_port?)"),
        (Warning, Some(10), "radius".into())
    );
    assert_eq!(
        at("listen \"localhost\""),
        (Error, Some(12), "metrics".into())
    );
    assert_eq!(
        at("mask \"255.255.0.255\" is not a netmask"),
        (Error, Some(15), "interface eth0".into())
    );
    assert_eq!(
        at("invalid network type \"dhcpp\""),
        (Error, Some(16), "interface eth0".into())
    );
    assert_eq!(
        at("incomplete network information for interface eth0"),
        (Error, Some(13), "interface eth0".into())
    );
    assert_eq!(
        at("incomplete network information for interface eth1"),
        (Error, Some(17), "interface eth1".into())
    );
    assert_eq!(
        at("more than one management interface"),
        (Error, Some(17), "interface eth1".into())
    );
    assert_eq!(
        at("unknown section [radus] (did you mean radius?)"),
        (Warning, Some(20), "radus".into())
    );
    let text = diags.to_string();
    assert!(
        text.contains(&format!("ERROR {}:4 [database]: database type \"postgres\" is not supported: write type = sqlite", file.display())),
        "{text}"
    );
    assert!(Config::load(&conf_dir(&dir)).is_err());
}

#[test]
fn syntax_errors_are_all_reported_with_their_section() {
    let dir = conf(&[
        (
            "switches.conf",
            "[default]\nregistrationVlan=2\nwhat is this\n[default]\n",
        ),
        ("pf.conf", "[radius]\nnotes=<<EOT\nnever closed\n"),
    ]);
    let diags = checkup(&conf_dir(&dir));
    let sw = conf_dir(&dir).join("switches.conf");
    let d = find(&diags, "neither a [section]");
    assert_eq!(
        (d.file.clone(), d.line, d.section.as_deref()),
        (sw.clone(), Some(3), Some("default"))
    );
    assert_eq!(
        d.to_string(),
        format!(
            "ERROR {}:3 [default]: line is neither a [section], a key=value nor a comment",
            sw.display()
        )
    );
    assert_eq!(find(&diags, "duplicate section [default]").line, Some(4));
    assert_eq!(find(&diags, "never closed").line, Some(2));
}

#[test]
fn switch_resolution_exact_cidr_longest_prefix() {
    let sw = format!(
        "\
[default]
radiusSecret = {STRONG}
registrationVlan = 2
[10.0.0.0/8]
description = wide
[10.1.0.0/16]
description = narrow
[10.1.2.3]
description = exact
[10.1.2.3/32]
description = slash32
[2001:db8::/32]
description = v6
"
    );
    let c = load(&[("switches.conf", &sw)]);
    let desc = |addr: &str| {
        c.switches
            .lookup(ip(addr))
            .and_then(|s| s.description.clone())
    };
    assert_eq!(
        desc("10.1.2.3").as_deref(),
        Some("exact"),
        "exact IP section wins over everything"
    );
    assert_eq!(
        desc("10.1.9.9").as_deref(),
        Some("narrow"),
        "longest prefix"
    );
    assert_eq!(desc("10.200.0.1").as_deref(), Some("wide"));
    assert_eq!(desc("11.0.0.1"), None);
    assert_eq!(
        desc("::ffff:10.1.2.3").as_deref(),
        Some("exact"),
        "IPv4-mapped addresses"
    );
    assert_eq!(desc("2001:db8::5").as_deref(), Some("v6"));
    assert_eq!(desc("2001:db9::5"), None);
    assert_eq!(c.switches.switches().len(), 5);
    assert_eq!(
        c.switches.get("10.0.0.0/8").unwrap().secret,
        STRONG.as_bytes()
    );
    // Every switch inherits the default secret and registration VLAN.
    assert!(
        c.switches
            .switches()
            .iter()
            .all(|s| s.registration_vlan.as_deref() == Some("2"))
    );
}

#[test]
fn switch_inheritance_switch_group_default() {
    let sw = format!(
        "\
[default]
radiusSecret = {STRONG}
registrationVlan = 2
isolationVlan = 3
defaultVlan = 1
guestVlan = 9
require_message_authenticator = auto
[group core]
secret = core-{STRONG}
isolationVlan = 30
guestVlan = 90
VlanMap = N
type = Cisco::Catalyst_2960
[192.168.1.10]
group = core
guestVlan = 900
voiceVlan = voice-net
registrationVlan =
[192.168.1.11]
defaultVlan = 11
"
    );
    let c = load(&[("switches.conf", &sw)]);
    let a = c.switches.get("192.168.1.10").unwrap();
    assert_eq!(
        a.secret,
        format!("core-{STRONG}").into_bytes(),
        "group secret (alias key)"
    );
    assert_eq!(
        a.registration_vlan.as_deref(),
        Some("2"),
        "empty value inherits"
    );
    assert_eq!(
        a.isolation_vlan.as_deref(),
        Some("30"),
        "group over default"
    );
    let vlans: Vec<_> = a
        .role_vlans
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vlans,
        [("default", "1"), ("guest", "900"), ("voice", "voice-net")]
    );
    assert!(!a.vlan_map);
    assert_eq!(a.switch_type.as_deref(), Some("Cisco::Catalyst_2960"));
    assert_eq!(
        a.require_message_authenticator,
        RequireMessageAuthenticator::Auto
    );

    let b = c.switches.get("192.168.1.11").unwrap();
    assert_eq!(b.secret, STRONG.as_bytes());
    assert_eq!(b.isolation_vlan.as_deref(), Some("3"));
    let vlans: Vec<_> = b
        .role_vlans
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(vlans, [("default", "11"), ("guest", "9")]);
    assert!(b.vlan_map);
    assert_eq!(b.switch_type, None);
    assert!(
        !format!("{b:?}").contains(STRONG),
        "Debug must not print the secret"
    );
}

#[test]
fn switch_errors_and_warnings() {
    let sw = "\
[default]
registrationVlan = 5000
guestVlan = guest vlan
[group core]
group = other
[192.168.1.0/24]
description = no secret anywhere
[192.168.1.7/24]
radiusSecret = x
[10.0.0.1]
radiusSecret = Zq8vRr2NwX4kTb7mYp3sLd9c
group = cor
printersVlan = 150
gustVlan = 7
require_message_authenticator = sometimes
VlanMap = maybe
radiusSecrt = oops
deauthMethod = RADIUS
guestRole = guest
mode = production
[switch-a]
[10.0.0.2]
radiusSecret = x
registrationVlan = 0
";
    let dir = conf(&[("switches.conf", sw)]);
    let diags = checkup(&conf_dir(&dir));
    let at = |needle: &str| {
        let d = find(&diags, needle);
        (d.severity, d.line, d.section.clone().unwrap_or_default())
    };
    use Severity::*;
    assert_eq!(
        at("registrationVlan \"5000\" is not a VLAN id (1-4094): fix the value"),
        (Error, Some(2), "default".into())
    );
    assert_eq!(
        at("guestVlan \"guest vlan\""),
        (Error, Some(3), "default".into())
    );
    assert_eq!(
        at("group= only has an effect in a switch section"),
        (Warning, Some(5), "group core".into())
    );
    assert_eq!(
        at("this switch has no RADIUS secret"),
        (Error, Some(6), "192.168.1.0/24".into())
    );
    assert_eq!(
        at("covers the same addresses as [192.168.1.0/24]"),
        (Error, Some(8), "192.168.1.7/24".into())
    );
    assert_eq!(
        at("has host bits set"),
        (Warning, Some(8), "192.168.1.7/24".into())
    );
    assert_eq!(
        at("group \"cor\" is not defined (did you mean core?)"),
        (Error, Some(12), "10.0.0.1".into())
    );
    assert_eq!(
        at("printersVlan maps role \"printers\", which is not in roles.conf"),
        (Warning, Some(13), "10.0.0.1".into())
    );
    assert_eq!(
        at("gustVlan maps role \"gust\", which is not in roles.conf (did you mean guestVlan?)"),
        (Warning, Some(14), "10.0.0.1".into())
    );
    assert_eq!(
        at("require_message_authenticator \"sometimes\""),
        (Error, Some(15), "10.0.0.1".into())
    );
    assert_eq!(
        at("VlanMap \"maybe\""),
        (Error, Some(16), "10.0.0.1".into())
    );
    assert_eq!(
        at("unknown key radiusSecrt (did you mean radiusSecret?)"),
        (Warning, Some(17), "10.0.0.1".into())
    );
    assert_eq!(
        at("section [switch-a] is not a switch IP address"),
        (Error, Some(21), "switch-a".into())
    );
    assert_eq!(
        at("registrationVlan \"0\""),
        (Error, Some(24), "10.0.0.2".into())
    );
    assert_eq!(
        at("the RADIUS secret is only 1 character long"),
        (Warning, Some(23), "10.0.0.2".into())
    );
    // PacketFence keys are accepted silently.
    for quiet in ["deauthMethod", "guestRole", "mode"] {
        assert!(
            !diags.to_string().contains(quiet),
            "{quiet} should be accepted:\n{diags}"
        );
    }
    assert!(Config::load(&conf_dir(&dir)).is_err());
}

#[test]
fn role_vlans_follow_roles_conf() {
    let roles = "[printers]\nnotes = Network printers\nmax_nodes_per_pid = 3\n[guest]\nnotes = Visitors\nmax_nodes_per_pid = 2\ncolour = red\n";
    let sw = format!(
        "[default]\nradiusSecret = {STRONG}\nregistrationVlan = 2\nprintersVlan = 150\n[10.0.0.1]\nguestVlan = 20\n"
    );
    let dir = conf(&[("roles.conf", roles), ("switches.conf", &sw)]);
    let diags = checkup(&conf_dir(&dir));
    assert!(!diags.has_errors(), "{diags}");
    assert_eq!(find(&diags, "unknown key colour").line, Some(7));
    let c = Config::load(&conf_dir(&dir)).unwrap();
    assert_eq!(
        c.roles.names().collect::<Vec<_>>(),
        ["default", "guest", "gaming", "voice", "REJECT", "printers"]
    );
    assert_eq!(
        c.roles.get("guest").unwrap().notes.as_deref(),
        Some("Visitors")
    );
    assert_eq!(c.roles.get("guest").unwrap().max_nodes_per_pid, 2);
    assert_eq!(c.roles.get("printers").unwrap().max_nodes_per_pid, 3);
    let s = c.switches.lookup(ip("10.0.0.1")).unwrap();
    let vlans: Vec<_> = s
        .role_vlans
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(vlans, [("guest", "20"), ("printers", "150")]);

    let bad = check(&[("roles.conf", "[my role]\n[x]\nmax_nodes_per_pid = lots\n")]);
    assert_eq!(find(&bad, "contains spaces").line, Some(1));
    assert_eq!(find(&bad, "max_nodes_per_pid \"lots\"").line, Some(3));
}

#[test]
fn missing_registration_vlan_is_a_warning() {
    let sw = format!("[10.0.0.1]\nradiusSecret = {STRONG}\n");
    let diags = check(&[("switches.conf", &sw)]);
    assert!(!diags.has_errors(), "{diags}");
    let d = find(&diags, "no registrationVlan");
    assert_eq!((d.line, d.section.as_deref()), (Some(1), Some("10.0.0.1")));
    assert!(d.message.contains("unregistered devices will be rejected"));
}

#[test]
fn checkup_warns_about_weak_secrets_once_where_written() {
    let sw = "\
[default]
radiusSecret = testing123
registrationVlan = 2
[group g]
radiusSecret = packetfence
[10.0.0.1]
[10.0.0.2]
group = g
[10.0.0.3]
secret = useStrongerSecret
[10.0.0.4]
radiusSecret = changeme-but-long-enough
require_message_authenticator = no
";
    let diags = check(&[("switches.conf", sw)]);
    assert!(!diags.has_errors(), "{diags}");
    let weak: Vec<_> = diags
        .warnings()
        .filter(|d| d.message.contains("RADIUS secret"))
        .collect();
    let places: Vec<_> = weak
        .iter()
        .map(|d| (d.line.unwrap(), d.section.as_deref().unwrap()))
        .collect();
    // "changeme-but-long-enough" is flagged too: a placeholder is a default whatever its length.
    assert_eq!(
        places,
        [
            (2, "default"),
            (5, "group g"),
            (10, "10.0.0.3"),
            (12, "10.0.0.4")
        ]
    );
    for d in &weak {
        assert!(d.message.contains("well-known default"), "{d}");
        assert!(
            d.message
                .contains("at least 22 characters (128 bits); BlastRADIUS (CVE-2024-3596)"),
            "{d}"
        );
    }
    let d = find(&diags, "require_message_authenticator = no");
    assert_eq!((d.line, d.section.as_deref()), (Some(13), Some("10.0.0.4")));

    let short = check(&[(
        "switches.conf",
        "[10.0.0.1]\nradiusSecret = abcdefghijklmno\nregistrationVlan=2\n",
    )]);
    assert!(
        find(&short, "only 15 characters")
            .message
            .contains("BlastRADIUS")
    );
    let ok = check(&[(
        "switches.conf",
        "[10.0.0.1]\nradiusSecret = abcdefghijklmnop\nregistrationVlan=2\n",
    )]);
    assert_eq!(ok.len(), 0, "{ok}");
}

#[test]
fn checkup_warns_about_default_cluster_passwords() {
    let pf = "\
[webservices]
user = ironfence
pass =
[active_active]
galera_replication_username = pfcluster
galera_replication_password = aMuchMoreSecurePassword
";
    let diags = check(&[("pf.conf", pf)]);
    assert!(!diags.has_errors(), "{diags}");
    let d = find(&diags, "web services password is empty");
    assert_eq!(
        (d.line, d.section.as_deref()),
        (Some(1), Some("webservices"))
    );
    let d = find(&diags, "Galera replication password");
    assert_eq!(
        (d.line, d.section.as_deref()),
        (Some(6), Some("active_active"))
    );

    let diags = check(&[("pf.conf", "[webservices]\nuser = a\npass = changeme\n")]);
    assert_eq!(find(&diags, "well-known default").line, Some(3));
    let diags = check(&[(
        "pf.conf",
        "[webservices]\nuser = a\npass = Zq8vRr2NwX4kTb7mYp3sLd9c\n",
    )]);
    assert!(
        diags
            .warnings()
            .all(|d| !d.message.contains("web services")),
        "{diags}"
    );
}

#[test]
fn load_with_warnings_returns_them() {
    let sw = "[10.0.0.1]\nradiusSecret = testing123\nregistrationVlan = 2\n";
    let dir = conf(&[("switches.conf", sw)]);
    let (config, warnings) = Config::load_with_warnings(&conf_dir(&dir)).unwrap();
    assert_eq!(config.switches.switches().len(), 1);
    assert_eq!(warnings.len(), 1);
    assert!(!warnings.has_errors());
    assert_eq!(config.conf_dir, conf_dir(&dir));
}

#[test]
fn switches_conf_new_rejects_bad_and_duplicate_ids() {
    let s = |id: &str| SwitchSettings {
        id: id.into(),
        secret: b"x".to_vec(),
        registration_vlan: None,
        isolation_vlan: None,
        role_vlans: Default::default(),
        require_message_authenticator: RequireMessageAuthenticator::Yes,
        vlan_map: true,
        eap_md5_mab: false,
        description: None,
        switch_type: None,
        dynauth: Default::default(),
    };
    assert!(matches!(
        SwitchesConf::new(vec![s("sw1")]),
        Err(SwitchIdError::Invalid(_))
    ));
    assert!(matches!(
        SwitchesConf::new(vec![s("10.0.0.0/8"), s("10.1.0.0/8")]),
        Err(SwitchIdError::Duplicate(..))
    ));
    let c = SwitchesConf::new(vec![s("0.0.0.0/0"), s("::/0"), s("192.168.0.0/16")]).unwrap();
    assert_eq!(
        c.lookup(ip("1.2.3.4")).unwrap().id,
        "0.0.0.0/0",
        "a /0 matches everything"
    );
    assert_eq!(c.lookup(ip("192.168.3.4")).unwrap().id, "192.168.0.0/16");
    assert_eq!(c.lookup(ip("fe80::1")).unwrap().id, "::/0");
}

#[test]
fn diagnostic_display_format() {
    let d = Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from("conf/switches.conf"),
        line: Some(12),
        section: Some("192.168.1.0/24".into()),
        message: "registrationVlan \"5000\" is not a VLAN id (1-4094): fix the value".into(),
    };
    assert_eq!(
        d.to_string(),
        "ERROR conf/switches.conf:12 [192.168.1.0/24]: registrationVlan \"5000\" is not a VLAN id (1-4094): fix the value"
    );
    let w = Diagnostic {
        severity: Severity::Warning,
        line: None,
        section: None,
        ..d.clone()
    };
    let all = Diagnostics(vec![d, w]);
    assert_eq!(all.errors().count(), 1);
    assert_eq!(all.warnings().count(), 1);
    assert!(all.to_string().ends_with("\nWARNING conf/switches.conf: registrationVlan \"5000\" is not a VLAN id (1-4094): fix the value\n"));
}

#[test]
fn world_readable_secret_files_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = conf(&[
        ("pf.conf", "[general]\nhostname = pf1\n"),
        ("switches.conf", "[default]\nregistrationVlan = 2\n"),
    ]);
    let set = |name: &str, mode: u32| {
        std::fs::set_permissions(
            conf_dir(&dir).join(name),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap()
    };
    set("pf.conf", 0o644);
    set("switches.conf", 0o604);
    let diags = checkup(&conf_dir(&dir));
    for name in ["pf.conf", "switches.conf"] {
        let d = diags
            .iter()
            .find(|d| d.file.ends_with(name) && d.message.contains("readable by every user"))
            .unwrap_or_else(|| panic!("no warning for {name}:\n{diags}"));
        assert_eq!(d.severity, Severity::Warning);
        assert!(d.message.contains("chmod 640"), "{}", d.message);
    }
    set("pf.conf", 0o640);
    set("switches.conf", 0o600);
    let diags = checkup(&conf_dir(&dir));
    assert!(
        !diags
            .iter()
            .any(|d| d.message.contains("readable by every user")),
        "{diags}"
    );
}

#[test]
fn node_cache_settings_and_their_bounds() {
    let d = load(&[("pf.conf", "[general]\nhostname = pf1\n")]);
    assert_eq!(d.pf.radius.node_cache_entries, 262_144);
    assert_eq!(
        d.pf.radius.node_cache_max_staleness,
        Duration::from_millis(500)
    );
    let pf = "[radius]\nnode_cache_entries = 1000\nnode_cache_max_staleness = 250ms\n";
    let c = load(&[("pf.conf", pf)]);
    assert_eq!(c.pf.radius.node_cache_entries, 1000);
    assert_eq!(
        c.pf.radius.node_cache_max_staleness,
        Duration::from_millis(250)
    );
    let c = load(&[("pf.conf", "[radius]\nnode_cache_max_staleness = 1s\n")]);
    assert_eq!(c.pf.radius.node_cache_max_staleness, Duration::from_secs(1));
    // Above 1 s the cluster-wide bound would be broken: refused.
    let diags = check(&[("pf.conf", "[radius]\nnode_cache_max_staleness = 2s\n")]);
    let d = find(&diags, "node_cache_max_staleness");
    assert_eq!(d.severity, Severity::Error, "{d:?}");
    let diags = check(&[("pf.conf", "[radius]\nnode_cache_entries = 0\n")]);
    assert_eq!(find(&diags, "node_cache_entries").severity, Severity::Error);
}

#[test]
fn switches_conf_dynauth_keys_inherit_and_are_checked() {
    use crate::dynauth::{CoaSource, RadiusDisconnect};
    let sw = "[default]\nradiusSecret = a-long-enough-test-fixture-secret\nregistrationVlan = 2\ncoaPort = 1700\n\
              [group wlc]\nradiusDisconnect = coaOrDisconnect\ncontrollerIp = 10.0.0.9\ncoaSource = vip\n\
              [10.0.0.1]\ngroup = wlc\n\
              [10.0.0.2]\ntype = Cisco::Catalyst_2960\ndisconnectPort = 3800\n";
    let dir = conf(&[("switches.conf", sw)]);
    let config = Config::load(&conf_dir(&dir)).unwrap();
    let a = &config.switches.get("10.0.0.1").unwrap().dynauth;
    assert_eq!(a.radius_disconnect, RadiusDisconnect::CoaOrDisconnect);
    assert_eq!(a.coa_port, 1700);
    assert_eq!(a.controller_ip, Some(ip("10.0.0.9")));
    assert_eq!(a.source, CoaSource::ManagementVip);
    let b = &config.switches.get("10.0.0.2").unwrap().dynauth;
    assert_eq!(
        b.radius_disconnect,
        RadiusDisconnect::CoaOrDisconnect,
        "Cisco type default"
    );
    assert_eq!((b.coa_port, b.disconnect_port), (1700, 3800));
    assert_eq!(b.coa_attributes.len(), 1);

    let bad = "[10.0.0.1]\nradiusSecret = a-long-enough-test-fixture-secret\nregistrationVlan = 2\n\
               coaAttributes = Cisco-AVPair=subscriber:command=reauthenticate, Bogus-Attribute=1\n";
    let dir = conf(&[("switches.conf", bad)]);
    let diags = Config::load(&conf_dir(&dir)).unwrap_err().to_string();
    assert!(diags.contains("switches.conf:4"), "{diags}");
    assert!(
        diags.contains("unknown attribute \"Bogus-Attribute\""),
        "{diags}"
    );
}

/// The key checkers admin tools use agree with what checkup reads: every key checkup accepts
/// silently passes, typos are refused with a suggestion.
#[test]
fn admin_key_checkers() {
    let roles = RolesConf::default();
    for ok in [
        "radiusSecret",
        "registrationVlan",
        "guestVlan",
        "VlanMap",
        "coaPort",
        "SNMPVersion",
        "guestRole",
        "registrationUrl",
    ] {
        assert_eq!(check_switch_key(ok, &roles), Ok(()), "{ok}");
    }
    let e = check_switch_key("registrationVlna", &roles).unwrap_err();
    assert!(e.contains("did you mean registrationVlan?"), "{e}");
    let e = check_switch_key("staffVlan", &roles).unwrap_err();
    assert!(e.contains("not in roles.conf"), "{e}");
    assert_eq!(check_role_key("notes"), Ok(()));
    assert!(
        check_role_key("note")
            .unwrap_err()
            .contains("did you mean notes?")
    );
    assert_eq!(authentication::check_source_key("basedn"), Ok(()));
    assert!(authentication::check_source_key("basdn").is_err());
    for ok in ["condition0", "action12", "match", "class"] {
        assert_eq!(authentication::check_rule_key(ok), Ok(()), "{ok}");
    }
    for bad in ["condition", "actionx", "acton0"] {
        assert!(authentication::check_rule_key(bad).is_err(), "{bad}");
    }
    assert!(pf_section_keys("radius").unwrap().contains(&"auth_port"));
    assert!(pf_section_keys("interface eth0").unwrap().contains(&"ip"));
    assert_eq!(pf_section_keys("nosuch"), None);
    for s in pf_sections() {
        assert!(pf_section_keys(s).is_some(), "{s} has no key list");
    }
}

/// `eap_md5_mab` (MAB over EAP-MD5) inherits like the other switch keys and is checked.
#[test]
fn switches_conf_eap_md5_mab_inherits_and_is_checked() {
    let sw = "[default]\nradiusSecret = a-long-enough-test-fixture-secret\nregistrationVlan = 2\n\
              [group juniper]\neap_md5_mab = yes\n\
              [10.0.0.1]\ngroup = juniper\n\
              [10.0.0.2]\n";
    let dir = conf(&[("switches.conf", sw)]);
    let config = Config::load(&conf_dir(&dir)).unwrap();
    assert!(config.switches.get("10.0.0.1").unwrap().eap_md5_mab);
    assert!(!config.switches.get("10.0.0.2").unwrap().eap_md5_mab);
    let bad = "[default]\nradiusSecret = a-long-enough-test-fixture-secret\nregistrationVlan = 2\neap_md5_mab = perhaps\n";
    let dir = conf(&[("switches.conf", bad)]);
    let e = format!("{:#}", Config::load(&conf_dir(&dir)).unwrap_err());
    assert!(
        e.contains("switches.conf:4") && e.contains("eap_md5_mab"),
        "{e}"
    );
}

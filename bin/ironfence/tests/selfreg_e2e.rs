//! Self-registration end to end, every peer real (issue 10): a device plugged into a switch,
//! registered on the portal, moved to its VLAN.
//!
//! ```text
//!   switch ns 10.a.b.1: radclient (the switch's RADIUS), NAS stand-in :3799 (its CoA server)
//!        │ lab bridge
//!   host 0 eth0 10.a.b.11: ironfence serve (SQLite)      eth1.2 192.168.2.5 ── segment 1
//!                                                                          │
//!   device d0 (MAC 02:75:…): dhclient, dig, chromium + chromedriver ───────┘
//! ```
//!
//! 1. The switch asks (MAB) for the unknown MAC → Access-Accept, registration VLAN 2.
//! 2. The device's `dhclient` gets a lease on the registration network (router/DNS = the
//!    portal's address, option 114), which fills ip4log.
//! 3. `dig` for any name → the portal's address; the device's resolver is the one DHCP gave.
//! 4. Headless Chromium in the device opens `http://www.example.com/` → redirected to the
//!    portal → logs in with a local user → "registered" page.
//! 5. The switch's CoA server receives a CoA signed with its secret (Message-Authenticator
//!    verified) for that MAC, from the portal's registration.
//! 6. The switch re-authenticates: the role's VLAN (100).
//!
//! Everything runs in the lab's namespaces; every process is started by the lab (or the
//! Browser) and killed by PID on drop; the device's resolv.conf lives in /etc/netns/<ns>/ and is
//! removed at the end, even on failure.

use ironfence_testkit::nas::{Answer, NasConfig, NasStandIn};
use ironfence_testkit::netns::{Lab, require_lab};
use ironfence_testkit::webdriver::Browser;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ironfence");
/// TEST FIXTURE secret, only for this test.
const SECRET: &str = "selfreg-e2e-test-fixture-secret-0123456789";
const MAC: &str = "02:75:00:00:00:01";
const PORTAL: &str = "192.168.2.5";

fn eventually(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    logs: &dyn Fn() -> String,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {timeout:?} waiting for: {what}\n{}",
        logs()
    );
}

/// `/etc/netns/<ns>/resolv.conf` (what `ip netns exec` mounts over /etc/resolv.conf), removed
/// on drop.
struct NetnsResolv(PathBuf);

impl Drop for NetnsResolv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// radclient in the switch namespace; returns (reply code line, whole output).
fn radclient(lab: &Lab, to: &str, kind: &str, request: &str) -> String {
    let mut c = lab
        .switch_command("radclient")
        .args(["-x", "-r", "3", "-t", "2", to, kind, SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (apt-get install freeradius-utils)");
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mab(lab: &Lab) -> String {
    let req = format!(
        "User-Name = \"{MAC}\"\nUser-Password = \"{MAC}\"\nCalling-Station-Id = \"{MAC}\"\n\
         NAS-IP-Address = {}\nService-Type = Call-Check\nNAS-Port-Type = Ethernet\nNAS-Port = 7\n\
         Message-Authenticator = 0x00\n",
        lab.switch_ip()
    );
    radclient(lab, &format!("{}:1812", lab.host_ip(0)), "auth", &req)
}

fn vlan_of(reply: &str) -> Option<String> {
    reply
        .lines()
        .find(|l| l.contains("Tunnel-Private-Group-Id"))
        .and_then(|l| l.rsplit('=').next())
        .map(|v| v.trim().trim_matches('"').to_string())
}

#[test]
fn a_device_gets_a_lease_registers_on_the_portal_and_is_moved_to_its_vlan() {
    require_lab().expect("network namespaces (root, iproute2, iputils-ping)");
    let mut lab = Lab::new(1).expect("lab");
    let seg = lab.add_segment().unwrap();
    lab.attach(0, &seg, "eth1.2", Some(5)).unwrap();
    let mgmt = lab.host_ip(0);
    let switch = lab.switch_ip();

    // The switch's CoA server, inside the switch namespace.
    let nas = lab
        .in_namespace(lab.switch_ns(), move || {
            NasStandIn::start(
                (switch, 3799).into(),
                NasConfig {
                    coa: Answer::Ack,
                    ..NasConfig::new(SECRET.as_bytes())
                },
            )
        })
        .unwrap()
        .expect("NAS stand-in on 3799");

    let root = lab.dir().join("pf1");
    let conf = root.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let files = [
        (
            "pf.conf",
            format!(
                "[general]\nstate_dir = state\n\n[database]\ntype = sqlite\n\n\
                 [radius]\nlisten = {mgmt}\n\n[metrics]\nlisten = {mgmt}:9101\n\n\
                 [interface eth0]\nip = {mgmt}\nmask = 255.255.255.0\ntype = management\n\n\
                 [interface eth1.2]\nip = {PORTAL}\nmask = 255.255.255.0\ntype = internal\nenforcement = vlan\n"
            ),
        ),
        (
            "switches.conf",
            format!(
                "[default]\nregistrationVlan = 2\ndefaultVlan = 100\n\n\
                 [{switch}]\nradiusSecret = {SECRET}\nrequire_message_authenticator = yes\n\
                 radiusDisconnect = coa\n"
            ),
        ),
        (
            "networks.conf",
            "[192.168.2.0]\ntype = vlan-registration\nnetmask = 255.255.255.0\n\
             dhcp_start = 192.168.2.10\ndhcp_end = 192.168.2.250\n\
             dhcp_default_lease_time = 30\ndhcp_max_lease_time = 30\n"
                .to_string(),
        ),
        (
            "authentication.conf",
            "[local]\ntype = SQL\ndescription = Staff account\n\n\
             [local rule everyone]\naction0 = set_role = default\naction1 = set_access_duration = 5D\n"
                .to_string(),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(conf.join(name), text).unwrap();
    }
    let _ = Command::new("chmod")
        .arg("640")
        .arg(conf.join("pf.conf"))
        .arg(conf.join("switches.conf"))
        .status();
    let pw = root.join("pw");
    std::fs::write(&pw, "staff-password-75\n").unwrap();
    let out = Command::new(BIN)
        .arg("--conf-dir")
        .arg(&conf)
        .args(["user", "add", "sam", "--password-file"])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut serve = lab.command(0, BIN);
    serve
        .env("RUST_LOG", "info")
        .arg("--conf-dir")
        .arg(&conf)
        .arg("serve");
    lab.spawn(0, serve, "serve").unwrap();
    let serve_log = || lab.log("serve");
    eventually(
        "ironfence ready with DHCP listening",
        Duration::from_secs(30),
        || {
            let l = lab.log("serve");
            l.contains("DHCP listening") && l.contains("ironfence ready")
        },
        &serve_log,
    );

    // 1. Unknown device: the registration VLAN.
    let r = mab(&lab);
    assert!(r.contains("Access-Accept"), "{r}");
    assert_eq!(vlan_of(&r).as_deref(), Some("2"), "{r}");

    // 2. The device's real DHCP client.
    let mac_bytes: Vec<u8> = MAC
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let dev = lab.add_device(&seg, mac_bytes.try_into().unwrap()).unwrap();
    let dir = lab.dir().join("dhclient");
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.log");
    let script = dir.join("script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$reason ip=$new_ip_address dns=$new_domain_name_servers url=$new_default_url\" >> {}\n\
             case \"$reason\" in BOUND|RENEW|REBIND|REBOOT) ip addr replace \"$new_ip_address/24\" dev \"$interface\";; esac\nexit 0\n",
            events.display()
        ),
    )
    .unwrap();
    let _ = Command::new("chmod").arg("755").arg(&script).status();
    std::fs::write(
        dir.join("dhclient.conf"),
        "request subnet-mask, routers, domain-name-servers, default-url;\n",
    )
    .unwrap();
    let mut dhclient = Command::new("dhclient");
    dhclient
        .args(["-4", "-d", "-v", "-cf"])
        .arg(dir.join("dhclient.conf"));
    dhclient
        .arg("-sf")
        .arg(&script)
        .arg("-pf")
        .arg(dir.join("pid"));
    dhclient.arg("-lf").arg(dir.join("leases")).arg("eth0");
    lab.spawn_device(dev, dhclient, "dhclient").unwrap();
    let read_events = || std::fs::read_to_string(&events).unwrap_or_default();
    let logs = || {
        format!(
            "{}\n---- dhclient ----\n{}",
            lab.log("serve"),
            lab.log("dhclient")
        )
    };
    eventually(
        "dhclient BOUND",
        Duration::from_secs(30),
        || read_events().contains("BOUND "),
        &logs,
    );
    let bound = read_events()
        .lines()
        .find(|l| l.starts_with("BOUND "))
        .unwrap()
        .to_string();
    assert!(bound.contains(&format!("dns={PORTAL}")), "{bound}");
    assert!(
        bound.contains(&format!("url=http://{PORTAL}/captive-portal/api")),
        "{bound}"
    );

    // 3. The device's resolver is the one DHCP gave: every name → the portal.
    let resolv_dir = PathBuf::from("/etc/netns").join(lab.device_ns(dev));
    std::fs::create_dir_all(&resolv_dir).unwrap();
    let _resolv = NetnsResolv(resolv_dir.clone());
    std::fs::write(
        resolv_dir.join("resolv.conf"),
        format!("nameserver {PORTAL}\n"),
    )
    .unwrap();
    let o = lab
        .device_command(dev, "dig")
        .args(["+short", "+time=3", "www.example.com"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        PORTAL,
        "dig: {o:?}"
    );

    // 4. The browser, in the device: any page → the portal → local login.
    let b = Browser::start_in_netns(lab.device_ns(dev), 1280, 900).expect("chromium in the device");
    b.goto("http://www.example.com/news").unwrap();
    let src = b.wait_for_text("Staff account").unwrap();
    assert!(
        b.current_url()
            .unwrap()
            .starts_with(&format!("http://{PORTAL}/captive-portal")),
        "redirected to the portal: {} {src}",
        b.current_url().unwrap()
    );
    b.send_keys(&b.find("#local-username").unwrap(), "sam")
        .unwrap();
    b.send_keys(&b.find("#local-password").unwrap(), "staff-password-75")
        .unwrap();
    b.click(&b.find("#local-submit").unwrap()).unwrap();
    b.wait_for_text("Your device is registered").unwrap();
    drop(b);

    // 5. The switch got a signed CoA for this device.
    eventually(
        "the CoA reached the switch",
        Duration::from_secs(15),
        || !nas.received().is_empty(),
        &logs,
    );
    let got = nas.received();
    assert_eq!(got[0].verdict, Ok(()), "signature verified: {got:?}");
    assert_eq!(got[0].code(), Some(ironfence_radius::Code::CoaRequest));
    assert_eq!(
        got[0]
            .packet()
            .unwrap()
            .get_str(ironfence_radius::dict::CALLING_STATION_ID),
        Some(MAC)
    );

    // 6. The switch re-authenticates the device: the role's VLAN.
    let r = mab(&lab);
    assert_eq!(
        vlan_of(&r).as_deref(),
        Some("100"),
        "{r}\n{}",
        lab.log("serve")
    );
}

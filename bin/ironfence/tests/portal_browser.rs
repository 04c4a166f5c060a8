//! The captive portal in headless Chromium (WebDriver), against a running `ironfence serve`
//! (single server, SQLite) and a real `slapd`: a device registers with a local user, as a
//! guest and with an LDAP user; each time the node is registered with the role the source's
//! rules map, and the next MAB for that MAC (radtest) answers the role's VLAN.
//!
//! The daemon knows the device by ip4log: each "device" first sends an Accounting-Start
//! (radclient) whose Framed-IP-Address is the browser's source address (127.0.0.1: the
//! kernel's source for 127.0.73.x). Screenshots of every page, at desktop (1280×900) and
//! phone (390×844) widths, go to `$IRONFENCE_SCREENSHOTS_DIR` when set (docs/screenshots/
//! in the repository), else to a temporary directory.

mod common;

use common::{DaemonBuilder, SECRET, eventually, free_tcp_port, radclient, radtest_mab};
use ironfence_testkit::slapd::{ADMIN_DN, ADMIN_PASSWORD, LdapUser, PEOPLE_DN, Slapd};
use ironfence_testkit::webdriver::Browser;
use std::net::Ipv4Addr;
use std::path::PathBuf;

const PORTAL_IP: &str = "127.0.73.1";

fn auth_conf(slapd: &Slapd) -> String {
    format!(
        "[local]\ntype=SQL\ndescription=Staff account\n\n\
         [local rule everyone]\naction0=set_role=default\naction1=set_access_duration=5D\n\n\
         [guest]\ntype=Null\ndescription=Guest access\n\n\
         [guest rule aup]\naction0=set_role=guest\naction1=set_access_duration=1D\n\n\
         [ldap1]\ntype=LDAP\ndescription=Campus directory\nhost={}\nport={}\nencryption=none\n\
         basedn={PEOPLE_DN}\nbinddn={ADMIN_DN}\npassword={ADMIN_PASSWORD}\nusernameattribute=uid\n\
         searchattributes=employeeType\n\n\
         [ldap1 rule staff]\ncondition0=employeeType,equals,staff\naction0=set_role=gaming\naction1=set_access_duration=30D\n",
        slapd.addr.ip(),
        slapd.addr.port()
    )
}

struct Shots {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Shots {
    fn new() -> Shots {
        match std::env::var_os("IRONFENCE_SCREENSHOTS_DIR") {
            Some(d) => {
                std::fs::create_dir_all(&d).unwrap();
                Shots {
                    dir: d.into(),
                    _tmp: None,
                }
            }
            None => {
                let t = tempfile::tempdir().unwrap();
                Shots {
                    dir: t.path().to_path_buf(),
                    _tmp: Some(t),
                }
            }
        }
    }

    /// Saves the current page at both widths (desktop first, then phone, back to desktop).
    fn take(&self, b: &Browser, name: &str) {
        for (suffix, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
            b.set_window(w, h).unwrap();
            let png = b.screenshot().unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a PNG");
            std::fs::write(self.dir.join(format!("portal-{name}-{suffix}.png")), png).unwrap();
        }
        b.set_window(1280, 900).unwrap();
    }
}

/// The device `mac` now holds the browser's address (an Accounting-Start with it).
fn lease(d: &common::Daemon, mac: &str, session: &str) {
    let req = format!(
        "Acct-Status-Type = Start\nUser-Name = \"{mac}\"\nCalling-Station-Id = \"{mac}\"\nNAS-IP-Address = 127.0.0.1\n\
         NAS-Port = 7\nAcct-Session-Id = \"{session}\"\nFramed-IP-Address = 127.0.0.1\n"
    );
    let r = radclient(d.acct_port, "acct", SECRET, &req);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.output
    );
}

fn node_role(d: &common::Daemon, mac: &str) -> String {
    let out = d.cli(&["node", "show", mac]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn local_guest_and_ldap_registration_in_chromium() {
    let slapd = Slapd::start(
        Ipv4Addr::new(127, 0, 73, 4),
        &[
            LdapUser {
                uid: "lena".into(),
                password: "lena-directory-pw".into(),
                employee_type: "staff".into(),
                mail: "lena@example.org".into(),
            },
            LdapUser {
                uid: "otto".into(),
                password: "otto-directory-pw".into(),
                employee_type: "contractor".into(),
                mail: "otto@example.org".into(),
            },
        ],
    )
    .unwrap();
    let port = free_tcp_port();
    let switches = format!(
        "[default]\nregistrationVlan=2\nisolationVlan=3\ndefaultVlan=100\nguestVlan=200\ngamingVlan=300\n\n\
         [127.0.0.1]\ndescription=e2e switch\nradiusSecret={SECRET}\nrequire_message_authenticator=yes\n"
    );
    let d = DaemonBuilder::default()
        .switches(&switches)
        .pf_extra(&format!(
            "\n[interface lo-reg]\nip={PORTAL_IP}\nmask=255.255.255.0\ntype=internal\nenforcement=vlan\n\n[ports]\nportal_http={port}\n"
        ))
        .file("authentication.conf", &auth_conf(&slapd))
        .start();
    let pw = d.dir.path().join("pw");
    std::fs::write(&pw, "staff-password-1\n").unwrap();
    let out = d.cli(&[
        "user",
        "add",
        "sam",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A user imported from a PacketFence `password` export keeps its bcrypt hash ($2y$).
    let hash = bcrypt::hash_with_salt("pat-packetfence-pw", 4, [9u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let csv = d.dir.path().join("password.csv");
    std::fs::write(
        &csv,
        format!("pid,password,valid_from,expiration,access_duration\npat,{hash},0000-00-00 00:00:00,2099-01-01 00:00:00,\n"),
    )
    .unwrap();
    let out = d.cli(&["user", "import", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("user pat saved"));

    let shots = Shots::new();
    let b = Browser::start(1280, 900).unwrap();
    let portal = format!("http://{PORTAL_IP}:{port}/captive-portal");

    // 1. Local user; a wrong password first (the uniform error page).
    let mac1 = "02:73:00:00:00:01";
    lease(&d, mac1, "b1");
    b.goto(&format!("http://{PORTAL_IP}:{port}/some/page"))
        .unwrap();
    assert!(
        b.current_url().unwrap().starts_with(&portal),
        "redirected to the portal"
    );
    b.wait_for_text("Staff account").unwrap();
    shots.take(&b, "landing");
    b.send_keys(&b.find("#local-username").unwrap(), "sam")
        .unwrap();
    b.send_keys(&b.find("#local-password").unwrap(), "not-the-password")
        .unwrap();
    b.click(&b.find("#local-submit").unwrap()).unwrap();
    b.wait_for_text("Invalid username or password.").unwrap();
    shots.take(&b, "login-error");
    b.send_keys(&b.find("#local-username").unwrap(), "sam")
        .unwrap();
    b.send_keys(&b.find("#local-password").unwrap(), "staff-password-1")
        .unwrap();
    b.click(&b.find("#local-submit").unwrap()).unwrap();
    b.wait_for_text("Your device is registered").unwrap();
    shots.take(&b, "registered");
    assert!(
        node_role(&d, mac1).contains("default"),
        "{}",
        node_role(&d, mac1)
    );
    eventually("local user's MAB gets the default VLAN", || {
        radtest_mab(d.auth_port, SECRET, mac1).vlan() == Some("100")
    });

    // 2. Guest (a new device at the same address, a fresh visitor).
    let mac2 = "02:73:00:00:00:02";
    lease(&d, mac2, "b2");
    b.clear_cookies().unwrap();
    b.goto(&portal).unwrap();
    b.send_keys(&b.find("#guest-name").unwrap(), "Gwen Guest")
        .unwrap();
    b.send_keys(&b.find("#guest-email").unwrap(), "gwen@example.org")
        .unwrap();
    b.click(&b.find("#guest-aup").unwrap()).unwrap();
    shots.take(&b, "guest");
    b.click(&b.find("#guest-submit").unwrap()).unwrap();
    b.wait_for_text("Your device is registered").unwrap();
    let shown = node_role(&d, mac2);
    assert!(
        shown.contains("guest") && shown.contains("gwen@example.org"),
        "{shown}"
    );
    eventually("guest's MAB gets the guest VLAN", || {
        radtest_mab(d.auth_port, SECRET, mac2).vlan() == Some("200")
    });

    // 3. LDAP user (slapd): rule staff → gaming; a user no rule matches is refused first.
    let mac3 = "02:73:00:00:00:03";
    lease(&d, mac3, "b3");
    b.clear_cookies().unwrap();
    b.goto(&portal).unwrap();
    b.send_keys(&b.find("#ldap1-username").unwrap(), "otto")
        .unwrap();
    b.send_keys(&b.find("#ldap1-password").unwrap(), "otto-directory-pw")
        .unwrap();
    b.click(&b.find("#ldap1-submit").unwrap()).unwrap();
    b.wait_for_text("not allowed to register a device").unwrap();
    shots.take(&b, "refused");
    assert!(
        node_role(&d, mac3).contains("status:     unreg"),
        "{}",
        node_role(&d, mac3)
    );
    b.goto(&portal).unwrap();
    b.send_keys(&b.find("#ldap1-username").unwrap(), "lena")
        .unwrap();
    b.send_keys(&b.find("#ldap1-password").unwrap(), "lena-directory-pw")
        .unwrap();
    b.click(&b.find("#ldap1-submit").unwrap()).unwrap();
    b.wait_for_text("Your device is registered").unwrap();
    assert!(
        node_role(&d, mac3).contains("gaming"),
        "{}",
        node_role(&d, mac3)
    );
    eventually("LDAP user's MAB gets the gaming VLAN", || {
        radtest_mab(d.auth_port, SECRET, mac3).vlan() == Some("300")
    });

    // 4. The user imported from PacketFence logs in with its PacketFence password.
    let mac4 = "02:73:00:00:00:04";
    lease(&d, mac4, "b4");
    b.clear_cookies().unwrap();
    b.goto(&portal).unwrap();
    b.send_keys(&b.find("#local-username").unwrap(), "pat")
        .unwrap();
    b.send_keys(&b.find("#local-password").unwrap(), "pat-packetfence-pw")
        .unwrap();
    b.click(&b.find("#local-submit").unwrap()).unwrap();
    b.wait_for_text("Your device is registered").unwrap();
    assert!(
        node_role(&d, mac4).contains("pat"),
        "{}",
        node_role(&d, mac4)
    );

    // The RFC 8908 API for the registered device.
    b.goto(&format!("{portal}/api")).unwrap();
    b.wait_for_text("\"captive\":false").unwrap();
}

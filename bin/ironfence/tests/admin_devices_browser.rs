//! The device pages in headless Chromium against a running `ironfence serve` (single
//! server, SQLite, admin listener on HTTPS): an unknown device's MAB (real `radtest`, which
//! drives `radclient`) gets the registration VLAN; an administrator logs in, searches the
//! MAC, opens the device, sees the decision that put it there, gives it the `guest` role
//! with status `reg` and saves; the next MAB answer carries the guest VLAN. A read-only
//! admin sees the device but no edit form, and a forged POST with her session is 403.
//!
//! Screenshots (desktop 1280×800, phone 390×844) go to `$IRONFENCE_SCREENSHOTS_DIR` when set
//! (docs/screenshots/), else to a temporary directory.

mod common;

use common::{DaemonBuilder, SECRET, eventually, free_tcp_port, radtest_mab};
use ironfence_testkit::webdriver::Browser;
use std::path::PathBuf;
use std::process::Command;

/// The admin listener (this test's loopback range). RADIUS stays on the harness's 127.0.0.1
/// (the switch 127.0.0.1 of the default switches.conf: radtest sends from there).
const ADMIN_IP: &str = "127.0.82.1";
const MAC: &str = "02:82:00:00:00:01";

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

    fn take(&self, b: &Browser, name: &str) {
        for (suffix, w, h) in [("desktop", 1280, 800), ("phone", 390, 844)] {
            b.set_window(w, h).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(150));
            let png = b.screenshot().unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a PNG");
            std::fs::write(self.dir.join(format!("admin-{name}-{suffix}.png")), png).unwrap();
        }
        b.set_window(1280, 800).unwrap();
    }
}

/// `curl -k`: (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-k",
            "-s",
            "-S",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .output()
        .expect("curl is required");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

/// `ada` (administrator) and `rita` (read-only): test fixtures.
fn admin_conf() -> String {
    let ada = ironfence_portal::password::hash("ada-correct-horse-9").unwrap();
    let rita = ironfence_portal::password::hash("rita-read-only-7").unwrap();
    format!(
        "# test fixture\n[account ada]\nrole=administrator\npassword={ada}\n\n\
         [account rita]\nrole=read-only\npassword={rita}\n"
    )
}

fn login(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/admin/login")).unwrap();
    b.wait_for_text("Log in").unwrap();
    b.send_keys(&b.find("#username").unwrap(), user).unwrap();
    b.send_keys(&b.find("#password").unwrap(), password)
        .unwrap();
    b.click(&b.find("#login-submit").unwrap()).unwrap();
    b.wait_for_text("Dashboard").unwrap();
}

fn session_cookie(b: &Browser) -> String {
    let cookies = b.cookies().unwrap();
    let c = cookies
        .iter()
        .find(|c| c["name"] == "ironfence_admin")
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    format!("ironfence_admin={}", c["value"].as_str().unwrap())
}

#[test]
fn role_change_in_the_device_page_changes_the_next_mab_answer() {
    let port = free_tcp_port();
    let mut d = DaemonBuilder::default()
        .pf_extra(&format!(
            "\n[admin]\nlisten={ADMIN_IP}\n\n[ports]\nadmin={port}\n"
        ))
        .file("admin.conf", &admin_conf())
        .start();
    ironfence_server::admin::auth::ensure_key(&d.conf_dir()).unwrap();

    // 1. An unknown device: the registration VLAN of [default].
    let r = radtest_mab(d.auth_port, SECRET, MAC);
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("2"), "registration VLAN: {}", r.output);

    let base = format!("https://{ADMIN_IP}:{port}");
    eventually("the admin listener answers", || {
        Command::new("curl")
            .args([
                "-k",
                "-s",
                "-o",
                "/dev/null",
                &format!("{base}/admin/login"),
            ])
            .status()
            .is_ok_and(|s| s.success())
    });
    let shots = Shots::new();
    let b = Browser::start_accepting_self_signed(1280, 800).unwrap();
    login(&b, &base, "ada", "ada-correct-horse-9");

    // 2. Search by the MAC's start, as typed (another spelling).
    b.click(&b.find("nav a[href='/admin/devices']").unwrap())
        .unwrap();
    b.wait_for_text("id=\"device-search\"").unwrap();
    b.send_keys(&b.find("#search-mac").unwrap(), "0282.0000")
        .unwrap();
    b.click(&b.find("#search-submit").unwrap()).unwrap();
    let src = b.wait_for_text("Devices 1–1 of 1").unwrap();
    assert!(src.contains(MAC), "{src}");
    shots.take(&b, "devices");

    // A bad MAC in the search: 422 beside the field.
    b.goto(&format!("{base}/admin/devices?mac=zz")).unwrap();
    let src = b.wait_for_text("field-error").unwrap();
    assert!(src.contains("hex digits"), "{src}");

    // 3. The device: unreg, and the decision that gave it VLAN 2.
    b.goto(&format!("{base}/admin/devices?mac=02:82")).unwrap();
    b.wait_for_text("Devices 1–1 of 1").unwrap();
    b.click(&b.find("a.device-link").unwrap()).unwrap();
    let src = b.wait_for_text("id=\"device-form\"").unwrap();
    assert!(
        b.current_url()
            .unwrap()
            .ends_with(&format!("/admin/devices/{MAC}"))
    );
    assert!(src.contains("badge bad\">unreg"), "{src}");
    let vlans: Vec<String> = b
        .execute("return Array.from(document.querySelectorAll('#decisions .decision-vlan')).map(e => e.textContent.trim())")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(vlans, vec!["2"], "one decision, the registration VLAN");
    assert!(
        src.contains("e2e switch") || src.contains("127.0.0.1"),
        "the switch"
    );

    // A 422 beside its field: an owner id too long.
    let pid = b.find("#edit-pid").unwrap();
    b.clear(&pid).unwrap();
    b.send_keys(&pid, &"x".repeat(300)).unwrap();
    b.click(&b.find("#device-save").unwrap()).unwrap();
    let src = b.wait_for_text("id=\"error-pid\"").unwrap();
    assert!(src.contains("id=\"form-error\""), "{src}");

    // 4. Give it the guest role, registered, and save: POST-redirect-GET with a flash.
    b.goto(&format!("{base}/admin/devices/{MAC}")).unwrap();
    b.wait_for_text("id=\"device-form\"").unwrap();
    b.click(&b.find("#edit-role option[value='guest']").unwrap())
        .unwrap();
    b.click(&b.find("#edit-status option[value='reg']").unwrap())
        .unwrap();
    b.send_keys(&b.find("#edit-notes").unwrap(), "lobby printer")
        .unwrap();
    b.click(&b.find("#device-save").unwrap()).unwrap();
    let src = b.wait_for_text("Device saved.").unwrap();
    assert!(
        b.current_url()
            .unwrap()
            .ends_with(&format!("/admin/devices/{MAC}"))
    );
    let role = b.text(&b.find("#device-role").unwrap()).unwrap();
    assert_eq!(role.trim(), "guest");
    assert!(src.contains("badge good\">reg"), "{src}");
    assert!(src.contains("lobby printer"));

    // 5. The next MAB answer: the guest VLAN of this switch (guestVlan=210).
    let r = radtest_mab(d.auth_port, SECRET, MAC);
    assert_eq!(r.code.as_deref(), Some("Access-Accept"), "{}", r.output);
    assert_eq!(r.vlan(), Some("210"), "the role's VLAN: {}", r.output);
    // And the page now explains it.
    eventually("the new decision is on the page", || {
        b.goto(&format!("{base}/admin/devices/{MAC}")).unwrap();
        b.source().unwrap().contains(">210</td>")
    });
    shots.take(&b, "device");
    // The "why this VLAN" part of the page.
    b.execute("document.getElementById('decisions').scrollIntoView()")
        .unwrap();
    shots.take(&b, "device-decisions");

    // 6. A read-only admin: the device, no form; a POST with her session and token is 403.
    b.clear_cookies().unwrap();
    login(&b, &base, "rita", "rita-read-only-7");
    b.goto(&format!("{base}/admin/devices/{MAC}")).unwrap();
    let src = b.wait_for_text("id=\"read-only-note\"").unwrap();
    assert!(!src.contains("id=\"device-form\""), "no edit form");
    assert!(!src.contains("id=\"register-form\""), "no actions");
    let csrf = src
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the layout (logout form)")
        .to_string();
    let cookie = session_cookie(&b);
    let (status, body) = curl(&[
        "-H",
        &format!("Cookie: {cookie}"),
        "--data",
        &format!("csrf={csrf}&role=default&status=unreg"),
        &format!("{base}/admin/devices/{MAC}"),
    ]);
    assert_eq!(status, 403, "{body}");
    let r = radtest_mab(d.auth_port, SECRET, MAC);
    assert_eq!(r.vlan(), Some("210"), "unchanged: {}", r.output);

    drop(b);
    d.stop();
}

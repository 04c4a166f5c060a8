//! Admin accounts and the admin audit log pages in headless Chromium against a running
//! `ironfence serve` (single server, SQLite, the admin listener on HTTPS): log in as an
//! administrator, create an operator account on /admin/admins (a weak password first: the
//! message beside the field), see it in the list and in conf/admin.conf, log in as it, and
//! find the `admin.create` entry (with its field changes, the password as "(changed)") on
//! /admin/audit. Screenshots (desktop 1280×800, phone 390×844) to `$IRONFENCE_SCREENSHOTS_DIR`.

mod common;

use common::{DaemonBuilder, eventually};
use ironfence_testkit::webdriver::Browser;
use std::path::PathBuf;
use std::process::Command;

const ADMIN_IP: &str = "127.0.81.5";

fn shots_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("IRONFENCE_SCREENSHOTS_DIR") {
        Some(d) => {
            std::fs::create_dir_all(&d).unwrap();
            (d.into(), None)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    }
}

fn take(b: &Browser, dir: &std::path::Path, name: &str) {
    for (suffix, w, h) in [("desktop", 1280, 800), ("phone", 390, 844)] {
        b.set_window(w, h).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150));
        let png = b.screenshot().unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(dir.join(format!("admin-{name}-{suffix}.png")), png).unwrap();
    }
    b.set_window(1280, 800).unwrap();
}

fn login(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/admin/login")).unwrap();
    b.wait_for_text("Log in").unwrap();
    b.send_keys(&b.find("#username").unwrap(), user).unwrap();
    b.send_keys(&b.find("#password").unwrap(), password)
        .unwrap();
    b.click(&b.find("#login-submit").unwrap()).unwrap();
    b.wait_for_text("id=\"request-rate\"").unwrap();
}

#[test]
fn create_an_operator_on_the_page_and_see_it_in_the_audit_log() {
    let port = common::free_tcp_port();
    let ada = ironfence_portal::password::hash("ada-correct-horse-9").unwrap();
    let mut d = DaemonBuilder::default()
        .pf_extra(&format!(
            "\n[admin]\nlisten={ADMIN_IP}\n\n[ports]\nadmin={port}\n"
        ))
        .file(
            "admin.conf",
            &format!("# test fixture\n[account ada]\nrole=administrator\npassword={ada}\n"),
        )
        .start();
    ironfence_server::admin::auth::ensure_key(&d.conf_dir()).unwrap();
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
    let (dir, _tmp) = shots_dir();
    let b = Browser::start_accepting_self_signed(1280, 800).unwrap();
    login(&b, &base, "ada", "ada-correct-horse-9");
    assert!(b.source().unwrap().contains(">Admins</a>"), "nav entry");

    // A weak password: 422, the message beside the password field, the name kept.
    b.goto(&format!("{base}/admin/admins")).unwrap();
    b.wait_for_text("Add an account").unwrap();
    b.send_keys(&b.find("#f-name").unwrap(), "oscar").unwrap();
    b.send_keys(&b.find("#f-password").unwrap(), "short")
        .unwrap();
    b.click(&b.find("#add").unwrap()).unwrap();
    let src = b.wait_for_text("id=\"error-password\"").unwrap();
    assert!(src.contains("value=\"oscar\""), "the name is kept: {src}");
    assert!(
        !std::fs::read_to_string(d.conf_dir().join("admin.conf"))
            .unwrap()
            .contains("oscar"),
        "nothing written"
    );

    // The operator (the form's default role), with a good passphrase.
    b.send_keys(&b.find("#f-password").unwrap(), "oscar-staple-battery-7")
        .unwrap();
    b.click(&b.find("#add").unwrap()).unwrap();
    let src = b.wait_for_text("Account oscar created").unwrap();
    assert!(b.current_url().unwrap().ends_with("/admin/admins/oscar"));
    assert!(src.contains("id=\"role\">operator<"), "{src}");
    let conf = std::fs::read_to_string(d.conf_dir().join("admin.conf")).unwrap();
    assert!(
        conf.contains("[account oscar]") && conf.contains("role=operator"),
        "{conf}"
    );
    assert!(!conf.contains("oscar-staple-battery-7"), "hashed");
    b.goto(&format!("{base}/admin/admins")).unwrap();
    let src = b.wait_for_text("data-admin=\"oscar\"").unwrap();
    assert!(src.contains("data-admin=\"ada\""), "{src}");
    take(&b, &dir, "admins");

    // The audit log: the creation by ada, its fields, the password hash never shown.
    b.goto(&format!("{base}/admin/audit")).unwrap();
    let src = b
        .wait_for_text("data-action=\"admin.create\" data-target=\"admin oscar\"")
        .unwrap();
    let row = src
        .split("data-action=\"admin.create\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains(">ada<"), "by ada: {row}");
    assert!(
        row.contains(ADMIN_IP) || row.contains("127.0.0.1"),
        "client: {row}"
    );
    assert!(row.contains("role") && row.contains("operator"), "{row}");
    assert!(row.contains("(changed)"), "password redacted: {row}");
    assert!(!src.contains("argon2"), "no hash in the page");
    assert!(src.contains("data-action=\"login\""), "ada's login: {src}");
    take(&b, &dir, "audit");
    // Filtered by target: only oscar's entry.
    b.goto(&format!("{base}/admin/audit?target=admin+oscar"))
        .unwrap();
    let src = b.wait_for_text("id=\"audit\"").unwrap();
    assert_eq!(src.matches("class=\"audit-entry\"").count(), 1, "{src}");

    // The new operator logs in; it has no Admins page (administrators only).
    b.click(&b.find("#logout").unwrap()).unwrap();
    b.wait_for_text("You are logged out.").unwrap();
    login(&b, &base, "oscar", "oscar-staple-battery-7");
    let src = b.source().unwrap();
    assert!(src.contains("operator"), "{src}");
    assert!(
        !src.contains(">Admins</a>"),
        "no Admins entry for an operator"
    );
    b.goto(&format!("{base}/admin/admins")).unwrap();
    b.wait_for_text("may not do this").unwrap();
    drop(b);
    d.stop();
}

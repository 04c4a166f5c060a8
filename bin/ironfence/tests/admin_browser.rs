//! The web admin interface in headless Chromium (WebDriver) against a running
//! `ironfence serve` (single server, SQLite, the admin listener on HTTPS with its
//! self-signed certificate): log in (wrong password first), see the dashboard with this
//! server's state and the RADIUS counters, the security headers and cookie attributes, a
//! form post without or with a wrong CSRF token refused, log out (the old cookie refused
//! after), and a log in with the TOTP second factor.
//!
//! Headers and forged posts are checked with `curl` (WebDriver does not show headers).
//! Screenshots (desktop 1280×800, phone 390×844) go to `$IRONFENCE_SCREENSHOTS_DIR` when set
//! (docs/screenshots/ in the repository), else to a temporary directory.

mod common;

use common::{DaemonBuilder, SECRET, eventually, free_tcp_port, radtest_mab};
use ironfence_testkit::webdriver::Browser;
use std::path::PathBuf;
use std::process::Command;

const ADMIN_IP: &str = "127.0.84.1";
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

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

    /// Saves the current page at both widths (desktop, then phone, back to desktop).
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

/// `curl -k` (the listener's certificate is self-signed): (status line + headers, body).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-k", "-s", "-S", "-D", "-", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is required");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text, String::new()),
    }
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A fixed TOTP secret for the second-factor account (test fixture, not a real secret).
const OTTO_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// `conf/admin.conf` with `ada` (administrator) and `otto` (read-only, TOTP): what
/// `ironfence admin add` / `admin totp` write.
fn admin_conf() -> String {
    let ada = ironfence_portal::password::hash("ada-correct-horse-9").unwrap();
    let otto = ironfence_portal::password::hash("otto-battery-staple-4").unwrap();
    format!(
        "# test fixture\n[account ada]\nrole=administrator\npassword={ada}\n\n\
         [account otto]\nrole=read-only\npassword={otto}\ntotp={OTTO_TOTP}\n"
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn admin_login_dashboard_csrf_logout_and_totp_in_chromium() {
    let port = free_tcp_port();
    let mut d = DaemonBuilder::default()
        .pf_extra(&format!(
            "\n[admin]\nlisten={ADMIN_IP}\n\n[ports]\nadmin={port}\n"
        ))
        .file("admin.conf", &admin_conf())
        .start();
    // The token key (`ironfence admin add` creates it; read by the daemon at each login).
    ironfence_server::admin::auth::ensure_key(&d.conf_dir()).unwrap();
    let otto_secret = ironfence_admin::totp::base32_decode(OTTO_TOTP).unwrap();
    // Some RADIUS traffic for the dashboard: accepted and rejected MABs.
    for i in 0..5 {
        let r = radtest_mab(d.auth_port, SECRET, &format!("02:84:00:00:00:0{i}"));
        assert!(r.code.is_some(), "{}", r.output);
    }
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

    // Security headers on the login page, an asset and an error page.
    for path in ["/admin/login", "/admin/static/admin.css", "/admin/nope"] {
        let (head, _) = curl(&[&format!("{base}{path}")]);
        assert_eq!(
            header(&head, "content-security-policy"),
            Some(CSP),
            "{path}: {head}"
        );
        assert_eq!(
            header(&head, "x-content-type-options"),
            Some("nosniff"),
            "{head}"
        );
        assert_eq!(
            header(&head, "referrer-policy"),
            Some("same-origin"),
            "{head}"
        );
    }
    let (head, _) = curl(&[&format!("{base}/admin/login")]);
    assert_eq!(header(&head, "cache-control"), Some("no-store"), "{head}");

    let shots = Shots::new();
    let b = Browser::start_accepting_self_signed(1280, 800).unwrap();

    // 1. An unauthenticated visit goes to the login page, keeping where it was going.
    b.goto(&format!("{base}/admin")).unwrap();
    let url = b.wait_for_url("/admin/login").unwrap();
    assert!(url.contains("next=%2Fadmin"), "{url}");
    b.wait_for_text("Log in").unwrap();
    assert!(
        !b.exists("#totp").unwrap(),
        "no TOTP field before it is needed"
    );
    shots.take(&b, "login");

    // 2. A wrong password: one message, whatever is wrong.
    b.send_keys(&b.find("#username").unwrap(), "ada").unwrap();
    b.send_keys(&b.find("#password").unwrap(), "not-the-password")
        .unwrap();
    b.click(&b.find("#login-submit").unwrap()).unwrap();
    b.wait_for_text("Wrong user name or password.").unwrap();
    shots.take(&b, "login-error");

    // 3. The right one: the dashboard.
    let user = b.find("#username").unwrap();
    b.clear(&user).unwrap();
    b.send_keys(&user, "ada").unwrap();
    b.send_keys(&b.find("#password").unwrap(), "ada-correct-horse-9")
        .unwrap();
    b.click(&b.find("#login-submit").unwrap()).unwrap();
    let src = b.wait_for_text("id=\"request-rate\"").unwrap();
    assert!(
        b.current_url().unwrap().ends_with("/admin"),
        "{}",
        b.current_url().unwrap()
    );
    assert!(src.contains("ada"), "the account is shown");
    assert!(src.contains("administrator"));
    assert!(src.contains("read-write"), "database state");
    assert!(src.contains("access_"), "RADIUS replies counted: {src}");
    // The nav lists the pages that exist (others' pages appear as they are registered).
    assert!(src.contains(">Dashboard</a>"), "nav");
    let cookies = b.cookies().unwrap();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "ironfence_admin")
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"))
        .clone();
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(session["path"], "/admin", "{session}");
    let token = session["value"].as_str().unwrap().to_string();
    let cookie = format!("ironfence_admin={token}");
    // Wait for a rate over at least one sample interval, then the screenshot.
    std::thread::sleep(std::time::Duration::from_secs(11));
    for i in 5..9 {
        radtest_mab(d.auth_port, SECRET, &format!("02:84:00:00:00:0{i}"));
    }
    b.goto(&format!("{base}/admin")).unwrap();
    let src = b.wait_for_text("requests/s (last").unwrap();
    assert!(!src.contains("(measuring)"), "a rate is shown");
    shots.take(&b, "dashboard");

    // 4. The dashboard's headers, with the session.
    let (head, body) = curl(&["-H", &format!("Cookie: {cookie}"), &format!("{base}/admin")]);
    assert_eq!(status_of(&head), 200, "{head}{body}");
    assert_eq!(header(&head, "content-security-policy"), Some(CSP));
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert!(
        !body.contains("<script>") && !body.contains("style="),
        "nothing inline"
    );

    // 5. A form post without a CSRF token, and with one of another session: refused, and
    // the session is not logged out.
    for form in ["", "csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "csrf=garbage"] {
        let (head, body) = curl(&[
            "-H",
            &format!("Cookie: {cookie}"),
            "--data",
            form,
            &format!("{base}/admin/logout"),
        ]);
        assert_eq!(status_of(&head), 403, "{form}: {head}{body}");
        assert!(body.contains("This form expired"), "{body}");
    }
    let (head, _) = curl(&["-H", &format!("Cookie: {cookie}"), &format!("{base}/admin")]);
    assert_eq!(status_of(&head), 200, "still logged in: {head}");

    // 6. Log out with the button: the login page says so, and the old cookie is refused.
    b.click(&b.find("#logout").unwrap()).unwrap();
    b.wait_for_text("You are logged out.").unwrap();
    assert!(
        !b.cookies()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "ironfence_admin"),
        "the cookie is deleted"
    );
    let (head, _) = curl(&["-H", &format!("Cookie: {cookie}"), &format!("{base}/admin")]);
    assert_eq!(status_of(&head), 303, "revoked: {head}");
    assert!(
        header(&head, "location").is_some_and(|l| l.starts_with("/admin/login")),
        "{head}"
    );

    // 7. TOTP: the password first, then the code field appears.
    b.send_keys(&b.find("#username").unwrap(), "otto").unwrap();
    b.send_keys(&b.find("#password").unwrap(), "otto-battery-staple-4")
        .unwrap();
    b.click(&b.find("#login-submit").unwrap()).unwrap();
    b.wait_for_text("id=\"totp\"").unwrap();
    assert!(b.source().unwrap().contains("second factor"));
    shots.take(&b, "login-totp");
    b.send_keys(&b.find("#password").unwrap(), "otto-battery-staple-4")
        .unwrap();
    let code = ironfence_admin::totp::code_at(&otto_secret, now());
    b.send_keys(&b.find("#totp").unwrap(), &code).unwrap();
    b.click(&b.find("#login-submit").unwrap()).unwrap();
    let src = b.wait_for_text("id=\"request-rate\"").unwrap();
    assert!(src.contains("otto") && src.contains("read-only"), "{src}");
    drop(b);
    d.stop();
}

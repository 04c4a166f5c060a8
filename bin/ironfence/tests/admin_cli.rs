//! `ironfence admin …` as an operator types it: the real binary on a temp conf directory.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run(conf: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironfence"));
    c.arg("--conf-dir").arg(conf).args(args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_list_totp_passwd_remove() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("pf.conf"), "[general]\nstate_dir = state\n").unwrap();
    let admin_conf = conf.join("admin.conf");
    std::fs::write(&admin_conf, "# site admins — keep this comment\n").unwrap();

    for weak in ["short\n", "packetfence\n", "Password123\n"] {
        let o = run(
            &conf,
            &[
                "admin",
                "add",
                "alice",
                "--role",
                "administrator",
                "--password-stdin",
            ],
            Some(weak),
        );
        assert!(!o.status.success(), "{weak}: {}", text(&o));
    }
    let o = run(
        &conf,
        &[
            "admin",
            "add",
            "alice",
            "--role",
            "root",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    assert!(
        !o.status.success() && text(&o).contains("unknown admin role"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&admin_conf).unwrap(),
        "# site admins — keep this comment\n"
    );

    let o = run(
        &conf,
        &[
            "admin",
            "add",
            "alice",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let body = std::fs::read_to_string(&admin_conf).unwrap();
    assert!(
        body.starts_with("# site admins — keep this comment\n"),
        "{body}"
    );
    assert!(
        body.contains("[account alice]") && body.contains("password=$argon2id$"),
        "{body}"
    );
    assert!(!body.contains("a long enough passphrase"));
    assert_eq!(mode(&admin_conf), 0o600);
    let key = conf.join("ssl/admin-token.key");
    assert_eq!(mode(&key), 0o600, "token key created private");

    let o = run(&conf, &["admin", "totp", "alice"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("otpauth://totp/"), "{}", text(&o));
    let o = run(&conf, &["admin", "list"], None);
    let t = text(&o);
    assert!(
        t.contains("alice") && t.contains("administrator") && t.contains("totp"),
        "{t}"
    );
    assert!(!t.contains("argon2"));
    let o = run(&conf, &["checkup"], None);
    assert!(
        !text(&o).contains("admin.conf"),
        "checkup is happy with the file: {}",
        text(&o)
    );

    let hash_before = std::fs::read_to_string(&admin_conf).unwrap();
    let o = run(
        &conf,
        &["admin", "passwd", "alice", "--password-stdin"],
        Some("another long passphrase\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read_to_string(&admin_conf).unwrap(), hash_before);

    let o = run(&conf, &["admin", "remove", "alice"], None);
    assert!(
        !o.status.success() && text(&o).contains("last enabled administrator"),
        "{}",
        text(&o)
    );
    let o = run(
        &conf,
        &[
            "admin",
            "add",
            "bob",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("bob's long passphrase\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&conf, &["admin", "remove", "bob"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !std::fs::read_to_string(&admin_conf)
            .unwrap()
            .contains("bob")
    );
    let o = run(&conf, &["admin", "totp", "alice", "--disable"], None);
    assert!(o.status.success());
    assert!(
        !std::fs::read_to_string(&admin_conf)
            .unwrap()
            .contains("totp=")
    );
}

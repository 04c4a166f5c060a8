//! Admin accounts through the service functions, on a real conf directory (config_write's
//! pipeline) and SQLite store.

use super::*;
use crate::admin::config_write::tests::{admin, state_with};

const PW: &str = "a long enough passphrase";

async fn lab() -> (tempfile::TempDir, AdminState) {
    let h = ironfence_portal::password::hash(PW).unwrap();
    let conf = format!(
        "# Admins of this site — keep this comment\n[account alice]\nrole=administrator\npassword={h}\n"
    );
    state_with(&[("admin.conf", &conf)]).await
}

fn file(st: &AdminState) -> String {
    std::fs::read_to_string(st.shared.config().conf_dir.join("admin.conf")).unwrap()
}

#[tokio::test]
async fn create_hashes_the_password_keeps_comments_and_audits_without_secrets() {
    let (_d, st) = lab().await;
    crate::admin::auth::ensure_key(&st.shared.config().conf_dir).unwrap();
    let w = create(
        &st,
        &admin(),
        NewAdmin {
            name: "bob".into(),
            role: Role::Operator,
            password: "another long passphrase".into(),
            disabled: false,
        },
    )
    .await
    .unwrap();
    let v = w.admin.unwrap();
    assert_eq!(
        (v.role, v.has_password, v.totp),
        (Role::Operator, true, false)
    );
    let text = file(&st);
    assert!(
        text.starts_with("# Admins of this site — keep this comment\n"),
        "{text}"
    );
    assert!(
        text.contains("[account bob]") && text.contains("password=$argon2id$"),
        "{text}"
    );
    assert!(!text.contains("another long passphrase"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(st.shared.config().conf_dir.join("admin.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.conf is private");
    let json = serde_json::to_string(&list(&st, &admin())).unwrap();
    assert!(!json.contains("argon2"), "{json}");
    // The account works at once.
    let out = crate::admin::auth::login(
        &st,
        crate::admin::auth::LoginInput {
            username: "bob".into(),
            password: "another long passphrase".into(),
            totp: None,
        },
        "127.0.0.1".parse().unwrap(),
    )
    .await;
    assert_eq!(out.unwrap().role, Role::Operator);
    let entries = st
        .shared
        .store
        .search_admin_audit(&ironfence_store::admin::AdminAuditFilter {
            action: Some("admin.create".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        !entries[0].changes.contains("argon2"),
        "{}",
        entries[0].changes
    );
    assert!(
        entries[0].changes.contains("(changed)"),
        "{}",
        entries[0].changes
    );
    // Twice: 409.
    let again = create(
        &st,
        &admin(),
        NewAdmin {
            name: "bob".into(),
            role: Role::Operator,
            password: PW.into(),
            disabled: false,
        },
    )
    .await;
    assert_eq!(again.unwrap_err().status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn weak_passwords_and_bad_names_are_422_and_write_nothing() {
    let (_d, st) = lab().await;
    let before = file(&st);
    for (name, pw, field) in [
        ("bob", "admin", "password"),
        ("bob", "short", "password"),
        ("bad name", PW, "name"),
    ] {
        let e = create(
            &st,
            &admin(),
            NewAdmin {
                name: name.into(),
                role: Role::Operator,
                password: pw.into(),
                disabled: false,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e.errors[0].field, field);
    }
    assert_eq!(file(&st), before);
}

#[tokio::test]
async fn the_last_administrator_stays() {
    let (_d, st) = lab().await;
    let demote = AdminUpdate {
        role: Some(Role::ReadOnly),
        ..Default::default()
    };
    let disable = AdminUpdate {
        disabled: Some(true),
        ..Default::default()
    };
    assert_eq!(
        update(&st, &admin(), "alice", demote.clone())
            .await
            .unwrap_err()
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        update(&st, &admin(), "alice", disable)
            .await
            .unwrap_err()
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        delete(&st, &admin(), "alice").await.unwrap_err().status,
        StatusCode::CONFLICT
    );
    create(
        &st,
        &admin(),
        NewAdmin {
            name: "carol".into(),
            role: Role::Administrator,
            password: PW.into(),
            disabled: false,
        },
    )
    .await
    .unwrap();
    let w = update(&st, &admin(), "alice", demote).await.unwrap();
    assert_eq!(w.admin.unwrap().role, Role::ReadOnly);
    assert_eq!(
        delete(&st, &admin(), "carol").await.unwrap_err().status,
        StatusCode::CONFLICT
    );
    delete(&st, &admin(), "alice").await.unwrap();
    assert_eq!(
        show(&st, &admin(), "alice").unwrap_err().status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn totp_enrolment_returns_the_secret_once_and_login_needs_it() {
    let (_d, st) = lab().await;
    crate::admin::auth::ensure_key(&st.shared.config().conf_dir).unwrap();
    let w = update(
        &st,
        &admin(),
        "alice",
        AdminUpdate {
            totp: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let setup = w.totp_setup.unwrap();
    assert!(setup.uri.starts_with("otpauth://totp/") && setup.uri.contains(&setup.secret));
    assert!(w.admin.unwrap().totp);
    let secret = ironfence_admin::totp::base32_decode(&setup.secret).unwrap();
    let client = "127.0.0.1".parse().unwrap();
    let input = |totp: Option<String>| crate::admin::auth::LoginInput {
        username: "alice".into(),
        password: PW.into(),
        totp,
    };
    let e = crate::admin::auth::login(&st, input(None), client)
        .await
        .unwrap_err();
    assert_eq!(e.errors[0].field, "totp");
    let code = ironfence_admin::totp::code_at(&secret, st.auth.now());
    crate::admin::auth::login(&st, input(Some(code)), client)
        .await
        .unwrap();
    update(
        &st,
        &admin(),
        "alice",
        AdminUpdate {
            totp: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!show(&st, &admin(), "alice").unwrap().totp);
}

#[tokio::test]
async fn account_changes_work_while_the_database_is_read_only() {
    let (_d, st) = lab().await;
    st.shared.db.set_read_only_for_test(true);
    create(
        &st,
        &admin(),
        NewAdmin {
            name: "dave".into(),
            role: Role::Operator,
            password: PW.into(),
            disabled: false,
        },
    )
    .await
    .unwrap();
    assert!(show(&st, &admin(), "dave").is_ok());
    assert!(
        st.shared.spool.is_pending(),
        "the audit entry waits in the spool"
    );
}

//! Login, tokens, backoff, TOTP, logout and the admin audit log through the real router (tower
//! oneshot), on a real conf directory and SQLite store, with an injected clock.

use super::*;
use crate::admin::{AdminState, Writes};
use axum::body::Body as HttpBody;
use axum::http::Request;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, Ordering};
use tower::ServiceExt;

const T0: i64 = 1_700_000_000;
/// RFC 6238's test seed, base32.
const TOTP_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const PASSWORD: &str = "correct horse battery";

struct Lab {
    _dir: tempfile::TempDir,
    state: AppState,
    clock: Arc<AtomicI64>,
}

fn admin_conf(role_bob: &str, bob_disabled: bool) -> String {
    let h = ironfence_portal::password::hash(PASSWORD).unwrap();
    format!(
        "# admins\n[account alice]\nrole=administrator\npassword={h}\n\n[account bob]\nrole={role_bob}\npassword={h}\ndisabled={}\n\n[account tess]\nrole=operator\npassword={h}\ntotp={TOTP_B32}\n",
        if bob_disabled { "yes" } else { "no" }
    )
}

async fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(
        dir.path(),
        "",
        &[("admin.conf", &admin_conf("read-only", false))],
    );
    assert!(ensure_key(&conf).unwrap());
    assert!(!ensure_key(&conf).unwrap(), "kept when present");
    let shared = crate::test_support::shared_for(&conf).await;
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let auth = Auth::with_clock(&conf, Arc::new(move || c.load(Ordering::SeqCst)));
    let state = Arc::new(AdminState {
        shared,
        trust_forwarded: false,
        auth,
    });
    Lab {
        _dir: dir,
        state,
        clock,
    }
}

impl Lab {
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(HttpBody::from(b.to_string())),
            None => req.body(HttpBody::empty()),
        }
        .unwrap();
        let resp = crate::admin::router_for(self.state.clone())
            .unwrap()
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, headers, v)
    }

    async fn login(
        &self,
        user: &str,
        password: &str,
        totp: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut b = json!({"username": user, "password": password});
        if let Some(t) = totp {
            b["totp"] = json!(t);
        }
        self.call("POST", "/login", None, Some(b)).await
    }

    async fn token(&self, user: &str) -> String {
        let (s, _, v) = self.login(user, PASSWORD, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    async fn audit(&self, q: &str) -> Vec<Value> {
        let t = self.token("alice").await;
        let (s, _, v) = self
            .call("GET", &format!("/admin-audit{q}"), Some(&t), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["entries"].as_array().unwrap().clone()
    }
}

/// A configuration endpoint (administrators only) other helpers registered.
fn config_endpoint() -> (String, String) {
    let e = crate::admin::api::all()
        .into_iter()
        .find(|e| e.access == Access::Config && e.writes == Writes::Config)
        .expect("a configuration endpoint exists");
    let path = e
        .path
        .split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    (e.method.to_string(), path)
}

#[tokio::test]
async fn login_token_me_and_wrong_password() {
    let lab = lab().await;
    let (s, _, v) = lab.login("alice", PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["role"], "administrator");
    assert_eq!(v["idle_timeout_s"], 900);
    assert_eq!(v["expires_at"], T0 + 12 * 3600);
    let token = v["token"].as_str().unwrap();
    let (s, h, me) = lab.call("GET", "/me", Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["account"], "alice");
    assert_eq!(me["role"], "administrator");
    assert_eq!(me["client"], "127.0.0.1");
    assert!(
        h.contains_key(TOKEN_HEADER),
        "refreshed token on every answer"
    );

    let (s, h, wrong) = lab.login("alice", "not the password", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.contains_key("www-authenticate"));
    let (s, _, unknown) = lab.login("mallory", PASSWORD, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["message"], unknown["message"], "no user enumeration");
    // A garbage token, and none at all.
    let (s, _, _) = lab.call("GET", "/me", Some("abc.def"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = lab.call("GET", "/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Cookie (pages) works like the bearer header.
    let req = Request::builder()
        .uri("/api/v1/me")
        .header("cookie", format!("other=1; {COOKIE_NAME}={token}"))
        .body(HttpBody::empty())
        .unwrap();
    let resp = crate::admin::router_for(lab.state.clone())
        .unwrap()
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn backoff_answers_429_with_retry_after_for_known_and_unknown_accounts() {
    let lab = lab().await;
    for name in ["alice", "nobody"] {
        for _ in 0..6 {
            let (s, _, _) = lab.login(name, "guess", None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
        }
        let (s, h, v) = lab.login(name, PASSWORD, None).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{name}: {v}");
        let retry: i64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1, "{retry}");
        assert!(
            v["message"].as_str().unwrap().contains("try again in"),
            "{v}"
        );
        // After the lock, the right password works again (and resets the account's counter).
        lab.advance(retry);
        if name == "alice" {
            let (s, _, v) = lab.login(name, PASSWORD, None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        lab.advance(3600);
    }
}

#[tokio::test]
async fn totp_required_accepted_and_never_twice() {
    let lab = lab().await;
    let (s, _, v) = lab.login("tess", PASSWORD, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["errors"][0]["field"], "totp", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("TOTP code required")
    );
    let secret = b"12345678901234567890";
    let (s, _, v) = lab.login("tess", PASSWORD, Some("000000")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let code = ironfence_admin::totp::code_at(secret, T0);
    let (s, _, v) = lab.login("tess", PASSWORD, Some(&code)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["role"], "operator");
    let (s, _, v) = lab.login("tess", PASSWORD, Some(&code)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "replayed: {v}");
    assert!(v["message"].as_str().unwrap().contains("already used"));
    // The next step's code works.
    lab.advance(30);
    let next = ironfence_admin::totp::code_at(secret, T0 + 30);
    let (s, _, _) = lab.login("tess", PASSWORD, Some(&next)).await;
    assert_eq!(s, StatusCode::OK);
    // A right code with a wrong password is still refused.
    lab.advance(30);
    let code = ironfence_admin::totp::code_at(secret, T0 + 60);
    let (s, _, _) = lab.login("tess", "wrong", Some(&code)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idle_expiry_refresh_and_absolute_lifetime() {
    let lab = lab().await;
    let first = lab.token("alice").await;
    // Activity every 10 minutes with the refreshed token keeps the session for 40 minutes.
    let mut t = first.clone();
    for _ in 0..4 {
        lab.advance(600);
        let (s, h, v) = lab.call("GET", "/me", Some(&t), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        t = h[TOKEN_HEADER].to_str().unwrap().to_string();
    }
    // The first token, never refreshed, is idle for 40 minutes.
    let (s, _, v) = lab.call("GET", "/me", Some(&first), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("15 minutes"), "{v}");
    lab.advance(15 * 60 + 1);
    let (s, _, _) = lab.call("GET", "/me", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "idle");
    // Past 12 hours, activity does not help.
    let mut t = lab.token("alice").await;
    for _ in 0..=(12 * 6) {
        lab.advance(600);
        let (s, h, _) = lab.call("GET", "/me", Some(&t), None).await;
        if s != StatusCode::OK {
            assert_eq!(s, StatusCode::UNAUTHORIZED);
            return;
        }
        t = h[TOKEN_HEADER].to_str().unwrap().to_string();
    }
    panic!("a session outlived 12 hours");
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let lab = lab().await;
    let t = lab.token("alice").await;
    let other = lab.token("alice").await;
    let (s, _, _) = lab.call("POST", "/logout", Some(&t), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = lab.call("GET", "/me", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("logged out"), "{v}");
    // Stored in the database for the other servers.
    let revoked = lab
        .state
        .shared
        .store
        .revoked_admin_sessions(T0)
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    // Another session of the same account is not affected.
    let (s, _, _) = lab.call("GET", "/me", Some(&other), None).await;
    assert_eq!(s, StatusCode::OK);
    // Another server (a fresh Auth over the same store) refuses it too, after its refresh.
    let c = lab.clock.clone();
    let peer = Arc::new(AdminState {
        shared: lab.state.shared.clone(),
        trust_forwarded: false,
        auth: Auth::with_clock(
            &lab.state.shared.config().conf_dir,
            Arc::new(move || c.load(Ordering::SeqCst)),
        ),
    });
    let req = Request::builder()
        .uri("/api/v1/me")
        .header("authorization", format!("Bearer {t}"))
        .body(HttpBody::empty())
        .unwrap();
    let resp = crate::admin::router_for(peer)
        .unwrap()
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_while_read_only_is_kept_in_memory_then_written() {
    let lab = lab().await;
    let t = lab.token("alice").await;
    lab.state.shared.db.set_read_only_for_test(true);
    let (s, _, _) = lab.call("POST", "/logout", Some(&t), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = lab.call("GET", "/me", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "refused here at once");
    assert!(
        lab.state
            .shared
            .store
            .revoked_admin_sessions(T0)
            .await
            .unwrap()
            .is_empty()
    );
    lab.state.shared.db.set_read_only_for_test(false);
    lab.advance(REVOCATION_REFRESH_SECS);
    let (s, _, _) = lab.call("GET", "/me", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        lab.state
            .shared
            .store
            .revoked_admin_sessions(T0)
            .await
            .unwrap()
            .len(),
        1,
        "written once the database takes writes"
    );
}

#[tokio::test]
async fn roles_are_read_from_admin_conf_at_each_request() {
    let lab = lab().await;
    let (method, path) = config_endpoint();
    let bob = lab.token("bob").await;
    let (s, _, v) = lab.call(&method, &path, Some(&bob), Some(json!({}))).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "read-only on {method} {path}: {v}"
    );
    let (s, _, _) = lab.call("GET", "/me", Some(&bob), None).await;
    assert_eq!(s, StatusCode::OK);
    // Promote bob: the same token gets the new role at once …
    let conf = lab.state.shared.config().conf_dir.clone();
    std::fs::write(conf.join("admin.conf"), admin_conf("administrator", false)).unwrap();
    lab.state.shared.reload().unwrap();
    let (s, _, v) = lab.call("GET", "/me", Some(&bob), None).await;
    assert_eq!(v["role"], "administrator", "{s} {v}");
    let (s, _, _) = lab.call(&method, &path, Some(&bob), Some(json!({}))).await;
    assert_ne!(s, StatusCode::FORBIDDEN);
    // … demote and disable him: refused at once.
    std::fs::write(conf.join("admin.conf"), admin_conf("read-only", false)).unwrap();
    lab.state.shared.reload().unwrap();
    let (s, _, _) = lab.call(&method, &path, Some(&bob), Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    std::fs::write(conf.join("admin.conf"), admin_conf("read-only", true)).unwrap();
    lab.state.shared.reload().unwrap();
    let (s, _, _) = lab.call("GET", "/me", Some(&bob), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "disabled");
    let (s, _, _) = lab.login("bob", PASSWORD, None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a disabled account cannot log in"
    );
}

#[tokio::test]
async fn logins_are_in_the_admin_audit_log_without_passwords() {
    let lab = lab().await;
    let (s, _, _) = lab.login("alice", "Wrong-Password-123", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let entries = lab.audit("?action=login.failure").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["account"], "alice");
    assert_eq!(entries[0]["client"], "127.0.0.1");
    assert!(
        entries[0]["result"]
            .as_str()
            .unwrap()
            .starts_with("refused")
    );
    let all = lab.audit("?account=alice").await;
    assert!(
        all.iter()
            .any(|e| e["action"] == "login" && e["result"] == "ok")
    );
    assert!(
        !serde_json::to_string(&all)
            .unwrap()
            .contains("Wrong-Password")
    );
    // Bad queries name the field.
    let t = lab.token("alice").await;
    let (s, _, v) = lab
        .call("GET", "/admin-audit?limit=0", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["field"], "limit");
    let (s, _, _) = lab
        .call("GET", "/admin-audit?since=yesterday", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn audit_entries_are_spooled_while_read_only_and_replayed() {
    let lab = lab().await;
    let state = &lab.state;
    state.shared.db.set_read_only_for_test(true);
    // An admin logs in on a partitioned server: works (admin.conf is a file), entry spooled.
    let t = lab.token("alice").await;
    let who = authenticate(
        state,
        &{
            let mut h = HeaderMap::new();
            h.insert("authorization", format!("Bearer {t}").parse().unwrap());
            h
        },
        None,
    )
    .await
    .unwrap();
    audit_log::record(
        state,
        &who,
        Change::new("switch.update", "switch 10.0.0.1")
            .field("description", Some("old".into()), Some("new".into()))
            .field(
                "radiusSecret",
                Some("s3cret-old".into()),
                Some("s3cret-new".into()),
            ),
    )
    .await
    .unwrap();
    assert!(state.shared.spool.is_pending(), "durable in the spool");
    let none = state
        .shared
        .store
        .search_admin_audit(&ironfence_store::admin::AdminAuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "nothing written to a read-only database");
    state.shared.db.set_read_only_for_test(false);
    let r = state
        .shared
        .spool
        .replay(&state.shared.store, || T0)
        .await
        .unwrap();
    assert!(r.drained && r.applied == 2, "{r:?}");
    // Replaying again applies nothing twice.
    let entries = lab.audit("?target=switch%2010.0.0.1").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["action"], "switch.update");
    assert_eq!(e["account"], "alice");
    assert_eq!(
        e["changes"][0],
        json!({"field": "description", "before": "old", "after": "new"})
    );
    assert_eq!(
        e["changes"][1],
        json!({"field": "radiusSecret", "before": "(set)", "after": "(changed)"})
    );
    assert!(!e.to_string().contains("s3cret"));
}

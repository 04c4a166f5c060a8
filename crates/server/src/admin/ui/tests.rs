//! The page framework through the router (tower `oneshot`): security headers on every answer,
//! the login redirect, CSRF and read-only refusals, flash cookies, rendering with the layout.

use super::*;
use axum::body::Body;
use axum::http::Request as HttpRequest;
use ironfence_admin::Role;
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, Arc<crate::Shared>, Router) {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), "", &[]);
    let shared = crate::test_support::shared_for(&conf).await;
    let router = crate::admin::router(shared.clone(), false).unwrap();
    (dir, shared, router)
}

async fn body_text(r: Response) -> String {
    let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}

fn assert_security_headers(r: &Response) {
    let h = r.headers();
    assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::REFERRER_POLICY], "same-origin");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert!(h.contains_key(header::CACHE_CONTROL));
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    let (_d, _s, app) = app().await;
    for (path, status) in [
        ("/admin/login", StatusCode::OK),
        ("/admin/static/admin.css", StatusCode::OK),
        ("/admin/static/admin.js", StatusCode::OK),
        ("/admin/no-such-page", StatusCode::NOT_FOUND),
        ("/admin", StatusCode::SEE_OTHER),
        ("/admin/", StatusCode::SEE_OTHER),
    ] {
        let r = app
            .clone()
            .oneshot(HttpRequest::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_security_headers(&r);
        if !path.contains("/static/") {
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store", "{path}");
        }
    }
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_login_with_next() {
    let (_d, _s, app) = app().await;
    let r = app
        .clone()
        .oneshot(HttpRequest::get("/admin?x=1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/admin/login?next=%2Fadmin%3Fx%3D1"
    );
    // A garbage cookie is no session either.
    let r = app
        .oneshot(
            HttpRequest::get("/admin")
                .header(header::COOKIE, format!("{COOKIE}=forged.token"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_login_page_sets_a_pre_login_cookie_and_escapes() {
    let (_d, _s, app) = app().await;
    let r = app
        .oneshot(
            HttpRequest::get("/admin/login?next=/admin/devices")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with(&format!("{PRE_COOKIE}=")), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let html = body_text(r).await;
    assert!(html.contains("name=\"csrf\""), "{html}");
    assert!(
        html.contains("value=\"&#x2f;admin&#x2f;devices\""),
        "{html}"
    );
    // No inline script or style anywhere (the CSP would block it).
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(!html.contains("<style"), "{html}");
}

#[test]
fn next_is_local_only() {
    assert_eq!(
        safe_next("/admin/devices?q=1").as_deref(),
        Some("/admin/devices?q=1")
    );
    for bad in [
        "https://evil.example/",
        "//evil.example",
        "/admin//evil.example",
        "/admin\\@evil",
        "/elsewhere",
        "/admin/login",
        "/admin/x y",
    ] {
        assert_eq!(safe_next(bad), None, "{bad}");
    }
}

#[test]
fn cookies_are_strict_and_secure_over_https() {
    let c = cookie(COOKIE, "v", true, Some(0));
    assert_eq!(
        c,
        "ironfence_admin=v; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
    );
    assert!(!cookie(COOKIE, "v", false, None).contains("Secure"));
}

#[test]
fn flash_cookies_are_signed() {
    let key = b"k".repeat(32);
    let f = Flash::ok("Switch 10.0.0.1 saved");
    let v = encode_flash(&key, &f);
    assert_eq!(decode_flash(&key, &v), Some(f));
    assert_eq!(decode_flash(b"another key", &v), None);
    // A message made up by someone else is not shown.
    let forged = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(b"ok\0you have been hacked"),
        v.split_once('.').unwrap().1
    );
    assert_eq!(decode_flash(&key, &forged), None);
    assert_eq!(decode_flash(&key, "garbage"), None);
}

/// A page user as the gate makes one (the real login is `auth`'s).
fn user(shared: &Arc<crate::Shared>, role: Role) -> (AppState, PageUser) {
    let state = Arc::new(AdminState::new(shared.clone(), false));
    let ui = Arc::new(Ui {
        templates: Templates::new(all_templates(), std::path::Path::new("/nonexistent")),
        routes: all_pages()
            .iter()
            .filter(|p| p.method == Method::GET)
            .map(|p| (p.path, p.access))
            .collect(),
        rates: dashboard::Rates::new(),
    });
    let principal = Principal {
        account: "ada<script>".into(),
        role,
        session: "s1".into(),
        client: "127.0.84.9".parse().unwrap(),
    };
    let who = PageUser {
        csrf: csrf::issue(&[7; 32], &principal.session, now_unix(), 60),
        principal,
        path: "/admin".into(),
        flash: Some(Flash::ok("Saved.")),
        secure: true,
        key: vec![7; 32],
        ui,
    };
    (state, who)
}

#[tokio::test]
async fn render_adds_the_layout_the_banner_and_clears_the_flash() {
    let (_d, shared, _app) = app().await;
    let (state, who) = user(&shared, Role::Operator);
    let r = render(
        &state,
        &who,
        "error.html",
        minijinja::context! { title => "T", message => "<b>m</b>" },
    );
    let set = r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with(&format!("{FLASH_COOKIE}=;")) && set.contains("Max-Age=0"));
    let html = body_text(r).await;
    assert!(
        html.contains("ada&lt;script&gt;"),
        "escaped account: {html}"
    );
    assert!(
        html.contains("&lt;b&gt;m&lt;&#x2f;b&gt;"),
        "escaped message"
    );
    assert!(html.contains("operator"));
    assert!(html.contains("id=\"flash\""));
    assert!(
        html.contains(&format!("value=\"{}\"", who.csrf)),
        "logout form"
    );
    assert!(
        html.contains("href=\"&#x2f;admin\" aria-current=\"page\">Dashboard"),
        "{html}"
    );
    assert!(!html.contains("read-only-banner"));

    shared.db.set_read_only_for_test(true);
    let html = body_text(render(&state, &who, "error.html", minijinja::context! {})).await;
    assert!(html.contains("read-only-banner"), "{html}");
    assert!(html.contains("configuration changes are still accepted"));
}

#[tokio::test]
async fn the_dashboard_shows_this_server_and_the_radius_counters() {
    let (_d, shared, _app) = app().await;
    let (state, who) = user(&shared, Role::ReadOnly);
    shared
        .metrics
        .requests
        .get_or_create(&[("port", "auth"), ("code", "Access-Request")])
        .inc_by(40);
    shared.metrics.reply("access_accept");
    // A sample 10 s ago with 20 requests: 2 requests/s since.
    let mut old = dashboard::Totals::default();
    old.requests.insert("auth/Access-Request".into(), 20.0);
    who.ui.rates.push(
        tokio::time::Instant::now() - std::time::Duration::from_secs(10),
        old,
    );
    let r = dashboard_page(state.clone(), who.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = body_text(r).await;
    let cfg = shared.config();
    assert!(html.contains(&cfg.identity), "{html}");
    assert!(html.contains("read-write"), "{html}");
    assert!(html.contains("access_accept"), "{html}");
    let rate = html
        .split("id=\"request-rate\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let rate: f64 = rate.parse().unwrap();
    assert!((1.8..=2.1).contains(&rate), "{rate}");
    // A read-only role sees the dashboard but no Devices link it could not use… the nav
    // lists only the pages that exist and that the role may open.
    assert!(html.contains("href=\"&#x2f;admin\""));
}

async fn dashboard_page(state: AppState, who: PageUser) -> Response {
    let req = HttpRequest::get("/admin/").body(Body::empty()).unwrap();
    let mut req = req;
    req.extensions_mut().insert(who);
    let r = Router::new()
        .route("/admin/", axum::routing::get(dashboard::dashboard))
        .with_state(state);
    r.oneshot(req).await.unwrap()
}

#[tokio::test]
async fn forms_decode_into_types_naming_the_bad_field() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct F {
        role: String,
        notes: Option<String>,
    }
    let data = FormData(HashMap::from([
        ("csrf".to_string(), "t".to_string()),
        ("role".to_string(), "guest".to_string()),
    ]));
    let f: F = decode_form(&data).unwrap();
    assert_eq!(f.role, "guest");
    let data = FormData(HashMap::from([("colour".to_string(), "red".to_string())]));
    let e = decode_form::<F>(&data).unwrap_err();
    assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.message.contains("colour"), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// The gate with real sessions (auth::login over admin.conf and the token key).

/// A state whose admin.conf has `ada` (administrator) and `rita` (read-only), logged in:
/// (state, ada's token, rita's token).
async fn logged_in() -> (tempfile::TempDir, AppState, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), "", &[]);
    let hash = ironfence_portal::password::hash("a-long-test-password").unwrap();
    std::fs::write(
        conf.join("admin.conf"),
        format!(
            "[account ada]\nrole=administrator\npassword={hash}\n\n[account rita]\nrole=read-only\npassword={hash}\n"
        ),
    )
    .unwrap();
    crate::admin::auth::ensure_key(&conf).unwrap();
    let shared = crate::test_support::shared_for(&conf).await;
    let state: AppState = Arc::new(AdminState::new(shared, false));
    let mut tokens = Vec::new();
    for who in ["ada", "rita"] {
        let out = crate::admin::auth::login(
            &state,
            crate::admin::auth::LoginInput {
                username: who.into(),
                password: "a-long-test-password".into(),
                totp: None,
            },
            "127.0.84.9".parse().unwrap(),
        )
        .await
        .unwrap();
        tokens.push(out.token);
    }
    let rita = tokens.pop().unwrap();
    let ada = tokens.pop().unwrap();
    (dir, state, ada, rita)
}

/// The pages plus two of the tests' own: a device change (Data) and a configuration change.
fn test_router(state: &AppState) -> Router {
    async fn data(who: PageUser, FormData(f): FormData) -> Response {
        redirect(
            &who,
            "/admin",
            Some(Flash::ok(format!(
                "changed {}",
                f.get("what").cloned().unwrap_or_default()
            ))),
        )
    }
    async fn config(who: PageUser) -> Response {
        redirect(&who, "/admin", Some(Flash::ok("configuration saved")))
    }
    let mut pages = all_pages();
    pages.push(
        Page::post("/t/device")
            .access(Access::Devices)
            .writes(Writes::Data)
            .to(data),
    );
    pages.push(
        Page::post("/t/config")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(config),
    );
    Router::new().nest("/admin", build(state.clone(), pages))
}

fn with_cookie(req: axum::http::request::Builder, token: &str) -> axum::http::request::Builder {
    req.header(header::COOKIE, format!("{COOKIE}={token}"))
}

/// The CSRF token of the page at `path` (from its logout form).
async fn page_csrf(app: &Router, token: &str, path: &str) -> String {
    let r = app
        .clone()
        .oneshot(
            with_cookie(HttpRequest::get(path), token)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let html = body_text(r).await;
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string()
}

fn post(path: &str, token: &str, form: &str) -> HttpRequest<Body> {
    with_cookie(HttpRequest::post(path), token)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_with_a_session_refreshes_the_cookie() {
    let (_d, state, ada, _) = logged_in().await;
    let app = test_router(&state);
    let r = app
        .clone()
        .oneshot(
            with_cookie(HttpRequest::get("/admin"), &ada)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(&r);
    let set = r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with(&format!("{COOKIE}=")), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let html = body_text(r).await;
    assert!(html.contains("Dashboard") && html.contains("ada"), "{html}");
}

#[tokio::test]
async fn posts_without_or_with_a_wrong_csrf_token_are_refused() {
    let (_d, state, ada, rita) = logged_in().await;
    let app = test_router(&state);
    let good = page_csrf(&app, &ada, "/admin").await;
    let other = page_csrf(&app, &rita, "/admin").await;
    for form in [
        "what=x".to_string(),
        "what=x&csrf=garbage".to_string(),
        format!("what=x&csrf={other}"),
    ] {
        let r = app
            .clone()
            .oneshot(post("/admin/t/device", &ada, &form))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{form}");
        assert_security_headers(&r);
        assert!(body_text(r).await.contains("This form expired"));
    }
    let r = app
        .clone()
        .oneshot(post(
            "/admin/t/device",
            &ada,
            &format!("what=x&csrf={good}"),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The flash of the redirect is shown once by the next page.
    let flash = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(FLASH_COOKIE))
        .unwrap();
    let flash = flash.split(';').next().unwrap().to_string();
    let r = app
        .clone()
        .oneshot(
            with_cookie(HttpRequest::get("/admin"), &ada)
                .header(header::COOKIE, flash)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(body_text(r).await.contains("changed x"));
}

#[tokio::test]
async fn roles_and_the_read_only_rule_are_applied_by_the_gate() {
    let (_d, state, ada, rita) = logged_in().await;
    let app = test_router(&state);
    let rita_csrf = page_csrf(&app, &rita, "/admin").await;
    let r = app
        .clone()
        .oneshot(post(
            "/admin/t/device",
            &rita,
            &format!("what=x&csrf={rita_csrf}"),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(body_text(r).await.contains("may not do this"));

    state.shared.db.set_read_only_for_test(true);
    let csrf = page_csrf(&app, &ada, "/admin").await;
    let r = app
        .clone()
        .oneshot(post(
            "/admin/t/device",
            &ada,
            &format!("what=x&csrf={csrf}"),
        ))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "data refused read-only"
    );
    let html = body_text(r).await;
    assert!(html.contains("read-only-banner"), "{html}");
    let r = app
        .clone()
        .oneshot(post("/admin/t/config", &ada, &format!("csrf={csrf}")))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "configuration allowed read-only"
    );
}

#[tokio::test]
async fn login_page_posts_log_in_and_logout_revokes() {
    let (_d, state, _, _) = logged_in().await;
    let app = test_router(&state);
    let r = app
        .clone()
        .oneshot(
            HttpRequest::get("/admin/login")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let pre = r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = body_text(r).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let login = |form: String, cookie: Option<String>| {
        let mut b = HttpRequest::post("/admin/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::from(form)).unwrap()
    };
    // Login CSRF: without the pre-login cookie the token is refused.
    let r = app
        .clone()
        .oneshot(login(
            format!("csrf={csrf}&username=ada&password=a-long-test-password"),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .clone()
        .oneshot(login(
            format!("csrf={csrf}&username=ada&password=wrong"),
            Some(pre.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(r).await.contains("Wrong user name or password."));
    let r = app
        .clone()
        .oneshot(login(
            format!(
                "csrf={csrf}&username=ada&password=a-long-test-password&next=%2Fadmin%2Fcluster"
            ),
            Some(pre),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/admin/cluster");
    let token = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{COOKIE}=")))
        .unwrap();
    let token = token
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches(&format!("{COOKIE}="))
        .to_string();
    let csrf = page_csrf(&app, &token, "/admin").await;
    let r = app
        .clone()
        .oneshot(post("/admin/logout", &token, &format!("csrf={csrf}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cleared = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().unwrap().starts_with(&format!("{COOKIE}=;")));
    assert!(cleared, "the session cookie is deleted");
    let r = app
        .clone()
        .oneshot(
            with_cookie(HttpRequest::get("/admin"), &token)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the revoked session is refused"
    );
}

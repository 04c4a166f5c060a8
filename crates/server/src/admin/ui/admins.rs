//! Admin accounts pages (`/admin/admins…`): the list with a create form, and one account's
//! page (role, enabled, password reset, TOTP, delete). Every write calls `admin::admins` (the
//! API's code: weak-password check, last-administrator rule, config_write push, audit), so the
//! page and `PATCH /api/v1/admins/{name}` cannot disagree. Configuration writes: allowed while
//! the database is read-only (admin.conf is in the synchronized configuration).

use super::{Flash, FormData, Page, PageError, PageUser, field_errors, redirect, render_status};
use crate::admin::admins::{self, AdminUpdate, NewAdmin, TotpSetup};
use crate::admin::config_write::ConfigWriteReport;
use crate::admin::{AdminState, ApiError, AppState, Writes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ironfence_admin::{Access, Role};
use std::collections::BTreeMap;

pub const TEMPLATES: &[(&str, &str)] = &[
    ("admins.html", include_str!("templates/admins.html")),
    ("admin.html", include_str!("templates/admin.html")),
];

pub fn pages() -> Vec<Page> {
    vec![
        Page::get("/admins").access(Access::Config).to(list),
        Page::post("/admins")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(create),
        Page::get("/admins/{name}").access(Access::Config).to(show),
        Page::post("/admins/{name}")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(save),
        Page::post("/admins/{name}/password")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(password),
        Page::post("/admins/{name}/totp")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(totp),
        Page::post("/admins/{name}/delete")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(remove),
    ]
}

const ROLES: &[&str] = &["administrator", "operator", "read-only"];

fn href(name: &str) -> String {
    format!("/admin/admins/{name}")
}

/// A role from a form field; a bad one is a 422 naming the field (as the API's body would be).
fn role_field(form: &FormData) -> Result<Role, ApiError> {
    let v = form
        .get("role")
        .ok_or_else(|| ApiError::invalid("role", "choose a role"))?;
    v.parse::<Role>()
        .map_err(|_| ApiError::invalid("role", "administrator, operator or read-only"))
}

/// What the admin typed, to show again beside the errors (never the password).
fn entered(form: &FormData) -> BTreeMap<String, String> {
    form.0
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "password"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The servers a configuration push did not reach, for the flash.
fn push_note(what: String, report: &ConfigWriteReport) -> Flash {
    let failed: Vec<String> = report.failed().map(|s| s.server.clone()).collect();
    if failed.is_empty() {
        Flash::ok(what)
    } else {
        Flash::error(format!(
            "{what} But these servers could not be updated: {} (the cluster's conflict check will update them when they are back).",
            failed.join(", ")
        ))
    }
}

fn list_page(
    state: &AdminState,
    who: &PageUser,
    status: StatusCode,
    error: Option<&ApiError>,
    form: Option<&FormData>,
) -> Response {
    let l = admins::list(state, &who.principal);
    render_status(
        state,
        who,
        status,
        "admins.html",
        minijinja::context! {
            admins => l.admins,
            roles => ROLES,
            form => form.map(entered).unwrap_or_default(),
            message => error.map(|e| e.message.clone()),
            errors => error.map(field_errors).unwrap_or_default(),
        },
    )
}

async fn list(State(state): State<AppState>, who: PageUser) -> Result<Response, PageError> {
    Ok(list_page(&state, &who, StatusCode::OK, None, None))
}

async fn create(
    State(state): State<AppState>,
    who: PageUser,
    form: FormData,
) -> Result<Response, PageError> {
    let input = match role_field(&form) {
        Ok(role) => NewAdmin {
            name: form.get("name").unwrap_or_default().to_string(),
            role,
            // Not trimmed: a passphrase may end in a space.
            password: form.0.get("password").cloned().unwrap_or_default(),
            disabled: form.checked("disabled"),
        },
        Err(e) => {
            return Ok(list_page(&state, &who, e.status, Some(&e), Some(&form)));
        }
    };
    let name = input.name.clone();
    match admins::create(&state, &who.principal, input).await {
        Ok(w) => Ok(redirect(
            &who,
            &href(&name),
            Some(push_note(
                format!(
                    "Account {name} created ({}).",
                    w.admin.map(|a| a.role.as_str()).unwrap_or("")
                ),
                &w.report,
            )),
        )),
        Err(e) if matches!(e.status.as_u16(), 400 | 409 | 422) => {
            Ok(list_page(&state, &who, e.status, Some(&e), Some(&form)))
        }
        Err(e) => Err(e.into()),
    }
}

fn account_page(
    state: &AdminState,
    who: &PageUser,
    name: &str,
    status: StatusCode,
    error: Option<&ApiError>,
    totp_setup: Option<&TotpSetup>,
) -> Result<Response, PageError> {
    let a = admins::show(state, &who.principal, name)?;
    Ok(render_status(
        state,
        who,
        status,
        "admin.html",
        minijinja::context! {
            a,
            href => href(name),
            audit_href => format!("/admin/audit?target={}", crate::web::form::encode(&format!("admin {name}"))),
            roles => ROLES,
            is_self => who.principal.account == name,
            totp_setup,
            message => error.map(|e| e.message.clone()),
            errors => error.map(field_errors).unwrap_or_default(),
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    account_page(&state, &who, &name, StatusCode::OK, None, None)
}

/// Runs an update; a refused one (400/409/422) shows the account page again with the reason.
async fn apply(
    state: &AdminState,
    who: &PageUser,
    name: &str,
    input: AdminUpdate,
    done: &str,
) -> Result<Response, PageError> {
    match admins::update(state, &who.principal, name, input).await {
        Ok(w) => Ok(redirect(
            who,
            &href(name),
            Some(push_note(done.to_string(), &w.report)),
        )),
        Err(e) if matches!(e.status.as_u16(), 400 | 409 | 422) => {
            account_page(state, who, name, e.status, Some(&e), None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Role and enabled state.
async fn save(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let role = match role_field(&form) {
        Ok(r) => r,
        Err(e) => return account_page(&state, &who, &name, e.status, Some(&e), None),
    };
    let input = AdminUpdate {
        role: Some(role),
        disabled: Some(form.checked("disabled")),
        ..AdminUpdate::default()
    };
    apply(
        &state,
        &who,
        &name,
        input,
        &format!("Account {name} saved."),
    )
    .await
}

async fn password(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let input = AdminUpdate {
        password: Some(form.0.get("password").cloned().unwrap_or_default()),
        ..AdminUpdate::default()
    };
    apply(
        &state,
        &who,
        &name,
        input,
        &format!("Password of {name} changed."),
    )
    .await
}

/// `action=enable` makes a new secret and shows its otpauth URI on this answer only (not
/// after a redirect: the flash would carry it in a cookie); `action=disable` turns TOTP off.
async fn totp(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let enable = match form.get("action") {
        Some("enable") => true,
        Some("disable") => false,
        _ => {
            let e = ApiError::invalid("action", "enable or disable");
            return account_page(&state, &who, &name, e.status, Some(&e), None);
        }
    };
    let input = AdminUpdate {
        totp: Some(enable),
        ..AdminUpdate::default()
    };
    if !enable {
        return apply(
            &state,
            &who,
            &name,
            input,
            &format!("TOTP turned off for {name}."),
        )
        .await;
    }
    match admins::update(&state, &who.principal, &name, input).await {
        Ok(w) => account_page(
            &state,
            &who,
            &name,
            StatusCode::OK,
            None,
            w.totp_setup.as_ref(),
        ),
        Err(e) if matches!(e.status.as_u16(), 400 | 409 | 422) => {
            account_page(&state, &who, &name, e.status, Some(&e), None)
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    match admins::delete(&state, &who.principal, &name).await {
        Ok(w) => Ok(redirect(
            &who,
            "/admin/admins",
            Some(push_note(format!("Account {name} deleted."), &w.report)),
        )),
        Err(e) if e.status == StatusCode::CONFLICT => {
            account_page(&state, &who, &name, e.status, Some(&e), None)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    //! Through the whole admin router with a real session (a token from `auth::login` in the
    //! page cookie, the CSRF token read from the page), as a browser does.

    use crate::admin::auth::{LoginInput, ensure_key, login};
    use crate::admin::config_write::tests::state_with;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::response::Response;
    use tower::ServiceExt;

    const PW: &str = "alice-correct-horse-1";

    struct Lab {
        _dir: tempfile::TempDir,
        st: crate::admin::AdminState,
        app: Router,
    }

    async fn lab() -> Lab {
        let h = ironfence_portal::password::hash(PW).unwrap();
        let (dir, st) = state_with(&[(
            "admin.conf",
            &format!("[account alice]\nrole=administrator\npassword={h}\n"),
        )])
        .await;
        ensure_key(&st.shared.config().conf_dir).unwrap();
        let app = crate::admin::router(st.shared.clone(), false).unwrap();
        Lab { _dir: dir, st, app }
    }

    async fn cookie_for(lab: &Lab, user: &str, pw: &str) -> String {
        let out = login(
            &lab.st,
            LoginInput {
                username: user.into(),
                password: pw.into(),
                totp: None,
            },
            "127.0.81.9".parse().unwrap(),
        )
        .await
        .unwrap();
        format!("{}={}", super::super::COOKIE, out.token)
    }

    async fn get(lab: &Lab, cookie: &str, path: &str) -> (StatusCode, String) {
        let r = lab
            .app
            .clone()
            .oneshot(with_peer(
                Request::get(path)
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap(),
            ))
            .await
            .unwrap();
        text(r).await
    }

    async fn post(lab: &Lab, cookie: &str, path: &str, form: &str) -> Response {
        lab.app
            .clone()
            .oneshot(with_peer(
                Request::post(path)
                    .header(header::COOKIE, cookie)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form.to_string()))
                    .unwrap(),
            ))
            .await
            .unwrap()
    }

    /// The browser's address, as the serve loop sets it (HTTPS: the cookie is Secure).
    fn with_peer(mut r: Request<Body>) -> Request<Body> {
        r.extensions_mut().insert(crate::web::Peer {
            addr: "127.0.81.9:50000".parse().unwrap(),
            local: "127.0.81.1:1443".parse().unwrap(),
            tls: true,
        });
        r
    }

    async fn text(r: Response) -> (StatusCode, String) {
        let s = r.status();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (s, String::from_utf8(b.to_vec()).unwrap())
    }

    fn csrf_of(html: &str) -> String {
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    }

    fn conf(lab: &Lab) -> String {
        std::fs::read_to_string(lab.st.shared.config().conf_dir.join("admin.conf")).unwrap()
    }

    #[tokio::test]
    async fn create_change_totp_and_delete_an_account_on_the_pages_then_see_the_audit_log() {
        let lab = lab().await;
        let c = cookie_for(&lab, "alice", PW).await;
        let (s, page) = get(&lab, &c, "/admin/admins").await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(page.contains("data-admin=\"alice\""), "{page}");
        assert!(page.contains("(you)"), "{page}");
        let csrf = csrf_of(&page);

        // A weak password: 422 with the message beside the field; nothing written.
        let (s, page) = text(
            post(
                &lab,
                &c,
                "/admin/admins",
                &format!("csrf={csrf}&name=bob&role=operator&password=short"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"error-password\""), "{page}");
        assert!(page.contains("value=\"bob\""), "name kept");
        assert!(!conf(&lab).contains("bob"));
        // A bad role: 422 beside the role.
        let (s, page) = text(
            post(
                &lab,
                &c,
                "/admin/admins",
                &format!("csrf={csrf}&name=bob&role=root&password=bob-long-passphrase-2"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"error-role\""), "{page}");

        // Created: 303 to its page with a flash; admin.conf has it hashed.
        let r = post(
            &lab,
            &c,
            "/admin/admins",
            &format!("csrf={csrf}&name=bob&role=operator&password=bob-long-passphrase-2"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/admin/admins/bob");
        let text_conf = conf(&lab);
        assert!(text_conf.contains("[account bob]") && text_conf.contains("role=operator"));
        assert!(!text_conf.contains("bob-long-passphrase-2"));
        // The account logs in at once; as an operator it may not open the page.
        let bc = cookie_for(&lab, "bob", "bob-long-passphrase-2").await;
        let (s, _) = get(&lab, &bc, "/admin/admins").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // Existing name: 409 shown on the list page.
        let (s, page) = text(
            post(
                &lab,
                &c,
                "/admin/admins",
                &format!("csrf={csrf}&name=bob&role=operator&password=bob-long-passphrase-2"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert!(page.contains("exists already"), "{page}");

        // Promote and disable bob: the role form.
        let r = post(
            &lab,
            &c,
            "/admin/admins/bob",
            &format!("csrf={csrf}&role=read-only&disabled=yes"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let (_, page) = get(&lab, &c, "/admin/admins/bob").await;
        assert!(page.contains("id=\"role\">read-only<"), "{page}");
        assert!(page.contains("badge bad\">disabled"), "{page}");
        let (s, _) = get(&lab, &bc, "/admin").await;
        assert_eq!(s, StatusCode::SEE_OTHER, "disabled: the session ends");

        // The last administrator cannot demote herself: 409 on her page.
        let (s, page) = text(
            post(
                &lab,
                &c,
                "/admin/admins/alice",
                &format!("csrf={csrf}&role=operator"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert!(page.contains("last enabled administrator"), "{page}");
        // …nor delete herself.
        let (s, _) = text(
            post(
                &lab,
                &c,
                "/admin/admins/alice/delete",
                &format!("csrf={csrf}"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);

        // Password reset: weak refused beside the field, a good one written.
        let (s, page) = text(
            post(
                &lab,
                &c,
                "/admin/admins/bob/password",
                &format!("csrf={csrf}&password=password"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"error-password\""), "{page}");
        let before = conf(&lab);
        let r = post(
            &lab,
            &c,
            "/admin/admins/bob/password",
            &format!("csrf={csrf}&password=bob-other-passphrase-3"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_ne!(conf(&lab), before, "a new hash");

        // TOTP: the otpauth URI is shown on this answer, once; the list says on.
        let (s, page) = text(
            post(
                &lab,
                &c,
                "/admin/admins/bob/totp",
                &format!("csrf={csrf}&action=enable"),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(
            page.contains("id=\"otpauth-uri\">otpauth:&#x2f;&#x2f;totp&#x2f;"),
            "{page}"
        );
        let (_, page) = get(&lab, &c, "/admin/admins/bob").await;
        assert!(!page.contains("otpauth"), "shown once only: {page}");
        assert!(
            page.contains("id=\"totp\"><span class=\"badge good\">on"),
            "{page}"
        );
        let (_, list) = get(&lab, &c, "/admin/admins").await;
        let row = list.split("data-admin=\"bob\"").nth(1).unwrap();
        assert!(
            row.split("</tr>").next().unwrap().contains(">on<"),
            "{list}"
        );
        let r = post(
            &lab,
            &c,
            "/admin/admins/bob/totp",
            &format!("csrf={csrf}&action=disable"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(
            lab.st
                .shared
                .config()
                .admins
                .get("bob")
                .unwrap()
                .totp
                .is_none()
        );

        // A form without the CSRF token: refused by the gate, nothing deleted.
        let r = post(&lab, &c, "/admin/admins/bob/delete", "").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(conf(&lab).contains("[account bob]"));
        let r = post(
            &lab,
            &c,
            "/admin/admins/bob/delete",
            &format!("csrf={csrf}"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/admin/admins");
        assert!(!conf(&lab).contains("[account bob]"));
        let (s, _) = get(&lab, &c, "/admin/admins/bob").await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // The audit log page: every change by alice, secrets as (changed), filters.
        let (s, page) = get(&lab, &c, "/admin/audit").await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for action in ["admin.create", "admin.update", "admin.delete", "login"] {
            assert!(
                page.contains(&format!("data-action=\"{action}\"")),
                "{action}: {page}"
            );
        }
        assert!(!page.contains("argon2"), "no hash: {page}");
        assert!(!page.contains("bob-long-passphrase-2"));
        let created = page
            .split("data-action=\"admin.create\"")
            .nth(1)
            .unwrap()
            .split("</tr>")
            .next()
            .unwrap();
        assert!(
            created.contains(">alice<") && created.contains("127.0.81.9"),
            "{created}"
        );
        assert!(
            created.contains("<code>role</code>: <span class=\"muted\">(none)</span> → operator"),
            "{created}"
        );
        assert!(
            created.contains("<code>password</code>") && created.contains("(changed)"),
            "{created}"
        );
        let (_, page) = get(&lab, &c, "/admin/audit?action=admin.delete").await;
        assert_eq!(page.matches("class=\"audit-entry\"").count(), 1, "{page}");
        let (_, page) = get(
            &lab,
            &c,
            "/admin/audit?target=admin+bob&account=alice&action=",
        )
        .await;
        assert!(page.matches("class=\"audit-entry\"").count() >= 5, "{page}");
        assert!(!page.contains("data-action=\"login\""), "{page}");
        assert!(page.contains("value=\"admin bob\""), "filter kept: {page}");
        let (_, page) = get(&lab, &c, "/admin/audit?account=nobody").await;
        assert!(page.contains("No entry matches these filters"), "{page}");
        let (s, page) = get(&lab, &c, "/admin/audit?offset=x").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("offset: a number"), "{page}");
    }

    #[tokio::test]
    async fn the_audit_log_pages_and_is_open_to_read_only_admins() {
        let h = ironfence_portal::password::hash(PW).unwrap();
        let (_dir, st) = state_with(&[(
            "admin.conf",
            &format!(
                "[account alice]\nrole=administrator\npassword={h}\n[account rita]\nrole=read-only\npassword={h}\n"
            ),
        )])
        .await;
        ensure_key(&st.shared.config().conf_dir).unwrap();
        let app = crate::admin::router(st.shared.clone(), false).unwrap();
        let lab = Lab { _dir, st, app };
        let who = crate::admin::config_write::tests::admin();
        for i in 0..60 {
            crate::admin::audit_log::record(
                &lab.st,
                &who,
                crate::admin::audit_log::Change::new("switch.update", format!("switch 10.0.0.{i}")),
            )
            .await
            .unwrap();
        }
        let c = cookie_for(&lab, "rita", PW).await;
        let (s, page) = get(&lab, &c, "/admin/audit?action=switch.update").await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page.matches("class=\"audit-entry\"").count(), 50);
        assert!(page.contains("switch 10.0.0.59"), "newest first");
        assert!(page.contains("id=\"next\""), "{page}");
        assert!(
            !page.contains(">Admins</a>"),
            "read-only: no Admins page in the nav"
        );
        let (_, page) = get(&lab, &c, "/admin/audit?action=switch.update&offset=50").await;
        assert_eq!(page.matches("class=\"audit-entry\"").count(), 10);
        assert!(page.contains("id=\"prev\"") && !page.contains("id=\"next\""));
        let (s, _) = get(&lab, &c, "/admin/admins").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

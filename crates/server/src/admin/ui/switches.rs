//! Switches pages (`/admin/switches…`): the list with an add form, and one switch's page with
//! its own and inherited values. A save shows the per-server results of the push (the
//! clustering guide: the answer names the servers that could not be updated). Every write
//! goes through `admin::switches` (the API's code: validation, config_write, audit).

use super::{
    Flash, FormData, Page, PageError, PageUser, field_errors, redirect, render, render_status,
};
use crate::admin::config_write::{ConfigWriteReport, SectionInput};
use crate::admin::switches::{self, SwitchView};
use crate::admin::{AdminState, ApiError, AppState, Writes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ironfence_admin::Access;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TEMPLATES: &[(&str, &str)] = &[
    ("switches.html", include_str!("templates/switches.html")),
    ("switch.html", include_str!("templates/switch.html")),
];

pub fn pages() -> Vec<Page> {
    vec![
        Page::get("/switches").to(list),
        Page::post("/switches")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(create),
        Page::get("/switches/{id}").to(show),
        Page::post("/switches/{id}")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(save),
        Page::post("/switches/{id}/delete")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(remove),
    ]
}

/// The keys the switch form edits (others are kept as they are).
const FIELDS: &[&str] = &[
    "description",
    "group",
    "radiusSecret",
    "registrationVlan",
    "isolationVlan",
    "require_message_authenticator",
    "VlanMap",
];

/// A switch id in a link: the slash of a CIDR as %2F.
fn href(id: &str) -> String {
    format!("/admin/switches/{}", id.replace('/', "%2F"))
}

#[derive(Serialize)]
struct Row {
    sw: SwitchView,
    href: String,
}

async fn list(State(state): State<AppState>, who: PageUser) -> Result<Response, PageError> {
    let l = switches::list(&state).await?;
    let rows: Vec<Row> = l
        .switches
        .into_iter()
        .map(|sw| Row {
            href: href(&sw.id),
            sw,
        })
        .collect();
    Ok(render(
        &state,
        &who,
        "switches.html",
        minijinja::context! { rows, version => l.version, errors => BTreeMap::<String, String>::new(), form => BTreeMap::<String, String>::new() },
    ))
}

/// The form's fields as a settings body: an empty field inherits (null), an empty secret is
/// kept; `<role>Vlan` fields for the roles in force.
fn settings(state: &AdminState, form: &FormData) -> BTreeMap<String, Value> {
    let roles = state.shared.config().roles.clone();
    let keys = FIELDS
        .iter()
        .map(|k| k.to_string())
        .chain(roles.names().map(|r| format!("{r}Vlan")));
    let mut out = BTreeMap::new();
    for key in keys {
        if !form.0.contains_key(&key) {
            continue;
        }
        match form.get(&key) {
            Some(v) => {
                out.insert(key, Value::String(v.to_string()));
            }
            None if key == "radiusSecret" => {}
            None => {
                out.insert(key, Value::Null);
            }
        }
    }
    out
}

async fn page(
    state: &AdminState,
    who: &PageUser,
    id: &str,
    status: StatusCode,
    report: Option<&ConfigWriteReport>,
    error: Option<&ApiError>,
    form: Option<&FormData>,
) -> Result<Response, PageError> {
    let s = switches::show(state, id).await?;
    let roles: Vec<String> = state
        .shared
        .config()
        .roles
        .names()
        .map(str::to_string)
        .collect();
    let entered: BTreeMap<String, String> = form
        .map(|f| {
            f.0.iter()
                .filter(|(k, _)| k.as_str() != "csrf" && k.as_str() != "radiusSecret")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(render_status(
        state,
        who,
        status,
        "switch.html",
        minijinja::context! {
            sw => s.switch,
            href => href(id),
            version => s.version,
            roles,
            report,
            form => entered,
            message => error.map(|e| e.message.clone()),
            errors => error.map(field_errors).unwrap_or_default(),
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    who: PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    page(&state, &who, &id, StatusCode::OK, None, None, None).await
}

async fn save(
    State(state): State<AppState>,
    who: PageUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let input = SectionInput {
        id: None,
        expected_version: form.get("version").map(str::to_string),
        settings: settings(&state, &form),
    };
    let expected = input.expected_version.clone();
    match switches::update(&state, &who.principal, &id, input, expected).await {
        // The same page, with what each server did.
        Ok(w) => {
            page(
                &state,
                &who,
                &id,
                StatusCode::OK,
                Some(&w.report),
                None,
                None,
            )
            .await
        }
        Err(e) if matches!(e.status.as_u16(), 400 | 409 | 422) => {
            page(&state, &who, &id, e.status, None, Some(&e), Some(&form)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn create(
    State(state): State<AppState>,
    who: PageUser,
    form: FormData,
) -> Result<Response, PageError> {
    let id = form.get("id").unwrap_or_default().to_string();
    let mut settings = settings(&state, &form);
    settings.retain(|_, v| !v.is_null());
    let input = SectionInput {
        id: Some(id.clone()),
        expected_version: None,
        settings,
    };
    match switches::create(&state, &who.principal, input, None).await {
        Ok(w) => {
            page(
                &state,
                &who,
                &id,
                StatusCode::OK,
                Some(&w.report),
                None,
                None,
            )
            .await
        }
        Err(e) if matches!(e.status.as_u16(), 400 | 409 | 422) => {
            let l = switches::list(&state).await?;
            let rows: Vec<Row> = l
                .switches
                .into_iter()
                .map(|sw| Row {
                    href: href(&sw.id),
                    sw,
                })
                .collect();
            let entered: BTreeMap<String, String> = form
                .0
                .iter()
                .filter(|(k, _)| k.as_str() != "csrf" && k.as_str() != "radiusSecret")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(render_status(
                &state,
                &who,
                e.status,
                "switches.html",
                minijinja::context! { rows, version => l.version, message => e.message.clone(), errors => field_errors(&e), form => entered },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove(
    State(state): State<AppState>,
    who: PageUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let expected = form.get("version").map(str::to_string);
    let w = switches::delete(&state, &who.principal, &id, expected).await?;
    let failed: Vec<String> = w.report.failed().map(|s| s.server.clone()).collect();
    let flash = if failed.is_empty() {
        Flash::ok(format!("Switch {id} removed on every server."))
    } else {
        Flash::error(format!(
            "Switch {id} removed, but these servers could not be updated: {} (the cluster's conflict check will update them when they are back).",
            failed.join(", ")
        ))
    };
    Ok(redirect(&who, "/admin/switches", Some(flash)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::{Templates, Ui, all_pages, all_templates, dashboard, now_unix};
    use super::*;
    use crate::admin::Principal;
    use crate::admin::config_write::tests::{SWITCHES, state_with};
    use axum::http::Method;
    use ironfence_admin::Role;
    use ironfence_portal::csrf;
    use std::collections::HashMap;
    use std::sync::Arc;

    pub(crate) fn user(state: &AdminState) -> (AppState, PageUser) {
        let state = Arc::new(AdminState::new(state.shared.clone(), false));
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
            account: "alice".into(),
            role: Role::Administrator,
            session: "s1".into(),
            client: "127.0.83.9".parse().unwrap(),
        };
        let who = PageUser {
            csrf: csrf::issue(&[7; 32], &principal.session, now_unix(), 60),
            principal,
            path: "/admin/switches".into(),
            flash: None,
            secure: true,
            key: vec![7; 32],
            ui,
        };
        (state, who)
    }

    pub(crate) async fn html(r: Response) -> (StatusCode, String) {
        let status = r.status();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(b.to_vec()).unwrap())
    }

    pub(crate) fn form(fields: &[(&str, &str)]) -> FormData {
        FormData(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[tokio::test]
    async fn the_switch_page_saves_and_shows_each_servers_result() {
        let (_d, st) = state_with(&[("switches.conf", SWITCHES)]).await;
        let (state, who) = user(&st);
        let (status, page) = html(
            show(State(state.clone()), who.clone(), Path("10.0.0.1".into()))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("inherited: 2 (default)"), "{page}");
        assert!(
            !page.contains("Zk3vQ9pLm2xR7tW4nB8yC1dF"),
            "secret in the page"
        );
        // Save: an empty secret keeps it, a VLAN changes; the answer lists the servers.
        let (status, page) = html(
            save(
                State(state.clone()),
                who.clone(),
                Path("10.0.0.1".into()),
                form(&[
                    ("registrationVlan", "7"),
                    ("radiusSecret", ""),
                    ("description", "core"),
                ]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("data-result=\"this_server\""), "{page}");
        let sw = st.shared.config().switches.get("10.0.0.1").unwrap().clone();
        assert_eq!(sw.registration_vlan.as_deref(), Some("7"));
        assert_eq!(sw.secret, b"Zk3vQ9pLm2xR7tW4nB8yC1dF");
        // A bad VLAN: 422, the message beside the field, nothing written.
        let before = std::fs::read(st.shared.config().conf_dir.join("switches.conf")).unwrap();
        let (status, page) = html(
            save(
                State(state.clone()),
                who.clone(),
                Path("10.0.0.1".into()),
                form(&[("isolationVlan", "5000")]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("class=\"field-error\""), "{page}");
        assert!(
            page.contains("value=\"5000\""),
            "the entered value is kept: {page}"
        );
        assert_eq!(
            std::fs::read(st.shared.config().conf_dir.join("switches.conf")).unwrap(),
            before
        );
        // The list shows it; a new switch is added from it.
        let (_, page) = html(list(State(state.clone()), who.clone()).await.unwrap()).await;
        assert!(
            page.contains("href=\"&#x2f;admin&#x2f;switches&#x2f;10.0.0.1\""),
            "{page}"
        );
        let (status, page) = html(
            create(
                State(state.clone()),
                who.clone(),
                form(&[("id", "10.0.9.0/24"), ("description", "lab")]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(st.shared.config().switches.get("10.0.9.0/24").is_some());
    }
}

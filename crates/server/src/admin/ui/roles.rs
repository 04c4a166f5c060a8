//! Roles pages (`/admin/roles…`): the list (built-in and roles.conf, with the switches that map
//! each to a VLAN), add, change notes / limit, delete (refused, with who still uses it, while
//! switches, rules or devices do). Writes go through `admin::roles` (the API's code).

use super::{Flash, FormData, Page, PageError, PageUser, field_errors, redirect, render_status};
use crate::admin::config_write::{ConfigWriteReport, SectionInput};
use crate::admin::roles;
use crate::admin::{AdminState, ApiError, AppState, Writes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ironfence_admin::Access;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TEMPLATES: &[(&str, &str)] = &[("roles.html", include_str!("templates/roles.html"))];

pub fn pages() -> Vec<Page> {
    vec![
        Page::get("/roles").to(list),
        Page::post("/roles")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(create),
        Page::post("/roles/{name}")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(save),
        Page::post("/roles/{name}/delete")
            .access(Access::Config)
            .writes(Writes::Config)
            .to(remove),
    ]
}

async fn page(
    state: &AdminState,
    who: &PageUser,
    status: StatusCode,
    report: Option<&ConfigWriteReport>,
    error: Option<(&str, &ApiError)>,
) -> Result<Response, PageError> {
    let l = roles::list(state).await?;
    Ok(render_status(
        state,
        who,
        status,
        "roles.html",
        minijinja::context! {
            roles => l.roles,
            version => l.version,
            report,
            failed_role => error.map(|(r, _)| r.to_string()),
            message => error.map(|(_, e)| e.message.clone()),
            errors => error.map(|(_, e)| field_errors(e)).unwrap_or_default(),
        },
    ))
}

async fn list(State(state): State<AppState>, who: PageUser) -> Result<Response, PageError> {
    page(&state, &who, StatusCode::OK, None, None).await
}

fn settings(form: &FormData) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for key in ["notes", "max_nodes_per_pid"] {
        if form.0.contains_key(key) {
            out.insert(
                key.to_string(),
                form.get(key)
                    .map(|v| Value::String(v.to_string()))
                    .unwrap_or(Value::Null),
            );
        }
    }
    out
}

fn shown(e: &ApiError) -> bool {
    matches!(e.status.as_u16(), 400 | 409 | 422)
}

async fn create(
    State(state): State<AppState>,
    who: PageUser,
    form: FormData,
) -> Result<Response, PageError> {
    let name = form.get("name").unwrap_or_default().to_string();
    let mut settings = settings(&form);
    settings.retain(|_, v| !v.is_null());
    let input = SectionInput {
        id: Some(name.clone()),
        expected_version: None,
        settings,
    };
    match roles::create(&state, &who.principal, input, None).await {
        Ok(w) => page(&state, &who, StatusCode::OK, Some(&w.report), None).await,
        Err(e) if shown(&e) => page(&state, &who, e.status, None, Some(("", &e))).await,
        Err(e) => Err(e.into()),
    }
}

async fn save(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let expected = form.get("version").map(str::to_string);
    let input = SectionInput {
        id: None,
        expected_version: expected.clone(),
        settings: settings(&form),
    };
    match roles::update(&state, &who.principal, &name, input, expected).await {
        Ok(w) => page(&state, &who, StatusCode::OK, Some(&w.report), None).await,
        Err(e) if shown(&e) => page(&state, &who, e.status, None, Some((&name, &e))).await,
        Err(e) => Err(e.into()),
    }
}

async fn remove(
    State(state): State<AppState>,
    who: PageUser,
    Path(name): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let expected = form.get("version").map(str::to_string);
    match roles::delete(&state, &who.principal, &name, expected).await {
        Ok(w) => {
            let failed: Vec<String> = w.report.failed().map(|s| s.server.clone()).collect();
            let flash = if failed.is_empty() {
                Flash::ok(format!("Role {name} removed on every server."))
            } else {
                Flash::error(format!(
                    "Role {name} removed, but these servers could not be updated: {}.",
                    failed.join(", ")
                ))
            };
            Ok(redirect(&who, "/admin/roles", Some(flash)))
        }
        // Still used: the page says by whom.
        Err(e) if shown(&e) => page(&state, &who, e.status, None, Some((&name, &e))).await,
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::config_write::tests::state_with;
    use crate::admin::ui::switches::tests::{form, html, user};

    #[tokio::test]
    async fn roles_page_adds_changes_and_explains_a_refused_delete() {
        let (_d, st) = state_with(&[(
            "switches.conf",
            "[default]\nradiusSecret = Zk3vQ9pLm2xR7tW4nB8yC1dF\n\n[10.0.0.1]\nguestVlan = 40\n",
        )])
        .await;
        let (state, who) = user(&st);
        let (status, page) = html(
            create(
                State(state.clone()),
                who.clone(),
                form(&[("name", "staff"), ("notes", "Employees")]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("data-result=\"this_server\""), "{page}");
        assert!(st.shared.config().roles.contains("staff"));
        let (status, page) = html(
            save(
                State(state.clone()),
                who.clone(),
                Path("staff".into()),
                form(&[("max_nodes_per_pid", "lots")]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("max_nodes_per_pid"), "{page}");
        // guest is built in; a role used by a switch is not deleted, and the page says why.
        let (status, page) = html(
            remove(
                State(state.clone()),
                who.clone(),
                Path("guest".into()),
                form(&[]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(page.contains("built-in"), "{page}");
        let r = remove(
            State(state.clone()),
            who.clone(),
            Path("staff".into()),
            form(&[]),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(!st.shared.config().roles.contains("staff"));
    }
}

//! Authentication sources pages (`/admin/sources…`): every source of authentication.conf with
//! its rules (passwords as "(set)"), adding and removing sources and rules. Writes go through
//! `admin::sources` (the API's code: checkup's checks, config_write, audit).

use super::{Flash, FormData, Page, PageError, PageUser, field_errors, redirect, render_status};
use crate::admin::config_write::{ConfigWriteReport, SectionInput};
use crate::admin::sources;
use crate::admin::{AdminState, ApiError, AppState, Writes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ironfence_admin::Access;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TEMPLATES: &[(&str, &str)] = &[("sources.html", include_str!("templates/sources.html"))];

pub fn pages() -> Vec<Page> {
    let w = |p: Page| p.access(Access::Config).writes(Writes::Config);
    vec![
        Page::get("/sources").to(list),
        w(Page::post("/sources")).to(create),
        w(Page::post("/sources/{id}/delete")).to(remove),
        w(Page::post("/sources/{id}/rules")).to(create_rule),
        w(Page::post("/sources/{id}/rules/{rule}/delete")).to(remove_rule),
    ]
}

/// Fields a form may send for a source or a rule (anything else is ignored).
const SOURCE_FIELDS: &[&str] = &[
    "type",
    "description",
    "host",
    "port",
    "encryption",
    "basedn",
    "binddn",
    "password",
    "usernameattribute",
    "scope",
];
const RULE_FIELDS: &[&str] = &[
    "class",
    "description",
    "match",
    "condition0",
    "condition1",
    "action0",
    "action1",
];

fn settings(form: &FormData, fields: &[&str]) -> BTreeMap<String, Value> {
    fields
        .iter()
        .filter_map(|k| {
            form.get(k)
                .map(|v| (k.to_string(), Value::String(v.to_string())))
        })
        .collect()
}

async fn page(
    state: &AdminState,
    who: &PageUser,
    status: StatusCode,
    report: Option<&ConfigWriteReport>,
    error: Option<(&str, &ApiError)>,
) -> Result<Response, PageError> {
    let l = sources::list(state).await?;
    Ok(render_status(
        state,
        who,
        status,
        "sources.html",
        minijinja::context! {
            sources => l.sources,
            version => l.version,
            report,
            failed_form => error.map(|(f, _)| f.to_string()),
            message => error.map(|(_, e)| e.message.clone()),
            errors => error.map(|(_, e)| field_errors(e)).unwrap_or_default(),
        },
    ))
}

fn shown(e: &ApiError) -> bool {
    matches!(e.status.as_u16(), 400 | 404 | 409 | 422)
}

async fn list(State(state): State<AppState>, who: PageUser) -> Result<Response, PageError> {
    page(&state, &who, StatusCode::OK, None, None).await
}

async fn create(
    State(state): State<AppState>,
    who: PageUser,
    form: FormData,
) -> Result<Response, PageError> {
    let input = SectionInput {
        id: form.get("id").map(str::to_string),
        expected_version: None,
        settings: settings(&form, SOURCE_FIELDS),
    };
    match sources::create(&state, &who.principal, input, None).await {
        Ok(w) => page(&state, &who, StatusCode::OK, Some(&w.report), None).await,
        Err(e) if shown(&e) => page(&state, &who, e.status, None, Some(("source", &e))).await,
        Err(e) => Err(e.into()),
    }
}

async fn create_rule(
    State(state): State<AppState>,
    who: PageUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let input = SectionInput {
        id: form.get("id").map(str::to_string),
        expected_version: None,
        settings: settings(&form, RULE_FIELDS),
    };
    match sources::create_rule(&state, &who.principal, &id, input, None).await {
        Ok(w) => page(&state, &who, StatusCode::OK, Some(&w.report), None).await,
        Err(e) if shown(&e) => {
            page(
                &state,
                &who,
                e.status,
                None,
                Some((&format!("rule {id}"), &e)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

fn done(who: &PageUser, what: &str, report: &ConfigWriteReport) -> Response {
    let failed: Vec<String> = report.failed().map(|s| s.server.clone()).collect();
    let flash = if failed.is_empty() {
        Flash::ok(format!("{what} removed on every server."))
    } else {
        Flash::error(format!(
            "{what} removed, but these servers could not be updated: {}.",
            failed.join(", ")
        ))
    };
    redirect(who, "/admin/sources", Some(flash))
}

async fn remove(
    State(state): State<AppState>,
    who: PageUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let expected = form.get("version").map(str::to_string);
    match sources::delete(&state, &who.principal, &id, expected).await {
        Ok(w) => Ok(done(&who, &format!("Source {id}"), &w.report)),
        Err(e) if shown(&e) => page(&state, &who, e.status, None, Some(("source", &e))).await,
        Err(e) => Err(e.into()),
    }
}

async fn remove_rule(
    State(state): State<AppState>,
    who: PageUser,
    Path((id, rule)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, PageError> {
    let expected = form.get("version").map(str::to_string);
    match sources::delete_rule(&state, &who.principal, &id, &rule, expected).await {
        Ok(w) => Ok(done(&who, &format!("Rule {rule} of {id}"), &w.report)),
        Err(e) if shown(&e) => page(&state, &who, e.status, None, Some(("source", &e))).await,
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::config_write::tests::state_with;
    use crate::admin::ui::switches::tests::{form, html, user};

    #[tokio::test]
    async fn sources_page_adds_a_source_and_a_rule_and_names_a_bad_field() {
        let (_d, st) = state_with(&[]).await;
        let (state, who) = user(&st);
        let (status, page) = html(
            create(
                State(state.clone()),
                who.clone(),
                form(&[
                    ("id", "guests"),
                    ("type", "Null"),
                    ("description", "Guest access"),
                ]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("data-result=\"this_server\""), "{page}");
        let (status, page) = html(
            create_rule(
                State(state.clone()),
                who.clone(),
                Path("guests".into()),
                form(&[
                    ("id", "all"),
                    ("class", "authentication"),
                    ("action0", "set_role=nosuch"),
                    ("action1", "set_access_duration=1h"),
                ]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
        assert!(page.contains("action0"), "{page}");
        let (status, _) = html(
            create_rule(
                State(state.clone()),
                who.clone(),
                Path("guests".into()),
                form(&[
                    ("id", "all"),
                    ("class", "authentication"),
                    ("action0", "set_role=guest"),
                    ("action1", "set_access_duration=1h"),
                ]),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let src = st
            .shared
            .config()
            .authentication
            .source("guests")
            .cloned()
            .unwrap();
        assert_eq!(src.rules[0].role, "guest");
        let r = remove(
            State(state.clone()),
            who.clone(),
            Path("guests".into()),
            form(&[]),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(st.shared.config().authentication.source("guests").is_none());
    }
}

//! The cluster page (`/admin/cluster`): every member with its reachability, database state and
//! read-only flag, configuration version, VIPs and maintenance (`cluster_status::status`, what
//! `ironfence cluster status` shows), and cluster.conf as it is (read-only, secrets redacted).

use super::{Page, PageError, PageUser, render};
use crate::admin::AppState;
use crate::admin::{cluster_status, settings};
use axum::extract::State;
use axum::response::Response;

pub const TEMPLATES: &[(&str, &str)] = &[("cluster.html", include_str!("templates/cluster.html"))];

pub fn pages() -> Vec<Page> {
    vec![Page::get("/cluster").to(show)]
}

async fn show(State(state): State<AppState>, who: PageUser) -> Result<Response, PageError> {
    let status = cluster_status::status(&state).await?;
    let conf = settings::cluster(&state).await?;
    Ok(render(
        &state,
        &who,
        "cluster.html",
        minijinja::context! { status, conf },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::config_write::tests::state_with;
    use crate::admin::ui::switches::tests::{html, user};

    #[tokio::test]
    async fn the_cluster_page_shows_this_server_and_the_read_only_state() {
        let (_d, st) = state_with(&[]).await;
        let (state, who) = user(&st);
        let (status, page) = html(show(State(state.clone()), who.clone()).await.unwrap()).await;
        assert_eq!(status, axum::http::StatusCode::OK);
        assert!(page.contains("Single server"), "{page}");
        assert!(page.contains("sqlite"), "{page}");
        st.shared.db.set_read_only_for_test(true);
        let (_, page) = html(show(State(state), who).await.unwrap()).await;
        assert!(page.contains("badge bad\">read-only"), "{page}");
        assert!(page.contains("read-only-banner"), "{page}");
    }
}

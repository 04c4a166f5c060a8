//! The dashboard: the cluster's members and their state, VIP holders, the database state and
//! read-only flag, configuration versions, and RADIUS request rates and outcomes.
//!
//! Rates: the counters in `shared.metrics` only grow, so a rate needs two samples. A sampler
//! task takes one every [`SAMPLE_EVERY`] into a ring of [`RING`] samples (5 minutes); the
//! page takes one more at render time and divides by the time between it and the oldest
//! sample of the ring. Until the first sample is a second old, only totals since start are
//! shown.

use super::{Page, PageError, PageUser, render};
use crate::admin::ApiError;
use crate::admin::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::Response;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;

pub const TEMPLATES: &[(&str, &str)] =
    &[("dashboard.html", include_str!("templates/dashboard.html"))];

pub fn pages() -> Vec<Page> {
    vec![Page::get("/").to(dashboard)]
}

/// How often the sampler reads the counters.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: 5 minutes.
pub const RING: usize = 31;

/// The RADIUS counters, summed by the label the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// `port/code` (`auth/Access-Request`) → requests received.
    pub requests: BTreeMap<String, f64>,
    /// Reply kind (`access_accept`) → replies sent.
    pub replies: BTreeMap<String, f64>,
    /// Decision reason (`registered`, `unregistered`) → decisions.
    pub decisions: BTreeMap<String, f64>,
    /// Drop reason → datagrams dropped without a reply.
    pub dropped: BTreeMap<String, f64>,
}

impl Totals {
    /// Reads the RADIUS families out of the OpenMetrics exposition (`Metrics::render`): it
    /// lists every label value that was ever counted, which the typed families do not.
    pub fn from_exposition(text: &str) -> Totals {
        let mut t = Totals::default();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            let label = |k: &str| {
                labels
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let (map, key) = match name {
                "ironfence_radius_requests_total" => (
                    &mut t.requests,
                    format!("{}/{}", label("port"), label("code")),
                ),
                "ironfence_radius_replies_total" => (&mut t.replies, label("kind")),
                "ironfence_radius_decisions_total" => (&mut t.decisions, label("reason")),
                "ironfence_radius_dropped_total" => (&mut t.dropped, label("reason")),
                _ => continue,
            };
            *map.entry(key).or_default() += value;
        }
        t
    }

    fn requests_total(&self) -> f64 {
        self.requests.values().sum()
    }
}

/// `a="x",b="y"` → pairs (values may hold escaped quotes).
fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

/// The ring of samples.
#[derive(Debug)]
pub struct Rates {
    ring: Mutex<VecDeque<(Instant, Totals)>>,
}

impl Default for Rates {
    fn default() -> Self {
        Rates::new()
    }
}

impl Rates {
    pub fn new() -> Rates {
        Rates {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
        }
    }

    pub fn push(&self, at: Instant, t: Totals) {
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() == RING {
            r.pop_front();
        }
        r.push_back((at, t));
    }

    /// The oldest sample (the start of the window).
    fn oldest(&self) -> Option<(Instant, Totals)> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .cloned()
    }
}

/// Per-second rates between `old` and `new`, `secs` apart (a counter that went down — a
/// restart cannot happen inside one process, but be safe — counts from zero).
pub fn per_second(
    old: &BTreeMap<String, f64>,
    new: &BTreeMap<String, f64>,
    secs: f64,
) -> BTreeMap<String, f64> {
    new.iter()
        .map(|(k, v)| {
            let before = old.get(k).copied().unwrap_or(0.0);
            let d = if *v >= before { v - before } else { *v };
            (k.clone(), d / secs)
        })
        .collect()
}

/// Samples every [`SAMPLE_EVERY`] while the pages exist (it holds them weakly).
pub(super) fn start_sampler(state: &AppState, ui: &Arc<super::Ui>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let state: Weak<crate::admin::AdminState> = Arc::downgrade(state);
    let ui: Weak<super::Ui> = Arc::downgrade(ui);
    rt.spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let (Some(state), Some(ui)) = (state.upgrade(), ui.upgrade()) else {
                return;
            };
            let t = Totals::from_exposition(&state.shared.metrics.render());
            ui.rates.push(Instant::now(), t);
        }
    });
}

/// One row of a rate table.
#[derive(Debug, serde::Serialize)]
struct Row {
    name: String,
    total: u64,
    /// Per second over the window, when known.
    rate: Option<String>,
}

fn rows(now: &BTreeMap<String, f64>, old: Option<&BTreeMap<String, f64>>, secs: f64) -> Vec<Row> {
    let rates = old.map(|o| per_second(o, now, secs));
    now.iter()
        .map(|(k, v)| Row {
            name: k.clone(),
            total: *v as u64,
            rate: rates
                .as_ref()
                .and_then(|r| r.get(k))
                .map(|r| format!("{r:.2}")),
        })
        .collect()
}

/// `changed_at` (UNIX seconds) as text, added beside each configuration version.
fn add_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(t) = m.get("changed_at").and_then(serde_json::Value::as_i64) {
                m.insert(
                    "changed_at_text".into(),
                    serde_json::Value::String(format_utc(t)),
                );
            }
            m.values_mut().for_each(add_times);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(add_times),
        _ => {}
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The cluster as this server sees it (`GET /cluster/status`'s answer; a single server:
/// itself alone), with the versions' times as text.
async fn cluster_view(state: &crate::admin::AdminState) -> Result<serde_json::Value, ApiError> {
    let st = crate::admin::cluster_status::status(state).await?;
    let mut v = serde_json::to_value(&st).map_err(|e| ApiError::internal("cluster status", e))?;
    add_times(&mut v);
    Ok(v)
}

pub(super) async fn dashboard(State(state): State<AppState>, who: PageUser) -> Response {
    let cluster = match cluster_view(&state).await {
        Ok(c) => c,
        Err(e) => return PageError::from(e).into_response(),
    };
    let now = Instant::now();
    let current = Totals::from_exposition(&state.shared.metrics.render());
    let window = who
        .ui
        .rates
        .oldest()
        .map(|(at, t)| (now.duration_since(at).as_secs_f64(), t))
        .filter(|(secs, _)| *secs >= 1.0);
    let (secs, old) = match &window {
        Some((s, t)) => (*s, Some(t)),
        None => (0.0, None),
    };
    let request_rate = old.map(|o| {
        let d = (current.requests_total() - o.requests_total()).max(0.0);
        format!("{:.2}", d / secs)
    });
    let ctx = minijinja::context! {
        cluster => minijinja::Value::from_serialize(&cluster),
        window_secs => secs.round() as u64,
        request_rate => request_rate,
        requests_total => current.requests_total() as u64,
        requests => rows(&current.requests, old.map(|o| &o.requests), secs),
        replies => rows(&current.replies, old.map(|o| &o.replies), secs),
        decisions => rows(&current.decisions, old.map(|o| &o.decisions), secs),
        dropped => rows(&current.dropped, old.map(|o| &o.dropped), secs),
    };
    render(&state, &who, "dashboard.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_radius_families_from_the_exposition() {
        let m = crate::metrics::Metrics::new();
        m.requests
            .get_or_create(&[("port", "auth"), ("code", "Access-Request")])
            .inc_by(7);
        m.reply("access_accept");
        m.reply("access_accept");
        m.reply("access_reject");
        m.decisions
            .get_or_create(&[("reason", "registered")])
            .inc_by(2);
        m.drop_reason("unknown_client");
        let t = Totals::from_exposition(&m.render());
        assert_eq!(t.requests.get("auth/Access-Request"), Some(&7.0));
        assert_eq!(t.replies.get("access_accept"), Some(&2.0));
        assert_eq!(t.replies.get("access_reject"), Some(&1.0));
        assert_eq!(t.decisions.get("registered"), Some(&2.0));
        assert_eq!(t.dropped.get("unknown_client"), Some(&1.0));
        assert_eq!(t.requests_total(), 7.0);
    }

    #[test]
    fn labels_with_escapes_and_rates() {
        assert_eq!(
            parse_labels(r#"a="x\"y",b="z""#),
            vec![("a".into(), "x\"y".into()), ("b".into(), "z".into())]
        );
        let old = BTreeMap::from([("a".to_string(), 10.0)]);
        let new = BTreeMap::from([("a".to_string(), 30.0), ("b".to_string(), 5.0)]);
        let r = per_second(&old, &new, 10.0);
        assert_eq!(r["a"], 2.0);
        assert_eq!(r["b"], 0.5);
    }

    #[test]
    fn the_ring_keeps_five_minutes() {
        let r = Rates::new();
        let t0 = Instant::now();
        for i in 0..(RING as u64 + 5) {
            r.push(t0 + Duration::from_secs(i * 10), Totals::default());
        }
        let (oldest, _) = r.oldest().unwrap();
        assert_eq!(oldest, t0 + Duration::from_secs(50));
        assert_eq!(r.ring.lock().unwrap().len(), RING);
    }
}

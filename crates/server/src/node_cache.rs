//! The per-server node read cache (`ironfence_store::node_cache`) in the daemon: the task that
//! polls the store's change log, prunes it, and exports the cache's metrics.
//!
//! The RADIUS path calls [`CachedNodes::policy_view`] instead of `Store::node_view` (the same
//! lookup, reduced to what the policy reads); a write made by this daemon that changes a node
//! calls [`CachedNodes::invalidate`] after it commits, so that this server's next request does not
//! wait for the poll. The guarantees (a change committed anywhere at `T` is seen by every
//! server from `T + max_staleness` on; a server whose polls fail reads the database) are in the
//! store module's docs. The future CoA/Disconnect sender waits
//! [`CachedNodes::max_staleness`] after committing a change before it sends.

use crate::metrics::Metrics;
use ironfence_store::Store;
use ironfence_store::node_cache::{CacheSettings, CachedNodes};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Time between two polls of the change log (well under the default 500 ms staleness bound,
/// so that a slow or failed poll or two does not make the cache untrusted).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often the change log is pruned, and how much of it is kept.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
pub const KEEP_CHANGES: Duration = Duration::from_secs(3600);

/// Builds the cache over `store`; `settings` from `pf.conf [radius]` (see
/// [`settings_from`]). Export its metrics with [`export_metrics`] and run [`run_poller`].
pub fn new(store: Store, settings: &CacheSettings) -> Arc<CachedNodes> {
    Arc::new(CachedNodes::new(store, settings))
}

/// Cache settings from the configuration: `node_cache_entries` and
/// `node_cache_max_staleness`.
pub fn settings_from(cfg: &ironfence_config::Config) -> CacheSettings {
    let r = &cfg.pf.radius;
    CacheSettings {
        capacity: r.node_cache_entries,
        max_staleness: r.node_cache_max_staleness,
        ..CacheSettings::default()
    }
}

/// Polls the change log every [`POLL_INTERVAL`] until `shutdown` turns true, and prunes changes
/// older than [`KEEP_CHANGES`] every [`PRUNE_EVERY`]. Failures are logged (once per streak) and
/// counted; meanwhile the cache is untrusted and lookups read the database.
pub async fn run_poller(nodes: Arc<CachedNodes>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        match nodes.poll_once().await {
            Ok(_) => {
                if failing {
                    tracing::info!("node cache: change log readable again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "node cache: cannot read the change log; lookups go to the database");
                    failing = true;
                }
            }
        }
        let now = tokio::time::Instant::now();
        if last_prune.is_none_or(|t| now.duration_since(t) >= PRUNE_EVERY) {
            last_prune = Some(now);
            let before = SystemTime::now()
                .checked_sub(KEEP_CHANGES)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            if let Err(e) = nodes.store().prune_node_changes(before).await {
                tracing::debug!(error = %e, "node cache: pruning the change log failed");
            }
        }
    }
}

/// Exports `ironfence_node_cache_*` (read at every scrape).
pub fn export_metrics(metrics: &Metrics, nodes: Arc<CachedNodes>) {
    metrics.register_collector(Box::new(NodeCacheCollector(nodes)));
}

#[derive(Debug)]
struct NodeCacheCollector(Arc<CachedNodes>);

impl Collector for NodeCacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let counters: [(&str, &str, u64); 7] = [
            (
                "node_cache_hits",
                "Node lookups answered from the cache",
                s.hits,
            ),
            (
                "node_cache_misses",
                "Node lookups not in the cache (read from the database, then cached)",
                s.misses,
            ),
            (
                "node_cache_untrusted",
                "Node lookups read from the database because the cache could not confirm it was current",
                s.untrusted,
            ),
            (
                "node_cache_invalidations",
                "Cache entries invalidated (changes polled, or written by this server)",
                s.invalidations,
            ),
            (
                "node_cache_evictions",
                "Cache entries evicted for capacity",
                s.evictions,
            ),
            (
                "node_cache_fills_rejected",
                "Database reads not cached because a change raced them",
                s.fills_rejected,
            ),
            (
                "node_cache_poll_failures",
                "Failed polls of the node change log",
                s.poll_failures,
            ),
        ];
        for (name, help, n) in counters {
            let c = ConstCounter::new(n);
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        let entries = ConstGauge::new(i64::try_from(s.entries).unwrap_or(i64::MAX));
        let m = encoder.encode_descriptor(
            "node_cache_entries",
            "Entries in the node cache",
            None,
            entries.metric_type(),
        )?;
        entries.encode(m)?;
        // Age of the start of the last good poll; -1 before the first one.
        let age = ConstGauge::new(self.0.staleness().map_or(-1.0, |d| d.as_secs_f64()));
        let m = encoder.encode_descriptor(
            "node_cache_staleness_seconds",
            "Age of the start of the last successful change-log poll (-1: none yet); entries are used only while it is below max_staleness",
            None,
            age.metric_type(),
        )?;
        age.encode(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_core::Mac;

    #[tokio::test]
    async fn poller_makes_the_cache_trusted_and_metrics_show_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&ironfence_store::StoreConfig::Sqlite {
            path: dir.path().join("n.sqlite"),
        })
        .await
        .unwrap();
        let nodes = new(store.clone(), &CacheSettings::default());
        let metrics = Metrics::new();
        export_metrics(&metrics, nodes.clone());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_poller(nodes.clone(), rx));
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        store
            .create_node_if_absent(mac, 1_700_000_000)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while nodes.staleness().is_none() {
            assert!(std::time::Instant::now() < deadline, "no poll");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..3 {
            assert!(nodes.policy_view(mac).await.unwrap().is_some());
        }
        let text = metrics.render();
        assert!(text.contains("ironfence_node_cache_hits_total 2"), "{text}");
        assert!(
            text.contains("ironfence_node_cache_misses_total 1"),
            "{text}"
        );
        assert!(
            text.contains("ironfence_node_cache_staleness_seconds"),
            "{text}"
        );
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}

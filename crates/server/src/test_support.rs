//! Test support: a `Shared` over a conf directory, with a real SQLite store, spool and audit
//! files, as the daemon builds it (minus listeners).

use crate::Shared;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// `Shared` for the configuration in `conf` (which must load).
pub(crate) async fn shared_for(conf: &Path) -> Arc<Shared> {
    let config = ironfence_config::Config::load(conf).unwrap_or_else(|d| panic!("{d}"));
    crate::settings::prepare_state_dir(&config).unwrap();
    let store = ironfence_store::Store::open(&crate::settings::store_config(&config))
        .await
        .unwrap();
    let metrics = crate::metrics::Metrics::new();
    let spool = crate::spool::Spool::open(
        &crate::settings::spool_path(&config),
        1 << 20,
        metrics.spool.clone(),
    )
    .unwrap();
    let (audit, _rx) =
        crate::audit::Audit::start(&crate::settings::audit(&config), &metrics).unwrap();
    let nodes = crate::node_cache::new(store.clone(), &crate::node_cache::settings_from(&config));
    // As at start: the 802.1X service is built (and its conf/ssl files made) first.
    let eap = crate::eap_service::EapService::default();
    eap.configure(&config);
    Arc::new(Shared {
        nodes,
        conf_dir: conf.to_path_buf(),
        config: std::sync::RwLock::new(Arc::new(config)),
        store,
        metrics,
        audit,
        reloads: watch::channel(0).0,
        db: crate::db_health::DbHealth::default(),
        running_version: std::sync::RwLock::new(None),
        api_access: ironfence_webservices::AllowedPeers::default(),
        spool,
        front_door: crate::front_door::FrontDoor::default(),
        locations: crate::coa::location::Recorder::default(),
        eap,
    })
}

/// A conf directory in `dir` with `pf.conf` (state in `dir/var`) and the given extra files.
pub(crate) fn conf_dir(dir: &Path, pf_extra: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("pf.conf"),
        format!("[general]\nstate_dir = var\n{pf_extra}"),
    )
    .unwrap();
    for (name, content) in files {
        let path = conf.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, content).unwrap();
    }
    conf
}

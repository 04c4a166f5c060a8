//! `cluster sync --from`: where the webservices password comes from (issue 7 item 8), with the
//! real binary against a real node-to-node API server on loopback. The server's node has no
//! bundle to give, so a call that got past authentication ends with its 500 ("no bundle here")
//! and a wrong password with 401: nothing is ever applied.

use ironfence_cluster::{ConfigVersion, PushReport, ServerStatus};
use ironfence_webservices::{
    AllowedPeers, ClusterCa, ClusterNode, Credentials, ensure_server_cert, serve,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

/// TEST FIXTURE credentials, only for this test.
const WS_USER: &str = "ws-sync-password-test";
const WS_PASS: &str = "ws-sync-password-test-fixture-0123456789";
const NO_BUNDLE: &str = "this test server has no bundle to give";

struct NoBundle;

impl ClusterNode for NoBundle {
    async fn status(&self) -> Result<ServerStatus, String> {
        Err(NO_BUNDLE.into())
    }
    async fn config_version(&self) -> Result<ConfigVersion, String> {
        Err(NO_BUNDLE.into())
    }
    async fn bundle(&self) -> Result<Vec<u8>, String> {
        Err(NO_BUNDLE.into())
    }
    async fn bundle_file(&self, _: &str) -> Result<Option<Vec<u8>>, String> {
        Err(NO_BUNDLE.into())
    }
    async fn apply_bundle(&self, _: Vec<u8>, _: String) -> Result<ConfigVersion, String> {
        Err(NO_BUNDLE.into())
    }
    async fn push_to_peers(&self) -> Result<PushReport, String> {
        Err(NO_BUNDLE.into())
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn password_from_file_env_or_flag_and_never_a_silent_default() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ca = ClusterCa::generate("ironfence cluster CA").unwrap();
    let state = tempfile::tempdir().unwrap();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let cert = ensure_server_cert(&ca, state.path(), ip, "pf1", SystemTime::now()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, task) = rt
        .block_on(serve(
            SocketAddr::new(ip, 0),
            cert,
            Credentials {
                user: WS_USER.into(),
                pass: WS_PASS.into(),
            },
            AllowedPeers::default(),
            Arc::new(NoBundle),
            async move {
                let _ = stopped.await;
            },
        ))
        .unwrap();

    let joiner = tempfile::tempdir().unwrap();
    let conf = joiner.path().join("conf");
    let port = addr.port().to_string();
    let fp = ca.fingerprint();
    let sync = |extra: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironfence"));
        cmd.env("IRONFENCE_HOSTNAME", "pf2")
            .env_remove("IRONFENCE_API_PASSWORD")
            .arg("--conf-dir")
            .arg(&conf)
            .args([
                "cluster",
                "sync",
                "--from",
                "127.0.0.1",
                "--port",
                &port,
                "--api-user",
                WS_USER,
                "--ca-fingerprint",
                &fp,
            ])
            .args(extra)
            .stdin(Stdio::null());
        if let Some(v) = env {
            cmd.env("IRONFENCE_API_PASSWORD", v);
        }
        cmd.output().unwrap()
    };
    let authenticated = |o: &Output| {
        let t = text(o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains(NO_BUNDLE), "expected to get past auth:\n{t}");
    };
    let unauthorized = |o: &Output| {
        let t = text(o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("401"), "expected 401:\n{t}");
    };

    // The environment variable.
    let out = sync(&[], Some(WS_PASS));
    authenticated(&out);
    assert!(!text(&out).contains("warning"), "{}", text(&out));
    unauthorized(&sync(&[], Some("not-the-password")));

    // A file (first line), which wins over the environment.
    let file = joiner.path().join("ws-pass");
    std::fs::write(&file, format!("{WS_PASS}\n")).unwrap();
    let file_arg = file.to_str().unwrap();
    authenticated(&sync(&["--api-password-file", file_arg], Some("not-it")));

    // The flag still works, with a warning about `ps`.
    let out = sync(&["--api-password", WS_PASS], None);
    authenticated(&out);
    assert!(
        text(&out).contains("warning: --api-password is visible to every user of this machine"),
        "{}",
        text(&out)
    );
    // Flag and file together: refused by the argument parser.
    let out = sync(
        &["--api-password", WS_PASS, "--api-password-file", file_arg],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot be used with"), "{}", text(&out));

    // Nothing given and stdin is no terminal: no prompt, a clear error, no request at all.
    let out = sync(&[], None);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("give --api-password-file FILE, set IRONFENCE_API_PASSWORD"),
        "{}",
        text(&out)
    );
    assert!(!conf.join("pf.conf").exists());

    let _ = stop.send(());
    rt.block_on(task).unwrap();
}

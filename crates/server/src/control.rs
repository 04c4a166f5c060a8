//! The daemon's local control socket (`<state_dir>/control/ironfence.sock`, in a 0700
//! directory: root-only from the moment it is bound).
//! `ironfence configreload` uses it so the operator sees the daemon's own verdict: either the
//! new configuration is in force, or it was refused (file:line, reason) and the old one stays.
//!
//! Protocol: one request line (`reload`, `ping`, `changed <mac>`, `reevaluate <mac>`), then
//! the answer: a first line `ok` or
//! `error`, followed by free text, then EOF.

use crate::Shared;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

pub(crate) fn serve(
    shared: Arc<Shared>,
    path: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // The socket is bound inside a directory only root can enter (0700), so there is no window
    // in which another user could connect before its own mode is set.
    if let Some(dir) = path.parent() {
        ironfence_core::fsutil::ensure_dir_mode(dir, 0o700)?;
    }
    // A stale socket from a crashed daemon: refuse if a daemon still answers on it.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another ironfence daemon is running (control socket {} answers); stop it first",
                path.display()
            );
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let path = path.to_path_buf();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                conn = listener.accept() => match conn {
                    Ok((stream, _)) => { tokio::spawn(handle(shared.clone(), stream)); }
                    Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

async fn handle(shared: Arc<Shared>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read)
        .take(256)
        .read_line(&mut line)
        .await
        .is_err()
    {
        return;
    }
    let answer = match line.trim() {
        "ping" => "ok\npong\n".to_string(),
        "reload" => match shared.reload() {
            Ok(notes) if notes.is_empty() => "ok\nconfiguration reloaded\n".to_string(),
            Ok(notes) => format!("ok\nconfiguration reloaded\n{}\n", notes.join("\n")),
            Err(diags) => format!(
                "error\nconfiguration refused; the running configuration stays in force:\n{diags}\n"
            ),
        },
        // A CLI on this server changed a node: drop it from the node cache now rather than
        // at the next poll of the change log.
        other if other.starts_with("changed ") => {
            match ironfence_core::Mac::parse(other["changed ".len()..].trim()) {
                Ok(mac) => {
                    shared.nodes.invalidate(mac);
                    "ok\ninvalidated\n".to_string()
                }
                Err(e) => format!("error\n{e}\n"),
            }
        }
        // `ironfence node reevaluate <mac>`: CoA / Disconnect to the switch holding its session.
        other if other.starts_with("reevaluate ") => {
            match ironfence_core::Mac::parse(other["reevaluate ".len()..].trim()) {
                Ok(mac) => match crate::coa::reevaluate_access(&shared, mac).await {
                    Ok(r) if r.acked() => format!("ok\n{r}"),
                    Ok(r) => format!("error\n{r}the switch did not acknowledge\n"),
                    Err(e) => format!("error\n{e}\n"),
                },
                Err(e) => format!("error\n{e}\n"),
            }
        }
        other => format!("error\nunknown control command {other:?}\n"),
    };
    let _ = write.write_all(answer.as_bytes()).await;
}

/// Errors of the control client, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "no ironfence daemon answers on {path}: is `ironfence serve` running with this conf dir? ({source})"
    )]
    NotRunning {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
    #[error("control socket i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Client side, used by the CLI.
#[derive(Debug)]
pub struct ControlClient {
    path: PathBuf,
}

impl ControlClient {
    pub fn new(path: PathBuf) -> ControlClient {
        ControlClient { path }
    }

    /// Sends one command; returns the daemon's text on `ok`.
    pub async fn call(&self, command: &str) -> Result<String, ControlError> {
        let mut stream =
            UnixStream::connect(&self.path)
                .await
                .map_err(|source| ControlError::NotRunning {
                    path: self.path.clone(),
                    source,
                })?;
        stream.write_all(format!("{command}\n").as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        match answer.split_once('\n') {
            Some(("ok", rest)) => Ok(rest.to_string()),
            Some((_, rest)) => Err(ControlError::Refused(rest.trim_end().to_string())),
            None => Err(ControlError::Refused(answer)),
        }
    }
}

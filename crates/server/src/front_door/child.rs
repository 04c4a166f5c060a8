//! A supervised child process (keepalived, haproxy): started with `PR_SET_PDEATHSIG` =
//! SIGTERM, so that a kill -9 of ironfence makes keepalived withdraw its VIPs at once (it sends
//! priority-0 adverts and removes the addresses on SIGTERM) instead of holding them for a dead
//! daemon; its output is forwarded line by line to the log; its exit is reported on a channel.
//!
//! The parent-death signal fires when the *thread* that forked the child ends, not the
//! process: every child is forked by its own dedicated thread, which then waits for it and
//! lives exactly as long as it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc;

/// Which daemon a child is (for exit reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Keepalived,
    Haproxy,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Keepalived => "keepalived",
            Which::Haproxy => "haproxy",
        }
    }
}

/// A running child.
#[derive(Debug)]
pub struct Child {
    pub pid: u32,
}

impl Child {
    /// Starts `program args` from a new thread; its exit status goes to `exits` as
    /// `(which, pid, status)`. Fails with a clear message when the program cannot be started.
    pub fn spawn(
        which: Which,
        program: &Path,
        args: Vec<OsString>,
        exits: mpsc::UnboundedSender<(Which, u32, String)>,
    ) -> Result<Child, String> {
        let program: PathBuf = program.to_path_buf();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<u32, String>>();
        std::thread::Builder::new()
            .name(which.name().to_string())
            .spawn(move || {
                let mut cmd = Command::new(&program);
                cmd.args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                set_parent_death_signal(&mut cmd);
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = started_tx
                            .send(Err(format!("cannot start {}: {e}", program.display())));
                        return;
                    }
                };
                let pid = child.id();
                let _ = started_tx.send(Ok(pid));
                let name = which.name();
                let out = child.stdout.take().map(|s| forward(name, pid, s));
                let err = child.stderr.take().map(|s| forward(name, pid, s));
                let mut status = match child.wait() {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("cannot wait for it: {e}"),
                };
                // Its last words (e.g. haproxy's "[ALERT] … unable to load certificate")
                // make the error in `cluster status` say why.
                let why: Vec<String> = [err, out]
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.join().ok().flatten())
                    .collect();
                if let Some(line) = why.first() {
                    status.push_str(": ");
                    status.push_str(line);
                }
                let _ = exits.send((which, pid, status));
            })
            .map_err(|e| format!("cannot start a thread for {}: {e}", which.name()))?;
        match started_rx.recv() {
            Ok(Ok(pid)) => Ok(Child { pid }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "{}: its thread ended before starting it",
                which.name()
            )),
        }
    }

    pub fn signal(&self, sig: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// Each line of the child's output into the log, under the child's name. Returns the line
/// that best says why it stopped (at most 300 characters): the first that reads as an error
/// (haproxy's `[ALERT]`, keepalived's "error"), else the last non-empty one.
fn forward(
    name: &'static str,
    pid: u32,
    stream: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        let mut last: Option<String> = None;
        let mut alert: Option<String> = None;
        for line in BufReader::new(stream).lines() {
            let Ok(l) = line else { break };
            tracing::info!(target: "ironfence::front_door", program = name, pid, "{l}");
            let t: String = l.trim().chars().take(300).collect();
            if t.is_empty() {
                continue;
            }
            let lower = t.to_ascii_lowercase();
            if alert.is_none() && (lower.contains("[alert]") || lower.contains("error")) {
                alert = Some(t.clone());
            }
            last = Some(t);
        }
        alert.or(last)
    })
}

/// `PR_SET_PDEATHSIG(SIGTERM)` in the child between fork and exec.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl: then nobody would signal us.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}

/// The pid recorded in `pid_file` when that process is not a running `comm` (a leftover of a
/// previous boot, whose number may now belong to anything): the file is removed, so that the
/// daemon does not refuse to start. A live `comm` keeps its file.
pub fn remove_stale_pid_file(pid_file: &Path, comm: &str) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    let alive = text
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .is_some_and(|c| c.trim() == comm);
    if !alive {
        let _ = std::fs::remove_file(pid_file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_exit_report_carries_the_reason_the_child_gave() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let c = Child::spawn(
            Which::Haproxy,
            Path::new("/bin/sh"),
            vec![
                "-c".into(),
                "echo starting; echo '[ALERT] unable to load certificate x.pem' >&2; echo 'Fatal errors' >&2; exit 1".into(),
            ],
            tx.clone(),
        )
        .unwrap();
        let (which, pid, status) = rx.recv().await.unwrap();
        assert_eq!((which, pid), (Which::Haproxy, c.pid));
        assert_eq!(
            status,
            "exit status: 1: [ALERT] unable to load certificate x.pem"
        );
        let e = Child::spawn(
            Which::Keepalived,
            Path::new("/nonexistent/keepalived"),
            vec![],
            tx,
        )
        .unwrap_err();
        assert!(
            e.starts_with("cannot start /nonexistent/keepalived: "),
            "{e}"
        );
    }
}

//! The supervision engine of one child daemon (keepalived or haproxy): events in, commands
//! out, time as an input. The server shell executes the commands (write the file, spawn,
//! signal) and reports what happened as events.
//!
//! ```text
//!   Idle ──Desired(Some(h))──► [WriteConfig, Spawn] Starting(h)
//!   Starting ──Spawned──► Running(h)         ──SpawnFailed──► Backoff(until)
//!   Running(h) ──Desired(Some(h'≠h))──► [WriteConfig, Reload]
//!   Running ──Exited──► Backoff(now + delay)   (delay doubles per quick failure, ≤ max)
//!   Backoff ──Tick(now ≥ until)──► [WriteConfig, Spawn] Starting
//!   any ──Desired(None)──► [Stop] (when a child runs) Stopping ──Exited──► Idle
//! ```
//!
//! A child that ran longer than `stable_after` before it died restarts after the first delay
//! again (a crash once a day is not a crash loop).

use std::time::Duration;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The configuration the child should run, by content hash; `None`: it should not run
    /// (maintenance, nothing to serve, shutdown).
    Desired(Option<String>),
    /// The child was started.
    Spawned {
        now: Duration,
    },
    /// The program could not be started (missing binary, exec error).
    SpawnFailed {
        now: Duration,
        error: String,
    },
    /// The child exited (`status` as text, e.g. "exit status: 1", "signal: 9").
    Exited {
        now: Duration,
        status: String,
    },
    Tick {
        now: Duration,
    },
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Write the desired configuration file (before Spawn or Reload).
    WriteConfig,
    Spawn,
    /// Tell the running child to re-read its configuration (SIGHUP / SIGUSR2).
    Reload,
    /// Stop the running child (SIGTERM).
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    Starting,
    Running { since: Duration },
    Backoff { until: Duration },
    Stopping,
}

/// What `cluster status` shows about the child.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupervisorStatus {
    pub running: bool,
    /// Restarts after a failure since the daemon started.
    pub restarts: u64,
    /// The last failure (spawn error or unexpected exit), cleared once the child has run
    /// `stable_after`.
    pub last_error: Option<String>,
    /// When the next start is due while backing off.
    pub retry_at: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Supervisor {
    name: &'static str,
    state: State,
    desired: Option<String>,
    /// The configuration hash the running child was started or reloaded with.
    running: Option<String>,
    quick_failures: u32,
    restarts: u64,
    last_error: Option<String>,
    first_delay: Duration,
    max_delay: Duration,
    stable_after: Duration,
}

impl Supervisor {
    /// `first_delay` after the first failure, doubling up to `max_delay`.
    pub fn new(name: &'static str, first_delay: Duration, max_delay: Duration) -> Supervisor {
        Supervisor {
            name,
            state: State::Idle,
            desired: None,
            running: None,
            quick_failures: 0,
            restarts: 0,
            last_error: None,
            first_delay,
            max_delay,
            stable_after: Duration::from_secs(10),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn delay(&self) -> Duration {
        let shift = self.quick_failures.saturating_sub(1).min(16);
        self.first_delay
            .saturating_mul(1 << shift)
            .min(self.max_delay)
    }

    fn start(&mut self) -> Vec<Command> {
        self.state = State::Starting;
        self.running = self.desired.clone();
        vec![Command::WriteConfig, Command::Spawn]
    }

    fn fail(&mut self, now: Duration, error: String) {
        self.quick_failures += 1;
        self.last_error = Some(error);
        self.running = None;
        self.state = if self.desired.is_some() {
            State::Backoff {
                until: now + self.delay(),
            }
        } else {
            State::Idle
        };
    }

    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        match (event, self.state.clone()) {
            (Event::Desired(d), state) => {
                self.desired = d;
                match (&self.desired, state) {
                    (None, State::Running { .. } | State::Starting) => {
                        self.state = State::Stopping;
                        vec![Command::Stop]
                    }
                    (None, State::Backoff { .. }) => {
                        self.state = State::Idle;
                        vec![]
                    }
                    (Some(_), State::Idle) => self.start(),
                    (Some(h), State::Running { .. }) if self.running.as_ref() != Some(h) => {
                        self.running = Some(h.clone());
                        vec![Command::WriteConfig, Command::Reload]
                    }
                    _ => vec![],
                }
            }
            (Event::Spawned { now }, State::Starting) => {
                self.state = State::Running { since: now };
                // A change that arrived while starting: the file written before the spawn
                // may be older than what is desired now.
                if self.desired.is_some() && self.desired != self.running {
                    self.running = self.desired.clone();
                    return vec![Command::WriteConfig, Command::Reload];
                }
                vec![]
            }
            (Event::Spawned { now }, _) => {
                self.state = State::Running { since: now };
                vec![]
            }
            (Event::SpawnFailed { now, error }, _) => {
                self.fail(now, error);
                vec![]
            }
            (Event::Exited { .. }, State::Stopping) => {
                self.state = State::Idle;
                self.running = None;
                if self.desired.is_some() {
                    return self.start();
                }
                vec![]
            }
            (Event::Exited { now, status }, state) => {
                if let State::Running { since } = state
                    && now.saturating_sub(since) >= self.stable_after
                {
                    self.quick_failures = 0;
                }
                self.restarts += 1;
                self.fail(now, format!("{} exited ({status})", self.name));
                vec![]
            }
            (Event::Tick { now }, State::Backoff { until }) if now >= until => {
                if self.desired.is_some() {
                    self.start()
                } else {
                    self.state = State::Idle;
                    vec![]
                }
            }
            (Event::Tick { now }, State::Running { since }) => {
                if now.saturating_sub(since) >= self.stable_after {
                    self.quick_failures = 0;
                    self.last_error = None;
                }
                vec![]
            }
            (Event::Tick { .. }, _) => vec![],
        }
    }

    pub fn status(&self) -> SupervisorStatus {
        SupervisorStatus {
            running: matches!(self.state, State::Running { .. }),
            restarts: self.restarts,
            last_error: self.last_error.clone(),
            retry_at: match self.state {
                State::Backoff { until } => Some(until),
                _ => None,
            },
        }
    }

    /// Whether a child process is believed to exist (running, starting or stopping).
    pub fn has_child(&self) -> bool {
        matches!(
            self.state,
            State::Running { .. } | State::Starting | State::Stopping
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sup() -> Supervisor {
        Supervisor::new("keepalived", ms(200), ms(5000))
    }

    #[test]
    fn starts_reloads_on_change_and_stops() {
        let mut s = sup();
        assert_eq!(s.handle(Event::Tick { now: ms(0) }), vec![]);
        assert_eq!(
            s.handle(Event::Desired(Some("h1".into()))),
            vec![Command::WriteConfig, Command::Spawn]
        );
        assert_eq!(s.handle(Event::Spawned { now: ms(10) }), vec![]);
        assert!(s.status().running);
        // The same configuration again: nothing to do.
        assert_eq!(s.handle(Event::Desired(Some("h1".into()))), vec![]);
        assert_eq!(
            s.handle(Event::Desired(Some("h2".into()))),
            vec![Command::WriteConfig, Command::Reload]
        );
        assert_eq!(s.handle(Event::Desired(None)), vec![Command::Stop]);
        assert_eq!(
            s.handle(Event::Exited {
                now: ms(20),
                status: "exit status: 0".into()
            }),
            vec![]
        );
        assert!(!s.status().running);
        assert_eq!(s.status().restarts, 0, "a requested stop is no failure");
        assert_eq!(s.status().last_error, None);
    }

    #[test]
    fn a_dead_child_restarts_after_a_doubling_back_off() {
        let mut s = sup();
        s.handle(Event::Desired(Some("h".into())));
        s.handle(Event::Spawned { now: ms(0) });
        let mut now = ms(100);
        let mut delays = Vec::new();
        for _ in 0..6 {
            s.handle(Event::Exited {
                now,
                status: "signal: 9".into(),
            });
            let until = s.status().retry_at.expect("backing off");
            delays.push((until - now).as_millis());
            // Not before the delay.
            assert_eq!(s.handle(Event::Tick { now: until - ms(1) }), vec![]);
            assert_eq!(
                s.handle(Event::Tick { now: until }),
                vec![Command::WriteConfig, Command::Spawn]
            );
            s.handle(Event::Spawned { now: until });
            now = until + ms(50);
        }
        assert_eq!(delays, vec![200, 400, 800, 1600, 3200, 5000]);
        assert_eq!(s.status().restarts, 6);
        assert_eq!(
            s.status().last_error.as_deref(),
            Some("keepalived exited (signal: 9)")
        );
        // Running for a while resets the back-off and clears the error.
        s.handle(Event::Tick {
            now: now + ms(10_000),
        });
        assert_eq!(s.status().last_error, None);
        let t = now + ms(20_000);
        s.handle(Event::Exited {
            now: t,
            status: "signal: 11".into(),
        });
        assert_eq!(s.status().retry_at, Some(t + ms(200)));
    }

    #[test]
    fn a_missing_binary_is_retried_and_reported() {
        let mut s = sup();
        assert_eq!(
            s.handle(Event::Desired(Some("h".into()))),
            vec![Command::WriteConfig, Command::Spawn]
        );
        s.handle(Event::SpawnFailed {
            now: ms(0),
            error: "haproxy not found".into(),
        });
        let st = s.status();
        assert!(!st.running);
        assert_eq!(st.last_error.as_deref(), Some("haproxy not found"));
        assert_eq!(st.retry_at, Some(ms(200)));
        // Nothing wanted any more: no retry.
        s.handle(Event::Desired(None));
        assert_eq!(s.handle(Event::Tick { now: ms(10_000) }), vec![]);
        assert_eq!(s.status().retry_at, None);
    }

    #[test]
    fn a_change_while_starting_is_applied_once_running() {
        let mut s = sup();
        s.handle(Event::Desired(Some("h1".into())));
        assert_eq!(s.handle(Event::Desired(Some("h2".into()))), vec![]);
        assert_eq!(
            s.handle(Event::Spawned { now: ms(1) }),
            vec![Command::WriteConfig, Command::Reload]
        );
        // A stop requested while stopping, then wanted again: restart once it exited.
        s.handle(Event::Desired(None));
        s.handle(Event::Desired(Some("h3".into())));
        assert_eq!(
            s.handle(Event::Exited {
                now: ms(2),
                status: "exit status: 0".into()
            }),
            vec![Command::WriteConfig, Command::Spawn]
        );
    }
}

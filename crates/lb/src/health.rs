//! Per-backend health: alive → zombie → dead → reviving → alive, FreeRADIUS `home_server`
//! semantics with sub-second timings.
//!
//! | event | alive | zombie | dead | reviving |
//! |---|---|---|---|---|
//! | request answered | alive | **alive** | reviving(1) | reviving(n+1) → alive at N |
//! | request timed out (no answer within `response_window`) | **zombie** (probe now) | zombie | dead | dead |
//! | probe answered | alive | **alive** | reviving(1) | reviving(n+1) → alive at N |
//! | probe timed out | **zombie** | zombie (dead once `zombie_period` passed) | dead | **dead** |
//! | `zombie_period` without any answer | – | **dead** | – | – |
//!
//! Probes (Status-Server, RFC 5997) go every `check_interval` while zombie, dead or reviving,
//! and every `alive_check_interval` while alive (which is also how the front learns a
//! backend's drain and read-only flags, and how an idle backend's death is noticed).
//!
//! # Timings (defaults) and why
//! Switches retransmit after 1 s (Cisco's `radius-server timeout` default is 5 s, but
//! `radclient -t 1` and many access-point controllers use 1–2 s), and a switch that gets no
//! answer after its retries fails the port. The balancer must therefore try the next backend
//! well inside one retransmission interval:
//! * `response_window` **500 ms**: a MAB answer takes < 1 ms, an EAP round a few ms, a MariaDB
//!   commit under load tens of ms; 500 ms is two orders of magnitude above normal and still
//!   leaves 500 ms for the next backend before the switch retransmits (PacketFence: 6 s, so a
//!   dead backend costs the switch several retransmits).
//! * `check_interval` **200 ms** while zombie/dead: a probe is one tiny datagram; five per
//!   second per backend is nothing, and it makes revival and death quick (PacketFence: 20 s).
//! * `probe_timeout` **300 ms**: a Status-Server answer is immediate (the endpoint answers it
//!   without touching the database); 300 ms is far above a loaded LAN's round trip.
//! * `zombie_period` **1 s**: a zombie that answers nothing (requests or probes, ≥ 2 probes)
//!   for 1 s is dead (PacketFence: 40 s); while zombie it gets new requests only when no
//!   backend is alive, so being conservative here costs little.
//! * `num_answers_to_alive` **3**: three probe answers in a row (≥ 600 ms) before a dead
//!   backend gets traffic again, so a flapping or restarting daemon is not fed too early (same
//!   as PacketFence).
//! * `alive_check_interval` **200 ms**: a member that dies is a zombie within 0.5 s (the
//!   interval plus the probe timeout), before keepalived moves a dead holder's VIP (3 adverts + skew ≈ 0.65 s),
//!   so the new holder skips the dead member at once instead of spending a response window on
//!   each of its keys (measured: partition → answered 1.42 s with 1 s / 400 ms). Five tiny
//!   datagrams per second per peer. Drain flags are learned within 0.2 s.

use std::time::{Duration, Instant};

/// The timings (see the module docs for the defaults' reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// A request not answered within this is a timeout (the caller tries the next backend).
    pub response_window: Duration,
    /// Probe interval while zombie, dead or reviving.
    pub check_interval: Duration,
    /// Probe interval while alive.
    pub alive_check_interval: Duration,
    /// A probe not answered within this is lost.
    pub probe_timeout: Duration,
    /// A zombie answering nothing for this long is dead.
    pub zombie_period: Duration,
    /// Consecutive answers that make a dead backend alive again.
    pub num_answers_to_alive: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            response_window: Duration::from_millis(500),
            check_interval: Duration::from_millis(200),
            alive_check_interval: Duration::from_millis(200),
            probe_timeout: Duration::from_millis(300),
            zombie_period: Duration::from_secs(1),
            num_answers_to_alive: 3,
        }
    }
}

/// A backend's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Answering: takes requests.
    Alive,
    /// Missed an answer since `since`: probed; takes requests only when nobody is alive.
    Zombie {
        /// When it became a zombie.
        since: Instant,
    },
    /// Takes no requests; probed.
    Dead,
    /// Dead but answering: `answers` in a row so far.
    Reviving {
        /// Consecutive answers.
        answers: u32,
    },
}

impl HealthState {
    /// `alive`, `zombie`, `dead`, `reviving` (logs, metrics).
    pub fn label(&self) -> &'static str {
        match self {
            HealthState::Alive => "alive",
            HealthState::Zombie { .. } => "zombie",
            HealthState::Dead => "dead",
            HealthState::Reviving { .. } => "reviving",
        }
    }

    /// The state gauge's value: 0 alive, 1 zombie, 2 dead, 3 reviving.
    pub fn gauge(&self) -> i64 {
        match self {
            HealthState::Alive => 0,
            HealthState::Zombie { .. } => 1,
            HealthState::Dead => 2,
            HealthState::Reviving { .. } => 3,
        }
    }
}

/// A probe to send now; answer with [`Health::probe_answered`] (its loss is noticed by
/// [`Health::poll`] at `deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeDue {
    /// When it is considered lost.
    pub deadline: Instant,
}

/// One backend's health state machine (see the module docs).
#[derive(Debug, Clone)]
pub struct Health {
    config: HealthConfig,
    state: HealthState,
    next_probe: Instant,
    probe_deadline: Option<Instant>,
}

impl Health {
    /// A backend assumed alive (so the first requests go out), probed at once.
    pub fn new(config: HealthConfig, now: Instant) -> Health {
        Health {
            config,
            state: HealthState::Alive,
            next_probe: now,
            probe_deadline: None,
        }
    }

    /// The timings.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// A request (or a probe) was answered.
    fn answered(&mut self) {
        self.state = match self.state {
            HealthState::Alive | HealthState::Zombie { .. } => HealthState::Alive,
            HealthState::Dead => self.reviving(1),
            HealthState::Reviving { answers } => self.reviving(answers + 1),
        };
    }

    fn reviving(&self, answers: u32) -> HealthState {
        if answers >= self.config.num_answers_to_alive {
            HealthState::Alive
        } else {
            HealthState::Reviving { answers }
        }
    }

    fn missed(&mut self, now: Instant) {
        self.state = match self.state {
            HealthState::Alive => {
                self.next_probe = now; // probe at once
                HealthState::Zombie { since: now }
            }
            HealthState::Zombie { since } => HealthState::Zombie { since },
            HealthState::Dead | HealthState::Reviving { .. } => HealthState::Dead,
        };
    }

    /// A proxied request was answered.
    pub fn request_answered(&mut self, _now: Instant) {
        self.answered();
    }

    /// A proxied request got no answer within `response_window`.
    pub fn request_timed_out(&mut self, now: Instant) {
        self.missed(now);
    }

    /// The probe in flight was answered.
    pub fn probe_answered(&mut self, _now: Instant) {
        if self.probe_deadline.take().is_some() {
            self.answered();
        }
    }

    /// Time passes: notices a lost probe and the end of the zombie period, and says whether a
    /// probe is due (it is then in flight until answered or until its deadline).
    pub fn poll(&mut self, now: Instant) -> Option<ProbeDue> {
        if let Some(deadline) = self.probe_deadline
            && now >= deadline
        {
            self.probe_deadline = None;
            self.missed(now);
        }
        if let HealthState::Zombie { since } = self.state
            && now.saturating_duration_since(since) >= self.config.zombie_period
        {
            self.state = HealthState::Dead;
        }
        if self.probe_deadline.is_some() || now < self.next_probe {
            return None;
        }
        let interval = match self.state {
            HealthState::Alive => self.config.alive_check_interval,
            _ => self.config.check_interval,
        };
        self.next_probe = now + interval;
        let deadline = now + self.config.probe_timeout;
        self.probe_deadline = Some(deadline);
        Some(ProbeDue { deadline })
    }

    /// Whether a probe is in flight.
    pub fn probe_in_flight(&self) -> bool {
        self.probe_deadline.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[derive(Debug, Clone, Copy)]
    enum Ev {
        Poll,
        RequestAnswered,
        RequestTimedOut,
        ProbeAnswered,
    }

    /// Timings the transition tables below are written for (1 s alive interval, 400 ms probe
    /// timeout), so the tables read easily; the shipped defaults are checked by
    /// `defaults_notice_a_dead_member_before_keepalived_moves_its_vip`.
    fn table_config() -> HealthConfig {
        HealthConfig {
            alive_check_interval: ms(1000),
            probe_timeout: ms(400),
            ..HealthConfig::default()
        }
    }

    /// (time in ms, event, expected state label after it, expected "probe due" for polls)
    fn run(rows: &[(u64, Ev, &str, Option<bool>)]) {
        run_with(table_config(), rows)
    }

    fn run_with(config: HealthConfig, rows: &[(u64, Ev, &str, Option<bool>)]) {
        let t0 = Instant::now();
        let mut h = Health::new(config, t0);
        for (i, &(t, ev, want, due)) in rows.iter().enumerate() {
            let now = t0 + ms(t);
            let got_due = match ev {
                Ev::Poll => Some(h.poll(now).is_some()),
                Ev::RequestAnswered => {
                    h.request_answered(now);
                    None
                }
                Ev::RequestTimedOut => {
                    h.request_timed_out(now);
                    None
                }
                Ev::ProbeAnswered => {
                    h.probe_answered(now);
                    None
                }
            };
            assert_eq!(h.state().label(), want, "row {i}: {rows:?}");
            if let Some(due) = due {
                assert_eq!(got_due, Some(due), "row {i}: probe due");
            }
        }
    }

    #[test]
    fn alive_backend_is_probed_every_second() {
        use Ev::*;
        run(&[
            (0, Poll, "alive", Some(true)),
            (1, ProbeAnswered, "alive", None),
            (500, Poll, "alive", Some(false)),
            (1000, Poll, "alive", Some(true)),
            (1002, ProbeAnswered, "alive", None),
            (1500, RequestAnswered, "alive", None),
        ]);
    }

    #[test]
    fn timeout_zombie_then_dead_then_revived_by_three_answers() {
        use Ev::*;
        run(&[
            (0, Poll, "alive", Some(true)),
            (1, ProbeAnswered, "alive", None),
            (300, RequestTimedOut, "zombie", None),
            (300, Poll, "zombie", Some(true)),  // probed at once
            (500, Poll, "zombie", Some(false)), // still in flight
            (700, Poll, "zombie", Some(true)),  // lost at 700, next one sent
            (1100, Poll, "zombie", Some(true)),
            (1300, Poll, "dead", Some(false)), // zombie_period (1 s) over
            (1500, Poll, "dead", Some(true)),
            (1510, ProbeAnswered, "reviving", None),
            (1700, Poll, "reviving", Some(true)),
            (1705, ProbeAnswered, "reviving", None),
            (1900, Poll, "reviving", Some(true)),
            (1901, ProbeAnswered, "alive", None),
            (2000, Poll, "alive", Some(false)),
            (2100, Poll, "alive", Some(true)),
            (2101, ProbeAnswered, "alive", None),
            (2900, Poll, "alive", Some(false)), // back to the 1 s interval
            (3100, Poll, "alive", Some(true)),
        ]);
    }

    #[test]
    fn a_zombie_that_answers_is_alive_at_once() {
        use Ev::*;
        run(&[
            (0, RequestTimedOut, "zombie", None),
            (0, Poll, "zombie", Some(true)),
            (10, ProbeAnswered, "alive", None),
            (20, RequestTimedOut, "zombie", None),
            (30, RequestAnswered, "alive", None),
        ]);
    }

    #[test]
    fn a_lost_probe_while_reviving_means_dead_again() {
        use Ev::*;
        run(&[
            (0, RequestTimedOut, "zombie", None),
            (0, Poll, "zombie", Some(true)),
            (400, Poll, "zombie", Some(true)),
            (800, Poll, "zombie", Some(true)),
            (1000, Poll, "dead", Some(false)),
            (1200, Poll, "dead", Some(true)),
            (1201, ProbeAnswered, "reviving", None),
            (1400, Poll, "reviving", Some(true)),
            (1800, Poll, "dead", Some(true)), // lost: dead, counting starts again
            (1801, ProbeAnswered, "reviving", None),
        ]);
    }

    #[test]
    fn an_alive_backend_whose_probe_is_lost_becomes_zombie() {
        use Ev::*;
        run(&[
            (0, Poll, "alive", Some(true)),
            (400, Poll, "zombie", Some(true)),
            (401, ProbeAnswered, "alive", None),
        ]);
    }

    /// With the shipped timings, an alive member that stops answering (killed, partitioned)
    /// is a zombie — skipped while anyone alive remains — within 0.5 s: before keepalived
    /// moves a dead holder's VIP (3 adverts of 0.2 s + skew), so the new holder never spends a
    /// response window on the dead member's keys.
    #[test]
    fn defaults_notice_a_dead_member_before_keepalived_moves_its_vip() {
        use Ev::*;
        let d = HealthConfig::default();
        assert!(d.alive_check_interval + d.probe_timeout <= ms(500), "{d:?}");
        run_with(
            d,
            &[
                (0, Poll, "alive", Some(true)),
                (1, ProbeAnswered, "alive", None),
                // the member dies at 2 ms
                (150, Poll, "alive", Some(false)),
                (200, Poll, "alive", Some(true)),
                (499, Poll, "alive", Some(false)),
                (500, Poll, "zombie", Some(true)),
            ],
        );
    }

    #[test]
    fn an_answer_without_a_probe_in_flight_is_ignored() {
        use Ev::*;
        run(&[
            (0, RequestTimedOut, "zombie", None),
            (1, ProbeAnswered, "zombie", None), // none was sent: a stray or replayed answer
        ]);
    }
}

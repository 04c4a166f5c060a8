//! keepalived's `notify_fifo` lines → which VIPs this server holds.
//!
//! keepalived 2.2.7 writes one line per state change: `INSTANCE "name" MASTER 100`,
//! `INSTANCE "name" BACKUP 100`, `INSTANCE "name" FAULT 0`, `INSTANCE "name" STOP 100`,
//! `GROUP "name" MASTER` (sync groups, unused here). A line that is not understood is dropped
//! (the caller counts it); nothing here panics on hostile or truncated input.

use std::collections::BTreeMap;

use crate::plan::{Vip, VipPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    Instance,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    Master,
    Backup,
    Fault,
    Stop,
    Deleted,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub kind: NotifyKind,
    pub name: String,
    pub state: VrrpState,
    pub priority: Option<u8>,
}

/// Parses one FIFO line (without or with its newline). `None`: not understood.
pub fn parse_line(line: &str) -> Option<Notify> {
    let line = line.trim_end_matches(['\n', '\r']);
    let (kind, rest) = line.split_once(' ')?;
    let kind = match kind {
        "INSTANCE" => NotifyKind::Instance,
        "GROUP" => NotifyKind::Group,
        _ => return None,
    };
    let rest = rest.strip_prefix('"')?;
    let (name, rest) = rest.split_once('"')?;
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    let mut words = rest.split_whitespace();
    let state = match words.next()? {
        "MASTER" => VrrpState::Master,
        "BACKUP" => VrrpState::Backup,
        "FAULT" => VrrpState::Fault,
        "STOP" => VrrpState::Stop,
        "DELETED" => VrrpState::Deleted,
        _ => return None,
    };
    let priority = match words.next() {
        Some(p) => Some(p.parse::<u8>().ok()?),
        None => None,
    };
    if words.next().is_some() {
        return None;
    }
    Some(Notify {
        kind,
        name: name.to_string(),
        state,
        priority,
    })
}

/// The last state keepalived reported per instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    states: BTreeMap<String, VrrpState>,
}

impl Held {
    /// Records a line; returns whether it changed anything.
    pub fn apply(&mut self, n: &Notify) -> bool {
        if n.kind != NotifyKind::Instance {
            return false;
        }
        self.states.insert(n.name.clone(), n.state) != Some(n.state)
    }

    /// keepalived stopped or restarts: it holds nothing until it says so again.
    pub fn clear(&mut self) {
        self.states.clear();
    }

    pub fn state(&self, instance: &str) -> Option<VrrpState> {
        self.states.get(instance).copied()
    }

    /// `(interface, VIP)` of every instance in MASTER state that the plan knows.
    pub fn vips(&self, plan: &VipPlan) -> Vec<(String, Vip)> {
        plan.instances
            .iter()
            .filter(|i| self.state(&i.name) == Some(VrrpState::Master))
            .flat_map(|i| i.vips.iter().map(|v| (i.interface.clone(), *v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_lines_parse() {
        assert_eq!(
            parse_line("INSTANCE \"ironfence_eth0\" MASTER 100\n"),
            Some(Notify {
                kind: NotifyKind::Instance,
                name: "ironfence_eth0".into(),
                state: VrrpState::Master,
                priority: Some(100),
            })
        );
        assert_eq!(
            parse_line("GROUP \"g\" BACKUP").map(|n| (n.kind, n.state, n.priority)),
            Some((NotifyKind::Group, VrrpState::Backup, None))
        );
        assert_eq!(
            parse_line("INSTANCE \"x\" FAULT 0").map(|n| n.state),
            Some(VrrpState::Fault)
        );
    }

    #[test]
    fn bad_lines_are_refused_without_panicking() {
        for bad in [
            "",
            "INSTANCE",
            "INSTANCE ironfence_eth0 MASTER 100",
            "INSTANCE \"unterminated MASTER 100",
            "INSTANCE \"\" MASTER 100",
            "INSTANCE \"x\" PRIMARY 100",
            "INSTANCE \"x\" MASTER 300",
            "INSTANCE \"x\" MASTER 100 extra",
            "VIRTUAL_SERVER \"x\" UP",
            "INSTANCE \"é\u{0}\" MASTER -1",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
        // Arbitrary bytes (lossy UTF-8) never panic.
        for n in 0..2000u32 {
            let s: String = (0..(n % 40))
                .map(|k| {
                    char::from_u32((n.wrapping_mul(2654435761).wrapping_add(k * 7919)) % 0x80)
                        .unwrap_or(' ')
                })
                .collect();
            let _ = parse_line(&format!("INSTANCE \"{s}"));
            let _ = parse_line(&s);
        }
    }

    /// The property of the `keepalived_notify` fuzz target, on chosen inputs.
    #[test]
    fn accepted_lines_round_trip() {
        for line in [
            "INSTANCE \"ironfence_eth1.2\" MASTER 200",
            "INSTANCE \"a b\" BACKUP +5",
            "INSTANCE \"x\"MASTER",
            "GROUP \"g\" DELETED 0\r",
            "INSTANCE \"x\" STOP\t255",
        ] {
            let n = parse_line(line).unwrap_or_else(|| panic!("{line:?}"));
            let kind = match n.kind {
                NotifyKind::Instance => "INSTANCE",
                NotifyKind::Group => "GROUP",
            };
            let state = match n.state {
                VrrpState::Master => "MASTER",
                VrrpState::Backup => "BACKUP",
                VrrpState::Fault => "FAULT",
                VrrpState::Stop => "STOP",
                VrrpState::Deleted => "DELETED",
            };
            let again = match n.priority {
                Some(p) => format!("{kind} \"{}\" {state} {p}", n.name),
                None => format!("{kind} \"{}\" {state}", n.name),
            };
            assert_eq!(parse_line(&again).as_ref(), Some(&n), "{again:?}");
        }
    }

    #[test]
    fn held_follows_the_last_state_per_instance() {
        let mut h = Held::default();
        let m = parse_line("INSTANCE \"a\" MASTER 100").unwrap();
        assert!(h.apply(&m));
        assert!(!h.apply(&m));
        assert_eq!(h.state("a"), Some(VrrpState::Master));
        assert!(h.apply(&parse_line("INSTANCE \"a\" BACKUP 50").unwrap()));
        assert_eq!(h.state("a"), Some(VrrpState::Backup));
        assert!(!h.apply(&parse_line("GROUP \"a\" MASTER").unwrap()));
        h.clear();
        assert_eq!(h.state("a"), None);
    }
}

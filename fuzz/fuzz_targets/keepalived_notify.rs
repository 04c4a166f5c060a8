//! Parse arbitrary bytes as keepalived `notify_fifo` lines (what the daemon reads from the
//! FIFO keepalived writes; a local process that can write the FIFO could send anything).
//! Never panics; an accepted line written back in keepalived's format parses to the same
//! notification, and the held-VIP state follows it.
#![no_main]

use ironfence_ha::{Held, NotifyKind, VrrpState, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut held = Held::default();
    for line in text.split('\n') {
        let Some(n) = parse_line(line) else { continue };
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
        held.apply(&n);
        if n.kind == NotifyKind::Instance {
            assert_eq!(held.state(&n.name), Some(n.state));
        }
    }
});

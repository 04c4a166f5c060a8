//! `grastate.dat`, Galera's saved state, and the position `mariadbd --wsrep-recover` finds.
//!
//! ```text
//! # GALERA saved state
//! version: 2.1
//! uuid:    5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b
//! seqno:   -1                       <- -1: not stopped cleanly (or never synced)
//! safe_to_bootstrap: 0              <- 1 only on the last node to leave a cluster cleanly
//! ```
//!
//! The parser is tolerant of what it does not need (comments, blank lines, `version:` and any
//! other key, CRLF) and strict on what it needs: exactly one `uuid:` in Galera's
//! `8-4-4-4-12` hex form, exactly one `seqno:` (an integer ≥ -1), at most one
//! `safe_to_bootstrap:` (`0` or `1`; missing — files written before Galera 3.19 — reads as `0`,
//! the cautious answer: this node will not bootstrap on its own). It never panics (fuzz target
//! `grastate_decode`, proptests).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The UUID of a node that has no cluster state yet (or whose state was reset).
pub const ZERO_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// The fields of `grastate.dat` a start decision needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GraState {
    /// The cluster's state UUID (lower case).
    pub uuid: String,
    /// The last committed seqno; `-1` after an unclean stop (run `--wsrep-recover`).
    pub seqno: i64,
    /// Galera's "this node left last, it may bootstrap" flag.
    pub safe_to_bootstrap: bool,
}

impl GraState {
    /// `seqno: -1`: the position is unknown (unclean stop) and must be recovered.
    pub fn needs_recovery(&self) -> bool {
        self.seqno < 0
    }

    /// The all-zero UUID: this datadir holds no cluster state.
    pub fn has_zero_uuid(&self) -> bool {
        self.uuid == ZERO_UUID
    }
}

/// `grastate.dat` as Galera writes it (version 2.1); [`parse`] reads it back unchanged.
impl fmt::Display for GraState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# GALERA saved state")?;
        writeln!(f, "version: 2.1")?;
        writeln!(f, "uuid:    {}", self.uuid)?;
        writeln!(f, "seqno:   {}", self.seqno)?;
        writeln!(f, "safe_to_bootstrap: {}", u8::from(self.safe_to_bootstrap))
    }
}

/// Why `grastate.dat` cannot be used. `line` numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrastateError {
    #[error(
        "grastate.dat has no {0}: line: the file is truncated or not Galera's; if this node's data is expendable, stop it, empty its datadir and let it rejoin by SST"
    )]
    Missing(&'static str),
    #[error(
        "grastate.dat line {line}: {key}: appears twice: the file is corrupt; fix it by hand (keep the uuid and seqno of `mariadbd --wsrep-recover`)"
    )]
    Duplicate { key: &'static str, line: usize },
    #[error(
        "grastate.dat line {line}: {key}: {value:?} is not {expected}: the file is corrupt; fix it by hand (keep the uuid and seqno of `mariadbd --wsrep-recover`)"
    )]
    Invalid {
        key: &'static str,
        line: usize,
        value: String,
        expected: &'static str,
    },
}

/// Parses `grastate.dat`.
pub fn parse(text: &str) -> Result<GraState, GrastateError> {
    let mut uuid: Option<String> = None;
    let mut seqno: Option<i64> = None;
    let mut safe: Option<bool> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some((key, value)) = field(raw) else {
            continue;
        };
        match key {
            "uuid" => {
                if uuid.is_some() {
                    return Err(GrastateError::Duplicate { key: "uuid", line });
                }
                if !is_uuid(value) {
                    return Err(invalid(
                        "uuid",
                        line,
                        value,
                        "a UUID (8-4-4-4-12 hex digits)",
                    ));
                }
                uuid = Some(value.to_ascii_lowercase());
            }
            "seqno" => {
                if seqno.is_some() {
                    return Err(GrastateError::Duplicate { key: "seqno", line });
                }
                match value.parse::<i64>() {
                    Ok(n) if n >= -1 => seqno = Some(n),
                    _ => {
                        return Err(invalid(
                            "seqno",
                            line,
                            value,
                            "a sequence number (-1 or more)",
                        ));
                    }
                }
            }
            "safe_to_bootstrap" => {
                if safe.is_some() {
                    return Err(GrastateError::Duplicate {
                        key: "safe_to_bootstrap",
                        line,
                    });
                }
                safe = Some(match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(invalid("safe_to_bootstrap", line, value, "0 or 1")),
                });
            }
            _ => {}
        }
    }
    Ok(GraState {
        uuid: uuid.ok_or(GrastateError::Missing("uuid"))?,
        seqno: seqno.ok_or(GrastateError::Missing("seqno"))?,
        safe_to_bootstrap: safe.unwrap_or(false),
    })
}

/// `grastate.dat` with `safe_to_bootstrap: 1` (what `--force-new-cluster` does before
/// starting with `--wsrep-new-cluster`; PacketFence's `sed` in `pf-mariadb`). Every other line
/// is kept byte for byte; the key is appended when missing. The caller also removes
/// `gvwstate.dat`, so that the node does not wait for its last primary view.
pub fn mark_safe_to_bootstrap(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 21);
    let mut found = false;
    for raw in text.split_inclusive('\n') {
        let body = raw.trim_end_matches(['\n', '\r']);
        if matches!(field(body), Some(("safe_to_bootstrap", _))) {
            out.push_str("safe_to_bootstrap: 1");
            out.push_str(&raw[body.len()..]);
            found = true;
        } else {
            out.push_str(raw);
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("safe_to_bootstrap: 1\n");
    }
    out
}

/// The position in the output of `mariadbd --wsrep-recover` (its error log), from the line
/// `[Note] WSREP: Recovered position: 5bfc8d4b-e95e-11f1-8bb1-32ac4a781a5b:71` (lab §5): the
/// last such line wins. A suffix after the seqno (`,0-1-71` with GTIDs) is ignored. `None`
/// when no line has a valid `uuid:seqno`. The caller starts mariadbd with
/// `--wsrep_start_position=<uuid>:<seqno>`.
pub fn parse_wsrep_recover(log: &str) -> Option<(String, i64)> {
    const MARK: &str = "WSREP: Recovered position: ";
    log.lines().rev().find_map(|l| {
        let (_, rest) = l.split_once(MARK)?;
        let pos = rest
            .trim()
            .split(|c: char| c == ',' || c.is_whitespace())
            .next()?;
        let (uuid, seqno) = pos.rsplit_once(':')?;
        let seqno = seqno.parse::<i64>().ok().filter(|n| *n >= -1)?;
        is_uuid(uuid).then(|| (uuid.to_ascii_lowercase(), seqno))
    })
}

/// `key: value` of a line, or `None` for blank lines, comments and lines without a colon.
fn field(raw: &str) -> Option<(&str, &str)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (key, value) = line.split_once(':')?;
    Some((key.trim(), value.trim()))
}

fn invalid(key: &'static str, line: usize, value: &str, expected: &'static str) -> GrastateError {
    GrastateError::Invalid {
        key,
        line,
        value: value.chars().take(80).collect(),
        expected,
    }
}

/// Galera's UUID text form: 8-4-4-4-12 hex digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;

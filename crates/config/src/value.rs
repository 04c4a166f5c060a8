//! Value syntaxes shared by every file, spelled the way PacketFence spells them.

use std::time::Duration;

/// PacketFence booleans: `enabled`/`disabled`, `yes`/`no`, `y`/`n`, `true`/`false`, `1`/`0`,
/// `on`/`off` (case-insensitive).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "enabled" | "enable" | "yes" | "y" | "true" | "1" | "on" => Some(true),
        "disabled" | "disable" | "no" | "n" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// PacketFence durations: a number of seconds (`30`) or a number with a unit: `s`, `m`
/// (minutes), `h`, `d`/`D`, `w`/`W`, and PacketFence's `M` (30 days) and `Y` (365 days).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "D" => 86_400,
        "w" | "W" => 7 * 86_400,
        "M" => 30 * 86_400,
        "Y" | "y" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

/// A size in bytes: `8388608`, or with a binary unit `512k`, `8M`, `1G` (also `KiB`, `MiB`,
/// `GiB`, `KB`, `MB`, `GB`, all powers of 1024; case-insensitive).
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Why a VLAN value is invalid, phrased to follow `<key> "<value>" `.
pub fn vlan_problem(value: &str) -> Option<&'static str> {
    if value.chars().all(|c| c.is_ascii_digit()) {
        match value.parse::<u32>() {
            Ok(1..=4094) => None,
            _ => Some("is not a VLAN id (1-4094)"),
        }
    } else if value.contains(char::is_whitespace) {
        Some("is neither a VLAN id (1-4094) nor a VLAN name (a VLAN name has no spaces)")
    } else {
        None
    }
}

/// RADIUS secrets and passwords that ship in examples and guides and are tried first by anyone
/// attacking a NAC.
pub const WELL_KNOWN_SECRETS: &[&str] = &[
    "testing123",
    "secret",
    "changeme",
    "radius",
    "packetfence",
    "useStrongerSecret",
    // The example configuration's secret: public because it ships in the repository.
    "ironfence-example-secret-CHANGE-ME",
];

/// Minimum length of a RADIUS secret before `checkup` warns.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a RADIUS secret is weak (`None` when it passes the checks).
pub fn secret_weakness(secret: &str) -> Option<String> {
    if WELL_KNOWN_SECRETS
        .iter()
        .any(|w| w.eq_ignore_ascii_case(secret))
        || secret.to_ascii_lowercase().contains("change-me")
        || secret.to_ascii_lowercase().contains("changeme")
    {
        Some(format!("is a well-known default ({secret:?})"))
    } else if secret.chars().count() < MIN_SECRET_LEN {
        let n = secret.chars().count();
        let plural = if n == 1 { "" } else { "s" };
        Some(format!(
            "is only {n} character{plural} long (minimum {MIN_SECRET_LEN})"
        ))
    } else {
        None
    }
}

/// What every weak-secret warning tells the operator to do.
pub const SECRET_ADVICE: &str = "use a random secret of at least 22 characters (128 bits); BlastRADIUS (CVE-2024-3596) makes weak secrets exploitable";

/// Levenshtein distance (small strings only: keys and section names).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to a misspelt `word`, if it is close enough to be a likely typo
/// (a case difference, or at most 1 edit for short words / 2 edits for longer ones).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = if word.len() <= 4 { 1 } else { 2 };
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" (did you mean X?)"` or nothing.
pub(crate) fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean {c}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1w"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration(" 10 m "), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in [
            "",
            "m",
            "5x",
            "-1",
            "1.5h",
            "5 minutes",
            "99999999999999999999",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(parse_duration("18446744073709551615w"), None, "overflow");
    }

    #[test]
    fn booleans() {
        for t in ["enabled", "Yes", "y", "TRUE", "1", "on"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["disabled", "no", "N", "false", "0", "off"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "maybe", "2", "enabledd"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8388608"), Some(8 << 20));
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("8MiB"), Some(8 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5T"), None);
    }

    #[test]
    fn vlans() {
        assert_eq!(vlan_problem("1"), None);
        assert_eq!(vlan_problem("4094"), None);
        assert_eq!(vlan_problem("guest_vlan"), None);
        assert!(vlan_problem("0").is_some());
        assert!(vlan_problem("4095").is_some());
        assert!(vlan_problem("99999999999999999999").is_some());
        assert!(vlan_problem("guest vlan").is_some());
    }

    #[test]
    fn secrets() {
        assert!(
            secret_weakness("testing123")
                .unwrap()
                .contains("well-known")
        );
        assert!(
            secret_weakness("PacketFence")
                .unwrap()
                .contains("well-known")
        );
        assert!(
            secret_weakness("short-secret")
                .unwrap()
                .contains("12 characters")
        );
        assert!(secret_weakness("ironfence-example-secret-CHANGE-ME").is_some());
        assert_eq!(secret_weakness("k3Jq9vX2pL7wR4tY8zN1bM6c"), None);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("registrationvlan", ["registrationVlan", "isolationVlan"]),
            Some("registrationVlan")
        );
        assert_eq!(
            did_you_mean("radiusSecrt", ["radiusSecret", "description"]),
            Some("radiusSecret")
        );
        assert_eq!(did_you_mean("zzzzzz", ["radiusSecret"]), None);
        assert_eq!(
            suggestion("auht_port", ["auth_port", "acct_port"]),
            " (did you mean auth_port?)"
        );
    }
}

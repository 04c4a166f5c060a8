use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address: the identity of a device (a "node" in PacketFence terms).
///
/// Switches spell MACs many ways in RADIUS (`User-Name`, `Calling-Station-Id`); every layout
/// of [`Mac::parse`] (`aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff`,
/// `aabb-ccdd-eeff`, `aabbcc-ddeeff`, `aabbccddeeff`, …) parses to the same value. The canonical text form (used in the store and logs) is lower-case,
/// colon-separated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a MAC address: {input:?} (expected 12 hex digits, e.g. aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff, aabb-ccdd-eeff, aabbcc-ddeeff)"
)]
pub struct MacParseError {
    pub input: String,
}

impl Mac {
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Parses any common spelling: 12 hex digits (either case) with no separator, or split
    /// into equal groups by ONE separator (`:`, `-` or `.`) used throughout:
    ///
    /// | groups | examples (vendors' defaults) |
    /// |---|---|
    /// | 6 × 2 | `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` (Windows, Cisco WLC), `AA.BB.CC.DD.EE.FF` (D-Link) |
    /// | 3 × 4 | `aabb.ccdd.eeff` (Cisco IOS), `aabb-ccdd-eeff` (Huawei, H3C) |
    /// | 2 × 6 | `aabbcc-ddeeff` (HP/Aruba-OS-Switch, FortiSwitch), `AABBCC.DDEEFF` (D-Link) |
    ///
    /// These are the layouts PacketFence's `clean_mac` accepts in practice. Anything else
    /// (mixed separators, uneven groups, single-digit octets) is refused: it could be a user
    /// name, and no digit must be guessed.
    pub fn parse(input: &str) -> Result<Mac, MacParseError> {
        let err = || MacParseError {
            input: input.chars().take(64).collect(),
        };
        let b = input.trim().as_bytes();
        let sep = b.iter().copied().find(|c| !c.is_ascii_hexdigit());
        let group_len = match sep {
            None => 12,
            Some(c @ (b':' | b'-' | b'.')) => b.iter().position(|&x| x == c).unwrap_or(0),
            Some(_) => return Err(err()),
        };
        if !matches!(group_len, 2 | 4 | 6 | 12) || b.len() != 12 + (12 / group_len - 1) {
            return Err(err());
        }
        let mut digits = [0u8; 12];
        let mut n = 0;
        for (i, &c) in b.iter().enumerate() {
            // Every (group_len + 1)-th byte is the separator, every other one a hex digit.
            if group_len < 12 && i % (group_len + 1) == group_len {
                if Some(c) != sep {
                    return Err(err());
                }
                continue;
            }
            digits[n] = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(err()),
            };
            n += 1;
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = digits[2 * i] << 4 | digits[2 * i + 1];
        }
        Ok(Mac(out))
    }
}

impl FromStr for Mac {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mac::parse(s)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_common_spelling_is_the_same_device() {
        let want = Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        for s in [
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "aabb.ccdd.eeff",
            "aabbccddeeff",
            "AABBCCDDEEFF",
            " aa:bb:cc:dd:ee:ff ",
            // Huawei / H3C default.
            "aabb-ccdd-eeff",
            // HP / Aruba-OS-Switch, FortiSwitch.
            "aabbcc-ddeeff",
            // D-Link.
            "AA.BB.CC.DD.EE.FF",
            "AABBCC.DDEEFF",
            "aabbcc:ddeeff",
        ] {
            assert_eq!(Mac::parse(s), Ok(want), "{s}");
        }
        assert_eq!(want.to_string(), "aa:bb:cc:dd:ee:ff");
    }

    #[test]
    fn rejects_garbage_and_mixed_layouts() {
        for s in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:fg",
            "aa:bb-cc:dd:ee:ff",
            "aabb.ccdd-eeff",
            "aabbccddeeff00",
            "bob",
            "aa:bb:cc:dd:ee:ff:00",
            "aabbc-cddeeff",
            "a:b:c:d:e:f",
            "aab-bcc-dde-eff",
            "aa bb cc dd ee ff",
            "aabbcc-dd:eeff",
            "aa::bb:cc:dd:eeff",
            "aabb.ccdd.eeff.",
            ":aabbccddeeff",
        ] {
            assert!(Mac::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(o in any::<[u8; 6]>()) {
            let m = Mac(o);
            prop_assert_eq!(Mac::parse(&m.to_string()), Ok(m));
            prop_assert_eq!(Mac::parse(&m.to_string().replace(':', "-").to_uppercase()), Ok(m));
            let hex: String = m.to_string().replace(':', "");
            for (len, sep) in [(4, "."), (4, "-"), (6, "-"), (6, "."), (2, ".")] {
                let groups: Vec<&str> = (0..12 / len).map(|i| &hex[i * len..(i + 1) * len]).collect();
                prop_assert_eq!(Mac::parse(&groups.join(sep)), Ok(m));
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = Mac::parse(&s);
        }
    }
}

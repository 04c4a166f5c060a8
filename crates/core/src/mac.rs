use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address: the identity of a device (a "node" in PacketFence terms).
///
/// Switches spell MACs many ways in RADIUS (`User-Name`, `Calling-Station-Id`); all of
/// `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff` and `aabbccddeeff` parse to the
/// same value. The canonical text form (used in the store and logs) is lower-case,
/// colon-separated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a MAC address: {input:?} (expected 12 hex digits, e.g. aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff)"
)]
pub struct MacParseError {
    pub input: String,
}

impl Mac {
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Parses any common spelling. Separators must be used consistently in one of the
    /// accepted layouts: 6 groups of 2 (`:` or `-`), 3 groups of 4 (`.`), or none.
    pub fn parse(input: &str) -> Result<Mac, MacParseError> {
        let err = || MacParseError {
            input: input.chars().take(64).collect(),
        };
        let s = input.trim();
        let b = s.as_bytes();
        let mut digits = [0u8; 12];
        let mut n = 0;
        let layout_ok = match b.len() {
            12 => true,
            17 => {
                let sep = b[2];
                (sep == b':' || sep == b'-') && (0..5).all(|i| b[2 + i * 3] == sep)
            }
            14 => b[4] == b'.' && b[9] == b'.',
            _ => false,
        };
        if !layout_ok {
            return Err(err());
        }
        for &c in b {
            if matches!(c, b':' | b'-' | b'.') {
                continue;
            }
            if n == 12 {
                return Err(err());
            }
            digits[n] = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(err()),
            };
            n += 1;
        }
        if n != 12 {
            return Err(err());
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
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = Mac::parse(&s);
        }
    }
}

//! Keying material a successful method exports (RFC 5247): the MSK goes to the switch as
//! MS-MPPE-Recv-Key (first 32 octets) and MS-MPPE-Send-Key (next 32), RFC 2548 / RFC 3079.

/// Master Session Key and Extended MSK, 64 octets each. Debug never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Msk {
    pub msk: [u8; 64],
    pub emsk: [u8; 64],
}

impl Msk {
    /// MS-MPPE-Recv-Key: MSK[0..32] (RFC 5216 §2.3).
    pub fn mppe_recv(&self) -> &[u8] {
        &self.msk[..32]
    }

    /// MS-MPPE-Send-Key: MSK[32..64].
    pub fn mppe_send(&self) -> &[u8] {
        &self.msk[32..]
    }
}

impl std::fmt::Debug for Msk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msk(<redacted>)")
    }
}

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

impl Msk {
    /// MSK = first 64 octets, EMSK = next 64 (RFC 5216 §2.3, RFC 9190 §2.3).
    pub fn from_key_material(km: &[u8; 128]) -> Msk {
        let mut msk = [0u8; 64];
        let mut emsk = [0u8; 64];
        msk.copy_from_slice(&km[..64]);
        emsk.copy_from_slice(&km[64..]);
        Msk { msk, emsk }
    }
}

/// TLS 1.2 exporter label for the method's key material (RFC 5216 §2.3; PEAPv0 uses the
/// EAP-TLS label; RFC 5281 §8 for TTLS).
pub fn tls12_label(method: crate::packet::EapType) -> &'static [u8] {
    match method {
        crate::packet::EapType::Ttls => b"ttls keying material",
        _ => b"client EAP encryption",
    }
}

/// TLS 1.3 exporter label (RFC 9190 §2.3, RFC 9427 §2.1); the context is the Type octet.
pub const TLS13_LABEL: &[u8] = b"EXPORTER_EAP_TLS_Key_Material";

//! The inner phase of the tunnelled methods (PEAPv0, EAP-TTLS): what flows between the
//! conversation (which owns the TLS tunnel) and the inner method (which owns the
//! MSCHAPv2 / PAP exchange). Plaintext in, plaintext out; credentials come from the shell.
//! (issue 12: the inner-method helper completes the state machines in `peap` and `ttls`.)

/// What the inner method wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InnerStep {
    /// Write this plaintext into the tunnel (the next Access-Challenge).
    Send(Vec<u8>),
    /// The shell must look up `user`'s NT hash (MSCHAPv2), then `on_verdict`.
    NeedNtHash { user: String },
    /// The shell must check `user`'s `password` (TTLS/PAP), then `on_verdict`.
    NeedPassword { user: String, password: String },
    /// Authenticated: send EAP-Success now (PEAP and TTLS have already delivered their last
    /// tunnelled message and had it acknowledged). `msk`: PEAP with crypto-binding derives
    /// its own MSK; `None`: use the TLS-exported one.
    Success {
        user: String,
        method: &'static str,
        msk: Option<crate::keys::Msk>,
    },
    /// Refused (wrong password, unknown user, method refused): send EAP-Failure now (PEAP has
    /// already exchanged its failure Result TLV).
    Failure {
        reason: &'static str,
        user: Option<String>,
    },
    /// The peer sent something malformed or out of order. The inner state did not change;
    /// the conversation decides (discard the round or fail).
    Invalid(&'static str),
}

/// The shell's answer to `NeedNtHash` / `NeedPassword`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InnerVerdict {
    NtHash(Option<[u8; 16]>),
    Password(bool),
}

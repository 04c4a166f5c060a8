//! Packet codes (RFC 2865 §3, RFC 2866 §3, RFC 5997, RFC 5176 §2.1).

use std::fmt;

/// The Code field of a RADIUS packet.
///
/// [`Code::from_u8`] never produces `Other(n)` for a code that has a named variant; build codes
/// with `from_u8` if you need `==` to be meaningful for `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1 (RFC 2865)
    AccessRequest,
    /// 2 (RFC 2865)
    AccessAccept,
    /// 3 (RFC 2865)
    AccessReject,
    /// 4 (RFC 2866)
    AccountingRequest,
    /// 5 (RFC 2866)
    AccountingResponse,
    /// 11 (RFC 2865)
    AccessChallenge,
    /// 12 (RFC 5997)
    StatusServer,
    /// 13 (RFC 2865, reserved / unused)
    StatusClient,
    /// 40 (RFC 5176)
    DisconnectRequest,
    /// 41 (RFC 5176)
    DisconnectAck,
    /// 42 (RFC 5176)
    DisconnectNak,
    /// 43 (RFC 5176)
    CoaRequest,
    /// 44 (RFC 5176)
    CoaAck,
    /// 45 (RFC 5176)
    CoaNak,
    /// Any other code. RFC 2865 §3: packets with an unknown code are silently discarded;
    /// that decision belongs to the server.
    Other(u8),
}

impl Code {
    /// Code from its wire value.
    pub const fn from_u8(v: u8) -> Code {
        match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            other => Code::Other(other),
        }
    }

    /// Wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::StatusClient => 13,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Other(v) => v,
        }
    }

    /// Name as used by FreeRADIUS and the RFCs (`"Access-Request"`, `"CoA-ACK"`, …);
    /// `"Unknown"` for [`Code::Other`]. Usable as a metrics label.
    pub const fn name(self) -> &'static str {
        match self {
            Code::AccessRequest => "Access-Request",
            Code::AccessAccept => "Access-Accept",
            Code::AccessReject => "Access-Reject",
            Code::AccountingRequest => "Accounting-Request",
            Code::AccountingResponse => "Accounting-Response",
            Code::AccessChallenge => "Access-Challenge",
            Code::StatusServer => "Status-Server",
            Code::StatusClient => "Status-Client",
            Code::DisconnectRequest => "Disconnect-Request",
            Code::DisconnectAck => "Disconnect-ACK",
            Code::DisconnectNak => "Disconnect-NAK",
            Code::CoaRequest => "CoA-Request",
            Code::CoaAck => "CoA-ACK",
            Code::CoaNak => "CoA-NAK",
            Code::Other(_) => "Unknown",
        }
    }

    /// True for codes a client sends and a server answers.
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            Code::AccessRequest
                | Code::AccountingRequest
                | Code::StatusServer
                | Code::DisconnectRequest
                | Code::CoaRequest
        )
    }

    /// True for the replies to an Access-Request, which carry Message-Authenticator first
    /// (BlastRADIUS, CVE-2024-3596).
    pub const fn is_access_reply(self) -> bool {
        matches!(
            self,
            Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Other(v) => write!(f, "Code-{v}"),
            c => f.write_str(c.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_codes() {
        for v in 0..=255u8 {
            let c = Code::from_u8(v);
            assert_eq!(c.as_u8(), v);
            if let Code::Other(o) = c {
                assert_eq!(o, v);
                assert_eq!(c.name(), "Unknown");
                assert_eq!(c.to_string(), format!("Code-{v}"));
            } else {
                assert_ne!(c.name(), "Unknown");
                assert_eq!(c.to_string(), c.name());
            }
        }
        assert_eq!(Code::from_u8(43), Code::CoaRequest);
        assert_eq!(Code::CoaNak.name(), "CoA-NAK");
        assert!(Code::StatusServer.is_request());
        assert!(!Code::AccessAccept.is_request());
        assert!(Code::AccessChallenge.is_access_reply());
        assert!(!Code::AccountingResponse.is_access_reply());
    }
}

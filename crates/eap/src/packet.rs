//! EAP packets (RFC 3748 §4): Code, Identifier, Length, then for Request/Response a Type and
//! its data. Decoding borrows, never panics, and refuses a Length that disagrees with the
//! bytes (§4: octets beyond Length are padding and ignored; fewer is an error).

/// RFC 3748 §4 codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Request,
    Response,
    Success,
    Failure,
    /// RFC 6696 Initiate/Finish and anything else: not ours, dropped.
    Other(u8),
}

impl Code {
    pub fn from_u8(v: u8) -> Code {
        match v {
            1 => Code::Request,
            2 => Code::Response,
            3 => Code::Success,
            4 => Code::Failure,
            v => Code::Other(v),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Code::Request => 1,
            Code::Response => 2,
            Code::Success => 3,
            Code::Failure => 4,
            Code::Other(v) => v,
        }
    }
}

/// EAP method types (IANA "Method Types"), the ones this server speaks or names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EapType {
    Identity,
    Notification,
    Nak,
    Md5Challenge,
    Tls,
    Ttls,
    Peap,
    MsChapV2,
    /// PEAP's Extensions method (type 33): Result and Crypto-Binding TLVs.
    Extensions,
    /// 254: expanded types — never negotiated here.
    Expanded,
    Other(u8),
}

impl EapType {
    pub fn from_u8(v: u8) -> EapType {
        match v {
            1 => EapType::Identity,
            2 => EapType::Notification,
            3 => EapType::Nak,
            4 => EapType::Md5Challenge,
            13 => EapType::Tls,
            21 => EapType::Ttls,
            25 => EapType::Peap,
            26 => EapType::MsChapV2,
            33 => EapType::Extensions,
            254 => EapType::Expanded,
            v => EapType::Other(v),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            EapType::Identity => 1,
            EapType::Notification => 2,
            EapType::Nak => 3,
            EapType::Md5Challenge => 4,
            EapType::Tls => 13,
            EapType::Ttls => 21,
            EapType::Peap => 25,
            EapType::MsChapV2 => 26,
            EapType::Extensions => 33,
            EapType::Expanded => 254,
            EapType::Other(v) => v,
        }
    }

    /// The name used in configuration, logs and the audit record.
    pub fn label(self) -> &'static str {
        match self {
            EapType::Identity => "identity",
            EapType::Notification => "notification",
            EapType::Nak => "nak",
            EapType::Md5Challenge => "md5",
            EapType::Tls => "tls",
            EapType::Ttls => "ttls",
            EapType::Peap => "peap",
            EapType::MsChapV2 => "mschapv2",
            EapType::Extensions => "extensions",
            EapType::Expanded => "expanded",
            EapType::Other(_) => "other",
        }
    }
}

/// Why an EAP packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("EAP packet shorter than its 4-octet header")]
    TooShort,
    #[error("EAP Length field disagrees with the packet")]
    BadLength,
    #[error("EAP Request/Response without a Type octet")]
    NoType,
}

impl DecodeError {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            DecodeError::TooShort => "eap_too_short",
            DecodeError::BadLength => "eap_bad_length",
            DecodeError::NoType => "eap_no_type",
        }
    }
}

/// A decoded EAP packet, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EapPacket<'a> {
    pub code: Code,
    pub identifier: u8,
    /// Request/Response only.
    pub typ: Option<EapType>,
    /// What follows the Type octet (Request/Response), else empty.
    pub data: &'a [u8],
}

impl<'a> EapPacket<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<EapPacket<'a>, DecodeError> {
        if bytes.len() < 4 {
            return Err(DecodeError::TooShort);
        }
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if len < 4 || len > bytes.len() {
            return Err(DecodeError::BadLength);
        }
        let body = &bytes[4..len];
        let code = Code::from_u8(bytes[0]);
        let (typ, data) = match code {
            Code::Request | Code::Response => {
                let (&t, rest) = body.split_first().ok_or(DecodeError::NoType)?;
                (Some(EapType::from_u8(t)), rest)
            }
            _ => (None, body),
        };
        Ok(EapPacket {
            code,
            identifier: bytes[1],
            typ,
            data,
        })
    }
}

/// Encodes a Request or Response of `typ` carrying `data`.
pub fn encode(code: Code, identifier: u8, typ: EapType, data: &[u8]) -> Vec<u8> {
    let len = 5 + data.len();
    debug_assert!(len <= u16::MAX as usize, "EAP packet too long");
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[code.as_u8(), identifier]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(typ.as_u8());
    out.extend_from_slice(data);
    out
}

/// Encodes EAP-Success or EAP-Failure (4 octets).
pub fn encode_result(success: bool, identifier: u8) -> Vec<u8> {
    let code = if success {
        Code::Success
    } else {
        Code::Failure
    };
    vec![code.as_u8(), identifier, 0, 4]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_response_round_trips() {
        let bytes = encode(Code::Response, 7, EapType::Identity, b"alice");
        let p = EapPacket::decode(&bytes).unwrap();
        assert_eq!(p.code, Code::Response);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.typ, Some(EapType::Identity));
        assert_eq!(p.data, b"alice");
    }

    #[test]
    fn padding_beyond_length_is_ignored_and_short_length_refused() {
        let mut bytes = encode(Code::Response, 1, EapType::Nak, &[13]);
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(EapPacket::decode(&bytes).unwrap().data, &[13]);
        assert_eq!(
            EapPacket::decode(&[2, 1, 0, 9, 1]),
            Err(DecodeError::BadLength)
        );
        assert_eq!(
            EapPacket::decode(&[2, 1, 0, 3]),
            Err(DecodeError::BadLength)
        );
        assert_eq!(EapPacket::decode(&[2, 1, 0, 4]), Err(DecodeError::NoType));
        assert_eq!(EapPacket::decode(&[3, 1]), Err(DecodeError::TooShort));
        let success = encode_result(true, 9);
        let s = EapPacket::decode(&success).unwrap();
        assert_eq!((s.code, s.typ, s.data), (Code::Success, None, &[][..]));
    }
}

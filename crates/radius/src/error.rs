//! Error types. Every error has a `reason()`: a short, stable, snake_case label meant to be
//! used as a Prometheus label value (for example `radius_dropped_total{reason="bad_length"}`).

use crate::Code;

/// A datagram could not be decoded as a RADIUS packet (RFC 2865 §3, §5), or a hidden
/// attribute value could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 20 octets: not even a header.
    #[error("datagram of {len} octets is shorter than the 20-octet RADIUS header")]
    TooShort {
        /// Octets received.
        len: usize,
    },
    /// The Length field is outside 20..=4096 (RFC 2865 §3).
    #[error("length field {length} is outside 20..=4096")]
    BadLength {
        /// Value of the Length field.
        length: usize,
    },
    /// The Length field is larger than the datagram (RFC 2865 §3: silently discard).
    #[error("length field {length} exceeds the {available} octets received")]
    Truncated {
        /// Value of the Length field.
        length: usize,
        /// Octets received.
        available: usize,
    },
    /// An attribute has a length below 2 or runs past the end of the packet.
    #[error("malformed attribute (type {typ}) at offset {offset}")]
    MalformedAttribute {
        /// Offset of the attribute header inside the packet.
        offset: usize,
        /// Attribute type (0 if the type octet itself is the last octet).
        typ: u8,
    },
    /// A fixed-size attribute (integer, ipaddr, date, Message-Authenticator, …) has the wrong size.
    #[error("attribute {typ} has a value of {len} octets, which its type does not allow")]
    BadAttributeLength {
        /// Attribute type.
        typ: u8,
        /// Length of the value (without the 2-octet header).
        len: usize,
    },
    /// More than one Message-Authenticator (RFC 3579 §3.2 allows at most one).
    #[error("more than one Message-Authenticator attribute")]
    DuplicateMessageAuthenticator,
    /// A hidden value (User-Password, Tunnel-Password, MPPE key) has an impossible length or
    /// decrypts to an impossible plaintext (usually: wrong shared secret).
    #[error("hidden attribute value cannot be decrypted (bad length or wrong secret)")]
    BadHiddenValue,
}

impl DecodeError {
    /// Short snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort { .. } | Self::BadLength { .. } => "bad_length",
            Self::Truncated { .. } => "truncated",
            Self::MalformedAttribute { .. } => "malformed_attribute",
            Self::BadAttributeLength { .. } => "bad_attribute_length",
            Self::DuplicateMessageAuthenticator => "duplicate_message_authenticator",
            Self::BadHiddenValue => "bad_hidden_value",
        }
    }
}

/// An incoming request failed authentication with the client's shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Message-Authenticator present but wrong (RFC 3579 §3.2: silently discard).
    #[error("Message-Authenticator does not match")]
    BadMessageAuthenticator,
    /// Accounting/CoA/Disconnect Request Authenticator wrong (RFC 2866 §3, RFC 5176 §2.3).
    #[error("Request Authenticator does not match")]
    BadRequestAuthenticator,
    /// The packet is not a request a server verifies (e.g. an Access-Accept sent to us).
    #[error("{0} is not a request this function verifies")]
    UnexpectedCode(Code),
}

impl AuthError {
    /// Short snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadMessageAuthenticator => "bad_message_authenticator",
            Self::BadRequestAuthenticator => "bad_request_authenticator",
            Self::UnexpectedCode(_) => "unexpected_code",
        }
    }
}

/// A reply received by a client failed validation against the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The reply is not a well-formed packet.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The reply's Identifier does not match the request's.
    #[error("identifier {got} does not match request identifier {expected}")]
    IdentifierMismatch {
        /// Identifier of the request.
        expected: u8,
        /// Identifier of the reply.
        got: u8,
    },
    /// Response Authenticator wrong (RFC 2865 §3).
    #[error("Response Authenticator does not match")]
    BadResponseAuthenticator,
    /// Message-Authenticator present but wrong (RFC 3579 §3.2).
    #[error("Message-Authenticator does not match")]
    BadMessageAuthenticator,
    /// The packet is a request code, not a reply.
    #[error("{0} is not a reply")]
    UnexpectedCode(Code),
}

impl ResponseError {
    /// Short snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.reason(),
            Self::IdentifierMismatch { .. } => "identifier_mismatch",
            Self::BadResponseAuthenticator => "bad_response_authenticator",
            Self::BadMessageAuthenticator => "bad_message_authenticator",
            Self::UnexpectedCode(_) => "unexpected_code",
        }
    }
}

/// An attribute could not be added to a [`crate::PacketBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Attribute values are at most 253 octets (RFC 2865 §5).
    #[error("attribute value of {len} octets exceeds 253")]
    ValueTooLong {
        /// Length of the value.
        len: usize,
    },
    /// The packet would exceed 4096 octets (RFC 2865 §3), counting the 18 octets reserved
    /// for a Message-Authenticator.
    #[error("packet would exceed 4096 octets")]
    PacketTooLong,
    /// RFC 2868 tags are 0x00..=0x1F.
    #[error("tunnel tag {0:#04x} is outside 0x00..=0x1F")]
    InvalidTag(u8),
    /// A tagged integer only has 24 bits for its value (RFC 2868 §3.1).
    #[error("value {0} does not fit in the 24 bits of a tagged integer")]
    ValueOutOfRange(u32),
    /// User-Password is at most 128 octets (RFC 2865 §5.2), Tunnel-Password / MPPE keys at most 239.
    #[error("password or key of {len} octets is too long")]
    PasswordTooLong {
        /// Length of the password.
        len: usize,
    },
    /// Message-Authenticator is computed by the encoder and cannot be added by hand.
    #[error("attribute {0} is managed by the encoder")]
    ReservedAttribute(u8),
}

impl EncodeError {
    /// Short snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ValueTooLong { .. } => "value_too_long",
            Self::PacketTooLong => "packet_too_long",
            Self::InvalidTag(_) => "invalid_tag",
            Self::ValueOutOfRange(_) => "value_out_of_range",
            Self::PasswordTooLong { .. } => "password_too_long",
            Self::ReservedAttribute(_) => "reserved_attribute",
        }
    }
}

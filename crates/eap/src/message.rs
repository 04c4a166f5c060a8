//! EAP over RADIUS (RFC 3579 §3.1): an EAP packet travels in one or more EAP-Message
//! attributes (at most 253 octets each), concatenated in order.

/// The largest EAP packet (its Length field is 16 bits).
pub const MAX_EAP: usize = u16::MAX as usize;
/// Value octets per EAP-Message attribute (RFC 2865 §5: 255 minus type and length).
pub const CHUNK: usize = 253;

/// Why the EAP-Message attributes do not form one EAP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("no EAP-Message octets")]
    Empty,
    #[error("EAP-Message attributes longer than 64 KiB")]
    TooLong,
    #[error("EAP Length disagrees with the EAP-Message attributes")]
    LengthMismatch,
}

impl JoinError {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            JoinError::Empty => "eap_empty",
            JoinError::TooLong => "eap_too_long",
            JoinError::LengthMismatch => "eap_bad_length",
        }
    }
}

/// Concatenates the EAP-Message attribute values. Bounded by [`MAX_EAP`] (stops reading
/// as soon as the bound is passed); the EAP Length must equal the joined length
/// (RFC 3579 §3.1: the attributes carry exactly one EAP packet).
pub fn join<'a>(attrs: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, JoinError> {
    let mut out = Vec::new();
    for a in attrs {
        if out.len() + a.len() > MAX_EAP {
            return Err(JoinError::TooLong);
        }
        out.extend_from_slice(a);
    }
    if out.is_empty() {
        return Err(JoinError::Empty);
    }
    if out.len() < 4 || u16::from_be_bytes([out[2], out[3]]) as usize != out.len() {
        return Err(JoinError::LengthMismatch);
    }
    Ok(out)
}

/// Splits an EAP packet into EAP-Message attribute values of at most 253 octets.
pub fn split(eap: &[u8]) -> impl Iterator<Item = &[u8]> {
    eap.chunks(CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_join_round_trips_and_bounds_hold() {
        let mut eap = vec![1u8, 9, 0, 0];
        eap.resize(1000, 0xab);
        eap[2..4].copy_from_slice(&1000u16.to_be_bytes());
        let parts: Vec<&[u8]> = split(&eap).collect();
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() <= CHUNK));
        assert_eq!(join(parts.iter().copied()).unwrap(), eap);
        // Length says 1000 but only 3 attributes: refused.
        assert_eq!(
            join(parts[..3].iter().copied()),
            Err(JoinError::LengthMismatch)
        );
        assert_eq!(join(std::iter::empty()), Err(JoinError::Empty));
        let big = vec![0u8; 253];
        assert_eq!(
            join(std::iter::repeat_n(&big[..], 300)),
            Err(JoinError::TooLong)
        );
    }
}

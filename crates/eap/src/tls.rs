//! A rustls `ServerConnection` driven in memory: TLS records in from the reassembled EAP
//! fragments, the next flight out into a `Vec` (no sockets, no clock of ours).
//!
//! On a handshake error rustls queues an alert; [`TlsFailure::alert`] carries it so the
//! conversation sends it to the peer before EAP-Failure (RFC 5216 §2.1.3).

use crate::keys::{Msk, TLS13_LABEL, tls12_label};
use crate::packet::EapType;
use rustls::{CertificateError, Error, HandshakeKind, ProtocolVersion, ServerConnection};
use std::io::{Cursor, Read, Write};
use std::sync::Arc;

/// A handshake that failed: the reason for the audit log and the alert to deliver.
#[derive(Debug)]
pub struct TlsFailure {
    pub reason: &'static str,
    pub alert: Vec<u8>,
}

/// The failure label for a rustls error.
pub fn failure_reason(e: &Error) -> &'static str {
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate_expired"
            }
            CertificateError::Revoked => "certificate_revoked",
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "certificate_untrusted"
            }
            _ => "certificate_invalid",
        },
        Error::NoCertificatesPresented => "no_certificate",
        _ => "tls_handshake_failed",
    }
}

/// One TLS session of one conversation.
pub struct TlsEngine {
    conn: ServerConnection,
    /// Application data received and decrypted, not yet taken.
    plain: Vec<u8>,
}

/// Tunnelled plaintext buffered at most (a hostile peer cannot make us hold more).
const MAX_PLAINTEXT: usize = 64 * 1024;

impl std::fmt::Debug for TlsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsEngine")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsEngine {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<TlsEngine, Error> {
        Ok(TlsEngine {
            conn: ServerConnection::new(config)?,
            plain: Vec::new(),
        })
    }

    /// Feeds one reassembled TLS message (any number of records).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), TlsFailure> {
        while !data.is_empty() {
            let mut cur = Cursor::new(data);
            let n = self.conn.read_tls(&mut cur).map_err(|_| TlsFailure {
                reason: "tls_handshake_failed",
                alert: Vec::new(),
            })?;
            data = &data[n..];
            if let Err(e) = self.conn.process_new_packets() {
                return Err(TlsFailure {
                    reason: failure_reason(&e),
                    alert: self.take_output(),
                });
            }
            self.drain_plaintext()?;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Everything rustls wants to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    fn drain_plaintext(&mut self) -> Result<(), TlsFailure> {
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    if self.plain.len() + n > MAX_PLAINTEXT {
                        return Err(TlsFailure {
                            reason: "tls_too_much_data",
                            alert: Vec::new(),
                        });
                    }
                    self.plain.extend_from_slice(&buf[..n]);
                }
            }
        }
    }

    /// Whether the peer sent application data not taken yet.
    pub fn has_plaintext(&self) -> bool {
        !self.plain.is_empty()
    }

    /// Decrypted application data received so far, at most `max` octets (the rest stays).
    pub fn take_plaintext(&mut self, max: usize) -> Vec<u8> {
        if self.plain.len() <= max {
            return std::mem::take(&mut self.plain);
        }
        let rest = self.plain.split_off(max);
        std::mem::replace(&mut self.plain, rest)
    }

    /// Queues application data (after the handshake).
    pub fn write_plaintext(&mut self, data: &[u8]) {
        let _ = self.conn.writer().write_all(data);
    }

    /// TLS exporter (RFC 5705 / RFC 8446 §7.5).
    pub fn export(&self, label: &[u8], context: Option<&[u8]>, len: usize) -> Option<Vec<u8>> {
        self.conn
            .export_keying_material(vec![0u8; len], label, context)
            .ok()
    }

    pub fn is_tls13(&self) -> bool {
        self.conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
    }

    /// MSK ‖ EMSK for `method`: TLS 1.2 with the method's PRF label (RFC 5216 §2.3, RFC
    /// 5281 §8), TLS 1.3 with RFC 9190 §2.3 / RFC 9427 §2.1 (context = the Type octet).
    pub fn msk(&self, method: EapType) -> Option<Msk> {
        let km = if self.is_tls13() {
            self.export(TLS13_LABEL, Some(&[method.as_u8()]), 128)?
        } else {
            self.export(tls12_label(method), None, 128)?
        };
        let km: [u8; 128] = km.try_into().ok()?;
        Some(Msk::from_key_material(&km))
    }

    /// TTLS inner MSCHAPv2 challenge (16) and ident (1): "ttls challenge" (RFC 5281 §11.1).
    pub fn ttls_challenge(&self) -> Option<[u8; 17]> {
        self.export(b"ttls challenge", None, 17)?.try_into().ok()
    }

    /// `TLSv1_2` / `TLSv1_3`.
    pub fn version_label(&self) -> Option<&'static str> {
        match self.conn.protocol_version()? {
            ProtocolVersion::TLSv1_2 => Some("TLSv1_2"),
            ProtocolVersion::TLSv1_3 => Some("TLSv1_3"),
            _ => None,
        }
    }

    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// The client's chain, end-entity first (DER).
    pub fn peer_certificates(&self) -> Vec<Vec<u8>> {
        self.conn
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
            .unwrap_or_default()
    }
}

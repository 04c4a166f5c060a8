//! What the captive portal stores: local users (PacketFence's `password` table: pid,
//! password hash, valid_from, expiration) and the IP → MAC lookup through `ip4log` that
//! tells the portal which device is asking. Migration v7.

use crate::{Store, StoreError};
use ironfence_core::{Mac, UnixTime};
use std::fmt;
use std::net::Ipv4Addr;

/// One local user. `password` is a hash (argon2id PHC string or an imported bcrypt hash),
/// never a clear-text password.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub pid: String,
    pub password: String,
    /// UNIX seconds; `None`: valid at once.
    pub valid_from: Option<UnixTime>,
    /// UNIX seconds; `None`: never expires.
    pub expiration: Option<UnixTime>,
    /// MD4(UTF-16LE(password)) for PEAP / EAP-MSCHAPv2; `None` when the clear password was
    /// never known here (an imported bcrypt hash): such a user cannot use MSCHAPv2.
    pub nt_hash: Option<[u8; 16]>,
}

/// `nt_hash` as stored: 32 hex digits.
pub(crate) fn nt_hash_hex(h: &Option<[u8; 16]>) -> Option<String> {
    h.map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
}

/// A stored `nt_hash`; anything else than 32 hex digits reads as none.
pub(crate) fn nt_hash_parse(s: Option<String>) -> Option<[u8; 16]> {
    let s = s?;
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl fmt::Debug for LocalUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUser")
            .field("pid", &self.pid)
            .field("password", &"<hash>")
            .field("valid_from", &self.valid_from)
            .field("expiration", &self.expiration)
            .field("nt_hash", &self.nt_hash.map(|_| "<redacted>"))
            .finish()
    }
}

impl LocalUser {
    /// Whether the account may log in at `now`.
    pub fn valid_at(&self, now: UnixTime) -> bool {
        self.valid_from.is_none_or(|t| t <= now) && self.expiration.is_none_or(|t| now < t)
    }
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.backend {
            crate::Backend::Sqlite(s) => s.$method($($arg),*),
            crate::Backend::MySql(m) => m.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Creates or replaces a local user (and its person row).
    pub async fn upsert_local_user(
        &self,
        user: &LocalUser,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        dispatch!(self.upsert_local_user(user, now))
    }

    pub async fn get_local_user(&self, pid: &str) -> Result<Option<LocalUser>, StoreError> {
        dispatch!(self.get_local_user(pid))
    }

    /// The device that holds `ip` at `now` (an ip4log row without end, or ending later).
    pub async fn mac_for_ip(&self, ip: Ipv4Addr, now: UnixTime) -> Result<Option<Mac>, StoreError> {
        dispatch!(self.mac_for_ip(ip, now))
    }
}

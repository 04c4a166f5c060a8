//! DHCP leases of the registration/isolation networks (`dhcp_lease`, migration 6), shared by
//! every server of a cluster.
//!
//! ```text
//!  dhcp_lease  PRIMARY KEY (network, ip)   one row per address ever handed out
//!              UNIQUE (network, mac)       one address per client and network
//!              state offered|bound|released|declined, expires_at (UNIX s)
//! ```
//!
//! **Allocation is one candidate row per transaction.** [`Store::dhcp_claim`] reads the row
//! of one address and the client's own row (locking them), decides with [`decide`] whether
//! the client may take the address, and writes it — conditionally on what it read (an INSERT
//! where there was no row, an UPDATE or DELETE of exactly the row read) — plus, for a bound
//! lease, the IP log. An offer never moves a client off a live offer or lease: whichever
//! server committed first decides the client's address, and every later answer repeats it. Two servers claiming the same address collide on the
//! primary key; two servers claiming for the same client on the unique key. Either way the
//! loser's transaction fails as a whole — a duplicate key (1062) on one MariaDB, a Galera
//! certification failure (1213) across the cluster, SQLite never (one writer) — and the claim
//! reports [`ClaimOutcome::Conflict`]; the caller re-reads the client's lease (the winner may
//! have been another server answering the same client) or tries its next candidate. There is
//! no counter or pool row every allocation touches, so concurrent allocations of different
//! clients on different servers commit in parallel.
//!
//! A bound claim also records the address in `ip4log` (same rules as accounting's
//! Framed-IP-Address: the address now belongs to this MAC, the MAC's other open addresses are
//! closed), which [`Store::mac_for_ip`] reads (the portal: "which device is asking?").

use crate::{Store, StoreError};
use ironfence_core::{Mac, UnixTime};
use std::net::Ipv4Addr;

/// State of a lease row (see `ironfence_dhcp::LeaseState`, of which this is the stored form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhcpLeaseState {
    Offered,
    Bound,
    Released,
    Declined,
}

impl DhcpLeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            DhcpLeaseState::Offered => "offered",
            DhcpLeaseState::Bound => "bound",
            DhcpLeaseState::Released => "released",
            DhcpLeaseState::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Result<DhcpLeaseState, StoreError> {
        Ok(match s {
            "offered" => DhcpLeaseState::Offered,
            "bound" => DhcpLeaseState::Bound,
            "released" => DhcpLeaseState::Released,
            "declined" => DhcpLeaseState::Declined,
            other => {
                return Err(StoreError::other(format!(
                    "unreadable DHCP lease state {other:?} in the database"
                )));
            }
        })
    }
}

/// One row of `dhcp_lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    pub network: String,
    pub ip: Ipv4Addr,
    /// `None` for a declined address.
    pub mac: Option<Mac>,
    pub state: DhcpLeaseState,
    pub expires_at: UnixTime,
    pub updated_at: UnixTime,
    /// Option 12 of the request that wrote the row (for operators; at most 255 octets).
    pub hostname: Option<String>,
}

/// A request to take one address for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    pub network: &'a str,
    pub ip: Ipv4Addr,
    pub mac: Mac,
    /// `Offered` (held until `expires_at`) or `Bound`.
    pub state: DhcpLeaseState,
    pub expires_at: UnixTime,
    pub now: UnixTime,
    /// Seconds an ended bound lease stays reserved for its holder.
    pub bound_grace: i64,
    pub hostname: Option<&'a str>,
}

/// What a claim did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The client holds the address (the row as it is now).
    Claimed(DhcpLease),
    /// Another client holds it (or it is declined): try another address.
    Taken,
    /// A concurrent transaction won (duplicate key / write conflict): re-read the client's
    /// lease, then try another address.
    Conflict,
}

/// The decision of a claim over the address's current row and the client's current row
/// (pure; both backends use it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write the claim (moving the client off its other row, if any).
    Write,
    /// Answer with this row of the client's, writing nothing: an offer never displaces the
    /// client's live offer or lease elsewhere (a late or second server answers what the first
    /// one did), nor shortens its bound lease.
    Keep(DhcpLease),
    Taken,
}

/// Whether a row still reserves its address for its client at `now`.
pub fn live(row: &DhcpLease, now: UnixTime, bound_grace: i64) -> bool {
    match row.state {
        DhcpLeaseState::Offered => row.expires_at > now,
        DhcpLeaseState::Bound => row.expires_at + bound_grace > now,
        DhcpLeaseState::Released | DhcpLeaseState::Declined => false,
    }
}

/// Whether `c` may take the address whose row is `at_ip`, the client's own row being `mine`.
pub fn decide(at_ip: Option<&DhcpLease>, mine: Option<&DhcpLease>, c: &Claim<'_>) -> Decision {
    if c.state == DhcpLeaseState::Offered
        && let Some(m) = mine
        && live(m, c.now, c.bound_grace)
        && (m.ip != c.ip || m.state == DhcpLeaseState::Bound)
    {
        return Decision::Keep(m.clone());
    }
    let Some(row) = at_ip else {
        return Decision::Write;
    };
    if row.mac == Some(c.mac) {
        return Decision::Write;
    }
    let grace = if row.state == DhcpLeaseState::Bound {
        c.bound_grace
    } else {
        0
    };
    if row.expires_at + grace <= c.now {
        Decision::Write
    } else {
        Decision::Taken
    }
}

/// The row a claim writes.
pub(crate) fn claimed_row(c: &Claim<'_>) -> DhcpLease {
    DhcpLease {
        network: c.network.to_string(),
        ip: c.ip,
        mac: Some(c.mac),
        state: c.state,
        expires_at: c.expires_at,
        updated_at: c.now,
        hostname: c.hostname.map(|h| h.chars().take(255).collect()),
    }
}

pub(crate) fn parse_ip(s: &str) -> Result<Ipv4Addr, StoreError> {
    s.parse().map_err(|e| {
        StoreError::other(format!(
            "unreadable IPv4 address {s:?} in the database: {e}"
        ))
    })
}

pub(crate) fn parse_mac(s: Option<String>) -> Result<Option<Mac>, StoreError> {
    s.map(|m| {
        Mac::parse(&m)
            .map_err(|e| StoreError::other(format!("unreadable MAC in the database: {e}")))
    })
    .transpose()
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
    /// Takes `c.ip` for `c.mac` if nobody else holds it, in one transaction (see the module
    /// docs); a bound claim updates the IP log in the same transaction. Read-only and
    /// unavailable databases are errors (the caller answers from what it read, or not at all).
    pub async fn dhcp_claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        dispatch!(self.dhcp_claim(c))
    }

    /// The client's lease on `network`, if any. `causal`: on Galera, wait until every
    /// transaction committed anywhere before the query is visible (after a conflict, to see the
    /// winner's row).
    pub async fn dhcp_lease_by_mac(
        &self,
        network: &str,
        mac: Mac,
        causal: bool,
    ) -> Result<Option<DhcpLease>, StoreError> {
        dispatch!(self.dhcp_lease_by_mac(network, mac, causal))
    }

    /// Marks the client's lease of `ip` released (free for others at once, still the client's
    /// if it comes back) and closes the address in the IP log. Returns whether it was the
    /// client's.
    pub async fn dhcp_release(
        &self,
        network: &str,
        mac: Mac,
        ip: Ipv4Addr,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self.dhcp_release(network, mac, ip, now))
    }

    /// Takes `ip` out of the pool until `until` (RFC 2131 §4.3.3: the client found it in use)
    /// if the client held it or nobody did. Returns whether the row was written.
    pub async fn dhcp_decline(
        &self,
        network: &str,
        mac: Mac,
        ip: Ipv4Addr,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self.dhcp_decline(network, mac, ip, until, now))
    }

    /// Every lease row of `network`, by address (administration, tests).
    pub async fn dhcp_leases(&self, network: &str) -> Result<Vec<DhcpLease>, StoreError> {
        dispatch!(self.dhcp_leases(network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const NOW: UnixTime = 1_700_000_000;

    fn claim(mac: Mac, state: DhcpLeaseState) -> Claim<'static> {
        Claim {
            network: "192.168.2.0",
            ip: "192.168.2.10".parse().unwrap(),
            mac,
            state,
            expires_at: NOW + 30,
            now: NOW,
            bound_grace: 300,
            hostname: None,
        }
    }

    fn row(mac: Option<Mac>, state: DhcpLeaseState, expires_at: UnixTime) -> DhcpLease {
        DhcpLease {
            network: "192.168.2.0".into(),
            ip: "192.168.2.10".parse().unwrap(),
            mac,
            state,
            expires_at,
            updated_at: NOW - 100,
            hostname: None,
        }
    }

    #[test]
    fn decisions() {
        use Decision::*;
        use DhcpLeaseState::*;
        let offer = claim(A, Offered);
        let bind = claim(A, Bound);
        for (what, r, c, want) in [
            ("free address", None, offer, Write),
            (
                "own offer renewed",
                Some(row(Some(A), Offered, NOW + 5)),
                offer,
                Write,
            ),
            (
                "own bound lease kept on DISCOVER",
                Some(row(Some(A), Bound, NOW + 5)),
                offer,
                Keep(row(Some(A), Bound, NOW + 5)),
            ),
            (
                "own bound lease extended on REQUEST",
                Some(row(Some(A), Bound, NOW + 5)),
                bind,
                Write,
            ),
            (
                "own lease long gone: rewritten",
                Some(row(Some(A), Bound, NOW - 400)),
                offer,
                Write,
            ),
            (
                "another client's offer, held",
                Some(row(Some(B), Offered, NOW + 1)),
                offer,
                Taken,
            ),
            (
                "another client's offer, lapsed",
                Some(row(Some(B), Offered, NOW)),
                offer,
                Write,
            ),
            (
                "another client's lease, running",
                Some(row(Some(B), Bound, NOW + 10)),
                bind,
                Taken,
            ),
            (
                "another client's lease, in its grace",
                Some(row(Some(B), Bound, NOW - 299)),
                bind,
                Taken,
            ),
            (
                "another client's lease, grace over",
                Some(row(Some(B), Bound, NOW - 300)),
                bind,
                Write,
            ),
            (
                "released: free for others at once",
                Some(row(Some(B), Released, NOW)),
                offer,
                Write,
            ),
            (
                "declined, held",
                Some(row(None, Declined, NOW + 60)),
                offer,
                Taken,
            ),
            (
                "declined, over",
                Some(row(None, Declined, NOW - 1)),
                offer,
                Write,
            ),
        ] {
            // The client's own row is the address's row when it is the client's.
            let mine = r.clone().filter(|r| r.mac == Some(A));
            assert_eq!(decide(r.as_ref(), mine.as_ref(), &c), want, "{what}");
        }
    }

    #[test]
    fn an_offer_never_moves_a_client_off_a_live_row() {
        use DhcpLeaseState::*;
        let elsewhere = |state, expires_at| DhcpLease {
            ip: "192.168.2.77".parse().unwrap(),
            ..row(Some(A), state, expires_at)
        };
        let offer = claim(A, Offered);
        for (what, mine, want_keep) in [
            (
                "live offer elsewhere (another server was first)",
                elsewhere(Offered, NOW + 1),
                true,
            ),
            (
                "bound elsewhere (a late DISCOVER)",
                elsewhere(Bound, NOW - 10),
                true,
            ),
            ("lapsed offer elsewhere", elsewhere(Offered, NOW), false),
            (
                "bound long ago elsewhere",
                elsewhere(Bound, NOW - 300),
                false,
            ),
            ("released elsewhere", elsewhere(Released, NOW + 100), false),
        ] {
            let got = decide(None, Some(&mine), &offer);
            assert_eq!(
                got == Decision::Keep(mine.clone()),
                want_keep,
                "{what}: {got:?}"
            );
        }
        // A REQUEST moves the client where it asks (the engine checked the address).
        assert_eq!(
            decide(None, Some(&elsewhere(Bound, NOW + 5)), &claim(A, Bound)),
            Decision::Write
        );
    }
}

//! DHCP lease cases of the store suite (both backends).

// `mac_for_ip(ip, i64::MAX)`: only open ip4log entries (no end time) count.
use super::{T0, mac, open};
use ironfence_store::{Claim, ClaimOutcome, DhcpLeaseState, Store, StoreConfig};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

const NET: &str = "192.168.2.0";
const GRACE: i64 = 300;

fn ip(last: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 2, 0)) + last)
}

fn claim(m: ironfence_core::Mac, a: Ipv4Addr, state: DhcpLeaseState, now: i64) -> Claim<'static> {
    Claim {
        network: NET,
        ip: a,
        mac: m,
        state,
        expires_at: now + 30,
        now,
        bound_grace: GRACE,
        hostname: Some("laptop"),
    }
}

async fn claimed(store: &Store, c: &Claim<'_>) -> Ipv4Addr {
    match store.dhcp_claim(c).await.unwrap() {
        ClaimOutcome::Claimed(l) => l.ip,
        other => panic!("{c:?}: expected Claimed, got {other:?}"),
    }
}

pub async fn dhcp_claim_release_decline_and_ip4log(cfg: StoreConfig) {
    use DhcpLeaseState::*;
    let store = open(&cfg).await;
    let (a, b) = (mac(1), mac(2));
    // Offer to A; B cannot take it while held; A's REQUEST binds it.
    assert_eq!(
        claimed(&store, &claim(a, ip(10), Offered, T0)).await,
        ip(10)
    );
    assert_eq!(
        store
            .dhcp_claim(&claim(b, ip(10), Offered, T0))
            .await
            .unwrap(),
        ClaimOutcome::Taken
    );
    assert_eq!(
        store.mac_for_ip(ip(10), i64::MAX).await.unwrap(),
        None,
        "offers are not in the IP log"
    );
    assert_eq!(
        claimed(&store, &claim(a, ip(10), Bound, T0 + 1)).await,
        ip(10)
    );
    let l = store
        .dhcp_lease_by_mac(NET, a, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (l.ip, l.state, l.expires_at, l.hostname.as_deref()),
        (ip(10), Bound, T0 + 31, Some("laptop"))
    );
    assert_eq!(store.mac_for_ip(ip(10), i64::MAX).await.unwrap(), Some(a));
    // A DISCOVER from A keeps its bound lease as it is.
    let ClaimOutcome::Claimed(kept) = store
        .dhcp_claim(&claim(a, ip(10), Offered, T0 + 2))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((kept.state, kept.expires_at), (Bound, T0 + 31));
    // Ended, but inside the grace: still A's; after it, B may take it.
    assert_eq!(
        store
            .dhcp_claim(&claim(b, ip(10), Offered, T0 + 31 + GRACE - 1))
            .await
            .unwrap(),
        ClaimOutcome::Taken
    );
    assert_eq!(
        claimed(&store, &claim(b, ip(10), Bound, T0 + 31 + GRACE)).await,
        ip(10)
    );
    assert_eq!(
        store.mac_for_ip(ip(10), i64::MAX).await.unwrap(),
        Some(b),
        "the IP log follows the lease"
    );
    assert_eq!(
        store.dhcp_lease_by_mac(NET, a, false).await.unwrap(),
        None,
        "A lost its row"
    );

    // Moving: A's new address replaces its old row (one row per client).
    let t = T0 + 1000;
    claimed(&store, &claim(a, ip(20), Bound, t)).await;
    claimed(&store, &claim(a, ip(21), Bound, t + 1)).await;
    let leases = store.dhcp_leases(NET).await.unwrap();
    let of_a: Vec<_> = leases
        .iter()
        .filter(|l| l.mac == Some(a))
        .map(|l| l.ip)
        .collect();
    assert_eq!(of_a, vec![ip(21)]);
    assert_eq!(
        store.mac_for_ip(ip(20), i64::MAX).await.unwrap(),
        None,
        "the old address is closed in ip4log"
    );
    assert_eq!(store.mac_for_ip(ip(21), i64::MAX).await.unwrap(), Some(a));

    // Release: free for others at once, the IP log entry closed.
    assert!(store.dhcp_release(NET, a, ip(21), t + 2).await.unwrap());
    assert!(
        !store.dhcp_release(NET, b, ip(21), t + 2).await.unwrap(),
        "not B's"
    );
    assert_eq!(store.mac_for_ip(ip(21), i64::MAX).await.unwrap(), None);
    claimed(&store, &claim(mac(3), ip(21), Offered, t + 2)).await;

    // Decline: nobody's until the hold ends.
    assert!(
        store
            .dhcp_decline(NET, b, ip(10), t + 600, t + 3)
            .await
            .unwrap()
    );
    let d = store
        .dhcp_leases(NET)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.ip == ip(10))
        .unwrap();
    assert_eq!((d.mac, d.state), (None, Declined));
    assert_eq!(
        store
            .dhcp_claim(&claim(b, ip(10), Offered, t + 4))
            .await
            .unwrap(),
        ClaimOutcome::Taken
    );
    // Two declined addresses coexist (NULL MACs never collide in the unique key).
    assert!(
        store
            .dhcp_decline(NET, mac(9), ip(11), t + 600, t + 3)
            .await
            .unwrap()
    );
    assert_eq!(
        claimed(&store, &claim(b, ip(10), Offered, t + 600)).await,
        ip(10)
    );
    store.close().await;
}

/// Two "servers" (two store handles, two connection pools) allocate for 200 clients at once
/// over a pool of 250 addresses, every client starting on one of a few addresses so that claims
/// collide; each client walks its candidates as the server does (re-read after a conflict).
/// No address is ever claimed by two clients, in the answers or in the table.
pub async fn dhcp_concurrent_claims_never_share_an_address(cfg: StoreConfig) {
    let servers = [Arc::new(open(&cfg).await), Arc::new(open(&cfg).await)];
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let store = servers[i as usize % 2].clone();
        tasks.push(tokio::spawn(async move {
            let m = mac(100 + i);
            let start = (i % 5) * 50;
            // A conflict moves the client on even when the row it lost stays free (the other
            // transaction may have rolled back): like a real client retransmitting its
            // DISCOVER, it walks the ring again (a loaded machine makes conflicts frequent).
            for k in 0..3 * 250 {
                let a = ip(1 + (start + k) % 250);
                match store
                    .dhcp_claim(&claim(m, a, DhcpLeaseState::Bound, T0))
                    .await
                    .unwrap()
                {
                    ClaimOutcome::Claimed(l) => return (m, l.ip),
                    ClaimOutcome::Taken => {}
                    ClaimOutcome::Conflict => {
                        if let Some(l) = store.dhcp_lease_by_mac(NET, m, true).await.unwrap() {
                            return (m, l.ip);
                        }
                    }
                }
            }
            panic!("{m}: no address in three walks of a pool larger than the clients");
        }));
    }
    let mut answers = HashMap::new();
    for t in tasks {
        let (m, a) = t.await.unwrap();
        assert!(answers.insert(m, a).is_none());
    }
    let given: HashSet<_> = answers.values().collect();
    assert_eq!(given.len(), 200, "an address was answered to two clients");
    let rows = servers[0].dhcp_leases(NET).await.unwrap();
    assert_eq!(rows.len(), 200);
    for r in &rows {
        assert_eq!(
            answers.get(&r.mac.unwrap()),
            Some(&r.ip),
            "table and answers agree"
        );
        assert_eq!(servers[1].mac_for_ip(r.ip, i64::MAX).await.unwrap(), r.mac);
    }
    for s in servers {
        s.close().await;
    }
}

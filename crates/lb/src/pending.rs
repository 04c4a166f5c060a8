//! Outstanding proxied requests to one backend: several source sockets, 256 RADIUS
//! identifiers each (the identifier is the only thing a reply names its request by, per
//! source address and port — RFC 2865 §3).
//!
//! Identifiers are handed out round-robin per socket, so a just-freed identifier is reused as
//! late as possible (a late reply to an expired request must not match a new one; the
//! Response Authenticator check would refuse it anyway, since every hop request has a fresh
//! Request Authenticator). Each slot has a deadline; [`Pending::expire`] returns what is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Where a request went: the socket index and the identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    /// Index of the source socket.
    pub socket: usize,
    /// RADIUS identifier.
    pub identifier: u8,
}

#[derive(Debug)]
struct Entry<T> {
    value: T,
    deadline: Instant,
    generation: u64,
}

/// The table (see the module docs). `T` is what the caller needs back with the reply (the hop
/// Request Authenticator, a waiter).
#[derive(Debug)]
pub struct Pending<T> {
    slots: Vec<Vec<Option<Entry<T>>>>,
    next: Vec<u8>,
    in_use: usize,
    generation: u64,
    deadlines: BinaryHeap<Reverse<(Instant, u64, Slot)>>,
    cursor: usize,
}

impl<T> Pending<T> {
    /// A table for `sockets` source sockets.
    pub fn new(sockets: usize) -> Pending<T> {
        let sockets = sockets.max(1);
        Pending {
            slots: (0..sockets)
                .map(|_| (0..256).map(|_| None).collect())
                .collect(),
            next: vec![0; sockets],
            in_use: 0,
            generation: 0,
            deadlines: BinaryHeap::new(),
            cursor: 0,
        }
    }

    /// Requests outstanding.
    pub fn len(&self) -> usize {
        self.in_use
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.in_use == 0
    }

    /// Capacity: sockets × 256.
    pub fn capacity(&self) -> usize {
        self.slots.len() * 256
    }

    /// A free slot for `value` until `deadline`, or `None` when every identifier of every
    /// socket is in use (the caller sheds the request). Sockets are used in turn, so the load
    /// spreads over them.
    pub fn insert(&mut self, value: T, deadline: Instant) -> Option<Slot> {
        if self.in_use == self.capacity() {
            return None;
        }
        let sockets = self.slots.len();
        for s in 0..sockets {
            let socket = (self.cursor + s) % sockets;
            let start = self.next[socket];
            for k in 0..=255u8 {
                let id = start.wrapping_add(k);
                let cell = &mut self.slots[socket][usize::from(id)];
                if cell.is_none() {
                    self.generation += 1;
                    *cell = Some(Entry {
                        value,
                        deadline,
                        generation: self.generation,
                    });
                    self.next[socket] = id.wrapping_add(1);
                    self.cursor = (socket + 1) % sockets;
                    self.in_use += 1;
                    let slot = Slot {
                        socket,
                        identifier: id,
                    };
                    self.deadlines
                        .push(Reverse((deadline, self.generation, slot)));
                    return Some(slot);
                }
            }
        }
        None
    }

    /// The value waiting in `slot`, if any (a reply arrived: look before taking, so that a
    /// forged reply does not cancel the real request).
    pub fn get(&self, slot: Slot) -> Option<&T> {
        self.slots
            .get(slot.socket)?
            .get(usize::from(slot.identifier))?
            .as_ref()
            .map(|e| &e.value)
    }

    /// The value waiting in `slot`, to update it (e.g. with the authenticator of the packet
    /// built once the slot's identifier was known).
    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut T> {
        self.slots
            .get_mut(slot.socket)?
            .get_mut(usize::from(slot.identifier))?
            .as_mut()
            .map(|e| &mut e.value)
    }

    /// Frees `slot`, returning its value (a verified reply, or the caller gave up).
    pub fn remove(&mut self, slot: Slot) -> Option<T> {
        let e = self
            .slots
            .get_mut(slot.socket)?
            .get_mut(usize::from(slot.identifier))?
            .take()?;
        self.in_use -= 1;
        Some(e.value)
    }

    /// Frees and returns every entry whose deadline is ≤ `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(Slot, T)> {
        let mut out = Vec::new();
        while let Some(Reverse((deadline, generation, slot))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let cell = &mut self.slots[slot.socket][usize::from(slot.identifier)];
            if cell.as_ref().is_some_and(|e| e.generation == generation) {
                let e = cell.take().expect("checked");
                self.in_use -= 1;
                out.push((slot, e.value));
            }
        }
        // Entries removed early leave stale heap items: drop them once they dominate.
        if self.deadlines.len() > 4 * self.capacity() {
            let live: Vec<_> = self
                .slots
                .iter()
                .enumerate()
                .flat_map(|(s, ids)| {
                    ids.iter().enumerate().filter_map(move |(i, e)| {
                        e.as_ref().map(|e| {
                            Reverse((
                                e.deadline,
                                e.generation,
                                Slot {
                                    socket: s,
                                    identifier: i as u8,
                                },
                            ))
                        })
                    })
                })
                .collect();
            self.deadlines = live.into();
        }
        out
    }

    /// The earliest deadline outstanding (for the caller's timer), possibly of an entry
    /// already removed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fills_every_identifier_of_every_socket_then_refuses() {
        let t0 = Instant::now();
        let mut p = Pending::new(4);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1024 {
            let slot = p.insert(i, t0 + Duration::from_secs(1)).expect("room");
            assert!(seen.insert(slot), "{slot:?} handed out twice");
        }
        assert_eq!(p.len(), 1024);
        assert_eq!(p.insert(9999, t0), None);
        // Spread over the sockets in turn.
        assert_eq!(seen.iter().filter(|s| s.socket == 3).count(), 256);
        let slot = Slot {
            socket: 2,
            identifier: 7,
        };
        *p.get_mut(slot).unwrap() += 10_000;
        let v = *p.get(slot).unwrap();
        assert!(v >= 10_000);
        assert_eq!(p.remove(slot), Some(v));
        assert_eq!(p.remove(slot), None);
        assert_eq!(p.insert(5, t0), Some(slot), "the only free slot");
    }

    #[test]
    fn identifiers_are_not_reused_at_once() {
        let t0 = Instant::now();
        let mut p = Pending::new(1);
        let a = p.insert("a", t0).unwrap();
        p.remove(a);
        let b = p.insert("b", t0).unwrap();
        assert_ne!(a, b);
        assert_eq!(b.identifier, a.identifier.wrapping_add(1));
    }

    #[test]
    fn expiry_returns_only_what_is_due_and_skips_removed_entries() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Pending::new(2);
        let a = p.insert("a", ms(500)).unwrap();
        let b = p.insert("b", ms(300)).unwrap();
        let c = p.insert("c", ms(700)).unwrap();
        assert_eq!(p.remove(b), Some("b"));
        assert_eq!(p.next_deadline(), Some(ms(300)));
        assert!(p.expire(ms(299)).is_empty());
        assert_eq!(p.expire(ms(600)), vec![(a, "a")]);
        assert_eq!(p.len(), 1);
        // A slot reused after its entry was removed keeps its new deadline.
        p.remove(c);
        let d = p.insert("d", ms(2000)).unwrap();
        assert!(p.expire(ms(1000)).is_empty());
        assert_eq!(p.expire(ms(2000)), vec![(d, "d")]);
        assert!(p.is_empty());
    }

    #[test]
    fn unknown_slots_are_nothing_not_a_panic() {
        let mut p: Pending<u8> = Pending::new(1);
        let s = Slot {
            socket: 9,
            identifier: 1,
        };
        assert_eq!(p.get(s), None);
        assert_eq!(p.remove(s), None);
    }
}

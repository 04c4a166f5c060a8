//! What the server depends on, as traits: node lookups on the request path, the accounting
//! sink, node administration and the node change log. Each backend (SQLite, MariaDB)
//! implements them; [`Store`](crate::Store) implements them by dispatching to the backend in
//! use, and [`CachedNodes`](crate::node_cache::CachedNodes) implements [`NodeLookup`] with its
//! cache in front of a store. Code that only needs lookups can take `impl NodeLookup` and be
//! given either.
//!
//! The methods return `impl Future + Send` (statically dispatched: no boxing, no allocation on
//! the request path). The SQLite backend does its work inline when the method is called and
//! returns a ready future (a cached point lookup costs less than a thread hand-off, see the
//! backend's docs); MariaDB's futures do the round trips when awaited. Contracts are those of
//! the same-named [`Store`](crate::Store) methods.

use crate::accounting::AccountingEvent;
use crate::types::{NodeFilter, Person};
use crate::{StoreError, mysql::MySqlStore, sqlite::SqliteStore};
use ironfence_core::{Mac, Node, NodeView, UnixTime};
use std::future::Future;

/// The request path: what a RADIUS handler reads about a device, and first sighting.
pub trait NodeLookup: Send + Sync {
    /// The node and its number of open security events (`None`: unknown MAC).
    fn node_view(
        &self,
        mac: Mac,
    ) -> impl Future<Output = Result<Option<NodeView>, StoreError>> + Send;

    /// Inserts the node as unregistered unless it exists; returns the stored row.
    fn create_node_if_absent(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> impl Future<Output = Result<Node, StoreError>> + Send;
}

/// Where accounting requests go (location log, IP log; see [`crate::accounting`]).
pub trait AccountingSink: Send + Sync {
    fn record_accounting(
        &self,
        ev: &AccountingEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Exactly once per `key`; `false` if the key was already applied.
    fn record_accounting_idempotent(
        &self,
        ev: &AccountingEvent,
        key: &[u8; 32],
        applied_at: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets idempotency keys recorded before `before`; returns how many.
    fn prune_spool_keys(
        &self,
        before: UnixTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Administration of nodes, owners and security events (CLI, portal, API).
pub trait NodeAdmin: Send + Sync {
    fn get_node(&self, mac: Mac) -> impl Future<Output = Result<Option<Node>, StoreError>> + Send;
    fn list_nodes(
        &self,
        filter: &NodeFilter,
    ) -> impl Future<Output = Result<Vec<Node>, StoreError>> + Send;
    fn count_nodes(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn touch_last_seen(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn register_node(
        &self,
        mac: Mac,
        pid: &str,
        role: &str,
        unregdate: Option<UnixTime>,
        now: UnixTime,
    ) -> impl Future<Output = Result<Node, StoreError>> + Send;
    fn unregister_node(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn delete_node(&self, mac: Mac) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn bulk_import_nodes(
        &self,
        nodes: &[Node],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn upsert_person(&self, person: &Person)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_person(
        &self,
        pid: &str,
    ) -> impl Future<Output = Result<Option<Person>, StoreError>> + Send;
    fn open_security_event(
        &self,
        mac: Mac,
        event_id: u32,
        now: UnixTime,
        notes: Option<&str>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn close_security_events(
        &self,
        mac: Mac,
        now: UnixTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The node change log the per-server caches poll (see [`crate::node_cache`]).
pub trait NodeChangeLog: Send + Sync {
    /// Changes with an id above `floor`, in id order (causal read on Galera).
    fn changes_since(
        &self,
        floor: u64,
    ) -> impl Future<Output = Result<Vec<(u64, Mac)>, StoreError>> + Send;
    /// Deletes changes recorded before `before` (database clock); returns how many.
    fn prune_node_changes(
        &self,
        before: UnixTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// SQLite runs inline: the result is ready when the method returns.
macro_rules! inline {
    ($e:expr) => {
        std::future::ready($e)
    };
}

/// MariaDB's (and `Store`'s) inherent methods are `async`: their future is the trait's.
macro_rules! awaited {
    ($e:expr) => {
        $e
    };
}

/// The trait impls of one backend, delegating to its inherent methods (which take priority
/// over the trait's in `<$ty>::method` paths).
macro_rules! backend_impls {
    ($ty:ty, $wrap:ident) => {
        impl NodeLookup for $ty {
            fn node_view(
                &self,
                mac: Mac,
            ) -> impl Future<Output = Result<Option<NodeView>, StoreError>> + Send {
                $wrap!(<$ty>::node_view(self, mac))
            }
            fn create_node_if_absent(
                &self,
                mac: Mac,
                now: UnixTime,
            ) -> impl Future<Output = Result<Node, StoreError>> + Send {
                $wrap!(<$ty>::create_node_if_absent(self, mac, now))
            }
        }

        impl AccountingSink for $ty {
            fn record_accounting(
                &self,
                ev: &AccountingEvent,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                $wrap!(<$ty>::record_accounting(self, ev))
            }
            fn record_accounting_idempotent(
                &self,
                ev: &AccountingEvent,
                key: &[u8; 32],
                applied_at: UnixTime,
            ) -> impl Future<Output = Result<bool, StoreError>> + Send {
                $wrap!(<$ty>::record_accounting_keyed(
                    self,
                    ev,
                    Some((key.as_slice(), applied_at))
                ))
            }
            fn prune_spool_keys(
                &self,
                before: UnixTime,
            ) -> impl Future<Output = Result<u64, StoreError>> + Send {
                $wrap!(<$ty>::prune_spool_keys(self, before))
            }
        }

        impl NodeAdmin for $ty {
            fn get_node(
                &self,
                mac: Mac,
            ) -> impl Future<Output = Result<Option<Node>, StoreError>> + Send {
                $wrap!(<$ty>::get_node(self, mac))
            }
            fn list_nodes(
                &self,
                filter: &NodeFilter,
            ) -> impl Future<Output = Result<Vec<Node>, StoreError>> + Send {
                $wrap!(<$ty>::list_nodes(self, filter))
            }
            fn count_nodes(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
                $wrap!(<$ty>::count_nodes(self))
            }
            fn touch_last_seen(
                &self,
                mac: Mac,
                now: UnixTime,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                $wrap!(<$ty>::touch_last_seen(self, mac, now))
            }
            fn register_node(
                &self,
                mac: Mac,
                pid: &str,
                role: &str,
                unregdate: Option<UnixTime>,
                now: UnixTime,
            ) -> impl Future<Output = Result<Node, StoreError>> + Send {
                $wrap!(<$ty>::register_node(self, mac, pid, role, unregdate, now))
            }
            fn unregister_node(
                &self,
                mac: Mac,
                now: UnixTime,
            ) -> impl Future<Output = Result<bool, StoreError>> + Send {
                $wrap!(<$ty>::unregister_node(self, mac, now))
            }
            fn delete_node(
                &self,
                mac: Mac,
            ) -> impl Future<Output = Result<bool, StoreError>> + Send {
                $wrap!(<$ty>::delete_node(self, mac))
            }
            fn bulk_import_nodes(
                &self,
                nodes: &[Node],
            ) -> impl Future<Output = Result<u64, StoreError>> + Send {
                $wrap!(<$ty>::bulk_import_nodes(self, nodes))
            }
            fn upsert_person(
                &self,
                person: &Person,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                $wrap!(<$ty>::upsert_person(self, person))
            }
            fn get_person(
                &self,
                pid: &str,
            ) -> impl Future<Output = Result<Option<Person>, StoreError>> + Send {
                $wrap!(<$ty>::get_person(self, pid))
            }
            fn open_security_event(
                &self,
                mac: Mac,
                event_id: u32,
                now: UnixTime,
                notes: Option<&str>,
            ) -> impl Future<Output = Result<u64, StoreError>> + Send {
                $wrap!(<$ty>::open_security_event(self, mac, event_id, now, notes))
            }
            fn close_security_events(
                &self,
                mac: Mac,
                now: UnixTime,
            ) -> impl Future<Output = Result<u64, StoreError>> + Send {
                $wrap!(<$ty>::close_security_events(self, mac, now))
            }
        }

        impl NodeChangeLog for $ty {
            fn changes_since(
                &self,
                floor: u64,
            ) -> impl Future<Output = Result<Vec<(u64, Mac)>, StoreError>> + Send {
                $wrap!(<$ty>::changes_since(self, floor))
            }
            fn prune_node_changes(
                &self,
                before: UnixTime,
            ) -> impl Future<Output = Result<u64, StoreError>> + Send {
                $wrap!(<$ty>::prune_node_changes(self, before))
            }
        }
    };
}

backend_impls!(SqliteStore, inline);
backend_impls!(MySqlStore, awaited);
pub(crate) use {awaited, backend_impls};

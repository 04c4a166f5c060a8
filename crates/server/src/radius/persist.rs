//! Degraded mode in one place: every write a handler asks for goes to the database, or to the
//! local spool while the database cannot take it (read-only, out of quorum, unreachable).
//!
//! | write | database takes it | database cannot | spool cannot either |
//! |---|---|---|---|
//! | accounting | stored, answered | spooled (fsync), answered | **not answered** (the NAS retransmits or fails over) |
//! | node of a new device | created | spooled | counted as skipped; answered (created at the next sighting) |
//! | 802.1X registration | registered | as a new device (registered at the next login) | counted as skipped; answered |
//!
//! (In read-only mode the EAP handler asks for no registration at all: the guide's "the role is
//! computed from the sources but nothing is saved".)
//!
//! Records still waiting in the spool keep their order: while it holds any, new accounting
//! queues behind them, so each session's Start / Interim / Stop reach the database in order.

use super::handler::{Ctx, Write};
use crate::Shared;
use crate::spool::record::Record;
use ironfence_core::Mac;
use ironfence_store::{AccountingEvent, StoreError};

/// Applies the writes; `Err` when one the answer depends on could be made neither in the
/// database nor in the spool: the request must then go unanswered.
pub(super) async fn apply(ctx: &Ctx<'_>, writes: Vec<Write>) -> Result<(), ()> {
    for write in writes {
        match write {
            Write::Accounting(event) => store_accounting(ctx.shared, *event).await?,
            Write::NodeSeen(mac) => create_node(ctx, mac).await,
            Write::Register(r) => register(ctx, *r).await,
        }
    }
    Ok(())
}

async fn store_accounting(shared: &Shared, event: AccountingEvent) -> Result<(), ()> {
    if shared.db.is_read_only() {
        // Known out of quorum: no point trying the database.
        return spool(shared, Write::Accounting(Box::new(event)), "accounting").await;
    }
    if shared.spool.is_pending() {
        match shared
            .spool
            .append_if_pending(Record::Accounting(event.clone()))
            .await
        {
            Ok(true) => {
                shared.metrics.spool.spooled("accounting");
                return Ok(());
            }
            Ok(false) => {} // replayed and emptied meanwhile: write directly
            Err(e) => {
                tracing::debug!(error = %e, "accounting not spooled; not answered so the NAS retransmits");
                return Err(());
            }
        }
    }
    match shared.store.record_accounting(&event).await {
        Ok(()) => Ok(()),
        Err(e) if spoolable(shared, &e) => {
            spool(shared, Write::Accounting(Box::new(event)), "accounting").await
        }
        Err(e) => {
            shared.metrics.store_error("accounting");
            tracing::error!(error = %e, "accounting not stored; not answered so the NAS retransmits");
            Err(())
        }
    }
}

/// The node row of a device first seen. The answer does not depend on it (see the table).
async fn create_node(ctx: &Ctx<'_>, mac: Mac) {
    let shared = ctx.shared;
    if !shared.db.is_read_only() {
        match shared.nodes.create_node_if_absent(mac, ctx.now).await {
            Ok(_) => {
                shared.metrics.nodes_created.inc();
                tracing::info!(%mac, switch = %ctx.switch.id, "new node, unregistered");
                return;
            }
            Err(e) if spoolable(shared, &e) => {}
            Err(e) => {
                shared.metrics.store_error("create_node");
                tracing::error!(%mac, error = %e, "cannot create node; created at its next sighting");
                return;
            }
        }
    }
    if spool(shared, Write::NodeSeen(mac), "create_node")
        .await
        .is_err()
    {
        shared.db.skipped(shared, "create_node");
    }
}

/// The registration a successful 802.1X login grants. The answer does not depend on it.
async fn register(ctx: &Ctx<'_>, r: super::handler::Registration) {
    let shared = ctx.shared;
    match shared
        .store
        .register_node(r.mac, &r.pid, &r.role, r.unregdate, ctx.now)
        .await
    {
        Ok(_) => {
            shared.nodes.invalidate(r.mac);
            tracing::info!(mac = %r.mac, pid = %r.pid, role = %r.role, "registered by 802.1X login");
        }
        Err(e) => {
            if !spoolable(shared, &e) {
                shared.metrics.store_error("register_node");
            }
            tracing::warn!(mac = %r.mac, error = %e, "802.1X registration not saved; the device is registered at its next login");
            create_node(ctx, r.mac).await;
        }
    }
}

/// Appends the write to the spool (fsync'd before this returns `Ok`).
async fn spool(shared: &Shared, write: Write, op: &'static str) -> Result<(), ()> {
    let now = match &write {
        Write::Accounting(event) => event.now,
        Write::NodeSeen(_) | Write::Register(_) => super::unix_now(),
    };
    match shared.spool.append(write.into_record(now)).await {
        Ok(()) => {
            shared.metrics.spool.spooled(op);
            Ok(())
        }
        Err(e) => {
            // Counted (ironfence_spool_refused_total) and logged once by the spool when full.
            tracing::debug!(error = %e, op, "the database cannot take it and the spool could not either");
            Err(())
        }
    }
}

/// The database did not take a write but may later (read-only, out of quorum, unreachable):
/// spool it. A read-only error also switches a Galera node to read-only mode at once.
fn spoolable(shared: &Shared, e: &StoreError) -> bool {
    shared.db.write_failed(shared, e)
        || matches!(
            e,
            StoreError::ReadOnly { .. } | StoreError::Unavailable { .. }
        )
}

//! The storage behaviours: what every [`underling::Store`] does, checked through
//! [`underling::Queue`] and the store's own operations. One module per area.

pub mod bad_input;
pub mod claim;
pub mod claim_by_id;
pub mod connect;
pub mod counts;
pub mod dependencies;
pub mod enqueue;
pub mod events;
pub mod expiry;
pub mod fifo;
pub mod leases;
pub mod limits;
pub mod list;
pub mod locks;
pub mod notes;
pub mod notify;
pub mod now;
pub mod queues;
pub mod release;
pub mod remove;
pub mod repair;
pub mod retry;
pub mod schedules;
pub mod settle;
pub mod smoke;
pub mod snooze;
pub mod stats;
pub mod task_defaults;
pub mod timeouts;
pub mod transactions;
pub mod unique;
pub mod wait;
pub mod workers;
pub mod workloads;

/// Every storage behaviour, module by module.
pub fn all() -> Vec<crate::Behaviour> {
    [
        bad_input::all(),
        claim::all(),
        claim_by_id::all(),
        connect::all(),
        counts::all(),
        dependencies::all(),
        enqueue::all(),
        events::all(),
        expiry::all(),
        leases::all(),
        fifo::all(),
        limits::all(),
        list::all(),
        locks::all(),
        notes::all(),
        notify::all(),
        now::all(),
        queues::all(),
        release::all(),
        remove::all(),
        repair::all(),
        retry::all(),
        schedules::all(),
        settle::all(),
        smoke::all(),
        snooze::all(),
        stats::all(),
        task_defaults::all(),
        timeouts::all(),
        transactions::all(),
        unique::all(),
        wait::all(),
        workers::all(),
        workloads::all(),
    ]
    .concat()
}

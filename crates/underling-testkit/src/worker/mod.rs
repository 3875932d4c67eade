//! The worker runtime, proven: every behaviour runs a real [`underling::Worker`] (or one of
//! its helpers) on the store it is given.

pub mod batching;
pub mod claiming;
pub mod commands;
pub mod drain;
pub mod fencing;
pub mod fetch_ahead;
pub mod heartbeat;
pub mod helpers;
pub mod outcomes;
pub mod rescue;
pub mod retries;
pub mod scheduling;
pub mod shutdown;
pub mod snoozing;
pub mod stopping;
pub mod wakeups;

/// Every worker behaviour, module by module.
pub fn all() -> Vec<crate::Behaviour> {
    [
        batching::all(),
        claiming::all(),
        commands::all(),
        drain::all(),
        fencing::all(),
        fetch_ahead::all(),
        heartbeat::all(),
        helpers::all(),
        outcomes::all(),
        rescue::all(),
        retries::all(),
        scheduling::all(),
        shutdown::all(),
        snoozing::all(),
        stopping::all(),
        wakeups::all(),
    ]
    .concat()
}

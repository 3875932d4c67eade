//! The worker runtime, proven: every test runs a real [`underling::Worker`] (or one of its
//! helpers) on SQLite in memory and on PostgreSQL.

#[macro_use]
mod common;
mod tasks;

mod batching;
mod claiming;
mod commands;
mod fetch_ahead;
mod heartbeat;
mod helpers;
mod outcomes;
mod retries;
mod shutdown;
mod wakeups;

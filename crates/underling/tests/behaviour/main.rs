//! The behaviour suite: every test runs on SQLite in memory and on PostgreSQL.

#[macro_use]
mod common;

mod bad_input;
mod claim;
mod claim_by_id;
mod concurrency;
mod connect;
mod dependencies;
mod enqueue;
mod list;
mod locks;
mod notes;
mod notify;
mod queues;
mod release;
mod remove;
mod repair;
mod retry;
mod settle;
mod smoke;
mod stats;
mod transactions;
mod workers;

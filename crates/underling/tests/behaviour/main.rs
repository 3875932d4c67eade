//! The behaviour suite: every test runs on SQLite in memory and on PostgreSQL.

#[macro_use]
mod common;

mod smoke;

//! Connections through PgBouncer in transaction mode (`pool_mode = transaction`).
//!
//! PgBouncer in transaction mode hands each client a server connection for one transaction
//! only. sqlx sends every statement with arguments in two steps (Parse, then Bind and Execute,
//! each ending in a Sync), and PgBouncer before 1.21 (Debian bookworm has 1.18) may give the
//! second step to another server connection, where the statement does not exist: `prepared
//! statement "sqlx_s_1" does not exist`, or worse, a statement of another client with the same
//! name. Startup parameters such as `options` (the schema's `search_path`) are refused.
//!
//! So in this mode ([`crate::ConnectOptions::pgbouncer`]) every checkout of a pool connection is
//! one transaction: [`pool_options`] opens it when the pool hands the connection out (setting
//! the schema's `search_path` with `SET LOCAL` and dropping prepared statements another client
//! left on that server connection), underling commits it before each call returns, and what
//! is still open when the connection goes back to the pool is rolled back. sqlx's statement
//! cache is off ([`connect_options`]). A statement therefore stays on one server connection
//! from Parse to Execute, and a call costs two or three more round trips. A transaction the
//! code opens on such a connection (`pool.begin()`) takes the checkout's over: its `COMMIT` or
//! `ROLLBACK` is the real one.
//!
//! **On a pool built with [`pool_options`], write only in transactions (`pool.begin()` ...
//! `commit()`):** a statement run on the pool itself is rolled back when its connection goes
//! back to the pool.
//!
//! What needs a session cannot work this way and is refused ([`crate::Error::SessionRequired`])
//! or turned off: LISTEN (workers and waiters poll instead), live events, and migrations (they
//! take a session advisory lock, and some cannot run in a transaction).
//!
//! An application enqueueing in its own transactions through the same bouncer builds its pool
//! with [`pool_options`] and [`connect_options`] as well.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

use crate::error::Result;

/// Connect options for PgBouncer in transaction mode: no statement cache (a cached statement
/// lives on one server connection, which the next transaction may not get), and no
/// `extra_float_digits` startup parameter (PgBouncer refuses it unless its
/// `ignore_startup_parameters` lists it).
pub fn connect_options(options: PgConnectOptions) -> PgConnectOptions {
    options.statement_cache_capacity(0).extra_float_digits(None)
}

/// Pool options whose every checkout is one transaction (see the module's documentation),
/// with `schema` first on the `search_path` when given.
///
/// Keep `min_connections` at 0: a connection the pool opens on its own would sit idle inside
/// its first transaction, holding a server connection of the bouncer.
///
/// The schema must be a plain identifier (1 to 63 ASCII letters, digits and underscores, not
/// starting with a digit), as for [`crate::ConnectOptions::schema`]; anything else is
/// [`crate::Error::InvalidOption`].
pub fn pool_options(schema: Option<&str>) -> Result<PgPoolOptions> {
    let mut begin = String::from("BEGIN; SET LOCAL client_min_messages = error; ");
    if let Some(schema) = schema {
        crate::store::postgres::validate_schema(schema)?;
        // Checked just above: letters, digits and underscores only.
        begin.push_str(&format!("SET LOCAL search_path TO \"{schema}\"; "));
    }
    // Statements another client prepared on this server connection and left behind: sqlx
    // numbers its statements per client connection, so their names would collide.
    begin.push_str("DEALLOCATE ALL");
    let begin = std::sync::Arc::new(begin);
    let on_connect = begin.clone();
    // sqlx hands a new connection out without `before_acquire`: `after_connect` opens its
    // first transaction.
    Ok(PgPoolOptions::new()
        .after_connect(move |conn, _| {
            let begin = on_connect.to_string();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(AssertSqlSafe(begin))).await?;
                Ok(())
            })
        })
        .before_acquire(move |conn, _| {
            let begin = begin.to_string();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(AssertSqlSafe(begin))).await?;
                Ok(true)
            })
        })
        .after_release(|conn, _| {
            Box::pin(async move {
                // What was not committed before the connection came back is given up (the
                // pool releases connections after the caller went on, so a COMMIT here could
                // come after the caller's next read). When the code committed already, this
                // ROLLBACK finds no transaction; the warning it would log says nothing.
                let end = "SET client_min_messages = error; ROLLBACK; RESET client_min_messages";
                if conn.execute(sqlx::raw_sql(end)).await.is_err() {
                    // A failed transaction refuses the SET.
                    conn.execute(sqlx::raw_sql("ROLLBACK")).await?;
                }
                Ok(true)
            })
        }))
}
